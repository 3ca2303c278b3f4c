/* hearth-models.c — the installed models (see hearth-models.h). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gio/gunixmounts.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "hearth-config.h"
#include "hearth-models.h"

#include "gguf-model.h"
#include "gguf.h"
#include "hr-json.h"
#include "model-config.h"
#include "model.h"
#include "safetensors.h"

G_DEFINE_QUARK(hearth-models-error-quark, hearth_models_error)

void
hearth_model_info_free(HearthModelInfo *info)
{
    if (!info)
        return;
    g_free(info->name);
    g_free(info->path);
    g_free(info->architecture);
    g_free(info->model_type);
    g_free(info->format);
    g_free(info->source_repo);
    g_free(info->linked_from);
    g_free(info->problem);
    g_free(info->config);
    g_free(info);
}

void
hearth_recommended_model_free(HearthRecommendedModel *m)
{
    if (!m)
        return;
    g_free(m->repo_id);
    g_free(m->name);
    g_free(m->description);
    g_free(m->format);
    g_free(m);
}

char *
hearth_models_default_dir(void)
{
    const char *env = g_getenv("HEARTH_MODELS_DIR");
    if (env && *env)
        return g_strdup(env);
    return g_build_filename(g_get_user_data_dir(), HEARTH_APP_ID, "models", NULL);
}

char *
hearth_models_resolve_dir(const char *dir)
{
    return dir && *dir ? g_strdup(dir) : hearth_models_default_dir();
}

const char *
hearth_models_check_name(const char *name)
{
    if (!name || !*name)
        return "the name is empty";
    if (name[0] == '.')
        return "the name may not start with '.'";
    if (strchr(name, '/') || strchr(name, '\\'))
        return "the name may not contain '/'";
    if (strlen(name) > 200)
        return "the name is longer than 200 bytes";
    if (!g_utf8_validate(name, -1, NULL))
        return "the name is not valid UTF-8";
    for (const char *p = name; *p; p++)
        if ((unsigned char)*p < 0x20)
            return "the name contains a control character";
    return NULL;
}

/* ---- sizes ---------------------------------------------------------------- */

static guint64
tree_size(const char *path)
{
    GStatBuf st;
    if (g_lstat(path, &st) != 0)
        return 0;
    if (!S_ISDIR(st.st_mode))
        return S_ISREG(st.st_mode) ? (guint64)st.st_size : 0;
    guint64 total = 0;
    GDir *d = g_dir_open(path, 0, NULL);
    if (!d)
        return 0;
    const char *n;
    while ((n = g_dir_read_name(d))) {
        char *child = g_build_filename(path, n, NULL);
        total += tree_size(child);
        g_free(child);
    }
    g_dir_close(d);
    return total;
}

gboolean
hearth_models_remove_tree(const char *path, GError **error)
{
    GStatBuf st;
    if (g_lstat(path, &st) != 0) {
        if (errno == ENOENT)
            return TRUE;
        int e = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "%s: %s", path, g_strerror(e));
        return FALSE;
    }
    if (S_ISDIR(st.st_mode)) {
        GDir *d = g_dir_open(path, 0, error);
        if (!d)
            return FALSE;
        const char *n;
        gboolean ok = TRUE;
        while (ok && (n = g_dir_read_name(d))) {
            char *child = g_build_filename(path, n, NULL);
            ok = hearth_models_remove_tree(child, error);
            g_free(child);
        }
        g_dir_close(d);
        if (!ok)
            return FALSE;
        if (g_rmdir(path) != 0) {
            int e = errno;
            g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "removing %s: %s", path, g_strerror(e));
            return FALSE;
        }
        return TRUE;
    }
    if (g_unlink(path) != 0) {
        int e = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "removing %s: %s", path, g_strerror(e));
        return FALSE;
    }
    return TRUE;
}

/* ---- one model ------------------------------------------------------------ */

static gboolean
dir_has_safetensors(const char *path)
{
    GDir *d = g_dir_open(path, 0, NULL);
    if (!d)
        return FALSE;
    gboolean found = FALSE;
    const char *n;
    while (!found && (n = g_dir_read_name(d)))
        found = g_str_has_suffix(n, ".safetensors");
    g_dir_close(d);
    return found;
}

static int
json_int(JsonObject *o, const char *member, int fallback)
{
    if (!o || !json_object_has_member(o, member))
        return fallback;
    JsonNode *n = json_object_get_member(o, member);
    if (!JSON_NODE_HOLDS_VALUE(n))
        return fallback;
    if (json_node_get_value_type(n) != G_TYPE_INT64)
        return fallback;
    gint64 v = json_node_get_int(n);
    return v >= G_MININT && v <= G_MAXINT ? (int)v : fallback;
}

static const char *
json_str(JsonObject *o, const char *member)
{
    if (!o || !json_object_has_member(o, member))
        return NULL;
    JsonNode *n = json_object_get_member(o, member);
    if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
        return NULL;
    return json_node_get_string(n);
}

static JsonObject *
json_obj(JsonObject *o, const char *member)
{
    if (!o || !json_object_has_member(o, member))
        return NULL;
    JsonNode *n = json_object_get_member(o, member);
    return JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
}

static void
add_problem(HearthModelInfo *info, const char *msg)
{
    if (!info->problem) {
        info->problem = g_strdup(msg);
    } else {
        char *s = g_strdup_printf("%s; %s", info->problem, msg);
        g_free(info->problem);
        info->problem = s;
    }
}

/* Parameters, tensor bytes and the dominant float dtype from the safetensors
 * headers. awq_bits > 0: <prefix>.qweight holds 32/bits params per int32,
 * and qzeros/scales/g_idx are quantization metadata, not parameters. */
