/* test-hub.c — app/hearth-hub.c against a fake Hugging Face Hub: a
 * SoupServer on 127.0.0.1 (random port, own thread and main context) that
 * serves a generated repo in the hub's URL and API shape (revision and
 * paginated tree API, resolve/ with a redirect to a "CDN" for LFS files,
 * X-Error-Code headers), with knobs for the failures a real download meets:
 * dropped connections, a server that ignores Range, 503s, a stalled
 * transfer, a gated repo, a wrong checksum in the listing.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include <sys/wait.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "hearth-hub.h"
#include "hearth-models.h"

/* Set by a test: the rename of acme/tiny's finished download folder into its place fails (EIO), as it may on
 * a disk that goes away. This program's rename() comes first for GLib's g_rename; every other rename goes
 * through. */
static gboolean fail_install_rename;

int
rename(const char *from, const char *to)
{
    static int (*real)(const char *, const char *);
    if (!real)
        real = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
    if (fail_install_rename && g_str_has_suffix(from, "/.partial/acme--tiny")) {
        errno = EIO;
        return -1;
    }
    return real(from, to);
}

#define REPO "acme/tiny"
#define GATED_REPO "acme/gated"
#define GOOD_TOKEN "hf_good_token"
#define BIG "model-00001-of-00002.safetensors"
#define BIG_DATA (1536 * 1024 + 77)
#define BIG_SIZE file_size(BIG)

typedef struct {
    char *path;
    GBytes *data;
    gboolean lfs;
    char *sha256;
    char *git_oid;
} FakeFile;

typedef struct {
    GMutex lock;
    GPtrArray *files;       /* FakeFile */
    char *commit;
    /* knobs */
    gboolean ignore_range;
    int drops_left;         /* drop the next N transfers of BIG after drop_after bytes */
    guint64 drop_after;
    guint64 stall_after;    /* > 0: BIG stops (connection kept open) after this many bytes */
    int fail_503_left;      /* answer the next N resolve requests with 503 */
    char *corrupt_sha_of;   /* listed with a wrong sha256 */
    guint page_size;        /* tree entries per page */
    char *sha_override;     /* hostile: the revision API's "sha" */
    gboolean no_hashes;     /* hostile: tree entries without oid/lfs */
    gboolean huge_sizes;    /* hostile: sizes that sum past 2^64 */
    gboolean deep_json;     /* hostile: the revision reply nested 100k deep */
    char *evil_name;        /* hostile: an extra listed file with this name */
    char *redirect_to;      /* hostile: resolve/ answers 302 to this Location */
    /* what happened */
    GPtrArray *log;         /* "METHOD path range auth" per request */
    GPtrArray *stalled;     /* GIOStream kept open */
    /* the server */
    GMainContext *ctx;
    GMainLoop *loop;
    GThread *thread;
    GCond cond;
    guint port;
    char *endpoint;
} Fake;

static Fake *fake;

static void
fake_file_free(gpointer p)
{
    FakeFile *f = p;
    g_free(f->path);
    g_bytes_unref(f->data);
    g_free(f->sha256);
    g_free(f->git_oid);
    g_free(f);
}

static void
add_file_bytes(const char *path, GBytes *data, gboolean lfs)
{
    gsize size = g_bytes_get_size(data);
    FakeFile *f = g_new0(FakeFile, 1);
    f->path = g_strdup(path);
    f->data = data;
    f->lfs = lfs;
    f->sha256 = g_compute_checksum_for_bytes(G_CHECKSUM_SHA256, f->data);
    GChecksum *c = g_checksum_new(G_CHECKSUM_SHA1);
    char *hdr = g_strdup_printf("blob %zu", size);
    g_checksum_update(c, (const guchar *)hdr, (gssize)strlen(hdr) + 1);
    g_checksum_update(c, g_bytes_get_data(f->data, NULL), (gssize)size);
    f->git_oid = g_strdup(g_checksum_get_string(c));
    g_checksum_free(c);
    g_free(hdr);
    g_ptr_array_add(fake->files, f);
}

static void
fill_random(guint8 *buf, gsize size, guint32 seed)
{
    GRand *r = g_rand_new_with_seed(seed);
    for (gsize i = 0; i < size; i++)
        buf[i] = (guint8)g_rand_int(r);
    g_rand_free(r);
}

static void
add_file(const char *path, gsize size, gboolean lfs, guint32 seed)
{
    guint8 *buf = g_malloc(size ? size : 1);
    fill_random(buf, size, seed);
    add_file_bytes(path, g_bytes_new_take(buf, size), lfs);
}

static void
add_text(const char *path, const char *text)
{
    add_file_bytes(path, g_bytes_new(text, strlen(text)), FALSE);
}

/* A valid safetensors file: one U8 tensor of n random bytes. */
static void
add_safetensors(const char *path, const char *tensor, gsize n, guint32 seed)
{
    char *header = g_strdup_printf("{\"%s\": {\"dtype\": \"U8\", \"shape\": [%zu], \"data_offsets\": [0, %zu]}}",
                                   tensor, n, n);
    gsize hlen = strlen(header), pad = (8 - hlen % 8) % 8;
    guint64 total_h = hlen + pad;
    gsize size = 8 + total_h + n;
    guint8 *buf = g_malloc(size);
    memcpy(buf, &total_h, 8);
    memcpy(buf + 8, header, hlen);
    memset(buf + 8 + hlen, ' ', pad);
    fill_random(buf + 8 + total_h, n, seed);
    g_free(header);
    add_file_bytes(path, g_bytes_new_take(buf, size), TRUE);
}

/* Bytes of the files a model needs. */
static guint64
wanted_total(void)
{
    guint64 t = 0;
    for (guint i = 0; i < fake->files->len; i++) {
        FakeFile *f = fake->files->pdata[i];
        if (hearth_hub_wants_file(f->path))
            t += g_bytes_get_size(f->data);
    }
    return t;
}

static guint64
file_size(const char *path);

static FakeFile *
find_file(const char *path)
{
    for (guint i = 0; i < fake->files->len; i++) {
        FakeFile *f = fake->files->pdata[i];
        if (strcmp(f->path, path) == 0)
            return f;
    }
    return NULL;
}

static guint64
file_size(const char *path)
{
    return g_bytes_get_size(find_file(path)->data);
}

static void
log_request(SoupServerMessage *msg, const char *path)
{
    SoupMessageHeaders *h = soup_server_message_get_request_headers(msg);
    const char *range = soup_message_headers_get_one(h, "Range");
    const char *auth = soup_message_headers_get_one(h, "Authorization");
    g_mutex_lock(&fake->lock);
    g_ptr_array_add(fake->log, g_strdup_printf("%s %s %s", path, range ? range : "-", auth ? "auth" : "noauth"));
    g_mutex_unlock(&fake->lock);
}

static void
set_json(SoupServerMessage *msg, JsonBuilder *b)
{
    JsonNode *root = json_builder_get_root(b);
    JsonGenerator *gen = json_generator_new();
    json_generator_set_root(gen, root);
    gsize len;
    char *s = json_generator_to_data(gen, &len);
    soup_server_message_set_status(msg, 200, NULL);
    soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_TAKE, s, len);
    g_object_unref(gen);
    json_node_unref(root);
}

static void
set_error(SoupServerMessage *msg, guint status, const char *code, const char *message)
{
    soup_server_message_set_status(msg, status, NULL);
    SoupMessageHeaders *h = soup_server_message_get_response_headers(msg);
    if (code)
        soup_message_headers_replace(h, "X-Error-Code", code);
    if (message)
        soup_message_headers_replace(h, "X-Error-Message", message);
    char *body = g_strdup_printf("{\"error\": \"%s\"}", message ? message : "error");
    soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_TAKE, body, strlen(body));
}

/* Write a raw HTTP response of `send` bytes of a `total`-byte body, then
 * close the connection (drop) or keep it open (stall). */
