/* hearth-cli bench — prefill and decode speed of a model on a backend, with
 * the roofline beside every figure.
 *
 * Each repetition evaluates -p random prompt tokens from an empty cache
 * (prefill; the first token differs per repetition so no KV prefix is
 * reused), then -n greedy (or --temp ... sampled) decode steps, each drawn
 * as hr_generate draws: from the device's candidates where the backend
 * computes them, else from the whole row of logits. Reported: prefill
 * tokens/s, time to first token (prefill + the first draw), decode tokens/s
 * (median and min..max over repetitions), where the draws were made, peak
 * host RSS, the backend's memory report,
 * the bytes one decode step reads (resident weights the step touches + the
 * KV cache at the mean decode position) and, measured in the same run, the
 * device's read bandwidth, so decode tokens/s can be read as a fraction of
 * the bandwidth roofline.
 *
 * With --gemv ROWSxCOLS (no model) it times one kernel instead: the decode
 * GEMV (one token) of a random 4-bit (HrQMat) or F16 (HrMat) matrix of that
 * shape, as microseconds per call and GB/s of weight bytes read, beside the
 * host's read bandwidth measured in the same run on the same thread pool
 * (hr_cpu_read_bandwidth). The calls cycle through enough copies of the
 * matrix to fill --footprint MiB, so the weights come from memory, not from
 * the last-level cache, as in a decode step of a real model.
 *
 * With --gemm ROWSxCOLS --tokens T: the prefill linear of a T-token chunk
 * instead (the backend's prefill path: the CPU's blocked GEMM, the Vulkan
 * tiled GEMM), as microseconds per call and TFLOP/s (2 * ROWS * COLS * T
 * per call); on Vulkan beside the FP32 multiply-add peak measured in the
 * same run.
 *
 * --backend vulkan runs both on the Vulkan device (engine/vulkan/vk-bench.c):
 * the matrix packed by the backend's own packers, the backend's GEMV/GEMM
 * dispatches repeated in one command buffer (barriers between, as in a
 * forward step) and timed with GPU timestamps, against the device's read
 * bandwidth from a Vulkan read kernel.
 *
 * --backend cuda (engine/cuda/cuda-kernels-api.cu): the matrix repacked as
 * the CUDA backend repacks it, its launcher (the GEMV below 8 tokens, the
 * WMMA GEMM from 8) repeated on the default stream and timed with CUDA
 * events, against the CUDA read kernel's bandwidth. */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include "cpu-bandwidth.h"
#include "cpu-kernels.h"
#include "hearth-cli.h"
#include "hearth-config.h"
#include "hr-half.h"
#include "model.h"
#include "safetensors.h"
#if HEARTH_HAVE_CUDA
#include "cuda/hr-cuda-kernels.h"
#endif
#if HEARTH_HAVE_VULKAN
#include "vulkan/vk-bench.h"
#endif

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double
median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double
min_of(const double *v, int n)
{
    double m = v[0];
    for (int i = 1; i < n; i++)
        m = fmin(m, v[i]);
    return m;
}

static double
max_of(const double *v, int n)
{
    double m = v[0];
    for (int i = 1; i < n; i++)
        m = fmax(m, v[i]);
    return m;
}

/* Bytes of the embedding table when a separate lm_head exists: a decode
 * step gathers one row of it, so it is not part of the bytes read. */
static size_t
untied_embedding_bytes(const char *dir, const HrModelConfig *cfg)
{
    if (cfg->tie_embeddings)
        return 0;
    HrTensorSet *ts = NULL;
    HrError err = { 0 };
    if (hr_tensor_set_open_dir(dir, &ts, &err) != HR_OK)
        return 0;
    const HrTensor *t = hr_tensor_set_find(ts, "model.embed_tokens.weight");
    size_t b = t ? (size_t)hr_tensor_numel(t) * hr_dtype_size(t->dtype) : 0;
    hr_tensor_set_free(ts);
    return b;
}

/* ---- --gemv: one kernel against the read bandwidth ------------------------------ */

typedef struct {
    char **shapes;       /* --gemv, each "RxC" or a comma list */
    char *weights;       /* q4 (default) or f16 */
    char *impl;          /* an hr_matmul_impl_name(), default auto */
    int group, threads, reps, footprint_mb;
    double min_time;
    gboolean json;
    char **gemm_shapes;  /* --gemm */
    int tokens;          /* 1 for --gemv; --tokens for --gemm */
    const char *backend; /* "cpu" or "vulkan" */
} GemvOpts;

typedef struct {
    int rows, cols;
} Shape;

typedef struct {
    Shape s;
    size_t weight_bytes;  /* one copy */
    int copies;
    long calls;           /* per rep, the last one */
    double us_med, us_min, us_max, gbs_med, gbs_min, gbs_max;
    double tf_med, tf_min, tf_max;   /* TFLOP/s, 2 * rows * cols * tokens per call */
    const char *kernel;   /* Vulkan: "gemv", "gemm 64x64", "gemv-nt", ... (points at kernel_buf) */
    char kernel_buf[64];
} GemvResult;

/* Medians and ranges of the per-call times us[reps] into res. */
static void
gemv_stats(GemvResult *res, double *us, int reps, int tokens)
{
    double *gbs = g_new(double, reps), *tf = g_new(double, reps);
    for (int r = 0; r < reps; r++) {
        gbs[r] = (double)res->weight_bytes / (us[r] * 1e3); /* bytes / ns = GB/s */
        tf[r] = 2.0 * res->s.rows * (double)res->s.cols * tokens / (us[r] * 1e6);
    }
    res->us_min = min_of(us, reps);
    res->us_max = max_of(us, reps);
    res->us_med = median(us, reps);
    res->gbs_min = min_of(gbs, reps);
    res->gbs_max = max_of(gbs, reps);
    res->gbs_med = median(gbs, reps);
    res->tf_min = min_of(tf, reps);
    res->tf_max = max_of(tf, reps);
    res->tf_med = median(tf, reps);
    g_free(gbs);
    g_free(tf);
}

enum { GEMV_MAX_DIM = 1 << 20, GEMV_MAX_COPIES = 1 << 16, GEMM_MAX_TOKENS = 16384 };

/* HrMatmulImpl values by name: every value hr_matmul_impl_name() knows
 * (it answers "?" past the last one). */
static bool
impl_from_name(const char *name, HrMatmulImpl *out)
{
    for (int i = 0; i < 256; i++) {
        const char *n = hr_matmul_impl_name((HrMatmulImpl)i);
        if (!n || strcmp(n, "?") == 0)
            break;
        if (strcmp(n, name) == 0) {
            *out = (HrMatmulImpl)i;
            return true;
        }
    }
    return false;
}

