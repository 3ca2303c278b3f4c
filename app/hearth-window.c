/* hearth-window.c — the main window: conversations on the left, the chat on
 * the right. It owns the engine worker and the store; it never runs model
 * code itself (see hearth-engine.c). */
#include "hearth-window.h"

#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <gtksourceview/gtksource.h>
#include <string.h>

#include "gguf-model.h"
#include "hearth-a11y.h"
#include "hearth-attach.h"
#include "hearth-engine.h"
#include "hearth-found.h"
#include "hearth-get-model.h"
#include "hearth-load-error.h"
#include "hearth-markdown.h"
#include "hearth-message-row.h"
#include "hearth-message.h"
#include "hearth-model-manager.h"
#include "hearth-models.h"
#include "hearth-quantize-wizard.h"
#include "hearth-store.h"

/* ---- sidebar items --------------------------------------------------------- */

#define HEARTH_TYPE_CONVERSATION_ITEM (hearth_conversation_item_get_type())
G_DECLARE_FINAL_TYPE(HearthConversationItem, hearth_conversation_item, HEARTH, CONVERSATION_ITEM, GObject)

struct _HearthConversationItem {
    GObject parent_instance;
    gint64 id;
    char *title;
    gint64 updated;
    gint64 message_id;  /* a search result: the message that matched (else 0) */
    char *snippet;      /* a search result: Pango markup, the match in bold */
};

G_DEFINE_FINAL_TYPE(HearthConversationItem, hearth_conversation_item, G_TYPE_OBJECT)

static void
hearth_conversation_item_finalize(GObject *o)
{
    HearthConversationItem *self = HEARTH_CONVERSATION_ITEM(o);
    g_free(self->title);
    g_free(self->snippet);
    G_OBJECT_CLASS(hearth_conversation_item_parent_class)->finalize(o);
}

static void
hearth_conversation_item_class_init(HearthConversationItemClass *klass)
{
    G_OBJECT_CLASS(klass)->finalize = hearth_conversation_item_finalize;
}

static void
hearth_conversation_item_init(HearthConversationItem *self)
{
}

static HearthConversationItem *
conversation_item_new(gint64 id, const char *title, gint64 updated)
{
    HearthConversationItem *item = g_object_new(HEARTH_TYPE_CONVERSATION_ITEM, NULL);
    item->id = id;
    item->title = g_strdup(title && *title ? title : _("New Chat"));
    item->updated = updated;
    return item;
}

/* When a conversation was last written to, as the sidebar says it: "Today",
 * "Yesterday", the weekday within a week, else the date. */
static char *
relative_date(gint64 us)
{
    g_autoptr(GDateTime) now = g_date_time_new_now_local();
    g_autoptr(GDateTime) then = g_date_time_new_from_unix_local(us / G_USEC_PER_SEC);
    if (!then)
        return g_strdup("");
    g_autoptr(GDateTime) today = g_date_time_new_local(g_date_time_get_year(now), g_date_time_get_month(now),
                                                       g_date_time_get_day_of_month(now), 0, 0, 0);
    g_autoptr(GDateTime) day = g_date_time_new_local(g_date_time_get_year(then), g_date_time_get_month(then),
                                                     g_date_time_get_day_of_month(then), 0, 0, 0);
    /* Whole days between the two midnights (a day may have 23 or 25 hours). */
    gint64 days = (g_date_time_difference(today, day) + G_TIME_SPAN_HOUR * 12) / G_TIME_SPAN_DAY;
    if (days == 0)
        return g_strdup(_("Today"));
    if (days == 1)
        return g_strdup(_("Yesterday"));
    if (days > 1 && days < 7)
        return g_date_time_format(then, "%A");
    if (g_date_time_get_year(then) == g_date_time_get_year(now))
        /* Translators: a date in this year in the sidebar (g_date_time_format); German: "%-d. %B" */
        return g_date_time_format(then, C_("sidebar date", "%-d %B"));
    /* Translators: a date in another year in the sidebar (g_date_time_format); German: "%-d. %B %Y" */
    return g_date_time_format(then, C_("sidebar date", "%-d %B %Y"));
}

/* The search markers around a match in the store's snippet (bytes no
 * message text holds: snippets are one line of plain text). */
#define MATCH_OPEN "\x01"
#define MATCH_CLOSE "\x02"

/* A search snippet as one line of plain text, Markdown syntax left out
 * ("**bold**", "# heading", "`code`", "[link](url)", "> quote", list
 * bullets, code fences with their language), the match in bold on a
 * highlight, as Pango markup. */
static char *
snippet_markup(const char *snippet)
{
    g_autoptr(GString) plain = g_string_new(NULL);
    gboolean line_start = TRUE;
    for (const char *p = snippet; *p;) {
        if (line_start) {
            /* Block syntax at the start of a line: heading marks, quotes, bullets, fences. */
            while (*p == ' ' || *p == '\t')
                p++;
            if (g_str_has_prefix(p, "```") || g_str_has_prefix(p, "~~~")) {
                while (*p && *p != '\n')
                    p++;
                continue;
            }
            while (*p == '#' || *p == '>')
                p++;
            if ((*p == '-' || *p == '*' || *p == '+') && p[1] == ' ')
                p += 2;
            while (*p == ' ')
                p++;
            line_start = FALSE;
            continue;
        }
        if (*p == '\n' || *p == '\r' || *p == '\t') {
            line_start = *p == '\n';
            if (plain->len && plain->str[plain->len - 1] != ' ')
                g_string_append_c(plain, ' ');
            p++;
        } else if (*p == '*' || *p == '`' || *p == '[' || g_str_has_prefix(p, "__") || g_str_has_prefix(p, "~~")) {
            p += *p == '_' || *p == '~' ? 2 : 1;
        } else if (g_str_has_prefix(p, "](")) {
            /* "[text](url)": the text stays, the address goes. */
            const char *end = strchr(p, ')');
            p = end ? end + 1 : p + strlen(p);
        } else if (*p == ' ' && plain->len && plain->str[plain->len - 1] == ' ') {
            p++;
        } else {
            g_string_append_c(plain, *p++);
        }
    }
    g_strstrip(plain->str);
    g_autoptr(GString) markup = g_string_new(NULL);
    gboolean open = FALSE;
    for (const char *p = plain->str; *p;) {
        size_t n = strcspn(p, MATCH_OPEN MATCH_CLOSE);
        g_autofree char *part = g_markup_escape_text(p, (gssize)n);
        g_string_append(markup, part);
        p += n;
        if (*p == MATCH_OPEN[0] && !open)
            g_string_append(markup, "<span weight=\"bold\" background=\"#f8e45c\" bgalpha=\"60%\">");
        else if (*p == MATCH_CLOSE[0] && open)
            g_string_append(markup, "</span>");
        if (*p) {
            open = *p == MATCH_OPEN[0] ? TRUE : *p == MATCH_CLOSE[0] ? FALSE : open;
            p++;
        }
    }
    if (open)
        g_string_append(markup, "</span>");
    return g_string_free(g_steal_pointer(&markup), FALSE);
}

/* ---- the window ---------------------------------------------------------------- */

struct _HearthWindow {
    AdwApplicationWindow parent_instance;

    AdwToastOverlay *toast_overlay;
    AdwLeaflet *leaflet;
    GtkWidget *sidebar;
    GtkWidget *content;
    GtkToggleButton *search_button;
    GtkSearchBar *search_bar;
    GtkSearchEntry *search_entry;
    GtkStack *sidebar_stack;
    AdwStatusPage *no_results_page;
    GtkListView *conversation_list;
    GtkButton *back_button;
    GtkDropDown *model_picker;
    GtkMenuButton *settings_button;
    GtkTextView *system_prompt_view;
    GtkSpinButton *temperature_spin;
    GtkSpinButton *top_p_spin;
    GtkSwitch *thinking_switch;     /* the "thinking" setting (every chat) */
    GtkSpinButton *max_tokens_spin;
    GtkRevealer *banner;
    GtkLabel *banner_label;
    GtkExpander *banner_details;   /* a load error's engine message, folded */
    GtkLabel *banner_detail_label;
    GtkStack *main_stack;
    AdwStatusPage *empty_page;
    GtkFlowBox *suggestions;       /* the start page's example messages, one click into the composer */
    GtkWidget *small_model_note;   /* the start page's word on a tiny model (the starter), with a way to a larger */
    GtkLabel *small_model_label;
    GtkButton *found_use_button;   /* the note's offer of a larger model another app downloaded */
    GPtrArray *found_models;       /* HearthFoundModel *, the last scan's; found_best indexes it */
    guint found_best;
    GCancellable *found_scan;
    GCancellable *attach_cancel;   /* files being read to attach; cancelled when the window goes */
    HearthGetModel *get_model;     /* the first page while no model is installed */
    GtkProgressBar *load_progress;
    GtkStack *chat_stack;
    GtkScrolledWindow *message_scroller;
    GtkListView *message_list;
    GtkTextView *composer;
    GtkLabel *composer_placeholder;
    GtkStack *send_stack;
    GtkLabel *status_label;

    GSettings *settings;            /* the app's; NULL only before hearth_window_new() ends */
    HearthEngine *engine;
    HearthStore *store;
    GListStore *conversations;      /* HearthConversationItem */
    GListStore *messages;           /* HearthMessage of the current conversation */
    GtkStringList *model_names;
    GPtrArray *model_dirs;          /* char*, parallel to model_names */
    char *loading_dir;              /* the folder being loaded, until load-finished */
    gboolean engine_reloading;      /* ... by the engine itself, after a device error (the folder is fine) */
    GCancellable *search_cancel;    /* the conversation search running in a worker thread */
    gboolean updating_picker;
    gboolean loading_settings;

    gint64 conversation_id;         /* 0: none yet (created on first send) */
    char *conversation_model;       /* its model (a folder; older conversations: a folder name), or NULL */
    HearthMessage *reply;           /* the assistant message being streamed */
    gboolean reply_save_failed;     /* saving the streamed reply failed (banner shown) */
    enum { BANNER_OTHER, BANNER_STORE, BANNER_MODELS_DIR } banner_kind; /* what the banner says, when shown */
    gboolean models_dir_missing_said; /* the chosen models folder is gone, and the banner said so */
    gint64 models_dir_stamp;          /* the models folder's mtime and inode at the last scan; -1: missing */
    gboolean store_retry;             /* the store did not open for a reason that may pass (a full disk) */
    guint unsaved_timeout;          /* tries the replies the store keeps (it could not write them) again */
    guint editing_from;             /* editing: the user message whose exchange Send replaces; G_MAXUINT: not editing */
    guint reply_request;
    guint save_timeout;
    gboolean reply_dirty;
    char *last_status;              /* the open conversation's speed (its last reply, or "replying…") */
    int conversation_context;       /* tokens the open conversation fills; -1: unknown */
    gint64 reply_conversation;      /* the conversation self->reply belongs to */
    HearthMessage *highlighted;     /* the message a search result opened, for a moment */
    guint highlight_timeout;
    gint64 scroll_to_message;       /* a search result's message, scrolled to once the list is laid out */
    guint scroll_tick;
    guint scroll_ticks, scroll_waited;
};

G_DEFINE_FINAL_TYPE(HearthWindow, hearth_window, ADW_TYPE_APPLICATION_WINDOW)

static void
toast_with_action(HearthWindow *self, const char *text, const char *button, const char *action)
{
    AdwToast *t = adw_toast_new(text);
    if (button) {
        adw_toast_set_button_label(t, button);
        adw_toast_set_action_name(t, action);
    }
    adw_toast_overlay_add_toast(self->toast_overlay, t);
    hearth_a11y_watch_toast(GTK_WIDGET(self->toast_overlay), t);
}

static void
toast(HearthWindow *self, const char *text)
{
    toast_with_action(self, text, NULL, NULL);
}

static void
show_banner(HearthWindow *self, const char *text)
{
    self->banner_kind = BANNER_OTHER;
    gtk_label_set_text(self->banner_label, text);
    gtk_widget_set_visible(GTK_WIDGET(self->banner_details), FALSE);
    gtk_revealer_set_reveal_child(self->banner, TRUE);
}

/* A write to the conversation store that failed: what it means, in plain words (a full disk says so and
 * what to do), SQLite's own message under Technical Details. */
static void
show_store_error(HearthWindow *self, const char *what, const GError *error)
{
    const char *why = g_error_matches(error, HEARTH_STORE_ERROR, HEARTH_STORE_ERROR_FULL)
                          ? _("The disk is full: free some space on it.")
                          : _("The conversation database could not be written.");
    g_autofree char *text = g_strdup_printf("%s %s", what, why);
    gtk_label_set_text(self->banner_label, text);
    gtk_label_set_text(self->banner_detail_label, error->message);
    gtk_expander_set_expanded(self->banner_details, FALSE);
    gtk_widget_set_visible(GTK_WIDGET(self->banner_details), TRUE);
    gtk_revealer_set_reveal_child(self->banner, TRUE);
    self->banner_kind = BANNER_STORE;
}

/* The banner goes when it still says what kind says. */
static void
hide_banner_of(HearthWindow *self, unsigned kind)
{
    if ((unsigned)self->banner_kind != kind)
        return;
    gtk_revealer_set_reveal_child(self->banner, FALSE);
    self->banner_kind = BANNER_OTHER;
}

/* A write went through: the banner of an earlier failed one goes, unless replies still wait to be saved. */
static void
clear_store_error(HearthWindow *self)
{
    if (!self->store || !hearth_store_pending_count(self->store))
        hide_banner_of(self, BANNER_STORE);
}

/* A model that did not load: what is wrong and what to do in plain words,
 * the engine's own message folded under Technical Details. */
static void
show_load_error(HearthWindow *self, const char *dir, const char *message)
{
    g_autofree char *summary = NULL, *advice = NULL;
    hearth_load_error_describe(message, &summary, &advice);
    g_autofree char *name = dir ? g_path_get_basename(dir) : g_strdup("?");
    g_autofree char *text = g_strdup_printf(_("Could not open “%s”. %s %s"), name, summary, advice);
    self->banner_kind = BANNER_OTHER;
    gtk_label_set_text(self->banner_label, text);
    gtk_label_set_text(self->banner_detail_label, message ? message : "");
    gtk_expander_set_expanded(self->banner_details, FALSE);
    gtk_widget_set_visible(GTK_WIDGET(self->banner_details), message && *message);
    gtk_revealer_set_reveal_child(self->banner, TRUE);
}

/* The models folder: Preferences' choice, else the default one (hearth-cli's too: $HEARTH_MODELS_DIR, else the
 * one in the data folder). */
static char *
models_dir(HearthWindow *self)
{
    g_autofree char *chosen = self->settings ? g_settings_get_string(self->settings, "models-folder") : NULL;
    return hearth_models_resolve_dir(chosen);
}

static char *model_display_name(const char *dir);
static const char *find_model(HearthWindow *self, const char *model);
static void select_model(HearthWindow *self, const char *dir);

/* What a conversation's `model` names, for people: the picker's name for a
 * folder; older conversations stored the folder's name itself. */
static char *
model_label(const char *model)
{
    return g_path_is_absolute(model) ? model_display_name(model) : g_strdup(model);
}

/* An assistant reply's note line: which model wrote it, and how fast. */
static char *
reply_note(const char *model, int tokens, double tokens_per_s, gboolean stopped)
{
    g_autofree char *who = model && *model ? model_label(model) : NULL;
    g_autofree char *speed = tokens_per_s > 0 ? g_strdup_printf(_("%d tokens · %.1f tokens/s%s"), tokens, tokens_per_s,
                                                                stopped ? _(" · stopped") : "")
                                              : NULL;
    if (who && speed)
        return g_strdup_printf("%s · %s", who, speed);
    return g_strdup(who ? who : speed);
}

