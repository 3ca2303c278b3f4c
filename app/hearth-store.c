/* hearth-store.c — the conversation store (see hearth-store.h). */
#include "hearth-store.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <sqlite3.h>

#include "hearth-config.h"
#include "hr-json.h"

#define BUSY_TIMEOUT_MS 5000
#define TRASH_PURGE_AGE_US (60 * G_USEC_PER_SEC)
#define TITLE_MAX_CHARS 50
#define SEARCH_DEFAULT_LIMIT 100
#define SEARCH_MAX_TERMS 16

G_DEFINE_QUARK(hearth-store-error-quark, hearth_store_error)

struct _HearthStore {
    sqlite3 *db;
    char *path;
    gboolean read_only;  /* the file or its folder is not writable: history readable, nothing saved */
    GHashTable *stmts; /* static SQL text (by pointer) -> prepared sqlite3_stmt* */
    guint recovered;
    GPtrArray *pending; /* PendingEnd*: replies ended while the database could not take them, oldest first */
};

/* --- schema ---------------------------------------------------------------
 * Each step is history: once released it never changes; a new version adds a
 * step. Step N brings a database from version N-1 to N. */

static const char SCHEMA_V1[] =
    "CREATE TABLE conversations ("
    "  id INTEGER PRIMARY KEY,"
    "  title TEXT NOT NULL DEFAULT '',"
    "  title_is_auto INTEGER NOT NULL DEFAULT 1,"
    "  created INTEGER NOT NULL,"
    "  updated INTEGER NOT NULL,"
    "  model TEXT,"
    "  system_prompt TEXT,"
    "  temperature REAL,"
    "  top_p REAL,"
    "  max_new_tokens INTEGER"
    ");"
    "CREATE INDEX conversations_updated ON conversations(updated);"
    "CREATE TABLE messages ("
    "  id INTEGER PRIMARY KEY,"
    "  conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,"
    "  position INTEGER NOT NULL,"
    "  role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),"
    "  content TEXT NOT NULL DEFAULT '',"
    "  created INTEGER NOT NULL,"
    "  token_count INTEGER,"
    "  state TEXT NOT NULL DEFAULT 'complete'"
    "    CHECK (state IN ('complete', 'partial', 'error', 'interrupted')),"
    "  error TEXT,"
    "  UNIQUE (conversation_id, position)"
    ");";

static const char SCHEMA_V2[] =
    "ALTER TABLE messages ADD COLUMN prompt_tokens INTEGER;"
    "ALTER TABLE messages ADD COLUMN gen_tokens INTEGER;"
    "ALTER TABLE messages ADD COLUMN tokens_per_s REAL;"
    "ALTER TABLE messages ADD COLUMN time_to_first_token_ms REAL;"
    "CREATE INDEX messages_partial ON messages(state) WHERE state = 'partial';"
    "CREATE VIRTUAL TABLE messages_fts USING fts5("
    "  content, content='messages', content_rowid='id',"
    "  tokenize='unicode61 remove_diacritics 2');"
    "CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages BEGIN"
    "  INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);"
    "END;"
    "CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages BEGIN"
    "  INSERT INTO messages_fts(messages_fts, rowid, content)"
    "    VALUES ('delete', old.id, old.content);"
    "END;"
    "CREATE TRIGGER messages_fts_au AFTER UPDATE OF content ON messages BEGIN"
    "  INSERT INTO messages_fts(messages_fts, rowid, content)"
    "    VALUES ('delete', old.id, old.content);"
    "  INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);"
    "END;"
    "INSERT INTO messages_fts(messages_fts) VALUES ('rebuild');";

static const char SCHEMA_V3[] =
    "ALTER TABLE conversations ADD COLUMN deleted_at INTEGER;";

/* A message row holds the version shown (the one the conversation goes on
 * from); the others wait in message_versions, numbered as they were made. */
static const char SCHEMA_V4[] =
    "ALTER TABLE messages ADD COLUMN version INTEGER NOT NULL DEFAULT 1;"
    "CREATE TABLE message_versions ("
    "  message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,"
    "  version INTEGER NOT NULL,"
    "  content TEXT NOT NULL DEFAULT '',"
    "  created INTEGER NOT NULL,"
    "  token_count INTEGER,"
    "  state TEXT NOT NULL DEFAULT 'complete'"
    "    CHECK (state IN ('complete', 'partial', 'error', 'interrupted')),"
    "  error TEXT,"
    "  prompt_tokens INTEGER,"
    "  gen_tokens INTEGER,"
    "  tokens_per_s REAL,"
    "  time_to_first_token_ms REAL,"
    "  PRIMARY KEY (message_id, version)"
    ");";

static const char *const schema_steps[HEARTH_STORE_SCHEMA_VERSION] = {
    SCHEMA_V1,
    SCHEMA_V2,
    SCHEMA_V3,
    SCHEMA_V4,
};

const char *
hearth_store_schema_step(int version)
{
    if (version < 1 || version > HEARTH_STORE_SCHEMA_VERSION)
        return NULL;
    return schema_steps[version - 1];
}

/* --- enums ---------------------------------------------------------------- */

static const char *const role_names[] = { "system", "user", "assistant" };
static const char *const state_names[] = { "complete", "partial", "error", "interrupted" };

const char *
hearth_store_role_to_string(HearthStoreRole role)
{
    return (guint)role < G_N_ELEMENTS(role_names) ? role_names[role] : NULL;
}

gboolean
hearth_store_role_from_string(const char *s, HearthStoreRole *out)
{
    for (guint i = 0; s && i < G_N_ELEMENTS(role_names); i++)
        if (strcmp(s, role_names[i]) == 0) {
            *out = (HearthStoreRole)i;
            return TRUE;
        }
    return FALSE;
}

const char *
hearth_store_state_to_string(HearthStoreState state)
{
    return (guint)state < G_N_ELEMENTS(state_names) ? state_names[state] : NULL;
}

gboolean
hearth_store_state_from_string(const char *s, HearthStoreState *out)
{
    for (guint i = 0; s && i < G_N_ELEMENTS(state_names); i++)
        if (strcmp(s, state_names[i]) == 0) {
            *out = (HearthStoreState)i;
            return TRUE;
        }
    return FALSE;
}

/* --- records -------------------------------------------------------------- */

void
hearth_store_conversation_free(HearthStoreConversation *c)
{
    if (!c)
        return;
    g_free(c->title);
    g_free(c->model);
    g_free(c->system_prompt);
    g_free(c);
}

void
hearth_store_message_free(HearthStoreMessage *m)
{
    if (!m)
        return;
    g_free(m->content);
    g_free(m->error);
    g_free(m);
}

void
hearth_store_search_hit_free(HearthStoreSearchHit *h)
{
    if (!h)
        return;
    g_free(h->title);
    g_free(h->snippet);
    g_free(h);
}

/* --- SQLite helpers ------------------------------------------------------- */

static HearthStoreError
code_for_sqlite(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
        return HEARTH_STORE_ERROR_CORRUPT;
    case SQLITE_FULL:
        return HEARTH_STORE_ERROR_FULL;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
        return HEARTH_STORE_ERROR_IO;
    default:
        return HEARTH_STORE_ERROR_FAILED;
    }
}

