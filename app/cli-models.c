/* hearth-cli models — the installed models (app/hearth-models.h).
 *
 *   hearth-cli models list [--json] [--dir DIR] [--ctx N]
 *   hearth-cli models delete NAME [--dir DIR]
 *   hearth-cli models import SRC_DIR [--name NAME] [--dir DIR]
 *   hearth-cli models rename OLD NEW [--dir DIR]
 *   hearth-cli models recommended [--json]
 *   hearth-cli models found [--json] [--dir DIR]      models other apps keep here (hearth-found.h)
 *   hearth-cli models add FOUND [--name NAME] [--dir DIR]
 *                                         adds one of them by the name `found` shows (links, no copy)
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <json-glib/json-glib.h>

#include "hearth-cli.h"
#include "hearth-found.h"
#include "hearth-models.h"

typedef struct {
    char *dir;
    char *name;
    gboolean json;
    int ctx;
} ModelsArgs;

static char *
format_params(guint64 n)
{
    if (n >= 1000000000ull)
        return g_strdup_printf("%.2fB", (double)n / 1e9);
    if (n >= 1000000ull)
        return g_strdup_printf("%.1fM", (double)n / 1e6);
    if (n >= 1000ull)
        return g_strdup_printf("%.1fK", (double)n / 1e3);
    return g_strdup_printf("%" G_GUINT64_FORMAT, n);
}

static int
models_list(ModelsArgs *a)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) list = hearth_models_list(a->dir, &error);
    if (!list) {
        fprintf(stderr, "hearth-cli models list: %s\n", error->message);
        return 1;
    }
    if (a->json) {
        g_autoptr(JsonBuilder) b = json_builder_new();
        json_builder_begin_array(b);
        for (guint i = 0; i < list->len; i++) {
            HearthModelInfo *m = list->pdata[i];
            json_builder_begin_object(b);
            hr_cli_json_str(b, "name", m->name);
            hr_cli_json_str(b, "path", m->path);
            hr_cli_json_str(b, "architecture", m->architecture);
            hr_cli_json_str(b, "model_type", m->model_type);
            hr_cli_json_str(b, "format", m->format);
            hr_cli_json_str(b, "source_repo", m->source_repo);
            hr_cli_json_int(b, "params", (gint64)m->n_params);
            hr_cli_json_int(b, "weights_bytes", (gint64)m->weights_bytes);
            hr_cli_json_int(b, "size_on_disk", (gint64)m->size_on_disk);
            hr_cli_json_int(b, "layers", m->n_layers);
            hr_cli_json_int(b, "kv_heads", m->n_kv_heads);
            hr_cli_json_int(b, "head_dim", m->head_dim);
            hr_cli_json_int(b, "max_context", m->max_context);
            hr_cli_json_int(b, "ctx", a->ctx);
            hr_cli_json_int(b, "kv_cache_bytes",
                            (gint64)hearth_model_info_kv_bytes(m, a->ctx));
            hr_cli_json_int(b, "memory_needed", (gint64)hearth_model_info_memory_needed(m, a->ctx));
            json_builder_set_member_name(b, "supported");
            json_builder_add_boolean_value(b, m->supported);
            hr_cli_json_str(b, "problem", m->problem);
            json_builder_end_object(b);
        }
        json_builder_end_array(b);
        hr_cli_json_print(b);
        return 0;
    }
    if (list->len == 0) {
        g_autofree char *root = hearth_models_resolve_dir(a->dir);
        fprintf(stderr, "no models in %s\n", root);
        return 0;
    }
    printf("%-36s %-24s %8s %-16s %10s %12s\n", "NAME", "ARCHITECTURE", "PARAMS", "FORMAT", "SIZE", "MEMORY");
    for (guint i = 0; i < list->len; i++) {
        HearthModelInfo *m = list->pdata[i];
        g_autofree char *params = format_params(m->n_params);
        g_autofree char *size = g_format_size(m->size_on_disk);
        g_autofree char *mem = g_format_size(hearth_model_info_memory_needed(m, a->ctx));
        printf("%-36s %-24s %8s %-16s %10s %12s%s%s\n", m->name, m->architecture ? m->architecture : "?", params,
               m->format, size, mem, m->problem ? "  ! " : "", m->problem ? m->problem : "");
    }
    printf("(memory = weights + FP16 KV cache at %d tokens)\n", a->ctx);
    return 0;
}

static int
models_found(ModelsArgs *a)
{
    g_autoptr(GPtrArray) list = hearth_found_scan(a->dir);
    if (a->json) {
        g_autoptr(JsonBuilder) b = json_builder_new();
        json_builder_begin_array(b);
        for (guint i = 0; i < list->len; i++) {
            HearthFoundModel *m = list->pdata[i];
            json_builder_begin_object(b);
            hr_cli_json_str(b, "app", m->app);
            hr_cli_json_str(b, "name", m->name);
            hr_cli_json_str(b, "path", m->path);
            hr_cli_json_str(b, "architecture", m->info->architecture);
            hr_cli_json_str(b, "format", m->info->format);
            hr_cli_json_int(b, "params", (gint64)m->info->n_params);
            hr_cli_json_int(b, "weights_bytes", (gint64)m->info->weights_bytes);
            json_builder_set_member_name(b, "usable");
            json_builder_add_boolean_value(b, hearth_found_model_usable(m));
            hr_cli_json_str(b, "problem", m->info->problem);
            hr_cli_json_str(b, "added", m->added);
            json_builder_end_object(b);
        }
        json_builder_end_array(b);
        hr_cli_json_print(b);
        return 0;
    }
    if (list->len == 0) {
        fprintf(stderr, "no models of Ollama, LM Studio, GPT4All, llama.cpp, Jan or the Hugging Face cache here\n");
        return 0;
    }
    printf("%-12s %-48s %8s %-14s %s\n", "APP", "NAME", "PARAMS", "FORMAT", "STATE");
    for (guint i = 0; i < list->len; i++) {
        HearthFoundModel *m = list->pdata[i];
        g_autofree char *params = format_params(m->info->n_params);
        g_autofree char *state = m->added                      ? g_strdup_printf("added: %s", m->added)
                                 : hearth_found_model_usable(m) ? g_strdup("can be added")
                                                                : g_strdup_printf("! %s", m->info->problem
                                                                                              ? m->info->problem
                                                                                              : "not supported");
        printf("%-12s %-48s %8s %-14s %s\n", m->app, m->name, params, m->info->format ? m->info->format : "?",
               state);
    }
    return 0;
}

static int
models_add(ModelsArgs *a, const char *which, GError **error)
{
    g_autoptr(GPtrArray) list = hearth_found_scan(a->dir);
    for (guint i = 0; i < list->len; i++) {
        HearthFoundModel *m = list->pdata[i];
        if (strcmp(m->name, which) != 0)
            continue;
        if (!hearth_found_model_usable(m)) {
            g_set_error(error, HEARTH_MODELS_ERROR, HEARTH_MODELS_ERROR_FORMAT, "%s (%s) cannot run here: %s", which,
                        m->app, m->info->problem ? m->info->problem : "not supported");
            return 1;
        }
        g_autofree char *path = hearth_found_add(m, a->dir, a->name, error);
        if (!path)
            return 1;
        printf("%s\n", path);
        return 0;
    }
    g_set_error(error, HEARTH_MODELS_ERROR, HEARTH_MODELS_ERROR_NOT_FOUND,
                "no model named '%s' found (hearth-cli models found lists them)", which);
    return 1;
}

static void
on_import_progress(guint64 done, guint64 total, gpointer user_data)
{
    gboolean tty = GPOINTER_TO_INT(user_data);
    static int last = -1;
    int pct = total ? (int)(100.0 * (double)done / (double)total) : 100;
    if (tty) {
        g_autofree char *d = g_format_size(done), *t = g_format_size(total);
        fprintf(stderr, "\rimport: %3d%% %s of %s   ", pct, d, t);
        if (done >= total)
            fputc('\n', stderr);
    } else if (pct / 10 != last / 10 || done >= total) {
        if (pct != last)
            fprintf(stderr, "import: %d%%\n", pct);
    }
    last = pct;
}

int
hr_cli_models(int argc, char **argv)
{
    ModelsArgs a = { 0 };
    a.ctx = 4096;
    GOptionEntry entries[] = {
        { "dir", 'd', 0, G_OPTION_ARG_FILENAME, &a.dir,
          "Models dir (default $HEARTH_MODELS_DIR or ~/.local/share/io.github.hearthchat.Hearth/models)", "DIR" },
        { "json", 0, 0, G_OPTION_ARG_NONE, &a.json, "list, recommended: JSON output", NULL },
        { "ctx", 0, 0, G_OPTION_ARG_INT, &a.ctx, "list: context length of the memory estimate (default 4096)", "N" },
        { "name", 'n', 0, G_OPTION_ARG_STRING, &a.name, "import, add: the name to give the model", "NAME" },
        { NULL },
    };
    g_autoptr(GOptionContext) octx =
        g_option_context_new(
        "list | delete NAME | import DIR | rename OLD NEW | recommended | found | add FOUND — installed models");
    g_option_context_add_main_entries(octx, entries, NULL);
    g_autoptr(GError) error = NULL;
    int rc = 2;
    if (!g_option_context_parse(octx, &argc, &argv, &error)) {
        fprintf(stderr, "hearth-cli models: %s\n", error->message);
        goto out;
    }
    if (argc < 2) {
        fprintf(stderr, "hearth-cli models: give an action: list, delete, import, rename, recommended, found or add\n");
        goto out;
    }
    const char *action = argv[1];
    if (a.ctx <= 0) {
        fprintf(stderr, "hearth-cli models: --ctx must be positive\n");
        goto out;
    }
    if (strcmp(action, "list") == 0 && argc == 2) {
        rc = models_list(&a);
    } else if (strcmp(action, "delete") == 0 && argc == 3) {
        rc = hearth_models_delete(a.dir, argv[2], &error) ? 0 : 1;
    } else if (strcmp(action, "rename") == 0 && argc == 4) {
        rc = hearth_models_rename(a.dir, argv[2], argv[3], &error) ? 0 : 1;
    } else if (strcmp(action, "import") == 0 && argc == 3) {
        g_autofree char *path = hearth_models_import(argv[2], a.dir, a.name, on_import_progress,
                                                     GINT_TO_POINTER(isatty(2) != 0), NULL, &error);
        rc = path ? 0 : 1;
        if (path)
            printf("%s\n", path);
    } else if (strcmp(action, "found") == 0 && argc == 2) {
        rc = models_found(&a);
    } else if (strcmp(action, "add") == 0 && argc == 3) {
        rc = models_add(&a, argv[2], &error);
    } else if (strcmp(action, "recommended") == 0 && argc == 2) {
        g_autoptr(GPtrArray) list = hearth_models_load_recommended(NULL, &error);
        rc = list ? 0 : 1;
        for (guint i = 0; list && !a.json && i < list->len; i++) {
            HearthRecommendedModel *m = list->pdata[i];
            g_autofree char *size = g_format_size(m->size_bytes);
            printf("%-40s %-15s ~%-9s %s%s\n", m->repo_id, m->format, size, m->description,
                   m->gated ? " (gated: needs a token)" : "");
        }
        if (list && a.json) {
            g_autoptr(JsonBuilder) b = json_builder_new();
            json_builder_begin_array(b);
            for (guint i = 0; i < list->len; i++) {
                HearthRecommendedModel *m = list->pdata[i];
                json_builder_begin_object(b);
                hr_cli_json_str(b, "repo_id", m->repo_id);
                hr_cli_json_str(b, "name", m->name);
                hr_cli_json_str(b, "format", m->format);
                hr_cli_json_str(b, "description", m->description);
                hr_cli_json_int(b, "size_bytes", (gint64)m->size_bytes);
                hr_cli_json_int(b, "params", (gint64)m->params);
                hr_cli_json_int(b, "min_memory_bytes", (gint64)m->min_memory_bytes);
                json_builder_set_member_name(b, "gated");
                json_builder_add_boolean_value(b, m->gated);
                json_builder_end_object(b);
            }
            json_builder_end_array(b);
            hr_cli_json_print(b);
        }
    } else {
        fprintf(stderr, "hearth-cli models: usage: models list | delete NAME | import DIR | rename OLD NEW | "
                        "recommended | found | add FOUND\n");
        goto out;
    }
    if (rc != 0 && error)
        fprintf(stderr, "hearth-cli models %s: %s\n", action, error->message);
out:
    g_free(a.dir);
    g_free(a.name);
    return rc;
}
