/* hearth-quantize-wizard.h — "Make a 4-bit copy": the one-click AWQ
 * quantization wizard. Four pages: pick the source model (an installed
 * FP16/BF16/FP32 model or a folder), options (method, group size,
 * calibration text, advanced: samples and sequence length), the run
 * (per-layer progress, step, ETA, device, peak memory, Cancel) and the
 * result (sizes, time, perplexity of original vs quantized on a short
 * built-in text, one prompt answered by both, "Start Chatting").
 *
 * The quantizer runs on a worker thread into <models>/.partial/<name> and
 * the folder is renamed into <models>/<name> only when everything was
 * written, so a cancel, a failure or a crash never leaves a half-written
 * model among the installed ones. */
#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

#define HEARTH_TYPE_QUANTIZE_WIZARD (hearth_quantize_wizard_get_type())
G_DECLARE_FINAL_TYPE(HearthQuantizeWizard, hearth_quantize_wizard, HEARTH, QUANTIZE_WIZARD, AdwWindow)

/* models_dir: where installed models live and the result goes.
 * Emits "model-ready" (const char *dir) when the user clicks
 * "Start Chatting". */
HearthQuantizeWizard *hearth_quantize_wizard_new(GtkWindow *parent, const char *models_dir);

/* Select a source folder directly (tests, drag and drop). */
void hearth_quantize_wizard_set_source(HearthQuantizeWizard *self, const char *dir);

G_END_DECLS
