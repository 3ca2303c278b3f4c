/* model.h — a loaded model: config + mmap'd weights + a backend holding it,
 * and the token sequence its KV cache currently holds. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "backend.h"
#include "model-config.h"

/* Loading progress: fraction in [0, 1], and how many of the checkpoint's
 * total tensors are done (the backends report per layer or per upload;
 * done counts that share of the tensors). Return false to cancel. */
typedef bool (*HrLoadProgressFunc)(double fraction, int done, int total, void *user);

typedef struct {
    const char *backend;        /* "cpu" (default), later "vulkan", "cuda", "auto" */
    int context_len;            /* 0: min(max_position_embeddings, 4096) */
    HrKvType kv_type;           /* default HR_KV_F16 */
    int n_threads;              /* 0: one per physical core, adaptive (cpu-threads.h) */
    bool cpu_fallback;          /* a GPU backend named here that has too little memory for the model or whose
                                 * device fails while loading it: the CPU instead, with a notice (what "auto"
                                 * always does; a reload after a device error asks for it) */
    HrLoadProgressFunc progress;
    void *progress_user;
} HrModelOptions;

typedef struct HrModel HrModel;

void hr_model_options_init(HrModelOptions *opt);

HrStatus hr_model_load(const char *dir, const HrModelOptions *opt, HrModel **out, HrError *err);
void hr_model_free(HrModel *m);

const HrModelConfig *hr_model_config(const HrModel *m);
const HrBackendOps *hr_model_backend(const HrModel *m);
/* Why the model runs where it does when that is not where it was asked to
 * ("auto" on a GPU without the memory for it, or whose device failed while
 * loading it: the CPU), or NULL. */
const char *hr_model_notice(const HrModel *m);
/* Why "auto" (or cpu_fallback) moved it to the CPU: HR_ERR_NOMEM (the GPU has too little memory for it), HR_ERR_DEVICE (the
 * GPU's device failed while loading it), or HR_OK (it runs where asked). */
HrStatus hr_model_moved_for(const HrModel *m);
/* The backend's context, for the optional ops that take it (bench). */
void *hr_model_backend_ctx(const HrModel *m);
int hr_model_context_len(const HrModel *m);
void hr_model_memory(const HrModel *m, HrMemoryReport *out);

/* Make the KV cache hold exactly tokens[0..n) and leave the logits of the
 * last token ready: the longest prefix already in the cache is reused, so a
 * new turn (or one more generated token) only runs the new tokens. */
HrStatus hr_model_eval(HrModel *m, const int32_t *tokens, int n, HrError *err);

/* Append tokens to the cached sequence (same as eval of cache + tokens). */
HrStatus hr_model_append(HrModel *m, const int32_t *tokens, int n, HrError *err);

/* How many leading tokens of tokens[0..n) the KV cache already holds and a
 * new evaluation can reuse: 0 where the rest would rewind further back than
 * a sliding-window layer's ring still holds (HrBackendOps.kv_rewind). */
int hr_model_common_prefix(const HrModel *m, const int32_t *tokens, int n);

/* Bytes of the FP16 KV caches of cfg's model at `context` positions on the
 * CPU or Vulkan: the sliding-window layers' as their rings (llama.c), at
 * the CPU's step (the Vulkan backend's steps give a few KiB less). */
uint64_t hr_model_config_kv_bytes(const HrModelConfig *cfg, int context);

/* Number of tokens the KV cache holds now. */
int hr_model_n_cached(const HrModel *m);

/* Logits of the last evaluated token, into out[vocab_size]. */
HrStatus hr_model_logits(HrModel *m, float *out, HrError *err);

/* Draw the next token with s from the last evaluated token's logits. When s
 * is attached and the backend draws on the device (backend.h set_sample),
 * only its candidates cross to the host; otherwise the whole row does. A
 * step that drew on the device can only be drawn from with the sampler
 * attached then (HR_ERR_INVALID_ARG otherwise). */
HrStatus hr_model_sample(HrModel *m, HrSampler *s, int32_t *out, HrError *err);

/* Attach s (NULL: detach) so that every later one-token step also does the
 * device part of s's next draw, for hr_model_sample, where the backend
 * draws on its device (Vulkan: on a discrete GPU, whose rows would cross
 * PCIe). The sampler must outlive the attachment. HEARTH_DEVICE_SAMPLING=0
 * keeps every draw on the host; =1 draws on any device that can (tests:
 * lavapipe). */
void hr_model_attach_sampler(HrModel *m, HrSampler *s);

/* Draws so far that took the device's candidates, and those that took the
 * whole row. */
void hr_model_sample_counts(const HrModel *m, uint64_t *device, uint64_t *host);

/* Run tokens[0..n) from position 0 keeping every row's logits (perplexity,
 * tests); rows are read with hr_model_logits_row. Invalidates the cache. */
HrStatus hr_model_eval_all(HrModel *m, const int32_t *tokens, int n, HrError *err);
HrStatus hr_model_logits_row(HrModel *m, int row, float *out, HrError *err);
