/* gguf.c — mmap'd, validated GGUF files (llama.cpp's format).
 *
 * A file is validated completely before anything is handed out, in one pass
 * over the header with a bounded reader (every length and count is checked
 * against the bytes that remain before it is used, and before anything is
 * allocated for it):
 *
 *   1. "GGUF", version 2 or 3 (1 is refused by name, as are big-endian files,
 *      whose version reads as 0x0N000000), the tensor and key/value counts:
 *      each at most what the remaining bytes could hold (a key/value pair
 *      takes at least MIN_KV_BYTES, a tensor info MIN_TENSOR_BYTES) and at
 *      most MAX_KVS / MAX_TENSORS.
 *   2. The key/value pairs: keys non-empty, at most HR_GGUF_MAX_NAME bytes,
 *      valid UTF-8 without NUL, unique; known value types; bools 0 or 1;
 *      arrays of a known non-array type whose count fits in what remains.
 *      A string array is walked once to check every length before its copy
 *      is allocated. Strings are copied NUL-terminated; numeric arrays stay
 *      in the mapping.
 *   3. general.alignment (default 32): a uint32 power of two in 8..1 MiB
 *      (the spec asks for a multiple of 8).
 *   4. The tensor infos: names as keys are (and unique among tensors), 1..4
 *      dimensions each >= 1 whose product fits (at most
 *      HR_GGUF_MAX_ELEMENTS), a ggml type whose block size is known, ne[0] a
 *      multiple of it, the byte size without overflow, the offset a multiple
 *      of the alignment.
 *   5. The data area starts at the first aligned offset after the infos;
 *      every tensor lies inside it, and no two overlap (sorted by offset,
 *      each starts at or after the furthest end so far).
 *
 * Tensors and keys are kept in file order; lookup by name is through hash
 * tables.
 */
#include "gguf.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <glib.h>

#include "hr-json.h"

#define GGUF_DEFAULT_ALIGNMENT 32
#define MIN_ALIGNMENT 8
/* Smallest possible key/value pair: key length (8) + 1 key byte + value type
 * (4) + a one-byte value. Smallest tensor info: name length (8) + 1 name byte
 * + n_dims (4) + one dimension (8) + type (4) + offset (8). */
#define MIN_KV_BYTES 14
#define MIN_TENSOR_BYTES 33
/* Far above any real file (a few dozen keys; a few thousand tensors). */
#define MAX_KVS ((uint64_t)1 << 20)
#define MAX_TENSORS ((uint64_t)1 << 22)

/* ------------------------------------------------------------ ggml types */

static const struct {
    const char *name;
    int block;        /* elements per block */
    size_t bytes;     /* bytes per block */
} ggml_types[] = {
    [HR_GGML_F32] = { "F32", 1, 4 },
    [HR_GGML_F16] = { "F16", 1, 2 },
    [HR_GGML_Q4_0] = { "Q4_0", 32, 18 },
    [HR_GGML_Q4_1] = { "Q4_1", 32, 20 },
    [HR_GGML_Q5_0] = { "Q5_0", 32, 22 },
    [HR_GGML_Q5_1] = { "Q5_1", 32, 24 },
    [HR_GGML_Q8_0] = { "Q8_0", 32, 34 },
    [HR_GGML_Q8_1] = { "Q8_1", 32, 36 },
    [HR_GGML_Q2_K] = { "Q2_K", 256, 84 },
    [HR_GGML_Q3_K] = { "Q3_K", 256, 110 },
    [HR_GGML_Q4_K] = { "Q4_K", 256, 144 },
    [HR_GGML_Q5_K] = { "Q5_K", 256, 176 },
    [HR_GGML_Q6_K] = { "Q6_K", 256, 210 },
    [HR_GGML_Q8_K] = { "Q8_K", 256, 292 },
    [HR_GGML_IQ2_XXS] = { "IQ2_XXS", 256, 66 },
    [HR_GGML_IQ2_XS] = { "IQ2_XS", 256, 74 },
    [HR_GGML_IQ3_XXS] = { "IQ3_XXS", 256, 98 },
    [HR_GGML_IQ1_S] = { "IQ1_S", 256, 50 },
    [HR_GGML_IQ4_NL] = { "IQ4_NL", 32, 18 },
    [HR_GGML_IQ3_S] = { "IQ3_S", 256, 110 },
    [HR_GGML_IQ2_S] = { "IQ2_S", 256, 82 },
    [HR_GGML_IQ4_XS] = { "IQ4_XS", 256, 136 },
    [HR_GGML_I8] = { "I8", 1, 1 },
    [HR_GGML_I16] = { "I16", 1, 2 },
    [HR_GGML_I32] = { "I32", 1, 4 },
    [HR_GGML_I64] = { "I64", 1, 8 },
    [HR_GGML_F64] = { "F64", 1, 8 },
    [HR_GGML_IQ1_M] = { "IQ1_M", 256, 56 },
    [HR_GGML_BF16] = { "BF16", 1, 2 },
    [HR_GGML_TQ1_0] = { "TQ1_0", 256, 54 },
    [HR_GGML_TQ2_0] = { "TQ2_0", 256, 66 },
    [HR_GGML_MXFP4] = { "MXFP4", 32, 17 },
};

