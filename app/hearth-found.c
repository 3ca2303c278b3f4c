/* hearth-found.c — models other apps keep on this computer (see hearth-found.h). */
#include "hearth-found.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "hr-json.h"

#define SOURCE_FILE ".hearth-source.json"
/* Bounds on what one scan looks at, so that a huge or looping tree costs little. */
#define MAX_ENTRIES 20000
#define MAX_MANIFEST (1u << 20)

void
hearth_found_model_free(HearthFoundModel *m)
{
    if (!m)
        return;
    g_free(m->app);
    g_free(m->name);
    g_free(m->path);
    hearth_model_info_free(m->info);
    g_free(m->added);
    g_free(m);
}

gboolean
hearth_found_model_usable(const HearthFoundModel *m)
{
    return m->info && m->info->supported && !m->info->problem;
}

typedef struct {
    GPtrArray *found;      /* HearthFoundModel * */
    GHashTable *seen;      /* real paths already found */
    guint entries;         /* directory entries read, against MAX_ENTRIES */
} Scan;

static int
compare_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A string member, or NULL (absent, or not a string). */
static const char *
member_str(JsonObject *o, const char *name)
{
    JsonNode *n = o ? json_object_get_member(o, name) : NULL;
    return n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING ? json_node_get_string(n)
                                                                                        : NULL;
}

static char *
real_path(const char *path)
{
    char *r = realpath(path, NULL);
    if (!r)
        return NULL;
    char *g = g_strdup(r);
    free(r);
    return g;
}

/* "foo-00002-of-00003.gguf": a part of a split GGUF, which Hearth does not read. */
static gboolean
is_split_part(const char *name)
{
    const char *of = g_strrstr(name, "-of-");
    if (!of || of - name < 6 || of[-6] != '-')
        return FALSE;
    for (int i = 1; i <= 5; i++)
        if (!g_ascii_isdigit(of[-i]) || !g_ascii_isdigit(of[3 + i]))
            return FALSE;
    return g_ascii_strcasecmp(of + 9, ".gguf") == 0;
}

static gboolean
has_gguf_suffix(const char *name)
{
    size_t n = strlen(name);
    return n > 5 && g_ascii_strcasecmp(name + n - 5, ".gguf") == 0;
}

/* A GGUF file a chat model could be in (not a vision projector, not a part of a split file). */
static gboolean
gguf_candidate(const char *name)
{
    if (name[0] == '.' || !has_gguf_suffix(name) || is_split_part(name))
        return FALSE;
    g_autofree char *low = g_ascii_strdown(name, -1);
    return strstr(low, "mmproj") == NULL;
}

/* A sharded Hugging Face folder with every shard its index names (a download stopped half-way lacks some). */
static gboolean
shards_complete(const char *dir)
{
    g_autofree char *index = g_build_filename(dir, "model.safetensors.index.json", NULL);
    if (!g_file_test(index, G_FILE_TEST_EXISTS))
        return TRUE;
    g_autoptr(JsonParser) parser = hr_json_load_file_g(index, MAX_MANIFEST * 16, true, NULL);
    if (!parser)
        return FALSE;
    JsonNode *map = json_object_get_member(json_node_get_object(json_parser_get_root(parser)), "weight_map");
    if (!map || !JSON_NODE_HOLDS_OBJECT(map))
        return FALSE;
    g_autoptr(GList) members = json_object_get_members(json_node_get_object(map));
    for (GList *l = members; l; l = l->next) {
        const char *file = member_str(json_node_get_object(map), l->data);
        if (!file || strchr(file, '/'))
            return FALSE;
        g_autofree char *p = g_build_filename(dir, file, NULL);
        if (!g_file_test(p, G_FILE_TEST_IS_REGULAR))
            return FALSE;
    }
    return TRUE;
}

static void
add(Scan *s, const char *app, const char *name, const char *path, gboolean gguf)
{
    g_autofree char *real = real_path(path);
    if (!real || g_hash_table_contains(s->seen, real) || (!gguf && !shards_complete(path)))
        return;
    g_autoptr(GError) error = NULL;
    HearthModelInfo *info = gguf ? hearth_model_info_load_gguf(path, &error) : hearth_model_info_load(path, &error);
    if (!info) /* not a model after all (a partial download, a broken file): not offered */
        return;
    HearthFoundModel *m = g_new0(HearthFoundModel, 1);
    m->app = g_strdup(app);
    m->name = g_strdup(name);
    m->path = g_strdup(path);
    m->info = info;
    g_hash_table_add(s->seen, g_steal_pointer(&real));
    g_ptr_array_add(s->found, m);
}

