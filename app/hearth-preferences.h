/* hearth-preferences.h — the Preferences window: appearance, conversations,
 * the engine (backend, context length, models folder, devices) and the
 * defaults new conversations start with. Everything is a GSettings key of
 * io.github.hearthchat.Hearth, bound with g_settings_bind. */
#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

#define HEARTH_TYPE_PREFERENCES (hearth_preferences_get_type())
G_DECLARE_FINAL_TYPE(HearthPreferences, hearth_preferences, HEARTH, PREFERENCES, AdwPreferencesWindow)

/* parent: the main window; "Delete All Conversations" activates its
 * win.delete-all-conversations action. */
HearthPreferences *hearth_preferences_new(GSettings *settings, GtkWindow *parent);

G_END_DECLS