static void
count_weights(HearthModelInfo *info, int awq_bits, const char **dtype_name)
{
    HrTensorSet *set = NULL;
    HrError err = { 0 };
    *dtype_name = NULL;
    if (hr_tensor_set_open_dir(info->path, &set, &err) != HR_OK) {
        add_problem(info, err.message);
        return;
    }
    guint64 by_dtype[3] = { 0 }; /* F32, F16, BF16 bytes */
    for (size_t i = 0, n = hr_tensor_set_count(set); i < n; i++) {
        const HrTensor *t = hr_tensor_set_get(set, i);
        guint64 numel = (guint64)hr_tensor_numel(t);
        info->weights_bytes += t->n_bytes;
        if (awq_bits > 0) {
            if (g_str_has_suffix(t->name, ".qweight") && t->dtype == HR_DTYPE_I32) {
                info->n_params += numel * (guint64)(32 / awq_bits);
                continue;
            }
            if (g_str_has_suffix(t->name, ".qzeros") || g_str_has_suffix(t->name, ".scales") ||
                g_str_has_suffix(t->name, ".g_idx"))
                continue;
        }
        info->n_params += numel;
        if (t->dtype == HR_DTYPE_F32)
            by_dtype[0] += t->n_bytes;
        else if (t->dtype == HR_DTYPE_F16)
            by_dtype[1] += t->n_bytes;
        else if (t->dtype == HR_DTYPE_BF16)
            by_dtype[2] += t->n_bytes;
    }
    static const char *names[3] = { "FP32", "FP16", "BF16" };
    int best = -1;
    for (int k = 0; k < 3; k++)
        if (by_dtype[k] > 0 && (best < 0 || by_dtype[k] > by_dtype[best]))
            best = k;
    *dtype_name = best >= 0 ? names[best] : NULL;
    hr_tensor_set_free(set);
}

static void
read_source(HearthModelInfo *info)
{
    g_autofree char *p = g_build_filename(info->path, ".hearth-source.json", NULL);
    g_autoptr(JsonParser) parser = hr_json_load_file_g(p, HR_JSON_CONFIG_MAX, true, NULL);
    if (!parser)
        return;
    JsonNode *root = json_parser_get_root(parser);
    if (root && JSON_NODE_HOLDS_OBJECT(root)) {
        const char *repo = json_str(json_node_get_object(root), "repo");
        if (repo)
            info->source_repo = g_strdup(repo);
        const char *app = json_str(json_node_get_object(root), "linked_from");
        if (app)
            info->linked_from = g_strdup(app);
    }
}

/* llama.cpp's general.file_type names (what users know a GGUF by). */
static const char *
gguf_file_type_name(int64_t ft)
{
    static const char *const names[] = {
        [0] = "F32",     [1] = "F16",     [2] = "Q4_0",    [3] = "Q4_1",    [7] = "Q8_0",    [8] = "Q5_0",
        [9] = "Q5_1",    [10] = "Q2_K",   [11] = "Q3_K_S", [12] = "Q3_K_M", [13] = "Q3_K_L", [14] = "Q4_K_S",
        [15] = "Q4_K_M", [16] = "Q5_K_S", [17] = "Q5_K_M", [18] = "Q6_K",   [32] = "BF16",
    };
    return ft >= 0 && ft < (int64_t)G_N_ELEMENTS(names) ? names[ft] : NULL;
}

/* A GGUF model (a .gguf file, or a folder holding one): the same facts from
 * its metadata and tensors. */
static HearthModelInfo *
gguf_info_load(const char *path, const char *gguf_file, GError **error)
{
    HrGguf *g = NULL;
    HrError err = { 0 };
    if (hr_gguf_open(gguf_file, &g, &err) != HR_OK) {
        g_set_error_literal(error, HEARTH_MODELS_ERROR, HEARTH_MODELS_ERROR_FORMAT, err.message);
        return NULL;
    }
    HearthModelInfo *info = g_new0(HearthModelInfo, 1);
    info->path = g_canonicalize_filename(path, NULL);
    info->name = g_path_get_basename(info->path);
    const char *arch = NULL;
    if (hr_gguf_get_str(g, "general.architecture", &arch))
        info->architecture = g_strdup(arch);
    int64_t ft = -1;
    const char *ftn = hr_gguf_get_int(g, "general.file_type", &ft) ? gguf_file_type_name(ft) : NULL;
    /* else the type holding the most bytes */
    guint64 best_bytes = 0;
    uint32_t best = 0;
    GHashTable *by_type = g_hash_table_new(g_direct_hash, g_direct_equal);
    for (size_t i = 0; i < hr_gguf_n_tensors(g); i++) {
        const HrGgufTensor *t = hr_gguf_tensor(g, i);
        info->n_params += (guint64)hr_gguf_tensor_numel(t);
        info->weights_bytes += t->n_bytes;
        guint64 b = GPOINTER_TO_SIZE(g_hash_table_lookup(by_type, GUINT_TO_POINTER(t->type + 1))) + t->n_bytes;
        g_hash_table_insert(by_type, GUINT_TO_POINTER(t->type + 1), GSIZE_TO_POINTER((gsize)b));
        if (b > best_bytes) {
            best_bytes = b;
            best = t->type;
        }
    }
    g_hash_table_destroy(by_type);
    const char *tn = hr_ggml_type_name(best);
    info->format = g_strdup_printf("GGUF %s", ftn ? ftn : tn ? tn : "?");
    hr_gguf_free(g);
    HrModelConfig mc;
    if (hr_gguf_model_config_load(gguf_file, &mc, &err) == HR_OK) {
        info->supported = TRUE;
        info->config = g_memdup2(&mc, sizeof mc);
        info->n_layers = mc.n_layers;
        info->n_kv_heads = mc.n_kv_heads;
        info->head_dim = mc.head_dim;
        info->max_context = mc.max_pos;
    } else {
        add_problem(info, err.message);
    }
    info->size_on_disk = tree_size(info->path);
    read_source(info);
    return info;
}

