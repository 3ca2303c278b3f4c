/* hearth-quantize-wizard.c — see hearth-quantize-wizard.h. */
#include "hearth-quantize-wizard.h"

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/resource.h>

#include <glib/gi18n.h>
#include <glib/gstdio.h>

#include "backend.h"
#include "chat.h"
#include "generate.h"
#include "hearth-hub.h"
#include "hearth-load-error.h"
#include "hearth-model-manager.h"
#include "hearth-models.h"
#include "hearth-config.h"
#include "model-config.h"
#include "model.h"
#include "quantize.h"
#include "safetensors.h"
#include "tokenizer.h"

/* The quick quality check's text: written for Hearth, plain English prose
 * of the kind every chat model has seen, and not part of the calibration
 * set (data/calibration), so it measures the quantized model, not its fit
 * to the calibration. */
static const char quality_text[] =
    "The old lighthouse stood at the end of a narrow spit of land, and for more than a hundred years its "
    "lamp had turned every night without fail. The keepers changed, the paint faded and was renewed, and "
    "the ships that passed grew larger and faster, but the light itself did not change. Children from the "
    "village would walk out along the stones on summer evenings to watch the beam sweep across the water. "
    "When the lamp was finally replaced by an automatic one, the last keeper stayed on in the cottage "
    "beside the tower. He said he could not sleep without the slow rhythm of the light passing over his "
    "window, and that the sea sounded different when no one was watching it.";

static const char quality_prompt[] = N_("In two sentences, why is the sky blue?");

enum { PAGE_SOURCE, PAGE_OPTIONS, PAGE_RUN, PAGE_DONE };

#define METHOD_SUBTITLE N_("AWQ protects the weights that matter most for the calibration text")

struct _HearthQuantizeWizard {
    AdwWindow parent_instance;

    char *models_dir;
    char *source;             /* the chosen source folder, validated */
    GtkStack *stack;
    GtkButton *back_button;
    AdwToastOverlay *toasts;

    /* source page */
    AdwPreferencesGroup *installed_group;
    GtkCheckButton *radio_group;   /* the first radio: others join its group */
    GPtrArray *source_rows;        /* AdwActionRow*, with "dir" data */
    AdwActionRow *folder_row;
    AdwEntryRow *repo_row;
    GtkButton *repo_button;
    GCancellable *download;
    GtkLabel *source_status;
    GtkButton *next_button;

    /* options page */
    AdwComboRow *method_row;
    AdwComboRow *group_row;
    AdwComboRow *calib_row;
    AdwActionRow *calib_file_row;
    char *calib_file;
    AdwEntryRow *name_row;
    GtkSpinButton *samples_spin;
    GtkSpinButton *seqlen_spin;
    GtkLabel *options_status;
    GtkButton *start_button;

    /* run page */
    GtkProgressBar *progress;
    GtkLabel *step_label;
    GtkLabel *eta_label;
    GtkLabel *device_label;
    GtkLabel *memory_label;
    GtkButton *cancel_button;

    /* done page */
    AdwStatusPage *done_status;
    GtkLabel *sizes_label;
    GtkLabel *time_label;
    GtkLabel *ppl_label;
    GtkLabel *answer_orig;
    GtkLabel *answer_quant;
    GtkButton *chat_button;

    struct Job *job;          /* the running job, NULL when idle */
    char *result_dir;
};

G_DEFINE_FINAL_TYPE(HearthQuantizeWizard, hearth_quantize_wizard, ADW_TYPE_WINDOW)

enum { SIGNAL_MODEL_READY, N_SIGNALS };
static guint signals[N_SIGNALS];

/* ---- model facts ------------------------------------------------------------------- */

typedef struct {
    bool ok;
    char reason[512];       /* why it cannot be quantized (ok false) */
    char summary[256];      /* architecture · parameters · format · size */
} SourceInfo;

/* Bytes on disk of a model folder (0 when it cannot be read). */
static guint64
model_disk_bytes(const char *dir)
{
    g_autoptr(HearthModelInfo) info = hearth_model_info_load(dir, NULL);
    return info ? info->size_on_disk : 0;
}

/* The facts come from hearth-models (as the Models window shows them); the
 * wizard adds its own refusals: already 4-bit, no tokenizer for the
 * calibration text. Free disk space is checked by the quantizer itself,
 * against the exact size of what it is about to write. */
static void
inspect_source(const char *dir, SourceInfo *info)
{
    memset(info, 0, sizeof *info);
    g_autoptr(GError) error = NULL;
    g_autoptr(HearthModelInfo) m = hearth_model_info_load(dir, &error);
    if (!m) {
        g_snprintf(info->reason, sizeof info->reason, _("This folder is not a model Hearth can quantize: %s"),
                   error->message);
        return;
    }
    if (!m->supported || m->problem) {
        g_snprintf(info->reason, sizeof info->reason, _("This folder is not a model Hearth can quantize: %s"),
                   m->problem ? m->problem : m->format);
        return;
    }
    if (m->format && (g_str_has_prefix(m->format, "AWQ") || g_str_has_prefix(m->format, "GPTQ"))) {
        g_snprintf(info->reason, sizeof info->reason, _("This model is already quantized to 4 bits."));
        return;
    }
    g_autofree char *tok = g_build_filename(dir, "tokenizer.json", NULL);
    if (!g_file_test(tok, G_FILE_TEST_IS_REGULAR)) {
        g_snprintf(info->reason, sizeof info->reason,
                   _("The folder has no tokenizer.json, which the calibration text needs."));
        return;
    }
    g_autofree char *params = hearth_format_param_count(m->n_params);
    g_autofree char *size = g_format_size(m->size_on_disk);
    g_snprintf(info->summary, sizeof info->summary, "%s · %s · %s · %s",
               m->architecture ? m->architecture : "Llama", params, m->format ? m->format : "?", size);
    info->ok = true;
}

/* The bundled calibration text: installed, else the source tree's (the app
 * run from the build folder). */
static char *
bundled_calibration(void)
{
    const char *env = g_getenv("HEARTH_CALIBRATION");
    if (env && g_file_test(env, G_FILE_TEST_IS_REGULAR))
        return g_strdup(env);
    char *p = g_build_filename(HEARTH_DATADIR, "calibration", "calibration.txt", NULL);
    if (g_file_test(p, G_FILE_TEST_IS_REGULAR))
        return p;
    g_free(p);
    p = g_build_filename(HEARTH_SOURCE_ROOT, "data", "calibration", "calibration.txt", NULL);
    if (g_file_test(p, G_FILE_TEST_IS_REGULAR))
        return p;
    g_free(p);
    return NULL;
}

/* ---- the job (worker thread) --------------------------------------------------------- */

typedef struct Job {
    gatomicrefcount ref;
    HearthQuantizeWizard *wizard;     /* strong ref while the job runs */
    char *in_dir, *final_dir, *name, *models_dir, *calib;
    HrQuantOptions opt;
    atomic_int cancel;
    /* results, read on the main thread after the thread ends */
    HrStatus status;
    char error[HR_ERROR_MESSAGE_MAX];
    double seconds;
    guint64 in_bytes, out_bytes;
    /* what was written, in bytes: 4-bit layers (qweight, qzeros, scales), and
     * what stayed at full width: the embedding table, the output layer, the
     * layers the group size does not divide (how many), the rest (norms) */
    guint64 packed_bytes, embed_bytes, head_bytes, unquantized_bytes, rest_bytes;
    int n_unquantized, kept_bits;
    double ppl_orig, ppl_quant;
    char *answer_orig, *answer_quant;
    bool checked;
} Job;