/* ---- status and state ---------------------------------------------------------- */

/* The status line: the open conversation's context use and speed (the
 * engine's KV cache may hold another conversation's). */
static void
update_status(HearthWindow *self)
{
    int used = self->conversation_context;
    int len = hearth_engine_get_context_length(self->engine);
    g_autoptr(GString) s = g_string_new(NULL);
    if (hearth_engine_get_state(self->engine) == HEARTH_ENGINE_EMPTY) {
        g_string_append(s, _("No model loaded"));
    } else if (hearth_engine_get_state(self->engine) == HEARTH_ENGINE_LOADING) {
        g_string_append(s, _("Loading the model…"));
    } else if (len > 0 && used >= 0) {
        g_string_append_printf(s, _("Context %d / %d tokens"), MIN(used, len), len);
    } else if (len > 0) {
        g_string_append_printf(s, _("Context of %d tokens"), len);
    }
    if (self->last_status)
        g_string_append_printf(s, " · %s", self->last_status);
    gtk_label_set_text(self->status_label, s->str);
}

/* The composer says what it is for, and why it cannot send when it cannot. */
static void
update_composer(HearthWindow *self)
{
    HearthEngineState st = hearth_engine_get_state(self->engine);
    const char *hint = st == HEARTH_ENGINE_EMPTY     ? _("Choose a model to reply")
                       : st == HEARTH_ENGINE_LOADING ? _("The model is loading…")
                                                     : _("Write a message");
    gtk_label_set_text(self->composer_placeholder, hint);
    GtkTextBuffer *buf = gtk_text_view_get_buffer(self->composer);
    gtk_widget_set_visible(GTK_WIDGET(self->composer_placeholder), gtk_text_buffer_get_char_count(buf) == 0);
    gtk_widget_set_sensitive(GTK_WIDGET(self->composer), st != HEARTH_ENGINE_EMPTY);
    gtk_widget_action_set_enabled(GTK_WIDGET(self), "win.attach-file", st != HEARTH_ENGINE_EMPTY);
    gtk_widget_set_tooltip_text(GTK_WIDGET(self->composer),
                                st == HEARTH_ENGINE_EMPTY ? _("Choose a model in the picker above, or open a model "
                                                              "folder, to reply")
                                                          : NULL);
    gtk_accessible_update_property(GTK_ACCESSIBLE(self->composer), GTK_ACCESSIBLE_PROPERTY_DESCRIPTION, hint, -1);
}

static void
update_send_state(HearthWindow *self)
{
    HearthEngineState st = hearth_engine_get_state(self->engine);
    gboolean generating = self->reply != NULL;
    gboolean ready = st == HEARTH_ENGINE_READY;
    gtk_stack_set_visible_child_name(self->send_stack, generating ? "stop" : "send");
    gtk_widget_action_set_enabled(GTK_WIDGET(self), "win.send", ready && !generating);
    gtk_widget_action_set_enabled(GTK_WIDGET(self), "win.regenerate", ready && !generating);
    gtk_widget_action_set_enabled(GTK_WIDGET(self), "win.edit-last", st != HEARTH_ENGINE_EMPTY && !generating);
    gtk_widget_action_set_enabled(GTK_WIDGET(self), "win.show-version", !generating);
    /* The conversation menu acts on the open conversation. */
    gboolean open = self->conversation_id != 0;
    gtk_widget_action_set_enabled(GTK_WIDGET(self), "win.rename-conversation", open);
    gtk_widget_action_set_enabled(GTK_WIDGET(self), "win.export", open);
    gtk_widget_action_set_enabled(GTK_WIDGET(self), "win.delete-conversation", open);
    gboolean has_messages = g_list_model_get_n_items(G_LIST_MODEL(self->messages)) > 0;
    /* A conversation is readable without a model (only replying needs one). */
    const char *page = has_messages || ready ? "chat" : st == HEARTH_ENGINE_LOADING ? "loading" : "no-model";
    if (g_str_equal(page, "no-model") && self->model_dirs->len == 0 && self->get_model)
        page = "get-model"; /* nothing installed yet: the recommended models, one click each */
    /* an empty picker would only say "(None)" */
    gtk_widget_set_visible(GTK_WIDGET(self->model_picker), self->model_dirs->len > 0);
    gtk_stack_set_visible_child_name(self->main_stack, page);
    gtk_stack_set_visible_child_name(self->chat_stack, has_messages ? "messages" : "start");
    update_composer(self);
    update_status(self);
}

static void
mark_last(HearthWindow *self)
{
    guint n = g_list_model_get_n_items(G_LIST_MODEL(self->messages));
    for (guint i = 0; i < n; i++) {
        g_autoptr(HearthMessage) m = g_list_model_get_item(G_LIST_MODEL(self->messages), i);
        /* "last" = the last user message and the reply after it. */
        gboolean last = i + 1 == n ||
                        (i + 2 == n && g_strcmp0(hearth_message_get_role(m), "user") == 0);
        hearth_message_set_is_last(m, last);
    }
}

static void
scroll_to_bottom(HearthWindow *self)
{
    GtkAdjustment *adj = gtk_scrolled_window_get_vadjustment(self->message_scroller);
    gtk_adjustment_set_value(adj, gtk_adjustment_get_upper(adj));
}

static gboolean
near_bottom(HearthWindow *self)
{
    GtkAdjustment *adj = gtk_scrolled_window_get_vadjustment(self->message_scroller);
    return gtk_adjustment_get_value(adj) + gtk_adjustment_get_page_size(adj) >= gtk_adjustment_get_upper(adj) - 80;
}

/* ---- conversations --------------------------------------------------------------- */

/* After the list is filled: the empty page or the list, and the current
 * conversation selected. */
static void
show_conversations(HearthWindow *self, const char *query)
{
    gboolean any = g_list_model_get_n_items(G_LIST_MODEL(self->conversations)) > 0;
    gboolean searching = query && *query;
    if (searching && !any) {
        g_autofree char *desc = g_strdup_printf(_("No message contains “%s”."), query);
        adw_status_page_set_description(self->no_results_page, desc);
    }
    gtk_stack_set_visible_child_name(self->sidebar_stack, any ? "list" : searching ? "no-results" : "empty");
    /* Keep the current conversation selected. */
    GtkSingleSelection *sel = GTK_SINGLE_SELECTION(gtk_list_view_get_model(self->conversation_list));
    guint n = g_list_model_get_n_items(G_LIST_MODEL(self->conversations));
    gtk_single_selection_set_selected(sel, GTK_INVALID_LIST_POSITION);
    for (guint i = 0; i < n; i++) {
        g_autoptr(HearthConversationItem) it = g_list_model_get_item(G_LIST_MODEL(self->conversations), i);
        if (it->id == self->conversation_id) {
            gtk_single_selection_set_selected(sel, i);
            break;
        }
    }
}

static void
on_search_done(GObject *source, GAsyncResult *res, gpointer data)
{
    g_autoptr(HearthWindow) self = data;
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) hits = hearth_store_search_finish(res, &error);
    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return; /* a newer search (or the window closing) replaced it */
    g_clear_object(&self->search_cancel);
    g_list_store_remove_all(self->conversations);
    for (guint i = 0; hits && i < hits->len; i++) {
        HearthStoreSearchHit *h = g_ptr_array_index(hits, i);
        g_autoptr(HearthConversationItem) item = conversation_item_new(h->conversation_id, h->title, h->updated);
        item->message_id = h->message_id;
        item->snippet = snippet_markup(h->snippet ? h->snippet : "");
        g_list_store_append(self->conversations, item);
    }
    if (error)
        toast(self, error->message);
    show_conversations(self, gtk_editable_get_text(GTK_EDITABLE(self->search_entry)));
}

static void
reload_conversations(HearthWindow *self)
{
    g_autoptr(GError) error = NULL;
    if (self->search_cancel) {
        g_cancellable_cancel(self->search_cancel);
        g_clear_object(&self->search_cancel);
    }
    if (!self->store) {
        g_list_store_remove_all(self->conversations);
        return;
    }
    const char *query = gtk_editable_get_text(GTK_EDITABLE(self->search_entry));
    if (query && *query && gtk_search_bar_get_search_mode(self->search_bar)) {
        /* Searching runs in a worker thread; the list fills when it is done. */
        self->search_cancel = g_cancellable_new();
        hearth_store_search_async(self->store, query, 100, MATCH_OPEN, MATCH_CLOSE, self->search_cancel,
                                  on_search_done, g_object_ref(self));
        return;
    }
    g_list_store_remove_all(self->conversations);
    g_autoptr(GPtrArray) list = hearth_store_conversation_list(self->store, &error);
    for (guint i = 0; list && i < list->len; i++) {
        HearthStoreConversation *c = g_ptr_array_index(list, i);
        g_autoptr(HearthConversationItem) item = conversation_item_new(c->id, c->title, c->updated);
        g_list_store_append(self->conversations, item);
    }
    if (error)
        toast(self, error->message);
    show_conversations(self, query);
}

/* The chat settings popover shows the conversation's own settings; what it
 * leaves unset (and everything, for a new chat) comes from the defaults in
 * Preferences (GSettings). */
static void
load_settings_widgets(HearthWindow *self, const HearthStoreConversation *c)
{
    HearthGenParams d;
    hearth_gen_params_init(&d);
    g_autofree char *default_prompt = NULL;
    if (self->settings) {
        d.temperature = g_settings_get_double(self->settings, "temperature");
        d.top_p = g_settings_get_double(self->settings, "top-p");
        d.max_new_tokens = g_settings_get_int(self->settings, "max-new-tokens");
        default_prompt = g_settings_get_string(self->settings, "system-prompt");
        /* a default the user never set gives way to what the loaded model's makers recommend */
        HearthGenParams rec = d;
        if (self->engine && hearth_engine_get_recommended(self->engine, &rec)) {
            g_autoptr(GVariant) t = g_settings_get_user_value(self->settings, "temperature");
            g_autoptr(GVariant) p = g_settings_get_user_value(self->settings, "top-p");
            if (!t)
                d.temperature = rec.temperature;
            if (!p)
                d.top_p = rec.top_p;
        }
    }
    self->loading_settings = TRUE;
    GtkTextBuffer *buf = gtk_text_view_get_buffer(self->system_prompt_view);
    gtk_text_buffer_set_text(buf, c && c->system_prompt ? c->system_prompt : default_prompt ? default_prompt : "", -1);
    gtk_spin_button_set_value(self->temperature_spin, c && c->temperature >= 0 ? c->temperature : d.temperature);
    gtk_spin_button_set_value(self->top_p_spin, c && c->top_p >= 0 ? c->top_p : d.top_p);
    gtk_spin_button_set_value(self->max_tokens_spin, c && c->max_new_tokens > 0 ? c->max_new_tokens : d.max_new_tokens);
    self->loading_settings = FALSE;
}

static char *
system_prompt_text(HearthWindow *self)
{
    GtkTextBuffer *buf = gtk_text_view_get_buffer(self->system_prompt_view);
    GtkTextIter a, b;
    gtk_text_buffer_get_bounds(buf, &a, &b);
    char *text = gtk_text_buffer_get_text(buf, &a, &b, FALSE);
    g_strstrip(text);
    if (!*text) {
        g_free(text);
        return NULL;
    }
    return text;
}

static void
save_settings(HearthWindow *self)
{
    if (self->loading_settings || !self->store || !self->conversation_id)
        return;
    g_autofree char *sys = system_prompt_text(self);
    g_autoptr(GError) error = NULL;
    if (!hearth_store_conversation_set_settings(self->store, self->conversation_id, sys,
                                                gtk_spin_button_get_value(self->temperature_spin),
                                                gtk_spin_button_get_value(self->top_p_spin),
                                                gtk_spin_button_get_value_as_int(self->max_tokens_spin), &error))
        toast(self, error->message);
}

static void
on_setting_changed(HearthWindow *self)
{
    save_settings(self);
}

static void end_edit(HearthWindow *self, gboolean clear_composer);
static gboolean truncate_conversation(HearthWindow *self, guint from);

/* ---- a search result's message: scrolled to and highlighted ------------------------ */

static guint
message_position(HearthWindow *self, gint64 id)
{
    guint n = g_list_model_get_n_items(G_LIST_MODEL(self->messages));
    for (guint i = 0; id && i < n; i++) {
        g_autoptr(HearthMessage) m = g_list_model_get_item(G_LIST_MODEL(self->messages), i);
        if (hearth_message_get_id(m) == id)
            return i;
    }
    return G_MAXUINT;
}

static void
end_highlight(HearthWindow *self)
{
    g_clear_handle_id(&self->highlight_timeout, g_source_remove);
    if (self->highlighted)
        hearth_message_set_highlighted(self->highlighted, FALSE);
    g_clear_object(&self->highlighted);
}

static gboolean
highlight_timeout(gpointer data)
{
    HearthWindow *self = data;
    self->highlight_timeout = 0;
    end_highlight(self);
    return G_SOURCE_REMOVE;
}

/* GTK 4.8's "list.scroll-to-item" scrolls as little as it can (to a message
 * above the view until it is at the top, to one below until it is at the
 * bottom) and does nothing before the list is laid out. So, frame by frame:
 * wait for the first layout, go to the end, then back up to the wanted
 * message, which ends at the top of the view with what follows it below. */
static gboolean
scroll_tick(GtkWidget *list, GdkFrameClock *clock, gpointer data)
{
    HearthWindow *self = data;
    GtkAdjustment *adj = gtk_scrolled_window_get_vadjustment(self->message_scroller);
    if (self->scroll_ticks == 0 && gtk_adjustment_get_upper(adj) <= 0 && self->scroll_waited++ < 120)
        return G_SOURCE_CONTINUE; /* not laid out yet */
    if (self->scroll_ticks++ == 0) {
        scroll_to_bottom(self);
        return G_SOURCE_CONTINUE;
    }
    self->scroll_tick = 0;
    guint pos = message_position(self, self->scroll_to_message);
    self->scroll_to_message = 0;
    if (pos == G_MAXUINT)
        return G_SOURCE_REMOVE;
    gtk_widget_activate_action(list, "list.scroll-to-item", "u", pos);
    end_highlight(self);
    self->highlighted = g_list_model_get_item(G_LIST_MODEL(self->messages), pos);
    hearth_message_set_highlighted(self->highlighted, TRUE);
    self->highlight_timeout = g_timeout_add(2500, highlight_timeout, self);
    return G_SOURCE_REMOVE;
}

static void
scroll_to_message(HearthWindow *self, gint64 id)
{
    if (message_position(self, id) == G_MAXUINT)
        return;
    self->scroll_to_message = id;
    self->scroll_ticks = self->scroll_waited = 0;
    if (!self->scroll_tick)
        self->scroll_tick = gtk_widget_add_tick_callback(GTK_WIDGET(self->message_list), scroll_tick, self, NULL);
}

static void
stop_scrolling(HearthWindow *self)
{
    if (self->scroll_tick)
        gtk_widget_remove_tick_callback(GTK_WIDGET(self->message_list), self->scroll_tick);
    self->scroll_tick = 0;
    self->scroll_to_message = 0;
    end_highlight(self);
}

/* Opens conversation id (0: a new chat) at its end, or with message
 * `message_id` (a search result's) at the top of the view, highlighted. */
