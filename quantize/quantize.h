/* quantize.h — the quantizer library: 4-bit group quantization (RTN, and
 * AWQ's scale/clip search in awq.c), packing into AutoAWQ's "GEMM" layout and
 * a streaming safetensors writer. Links the engine, nothing above it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hr-status.h"
#include "model-config.h"
#include "safetensors.h"

/* ---- AutoAWQ GEMM packing (awq-pack.c) ----------------------------------------
 * An int32 holds 8 4-bit values of 8 consecutive output columns; nibble i
 * (bits 4i..4i+3) holds column hr_awq_order[i] of the group of 8
 * (engine/awq-layout.h, the layout's one home). */

/* q: [rows, cols] values 0..15 (cols % 8 == 0) -> packed [rows, cols/8]. */
void hr_awq_pack(const uint8_t *q, int rows, int cols, int32_t *packed);
/* The inverse. */
void hr_awq_unpack(const int32_t *packed, int rows, int cols, uint8_t *q);

/* ---- round-to-nearest group quantization (rtn.c) ------------------------------
 * w: [N, K] (HF layout: out, in), K % g == 0. Asymmetric 4-bit per group of
 * g inputs of one output row, the range widened to include 0:
 *   scale = (max - min) / 15, rounded UP to FP16 so the range fits,
 *   zero = clamp(-round(min / scale), 0, 15),
 *   q = clamp(round(w / scale) + zero, 0, 15),
 * so (q - zero) * scale is within scale / 2 of w. Outputs in AWQ's
 * transposed layout: qT [K, N], scales FP16 [K/g, N], zeros [K/g, N]. */
void hr_rtn_quantize(const float *w, int N, int K, int g, uint8_t *qT, uint16_t *scales, uint8_t *zeros);
/* The same with 2..8 bits: 2^bits - 1 levels instead of 15. */
void hr_rtn_quantize_bits(const float *w, int N, int K, int g, int bits, uint8_t *qT, uint16_t *scales,
                          uint8_t *zeros);

/* ---- safetensors writer (writer.c) ----------------------------------------------- */
/* Most calibration tokens (samples x seqlen) the AWQ search takes: 16x the
 * default 128 x 512. */
#define HR_AWQ_MAX_TOKENS (1 << 20)

typedef struct {
    char name[192];
    HrDType dtype;
    int n_dims;                 /* 1 or 2 */
    int64_t shape[2];
} HrOutTensor;

size_t hr_out_tensor_bytes(const HrOutTensor *t);

/* Fill buf (n_bytes) with tensor index's data. */
typedef HrStatus (*HrTensorFillFunc)(void *user, size_t index, void *buf, size_t n_bytes, HrError *err);

/* Write path (through path.tmp, renamed at the end): header with
 * data_offsets in the given order, padded with spaces to 8 bytes, then the
 * data, one tensor in memory at a time. */
HrStatus hr_safetensors_write(const char *path, const HrOutTensor *tensors, size_t n, HrTensorFillFunc fill,
                              void *user, HrError *err);

/* ---- whole models (quantize.c) --------------------------------------------------- */
typedef enum {
    HR_QUANT_RTN,
    HR_QUANT_AWQ,
} HrQuantMethod;

typedef enum {
    HR_AWQ_SCALE_DUO,     /* s = xbar^a / (wbar^(1-a) + 1e-4) (AutoAWQ's default) */
    HR_AWQ_SCALE_PLAIN,   /* s = xbar^a (the paper) */
} HrAwqScaleMode;

/* Where a run is, for a progress UI (HrQuantOptions.stage). */
typedef struct {
    int layer;              /* decoder layer being worked on, -1 outside the layers */
    int n_layers;
    const char *step;       /* "calibrating", "scale search", "clip search", "writing" */
    double fraction;        /* of the whole run, 0..1 */
    double elapsed_s;
    double eta_s;           /* -1 while unknown */
} HrQuantStage;

typedef struct {
    HrQuantMethod method;
    int group_size;             /* 32, 64 or 128 (default 128) */
    int bits;                   /* 4 (default); 2..8 only with fake_quant */
    /* Fake-quant evaluation mode: instead of a packed checkpoint, write an
     * FP16 model whose quantized linears hold their dequantized values
     * (quantization error applied, AWQ scales folded and clipping applied),
     * for perplexity studies of other bit widths. The config records it in
     * "hearth_fake_quant" and has no quantization_config. */
    bool fake_quant;
    /* A linear whose input width the group size does not divide: false
     * (default) keeps it FP16 and lists it in modules_to_not_convert, which
     * AutoAWQ/transformers/vLLM honour; true quantizes it per output
     * channel (one group of K) and lists it in
     * quantization_config.hearth_per_channel: Hearth runs that, AutoAWQ's
     * single global group size cannot load it. */
    bool per_channel_fallback;
    /* method awq */
    const char *calib_path;     /* UTF-8 text, tokenized with the model's tokenizer */
    const int32_t *calib_tokens;/* or ready tokens (tests; wins over calib_path) */
    size_t n_calib_tokens;
    int samples;                /* windows (default 128); samples x seqlen <= HR_AWQ_MAX_TOKENS */
    int seqlen;                 /* tokens per window (default 512) */
    uint64_t seed;              /* window selection (default 0) */
    /* When set, the chosen windows are written there as JSON (an array of
     * `samples` arrays of `seqlen` token ids), so a reference implementation
     * can be run on exactly the same calibration tokens. */
    const char *save_calib_path;
    HrAwqScaleMode scale_mode;  /* default duo */
    /* The backend the search's matmuls run on (hr_backend_find name; NULL
     * = "auto"); one without host GEMMs falls back to the CPU. */
    const char *backend;
    /* Debug: apply the searched scales (no clipping, no quantization) and
     * write every float tensor as F32: the FP function must be unchanged. */
    bool awq_fold_only;
    /* Called once per decoder layer with a line of text (chosen ratios,
     * losses); may be NULL. */
    void (*log)(const char *line, void *user);
    /* Called at every step (each search group and clip pass of a layer,
     * each written tensor) with the same user pointer; return false to
     * cancel: the run stops at that step with HR_ERR_CANCELLED and leaves
     * no output file. May be NULL. */
    bool (*stage)(const HrQuantStage *stage, void *user);
} HrQuantOptions;

void hr_quant_options_init(HrQuantOptions *opt);

/* Called after each output tensor; return false to cancel. */
typedef bool (*HrQuantProgressFunc)(size_t done, size_t total, const char *tensor, void *user);

/* Quantize the FP32/FP16/BF16 HF model in in_dir into an AutoAWQ GEMM
 * checkpoint in out_dir (created if needed): model.safetensors, config.json
 * with quantization_config, and copies of the tokenizer/generation files.
 * Linears whose input width the group size does not divide (or whose
 * output width is not a multiple of 8) stay FP16 and are listed in
 * quantization_config.modules_to_not_convert, unless per_channel_fallback. */
HrStatus hr_quantize_model(const char *in_dir, const char *out_dir, const HrQuantOptions *opt,
                           HrQuantProgressFunc progress, void *user, HrError *err);
