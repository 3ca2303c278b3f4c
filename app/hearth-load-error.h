/* hearth-load-error.h — a model that failed to load, said in plain words.
 *
 * The engine's messages are exact and technical ("…/model.safetensors:
 * tensor 'x': data_offsets [a, b] run past the end of the n-byte data area
 * (the file is truncated or corrupt)"); the window shows what it means and
 * what to do ("The model file is incomplete. Download it again.") and keeps
 * the engine's message behind "Technical Details". */
#pragma once

#include <glib.h>

/* *summary: what is wrong; *advice: what to do (both translated, g_free). */
void hearth_load_error_describe(const char *message, char **summary, char **advice);

/* The quantization wizard's line for a failed run (translated, g_free):
 * for want of memory (out_of_memory: the quantizer's HR_ERR_NOMEM) or of
 * disk space, what to change, in a line short enough to be read whole (the
 * quantizer's message, which names the device and the call or the file,
 * goes to the line's tooltip); otherwise the quantizer's message. */
char *hearth_quantize_error_text(gboolean out_of_memory, const char *message);
