/* hearth-model-manager.c — see hearth-model-manager.h. */
#include "hearth-model-manager.h"

#include <string.h>
#include <unistd.h>

#include <glib/gi18n.h>

#include "hearth-hub.h"
#include "hearth-models.h"

/* The context the "fits" verdict assumes: the app's default maximum. */
#define FIT_CONTEXT 4096

struct _HearthModelManager {
    AdwWindow parent_instance;

    char *models_dir;
    AdwToastOverlay *toasts;
    AdwPreferencesPage *page;
    AdwPreferencesGroup *installed;
    GPtrArray *installed_rows;     /* widgets added to installed, to remove on refresh */
    AdwEntryRow *repo_row;
    GtkButton *download_button;
    AdwActionRow *progress_row;
    GtkProgressBar *progress_bar;
    GtkButton *pause_button;
    GtkButton *discard_button;
    AdwPasswordEntryRow *token_row;
    AdwPreferencesGroup *recommended;
    AdwPreferencesGroup *found;    /* models other apps keep here (hearth-found.h) */
    GPtrArray *found_rows;         /* widgets added to found */
    GPtrArray *found_models;       /* HearthFoundModel *, the last scan */
    GCancellable *found_scan;
    GHashTable *linked_from;       /* installed model name → the app whose files it links */

    GCancellable *download;        /* the download running, or NULL */
    char *download_repo;           /* the last download started (resume) */
    GCancellable *import;
};

G_DEFINE_FINAL_TYPE(HearthModelManager, hearth_model_manager, ADW_TYPE_WINDOW)

enum { SIGNAL_USE_MODEL, SIGNAL_QUANTIZE_MODEL, N_SIGNALS };
static guint signals[N_SIGNALS];

static void refresh(HearthModelManager *self);
static void scan_found(HearthModelManager *self);

static void
toast(HearthModelManager *self, const char *text)
{
    adw_toast_overlay_add_toast(self->toasts, adw_toast_new(text));
}

guint64
hearth_host_memory_bytes(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    return pages > 0 && size > 0 ? (guint64)pages * (guint64)size : 0;
}

void
hearth_append_eta(GString *s, double eta_seconds)
{
    if (eta_seconds >= 0)
        g_string_append_printf(s, eta_seconds >= 90 ? _(" · about %.0f min left") : _(" · about %.0f s left"),
                               eta_seconds >= 90 ? eta_seconds / 60 : eta_seconds);
}

char *
hearth_format_param_count(guint64 n)
{
    if (n >= 1000000000ull)
        return g_strdup_printf(_("%.1f B parameters"), n / 1e9);
    if (n >= 1000000ull)
        return g_strdup_printf(_("%.0f M parameters"), n / 1e6);
    return g_strdup_printf(_("%.0f K parameters"), n / 1e3);
}

char *
hearth_found_describe(const HearthFoundModel *m)
{
    g_autofree char *params = hearth_format_param_count(m->info->n_params);
    g_autofree char *size = g_format_size(m->info->weights_bytes);
    /* TRANSLATORS: "From Ollama · GGUF Q4_K_M · 3.2 B parameters · 2.0 GB" */
    return g_strdup_printf(_("From %s · %s · %s · %s"), m->app, m->info->format ? m->info->format : "?", params,
                           size);
}

char *
hearth_found_unusable_text(GPtrArray *found)
{
    GString *s = g_string_new(NULL);
    guint n = 0;
    for (guint i = 0; i < found->len; i++) {
        HearthFoundModel *m = g_ptr_array_index(found, i);
        if (hearth_found_model_usable(m))
            continue;
        if (n++ >= 4)
            continue;
        /* the architecture when that is what Hearth lacks ("gemma3"); a damaged file by its name alone */
        const char *arch = m->info->architecture;
        if (arch && m->info->problem && strstr(m->info->problem, "architecture"))
            g_string_append_printf(s, "%s%s (%s)", s->len ? ", " : "", m->name, arch);
        else
            g_string_append_printf(s, "%s%s", s->len ? ", " : "", m->name);
    }
    if (n == 0) {
        g_string_free(s, TRUE);
        return NULL;
    }
    if (n > 4) {
        g_autofree char *more = g_strdup_printf(ngettext(" and %u more", " and %u more", n - 4), n - 4);
        g_string_append(s, more);
    }
    g_autofree char *list = g_string_free(s, FALSE);
    return g_strdup_printf(_("Also found, but Hearth cannot run them yet: %s."), list);
}

/* ---- installed models --------------------------------------------------------- */