static void
open_conversation_at(HearthWindow *self, gint64 id, gint64 message_id)
{
    if (self->reply)
        hearth_engine_cancel(self->engine);
    end_edit(self, TRUE);
    stop_scrolling(self);
    g_list_store_remove_all(self->messages);
    self->conversation_id = id;
    g_autoptr(GError) error = NULL;
    g_autoptr(HearthStoreConversation) conv = id ? hearth_store_conversation_get(self->store, id, &error) : NULL;
    g_free(self->conversation_model);
    self->conversation_model = conv && conv->model && *conv->model ? g_strdup(conv->model) : NULL;
    g_clear_pointer(&self->last_status, g_free);
    self->conversation_context = id ? -1 : 0;
    load_settings_widgets(self, conv);
    if (id) {
        g_autoptr(GPtrArray) msgs = hearth_store_message_list(self->store, id, &error);
        for (guint i = 0; msgs && i < msgs->len; i++) {
            HearthStoreMessage *m = g_ptr_array_index(msgs, i);
            if (m->role == HEARTH_STORE_ROLE_SYSTEM)
                continue;
            g_autoptr(HearthMessage) hm = hearth_message_new(m->id, hearth_store_role_to_string(m->role), m->content,
                                                            hearth_store_state_to_string(m->state));
            hearth_message_set_versions(hm, m->version, m->n_versions);
            if (m->state == HEARTH_STORE_STATE_ERROR && m->error)
                hearth_message_set_note(hm, m->error);
            else if (m->role == HEARTH_STORE_ROLE_ASSISTANT) {
                g_autofree char *note = reply_note(self->conversation_model, m->stats.gen_tokens,
                                                   m->stats.tokens_per_s, FALSE);
                hearth_message_set_note(hm, note);
            }
            /* The status line starts from what the last reply left. */
            if (m->role == HEARTH_STORE_ROLE_ASSISTANT) {
                g_clear_pointer(&self->last_status, g_free);
                self->conversation_context = m->stats.prompt_tokens >= 0 && m->stats.gen_tokens >= 0
                                                 ? m->stats.prompt_tokens + m->stats.gen_tokens
                                                 : -1;
                if (m->stats.tokens_per_s > 0)
                    self->last_status = g_strdup_printf(_("last reply %.1f tokens/s"), m->stats.tokens_per_s);
            }
            g_list_store_append(self->messages, hm);
        }
    }
    if (error)
        toast(self, error->message);
    /* The conversation goes on with the model that wrote it, when it is here. */
    if (self->conversation_model) {
        const char *dir = find_model(self, self->conversation_model);
        const char *cur = self->loading_dir ? self->loading_dir : hearth_engine_get_model_dir(self->engine);
        if (dir && g_strcmp0(dir, cur) != 0) {
            select_model(self, dir);
        } else if (!dir) {
            g_autofree char *who = model_label(self->conversation_model);
            g_autofree char *text = g_strdup_printf(_("This conversation was written by %s, which is not installed"), who);
            toast(self, text);
        }
    }
    mark_last(self);
    update_send_state(self);
    if (message_id)
        scroll_to_message(self, message_id);
    else
        g_idle_add_once((GSourceOnceFunc)scroll_to_bottom, self);
    adw_leaflet_navigate(self->leaflet, ADW_NAVIGATION_DIRECTION_FORWARD);
}

static void
open_conversation(HearthWindow *self, gint64 id)
{
    open_conversation_at(self, id, 0);
}

/* ---- generation -------------------------------------------------------------------- */

static JsonNode *
conversation_json(HearthWindow *self)
{
    JsonArray *arr = json_array_new();
    g_autofree char *sys = system_prompt_text(self);
    if (sys) {
        JsonObject *o = json_object_new();
        json_object_set_string_member(o, "role", "system");
        json_object_set_string_member(o, "content", sys);
        json_array_add_object_element(arr, o);
    }
    guint n = g_list_model_get_n_items(G_LIST_MODEL(self->messages));
    for (guint i = 0; i < n; i++) {
        g_autoptr(HearthMessage) m = g_list_model_get_item(G_LIST_MODEL(self->messages), i);
        if (m == self->reply)
            continue;
        const char *state = hearth_message_get_state(m);
        if (g_strcmp0(state, "error") == 0 && !*hearth_message_get_content(m))
            continue;
        JsonObject *o = json_object_new();
        json_object_set_string_member(o, "role", hearth_message_get_role(m));
        json_object_set_string_member(o, "content", hearth_message_get_content(m));
        json_array_add_object_element(arr, o);
    }
    JsonNode *node = json_node_new(JSON_NODE_ARRAY);
    json_node_take_array(node, arr);
    return node;
}

/* Streams a reply into `reply` (taken over), a message of the list that
 * the store holds as PARTIAL: a new one, or a new version of the last. */
static void
generate_into(HearthWindow *self, HearthMessage *reply)
{
    self->reply = reply;
    g_autoptr(JsonNode) msgs = conversation_json(self);
    HearthGenParams p;
    hearth_gen_params_init(&p);
    hearth_engine_get_recommended(self->engine, &p);   /* top-k, min-p, repetition penalty: the model's, if given */
    p.temperature = gtk_spin_button_get_value(self->temperature_spin);
    p.top_p = gtk_spin_button_get_value(self->top_p_spin);
    p.max_new_tokens = gtk_spin_button_get_value_as_int(self->max_tokens_spin);
    if (self->settings)
        p.seed = (guint64)g_settings_get_int(self->settings, "seed");
    p.no_thinking = !gtk_switch_get_active(self->thinking_switch);
    self->reply_request = hearth_engine_generate(self->engine, msgs, &p);
    self->reply_conversation = self->conversation_id;
    g_free(self->last_status);
    self->last_status = g_strdup(_("replying…"));
    update_send_state(self);
    g_idle_add_once((GSourceOnceFunc)scroll_to_bottom, self);
}

static void
start_reply(HearthWindow *self)
{
    g_autoptr(GError) error = NULL;
    gint64 id = hearth_store_message_append(self->store, self->conversation_id, HEARTH_STORE_ROLE_ASSISTANT,
                                            HEARTH_STORE_STATE_PARTIAL, "", 0, -1, &error);
    if (!id) {
        show_store_error(self, _("The reply could not be started."), error);
        return;
    }
    HearthMessage *reply = hearth_message_new(id, "assistant", "", "partial");
    g_list_store_append(self->messages, reply);
    mark_last(self);
    generate_into(self, reply);
}

static gboolean
save_reply_timeout(gpointer data)
{
    HearthWindow *self = data;
    if (self->reply && self->reply_dirty) {
        g_autoptr(GError) error = NULL;
        if (!hearth_store_message_update_content(self->store, hearth_message_get_id(self->reply),
                                                 hearth_message_get_content(self->reply), -1, -1, &error)) {
            /* Said at once, not when the reply ends (the disk may be full):
             * once per reply; the next second tries again. */
            if (!self->reply_save_failed) {
                show_store_error(self, _("The reply is not being saved yet; Hearth keeps trying."), error);
                self->reply_save_failed = TRUE;
            }
            return G_SOURCE_CONTINUE;
        }
        if (self->reply_save_failed) {
            clear_store_error(self);
            self->reply_save_failed = FALSE;
        }
        self->reply_dirty = FALSE;
    }
    return G_SOURCE_CONTINUE;
}

/* Replies the store keeps because the database could not take them (a full disk): tried again every two
 * seconds until they are written; the banner says so meanwhile. */
static gboolean
retry_unsaved(gpointer data)
{
    HearthWindow *self = data;
    if (self->store && !hearth_store_flush_pending(self->store, NULL))
        return G_SOURCE_CONTINUE;
    self->unsaved_timeout = 0;
    clear_store_error(self);
    return G_SOURCE_REMOVE;
}

static void
end_reply_in_store(HearthWindow *self, gint64 id, HearthStoreState state, const char *content,
                   const HearthStoreGenStats *gs, const char *error_text)
{
    g_autoptr(GError) error = NULL;
    if (!self->store || hearth_store_message_end(self->store, id, state, content, gs, error_text, &error))
        return;
    if (!hearth_store_pending_count(self->store)) { /* not kept: it cannot be written at all */
        toast(self, error->message);
        return;
    }
    show_store_error(self, _("The reply is not saved yet; Hearth keeps trying."), error);
    if (!self->unsaved_timeout)
        self->unsaved_timeout = g_timeout_add_seconds(2, retry_unsaved, self);
}

static void
on_reply_delta(HearthEngine *engine, guint id, const char *text, HearthWindow *self)
{
    if (!self->reply || id != self->reply_request)
        return;
    gboolean follow = near_bottom(self);
    hearth_message_append(self->reply, text);
    self->reply_dirty = TRUE;
    /* A streamed reply is saved as it grows, at most once a second. */
    if (!self->save_timeout)
        self->save_timeout = g_timeout_add_seconds(1, save_reply_timeout, self);
    if (follow)
        g_idle_add_once((GSourceOnceFunc)scroll_to_bottom, self);
}

static void
on_context_trimmed(HearthEngine *engine, guint id, int dropped, HearthWindow *self)
{
    g_autofree char *text = g_strdup_printf(
        ngettext("The conversation is longer than the model’s context: the oldest message was left out.",
                 "The conversation is longer than the model’s context: the oldest %d messages were left out.",
                 dropped), dropped);
    toast(self, text);
}

static void
on_reply_finished(HearthEngine *engine, guint id, HearthReplyStats *stats, HearthWindow *self)
{
    if (!self->reply || id != self->reply_request)
        return;
    g_clear_handle_id(&self->save_timeout, g_source_remove);
    HearthMessage *reply = self->reply;
    gint64 mid = hearth_message_get_id(reply);
    HearthStoreGenStats gs = { stats->prompt_tokens, stats->generated_tokens, stats->tokens_per_second,
                               stats->time_to_first_token_s * 1000.0 };
    /* The status line is the open conversation's: a reply that finishes after
     * the user went to another one leaves it alone. */
    gboolean here = self->reply_conversation == self->conversation_id;
    if (here) {
        g_clear_pointer(&self->last_status, g_free);
        self->conversation_context = hearth_engine_get_context_used(engine);
    }
    self->reply_save_failed = FALSE;
    if (g_strcmp0(stats->stop_reason, "error") == 0) {
        end_reply_in_store(self, mid, HEARTH_STORE_STATE_ERROR, hearth_message_get_content(reply), &gs, stats->error);
        hearth_message_set_state(reply, "error");
        hearth_message_set_note(reply, stats->error);
        show_banner(self, stats->error);
    } else {
        gboolean stopped = g_strcmp0(stats->stop_reason, "cancelled") == 0;
        end_reply_in_store(self, mid, stopped ? HEARTH_STORE_STATE_INTERRUPTED : HEARTH_STORE_STATE_COMPLETE,
                           hearth_message_get_content(reply), &gs, NULL);
        hearth_message_set_state(reply, "complete");
        g_autofree char *note = reply_note(hearth_engine_get_model_dir(self->engine), stats->generated_tokens,
                                           stats->tokens_per_second, stopped);
        hearth_message_set_note(reply, note);
        if (here)
            self->last_status = g_strdup_printf(_("last reply %.1f tokens/s"), stats->tokens_per_second);
        if (g_strcmp0(stats->stop_reason, "context full") == 0)
            toast(self, _("The reply stopped because the model’s context is full."));
    }
    g_clear_object(&self->reply);
    self->reply_request = 0;
    mark_last(self);
    reload_conversations(self);
    update_send_state(self);
}

/* ---- models -------------------------------------------------------------------- */

/* The name the picker shows for a model folder. Folders named for their
 * format ("hf_f16", "awq-g128") say little on their own: the parent folder
 * is shown too. */
static char *
model_display_name(const char *dir)
{
    g_autofree char *name = g_path_get_basename(dir);
    if (g_str_has_prefix(name, "hf_") || g_str_has_prefix(name, "hf-") || g_str_has_prefix(name, "awq")) {
        g_autofree char *parent_dir = g_path_get_dirname(dir);
        g_autofree char *parent = g_path_get_basename(parent_dir);
        return g_strdup_printf("%s (%s)", parent, name);
    }
    return g_steal_pointer(&name);
}

/* The picker's order: display names as people read them (case-insensitive,
 * the locale's collation), then the folder, so equal names keep one order. */
static int
compare_models(const char *name_a, const char *dir_a, const char *name_b, const char *dir_b)
{
    g_autofree char *a = g_utf8_casefold(name_a, -1);
    g_autofree char *b = g_utf8_casefold(name_b, -1);
    int c = g_utf8_collate(a, b);
    return c ? c : g_strcmp0(dir_a, dir_b);
}

/* The picker selects what the engine is loading or has loaded (or nothing). */
static void
sync_picker(HearthWindow *self)
{
    const char *cur = self->loading_dir ? self->loading_dir : hearth_engine_get_model_dir(self->engine);
    guint sel = GTK_INVALID_LIST_POSITION;
    for (guint i = 0; cur && i < self->model_dirs->len; i++)
        if (g_strcmp0(g_ptr_array_index(self->model_dirs, i), cur) == 0)
            sel = i;
    gboolean was = self->updating_picker;
    self->updating_picker = TRUE;
    gtk_drop_down_set_selected(self->model_picker, sel);
    self->updating_picker = was;
}

/* Adds a model folder to the picker, in display-name order. */
static void
add_model_dir(HearthWindow *self, const char *dir)
{
    for (guint i = 0; i < self->model_dirs->len; i++)
        if (g_strcmp0(g_ptr_array_index(self->model_dirs, i), dir) == 0)
            return;
    g_autofree char *name = model_display_name(dir);
    guint pos = 0;
    while (pos < self->model_dirs->len &&
           compare_models(gtk_string_list_get_string(self->model_names, pos), g_ptr_array_index(self->model_dirs, pos),
                          name, dir) <= 0)
        pos++;
    gboolean was = self->updating_picker;
    self->updating_picker = TRUE;
    g_ptr_array_insert(self->model_dirs, (int)pos, g_strdup(dir));
    const char *const add[] = { name, NULL };
    gtk_string_list_splice(self->model_names, pos, 0, add);
    self->updating_picker = was;
    sync_picker(self);
}

/* The picker's folder for a conversation's model, or NULL when it is not there. */
static const char *
find_model(HearthWindow *self, const char *model)
{
    if (!model || !*model)
        return NULL;
    for (guint i = 0; i < self->model_dirs->len; i++)
        if (g_strcmp0(g_ptr_array_index(self->model_dirs, i), model) == 0)
            return g_ptr_array_index(self->model_dirs, i);
    if (g_path_is_absolute(model))
        return NULL;
    /* Older conversations stored the folder's name. */
    for (guint i = 0; i < self->model_dirs->len; i++) {
        g_autofree char *base = g_path_get_basename(g_ptr_array_index(self->model_dirs, i));
        if (g_strcmp0(base, model) == 0)
            return g_ptr_array_index(self->model_dirs, i);
    }
    return NULL;
}

/* A Hugging Face folder, a .gguf file or a folder holding one. */
static gboolean
is_model_folder(const char *dir)
{
    g_autofree char *cfg = g_build_filename(dir, "config.json", NULL);
    g_autofree char *gguf = NULL;
    return g_file_test(cfg, G_FILE_TEST_IS_REGULAR) || (hr_gguf_resolve(dir, &gguf, NULL) == HR_OK && gguf);
}

/* What the models folder was at the last scan: a change of its mtime, inode or presence is a reason to scan
 * it again when the window comes back to the front (one stat, not a walk of every model). */
static gint64
models_dir_stamp(HearthWindow *self)
{
    g_autofree char *root = models_dir(self);
    GStatBuf st;
    if (g_stat(root, &st) != 0)
        return -1;
    return (gint64)st.st_mtime * 1000003 + (gint64)st.st_ino;
}