static Job *
job_ref(Job *j)
{
    g_atomic_ref_count_inc(&j->ref);
    return j;
}

static void
job_unref(Job *j)
{
    if (!g_atomic_ref_count_dec(&j->ref))
        return;
    g_clear_object(&j->wizard);
    g_free(j->in_dir);
    g_free(j->name);
    g_free(j->models_dir);
    g_free(j->final_dir);
    g_free(j->calib);
    g_free(j->answer_orig);
    g_free(j->answer_quant);
    g_free(j);
}

typedef struct {
    Job *job;
    HrQuantStage st;
    char step[64];
    double peak_mb;
} StageUpdate;

static void show_stage(HearthQuantizeWizard *self, const StageUpdate *u);
static void set_button_text(GtkButton *b, const char *mnemonic);

static gboolean
stage_idle(gpointer data)
{
    StageUpdate *u = data;
    if (u->job->wizard && u->job->wizard->job == u->job)
        show_stage(u->job->wizard, u);
    job_unref(u->job);
    g_free(u);
    return G_SOURCE_REMOVE;
}

static double
peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

static void
post_stage(Job *j, const HrQuantStage *st, const char *step)
{
    StageUpdate *u = g_new0(StageUpdate, 1);
    u->job = job_ref(j);
    u->st = *st;
    g_strlcpy(u->step, step, sizeof u->step);
    u->st.step = NULL;
    u->peak_mb = peak_rss_mb();
    g_idle_add(stage_idle, u);
}

static bool
on_quant_stage(const HrQuantStage *st, void *user)
{
    Job *j = user;
    static const gint64 every = 100000; /* at most ten UI updates a second */
    static _Thread_local gint64 last;
    gint64 now = g_get_monotonic_time();
    if (now - last >= every || st->fraction >= 1.0) {
        last = now;
        post_stage(j, st, st->step);
    }
    return atomic_load(&j->cancel) == 0;
}

/* Perplexity of the quality text under the model in dir (CPU, FP32 KV). */
static double
quality_ppl(const char *dir, atomic_int *cancel)
{
    HrTokenizer *tok = NULL;
    HrModel *m = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    double ppl = NAN;
    HrError err = { 0 };
    HrModelOptions mo;
    hr_model_options_init(&mo);
    mo.backend = "cpu";
    mo.context_len = 512;
    if (hr_tokenizer_load(dir, &tok, &err) != HR_OK ||
        hr_tokenizer_encode(tok, quality_text, strlen(quality_text), true, false, &ids, &n, &err) != HR_OK ||
        n < 2 || atomic_load(cancel) || hr_model_load(dir, &mo, &m, &err) != HR_OK)
        goto out;
    n = MIN(n, 256);
    if (hr_model_eval_all(m, ids, (int)n, &err) != HR_OK)
        goto out;
    {
        const int V = hr_model_config(m)->vocab_size;
        float *lg = g_new(float, V);
        double nll = 0.0;
        for (size_t i = 0; i + 1 < n; i++) {
            if (hr_model_logits_row(m, (int)i, lg, &err) != HR_OK) {
                nll = NAN; /* reported as no quality figure */
                break;
            }
            float mx = -INFINITY;
            for (int v = 0; v < V; v++)
                mx = fmaxf(mx, lg[v]);
            double sum = 0.0;
            for (int v = 0; v < V; v++)
                sum += exp((double)lg[v] - mx);
            nll += log(sum) + mx - lg[ids[i + 1]];
        }
        g_free(lg);
        ppl = exp(nll / (double)(n - 1));
    }
out:
    hr_model_free(m);
    hr_tokenizer_free(tok);
    g_free(ids);
    return ppl;
}

static bool
collect_text(const char *text, size_t len, int32_t token, void *user)
{
    g_string_append_len(user, text, (gssize)len);
    return true;
}

/* The quality prompt answered greedily by the model in dir. */
static char *
quality_answer(const char *dir, atomic_int *cancel)
{
    HrTokenizer *tok = NULL;
    HrModel *m = NULL;
    HrSampler *s = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    HrError err = { 0 };
    GString *out = g_string_new(NULL);
    HrModelOptions mo;
    hr_model_options_init(&mo);
    mo.backend = "cpu";
    mo.context_len = 512;
    JsonNode *msgs = hr_chat_messages_new(NULL, _(quality_prompt));
    if (hr_tokenizer_load(dir, &tok, &err) != HR_OK ||
        hr_chat_render(tok, msgs, true, NULL, &ids, &n, NULL, NULL, &err) != HR_OK ||
        hr_model_load(dir, &mo, &m, &err) != HR_OK) {
        g_string_assign(out, err.message);
        goto out;
    }
    {
        HrSamplerParams sp;
        hr_sampler_params_init(&sp); /* greedy */
        s = hr_sampler_new(&sp, hr_model_config(m)->vocab_size);
        HrGenerateOptions go;
        hr_generate_options_init(&go);
        go.max_new_tokens = 48;
        go.cancel = cancel;
        hr_generate_add_tokenizer_eos(&go, m, tok);
        HrGenerateStats stats;
        if (hr_generate(m, tok, s, ids, (int)n, &go, collect_text, out, &stats, &err) != HR_OK)
            g_string_assign(out, err.message);
        else if (stats.reason == HR_STOP_LENGTH)
            g_string_append(out, "…");
    }
out:
    json_node_unref(msgs);
    hr_sampler_free(s);
    hr_model_free(m);
    hr_tokenizer_free(tok);
    g_free(ids);
    g_strstrip(out->str);
    return g_string_free(out, FALSE);
}

/* What the new model's files hold: 4-bit layers, and what stays at full
 * width (the embedding table, an untied output layer, layers the group size
 * does not divide, norms). */
static void
measure_output(Job *j)
{
    HrTensorSet *set = NULL;
    HrError err = { 0 };
    if (hr_tensor_set_open_dir(j->final_dir, &set, &err) != HR_OK)
        return;
    for (size_t i = 0; i < hr_tensor_set_count(set); i++) {
        const HrTensor *t = hr_tensor_set_get(set, i);
        if (g_str_has_suffix(t->name, ".qweight") || g_str_has_suffix(t->name, ".qzeros") ||
            g_str_has_suffix(t->name, ".scales")) {
            j->packed_bytes += t->n_bytes;
            continue;
        }
        if (t->n_dims == 2)
            j->kept_bits = MAX(j->kept_bits, (int)hr_dtype_size(t->dtype) * 8);
        if (strstr(t->name, "embed_tokens")) {
            j->embed_bytes += t->n_bytes;
        } else if (strstr(t->name, "lm_head")) {
            j->head_bytes += t->n_bytes;
        } else if (t->n_dims == 2) {
            j->unquantized_bytes += t->n_bytes;
            j->n_unquantized++;
        } else {
            j->rest_bytes += t->n_bytes;
        }
    }
    hr_tensor_set_free(set);
}

