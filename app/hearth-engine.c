#include "hearth-engine.h"

#include <stdatomic.h>
#include <string.h>

#include <glib/gi18n.h>

#include "chat.h"
#include "hr-json.h"
#include "generate.h"
#include "model.h"
#include "model-config.h"
#include "safetensors.h"
#include "sampler.h"
#include "tokenizer.h"

/* Reply text reaches the main thread at most this often (ms). */
#define DELTA_MS 100

typedef enum { REQ_LOAD, REQ_UNLOAD, REQ_GENERATE, REQ_QUIT } RequestType;

typedef struct {
    RequestType type;
    guint id;
    char *dir;
    char *backend;             /* load: "auto", "vulkan", "cuda", "cpu" */
    int context_len;           /* load: 0 = the model's default */
    int n_threads;             /* load: CPU threads, 0 = automatic */
    JsonNode *messages;
    HearthGenParams params;
} Request;

/* State shared by the GObject (main thread) and the worker thread. */
typedef struct {
    gatomicrefcount ref;
    GAsyncQueue *queue;
    atomic_int cancel;         /* checked by the decode loop before every token */
    atomic_uint cancel_upto;   /* requests with id <= this are cancelled */
    GMainContext *main_context;
    GWeakRef owner;            /* the HearthEngine, for signal emission */
    GMutex delta_lock;
    GString *delta;            /* reply text not yet delivered */
    guint delta_id;
    gboolean delta_scheduled;
    gint64 delta_last;         /* when text was last delivered (monotonic us) */
    /* worker-only */
    HrModel *model;
    HrTokenizer *tok;
    Request *loaded_with;      /* the load request the model came from (REQ_LOAD fields), to load it again */
    guint loading_id;          /* the load request being run: its events carry it */
    GHashTable *msg_tokens;    /* "role\x1fcontent" -> token count (+1), for trimming by arithmetic */
} Shared;

struct _HearthEngine {
    GObject parent_instance;
    Shared *shared;
    GThread *thread;
    HearthEngineState state;
    char *model_dir;
    char *model_name;
    char *prev_model_dir;      /* while loading: the model that stays if the new one fails its checks */
    char *prev_model_name;
    char *load_backend;
    int load_context_len;
    int load_threads;          /* CPU threads for the next loads (0: automatic) */
    guint64 n_params;
    float rec[5];              /* the loaded model's recommended temperature, top-p, min-p, repetition penalty,
                                  top-k (generation_config.json; -1: none) */
    int context_length;
    int context_used;
    HearthLoadNote load_note;  /* where the loaded model runs when that is not where it was asked to */
    guint next_id;
    guint load_id;             /* the last load asked for: events of an earlier one are stale */
};

G_DEFINE_FINAL_TYPE(HearthEngine, hearth_engine, G_TYPE_OBJECT)

enum { PROP_0, PROP_STATE, PROP_MODEL_NAME, PROP_CONTEXT_USED, N_PROPS };
static GParamSpec *props[N_PROPS];

enum { SIG_LOAD_PROGRESS, SIG_LOAD_FINISHED, SIG_REPLY_DELTA, SIG_CONTEXT_TRIMMED, SIG_REPLY_FINISHED, N_SIGNALS };
static guint signals[N_SIGNALS];

void
hearth_gen_params_init(HearthGenParams *p)
{
    p->temperature = 0.7;
    p->top_p = 0.95;
    p->top_k = 40;
    p->min_p = 0.05;
    p->repetition_penalty = 1.1;
    p->max_new_tokens = 512;
    p->seed = 0;
}

static Shared *
shared_ref(Shared *s)
{
    g_atomic_ref_count_inc(&s->ref);
    return s;
}

static void
request_free(Request *r)
{
    g_free(r->dir);
    g_free(r->backend);
    if (r->messages)
        json_node_unref(r->messages);
    g_free(r);
}

static void
shared_unref(Shared *s)
{
    if (!g_atomic_ref_count_dec(&s->ref))
        return;
    Request *r;
    while ((r = g_async_queue_try_pop(s->queue)))
        request_free(r);
    g_async_queue_unref(s->queue);
    g_weak_ref_clear(&s->owner);
    g_mutex_clear(&s->delta_lock);
    g_string_free(s->delta, TRUE);
    g_main_context_unref(s->main_context);
    hr_model_free(s->model);
    hr_tokenizer_free(s->tok);
    if (s->loaded_with)
        request_free(s->loaded_with);
    g_hash_table_unref(s->msg_tokens);
    g_free(s);
}

/* ---- main-thread side: events posted by the worker ---------------------- */

typedef enum { EV_PROGRESS, EV_LOADED, EV_TRIMMED, EV_FINISHED, EV_GENERATING, EV_RELOADING } EventType;

