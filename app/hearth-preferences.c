/* hearth-preferences.c — see hearth-preferences.h. */
#include "hearth-preferences.h"

#include <glib/gi18n.h>
#include <string.h>

#include "hearth-a11y.h"
#include "hearth-config.h"
#include "hearth-models.h"
#include "hr-devices.h"

struct _HearthPreferences {
    AdwPreferencesWindow parent_instance;

    AdwComboRow *style_row;
    GtkSwitch *keep_switch;
    GtkButton *delete_all_button;
    AdwComboRow *backend_row;
    GtkSpinButton *context_spin;
    GtkSpinButton *threads_spin;
    AdwActionRow *models_folder_row;
    GtkButton *models_folder_reset;
    AdwPreferencesGroup *devices_group;
    GtkSpinButton *temperature_spin;
    GtkSpinButton *top_p_spin;
    GtkSpinButton *max_tokens_spin;
    GtkSpinButton *seed_spin;
    GtkTextView *system_prompt_view;

    GSettings *settings;
    GCancellable *cancellable;
};

G_DEFINE_FINAL_TYPE(HearthPreferences, hearth_preferences, ADW_TYPE_PREFERENCES_WINDOW)

/* ---- GSettings mappings ------------------------------------------------------ */

/* A combo row's position <-> a string key's value, the values listed in the
 * order of the row's items (user_data: NULL-terminated array). */
static gboolean
choice_get(GValue *value, GVariant *variant, gpointer user_data)
{
    const char *const *choices = user_data;
    const char *s = g_variant_get_string(variant, NULL);
    for (guint i = 0; choices[i]; i++) {
        if (g_str_equal(choices[i], s)) {
            g_value_set_uint(value, i);
            return TRUE;
        }
    }
    g_value_set_uint(value, 0);
    return TRUE;
}

static GVariant *
choice_set(const GValue *value, const GVariantType *type, gpointer user_data)
{
    const char *const *choices = user_data;
    guint i = g_value_get_uint(value);
    if (i >= g_strv_length((char **)choices))
        return NULL;
    return g_variant_new_string(choices[i]);
}

static const char *const style_choices[] = { "default", "light", "dark", NULL };
static const char *const backend_choices[] = { "auto", "vulkan", "cuda", "cpu", NULL };

/* A spin button's double value <-> an integer key. */
static gboolean
int_get(GValue *value, GVariant *variant, gpointer user_data)
{
    g_value_set_double(value, g_variant_get_int32(variant));
    return TRUE;
}

static GVariant *
int_set(const GValue *value, const GVariantType *type, gpointer user_data)
{
    return g_variant_new_int32((gint32)(g_value_get_double(value) + 0.5));
}

static void
bind_int(HearthPreferences *self, const char *key, GtkSpinButton *spin)
{
    g_settings_bind_with_mapping(self->settings, key, gtk_spin_button_get_adjustment(spin), "value",
                                 G_SETTINGS_BIND_DEFAULT, int_get, int_set, NULL, NULL);
}

/* ---- models folder ------------------------------------------------------------- */

static char *
default_models_folder(void)
{
    return hearth_models_default_dir();
}

static void
update_models_folder(HearthPreferences *self)
{
    g_autofree char *folder = g_settings_get_string(self->settings, "models-folder");
    gboolean custom = *folder != '\0';
    if (!custom) {
        g_free(folder);
        folder = default_models_folder();
    }
    g_autofree char *markup = g_markup_escape_text(folder, -1);
    adw_action_row_set_subtitle(self->models_folder_row, markup);
    gtk_widget_set_sensitive(GTK_WIDGET(self->models_folder_reset), custom);
}

static void
choose_folder_response(GtkNativeDialog *dialog, int response, HearthPreferences *self)
{
    if (response == GTK_RESPONSE_ACCEPT) {
        g_autoptr(GFile) file = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(dialog));
        g_autofree char *path = file ? g_file_get_path(file) : NULL;
        if (path)
            g_settings_set_string(self->settings, "models-folder", path);
    }
    g_object_unref(dialog);
}