static GtkWidget *
model_menu_button(const HearthModelInfo *info)
{
    GMenu *m = g_menu_new();
    GMenu *s1 = g_menu_new(), *s2 = g_menu_new();
    if (info->supported && (!info->format || (!g_str_has_prefix(info->format, "AWQ") &&
                                              !g_str_has_prefix(info->format, "GGUF")))) {
        GMenuItem *it = g_menu_item_new(_("Make a 4-Bit Copy…"), NULL);
        g_menu_item_set_action_and_target(it, "manager.quantize", "s", info->path);
        g_menu_append_item(s1, it);
        g_object_unref(it);
    }
    GMenuItem *it = g_menu_item_new(_("Rename…"), NULL);
    g_menu_item_set_action_and_target(it, "manager.rename", "s", info->name);
    g_menu_append_item(s1, it);
    g_object_unref(it);
    it = g_menu_item_new(_("Open Folder"), NULL);
    g_menu_item_set_action_and_target(it, "manager.open-folder", "s", info->path);
    g_menu_append_item(s1, it);
    g_object_unref(it);
    it = g_menu_item_new(_("Delete…"), NULL);
    g_menu_item_set_action_and_target(it, "manager.delete", "s", info->name);
    g_menu_append_item(s2, it);
    g_object_unref(it);
    g_menu_append_section(m, NULL, G_MENU_MODEL(s1));
    g_menu_append_section(m, NULL, G_MENU_MODEL(s2));
    g_object_unref(s1);
    g_object_unref(s2);

    GtkWidget *b = gtk_menu_button_new();
    gtk_menu_button_set_icon_name(GTK_MENU_BUTTON(b), "view-more-symbolic");
    gtk_menu_button_set_menu_model(GTK_MENU_BUTTON(b), G_MENU_MODEL(m));
    gtk_widget_set_valign(b, GTK_ALIGN_CENTER);
    gtk_widget_add_css_class(b, "flat");
    g_autofree char *label = g_strdup_printf(_("More actions for %s"), info->name);
    gtk_widget_set_tooltip_text(b, _("More Actions"));
    gtk_accessible_update_property(GTK_ACCESSIBLE(b), GTK_ACCESSIBLE_PROPERTY_LABEL, label, -1);
    g_object_unref(m);
    return b;
}

/* "\nNeeds 2.1 GB at 4096 tokens: fits in this computer's 16 GB" (or "more than…") onto sub. */
static void
append_memory_verdict(GString *sub, const HearthModelInfo *info, guint64 mem)
{
    guint64 need = hearth_model_info_memory_needed(info, FIT_CONTEXT);
    g_autofree char *need_s = g_format_size(need), *mem_s = g_format_size(mem);
    if (!mem || hearth_model_info_fits(info, FIT_CONTEXT, mem))
        g_string_append_printf(sub, _("\nNeeds %s at %d tokens: fits in this computer's %s"), need_s, FIT_CONTEXT,
                               mem_s);
    else
        g_string_append_printf(sub, _("\nNeeds %s at %d tokens: more than this computer's %s"), need_s, FIT_CONTEXT,
                               mem_s);
}

static GtkWidget *
model_row(const HearthModelInfo *info, guint64 mem)
{
    AdwActionRow *row = ADW_ACTION_ROW(adw_action_row_new());
    adw_preferences_row_set_title(ADW_PREFERENCES_ROW(row), info->name);
    GString *sub = g_string_new(NULL);
    g_autofree char *params = hearth_format_param_count(info->n_params);
    /* a linked model takes no space here: the size of what it links to */
    g_autofree char *disk = g_format_size(info->linked_from ? info->weights_bytes : info->size_on_disk);
    g_string_append_printf(sub, "%s · %s · %s · %s", info->architecture ? info->architecture : "?",
                           info->format ? info->format : "?", params, disk);
    if (info->linked_from)
        g_string_append_printf(sub, _("\nLinked from %s: its files stay there and take no space here"),
                               info->linked_from);
    if (info->problem) {
        g_string_append_printf(sub, "\n%s", info->problem);
    } else {
        append_memory_verdict(sub, info, mem);
    }
    adw_action_row_set_subtitle(row, sub->str);
    adw_action_row_set_subtitle_lines(row, 3);
    g_string_free(sub, TRUE);
    if (info->supported && !info->problem) {
        GtkWidget *chat = gtk_button_new_with_label(_("Chat"));
        gtk_widget_set_valign(chat, GTK_ALIGN_CENTER);
        g_autofree char *label = g_strdup_printf(_("Chat with %s"), info->name);
        gtk_accessible_update_property(GTK_ACCESSIBLE(chat), GTK_ACCESSIBLE_PROPERTY_LABEL, label, -1);
        gtk_actionable_set_action_name(GTK_ACTIONABLE(chat), "manager.use");
        gtk_actionable_set_action_target(GTK_ACTIONABLE(chat), "s", info->path);
        adw_action_row_add_suffix(row, chat);
    }
    adw_action_row_add_suffix(row, model_menu_button(info));
    return GTK_WIDGET(row);
}