/* ---- a folder people download into ---------------------------------------------------- */

/* The .gguf files in dir and its sub-folders to depth levels (1: dir itself), named by their path below
 * base; with folders, Hugging Face model folders (config.json) too: what a browser, `git clone` or
 * `huggingface-cli download --local-dir` left in the Downloads folder. */
static void
walk_models(Scan *s, const char *app, const char *base, const char *dir, int depth, gboolean folders)
{
    GDir *d = g_dir_open(dir, 0, NULL);
    if (!d)
        return;
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    const char *n;
    while ((n = g_dir_read_name(d)) && s->entries < MAX_ENTRIES) {
        s->entries++;
        if (n[0] != '.')
            g_ptr_array_add(names, g_strdup(n));
    }
    g_dir_close(d);
    g_ptr_array_sort(names, compare_names);
    for (guint i = 0; i < names->len; i++) {
        const char *name = g_ptr_array_index(names, i);
        g_autofree char *p = g_build_filename(dir, name, NULL);
        const char *rel = p + strlen(base);
        while (*rel == '/')
            rel++;
        if (g_file_test(p, G_FILE_TEST_IS_DIR)) {
            g_autofree char *config = g_build_filename(p, "config.json", NULL);
            if (folders && g_file_test(config, G_FILE_TEST_IS_REGULAR))
                add(s, app, rel, p, FALSE);
            else if (depth > 1)
                walk_models(s, app, base, p, depth - 1, folders);
        } else if (gguf_candidate(name) && g_file_test(p, G_FILE_TEST_IS_REGULAR)) {
            add(s, app, rel, p, TRUE);
        }
    }
}

/* ---- Ollama ------------------------------------------------------------------------ */

/* The GGUF blob a manifest names, or NULL. */
static char *
ollama_model_blob(const char *root, const char *manifest)
{
    g_autoptr(JsonParser) parser = hr_json_load_file_g(manifest, MAX_MANIFEST, true, NULL);
    if (!parser)
        return NULL;
    JsonObject *o = json_node_get_object(json_parser_get_root(parser));
    JsonNode *layers = json_object_get_member(o, "layers");
    if (!layers || !JSON_NODE_HOLDS_ARRAY(layers))
        return NULL;
    JsonArray *a = json_node_get_array(layers);
    for (guint i = 0; i < json_array_get_length(a); i++) {
        JsonNode *l = json_array_get_element(a, i);
        if (!JSON_NODE_HOLDS_OBJECT(l))
            continue;
        JsonObject *lo = json_node_get_object(l);
        const char *type = member_str(lo, "mediaType"), *digest = member_str(lo, "digest");
        if (g_strcmp0(type, "application/vnd.ollama.image.model") != 0 || !digest ||
            !g_str_has_prefix(digest, "sha256:"))
            continue;
        const char *hex = digest + 7;
        if (strlen(hex) != 64 || strspn(hex, "0123456789abcdef") != 64) /* it becomes a file name */
            return NULL;
        g_autofree char *file = g_strdup_printf("sha256-%s", hex);
        char *blob = g_build_filename(root, "blobs", file, NULL);
        if (!g_file_test(blob, G_FILE_TEST_EXISTS)) { /* Ollama before 0.1.33 named them sha256:<hex> */
            g_free(blob);
            file[6] = ':';
            blob = g_build_filename(root, "blobs", file, NULL);
        }
        return blob;
    }
    return NULL;
}

