/* safetensors.c — mmap'd, validated safetensors files and model directories.
 *
 * A file is validated completely before anything is handed out:
 *
 *   1. The 8-byte little-endian header length N: 8 + N <= file size and
 *      N <= 100 MB.
 *   2. The header bytes: no NUL, valid UTF-8, and strict JSON as far as the
 *      tokens go (json_strict_check below). json-glib 1.6 is lenient and has
 *      rough edges on odd input — it accepts comments, hex and octal numbers,
 *      "var x = ...", octal string escapes; wraps integers past 2^64; mishandles
 *      lone UTF-16 surrogates; recurses without a depth limit; keeps the last
 *      of duplicate keys after a linear search (quadratic on hostile input).
 *      The pre-check rejects all of that, so json-glib only ever sees strict
 *      JSON whose integers fit in int64, at most 64 levels deep, with no
 *      duplicate keys in any object. json-glib then builds the tree.
 *   3. The tree: a JSON object; "__metadata__", if present, an object of
 *      strings; every other member a tensor {"dtype", "shape", "data_offsets"}
 *      (other members are ignored, as the reference implementation does) with
 *      a known dtype, at most HR_MAX_DIMS non-negative integer dimensions whose
 *      product (times the dtype size) does not overflow, offsets
 *      0 <= begin <= end <= data area size, and end - begin == numel x size.
 *   4. No two tensors overlap (sorted by begin, each must start at or after
 *      the furthest end seen so far).
 *
 * Tensors are kept in header order (the order of the JSON members in the
 * file); lookup by name is through a hash table.
 *
 * A model directory (HrTensorSet) is the files that make it up, tensors in
 * file order within each file, files in the order described at
 * hr_tensor_set_open_dir.
 */
#include "safetensors.h"
#include "hr-json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "gguf-model.h"
#include "gguf.h"
#include "model-config.h"

#define HEADER_MAX ((uint64_t)100 * 1000 * 1000)  /* 100 MB, as the reference implementation */
#define INDEX_MAX ((int64_t)100 * 1000 * 1000)
#define INDEX_NAME "model.safetensors.index.json"
#define SINGLE_NAME "model.safetensors"

/* ---------------------------------------------------------------- dtypes */

static const struct {
    const char *name;
    size_t size;
} dtype_info[] = {
    [HR_DTYPE_F32] = { "F32", 4 },
    [HR_DTYPE_F16] = { "F16", 2 },
    [HR_DTYPE_BF16] = { "BF16", 2 },
    [HR_DTYPE_I32] = { "I32", 4 },
    [HR_DTYPE_F64] = { "F64", 8 },
    [HR_DTYPE_I64] = { "I64", 8 },
    [HR_DTYPE_I16] = { "I16", 2 },
    [HR_DTYPE_I8] = { "I8", 1 },
    [HR_DTYPE_U8] = { "U8", 1 },
    [HR_DTYPE_BOOL] = { "BOOL", 1 },
};

#define N_DTYPES G_N_ELEMENTS(dtype_info)

size_t
hr_dtype_size(HrDType dt)
{
    return (unsigned)dt < N_DTYPES ? dtype_info[dt].size : 0;
}

const char *
hr_dtype_name(HrDType dt)
{
    if (dt == HR_DTYPE_GGML)
        return "GGML";
    return (unsigned)dt < N_DTYPES ? dtype_info[dt].name : "?";
}

const char *
hr_tensor_type_name(const HrTensor *t)
{
    if (t->dtype == HR_DTYPE_GGML) {
        const char *n = hr_ggml_type_name(t->ggml_type);
        return n ? n : "an unknown GGUF type";
    }
    return hr_dtype_name(t->dtype);
}

static bool
dtype_from_name(const char *name, HrDType *out)
{
    for (unsigned i = 0; i < N_DTYPES; i++) {
        if (strcmp(name, dtype_info[i].name) == 0) {
            *out = (HrDType)i;
            return true;
        }
    }
    return false;
}

int64_t
hr_tensor_numel(const HrTensor *t)
{
    /* Loading checked that every partial product fits in int64; unsigned
     * arithmetic keeps a hand-made HrTensor from being undefined behaviour. */
    uint64_t n = 1;
    for (int i = 0; i < t->n_dims; i++)
        n *= (uint64_t)t->shape[i];
    return (int64_t)n;
}

/* ------------------------------------------------------------ one file */

struct HrSafetensors {
    char *label;
    void *map;             /* the mmap'd file, or NULL for parse_memory */
    size_t map_len;
    HrTensor *tensors;
    size_t n_tensors;
    GHashTable *by_name;   /* name -> HrTensor *; keys are the tensors' names */
    GHashTable *metadata;  /* owned key -> owned value */
};

