/* The conversation store: conversations, messages, streaming, FTS5 search,
 * export, migrations from every earlier schema version, refusal of newer and
 * corrupt files (left byte-for-byte untouched), a full disk, recovery after SIGKILL in the
 * middle of a streamed reply, and a 10,000-message conversation. Each case
 * runs in its own temporary directory. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <sqlite3.h>

#include "hearth-store.h"
#include "hr-test.h"

/* --- helpers -------------------------------------------------------------- */

static void
rm_rf(const char *path)
{
    if (g_file_test(path, G_FILE_TEST_IS_DIR) && !g_file_test(path, G_FILE_TEST_IS_SYMLINK)) {
        GDir *d = g_dir_open(path, 0, NULL);
        const char *name;
        while (d && (name = g_dir_read_name(d))) {
            char *child = g_build_filename(path, name, NULL);
            rm_rf(child);
            g_free(child);
        }
        if (d)
            g_dir_close(d);
        g_rmdir(path);
    } else {
        g_unlink(path);
    }
}

static char *
make_tmp(void)
{
    GError *err = NULL;
    char *dir = g_dir_make_tmp("hearth-store-XXXXXX", &err);
    if (!dir) {
        fprintf(stderr, "cannot make a temp dir: %s\n", err->message);
        exit(1);
    }
    return dir;
}

static HearthStore *
open_ok(const char *path)
{
    GError *err = NULL;
    HearthStore *s = hearth_store_open(path, &err);
    HR_CHECK(s != NULL, "open %s: %s", path, err ? err->message : "?");
    if (!s) {
        g_clear_error(&err);
        exit(hr_test_result() ? hr_test_result() : 1);
    }
    return s;
}

static sqlite3 *
raw_open(const char *path)
{
    sqlite3 *db = NULL;
    if (sqlite3_open(path, &db) != SQLITE_OK) {
        fprintf(stderr, "raw open %s: %s\n", path, sqlite3_errmsg(db));
        exit(1);
    }
    return db;
}

static void
raw_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    HR_CHECK(rc == SQLITE_OK, "exec %.60s…: %s", sql, msg ? msg : "?");
    sqlite3_free(msg);
}

static gint64
raw_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    gint64 v = G_MININT64;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    else
        HR_CHECK(FALSE, "query %s: %s", sql, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return v;
}

static char *
raw_text(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    char *v = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = g_strdup((const char *)sqlite3_column_text(st, 0));
    else
        HR_CHECK(FALSE, "query %s: %s", sql, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return v;
}

static gint64
file_int(const char *path, const char *sql)
{
    sqlite3 *db = raw_open(path);
    gint64 v = raw_int(db, sql);
    sqlite3_close(db);
    return v;
}

/* Whole-database and FTS index consistency. */
static void
check_integrity(const char *path)
{
    sqlite3 *db = raw_open(path);
    char *res = raw_text(db, "PRAGMA integrity_check");
    HR_CHECK(res && strcmp(res, "ok") == 0, "integrity_check: %s", res ? res : "NULL");
    g_free(res);
    char *msg = NULL;
    int rc = sqlite3_exec(db, "INSERT INTO messages_fts(messages_fts) VALUES ('integrity-check')",
                          NULL, NULL, &msg);
    HR_CHECK(rc == SQLITE_OK, "FTS integrity-check: %s", msg ? msg : "?");
    sqlite3_free(msg);
    sqlite3_close(db);
}

static gint64
append(HearthStore *s, gint64 conv, HearthStoreRole role, const char *text)
{
    GError *err = NULL;
    gint64 id = hearth_store_message_append(s, conv, role, HEARTH_STORE_STATE_COMPLETE, text, -1,
                                            -1, &err);
    HR_CHECK(id > 0, "append: %s", err ? err->message : "?");
    g_clear_error(&err);
    return id;
}

static gint64
create(HearthStore *s, const char *model)
{
    GError *err = NULL;
    gint64 id = hearth_store_conversation_create(s, model, &err);
    HR_CHECK(id > 0, "create: %s", err ? err->message : "?");
    g_clear_error(&err);
    return id;
}

static GPtrArray *
list_ok(HearthStore *s)
{
    GError *err = NULL;
    GPtrArray *l = hearth_store_conversation_list(s, &err);
    HR_CHECK(l != NULL, "list: %s", err ? err->message : "?");
    g_clear_error(&err);
    return l ? l : g_ptr_array_new();
}

static gint64
list_id(GPtrArray *l, guint i)
{
    return i < l->len ? ((HearthStoreConversation *)l->pdata[i])->id : -1;
}

static HearthStoreConversation *
get_ok(HearthStore *s, gint64 id)
{
    GError *err = NULL;
    HearthStoreConversation *c = hearth_store_conversation_get(s, id, &err);
    HR_CHECK(c != NULL, "get %" G_GINT64_FORMAT ": %s", id, err ? err->message : "?");
    g_clear_error(&err);
    if (!c) {
        c = g_new0(HearthStoreConversation, 1);
        c->title = g_strdup("");
    }
    return c;
}

static GPtrArray *
messages_ok(HearthStore *s, gint64 conv)
{
    GError *err = NULL;
    GPtrArray *l = hearth_store_message_list(s, conv, &err);
    HR_CHECK(l != NULL, "message list: %s", err ? err->message : "?");
    g_clear_error(&err);
    return l ? l : g_ptr_array_new();
}

static HearthStoreMessage *
msg_at(GPtrArray *l, guint i)
{
    return i < l->len ? l->pdata[i] : NULL;
}

static GPtrArray *
search_ok(HearthStore *s, const char *text)
{
    GError *err = NULL;
    GPtrArray *hits = hearth_store_search(s, text, 0, "[", "]", &err);
    HR_CHECK(hits != NULL, "search «%s»: %s", text, err ? err->message : "?");
    g_clear_error(&err);
    return hits ? hits : g_ptr_array_new();
}

/* The conversation ids a search returns, as "1,2,3". */
static char *
search_ids(HearthStore *s, const char *text)
{
    GPtrArray *hits = search_ok(s, text);
    GString *out = g_string_new(NULL);
    for (guint i = 0; i < hits->len; i++)
        g_string_append_printf(out, "%s%" G_GINT64_FORMAT, i ? "," : "",
                               ((HearthStoreSearchHit *)hits->pdata[i])->conversation_id);
    g_ptr_array_unref(hits);
    return g_string_free(out, FALSE);
}

static void
check_search(HearthStore *s, const char *text, const char *expect)
{
    char *got = search_ids(s, text);
    HR_CHECK(strcmp(got, expect) == 0, "search «%s»: got [%s], expected [%s]", text, got, expect);
    g_free(got);
}

static char *
ids(gint64 a, gint64 b, gint64 c)
{
    GString *s = g_string_new(NULL);
    gint64 v[3] = { a, b, c };
    for (int i = 0; i < 3 && v[i] > 0; i++)
        g_string_append_printf(s, "%s%" G_GINT64_FORMAT, i ? "," : "", v[i]);
    return g_string_free(s, FALSE);
}

static GBytes *
read_bytes(const char *path)
{
    char *data = NULL;
    gsize len = 0;
    if (!g_file_get_contents(path, &data, &len, NULL))
        return NULL;
    return g_bytes_new_take(data, len);
}

static gboolean
same_bytes(GBytes *a, const char *path)
{
    GBytes *b = read_bytes(path);
    gboolean same = a && b && g_bytes_equal(a, b);
    if (b)
        g_bytes_unref(b);
    return same;
}

/* --- conversations -------------------------------------------------------- */

static void
test_titles(void)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        { "Hello world", "Hello world" },
        { "  \n\n   Hi there  \nsecond line", "Hi there" },
        { "tabs\tand   spaces", "tabs and spaces" },
        { "", "" },
        { " \n \t ", "" },
        { "How do I write a function in C that reverses a linked list in place without recursion?",
          "How do I write a function in C that reverses a…" },
        { "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa…" },
        /* an attached file, then the question: the question */
        { "reverse.py:\n```python\ndef reverse(s):\n    return s[::-1]\n```\nWhat does this do?", "What does this do?" },
        /* a fence with a longer one inside it, a question after */
        { "notes.md:\n````markdown\n```c\nint x;\n```\nMore notes\n````\n\n  Summarize it.  ", "Summarize it." },
        /* a question before the code */
        { "Why does this fail?\n```\nsegfault\n```", "Why does this fail?" },
        /* only a file: its first line, as before */
        { "reverse.py:\n```python\ndef reverse(s):\n```\n", "reverse.py:" },
        /* a colon line not before a fence is the title */
        { "Question:\nwhat is 2+2?", "Question:" },
        { "日本語の文章はとても長いのでタイトルに収まらないことがあります。それを確認するためのテストです。以上。",
          "日本語の文章はとても長いのでタイトルに収まらないことがあります。それを確認するためのテストです。以…" },
    };
    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        char *t = hearth_store_title_from_text(cases[i].in);
        HR_CHECK(strcmp(t, cases[i].out) == 0, "title «%s» -> «%s», expected «%s»", cases[i].in, t,
                 cases[i].out);
        HR_CHECK(g_utf8_strlen(t, -1) <= 50, "title too long: %s", t);
        g_free(t);
    }
}

