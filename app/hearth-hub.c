/* hearth-hub.c — Hugging Face Hub downloads (see hearth-hub.h).
 *
 * Everything here is blocking libsoup 3 on one session per download, made
 * and used in the thread that runs hearth_hub_download(); the async variant
 * runs that in a GTask thread and hands progress to the caller's context.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <libsecret/secret.h>
#include <libsoup/soup.h>

#include "hearth-config.h"
#include "hearth-hub.h"

#include "hr-json.h"
#include "hearth-models.h"

G_DEFINE_QUARK(hearth-hub-error-quark, hearth_hub_error)

#define DEFAULT_ENDPOINT "https://huggingface.co"
#define SOURCE_FILE ".hearth-source.json"
#define READ_CHUNK (256 * 1024)
#define MAX_REDIRECTS 8
#define MAX_BACKOFF_MS 30000

void
hearth_hub_file_free(HearthHubFile *f)
{
    if (!f)
        return;
    g_free(f->path);
    g_free(f->sha256);
    g_free(f->git_oid);
    g_free(f);
}

void
hearth_hub_options_init(HearthHubOptions *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->use_keyring = TRUE;
    opt->max_attempts = 6;
    opt->retry_delay_ms = 1000;
    opt->free_space_override = -1;
}

/* ---- names ---------------------------------------------------------------- */

static gboolean
repo_part_valid(const char *s, size_t n)
{
    if (n == 0 || n > 96)
        return FALSE;
    if (!g_ascii_isalnum(s[0]))
        return FALSE;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!(g_ascii_isalnum(c) || c == '-' || c == '_' || c == '.'))
            return FALSE;
        if (c == '.' && i + 1 < n && s[i + 1] == '.')
            return FALSE;
    }
    return TRUE;
}

gboolean
hearth_hub_repo_id_valid(const char *repo_id)
{
    if (!repo_id)
        return FALSE;
    const char *slash = strchr(repo_id, '/');
    if (!slash || strchr(slash + 1, '/'))
        return FALSE;
    return repo_part_valid(repo_id, (size_t)(slash - repo_id)) && repo_part_valid(slash + 1, strlen(slash + 1));
}

char *
hearth_hub_repo_dir_name(const char *repo_id)
{
    const char *slash = strchr(repo_id, '/');
    if (!slash)
        return g_strdup(repo_id);
    return g_strdup_printf("%.*s--%s", (int)(slash - repo_id), repo_id, slash + 1);
}

/* A top-level file name from a server that may reach the disk and the
 * terminal: printable UTF-8 of a sane length (no escape sequences in a
 * progress line), no folders (they hold other formats). */
static gboolean
sane_file_name(const char *path)
{
    if (!path || !*path || strchr(path, '/') || path[0] == '.')
        return FALSE;
    if (strlen(path) > 200 || !g_utf8_validate(path, -1, NULL))
        return FALSE;
    for (const char *c = path; *c; c = g_utf8_next_char(c)) {
        gunichar u = g_utf8_get_char(c);
        if (u < 0x20 || (u >= 0x7f && u <= 0x9f) || u == 0x2028 || u == 0x2029 || u == 0x202e)
            return FALSE;
    }
    return TRUE;
}

/* The folder a download installs into: "owner--name" for a safetensors
 * model, the file's name without ".gguf" for one GGUF file of a repo. */
static char *
install_name(const char *repo_id, const HearthHubOptions *opt)
{
    if (opt->gguf_file && *opt->gguf_file)
        return g_strndup(opt->gguf_file, strlen(opt->gguf_file) - 5);
    return hearth_hub_repo_dir_name(repo_id);
}

gboolean
hearth_hub_wants_file(const char *path)
{
    static const char *const names[] = {
        "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
        "special_tokens_map.json", "chat_template.jinja", "model.safetensors.index.json",
    };
    if (!sane_file_name(path))
        return FALSE;
    for (size_t i = 0; i < G_N_ELEMENTS(names); i++)
        if (strcmp(path, names[i]) == 0)
            return TRUE;
    return g_str_has_suffix(path, ".safetensors");
}

static char *
default_endpoint(void)
{
    const char *env = g_getenv("HF_ENDPOINT");
    char *e = g_strdup(env && *env ? env : DEFAULT_ENDPOINT);
    size_t n = strlen(e);
    while (n > 0 && e[n - 1] == '/')
        e[--n] = '\0';
    return e;
}

static char *
partial_dir(const char *models_dir, const char *repo_id)
{
    g_autofree char *name = hearth_hub_repo_dir_name(repo_id);
    return g_build_filename(models_dir, ".partial", name, NULL);
}

/* ---- the download state --------------------------------------------------- */

typedef struct {
    char *repo_id;
    char *revision;
    char *commit;        /* what resolve/ and tree/ use: the commit when known */
    char *endpoint;
    char *token;
    char *models_dir;
    char *partial;
    const HearthHubOptions *opt;
    SoupSession *session;
    GCancellable *cancellable;

    /* progress */
    GPtrArray *files;    /* HearthHubFile */
    guint64 *have;       /* bytes on disk per file */
    guint file_index;
    guint64 total;
    gint64 last_emit_us, last_speed_us;
    guint64 session_bytes, last_speed_bytes;
    double speed;
} Dl;

static void
dl_clear(Dl *dl)
{
    g_free(dl->repo_id);
    g_free(dl->revision);
    g_free(dl->commit);
    g_free(dl->endpoint);
    if (dl->token) {
        memset(dl->token, 0, strlen(dl->token));
        g_free(dl->token);
    }
    g_free(dl->models_dir);
    g_free(dl->partial);
    g_clear_object(&dl->session);
    if (dl->files)
        g_ptr_array_unref(dl->files);
    g_free(dl->have);
}

/* Text a server sent (headers, reason phrases, names), made safe to show in
 * a window or a terminal: valid UTF-8, control characters replaced by '?',
 * at most max characters. */
static char *
safe_text(const char *s, glong max)
{
    if (!s)
        return g_strdup("");
    g_autofree char *valid = g_utf8_make_valid(s, -1);
    GString *out = g_string_new(NULL);
    glong n = 0;
    const char *c = valid;
    for (; *c && n < max; c = g_utf8_next_char(c), n++) {
        gunichar u = g_utf8_get_char(c);
        if (u < 0x20 || (u >= 0x7f && u <= 0x9f))
            g_string_append_c(out, '?');
        else
            g_string_append_unichar(out, u);
    }
    if (*c)
        g_string_append(out, "…");
    return g_string_free(out, FALSE);
}

static char *
server_text(const char *s)
{
    return safe_text(s, 200);
}

/* Errors can carry server text from deep inside libsoup or GIO (a host name
 * from a redirect): made safe once, where they leave the hub code. */
static void
safe_error(GError **error)
{
    if (error && *error) {
        char *m = safe_text((*error)->message, 2000);
        g_free((*error)->message);
        (*error)->message = m;
    }
}