static void
format_shape(char *buf, size_t len, const int64_t *shape, int n_dims)
{
    size_t used = 0;
    buf[0] = '\0';
    used += (size_t)g_snprintf(buf, len, "[");
    for (int i = 0; i < n_dims && used < len; i++)
        used += (size_t)g_snprintf(buf + used, len - used, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (used < len)
        g_snprintf(buf + used, len - used, "]");
}

/* A JSON integer >= 0 (json-glib gives doubles for fractions and exponents). */
static bool
node_uint(JsonNode *node, uint64_t *out)
{
    if (!node || !JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_INT64)
        return false;
    gint64 v = json_node_get_int(node);
    if (v < 0)
        return false;
    *out = (uint64_t)v;
    return true;
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
    return 0;
}

static HrStatus
parse_metadata(HrSafetensors *st, JsonNode *node, HrError *err)
{
    if (!JSON_NODE_HOLDS_OBJECT(node))
        return hr_error_set(err, HR_ERR_FORMAT, "%s: \"__metadata__\" is not a JSON object", st->label);
    JsonObject *obj = json_node_get_object(node);
    GList *members = json_object_get_members(obj);
    HrStatus status = HR_OK;
    for (GList *l = members; l; l = l->next) {
        const char *key = l->data;
        JsonNode *v = json_object_get_member(obj, key);
        if (!JSON_NODE_HOLDS_VALUE(v) || json_node_get_value_type(v) != G_TYPE_STRING) {
            status = hr_error_set(err, HR_ERR_FORMAT, "%s: \"__metadata__\" value '%s' is not a string",
                                  st->label, key);
            break;
        }
        g_hash_table_replace(st->metadata, g_strdup(key), g_strdup(json_node_get_string(v)));
    }
    g_list_free(members);
    return status;
}

/* Fill t from the tensor's JSON description; span gets its offsets. */
static HrStatus
parse_tensor(HrSafetensors *st, const char *name, JsonNode *node, const uint8_t *data_area,
             uint64_t data_len, HrTensor *t, Span *span, HrError *err)
{
    const char *f = st->label;
    if (!JSON_NODE_HOLDS_OBJECT(node))
        return hr_error_set(err, HR_ERR_FORMAT, "%s: tensor '%s': description is not a JSON object", f, name);
    JsonObject *obj = json_node_get_object(node);

    JsonNode *dn = json_object_get_member(obj, "dtype");
    if (!dn)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: tensor '%s': \"dtype\" is missing", f, name);
    if (!JSON_NODE_HOLDS_VALUE(dn) || json_node_get_value_type(dn) != G_TYPE_STRING)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: tensor '%s': \"dtype\" is not a string", f, name);
    const char *dtype = json_node_get_string(dn);
    if (!dtype_from_name(dtype, &t->dtype))
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s, which Hearth does not "
                            "read (it reads F32 F16 BF16 I32 F64 I64 I16 I8 U8 BOOL)", f, name, dtype);
    size_t elem = hr_dtype_size(t->dtype);

    JsonNode *sn = json_object_get_member(obj, "shape");
    if (!sn)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: tensor '%s': \"shape\" is missing", f, name);
    if (!JSON_NODE_HOLDS_ARRAY(sn))
        return hr_error_set(err, HR_ERR_FORMAT, "%s: tensor '%s': \"shape\" is not an array", f, name);
    JsonArray *sa = json_node_get_array(sn);
    guint nd = json_array_get_length(sa);
    if (nd > HR_MAX_DIMS)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "%s: tensor '%s' has %u dimensions; at most %d are "
                            "supported", f, name, nd, HR_MAX_DIMS);
    t->n_dims = (int)nd;
    int64_t numel = 1;
    bool overflow = false;  /* any partial product past INT64_MAX, even if a later 0 */
    for (guint d = 0; d < nd; d++) {
        uint64_t v;
        if (!node_uint(json_array_get_element(sa, d), &v))
            return hr_error_set(err, HR_ERR_FORMAT, "%s: tensor '%s': shape[%u] is not a non-negative "
                                "integer", f, name, d);
        t->shape[d] = (int64_t)v;
        overflow |= __builtin_mul_overflow(numel, t->shape[d], &numel);
    }
    char shape[256];
    format_shape(shape, sizeof shape, t->shape, t->n_dims);
    uint64_t need;
    if (overflow || __builtin_mul_overflow((uint64_t)numel, (uint64_t)elem, &need))
        return hr_error_set(err, HR_ERR_FORMAT, "%s: tensor '%s': shape %s is too large (its size "
                            "overflows 64 bits)", f, name, shape);

    JsonNode *on = json_object_get_member(obj, "data_offsets");
    if (!on)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: tensor '%s': \"data_offsets\" is missing", f, name);
    if (!JSON_NODE_HOLDS_ARRAY(on) || json_array_get_length(json_node_get_array(on)) != 2)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: tensor '%s': \"data_offsets\" is not an array of "
                            "two integers", f, name);
    JsonArray *oa = json_node_get_array(on);
    uint64_t begin, end;
    if (!node_uint(json_array_get_element(oa, 0), &begin) || !node_uint(json_array_get_element(oa, 1), &end))
        return hr_error_set(err, HR_ERR_FORMAT, "%s: tensor '%s': \"data_offsets\" must be two "
                            "non-negative integers", f, name);
    if (begin > end)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                            "] begin after they end", f, name, begin, end);
    if (end > data_len)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                            "] run past the end of the %" PRIu64 "-byte data area (the file is "
                            "truncated or corrupt)", f, name, begin, end, data_len);
    if (end - begin != need)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                            "] hold %" PRIu64 " bytes but %s %s needs %" PRIu64, f, name, begin, end,
                            end - begin, dtype, shape, need);
    t->data = data_area + begin;
    t->n_bytes = (size_t)need;
    t->file = st->label;
    span->begin = begin;
    span->end = end;
    return HR_OK;
}