static void
on_choose_models_folder(GtkButton *button, HearthPreferences *self)
{
    GtkFileChooserNative *fc = gtk_file_chooser_native_new(_("Choose the Models Folder"), GTK_WINDOW(self),
                                                           GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER, _("_Select"),
                                                           _("_Cancel"));
    g_autofree char *current = g_settings_get_string(self->settings, "models-folder");
    if (!*current) {
        g_free(current);
        current = default_models_folder();
    }
    if (g_file_test(current, G_FILE_TEST_IS_DIR)) {
        g_autoptr(GFile) f = g_file_new_for_path(current);
        gtk_file_chooser_set_current_folder(GTK_FILE_CHOOSER(fc), f, NULL);
    }
    g_signal_connect(fc, "response", G_CALLBACK(choose_folder_response), self);
    gtk_native_dialog_show(GTK_NATIVE_DIALOG(fc));
}

static void
on_reset_models_folder(GtkButton *button, HearthPreferences *self)
{
    g_settings_reset(self->settings, "models-folder");
}

/* ---- delete all ------------------------------------------------------------------ */

static void
delete_all_response(AdwMessageDialog *dialog, const char *response, HearthPreferences *self)
{
    if (g_strcmp0(response, "delete") != 0)
        return;
    GtkWindow *parent = gtk_window_get_transient_for(GTK_WINDOW(self));
    if (parent)
        gtk_widget_activate_action(GTK_WIDGET(parent), "win.delete-all-conversations", NULL);
    AdwToast *toast = adw_toast_new(_("All conversations were deleted"));
    adw_preferences_window_add_toast(ADW_PREFERENCES_WINDOW(self), toast);
    hearth_a11y_watch_toast(GTK_WIDGET(self), toast);
}

static void
on_delete_all(GtkButton *button, HearthPreferences *self)
{
    AdwMessageDialog *dialog = ADW_MESSAGE_DIALOG(adw_message_dialog_new(
        GTK_WINDOW(self), _("Delete All Conversations?"),
        _("Every conversation and every message will be removed from this computer. This cannot be undone.")));
    adw_message_dialog_add_responses(dialog, "cancel", _("_Cancel"), "delete", _("_Delete All"), NULL);
    adw_message_dialog_set_response_appearance(dialog, "delete", ADW_RESPONSE_DESTRUCTIVE);
    adw_message_dialog_set_default_response(dialog, "cancel");
    adw_message_dialog_set_close_response(dialog, "cancel");
    hearth_a11y_fix_mnemonic_buttons(GTK_WIDGET(dialog));
    g_signal_connect(dialog, "response", G_CALLBACK(delete_all_response), self);
    gtk_window_present(GTK_WINDOW(dialog));
}

/* ---- devices (read-only) ----------------------------------------------------------- */

static void
devices_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
    GString *report = g_string_new(NULL);
    hr_devices_report(report);
    g_task_return_pointer(task, g_string_free(report, FALSE), g_free);
}

static void
add_device_row(HearthPreferences *self, const char *title, const char *subtitle)
{
    GtkWidget *row = adw_action_row_new();
    g_autofree char *t = g_markup_escape_text(title, -1);
    adw_preferences_row_set_title(ADW_PREFERENCES_ROW(row), t);
    if (subtitle && *subtitle) {
        g_autofree char *s = g_markup_escape_text(subtitle, -1);
        adw_action_row_set_subtitle(ADW_ACTION_ROW(row), s);
    }
    adw_preferences_group_add(self->devices_group, row);
}

/* One device line of hr_devices_report's Vulkan section ("NAME: verdict"),
 * in words. */
