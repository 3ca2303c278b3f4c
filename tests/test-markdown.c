/* HearthMarkdownView: the widgets made for every Markdown construct, the
 * inline Pango markup, and streaming (one character at a time must end where
 * rendering the whole text at once does, touching only the changed blocks).
 * Needs a display: meson runs it under xvfb-run; without one it SKIPs. */

#include <adwaita.h>
#include <gtk/gtk.h>
#include <gtksourceview/gtksource.h>
#include <string.h>

#include "hearth-markdown.h"

/* ---------------------------------------------------------------------- */
/* helpers                                                                */
/* ---------------------------------------------------------------------- */

typedef gboolean (*WidgetPred)(GtkWidget *w, gconstpointer data);

static void
collect(GtkWidget *w, WidgetPred pred, gconstpointer data, GPtrArray *out)
{
    if (pred(w, data))
        g_ptr_array_add(out, w);
    if (GTK_IS_TEXT_VIEW(w))
        return;
    for (GtkWidget *c = gtk_widget_get_first_child(w); c; c = gtk_widget_get_next_sibling(c))
        collect(c, pred, data, out);
}

static gboolean
has_class(GtkWidget *w, gconstpointer css_class)
{
    return gtk_widget_has_css_class(w, css_class);
}

static gboolean
is_type(GtkWidget *w, gconstpointer type)
{
    return G_TYPE_CHECK_INSTANCE_TYPE(w, (GType)GPOINTER_TO_SIZE(type));
}

static GPtrArray *
find_class(GtkWidget *root, const char *css_class)
{
    GPtrArray *out = g_ptr_array_new();
    collect(root, has_class, css_class, out);
    return out;
}

static GPtrArray *
find_type(GtkWidget *root, GType type)
{
    GPtrArray *out = g_ptr_array_new();
    collect(root, is_type, GSIZE_TO_POINTER(type), out);
    return out;
}

static char *
buffer_text(GtkTextView *view)
{
    GtkTextBuffer *buffer = gtk_text_view_get_buffer(view);
    GtkTextIter s, e;
    gtk_text_buffer_get_bounds(buffer, &s, &e);
    return gtk_text_buffer_get_text(buffer, &s, &e, FALSE);
}

static const char *
buffer_language(GtkTextView *view)
{
    GtkSourceLanguage *lang = gtk_source_buffer_get_language(GTK_SOURCE_BUFFER(gtk_text_view_get_buffer(view)));
    return lang ? gtk_source_language_get_id(lang) : NULL;
}

/* A textual dump of the widget tree: type, CSS classes, label markup, code
 * text and language, per widget. */
static void
dump_widget(GtkWidget *w, GString *out, int depth)
{
    if (GTK_IS_SCROLLBAR(w))      /* GTK's own, styled by hover state */
        return;
    g_string_append_printf(out, "%*s%s", depth * 2, "", G_OBJECT_TYPE_NAME(w));
    char **classes = gtk_widget_get_css_classes(w);
    for (char **c = classes; *c; c++)
        g_string_append_printf(out, ".%s", *c);
    g_strfreev(classes);
    if (GTK_IS_LABEL(w)) {
        g_string_append_printf(out, " [%s]", gtk_label_get_label(GTK_LABEL(w)));
        if (gtk_label_get_width_chars(GTK_LABEL(w)) >= 0)
            g_string_append_printf(out, " w=%d", gtk_label_get_width_chars(GTK_LABEL(w)));
    }
    if (GTK_IS_TEXT_VIEW(w)) {
        g_autofree char *text = buffer_text(GTK_TEXT_VIEW(w));
        g_string_append_printf(out, " lang=%s [%s]\n", buffer_language(GTK_TEXT_VIEW(w)), text);
        return;
    }
    g_string_append_c(out, '\n');
    for (GtkWidget *c = gtk_widget_get_first_child(w); c; c = gtk_widget_get_next_sibling(c))
        dump_widget(c, out, depth + 1);
}

static char *
dump(GtkWidget *w)
{
    GString *out = g_string_new(NULL);
    dump_widget(w, out, 0);
    return g_string_free(out, FALSE);
}

static void
spin(void)
{
    for (int i = 0; i < 20 && g_main_context_iteration(NULL, FALSE); i++)
        ;
}

static GtkWidget *window;

/* A view shown in the test window (so it is laid out and drawn). */
static HearthMarkdownView *
shown_view(void)
{
    GtkWidget *view = hearth_markdown_view_new();
    GtkWidget *sw = gtk_scrolled_window_new();
    gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(sw), view);
    gtk_window_set_child(GTK_WINDOW(window), sw);
    gtk_window_present(GTK_WINDOW(window));
    spin();
    return HEARTH_MARKDOWN_VIEW(view);
}