/* manifests/<host>/<namespace>/<model>/<tag>, named as `ollama list` names it. */
static void
scan_ollama(Scan *s, const char *root)
{
    g_autofree char *manifests = g_build_filename(root, "manifests", NULL);
    GDir *dh = g_dir_open(manifests, 0, NULL);
    if (!dh)
        return;
    g_autoptr(GPtrArray) found = g_ptr_array_new_with_free_func(g_free); /* "host\nns\nmodel\ntag" */
    const char *host;
    while ((host = g_dir_read_name(dh)) && s->entries < MAX_ENTRIES) {
        g_autofree char *hp = g_build_filename(manifests, host, NULL);
        GDir *dn = g_dir_open(hp, 0, NULL);
        const char *ns;
        while (dn && (ns = g_dir_read_name(dn)) && s->entries < MAX_ENTRIES) {
            g_autofree char *np = g_build_filename(hp, ns, NULL);
            GDir *dm = g_dir_open(np, 0, NULL);
            const char *model;
            while (dm && (model = g_dir_read_name(dm)) && s->entries < MAX_ENTRIES) {
                g_autofree char *mp = g_build_filename(np, model, NULL);
                GDir *dt = g_dir_open(mp, 0, NULL);
                const char *tag;
                while (dt && (tag = g_dir_read_name(dt)) && s->entries < MAX_ENTRIES) {
                    s->entries++;
                    g_ptr_array_add(found, g_strjoin("\n", host, ns, model, tag, NULL));
                }
                if (dt)
                    g_dir_close(dt);
            }
            if (dm)
                g_dir_close(dm);
        }
        if (dn)
            g_dir_close(dn);
    }
    g_dir_close(dh);
    /* "latest" after the named tags: a blob both share is then shown by its informative tag */
    g_ptr_array_sort(found, compare_names);
    for (int pass = 0; pass < 2; pass++) {
        for (guint i = 0; i < found->len; i++) {
            g_auto(GStrv) f = g_strsplit(g_ptr_array_index(found, i), "\n", 4);
            if ((strcmp(f[3], "latest") == 0) != (pass == 1))
                continue;
            g_autofree char *manifest = g_build_filename(manifests, f[0], f[1], f[2], f[3], NULL);
            g_autofree char *blob = ollama_model_blob(root, manifest);
            if (!blob)
                continue;
            g_autofree char *name =
                strcmp(f[0], "registry.ollama.ai") != 0 ? g_strdup_printf("%s/%s/%s:%s", f[0], f[1], f[2], f[3])
                : strcmp(f[1], "library") != 0        ? g_strdup_printf("%s/%s:%s", f[1], f[2], f[3])
                                                       : g_strdup_printf("%s:%s", f[2], f[3]);
            add(s, "Ollama", name, blob, TRUE);
        }
    }
}

/* ---- the Hugging Face hub cache ---------------------------------------------------- */

/* The snapshot in use: the one refs/main names, else the newest. */
static char *
hf_snapshot(const char *repo_dir)
{
    g_autofree char *ref = g_build_filename(repo_dir, "refs", "main", NULL);
    g_autofree char *hash = NULL;
    if (g_file_get_contents(ref, &hash, NULL, NULL)) {
        g_strstrip(hash);
        if (strlen(hash) == 40 && strspn(hash, "0123456789abcdef") == 40) {
            char *p = g_build_filename(repo_dir, "snapshots", hash, NULL);
            if (g_file_test(p, G_FILE_TEST_IS_DIR))
                return p;
            g_free(p);
        }
    }
    g_autofree char *snaps = g_build_filename(repo_dir, "snapshots", NULL);
    GDir *d = g_dir_open(snaps, 0, NULL);
    if (!d)
        return NULL;
    char *best = NULL;
    gint64 best_time = G_MININT64;
    const char *n;
    while ((n = g_dir_read_name(d))) {
        char *p = g_build_filename(snaps, n, NULL);
        GStatBuf st;
        if (n[0] != '.' && g_stat(p, &st) == 0 && S_ISDIR(st.st_mode) && (gint64)st.st_mtime > best_time) {
            best_time = st.st_mtime;
            g_free(best);
            best = p;
        } else {
            g_free(p);
        }
    }
    g_dir_close(d);
    return best;
}