/* "auto, scalar, ..." (all = FALSE: the ones this CPU runs). */
static char *
impl_names(bool all)
{
    GString *s = g_string_new(NULL);
    for (int i = 0; i < 256; i++) {
        const char *n = hr_matmul_impl_name((HrMatmulImpl)i);
        if (!n || strcmp(n, "?") == 0)
            break;
        if (!all && !hr_matmul_impl_available((HrMatmulImpl)i))
            continue;
        g_string_append_printf(s, "%s%s", s->len ? ", " : "", n);
    }
    return g_string_free(s, FALSE);
}

static bool
parse_dim(const char *s, const char *end, int *out)
{
    if (s == end || end - s > 9)
        return false;
    long v = 0;
    for (const char *p = s; p < end; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (*p - '0');
    }
    if (v < 1 || v > GEMV_MAX_DIM)
        return false;
    *out = (int)v;
    return true;
}

/* One "ROWSxCOLS" (surrounding spaces allowed). */
static bool
parse_shape(const char *spec, Shape *out)
{
    g_autofree char *t = g_strstrip(g_strdup(spec));
    const char *x = strpbrk(t, "xX");
    return x && parse_dim(t, x, &out->rows) && parse_dim(x + 1, t + strlen(t), &out->cols);
}

static uint64_t
xorshift64(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static void
fill_random(void *dst, size_t n, uint64_t *seed)
{
    unsigned char *p = dst;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v = xorshift64(seed);
        memcpy(p + i, &v, 8);
    }
    for (; i < n; i++)
        p[i] = (unsigned char)xorshift64(seed);
}

static float
rand_unit(uint64_t *seed) /* [0, 1) */
{
    return (float)(xorshift64(seed) >> 40) * (1.0f / 16777216.0f);
}

static size_t
round_up(size_t n, size_t a)
{
    return (n + a - 1) / a * a;
}

/* Time the decode GEMV of one shape; 0 or an exit status with the message
 * printed. */
static int
gemv_one(const GemvOpts *o, HrThreadPool *pool, HrMatmulImpl impl, Shape sh, GemvResult *res)
{
    const bool q4 = strcmp(o->weights, "q4") == 0;
    const int rows = sh.rows, cols = sh.cols, ng = q4 ? cols / o->group : 0;
    /* Strides of one copy inside the shared buffers, 64-byte aligned. */
    const size_t q_stride = round_up(q4 ? (size_t)rows * (size_t)(cols / 2) : (size_t)rows * (size_t)cols * 2, 64);
    const size_t s_stride = q4 ? round_up((size_t)rows * (size_t)ng, 64) : 0; /* groups */
    HrQMat probe = { .rows = rows, .cols = cols, .group = o->group, .n_groups = ng };
    const size_t wbytes = q4 ? hr_qmat_bytes(&probe) : (size_t)rows * (size_t)cols * 2;
    const size_t copy_bytes = q_stride + s_stride * (sizeof(uint16_t) + 1);
    const size_t footprint = (size_t)o->footprint_mb << 20;
    size_t copies = footprint / copy_bytes;
    copies = copies < 1 ? 1 : copies > GEMV_MAX_COPIES ? GEMV_MAX_COPIES : copies;
    int rc = 1;

    unsigned char *qbuf = g_try_malloc(q_stride * copies);
    uint16_t *sbuf = s_stride ? g_try_malloc(s_stride * copies * sizeof(uint16_t)) : NULL;
    uint8_t *zbuf = s_stride ? g_try_malloc(s_stride * copies) : NULL;
    HrQMat *qm = g_new0(HrQMat, copies);
    HrMat *fm = g_new0(HrMat, copies);
    const int T = o->tokens;
    float *x = g_new(float, (size_t)cols * T), *out = g_new(float, (size_t)rows * T);
    double *us = g_new(double, o->reps);
    if (!qbuf || (s_stride && (!sbuf || !zbuf))) {
        fprintf(stderr, "hearth-cli bench: cannot allocate %zu copies of a %dx%d matrix (%.1f MB); lower --footprint\n",
                copies, rows, cols, (double)(copy_bytes * copies) / 1e6);
        goto out;
    }

    uint64_t seed = 0x9e3779b97f4a7c15ull ^ ((uint64_t)rows << 32) ^ (uint64_t)cols;
    if (q4) {
        fill_random(qbuf, q_stride, &seed);
        for (size_t i = 0; i < (size_t)rows * (size_t)ng; i++) {
            sbuf[i] = hr_f32_to_f16(0.002f + 0.02f * rand_unit(&seed));
            zbuf[i] = (uint8_t)(xorshift64(&seed) & 15);
        }
    } else {
        uint16_t *h = (uint16_t *)qbuf;
        for (size_t i = 0; i < (size_t)rows * (size_t)cols; i++) {
            uint64_t r = xorshift64(&seed); /* sign, exponent 11..14 (1/16 .. 1), mantissa */
            h[i] = (uint16_t)(((r >> 20) & 1) << 15 | (11 + ((r >> 10) & 3)) << 10 | (r & 0x3ff));
        }
    }
    for (size_t c = 0; c < copies; c++) {
        if (c > 0) { /* identical contents; what counts is where they lie */
            memcpy(qbuf + c * q_stride, qbuf, q_stride);
            if (s_stride) {
                memcpy(sbuf + c * s_stride, sbuf, s_stride * sizeof(uint16_t));
                memcpy(zbuf + c * s_stride, zbuf, s_stride);
            }
        }
        qm[c] = (HrQMat){ .q = qbuf + c * q_stride,
                          .scale = s_stride ? sbuf + c * s_stride : NULL,
                          .zero = s_stride ? zbuf + c * s_stride : NULL,
                          .rows = rows, .cols = cols, .group = o->group, .n_groups = ng };
        fm[c] = (HrMat){ qbuf + c * q_stride, HR_DTYPE_F16, rows, cols };
    }
    for (size_t i = 0; i < (size_t)cols * T; i++)
        x[i] = 2.0f * rand_unit(&seed) - 1.0f;

#define GEMV_CALL(c)                                                                   \
    do {                                                                               \
        if (q4 && impl == HR_MATMUL_AUTO)                                              \
            hr_matmul_q4(pool, out, &qm[c], NULL, x, T, NULL);                            \
        else if (q4)                                                                   \
            hr_matmul_q4_impl(impl, pool, out, &qm[c], NULL, x, T, NULL);                 \
        else if (impl == HR_MATMUL_AUTO)                                               \
            hr_matmul(pool, out, &fm[c], NULL, x, T, NULL);                               \
        else                                                                           \
            hr_matmul_impl(impl, pool, out, &fm[c], NULL, x, T, NULL);                    \
    } while (0)

    GEMV_CALL(0); /* warm-up: threads awake, code and x in cache */
    if (!isfinite(out[0]) || !isfinite(out[(size_t)rows * T - 1])) {
        fprintf(stderr, "hearth-cli bench: the %dx%d GEMV gave a non-finite output\n", rows, cols);
        goto out;
    }
    const gint64 min_us = (gint64)(o->min_time * 1e6);
    size_t c = 1 % copies;
    long calls = 0;
    for (int r = 0; r < o->reps; r++) {
        calls = 0;
        gint64 t0 = g_get_monotonic_time(), dt;
        do {
            GEMV_CALL(c);
            c = c + 1 == copies ? 0 : c + 1;
            calls++;
            dt = g_get_monotonic_time() - t0;
        } while (dt < min_us);
        us[r] = (double)dt / (double)calls;
    }
#undef GEMV_CALL

    res->s = sh;
    res->weight_bytes = wbytes;
    res->copies = (int)copies;
    res->calls = calls;
    gemv_stats(res, us, o->reps, T);
    rc = 0;
out:
    g_free(qbuf);
    g_free(sbuf);
    g_free(zbuf);
    g_free(qm);
    g_free(fm);
    g_free(x);
    g_free(out);
    g_free(us);
    return rc;
}