/* ---------------------------------------------------------------------- */
/* the document with every construct                                       */
/* ---------------------------------------------------------------------- */

static const char all_constructs[] =
    "# Heading One\n"
    "\n"
    "## Heading Two\n"
    "\n"
    "### Heading Three\n"
    "\n"
    "#### Heading Four\n"
    "\n"
    "##### Heading Five\n"
    "\n"
    "###### Heading Six\n"
    "\n"
    "A paragraph with *emphasis*, **strong**, `inline <code>`, a "
    "[link](https://example.com/?a=1&b=2 \"Example\") and 5 < 6 & 7 > 3.\n"
    "Second line of the same paragraph.\n"
    "\n"
    "- bullet one\n"
    "- bullet two\n"
    "  - nested a\n"
    "  - nested b\n"
    "- bullet three\n"
    "\n"
    "7. seven\n"
    "8. eight\n"
    "9. nine\n"
    "10. ten\n"
    "\n"
    "> A quote with **bold**\n"
    "> > nested quote\n"
    "\n"
    "---\n"
    "\n"
    "![alt text for image](https://example.com/x.png)\n"
    "\n"
    "<div>html block & stuff</div>\n"
    "\n"
    "Inline <span>html</span> here.\n"
    "\n"
    "| Name | Value |\n"
    "|:-----|------:|\n"
    "| `x`  | **1** |\n"
    "| long name | 22 |\n"
    "\n"
    "```python\n"
    "def f(x):\n"
    "    return x < 1\n"
    "```\n"
    "\n"
    "```c\n"
    "int main(void) { return 0; }\n"
    "```\n"
    "\n"
    "    indented code\n"
    "\n"
    "1) paren list\n"
    "2) second\n"
    "\n"
    "1. loose item\n"
    "\n"
    "2. another loose\n";

static GtkWidget *
label_with_text(GPtrArray *labels, const char *text)
{
    for (guint i = 0; i < labels->len; i++)
        if (g_str_equal(gtk_label_get_text(labels->pdata[i]), text))
            return labels->pdata[i];
    return NULL;
}

static void
check_heading(GtkWidget *root, const char *css_class, const char *text)
{
    g_autoptr(GPtrArray) found = find_class(root, css_class);
    GtkWidget *label = label_with_text(found, text);
    g_assert_nonnull(label);
    g_assert_true(GTK_IS_LABEL(label));
    gtk_test_accessible_assert_role(GTK_ACCESSIBLE(label), GTK_ACCESSIBLE_ROLE_HEADING);
}

static void
on_clipboard_text(GObject *source, GAsyncResult *res, gpointer user_data)
{
    char **out = user_data;
    *out = gdk_clipboard_read_text_finish(GDK_CLIPBOARD(source), res, NULL);
    if (!*out)
        *out = g_strdup("");
}

