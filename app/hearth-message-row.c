#include "hearth-message-row.h"

#include <glib/gi18n.h>
#include <string.h>

#include "hearth-markdown.h"

struct _HearthMessageRow {
    GtkWidget parent_instance;
    GtkWidget *box;
    GtkLabel *role_label;
    GtkButton *copy_button;
    GtkButton *edit_button;
    GtkButton *regenerate_button;
    GtkWidget *version_box;
    GtkButton *previous_version_button;
    GtkLabel *version_label;
    GtkButton *next_version_button;
    GtkLabel *user_text;
    GtkWidget *markdown;       /* HearthMarkdownView for assistant replies */
    GtkWidget *thinking_box;         /* a reasoning model's thinking, folded away under a toggle */
    GtkToggleButton *thinking_toggle;
    GtkImage *thinking_arrow;
    GtkLabel *thinking_title;
    GtkRevealer *thinking_revealer;
    GtkLabel *thinking_label;
    GtkLabel *note_label;
    HearthMessage *message;
    gulong handlers[6];
};

G_DEFINE_FINAL_TYPE(HearthMessageRow, hearth_message_row, GTK_TYPE_WIDGET)

/* a line that opens a Markdown code fence (```, ~~~) */
static gboolean
has_code_fence(const char *text)
{
    for (const char *line = text; line && *line;) {
        const char *p = line;
        while (*p == ' ' && p - line < 4)
            p++;
        if (g_str_has_prefix(p, "```") || g_str_has_prefix(p, "~~~"))
            return TRUE;
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return FALSE;
}

/* Replies are Markdown; the user's own text is shown as typed, unless it holds code (an attached file, a
 * pasted fence): then it is rendered too, its code highlighted with a Copy button. */
static void
update_content(HearthMessageRow *self)
{
    const char *text = hearth_message_get_content(self->message);
    gboolean assistant = g_strcmp0(hearth_message_get_role(self->message), "assistant") == 0;
    gboolean markdown = assistant || has_code_fence(text);
    /* a reasoning model's thinking (<think>…</think>) goes into the expander, folded; the answer below */
    g_autofree char *thinking = NULL;
    gboolean closed = FALSE;
    if (assistant)
        text = hearth_markdown_split_thinking(text, &thinking, &closed);
    gtk_widget_set_visible(self->thinking_box, thinking != NULL);
    if (thinking) {
        const gboolean writing = g_strcmp0(hearth_message_get_state(self->message), "partial") == 0;
        const char *title = closed ? _("Reasoning") : writing ? _("Thinking…") : _("Reasoning (unfinished)");
        gtk_label_set_text(self->thinking_title, title);
        gtk_accessible_update_property(GTK_ACCESSIBLE(self->thinking_toggle), GTK_ACCESSIBLE_PROPERTY_LABEL, title,
                                       -1);
        gtk_label_set_text(self->thinking_label, *thinking ? thinking : _("(nothing)"));
    }
    gtk_widget_set_visible(GTK_WIDGET(self->user_text), !markdown);
    gtk_widget_set_visible(self->markdown, markdown);
    if (markdown) {
        hearth_markdown_view_set_text(HEARTH_MARKDOWN_VIEW(self->markdown), text);
        gtk_label_set_text(self->user_text, "");
    } else {
        hearth_markdown_view_set_text(HEARTH_MARKDOWN_VIEW(self->markdown), "");
        gtk_label_set_text(self->user_text, text);
    }
    gtk_accessible_update_property(GTK_ACCESSIBLE(self), GTK_ACCESSIBLE_PROPERTY_DESCRIPTION, text, -1);
}

static void
update_note(HearthMessageRow *self)
{
    const char *state = hearth_message_get_state(self->message);
    const char *note = hearth_message_get_note(self->message);
    g_autofree char *text = NULL;
    if (g_strcmp0(state, "interrupted") == 0)
        text = g_strdup(_("Interrupted — the app closed before this reply finished"));
    else if (note && *note)
        text = g_strdup(note);
    gtk_label_set_text(self->note_label, text ? text : "");
    gtk_widget_set_visible(GTK_WIDGET(self->note_label), text != NULL);
    if (g_strcmp0(state, "error") == 0)
        gtk_widget_add_css_class(GTK_WIDGET(self->note_label), "error");
    else
        gtk_widget_remove_css_class(GTK_WIDGET(self->note_label), "error");
}

/* A ‹ or › button: it shows version `version` of message id when `ok`, else
 * it is off. Off is no action at all: the action's own enabled state
 * (win.show-version is off while a reply is written) would turn it back on. */
static void
set_version_button(GtkButton *button, gint64 id, int version, gboolean ok)
{
    if (!ok) {
        gtk_actionable_set_action_name(GTK_ACTIONABLE(button), NULL);
        gtk_widget_set_sensitive(GTK_WIDGET(button), FALSE);
        return;
    }
    gtk_widget_set_sensitive(GTK_WIDGET(button), TRUE);
    gtk_actionable_set_action_target_value(GTK_ACTIONABLE(button), g_variant_new("(xi)", id, version));
    gtk_actionable_set_action_name(GTK_ACTIONABLE(button), "win.show-version");
}

/* ‹ 1/2 ›: the versions of a regenerated reply, while it is the last one
 * (the conversation goes on from the version shown; once a message follows,
 * that version stays). */
static void
update_versions(HearthMessageRow *self)
{
    int v = hearth_message_get_version(self->message), n = hearth_message_get_n_versions(self->message);
    gboolean show = n > 1 && hearth_message_get_is_last(self->message);
    gtk_widget_set_visible(self->version_box, show);
    if (!show)
        return;
    gboolean partial = g_strcmp0(hearth_message_get_state(self->message), "partial") == 0;
    g_autofree char *text = g_strdup_printf("%d/%d", v, n);
    gtk_label_set_text(self->version_label, text);
    g_autofree char *name = g_strdup_printf(_("Version %d of %d"), v, n);
    gtk_accessible_update_property(GTK_ACCESSIBLE(self->version_label), GTK_ACCESSIBLE_PROPERTY_LABEL, name, -1);
    gint64 id = hearth_message_get_id(self->message);
    set_version_button(self->previous_version_button, id, v - 1, v > 1 && !partial);
    set_version_button(self->next_version_button, id, v + 1, v < n && !partial);
}

static void
update_highlight(HearthMessageRow *self)
{
    gboolean on = hearth_message_get_highlighted(self->message);
    if (on)
        gtk_widget_add_css_class(self->box, "highlighted");
    else
        gtk_widget_remove_css_class(self->box, "highlighted");
    /* Screen readers (and tests) learn which message the search found. */
    gtk_accessible_update_state(GTK_ACCESSIBLE(self), GTK_ACCESSIBLE_STATE_SELECTED, on, -1);
}

static void
update_actions(HearthMessageRow *self)
{
    gboolean last = hearth_message_get_is_last(self->message);
    gboolean partial = g_strcmp0(hearth_message_get_state(self->message), "partial") == 0;
    const char *role = hearth_message_get_role(self->message);
    gtk_widget_set_visible(GTK_WIDGET(self->regenerate_button),
                           last && !partial && g_strcmp0(role, "assistant") == 0);
    gtk_widget_set_visible(GTK_WIDGET(self->edit_button), g_strcmp0(role, "user") == 0 && last);
    update_versions(self);
}

static void
on_notify(GObject *obj, GParamSpec *pspec, gpointer user_data)
{
    HearthMessageRow *self = user_data;
    const char *name = g_param_spec_get_name(pspec);
    if (g_str_equal(name, "content"))
        update_content(self);
    else if (g_str_equal(name, "note"))
        update_note(self);
    else if (g_str_equal(name, "version"))
        update_versions(self);
    else if (g_str_equal(name, "highlighted"))
        update_highlight(self);
    else {
        if (g_str_equal(name, "state"))   /* "Thinking…" ends */
            update_content(self);
        update_note(self);
        update_actions(self);
    }
}

void
hearth_message_row_bind(HearthMessageRow *self, HearthMessage *message)
{
    if (self->message) {
        for (guint i = 0; i < G_N_ELEMENTS(self->handlers); i++)
            g_clear_signal_handler(&self->handlers[i], self->message);
        g_clear_object(&self->message);
    }
    if (!message)
        return;
    self->message = g_object_ref(message);
    gtk_toggle_button_set_active(self->thinking_toggle, FALSE);   /* a row shown anew: its thinking folded */
    const char *role = hearth_message_get_role(message);
    gboolean assistant = g_strcmp0(role, "assistant") == 0;
    const char *role_name = assistant ? _("Assistant") : g_strcmp0(role, "system") == 0 ? _("System") : _("You");
    gtk_label_set_text(self->role_label, role_name);
    /* Screen readers: the row is named for who wrote it; its description is the text. */
    gtk_accessible_update_property(GTK_ACCESSIBLE(self), GTK_ACCESSIBLE_PROPERTY_LABEL, role_name, -1);
    if (assistant) {
        gtk_widget_remove_css_class(self->box, "user-message");
        gtk_widget_add_css_class(self->box, "assistant-message");
    } else {
        gtk_widget_remove_css_class(self->box, "assistant-message");
        gtk_widget_add_css_class(self->box, "user-message");
    }
    GVariant *target = g_variant_new_int64(hearth_message_get_id(message));
    gtk_actionable_set_action_target_value(GTK_ACTIONABLE(self->copy_button), target);
    self->handlers[0] = g_signal_connect(message, "notify::content", G_CALLBACK(on_notify), self);
    self->handlers[1] = g_signal_connect(message, "notify::state", G_CALLBACK(on_notify), self);
    self->handlers[2] = g_signal_connect(message, "notify::note", G_CALLBACK(on_notify), self);
    self->handlers[3] = g_signal_connect(message, "notify::is-last", G_CALLBACK(on_notify), self);
    self->handlers[4] = g_signal_connect(message, "notify::version", G_CALLBACK(on_notify), self);
    self->handlers[5] = g_signal_connect(message, "notify::highlighted", G_CALLBACK(on_notify), self);
    update_content(self);
    update_note(self);
    update_actions(self);
    update_highlight(self);
}

static void
hearth_message_row_dispose(GObject *object)
{
    HearthMessageRow *self = HEARTH_MESSAGE_ROW(object);
    hearth_message_row_bind(self, NULL);
    gtk_widget_dispose_template(GTK_WIDGET(self), HEARTH_TYPE_MESSAGE_ROW);
    G_OBJECT_CLASS(hearth_message_row_parent_class)->dispose(object);
}

static void
hearth_message_row_class_init(HearthMessageRowClass *klass)
{
    GObjectClass *object_class = G_OBJECT_CLASS(klass);
    GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
    object_class->dispose = hearth_message_row_dispose;
    g_type_ensure(HEARTH_TYPE_MARKDOWN_VIEW);
    gtk_widget_class_set_template_from_resource(widget_class, "/io/github/hearthchat/Hearth/hearth-message-row.ui");
    gtk_widget_class_bind_template_child(widget_class, HearthMessageRow, box);
    gtk_widget_class_bind_template_child(widget_class, HearthMessageRow, role_label);
    gtk_widget_class_bind_template_child(widget_class, HearthMessageRow, copy_button);
    gtk_widget_class_bind_template_child(widget_class, HearthMessageRow, edit_button);
    gtk_widget_class_bind_template_child(widget_class, HearthMessageRow, regenerate_button);
    gtk_widget_class_bind_template_child(widget_class, HearthMessageRow, version_box);
    gtk_widget_class_bind_template_child(widget_class, HearthMessageRow, previous_version_button);
    gtk_widget_class_bind_template_child(widget_class, HearthMessageRow, version_label);
    gtk_widget_class_bind_template_child(widget_class, HearthMessageRow, next_version_button);
    gtk_widget_class_bind_template_child(widget_class, HearthMessageRow, user_text);
    gtk_widget_class_bind_template_child(widget_class, HearthMessageRow, markdown);
    gtk_widget_class_bind_template_child(widget_class, HearthMessageRow, thinking_box);
    gtk_widget_class_bind_template_child(widget_class, HearthMessageRow, thinking_toggle);
    gtk_widget_class_bind_template_child(widget_class, HearthMessageRow, thinking_arrow);
    gtk_widget_class_bind_template_child(widget_class, HearthMessageRow, thinking_title);
    gtk_widget_class_bind_template_child(widget_class, HearthMessageRow, thinking_revealer);
    gtk_widget_class_bind_template_child(widget_class, HearthMessageRow, thinking_label);
    gtk_widget_class_bind_template_child(widget_class, HearthMessageRow, note_label);
    gtk_widget_class_set_layout_manager_type(widget_class, GTK_TYPE_BIN_LAYOUT);
    gtk_widget_class_set_accessible_role(widget_class, GTK_ACCESSIBLE_ROLE_GROUP);
}

static void
on_thinking_toggled(HearthMessageRow *self)
{
    const gboolean open = gtk_toggle_button_get_active(self->thinking_toggle);
    gtk_image_set_from_icon_name(self->thinking_arrow, open ? "pan-down-symbolic" : "pan-end-symbolic");
    gtk_accessible_update_state(GTK_ACCESSIBLE(self->thinking_toggle), GTK_ACCESSIBLE_STATE_EXPANDED, open, -1);
}

static void
hearth_message_row_init(HearthMessageRow *self)
{
    gtk_widget_init_template(GTK_WIDGET(self));
    g_object_bind_property(self->thinking_toggle, "active", self->thinking_revealer, "reveal-child",
                           G_BINDING_SYNC_CREATE);
    g_signal_connect_swapped(self->thinking_toggle, "toggled", G_CALLBACK(on_thinking_toggled), self);
    on_thinking_toggled(self);
}

GtkWidget *
hearth_message_row_new(void)
{
    return g_object_new(HEARTH_TYPE_MESSAGE_ROW, NULL);
}
