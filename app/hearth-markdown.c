#include "hearth-markdown.h"

#include <adwaita.h>
#include <cmark.h>
#include <glib/gi18n.h>
#include <gtksourceview/gtksource.h>
#include <string.h>

/*
 * Rendering model
 *
 * Every cmark block node maps to an MdBlock that remembers the widgets made
 * for it and a key describing what they show (the Pango markup of a
 * paragraph, the text of a code block, the attributes of a list…). A render
 * walks the new cmark tree and the previous MdBlock tree side by side:
 * a block whose key is unchanged is left alone (its widgets, its selection),
 * a leaf of the same kind is updated in place, a container of the same kind
 * is reconciled child by child, and anything else is rebuilt. While a reply
 * streams only its last block changes, so a frame costs one cmark parse plus
 * one label or buffer update.
 */

#define MD_MAX_DEPTH 16        /* deeper quotes/lists render as plain text */
#define MD_SPACING 10          /* between top-level blocks */
#define MD_COPIED_SECONDS 2

/* Inline code: monospace on a translucent grey that works on light and dark. */
#define MD_CODE_OPEN "<tt><span background=\"#808080\" bgalpha=\"22%\">"
#define MD_CODE_CLOSE "</span></tt>"
#define MD_DIM_OPEN "<span fgalpha=\"45%\">"
#define MD_DIM_CLOSE "</span>"

static const char md_css[] =
    "markdownview .hearth-md-quote {"
    "  border-left: 3px solid alpha(currentColor, 0.25);"
    "  padding-left: 12px;"
    "}"
    "markdownview .hearth-md-code {"
    "  border-radius: 8px;"
    "}"
    "markdownview .hearth-md-code-header {"
    "  padding: 2px 2px 2px 12px;"
    "  background-color: alpha(currentColor, 0.05);"
    "  border-bottom: 1px solid alpha(currentColor, 0.10);"
    "}"
    "markdownview .hearth-md-code-header button {"
    "  min-height: 24px;"
    "  padding: 2px 8px;"
    "}"
    "markdownview .hearth-md-rule {"
    "  margin-top: 4px;"
    "  margin-bottom: 4px;"
    "}";

typedef enum {
    MD_PARAGRAPH,
    MD_HEADING,
    MD_CODE,
    MD_HTML,
    MD_RULE,
    MD_QUOTE,
    MD_LIST,
    MD_ITEM,
    MD_FLAT,        /* too deeply nested, or unknown: its source as text */
} MdKind;

typedef struct {
    MdKind kind;
    GtkWidget *widget;      /* outermost widget, a child of the parent's box */
    GtkWidget *box;         /* containers: where the children's widgets go */
    GPtrArray *children;    /* containers: MdBlock* */
    char *key;              /* what the widgets show (see block_update) */
    int level;              /* heading level */
    char *shape;            /* paragraph: 'p' (text) or 't' (table) per segment */
    GPtrArray *labels;      /* paragraph: the GtkLabel of each segment (borrowed) */
    GtkWidget *marker;      /* list item: the bullet or number label */
    GtkSourceBuffer *buffer;/* code block (owned by its view) */
    GtkWidget *code_title;  /* code block: the language name in the header */
    GtkWidget *code_view;
    char *code;             /* code block: text in the buffer */
    char *info;             /* code block: normalized info word */
} MdBlock;

struct _HearthMarkdownView {
    GtkWidget parent_instance;
    char *text;
    GPtrArray *blocks;      /* MdBlock*, the top-level blocks */
    guint n_rebuilt;
};

G_DEFINE_FINAL_TYPE(HearthMarkdownView, hearth_markdown_view, GTK_TYPE_WIDGET)

enum {
    PROP_0,
    PROP_TEXT,
    N_PROPS
};

static GParamSpec *properties[N_PROPS];

/* ------------------------------------------------------------------------ */
/* Inline content → Pango markup                                            */
/* ------------------------------------------------------------------------ */

typedef struct {
    GString *markup;
    GString *plain;         /* optional: the visible text… */
    gsize width;            /* …and its width in monospace cells */
    int link_depth;
} Inl;

static gsize
text_cells(const char *s, gsize len)
{
    gsize w = 0;
    const char *end = s + len;
    for (const char *p = s; p < end && *p; p = g_utf8_next_char(p)) {
        gunichar c = g_utf8_get_char(p);
        if (g_unichar_iszerowidth(c))
            continue;
        w += g_unichar_iswide(c) ? 2 : 1;
    }
    return w;
}

static void
inl_text(Inl *o, const char *s, gssize len)
{
    if (!s)
        return;
    if (len < 0)
        len = (gssize)strlen(s);
    if (len == 0)
        return;
    g_autofree char *esc = g_markup_escape_text(s, len);
    g_string_append(o->markup, esc);
    if (o->plain) {             /* table cells: their width is needed too */
        g_string_append_len(o->plain, s, len);
        o->width += text_cells(s, (gsize)len);
    }
}

static gboolean
is_html_br(const char *html)
{
    if (!html || g_ascii_strncasecmp(html, "<br", 3) != 0)
        return FALSE;
    for (const char *p = html + 3; *p; p++)
        if (*p != ' ' && *p != '\t' && *p != '/' && *p != '>')
            return FALSE;
    return TRUE;
}

static gboolean
link_is_openable(const char *url)
{
    const char *scheme = url ? g_uri_peek_scheme(url) : NULL;
    return scheme && (g_str_equal(scheme, "http") || g_str_equal(scheme, "https") ||
                      g_str_equal(scheme, "mailto") || g_str_equal(scheme, "ftp"));
}

/* Renders root (an inline node) and everything under it. Iterative: cmark's
 * iterator needs no recursion however deep the emphasis nests. */
static void
render_inline_tree(Inl *o, cmark_node *root)
{
    cmark_iter *iter = cmark_iter_new(root);
    cmark_event_type ev;
    while ((ev = cmark_iter_next(iter)) != CMARK_EVENT_DONE) {
        cmark_node *cur = cmark_iter_get_node(iter);
        gboolean entering = ev == CMARK_EVENT_ENTER;
        switch (cmark_node_get_type(cur)) {
        case CMARK_NODE_TEXT:
            inl_text(o, cmark_node_get_literal(cur), -1);
            break;
        case CMARK_NODE_CODE:
            g_string_append(o->markup, MD_CODE_OPEN);
            inl_text(o, cmark_node_get_literal(cur), -1);
            g_string_append(o->markup, MD_CODE_CLOSE);
            break;
        case CMARK_NODE_SOFTBREAK:
        case CMARK_NODE_LINEBREAK:
            /* Chat models mean their single newlines: keep them. */
            inl_text(o, "\n", 1);
            break;
        case CMARK_NODE_HTML_INLINE: {
            const char *lit = cmark_node_get_literal(cur);
            if (is_html_br(lit))
                inl_text(o, "\n", 1);
            else
                inl_text(o, lit, -1);
            break;
        }
        case CMARK_NODE_EMPH:
            g_string_append(o->markup, entering ? "<i>" : "</i>");
            break;
        case CMARK_NODE_STRONG:
            g_string_append(o->markup, entering ? "<b>" : "</b>");
            break;
        case CMARK_NODE_LINK: {
            const char *url = cmark_node_get_url(cur);
            if (!url || !*url)
                break;
            if (entering) {
                if (o->link_depth++ > 0)
                    break;
                const char *title = cmark_node_get_title(cur);
                g_autofree char *esc_url = g_markup_escape_text(url, -1);
                g_autofree char *esc_title = g_markup_escape_text(title && *title ? title : url, -1);
                g_string_append_printf(o->markup, "<a href=\"%s\" title=\"%s\">", esc_url, esc_title);
            } else if (--o->link_depth == 0) {
                g_string_append(o->markup, "</a>");
            }
            break;
        }
        case CMARK_NODE_IMAGE:
            /* Images show as their alt text, which is their children. */
            break;
        default:
            break;
        }
    }
    cmark_iter_free(iter);
}

static void
render_inline_range(Inl *o, cmark_node *first, cmark_node *stop)
{
    for (cmark_node *n = first; n && n != stop; n = cmark_node_next(n))
        render_inline_tree(o, n);
}