/* The size line of the result page, from what was written: how much
 * smaller, and, when a tenth or more of the new model stayed at full width,
 * what that is and how much of the model it makes up. */
static char *
size_text(const Job *j)
{
    g_autofree char *a = g_format_size(j->in_bytes), *b = g_format_size(j->out_bytes);
    double ratio = j->out_bytes ? (double)j->in_bytes / (double)j->out_bytes : 0.0;
    g_autofree char *sizes = g_strdup_printf(_("Size: %s → %s, %.1f× smaller."), a, b, ratio);
    guint64 kept = j->embed_bytes + j->head_bytes + j->unquantized_bytes + j->rest_bytes;
    guint64 total = j->packed_bytes + kept;
    if (!total || (double)kept < 0.1 * (double)total)
        return g_steal_pointer(&sizes);
    g_autoptr(GString) parts = g_string_new(NULL);
    struct {
        guint64 bytes;
        char *what;
    } part[] = {
        { j->embed_bytes, g_strdup(_("the embedding table")) },
        { j->head_bytes, g_strdup(_("the output layer")) },
        { j->unquantized_bytes, g_strdup_printf(ngettext("%d layer whose width the group size does not divide",
                                                         "%d layers whose width the group size does not divide",
                                                         j->n_unquantized),
                                                j->n_unquantized) },
    };
    for (guint i = 0; i < G_N_ELEMENTS(part); i++) {
        if (part[i].bytes)
            g_string_append_printf(parts, "%s%s (%.0f\u00a0%%)", parts->len ? ", " : "", part[i].what,
                                   100.0 * (double)part[i].bytes / (double)total);
        g_free(part[i].what);
    }
    if (!parts->len)
        return g_steal_pointer(&sizes);
    g_autofree char *why = g_strdup_printf(_("Kept in %d-bit (share of the new model): %s; the rest is 4-bit."),
                                           j->kept_bits ? j->kept_bits : 16, parts->str);
    return g_strdup_printf("%s %s", sizes, why);
}

static void
job_thread(GTask *task, gpointer source, gpointer data, GCancellable *c)
{
    Job *j = data;
    gint64 t0 = g_get_monotonic_time();
    HrError err = { 0 };
    j->opt.stage = on_quant_stage;
    /* written in a folder of its own under the models folder's .work/, held while it is written: the
     * model appears under its name only when whole, and what a killed app leaves is swept away at the
     * next start (a quantization does not resume) */
    g_autoptr(GError) werr = NULL;
    g_autoptr(HearthWorkDir) work = hearth_models_work_new(j->models_dir, "quantize", j->name, &werr);
    if (!work) {
        j->status = HR_ERR_IO;
        g_strlcpy(j->error, werr->message, sizeof j->error);
        return;
    }
    g_autofree char *out = g_build_filename(hearth_work_dir_path(work), "model", NULL);
    j->status = hr_quantize_model(j->in_dir, out, &j->opt, NULL, j, &err);
    if (j->status == HR_OK && g_file_test(j->final_dir, G_FILE_TEST_EXISTS))
        j->status = hr_error_set(&err, HR_ERR_IO, _("%s already exists"), j->final_dir);
    if (j->status == HR_OK && g_rename(out, j->final_dir) != 0)
        j->status = hr_error_set(&err, HR_ERR_IO, _("cannot move the model into place: %s"), g_strerror(errno));
    if (j->status != HR_OK) {
        g_strlcpy(j->error, err.message, sizeof j->error);
        return;
    }
    j->seconds = (double)(g_get_monotonic_time() - t0) / 1e6;
    j->in_bytes = model_disk_bytes(j->in_dir);
    j->out_bytes = model_disk_bytes(j->final_dir);
    measure_output(j);

    /* the quick quality check; Cancel here only skips it */
    HrQuantStage st = { -1, 0, NULL, 1.0, j->seconds, -1.0 };
    post_stage(j, &st, "checking");
    j->ppl_orig = quality_ppl(j->in_dir, &j->cancel);
    j->ppl_quant = quality_ppl(j->final_dir, &j->cancel);
    if (!atomic_load(&j->cancel)) {
        j->answer_orig = quality_answer(j->in_dir, &j->cancel);
        j->answer_quant = quality_answer(j->final_dir, &j->cancel);
    }
    j->checked = !atomic_load(&j->cancel);
}

/* ---- pages ---------------------------------------------------------------------- */

static void
set_page(HearthQuantizeWizard *self, int page)
{
    static const char *const names[] = { "source", "options", "run", "done" };
    gtk_stack_set_visible_child_name(self->stack, names[page]);
    gtk_widget_set_visible(GTK_WIDGET(self->back_button), page == PAGE_OPTIONS);
}

static void
show_stage(HearthQuantizeWizard *self, const StageUpdate *u)
{
    const HrQuantStage *st = &u->st;
    if (strcmp(u->step, "checking") == 0) {
        gtk_progress_bar_set_fraction(self->progress, 1.0);
        gtk_label_set_text(self->step_label, _("Checking the quality of the result…"));
        gtk_label_set_text(self->eta_label, "");
        set_button_text(self->cancel_button, _("_Skip Check"));
        return;
    }
    gtk_progress_bar_set_fraction(self->progress, st->fraction);
    g_autofree char *pct = g_strdup_printf("%.0f %%", 100.0 * st->fraction);
    gtk_progress_bar_set_text(self->progress, pct);
    const char *step = u->step;
    if (strcmp(step, "calibrating") == 0)
        step = _("running the calibration text");
    else if (strcmp(step, "scale search") == 0)
        step = _("scale search");
    else if (strcmp(step, "clip search") == 0)
        step = _("clip search");
    else if (strcmp(step, "writing") == 0)
        step = _("writing");
    g_autofree char *what = st->layer >= 0
                                ? g_strdup_printf(_("Layer %d of %d · %s"), st->layer + 1, st->n_layers, step)
                                : g_strdup_printf("%s", step);
    gtk_label_set_text(self->step_label, what);
    g_autofree char *eta = NULL;
    if (st->eta_s < 0)
        eta = g_strdup_printf(_("Elapsed %.0f s · estimating time left…"), st->elapsed_s);
    else if (st->eta_s >= 90)
        eta = g_strdup_printf(_("Elapsed %.0f s · about %.0f min left"), st->elapsed_s, ceil(st->eta_s / 60));
    else
        eta = g_strdup_printf(_("Elapsed %.0f s · about %.0f s left"), st->elapsed_s, st->eta_s);
    gtk_label_set_text(self->eta_label, eta);
    g_autofree char *mem = g_strdup_printf(_("Peak memory: %.0f MB"), u->peak_mb);
    gtk_label_set_text(self->memory_label, mem);
}

/* The options page's status line, and its tooltip (the details, or none). */
static void
set_status(HearthQuantizeWizard *self, const char *text, const char *details)
{
    gtk_label_set_text(self->options_status, text);
    gtk_widget_set_tooltip_text(GTK_WIDGET(self->options_status), details);
}

