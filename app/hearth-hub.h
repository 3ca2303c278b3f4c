/* hearth-hub.h — download models from the Hugging Face Hub (libsoup 3).
 *
 * The hub's API, as used here (the same shape huggingface_hub uses):
 *   GET {endpoint}/api/models/{repo}/revision/{rev}
 *       → {"id", "sha": "<commit>", "gated": false|"auto"|"manual",
 *          "siblings": [{"rfilename"}]}: existence, gating and the commit
 *          the download is pinned to (so a push mid-download cannot mix
 *          files of two commits).
 *   GET {endpoint}/api/models/{repo}/tree/{commit}?recursive=true
 *       → [{"type": "file"|"directory", "path", "size", "oid": "<git blob sha1>",
 *           "lfs": {"oid": "<sha256>", "size", "pointerSize"}}], paginated with a
 *          `Link: <…>; rel="next"` header.
 *   GET {endpoint}/{repo}/resolve/{commit}/{path}
 *       → the file, usually after a redirect to a CDN (followed here by hand:
 *          the Authorization header goes only to the endpoint's own host).
 * Errors carry `X-Error-Code` (RepoNotFound, GatedRepo, RevisionNotFound,
 * EntryNotFound); an anonymous request for a private or missing repo is 401.
 *
 * Files: config.json, generation_config.json, tokenizer.json,
 * tokenizer_config.json, special_tokens_map.json, chat_template.jinja,
 * model.safetensors.index.json and *.safetensors at the top of the repo;
 * .bin/.pt/.gguf/onnx and sub-folders are skipped.
 *
 * On disk: `<models_dir>/.partial/<owner>--<name>/` while downloading (a
 * partial file's length is where a later run resumes, with HTTP Range);
 * every file is checked (size; SHA-256 against lfs.oid for LFS files, the
 * git blob SHA-1 for the others), then the folder is renamed to
 * `<models_dir>/<owner>--<name>` with a `.hearth-source.json` naming the repo
 * and commit. A failure or cancellation leaves nothing outside .partial.
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define HEARTH_HUB_ERROR (hearth_hub_error_quark())
GQuark hearth_hub_error_quark(void);

typedef enum {
    HEARTH_HUB_ERROR_INVALID,    /* bad repo id, malformed API reply, no weights in the repo */
    HEARTH_HUB_ERROR_NOT_FOUND,  /* no such repo, revision or file */
    HEARTH_HUB_ERROR_AUTH,       /* 401/403: gated or private, a token is needed (or refused) */
    HEARTH_HUB_ERROR_HTTP,       /* another HTTP status */
    HEARTH_HUB_ERROR_NETWORK,    /* connection failures that outlasted the retries */
    HEARTH_HUB_ERROR_CHECKSUM,   /* a file's SHA-256 (or size) does not match the hub's */
    HEARTH_HUB_ERROR_NO_SPACE,   /* not enough free disk space */
    HEARTH_HUB_ERROR_EXISTS,     /* the model is already installed (see overwrite) */
    HEARTH_HUB_ERROR_IO,         /* writing to disk failed */
} HearthHubError;
/* Cancellation is G_IO_ERROR_CANCELLED; the partial files are kept. */

/* One file of a repo, as the tree API describes it. */
typedef struct {
    char *path;     /* path in the repo */
    guint64 size;
    char *sha256;   /* lowercase hex, LFS files only; else NULL */
    char *git_oid;  /* git blob SHA-1 (non-LFS files), or NULL */
} HearthHubFile;

void hearth_hub_file_free(HearthHubFile *f);

typedef struct {
    const char *repo_id;
    const char *file;       /* the file being downloaded (repo path) */
    guint file_index;       /* 0-based */
    guint n_files;
    guint64 file_done, file_total;
    guint64 done, total;    /* all files: bytes on disk so far (resumed bytes included) / to have */
    double speed;           /* bytes per second over the last seconds (this run only) */
    double eta_seconds;     /* < 0 when unknown */
} HearthHubProgress;

/* Called from the thread that runs the download (see the async variant for
 * the main thread), at most ~10 times a second plus once per finished file. */
typedef void (*HearthHubProgressFunc)(const HearthHubProgress *progress, gpointer user_data);
/* Messages worth showing: retries, resumes, a server ignoring Range. */
typedef void (*HearthHubLogFunc)(const char *message, gpointer user_data);

typedef struct {
    const char *revision;     /* NULL = "main" */
    const char *models_dir;   /* NULL = hearth_models_default_dir() */
    const char *endpoint;     /* NULL = $HF_ENDPOINT, else https://huggingface.co */
    const char *token;        /* NULL = $HF_TOKEN, else the keyring (when use_keyring) */
    gboolean use_keyring;     /* look the token up with libsecret (default TRUE) */
    gboolean overwrite;       /* replace an installed model of the same name */
    guint max_attempts;       /* per file, for dropped connections and 5xx (default 6) */
    guint retry_delay_ms;     /* first backoff, doubled each retry, capped at 30 s (default 1000) */
    gint64 free_space_override; /* testing: < 0 (default) asks the filesystem */
    const char *gguf_file;    /* a repo of GGUF files: the one to download (NULL: a safetensors model) */
    HearthHubProgressFunc progress;
    HearthHubLogFunc log;
    gpointer user_data;       /* for progress and log */
} HearthHubOptions;

void hearth_hub_options_init(HearthHubOptions *opt);

/* TRUE when repo_id is "owner/name" with the hub's allowed characters. */
gboolean hearth_hub_repo_id_valid(const char *repo_id);
/* "owner--name", the directory name of a repo. Caller frees. */
char *hearth_hub_repo_dir_name(const char *repo_id);
/* Whether a repo file is one a model needs (see above). */
gboolean hearth_hub_wants_file(const char *path);

/* The files of the repo that a model needs, with sizes and checksums
 * (GPtrArray of HearthHubFile). commit_out (optional) gets the commit. */
GPtrArray *hearth_hub_list_files(const char *repo_id, const HearthHubOptions *opt, char **commit_out,
                                 GCancellable *cancellable, GError **error);

/* Download repo_id into the models dir; blocking (run it in a worker
 * thread). Returns the installed model's path (caller frees). */
char *hearth_hub_download(const char *repo_id, const HearthHubOptions *opt, GCancellable *cancellable,
                          GError **error);

/* The same in a GTask thread. progress and log are called in the thread-
 * default main context of the caller (coalesced), callback when done. The
 * strings of opt are copied. */
void hearth_hub_download_async(const char *repo_id, const HearthHubOptions *opt, GCancellable *cancellable,
                               GAsyncReadyCallback callback, gpointer user_data);
char *hearth_hub_download_finish(GAsyncResult *result, GError **error);

/* Bytes already under .partial for repo_id (to show "resume 1.2 GB"). */
guint64 hearth_hub_partial_bytes(const char *repo_id, const char *models_dir);
/* Forget a paused download: remove its .partial folder. */
gboolean hearth_hub_discard_partial(const char *repo_id, const char *models_dir, GError **error);

/* The access token, kept in the keyring (libsecret schema
 * "org.hearth.Hearth.HubToken", attribute "endpoint"); never in a file.
 * endpoint NULL = the default endpoint. lookup returns NULL (no error) when
 * none is stored. */
char *hearth_hub_token_lookup(const char *endpoint, GCancellable *cancellable, GError **error);
gboolean hearth_hub_token_store(const char *endpoint, const char *token, GCancellable *cancellable,
                                GError **error);
gboolean hearth_hub_token_clear(const char *endpoint, GCancellable *cancellable, GError **error);

G_END_DECLS