static void
raw_response(SoupServerMessage *msg, FakeFile *f, guint64 start, guint64 send, gboolean stall)
{
    GIOStream *io = soup_server_message_steal_connection(msg);
    g_assert_nonnull(io);
    gsize size;
    const guint8 *data = g_bytes_get_data(f->data, &size);
    char *hdr = start > 0 ? g_strdup_printf("HTTP/1.1 206 Partial Content\r\nContent-Length: %" G_GUINT64_FORMAT
                                            "\r\nContent-Range: bytes %" G_GUINT64_FORMAT "-%zu/%zu\r\n\r\n",
                                            (guint64)size - start, start, size - 1, size)
                          : g_strdup_printf("HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", size);
    GOutputStream *out = g_io_stream_get_output_stream(io);
    g_output_stream_write_all(out, hdr, strlen(hdr), NULL, NULL, NULL);
    g_output_stream_write_all(out, data + start, (gsize)send, NULL, NULL, NULL);
    g_output_stream_flush(out, NULL, NULL);
    g_free(hdr);
    if (stall) {
        g_mutex_lock(&fake->lock);
        g_ptr_array_add(fake->stalled, io);
        g_mutex_unlock(&fake->lock);
    } else {
        g_io_stream_close(io, NULL, NULL);
        g_object_unref(io);
    }
}

static void
serve_file(SoupServerMessage *msg, FakeFile *f)
{
    SoupMessageHeaders *req = soup_server_message_get_request_headers(msg);
    gsize size;
    const guint8 *data = g_bytes_get_data(f->data, &size);
    guint64 start = 0;
    const char *range = soup_message_headers_get_one(req, "Range");
    g_mutex_lock(&fake->lock);
    gboolean ignore = fake->ignore_range;
    gboolean drop = FALSE, stall = FALSE;
    guint64 limit = 0;
    if (strcmp(f->path, BIG) == 0 && fake->drops_left > 0) {
        fake->drops_left--;
        drop = TRUE;
        limit = fake->drop_after;
    } else if (strcmp(f->path, BIG) == 0 && fake->stall_after > 0) {
        stall = TRUE;
        limit = fake->stall_after;
    }
    g_mutex_unlock(&fake->lock);
    if (range && !ignore) {
        guint64 v;
        if (sscanf(range, "bytes=%" G_GUINT64_FORMAT "-", &v) == 1)
            start = v;
        if (start >= size) {
            soup_server_message_set_status(msg, 416, NULL);
            return;
        }
    }
    if (ignore)
        soup_message_headers_remove(req, "Range"); /* or libsoup would answer the range itself */
    if (drop || stall) {
        raw_response(msg, f, start, MIN(limit, size - start), stall);
        return;
    }
    if (start > 0) {
        soup_server_message_set_status(msg, 206, NULL);
        soup_message_headers_set_content_range(soup_server_message_get_response_headers(msg), (goffset)start,
                                               (goffset)size - 1, (goffset)size);
    } else {
        soup_server_message_set_status(msg, 200, NULL);
    }
    soup_server_message_set_response(msg, "application/octet-stream", SOUP_MEMORY_COPY, (const char *)data + start,
                                     size - start);
}

static void
handler(SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query, gpointer user_data)
{
    log_request(msg, path);
    char **parts = g_strsplit(path + 1, "/", 0);
    guint n = g_strv_length(parts);
    const char *auth = soup_message_headers_get_one(soup_server_message_get_request_headers(msg), "Authorization");
    gboolean authed = auth && strcmp(auth, "Bearer " GOOD_TOKEN) == 0;

    if (n >= 6 && strcmp(parts[0], "api") == 0 && strcmp(parts[1], "models") == 0) {
        char *repo = g_strdup_printf("%s/%s", parts[2], parts[3]);
        gboolean known = strcmp(repo, REPO) == 0 || strcmp(repo, GATED_REPO) == 0;
        if (!known) {
            set_error(msg, 404, "RepoNotFound", "Repository not found");
        } else if (strcmp(parts[4], "revision") == 0 && fake->deep_json) {
            GString *deep = g_string_new(NULL);
            for (int i = 0; i < 100000; i++)
                g_string_append(deep, "{\"a\":");
            g_string_append(deep, "1");
            for (int i = 0; i < 100000; i++)
                g_string_append_c(deep, '}');
            soup_server_message_set_status(msg, 200, NULL);
            soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_COPY, deep->str, deep->len);
            g_string_free(deep, TRUE);
        } else if (strcmp(parts[4], "revision") == 0) {
            JsonBuilder *b = json_builder_new();
            json_builder_begin_object(b);
            json_builder_set_member_name(b, "id");
            json_builder_add_string_value(b, repo);
            json_builder_set_member_name(b, "sha");
            json_builder_add_string_value(b, fake->sha_override ? fake->sha_override : fake->commit);
            json_builder_set_member_name(b, "gated");
            if (strcmp(repo, GATED_REPO) == 0)
                json_builder_add_string_value(b, "manual");
            else
                json_builder_add_boolean_value(b, FALSE);
            json_builder_set_member_name(b, "siblings");
            json_builder_begin_array(b);
            for (guint i = 0; i < fake->files->len; i++) {
                json_builder_begin_object(b);
                json_builder_set_member_name(b, "rfilename");
                json_builder_add_string_value(b, ((FakeFile *)fake->files->pdata[i])->path);
                json_builder_end_object(b);
            }
            json_builder_end_array(b);
            json_builder_end_object(b);
            set_json(msg, b);
            g_object_unref(b);
        } else if (strcmp(parts[4], "tree") == 0) {
            g_assert_cmpstr(parts[5], ==, fake->commit); /* pinned to the commit */
            g_assert_nonnull(query);
            g_assert_cmpstr(g_hash_table_lookup(query, "recursive"), ==, "true");
            const char *cursor = g_hash_table_lookup(query, "cursor");
            guint from = cursor ? (guint)atoi(cursor) : 0;
            /* entries: a directory, then the files */
            guint n_entries = fake->files->len + 1;
            guint to = MIN(n_entries, from + fake->page_size);
            JsonBuilder *b = json_builder_new();
            json_builder_begin_array(b);
            for (guint e = from; e < to; e++) {
                json_builder_begin_object(b);
                if (e == 0) {
                    json_builder_set_member_name(b, "type");
                    json_builder_add_string_value(b, "directory");
                    json_builder_set_member_name(b, "path");
                    json_builder_add_string_value(b, "onnx");
                    json_builder_set_member_name(b, "size");
                    json_builder_add_int_value(b, 0);
                } else {
                    FakeFile *f = fake->files->pdata[e - 1];
                    json_builder_set_member_name(b, "type");
                    json_builder_add_string_value(b, "file");
                    json_builder_set_member_name(b, "path");
                    json_builder_add_string_value(b, f->path);
                    json_builder_set_member_name(b, "size");
                    json_builder_add_int_value(b, fake->huge_sizes ? G_MAXINT64 - 5
                                                  : f->lfs ? 134 : (gint64)g_bytes_get_size(f->data));
                    if (!fake->no_hashes) {
                        json_builder_set_member_name(b, "oid");
                        json_builder_add_string_value(b, f->lfs ? "0123456789012345678901234567890123456789"
                                                                : f->git_oid);
                    }
                    if (f->lfs && !fake->no_hashes) {
                        json_builder_set_member_name(b, "lfs");
                        json_builder_begin_object(b);
                        json_builder_set_member_name(b, "oid");
                        gboolean corrupt = fake->corrupt_sha_of && strcmp(fake->corrupt_sha_of, f->path) == 0;
                        json_builder_add_string_value(
                            b, corrupt ? "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" : f->sha256);
                        json_builder_set_member_name(b, "size");
                        json_builder_add_int_value(b, (gint64)g_bytes_get_size(f->data));
                        json_builder_set_member_name(b, "pointerSize");
                        json_builder_add_int_value(b, 134);
                        json_builder_end_object(b);
                    }
                }
                json_builder_end_object(b);
            }
            if (fake->evil_name && to == n_entries) {
                json_builder_begin_object(b);
                json_builder_set_member_name(b, "type");
                json_builder_add_string_value(b, "file");
                json_builder_set_member_name(b, "path");
                json_builder_add_string_value(b, fake->evil_name);
                json_builder_set_member_name(b, "size");
                json_builder_add_int_value(b, 3);
                json_builder_set_member_name(b, "oid");
                json_builder_add_string_value(b, "0123456789012345678901234567890123456789");
                json_builder_end_object(b);
            }
            json_builder_end_array(b);
            set_json(msg, b);
            g_object_unref(b);
            if (to < n_entries) {
                char *link = g_strdup_printf("<%s/api/models/%s/tree/%s?recursive=true&cursor=%u>; rel=\"next\"",
                                             fake->endpoint, repo, fake->commit, to);
                soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Link", link);
                g_free(link);
            }
        } else {
            set_error(msg, 404, NULL, "no such API");
        }
        g_free(repo);
    } else if (n >= 5 && strcmp(parts[2], "resolve") == 0) {
        char *repo = g_strdup_printf("%s/%s", parts[0], parts[1]);
        char *file = g_strjoinv("/", parts + 4);
        FakeFile *f = find_file(file);
        g_mutex_lock(&fake->lock);
        gboolean fail = fake->fail_503_left > 0;
        if (fail)
            fake->fail_503_left--;
        g_mutex_unlock(&fake->lock);
        if (strcmp(repo, REPO) != 0 && strcmp(repo, GATED_REPO) != 0)
            set_error(msg, 404, "RepoNotFound", "Repository not found");
        else if (strcmp(repo, GATED_REPO) == 0 && !authed)
            set_error(msg, auth ? 403 : 401, "GatedRepo", "Access to this model is restricted");
        else if (strcmp(parts[3], fake->commit) != 0)
            set_error(msg, 404, "RevisionNotFound", "Invalid rev id");
        else if (!f)
            set_error(msg, 404, "EntryNotFound", "Entry not found");
        else if (fail)
            set_error(msg, 503, NULL, "busy");
        else if (fake->redirect_to) {
            soup_server_message_set_status(msg, 302, NULL);
            soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Location", fake->redirect_to);
        } else if (f->lfs) {
            /* the gated repo's CDN is another origin (the token must not follow the redirect);
             * the other's is a relative redirect, as the hub's are for renamed repos */
            char *loc = strcmp(repo, GATED_REPO) == 0
                            ? g_strdup_printf("http://localhost:%u/cdn/%s", fake->port, f->path)
                            : g_strdup_printf("/cdn/%s", f->path);
            soup_server_message_set_status(msg, 302, NULL);
            soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Location", loc);
            g_free(loc);
        } else {
            serve_file(msg, f);
        }
        g_free(file);
        g_free(repo);
    } else if (n >= 2 && strcmp(parts[0], "cdn") == 0) {
        FakeFile *f = find_file(parts[1]);
        if (f)
            serve_file(msg, f);
        else
            soup_server_message_set_status(msg, 404, NULL);
    } else {
        soup_server_message_set_status(msg, 404, NULL);
    }
    g_strfreev(parts);
}