static char *
render_inline_children(cmark_node *block)
{
    Inl o = { g_string_new(NULL), NULL, 0, 0 };
    render_inline_range(&o, cmark_node_first_child(block), NULL);
    return g_string_free(o.markup, FALSE);
}

/* ------------------------------------------------------------------------ */
/* Tables as text                                                           */
/* ------------------------------------------------------------------------ */

/* Core cmark has no tables: a GFM table arrives as paragraph lines that start
 * with '|'. They are split into cells, the columns padded to a common width
 * and drawn in monospace with box-drawing rules; cells keep their inline
 * formatting. A half-streamed table renders with the rows it has so far. */

typedef struct {
    char *markup;
    char *plain;
    gsize width;
} TCell;

typedef struct {
    GPtrArray *cells;       /* TCell* */
    gboolean delim;         /* |---|:--:| */
} TRow;

static void
tcell_free(gpointer p)
{
    TCell *c = p;
    g_free(c->markup);
    g_free(c->plain);
    g_free(c);
}

static void
trow_free(gpointer p)
{
    TRow *r = p;
    g_ptr_array_unref(r->cells);
    g_free(r);
}

static gboolean
is_break(cmark_node *n)
{
    cmark_node_type t = cmark_node_get_type(n);
    return t == CMARK_NODE_SOFTBREAK || t == CMARK_NODE_LINEBREAK;
}

static gboolean
is_table_line(cmark_node *first, cmark_node *stop)
{
    if (!first || first == stop || cmark_node_get_type(first) != CMARK_NODE_TEXT)
        return FALSE;
    const char *lit = cmark_node_get_literal(first);
    return lit && lit[0] == '|';
}

static void
cell_reset(Inl *cur)
{
    cur->markup = g_string_new(NULL);
    cur->plain = g_string_new(NULL);
    cur->width = 0;
    cur->link_depth = 0;
}

static void
cell_push(GPtrArray *cells, Inl *cur)
{
    /* Trailing blanks that are plain text (not inside a code span). */
    while (cur->plain->len > 0 && cur->markup->len > 0) {
        char pc = cur->plain->str[cur->plain->len - 1];
        char mc = cur->markup->str[cur->markup->len - 1];
        if ((pc != ' ' && pc != '\t') || pc != mc)
            break;
        g_string_truncate(cur->plain, cur->plain->len - 1);
        g_string_truncate(cur->markup, cur->markup->len - 1);
        cur->width--;
    }
    TCell *c = g_new0(TCell, 1);
    c->width = cur->width;
    c->markup = g_string_free(cur->markup, FALSE);
    c->plain = g_string_free(cur->plain, FALSE);
    g_ptr_array_add(cells, c);
}

static void
cell_discard(Inl *cur)
{
    g_string_free(cur->markup, TRUE);
    g_string_free(cur->plain, TRUE);
}

static void
cell_text(Inl *cur, const char *s, gsize len)
{
    if (cur->plain->len == 0) {            /* leading blanks */
        while (len > 0 && (*s == ' ' || *s == '\t')) {
            s++;
            len--;
        }
    }
    inl_text(cur, s, (gssize)len);
}

static gboolean
is_delim_cell(const char *s)
{
    if (*s == ':')
        s++;
    if (*s != '-')
        return FALSE;
    while (*s == '-')
        s++;
    if (*s == ':')
        s++;
    return *s == '\0';
}

static TRow *
table_row_new(cmark_node *first, cmark_node *stop)
{
    TRow *row = g_new0(TRow, 1);
    row->cells = g_ptr_array_new_with_free_func(tcell_free);
    Inl cur;
    cell_reset(&cur);
    guint pipes = 0;
    for (cmark_node *n = first; n && n != stop; n = cmark_node_next(n)) {
        if (cmark_node_get_type(n) != CMARK_NODE_TEXT) {
            render_inline_tree(&cur, n);
            continue;
        }
        const char *s = cmark_node_get_literal(n);
        for (const char *bar; (bar = strchr(s, '|')); s = bar + 1) {
            cell_text(&cur, s, (gsize)(bar - s));
            /* The line starts with '|': what precedes the first one is empty. */
            if (pipes++ > 0)
                cell_push(row->cells, &cur);
            else
                cell_discard(&cur);
            cell_reset(&cur);
        }
        cell_text(&cur, s, strlen(s));
    }
    if (cur.plain->len > 0)                /* a row without its closing '|' */
        cell_push(row->cells, &cur);
    else
        cell_discard(&cur);

    row->delim = row->cells->len > 0;
    for (guint i = 0; i < row->cells->len && row->delim; i++)
        row->delim = is_delim_cell(((TCell *)row->cells->pdata[i])->plain);
    return row;
}

static void
append_repeat(GString *s, const char *unit, gsize n)
{
    for (gsize i = 0; i < n; i++)
        g_string_append(s, unit);
}

static void
append_spaces(GString *s, gsize n)
{
    for (gsize i = 0; i < n; i++)
        g_string_append_c(s, ' ');
}

static char *
table_render(GPtrArray *rows)
{
    guint ncols = 0;
    for (guint r = 0; r < rows->len; r++)
        ncols = MAX(ncols, ((TRow *)rows->pdata[r])->cells->len);

    gsize *widths = g_new0(gsize, ncols + 1);
    char *align = g_new0(char, ncols + 1);   /* 'l', 'c', 'r' */
    memset(align, 'l', ncols);
    int header_end = -1;                       /* rows before it are the header */
    for (guint r = 0; r < rows->len; r++) {
        TRow *row = rows->pdata[r];
        for (guint c = 0; c < row->cells->len; c++) {
            TCell *cell = row->cells->pdata[c];
            if (row->delim) {
                widths[c] = MAX(widths[c], 1);
                if (header_end < 0) {
                    gsize l = strlen(cell->plain);
                    gboolean left = cell->plain[0] == ':', right = l > 1 && cell->plain[l - 1] == ':';
                    align[c] = left && right ? 'c' : right ? 'r' : 'l';
                }
            } else {
                widths[c] = MAX(widths[c], cell->width);
            }
        }
        if (row->delim && header_end < 0)
            header_end = (int)r;
    }

    GString *out = g_string_new("<tt>");
    for (guint r = 0; r < rows->len; r++) {
        TRow *row = rows->pdata[r];
        if (r > 0)
            g_string_append_c(out, '\n');
        if (row->delim) {
            g_string_append(out, MD_DIM_OPEN);
            for (guint c = 0; c < ncols; c++) {
                if (c > 0)
                    g_string_append(out, "─┼─");
                append_repeat(out, "─", widths[c]);
            }
            g_string_append(out, MD_DIM_CLOSE);
            continue;
        }
        gboolean header = (int)r < header_end;
        for (guint c = 0; c < ncols; c++) {
            TCell *cell = c < row->cells->len ? row->cells->pdata[c] : NULL;
            gsize w = cell ? cell->width : 0;
            gsize pad = widths[c] > w ? widths[c] - w : 0;
            gsize before = align[c] == 'r' ? pad : align[c] == 'c' ? pad / 2 : 0;
            gsize after = pad - before;
            if (c > 0)
                g_string_append(out, " " MD_DIM_OPEN "│" MD_DIM_CLOSE " ");
            append_spaces(out, before);
            if (cell && cell->markup[0]) {
                if (header)
                    g_string_append(out, "<b>");
                g_string_append(out, cell->markup);
                if (header)
                    g_string_append(out, "</b>");
            }
            if (c + 1 < ncols)
                append_spaces(out, after);
        }
    }
    g_string_append(out, "</tt>");
    g_free(widths);
    g_free(align);
    return g_string_free(out, FALSE);
}

/* ------------------------------------------------------------------------ */
/* Paragraphs: text segments and table segments                             */
/* ------------------------------------------------------------------------ */

/* Splits paragraph into segments of ordinary lines and of table lines.
 * shape gets 'p' or 't' per segment, markups the markup of each (owned). */