HearthModelInfo *
hearth_model_info_load_gguf(const char *file, GError **error)
{
    return gguf_info_load(file, file, error);
}

HearthModelInfo *
hearth_model_info_load(const char *path, GError **error)
{
    g_autofree char *config_path = g_build_filename(path, "config.json", NULL);
    {
        g_autofree char *gguf = NULL;
        HrError gerr = { 0 };
        if (hr_gguf_resolve(path, &gguf, &gerr) != HR_OK) {
            g_set_error_literal(error, HEARTH_MODELS_ERROR, HEARTH_MODELS_ERROR_FORMAT, gerr.message);
            return NULL;
        }
        if (gguf)
            return gguf_info_load(path, gguf, error);
    }
    if (!g_file_test(path, G_FILE_TEST_IS_DIR)) {
        g_set_error(error, HEARTH_MODELS_ERROR, HEARTH_MODELS_ERROR_NOT_FOUND, "%s is not a directory", path);
        return NULL;
    }
    if (!g_file_test(config_path, G_FILE_TEST_IS_REGULAR)) {
        g_set_error(error, HEARTH_MODELS_ERROR, HEARTH_MODELS_ERROR_NOT_A_MODEL,
                    "%s is not a model: it has no config.json", path);
        return NULL;
    }
    if (!dir_has_safetensors(path)) {
        g_set_error(error, HEARTH_MODELS_ERROR, HEARTH_MODELS_ERROR_NOT_A_MODEL,
                    "%s is not a model: it has no *.safetensors weights", path);
        return NULL;
    }
    g_autoptr(GError) jerr = NULL;
    g_autoptr(JsonParser) parser = hr_json_load_file_g(config_path, HR_JSON_CONFIG_MAX, true, &jerr);
    if (!parser) {
        g_set_error_literal(error, HEARTH_MODELS_ERROR, HEARTH_MODELS_ERROR_FORMAT, jerr->message);
        return NULL;
    }
    JsonNode *root = json_parser_get_root(parser);
    if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
        g_set_error(error, HEARTH_MODELS_ERROR, HEARTH_MODELS_ERROR_FORMAT, "%s: not a JSON object", config_path);
        return NULL;
    }
    JsonObject *cfg = json_node_get_object(root);

    HearthModelInfo *info = g_new0(HearthModelInfo, 1);
    info->path = g_canonicalize_filename(path, NULL);
    info->name = g_path_get_basename(info->path);
    info->model_type = g_strdup(json_str(cfg, "model_type"));
    if (json_object_has_member(cfg, "architectures")) {
        JsonNode *a = json_object_get_member(cfg, "architectures");
        if (JSON_NODE_HOLDS_ARRAY(a) && json_array_get_length(json_node_get_array(a)) > 0) {
            JsonNode *first = json_array_get_element(json_node_get_array(a), 0);
            if (JSON_NODE_HOLDS_VALUE(first) && json_node_get_value_type(first) == G_TYPE_STRING)
                info->architecture = g_strdup(json_node_get_string(first));
        }
    }
    if (!info->architecture && info->model_type)
        info->architecture = g_strdup(info->model_type);

    /* Shape of the KV cache: the engine's parser when it accepts the model,
     * else the same fields read directly (so unsupported models still get an
     * estimate). */
    int n_heads = json_int(cfg, "num_attention_heads", 0);
    int dim = json_int(cfg, "hidden_size", 0);
    info->n_layers = json_int(cfg, "num_hidden_layers", 0);
    info->n_kv_heads = json_int(cfg, "num_key_value_heads", n_heads);
    info->head_dim = json_int(cfg, "head_dim", n_heads > 0 ? dim / n_heads : 0);
    info->max_context = json_int(cfg, "max_position_embeddings", 0);
    HrModelConfig mc;
    HrError err = { 0 };
    if (hr_model_config_load(path, &mc, &err) == HR_OK) {
        info->supported = TRUE;
        info->config = g_memdup2(&mc, sizeof mc);
        info->n_layers = mc.n_layers;
        info->n_kv_heads = mc.n_kv_heads;
        info->head_dim = mc.head_dim;
        info->max_context = mc.max_pos;
    } else {
        add_problem(info, err.message);
    }

    /* Format: quantization_config first, else the dominant float dtype. */
    JsonObject *q = json_obj(cfg, "quantization_config");
    const char *method = json_str(q, "quant_method");
    int awq_bits = 0;
    g_autofree char *qformat = NULL;
    if (method && g_ascii_strcasecmp(method, "awq") == 0) {
        awq_bits = json_int(q, "bits", json_int(q, "w_bit", 4));
        if (awq_bits <= 0 || awq_bits > 8 || 32 % awq_bits != 0)
            awq_bits = 4;
        int group = json_int(q, "group_size", json_int(q, "q_group_size", 128));
        if (group > 0)
            qformat = g_strdup_printf("AWQ %d-bit g%d", awq_bits, group);
        else
            qformat = g_strdup_printf("AWQ %d-bit per-channel", awq_bits);
    } else if (method) {
        g_autofree char *up = g_ascii_strup(method, -1);
        qformat = g_strdup_printf("%s (unsupported)", up);
        if (info->supported)
            add_problem(info, "its quantization method is not supported (AWQ only)");
        info->supported = FALSE;
    }
    const char *dtype_name = NULL;
    count_weights(info, awq_bits, &dtype_name);
    if (qformat)
        info->format = g_steal_pointer(&qformat);
    else
        info->format = g_strdup(dtype_name ? dtype_name : "unknown");
    info->size_on_disk = tree_size(info->path);
    read_source(info);
    return info;
}