static void
job_done(GObject *source, GAsyncResult *res, gpointer data)
{
    HearthQuantizeWizard *self = HEARTH_QUANTIZE_WIZARD(source);
    Job *j = data;
    self->job = NULL;
    if (j->status != HR_OK) {
        if (j->status == HR_ERR_CANCELLED) {
            adw_toast_overlay_add_toast(self->toasts, adw_toast_new(_("Quantization cancelled; nothing was kept")));
        } else {
            g_autofree char *msg = hearth_quantize_error_text(j->status == HR_ERR_NOMEM, j->error);
            set_status(self, msg, strstr(msg, j->error) ? NULL : j->error);   /* the details, when not in the line */
        }
        set_page(self, PAGE_OPTIONS);
        gtk_widget_set_sensitive(GTK_WIDGET(self->start_button), TRUE);
        job_unref(j);
        return;
    }
    g_free(self->result_dir);
    self->result_dir = g_strdup(j->final_dir);
    g_autofree char *sizes = size_text(j);
    gtk_label_set_text(self->sizes_label, sizes);
    g_autofree char *t = g_strdup_printf(_("Time taken: %.0f s"), j->seconds);
    gtk_label_set_text(self->time_label, t);
    g_autofree char *p = j->checked && isfinite(j->ppl_orig) && isfinite(j->ppl_quant)
                             ? g_strdup_printf(_("Perplexity on a short test text: original %.2f, 4-bit %.2f "
                                                 "(lower is better; %+.1f %%)"),
                                               j->ppl_orig, j->ppl_quant, 100.0 * (j->ppl_quant / j->ppl_orig - 1.0))
                             : g_strdup(_("Quality check skipped."));
    gtk_label_set_text(self->ppl_label, p);
    gtk_label_set_text(self->answer_orig, j->answer_orig ? j->answer_orig : "—");
    gtk_label_set_text(self->answer_quant, j->answer_quant ? j->answer_quant : "—");
    g_autofree char *name = g_path_get_basename(j->final_dir);
    adw_status_page_set_description(self->done_status, name);
    set_page(self, PAGE_DONE);
    job_unref(j);
}

static void
start_clicked(GtkButton *b, HearthQuantizeWizard *self)
{
    const char *name = gtk_editable_get_text(GTK_EDITABLE(self->name_row));
    if (!name || !*name || strchr(name, '/') || name[0] == '.') {
        set_status(self, _("Give the new model a folder name (no “/”, not starting with “.”)."), NULL);
        return;
    }
    Job *j = g_new0(Job, 1);
    g_atomic_ref_count_init(&j->ref);
    j->in_dir = g_strdup(self->source);
    j->final_dir = g_build_filename(self->models_dir, name, NULL);
    j->name = g_strdup(name);
    j->models_dir = g_strdup(self->models_dir);
    if (g_file_test(j->final_dir, G_FILE_TEST_EXISTS)) {
        set_status(self, _("A model with this name already exists; choose another name."), NULL);
        job_unref(j);
        return;
    }
    g_autoptr(GError) derr = NULL;
    if (!hearth_models_ensure_dir(self->models_dir, &derr)) {
        set_status(self, derr->message, NULL);
        job_unref(j);
        return;
    }
    hr_quant_options_init(&j->opt);
    j->opt.method = adw_combo_row_get_selected(self->method_row) == 0 ? HR_QUANT_AWQ : HR_QUANT_RTN;
    static const int groups[] = { 128, 64, 32 };
    j->opt.group_size = groups[MIN(adw_combo_row_get_selected(self->group_row), 2u)];
    j->opt.samples = gtk_spin_button_get_value_as_int(self->samples_spin);
    j->opt.seqlen = gtk_spin_button_get_value_as_int(self->seqlen_spin);
    j->calib = adw_combo_row_get_selected(self->calib_row) == 1 && self->calib_file ? g_strdup(self->calib_file)
                                                                                    : bundled_calibration();
    if (j->opt.method == HR_QUANT_AWQ && !j->calib) {
        set_status(self, _("The bundled calibration text is missing; choose a text file."), NULL);
        job_unref(j);
        return;
    }
    j->opt.calib_path = j->calib;
    j->opt.backend = "auto"; /* the search's GEMMs on the GPU when its backend has them */
    j->wizard = g_object_ref(self);
    self->job = j;

    /* the search's matmuls run on the backend "auto" picks, or the CPU */
    const HrBackendOps *be = hr_backend_find("auto");
    g_autofree char *dev = be && be->gemm && strcmp(be->name, "cpu") != 0
                               ? g_strdup_printf(_("Device: %s"), be->name)
                               : g_strdup_printf(_("Device: CPU (%u threads)"), g_get_num_processors());
    gtk_label_set_text(self->device_label, dev);
    set_status(self, "", NULL);
    gtk_label_set_text(self->step_label, _("Starting…"));
    gtk_label_set_text(self->eta_label, "");
    gtk_progress_bar_set_fraction(self->progress, 0.0);
    set_button_text(self->cancel_button, _("_Cancel"));
    gtk_widget_set_sensitive(GTK_WIDGET(self->cancel_button), TRUE);
    set_page(self, PAGE_RUN);

    GTask *task = g_task_new(self, NULL, job_done, j); /* job_done drops the first reference */
    g_task_set_task_data(task, j, NULL);
    g_task_run_in_thread(task, job_thread);
    g_object_unref(task);
}

static void
cancel_clicked(GtkButton *b, HearthQuantizeWizard *self)
{
    if (self->job) {
        atomic_store(&self->job->cancel, 1);
        gtk_widget_set_sensitive(GTK_WIDGET(b), FALSE);
        gtk_label_set_text(self->step_label, _("Cancelling…"));
    }
}

static void
chat_clicked(GtkButton *b, HearthQuantizeWizard *self)
{
    if (self->result_dir)
        g_signal_emit(self, signals[SIGNAL_MODEL_READY], 0, self->result_dir);
    gtk_window_close(GTK_WINDOW(self));
}

/* ---- source page -------------------------------------------------------------------- */

static void
suggest_name(HearthQuantizeWizard *self)
{
    g_autofree char *base = g_path_get_basename(self->source);
    static const int groups[] = { 128, 64, 32 };
    int g = groups[MIN(adw_combo_row_get_selected(self->group_row), 2u)];
    g_autofree char *name = g_strdup_printf("%s-%s-g%d", base,
                                            adw_combo_row_get_selected(self->method_row) == 0 ? "awq" : "rtn", g);
    gtk_editable_set_text(GTK_EDITABLE(self->name_row), name);
}

void
hearth_quantize_wizard_set_source(HearthQuantizeWizard *self, const char *dir)
{
    SourceInfo info;
    inspect_source(dir, &info);
    g_clear_pointer(&self->source, g_free);
    if (!info.ok) {
        gtk_label_set_text(self->source_status, info.reason);
        gtk_widget_add_css_class(GTK_WIDGET(self->source_status), "error");
        gtk_widget_set_sensitive(GTK_WIDGET(self->next_button), FALSE);
        return;
    }
    self->source = g_strdup(dir);
    /* the largest group size that divides the hidden width, so the
     * attention and MLP inputs are quantized (e.g. 32 for width 64) */
    HrModelConfig cfg;
    if (hr_model_config_load(dir, &cfg, NULL) == HR_OK)
        adw_combo_row_set_selected(self->group_row, cfg.dim % 128 == 0 ? 0 : cfg.dim % 64 == 0 ? 1 : 2);
    g_autofree char *base = g_path_get_basename(dir);
    g_autofree char *msg = g_strdup_printf("%s — %s", base, info.summary);
    gtk_label_set_text(self->source_status, msg);
    gtk_widget_remove_css_class(GTK_WIDGET(self->source_status), "error");
    gtk_widget_set_sensitive(GTK_WIDGET(self->next_button), TRUE);
    suggest_name(self);
}