static HrStatus
parse_image(HrSafetensors *st, const uint8_t *base, size_t len, HrError *err)
{
    const char *f = st->label;
    if (len == 0)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: empty file (a safetensors file starts with an "
                            "8-byte header length)", f);
    if (len < 8)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: the file is %zu bytes, too short for the 8-byte "
                            "header length of a safetensors file", f, len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | base[i];
    if (hlen > (uint64_t)(len - 8))
        return hr_error_set(err, HR_ERR_FORMAT, "%s: header length %" PRIu64 " runs past the end of the "
                            "%zu-byte file (truncated, or not a safetensors file)", f, hlen, len);
    if (hlen > HEADER_MAX)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: header length %" PRIu64 " is over the limit of %"
                            PRIu64 " bytes", f, hlen, HEADER_MAX);
    const char *header = (const char *)base + 8;
    size_t n = (size_t)hlen;
    const char *nul = memchr(header, '\0', n);
    if (nul)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: the header has a NUL byte at file offset %zu",
                            f, (size_t)(nul - (const char *)base));

    char why[512];
    JsonParser *parser = hr_json_parse(header, n, true, why, sizeof why);
    if (!parser)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: the header is not valid safetensors JSON: %s", f, why);

    const uint8_t *data_area = base + 8 + n;
    uint64_t data_len = (uint64_t)(len - 8 - n);
    JsonObject *root = json_node_get_object(json_parser_get_root(parser));
    GList *members = json_object_get_members(root);
    guint n_members = json_object_get_size(root);
    st->tensors = g_new0(HrTensor, n_members);
    Span *spans = g_new0(Span, n_members);
    HrStatus status = HR_OK;
    for (GList *l = members; l && status == HR_OK; l = l->next) {
        const char *name = l->data;
        JsonNode *node = json_object_get_member(root, name);
        if (strcmp(name, "__metadata__") == 0) {
            status = parse_metadata(st, node, err);
            continue;
        }
        HrTensor *t = &st->tensors[st->n_tensors];
        status = parse_tensor(st, name, node, data_area, data_len, t, &spans[st->n_tensors], err);
        if (status != HR_OK)
            break;
        t->name = g_strdup(name);
        spans[st->n_tensors].index = st->n_tensors;
        st->n_tensors++;
        if (!g_hash_table_insert(st->by_name, (gpointer)t->name, t))
            status = hr_error_set(err, HR_ERR_FORMAT, "%s: tensor '%s' appears twice", f, name);
    }
    g_list_free(members);
    g_object_unref(parser);

    if (status == HR_OK && st->n_tensors > 1) {
        qsort(spans, st->n_tensors, sizeof *spans, span_cmp);
        size_t far = 0;  /* the span ending furthest so far */
        for (size_t i = 1; i < st->n_tensors; i++) {
            if (spans[i].begin < spans[far].end) {
                const HrTensor *a = &st->tensors[spans[far].index], *b = &st->tensors[spans[i].index];
                status = hr_error_set(err, HR_ERR_FORMAT, "%s: tensors '%s' (data_offsets [%" PRIu64 ", %"
                                      PRIu64 "]) and '%s' (data_offsets [%" PRIu64 ", %" PRIu64 "]) overlap",
                                      f, a->name, spans[far].begin, spans[far].end, b->name,
                                      spans[i].begin, spans[i].end);
                break;
            }
            if (spans[i].end > spans[far].end)
                far = i;
        }
    }
    g_free(spans);
    return status;
}

