/* safetensors.c on files written here by hand: valid files read back exactly
 * (names, dtypes, shapes, bytes, metadata), and every kind of malformed file
 * fails with the right status and a message naming the file and the tensor.
 * Model directories: one file, a glob of files, and sharded with an index
 * (missing shard, shard names escaping the directory, a tensor mapped to the
 * wrong shard, a tensor in two shards). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "hr-test.h"
#include "safetensors.h"

static char *tmp_root;

/* ------------------------------------------------------------ helpers */

/* A file image: 8-byte LE header length, the header (padded with spaces to a
 * multiple of 8 when pad), then data. */
static GByteArray *
image_new(const char *header, const void *data, size_t data_len, bool pad)
{
    size_t hlen = strlen(header);
    size_t padded = pad ? (hlen + 7) / 8 * 8 : hlen;
    GByteArray *b = g_byte_array_new();
    uint8_t len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    g_byte_array_append(b, len8, 8);
    g_byte_array_append(b, (const guint8 *)header, (guint)hlen);
    for (size_t i = hlen; i < padded; i++)
        g_byte_array_append(b, (const guint8 *)" ", 1);
    if (data_len)
        g_byte_array_append(b, data, (guint)data_len);
    return b;
}

/* An image whose data area is data_len bytes of 0, 1, 2, ... */
static GByteArray *
image_counting(const char *header, size_t data_len)
{
    uint8_t *data = g_malloc(data_len ? data_len : 1);
    for (size_t i = 0; i < data_len; i++)
        data[i] = (uint8_t)i;
    GByteArray *b = image_new(header, data, data_len, true);
    g_free(data);
    return b;
}

static char *
write_file(const char *dir, const char *name, const void *bytes, size_t len)
{
    char *path = g_build_filename(dir, name, NULL);
    GError *error = NULL;
    if (!g_file_set_contents(path, bytes, (gssize)len, &error)) {
        fprintf(stderr, "cannot write %s: %s\n", path, error->message);
        exit(1);
    }
    return path;
}

static char *
write_image(const char *dir, const char *name, GByteArray *b)
{
    return write_file(dir, name, b->data, b->len);
}

static char *
make_dir(const char *name)
{
    char *dir = g_build_filename(tmp_root, name, NULL);
    if (g_mkdir_with_parents(dir, 0755) != 0) {
        fprintf(stderr, "cannot create %s\n", dir);
        exit(1);
    }
    return dir;
}

static void
remove_tree(const char *path)
{
    GDir *d = g_dir_open(path, 0, NULL);
    if (d) {
        const char *name;
        while ((name = g_dir_read_name(d))) {
            char *child = g_build_filename(path, name, NULL);
            if (g_file_test(child, G_FILE_TEST_IS_DIR) && !g_file_test(child, G_FILE_TEST_IS_SYMLINK))
                remove_tree(child);
            else
                g_unlink(child);
            g_free(child);
        }
        g_dir_close(d);
        g_rmdir(path);
    }
}

/* The status is want, and the message holds every string in the NULL-ended
 * list. Returns whether it all held. */
static bool
check_error_v(const char *where, HrStatus got, const HrError *err, HrStatus want, va_list ap)
{
    bool ok = true;
    if (got != want) {
        fprintf(stderr, "%s: expected status '%s', got '%s' (%s)\n", where, hr_status_name(want),
                hr_status_name(got), got == HR_OK ? "" : err->message);
        ok = false;
    }
    if (got != HR_OK && err->status != got) {
        fprintf(stderr, "%s: err->status %d != returned %d\n", where, err->status, got);
        ok = false;
    }
    const char *s;
    while ((s = va_arg(ap, const char *))) {
        if (got != HR_OK && !strstr(err->message, s)) {
            fprintf(stderr, "%s: message \"%s\" lacks \"%s\"\n", where, err->message, s);
            ok = false;
        }
    }
    return ok;
}

static bool G_GNUC_NULL_TERMINATED
check_error(const char *where, HrStatus got, const HrError *err, HrStatus want, ...)
{
    va_list ap;
    va_start(ap, want);
    bool ok = check_error_v(where, got, err, want, ap);
    va_end(ap);
    return ok;
}

#define LABEL "bad.safetensors"

/* Parse a header (with counting data) from memory; it must fail with want and
 * a message holding LABEL and every string given. */
static void G_GNUC_NULL_TERMINATED
expect_bad_header(const char *what, const char *header, size_t data_len, HrStatus want, ...)
{
    GByteArray *b = image_counting(header, data_len);
    /* An exact-size heap copy, so ASan sees any read past the end. */
    void *copy = g_memdup2(b->data, b->len);
    HrSafetensors *st = NULL;
    HrError err = { 0 };
    HrStatus s = hr_safetensors_parse_memory(copy, b->len, LABEL, &st, &err);
    va_list ap;
    va_start(ap, want);
    bool ok = check_error_v(what, s, &err, want, ap);
    va_end(ap);
    if (s != HR_OK && !strstr(err.message, LABEL)) {
        fprintf(stderr, "%s: message \"%s\" does not name the file\n", what, err.message);
        ok = false;
    }
    HR_CHECK(ok, "%s", what);
    HR_CHECK(s != HR_OK || st != NULL, "%s", what);
    HR_CHECK(s == HR_OK || st == NULL, "%s: *out set on failure", what);
    hr_safetensors_free(st);
    g_free(copy);
    g_byte_array_unref(b);
}

/* Same with raw bytes. */
static void G_GNUC_NULL_TERMINATED
expect_bad_bytes(const char *what, const void *bytes, size_t len, HrStatus want, ...)
{
    void *copy = len ? g_memdup2(bytes, len) : NULL;
    HrSafetensors *st = NULL;
    HrError err = { 0 };
    HrStatus s = hr_safetensors_parse_memory(copy, len, LABEL, &st, &err);
    va_list ap;
    va_start(ap, want);
    bool ok = check_error_v(what, s, &err, want, ap);
    va_end(ap);
    HR_CHECK(ok && (s == HR_OK || strstr(err.message, LABEL)), "%s: %s", what, err.message);
    hr_safetensors_free(st);
    g_free(copy);
}

