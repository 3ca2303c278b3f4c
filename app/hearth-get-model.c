/* hearth-get-model.c — see hearth-get-model.h. */
#include "hearth-get-model.h"

#include <glib/gi18n.h>

#include "hearth-found.h"
#include "hearth-hub.h"
#include "hearth-model-manager.h"
#include "hearth-models.h"

struct _HearthGetModel {
    AdwBin parent_instance;

    char *models_dir;
    GPtrArray *rows;          /* Row *, one per recommended model */
    GCancellable *download;   /* the download running, or NULL */
    AdwStatusPage *status;
    AdwPreferencesGroup *found;  /* models other apps keep here (hearth-found.h) */
    GPtrArray *found_models;     /* HearthFoundModel *, the scan's */
    GCancellable *found_scan;
};

G_DEFINE_FINAL_TYPE(HearthGetModel, hearth_get_model, ADW_TYPE_BIN)

enum { SIGNAL_MODEL_READY, N_SIGNALS };
static guint signals[N_SIGNALS];

typedef struct {
    HearthGetModel *page;     /* not a reference: the page owns the rows */
    HearthRecommendedModel *model;
    AdwActionRow *row;
    GtkButton *button;
    GtkProgressBar *bar;
    char *subtitle;           /* the row's resting subtitle */
} Row;

static void
row_free(Row *r)
{
    hearth_recommended_model_free(r->model);
    g_free(r->subtitle);
    g_free(r);
}

static void
set_busy(HearthGetModel *self, Row *active)
{
    for (guint i = 0; i < self->rows->len; i++) {
        Row *r = g_ptr_array_index(self->rows, i);
        gtk_widget_set_sensitive(GTK_WIDGET(r->button), !active || r == active);
    }
}

static void
on_progress(const HearthHubProgress *p, gpointer user)
{
    Row *r = user;
    if (p->total)
        gtk_progress_bar_set_fraction(r->bar, (double)p->done / (double)p->total);
    g_autofree char *done = g_format_size(p->done), *total = g_format_size(p->total);
    GString *s = g_string_new(NULL);
    g_string_printf(s, _("Downloading: %s of %s"), done, total);
    hearth_append_eta(s, p->eta_seconds);
    adw_action_row_set_subtitle(r->row, s->str);
    g_string_free(s, TRUE);
}

typedef struct {
    HearthGetModel *page;     /* a reference */
    Row *row;
} Job;

static void
download_done(GObject *source, GAsyncResult *res, gpointer data)
{
    Job *j = data;
    HearthGetModel *self = j->page;
    Row *r = j->row;
    g_free(j);
    g_autoptr(GError) error = NULL;
    g_autofree char *path = hearth_hub_download_finish(res, &error);
    g_clear_object(&self->download);
    set_busy(self, NULL);
    gtk_widget_set_visible(GTK_WIDGET(r->bar), FALSE);
    if (path) {
        adw_action_row_set_subtitle(r->row, _("Downloaded — opening it…"));
        gtk_button_set_label(r->button, _("Downloaded"));
        gtk_widget_set_sensitive(GTK_WIDGET(r->button), FALSE);
        g_signal_emit(self, signals[SIGNAL_MODEL_READY], 0, path);
    } else if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
        adw_action_row_set_subtitle(r->row, _("Paused. What is downloaded is kept; Resume continues."));
        gtk_button_set_label(r->button, _("Resume"));
    } else if (g_error_matches(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_NETWORK)) {
        adw_action_row_set_subtitle(r->row, _("Could not reach Hugging Face. Check the internet connection and "
                                              "try again; what is downloaded is kept."));
        gtk_button_set_label(r->button, _("Try Again"));
    } else if (g_error_matches(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_NO_SPACE)) {
        adw_action_row_set_subtitle(r->row, error->message);
        gtk_button_set_label(r->button, _("Try Again"));
    } else {
        g_autofree char *msg = g_strdup_printf(_("The download failed: %s"), error->message);
        adw_action_row_set_subtitle(r->row, msg);
        gtk_button_set_label(r->button, _("Try Again"));
    }
    g_object_unref(self);
}