static gpointer
server_thread(gpointer p)
{
    g_main_context_push_thread_default(fake->ctx);
    SoupServer *server = soup_server_new(NULL, NULL);
    soup_server_add_handler(server, NULL, handler, NULL, NULL);
    GError *error = NULL;
    gboolean ok = soup_server_listen_local(server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error);
    g_assert_no_error(error);
    g_assert_true(ok);
    GSList *uris = soup_server_get_uris(server);
    g_mutex_lock(&fake->lock);
    fake->port = (guint)g_uri_get_port(uris->data);
    g_cond_signal(&fake->cond);
    g_mutex_unlock(&fake->lock);
    g_slist_free_full(uris, (GDestroyNotify)g_uri_unref);
    g_main_loop_run(fake->loop);
    soup_server_disconnect(server);
    g_object_unref(server);
    g_main_context_pop_thread_default(fake->ctx);
    return NULL;
}

static void
fake_start(void)
{
    fake = g_new0(Fake, 1);
    g_mutex_init(&fake->lock);
    g_cond_init(&fake->cond);
    fake->files = g_ptr_array_new_with_free_func(fake_file_free);
    fake->log = g_ptr_array_new_with_free_func(g_free);
    fake->stalled = g_ptr_array_new_with_free_func(g_object_unref);
    fake->commit = g_strdup("4f3e2d1c0b4f3e2d1c0b4f3e2d1c0b4f3e2d1c0b");
    fake->page_size = 3;
    add_text("config.json",
             "{\"architectures\": [\"MistralForCausalLM\"], \"model_type\": \"mistral\", \"hidden_size\": 64,"
             " \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"num_key_value_heads\": 1,"
             " \"head_dim\": 16, \"intermediate_size\": 128, \"vocab_size\": 256,"
             " \"max_position_embeddings\": 128, \"rms_norm_eps\": 1e-05, \"torch_dtype\": \"float32\"}");
    add_file("tokenizer.json", 20000, FALSE, 2);
    add_file("tokenizer_config.json", 900, FALSE, 3);
    add_text("special_tokens_map.json", ""); /* empty files exist too */
    add_text("model.safetensors.index.json",
             "{\"metadata\": {}, \"weight_map\": {\"a.weight\": \"" BIG "\","
             " \"b.weight\": \"model-00002-of-00002.safetensors\"}}");
    add_safetensors(BIG, "a.weight", BIG_DATA, 5);
    add_safetensors("model-00002-of-00002.safetensors", "b.weight", 300000, 6);
    add_file("pytorch_model.bin", 50000, TRUE, 7);      /* skipped */
    add_file("onnx/model.onnx", 40000, TRUE, 8);        /* skipped */
    add_file("README.md", 500, FALSE, 9);               /* skipped */
    add_file(".gitattributes", 100, FALSE, 10);         /* skipped */
    add_file("tiny-Q4_0.gguf", 30000, TRUE, 11);        /* only when asked for by name */
    fake->ctx = g_main_context_new();
    fake->loop = g_main_loop_new(fake->ctx, FALSE);
    g_mutex_lock(&fake->lock);
    fake->thread = g_thread_new("fake-hub", server_thread, NULL);
    while (fake->port == 0)
        g_cond_wait(&fake->cond, &fake->lock);
    g_mutex_unlock(&fake->lock);
    fake->endpoint = g_strdup_printf("http://127.0.0.1:%u", fake->port);
    g_setenv("HF_ENDPOINT", fake->endpoint, TRUE);
}

static void
fake_stop(void)
{
    g_main_loop_quit(fake->loop);
    g_thread_join(fake->thread);
    g_main_loop_unref(fake->loop);
    g_main_context_unref(fake->ctx);
    g_ptr_array_unref(fake->files);
    g_ptr_array_unref(fake->log);
    g_ptr_array_unref(fake->stalled);
    g_free(fake->commit);
    g_free(fake->endpoint);
    g_free(fake->corrupt_sha_of);
    g_free(fake->sha_override);
    g_free(fake->evil_name);
    g_free(fake->redirect_to);
    g_mutex_clear(&fake->lock);
    g_cond_clear(&fake->cond);
    g_free(fake);
    fake = NULL;
}

/* Reset the knobs and the log between tests. */
static void
fake_reset(void)
{
    g_mutex_lock(&fake->lock);
    fake->ignore_range = FALSE;
    fake->drops_left = 0;
    fake->stall_after = 0;
    fake->fail_503_left = 0;
    g_clear_pointer(&fake->corrupt_sha_of, g_free);
    g_clear_pointer(&fake->sha_override, g_free);
    g_clear_pointer(&fake->evil_name, g_free);
    g_clear_pointer(&fake->redirect_to, g_free);
    fake->no_hashes = fake->huge_sizes = fake->deep_json = FALSE;
    g_ptr_array_set_size(fake->log, 0);
    g_ptr_array_set_size(fake->stalled, 0);
    g_mutex_unlock(&fake->lock);
}