/* --------------------------------------------------------- valid files */

/* 10 tensors, one of each dtype, some 0-d and empty, in a non-sorted order;
 * data area 0..91 counting bytes with a 4-byte hole at 80..84. */
static const char valid_header[] =
    "{\"__metadata__\":{\"format\":\"pt\",\"note\":\"a \\\"quoted\\\" caf\\u00e9 \\ud83d\\ude00\\n\"},"
    "\"model.b.weight\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[0,12]},"
    "\"model.a.bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[12,24]},"
    "\"scalar\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[24,32]},"
    "\"empty\":{\"dtype\":\"BF16\",\"shape\":[0,5],\"data_offsets\":[32,32]},"
    "\"flags\":{\"dtype\":\"BOOL\",\"shape\":[4],\"data_offsets\":[32,36]},"
    "\"i32\":{\"dtype\":\"I32\",\"shape\":[1,1,1,1,1,1,1,2],\"data_offsets\":[36,44]},"
    "\"f64\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[44,60]},"
    "\"i16\":{\"dtype\":\"I16\",\"shape\":[5],\"data_offsets\":[60,70]},"
    "\"i8\":{\"dtype\":\"I8\",\"shape\":[3],\"data_offsets\":[70,73],\"extra\":[1,{\"x\":null}]},"
    "\"u8\":{\"dtype\":\"U8\",\"shape\":[7],\"data_offsets\":[73,80]},"
    "\"after.hole\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[84,92]}}";
#define VALID_DATA_LEN 92

typedef struct {
    const char *name;
    HrDType dtype;
    int n_dims;
    int64_t shape[HR_MAX_DIMS];
    size_t begin, end;
} WantTensor;

static const WantTensor valid_tensors[] = {
    { "model.b.weight", HR_DTYPE_F16, 2, { 2, 3 }, 0, 12 },
    { "model.a.bias", HR_DTYPE_F32, 1, { 3 }, 12, 24 },
    { "scalar", HR_DTYPE_I64, 0, { 0 }, 24, 32 },
    { "empty", HR_DTYPE_BF16, 2, { 0, 5 }, 32, 32 },
    { "flags", HR_DTYPE_BOOL, 1, { 4 }, 32, 36 },
    { "i32", HR_DTYPE_I32, 8, { 1, 1, 1, 1, 1, 1, 1, 2 }, 36, 44 },
    { "f64", HR_DTYPE_F64, 1, { 2 }, 44, 60 },
    { "i16", HR_DTYPE_I16, 1, { 5 }, 60, 70 },
    { "i8", HR_DTYPE_I8, 1, { 3 }, 70, 73 },
    { "u8", HR_DTYPE_U8, 1, { 7 }, 73, 80 },
    { "after.hole", HR_DTYPE_U8, 1, { 8 }, 84, 92 },
};

static void
check_valid(const HrSafetensors *st, const char *label, const uint8_t *data_area)
{
    size_t n = G_N_ELEMENTS(valid_tensors);
    HR_CHECK(hr_safetensors_n_tensors(st) == n, "%zu tensors, expected %zu", hr_safetensors_n_tensors(st), n);
    for (size_t i = 0; i < n && i < hr_safetensors_n_tensors(st); i++) {
        const HrTensor *t = hr_safetensors_tensor(st, i);
        const WantTensor *w = &valid_tensors[i];
        HR_CHECK(strcmp(t->name, w->name) == 0, "tensor %zu is '%s', expected '%s' (header order)", i, t->name,
                 w->name);
        HR_CHECK(t->dtype == w->dtype, "%s: dtype %s", w->name, hr_dtype_name(t->dtype));
        HR_CHECK(t->n_dims == w->n_dims, "%s: %d dims", w->name, t->n_dims);
        for (int d = 0; d < w->n_dims && d < t->n_dims; d++)
            HR_CHECK(t->shape[d] == w->shape[d], "%s: shape[%d] = %" G_GINT64_FORMAT, w->name, d, t->shape[d]);
        HR_CHECK(t->n_bytes == w->end - w->begin, "%s: %zu bytes", w->name, t->n_bytes);
        HR_CHECK((int64_t)t->n_bytes == hr_tensor_numel(t) * (int64_t)hr_dtype_size(t->dtype), "%s: numel",
                 w->name);
        if (data_area)
            HR_CHECK((const uint8_t *)t->data == data_area + w->begin, "%s: data pointer", w->name);
        for (size_t k = 0; k < t->n_bytes; k++)
            HR_CHECK(((const uint8_t *)t->data)[k] == (uint8_t)(w->begin + k), "%s: byte %zu", w->name, k);
        HR_CHECK(strcmp(t->file, label) == 0, "%s: file '%s', expected '%s'", w->name, t->file, label);
        HR_CHECK(hr_safetensors_find(st, w->name) == t, "find('%s')", w->name);
    }
    HR_CHECK(hr_safetensors_tensor(st, n) == NULL, "index past the end");
    HR_CHECK(hr_safetensors_find(st, "missing") == NULL, "find missing");
    HR_CHECK(hr_safetensors_find(st, "__metadata__") == NULL, "__metadata__ is not a tensor");
    const HrTensor *scalar = hr_safetensors_find(st, "scalar");
    HR_CHECK(scalar && hr_tensor_numel(scalar) == 1, "0-d numel is 1");
    const HrTensor *empty = hr_safetensors_find(st, "empty");
    HR_CHECK(empty && hr_tensor_numel(empty) == 0, "empty numel is 0");
    const char *fmt = hr_safetensors_metadata(st, "format");
    HR_CHECK(fmt && strcmp(fmt, "pt") == 0, "metadata format = %s", fmt ? fmt : "(null)");
    const char *note = hr_safetensors_metadata(st, "note");
    HR_CHECK(note && strcmp(note, "a \"quoted\" caf\xc3\xa9 \xf0\x9f\x98\x80\n") == 0, "metadata note = %s",
             note ? note : "(null)");
    HR_CHECK(hr_safetensors_metadata(st, "missing") == NULL, "missing metadata");
}