/* The picker offers the models folder's models and the folders opened from
 * elsewhere before (the "model-folders" setting) that are still there. */
static void
scan_models(HearthWindow *self)
{
    g_autofree char *root = models_dir(self);
    self->models_dir_stamp = models_dir_stamp(self);
    /* a folder chosen in Preferences that is gone (a drive not connected): said, not made again */
    g_autofree char *chosen = self->settings ? g_settings_get_string(self->settings, "models-folder") : NULL;
    const gboolean missing = chosen && *chosen && hearth_models_dir_missing(chosen);
    if (missing && !self->models_dir_missing_said) { /* once: scans come at every return to the window */
        self->models_dir_missing_said = TRUE;
        g_autofree char *text = g_strdup_printf(_("The models folder “%s” is not there. If it is on a drive, "
                                                  "connect the drive; or choose another folder in Preferences."),
                                                chosen);
        show_banner(self, text);
        self->banner_kind = BANNER_MODELS_DIR;
    } else if (!missing) {
        self->models_dir_missing_said = FALSE;
        hide_banner_of(self, BANNER_MODELS_DIR);
    }
    g_autoptr(GDir) d = g_dir_open(root, 0, NULL);
    const char *name;
    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *dir = g_build_filename(root, name, NULL);
        if (is_model_folder(dir))
            add_model_dir(self, dir);
    }
    g_auto(GStrv) extra = self->settings ? g_settings_get_strv(self->settings, "model-folders") : NULL;
    for (guint i = 0; extra && extra[i]; i++)
        if (g_path_is_absolute(extra[i]) && is_model_folder(extra[i]))
            add_model_dir(self, extra[i]);
}

/* After a model loaded: it is the one to load at the next start, and a
 * folder outside the models folder joins the library (it is not copied). */
static void
remember_model(HearthWindow *self, const char *dir)
{
    if (!self->settings || !dir)
        return;
    g_settings_set_string(self->settings, "last-model", dir);
    g_autofree char *root = models_dir(self);
    g_autofree char *root_c = g_canonicalize_filename(root, NULL);
    g_autofree char *parent = g_path_get_dirname(dir);
    g_autofree char *parent_c = g_canonicalize_filename(parent, NULL);
    if (g_strcmp0(root_c, parent_c) == 0)
        return;
    g_auto(GStrv) folders = g_settings_get_strv(self->settings, "model-folders");
    if (g_strv_contains((const char *const *)folders, dir))
        return;
    g_autoptr(GStrvBuilder) b = g_strv_builder_new();
    g_strv_builder_addv(b, (const char **)folders);
    g_strv_builder_add(b, dir);
    g_auto(GStrv) updated = g_strv_builder_end(b);
    g_settings_set_strv(self->settings, "model-folders", (const char *const *)updated);
}

static void
select_model(HearthWindow *self, const char *dir_arg)
{
    g_autofree char *dir = g_strdup(dir_arg); /* dir_arg may point into model_dirs */
    g_free(self->loading_dir);
    self->loading_dir = g_strdup(dir);
    self->engine_reloading = FALSE;
    add_model_dir(self, dir);
    sync_picker(self);
    gtk_progress_bar_set_fraction(self->load_progress, 0.0);
    gtk_progress_bar_set_text(self->load_progress, NULL);
    hearth_engine_load(self->engine, dir);
    update_send_state(self);
}

static void
on_model_selected(GtkDropDown *dd, GParamSpec *pspec, HearthWindow *self)
{
    if (self->updating_picker)
        return;
    guint i = gtk_drop_down_get_selected(dd);
    if (i >= self->model_dirs->len)
        return;
    const char *dir = g_ptr_array_index(self->model_dirs, i);
    /* Choosing the model that is already there (or on its way) reloads nothing. */
    const char *cur = self->loading_dir ? self->loading_dir : hearth_engine_get_model_dir(self->engine);
    if (g_strcmp0(dir, cur) == 0)
        return;
    select_model(self, dir);
}

static void
on_load_progress(HearthEngine *engine, double fraction, int done, int total, HearthWindow *self)
{
    gtk_progress_bar_set_fraction(self->load_progress, fraction);
    if (total > 0) {
        /* Translators: loading a model, e.g. "120 of 291 tensors" */
        g_autofree char *text = g_strdup_printf(_("%d of %d tensors"), done, total);
        gtk_progress_bar_set_text(self->load_progress, text);
    }
}

/* The picker no longer lists a folder that failed to load (sync_picker then
 * selects the folder the engine has loaded, or nothing). */
static void
picker_after_failure(HearthWindow *self, const char *failed)
{
    const char *cur = hearth_engine_get_model_dir(self->engine);
    self->updating_picker = TRUE;
    for (guint i = 0; failed && i < self->model_dirs->len; i++) {
        if (g_strcmp0(g_ptr_array_index(self->model_dirs, i), failed) == 0 && g_strcmp0(failed, cur) != 0) {
            g_ptr_array_remove_index(self->model_dirs, i);
            gtk_string_list_remove(self->model_names, i);
            break;
        }
    }
    self->updating_picker = FALSE;
}

/* A model this small (the starter model) answers quickly and is often wrong: the start page says so and
 * offers the Models window, whose recommended models each say whether they fit this computer. */
#define SMALL_MODEL_PARAMS 300000000ull

/* The largest model another app downloaded that is not small and fits this computer's memory: the note
 * offers it by name ("Use llama3.2:3b"), so that a better model is one click away. */
static void
found_for_note_done(GObject *source, GAsyncResult *res, gpointer data)
{
    g_autoptr(GPtrArray) list = hearth_found_scan_finish(res, NULL);
    HearthWindow *self = data;
    if (!list) { /* cancelled: a newer scan, or the window went */
        g_object_unref(self);
        return;
    }
    const guint64 ram = hearth_host_memory_bytes();
    int best = -1;
    for (guint i = 0; i < list->len; i++) {
        const HearthFoundModel *m = g_ptr_array_index(list, i);
        if (!hearth_found_model_usable(m) || m->info->n_params < SMALL_MODEL_PARAMS ||
            (ram && !hearth_model_info_fits(m->info, 4096, ram)))
            continue;
        if (best < 0 || m->info->n_params > ((HearthFoundModel *)g_ptr_array_index(list, best))->info->n_params)
            best = (int)i;
    }
    g_clear_pointer(&self->found_models, g_ptr_array_unref);
    if (best >= 0 && gtk_widget_get_visible(self->small_model_note)) {
        self->found_models = g_ptr_array_ref(list);
        self->found_best = (guint)best;
        const HearthFoundModel *m = g_ptr_array_index(list, best);
        g_autofree char *params = hearth_format_param_count(m->info->n_params);
        g_autofree char *more = g_strdup_printf(_("%s (%s), which %s downloaded, is on this computer too."),
                                                m->name, params, m->app);
        g_autofree char *text = g_strdup_printf("%s\n%s", gtk_label_get_text(self->small_model_label), more);
        gtk_label_set_text(self->small_model_label, text);
        g_autofree char *label = g_strdup_printf(_("Use %s"), m->name);
        gtk_button_set_label(self->found_use_button, label);
        gtk_widget_set_visible(GTK_WIDGET(self->found_use_button), TRUE);
    }
    g_object_unref(self);
}

static void
on_found_use_clicked(HearthWindow *self)
{
    if (!self->found_models)
        return;
    const HearthFoundModel *m = g_ptr_array_index(self->found_models, self->found_best);
    g_autoptr(GError) error = NULL;
    g_autofree char *root = models_dir(self);
    g_autofree char *path = m->added ? g_strdup(m->added) : hearth_found_add(m, root, NULL, &error);
    if (!path) {
        g_autofree char *msg = g_strdup_printf(_("Could not add %s: %s"), m->name, error->message);
        toast(self, msg);
        return;
    }
    gtk_widget_set_visible(GTK_WIDGET(self->found_use_button), FALSE);
    select_model(self, path);
}

/* The last model was linked to another app's files that are gone (an `ollama pull` of a newer version): a scan
 * links it to what the app keeps now under the same name (hearth-found.c), then it opens as it would have;
 * when it cannot be linked again, the first model in the picker opens instead. */
static void
relinked(GObject *source, GAsyncResult *res, gpointer data)
{
    g_autoptr(GPtrArray) list = hearth_found_scan_finish(res, NULL);
    HearthWindow *self = data;
    g_autofree char *dir = g_object_steal_data(G_OBJECT(self), "relink-dir");
    /* (the window may have gone meanwhile: its engine then too) */
    if (list && dir && self->engine && !hearth_engine_get_model_dir(self->engine) && !self->loading_dir) {
        if (!hearth_found_link_gone(dir))
            select_model(self, dir);
        else if (self->model_dirs->len > 0)
            select_model(self, g_ptr_array_index(self->model_dirs, 0));
    }
    g_object_unref(self);
}

static void
relink_then_open(HearthWindow *self, const char *dir)
{
    g_object_set_data_full(G_OBJECT(self), "relink-dir", g_strdup(dir), g_free);
    g_autofree char *root = models_dir(self);
    hearth_found_scan_async(root, NULL, relinked, g_object_ref(self));
}

static void
update_small_model_note(HearthWindow *self, const char *dir)
{
    const guint64 n = dir ? hearth_engine_get_n_params(self->engine) : 0; /* from the engine: no file read here */
    const gboolean small = n > 0 && n < SMALL_MODEL_PARAMS;
    if (small) {
        g_autofree char *name = model_display_name(dir);
        g_autofree char *text = g_strdup_printf(_("“%s” is a small model: it answers quickly, but often wrongly. "
                                                  "A larger model gives better answers, if this computer has "
                                                  "the memory for it."),
                                                name);
        gtk_label_set_text(self->small_model_label, text);
    }
    gtk_widget_set_visible(GTK_WIDGET(self->found_use_button), FALSE);
    gtk_widget_set_visible(self->small_model_note, small);
    if (self->found_scan)
        g_cancellable_cancel(self->found_scan);
    g_clear_object(&self->found_scan);
    if (small) {
        self->found_scan = g_cancellable_new();
        g_autofree char *root = models_dir(self);
        hearth_found_scan_async(root, self->found_scan, found_for_note_done, g_object_ref(self));
    }
}

/* The start page's suggestions: a click puts the message in the composer, to send or change. */
typedef struct {
    const char *label; /* the button's */
    const char *text;  /* what goes into the composer */
} Suggestion;

static const Suggestion suggestions[] = {
    { N_("Explain how a rainbow forms"), N_("Explain how a rainbow forms, in a few sentences.") },
    { N_("Write a palindrome check in Python"),
      N_("Write a Python function that tells whether a word is a palindrome.") },
    { N_("Name a small bakery"), N_("Suggest three names for a small bakery in an old town.") },
    { N_("Summarize a text"), N_("Summarize this text in three sentences:\n\n") },
};

static void
on_suggestion_clicked(GtkButton *button, HearthWindow *self)
{
    const Suggestion *sg = g_object_get_data(G_OBJECT(button), "suggestion");
    GtkTextBuffer *buf = gtk_text_view_get_buffer(self->composer);
    gtk_text_buffer_set_text(buf, _(sg->text), -1);
    GtkTextIter end;
    gtk_text_buffer_get_end_iter(buf, &end);
    gtk_text_buffer_place_cursor(buf, &end);
    gtk_widget_grab_focus(GTK_WIDGET(self->composer));
}

static void
setup_suggestions(HearthWindow *self)
{
    for (guint i = 0; i < G_N_ELEMENTS(suggestions); i++) {
        GtkWidget *button = gtk_button_new_with_label(_(suggestions[i].label));
        GtkLabel *label = GTK_LABEL(gtk_button_get_child(GTK_BUTTON(button)));
        gtk_label_set_wrap(label, TRUE);
        gtk_label_set_justify(label, GTK_JUSTIFY_CENTER);
        gtk_widget_add_css_class(button, "suggestion");
        g_autofree char *tip = g_strchomp(g_strdup(_(suggestions[i].text)));
        gtk_widget_set_tooltip_text(button, tip);
        g_object_set_data(G_OBJECT(button), "suggestion", (gpointer)&suggestions[i]);
        g_signal_connect(button, "clicked", G_CALLBACK(on_suggestion_clicked), self);
        gtk_flow_box_append(self->suggestions, button);
        gtk_widget_set_focusable(gtk_widget_get_parent(button), FALSE); /* the button takes the focus, not its box */
    }
}

static void
on_load_finished(HearthEngine *engine, gboolean ok, const char *message, HearthWindow *self)
{
    if (!ok) {
        show_load_error(self, self->loading_dir, message);
        if (!self->engine_reloading)
            picker_after_failure(self, self->loading_dir);
    } else {
        gtk_revealer_set_reveal_child(self->banner, FALSE);
        /* where the model runs when not where asked: never silently (DESIGN.md) */
        g_autofree char *name = model_display_name(hearth_engine_get_model_dir(engine));
        g_autofree char *text = NULL;
        gboolean after_error = FALSE;   /* the reply failed: the toast offers it again */
        switch (hearth_engine_get_load_note(engine)) {
        case HEARTH_LOAD_NOTE_CPU_FOR_MEMORY:
            text = g_strdup_printf(_("“%s” runs on the CPU, more slowly: the graphics card does not have enough "
                                     "memory for it"), name);
            break;
        case HEARTH_LOAD_NOTE_CPU_FOR_DEVICE_ERROR:
            text = g_strdup_printf(_("“%s” runs on the CPU, more slowly: the graphics card failed while loading "
                                     "it"), name);
            break;
        case HEARTH_LOAD_NOTE_RELOADED:
            text = g_strdup_printf(_("The graphics card stopped working; “%s” is loaded again"), name);
            after_error = TRUE;
            break;
        case HEARTH_LOAD_NOTE_CPU_AFTER_DEVICE_ERROR:
            text = g_strdup_printf(_("The graphics card stopped working; “%s” now runs on the CPU"), name);
            after_error = TRUE;
            break;
        case HEARTH_LOAD_NOTE_NONE:
            break;
        }
        if (text)
            toast_with_action(self, text, after_error ? _("Regenerate") : NULL, "win.regenerate");
    }
    g_clear_pointer(&self->loading_dir, g_free);
    self->engine_reloading = FALSE;
    sync_picker(self);
    if (ok)
        remember_model(self, hearth_engine_get_model_dir(engine));
    update_small_model_note(self, ok ? hearth_engine_get_model_dir(engine) : NULL);
    if (ok && !self->conversation_id && !self->reply)   /* a new chat: the model's recommended sampling */
        load_settings_widgets(self, NULL);
    update_send_state(self);
    /* the composer takes the keys, when it is in sight (not behind the list of a folded window) */
    if (ok && (!adw_leaflet_get_folded(self->leaflet) || adw_leaflet_get_visible_child(self->leaflet) == self->content))
        gtk_widget_grab_focus(GTK_WIDGET(self->composer));
}

static void
on_engine_state(HearthEngine *engine, GParamSpec *pspec, HearthWindow *self)
{
    /* a load the engine began by itself (the model again, after a device error): its folder is the one
     * loading, for an error */
    if (hearth_engine_get_state(engine) == HEARTH_ENGINE_LOADING && !self->loading_dir) {
        self->loading_dir = g_strdup(hearth_engine_get_model_dir(engine));
        self->engine_reloading = TRUE;
    }
    update_send_state(self);
}

void
hearth_window_open_model(HearthWindow *self, const char *dir)
{
    select_model(self, dir);
}

/* ---- actions -------------------------------------------------------------------- */