static void
render_paragraph(cmark_node *para, GString *shape, GPtrArray *markups)
{
    GString *text = NULL;
    GPtrArray *rows = NULL;
    cmark_node *n = cmark_node_first_child(para);
    while (n) {
        cmark_node *brk = n;
        while (brk && !is_break(brk))
            brk = cmark_node_next(brk);
        if (is_table_line(n, brk)) {
            if (text) {
                g_string_append_c(shape, 'p');
                g_ptr_array_add(markups, g_string_free(text, FALSE));
                text = NULL;
            }
            if (!rows)
                rows = g_ptr_array_new_with_free_func(trow_free);
            g_ptr_array_add(rows, table_row_new(n, brk));
        } else {
            if (rows) {
                g_string_append_c(shape, 't');
                g_ptr_array_add(markups, table_render(rows));
                g_clear_pointer(&rows, g_ptr_array_unref);
            }
            if (text)
                g_string_append_c(text, '\n');
            else
                text = g_string_new(NULL);
            Inl o = { text, NULL, 0, 0 };
            render_inline_range(&o, n, brk);
        }
        n = brk ? cmark_node_next(brk) : NULL;
    }
    if (text) {
        g_string_append_c(shape, 'p');
        g_ptr_array_add(markups, g_string_free(text, FALSE));
    }
    if (rows) {
        g_string_append_c(shape, 't');
        g_ptr_array_add(markups, table_render(rows));
        g_ptr_array_unref(rows);
    }
    if (shape->len == 0) {
        g_string_append_c(shape, 'p');
        g_ptr_array_add(markups, g_strdup(""));
    }
}

static char *
literal_without_final_newline(const char *lit)
{
    if (!lit)
        return g_strdup("");
    gsize len = strlen(lit);
    if (len > 0 && lit[len - 1] == '\n')
        len--;
    return g_strndup(lit, len);
}

char *
hearth_markdown_to_pango(const char *markdown)
{
    if (!markdown)
        markdown = "";
    cmark_node *doc = cmark_parse_document(markdown, strlen(markdown), CMARK_OPT_VALIDATE_UTF8);
    GString *out = g_string_new(NULL);
    cmark_iter *iter = cmark_iter_new(doc);
    cmark_event_type ev;
    while ((ev = cmark_iter_next(iter)) != CMARK_EVENT_DONE) {
        if (ev != CMARK_EVENT_ENTER)
            continue;
        cmark_node *cur = cmark_iter_get_node(iter);
        char *block = NULL;
        switch (cmark_node_get_type(cur)) {
        case CMARK_NODE_PARAGRAPH: {
            g_autoptr(GString) shape = g_string_new(NULL);
            g_autoptr(GPtrArray) markups = g_ptr_array_new_with_free_func(g_free);
            render_paragraph(cur, shape, markups);
            g_ptr_array_add(markups, NULL);
            block = g_strjoinv("\n", (char **)markups->pdata);
            break;
        }
        case CMARK_NODE_HEADING:
            block = render_inline_children(cur);
            break;
        case CMARK_NODE_CODE_BLOCK:
        case CMARK_NODE_HTML_BLOCK: {
            g_autofree char *lit = literal_without_final_newline(cmark_node_get_literal(cur));
            g_autofree char *esc = g_markup_escape_text(lit, -1);
            block = g_strdup_printf("<tt>%s</tt>", esc);
            break;
        }
        default:
            break;
        }
        if (block) {
            if (out->len > 0)
                g_string_append(out, "\n\n");
            g_string_append(out, block);
            g_free(block);
        }
    }
    cmark_iter_free(iter);
    cmark_node_free(doc);
    return g_string_free(out, FALSE);
}

/* ------------------------------------------------------------------------ */
/* Code languages                                                           */
/* ------------------------------------------------------------------------ */

static const struct {
    const char *alias;
    const char *id;
} md_languages[] = {
    { "py", "python3" }, { "python", "python3" }, { "python3", "python3" }, { "py3", "python3" },
    { "pycon", "python3" }, { "python2", "python" }, { "py2", "python" },
    { "js", "js" }, { "javascript", "js" }, { "node", "js" }, { "mjs", "js" }, { "cjs", "js" },
    { "ts", "typescript" }, { "typescript", "typescript" }, { "tsx", "typescript-jsx" }, { "jsx", "jsx" },
    { "sh", "sh" }, { "bash", "sh" }, { "shell", "sh" }, { "zsh", "sh" }, { "ksh", "sh" },
    { "console", "sh" }, { "shell-session", "sh" }, { "shellsession", "sh" }, { "fish", "fish" },
    { "c", "c" }, { "h", "chdr" }, { "cpp", "cpp" }, { "c++", "cpp" }, { "cxx", "cpp" }, { "cc", "cpp" },
    { "hpp", "cpphdr" }, { "cs", "c-sharp" }, { "csharp", "c-sharp" }, { "c#", "c-sharp" },
    { "objc", "objc" }, { "objective-c", "objc" }, { "cuda", "cuda" }, { "cu", "cuda" },
    { "rs", "rust" }, { "rust", "rust" }, { "go", "go" }, { "golang", "go" },
    { "json", "json" }, { "jsonc", "json" }, { "json5", "json" }, { "jsonl", "json" },
    { "html", "html" }, { "htm", "html" }, { "xhtml", "html" }, { "xml", "xml" }, { "svg", "xml" },
    { "css", "css" }, { "scss", "scss" }, { "less", "less" },
    { "yaml", "yaml" }, { "yml", "yaml" }, { "toml", "toml" }, { "ini", "ini" }, { "cfg", "ini" },
    { "sql", "sql" }, { "md", "markdown" }, { "markdown", "markdown" },
    { "diff", "diff" }, { "patch", "diff" }, { "dockerfile", "docker" }, { "docker", "docker" },
    { "make", "makefile" }, { "makefile", "makefile" }, { "mk", "makefile" }, { "cmake", "cmake" },
    { "meson", "meson" }, { "rb", "ruby" }, { "ruby", "ruby" }, { "java", "java" },
    { "kt", "kotlin" }, { "kotlin", "kotlin" }, { "swift", "swift" }, { "php", "php" },
    { "lua", "lua" }, { "pl", "perl" }, { "perl", "perl" }, { "ps1", "powershell" },
    { "powershell", "powershell" }, { "pwsh", "powershell" }, { "hs", "haskell" },
    { "haskell", "haskell" }, { "scala", "scala" }, { "dart", "dart" }, { "tex", "latex" },
    { "latex", "latex" }, { "r", "r" }, { "julia", "julia" }, { "jl", "julia" }, { "vala", "vala" },
    { "glsl", "glsl" }, { "proto", "protobuf" }, { "protobuf", "protobuf" }, { "ocaml", "ocaml" },
    { "ml", "ocaml" }, { "fs", "fsharp" }, { "fsharp", "fsharp" }, { "erlang", "erlang" },
    { "elixir", "elixir" }, { "vb", "vbnet" }, { "asm", "nasm" }, { "llvm", "llvm" },
};

/* The first word of an info string, lower-cased, without pandoc's "{.lang}". */
static char *
info_word(const char *info)
{
    if (!info)
        return g_strdup("");
    while (*info == ' ' || *info == '\t' || *info == '{' || *info == '.')
        info++;
    gsize n = strcspn(info, " \t{}");
    return g_ascii_strdown(info, (gssize)n);
}

static GtkSourceLanguage *
language_for_word(const char *word)
{
    if (!word || !*word)
        return NULL;
    GtkSourceLanguageManager *lm = gtk_source_language_manager_get_default();
    for (gsize i = 0; i < G_N_ELEMENTS(md_languages); i++)
        if (g_str_equal(word, md_languages[i].alias)) {
            GtkSourceLanguage *lang = gtk_source_language_manager_get_language(lm, md_languages[i].id);
            if (lang)
                return lang;
            break;
        }
    GtkSourceLanguage *lang = gtk_source_language_manager_get_language(lm, word);
    if (lang)
        return lang;
    if (strchr(word, '/') == NULL) {
        g_autofree char *file = g_strconcat("file.", word, NULL);
        return gtk_source_language_manager_guess_language(lm, file, NULL);
    }
    return NULL;
}

const char *
hearth_markdown_language_for_info(const char *info)
{
    g_autofree char *word = info_word(info);
    GtkSourceLanguage *lang = language_for_word(word);
    return lang ? gtk_source_language_get_id(lang) : NULL;
}