static void
test_constructs(void)
{
    HearthMarkdownView *view = shown_view();
    GtkWidget *root = GTK_WIDGET(view);
    hearth_markdown_view_set_text(view, all_constructs);
    spin();
    g_assert_cmpstr(hearth_markdown_view_get_text(view), ==, all_constructs);
    g_assert_cmpuint(hearth_markdown_view_get_n_rebuilt_blocks(view), >, 20);

    /* headings */
    check_heading(root, "title-1", "Heading One");
    check_heading(root, "title-2", "Heading Two");
    check_heading(root, "title-3", "Heading Three");
    check_heading(root, "title-4", "Heading Four");
    check_heading(root, "heading", "Heading Five");
    check_heading(root, "heading", "Heading Six");

    /* lists: markers in document order, numbering from the list's start */
    g_autoptr(GPtrArray) markers = find_class(root, "hearth-md-marker");
    const char *want_markers[] = { "•", "•", "◦", "◦", "•", "7.", "8.", "9.", "10.", "1)", "2)", "1.", "2." };
    g_assert_cmpuint(markers->len, ==, G_N_ELEMENTS(want_markers));
    for (guint i = 0; i < markers->len; i++)
        g_assert_cmpstr(gtk_label_get_text(markers->pdata[i]), ==, want_markers[i]);
    g_assert_cmpint(gtk_label_get_width_chars(markers->pdata[5]), ==, 3);   /* "10." */
    g_autoptr(GPtrArray) lists = find_class(root, "hearth-md-list");
    g_assert_cmpuint(lists->len, ==, 5);   /* bullets, nested, 7-10, paren, loose */
    guint items_per_list[] = { 3, 2, 4, 2, 2 };
    for (guint i = 0; i < lists->len; i++) {
        guint n = 0;
        for (GtkWidget *c = gtk_widget_get_first_child(lists->pdata[i]); c; c = gtk_widget_get_next_sibling(c))
            n++;
        g_assert_cmpuint(n, ==, items_per_list[i]);
    }
    /* tight lists are closer than loose ones */
    g_assert_cmpint(gtk_box_get_spacing(lists->pdata[0]), <, gtk_box_get_spacing(lists->pdata[4]));
    /* the nested list sits inside bullet two's content */
    g_assert_true(gtk_widget_is_ancestor(lists->pdata[1], lists->pdata[0]));

    /* paragraphs: escaped text, emphasis, inline code, link */
    g_autoptr(GPtrArray) paras = find_class(root, "hearth-md-paragraph");
    GtkLabel *para = NULL;
    for (guint i = 0; i < paras->len && !para; i++)
        if (g_str_has_prefix(gtk_label_get_text(paras->pdata[i]), "A paragraph"))
            para = paras->pdata[i];
    g_assert_nonnull(para);
    const char *markup = gtk_label_get_label(para);
    g_assert_nonnull(strstr(markup, "5 &lt; 6 &amp; 7 &gt; 3."));
    g_assert_nonnull(strstr(gtk_label_get_text(para), "5 < 6 & 7 > 3."));
    g_assert_nonnull(strstr(markup, "<i>emphasis</i>"));
    g_assert_nonnull(strstr(markup, "<b>strong</b>"));
    g_assert_nonnull(strstr(markup, "<tt><span background=\"#808080\" bgalpha=\"22%\">inline &lt;code&gt;</span></tt>"));
    g_assert_nonnull(strstr(markup, "<a href=\"https://example.com/?a=1&amp;b=2\" title=\"Example\">link</a>"));
    g_assert_nonnull(strstr(gtk_label_get_text(para), "3.\nSecond line"));
    g_assert_true(gtk_label_get_selectable(para));
    g_assert_true(gtk_label_get_wrap(para));
    g_assert_cmpint(gtk_label_get_wrap_mode(para), ==, PANGO_WRAP_WORD_CHAR);
    g_assert_nonnull(label_with_text(paras, "alt text for image"));
    g_assert_nonnull(label_with_text(paras, "Inline <span>html</span> here."));
    g_assert_nonnull(label_with_text(paras, "A quote with bold"));
    g_assert_nonnull(label_with_text(paras, "nested quote"));

    /* block quotes, nested */
    g_autoptr(GPtrArray) quotes = find_class(root, "hearth-md-quote");
    g_assert_cmpuint(quotes->len, ==, 2);
    g_assert_true(gtk_widget_is_ancestor(quotes->pdata[1], quotes->pdata[0]));

    /* thematic break, HTML block */
    g_autoptr(GPtrArray) rules = find_class(root, "hearth-md-rule");
    g_assert_cmpuint(rules->len, ==, 1);
    g_assert_true(GTK_IS_SEPARATOR(rules->pdata[0]));
    g_autoptr(GPtrArray) html = find_class(root, "hearth-md-html");
    g_assert_cmpuint(html->len, ==, 1);
    g_assert_cmpstr(gtk_label_get_text(html->pdata[0]), ==, "<div>html block & stuff</div>");

    /* the table, as aligned text */
    g_autoptr(GPtrArray) tables = find_class(root, "hearth-md-table");
    g_assert_cmpuint(tables->len, ==, 1);
    g_assert_cmpstr(gtk_label_get_text(tables->pdata[0]), ==,
                    "Name      │ Value\n"
                    "──────────┼──────\n"
                    "x         │     1\n"
                    "long name │    22");

    /* code blocks: text and language */
    g_autoptr(GPtrArray) code = find_type(root, GTK_SOURCE_TYPE_VIEW);
    g_assert_cmpuint(code->len, ==, 3);
    g_autofree char *py = buffer_text(code->pdata[0]);
    g_autofree char *c = buffer_text(code->pdata[1]);
    g_autofree char *ind = buffer_text(code->pdata[2]);
    g_assert_cmpstr(py, ==, "def f(x):\n    return x < 1");
    g_assert_cmpstr(buffer_language(code->pdata[0]), ==, "python3");
    g_assert_cmpstr(c, ==, "int main(void) { return 0; }");
    g_assert_cmpstr(buffer_language(code->pdata[1]), ==, "c");
    g_assert_cmpstr(ind, ==, "indented code");
    g_assert_null(buffer_language(code->pdata[2]));
    g_assert_false(gtk_text_view_get_editable(code->pdata[0]));
    g_assert_true(gtk_text_view_get_monospace(code->pdata[0]));
    g_assert_true(gtk_source_buffer_get_highlight_syntax(
        GTK_SOURCE_BUFFER(gtk_text_view_get_buffer(code->pdata[0]))));
    gtk_test_accessible_assert_property(code->pdata[0], GTK_ACCESSIBLE_PROPERTY_LABEL, "Python code");

    /* Code and tables scroll sideways only: a vertical wheel over them goes
     * on to the chat (only our Shift+wheel handler looks at vertical). */
    g_autoptr(GPtrArray) scrollers = find_type(root, GTK_TYPE_SCROLLED_WINDOW);
    g_assert_cmpuint(scrollers->len, ==, 4);   /* 3 code blocks, 1 table */
    for (guint i = 0; i < scrollers->len; i++) {
        GListModel *controllers = gtk_widget_observe_controllers(scrollers->pdata[i]);
        guint n_scroll = 0;
        for (guint j = 0; j < g_list_model_get_n_items(controllers); j++) {
            g_autoptr(GObject) ctrl = g_list_model_get_item(controllers, j);
            if (!GTK_IS_EVENT_CONTROLLER_SCROLL(ctrl))
                continue;
            n_scroll++;
            GtkEventControllerScrollFlags flags = gtk_event_controller_scroll_get_flags(GTK_EVENT_CONTROLLER_SCROLL(ctrl));
            if (g_strcmp0(gtk_event_controller_get_name(GTK_EVENT_CONTROLLER(ctrl)), "hearth-md-shift-scroll") != 0)
                g_assert_false(flags & GTK_EVENT_CONTROLLER_SCROLL_VERTICAL);
        }
        g_assert_cmpuint(n_scroll, >=, 2);
        g_object_unref(controllers);
    }

    /* the header names the language */
    g_autoptr(GPtrArray) titles = find_class(root, "caption-heading");
    g_assert_cmpuint(titles->len, ==, 3);
    g_assert_cmpstr(gtk_label_get_text(titles->pdata[0]), ==, "Python");
    g_assert_cmpstr(gtk_label_get_text(titles->pdata[1]), ==, "C");
    g_assert_cmpstr(gtk_label_get_text(titles->pdata[2]), ==, "Code");

    /* copy buttons: accessible name, tooltip, clipboard, "Copied" state */
    g_autoptr(GPtrArray) copies = find_class(root, "hearth-md-copy");
    g_assert_cmpuint(copies->len, ==, 3);
    for (guint i = 0; i < copies->len; i++) {
        gtk_test_accessible_assert_property(copies->pdata[i], GTK_ACCESSIBLE_PROPERTY_LABEL, "Copy code");
        g_assert_cmpstr(gtk_widget_get_tooltip_text(copies->pdata[i]), ==, "Copy code");
    }
    GtkWidget *copy = copies->pdata[0];
    g_signal_emit_by_name(copy, "clicked");
    char *clip = NULL;
    gdk_clipboard_read_text_async(gtk_widget_get_clipboard(copy), NULL, on_clipboard_text, &clip);
    while (!clip)
        g_main_context_iteration(NULL, TRUE);
    g_assert_cmpstr(clip, ==, "def f(x):\n    return x < 1");
    g_free(clip);
    GtkWidget *content = gtk_button_get_child(GTK_BUTTON(copy));
    g_assert_true(ADW_IS_BUTTON_CONTENT(content));
    g_assert_cmpstr(adw_button_content_get_label(ADW_BUTTON_CONTENT(content)), ==, "Copied");

    /* dark mode switches the code style scheme */
    GtkSourceBuffer *pybuf = GTK_SOURCE_BUFFER(gtk_text_view_get_buffer(code->pdata[0]));
    AdwStyleManager *sm = adw_style_manager_get_default();
    adw_style_manager_set_color_scheme(sm, ADW_COLOR_SCHEME_FORCE_DARK);
    spin();
    g_assert_cmpstr(gtk_source_style_scheme_get_id(gtk_source_buffer_get_style_scheme(pybuf)), ==, "Adwaita-dark");
    adw_style_manager_set_color_scheme(sm, ADW_COLOR_SCHEME_FORCE_LIGHT);
    spin();
    g_assert_cmpstr(gtk_source_style_scheme_get_id(gtk_source_buffer_get_style_scheme(pybuf)), ==, "Adwaita");
    adw_style_manager_set_color_scheme(sm, ADW_COLOR_SCHEME_DEFAULT);

    /* the same text again changes nothing */
    hearth_markdown_view_set_text(view, all_constructs);
    g_assert_cmpuint(hearth_markdown_view_get_n_rebuilt_blocks(view), ==, 0);
    /* the text property */
    g_autofree char *prop = NULL;
    g_object_get(view, "text", &prop, NULL);
    g_assert_cmpstr(prop, ==, all_constructs);
    hearth_markdown_view_set_text(view, NULL);
    g_assert_null(gtk_widget_get_first_child(root));
    g_assert_cmpstr(hearth_markdown_view_get_text(view), ==, "");
}