static void
dl_log(Dl *dl, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void
dl_log(Dl *dl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *raw = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_autofree char *s = safe_text(raw, 2000);
    if (dl->opt->log)
        dl->opt->log(s, dl->opt->user_data);
    else
        g_debug("hub: %s", s);
}

static char *
lookup_token(const HearthHubOptions *opt, const char *endpoint, Dl *dl)
{
    if (opt->token && *opt->token)
        return g_strdup(opt->token);
    const char *env = g_getenv("HF_TOKEN");
    if (!env || !*env)
        env = g_getenv("HUGGING_FACE_HUB_TOKEN");
    if (env && *env)
        return g_strdup(env);
    if (!opt->use_keyring)
        return NULL;
    g_autoptr(GError) e = NULL;
    char *t = hearth_hub_token_lookup(endpoint, dl->cancellable, &e);
    if (e)
        dl_log(dl, "no access token from the keyring (%s); downloading anonymously", e->message);
    return t;
}

static SoupSession *
make_session(void)
{
    SoupSession *s = soup_session_new();
    soup_session_set_user_agent(s, "hearth/" HEARTH_VERSION);
    soup_session_set_timeout(s, 60);       /* a stalled connection fails (and is retried) */
    soup_session_set_idle_timeout(s, 60);
    /* Ranges are byte offsets into the file: no transparent decompression. */
    soup_session_remove_feature_by_type(s, SOUP_TYPE_CONTENT_DECODER);
    return s;
}

/* ---- HTTP ----------------------------------------------------------------- */

typedef enum { STEP_OK, STEP_RETRY, STEP_FATAL } Step;

static gboolean
same_origin(const char *a, const char *b)
{
    g_autoptr(GUri) ua = g_uri_parse(a, G_URI_FLAGS_ENCODED, NULL);
    g_autoptr(GUri) ub = g_uri_parse(b, G_URI_FLAGS_ENCODED, NULL);
    if (!ua || !ub)
        return FALSE;
    return g_ascii_strcasecmp(g_uri_get_scheme(ua), g_uri_get_scheme(ub)) == 0 && g_uri_get_host(ua) &&
           g_uri_get_host(ub) && g_ascii_strcasecmp(g_uri_get_host(ua), g_uri_get_host(ub)) == 0 &&
           g_uri_get_port(ua) == g_uri_get_port(ub);
}

static gboolean
retryable_status(guint st)
{
    return st == 408 || st == 429 || (st >= 500 && st <= 599);
}

static gboolean
retryable_error(const GError *e)
{
    if (!e)
        return FALSE;
    if (g_error_matches(e, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return FALSE;
    if (e->domain == G_IO_ERROR || e->domain == SOUP_SESSION_ERROR)
        return TRUE;
    if (g_error_matches(e, G_RESOLVER_ERROR, G_RESOLVER_ERROR_TEMPORARY_FAILURE))
        return TRUE;
    return FALSE;
}

/* A clear error for a 4xx/5xx answer. what: "model.safetensors" or "the file list". */
static void
set_http_error(Dl *dl, SoupMessage *msg, const char *what, GError **error)
{
    guint st = soup_message_get_status(msg);
    SoupMessageHeaders *h = soup_message_get_response_headers(msg);
    const char *code = soup_message_headers_get_one(h, "X-Error-Code");
    const char *xmsg = soup_message_headers_get_one(h, "X-Error-Message");
    g_autofree char *xsafe = server_text(xmsg);
    g_autofree char *extra = xmsg ? g_strdup_printf(" (the hub says: %s)", xsafe) : g_strdup("");
    if (code && strcmp(code, "GatedRepo") == 0) {
        g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_AUTH,
                    "%s is a gated model: accept its license at %s/%s while logged in, then give Hearth an "
                    "access token of that account%s%s",
                    dl->repo_id, dl->endpoint, dl->repo_id, dl->token ? " (the current token has no access)" : "",
                    extra);
    } else if (code && strcmp(code, "RevisionNotFound") == 0) {
        g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_NOT_FOUND, "%s has no revision '%s'%s", dl->repo_id,
                    dl->revision, extra);
    } else if (code && strcmp(code, "EntryNotFound") == 0) {
        g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_NOT_FOUND, "%s: %s is not in the repository%s",
                    dl->repo_id, what, extra);
    } else if ((code && strcmp(code, "RepoNotFound") == 0) || st == 404) {
        if (st == 401 && !dl->token)
            g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_NOT_FOUND,
                        "model %s was not found on %s (check the name; if it is private, an access token "
                        "is needed)%s",
                        dl->repo_id, dl->endpoint, extra);
        else
            g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_NOT_FOUND,
                        "model %s was not found on %s (check the name)%s", dl->repo_id, dl->endpoint, extra);
    } else if (st == 401) {
        g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_AUTH,
                    dl->token ? "%s: the access token was refused (HTTP 401); check it in the settings%s"
                              : "%s needs an access token (HTTP 401: a gated or private model)%s",
                    dl->repo_id, extra);
    } else if (st == 403) {
        g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_AUTH,
                    "access to %s was denied (HTTP 403): a gated model whose license the token's account has "
                    "not accepted at %s/%s, or a token without read access%s",
                    dl->repo_id, dl->endpoint, dl->repo_id, extra);
    } else {
        g_autofree char *reason = server_text(soup_message_get_reason_phrase(msg));
        g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_HTTP, "%s: %s: HTTP %u %s%s", dl->repo_id, what, st,
                    reason, extra);
    }
}

/* GET url (Range from range_start when > 0), following redirects by hand:
 * the token goes only to the endpoint's origin, never to a CDN. */
static GInputStream *
send_get(Dl *dl, const char *url, guint64 range_start, SoupMessage **msg_out, GError **error)
{
    g_autofree char *cur = g_strdup(url);
    for (int hop = 0; hop <= MAX_REDIRECTS; hop++) {
        SoupMessage *msg = soup_message_new("GET", cur);
        if (!msg) {
            g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_INVALID, "not a valid URL: %s", cur);
            return NULL;
        }
        soup_message_add_flags(msg, SOUP_MESSAGE_NO_REDIRECT);
        SoupMessageHeaders *h = soup_message_get_request_headers(msg);
        if (dl->token && same_origin(cur, dl->endpoint)) {
            g_autofree char *auth = g_strdup_printf("Bearer %s", dl->token);
            soup_message_headers_replace(h, "Authorization", auth);
        }
        if (range_start > 0)
            soup_message_headers_set_range(h, (goffset)range_start, -1);
        GInputStream *s = soup_session_send(dl->session, msg, dl->cancellable, error);
        if (!s) {
            g_object_unref(msg);
            return NULL;
        }
        guint st = soup_message_get_status(msg);
        /* A copy: the header belongs to msg, which is released below. */
        g_autofree char *loc =
            g_strdup(soup_message_headers_get_one(soup_message_get_response_headers(msg), "Location"));
        if (SOUP_STATUS_IS_REDIRECTION(st) && st != 304 && loc) {
            g_autoptr(GUri) base = g_uri_parse(cur, G_URI_FLAGS_ENCODED, NULL);
            g_autoptr(GUri) next = base ? g_uri_parse_relative(base, loc, G_URI_FLAGS_ENCODED, NULL) : NULL;
            g_input_stream_close(s, NULL, NULL);
            g_object_unref(s);
            g_object_unref(msg);
            /* Only http(s): libsoup refuses other schemes with a critical. */
            const char *scheme = next ? g_uri_get_scheme(next) : NULL;
            const char *host = next ? g_uri_get_host(next) : NULL;
            gboolean host_ok = host && *host;
            for (const char *c = host; host_ok && *c; c++)
                host_ok = g_ascii_isalnum(*c) || strchr(".-_:[]", *c);
            if (!next || !scheme || !host_ok ||
                (g_ascii_strcasecmp(scheme, "http") != 0 && g_ascii_strcasecmp(scheme, "https") != 0)) {
                g_autofree char *shown = server_text(loc);
                g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_INVALID, "bad redirect from %s to %.200s", cur,
                            shown);
                return NULL;
            }
            g_free(cur);
            cur = g_uri_to_string(next);
            continue;
        }
        *msg_out = msg;
        return s;
    }
    g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_HTTP, "too many redirects from %s", url);
    return NULL;
}