static void
scan_hf_cache(Scan *s, const char *root)
{
    GDir *d = g_dir_open(root, 0, NULL);
    if (!d)
        return;
    g_autoptr(GPtrArray) repos = g_ptr_array_new_with_free_func(g_free);
    const char *n;
    while ((n = g_dir_read_name(d)) && s->entries < MAX_ENTRIES) {
        s->entries++;
        if (g_str_has_prefix(n, "models--") && strstr(n + 8, "--"))
            g_ptr_array_add(repos, g_strdup(n));
    }
    g_dir_close(d);
    g_ptr_array_sort(repos, compare_names);
    for (guint i = 0; i < repos->len; i++) {
        const char *dir_name = g_ptr_array_index(repos, i);
        g_autofree char *repo_dir = g_build_filename(root, dir_name, NULL);
        g_autofree char *snap = hf_snapshot(repo_dir);
        if (!snap)
            continue;
        /* models--owner--name: owner and name hold no "--" on the hub */
        const char *rest = dir_name + 8, *sep = strstr(rest, "--");
        g_autofree char *repo = g_strdup_printf("%.*s/%s", (int)(sep - rest), rest, sep + 2);
        g_autofree char *config = g_build_filename(snap, "config.json", NULL);
        if (g_file_test(config, G_FILE_TEST_IS_REGULAR)) {
            add(s, "Hugging Face", repo, snap, FALSE);
            continue;
        }
        /* a GGUF repository: each file, named owner/name/file */
        Scan sub = { g_ptr_array_new(), s->seen, s->entries };
        walk_models(&sub, "Hugging Face", snap, snap, 2, FALSE);
        s->entries = sub.entries;
        for (guint j = 0; j < sub.found->len; j++) {
            HearthFoundModel *m = g_ptr_array_index(sub.found, j);
            char *full = g_strdup_printf("%s/%s", repo, m->name);
            g_free(m->name);
            m->name = full;
            g_ptr_array_add(s->found, m);
        }
        g_ptr_array_free(sub.found, TRUE);
    }
}

/* ---- where each app keeps them ------------------------------------------------------ */

/* $HOST_<var> inside Flatpak (the host's folder, not the sandbox's), else $<var>, else ~/fallback. */
static char *
host_dir(const char *var, const char *fallback)
{
    g_autofree char *host_var = g_strconcat("HOST_", var, NULL);
    const char *v = g_getenv(host_var);
    if (!v || !*v)
        v = g_getenv(var);
    if (v && g_path_is_absolute(v))
        return g_strdup(v);
    return g_build_filename(g_get_home_dir(), fallback, NULL);
}

static const char *
env_dir(const char *var)
{
    const char *v = g_getenv(var);
    return v && g_path_is_absolute(v) ? v : NULL;
}

/* A model folder of the models folder that links to another app's files (its .hearth-source.json says so). */
typedef struct {
    char *model;        /* the folder */
    char *name;         /* its name in the models folder */
    char *app, *was, *path;   /* linked_from, linked_name, linked_path (linked_name may be NULL) */
} Linked;

static void
linked_free(Linked *l)
{
    g_free(l->model);
    g_free(l->name);
    g_free(l->app);
    g_free(l->was);
    g_free(l->path);
    g_free(l);
}

/* model's link, or NULL when it is not a linked model. */
static Linked *
read_linked(const char *model)
{
    g_autofree char *src = g_build_filename(model, SOURCE_FILE, NULL);
    if (!g_file_test(src, G_FILE_TEST_IS_REGULAR))
        return NULL;
    g_autoptr(JsonParser) parser = hr_json_load_file_g(src, MAX_MANIFEST, true, NULL);
    if (!parser)
        return NULL;
    JsonObject *o = json_node_get_object(json_parser_get_root(parser));
    const char *app = member_str(o, "linked_from"), *path = member_str(o, "linked_path");
    if (!app || !path)
        return NULL;
    Linked *l = g_new0(Linked, 1);
    l->model = g_strdup(model);
    l->name = g_path_get_basename(model);
    l->app = g_strdup(app);
    l->was = g_strdup(member_str(o, "linked_name"));
    l->path = g_strdup(path);
    return l;
}

/* Every linked model of the models folder (read only from their .hearth-source.json files, not the models'
 * headers: hearth_found_add runs in the main loop), listed before anything is changed. */
static GPtrArray *
read_all_linked(const char *models_dir)
{
    GPtrArray *all = g_ptr_array_new_with_free_func((GDestroyNotify)linked_free);
    g_autofree char *root = hearth_models_resolve_dir(models_dir);
    GDir *d = g_dir_open(root, 0, NULL);
    if (!d)
        return all;
    const char *n;
    while ((n = g_dir_read_name(d))) {
        g_autofree char *model = n[0] != '.' ? g_build_filename(root, n, NULL) : NULL;
        Linked *l = model ? read_linked(model) : NULL;
        if (l)
            g_ptr_array_add(all, l);
    }
    g_dir_close(d);
    return all;
}

