/* Whole-model logits of the CUDA backend against the CPU backend (the
 * oracle). SKIP (77) when there is no CUDA device.
 *  - stories260K FP16 (hf_f16), and an AWQ checkpoint of it made here with
 *    hr_quantize_model() (RTN, group 32, per-channel fallback for the
 *    width-172 down_proj);
 *  - the random reference models in tests/fixtures/hf-tiny (Llama GQA tied,
 *    Llama-3 and linear rope scaling, Qwen2 with q/k/v bias, Mistral) in
 *    F32 and BF16 (the CUDA backend stores them as FP16).
 * Per model: a prefill with every row's logits (tensor-core GEMM path),
 * prefill + token-by-token decode (the replayed CUDA graph), a rewind
 * (forward at an earlier position with other tokens), 64 greedy tokens
 * (each backend feeding back its own choice) that must be identical, and for
 * stories260K a 300-token prefill across chunks and attention splits
 * followed by decode. stories260K also runs with HEARTH_CUDA_GEMM=simple
 * (GEMV fallback for prefill) and HEARTH_CUDA_GRAPH=0; then the opt-in paths
 * (HEARTH_CUDA_ATTN=tiled, HEARTH_CUDA_GEMM=cublas, HEARTH_CUDA_GEMV=q8: the
 * last at 2e-2, its activations rounded to int8 per block of 32, also with
 * HEARTH_CUDA_LM_HEAD=q8, the lm_head rounded the same way); and a
 * 2-layer SmolLM2-shaped random AWQ model (head_dim 64) made by
 * hr-make-random-model, on which the tensor-core prefill attention runs.
 *
 * Tolerance, per logits row: max |cuda - cpu| <= tol * (max - min of the CPU
 * row): tol = 5e-3 when both run the same weights (FP16, AWQ; prefill rounds
 * activations to FP16 in the tensor-core tile loader), 1e-2 when F32/BF16
 * weights are rounded to FP16 on the device; the greedy id agrees unless
 * the CPU's top two are closer than twice the row's difference; the device
 * argmax equals the argmax of the logits read back.
 *
 * GGUF (opt-in, HEARTH_CUDA_GGUF=1): the gguf-tiny fixtures (every block
 * type the backend reads; gate and up stored differently; the first again
 * with every opt-in path) and, on a device,
 * SmolLM2-135M-Instruct's GGUF when present; refused by name without it.
 *
 * Built a second time as test-cuda-emu-model (HR_CUDA_EMU_MODEL): the same
 * checks on the CUDA backend compiled for the host (tests/cuda-emu.h,
 * tests/cuda-emu-runtime.cpp: emulated kernels, memory, streams and graphs),
 * in CI without a device, shortened to fit there: 24 greedy tokens instead
 * of 64, the 300-token run only on the default and tiled paths, and of the
 * SmolLM2-shaped checks only the one with every opt-in path, on a
 * vocabulary of 4,096 (HEARTH_CUDA_EMU_FULL=1: the whole schedule, by hand).
 */
#include <math.h>
#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "hr-test-cuda.h"
#include "cuda/hr-cuda-backend.h"
#include "hr-backend-compare.h"
#include "hr-test.h"
#include "model-config.h"
#include "quantize.h"
#include "safetensors.h"

/* EMU: the shortened schedule (the emulator in CI); HEARTH_CUDA_EMU_FULL=1
 * runs the device's whole schedule there too, by hand. */
enum { N_GREEDY_MAX = 64 };
static bool EMU;
static bool ops_short;   /* cuda-emu-model-ops in CI: see main() */
static int N_GREEDY = N_GREEDY_MAX;

/* Greedy generation; gaps[i] = (top1 - top2) / (max - min) of step i's logits. */
static int
greedy_run(HrCmpRun *r, const int32_t *prompt, int n_prompt, int n_gen, int vocab, int32_t *ids, float *gaps)
{
    HrError err = { 0 };
    float *lg = g_new(float, vocab), gap;
    int n = 0;
    if (r->ops->forward(r->ctx, prompt, n_prompt, 0, false, &err) != HR_OK) {
        HR_CHECK(false, "%s greedy prefill: %s", r->ops->name, err.message);
        g_free(lg);
        return 0;
    }
    for (; n < n_gen; n++) {
        if (r->ops->get_logits(r->ctx, -1, lg, &err) != HR_OK) {
            HR_CHECK(false, "%s logits: %s", r->ops->name, err.message);
            break;
        }
        ids[n] = hr_cmp_argmax(lg, vocab, &gap);
        float mn = INFINITY, mx = -INFINITY;
        for (int i = 0; i < vocab; i++) {
            mn = fminf(mn, lg[i]);
            mx = fmaxf(mx, lg[i]);
        }
        gaps[n] = mx > mn ? gap / (mx - mn) : 0.0f;
        if (r->ops->forward(r->ctx, &ids[n], 1, n_prompt + n, false, &err) != HR_OK) {
            HR_CHECK(false, "%s greedy decode: %s", r->ops->name, err.message);
            break;
        }
    }
    g_free(lg);
    return n;
}