static char *
composer_text(HearthWindow *self)
{
    GtkTextBuffer *buf = gtk_text_view_get_buffer(self->composer);
    GtkTextIter a, b;
    gtk_text_buffer_get_bounds(buf, &a, &b);
    return gtk_text_buffer_get_text(buf, &a, &b, FALSE);
}

static void open_store(HearthWindow *self);

/* The store that did not open for a reason that may pass (a full disk): opened again, at Send and when the
 * window is back in front. */
static void
retry_store(HearthWindow *self)
{
    if (self->store || !self->store_retry)
        return;
    self->store_retry = FALSE;
    open_store(self);
    if (!self->store)
        return;
    clear_store_error(self);
    reload_conversations(self);
    update_send_state(self);
}

static void
send_activated(GtkWidget *widget, const char *name, GVariant *param)
{
    HearthWindow *self = HEARTH_WINDOW(widget);
    retry_store(self);
    if (self->reply || hearth_engine_get_state(self->engine) != HEARTH_ENGINE_READY || !self->store)
        return;
    g_autofree char *text = composer_text(self);
    g_strstrip(text);
    if (!*text)
        return;
    /* An edit replaces the old exchange only now, when its new text is sent. */
    if (self->editing_from != G_MAXUINT) {
        guint from = self->editing_from;
        end_edit(self, FALSE);
        if (!truncate_conversation(self, from))
            return;
        mark_last(self);
    }
    g_autoptr(GError) error = NULL;
    if (!self->conversation_id) {
        self->conversation_id = hearth_store_conversation_create(self->store, hearth_engine_get_model_dir(self->engine),
                                                                &error);
        if (!self->conversation_id) {
            show_store_error(self, _("Your message was not sent; it is still in the box."), error);
            return;
        }
        g_free(self->conversation_model);
        self->conversation_model = g_strdup(hearth_engine_get_model_dir(self->engine));
        save_settings(self);
    } else if (g_strcmp0(self->conversation_model, hearth_engine_get_model_dir(self->engine)) != 0) {
        /* Another model goes on with it: reopened, it comes back with that one. */
        if (hearth_store_conversation_set_model(self->store, self->conversation_id,
                                                hearth_engine_get_model_dir(self->engine), &error)) {
            g_free(self->conversation_model);
            self->conversation_model = g_strdup(hearth_engine_get_model_dir(self->engine));
        } else {
            toast(self, error->message);
            g_clear_error(&error);
        }
    }
    gint64 id = hearth_store_message_append(self->store, self->conversation_id, HEARTH_STORE_ROLE_USER,
                                            HEARTH_STORE_STATE_COMPLETE, text, -1, -1, &error);
    if (!id) {
        show_store_error(self, _("Your message was not sent; it is still in the box."), error);
        return;
    }
    clear_store_error(self);
    gtk_text_buffer_set_text(gtk_text_view_get_buffer(self->composer), "", -1);
    g_autoptr(HearthMessage) m = hearth_message_new(id, "user", text, "complete");
    g_list_store_append(self->messages, m);
    reload_conversations(self);
    start_reply(self);
}

static void
stop_activated(GtkWidget *widget, const char *name, GVariant *param)
{
    HearthWindow *self = HEARTH_WINDOW(widget);
    if (self->reply)
        hearth_engine_cancel(self->engine);
    else if (self->editing_from != G_MAXUINT) {
        end_edit(self, TRUE);
        toast(self, _("Edit cancelled: the message is unchanged"));
    }
}

/* Leave edit mode; clear_composer: also drop the text being edited. */
static void
end_edit(HearthWindow *self, gboolean clear_composer)
{
    if (self->editing_from == G_MAXUINT)
        return;
    self->editing_from = G_MAXUINT;
    if (clear_composer)
        gtk_text_buffer_set_text(gtk_text_view_get_buffer(self->composer), "", -1);
}

/* Remove list rows from index `from` on, and the store's messages after
 * position from - 1. */
static gboolean
truncate_conversation(HearthWindow *self, guint from)
{
    g_autoptr(GError) error = NULL;
    if (hearth_store_message_delete_after(self->store, self->conversation_id, (int)from - 1, &error) < 0) {
        toast(self, error->message);
        return FALSE;
    }
    guint n = g_list_model_get_n_items(G_LIST_MODEL(self->messages));
    if (from < n)
        g_list_store_splice(self->messages, from, n - from, NULL, 0);
    return TRUE;
}

/* Regenerate keeps the reply it replaces: the new one is its next version
 * (‹ 1/2 › on the reply switches between them). */
static void
regenerate_activated(GtkWidget *widget, const char *name, GVariant *param)
{
    HearthWindow *self = HEARTH_WINDOW(widget);
    guint n = g_list_model_get_n_items(G_LIST_MODEL(self->messages));
    if (self->reply || n == 0 || hearth_engine_get_state(self->engine) != HEARTH_ENGINE_READY)
        return;
    g_autoptr(HearthMessage) last = g_list_model_get_item(G_LIST_MODEL(self->messages), n - 1);
    if (g_strcmp0(hearth_message_get_role(last), "assistant") != 0) {
        start_reply(self);
        return;
    }
    g_autoptr(GError) error = NULL;
    gint64 id = hearth_message_get_id(last);
    int version = hearth_store_message_new_version(self->store, id, &error);
    g_autoptr(HearthStoreMessage) stored = version ? hearth_store_message_get(self->store, id, &error) : NULL;
    if (!stored) {
        toast(self, error->message);
        return;
    }
    hearth_message_set_content(last, "");
    hearth_message_set_note(last, NULL);
    hearth_message_set_state(last, "partial");
    hearth_message_set_versions(last, stored->version, stored->n_versions);
    generate_into(self, g_object_ref(last));
}

/* Shows another version of a reply: the conversation goes on from it. */
static void
show_version_activated(GtkWidget *widget, const char *name, GVariant *param)
{
    HearthWindow *self = HEARTH_WINDOW(widget);
    gint64 id;
    int version;
    g_variant_get(param, "(xi)", &id, &version);
    guint pos = message_position(self, id);
    if (self->reply || pos == G_MAXUINT || !self->store)
        return;
    g_autoptr(GError) error = NULL;
    g_autoptr(HearthStoreMessage) m = hearth_store_message_show_version(self->store, id, version, &error)
                                          ? hearth_store_message_get(self->store, id, &error)
                                          : NULL;
    if (!m) {
        toast(self, error->message);
        return;
    }
    g_autoptr(HearthMessage) hm = g_list_model_get_item(G_LIST_MODEL(self->messages), pos);
    hearth_message_set_content(hm, m->content);
    hearth_message_set_state(hm, hearth_store_state_to_string(m->state));
    g_autofree char *note = m->state == HEARTH_STORE_STATE_ERROR && m->error
                                ? g_strdup(m->error)
                                : reply_note(self->conversation_model, m->stats.gen_tokens, m->stats.tokens_per_s,
                                             FALSE);
    hearth_message_set_note(hm, note);
    hearth_message_set_versions(hm, m->version, m->n_versions);
    /* The status line says what the version shown left. */
    self->conversation_context =
        m->stats.prompt_tokens >= 0 && m->stats.gen_tokens >= 0 ? m->stats.prompt_tokens + m->stats.gen_tokens : -1;
    g_clear_pointer(&self->last_status, g_free);
    if (m->stats.tokens_per_s > 0)
        self->last_status = g_strdup_printf(_("last reply %.1f tokens/s"), m->stats.tokens_per_s);
    update_status(self);
}

/* Edit is a mode: the last user message's text goes to the composer and
 * the exchange stays, in the view and in the store, until Send replaces it;
 * Escape (or opening another conversation) ends the mode and changes
 * nothing. */
static void
edit_last_activated(GtkWidget *widget, const char *name, GVariant *param)
{
    HearthWindow *self = HEARTH_WINDOW(widget);
    if (self->reply)
        return;
    guint n = g_list_model_get_n_items(G_LIST_MODEL(self->messages));
    for (guint i = n; i-- > 0;) {
        g_autoptr(HearthMessage) m = g_list_model_get_item(G_LIST_MODEL(self->messages), i);
        if (g_strcmp0(hearth_message_get_role(m), "user") != 0)
            continue;
        self->editing_from = i;
        gtk_text_buffer_set_text(gtk_text_view_get_buffer(self->composer), hearth_message_get_content(m), -1);
        gtk_widget_grab_focus(GTK_WIDGET(self->composer));
        toast(self, _("Editing the last message: Send replaces it and its reply, Escape cancels"));
        break;
    }
    update_send_state(self);
}

static void
copy_message_activated(GtkWidget *widget, const char *name, GVariant *param)
{
    HearthWindow *self = HEARTH_WINDOW(widget);
    gint64 id = g_variant_get_int64(param);
    guint n = g_list_model_get_n_items(G_LIST_MODEL(self->messages));
    for (guint i = 0; i < n; i++) {
        g_autoptr(HearthMessage) m = g_list_model_get_item(G_LIST_MODEL(self->messages), i);
        if (hearth_message_get_id(m) == id) {
            /* a reply's answer, without the thinking before it */
            g_autofree char *thinking = NULL;
            gboolean closed;
            const char *text = hearth_message_get_content(m);
            if (g_strcmp0(hearth_message_get_role(m), "assistant") == 0)
                text = hearth_markdown_split_thinking(text, &thinking, &closed);
            gdk_clipboard_set_text(gtk_widget_get_clipboard(widget), text);
            toast(self, _("Copied to the clipboard"));
            return;
        }
    }
}

static void
new_chat_activated(GtkWidget *widget, const char *name, GVariant *param)
{
    HearthWindow *self = HEARTH_WINDOW(widget);
    open_conversation(self, 0);
    reload_conversations(self);
    gtk_widget_grab_focus(GTK_WIDGET(self->composer));
}

static void
search_activated(GtkWidget *widget, const char *name, GVariant *param)
{
    HearthWindow *self = HEARTH_WINDOW(widget);
    gtk_toggle_button_set_active(self->search_button, TRUE);
    adw_leaflet_navigate(self->leaflet, ADW_NAVIGATION_DIRECTION_BACK);
    gtk_widget_grab_focus(GTK_WIDGET(self->search_entry));
}

/* Undo brings the conversation back and opens it, selected in the sidebar. */
static void
undo_delete_activated(GtkWidget *widget, const char *name, GVariant *param)
{
    HearthWindow *self = HEARTH_WINDOW(widget);
    gint64 id = g_variant_get_int64(param);
    g_autoptr(GError) error = NULL;
    if (!self->store || !hearth_store_conversation_restore(self->store, id, &error)) {
        if (error)
            toast(self, error->message);
        reload_conversations(self);
        return;
    }
    if (gtk_search_bar_get_search_mode(self->search_bar))
        gtk_toggle_button_set_active(self->search_button, FALSE); /* so that the list shows it */
    open_conversation(self, id);
    reload_conversations(self);
}

static void
delete_conversation(HearthWindow *self, gint64 id)
{
    g_autoptr(GError) error = NULL;
    if (!id || !self->store)
        return;
    if (!hearth_store_conversation_trash(self->store, id, &error)) {
        toast(self, error->message);
        return;
    }
    if (id == self->conversation_id)
        open_conversation(self, 0);
    reload_conversations(self);
    AdwToast *t = adw_toast_new(_("Conversation deleted"));
    adw_toast_set_button_label(t, _("_Undo"));
    adw_toast_set_action_name(t, "win.undo-delete");
    adw_toast_set_action_target_value(t, g_variant_new_int64(id));
    adw_toast_overlay_add_toast(self->toast_overlay, t);
    hearth_a11y_watch_toast(GTK_WIDGET(self->toast_overlay), t);
}

static void
delete_conversation_activated(GtkWidget *widget, const char *name, GVariant *param)
{
    HearthWindow *self = HEARTH_WINDOW(widget);
    delete_conversation(self, param ? g_variant_get_int64(param) : self->conversation_id);
}

/* Preferences' "Delete All Conversations", after its confirmation. */
static void
delete_all_conversations_activated(GtkWidget *widget, const char *name, GVariant *param)
{
    HearthWindow *self = HEARTH_WINDOW(widget);
    if (!self->store)
        return;
    if (self->reply)
        hearth_engine_cancel(self->engine);
    g_clear_handle_id(&self->save_timeout, g_source_remove);
    g_clear_object(&self->reply);
    self->reply_request = 0;
    g_autoptr(GError) error = NULL;
    if (hearth_store_conversation_delete_all(self->store, &error) < 0)
        toast(self, error->message);
    self->conversation_id = 0;
    open_conversation(self, 0);
    reload_conversations(self);
}

static void
rename_response(AdwMessageDialog *dialog, const char *response, HearthWindow *self)
{
    if (g_strcmp0(response, "rename") != 0)
        return;
    GtkEditable *entry = GTK_EDITABLE(adw_message_dialog_get_extra_child(dialog));
    gint64 id = GPOINTER_TO_SIZE(g_object_get_data(G_OBJECT(dialog), "conversation"));
    g_autoptr(GError) error = NULL;
    if (!hearth_store_conversation_rename(self->store, id, gtk_editable_get_text(entry), &error))
        toast(self, error->message);
    reload_conversations(self);
}

static void
rename_conversation_activated(GtkWidget *widget, const char *name, GVariant *param)
{
    HearthWindow *self = HEARTH_WINDOW(widget);
    gint64 id = param ? g_variant_get_int64(param) : self->conversation_id;
    if (!id || !self->store)
        return;
    g_autoptr(HearthStoreConversation) c = hearth_store_conversation_get(self->store, id, NULL);
    AdwMessageDialog *dialog = ADW_MESSAGE_DIALOG(adw_message_dialog_new(GTK_WINDOW(self), _("Rename Conversation"), NULL));
    GtkWidget *entry = gtk_entry_new();
    gtk_editable_set_text(GTK_EDITABLE(entry), c && c->title ? c->title : "");
    gtk_entry_set_activates_default(GTK_ENTRY(entry), TRUE);
    gtk_accessible_update_property(GTK_ACCESSIBLE(entry), GTK_ACCESSIBLE_PROPERTY_LABEL, _("Title"), -1);
    adw_message_dialog_set_extra_child(dialog, entry);
    adw_message_dialog_add_responses(dialog, "cancel", _("_Cancel"), "rename", _("_Rename"), NULL);
    adw_message_dialog_set_response_appearance(dialog, "rename", ADW_RESPONSE_SUGGESTED);
    adw_message_dialog_set_default_response(dialog, "rename");
    hearth_a11y_fix_mnemonic_buttons(GTK_WIDGET(dialog));
    g_object_set_data(G_OBJECT(dialog), "conversation", GSIZE_TO_POINTER(id));
    g_signal_connect(dialog, "response", G_CALLBACK(rename_response), self);
    gtk_window_present(GTK_WINDOW(dialog));
}

static void
export_response(GtkNativeDialog *dialog, int response, HearthWindow *self)
{
    if (response == GTK_RESPONSE_ACCEPT) {
        g_autoptr(GFile) file = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(dialog));
        gboolean json = GPOINTER_TO_INT(g_object_get_data(G_OBJECT(dialog), "json"));
        gint64 id = GPOINTER_TO_SIZE(g_object_get_data(G_OBJECT(dialog), "conversation"));
        g_autoptr(GError) error = NULL;
        g_autofree char *text = json ? hearth_store_export_json(self->store, id, &error)
                                     : hearth_store_export_markdown(self->store, id, &error);
        if (!text || !g_file_replace_contents(file, text, strlen(text), NULL, FALSE, G_FILE_CREATE_NONE, NULL, NULL,
                                              &error))
            show_banner(self, error->message);
        else
            toast(self, _("Conversation exported"));
    }
    g_object_unref(dialog);
}

