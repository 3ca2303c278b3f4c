/* hearth-store.h — the conversation store: SQLite, plain C + GLib (no GTK).
 *
 * One file, `$XDG_DATA_HOME/io.github.hearthchat.Hearth/hearth.db` unless
 * $HEARTH_DB or an explicit path says otherwise. WAL journal, foreign keys on,
 * synchronous=NORMAL (a committed write survives the app being killed; a power
 * cut may lose the last commits but never corrupts), a busy timeout.
 *
 * Schema versions (PRAGMA user_version), each one a migration step kept in the
 * code (hearth_store_schema_step() returns its SQL):
 *   v1  conversations, messages (role, content, created, token_count, state,
 *       error), positions unique per conversation, ON DELETE CASCADE.
 *   v2  generation stats columns on messages (prompt_tokens, gen_tokens,
 *       tokens_per_s, time_to_first_token_ms) and the FTS5 index over message
 *       content (external content table, kept in sync by triggers).
 *   v3  conversations.deleted_at: soft delete, so that "delete" can be undone.
 *   v4  versions of a message (regenerate keeps the earlier replies):
 *       messages.version is the number of the version the row holds (the one
 *       shown, which the conversation goes on from); the others are rows of
 *       message_versions (same columns, keyed by message and number).
 * Opening an older file takes the write lock, copies the file to
 * `<file>.bak-v<N>` (online backup API, through a second read-only
 * connection, so the copy is exactly the state being migrated) and then
 * applies every missing step in that one transaction.
 *
 * Opening never writes to a file it cannot vouch for: a file that is not a
 * database or fails `PRAGMA quick_check` (HEARTH_STORE_ERROR_CORRUPT), or one
 * whose user_version is newer than this code (HEARTH_STORE_ERROR_TOO_NEW), is
 * probed read-only and left exactly as it was. hearth_store_open_fresh()
 * renames it (and its -wal/-shm/-journal files) aside and starts a new one.
 *
 * On open, every message still in state PARTIAL (the app died mid-reply)
 * becomes INTERRUPTED, its content kept, and conversations trashed more than a
 * minute ago are purged.
 *
 * Conventions: ids are positive gint64 (0 means "failed", with the GError
 * set); times are microseconds since the Unix epoch (g_get_real_time());
 * every string in or out is UTF-8; strings and arrays returned are owned by
 * the caller. A HearthStore is used from one thread at a time.
 */
#pragma once

#include <gio/gio.h>
#include <glib.h>

G_BEGIN_DECLS

#define HEARTH_STORE_SCHEMA_VERSION 4

#define HEARTH_STORE_ERROR (hearth_store_error_quark())
GQuark hearth_store_error_quark(void);

typedef enum {
    HEARTH_STORE_ERROR_FAILED,    /* any other SQLite failure (message says which) */
    HEARTH_STORE_ERROR_CORRUPT,   /* not a database, fails quick_check, or not Hearth's */
    HEARTH_STORE_ERROR_TOO_NEW,   /* user_version newer than HEARTH_STORE_SCHEMA_VERSION */
    HEARTH_STORE_ERROR_IO,        /* cannot create the folder, open, rename, back up */
    HEARTH_STORE_ERROR_NOT_FOUND, /* no such conversation or message */
    HEARTH_STORE_ERROR_INVALID,   /* invalid UTF-8, embedded NUL, bad enum value */
    HEARTH_STORE_ERROR_FULL,      /* the disk (or the database's size limit) is full: nothing was written */
} HearthStoreError;

typedef enum {
    HEARTH_STORE_ROLE_SYSTEM,
    HEARTH_STORE_ROLE_USER,
    HEARTH_STORE_ROLE_ASSISTANT,
} HearthStoreRole;

typedef enum {
    HEARTH_STORE_STATE_COMPLETE,
    HEARTH_STORE_STATE_PARTIAL,     /* being streamed */
    HEARTH_STORE_STATE_ERROR,       /* generation failed; `error` says why */
    HEARTH_STORE_STATE_INTERRUPTED, /* stopped by the user, or found PARTIAL on open */
} HearthStoreState;

/* "system" / "user" / "assistant"; and back (FALSE if unknown). */
const char *hearth_store_role_to_string(HearthStoreRole role);
gboolean hearth_store_role_from_string(const char *s, HearthStoreRole *out);
/* "complete" / "partial" / "error" / "interrupted"; and back. */
const char *hearth_store_state_to_string(HearthStoreState state);
gboolean hearth_store_state_from_string(const char *s, HearthStoreState *out);