static void
test_conversations(void)
{
    char *dir = make_tmp();
    char *path = g_build_filename(dir, "sub", "hearth.db", NULL); /* folder created on open */
    GError *err = NULL;
    HearthStore *s = open_ok(path);
    HR_CHECK(strcmp(hearth_store_get_path(s), path) == 0, "path");
    HR_CHECK(hearth_store_get_recovered_count(s) == 0, "nothing to recover");

    gint64 a = create(s, "stories260K"), b = create(s, NULL), c = create(s, NULL);
    GPtrArray *l = list_ok(s);
    HR_CHECK(l->len == 3 && list_id(l, 0) == c && list_id(l, 1) == b && list_id(l, 2) == a,
             "newest first after create");
    HearthStoreConversation *ca = l->len == 3 ? l->pdata[2] : NULL;
    HR_CHECK(ca && strcmp(ca->title, "") == 0 && ca->title_is_auto, "fresh title is empty, auto");
    HR_CHECK(ca && ca->model && strcmp(ca->model, "stories260K") == 0, "model");
    HR_CHECK(ca && ca->temperature == HEARTH_STORE_UNSET && ca->top_p == HEARTH_STORE_UNSET &&
                 ca->max_new_tokens == HEARTH_STORE_UNSET && !ca->system_prompt,
             "default settings unset");
    g_ptr_array_unref(l);

    /* A message moves its conversation to the top and titles it. */
    append(s, a, HEARTH_STORE_ROLE_USER, "\n  Tell me a story\nabout a dragon");
    append(s, a, HEARTH_STORE_ROLE_ASSISTANT, "Once upon a time…");
    append(s, a, HEARTH_STORE_ROLE_USER, "Another one");
    l = list_ok(s);
    HR_CHECK(l->len == 3 && list_id(l, 0) == a && list_id(l, 1) == c && list_id(l, 2) == b,
             "updated conversation first");
    g_ptr_array_unref(l);
    HearthStoreConversation *conv = get_ok(s, a);
    HR_CHECK(strcmp(conv->title, "Tell me a story") == 0 && conv->title_is_auto,
             "auto title from the first user message: «%s»", conv->title);
    HR_CHECK(conv->updated > conv->created, "updated bumped");
    hearth_store_conversation_free(conv);

    /* Renamed: the title sticks. */
    HR_CHECK(hearth_store_conversation_rename(s, b, "  My chat  ", &err), "rename: %s",
             err ? err->message : "");
    append(s, b, HEARTH_STORE_ROLE_USER, "first words");
    conv = get_ok(s, b);
    HR_CHECK(strcmp(conv->title, "My chat") == 0 && !conv->title_is_auto, "renamed title kept: %s",
             conv->title);
    hearth_store_conversation_free(conv);
    /* Renamed to blank: back to automatic. */
    HR_CHECK(hearth_store_conversation_rename(s, b, " ", &err), "rename blank");
    conv = get_ok(s, b);
    HR_CHECK(strcmp(conv->title, "first words") == 0 && conv->title_is_auto,
             "blank rename -> auto: %s", conv->title);
    hearth_store_conversation_free(conv);

    /* Settings and model persist across a reopen. */
    HR_CHECK(hearth_store_conversation_set_settings(s, c, "You are terse.", 0.0, 0.9, 256, &err),
             "settings: %s", err ? err->message : "");
    HR_CHECK(hearth_store_conversation_set_model(s, c, "qwen2.5-0.5b", &err), "model");
    HR_CHECK(hearth_store_conversation_set_settings(s, b, NULL, 0.7, HEARTH_STORE_UNSET,
                                                    HEARTH_STORE_UNSET, &err),
             "settings b");
    hearth_store_close(s);
    s = open_ok(path);
    conv = get_ok(s, c);
    HR_CHECK(conv->system_prompt && strcmp(conv->system_prompt, "You are terse.") == 0,
             "system prompt persisted");
    HR_CHECK(conv->temperature == 0.0 && conv->top_p == 0.9 && conv->max_new_tokens == 256,
             "sampling persisted: %g %g %d", conv->temperature, conv->top_p, conv->max_new_tokens);
    HR_CHECK(conv->model && strcmp(conv->model, "qwen2.5-0.5b") == 0, "model persisted");
    hearth_store_conversation_free(conv);
    conv = get_ok(s, b);
    HR_CHECK(!conv->system_prompt && conv->temperature == 0.7 && conv->top_p == HEARTH_STORE_UNSET &&
                 conv->max_new_tokens == HEARTH_STORE_UNSET,
             "partial settings");
    hearth_store_conversation_free(conv);

    /* Settings do not reorder the list. */
    l = list_ok(s);
    HR_CHECK(list_id(l, 0) == b && list_id(l, 1) == a && list_id(l, 2) == c, "order after settings");
    g_ptr_array_unref(l);

    /* Regenerate / edit-and-resend: delete after a position. */
    GPtrArray *m = messages_ok(s, a);
    HR_CHECK(m->len == 3, "3 messages");
    for (guint i = 0; i < m->len; i++)
        HR_CHECK(msg_at(m, i)->position == (int)i, "positions 0..n");
    HR_CHECK(msg_at(m, 0) && msg_at(m, 0)->role == HEARTH_STORE_ROLE_USER &&
                 msg_at(m, 1)->role == HEARTH_STORE_ROLE_ASSISTANT,
             "roles");
    g_ptr_array_unref(m);
    HR_CHECK(hearth_store_message_delete_after(s, a, 0, &err) == 2, "delete after 0");
    gint64 again = append(s, a, HEARTH_STORE_ROLE_ASSISTANT, "A different story");
    m = messages_ok(s, a);
    HR_CHECK(m->len == 2 && msg_at(m, 1)->id == again && msg_at(m, 1)->position == 1,
             "appended at position 1");
    g_ptr_array_unref(m);
    /* Edit the first user message and resend: the auto title follows. */
    HR_CHECK(hearth_store_message_delete_after(s, a, -1, &err) == 2, "delete all");
    append(s, a, HEARTH_STORE_ROLE_USER, "A poem please");
    conv = get_ok(s, a);
    HR_CHECK(strcmp(conv->title, "A poem please") == 0, "title follows the edited first message: %s",
             conv->title);
    hearth_store_conversation_free(conv);

    /* Invalid input and missing rows. */
    static const char with_nul[] = "abc\0def";
    HR_CHECK(hearth_store_message_append(s, a, HEARTH_STORE_ROLE_USER, HEARTH_STORE_STATE_COMPLETE,
                                         with_nul, sizeof with_nul - 1, -1, &err) == 0 &&
                 g_error_matches(err, HEARTH_STORE_ERROR, HEARTH_STORE_ERROR_INVALID),
             "embedded NUL rejected");
    g_clear_error(&err);
    HR_CHECK(hearth_store_message_append(s, a, HEARTH_STORE_ROLE_USER, HEARTH_STORE_STATE_COMPLETE,
                                         "bad \xff utf8", -1, -1, &err) == 0 &&
                 g_error_matches(err, HEARTH_STORE_ERROR, HEARTH_STORE_ERROR_INVALID),
             "invalid UTF-8 rejected");
    g_clear_error(&err);
    HR_CHECK(hearth_store_message_append(s, 9999, HEARTH_STORE_ROLE_USER,
                                         HEARTH_STORE_STATE_COMPLETE, "x", -1, -1, &err) == 0 &&
                 g_error_matches(err, HEARTH_STORE_ERROR, HEARTH_STORE_ERROR_NOT_FOUND),
             "append to a missing conversation");
    g_clear_error(&err);
    HR_CHECK(!hearth_store_conversation_rename(s, 9999, "x", &err) &&
                 g_error_matches(err, HEARTH_STORE_ERROR, HEARTH_STORE_ERROR_NOT_FOUND),
             "rename missing");
    g_clear_error(&err);
    HR_CHECK(!hearth_store_conversation_get(s, 9999, &err) &&
                 g_error_matches(err, HEARTH_STORE_ERROR, HEARTH_STORE_ERROR_NOT_FOUND),
             "get missing");
    g_clear_error(&err);
    HR_CHECK(!hearth_store_message_list(s, 9999, &err) &&
                 g_error_matches(err, HEARTH_STORE_ERROR, HEARTH_STORE_ERROR_NOT_FOUND),
             "list missing");
    g_clear_error(&err);
    HR_CHECK(!hearth_store_message_update_content(s, 9999, "x", -1, -1, &err) &&
                 g_error_matches(err, HEARTH_STORE_ERROR, HEARTH_STORE_ERROR_NOT_FOUND),
             "update missing");
    g_clear_error(&err);

    /* Delete with undo: trash hides, restore brings back. */
    HR_CHECK(hearth_store_conversation_trash(s, a, &err), "trash");
    l = list_ok(s);
    HR_CHECK(l->len == 2 && list_id(l, 0) != a && list_id(l, 1) != a, "trashed hidden");
    g_ptr_array_unref(l);
    check_search(s, "poem", "");
    HR_CHECK(hearth_store_conversation_restore(s, a, &err), "restore");
    l = list_ok(s);
    HR_CHECK(l->len == 3, "restored");
    g_ptr_array_unref(l);
    m = messages_ok(s, a);
    HR_CHECK(m->len == 1, "messages survive the undo");
    g_ptr_array_unref(m);
    char *expect = ids(a, 0, 0);
    check_search(s, "poem", expect);
    g_free(expect);

    /* Trash, then the toast expires: purge. Trash + reopen within a minute
     * keeps it; an old trash is purged on open. */
    HR_CHECK(hearth_store_conversation_trash(s, a, &err), "trash again");
    HR_CHECK(hearth_store_purge_trash(s, 0, &err) == 1, "purge");
    HR_CHECK(!hearth_store_conversation_get(s, a, &err), "purged");
    g_clear_error(&err);
    HR_CHECK(hearth_store_conversation_trash(s, c, &err), "trash c");
    hearth_store_close(s);
    s = open_ok(path);
    conv = get_ok(s, c);
    HR_CHECK(conv->deleted_at > 0, "recent trash kept over a reopen");
    hearth_store_conversation_free(conv);
    hearth_store_close(s);
    sqlite3 *db = raw_open(path);
    raw_exec(db, "UPDATE conversations SET deleted_at = deleted_at - 120000000");
    sqlite3_close(db);
    s = open_ok(path);
    HR_CHECK(!hearth_store_conversation_get(s, c, &err), "old trash purged on open");
    g_clear_error(&err);

    /* Delete cascades to messages (and the FTS index). */
    gint64 d = create(s, NULL);
    append(s, d, HEARTH_STORE_ROLE_USER, "cascade me");
    append(s, d, HEARTH_STORE_ROLE_ASSISTANT, "cascaded");
    HR_CHECK(hearth_store_conversation_delete(s, d, &err), "delete");
    HR_CHECK(!hearth_store_conversation_delete(s, d, &err) &&
                 g_error_matches(err, HEARTH_STORE_ERROR, HEARTH_STORE_ERROR_NOT_FOUND),
             "delete twice");
    g_clear_error(&err);
    check_search(s, "cascade", "");
    hearth_store_close(s);
    char *sql = g_strdup_printf("SELECT count(*) FROM messages WHERE conversation_id = %" G_GINT64_FORMAT, d);
    HR_CHECK(file_int(path, sql) == 0, "messages cascaded");
    g_free(sql);
    HR_CHECK(file_int(path, "PRAGMA user_version") == HEARTH_STORE_SCHEMA_VERSION, "version");
    HR_CHECK(file_int(path, "SELECT count(*) FROM conversations WHERE id = 1") == 0, "a gone");
    check_integrity(path);
    char *bak = g_strdup_printf("%s.bak-v0", path);
    HR_CHECK(!g_file_test(bak, G_FILE_TEST_EXISTS), "no backup for a fresh file");
    g_free(bak);

    g_free(path);
    rm_rf(dir);
    g_free(dir);
}

/* --- streaming ------------------------------------------------------------ */