static void
check_model(const char *dir, const char *label, float tol, int context, bool long_run)
{
    HrModelConfig cfg;
    HrTensorSet *ts = NULL;
    if (!hr_cmp_load(dir, &cfg, &ts))
        return;
    context = MIN(context, cfg.max_pos);
    HrBackendOptions bopt = { .context_len = context, .kv_type = HR_KV_F16, .n_threads = 1 };
    HrCmpRun cpu = { &hr_cpu_backend, NULL }, dev = { &hr_cuda_backend, NULL };
    if (!hr_cmp_create(label, &cfg, ts, &bopt, &cpu, &dev))
        return;
    HrMemoryReport mem;
    dev.ops->memory(dev.ctx, &mem);
    HR_CHECK(mem.location && g_str_has_prefix(mem.location, "device"), "location %s", mem.location);
    HR_CHECK(mem.kv_bytes >= (size_t)2 * cfg.n_layers * context * cfg.n_kv_heads * cfg.head_dim * 2, "kv bytes %zu",
             mem.kv_bytes);

    HrCmpStats s = { .label = label, .device = "cuda", .tol = tol, .vocab = cfg.vocab_size };
    GRand *rng = g_rand_new_with_seed(42);
    int32_t tok[400];
    for (int i = 0; i < 400; i++)
        tok[i] = g_rand_int_range(rng, 1, cfg.vocab_size);
    hr_cmp_schedule(&s, &cpu, &dev, tok, hr_cuda_backend_last_argmax, long_run && context >= 310);
    /* N_GREEDY greedy tokens, each backend on its own */
    if (context >= 80) {
        int32_t a[N_GREEDY_MAX], b[N_GREEDY_MAX];
        float ga[N_GREEDY_MAX], gb[N_GREEDY_MAX];
        int na = greedy_run(&cpu, tok, 8, N_GREEDY, cfg.vocab_size, a, ga);
        int nb = greedy_run(&dev, tok, 8, N_GREEDY, cfg.vocab_size, b, gb);
        HR_CHECK(na == N_GREEDY && nb == N_GREEDY, "%s: greedy runs of %d and %d tokens", label, na, nb);
        int same = 0;
        while (same < MIN(na, nb) && a[same] == b[same])
            same++;
        /* Identical, unless the CPU itself had a near tie (top two within
         * twice the tolerance of the row's range) where they parted. */
        if (same < N_GREEDY && same < na && ga[same] < 2 * tol)
            printf("%s: greedy ids part at token %d on a near tie (gap %.1e of the range)\n", label, same,
                   (double)ga[same]);
        else
            HR_CHECK(same == N_GREEDY, "%s: greedy ids differ from token %d (cpu %d, cuda %d)", label, same,
                     same < N_GREEDY ? a[same] : -1, same < N_GREEDY ? b[same] : -1);
    }
    /* The decode step runs as a CUDA graph unless HEARTH_CUDA_GRAPH=0: a
     * capture the driver refused falls back to launches one by one, correct
     * and slower, which only this shows. */
    if (context >= 80)
        HR_CHECK(hr_cuda_backend_uses_graph(dev.ctx) || g_strcmp0(g_getenv("HEARTH_CUDA_GRAPH"), "0") == 0,
                 "%s: the decode step runs without its CUDA graph (its capture failed)", label);
    printf("%-32s rows %3d  max |dlogit|/range %.2e (tolerance %.0e)  greedy ids equal %d/%d  graph %s\n", label,
           s.rows, (double)s.worst_rel, (double)tol, s.argmax_equal, s.rows,
           hr_cuda_backend_uses_graph(dev.ctx) ? "yes" : "no");
    g_rand_free(rng);
    dev.ops->destroy(dev.ctx);
    cpu.ops->destroy(cpu.ctx);
    hr_tensor_set_free(ts);
}

/* Too little device memory: a clear error naming both sizes, nothing leaked;
 * the FP32 KV cache is refused with a reason. */
static void
check_refusals(const char *dir)
{
    HrModelConfig cfg;
    HrTensorSet *ts = NULL;
    if (!hr_cmp_load(dir, &cfg, &ts))
        return;
    HrError err = { 0 };
    HrBackendOptions bopt = { .context_len = 64, .kv_type = HR_KV_F16 };
    void *ctx = NULL;
    g_setenv("HEARTH_CUDA_MAX_MEMORY_MIB", "0", TRUE);
    HrStatus st = hr_cuda_backend.create(&cfg, ts, &bopt, NULL, NULL, &ctx, &err);
    g_unsetenv("HEARTH_CUDA_MAX_MEMORY_MIB");
    HR_CHECK(st == HR_ERR_NOMEM && ctx == NULL, "a 0 MiB cap gave status %d", (int)st);
    HR_CHECK(st != HR_OK && strstr(err.message, "needs") && strstr(err.message, "free"), "message: %s",
             st != HR_OK ? err.message : "(none)");
    if (st != HR_OK)
        printf("out of memory: %s\n", err.message);
    if (ctx)
        hr_cuda_backend.destroy(ctx);
    ctx = NULL;
    hr_error_clear(&err);
    bopt.kv_type = HR_KV_F32;
    st = hr_cuda_backend.create(&cfg, ts, &bopt, NULL, NULL, &ctx, &err);
    HR_CHECK(st == HR_ERR_UNSUPPORTED && ctx == NULL, "kv f32: status %d", (int)st);
    if (ctx)
        hr_cuda_backend.destroy(ctx);
    hr_tensor_set_free(ts);
}

