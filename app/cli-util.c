/* cli-util.c — small helpers shared by the hearth-cli subcommands. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "hearth-cli.h"
#include "hearth-models.h"

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
    g_autoptr(JsonGenerator) gen = json_generator_new();
    json_generator_set_root(gen, root);
    json_generator_set_pretty(gen, TRUE);
    g_autofree char *s = json_generator_to_data(gen, NULL);
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
        if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
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