static void
test_streaming(void)
{
    char *dir = make_tmp();
    char *path = g_build_filename(dir, "hearth.db", NULL);
    GError *err = NULL;
    HearthStore *s = open_ok(path);
    gint64 conv = create(s, NULL), other = create(s, NULL);
    append(s, conv, HEARTH_STORE_ROLE_USER, "Count to five");
    gint64 id = hearth_store_message_append(s, conv, HEARTH_STORE_ROLE_ASSISTANT,
                                            HEARTH_STORE_STATE_PARTIAL, "", -1, -1, &err);
    HR_CHECK(id > 0, "partial append: %s", err ? err->message : "");
    append(s, other, HEARTH_STORE_ROLE_USER, "meanwhile");

    GString *text = g_string_new(NULL);
    for (int i = 1; i <= 5; i++) {
        g_string_append_printf(text, "%d ", i);
        HR_CHECK(hearth_store_message_update_content(s, id, text->str, -1, i, &err),
                 "update: %s", err ? err->message : "");
        HearthStoreMessage *m = hearth_store_message_get(s, id, &err);
        HR_CHECK(m && m->state == HEARTH_STORE_STATE_PARTIAL && strcmp(m->content, text->str) == 0 &&
                     m->token_count == i,
                 "partial content after update %d", i);
        hearth_store_message_free(m);
    }
    GPtrArray *l = list_ok(s);
    HR_CHECK(list_id(l, 0) == conv, "streaming bumps the conversation");
    g_ptr_array_unref(l);

    HearthStoreGenStats stats = { .prompt_tokens = 12, .gen_tokens = 6, .tokens_per_s = 42.5,
                                  .time_to_first_token_ms = 80.25 };
    HR_CHECK(hearth_store_message_finish(s, id, HEARTH_STORE_STATE_COMPLETE, "1 2 3 4 5.", -1,
                                         &stats, &err),
             "finish: %s", err ? err->message : "");
    hearth_store_close(s);
    s = open_ok(path);
    HR_CHECK(hearth_store_get_recovered_count(s) == 0, "complete replies are not recovered");
    HearthStoreMessage *m = hearth_store_message_get(s, id, &err);
    HR_CHECK(m && m->state == HEARTH_STORE_STATE_COMPLETE && strcmp(m->content, "1 2 3 4 5.") == 0,
             "finished");
    HR_CHECK(m && m->stats.prompt_tokens == 12 && m->stats.gen_tokens == 6 &&
                 m->stats.tokens_per_s == 42.5 && m->stats.time_to_first_token_ms == 80.25 &&
                 m->token_count == 6,
             "stats stored");
    HR_CHECK(m && m->role == HEARTH_STORE_ROLE_ASSISTANT && m->conversation_id == conv &&
                 m->position == 1 && m->created > 0 && !m->error,
             "fields");
    hearth_store_message_free(m);

    /* Finish keeping the streamed content, stopped by the user. */
    gint64 id2 = hearth_store_message_append(s, conv, HEARTH_STORE_ROLE_ASSISTANT,
                                             HEARTH_STORE_STATE_PARTIAL, "so far", -1, -1, &err);
    HR_CHECK(hearth_store_message_finish(s, id2, HEARTH_STORE_STATE_INTERRUPTED, NULL, -1, NULL,
                                         &err),
             "finish interrupted");
    m = hearth_store_message_get(s, id2, &err);
    HR_CHECK(m && m->state == HEARTH_STORE_STATE_INTERRUPTED && strcmp(m->content, "so far") == 0 &&
                 m->stats.gen_tokens == -1 && m->stats.tokens_per_s == -1,
             "interrupted keeps content, unknown stats");
    hearth_store_message_free(m);
    HR_CHECK(!hearth_store_message_finish(s, id2, HEARTH_STORE_STATE_ERROR, NULL, -1, NULL, &err) &&
                 g_error_matches(err, HEARTH_STORE_ERROR, HEARTH_STORE_ERROR_INVALID),
             "finish with ERROR refused");
    g_clear_error(&err);

    /* An error. */
    gint64 id3 = hearth_store_message_append(s, conv, HEARTH_STORE_ROLE_ASSISTANT,
                                             HEARTH_STORE_STATE_PARTIAL, "half", -1, -1, &err);
    HR_CHECK(hearth_store_message_set_error(s, id3, "Out of memory", &err), "set error");
    m = hearth_store_message_get(s, id3, &err);
    HR_CHECK(m && m->state == HEARTH_STORE_STATE_ERROR && m->error &&
                 strcmp(m->error, "Out of memory") == 0 && strcmp(m->content, "half") == 0,
             "error state");
    hearth_store_message_free(m);

    /* A 100 KB message with every kind of UTF-8, streamed in growing pieces. */
    GString *big = g_string_new(NULL);
    while (big->len < 100 * 1024)
        g_string_append(big, "Ünïcödé — 日本語 — 🔥 — \"quotes\" 'apostrophes' \\ backslash\n");
    gint64 id4 = hearth_store_message_append(s, conv, HEARTH_STORE_ROLE_ASSISTANT,
                                             HEARTH_STORE_STATE_PARTIAL, big->str, 1000, -1, &err);
    HR_CHECK(id4 > 0, "append prefix");
    HR_CHECK(hearth_store_message_update_content(s, id4, big->str, (gssize)big->len, -1, &err),
             "update 100 KB");
    HR_CHECK(hearth_store_message_finish(s, id4, HEARTH_STORE_STATE_COMPLETE, NULL, -1, NULL, &err),
             "finish 100 KB");
    m = hearth_store_message_get(s, id4, &err);
    HR_CHECK(m && m->content_len == big->len && memcmp(m->content, big->str, big->len) == 0,
             "100 KB round trip");
    hearth_store_message_free(m);
    g_string_free(big, TRUE);
    g_string_free(text, TRUE);
    hearth_store_close(s);
    check_integrity(path);
    g_free(path);
    rm_rf(dir);
    g_free(dir);
}

/* --- versions ------------------------------------------------------------- */

static void
test_versions(void)
{
    char *dir = make_tmp();
    char *path = g_build_filename(dir, "hearth.db", NULL);
    GError *err = NULL;
    HearthStore *s = open_ok(path);
    gint64 conv = create(s, NULL);
    append(s, conv, HEARTH_STORE_ROLE_USER, "Tell a story");
    gint64 id = hearth_store_message_append(s, conv, HEARTH_STORE_ROLE_ASSISTANT,
                                            HEARTH_STORE_STATE_PARTIAL, "", -1, -1, &err);
    HearthStoreGenStats stats = { .prompt_tokens = 5, .gen_tokens = 3, .tokens_per_s = 10.0,
                                  .time_to_first_token_ms = 1.0 };
    HR_CHECK(hearth_store_message_finish(s, id, HEARTH_STORE_STATE_COMPLETE, "First story.", -1, &stats, &err),
             "finish v1");
    HearthStoreMessage *m = hearth_store_message_get(s, id, &err);
    HR_CHECK(m && m->version == 1 && m->n_versions == 1, "one version at first");
    hearth_store_message_free(m);

    /* Regenerate: v1 put aside, v2 streamed into the same row. */
    HR_CHECK(hearth_store_message_new_version(s, id, &err) == 2, "new version is 2: %s", err ? err->message : "");
    m = hearth_store_message_get(s, id, &err);
    HR_CHECK(m && m->version == 2 && m->n_versions == 2 && m->state == HEARTH_STORE_STATE_PARTIAL &&
                 !*m->content && m->stats.gen_tokens == -1,
             "the new version is empty and partial");
    hearth_store_message_free(m);
    HR_CHECK(hearth_store_message_finish(s, id, HEARTH_STORE_STATE_COMPLETE, "Second story.", -1, NULL, &err),
             "finish v2");

    /* Back to v1: its text and stats return; the list and search see it. */
    HR_CHECK(hearth_store_message_show_version(s, id, 1, &err), "show v1: %s", err ? err->message : "");
    GPtrArray *msgs = hearth_store_message_list(s, conv, &err);
    HearthStoreMessage *shown = msgs && msgs->len == 2 ? g_ptr_array_index(msgs, 1) : NULL;
    HR_CHECK(shown && shown->id == id && shown->version == 1 && shown->n_versions == 2 &&
                 strcmp(shown->content, "First story.") == 0 && shown->stats.gen_tokens == 3,
             "version 1 shown with its stats");
    if (msgs)
        g_ptr_array_unref(msgs);
    GPtrArray *hits = hearth_store_search(s, "first", 0, "", "", &err);
    HR_CHECK(hits && hits->len == 1, "the shown version is searchable");
    if (hits)
        g_ptr_array_unref(hits);
    hits = hearth_store_search(s, "second", 0, "", "", &err);
    HR_CHECK(hits && hits->len == 0, "a version put aside is not in the search");
    if (hits)
        g_ptr_array_unref(hits);
    HR_CHECK(!hearth_store_message_show_version(s, id, 7, &err) &&
                 g_error_matches(err, HEARTH_STORE_ERROR, HEARTH_STORE_ERROR_NOT_FOUND),
             "no version 7");
    g_clear_error(&err);
    HR_CHECK(hearth_store_message_show_version(s, id, 1, &err), "showing the shown version is a no-op");

    /* A third from v1: numbered after all; a failed empty one is replaced, not kept. */
    HR_CHECK(hearth_store_message_new_version(s, id, &err) == 3, "third version");
    HR_CHECK(hearth_store_message_set_error(s, id, "Out of memory", &err), "v3 fails");
    HR_CHECK(hearth_store_message_new_version(s, id, &err) == 3, "an empty failure is replaced");
    HR_CHECK(hearth_store_message_finish(s, id, HEARTH_STORE_STATE_COMPLETE, "Third story.", -1, NULL, &err),
             "finish v3");
    hearth_store_close(s);

    /* Kept across a restart. */
    s = open_ok(path);
    m = hearth_store_message_get(s, id, &err);
    HR_CHECK(m && m->version == 3 && m->n_versions == 3 && strcmp(m->content, "Third story.") == 0,
             "three versions after a restart");
    hearth_store_message_free(m);
    HR_CHECK(hearth_store_message_show_version(s, id, 2, &err), "show v2");
    m = hearth_store_message_get(s, id, &err);
    HR_CHECK(m && m->version == 2 && strcmp(m->content, "Second story.") == 0, "version 2");
    hearth_store_message_free(m);

    /* Deleting the message (edit and resend) deletes its versions. */
    HR_CHECK(hearth_store_message_delete_after(s, conv, 0, &err) == 1, "delete the reply");
    hearth_store_close(s);
    HR_CHECK(file_int(path, "SELECT count(*) FROM message_versions") == 0, "versions deleted with the message");
    check_integrity(path);
    g_free(path);
    rm_rf(dir);
    g_free(dir);
}

/* --- search --------------------------------------------------------------- */

typedef struct {
    gboolean done;
    GPtrArray *hits;
    GError *error;
} AsyncSearch;

static void
async_done(GObject *source, GAsyncResult *res, gpointer data)
{
    AsyncSearch *as = data;
    as->hits = hearth_store_search_finish(res, &as->error);
    as->done = TRUE;
}

static char *
hit_ids(GPtrArray *hits)
{
    GString *out = g_string_new(NULL);
    for (guint i = 0; hits && i < hits->len; i++)
        g_string_append_printf(out, "%s%" G_GINT64_FORMAT, i ? "," : "",
                               ((HearthStoreSearchHit *)hits->pdata[i])->conversation_id);
    return g_string_free(out, FALSE);
}