#ifdef HR_CUDA_EMU_MODEL
long hr_cuda_emu_fail_alloc_at(long n);
void hr_cuda_emu_memory(size_t *device_bytes, size_t *device_blocks, size_t *pinned_blocks);
long hr_cuda_emu_objects(char *what, size_t len);
long hr_cuda_emu_fail_launch_at(long n);
void hr_cuda_emu_reset(void);

/* A prompt, four decode steps (the graph's, after the first), their logits. */
static HrStatus
run_steps(void *ctx, const HrModelConfig *cfg, float *lg, HrError *err)
{
    int32_t tok[24];
    for (int i = 0; i < 24; i++)
        tok[i] = (i * 7 + 3) % cfg->vocab_size;
    HrStatus rs = hr_cuda_backend.forward(ctx, tok, 20, 0, false, err);
    for (int p = 20; rs == HR_OK && p < 24; p++) {
        rs = hr_cuda_backend.get_logits(ctx, -1, lg, err);
        if (rs == HR_OK)
            rs = hr_cuda_backend.forward(ctx, &tok[p], 1, p, false, err);
    }
    return rs == HR_OK ? hr_cuda_backend.get_logits(ctx, -1, lg, err) : rs;
}

/* The device failing while running (a kernel fault: from that launch on, every call returns the sticky
 * cudaErrorLaunchFailure, the emulator's hr_cuda_emu_fail_launch_at), at the first launch of a run, one
 * in its middle and its last: the run ends in HR_ERR_DEVICE with a message, so does the next (no wait that
 * never ends), destroy gives back everything; a new model on the failed device is refused the same way
 * and leaves nothing; after a reset, a new model gives the logits of before. The app's engine worker
 * loads the model again on such an error (app/hearth-engine.c). */
static void
check_device_failure(const char *dir, const char *label)
{
    HrModelConfig cfg;
    HrTensorSet *ts = NULL;
    if (!hr_cmp_load(dir, &cfg, &ts))
        return;
    HrBackendOptions bopt = { .context_len = 64, .kv_type = HR_KV_F16 };
    size_t base_bytes, base_blocks, base_pinned, bytes, blocks, pinned;
    hr_cuda_emu_memory(&base_bytes, &base_blocks, &base_pinned);
    const long base_objects = hr_cuda_emu_objects(NULL, 0);
    char what[256];
    float *want = g_new(float, cfg.vocab_size), *lg = g_new(float, cfg.vocab_size);
    HrError err = { 0 };
    void *ctx = NULL;
    HrStatus st = hr_cuda_backend.create(&cfg, ts, &bopt, NULL, NULL, &ctx, &err);
    HR_CHECK(st == HR_OK, "%s: %s", label, err.message);
    long n_launch = 0;
    if (st == HR_OK) {
        hr_cuda_emu_fail_launch_at(G_MAXLONG);
        st = run_steps(ctx, &cfg, want, &err);
        n_launch = hr_cuda_emu_fail_launch_at(0);
        HR_CHECK(st == HR_OK && n_launch > 2, "%s: %s (%ld launches)", label, err.message, n_launch);
        hr_cuda_backend.destroy(ctx);
    }
    const long at[3] = { 1, n_launch / 2, n_launch };
    for (int i = 0; i < 3 && n_launch > 2; i++) {
        ctx = NULL;
        st = hr_cuda_backend.create(&cfg, ts, &bopt, NULL, NULL, &ctx, &err);
        HR_CHECK(st == HR_OK, "%s: %s", label, err.message);
        if (st != HR_OK)
            break;
        hr_cuda_emu_fail_launch_at(at[i]);
        HrStatus rs = run_steps(ctx, &cfg, lg, &err);
        if (i == 0)
            printf("%-28s the device failing at launch %ld of a run: %s\n", label, at[i], err.message);
        HR_CHECK(rs == HR_ERR_DEVICE && err.message[0], "%s: the device failing at launch %ld of %ld: status %d (%s)",
                 label, at[i], n_launch, (int)rs, err.message);
        hr_error_clear(&err);
        rs = run_steps(ctx, &cfg, lg, &err);
        HR_CHECK(rs == HR_ERR_DEVICE && err.message[0], "%s: launch %ld failed, the next run: status %d", label,
                 at[i], (int)rs);
        hr_error_clear(&err);
        hr_cuda_backend.destroy(ctx);
        /* a new model on the failed device */
        ctx = NULL;
        st = hr_cuda_backend.create(&cfg, ts, &bopt, NULL, NULL, &ctx, &err);
        HR_CHECK(st == HR_ERR_DEVICE && !ctx && err.message[0], "%s: a new model on the failed device: status %d",
                 label, (int)st);
        if (ctx)
            hr_cuda_backend.destroy(ctx);
        hr_error_clear(&err);
        hr_cuda_emu_memory(&bytes, &blocks, &pinned);
        HR_CHECK(bytes == base_bytes && blocks == base_blocks && pinned == base_pinned &&
                 hr_cuda_emu_objects(what, sizeof what) == base_objects,
                 "%s: the device failing at launch %ld left %zu bytes in %zu blocks, %zu pinned; %s", label, at[i],
                 bytes - base_bytes, blocks - base_blocks, pinned - base_pinned, what);
        /* reset: a new model runs as before */
        hr_cuda_emu_reset();
        ctx = NULL;
        st = hr_cuda_backend.create(&cfg, ts, &bopt, NULL, NULL, &ctx, &err);
        if (st == HR_OK)
            st = run_steps(ctx, &cfg, lg, &err);
        HR_CHECK(st == HR_OK && memcmp(lg, want, sizeof(float) * (size_t)cfg.vocab_size) == 0,
                 "%s: after a reset: %s", label, st == HR_OK ? "other logits" : err.message);
        hr_error_clear(&err);
        if (ctx)
            hr_cuda_backend.destroy(ctx);
    }
    hr_cuda_emu_reset();
    g_free(want);
    g_free(lg);
    hr_tensor_set_free(ts);
}