const char *
hr_ggml_type_name(uint32_t type)
{
    return type < G_N_ELEMENTS(ggml_types) ? ggml_types[type].name : NULL;
}

bool
hr_ggml_type_block(uint32_t type, int *block_elems, size_t *block_bytes)
{
    if (type >= G_N_ELEMENTS(ggml_types) || !ggml_types[type].name)
        return false;
    if (block_elems)
        *block_elems = ggml_types[type].block;
    if (block_bytes)
        *block_bytes = ggml_types[type].bytes;
    return true;
}

/* ------------------------------------------------------------ value types */

static const struct {
    const char *name;
    size_t size;      /* bytes of a scalar in the file; 0 for string and array */
} value_types[] = {
    [HR_GGUF_U8] = { "uint8", 1 },
    [HR_GGUF_I8] = { "int8", 1 },
    [HR_GGUF_U16] = { "uint16", 2 },
    [HR_GGUF_I16] = { "int16", 2 },
    [HR_GGUF_U32] = { "uint32", 4 },
    [HR_GGUF_I32] = { "int32", 4 },
    [HR_GGUF_F32] = { "float32", 4 },
    [HR_GGUF_BOOL] = { "bool", 1 },
    [HR_GGUF_STRING] = { "string", 0 },
    [HR_GGUF_ARRAY] = { "array", 0 },
    [HR_GGUF_U64] = { "uint64", 8 },
    [HR_GGUF_I64] = { "int64", 8 },
    [HR_GGUF_F64] = { "float64", 8 },
};

const char *
hr_gguf_value_type_name(uint32_t type)
{
    return type < G_N_ELEMENTS(value_types) ? value_types[type].name : "unknown";
}

static bool
value_type_known(uint32_t type)
{
    return type < G_N_ELEMENTS(value_types);
}

static uint64_t
read_le(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = n; i > 0; i--)
        v = (v << 8) | p[i - 1];
    return v;
}

/* An integer element of type t at p as int64; false for a uint64 past
 * INT64_MAX (or a non-integer type). */
static bool
decode_int(uint32_t t, const uint8_t *p, int64_t *out)
{
    switch (t) {
    case HR_GGUF_U8: *out = p[0]; return true;
    case HR_GGUF_I8: *out = (int8_t)p[0]; return true;
    case HR_GGUF_U16: *out = (uint16_t)read_le(p, 2); return true;
    case HR_GGUF_I16: *out = (int16_t)(uint16_t)read_le(p, 2); return true;
    case HR_GGUF_U32: *out = (uint32_t)read_le(p, 4); return true;
    case HR_GGUF_I32: *out = (int32_t)(uint32_t)read_le(p, 4); return true;
    case HR_GGUF_I64: *out = (int64_t)read_le(p, 8); return true;
    case HR_GGUF_U64: {
        uint64_t v = read_le(p, 8);
        if (v > (uint64_t)INT64_MAX)
            return false;
        *out = (int64_t)v;
        return true;
    }
    default:
        return false;
    }
}

/* A number element (float or an integer a double holds exactly) as double. */
static bool
decode_float(uint32_t t, const uint8_t *p, double *out)
{
    if (t == HR_GGUF_F32) {
        uint32_t bits = (uint32_t)read_le(p, 4);
        float f;
        memcpy(&f, &bits, sizeof f);
        *out = f;
        return true;
    }
    if (t == HR_GGUF_F64) {
        uint64_t bits = read_le(p, 8);
        memcpy(out, &bits, sizeof *out);
        return true;
    }
    int64_t i;
    if (!decode_int(t, p, &i))
        return false;
    if (i > ((int64_t)1 << 53) || i < -((int64_t)1 << 53))
        return false;
    *out = (double)i;
    return true;
}

/* ------------------------------------------------------------ the object */

typedef struct {
    char *key;                /* NUL-terminated copy */
    uint32_t type;
    const uint8_t *value;     /* scalar: its bytes in the image */
    char *str;                /* STRING: NUL-terminated copy */
    size_t str_len;
    /* ARRAY */
    uint32_t elem_type;
    uint64_t count;
    const uint8_t *elems;     /* numeric elements in the image */
    char *strs;               /* string elements, each followed by a NUL */
    uint64_t *offs;           /* count + 1 offsets into strs */
} Kv;

struct HrGguf {
    char *label;
    void *map;                /* the mmap'd file, or NULL for parse_memory */
    size_t map_len;
    uint32_t version;
    size_t alignment;
    size_t data_offset;       /* where the data area starts in the image */
    Kv *kvs;
    size_t n_kvs;
    GHashTable *kv_by_key;    /* key -> index in kvs + 1 */
    HrGgufTensor *tensors;
    size_t n_tensors;
    GHashTable *by_name;      /* name -> HrGgufTensor * */
};