static void
test_search(void)
{
    char *dir = make_tmp();
    char *path = g_build_filename(dir, "hearth.db", NULL);
    GError *err = NULL;
    HearthStore *s = open_ok(path);
    gint64 c1 = create(s, NULL), c2 = create(s, NULL), c3 = create(s, NULL), c4 = create(s, NULL),
           c5 = create(s, NULL), c6 = create(s, NULL);
    append(s, c1, HEARTH_STORE_ROLE_USER, "The quick brown fox jumps over the lazy dog");
    append(s, c2, HEARTH_STORE_ROLE_ASSISTANT, "A Café au lait, s'il vous plaît.");
    append(s, c3, HEARTH_STORE_ROLE_USER, "ПРИВЕТ мир");
    append(s, c4, HEARTH_STORE_ROLE_USER, "日本語のテキスト");
    append(s, c5, HEARTH_STORE_ROLE_USER, "say \"hello\" AND goodbye OR NOT near(x y) col:val");
    append(s, c6, HEARTH_STORE_ROLE_USER, "C++ templates (advanced) shared");
    append(s, c1, HEARTH_STORE_ROLE_ASSISTANT, "shared words here");

    char *e;
    check_search(s, "quick", e = ids(c1, 0, 0)), g_free(e);
    check_search(s, "QUICK   fox", e = ids(c1, 0, 0)), g_free(e);
    check_search(s, "qui", e = ids(c1, 0, 0)), g_free(e);           /* prefix */
    check_search(s, "fox cat", "");                                 /* all terms */
    check_search(s, "cafe", e = ids(c2, 0, 0)), g_free(e);          /* accents folded */
    check_search(s, "CAFÉ", e = ids(c2, 0, 0)), g_free(e);
    check_search(s, "plait", e = ids(c2, 0, 0)), g_free(e);
    check_search(s, "привет", e = ids(c3, 0, 0)), g_free(e);        /* Cyrillic case folding */
    check_search(s, "МИР", e = ids(c3, 0, 0)), g_free(e);
    check_search(s, "日本語", e = ids(c4, 0, 0)), g_free(e);         /* CJK prefix of a run */
    check_search(s, "\"hello\"", e = ids(c5, 0, 0)), g_free(e);     /* quotes are text */
    check_search(s, "AND", e = ids(c5, 0, 0)), g_free(e);           /* operators are words */
    check_search(s, "NOT", e = ids(c5, 0, 0)), g_free(e);
    check_search(s, "near(x", e = ids(c5, 0, 0)), g_free(e);
    check_search(s, "col:val", e = ids(c5, 0, 0)), g_free(e);
    check_search(s, "C++ templates", e = ids(c6, 0, 0)), g_free(e);
    check_search(s, "c", e = ids(c6, c5, c2)), g_free(e); /* C++, col:val, Café */
    check_search(s, "(advanced)", e = ids(c6, 0, 0)), g_free(e);
    check_search(s, "zebra", "");
    check_search(s, "", "");
    check_search(s, "   \t\n ", "");
    /* Newest first: c1 got the last message. */
    check_search(s, "shared", e = ids(c1, c6, 0)), g_free(e);
    append(s, c6, HEARTH_STORE_ROLE_ASSISTANT, "more");
    check_search(s, "shared", e = ids(c6, c1, 0)), g_free(e);

    /* Nothing the user types is an error. */
    static const char *const nasty[] = {
        "\"", "\"\"", "\"unbalanced", "a\"b", "*", "**", "^", "^start", "-", "-x", "+", "NEAR",
        "NEAR(", "NEAR(a b, 2)", "(", ")", "()", "{a b}", "col:", ":", "AND OR NOT", "OR",
        "'", "';DROP TABLE messages;--", "\\", "%", "_", "🔥", "a*b", "x:y:z", "\"a\" OR \"b\"",
        "\xe2\x80\x8b", "ǅ", "ﬁ",
    };
    for (guint i = 0; i < G_N_ELEMENTS(nasty); i++) {
        GPtrArray *hits = hearth_store_search(s, nasty[i], 0, NULL, NULL, &err);
        HR_CHECK(hits != NULL, "search «%s» failed: %s", nasty[i], err ? err->message : "");
        g_clear_error(&err);
        if (hits)
            g_ptr_array_unref(hits);
    }
    HR_CHECK(!hearth_store_search(s, "bad \xff", 0, NULL, NULL, &err) &&
                 g_error_matches(err, HEARTH_STORE_ERROR, HEARTH_STORE_ERROR_INVALID),
             "invalid UTF-8 query");
    g_clear_error(&err);

    /* Snippet, title and message id. */
    GPtrArray *hits = search_ok(s, "lazy");
    HearthStoreSearchHit *h = hits->len ? hits->pdata[0] : NULL;
    HR_CHECK(h && strstr(h->snippet, "[lazy]"), "snippet marks the match: %s", h ? h->snippet : "");
    HR_CHECK(h && strcmp(h->title, "The quick brown fox jumps over the lazy dog") == 0, "hit title");
    HR_CHECK(h && h->message_id > 0 && h->updated > 0, "hit ids");
    g_ptr_array_unref(hits);
    hits = hearth_store_search(s, "shared", 1, NULL, NULL, &err);
    HR_CHECK(hits && hits->len == 1, "limit");
    if (hits)
        g_ptr_array_unref(hits);

    /* The index follows updates and deletes. */
    gint64 m = append(s, c3, HEARTH_STORE_ROLE_ASSISTANT, "alpha");
    check_search(s, "alpha", e = ids(c3, 0, 0)), g_free(e);
    HR_CHECK(hearth_store_message_update_content(s, m, "omega", -1, -1, &err), "update");
    check_search(s, "alpha", "");
    check_search(s, "omega", e = ids(c3, 0, 0)), g_free(e);
    HR_CHECK(hearth_store_message_delete_after(s, c3, 0, &err) == 1, "delete after");
    check_search(s, "omega", "");

    /* In a worker thread on its own connection: the same hits; cancelled, an
     * error of its own. */
    static const char *const again[] = { "shared", "c", "quick fox", "zebra" };
    for (guint i = 0; i < G_N_ELEMENTS(again); i++) {
        AsyncSearch as = { 0 };
        hearth_store_search_async(s, again[i], 0, "[", "]", NULL, async_done, &as);
        while (!as.done)
            g_main_context_iteration(NULL, TRUE);
        char *sync = search_ids(s, again[i]);
        char *async = hit_ids(as.hits);
        HR_CHECK(as.hits && strcmp(sync, async) == 0, "async «%s»: [%s], sync [%s]", again[i], async, sync);
        g_free(sync);
        g_free(async);
        if (as.hits)
            g_ptr_array_unref(as.hits);
        g_clear_error(&as.error);
    }
    {
        AsyncSearch as = { 0 };
        GCancellable *cancel = g_cancellable_new();
        g_cancellable_cancel(cancel);
        hearth_store_search_async(s, "shared", 0, NULL, NULL, cancel, async_done, &as);
        while (!as.done)
            g_main_context_iteration(NULL, TRUE);
        HR_CHECK(!as.hits && g_error_matches(as.error, G_IO_ERROR, G_IO_ERROR_CANCELLED), "cancelled search");
        g_clear_error(&as.error);
        g_object_unref(cancel);
    }
    /* A pasted page is not a query: only the first 16 terms count (5,000
     * terms once took 23 GB). */
    {
        GString *big = g_string_new("quick");
        for (int i = 0; i < 5000; i++)
            g_string_append_printf(big, " %s", i < 15 ? "fox" : "zebra");
        check_search(s, big->str, e = ids(c1, 0, 0)), g_free(e);
        g_string_free(big, TRUE);
    }
    /* A long looping history: the hit is its latest matching message, and the
     * snippet is there. */
    gint64 loop = create(s, NULL);
    gint64 last = 0;
    for (int i = 0; i < 400; i++)
        last = append(s, loop, i % 2 ? HEARTH_STORE_ROLE_ASSISTANT : HEARTH_STORE_ROLE_USER,
                      "round and round the loop goes round and round again");
    hits = search_ok(s, "round loop");
    h = hits->len ? hits->pdata[0] : NULL;
    HR_CHECK(hits->len == 1 && h->conversation_id == loop && h->message_id == last && strstr(h->snippet, "[round]"),
             "loop: %u hits, message %" G_GINT64_FORMAT " (last %" G_GINT64_FORMAT "), snippet %s", hits->len,
             h ? h->message_id : 0, last, h ? h->snippet : "");
    g_ptr_array_unref(hits);
    hearth_store_close(s);
    check_integrity(path);
    g_free(path);
    rm_rf(dir);
    g_free(dir);
}

/* A read-only conversations folder: the history opens read-only, every
 * write is an error. Root ignores permissions, so this runs as a user. */
static void
test_read_only(void)
{
    if (geteuid() == 0) {
        printf("read-only folder: skipped (root can write anywhere)\n");
        return;
    }
    char *dir = make_tmp();
    char *path = g_build_filename(dir, "hearth.db", NULL);
    GError *err = NULL;
    HearthStore *s = open_ok(path);
    gint64 c = create(s, NULL);
    append(s, c, HEARTH_STORE_ROLE_USER, "kept while read-only");
    hearth_store_close(s);
    g_chmod(path, 0400);
    g_chmod(dir, 0500);
    s = hearth_store_open(path, &err);
    HR_CHECK(s && hearth_store_is_read_only(s), "read-only open: %s", err ? err->message : "");
    g_clear_error(&err);
    if (s) {
        GPtrArray *l = list_ok(s);
        HR_CHECK(l->len == 1, "history readable");
        g_ptr_array_unref(l);
        HR_CHECK(hearth_store_conversation_create(s, NULL, &err) <= 0 && err, "a write fails");
        g_clear_error(&err);
        hearth_store_close(s);
    }
    g_chmod(dir, 0700);
    g_chmod(path, 0600);
    g_free(path);
    rm_rf(dir);
    g_free(dir);
}

/* A full disk (tests/full-disk.c: writes to the database's files fail with ENOSPC while a file exists):
 * every kind of write fails with HEARTH_STORE_ERROR_FULL and changes nothing, reading goes on, and once
 * there is space again the same writes succeed and the file is whole. */