static void
download_clicked(GtkButton *b, Row *r)
{
    HearthGetModel *self = r->page;
    if (self->download) { /* the running one: its button pauses it */
        g_cancellable_cancel(self->download);
        return;
    }
    HearthHubOptions opt;
    hearth_hub_options_init(&opt);
    opt.models_dir = self->models_dir;
    opt.progress = on_progress;
    opt.user_data = r;
    self->download = g_cancellable_new();
    set_busy(self, r);
    gtk_progress_bar_set_fraction(r->bar, 0.0);
    gtk_widget_set_visible(GTK_WIDGET(r->bar), TRUE);
    gtk_button_set_label(r->button, _("Pause"));
    adw_action_row_set_subtitle(r->row, _("Asking Hugging Face for the files…"));
    Job *j = g_new0(Job, 1);
    j->page = g_object_ref(self);
    j->row = r;
    hearth_hub_download_async(r->model->repo_id, &opt, self->download, download_done, j);
}

static GtkWidget *memory_badge(guint64 need, guint64 ram);

/* One that other apps keep here: linked into the models folder (no copy) and opened. */
static void
use_found_clicked(GtkButton *b, HearthGetModel *self)
{
    guint i = GPOINTER_TO_UINT(g_object_get_data(G_OBJECT(b), "found-index"));
    const HearthFoundModel *m = g_ptr_array_index(self->found_models, i);
    AdwActionRow *row = ADW_ACTION_ROW(gtk_widget_get_ancestor(GTK_WIDGET(b), ADW_TYPE_ACTION_ROW));
    g_autoptr(GError) error = NULL;
    g_autofree char *path = hearth_found_add(m, self->models_dir, NULL, &error);
    if (!path) {
        g_autofree char *msg = g_strdup_printf(_("Could not add it: %s"), error->message);
        adw_action_row_set_subtitle(row, msg);
        return;
    }
    adw_action_row_set_subtitle(row, _("Opening it…"));
    gtk_widget_set_sensitive(GTK_WIDGET(b), FALSE);
    g_signal_emit(self, signals[SIGNAL_MODEL_READY], 0, path);
}

static void
found_done(GObject *source, GAsyncResult *res, gpointer data)
{
    g_autoptr(GPtrArray) list = hearth_found_scan_finish(res, NULL);
    HearthGetModel *self = data;
    if (!list) { /* cancelled: the page went away */
        g_object_unref(self);
        return;
    }
    self->found_models = g_ptr_array_ref(list);
    const guint64 ram = hearth_host_memory_bytes();
    guint shown = 0;
    gboolean suggested = FALSE;
    for (guint i = 0; i < list->len; i++) {
        HearthFoundModel *m = g_ptr_array_index(list, i);
        if (!hearth_found_model_usable(m) || m->added)
            continue;
        shown++;
        AdwActionRow *row = ADW_ACTION_ROW(adw_action_row_new());
        adw_preferences_row_set_title(ADW_PREFERENCES_ROW(row), m->name);
        g_autofree char *what = hearth_found_describe(m);
        adw_action_row_set_subtitle(row, what);
        adw_action_row_set_subtitle_lines(row, 3);
        const gboolean fits = ram == 0 || hearth_model_info_fits(m->info, 4096, ram);
        if (!fits)
            adw_action_row_add_suffix(row, memory_badge(hearth_model_info_memory_needed(m->info, 4096), ram));
        GtkWidget *b = gtk_button_new_with_label(_("Use"));
        gtk_widget_set_valign(b, GTK_ALIGN_CENTER);
        g_autofree char *label = g_strdup_printf(_("Use %s"), m->name);
        gtk_accessible_update_property(GTK_ACCESSIBLE(b), GTK_ACCESSIBLE_PROPERTY_LABEL, label, -1);
        g_autofree char *tip = g_strdup_printf(_("Chat with it here. Its files stay where %s keeps them: no copy."),
                                               m->app);
        gtk_widget_set_tooltip_text(b, tip);
        g_object_set_data(G_OBJECT(b), "found-index", GUINT_TO_POINTER(i));
        g_signal_connect(b, "clicked", G_CALLBACK(use_found_clicked), self);
        if (fits && !suggested) { /* a model already here beats a download */
            gtk_widget_add_css_class(b, "suggested-action");
            suggested = TRUE;
            for (guint k = 0; k < self->rows->len; k++)
                gtk_widget_remove_css_class(GTK_WIDGET(((Row *)g_ptr_array_index(self->rows, k))->button),
                                            "suggested-action");
        }
        adw_action_row_add_suffix(row, b);
        adw_preferences_group_add(self->found, GTK_WIDGET(row));
    }
    g_autofree char *unusable = hearth_found_unusable_text(list);
    if (unusable)
        adw_preferences_group_set_description(self->found, unusable);
    gtk_widget_set_visible(GTK_WIDGET(self->found), shown > 0 || unusable);
    if (shown > 0)
        adw_status_page_set_description(self->status,
                                        _("Hearth runs AI models on this computer. Use one that another app "
                                          "downloaded, as it is, or download one — after that, your chats stay "
                                          "here and work offline."));
    g_object_unref(self);
}

