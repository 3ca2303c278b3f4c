/* hearth-cli quantize — write an AutoAWQ "GEMM" 4-bit checkpoint of an
 * FP32/FP16/BF16 model (quantize/quantize.h). Method rtn for now. */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <glib.h>

#include "hearth-cli.h"
#include "hearth-config.h"
#include "quantize.h"

typedef struct {
    bool tty;
    gint64 start;
} Progress;

static bool
on_progress(size_t done, size_t total, const char *tensor, void *user)
{
    Progress *p = user;
    double secs = (double)(g_get_monotonic_time() - p->start) / 1e6;
    double eta = done > 0 ? secs * (double)(total - done) / (double)done : 0.0;
    if (p->tty) {
        int width = 30, fill = total ? (int)((double)width * (double)done / (double)total) : width;
        fprintf(stderr, "\r[%.*s%*s] %zu/%zu ETA %.0fs %-48.48s", fill, "##############################",
                width - fill, "", done, total, eta, tensor);
        if (done == total)
            fputc('\n', stderr);
    } else if (done == total || done % 16 == 0) {
        fprintf(stderr, "quantize: %zu/%zu tensors (%s)\n", done, total, tensor);
    }
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

int
hr_cli_quantize(int argc, char **argv)
{
    char *in_dir = NULL, *out_dir = NULL, *method = NULL, *calib = NULL, *scale_mode = NULL, *default_calib = NULL;
    char *save_calib = NULL, *backend = NULL;
    int group = 128, bits = 4, samples = 128, seqlen = 512;
    gint64 seed = 0;
    gboolean per_channel = FALSE, fold_only = FALSE, fake = FALSE;
    GOptionEntry entries[] = {
        { "input", 'i', 0, G_OPTION_ARG_FILENAME, &in_dir, "Model directory (FP32/FP16/BF16)", "DIR" },
        { "output", 'o', 0, G_OPTION_ARG_FILENAME, &out_dir, "Output directory", "DIR" },
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
    Progress p = { isatty(2) != 0, g_get_monotonic_time() };
    HrError err = { 0 };
    rc = 1;
    if (hr_quantize_model(in_dir, out_dir, &opt, on_progress, &p, &err) != HR_OK) {
        fprintf(stderr, "hearth-cli quantize: %s\n", err.message);
        goto out;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    fprintf(stderr, "quantize: wrote %s in %.1f s, peak RSS %.1f MB\n", out_dir,
            (double)(g_get_monotonic_time() - p.start) / 1e6, (double)ru.ru_maxrss / 1024.0);
    rc = 0;
out:
    g_free(in_dir);
    g_free(out_dir);
    g_free(method);
    g_free(calib);
    g_free(scale_mode);
    g_free(default_calib);
    g_free(save_calib);
    g_free(backend);
    return rc;
}