/* The device out of memory at any allocation or object creation (the
 * emulator's fault injection: streams, events, graphs, cuBLAS handles too;
 * none may be left either): while loading, every one of them in turn must end in an error
 * with a message, no context and nothing left allocated (or, the decode
 * graph's instantiation failing, in a model that runs without a graph); while running (a
 * prompt, decode steps, then a prompt keeping every row's logits, with the
 * n-th allocation from then failing), in an error or a result, and the
 * model must still free everything, and run again once memory is back. */
static void
check_alloc_failures(const char *dir, const char *label)
{
    HrModelConfig cfg;
    HrTensorSet *ts = NULL;
    if (!hr_cmp_load(dir, &cfg, &ts))
        return;
    HrBackendOptions bopt = { .context_len = 64, .kv_type = HR_KV_F16 };
    size_t base_bytes, base_blocks, base_pinned;
    hr_cuda_emu_memory(&base_bytes, &base_blocks, &base_pinned);
    char what[256];
    const long base_objects = hr_cuda_emu_objects(NULL, 0);
    HrError err = { 0 };
    void *ctx = NULL;
    /* loading */
    hr_cuda_emu_fail_alloc_at(G_MAXLONG);
    HrStatus st = hr_cuda_backend.create(&cfg, ts, &bopt, NULL, NULL, &ctx, &err);
    const long n_load = hr_cuda_emu_fail_alloc_at(0);
    HR_CHECK(st == HR_OK, "%s: %s", label, err.message);
    if (ctx)
        hr_cuda_backend.destroy(ctx);
    ctx = NULL;
    int refused = 0, survived = 0;
    for (long n = 1; n <= n_load; n++) {
        hr_cuda_emu_fail_alloc_at(n);
        st = hr_cuda_backend.create(&cfg, ts, &bopt, NULL, NULL, &ctx, &err);
        hr_cuda_emu_fail_alloc_at(0);
        size_t bytes, blocks, pinned;
        hr_cuda_emu_memory(&bytes, &blocks, &pinned);
        if (st == HR_OK) {
            /* what it can do without: the decode step's CUDA graph (instantiating it failed); it runs without */
            HR_CHECK(!hr_cuda_backend_uses_graph(ctx), "%s: allocation %ld of %ld failing: loaded all the same, "
                     "with its graph", label, n, n_load);
            float *row = g_new(float, cfg.vocab_size);
            const int32_t t3[3] = { 1, 2, 3 };
            HrStatus rs = hr_cuda_backend.forward(ctx, t3, 3, 0, false, &err);
            if (rs == HR_OK)
                rs = hr_cuda_backend.forward(ctx, &t3[2], 1, 3, false, &err);
            if (rs == HR_OK)
                rs = hr_cuda_backend.get_logits(ctx, -1, row, &err);
            HR_CHECK(rs == HR_OK, "%s: allocation %ld of %ld failing: loaded without its graph, but does not run: %s",
                     label, n, n_load, err.message);
            g_free(row);
            survived++;
        } else {
            HR_CHECK(!ctx && err.message[0], "%s: allocation %ld of %ld failing: status %d, no message or a context",
                     label, n, n_load, (int)st);
        }
        if (ctx)
            hr_cuda_backend.destroy(ctx);
        ctx = NULL;
        hr_cuda_emu_memory(&bytes, &blocks, &pinned);
        HR_CHECK(bytes == base_bytes && blocks == base_blocks && pinned == base_pinned,
                 "%s: allocation %ld failing left %zu bytes in %zu device blocks and %zu pinned blocks", label, n,
                 bytes - base_bytes, blocks - base_blocks, pinned - base_pinned);
        HR_CHECK(hr_cuda_emu_objects(what, sizeof what) == base_objects, "%s: allocation %ld failing left %s",
                 label, n, what);
        refused += st != HR_OK;
        hr_error_clear(&err);
    }
    /* running */
    int32_t tok[24];
    for (int i = 0; i < 24; i++)
        tok[i] = (i * 7 + 3) % cfg.vocab_size;
    float *lg = g_new(float, cfg.vocab_size);
    long n_run = 0, run_errors = 0;
    for (long n = 1;; n++) {
        st = hr_cuda_backend.create(&cfg, ts, &bopt, NULL, NULL, &ctx, &err);
        if (st != HR_OK) {
            HR_CHECK(false, "%s: %s", label, err.message);
            break;
        }
        hr_cuda_emu_fail_alloc_at(n);
        HrStatus rs = hr_cuda_backend.forward(ctx, tok, 20, 0, false, &err);
        for (int p = 20; rs == HR_OK && p < 24; p++) {
            rs = hr_cuda_backend.get_logits(ctx, -1, lg, &err);
            if (rs == HR_OK)
                rs = hr_cuda_backend.forward(ctx, &tok[p], 1, p, false, &err);
        }
        if (rs == HR_OK)
            rs = hr_cuda_backend.get_logits(ctx, -1, lg, &err);
        if (rs == HR_OK)   /* every row's logits (perplexity): a buffer made on first use */
            rs = hr_cuda_backend.forward(ctx, tok, 24, 0, true, &err);
        if (rs == HR_OK)
            rs = hr_cuda_backend.get_logits(ctx, 5, lg, &err);
        const long made = hr_cuda_emu_fail_alloc_at(0);
        HR_CHECK(rs == HR_OK || err.message[0], "%s: running with allocation %ld failing: no message", label, n);
        if (rs != HR_OK) {
            run_errors++;
            hr_error_clear(&err);
            /* memory back: the same model runs again */
            rs = hr_cuda_backend.forward(ctx, tok, 20, 0, false, &err);
            if (rs == HR_OK)
                rs = hr_cuda_backend.get_logits(ctx, -1, lg, &err);
            HR_CHECK(rs == HR_OK, "%s: after allocation %ld failed while running, the model does not run again: %s",
                     label, n, err.message);
            hr_error_clear(&err);
        }
        hr_cuda_backend.destroy(ctx);
        ctx = NULL;
        size_t bytes, blocks, pinned;
        hr_cuda_emu_memory(&bytes, &blocks, &pinned);
        HR_CHECK(bytes == base_bytes && blocks == base_blocks && pinned == base_pinned,
                 "%s: allocation %ld failing while running left %zu bytes in %zu blocks, %zu pinned", label, n,
                 bytes - base_bytes, blocks - base_blocks, pinned - base_pinned);
        HR_CHECK(hr_cuda_emu_objects(what, sizeof what) == base_objects,
                 "%s: allocation %ld failing while running left %s", label, n, what);
        if (made < n)   /* fewer allocations than n: every one has been failed in turn */
            break;
        n_run = n;
    }
    g_free(lg);
    printf("%-28s out of memory at each of %ld allocations or creations while loading: %d refused, %d ran "
           "without a graph, nothing left; at each of %ld while running: %ld errors, each run again after; "
           "nothing left\n", label, n_load, refused, survived, n_run, run_errors);
    hr_tensor_set_free(ts);
}
#endif

