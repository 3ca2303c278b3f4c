/* hearth-models.h — the installed models: where they live, what each one is
 * (architecture, parameter count, format, size, memory needed), and import,
 * rename and delete. Plain GLib/GIO, no GTK: the window, hearth-cli and the
 * tests share it.
 *
 * The models dir is `$HEARTH_MODELS_DIR`, else `g_get_user_data_dir()/<app id>/models` (the folder the window uses);
 * every function that takes a `dir` uses that default when it is NULL. A model
 * is a sub-directory in Hugging Face layout (config.json, *.safetensors, the
 * tokenizer files). Names starting with '.' are ours and never listed as models: `.partial/` holds
 * downloads in progress (they resume), `.work/` imports, deletes and quantizations in progress.
 */
#pragma once

#include <gio/gio.h>

#include "model-config.h"

G_BEGIN_DECLS

#define HEARTH_MODELS_ERROR (hearth_models_error_quark())
GQuark hearth_models_error_quark(void);

typedef enum {
    HEARTH_MODELS_ERROR_INVALID_NAME,  /* empty, '/', leading '.', too long */
    HEARTH_MODELS_ERROR_NOT_FOUND,     /* no such model */
    HEARTH_MODELS_ERROR_EXISTS,        /* the target name is taken */
    HEARTH_MODELS_ERROR_NOT_A_MODEL,   /* no config.json or no *.safetensors */
    HEARTH_MODELS_ERROR_FORMAT,        /* config.json / safetensors unreadable */
} HearthModelsError;

/* One installed (or importable) model. All strings owned by the struct. */
typedef struct {
    char *name;          /* directory name */
    char *path;          /* absolute path */
    char *architecture;  /* config.json architectures[0], else model_type; NULL if neither */
    char *model_type;    /* config.json model_type or NULL */
    char *format;        /* "FP16", "BF16", "FP32", "AWQ 4-bit g128", "GPTQ (unsupported)"… */
    char *source_repo;   /* Hugging Face repo id it was downloaded from, or NULL */
    char *linked_from;   /* the app whose files it links to ("Ollama", …: hearth-found.h), or NULL: its own copy */
    guint64 n_params;    /* sum of numel (AWQ qweight: 8 per int32; qzeros/scales not counted) */
    guint64 weights_bytes; /* bytes of all tensors in the safetensors files */
    guint64 size_on_disk;  /* apparent size of every file under the dir */
    int n_layers;        /* num_hidden_layers (0 when unknown) */
    int n_kv_heads;      /* num_key_value_heads, defaulting to num_attention_heads */
    int head_dim;        /* head_dim or hidden_size / num_attention_heads */
    int max_context;     /* max_position_embeddings (0 when unknown) */
    gboolean supported;  /* the engine's config parser accepts it */
    HrModelConfig *config; /* what that parser made of it (NULL when not supported) */
    char *problem;       /* why it cannot be used (not supported, bad weights), or NULL */
} HearthModelInfo;

void hearth_model_info_free(HearthModelInfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HearthModelInfo, hearth_model_info_free)

/* The default models dir (see above). Caller frees. */
char *hearth_models_default_dir(void);
/* dir if non-NULL, else the default. Caller frees. */
char *hearth_models_resolve_dir(const char *dir);
/* NULL when name is a usable model directory name; else why not (static string). */
const char *hearth_models_check_name(const char *name);

/* Inspect one model directory. Reads config.json and the safetensors
 * headers (mmap, no weights read). A directory that is a model but cannot
 * run (unknown architecture, bad weights) still gives an info with
 * `problem` set; one without config.json or weights is an error. */
HearthModelInfo *hearth_model_info_load(const char *path, GError **error);
/* The same for one GGUF file whatever its name (Ollama's blobs have no .gguf suffix). */
HearthModelInfo *hearth_model_info_load_gguf(const char *file, GError **error);

/* Every model in the models dir, sorted by name (GPtrArray of
 * HearthModelInfo, with its free function). A missing dir is an empty list.
 * Sub-directories that are not models are skipped, except a linked model whose
 * files are gone: it is listed with the problem, to be deleted. */
GPtrArray *hearth_models_list(const char *dir, GError **error);

/* Bytes of the FP16 KV cache for ctx tokens: 2·layers·kv_heads·head_dim·ctx·2. */
guint64 hearth_models_kv_cache_bytes(int n_layers, int n_kv_heads, int head_dim, int ctx);
/* The model's: the engine's figure where it parses the config (its sliding-window layers keep rings of
 * fewer entries), else the formula above. */
guint64 hearth_model_info_kv_bytes(const HearthModelInfo *info, int ctx);
/* Memory needed to run the model at context ctx: weights + KV cache (the
 * activations and logits are small beside them and not counted). */
