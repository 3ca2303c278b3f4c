/* hearth-cli download — fetch a model from the Hugging Face Hub into the
 * models dir (app/hearth-hub.h). Ctrl-C pauses: the partial files stay
 * under <models dir>/.partial and the same command resumes them.
 *
 *   hearth-cli download owner/name [--file NAME.gguf] [--revision R] [-o MODELS_DIR] [--force]
 *   hearth-cli download owner/name --list
 *   hearth-cli download --store-token < token.txt | --forget-token
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib-unix.h>
#include <glib.h>

#include "hearth-cli.h"
#include "hearth-hub.h"
#include "hearth-models.h"

typedef struct {
    GMainLoop *loop;
    GCancellable *cancel;
    char *path;
    GError *error;
    gboolean tty;
    gboolean interrupted;
    int last_decile;
    guint last_file;
    gboolean line_open;
} DownloadRun;

static void
format_eta(double secs, char *buf, size_t n)
{
    if (secs < 0) {
        g_strlcpy(buf, "--", n);
        return;
    }
    unsigned long s = (unsigned long)(secs + 0.5);
    if (s >= 3600)
        g_snprintf(buf, n, "%luh%02lum", s / 3600, (s / 60) % 60);
    else if (s >= 60)
        g_snprintf(buf, n, "%lum%02lus", s / 60, s % 60);
    else
        g_snprintf(buf, n, "%lus", s);
}

static void
on_progress(const HearthHubProgress *p, gpointer user_data)
{
    DownloadRun *r = user_data;
    double frac = p->total ? (double)p->done / (double)p->total : 1.0;
    g_autofree char *done = g_format_size(p->done);
    g_autofree char *total = g_format_size(p->total);
    g_autofree char *speed = g_format_size((guint64)p->speed);
    char eta[32];
    format_eta(p->eta_seconds, eta, sizeof eta);
    if (r->tty) {
        int width = 24, fill = (int)(frac * width);
        fprintf(stderr, "\r[%.*s%*s] %3d%% %s/%s %s/s ETA %s  %u/%u %-32.32s", fill, "########################",
                width - fill, "", (int)(frac * 100), done, total, speed, eta, p->file_index + 1, p->n_files,
                p->file ? p->file : "");
        r->line_open = TRUE;
        return;
    }
    int decile = (int)(frac * 10);
    gboolean file_done = p->file_total > 0 && p->file_done == p->file_total;
    if (decile != r->last_decile || (file_done && p->file_index + 1 != r->last_file)) {
        fprintf(stderr, "download: %d%% %s of %s (%s/s, ETA %s)%s%s\n", (int)(frac * 100), done, total, speed, eta,
                file_done ? ", done: " : "", file_done ? p->file : "");
        r->last_decile = decile;
        if (file_done)
            r->last_file = p->file_index + 1;
    }
}

static void
on_log(const char *message, gpointer user_data)
{
    DownloadRun *r = user_data;
    if (r->line_open) {
        fputc('\n', stderr);
        r->line_open = FALSE;
    }
    fprintf(stderr, "download: %s\n", message);
}

static gboolean
on_sigint(gpointer user_data)
{
    DownloadRun *r = user_data;
    if (r->interrupted)
        return G_SOURCE_CONTINUE;
    r->interrupted = TRUE;
    g_cancellable_cancel(r->cancel);
    return G_SOURCE_CONTINUE;
}

static void
on_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
    DownloadRun *r = user_data;
    r->path = hearth_hub_download_finish(res, &r->error);
    g_main_loop_quit(r->loop);
}

static int
store_token(const char *endpoint)
{
    char buf[4096];
    if (isatty(0))
        fprintf(stderr, "Access token (from https://huggingface.co/settings/tokens): ");
    if (!fgets(buf, sizeof buf, stdin)) {
        fprintf(stderr, "hearth-cli download: no token on standard input\n");
        return 2;
    }
    g_strstrip(buf);
    g_autoptr(GError) error = NULL;
    gboolean ok = hearth_hub_token_store(endpoint, buf, NULL, &error);
    memset(buf, 0, sizeof buf);
    if (!ok) {
        fprintf(stderr, "hearth-cli download: could not store the token in the keyring: %s\n", error->message);
        return 1;
    }
    fprintf(stderr, "download: the token is stored in the keyring\n");
    return 0;
}

int
hr_cli_download(int argc, char **argv)
{
    char *revision = NULL, *dir = NULL, *endpoint = NULL, *gguf = NULL;
    gboolean force = FALSE, list = FALSE, store = FALSE, forget = FALSE, discard = FALSE, no_keyring = FALSE;
    GOptionEntry entries[] = {
        { "revision", 'r', 0, G_OPTION_ARG_STRING, &revision, "Branch, tag or commit (default main)", "R" },
        { "file", 0, 0, G_OPTION_ARG_STRING, &gguf, "A repo of GGUF files: the one to download", "NAME.gguf" },
        { "output", 'o', 0, G_OPTION_ARG_FILENAME, &dir,
          "Models dir (default $HEARTH_MODELS_DIR or ~/.local/share/io.github.hearthchat.Hearth/models)", "DIR" },
        { "endpoint", 0, 0, G_OPTION_ARG_STRING, &endpoint, "Hub URL (default $HF_ENDPOINT or huggingface.co)",
          "URL" },
        { "force", 'f', 0, G_OPTION_ARG_NONE, &force, "Replace an installed model of the same name", NULL },
        { "list", 'l', 0, G_OPTION_ARG_NONE, &list, "Only list the files that would be downloaded", NULL },
        { "discard", 0, 0, G_OPTION_ARG_NONE, &discard, "Delete the partial files of a paused download", NULL },
        { "no-keyring", 0, 0, G_OPTION_ARG_NONE, &no_keyring, "Do not look for a token in the keyring", NULL },
        { "store-token", 0, 0, G_OPTION_ARG_NONE, &store, "Read an access token from stdin into the keyring", NULL },
        { "forget-token", 0, 0, G_OPTION_ARG_NONE, &forget, "Remove the access token from the keyring", NULL },
        { NULL },
    };
    g_autoptr(GOptionContext) octx = g_option_context_new("OWNER/NAME — download a model from Hugging Face");
    g_option_context_add_main_entries(octx, entries, NULL);
    g_option_context_set_description(octx,
        "Gated models need an access token: $HF_TOKEN, or one stored with --store-token.\n"
        "Ctrl-C pauses; run the same command again to resume.");
    g_autoptr(GError) error = NULL;
    int rc = 2;
    DownloadRun r = { 0 };
    if (!g_option_context_parse(octx, &argc, &argv, &error)) {
        fprintf(stderr, "hearth-cli download: %s\n", error->message);
        goto out;
    }
    if (store) {
        rc = store_token(endpoint);
        goto out;
    }
    if (forget) {
        rc = hearth_hub_token_clear(endpoint, NULL, &error) ? 0 : 1;
        if (rc)
            fprintf(stderr, "hearth-cli download: %s\n", error->message);
        goto out;
    }
    if (argc != 2) {
        fprintf(stderr, "hearth-cli download: give one model id, e.g. Qwen/Qwen2.5-0.5B-Instruct\n");
        goto out;
    }
    const char *repo = argv[1];
    if (!hearth_hub_repo_id_valid(repo)) {
        fprintf(stderr, "hearth-cli download: '%s' is not a model id (owner/name)\n", repo);
        goto out;
    }
    if (discard) {
        rc = hearth_hub_discard_partial(repo, dir, &error) ? 0 : 1;
        if (rc)
            fprintf(stderr, "hearth-cli download: %s\n", error->message);
        goto out;
    }
    HearthHubOptions opt;
    hearth_hub_options_init(&opt);
    opt.revision = revision;
    opt.gguf_file = gguf;
    opt.models_dir = dir;
    opt.endpoint = endpoint;
    opt.overwrite = force;
    opt.use_keyring = !no_keyring;
    rc = 1;
    if (list) {
        g_autofree char *commit = NULL;
        g_autoptr(GPtrArray) files = hearth_hub_list_files(repo, &opt, &commit, NULL, &error);
        if (!files) {
            fprintf(stderr, "hearth-cli download: %s\n", error->message);
            goto out;
        }
        guint64 total = 0;
        for (guint i = 0; i < files->len; i++) {
            HearthHubFile *f = files->pdata[i];
            g_autofree char *sz = g_format_size(f->size);
            printf("%-40s %12s  %s\n", f->path, sz, f->sha256 ? f->sha256 : "");
            total += f->size;
        }
        g_autofree char *tsz = g_format_size(total);
        printf("%u files, %s, commit %s\n", files->len, tsz, commit);
        rc = 0;
        goto out;
    }

    r.tty = isatty(2) != 0;
    r.last_decile = -1;
    r.loop = g_main_loop_new(NULL, FALSE);
    r.cancel = g_cancellable_new();
    opt.progress = on_progress;
    opt.log = on_log;
    opt.user_data = &r;
    guint sig = g_unix_signal_add(SIGINT, on_sigint, &r);
    guint sigterm = g_unix_signal_add(SIGTERM, on_sigint, &r);
    hearth_hub_download_async(repo, &opt, r.cancel, on_done, &r);
    g_main_loop_run(r.loop);
    g_source_remove(sig);
    g_source_remove(sigterm);
    /* Deliver what the worker queued before it finished. */
    while (g_main_context_iteration(NULL, FALSE))
        ;
    if (r.line_open)
        fputc('\n', stderr);
    if (r.path) {
        printf("%s\n", r.path);
        rc = 0;
    } else if (g_error_matches(r.error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
        g_autofree char *root = hearth_models_resolve_dir(dir);
        fprintf(stderr, "download: paused; the partial files stay in %s/.partial; run the same command to resume\n",
                root);
        rc = 130;
    } else {
        fprintf(stderr, "hearth-cli download: %s\n", r.error ? r.error->message : "failed");
        rc = 1;
    }
out:
    g_clear_error(&r.error);
    g_free(r.path);
    g_clear_object(&r.cancel);
    g_clear_pointer(&r.loop, g_main_loop_unref);
    g_free(revision);
    g_free(gguf);
    g_free(dir);
    g_free(endpoint);
    return rc;
}