#if HEARTH_HAVE_VULKAN || HEARTH_HAVE_CUDA
/* One shape's result from a GPU bench: sec[reps] seconds per call (scaled
 * to microseconds here). */
static void
gpu_result(GemvResult *r, Shape sh, size_t weight_bytes, int copies, long calls, const char *kernel, double *sec,
           const GemvOpts *o)
{
    for (int i = 0; i < o->reps; i++)
        sec[i] *= 1e6;
    r->s = sh;
    r->weight_bytes = weight_bytes;
    r->copies = copies;
    r->calls = calls;
    r->kernel = NULL;
    if (kernel) {   /* the bench's name may live in its own result struct: a copy */
        g_strlcpy(r->kernel_buf, kernel, sizeof r->kernel_buf);
        r->kernel = r->kernel_buf;
    }
    gemv_stats(r, sec, o->reps, o->tokens);
}
#endif

#if HEARTH_HAVE_VULKAN
/* Every shape on the Vulkan device: the read bandwidth (--gemv) or the FP32
 * peak (--gemm), then each linear; 0 or an exit status with the message
 * printed. */
static int
linear_vulkan(const GemvOpts *o, GArray *shapes, GemvResult *res, double *bw, double *peak, char **device,
              bool *gpu_timer)
{
    HrVkOptions vopt;
    hr_vk_options_init(&vopt);
    const char *val = g_getenv("HEARTH_VULKAN_VALIDATION");
    vopt.validation = val && val[0] == '1';
    HrVkContext *ctx = NULL;
    HrVkKernels *k = NULL;
    HrError err = { 0 };
    int rc = 1;
    double *sec = g_new(double, o->reps);
    if (hr_vk_context_new(&vopt, &ctx, &err) != HR_OK) {
        fprintf(stderr, "hearth-cli bench: %s\n", err.message);
        goto out;
    }
    const HrVkCaps *caps = hr_vk_context_caps(ctx);
    *device = g_strdup(caps->name);
    HrVkKernelConfig kcfg;
    hr_vk_kernel_config_for(caps, 64, &kcfg);
    if (hr_vk_kernels_new(ctx, &kcfg, &k, &err) != HR_OK ||
        (o->tokens == 1 ? hr_vk_read_bandwidth(ctx, bw, &err) : hr_vk_fma_peak(ctx, peak, &err)) != HR_OK) {
        fprintf(stderr, "hearth-cli bench: %s\n", err.message);
        goto out;
    }
    for (guint i = 0; i < shapes->len; i++) {
        Shape sh = g_array_index(shapes, Shape, i);
        HrVkLinearBenchArgs a = { .rows = sh.rows, .cols = sh.cols, .tokens = o->tokens,
                                  .q4 = strcmp(o->weights, "q4") == 0, .group = o->group,
                                  .footprint = (size_t)o->footprint_mb << 20, .min_time = o->min_time,
                                  .reps = o->reps };
        HrVkLinearBenchInfo info;
        if (hr_vk_bench_linear(k, ctx, &a, sec, &info, &err) != HR_OK) {
            fprintf(stderr, "hearth-cli bench: %dx%d: %s\n", sh.rows, sh.cols, err.message);
            goto out;
        }
        gpu_result(&res[i], sh, info.weight_bytes, info.copies, info.calls, info.kernel, sec, o);
        *gpu_timer = info.gpu_timer;
    }
    uint32_t msgs = hr_vk_context_validation_messages(ctx);
    if (msgs) {
        fprintf(stderr, "hearth-cli bench: the Vulkan validation layer reported %u message(s)\n", msgs);
        goto out;
    }
    rc = 0;
out:
    hr_vk_kernels_free(k);
    hr_vk_context_free(ctx);
    g_free(sec);
    return rc;
}
#endif

#if HEARTH_HAVE_CUDA
/* Every shape on the CUDA device: the read bandwidth (--gemv), then each
 * linear; 0 or an exit status with the message printed. */