static char *
vulkan_device_words(const char *line)
{
    const char *sep = strstr(line, ": ");
    g_autofree char *name = sep ? g_strndup(line, (gsize)(sep - line)) : g_strdup(line);
    const char *verdict = sep ? sep + 2 : "";
    if (g_str_equal(verdict, "chosen"))
        return g_strdup_printf(_("Graphics card: %s"), name);
    if (g_str_has_prefix(verdict, "software (CPU)"))
        return g_strdup_printf(_("Not used: %s draws with the processor, and Hearth runs faster on the processor "
                                 "directly"), name);
    if (g_str_has_prefix(verdict, "usable"))
        return g_strdup_printf(_("%s could be used, but another graphics card is preferred"), name);
    if (g_str_has_prefix(verdict, "another device"))
        return g_strdup_printf(_("Not used: %s (another graphics card was chosen)"), name);
    return g_strdup_printf(_("Not available: %s cannot run Hearth’s programs"), name);
}

/* A CUDA device line ("NAME, compute capability 9.0, 139.8 GiB, 132 SMs"),
 * in words. */
static char *
cuda_device_words(const char *line)
{
    const char *cc = strstr(line, ", compute capability");
    g_autofree char *name = cc ? g_strndup(line, (gsize)(cc - line)) : g_strdup(line);
    const char *mem = cc ? strstr(cc, " GiB") : NULL;
    const char *num = mem;
    while (num && num > cc && (g_ascii_isdigit(num[-1]) || num[-1] == '.'))
        num--;
    if (mem && num < mem) {
        g_autofree char *gib = g_strndup(num, (gsize)(mem - num));
        return g_strdup_printf(_("Graphics card: %s, %s GB of memory"), name, gib);
    }
    return g_strdup_printf(_("Graphics card: %s"), name);
}

/* What backend "auto" picks, from hr_devices_report's last line. */
static char *
auto_words(const char *reason)
{
    const char *vk = strstr(reason, "Vulkan on ");
    if (g_str_has_prefix(reason, "CUDA"))
        return g_strdup(_("Replies run on the NVIDIA graphics card (CUDA)."));
    if (vk)
        return g_strdup_printf(_("Replies run on %s (Vulkan)."), vk + strlen("Vulkan on "));
    return g_strdup(_("Replies run on the processor: no graphics card Hearth can use was found."));
}

/* hr_devices_report's text is for developers (capability lists, environment
 * variables): the rows say in words what each backend can use, and the text
 * itself is behind "Technical Details". */