typedef struct {
    Shared *shared;
    EventType type;
    guint id;
    double progress;
    int done, total;           /* EV_PROGRESS: tensors */
    gboolean ok;
    gboolean kept_previous;    /* load failed its checks; the previous model is still loaded */
    HearthLoadNote load_note;  /* EV_LOADED: where the model runs when not where asked, or why it was loaded again */
    char *error;
    char *model_dir;
    guint64 n_params;  /* the loaded model's weights, from its shape */
    float rec[5];      /* its recommended sampling (HearthEngine's) */
    int context_length;
    int context_used;
    int dropped;
    HearthReplyStats stats;
    char *stop_reason;
} Event;

static void flush_delta(Shared *s, HearthEngine *self);

static void
set_state(HearthEngine *self, HearthEngineState st)
{
    if (self->state == st)
        return;
    self->state = st;
    g_object_notify_by_pspec(G_OBJECT(self), props[PROP_STATE]);
}

static gboolean
event_dispatch(gpointer data)
{
    Event *ev = data;
    HearthEngine *self = g_weak_ref_get(&ev->shared->owner);
    if (!self)
        return G_SOURCE_REMOVE;
    /* a load's events after another load was asked for (it finished, or failed, before it was cancelled):
     * the later load's own events say how things stand */
    if ((ev->type == EV_PROGRESS || ev->type == EV_LOADED || ev->type == EV_RELOADING) && ev->id != self->load_id) {
        g_object_unref(self);
        return G_SOURCE_REMOVE;
    }
    switch (ev->type) {
    case EV_PROGRESS:
        g_signal_emit(self, signals[SIG_LOAD_PROGRESS], 0, ev->progress, ev->done, ev->total);
        break;
    case EV_LOADED:
        if (ev->kept_previous) {
            /* The previous model is still loaded, with its KV cache. */
            g_free(self->model_dir);
            g_free(self->model_name);
            self->model_dir = g_steal_pointer(&self->prev_model_dir);
            self->model_name = g_steal_pointer(&self->prev_model_name);
            g_object_notify_by_pspec(G_OBJECT(self), props[PROP_MODEL_NAME]);
            set_state(self, HEARTH_ENGINE_READY);
            g_signal_emit(self, signals[SIG_LOAD_FINISHED], 0, ev->ok, ev->error);
            break;
        }
        g_clear_pointer(&self->prev_model_dir, g_free);
        g_clear_pointer(&self->prev_model_name, g_free);
        self->context_length = ev->context_length;
        self->n_params = ev->ok ? ev->n_params : 0;
        for (int i = 0; i < 5; i++)
            self->rec[i] = ev->ok ? ev->rec[i] : -1.0f;
        self->context_used = 0;
        if (!ev->ok) {
            g_clear_pointer(&self->model_dir, g_free);
            g_clear_pointer(&self->model_name, g_free);
            g_object_notify_by_pspec(G_OBJECT(self), props[PROP_MODEL_NAME]);
        }
        set_state(self, ev->ok ? HEARTH_ENGINE_READY : HEARTH_ENGINE_EMPTY);
        self->load_note = ev->ok ? ev->load_note : HEARTH_LOAD_NOTE_NONE;
        g_signal_emit(self, signals[SIG_LOAD_FINISHED], 0, ev->ok, ev->error);
        break;
    case EV_GENERATING:
        set_state(self, HEARTH_ENGINE_GENERATING);
        break;
    case EV_RELOADING:
        /* the worker loads the model again by itself (a device error): a load like the others, of the
         * same folder, ending in "load-finished" */
        set_state(self, HEARTH_ENGINE_LOADING);
        break;
    case EV_TRIMMED:
        g_signal_emit(self, signals[SIG_CONTEXT_TRIMMED], 0, ev->id, ev->dropped);
        break;
    case EV_FINISHED:
        flush_delta(ev->shared, self);
        self->context_used = ev->context_used;
        g_object_notify_by_pspec(G_OBJECT(self), props[PROP_CONTEXT_USED]);
        if (self->state == HEARTH_ENGINE_GENERATING)
            set_state(self, HEARTH_ENGINE_READY);
        ev->stats.stop_reason = ev->stop_reason;
        ev->stats.error = ev->error;
        g_signal_emit(self, signals[SIG_REPLY_FINISHED], 0, ev->id, &ev->stats);
        break;
    }
    g_object_unref(self);
    return G_SOURCE_REMOVE;
}

static void
event_free(gpointer data)
{
    Event *ev = data;
    shared_unref(ev->shared);
    g_free(ev->error);
    g_free(ev->model_dir);
    g_free(ev->stop_reason);
    g_free(ev);
}

/* Always through a source the main thread dispatches, in order (not g_main_context_invoke: while no
 * thread iterates the main context, it runs the function at once on the calling thread, the worker's,
 * as it did in tests that iterate by hand; the window's signals would then run on the worker). */
static void
post(Shared *s, Event *ev)
{
    ev->shared = shared_ref(s);
    GSource *src = g_idle_source_new();
    g_source_set_priority(src, G_PRIORITY_DEFAULT);
    g_source_set_callback(src, event_dispatch, ev, event_free);
    g_source_attach(src, s->main_context);
    g_source_unref(src);
}