static void
radio_toggled(GtkCheckButton *radio, HearthQuantizeWizard *self)
{
    if (gtk_check_button_get_active(radio))
        hearth_quantize_wizard_set_source(self, g_object_get_data(G_OBJECT(radio), "dir"));
}

static void
folder_response(GtkNativeDialog *d, int response, HearthQuantizeWizard *self)
{
    if (response == GTK_RESPONSE_ACCEPT) {
        g_autoptr(GFile) f = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(d));
        g_autofree char *path = f ? g_file_get_path(f) : NULL;
        if (path) {
            adw_action_row_set_subtitle(self->folder_row, path);
            hearth_quantize_wizard_set_source(self, path);
        }
    }
    g_object_unref(d);
}

static void
choose_folder(GtkButton *b, HearthQuantizeWizard *self)
{
    GtkFileChooserNative *fc = gtk_file_chooser_native_new(_("Choose a Model Folder"), GTK_WINDOW(self),
                                                           GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER, _("_Choose"),
                                                           _("_Cancel"));
    g_signal_connect(fc, "response", G_CALLBACK(folder_response), self);
    gtk_native_dialog_show(GTK_NATIVE_DIALOG(fc));
}

static void
hub_progress(const HearthHubProgress *p, gpointer user)
{
    HearthQuantizeWizard *self = user;
    g_autofree char *done = g_format_size(p->done), *total = g_format_size(p->total);
    g_autofree char *msg = g_strdup_printf(_("Downloading %s: %s of %s"), p->repo_id, done, total);
    gtk_label_set_text(self->source_status, msg);
}

static void
hub_done(GObject *src, GAsyncResult *res, gpointer user)
{
    HearthQuantizeWizard *self = user;
    g_autoptr(GError) error = NULL;
    g_autofree char *path = hearth_hub_download_finish(res, &error);
    g_clear_object(&self->download);
    gtk_widget_set_sensitive(GTK_WIDGET(self->repo_button), TRUE);
    if (path) {
        hearth_quantize_wizard_set_source(self, path);
    } else {
        g_autofree char *msg = g_strdup_printf(_("The download failed: %s"), error->message);
        gtk_label_set_text(self->source_status, msg);
        gtk_widget_add_css_class(GTK_WIDGET(self->source_status), "error");
    }
    g_object_unref(self);
}

/* Download an FP16 model from Hugging Face into the models folder first;
 * it then becomes the source (an installed model, usable on its own too). */
static void
repo_download(GtkButton *b, HearthQuantizeWizard *self)
{
    const char *repo = gtk_editable_get_text(GTK_EDITABLE(self->repo_row));
    if (self->download)
        return;
    if (!hearth_hub_repo_id_valid(repo)) {
        gtk_label_set_text(self->source_status, _("Enter a repository id like owner/name."));
        gtk_widget_add_css_class(GTK_WIDGET(self->source_status), "error");
        return;
    }
    HearthHubOptions opt;
    hearth_hub_options_init(&opt);
    opt.models_dir = self->models_dir;
    opt.progress = hub_progress;
    opt.user_data = self;
    self->download = g_cancellable_new();
    gtk_widget_set_sensitive(GTK_WIDGET(self->repo_button), FALSE);
    gtk_widget_set_sensitive(GTK_WIDGET(self->next_button), FALSE);
    gtk_widget_remove_css_class(GTK_WIDGET(self->source_status), "error");
    gtk_label_set_text(self->source_status, _("Listing the repository’s files…"));
    hearth_hub_download_async(repo, &opt, self->download, hub_done, g_object_ref(self));
}

static void
scan_installed(HearthQuantizeWizard *self)
{
    g_autoptr(GDir) d = g_dir_open(self->models_dir, 0, NULL);
    const char *n;
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    while (d && (n = g_dir_read_name(d))) {
        if (n[0] != '.')
            g_ptr_array_add(names, g_strdup(n));
    }
    g_ptr_array_sort(names, (GCompareFunc)g_strcmp0);
    int shown = 0;
    for (guint i = 0; i < names->len; i++) {
        const char *name = g_ptr_array_index(names, i);
        g_autofree char *dir = g_build_filename(self->models_dir, name, NULL);
        g_autofree char *cfgp = g_build_filename(dir, "config.json", NULL);
        if (!g_file_test(cfgp, G_FILE_TEST_IS_REGULAR))
            continue;
        SourceInfo info;
        inspect_source(dir, &info);
        AdwActionRow *row = ADW_ACTION_ROW(adw_action_row_new());
        adw_preferences_row_set_title(ADW_PREFERENCES_ROW(row), name);
        adw_action_row_set_subtitle(row, info.ok ? info.summary : info.reason);
        GtkCheckButton *radio = GTK_CHECK_BUTTON(gtk_check_button_new());
        g_object_set_data_full(G_OBJECT(radio), "dir", g_strdup(dir), g_free);
        if (self->radio_group)
            gtk_check_button_set_group(radio, self->radio_group);
        else
            self->radio_group = radio;
        g_signal_connect(radio, "toggled", G_CALLBACK(radio_toggled), self);
        adw_action_row_add_prefix(row, GTK_WIDGET(radio));
        adw_action_row_set_activatable_widget(row, GTK_WIDGET(radio));
        gtk_widget_set_sensitive(GTK_WIDGET(row), info.ok);
        adw_preferences_group_add(self->installed_group, GTK_WIDGET(row));
        shown++;
    }
    if (shown == 0)
        adw_preferences_group_set_description(self->installed_group,
                                              _("No models are installed yet. Choose a folder with an FP16 model "
                                                "in Hugging Face format below."));
}

static void
next_clicked(GtkButton *b, HearthQuantizeWizard *self)
{
    if (self->source)
        set_page(self, PAGE_OPTIONS);
}

static void
back_clicked(GtkButton *b, HearthQuantizeWizard *self)
{
    set_page(self, PAGE_SOURCE);
}

static void
calib_response(GtkNativeDialog *d, int response, HearthQuantizeWizard *self)
{
    if (response == GTK_RESPONSE_ACCEPT) {
        g_autoptr(GFile) f = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(d));
        g_free(self->calib_file);
        self->calib_file = f ? g_file_get_path(f) : NULL;
        if (self->calib_file) {
            adw_action_row_set_subtitle(self->calib_file_row, self->calib_file);
            adw_combo_row_set_selected(self->calib_row, 1);
        }
    }
    g_object_unref(d);
}

static void
choose_calib(GtkButton *b, HearthQuantizeWizard *self)
{
    GtkFileChooserNative *fc = gtk_file_chooser_native_new(_("Choose a Calibration Text"), GTK_WINDOW(self),
                                                           GTK_FILE_CHOOSER_ACTION_OPEN, _("_Choose"), _("_Cancel"));
    g_signal_connect(fc, "response", G_CALLBACK(calib_response), self);
    gtk_native_dialog_show(GTK_NATIVE_DIALOG(fc));
}