static int
compare_info(gconstpointer a, gconstpointer b)
{
    const HearthModelInfo *x = *(HearthModelInfo *const *)a, *y = *(HearthModelInfo *const *)b;
    return g_utf8_collate(x->name, y->name);
}

GPtrArray *
hearth_models_list(const char *dir, GError **error)
{
    g_autofree char *root = hearth_models_resolve_dir(dir);
    GPtrArray *list = g_ptr_array_new_with_free_func((GDestroyNotify)hearth_model_info_free);
    GError *derr = NULL;
    GDir *d = g_dir_open(root, 0, &derr);
    if (!d) {
        if (g_error_matches(derr, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
            g_error_free(derr);
            return list;
        }
        g_propagate_prefixed_error(error, derr, "models dir: ");
        g_ptr_array_unref(list);
        return NULL;
    }
    const char *n;
    while ((n = g_dir_read_name(d))) {
        if (n[0] == '.')
            continue;
        g_autofree char *p = g_build_filename(root, n, NULL);
        /* model folders, and .gguf files dropped straight into the folder */
        if (!g_file_test(p, G_FILE_TEST_IS_DIR) &&
            !(g_file_test(p, G_FILE_TEST_IS_REGULAR) && g_str_has_suffix(n, ".gguf")))
            continue;
        GError *e = NULL;
        HearthModelInfo *info = hearth_model_info_load(p, &e);
        if (!info) {
            /* listed, so that it can be seen and deleted: broken, or linked to files another app removed */
            HearthModelInfo probe = { .path = p };
            read_source(&probe);
            if (g_error_matches(e, HEARTH_MODELS_ERROR, HEARTH_MODELS_ERROR_FORMAT) || probe.linked_from) {
                info = g_new0(HearthModelInfo, 1);
                info->name = g_strdup(n);
                info->path = g_strdup(p);
                info->format = g_strdup("unknown");
                info->size_on_disk = tree_size(p);
                info->linked_from = g_steal_pointer(&probe.linked_from);
                info->problem = info->linked_from
                                    ? g_strdup_printf("its files, which %s kept, are gone", info->linked_from)
                                    : g_strdup(e->message);
            }
            g_free(probe.source_repo);
        }
        g_clear_error(&e);
        if (info)
            g_ptr_array_add(list, info);
    }
    g_dir_close(d);
    g_ptr_array_sort(list, compare_info);
    return list;
}

guint64
hearth_models_kv_cache_bytes(int n_layers, int n_kv_heads, int head_dim, int ctx)
{
    if (n_layers <= 0 || n_kv_heads <= 0 || head_dim <= 0 || ctx <= 0)
        return 0;
    return 2ull * (guint64)n_layers * (guint64)n_kv_heads * (guint64)head_dim * (guint64)ctx * 2ull;
}

guint64
hearth_model_info_kv_bytes(const HearthModelInfo *info, int ctx)
{
    if (info->config)
        return ctx > 0 ? hr_model_config_kv_bytes(info->config, ctx) : 0;
    return hearth_models_kv_cache_bytes(info->n_layers, info->n_kv_heads, info->head_dim, ctx);
}

guint64
hearth_model_info_memory_needed(const HearthModelInfo *info, int ctx)
{
    return info->weights_bytes + hearth_model_info_kv_bytes(info, ctx);
}

gboolean
hearth_model_info_fits(const HearthModelInfo *info, int ctx, guint64 available_bytes)
{
    return hearth_model_info_memory_needed(info, ctx) <= available_bytes;
}

/* ---- import / rename / delete -------------------------------------------- */

typedef struct {
    guint64 done, total, file_base;
    HearthModelsCopyProgress progress;
    gpointer user_data;
} CopyState;

static void
on_copy_progress(goffset current, goffset total, gpointer user_data)
{
    CopyState *cs = user_data;
    if (cs->progress)
        cs->progress(cs->file_base + (guint64)current, cs->total, cs->user_data);
}

/* Folders a walk that follows symlinks has entered, by device and inode: a
 * link back up the tree (`ln -s . m/sub`) is entered once, not until the
 * disk is full. FALSE when dir was seen before or the walk is too deep. */
#define WALK_MAX_DEPTH 16

static gboolean
walk_enter(GHashTable *seen, const char *dir, int depth)
{
    GStatBuf st;
    if (depth > WALK_MAX_DEPTH || g_stat(dir, &st) != 0)
        return FALSE;
    char *key = g_strdup_printf("%" G_GUINT64_FORMAT ":%" G_GUINT64_FORMAT, (guint64)st.st_dev, (guint64)st.st_ino);
    if (g_hash_table_contains(seen, key)) {
        g_free(key);
        return FALSE;
    }
    g_hash_table_add(seen, key);
    return TRUE;
}

/* Copy the tree at src into dst (created), following symlinks (a Hugging
 * Face cache snapshot is a folder of links into blobs/), each folder once. */
static gboolean
copy_tree(const char *src, const char *dst, CopyState *cs, GHashTable *seen, int depth, GCancellable *cancellable,
          GError **error)
{
    if (!walk_enter(seen, src, depth))
        return TRUE;
    if (g_mkdir_with_parents(dst, 0755) != 0) {
        int e = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "creating %s: %s", dst, g_strerror(e));
        return FALSE;
    }
    GDir *d = g_dir_open(src, 0, error);
    if (!d)
        return FALSE;
    const char *n;
    gboolean ok = TRUE;
    while (ok && (n = g_dir_read_name(d))) {
        g_autofree char *s = g_build_filename(src, n, NULL);
        g_autofree char *t = g_build_filename(dst, n, NULL);
        if (g_file_test(s, G_FILE_TEST_IS_DIR)) {
            if (n[0] != '.') /* .git, .cache: not part of the model */
                ok = copy_tree(s, t, cs, seen, depth + 1, cancellable, error);
            continue;
        }
        if (!g_file_test(s, G_FILE_TEST_IS_REGULAR))
            continue;
        g_autoptr(GFile) fs = g_file_new_for_path(s);
        g_autoptr(GFile) ft = g_file_new_for_path(t);
        GStatBuf st;
        guint64 size = g_stat(s, &st) == 0 ? (guint64)st.st_size : 0;
        ok = g_file_copy(fs, ft, G_FILE_COPY_OVERWRITE, cancellable, on_copy_progress, cs, error);
        cs->file_base += size;
        if (ok && cs->progress)
            cs->progress(cs->file_base, cs->total, cs->user_data);
    }
    g_dir_close(d);
    return ok;
}