static const Kv *
find_kv(const HrGguf *g, const char *key)
{
    size_t i = g && key ? GPOINTER_TO_SIZE(g_hash_table_lookup(g->kv_by_key, key)) : 0;
    return i ? &g->kvs[i - 1] : NULL;
}

static void
kv_clear(Kv *kv)
{
    g_free(kv->key);
    g_free(kv->str);
    g_free(kv->strs);
    g_free(kv->offs);
}

void
hr_gguf_free(HrGguf *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->n_kvs; i++)
        kv_clear(&g->kvs[i]);
    g_free(g->kvs);
    for (size_t i = 0; i < g->n_tensors; i++)
        g_free((char *)g->tensors[i].name);
    g_free(g->tensors);
    if (g->kv_by_key)
        g_hash_table_destroy(g->kv_by_key);
    if (g->by_name)
        g_hash_table_destroy(g->by_name);
    if (g->map)
        munmap(g->map, g->map_len);
    g_free(g->label);
    g_free(g);
}

/* ------------------------------------------------------------ the reader */

typedef struct {
    const uint8_t *base;
    size_t len;
    size_t pos;
    const char *label;
    HrError *err;
} Reader;

static size_t
left(const Reader *r)
{
    return r->len - r->pos;
}

/* n bytes at the current position, or a "truncated" error naming what. */
static bool
need(Reader *r, uint64_t n, const char *what)
{
    if (n <= left(r))
        return true;
    hr_error_set(r->err, HR_ERR_FORMAT, "%s: %s needs %" PRIu64 " bytes at offset %zu, but the file ends at "
                 "%zu (truncated, or not a GGUF file)", r->label, what, n, r->pos, r->len);
    return false;
}

static bool
read_u32(Reader *r, uint32_t *v, const char *what)
{
    if (!need(r, 4, what))
        return false;
    *v = (uint32_t)read_le(r->base + r->pos, 4);
    r->pos += 4;
    return true;
}

static bool
read_u64(Reader *r, uint64_t *v, const char *what)
{
    if (!need(r, 8, what))
        return false;
    *v = read_le(r->base + r->pos, 8);
    r->pos += 8;
    return true;
}

/* A string: uint64 length, then the bytes (not NUL-terminated in the file). */
static bool
read_str(Reader *r, const uint8_t **s, uint64_t *n, const char *what)
{
    char lw[256];
    g_snprintf(lw, sizeof lw, "the length of %s", what);
    if (!read_u64(r, n, lw) || !need(r, *n, what))
        return false;
    *s = r->base + r->pos;
    r->pos += (size_t)*n;
    return true;
}

/* A name (key or tensor name): a string, non-empty, at most
 * HR_GGUF_MAX_NAME bytes, valid UTF-8 without NUL. what describes it for
 * messages; *out is a NUL-terminated copy. */
static bool
read_name(Reader *r, const char *what, char **out)
{
    const uint8_t *s;
    uint64_t n;
    if (!read_str(r, &s, &n, what))
        return false;
    if (n == 0) {
        hr_error_set(r->err, HR_ERR_FORMAT, "%s: %s is empty", r->label, what);
        return false;
    }
    if (n > HR_GGUF_MAX_NAME) {
        hr_error_set(r->err, HR_ERR_FORMAT, "%s: %s is %" PRIu64 " bytes long; at most %d are allowed", r->label,
                     what, n, HR_GGUF_MAX_NAME);
        return false;
    }
    const char *bad;
    if (!g_utf8_validate((const char *)s, (gssize)n, &bad)) {
        hr_error_set(r->err, HR_ERR_FORMAT, "%s: %s is not valid UTF-8 (or holds a NUL byte) at its byte %zu",
                     r->label, what, (size_t)(bad - (const char *)s));
        return false;
    }
    *out = g_strndup((const char *)s, (gsize)n);
    return true;
}

/* ------------------------------------------------------------ parsing */

static HrStatus
reader_status(const Reader *r)
{
    return r->err ? r->err->status : HR_ERR_FORMAT;
}