/* ------------------------------------------------------------------------ */
/* Widgets                                                                  */
/* ------------------------------------------------------------------------ */

static void
md_block_free(gpointer p)
{
    MdBlock *b = p;
    if (!b)
        return;
    g_clear_pointer(&b->children, g_ptr_array_unref);
    g_clear_pointer(&b->labels, g_ptr_array_unref);
    g_free(b->key);
    g_free(b->shape);
    g_free(b->code);
    g_free(b->info);
    g_free(b);
}

static MdBlock *
md_block_new(MdKind kind)
{
    MdBlock *b = g_new0(MdBlock, 1);
    b->kind = kind;
    return b;
}

static gboolean
on_activate_link(GtkLabel *label, const char *uri, gpointer user_data)
{
    if (link_is_openable(uri)) {
        GtkRoot *root = gtk_widget_get_root(GTK_WIDGET(label));
        gtk_show_uri(GTK_IS_WINDOW(root) ? GTK_WINDOW(root) : NULL, uri, GDK_CURRENT_TIME);
    }
    /* Other links (relative, file:, javascript:…) do nothing. */
    return TRUE;
}

static GtkWidget *
md_label_new(const char *markup, gboolean wrap, GtkAccessibleRole role)
{
    GtkWidget *label = g_object_new(GTK_TYPE_LABEL, "accessible-role", role, NULL);
    gtk_label_set_markup(GTK_LABEL(label), markup);
    gtk_label_set_xalign(GTK_LABEL(label), 0);
    gtk_label_set_selectable(GTK_LABEL(label), TRUE);
    if (wrap) {
        gtk_label_set_wrap(GTK_LABEL(label), TRUE);
        gtk_label_set_wrap_mode(GTK_LABEL(label), PANGO_WRAP_WORD_CHAR);
    }
    g_signal_connect(label, "activate-link", G_CALLBACK(on_activate_link), NULL);
    return label;
}

/* Keeps a selection the user made in a label whose text only grew. */
static void
label_update_markup(GtkLabel *label, const char *markup)
{
    int start = 0, end = 0;
    g_autofree char *old_text = NULL;
    if (gtk_label_get_selection_bounds(label, &start, &end) && start != end)
        old_text = g_strdup(gtk_label_get_text(label));
    gtk_label_set_markup(label, markup);
    if (old_text && g_str_has_prefix(gtk_label_get_text(label), old_text))
        gtk_label_select_region(label, start, end);
}

/* Shift+wheel scrolls a code block or table sideways. */
static gboolean
on_hscroller_scroll(GtkEventControllerScroll *controller, double dx, double dy, gpointer user_data)
{
    GdkModifierType state = gtk_event_controller_get_current_event_state(GTK_EVENT_CONTROLLER(controller));
    if (!(state & GDK_SHIFT_MASK) || dy == 0)
        return GDK_EVENT_PROPAGATE;
    GtkAdjustment *adj = gtk_scrolled_window_get_hadjustment(GTK_SCROLLED_WINDOW(user_data));
    double lower = gtk_adjustment_get_lower(adj), page = gtk_adjustment_get_page_size(adj);
    double upper = gtk_adjustment_get_upper(adj);
    if (upper - lower <= page)
        return GDK_EVENT_PROPAGATE;
    double step = gtk_event_controller_scroll_get_unit(controller) == GDK_SCROLL_UNIT_WHEEL ? MAX(page / 5, 24) : 1;
    gtk_adjustment_set_value(adj, CLAMP(gtk_adjustment_get_value(adj) + dy * step, lower, upper - page));
    return GDK_EVENT_STOP;
}

/* A horizontally scrolling box for code and tables. GtkScrolledWindow (4.8)
 * stops every wheel event once it can scroll either way, so a wide code
 * block would stop the chat from scrolling under the pointer: its scroll
 * controllers are told to look at horizontal motion only, and Shift+wheel is
 * handled here. */
static GtkWidget *
hscroller_new(GtkWidget *child)
{
    GtkWidget *sw = gtk_scrolled_window_new();
    gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(sw), GTK_POLICY_AUTOMATIC, GTK_POLICY_NEVER);
    gtk_scrolled_window_set_propagate_natural_height(GTK_SCROLLED_WINDOW(sw), TRUE);
    gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(sw), child);

    GListModel *controllers = gtk_widget_observe_controllers(sw);
    for (guint i = 0; i < g_list_model_get_n_items(controllers); i++) {
        g_autoptr(GObject) controller = g_list_model_get_item(controllers, i);
        if (!GTK_IS_EVENT_CONTROLLER_SCROLL(controller))
            continue;
        GtkEventControllerScroll *scroll = GTK_EVENT_CONTROLLER_SCROLL(controller);
        gtk_event_controller_scroll_set_flags(
            scroll, gtk_event_controller_scroll_get_flags(scroll) & ~GTK_EVENT_CONTROLLER_SCROLL_VERTICAL);
    }
    g_object_unref(controllers);

    GtkEventController *shift = gtk_event_controller_scroll_new(GTK_EVENT_CONTROLLER_SCROLL_VERTICAL);
    gtk_event_controller_set_name(shift, "hearth-md-shift-scroll");
    g_signal_connect(shift, "scroll", G_CALLBACK(on_hscroller_scroll), sw);
    gtk_widget_add_controller(sw, shift);
    return sw;
}

static GtkWidget *
vbox_new(int spacing, const char *css_class)
{
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, spacing);
    if (css_class)
        gtk_widget_add_css_class(box, css_class);
    return box;
}

/* --- paragraphs --------------------------------------------------------- */

static GtkWidget *
segment_widget_new(char kind, const char *markup, GtkWidget **label_out)
{
    if (kind == 't') {
        GtkWidget *label = md_label_new(markup, FALSE, GTK_ACCESSIBLE_ROLE_LABEL);
        gtk_widget_add_css_class(label, "hearth-md-table");
        *label_out = label;
        GtkWidget *sw = hscroller_new(label);
        gtk_widget_add_css_class(sw, "hearth-md-table-scroller");
        return sw;
    }
    GtkWidget *label = md_label_new(markup, TRUE, GTK_ACCESSIBLE_ROLE_LABEL);
    gtk_widget_add_css_class(label, "hearth-md-paragraph");
    *label_out = label;
    return label;
}

static MdBlock *
build_paragraph(cmark_node *node)
{
    MdBlock *b = md_block_new(MD_PARAGRAPH);
    g_autoptr(GString) shape = g_string_new(NULL);
    g_autoptr(GPtrArray) markups = g_ptr_array_new_with_free_func(g_free);
    render_paragraph(node, shape, markups);
    b->shape = g_strdup(shape->str);
    b->labels = g_ptr_array_new();
    if (shape->len == 1) {
        GtkWidget *label;
        b->widget = segment_widget_new(shape->str[0], markups->pdata[0], &label);
        g_ptr_array_add(b->labels, label);
    } else {
        b->widget = vbox_new(MD_SPACING / 2, NULL);
        for (guint i = 0; i < shape->len; i++) {
            GtkWidget *label;
            gtk_box_append(GTK_BOX(b->widget), segment_widget_new(shape->str[i], markups->pdata[i], &label));
            g_ptr_array_add(b->labels, label);
        }
    }
    /* The key is every segment's markup, the label's own copy being kept
     * by GtkLabel itself. */
    g_ptr_array_add(markups, NULL);
    b->key = g_strjoinv("\x1f", (char **)markups->pdata);
    return b;
}

static gboolean
update_paragraph(HearthMarkdownView *self, MdBlock *b, cmark_node *node)
{
    g_autoptr(GString) shape = g_string_new(NULL);
    g_autoptr(GPtrArray) markups = g_ptr_array_new_with_free_func(g_free);
    render_paragraph(node, shape, markups);
    if (!g_str_equal(shape->str, b->shape))
        return FALSE;
    g_ptr_array_add(markups, NULL);
    g_autofree char *key = g_strjoinv("\x1f", (char **)markups->pdata);
    if (g_str_equal(key, b->key))
        return TRUE;
    for (guint i = 0; i < shape->len; i++) {
        GtkLabel *label = b->labels->pdata[i];
        if (!g_str_equal(gtk_label_get_label(label), markups->pdata[i]))
            label_update_markup(label, markups->pdata[i]);
    }
    g_free(b->key);
    b->key = g_steal_pointer(&key);
    self->n_rebuilt++;
    return TRUE;
}