static guint64
tree_size_follow(const char *path, GHashTable *seen, int depth)
{
    GStatBuf st;
    if (g_stat(path, &st) != 0)
        return 0;
    if (!S_ISDIR(st.st_mode))
        return S_ISREG(st.st_mode) ? (guint64)st.st_size : 0;
    if (!walk_enter(seen, path, depth))
        return 0;
    guint64 total = 0;
    GDir *d = g_dir_open(path, 0, NULL);
    if (!d)
        return 0;
    const char *n;
    while ((n = g_dir_read_name(d))) {
        if (n[0] == '.')
            continue;
        char *child = g_build_filename(path, n, NULL);
        total += tree_size_follow(child, seen, depth + 1);
        g_free(child);
    }
    g_dir_close(d);
    return total;
}

static gboolean
ensure_dir(const char *path, GError **error)
{
    if (g_mkdir_with_parents(path, 0755) != 0) {
        int e = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "creating %s: %s", path, g_strerror(e));
        return FALSE;
    }
    return TRUE;
}

/* path is mount or lies below it */
static gboolean
path_under(const char *path, const char *mount)
{
    size_t n = strlen(mount);
    if (n == 1 && mount[0] == '/')
        return TRUE;
    return strncmp(path, mount, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

char *
hearth_models_unmounted_drive(const char *path)
{
    if (!path || !g_path_is_absolute(path))
        return NULL;
    g_autofree char *canon = g_canonicalize_filename(path, NULL);
    /* the deepest file system table entry above path (the root's aside) ... */
    char *found = NULL;
    GList *points = g_unix_mount_points_get(NULL);
    for (GList *l = points; l; l = l->next) {
        const char *mp = g_unix_mount_point_get_mount_path(l->data);
        if (mp && g_path_is_absolute(mp) && strcmp(mp, "/") != 0 && path_under(canon, mp) &&
            (!found || strlen(mp) > strlen(found))) {
            g_free(found);
            found = g_strdup(mp);
        }
    }
    g_list_free_full(points, (GDestroyNotify)g_unix_mount_point_free);
    if (!found)
        return NULL;
    /* ... counts when nothing is mounted there, nor deeper above path (a drive mounted inside it) */
    GList *mounts = g_unix_mounts_get(NULL);
    for (GList *l = mounts; l && found; l = l->next) {
        const char *mp = g_unix_mount_get_mount_path(l->data);
        if (mp && path_under(canon, mp) && path_under(mp, found))
            g_clear_pointer(&found, g_free);
    }
    g_list_free_full(mounts, (GDestroyNotify)g_unix_mount_free);
    return found;
}

gboolean
hearth_models_dir_missing(const char *dir)
{
    if (!g_file_test(dir, G_FILE_TEST_IS_DIR))
        return TRUE;
    g_autofree char *drive = hearth_models_unmounted_drive(dir);
    return drive != NULL;
}

/* The default folder is made with its parents; another one (chosen in Preferences, $HEARTH_MODELS_DIR)
 * only inside a folder that is there, and not on a drive the file system table names that is not mounted:
 * a chosen folder on a drive that is not connected must not become a folder of gigabytes on the disk its
 * mount point is on. */
gboolean
hearth_models_ensure_dir(const char *dir, GError **error)
{
    g_autofree char *root = hearth_models_resolve_dir(dir);
    g_autofree char *data_default = g_build_filename(g_get_user_data_dir(), HEARTH_APP_ID, "models", NULL);
    g_autofree char *env_default = hearth_models_default_dir();
    const gboolean is_default = strcmp(root, data_default) == 0 || strcmp(root, env_default) == 0;
    g_autofree char *drive = is_default ? NULL : hearth_models_unmounted_drive(root);
    if (drive) {
        g_set_error(error, HEARTH_MODELS_ERROR, HEARTH_MODELS_ERROR_NOT_FOUND,
                    "the models folder %s is not there: it is on the drive of %s, which is not mounted; connect "
                    "the drive; or choose another models folder",
                    root, drive);
        return FALSE;
    }
    if (g_file_test(root, G_FILE_TEST_IS_DIR))
        return TRUE;
    if (g_file_test(root, G_FILE_TEST_EXISTS)) {
        g_set_error(error, HEARTH_MODELS_ERROR, HEARTH_MODELS_ERROR_NOT_FOUND,
                    "the models folder %s is a file, not a folder", root);
        return FALSE;
    }
    if (is_default)
        return ensure_dir(root, error);
    g_autofree char *parent = g_path_get_dirname(root);
    if (!g_file_test(parent, G_FILE_TEST_IS_DIR)) {
        g_set_error(error, HEARTH_MODELS_ERROR, HEARTH_MODELS_ERROR_NOT_FOUND,
                    "the models folder %s is not there, nor the folder it goes in: if it is on a drive, connect "
                    "the drive; or choose another models folder", root);
        return FALSE;
    }
    if (g_mkdir(root, 0755) != 0 && errno != EEXIST) {
        int e = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "creating %s: %s", root, g_strerror(e));
        return FALSE;
    }
    return TRUE;
}

char *
hearth_models_import(const char *src, const char *dir, const char *name,
                     HearthModelsCopyProgress progress, gpointer user_data,
                     GCancellable *cancellable, GError **error)
{
    g_autofree char *root = hearth_models_resolve_dir(dir);
    g_autofree char *src_abs = g_canonicalize_filename(src, NULL);
    g_autofree char *base = g_path_get_basename(src_abs);
    /* a single .gguf file becomes a folder of that one file, named after it */
    const gboolean gguf_file = g_file_test(src_abs, G_FILE_TEST_IS_REGULAR) && g_str_has_suffix(base, ".gguf");
    g_autofree char *stem = gguf_file ? g_strndup(base, strlen(base) - 5) : NULL;
    const char *target_name = name ? name : gguf_file ? stem : base;
    const char *why = hearth_models_check_name(target_name);
    if (why) {
        g_set_error(error, HEARTH_MODELS_ERROR, HEARTH_MODELS_ERROR_INVALID_NAME, "'%s': %s", target_name, why);
        return NULL;
    }
    /* It must be a model before anything is copied. */
    g_autoptr(HearthModelInfo) probe = hearth_model_info_load(src_abs, error);
    if (!probe)
        return NULL;
    g_autofree char *final_path = g_build_filename(root, target_name, NULL);
    if (g_file_test(final_path, G_FILE_TEST_EXISTS)) {
        g_set_error(error, HEARTH_MODELS_ERROR, HEARTH_MODELS_ERROR_EXISTS,
                    "a model named '%s' is already installed in %s", target_name, root);
        return NULL;
    }
    if (!hearth_models_ensure_dir(root, error))
        return NULL;
    g_autoptr(HearthWorkDir) work = hearth_models_work_new(root, "import", target_name, error);
    if (!work)
        return NULL;
    g_autofree char *tmp = g_build_filename(hearth_work_dir_path(work), "model", NULL);
    if (!ensure_dir(tmp, error))
        return NULL;
    g_autoptr(GHashTable) seen_size = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_autoptr(GHashTable) seen_copy = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    CopyState cs = { 0, tree_size_follow(src_abs, seen_size, 0), 0, progress, user_data };
    /* refused before the copy rather than when the disk is full */
    {
        g_autoptr(GFile) where = g_file_new_for_path(hearth_work_dir_path(work));
        g_autoptr(GFileInfo) fi = g_file_query_filesystem_info(where, G_FILE_ATTRIBUTE_FILESYSTEM_FREE, NULL, NULL);
        if (fi && g_file_info_has_attribute(fi, G_FILE_ATTRIBUTE_FILESYSTEM_FREE)) {
            guint64 free_bytes = g_file_info_get_attribute_uint64(fi, G_FILE_ATTRIBUTE_FILESYSTEM_FREE);
            if (cs.total + (1u << 20) > free_bytes) {
                g_autofree char *need = g_format_size(cs.total), *have = g_format_size(free_bytes);
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_NO_SPACE,
                            "not enough disk space in %s to import %s: the copy needs %s, %s are free", root,
                            target_name, need, have);
                return NULL;
            }
        }
    }
    if (progress)
        progress(0, cs.total, user_data);
    gboolean copied;
    if (gguf_file) {
        g_autofree char *t = g_build_filename(tmp, base, NULL);
        g_autoptr(GFile) fs = g_file_new_for_path(src_abs);
        g_autoptr(GFile) ft = g_file_new_for_path(t);
        copied = g_file_copy(fs, ft, G_FILE_COPY_NONE, cancellable, on_copy_progress, &cs, error);
        if (copied && progress)
            progress(cs.total, cs.total, user_data);
    } else {
        copied = copy_tree(src_abs, tmp, &cs, seen_copy, 0, cancellable, error);
    }
    if (!copied)
        return NULL;
    if (g_file_test(final_path, G_FILE_TEST_EXISTS) || g_rename(tmp, final_path) != 0) {
        int e = g_file_test(final_path, G_FILE_TEST_EXISTS) ? EEXIST : errno;
        if (e == EEXIST)
            g_set_error(error, HEARTH_MODELS_ERROR, HEARTH_MODELS_ERROR_EXISTS,
                        "a model named '%s' is already installed in %s", target_name, root);
        else
            g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "moving the copy to %s: %s", final_path,
                        g_strerror(e));
        return NULL;
    }
    return g_steal_pointer(&final_path);
}

