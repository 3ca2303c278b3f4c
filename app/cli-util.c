/* cli-util.c — small helpers shared by the hearth-cli subcommands. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "hearth-cli.h"
#include "hearth-models.h"
#include "hr-json.h"

char *
hr_cli_read_file(const char *path, size_t *len, GError **error)
{
    if (strcmp(path, "-") != 0) {
        char *data = NULL;
        gsize n = 0;
        if (!g_file_get_contents(path, &data, &n, error))
            return NULL;
        if (len)
            *len = n;
        return data;
    }
    GString *s = g_string_new(NULL);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, stdin)) > 0)
        g_string_append_len(s, buf, (gssize)n);
    if (ferror(stdin)) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "reading stdin: %s", g_strerror(errno));
        g_string_free(s, TRUE);
        return NULL;
    }
    if (len)
        *len = s->len;
    return g_string_free(s, FALSE);
}

void
hr_cli_json_str(JsonBuilder *b, const char *key, const char *value)
{
    json_builder_set_member_name(b, key);
    if (value)
        json_builder_add_string_value(b, value);
    else
        json_builder_add_null_value(b);
}

void
hr_cli_json_int(JsonBuilder *b, const char *key, gint64 value)
{
    json_builder_set_member_name(b, key);
    json_builder_add_int_value(b, value);
}

void
hr_cli_json_double(JsonBuilder *b, const char *key, double value)
{
    json_builder_set_member_name(b, key);
    json_builder_add_double_value(b, value);
}

void
hr_cli_json_print(JsonBuilder *b)
{
    g_autoptr(JsonNode) root = json_builder_get_root(b);
    g_autofree char *s = hr_json_to_text(root, true, NULL);
    printf("%s\n", s);
}

gboolean
hr_cli_resolve_model(char **model, GError **error)
{
    const char *arg = *model;
    if (!arg || !*arg) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "the model is an empty name");
        return FALSE;
    }
    /* A path that exists wins, whatever the models folder holds; one with a
     * '/' is a path in any case (the loader says what is missing). */
    if (g_file_test(arg, G_FILE_TEST_EXISTS) || strchr(arg, G_DIR_SEPARATOR))
        return TRUE;
    g_autofree char *root = hearth_models_resolve_dir(NULL);
    if (hearth_models_check_name(arg) == NULL) {
        g_autofree char *path = g_build_filename(root, arg, NULL);
        if (g_file_test(path, G_FILE_TEST_IS_DIR) ||
            (g_str_has_suffix(arg, ".gguf") && g_file_test(path, G_FILE_TEST_IS_REGULAR))) {
            g_free(*model);
            *model = g_steal_pointer(&path);
            return TRUE;
        }
    }
    g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT,
                "'%s' is neither a model directory nor a model in %s "
                "(run 'hearth-cli models list' to see the names)", arg, root);
    return FALSE;
}

void
hr_cli_sampling_entries(HrCliSampling *s, GOptionEntry *e)
{
    const GOptionEntry entries[] = {
        { "temp", 0, 0, G_OPTION_ARG_DOUBLE, &s->temp, "Temperature; 0 = greedy", "T" },
        { "top-k", 0, 0, G_OPTION_ARG_INT, &s->top_k, "Keep the K most likely tokens (0 = off)", "K" },
        { "top-p", 0, 0, G_OPTION_ARG_DOUBLE, &s->top_p, "Nucleus sampling mass (1 = off)", "P" },
        { "min-p", 0, 0, G_OPTION_ARG_DOUBLE, &s->min_p, "Drop tokens below P x the best one's probability", "P" },
        { "repeat-penalty", 0, 0, G_OPTION_ARG_DOUBLE, &s->rep, "Repetition penalty (1 = off)", "R" },
        { NULL },
    };
    memcpy(e, entries, sizeof entries);
}

bool
hr_cli_sampling_check(const HrCliSampling *s, const char *pfx)
{
    if (s->top_k < 0 || !(s->temp >= 0 && s->temp <= 1e6) || !(s->top_p > 0 && s->top_p <= 1) ||
        !(s->min_p >= 0 && s->min_p <= 1) || !(s->rep > 0 && s->rep <= 1e6)) {
        fprintf(stderr, "%s: a sampling option is out of range (--temp 0..1e6, --top-p (0, 1], --min-p [0, 1], "
                        "--repeat-penalty > 0, --top-k >= 0)\n", pfx);
        return false;
    }
    return true;
}

void
hr_cli_sampling_params(const HrCliSampling *s, guint64 seed, HrSamplerParams *sp)
{
    hr_sampler_params_init(sp);
    sp->temperature = (float)s->temp;
    sp->top_k = s->top_k;
    sp->top_p = (float)s->top_p;
    sp->min_p = (float)s->min_p;
    sp->repetition_penalty = (float)s->rep;
    sp->seed = seed;
}