/* A GGUF file without HEARTH_CUDA_GGUF=1: refused by name. */
static void
check_gguf_refusal(const char *path)
{
    HrModelConfig cfg;
    HrTensorSet *ts = NULL;
    if (!hr_cmp_load(path, &cfg, &ts))
        return;
    HrError err = { 0 };
    HrBackendOptions bopt = { .context_len = 64, .kv_type = HR_KV_F16 };
    void *ctx = NULL;
    g_unsetenv("HEARTH_CUDA_GGUF");
    HrStatus st = hr_cuda_backend.create(&cfg, ts, &bopt, NULL, NULL, &ctx, &err);
    HR_CHECK(st == HR_ERR_UNSUPPORTED && ctx == NULL && strstr(err.message, "GGUF") &&
                 strstr(err.message, "HEARTH_CUDA_GGUF=1"),
             "%s without HEARTH_CUDA_GGUF: status %d: %s", path, (int)st, st != HR_OK ? err.message : "");
    HR_CHECK(hr_cuda_backend.takes_ggml && !hr_cuda_backend.takes_ggml(2), "takes_ggml(Q4_0) without the variable");
    if (ctx)
        hr_cuda_backend.destroy(ctx);
    hr_tensor_set_free(ts);
}

/* The quantizer's host GEMM on the device against the CPU's. */
static void
check_gemm(void)
{
    const int N = 70, K = 130, T = 33;
    GRand *r = g_rand_new_with_seed(3);
    float *w = g_new(float, N * K), *x = g_new(float, T * K), *b = g_new(float, N);
    float *o1 = g_new(float, T * N), *o2 = g_new(float, T * N);
    for (int i = 0; i < N * K; i++)
        w[i] = (float)g_rand_double_range(r, -1, 1);
    for (int i = 0; i < T * K; i++)
        x[i] = (float)g_rand_double_range(r, -1, 1);
    for (int i = 0; i < N; i++)
        b[i] = (float)g_rand_double_range(r, -1, 1);
    void *c = NULL, *d = NULL;
    HrError err = { 0 };
    HR_CHECK(hr_cpu_backend.gemm_open(1, &c, &err) == HR_OK, "cpu gemm_open");
    HR_CHECK(hr_cuda_backend.gemm_open(1, &d, &err) == HR_OK, "cuda gemm_open: %s", err.message);
    if (c && d) {
        hr_cpu_backend.gemm(c, o1, w, N, K, b, x, T, &err);
        HR_CHECK(hr_cuda_backend.gemm(d, o2, w, N, K, b, x, T, &err) == HR_OK, "cuda gemm: %s", err.message);
        float m = 0;
        for (int i = 0; i < T * N; i++)
            m = hr_worse(m, fabsf(o1[i] - o2[i]));
        HR_CHECK(m <= 1e-4f, "gemm: max |diff| %g", (double)m);
    }
    if (c)
        hr_cpu_backend.gemm_close(c);
    if (d)
        hr_cuda_backend.gemm_close(d);
    g_free(w);
    g_free(x);
    g_free(b);
    g_free(o1);
    g_free(o2);
    g_rand_free(r);
}

