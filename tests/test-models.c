/* test-models.c — app/hearth-models.c: the installed-models list (name,
 * architecture, format, parameter count, size, memory estimate) on the
 * tests/fixtures/hf-tiny models, an AWQ config written here, and
 * stories260K when HEARTH_ASSETS has it; import, rename and delete in a
 * temp dir; the curated list in data/models/recommended.json.
 */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <utime.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "hearth-config.h"
#include "hearth-models.h"

static char *
temp_dir(void)
{
    GError *error = NULL;
    char *d = g_dir_make_tmp("hearth-models-XXXXXX", &error);
    g_assert_no_error(error);
    return d;
}

static char *
fixture(const char *family, const char *variant)
{
    return g_build_filename(HEARTH_FIXTURES, "hf-tiny", family, variant, NULL);
}

static void
copy_file(const char *from, const char *to)
{
    char *data = NULL;
    gsize len = 0;
    GError *error = NULL;
    g_file_get_contents(from, &data, &len, &error);
    g_assert_no_error(error);
    g_file_set_contents(to, data, (gssize)len, &error);
    g_assert_no_error(error);
    g_free(data);
}

static const HearthModelInfo *
find(GPtrArray *list, const char *name)
{
    for (guint i = 0; i < list->len; i++) {
        const HearthModelInfo *m = list->pdata[i];
        if (strcmp(m->name, name) == 0)
            return m;
    }
    return NULL;
}

/* Count parameters the way the safetensors header says, independently of
 * hearth-models.c: parse the JSON header and sum the products of shapes. */
static guint64
header_params(const char *file)
{
    char *data = NULL;
    gsize len = 0;
    GError *error = NULL;
    g_file_get_contents(file, &data, &len, &error);
    g_assert_no_error(error);
    guint64 hlen = 0;
    memcpy(&hlen, data, 8);
    JsonParser *p = json_parser_new();
    g_assert_true(json_parser_load_from_data(p, data + 8, (gssize)hlen, NULL));
    JsonObject *o = json_node_get_object(json_parser_get_root(p));
    GList *members = json_object_get_members(o);
    guint64 total = 0;
    for (GList *l = members; l; l = l->next) {
        if (strcmp(l->data, "__metadata__") == 0)
            continue;
        JsonArray *shape = json_object_get_array_member(json_object_get_object_member(o, l->data), "shape");
        guint64 n = 1;
        for (guint i = 0; i < json_array_get_length(shape); i++)
            n *= (guint64)json_array_get_int_element(shape, i);
        total += n;
    }
    g_list_free(members);
    g_object_unref(p);
    g_free(data);
    return total;
}

static void
test_names(void)
{
    g_assert_null(hearth_models_check_name("Qwen--Qwen2.5-0.5B"));
    g_assert_nonnull(hearth_models_check_name(""));
    g_assert_nonnull(hearth_models_check_name(NULL));
    g_assert_nonnull(hearth_models_check_name(".partial"));
    g_assert_nonnull(hearth_models_check_name("a/b"));
    g_assert_nonnull(hearth_models_check_name(".."));
    g_assert_nonnull(hearth_models_check_name("a\nb"));
}

static void
test_default_dir(void)
{
    g_setenv("HEARTH_MODELS_DIR", "/tmp/some-models", TRUE);
    char *d = hearth_models_default_dir();
    g_assert_cmpstr(d, ==, "/tmp/some-models");
    g_free(d);
    d = hearth_models_resolve_dir("/elsewhere");
    g_assert_cmpstr(d, ==, "/elsewhere");
    g_free(d);
    g_unsetenv("HEARTH_MODELS_DIR");
    d = hearth_models_default_dir();
    char *want = g_build_filename(g_get_user_data_dir(), HEARTH_APP_ID, "models", NULL);
    g_assert_cmpstr(d, ==, want);
    g_free(want);
    g_free(d);
}

static void
test_kv_estimate(void)
{
    /* Llama-2-7B: 32 layers, 32 kv heads, 128 dims, 4096 tokens = 2 GiB */
    g_assert_cmpuint(hearth_models_kv_cache_bytes(32, 32, 128, 4096), ==, 2ull * 1024 * 1024 * 1024);
    /* Qwen2.5-7B (GQA, 4 kv heads, 28 layers) at 32768 */
    g_assert_cmpuint(hearth_models_kv_cache_bytes(28, 4, 128, 32768), ==, 2ull * 28 * 4 * 128 * 32768 * 2);
    g_assert_cmpuint(hearth_models_kv_cache_bytes(0, 4, 128, 100), ==, 0);
}

/* A model with sliding-window layers: its estimate counts their rings (window 8 + the CPU's step of 256 +
 * 1024 = 1288 entries in two layers of the tiny Gemma 3's three) once the context is longer than a ring. */