static char *
model_path(const char *root, const char *name, GError **error)
{
    const char *why = hearth_models_check_name(name);
    if (why) {
        g_set_error(error, HEARTH_MODELS_ERROR, HEARTH_MODELS_ERROR_INVALID_NAME, "'%s': %s", name ? name : "", why);
        return NULL;
    }
    return g_build_filename(root, name, NULL);
}

gboolean
hearth_models_rename(const char *dir, const char *old_name, const char *new_name, GError **error)
{
    g_autofree char *root = hearth_models_resolve_dir(dir);
    g_autofree char *from = model_path(root, old_name, error);
    if (!from)
        return FALSE;
    g_autofree char *to = model_path(root, new_name, error);
    if (!to)
        return FALSE;
    if (!g_file_test(from, G_FILE_TEST_IS_DIR)) {
        g_set_error(error, HEARTH_MODELS_ERROR, HEARTH_MODELS_ERROR_NOT_FOUND, "no model named '%s' in %s",
                    old_name, root);
        return FALSE;
    }
    if (strcmp(old_name, new_name) == 0)
        return TRUE;
    if (g_file_test(to, G_FILE_TEST_EXISTS)) {
        g_set_error(error, HEARTH_MODELS_ERROR, HEARTH_MODELS_ERROR_EXISTS, "a model named '%s' already exists in %s",
                    new_name, root);
        return FALSE;
    }
    if (g_rename(from, to) != 0) {
        int e = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "renaming %s to %s: %s", old_name, new_name,
                    g_strerror(e));
        return FALSE;
    }
    return TRUE;
}

