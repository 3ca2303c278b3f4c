/* test-found.c — app/hearth-found.c: models other apps keep on this computer, in a home made here.
 *
 * Ollama's manifests and blobs (names as `ollama list` gives them, a blob two tags share found once under the
 * informative tag, a digest that is not a plain hash refused, a non-model layer skipped), the Hugging Face hub
 * cache (refs/main, else the newest snapshot; a model folder; a GGUF repository's files; a snapshot without
 * weights passed over), LM Studio, GPT4All, llama.cpp, Jan and the Downloads folder (files and model folders,
 * two levels down); vision projectors and split parts passed over; what Hearth cannot run reported with why.
 * Adding one: links and no copy, the source file saying so, the same one twice gives the same folder, a taken
 * name gets "-2", the found list then says where it was added; deleting it leaves the other app's file; a link
 * whose file went is linked again to what the app keeps now under the same name, or listed with a problem.
 * The models are the fuzz corpus's small GGUF files and tests/fixtures/hf-tiny.
 */
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "hearth-config.h"
#include "hearth-found.h"

static char *home;

static char *
corpus(const char *name)
{
    return g_build_filename(HEARTH_SOURCE_ROOT, "tests", "fuzz", "corpus-gguf", name, NULL);
}

static void
put_file(const char *path, const char *data, gssize len)
{
    g_autofree char *dir = g_path_get_dirname(path);
    g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
    GError *error = NULL;
    g_file_set_contents(path, data, len, &error);
    g_assert_no_error(error);
}

static void
copy_file(const char *from, const char *to)
{
    g_autofree char *data = NULL;
    gsize len = 0;
    GError *error = NULL;
    g_file_get_contents(from, &data, &len, &error);
    g_assert_no_error(error);
    put_file(to, data, (gssize)len);
}

static char *
sha256_of(const char *path)
{
    g_autofree char *data = NULL;
    gsize len = 0;
    g_assert_true(g_file_get_contents(path, &data, &len, NULL));
    return g_compute_checksum_for_data(G_CHECKSUM_SHA256, (const guchar *)data, len);
}

/* An Ollama store at root: manifests/<host>/<ns>/<model>/<tag> whose model layer is the seed file. */
static char *
ollama_put(const char *root, const char *host, const char *ns, const char *model, const char *tag, const char *seed)
{
    g_autofree char *src = corpus(seed);
    g_autofree char *sha = sha256_of(src);
    g_autofree char *blob_name = g_strdup_printf("sha256-%s", sha);
    char *blob = g_build_filename(root, "blobs", blob_name, NULL);
    copy_file(src, blob);
    g_autofree char *manifest = g_build_filename(root, "manifests", host, ns, model, tag, NULL);
    g_autofree char *json = g_strdup_printf(
        "{\"schemaVersion\":2,\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.license\",\"digest\":"
        "\"sha256:%064d\"},{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":\"sha256:%s\","
        "\"size\":1}]}",
        0, sha);
    put_file(manifest, json, -1);
    return blob;
}

static void
reset_home(void)
{
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", home);
    g_assert_cmpint(system(cmd), ==, 0);
    g_assert_cmpint(g_mkdir_with_parents(home, 0755), ==, 0);
    g_autofree char *cache = g_build_filename(home, ".cache", NULL);
    g_autofree char *data = g_build_filename(home, ".local", "share", NULL);
    g_setenv("XDG_CACHE_HOME", cache, TRUE);
    g_setenv("XDG_DATA_HOME", data, TRUE);
    g_unsetenv("HOST_XDG_CACHE_HOME");
    g_unsetenv("HOST_XDG_DATA_HOME");
    g_unsetenv("HF_HOME");
    g_unsetenv("HF_HUB_CACHE");
    g_unsetenv("LLAMA_CACHE");
    g_autofree char *ollama = g_build_filename(home, ".ollama", "models", NULL);
    g_setenv("OLLAMA_MODELS", ollama, TRUE); /* not the system's /usr/share/ollama */
}

static HearthFoundModel *
find(GPtrArray *list, const char *app, const char *name)
{
    for (guint i = 0; i < list->len; i++) {
        HearthFoundModel *m = list->pdata[i];
        if (strcmp(m->app, app) == 0 && strcmp(m->name, name) == 0)
            return m;
    }
    return NULL;
}