/* Sleep ms milliseconds unless cancelled first (then FALSE). */
static gboolean
sleep_cancellable(guint ms, GCancellable *c)
{
    gint64 end = g_get_monotonic_time() + (gint64)ms * 1000;
    for (;;) {
        if (g_cancellable_is_cancelled(c))
            return FALSE;
        gint64 left = end - g_get_monotonic_time();
        if (left <= 0)
            return TRUE;
        g_usleep((gulong)MIN(left, 20000));
    }
}

static guint
backoff_ms(const Dl *dl, guint attempt)
{
    guint64 d = dl->opt->retry_delay_ms ? dl->opt->retry_delay_ms : 1000;
    for (guint i = 1; i < attempt && d < MAX_BACKOFF_MS; i++)
        d *= 2;
    return (guint)MIN(d, (guint64)MAX_BACKOFF_MS);
}

static guint
max_attempts(const Dl *dl)
{
    return dl->opt->max_attempts ? dl->opt->max_attempts : 6;
}

/* Wait before retry number `attempt` (1-based). FALSE with error when the
 * attempts are spent or the wait was cancelled. */
static gboolean
retry_wait(Dl *dl, guint attempt, const char *what, GError *cause, GError **error)
{
    if (attempt >= max_attempts(dl)) {
        g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_NETWORK, "%s: giving up after %u attempts: %s", what,
                    attempt, cause ? cause->message : "unknown error");
        return FALSE;
    }
    guint ms = backoff_ms(dl, attempt);
    dl_log(dl, "%s: %s; retrying in %.1f s (attempt %u of %u)", what, cause ? cause->message : "error",
           (double)ms / 1000.0, attempt + 1, max_attempts(dl));
    if (!sleep_cancellable(ms, dl->cancellable)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED, "the download was cancelled");
        return FALSE;
    }
    return TRUE;
}

#define HUB_JSON_MAX ((gsize)64 << 20)

/* A whole reply body of at most max bytes (G_IO_ERROR_INVALID_DATA past it). */
static GByteArray *
read_body(GInputStream *s, gsize max, GCancellable *cancellable, GError **error)
{
    GByteArray *b = g_byte_array_new();
    guint8 buf[16384];
    for (;;) {
        gssize n = g_input_stream_read(s, buf, sizeof buf, cancellable, error);
        if (n < 0) {
            g_byte_array_unref(b);
            return NULL;
        }
        if (n == 0)
            return b;
        if (b->len + (gsize)n > max) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "the reply is larger than %" G_GSIZE_FORMAT
                        " MiB", max >> 20);
            g_byte_array_unref(b);
            return NULL;
        }
        g_byte_array_append(b, buf, (guint)n);
    }
}

/* GET a JSON document, with retries. next_link (optional) gets the
 * `Link: <…>; rel="next"` target. */
static JsonNode *
get_json(Dl *dl, const char *url, const char *what, char **next_link, GError **error)
{
    for (guint attempt = 1;; attempt++) {
        GError *e = NULL;
        SoupMessage *msg = NULL;
        GInputStream *s = send_get(dl, url, 0, &msg, &e);
        if (s) {
            guint st = soup_message_get_status(msg);
            if (st == 200) {
                /* The reply in memory (bounded), then the strict parser: a
                 * reply nested 100k deep cannot overflow json-glib's stack. */
                g_autoptr(GByteArray) body = read_body(s, HUB_JSON_MAX, dl->cancellable, &e);
                g_autoptr(JsonParser) parser =
                    body ? hr_json_load_g((const char *)body->data, body->len, false, url, &e) : NULL;
                gboolean ok = parser != NULL;
                JsonNode *root = ok ? json_parser_get_root(parser) : NULL;
                if (root) {
                    if (next_link) {
                        *next_link = NULL;
                        const char *link =
                            soup_message_headers_get_one(soup_message_get_response_headers(msg), "Link");
                        const char *rel = link ? strstr(link, "rel=\"next\"") : NULL;
                        if (rel) {
                            /* the <…> right before it */
                            const char *gt = g_strrstr_len(link, rel - link, ">");
                            const char *lt = gt ? g_strrstr_len(link, gt - link, "<") : NULL;
                            if (lt)
                                *next_link = g_strndup(lt + 1, (gsize)(gt - lt - 1));
                        }
                    }
                    JsonNode *copy = json_node_copy(root);
                    g_object_unref(s);
                    g_object_unref(msg);
                    return copy;
                }
                if (ok && !e)
                    g_set_error(&e, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_INVALID, "empty reply");
                if (e && (e->domain == JSON_PARSER_ERROR || g_error_matches(e, G_IO_ERROR, G_IO_ERROR_INVALID_DATA))) {
                    g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_INVALID, "%s: %s from %s is not JSON: %s",
                                dl->repo_id, what, url, e->message);
                    g_error_free(e);
                    g_object_unref(s);
                    g_object_unref(msg);
                    return NULL;
                }
            } else if (retryable_status(st)) {
                g_set_error(&e, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_HTTP, "HTTP %u", st);
            } else {
                set_http_error(dl, msg, what, error);
                g_object_unref(s);
                g_object_unref(msg);
                return NULL;
            }
            g_object_unref(s);
            g_object_unref(msg);
        }
        if (!retryable_error(e) && !(e && e->domain == HEARTH_HUB_ERROR)) {
            if (g_error_matches(e, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                g_propagate_error(error, e);
            else
                g_propagate_prefixed_error(error, e, "cannot reach %s: ", dl->endpoint);
            return NULL;
        }
        g_autofree char *label = g_strdup_printf("%s (%s)", dl->repo_id, what);
        gboolean again = retry_wait(dl, attempt, label, e, error);
        g_error_free(e);
        if (!again)
            return NULL;
    }
}

/* ---- the file list -------------------------------------------------------- */

static const char *
obj_str(JsonObject *o, const char *m)
{
    if (!o || !json_object_has_member(o, m))
        return NULL;
    JsonNode *n = json_object_get_member(o, m);
    return JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING ? json_node_get_string(n) : NULL;
}

static gboolean
obj_u64(JsonObject *o, const char *m, guint64 *out)
{
    if (!o || !json_object_has_member(o, m))
        return FALSE;
    JsonNode *n = json_object_get_member(o, m);
    if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64 || json_node_get_int(n) < 0)
        return FALSE;
    *out = (guint64)json_node_get_int(n);
    return TRUE;
}

static gboolean
is_hex(const char *s, size_t n)
{
    if (!s || strlen(s) != n)
        return FALSE;
    for (size_t i = 0; i < n; i++)
        if (!g_ascii_isxdigit(s[i]))
            return FALSE;
    return TRUE;
}

static gboolean
dl_setup(Dl *dl, const char *repo_id, const HearthHubOptions *opt, GCancellable *cancellable, GError **error)
{
    if (!hearth_hub_repo_id_valid(repo_id)) {
        g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_INVALID,
                    "'%s' is not a Hugging Face model id (owner/name, e.g. Qwen/Qwen2.5-0.5B-Instruct)",
                    repo_id ? repo_id : "");
        return FALSE;
    }
    if (opt->gguf_file && *opt->gguf_file &&
        (!sane_file_name(opt->gguf_file) || !g_str_has_suffix(opt->gguf_file, ".gguf") ||
         strlen(opt->gguf_file) <= 5)) {
        g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_INVALID,
                    "the file to download must be a .gguf file at the top of the repository");
        return FALSE;
    }
    dl->opt = opt;
    dl->cancellable = cancellable;
    dl->repo_id = g_strdup(repo_id);
    dl->revision = g_strdup(opt->revision && *opt->revision ? opt->revision : "main");
    if (opt->endpoint && *opt->endpoint) {
        dl->endpoint = g_strdup(opt->endpoint);
        size_t n = strlen(dl->endpoint);
        while (n > 0 && dl->endpoint[n - 1] == '/')
            dl->endpoint[--n] = '\0';
    } else {
        dl->endpoint = default_endpoint();
    }
    dl->models_dir = hearth_models_resolve_dir(opt->models_dir);
    if (opt->gguf_file && *opt->gguf_file) {
        g_autofree char *key = g_strdup_printf("%s--%s", repo_id, opt->gguf_file);
        dl->partial = partial_dir(dl->models_dir, key);
    } else {
        dl->partial = partial_dir(dl->models_dir, repo_id);
    }
    dl->token = lookup_token(opt, dl->endpoint, dl);
    dl->session = make_session();
    return TRUE;
}

