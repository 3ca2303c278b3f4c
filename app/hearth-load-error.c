/* hearth-load-error.c — see hearth-load-error.h. */
#include "hearth-load-error.h"

#include <errno.h>
#include <string.h>

#include <glib/gi18n.h>

static gboolean
has(const char *message, const char *part)
{
    return strstr(message, part) != NULL;
}

void
hearth_load_error_describe(const char *message, char **summary, char **advice)
{
    const char *m = message ? message : "";
    const char *s, *a;
    if (has(m, "tokenizer.json") && has(m, "No such file")) {
        s = _("This folder has no tokenizer.json: the model cannot read or write text without it.");
        a = _("Download the model again, or copy its tokenizer.json into the folder.");
    } else if (has(m, "config.json") && has(m, "No such file")) {
        s = _("This folder is not a model: it has neither a config.json nor a .gguf file.");
        a = _("Open the folder that holds config.json and the .safetensors files, or one with a .gguf file.");
    } else if (has(m, "truncated") || has(m, "run past the end") || has(m, "shorter than") || has(m, "incomplete")) {
        s = _("The model file is incomplete.");
        a = _("Download it again: the download probably stopped early.");
    } else if (has(m, "emory") || has(m, "allocate")) {
        s = _("There is not enough memory for this model.");
        a = _("Close other programs, choose a smaller model, or lower the context length in Preferences.");
    } else if (has(m, "not supported") || has(m, "does not run") || has(m, "does not read") ||
               has(m, "unsupported")) {
        s = _("Hearth cannot run this model yet.");
        a = _("Choose another model; the technical details say what is missing.");
    } else if (has(m, "not a GGUF file") || has(m, "JSON") || has(m, "header") || has(m, "corrupt")) {
        s = _("The model’s files are damaged or are not model files.");
        a = _("Download the model again, or open another one.");
    } else if (has(m, "No such file") || has(m, "no such directory")) {
        s = _("The model is no longer where it was.");
        a = _("It may have been moved or deleted; open it from its new place.");
    } else {
        s = _("The model could not be opened.");
        a = _("The technical details say why.");
    }
    *summary = g_strdup(s);
    *advice = g_strdup(a);
}

char *
hearth_quantize_error_text(gboolean out_of_memory, const char *message)
{
    const char *m = message ? message : "";
    if (out_of_memory)
        return g_strdup(_("Quantization failed: not enough memory for the search. Lower Samples or Sequence "
                          "Length under Advanced, or close programs that use much memory."));
    /* the quantizer's own check before it writes, or a write that found the disk full (the system's
     * words, in the same language as this message) */
    if (has(m, "not enough disk space") || has(m, g_strerror(ENOSPC)))
        return g_strdup(_("Quantization failed: the disk is full. Free some space where the new model goes, then "
                          "try again."));
    return g_strdup_printf(_("Quantization failed: %s"), m);
}