static void
test_full_disk(void)
{
    char *dir = make_tmp();
    char *path = g_build_filename(dir, "hearth.db", NULL);
    char *full = g_build_filename(dir, "the-disk-is-full", NULL);
    g_setenv("HEARTH_FULL_DISK_WHEN", full, TRUE);
    g_setenv("HEARTH_FULL_DISK_PATH", path, TRUE);
    GError *err = NULL;
    HearthStore *s = open_ok(path);
    gint64 c = create(s, NULL);
    append(s, c, HEARTH_STORE_ROLE_USER, "written before the disk filled");
    gint64 reply = hearth_store_message_append(s, c, HEARTH_STORE_ROLE_ASSISTANT, HEARTH_STORE_STATE_PARTIAL, "half",
                                               -1, -1, &err);
    HR_CHECK(reply > 0, "append the reply: %s", err ? err->message : "");
    g_clear_error(&err);

    HR_CHECK(g_file_set_contents(full, "", 0, NULL), "cannot create %s", full);
    HR_CHECK(hearth_store_message_append(s, c, HEARTH_STORE_ROLE_USER, HEARTH_STORE_STATE_COMPLETE, "lost?", -1, -1,
                                         &err) <= 0 &&
                 g_error_matches(err, HEARTH_STORE_ERROR, HEARTH_STORE_ERROR_FULL),
             "append on a full disk: %s", err ? err->message : "succeeded");
    g_clear_error(&err);
    HR_CHECK(!hearth_store_message_update_content(s, reply, "half and more", -1, 3, &err) &&
                 g_error_matches(err, HEARTH_STORE_ERROR, HEARTH_STORE_ERROR_FULL),
             "update on a full disk: %s", err ? err->message : "succeeded");
    g_clear_error(&err);
    HearthStoreGenStats gs = { 5, 7, 100.0, 12.0 };
    HR_CHECK(!hearth_store_message_finish(s, reply, HEARTH_STORE_STATE_COMPLETE, "half and whole", -1, &gs, &err) &&
                 g_error_matches(err, HEARTH_STORE_ERROR, HEARTH_STORE_ERROR_FULL),
             "finish on a full disk: %s", err ? err->message : "succeeded");
    g_clear_error(&err);
    HR_CHECK(hearth_store_conversation_create(s, NULL, &err) <= 0 &&
                 g_error_matches(err, HEARTH_STORE_ERROR, HEARTH_STORE_ERROR_FULL),
             "create on a full disk: %s", err ? err->message : "succeeded");
    g_clear_error(&err);
    GPtrArray *m = messages_ok(s, c);
    HR_CHECK(m->len == 2 && msg_at(m, 1) && strcmp(msg_at(m, 1)->content, "half") == 0 &&
                 msg_at(m, 1)->state == HEARTH_STORE_STATE_PARTIAL,
             "a full disk changed the conversation: %u messages", m->len);
    g_ptr_array_unref(m);

    /* a reply's end is kept while the disk is full, in order, and written once there is space */
    HR_CHECK(!hearth_store_message_end(s, reply, HEARTH_STORE_STATE_COMPLETE, "half and whole", &gs, NULL, &err) &&
                 g_error_matches(err, HEARTH_STORE_ERROR, HEARTH_STORE_ERROR_FULL) &&
                 hearth_store_pending_count(s) == 1,
             "end on a full disk: %s, %u kept", err ? err->message : "saved", hearth_store_pending_count(s));
    g_clear_error(&err);
    HR_CHECK(!hearth_store_flush_pending(s, &err) && hearth_store_pending_count(s) == 1, "flush on a full disk");
    g_clear_error(&err);
    g_unlink(full);
    gint64 c2 = create(s, NULL);
    gint64 failed = hearth_store_message_append(s, c2, HEARTH_STORE_ROLE_ASSISTANT, HEARTH_STORE_STATE_PARTIAL, "",
                                                -1, -1, &err);
    gint64 deleted = hearth_store_message_append(s, c2, HEARTH_STORE_ROLE_ASSISTANT, HEARTH_STORE_STATE_PARTIAL, "",
                                                 -1, -1, &err);
    HR_CHECK(failed > 0 && deleted > 0, "append: %s", err ? err->message : "");
    g_clear_error(&err);
    HR_CHECK(g_file_set_contents(full, "", 0, NULL), "cannot create %s", full);
    HR_CHECK(!hearth_store_message_end(s, failed, HEARTH_STORE_STATE_ERROR, "so far", NULL, "the GPU stopped", &err) &&
                 hearth_store_pending_count(s) == 2,
             "an error end on a full disk: %u kept", hearth_store_pending_count(s));
    g_clear_error(&err);
    HR_CHECK(!hearth_store_message_end(s, deleted, HEARTH_STORE_STATE_INTERRUPTED, "gone", NULL, NULL, &err) &&
                 hearth_store_pending_count(s) == 3, "a third kept");
    g_clear_error(&err);
    HR_CHECK(!hearth_store_message_end(s, failed, HEARTH_STORE_STATE_PARTIAL, "x", NULL, NULL, &err) &&
                 g_error_matches(err, HEARTH_STORE_ERROR, HEARTH_STORE_ERROR_INVALID) &&
                 hearth_store_pending_count(s) == 3,
             "an invalid end is refused, not kept");
    g_clear_error(&err);
    g_unlink(full);
    HR_CHECK(hearth_store_message_delete_after(s, c2, 0, &err) >= 0, "delete: %s", err ? err->message : "");
    g_clear_error(&err);
    HR_CHECK(hearth_store_flush_pending(s, &err) && hearth_store_pending_count(s) == 0,
             "flush once there is space: %s", err ? err->message : "");
    g_clear_error(&err);
    append(s, c, HEARTH_STORE_ROLE_USER, "after");
    /* one more kept when the store closes: closing writes it */
    gint64 last = hearth_store_message_append(s, c, HEARTH_STORE_ROLE_ASSISTANT, HEARTH_STORE_STATE_PARTIAL, "", -1,
                                              -1, &err);
    g_clear_error(&err);
    HR_CHECK(g_file_set_contents(full, "", 0, NULL), "cannot create %s", full);
    HR_CHECK(!hearth_store_message_end(s, last, HEARTH_STORE_STATE_COMPLETE, "the last", &gs, NULL, &err),
             "end on a full disk");
    g_clear_error(&err);
    g_unlink(full);
    hearth_store_close(s);
    check_integrity(path);
    s = open_ok(path);
    m = messages_ok(s, c);
    HR_CHECK(m->len == 4 && msg_at(m, 1) && strcmp(msg_at(m, 1)->content, "half and whole") == 0 &&
                 msg_at(m, 1)->state == HEARTH_STORE_STATE_COMPLETE && msg_at(m, 1)->stats.gen_tokens == 7 &&
                 msg_at(m, 3) && strcmp(msg_at(m, 3)->content, "the last") == 0 &&
                 msg_at(m, 3)->state == HEARTH_STORE_STATE_COMPLETE,
             "after the disk had space again: %u messages", m->len);
    g_ptr_array_unref(m);
    m = messages_ok(s, c2);
    HR_CHECK(m->len == 1 && strcmp(msg_at(m, 0)->content, "so far") == 0 &&
                 msg_at(m, 0)->state == HEARTH_STORE_STATE_ERROR && msg_at(m, 0)->error &&
                 strcmp(msg_at(m, 0)->error, "the GPU stopped") == 0,
             "the error end: %u messages", m->len);
    g_ptr_array_unref(m);
    hearth_store_close(s);
    g_unsetenv("HEARTH_FULL_DISK_WHEN");
    g_unsetenv("HEARTH_FULL_DISK_PATH");
    g_free(full);
    g_free(path);
    rm_rf(dir);
    g_free(dir);
}

/* --- export --------------------------------------------------------------- */

static void
test_export(void)
{
    char *dir = make_tmp();
    char *path = g_build_filename(dir, "hearth.db", NULL);
    GError *err = NULL;
    HearthStore *s = open_ok(path);
    gint64 c = create(s, "stories260K");
    HR_CHECK(hearth_store_conversation_set_settings(s, c, "Be kind.\nBe brief.", 0.5, 0.9, 100, &err),
             "settings");
    static const struct {
        HearthStoreRole role;
        const char *content;
    } turns[] = {
        { HEARTH_STORE_ROLE_USER, "Write \"hello\" in C,\nplease — and in 日本語 🔥" },
        { HEARTH_STORE_ROLE_ASSISTANT,
          "Sure:\n\n```c\nprintf(\"hello\\n\");\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\tTab\\" },
        { HEARTH_STORE_ROLE_USER, "Thanks" },
    };
    for (guint i = 0; i < G_N_ELEMENTS(turns); i++)
        append(s, c, turns[i].role, turns[i].content);
    gint64 failed = hearth_store_message_append(s, c, HEARTH_STORE_ROLE_ASSISTANT,
                                                HEARTH_STORE_STATE_PARTIAL, "", -1, -1, &err);
    hearth_store_message_set_error(s, failed, "The model ran out of memory", &err);

    char *json = hearth_store_export_json(s, c, &err);
    HR_CHECK(json != NULL, "export json: %s", err ? err->message : "");
    JsonParser *parser = json_parser_new();
    HR_CHECK(json && json_parser_load_from_data(parser, json, -1, &err), "parse json: %s",
             err ? err->message : "");
    g_clear_error(&err);
    JsonNode *root = json_parser_get_root(parser);
    JsonArray *arr = root && JSON_NODE_HOLDS_ARRAY(root) ? json_node_get_array(root) : NULL;
    HR_CHECK(arr && json_array_get_length(arr) == 1 + G_N_ELEMENTS(turns),
             "system + turns, failed reply left out");
    for (guint i = 0; arr && i < json_array_get_length(arr) && i <= G_N_ELEMENTS(turns); i++) {
        JsonObject *o = json_array_get_object_element(arr, i);
        const char *role = o ? json_object_get_string_member_with_default(o, "role", "") : "";
        const char *content = o ? json_object_get_string_member_with_default(o, "content", "") : "";
        const char *want_role = i == 0 ? "system" : hearth_store_role_to_string(turns[i - 1].role);
        const char *want = i == 0 ? "Be kind.\nBe brief." : turns[i - 1].content;
        HR_CHECK(o && json_object_get_size(o) == 2, "two members");
        HR_CHECK(strcmp(role, want_role) == 0 && strcmp(content, want) == 0,
                 "entry %u: %s «%s»", i, role, content);
    }
    g_object_unref(parser);
    g_free(json);

    char *md = hearth_store_export_markdown(s, c, &err);
    HR_CHECK(md != NULL, "export md: %s", err ? err->message : "");
    if (md) {
        HR_CHECK(g_str_has_prefix(md, "# Write \"hello\" in C,\n\n"), "md title: %.40s", md);
        HR_CHECK(strstr(md, "stories260K") != NULL, "md model");
        HR_CHECK(strstr(md, "> Be kind.\n> Be brief.\n") != NULL, "md system prompt");
        HR_CHECK(strstr(md, "## User\n\nWrite \"hello\" in C,\nplease — and in 日本語 🔥\n\n"), "md user");
        char *a = g_strdup_printf("## Assistant\n\n%s\n\n", turns[1].content);
        HR_CHECK(strstr(md, a) != NULL, "md assistant verbatim");
        g_free(a);
        HR_CHECK(strstr(md, "*(reply failed: The model ran out of memory)*"), "md error marked");
        const char *u1 = strstr(md, "## User"), *a1 = strstr(md, "## Assistant"),
                   *u2 = u1 ? strstr(u1 + 1, "## User") : NULL;
        HR_CHECK(u1 && a1 && u2 && u1 < a1 && a1 < u2, "md order");
    }
    g_free(md);
    HR_CHECK(!hearth_store_export_json(s, 9999, &err) &&
                 g_error_matches(err, HEARTH_STORE_ERROR, HEARTH_STORE_ERROR_NOT_FOUND),
             "export missing");
    g_clear_error(&err);

    /* An empty conversation exports as an empty list. */
    gint64 empty = create(s, NULL);
    json = hearth_store_export_json(s, empty, &err);
    char *compact = json ? g_strdelimit(g_strdup(json), " \n", ' ') : NULL;
    HR_CHECK(json && g_str_has_prefix(g_strstrip(compact), "[") &&
                 g_str_has_suffix(compact, "]"),
             "empty export: %s", json ? json : "");
    g_free(compact);
    g_free(json);
    hearth_store_close(s);
    g_free(path);
    rm_rf(dir);
    g_free(dir);
}

/* --- migrations ----------------------------------------------------------- */

/* A database as version `version` of the code wrote it: the historical
 * steps, then data in that version's columns (including a reply that was
 * being streamed when the old app died). */