/* revision API (existence, gating, commit), then the tree API (sizes, hashes). */
static GPtrArray *
dl_list_files(Dl *dl, GError **error)
{
    g_autofree char *rev_esc = g_uri_escape_string(dl->revision, NULL, FALSE);
    g_autofree char *info_url = g_strdup_printf("%s/api/models/%s/revision/%s", dl->endpoint, dl->repo_id, rev_esc);
    g_autoptr(JsonNode) info = get_json(dl, info_url, "model info", NULL, error);
    if (!info)
        return NULL;
    if (!JSON_NODE_HOLDS_OBJECT(info)) {
        g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_INVALID, "%s: the model info is not a JSON object",
                    dl->repo_id);
        return NULL;
    }
    JsonObject *io = json_node_get_object(info);
    /* The commit goes into URLs and the model's source record: a git commit
     * id (40 hex digits) and nothing else. */
    const char *sha = obj_str(io, "sha");
    if (!is_hex(sha, 40)) {
        g_autofree char *shown = server_text(sha);
        g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_INVALID,
                    "%s: the hub's model info has no valid commit id (\"sha\": \"%s\")", dl->repo_id, shown);
        return NULL;
    }
    g_free(dl->commit);
    dl->commit = g_ascii_strdown(sha, -1);
    const char *gated = obj_str(io, "gated");
    if (gated && !dl->token)
        dl_log(dl, "%s is a gated model (%s approval): its files need an access token", dl->repo_id, gated);

    g_autofree char *commit_esc = g_uri_escape_string(dl->commit, NULL, FALSE);
    char *url = g_strdup_printf("%s/api/models/%s/tree/%s?recursive=true", dl->endpoint, dl->repo_id, commit_esc);
    GPtrArray *files = g_ptr_array_new_with_free_func((GDestroyNotify)hearth_hub_file_free);
    g_autoptr(GPtrArray) ggufs = g_ptr_array_new_with_free_func(g_free); /* the repo's .gguf files */
    const char *want_gguf = dl->opt->gguf_file && *dl->opt->gguf_file ? dl->opt->gguf_file : NULL;
    gboolean any_weights = FALSE, has_config = FALSE;
    guint64 total_size = 0;
    for (int page = 0; url; page++) {
        char *next = NULL;
        g_autoptr(JsonNode) tree = page < 1000 ? get_json(dl, url, "file list", &next, error) : NULL;
        g_free(url);
        url = NULL;
        if (!tree) {
            if (page >= 1000)
                g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_INVALID, "%s: the file list does not end",
                            dl->repo_id);
            g_free(next);
            g_ptr_array_unref(files);
            return NULL;
        }
        if (!JSON_NODE_HOLDS_ARRAY(tree)) {
            g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_INVALID, "%s: the file list is not a JSON array",
                        dl->repo_id);
            g_free(next);
            g_ptr_array_unref(files);
            return NULL;
        }
        JsonArray *arr = json_node_get_array(tree);
        for (guint i = 0; i < json_array_get_length(arr); i++) {
            JsonNode *n = json_array_get_element(arr, i);
            JsonObject *o = JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
            const char *type = obj_str(o, "type"), *path = obj_str(o, "path");
            if (!o || !path || (type && strcmp(type, "file") != 0))
                continue;
            if (sane_file_name(path) && g_str_has_suffix(path, ".gguf") && ggufs->len < 10000)
                g_ptr_array_add(ggufs, g_strdup(path));
            /* a GGUF repository: the one file asked for; else the safetensors model */
            if (want_gguf ? strcmp(path, want_gguf) != 0 || !sane_file_name(path) : !hearth_hub_wants_file(path))
                continue;
            HearthHubFile *f = g_new0(HearthHubFile, 1);
            f->path = g_strdup(path);
            JsonObject *lfs = json_object_has_member(o, "lfs") &&
                                      JSON_NODE_HOLDS_OBJECT(json_object_get_member(o, "lfs"))
                                  ? json_object_get_object_member(o, "lfs")
                                  : NULL;
            gboolean sized = lfs ? obj_u64(lfs, "size", &f->size) : FALSE;
            if (!sized && !obj_u64(o, "size", &f->size)) {
                g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_INVALID, "%s: the file list gives no size for %s",
                            dl->repo_id, path);
                hearth_hub_file_free(f);
                g_free(next);
                g_ptr_array_unref(files);
                return NULL;
            }
            const char *oid = lfs ? obj_str(lfs, "oid") : NULL;
            if (oid && g_str_has_prefix(oid, "sha256:"))
                oid += 7;
            if (lfs && is_hex(oid, 64))
                f->sha256 = g_ascii_strdown(oid, -1);
            const char *goid = obj_str(o, "oid");
            if (!lfs && is_hex(goid, 40))
                f->git_oid = g_ascii_strdown(goid, -1);
            /* Every file is checked against its hash after download: a
             * listing without one is refused, never installed unverified. */
            if (!f->sha256 && !f->git_oid) {
                g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_INVALID,
                            "%s: the file list gives no checksum for %s, so it could not be verified", dl->repo_id,
                            path);
                hearth_hub_file_free(f);
                g_free(next);
                g_ptr_array_unref(files);
                return NULL;
            }
            if (total_size > G_MAXUINT64 - f->size) {
                g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_INVALID,
                            "%s: the file sizes in the file list add up to more than any disk holds", dl->repo_id);
                hearth_hub_file_free(f);
                g_free(next);
                g_ptr_array_unref(files);
                return NULL;
            }
            total_size += f->size;
            if (g_str_has_suffix(path, ".safetensors") || want_gguf)
                any_weights = TRUE;
            if (strcmp(path, "config.json") == 0 || want_gguf)
                has_config = TRUE;
            g_ptr_array_add(files, f);
        }
        url = next;
    }
    if (want_gguf && files->len == 0) {
        g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_NOT_FOUND, "%s has no file %s at revision %s%s%s",
                    dl->repo_id, want_gguf, dl->revision, ggufs->len ? "; its GGUF files: " : "",
                    ggufs->len ? (char *)g_ptr_array_index(ggufs, 0) : "");
        g_ptr_array_unref(files);
        return NULL;
    }
    if ((!any_weights || !has_config) && ggufs->len > 0) {
        /* a GGUF repository: one of its files, chosen by name */
        GString *list = g_string_new(NULL);
        for (guint i = 0; i < ggufs->len && i < 12; i++)
            g_string_append_printf(list, "%s%s", i ? ", " : "", (char *)g_ptr_array_index(ggufs, i));
        if (ggufs->len > 12)
            g_string_append_printf(list, " and %u more", ggufs->len - 12);
        g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_INVALID,
                    "%s holds GGUF files; choose one by name (hearth-cli download %s --file NAME.gguf): %s",
                    dl->repo_id, dl->repo_id, list->str);
        g_string_free(list, TRUE);
        g_ptr_array_unref(files);
        return NULL;
    }
    if (!any_weights || !has_config) {
        g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_INVALID,
                    "%s has no %s at revision %s: Hearth runs models in safetensors format with a config.json, "
                    "or GGUF files (.bin and ONNX files are not used)",
                    dl->repo_id, !has_config ? "config.json" : "*.safetensors weights", dl->revision);
        g_ptr_array_unref(files);
        return NULL;
    }
    return files;
}