static int
linear_cuda(const GemvOpts *o, GArray *shapes, GemvResult *res, double *bw, char **device)
{
    char msg[256] = "";
    double *sec = g_new(double, o->reps);
    int rc = 1;
    if (o->tokens == 1 && hr_cuda_bench_read_bandwidth(bw, msg, sizeof msg) != 0) {
        fprintf(stderr, "hearth-cli bench: --backend cuda: %s\n", msg);
        goto out;
    }
    for (guint i = 0; i < shapes->len; i++) {
        Shape sh = g_array_index(shapes, Shape, i);
        HrCudaLinearBench a = { .rows = sh.rows, .cols = sh.cols, .tokens = o->tokens,
                                .q4 = strcmp(o->weights, "q4") == 0, .group = o->group,
                                .footprint = (size_t)o->footprint_mb << 20, .min_time = o->min_time,
                                .reps = o->reps,
                                .path = strcmp(o->impl, "gemv") == 0     ? HR_CUDA_PATH_GEMV
                                        : strcmp(o->impl, "wmma") == 0   ? HR_CUDA_PATH_WMMA
                                        : strcmp(o->impl, "q8") == 0     ? HR_CUDA_PATH_Q8
                                        : strcmp(o->impl, "cublas") == 0 ? HR_CUDA_PATH_CUBLAS
                                                                         : HR_CUDA_PATH_AUTO };
        HrCudaLinearBenchInfo info;
        if (hr_cuda_bench_linear(&a, sec, &info, msg, sizeof msg) != 0) {
            fprintf(stderr, "hearth-cli bench: --backend cuda: %dx%d: %s\n", sh.rows, sh.cols, msg);
            goto out;
        }
        if (!*device)
            *device = g_strdup(info.device);
        gpu_result(&res[i], sh, info.weight_bytes, info.copies, info.calls, info.kernel, sec, o);
    }
    rc = 0;
out:
    g_free(sec);
    return rc;
}
#endif

/* Appends the shapes of one --gemv/--gemm value ("RxC[,RxC...]") to shapes;
 * false with the message printed. */
static bool
parse_shapes(const GemvOpts *o, char **specs, const char *flag, bool q4, bool vulkan, bool gpu, GArray *shapes)
{
    for (char **sp = specs; *sp; sp++) {
        g_auto(GStrv) parts = g_strsplit(*sp, ",", -1);
        if (!parts[0]) {
            fprintf(stderr, "hearth-cli bench: %s needs ROWSxCOLS\n", flag);
            return false;
        }
        for (char **p = parts; *p; p++) {
            Shape s;
            if (!parse_shape(*p, &s)) {
                fprintf(stderr, "hearth-cli bench: %s '%s' is not ROWSxCOLS with both in 1 .. %d\n", flag, *p,
                        GEMV_MAX_DIM);
                return false;
            }
            if (q4 && s.cols % 2) {
                fprintf(stderr, "hearth-cli bench: %s %dx%d: 4-bit weights need an even number of columns\n", flag,
                        s.rows, s.cols);
                return false;
            }
            if (q4 && s.cols % o->group) {
                fprintf(stderr, "hearth-cli bench: %s %dx%d: the group size %d does not divide the %d columns "
                                "(set --group)\n", flag, s.rows, s.cols, o->group, s.cols);
                return false;
            }
            if (q4 && gpu && s.rows % 8) {
                fprintf(stderr, "hearth-cli bench: %s %dx%d: 4-bit weights on a GPU backend need rows a multiple "
                                "of 8\n", flag, s.rows, s.cols);
                return false;
            }
            if (q4 && vulkan && o->group % 8 && o->group != s.cols) {
                fprintf(stderr, "hearth-cli bench: %s %dx%d: on Vulkan the group size (%d) must be a multiple of 8 "
                                "or the column count\n", flag, s.rows, s.cols, o->group);
                return false;
            }
            g_array_append_val(shapes, s);
        }
    }
    return true;
}