/* --- headings ----------------------------------------------------------- */

static const char *
heading_class(int level)
{
    switch (level) {
    case 1: return "title-1";
    case 2: return "title-2";
    case 3: return "title-3";
    case 4: return "title-4";
    default: return "heading";
    }
}

static MdBlock *
build_heading(cmark_node *node)
{
    MdBlock *b = md_block_new(MD_HEADING);
    b->level = cmark_node_get_heading_level(node);
    b->key = render_inline_children(node);
    b->widget = md_label_new(b->key, TRUE, GTK_ACCESSIBLE_ROLE_HEADING);
    gtk_widget_add_css_class(b->widget, heading_class(b->level));
    gtk_widget_add_css_class(b->widget, "hearth-md-heading");
    gtk_accessible_update_property(GTK_ACCESSIBLE(b->widget), GTK_ACCESSIBLE_PROPERTY_LEVEL, b->level, -1);
    b->labels = g_ptr_array_new();
    g_ptr_array_add(b->labels, b->widget);
    return b;
}

static gboolean
update_heading(HearthMarkdownView *self, MdBlock *b, cmark_node *node)
{
    if (cmark_node_get_heading_level(node) != b->level)
        return FALSE;
    g_autofree char *markup = render_inline_children(node);
    if (g_str_equal(markup, b->key))
        return TRUE;
    label_update_markup(GTK_LABEL(b->widget), markup);
    g_free(b->key);
    b->key = g_steal_pointer(&markup);
    self->n_rebuilt++;
    return TRUE;
}

/* --- leaf text blocks: HTML blocks and too-deep containers ---------------- */

static char *
plain_block_markup(cmark_node *node, MdKind kind)
{
    g_autofree char *text = NULL;
    if (kind == MD_HTML)
        text = literal_without_final_newline(cmark_node_get_literal(node));
    else {
        char *md = cmark_render_commonmark(node, CMARK_OPT_DEFAULT, 0);
        text = literal_without_final_newline(md);
        free(md);
    }
    return g_markup_escape_text(text, -1);
}

static MdBlock *
build_plain(cmark_node *node, MdKind kind)
{
    MdBlock *b = md_block_new(kind);
    b->key = plain_block_markup(node, kind);
    b->widget = md_label_new(b->key, TRUE, GTK_ACCESSIBLE_ROLE_LABEL);
    gtk_widget_add_css_class(b->widget, kind == MD_HTML ? "hearth-md-html" : "hearth-md-flat");
    return b;
}

static gboolean
update_plain(HearthMarkdownView *self, MdBlock *b, cmark_node *node)
{
    g_autofree char *markup = plain_block_markup(node, b->kind);
    if (g_str_equal(markup, b->key))
        return TRUE;
    label_update_markup(GTK_LABEL(b->widget), markup);
    g_free(b->key);
    b->key = g_steal_pointer(&markup);
    self->n_rebuilt++;
    return TRUE;
}

/* --- code blocks -------------------------------------------------------- */

static void
update_style_scheme(GtkSourceBuffer *buffer)
{
    AdwStyleManager *sm = adw_style_manager_get_default();
    const char *id = adw_style_manager_get_dark(sm) ? "Adwaita-dark" : "Adwaita";
    GtkSourceStyleScheme *scheme =
        gtk_source_style_scheme_manager_get_scheme(gtk_source_style_scheme_manager_get_default(), id);
    if (scheme)
        gtk_source_buffer_set_style_scheme(buffer, scheme);
}

static void
on_dark_changed(GObject *style_manager, GParamSpec *pspec, gpointer user_data)
{
    update_style_scheme(GTK_SOURCE_BUFFER(user_data));
}

static void
copy_button_set_copied(GtkButton *button, gboolean copied)
{
    GtkWidget *content = gtk_button_get_child(button);
    if (!ADW_IS_BUTTON_CONTENT(content))
        return;
    adw_button_content_set_icon_name(ADW_BUTTON_CONTENT(content),
                                     copied ? "object-select-symbolic" : "edit-copy-symbolic");
    adw_button_content_set_label(ADW_BUTTON_CONTENT(content), copied ? _("Copied") : _("Copy"));
}

/* AdwButtonContent makes the button "labelled by" its label when it is
 * rooted, and GTK 4.8 then names the button "Copy code Copy" (its own name,
 * then the label's): the button keeps its own name alone. */
static void
on_copy_button_map(GtkWidget *button)
{
    gtk_accessible_reset_relation(GTK_ACCESSIBLE(button), GTK_ACCESSIBLE_RELATION_LABELLED_BY);
}

static gboolean
on_copied_timeout(gpointer user_data)
{
    GtkButton *button = user_data;
    g_object_steal_data(G_OBJECT(button), "hearth-md-copied");
    copy_button_set_copied(button, FALSE);
    return G_SOURCE_REMOVE;
}

static void
remove_source(gpointer id)
{
    g_source_remove(GPOINTER_TO_UINT(id));
}

static void
on_copy_clicked(GtkButton *button, gpointer user_data)
{
    GtkTextBuffer *buffer = GTK_TEXT_BUFFER(user_data);
    GtkTextIter start, end;
    gtk_text_buffer_get_bounds(buffer, &start, &end);
    g_autofree char *text = gtk_text_buffer_get_text(buffer, &start, &end, FALSE);
    gdk_clipboard_set_text(gtk_widget_get_clipboard(GTK_WIDGET(button)), text);
    copy_button_set_copied(button, TRUE);
    /* Replacing the data removes a pending timeout; finalizing the button
     * removes this one. */
    guint id = g_timeout_add_seconds(MD_COPIED_SECONDS, on_copied_timeout, button);
    g_object_set_data_full(G_OBJECT(button), "hearth-md-copied", GUINT_TO_POINTER(id), remove_source);
}

static void
code_set_language(MdBlock *b, const char *info_raw)
{
    g_autofree char *word = info_word(info_raw);
    if (b->info && g_str_equal(word, b->info))
        return;
    GtkSourceLanguage *lang = language_for_word(word);
    gtk_source_buffer_set_language(b->buffer, lang);
    const char *name = lang ? gtk_source_language_get_name(lang) : NULL;
    if (lang && g_str_equal(gtk_source_language_get_id(lang), "sh"))
        name = _("Shell");
    if (!name)
        name = *word ? word : _("Code");
    gtk_label_set_text(GTK_LABEL(b->code_title), name);
    g_autofree char *a11y = g_strdup_printf(_("%s code"), name);
    gtk_accessible_update_property(GTK_ACCESSIBLE(b->code_view), GTK_ACCESSIBLE_PROPERTY_LABEL, a11y, -1);
    g_free(b->info);
    b->info = g_steal_pointer(&word);
}