/* Requests whose log line starts with prefix (a path) and contains sub. */
static guint
count_requests(const char *prefix, const char *sub)
{
    guint n = 0;
    g_mutex_lock(&fake->lock);
    for (guint i = 0; i < fake->log->len; i++) {
        const char *l = fake->log->pdata[i];
        if (g_str_has_prefix(l, prefix) && (!sub || strstr(l, sub)))
            n++;
    }
    g_mutex_unlock(&fake->lock);
    return n;
}

/* ---- helpers -------------------------------------------------------------- */

typedef struct {
    guint calls;
    guint64 last_done, last_total;
    gboolean monotonic_total;
    GString *log;
} Seen;

static void
on_progress(const HearthHubProgress *p, gpointer user_data)
{
    Seen *s = user_data;
    if (s->calls > 0 && p->total != s->last_total)
        s->monotonic_total = FALSE;
    s->calls++;
    s->last_done = p->done;
    s->last_total = p->total;
    g_assert_cmpuint(p->done, <=, p->total);
    g_assert_cmpuint(p->file_done, <=, p->file_total);
    g_assert_cmpuint(p->file_index, <, p->n_files);
}

static void
on_log(const char *message, gpointer user_data)
{
    Seen *s = user_data;
    g_string_append_printf(s->log, "%s\n", message);
    if (g_test_verbose())
        g_printerr("hub: %s\n", message);
}

static void
opts(HearthHubOptions *o, const char *dir, Seen *seen)
{
    hearth_hub_options_init(o);
    o->models_dir = dir;
    o->use_keyring = FALSE;
    o->retry_delay_ms = 5;
    o->max_attempts = 4;
    o->progress = on_progress;
    o->log = on_log;
    o->user_data = seen;
    seen->calls = 0;
    seen->monotonic_total = TRUE;
    if (!seen->log)
        seen->log = g_string_new(NULL);
    g_string_truncate(seen->log, 0);
}

static char *
temp_dir(void)
{
    GError *error = NULL;
    char *d = g_dir_make_tmp("hearth-hub-XXXXXX", &error);
    g_assert_no_error(error);
    return d;
}

static void
check_file(const char *dir, const char *name)
{
    FakeFile *f = find_file(name);
    char *p = g_build_filename(dir, name, NULL);
    char *data = NULL;
    gsize len = 0;
    GError *error = NULL;
    g_file_get_contents(p, &data, &len, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(len, ==, g_bytes_get_size(f->data));
    g_assert_true(len == 0 || memcmp(data, g_bytes_get_data(f->data, NULL), len) == 0);
    g_free(data);
    g_free(p);
}

static void
check_model_dir(const char *path)
{
    const char *wanted[] = { "config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                             "model.safetensors.index.json", BIG, "model-00002-of-00002.safetensors" };
    for (guint i = 0; i < G_N_ELEMENTS(wanted); i++)
        check_file(path, wanted[i]);
    const char *unwanted[] = { "pytorch_model.bin", "onnx", "README.md", ".gitattributes" };
    for (guint i = 0; i < G_N_ELEMENTS(unwanted); i++) {
        char *p = g_build_filename(path, unwanted[i], NULL);
        g_assert_false(g_file_test(p, G_FILE_TEST_EXISTS));
        g_free(p);
    }
}

static int
cmp_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in dir (sorted, space-separated). */
static char *
list_dir(const char *dir)
{
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    GDir *d = g_dir_open(dir, 0, NULL);
    const char *n;
    while (d && (n = g_dir_read_name(d)))
        g_ptr_array_add(names, g_strdup(n));
    if (d)
        g_dir_close(d);
    g_ptr_array_sort(names, cmp_names);
    GString *s = g_string_new(NULL);
    for (guint i = 0; i < names->len; i++)
        g_string_append_printf(s, "%s%s", i ? " " : "", (char *)names->pdata[i]);
    g_ptr_array_unref(names);
    return g_string_free(s, FALSE);
}

static char *
partial_file(const char *dir, const char *name)
{
    return g_build_filename(dir, ".partial", "acme--tiny", name, NULL);
}

static void
seed_partial(const char *dir, const char *name, gsize len)
{
    char *pdir = g_build_filename(dir, ".partial", "acme--tiny", NULL);
    g_assert_cmpint(g_mkdir_with_parents(pdir, 0755), ==, 0);
    char *p = partial_file(dir, name);
    FakeFile *f = find_file(name);
    GError *error = NULL;
    g_file_set_contents(p, g_bytes_get_data(f->data, NULL), (gssize)len, &error);
    g_assert_no_error(error);
    g_free(p);
    g_free(pdir);
}

/* ---- tests ---------------------------------------------------------------- */

static void
test_names(void)
{
    g_assert_true(hearth_hub_repo_id_valid("Qwen/Qwen2.5-0.5B-Instruct-AWQ"));
    g_assert_true(hearth_hub_repo_id_valid("a/b"));
    g_assert_false(hearth_hub_repo_id_valid("noslash"));
    g_assert_false(hearth_hub_repo_id_valid("a/b/c"));
    g_assert_false(hearth_hub_repo_id_valid("../x"));
    g_assert_false(hearth_hub_repo_id_valid("a/.."));
    g_assert_false(hearth_hub_repo_id_valid("a/b c"));
    g_assert_false(hearth_hub_repo_id_valid("/b"));
    g_assert_false(hearth_hub_repo_id_valid(NULL));
    char *d = hearth_hub_repo_dir_name("Qwen/Qwen2.5-0.5B");
    g_assert_cmpstr(d, ==, "Qwen--Qwen2.5-0.5B");
    g_free(d);
    g_assert_true(hearth_hub_wants_file("config.json"));
    g_assert_true(hearth_hub_wants_file("model-00001-of-00004.safetensors"));
    g_assert_true(hearth_hub_wants_file("model.safetensors.index.json"));
    g_assert_true(hearth_hub_wants_file("special_tokens_map.json"));
    g_assert_false(hearth_hub_wants_file("pytorch_model.bin"));
    g_assert_false(hearth_hub_wants_file("model.gguf"));
    g_assert_false(hearth_hub_wants_file("onnx/model.onnx"));
    g_assert_false(hearth_hub_wants_file("original/model.safetensors"));
    g_assert_false(hearth_hub_wants_file("README.md"));
    g_assert_false(hearth_hub_wants_file(".gitattributes"));
    /* an empty token is refused before the keyring is asked */
    GError *error = NULL;
    g_assert_false(hearth_hub_token_store(NULL, "", NULL, &error));
    g_assert_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_INVALID);
    g_clear_error(&error);
}

static void
test_download(void)
{
    fake_reset();
    char *dir = temp_dir();
    Seen seen = { 0 };
    HearthHubOptions o;
    opts(&o, dir, &seen);
    GError *error = NULL;

    /* the listing alone: wanted files only, sizes and hashes from the tree API */
    char *commit = NULL;
    GPtrArray *files = hearth_hub_list_files(REPO, &o, &commit, NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(commit, ==, fake->commit);
    g_assert_cmpuint(files->len, ==, 7);
    for (guint i = 0; i < files->len; i++) {
        HearthHubFile *hf = files->pdata[i];
        FakeFile *f = find_file(hf->path);
        g_assert_nonnull(f);
        g_assert_cmpuint(hf->size, ==, g_bytes_get_size(f->data));
        if (f->lfs)
            g_assert_cmpstr(hf->sha256, ==, f->sha256);
        else
            g_assert_cmpstr(hf->git_oid, ==, f->git_oid);
    }
    g_ptr_array_unref(files);
    g_free(commit);
    g_assert_cmpuint(count_requests("/api/models/acme/tiny/tree/", NULL), ==, 5); /* 13 entries, pages of 3 */

    char *path = hearth_hub_download(REPO, &o, NULL, &error);
    g_assert_no_error(error);
    char *expect = g_build_filename(dir, "acme--tiny", NULL);
    g_assert_cmpstr(path, ==, expect);
    check_model_dir(path);
    g_assert_cmpuint(seen.last_done, ==, seen.last_total);
    g_assert_cmpuint(seen.last_total, ==, wanted_total());
    g_assert_true(seen.monotonic_total);
    g_assert_cmpuint(count_requests("/acme/tiny/resolve/", NULL), ==, 6); /* not the empty file */
    g_assert_cmpuint(count_requests("/acme/tiny/resolve/", fake->commit), ==, 6);
    g_assert_cmpuint(count_requests("/cdn/", NULL), ==, 2);
    g_assert_cmpuint(count_requests("/acme/tiny/resolve/", ".bin"), ==, 0);
    g_assert_cmpuint(count_requests("/acme/tiny/resolve/", "onnx"), ==, 0);

    /* provenance, and no partial folder left */
    char *src = g_build_filename(path, ".hearth-source.json", NULL);
    char *text = NULL;
    g_file_get_contents(src, &text, NULL, &error);
    g_assert_no_error(error);
    g_assert_nonnull(strstr(text, "\"acme/tiny\""));
    g_assert_nonnull(strstr(text, fake->commit));
    char *pdir = g_build_filename(dir, ".partial", "acme--tiny", NULL);
    g_assert_false(g_file_test(pdir, G_FILE_TEST_EXISTS));

    /* a second download refuses to overwrite, unless asked */
    char *again = hearth_hub_download(REPO, &o, NULL, &error);
    g_assert_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_EXISTS);
    g_assert_null(again);
    g_clear_error(&error);
    o.overwrite = TRUE;
    again = hearth_hub_download(REPO, &o, NULL, &error);
    g_assert_no_error(error);
    check_model_dir(again);
    char *listing = list_dir(dir);
    g_assert_cmpstr(listing, ==, ".partial .work acme--tiny");
    g_free(listing);
    char *proot = g_build_filename(dir, ".partial", NULL);
    listing = list_dir(proot);
    g_assert_cmpstr(listing, ==, "");
    g_free(listing);
    char *wroot = g_build_filename(dir, ".work", NULL);
    listing = list_dir(wroot);
    g_assert_cmpstr(listing, ==, ""); /* the old copy is gone too */
    g_free(listing);

    /* a replace whose new copy cannot take the old one's place puts the old one back, and leaves no work */
    char *mark = g_build_filename(again, "the-old-one", NULL);
    g_assert_true(g_file_set_contents(mark, "", 0, NULL));
    fail_install_rename = TRUE;
    char *third = hearth_hub_download(REPO, &o, NULL, &error);
    fail_install_rename = FALSE;
    g_assert_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_IO);
    g_assert_null(third);
    g_clear_error(&error);
    g_assert_true(g_file_test(mark, G_FILE_TEST_IS_REGULAR));
    check_model_dir(again);
    listing = list_dir(wroot);
    g_assert_cmpstr(listing, ==, "");
    g_free(listing);
    g_free(mark);
    g_free(wroot);

    g_free(proot);
    g_free(again);
    g_free(pdir);
    g_free(text);
    g_free(src);
    g_free(expect);
    g_free(path);
    hearth_models_remove_tree(dir, NULL);
    g_free(dir);
    g_string_free(seen.log, TRUE);
}