/* ---------------------------------------------------------------------- */
/* inline markup (no widgets)                                              */
/* ---------------------------------------------------------------------- */

static void
assert_pango(const char *md, const char *want)
{
    g_autofree char *got = hearth_markdown_to_pango(md);
    g_assert_cmpstr(got, ==, want);
    if (!strstr(got, "<a ")) {     /* <a> is GtkLabel's, not Pango's */
        g_autoptr(GError) error = NULL;
        g_assert_true(pango_parse_markup(got, -1, 0, NULL, NULL, NULL, &error));
        g_assert_no_error(error);
    }
}

static void
test_pango(void)
{
    assert_pango("", "");
    assert_pango("plain", "plain");
    assert_pango("a < b & c > d \"q\" 'a'", "a &lt; b &amp; c &gt; d &quot;q&quot; &apos;a&apos;");
    assert_pango("*em* and _em_ **st** __st__", "<i>em</i> and <i>em</i> <b>st</b> <b>st</b>");
    assert_pango("***both***", "<i><b>both</b></i>");
    assert_pango("`a<b`", "<tt><span background=\"#808080\" bgalpha=\"22%\">a&lt;b</span></tt>");
    assert_pango("[t](http://x.org/?a=1&b=\"2\")",
                 "<a href=\"http://x.org/?a=1&amp;b=&quot;2&quot;\" title=\"http://x.org/?a=1&amp;b=&quot;2&quot;\">t</a>");
    assert_pango("[**b**](https://x.org \"T<\")", "<a href=\"https://x.org\" title=\"T&lt;\"><b>b</b></a>");
    assert_pango("[empty]()", "empty");
    assert_pango("![alt *x*](i.png)", "alt <i>x</i>");
    assert_pango("a<br>b <b>x</b>", "a\nb &lt;b&gt;x&lt;/b&gt;");
    assert_pango("line1\nline2  \nline3", "line1\nline2\nline3");
    assert_pango("# Title\n\npara", "Title\n\npara");
    assert_pango("a\x01z", "a&#x1;z");
    /* while streaming: dangling markers stay literal, open spans are text */
    assert_pango("**bold so fa", "**bold so fa");
    assert_pango("`code so fa", "`code so fa");
    assert_pango("[link](http://exa", "[link](http://exa");
    assert_pango("trailing *", "trailing *");
    /* invalid UTF-8 becomes U+FFFD, never reaches Pango */
    assert_pango("caf\xc3", "caf\xef\xbf\xbd");
    /* tables */
    assert_pango("| a | b |\n|---|:-:|\n| ccc | d |",
                 "<tt><b>a</b>   <span fgalpha=\"45%\">│</span> <b>b</b>\n"
                 "<span fgalpha=\"45%\">────┼──</span>\n"
                 "ccc <span fgalpha=\"45%\">│</span> d</tt>");
    assert_pango("Table:\n| x |", "Table:\n<tt>x</tt>");
    assert_pango("| half | row\n|--", "<tt><b>half</b> <span fgalpha=\"45%\">│</span> <b>row</b>\n"
                                    "<span fgalpha=\"45%\">─────┼────</span></tt>");
    assert_pango("|", "<tt></tt>");
    assert_pango("| 表 | a |\n| b | c |", "<tt>表 <span fgalpha=\"45%\">│</span> a\nb  <span fgalpha=\"45%\">│</span> c</tt>");
}