static void
flush_delta(Shared *s, HearthEngine *self)
{
    g_mutex_lock(&s->delta_lock);
    char *text = s->delta->len ? g_strndup(s->delta->str, s->delta->len) : NULL;
    guint id = s->delta_id;
    g_string_truncate(s->delta, 0);
    s->delta_scheduled = FALSE;
    s->delta_last = g_get_monotonic_time();
    g_mutex_unlock(&s->delta_lock);
    if (text)
        g_signal_emit(self, signals[SIG_REPLY_DELTA], 0, id, text);
    g_free(text);
}

static gboolean
delta_dispatch(gpointer data)
{
    Shared *s = data;
    HearthEngine *self = g_weak_ref_get(&s->owner);
    if (self) {
        flush_delta(s, self);
        g_object_unref(self);
    }
    return G_SOURCE_REMOVE;
}

/* ---- worker side --------------------------------------------------------- */

static bool
on_progress(double progress, int done, int total, void *user)
{
    Shared *s = user;
    Event *ev = g_new0(Event, 1);
    ev->type = EV_PROGRESS;
    ev->id = s->loading_id;
    ev->progress = progress;
    ev->done = done;
    ev->total = total;
    post(s, ev);
    return !atomic_load(&s->cancel);
}

/* The same for a load nothing may cancel (the engine's own reload after a device error: a Stop meant
 * for the failed reply must not stop it, and a load asked for meanwhile waits its turn). */
static bool
on_progress_uncancellable(double progress, int done, int total, void *user)
{
    on_progress(progress, done, total, user);
    return true;
}

static char *
friendly_load_error(const char *dir, const HrError *err)
{
    g_autofree char *name = g_path_get_basename(dir);
    switch (err->status) {
    case HR_ERR_NOMEM:
        return g_strdup_printf(_("“%s” does not fit in memory: %s"), name, err->message);
    case HR_ERR_UNSUPPORTED:
        return g_strdup_printf(_("“%s” is a kind of model Hearth cannot run yet: %s"), name, err->message);
    case HR_ERR_IO:
        return g_strdup_printf(_("“%s” could not be read: %s"), name, err->message);
    default:
        return g_strdup_printf(_("“%s” is not a usable model folder: %s"), name, err->message);
    }
}

/* Everything about a model folder that can be checked without loading its
 * weights: the config, the tokenizer, the safetensors headers, and the chat
 * template rendering a short conversation within its budgets. */
static HrStatus
precheck_model(const char *dir, HrTokenizer **tok, HrError *err)
{
    HrModelConfig cfg;
    HrTensorSet *ts = NULL;
    HrStatus st = hr_model_config_load(dir, &cfg, err);
    if (st == HR_OK)
        st = hr_tensor_set_open_dir(dir, &ts, err);
    hr_tensor_set_free(ts);
    if (st == HR_OK)
        st = hr_tokenizer_load(dir, tok, err);
    if (st == HR_OK) {
        const char *sample[][2] = { { "user", "Hello!" }, { "assistant", "Hi! How can I help?" },
                                    { "user", "Tell me a short story." } };
        JsonArray *arr = json_array_new();
        for (size_t i = 0; i < G_N_ELEMENTS(sample); i++) {
            JsonObject *o = json_object_new();
            json_object_set_string_member(o, "role", sample[i][0]);
            json_object_set_string_member(o, "content", sample[i][1]);
            json_array_add_object_element(arr, o);
        }
        JsonNode *node = json_node_new(JSON_NODE_ARRAY);
        json_node_take_array(node, arr);
        int32_t *ids = NULL;
        size_t n = 0;
        st = hr_chat_render(*tok, node, true, NULL, &ids, &n, NULL, NULL, err);
        if (st != HR_OK)
            hr_error_prefix(err, "its chat template fails: ");
        g_free(ids);
        json_node_unref(node);
    }
    if (st != HR_OK)
        g_clear_pointer(tok, hr_tokenizer_free);
    return st;
}

/* The weights of r->dir into s->model; r is remembered for a reload. After a device error (reload),
 * nothing cancels the load and it goes to the CPU where the device fails again. */
static HrStatus
load_weights(Shared *s, const Request *r, bool reload, HrError *err)
{
    HrModelOptions opt;
    hr_model_options_init(&opt);
    opt.progress = reload ? on_progress_uncancellable : on_progress;
    opt.progress_user = s;
    opt.cpu_fallback = reload;
    if (r->backend)
        opt.backend = r->backend;
    opt.context_len = r->context_len;
    opt.n_threads = r->n_threads;
    HrStatus st = hr_model_load(r->dir, &opt, &s->model, err);
    if (st == HR_OK && r != s->loaded_with) {
        if (s->loaded_with)
            request_free(s->loaded_with);
        s->loaded_with = g_new0(Request, 1);
        s->loaded_with->type = REQ_LOAD;
        s->loaded_with->id = r->id;
        s->loaded_with->dir = g_strdup(r->dir);
        s->loaded_with->backend = g_strdup(r->backend);
        s->loaded_with->context_len = r->context_len;
        s->loaded_with->n_threads = r->n_threads;
    }
    return st;
}

