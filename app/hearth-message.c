#include "hearth-message.h"

struct _HearthMessage {
    GObject parent_instance;
    gint64 id;
    char *role;
    GString *content;
    char *state;
    char *note;
    gboolean is_last;
    int version, n_versions;
    gboolean highlighted;
};

G_DEFINE_FINAL_TYPE(HearthMessage, hearth_message, G_TYPE_OBJECT)

enum { PROP_0, PROP_CONTENT, PROP_STATE, PROP_NOTE, PROP_IS_LAST, PROP_VERSION, PROP_HIGHLIGHTED, N_PROPS };
static GParamSpec *props[N_PROPS];

static void
hearth_message_finalize(GObject *object)
{
    HearthMessage *self = HEARTH_MESSAGE(object);
    g_free(self->role);
    g_string_free(self->content, TRUE);
    g_free(self->state);
    g_free(self->note);
    G_OBJECT_CLASS(hearth_message_parent_class)->finalize(object);
}

static void
hearth_message_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
    HearthMessage *self = HEARTH_MESSAGE(object);
    switch (prop_id) {
    case PROP_CONTENT: g_value_set_string(value, self->content->str); break;
    case PROP_STATE: g_value_set_string(value, self->state); break;
    case PROP_NOTE: g_value_set_string(value, self->note); break;
    case PROP_IS_LAST: g_value_set_boolean(value, self->is_last); break;
    case PROP_VERSION: g_value_set_int(value, self->version); break;
    case PROP_HIGHLIGHTED: g_value_set_boolean(value, self->highlighted); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
    }
}

static void
hearth_message_class_init(HearthMessageClass *klass)
{
    GObjectClass *object_class = G_OBJECT_CLASS(klass);
    object_class->finalize = hearth_message_finalize;
    object_class->get_property = hearth_message_get_property;
    GParamFlags f = G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;
    props[PROP_CONTENT] = g_param_spec_string("content", NULL, NULL, NULL, f);
    props[PROP_STATE] = g_param_spec_string("state", NULL, NULL, NULL, f);
    props[PROP_NOTE] = g_param_spec_string("note", NULL, NULL, NULL, f);
    props[PROP_IS_LAST] = g_param_spec_boolean("is-last", NULL, NULL, FALSE, f);
    props[PROP_VERSION] = g_param_spec_int("version", NULL, NULL, 1, G_MAXINT, 1, f);
    props[PROP_HIGHLIGHTED] = g_param_spec_boolean("highlighted", NULL, NULL, FALSE, f);
    g_object_class_install_properties(object_class, N_PROPS, props);
}

static void
hearth_message_init(HearthMessage *self)
{
    self->content = g_string_new(NULL);
    self->version = self->n_versions = 1;
}

HearthMessage *
hearth_message_new(gint64 id, const char *role, const char *content, const char *state)
{
    HearthMessage *self = g_object_new(HEARTH_TYPE_MESSAGE, NULL);
    self->id = id;
    self->role = g_strdup(role);
    g_string_assign(self->content, content ? content : "");
    self->state = g_strdup(state ? state : "complete");
    return self;
}

gint64 hearth_message_get_id(HearthMessage *self) { return self->id; }
const char *hearth_message_get_role(HearthMessage *self) { return self->role; }
const char *hearth_message_get_content(HearthMessage *self) { return self->content->str; }
const char *hearth_message_get_state(HearthMessage *self) { return self->state; }
const char *hearth_message_get_note(HearthMessage *self) { return self->note; }
gboolean hearth_message_get_is_last(HearthMessage *self) { return self->is_last; }
int hearth_message_get_version(HearthMessage *self) { return self->version; }
int hearth_message_get_n_versions(HearthMessage *self) { return self->n_versions; }
gboolean hearth_message_get_highlighted(HearthMessage *self) { return self->highlighted; }

void
hearth_message_set_content(HearthMessage *self, const char *content)
{
    if (g_strcmp0(self->content->str, content) == 0)
        return;
    g_string_assign(self->content, content ? content : "");
    g_object_notify_by_pspec(G_OBJECT(self), props[PROP_CONTENT]);
}

void
hearth_message_append(HearthMessage *self, const char *text)
{
    if (!text || !*text)
        return;
    g_string_append(self->content, text);
    g_object_notify_by_pspec(G_OBJECT(self), props[PROP_CONTENT]);
}

void
hearth_message_set_state(HearthMessage *self, const char *state)
{
    if (g_strcmp0(self->state, state) == 0)
        return;
    g_free(self->state);
    self->state = g_strdup(state);
    g_object_notify_by_pspec(G_OBJECT(self), props[PROP_STATE]);
}

void
hearth_message_set_note(HearthMessage *self, const char *note)
{
    if (g_strcmp0(self->note, note) == 0)
        return;
    g_free(self->note);
    self->note = g_strdup(note);
    g_object_notify_by_pspec(G_OBJECT(self), props[PROP_NOTE]);
}

void
hearth_message_set_is_last(HearthMessage *self, gboolean is_last)
{
    if (self->is_last == is_last)
        return;
    self->is_last = is_last;
    g_object_notify_by_pspec(G_OBJECT(self), props[PROP_IS_LAST]);
}

void
hearth_message_set_versions(HearthMessage *self, int version, int n_versions)
{
    version = MAX(version, 1);
    n_versions = MAX(n_versions, version);
    if (self->version == version && self->n_versions == n_versions)
        return;
    self->version = version;
    self->n_versions = n_versions;
    g_object_notify_by_pspec(G_OBJECT(self), props[PROP_VERSION]);
}

void
hearth_message_set_highlighted(HearthMessage *self, gboolean highlighted)
{
    if (self->highlighted == highlighted)
        return;
    self->highlighted = highlighted;
    g_object_notify_by_pspec(G_OBJECT(self), props[PROP_HIGHLIGHTED]);
}