static void
test_languages(void)
{
    const char *cases[][2] = {
        { "py", "python3" }, { "python", "python3" }, { "js", "js" }, { "javascript", "js" },
        { "sh", "sh" }, { "bash", "sh" }, { "shell", "sh" }, { "c", "c" }, { "cpp", "cpp" },
        { "c++", "cpp" }, { "rust", "rust" }, { "go", "go" }, { "json", "json" }, { "html", "html" },
        { "css", "css" }, { "yaml", "yaml" }, { "yml", "yaml" }, { "sql", "sql" }, { "ts", "typescript" },
        { "Python title=\"x.py\"", "python3" }, { "{.rust}", "rust" }, { "toml", "toml" },
        { "diff", "diff" }, { "", NULL }, { "nonsense-lang", NULL },
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++)
        g_assert_cmpstr(hearth_markdown_language_for_info(cases[i][0]), ==, cases[i][1]);
}

/* ---------------------------------------------------------------------- */
/* streaming                                                               */
/* ---------------------------------------------------------------------- */

static char *
streaming_document(void)
{
    GString *s = g_string_new(all_constructs);
    g_string_append(s,
        "\n## Streaming – ünïcødé 表格 ✓\n\n"
        "Some **bold *and italic* text** with `code` and a [link](https://gnome.org).\n\n"
        "1. first\n"
        "   ```sh\n"
        "   echo \"in a list\"\n"
        "   ```\n"
        "2. second with a longer line of text that goes on for a while\n\n"
        "| Left | Right |\n|------|-------|\n| 1 | 2 |\n\n"
        "```json\n{\"a\": [1, 2, 3]}\n```\n\n"
        "Final paragraph that keeps growing while the model types.\n");
    while (s->len < 2048)
        g_string_append(s, "More words to reach two kilobytes of *markdown* text. ");
    return g_string_free(s, FALSE);
}

