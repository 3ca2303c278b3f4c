#include "hearth-application.h"

#include <glib/gi18n.h>

#include "hearth-config.h"
#include "hearth-window.h"

struct _HearthApplication {
    AdwApplication parent_instance;
    char *model_dir;
};

G_DEFINE_FINAL_TYPE(HearthApplication, hearth_application, ADW_TYPE_APPLICATION)

static void
hearth_application_activate(GApplication *app)
{
    GtkWindow *window = gtk_application_get_active_window(GTK_APPLICATION(app));
    if (!window)
        window = GTK_WINDOW(hearth_window_new(HEARTH_APPLICATION(app)));
    gtk_window_present(window);
}

static void
quit_activated(GSimpleAction *action, GVariant *param, gpointer user_data)
{
    g_application_quit(G_APPLICATION(user_data));
}

static const GActionEntry app_actions[] = {
    { .name = "quit", .activate = quit_activated },
};

static void
hearth_application_startup(GApplication *app)
{
    G_APPLICATION_CLASS(hearth_application_parent_class)->startup(app);
    g_action_map_add_action_entries(G_ACTION_MAP(app), app_actions, G_N_ELEMENTS(app_actions), app);
    const char *quit_accels[] = { "<Control>q", NULL };
    gtk_application_set_accels_for_action(GTK_APPLICATION(app), "app.quit", quit_accels);
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
    return -1;
}

static void
hearth_application_finalize(GObject *object)
{
    g_free(HEARTH_APPLICATION(object)->model_dir);
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