/* One GGUF file of a repo, chosen by name: only that file is fetched (and
 * checked), into a folder named after it that the model library reads as a
 * GGUF model folder; a name the repo lacks is NOT_FOUND naming what it has;
 * a name that is not a top-level .gguf file is refused before any request. */
static void
test_gguf_file(void)
{
    fake_reset();
    char *dir = temp_dir();
    Seen seen = { 0 };
    HearthHubOptions o;
    opts(&o, dir, &seen);
    GError *error = NULL;
    o.gguf_file = "tiny-Q4_0.gguf";
    char *path = hearth_hub_download(REPO, &o, NULL, &error);
    g_assert_no_error(error);
    char *expect = g_build_filename(dir, "tiny-Q4_0", NULL);
    g_assert_cmpstr(path, ==, expect);
    char *listing = list_dir(path);
    g_assert_cmpstr(listing, ==, ".hearth-source.json tiny-Q4_0.gguf");
    g_free(listing);
    char *file = g_build_filename(path, "tiny-Q4_0.gguf", NULL);
    char *data = NULL;
    gsize len = 0;
    g_file_get_contents(file, &data, &len, &error);
    g_assert_no_error(error);
    GBytes *got = g_bytes_new_take(data, len);
    g_assert_true(g_bytes_equal(got, find_file("tiny-Q4_0.gguf")->data));
    g_bytes_unref(got);
    g_assert_cmpuint(count_requests("/acme/tiny/resolve/", NULL), ==, 1);

    o.gguf_file = "tiny-Q8_0.gguf";
    char *none = hearth_hub_download(REPO, &o, NULL, &error);
    g_assert_null(none);
    g_assert_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_NOT_FOUND);
    g_assert_nonnull(strstr(error->message, "tiny-Q4_0.gguf"));
    g_clear_error(&error);

    static const char *const bad[] = { "sub/x.gguf", "model.safetensors", ".gguf", "../x.gguf" };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        fake_reset();
        o.gguf_file = bad[i];
        none = hearth_hub_download(REPO, &o, NULL, &error);
        g_assert_null(none);
        g_assert_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_INVALID);
        g_clear_error(&error);
        g_assert_cmpuint(count_requests("/", NULL), ==, 0);
    }

    g_free(file);
    g_free(expect);
    g_free(path);
    hearth_models_remove_tree(dir, NULL);
    g_free(dir);
    g_string_free(seen.log, TRUE);
}

/* A hostile hub: each reply gives a clear error, nothing is installed, and
 * no server text reaches the log or the error with control characters. */
static void
expect_refused(const char *what, const char *text)
{
    char *dir = temp_dir();
    Seen seen = { 0 };
    HearthHubOptions o;
    opts(&o, dir, &seen);
    o.max_attempts = 1;
    GError *error = NULL;
    char *path = hearth_hub_download(REPO, &o, NULL, &error);
    g_assert_null(path);
    if (!error || !strstr(error->message, text))
        g_error("%s: expected an error with '%s', got '%s'", what, text, error ? error->message : "none");
    for (const char *c = error->message; *c; c++)
        g_assert_true((unsigned char)*c >= 0x20);
    for (const char *c = seen.log ? seen.log->str : ""; *c; c++)
        g_assert_true((unsigned char)*c >= 0x20 || *c == '\n');
    g_clear_error(&error);
    char *installed = g_build_filename(dir, "acme--tiny", NULL);
    g_assert_false(g_file_test(installed, G_FILE_TEST_EXISTS));
    g_free(installed);
    hearth_models_remove_tree(dir, NULL);
    g_free(dir);
    if (seen.log)
        g_string_free(seen.log, TRUE);
}

static void
test_hostile(void)
{
    fake_reset();
    fake->sha_override = g_strdup("../../../etc");
    expect_refused("commit id with a path", "no valid commit id");
    fake_reset();
    fake->sha_override = g_strdup("abc1234");
    expect_refused("short commit id", "no valid commit id");
    fake_reset();
    fake->no_hashes = TRUE;
    expect_refused("listing without hashes", "no checksum");
    fake_reset();
    fake->huge_sizes = TRUE;
    expect_refused("sizes past 2^64", "add up");
    fake_reset();
    fake->deep_json = TRUE;
    expect_refused("JSON 100k deep", "nested more than");
    fake_reset();
    fake->redirect_to = g_strdup("file:///etc/passwd");
    expect_refused("file:// redirect", "bad redirect");
    fake_reset();
    fake->redirect_to = g_strdup("http://\x1b[2J\x1b]0;pwned\x07/x");
    expect_refused("escape sequences in a redirect", "bad redirect");
    /* a name with escape sequences is not a file Hearth wants: skipped */
    fake_reset();
    fake->evil_name = g_strdup("\x1b[31mevil\x1b[0m.safetensors");
    g_assert_false(hearth_hub_wants_file(fake->evil_name));
    g_assert_false(hearth_hub_wants_file("a\nb.safetensors"));
    g_assert_false(hearth_hub_wants_file("\xff.safetensors"));
    g_assert_true(hearth_hub_wants_file("model-00001-of-00002.safetensors"));
    char *dir = temp_dir();
    Seen seen = { 0 };
    HearthHubOptions o;
    opts(&o, dir, &seen);
    GError *error = NULL;
    GPtrArray *files = hearth_hub_list_files(REPO, &o, NULL, NULL, &error);
    g_assert_no_error(error);
    for (guint i = 0; i < files->len; i++)
        g_assert_null(strchr(((HearthHubFile *)files->pdata[i])->path, 0x1b));
    g_ptr_array_unref(files);
    hearth_models_remove_tree(dir, NULL);
    g_free(dir);
    if (seen.log)
        g_string_free(seen.log, TRUE);
    fake_reset();
}