GPtrArray *
hearth_hub_list_files(const char *repo_id, const HearthHubOptions *opt, char **commit_out,
                      GCancellable *cancellable, GError **error)
{
    HearthHubOptions defaults;
    if (!opt) {
        hearth_hub_options_init(&defaults);
        opt = &defaults;
    }
    Dl dl = { 0 };
    GPtrArray *files = NULL;
    if (dl_setup(&dl, repo_id, opt, cancellable, error))
        files = dl_list_files(&dl, error);
    if (files && commit_out)
        *commit_out = g_strdup(dl.commit);
    dl_clear(&dl);
    safe_error(error);
    return files;
}

/* ---- one file ------------------------------------------------------------- */

typedef struct {
    HearthHubFile *f;
    char *dest;
    GChecksum *sum;   /* SHA-256 (LFS) or git blob SHA-1, over bytes [0, hashed) */
    guint64 hashed;
} FileJob;

static void
job_reset_hash(FileJob *j)
{
    g_clear_pointer(&j->sum, g_checksum_free);
    j->hashed = 0;
    if (j->f->sha256) {
        j->sum = g_checksum_new(G_CHECKSUM_SHA256);
    } else if (j->f->git_oid) {
        j->sum = g_checksum_new(G_CHECKSUM_SHA1);
        g_autofree char *hdr = g_strdup_printf("blob %" G_GUINT64_FORMAT, j->f->size);
        g_checksum_update(j->sum, (const guchar *)hdr, (gssize)strlen(hdr) + 1); /* with the NUL */
    }
}

/* Feed bytes [hashed, upto) of the file on disk into the checksum. */
static gboolean
job_hash_prefix(FileJob *j, guint64 upto, GError **error)
{
    if (!j->sum || j->hashed >= upto)
        return TRUE;
    FILE *fp = fopen(j->dest, "rb");
    if (!fp || fseeko(fp, (off_t)j->hashed, SEEK_SET) != 0) {
        int e = errno;
        if (fp)
            fclose(fp);
        g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_IO, "reading %s: %s", j->dest, g_strerror(e));
        return FALSE;
    }
    guchar *buf = g_malloc(READ_CHUNK);
    while (j->hashed < upto) {
        size_t want = (size_t)MIN((guint64)READ_CHUNK, upto - j->hashed);
        size_t n = fread(buf, 1, want, fp);
        if (n == 0)
            break;
        g_checksum_update(j->sum, buf, (gssize)n);
        j->hashed += n;
    }
    g_free(buf);
    fclose(fp);
    if (j->hashed < upto) {
        g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_IO, "reading %s: short file", j->dest);
        return FALSE;
    }
    return TRUE;
}

static guint64
file_length(const char *path)
{
    GStatBuf st;
    return g_stat(path, &st) == 0 && S_ISREG(st.st_mode) ? (guint64)st.st_size : 0;
}

static gboolean
truncate_file(const char *path, guint64 len)
{
    return truncate(path, (off_t)len) == 0 || errno == ENOENT;
}

static void
emit_progress(Dl *dl, FileJob *j, gboolean force)
{
    if (!dl->opt->progress)
        return;
    gint64 now = g_get_monotonic_time();
    if (!force && now - dl->last_emit_us < 100000)
        return;
    dl->last_emit_us = now;
    if (dl->last_speed_us == 0) {
        dl->last_speed_us = now;
        dl->last_speed_bytes = dl->session_bytes;
    } else if (now - dl->last_speed_us >= 500000) {
        double inst = (double)(dl->session_bytes - dl->last_speed_bytes) / ((double)(now - dl->last_speed_us) / 1e6);
        dl->speed = dl->speed > 0 ? 0.6 * dl->speed + 0.4 * inst : inst;
        dl->last_speed_us = now;
        dl->last_speed_bytes = dl->session_bytes;
    }
    HearthHubProgress p = { 0 };
    p.repo_id = dl->repo_id;
    p.file = j ? j->f->path : NULL;
    p.file_index = dl->file_index;
    p.n_files = dl->files->len;
    p.file_done = j ? dl->have[dl->file_index] : 0;
    p.file_total = j ? j->f->size : 0;
    for (guint i = 0; i < dl->files->len; i++)
        p.done += dl->have[i];
    p.total = dl->total;
    p.speed = dl->speed;
    p.eta_seconds = dl->speed > 0 ? (double)(p.total - MIN(p.done, p.total)) / dl->speed : (p.done >= p.total ? 0 : -1);
    dl->opt->progress(&p, dl->opt->user_data);
}

static gboolean
write_all(int fd, const guchar *buf, gsize n)
{
    while (n > 0) {
        ssize_t w = write(fd, buf, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return FALSE;
        }
        buf += w;
        n -= (gsize)w;
    }
    return TRUE;
}

/* One request for the rest of the file, from byte `have`. */
static Step
fetch_rest(Dl *dl, FileJob *j, guint64 have, gboolean *progressed, GError **error)
{
    g_autofree char *commit_esc = g_uri_escape_string(dl->commit, NULL, FALSE);
    g_autofree char *path_esc = g_uri_escape_string(j->f->path, "/", FALSE);
    g_autofree char *url = g_strdup_printf("%s/%s/resolve/%s/%s", dl->endpoint, dl->repo_id, commit_esc, path_esc);
    SoupMessage *msg = NULL;
    GError *e = NULL;
    GInputStream *s = send_get(dl, url, have, &msg, &e);
    if (!s) {
        Step st = retryable_error(e) ? STEP_RETRY : STEP_FATAL;
        if (st == STEP_FATAL && e->domain != HEARTH_HUB_ERROR && !g_error_matches(e, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            g_propagate_prefixed_error(error, e, "%s: cannot download from %s: ", j->f->path, dl->endpoint);
        else
            g_propagate_error(error, e);
        return st;
    }
    guint status = soup_message_get_status(msg);
    guint64 start = 0;
    Step result = STEP_FATAL;
    int fd = -1;
    guchar *buf = NULL;
    if (status == 206) {
        goffset cs = 0, ce = 0, ctotal = 0;
        if (!soup_message_headers_get_content_range(soup_message_get_response_headers(msg), &cs, &ce, &ctotal) ||
            (guint64)cs != have) {
            dl_log(dl, "%s: the server answered a different range than asked; starting the file again", j->f->path);
            truncate_file(j->dest, 0);
            job_reset_hash(j);
            dl->have[dl->file_index] = 0;
            g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_HTTP, "bad Content-Range");
            result = STEP_RETRY;
            goto out;
        }
        start = have;
    } else if (status == 200) {
        if (have > 0)
            dl_log(dl, "%s: the server ignored the resume request (Range); downloading it from the start",
                   j->f->path);
        start = 0;
    } else if (status == 416) {
        dl_log(dl, "%s: the server refused the resume offset; starting the file again", j->f->path);
        truncate_file(j->dest, 0);
        job_reset_hash(j);
        dl->have[dl->file_index] = 0;
        g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_HTTP, "HTTP 416");
        result = STEP_RETRY;
        goto out;
    } else if (retryable_status(status)) {
        g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_HTTP, "HTTP %u %s", status,
                    soup_message_get_reason_phrase(msg) ? soup_message_get_reason_phrase(msg) : "");
        result = STEP_RETRY;
        goto out;
    } else {
        set_http_error(dl, msg, j->f->path, error);
        goto out;
    }

    fd = g_open(j->dest, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || ftruncate(fd, (off_t)start) != 0 || lseek(fd, (off_t)start, SEEK_SET) < 0) {
        int en = errno;
        g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_IO, "writing %s: %s", j->dest, g_strerror(en));
        goto out;
    }
    if (start < j->hashed)
        job_reset_hash(j);
    if (!job_hash_prefix(j, start, error))
        goto out;
    dl->have[dl->file_index] = start;
    guint64 pos = start;
    buf = g_malloc(READ_CHUNK);
    for (;;) {
        GError *re = NULL;
        gssize n = g_input_stream_read(s, buf, READ_CHUNK, dl->cancellable, &re);
        if (n < 0) {
            if (g_error_matches(re, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
                g_propagate_error(error, re);
                goto out;
            }
            g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_NETWORK,
                        "the connection dropped after %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT " bytes (%s)", pos,
                        j->f->size, re->message);
            g_error_free(re);
            result = STEP_RETRY;
            goto out;
        }
        if (n == 0)
            break;
        if (pos + (guint64)n > j->f->size) {
            g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_CHECKSUM,
                        "%s: the server sent more than the %" G_GUINT64_FORMAT " bytes the hub lists", j->f->path,
                        j->f->size);
            close(fd);
            fd = -1;
            g_unlink(j->dest);
            goto out;
        }
        if (!write_all(fd, buf, (gsize)n)) {
            int en = errno;
            g_set_error(error, HEARTH_HUB_ERROR, en == ENOSPC ? HEARTH_HUB_ERROR_NO_SPACE : HEARTH_HUB_ERROR_IO,
                        "writing %s: %s", j->dest, g_strerror(en));
            goto out;
        }
        if (j->sum && j->hashed == pos) {
            g_checksum_update(j->sum, buf, n);
            j->hashed += (guint64)n;
        }
        pos += (guint64)n;
        dl->session_bytes += (guint64)n;
        dl->have[dl->file_index] = pos;
        *progressed = TRUE;
        emit_progress(dl, j, FALSE);
    }
    if (close(fd) != 0) {
        fd = -1;
        int en = errno;
        g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_IO, "writing %s: %s", j->dest, g_strerror(en));
        goto out;
    }
    fd = -1;
    if (pos < j->f->size) {
        g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_NETWORK,
                    "the connection closed after %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT " bytes", pos,
                    j->f->size);
        result = STEP_RETRY;
        goto out;
    }
    result = STEP_OK;