static void
options_changed(GObject *o, GParamSpec *p, HearthQuantizeWizard *self)
{
    if (self->source)
        suggest_name(self);
    gtk_widget_set_visible(GTK_WIDGET(self->calib_file_row), adw_combo_row_get_selected(self->calib_row) == 1);
}

/* ---- construction ------------------------------------------------------------------ */

static GtkWidget *
page_box(GtkWidget *content, GtkWidget *button)
{
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
    gtk_widget_set_vexpand(content, TRUE);
    gtk_box_append(GTK_BOX(box), content);
    if (button) {
        GtkWidget *bar = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
        gtk_widget_set_halign(bar, GTK_ALIGN_END);
        gtk_widget_set_margin_top(bar, 6);
        gtk_widget_set_margin_bottom(bar, 18);
        gtk_widget_set_margin_end(bar, 18);
        gtk_box_append(GTK_BOX(bar), button);
        gtk_box_append(GTK_BOX(box), bar);
    }
    return box;
}

/* A button with a mnemonic whose accessible name is the plain label (GTK 4.8
 * names a gtk_button_new_with_mnemonic() button "_Label Label"). */
static GtkWidget *
mnemonic_button(const char *mnemonic)
{
    GtkWidget *b = gtk_button_new();
    GtkWidget *l = gtk_label_new_with_mnemonic(mnemonic);
    gtk_label_set_mnemonic_widget(GTK_LABEL(l), b);
    gtk_button_set_child(GTK_BUTTON(b), l);
    return b;
}

static void
set_button_text(GtkButton *b, const char *mnemonic)
{
    gtk_label_set_text_with_mnemonic(GTK_LABEL(gtk_button_get_child(b)), mnemonic);
}

static GtkLabel *
wrap_label(const char *text, const char *css)
{
    GtkLabel *l = GTK_LABEL(gtk_label_new(text));
    gtk_label_set_wrap(l, TRUE);
    gtk_label_set_xalign(l, 0.0f);
    gtk_label_set_selectable(l, FALSE);
    if (css)
        gtk_widget_add_css_class(GTK_WIDGET(l), css);
    return l;
}

static GtkSpinButton *
spin_row(AdwExpanderRow *parent, const char *title, const char *subtitle, double lo, double hi, double step, double val)
{
    AdwActionRow *row = ADW_ACTION_ROW(adw_action_row_new());
    adw_preferences_row_set_title(ADW_PREFERENCES_ROW(row), title);
    adw_action_row_set_subtitle(row, subtitle);
    GtkSpinButton *spin = GTK_SPIN_BUTTON(gtk_spin_button_new_with_range(lo, hi, step));
    gtk_spin_button_set_value(spin, val);
    gtk_widget_set_valign(GTK_WIDGET(spin), GTK_ALIGN_CENTER);
    gtk_accessible_update_property(GTK_ACCESSIBLE(spin), GTK_ACCESSIBLE_PROPERTY_LABEL, title, -1);
    adw_action_row_add_suffix(row, GTK_WIDGET(spin));
    adw_expander_row_add_row(parent, GTK_WIDGET(row));
    return spin;
}

static GtkWidget *
build_source_page(HearthQuantizeWizard *self)
{
    AdwPreferencesPage *page = ADW_PREFERENCES_PAGE(adw_preferences_page_new());
    AdwPreferencesGroup *intro = ADW_PREFERENCES_GROUP(adw_preferences_group_new());
    adw_preferences_group_set_title(intro, _("Make a 4-Bit Copy"));
    adw_preferences_group_set_description(
        intro, _("Quantizing with AWQ keeps a model's answers close to the original while storing its layers in 4 "
                 "bits instead of 16, so it fits your GPU and runs faster. The model becomes two to four times "
                 "smaller: what stays in 16 bits (such as the embedding table) weighs more in small models. It "
                 "happens on this computer; nothing is uploaded."));
    adw_preferences_page_add(page, intro);

    self->installed_group = ADW_PREFERENCES_GROUP(adw_preferences_group_new());
    adw_preferences_group_set_title(self->installed_group, _("Installed Models"));
    adw_preferences_page_add(page, self->installed_group);

    AdwPreferencesGroup *other = ADW_PREFERENCES_GROUP(adw_preferences_group_new());
    adw_preferences_group_set_title(other, _("Another Model"));
    self->folder_row = ADW_ACTION_ROW(adw_action_row_new());
    adw_preferences_row_set_title(ADW_PREFERENCES_ROW(self->folder_row), _("Model Folder"));
    adw_action_row_set_subtitle(self->folder_row, _("A Hugging Face model folder with FP16, BF16 or FP32 weights"));
    GtkWidget *choose = mnemonic_button(_("_Choose…"));
    gtk_widget_set_valign(choose, GTK_ALIGN_CENTER);
    g_signal_connect(choose, "clicked", G_CALLBACK(choose_folder), self);
    adw_action_row_add_suffix(self->folder_row, choose);
    adw_preferences_group_add(other, GTK_WIDGET(self->folder_row));
    self->repo_row = ADW_ENTRY_ROW(adw_entry_row_new());
    adw_preferences_row_set_title(ADW_PREFERENCES_ROW(self->repo_row), _("Hugging Face Repository (owner/name)"));
    self->repo_button = GTK_BUTTON(mnemonic_button(_("_Download")));
    gtk_widget_set_valign(GTK_WIDGET(self->repo_button), GTK_ALIGN_CENTER);
    g_signal_connect(self->repo_button, "clicked", G_CALLBACK(repo_download), self);
    adw_entry_row_add_suffix(self->repo_row, GTK_WIDGET(self->repo_button));
    adw_preferences_group_add(other, GTK_WIDGET(self->repo_row));
    adw_preferences_page_add(page, other);

    AdwPreferencesGroup *status = ADW_PREFERENCES_GROUP(adw_preferences_group_new());
    self->source_status = wrap_label(_("Choose the model to quantize."), "dim-label");
    adw_preferences_group_add(status, GTK_WIDGET(self->source_status));
    adw_preferences_page_add(page, status);

    self->next_button = GTK_BUTTON(mnemonic_button(_("_Next")));
    gtk_widget_add_css_class(GTK_WIDGET(self->next_button), "suggested-action");
    gtk_widget_set_sensitive(GTK_WIDGET(self->next_button), FALSE);
    g_signal_connect(self->next_button, "clicked", G_CALLBACK(next_clicked), self);
    return page_box(GTK_WIDGET(page), GTK_WIDGET(self->next_button));
}