static void
test_resume(void)
{
    fake_reset();
    char *dir = temp_dir();
    seed_partial(dir, BIG, 600000);
    seed_partial(dir, "config.json", file_size("config.json")); /* complete: not fetched again */
    Seen seen = { 0 };
    HearthHubOptions o;
    opts(&o, dir, &seen);
    GError *error = NULL;
    g_assert_cmpuint(hearth_hub_partial_bytes(REPO, dir), ==, 600000 + file_size("config.json"));
    char *path = hearth_hub_download(REPO, &o, NULL, &error);
    g_assert_no_error(error);
    check_model_dir(path);
    g_assert_cmpuint(count_requests("/cdn/" BIG, NULL), ==, 1);
    g_assert_cmpuint(count_requests("/cdn/" BIG, "bytes=600000-"), ==, 1);
    g_assert_cmpuint(count_requests("/acme/tiny/resolve/" "4f3e2d1c0b4f3e2d1c0b4f3e2d1c0b4f3e2d1c0b/config.json",
                                    NULL), ==, 0);
    g_assert_nonnull(strstr(seen.log->str, "resuming at 600000"));
    g_free(path);
    hearth_models_remove_tree(dir, NULL);
    g_free(dir);
    g_string_free(seen.log, TRUE);
}

static void
test_dropped_connection(void)
{
    fake_reset();
    fake->drops_left = 2;
    fake->drop_after = 500000;
    char *dir = temp_dir();
    Seen seen = { 0 };
    HearthHubOptions o;
    opts(&o, dir, &seen);
    GError *error = NULL;
    char *path = hearth_hub_download(REPO, &o, NULL, &error);
    g_assert_no_error(error);
    check_model_dir(path);
    /* 0 → 500000 (drop), 500000 → 1000000 (drop), then the rest */
    g_assert_cmpuint(count_requests("/cdn/" BIG, NULL), ==, 3);
    g_assert_cmpuint(count_requests("/cdn/" BIG, "bytes=500000-"), ==, 1);
    g_assert_cmpuint(count_requests("/cdn/" BIG, "bytes=1000000-"), ==, 1);
    g_assert_nonnull(strstr(seen.log->str, "retrying"));
    g_free(path);
    hearth_models_remove_tree(dir, NULL);
    g_free(dir);
    g_string_free(seen.log, TRUE);
}

static void
test_retry_5xx(void)
{
    fake_reset();
    fake->fail_503_left = 2;
    char *dir = temp_dir();
    Seen seen = { 0 };
    HearthHubOptions o;
    opts(&o, dir, &seen);
    GError *error = NULL;
    char *path = hearth_hub_download(REPO, &o, NULL, &error);
    g_assert_no_error(error);
    check_model_dir(path);
    g_assert_nonnull(strstr(seen.log->str, "HTTP 503"));
    g_free(path);

    /* bounded: a server that keeps failing ends with a network error */
    fake_reset();
    fake->fail_503_left = 1000;
    o.overwrite = TRUE;
    path = hearth_hub_download(REPO, &o, NULL, &error);
    g_assert_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_NETWORK);
    g_assert_nonnull(strstr(error->message, "giving up after 4 attempts"));
    g_assert_null(path);
    g_clear_error(&error);
    g_assert_cmpuint(count_requests("/acme/tiny/resolve/", NULL), ==, 4);
    hearth_models_remove_tree(dir, NULL);
    g_free(dir);
    g_string_free(seen.log, TRUE);
}

static void
test_not_found(void)
{
    fake_reset();
    char *dir = temp_dir();
    Seen seen = { 0 };
    HearthHubOptions o;
    opts(&o, dir, &seen);
    GError *error = NULL;
    char *path = hearth_hub_download("acme/missing", &o, NULL, &error);
    g_assert_null(path);
    g_assert_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_NOT_FOUND);
    g_assert_nonnull(strstr(error->message, "acme/missing was not found"));
    g_clear_error(&error);
    char *listing = list_dir(dir);
    g_assert_cmpstr(listing, ==, "");
    g_free(listing);

    /* a malformed id never reaches the network */
    path = hearth_hub_download("not a repo", &o, NULL, &error);
    g_assert_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_INVALID);
    g_clear_error(&error);
    hearth_models_remove_tree(dir, NULL);
    g_free(dir);
    g_string_free(seen.log, TRUE);
}

static void
test_gated(void)
{
    fake_reset();
    char *dir = temp_dir();
    Seen seen = { 0 };
    HearthHubOptions o;
    opts(&o, dir, &seen);
    GError *error = NULL;
    char *path = hearth_hub_download(GATED_REPO, &o, NULL, &error);
    g_assert_null(path);
    g_assert_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_AUTH);
    g_assert_nonnull(strstr(error->message, "gated"));
    g_clear_error(&error);
    /* a wrong token: 403 */
    o.token = "hf_wrong";
    path = hearth_hub_download(GATED_REPO, &o, NULL, &error);
    g_assert_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_AUTH);
    g_assert_nonnull(strstr(error->message, "no access"));
    g_clear_error(&error);
    /* the right one, from $HF_TOKEN */
    o.token = NULL;
    g_setenv("HF_TOKEN", GOOD_TOKEN, TRUE);
    fake_reset();
    path = hearth_hub_download(GATED_REPO, &o, NULL, &error);
    g_unsetenv("HF_TOKEN");
    g_assert_no_error(error);
    check_model_dir(path);
    /* the token goes to the hub, never to the CDN it redirects to */
    g_assert_cmpuint(count_requests("/acme/gated/resolve/", "noauth"), ==, 0);
    g_assert_cmpuint(count_requests("/cdn/", NULL), ==, 2);
    g_assert_cmpuint(count_requests("/cdn/", " auth"), ==, 0);
    g_free(path);
    hearth_models_remove_tree(dir, NULL);
    g_free(dir);
    g_string_free(seen.log, TRUE);
}

static void
test_checksum(void)
{
    fake_reset();
    fake->corrupt_sha_of = g_strdup("model-00002-of-00002.safetensors");
    char *dir = temp_dir();
    Seen seen = { 0 };
    HearthHubOptions o;
    opts(&o, dir, &seen);
    GError *error = NULL;
    char *path = hearth_hub_download(REPO, &o, NULL, &error);
    g_assert_null(path);
    g_assert_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_CHECKSUM);
    g_assert_nonnull(strstr(error->message, "SHA-256"));
    g_assert_nonnull(strstr(error->message, "model-00002-of-00002.safetensors"));
    g_clear_error(&error);
    /* downloaded twice (once more after the first mismatch), then deleted */
    g_assert_cmpuint(count_requests("/cdn/model-00002", NULL), ==, 2);
    char *listing = list_dir(dir);
    g_assert_cmpstr(listing, ==, ".partial");
    g_free(listing);
    char *bad = partial_file(dir, "model-00002-of-00002.safetensors");
    g_assert_false(g_file_test(bad, G_FILE_TEST_EXISTS));
    g_free(bad);
    /* the good files stay for a later attempt */
    char *good = partial_file(dir, BIG);
    g_assert_true(g_file_test(good, G_FILE_TEST_EXISTS));
    g_free(good);
    hearth_models_remove_tree(dir, NULL);
    g_free(dir);
    g_string_free(seen.log, TRUE);
}