static guint
count_app(GPtrArray *list, const char *app)
{
    guint n = 0;
    for (guint i = 0; i < list->len; i++)
        n += strcmp(((HearthFoundModel *)list->pdata[i])->app, app) == 0;
    return n;
}

static void
test_ollama(void)
{
    reset_home();
    const char *root = g_getenv("OLLAMA_MODELS");
    g_autofree char *spm = ollama_put(root, "registry.ollama.ai", "library", "tiny", "latest", "seed-llama-spm.gguf");
    /* "q4" sorts after "latest": the informative tag is preferred, not the first */
    g_autofree char *spm2 = ollama_put(root, "registry.ollama.ai", "library", "tiny", "q4", "seed-llama-spm.gguf");
    g_autofree char *qwen = ollama_put(root, "registry.ollama.ai", "someone", "qwen", "q8", "seed-qwen2.gguf");
    g_autofree char *hf = ollama_put(root, "hf.co", "org", "repo-GGUF", "Q4_K_M", "seed-llama3-rope-freqs.gguf");
    g_autofree char *broken = ollama_put(root, "registry.ollama.ai", "library", "broken", "latest",
                                         "seed-every-type.gguf");
    /* a digest that would leave blobs/, and a manifest without a model layer */
    g_autofree char *evil = g_build_filename(root, "manifests", "registry.ollama.ai", "library", "evil", "x", NULL);
    put_file(evil,
             "{\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":\"sha256:../../x\"}]}", -1);
    g_autofree char *empty = g_build_filename(root, "manifests", "registry.ollama.ai", "library", "empty", "x", NULL);
    put_file(empty, "{\"layers\":[]}", -1);
    /* an older Ollama's blob name, sha256:<hex> */
    g_autofree char *legacy =
        ollama_put(root, "registry.ollama.ai", "library", "legacy", "7b", "seed-llama-bpe-linear.gguf");
    g_autofree char *legacy_name = g_path_get_basename(legacy);
    legacy_name[6] = ':';
    g_autofree char *legacy_dir = g_path_get_dirname(legacy);
    g_autofree char *legacy_new = g_build_filename(legacy_dir, legacy_name, NULL);
    g_assert_cmpint(g_rename(legacy, legacy_new), ==, 0);
    g_autofree char *junk = g_build_filename(root, "manifests", "registry.ollama.ai", "library", "junk", "x", NULL);
    put_file(junk, "not json", -1);
    /* the families Hearth named "cannot run yet" before it ran them: Ollama's gemma3 and phi4-mini */
    g_autofree char *gemma = ollama_put(root, "registry.ollama.ai", "library", "gemma3", "1b",
                                        "seed-gemma3-ollama.gguf");
    g_autofree char *phi = ollama_put(root, "registry.ollama.ai", "library", "phi4-mini", "latest",
                                      "seed-phi3-longrope.gguf");

    g_autoptr(GPtrArray) list = hearth_found_scan(NULL);
    g_assert_cmpuint(count_app(list, "Ollama"), ==, 7);
    for (int i = 0; i < 2; i++) {
        HearthFoundModel *f = find(list, "Ollama", i ? "phi4-mini:latest" : "gemma3:1b");
        g_assert_nonnull(f);
        if (!hearth_found_model_usable(f))
            g_error("%s: not usable: %s", f->name, f->info->problem ? f->info->problem : "(no problem given)");
        g_assert_cmpstr(f->info->architecture, ==, i ? "phi3" : "gemma3");
    }
    g_assert_cmpstr(find(list, "Ollama", "legacy:7b")->path, ==, legacy_new);
    /* the blob tiny:latest and tiny:q4 share: once, by the named tag */
    HearthFoundModel *m = find(list, "Ollama", "tiny:q4");
    g_assert_nonnull(m);
    g_assert_null(find(list, "Ollama", "tiny:latest"));
    g_assert_cmpstr(m->path, ==, spm);
    g_assert_true(hearth_found_model_usable(m));
    g_assert_cmpstr(m->info->format, ==, "GGUF F32");
    g_assert_null(m->added);
    m = find(list, "Ollama", "someone/qwen:q8");
    g_assert_nonnull(m);
    g_assert_true(hearth_found_model_usable(m));
    g_assert_cmpstr(m->info->architecture, ==, "qwen2");
    g_assert_nonnull(find(list, "Ollama", "hf.co/org/repo-GGUF:Q4_K_M"));
    m = find(list, "Ollama", "broken:latest");
    g_assert_nonnull(m);
    g_assert_false(hearth_found_model_usable(m));
    g_assert_nonnull(m->info->problem);

    g_autofree char *name = hearth_found_model_folder_name(find(list, "Ollama", "tiny:q4"));
    g_assert_cmpstr(name, ==, "tiny-q4");
    g_autofree char *name2 = hearth_found_model_folder_name(find(list, "Ollama", "broken:latest"));
    g_assert_cmpstr(name2, ==, "broken");
    g_autofree char *name3 = hearth_found_model_folder_name(find(list, "Ollama", "hf.co/org/repo-GGUF:Q4_K_M"));
    g_assert_cmpstr(name3, ==, "repo-GGUF-Q4_K_M");
}