/* Per-conversation sampling settings; HEARTH_STORE_UNSET (or NULL for the
 * system prompt) means "the app's default". Stored as SQL NULL. */
#define HEARTH_STORE_UNSET (-1)

typedef struct {
    gint64 id;
    char *title;            /* "" until the first user message (UI shows "New chat") */
    gboolean title_is_auto; /* FALSE once the user renamed it */
    gint64 created;
    gint64 updated;         /* bumped by message writes; strictly increasing store-wide */
    gint64 deleted_at;      /* 0 unless trashed (hearth_store_conversation_trash) */
    char *model;            /* NULL: none chosen */
    char *system_prompt;    /* NULL: none */
    double temperature;     /* HEARTH_STORE_UNSET: default */
    double top_p;           /* HEARTH_STORE_UNSET: default */
    int max_new_tokens;     /* HEARTH_STORE_UNSET: default */
} HearthStoreConversation;

void hearth_store_conversation_free(HearthStoreConversation *c);

/* Generation statistics of an assistant reply; -1 where unknown. */
typedef struct {
    int prompt_tokens;
    int gen_tokens;
    double tokens_per_s;
    double time_to_first_token_ms;
} HearthStoreGenStats;

#define HEARTH_STORE_GEN_STATS_UNKNOWN ((HearthStoreGenStats){ -1, -1, -1.0, -1.0 })

typedef struct {
    gint64 id;
    gint64 conversation_id;
    int position;           /* 0, 1, 2, … within the conversation */
    HearthStoreRole role;
    HearthStoreState state;
    char *content;          /* never NULL */
    gsize content_len;      /* bytes, without the terminating NUL */
    gint64 created;
    int token_count;        /* -1: unknown */
    HearthStoreGenStats stats;
    char *error;            /* NULL unless state is ERROR */
    int version;            /* the version this is, 1..n_versions */
    int n_versions;         /* how many versions the message has (1: no others) */
} HearthStoreMessage;

void hearth_store_message_free(HearthStoreMessage *m);

typedef struct {
    gint64 conversation_id;
    gint64 message_id;      /* the latest matching message of that conversation */
    char *title;
    gint64 updated;
    char *snippet;          /* matching terms between the caller's markers */
} HearthStoreSearchHit;

void hearth_store_search_hit_free(HearthStoreSearchHit *h);

typedef struct _HearthStore HearthStore;

/* --- opening -------------------------------------------------------------- */

/* The path open(NULL) uses: $HEARTH_DB if set and non-empty, else
 * $XDG_DATA_HOME/io.github.hearthchat.Hearth/conversations/hearth.db, after
 * hearth_store_move_to_own_folder() on that folder. Caller frees. */
char *hearth_store_default_path(void);

/* The database in its own folder: app_dir/hearth.db (where Hearth kept it
 * before, beside models/, a folder file choosers are shown; a chooser listing
 * it opens and closes the -wal and -shm, which drops the process's POSIX locks
 * on them, SQLite's) becomes app_dir/conversations/hearth.db, once: its log is
 * folded in first (checkpoint), and nothing moves when that fails (another
 * process has it open, it is read-only or damaged) or when the new one exists.
 * Returns the path to use: the new one, or the old one when it stayed. */
char *hearth_store_move_to_own_folder(const char *app_dir);

/* Opens (creating the folder and file if needed) and migrates. path: NULL for
 * hearth_store_default_path(). Errors: CORRUPT and TOO_NEW (file untouched;
 * the message names the path; offer hearth_store_open_fresh()), IO, FAILED. */
HearthStore *hearth_store_open(const char *path, GError **error);
/* TRUE when the database (or its folder) is not writable: it was opened
 * read-only so the history can be read; every write fails with an error. */
gboolean hearth_store_is_read_only(HearthStore *store);
void hearth_store_close(HearthStore *store);

/* Renames the file at path (NULL: default) and its -wal, -shm and -journal
 * companions to `<path>.corrupt-<YYYYmmdd-HHMMSS>` (reason CORRUPT) or
 * `.newer-<…>` (reason TOO_NEW; any other reason: `.old-<…>`), then opens a new
 * empty store there. *moved_to (optional) gets the new name of the old file. */
HearthStore *hearth_store_open_fresh(const char *path, HearthStoreError reason,
                                     char **moved_to, GError **error);

const char *hearth_store_get_path(HearthStore *store);
/* How many PARTIAL messages this open turned INTERRUPTED. */
guint hearth_store_get_recovered_count(HearthStore *store);