/* ev (EV_LOADED) says how the load of r ended (st, err), and its note where the model runs when not
 * where asked ("auto" on a GPU without the memory for it, or whose device failed: the CPU) or, after a
 * device error (reload), where it runs now. */
/* The weights a Llama-shaped model has: embeddings (and a separate lm_head), and per layer the attention's
 * q, k, v, o and the MLP's gate, up, down (norms and biases are too few to count). */
static guint64
config_params(const HrModelConfig *c)
{
    const guint64 dim = (guint64)c->dim, q = (guint64)c->n_heads * c->head_dim,
                  kv = (guint64)c->n_kv_heads * c->head_dim;
    const guint64 layer = 2 * dim * q + 2 * dim * kv + 3 * dim * (guint64)c->hidden_dim;
    return (guint64)c->vocab_size * dim * (c->tie_embeddings ? 1 : 2) + (guint64)c->n_layers * layer;
}

static void
post_loaded(Shared *s, Event *ev, const Request *r, HrStatus st, const HrError *err, bool reload)
{
    if (st != HR_OK) {
        ev->ok = FALSE;
        ev->error = friendly_load_error(r->dir, err);
        g_clear_pointer(&s->tok, hr_tokenizer_free);
    } else {
        ev->ok = TRUE;
        ev->context_length = hr_model_context_len(s->model);
        ev->n_params = config_params(hr_model_config(s->model));
        const HrModelConfig *mc = hr_model_config(s->model);
        const float rec[5] = { mc->rec_temperature, mc->rec_top_p, mc->rec_min_p, mc->rec_repetition_penalty,
                               (float)mc->rec_top_k };
        memcpy(ev->rec, rec, sizeof rec);
        const HrStatus moved = hr_model_moved_for(s->model);   /* never silently (the window's toast) */
        if (reload)
            ev->load_note = moved != HR_OK ? HEARTH_LOAD_NOTE_CPU_AFTER_DEVICE_ERROR : HEARTH_LOAD_NOTE_RELOADED;
        else if (moved != HR_OK)
            ev->load_note = moved == HR_ERR_NOMEM ? HEARTH_LOAD_NOTE_CPU_FOR_MEMORY
                                                  : HEARTH_LOAD_NOTE_CPU_FOR_DEVICE_ERROR;
        if (hr_model_notice(s->model))
            g_info("%s: %s", r->dir, hr_model_notice(s->model));
    }
    post(s, ev);
}

static void
worker_load(Shared *s, const Request *r)
{
    Event *ev = g_new0(Event, 1);
    ev->type = EV_LOADED;
    ev->id = s->loading_id = r->id;
    HrError err = { 0 };
    HrTokenizer *tok = NULL;
    /* A folder that fails the checks costs nothing: the model already loaded
     * (if any) stays loaded. */
    if (precheck_model(r->dir, &tok, &err) != HR_OK) {
        ev->ok = FALSE;
        ev->kept_previous = s->model != NULL;
        ev->context_length = s->model ? hr_model_context_len(s->model) : 0;
        ev->error = friendly_load_error(r->dir, &err);
        post(s, ev);
        return;
    }
    /* Free the old model first so two never share memory. */
    g_clear_pointer(&s->model, hr_model_free);
    g_clear_pointer(&s->tok, hr_tokenizer_free);
    g_hash_table_remove_all(s->msg_tokens);
    s->tok = tok;
    post_loaded(s, ev, r, load_weights(s, r, false, &err), &err, false);
}

/* The device stopped working while the model ran on it (HR_ERR_DEVICE: lost, a driver reset, a kernel
 * fault): its contexts are gone, so the model is loaded again from the same folder with the same options
 * (a new device), and where the device fails again on the CPU (cpu_fallback); the tokenizer stays. Ends
 * in EV_LOADED like any load: the window says where the model runs now, or why there is none.
 * (EV_RELOADING went before the failed reply's EV_FINISHED: the engine is never READY in between.) */
static void
reload_after_device_error(Shared *s, const char *device_error)
{
    g_clear_pointer(&s->model, hr_model_free);
    const Request *r = s->loaded_with;
    Event *ev = g_new0(Event, 1);
    ev->type = EV_LOADED;
    ev->id = s->loading_id = r->id;   /* the model's own load, unless another has been asked for since */
    HrError err = { 0 };
    g_message("%s: the device failed while running (%s): loading the model again", r->dir, device_error);
    post_loaded(s, ev, r, load_weights(s, r, true, &err), &err, true);
}

typedef struct {
    Shared *s;
    guint id;
} DeltaCtx;

