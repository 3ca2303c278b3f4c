/* gguf.h — mmap'd, validated GGUF files (llama.cpp's format), and their
 * metadata as the Hugging Face JSON texts the engine already reads.
 *
 * Format (v2 and v3, little-endian): "GGUF", uint32 version, uint64 tensor
 * count, uint64 key/value count; the key/value pairs (key: uint64 length +
 * UTF-8 bytes; uint32 value type; the value); the tensor infos (name; uint32
 * n_dims; uint64 ne[n_dims], ne[0] contiguous; uint32 ggml type; uint64
 * offset into the data area); padding to the alignment (general.alignment,
 * default 32); the data area.
 *
 * Everything is validated before anything is handed out: every count and
 * length against the bytes that remain (before anything is allocated for
 * it), keys unique valid UTF-8, no nested arrays, tensor names unique, 1..4
 * dimensions each >= 1 whose product fits (at most 2^40 elements), ne[0] a
 * multiple of the type's block, byte sizes without overflow, offsets aligned,
 * inside the data area and non-overlapping. Errors name the file and the key
 * or tensor.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hr-status.h"

typedef struct HrGguf HrGguf;

/* Metadata value types, by their GGUF numbers. */
typedef enum {
    HR_GGUF_U8 = 0,
    HR_GGUF_I8 = 1,
    HR_GGUF_U16 = 2,
    HR_GGUF_I16 = 3,
    HR_GGUF_U32 = 4,
    HR_GGUF_I32 = 5,
    HR_GGUF_F32 = 6,
    HR_GGUF_BOOL = 7,
    HR_GGUF_STRING = 8,
    HR_GGUF_ARRAY = 9,
    HR_GGUF_U64 = 10,
    HR_GGUF_I64 = 11,
    HR_GGUF_F64 = 12,
} HrGgufValueType;

/* ggml tensor types by their GGUF numbers (4, 5, 31-33 and 36-38 are types
 * ggml has removed; files holding them are refused). */
enum {
    HR_GGML_F32 = 0,
    HR_GGML_F16 = 1,
    HR_GGML_Q4_0 = 2,
    HR_GGML_Q4_1 = 3,
    HR_GGML_Q5_0 = 6,
    HR_GGML_Q5_1 = 7,
    HR_GGML_Q8_0 = 8,
    HR_GGML_Q8_1 = 9,
    HR_GGML_Q2_K = 10,
    HR_GGML_Q3_K = 11,
    HR_GGML_Q4_K = 12,
    HR_GGML_Q5_K = 13,
    HR_GGML_Q6_K = 14,
    HR_GGML_Q8_K = 15,
    HR_GGML_IQ2_XXS = 16,
    HR_GGML_IQ2_XS = 17,
    HR_GGML_IQ3_XXS = 18,
    HR_GGML_IQ1_S = 19,
    HR_GGML_IQ4_NL = 20,
    HR_GGML_IQ3_S = 21,
    HR_GGML_IQ2_S = 22,
    HR_GGML_IQ4_XS = 23,
    HR_GGML_I8 = 24,
    HR_GGML_I16 = 25,
    HR_GGML_I32 = 26,
    HR_GGML_I64 = 27,
    HR_GGML_F64 = 28,
    HR_GGML_IQ1_M = 29,
    HR_GGML_BF16 = 30,
    HR_GGML_TQ1_0 = 34,
    HR_GGML_TQ2_0 = 35,
    HR_GGML_MXFP4 = 39,
};

#define HR_GGUF_MAX_DIMS 4
#define HR_GGUF_MAX_ELEMENTS ((int64_t)1 << 40)   /* per tensor */
#define HR_GGUF_MAX_NAME 65535                    /* bytes of a key or tensor name */
#define HR_GGUF_MAX_ALIGNMENT (1u << 20)

typedef struct {
    const char *name;      /* as in the file, NUL-terminated copy owned by HrGguf */
    uint32_t type;         /* ggml type number */
    int n_dims;            /* 1..4 */
    int64_t ne[4];         /* ggml order: ne[0] is the contiguous (row length) dimension; unused = 1 */
    const void *data;      /* inside the mapping, aligned as the file says */
    size_t n_bytes;
} HrGgufTensor;

/* Map and validate a file (regular files only: a FIFO or a device is an
 * error, not a hang). */
HrStatus hr_gguf_open(const char *path, HrGguf **out, HrError *err);
/* Parse a file image already in memory (not copied: keep it alive while the
 * result is used). label names it in messages. Used by the fuzzer. */