/* --- conversations -------------------------------------------------------- */

/* New empty conversation (title "", auto). model may be NULL. Returns its id. */
gint64 hearth_store_conversation_create(HearthStore *store, const char *model, GError **error);

/* Conversations not trashed, most recently updated first:
 * GPtrArray of HearthStoreConversation* (free func set). */
GPtrArray *hearth_store_conversation_list(HearthStore *store, GError **error);

/* One conversation, trashed or not. NOT_FOUND if there is none. */
HearthStoreConversation *hearth_store_conversation_get(HearthStore *store, gint64 id, GError **error);

/* Sets the title and stops auto-titling. Empty or all-blank title: back to
 * automatic (re-derived from the first user message). */
gboolean hearth_store_conversation_rename(HearthStore *store, gint64 id, const char *title,
                                          GError **error);

/* Sets system prompt (NULL: none), temperature, top_p, max_new_tokens
 * (HEARTH_STORE_UNSET: default). None of these bump `updated`. */
gboolean hearth_store_conversation_set_settings(HearthStore *store, gint64 id,
                                                const char *system_prompt, double temperature,
                                                double top_p, int max_new_tokens, GError **error);
gboolean hearth_store_conversation_set_model(HearthStore *store, gint64 id, const char *model,
                                             GError **error);

/* Undoable delete: trash hides the conversation from list and search;
 * restore brings it back; purge (or opening the store a minute later)
 * deletes it for good. */
gboolean hearth_store_conversation_trash(HearthStore *store, gint64 id, GError **error);
gboolean hearth_store_conversation_restore(HearthStore *store, gint64 id, GError **error);
/* Deletes trashed conversations whose deleted_at is older than max_age_us
 * (0: all of them). Returns how many, or -1 on error. */
int hearth_store_purge_trash(HearthStore *store, gint64 max_age_us, GError **error);

/* Deletes at once, with its messages (ON DELETE CASCADE). */
gboolean hearth_store_conversation_delete(HearthStore *store, gint64 id, GError **error);

/* Deletes every conversation, trashed or not, with their messages (and so
 * their search index entries), at once and for good ("Delete All
 * Conversations" in Preferences). Returns how many, or -1 on error. */
int hearth_store_conversation_delete_all(HearthStore *store, GError **error);

/* --- messages ------------------------------------------------------------- */

/* Appends at the next position. content: UTF-8, length bytes or -1 if
 * NUL-terminated (an embedded NUL within length is INVALID). token_count: -1
 * if unknown. Bumps the conversation's `updated`. If this is the first user
 * message and the title is automatic, the title becomes
 * hearth_store_title_from_text(content). Returns the message id. */
gint64 hearth_store_message_append(HearthStore *store, gint64 conversation_id,
                                   HearthStoreRole role, HearthStoreState state,
                                   const char *content, gssize length, int token_count,
                                   GError **error);

/* Replaces the content (streaming: call it debounced, about once a second;
 * also edit-in-place). State is unchanged. token_count -1: leave as is. */
gboolean hearth_store_message_update_content(HearthStore *store, gint64 id, const char *content,
                                             gssize length, int token_count, GError **error);

/* Ends a streamed reply: state COMPLETE (or INTERRUPTED when the user
 * stopped it), the final content (NULL: keep the stored one) and stats
 * (NULL: unknown). token_count is set from stats->gen_tokens when >= 0. */
gboolean hearth_store_message_finish(HearthStore *store, gint64 id, HearthStoreState state,
                                     const char *content, gssize length,
                                     const HearthStoreGenStats *stats, GError **error);

/* State ERROR with a message for the user; content kept. */
gboolean hearth_store_message_set_error(HearthStore *store, gint64 id, const char *error_text,
                                        GError **error);

/* Ends a streamed reply in one call — COMPLETE or INTERRUPTED as hearth_store_message_finish, ERROR with
 * error_text as hearth_store_message_set_error — and when the database cannot take it (a full disk, a
 * lock held elsewhere), keeps it, to be written by hearth_store_flush_pending (and a last time by
 * hearth_store_close), so that the conversation on disk ends as the one on screen. FALSE with error set
 * when it is kept (hearth_store_pending_count says how many wait) or invalid (not kept). Replies wait
 * and are written in order; one whose message was deleted meanwhile is dropped. */
gboolean hearth_store_message_end(HearthStore *store, gint64 id, HearthStoreState state, const char *content,
                                  const HearthStoreGenStats *stats, const char *error_text, GError **error);
