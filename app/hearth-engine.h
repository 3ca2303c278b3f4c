/* hearth-engine.h — the app's engine worker.
 *
 * One worker thread owns the model, its tokenizer and the KV cache. The main
 * thread sends requests (load, generate, unload) through a queue; cancel is
 * a flag the worker checks before every token. Everything the worker
 * reports comes back as GObject signals on the main context: load progress,
 * reply text coalesced per main-loop iteration, and the end of each reply.
 * The GTK main loop never runs model code.
 */
#pragma once

#include <glib-object.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

typedef enum {
    HEARTH_ENGINE_EMPTY,       /* no model */
    HEARTH_ENGINE_LOADING,
    HEARTH_ENGINE_READY,
    HEARTH_ENGINE_GENERATING,
} HearthEngineState;

typedef struct {
    double temperature;        /* 0 = greedy */
    double top_p;
    int top_k;
    double min_p;
    double repetition_penalty;
    int max_new_tokens;
    guint64 seed;
    gboolean no_thinking;      /* a reasoning model that can answer without thinking first does so (its
                                  template's enable_thinking = false: Qwen3) */
} HearthGenParams;

void hearth_gen_params_init(HearthGenParams *p);

#define HEARTH_TYPE_ENGINE (hearth_engine_get_type())
G_DECLARE_FINAL_TYPE(HearthEngine, hearth_engine, HEARTH, ENGINE, GObject)

HearthEngine *hearth_engine_new(void);

HearthEngineState hearth_engine_get_state(HearthEngine *self);
/* The loaded (or loading) model's folder name, or NULL. */
const char *hearth_engine_get_model_name(HearthEngine *self);
const char *hearth_engine_get_model_dir(HearthEngine *self);
int hearth_engine_get_context_length(HearthEngine *self);
/* The loaded model's parameter count, from its shape (0 when none is loaded). */
guint64 hearth_engine_get_n_params(HearthEngine *self);
/* The sampling the loaded model's makers recommend (its generation_config.json: temperature, top-p, top-k,
 * min-p, repetition penalty) written over p where given; TRUE when any was. */
gboolean hearth_engine_get_recommended(HearthEngine *self, HearthGenParams *p);
typedef enum {
    HEARTH_LOAD_NOTE_NONE,
    /* runs on the CPU although the backend is "auto" and a GPU was chosen: that GPU has too little memory
     * for it (hr_model_notice) */
    HEARTH_LOAD_NOTE_CPU_FOR_MEMORY,
    /* ... and its device failed while loading it (lost, a driver error) */
    HEARTH_LOAD_NOTE_CPU_FOR_DEVICE_ERROR,
    /* loaded again by the engine itself: the device stopped working during a reply (the reply failed) */
    HEARTH_LOAD_NOTE_RELOADED,
    /* ... and on the CPU: loading it on the device again failed */
    HEARTH_LOAD_NOTE_CPU_AFTER_DEVICE_ERROR,
} HearthLoadNote;

/* What the window should say about the last successful load, beyond that it loaded. */
HearthLoadNote hearth_engine_get_load_note(HearthEngine *self);
/* Tokens the last reply's conversation used (prompt + reply). */
int hearth_engine_get_context_used(HearthEngine *self);

/* Load a model folder. Its config, tokenizer, safetensors headers and chat
 * template are checked first; when they fail, the previous model (if any)
 * stays loaded, with its name and KV cache. Otherwise the previous model is
 * freed before the weights load. Emits "load-progress" (double) and then
 * "load-finished" (gboolean ok, string error). A load or unload asked for
 * while one runs cancels it: the earlier load then emits nothing more. */
void hearth_engine_load(HearthEngine *self, const char *dir);
/* (The engine also loads the model again by itself when the device fails during a reply: that reply
 * finishes with an error, the state goes to HEARTH_ENGINE_LOADING, and "load-progress" and
 * "load-finished" follow as for hearth_engine_load, with a load note.) */
void hearth_engine_unload(HearthEngine *self);
/* Options for the next loads: backend "auto" (or NULL), "vulkan", "cuda" or
 * "cpu", the context length (0: the model's own, up to 4096) and the CPU
 * backend's threads (0: automatic). */
void hearth_engine_set_load_options(HearthEngine *self, const char *backend, int context_length, int cpu_threads);

/* Generate the assistant's reply to messages (a JSON array of {role, content};
 * the engine takes a reference). Returns the request id carried by the
 * "reply-delta" (guint id, string text), "context-trimmed" (guint id, int
 * dropped_messages) and "reply-finished" (guint id, HearthReplyStats*) signals. */
guint hearth_engine_generate(HearthEngine *self, JsonNode *messages, const HearthGenParams *params);

/* Stop the current reply within one token (and drop queued replies). */
void hearth_engine_cancel(HearthEngine *self);

typedef struct {
    int prompt_tokens;
    int prefilled_tokens;
    int generated_tokens;
    double tokens_per_second;
    double time_to_first_token_s;
    const char *stop_reason;   /* "eos", "length", "cancelled", "context full", "error" */
    const char *error;         /* user-facing message when stop_reason is "error" */
} HearthReplyStats;

G_END_DECLS