gboolean
hearth_models_delete(const char *dir, const char *name, GError **error)
{
    g_autofree char *root = hearth_models_resolve_dir(dir);
    g_autofree char *path = model_path(root, name, error);
    if (!path)
        return FALSE;
    if (!g_file_test(path, G_FILE_TEST_IS_DIR)) {
        g_set_error(error, HEARTH_MODELS_ERROR, HEARTH_MODELS_ERROR_NOT_FOUND, "no model named '%s' in %s", name,
                    root);
        return FALSE;
    }
    /* Move it out of the list first, so that a failure half-way leaves no
     * half model behind under its name. */
    g_autoptr(HearthWorkDir) work = hearth_models_work_new(root, "delete", name, error);
    if (!work)
        return FALSE;
    g_autofree char *moved = g_build_filename(hearth_work_dir_path(work), name, NULL);
    if (g_rename(path, moved) != 0) {
        int e = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "deleting %s: %s", path, g_strerror(e));
        return FALSE;
    }
    /* out of the list now; a process killed from here on leaves the rest to the next sweep */
    return hearth_models_remove_tree(moved, error);
}

/* ---- work that does not resume --------------------------------------------- */

#define WORK_MARK ".hearth-work"
#define WORK_UNMARKED_AGE_S (10 * 60)

/* A name g_mkdtemp may have made after the prefix: it ends in six letters or digits. */
static gboolean
mkdtemp_name(const char *tail)
{
    size_t n = strlen(tail);
    if (n < 6)
        return FALSE;
    for (size_t i = n - 6; i < n; i++)
        if (!g_ascii_isalnum(tail[i]))
            return FALSE;
    return TRUE;
}

struct HearthWorkDir {
    char *path;
    int fd; /* the folder, open and flock'ed: ours while it is held */
};

HearthWorkDir *
hearth_work_dir_new(const char *parent, const char *prefix, GError **error)
{
    if (!ensure_dir(parent, error))
        return NULL;
    g_autofree char *tmpl = g_strdup_printf("%sXXXXXX", prefix);
    g_autofree char *path = g_build_filename(parent, tmpl, NULL);
    if (!g_mkdtemp_full(path, 0755)) {
        int e = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "creating %s: %s", path, g_strerror(e));
        return NULL;
    }
    /* held before it is marked: a sweep only looks at marked folders, so none can take it in between */
    int fd = g_open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    g_autofree char *mark = g_build_filename(path, WORK_MARK, NULL);
    int e = 0;
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0 || !g_file_set_contents(mark, "", 0, NULL))
        e = errno ? errno : EIO;
    if (e) {
        if (fd >= 0)
            close(fd);
        hearth_models_remove_tree(path, NULL);
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "holding %s: %s", path, g_strerror(e));
        return NULL;
    }
    HearthWorkDir *w = g_new0(HearthWorkDir, 1);
    w->path = g_steal_pointer(&path);
    w->fd = fd;
    return w;
}

const char *
hearth_work_dir_path(const HearthWorkDir *w)
{
    return w->path;
}

void
hearth_work_dir_keep(HearthWorkDir *w)
{
    if (!w)
        return;
    g_autofree char *mark = g_build_filename(w->path, WORK_MARK, NULL);
    g_unlink(mark);
    close(w->fd);
    g_free(w->path);
    g_free(w);
}

void
hearth_work_dir_free(HearthWorkDir *w)
{
    if (!w)
        return;
    hearth_models_remove_tree(w->path, NULL); /* still held: no sweep is in it */
    close(w->fd);
    g_free(w->path);
    g_free(w);
}

guint
hearth_work_dir_sweep(const char *parent, const char *prefix)
{
    GDir *d = g_dir_open(parent, 0, NULL);
    if (!d)
        return 0;
    guint removed = 0;
    const char *n;
    while ((n = g_dir_read_name(d))) {
        if (!g_str_has_prefix(n, prefix))
            continue;
        g_autofree char *path = g_build_filename(parent, n, NULL);
        g_autofree char *mark = g_build_filename(path, WORK_MARK, NULL);
        GStatBuf st, ms;
        if (g_lstat(path, &st) != 0 || !S_ISDIR(st.st_mode))
            continue;
        if (g_lstat(mark, &ms) != 0 || !S_ISREG(ms.st_mode)) {
            /* Not ours, or not marked yet; but a process killed between making its folder and marking it
             * left it empty, under a name hearth_work_dir_new gives: rmdir takes only an empty folder, and
             * only one that has stood unmarked far longer than that instant lasts. */
            if (mkdtemp_name(n + strlen(prefix)) && st.st_mtime < time(NULL) - WORK_UNMARKED_AGE_S &&
                g_rmdir(path) == 0)
                removed++;
            continue;
        }
        int fd = g_open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
        if (fd < 0)
            continue;
        struct stat fs;
        /* held: another process is working in it. Else the process that made it is gone. */
        if (flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &fs) == 0 && fs.st_dev == st.st_dev &&
            fs.st_ino == st.st_ino && hearth_models_remove_tree(path, NULL))
            removed++;
        close(fd);
    }
    g_dir_close(d);
    return removed;
}