/* "Title.md": the title without characters a file name should not hold,
 * at most 60 characters; "Conversation" when there is none. */
static char *
export_file_name(const char *title, const char *ext)
{
    GString *b = g_string_new(NULL);
    for (const char *p = title ? title : ""; *p && g_utf8_strlen(b->str, -1) < 60; p = g_utf8_next_char(p)) {
        gunichar u = g_utf8_get_char(p);
        if (u == '/' || u == '\\' || u == ':' || u < 0x20 || u == 0x7f)
            u = ' ';
        if (u == ' ' && (b->len == 0 || b->str[b->len - 1] == ' '))
            continue;
        g_string_append_unichar(b, u);
    }
    while (b->len && (b->str[b->len - 1] == ' ' || b->str[b->len - 1] == '.'))
        g_string_truncate(b, b->len - 1);
    if (b->len == 0 || b->str[0] == '.')
        g_string_assign(b, _("Conversation"));
    g_string_append_printf(b, ".%s", ext);
    return g_string_free(b, FALSE);
}

static void
export_conversation(HearthWindow *self, gint64 id, const char *format)
{
    if (!id || !self->store) {
        toast(self, _("There is no conversation to export yet"));
        return;
    }
    gboolean json = g_strcmp0(format, "json") == 0;
    GtkFileChooserNative *fc = gtk_file_chooser_native_new(_("Export Conversation"), GTK_WINDOW(self),
                                                           GTK_FILE_CHOOSER_ACTION_SAVE, _("_Export"), _("_Cancel"));
    /* Named for the conversation, in Documents (not "conversation.md" in
     * whatever folder the app was started from). */
    g_autoptr(HearthStoreConversation) c = hearth_store_conversation_get(self->store, id, NULL);
    g_autofree char *file_name = export_file_name(c && c->title ? c->title : NULL, json ? "json" : "md");
    gtk_file_chooser_set_current_name(GTK_FILE_CHOOSER(fc), file_name);
    const char *docs = g_get_user_special_dir(G_USER_DIRECTORY_DOCUMENTS);
    g_autoptr(GFile) folder = g_file_new_for_path(docs && g_file_test(docs, G_FILE_TEST_IS_DIR) ? docs
                                                                                               : g_get_home_dir());
    gtk_file_chooser_set_current_folder(GTK_FILE_CHOOSER(fc), folder, NULL);
    g_object_set_data(G_OBJECT(fc), "json", GINT_TO_POINTER(json));
    g_object_set_data(G_OBJECT(fc), "conversation", GSIZE_TO_POINTER(id));
    g_signal_connect(fc, "response", G_CALLBACK(export_response), self);
    gtk_native_dialog_show(GTK_NATIVE_DIALOG(fc));
}

static void
export_activated(GtkWidget *widget, const char *name, GVariant *param)
{
    HearthWindow *self = HEARTH_WINDOW(widget);
    export_conversation(self, self->conversation_id, g_variant_get_string(param, NULL));
}

/* The sidebar's context menu: a conversation and a format. */
static void
export_conversation_activated(GtkWidget *widget, const char *name, GVariant *param)
{
    gint64 id;
    const char *format;
    g_variant_get(param, "(x&s)", &id, &format);
    export_conversation(HEARTH_WINDOW(widget), id, format);
}

/* ---- attaching text files ------------------------------------------------------- */

/* Each file read goes into the composer at the cursor, as its name and a code fence; what cannot be attached
 * says why in a toast. */
static void
attach_done(GObject *source, GAsyncResult *result, gpointer data)
{
    g_autoptr(HearthWindow) self = data;
    g_autoptr(GPtrArray) read = hearth_attach_read_finish(result, NULL);
    if (!read) /* cancelled: the window is gone */
        return;
    GtkTextBuffer *buf = gtk_text_view_get_buffer(self->composer);
    GtkSourceLanguageManager *lm = gtk_source_language_manager_get_default();
    gboolean any = FALSE;
    gtk_text_buffer_begin_user_action(buf);
    for (guint i = 0; i < read->len; i++) {
        const HearthAttachment *a = read->pdata[i];
        if (a->error) {
            toast(self, a->error->message);
            continue;
        }
        const size_t len = strlen(a->text);
        g_autofree char *type = g_content_type_guess(a->name, (const guchar *)a->text, MIN(len, 4096), NULL);
        GtkSourceLanguage *lang = gtk_source_language_manager_guess_language(lm, a->name, type);
        g_autofree char *block = hearth_attach_format(a->name, a->text, lang ? gtk_source_language_get_id(lang) : NULL);
        GtkTextIter at;
        gtk_text_buffer_get_iter_at_mark(buf, &at, gtk_text_buffer_get_insert(buf));
        if (!gtk_text_iter_is_start(&at)) { /* a block starts on a line of its own, after a blank one */
            GtkTextIter before = at;
            gtk_text_iter_backward_char(&before);
            gtk_text_buffer_insert(buf, &at, gtk_text_iter_get_char(&before) == '\n' ? "\n" : "\n\n", -1);
        }
        gtk_text_buffer_insert(buf, &at, block, -1);
        gtk_text_buffer_place_cursor(buf, &at);
        any = TRUE;
        /* at least one token per five bytes in any language: this much cannot fit, and Send would say so */
        const int ctx = hearth_engine_get_context_length(self->engine);
        if (ctx > 0 && len / 5 > (size_t)ctx) {
            g_autofree char *text = g_strdup_printf(_("“%s” is longer than this model can read at once (%d "
                                                      "tokens): shorten it before sending."),
                                                    a->name, ctx);
            toast(self, text);
        }
    }
    gtk_text_buffer_end_user_action(buf);
    if (any)
        gtk_widget_grab_focus(GTK_WIDGET(self->composer));
}

static void
attach_files(HearthWindow *self, GFile *const *files, guint n)
{
    if (n > 0)
        hearth_attach_read_async(files, n, self->attach_cancel, attach_done, g_object_ref(self));
}

static void
attach_response(GtkNativeDialog *dialog, int response, HearthWindow *self)
{
    if (response == GTK_RESPONSE_ACCEPT) {
        g_autoptr(GListModel) chosen = gtk_file_chooser_get_files(GTK_FILE_CHOOSER(dialog));
        g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func(g_object_unref);
        for (guint i = 0; i < g_list_model_get_n_items(chosen); i++)
            g_ptr_array_add(files, g_list_model_get_item(chosen, i));
        attach_files(self, (GFile *const *)files->pdata, files->len);
    }
    g_object_unref(dialog);
}

static void
attach_file_activated(GtkWidget *widget, const char *name, GVariant *param)
{
    HearthWindow *self = HEARTH_WINDOW(widget);
    GtkFileChooserNative *fc = gtk_file_chooser_native_new(_("Attach Text Files"), GTK_WINDOW(self),
                                                           GTK_FILE_CHOOSER_ACTION_OPEN, _("_Attach"), _("_Cancel"));
    gtk_file_chooser_set_select_multiple(GTK_FILE_CHOOSER(fc), TRUE);
    g_autoptr(GtkFileFilter) text = gtk_file_filter_new();
    gtk_file_filter_set_name(text, _("Text Files"));
    gtk_file_filter_add_mime_type(text, "text/*");
    gtk_file_chooser_add_filter(GTK_FILE_CHOOSER(fc), text);
    g_autoptr(GtkFileFilter) all = gtk_file_filter_new();
    gtk_file_filter_set_name(all, _("All Files"));
    gtk_file_filter_add_pattern(all, "*");
    gtk_file_chooser_add_filter(GTK_FILE_CHOOSER(fc), all);
    g_signal_connect(fc, "response", G_CALLBACK(attach_response), self);
    gtk_native_dialog_show(GTK_NATIVE_DIALOG(fc));
}

/* Files copied in a file manager and pasted into the composer are attached, as dropped ones are (not pasted
 * as their paths). Anything else pastes as GtkTextView does. */
static void
paste_files_done(GObject *source, GAsyncResult *result, gpointer data)
{
    g_autoptr(HearthWindow) self = data;
    const GValue *value = gdk_clipboard_read_value_finish(GDK_CLIPBOARD(source), result, NULL);
    if (!value || !self->attach_cancel || g_cancellable_is_cancelled(self->attach_cancel))
        return;
    g_autoptr(GPtrArray) files = g_ptr_array_new();
    g_autoptr(GString) uris = g_string_new(NULL); /* what is not a local file (a link) pastes as its address */
    for (GSList *l = g_value_get_boxed(value); l; l = l->next) {
        if (g_file_is_native(l->data)) {
            g_ptr_array_add(files, l->data);
        } else {
            g_autofree char *uri = g_file_get_uri(l->data);
            g_string_append_printf(uris, "%s%s", uris->len ? "\n" : "", uri);
        }
    }
    if (uris->len)
        gtk_text_buffer_insert_at_cursor(gtk_text_view_get_buffer(self->composer), uris->str, -1);
    attach_files(self, (GFile *const *)files->pdata, files->len);
}

static void
on_composer_paste(GtkTextView *view, HearthWindow *self)
{
    GdkClipboard *clipboard = gtk_widget_get_clipboard(GTK_WIDGET(view));
    if (!gdk_content_formats_contain_gtype(gdk_clipboard_get_formats(clipboard), GDK_TYPE_FILE_LIST))
        return;
    g_signal_stop_emission_by_name(view, "paste-clipboard");
    gdk_clipboard_read_value_async(clipboard, GDK_TYPE_FILE_LIST, G_PRIORITY_DEFAULT, self->attach_cancel,
                                   paste_files_done, g_object_ref(self));
}

/* Files dropped on the chat: a model (a Hugging Face folder, a .gguf file) is opened, as "Open a Model
 * Folder…" would; text files are attached, while there is a model to write to. */
static gboolean
on_files_dropped(GtkDropTarget *target, const GValue *value, double x, double y, HearthWindow *self)
{
    if (!G_VALUE_HOLDS(value, GDK_TYPE_FILE_LIST))
        return FALSE;
    g_autoptr(GPtrArray) files = g_ptr_array_new();
    g_autofree char *model = NULL;
    for (GSList *l = g_value_get_boxed(value); l; l = l->next) {
        g_autofree char *path = g_file_get_path(l->data);
        const gboolean is_model = path && (g_file_test(path, G_FILE_TEST_IS_DIR) || g_str_has_suffix(path, ".gguf")) &&
                                  is_model_folder(path);
        if (is_model && !model)
            model = g_steal_pointer(&path);
        else if (!is_model)
            g_ptr_array_add(files, l->data);
    }
    if (model)
        select_model(self, model);
    const gboolean attach = files->len > 0 && gtk_widget_is_sensitive(GTK_WIDGET(self->composer));
    if (attach)
        attach_files(self, (GFile *const *)files->pdata, files->len);
    return model || attach;
}

static void
open_model_response(GtkNativeDialog *dialog, int response, HearthWindow *self)
{
    if (response == GTK_RESPONSE_ACCEPT) {
        g_autoptr(GFile) file = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(dialog));
        g_autofree char *path = g_file_get_path(file);
        if (path)
            select_model(self, path);
    }
    g_object_unref(dialog);
}

static void
open_model_activated(GtkWidget *widget, const char *name, GVariant *param)
{
    HearthWindow *self = HEARTH_WINDOW(widget);
    GtkFileChooserNative *fc = gtk_file_chooser_native_new(_("Open a Model Folder"), GTK_WINDOW(self),
                                                           GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER, _("_Open"),
                                                           _("_Cancel"));
    g_signal_connect(fc, "response", G_CALLBACK(open_model_response), self);
    gtk_native_dialog_show(GTK_NATIVE_DIALOG(fc));
}

/* "Start Chatting" after quantizing: a new conversation with the new model
 * (not the one open, which another model wrote). */
static void
quantized_model_ready(HearthQuantizeWizard *w, const char *dir, HearthWindow *self)
{
    open_conversation(self, 0);
    reload_conversations(self);
    select_model(self, dir);
}

static void
open_wizard(HearthWindow *self, const char *source)
{
    g_autofree char *dir = models_dir(self);
    HearthQuantizeWizard *w = hearth_quantize_wizard_new(GTK_WINDOW(self), dir);
    g_signal_connect_object(w, "model-ready", G_CALLBACK(quantized_model_ready), self, 0);
    if (source)
        hearth_quantize_wizard_set_source(w, source);
    gtk_window_present(GTK_WINDOW(w));
}

static void
quantize_model_activated(GtkWidget *widget, const char *name, GVariant *param)
{
    open_wizard(HEARTH_WINDOW(widget), NULL);
}

static void
manager_use_model(HearthModelManager *m, const char *dir, HearthWindow *self)
{
    select_model(self, dir);
}

static void
manager_quantize_model(HearthModelManager *m, const char *dir, HearthWindow *self)
{
    open_wizard(self, dir);
}

/* Models downloaded or imported there join the picker; the first page gives
 * way to the first of them when nothing is loaded yet. */
static gboolean
manager_closed(GtkWindow *w, HearthWindow *self)
{
    scan_models(self);
    if (hearth_engine_get_state(self->engine) == HEARTH_ENGINE_EMPTY && !self->loading_dir &&
        self->model_dirs->len > 0)
        select_model(self, g_ptr_array_index(self->model_dirs, 0));
    else
        update_send_state(self);
    return FALSE;
}

static void
manage_models_activated(GtkWidget *widget, const char *name, GVariant *param)
{
    HearthWindow *self = HEARTH_WINDOW(widget);
    g_autofree char *dir = models_dir(self);
    HearthModelManager *m = hearth_model_manager_new(GTK_WINDOW(self), dir);
    g_signal_connect_object(m, "use-model", G_CALLBACK(manager_use_model), self, 0);
    g_signal_connect_object(m, "quantize-model", G_CALLBACK(manager_quantize_model), self, 0);
    g_signal_connect_object(m, "close-request", G_CALLBACK(manager_closed), self, 0);
    gtk_window_present(GTK_WINDOW(m));
}

static void
dismiss_banner_activated(GtkWidget *widget, const char *name, GVariant *param)
{
    gtk_revealer_set_reveal_child(HEARTH_WINDOW(widget)->banner, FALSE);
}

/* ---- list item factories ----------------------------------------------------------- */

/* The model picker's button names the model in the room the header bar has
 * (ellipsized, so the window still fits GNOME's narrowest 360 px); its list
 * shows whole names. */
static void
picker_label_setup(GtkSignalListItemFactory *f, GtkListItem *item, gpointer ellipsize)
{
    GtkWidget *label = gtk_label_new(NULL);
    gtk_label_set_xalign(GTK_LABEL(label), 0);
    if (ellipsize) {
        gtk_label_set_ellipsize(GTK_LABEL(label), PANGO_ELLIPSIZE_END);
        gtk_label_set_max_width_chars(GTK_LABEL(label), 32);
    }
    gtk_list_item_set_child(item, label);
}

static void
picker_label_bind(GtkSignalListItemFactory *f, GtkListItem *item, gpointer user_data)
{
    GtkStringObject *s = gtk_list_item_get_item(item);
    gtk_label_set_text(GTK_LABEL(gtk_list_item_get_child(item)), gtk_string_object_get_string(s));
}

static void
message_setup(GtkSignalListItemFactory *f, GtkListItem *item, gpointer user_data)
{
    gtk_list_item_set_child(item, hearth_message_row_new());
    gtk_list_item_set_activatable(item, FALSE);
}

static void
message_bind(GtkSignalListItemFactory *f, GtkListItem *item, gpointer user_data)
{
    hearth_message_row_bind(HEARTH_MESSAGE_ROW(gtk_list_item_get_child(item)),
                            HEARTH_MESSAGE(gtk_list_item_get_item(item)));
}