static void
refresh(HearthModelManager *self)
{
    for (guint i = 0; i < self->installed_rows->len; i++)
        adw_preferences_group_remove(self->installed, g_ptr_array_index(self->installed_rows, i));
    g_ptr_array_set_size(self->installed_rows, 0);
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) list = hearth_models_list(self->models_dir, &error);
    if (!list) {
        g_autofree char *msg = g_strdup_printf(_("Cannot list the models: %s"), error->message);
        adw_preferences_group_set_description(self->installed, msg);
        return;
    }
    const guint64 mem = hearth_host_memory_bytes();
    g_hash_table_remove_all(self->linked_from);
    for (guint i = 0; i < list->len; i++) {
        const HearthModelInfo *info = g_ptr_array_index(list, i);
        if (info->linked_from)
            g_hash_table_insert(self->linked_from, g_strdup(info->name), g_strdup(info->linked_from));
        GtkWidget *row = model_row(info, mem);
        adw_preferences_group_add(self->installed, row);
        g_ptr_array_add(self->installed_rows, row);
    }
    g_autofree char *desc = list->len == 0
                                ? g_strdup_printf(_("No models yet. Download one below or import a folder. They "
                                                    "are kept in %s."), self->models_dir)
                                : g_strdup_printf(_("Kept in %s"), self->models_dir);
    adw_preferences_group_set_description(self->installed, desc);
}

/* ---- actions on one model -------------------------------------------------------- */

static void
use_activated(GtkWidget *w, const char *name, GVariant *param)
{
    HearthModelManager *self = HEARTH_MODEL_MANAGER(w);
    g_signal_emit(self, signals[SIGNAL_USE_MODEL], 0, g_variant_get_string(param, NULL));
    gtk_window_close(GTK_WINDOW(self));
}

static void
quantize_activated(GtkWidget *w, const char *name, GVariant *param)
{
    g_signal_emit(w, signals[SIGNAL_QUANTIZE_MODEL], 0, g_variant_get_string(param, NULL));
}

static void
open_folder_activated(GtkWidget *w, const char *name, GVariant *param)
{
    g_autofree char *uri = g_filename_to_uri(g_variant_get_string(param, NULL), NULL, NULL);
    g_autoptr(GError) error = NULL;
    if (!uri || !g_app_info_launch_default_for_uri(uri, NULL, &error))
        toast(HEARTH_MODEL_MANAGER(w), error ? error->message : _("Cannot open the folder"));
}

static void
delete_response(AdwMessageDialog *d, const char *response, HearthModelManager *self)
{
    if (g_strcmp0(response, "delete") != 0)
        return;
    const char *model = g_object_get_data(G_OBJECT(d), "model");
    g_autoptr(GError) error = NULL;
    if (!hearth_models_delete(self->models_dir, model, &error)) {
        toast(self, error->message);
        return;
    }
    g_autofree char *msg = g_strdup_printf(_("Deleted %s"), model);
    toast(self, msg);
    refresh(self);
    scan_found(self); /* a linked one can be added again */
}

static void
delete_activated(GtkWidget *w, const char *name, GVariant *param)
{
    HearthModelManager *self = HEARTH_MODEL_MANAGER(w);
    const char *model = g_variant_get_string(param, NULL);
    AdwMessageDialog *d = ADW_MESSAGE_DIALOG(adw_message_dialog_new(GTK_WINDOW(self), _("Delete Model?"), NULL));
    const char *app = g_hash_table_lookup(self->linked_from, model);
    if (app)
        adw_message_dialog_format_body(
            d, _("“%s” will be removed from Hearth. Its files stay where %s keeps them."), model, app);
    else
        adw_message_dialog_format_body(d, _("“%s” and its files will be removed from this computer."), model);
    adw_message_dialog_add_responses(d, "cancel", _("_Cancel"), "delete", _("_Delete"), NULL);
    adw_message_dialog_set_response_appearance(d, "delete", ADW_RESPONSE_DESTRUCTIVE);
    adw_message_dialog_set_default_response(d, "cancel");
    adw_message_dialog_set_close_response(d, "cancel");
    g_object_set_data_full(G_OBJECT(d), "model", g_strdup(model), g_free);
    g_signal_connect(d, "response", G_CALLBACK(delete_response), self);
    gtk_window_present(GTK_WINDOW(d));
}

static void
rename_response(AdwMessageDialog *d, const char *response, HearthModelManager *self)
{
    if (g_strcmp0(response, "rename") != 0)
        return;
    const char *model = g_object_get_data(G_OBJECT(d), "model");
    GtkEditable *entry = g_object_get_data(G_OBJECT(d), "entry");
    const char *to = gtk_editable_get_text(entry);
    g_autoptr(GError) error = NULL;
    if (!hearth_models_rename(self->models_dir, model, to, &error)) {
        toast(self, error->message);
        return;
    }
    refresh(self);
}

