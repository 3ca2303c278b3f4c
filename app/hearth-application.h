#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

#define HEARTH_TYPE_APPLICATION (hearth_application_get_type())
G_DECLARE_FINAL_TYPE(HearthApplication, hearth_application, HEARTH, APPLICATION, AdwApplication)

HearthApplication *hearth_application_new(void);
/* The folder given with --model, or NULL. */
const char *hearth_application_get_model_dir(HearthApplication *self);
/* The app's GSettings (io.github.hearthchat.Hearth); never NULL once the
 * application has started. */
GSettings *hearth_application_get_settings(HearthApplication *self);

G_END_DECLS