static void
message_unbind(GtkSignalListItemFactory *f, GtkListItem *item, gpointer user_data)
{
    hearth_message_row_bind(HEARTH_MESSAGE_ROW(gtk_list_item_get_child(item)), NULL);
}

/* The context menu of a sidebar row (right-click, long-press, the Menu key
 * or Shift+F10): Rename, Export, Delete for that conversation. */
static void
on_conversation_menu_closed(GtkPopover *popover)
{
    g_idle_add_once((GSourceOnceFunc)gtk_widget_unparent, popover);
}

static void
conversation_menu(GtkWidget *row, double x, double y)
{
    HearthConversationItem *c = g_object_get_data(G_OBJECT(row), "hearth-conversation");
    if (!c)
        return;
    g_autoptr(GMenu) menu = g_menu_new();
    g_autoptr(GMenu) actions = g_menu_new();
    g_autoptr(GMenuItem) rename = g_menu_item_new(_("_Rename…"), NULL);
    g_menu_item_set_action_and_target_value(rename, "win.rename-conversation-id", g_variant_new_int64(c->id));
    g_menu_append_item(actions, rename);
    g_autoptr(GMenuItem) md = g_menu_item_new(_("Export as _Markdown…"), NULL);
    g_menu_item_set_action_and_target_value(md, "win.export-conversation", g_variant_new("(xs)", c->id, "markdown"));
    g_menu_append_item(actions, md);
    g_autoptr(GMenuItem) json = g_menu_item_new(_("Export as _JSON…"), NULL);
    g_menu_item_set_action_and_target_value(json, "win.export-conversation", g_variant_new("(xs)", c->id, "json"));
    g_menu_append_item(actions, json);
    g_menu_append_section(menu, NULL, G_MENU_MODEL(actions));
    g_autoptr(GMenu) danger = g_menu_new();
    g_autoptr(GMenuItem) del = g_menu_item_new(_("_Delete"), NULL);
    g_menu_item_set_action_and_target_value(del, "win.delete-conversation-id", g_variant_new_int64(c->id));
    g_menu_append_item(danger, del);
    g_menu_append_section(menu, NULL, G_MENU_MODEL(danger));

    GtkWidget *popover = gtk_popover_menu_new_from_model(G_MENU_MODEL(menu));
    gtk_widget_set_parent(popover, row);
    gtk_popover_set_has_arrow(GTK_POPOVER(popover), x >= 0);
    if (x >= 0) {
        GdkRectangle at = { (int)x, (int)y, 1, 1 };
        gtk_popover_set_pointing_to(GTK_POPOVER(popover), &at);
        gtk_widget_set_halign(popover, GTK_ALIGN_START);
    }
    g_signal_connect(popover, "closed", G_CALLBACK(on_conversation_menu_closed), NULL);
    gtk_popover_popup(GTK_POPOVER(popover));
}

static void
on_row_right_click(GtkGestureClick *gesture, int n_press, double x, double y, gpointer data)
{
    gtk_gesture_set_state(GTK_GESTURE(gesture), GTK_EVENT_SEQUENCE_CLAIMED);
    conversation_menu(gtk_event_controller_get_widget(GTK_EVENT_CONTROLLER(gesture)), x, y);
}

static void
on_row_long_press(GtkGestureLongPress *gesture, double x, double y, gpointer data)
{
    gtk_gesture_set_state(GTK_GESTURE(gesture), GTK_EVENT_SEQUENCE_CLAIMED);
    conversation_menu(gtk_event_controller_get_widget(GTK_EVENT_CONTROLLER(gesture)), x, y);
}

/* Menu or Shift+F10 on the focused row of the sidebar. */
static gboolean
on_conversation_list_key(GtkEventControllerKey *ctl, guint keyval, guint keycode, GdkModifierType state,
                         HearthWindow *self)
{
    if (keyval != GDK_KEY_Menu && !(keyval == GDK_KEY_F10 && (state & GDK_SHIFT_MASK)))
        return FALSE;
    GtkWidget *focus = gtk_widget_get_focus_child(GTK_WIDGET(self->conversation_list));
    GtkWidget *row = focus ? gtk_widget_get_first_child(focus) : NULL;
    if (!row || !g_object_get_data(G_OBJECT(row), "hearth-conversation"))
        return FALSE;
    conversation_menu(row, -1, -1);
    return TRUE;
}

static void
conversation_setup(GtkSignalListItemFactory *f, GtkListItem *item, gpointer user_data)
{
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 2);
    GtkWidget *title = gtk_label_new(NULL);
    GtkWidget *sub = gtk_label_new(NULL);
    gtk_label_set_xalign(GTK_LABEL(title), 0);
    gtk_label_set_ellipsize(GTK_LABEL(title), PANGO_ELLIPSIZE_END);
    gtk_label_set_xalign(GTK_LABEL(sub), 0);
    gtk_label_set_ellipsize(GTK_LABEL(sub), PANGO_ELLIPSIZE_END);
    gtk_widget_add_css_class(sub, "caption");
    gtk_widget_add_css_class(sub, "dim-label");
    gtk_box_append(GTK_BOX(box), title);
    gtk_box_append(GTK_BOX(box), sub);
    GtkGesture *click = gtk_gesture_click_new();
    gtk_gesture_single_set_button(GTK_GESTURE_SINGLE(click), GDK_BUTTON_SECONDARY);
    g_signal_connect(click, "pressed", G_CALLBACK(on_row_right_click), NULL);
    gtk_widget_add_controller(box, GTK_EVENT_CONTROLLER(click));
    GtkGesture *press = gtk_gesture_long_press_new();
    g_signal_connect(press, "pressed", G_CALLBACK(on_row_long_press), NULL);
    gtk_widget_add_controller(box, GTK_EVENT_CONTROLLER(press));
    gtk_list_item_set_child(item, box);
}

/* A row: the title, then when it was written to ("Today", "Yesterday",
 * a weekday, a date) or, for a search result, the matching text. */
static void
conversation_bind(GtkSignalListItemFactory *f, GtkListItem *item, gpointer user_data)
{
    HearthConversationItem *c = gtk_list_item_get_item(item);
    GtkWidget *box = gtk_list_item_get_child(item);
    GtkWidget *title = gtk_widget_get_first_child(box);
    GtkWidget *sub = gtk_widget_get_next_sibling(title);
    g_object_set_data_full(G_OBJECT(box), "hearth-conversation", g_object_ref(c), g_object_unref);
    gtk_label_set_text(GTK_LABEL(title), c->title);
    if (c->snippet) {
        gtk_label_set_markup(GTK_LABEL(sub), c->snippet);
        gtk_label_set_wrap(GTK_LABEL(sub), TRUE);
        gtk_label_set_wrap_mode(GTK_LABEL(sub), PANGO_WRAP_WORD_CHAR);
        gtk_label_set_lines(GTK_LABEL(sub), 2);
    } else {
        g_autofree char *when = relative_date(c->updated);
        gtk_label_set_text(GTK_LABEL(sub), when);
        gtk_label_set_wrap(GTK_LABEL(sub), FALSE);
        gtk_label_set_lines(GTK_LABEL(sub), -1);
    }
    gtk_widget_set_visible(sub, *gtk_label_get_text(GTK_LABEL(sub)) != '\0');
    gtk_accessible_update_property(GTK_ACCESSIBLE(box), GTK_ACCESSIBLE_PROPERTY_LABEL, c->title,
                                   GTK_ACCESSIBLE_PROPERTY_DESCRIPTION, gtk_label_get_text(GTK_LABEL(sub)), -1);
}

static void
on_conversation_activate(GtkListView *view, guint position, HearthWindow *self)
{
    g_autoptr(HearthConversationItem) c = g_list_model_get_item(G_LIST_MODEL(self->conversations), position);
    if (c && c->id != self->conversation_id) {
        open_conversation_at(self, c->id, c->message_id);
    } else if (c) {
        if (c->message_id)
            scroll_to_message(self, c->message_id);
        adw_leaflet_navigate(self->leaflet, ADW_NAVIGATION_DIRECTION_FORWARD);
    }
}

static gboolean
on_composer_key(GtkEventControllerKey *ctl, guint keyval, guint keycode, GdkModifierType state, HearthWindow *self)
{
    if ((keyval == GDK_KEY_Return || keyval == GDK_KEY_KP_Enter) && !(state & GDK_SHIFT_MASK)) {
        gtk_widget_activate_action(GTK_WIDGET(self), "win.send", NULL);
        return TRUE;
    }
    if (keyval == GDK_KEY_Escape && (self->reply || self->editing_from != G_MAXUINT)) {
        gtk_widget_activate_action(GTK_WIDGET(self), "win.stop", NULL);
        return TRUE;
    }
    return FALSE;
}

static void
on_search_changed(GtkSearchEntry *entry, HearthWindow *self)
{
    reload_conversations(self);
}

static void
on_back(GtkButton *button, HearthWindow *self)
{
    adw_leaflet_navigate(self->leaflet, ADW_NAVIGATION_DIRECTION_BACK);
}

/* ---- store opening ----------------------------------------------------------------- */

static void
fresh_store_response(AdwMessageDialog *dialog, const char *response, HearthWindow *self)
{
    if (g_strcmp0(response, "fresh") != 0) {
        show_banner(self, _("Conversations are not being saved: the database could not be opened."));
        return;
    }
    HearthStoreError reason = GPOINTER_TO_INT(g_object_get_data(G_OBJECT(dialog), "reason"));
    g_autofree char *moved = NULL;
    g_autoptr(GError) error = NULL;
    self->store = hearth_store_open_fresh(NULL, reason, &moved, &error);
    if (!self->store) {
        show_banner(self, error->message);
        return;
    }
    g_autofree char *text = g_strdup_printf(_("Started a new conversation database; the old one is kept as %s"), moved);
    toast(self, text);
    reload_conversations(self);
}

static void
open_store(HearthWindow *self)
{
    g_autoptr(GError) error = NULL;
    self->store = hearth_store_open(NULL, &error);
    if (self->store) {
        guint recovered = hearth_store_get_recovered_count(self->store);
        if (recovered)
            toast(self, _("A reply that was interrupted when Hearth last closed was kept"));
        if (hearth_store_is_read_only(self->store))
            show_banner(self, _("The conversations folder is read-only: past conversations can be read, but new "
                                "messages are not saved."));
        return;
    }
    if (!g_error_matches(error, HEARTH_STORE_ERROR, HEARTH_STORE_ERROR_CORRUPT) &&
        !g_error_matches(error, HEARTH_STORE_ERROR, HEARTH_STORE_ERROR_TOO_NEW)) {
        /* tried again when the window is back in front (space freed meanwhile, say) */
        show_store_error(self, _("The conversations could not be opened; Send tries again."), error);
        self->store_retry = TRUE;
        return;
    }
    gboolean newer = error->code == HEARTH_STORE_ERROR_TOO_NEW;
    AdwMessageDialog *dialog = ADW_MESSAGE_DIALOG(adw_message_dialog_new(
        GTK_WINDOW(self), newer ? _("Conversations Saved by a Newer Hearth") : _("Conversation Database Damaged"),
        error->message));
    adw_message_dialog_format_body(dialog, "%s\n\n%s", error->message,
                                   _("Hearth will not change that file. It can set it aside, keeping it, and start "
                                     "a new, empty conversation database."));
    adw_message_dialog_add_responses(dialog, "keep", _("_Not Now"), "fresh", _("_Start a New Database"), NULL);
    adw_message_dialog_set_response_appearance(dialog, "fresh", ADW_RESPONSE_SUGGESTED);
    hearth_a11y_fix_mnemonic_buttons(GTK_WIDGET(dialog));
    g_object_set_data(G_OBJECT(dialog), "reason", GINT_TO_POINTER(error->code));
    g_signal_connect(dialog, "response", G_CALLBACK(fresh_store_response), self);
    gtk_window_present(GTK_WINDOW(dialog));
}

/* ---- GObject ---------------------------------------------------------------------- */

static void
hearth_window_dispose(GObject *object)
{
    HearthWindow *self = HEARTH_WINDOW(object);
    g_clear_handle_id(&self->save_timeout, g_source_remove);
    g_clear_handle_id(&self->unsaved_timeout, g_source_remove); /* closing the store tries a last time */
    g_clear_handle_id(&self->highlight_timeout, g_source_remove);
    g_clear_object(&self->highlighted);
    if (self->attach_cancel)
        g_cancellable_cancel(self->attach_cancel);
    g_clear_object(&self->attach_cancel);
    if (self->scroll_tick && self->message_list)
        gtk_widget_remove_tick_callback(GTK_WIDGET(self->message_list), self->scroll_tick);
    self->scroll_tick = 0;
    if (self->reply && self->store) {
        /* Closing mid-reply: keep what was written, marked as interrupted. */
        hearth_store_message_finish(self->store, hearth_message_get_id(self->reply), HEARTH_STORE_STATE_INTERRUPTED,
                                    hearth_message_get_content(self->reply), -1, NULL, NULL);
    }
    g_clear_object(&self->reply);
    /* "Keep Conversations" off: nothing outlives the window. */
    if (self->store && self->settings && !g_settings_get_boolean(self->settings, "keep-conversations"))
        hearth_store_conversation_delete_all(self->store, NULL);
    if (self->settings)
        g_signal_handlers_disconnect_by_data(self->settings, self);
    g_clear_object(&self->settings);
    if (self->engine) {
        g_signal_handlers_disconnect_by_data(self->engine, self);
        g_clear_object(&self->engine);
    }
    g_clear_pointer(&self->store, hearth_store_close);
    g_clear_object(&self->messages);
    g_clear_object(&self->conversations);
    g_clear_object(&self->model_names);
    g_clear_pointer(&self->model_dirs, g_ptr_array_unref);
    g_clear_pointer(&self->loading_dir, g_free);
    g_clear_pointer(&self->conversation_model, g_free);
    if (self->search_cancel)
        g_cancellable_cancel(self->search_cancel);
    g_clear_object(&self->search_cancel);
    if (self->found_scan)
        g_cancellable_cancel(self->found_scan);
    g_clear_object(&self->found_scan);
    g_clear_pointer(&self->found_models, g_ptr_array_unref);
    g_clear_pointer(&self->last_status, g_free);
    gtk_widget_dispose_template(GTK_WIDGET(self), HEARTH_TYPE_WINDOW);
    G_OBJECT_CLASS(hearth_window_parent_class)->dispose(object);
}

/* The size to restore: gtk_window_get_default_size() is the unmaximized size. */
static gboolean
hearth_window_close_request(GtkWindow *window)
{
    HearthWindow *self = HEARTH_WINDOW(window);
    if (self->settings) {
        int w = 0, h = 0;
        gtk_window_get_default_size(window, &w, &h);
        g_settings_delay(self->settings);
        if (w > 0 && h > 0) {
            g_settings_set_int(self->settings, "window-width", w);
            g_settings_set_int(self->settings, "window-height", h);
        }
        g_settings_set_boolean(self->settings, "window-maximized", gtk_window_is_maximized(window));
        g_settings_apply(self->settings);
    }
    return GTK_WINDOW_CLASS(hearth_window_parent_class)->close_request(window);
}

