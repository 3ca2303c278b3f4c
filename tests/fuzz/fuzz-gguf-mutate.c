/* fuzz-gguf-mutate.c — GGUF-aware mutations for the GGUF fuzz target: the
 * fuzz-mutate.h API (fuzz_mutate, fuzz_restructure; the PRNG is
 * fuzz-rng.c's), linked instead of fuzz-mutate.c by the `gguf-fuzz` meson
 * test and by tools/fuzz-gguf (with fuzz-custom-mutator.c).
 *
 * Structure-aware (three calls in four, when the input parses leniently):
 * the file is taken apart into its key/value pairs and tensor infos, one to
 * three edits are made, and it is put back together with the counts right
 * and, most of the time, the tensor offsets and the data area laid out again
 * to agree with the (new) types and shapes, so the edit reaches the checks
 * behind the size and offset ones and the metadata conversion. Edits: a
 * value set to an edge case of its type (counts, lengths, ids, 2^32, 2^63,
 * NaN, "yarn", "qwen2", invalid UTF-8, ...), a value given another type, an
 * array element changed, added or dropped (or the array retyped), pairs
 * duplicated, dropped, swapped or inserted from a list of keys the
 * conversion reads (alignment, rope scaling, expert count, token ids, add_bos
 * ...), a tensor's type (ne[0] fixed to its block, or not), dimensions,
 * offset (misaligned, overlapping, past the end), name (a duplicate, or one
 * the conversion looks for) changed, a tensor added (rope_freqs with Llama 3
 * factors) or dropped, the version changed, a pair or tensor taken from
 * another input.
 *
 * Byte-level (the rest, and inputs that do not parse): bit flips,
 * interesting bytes, little-endian integers overwritten with edge cases,
 * inserts, deletes, truncation, duplicated chunks, crossover.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <glib.h>

#include "fuzz-mutate.h"

#define below fuzz_below
#define rng fuzz_rng
#define PICK(a) (a[below(G_N_ELEMENTS(a))])

#define MAX_RECORDS 4096
#define MAX_OUTPUT (64 * 1024)

/* GGUF numbers, as in engine/gguf.h (kept separate: the mutator is not the
 * reader). */
enum { T_U8, T_I8, T_U16, T_I16, T_U32, T_I32, T_F32, T_BOOL, T_STRING, T_ARRAY, T_U64, T_I64, T_F64, N_TYPES };
static const size_t type_size[N_TYPES] = { 1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8 };

/* ggml types: number, elements and bytes per block. */
static const struct {
    uint32_t type;
    int block;
    int bytes;
} ggml[] = {
    { 0, 1, 4 }, { 1, 1, 2 }, { 2, 32, 18 }, { 3, 32, 20 }, { 6, 32, 22 }, { 7, 32, 24 }, { 8, 32, 34 },
    { 9, 32, 36 }, { 10, 256, 84 }, { 11, 256, 110 }, { 12, 256, 144 }, { 13, 256, 176 }, { 14, 256, 210 },
    { 15, 256, 292 }, { 16, 256, 66 }, { 20, 32, 18 }, { 23, 256, 136 }, { 24, 1, 1 }, { 26, 1, 4 },
    { 28, 1, 8 }, { 30, 1, 2 }, { 34, 256, 54 }, { 39, 32, 17 },
};

static int
ggml_index(uint32_t type)
{
    for (size_t i = 0; i < G_N_ELEMENTS(ggml); i++)
        if (ggml[i].type == type)
            return (int)i;
    return -1;
}

/* ------------------------------------------------------------ the model */

typedef struct {
    GByteArray *key;
    uint32_t type;
    GByteArray *value;        /* the value's bytes as in the file */
} MKv;

typedef struct {
    GByteArray *name;
    uint32_t n_dims;
    uint64_t ne[8];
    uint32_t type;
    uint64_t offset;
    GByteArray *data;         /* its old bytes, when they were inside the file */
} MTensor;

typedef struct {
    uint32_t version;
    GPtrArray *kvs;           /* MKv * */
    GPtrArray *tensors;       /* MTensor * */
    GByteArray *tail;         /* the bytes after the tensor infos */
    uint32_t alignment;
} Model;

static void
mkv_free(gpointer p)
{
    MKv *kv = p;
    g_byte_array_unref(kv->key);
    g_byte_array_unref(kv->value);
    g_free(kv);
}

