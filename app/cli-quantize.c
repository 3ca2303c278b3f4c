/* hearth-cli quantize — write an AutoAWQ "GEMM" 4-bit checkpoint of an
 * FP32/FP16/BF16 model (quantize/quantize.h), or with --fake-quant an FP16
 * model with the quantization error applied. A progress bar with the step,
 * layer and ETA on a terminal, plain lines otherwise. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "hearth-cli.h"
#include "hearth-config.h"
#include "hearth-models.h"
#include "quantize.h"

typedef struct {
    bool tty;
    gint64 start;
    int last_layer, last_decile;
    char *last_step;
} Progress;

static void
format_eta(double s, char *buf, size_t n)
{
    if (s < 0)
        g_strlcpy(buf, "?", n);
    else if (s >= 3600)
        g_snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
    else if (s >= 60)
        g_snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else
        g_snprintf(buf, n, "%.0fs", s);
}

static bool
on_stage(const HrQuantStage *st, void *user)
{
    Progress *p = user;
    char eta[32], where[48];
    format_eta(st->eta_s, eta, sizeof eta);
    if (st->layer >= 0)
        g_snprintf(where, sizeof where, "layer %d/%d %s", st->layer + 1, st->n_layers, st->step);
    else
        g_snprintf(where, sizeof where, "%s", st->step);
    if (p->tty) {
        int width = 30, fill = (int)(width * st->fraction);
        fprintf(stderr, "\r[%.*s%*s] %3.0f%% %-32.32s ETA %-8s", fill, "##############################",
                width - fill, "", 100.0 * st->fraction, where, eta);
        if (st->fraction >= 1.0)
            fputc('\n', stderr);
    } else {
        /* one line per layer step or per 10 % of the writing */
        int decile = (int)(st->fraction * 10);
        bool new_step = strcmp(st->step, "writing") != 0 && (st->layer != p->last_layer || g_strcmp0(st->step, p->last_step) != 0);
        if (new_step || decile != p->last_decile || st->fraction >= 1.0)
            fprintf(stderr, "quantize: %3.0f%% %s, ETA %s\n", 100.0 * st->fraction, where, eta);
        p->last_decile = decile;
    }
    p->last_layer = st->layer;
    g_free(p->last_step);
    p->last_step = g_strdup(st->step);
    return true;
}

static void
on_log(const char *line, void *user)
{
    Progress *p = user;
    if (p->tty)
        fputc('\n', stderr);
    fprintf(stderr, "awq: %s\n", line);
}

/* path with symlinks resolved; a path that does not exist yet is its
 * resolved parent plus its name. */
static char *
resolve_path(const char *path)
{
    char *r = realpath(path, NULL);
    if (r) {
        char *out = g_strdup(r);
        free(r);
        return out;
    }
    g_autofree char *abs = g_canonicalize_filename(path, NULL);
    g_autofree char *parent = g_path_get_dirname(abs);
    g_autofree char *name = g_path_get_basename(abs);
    g_autofree char *rp = g_strcmp0(parent, abs) != 0 ? resolve_path(parent) : g_strdup(abs);
    return g_build_filename(rp, name, NULL);
}

static bool
is_inside(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && (path[n] == '/' || (n == 1 && dir[0] == '/'));
}

static bool
dir_is_empty(const char *path)
{
    g_autoptr(GDir) d = g_dir_open(path, 0, NULL);
    return d && g_dir_read_name(d) == NULL;
}

/* The output must not be (or be inside, or hold) the input, and an existing
 * non-empty output is replaced only with --force. */
static bool
check_output(const char *in_dir, const char *out_dir, gboolean force)
{
    g_autofree char *in_r = resolve_path(in_dir);
    g_autofree char *out_r = resolve_path(out_dir);
    if (strcmp(in_r, out_r) == 0 || is_inside(out_r, in_r) || is_inside(in_r, out_r)) {
        fprintf(stderr, "hearth-cli quantize: the output %s overlaps the input %s; choose another folder "
                        "(the input is never overwritten)\n", out_dir, in_dir);
        return false;
    }
    if (g_file_test(out_dir, G_FILE_TEST_EXISTS) && !g_file_test(out_dir, G_FILE_TEST_IS_DIR)) {
        fprintf(stderr, "hearth-cli quantize: the output %s exists and is not a folder\n", out_dir);
        return false;
    }
    if (g_file_test(out_dir, G_FILE_TEST_IS_DIR) && !dir_is_empty(out_dir) && !force) {
        fprintf(stderr, "hearth-cli quantize: the output folder %s is not empty; use --force to replace it\n",
                out_dir);
        return false;
    }
    return true;
}