static void
test_dtypes(void)
{
    static const struct {
        HrDType dt;
        const char *name;
        size_t size;
    } want[] = {
        { HR_DTYPE_F32, "F32", 4 }, { HR_DTYPE_F16, "F16", 2 }, { HR_DTYPE_BF16, "BF16", 2 },
        { HR_DTYPE_I32, "I32", 4 }, { HR_DTYPE_F64, "F64", 8 }, { HR_DTYPE_I64, "I64", 8 },
        { HR_DTYPE_I16, "I16", 2 }, { HR_DTYPE_I8, "I8", 1 },   { HR_DTYPE_U8, "U8", 1 },
        { HR_DTYPE_BOOL, "BOOL", 1 },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(want); i++) {
        HR_CHECK(hr_dtype_size(want[i].dt) == want[i].size, "size of %s", want[i].name);
        HR_CHECK(strcmp(hr_dtype_name(want[i].dt), want[i].name) == 0, "name of %s", want[i].name);
    }
    HR_CHECK(hr_dtype_size((HrDType)99) == 0, "size of a bad dtype");
    HR_CHECK(hr_dtype_name((HrDType)99) != NULL, "name of a bad dtype");
}

static void
test_valid_memory(void)
{
    for (int pad = 0; pad < 2; pad++) {
        uint8_t data[VALID_DATA_LEN];
        for (size_t i = 0; i < sizeof data; i++)
            data[i] = (uint8_t)i;
        GByteArray *b = image_new(valid_header, data, sizeof data, pad);
        void *copy = g_memdup2(b->data, b->len);
        HrSafetensors *st = NULL;
        HrError err = { 0 };
        HrStatus s = hr_safetensors_parse_memory(copy, b->len, "mem.safetensors", &st, &err);
        HR_CHECK(s == HR_OK, "valid file (pad %d): %s", pad, err.message);
        if (s == HR_OK) {
            size_t hlen = b->len - 8 - VALID_DATA_LEN;
            check_valid(st, "mem.safetensors", (const uint8_t *)copy + 8 + hlen);
        }
        hr_safetensors_free(st);
        g_free(copy);
        g_byte_array_unref(b);
    }

    /* Whitespace of every JSON kind around the tokens, and trailing padding. */
    const char *spaced = " \n{ \"__metadata__\" : { } ,\r\n\t\"x\" : { \"dtype\" : \"F32\" , \"shape\" : [ 2 ] ,"
                         " \"data_offsets\" : [ 0 , 8 ] } }      \n   ";
    GByteArray *b = image_counting(spaced, 8);
    HrSafetensors *st = NULL;
    HrError err = { 0 };
    HR_CHECK(hr_safetensors_parse_memory(b->data, b->len, NULL, &st, &err) == HR_OK, "spaced: %s", err.message);
    HR_CHECK(hr_safetensors_n_tensors(st) == 1, "spaced: one tensor");
    HR_CHECK(st && strcmp(hr_safetensors_tensor(st, 0)->file, "<memory>") == 0, "default label");
    hr_safetensors_free(st);
    g_byte_array_unref(b);

    /* No tensors at all, and trailing bytes after the last tensor. */
    const char *headers[] = { "{}", "{\"__metadata__\":{\"a\":\"b\"}}", "        {}" };
    for (size_t i = 0; i < G_N_ELEMENTS(headers); i++) {
        b = image_counting(headers[i], i * 5);
        st = NULL;
        HR_CHECK(hr_safetensors_parse_memory(b->data, b->len, "empty.safetensors", &st, &err) == HR_OK,
                 "'%s': %s", headers[i], err.message);
        HR_CHECK(hr_safetensors_n_tensors(st) == 0, "'%s': no tensors", headers[i]);
        hr_safetensors_free(st);
        g_byte_array_unref(b);
    }

    /* NULL-safety of the accessors. */
    hr_safetensors_free(NULL);
    HR_CHECK(hr_safetensors_n_tensors(NULL) == 0, "n_tensors(NULL)");
    HR_CHECK(hr_safetensors_find(NULL, "x") == NULL, "find(NULL)");
    HR_CHECK(hr_safetensors_parse_memory(NULL, 4, "x", &st, &err) == HR_ERR_INVALID_ARG, "NULL data");
}

static void
test_valid_file(void)
{
    char *dir = make_dir("valid");
    GByteArray *b = image_counting(valid_header, VALID_DATA_LEN);
    char *path = write_image(dir, "valid.safetensors", b);
    HrSafetensors *st = NULL;
    HrError err = { 0 };
    HrStatus s = hr_safetensors_open(path, &st, &err);
    HR_CHECK(s == HR_OK, "open valid: %s", err.message);
    if (s == HR_OK)
        check_valid(st, path, NULL);
    /* The mapping outlives nothing else: free and reopen. */
    hr_safetensors_free(st);
    g_byte_array_unref(b);
    g_free(path);
    g_free(dir);
}

/* ------------------------------------------------------- malformed input */