static void
devices_done(GObject *source, GAsyncResult *result, gpointer user_data)
{
    g_autofree char *report = g_task_propagate_pointer(G_TASK(result), NULL);
    if (!report)
        return; /* cancelled: the window is gone */
    HearthPreferences *self = HEARTH_PREFERENCES(source);
    g_auto(GStrv) lines = g_strsplit(report, "\n", -1);
    g_autoptr(GString) vulkan = NULL, cuda = NULL;
    g_autofree char *automatic = NULL;
    GString **section = NULL;
    for (guint i = 0; lines[i]; i++) {
        const char *line = lines[i];
        if (g_str_has_prefix(line, "Vulkan backend:")) {
            vulkan = g_string_new(NULL);
            section = &vulkan;
            if (strstr(line, "not built"))
                g_string_append(vulkan, _("Not available: this copy of Hearth was built without Vulkan"));
        } else if (g_str_has_prefix(line, "CUDA backend:")) {
            cuda = g_string_new(NULL);
            section = &cuda;
            if (strstr(line, "not built"))
                g_string_append(cuda, _("Not available: this copy of Hearth was built without CUDA"));
        } else if (g_str_has_prefix(line, "Backend \"auto\" picks: ")) {
            automatic = auto_words(line + strlen("Backend \"auto\" picks: "));
            section = NULL;
        } else if (!g_ascii_isspace(line[0])) {
            section = NULL; /* the CPU section: said below without it */
        } else if (section && g_str_has_prefix(line, "  [")) {
            /* "  [0] NAME…": a device (deeper lines list its capabilities) */
            const char *d = strstr(line, "] ");
            g_autofree char *words = !d ? NULL : section == &vulkan ? vulkan_device_words(d + 2)
                                                                    : cuda_device_words(d + 2);
            if (words) {
                if ((*section)->len)
                    g_string_append_c(*section, '\n');
                g_string_append(*section, words);
            }
        } else if (section && g_str_has_prefix(line, "  ") && !g_ascii_isspace(line[2]) && (*section)->len == 0 &&
                   !strstr(line, "would be chosen")) {
            /* no device at all: "no CUDA device: …", "Vulkan: no devices (…)" */
            g_string_append(*section, section == &vulkan ? _("Not available: no graphics card with a Vulkan driver "
                                                             "was found")
                                                         : _("Not available: no NVIDIA graphics card with a working "
                                                             "driver was found"));
        }
    }
    g_autofree char *threads = g_strdup_printf(ngettext("Always available: %u thread", "Always available: %u threads",
                                                        g_get_num_processors()),
                                               g_get_num_processors());
    add_device_row(self, _("Processor"), threads);
    if (vulkan)
        add_device_row(self, _("Graphics Cards (Vulkan)"), vulkan->len ? vulkan->str : _("Not available"));
    if (cuda)
        add_device_row(self, _("NVIDIA Graphics Cards (CUDA)"), cuda->len ? cuda->str : _("Not available"));
    if (automatic)
        add_device_row(self, _("Automatic Backend"), automatic);

    GtkWidget *details = adw_expander_row_new();
    adw_preferences_row_set_title(ADW_PREFERENCES_ROW(details), _("Technical Details"));
    adw_expander_row_set_subtitle(ADW_EXPANDER_ROW(details), _("What each backend reports, for bug reports"));
    GtkWidget *text = gtk_label_new(g_strstrip(report));
    gtk_label_set_selectable(GTK_LABEL(text), TRUE);
    gtk_label_set_wrap(GTK_LABEL(text), TRUE);
    gtk_label_set_wrap_mode(GTK_LABEL(text), PANGO_WRAP_WORD_CHAR);
    gtk_label_set_xalign(GTK_LABEL(text), 0);
    gtk_widget_add_css_class(text, "monospace");
    gtk_widget_add_css_class(text, "caption");
    gtk_widget_set_margin_start(text, 12);
    gtk_widget_set_margin_end(text, 12);
    gtk_widget_set_margin_top(text, 8);
    gtk_widget_set_margin_bottom(text, 8);
    adw_expander_row_add_row(ADW_EXPANDER_ROW(details), text);
    adw_preferences_group_add(self->devices_group, details);
}

/* ---- GObject -------------------------------------------------------------------- */

static void
hearth_preferences_dispose(GObject *object)
{
    HearthPreferences *self = HEARTH_PREFERENCES(object);
    g_cancellable_cancel(self->cancellable);
    g_clear_object(&self->cancellable);
    if (self->settings)
        g_signal_handlers_disconnect_by_data(self->settings, self);
    g_clear_object(&self->settings);
    gtk_widget_dispose_template(GTK_WIDGET(self), HEARTH_TYPE_PREFERENCES);
    G_OBJECT_CLASS(hearth_preferences_parent_class)->dispose(object);
}

static void
hearth_preferences_class_init(HearthPreferencesClass *klass)
{
    GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
    G_OBJECT_CLASS(klass)->dispose = hearth_preferences_dispose;
    gtk_widget_class_set_template_from_resource(widget_class, "/io/github/hearthchat/Hearth/hearth-preferences.ui");
#define BIND(name) gtk_widget_class_bind_template_child(widget_class, HearthPreferences, name)
    BIND(style_row); BIND(keep_switch); BIND(delete_all_button); BIND(backend_row); BIND(context_spin); BIND(threads_spin);
    BIND(models_folder_row); BIND(models_folder_reset); BIND(devices_group); BIND(temperature_spin);
    BIND(top_p_spin); BIND(max_tokens_spin); BIND(seed_spin); BIND(system_prompt_view);
#undef BIND
    gtk_widget_class_bind_template_callback(widget_class, on_choose_models_folder);
    gtk_widget_class_bind_template_callback(widget_class, on_reset_models_folder);
    gtk_widget_class_bind_template_callback(widget_class, on_delete_all);
    gtk_widget_class_add_binding_action(widget_class, GDK_KEY_w, GDK_CONTROL_MASK, "window.close", NULL);
}

