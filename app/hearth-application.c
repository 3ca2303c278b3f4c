#include "hearth-application.h"

#include <glib/gi18n.h>
#include <stdlib.h>

#include "hearth-a11y.h"
#include "hearth-config.h"
#include "hearth-preferences.h"
#include "hearth-window.h"

struct _HearthApplication {
    AdwApplication parent_instance;
    char *model_dir;
    GSettings *settings;
    char *settings_error;       /* why there is no schema, or NULL */
};

G_DEFINE_FINAL_TYPE(HearthApplication, hearth_application, ADW_TYPE_APPLICATION)

/* ---- settings -------------------------------------------------------------- */

/* TRUE when this binary is the one in the build tree (it runs uninstalled). */
static gboolean
running_from_build_tree(void)
{
    g_autofree char *exe = g_file_read_link("/proc/self/exe", NULL);
    char *root = realpath(HEARTH_BUILD_ROOT, NULL); /* both with symlinks resolved */
    if (!exe || !root) {
        free(root);
        return FALSE;
    }
    g_autofree char *prefix = g_strconcat(root, G_DIR_SEPARATOR_S, NULL);
    free(root);
    return g_str_has_prefix(exe, prefix);
}

/* The app's schema: from the build tree's compiled schemas when this binary
 * runs from the build tree (so ./build/app/hearth works without installing
 * and always sees this tree's keys), else from the installed ones
 * ($XDG_DATA_DIRS, GSETTINGS_SCHEMA_DIR). */
static GSettingsSchema *
lookup_schema(void)
{
    GSettingsSchemaSource *system = g_settings_schema_source_get_default();
    if (running_from_build_tree()) {
        g_autoptr(GSettingsSchemaSource) build =
            g_settings_schema_source_new_from_directory(HEARTH_BUILD_SCHEMA_DIR, system, FALSE, NULL);
        GSettingsSchema *schema = build ? g_settings_schema_source_lookup(build, HEARTH_APP_ID, FALSE) : NULL;
        if (schema)
            return schema;
    }
    return system ? g_settings_schema_source_lookup(system, HEARTH_APP_ID, TRUE) : NULL;
}

static void
apply_color_scheme(GSettings *settings, const char *key, gpointer user_data)
{
    g_autofree char *scheme = g_settings_get_string(settings, "color-scheme");
    AdwColorScheme cs = ADW_COLOR_SCHEME_DEFAULT;
    if (g_str_equal(scheme, "light"))
        cs = ADW_COLOR_SCHEME_FORCE_LIGHT;
    else if (g_str_equal(scheme, "dark"))
        cs = ADW_COLOR_SCHEME_FORCE_DARK;
    adw_style_manager_set_color_scheme(adw_style_manager_get_default(), cs);
}

GSettings *
hearth_application_get_settings(HearthApplication *self)
{
    return self->settings;
}

/* ---- actions ---------------------------------------------------------------- */

static void
hearth_application_activate(GApplication *app)
{
    GtkWindow *window = gtk_application_get_active_window(GTK_APPLICATION(app));
    if (!window)
        window = GTK_WINDOW(hearth_window_new(HEARTH_APPLICATION(app)));
    gtk_window_present(window);
}

/* Quit by closing the windows, so each saves its state (size, a reply being
 * written) as it does when closed by hand. */
static void
quit_activated(GSimpleAction *action, GVariant *param, gpointer user_data)
{
    GList *windows = g_list_copy(gtk_application_get_windows(GTK_APPLICATION(user_data)));
    for (GList *l = windows; l; l = l->next)
        gtk_window_close(GTK_WINDOW(l->data));
    g_list_free(windows);
}

static void
preferences_activated(GSimpleAction *action, GVariant *param, gpointer user_data)
{
    HearthApplication *self = HEARTH_APPLICATION(user_data);
    GtkWindow *parent = gtk_application_get_active_window(GTK_APPLICATION(self));
    /* One preferences window at a time. */
    for (GList *l = gtk_application_get_windows(GTK_APPLICATION(self)); l; l = l->next) {
        if (HEARTH_IS_PREFERENCES(l->data)) {
            gtk_window_present(GTK_WINDOW(l->data));
            return;
        }
    }
    if (HEARTH_IS_PREFERENCES(parent))
        parent = gtk_window_get_transient_for(parent);
    HearthPreferences *prefs = hearth_preferences_new(self->settings, parent);
    gtk_window_set_application(GTK_WINDOW(prefs), GTK_APPLICATION(self));
    gtk_window_present(GTK_WINDOW(prefs));
}

static void
about_activated(GSimpleAction *action, GVariant *param, gpointer user_data)
{
    HearthApplication *self = HEARTH_APPLICATION(user_data);
    static const char *developers[] = { "The Hearth developers", NULL };
    GtkWindow *parent = gtk_application_get_active_window(GTK_APPLICATION(self));
    GtkWidget *about = g_object_new(ADW_TYPE_ABOUT_WINDOW,
                                    "transient-for", parent,
                                    "modal", TRUE,
                                    "destroy-with-parent", TRUE,
                                    "application-name", _("Hearth"),
                                    "application-icon", HEARTH_APP_ID,
                                    "developer-name", _("The Hearth developers"),
                                    "version", HEARTH_VERSION,
                                    "comments", _("A private AI assistant. Language models run on this "
                                                  "computer, on its GPU or its CPU, and nothing you write "
                                                  "leaves it."),
                                    "website", "https://github.com/hearthchat/hearth",
                                    "issue-url", "https://github.com/hearthchat/hearth/issues",
                                    "copyright", "© 2026 The Hearth developers",
                                    "license-type", GTK_LICENSE_GPL_3_0,
                                    "developers", developers,
                                    /* Translators: your names, one per line, e.g. "Jane Doe <jane@example.org>". */
                                    "translator-credits", _("translator-credits"),
                                    NULL);
    adw_about_window_add_acknowledgement_section(ADW_ABOUT_WINDOW(about), _("Built on"),
                                                 (const char *[]){ "GTK https://gtk.org",
                                                                   "libadwaita https://gnome.pages.gitlab.gnome.org/libadwaita/",
                                                                   "SQLite https://sqlite.org",
                                                                   "cmark https://github.com/commonmark/cmark",
                                                                   NULL });
    hearth_a11y_name_unlabelled(about);
    gtk_window_present(GTK_WINDOW(about));
}

