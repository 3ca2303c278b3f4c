/* fuzz-model.c — libFuzzer entry point for opening a model and running it:
 * everything between the checkpoint's bytes and the first logits (config,
 * tensor names, shapes and types against the config, AWQ and GGUF layouts,
 * the CPU backend's conversions and kernels).
 *
 * The input is a whole model (corpus-model/, made by make-model-seeds.py):
 * a GGUF file as it is (it starts with "GGUF"), or a Hugging Face folder as
 * config.json, a NUL byte, then model.safetensors. The target writes it to
 * a private folder ($FUZZ_MODEL_DIR, else the temp dir), opens it with
 * hr_model_load (the CPU backend, or $FUZZ_MODEL_BACKEND; one thread, a
 * 16-position context) and, when it opens, runs a 3-token prompt and one
 * decode step and reads the logits.
 *
 * The Models window's reading of a folder (hearth_model_info_load) runs on
 * every input too.
 *
 * Besides not crashing, it checks the promises: a failed load has a message
 * and leaves *out NULL; a model that opened has a config that agrees with
 * itself; a step or its logits that fail (NaN from the weights is found
 * there) say why.
 *
 * Built by meson into fuzz-driver.c (the `model-fuzz` test, structure-aware
 * mutations from fuzz-model-mutate.c) and by tools/fuzz-model with libFuzzer.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "fuzz-model.h"
#include "hearth-models.h"
#include "hr-test.h"
#include "model.h"
#include "quantize.h"

#ifdef FUZZ_MODEL_CUDA_EMU
/* The CUDA backend compiled for the host (tests/cuda-emu-backend.cpp) takes
 * the name "cuda": its loader's checks, its uploads and its kernels on the
 * emulator (fuzz-model-cuda-emu-driver, by hand). */
extern const HrBackendOps hr_cuda_emu_backend;
#endif

int fuzz_model_last_ok;

static char *work_dir;

static void check_info(const char *path);

static void G_GNUC_NORETURN
fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz-model: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

static void
cleanup(void)
{
    if (work_dir)
        hr_test_rmtree(work_dir);
}

static void
write_file(const char *path, const uint8_t *data, size_t n)
{
    GError *error = NULL;
    if (!g_file_set_contents(path, (const char *)data, (gssize)n, &error))
        fail("writing the input", error->message);
}

/* The input as files; the model path to open. */
static char *
lay_out(const uint8_t *data, size_t size)
{
    if (!work_dir) {
        const char *base = g_getenv("FUZZ_MODEL_DIR");   /* a tmpfs is faster */
        g_autofree char *tmpl = g_build_filename(base ? base : g_get_tmp_dir(), "fuzz-model-XXXXXX", NULL);
        work_dir = g_mkdtemp(g_steal_pointer(&tmpl));
        if (!work_dir)
            fail("making the work folder", g_strerror(errno));
        g_autofree char *folder = g_build_filename(work_dir, "folder", NULL);
        if (g_mkdir(folder, 0700) != 0)
            fail("making the model folder", g_strerror(errno));
        atexit(cleanup);
    }
    if (size >= 4 && memcmp(data, "GGUF", 4) == 0) {
        char *path = g_build_filename(work_dir, "model.gguf", NULL);
        write_file(path, data, size);
        return path;
    }
    const uint8_t *nul = memchr(data, 0, size);
    const size_t cfg_len = nul ? (size_t)(nul - data) : size;
    char *folder = g_build_filename(work_dir, "folder", NULL);
    g_autofree char *cfg = g_build_filename(folder, "config.json", NULL);
    g_autofree char *st = g_build_filename(folder, "model.safetensors", NULL);
    write_file(cfg, data, cfg_len);
    write_file(st, nul ? nul + 1 : data + size, nul ? size - cfg_len - 1 : 0);
    return folder;
}

/* FUZZ_MODEL_QUANTIZE=rtn|awq: a folder model that opened is quantized too
 * (group 32, per-channel fallback on half the inputs; awq with a tiny
 * calibration), and what the quantizer writes must open and run. */