/* libadwaita 1.2 leaves the window's own search button and entry without an
 * accessible name; give them one so screen readers can say what they are. */
static void
name_search_widgets(GtkWidget *widget)
{
    for (GtkWidget *child = gtk_widget_get_first_child(widget); child; child = gtk_widget_get_next_sibling(child)) {
        if (GTK_IS_SEARCH_ENTRY(child)) {
            gtk_accessible_update_property(GTK_ACCESSIBLE(child), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                           _("Search preferences"), -1);
        } else if (GTK_IS_TOGGLE_BUTTON(child) && gtk_button_get_icon_name(GTK_BUTTON(child)) &&
                   (strstr(gtk_button_get_icon_name(GTK_BUTTON(child)), "find") ||
                    strstr(gtk_button_get_icon_name(GTK_BUTTON(child)), "search"))) {
            gtk_accessible_update_property(GTK_ACCESSIBLE(child), GTK_ACCESSIBLE_PROPERTY_LABEL, _("Search"), -1);
        }
        name_search_widgets(child);
    }
}

static void
hearth_preferences_init(HearthPreferences *self)
{
    gtk_widget_init_template(GTK_WIDGET(self));
    hearth_a11y_name_unlabelled(GTK_WIDGET(self));
    hearth_a11y_fix_mnemonic_button(GTK_WIDGET(self->delete_all_button), _("Delete all conversations"));
    name_search_widgets(GTK_WIDGET(self));
    self->cancellable = g_cancellable_new();
}

HearthPreferences *
hearth_preferences_new(GSettings *settings, GtkWindow *parent)
{
    HearthPreferences *self = g_object_new(HEARTH_TYPE_PREFERENCES, "transient-for", parent, NULL);
    self->settings = g_object_ref(settings);
    g_settings_bind_with_mapping(settings, "color-scheme", self->style_row, "selected", G_SETTINGS_BIND_DEFAULT,
                                 choice_get, choice_set, (gpointer)style_choices, NULL);
    g_settings_bind_with_mapping(settings, "backend", self->backend_row, "selected", G_SETTINGS_BIND_DEFAULT,
                                 choice_get, choice_set, (gpointer)backend_choices, NULL);
    g_settings_bind(settings, "keep-conversations", self->keep_switch, "active", G_SETTINGS_BIND_DEFAULT);
    bind_int(self, "context-length", self->context_spin);
    bind_int(self, "cpu-threads", self->threads_spin);
    g_settings_bind(settings, "temperature", gtk_spin_button_get_adjustment(self->temperature_spin), "value",
                    G_SETTINGS_BIND_DEFAULT);
    g_settings_bind(settings, "top-p", gtk_spin_button_get_adjustment(self->top_p_spin), "value",
                    G_SETTINGS_BIND_DEFAULT);
    bind_int(self, "max-new-tokens", self->max_tokens_spin);
    bind_int(self, "seed", self->seed_spin);
    g_settings_bind(settings, "system-prompt", gtk_text_view_get_buffer(self->system_prompt_view), "text",
                    G_SETTINGS_BIND_DEFAULT);
    g_signal_connect_swapped(settings, "changed::models-folder", G_CALLBACK(update_models_folder), self);
    update_models_folder(self);
    /* Probing Vulkan and CUDA can take a moment: off the main thread. */
    GTask *task = g_task_new(self, self->cancellable, devices_done, NULL);
    g_task_set_return_on_cancel(task, TRUE);
    g_task_run_in_thread(task, devices_thread);
    g_object_unref(task);
    return self;
}