/* The value of kv (its type already read). */
static bool
read_value(Reader *r, Kv *kv)
{
    const char *f = r->label;
    char what[HR_ERROR_MESSAGE_MAX];
    g_snprintf(what, sizeof what, "the value of key '%s'", kv->key);
    if (!value_type_known(kv->type)) {
        hr_error_set(r->err, HR_ERR_FORMAT, "%s: key '%s' has value type %" PRIu32 ", which is not a GGUF type",
                     f, kv->key, kv->type);
        return false;
    }
    if (kv->type == HR_GGUF_STRING) {
        const uint8_t *s;
        uint64_t n;
        if (!read_str(r, &s, &n, what))
            return false;
        /* Every byte (a NUL inside is kept), then a terminating NUL. */
        kv->str = g_malloc((size_t)n + 1);
        memcpy(kv->str, s, (size_t)n);
        kv->str[n] = '\0';
        kv->str_len = (size_t)n;
        return true;
    }
    if (kv->type != HR_GGUF_ARRAY) {
        size_t size = value_types[kv->type].size;
        if (!need(r, size, what))
            return false;
        kv->value = r->base + r->pos;
        if (kv->type == HR_GGUF_BOOL && kv->value[0] > 1) {
            hr_error_set(r->err, HR_ERR_FORMAT, "%s: key '%s': bool value %u is neither 0 nor 1", f, kv->key,
                         kv->value[0]);
            return false;
        }
        r->pos += size;
        return true;
    }

    g_snprintf(what, sizeof what, "the element type of array '%s'", kv->key);
    if (!read_u32(r, &kv->elem_type, what))
        return false;
    if (kv->elem_type == HR_GGUF_ARRAY) {
        hr_error_set(r->err, HR_ERR_FORMAT, "%s: key '%s': arrays of arrays are not supported", f, kv->key);
        return false;
    }
    if (!value_type_known(kv->elem_type)) {
        hr_error_set(r->err, HR_ERR_FORMAT, "%s: key '%s' is an array of value type %" PRIu32 ", which is not a "
                     "GGUF type", f, kv->key, kv->elem_type);
        return false;
    }
    g_snprintf(what, sizeof what, "the length of array '%s'", kv->key);
    if (!read_u64(r, &kv->count, what))
        return false;
    size_t size = value_types[kv->elem_type].size;
    size_t min = size ? size : 8;  /* a string takes at least its 8-byte length */
    if (kv->count > left(r) / min) {
        hr_error_set(r->err, HR_ERR_FORMAT, "%s: key '%s': an array of %" PRIu64 " %s values cannot fit in the %zu "
                     "bytes that remain (truncated or corrupt)", f, kv->key, kv->count,
                     hr_gguf_value_type_name(kv->elem_type), left(r));
        return false;
    }
    if (kv->elem_type != HR_GGUF_STRING) {
        kv->elems = r->base + r->pos;
        size_t n = (size_t)kv->count * size;
        if (kv->elem_type == HR_GGUF_BOOL) {
            for (size_t i = 0; i < n; i++) {
                if (kv->elems[i] > 1) {
                    hr_error_set(r->err, HR_ERR_FORMAT, "%s: key '%s': element %zu is bool value %u, neither 0 "
                                 "nor 1", f, kv->key, i, kv->elems[i]);
                    return false;
                }
            }
        }
        r->pos += n;
        return true;
    }
    /* Strings: walk them once to check every length, then copy. */
    size_t start = r->pos;
    uint64_t total = 0;
    for (uint64_t i = 0; i < kv->count; i++) {
        const uint8_t *s;
        uint64_t n;
        g_snprintf(what, sizeof what, "element %" PRIu64 " of array '%s'", i, kv->key);
        if (!read_str(r, &s, &n, what))
            return false;
        total += n;
    }
    size_t n_offs = (size_t)kv->count + 1;
    kv->strs = g_try_malloc((size_t)total + (size_t)kv->count + 1);
    kv->offs = g_try_new(uint64_t, n_offs);
    if (!kv->strs || !kv->offs) {
        hr_error_set(r->err, HR_ERR_NOMEM, "%s: key '%s': out of memory for %" PRIu64 " strings", f, kv->key,
                     kv->count);
        return false;
    }
    size_t p = start, out = 0;
    for (uint64_t i = 0; i < kv->count; i++) {
        size_t n = (size_t)read_le(r->base + p, 8);
        kv->offs[i] = out;
        memcpy(kv->strs + out, r->base + p + 8, n);
        out += n;
        kv->strs[out++] = '\0';
        p += 8 + n;
    }
    kv->offs[kv->count] = out;
    return true;
}

static HrStatus
parse_kvs(HrGguf *g, Reader *r, uint64_t n_kvs)
{
    const char *f = r->label;
    g->kvs = g_new0(Kv, MIN(n_kvs, 64));
    size_t cap = MIN(n_kvs, 64);
    for (uint64_t i = 0; i < n_kvs; i++) {
        if (g->n_kvs == cap) {
            cap = MIN(cap * 2, (size_t)n_kvs);
            g->kvs = g_renew(Kv, g->kvs, cap);
        }
        Kv *kv = &g->kvs[g->n_kvs];
        memset(kv, 0, sizeof *kv);
        char what[96];
        g_snprintf(what, sizeof what, "the key of key/value pair %" PRIu64 " of %" PRIu64, i + 1, n_kvs);
        if (!read_name(r, what, &kv->key))
            return reader_status(r);
        g->n_kvs++;
        /* The table maps a key to its index + 1 (kvs may still move). */
        if (!g_hash_table_insert(g->kv_by_key, kv->key, GSIZE_TO_POINTER(g->n_kvs)))
            return hr_error_set(r->err, HR_ERR_FORMAT, "%s: key '%s' appears twice", f, kv->key);
        char tw[HR_ERROR_MESSAGE_MAX];
        g_snprintf(tw, sizeof tw, "the value type of key '%s'", kv->key);
        if (!read_u32(r, &kv->type, tw) || !read_value(r, kv))
            return reader_status(r);
    }
    return HR_OK;
}