static bool
on_text(const char *text, size_t len, int32_t token, void *user)
{
    DeltaCtx *d = user;
    Shared *s = d->s;
    g_mutex_lock(&s->delta_lock);
    g_string_append_len(s->delta, text, (gssize)len);
    s->delta_id = d->id;
    gboolean schedule = !s->delta_scheduled;
    s->delta_scheduled = TRUE;
    gint64 since = (g_get_monotonic_time() - s->delta_last) / 1000;
    g_mutex_unlock(&s->delta_lock);
    /* Text is delivered at most every DELTA_MS: what arrives in between
     * joins the pending delivery. Re-rendering a growing reply for every
     * token costs the main thread a share of a core that, on a small
     * machine, the engine's threads need (about 20 % of the decode speed
     * on two cores at one delivery per token). */
    if (schedule) {
        GSource *src = g_timeout_source_new(since >= DELTA_MS ? 0 : (guint)(DELTA_MS - since));
        g_source_set_priority(src, G_PRIORITY_DEFAULT_IDLE);
        g_source_set_callback(src, delta_dispatch, shared_ref(s), (GDestroyNotify)shared_unref);
        g_source_attach(src, s->main_context);
        g_source_unref(src);
    }
    return true;
}

/* Tokens of one message's text (cached per role and content, so a long
 * history is tokenized once, not on every reply). */
static int
message_tokens(Shared *s, JsonObject *m)
{
    const char *role = hr_json_string_or(m, "role", "");
    const char *content = hr_json_string_or(m, "content", "");
    g_autofree char *key = g_strdup_printf("%s\x1f%s", role, content);
    gpointer v = g_hash_table_lookup(s->msg_tokens, key);
    if (v)
        return GPOINTER_TO_INT(v) - 1;
    int32_t *ids = NULL;
    size_t n = 0;
    int count = (int)MIN(strlen(content) / 2 + 1, (size_t)G_MAXINT / 2); /* a bound if encoding fails */
    if (hr_tokenizer_encode(s->tok, content, strlen(content), false, false, &ids, &n, NULL) == HR_OK)
        count = (int)MIN(n, (size_t)G_MAXINT / 2);
    g_free(ids);
    if (g_hash_table_size(s->msg_tokens) >= 16384)
        g_hash_table_remove_all(s->msg_tokens);
    g_hash_table_insert(s->msg_tokens, g_steal_pointer(&key), GINT_TO_POINTER(count + 1));
    return count;
}

/* The conversation without the first `skip` droppable messages (not system
 * messages, not the last one); *skipped: how many were left out. */
static JsonNode *
messages_without(JsonArray *all, guint skip, guint *skipped)
{
    guint n = json_array_get_length(all);
    JsonArray *kept = json_array_new();
    *skipped = 0;
    for (guint i = 0; i < n; i++) {
        JsonNode *m = json_array_get_element(all, i);
        const char *role = hr_json_string_or(JSON_NODE_HOLDS_OBJECT(m) ? json_node_get_object(m) : NULL, "role", "");
        if (strcmp(role, "system") != 0 && i + 1 < n && *skipped < skip) {
            (*skipped)++;
            continue;
        }
        json_array_add_element(kept, json_node_copy(m));
    }
    JsonNode *node = json_node_new(JSON_NODE_ARRAY);
    json_node_take_array(node, kept);
    return node;
}

/* Render the conversation, dropping the oldest non-system messages until the
 * prompt leaves room for the reply. The whole conversation is rendered once;
 * when it does not fit, the number of messages to drop is worked out from
 * per-message token counts (cached) plus the template's average overhead per
 * message, then checked by rendering; a few renders at most, not one per
 * dropped message. */
static HrStatus
build_prompt(Shared *s, JsonNode *messages, int reserve, gboolean no_thinking, int32_t **ids, size_t *n_ids,
             int *dropped, HrError *err)
{
    g_autoptr(JsonObject) extra = NULL;
    if (no_thinking) {
        extra = json_object_new();
        json_object_set_boolean_member(extra, "enable_thinking", FALSE);
    }
    JsonArray *all = json_node_get_array(messages);
    guint n = json_array_get_length(all);
    int ctx = hr_model_context_len(s->model);
    int budget = ctx - reserve;
    *dropped = 0;
    /* droppable messages, oldest first, with their estimated token cost */
    g_autoptr(GArray) cost = g_array_new(FALSE, FALSE, sizeof(int64_t));
    int64_t content_total = 0;
    guint skip = 0;
    for (int round = 0;; round++) {
        if (atomic_load(&s->cancel))
            return hr_error_set(err, HR_ERR_CANCELLED, "cancelled");
        guint skipped = 0;
        JsonNode *node = messages_without(all, skip, &skipped);
        HrStatus st = hr_chat_render_extra(s->tok, node, true, extra, &s->cancel, NULL, ids, n_ids, NULL, NULL, err);
        json_node_unref(node);
        if (st != HR_OK)
            return st;
        if ((int64_t)*n_ids <= budget || skipped < skip) {
            /* Fits, or nothing more can be dropped. */
            if ((int64_t)*n_ids >= ctx) {
                g_free(*ids);
                *ids = NULL;
                return hr_error_set(err, HR_ERR_INVALID_ARG,
                                    _("The message is too long for this model’s context of %d tokens."), ctx);
            }
            *dropped = (int)skipped;
            return HR_OK;
        }
        int64_t excess = (int64_t)*n_ids - budget;
        g_free(*ids);
        *ids = NULL;
        if (round == 0) {
            for (guint i = 0; i < n; i++) {
                JsonNode *m = json_array_get_element(all, i);
                JsonObject *o = JSON_NODE_HOLDS_OBJECT(m) ? json_node_get_object(m) : NULL;
                int t = o ? message_tokens(s, o) : 0;
                content_total += t;
                if (i + 1 < n && strcmp(hr_json_string_or(o, "role", ""), "system") != 0)
                    g_array_append_val(cost, (int64_t){ t });
            }
            /* the template's own tokens, spread evenly over the messages */
            int64_t overhead = MAX((int64_t)*n_ids - content_total, 0) / MAX(n, 1);
            for (guint i = 0; i < cost->len; i++)
                g_array_index(cost, int64_t, i) += overhead;
        }
        /* drop as many more as the estimate says cover the excess, at least one */
        guint next = skip;
        for (int64_t freed = 0; next < cost->len && freed < excess; next++)
            freed += g_array_index(cost, int64_t, next);
        skip = MAX(next, skip + 1);
    }
}