HrStatus hr_gguf_parse_memory(const void *data, size_t len, const char *label, HrGguf **out, HrError *err);
void hr_gguf_free(HrGguf *g);

/* The path (or label) given at open, for messages. */
const char *hr_gguf_path(const HrGguf *g);
uint32_t hr_gguf_version(const HrGguf *g);
size_t hr_gguf_alignment(const HrGguf *g);

/* Tensors in file order; find by name. */
size_t hr_gguf_n_tensors(const HrGguf *g);
const HrGgufTensor *hr_gguf_tensor(const HrGguf *g, size_t i);
const HrGgufTensor *hr_gguf_find(const HrGguf *g, const char *name);
int64_t hr_gguf_tensor_numel(const HrGgufTensor *t);

/* "Q4_K" etc, NULL if unknown. */
const char *hr_ggml_type_name(uint32_t type);
/* Elements per block and bytes per block; false if unknown. */
bool hr_ggml_type_block(uint32_t type, int *block_elems, size_t *block_bytes);

/* Metadata: typed getters that return false when absent or of another type.
 * Integers of any width count as an integer when their value fits in int64;
 * get_float also takes integers that a double holds exactly. */
size_t hr_gguf_n_keys(const HrGguf *g);
const char *hr_gguf_key(const HrGguf *g, size_t i);                 /* in file order, NULL past the end */
bool hr_gguf_get_type(const HrGguf *g, const char *key, HrGgufValueType *type);
bool hr_gguf_get_str(const HrGguf *g, const char *key, const char **out); /* NUL-terminated copy */
/* The same with its length (less than strlen's when it holds a NUL byte). */
bool hr_gguf_get_str_len(const HrGguf *g, const char *key, const char **out, size_t *len);
bool hr_gguf_get_int(const HrGguf *g, const char *key, int64_t *out);
bool hr_gguf_get_float(const HrGguf *g, const char *key, double *out);
bool hr_gguf_get_bool(const HrGguf *g, const char *key, bool *out);

/* Arrays: element type and count. String elements by index (a NUL-terminated
 * copy; *len is its length, which is less than strlen's when the string holds
 * a NUL byte); numeric elements converted by index, or the elements in the
 * mapping (little-endian, unaligned, element size by type; NULL for string
 * arrays). */
bool hr_gguf_get_array(const HrGguf *g, const char *key, HrGgufValueType *elem_type, size_t *count);
const char *hr_gguf_array_str(const HrGguf *g, const char *key, size_t i, size_t *len);
bool hr_gguf_array_int(const HrGguf *g, const char *key, size_t i, int64_t *out);
bool hr_gguf_array_float(const HrGguf *g, const char *key, size_t i, double *out);
const void *hr_gguf_array_data(const HrGguf *g, const char *key);

const char *hr_gguf_value_type_name(uint32_t type);

/* ---- metadata as Hugging Face JSON texts (gguf-meta.c) ---------------------- */

/* Whether a general.architecture is Gemma's (gemma2, gemma3): norms stored as 1 + w, post_attention_norm and
 * post_ffw_norm, <end_of_turn>, no space before the text. arch may be NULL. */
bool hr_gguf_arch_is_gemma(const char *arch);

/* config.json and generation_config.json texts equivalent to the Hugging Face
 * ones, for the architectures llama (Llama 1/2/3 and Mistral-style, linear
 * and llama3 rope scaling; llama3 is recovered from the rope_freqs tensor)
 * and qwen2; others are refused by name. Both g_malloc'd. */
HrStatus hr_gguf_config_json(const HrGguf *g, char **config_json, char **generation_json, HrError *err);

/* tokenizer.json and tokenizer_config.json texts: tokenizer.ggml.model "gpt2"
 * (byte-level BPE; the pre-tokenizer of the Hugging Face model that
 * tokenizer.ggml.pre names) or "llama" (SentencePiece BPE with byte fallback,
 * in the layout of Llama 2's tokenizer.json, merges derived from the scores).
 * Both g_malloc'd. */
HrStatus hr_gguf_tokenizer_json(const HrGguf *g, char **tokenizer_json, char **tokenizer_config_json,
                                HrError *err);

/* The same tokenizer loaded: what hr_tokenizer_load runs on a GGUF. Its
 * vocabulary and merges go to hr_tokenizer_load_with_tables directly, not
 * through JSON (Gemma's 262k pieces: seconds through JSON). */
struct HrTokenizer; /* tokenizer.h (not included: the CUDA sources include this header without GLib) */
HrStatus hr_gguf_tokenizer(const HrGguf *g, struct HrTokenizer **out, HrError *err);