static HrStatus
parse_alignment(HrGguf *g, const char *f, HrError *err)
{
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const Kv *kv = find_kv(g, "general.alignment");
    if (!kv)
        return HR_OK;
    if (kv->type != HR_GGUF_U32)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: general.alignment is a %s; it must be a uint32", f,
                            hr_gguf_value_type_name(kv->type));
    uint32_t a = (uint32_t)read_le(kv->value, 4);
    if (a < MIN_ALIGNMENT || a > HR_GGUF_MAX_ALIGNMENT || (a & (a - 1)) != 0)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: general.alignment %" PRIu32 " is not a power of two from %d "
                            "to %u", f, a, MIN_ALIGNMENT, HR_GGUF_MAX_ALIGNMENT);
    g->alignment = a;
    return HR_OK;
}

static void
format_ne(char *buf, size_t len, const int64_t *ne, int n_dims)
{
    size_t used = (size_t)g_snprintf(buf, len, "[");
    for (int i = 0; i < n_dims && used < len; i++)
        used += (size_t)g_snprintf(buf + used, len - used, "%s%" PRId64, i ? ", " : "", ne[i]);
    if (used < len)
        g_snprintf(buf + used, len - used, "]");
}

/* One tensor info into t; *offset gets its offset in the data area. */
static HrStatus
parse_tensor_info(HrGguf *g, Reader *r, uint64_t index, uint64_t n_tensors, HrGgufTensor *t, uint64_t *offset)
{
    const char *f = r->label;
    char what[HR_ERROR_MESSAGE_MAX];
    char *name = NULL;
    g_snprintf(what, sizeof what, "the name of tensor %" PRIu64 " of %" PRIu64, index + 1, n_tensors);
    if (!read_name(r, what, &name))
        return reader_status(r);
    t->name = name;
    uint32_t n_dims;
    g_snprintf(what, sizeof what, "the dimension count of tensor '%s'", name);
    if (!read_u32(r, &n_dims, what))
        return reader_status(r);
    if (n_dims < 1 || n_dims > HR_GGUF_MAX_DIMS)
        return hr_error_set(r->err, HR_ERR_FORMAT, "%s: tensor '%s' has %" PRIu32 " dimensions; a GGUF tensor has "
                            "1 to %d", f, name, n_dims, HR_GGUF_MAX_DIMS);
    t->n_dims = (int)n_dims;
    for (int d = 0; d < HR_GGUF_MAX_DIMS; d++)
        t->ne[d] = 1;
    uint64_t numel = 1;
    for (int d = 0; d < t->n_dims; d++) {
        uint64_t v;
        g_snprintf(what, sizeof what, "dimension %d of tensor '%s'", d, name);
        if (!read_u64(r, &v, what))
            return reader_status(r);
        if (v == 0 || v > (uint64_t)HR_GGUF_MAX_ELEMENTS)
            return hr_error_set(r->err, HR_ERR_FORMAT, "%s: tensor '%s': ne[%d] = %" PRIu64 " is out of range "
                                "(1 to 2^40)", f, name, d, v);
        t->ne[d] = (int64_t)v;
        /* Each factor is at most 2^40, and so is the product so far; their
         * product may not fit 64 bits (2^36 x 7 * 2^32 wrapped to 0), so
         * the bound is checked by division first. */
        if (v > (uint64_t)HR_GGUF_MAX_ELEMENTS / numel)
            numel = (uint64_t)HR_GGUF_MAX_ELEMENTS + 1;
        else
            numel *= v;
        if (numel > (uint64_t)HR_GGUF_MAX_ELEMENTS) {
            char ne[160];
            format_ne(ne, sizeof ne, t->ne, d + 1);
            return hr_error_set(r->err, HR_ERR_FORMAT, "%s: tensor '%s': shape %s%s has more than 2^40 elements", f,
                                name, ne, d + 1 < t->n_dims ? "..." : "");
        }
    }
    g_snprintf(what, sizeof what, "the type of tensor '%s'", name);
    if (!read_u32(r, &t->type, what))
        return reader_status(r);
    g_snprintf(what, sizeof what, "the offset of tensor '%s'", name);
    if (!read_u64(r, offset, what))
        return reader_status(r);

    int block;
    size_t block_bytes;
    if (!hr_ggml_type_block(t->type, &block, &block_bytes))
        return hr_error_set(r->err, HR_ERR_UNSUPPORTED, "%s: tensor '%s' has ggml type %" PRIu32 ", which Hearth "
                            "does not know", f, name, t->type);
    char ne[160];
    format_ne(ne, sizeof ne, t->ne, t->n_dims);
    if (t->ne[0] % block != 0)
        return hr_error_set(r->err, HR_ERR_FORMAT, "%s: tensor '%s': shape %s: ne[0] = %" PRId64 " is not a "
                            "multiple of the %d-element blocks of %s", f, name, ne, t->ne[0], block,
                            hr_ggml_type_name(t->type));
    /* rows x blocks per row x block bytes: at most 2^40 x 292. */
    uint64_t bytes = 0;
    if (__builtin_mul_overflow(numel / (uint64_t)block, (uint64_t)block_bytes, &bytes) || bytes > SIZE_MAX)
        return hr_error_set(r->err, HR_ERR_FORMAT, "%s: tensor '%s': shape %s is too large", f, name, ne);
    t->n_bytes = (size_t)bytes;
    if (*offset % g->alignment != 0)
        return hr_error_set(r->err, HR_ERR_FORMAT, "%s: tensor '%s': offset %" PRIu64 " is not a multiple of the "
                            "alignment %zu", f, name, *offset, g->alignment);
    return HR_OK;
}