static void
test_truncated(void)
{
    GByteArray *b = image_counting(valid_header, VALID_DATA_LEN);
    char *dir = make_dir("truncated");
    /* Every prefix, in memory (exact-size copies) and, for a spread of
     * lengths, as files on disk. */
    for (size_t len = 0; len < b->len; len++) {
        char what[64];
        g_snprintf(what, sizeof what, "prefix of %zu bytes", len);
        expect_bad_bytes(what, b->data, len, HR_ERR_FORMAT, NULL);
        if (len < 16 || len % 17 == 0 || len > b->len - 12) {
            char *name = g_strdup_printf("t%zu.safetensors", len);
            char *path = write_file(dir, name, b->data, len);
            HrSafetensors *st = NULL;
            HrError err = { 0 };
            HrStatus s = hr_safetensors_open(path, &st, &err);
            HR_CHECK(check_error(what, s, &err, HR_ERR_FORMAT, path, NULL), "%s (file)", what);
            HR_CHECK(st == NULL, "%s", what);
            g_free(path);
            g_free(name);
        }
    }
    /* Lengths that cut the data area name the tensor that runs past it. */
    expect_bad_bytes("cut in the data", b->data, b->len - 1, HR_ERR_FORMAT, "'after.hole'", "[84, 92]",
                     "91-byte data area", NULL);
    expect_bad_bytes("cut in the header", b->data, 40, HR_ERR_FORMAT, "header length", "40-byte file", NULL);
    expect_bad_bytes("empty", "", 0, HR_ERR_FORMAT, "empty", NULL);
    expect_bad_bytes("7 bytes", "\x01\0\0\0\0\0\0", 7, HR_ERR_FORMAT, "7 bytes", NULL);
    g_free(dir);
    g_byte_array_unref(b);
}

static void
test_header_length(void)
{
    /* Header length one past the file. */
    GByteArray *b = image_counting("{}", 0);
    b->data[0] = (uint8_t)(b->len - 8 + 1);
    expect_bad_bytes("header length + 1", b->data, b->len, HR_ERR_FORMAT, "header length 9", NULL);
    memset(b->data, 0xff, 8);
    expect_bad_bytes("header length 2^64-1", b->data, b->len, HR_ERR_FORMAT, "18446744073709551615", NULL);
    memset(b->data, 0, 8);
    b->data[7] = 0x80;
    expect_bad_bytes("header length 2^63", b->data, b->len, HR_ERR_FORMAT, "9223372036854775808", NULL);
    memset(b->data, 0, 8);
    expect_bad_bytes("header length 0", b->data, b->len, HR_ERR_FORMAT, "empty", NULL);
    g_byte_array_unref(b);

    /* Over the 100 MB limit, inside a (sparse) file big enough to hold it. */
    char *dir = make_dir("huge");
    char *path = g_build_filename(dir, "huge.safetensors", NULL);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    uint64_t hlen = 100 * 1000 * 1000 + 1;
    uint8_t len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (uint8_t)(hlen >> (8 * i));
    bool made = fd >= 0 && write(fd, len8, 8) == 8 && ftruncate(fd, (off_t)(hlen + 64)) == 0;
    if (fd >= 0)
        close(fd);
    HR_CHECK(made, "cannot make the sparse file %s", path);
    if (made) {
        HrSafetensors *st = NULL;
        HrError err = { 0 };
        HrStatus s = hr_safetensors_open(path, &st, &err);
        HR_CHECK(check_error("header over 100 MB", s, &err, HR_ERR_FORMAT, path, "100000001", "limit", NULL),
                 "huge header");
        hr_safetensors_free(st);
    }
    g_unlink(path);
    g_free(path);
    g_free(dir);
}

#define T(name, dtype, shape, offsets) \
    "\"" name "\":{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":" offsets "}"