static MdBlock *
build_code(cmark_node *node)
{
    MdBlock *b = md_block_new(MD_CODE);

    GtkWidget *frame = gtk_frame_new(NULL);
    gtk_widget_add_css_class(frame, "hearth-md-code");
    gtk_widget_set_overflow(frame, GTK_OVERFLOW_HIDDEN);
    GtkWidget *vbox = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
    gtk_frame_set_child(GTK_FRAME(frame), vbox);

    GtkWidget *header = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
    gtk_widget_add_css_class(header, "hearth-md-code-header");
    b->code_title = gtk_label_new(NULL);
    gtk_label_set_xalign(GTK_LABEL(b->code_title), 0);
    gtk_widget_set_hexpand(b->code_title, TRUE);
    gtk_widget_add_css_class(b->code_title, "caption-heading");
    gtk_widget_add_css_class(b->code_title, "dim-label");
    gtk_box_append(GTK_BOX(header), b->code_title);

    GtkWidget *copy = gtk_button_new();
    GtkWidget *content = adw_button_content_new();
    gtk_button_set_child(GTK_BUTTON(copy), content);
    copy_button_set_copied(GTK_BUTTON(copy), FALSE);
    gtk_widget_add_css_class(copy, "flat");
    gtk_widget_add_css_class(copy, "hearth-md-copy");
    gtk_widget_set_valign(copy, GTK_ALIGN_CENTER);
    gtk_widget_set_tooltip_text(copy, _("Copy code"));
    gtk_accessible_update_property(GTK_ACCESSIBLE(copy), GTK_ACCESSIBLE_PROPERTY_LABEL, _("Copy code"), -1);
    g_signal_connect(copy, "map", G_CALLBACK(on_copy_button_map), NULL);
    gtk_box_append(GTK_BOX(header), copy);
    gtk_box_append(GTK_BOX(vbox), header);

    b->buffer = gtk_source_buffer_new(NULL);
    gtk_text_buffer_set_enable_undo(GTK_TEXT_BUFFER(b->buffer), FALSE);
    gtk_source_buffer_set_highlight_syntax(b->buffer, TRUE);
    gtk_source_buffer_set_highlight_matching_brackets(b->buffer, FALSE);
    update_style_scheme(b->buffer);
    g_signal_connect_object(adw_style_manager_get_default(), "notify::dark",
                            G_CALLBACK(on_dark_changed), b->buffer, 0);

    b->code_view = gtk_source_view_new_with_buffer(b->buffer);
    g_object_unref(b->buffer);   /* the view keeps it */
    GtkTextView *tv = GTK_TEXT_VIEW(b->code_view);
    gtk_text_view_set_editable(tv, FALSE);
    gtk_text_view_set_cursor_visible(tv, FALSE);
    gtk_text_view_set_monospace(tv, TRUE);
    gtk_text_view_set_wrap_mode(tv, GTK_WRAP_NONE);
    gtk_text_view_set_left_margin(tv, 12);
    gtk_text_view_set_right_margin(tv, 12);
    gtk_text_view_set_top_margin(tv, 8);
    gtk_text_view_set_bottom_margin(tv, 8);
    gtk_widget_add_css_class(b->code_view, "hearth-md-code-view");
    gtk_box_append(GTK_BOX(vbox), hscroller_new(b->code_view));

    g_signal_connect_object(copy, "clicked", G_CALLBACK(on_copy_clicked), b->buffer, 0);

    code_set_language(b, cmark_node_get_fence_info(node));
    b->code = literal_without_final_newline(cmark_node_get_literal(node));
    gtk_text_buffer_set_text(GTK_TEXT_BUFFER(b->buffer), b->code, -1);
    b->widget = frame;
    return b;
}

static gboolean
update_code(HearthMarkdownView *self, MdBlock *b, cmark_node *node)
{
    g_autofree char *code = literal_without_final_newline(cmark_node_get_literal(node));
    g_autofree char *word = info_word(cmark_node_get_fence_info(node));
    gboolean same_lang = g_str_equal(word, b->info);
    if (same_lang && g_str_equal(code, b->code))
        return TRUE;
    code_set_language(b, cmark_node_get_fence_info(node));
    if (!g_str_equal(code, b->code)) {
        gsize old_len = strlen(b->code);
        GtkTextBuffer *buffer = GTK_TEXT_BUFFER(b->buffer);
        if (strncmp(code, b->code, old_len) == 0) {
            /* Streaming: append, keeping the selection and the highlighting
             * done so far. */
            GtkTextIter end;
            gtk_text_buffer_get_end_iter(buffer, &end);
            gtk_text_buffer_insert(buffer, &end, code + old_len, -1);
        } else {
            gtk_text_buffer_set_text(buffer, code, -1);
        }
        g_free(b->code);
        b->code = g_steal_pointer(&code);
    }
    self->n_rebuilt++;
    return TRUE;
}

/* --- list items ---------------------------------------------------------- */

/* A list item: the marker in a column on the left, the item's blocks on the
 * right. Not a horizontal GtkBox: GTK 4.8's box measures a wrapping label
 * child with ~100 Pango layouts per height-for-width request (it searches
 * for widths), which made a few nested list items cost hundreds of ms. This
 * widget asks each child for one size per request. */
#define HEARTH_TYPE_MD_ITEM (hearth_md_item_get_type())
G_DECLARE_FINAL_TYPE(HearthMdItem, hearth_md_item, HEARTH, MD_ITEM, GtkWidget)

#define MD_ITEM_SPACING 6

struct _HearthMdItem {
    GtkWidget parent_instance;
    GtkWidget *marker;
    GtkWidget *content;
};

G_DEFINE_FINAL_TYPE(HearthMdItem, hearth_md_item, GTK_TYPE_WIDGET)

static int
md_item_marker_width(HearthMdItem *self)
{
    int nat = 0;
    gtk_widget_measure(self->marker, GTK_ORIENTATION_HORIZONTAL, -1, NULL, &nat, NULL, NULL);
    return nat;
}

static int
md_item_content_width(HearthMdItem *self, int width, int marker_width)
{
    int min = 0;
    gtk_widget_measure(self->content, GTK_ORIENTATION_HORIZONTAL, -1, &min, NULL, NULL, NULL);
    return MAX(min, width - marker_width - MD_ITEM_SPACING);
}

static void
hearth_md_item_measure(GtkWidget *widget, GtkOrientation orientation, int for_size, int *minimum,
                       int *natural, int *minimum_baseline, int *natural_baseline)
{
    HearthMdItem *self = HEARTH_MD_ITEM(widget);
    int mmin = 0, mnat = 0, cmin = 0, cnat = 0;
    if (orientation == GTK_ORIENTATION_HORIZONTAL) {
        gtk_widget_measure(self->marker, orientation, -1, &mmin, &mnat, NULL, NULL);
        gtk_widget_measure(self->content, orientation, -1, &cmin, &cnat, NULL, NULL);
        *minimum = mnat + MD_ITEM_SPACING + cmin;
        *natural = mnat + MD_ITEM_SPACING + cnat;
    } else {
        int mw = md_item_marker_width(self);
        int cw = for_size < 0 ? -1 : md_item_content_width(self, for_size, mw);
        gtk_widget_measure(self->marker, orientation, for_size < 0 ? -1 : mw, &mmin, &mnat, NULL, NULL);
        gtk_widget_measure(self->content, orientation, cw, &cmin, &cnat, NULL, NULL);
        *minimum = MAX(mmin, cmin);
        *natural = MAX(mnat, cnat);
    }
    *minimum_baseline = *natural_baseline = -1;
}

static GtkSizeRequestMode
hearth_md_item_get_request_mode(GtkWidget *widget)
{
    return GTK_SIZE_REQUEST_HEIGHT_FOR_WIDTH;
}

static void
hearth_md_item_size_allocate(GtkWidget *widget, int width, int height, int baseline)
{
    HearthMdItem *self = HEARTH_MD_ITEM(widget);
    int mw = md_item_marker_width(self);
    int cw = md_item_content_width(self, width, mw);
    int mh = 0;
    gtk_widget_measure(self->marker, GTK_ORIENTATION_VERTICAL, mw, NULL, &mh, NULL, NULL);
    gboolean rtl = gtk_widget_get_direction(widget) == GTK_TEXT_DIR_RTL;
    gtk_widget_size_allocate(self->marker,
                             &(GtkAllocation){ rtl ? width - mw : 0, 0, mw, MIN(mh, height) }, -1);
    gtk_widget_size_allocate(self->content,
                             &(GtkAllocation){ rtl ? 0 : width - cw, 0, cw, height }, -1);
}

static void
hearth_md_item_dispose(GObject *object)
{
    HearthMdItem *self = HEARTH_MD_ITEM(object);
    g_clear_pointer(&self->marker, gtk_widget_unparent);
    g_clear_pointer(&self->content, gtk_widget_unparent);
    G_OBJECT_CLASS(hearth_md_item_parent_class)->dispose(object);
}

static void
hearth_md_item_class_init(HearthMdItemClass *klass)
{
    GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
    G_OBJECT_CLASS(klass)->dispose = hearth_md_item_dispose;
    widget_class->measure = hearth_md_item_measure;
    widget_class->get_request_mode = hearth_md_item_get_request_mode;
    widget_class->size_allocate = hearth_md_item_size_allocate;
    gtk_widget_class_set_css_name(widget_class, "mditem");
    gtk_widget_class_set_accessible_role(widget_class, GTK_ACCESSIBLE_ROLE_LIST_ITEM);
}