typedef struct {
    uint64_t begin, end;
    size_t index;
} Span;

static int
span_cmp(const void *a, const void *b)
{
    const Span *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static HrStatus
parse_tensors(HrGguf *g, Reader *r, uint64_t n_tensors)
{
    const char *f = r->label;
    HrStatus st = HR_OK;
    size_t cap = (size_t)MIN(n_tensors, 256);
    g->tensors = g_new0(HrGgufTensor, MAX(cap, 1));
    GArray *offsets = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    for (uint64_t i = 0; i < n_tensors && st == HR_OK; i++) {
        if (g->n_tensors == cap) {
            cap = (size_t)MIN((uint64_t)cap * 2, n_tensors);
            g->tensors = g_renew(HrGgufTensor, g->tensors, cap);
        }
        HrGgufTensor *t = &g->tensors[g->n_tensors];
        memset(t, 0, sizeof *t);
        uint64_t off = 0;
        st = parse_tensor_info(g, r, i, n_tensors, t, &off);
        if (t->name)
            g->n_tensors++;
        g_array_append_val(offsets, off);
    }
    if (st != HR_OK)
        goto out;
    for (size_t i = 0; i < g->n_tensors && st == HR_OK; i++) {
        HrGgufTensor *t = &g->tensors[i];
        if (!g_hash_table_insert(g->by_name, (gpointer)t->name, t))
            st = hr_error_set(r->err, HR_ERR_FORMAT, "%s: tensor '%s' appears twice", f, t->name);
    }
    if (st != HR_OK)
        goto out;

    /* The data area: from the first aligned offset after the infos. */
    size_t start = r->pos;
    size_t pad = (g->alignment - start % g->alignment) % g->alignment;
    if (g->n_tensors == 0) {
        g->data_offset = pad <= r->len - start ? start + pad : r->len;
        goto out;
    }
    if (pad > r->len - start) {
        st = hr_error_set(r->err, HR_ERR_FORMAT, "%s: the data area would start at offset %zu (aligned to %zu), past "
                          "the end of the %zu-byte file (truncated)", f, start + pad, g->alignment, r->len);
        goto out;
    }
    g->data_offset = start + pad;
    uint64_t data_len = r->len - g->data_offset;
    Span *spans = g_new(Span, g->n_tensors);
    for (size_t i = 0; i < g->n_tensors && st == HR_OK; i++) {
        HrGgufTensor *t = &g->tensors[i];
        uint64_t off = g_array_index(offsets, uint64_t, i);
        if (off > data_len || t->n_bytes > data_len - off) {
            st = hr_error_set(r->err, HR_ERR_FORMAT, "%s: tensor '%s': offset %" PRIu64 " + %zu bytes runs past the "
                              "end of the %" PRIu64 "-byte data area (the file is truncated or corrupt)", f, t->name,
                              off, t->n_bytes, data_len);
            break;
        }
        t->data = r->base + g->data_offset + off;
        spans[i] = (Span){ off, off + t->n_bytes, i };
    }
    if (st == HR_OK && g->n_tensors > 1) {
        qsort(spans, g->n_tensors, sizeof *spans, span_cmp);
        size_t far = 0;
        for (size_t i = 1; i < g->n_tensors; i++) {
            if (spans[i].begin < spans[far].end) {
                const HrGgufTensor *a = &g->tensors[spans[far].index], *b = &g->tensors[spans[i].index];
                st = hr_error_set(r->err, HR_ERR_FORMAT, "%s: tensors '%s' (bytes %" PRIu64 " to %" PRIu64 ") and '%s' "
                                  "(bytes %" PRIu64 " to %" PRIu64 " of the data area) overlap", f, a->name,
                                  spans[far].begin, spans[far].end, b->name, spans[i].begin, spans[i].end);
                break;
            }
            if (spans[i].end > spans[far].end)
                far = i;
        }
    }
    g_free(spans);
out:
    g_array_free(offsets, TRUE);
    return st;
}

static HrStatus
parse_image(HrGguf *g, const uint8_t *base, size_t len, HrError *err)
{
    const char *f = g->label;
    Reader r = { base, len, 0, f, err };
    if (len == 0)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: empty file (a GGUF file starts with \"GGUF\")", f);
    if (len < 4 || memcmp(base, "GGUF", 4) != 0) {
        char shown[32] = "";
        for (size_t i = 0; i < MIN(len, (size_t)4); i++)
            g_snprintf(shown + 3 * i, sizeof shown - 3 * i, "%02x ", base[i]);
        return hr_error_set(err, HR_ERR_FORMAT, "%s: not a GGUF file (it starts with bytes %s, not \"GGUF\")", f,
                            shown);
    }
    r.pos = 4;
    if (!read_u32(&r, &g->version, "the version"))
        return reader_status(&r);
    uint32_t swapped = GUINT32_SWAP_LE_BE(g->version);
    if (g->version >= 0x10000 && swapped >= 1 && swapped <= 3)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "%s: a big-endian GGUF file (version %" PRIu32 "); Hearth reads "
                            "little-endian files only", f, swapped);
    if (g->version == 1)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "%s: GGUF version 1 is not supported (only 2 and 3); convert "
                            "the model again with a current llama.cpp", f);
    if (g->version != 2 && g->version != 3)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "%s: GGUF version %" PRIu32 " is not supported (only 2 and 3)",
                            f, g->version);
    uint64_t n_tensors, n_kvs;
    if (!read_u64(&r, &n_tensors, "the tensor count") || !read_u64(&r, &n_kvs, "the key/value count"))
        return reader_status(&r);
    if (n_kvs > left(&r) / MIN_KV_BYTES)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: the header claims %" PRIu64 " key/value pairs, but the %zu bytes "
                            "that follow could hold at most %zu", f, n_kvs, left(&r), left(&r) / MIN_KV_BYTES);
    if (n_tensors > left(&r) / MIN_TENSOR_BYTES)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: the header claims %" PRIu64 " tensors, but the %zu bytes that "
                            "follow could hold at most %zu", f, n_tensors, left(&r), left(&r) / MIN_TENSOR_BYTES);
    if (n_kvs > MAX_KVS)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "%s: %" PRIu64 " key/value pairs; at most %" PRIu64 " are "
                            "supported", f, n_kvs, MAX_KVS);
    if (n_tensors > MAX_TENSORS)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "%s: %" PRIu64 " tensors; at most %" PRIu64 " are supported", f,
                            n_tensors, MAX_TENSORS);
    HrStatus st;
    if ((st = parse_kvs(g, &r, n_kvs)) != HR_OK || (st = parse_alignment(g, f, err)) != HR_OK)
        return st;
    return parse_tensors(g, &r, n_tensors);
}