/* A 2-layer SmolLM2-shaped AWQ g64 model (head_dim 64, GQA 3) from
 * hr-make-random-model, beside this executable in the build tree and in the
 * device bundle: the shape on which the opt-in tensor-core prefill attention
 * (the 300-token prefill) and the q8 GEMV with groups of 64 run, which the
 * fixtures above (head_dim 16 and 8) do not reach. Skipped, with a line,
 * when the tool is not there. */
static void
check_random_smollm2(void)
{
    g_autofree char *self = g_file_read_link("/proc/self/exe", NULL);
    g_autofree char *bindir = self ? g_path_get_dirname(self) : NULL;
    g_autofree char *tool = bindir ? g_build_filename(bindir, "hr-make-random-model", NULL) : NULL;
    if (!tool || !g_file_test(tool, G_FILE_TEST_IS_EXECUTABLE)) {
        printf("hr-make-random-model not beside the test: the SmolLM2-shaped checks are skipped\n");
        return;
    }
    g_autofree char *tmp = g_dir_make_tmp("hearth-cuda-s2-XXXXXX", NULL);
    g_autofree char *out = g_build_filename(tmp, "m", NULL);
    /* the emulator: 4,096 tokens instead of 49,152 (the lm_head is most of its time) */
    const char *argv[] = { tool, "--shape", "smollm2-135m", "--layers", "2", "--awq", "64", "--out", out,
                           EMU ? "--vocab" : NULL, "4096", NULL };
    int status = -1;
    g_autoptr(GError) gerr = NULL;
    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL,
                      NULL, NULL, &status, &gerr) ||
        !g_spawn_check_wait_status(status, NULL)) {
        HR_CHECK(false, "hr-make-random-model failed: %s", gerr ? gerr->message : "exit status");
    } else {
        /* the schedule's first prefill is 20 tokens: the tensor-core kernel's; the long run adds 300 */
        if (!EMU)
            check_model(out, "smollm2-shape AWQ g64", 5e-3f, 128, false);
        g_setenv("HEARTH_CUDA_ATTN", "tiled", TRUE);
        if (!EMU)
            check_model(out, "smollm2-shape AWQ g64 tiled+tc", 5e-3f, 512, true);
        g_setenv("HEARTH_CUDA_GEMV", "q8", TRUE);
        check_model(out, "smollm2-shape AWQ g64 q8 tiled+tc", 2e-2f, 128, false);
        g_unsetenv("HEARTH_CUDA_GEMV");
        g_unsetenv("HEARTH_CUDA_ATTN");
        hr_test_rmtree(out);
    }
    g_rmdir(tmp);
}