out:
    if (fd >= 0)
        close(fd);
    g_free(buf);
    g_input_stream_close(s, NULL, NULL);
    g_object_unref(s);
    g_object_unref(msg);
    return result;
}

/* The file's hash against the hub's; on mismatch *got gets the digest. */
static gboolean
job_verify(FileJob *j, char **got, GError **error)
{
    *got = NULL;
    if (!j->sum)
        return TRUE;
    if (!job_hash_prefix(j, j->f->size, error))
        return FALSE;
    const char *digest = g_checksum_get_string(j->sum);
    const char *want = j->f->sha256 ? j->f->sha256 : j->f->git_oid;
    if (g_ascii_strcasecmp(digest, want) == 0)
        return TRUE;
    *got = g_strdup(digest);
    return FALSE;
}

static gboolean
download_file(Dl *dl, FileJob *j, GError **error)
{
    guint attempt = 0;
    gboolean mismatched = FALSE;
    /* Attempts are counted from the furthest point reached, so a server
     * that drops every connection after the same bytes (and ignores Range)
     * still ends with an error. */
    guint64 best = 0;
    if (j->f->size == 0 && !g_file_set_contents(j->dest, "", 0, NULL)) {
        g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_IO, "writing %s failed", j->dest);
        return FALSE;
    }
    for (;;) {
        if (g_cancellable_set_error_if_cancelled(dl->cancellable, error))
            return FALSE;
        guint64 have = file_length(j->dest);
        if (have > j->f->size) {
            truncate_file(j->dest, 0);
            job_reset_hash(j);
            have = 0;
        }
        dl->have[dl->file_index] = have;
        if (have < j->f->size) {
            gboolean progressed = FALSE;
            GError *e = NULL;
            best = MAX(best, have);
            if (have > 0 && attempt == 0)
                dl_log(dl, "%s: resuming at %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT " bytes", j->f->path, have,
                       j->f->size);
            Step st = fetch_rest(dl, j, have, &progressed, &e);
            if (st == STEP_FATAL) {
                g_propagate_error(error, e);
                return FALSE;
            }
            if (st == STEP_RETRY) {
                if (progressed && dl->have[dl->file_index] > best) {
                    best = dl->have[dl->file_index];
                    attempt = 0;
                }
                attempt++;
                gboolean again = retry_wait(dl, attempt, j->f->path, e, error);
                g_error_free(e);
                if (!again)
                    return FALSE;
                continue;
            }
        }
        g_autofree char *got = NULL;
        GError *ve = NULL;
        if (job_verify(j, &got, &ve))
            return TRUE;
        if (ve) {
            g_propagate_error(error, ve);
            return FALSE;
        }
        const char *kind = j->f->sha256 ? "SHA-256" : "git SHA-1";
        const char *want = j->f->sha256 ? j->f->sha256 : j->f->git_oid;
        g_unlink(j->dest);
        job_reset_hash(j);
        dl->have[dl->file_index] = 0;
        if (!mismatched) {
            mismatched = TRUE;
            dl_log(dl, "%s: %s mismatch (expected %s, got %s); downloading it again", j->f->path, kind, want, got);
            continue;
        }
        g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_CHECKSUM,
                    "%s: %s checksum mismatch twice (expected %s, got %s): the download is corrupt; the file "
                    "was deleted",
                    j->f->path, kind, want, got);
        return FALSE;
    }
}

/* ---- the whole download --------------------------------------------------- */

static gboolean
ensure_dir(const char *path, GError **error)
{
    if (g_mkdir_with_parents(path, 0755) != 0) {
        int e = errno;
        g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_IO, "creating %s: %s", path, g_strerror(e));
        return FALSE;
    }
    return TRUE;
}

static gboolean
check_space(Dl *dl, guint64 needed, GError **error)
{
    guint64 free_bytes;
    if (dl->opt->free_space_override >= 0) {
        free_bytes = (guint64)dl->opt->free_space_override;
    } else {
        g_autoptr(GFile) f = g_file_new_for_path(dl->partial);
        g_autoptr(GError) e = NULL;
        g_autoptr(GFileInfo) fi =
            g_file_query_filesystem_info(f, G_FILE_ATTRIBUTE_FILESYSTEM_FREE, dl->cancellable, &e);
        if (!fi || !g_file_info_has_attribute(fi, G_FILE_ATTRIBUTE_FILESYSTEM_FREE)) {
            dl_log(dl, "could not check the free disk space (%s)", e ? e->message : "not reported");
            return TRUE;
        }
        free_bytes = g_file_info_get_attribute_uint64(fi, G_FILE_ATTRIBUTE_FILESYSTEM_FREE);
    }
    if (needed <= free_bytes)
        return TRUE;
    g_autofree char *n = g_format_size(needed);
    g_autofree char *f = g_format_size(free_bytes);
    g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_NO_SPACE,
                "not enough disk space in %s for %s: it needs %s more (%" G_GUINT64_FORMAT " bytes) but only %s (%"
                G_GUINT64_FORMAT " bytes) is free",
                dl->models_dir, dl->repo_id, n, needed, f, free_bytes);
    return FALSE;
}

/* Remove files of the partial dir that the repo does not list (leftovers of
 * an older revision), so the installed folder holds exactly the model. */