static void
test_bad_json(void)
{
    const HrStatus F = HR_ERR_FORMAT;
    expect_bad_header("not JSON", "hello, world", 0, F, "not valid", NULL);
    expect_bad_header("bad JSON", "{\"a\":}", 0, F, "not valid", NULL);
    expect_bad_header("bare key", "{a:1}", 0, F, "not valid", NULL);
    expect_bad_header("unclosed", "{\"a\":{\"dtype\":\"F32\"", 0, F, "not valid", NULL);
    expect_bad_header("unbalanced", "{\"a\":[}", 0, F, "not valid", NULL);
    expect_bad_header("array", "[1, 2, 3]", 0, F, "not a JSON object", NULL);
    expect_bad_header("string", "\"x\"", 0, F, "not a JSON object", NULL);
    expect_bad_header("number", "42", 0, F, "not a JSON object", NULL);
    expect_bad_header("spaces only", "        ", 0, F, "empty", NULL);
    expect_bad_header("two objects", "{} {}", 0, F, "after the end", NULL);
    expect_bad_header("trailing garbage", "{}x", 0, F, "after the end", NULL);
    expect_bad_header("comment", "{/* c */}", 0, F, "unexpected character", NULL);
    expect_bad_header("var", "var x = {};", 0, F, "not a JSON object", NULL);
    expect_bad_header("single quotes", "{'a':1}", 0, F, "unexpected character", NULL);
    expect_bad_header("trailing comma", "{\"__metadata__\":{},}", 0, F, "not valid", NULL);
    expect_bad_header("invalid UTF-8", "{\"a\xff\":1}", 0, F, "UTF-8", NULL);
    expect_bad_header("BOM", "\xef\xbb\xbf{}", 0, F, "not a JSON object", NULL);
    expect_bad_header("control char", "{\"a\tb\":1}", 0, F, "control character", NULL);
    expect_bad_header("bad escape", "{\"a\\qb\":1}", 0, F, "invalid escape", NULL);
    expect_bad_header("octal escape", "{\"a\\101\":1}", 0, F, "invalid escape", NULL);
    expect_bad_header("short \\u", "{\"a\\u12\":1}", 0, F, "\\u escape", NULL);
    expect_bad_header("\\u0000", "{\"a\\u0000b\":1}", 0, F, "\\u0000", NULL);
    expect_bad_header("lone high surrogate", "{\"a\\ud800\":1}", 0, F, "surrogate", NULL);
    expect_bad_header("lone low surrogate", "{\"a\\udc00\":1}", 0, F, "surrogate", NULL);
    expect_bad_header("bad surrogate pair", "{\"a\\ud800\\u0041\":1}", 0, F, "surrogate", NULL);
    expect_bad_header("hex number", "{\"a\":0x10}", 0, F, "number", NULL);
    expect_bad_header("leading zero", "{\"a\":012}", 0, F, "number", NULL);
    expect_bad_header("plus", "{\"a\":+1}", 0, F, "unexpected character", NULL);
    expect_bad_header("bad literal", "{\"a\":truex}", 0, F, "unexpected word", NULL);
    expect_bad_header("bad literal", "{\"a\":nul}", 0, F, "unexpected word", NULL);
    GString *deep = g_string_new("{\"a\":");
    for (int i = 0; i < 100; i++)
        g_string_append_c(deep, '[');
    for (int i = 0; i < 100; i++)
        g_string_append_c(deep, ']');
    g_string_append_c(deep, '}');
    expect_bad_header("deep nesting", deep->str, 0, F, "nested more than", NULL);
    g_string_free(deep, TRUE);

    /* A NUL inside the header: the bytes after it would otherwise be lost. */
    GByteArray *b = image_counting("{\"__metadata__\":{}}   ", 0);
    b->data[8 + 18] = '\0';
    expect_bad_bytes("NUL in header", b->data, b->len, F, "NUL byte at file offset 26", NULL);
    g_byte_array_unref(b);

    /* Duplicate keys: json-glib would keep the last silently. */
    expect_bad_header("duplicate tensor",
                      "{" T("w", "F32", "[1]", "[0,4]") "," T("w", "F32", "[1]", "[4,8]") "}", 8, F,
                      "duplicate key 'w'", NULL);
    expect_bad_header("duplicate tensor, escaped",
                      "{" T("w", "F32", "[1]", "[0,4]") "," T("\\u0077", "F32", "[1]", "[4,8]") "}", 8, F,
                      "duplicate key 'w'", NULL);
    expect_bad_header("duplicate field", "{\"w\":{\"dtype\":\"F32\",\"dtype\":\"I8\",\"shape\":[1],"
                      "\"data_offsets\":[0,4]}}", 4, F, "duplicate key 'dtype'", NULL);
}