static void
make_old_db(const char *path, int version)
{
    sqlite3 *db = raw_open(path);
    /* v1 in rollback-journal mode, later ones in WAL: both kinds get migrated. */
    raw_exec(db, version == 1 ? "PRAGMA journal_mode = DELETE" : "PRAGMA journal_mode = WAL");
    raw_exec(db, "BEGIN");
    for (int v = 1; v <= version; v++)
        raw_exec(db, hearth_store_schema_step(v));
    char *set = g_strdup_printf("PRAGMA user_version = %d", version);
    raw_exec(db, set);
    g_free(set);
    raw_exec(db,
             "INSERT INTO conversations (id, title, title_is_auto, created, updated, model,"
             "  system_prompt, temperature, top_p, max_new_tokens)"
             " VALUES (1, 'Old chat', 0, 1000, 2000, 'tiny', 'Be old.', 0.3, 0.8, 64),"
             "        (2, 'Older', 1, 500, 900, NULL, NULL, NULL, NULL, NULL);"
             "INSERT INTO messages (conversation_id, position, role, content, created,"
             "  token_count, state) VALUES"
             " (1, 0, 'user', 'ancient question about sourdough', 1000, 5, 'complete'),"
             " (1, 1, 'assistant', 'ancient answer', 1500, 2, 'complete'),"
             " (1, 2, 'user', 'and then?', 1800, NULL, 'complete'),"
             " (1, 3, 'assistant', 'it was being stream', 2000, NULL, 'partial'),"
             " (2, 0, 'user', 'second conversation', 600, NULL, 'complete');");
    if (version >= 2)
        raw_exec(db, "UPDATE messages SET prompt_tokens = 5, gen_tokens = 2, tokens_per_s = 9.5,"
                     " time_to_first_token_ms = 12 WHERE position = 1 AND conversation_id = 1");
    raw_exec(db, "COMMIT");
    sqlite3_close(db);
}

static void
test_migrations(void)
{
    HR_CHECK(hearth_store_schema_step(0) == NULL && hearth_store_schema_step(1) != NULL &&
                 hearth_store_schema_step(HEARTH_STORE_SCHEMA_VERSION) != NULL &&
                 hearth_store_schema_step(HEARTH_STORE_SCHEMA_VERSION + 1) == NULL,
             "schema steps");
    for (int version = 1; version < HEARTH_STORE_SCHEMA_VERSION; version++) {
        char *dir = make_tmp();
        char *path = g_build_filename(dir, "hearth.db", NULL);
        char *bak = g_strdup_printf("%s.bak-v%d", path, version);
        GError *err = NULL;
        make_old_db(path, version);
        HR_CHECK(file_int(path, "PRAGMA user_version") == version, "old version set");

        HearthStore *s = open_ok(path);
        HR_CHECK(hearth_store_get_recovered_count(s) == 1, "v%d: partial recovered", version);
        GPtrArray *l = list_ok(s);
        HR_CHECK(l->len == 2 && list_id(l, 0) == 1 && list_id(l, 1) == 2, "v%d: conversations kept",
                 version);
        g_ptr_array_unref(l);
        HearthStoreConversation *c = get_ok(s, 1);
        HR_CHECK(strcmp(c->title, "Old chat") == 0 && !c->title_is_auto && c->created == 1000 &&
                     c->updated == 2000 && c->model && strcmp(c->model, "tiny") == 0 &&
                     c->system_prompt && strcmp(c->system_prompt, "Be old.") == 0 &&
                     c->temperature == 0.3 && c->top_p == 0.8 && c->max_new_tokens == 64 &&
                     c->deleted_at == 0,
                 "v%d: conversation fields kept", version);
        hearth_store_conversation_free(c);
        GPtrArray *m = messages_ok(s, 1);
        HR_CHECK(m->len == 4, "v%d: messages kept", version);
        if (m->len == 4) {
            HR_CHECK(strcmp(msg_at(m, 0)->content, "ancient question about sourdough") == 0 &&
                         msg_at(m, 0)->token_count == 5 && msg_at(m, 2)->token_count == -1,
                     "v%d: content", version);
            HR_CHECK(msg_at(m, 3)->state == HEARTH_STORE_STATE_INTERRUPTED &&
                         strcmp(msg_at(m, 3)->content, "it was being stream") == 0,
                     "v%d: partial -> interrupted, content kept", version);
            int want_gen = version >= 2 ? 2 : -1;
            HR_CHECK(msg_at(m, 1)->stats.gen_tokens == want_gen &&
                         msg_at(m, 0)->stats.gen_tokens == -1,
                     "v%d: stats", version);
        }
        g_ptr_array_unref(m);
        /* The FTS index covers rows written before it existed. */
        check_search(s, "sourdough", "1");
        check_search(s, "second", "2");
        /* And the new features work on the migrated file. */
        gint64 n = append(s, 2, HEARTH_STORE_ROLE_ASSISTANT, "fresh reply");
        HR_CHECK(n > 0, "append after migration");
        HR_CHECK(hearth_store_conversation_trash(s, 2, &err), "trash after migration");
        hearth_store_close(s);

        HR_CHECK(file_int(path, "PRAGMA user_version") == HEARTH_STORE_SCHEMA_VERSION,
                 "v%d: migrated", version);
        check_integrity(path);
        HR_CHECK(g_file_test(bak, G_FILE_TEST_EXISTS), "v%d: backup %s made", version, bak);
        if (g_file_test(bak, G_FILE_TEST_EXISTS)) {
            HR_CHECK(file_int(bak, "PRAGMA user_version") == version, "backup is v%d", version);
            HR_CHECK(file_int(bak, "SELECT count(*) FROM messages") == 5, "backup has the data");
            HR_CHECK(file_int(bak, "SELECT count(*) FROM messages WHERE state = 'partial'") == 1,
                     "backup is the state before");
        }
        /* Opening again migrates nothing and backs up nothing. */
        s = open_ok(path);
        hearth_store_close(s);
        char *bak2 = g_strdup_printf("%s-2", bak);
        HR_CHECK(!g_file_test(bak2, G_FILE_TEST_EXISTS), "no second backup");
        g_free(bak2);

        g_free(bak);
        g_free(path);
        rm_rf(dir);
        g_free(dir);
    }

    /* A migration that fails (here: an index the v1 -> v2 step creates is
     * already there) leaves the file as it was, and opening it again does
     * not write another full backup each time. */
    {
        char *fdir = make_tmp();
        char *fpath = g_build_filename(fdir, "hearth.db", NULL);
        make_old_db(fpath, 1);
        sqlite3 *db = raw_open(fpath);
        raw_exec(db, "CREATE INDEX messages_partial ON messages(role)");
        sqlite3_close(db);
        for (int i = 0; i < 3; i++) {
            GError *ferr = NULL;
            HearthStore *fs = hearth_store_open(fpath, &ferr);
            HR_CHECK(!fs && ferr, "open %d of a file whose migration fails", i);
            g_clear_error(&ferr);
            if (fs)
                hearth_store_close(fs);
        }
        HR_CHECK(file_int(fpath, "PRAGMA user_version") == 1, "the failed migration was rolled back");
        char *b1 = g_strdup_printf("%s.bak-v1", fpath), *b2 = g_strdup_printf("%s.bak-v1-2", fpath);
        HR_CHECK(g_file_test(b1, G_FILE_TEST_EXISTS) && !g_file_test(b2, G_FILE_TEST_EXISTS),
                 "one backup after three failed migrations");
        g_free(b1);
        g_free(b2);
        g_free(fpath);
        rm_rf(fdir);
        g_free(fdir);
    }

    /* Version 0: an empty file is a fresh database. */
    char *dir = make_tmp();
    char *path = g_build_filename(dir, "hearth.db", NULL);
    g_file_set_contents(path, "", 0, NULL);
    HearthStore *s = open_ok(path);
    create(s, NULL);
    hearth_store_close(s);
    HR_CHECK(file_int(path, "PRAGMA user_version") == HEARTH_STORE_SCHEMA_VERSION, "v0 -> current");
    sqlite3 *db = raw_open(path);
    char *mode = raw_text(db, "PRAGMA journal_mode");
    HR_CHECK(mode && strcmp(mode, "wal") == 0, "WAL: %s", mode ? mode : "");
    g_free(mode);
    sqlite3_close(db);
    g_free(path);
    rm_rf(dir);
    g_free(dir);
}

/* --- refusing files ------------------------------------------------------- */

/* Opening must fail with `code`, name the path, and leave every byte; then
 * open_fresh moves it aside (same bytes) and starts an empty store. */
static void
check_refused_then_fresh(const char *path, HearthStoreError code, const char *kind)
{
    GError *err = NULL;
    GBytes *before = read_bytes(path);
    HR_CHECK(before != NULL, "read %s", path);
    static const char *const companions[] = { "-wal", "-shm", "-journal" };
    gboolean had[G_N_ELEMENTS(companions)];
    for (guint i = 0; i < G_N_ELEMENTS(companions); i++) {
        char *c = g_strconcat(path, companions[i], NULL);
        had[i] = g_file_test(c, G_FILE_TEST_EXISTS);
        g_free(c);
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        HearthStore *s = hearth_store_open(path, &err);
        HR_CHECK(s == NULL && g_error_matches(err, HEARTH_STORE_ERROR, code),
                 "%s: expected error %d, got %s", kind, code, err ? err->message : "success");
        HR_CHECK(err && strstr(err->message, path), "%s: message names the path: %s", kind,
                 err ? err->message : "");
        g_clear_error(&err);
        hearth_store_close(s);
        HR_CHECK(same_bytes(before, path), "%s: file untouched", kind);
        for (guint i = 0; i < G_N_ELEMENTS(companions); i++) {
            char *c = g_strconcat(path, companions[i], NULL);
            /* With a -wal, reading it may build a -shm index (never data). */
            gboolean shm_ok = had[0] && strcmp(companions[i], "-shm") == 0;
            HR_CHECK(had[i] || shm_ok || !g_file_test(c, G_FILE_TEST_EXISTS),
                     "%s: no %s left behind", kind, companions[i]);
            g_free(c);
        }
    }

    char *moved = NULL;
    HearthStore *s = hearth_store_open_fresh(path, code, &moved, &err);
    HR_CHECK(s != NULL, "%s: fresh: %s", kind, err ? err->message : "");
    g_clear_error(&err);
    char *infix = g_strdup_printf(".%s-", kind);
    HR_CHECK(moved && strstr(moved, infix) && g_str_has_prefix(moved, path),
             "%s: moved to %s", kind, moved ? moved : "NULL");
    HR_CHECK(moved && same_bytes(before, moved), "%s: moved file has the same bytes", kind);
    g_free(infix);
    if (s) {
        GPtrArray *l = list_ok(s);
        HR_CHECK(l->len == 0, "%s: fresh store is empty", kind);
        g_ptr_array_unref(l);
        create(s, NULL);
        hearth_store_close(s);
    }
    HR_CHECK(file_int(path, "PRAGMA user_version") == HEARTH_STORE_SCHEMA_VERSION,
             "%s: fresh file", kind);
    g_free(moved);
    g_bytes_unref(before);
}