static HrGguf *
gguf_new(const char *label)
{
    HrGguf *g = g_new0(HrGguf, 1);
    g->label = g_strdup(label);
    g->kv_by_key = g_hash_table_new(g_str_hash, g_str_equal);
    g->by_name = g_hash_table_new(g_str_hash, g_str_equal);
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    return g;
}

HrStatus
hr_gguf_parse_memory(const void *data, size_t len, const char *label, HrGguf **out, HrError *err)
{
    if (!out)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "hr_gguf_parse_memory: out is NULL");
    *out = NULL;
    if (!label)
        label = "<memory>";
    if (!data && len > 0)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "%s: no data", label);
    HrGguf *g = gguf_new(label);
    HrStatus st = parse_image(g, data, len, err);
    if (st != HR_OK) {
        hr_gguf_free(g);
        return st;
    }
    *out = g;
    return HR_OK;
}

HrStatus
hr_gguf_open(const char *path, HrGguf **out, HrError *err)
{
    if (!out)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "hr_gguf_open: out is NULL");
    *out = NULL;
    if (!path)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "hr_gguf_open: path is NULL");
    void *map = NULL;
    size_t len = 0;
    HrStatus mst = hr_file_map(path, "GGUF", "a GGUF file starts with \"GGUF\"", &map, &len, err);
    if (mst != HR_OK)
        return mst;
    /* Weights are read front to back once, at load. */
    (void)madvise(map, len, MADV_SEQUENTIAL);

    HrGguf *g = gguf_new(path);
    g->map = map;
    g->map_len = len;
    HrStatus st = parse_image(g, map, len, err);
    if (st != HR_OK) {
        hr_gguf_free(g);
        return st;
    }
    *out = g;
    return HR_OK;
}

/* ------------------------------------------------------------ accessors */

const char *
hr_gguf_path(const HrGguf *g)
{
    return g ? g->label : NULL;
}