static void
mtensor_free(gpointer p)
{
    MTensor *t = p;
    g_byte_array_unref(t->name);
    if (t->data)
        g_byte_array_unref(t->data);
    g_free(t);
}

static void
model_free(Model *m)
{
    if (!m)
        return;
    g_ptr_array_free(m->kvs, TRUE);
    g_ptr_array_free(m->tensors, TRUE);
    g_byte_array_unref(m->tail);
    g_free(m);
}

static uint64_t
rd(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void
put(GByteArray *b, uint64_t v, int n)
{
    uint8_t x[8];
    for (int i = 0; i < n; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    g_byte_array_append(b, x, (guint)n);
}

static void
put_str(GByteArray *b, const void *s, size_t n)
{
    put(b, n, 8);
    g_byte_array_append(b, s, (guint)n);
}

typedef struct {
    const uint8_t *p;
    size_t n, pos;
} Cur;

static bool
take(Cur *c, size_t n, const uint8_t **out)
{
    if (n > c->n - c->pos)
        return false;
    *out = c->p + c->pos;
    c->pos += n;
    return true;
}

static bool
take_int(Cur *c, int n, uint64_t *v)
{
    const uint8_t *p;
    if (!take(c, (size_t)n, &p))
        return false;
    *v = rd(p, n);
    return true;
}

static bool
take_str(Cur *c, const uint8_t **s, uint64_t *n)
{
    return take_int(c, 8, n) && *n <= 1 << 20 && take(c, (size_t)*n, s);
}

/* The extent of a value of type t at the cursor (lenient: sizes only). */
static bool
skip_value(Cur *c, uint32_t t, int depth)
{
    const uint8_t *p;
    uint64_t n;
    if (t < N_TYPES && type_size[t])
        return take(c, type_size[t], &p);
    if (t == T_STRING)
        return take_str(c, &p, &n);
    if (t != T_ARRAY || depth > 0)
        return false;
    uint64_t et, count;
    if (!take_int(c, 4, &et) || !take_int(c, 8, &count) || count > 1 << 16)
        return false;
    for (uint64_t i = 0; i < count; i++)
        if (!skip_value(c, (uint32_t)et, depth + 1))
            return false;
    return true;
}

/* A lenient parse: bounds only (duplicates, bad names, types and offsets
 * are kept, for the mutations to work on). NULL when it cannot. */
static Model *
model_parse(const GByteArray *b)
{
    Cur c = { b->data, b->len, 0 };
    const uint8_t *p;
    uint64_t version, n_tensors, n_kv;
    if (!take(&c, 4, &p) || memcmp(p, "GGUF", 4) != 0 || !take_int(&c, 4, &version) || !take_int(&c, 8, &n_tensors) ||
        !take_int(&c, 8, &n_kv) || n_tensors > MAX_RECORDS || n_kv > MAX_RECORDS)
        return NULL;
    Model *m = g_new0(Model, 1);
    m->version = (uint32_t)version;
    m->kvs = g_ptr_array_new_with_free_func(mkv_free);
    m->tensors = g_ptr_array_new_with_free_func(mtensor_free);
    m->alignment = 32;
    for (uint64_t i = 0; i < n_kv; i++) {
        const uint8_t *key;
        uint64_t kl, type;
        if (!take_str(&c, &key, &kl) || !take_int(&c, 4, &type))
            goto bad;
        size_t start = c.pos;
        if (!skip_value(&c, (uint32_t)type, 0))
            goto bad;
        MKv *kv = g_new0(MKv, 1);
        kv->key = g_byte_array_new();
        g_byte_array_append(kv->key, key, (guint)kl);
        kv->type = (uint32_t)type;
        kv->value = g_byte_array_new();
        g_byte_array_append(kv->value, c.p + start, (guint)(c.pos - start));
        g_ptr_array_add(m->kvs, kv);
        if (kl == 17 && memcmp(key, "general.alignment", 17) == 0 && type == T_U32) {
            uint32_t a = (uint32_t)rd(kv->value->data, 4);
            if (a >= 1 && a <= 4096 && (a & (a - 1)) == 0)
                m->alignment = a;
        }
    }
    for (uint64_t i = 0; i < n_tensors; i++) {
        const uint8_t *name;
        uint64_t nl, nd, type, offset;
        if (!take_str(&c, &name, &nl) || !take_int(&c, 4, &nd) || nd > 8)
            goto bad;
        MTensor *t = g_new0(MTensor, 1);
        t->name = g_byte_array_new();
        g_byte_array_append(t->name, name, (guint)nl);
        t->n_dims = (uint32_t)nd;
        g_ptr_array_add(m->tensors, t);
        for (uint64_t d = 0; d < nd; d++)
            if (!take_int(&c, 8, &t->ne[d]))
                goto bad;
        if (!take_int(&c, 4, &type) || !take_int(&c, 8, &offset))
            goto bad;
        t->type = (uint32_t)type;
        t->offset = offset;
    }
    m->tail = g_byte_array_new();
    g_byte_array_append(m->tail, c.p + c.pos, (guint)(c.n - c.pos));
    /* Each tensor's old bytes, where the file had them. */
    size_t data_start = (c.pos + m->alignment - 1) / m->alignment * m->alignment;
    for (guint i = 0; i < m->tensors->len; i++) {
        MTensor *t = m->tensors->pdata[i];
        int gi = ggml_index(t->type);
        uint64_t numel = 1;
        for (uint32_t d = 0; d < t->n_dims; d++)
            numel = t->ne[d] >= 1 && t->ne[d] <= (1u << 16) && numel <= (1u << 16) ? numel * t->ne[d] : (1u << 30);
        if (gi < 0 || numel > (1u << 16) || data_start > b->len)
            continue;
        uint64_t bytes = numel / (uint64_t)ggml[gi].block * (uint64_t)ggml[gi].bytes;
        if (t->offset <= b->len - data_start && bytes <= b->len - data_start - t->offset) {
            t->data = g_byte_array_new();
            g_byte_array_append(t->data, b->data + data_start + t->offset, (guint)bytes);
        }
    }
    return m;
bad:
    m->tail = g_byte_array_new();
    model_free(m);
    return NULL;
}

/* Tensor offsets one after another (aligned) and the data area rebuilt to
 * hold exactly them; false when a tensor's size cannot be worked out small. */
static bool
relayout(Model *m)
{
    GByteArray *data = g_byte_array_new();
    for (guint i = 0; i < m->tensors->len; i++) {
        MTensor *t = m->tensors->pdata[i];
        int gi = ggml_index(t->type);
        uint64_t numel = 1;
        bool ok = gi >= 0 && t->n_dims >= 1;
        for (uint32_t d = 0; d < t->n_dims && ok; d++) {
            ok = t->ne[d] >= 1 && t->ne[d] <= (1u << 16);
            numel *= ok ? t->ne[d] : 1;
            ok = ok && numel <= (1u << 16);
        }
        if (!ok) {
            g_byte_array_unref(data);
            return false;
        }
        uint64_t bytes = numel / (uint64_t)ggml[gi].block * (uint64_t)ggml[gi].bytes;
        while (data->len % m->alignment)
            g_byte_array_append(data, (const guint8 *)"\0", 1);
        t->offset = data->len;
        for (uint64_t k = 0; k < bytes; k++) {
            uint8_t x = t->data && k < t->data->len ? t->data->data[k] : (uint8_t)(rng() >> 56);
            g_byte_array_append(data, &x, 1);
        }
    }
    /* The padding before the data area is added by model_write. */
    g_byte_array_unref(m->tail);
    m->tail = data;
    return true;
}

/* The file. aligned_tail: pad to the alignment before the tail (a laid-out
 * data area); otherwise the tail goes as it was. */
static GByteArray *
model_write(const Model *m, bool aligned_tail)
{
    GByteArray *b = g_byte_array_new();
    g_byte_array_append(b, (const guint8 *)"GGUF", 4);
    put(b, m->version, 4);
    put(b, m->tensors->len, 8);
    put(b, m->kvs->len, 8);
    for (guint i = 0; i < m->kvs->len; i++) {
        const MKv *kv = m->kvs->pdata[i];
        put_str(b, kv->key->data, kv->key->len);
        put(b, kv->type, 4);
        g_byte_array_append(b, kv->value->data, kv->value->len);
    }
    for (guint i = 0; i < m->tensors->len; i++) {
        const MTensor *t = m->tensors->pdata[i];
        put_str(b, t->name->data, t->name->len);
        put(b, t->n_dims, 4);
        for (uint32_t d = 0; d < t->n_dims; d++)
            put(b, t->ne[d], 8);
        put(b, t->type, 4);
        put(b, t->offset, 8);
    }
    if (aligned_tail && m->tensors->len > 0)
        while (b->len % m->alignment)
            g_byte_array_append(b, (const guint8 *)"\0", 1);
    g_byte_array_append(b, m->tail->data, m->tail->len);
    return b;
}

/* ------------------------------------------------------------ values */

static const uint64_t interesting_ints[] = {
    0, 1, 2, 3, 4, 7, 8, 15, 16, 31, 32, 33, 63, 64, 100, 127, 128, 255, 256, 1024, 4096, 8192, 32768, 65535,
    65536, 49152, 131072, 1u << 24, 0x7fffffff, 0x80000000u, 0xffffffffu, 1ull << 32, 1ull << 40, 1ull << 53,
    (1ull << 63) - 1, 1ull << 63, UINT64_MAX, UINT64_MAX - 1,
};
static const double interesting_floats[] = {
    0.0, -0.0, 1.0, -1.0, 0.5, 1e-5, 1e-6, 1e-30, 1e30, 10000.0, 500000.0, 1e300, 2.0, 4.0, 8.0, 32.0, -4.0,
    NAN, INFINITY, -INFINITY, 3.4e38,
};
static const char *const interesting_strings[] = {
    "llama", "qwen2", "phi3", "mistral", "gemma", "", "gpt2", "bert", "t5", "none", "default", "gpt-2", "smollm",
    "starcoder", "llama-bpe", "llama3", "qwen2", "deepseek-llm", "linear", "yarn", "longrope", "llama3",
    "<s>", "</s>", "<unk>", "<|im_start|>", "<0x41>", "\xe2\x96\x81", "\xc4\xa0", "a b", "a  b", "ab", " ", "a",
    "\xff\xfe", "\xc3", "x\xed\xa0\x80y", "{{ messages }}", "{% for m in messages %}{{ m.content }}{% endfor %}",
    "general.alignment", "rope_freqs.weight",
};

/* An edge-case value of scalar type t (not string or array). */
static void
gen_scalar(GByteArray *v, uint32_t t)
{
    if (t == T_F32 || t == T_F64) {
        double d = below(4) ? PICK(interesting_floats) : (double)(int64_t)(rng() % 2000) - 1000.0;
        if (t == T_F32) {
            float f = (float)d;
            uint32_t bits;
            memcpy(&bits, &f, 4);
            put(v, bits, 4);
        } else {
            uint64_t bits;
            memcpy(&bits, &d, 8);
            put(v, bits, 8);
        }
        return;
    }
    if (t == T_BOOL) {
        uint8_t x = below(8) ? (uint8_t)below(2) : (uint8_t)rng();
        g_byte_array_append(v, &x, 1);
        return;
    }
    uint64_t x = PICK(interesting_ints);
    switch (below(4)) {
    case 0: x = -x; break;
    case 1: x += below(3) - 1; break;
    default: break;
    }
    put(v, x, (int)(t < N_TYPES ? type_size[t] : 4));
}

static void
gen_string(GByteArray *v)
{
    if (below(8) == 0) {
        size_t n = 1 + below(300);
        put(v, n, 8);
        for (size_t i = 0; i < n; i++) {
            uint8_t c = below(4) ? (uint8_t)('a' + below(26)) : (uint8_t)rng();
            g_byte_array_append(v, &c, 1);
        }
        return;
    }
    const char *s = PICK(interesting_strings);
    put_str(v, s, strlen(s));
}

/* A whole value of type t (arrays: a few elements of a random type). */
static void
gen_value(GByteArray *v, uint32_t t)
{
    if (t == T_STRING) {
        gen_string(v);
    } else if (t == T_ARRAY) {
        uint32_t et = below(8) ? (uint32_t)below(N_TYPES) : (uint32_t)rng();
        size_t n = below(6);
        put(v, et, 4);
        put(v, n, 8);
        for (size_t i = 0; i < n; i++) {
            if (et == T_ARRAY)
                break;
            if (et < N_TYPES)
                gen_value(v, et);
        }
    } else if (t < N_TYPES) {
        gen_scalar(v, t);
    } else {
        put(v, rng(), 4);
    }
}

/* Keys the conversion reads, with the type it expects. */
static const struct {
    const char *key;
    uint32_t type;
} known_keys[] = {
    { "general.alignment", T_U32 }, { "general.architecture", T_STRING }, { "llama.rope.scaling.type", T_STRING },
    { "llama.rope.scaling.factor", T_F32 }, { "llama.expert_count", T_U32 }, { "llama.attention.key_length", T_U32 },
    { "llama.attention.value_length", T_U32 }, { "llama.vocab_size", T_U32 }, { "llama.rope.dimension_count", T_U32 },
    { "llama.rope.freq_base", T_F32 }, { "llama.context_length", T_U32 }, { "llama.attention.head_count_kv", T_U32 },
    { "qwen2.block_count", T_U32 }, { "qwen2.embedding_length", T_U32 }, { "tokenizer.ggml.add_bos_token", T_BOOL },
    { "tokenizer.ggml.add_eos_token", T_BOOL }, { "tokenizer.ggml.add_space_prefix", T_BOOL },
    { "tokenizer.ggml.pre", T_STRING }, { "tokenizer.ggml.model", T_STRING }, { "tokenizer.ggml.eot_token_id", T_U32 },
    { "tokenizer.ggml.eom_token_id", T_U32 }, { "tokenizer.ggml.unknown_token_id", T_U32 },
    { "tokenizer.ggml.padding_token_id", T_U32 }, { "tokenizer.ggml.bos_token_id", T_U32 },
    { "tokenizer.ggml.eos_token_id", T_U32 }, { "tokenizer.chat_template", T_STRING },
    { "tokenizer.ggml.scores", T_ARRAY }, { "tokenizer.ggml.token_type", T_ARRAY },
    { "tokenizer.ggml.merges", T_ARRAY },
};

static const char *const tensor_names[] = {
    "output.weight", "token_embd.weight", "rope_freqs.weight", "blk.0.attn_q.bias", "output_norm.weight",
    "blk.0.attn_q.weight", "", "x\xff",
};

static MKv *
mkv_new(const char *key, size_t kl, uint32_t type)
{
    MKv *kv = g_new0(MKv, 1);
    kv->key = g_byte_array_new();
    g_byte_array_append(kv->key, (const guint8 *)key, (guint)kl);
    kv->type = type;
    kv->value = g_byte_array_new();
    return kv;
}

static MKv *
mkv_copy(const MKv *src)
{
    MKv *kv = mkv_new((const char *)src->key->data, src->key->len, src->type);
    g_byte_array_append(kv->value, src->value->data, src->value->len);
    return kv;
}

/* Array element edits: the element type and count stay consistent. */
static void
mutate_array(MKv *kv)
{
    GByteArray *v = kv->value;
    if (v->len < 12)
        return;
    uint32_t et = (uint32_t)rd(v->data, 4);
    uint64_t count = rd(v->data + 4, 8);
    if (et >= N_TYPES || et == T_ARRAY || count > 1 << 16) {
        g_byte_array_set_size(v, 0);
        gen_value(v, T_ARRAY);
        return;
    }
    /* Element offsets. */
    GArray *offs = g_array_new(FALSE, FALSE, sizeof(size_t));
    Cur c = { v->data, v->len, 12 };
    for (uint64_t i = 0; i < count; i++) {
        g_array_append_val(offs, c.pos);
        if (!skip_value(&c, et, 1))
            break;
    }
    g_array_append_val(offs, c.pos);
    size_t n = offs->len - 1;
    GByteArray *out = g_byte_array_new();
    g_byte_array_append(out, v->data, 12);
    int op = (int)below(5);
    size_t target = n ? below(n) : 0, other = n ? below(n) : 0;
    if (op == 4) {
        /* A new element type: every element regenerated. */
        et = (uint32_t)below(N_TYPES);
        if (et == T_ARRAY)
            et = T_I32;
        g_byte_array_set_size(out, 0);
        put(out, et, 4);
        put(out, n, 8);
        for (size_t i = 0; i < n; i++)
            gen_value(out, et);
    } else {
        size_t new_count = 0;
        for (size_t i = 0; i < n; i++) {
            const uint8_t *e = v->data + g_array_index(offs, size_t, i);
            size_t el = g_array_index(offs, size_t, i + 1) - g_array_index(offs, size_t, i);
            if (i == target && op == 0) {           /* changed */
                gen_value(out, et);
                new_count++;
                continue;
            }
            if (i == target && op == 1)             /* dropped */
                continue;
            g_byte_array_append(out, e, (guint)el);
            new_count++;
            if (i == target && op == 2) {           /* another element duplicated after it */
                const uint8_t *o = v->data + g_array_index(offs, size_t, other);
                size_t ol = g_array_index(offs, size_t, other + 1) - g_array_index(offs, size_t, other);
                g_byte_array_append(out, o, (guint)ol);
                new_count++;
            }
        }
        if (op == 3 || n == 0) {                    /* one more */
            gen_value(out, et);
            new_count++;
        }
        for (int k = 0; k < 8; k++)
            out->data[4 + k] = (uint8_t)(new_count >> (8 * k));
    }
    g_array_free(offs, TRUE);
    g_byte_array_unref(kv->value);
    kv->value = out;
}

/* Llama 3 rope factors (as llama.cpp's converter computes them) for
 * rope_freqs.weight, with random parameters. */
static MTensor *
gen_rope_freqs(void)
{
    static const int dims[] = { 8, 16, 32, 64, 128 };
    static const double thetas[] = { 10000, 500000, 100000 };
    static const double factors[] = { 1, 2, 8, 32, 0.5 };
    int head_dim = PICK(dims);
    double theta = PICK(thetas), factor = PICK(factors), low = below(4) ? 1 : 2, high = below(4) ? 4 : 3;
    int n = head_dim / 2;
    MTensor *t = g_new0(MTensor, 1);
    t->name = g_byte_array_new();
    g_byte_array_append(t->name, (const guint8 *)"rope_freqs.weight", 17);
    t->n_dims = 1;
    t->ne[0] = (uint64_t)n;
    t->type = 0;
    t->data = g_byte_array_new();
    for (int i = 0; i < n; i++) {
        double freq = 1.0 / pow(theta, 2.0 * i / head_dim), wavelen = 2 * G_PI / freq, v;
        if (wavelen < 8192 / high)
            v = 1;
        else if (wavelen > 8192 / low)
            v = factor;
        else {
            double s = (8192 / wavelen - low) / (high - low);
            v = 1 / ((1 - s) / factor + s);
        }
        float f = (float)v;
        uint32_t bits;
        memcpy(&bits, &f, 4);
        put(t->data, bits, 4);
    }
    return t;
}

/* One structural edit; false when it did not apply. */
static bool
edit_model(Model *m, GPtrArray *pool)
{
    guint nk = m->kvs->len, nt = m->tensors->len;
    switch (below(17)) {
    case 0: case 1: case 2: {               /* a value: an edge case of its type */
        if (!nk)
            return false;
        MKv *kv = m->kvs->pdata[below(nk)];
        if (kv->type == T_ARRAY) {
            mutate_array(kv);
        } else {
            g_byte_array_set_size(kv->value, 0);
            gen_value(kv->value, kv->type);
        }
        return true;
    }
    case 3: {                               /* a value of another type */
        if (!nk)
            return false;
        MKv *kv = m->kvs->pdata[below(nk)];
        kv->type = below(16) ? (uint32_t)below(N_TYPES) : (uint32_t)rng();
        g_byte_array_set_size(kv->value, 0);
        gen_value(kv->value, kv->type);
        return true;
    }
    case 4: case 5: {                       /* an array edited */
        for (int tries = 0; tries < 8 && nk; tries++) {
            MKv *kv = m->kvs->pdata[below(nk)];
            if (kv->type == T_ARRAY) {
                mutate_array(kv);
                return true;
            }
        }
        return false;
    }
    case 6: {                               /* a pair duplicated, dropped or swapped */
        if (!nk)
            return false;
        guint i = (guint)below(nk), j = (guint)below(nk);
        int op = (int)below(3);
        if (op == 0)
            g_ptr_array_insert(m->kvs, (gint)j, mkv_copy(m->kvs->pdata[i]));
        else if (op == 1)
            g_ptr_array_remove_index(m->kvs, i);
        else {
            gpointer x = m->kvs->pdata[i];
            m->kvs->pdata[i] = m->kvs->pdata[j];
            m->kvs->pdata[j] = x;
        }
        return true;
    }
    case 7: case 8: {                       /* a key the conversion reads */
        if (nk >= MAX_RECORDS)
            return false;
        size_t k = below(G_N_ELEMENTS(known_keys));
        uint32_t type = below(8) ? known_keys[k].type : (uint32_t)below(N_TYPES);
        MKv *kv = mkv_new(known_keys[k].key, strlen(known_keys[k].key), type);
        gen_value(kv->value, type);
        /* Replace the existing pair most of the time (a duplicate is refused). */
        for (guint i = 0; i < m->kvs->len && below(8); i++) {
            MKv *o = m->kvs->pdata[i];
            if (o->key->len == kv->key->len && memcmp(o->key->data, kv->key->data, o->key->len) == 0) {
                g_ptr_array_remove_index(m->kvs, i);
                break;
            }
        }
        g_ptr_array_insert(m->kvs, (gint)below(m->kvs->len + 1), kv);
        return true;
    }
    case 9: case 10: {                      /* a tensor's type */
        if (!nt)
            return false;
        MTensor *t = m->tensors->pdata[below(nt)];
        int gi = (int)below(G_N_ELEMENTS(ggml));
        t->type = below(16) ? ggml[gi].type : (uint32_t)below(64);
        if (below(4) && t->n_dims >= 1 && ggml_index(t->type) >= 0)
            t->ne[0] = ((t->ne[0] + (uint64_t)ggml[gi].block - 1) / (uint64_t)ggml[gi].block) *
                       (uint64_t)ggml[gi].block;
        if (t->data)
            g_byte_array_set_size(t->data, 0);
        return true;
    }
    case 11: {                              /* a tensor's dimensions */
        if (!nt)
            return false;
        MTensor *t = m->tensors->pdata[below(nt)];
        if (below(4) == 0)
            t->n_dims = (uint32_t)below(6);
        else if (t->n_dims > 0)
            t->ne[below(t->n_dims)] = below(2) ? PICK(interesting_ints) : 1 + below(64);
        return true;
    }
    case 12: {                              /* a tensor's offset */
        if (!nt)
            return false;
        MTensor *t = m->tensors->pdata[below(nt)], *o = m->tensors->pdata[below(nt)];
        switch (below(5)) {
        case 0: t->offset = o->offset; break;
        case 1: t->offset += 1 + below(m->alignment); break;
        case 2: t->offset = m->tail->len + below(64); break;
        case 3: t->offset = PICK(interesting_ints); break;
        default: t->offset = o->offset + m->alignment; break;
        }
        return true;
    }
    case 13: {                              /* a tensor's name */
        if (!nt)
            return false;
        MTensor *t = m->tensors->pdata[below(nt)];
        g_byte_array_set_size(t->name, 0);
        if (below(2)) {
            const MTensor *o = m->tensors->pdata[below(nt)];
            g_byte_array_append(t->name, o->name->data, o->name->len);
        } else {
            const char *s = PICK(tensor_names);
            g_byte_array_append(t->name, (const guint8 *)s, (guint)strlen(s));
        }
        return true;
    }
    case 14: {                              /* a tensor added or dropped */
        if (nt && below(3) == 0) {
            g_ptr_array_remove_index(m->tensors, (guint)below(nt));
            return true;
        }
        if (nt >= MAX_RECORDS)
            return false;
        MTensor *t;
        if (below(2)) {
            t = gen_rope_freqs();
        } else {
            t = g_new0(MTensor, 1);
            t->name = g_byte_array_new();
            const char *s = PICK(tensor_names);
            g_byte_array_append(t->name, (const guint8 *)s, (guint)strlen(s));
            t->n_dims = 1 + (uint32_t)below(3);
            for (uint32_t d = 0; d < t->n_dims; d++)
                t->ne[d] = d == 0 ? 32 * (1 + below(4)) : 1 + below(8);
            t->type = ggml[below(G_N_ELEMENTS(ggml))].type;
        }
        g_ptr_array_insert(m->tensors, (gint)below(nt + 1), t);
        return true;
    }
    case 15: {                              /* the version */
        static const uint32_t versions[] = { 1, 2, 3, 4, 0, 0x03000000, 0x02000000, 0xffffffff };
        m->version = below(4) ? (uint32_t)(2 + below(2)) : PICK(versions);
        return true;
    }
    default: {                              /* crossover: a pair or tensor of another input */
        const GByteArray *ob = pool->pdata[below(pool->len)];
        Model *o = model_parse(ob);
        if (!o)
            return false;
        bool done = false;
        if (o->kvs->len && (below(2) || !o->tensors->len) && nk < MAX_RECORDS) {
            g_ptr_array_insert(m->kvs, (gint)below(nk + 1), mkv_copy(o->kvs->pdata[below(o->kvs->len)]));
            done = true;
        } else if (o->tensors->len && nt < MAX_RECORDS) {
            guint k = (guint)below(o->tensors->len);
            MTensor *t = g_ptr_array_steal_index(o->tensors, k);
            g_ptr_array_insert(m->tensors, (gint)below(nt + 1), t);
            done = true;
        }
        model_free(o);
        return done;
    }
    }
}

/* ------------------------------------------------------------ bytes */

static void
insert_bytes(GByteArray *b, size_t at, const uint8_t *bytes, size_t n)
{
    size_t old = b->len;
    g_byte_array_set_size(b, (guint)(old + n));
    memmove(b->data + at + n, b->data + at, old - at);
    memcpy(b->data + at, bytes, n);
}

static void
mutate_bytes(GByteArray *b, GPtrArray *pool)
{
    size_t len = b->len;
    switch (below(9)) {
    case 0:
        if (len)
            b->data[below(len)] ^= (uint8_t)(1u << below(8));
        break;
    case 1: {
        static const uint8_t bytes[] = { 0, 1, 2, 3, 7, 8, 9, 12, 0x20, 0x7f, 0x80, 0xff };
        if (len)
            b->data[below(len)] = PICK(bytes);
        break;
    }
    case 2: case 3: {                       /* a little-endian integer */
        int n = below(2) ? 8 : 4;
        if (len >= (size_t)n) {
            size_t at = below(len - (size_t)n + 1);
            /* Integers in a GGUF file sit at 4-byte steps often enough. */
            if (below(2))
                at &= ~(size_t)3;
            uint64_t v = PICK(interesting_ints);
            if (below(3) == 0)
                v = rd(b->data + at, n) + below(5) - 2;
            for (int k = 0; k < n; k++)
                b->data[at + k] = (uint8_t)(v >> (8 * k));
        }
        break;
    }
    case 4: {                               /* insert */
        size_t at = below(len + 1), n = 1 + below(16);
        uint8_t buf[16];
        for (size_t i = 0; i < n; i++)
            buf[i] = (uint8_t)rng();
        insert_bytes(b, at, buf, n);
        break;
    }
    case 5:                                 /* delete */
        if (len) {
            size_t at = below(len), n = 1 + below(MIN(len - at, (size_t)32));
            g_byte_array_remove_range(b, (guint)at, (guint)n);
        }
        break;
    case 6:                                 /* truncate */
        if (len)
            g_byte_array_set_size(b, (guint)below(len));
        break;
    case 7:                                 /* a chunk duplicated */
        if (len) {
            size_t at = below(len), n = 1 + below(MIN(len - at, (size_t)64));
            GByteArray *chunk = g_byte_array_new();
            g_byte_array_append(chunk, b->data + at, (guint)n);
            insert_bytes(b, below(b->len + 1), chunk->data, chunk->len);
            g_byte_array_unref(chunk);
        }
        break;
    default: {                              /* crossover: the head of one, the tail of another */
        const GByteArray *o = pool->pdata[below(pool->len)];
        size_t cut = below(len + 1), ocut = below(o->len + 1);
        g_byte_array_set_size(b, (guint)cut);
        g_byte_array_append(b, o->data + ocut, o->len - (guint)ocut);
        break;
    }
    }
}

/* ------------------------------------------------------------ API */

static GByteArray *
restructure(const GByteArray *base, GPtrArray *pool)
{
    Model *m = model_parse(base);
    if (!m)
        return NULL;
    int n = 1 + (int)below(3);
    bool any = false;
    for (int i = 0; i < n; i++)
        any |= edit_model(m, pool);
    /* Offsets and data laid out again (most of the time), else left as they were. */
    bool laid = below(8) && relayout(m);
    GByteArray *out = model_write(m, laid);
    model_free(m);
    if (!any || out->len > MAX_OUTPUT) {
        g_byte_array_unref(out);
        return NULL;
    }
    /* Sometimes a count or the tail is broken afterwards. */
    if (below(16) == 0)
        mutate_bytes(out, pool);
    return out;
}

GByteArray *
fuzz_restructure(const GByteArray *base)
{
    GPtrArray *pool = g_ptr_array_new();
    g_ptr_array_add(pool, (gpointer)base);
    GByteArray *out = restructure(base, pool);
    g_ptr_array_free(pool, TRUE);
    return out;
}

GByteArray *
fuzz_mutate(const GByteArray *base, GPtrArray *pool)
{
    if (below(4)) {
        GByteArray *r = restructure(base, pool);
        if (r)
            return r;
    }
    GByteArray *b = g_byte_array_sized_new(base->len + 64);
    g_byte_array_append(b, base->data, base->len);
    int n = 1 + (int)below(below(4) ? 2 : 6);
    for (int i = 0; i < n; i++)
        mutate_bytes(b, pool);
    if (b->len > MAX_OUTPUT)
        g_byte_array_set_size(b, MAX_OUTPUT);
    return b;
}