static void
test_too_new(void)
{
    char *dir = make_tmp();
    char *path = g_build_filename(dir, "hearth.db", NULL);
    HearthStore *s = open_ok(path);
    gint64 c = create(s, NULL);
    append(s, c, HEARTH_STORE_ROLE_USER, "from the future");
    hearth_store_close(s);
    sqlite3 *db = raw_open(path);
    char *sql = g_strdup_printf("PRAGMA user_version = %d", HEARTH_STORE_SCHEMA_VERSION + 1);
    raw_exec(db, sql);
    g_free(sql);
    sqlite3_close(db);
    check_refused_then_fresh(path, HEARTH_STORE_ERROR_TOO_NEW, "newer");
    g_free(path);
    rm_rf(dir);
    g_free(dir);

    /* The newer version only in a -wal (a newer app was killed before a
     * checkpoint): the probe must read the WAL, and leave both files as
     * they were. The files are copied while the writer still has them open. */
    dir = make_tmp();
    char *live = g_build_filename(dir, "live.db", NULL);
    path = g_build_filename(dir, "hearth.db", NULL);
    s = open_ok(live);
    create(s, NULL);
    hearth_store_close(s);
    db = raw_open(live);
    raw_exec(db, "PRAGMA wal_autocheckpoint = 0");
    sql = g_strdup_printf("PRAGMA user_version = %d", HEARTH_STORE_SCHEMA_VERSION + 1);
    raw_exec(db, sql);
    g_free(sql);
    raw_exec(db, "INSERT INTO conversations (created, updated) VALUES (1, 1)");
    char *live_wal = g_strconcat(live, "-wal", NULL), *wal = g_strconcat(path, "-wal", NULL);
    GBytes *main_bytes = read_bytes(live), *wal_bytes = read_bytes(live_wal);
    HR_CHECK(main_bytes && wal_bytes && g_bytes_get_size(wal_bytes) > 0, "live -wal has frames");
    g_file_set_contents(path, g_bytes_get_data(main_bytes, NULL),
                        (gssize)g_bytes_get_size(main_bytes), NULL);
    g_file_set_contents(wal, g_bytes_get_data(wal_bytes, NULL), (gssize)g_bytes_get_size(wal_bytes),
                        NULL);
    sqlite3_close(db);
    GError *err = NULL;
    s = hearth_store_open(path, &err);
    HR_CHECK(!s && g_error_matches(err, HEARTH_STORE_ERROR, HEARTH_STORE_ERROR_TOO_NEW),
             "newer version in the WAL: %s", err ? err->message : "opened");
    g_clear_error(&err);
    hearth_store_close(s);
    HR_CHECK(same_bytes(main_bytes, path) && same_bytes(wal_bytes, wal), "db and -wal untouched");
    char *moved = NULL;
    s = hearth_store_open_fresh(path, HEARTH_STORE_ERROR_TOO_NEW, &moved, &err);
    HR_CHECK(s != NULL, "fresh: %s", err ? err->message : "");
    g_clear_error(&err);
    char *moved_wal = moved ? g_strconcat(moved, "-wal", NULL) : g_strdup("");
    HR_CHECK(same_bytes(wal_bytes, moved_wal), "-wal moved along: %s", moved_wal);
    HR_CHECK(moved && file_int(moved, "PRAGMA user_version") == HEARTH_STORE_SCHEMA_VERSION + 1,
             "the moved pair still reads as the newer database");
    hearth_store_close(s);
    g_free(moved_wal);
    g_free(moved);
    g_bytes_unref(main_bytes);
    g_bytes_unref(wal_bytes);
    g_free(live_wal);
    g_free(wal);
    g_free(live);
    g_free(path);
    rm_rf(dir);
    g_free(dir);
}

static void
test_corrupt(void)
{
    /* Garbage. */
    char *dir = make_tmp();
    char *path = g_build_filename(dir, "hearth.db", NULL);
    GString *junk = g_string_new(NULL);
    GRand *rand = g_rand_new_with_seed(42);
    while (junk->len < 16384)
        g_string_append_c(junk, (char)g_rand_int_range(rand, 0, 256));
    g_rand_free(rand);
    g_file_set_contents(path, junk->str, (gssize)junk->len, NULL);
    g_string_free(junk, TRUE);
    check_refused_then_fresh(path, HEARTH_STORE_ERROR_CORRUPT, "corrupt");
    g_free(path);
    rm_rf(dir);
    g_free(dir);

    /* Text that is not a database. */
    dir = make_tmp();
    path = g_build_filename(dir, "hearth.db", NULL);
    g_file_set_contents(path, "this is not a database, just a note\n", -1, NULL);
    check_refused_then_fresh(path, HEARTH_STORE_ERROR_CORRUPT, "corrupt");
    g_free(path);
    rm_rf(dir);
    g_free(dir);

    /* A real database, truncated. */
    dir = make_tmp();
    path = g_build_filename(dir, "hearth.db", NULL);
    HearthStore *s = open_ok(path);
    GString *para = g_string_new(NULL);
    for (int i = 0; i < 40; i++)
        g_string_append(para, "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ");
    for (int c = 0; c < 20; c++) {
        gint64 conv = create(s, NULL);
        for (int i = 0; i < 10; i++)
            append(s, conv, i % 2 ? HEARTH_STORE_ROLE_ASSISTANT : HEARTH_STORE_ROLE_USER, para->str);
    }
    g_string_free(para, TRUE);
    hearth_store_close(s);
    char *data = NULL;
    gsize len = 0;
    g_file_get_contents(path, &data, &len, NULL);
    HR_CHECK(len > 100 * 1024, "real database is big enough: %zu", len);
    gsize keep = (len / 2) / 4096 * 4096;
    g_file_set_contents(path, data, (gssize)keep, NULL);
    g_free(data);
    check_refused_then_fresh(path, HEARTH_STORE_ERROR_CORRUPT, "corrupt");
    g_free(path);
    rm_rf(dir);
    g_free(dir);

    /* Someone else's SQLite database (no schema version). */
    dir = make_tmp();
    path = g_build_filename(dir, "hearth.db", NULL);
    sqlite3 *db = raw_open(path);
    raw_exec(db, "CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('mine');");
    sqlite3_close(db);
    check_refused_then_fresh(path, HEARTH_STORE_ERROR_CORRUPT, "corrupt");
    g_free(path);
    rm_rf(dir);
    g_free(dir);

    /* A folder where the file should be. */
    dir = make_tmp();
    path = g_build_filename(dir, "hearth.db", NULL);
    g_mkdir(path, 0700);
    GError *err = NULL;
    HR_CHECK(!hearth_store_open(path, &err) &&
                 g_error_matches(err, HEARTH_STORE_ERROR, HEARTH_STORE_ERROR_IO),
             "folder: %s", err ? err->message : "opened");
    g_clear_error(&err);
    g_free(path);
    rm_rf(dir);
    g_free(dir);
}

/* --- SIGKILL mid-reply ---------------------------------------------------- */

static void
write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            _exit(3);
        p += w;
        n -= (size_t)w;
    }
}

static gboolean
read_all(int fd, void *buf, size_t n)
{
    char *p = buf;
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return FALSE;
        p += r;
        n -= (size_t)r;
    }
    return TRUE;
}

/* The child: opens the store, appends a PARTIAL reply, reports its id, then
 * grows it forever, reporting each committed update with one byte. */
G_GNUC_NORETURN static void
writer_child(const char *path, gint64 conv, int fd)
{
    GError *err = NULL;
    HearthStore *s = hearth_store_open(path, &err);
    if (!s)
        _exit(2);
    gint64 id = hearth_store_message_append(s, conv, HEARTH_STORE_ROLE_ASSISTANT,
                                            HEARTH_STORE_STATE_PARTIAL, "", -1, -1, &err);
    if (id <= 0)
        _exit(2);
    write_all(fd, &id, sizeof id);
    GString *text = g_string_new(NULL);
    for (guint i = 0;; i++) {
        g_string_append_printf(text, "token%u ", i);
        if (!hearth_store_message_update_content(s, id, text->str, -1, (int)i + 1, &err))
            _exit(2);
        write_all(fd, "u", 1);
    }
}

static void
test_kill_recovery(void)
{
    static const int kill_after[] = { 3, 20, 200 };
    for (guint round = 0; round < G_N_ELEMENTS(kill_after); round++) {
        char *dir = make_tmp();
        char *path = g_build_filename(dir, "hearth.db", NULL);
        HearthStore *s = open_ok(path);
        gint64 conv = create(s, NULL);
        append(s, conv, HEARTH_STORE_ROLE_USER, "Tell me everything");
        hearth_store_close(s); /* no connection crosses the fork */

        int fds[2];
        HR_CHECK(pipe(fds) == 0, "pipe");
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            close(fds[0]);
            writer_child(path, conv, fds[1]);
        }
        close(fds[1]);
        gint64 id = 0;
        HR_CHECK(read_all(fds[0], &id, sizeof id) && id > 0, "child reports the message id");
        char buf[1];
        int updates = 0;
        while (updates < kill_after[round] && read_all(fds[0], buf, 1))
            updates++;
        kill(pid, SIGKILL);
        int status = 0;
        waitpid(pid, &status, 0);
        close(fds[0]);
        HR_CHECK(updates == kill_after[round], "child wrote %d updates", updates);
        HR_CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child was killed (status %d)",
                 status);

        char *wal = g_strconcat(path, "-wal", NULL);
        gboolean had_wal = g_file_test(wal, G_FILE_TEST_EXISTS);
        g_free(wal);

        s = open_ok(path);
        HR_CHECK(hearth_store_get_recovered_count(s) == 1, "one reply recovered");
        GError *err = NULL;
        HearthStoreMessage *m = hearth_store_message_get(s, id, &err);
        HR_CHECK(m && m->state == HEARTH_STORE_STATE_INTERRUPTED, "reply is interrupted");
        /* At least every update the child reported is there. */
        char *want = g_strdup_printf("token%d ", kill_after[round] - 1);
        HR_CHECK(m && m->content_len > 0 && g_str_has_prefix(m->content, "token0 ") &&
                     strstr(m->content, want) != NULL && m->token_count >= kill_after[round],
                 "content kept through the last reported update (%s): %.60s…", want,
                 m ? m->content : "");
        g_free(want);
        printf("kill after %d updates: %s -wal, recovered %zu bytes, %d tokens\n", kill_after[round],
               had_wal ? "with" : "without", m ? m->content_len : 0, m ? m->token_count : 0);
        hearth_store_message_free(m);
        GPtrArray *msgs = messages_ok(s, conv);
        HR_CHECK(msgs->len == 2, "conversation reopens with both messages");
        g_ptr_array_unref(msgs);
        hearth_store_close(s);
        check_integrity(path);
        s = open_ok(path);
        HR_CHECK(hearth_store_get_recovered_count(s) == 0, "recovered once");
        hearth_store_close(s);

        g_free(path);
        rm_rf(dir);
        g_free(dir);
    }
}

/* --- a long conversation -------------------------------------------------- */