static GtkWidget *
build_options_page(HearthQuantizeWizard *self)
{
    AdwPreferencesPage *page = ADW_PREFERENCES_PAGE(adw_preferences_page_new());
    AdwPreferencesGroup *g = ADW_PREFERENCES_GROUP(adw_preferences_group_new());
    adw_preferences_group_set_title(g, _("Options"));
    adw_preferences_group_set_description(g, _("The defaults suit almost every model."));

    const char *methods[] = { _("AWQ (recommended)"), _("Round to nearest (fast, lower quality)"), NULL };
    self->method_row = ADW_COMBO_ROW(adw_combo_row_new());
    adw_preferences_row_set_title(ADW_PREFERENCES_ROW(self->method_row), _("Method"));
    adw_action_row_set_subtitle(ADW_ACTION_ROW(self->method_row), _(METHOD_SUBTITLE));
    adw_combo_row_set_model(self->method_row, G_LIST_MODEL(gtk_string_list_new(methods)));
    adw_preferences_group_add(g, GTK_WIDGET(self->method_row));

    AdwActionRow *bits = ADW_ACTION_ROW(adw_action_row_new());
    adw_preferences_row_set_title(ADW_PREFERENCES_ROW(bits), _("Bits per Weight"));
    adw_action_row_set_subtitle(bits, _("4 bits: about a quarter of the FP16 size"));
    adw_action_row_add_suffix(bits, gtk_label_new("4"));
    adw_preferences_group_add(g, GTK_WIDGET(bits));

    const char *groups[] = { _("128 (recommended)"), "64", "32", NULL };
    self->group_row = ADW_COMBO_ROW(adw_combo_row_new());
    adw_preferences_row_set_title(ADW_PREFERENCES_ROW(self->group_row), _("Group Size"));
    adw_action_row_set_subtitle(ADW_ACTION_ROW(self->group_row),
                                _("Weights sharing one scale: smaller groups are a little more accurate and larger"));
    adw_combo_row_set_model(self->group_row, G_LIST_MODEL(gtk_string_list_new(groups)));
    adw_preferences_group_add(g, GTK_WIDGET(self->group_row));

    const char *calibs[] = { _("Bundled calibration set"), _("A text file of mine"), NULL };
    self->calib_row = ADW_COMBO_ROW(adw_combo_row_new());
    adw_preferences_row_set_title(ADW_PREFERENCES_ROW(self->calib_row), _("Calibration Text"));
    adw_action_row_set_subtitle(ADW_ACTION_ROW(self->calib_row),
                                _("Text the model reads once to find its important weights"));
    adw_combo_row_set_model(self->calib_row, G_LIST_MODEL(gtk_string_list_new(calibs)));
    adw_preferences_group_add(g, GTK_WIDGET(self->calib_row));

    self->calib_file_row = ADW_ACTION_ROW(adw_action_row_new());
    adw_preferences_row_set_title(ADW_PREFERENCES_ROW(self->calib_file_row), _("Calibration File"));
    adw_action_row_set_subtitle(self->calib_file_row, _("Plain UTF-8 text, at least a few pages"));
    GtkWidget *choose = mnemonic_button(_("C_hoose…"));
    gtk_widget_set_valign(choose, GTK_ALIGN_CENTER);
    g_signal_connect(choose, "clicked", G_CALLBACK(choose_calib), self);
    adw_action_row_add_suffix(self->calib_file_row, choose);
    gtk_widget_set_visible(GTK_WIDGET(self->calib_file_row), FALSE);
    adw_preferences_group_add(g, GTK_WIDGET(self->calib_file_row));

    self->name_row = ADW_ENTRY_ROW(adw_entry_row_new());
    adw_preferences_row_set_title(ADW_PREFERENCES_ROW(self->name_row), _("Name of the New Model"));
    adw_preferences_group_add(g, GTK_WIDGET(self->name_row));

    AdwExpanderRow *adv = ADW_EXPANDER_ROW(adw_expander_row_new());
    adw_preferences_row_set_title(ADW_PREFERENCES_ROW(adv), _("Advanced"));
    adw_expander_row_set_subtitle(adv, _("Calibration samples and length"));
    /* Without a GPU for the search, 32 windows instead of AutoAWQ's 128:
     * four times faster, and AWQ's paper finds 16 already enough (the
     * quality check at the end says what the copy lost). */
    const HrBackendOps *be = hr_backend_find("auto");
    const gboolean on_gpu = be && be->gemm && strcmp(be->name, "cpu") != 0;
    self->samples_spin = spin_row(adv, _("Samples"),
                                  on_gpu ? _("Calibration windows; fewer is faster (default 128)")
                                         : _("Calibration windows; fewer is faster (default 32 without a GPU, 128 with one)"),
                                  1, 1024, 1, on_gpu ? 128 : 32);
    self->seqlen_spin = spin_row(adv, _("Sequence Length"), _("Tokens per window (default 512)"), 16, 4096, 16, 512);
    adw_preferences_group_add(g, GTK_WIDGET(adv));
    adw_preferences_page_add(page, g);

    AdwPreferencesGroup *status = ADW_PREFERENCES_GROUP(adw_preferences_group_new());
    self->options_status = wrap_label("", "error");
    adw_preferences_group_add(status, GTK_WIDGET(self->options_status));
    adw_preferences_page_add(page, status);

    g_signal_connect(self->method_row, "notify::selected", G_CALLBACK(options_changed), self);
    g_signal_connect(self->group_row, "notify::selected", G_CALLBACK(options_changed), self);
    g_signal_connect(self->calib_row, "notify::selected", G_CALLBACK(options_changed), self);

    self->start_button = GTK_BUTTON(mnemonic_button(_("_Quantize")));
    gtk_widget_add_css_class(GTK_WIDGET(self->start_button), "suggested-action");
    g_signal_connect(self->start_button, "clicked", G_CALLBACK(start_clicked), self);
    return page_box(GTK_WIDGET(page), GTK_WIDGET(self->start_button));
}

static GtkWidget *
build_run_page(HearthQuantizeWizard *self)
{
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 12);
    gtk_widget_set_margin_start(box, 36);
    gtk_widget_set_margin_end(box, 36);
    gtk_widget_set_margin_top(box, 48);
    gtk_widget_set_valign(box, GTK_ALIGN_START);
    GtkLabel *title = wrap_label(_("Quantizing"), "title-2");
    gtk_box_append(GTK_BOX(box), GTK_WIDGET(title));
    self->progress = GTK_PROGRESS_BAR(gtk_progress_bar_new());
    gtk_progress_bar_set_show_text(self->progress, TRUE);
    gtk_accessible_update_property(GTK_ACCESSIBLE(self->progress), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                   _("Quantization progress"), -1);
    gtk_box_append(GTK_BOX(box), GTK_WIDGET(self->progress));
    self->step_label = wrap_label("", NULL);
    self->eta_label = wrap_label("", "dim-label");
    self->device_label = wrap_label("", "dim-label");
    self->memory_label = wrap_label("", "dim-label");
    gtk_box_append(GTK_BOX(box), GTK_WIDGET(self->step_label));
    gtk_box_append(GTK_BOX(box), GTK_WIDGET(self->eta_label));
    gtk_box_append(GTK_BOX(box), GTK_WIDGET(self->device_label));
    gtk_box_append(GTK_BOX(box), GTK_WIDGET(self->memory_label));
    GtkLabel *note = wrap_label(_("You can keep chatting in the main window meanwhile. Cancelling keeps nothing."),
                                "dim-label");
    gtk_widget_set_margin_top(GTK_WIDGET(note), 12);
    gtk_box_append(GTK_BOX(box), GTK_WIDGET(note));
    self->cancel_button = GTK_BUTTON(mnemonic_button(_("_Cancel")));
    gtk_widget_add_css_class(GTK_WIDGET(self->cancel_button), "destructive-action");
    g_signal_connect(self->cancel_button, "clicked", G_CALLBACK(cancel_clicked), self);
    return page_box(box, GTK_WIDGET(self->cancel_button));
}