static int
bench_gemv(const GemvOpts *o)
{
    GArray *shapes = g_array_new(FALSE, FALSE, sizeof(Shape));
    GemvResult *res = NULL;
    HrThreadPool *pool = NULL;
    char *device = NULL;
    int rc = 2;
    const bool q4 = strcmp(o->weights, "q4") == 0;
    const bool gemm = o->gemm_shapes != NULL;
    const bool vulkan = strcmp(o->backend, "vulkan") == 0, cuda = strcmp(o->backend, "cuda") == 0;
    const bool gpu = vulkan || cuda;
    const char *mode = gemm ? "gemm" : "gemv";
    HrMatmulImpl impl = HR_MATMUL_AUTO;

    if (!gpu && strcmp(o->backend, "cpu") != 0) {
        fprintf(stderr, "hearth-cli bench: --gemv and --gemm take --backend cpu, vulkan or cuda, not '%s'\n",
                o->backend);
        goto out;
    }
#if !HEARTH_HAVE_CUDA
    if (cuda) {
        fprintf(stderr, "hearth-cli bench: --backend cuda: this build has no CUDA backend\n");
        goto out;
    }
#endif
#if !HEARTH_HAVE_VULKAN
    if (vulkan) {
        fprintf(stderr, "hearth-cli bench: --backend vulkan: this build has no Vulkan backend\n");
        goto out;
    }
#endif
    if (!q4 && strcmp(o->weights, "f16") != 0) {
        fprintf(stderr, "hearth-cli bench: --weights must be q4 or f16, not '%s'\n", o->weights);
        goto out;
    }
    /* CUDA: --impl picks the launcher's path (auto: the GEMV below 8 tokens, WMMA from 8; q8: the
     * GEMV on int8 activations; cublas: dequantize to FP16 + cublasGemmEx) */
    const bool cuda_impl = strcmp(o->impl, "gemv") == 0 || strcmp(o->impl, "wmma") == 0 ||
                           strcmp(o->impl, "q8") == 0 || strcmp(o->impl, "cublas") == 0;
    if (gpu && strcmp(o->impl, "auto") != 0 && !(cuda && cuda_impl)) {
        fprintf(stderr, "hearth-cli bench: --impl goes with --backend cpu (and gemv, wmma, q8 or cublas with "
                        "--backend cuda)\n");
        goto out;
    }
    if (!(cuda && cuda_impl) && !impl_from_name(o->impl, &impl)) {
        g_autofree char *names = impl_names(true);
        fprintf(stderr, "hearth-cli bench: unknown --impl '%s' (one of: %s)\n", o->impl, names);
        goto out;
    }
    if (!hr_matmul_impl_available(impl)) {
        g_autofree char *names = impl_names(false);
        fprintf(stderr, "hearth-cli bench: --impl %s cannot run on this CPU (available: %s)\n", o->impl, names);
        goto out;
    }
    if (o->reps < 1 || o->threads < 0 || o->footprint_mb < 0 || !(o->min_time >= 0 && o->min_time <= 60)) {
        fprintf(stderr, "hearth-cli bench: --reps must be positive, --threads and --footprint not negative, "
                        "--min-time within 0 .. 60 s\n");
        goto out;
    }
    if (o->tokens < 1 || o->tokens > GEMM_MAX_TOKENS) {
        fprintf(stderr, "hearth-cli bench: --tokens must be within 1 .. %d\n", GEMM_MAX_TOKENS);
        goto out;
    }
    if (q4 && (o->group < 2 || o->group % 2)) {
        fprintf(stderr, "hearth-cli bench: --group must be even and at least 2, not %d\n", o->group);
        goto out;
    }
    if (!parse_shapes(o, gemm ? o->gemm_shapes : o->shapes, gemm ? "--gemm" : "--gemv", q4, vulkan, gpu, shapes))
        goto out;

    rc = 1;
    const int n_threads = o->threads > 0 ? o->threads : (int)g_get_num_processors();
    double bw = 0.0, peak = 0.0;
    bool gpu_timer = false;
    res = g_new0(GemvResult, shapes->len);
    if (vulkan) {
#if HEARTH_HAVE_VULKAN
        if (linear_vulkan(o, shapes, res, &bw, &peak, &device, &gpu_timer) != 0)
            goto out;
#endif
    } else if (cuda) {
#if HEARTH_HAVE_CUDA
        if (linear_cuda(o, shapes, res, &bw, &device) != 0)
            goto out;
        gpu_timer = true;
#endif
    } else {
        pool = hr_pool_new(n_threads);
        HrError err = { 0 };
        if (!gemm && hr_cpu_read_bandwidth(pool, &bw, &err) != HR_OK) {
            fprintf(stderr, "hearth-cli bench: %s\n", err.message);
            goto out;
        }
        for (guint i = 0; i < shapes->len; i++)
            if (gemv_one(o, pool, impl, g_array_index(shapes, Shape, i), &res[i]) != 0)
                goto out;
    }

    const char *impl_name = gpu ? (shapes->len ? res[0].kernel : mode) : hr_matmul_impl_name(impl);
    char wdesc[32];
    if (q4)
        snprintf(wdesc, sizeof wdesc, "q4 g%d", o->group);
    else
        snprintf(wdesc, sizeof wdesc, "f16");
    if (o->json) {
        g_autoptr(JsonBuilder) b = json_builder_new();
        json_builder_begin_object(b);
        hr_cli_json_str(b, "mode", mode);
        hr_cli_json_str(b, "backend", o->backend);
        if (device)
            hr_cli_json_str(b, "device", device);
        if (gpu)
            hr_cli_json_str(b, "timer", gpu_timer ? "gpu" : "host");
        hr_cli_json_str(b, "weights", o->weights);
        if (q4) {
            hr_cli_json_int(b, "group", o->group);
        }
        hr_cli_json_str(b, "impl", impl_name);
        if (!gpu)
            hr_cli_json_int(b, "threads", n_threads);
        if (gemm)
            hr_cli_json_int(b, "tokens", o->tokens);
        hr_cli_json_int(b, "reps", o->reps);
        hr_cli_json_double(b, "min_time_s", o->min_time);
        hr_cli_json_int(b, "footprint_mb", o->footprint_mb);
        if (!gemm)
            hr_cli_json_double(b, "read_bandwidth_gb_s", bw / 1e9);
        if (gemm && peak > 0)
            hr_cli_json_double(b, "fp32_peak_tflop_s", peak / 1e12);
        json_builder_set_member_name(b, mode);
        json_builder_begin_array(b);
        for (guint i = 0; i < shapes->len; i++) {
            const GemvResult *r = &res[i];
            json_builder_begin_object(b);
            hr_cli_json_int(b, "rows", r->s.rows);
            hr_cli_json_int(b, "cols", r->s.cols);
            if (gemm)
                hr_cli_json_int(b, "tokens", o->tokens);
            if (r->kernel)
                hr_cli_json_str(b, "kernel", r->kernel);
            hr_cli_json_int(b, "weight_bytes", (gint64)r->weight_bytes);
            hr_cli_json_int(b, "copies", r->copies);
            hr_cli_json_int(b, "calls_per_rep", r->calls);
            hr_cli_json_double(b, "us_per_call", r->us_med);
            hr_cli_json_double(b, "us_per_call_min", r->us_min);
            hr_cli_json_double(b, "us_per_call_max", r->us_max);
            if (gemm) {
                hr_cli_json_double(b, "tflop_s", r->tf_med);
                hr_cli_json_double(b, "tflop_s_min", r->tf_min);
                hr_cli_json_double(b, "tflop_s_max", r->tf_max);
                if (peak > 0)
                    hr_cli_json_double(b, "fraction_of_peak", r->tf_med * 1e12 / peak);
            } else {
                hr_cli_json_double(b, "gb_s", r->gbs_med);
                hr_cli_json_double(b, "gb_s_min", r->gbs_min);
                hr_cli_json_double(b, "gb_s_max", r->gbs_max);
                hr_cli_json_double(b, "fraction_of_bandwidth", r->gbs_med * 1e9 / bw);
                hr_cli_json_double(b, "fraction_of_bandwidth_min", r->gbs_min * 1e9 / bw);
                hr_cli_json_double(b, "fraction_of_bandwidth_max", r->gbs_max * 1e9 / bw);
            }
            json_builder_end_object(b);
        }
        json_builder_end_array(b);
        json_builder_end_object(b);
        hr_cli_json_print(b);
    } else {
        if (vulkan)
            printf("device     %s (Vulkan; %s timer)\n", device, gpu_timer ? "GPU timestamp" : "host");
        if (cuda)
            printf("device     %s (CUDA; event timer)\n", device ? device : "?");
        if (!gemm && gpu)
            printf("bandwidth  %.2f GB/s read (%s read kernel, 16-byte loads, best of 5 passes)\n", bw / 1e9,
                   cuda ? "CUDA" : "Vulkan");
        else if (!gemm)
            printf("bandwidth  %.2f GB/s read (%d threads, best of 5 passes over 512 MiB)\n", bw / 1e9, n_threads);
        if (gemm && peak > 0)
            printf("peak       %.3f TFLOP/s FP32 (Vulkan multiply-add kernel, best of 3)\n", peak / 1e12);
        for (guint i = 0; i < shapes->len; i++) {
            const GemvResult *r = &res[i];
            const char *kn = r->kernel ? r->kernel : impl_name;
            if (gemm) {
                printf("gemm       %dx%d %s, %d tokens, %s %s: %.1f us/call median (%.1f .. %.1f over %d reps), "
                       "%.4f TFLOP/s (%.4f .. %.4f) over %.2f MB weights x %d copies", r->s.rows, r->s.cols, wdesc,
                       o->tokens, gpu ? "kernel" : "impl", kn, r->us_med, r->us_min, r->us_max, o->reps,
                       r->tf_med, r->tf_min, r->tf_max, (double)r->weight_bytes / 1e6, r->copies);
                if (peak > 0)
                    printf(" = %.1f %% of the FP32 peak", 100.0 * r->tf_med * 1e12 / peak);
                printf("\n");
            } else {
                printf("gemv       %dx%d %s, %s %s: %.1f us/call median (%.1f .. %.1f over %d reps), "
                       "%.2f GB/s (%.2f .. %.2f) of %.2f MB weights x %d copies = %.1f %% of the read bandwidth\n",
                       r->s.rows, r->s.cols, wdesc, gpu ? "kernel" : "impl", kn, r->us_med, r->us_min, r->us_max,
                       o->reps, r->gbs_med, r->gbs_min, r->gbs_max, (double)r->weight_bytes / 1e6, r->copies,
                       100.0 * r->gbs_med * 1e9 / bw);
            }
        }
    }
    rc = 0;
out:
    hr_pool_free(pool);
    g_free(res);
    g_free(device);
    g_array_free(shapes, TRUE);
    return rc;
}