static void
prune_partial(Dl *dl)
{
    GDir *d = g_dir_open(dl->partial, 0, NULL);
    if (!d)
        return;
    const char *n;
    while ((n = g_dir_read_name(d))) {
        gboolean keep = FALSE;
        for (guint i = 0; i < dl->files->len && !keep; i++)
            keep = strcmp(((HearthHubFile *)dl->files->pdata[i])->path, n) == 0;
        if (!keep) {
            g_autofree char *p = g_build_filename(dl->partial, n, NULL);
            hearth_models_remove_tree(p, NULL);
        }
    }
    g_dir_close(d);
}

static gboolean
write_source(Dl *dl, GError **error)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "repo");
    json_builder_add_string_value(b, dl->repo_id);
    json_builder_set_member_name(b, "revision");
    json_builder_add_string_value(b, dl->revision);
    json_builder_set_member_name(b, "commit");
    json_builder_add_string_value(b, dl->commit);
    json_builder_set_member_name(b, "endpoint");
    json_builder_add_string_value(b, dl->endpoint);
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    g_autofree char *iso = g_date_time_format_iso8601(now);
    json_builder_set_member_name(b, "downloaded");
    json_builder_add_string_value(b, iso);
    json_builder_end_object(b);
    g_autoptr(JsonNode) root = json_builder_get_root(b);
    gsize len;
    g_autofree char *text = hr_json_to_text(root, true, &len);
    g_autofree char *p = g_build_filename(dl->partial, SOURCE_FILE, NULL);
    if (!g_file_set_contents(p, text, (gssize)len, error)) {
        g_prefix_error(error, "writing %s: ", p);
        return FALSE;
    }
    return TRUE;
}

static char *
finish(Dl *dl, GError **error)
{
    g_autofree char *name = install_name(dl->repo_id, dl->opt);
    char *final_path = g_build_filename(dl->models_dir, name, NULL);
    prune_partial(dl);
    if (!write_source(dl, error)) {
        g_free(final_path);
        return NULL;
    }
    /* the model it replaces: moved aside into a work folder of its own (held; a killed process's is swept),
     * put back should the new one not take its place, removed when it has */
    g_autoptr(HearthWorkDir) aside = NULL;
    g_autofree char *old = NULL;
    if (g_file_test(final_path, G_FILE_TEST_EXISTS)) {
        if (!dl->opt->overwrite) {
            g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_EXISTS,
                        "%s is already installed in %s (delete it first, or ask to replace it)", dl->repo_id,
                        final_path);
            g_free(final_path);
            return NULL;
        }
        GError *werr = NULL;
        aside = hearth_models_work_new(dl->models_dir, "replace", name, &werr);
        if (!aside) {
            g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_IO, "%s", werr->message);
            g_error_free(werr);
            g_free(final_path);
            return NULL;
        }
        old = g_build_filename(hearth_work_dir_path(aside), name, NULL);
        if (g_rename(final_path, old) != 0) {
            int e = errno;
            g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_IO, "moving the old %s aside: %s", final_path,
                        g_strerror(e));
            g_free(final_path);
            return NULL;
        }
    }
    if (g_rename(dl->partial, final_path) != 0) {
        int e = errno;
        if (old && g_rename(old, final_path) != 0) /* the old one back in its place */
            hearth_work_dir_keep(g_steal_pointer(&aside));
        g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_IO, "moving %s to %s: %s", dl->partial, final_path,
                    g_strerror(e));
        g_free(final_path);
        return NULL;
    }
    return final_path;
}

char *
hearth_hub_download(const char *repo_id, const HearthHubOptions *opt, GCancellable *cancellable, GError **error)
{
    HearthHubOptions defaults;
    if (!opt) {
        hearth_hub_options_init(&defaults);
        opt = &defaults;
    }
    Dl dl = { 0 };
    char *result = NULL;
    g_autofree char *name = NULL;
    g_autofree char *final_path = NULL;
    char *lock_path = NULL;
    int lock_fd = -1;
    gboolean locked = FALSE;
    if (!dl_setup(&dl, repo_id, opt, cancellable, error) || !hearth_models_ensure_dir(dl.models_dir, error))
        goto out;
    /* Refuse early rather than after the download. */
    name = install_name(repo_id, opt);
    final_path = g_build_filename(dl.models_dir, name, NULL);
    if (!opt->overwrite && g_file_test(final_path, G_FILE_TEST_EXISTS)) {
        g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_EXISTS,
                    "%s is already installed in %s (delete it first, or ask to replace it)", repo_id, final_path);
        goto out;
    }
    dl.files = dl_list_files(&dl, error);
    if (!dl.files)
        goto out;
    if (!ensure_dir(dl.partial, error))
        goto out;
    /* One download per repo at a time (the GUI and the CLI may both try). */
    lock_path = g_strdup_printf("%s.lock", dl.partial);
    lock_fd = g_open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock_fd < 0 || flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_IO, "%s is already being downloaded%s%s", repo_id,
                    e == EWOULDBLOCK ? "" : ": ", e == EWOULDBLOCK ? "" : g_strerror(e));
        goto out;
    }
    locked = TRUE;
    dl.have = g_new0(guint64, dl.files->len);
    guint64 needed = 0;
    for (guint i = 0; i < dl.files->len; i++) {
        HearthHubFile *f = dl.files->pdata[i];
        g_autofree char *p = g_build_filename(dl.partial, f->path, NULL);
        guint64 have = file_length(p);
        if (have > f->size)
            have = 0;
        dl.have[i] = have;
        dl.total += f->size;
        needed += f->size - have;
    }
    if (!check_space(&dl, needed, error))
        goto out;
    for (guint i = 0; i < dl.files->len; i++) {
        FileJob j = { 0 };
        j.f = dl.files->pdata[i];
        j.dest = g_build_filename(dl.partial, j.f->path, NULL);
        job_reset_hash(&j);
        dl.file_index = i;
        emit_progress(&dl, &j, TRUE);
        gboolean ok = download_file(&dl, &j, error);
        if (ok)
            emit_progress(&dl, &j, TRUE);
        g_free(j.dest);
        g_clear_pointer(&j.sum, g_checksum_free);
        if (!ok)
            goto out;
    }
    if (g_cancellable_set_error_if_cancelled(cancellable, error))
        goto out;
    result = finish(&dl, error);
out:
    if (locked)
        g_unlink(lock_path);
    if (lock_fd >= 0)
        close(lock_fd);
    g_free(lock_path);
    dl_clear(&dl);
    safe_error(error);
    return result;
}

guint64
hearth_hub_partial_bytes(const char *repo_id, const char *models_dir)
{
    if (!hearth_hub_repo_id_valid(repo_id))
        return 0;
    g_autofree char *root = hearth_models_resolve_dir(models_dir);
    g_autofree char *p = partial_dir(root, repo_id);
    guint64 total = 0;
    GDir *d = g_dir_open(p, 0, NULL);
    if (!d)
        return 0;
    const char *n;
    while ((n = g_dir_read_name(d))) {
        g_autofree char *f = g_build_filename(p, n, NULL);
        total += file_length(f);
    }
    g_dir_close(d);
    return total;
}

gboolean
hearth_hub_discard_partial(const char *repo_id, const char *models_dir, GError **error)
{
    if (!hearth_hub_repo_id_valid(repo_id)) {
        g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_INVALID, "'%s' is not a model id",
                    repo_id ? repo_id : "");
        return FALSE;
    }
    g_autofree char *root = hearth_models_resolve_dir(models_dir);
    g_autofree char *p = partial_dir(root, repo_id);
    /* not from under a download going on (another window, hearth-cli): it holds <partial>.lock */
    g_autofree char *lock_path = g_strdup_printf("%s.lock", p);
    int fd = g_open(lock_path, O_RDWR | O_CLOEXEC, 0);
    if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK) {
        close(fd);
        g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_IO,
                    "%s is being downloaded (in another window or by hearth-cli); stop that download first", repo_id);
        return FALSE;
    }
    gboolean ok = hearth_models_remove_tree(p, error);
    if (fd >= 0) {
        g_unlink(lock_path);
        close(fd);
    }
    return ok;
}

