/* llama.h — the Llama family (Llama 2/3, Mistral, Qwen2, SmolLM2), written
 * once over the op-level interface (ops.h): the weights it takes, the nodes
 * of a step, prompts in chunks and the logits rows that come back.
 *
 * A backend that implements HrOps gets the whole-model interface of
 * backend.h from these functions: its create() calls hr_llama_create() with
 * its op table, and destroy/forward/get_logits/memory are these.
 */
#pragma once

#include "backend.h"
#include "ops.h"

HrStatus hr_llama_create(const HrOps *ops, const HrModelConfig *cfg, const HrTensorSet *ts,
                         const HrBackendOptions *opt, HrProgressFunc progress, void *user, void **ctx_out,
                         HrError *err);
void hr_llama_destroy(void *ctx);
HrStatus hr_llama_forward(void *ctx, const int32_t *tokens, int n_tokens, int pos, bool all_logits, HrError *err);
HrStatus hr_llama_get_logits(void *ctx, int row, float *out, HrError *err);
void hr_llama_memory(void *ctx, HrMemoryReport *out);
/* HrBackendOps.kv_rewind: how far back a forward may start (the sliding-window layers' rings). */
int hr_llama_kv_rewind(void *ctx);
/* The entries of layer `layer`'s K and V caches on a backend with kv_ring: the context, or for a
 * sliding-window layer a ring of its window, one step of max_tokens and 1024 positions a new turn may
 * rewind (HEARTH_KV_RING=N: N entries, at least the window + 1; 0: no rings), when that is shorter. */
int hr_llama_kv_entries(const HrModelConfig *cfg, int layer, int context, int max_tokens);
/* The FP16 K and V caches of every layer at those entries, in bytes. */
uint64_t hr_llama_kv_bytes(const HrModelConfig *cfg, int context, int max_tokens);
/* What the embeddings are multiplied by (cfg->embed_scale, Gemma's sqrt(hidden_size)) for the
 * weights in ts: transformers rounds it to a BF16 or FP16 checkpoint's embedding dtype; a GGUF (norms
 * holding 1 + w already) keeps the exact one; 1 without a scale. */
float hr_llama_embed_scale(const HrModelConfig *cfg, const HrTensorSet *ts);
/* The CPU backend's tokens per step (its prefill chunk). */
#define HR_LLAMA_CPU_STEP 256
/* backend.h's set_sample and candidates, for ops backends that have
 * candidates and read_logits (others: set_sample does nothing). */
void hr_llama_set_sample(void *ctx, const HrSampleSpec *spec);
HrStatus hr_llama_candidates(void *ctx, HrCandidates *out, HrError *err);

/* The backend's device of a context hr_llama_create() made (for a
 * backend's own extras: bandwidth, tests' hooks). */
void *hr_llama_device(void *ctx);
/* The device's greedy token of the last one-token step, or -1. */
int hr_llama_last_argmax(void *ctx);