static HrSafetensors *
safetensors_new(const char *label)
{
    HrSafetensors *st = g_new0(HrSafetensors, 1);
    st->label = g_strdup(label);
    st->by_name = g_hash_table_new(g_str_hash, g_str_equal);
    st->metadata = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    return st;
}

void
hr_safetensors_free(HrSafetensors *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->n_tensors; i++)
        g_free((char *)st->tensors[i].name);
    g_free(st->tensors);
    g_hash_table_destroy(st->by_name);
    g_hash_table_destroy(st->metadata);
    if (st->map)
        munmap(st->map, st->map_len);
    g_free(st->label);
    g_free(st);
}

HrStatus
hr_safetensors_parse_memory(const void *data, size_t len, const char *label, HrSafetensors **out,
                            HrError *err)
{
    if (!out)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "hr_safetensors_parse_memory: out is NULL");
    *out = NULL;
    if (!label)
        label = "<memory>";
    if (!data && len > 0)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "%s: no data", label);
    HrSafetensors *st = safetensors_new(label);
    HrStatus status = parse_image(st, data, len, err);
    if (status != HR_OK) {
        hr_safetensors_free(st);
        return status;
    }
    *out = st;
    return HR_OK;
}

HrStatus
hr_safetensors_open(const char *path, HrSafetensors **out, HrError *err)
{
    if (!out)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "hr_safetensors_open: out is NULL");
    *out = NULL;
    if (!path)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "hr_safetensors_open: path is NULL");
    void *map = NULL;
    size_t len = 0;
    HrStatus mst =
        hr_file_map(path, "safetensors", "a safetensors file starts with an 8-byte header length", &map, &len, err);
    if (mst != HR_OK)
        return mst;

    HrSafetensors *st = safetensors_new(path);
    st->map = map;
    st->map_len = len;
    HrStatus status = parse_image(st, map, len, err);
    if (status != HR_OK) {
        hr_safetensors_free(st);
        return status;
    }
    *out = st;
    return HR_OK;
}

size_t
hr_safetensors_n_tensors(const HrSafetensors *st)
{
    return st ? st->n_tensors : 0;
}

const HrTensor *
hr_safetensors_tensor(const HrSafetensors *st, size_t i)
{
    return st && i < st->n_tensors ? &st->tensors[i] : NULL;
}

const HrTensor *
hr_safetensors_find(const HrSafetensors *st, const char *name)
{
    return st && name ? g_hash_table_lookup(st->by_name, name) : NULL;
}

const char *
hr_safetensors_metadata(const HrSafetensors *st, const char *key)
{
    return st && key ? g_hash_table_lookup(st->metadata, key) : NULL;
}

/* ------------------------------------------------------- model directory */

static gint
str_cmp(gconstpointer a, gconstpointer b)
{
    return strcmp(a, b);
}