static void
worker_generate(Shared *s, const Request *r)
{
    Event *fin = g_new0(Event, 1);
    fin->type = EV_FINISHED;
    fin->id = r->id;
    if (!s->model) {
        fin->stop_reason = g_strdup("error");
        fin->error = g_strdup(_("No model is loaded."));
        post(s, fin);
        return;
    }
    Event *gen = g_new0(Event, 1);
    gen->type = EV_GENERATING;
    post(s, gen);

    HrError err = { 0 };
    int32_t *ids = NULL;
    size_t n_ids = 0;
    int dropped = 0;
    int reserve = MIN(r->params.max_new_tokens, hr_model_context_len(s->model) / 4);
    HrStatus pst = build_prompt(s, r->messages, reserve, r->params.no_thinking, &ids, &n_ids, &dropped, &err);
    if (pst == HR_ERR_CANCELLED) {
        fin->stop_reason = g_strdup("cancelled");
        post(s, fin);
        return;
    }
    if (pst != HR_OK) {
        fin->stop_reason = g_strdup("error");
        fin->error = g_strdup(err.message);
        post(s, fin);
        return;
    }
    if (dropped > 0) {
        Event *tr = g_new0(Event, 1);
        tr->type = EV_TRIMMED;
        tr->id = r->id;
        tr->dropped = dropped;
        post(s, tr);
    }
    HrSamplerParams sp;
    hr_sampler_params_init(&sp);
    sp.temperature = (float)r->params.temperature;
    sp.top_p = (float)r->params.top_p;
    sp.top_k = r->params.top_k;
    sp.min_p = (float)r->params.min_p;
    sp.repetition_penalty = (float)r->params.repetition_penalty;
    sp.seed = r->params.seed ? r->params.seed : (guint64)g_get_real_time();
    HrSampler *sampler = hr_sampler_new(&sp, hr_model_config(s->model)->vocab_size);
    HrGenerateOptions gopt;
    hr_generate_options_init(&gopt);
    gopt.max_new_tokens = r->params.max_new_tokens;
    gopt.cancel = &s->cancel;
    /* a reasoning model's thinking does not use up the reply's length (only the context bounds it); its
     * template may open the block itself (DeepSeek-R1's prompt ends in "<think>\n") */
    gopt.think_free = TRUE;
    hr_generate_add_tokenizer_eos(&gopt, s->model, s->tok);
    DeltaCtx dctx = { s, r->id };
    HrGenerateStats stats;
    HrStatus st = hr_generate(s->model, s->tok, sampler, ids, (int)n_ids, &gopt, on_text, &dctx, &stats, &err);
    hr_sampler_free(sampler);
    g_free(ids);

    fin->stats.prompt_tokens = stats.prompt_tokens;
    fin->stats.prefilled_tokens = stats.prefilled_tokens;
    fin->stats.generated_tokens = stats.generated_tokens;
    fin->stats.tokens_per_second = stats.decode_s > 0 ? stats.generated_tokens / stats.decode_s : 0.0;
    fin->stats.time_to_first_token_s = stats.ttft_s;
    fin->context_used = hr_model_n_cached(s->model);
    const gboolean device_failed = st == HR_ERR_DEVICE && s->loaded_with &&
                                   hr_model_backend(s->model) != &hr_cpu_backend;
    if (device_failed) {
        fin->stop_reason = g_strdup("error");
        fin->error = g_strdup_printf(_("The reply failed: the graphics card stopped working (%s)."), err.message);
    } else if (st != HR_OK) {
        fin->stop_reason = g_strdup("error");
        fin->error = g_strdup_printf(_("The reply failed: %s"), err.message);
    } else {
        fin->stop_reason = g_strdup(hr_stop_reason_name(stats.reason));
    }
    if (device_failed) {
        Event *busy = g_new0(Event, 1);
        busy->type = EV_RELOADING;
        busy->id = s->loaded_with->id;
        post(s, busy);
    }
    post(s, fin);
    if (device_failed)
        reload_after_device_error(s, err.message);
}

