#include "hearth-window.h"

#include <glib/gi18n.h>

struct _HearthWindow {
    AdwApplicationWindow parent_instance;
    AdwStatusPage *empty_page;
};

G_DEFINE_FINAL_TYPE(HearthWindow, hearth_window, ADW_TYPE_APPLICATION_WINDOW)

static void
hearth_window_class_init(HearthWindowClass *klass)
{
    GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
    gtk_widget_class_set_template_from_resource(widget_class, "/io/github/hearthchat/Hearth/hearth-window.ui");
    gtk_widget_class_bind_template_child(widget_class, HearthWindow, empty_page);
}

static void
hearth_window_init(HearthWindow *self)
{
    gtk_widget_init_template(GTK_WIDGET(self));
    g_autofree char *models_dir = g_build_filename(g_get_user_data_dir(), "io.github.hearthchat.Hearth",
                                                   "models", NULL);
    g_autofree char *desc = g_strdup_printf(
        _("Hearth runs language models privately on this computer. Put a model folder in "
          "Hugging Face layout (config.json, tokenizer.json and *.safetensors) in %s."),
        models_dir);
    adw_status_page_set_description(self->empty_page, desc);
}

HearthWindow *
hearth_window_new(HearthApplication *app)
{
    return g_object_new(HEARTH_TYPE_WINDOW, "application", app, NULL);
}