static void
rename_activated(GtkWidget *w, const char *name, GVariant *param)
{
    HearthModelManager *self = HEARTH_MODEL_MANAGER(w);
    const char *model = g_variant_get_string(param, NULL);
    AdwMessageDialog *d = ADW_MESSAGE_DIALOG(adw_message_dialog_new(GTK_WINDOW(self), _("Rename Model"), NULL));
    GtkWidget *entry = gtk_entry_new();
    gtk_editable_set_text(GTK_EDITABLE(entry), model);
    gtk_accessible_update_property(GTK_ACCESSIBLE(entry), GTK_ACCESSIBLE_PROPERTY_LABEL, _("New name"), -1);
    gtk_entry_set_activates_default(GTK_ENTRY(entry), TRUE);
    adw_message_dialog_set_extra_child(d, entry);
    adw_message_dialog_add_responses(d, "cancel", _("_Cancel"), "rename", _("_Rename"), NULL);
    adw_message_dialog_set_response_appearance(d, "rename", ADW_RESPONSE_SUGGESTED);
    adw_message_dialog_set_default_response(d, "rename");
    adw_message_dialog_set_close_response(d, "cancel");
    g_object_set_data_full(G_OBJECT(d), "model", g_strdup(model), g_free);
    g_object_set_data(G_OBJECT(d), "entry", entry);
    g_signal_connect(d, "response", G_CALLBACK(rename_response), self);
    gtk_window_present(GTK_WINDOW(d));
}

/* ---- import ------------------------------------------------------------------------ */

typedef struct {
    char *src, *dir;
} ImportJob;

static void
import_job_free(ImportJob *j)
{
    g_free(j->src);
    g_free(j->dir);
    g_free(j);
}

static void
import_thread(GTask *task, gpointer source, gpointer data, GCancellable *c)
{
    ImportJob *j = data;
    GError *error = NULL;
    char *path = hearth_models_import(j->src, j->dir, NULL, NULL, NULL, c, &error);
    if (path)
        g_task_return_pointer(task, path, g_free);
    else
        g_task_return_error(task, error);
}

static void
import_done(GObject *source, GAsyncResult *res, gpointer data)
{
    HearthModelManager *self = HEARTH_MODEL_MANAGER(source);
    g_autoptr(GError) error = NULL;
    g_autofree char *path = g_task_propagate_pointer(G_TASK(res), &error);
    g_clear_object(&self->import);
    if (!path) {
        g_autofree char *msg = g_strdup_printf(_("Import failed: %s"), error->message);
        toast(self, msg);
        return;
    }
    g_autofree char *base = g_path_get_basename(path);
    g_autofree char *msg = g_strdup_printf(_("Imported %s"), base);
    toast(self, msg);
    refresh(self);
}

static void
import_response(GtkNativeDialog *d, int response, HearthModelManager *self)
{
    if (response == GTK_RESPONSE_ACCEPT && !self->import) {
        g_autoptr(GFile) f = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(d));
        if (f) {
            ImportJob *j = g_new0(ImportJob, 1);
            j->src = g_file_get_path(f);
            j->dir = g_strdup(self->models_dir);
            self->import = g_cancellable_new();
            GTask *task = g_task_new(self, self->import, import_done, NULL);
            g_task_set_task_data(task, j, (GDestroyNotify)import_job_free);
            g_task_run_in_thread(task, import_thread);
            g_object_unref(task);
            toast(self, _("Copying the model…"));
        }
    }
    g_object_unref(d);
}

static void
import_clicked(GtkButton *b, HearthModelManager *self)
{
    GtkFileChooserNative *fc = gtk_file_chooser_native_new(_("Import a Model Folder"), GTK_WINDOW(self),
                                                           GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER, _("_Import"),
                                                           _("_Cancel"));
    g_signal_connect(fc, "response", G_CALLBACK(import_response), self);
    gtk_native_dialog_show(GTK_NATIVE_DIALOG(fc));
}

/* A GGUF file (llama.cpp, Ollama, LM Studio): imported as a folder of that file. */
static void
import_file_clicked(GtkButton *b, HearthModelManager *self)
{
    GtkFileChooserNative *fc = gtk_file_chooser_native_new(_("Import a GGUF Model File"), GTK_WINDOW(self),
                                                           GTK_FILE_CHOOSER_ACTION_OPEN, _("_Import"), _("_Cancel"));
    GtkFileFilter *filter = gtk_file_filter_new();
    gtk_file_filter_set_name(filter, _("GGUF models"));
    gtk_file_filter_add_pattern(filter, "*.gguf");
    gtk_file_chooser_add_filter(GTK_FILE_CHOOSER(fc), filter);
    g_object_unref(filter);
    g_signal_connect(fc, "response", G_CALLBACK(import_response), self);
    gtk_native_dialog_show(GTK_NATIVE_DIALOG(fc));
}

/* ---- models other apps keep here ------------------------------------------------- */