static void
set_db_error(sqlite3 *db, int rc, const char *path, const char *what, GError **error)
{
    g_set_error(error, HEARTH_STORE_ERROR, code_for_sqlite(rc), "%s: %s (%s)", path, what,
                db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

static void
set_store_error(HearthStore *s, int rc, const char *what, GError **error)
{
    set_db_error(s->db, rc, s->path, what, error);
}

/* A cached prepared statement, reset and unbound; NULL with error set. The
 * caller resets it again when done (see finish()) so no read transaction
 * stays open. `sql` must be a string literal or other static text. */
static sqlite3_stmt *
prep(HearthStore *s, const char *sql, GError **error)
{
    sqlite3_stmt *st = g_hash_table_lookup(s->stmts, sql);
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return st;
    }
    int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    if (rc != SQLITE_OK) {
        set_store_error(s, rc, "cannot prepare a statement", error);
        sqlite3_finalize(st);
        return NULL;
    }
    g_hash_table_insert(s->stmts, (gpointer)sql, st);
    return st;
}

/* Steps a statement expected to finish (no rows wanted); resets it. */
static gboolean
run(HearthStore *s, sqlite3_stmt *st, const char *what, GError **error)
{
    int rc = sqlite3_step(st);
    gboolean ok = rc == SQLITE_DONE || rc == SQLITE_ROW;
    if (!ok)
        set_store_error(s, rc, what, error);
    sqlite3_reset(st);
    return ok;
}

static gboolean
exec(HearthStore *s, const char *sql, const char *what, GError **error)
{
    char *msg = NULL;
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        g_set_error(error, HEARTH_STORE_ERROR, code_for_sqlite(rc), "%s: %s (%s)", s->path, what,
                    msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return FALSE;
    }
    return TRUE;
}

static gboolean
begin(HearthStore *s, GError **error)
{
    return exec(s, "BEGIN IMMEDIATE", "cannot start a transaction", error);
}

static gboolean
commit(HearthStore *s, GError **error)
{
    if (exec(s, "COMMIT", "cannot commit", error))
        return TRUE;
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return FALSE;
}

static void
rollback(HearthStore *s)
{
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

static void
bind_text_or_null(sqlite3_stmt *st, int i, const char *text)
{
    if (text)
        sqlite3_bind_text(st, i, text, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

static char *
col_text(sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return NULL;
    const unsigned char *t = sqlite3_column_text(st, i);
    return g_strndup((const char *)t, (gsize)sqlite3_column_bytes(st, i));
}

static char *
col_text_nonnull(sqlite3_stmt *st, int i)
{
    char *t = col_text(st, i);
    return t ? t : g_strdup("");
}

static int
col_int_or_unset(sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return HEARTH_STORE_UNSET;
    return sqlite3_column_int(st, i);
}

static double
col_double_or_unset(sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return HEARTH_STORE_UNSET;
    return sqlite3_column_double(st, i);
}

static gboolean
check_utf8(const char *text, gssize length, const char *what, GError **error)
{
    if (!text || g_utf8_validate(text, length, NULL))
        return TRUE;
    g_set_error(error, HEARTH_STORE_ERROR, HEARTH_STORE_ERROR_INVALID,
                "%s is not valid UTF-8 text (or contains a NUL byte)", what);
    return FALSE;
}

static void
set_not_found(GError **error, const char *what, gint64 id)
{
    g_set_error(error, HEARTH_STORE_ERROR, HEARTH_STORE_ERROR_NOT_FOUND,
                "no %s with id %" G_GINT64_FORMAT, what, id);
}

/* --- opening -------------------------------------------------------------- */

char *
hearth_store_move_to_own_folder(const char *app_dir)
{
    char *new_path = g_build_filename(app_dir, "conversations", "hearth.db", NULL);
    g_autofree char *old_path = g_build_filename(app_dir, "hearth.db", NULL);
    if (g_file_test(new_path, G_FILE_TEST_EXISTS) || !g_file_test(old_path, G_FILE_TEST_IS_REGULAR))
        return new_path;
    /* the write-ahead log folded into the file (recovered first, when a killed app left one); BUSY while another
     * process has the database open */
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(old_path, &db, SQLITE_OPEN_READWRITE, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
        rc = sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
    }
    sqlite3_close(db); /* the last connection: SQLite removes the -wal and -shm */
    g_autofree char *wal = g_strconcat(old_path, "-wal", NULL);
    GStatBuf st;
    const gboolean no_log = g_stat(wal, &st) != 0 || st.st_size == 0;
    g_autofree char *new_dir = g_path_get_dirname(new_path);
    if (rc == SQLITE_OK && no_log && g_mkdir_with_parents(new_dir, 0700) == 0 &&
        !g_file_test(new_path, G_FILE_TEST_EXISTS) && g_rename(old_path, new_path) == 0) {
        g_autofree char *shm = g_strconcat(old_path, "-shm", NULL);
        g_unlink(wal);
        g_unlink(shm);
        return new_path;
    }
    g_free(new_path);
    return g_strdup(old_path);
}

char *
hearth_store_default_path(void)
{
    const char *env = g_getenv("HEARTH_DB");
    if (env && *env)
        return g_strdup(env);
    /* tried once a process: a later call must not move a database this process has open */
    static char *decided;
    G_LOCK_DEFINE_STATIC(decided);
    G_LOCK(decided);
    if (!decided) {
        g_autofree char *app_dir = g_build_filename(g_get_user_data_dir(), HEARTH_APP_ID, NULL);
        decided = hearth_store_move_to_own_folder(app_dir);
    }
    char *path = g_strdup(decided);
    G_UNLOCK(decided);
    return path;
}

/* Single integer from a one-row query on a raw connection; returns the
 * SQLite result code. */
static int
query_int(sqlite3 *db, const char *sql, gint64 *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *out = sqlite3_column_int64(st, 0);
            rc = SQLITE_OK;
        } else if (rc == SQLITE_DONE) {
            *out = 0;
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

static void
set_corrupt(const char *path, const char *why, GError **error)
{
    g_set_error(error, HEARTH_STORE_ERROR, HEARTH_STORE_ERROR_CORRUPT,
                "%s is damaged or is not a Hearth database (%s); it was left untouched", path,
                why);
}

static void
set_too_new(const char *path, gint64 version, GError **error)
{
    g_set_error(error, HEARTH_STORE_ERROR, HEARTH_STORE_ERROR_TOO_NEW,
                "%s was written by a newer version of Hearth (schema %" G_GINT64_FORMAT
                ", this version knows up to %d); it was left untouched",
                path, version, HEARTH_STORE_SCHEMA_VERSION);
}

/* A read-only connection that creates nothing beside the file. Without a
 * -wal file, `immutable=1`: no locks, no -wal/-shm created even when the
 * header says WAL. With one, its frames are part of the database, so a plain
 * read-only open (which may create a -shm index, never touching the data). */
static int
open_probe(const char *path, sqlite3 **db)
{
    char *wal = g_strconcat(path, "-wal", NULL);
    gboolean has_wal = g_file_test(wal, G_FILE_TEST_EXISTS);
    g_free(wal);
    if (has_wal)
        return sqlite3_open_v2(path, db, SQLITE_OPEN_READONLY, NULL);
    char *escaped = g_uri_escape_string(path, "/", FALSE);
    char *uri = g_strconcat("file:", escaped, "?immutable=1", NULL);
    int rc = sqlite3_open_v2(uri, db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
    g_free(uri);
    g_free(escaped);
    return rc;
}

/* Looks at an existing file through a read-only connection, so that a file
 * we must not touch is not touched. Returns FALSE with CORRUPT or TOO_NEW
 * (or IO); TRUE when it is fine or the probe cannot tell (e.g. a hot rollback
 * journal that needs a writer), in which case the read-write open decides. */
static gboolean
probe(const char *path, GError **error)
{
    if (!g_file_test(path, G_FILE_TEST_EXISTS))
        return TRUE;
    if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
        g_set_error(error, HEARTH_STORE_ERROR, HEARTH_STORE_ERROR_IO, "%s is a folder", path);
        return FALSE;
    }
    sqlite3 *db = NULL;
    int rc = open_probe(path, &db);
    if (rc != SQLITE_OK) {
        set_db_error(db, rc, path, "cannot open the database", error);
        sqlite3_close(db);
        return FALSE;
    }
    sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);

    gboolean ok = TRUE;
    gint64 version = 0, tables = 0;
    rc = query_int(db, "PRAGMA user_version", &version);
    if (rc != SQLITE_OK) {
        if (code_for_sqlite(rc) == HEARTH_STORE_ERROR_CORRUPT) {
            set_corrupt(path, sqlite3_errmsg(db), error);
            ok = FALSE;
        }
        goto out; /* anything else: let the read-write open decide */
    }
    if (version > HEARTH_STORE_SCHEMA_VERSION || version < 0) {
        set_too_new(path, version, error);
        ok = FALSE;
        goto out;
    }

    sqlite3_stmt *st = NULL;
    rc = sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *res = (const char *)sqlite3_column_text(st, 0);
        if (!res || strcmp(res, "ok") != 0) {
            char *why = g_strdup_printf("quick_check: %s", res ? res : "no result");
            set_corrupt(path, why, error);
            g_free(why);
            ok = FALSE;
        }
    } else if (code_for_sqlite(rc) == HEARTH_STORE_ERROR_CORRUPT) {
        set_corrupt(path, sqlite3_errmsg(db), error);
        ok = FALSE;
    }
    sqlite3_finalize(st);
    if (!ok)
        goto out;

    if (version == 0) {
        rc = query_int(db, "SELECT count(*) FROM sqlite_schema", &tables);
        if (rc == SQLITE_OK && tables > 0) {
            set_corrupt(path, "it holds tables but no Hearth schema version", error);
            ok = FALSE;
        } else if (code_for_sqlite(rc) == HEARTH_STORE_ERROR_CORRUPT) {
            set_corrupt(path, sqlite3_errmsg(db), error);
            ok = FALSE;
        }
    }
out:
    sqlite3_close(db);
    return ok;
}

/* Copies the database to <path>.bak-v<version> (or -2, -3… when that exists:
 * an earlier backup is never replaced). Called while s->db holds the write
 * lock; the backup API refuses a source connection that is writing, so the
 * copy is read through a second, read-only connection, which sees exactly the
 * committed state about to be migrated (no other writer can get in). */
static gboolean
files_identical(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    gboolean same = fa && fb;
    static char ba[65536], bb[65536];
    while (same) {
        size_t na = fread(ba, 1, sizeof ba, fa), nb = fread(bb, 1, sizeof bb, fb);
        same = na == nb && memcmp(ba, bb, na) == 0;
        if (na == 0)
            break;
    }
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
    return same;
}

static gboolean
backup(HearthStore *s, gint64 version, GError **error)
{
    char *bak = g_strdup_printf("%s.bak-v%" G_GINT64_FORMAT, s->path, version);
    char *newest = NULL;   /* the latest backup of this version, if any */
    for (int n = 2; g_file_test(bak, G_FILE_TEST_EXISTS); n++) {
        g_free(newest);
        newest = bak;
        bak = g_strdup_printf("%s.bak-v%" G_GINT64_FORMAT "-%d", s->path, version, n);
    }
    sqlite3 *src = NULL, *dst = NULL;
    int rc = sqlite3_open_v2(s->path, &src, SQLITE_OPEN_READONLY, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(src, BUSY_TIMEOUT_MS);
        rc = sqlite3_open_v2(bak, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    }
    if (rc == SQLITE_OK) {
        sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
        if (!b) {
            rc = sqlite3_errcode(dst);
        } else {
            rc = sqlite3_backup_step(b, -1);
            int frc = sqlite3_backup_finish(b);
            rc = rc == SQLITE_DONE ? frc : rc;
        }
    }
    gboolean ok = rc == SQLITE_OK;
    if (!ok) {
        g_set_error(error, HEARTH_STORE_ERROR, HEARTH_STORE_ERROR_IO,
                    "cannot back up %s to %s before upgrading it: %s", s->path, bak,
                    dst ? sqlite3_errmsg(dst) : src ? sqlite3_errmsg(src) : sqlite3_errstr(rc));
    }
    sqlite3_close(dst);
    sqlite3_close(src);
    /* A migration that failed before left a backup of this same state: keep
     * that one rather than a new copy at every open. */
    if (!ok || (newest && files_identical(newest, bak)))
        g_unlink(bak);
    g_free(bak);
    g_free(newest);
    return ok;
}

static gboolean
migrate(HearthStore *s, GError **error)
{
    gint64 version = 0;
    int rc = query_int(s->db, "PRAGMA user_version", &version);
    if (rc != SQLITE_OK) {
        set_store_error(s, rc, "cannot read the schema version", error);
        return FALSE;
    }
    if (version == HEARTH_STORE_SCHEMA_VERSION)
        return TRUE;
    if (!begin(s, error))
        return FALSE;
    /* Again inside the transaction: another process may have migrated. */
    rc = query_int(s->db, "PRAGMA user_version", &version);
    if (rc != SQLITE_OK) {
        set_store_error(s, rc, "cannot read the schema version", error);
        goto fail;
    }
    if (version > HEARTH_STORE_SCHEMA_VERSION || version < 0) {
        set_too_new(s->path, version, error);
        goto fail;
    }
    if (version == HEARTH_STORE_SCHEMA_VERSION) {
        rollback(s);
        return TRUE;
    }
    if (version > 0 && !backup(s, version, error))
        goto fail;
    for (gint64 v = version + 1; v <= HEARTH_STORE_SCHEMA_VERSION; v++) {
        char *what = g_strdup_printf("cannot upgrade the schema to version %" G_GINT64_FORMAT, v);
        gboolean ok = exec(s, schema_steps[v - 1], what, error);
        g_free(what);
        if (!ok)
            goto fail;
    }
    /* A pragma takes no parameters; the value is our own constant. */
    char *set_version = g_strdup_printf("PRAGMA user_version = %d", HEARTH_STORE_SCHEMA_VERSION);
    gboolean ok = exec(s, set_version, "cannot set the schema version", error);
    g_free(set_version);
    if (!ok)
        goto fail;
    return commit(s, error);
fail:
    rollback(s);
    return FALSE;
}

static void
stmt_free(gpointer p)
{
    sqlite3_finalize(p);
}

/* A database in a folder (or a file) this user cannot write: opened
 * read-only, so the history can at least be read. Only at the current
 * schema version (an upgrade would have to write). */
static HearthStore *
open_read_only(const char *path, GError **error)
{
    HearthStore *s = g_new0(HearthStore, 1);
    s->path = g_strdup(path);
    s->read_only = TRUE;
    s->stmts = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, stmt_free);
    int rc = open_probe(path, &s->db);
    gint64 version = 0;
    if (rc == SQLITE_OK)
        rc = query_int(s->db, "PRAGMA user_version", &version);
    if (rc != SQLITE_OK) {
        set_store_error(s, rc, "cannot open the database read-only", error);
        hearth_store_close(s);
        return NULL;
    }
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    if (version != HEARTH_STORE_SCHEMA_VERSION) {
        g_set_error(error, HEARTH_STORE_ERROR, HEARTH_STORE_ERROR_IO,
                    "%s cannot be written (its folder or the file is read-only), and it needs an upgrade from "
                    "version %" G_GINT64_FORMAT " that would write to it", path, version);
        hearth_store_close(s);
        return NULL;
    }
    return s;
}

gboolean
hearth_store_is_read_only(HearthStore *store)
{
    return store->read_only;
}

static HearthStore *
open_path(const char *path, GError **error)
{
    if (!probe(path, error))
        return NULL;
    {
        g_autofree char *parent = g_path_get_dirname(path);
        if (g_file_test(path, G_FILE_TEST_IS_REGULAR) &&
            (g_access(path, W_OK) != 0 || g_access(parent, W_OK) != 0))
            return open_read_only(path, error);
    }

    char *dir = g_path_get_dirname(path);
    if (g_mkdir_with_parents(dir, 0700) != 0) {
        int e = errno;
        g_set_error(error, HEARTH_STORE_ERROR, HEARTH_STORE_ERROR_IO, "cannot create %s: %s", dir,
                    g_strerror(e));
        g_free(dir);
        return NULL;
    }
    g_free(dir);

    HearthStore *s = g_new0(HearthStore, 1);
    s->path = g_strdup(path);
    s->stmts = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, stmt_free);
    int rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        set_store_error(s, rc, "cannot open the database", error);
        goto fail;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);

    /* Re-check the version before anything writes (the probe may have been
     * inconclusive, or another process may have changed it). */
    gint64 version = 0;
    rc = query_int(s->db, "PRAGMA user_version", &version);
    if (rc != SQLITE_OK) {
        if (code_for_sqlite(rc) == HEARTH_STORE_ERROR_CORRUPT)
            set_corrupt(path, sqlite3_errmsg(s->db), error);
        else
            set_store_error(s, rc, "cannot read the schema version", error);
        goto fail;
    }
    if (version > HEARTH_STORE_SCHEMA_VERSION || version < 0) {
        set_too_new(path, version, error);
        goto fail;
    }

    if (!exec(s,
              "PRAGMA journal_mode = WAL;"
              "PRAGMA synchronous = NORMAL;"
              "PRAGMA foreign_keys = ON;",
              "cannot configure the database", error))
        goto fail;
    if (!migrate(s, error))
        goto fail;

    sqlite3_stmt *st = prep(s, "UPDATE messages SET state = 'interrupted' WHERE state = 'partial'",
                            error);
    if (!st || !run(s, st, "cannot recover interrupted replies", error))
        goto fail;
    s->recovered = (guint)sqlite3_changes(s->db);

    if (hearth_store_purge_trash(s, TRASH_PURGE_AGE_US, error) < 0)
        goto fail;
    return s;
fail:
    hearth_store_close(s);
    return NULL;
}

HearthStore *
hearth_store_open(const char *path, GError **error)
{
    char *p = path ? g_strdup(path) : hearth_store_default_path();
    HearthStore *s = open_path(p, error);
    g_free(p);
    return s;
}

void
hearth_store_close(HearthStore *store)
{
    if (!store)
        return;
    if (store->pending && store->pending->len && store->db) {
        g_autoptr(GError) error = NULL;
        if (!hearth_store_flush_pending(store, &error))
            g_warning("%u finished replies could not be saved: %s", store->pending->len, error->message);
    }
    g_clear_pointer(&store->pending, g_ptr_array_unref);
    g_clear_pointer(&store->stmts, g_hash_table_unref);
    if (store->db)
        sqlite3_close(store->db);
    g_free(store->path);
    g_free(store);
}

HearthStore *
hearth_store_open_fresh(const char *path, HearthStoreError reason, char **moved_to,
                        GError **error)
{
    if (moved_to)
        *moved_to = NULL;
    char *p = path ? g_strdup(path) : hearth_store_default_path();
    const char *kind = reason == HEARTH_STORE_ERROR_CORRUPT  ? "corrupt"
                       : reason == HEARTH_STORE_ERROR_TOO_NEW ? "newer"
                                                              : "old";
    static const char *const companions[] = { "-wal", "-shm", "-journal" };
    HearthStore *s = NULL;
    char *dest = NULL;

    if (g_file_test(p, G_FILE_TEST_EXISTS)) {
        GDateTime *now = g_date_time_new_now_local();
        char *stamp = g_date_time_format(now, "%Y%m%d-%H%M%S");
        g_date_time_unref(now);
        dest = g_strdup_printf("%s.%s-%s", p, kind, stamp);
        for (int n = 2; g_file_test(dest, G_FILE_TEST_EXISTS); n++) {
            g_free(dest);
            dest = g_strdup_printf("%s.%s-%s-%d", p, kind, stamp, n);
        }
        g_free(stamp);
        if (g_rename(p, dest) != 0) {
            int e = errno;
            g_set_error(error, HEARTH_STORE_ERROR, HEARTH_STORE_ERROR_IO,
                        "cannot move %s aside to %s: %s", p, dest, g_strerror(e));
            goto out;
        }
    }
    /* The companions go too, even without a main file: a stale -wal would
     * otherwise be replayed into the fresh database. */
    for (guint i = 0; i < G_N_ELEMENTS(companions); i++) {
        char *from = g_strconcat(p, companions[i], NULL);
        if (g_file_test(from, G_FILE_TEST_EXISTS)) {
            if (!dest) {
                GDateTime *now = g_date_time_new_now_local();
                char *stamp = g_date_time_format(now, "%Y%m%d-%H%M%S");
                g_date_time_unref(now);
                dest = g_strdup_printf("%s.%s-%s", p, kind, stamp);
                g_free(stamp);
            }
            char *to = g_strconcat(dest, companions[i], NULL);
            int r = g_rename(from, to);
            int e = errno;
            if (r != 0)
                g_set_error(error, HEARTH_STORE_ERROR, HEARTH_STORE_ERROR_IO,
                            "cannot move %s aside to %s: %s", from, to, g_strerror(e));
            g_free(to);
            if (r != 0) {
                g_free(from);
                goto out;
            }
        }
        g_free(from);
    }
    s = open_path(p, error);
out:
    if (moved_to && g_file_test(dest ? dest : "", G_FILE_TEST_EXISTS))
        *moved_to = g_strdup(dest);
    g_free(dest);
    g_free(p);
    return s;
}

const char *
hearth_store_get_path(HearthStore *store)
{
    return store->path;
}

guint
hearth_store_get_recovered_count(HearthStore *store)
{
    return store->recovered;
}

/* --- conversations -------------------------------------------------------- */

/* `updated` values are strictly increasing across the store, so "most
 * recently updated" is a total order even within one microsecond. */
static const char SQL_BUMP[] =
    "UPDATE conversations SET updated ="
    "  max(?2, (SELECT coalesce(max(updated), 0) + 1 FROM conversations))"
    " WHERE id = ?1";

static gboolean
bump(HearthStore *s, gint64 conversation_id, GError **error)
{
    sqlite3_stmt *st = prep(s, SQL_BUMP, error);
    if (!st)
        return FALSE;
    sqlite3_bind_int64(st, 1, conversation_id);
    sqlite3_bind_int64(st, 2, g_get_real_time());
    return run(s, st, "cannot update the conversation", error);
}

gint64
hearth_store_conversation_create(HearthStore *store, const char *model, GError **error)
{
    if (!check_utf8(model, -1, "The model name", error))
        return 0;
    if (!begin(store, error))
        return 0;
    sqlite3_stmt *st = prep(store,
                            "INSERT INTO conversations (created, updated, model)"
                            " VALUES (?1, max(?1, (SELECT coalesce(max(updated), 0) + 1"
                            " FROM conversations)), ?2)",
                            error);
    if (!st)
        goto fail;
    sqlite3_bind_int64(st, 1, g_get_real_time());
    bind_text_or_null(st, 2, model);
    if (!run(store, st, "cannot create a conversation", error))
        goto fail;
    gint64 id = sqlite3_last_insert_rowid(store->db);
    if (!commit(store, error))
        return 0;
    return id;
fail:
    rollback(store);
    return 0;
}

#define CONVERSATION_COLUMNS                                                                  \
    "id, title, title_is_auto, created, updated, deleted_at, model, system_prompt,"         \
    " temperature, top_p, max_new_tokens"

static HearthStoreConversation *
read_conversation(sqlite3_stmt *st)
{
    HearthStoreConversation *c = g_new0(HearthStoreConversation, 1);
    c->id = sqlite3_column_int64(st, 0);
    c->title = col_text_nonnull(st, 1);
    c->title_is_auto = sqlite3_column_int(st, 2) != 0;
    c->created = sqlite3_column_int64(st, 3);
    c->updated = sqlite3_column_int64(st, 4);
    c->deleted_at = sqlite3_column_int64(st, 5);
    c->model = col_text(st, 6);
    c->system_prompt = col_text(st, 7);
    c->temperature = col_double_or_unset(st, 8);
    c->top_p = col_double_or_unset(st, 9);
    c->max_new_tokens = col_int_or_unset(st, 10);
    return c;
}

GPtrArray *
hearth_store_conversation_list(HearthStore *store, GError **error)
{
    sqlite3_stmt *st = prep(store,
                            "SELECT " CONVERSATION_COLUMNS " FROM conversations"
                            " WHERE deleted_at IS NULL ORDER BY updated DESC, id DESC",
                            error);
    if (!st)
        return NULL;
    GPtrArray *list = g_ptr_array_new_with_free_func((GDestroyNotify)hearth_store_conversation_free);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        g_ptr_array_add(list, read_conversation(st));
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        set_store_error(store, rc, "cannot list conversations", error);
        g_ptr_array_unref(list);
        return NULL;
    }
    return list;
}