static void
test_ignored_range(void)
{
    fake_reset();
    fake->ignore_range = TRUE;
    char *dir = temp_dir();
    seed_partial(dir, BIG, 700000);
    /* a wrong partial prefix: a server that ignores Range must not be appended */
    char *p = partial_file(dir, BIG);
    FILE *fp = fopen(p, "r+b");
    g_assert_nonnull(fp);
    fputs("garbage", fp);
    fclose(fp);
    g_free(p);
    Seen seen = { 0 };
    HearthHubOptions o;
    opts(&o, dir, &seen);
    GError *error = NULL;
    char *path = hearth_hub_download(REPO, &o, NULL, &error);
    g_assert_no_error(error);
    check_model_dir(path);
    g_assert_cmpuint(count_requests("/cdn/" BIG, "bytes=700000-"), ==, 1);
    g_assert_cmpuint(count_requests("/cdn/" BIG, NULL), ==, 1);
    g_assert_nonnull(strstr(seen.log->str, "ignored the resume request"));
    g_free(path);
    hearth_models_remove_tree(dir, NULL);
    g_free(dir);
    g_string_free(seen.log, TRUE);
}

typedef struct {
    GMainLoop *loop;
    char *path;
    GError *error;
    char *watch;
    guint64 stop_at;
    GCancellable *cancel;
    guint progress_calls;
} AsyncRun;

static void
on_async_done(GObject *src, GAsyncResult *res, gpointer user_data)
{
    AsyncRun *r = user_data;
    r->path = hearth_hub_download_finish(res, &r->error);
    g_main_loop_quit(r->loop);
}