static void
test_bad_tensors(void)
{
    const HrStatus F = HR_ERR_FORMAT;
    expect_bad_header("unknown dtype", "{" T("w.q", "F8_E4M3", "[4]", "[0,4]") "}", 4, HR_ERR_UNSUPPORTED,
                      "'w.q'", "F8_E4M3", NULL);
    expect_bad_header("lowercase dtype", "{" T("w.q", "f32", "[1]", "[0,4]") "}", 4, HR_ERR_UNSUPPORTED,
                      "'w.q'", "f32", NULL);
    expect_bad_header("dtype not a string", "{\"w\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                      F, "'w'", "\"dtype\" is not a string", NULL);
    expect_bad_header("missing dtype", "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, F, "'w'",
                      "\"dtype\" is missing", NULL);
    expect_bad_header("missing shape", "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, F, "'w'",
                      "\"shape\" is missing", NULL);
    expect_bad_header("missing offsets", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, F, "'w'",
                      "\"data_offsets\" is missing", NULL);
    expect_bad_header("tensor not an object", "{\"w\":[1,2]}", 4, F, "'w'", "not a JSON object", NULL);
    expect_bad_header("tensor null", "{\"w\":null}", 4, F, "'w'", "not a JSON object", NULL);
    expect_bad_header("shape not an array", "{" T("w", "F32", "4", "[0,16]") "}", 16, F, "'w'",
                      "\"shape\" is not an array", NULL);
    expect_bad_header("negative shape", "{" T("w", "F32", "[-1,4]", "[0,16]") "}", 16, F, "'w'", "shape[0]",
                      NULL);
    expect_bad_header("fractional shape", "{" T("w", "F32", "[2.0]", "[0,8]") "}", 8, F, "'w'", "shape[0]",
                      NULL);
    expect_bad_header("string shape", "{" T("w", "F32", "[\"2\"]", "[0,8]") "}", 8, F, "'w'", "shape[0]",
                      NULL);
    expect_bad_header("shape overflow",
                      "{" T("big", "F32", "[4294967296,4294967296,16]", "[0,16]") "}", 16, F, "'big'",
                      "[4294967296, 4294967296, 16]", "overflow", NULL);
    expect_bad_header("byte-size overflow",
                      "{" T("big", "F64", "[2305843009213693952]", "[0,16]") "}", 16, F, "'big'", "overflow",
                      NULL);
    expect_bad_header("partial product overflow before a 0",
                      "{" T("big", "F32", "[4611686018427387904,3,0]", "[0,0]") "}", 16, F, "'big'", "overflow",
                      NULL);
    expect_bad_header("shape integer out of range",
                      "{" T("big", "F32", "[18446744073709551616]", "[0,16]") "}", 16, F, "out of range", NULL);
    expect_bad_header("too many dims", "{" T("w", "U8", "[1,1,1,1,1,1,1,1,1]", "[0,1]") "}", 1,
                      HR_ERR_UNSUPPORTED, "'w'", "9 dimensions", NULL);
    expect_bad_header("offsets past the end", "{" T("w", "F32", "[2]", "[8,16]") "}", 12, F, "'w'",
                      "[8, 16]", "12-byte data area", NULL);
    expect_bad_header("begin > end", "{" T("w", "F32", "[0]", "[8,4]") "}", 12, F, "'w'", "[8, 4]", NULL);
    expect_bad_header("offsets 2^64-1",
                      "{" T("w", "F32", "[1]", "[0,18446744073709551615]") "}", 12, F, "out of range", NULL);
    expect_bad_header("offsets -2^64+1 (json-glib wraps it to 1)",
                      "{" T("w", "U8", "[1]", "[0,-18446744073709551615]") "}", 12, F, "out of range", NULL);
    expect_bad_header("negative offset", "{" T("w", "U8", "[1]", "[-1,0]") "}", 12, F, "'w'",
                      "non-negative integers", NULL);
    expect_bad_header("fractional offset", "{" T("w", "U8", "[1]", "[0,1.5]") "}", 12, F, "'w'",
                      "non-negative integers", NULL);
    expect_bad_header("exponent offset", "{" T("w", "U8", "[100]", "[0,1e2]") "}", 100, F, "'w'",
                      "non-negative integers", NULL);
    expect_bad_header("one offset", "{" T("w", "U8", "[1]", "[0]") "}", 12, F, "'w'", "two integers", NULL);
    expect_bad_header("three offsets", "{" T("w", "U8", "[1]", "[0,1,2]") "}", 12, F, "'w'", "two integers",
                      NULL);
    expect_bad_header("offsets not an array", "{" T("w", "U8", "[1]", "{}") "}", 12, F, "'w'", "two integers",
                      NULL);
    expect_bad_header("size mismatch",
                      "{" T("model.layers.0.mlp.up_proj.weight", "F16", "[64,172]", "[0,100]") "}", 100, F,
                      LABEL ": tensor 'model.layers.0.mlp.up_proj.weight': data_offsets [0, 100] hold 100 "
                      "bytes but F16 [64, 172] needs 22016", NULL);
    expect_bad_header("overlap",
                      "{" T("a", "F32", "[4]", "[0,16]") "," T("b", "F32", "[2]", "[8,16]") "}", 16, F,
                      "'a'", "'b'", "overlap", NULL);
    expect_bad_header("overlap, header out of order",
                      "{" T("b", "F32", "[2]", "[12,20]") "," T("c", "U8", "[1]", "[30,31]") ","
                      T("a", "F32", "[4]", "[0,16]") "}", 32, F, "'a'", "'b'", "overlap", NULL);
    expect_bad_header("overlap with a long earlier tensor",
                      "{" T("long", "U8", "[30]", "[0,30]") "," T("x", "U8", "[2]", "[10,12]") ","
                      T("y", "U8", "[2]", "[20,22]") "}", 32, F, "'long'", "'x'", "overlap", NULL);
    expect_bad_header("same offsets",
                      "{" T("a", "F32", "[1]", "[0,4]") "," T("b", "I32", "[1]", "[0,4]") "}", 4, F, "overlap",
                      NULL);
    expect_bad_header("empty tensor inside another",
                      "{" T("a", "F32", "[2]", "[0,8]") "," T("e", "F32", "[0]", "[4,4]") "}", 8, F, "overlap",
                      NULL);
    expect_bad_header("metadata not an object", "{\"__metadata__\":[\"a\"]}", 0, F, "__metadata__", NULL);
    expect_bad_header("metadata value not a string", "{\"__metadata__\":{\"n\":1}}", 0, F, "__metadata__",
                      "'n'", NULL);
    expect_bad_header("metadata value null", "{\"__metadata__\":{\"n\":null}}", 0, F, "__metadata__", NULL);

    /* Adjacent and zero-size tensors at shared boundaries do not overlap. */
    GByteArray *b = image_counting("{" T("a", "F32", "[1]", "[0,4]") "," T("e", "F32", "[0]", "[4,4]") ","
                                   T("z", "F32", "[0]", "[0,0]") "," T("b", "F32", "[1]", "[4,8]") "}", 8);
    HrSafetensors *st = NULL;
    HrError err = { 0 };
    HR_CHECK(hr_safetensors_parse_memory(b->data, b->len, "adj", &st, &err) == HR_OK, "adjacent: %s",
             err.message);
    hr_safetensors_free(st);
    g_byte_array_unref(b);
}

static void
test_open_errors(void)
{
    char *dir = make_dir("open-errors");
    HrSafetensors *st = NULL;
    HrError err = { 0 };
    HrStatus s = hr_safetensors_open(dir, &st, &err);
    HR_CHECK(check_error("directory", s, &err, HR_ERR_IO, dir, "directory", NULL), "directory");

    char *missing = g_build_filename(dir, "missing.safetensors", NULL);
    s = hr_safetensors_open(missing, &st, &err);
    HR_CHECK(check_error("missing", s, &err, HR_ERR_IO, missing, "No such file", NULL), "missing");

    char *empty = write_file(dir, "empty.safetensors", "", 0);
    s = hr_safetensors_open(empty, &st, &err);
    HR_CHECK(check_error("empty file", s, &err, HR_ERR_FORMAT, empty, "empty", NULL), "empty file");

    char *tiny = write_file(dir, "tiny.safetensors", "\x02\0\0", 3);
    s = hr_safetensors_open(tiny, &st, &err);
    HR_CHECK(check_error("3-byte file", s, &err, HR_ERR_FORMAT, tiny, "3 bytes", NULL), "3-byte file");

    char *fifo = g_build_filename(dir, "fifo.safetensors", NULL);
    if (mkfifo(fifo, 0644) == 0) {
        s = hr_safetensors_open(fifo, &st, &err);
        HR_CHECK(check_error("fifo", s, &err, HR_ERR_IO, fifo, "not a regular file", NULL), "fifo");
    }

    GByteArray *b = image_counting("{}", 0);
    char *noperm = write_image(dir, "noperm.safetensors", b);
    g_chmod(noperm, 0);
    if (geteuid() != 0) {  /* root reads it anyway */
        s = hr_safetensors_open(noperm, &st, &err);
        HR_CHECK(check_error("unreadable", s, &err, HR_ERR_IO, noperm, "Permission denied", NULL), "unreadable");
    }
    g_chmod(noperm, 0644);
    HR_CHECK(st == NULL, "no file object on failure");

    HR_CHECK(hr_safetensors_open(NULL, &st, &err) == HR_ERR_INVALID_ARG, "NULL path");
    g_byte_array_unref(b);
    g_free(noperm);
    g_free(fifo);
    g_free(tiny);
    g_free(empty);
    g_free(missing);
    g_free(dir);
}