static void
add_found_activated(GtkWidget *w, const char *name, GVariant *param)
{
    HearthModelManager *self = HEARTH_MODEL_MANAGER(w);
    guint i = g_variant_get_uint32(param);
    if (!self->found_models || i >= self->found_models->len)
        return;
    const HearthFoundModel *m = g_ptr_array_index(self->found_models, i);
    g_autoptr(GError) error = NULL;
    g_autofree char *path = hearth_found_add(m, self->models_dir, NULL, &error);
    if (!path) {
        g_autofree char *msg = g_strdup_printf(_("Could not add %s: %s"), m->name, error->message);
        toast(self, msg);
        return;
    }
    g_autofree char *base = g_path_get_basename(path);
    g_autofree char *msg = g_strdup_printf(_("Added “%s”. Its files stay where %s keeps them."), base, m->app);
    toast(self, msg);
    refresh(self);
    scan_found(self);
}

static void
found_done(GObject *source, GAsyncResult *res, gpointer data)
{
    g_autoptr(GPtrArray) list = hearth_found_scan_finish(res, NULL);
    if (!list) { /* cancelled: the window went away, or a newer scan runs */
        g_object_unref(data);
        return;
    }
    HearthModelManager *self = data;
    for (guint i = 0; i < self->found_rows->len; i++)
        adw_preferences_group_remove(self->found, g_ptr_array_index(self->found_rows, i));
    g_ptr_array_set_size(self->found_rows, 0);
    g_clear_pointer(&self->found_models, g_ptr_array_unref);
    self->found_models = g_ptr_array_ref(list);
    const guint64 mem = hearth_host_memory_bytes();
    for (guint i = 0; i < list->len; i++) {
        HearthFoundModel *m = g_ptr_array_index(list, i);
        if (!hearth_found_model_usable(m) || m->added)
            continue;
        AdwActionRow *row = ADW_ACTION_ROW(adw_action_row_new());
        adw_preferences_row_set_title(ADW_PREFERENCES_ROW(row), m->name);
        GString *sub = g_string_new(NULL);
        g_autofree char *what = hearth_found_describe(m);
        g_string_append(sub, what);
        append_memory_verdict(sub, m->info, mem);
        adw_action_row_set_subtitle(row, sub->str);
        adw_action_row_set_subtitle_lines(row, 3);
        g_string_free(sub, TRUE);
        GtkWidget *b = gtk_button_new_with_label(_("Add"));
        gtk_widget_set_valign(b, GTK_ALIGN_CENTER);
        g_autofree char *label = g_strdup_printf(_("Add %s"), m->name);
        gtk_accessible_update_property(GTK_ACCESSIBLE(b), GTK_ACCESSIBLE_PROPERTY_LABEL, label, -1);
        gtk_widget_set_tooltip_text(b, _("Use it in Hearth, without a copy"));
        gtk_actionable_set_action_name(GTK_ACTIONABLE(b), "manager.add-found");
        gtk_actionable_set_action_target(GTK_ACTIONABLE(b), "u", i);
        adw_action_row_add_suffix(row, b);
        adw_preferences_group_add(self->found, GTK_WIDGET(row));
        g_ptr_array_add(self->found_rows, row);
    }
    g_autofree char *unusable = hearth_found_unusable_text(list);
    GString *desc = g_string_new(self->found_rows->len ? _("Models other apps downloaded to this computer. Added, "
                                                           "they are used where they are, with no copy.")
                                                       : "");
    if (unusable)
        g_string_append_printf(desc, "%s%s", desc->len ? " " : "", unusable);
    adw_preferences_group_set_description(self->found, desc->str);
    gtk_widget_set_visible(GTK_WIDGET(self->found), desc->len > 0);
    g_string_free(desc, TRUE);
    g_object_unref(self);
}

static void
scan_found(HearthModelManager *self)
{
    if (self->found_scan)
        g_cancellable_cancel(self->found_scan);
    g_clear_object(&self->found_scan);
    self->found_scan = g_cancellable_new();
    hearth_found_scan_async(self->models_dir, self->found_scan, found_done, g_object_ref(self));
}

/* ---- downloads ------------------------------------------------------------------ */

static void
set_downloading(HearthModelManager *self, gboolean running)
{
    gtk_widget_set_sensitive(GTK_WIDGET(self->download_button), !running);
    gtk_widget_set_visible(GTK_WIDGET(self->progress_row), TRUE);
    gtk_button_set_label(self->pause_button, running ? _("Pause") : _("Resume"));
    gtk_widget_set_visible(GTK_WIDGET(self->discard_button), !running);
}

static void
download_progress(const HearthHubProgress *p, gpointer user)
{
    HearthModelManager *self = user;
    if (p->total)
        gtk_progress_bar_set_fraction(self->progress_bar, (double)p->done / (double)p->total);
    g_autofree char *done = g_format_size(p->done), *total = g_format_size(p->total);
    g_autofree char *speed = g_format_size((guint64)p->speed);
    GString *s = g_string_new(NULL);
    g_string_printf(s, _("%s of %s · file %u of %u"), done, total, p->file_index + 1, p->n_files);
    if (p->speed > 0)
        g_string_append_printf(s, _(" · %s/s"), speed);
    hearth_append_eta(s, p->eta_seconds);
    adw_action_row_set_subtitle(self->progress_row, s->str);
    g_string_free(s, TRUE);
}