/* Writes the replies kept by hearth_store_message_end; TRUE when none is left. */
gboolean hearth_store_flush_pending(HearthStore *store, GError **error);
guint hearth_store_pending_count(HearthStore *store);

HearthStoreMessage *hearth_store_message_get(HearthStore *store, gint64 id, GError **error);

/* All messages of a conversation by position: GPtrArray of
 * HearthStoreMessage* (free func set). NOT_FOUND if no such conversation. */
GPtrArray *hearth_store_message_list(HearthStore *store, gint64 conversation_id, GError **error);

/* Deletes the messages whose position is > position (regenerate: the last
 * user message's position; edit-and-resend: its position - 1, then append).
 * position -1 deletes them all. Returns how many, or -1 on error. */
int hearth_store_message_delete_after(HearthStore *store, gint64 conversation_id, int position,
                                      GError **error);

/* --- versions (regenerate keeps the earlier replies) ----------------------- */

/* Puts the shown version of message id aside (a version with state ERROR
 * and no content is dropped instead) and makes the row a new, empty PARTIAL
 * version, numbered after every version it had; stream into it with
 * update_content and finish. Bumps the conversation's `updated`. Returns the
 * new version's number, or 0 on error. */
int hearth_store_message_new_version(HearthStore *store, gint64 id, GError **error);

/* Shows version `version` of message id: the row takes that version's
 * content, state, error and stats, and the version it held is put aside
 * under its number. NOT_FOUND when the message has no such version. Does not
 * bump `updated`. */
gboolean hearth_store_message_show_version(HearthStore *store, gint64 id, int version, GError **error);

/* --- search and export ---------------------------------------------------- */

/* Full-text search over message content of conversations not trashed. Each
 * whitespace-separated term of `text` is matched as a quoted prefix phrase
 * (so quotes, AND/OR/NOT, NEAR, *, ^, : and parentheses typed by the user
 * are plain text, never FTS syntax); all terms must match (in one message).
 * Case- and accent-insensitive (unicode61, remove_diacritics 2). Blank text:
 * empty result. One hit per conversation, most recently updated first, at
 * most `limit` (0: 100). mark_open/mark_close surround matches in the
 * snippet (NULL: ""). GPtrArray of HearthStoreSearchHit* (free func set). */
GPtrArray *hearth_store_search(HearthStore *store, const char *text, guint limit,
                               const char *mark_open, const char *mark_close, GError **error);
/* The same in a worker thread on its own read-only connection (the window
 * never waits for a search, nor a search for the window's writes);
 * cancelling stops the query within a few thousand SQLite steps. At most
 * the first 16 terms count. */
void hearth_store_search_async(HearthStore *store, const char *text, guint limit, const char *mark_open,
                               const char *mark_close, GCancellable *cancellable, GAsyncReadyCallback callback,
                               gpointer user_data);
GPtrArray *hearth_store_search_finish(GAsyncResult *result, GError **error);

/* Markdown: "# Title", the system prompt as a quoted block, then "## User" /
 * "## Assistant" / "## System" sections with the content verbatim; messages
 * that were interrupted or failed are marked in italics. */
char *hearth_store_export_markdown(HearthStore *store, gint64 conversation_id, GError **error);

/* JSON: [{"role": "system"|"user"|"assistant", "content": "…"}, …], the
 * conversation's system prompt first (if any, and no system message exists),
 * messages by position; failed messages with no content are left out. */
char *hearth_store_export_json(HearthStore *store, gint64 conversation_id, GError **error);

/* --- helpers (exposed for the UI and tests) ------------------------------- */

/* A title from message text: first non-blank line, whitespace collapsed,
 * trimmed, at most 50 characters (cut at a word boundary when one is near,
 * then "…"). Lines inside Markdown code fences, and a "name:" line just before
 * a fence (an attached file), are passed over when the text has a line
 * outside them (the question asked about the file). Never NULL; "" for blank
 * text. */
char *hearth_store_title_from_text(const char *text);

/* The SQL that brings a database from schema version `version - 1` to
 * `version` (1..HEARTH_STORE_SCHEMA_VERSION); NULL otherwise. Tests use it to
 * build old databases. It does not set user_version. */
const char *hearth_store_schema_step(int version);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(HearthStore, hearth_store_close)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HearthStoreConversation, hearth_store_conversation_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HearthStoreMessage, hearth_store_message_free)

G_END_DECLS