static GtkWidget *
badge(const char *text, const char *css)
{
    GtkWidget *l = gtk_label_new(text);
    gtk_widget_add_css_class(l, "caption");
    gtk_widget_add_css_class(l, css);
    gtk_widget_set_valign(l, GTK_ALIGN_CENTER);
    return l;
}

/* "Fits this computer" / "Too large for this computer" for a model that needs `need` bytes, with the figures in
 * its tooltip (ram 0: unknown, it fits). */
static GtkWidget *
memory_badge(guint64 need, guint64 ram)
{
    const gboolean fits = ram == 0 || need <= ram;
    GtkWidget *b = badge(fits ? _("Fits this computer") : _("Too large for this computer"),
                         fits ? "success" : "warning");
    g_autofree char *need_s = g_format_size(need), *have = g_format_size(ram);
    g_autofree char *tip = ram ? g_strdup_printf(_("Needs about %s of memory; this computer has %s."), need_s, have)
                               : g_strdup_printf(_("Needs about %s of memory."), need_s);
    gtk_widget_set_tooltip_text(b, tip);
    return b;
}

static void
activate_row_action(AdwActionRow *row, gpointer action)
{
    gtk_widget_activate_action(GTK_WIDGET(row), action, NULL);
}

static GtkWidget *
link_row(const char *title, const char *subtitle, const char *action)
{
    GtkWidget *row = adw_action_row_new();
    adw_preferences_row_set_title(ADW_PREFERENCES_ROW(row), title);
    adw_action_row_set_subtitle(ADW_ACTION_ROW(row), subtitle);
    adw_action_row_add_suffix(ADW_ACTION_ROW(row), gtk_image_new_from_icon_name("go-next-symbolic"));
    gtk_list_box_row_set_activatable(GTK_LIST_BOX_ROW(row), TRUE);
    g_signal_connect(row, "activated", G_CALLBACK(activate_row_action), (gpointer)action);
    return row;
}

