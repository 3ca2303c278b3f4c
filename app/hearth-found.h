/* hearth-found.h — models other apps have already put on this computer, and
 * adding them to Hearth without copying a byte.
 *
 * Looked for where each app keeps them (no other place is searched):
 *   Ollama        $OLLAMA_MODELS, else ~/.ollama/models and /usr/share/ollama/.ollama/models
 *                 (its Linux service): manifests/<host>/<namespace>/<model>/<tag>, whose
 *                 "application/vnd.ollama.image.model" layer is a GGUF file in blobs/
 *   LM Studio     ~/.lmstudio/models and ~/.cache/lm-studio/models: <publisher>/<repo>/<file>.gguf
 *   Hugging Face  the hub cache ($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub):
 *                 a snapshot (refs/main, else the newest) with config.json and safetensors, or its .gguf files
 *   GPT4All       ~/.local/share/nomic.ai/GPT4All/<file>.gguf
 *   llama.cpp     $LLAMA_CACHE, else ~/.cache/llama.cpp/<file>.gguf
 *   Jan           ~/.local/share/Jan/data/llamacpp/models/<id>/<file>.gguf and ~/jan/models/<id>/<file>.gguf
 *   Downloads     the Downloads folder (XDG's, else ~/Downloads) and its sub-folders: .gguf files and Hugging
 *                 Face folders (config.json), named for the folder as the user's language calls it
 * (~/.cache and ~/.local/share: $XDG_CACHE_HOME and $XDG_DATA_HOME, or inside Flatpak the host's,
 * $HOST_XDG_CACHE_HOME and $HOST_XDG_DATA_HOME.) Vision projectors (mmproj) and the parts of a split
 * GGUF are passed over; so is a file the same as one already found (Ollama's tags share blobs).
 *
 * Adding one (hearth_found_add) makes a model folder in the models folder that links to its files
 * (symbolic links) and says so in .hearth-source.json ("linked_from"): it takes no space, deleting it
 * removes only the links, and the other app keeps its files. Plain GLib/GIO, no GTK. */
#pragma once

#include "hearth-models.h"

G_BEGIN_DECLS

typedef struct {
    char *app;              /* "Ollama", "LM Studio", "Hugging Face", "GPT4All", "llama.cpp", "Jan", "Downloads" */
    char *name;             /* what that app calls it: "llama3.2:3b", "Qwen/Qwen2.5-0.5B-Instruct", … */
    char *path;             /* the GGUF file, or the Hugging Face model folder */
    HearthModelInfo *info;  /* what it is; info->problem says why it cannot run here */
    char *added;            /* the models folder's path that links it already, or NULL */
} HearthFoundModel;

void hearth_found_model_free(HearthFoundModel *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HearthFoundModel, hearth_found_model_free)

/* Whether Hearth can run it (supported, no problem). */
gboolean hearth_found_model_usable(const HearthFoundModel *m);

/* Every model found (GPtrArray of HearthFoundModel with its free function), by app then name; `added`
 * is looked up in models_dir (NULL: the default). Reads the models' headers, not their weights: run it
 * off the main thread (hearth_found_scan_async). */
GPtrArray *hearth_found_scan(const char *models_dir);
void hearth_found_scan_async(const char *models_dir, GCancellable *cancellable, GAsyncReadyCallback callback,
                             gpointer user_data);
GPtrArray *hearth_found_scan_finish(GAsyncResult *result, GError **error);

/* A usable name for it in the models folder: "llama3.2-3b", "Qwen2.5-0.5B-Instruct". Caller frees. */
char *hearth_found_model_folder_name(const HearthFoundModel *m);

/* Adds it to the models folder (links, no copy) under name (NULL: hearth_found_model_folder_name, with
 * " 2", " 3"… when taken). When it was added already, returns that folder. Returns the model's path in
 * the models folder (caller frees), or NULL with error. */
char *hearth_found_add(const HearthFoundModel *m, const char *models_dir, const char *name, GError **error);

/* Whether the model folder links to another app's files that are no longer there (a scan may link it again:
 * hearth_found_scan relinks such folders to what the app now keeps under the same name). */
gboolean hearth_found_link_gone(const char *model_dir);

G_END_DECLS