/* ------------------------------------------------------ model directories */

static void
write_counting(const char *dir, const char *name, const char *header, size_t data_len)
{
    GByteArray *b = image_counting(header, data_len);
    g_free(write_image(dir, name, b));
    g_byte_array_unref(b);
}

#define SHARD1 "model-00001-of-00002.safetensors"
#define SHARD2 "model-00002-of-00002.safetensors"

static void
write_index(const char *dir, const char *json)
{
    g_free(write_file(dir, "model.safetensors.index.json", json, strlen(json)));
}

/* Two shards: t1, t2 in the first; t3 and "extra" (not in the map) in the second. */
static char *
sharded_dir(const char *name)
{
    char *dir = make_dir(name);
    write_counting(dir, SHARD1, "{" T("t1", "F32", "[2]", "[0,8]") "," T("t2", "U8", "[3]", "[8,11]") "}", 11);
    write_counting(dir, SHARD2, "{" T("extra", "I8", "[1]", "[0,1]") "," T("t3", "F16", "[2,2]", "[1,9]") "}", 9);
    return dir;
}

#define GOOD_INDEX                                                                                       \
    "{\"metadata\":{\"total_size\":20},\"weight_map\":{\"t3\":\"" SHARD2 "\",\"t1\":\"" SHARD1 "\",\"t2\":\"" \
    SHARD1 "\"}}"

static void G_GNUC_NULL_TERMINATED
expect_bad_dir(const char *what, const char *dir, HrStatus want, ...)
{
    HrTensorSet *set = NULL;
    HrError err = { 0 };
    HrStatus s = hr_tensor_set_open_dir(dir, &set, &err);
    va_list ap;
    va_start(ap, want);
    bool ok = check_error_v(what, s, &err, want, ap);
    va_end(ap);
    HR_CHECK(ok, "%s", what);
    HR_CHECK(set == NULL || s == HR_OK, "%s: set on failure", what);
    hr_tensor_set_free(set);
}

static void
test_sharded(void)
{
    char *dir = sharded_dir("sharded");
    write_index(dir, GOOD_INDEX);
    HrTensorSet *set = NULL;
    HrError err = { 0 };
    HrStatus s = hr_tensor_set_open_dir(dir, &set, &err);
    HR_CHECK(s == HR_OK, "sharded: %s", err.message);
    HR_CHECK(hr_tensor_set_count(set) == 4, "sharded: %zu tensors", hr_tensor_set_count(set));
    static const char *order[] = { "t1", "t2", "extra", "t3" };  /* shards by name, then header order */
    char *p1 = g_build_filename(dir, SHARD1, NULL), *p2 = g_build_filename(dir, SHARD2, NULL);
    for (size_t i = 0; i < 4 && i < hr_tensor_set_count(set); i++) {
        const HrTensor *t = hr_tensor_set_get(set, i);
        HR_CHECK(strcmp(t->name, order[i]) == 0, "tensor %zu is %s", i, t->name);
        HR_CHECK(hr_tensor_set_find(set, order[i]) == t, "find %s", order[i]);
        HR_CHECK(strcmp(t->file, i < 2 ? p1 : p2) == 0, "%s is in %s", t->name, t->file);
    }
    const HrTensor *t3 = hr_tensor_set_find(set, "t3");
    HR_CHECK(t3 && t3->dtype == HR_DTYPE_F16 && t3->n_dims == 2 && ((const uint8_t *)t3->data)[0] == 1,
             "t3 read back");
    HR_CHECK(hr_tensor_set_find(set, "nope") == NULL, "find missing");
    HR_CHECK(hr_tensor_set_get(set, 4) == NULL, "get past the end");
    hr_tensor_set_free(set);
    g_free(p1);
    g_free(p2);

    /* A shard named in the map but absent. */
    write_index(dir, "{\"weight_map\":{\"t1\":\"" SHARD1 "\",\"t4\":\"model-00003-of-00003.safetensors\"}}");
    expect_bad_dir("missing shard", dir, HR_ERR_IO, "model.safetensors.index.json",
                   "model-00003-of-00003.safetensors", "No such file", NULL);

    /* Shard names must be plain names inside the directory. */
    const char *escapes[] = { "../" SHARD1, "sub/" SHARD1, "..", ".", "", "/etc/passwd", "./" SHARD1 };
    for (size_t i = 0; i < G_N_ELEMENTS(escapes); i++) {
        char *json = g_strdup_printf("{\"weight_map\":{\"t1\":\"%s\"}}", escapes[i]);
        write_index(dir, json);
        char what[64];
        g_snprintf(what, sizeof what, "shard '%s'", escapes[i]);
        expect_bad_dir(what, dir, HR_ERR_FORMAT, "'t1'", "plain file name", NULL);
        g_free(json);
    }

    /* A tensor mapped to the shard that does not hold it. */
    write_index(dir, "{\"weight_map\":{\"t1\":\"" SHARD2 "\",\"t2\":\"" SHARD1 "\",\"t3\":\"" SHARD2 "\"}}");
    expect_bad_dir("wrong shard", dir, HR_ERR_FORMAT, "'t1'", SHARD2 ", but it is in", SHARD1, NULL);
    /* A tensor no shard holds. */
    write_index(dir, "{\"weight_map\":{\"ghost\":\"" SHARD2 "\",\"t3\":\"" SHARD2 "\"}}");
    expect_bad_dir("tensor in no shard", dir, HR_ERR_FORMAT, "'ghost'", "does not hold it", NULL);

    /* Broken index files. */
    write_index(dir, "{\"weight_map\":[]}");
    expect_bad_dir("weight_map array", dir, HR_ERR_FORMAT, "weight_map", NULL);
    write_index(dir, "{\"metadata\":{}}");
    expect_bad_dir("no weight_map", dir, HR_ERR_FORMAT, "weight_map", NULL);
    write_index(dir, "{\"weight_map\":{}}");
    expect_bad_dir("empty weight_map", dir, HR_ERR_FORMAT, "empty", NULL);
    write_index(dir, "{\"weight_map\":{\"t1\":3}}");
    expect_bad_dir("shard not a string", dir, HR_ERR_FORMAT, "'t1'", NULL);
    write_index(dir, "{\"weight_map\":{\"t1\":\"" SHARD1 "\",\"t1\":\"" SHARD2 "\"}}");
    expect_bad_dir("index duplicate key", dir, HR_ERR_FORMAT, "duplicate key 't1'", NULL);
    write_index(dir, "{\"weight_map\":");
    expect_bad_dir("index truncated", dir, HR_ERR_FORMAT, "model.safetensors.index.json", NULL);
    write_index(dir, "");
    expect_bad_dir("index empty", dir, HR_ERR_FORMAT, "model.safetensors.index.json", NULL);

    /* The same tensor in two shards. */
    write_counting(dir, SHARD2, "{" T("t1", "F32", "[2]", "[0,8]") "," T("t3", "F16", "[2,2]", "[8,16]") "}", 16);
    write_index(dir, GOOD_INDEX);
    expect_bad_dir("tensor in two shards", dir, HR_ERR_FORMAT, "'t1'", SHARD1, SHARD2, NULL);

    /* A broken shard: its own error, with the index named. */
    write_counting(dir, SHARD2, "{" T("t3", "F16", "[2,2]", "[0,8]") "}", 7);
    expect_bad_dir("broken shard", dir, HR_ERR_FORMAT, SHARD2, "'t3'", NULL);
    g_free(dir);
}