static void
test_streaming(void)
{
    g_autofree char *doc = streaming_document();
    g_assert_cmpuint(strlen(doc), >=, 2048);

    HearthMarkdownView *view = shown_view();
    guint steps = 0;
    for (const char *p = doc; *p; p = g_utf8_next_char(p)) {
        g_autofree char *prefix = g_strndup(doc, (gsize)(g_utf8_next_char(p) - doc));
        hearth_markdown_view_set_text(view, prefix);
        if (++steps % 97 == 0)
            spin();
    }
    spin();
    g_autofree char *streamed = dump(GTK_WIDGET(view));

    /* the whole text at once, in a view shown the same way */
    HearthMarkdownView *fresh = shown_view();
    hearth_markdown_view_set_text(fresh, doc);
    spin();
    g_autofree char *whole = dump(GTK_WIDGET(fresh));
    g_assert_cmpstr(streamed, ==, whole);

    /* bytes, not characters: UTF-8 cut in half on every other step */
    view = shown_view();
    const char *utf8 = "## Tïtle ✓\n\nÜnïcødé *ëmph* 表格 `cödé`\n\n```py\nprint(\"héllo ✓\")\n```\n\n| ä | 表 |\n|---|---|\n| ö | ü |\n";
    for (gsize n = 0; n <= strlen(utf8); n++) {
        g_autofree char *prefix = g_strndup(utf8, n);
        hearth_markdown_view_set_text(view, prefix);
    }
    spin();
    g_autofree char *bytes_streamed = dump(GTK_WIDGET(view));
    fresh = shown_view();
    hearth_markdown_view_set_text(fresh, utf8);
    spin();
    g_autofree char *bytes_whole = dump(GTK_WIDGET(fresh));
    g_assert_cmpstr(bytes_streamed, ==, bytes_whole);
}