static void
build(HearthGetModel *self)
{
    GtkWidget *status = adw_status_page_new();
    self->status = ADW_STATUS_PAGE(status);
    adw_status_page_set_icon_name(ADW_STATUS_PAGE(status), "io.github.hearthchat.Hearth");
    adw_status_page_set_title(ADW_STATUS_PAGE(status), _("Get a Model"));
    adw_status_page_set_description(ADW_STATUS_PAGE(status),
                                    _("Hearth runs AI models on this computer. Download one to start — after that, "
                                      "your chats stay here and work offline."));
    GtkWidget *clamp = adw_clamp_new();
    adw_clamp_set_maximum_size(ADW_CLAMP(clamp), 560);
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 24);
    adw_clamp_set_child(ADW_CLAMP(clamp), box);
    adw_status_page_set_child(ADW_STATUS_PAGE(status), clamp);

    self->found = ADW_PREFERENCES_GROUP(adw_preferences_group_new());
    adw_preferences_group_set_title(self->found, _("On This Computer"));
    gtk_widget_set_visible(GTK_WIDGET(self->found), FALSE);
    gtk_box_append(GTK_BOX(box), GTK_WIDGET(self->found));
    self->found_scan = g_cancellable_new();
    hearth_found_scan_async(self->models_dir, self->found_scan, found_done, g_object_ref(self));

    GtkWidget *group = adw_preferences_group_new();
    adw_preferences_group_set_title(ADW_PREFERENCES_GROUP(group), _("Recommended"));
    const guint64 ram = hearth_host_memory_bytes();
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) list = hearth_models_load_recommended(NULL, &error);
    if (!list)
        adw_preferences_group_set_description(ADW_PREFERENCES_GROUP(group), error->message);
    gboolean suggested = FALSE;
    for (guint i = 0; list && i < list->len; i++) {
        HearthRecommendedModel *m = g_ptr_array_index(list, i);
        if (m->gated) /* they need an account and a token first: the Models window has them */
            continue;
        Row *r = g_new0(Row, 1);
        r->page = self;
        r->model = g_ptr_array_steal_index(list, i--);
        g_autofree char *size = g_format_size(m->size_bytes);
        r->subtitle = g_strdup_printf(_("%s\n%s download"), m->description, size);
        r->row = ADW_ACTION_ROW(adw_action_row_new());
        adw_preferences_row_set_title(ADW_PREFERENCES_ROW(r->row), m->name);
        adw_action_row_set_subtitle(r->row, r->subtitle);
        adw_action_row_set_subtitle_lines(r->row, 3);
        const gboolean fits = ram == 0 || m->min_memory_bytes <= ram;
        adw_action_row_add_suffix(r->row, memory_badge(m->min_memory_bytes, ram));
        GtkWidget *side = gtk_box_new(GTK_ORIENTATION_VERTICAL, 4);
        gtk_widget_set_valign(side, GTK_ALIGN_CENTER);
        r->button = GTK_BUTTON(gtk_button_new_with_label(_("Download")));
        g_autofree char *label = g_strdup_printf(_("Download %s"), m->name);
        gtk_accessible_update_property(GTK_ACCESSIBLE(r->button), GTK_ACCESSIBLE_PROPERTY_LABEL, label, -1);
        if (fits && !suggested) { /* the first that fits is the obvious choice */
            gtk_widget_add_css_class(GTK_WIDGET(r->button), "suggested-action");
            suggested = TRUE;
        }
        g_signal_connect(r->button, "clicked", G_CALLBACK(download_clicked), r);
        r->bar = GTK_PROGRESS_BAR(gtk_progress_bar_new());
        gtk_widget_set_visible(GTK_WIDGET(r->bar), FALSE);
        gtk_box_append(GTK_BOX(side), GTK_WIDGET(r->button));
        gtk_box_append(GTK_BOX(side), GTK_WIDGET(r->bar));
        adw_action_row_add_suffix(r->row, side);
        adw_preferences_group_add(ADW_PREFERENCES_GROUP(group), GTK_WIDGET(r->row));
        g_ptr_array_add(self->rows, r);
    }
    gtk_box_append(GTK_BOX(box), group);

    GtkWidget *other = adw_preferences_group_new();
    adw_preferences_group_set_title(ADW_PREFERENCES_GROUP(other), _("Already Have a Model?"));
    adw_preferences_group_add(ADW_PREFERENCES_GROUP(other),
                              link_row(_("Open a Model Folder…"),
                                       _("A Hugging Face folder (config.json, safetensors) or one with a .gguf file"),
                                       "win.open-model"));
    adw_preferences_group_add(ADW_PREFERENCES_GROUP(other),
                              link_row(_("All Models…"),
                                       _("Download any model by name, import a GGUF file, see what is installed"),
                                       "win.manage-models"));
    gtk_box_append(GTK_BOX(box), other);
    adw_bin_set_child(ADW_BIN(self), status);
}

static void
hearth_get_model_dispose(GObject *o)
{
    HearthGetModel *self = HEARTH_GET_MODEL(o);
    if (self->download) /* paused: the partial files stay for next time */
        g_cancellable_cancel(self->download);
    if (self->found_scan)
        g_cancellable_cancel(self->found_scan);
    G_OBJECT_CLASS(hearth_get_model_parent_class)->dispose(o);
}

static void
hearth_get_model_finalize(GObject *o)
{
    HearthGetModel *self = HEARTH_GET_MODEL(o);
    g_ptr_array_unref(self->rows);
    g_free(self->models_dir);
    g_clear_object(&self->download);
    g_clear_object(&self->found_scan);
    g_clear_pointer(&self->found_models, g_ptr_array_unref);
    G_OBJECT_CLASS(hearth_get_model_parent_class)->finalize(o);
}

static void
hearth_get_model_class_init(HearthGetModelClass *klass)
{
    GObjectClass *oc = G_OBJECT_CLASS(klass);
    oc->dispose = hearth_get_model_dispose;
    oc->finalize = hearth_get_model_finalize;
    signals[SIGNAL_MODEL_READY] = g_signal_new("model-ready", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL,
                                               NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
}

static void
hearth_get_model_init(HearthGetModel *self)
{
    self->rows = g_ptr_array_new_with_free_func((GDestroyNotify)row_free);
}

HearthGetModel *
hearth_get_model_new(const char *models_dir)
{
    HearthGetModel *self = g_object_new(HEARTH_TYPE_GET_MODEL, NULL);
    self->models_dir = g_strdup(models_dir);
    build(self);
    return self;
}