/* A hub cache repository: blobs, a snapshot of relative links (as huggingface_hub writes it), refs/main. */
static char *
hf_put(const char *hub, const char *repo_dir, const char *rev, const char *src_dir, gboolean ref)
{
    g_autofree char *repo = g_build_filename(hub, repo_dir, NULL);
    char *snap = g_build_filename(repo, "snapshots", rev, NULL);
    g_assert_cmpint(g_mkdir_with_parents(snap, 0755), ==, 0);
    GDir *d = g_dir_open(src_dir, 0, NULL);
    g_assert_nonnull(d);
    const char *n;
    while ((n = g_dir_read_name(d))) {
        g_autofree char *from = g_build_filename(src_dir, n, NULL);
        g_autofree char *sha = sha256_of(from);
        g_autofree char *blob = g_build_filename(repo, "blobs", sha, NULL);
        copy_file(from, blob);
        g_autofree char *target = g_build_filename("..", "..", "blobs", sha, NULL);
        g_autofree char *link = g_build_filename(snap, n, NULL);
        g_assert_cmpint(symlink(target, link), ==, 0);
    }
    g_dir_close(d);
    if (ref) {
        g_autofree char *refs = g_build_filename(repo, "refs", "main", NULL);
        put_file(refs, rev, -1);
    }
    return snap;
}

