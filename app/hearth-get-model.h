/* hearth-get-model.h — the "Get a Model" page: what the window shows while
 * no model is installed. The curated models (data/models/recommended.json)
 * each with its size, a "fits this computer" badge (the memory it needs
 * against this computer's RAM) and a Download button whose progress shows
 * in the row; below, the other ways in: open a model folder, the Models
 * window. Downloads go through hearth-hub.h into the models folder. */
#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

#define HEARTH_TYPE_GET_MODEL (hearth_get_model_get_type())
G_DECLARE_FINAL_TYPE(HearthGetModel, hearth_get_model, HEARTH, GET_MODEL, AdwBin)

/* Signal "model-ready" (const char *path): a download finished; the model is
 * installed at path. models_dir NULL = the default models folder. */
HearthGetModel *hearth_get_model_new(const char *models_dir);

G_END_DECLS