int
main(void)
{
    /* The CPU backend is the oracle here: FP32 activations, as the GPU has
     * (its int8-activation decode path is checked in test-matmul). */
    g_setenv("HEARTH_CPU_EXACT", "1", TRUE);
#ifdef HR_CUDA_EMU_MODEL
    EMU = !g_getenv("HEARTH_CUDA_EMU_FULL");
    N_GREEDY = EMU ? 24 : N_GREEDY_MAX;
#endif
    hr_test_need_cuda();
    char msg[256] = "";
    if (hr_cuda_device_describe(0, msg, sizeof msg) == 0)
        printf("device: %s\n", msg);

    check_gemm();
    {
        g_autofree char *dir = g_build_filename(HEARTH_FIXTURES, "hf-tiny", "llama-gqa-tied", "f32", NULL);
        check_refusals(dir);
#ifdef HR_CUDA_EMU_MODEL
        check_alloc_failures(dir, "llama-gqa-tied/f32");
        check_device_failure(dir, "llama-gqa-tied/f32");
        g_setenv("HEARTH_CUDA_GEMV", "q8", TRUE);   /* the opt-ins' own buffers and handles */
        g_setenv("HEARTH_CUDA_ATTN", "tiled", TRUE);
        g_setenv("HEARTH_CUDA_GEMM", "cublas", TRUE);
        check_alloc_failures(dir, "llama-gqa-tied q8 tiled cublas");
        g_unsetenv("HEARTH_CUDA_GEMV");
        g_unsetenv("HEARTH_CUDA_ATTN");
        g_unsetenv("HEARTH_CUDA_GEMM");
#endif
    }
    /* On the emulator with the op-table front end (CI's cuda-emu-model-ops,
     * HEARTH_CUDA_OPS=1), what runs the same upload and kernels as in
     * cuda-emu-model under the same op sequence runs there only with
     * HEARTH_TEST_FULL=1: the BF16 copies, the tiled attention on every
     * fixture and on FP16 stories260K, the GEMV prefill and FP16 cuBLAS
     * rows, the q8 GEMV's long run and its row without the int8 lm_head,
     * and the SmolLM2-shaped tensor-core row (CI time: ~60 s of 140 under
     * ASan). Each opt-in still runs once through the op table. */
    ops_short = EMU && g_getenv("HEARTH_CUDA_OPS") && !hr_test_full();
    static const char *fixtures[] = { "llama-gqa-tied", "llama3-rope", "llama-linear-rope", "qwen2-bias", "mistral" };
    for (size_t i = 0; i < G_N_ELEMENTS(fixtures); i++) {
        for (int v = 0; v < (ops_short ? 1 : 2); v++) {
            const char *variant = v ? "bf16" : "f32";
            g_autofree char *dir = g_build_filename(HEARTH_FIXTURES, "hf-tiny", fixtures[i], variant, NULL);
            g_autofree char *label = g_strdup_printf("%s/%s", fixtures[i], variant);
            check_model(dir, label, 1e-2f, 128, false);
        }
    }
    /* Qwen3's q/k norms: under the op table (k_head_norm before RoPE); the whole-model front end refuses
     * them with a message that names them */
    {
        g_autofree char *dir = g_build_filename(HEARTH_FIXTURES, "hf-tiny", "qwen3-qknorm", "f32", NULL);
        if (g_strcmp0(g_getenv("HEARTH_CUDA_OPS"), "1") == 0) {
            check_model(dir, "qwen3-qknorm/f32", 1e-2f, 128, false);
        } else {
            HrModelConfig cfg;
            HrTensorSet *ts = NULL;
            if (hr_cmp_load(dir, &cfg, &ts)) {
                HrError err = { 0 };
                HrBackendOptions bopt = { .context_len = 64, .kv_type = HR_KV_F16 };
                void *ctx = NULL;
                HrStatus st = hr_cuda_backend.create(&cfg, ts, &bopt, NULL, NULL, &ctx, &err);
                HR_CHECK(st == HR_ERR_UNSUPPORTED && ctx == NULL && strstr(err.message, "Qwen3"),
                         "qwen3 on the whole-model front end: status %d, %s", (int)st,
                         st != HR_OK ? err.message : "loaded");
                if (ctx)
                    hr_cuda_backend.destroy(ctx);
                hr_tensor_set_free(ts);
            }
        }
    }

    /* GGUF blocks (cuda-gguf.cu, opt-in: HEARTH_CUDA_GGUF=1): one file with
     * every block type the backend reads (Q4_0, Q4_1, Q4_K as 4-bit groups
     * with FP32 scale and offset; Q5_0, Q5_1, Q5_K, Q6_K, Q8_0 as int8 with
     * FP32 scales) and one with gate and up stored differently; without the
     * variable, a clear refusal naming the tensor and its type. */
    static const char *ggufs[] = { "llama-mixed.gguf", "llama-gate-up.gguf" };
    for (size_t i = 0; i < G_N_ELEMENTS(ggufs); i++) {
        g_autofree char *path = g_build_filename(HEARTH_FIXTURES, "gguf-tiny", ggufs[i], NULL);
        g_autofree char *label = g_strdup_printf("gguf-tiny/%s", ggufs[i]);
        check_gguf_refusal(path);
        g_setenv("HEARTH_CUDA_GGUF", "1", TRUE);
        check_model(path, label, 5e-3f, 128, false);
        if (i == 0) {   /* with every opt-in path: Q4_0 is the AWQ layout exactly, so q8 and cuBLAS take it */
            g_setenv("HEARTH_CUDA_GEMV", "q8", TRUE);
            g_setenv("HEARTH_CUDA_ATTN", "tiled", TRUE);
            g_setenv("HEARTH_CUDA_GEMM", "cublas", TRUE);
            g_autofree char *all = g_strdup_printf("%s q8 tiled cublas", label);
            check_model(path, all, 2e-2f, 128, false);
            g_unsetenv("HEARTH_CUDA_GEMV");
            g_unsetenv("HEARTH_CUDA_ATTN");
            g_unsetenv("HEARTH_CUDA_GEMM");
        }
        g_unsetenv("HEARTH_CUDA_GGUF");
    }
    if (!EMU) {   /* SmolLM2-135M-Instruct's own GGUF (Q4_1, Q8_0 embedding), when present */
        g_autofree char *smol = hr_test_smollm2_gguf();
        g_setenv("HEARTH_CUDA_GGUF", "1", TRUE);
        if (smol)
            check_model(smol, "smollm2 GGUF Q4_1/Q8_0", 5e-3f, 512, true);
        g_unsetenv("HEARTH_CUDA_GGUF");
    }

    g_autofree char *assets = hr_test_assets_dir();
    g_autofree char *f16 = assets ? g_build_filename(assets, "models", "stories260K", "hf_f16", NULL) : NULL;
    g_autofree char *f32 = assets ? g_build_filename(assets, "models", "stories260K", "hf_f32", NULL) : NULL;
    if (!f16 || !g_file_test(f16, G_FILE_TEST_IS_DIR) || !g_file_test(f32, G_FILE_TEST_IS_DIR)) {
        if (hr_test_result() != 0)
            return hr_test_result();
        hr_test_skip("stories260K is absent (HEARTH_ASSETS=%s); the hf-tiny fixtures passed", assets ? assets : "");
    }
    check_model(f16, "stories260K/hf_f16", 5e-3f, 512, true);
    g_setenv("HEARTH_CUDA_GEMM", "simple", TRUE);
    if (!ops_short)
        check_model(f16, "stories260K/hf_f16 gemv-prefill", 5e-3f, 512, !EMU);
    g_unsetenv("HEARTH_CUDA_GEMM");
    g_setenv("HEARTH_CUDA_GRAPH", "0", TRUE);
    check_model(f16, "stories260K/hf_f16 no-graph", 5e-3f, 512, false);
    g_unsetenv("HEARTH_CUDA_GRAPH");

    g_autofree char *tmp = g_dir_make_tmp("hearth-cuda-awq-XXXXXX", NULL);
    HrQuantOptions qopt;
    hr_quant_options_init(&qopt);
    qopt.method = HR_QUANT_RTN;
    qopt.group_size = 32;
    qopt.per_channel_fallback = true;
    qopt.backend = "cpu";
    HrError err = { 0 };
    if (hr_quantize_model(f32, tmp, &qopt, NULL, NULL, &err) != HR_OK)
        HR_CHECK(false, "quantize: %s", err.message);
    else
        check_model(tmp, "stories260K AWQ rtn g32", 5e-3f, 512, !EMU);
    /* the load's repack through engine/awq-layout.c on a thread pool
     * (HEARTH_CUDA_REPACK=layout, opt-in): test-cuda-repack checks its words
     * against the default repack's; this runs it through the whole upload
     * (the staging ring, the per-channel fallback's rows) */
    g_setenv("HEARTH_CUDA_REPACK", "layout", TRUE);
    check_model(tmp, "stories260K AWQ layout repack", 5e-3f, 512, false);
    g_unsetenv("HEARTH_CUDA_REPACK");

    /* The opt-in paths (engine/cuda/README.md), each against the same CPU
     * oracle: the tiled attention (on every fixture too: GQA, Qwen2's bias,
     * Mistral's sliding window), the cuBLAS prefill, and the int8-activation
     * decode GEMV, whose rounding of the activations (as the CPU's default
     * decode rounds them) is allowed 2e-2 of the row's range. */
    g_setenv("HEARTH_CUDA_ATTN", "tiled", TRUE);
    for (size_t i = 0; !ops_short && i < G_N_ELEMENTS(fixtures); i++) {
        g_autofree char *dir = g_build_filename(HEARTH_FIXTURES, "hf-tiny", fixtures[i], "f32", NULL);
        g_autofree char *label = g_strdup_printf("%s/f32 tiled-attention", fixtures[i]);
        check_model(dir, label, 1e-2f, 128, false);
    }
    if (!ops_short)
        check_model(f16, "stories260K/hf_f16 tiled-attention", 5e-3f, 512, true);
    g_setenv("HEARTH_CUDA_GEMM", "cublas", TRUE);
    if (!ops_short)
        check_model(f16, "stories260K/hf_f16 cublas tiled", 5e-3f, 512, !EMU);
    check_model(tmp, "stories260K AWQ cublas tiled", 5e-3f, 512, true);
    g_unsetenv("HEARTH_CUDA_GEMM");
    g_setenv("HEARTH_CUDA_GEMV", "q8", TRUE);
    check_model(tmp, "stories260K AWQ q8 tiled", 2e-2f, 512, !ops_short);
    g_unsetenv("HEARTH_CUDA_ATTN");
    if (!ops_short)
        check_model(tmp, "stories260K AWQ q8", 2e-2f, 512, false);
    /* and the lm_head rounded to int8 per 32 as the CPU's default decode reads
     * it (HEARTH_CUDA_LM_HEAD=q8; stories260K ties it: a matrix of its own) */
    g_setenv("HEARTH_CUDA_LM_HEAD", "q8", TRUE);
    check_model(tmp, "stories260K AWQ q8 lm_head", 2e-2f, 512, false);
    g_unsetenv("HEARTH_CUDA_LM_HEAD");
    g_unsetenv("HEARTH_CUDA_GEMV");
    hr_test_rmtree(tmp);
    if (!ops_short)
        check_random_smollm2();
    return hr_test_result();
}
