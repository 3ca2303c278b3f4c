#pragma once

#include <gtk/gtk.h>

#include "hearth-message.h"

G_BEGIN_DECLS

#define HEARTH_TYPE_MESSAGE_ROW (hearth_message_row_get_type())
G_DECLARE_FINAL_TYPE(HearthMessageRow, hearth_message_row, HEARTH, MESSAGE_ROW, GtkWidget)

GtkWidget *hearth_message_row_new(void);
/* Show message (NULL to unbind). The row follows its content/state/note. */
void hearth_message_row_bind(HearthMessageRow *self, HearthMessage *message);

G_END_DECLS