static void
test_incremental(void)
{
    HearthMarkdownView *view = shown_view();
    const char *base = "First paragraph here.\n\n```c\nint x;\n```\n\n- a\n- b\n\nLast paragraph";
    hearth_markdown_view_set_text(view, base);
    spin();
    g_autoptr(GPtrArray) before = find_class(GTK_WIDGET(view), "hearth-md-paragraph");
    GtkWidget *first = gtk_widget_get_first_child(GTK_WIDGET(view));
    GtkWidget *last = gtk_widget_get_last_child(GTK_WIDGET(view));
    g_assert_true(GTK_IS_LABEL(first));
    g_assert_true(GTK_IS_LABEL(last));

    /* The user selects text in the first paragraph while the last one
     * grows. (GTK keeps one label selection at a time: the PRIMARY owner.) */
    gtk_label_select_region(GTK_LABEL(first), 6, 15);
    g_autofree char *more = g_strconcat(base, " grows", NULL);
    hearth_markdown_view_set_text(view, more);
    g_assert_cmpuint(hearth_markdown_view_get_n_rebuilt_blocks(view), ==, 1);
    g_assert_true(gtk_widget_get_first_child(GTK_WIDGET(view)) == first);
    g_assert_true(gtk_widget_get_last_child(GTK_WIDGET(view)) == last);
    g_assert_cmpstr(gtk_label_get_text(GTK_LABEL(last)), ==, "Last paragraph grows");
    int s = 0, e = 0;
    g_assert_true(gtk_label_get_selection_bounds(GTK_LABEL(first), &s, &e));
    g_assert_cmpint(s, ==, 6);
    g_assert_cmpint(e, ==, 15);

    /* a selection in the growing paragraph itself survives too */
    gtk_label_select_region(GTK_LABEL(last), 0, 4);
    g_autofree char *more2 = g_strconcat(more, " more", NULL);
    hearth_markdown_view_set_text(view, more2);
    g_assert_cmpuint(hearth_markdown_view_get_n_rebuilt_blocks(view), ==, 1);
    g_assert_true(gtk_widget_get_last_child(GTK_WIDGET(view)) == last);
    g_assert_true(gtk_label_get_selection_bounds(GTK_LABEL(last), &s, &e));
    g_assert_cmpint(s, ==, 0);
    g_assert_cmpint(e, ==, 4);
    g_assert_cmpuint(before->len, ==, 4);   /* first, "a", "b", last */

    /* a new block after the last: one block built, the rest untouched */
    g_autofree char *next = g_strconcat(more2, "\n\nNew one", NULL);
    hearth_markdown_view_set_text(view, next);
    g_assert_cmpuint(hearth_markdown_view_get_n_rebuilt_blocks(view), ==, 1);
    g_assert_true(gtk_widget_get_prev_sibling(gtk_widget_get_last_child(GTK_WIDGET(view))) == last);

    /* an item appended to a list: the list and its items are kept */
    const char *list1 = "Intro\n\n- one\n- two";
    hearth_markdown_view_set_text(view, list1);
    g_autoptr(GPtrArray) items1 = find_class(GTK_WIDGET(view), "hearth-md-item");
    hearth_markdown_view_set_text(view, "Intro\n\n- one\n- two\n- th");
    g_assert_cmpuint(hearth_markdown_view_get_n_rebuilt_blocks(view), ==, 2);   /* item + paragraph */
    g_autoptr(GPtrArray) items2 = find_class(GTK_WIDGET(view), "hearth-md-item");
    g_assert_cmpuint(items2->len, ==, 3);
    g_assert_true(items1->pdata[0] == items2->pdata[0]);
    g_assert_true(items1->pdata[1] == items2->pdata[1]);
    hearth_markdown_view_set_text(view, "Intro\n\n- one\n- two\n- three");
    g_assert_cmpuint(hearth_markdown_view_get_n_rebuilt_blocks(view), ==, 1);

    /* a streaming code block keeps its view and appends to its buffer */
    hearth_markdown_view_set_text(view, "Code:\n\n```py\nx = 1\n");
    g_autoptr(GPtrArray) code1 = find_type(GTK_WIDGET(view), GTK_SOURCE_TYPE_VIEW);
    g_assert_cmpuint(code1->len, ==, 1);
    hearth_markdown_view_set_text(view, "Code:\n\n```py\nx = 1\ny = 2\n");
    g_assert_cmpuint(hearth_markdown_view_get_n_rebuilt_blocks(view), ==, 1);
    g_autoptr(GPtrArray) code2 = find_type(GTK_WIDGET(view), GTK_SOURCE_TYPE_VIEW);
    g_assert_true(code1->pdata[0] == code2->pdata[0]);
    g_autofree char *text = buffer_text(code2->pdata[0]);
    g_assert_cmpstr(text, ==, "x = 1\ny = 2");
}

static void
test_unfinished(void)
{
    HearthMarkdownView *view = shown_view();
    /* an open fence is a code block so far */
    hearth_markdown_view_set_text(view, "Here:\n\n```python\nprint('hi')\nfor i in");
    spin();
    g_autoptr(GPtrArray) code = find_type(GTK_WIDGET(view), GTK_SOURCE_TYPE_VIEW);
    g_assert_cmpuint(code->len, ==, 1);
    g_autofree char *text = buffer_text(code->pdata[0]);
    g_assert_cmpstr(text, ==, "print('hi')\nfor i in");
    g_assert_cmpstr(buffer_language(code->pdata[0]), ==, "python3");
    /* the language arrives in pieces: the same view follows it */
    hearth_markdown_view_set_text(view, "```");
    hearth_markdown_view_set_text(view, "```p");
    hearth_markdown_view_set_text(view, "```py");
    hearth_markdown_view_set_text(view, "```py\n");
    g_autoptr(GPtrArray) code2 = find_type(GTK_WIDGET(view), GTK_SOURCE_TYPE_VIEW);
    g_assert_cmpuint(code2->len, ==, 1);
    g_assert_cmpstr(buffer_language(code2->pdata[0]), ==, "python3");

    /* half a table, a dangling ** */
    hearth_markdown_view_set_text(view, "| a | b |\n|---|-");
    g_autoptr(GPtrArray) tables = find_class(GTK_WIDGET(view), "hearth-md-table");
    g_assert_cmpuint(tables->len, ==, 1);
    hearth_markdown_view_set_text(view, "Some **bold");
    g_autoptr(GPtrArray) paras = find_class(GTK_WIDGET(view), "hearth-md-paragraph");
    g_assert_cmpuint(paras->len, ==, 1);
    g_assert_cmpstr(gtk_label_get_text(paras->pdata[0]), ==, "Some **bold");
    hearth_markdown_view_set_text(view, "Some **bold**");
    g_assert_cmpstr(gtk_label_get_label(paras->pdata[0]), ==, "Some <b>bold</b>");

    /* pathological nesting is bounded */
    GString *deep = g_string_new(NULL);
    for (int i = 0; i < 200; i++)
        g_string_append(deep, "> ");
    g_string_append(deep, "deep\n\n");
    for (int i = 0; i < 100; i++)
        g_string_append_printf(deep, "%*s- level\n", i * 2, "");
    hearth_markdown_view_set_text(view, deep->str);
    spin();
    g_string_free(deep, TRUE);
}