/* app.open-model(s): `hearth --model DIR` when Hearth is already running
 * reaches the running instance through this action (GApplication forwards
 * activation but not our option). */
static void
open_model_activated(GSimpleAction *action, GVariant *param, gpointer user_data)
{
    HearthApplication *self = HEARTH_APPLICATION(user_data);
    const char *dir = g_variant_get_string(param, NULL);
    GtkWindow *window = gtk_application_get_active_window(GTK_APPLICATION(self));
    if (window) {
        hearth_window_open_model(HEARTH_WINDOW(window), dir);
        gtk_window_present(window);
        return;
    }
    g_free(self->model_dir);
    self->model_dir = g_strdup(dir);
    g_application_activate(G_APPLICATION(self));
}

static const GActionEntry app_actions[] = {
    { .name = "open-model", .activate = open_model_activated, .parameter_type = "s" },
    { .name = "quit", .activate = quit_activated },
    { .name = "preferences", .activate = preferences_activated },
    { .name = "about", .activate = about_activated },
};

static void
hearth_application_startup(GApplication *app)
{
    HearthApplication *self = HEARTH_APPLICATION(app);
    G_APPLICATION_CLASS(hearth_application_parent_class)->startup(app);
    g_action_map_add_action_entries(G_ACTION_MAP(app), app_actions, G_N_ELEMENTS(app_actions), app);
    const char *quit_accels[] = { "<Control>q", NULL };
    const char *prefs_accels[] = { "<Control>comma", NULL };
    gtk_application_set_accels_for_action(GTK_APPLICATION(app), "app.quit", quit_accels);
    gtk_application_set_accels_for_action(GTK_APPLICATION(app), "app.preferences", prefs_accels);
    if (self->settings) {
        g_signal_connect(self->settings, "changed::color-scheme", G_CALLBACK(apply_color_scheme), NULL);
        apply_color_scheme(self->settings, "color-scheme", NULL);
    }
}

static int
hearth_application_handle_local_options(GApplication *app, GVariantDict *options)
{
    HearthApplication *self = HEARTH_APPLICATION(app);
    const char *model = NULL;
    if (g_variant_dict_lookup(options, "model", "^&ay", &model) && model && *model) {
        g_autoptr(GFile) f = g_file_new_for_commandline_arg(model);
        self->model_dir = g_file_get_path(f);
    }
    if (g_variant_dict_contains(options, "version")) {
        g_print("hearth %s\n", HEARTH_VERSION);
        return 0;
    }
    if (!self->settings) {
        g_printerr("hearth: %s\n", self->settings_error);
        return 1;
    }
    /* Already running: hand the folder to that instance and exit. */
    if (self->model_dir && g_application_register(app, NULL, NULL) && g_application_get_is_remote(app)) {
        g_action_group_activate_action(G_ACTION_GROUP(app), "open-model", g_variant_new_string(self->model_dir));
        GDBusConnection *bus = g_application_get_dbus_connection(app);
        if (bus)
            g_dbus_connection_flush_sync(bus, NULL, NULL);
        return 0;
    }
    return -1;
}

static void
hearth_application_finalize(GObject *object)
{
    HearthApplication *self = HEARTH_APPLICATION(object);
    g_free(self->model_dir);
    g_free(self->settings_error);
    g_clear_object(&self->settings);
    G_OBJECT_CLASS(hearth_application_parent_class)->finalize(object);
}

const char *
hearth_application_get_model_dir(HearthApplication *self)
{
    return self->model_dir;
}

static void
hearth_application_class_init(HearthApplicationClass *klass)
{
    GApplicationClass *app_class = G_APPLICATION_CLASS(klass);
    G_OBJECT_CLASS(klass)->finalize = hearth_application_finalize;
    app_class->handle_local_options = hearth_application_handle_local_options;
    app_class->activate = hearth_application_activate;
    app_class->startup = hearth_application_startup;
}

static void
hearth_application_init(HearthApplication *self)
{
    static const GOptionEntry entries[] = {
        { "model", 'm', 0, G_OPTION_ARG_FILENAME, NULL, N_("Open the model in this folder"), N_("DIR") },
        { "version", 0, 0, G_OPTION_ARG_NONE, NULL, N_("Print the version and exit"), NULL },
        { NULL },
    };
    g_application_add_main_option_entries(G_APPLICATION(self), entries);

    g_autoptr(GSettingsSchema) schema = lookup_schema();
    if (schema)
        self->settings = g_settings_new_full(schema, NULL, NULL);
    else
        self->settings_error = g_strdup_printf(_("The settings schema %s is not installed. Install Hearth, "
                                                 "or run it from its build folder."), HEARTH_APP_ID);
}

HearthApplication *
hearth_application_new(void)
{
    return g_object_new(HEARTH_TYPE_APPLICATION,
                        "application-id", HEARTH_APP_ID,
                        "flags", G_APPLICATION_DEFAULT_FLAGS,
                        "resource-base-path", "/io/github/hearthchat/Hearth",
                        NULL);
}