char *
hearth_models_work_root(const char *dir)
{
    g_autofree char *root = hearth_models_resolve_dir(dir);
    return g_build_filename(root, ".work", NULL);
}

HearthWorkDir *
hearth_models_work_new(const char *dir, const char *kind, const char *name, GError **error)
{
    g_autofree char *work_root = hearth_models_work_root(dir);
    g_autofree char *prefix = g_strdup_printf("%s-%s-", kind, name);
    return hearth_work_dir_new(work_root, prefix, error);
}

guint
hearth_models_sweep_work(const char *dir)
{
    g_autofree char *work = hearth_models_work_root(dir);
    guint n = hearth_work_dir_sweep(work, "");
    /* Before .work/, imports, deletes and the wizard's quantizations worked in .partial/ beside the
     * downloads, unmarked, and a killed one stayed there. A download's folder is named after its
     * repository, "owner--name" (hearth-hub.c): a folder there without "--" is such a leftover. */
    g_autofree char *root = hearth_models_resolve_dir(dir);
    g_autofree char *partial = g_build_filename(root, ".partial", NULL);
    GDir *d = g_dir_open(partial, 0, NULL);
    const char *name;
    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *path = g_build_filename(partial, name, NULL);
        GStatBuf st;
        if (!strstr(name, "--") && g_lstat(path, &st) == 0 && S_ISDIR(st.st_mode) &&
            hearth_models_remove_tree(path, NULL))
            n++;
    }
    if (d)
        g_dir_close(d);
    return n;
}

static void
sweep_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
    guint n = hearth_models_sweep_work(data);
    if (n)
        g_message("removed %u unfinished import(s), delete(s) or quantization(s) left in %s/.work by a process "
                  "that ended", n, (const char *)data);
    g_task_return_boolean(task, TRUE);
}

void
hearth_models_sweep_work_async(const char *dir)
{
    g_autoptr(GTask) task = g_task_new(NULL, NULL, NULL, NULL);
    g_task_set_task_data(task, hearth_models_resolve_dir(dir), g_free);
    g_task_run_in_thread(task, sweep_thread);
}

/* ---- the curated list ----------------------------------------------------- */

static char *
find_recommended(void)
{
    const char *const *dirs = g_get_system_data_dirs();
    for (size_t i = 0; dirs[i]; i++) {
        char *p = g_build_filename(dirs[i], "hearth", "models", "recommended.json", NULL);
        if (g_file_test(p, G_FILE_TEST_IS_REGULAR))
            return p;
        g_free(p);
    }
    return g_build_filename(HEARTH_SOURCE_ROOT, "data", "models", "recommended.json", NULL);
}

static guint64
json_u64(JsonObject *o, const char *member)
{
    if (!o || !json_object_has_member(o, member))
        return 0;
    JsonNode *n = json_object_get_member(o, member);
    if (!JSON_NODE_HOLDS_VALUE(n))
        return 0;
    GType t = json_node_get_value_type(n);
    if (t == G_TYPE_INT64)
        return json_node_get_int(n) > 0 ? (guint64)json_node_get_int(n) : 0;
    if (t == G_TYPE_DOUBLE) {
        double d = json_node_get_double(n);
        return d > 0 && d < 1.8e19 ? (guint64)d : 0; /* NaN and out-of-range are 0 */
    }
    return 0;
}

GPtrArray *
hearth_models_load_recommended(const char *path, GError **error)
{
    g_autofree char *p = path ? g_strdup(path) : find_recommended();
    g_autoptr(JsonParser) parser = hr_json_load_file_g(p, HR_JSON_CONFIG_MAX, true, error);
    if (!parser)
        return NULL;
    JsonNode *root = json_parser_get_root(parser);
    JsonArray *arr = NULL;
    if (root && JSON_NODE_HOLDS_OBJECT(root)) {
        JsonObject *o = json_node_get_object(root);
        if (json_object_has_member(o, "models") && JSON_NODE_HOLDS_ARRAY(json_object_get_member(o, "models")))
            arr = json_object_get_array_member(o, "models");
    }
    if (!arr) {
        g_set_error(error, HEARTH_MODELS_ERROR, HEARTH_MODELS_ERROR_FORMAT, "%s: no \"models\" array", p);
        return NULL;
    }
    GPtrArray *list = g_ptr_array_new_with_free_func((GDestroyNotify)hearth_recommended_model_free);
    for (guint i = 0; i < json_array_get_length(arr); i++) {
        JsonNode *n = json_array_get_element(arr, i);
        JsonObject *o = JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
        const char *repo = json_str(o, "repo_id");
        if (!repo || !strchr(repo, '/')) {
            g_set_error(error, HEARTH_MODELS_ERROR, HEARTH_MODELS_ERROR_FORMAT,
                        "%s: entry %u has no valid \"repo_id\" (owner/name)", p, i);
            g_ptr_array_unref(list);
            return NULL;
        }
        HearthRecommendedModel *m = g_new0(HearthRecommendedModel, 1);
        m->repo_id = g_strdup(repo);
        m->name = g_strdup(json_str(o, "name") ? json_str(o, "name") : repo);
        m->description = g_strdup(json_str(o, "description") ? json_str(o, "description") : "");
        m->format = g_strdup(json_str(o, "format") ? json_str(o, "format") : "");
        m->size_bytes = json_u64(o, "size_bytes");
        m->params = json_u64(o, "params");
        m->min_memory_bytes = json_u64(o, "min_memory_bytes");
        m->gated = json_object_has_member(o, "gated") && JSON_NODE_HOLDS_VALUE(json_object_get_member(o, "gated")) &&
                   json_object_get_boolean_member(o, "gated");
        g_ptr_array_add(list, m);
    }
    return list;
}