static void
download_done(GObject *source, GAsyncResult *res, gpointer data)
{
    HearthModelManager *self = data;
    g_autoptr(GError) error = NULL;
    g_autofree char *path = hearth_hub_download_finish(res, &error);
    g_clear_object(&self->download);
    set_downloading(self, FALSE);
    if (path) {
        gtk_progress_bar_set_fraction(self->progress_bar, 1.0);
        adw_preferences_row_set_title(ADW_PREFERENCES_ROW(self->progress_row), _("Download complete"));
        gtk_widget_set_visible(GTK_WIDGET(self->pause_button), FALSE);
        gtk_widget_set_visible(GTK_WIDGET(self->discard_button), FALSE);
        refresh(self);
    } else if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
        adw_preferences_row_set_title(ADW_PREFERENCES_ROW(self->progress_row), _("Paused — Resume continues"));
    } else {
        adw_preferences_row_set_title(ADW_PREFERENCES_ROW(self->progress_row), _("Download failed"));
        adw_action_row_set_subtitle(self->progress_row, error->message);
    }
    g_object_unref(self);
}

static void
start_download(HearthModelManager *self, const char *text)
{
    if (self->download)
        return;
    /* "owner/name", or "owner/name/FILE.gguf" for one file of a GGUF repository */
    g_autofree char *repo = g_strdup(text ? text : "");
    g_strstrip(repo);
    const char *gguf_file = NULL;
    char *second = strchr(repo, '/'), *third = second ? strchr(second + 1, '/') : NULL;
    if (third && g_str_has_suffix(third + 1, ".gguf")) {
        *third = '\0';
        gguf_file = third + 1;
    }
    if (!hearth_hub_repo_id_valid(repo)) {
        toast(self, _("Enter a repository id like owner/name, or owner/name/file.gguf"));
        return;
    }
    char *again = g_strdup(text);   /* text is download_repo itself on a resume */
    g_free(self->download_repo);
    self->download_repo = again;
    const char *token = gtk_editable_get_text(GTK_EDITABLE(self->token_row));
    if (token && *token) {
        g_autoptr(GError) error = NULL;
        if (!hearth_hub_token_store(NULL, token, NULL, &error))
            toast(self, error->message);
        gtk_editable_set_text(GTK_EDITABLE(self->token_row), "");
    }
    HearthHubOptions opt;
    hearth_hub_options_init(&opt);
    opt.models_dir = self->models_dir;
    opt.gguf_file = gguf_file;
    opt.progress = download_progress;
    opt.user_data = self;
    self->download = g_cancellable_new();
    g_autofree char *title = g_strdup_printf(_("Downloading %s"), gguf_file ? gguf_file : repo);
    adw_preferences_row_set_title(ADW_PREFERENCES_ROW(self->progress_row), title);
    adw_action_row_set_subtitle(self->progress_row, _("Listing the repository’s files…"));
    gtk_widget_set_visible(GTK_WIDGET(self->pause_button), TRUE);
    set_downloading(self, TRUE);
    hearth_hub_download_async(repo, &opt, self->download, download_done, g_object_ref(self));
}

static void
download_clicked(GtkButton *b, HearthModelManager *self)
{
    start_download(self, gtk_editable_get_text(GTK_EDITABLE(self->repo_row)));
}

static void
pause_clicked(GtkButton *b, HearthModelManager *self)
{
    if (self->download)
        g_cancellable_cancel(self->download); /* partial files stay for the resume */
    else if (self->download_repo)
        start_download(self, self->download_repo);
}

static void
discard_clicked(GtkButton *b, HearthModelManager *self)
{
    if (self->download || !self->download_repo)
        return;
    g_autoptr(GError) error = NULL;
    if (!hearth_hub_discard_partial(self->download_repo, self->models_dir, &error))
        toast(self, error->message);
    gtk_widget_set_visible(GTK_WIDGET(self->progress_row), FALSE);
}

static void
recommended_clicked(GtkButton *b, HearthModelManager *self)
{
    const char *repo = g_object_get_data(G_OBJECT(b), "repo");
    gtk_editable_set_text(GTK_EDITABLE(self->repo_row), repo);
    start_download(self, repo);
}