static void
test_hf_cache(void)
{
    reset_home();
    g_autofree char *hub = g_build_filename(g_getenv("XDG_CACHE_HOME"), "huggingface", "hub", NULL);
    g_autofree char *llama = g_build_filename(HEARTH_FIXTURES, "hf-tiny", "llama-gqa-tied", "f32", NULL);
    g_autofree char *qwen = g_build_filename(HEARTH_FIXTURES, "hf-tiny", "qwen2-bias", "f32", NULL);
    /* two snapshots: refs/main names the older one */
    g_autofree char *old = hf_put(hub, "models--acme--tiny-llama", "1111111111111111111111111111111111111111", llama,
                                  TRUE);
    g_autofree char *newer = hf_put(hub, "models--acme--tiny-llama", "2222222222222222222222222222222222222222",
                                    qwen, FALSE);
    /* no refs: the newest snapshot */
    g_autofree char *q1 = hf_put(hub, "models--acme--tiny-qwen", "3333333333333333333333333333333333333333", llama,
                                 FALSE);
    g_autofree char *q2 = hf_put(hub, "models--acme--tiny-qwen", "4444444444444444444444444444444444444444", qwen,
                                 FALSE);
    g_autofree char *cmd = g_strdup_printf("touch -d '2020-01-01' '%s'", q1);
    g_assert_cmpint(system(cmd), ==, 0);
    /* a tokenizer-only download: no weights, not offered */
    g_autofree char *tok = g_build_filename(hub, "models--acme--tokenizer-only", "snapshots",
                                            "5555555555555555555555555555555555555555", "config.json", NULL);
    put_file(tok, "{\"model_type\":\"llama\"}", -1);
    /* a GGUF repository, with a projector and a split model beside the model */
    g_autofree char *gsnap = g_build_filename(hub, "models--acme--tiny-GGUF", "snapshots",
                                              "6666666666666666666666666666666666666666", NULL);
    g_autofree char *seed = corpus("seed-qwen2.gguf");
    g_autofree char *g1 = g_build_filename(gsnap, "tiny-Q8_0.gguf", NULL);
    g_autofree char *g2 = g_build_filename(gsnap, "mmproj-tiny-f16.gguf", NULL);
    g_autofree char *g3 = g_build_filename(gsnap, "big", "big-Q4_K_M-00001-of-00002.gguf", NULL);
    copy_file(seed, g1);
    g_autofree char *seed2 = corpus("seed-llama-spm.gguf");
    copy_file(seed2, g2);
    copy_file(seed2, g3);
    /* a sharded download stopped half-way: its index names a shard that is not there */
    g_autofree char *half = g_build_filename(hub, "models--acme--half", "snapshots",
                                             "8888888888888888888888888888888888888888", NULL);
    g_autofree char *half_cfg = g_build_filename(half, "config.json", NULL);
    g_autofree char *llama_cfg = g_build_filename(llama, "config.json", NULL);
    g_autofree char *llama_st = g_build_filename(llama, "model.safetensors", NULL);
    g_autofree char *half_st = g_build_filename(half, "model-00001-of-00002.safetensors", NULL);
    g_autofree char *half_index = g_build_filename(half, "model.safetensors.index.json", NULL);
    copy_file(llama_cfg, half_cfg);
    copy_file(llama_st, half_st);
    put_file(half_index,
             "{\"weight_map\": {\"model.embed_tokens.weight\": \"model-00001-of-00002.safetensors\", "
             "\"lm_head.weight\": \"model-00002-of-00002.safetensors\"}}", -1);
    /* datasets are not models */
    g_autofree char *ds = g_build_filename(hub, "datasets--acme--text", "snapshots", "7", "config.json", NULL);
    put_file(ds, "{}", -1);

    g_autoptr(GPtrArray) list = hearth_found_scan(NULL);
    g_assert_cmpuint(count_app(list, "Hugging Face"), ==, 3);
    HearthFoundModel *m = find(list, "Hugging Face", "acme/tiny-llama");
    g_assert_nonnull(m);
    g_assert_cmpstr(m->path, ==, old);
    g_assert_true(hearth_found_model_usable(m));
    g_assert_cmpstr(m->info->format, ==, "FP32");
    m = find(list, "Hugging Face", "acme/tiny-qwen");
    g_assert_nonnull(m);
    g_assert_cmpstr(m->path, ==, q2);
    g_assert_cmpstr(m->info->model_type, ==, "qwen2");
    m = find(list, "Hugging Face", "acme/tiny-GGUF/tiny-Q8_0.gguf");
    g_assert_nonnull(m);
    g_assert_true(hearth_found_model_usable(m));
    g_autofree char *name = hearth_found_model_folder_name(m);
    g_assert_cmpstr(name, ==, "tiny-Q8_0");
    g_autofree char *name2 = hearth_found_model_folder_name(find(list, "Hugging Face", "acme/tiny-llama"));
    g_assert_cmpstr(name2, ==, "tiny-llama");

    /* $HF_HUB_CACHE wins over the default place */
    g_autofree char *other = g_build_filename(home, "elsewhere", NULL);
    g_assert_cmpint(g_mkdir_with_parents(other, 0755), ==, 0);
    g_setenv("HF_HUB_CACHE", other, TRUE);
    g_autoptr(GPtrArray) none = hearth_found_scan(NULL);
    g_assert_cmpuint(count_app(none, "Hugging Face"), ==, 0);
    g_unsetenv("HF_HUB_CACHE");
}