HearthStoreConversation *
hearth_store_conversation_get(HearthStore *store, gint64 id, GError **error)
{
    sqlite3_stmt *st = prep(store,
                            "SELECT " CONVERSATION_COLUMNS " FROM conversations WHERE id = ?1",
                            error);
    if (!st)
        return NULL;
    sqlite3_bind_int64(st, 1, id);
    HearthStoreConversation *c = NULL;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        c = read_conversation(st);
    else if (rc == SQLITE_DONE)
        set_not_found(error, "conversation", id);
    else
        set_store_error(store, rc, "cannot read a conversation", error);
    sqlite3_reset(st);
    return c;
}

/* Runs a one-row UPDATE/DELETE on a conversation or message id; NOT_FOUND
 * when it touched nothing. */
static gboolean
run_one(HearthStore *s, sqlite3_stmt *st, const char *what, const char *kind, gint64 id,
        GError **error)
{
    if (!run(s, st, what, error))
        return FALSE;
    if (sqlite3_changes(s->db) == 0) {
        set_not_found(error, kind, id);
        return FALSE;
    }
    return TRUE;
}

/* The first user message's text as the title, when the title is automatic. */
static gboolean
refresh_auto_title(HearthStore *s, gint64 conversation_id, GError **error)
{
    sqlite3_stmt *st = prep(s,
                            "SELECT content FROM messages WHERE conversation_id = ?1"
                            " AND role = 'user' ORDER BY position LIMIT 1",
                            error);
    if (!st)
        return FALSE;
    sqlite3_bind_int64(st, 1, conversation_id);
    int rc = sqlite3_step(st);
    char *text = rc == SQLITE_ROW ? col_text_nonnull(st, 0) : g_strdup("");
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        g_free(text);
        set_store_error(s, rc, "cannot read the first message", error);
        return FALSE;
    }
    char *title = hearth_store_title_from_text(text);
    g_free(text);
    st = prep(s, "UPDATE conversations SET title = ?2 WHERE id = ?1 AND title_is_auto", error);
    gboolean ok = st != NULL;
    if (ok) {
        sqlite3_bind_int64(st, 1, conversation_id);
        sqlite3_bind_text(st, 2, title, -1, SQLITE_TRANSIENT);
        ok = run(s, st, "cannot set the title", error);
    }
    g_free(title);
    return ok;
}