static gpointer
worker_main(gpointer data)
{
    Shared *s = data;
    for (;;) {
        Request *r = g_async_queue_pop(s->queue);
        RequestType type = r->type;
        switch (type) {
        case REQ_LOAD:
            atomic_store(&s->cancel, 0);
            worker_load(s, r);
            break;
        case REQ_UNLOAD:
            g_clear_pointer(&s->model, hr_model_free);
            g_clear_pointer(&s->tok, hr_tokenizer_free);
            break;
        case REQ_GENERATE:
            /* Clear the flag, then re-check: a cancel() racing with this
             * stores cancel_upto before setting the flag, so one of the two
             * orders always leaves the flag set for a cancelled request. */
            atomic_store(&s->cancel, 0);
            if (atomic_load(&s->cancel_upto) >= r->id)
                atomic_store(&s->cancel, 1);
            worker_generate(s, r);
            break;
        case REQ_QUIT:
            break;
        }
        request_free(r);
        if (type == REQ_QUIT)
            break;
    }
    shared_unref(s);
    return NULL;
}

/* ---- GObject ------------------------------------------------------------- */

static void
push(HearthEngine *self, Request *r)
{
    g_async_queue_push(self->shared->queue, r);
}

static void
hearth_engine_dispose(GObject *object)
{
    HearthEngine *self = HEARTH_ENGINE(object);
    if (self->thread) {
        atomic_store(&self->shared->cancel, 1);
        Request *r = g_new0(Request, 1);
        r->type = REQ_QUIT;
        /* Jump the queue: nothing queued matters once we are going away. */
        g_async_queue_push_front(self->shared->queue, r);
        g_thread_join(self->thread);
        self->thread = NULL;
    }
    G_OBJECT_CLASS(hearth_engine_parent_class)->dispose(object);
}

static void
hearth_engine_finalize(GObject *object)
{
    HearthEngine *self = HEARTH_ENGINE(object);
    g_weak_ref_set(&self->shared->owner, NULL);
    shared_unref(self->shared);
    g_free(self->model_dir);
    g_free(self->model_name);
    g_free(self->prev_model_dir);
    g_free(self->prev_model_name);
    g_free(self->load_backend);
    G_OBJECT_CLASS(hearth_engine_parent_class)->finalize(object);
}

static void
hearth_engine_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
    HearthEngine *self = HEARTH_ENGINE(object);
    switch (prop_id) {
    case PROP_STATE:
        g_value_set_int(value, self->state);
        break;
    case PROP_MODEL_NAME:
        g_value_set_string(value, self->model_name);
        break;
    case PROP_CONTEXT_USED:
        g_value_set_int(value, self->context_used);
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
    }
}

