#pragma once

#include <adwaita.h>

#include "hearth-application.h"

G_BEGIN_DECLS

#define HEARTH_TYPE_WINDOW (hearth_window_get_type())
G_DECLARE_FINAL_TYPE(HearthWindow, hearth_window, HEARTH, WINDOW, AdwApplicationWindow)

HearthWindow *hearth_window_new(HearthApplication *app);
void hearth_window_open_model(HearthWindow *self, const char *dir);

G_END_DECLS