static void
test_other_apps(void)
{
    reset_home();
    g_autofree char *seed = corpus("seed-qwen2.gguf");
    g_autofree char *seed2 = corpus("seed-llama-spm.gguf");
    g_autofree char *lms = g_build_filename(home, ".lmstudio", "models", "pub", "Repo-GGUF", "Repo-Q4_0.gguf", NULL);
    g_autofree char *lms_proj = g_build_filename(home, ".lmstudio", "models", "pub", "Repo-GGUF", "mmproj-F16.gguf",
                                                 NULL);
    g_autofree char *lms_deep = g_build_filename(home, ".lmstudio", "models", "a", "b", "c", "deep.gguf", NULL);
    g_autofree char *lms_old = g_build_filename(g_getenv("XDG_CACHE_HOME"), "lm-studio", "models", "p", "r",
                                                "old.gguf", NULL);
    g_autofree char *gpt = g_build_filename(g_getenv("XDG_DATA_HOME"), "nomic.ai", "GPT4All", "chat.gguf", NULL);
    g_autofree char *lc = g_build_filename(g_getenv("XDG_CACHE_HOME"), "llama.cpp", "org_repo_model.gguf", NULL);
    g_autofree char *jan = g_build_filename(g_getenv("XDG_DATA_HOME"), "Jan", "data", "llamacpp", "models", "m1",
                                            "model.gguf", NULL);
    g_autofree char *jan_old = g_build_filename(home, "jan", "models", "m2", "m2.gguf", NULL);
    g_autofree char *not_gguf = g_build_filename(g_getenv("XDG_DATA_HOME"), "nomic.ai", "GPT4All", "notes.txt", NULL);
    copy_file(seed, lms);
    copy_file(seed2, lms_proj);
    copy_file(seed, lms_deep);
    copy_file(seed2, lms_old);
    copy_file(seed2, gpt);
    put_file(not_gguf, "hello", -1);
    /* the same file as LM Studio's, by a link: found once */
    g_autofree char *lc_dir = g_path_get_dirname(lc);
    g_assert_cmpint(g_mkdir_with_parents(lc_dir, 0755), ==, 0);
    g_assert_cmpint(symlink(lms, lc), ==, 0);
    copy_file(seed, jan);
    copy_file(seed2, jan_old);

    /* the Downloads folder: a .gguf, a model folder (config.json) and a .gguf one folder down; not deeper, not a
     * folder without weights, not a projector */
    g_autofree char *dl_gguf = g_build_filename(home, "Downloads", "Qwen-Q8_0.gguf", NULL);
    g_autofree char *dl_sub = g_build_filename(home, "Downloads", "models", "sub.gguf", NULL);
    g_autofree char *dl_deep = g_build_filename(home, "Downloads", "a", "b", "deep.gguf", NULL);
    g_autofree char *dl_proj = g_build_filename(home, "Downloads", "mmproj-model-f16.gguf", NULL);
    g_autofree char *dl_dir = g_build_filename(home, "Downloads", "tiny-llama", NULL);
    g_autofree char *dl_empty = g_build_filename(home, "Downloads", "empty-model", "config.json", NULL);
    g_autofree char *fix = g_build_filename(HEARTH_FIXTURES, "hf-tiny", "llama-gqa-tied", "f32", NULL);
    g_autofree char *fix_cfg = g_build_filename(fix, "config.json", NULL);
    g_autofree char *fix_st = g_build_filename(fix, "model.safetensors", NULL);
    g_autofree char *dl_cfg = g_build_filename(dl_dir, "config.json", NULL);
    g_autofree char *dl_st = g_build_filename(dl_dir, "model.safetensors", NULL);
    g_autofree char *seed3 = corpus("seed-llama-bpe-linear.gguf");
    g_autofree char *seed4 = corpus("seed-llama3-rope-freqs.gguf");
    copy_file(seed3, dl_gguf);
    copy_file(seed4, dl_sub);
    copy_file(seed3, dl_deep);
    copy_file(seed3, dl_proj);
    copy_file(fix_cfg, dl_cfg);
    copy_file(fix_st, dl_st);
    copy_file(fix_cfg, dl_empty);

    g_autoptr(GPtrArray) list = hearth_found_scan(NULL);
    for (guint i = 0; i < list->len; i++) {
        HearthFoundModel *m = list->pdata[i];
        g_test_message("found: %s %s %s", m->app, m->name, m->path);
    }
    g_assert_nonnull(find(list, "Downloads", "Qwen-Q8_0.gguf"));
    g_assert_nonnull(find(list, "Downloads", "models/sub.gguf"));
    HearthFoundModel *dm = find(list, "Downloads", "tiny-llama");
    g_assert_nonnull(dm);
    g_assert_true(hearth_found_model_usable(dm));
    g_assert_cmpstr(dm->path, ==, dl_dir);
    g_assert_cmpuint(count_app(list, "Downloads"), ==, 3);
    g_assert_nonnull(find(list, "LM Studio", "pub/Repo-GGUF/Repo-Q4_0.gguf"));
    g_assert_nonnull(find(list, "LM Studio", "p/r/old.gguf"));
    g_assert_cmpuint(count_app(list, "LM Studio"), ==, 2); /* not the projector, not deeper than publisher/repo */
    g_assert_nonnull(find(list, "GPT4All", "chat.gguf"));
    g_assert_cmpuint(count_app(list, "llama.cpp"), ==, 0);
    g_assert_nonnull(find(list, "Jan", "m1/model.gguf"));
    g_assert_nonnull(find(list, "Jan", "m2/m2.gguf"));
    g_assert_cmpuint(list->len, ==, 8);
    /* by app, then name */
    g_assert_cmpstr(((HearthFoundModel *)list->pdata[0])->app, ==, "Downloads");
    g_assert_cmpstr(((HearthFoundModel *)list->pdata[list->len - 1])->app, ==, "LM Studio");

    /* inside Flatpak the host's data folder, not the sandbox's */
    g_autofree char *sandbox = g_build_filename(home, "sandbox-data", NULL);
    g_setenv("HOST_XDG_DATA_HOME", g_getenv("XDG_DATA_HOME"), TRUE);
    g_setenv("XDG_DATA_HOME", sandbox, TRUE);
    g_autoptr(GPtrArray) flat = hearth_found_scan(NULL);
    g_assert_nonnull(find(flat, "GPT4All", "chat.gguf"));
}