static gboolean
watch_partial(gpointer user_data)
{
    AsyncRun *r = user_data;
    GStatBuf st;
    if (g_stat(r->watch, &st) == 0 && (guint64)st.st_size >= r->stop_at) {
        g_cancellable_cancel(r->cancel);
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

static GThread *main_thread;

static void
on_async_progress(const HearthHubProgress *p, gpointer user_data)
{
    AsyncRun *r = user_data;
    g_assert_true(g_thread_self() == main_thread); /* delivered in the caller's context */
    r->progress_calls++;
}

static void
test_cancel_resume(void)
{
    fake_reset();
    fake->stall_after = 400000;
    char *dir = temp_dir();
    Seen seen = { 0 };
    HearthHubOptions o;
    opts(&o, dir, &seen);
    AsyncRun r = { 0 };
    o.progress = on_async_progress;
    o.log = NULL;
    o.user_data = &r;
    r.loop = g_main_loop_new(NULL, FALSE);
    r.cancel = g_cancellable_new();
    r.watch = partial_file(dir, BIG);
    r.stop_at = 400000;
    guint id = g_timeout_add(10, watch_partial, &r);
    hearth_hub_download_async(REPO, &o, r.cancel, on_async_done, &r);
    g_main_loop_run(r.loop);
    g_source_remove_by_user_data(&r);
    (void)id;
    g_assert_null(r.path);
    g_assert_error(r.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    g_clear_error(&r.error);
    g_assert_cmpuint(r.progress_calls, >, 0);
    /* paused: the partial file stays, nothing is installed */
    GStatBuf st;
    g_assert_cmpint(g_stat(r.watch, &st), ==, 0);
    g_assert_cmpint(st.st_size, ==, 400000);
    char *listing = list_dir(dir);
    g_assert_cmpstr(listing, ==, ".partial");
    g_free(listing);

    /* resume: a new run asks only for the rest */
    fake_reset();
    g_object_unref(r.cancel);
    r.cancel = g_cancellable_new();
    r.progress_calls = 0;
    hearth_hub_download_async(REPO, &o, r.cancel, on_async_done, &r);
    g_main_loop_run(r.loop);
    g_assert_no_error(r.error);
    check_model_dir(r.path);
    g_assert_cmpuint(count_requests("/cdn/" BIG, NULL), ==, 1);
    g_assert_cmpuint(count_requests("/cdn/" BIG, "bytes=400000-"), ==, 1);
    /* files finished before the pause are not fetched again */
    g_assert_cmpuint(count_requests("/acme/tiny/resolve/" "4f3e2d1c0b4f3e2d1c0b4f3e2d1c0b4f3e2d1c0b/config.json",
                                    NULL), ==, 0);

    g_free(r.path);
    g_free(r.watch);
    g_object_unref(r.cancel);
    g_main_loop_unref(r.loop);
    hearth_models_remove_tree(dir, NULL);
    g_free(dir);
    g_string_free(seen.log, TRUE);
}

static void
test_disk_space(void)
{
    fake_reset();
    char *dir = temp_dir();
    Seen seen = { 0 };
    HearthHubOptions o;
    opts(&o, dir, &seen);
    o.free_space_override = 1000;
    GError *error = NULL;
    char *path = hearth_hub_download(REPO, &o, NULL, &error);
    g_assert_null(path);
    g_assert_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_NO_SPACE);
    g_assert_nonnull(strstr(error->message, "not enough disk space"));
    g_assert_nonnull(strstr(error->message, "(1000 bytes)"));
    char *needed = g_strdup_printf("(%" G_GUINT64_FORMAT " bytes)", wanted_total());
    g_assert_nonnull(strstr(error->message, needed));
    g_free(needed);
    g_clear_error(&error);
    g_assert_cmpuint(count_requests("/acme/tiny/resolve/", NULL), ==, 0);
    g_assert_cmpuint(count_requests("/cdn/", NULL), ==, 0);
    /* resumed bytes are not counted again */
    seed_partial(dir, BIG, BIG_SIZE);
    o.free_space_override = (gint64)(wanted_total() - BIG_SIZE);
    path = hearth_hub_download(REPO, &o, NULL, &error);
    g_assert_no_error(error);
    g_free(path);
    hearth_models_remove_tree(dir, NULL);
    g_free(dir);
    g_string_free(seen.log, TRUE);
}

static void
test_discard_partial(void)
{
    char *dir = temp_dir();
    seed_partial(dir, BIG, 1000);
    g_assert_cmpuint(hearth_hub_partial_bytes(REPO, dir), ==, 1000);
    GError *error = NULL;
    /* a download going on elsewhere holds <partial>.lock: its files are not taken from under it */
    char *name = hearth_hub_repo_dir_name(REPO);
    char *lock_path = g_strdup_printf("%s/.partial/%s.lock", dir, name);
    int fd = g_open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(flock(fd, LOCK_EX | LOCK_NB), ==, 0);
    g_assert_false(hearth_hub_discard_partial(REPO, dir, &error));
    g_assert_nonnull(error);
    g_assert_nonnull(strstr(error->message, "being downloaded"));
    g_clear_error(&error);
    g_assert_cmpuint(hearth_hub_partial_bytes(REPO, dir), ==, 1000);
    close(fd);
    g_assert_true(hearth_hub_discard_partial(REPO, dir, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(hearth_hub_partial_bytes(REPO, dir), ==, 0);
    g_assert_false(g_file_test(lock_path, G_FILE_TEST_EXISTS));
    g_free(lock_path);
    g_free(name);
    hearth_models_remove_tree(dir, NULL);
    g_free(dir);
}

static void
test_drops_without_range(void)
{
    /* a server that drops every transfer at the same point and ignores
     * Range: bounded, ends with a network error */
    fake_reset();
    fake->ignore_range = TRUE;
    fake->drops_left = 1000;
    fake->drop_after = 500000;
    char *dir = temp_dir();
    Seen seen = { 0 };
    HearthHubOptions o;
    opts(&o, dir, &seen);
    GError *error = NULL;
    char *path = hearth_hub_download(REPO, &o, NULL, &error);
    g_assert_null(path);
    g_assert_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_NETWORK);
    g_assert_nonnull(strstr(error->message, "giving up"));
    g_clear_error(&error);
    g_assert_cmpuint(count_requests("/cdn/" BIG, NULL), ==, 4);
    hearth_models_remove_tree(dir, NULL);
    g_free(dir);
    g_string_free(seen.log, TRUE);
}

static void
test_lock(void)
{
    fake_reset();
    char *dir = temp_dir();
    seed_partial(dir, "config.json", 10);
    char *lock = g_build_filename(dir, ".partial", "acme--tiny.lock", NULL);
    int fd = g_open(lock, O_RDWR | O_CREAT, 0644);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(flock(fd, LOCK_EX | LOCK_NB), ==, 0);
    Seen seen = { 0 };
    HearthHubOptions o;
    opts(&o, dir, &seen);
    GError *error = NULL;
    char *path = hearth_hub_download(REPO, &o, NULL, &error);
    g_assert_null(path);
    g_assert_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_IO);
    g_assert_nonnull(strstr(error->message, "already being downloaded"));
    g_clear_error(&error);
    g_assert_true(g_file_test(lock, G_FILE_TEST_EXISTS)); /* not ours to remove */
    close(fd);
    path = hearth_hub_download(REPO, &o, NULL, &error);
    g_assert_no_error(error);
    g_assert_false(g_file_test(lock, G_FILE_TEST_EXISTS));
    g_free(path);
    g_free(lock);
    hearth_models_remove_tree(dir, NULL);
    g_free(dir);
    g_string_free(seen.log, TRUE);
}

/* hearth-cli download / models against the fake hub (argv[1] = hearth-cli). */
static const char *cli_path;

static int
run_cli(char **out, char **err, ...)
{
    GPtrArray *args = g_ptr_array_new();
    g_ptr_array_add(args, (char *)cli_path);
    va_list ap;
    va_start(ap, err);
    const char *a;
    while ((a = va_arg(ap, const char *)))
        g_ptr_array_add(args, (char *)a);
    va_end(ap);
    g_ptr_array_add(args, NULL);
    char **env = g_get_environ();
    env = g_environ_setenv(env, "ASAN_OPTIONS", "detect_leaks=0", TRUE);
    int status = -1;
    GError *error = NULL;
    g_spawn_sync(NULL, (char **)args->pdata, env, G_SPAWN_DEFAULT, NULL, NULL, out, err, &status, &error);
    g_assert_no_error(error);
    g_strfreev(env);
    g_ptr_array_unref(args);
    if (g_test_verbose())
        g_printerr("%s", *err);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static void
test_cli(void)
{
    if (!cli_path) {
        g_test_skip("no hearth-cli given");
        return;
    }
    fake_reset();
    char *dir = temp_dir();
    char *out = NULL, *err = NULL;
    int rc = run_cli(&out, &err, "download", REPO, "-o", dir, "--no-keyring", NULL);
    g_assert_cmpint(rc, ==, 0);
    char *want = g_strdup_printf("%s/acme--tiny\n", dir);
    g_assert_cmpstr(out, ==, want);
    g_assert_nonnull(strstr(err, "download: 100%"));
    g_free(want);
    g_free(out);
    g_free(err);

    rc = run_cli(&out, &err, "models", "list", "--json", "--dir", dir, "--ctx", "100", NULL);
    g_assert_cmpint(rc, ==, 0);
    JsonParser *p = json_parser_new();
    g_assert_true(json_parser_load_from_data(p, out, -1, NULL));
    JsonArray *arr = json_node_get_array(json_parser_get_root(p));
    g_assert_cmpuint(json_array_get_length(arr), ==, 1);
    JsonObject *m = json_array_get_object_element(arr, 0);
    g_assert_cmpstr(json_object_get_string_member(m, "name"), ==, "acme--tiny");
    g_assert_cmpstr(json_object_get_string_member(m, "source_repo"), ==, REPO);
    g_assert_cmpstr(json_object_get_string_member(m, "architecture"), ==, "MistralForCausalLM");
    g_assert_cmpint(json_object_get_int_member(m, "params"), ==, BIG_DATA + 300000);
    g_assert_cmpint(json_object_get_int_member(m, "weights_bytes"), ==, BIG_DATA + 300000);
    g_assert_cmpint(json_object_get_int_member(m, "kv_cache_bytes"), ==, 2 * 2 * 1 * 16 * 100 * 2);
    g_assert_cmpint(json_object_get_int_member(m, "memory_needed"), ==, BIG_DATA + 300000 + 2 * 2 * 1 * 16 * 100 * 2);
    g_assert_cmpint(json_object_get_int_member(m, "size_on_disk"), >=, (gint64)wanted_total());
    g_object_unref(p);
    g_free(out);
    g_free(err);

    /* Ctrl-C pauses: exit 130, the partial file stays, the next run resumes */
    rc = run_cli(&out, &err, "models", "delete", "acme--tiny", "--dir", dir, NULL);
    g_assert_cmpint(rc, ==, 0);
    g_free(out);
    g_free(err);
    fake_reset();
    fake->stall_after = 400000;
    const char *args[] = { cli_path, "download", REPO, "-o", dir, "--no-keyring", NULL };
    char **env = g_environ_setenv(g_get_environ(), "ASAN_OPTIONS", "detect_leaks=0", TRUE);
    GPid pid;
    GError *error = NULL;
    g_spawn_async(NULL, (char **)args, env,
                  G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL,
                  &pid, &error);
    g_assert_no_error(error);
    g_strfreev(env);
    char *part = partial_file(dir, BIG);
    gint64 deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;
    GStatBuf st;
    while (!(g_stat(part, &st) == 0 && st.st_size >= 400000) && g_get_monotonic_time() < deadline)
        g_usleep(10000);
    kill(pid, SIGINT);
    int status = 0;
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    g_spawn_close_pid(pid);
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 130);
    g_assert_cmpint(g_stat(part, &st), ==, 0);
    g_assert_cmpint(st.st_size, ==, 400000);
    g_free(part);
    fake_reset();
    rc = run_cli(&out, &err, "download", REPO, "-o", dir, "--no-keyring", NULL);
    g_assert_cmpint(rc, ==, 0);
    g_assert_cmpuint(count_requests("/cdn/" BIG, "bytes=400000-"), ==, 1);
    g_assert_cmpuint(count_requests("/cdn/" BIG, NULL), ==, 1);
    g_free(out);
    g_free(err);

    rc = run_cli(&out, &err, "download", "acme/missing", "-o", dir, "--no-keyring", NULL);
    g_assert_cmpint(rc, ==, 1);
    g_assert_nonnull(strstr(err, "acme/missing was not found"));
    g_free(out);
    g_free(err);

    rc = run_cli(&out, &err, "models", "delete", "acme--tiny", "--dir", dir, NULL);
    g_assert_cmpint(rc, ==, 0);
    g_free(out);
    g_free(err);
    rc = run_cli(&out, &err, "models", "list", "--json", "--dir", dir, NULL);
    g_assert_cmpint(rc, ==, 0);
    g_assert_nonnull(strstr(out, "[ ]") ? out : strstr(out, "[]"));
    g_free(out);
    g_free(err);
    hearth_models_remove_tree(dir, NULL);
    g_free(dir);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    if (argc > 1)
        cli_path = argv[1];
    g_unsetenv("HF_TOKEN");
    g_unsetenv("HUGGING_FACE_HUB_TOKEN");
    main_thread = g_thread_self();
    fake_start();
    g_test_add_func("/hub/names", test_names);
    g_test_add_func("/hub/download", test_download);
    g_test_add_func("/hub/gguf-file", test_gguf_file);
    g_test_add_func("/hub/resume", test_resume);
    g_test_add_func("/hub/dropped-connection", test_dropped_connection);
    g_test_add_func("/hub/retry-5xx", test_retry_5xx);
    g_test_add_func("/hub/not-found", test_not_found);
    g_test_add_func("/hub/gated", test_gated);
    g_test_add_func("/hub/checksum", test_checksum);
    g_test_add_func("/hub/ignored-range", test_ignored_range);
    g_test_add_func("/hub/cancel-resume", test_cancel_resume);
    g_test_add_func("/hub/disk-space", test_disk_space);
    g_test_add_func("/hub/discard-partial", test_discard_partial);
    g_test_add_func("/hub/drops-without-range", test_drops_without_range);
    g_test_add_func("/hub/lock", test_lock);
    g_test_add_func("/hub/cli", test_cli);
    g_test_add_func("/hub/hostile", test_hostile);
    int rc = g_test_run();
    fake_stop();
    return rc;
}