static void
test_dirs(void)
{
    /* model.safetensors wins over other files. */
    char *dir = make_dir("single");
    write_counting(dir, "model.safetensors", "{" T("w", "F32", "[2]", "[0,8]") "}", 8);
    write_counting(dir, "stray.safetensors", "garbage", 0);
    HrTensorSet *set = NULL;
    HrError err = { 0 };
    HR_CHECK(hr_tensor_set_open_dir(dir, &set, &err) == HR_OK, "single: %s", err.message);
    HR_CHECK(hr_tensor_set_count(set) == 1 && hr_tensor_set_find(set, "w"), "single: w");
    hr_tensor_set_free(set);
    g_free(dir);

    /* Otherwise every *.safetensors, sorted by name; dot files and
     * directories skipped. */
    dir = make_dir("glob");
    write_counting(dir, "b.safetensors", "{" T("b1", "U8", "[1]", "[0,1]") "}", 1);
    write_counting(dir, "a.safetensors", "{" T("a1", "U8", "[1]", "[0,1]") "," T("a2", "U8", "[1]", "[1,2]") "}", 2);
    write_counting(dir, "._a.safetensors", "junk", 0);
    write_counting(dir, "notes.txt", "junk", 0);
    g_free(make_dir("glob/sub.safetensors"));
    set = NULL;
    HR_CHECK(hr_tensor_set_open_dir(dir, &set, &err) == HR_OK, "glob: %s", err.message);
    HR_CHECK(hr_tensor_set_count(set) == 3, "glob: %zu tensors", hr_tensor_set_count(set));
    const char *order[] = { "a1", "a2", "b1" };
    for (size_t i = 0; i < 3 && i < hr_tensor_set_count(set); i++)
        HR_CHECK(strcmp(hr_tensor_set_get(set, i)->name, order[i]) == 0, "glob order %zu", i);
    hr_tensor_set_free(set);

    /* A name in two files of the glob. */
    write_counting(dir, "c.safetensors", "{" T("a2", "U8", "[1]", "[0,1]") "}", 1);
    expect_bad_dir("glob duplicate", dir, HR_ERR_FORMAT, "'a2'", "a.safetensors", "c.safetensors", NULL);
    g_free(dir);

    dir = make_dir("none");
    write_counting(dir, "config.json", "{}", 0);
    char *want = g_strdup_printf("no *.safetensors in %s", dir);
    expect_bad_dir("no safetensors", dir, HR_ERR_IO, want, NULL);
    g_free(want);
    char *missing = g_build_filename(dir, "missing", NULL);
    expect_bad_dir("missing dir", missing, HR_ERR_IO, missing, NULL);
    char *file = g_build_filename(dir, "config.json", NULL);
    expect_bad_dir("dir is a file", file, HR_ERR_IO, "not a directory", NULL);
    g_free(file);
    g_free(missing);
    g_free(dir);

    HR_CHECK(hr_tensor_set_count(NULL) == 0, "count(NULL)");
    hr_tensor_set_free(NULL);
}

int
main(void)
{
    GError *error = NULL;
    tmp_root = g_dir_make_tmp("hearth-safetensors-XXXXXX", &error);
    if (!tmp_root) {
        fprintf(stderr, "%s\n", error->message);
        return 1;
    }
    test_dtypes();
    test_valid_memory();
    test_valid_file();
    test_truncated();
    test_header_length();
    test_bad_json();
    test_bad_tensors();
    test_open_errors();
    test_sharded();
    test_dirs();
    remove_tree(tmp_root);
    g_free(tmp_root);
    return hr_test_result();
}