gboolean
hearth_store_conversation_rename(HearthStore *store, gint64 id, const char *title, GError **error)
{
    if (!check_utf8(title, -1, "The title", error))
        return FALSE;
    char *clean = g_strstrip(g_strdup(title ? title : ""));
    gboolean is_auto = *clean == '\0';
    if (!begin(store, error)) {
        g_free(clean);
        return FALSE;
    }
    sqlite3_stmt *st = prep(store,
                            "UPDATE conversations SET title = ?2, title_is_auto = ?3 WHERE id = ?1",
                            error);
    gboolean ok = st != NULL;
    if (ok) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, clean, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 3, is_auto);
        ok = run_one(store, st, "cannot rename the conversation", "conversation", id, error);
    }
    g_free(clean);
    if (ok && is_auto)
        ok = refresh_auto_title(store, id, error);
    if (!ok) {
        rollback(store);
        return FALSE;
    }
    return commit(store, error);
}

gboolean
hearth_store_conversation_set_settings(HearthStore *store, gint64 id, const char *system_prompt,
                                       double temperature, double top_p, int max_new_tokens,
                                       GError **error)
{
    if (!check_utf8(system_prompt, -1, "The system prompt", error))
        return FALSE;
    if (isnan(temperature) || isnan(top_p) || isinf(temperature) || isinf(top_p)) {
        g_set_error(error, HEARTH_STORE_ERROR, HEARTH_STORE_ERROR_INVALID,
                    "temperature and top-p must be numbers");
        return FALSE;
    }
    sqlite3_stmt *st = prep(store,
                            "UPDATE conversations SET system_prompt = ?2, temperature = ?3,"
                            " top_p = ?4, max_new_tokens = ?5 WHERE id = ?1",
                            error);
    if (!st)
        return FALSE;
    sqlite3_bind_int64(st, 1, id);
    bind_text_or_null(st, 2, system_prompt);
    if (temperature >= 0)
        sqlite3_bind_double(st, 3, temperature);
    if (top_p >= 0)
        sqlite3_bind_double(st, 4, top_p);
    if (max_new_tokens > 0)
        sqlite3_bind_int(st, 5, max_new_tokens);
    return run_one(store, st, "cannot save the settings", "conversation", id, error);
}

gboolean
hearth_store_conversation_set_model(HearthStore *store, gint64 id, const char *model,
                                    GError **error)
{
    if (!check_utf8(model, -1, "The model name", error))
        return FALSE;
    sqlite3_stmt *st = prep(store, "UPDATE conversations SET model = ?2 WHERE id = ?1", error);
    if (!st)
        return FALSE;
    sqlite3_bind_int64(st, 1, id);
    bind_text_or_null(st, 2, model);
    return run_one(store, st, "cannot save the model", "conversation", id, error);
}