static void
fill_recommended(HearthModelManager *self)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) list = hearth_models_load_recommended(NULL, &error);
    if (!list) {
        adw_preferences_group_set_description(self->recommended, error->message);
        return;
    }
    const guint64 mem = hearth_host_memory_bytes();
    for (guint i = 0; i < list->len; i++) {
        const HearthRecommendedModel *m = g_ptr_array_index(list, i);
        AdwActionRow *row = ADW_ACTION_ROW(adw_action_row_new());
        adw_preferences_row_set_title(ADW_PREFERENCES_ROW(row), m->name);
        g_autofree char *size = g_format_size(m->size_bytes), *need = g_format_size(m->min_memory_bytes);
        g_autofree char *sub = g_strdup_printf(_("%s\n%s · about %s download · needs about %s%s%s"), m->description,
                                               m->format, size, need,
                                               mem && m->min_memory_bytes > mem ? _(" (more than this computer has)")
                                                                                : "",
                                               m->gated ? _(" · needs an access token") : "");
        adw_action_row_set_subtitle(row, sub);
        adw_action_row_set_subtitle_lines(row, 3);
        GtkWidget *get = gtk_button_new_with_label(_("Download"));
        gtk_widget_set_valign(get, GTK_ALIGN_CENTER);
        g_autofree char *label = g_strdup_printf(_("Download %s"), m->name);
        gtk_accessible_update_property(GTK_ACCESSIBLE(get), GTK_ACCESSIBLE_PROPERTY_LABEL, label, -1);
        g_object_set_data_full(G_OBJECT(get), "repo", g_strdup(m->repo_id), g_free);
        g_signal_connect(get, "clicked", G_CALLBACK(recommended_clicked), self);
        adw_action_row_add_suffix(row, get);
        adw_preferences_group_add(self->recommended, GTK_WIDGET(row));
    }
}

/* ---- construction --------------------------------------------------------------- */

static gboolean
close_request(GtkWindow *w)
{
    HearthModelManager *self = HEARTH_MODEL_MANAGER(w);
    if (self->download) /* pausing keeps the partial files for next time */
        g_cancellable_cancel(self->download);
    if (self->import)
        g_cancellable_cancel(self->import);
    if (self->found_scan)
        g_cancellable_cancel(self->found_scan);
    return FALSE;
}

static void
hearth_model_manager_finalize(GObject *o)
{
    HearthModelManager *self = HEARTH_MODEL_MANAGER(o);
    g_free(self->models_dir);
    g_free(self->download_repo);
    g_clear_object(&self->download);
    g_clear_object(&self->import);
    g_ptr_array_unref(self->installed_rows);
    g_ptr_array_unref(self->found_rows);
    g_clear_pointer(&self->found_models, g_ptr_array_unref);
    g_clear_object(&self->found_scan);
    g_hash_table_unref(self->linked_from);
    G_OBJECT_CLASS(hearth_model_manager_parent_class)->finalize(o);
}

