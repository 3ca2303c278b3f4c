/* safetensors.h — mmap'd, validated safetensors files and model directories.
 *
 * Format: 8-byte little-endian header length N, N bytes of JSON
 *   { "__metadata__": {str: str}, "<name>": {"dtype": "F16", "shape": [..],
 *     "data_offsets": [begin, end]}, ... }
 * then the data area; offsets are relative to the data area.
 *
 * Everything is validated before any tensor is handed out: header length
 * within the file, JSON well-formed, known dtype, shape non-negative and
 * without overflow, offsets inside the data area and non-overlapping,
 * dtype size x numel == end - begin. Errors name the file and the tensor.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hr-status.h"

typedef enum {
    HR_DTYPE_F32,
    HR_DTYPE_F16,
    HR_DTYPE_BF16,
    HR_DTYPE_I32,
    /* Parsed and size-checked so that files holding them open; the engine
     * refuses them where it needs a specific type. */
    HR_DTYPE_F64,
    HR_DTYPE_I64,
    HR_DTYPE_I16,
    HR_DTYPE_I8,
    HR_DTYPE_U8,
    HR_DTYPE_BOOL,
    /* A GGUF block-quantized tensor (Q4_0, Q8_0, Q4_K, ...): the ggml type
     * is in HrTensor.ggml_type; n_bytes covers whole blocks. Never parsed
     * from a safetensors file; hr_dtype_size() is 0 for it. */
    HR_DTYPE_GGML,
} HrDType;

#define HR_MAX_DIMS 8

typedef struct {
    const char *name;        /* owned by the file object */
    HrDType dtype;
    int n_dims;
    int64_t shape[HR_MAX_DIMS];
    const void *data;        /* inside the mapping; valid while the file is open */
    size_t n_bytes;
    const char *file;        /* path (or label) of the file holding it, for messages */
    uint32_t ggml_type;      /* HR_DTYPE_GGML: the GGUF tensor type number */
} HrTensor;

/* The type's name for messages: "F16", or "Q4_K" for a GGUF block type. */
const char *hr_tensor_type_name(const HrTensor *t);

size_t hr_dtype_size(HrDType dt);
const char *hr_dtype_name(HrDType dt);
int64_t hr_tensor_numel(const HrTensor *t);

/* One file. */
typedef struct HrSafetensors HrSafetensors;

HrStatus hr_safetensors_open(const char *path, HrSafetensors **out, HrError *err);
/* Parse a file image already in memory (not copied: keep it alive while the
 * result is used). label names it in messages. Used by the fuzzer. */
HrStatus hr_safetensors_parse_memory(const void *data, size_t len, const char *label,
                                     HrSafetensors **out, HrError *err);
void hr_safetensors_free(HrSafetensors *st);

size_t hr_safetensors_n_tensors(const HrSafetensors *st);
const HrTensor *hr_safetensors_tensor(const HrSafetensors *st, size_t i);
const HrTensor *hr_safetensors_find(const HrSafetensors *st, const char *name);
/* A "__metadata__" string value, or NULL. */
const char *hr_safetensors_metadata(const HrSafetensors *st, const char *key);

/* All the weights of a model directory: model.safetensors, or the shards
 * named by model.safetensors.index.json (every shard it names must exist and
 * every tensor it maps must be in the shard it says), or else every
 * *.safetensors file in the directory. A tensor name appearing twice is an
 * error. */
typedef struct HrTensorSet HrTensorSet;

HrStatus hr_tensor_set_open_dir(const char *dir, HrTensorSet **out, HrError *err);
/* Building a set by hand (the GGUF reader): tensors are copied (their name
 * and file strings and data must outlive the set: hand their owners to
 * hr_tensor_set_keep). A name added twice is an error. */
HrTensorSet *hr_tensor_set_new(void);
HrStatus hr_tensor_set_add_tensor(HrTensorSet *set, const HrTensor *t, HrError *err);
/* Free data with free_func when the set is freed (after its tensors). */
void hr_tensor_set_keep(HrTensorSet *set, void *data, void (*free_func)(void *));
void hr_tensor_set_free(HrTensorSet *set);
size_t hr_tensor_set_count(const HrTensorSet *set);
const HrTensor *hr_tensor_set_get(const HrTensorSet *set, size_t i);
const HrTensor *hr_tensor_set_find(const HrTensorSet *set, const char *name);

/* Phi-3 keeps q|k|v as self_attn.qkv_proj and gate|up as mlp.gate_up_proj
 * (rows in that order): whether the set has them, and each replaced by the
 * separate linears the rest of the engine names (dense and GGUF rows as
 * views, AutoAWQ's packed columns copied), sized by cfg. Opening a folder or
 * a GGUF does this already. */
struct HrModelConfig;
bool hr_tensor_set_has_fused(const HrTensorSet *set);
HrStatus hr_tensor_set_split_fused(HrTensorSet *set, const struct HrModelConfig *cfg, HrError *err);
/* The decoder layer of a tensor named "model.layers.N.*" (N >= 0), else -1. */
int hr_tensor_layer(const char *name);