gboolean
hearth_store_conversation_trash(HearthStore *store, gint64 id, GError **error)
{
    sqlite3_stmt *st = prep(store,
                            "UPDATE conversations SET deleted_at = coalesce(deleted_at, ?2)"
                            " WHERE id = ?1",
                            error);
    if (!st)
        return FALSE;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, g_get_real_time());
    return run_one(store, st, "cannot delete the conversation", "conversation", id, error);
}

gboolean
hearth_store_conversation_restore(HearthStore *store, gint64 id, GError **error)
{
    sqlite3_stmt *st = prep(store, "UPDATE conversations SET deleted_at = NULL WHERE id = ?1",
                            error);
    if (!st)
        return FALSE;
    sqlite3_bind_int64(st, 1, id);
    return run_one(store, st, "cannot restore the conversation", "conversation", id, error);
}

int
hearth_store_purge_trash(HearthStore *store, gint64 max_age_us, GError **error)
{
    sqlite3_stmt *st = prep(store,
                            "DELETE FROM conversations WHERE deleted_at IS NOT NULL"
                            " AND deleted_at <= ?1",
                            error);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, max_age_us > 0 ? g_get_real_time() - max_age_us : G_MAXINT64);
    if (!run(store, st, "cannot purge deleted conversations", error))
        return -1;
    return sqlite3_changes(store->db);
}

gboolean
hearth_store_conversation_delete(HearthStore *store, gint64 id, GError **error)
{
    sqlite3_stmt *st = prep(store, "DELETE FROM conversations WHERE id = ?1", error);
    if (!st)
        return FALSE;
    sqlite3_bind_int64(st, 1, id);
    return run_one(store, st, "cannot delete the conversation", "conversation", id, error);
}

int
hearth_store_conversation_delete_all(HearthStore *store, GError **error)
{
    sqlite3_stmt *st = prep(store, "DELETE FROM conversations", error);
    if (!st)
        return -1;
    if (!run(store, st, "cannot delete the conversations", error))
        return -1;
    return sqlite3_changes(store->db);
}

/* --- messages ------------------------------------------------------------- */

gint64
hearth_store_message_append(HearthStore *store, gint64 conversation_id, HearthStoreRole role,
                            HearthStoreState state, const char *content, gssize length,
                            int token_count, GError **error)
{
    if (!hearth_store_role_to_string(role) || !hearth_store_state_to_string(state)) {
        g_set_error(error, HEARTH_STORE_ERROR, HEARTH_STORE_ERROR_INVALID,
                    "invalid message role or state");
        return 0;
    }
    if (!content)
        content = "", length = 0;
    if (!check_utf8(content, length, "The message", error))
        return 0;
    if (length < 0)
        length = (gssize)strlen(content);
    if (!begin(store, error))
        return 0;

    gint64 id = 0, position = 0, first_user = 0;
    sqlite3_stmt *st = prep(store,
                            "SELECT (SELECT coalesce(max(position), -1) + 1 FROM messages"
                            "         WHERE conversation_id = ?1),"
                            "       NOT EXISTS (SELECT 1 FROM messages WHERE conversation_id = ?1"
                            "         AND role = 'user')"
                            " FROM conversations WHERE id = ?1",
                            error);
    if (!st)
        goto fail;
    sqlite3_bind_int64(st, 1, conversation_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        position = sqlite3_column_int64(st, 0);
        first_user = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    if (rc == SQLITE_DONE) {
        set_not_found(error, "conversation", conversation_id);
        goto fail;
    } else if (rc != SQLITE_ROW) {
        set_store_error(store, rc, "cannot add a message", error);
        goto fail;
    }

    st = prep(store,
              "INSERT INTO messages (conversation_id, position, role, content, created,"
              " token_count, state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
              error);
    if (!st)
        goto fail;
    sqlite3_bind_int64(st, 1, conversation_id);
    sqlite3_bind_int64(st, 2, position);
    sqlite3_bind_text(st, 3, hearth_store_role_to_string(role), -1, SQLITE_STATIC);
    sqlite3_bind_text64(st, 4, content, (sqlite3_uint64)length, SQLITE_STATIC, SQLITE_UTF8);
    sqlite3_bind_int64(st, 5, g_get_real_time());
    if (token_count >= 0)
        sqlite3_bind_int(st, 6, token_count);
    sqlite3_bind_text(st, 7, hearth_store_state_to_string(state), -1, SQLITE_STATIC);
    if (!run(store, st, "cannot add a message", error))
        goto fail;
    id = sqlite3_last_insert_rowid(store->db);

    if (!bump(store, conversation_id, error))
        goto fail;
    if (role == HEARTH_STORE_ROLE_USER && first_user &&
        !refresh_auto_title(store, conversation_id, error))
        goto fail;
    if (!commit(store, error))
        return 0;
    return id;
fail:
    rollback(store);
    return 0;
}

/* The integer columns of the one row `sql` (with ?1 = message id) selects,
 * into out[0..n): FALSE with NOT_FOUND when there is no such message, with
 * a store error saying `what` when the query fails. */
static gboolean
message_ints(HearthStore *s, const char *sql, gint64 id, int n, gint64 *out, const char *what, GError **error)
{
    sqlite3_stmt *st = prep(s, sql, error);
    if (!st)
        return FALSE;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    for (int i = 0; i < n; i++)
        out[i] = rc == SQLITE_ROW ? sqlite3_column_int64(st, i) : 0;
    sqlite3_reset(st);
    if (rc == SQLITE_DONE) {
        set_not_found(error, "message", id);
        return FALSE;
    }
    if (rc != SQLITE_ROW) {
        set_store_error(s, rc, what, error);
        return FALSE;
    }
    return TRUE;
}

/* Bumps the conversation that holds message `id`. */
static gboolean
bump_for_message(HearthStore *s, gint64 id, GError **error)
{
    gint64 conversation_id;
    if (!message_ints(s, "SELECT conversation_id FROM messages WHERE id = ?1", id, 1, &conversation_id,
                      "cannot find a message", error))
        return FALSE;
    return bump(s, conversation_id, error);
}

gboolean
hearth_store_message_update_content(HearthStore *store, gint64 id, const char *content,
                                    gssize length, int token_count, GError **error)
{
    if (!content)
        content = "", length = 0;
    if (!check_utf8(content, length, "The message", error))
        return FALSE;
    if (length < 0)
        length = (gssize)strlen(content);
    if (!begin(store, error))
        return FALSE;
    sqlite3_stmt *st = prep(store,
                            "UPDATE messages SET content = ?2,"
                            " token_count = CASE WHEN ?3 >= 0 THEN ?3 ELSE token_count END"
                            " WHERE id = ?1",
                            error);
    if (!st)
        goto fail;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text64(st, 2, content, (sqlite3_uint64)length, SQLITE_STATIC, SQLITE_UTF8);
    sqlite3_bind_int(st, 3, token_count);
    if (!run_one(store, st, "cannot save the message", "message", id, error))
        goto fail;
    if (!bump_for_message(store, id, error))
        goto fail;
    return commit(store, error);
fail:
    rollback(store);
    return FALSE;
}

gboolean
hearth_store_message_finish(HearthStore *store, gint64 id, HearthStoreState state,
                            const char *content, gssize length, const HearthStoreGenStats *stats,
                            GError **error)
{
    if (state != HEARTH_STORE_STATE_COMPLETE && state != HEARTH_STORE_STATE_INTERRUPTED) {
        g_set_error(error, HEARTH_STORE_ERROR, HEARTH_STORE_ERROR_INVALID,
                    "a reply finishes complete or interrupted");
        return FALSE;
    }
    if (!check_utf8(content, length, "The message", error))
        return FALSE;
    if (content && length < 0)
        length = (gssize)strlen(content);
    HearthStoreGenStats none = HEARTH_STORE_GEN_STATS_UNKNOWN;
    if (!stats)
        stats = &none;
    if (!begin(store, error))
        return FALSE;
    sqlite3_stmt *st = prep(store,
                            "UPDATE messages SET state = ?2,"
                            " content = CASE WHEN ?3 IS NULL THEN content ELSE ?3 END,"
                            " prompt_tokens = ?4, gen_tokens = ?5, tokens_per_s = ?6,"
                            " time_to_first_token_ms = ?7,"
                            " token_count = CASE WHEN ?5 IS NULL THEN token_count ELSE ?5 END,"
                            " error = NULL"
                            " WHERE id = ?1",
                            error);
    if (!st)
        goto fail;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, hearth_store_state_to_string(state), -1, SQLITE_STATIC);
    if (content)
        sqlite3_bind_text64(st, 3, content, (sqlite3_uint64)length, SQLITE_STATIC, SQLITE_UTF8);
    if (stats->prompt_tokens >= 0)
        sqlite3_bind_int(st, 4, stats->prompt_tokens);
    if (stats->gen_tokens >= 0)
        sqlite3_bind_int(st, 5, stats->gen_tokens);
    if (stats->tokens_per_s >= 0 && isfinite(stats->tokens_per_s))
        sqlite3_bind_double(st, 6, stats->tokens_per_s);
    if (stats->time_to_first_token_ms >= 0 && isfinite(stats->time_to_first_token_ms))
        sqlite3_bind_double(st, 7, stats->time_to_first_token_ms);
    if (!run_one(store, st, "cannot save the reply", "message", id, error))
        goto fail;
    if (!bump_for_message(store, id, error))
        goto fail;
    return commit(store, error);
fail:
    rollback(store);
    return FALSE;
}