/* What the models folder links to already: real path of the linked file or folder -> the model's path. */
static void
linked_paths(const char *models_dir, GHashTable *by_real)
{
    g_autoptr(GPtrArray) all = read_all_linked(models_dir);
    for (guint i = 0; i < all->len; i++) {
        const Linked *l = g_ptr_array_index(all, i);
        char *real = real_path(l->path);
        if (real)
            g_hash_table_insert(by_real, real, g_strdup(l->model));
    }
}

static int
compare_found(gconstpointer a, gconstpointer b)
{
    const HearthFoundModel *x = *(HearthFoundModel *const *)a, *y = *(HearthFoundModel *const *)b;
    int c = g_utf8_collate(x->app, y->app);
    return c ? c : g_utf8_collate(x->name, y->name);
}

static gboolean fill_links(const HearthFoundModel *m, const char *target, const char *dir, const char *name,
                           GError **error);

gboolean
hearth_found_link_gone(const char *model_dir)
{
    Linked *l = read_linked(model_dir);
    const gboolean gone = l && !g_file_test(l->path, G_FILE_TEST_EXISTS);
    if (l)
        linked_free(l);
    return gone;
}

/* Linked models whose files the other app replaced (an `ollama pull` of a newer version removes the old blob;
 * a hub cache cleaned of an old snapshot): each is linked again to what the app now keeps under the same name,
 * in place, so that it goes on working. A link whose files are still there is left alone. */
static void
relink_gone(const char *models_dir, GPtrArray *found)
{
    g_autofree char *root = hearth_models_resolve_dir(models_dir);
    g_autoptr(GPtrArray) all = read_all_linked(models_dir);
    for (guint i = 0; i < all->len; i++) {
        const Linked *l = g_ptr_array_index(all, i);
        if (!l->was || g_file_test(l->path, G_FILE_TEST_EXISTS))
            continue;
        const HearthFoundModel *now = NULL;
        for (guint k = 0; k < found->len && !now; k++) {
            const HearthFoundModel *m = g_ptr_array_index(found, k);
            if (strcmp(m->app, l->app) == 0 && strcmp(m->name, l->was) == 0 && hearth_found_model_usable(m))
                now = m;
        }
        if (!now)
            continue;
        g_autoptr(GError) error = NULL;
        g_autoptr(HearthWorkDir) work = hearth_models_work_new(root, "relink", l->name, &error);
        if (!work)
            continue;
        g_autofree char *fresh = g_build_filename(hearth_work_dir_path(work), "model", NULL);
        g_autofree char *old = g_build_filename(hearth_work_dir_path(work), "old", NULL);
        g_autofree char *to = g_canonicalize_filename(now->path, NULL);
        if (g_mkdir(fresh, 0755) == 0 && fill_links(now, to, fresh, l->name, &error) &&
            g_rename(l->model, old) == 0 && g_rename(fresh, l->model) != 0)
            (void)g_rename(old, l->model);   /* put back: it stays as it was */
    }
}