static void
test_kv_estimate_windows(void)
{
    char *dir = fixture("gemma3", "f32");
    GError *error = NULL;
    HearthModelInfo *m = hearth_model_info_load(dir, &error);
    g_assert_no_error(error);
    g_assert_true(m->supported);
    g_assert_nonnull(m->config);
    const guint64 pos = 2ull * 2 * 32 * 2; /* K + V, 2 kv heads of 32, FP16 */
    g_assert_cmpuint(hearth_model_info_kv_bytes(m, 1000), ==, hearth_models_kv_cache_bytes(3, 2, 32, 1000));
    g_assert_cmpuint(hearth_model_info_kv_bytes(m, 4096), ==, pos * (2 * 1288 + 4096));
    g_assert_cmpuint(hearth_model_info_memory_needed(m, 4096), ==, m->weights_bytes + pos * (2 * 1288 + 4096));
    hearth_model_info_free(m);
    g_free(dir);
    /* a model without windows: the formula */
    dir = fixture("qwen2-bias", "f32");
    m = hearth_model_info_load(dir, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(hearth_model_info_kv_bytes(m, 4096), ==,
                     hearth_models_kv_cache_bytes(m->n_layers, m->n_kv_heads, m->head_dim, 4096));
    hearth_model_info_free(m);
    g_free(dir);
}

/* The fixtures, imported into a temp models dir and listed. */
static void
test_list_fixtures(void)
{
    char *dir = temp_dir();
    GError *error = NULL;
    struct { const char *family, *variant, *arch, *format; int layers, kv, hd; } cases[] = {
        { "mistral", "f32", "MistralForCausalLM", "FP32", 0, 0, 0 },
        { "qwen2-bias", "bf16", "Qwen2ForCausalLM", "BF16", 0, 0, 0 },
        { "llama-gqa-tied", "f32", "LlamaForCausalLM", "FP32", 0, 0, 0 },
    };
    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        char *src = fixture(cases[i].family, cases[i].variant);
        char *name = g_strdup_printf("%s-%s", cases[i].family, cases[i].variant);
        char *path = hearth_models_import(src, dir, name, NULL, NULL, NULL, &error);
        g_assert_no_error(error);
        g_assert_nonnull(path);
        g_free(path);
        g_free(name);
        g_free(src);
    }
    /* not models: a folder without config.json, and our .partial */
    char *junk = g_build_filename(dir, "notes", NULL);
    g_mkdir(junk, 0755);
    char *partial = g_build_filename(dir, ".partial", "x--y", NULL);
    g_mkdir_with_parents(partial, 0755);

    /* a model folder with a broken config.json: listed with the reason */
    char *broken = g_build_filename(dir, "zz-broken", NULL);
    g_mkdir(broken, 0755);
    char *bcfg = g_build_filename(broken, "config.json", NULL);
    char *bst = g_build_filename(broken, "model.safetensors", NULL);
    g_file_set_contents(bcfg, "{\"architectures\": [", -1, &error);
    g_assert_no_error(error);
    g_file_set_contents(bst, "", 0, &error);
    g_assert_no_error(error);
    g_free(bcfg);
    g_free(bst);
    g_free(broken);

    GPtrArray *list = hearth_models_list(dir, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(list->len, ==, 4);
    const HearthModelInfo *bad = find(list, "zz-broken");
    g_assert_nonnull(bad);
    g_assert_false(bad->supported);
    g_assert_nonnull(bad->problem);
    g_assert_nonnull(strstr(bad->problem, "config.json"));
    /* sorted by name */
    g_assert_cmpstr(((HearthModelInfo *)list->pdata[0])->name, ==, "llama-gqa-tied-f32");
    g_assert_cmpstr(((HearthModelInfo *)list->pdata[2])->name, ==, "qwen2-bias-bf16");
    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        char *name = g_strdup_printf("%s-%s", cases[i].family, cases[i].variant);
        const HearthModelInfo *m = find(list, name);
        g_assert_nonnull(m);
        g_assert_cmpstr(m->architecture, ==, cases[i].arch);
        g_assert_cmpstr(m->format, ==, cases[i].format);
        g_assert_true(m->supported);
        g_assert_null(m->problem);
        /* parameters: model.safetensors only (the fixtures' logits file is not weights) */
        char *st = g_build_filename(m->path, "model.safetensors", NULL);
        g_assert_cmpuint(m->n_params, ==, header_params(st));
        GStatBuf sb;
        g_assert_cmpint(g_stat(st, &sb), ==, 0);
        g_assert_cmpuint(m->weights_bytes, <=, (guint64)sb.st_size);
        g_assert_cmpuint(m->weights_bytes, >, (guint64)sb.st_size * 9 / 10);
        g_assert_cmpuint(m->size_on_disk, >, (guint64)sb.st_size);
        g_free(st);
        /* the memory estimate: weights + 2·layers·kv_heads·head_dim·ctx·2 */
        g_assert_cmpint(m->n_layers, >, 0);
        g_assert_cmpint(m->n_kv_heads, >, 0);
        g_assert_cmpint(m->head_dim, >, 0);
        guint64 kv = 2ull * (guint64)m->n_layers * (guint64)m->n_kv_heads * (guint64)m->head_dim * 1000 * 2;
        g_assert_cmpuint(hearth_model_info_memory_needed(m, 1000), ==, m->weights_bytes + kv);
        g_assert_true(hearth_model_info_fits(m, 1000, m->weights_bytes + kv));
        g_assert_false(hearth_model_info_fits(m, 1000, m->weights_bytes + kv - 1));
        g_free(name);
    }
    /* known shapes: mistral fixture is 2 layers, 1 kv head, head_dim 16 */
    const HearthModelInfo *mi = find(list, "mistral-f32");
    g_assert_cmpint(mi->n_layers, ==, 2);
    g_assert_cmpint(mi->n_kv_heads, ==, 1);
    g_assert_cmpint(mi->head_dim, ==, 16);
    g_assert_cmpint(mi->max_context, ==, 128);
    g_ptr_array_unref(list);

    /* a missing models dir is an empty list */
    char *none = g_build_filename(dir, "does-not-exist", NULL);
    list = hearth_models_list(none, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(list->len, ==, 0);
    g_ptr_array_unref(list);
    g_free(none);

    g_free(partial);
    g_free(junk);
    hearth_models_remove_tree(dir, NULL);
    g_free(dir);
}

/* An AWQ checkpoint's header and config (written here: a qweight of int32
 * [in, out/8], qzeros, fp16 scales) counts 8 params per int32. */
static void
write_safetensors(const char *path, const char *header_json, gsize data_len)
{
    gsize hlen = strlen(header_json);
    gsize pad = (8 - hlen % 8) % 8;
    GString *s = g_string_new(NULL);
    guint64 n = hlen + pad;
    g_string_append_len(s, (const char *)&n, 8);
    g_string_append(s, header_json);
    for (gsize i = 0; i < pad; i++)
        g_string_append_c(s, ' ');
    for (gsize i = 0; i < data_len; i++)
        g_string_append_c(s, 0);
    GError *error = NULL;
    g_file_set_contents(path, s->str, (gssize)s->len, &error);
    g_assert_no_error(error);
    g_string_free(s, TRUE);
}

static void
test_awq_format(void)
{
    char *dir = temp_dir();
    char *m = g_build_filename(dir, "tiny-awq", NULL);
    g_mkdir(m, 0755);
    char *cfg = g_build_filename(m, "config.json", NULL);
    const char *config =
        "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"hidden_size\": 256,"
        " \"num_hidden_layers\": 1, \"num_attention_heads\": 4, \"num_key_value_heads\": 2,"
        " \"intermediate_size\": 512, \"vocab_size\": 32, \"max_position_embeddings\": 64,"
        " \"rms_norm_eps\": 1e-5, \"quantization_config\": {\"quant_method\": \"awq\", \"bits\": 4,"
        " \"group_size\": 128, \"zero_point\": true, \"version\": \"gemm\"}}";
    GError *error = NULL;
    g_file_set_contents(cfg, config, -1, &error);
    g_assert_no_error(error);
    /* q_proj: in 256, out 256 → qweight [256, 32] i32, qzeros [2, 32] i32, scales [2, 256] f16;
     * embed [32, 256] f16 */
    char *st = g_build_filename(m, "model.safetensors", NULL);
    gsize qw = 256 * 32 * 4, qz = 2 * 32 * 4, sc = 2 * 256 * 2, em = 32 * 256 * 2;
    char *header = g_strdup_printf(
        "{\"model.layers.0.self_attn.q_proj.qweight\": {\"dtype\": \"I32\", \"shape\": [256, 32], "
        "\"data_offsets\": [0, %zu]},"
        " \"model.layers.0.self_attn.q_proj.qzeros\": {\"dtype\": \"I32\", \"shape\": [2, 32], "
        "\"data_offsets\": [%zu, %zu]},"
        " \"model.layers.0.self_attn.q_proj.scales\": {\"dtype\": \"F16\", \"shape\": [2, 256], "
        "\"data_offsets\": [%zu, %zu]},"
        " \"model.embed_tokens.weight\": {\"dtype\": \"F16\", \"shape\": [32, 256], \"data_offsets\": [%zu, %zu]}}",
        qw, qw, qw + qz, qw + qz, qw + qz + sc, qw + qz + sc, qw + qz + sc + em);
    write_safetensors(st, header, qw + qz + sc + em);
    HearthModelInfo *info = hearth_model_info_load(m, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(info->format, ==, "AWQ 4-bit g128");
    g_assert_cmpuint(info->n_params, ==, 256ull * 256 + 32 * 256);
    g_assert_cmpuint(info->weights_bytes, ==, qw + qz + sc + em);
    g_assert_cmpint(info->n_kv_heads, ==, 2);
    g_assert_cmpint(info->head_dim, ==, 64);
    hearth_model_info_free(info);

    /* another quantization method: listed, with the reason it cannot run */
    g_file_set_contents(cfg,
                        "{\"architectures\": [\"LlamaForCausalLM\"], \"num_hidden_layers\": 1,"
                        " \"quantization_config\": {\"quant_method\": \"gptq\", \"bits\": 4}}",
                        -1, &error);
    g_assert_no_error(error);
    info = hearth_model_info_load(m, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(info->format, ==, "GPTQ (unsupported)");
    g_assert_false(info->supported);
    g_assert_nonnull(info->problem);
    hearth_model_info_free(info);

    /* an unknown architecture: still listed, with a problem and an estimate */
    g_file_set_contents(cfg,
                        "{\"architectures\": [\"FancyForCausalLM\"], \"model_type\": \"fancy\","
                        " \"hidden_size\": 256, \"num_hidden_layers\": 3, \"num_attention_heads\": 4}",
                        -1, &error);
    g_assert_no_error(error);
    info = hearth_model_info_load(m, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(info->architecture, ==, "FancyForCausalLM");
    g_assert_false(info->supported);
    g_assert_nonnull(info->problem);
    g_assert_nonnull(strstr(info->problem, "Fancy"));
    g_assert_cmpint(info->n_layers, ==, 3);
    g_assert_cmpint(info->n_kv_heads, ==, 4);
    g_assert_cmpint(info->head_dim, ==, 64);
    hearth_model_info_free(info);

    /* broken weights: a problem, not a crash */
    write_safetensors(st, "{\"x\": {\"dtype\": \"F16\", \"shape\": [1000], \"data_offsets\": [0, 2000]}}", 10);
    info = hearth_model_info_load(m, &error);
    g_assert_no_error(error);
    g_assert_nonnull(info->problem);
    hearth_model_info_free(info);

    /* not a model */
    g_unlink(cfg);
    info = hearth_model_info_load(m, &error);
    g_assert_null(info);
    g_assert_error(error, HEARTH_MODELS_ERROR, HEARTH_MODELS_ERROR_NOT_A_MODEL);
    g_clear_error(&error);

    g_free(header);
    g_free(st);
    g_free(cfg);
    g_free(m);
    hearth_models_remove_tree(dir, NULL);
    g_free(dir);
}

static void
test_stories(void)
{
    const char *assets = g_getenv("HEARTH_ASSETS");
    char *src = assets ? g_build_filename(assets, "models", "stories260K", "hf_f16", NULL) : NULL;
    if (!src || !g_file_test(src, G_FILE_TEST_IS_DIR)) {
        g_test_skip("stories260K is absent (set HEARTH_ASSETS)");
        g_free(src);
        return;
    }
    GError *error = NULL;
    HearthModelInfo *info = hearth_model_info_load(src, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(info->architecture, ==, "LlamaForCausalLM");
    g_assert_cmpstr(info->format, ==, "FP16");
    /* stories260K: ~260K parameters */
    g_assert_cmpuint(info->n_params, >, 250000);
    g_assert_cmpuint(info->n_params, <, 300000);
    char *st = g_build_filename(src, "model.safetensors", NULL);
    g_assert_cmpuint(info->n_params, ==, header_params(st));
    g_assert_true(info->supported);
    g_free(st);
    hearth_model_info_free(info);
    g_free(src);
}

typedef struct {
    guint calls;
    guint64 last_done, total;
} CopySeen;

static void
on_copy(guint64 done, guint64 total, gpointer user_data)
{
    CopySeen *s = user_data;
    g_assert_cmpuint(done, >=, s->last_done);
    g_assert_cmpuint(done, <=, total);
    s->calls++;
    s->last_done = done;
    s->total = total;
}

static void
test_import_rename_delete(void)
{
    char *dir = temp_dir();
    char *src = fixture("mistral", "f32");
    GError *error = NULL;
    CopySeen seen = { 0 };
    char *path = hearth_models_import(src, dir, NULL, on_copy, &seen, NULL, &error);
    g_assert_no_error(error);
    char *want = g_build_filename(dir, "f32", NULL); /* the basename of the source */
    g_assert_cmpstr(path, ==, want);
    g_assert_cmpuint(seen.calls, >, 1);
    g_assert_cmpuint(seen.last_done, ==, seen.total);
    GStatBuf sb;
    char *cfg = g_build_filename(path, "config.json", NULL);
    g_assert_cmpint(g_stat(cfg, &sb), ==, 0);
    g_assert_true((sb.st_mode & 0444) == 0444);
    g_free(cfg);
    char *pdir = g_build_filename(dir, ".work", NULL);

    /* a name already taken */
    char *again = hearth_models_import(src, dir, NULL, NULL, NULL, NULL, &error);
    g_assert_null(again);
    g_assert_error(error, HEARTH_MODELS_ERROR, HEARTH_MODELS_ERROR_EXISTS);
    g_clear_error(&error);
    /* bad names, and a folder that is not a model */
    again = hearth_models_import(src, dir, "../evil", NULL, NULL, NULL, &error);
    g_assert_error(error, HEARTH_MODELS_ERROR, HEARTH_MODELS_ERROR_INVALID_NAME);
    g_clear_error(&error);
    again = hearth_models_import(HEARTH_FIXTURES, dir, "fixtures", NULL, NULL, NULL, &error);
    g_assert_error(error, HEARTH_MODELS_ERROR, HEARTH_MODELS_ERROR_NOT_A_MODEL);
    g_clear_error(&error);
    /* cancelled: nothing installed, nothing left in .work */
    GCancellable *c = g_cancellable_new();
    g_cancellable_cancel(c);
    again = hearth_models_import(src, dir, "cancelled", NULL, NULL, c, &error);
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    g_clear_error(&error);
    g_object_unref(c);
    char *cancelled = g_build_filename(dir, "cancelled", NULL);
    g_assert_false(g_file_test(cancelled, G_FILE_TEST_EXISTS));
    GDir *d = g_dir_open(pdir, 0, NULL);
    g_assert_nonnull(d);
    g_assert_null(g_dir_read_name(d));
    g_dir_close(d);

    /* a source whose files are links (as a Hugging Face cache snapshot) and
     * with a link back up the tree: each folder is copied once (it used to
     * copy the model into itself until the disk was full) */
    {
        char *linked = temp_dir();
        GDir *sd = g_dir_open(src, 0, NULL);
        const char *n;
        guint64 src_bytes = 0;
        while ((n = g_dir_read_name(sd))) {
            char *from = g_build_filename(src, n, NULL), *to = g_build_filename(linked, n, NULL);
            GStatBuf fst;
            if (g_stat(from, &fst) == 0 && S_ISREG(fst.st_mode))
                src_bytes += (guint64)fst.st_size;
            g_assert_cmpint(symlink(from, to), ==, 0);
            g_free(from);
            g_free(to);
        }
        g_dir_close(sd);
        char *loop = g_build_filename(linked, "sub", NULL);
        g_assert_cmpint(symlink(".", loop), ==, 0);
        CopySeen lseen = { 0 };
        char *lpath = hearth_models_import(linked, dir, "looped", on_copy, &lseen, NULL, &error);
        g_assert_no_error(error);
        g_assert_cmpuint(lseen.total, ==, src_bytes);
        char *inner = g_build_filename(lpath, "sub", "sub", NULL);
        g_assert_false(g_file_test(inner, G_FILE_TEST_EXISTS));
        g_assert_true(hearth_models_delete(dir, "looped", &error));
        /* deleting the copy never follows links out of it */
        char *orig_cfg = g_build_filename(src, "config.json", NULL);
        g_assert_true(g_file_test(orig_cfg, G_FILE_TEST_IS_REGULAR));
        hearth_models_remove_tree(linked, NULL);
        g_free(orig_cfg);
        g_free(inner);
        g_free(lpath);
        g_free(loop);
        g_free(linked);
    }

    /* rename */
    g_assert_true(hearth_models_rename(dir, "f32", "Mistral tiny", &error));
    g_assert_no_error(error);
    GPtrArray *list = hearth_models_list(dir, &error);
    g_assert_cmpuint(list->len, ==, 1);
    g_assert_cmpstr(((HearthModelInfo *)list->pdata[0])->name, ==, "Mistral tiny");
    g_ptr_array_unref(list);
    g_assert_false(hearth_models_rename(dir, "f32", "x", &error));
    g_assert_error(error, HEARTH_MODELS_ERROR, HEARTH_MODELS_ERROR_NOT_FOUND);
    g_clear_error(&error);
    g_assert_false(hearth_models_rename(dir, "Mistral tiny", ".hidden", &error));
    g_assert_error(error, HEARTH_MODELS_ERROR, HEARTH_MODELS_ERROR_INVALID_NAME);
    g_clear_error(&error);
    char *second = hearth_models_import(src, dir, "second", NULL, NULL, NULL, &error);
    g_assert_no_error(error);
    g_assert_false(hearth_models_rename(dir, "second", "Mistral tiny", &error));
    g_assert_error(error, HEARTH_MODELS_ERROR, HEARTH_MODELS_ERROR_EXISTS);
    g_clear_error(&error);

    /* delete */
    g_assert_true(hearth_models_delete(dir, "Mistral tiny", &error));
    g_assert_no_error(error);
    g_assert_false(hearth_models_delete(dir, "Mistral tiny", &error));
    g_assert_error(error, HEARTH_MODELS_ERROR, HEARTH_MODELS_ERROR_NOT_FOUND);
    g_clear_error(&error);
    g_assert_false(hearth_models_delete(dir, "..", &error));
    g_assert_error(error, HEARTH_MODELS_ERROR, HEARTH_MODELS_ERROR_INVALID_NAME);
    g_clear_error(&error);
    list = hearth_models_list(dir, &error);
    g_assert_cmpuint(list->len, ==, 1);
    g_assert_cmpstr(((HearthModelInfo *)list->pdata[0])->name, ==, "second");
    g_ptr_array_unref(list);
    d = g_dir_open(pdir, 0, NULL);
    g_assert_null(g_dir_read_name(d)); /* the trash is emptied */
    g_dir_close(d);
    /* the source is untouched */
    char *src_cfg = g_build_filename(src, "config.json", NULL);
    g_assert_true(g_file_test(src_cfg, G_FILE_TEST_IS_REGULAR));
    g_free(src_cfg);

    g_free(second);
    g_free(cancelled);
    g_free(pdir);
    g_free(want);
    g_free(path);
    g_free(src);
    hearth_models_remove_tree(dir, NULL);
    g_free(dir);
}

static void
cancel_on_copy(guint64 done, guint64 total, gpointer user_data)
{
    if (done > 0)
        g_cancellable_cancel(user_data);
}

/* An import larger than the disk's free space is refused before it copies anything: a model folder with a
 * sparse file of more bytes than are free (it takes no room itself). */
static void
test_import_no_space(void)
{
    char *dir = temp_dir();
    char *src = temp_dir();
    char *fix = fixture("mistral", "f32");
    GError *error = NULL;
    const char *files[] = { "config.json", "model.safetensors", "tokenizer.json" };
    for (guint i = 0; i < G_N_ELEMENTS(files); i++) {
        char *from = g_build_filename(fix, files[i], NULL), *to = g_build_filename(src, files[i], NULL);
        char *data;
        gsize len;
        if (g_file_get_contents(from, &data, &len, NULL)) {
            g_assert_true(g_file_set_contents(to, data, (gssize)len, NULL));
            g_free(data);
        }
        g_free(from);
        g_free(to);
    }
    GFile *where = g_file_new_for_path(dir);
    GFileInfo *fi = g_file_query_filesystem_info(where, G_FILE_ATTRIBUTE_FILESYSTEM_FREE, NULL, NULL);
    if (!fi || !g_file_info_has_attribute(fi, G_FILE_ATTRIBUTE_FILESYSTEM_FREE)) {
        g_test_skip("the file system does not say its free space");
    } else {
        guint64 free_bytes = g_file_info_get_attribute_uint64(fi, G_FILE_ATTRIBUTE_FILESYSTEM_FREE);
        char *big = g_build_filename(src, "model-00002-of-00002.safetensors", NULL);
        int fd = g_open(big, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        g_assert_cmpint(fd, >=, 0);
        if (ftruncate(fd, (off_t)(free_bytes + ((guint64)1 << 30))) != 0) {
            g_test_skip("cannot make a sparse file that large here");
        } else {
            /* were the check gone, the copy stops at its first bytes instead of filling the disk */
            GCancellable *stop = g_cancellable_new();
            char *path = hearth_models_import(src, dir, "too-big", cancel_on_copy, stop, stop, &error);
            g_object_unref(stop);
            g_assert_null(path);
            g_assert_error(error, G_IO_ERROR, G_IO_ERROR_NO_SPACE);
            g_assert_nonnull(strstr(error->message, "not enough disk space"));
            g_clear_error(&error);
            char *installed = g_build_filename(dir, "too-big", NULL);
            g_assert_false(g_file_test(installed, G_FILE_TEST_EXISTS));
            char *work = hearth_models_work_root(dir);
            GDir *d = g_dir_open(work, 0, NULL);
            g_assert_true(!d || !g_dir_read_name(d));
            if (d)
                g_dir_close(d);
            g_free(work);
            g_free(installed);
        }
        close(fd);
        g_free(big);
    }
    g_clear_object(&fi);
    g_object_unref(where);
    hearth_models_remove_tree(src, NULL);
    hearth_models_remove_tree(dir, NULL);
    g_free(fix);
    g_free(src);
    g_free(dir);
}

/* The models folder is made when it is the default one, or when the folder it goes in is there; a chosen one
 * whose drive is not connected (the folder it goes in is missing too) is refused, and nothing is made. */
static void
test_ensure_dir(void)
{
    char *dir = temp_dir();
    GError *error = NULL;
    char *inside = g_build_filename(dir, "models", NULL);
    g_assert_true(hearth_models_ensure_dir(inside, &error));
    g_assert_no_error(error);
    g_assert_true(g_file_test(inside, G_FILE_TEST_IS_DIR));
    g_assert_true(hearth_models_ensure_dir(inside, &error)); /* there already */

    char *drive = g_build_filename(dir, "drive", NULL);
    char *gone = g_build_filename(drive, "models", NULL);
    g_assert_false(hearth_models_ensure_dir(gone, &error));
    g_assert_error(error, HEARTH_MODELS_ERROR, HEARTH_MODELS_ERROR_NOT_FOUND);
    g_assert_nonnull(strstr(error->message, "not there"));
    g_clear_error(&error);
    g_assert_false(g_file_test(drive, G_FILE_TEST_EXISTS));
    /* nor does an import or a delete make it */
    char *src = fixture("mistral", "f32");
    g_assert_null(hearth_models_import(src, gone, NULL, NULL, NULL, NULL, &error));
    g_assert_error(error, HEARTH_MODELS_ERROR, HEARTH_MODELS_ERROR_NOT_FOUND);
    g_clear_error(&error);
    g_assert_false(hearth_models_delete(gone, "f32", &error));
    g_clear_error(&error);
    g_assert_false(g_file_test(drive, G_FILE_TEST_EXISTS));

    /* a file where the folder should be */
    char *file = g_build_filename(dir, "a-file", NULL);
    g_assert_true(g_file_set_contents(file, "x", -1, NULL));
    g_assert_false(hearth_models_ensure_dir(file, &error));
    g_clear_error(&error);

    /* the default one is made with its parents */
    char *deep = g_build_filename(dir, "x", "y", "models", NULL);
    g_setenv("HEARTH_MODELS_DIR", deep, TRUE);
    g_assert_true(hearth_models_ensure_dir(NULL, &error));
    g_assert_no_error(error);
    g_assert_true(g_file_test(deep, G_FILE_TEST_IS_DIR));
    g_unsetenv("HEARTH_MODELS_DIR");

    g_free(deep);
    g_free(file);
    g_free(src);
    g_free(gone);
    g_free(drive);
    g_free(inside);
    hearth_models_remove_tree(dir, NULL);
    g_free(dir);
}

/* A chosen folder on a drive the file system table names, whose empty mount point is there but nothing is
 * mounted on it (an fstab drive that is not connected): not there, and nothing is made in it (it would land
 * on the disk the mount point is on). A table entry that is mounted (/proc) does not count, nor does the
 * root's. The table is a file of the test's ($LIBMOUNT_FSTAB, read by GLib's libmount). */
static void
test_unmounted_drive(void)
{
    char *dir = temp_dir();
    GError *error = NULL;
    char *mnt = g_build_filename(dir, "data", NULL);
    char *models = g_build_filename(mnt, "models", NULL);
    g_assert_cmpint(g_mkdir(mnt, 0755), ==, 0);
    char *fstab = g_build_filename(dir, "fstab", NULL);
    char *table = g_strdup_printf("# a test's table\n"
                                  "UUID=0a1b2c3d /               ext4 errors=remount-ro 0 1\n"
                                  "UUID=4e5f6071 %s  ext4 defaults,nofail 0 2\n"
                                  "proc          /proc           proc defaults 0 0\n"
                                  "/dev/sdz2     none            swap sw 0 0\n",
                                  mnt);
    g_assert_true(g_file_set_contents(fstab, table, -1, NULL));
    g_setenv("LIBMOUNT_FSTAB", fstab, TRUE);

    char *drive = hearth_models_unmounted_drive(models);
    g_assert_cmpstr(drive, ==, mnt);
    g_free(drive);
    drive = hearth_models_unmounted_drive(mnt);
    g_assert_cmpstr(drive, ==, mnt);
    g_free(drive);
    char *beside = g_strconcat(mnt, "x", NULL); /* a name that starts as the mount point's */
    g_assert_null(hearth_models_unmounted_drive(beside));
    g_assert_null(hearth_models_unmounted_drive(dir));
    g_assert_null(hearth_models_unmounted_drive("/proc/self"));
    g_assert_true(hearth_models_dir_missing(mnt)); /* there, but an empty mount point */
    g_assert_false(hearth_models_dir_missing(dir));

    g_assert_false(hearth_models_ensure_dir(models, &error));
    g_assert_error(error, HEARTH_MODELS_ERROR, HEARTH_MODELS_ERROR_NOT_FOUND);
    g_assert_nonnull(strstr(error->message, "not mounted"));
    g_clear_error(&error);
    g_assert_false(hearth_models_ensure_dir(mnt, &error));
    g_clear_error(&error);
    char *src = fixture("mistral", "f32");
    g_assert_null(hearth_models_import(src, models, NULL, NULL, NULL, NULL, &error));
    g_assert_error(error, HEARTH_MODELS_ERROR, HEARTH_MODELS_ERROR_NOT_FOUND);
    g_clear_error(&error);
    g_assert_false(g_file_test(models, G_FILE_TEST_EXISTS));

    /* the drive mounted (here: the table no longer names it): the folder is made inside it */
    g_assert_true(g_file_set_contents(fstab, "proc /proc proc defaults 0 0\n", -1, NULL));
    GStatBuf st; /* GLib reads the table again when its mtime (in seconds) changes */
    g_assert_cmpint(g_stat(fstab, &st), ==, 0);
    struct utimbuf later = { .actime = st.st_mtime + 5, .modtime = st.st_mtime + 5 };
    g_assert_cmpint(g_utime(fstab, &later), ==, 0);
    g_assert_null(hearth_models_unmounted_drive(models));
    g_assert_true(hearth_models_ensure_dir(models, &error));
    g_assert_no_error(error);
    g_assert_true(g_file_test(models, G_FILE_TEST_IS_DIR));
    g_unsetenv("LIBMOUNT_FSTAB");

    g_free(src);
    g_free(beside);
    g_free(table);
    g_free(fstab);
    g_free(models);
    g_free(mnt);
    hearth_models_remove_tree(dir, NULL);
    g_free(dir);
}

/* A child that makes a work folder with a file in it, says where on the pipe, and waits to be killed. */
static pid_t
work_child(const char *parent, const char *prefix, char *path, size_t path_size)
{
    int fds[2];
    g_assert_cmpint(pipe(fds), ==, 0);
    pid_t pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) {
        close(fds[0]);
        HearthWorkDir *w = hearth_work_dir_new(parent, prefix, NULL);
        if (!w)
            _exit(1);
        char *f = g_build_filename(hearth_work_dir_path(w), "model.safetensors.tmp", NULL);
        if (!g_file_set_contents(f, "half a checkpoint", -1, NULL))
            _exit(1);
        char where[4096];
        size_t n = g_strlcpy(where, hearth_work_dir_path(w), sizeof where) + 1;
        if (n > sizeof where || write(fds[1], where, n) != (ssize_t)n)
            _exit(1);
        for (;;)
            pause();
    }
    close(fds[1]);
    size_t got = 0;
    ssize_t r;
    while (got < path_size - 1 && (r = read(fds[0], path + got, path_size - 1 - got)) > 0) {
        got += (size_t)r;
        if (memchr(path, '\0', got))
            break;
    }
    close(fds[0]);
    path[got] = '\0';
    g_assert_cmpuint(strlen(path), >, 0);
    return pid;
}

/* Work that does not resume: what a killed process left is swept, work going on in another process and
 * folders the sweep did not make are not. */
static void
test_work_sweep(void)
{
    char *dir = temp_dir();
    char *work = hearth_models_work_root(dir);
    GError *error = NULL;

    /* held by this process (another open file description): kept; let go: removed with what it holds */
    HearthWorkDir *w = hearth_work_dir_new(work, "quantize-x-", &error);
    g_assert_no_error(error);
    char *held = g_strdup(hearth_work_dir_path(w));
    g_assert_true(g_str_has_prefix(held, work));
    char *inside = g_build_filename(held, "model", NULL);
    g_assert_cmpint(g_mkdir(inside, 0755), ==, 0);
    g_assert_cmpuint(hearth_models_sweep_work(dir), ==, 0);
    g_assert_true(g_file_test(inside, G_FILE_TEST_IS_DIR));
    hearth_work_dir_free(w);
    g_assert_false(g_file_test(held, G_FILE_TEST_EXISTS));

    /* another process at work: kept; the same process killed: removed */
    char path[4096];
    pid_t pid = work_child(work, "import-y-", path, sizeof path);
    g_assert_true(g_file_test(path, G_FILE_TEST_IS_DIR));
    g_assert_cmpuint(hearth_models_sweep_work(dir), ==, 0);
    g_assert_true(g_file_test(path, G_FILE_TEST_IS_DIR));
    g_assert_cmpint(kill(pid, SIGKILL), ==, 0);
    int status;
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    g_assert_true(WIFSIGNALED(status));
    g_assert_true(g_file_test(path, G_FILE_TEST_IS_DIR));
    g_assert_cmpuint(hearth_models_sweep_work(dir), ==, 1);
    g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));

    /* not ours: a folder with the prefix but no mark, a file, a link to a marked folder elsewhere */
    char *plain = g_build_filename(dir, "out.partial-mine", NULL);
    g_assert_cmpint(g_mkdir(plain, 0755), ==, 0);
    char *file = g_build_filename(dir, "out.partial-file", NULL);
    g_assert_true(g_file_set_contents(file, "x", -1, NULL));
    pid = work_child(work, "elsewhere-", path, sizeof path);
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    char *link = g_build_filename(dir, "out.partial-link", NULL);
    g_assert_cmpint(symlink(path, link), ==, 0);
    g_assert_cmpuint(hearth_work_dir_sweep(dir, "out.partial-"), ==, 0);
    g_assert_true(g_file_test(plain, G_FILE_TEST_IS_DIR));
    g_assert_true(g_file_test(file, G_FILE_TEST_IS_REGULAR));
    g_assert_true(g_file_test(path, G_FILE_TEST_IS_DIR));
    /* the prefix is honoured */
    g_assert_cmpuint(hearth_work_dir_sweep(work, "other-"), ==, 0);
    g_assert_true(g_file_test(path, G_FILE_TEST_IS_DIR));
    g_assert_cmpuint(hearth_work_dir_sweep(work, "elsewhere-"), ==, 1);

    /* a process killed between making its folder and marking it: the empty folder, once it is old, is
     * removed; one with anything in it, or a young one, or one not named as mkdtemp names, is not */
    char *empty = g_build_filename(dir, "out.partial-Ab3dE9", NULL);
    char *young = g_build_filename(dir, "out.partial-Zz0yX1", NULL);
    char *odd = g_build_filename(dir, "out.partial-old-one", NULL);
    char *full = g_build_filename(dir, "out.partial-Qq7rT2", NULL);
    char *full_file = g_build_filename(full, "notes.txt", NULL);
    g_assert_cmpint(g_mkdir(empty, 0755), ==, 0);
    g_assert_cmpint(g_mkdir(young, 0755), ==, 0);
    g_assert_cmpint(g_mkdir(odd, 0755), ==, 0);
    g_assert_cmpint(g_mkdir(full, 0755), ==, 0);
    g_assert_true(g_file_set_contents(full_file, "mine", -1, NULL));
    struct utimbuf hour_ago = { .actime = time(NULL) - 3600, .modtime = time(NULL) - 3600 };
    g_assert_cmpint(g_utime(empty, &hour_ago), ==, 0);
    g_assert_cmpint(g_utime(odd, &hour_ago), ==, 0);
    g_assert_cmpint(g_utime(full, &hour_ago), ==, 0);
    g_assert_cmpuint(hearth_work_dir_sweep(dir, "out.partial-"), ==, 1);
    g_assert_false(g_file_test(empty, G_FILE_TEST_EXISTS));
    g_assert_true(g_file_test(young, G_FILE_TEST_IS_DIR));
    g_assert_true(g_file_test(odd, G_FILE_TEST_IS_DIR));
    g_assert_true(g_file_test(full_file, G_FILE_TEST_IS_REGULAR));
    g_assert_true(g_file_test(plain, G_FILE_TEST_IS_DIR));

    /* kept: a result that could not be put in place stays, and no sweep takes it */
    w = hearth_work_dir_new(dir, "out.partial-", &error);
    g_assert_no_error(error);
    char *kept = g_strdup(hearth_work_dir_path(w));
    hearth_work_dir_keep(w);
    g_assert_cmpuint(hearth_work_dir_sweep(dir, "out.partial-"), ==, 0);
    g_assert_true(g_file_test(kept, G_FILE_TEST_IS_DIR));

    g_free(kept);
    g_free(full_file);
    g_free(full);
    g_free(odd);
    g_free(young);
    g_free(empty);
    g_free(link);
    g_free(file);
    g_free(plain);
    g_free(inside);
    g_free(held);
    g_free(work);
    hearth_models_remove_tree(dir, NULL);
    g_free(dir);
}

/* Importing a Hugging Face cache snapshot: a folder of symlinks. */
static void
test_import_symlinks(void)
{
    char *dir = temp_dir();
    char *snap = g_build_filename(dir, "snapshot", NULL);
    g_mkdir(snap, 0755);
    char *src = fixture("qwen2-bias", "bf16");
    const char *names[] = { "config.json", "model.safetensors" };
    for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
        char *target = g_build_filename(src, names[i], NULL);
        char *link = g_build_filename(snap, names[i], NULL);
        g_assert_cmpint(symlink(target, link), ==, 0);
        g_free(link);
        g_free(target);
    }
    char *models = g_build_filename(dir, "models", NULL);
    GError *error = NULL;
    char *path = hearth_models_import(snap, models, "qwen", NULL, NULL, NULL, &error);
    g_assert_no_error(error);
    char *st = g_build_filename(path, "model.safetensors", NULL);
    g_assert_true(g_file_test(st, G_FILE_TEST_IS_REGULAR));
    g_assert_false(g_file_test(st, G_FILE_TEST_IS_SYMLINK));
    char *orig = g_build_filename(src, "model.safetensors", NULL);
    copy_file(orig, st); /* readable, writable: a real copy */
    g_free(orig);
    g_free(st);
    g_free(path);
    g_free(models);
    g_free(src);
    g_free(snap);
    hearth_models_remove_tree(dir, NULL);
    g_free(dir);
}

static void
test_recommended(void)
{
    GError *error = NULL;
    char *path = g_build_filename(HEARTH_SOURCE_ROOT, "data", "models", "recommended.json", NULL);
    GPtrArray *list = hearth_models_load_recommended(path, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(list->len, >=, 6);
    g_assert_cmpuint(list->len, <=, 10);
    gboolean any_awq = FALSE;
    for (guint i = 0; i < list->len; i++) {
        HearthRecommendedModel *m = list->pdata[i];
        g_assert_nonnull(strchr(m->repo_id, '/'));
        g_assert_cmpuint(strlen(m->description), >, 10);
        g_assert_cmpuint(m->size_bytes, >, 100000000ull);
        g_assert_cmpuint(m->min_memory_bytes, >=, m->size_bytes);
        g_assert_cmpuint(m->min_memory_bytes, <=, 8000000000ull); /* fits 4-8 GB GPUs */
        g_assert_cmpuint(m->params, >, 0);
        if (g_str_has_prefix(m->format, "AWQ"))
            any_awq = TRUE;
    }
    g_assert_true(any_awq);
    g_ptr_array_unref(list);

    /* malformed lists are errors */
    char *dir = temp_dir();
    char *bad = g_build_filename(dir, "bad.json", NULL);
    g_file_set_contents(bad, "{\"models\": [{\"name\": \"no repo\"}]}", -1, &error);
    list = hearth_models_load_recommended(bad, &error);
    g_assert_null(list);
    g_assert_error(error, HEARTH_MODELS_ERROR, HEARTH_MODELS_ERROR_FORMAT);
    g_clear_error(&error);
    g_file_set_contents(bad, "[1, 2", -1, &error);
    list = hearth_models_load_recommended(bad, &error);
    g_assert_null(list);
    g_assert_nonnull(error);
    g_clear_error(&error);
    g_free(bad);
    hearth_models_remove_tree(dir, NULL);
    g_free(dir);
    g_free(path);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/models/names", test_names);
    g_test_add_func("/models/default-dir", test_default_dir);
    g_test_add_func("/models/kv-estimate", test_kv_estimate);
    g_test_add_func("/models/kv-estimate-windows", test_kv_estimate_windows);
    g_test_add_func("/models/list-fixtures", test_list_fixtures);
    g_test_add_func("/models/awq-format", test_awq_format);
    g_test_add_func("/models/stories260K", test_stories);
    g_test_add_func("/models/import-rename-delete", test_import_rename_delete);
    g_test_add_func("/models/import-symlinks", test_import_symlinks);
    g_test_add_func("/models/work-sweep", test_work_sweep);
    g_test_add_func("/models/ensure-dir", test_ensure_dir);
    g_test_add_func("/models/unmounted-drive", test_unmounted_drive);
    g_test_add_func("/models/import-no-space", test_import_no_space);
    g_test_add_func("/models/recommended", test_recommended);
    return g_test_run();
}
