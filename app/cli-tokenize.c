/* cli-tokenize.c — `hearth-cli tokenize` and `hearth-cli detokenize`.
 *
 *   hearth-cli tokenize -m DIR (--text T | -f FILE) [--no-special] [--split-special]
 *       Prints the ids of the text on one line, separated by single spaces,
 *       followed by a newline. FILE is read byte for byte ("-" = stdin).
 *       By default special tokens are added (BOS etc., as the tokenizer's
 *       post-processor or tokenizer_config.json add_bos_token say) and special
 *       tokens written in the text (e.g. "<|im_start|>") are recognised, as
 *       Hugging Face's tokenizer(text) does.
 *       --no-special     add no special tokens (HF add_special_tokens=False);
 *                        special tokens written in the text are still matched.
 *       --split-special  do not match special tokens written in the text:
 *                        tokenize them as plain text (HF split_special_tokens).
 *
 *   hearth-cli detokenize -m DIR [--skip-special] [--stream] [--] ID...
 *       Prints the decoded text exactly, with no newline added.
 *       --skip-special   drop special tokens (HF skip_special_tokens=True).
 *       --stream         decode through the streaming detokenizer (one id at a
 *                        time); the output is identical.
 *
 * Exit status: 0 on success, 1 when the tokenizer cannot be loaded or the
 * input cannot be read, 2 on a usage error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "hearth-cli.h"
#include "tokenizer.h"

int hr_cli_tokenize(int argc, char **argv);
int hr_cli_detokenize(int argc, char **argv);

static HrTokenizer *
load(const char *cmd, const char *dir)
{
    HrTokenizer *t = NULL;
    HrError err = { 0 };
    if (hr_tokenizer_load(dir, &t, &err) != HR_OK) {
        fprintf(stderr, "hearth-cli %s: %s\n", cmd, err.message);
        return NULL;
    }
    return t;
}

static bool
read_all(const char *path, char **data, size_t *len)
{
    g_autoptr(GError) error = NULL;
    *data = hr_cli_read_file(path, len, &error);
    if (!*data)
        fprintf(stderr, "hearth-cli tokenize: %s\n", error->message);
    return *data != NULL;
}

int
hr_cli_tokenize(int argc, char **argv)
{
    g_autofree char *dir = NULL, *text = NULL, *file = NULL;
    gboolean no_special = FALSE, split_special = FALSE;
    GOptionEntry entries[] = {
        { "model", 'm', 0, G_OPTION_ARG_FILENAME, &dir, "Model or tokenizer directory", "DIR" },
        { "text", 't', 0, G_OPTION_ARG_STRING, &text, "Text to tokenize", "TEXT" },
        { "file", 'f', 0, G_OPTION_ARG_FILENAME, &file, "File to tokenize (- for stdin)", "FILE" },
        { "no-special", 0, 0, G_OPTION_ARG_NONE, &no_special, "Add no BOS/EOS or other special tokens", NULL },
        { "split-special", 0, 0, G_OPTION_ARG_NONE, &split_special,
          "Tokenize special tokens written in the text as plain text", NULL },
        { NULL },
    };
    g_autoptr(GOptionContext) octx = g_option_context_new("— print the token ids of a text");
    g_option_context_add_main_entries(octx, entries, NULL);
    g_autoptr(GError) error = NULL;
    if (!g_option_context_parse(octx, &argc, &argv, &error)) {
        fprintf(stderr, "hearth-cli tokenize: %s\n", error->message);
        return 2;
    }
    if (!dir || (!text == !file) || argc > 1) {
        fprintf(stderr, "hearth-cli tokenize: need -m DIR and exactly one of --text or -f\n");
        return 2;
    }
    if (!hr_cli_resolve_model(&dir, &error)) {
        fprintf(stderr, "hearth-cli tokenize: %s\n", error->message);
        return 1;
    }
    char *data = NULL;
    size_t len = 0;
    if (file) {
        if (!read_all(file, &data, &len))
            return 1;
    } else {
        data = g_strdup(text);
        len = strlen(text);
    }
    g_autoptr(HrTokenizer) t = load("tokenize", dir);
    if (!t) {
        g_free(data);
        return 1;
    }
    int32_t *ids = NULL;
    size_t n = 0;
    HrError err = { 0 };
    HrStatus st = hr_tokenizer_encode(t, data, len, !no_special, !split_special, &ids, &n, &err);
    g_free(data);
    if (st != HR_OK) {
        fprintf(stderr, "hearth-cli tokenize: %s\n", err.message);
        return 1;
    }
    GString *out = g_string_sized_new(n * 7 + 2);
    for (size_t i = 0; i < n; i++)
        g_string_append_printf(out, i ? " %d" : "%d", ids[i]);
    g_string_append_c(out, '\n');
    fwrite(out->str, 1, out->len, stdout);
    g_string_free(out, TRUE);
    g_free(ids);
    return fflush(stdout) == 0 ? 0 : 1;
}

int
hr_cli_detokenize(int argc, char **argv)
{
    g_autofree char *dir = NULL;
    gboolean skip = FALSE, streaming = FALSE;
    GOptionEntry entries[] = {
        { "model", 'm', 0, G_OPTION_ARG_FILENAME, &dir, "Model or tokenizer directory", "DIR" },
        { "skip-special", 0, 0, G_OPTION_ARG_NONE, &skip, "Leave out special tokens", NULL },
        { "stream", 0, 0, G_OPTION_ARG_NONE, &streaming, "Decode one id at a time (same output)", NULL },
        { NULL },
    };
    g_autoptr(GOptionContext) octx = g_option_context_new("ID... — print the text of token ids");
    g_option_context_add_main_entries(octx, entries, NULL);
    g_autoptr(GError) error = NULL;
    if (!g_option_context_parse(octx, &argc, &argv, &error)) {
        fprintf(stderr, "hearth-cli detokenize: %s\n", error->message);
        return 2;
    }
    if (!dir) {
        fprintf(stderr, "hearth-cli detokenize: need -m DIR\n");
        return 2;
    }
    if (!hr_cli_resolve_model(&dir, &error)) {
        fprintf(stderr, "hearth-cli detokenize: %s\n", error->message);
        return 1;
    }
    g_autoptr(GArray) ids = g_array_new(FALSE, FALSE, sizeof(int32_t));
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            continue;
        char *end = NULL;
        errno = 0;
        long v = strtol(argv[i], &end, 10);
        if (errno || !*argv[i] || *end || v < INT32_MIN || v > INT32_MAX) {
            fprintf(stderr, "hearth-cli detokenize: '%s' is not a token id\n", argv[i]);
            return 2;
        }
        int32_t id = (int32_t)v;
        g_array_append_val(ids, id);
    }
    g_autoptr(HrTokenizer) t = load("detokenize", dir);
    if (!t)
        return 1;
    GString *out = g_string_new(NULL);
    if (streaming) {
        g_autoptr(HrDetokenizer) d = hr_detokenizer_new(t, skip);
        for (guint i = 0; i < ids->len; i++)
            hr_detokenizer_push(d, g_array_index(ids, int32_t, i), out);
        hr_detokenizer_flush(d, out);
    } else {
        hr_tokenizer_decode_append(t, (const int32_t *)ids->data, ids->len, skip, out);
    }
    fwrite(out->str, 1, out->len, stdout);
    g_string_free(out, TRUE);
    return fflush(stdout) == 0 ? 0 : 1;
}