static void
quantize_and_reopen(const char *folder, const HrModelOptions *opt, size_t size)
{
    const char *method = g_getenv("FUZZ_MODEL_QUANTIZE");
    if (!method || !*method || g_str_has_suffix(folder, ".gguf"))
        return;
    g_autofree char *out = g_build_filename(work_dir, "quantized", NULL);
    hr_test_rmtree(out);
    HrQuantOptions q;
    hr_quant_options_init(&q);
    q.method = strcmp(method, "awq") == 0 ? HR_QUANT_AWQ : HR_QUANT_RTN;
    q.group_size = 32;
    q.per_channel_fallback = size % 2 == 0;
    static const int32_t calib[32] = { 1, 5, 9, 3, 7, 11, 2, 4, 6, 8, 10, 12, 13, 14, 15, 16,
                                       17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 1 };
    q.calib_tokens = calib;
    q.n_calib_tokens = G_N_ELEMENTS(calib);
    q.samples = 2;
    q.seqlen = 8;
    HrError err = { 0 };
    const HrStatus st = hr_quantize_model(folder, out, &q, NULL, NULL, &err);
    if (st != HR_OK) {
        if (!err.message[0])
            fail("a failed quantization without a message", NULL);
        if (g_getenv("FUZZ_MODEL_VERBOSE"))
            fprintf(stderr, "quantize: %s\n", err.message);
        hr_error_clear(&err);
        return;
    }
    check_info(out);
    HrModel *m = NULL;
    if (hr_model_load(out, opt, &m, &err) != HR_OK)
        fail("the quantizer wrote a model (of one that opens) that does not open", err.message);
    const int32_t tokens[3] = { 1, 2, 3 };
    float *logits = g_new(float, (size_t)hr_model_config(m)->vocab_size);
    if (hr_model_eval(m, tokens, 3, &err) == HR_OK)
        (void)hr_model_logits(m, logits, &err);
    hr_error_clear(&err);
    g_free(logits);
    hr_model_free(m);
    hr_test_rmtree(out);
}

/* What the Models window shows of a model (app/hearth-models.c reads the
 * config and the weights' headers itself, for every folder it lists): an
 * error with a message, or an info whose strings are there. */
static void
check_info(const char *path)
{
    GError *error = NULL;
    HearthModelInfo *info = hearth_model_info_load(path, &error);
    if (!info) {
        if (!error || !error->message[0])
            fail("hearth_model_info_load failed without a message", NULL);
        g_error_free(error);
        return;
    }
    if (!info->name || !info->path || !info->format || (!info->supported && !info->problem))
        fail("a model info without its name, path, format or problem", info->path);
    hearth_model_info_free(info);
}

static void
check_config(const HrModelConfig *c)
{
    if (c->dim < 1 || c->n_layers < 1 || c->n_heads < 1 || c->n_kv_heads < 1 || c->head_dim < 1 ||
        c->hidden_dim < 1 || c->vocab_size < 1 || c->max_pos < 1)
        fail("a loaded model has a size below 1", NULL);
    if (c->n_heads % c->n_kv_heads != 0)
        fail("a loaded model's heads are not a multiple of its KV heads", NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autofree char *path = lay_out(data, size);
    check_info(path);
    HrModelOptions opt;
    hr_model_options_init(&opt);
    const char *backend = g_getenv("FUZZ_MODEL_BACKEND");   /* e.g. vulkan (lavapipe), by hand: slow */
    opt.backend = backend && *backend ? backend : "cpu";
#ifdef FUZZ_MODEL_CUDA_EMU
    static gsize registered;
    if (g_once_init_enter(&registered)) {
        hr_backend_register(&hr_cuda_emu_backend);
        g_once_init_leave(&registered, 1);
    }
    opt.backend = "cuda";
#endif
    opt.n_threads = 1;
    opt.context_len = 16;
    HrModel *m = NULL;
    HrError err = { 0 };
    HrStatus st = hr_model_load(path, &opt, &m, &err);
    fuzz_model_last_ok = st == HR_OK;
    if (st != HR_OK) {
        if (m)
            fail("out set on failure", NULL);
        if (!err.message[0])
            fail("a failure without a message", NULL);
        if (g_getenv("FUZZ_MODEL_VERBOSE"))   /* which checks the inputs reach */
            fprintf(stderr, "load: %s\n", err.message);
        hr_error_clear(&err);
        return 0;
    }
    const HrModelConfig *cfg = hr_model_config(m);
    check_config(cfg);
    const int vocab = cfg->vocab_size;
    const int32_t tokens[4] = { 1 % vocab, 2 % vocab, 3 % vocab, (vocab - 1) };
    const int n = hr_model_context_len(m) >= 4 ? 4 : hr_model_context_len(m);
    float *logits = g_new(float, (size_t)vocab);
    /* A step or its logits may fail (weights that make NaN are found there:
     * "the model is broken"), with a message. */
    HrStatus s = n >= 2 ? hr_model_eval(m, tokens, n - 1, &err) : HR_ERR_INVALID_ARG;
    if (s == HR_OK)
        s = hr_model_logits(m, logits, &err);
    if (s == HR_OK)
        s = hr_model_append(m, tokens + n - 1, 1, &err);
    if (s == HR_OK)
        s = hr_model_logits(m, logits, &err);
    if (s != HR_OK && n >= 2 && !err.message[0])
        fail("a failed step without a message", NULL);
    hr_error_clear(&err);
    g_free(logits);
    hr_model_free(m);
    if (vocab > 3)   /* the calibration's ids */
        quantize_and_reopen(path, &opt, size);
    return 0;
}
