/* backend.h — the one interface every compute backend implements.
 *
 * A backend owns a whole model on its device: the weights (repacked into
 * whatever layout its kernels read fastest), the KV cache and the scratch
 * activations. The engine talks to it only through this versioned table of
 * function pointers plus an opaque context pointer (as ggml's backends do),
 * so nothing above it assumes host memory.
 *
 * Position model: forward() writes the KV entries for positions
 * pos .. pos+n_tokens-1 and attends over 0 .. pos+n_tokens-1. The caller
 * owns "how many positions are valid"; to rewind (regenerate, edit) it simply
 * calls forward() with a smaller pos, which overwrites the cache there.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hr-status.h"
#include "sampler.h"
#include "model-config.h"
#include "safetensors.h"

#define HR_BACKEND_API_VERSION 5

typedef enum {
    HR_KV_F16,   /* default: half the memory, what the GPU backends use */
    HR_KV_F32,   /* reference mode: bit-faithful to an FP32 forward */
} HrKvType;

typedef struct {
    int context_len;     /* KV cache capacity in positions (<= config max_pos) */
    HrKvType kv_type;
    int n_threads;       /* CPU backend: 0 = one per core */
} HrBackendOptions;

typedef struct {
    size_t weight_bytes;     /* resident weights (mapped files count when used in place) */
    size_t kv_bytes;
    size_t scratch_bytes;
    const char *location;    /* "host", "device" */
    /* Weight bytes one decode step reads (every layer, the final norm, the
     * lm_head as the step reads it; not the embedding table, of which it
     * gathers one row); 0 when the backend does not say. */
    size_t decode_weight_bytes;
    /* Where create() spent its time: paging the checkpoint in (reading it
     * from disk when it is not in the page cache), converting/repacking
     * the weights, copying them to the device. All 0 when the backend does
     * not say; a backend that overlaps them counts each step's own time, and
     * one that does not page the file in apart counts the reading in
     * convert (Vulkan). */
    double load_read_s, load_convert_s, load_upload_s;
} HrMemoryReport;

/* progress in [0, 1]; return false to cancel loading. */
typedef bool (*HrProgressFunc)(double progress, const char *what, void *user);

typedef struct {
    uint32_t api_version;    /* HR_BACKEND_API_VERSION */
    const char *name;        /* "cpu", "vulkan", "cuda" */

    /* Create a backend context holding the model described by cfg, taking
     * its tensors from weights (which outlives the context). */
    HrStatus (*create)(const HrModelConfig *cfg, const HrTensorSet *weights,
                       const HrBackendOptions *opt, HrProgressFunc progress, void *user,
                       void **ctx_out, HrError *err);
    void (*destroy)(void *ctx);

    /* Run n_tokens through the model starting at position pos. When
     * all_logits is true, logits for every token are kept (perplexity,
     * tests); otherwise only the last token's. */
    HrStatus (*forward)(void *ctx, const int32_t *tokens, int n_tokens, int pos,
                        bool all_logits, HrError *err);

    /* Copy the logits of token `row` of the last forward() (row -1 = last)
     * into out[vocab_size]. */
    HrStatus (*get_logits)(void *ctx, int row, float *out, HrError *err);

    void (*memory)(void *ctx, HrMemoryReport *out);

    /* Optional (NULL when the backend has none): dense FP32 products on
     * host memory, for work that is not a model forward — the quantizer's
     * AWQ search runs its matmuls (linears and attention) through these, so
     * a GPU backend speeds it up without the quantizer knowing the device.
     * gemm: out[T, N] = x[T, K] . W[N, K]^T (+ bias[N] when not NULL);
     * every pointer is host memory the caller owns. */
    HrStatus (*gemm_open)(int n_threads, void **dev_out, HrError *err);
    void (*gemm_close)(void *dev);
    HrStatus (*gemm)(void *dev, float *out, const float *w, int N, int K, const float *bias, const float *x, int T,
                     HrError *err);

    /* Optional: measure the device's memory read bandwidth (bytes/s) the
     * way the decode kernels read weights, for the bench's roofline. */
    HrStatus (*read_bandwidth)(void *ctx, double *bytes_per_s, HrError *err);

    /* Optional (NULL: the host always draws from the whole row of logits):
     * the next forward() of one token also does spec's vocabulary-wide part
     * of a draw on the device (sampler.h: the repetition penalty in place,
     * the best HR_CANDIDATES_MAX logits, the softmax's denominator), and its
     * logits stay on the device until get_logits asks for them. spec (and
     * its seen ids) must stay valid until that forward returns; NULL = none.
     * One forward uses it, then it is cleared. */
    void (*set_sample)(void *ctx, const HrSampleSpec *spec);
    /* The candidates of the last forward(), when it ran with a spec; else
     * HR_ERR_UNSUPPORTED. get_logits after such a forward returns the logits
     * with the penalty applied. */
    HrStatus (*candidates)(void *ctx, HrCandidates *out, HrError *err);

    /* Optional: whether create() reads GGUF block tensors of this type (a
     * GGUF type number); NULL: none. The CPU backend reads every type the
     * loader takes and leaves it NULL. */
    bool (*takes_ggml)(uint32_t ggml_type);

    /* Optional: the backend's op table (ops.h), for the quantizer's block
     * forward on the device (quantize/awq-device.c); NULL: none. */
    const struct HrOps *ops;

    /* Optional: how many positions a forward may start before the last
     * position run + 1 (a rewind: a new turn that shares only part of what
     * the cache holds) and still find every cached position it needs; past
     * that the cache must be refilled from position 0 (a sliding-window
     * layer's ring keeps its window and a margin, not the whole context).
     * NULL: any. */
    int (*kv_rewind)(void *ctx);
} HrBackendOps;

/* The CPU backend: the reference every other backend is tested against. */
extern const HrBackendOps hr_cpu_backend;

/* Look a backend up by name ("cpu", "vulkan", "cuda"; NULL = "cpu");
 * NULL when not built in. "auto" picks CUDA when built and a device
 * answers, else Vulkan on a real GPU, else the CPU (probed once). */
const HrBackendOps *hr_backend_find(const char *name);
/* From now on hr_backend_find(ops->name) answers ops instead of the built-in
 * backend of that name (a test puts the CUDA backend compiled for the host
 * emulator in the place of "cuda": test-cuda-emu-sample). Not thread-safe:
 * call it before any lookup. */
void hr_backend_register(const HrBackendOps *ops);
/* get_logits' row argument: a negative row means the last of n_rows; any
 * other row outside [0, n_rows) is HR_ERR_INVALID_ARG. *row is resolved. */
HrStatus hr_backend_logits_row(int *row, int n_rows, HrError *err);

/* The arguments of forward() every backend checks the same way: at least
 * one token, positions inside [0, context_len), ids inside the vocabulary.
 * HR_ERR_INVALID_ARG with the offending value otherwise. */
HrStatus hr_backend_check_forward(const HrModelConfig *cfg, int context_len, const int32_t *tokens, int n_tokens,
                                  int pos, HrError *err);

/* Why "auto" picked what it picked (one line, for logs and `devices`). */
const char *hr_backend_auto_reason(void);