GPtrArray *
hearth_found_scan(const char *models_dir)
{
    Scan s = { g_ptr_array_new_with_free_func((GDestroyNotify)hearth_found_model_free),
               g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL), 0 };
    const char *home = g_get_home_dir();
    g_autofree char *cache = host_dir("XDG_CACHE_HOME", ".cache");
    g_autofree char *data = host_dir("XDG_DATA_HOME", ".local/share");

    const char *ollama = env_dir("OLLAMA_MODELS");
    if (ollama) {
        scan_ollama(&s, ollama);
    } else {
        g_autofree char *user = g_build_filename(home, ".ollama", "models", NULL);
        scan_ollama(&s, user);
        scan_ollama(&s, "/usr/share/ollama/.ollama/models");
    }

    const char *hf = env_dir("HF_HUB_CACHE");
    const char *hf_home = env_dir("HF_HOME");
    g_autofree char *hf_root = hf        ? g_strdup(hf)
                               : hf_home ? g_build_filename(hf_home, "hub", NULL)
                                         : g_build_filename(cache, "huggingface", "hub", NULL);
    scan_hf_cache(&s, hf_root);

    g_autofree char *lms = g_build_filename(home, ".lmstudio", "models", NULL);
    g_autofree char *lms_old = g_build_filename(cache, "lm-studio", "models", NULL);
    walk_models(&s, "LM Studio", lms, lms, 3, FALSE);
    walk_models(&s, "LM Studio", lms_old, lms_old, 3, FALSE);

    g_autofree char *gpt4all = g_build_filename(data, "nomic.ai", "GPT4All", NULL);
    walk_models(&s, "GPT4All", gpt4all, gpt4all, 1, FALSE);

    const char *llama_env = env_dir("LLAMA_CACHE");
    g_autofree char *llama = llama_env ? g_strdup(llama_env) : g_build_filename(cache, "llama.cpp", NULL);
    walk_models(&s, "llama.cpp", llama, llama, 1, FALSE);

    g_autofree char *jan = g_build_filename(data, "Jan", "data", "llamacpp", "models", NULL);
    g_autofree char *jan_old = g_build_filename(home, "jan", "models", NULL);
    walk_models(&s, "Jan", jan, jan, 2, FALSE);
    walk_models(&s, "Jan", jan_old, jan_old, 2, FALSE);

    /* the Downloads folder (by its own name, which is the user's language's) */
    const char *special = g_get_user_special_dir(G_USER_DIRECTORY_DOWNLOAD);
    g_autofree char *downloads = special && strcmp(special, home) != 0 ? g_strdup(special)
                                                                      : g_build_filename(home, "Downloads", NULL);
    g_autofree char *downloads_name = g_path_get_basename(downloads);
    walk_models(&s, downloads_name, downloads, downloads, 2, TRUE);

    g_hash_table_destroy(s.seen);
    g_ptr_array_sort(s.found, compare_found);
    relink_gone(models_dir, s.found);

    /* what the models folder links to already */
    g_autoptr(GHashTable) linked = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    linked_paths(models_dir, linked);
    for (guint i = 0; i < s.found->len; i++) {
        HearthFoundModel *m = g_ptr_array_index(s.found, i);
        g_autofree char *real = real_path(m->path);
        const char *at = real ? g_hash_table_lookup(linked, real) : NULL;
        m->added = g_strdup(at);
    }
    return s.found;
}

static void
scan_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
    g_task_return_pointer(task, hearth_found_scan(data), (GDestroyNotify)g_ptr_array_unref);
}

void
hearth_found_scan_async(const char *models_dir, GCancellable *cancellable, GAsyncReadyCallback callback,
                        gpointer user_data)
{
    GTask *task = g_task_new(NULL, cancellable, callback, user_data);
    g_task_set_task_data(task, g_strdup(models_dir), g_free);
    g_task_run_in_thread(task, scan_thread);
    g_object_unref(task);
}

GPtrArray *
hearth_found_scan_finish(GAsyncResult *result, GError **error)
{
    return g_task_propagate_pointer(G_TASK(result), error);
}

/* ---- adding one ----------------------------------------------------------------------- */

char *
hearth_found_model_folder_name(const HearthFoundModel *m)
{
    /* the last part of the name: "owner/repo" → "repo", "repo/file.gguf" → "file"; Ollama's
     * "model:tag" → "model-tag" ("latest" dropped) */
    const char *base = strrchr(m->name, '/');
    base = base ? base + 1 : m->name;
    g_autofree char *s = g_strdup(*base ? base : "model");
    if (has_gguf_suffix(s))
        s[strlen(s) - 5] = '\0';
    if (g_str_has_suffix(s, ":latest"))
        s[strlen(s) - 7] = '\0';
    for (char *p = s; *p; p++)
        if (*p == ':' || *p == '\\' || (unsigned char)*p < 0x20)
            *p = '-';
    while (s[0] == '.')
        memmove(s, s + 1, strlen(s));
    if (!*s || hearth_models_check_name(s))
        return g_strdup("model");
    return g_steal_pointer(&s);
}

static gboolean
make_link(const char *target, const char *link, GError **error)
{
    if (symlink(target, link) != 0) {
        int e = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "linking %s to %s: %s", link, target, g_strerror(e));
        return FALSE;
    }
    return TRUE;
}

/* dir (made, empty) gets links to the model's files (a Hugging Face folder: one per file; a GGUF file: one,
 * named <name>.gguf, the suffix the loader looks for) and the source file saying where they lead. */
