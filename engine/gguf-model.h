/* gguf-model.h — a GGUF file as a model: the same config, tokenizer and
 * tensor set a Hugging Face folder gives, so nothing above the loaders
 * knows which one it runs.
 *
 * A "model path" is a folder with config.json (Hugging Face), a .gguf file,
 * or a folder without config.json holding exactly one .gguf file. The
 * loaders (hr_model_config_load, hr_tokenizer_load, hr_tensor_set_open_dir)
 * call hr_gguf_resolve() first and come here for a GGUF.
 *
 * Tensors keep their GGUF types (F32/F16/BF16 as such, block types as
 * HR_DTYPE_GGML) and are named and shaped as transformers names them
 * ("model.layers.0.self_attn.q_proj.weight", [rows, cols]); llama.cpp's
 * row permutation of the q and k projections (for its rotary layout) is
 * undone on a copy of those two tensors, whole rows at a time, so it is
 * exact for every type. */
#pragma once

#include "hr-status.h"
#include "model-config.h"
#include "safetensors.h"
#include "tokenizer.h"

/* *gguf_file = the GGUF file path names (g_free), or NULL when path is
 * not a GGUF model (a Hugging Face folder, or nothing). A folder with
 * several .gguf files and no config.json is an error naming them. */
HrStatus hr_gguf_resolve(const char *path, char **gguf_file, HrError *err);

HrStatus hr_gguf_model_config_load(const char *gguf_file, HrModelConfig *cfg, HrError *err);
HrStatus hr_gguf_tokenizer_load(const char *gguf_file, HrTokenizer **out, HrError *err);
HrStatus hr_tensor_set_open_gguf(const char *gguf_file, HrTensorSet **out, HrError *err);
