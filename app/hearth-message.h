/* hearth-message.h — one chat message as a list-model item. */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

#define HEARTH_TYPE_MESSAGE (hearth_message_get_type())
G_DECLARE_FINAL_TYPE(HearthMessage, hearth_message, HEARTH, MESSAGE, GObject)

HearthMessage *hearth_message_new(gint64 id, const char *role, const char *content, const char *state);

gint64 hearth_message_get_id(HearthMessage *self);
const char *hearth_message_get_role(HearthMessage *self);     /* "system", "user", "assistant" */
const char *hearth_message_get_content(HearthMessage *self);
void hearth_message_set_content(HearthMessage *self, const char *content);
void hearth_message_append(HearthMessage *self, const char *text);
const char *hearth_message_get_state(HearthMessage *self);    /* "complete", "partial", "error", "interrupted" */
void hearth_message_set_state(HearthMessage *self, const char *state);
/* A one-line note under the message: tokens/s, errors, "interrupted". */
const char *hearth_message_get_note(HearthMessage *self);
void hearth_message_set_note(HearthMessage *self, const char *note);
gboolean hearth_message_get_is_last(HearthMessage *self);
void hearth_message_set_is_last(HearthMessage *self, gboolean is_last);
/* Regenerated replies have versions: this is version `version` of
 * `n_versions` (1 of 1 unless it was regenerated). One notify, "version". */
int hearth_message_get_version(HearthMessage *self);
int hearth_message_get_n_versions(HearthMessage *self);
void hearth_message_set_versions(HearthMessage *self, int version, int n_versions);
/* Shown highlighted for a moment (the message a search result led to). */
gboolean hearth_message_get_highlighted(HearthMessage *self);
void hearth_message_set_highlighted(HearthMessage *self, gboolean highlighted);

G_END_DECLS