guint64 hearth_model_info_memory_needed(const HearthModelInfo *info, int ctx);
/* Whether it fits in available_bytes of device memory at context ctx. */
gboolean hearth_model_info_fits(const HearthModelInfo *info, int ctx, guint64 available_bytes);

/* Progress of an import: bytes copied so far of total (stop with the cancellable). */
typedef void (*HearthModelsCopyProgress)(guint64 done, guint64 total, gpointer user_data);

/* Copy the model folder src into the models dir under name (NULL = basename
 * of src). The copy goes to dir/.partial/ first and is renamed into place
 * when complete, so a failure or cancellation leaves no half model. Returns
 * the installed path (caller frees) or NULL with error. Runs off the main
 * thread in the GUI. */
char *hearth_models_import(const char *src, const char *dir, const char *name,
                           HearthModelsCopyProgress progress, gpointer user_data,
                           GCancellable *cancellable, GError **error);
gboolean hearth_models_rename(const char *dir, const char *old_name, const char *new_name, GError **error);
gboolean hearth_models_delete(const char *dir, const char *name, GError **error);

/* The models folder, there to write in: the default one is made (with its parents) when missing; another
 * one only when the folder it goes in is there and it is not on a drive that is not mounted
 * (HEARTH_MODELS_ERROR_NOT_FOUND otherwise: a drive that is not connected). Import, download and the
 * quantization wizard call it before they write. */
gboolean hearth_models_ensure_dir(const char *dir, GError **error);

/* The mount point of the file system table (fstab; $LIBMOUNT_FSTAB) that the absolute path lies at or below
 * when nothing is mounted there now: a drive that is not connected, whose empty mount point is still there.
 * NULL when path is on a mounted file system (the root's entry never counts). */
char *hearth_models_unmounted_drive(const char *path);

/* A chosen models folder that is not there: missing, not a folder, or on a drive that is not mounted. */
gboolean hearth_models_dir_missing(const char *dir);

/* Remove a file or directory tree (does not follow symlinks). A missing path
 * is not an error. */
gboolean hearth_models_remove_tree(const char *path, GError **error);

/* Work that does not resume (an import, a delete, a quantization) happens in a folder of its own, which
 * its process holds (flock) while it works and marks as ours (a `.hearth-work` file in it). What a killed
 * process left is then told from work going on in another process: a sweep removes the first, never the
 * second, and never a folder it did not make. The models folder's work lives in `<models>/.work/`; downloads
 * resume, and live in `.partial/` instead. */
typedef struct HearthWorkDir HearthWorkDir;
/* Creates `parent/<prefix>XXXXXX` (and parent), held and marked. */
HearthWorkDir *hearth_work_dir_new(const char *parent, const char *prefix, GError **error);
const char *hearth_work_dir_path(const HearthWorkDir *w);
/* Removes the folder with whatever is still in it (nothing that was renamed out) and lets it go. */
void hearth_work_dir_free(HearthWorkDir *w);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HearthWorkDir, hearth_work_dir_free)
/* Lets it go and keeps it, unmarked, with what it holds: a result that could not be put in place. */
void hearth_work_dir_keep(HearthWorkDir *w);
/* Removes the marked folders `parent/<prefix>*` no process holds, and the empty unmarked ones named as
 * hearth_work_dir_new names them that are ten minutes old (a process killed before it marked its folder);
 * returns how many. */
guint hearth_work_dir_sweep(const char *parent, const char *prefix);
/* `<models>/.work`, and the sweep of it (the app runs it when it starts). */
char *hearth_models_work_root(const char *dir);
/* A work folder of the models folder: `<models>/.work/<kind>-<name>-XXXXXX` ("import", "quantize", …). */
HearthWorkDir *hearth_models_work_new(const char *dir, const char *kind, const char *name, GError **error);
guint hearth_models_sweep_work(const char *dir);
void hearth_models_sweep_work_async(const char *dir); /* on a worker thread */

/* The curated list of models the app suggests (data/models/recommended.json). */
typedef struct {
    char *repo_id;       /* "owner/name" on Hugging Face */
    char *name;          /* display name */
    char *description;   /* one line */
    char *format;        /* "AWQ 4-bit g128", "BF16", … */
    guint64 size_bytes;  /* approximate download size */
    guint64 params;      /* approximate parameter count */
    guint64 min_memory_bytes; /* approximate memory to run at 4096 tokens (weights + KV cache) */
    gboolean gated;      /* needs an access token after accepting the license */
} HearthRecommendedModel;

void hearth_recommended_model_free(HearthRecommendedModel *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HearthRecommendedModel, hearth_recommended_model_free)

/* Load the curated list from path, or when NULL from
 * `<system data dir>/hearth/models/recommended.json` (first found), else the
 * source tree's data/models/recommended.json. GPtrArray of
 * HearthRecommendedModel with its free function. */
GPtrArray *hearth_models_load_recommended(const char *path, GError **error);

G_END_DECLS