static gboolean
fill_links(const HearthFoundModel *m, const char *target, const char *dir, const char *name, GError **error)
{
    if (g_file_test(target, G_FILE_TEST_IS_DIR)) {
        GDir *d = g_dir_open(target, 0, error);
        if (!d)
            return FALSE;
        const char *n;
        gboolean ok = TRUE;
        while (ok && (n = g_dir_read_name(d))) {
            g_autofree char *from = g_build_filename(target, n, NULL);
            if (n[0] == '.' || !g_file_test(from, G_FILE_TEST_IS_REGULAR))
                continue;
            g_autofree char *to = g_build_filename(dir, n, NULL);
            ok = make_link(from, to, error);
        }
        g_dir_close(d);
        if (!ok)
            return FALSE;
    } else {
        g_autofree char *file = g_strconcat(name, ".gguf", NULL);
        g_autofree char *to = g_build_filename(dir, file, NULL);
        if (!make_link(target, to, error))
            return FALSE;
    }
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
    if (strcmp(m->app, "Hugging Face") == 0 && g_file_test(target, G_FILE_TEST_IS_DIR)) {
        json_builder_set_member_name(b, "repo");
        json_builder_add_string_value(b, m->name);
    }
    json_builder_set_member_name(b, "linked_from");
    json_builder_add_string_value(b, m->app);
    json_builder_set_member_name(b, "linked_name");
    json_builder_add_string_value(b, m->name);
    json_builder_set_member_name(b, "linked_path");
    json_builder_add_string_value(b, target);
    json_builder_end_object(b);
    g_autoptr(JsonGenerator) gen = json_generator_new();
    g_autoptr(JsonNode) node = json_builder_get_root(b);
    json_generator_set_root(gen, node);
    json_generator_set_pretty(gen, TRUE);
    g_autofree char *src = g_build_filename(dir, SOURCE_FILE, NULL);
    return json_generator_to_file(gen, src, error);
}

char *
hearth_found_add(const HearthFoundModel *m, const char *models_dir, const char *name, GError **error)
{
    g_autofree char *root = hearth_models_resolve_dir(models_dir);
    g_autofree char *target = g_canonicalize_filename(m->path, NULL);
    /* added already (the scan may be older than the folder) */
    {
        g_autoptr(GHashTable) linked = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        linked_paths(root, linked);
        g_autofree char *real = real_path(target);
        const char *at = real ? g_hash_table_lookup(linked, real) : NULL;
        if (at)
            return g_strdup(at);
    }
    g_autofree char *base = name ? g_strdup(name) : hearth_found_model_folder_name(m);
    const char *why = hearth_models_check_name(base);
    if (why) {
        g_set_error(error, HEARTH_MODELS_ERROR, HEARTH_MODELS_ERROR_INVALID_NAME, "'%s': %s", base, why);
        return NULL;
    }
    g_autofree char *final_name = g_strdup(base);
    g_autofree char *final_path = g_build_filename(root, final_name, NULL);
    for (int k = 2; g_file_test(final_path, G_FILE_TEST_EXISTS) || g_file_test(final_path, G_FILE_TEST_IS_SYMLINK);
         k++) {
        if (name || k > 99) {
            g_set_error(error, HEARTH_MODELS_ERROR, HEARTH_MODELS_ERROR_EXISTS,
                        "a model named '%s' is already installed in %s", final_name, root);
            return NULL;
        }
        g_free(final_name);
        g_free(final_path);
        final_name = g_strdup_printf("%s-%d", base, k);
        final_path = g_build_filename(root, final_name, NULL);
    }
    if (!hearth_models_ensure_dir(root, error))
        return NULL;
    g_autoptr(HearthWorkDir) work = hearth_models_work_new(root, "link", final_name, error);
    if (!work)
        return NULL;
    g_autofree char *tmp = g_build_filename(hearth_work_dir_path(work), "model", NULL);
    if (g_mkdir(tmp, 0755) != 0) {
        int e = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "creating %s: %s", tmp, g_strerror(e));
        return NULL;
    }
    if (!fill_links(m, target, tmp, final_name, error))
        return NULL;
    if (g_rename(tmp, final_path) != 0) {
        int e = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "moving %s to %s: %s", tmp, final_path,
                    g_strerror(e));
        return NULL;
    }
    return g_steal_pointer(&final_path);
}