static void
test_large(void)
{
    char *dir = make_tmp();
    char *path = g_build_filename(dir, "hearth.db", NULL);
    HearthStore *s = open_ok(path);
    gint64 conv = create(s, NULL);
    enum { N = 10000 };
    int failures = hr_test_failures;
    gint64 t0 = g_get_monotonic_time();
    for (int i = 0; i < N; i++) {
        char *text = g_strdup_printf("Message number %d: the answer is %d and it is %s.", i,
                                     i * 7, i % 2 ? "odd" : "even");
        append(s, conv, i % 2 ? HEARTH_STORE_ROLE_ASSISTANT : HEARTH_STORE_ROLE_USER, text);
        g_free(text);
        if (hr_test_failures > failures)
            break;
    }
    gint64 t1 = g_get_monotonic_time();
    GPtrArray *m = messages_ok(s, conv);
    gint64 t2 = g_get_monotonic_time();
    HR_CHECK(m->len == N, "%u messages listed", m->len);
    gboolean ordered = TRUE;
    for (guint i = 0; i < m->len; i++)
        ordered = ordered && msg_at(m, i)->position == (int)i;
    HR_CHECK(ordered, "in order");
    HR_CHECK(m->len == N && strcmp(msg_at(m, 1234)->content,
                                   "Message number 1234: the answer is 8638 and it is even.") == 0,
             "content");
    g_ptr_array_unref(m);
    gint64 t3 = g_get_monotonic_time();
    GPtrArray *hits = search_ok(s, "8638");
    gint64 t4 = g_get_monotonic_time();
    HR_CHECK(hits->len == 1, "search in a long conversation");
    g_ptr_array_unref(hits);
    hits = search_ok(s, "message");
    gint64 t5 = g_get_monotonic_time();
    g_ptr_array_unref(hits);
    printf("10,000 messages: append %.1f ms (%.1f us each), list %.1f ms, search (1 hit) %.1f ms,"
           " search (10,000 hits) %.1f ms\n",
           (t1 - t0) / 1000.0, (double)(t1 - t0) / N, (t2 - t1) / 1000.0, (t4 - t3) / 1000.0,
           (t5 - t4) / 1000.0);
    gint64 t6 = g_get_monotonic_time();
    GError *err = NULL;
    HR_CHECK(hearth_store_conversation_delete(s, conv, &err), "delete the long one");
    printf("deleting it (cascade + FTS): %.1f ms\n", (g_get_monotonic_time() - t6) / 1000.0);
    hearth_store_close(s);
    check_integrity(path);
    g_free(path);
    rm_rf(dir);
    g_free(dir);
}

/* --- default path --------------------------------------------------------- */

/* Delete all: every conversation (trashed ones too), their messages and their
 * search index entries go; the store keeps working afterwards. */
static void
test_delete_all(void)
{
    char *dir = make_tmp();
    char *path = g_build_filename(dir, "hearth.db", NULL);
    GError *err = NULL;
    HearthStore *s = open_ok(path);
    HR_CHECK(hearth_store_conversation_delete_all(s, &err) == 0, "delete all on an empty store: 0");
    gint64 a = create(s, NULL), b = create(s, NULL), c = create(s, NULL);
    append(s, a, HEARTH_STORE_ROLE_USER, "dragons and castles");
    append(s, a, HEARTH_STORE_ROLE_ASSISTANT, "Once upon a time there was a dragon");
    append(s, b, HEARTH_STORE_ROLE_USER, "a dragon again");
    HR_CHECK(hearth_store_conversation_trash(s, c, &err), "trash: %s", err ? err->message : "?");
    g_clear_error(&err);
    int n = hearth_store_conversation_delete_all(s, &err);
    HR_CHECK(n == 3, "delete all removes 3 conversations (trashed included), got %d: %s", n,
             err ? err->message : "");
    g_clear_error(&err);
    GPtrArray *l = list_ok(s);
    HR_CHECK(l->len == 0, "no conversations listed after delete all (%u)", l->len);
    g_ptr_array_unref(l);
    char *ids = search_ids(s, "dragon");
    HR_CHECK(strcmp(ids, "") == 0, "search finds nothing after delete all: %s", ids);
    g_free(ids);
    HearthStoreConversation *gone = hearth_store_conversation_get(s, a, &err);
    HR_CHECK(!gone && g_error_matches(err, HEARTH_STORE_ERROR, HEARTH_STORE_ERROR_NOT_FOUND),
             "a deleted conversation is NOT_FOUND");
    g_clear_pointer(&gone, hearth_store_conversation_free);
    g_clear_error(&err);
    /* Still usable. */
    gint64 d = create(s, NULL);
    append(s, d, HEARTH_STORE_ROLE_USER, "a new start");
    l = list_ok(s);
    HR_CHECK(l->len == 1 && list_id(l, 0) == d, "a new conversation after delete all");
    g_ptr_array_unref(l);
    hearth_store_close(s);
    HR_CHECK(file_int(path, "SELECT count(*) FROM messages") == 1, "only the new message is left");
    check_integrity(path);
    g_free(path);
    rm_rf(dir);
    g_free(dir);
}

static void
test_default_path(void)
{
    char *dir = make_tmp();
    char *env_path = g_build_filename(dir, "env", "hearth.db", NULL);
    g_setenv("HEARTH_DB", env_path, TRUE);
    char *p = hearth_store_default_path();
    HR_CHECK(strcmp(p, env_path) == 0, "HEARTH_DB honoured: %s", p);
    g_free(p);
    HearthStore *s = hearth_store_open(NULL, NULL);
    HR_CHECK(s && strcmp(hearth_store_get_path(s), env_path) == 0, "open(NULL) uses HEARTH_DB");
    hearth_store_close(s);
    HR_CHECK(g_file_test(env_path, G_FILE_TEST_EXISTS), "created at HEARTH_DB");
    g_unsetenv("HEARTH_DB");
    p = hearth_store_default_path();
    HR_CHECK(g_str_has_suffix(p, "/io.github.hearthchat.Hearth/conversations/hearth.db") ||
                 g_str_has_suffix(p, "/io.github.hearthchat.Hearth/hearth.db"), /* an old one that stays */
             "XDG path: %s", p);
    g_free(p);
    g_free(env_path);
    rm_rf(dir);
    g_free(dir);
}

/* The database moves from beside models/ into a folder of its own, once, with what its write-ahead log held
 * (a killed app's, here: the log copied aside while the writer had it open); it stays where it is when another
 * connection has it open, when it is damaged, or when the new one exists. */
static void
test_own_folder(void)
{
    char *dir = make_tmp();
    char *old_path = g_build_filename(dir, "hearth.db", NULL);
    char *new_path = g_build_filename(dir, "conversations", "hearth.db", NULL);
    GError *err = NULL;

    /* nothing there: the new path */
    char *p = hearth_store_move_to_own_folder(dir);
    HR_CHECK(strcmp(p, new_path) == 0, "a first start uses %s: %s", new_path, p);
    g_free(p);

    /* an old database with a conversation, open in another connection: it stays */
    HearthStore *s = hearth_store_open(old_path, &err);
    HR_CHECK(s != NULL, "open old: %s", err ? err->message : "");
    g_clear_error(&err);
    gint64 cid = hearth_store_conversation_create(s, "m", &err);
    HR_CHECK(cid > 0 && hearth_store_message_append(s, cid, HEARTH_STORE_ROLE_USER, HEARTH_STORE_STATE_COMPLETE,
                                                    "kept across the move", -1, -1, &err) > 0,
             "write: %s", err ? err->message : "");
    g_clear_error(&err);
    sqlite3 *reader = NULL; /* a reader in the middle of a read: the checkpoint cannot fold the log in */
    sqlite3_stmt *st = NULL;
    HR_CHECK(sqlite3_open_v2(old_path, &reader, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
                 sqlite3_prepare_v2(reader, "SELECT * FROM messages", -1, &st, NULL) == SQLITE_OK &&
                 sqlite3_step(st) == SQLITE_ROW,
             "a reader holds the database");
    p = hearth_store_move_to_own_folder(dir);
    HR_CHECK(strcmp(p, old_path) == 0, "open elsewhere: it stays at %s, not %s", old_path, p);
    HR_CHECK(!g_file_test(new_path, G_FILE_TEST_EXISTS), "nothing made at the new path");
    g_free(p);
    sqlite3_finalize(st);
    sqlite3_close(reader);
    hearth_store_close(s);

    /* closed: it moves, the conversation with it, and the old name is gone */
    p = hearth_store_move_to_own_folder(dir);
    HR_CHECK(strcmp(p, new_path) == 0, "moved: %s", p);
    g_free(p);
    HR_CHECK(!g_file_test(old_path, G_FILE_TEST_EXISTS), "the old file is gone");
    s = hearth_store_open(new_path, &err);
    GPtrArray *found = s ? hearth_store_search(s, "across", 10, NULL, NULL, &err) : NULL;
    HR_CHECK(found && found->len == 1, "the conversation moved with it: %s", err ? err->message : "");
    g_clear_error(&err);
    if (found)
        g_ptr_array_unref(found);
    hearth_store_close(s);

    /* a damaged old database (not SQLite's at all) at a fresh start: it stays, byte for byte, and is used where
     * it is, so that opening it says it is damaged instead of starting empty elsewhere */
    {
        char *dir2 = make_tmp();
        char *old2 = g_build_filename(dir2, "hearth.db", NULL);
        char *new2 = g_build_filename(dir2, "conversations", "hearth.db", NULL);
        const char junk[] = "this is not a database, but a user's conversations may be in it";
        HR_CHECK(g_file_set_contents(old2, junk, -1, NULL), "a damaged old file");
        p = hearth_store_move_to_own_folder(dir2);
        HR_CHECK(strcmp(p, old2) == 0, "damaged: it stays at %s, not %s", old2, p);
        g_free(p);
        char *bytes = NULL;
        HR_CHECK(g_file_get_contents(old2, &bytes, NULL, NULL) && strcmp(bytes, junk) == 0, "damaged: untouched");
        HR_CHECK(!g_file_test(new2, G_FILE_TEST_EXISTS), "damaged: nothing made at the new path");
        g_free(bytes);
        g_free(old2);
        g_free(new2);
        rm_rf(dir2);
        g_free(dir2);
    }

    /* a new one exists: an old one that turns up is left alone */
    HR_CHECK(g_file_set_contents(old_path, "not looked at", -1, NULL), "an old file again");
    p = hearth_store_move_to_own_folder(dir);
    HR_CHECK(strcmp(p, new_path) == 0, "the new one wins: %s", p);
    HR_CHECK(g_file_test(old_path, G_FILE_TEST_EXISTS), "the old one is left alone");
    g_free(p);

    g_free(new_path);
    g_free(old_path);
    rm_rf(dir);
    g_free(dir);
}

int
main(void)
{
    static const struct {
        const char *name;
        void (*fn)(void);
    } tests[] = {
        { "titles", test_titles },
        { "conversations", test_conversations },
        { "streaming", test_streaming },
        { "versions", test_versions },
        { "search", test_search },
        { "read-only", test_read_only },
        { "full-disk", test_full_disk },
        { "export", test_export },
        { "migrations", test_migrations },
        { "too-new", test_too_new },
        { "corrupt", test_corrupt },
        { "kill-recovery", test_kill_recovery },
        { "large", test_large },
        { "default-path", test_default_path },
        { "own-folder", test_own_folder },
        { "delete-all", test_delete_all },
    };
    for (guint i = 0; i < G_N_ELEMENTS(tests); i++) {
        int before = hr_test_failures;
        tests[i].fn();
        printf("%s: %s\n", tests[i].name, hr_test_failures == before ? "ok" : "FAILED");
        fflush(stdout);
    }
    return hr_test_result();
}