/* Timing of a 20 KB reply, printed (not asserted). */
static void
test_timing(void)
{
    g_autofree char *unit = streaming_document();
    GString *s = g_string_new(NULL);
    while (s->len < 20 * 1024) {
        g_string_append(s, unit);
        g_string_append(s, "\n\n");
    }
    HearthMarkdownView *view = shown_view();
    gint64 t0 = g_get_monotonic_time();
    hearth_markdown_view_set_text(view, s->str);
    gint64 t1 = g_get_monotonic_time();
    guint n_blocks = hearth_markdown_view_get_n_rebuilt_blocks(view);
    g_autoptr(GPtrArray) code_views = find_type(GTK_WIDGET(view), GTK_SOURCE_TYPE_VIEW);
    spin();
    gint64 t2 = g_get_monotonic_time();
    guint frames = 200;
    for (guint i = 0; i < frames; i++) {
        g_string_append(s, "tok ");
        hearth_markdown_view_set_text(view, s->str);
    }
    gint64 t3 = g_get_monotonic_time();
    GtkWidget *fresh = g_object_ref_sink(hearth_markdown_view_new());
    gint64 t4 = g_get_monotonic_time();
    hearth_markdown_view_set_text(HEARTH_MARKDOWN_VIEW(fresh), s->str);
    gint64 t5 = g_get_monotonic_time();
    g_object_unref(fresh);
    g_printerr("# markdown timing: 20 KB reply (%zu bytes, %u blocks, %u code views): first set_text %.2f ms "
               "(then %.2f ms to lay out and draw), streaming append set_text %.3f ms per frame (avg of %u), "
               "same text in a view not shown %.2f ms\n",
               s->len, n_blocks, code_views->len, (t1 - t0) / 1000.0, (t2 - t1) / 1000.0,
               (t3 - t2) / 1000.0 / frames, frames, (t5 - t4) / 1000.0);
    g_string_free(s, TRUE);
}

/* A reasoning model's reply: its thinking apart from its answer, while it streams and once whole. */
static void
test_thinking(void)
{
    static const struct {
        const char *text, *thinking, *answer;
        gboolean closed;
    } cases[] = {
        { "<think>\nThe user greets.\n</think>\n\nHello!", "The user greets.", "Hello!", TRUE },
        { "\n<think>\nstep 1\n\nstep 2\n</think>\n\n**Four.**", "step 1\n\nstep 2", "**Four.**", TRUE },
        { "<think>\nstill going", "still going", "", FALSE },
        { "<think>", "", "", FALSE },
        { "<think>\n\n</think>\n\nNo thinking asked for.", "", "No thinking asked for.", TRUE },
        /* R1: the template opened the block; only its end is in the reply */
        { "Okay, 2 + 2 is 4.\n</think>\n\nIt is 4.", "Okay, 2 + 2 is 4.", "It is 4.", TRUE },
        { "Plain answer.", NULL, "Plain answer.", FALSE },
        { "Use `<think>` tags like <think>this</think>.", NULL, "Use `<think>` tags like <think>this</think>.",
          FALSE },
        { "", NULL, "", FALSE },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        char *thinking = NULL;
        gboolean closed = TRUE;
        const char *answer = hearth_markdown_split_thinking(cases[i].text, &thinking, &closed);
        g_assert_cmpstr(thinking, ==, cases[i].thinking);
        g_assert_cmpstr(answer, ==, cases[i].answer);
        g_assert_cmpint(closed, ==, cases[i].closed);
        g_free(thinking);
    }
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    if (!gtk_init_check()) {
        g_printerr("SKIP: no display\n");
        return 77;
    }
    adw_init();
    gtk_source_init();
    window = gtk_window_new();
    gtk_window_set_default_size(GTK_WINDOW(window), 700, 900);

    g_test_add_func("/markdown/pango", test_pango);
    g_test_add_func("/markdown/languages", test_languages);
    g_test_add_func("/markdown/constructs", test_constructs);
    g_test_add_func("/markdown/incremental", test_incremental);
    g_test_add_func("/markdown/unfinished", test_unfinished);
    g_test_add_func("/markdown/streaming", test_streaming);
    g_test_add_func("/markdown/timing", test_timing);
    g_test_add_func("/markdown/thinking", test_thinking);
    int rc = g_test_run();
    gtk_window_destroy(GTK_WINDOW(window));
    return rc;
}
