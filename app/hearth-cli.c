/* hearth-cli — the command-line face of the engine, for scripting and tests.
 *
 *   hearth-cli --version
 *   hearth-cli devices
 *   hearth-cli generate -m DIR ...     (cli-generate.c)
 *   hearth-cli chat -m NAME|DIR        (cli-chat.c)
 *   hearth-cli perplexity -m DIR -f F  (cli-perplexity.c)
 *   hearth-cli tokenize / detokenize   (cli-tokenize.c)
 *   hearth-cli template                (cli-template.c)
 *   hearth-cli quantize -i DIR -o DIR  (cli-quantize.c)
 *   hearth-cli download owner/name     (cli-download.c)
 *   hearth-cli models list|delete|...  (cli-models.c)
 */
#include <locale.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "hearth-cli.h"
#include "hearth-config.h"
#include "hr-devices.h"

typedef int (*CommandFunc)(int argc, char **argv);

static int
cmd_devices(int argc, char **argv)
{
    g_autoptr(GOptionContext) octx = g_option_context_new("— list backends and the devices each sees");
    g_autoptr(GError) error = NULL;
    if (!g_option_context_parse(octx, &argc, &argv, &error)) {
        fprintf(stderr, "hearth-cli devices: %s\n", error->message);
        return 2;
    }
    g_autoptr(GString) out = g_string_new(NULL);
    hr_devices_report(out);
    fputs(out->str, stdout);
    return 0;
}

static const struct {
    const char *name;
    CommandFunc func;
    const char *summary;
} commands[] = {
    { "devices", cmd_devices, "List the backends built in and the devices each one sees" },
    { "generate", hr_cli_generate, "Generate text (or token ids) with a model" },
    { "chat", hr_cli_chat, "Chat with a model in the terminal (one line per message)" },
    { "perplexity", hr_cli_perplexity, "Perplexity of a model on a text file (non-overlapping windows)" },
    { "tokenize", hr_cli_tokenize, "Print the token ids of a text" },
    { "detokenize", hr_cli_detokenize, "Print the text of token ids" },
    { "template", hr_cli_template, "Print the chat-template rendering of a conversation" },
    { "quantize", hr_cli_quantize, "Write a 4-bit AWQ (GEMM layout) checkpoint of a model" },
    { "bench", hr_cli_bench, "Prefill and decode speed of a model, with the bandwidth roofline" },
    { "download", hr_cli_download, "Download a model from Hugging Face (resumable)" },
    { "models", hr_cli_models, "List, import, rename and delete installed models" },
};

static void
usage(FILE *f)
{
    fprintf(f, "Usage: hearth-cli COMMAND [OPTIONS]\n       hearth-cli --version\n\nCommands:\n");
    for (size_t i = 0; i < G_N_ELEMENTS(commands); i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nRun 'hearth-cli COMMAND --help' for a command's options.\n");
}

int
main(int argc, char **argv)
{
    setlocale(LC_ALL, "");
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
        printf("hearth-cli %s\n", HEARTH_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(commands); i++) {
        if (strcmp(argv[1], commands[i].name) == 0) {
            /* Hand the command its own argv with the command name as argv[0]. */
            return commands[i].func(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "hearth-cli: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