static void
hearth_md_item_init(HearthMdItem *self)
{
}

static GtkWidget *
hearth_md_item_new(GtkWidget *marker, GtkWidget *content)
{
    HearthMdItem *self = g_object_new(HEARTH_TYPE_MD_ITEM, NULL);
    self->marker = marker;
    self->content = content;
    gtk_widget_set_parent(marker, GTK_WIDGET(self));
    gtk_widget_set_parent(content, GTK_WIDGET(self));
    return GTK_WIDGET(self);
}

/* --- containers ----------------------------------------------------------- */

static MdKind
kind_for(cmark_node *node, int depth)
{
    switch (cmark_node_get_type(node)) {
    case CMARK_NODE_PARAGRAPH: return MD_PARAGRAPH;
    case CMARK_NODE_HEADING: return MD_HEADING;
    case CMARK_NODE_CODE_BLOCK: return MD_CODE;
    case CMARK_NODE_HTML_BLOCK: return MD_HTML;
    case CMARK_NODE_THEMATIC_BREAK: return MD_RULE;
    case CMARK_NODE_BLOCK_QUOTE: return depth < MD_MAX_DEPTH ? MD_QUOTE : MD_FLAT;
    case CMARK_NODE_LIST: return depth < MD_MAX_DEPTH ? MD_LIST : MD_FLAT;
    case CMARK_NODE_ITEM: return MD_ITEM;
    default: return MD_FLAT;
    }
}

static MdBlock *block_build(HearthMarkdownView *self, cmark_node *node, int depth, int list_level);
static gboolean block_update(HearthMarkdownView *self, MdBlock *b, cmark_node *node, int depth, int list_level);

/* Makes the children of parent (widgets in box, records in blocks) match the
 * children of container. */
static void
reconcile(HearthMarkdownView *self, GtkWidget *box, GPtrArray *blocks, cmark_node *container,
          int depth, int list_level)
{
    guint i = 0;
    GtkWidget *prev = NULL;
    for (cmark_node *n = cmark_node_first_child(container); n; n = cmark_node_next(n), i++) {
        if (i < blocks->len) {
            MdBlock *old = blocks->pdata[i];
            if (!block_update(self, old, n, depth, list_level)) {
                MdBlock *nb = block_build(self, n, depth, list_level);
                gtk_widget_unparent(old->widget);
                gtk_widget_insert_after(nb->widget, box, prev);
                md_block_free(old);
                blocks->pdata[i] = nb;
            }
        } else {
            MdBlock *nb = block_build(self, n, depth, list_level);
            gtk_widget_insert_after(nb->widget, box, prev);
            g_ptr_array_add(blocks, nb);
        }
        prev = ((MdBlock *)blocks->pdata[i])->widget;
    }
    for (guint j = i; j < blocks->len; j++)
        gtk_widget_unparent(((MdBlock *)blocks->pdata[j])->widget);
    if (blocks->len > i)
        g_ptr_array_set_size(blocks, i);
}

static MdBlock *
build_quote(HearthMarkdownView *self, cmark_node *node, int depth, int list_level)
{
    MdBlock *b = md_block_new(MD_QUOTE);
    b->widget = b->box = vbox_new(MD_SPACING - 2, "hearth-md-quote");
    b->children = g_ptr_array_new_with_free_func(md_block_free);
    reconcile(self, b->box, b->children, node, depth + 1, list_level);
    return b;
}

static char *
list_key(cmark_node *node)
{
    return g_strdup_printf("%d/%d/%d/%d", cmark_node_get_list_type(node), cmark_node_get_list_start(node),
                           cmark_node_get_list_delim(node), cmark_node_get_list_tight(node));
}

static char *
list_marker(cmark_node *list, guint index, int list_level)
{
    if (cmark_node_get_list_type(list) == CMARK_ORDERED_LIST) {
        gint64 number = (gint64)cmark_node_get_list_start(list) + index;
        char delim = cmark_node_get_list_delim(list) == CMARK_PAREN_DELIM ? ')' : '.';
        return g_strdup_printf("%" G_GINT64_FORMAT "%c", number, delim);
    }
    static const char *const bullets[] = { "•", "◦", "▪" };
    return g_strdup(bullets[MIN(list_level, (int)G_N_ELEMENTS(bullets) - 1)]);
}

static MdBlock *
build_item(HearthMarkdownView *self, cmark_node *item, gboolean tight, int depth, int list_level)
{
    MdBlock *b = md_block_new(MD_ITEM);
    b->marker = gtk_label_new(NULL);
    gtk_widget_add_css_class(b->marker, "hearth-md-marker");
    b->box = vbox_new(tight ? 4 : MD_SPACING - 2, "hearth-md-item-content");
    b->widget = hearth_md_item_new(b->marker, b->box);
    gtk_widget_add_css_class(b->widget, "hearth-md-item");
    b->children = g_ptr_array_new_with_free_func(md_block_free);
    reconcile(self, b->box, b->children, item, depth + 1, list_level + 1);
    self->n_rebuilt++;
    return b;
}

static void
reconcile_list(HearthMarkdownView *self, MdBlock *list, cmark_node *node, int depth, int list_level)
{
    gboolean tight = cmark_node_get_list_tight(node);
    gboolean ordered = cmark_node_get_list_type(node) == CMARK_ORDERED_LIST;
    guint i = 0;
    GtkWidget *prev = NULL;
    for (cmark_node *n = cmark_node_first_child(node); n; n = cmark_node_next(n), i++) {
        MdBlock *item;
        if (i < list->children->len) {
            item = list->children->pdata[i];
            reconcile(self, item->box, item->children, n, depth + 1, list_level + 1);
        } else {
            item = build_item(self, n, tight, depth, list_level);
            gtk_widget_insert_after(item->widget, list->box, prev);
            g_ptr_array_add(list->children, item);
        }
        g_autofree char *marker = list_marker(node, i, list_level);
        if (!g_str_equal(gtk_label_get_label(GTK_LABEL(item->marker)), marker))
            gtk_label_set_text(GTK_LABEL(item->marker), marker);
        prev = item->widget;
    }
    for (guint j = i; j < list->children->len; j++)
        gtk_widget_unparent(((MdBlock *)list->children->pdata[j])->widget);
    if (list->children->len > i)
        g_ptr_array_set_size(list->children, i);

    /* Right-aligned numbers in a column as wide as the widest one. */
    int width = 0;
    if (ordered && i > 0) {
        g_autofree char *last = list_marker(node, i - 1, list_level);
        g_autofree char *first = list_marker(node, 0, list_level);
        width = (int)MAX(strlen(last), strlen(first));
    }
    for (guint j = 0; j < list->children->len; j++) {
        MdBlock *item = list->children->pdata[j];
        gtk_label_set_width_chars(GTK_LABEL(item->marker), width > 0 ? width : -1);
        gtk_label_set_xalign(GTK_LABEL(item->marker), ordered ? 1.0f : 0.5f);
    }
}

static MdBlock *
build_list(HearthMarkdownView *self, cmark_node *node, int depth, int list_level)
{
    MdBlock *b = md_block_new(MD_LIST);
    gboolean tight = cmark_node_get_list_tight(node);
    b->widget = b->box = g_object_new(GTK_TYPE_BOX, "orientation", GTK_ORIENTATION_VERTICAL,
                                      "spacing", tight ? 4 : MD_SPACING - 2,
                                      "accessible-role", GTK_ACCESSIBLE_ROLE_LIST, NULL);
    gtk_widget_add_css_class(b->box, "hearth-md-list");
    gtk_widget_add_css_class(b->box, cmark_node_get_list_type(node) == CMARK_ORDERED_LIST
                                         ? "hearth-md-ordered" : "hearth-md-bullets");
    gtk_widget_set_margin_start(b->box, 4);
    b->key = list_key(node);
    b->children = g_ptr_array_new_with_free_func(md_block_free);
    reconcile_list(self, b, node, depth + 1, list_level);
    return b;
}