static void
hearth_engine_class_init(HearthEngineClass *klass)
{
    GObjectClass *object_class = G_OBJECT_CLASS(klass);
    object_class->dispose = hearth_engine_dispose;
    object_class->finalize = hearth_engine_finalize;
    object_class->get_property = hearth_engine_get_property;

    props[PROP_STATE] = g_param_spec_int("state", NULL, NULL, HEARTH_ENGINE_EMPTY, HEARTH_ENGINE_GENERATING,
                                         HEARTH_ENGINE_EMPTY, G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY |
                                         G_PARAM_STATIC_STRINGS);
    props[PROP_MODEL_NAME] = g_param_spec_string("model-name", NULL, NULL, NULL,
                                                 G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
    props[PROP_CONTEXT_USED] = g_param_spec_int("context-used", NULL, NULL, 0, G_MAXINT, 0,
                                                G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
    g_object_class_install_properties(object_class, N_PROPS, props);

    /* (fraction, tensors done, tensors in all) */
    signals[SIG_LOAD_PROGRESS] = g_signal_new("load-progress", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0,
                                              NULL, NULL, NULL, G_TYPE_NONE, 3, G_TYPE_DOUBLE, G_TYPE_INT, G_TYPE_INT);
    signals[SIG_LOAD_FINISHED] = g_signal_new("load-finished", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0,
                                              NULL, NULL, NULL, G_TYPE_NONE, 2, G_TYPE_BOOLEAN, G_TYPE_STRING);
    signals[SIG_REPLY_DELTA] = g_signal_new("reply-delta", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0,
                                            NULL, NULL, NULL, G_TYPE_NONE, 2, G_TYPE_UINT, G_TYPE_STRING);
    signals[SIG_CONTEXT_TRIMMED] = g_signal_new("context-trimmed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST,
                                                0, NULL, NULL, NULL, G_TYPE_NONE, 2, G_TYPE_UINT, G_TYPE_INT);
    signals[SIG_REPLY_FINISHED] = g_signal_new("reply-finished", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0,
                                               NULL, NULL, NULL, G_TYPE_NONE, 2, G_TYPE_UINT, G_TYPE_POINTER);
}

static void
hearth_engine_init(HearthEngine *self)
{
    Shared *s = g_new0(Shared, 1);
    g_atomic_ref_count_init(&s->ref);
    s->queue = g_async_queue_new();
    s->main_context = g_main_context_ref_thread_default();
    g_weak_ref_init(&s->owner, self);
    g_mutex_init(&s->delta_lock);
    s->delta = g_string_new(NULL);
    s->msg_tokens = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    self->shared = s;
    self->next_id = 1;
    for (int i = 0; i < 5; i++)
        self->rec[i] = -1.0f;
    self->thread = g_thread_new("hearth-engine", worker_main, shared_ref(s));
}

HearthEngine *
hearth_engine_new(void)
{
    return g_object_new(HEARTH_TYPE_ENGINE, NULL);
}

HearthEngineState
hearth_engine_get_state(HearthEngine *self)
{
    return self->state;
}

const char *
hearth_engine_get_model_name(HearthEngine *self)
{
    return self->model_name;
}

const char *
hearth_engine_get_model_dir(HearthEngine *self)
{
    return self->model_dir;
}

HearthLoadNote
hearth_engine_get_load_note(HearthEngine *self)
{
    return self->load_note;
}

guint64
hearth_engine_get_n_params(HearthEngine *self)
{
    return self->n_params;
}

gboolean
hearth_engine_get_recommended(HearthEngine *self, HearthGenParams *p)
{
    gboolean any = FALSE;
    if (self->rec[0] >= 0)
        p->temperature = self->rec[0], any = TRUE;
    if (self->rec[1] >= 0)
        p->top_p = self->rec[1], any = TRUE;
    if (self->rec[2] >= 0)
        p->min_p = self->rec[2], any = TRUE;
    if (self->rec[3] >= 0)
        p->repetition_penalty = self->rec[3], any = TRUE;
    if (self->rec[4] >= 0)
        p->top_k = (int)self->rec[4], any = TRUE;
    return any;
}

int
hearth_engine_get_context_length(HearthEngine *self)
{
    return self->context_length;
}

int
hearth_engine_get_context_used(HearthEngine *self)
{
    return self->context_used;
}

void
hearth_engine_load(HearthEngine *self, const char *dir)
{
    hearth_engine_cancel(self);
    if (self->state == HEARTH_ENGINE_READY || self->state == HEARTH_ENGINE_GENERATING) {
        g_free(self->prev_model_dir);
        g_free(self->prev_model_name);
        self->prev_model_dir = g_steal_pointer(&self->model_dir);
        self->prev_model_name = g_steal_pointer(&self->model_name);
    }
    g_free(self->model_dir);
    g_free(self->model_name);
    self->model_dir = g_strdup(dir);
    self->model_name = g_path_get_basename(dir);
    g_object_notify_by_pspec(G_OBJECT(self), props[PROP_MODEL_NAME]);
    set_state(self, HEARTH_ENGINE_LOADING);
    Request *r = g_new0(Request, 1);
    r->type = REQ_LOAD;
    r->id = self->load_id = self->next_id++;
    r->dir = g_strdup(dir);
    r->backend = g_strdup(self->load_backend);
    r->context_len = self->load_context_len;
    r->n_threads = self->load_threads;
    push(self, r);
}

void
hearth_engine_set_load_options(HearthEngine *self, const char *backend, int context_length, int cpu_threads)
{
    self->load_threads = MAX(cpu_threads, 0);
    g_free(self->load_backend);
    self->load_backend = g_strdup(backend && *backend ? backend : NULL);
    self->load_context_len = MAX(context_length, 0);
}

void
hearth_engine_unload(HearthEngine *self)
{
    hearth_engine_cancel(self);
    g_clear_pointer(&self->model_dir, g_free);
    g_clear_pointer(&self->model_name, g_free);
    g_object_notify_by_pspec(G_OBJECT(self), props[PROP_MODEL_NAME]);
    set_state(self, HEARTH_ENGINE_EMPTY);
    self->load_id = self->next_id++;   /* a load still running: its events are stale */
    Request *r = g_new0(Request, 1);
    r->type = REQ_UNLOAD;
    push(self, r);
}

guint
hearth_engine_generate(HearthEngine *self, JsonNode *messages, const HearthGenParams *params)
{
    Request *r = g_new0(Request, 1);
    r->type = REQ_GENERATE;
    r->id = self->next_id++;
    r->messages = json_node_ref(messages);
    if (params)
        r->params = *params;
    else
        hearth_gen_params_init(&r->params);
    guint id = r->id; /* the worker may take and free r as soon as it is pushed */
    push(self, r);
    return id;
}

void
hearth_engine_cancel(HearthEngine *self)
{
    /* Every reply asked for so far is cancelled: the running one stops at
     * its next token, queued ones finish at once as "cancelled" (each still
     * gets its reply-finished). */
    atomic_store(&self->shared->cancel_upto, self->next_id - 1);
    atomic_store(&self->shared->cancel, 1);
}
