/* hearth-model-manager.h — the Models window: installed models with their
 * format, size and whether each fits this computer's memory; import a
 * folder, rename, delete, open the folder; download from Hugging Face by
 * repository id (progress, speed, ETA, pause/resume) or from the curated
 * list in data/models/recommended.json; an access token for gated models
 * kept in the system keyring. The listing and file work is hearth-models.h,
 * the downloads hearth-hub.h; this file is only the window. */
#pragma once

#include <adwaita.h>

#include "hearth-found.h"

G_BEGIN_DECLS

#define HEARTH_TYPE_MODEL_MANAGER (hearth_model_manager_get_type())
G_DECLARE_FINAL_TYPE(HearthModelManager, hearth_model_manager, HEARTH, MODEL_MANAGER, AdwWindow)

/* Signals: "use-model" (const char *dir): chat with it;
 * "quantize-model" (const char *dir): open the wizard on it. */
HearthModelManager *hearth_model_manager_new(GtkWindow *parent, const char *models_dir);

/* "1.2 B parameters", "135 M parameters", "260 K parameters" (translated);
 * the wizard shows counts the same way. g_free the result. */
char *hearth_format_param_count(guint64 n);
/* Bytes of RAM of this computer (0 when unknown). */
guint64 hearth_host_memory_bytes(void);
/* " · about 3 min left" / " · about 40 s left" (translated) onto s; nothing
 * when eta_seconds < 0 (unknown). */
void hearth_append_eta(GString *s, double eta_seconds);

/* A found model's row subtitle: "From Ollama · GGUF Q4_K_M · 3.2 B parameters · 2.0 GB" (translated). */
char *hearth_found_describe(const HearthFoundModel *m);
/* "Also found, but Hearth cannot run them yet: gemma3:4b (gemma3), …", or NULL when every found model can
 * run (translated). */
char *hearth_found_unusable_text(GPtrArray *found);

G_END_DECLS