/* Put the finished temp folder in place of out_dir (replacing an old one
 * only now that the new one is complete). */
static bool
move_into_place(const char *tmp, const char *out_dir)
{
    g_autofree char *old = NULL;
    if (g_file_test(out_dir, G_FILE_TEST_EXISTS)) {
        old = g_strdup_printf("%s.old-XXXXXX", out_dir);
        if (!g_mkdtemp(old) || g_rename(out_dir, old) != 0) {
            fprintf(stderr, "hearth-cli quantize: cannot move the old %s aside: %s (the new model is in %s)\n",
                    out_dir, g_strerror(errno), tmp);
            return false;
        }
    }
    if (g_rename(tmp, out_dir) != 0) {
        int e = errno;
        if (old)
            g_rename(old, out_dir);
        fprintf(stderr, "hearth-cli quantize: cannot rename %s to %s: %s (the new model is in %s)\n", tmp, out_dir,
                g_strerror(e), tmp);
        return false;
    }
    if (old)
        hearth_models_remove_tree(old, NULL);
    return true;
}

int
hr_cli_quantize(int argc, char **argv)
{
    char *in_dir = NULL, *out_dir = NULL, *method = NULL, *calib = NULL, *scale_mode = NULL, *default_calib = NULL;
    char *save_calib = NULL, *backend = NULL;
    Progress p = { false, 0, -2, -1, NULL };
    int group = 128, bits = 4, samples = 128, seqlen = 512;
    gint64 seed = 0;
    gboolean per_channel = FALSE, fold_only = FALSE, fake = FALSE, force = FALSE;
    g_autofree char *tmp_dir = NULL;
    HearthWorkDir *work = NULL;
    GOptionEntry entries[] = {
        { "input", 'i', 0, G_OPTION_ARG_FILENAME, &in_dir, "Model directory (FP32/FP16/BF16)", "DIR" },
        { "output", 'o', 0, G_OPTION_ARG_FILENAME, &out_dir,
          "Output directory (written beside it first, then renamed into place)", "DIR" },
        { "force", 0, 0, G_OPTION_ARG_NONE, &force, "Replace a non-empty output directory", NULL },
        { "method", 0, 0, G_OPTION_ARG_STRING, &method, "Method: rtn (default) or awq", "NAME" },
        { "calib", 0, 0, G_OPTION_ARG_FILENAME, &calib,
          "awq: calibration text (default: data/calibration/calibration.txt of the source tree)", "FILE" },
        { "samples", 0, 0, G_OPTION_ARG_INT, &samples, "awq: calibration windows (default 128)", "N" },
        { "seqlen", 0, 0, G_OPTION_ARG_INT, &seqlen, "awq: tokens per window (default 512)", "L" },
        { "seed", 0, 0, G_OPTION_ARG_INT64, &seed, "awq: seed of the window selection (default 0)", "S" },
        { "backend", 0, 0, G_OPTION_ARG_STRING, &backend,
          "awq: backend for the search's matmuls (default auto; one without host GEMMs uses the CPU)", "NAME" },
        { "save-calib", 0, 0, G_OPTION_ARG_FILENAME, &save_calib,
          "awq: write the calibration windows used (JSON arrays of token ids) to FILE", "FILE" },
        { "scale-mode", 0, 0, G_OPTION_ARG_STRING, &scale_mode, "awq: scale formula, duo (default) or plain",
          "MODE" },
        { "awq-fold-only", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_NONE, &fold_only,
          "debug: write the scale-folded FP32 model without clipping or quantization", NULL },
        { "group-size", 0, 0, G_OPTION_ARG_INT, &group, "Group size: 32, 64 or 128 (default 128)", "G" },
        { "bits", 0, 0, G_OPTION_ARG_INT, &bits, "Bits per weight: 4 (default); 2..8 with --fake-quant", "B" },
        { "fake-quant", 0, 0, G_OPTION_ARG_NONE, &fake,
          "Write an FP16 model with the quantization error applied (for perplexity studies of --bits)", NULL },
        { "per-channel-fallback", 0, 0, G_OPTION_ARG_NONE, &per_channel,
          "Quantize layers the group size does not fit per output channel (Hearth-only) instead of "
          "keeping them FP16", NULL },
        { NULL },
    };
    g_autoptr(GOptionContext) octx = g_option_context_new("— write a 4-bit AWQ (GEMM layout) checkpoint");
    g_option_context_add_main_entries(octx, entries, NULL);
    g_autoptr(GError) error = NULL;
    int rc = 2;
    if (!g_option_context_parse(octx, &argc, &argv, &error)) {
        fprintf(stderr, "hearth-cli quantize: %s\n", error->message);
        goto out;
    }
    if (!in_dir || !out_dir) {
        fprintf(stderr, "hearth-cli quantize: -i DIR and -o DIR are required\n");
        goto out;
    }
    if (!hr_cli_resolve_model(&in_dir, &error)) {
        fprintf(stderr, "hearth-cli quantize: %s\n", error->message);
        rc = 1;
        goto out;
    }
    if (!check_output(in_dir, out_dir, force))
        goto out;
    HrQuantOptions opt;
    hr_quant_options_init(&opt);
    if (method && strcmp(method, "awq") == 0) {
        opt.method = HR_QUANT_AWQ;
    } else if (method && strcmp(method, "rtn") != 0) {
        fprintf(stderr, "hearth-cli quantize: method '%s' is not available (rtn, awq)\n", method);
        goto out;
    }
    if (scale_mode && strcmp(scale_mode, "plain") == 0) {
        opt.scale_mode = HR_AWQ_SCALE_PLAIN;
    } else if (scale_mode && strcmp(scale_mode, "duo") != 0) {
        fprintf(stderr, "hearth-cli quantize: --scale-mode must be plain or duo\n");
        goto out;
    }
    if (opt.method == HR_QUANT_AWQ && !calib) {
        default_calib = g_build_filename(HEARTH_SOURCE_ROOT, "data", "calibration", "calibration.txt", NULL);
        if (!g_file_test(default_calib, G_FILE_TEST_IS_REGULAR)) {
            fprintf(stderr, "hearth-cli quantize: --method awq needs --calib FILE (no %s)\n", default_calib);
            goto out;
        }
    }
    opt.calib_path = calib ? calib : default_calib;
    opt.samples = samples;
    opt.seqlen = seqlen;
    opt.seed = (uint64_t)seed;
    opt.awq_fold_only = fold_only;
    opt.save_calib_path = save_calib;
    opt.backend = backend;
    opt.log = on_log;
    if (fake ? (bits < 2 || bits > 8) : bits != 4) {
        fprintf(stderr, "hearth-cli quantize: --bits %d is not supported (4; 2..8 with --fake-quant)\n", bits);
        goto out;
    }
    opt.bits = bits;
    opt.fake_quant = fake;
    opt.group_size = group;
    opt.per_channel_fallback = per_channel;
    p.tty = isatty(2) != 0;
    p.start = g_get_monotonic_time();
    opt.stage = on_stage;
    HrError err = { 0 };
    rc = 1;
    /* Written in a sibling folder, held while it is written, and renamed into place at the end: a failure
     * (full disk, Ctrl-C) never leaves a half-written model under the output name, and what a killed run
     * left beside it is removed by the next run to the same output. */
    {
        g_autofree char *clean = g_canonicalize_filename(out_dir, NULL);
        g_autofree char *parent = g_path_get_dirname(clean);
        g_autofree char *base = g_path_get_basename(clean);
        g_autofree char *prefix = g_strdup_printf("%s.partial-", base);
        hearth_work_dir_sweep(parent, prefix);
        work = hearth_work_dir_new(parent, prefix, &error);
        if (!work) {
            fprintf(stderr, "hearth-cli quantize: %s\n", error->message);
            goto out;
        }
        tmp_dir = g_build_filename(hearth_work_dir_path(work), "model", NULL);
    }
    if (hr_quantize_model(in_dir, tmp_dir, &opt, NULL, &p, &err) != HR_OK) {
        fprintf(stderr, "hearth-cli quantize: %s\n", err.message);
        goto out;
    }
    if (!move_into_place(tmp_dir, out_dir)) {
        hearth_work_dir_keep(g_steal_pointer(&work)); /* complete: kept where the message says */
        goto out;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    fprintf(stderr, "quantize: wrote %s in %.1f s, peak RSS %.1f MB\n", out_dir,
            (double)(g_get_monotonic_time() - p.start) / 1e6, (double)ru.ru_maxrss / 1024.0);
    rc = 0;
out:
    hearth_work_dir_free(work);
    g_free(in_dir);
    g_free(out_dir);
    g_free(method);
    g_free(calib);
    g_free(scale_mode);
    g_free(default_calib);
    g_free(save_calib);
    g_free(p.last_step);
    g_free(backend);
    return rc;
}
