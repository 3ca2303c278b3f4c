/* hearth-cli.h — the subcommands of hearth-cli, one file each. Each takes
 * its own argv (argv[0] = the command name) and returns the exit status. */
#pragma once

int hr_cli_generate(int argc, char **argv);   /* cli-generate.c */
int hr_cli_perplexity(int argc, char **argv); /* cli-perplexity.c */
int hr_cli_tokenize(int argc, char **argv);   /* cli-tokenize.c */
int hr_cli_detokenize(int argc, char **argv); /* cli-tokenize.c */
int hr_cli_template(int argc, char **argv);   /* cli-template.c */
int hr_cli_quantize(int argc, char **argv);   /* cli-quantize.c */
int hr_cli_bench(int argc, char **argv);      /* cli-bench.c */
int hr_cli_download(int argc, char **argv);   /* cli-download.c */
int hr_cli_models(int argc, char **argv);     /* cli-models.c */
int hr_cli_chat(int argc, char **argv);       /* cli-chat.c */

#include <stddef.h>

#include <glib.h>

/* The whole of a file, or of stdin when path is "-" (cli-util.c). len may
 * be NULL. g_free the result; NULL with error set on failure. */
char *hr_cli_read_file(const char *path, size_t *len, GError **error);

/* The model a -m (or -i) option names (cli-util.c): *model is kept when it
 * is a path that exists or has a '/' in it, else replaced by the folder of
 * that name in the models folder (hearth-models.h; `hearth-cli models list`
 * prints the names). FALSE with a one-line error saying how to see the
 * names otherwise. */
gboolean hr_cli_resolve_model(char **model, GError **error);

#include <json-glib/json-glib.h>

/* JSON output of the subcommands (cli-util.c): one member of the object
 * being built (a NULL string is written as null), and the finished
 * document pretty-printed on stdout. */
void hr_cli_json_str(JsonBuilder *b, const char *key, const char *value);
void hr_cli_json_int(JsonBuilder *b, const char *key, gint64 value);
void hr_cli_json_double(JsonBuilder *b, const char *key, double value);
void hr_cli_json_print(JsonBuilder *b);

#include <stdbool.h>

#include "sampler.h"

/* The sampling options generate and chat share: --temp, --top-k, --top-p,
 * --min-p, --repeat-penalty (each command keeps its own defaults and --seed). */
typedef struct {
    double temp, top_p, min_p, rep;
    int top_k;
} HrCliSampling;

/* entries: room for 6 (5 options and the terminator), pointing into s. */
void hr_cli_sampling_entries(HrCliSampling *s, GOptionEntry *entries);
/* Range check written so that NaN fails it; prints "PFX: ..." and returns
 * false when an option is out of range. */
bool hr_cli_sampling_check(const HrCliSampling *s, const char *pfx);
void hr_cli_sampling_params(const HrCliSampling *s, guint64 seed, HrSamplerParams *sp);