int
hr_cli_bench(int argc, char **argv)
{
    char *model_dir = NULL, *backend = NULL, *kv = NULL;
    int n_prompt = 512, n_gen = 128, reps = 3, threads = 0, ctx = 0;
    gboolean json = FALSE;
    /* Greedy unless a sampling option says otherwise: with the app's
     * settings (--temp 0.7 --top-p 0.95 --top-k 40 --min-p 0.05
     * --repeat-penalty 1.1) decode times what the window's replies cost. */
    HrCliSampling samp = { .temp = 0.0, .top_p = 1.0, .min_p = 0.0, .rep = 1.0, .top_k = 0 };
    GOptionEntry samp_entries[6];
    GemvOpts go = { NULL, NULL, NULL, 128, 0, 5, 512, 0.2, FALSE, NULL, INT_MIN, NULL };
    g_autofree char *impl_list = impl_names(true);
    g_autofree char *impl_help = g_strdup_printf("--gemv: matmul implementation, one of %s (default auto)", impl_list);
    GOptionEntry entries[] = {
        { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_dir, "Model directory", "DIR" },
        { "backend", 0, 0, G_OPTION_ARG_STRING, &backend, "Backend (default auto)", "NAME" },
        { "prompt", 'p', 0, G_OPTION_ARG_INT, &n_prompt, "Prompt tokens per repetition (default 512)", "N" },
        { "gen", 'n', 0, G_OPTION_ARG_INT, &n_gen, "Decoded tokens per repetition (default 128)", "N" },
        { "reps", 0, 0, G_OPTION_ARG_INT, &reps, "Repetitions (default 3; 5 with --gemv)", "R" },
        { "threads", 't', 0, G_OPTION_ARG_INT, &threads, "CPU threads (default: one per core)", "N" },
        { "ctx", 0, 0, G_OPTION_ARG_INT, &ctx, "KV cache capacity (default: prompt + gen)", "N" },
        { "kv", 0, 0, G_OPTION_ARG_STRING, &kv, "KV cache type: f16 (default) or f32", "TYPE" },
        { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print one JSON object instead of text", NULL },
        { "gemv", 0, 0, G_OPTION_ARG_STRING_ARRAY, &go.shapes,
          "Time the decode GEMV of a random ROWSxCOLS matrix instead of a model (repeatable, or a comma list)",
          "ROWSxCOLS[,...]" },
        { "gemm", 0, 0, G_OPTION_ARG_STRING_ARRAY, &go.gemm_shapes,
          "Time the prefill GEMM of a random ROWSxCOLS matrix for --tokens tokens instead of a model",
          "ROWSxCOLS[,...]" },
        { "tokens", 0, 0, G_OPTION_ARG_INT, &go.tokens, "--gemm: tokens per call (default 512)", "T" },
        { "weights", 0, 0, G_OPTION_ARG_STRING, &go.weights, "--gemv/--gemm: q4 (4-bit groups, default) or f16",
          "TYPE" },
        { "group", 0, 0, G_OPTION_ARG_INT, &go.group, "--gemv/--gemm: q4 group size (default 128)", "G" },
        { "impl", 0, 0, G_OPTION_ARG_STRING, &go.impl, impl_help, "NAME" },
        { "min-time", 0, 0, G_OPTION_ARG_DOUBLE, &go.min_time,
          "--gemv/--gemm: seconds each repetition lasts at least (default 0.2)", "S" },
        { "footprint", 0, 0, G_OPTION_ARG_INT, &go.footprint_mb,
          "--gemv/--gemm: MiB of matrix copies the calls cycle through (default 512: weights come from memory; "
          "0: one copy, cache-resident when it fits)", "MIB" },
        { NULL },
    };
    g_autoptr(GOptionContext) octx = g_option_context_new("— prefill and decode speed against the roofline");
    g_option_context_add_main_entries(octx, entries, NULL);
    hr_cli_sampling_entries(&samp, samp_entries);
    g_option_context_add_main_entries(octx, samp_entries, NULL);
    g_option_context_set_description(octx,
        "With -m DIR: prefill and decode speed of a model (-p, -n, --reps, --threads, --ctx, --kv, --backend).\n"
        "Decode is greedy unless a sampling option is given (--temp, --top-k, --top-p, --min-p,\n"
        "--repeat-penalty, as generate takes them); then each token is sampled as the app does.\n"
        "\n"
        "With --gemv ROWSxCOLS (no -m): the CPU decode GEMV (one token, n = 1) of a random matrix, e.g.\n"
        "  hearth-cli bench --gemv 4096x4096,4096x11008 --weights q4 --reps 5\n"
        "Shapes: a comma list, and/or --gemv repeated. Each repetition (--reps, default 5 in this mode) calls\n"
        "the kernel until --min-time has passed, cycling through copies of the matrix that fill --footprint\n"
        "MiB. Reported per shape: microseconds per call and GB/s of weight bytes read (median and min .. max\n"
        "over repetitions), and their fraction of the read bandwidth measured in the same run on the same\n"
        "--threads (default: one per core). q4 needs an even COLS that --group divides.\n"
        "\n"
        "With --gemm ROWSxCOLS --tokens T (no -m): the prefill linear of a T-token chunk (default 512), e.g.\n"
        "  hearth-cli bench --gemm 4096x4096 --tokens 512\n"
        "reported as microseconds per call and TFLOP/s (2 x ROWS x COLS x T per call).\n"
        "\n"
        "--backend vulkan (with --gemv or --gemm): the same on the Vulkan device, through the backend's own\n"
        "packing and kernels, timed with GPU timestamps, beside the device's read bandwidth (--gemv) or FP32\n"
        "multiply-add peak (--gemm) measured in the same run. 4-bit weights there need ROWS a multiple of 8 and\n"
        "a group that is a multiple of 8 (or COLS). --impl and --threads are the CPU's.\n"
        "\n"
        "--backend cuda (with --gemv or --gemm): the same through the CUDA backend's launcher; --impl picks its\n"
        "path: gemv, wmma, q8 (the 4-bit GEMV on int8 activations) or cublas (the matrix dequantized to FP16,\n"
        "then cublasGemmEx), default auto.");
    g_autoptr(GError) error = NULL;
    int rc = 2;
    HrModel *model = NULL;
    HrSampler *sampler = NULL;
    int32_t *toks = NULL;
    double *pre = NULL, *dec = NULL, *ttft = NULL;
    HrError err = { 0 };

    /* --reps defaults to 5 with --gemv: tell an explicit --reps apart. */
    reps = INT_MIN;
    if (!g_option_context_parse(octx, &argc, &argv, &error)) {
        fprintf(stderr, "hearth-cli bench: %s\n", error->message);
        goto out;
    }
    if (go.shapes || go.gemm_shapes) {
        if (argc > 1) {
            fprintf(stderr, "hearth-cli bench: unexpected argument '%s'\n", argv[1]);
            goto out;
        }
        if (go.shapes && go.gemm_shapes) {
            fprintf(stderr, "hearth-cli bench: --gemv and --gemm exclude each other\n");
            goto out;
        }
        if (model_dir) {
            fprintf(stderr, "hearth-cli bench: %s and -m exclude each other\n", go.shapes ? "--gemv" : "--gemm");
            goto out;
        }
        if (go.shapes && go.tokens != INT_MIN) {
            fprintf(stderr, "hearth-cli bench: --tokens goes with --gemm\n");
            goto out;
        }
        go.tokens = go.shapes ? 1 : go.tokens != INT_MIN ? go.tokens : 512;
        go.backend = backend ? backend : "cpu";
        go.weights = go.weights ? go.weights : g_strdup("q4");
        go.impl = go.impl ? go.impl : g_strdup("auto");
        go.threads = threads;
        go.reps = reps != INT_MIN ? reps : 5;
        go.json = json;
        rc = bench_gemv(&go);
        goto out;
    }
    if (go.weights || go.impl || go.tokens != INT_MIN) {
        fprintf(stderr, "hearth-cli bench: --weights, --impl and --tokens go with --gemv or --gemm\n");
        goto out;
    }
    if (reps == INT_MIN)
        reps = 3;
    if (!model_dir || n_prompt < 1 || n_gen < 1 || reps < 1) {
        fprintf(stderr, "hearth-cli bench: -m DIR is required; -p, -n and --reps must be positive\n");
        goto out;
    }
    if (kv && strcmp(kv, "f16") != 0 && strcmp(kv, "f32") != 0) {
        fprintf(stderr, "hearth-cli bench: --kv must be f16 or f32\n");
        goto out;
    }
    if (!hr_cli_sampling_check(&samp, "hearth-cli bench"))
        goto out;
    rc = 1;
    if (!hr_cli_resolve_model(&model_dir, &error)) {
        fprintf(stderr, "hearth-cli bench: %s\n", error->message);
        goto out;
    }
    HrModelOptions mopt;
    hr_model_options_init(&mopt);
    if (backend)
        mopt.backend = backend;
    mopt.n_threads = threads;
    mopt.context_len = ctx > 0 ? ctx : n_prompt + n_gen;
    if (kv && strcmp(kv, "f32") == 0)
        mopt.kv_type = HR_KV_F32;
    gint64 t_load = g_get_monotonic_time();
    if (hr_model_load(model_dir, &mopt, &model, &err) != HR_OK) {
        fprintf(stderr, "hearth-cli bench: %s\n", err.message);
        goto out;
    }
    if (hr_model_notice(model))
        fprintf(stderr, "hearth-cli bench: %s\n", hr_model_notice(model));
    double load_s = (double)(g_get_monotonic_time() - t_load) / 1e6;
    const HrModelConfig *cfg = hr_model_config(model);
    const HrBackendOps *ops = hr_model_backend(model);
    if (n_prompt + n_gen > hr_model_context_len(model)) {
        fprintf(stderr, "hearth-cli bench: -p + -n = %d exceeds the context of %d\n", n_prompt + n_gen,
                hr_model_context_len(model));
        goto out;
    }
    const int V = cfg->vocab_size;
    const bool sampled = samp.temp > 0 || samp.top_k > 0 || samp.top_p < 1 || samp.min_p > 0 || samp.rep != 1;
    /* greedy unless asked: the draw goes the way hr_generate's does (on the
     * device where the backend can), so it is part of the figures */
    HrSamplerParams sp;
    hr_sampler_params_init(&sp);
    if (sampled)
        hr_cli_sampling_params(&samp, 1, &sp);
    sampler = hr_sampler_new(&sp, V);
    hr_model_attach_sampler(model, sampler);
    toks = g_new(int32_t, (size_t)n_prompt + n_gen);
    pre = g_new(double, reps);
    dec = g_new(double, reps);
    ttft = g_new(double, reps);
    for (int r = 0; r < reps; r++) {
        guint32 x = 2463534242u + (guint32)r * 7919u;
        for (int i = 0; i < n_prompt; i++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            toks[i] = (int32_t)(x % (guint32)V);
        }
        toks[0] = (int32_t)((r + 1) % V); /* a new first token: no cached prefix */
        hr_sampler_reset(sampler);
        for (int i = 0; i < n_prompt; i++)
            hr_sampler_accept(sampler, toks[i]);
        gint64 t0 = g_get_monotonic_time();
        int32_t t;
        if (hr_model_eval(model, toks, n_prompt, &err) != HR_OK || hr_model_sample(model, sampler, &t, &err) != HR_OK) {
            fprintf(stderr, "hearth-cli bench: prefill: %s\n", err.message);
            goto out;
        }
        gint64 t1 = g_get_monotonic_time();
        ttft[r] = (double)(t1 - t0) / 1e3;
        pre[r] = n_prompt / ((double)(t1 - t0) / 1e6);
        for (int i = 0; i < n_gen; i++) {
            hr_sampler_accept(sampler, t);
            if (hr_model_append(model, &t, 1, &err) != HR_OK || hr_model_sample(model, sampler, &t, &err) != HR_OK) {
                fprintf(stderr, "hearth-cli bench: decode: %s\n", err.message);
                goto out;
            }
        }
        dec[r] = n_gen / ((double)(g_get_monotonic_time() - t1) / 1e6);
    }

    hr_model_attach_sampler(model, NULL);
    uint64_t draws_dev, draws_host;
    hr_model_sample_counts(model, &draws_dev, &draws_host);
    HrMemoryReport mem = { 0 };
    hr_model_memory(model, &mem);
    const size_t kv_elem = mopt.kv_type == HR_KV_F32 ? 4 : 2;
    const double mean_pos = n_prompt + n_gen / 2.0;
    const double kv_read = 2.0 * cfg->n_layers * cfg->n_kv_heads * cfg->head_dim * mean_pos * (double)kv_elem;
    const double step_bytes = (mem.decode_weight_bytes ? (double)mem.decode_weight_bytes
                                                       : (double)(mem.weight_bytes - untied_embedding_bytes(model_dir, cfg))) +
                              kv_read;
    struct rusage ru; /* before the bandwidth probe's buffer */
    getrusage(RUSAGE_SELF, &ru);
    double bw = 0.0;
    const char *bw_what = "not measured (the backend has no bandwidth probe)";
    if (ops->read_bandwidth) {
        if (ops->read_bandwidth(hr_model_backend_ctx(model), &bw, &err) == HR_OK)
            bw_what = "measured";
        else
            bw_what = err.message;
    }
    const double dec_med = median(dec, reps), pre_med = median(pre, reps), ttft_med = median(ttft, reps);
    const double roof = bw > 0 ? bw / step_bytes : 0.0;

    if (json) {
        g_autoptr(JsonBuilder) b = json_builder_new();
        json_builder_begin_object(b);
        hr_cli_json_str(b, "model", model_dir);
        hr_cli_json_str(b, "backend", ops->name);
        hr_cli_json_int(b, "prompt_tokens", n_prompt);
        hr_cli_json_int(b, "gen_tokens", n_gen);
        hr_cli_json_int(b, "reps", reps);
        json_builder_set_member_name(b, "sampled");
        json_builder_add_boolean_value(b, sampled);
        hr_cli_json_int(b, "device_draws", (gint64)draws_dev);
        hr_cli_json_int(b, "host_draws", (gint64)draws_host);
        hr_cli_json_double(b, "load_s", load_s);
        hr_cli_json_double(b, "load_read_s", mem.load_read_s);
        hr_cli_json_double(b, "load_convert_s", mem.load_convert_s);
        hr_cli_json_double(b, "load_upload_s", mem.load_upload_s);
        hr_cli_json_double(b, "prefill_tok_s", pre_med);
        hr_cli_json_double(b, "prefill_tok_s_min", min_of(pre, reps));
        hr_cli_json_double(b, "prefill_tok_s_max", max_of(pre, reps));
        hr_cli_json_double(b, "ttft_ms", ttft_med);
        hr_cli_json_double(b, "decode_tok_s", dec_med);
        hr_cli_json_double(b, "decode_tok_s_min", min_of(dec, reps));
        hr_cli_json_double(b, "decode_tok_s_max", max_of(dec, reps));
        hr_cli_json_double(b, "bytes_per_token", step_bytes);
        hr_cli_json_double(b, "read_bandwidth_gb_s", bw / 1e9);
        hr_cli_json_double(b, "roofline_tok_s", roof);
        hr_cli_json_double(b, "fraction_of_roofline", roof > 0 ? dec_med / roof : 0.0);
        hr_cli_json_double(b, "peak_rss_mb", (double)ru.ru_maxrss / 1024.0);
        hr_cli_json_int(b, "weight_bytes", (gint64)mem.weight_bytes);
        hr_cli_json_int(b, "kv_bytes", (gint64)mem.kv_bytes);
        hr_cli_json_int(b, "scratch_bytes", (gint64)mem.scratch_bytes);
        hr_cli_json_str(b, "memory_location", mem.location ? mem.location : "");
        json_builder_end_object(b);
        hr_cli_json_print(b);
    } else {
        printf("model     %s (%s backend, %d layers, dim %d, vocab %d%s), loaded in %.2f s\n", model_dir, ops->name,
               cfg->n_layers, cfg->dim, V, cfg->awq ? ", AWQ 4-bit" : "", load_s);
        if (mem.load_read_s + mem.load_convert_s + mem.load_upload_s > 0)
            printf("load      read %.2f s, repack/convert %.2f s, upload %.2f s, other (config, checks, device "
                   "set-up) %.2f s\n", mem.load_read_s, mem.load_convert_s, mem.load_upload_s,
                   MAX(0.0, load_s - mem.load_read_s - mem.load_convert_s - mem.load_upload_s));
        printf("prefill   %d tokens: %.1f tok/s median (%.1f .. %.1f over %d reps), time to first token %.1f ms\n",
               n_prompt, pre_med, min_of(pre, reps), max_of(pre, reps), reps, ttft_med);
        printf("decode    %d tokens%s: %.2f tok/s median (%.2f .. %.2f); draws: %llu from the device's "
               "candidates, %llu from the whole row\n", n_gen, sampled ? " (sampled)" : "", dec_med, min_of(dec, reps),
               max_of(dec, reps), (unsigned long long)draws_dev, (unsigned long long)draws_host);
        printf("roofline  %.1f MB read per decoded token (weights + KV at position %.0f); read bandwidth ", step_bytes / 1e6,
               mean_pos);
        if (bw > 0)
            printf("%.2f GB/s (%s) -> %.2f tok/s ceiling; decode at %.1f %% of it\n", bw / 1e9, bw_what, roof,
                   100.0 * dec_med / roof);
        else
            printf("%s\n", bw_what);
        printf("memory    peak host RSS %.1f MB; %s: weights %.1f MB, KV %.1f MB, scratch %.1f MB\n",
               (double)ru.ru_maxrss / 1024.0, mem.location ? mem.location : "?", mem.weight_bytes / 1e6,
               mem.kv_bytes / 1e6, mem.scratch_bytes / 1e6);
    }
    rc = 0;
out:
    hr_sampler_free(sampler);
    hr_model_free(model);
    g_free(toks);
    g_free(pre);
    g_free(dec);
    g_free(ttft);
    g_free(model_dir);
    g_free(backend);
    g_free(kv);
    g_strfreev(go.shapes);
    g_strfreev(go.gemm_shapes);
    g_free(go.weights);
    g_free(go.impl);
    return rc;
}