gboolean
hearth_store_message_set_error(HearthStore *store, gint64 id, const char *error_text,
                               GError **error)
{
    if (!check_utf8(error_text, -1, "The error text", error))
        return FALSE;
    sqlite3_stmt *st = prep(store,
                            "UPDATE messages SET state = 'error', error = ?2 WHERE id = ?1",
                            error);
    if (!st)
        return FALSE;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, error_text ? error_text : "", -1, SQLITE_TRANSIENT);
    return run_one(store, st, "cannot save the error", "message", id, error);
}

/* --- a reply's end, kept while the database cannot take it --------------- */

typedef struct {
    gint64 id;
    HearthStoreState state;
    char *content;
    HearthStoreGenStats stats;
    char *error_text;
} PendingEnd;

static void
pending_end_free(gpointer data)
{
    PendingEnd *p = data;
    g_free(p->content);
    g_free(p->error_text);
    g_free(p);
}

static gboolean
write_end(HearthStore *store, const PendingEnd *p, GError **error)
{
    if (p->state == HEARTH_STORE_STATE_ERROR) /* two writes; again from the first when the second fails */
        return hearth_store_message_update_content(store, p->id, p->content, -1, -1, error) &&
               hearth_store_message_set_error(store, p->id, p->error_text, error);
    return hearth_store_message_finish(store, p->id, p->state, p->content, -1, &p->stats, error);
}

gboolean
hearth_store_flush_pending(HearthStore *store, GError **error)
{
    while (store->pending && store->pending->len) {
        GError *local = NULL;
        if (!write_end(store, store->pending->pdata[0], &local)) {
            /* gone with its conversation, deleted meanwhile: nothing left to save */
            if (!g_error_matches(local, HEARTH_STORE_ERROR, HEARTH_STORE_ERROR_NOT_FOUND)) {
                g_propagate_error(error, local);
                return FALSE;
            }
            g_error_free(local);
        }
        g_ptr_array_remove_index(store->pending, 0);
    }
    return TRUE;
}

guint
hearth_store_pending_count(HearthStore *store)
{
    return store->pending ? store->pending->len : 0;
}

gboolean
hearth_store_message_end(HearthStore *store, gint64 id, HearthStoreState state, const char *content,
                         const HearthStoreGenStats *stats, const char *error_text, GError **error)
{
    if (state != HEARTH_STORE_STATE_COMPLETE && state != HEARTH_STORE_STATE_INTERRUPTED &&
        state != HEARTH_STORE_STATE_ERROR) {
        g_set_error(error, HEARTH_STORE_ERROR, HEARTH_STORE_ERROR_INVALID,
                    "a reply ends complete, interrupted or with an error");
        return FALSE;
    }
    if (!content) {
        g_set_error(error, HEARTH_STORE_ERROR, HEARTH_STORE_ERROR_INVALID, "a reply ends with its text");
        return FALSE;
    }
    if (!check_utf8(content, -1, "The message", error) || !check_utf8(error_text, -1, "The error text", error))
        return FALSE;
    if (store->read_only) /* nothing is saved; nothing to keep */
        return write_end(store, &(PendingEnd){ id, state, (char *)content, HEARTH_STORE_GEN_STATS_UNKNOWN,
                                               (char *)error_text },
                         error);
    PendingEnd *p = g_new0(PendingEnd, 1);
    p->id = id;
    p->state = state;
    p->content = g_strdup(content);
    p->stats = stats ? *stats : HEARTH_STORE_GEN_STATS_UNKNOWN;
    p->error_text = g_strdup(error_text);
    if (!store->pending)
        store->pending = g_ptr_array_new_with_free_func(pending_end_free);
    g_ptr_array_add(store->pending, p); /* after any still waiting: they are written in order */
    return hearth_store_flush_pending(store, error);
}

#define MESSAGE_COLUMNS                                                                        \
    "id, conversation_id, position, role, state, content, created, token_count,"             \
    " prompt_tokens, gen_tokens, tokens_per_s, time_to_first_token_ms, error, version,"      \
    " 1 + (SELECT count(*) FROM message_versions v WHERE v.message_id = messages.id)"

static HearthStoreMessage *
read_message(sqlite3_stmt *st)
{
    HearthStoreMessage *m = g_new0(HearthStoreMessage, 1);
    m->id = sqlite3_column_int64(st, 0);
    m->conversation_id = sqlite3_column_int64(st, 1);
    m->position = sqlite3_column_int(st, 2);
    if (!hearth_store_role_from_string((const char *)sqlite3_column_text(st, 3), &m->role))
        m->role = HEARTH_STORE_ROLE_USER; /* unreachable: CHECK constraint */
    if (!hearth_store_state_from_string((const char *)sqlite3_column_text(st, 4), &m->state))
        m->state = HEARTH_STORE_STATE_COMPLETE;
    const unsigned char *text = sqlite3_column_text(st, 5);
    m->content_len = (gsize)sqlite3_column_bytes(st, 5);
    m->content = text ? g_strndup((const char *)text, m->content_len) : g_strdup("");
    m->created = sqlite3_column_int64(st, 6);
    m->token_count = col_int_or_unset(st, 7);
    m->stats.prompt_tokens = col_int_or_unset(st, 8);
    m->stats.gen_tokens = col_int_or_unset(st, 9);
    m->stats.tokens_per_s = col_double_or_unset(st, 10);
    m->stats.time_to_first_token_ms = col_double_or_unset(st, 11);
    m->error = col_text(st, 12);
    m->version = sqlite3_column_int(st, 13);
    m->n_versions = sqlite3_column_int(st, 14);
    return m;
}

HearthStoreMessage *
hearth_store_message_get(HearthStore *store, gint64 id, GError **error)
{
    sqlite3_stmt *st = prep(store, "SELECT " MESSAGE_COLUMNS " FROM messages WHERE id = ?1", error);
    if (!st)
        return NULL;
    sqlite3_bind_int64(st, 1, id);
    HearthStoreMessage *m = NULL;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        m = read_message(st);
    else if (rc == SQLITE_DONE)
        set_not_found(error, "message", id);
    else
        set_store_error(store, rc, "cannot read a message", error);
    sqlite3_reset(st);
    return m;
}

static gboolean
conversation_exists(HearthStore *s, gint64 id, GError **error)
{
    sqlite3_stmt *st = prep(s, "SELECT 1 FROM conversations WHERE id = ?1", error);
    if (!st)
        return FALSE;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return TRUE;
    if (rc == SQLITE_DONE)
        set_not_found(error, "conversation", id);
    else
        set_store_error(s, rc, "cannot read a conversation", error);
    return FALSE;
}

GPtrArray *
hearth_store_message_list(HearthStore *store, gint64 conversation_id, GError **error)
{
    /* One read transaction, so the existence check and the rows agree. */
    if (!exec(store, "BEGIN", "cannot read messages", error))
        return NULL;
    GPtrArray *list = NULL;
    if (!conversation_exists(store, conversation_id, error))
        goto out;
    sqlite3_stmt *st = prep(store,
                            "SELECT " MESSAGE_COLUMNS " FROM messages WHERE conversation_id = ?1"
                            " ORDER BY position",
                            error);
    if (!st)
        goto out;
    sqlite3_bind_int64(st, 1, conversation_id);
    list = g_ptr_array_new_with_free_func((GDestroyNotify)hearth_store_message_free);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        g_ptr_array_add(list, read_message(st));
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        set_store_error(store, rc, "cannot list messages", error);
        g_clear_pointer(&list, g_ptr_array_unref);
    }
out:
    rollback(store);
    return list;
}

int
hearth_store_message_delete_after(HearthStore *store, gint64 conversation_id, int position,
                                  GError **error)
{
    if (!begin(store, error))
        return -1;
    int n = -1;
    if (!conversation_exists(store, conversation_id, error))
        goto fail;
    sqlite3_stmt *st = prep(store,
                            "DELETE FROM messages WHERE conversation_id = ?1 AND position > ?2",
                            error);
    if (!st)
        goto fail;
    sqlite3_bind_int64(st, 1, conversation_id);
    sqlite3_bind_int(st, 2, position);
    if (!run(store, st, "cannot delete messages", error))
        goto fail;
    n = sqlite3_changes(store->db);
    if (!bump(store, conversation_id, error))
        goto fail;
    /* Deleting the first user message makes the next one (if any) title it. */
    if (!refresh_auto_title(store, conversation_id, error))
        goto fail;
    if (!commit(store, error))
        return -1;
    return n;
fail:
    rollback(store);
    return -1;
}

/* --- versions ------------------------------------------------------------- */

/* The columns a version has, in message_versions and in messages alike. */
#define VERSION_COLUMNS                                                                        \
    "content, created, token_count, state, error, prompt_tokens, gen_tokens, tokens_per_s,"  \
    " time_to_first_token_ms"

/* The shown version of message id goes to message_versions under its number. */
static gboolean
archive_shown_version(HearthStore *s, gint64 id, GError **error)
{
    sqlite3_stmt *st = prep(s,
                            "INSERT INTO message_versions (message_id, version, " VERSION_COLUMNS ")"
                            " SELECT id, version, " VERSION_COLUMNS " FROM messages WHERE id = ?1",
                            error);
    if (!st)
        return FALSE;
    sqlite3_bind_int64(st, 1, id);
    return run_one(s, st, "cannot keep the earlier version", "message", id, error);
}