static GtkWidget *
answer_box(const char *title, GtkLabel **label)
{
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
    gtk_widget_set_hexpand(box, TRUE);
    gtk_widget_add_css_class(box, "card");
    GtkLabel *t = wrap_label(title, "heading");
    gtk_widget_set_margin_start(GTK_WIDGET(t), 12);
    gtk_widget_set_margin_top(GTK_WIDGET(t), 12);
    *label = wrap_label("", NULL);
    gtk_label_set_selectable(*label, TRUE);
    gtk_widget_set_margin_start(GTK_WIDGET(*label), 12);
    gtk_widget_set_margin_end(GTK_WIDGET(*label), 12);
    gtk_widget_set_margin_bottom(GTK_WIDGET(*label), 12);
    gtk_box_append(GTK_BOX(box), GTK_WIDGET(t));
    gtk_box_append(GTK_BOX(box), GTK_WIDGET(*label));
    return box;
}

static GtkWidget *
build_done_page(HearthQuantizeWizard *self)
{
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 8);
    self->done_status = ADW_STATUS_PAGE(adw_status_page_new());
    adw_status_page_set_icon_name(self->done_status, "emblem-ok-symbolic");
    adw_status_page_set_title(self->done_status, _("Your 4-Bit Model Is Ready"));
    gtk_widget_add_css_class(GTK_WIDGET(self->done_status), "compact");
    gtk_box_append(GTK_BOX(box), GTK_WIDGET(self->done_status));
    GtkWidget *facts = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
    gtk_widget_set_margin_start(facts, 24);
    gtk_widget_set_margin_end(facts, 24);
    self->sizes_label = wrap_label("", NULL);
    self->time_label = wrap_label("", NULL);
    self->ppl_label = wrap_label("", NULL);
    gtk_box_append(GTK_BOX(facts), GTK_WIDGET(self->sizes_label));
    gtk_box_append(GTK_BOX(facts), GTK_WIDGET(self->time_label));
    gtk_box_append(GTK_BOX(facts), GTK_WIDGET(self->ppl_label));
    g_autofree char *q = g_strdup_printf(_("Both models answered: “%s”"), _(quality_prompt));
    GtkLabel *ql = wrap_label(q, "dim-label");
    gtk_widget_set_margin_top(GTK_WIDGET(ql), 8);
    gtk_box_append(GTK_BOX(facts), GTK_WIDGET(ql));
    GtkWidget *answers = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
    gtk_box_set_homogeneous(GTK_BOX(answers), TRUE);
    gtk_box_append(GTK_BOX(answers), answer_box(_("Original"), &self->answer_orig));
    gtk_box_append(GTK_BOX(answers), answer_box(_("4-bit"), &self->answer_quant));
    gtk_box_append(GTK_BOX(facts), answers);
    gtk_box_append(GTK_BOX(box), facts);
    GtkWidget *scroll = gtk_scrolled_window_new();
    gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(scroll), GTK_POLICY_NEVER, GTK_POLICY_AUTOMATIC);
    gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(scroll), box);
    self->chat_button = GTK_BUTTON(mnemonic_button(_("_Start Chatting")));
    gtk_widget_add_css_class(GTK_WIDGET(self->chat_button), "suggested-action");
    g_signal_connect(self->chat_button, "clicked", G_CALLBACK(chat_clicked), self);
    return page_box(scroll, GTK_WIDGET(self->chat_button));
}

static gboolean
close_request(GtkWindow *w)
{
    HearthQuantizeWizard *self = HEARTH_QUANTIZE_WIZARD(w);
    if (self->job) /* stop the run; the job cleans up after itself */
        atomic_store(&self->job->cancel, 1);
    if (self->download) /* the partial download stays for a resume */
        g_cancellable_cancel(self->download);
    return FALSE;
}

static void
hearth_quantize_wizard_finalize(GObject *o)
{
    HearthQuantizeWizard *self = HEARTH_QUANTIZE_WIZARD(o);
    g_free(self->models_dir);
    g_free(self->source);
    g_free(self->calib_file);
    g_free(self->result_dir);
    g_clear_object(&self->download);
    g_clear_pointer(&self->source_rows, g_ptr_array_unref);
    G_OBJECT_CLASS(hearth_quantize_wizard_parent_class)->finalize(o);
}

static void
hearth_quantize_wizard_class_init(HearthQuantizeWizardClass *klass)
{
    G_OBJECT_CLASS(klass)->finalize = hearth_quantize_wizard_finalize;
    GTK_WINDOW_CLASS(klass)->close_request = close_request;
    signals[SIGNAL_MODEL_READY] = g_signal_new("model-ready", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL,
                                               NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
}

static void
hearth_quantize_wizard_init(HearthQuantizeWizard *self)
{
    gtk_window_set_title(GTK_WINDOW(self), _("Quantize a Model"));
    gtk_window_set_default_size(GTK_WINDOW(self), 600, 700);
    GtkWidget *tv = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
    GtkWidget *header = adw_header_bar_new();
    self->back_button = GTK_BUTTON(gtk_button_new_from_icon_name("go-previous-symbolic"));
    gtk_widget_set_tooltip_text(GTK_WIDGET(self->back_button), _("Back"));
    gtk_accessible_update_property(GTK_ACCESSIBLE(self->back_button), GTK_ACCESSIBLE_PROPERTY_LABEL, _("Back"), -1);
    g_signal_connect(self->back_button, "clicked", G_CALLBACK(back_clicked), self);
    adw_header_bar_pack_start(ADW_HEADER_BAR(header), GTK_WIDGET(self->back_button));
    gtk_box_append(GTK_BOX(tv), header);
    self->stack = GTK_STACK(gtk_stack_new());
    gtk_stack_set_transition_type(self->stack, GTK_STACK_TRANSITION_TYPE_SLIDE_LEFT_RIGHT);
    gtk_widget_set_vexpand(GTK_WIDGET(self->stack), TRUE);
    self->toasts = ADW_TOAST_OVERLAY(adw_toast_overlay_new());
    adw_toast_overlay_set_child(self->toasts, GTK_WIDGET(self->stack));
    gtk_box_append(GTK_BOX(tv), GTK_WIDGET(self->toasts));
    adw_window_set_content(ADW_WINDOW(self), tv);
    self->source_rows = g_ptr_array_new();
}

HearthQuantizeWizard *
hearth_quantize_wizard_new(GtkWindow *parent, const char *models_dir)
{
    HearthQuantizeWizard *self = g_object_new(HEARTH_TYPE_QUANTIZE_WIZARD, NULL);
    if (parent) {
        gtk_window_set_transient_for(GTK_WINDOW(self), parent);
        gtk_window_set_modal(GTK_WINDOW(self), FALSE);
    }
    self->models_dir = g_strdup(models_dir);
    gtk_stack_add_named(self->stack, build_source_page(self), "source");
    gtk_stack_add_named(self->stack, build_options_page(self), "options");
    gtk_stack_add_named(self->stack, build_run_page(self), "run");
    gtk_stack_add_named(self->stack, build_done_page(self), "done");
    scan_installed(self);
    set_page(self, PAGE_SOURCE);
    return self;
}