static MdBlock *
block_build(HearthMarkdownView *self, cmark_node *node, int depth, int list_level)
{
    MdBlock *b;
    MdKind kind = kind_for(node, depth);
    switch (kind) {
    case MD_PARAGRAPH:
        b = build_paragraph(node);
        break;
    case MD_HEADING:
        b = build_heading(node);
        break;
    case MD_CODE:
        b = build_code(node);
        break;
    case MD_RULE:
        b = md_block_new(MD_RULE);
        b->widget = gtk_separator_new(GTK_ORIENTATION_HORIZONTAL);
        gtk_widget_add_css_class(b->widget, "hearth-md-rule");
        break;
    case MD_QUOTE:
        b = build_quote(self, node, depth, list_level);
        break;
    case MD_LIST:
        b = build_list(self, node, depth, list_level);
        break;
    case MD_HTML:
    case MD_FLAT:
    case MD_ITEM:       /* only inside lists, handled by reconcile_list */
    default:
        b = build_plain(node, kind == MD_HTML ? MD_HTML : MD_FLAT);
        break;
    }
    self->n_rebuilt++;
    return b;
}

/* Brings b up to date with node in place; FALSE when it must be rebuilt. */
static gboolean
block_update(HearthMarkdownView *self, MdBlock *b, cmark_node *node, int depth, int list_level)
{
    MdKind kind = kind_for(node, depth);
    if (kind == MD_ITEM)
        kind = MD_FLAT;
    if (kind != b->kind)
        return FALSE;
    switch (kind) {
    case MD_PARAGRAPH:
        return update_paragraph(self, b, node);
    case MD_HEADING:
        return update_heading(self, b, node);
    case MD_CODE:
        return update_code(self, b, node);
    case MD_RULE:
        return TRUE;
    case MD_QUOTE:
        reconcile(self, b->box, b->children, node, depth + 1, list_level);
        return TRUE;
    case MD_LIST: {
        g_autofree char *key = list_key(node);
        if (!g_str_equal(key, b->key))
            return FALSE;
        reconcile_list(self, b, node, depth + 1, list_level);
        return TRUE;
    }
    case MD_HTML:
    case MD_FLAT:
    case MD_ITEM:
    default:
        return update_plain(self, b, node);
    }
}

/* ------------------------------------------------------------------------ */
/* HearthMarkdownView                                                       */
/* ------------------------------------------------------------------------ */

GtkWidget *
hearth_markdown_view_new(void)
{
    return g_object_new(HEARTH_TYPE_MARKDOWN_VIEW, NULL);
}

void
hearth_markdown_view_set_text(HearthMarkdownView *self, const char *markdown)
{
    g_return_if_fail(HEARTH_IS_MARKDOWN_VIEW(self));
    if (!markdown)
        markdown = "";
    self->n_rebuilt = 0;
    if (g_strcmp0(self->text, markdown) == 0)
        return;
    cmark_node *doc = cmark_parse_document(markdown, strlen(markdown), CMARK_OPT_VALIDATE_UTF8);
    reconcile(self, GTK_WIDGET(self), self->blocks, doc, 0, 0);
    cmark_node_free(doc);
    g_free(self->text);
    self->text = g_strdup(markdown);
    g_object_notify_by_pspec(G_OBJECT(self), properties[PROP_TEXT]);
}

const char *
hearth_markdown_view_get_text(HearthMarkdownView *self)
{
    g_return_val_if_fail(HEARTH_IS_MARKDOWN_VIEW(self), NULL);
    return self->text;
}

guint
hearth_markdown_view_get_n_rebuilt_blocks(HearthMarkdownView *self)
{
    g_return_val_if_fail(HEARTH_IS_MARKDOWN_VIEW(self), 0);
    return self->n_rebuilt;
}

static void
hearth_markdown_view_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
    HearthMarkdownView *self = HEARTH_MARKDOWN_VIEW(object);
    switch (prop_id) {
    case PROP_TEXT:
        g_value_set_string(value, self->text);
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
    }
}

static void
hearth_markdown_view_set_property(GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
    HearthMarkdownView *self = HEARTH_MARKDOWN_VIEW(object);
    switch (prop_id) {
    case PROP_TEXT:
        hearth_markdown_view_set_text(self, g_value_get_string(value));
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
    }
}

static void
hearth_markdown_view_dispose(GObject *object)
{
    HearthMarkdownView *self = HEARTH_MARKDOWN_VIEW(object);
    GtkWidget *child;
    if (self->blocks)
        g_ptr_array_set_size(self->blocks, 0);
    while ((child = gtk_widget_get_first_child(GTK_WIDGET(self))))
        gtk_widget_unparent(child);
    G_OBJECT_CLASS(hearth_markdown_view_parent_class)->dispose(object);
}

static void
hearth_markdown_view_finalize(GObject *object)
{
    HearthMarkdownView *self = HEARTH_MARKDOWN_VIEW(object);
    g_clear_pointer(&self->blocks, g_ptr_array_unref);
    g_free(self->text);
    G_OBJECT_CLASS(hearth_markdown_view_parent_class)->finalize(object);
}

static void
hearth_markdown_view_class_init(HearthMarkdownViewClass *klass)
{
    GObjectClass *object_class = G_OBJECT_CLASS(klass);
    GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);

    object_class->get_property = hearth_markdown_view_get_property;
    object_class->set_property = hearth_markdown_view_set_property;
    object_class->dispose = hearth_markdown_view_dispose;
    object_class->finalize = hearth_markdown_view_finalize;

    properties[PROP_TEXT] =
        g_param_spec_string("text", NULL, NULL, "",
                            G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
    g_object_class_install_properties(object_class, N_PROPS, properties);

    gtk_widget_class_set_layout_manager_type(widget_class, GTK_TYPE_BOX_LAYOUT);
    gtk_widget_class_set_css_name(widget_class, "markdownview");

    /* Both are idempotent; the app has done them already, tests may not. */
    adw_init();
    gtk_source_init();
}

static void
hearth_markdown_view_init(HearthMarkdownView *self)
{
    GtkLayoutManager *layout = gtk_widget_get_layout_manager(GTK_WIDGET(self));
    gtk_orientable_set_orientation(GTK_ORIENTABLE(layout), GTK_ORIENTATION_VERTICAL);
    gtk_box_layout_set_spacing(GTK_BOX_LAYOUT(layout), MD_SPACING);
    gtk_widget_add_css_class(GTK_WIDGET(self), "hearth-markdown");

    self->text = g_strdup("");
    self->blocks = g_ptr_array_new_with_free_func(md_block_free);

    GdkDisplay *display = gdk_display_get_default();
    if (display && !g_object_get_data(G_OBJECT(display), "hearth-markdown-css")) {
        GtkCssProvider *provider = gtk_css_provider_new();
        gtk_css_provider_load_from_data(provider, md_css, -1);
        gtk_style_context_add_provider_for_display(display, GTK_STYLE_PROVIDER(provider),
                                                   GTK_STYLE_PROVIDER_PRIORITY_APPLICATION);
        g_object_set_data_full(G_OBJECT(display), "hearth-markdown-css", provider, g_object_unref);
    }
}

const char *
hearth_markdown_split_thinking(const char *text, char **thinking, gboolean *closed)
{
    *thinking = NULL;
    *closed = FALSE;
    if (!text)
        return "";
    const char *p = text;
    while (g_ascii_isspace(*p))
        p++;
    const char *body, *end;
    if (g_str_has_prefix(p, "<think>")) {
        body = p + strlen("<think>");
        end = strstr(body, "</think>");
    } else {
        /* opened by the template (the prompt ends in "<think>"): only its end is in the reply */
        end = strstr(text, "</think>");
        if (!end || g_strstr_len(text, end - text, "<think>"))
            return text;
        body = text;
    }
    const char *stop = end ? end : body + strlen(body);
    while (body < stop && g_ascii_isspace(*body))
        body++;
    while (stop > body && g_ascii_isspace(stop[-1]))
        stop--;
    *thinking = g_strndup(body, (gsize)(stop - body));
    if (!end)
        return "";
    *closed = TRUE;
    const char *answer = end + strlen("</think>");
    while (g_ascii_isspace(*answer))
        answer++;
    return answer;
}