/* For g_ptr_array_sort, which passes pointers to the elements. */
static gint
path_cmp(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
free_file(gpointer st)
{
    hr_safetensors_free(st);
}

typedef struct {
    void *data;
    void (*free_func)(void *);
} Kept;

struct HrTensorSet {
    GPtrArray *files;     /* HrSafetensors *, owned */
    GPtrArray *tensors;   /* const HrTensor *, in file order */
    GHashTable *by_name;  /* name -> const HrTensor * */
    GPtrArray *added;     /* HrTensor * copies made by hr_tensor_set_add_tensor */
    GArray *kept;         /* Kept, freed last, in reverse order */
};

void
hr_tensor_set_free(HrTensorSet *set)
{
    if (!set)
        return;
    g_hash_table_destroy(set->by_name);
    g_ptr_array_free(set->tensors, TRUE);
    g_ptr_array_free(set->files, TRUE);
    g_ptr_array_free(set->added, TRUE);
    for (guint i = set->kept->len; i-- > 0;) {
        Kept *k = &g_array_index(set->kept, Kept, i);
        k->free_func(k->data);
    }
    g_array_free(set->kept, TRUE);
    g_free(set);
}

static HrTensorSet *
tensor_set_new(void)
{
    HrTensorSet *set = g_new0(HrTensorSet, 1);
    set->files = g_ptr_array_new_with_free_func(free_file);
    set->tensors = g_ptr_array_new();
    set->by_name = g_hash_table_new(g_str_hash, g_str_equal);
    set->added = g_ptr_array_new_with_free_func(g_free);
    set->kept = g_array_new(FALSE, FALSE, sizeof(Kept));
    return set;
}

HrTensorSet *
hr_tensor_set_new(void)
{
    return tensor_set_new();
}

HrStatus
hr_tensor_set_add_tensor(HrTensorSet *set, const HrTensor *t, HrError *err)
{
    const HrTensor *prev = g_hash_table_lookup(set->by_name, t->name);
    if (prev)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: tensor '%s' appears twice", t->file, t->name);
    HrTensor *copy = g_memdup2(t, sizeof *t);
    g_ptr_array_add(set->added, copy);
    g_hash_table_insert(set->by_name, (gpointer)copy->name, copy);
    g_ptr_array_add(set->tensors, copy);
    return HR_OK;
}

void
hr_tensor_set_keep(HrTensorSet *set, void *data, void (*free_func)(void *))
{
    Kept k = { data, free_func };
    g_array_append_val(set->kept, k);
}

/* Take st into the set; a tensor already there from another file is an error. */
static HrStatus
tensor_set_add(HrTensorSet *set, HrSafetensors *st, HrError *err)
{
    g_ptr_array_add(set->files, st);
    for (size_t i = 0; i < st->n_tensors; i++) {
        const HrTensor *t = &st->tensors[i];
        const HrTensor *prev = g_hash_table_lookup(set->by_name, t->name);
        if (prev)
            return hr_error_set(err, HR_ERR_FORMAT, "tensor '%s' is in both %s and %s", t->name, prev->file,
                                t->file);
        g_hash_table_insert(set->by_name, (gpointer)t->name, (gpointer)t);
        g_ptr_array_add(set->tensors, (gpointer)t);
    }
    return HR_OK;
}

static HrStatus
tensor_set_add_path(HrTensorSet *set, const char *path, HrError *err)
{
    HrSafetensors *st = NULL;
    HrStatus status = hr_safetensors_open(path, &st, err);
    if (status != HR_OK)
        return status;
    return tensor_set_add(set, st, err);
}

static bool
plain_file_name(const char *name)
{
    return name[0] != '\0' && strchr(name, '/') == NULL && strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

static HrStatus
tensor_set_load_index(HrTensorSet *set, const char *dir, const char *index_path, HrError *err)
{
    GStatBuf sb;
    if (g_stat(index_path, &sb) != 0) {
        int e = errno;
        return hr_error_set(err, HR_ERR_IO, "%s: cannot stat: %s", index_path, g_strerror(e));
    }
    if (!S_ISREG(sb.st_mode))
        return hr_error_set(err, HR_ERR_IO, "%s: not a regular file", index_path);
    if (sb.st_size > INDEX_MAX)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: %" PRId64 " bytes is over the limit of %" PRId64,
                            index_path, (int64_t)sb.st_size, INDEX_MAX);
    char *text = NULL;
    gsize len = 0;
    GError *gerr = NULL;
    if (!g_file_get_contents(index_path, &text, &len, &gerr)) {
        HrStatus s = hr_error_set(err, HR_ERR_IO, "%s", gerr->message);
        g_error_free(gerr);
        return s;
    }
    HrStatus status = HR_OK;
    char why[512];
    JsonParser *parser = NULL;
    GHashTable *shards = g_hash_table_new(g_str_hash, g_str_equal);  /* name -> HrSafetensors * */
    GList *names = NULL, *shard_names = NULL;
    const char *nul = memchr(text, '\0', len);
    if (nul) {
        status = hr_error_set(err, HR_ERR_FORMAT, "%s: NUL byte at offset %zu", index_path,
                              (size_t)(nul - text));
        goto out;
    }
    parser = hr_json_parse(text, len, true, why, sizeof why);
    if (!parser) {
        status = hr_error_set(err, HR_ERR_FORMAT, "%s: not valid JSON: %s", index_path, why);
        goto out;
    }
    JsonObject *root = json_node_get_object(json_parser_get_root(parser));
    JsonNode *wm = json_object_get_member(root, "weight_map");
    if (!wm || !JSON_NODE_HOLDS_OBJECT(wm)) {
        status = hr_error_set(err, HR_ERR_FORMAT, "%s: \"weight_map\" is missing or not an object", index_path);
        goto out;
    }
    JsonObject *map = json_node_get_object(wm);
    names = json_object_get_members(map);
    if (!names) {
        status = hr_error_set(err, HR_ERR_FORMAT, "%s: \"weight_map\" is empty", index_path);
        goto out;
    }
    for (GList *l = names; l; l = l->next) {
        JsonNode *v = json_object_get_member(map, l->data);
        if (!JSON_NODE_HOLDS_VALUE(v) || json_node_get_value_type(v) != G_TYPE_STRING) {
            status = hr_error_set(err, HR_ERR_FORMAT, "%s: \"weight_map\" entry for tensor '%s' is not a "
                                  "file name string", index_path, (const char *)l->data);
            goto out;
        }
        const char *shard = json_node_get_string(v);
        if (!plain_file_name(shard)) {
            status = hr_error_set(err, HR_ERR_FORMAT, "%s: tensor '%s' is mapped to '%s', which is not a "
                                  "plain file name inside %s", index_path, (const char *)l->data, shard, dir);
            goto out;
        }
        if (!g_hash_table_contains(shards, shard)) {
            g_hash_table_insert(shards, (gpointer)shard, NULL);
            shard_names = g_list_prepend(shard_names, (gpointer)shard);
        }
    }
    shard_names = g_list_sort(shard_names, str_cmp);
    for (GList *l = shard_names; l; l = l->next) {
        char *path = g_build_filename(dir, l->data, NULL);
        HrSafetensors *st = NULL;
        status = hr_safetensors_open(path, &st, err);
        g_free(path);
        if (status != HR_OK) {
            hr_error_prefix(err, "%s names shard '%s': ", index_path, (const char *)l->data);
            goto out;
        }
        g_hash_table_insert(shards, l->data, st);
        status = tensor_set_add(set, st, err);
        if (status != HR_OK)
            goto out;
    }
    for (GList *l = names; l; l = l->next) {
        const char *tensor = l->data;
        const char *shard = json_object_get_string_member(map, tensor);
        HrSafetensors *st = g_hash_table_lookup(shards, shard);
        if (hr_safetensors_find(st, tensor))
            continue;
        const HrTensor *elsewhere = g_hash_table_lookup(set->by_name, tensor);
        if (elsewhere)
            status = hr_error_set(err, HR_ERR_FORMAT, "%s maps tensor '%s' to %s, but it is in %s", index_path,
                                  tensor, st->label, elsewhere->file);
        else
            status = hr_error_set(err, HR_ERR_FORMAT, "%s maps tensor '%s' to %s, which does not hold it",
                                  index_path, tensor, st->label);
        goto out;
    }
out:
    g_list_free(shard_names);
    g_list_free(names);
    g_hash_table_destroy(shards);
    if (parser)
        g_object_unref(parser);
    g_free(text);
    return status;
}

static HrStatus
tensor_set_load_glob(HrTensorSet *set, const char *dir, HrError *err)
{
    GError *gerr = NULL;
    GDir *d = g_dir_open(dir, 0, &gerr);
    if (!d) {
        HrStatus s = hr_error_set(err, HR_ERR_IO, "%s", gerr->message);
        g_error_free(gerr);
        return s;
    }
    GPtrArray *paths = g_ptr_array_new_with_free_func(g_free);
    const char *name;
    while ((name = g_dir_read_name(d))) {
        /* Dot files are skipped: "._x.safetensors" are macOS resource forks. */
        if (name[0] == '.' || !g_str_has_suffix(name, ".safetensors"))
            continue;
        char *path = g_build_filename(dir, name, NULL);
        if (g_file_test(path, G_FILE_TEST_IS_DIR))
            g_free(path);
        else
            g_ptr_array_add(paths, path);
    }
    g_dir_close(d);
    g_ptr_array_sort(paths, path_cmp);
    HrStatus status = HR_OK;
    if (paths->len == 0)
        status = hr_error_set(err, HR_ERR_IO, "no *.safetensors in %s", dir);
    for (guint i = 0; i < paths->len && status == HR_OK; i++)
        status = tensor_set_add_path(set, paths->pdata[i], err);
    g_ptr_array_free(paths, TRUE);
    return status;
}

/* An image-text checkpoint (Gemma 3 4B and up) holds its text model under
 * language_model.model.* (transformers before 4.52: language_model.lm_head
 * too) or model.language_model.*: seen as the text model's own names, so the
 * model, the quantizer and the app read it as a causal LM (the vision
 * tower's tensors keep theirs, unused). */
static void
text_model_names(HrTensorSet *set)
{
    static const char *const from[][2] = {
        { "language_model.model.", "model." },
        { "language_model.lm_head.", "lm_head." },
        { "model.language_model.", "model." },
    };
    if (hr_tensor_set_find(set, "model.embed_tokens.weight") ||
        (!hr_tensor_set_find(set, "language_model.model.embed_tokens.weight") &&
         !hr_tensor_set_find(set, "model.language_model.embed_tokens.weight")))
        return;
    for (guint i = 0; i < set->tensors->len; i++) {
        const HrTensor *t = set->tensors->pdata[i];
        for (size_t k = 0; k < G_N_ELEMENTS(from); k++) {
            if (!g_str_has_prefix(t->name, from[k][0]))
                continue;
            char *name = g_strconcat(from[k][1], t->name + strlen(from[k][0]), NULL);
            if (g_hash_table_contains(set->by_name, name)) {   /* both layouts: left as they are */
                g_free(name);
                break;
            }
            hr_tensor_set_keep(set, name, g_free);
            HrTensor *copy = g_memdup2(t, sizeof *t);
            copy->name = name;
            g_ptr_array_add(set->added, copy);
            g_hash_table_remove(set->by_name, t->name);
            g_hash_table_insert(set->by_name, name, copy);
            set->tensors->pdata[i] = copy;
            break;
        }
    }
}

/* Part of a fused linear as a tensor of its own (name kept by the set):
 * rows [r0, r0 + n) of a row-major matrix or vector as a view; columns of an
 * AutoAWQ qweight / qzeros (8 outputs a word) or scales as a copy. */
static HrStatus
add_part(HrTensorSet *set, const HrTensor *t, const char *name, int64_t r0, int64_t n, HrError *err)
{
    HrTensor part = *t;
    part.name = g_strdup(name);
    hr_tensor_set_keep(set, (void *)part.name, g_free);
    const bool packed = g_str_has_suffix(t->name, ".qweight") || g_str_has_suffix(t->name, ".qzeros");
    if (g_str_has_suffix(t->name, ".weight") || g_str_has_suffix(t->name, ".bias")) {
        const size_t row = t->n_bytes / (size_t)t->shape[0];
        part.data = (const uint8_t *)t->data + (size_t)r0 * row;
        part.n_bytes = (size_t)n * row;
        part.shape[0] = n;
    } else {   /* [., N] by columns: scales, or qweight / qzeros 8 a word */
        const int64_t div = packed ? 8 : 1, c0 = r0 / div, nc = n / div, cols = t->shape[1];
        const size_t es = hr_dtype_size(t->dtype);
        if (r0 % div || n % div)
            return hr_error_set(err, HR_ERR_FORMAT, "%s: tensor '%s' cannot be split at output %" PRId64, t->file,
                                t->name, r0);
        uint8_t *copy = g_malloc((size_t)t->shape[0] * (size_t)nc * es);
        for (int64_t r = 0; r < t->shape[0]; r++)
            memcpy(copy + (size_t)r * (size_t)nc * es, (const uint8_t *)t->data + ((size_t)r * (size_t)cols +
                                                                                  (size_t)c0) * es,
                   (size_t)nc * es);
        hr_tensor_set_keep(set, copy, g_free);
        part.data = copy;
        part.n_bytes = (size_t)t->shape[0] * (size_t)nc * es;
        part.shape[1] = nc;
    }
    return hr_tensor_set_add_tensor(set, &part, err);
}

/* A fused linear of a layer (fused: "self_attn.qkv_proj"), if the set has
 * it, replaced by its parts (names beside it, rows each). */
static HrStatus
split_linear(HrTensorSet *set, int layer, const char *fused, const char *const *names, const int64_t *rows,
             int n_parts, HrError *err)
{
    static const char *const suffix[] = { "weight", "bias", "qweight", "qzeros", "scales" };
    int64_t total = 0;
    for (int i = 0; i < n_parts; i++)
        total += rows[i];
    for (size_t k = 0; k < G_N_ELEMENTS(suffix); k++) {
        g_autofree char *name = g_strdup_printf("model.layers.%d.%s.%s", layer, fused, suffix[k]);
        const HrTensor *t = hr_tensor_set_find(set, name);
        if (!t)
            continue;
        const bool by_cols = k >= 2, packed = k == 2 || k == 3;
        const int64_t have = by_cols ? (t->n_dims == 2 ? t->shape[1] * (packed ? 8 : 1) : -1) : t->shape[0];
        if ((t->dtype == HR_DTYPE_GGML && k != 0) || (k == 0 && t->n_dims != 2) || (k == 1 && t->n_dims != 1) ||
            have != total)
            return hr_error_set(err, HR_ERR_FORMAT, "%s: tensor '%s' does not hold the %" PRId64 " outputs the config "
                                "gives its %d parts", t->file, t->name, total, n_parts);
        g_autofree char *parent = g_strndup(name, strlen(name) - strlen(fused) - strlen(suffix[k]) - 1);
        int64_t r0 = 0;
        HrStatus st = HR_OK;
        for (int i = 0; i < n_parts && st == HR_OK; i++) {
            g_autofree char *part = g_strdup_printf("%s%s.%s", parent, names[i], suffix[k]);
            st = add_part(set, t, part, r0, rows[i], err);
            r0 += rows[i];
        }
        if (st != HR_OK)
            return st;
        g_hash_table_remove(set->by_name, t->name);
        g_ptr_array_remove(set->tensors, (gpointer)t);
    }
    return HR_OK;
}

bool
hr_tensor_set_has_fused(const HrTensorSet *set)
{
    return hr_tensor_set_find(set, "model.layers.0.self_attn.qkv_proj.weight") ||
           hr_tensor_set_find(set, "model.layers.0.self_attn.qkv_proj.qweight") ||
           hr_tensor_set_find(set, "model.layers.0.mlp.gate_up_proj.weight") ||
           hr_tensor_set_find(set, "model.layers.0.mlp.gate_up_proj.qweight");
}

HrStatus
hr_tensor_set_split_fused(HrTensorSet *set, const HrModelConfig *cfg, HrError *err)
{
    const int64_t q = (int64_t)cfg->n_heads * cfg->head_dim, kv = (int64_t)cfg->n_kv_heads * cfg->head_dim;
    static const char *const qkv[] = { "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj" };
    static const char *const gate_up[] = { "mlp.gate_proj", "mlp.up_proj" };
    HrStatus st = HR_OK;
    for (int l = 0; st == HR_OK && l < cfg->n_layers; l++) {
        st = split_linear(set, l, "self_attn.qkv_proj", qkv, (const int64_t[]){ q, kv, kv }, 3, err);
        if (st == HR_OK)
            st = split_linear(set, l, "mlp.gate_up_proj", gate_up,
                              (const int64_t[]){ cfg->hidden_dim, cfg->hidden_dim }, 2, err);
    }
    return st;
}

/* The folder's fused linears split, with its config's sizes. */
static HrStatus
split_fused(HrTensorSet *set, const char *dir, HrError *err)
{
    if (!hr_tensor_set_has_fused(set))
        return HR_OK;
    HrModelConfig cfg;
    HrStatus st = hr_model_config_load(dir, &cfg, err);
    return st == HR_OK ? hr_tensor_set_split_fused(set, &cfg, err) : st;
}

HrStatus
hr_tensor_set_open_dir(const char *dir, HrTensorSet **out, HrError *err)
{
    if (!out)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "hr_tensor_set_open_dir: out is NULL");
    *out = NULL;
    if (!dir)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "hr_tensor_set_open_dir: dir is NULL");
    g_autofree char *gguf = NULL;
    HrStatus gst = hr_gguf_resolve(dir, &gguf, err);
    if (gst != HR_OK)
        return gst;
    if (gguf)
        return hr_tensor_set_open_gguf(gguf, out, err);
    if (!g_file_test(dir, G_FILE_TEST_IS_DIR))
        return hr_error_set(err, HR_ERR_IO, "%s: %s", dir,
                            g_file_test(dir, G_FILE_TEST_EXISTS) ? "not a directory" : "no such directory");
    HrTensorSet *set = tensor_set_new();
    char *index_path = g_build_filename(dir, INDEX_NAME, NULL);
    char *single_path = g_build_filename(dir, SINGLE_NAME, NULL);
    HrStatus status;
    if (g_file_test(index_path, G_FILE_TEST_EXISTS))
        status = tensor_set_load_index(set, dir, index_path, err);
    else if (g_file_test(single_path, G_FILE_TEST_EXISTS))
        status = tensor_set_add_path(set, single_path, err);
    else
        status = tensor_set_load_glob(set, dir, err);
    g_free(index_path);
    g_free(single_path);
    if (status != HR_OK) {
        hr_tensor_set_free(set);
        return status;
    }
    text_model_names(set);
    if ((status = split_fused(set, dir, err)) != HR_OK) {
        hr_tensor_set_free(set);
        return status;
    }
    *out = set;
    return HR_OK;
}

size_t
hr_tensor_set_count(const HrTensorSet *set)
{
    return set ? set->tensors->len : 0;
}

const HrTensor *
hr_tensor_set_get(const HrTensorSet *set, size_t i)
{
    return set && i < set->tensors->len ? set->tensors->pdata[i] : NULL;
}

int
hr_tensor_layer(const char *name)
{
    static const char pre[] = "model.layers.";
    if (strncmp(name, pre, sizeof pre - 1) != 0 || !g_ascii_isdigit(name[sizeof pre - 1]))
        return -1;
    char *end = NULL;
    const gint64 l = g_ascii_strtoll(name + sizeof pre - 1, &end, 10);
    return end && *end == '.' && l < G_MAXINT ? (int)l : -1;
}

const HrTensor *
hr_tensor_set_find(const HrTensorSet *set, const char *name)
{
    return set && name ? g_hash_table_lookup(set->by_name, name) : NULL;
}