uint32_t
hr_gguf_version(const HrGguf *g)
{
    return g ? g->version : 0;
}

size_t
hr_gguf_alignment(const HrGguf *g)
{
    return g ? g->alignment : 0;
}

size_t
hr_gguf_n_tensors(const HrGguf *g)
{
    return g ? g->n_tensors : 0;
}

const HrGgufTensor *
hr_gguf_tensor(const HrGguf *g, size_t i)
{
    return g && i < g->n_tensors ? &g->tensors[i] : NULL;
}

const HrGgufTensor *
hr_gguf_find(const HrGguf *g, const char *name)
{
    return g && name ? g_hash_table_lookup(g->by_name, name) : NULL;
}

int64_t
hr_gguf_tensor_numel(const HrGgufTensor *t)
{
    /* Loading checked the product is at most 2^40; unsigned arithmetic keeps
     * a hand-made tensor from being undefined behaviour. */
    uint64_t n = 1;
    for (int i = 0; i < t->n_dims && i < HR_GGUF_MAX_DIMS; i++)
        n *= (uint64_t)t->ne[i];
    return (int64_t)n;
}

size_t
hr_gguf_n_keys(const HrGguf *g)
{
    return g ? g->n_kvs : 0;
}

const char *
hr_gguf_key(const HrGguf *g, size_t i)
{
    return g && i < g->n_kvs ? g->kvs[i].key : NULL;
}

bool
hr_gguf_get_type(const HrGguf *g, const char *key, HrGgufValueType *type)
{
    const Kv *kv = find_kv(g, key);
    if (!kv)
        return false;
    if (type)
        *type = (HrGgufValueType)kv->type;
    return true;
}

bool
hr_gguf_get_str(const HrGguf *g, const char *key, const char **out)
{
    const Kv *kv = find_kv(g, key);
    if (!kv || kv->type != HR_GGUF_STRING)
        return false;
    *out = kv->str;
    return true;
}

bool
hr_gguf_get_str_len(const HrGguf *g, const char *key, const char **out, size_t *len)
{
    const Kv *kv = find_kv(g, key);
    if (!kv || kv->type != HR_GGUF_STRING)
        return false;
    *out = kv->str;
    *len = kv->str_len;
    return true;
}

bool
hr_gguf_get_int(const HrGguf *g, const char *key, int64_t *out)
{
    const Kv *kv = find_kv(g, key);
    return kv && kv->value && decode_int(kv->type, kv->value, out);
}

bool
hr_gguf_get_float(const HrGguf *g, const char *key, double *out)
{
    const Kv *kv = find_kv(g, key);
    return kv && kv->value && kv->type != HR_GGUF_BOOL && decode_float(kv->type, kv->value, out);
}

bool
hr_gguf_get_bool(const HrGguf *g, const char *key, bool *out)
{
    const Kv *kv = find_kv(g, key);
    if (!kv || kv->type != HR_GGUF_BOOL)
        return false;
    *out = kv->value[0] != 0;
    return true;
}

bool
hr_gguf_get_array(const HrGguf *g, const char *key, HrGgufValueType *elem_type, size_t *count)
{
    const Kv *kv = find_kv(g, key);
    if (!kv || kv->type != HR_GGUF_ARRAY)
        return false;
    if (elem_type)
        *elem_type = (HrGgufValueType)kv->elem_type;
    if (count)
        *count = (size_t)kv->count;
    return true;
}

const char *
hr_gguf_array_str(const HrGguf *g, const char *key, size_t i, size_t *len)
{
    const Kv *kv = find_kv(g, key);
    if (!kv || kv->type != HR_GGUF_ARRAY || kv->elem_type != HR_GGUF_STRING || i >= kv->count)
        return NULL;
    if (len)
        *len = (size_t)(kv->offs[i + 1] - kv->offs[i] - 1);
    return kv->strs + kv->offs[i];
}

static const uint8_t *
array_elem(const HrGguf *g, const char *key, size_t i, uint32_t *type)
{
    const Kv *kv = find_kv(g, key);
    if (!kv || kv->type != HR_GGUF_ARRAY || !kv->elems || i >= kv->count)
        return NULL;
    *type = kv->elem_type;
    return kv->elems + i * value_types[kv->elem_type].size;
}

bool
hr_gguf_array_int(const HrGguf *g, const char *key, size_t i, int64_t *out)
{
    uint32_t type;
    const uint8_t *p = array_elem(g, key, i, &type);
    return p && decode_int(type, p, out);
}

bool
hr_gguf_array_float(const HrGguf *g, const char *key, size_t i, double *out)
{
    uint32_t type;
    const uint8_t *p = array_elem(g, key, i, &type);
    return p && type != HR_GGUF_BOOL && decode_float(type, p, out);
}

const void *
hr_gguf_array_data(const HrGguf *g, const char *key)
{
    const Kv *kv = find_kv(g, key);
    return kv && kv->type == HR_GGUF_ARRAY ? kv->elems : NULL;
}