int
hearth_store_message_new_version(HearthStore *store, gint64 id, GError **error)
{
    if (!begin(store, error))
        return 0;
    int version = 0;
    /* A failed reply that wrote nothing is not worth keeping: it is replaced. */
    gint64 row[2];
    if (!message_ints(store,
                      "SELECT state = 'error' AND content = '',"
                      " 1 + max(version, (SELECT coalesce(max(version), 0) FROM message_versions"
                      "   WHERE message_id = ?1))"
                      " FROM messages WHERE id = ?1",
                      id, 2, row, "cannot read a message", error))
        goto fail;
    const gboolean discard = row[0] != 0;
    const int next = (int)row[1];
    sqlite3_stmt *st;
    int rc;
    if (!discard && !archive_shown_version(store, id, error))
        goto fail;
    st = prep(store,
              "UPDATE messages SET version = CASE WHEN ?3 THEN version ELSE ?2 END, content = '',"
              " created = ?4, token_count = NULL, state = 'partial', error = NULL,"
              " prompt_tokens = NULL, gen_tokens = NULL, tokens_per_s = NULL,"
              " time_to_first_token_ms = NULL WHERE id = ?1 RETURNING version",
              error);
    if (!st)
        goto fail;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, next);
    sqlite3_bind_int(st, 3, discard);
    sqlite3_bind_int64(st, 4, g_get_real_time());
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_reset(st);
    if (rc != SQLITE_ROW) {
        set_store_error(store, rc, "cannot start a new version", error);
        goto fail;
    }
    if (!bump_for_message(store, id, error))
        goto fail;
    if (!commit(store, error))
        return 0;
    return version;
fail:
    rollback(store);
    return 0;
}

gboolean
hearth_store_message_show_version(HearthStore *store, gint64 id, int version, GError **error)
{
    if (!begin(store, error))
        return FALSE;
    gint64 shown;
    if (!message_ints(store, "SELECT version FROM messages WHERE id = ?1", id, 1, &shown, "cannot read a message",
                      error))
        goto fail;
    sqlite3_stmt *st;
    int rc;
    if (shown == version) {
        rollback(store);
        return TRUE;
    }
    /* The wanted version must be there before the shown one is put away. */
    st = prep(store, "SELECT 1 FROM message_versions WHERE message_id = ?1 AND version = ?2", error);
    if (!st)
        goto fail;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, version);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE) {
        g_set_error(error, HEARTH_STORE_ERROR, HEARTH_STORE_ERROR_NOT_FOUND,
                    "message %" G_GINT64_FORMAT " has no version %d", id, version);
        goto fail;
    } else if (rc != SQLITE_ROW) {
        set_store_error(store, rc, "cannot read a version", error);
        goto fail;
    }
    if (!archive_shown_version(store, id, error))
        goto fail;
    st = prep(store,
              "UPDATE messages SET (version, " VERSION_COLUMNS ") ="
              " (SELECT version, " VERSION_COLUMNS " FROM message_versions"
              "  WHERE message_id = ?1 AND version = ?2)"
              " WHERE id = ?1",
              error);
    if (!st)
        goto fail;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, version);
    if (!run_one(store, st, "cannot show the version", "message", id, error))
        goto fail;
    st = prep(store, "DELETE FROM message_versions WHERE message_id = ?1 AND version = ?2", error);
    if (!st)
        goto fail;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, version);
    if (!run(store, st, "cannot show the version", error))
        goto fail;
    return commit(store, error);
fail:
    rollback(store);
    return FALSE;
}

/* --- search --------------------------------------------------------------- */

static gboolean
has_word_char(const char *s, const char *end)
{
    for (const char *p = s; p < end; p = g_utf8_next_char(p))
        if (g_unichar_isalnum(g_utf8_get_char(p)))
            return TRUE;
    return FALSE;
}

/* User text -> FTS5 query: every whitespace-separated term becomes a quoted
 * string (inner quotes doubled) with a prefix star, so nothing the user
 * types is FTS syntax. Terms with no letter or digit are dropped (they would
 * tokenize to nothing). Returns NULL if no term is left. */
static char *
fts_query_from_text(const char *text)
{
    GString *q = g_string_new(NULL);
    const char *p = text;
    int n_terms = 0;
    while (*p) {
        while (*p && g_unichar_isspace(g_utf8_get_char(p)))
            p = g_utf8_next_char(p);
        const char *start = p;
        while (*p && !g_unichar_isspace(g_utf8_get_char(p)))
            p = g_utf8_next_char(p);
        if (p == start || !has_word_char(start, p))
            continue;
        if (++n_terms > SEARCH_MAX_TERMS)
            break; /* a pasted page is not a query: the first terms decide */
        if (q->len)
            g_string_append_c(q, ' ');
        g_string_append_c(q, '"');
        for (const char *c = start; c < p; c++) {
            if (*c == '"')
                g_string_append_c(q, '"');
            g_string_append_c(q, *c);
        }
        g_string_append(q, "\"*");
    }
    if (q->len == 0) {
        g_string_free(q, TRUE);
        return NULL;
    }
    return g_string_free(q, FALSE);
}

/* The search on one connection: the conversations whose messages match,
 * most recently updated first (one row each, with its latest matching
 * message), then a snippet for just those rows. Snippets used to be computed
 * for every matching message before sorting: 5 to 52 s on long looping
 * histories. */
static GPtrArray *
search_db(sqlite3 *db, const char *path, const char *text, guint limit, const char *mark_open,
          const char *mark_close, GError **error)
{
    if (!check_utf8(text, -1, "The search text", error) ||
        !check_utf8(mark_open, -1, "The marker", error) ||
        !check_utf8(mark_close, -1, "The marker", error))
        return NULL;
    if (limit == 0)
        limit = SEARCH_DEFAULT_LIMIT;
    GPtrArray *hits = g_ptr_array_new_with_free_func((GDestroyNotify)hearth_store_search_hit_free);
    g_autofree char *query = text ? fts_query_from_text(text) : NULL;
    if (!query)
        return hits;

    sqlite3_stmt *st = NULL, *snip = NULL;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT c.id, m.id, c.title, c.updated, MAX(m.position)"
                                " FROM messages_fts"
                                " JOIN messages m ON m.id = messages_fts.rowid"
                                " JOIN conversations c ON c.id = m.conversation_id"
                                " WHERE messages_fts MATCH ?1 AND c.deleted_at IS NULL"
                                " GROUP BY c.id"
                                " ORDER BY c.updated DESC, c.id DESC LIMIT ?2",
                                -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db,
                                "SELECT snippet(messages_fts, 0, ?2, ?3, '…', 16) FROM messages_fts"
                                " WHERE messages_fts MATCH ?1 AND rowid = ?4",
                                -1, &snip, NULL);
    if (rc != SQLITE_OK)
        goto fail;
    sqlite3_bind_text(st, 1, query, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, limit);
    /* With bare columns beside MAX(), SQLite takes them from the row that
     * holds the maximum: the latest matching message of each conversation. */
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        HearthStoreSearchHit *h = g_new0(HearthStoreSearchHit, 1);
        h->conversation_id = sqlite3_column_int64(st, 0);
        h->message_id = sqlite3_column_int64(st, 1);
        h->title = col_text_nonnull(st, 2);
        h->updated = sqlite3_column_int64(st, 3);
        g_ptr_array_add(hits, h);
    }
    if (rc != SQLITE_DONE)
        goto fail;
    sqlite3_bind_text(snip, 1, query, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(snip, 2, mark_open ? mark_open : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(snip, 3, mark_close ? mark_close : "", -1, SQLITE_TRANSIENT);
    for (guint i = 0; i < hits->len; i++) {
        HearthStoreSearchHit *h = g_ptr_array_index(hits, i);
        sqlite3_reset(snip);
        sqlite3_bind_int64(snip, 4, h->message_id);
        rc = sqlite3_step(snip);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            goto fail;
        h->snippet = rc == SQLITE_ROW ? col_text_nonnull(snip, 0) : g_strdup("");
    }
    sqlite3_finalize(st);
    sqlite3_finalize(snip);
    return hits;
fail:
    set_db_error(db, rc, path, "cannot search", error);
    sqlite3_finalize(st);
    sqlite3_finalize(snip);
    g_ptr_array_unref(hits);
    return NULL;
}

GPtrArray *
hearth_store_search(HearthStore *store, const char *text, guint limit, const char *mark_open,
                    const char *mark_close, GError **error)
{
    return search_db(store->db, store->path, text, limit, mark_open, mark_close, error);
}

typedef struct {
    char *path, *text, *mark_open, *mark_close;
    guint limit;
} SearchJob;

static void
search_job_free(SearchJob *j)
{
    g_free(j->path);
    g_free(j->text);
    g_free(j->mark_open);
    g_free(j->mark_close);
    g_free(j);
}

/* SQLite calls this every few thousand steps: a cancelled search stops. */
static int
search_progress(void *cancellable)
{
    return g_cancellable_is_cancelled(cancellable) ? 1 : 0;
}

static void
search_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
    SearchJob *j = data;
    sqlite3 *db = NULL;
    GError *error = NULL;
    /* Its own read-only connection: the window's connection (and its writes
     * of a streaming reply) never wait for a search. */
    int rc = sqlite3_open_v2(j->path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        set_db_error(db, rc, j->path, "cannot open the conversations for searching", &error);
        sqlite3_close(db);
        g_task_return_error(task, error);
        return;
    }
    sqlite3_busy_timeout(db, 2000);
    if (cancellable)
        sqlite3_progress_handler(db, 1000, search_progress, cancellable);
    GPtrArray *hits = search_db(db, j->path, j->text, j->limit, j->mark_open, j->mark_close, &error);
    sqlite3_close(db);
    if (g_task_return_error_if_cancelled(task)) {
        g_clear_error(&error);
        if (hits)
            g_ptr_array_unref(hits);
        return;
    }
    if (!hits)
        g_task_return_error(task, error);
    else
        g_task_return_pointer(task, hits, (GDestroyNotify)g_ptr_array_unref);
}