static void
hearth_model_manager_class_init(HearthModelManagerClass *klass)
{
    GtkWidgetClass *wc = GTK_WIDGET_CLASS(klass);
    G_OBJECT_CLASS(klass)->finalize = hearth_model_manager_finalize;
    GTK_WINDOW_CLASS(klass)->close_request = close_request;
    gtk_widget_class_install_action(wc, "manager.use", "s", use_activated);
    gtk_widget_class_install_action(wc, "manager.quantize", "s", quantize_activated);
    gtk_widget_class_install_action(wc, "manager.open-folder", "s", open_folder_activated);
    gtk_widget_class_install_action(wc, "manager.rename", "s", rename_activated);
    gtk_widget_class_install_action(wc, "manager.delete", "s", delete_activated);
    gtk_widget_class_install_action(wc, "manager.add-found", "u", add_found_activated);
    signals[SIGNAL_USE_MODEL] = g_signal_new("use-model", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                                             NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
    signals[SIGNAL_QUANTIZE_MODEL] = g_signal_new("quantize-model", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0,
                                                  NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
}

static void
hearth_model_manager_init(HearthModelManager *self)
{
    self->installed_rows = g_ptr_array_new();
    self->found_rows = g_ptr_array_new();
    self->linked_from = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    gtk_window_set_title(GTK_WINDOW(self), _("Models"));
    gtk_window_set_default_size(GTK_WINDOW(self), 640, 720);
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
    GtkWidget *header = adw_header_bar_new();
    GtkWidget *import = gtk_button_new_with_label(_("Import Folder…"));
    g_signal_connect(import, "clicked", G_CALLBACK(import_clicked), self);
    adw_header_bar_pack_start(ADW_HEADER_BAR(header), import);
    GtkWidget *import_file = gtk_button_new_with_label(_("Import GGUF…"));
    gtk_widget_set_tooltip_text(import_file, _("Import a .gguf model file, as llama.cpp, Ollama or LM Studio use"));
    g_signal_connect(import_file, "clicked", G_CALLBACK(import_file_clicked), self);
    adw_header_bar_pack_start(ADW_HEADER_BAR(header), import_file);
    gtk_box_append(GTK_BOX(box), header);

    self->page = ADW_PREFERENCES_PAGE(adw_preferences_page_new());
    self->installed = ADW_PREFERENCES_GROUP(adw_preferences_group_new());
    adw_preferences_group_set_title(self->installed, _("Installed"));
    adw_preferences_page_add(self->page, self->installed);

    self->found = ADW_PREFERENCES_GROUP(adw_preferences_group_new());
    adw_preferences_group_set_title(self->found, _("On This Computer"));
    gtk_widget_set_visible(GTK_WIDGET(self->found), FALSE);
    adw_preferences_page_add(self->page, self->found);

    AdwPreferencesGroup *dl = ADW_PREFERENCES_GROUP(adw_preferences_group_new());
    adw_preferences_group_set_title(dl, _("Download from Hugging Face"));
    adw_preferences_group_set_description(dl, _("Only the files a model needs are fetched, checked against the "
                                                "hub’s checksums and installed when complete."));
    self->repo_row = ADW_ENTRY_ROW(adw_entry_row_new());
    adw_preferences_row_set_title(ADW_PREFERENCES_ROW(self->repo_row),
                                  _("Repository (owner/name, or owner/name/file.gguf)"));
    self->download_button = GTK_BUTTON(gtk_button_new_with_label(_("Download")));
    gtk_widget_set_valign(GTK_WIDGET(self->download_button), GTK_ALIGN_CENTER);
    gtk_widget_add_css_class(GTK_WIDGET(self->download_button), "suggested-action");
    g_signal_connect(self->download_button, "clicked", G_CALLBACK(download_clicked), self);
    adw_entry_row_add_suffix(self->repo_row, GTK_WIDGET(self->download_button));
    adw_preferences_group_add(dl, GTK_WIDGET(self->repo_row));

    self->progress_row = ADW_ACTION_ROW(adw_action_row_new());
    self->progress_bar = GTK_PROGRESS_BAR(gtk_progress_bar_new());
    gtk_widget_set_valign(GTK_WIDGET(self->progress_bar), GTK_ALIGN_CENTER);
    gtk_widget_set_size_request(GTK_WIDGET(self->progress_bar), 120, -1);
    gtk_accessible_update_property(GTK_ACCESSIBLE(self->progress_bar), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                   _("Download progress"), -1);
    adw_action_row_add_suffix(self->progress_row, GTK_WIDGET(self->progress_bar));
    self->pause_button = GTK_BUTTON(gtk_button_new_with_label(_("Pause")));
    gtk_widget_set_valign(GTK_WIDGET(self->pause_button), GTK_ALIGN_CENTER);
    g_signal_connect(self->pause_button, "clicked", G_CALLBACK(pause_clicked), self);
    adw_action_row_add_suffix(self->progress_row, GTK_WIDGET(self->pause_button));
    self->discard_button = GTK_BUTTON(gtk_button_new_with_label(_("Discard")));
    gtk_widget_set_valign(GTK_WIDGET(self->discard_button), GTK_ALIGN_CENTER);
    g_signal_connect(self->discard_button, "clicked", G_CALLBACK(discard_clicked), self);
    adw_action_row_add_suffix(self->progress_row, GTK_WIDGET(self->discard_button));
    gtk_widget_set_visible(GTK_WIDGET(self->progress_row), FALSE);
    adw_preferences_group_add(dl, GTK_WIDGET(self->progress_row));

    self->token_row = ADW_PASSWORD_ENTRY_ROW(adw_password_entry_row_new());
    adw_preferences_row_set_title(ADW_PREFERENCES_ROW(self->token_row),
                                  _("Access token for gated models (kept in the keyring)"));
    adw_preferences_group_add(dl, GTK_WIDGET(self->token_row));
    adw_preferences_page_add(self->page, dl);

    self->recommended = ADW_PREFERENCES_GROUP(adw_preferences_group_new());
    adw_preferences_group_set_title(self->recommended, _("Recommended"));
    adw_preferences_group_set_description(self->recommended, _("Models that run well on 4–8 GB graphics cards"));
    adw_preferences_page_add(self->page, self->recommended);

    self->toasts = ADW_TOAST_OVERLAY(adw_toast_overlay_new());
    adw_toast_overlay_set_child(self->toasts, GTK_WIDGET(self->page));
    gtk_widget_set_vexpand(GTK_WIDGET(self->toasts), TRUE);
    gtk_box_append(GTK_BOX(box), GTK_WIDGET(self->toasts));
    adw_window_set_content(ADW_WINDOW(self), box);
}

HearthModelManager *
hearth_model_manager_new(GtkWindow *parent, const char *models_dir)
{
    HearthModelManager *self = g_object_new(HEARTH_TYPE_MODEL_MANAGER, NULL);
    if (parent)
        gtk_window_set_transient_for(GTK_WINDOW(self), parent);
    self->models_dir = g_strdup(models_dir);
    refresh(self);
    scan_found(self);
    fill_recommended(self);
    return self;
}