static void
test_add(void)
{
    reset_home();
    const char *root = g_getenv("OLLAMA_MODELS");
    g_autofree char *blob = ollama_put(root, "registry.ollama.ai", "library", "tiny", "1b", "seed-llama-spm.gguf");
    g_autofree char *hub = g_build_filename(g_getenv("XDG_CACHE_HOME"), "huggingface", "hub", NULL);
    g_autofree char *llama = g_build_filename(HEARTH_FIXTURES, "hf-tiny", "llama-gqa-tied", "f32", NULL);
    g_autofree char *snap = hf_put(hub, "models--acme--tiny-llama", "1111111111111111111111111111111111111111", llama,
                                   TRUE);
    g_autofree char *models = g_build_filename(home, "models", NULL);
    /* the name the Ollama model would get is taken by a model of the user's own */
    g_autofree char *taken = g_build_filename(models, "tiny-1b", "x.gguf", NULL);
    g_autofree char *seed = corpus("seed-qwen2.gguf");
    copy_file(seed, taken);

    g_autoptr(GPtrArray) list = hearth_found_scan(models);
    HearthFoundModel *om = find(list, "Ollama", "tiny:1b"), *hm = find(list, "Hugging Face", "acme/tiny-llama");
    g_assert_nonnull(om);
    g_assert_nonnull(hm);
    GError *error = NULL;
    g_autofree char *p1 = hearth_found_add(om, models, NULL, &error);
    g_assert_no_error(error);
    g_autofree char *want1 = g_build_filename(models, "tiny-1b-2", NULL);
    g_assert_cmpstr(p1, ==, want1);
    g_autofree char *link = g_build_filename(p1, "tiny-1b-2.gguf", NULL);
    g_assert_true(g_file_test(link, G_FILE_TEST_IS_SYMLINK));
    g_autofree char *target = g_file_read_link(link, NULL);
    g_assert_cmpstr(target, ==, blob);
    /* added twice: the same folder */
    g_autofree char *again = hearth_found_add(om, models, NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(again, ==, p1);
    /* a name given that is taken: refused */
    g_assert_null(hearth_found_add(hm, models, "tiny-1b", &error));
    g_assert_error(error, HEARTH_MODELS_ERROR, HEARTH_MODELS_ERROR_EXISTS);
    g_clear_error(&error);
    g_autofree char *p2 = hearth_found_add(hm, models, NULL, &error);
    g_assert_no_error(error);
    /* a folder of links, one per file, and nothing half-made left in .work */
    GDir *d = g_dir_open(llama, 0, NULL);
    const char *n;
    while ((n = g_dir_read_name(d))) {
        g_autofree char *l = g_build_filename(p2, n, NULL);
        g_assert_true(g_file_test(l, G_FILE_TEST_IS_SYMLINK));
    }
    g_dir_close(d);
    g_autofree char *work = g_build_filename(models, ".work", NULL);
    GDir *w = g_dir_open(work, 0, NULL);
    g_assert_null(w ? g_dir_read_name(w) : NULL);
    if (w)
        g_dir_close(w);

    /* the installed list: linked, named by the source file; the found list: where each was added */
    g_autoptr(GPtrArray) installed = hearth_models_list(models, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(installed->len, ==, 3);
    for (guint i = 0; i < installed->len; i++) {
        HearthModelInfo *info = installed->pdata[i];
        if (strcmp(info->name, "tiny-1b") == 0) {
            g_assert_null(info->linked_from);
        } else if (strcmp(info->name, "tiny-1b-2") == 0) {
            g_assert_cmpstr(info->linked_from, ==, "Ollama");
            g_assert_true(info->supported);
            g_assert_cmpuint(info->size_on_disk, <, 1024); /* links and a note, not the file */
        } else {
            g_assert_cmpstr(info->name, ==, "tiny-llama");
            g_assert_cmpstr(info->linked_from, ==, "Hugging Face");
            g_assert_cmpstr(info->source_repo, ==, "acme/tiny-llama");
            g_assert_true(info->supported);
        }
    }
    g_autoptr(GPtrArray) after = hearth_found_scan(models);
    g_assert_cmpstr(find(after, "Ollama", "tiny:1b")->added, ==, p1);
    g_assert_cmpstr(find(after, "Hugging Face", "acme/tiny-llama")->added, ==, p2);

    /* deleting the linked model leaves Ollama's blob */
    g_assert_true(hearth_models_delete(models, "tiny-1b-2", &error));
    g_assert_no_error(error);
    g_assert_true(g_file_test(blob, G_FILE_TEST_IS_REGULAR));
    g_autoptr(GPtrArray) again_found = hearth_found_scan(models);
    g_assert_null(find(again_found, "Ollama", "tiny:1b")->added);

    /* the hub cache's files go (the user cleared the cache): listed with the problem, to be deleted */
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s/models--acme--tiny-llama'", hub);
    g_assert_cmpint(system(cmd), ==, 0);
    g_autoptr(GPtrArray) gone = hearth_models_list(models, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(gone->len, ==, 2);
    HearthModelInfo *info = gone->pdata[1];
    g_assert_cmpstr(info->name, ==, "tiny-llama");
    g_assert_cmpstr(info->linked_from, ==, "Hugging Face");
    g_assert_nonnull(strstr(info->problem, "are gone"));
    g_assert_true(hearth_models_delete(models, "tiny-llama", &error));
    g_assert_no_error(error);
    (void)snap;
}

/* The other app replaces a model's files: `ollama pull` of a newer version (the manifest names a new blob,
 * the old one is removed), a hub cache whose snapshot was replaced. The next scan links the model again to what
 * the app keeps now under the same name, in place; one whose files are still there is left alone, and one
 * whose name is gone too stays listed as gone. */
static void
test_relink(void)
{
    reset_home();
    const char *root = g_getenv("OLLAMA_MODELS");
    g_autofree char *blob = ollama_put(root, "registry.ollama.ai", "library", "tiny", "1b", "seed-llama-spm.gguf");
    g_autofree char *keep = ollama_put(root, "registry.ollama.ai", "library", "keep", "1b", "seed-qwen2.gguf");
    g_autofree char *hub = g_build_filename(g_getenv("XDG_CACHE_HOME"), "huggingface", "hub", NULL);
    g_autofree char *llama = g_build_filename(HEARTH_FIXTURES, "hf-tiny", "llama-gqa-tied", "f32", NULL);
    g_autofree char *qwen = g_build_filename(HEARTH_FIXTURES, "hf-tiny", "qwen2-bias", "f32", NULL);
    g_autofree char *snap = hf_put(hub, "models--acme--tiny", "1111111111111111111111111111111111111111", llama, TRUE);
    g_autofree char *models = g_build_filename(home, "models", NULL);
    GError *error = NULL;
    g_autoptr(GPtrArray) list = hearth_found_scan(models);
    g_autofree char *p1 = hearth_found_add(find(list, "Ollama", "tiny:1b"), models, NULL, &error);
    g_assert_no_error(error);
    g_autofree char *p2 = hearth_found_add(find(list, "Ollama", "keep:1b"), models, NULL, &error);
    g_assert_no_error(error);
    g_autofree char *p3 = hearth_found_add(find(list, "Hugging Face", "acme/tiny"), models, NULL, &error);
    g_assert_no_error(error);

    /* a newer tiny:1b (another file), the old blob removed; the hub's snapshot replaced by a newer one */
    g_assert_cmpint(g_unlink(blob), ==, 0);
    g_autofree char *blob2 =
        ollama_put(root, "registry.ollama.ai", "library", "tiny", "1b", "seed-llama-bpe-linear.gguf");
    g_autofree char *snap2 = hf_put(hub, "models--acme--tiny", "2222222222222222222222222222222222222222", qwen, TRUE);
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", snap);
    g_assert_cmpint(system(cmd), ==, 0);

    g_autoptr(GPtrArray) after = hearth_found_scan(models);
    g_autofree char *link = g_build_filename(p1, "tiny-1b.gguf", NULL);
    g_autofree char *to = g_file_read_link(link, NULL);
    g_assert_cmpstr(to, ==, blob2);
    g_assert_cmpstr(find(after, "Ollama", "tiny:1b")->added, ==, p1);
    g_autofree char *keep_link = g_build_filename(p2, "keep-1b.gguf", NULL);
    g_autofree char *keep_to = g_file_read_link(keep_link, NULL);
    g_assert_cmpstr(keep_to, ==, keep);
    g_assert_cmpstr(find(after, "Hugging Face", "acme/tiny")->added, ==, p3);
    g_autoptr(GPtrArray) installed = hearth_models_list(models, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(installed->len, ==, 3);
    for (guint i = 0; i < installed->len; i++) {
        HearthModelInfo *info = installed->pdata[i];
        g_assert_null(info->problem);
        if (strcmp(info->name, "tiny") == 0)
            g_assert_cmpstr(info->architecture, ==, "Qwen2ForCausalLM");   /* the new snapshot's model */
    }
    g_autofree char *work = g_build_filename(models, ".work", NULL);
    GDir *w = g_dir_open(work, 0, NULL);
    g_assert_null(w ? g_dir_read_name(w) : NULL);
    if (w)
        g_dir_close(w);

    /* the name gone too: nothing to link to, it stays listed as gone */
    g_assert_cmpint(g_unlink(blob2), ==, 0);
    g_autofree char *manifest = g_build_filename(root, "manifests", "registry.ollama.ai", "library", "tiny", "1b",
                                                 NULL);
    g_assert_cmpint(g_unlink(manifest), ==, 0);
    g_autoptr(GPtrArray) gone = hearth_found_scan(models);
    g_assert_null(find(gone, "Ollama", "tiny:1b"));
    g_autoptr(GPtrArray) listed = hearth_models_list(models, &error);
    g_assert_no_error(error);
    gboolean seen = FALSE;
    for (guint i = 0; i < listed->len; i++) {
        HearthModelInfo *info = listed->pdata[i];
        if (strcmp(info->name, "tiny-1b") == 0)
            seen = info->problem && strstr(info->problem, "are gone");
    }
    g_assert_true(seen);
    (void)snap2;
}

int
main(int argc, char **argv)
{
    g_autofree char *tmp = g_dir_make_tmp("hearth-found-XXXXXX", NULL);
    home = g_build_filename(tmp, "home", NULL);
    g_setenv("HOME", home, TRUE); /* before GLib reads it */
    g_autofree char *config = g_build_filename(home, ".config", NULL);
    g_setenv("XDG_CONFIG_HOME", config, TRUE);   /* no user-dirs.dirs: the Downloads folder is ~/Downloads */
    g_setenv("HEARTH_MODELS_DIR", "/nonexistent/hearth-found-test", TRUE);
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/found/ollama", test_ollama);
    g_test_add_func("/found/hf-cache", test_hf_cache);
    g_test_add_func("/found/other-apps", test_other_apps);
    g_test_add_func("/found/add", test_add);
    g_test_add_func("/found/relink", test_relink);
    int rc = g_test_run();
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", tmp);
    if (system(cmd) != 0)
        rc = 1;
    return rc;
}