void
hearth_store_search_async(HearthStore *store, const char *text, guint limit, const char *mark_open,
                          const char *mark_close, GCancellable *cancellable, GAsyncReadyCallback callback,
                          gpointer user_data)
{
    GTask *task = g_task_new(NULL, cancellable, callback, user_data);
    g_task_set_source_tag(task, hearth_store_search_async);
    SearchJob *j = g_new0(SearchJob, 1);
    j->path = g_strdup(store->path);
    j->text = g_strdup(text);
    j->mark_open = g_strdup(mark_open);
    j->mark_close = g_strdup(mark_close);
    j->limit = limit;
    g_task_set_task_data(task, j, (GDestroyNotify)search_job_free);
    g_task_run_in_thread(task, search_thread);
    g_object_unref(task);
}

GPtrArray *
hearth_store_search_finish(GAsyncResult *result, GError **error)
{
    g_return_val_if_fail(g_task_is_valid(result, NULL), NULL);
    return g_task_propagate_pointer(G_TASK(result), error);
}

/* --- export --------------------------------------------------------------- */

static gboolean
load_for_export(HearthStore *store, gint64 id, HearthStoreConversation **conv, GPtrArray **msgs,
                GError **error)
{
    *conv = hearth_store_conversation_get(store, id, error);
    if (!*conv)
        return FALSE;
    *msgs = hearth_store_message_list(store, id, error);
    if (!*msgs) {
        g_clear_pointer(conv, hearth_store_conversation_free);
        return FALSE;
    }
    return TRUE;
}

static const char *
role_heading(HearthStoreRole role)
{
    switch (role) {
    case HEARTH_STORE_ROLE_SYSTEM:
        return "System";
    case HEARTH_STORE_ROLE_USER:
        return "User";
    case HEARTH_STORE_ROLE_ASSISTANT:
    default:
        return "Assistant";
    }
}

char *
hearth_store_export_markdown(HearthStore *store, gint64 conversation_id, GError **error)
{
    HearthStoreConversation *c;
    GPtrArray *msgs;
    if (!load_for_export(store, conversation_id, &c, &msgs, error))
        return NULL;
    GString *md = g_string_new(NULL);
    g_string_append_printf(md, "# %s\n\n", *c->title ? c->title : "New chat");
    GDateTime *created = g_date_time_new_from_unix_local(c->created / G_USEC_PER_SEC);
    char *date = created ? g_date_time_format(created, "%Y-%m-%d %H:%M") : g_strdup("");
    if (created)
        g_date_time_unref(created);
    if (c->model)
        g_string_append_printf(md, "*%s · %s*\n\n", c->model, date);
    else
        g_string_append_printf(md, "*%s*\n\n", date);
    g_free(date);
    if (c->system_prompt && *c->system_prompt) {
        g_string_append(md, "> **System prompt**\n>\n");
        char **lines = g_strsplit(c->system_prompt, "\n", -1);
        for (char **l = lines; *l; l++)
            g_string_append_printf(md, ">%s%s\n", **l ? " " : "", *l);
        g_strfreev(lines);
        g_string_append_c(md, '\n');
    }
    for (guint i = 0; i < msgs->len; i++) {
        HearthStoreMessage *m = msgs->pdata[i];
        g_string_append_printf(md, "## %s\n\n", role_heading(m->role));
        if (m->content_len) {
            g_string_append_len(md, m->content, (gssize)m->content_len);
            if (m->content[m->content_len - 1] != '\n')
                g_string_append_c(md, '\n');
            g_string_append_c(md, '\n');
        }
        if (m->state == HEARTH_STORE_STATE_INTERRUPTED)
            g_string_append(md, "*(reply interrupted)*\n\n");
        else if (m->state == HEARTH_STORE_STATE_PARTIAL)
            g_string_append(md, "*(reply in progress)*\n\n");
        else if (m->state == HEARTH_STORE_STATE_ERROR)
            g_string_append_printf(md, "*(reply failed: %s)*\n\n", m->error ? m->error : "");
    }
    hearth_store_conversation_free(c);
    g_ptr_array_unref(msgs);
    return g_string_free(md, FALSE);
}

char *
hearth_store_export_json(HearthStore *store, gint64 conversation_id, GError **error)
{
    HearthStoreConversation *c;
    GPtrArray *msgs;
    if (!load_for_export(store, conversation_id, &c, &msgs, error))
        return NULL;
    gboolean has_system = FALSE;
    for (guint i = 0; i < msgs->len; i++)
        if (((HearthStoreMessage *)msgs->pdata[i])->role == HEARTH_STORE_ROLE_SYSTEM)
            has_system = TRUE;

    JsonBuilder *b = json_builder_new();
    json_builder_begin_array(b);
    if (!has_system && c->system_prompt && *c->system_prompt) {
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "role");
        json_builder_add_string_value(b, "system");
        json_builder_set_member_name(b, "content");
        json_builder_add_string_value(b, c->system_prompt);
        json_builder_end_object(b);
    }
    for (guint i = 0; i < msgs->len; i++) {
        HearthStoreMessage *m = msgs->pdata[i];
        if (m->state == HEARTH_STORE_STATE_ERROR && m->content_len == 0)
            continue;
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "role");
        json_builder_add_string_value(b, hearth_store_role_to_string(m->role));
        json_builder_set_member_name(b, "content");
        json_builder_add_string_value(b, m->content);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);

    JsonNode *root = json_builder_get_root(b);
    /* hr_json_to_text, not json-glib's generator, which writes U+001F raw: a
     * message holding one exported as text no JSON reader takes */
    char *out = hr_json_to_text(root, true, NULL);
    json_node_unref(root);
    g_object_unref(b);
    hearth_store_conversation_free(c);
    g_ptr_array_unref(msgs);
    return out;
}

/* --- titles --------------------------------------------------------------- */

/* the number of backticks a line opens with, when they make a fence (three or more) */
static size_t
fence_run(const char *line)
{
    while (*line == ' ')
        line++;
    size_t n = strspn(line, "`");
    return n >= 3 ? n : 0;
}

/* The first non-blank line outside code fences that is not a file's "name:" line before a fence; NULL when
 * there is none. */
static char *
title_line(const char *text)
{
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    size_t open = 0; /* the open fence's backticks; 0 outside */
    for (guint i = 0; lines[i]; i++) {
        size_t run = fence_run(lines[i]);
        if (open) {
            if (run >= open && lines[i][strspn(lines[i], " `")] == '\0')
                open = 0;
            continue;
        }
        if (run) {
            open = run;
            continue;
        }
        g_autofree char *trimmed = g_strstrip(g_strdup(lines[i]));
        if (!*trimmed)
            continue;
        if (g_str_has_suffix(trimmed, ":") && lines[i + 1] && fence_run(lines[i + 1]))
            continue;
        return g_steal_pointer(&trimmed);
    }
    return NULL;
}

char *
hearth_store_title_from_text(const char *text)
{
    if (!text || !g_utf8_validate(text, -1, NULL))
        return g_strdup("");
    g_autofree char *outside = title_line(text);
    if (outside)
        text = outside;
    /* First line with something on it, whitespace and controls collapsed. */
    GString *line = g_string_new(NULL);
    for (const char *p = text; *p; p = g_utf8_next_char(p)) {
        gunichar ch = g_utf8_get_char(p);
        if (ch == '\n') {
            if (line->len)
                break;
            continue;
        }
        if (g_unichar_isspace(ch) || g_unichar_iscntrl(ch)) {
            if (line->len && line->str[line->len - 1] != ' ')
                g_string_append_c(line, ' ');
            continue;
        }
        g_string_append_unichar(line, ch);
    }
    while (line->len && line->str[line->len - 1] == ' ')
        g_string_truncate(line, line->len - 1);

    glong chars = g_utf8_strlen(line->str, (gssize)line->len);
    if (chars <= TITLE_MAX_CHARS)
        return g_string_free(line, FALSE);

    /* Keep TITLE_MAX_CHARS - 1 characters and add "…"; cut at the last space
     * if that keeps at least 60% of them. */
    const char *cut = g_utf8_offset_to_pointer(line->str, TITLE_MAX_CHARS - 1);
    const char *space = NULL;
    for (const char *p = line->str; p < cut; p = g_utf8_next_char(p))
        if (*p == ' ')
            space = p;
    if (space && g_utf8_pointer_to_offset(line->str, space) >= (TITLE_MAX_CHARS * 3) / 5)
        cut = space;
    g_string_truncate(line, (gsize)(cut - line->str));
    while (line->len && line->str[line->len - 1] == ' ')
        g_string_truncate(line, line->len - 1);
    g_string_append(line, "…");
    return g_string_free(line, FALSE);
}