static void
hearth_window_class_init(HearthWindowClass *klass)
{
    GObjectClass *object_class = G_OBJECT_CLASS(klass);
    GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
    object_class->dispose = hearth_window_dispose;
    GTK_WINDOW_CLASS(klass)->close_request = hearth_window_close_request;
    gtk_widget_class_set_template_from_resource(widget_class, "/io/github/hearthchat/Hearth/hearth-window.ui");
#define BIND(name) gtk_widget_class_bind_template_child(widget_class, HearthWindow, name)
    BIND(toast_overlay); BIND(leaflet); BIND(sidebar); BIND(content); BIND(search_button); BIND(search_bar);
    BIND(search_entry); BIND(sidebar_stack); BIND(no_results_page); BIND(conversation_list); BIND(back_button); BIND(model_picker);
    BIND(settings_button); BIND(system_prompt_view); BIND(temperature_spin); BIND(top_p_spin); BIND(thinking_switch);
    BIND(max_tokens_spin); BIND(banner); BIND(banner_label); BIND(banner_details); BIND(banner_detail_label);
    BIND(main_stack); BIND(empty_page); BIND(suggestions); BIND(small_model_note); BIND(small_model_label);
    BIND(found_use_button);
    BIND(load_progress); BIND(chat_stack); BIND(message_scroller); BIND(message_list); BIND(composer);
    BIND(composer_placeholder); BIND(send_stack); BIND(status_label);
#undef BIND
    gtk_widget_class_install_action(widget_class, "win.send", NULL, send_activated);
    gtk_widget_class_install_action(widget_class, "win.stop", NULL, stop_activated);
    gtk_widget_class_install_action(widget_class, "win.regenerate", NULL, regenerate_activated);
    gtk_widget_class_install_action(widget_class, "win.edit-last", NULL, edit_last_activated);
    gtk_widget_class_install_action(widget_class, "win.show-version", "(xi)", show_version_activated);
    gtk_widget_class_install_action(widget_class, "win.copy-message", "x", copy_message_activated);
    gtk_widget_class_install_action(widget_class, "win.new-chat", NULL, new_chat_activated);
    gtk_widget_class_install_action(widget_class, "win.search", NULL, search_activated);
    gtk_widget_class_install_action(widget_class, "win.undo-delete", "x", undo_delete_activated);
    gtk_widget_class_install_action(widget_class, "win.delete-conversation", NULL, delete_conversation_activated);
    gtk_widget_class_install_action(widget_class, "win.rename-conversation", NULL, rename_conversation_activated);
    gtk_widget_class_install_action(widget_class, "win.export", "s", export_activated);
    /* The same for any conversation (the sidebar's context menu). */
    gtk_widget_class_install_action(widget_class, "win.delete-conversation-id", "x", delete_conversation_activated);
    gtk_widget_class_install_action(widget_class, "win.rename-conversation-id", "x", rename_conversation_activated);
    gtk_widget_class_install_action(widget_class, "win.export-conversation", "(xs)", export_conversation_activated);
    gtk_widget_class_install_action(widget_class, "win.open-model", NULL, open_model_activated);
    gtk_widget_class_install_action(widget_class, "win.attach-file", NULL, attach_file_activated);
    gtk_widget_class_install_action(widget_class, "win.quantize-model", NULL, quantize_model_activated);
    gtk_widget_class_install_action(widget_class, "win.manage-models", NULL, manage_models_activated);
    gtk_widget_class_install_action(widget_class, "win.dismiss-banner", NULL, dismiss_banner_activated);
    gtk_widget_class_install_action(widget_class, "win.delete-all-conversations", NULL,
                                    delete_all_conversations_activated);
    gtk_widget_class_add_binding_action(widget_class, GDK_KEY_n, GDK_CONTROL_MASK, "win.new-chat", NULL);
    gtk_widget_class_add_binding_action(widget_class, GDK_KEY_f, GDK_CONTROL_MASK, "win.search", NULL);
    gtk_widget_class_add_binding_action(widget_class, GDK_KEY_o, GDK_CONTROL_MASK, "win.attach-file", NULL);
    gtk_widget_class_add_binding_action(widget_class, GDK_KEY_Escape, 0, "win.stop", NULL);
    gtk_widget_class_add_binding_action(widget_class, GDK_KEY_w, GDK_CONTROL_MASK, "window.close", NULL);
}

static void
hearth_window_init(HearthWindow *self)
{
    self->editing_from = G_MAXUINT;
    gtk_widget_init_template(GTK_WIDGET(self));
    hearth_a11y_fix_mnemonic_buttons(GTK_WIDGET(self));

    setup_suggestions(self);
    self->attach_cancel = g_cancellable_new();
    GtkDropTarget *drop = gtk_drop_target_new(GDK_TYPE_FILE_LIST, GDK_ACTION_COPY);
    g_signal_connect(drop, "drop", G_CALLBACK(on_files_dropped), self);
    g_signal_connect_swapped(self->found_use_button, "clicked", G_CALLBACK(on_found_use_clicked), self);
    gtk_widget_add_controller(self->content, GTK_EVENT_CONTROLLER(drop));
    self->messages = g_list_store_new(HEARTH_TYPE_MESSAGE);
    self->conversations = g_list_store_new(HEARTH_TYPE_CONVERSATION_ITEM);
    self->model_names = gtk_string_list_new(NULL);
    self->model_dirs = g_ptr_array_new_with_free_func(g_free);

    GtkListItemFactory *mf = gtk_signal_list_item_factory_new();
    g_signal_connect(mf, "setup", G_CALLBACK(message_setup), self);
    g_signal_connect(mf, "bind", G_CALLBACK(message_bind), self);
    g_signal_connect(mf, "unbind", G_CALLBACK(message_unbind), self);
    gtk_list_view_set_factory(self->message_list, mf);
    g_object_unref(mf);
    GtkNoSelection *msel = gtk_no_selection_new(G_LIST_MODEL(g_object_ref(self->messages)));
    gtk_list_view_set_model(self->message_list, GTK_SELECTION_MODEL(msel));
    g_object_unref(msel);

    GtkListItemFactory *cf = gtk_signal_list_item_factory_new();
    g_signal_connect(cf, "setup", G_CALLBACK(conversation_setup), self);
    g_signal_connect(cf, "bind", G_CALLBACK(conversation_bind), self);
    gtk_list_view_set_factory(self->conversation_list, cf);
    g_object_unref(cf);
    GtkSingleSelection *csel = gtk_single_selection_new(G_LIST_MODEL(g_object_ref(self->conversations)));
    gtk_single_selection_set_autoselect(csel, FALSE);
    gtk_single_selection_set_can_unselect(csel, TRUE);
    gtk_list_view_set_model(self->conversation_list, GTK_SELECTION_MODEL(csel));
    g_object_unref(csel);
    g_signal_connect(self->conversation_list, "activate", G_CALLBACK(on_conversation_activate), self);
    GtkEventController *list_keys = gtk_event_controller_key_new();
    g_signal_connect(list_keys, "key-pressed", G_CALLBACK(on_conversation_list_key), self);
    gtk_widget_add_controller(GTK_WIDGET(self->conversation_list), list_keys);

    gtk_drop_down_set_model(self->model_picker, G_LIST_MODEL(self->model_names));
    GtkListItemFactory *pf = gtk_signal_list_item_factory_new();
    g_signal_connect(pf, "setup", G_CALLBACK(picker_label_setup), GINT_TO_POINTER(TRUE));
    g_signal_connect(pf, "bind", G_CALLBACK(picker_label_bind), NULL);
    gtk_drop_down_set_factory(self->model_picker, pf);
    g_object_unref(pf);
    GtkListItemFactory *plf = gtk_signal_list_item_factory_new();
    g_signal_connect(plf, "setup", G_CALLBACK(picker_label_setup), NULL);
    g_signal_connect(plf, "bind", G_CALLBACK(picker_label_bind), NULL);
    gtk_drop_down_set_list_factory(self->model_picker, plf);
    g_object_unref(plf);
    /* GTK 4.8 leaves the drop-down's inner button unnamed. */
    for (GtkWidget *c = gtk_widget_get_first_child(GTK_WIDGET(self->model_picker)); c; c = gtk_widget_get_next_sibling(c))
        if (GTK_IS_TOGGLE_BUTTON(c))
            gtk_accessible_update_property(GTK_ACCESSIBLE(c), GTK_ACCESSIBLE_PROPERTY_LABEL, _("Model"), -1);
    g_signal_connect(self->model_picker, "notify::selected", G_CALLBACK(on_model_selected), self);

    GtkEventController *keys = gtk_event_controller_key_new();
    gtk_event_controller_set_propagation_phase(keys, GTK_PHASE_CAPTURE);
    g_signal_connect(keys, "key-pressed", G_CALLBACK(on_composer_key), self);
    g_signal_connect(self->composer, "paste-clipboard", G_CALLBACK(on_composer_paste), self);
    gtk_widget_add_controller(GTK_WIDGET(self->composer), keys);
    g_signal_connect_swapped(gtk_text_view_get_buffer(self->composer), "changed", G_CALLBACK(update_composer), self);

    g_signal_connect(self->search_entry, "search-changed", G_CALLBACK(on_search_changed), self);
    g_signal_connect_swapped(self->search_button, "notify::active", G_CALLBACK(reload_conversations), self);
    g_signal_connect(self->back_button, "clicked", G_CALLBACK(on_back), self);
    g_signal_connect_swapped(gtk_text_view_get_buffer(self->system_prompt_view), "changed",
                             G_CALLBACK(on_setting_changed), self);
    g_signal_connect_swapped(self->temperature_spin, "value-changed", G_CALLBACK(on_setting_changed), self);
    g_signal_connect_swapped(self->top_p_spin, "value-changed", G_CALLBACK(on_setting_changed), self);
    g_signal_connect_swapped(self->max_tokens_spin, "value-changed", G_CALLBACK(on_setting_changed), self);

    self->engine = hearth_engine_new();
    g_signal_connect(self->engine, "load-progress", G_CALLBACK(on_load_progress), self);
    g_signal_connect(self->engine, "load-finished", G_CALLBACK(on_load_finished), self);
    g_signal_connect(self->engine, "reply-delta", G_CALLBACK(on_reply_delta), self);
    g_signal_connect(self->engine, "context-trimmed", G_CALLBACK(on_context_trimmed), self);
    g_signal_connect(self->engine, "reply-finished", G_CALLBACK(on_reply_finished), self);
    g_signal_connect(self->engine, "notify::state", G_CALLBACK(on_engine_state), self);
    g_signal_connect_swapped(self->engine, "notify::context-used", G_CALLBACK(update_status), self);
}

static void
update_empty_page(HearthWindow *self)
{
    g_autofree char *dir = models_dir(self);
    g_autofree char *desc = g_strdup_printf(
        _("Choose a model in the picker above, or open a model folder: Hugging Face layout (config.json, "
          "tokenizer.json and *.safetensors) or a .gguf file. Models live in %s."), dir);
    adw_status_page_set_description(self->empty_page, desc);
}

/* A model downloaded from the first page: it joins the picker and loads. */
static void
on_get_model_ready(HearthGetModel *page, const char *path, HearthWindow *self)
{
    select_model(self, path);
}

/* The "Get a Model" page, for the models folder in use. */
static void
setup_get_model(HearthWindow *self)
{
    if (self->get_model)
        gtk_stack_remove(self->main_stack, GTK_WIDGET(self->get_model));
    g_autofree char *dir = models_dir(self);
    self->get_model = hearth_get_model_new(dir);
    g_signal_connect_object(self->get_model, "model-ready", G_CALLBACK(on_get_model_ready), self, 0);
    gtk_stack_add_named(self->main_stack, GTK_WIDGET(self->get_model), "get-model");
}

/* What a killed app left in the models folder's .work/, out of the way (at start, and for a new folder). */
static void
sweep_models_folder(HearthWindow *self)
{
    g_autofree char *root = models_dir(self);
    hearth_models_sweep_work_async(root);
}

/* Back in the window: models copied into the folder meanwhile, or its drive connected, show (the folder is
 * scanned again only when it changed). */
static void
on_active_changed(HearthWindow *self)
{
    if (!gtk_window_is_active(GTK_WINDOW(self)))
        return;
    if (models_dir_stamp(self) != self->models_dir_stamp)
        scan_models(self);
    retry_store(self);
}

static void
on_models_folder_changed(HearthWindow *self)
{
    update_empty_page(self);
    setup_get_model(self);
    sweep_models_folder(self);
    self->models_dir_missing_said = FALSE;
    scan_models(self);
    update_send_state(self);
}

static void
on_engine_settings_changed(HearthWindow *self)
{
    g_autofree char *backend = g_settings_get_string(self->settings, "backend");
    hearth_engine_set_load_options(self->engine, backend, g_settings_get_int(self->settings, "context-length"),
                                   g_settings_get_int(self->settings, "cpu-threads"));
}

/* New defaults show at once in a chat that has not started yet. */
static void
on_default_settings_changed(HearthWindow *self)
{
    if (!self->conversation_id && !self->reply)
        load_settings_widgets(self, NULL);
}

static void
connect_settings(HearthWindow *self, GSettings *settings)
{
    self->settings = g_object_ref(settings);
    g_settings_bind(settings, "thinking", self->thinking_switch, "active", G_SETTINGS_BIND_DEFAULT);
    int w = g_settings_get_int(settings, "window-width");
    int h = g_settings_get_int(settings, "window-height");
    if (w > 0 && h > 0)
        gtk_window_set_default_size(GTK_WINDOW(self), w, h);
    if (g_settings_get_boolean(settings, "window-maximized"))
        gtk_window_maximize(GTK_WINDOW(self));
    g_signal_connect_swapped(settings, "changed::models-folder", G_CALLBACK(on_models_folder_changed), self);
    g_signal_connect_swapped(settings, "changed::backend", G_CALLBACK(on_engine_settings_changed), self);
    g_signal_connect_swapped(settings, "changed::context-length", G_CALLBACK(on_engine_settings_changed), self);
    g_signal_connect_swapped(settings, "changed::cpu-threads", G_CALLBACK(on_engine_settings_changed), self);
    static const char *const defaults[] = { "temperature", "top-p", "max-new-tokens", "system-prompt" };
    for (guint i = 0; i < G_N_ELEMENTS(defaults); i++) {
        g_autofree char *signal = g_strconcat("changed::", defaults[i], NULL);
        g_signal_connect_swapped(settings, signal, G_CALLBACK(on_default_settings_changed), self);
    }
    on_engine_settings_changed(self);
}

HearthWindow *
hearth_window_new(HearthApplication *app)
{
    HearthWindow *self = g_object_new(HEARTH_TYPE_WINDOW, "application", app, NULL);
    GtkShortcutsWindow *help = gtk_application_window_get_help_overlay(GTK_APPLICATION_WINDOW(self));
    if (help)
        hearth_a11y_name_unlabelled(GTK_WIDGET(help));
    connect_settings(self, hearth_application_get_settings(app));
    update_empty_page(self);
    setup_get_model(self);
    open_store(self);
    reload_conversations(self);
    if (g_list_model_get_n_items(G_LIST_MODEL(self->conversations)) == 0) /* folded, with nothing to list: the chat */
        adw_leaflet_set_visible_child(self->leaflet, self->content);
    load_settings_widgets(self, NULL);
    sweep_models_folder(self);
    scan_models(self);
    g_signal_connect(self, "notify::is-active", G_CALLBACK(on_active_changed), NULL);
    update_send_state(self);
    const char *model = hearth_application_get_model_dir(app);
    g_autofree char *last = g_settings_get_string(self->settings, "last-model");
    if (model)
        select_model(self, model);
    else if (last && *last && g_path_is_absolute(last) && hearth_found_link_gone(last))
        relink_then_open(self, last);   /* another app replaced its files since: linked again, then opened */
    else if (last && *last && g_path_is_absolute(last) && is_model_folder(last))
        select_model(self, last);
    else if (self->model_dirs->len > 0)
        select_model(self, g_ptr_array_index(self->model_dirs, 0));
    return self;
}