/* ---- async ---------------------------------------------------------------- */

typedef struct {
    char *repo_id, *revision, *models_dir, *endpoint, *token, *gguf_file;
    HearthHubOptions opt;            /* strings point at the copies above */
    HearthHubProgressFunc progress;  /* the caller's */
    HearthHubLogFunc log;
    gpointer user_data;
    GMainContext *context;
    GMutex lock;
    gboolean pending;                /* a progress idle is scheduled */
    HearthHubProgress latest;        /* file points at latest_file */
    char *latest_file;
} AsyncData;

static void
async_data_clear(gpointer p)
{
    AsyncData *ad = p;
    g_free(ad->repo_id);
    g_free(ad->revision);
    g_free(ad->gguf_file);
    g_free(ad->models_dir);
    g_free(ad->endpoint);
    if (ad->token) {
        memset(ad->token, 0, strlen(ad->token));
        g_free(ad->token);
    }
    g_free(ad->latest_file);
    g_main_context_unref(ad->context);
    g_mutex_clear(&ad->lock);
}

static void
release_async_data(gpointer p)
{
    g_atomic_rc_box_release_full(p, async_data_clear);
}

static gboolean
async_progress_idle(gpointer p)
{
    AsyncData *ad = p;
    g_mutex_lock(&ad->lock);
    HearthHubProgress copy = ad->latest;
    char *file = g_strdup(ad->latest_file);
    ad->pending = FALSE;
    g_mutex_unlock(&ad->lock);
    copy.file = file;
    copy.repo_id = ad->repo_id;
    ad->progress(&copy, ad->user_data);
    g_free(file);
    return G_SOURCE_REMOVE;
}

static void
async_progress(const HearthHubProgress *p, gpointer user_data)
{
    AsyncData *ad = user_data;
    g_mutex_lock(&ad->lock);
    ad->latest = *p;
    if (!ad->latest_file || !p->file || strcmp(ad->latest_file, p->file) != 0) {
        g_free(ad->latest_file);
        ad->latest_file = g_strdup(p->file);
    }
    gboolean schedule = !ad->pending;
    ad->pending = TRUE;
    g_mutex_unlock(&ad->lock);
    if (schedule)
        g_main_context_invoke_full(ad->context, G_PRIORITY_DEFAULT, async_progress_idle, g_atomic_rc_box_acquire(ad),
                                   release_async_data);
}

typedef struct {
    AsyncData *ad;
    char *message;
} LogMsg;

static gboolean
async_log_idle(gpointer p)
{
    LogMsg *m = p;
    m->ad->log(m->message, m->ad->user_data);
    return G_SOURCE_REMOVE;
}

static void
log_msg_free(gpointer p)
{
    LogMsg *m = p;
    g_atomic_rc_box_release_full(m->ad, async_data_clear);
    g_free(m->message);
    g_free(m);
}

static void
async_log(const char *message, gpointer user_data)
{
    AsyncData *ad = user_data;
    LogMsg *m = g_new0(LogMsg, 1);
    m->ad = g_atomic_rc_box_acquire(ad);
    m->message = g_strdup(message);
    g_main_context_invoke_full(ad->context, G_PRIORITY_DEFAULT, async_log_idle, m, log_msg_free);
}

static void
download_thread(GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
    AsyncData *ad = task_data;
    GError *error = NULL;
    char *path = hearth_hub_download(ad->repo_id, &ad->opt, cancellable, &error);
    if (path)
        g_task_return_pointer(task, path, g_free);
    else
        g_task_return_error(task, error);
}

void
hearth_hub_download_async(const char *repo_id, const HearthHubOptions *opt, GCancellable *cancellable,
                          GAsyncReadyCallback callback, gpointer user_data)
{
    AsyncData *ad = g_atomic_rc_box_new0(AsyncData);
    g_mutex_init(&ad->lock);
    if (opt)
        ad->opt = *opt;
    else
        hearth_hub_options_init(&ad->opt);
    ad->repo_id = g_strdup(repo_id);
    ad->revision = g_strdup(ad->opt.revision);
    ad->models_dir = g_strdup(ad->opt.models_dir);
    ad->endpoint = g_strdup(ad->opt.endpoint);
    ad->token = g_strdup(ad->opt.token);
    ad->gguf_file = g_strdup(ad->opt.gguf_file);
    ad->opt.gguf_file = ad->gguf_file;
    ad->opt.revision = ad->revision;
    ad->opt.models_dir = ad->models_dir;
    ad->opt.endpoint = ad->endpoint;
    ad->opt.token = ad->token;
    ad->progress = ad->opt.progress;
    ad->log = ad->opt.log;
    ad->user_data = ad->opt.user_data;
    ad->opt.progress = ad->progress ? async_progress : NULL;
    ad->opt.log = ad->log ? async_log : NULL;
    ad->opt.user_data = ad;
    ad->context = g_main_context_ref_thread_default();
    GTask *task = g_task_new(NULL, cancellable, callback, user_data);
    g_task_set_source_tag(task, hearth_hub_download_async);
    g_task_set_task_data(task, ad, release_async_data);
    g_task_run_in_thread(task, download_thread);
    g_object_unref(task);
}

char *
hearth_hub_download_finish(GAsyncResult *result, GError **error)
{
    g_return_val_if_fail(g_task_is_valid(result, NULL), NULL);
    return g_task_propagate_pointer(G_TASK(result), error);
}

/* ---- the token in the keyring --------------------------------------------- */

static const SecretSchema *
token_schema(void)
{
    static const SecretSchema schema = {
        "org.hearth.Hearth.HubToken",
        SECRET_SCHEMA_NONE,
        {
            { "endpoint", SECRET_SCHEMA_ATTRIBUTE_STRING },
            { NULL, 0 },
        },
    };
    return &schema;
}

char *
hearth_hub_token_lookup(const char *endpoint, GCancellable *cancellable, GError **error)
{
    g_autofree char *ep = endpoint ? g_strdup(endpoint) : default_endpoint();
    char *secret = secret_password_lookup_sync(token_schema(), cancellable, error, "endpoint", ep, NULL);
    if (!secret)
        return NULL;
    char *copy = g_strdup(secret);
    secret_password_free(secret);
    return copy;
}

gboolean
hearth_hub_token_store(const char *endpoint, const char *token, GCancellable *cancellable, GError **error)
{
    if (!token || !*token) {
        g_set_error(error, HEARTH_HUB_ERROR, HEARTH_HUB_ERROR_INVALID, "the access token is empty");
        return FALSE;
    }
    g_autofree char *ep = endpoint ? g_strdup(endpoint) : default_endpoint();
    g_autofree char *label = g_strdup_printf("Hearth: Hugging Face access token (%s)", ep);
    return secret_password_store_sync(token_schema(), SECRET_COLLECTION_DEFAULT, label, token, cancellable, error,
                                      "endpoint", ep, NULL);
}

gboolean
hearth_hub_token_clear(const char *endpoint, GCancellable *cancellable, GError **error)
{
    g_autofree char *ep = endpoint ? g_strdup(endpoint) : default_endpoint();
    GError *e = NULL;
    secret_password_clear_sync(token_schema(), cancellable, &e, "endpoint", ep, NULL);
    if (e) {
        g_propagate_error(error, e);
        return FALSE;
    }
    return TRUE;
}
