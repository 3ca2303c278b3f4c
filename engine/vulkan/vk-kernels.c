/* vk-kernels.c — pipelines, weight repacking and dispatch builders for the
 * Vulkan backend (see vk-kernels.h for the layouts). */
#include "vk-kernels.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "awq-layout.h"
#include "cpu-kernels.h"
#include "gguf-blocks.h"
#include "gguf.h"
#include "hr-half.h"
#include "q8-round.h"

static const uint32_t embed_spv[] =
#include "embed.spv.h"
    ;
static const uint32_t rmsnorm_spv[] =
#include "rmsnorm.spv.h"
    ;
static const uint32_t rmsnorm_sg_spv[] =
#include "rmsnorm_sg.spv.h"
    ;
static const uint32_t head_norm_spv[] =
#include "head_norm.spv.h"
    ;
static const uint32_t head_norm_sg_spv[] =
#include "head_norm_sg.spv.h"
    ;
static const uint32_t rope_kv_spv[] =
#include "rope_kv.spv.h"
    ;
static const uint32_t attn_spv[] =
#include "attn.spv.h"
    ;
static const uint32_t attn_sg_spv[] =
#include "attn_sg.spv.h"
    ;
static const uint32_t attn_tile_spv[] =
#include "attn_tile.spv.h"
    ;
static const uint32_t attn_combine_spv[] =
#include "attn_combine.spv.h"
    ;
static const uint32_t silu_mul_spv[] =
#include "silu_mul.spv.h"
    ;
static const uint32_t argmax_spv[] =
#include "argmax.spv.h"
    ;
static const uint32_t penalize_spv[] =
#include "penalize.spv.h"
    ;
static const uint32_t topk_spv[] =
#include "topk.spv.h"
    ;
static const uint32_t sq_diff_spv[] =
#include "sq_diff.spv.h"
    ;
static const uint32_t scale_quant_spv[] =
#include "scale_quant.spv.h"
    ;
static const uint32_t clip_gram_spv[] =
#include "clip_gram.spv.h"
    ;
static const uint32_t clip_search_spv[] =
#include "clip_search.spv.h"
    ;
static const uint32_t col_ops_spv[] =
#include "col_ops.spv.h"
    ;
static const uint32_t gemm_spv[] =
#include "gemm.spv.h"
    ;
static const uint32_t gemm_coop_spv[] =
#include "gemm_coop.spv.h"
    ;
static const uint32_t gemm_coop_emu_spv[] =
#include "gemm_coop_emu.spv.h"
    ;
static const uint32_t gemv_spv[] =
#include "gemv.spv.h"
    ;
static const uint32_t gemv_sg_spv[] =
#include "gemv_sg.spv.h"
    ;
static const uint32_t gemv_f16a_spv[] =
#include "gemv_f16a.spv.h"
    ;
static const uint32_t gemv_sg_f16a_spv[] =
#include "gemv_sg_f16a.spv.h"
    ;
static const uint32_t gemv_wide_spv[] =
#include "gemv_wide.spv.h"
    ;
static const uint32_t gemv_sg_wide_spv[] =
#include "gemv_sg_wide.spv.h"
    ;
static const uint32_t gemv_q8_spv[] =
#include "gemv_q8.spv.h"
    ;
static const uint32_t gemv_sg_q8_spv[] =
#include "gemv_sg_q8.spv.h"
    ;
static const uint32_t quant_q8_spv[] =
#include "quant_q8.spv.h"
    ;
static const uint32_t rmsnorm_q8_spv[] =
#include "rmsnorm_q8.spv.h"
    ;
static const uint32_t rmsnorm_sg_q8_spv[] =
#include "rmsnorm_sg_q8.spv.h"
    ;
static const uint32_t attn_combine_q8_spv[] =
#include "attn_combine_q8.spv.h"
    ;

enum { POOL_SETS = 128, MAX_BINDINGS = 8, MAX_SPEC = 12 };

/* What a kernel's pipeline is made of; made when a dispatch first needs it
 * (hr_vk_kernels_ensure). */
typedef struct {
    const uint32_t *spv;    /* NULL: not in this configuration */
    size_t bytes;
    uint32_t bindings, push, spec[MAX_SPEC], n_spec;
} PipeRecipe;

struct HrVkKernels {
    HrVkContext *ctx;
    HrVkKernelConfig cfg;
    PipeRecipe recipes[HR_VK_K_COUNT];
    HrVkPipeline pipes[HR_VK_K_COUNT];
    bool wanted[HR_VK_K_COUNT];   /* a dispatch was made for it */
    VkDescriptorSetLayout set_layouts[MAX_BINDINGS + 1];   /* by binding count; the sets' layout, identically
                                                             defined to each pipeline's own */
    GArray *pools;          /* VkDescriptorPool */
    uint32_t pool_left;     /* sets left in the newest pool */
    HrVkBuffer dummy;       /* bound where a kernel's optional buffer is absent */
};

static uint32_t
pow2_floor(uint32_t v)
{
    uint32_t p = 1;
    while (p * 2 <= v)
        p *= 2;
    return p;
}

/* The GEMM's tile for one variant: gate+up (two blocks of sums a thread, or
 * two sets of fragments a subgroup) takes half the tokens of the others, the
 * same threads. *tn: tokens a thread (gemm.comp) or a subgroup (gemm_coop). */
static void
gemm_tile(const HrVkKernelConfig *cfg, bool gate, uint32_t *bn, uint32_t *tn)
{
    if (cfg->gemm_coop) {
        *tn = gate ? cfg->coop_wn / 2 : cfg->coop_wn;
        *bn = gate ? cfg->gemm_bn / 2 : cfg->gemm_bn;
        return;
    }
    *tn = gate && cfg->gemm_tn > 1 ? cfg->gemm_tn / 2 : cfg->gemm_tn;
    *bn = cfg->gemm_bn / cfg->gemm_tn * *tn;
}

static uint32_t
gemm_threads(const HrVkKernelConfig *cfg)
{
    if (cfg->gemm_coop)
        return 32 * (cfg->gemm_bm / cfg->coop_wm) * (cfg->gemm_bn / cfg->coop_wn);
    return (cfg->gemm_bm / cfg->gemm_tm) * (cfg->gemm_bn / cfg->gemm_tn);
}

/* gemm_coop.comp's tile divides into subgroup parts and those into
 * fragments (gate+up's half-width parts too). */
static bool
coop_tile_ok(const HrVkKernelConfig *cfg)
{
    const uint32_t fm = cfg->coop_fm, fn = cfg->coop_fn, fk = cfg->coop_fk, wm = cfg->coop_wm, wn = cfg->coop_wn;
    return fm && fn && fk && wm && wn && cfg->gemm_bm % wm == 0 && wm % fm == 0 && cfg->gemm_bn % wn == 0 &&
           wn % (2 * fn) == 0 && cfg->gemm_bk % fk == 0 && cfg->gemm_bk % 8 == 0 && (fm * fn) % 32 == 0;
}

/* The device takes gemm_coop.comp as configured: its tile divides, its
 * threads fit a workgroup, it has FP16 arithmetic, and for the real
 * extension (1) subgroups of 32 and the configured fragment shape. */
static bool
coop_fits(const HrVkKernelConfig *cfg, const HrVkCaps *caps)
{
    if (cfg->gemm_coop < 1 || cfg->gemm_coop > 2 || !coop_tile_ok(cfg) || !caps->shader_float16 ||
        gemm_threads(cfg) > caps->max_workgroup_invocations)
        return false;
    return cfg->gemm_coop == 2 || (caps->subgroup_size == 32 && caps->coop_m && cfg->coop_fm == caps->coop_m &&
                                   cfg->coop_fn == caps->coop_n && cfg->coop_fk == caps->coop_k);
}

/* Shared bytes the GEMM's larger variant needs. gemm.comp: K-major tiles of
 * BK rows, padded by one float. gemm_coop.comp: FP16 rows of BK + 8 for
 * the weights (two matrices for gate+up) and the tokens, and a fragment of
 * FP32 a subgroup for the epilogue. */
static size_t
gemm_shared(const HrVkKernelConfig *cfg)
{
    uint32_t bng, tng;
    gemm_tile(cfg, true, &bng, &tng);
    size_t k = cfg->gemm_bk;
    if (cfg->gemm_coop) {
        const size_t frag = (size_t)gemm_threads(cfg) / 32 * cfg->coop_fm * cfg->coop_fn * 4;
        return MAX(cfg->gemm_bm + cfg->gemm_bn, 2 * cfg->gemm_bm + bng) * (k + 8) * 2 + frag;
    }
    return MAX(k * (cfg->gemm_bm + 1) + k * (cfg->gemm_bn + 1), 2 * k * (cfg->gemm_bm + 1) + k * (bng + 1)) * 4;
}

/* attn_tile.comp's head_dim bound (a multiple of its 32 lanes) and shared
 * bytes: Q rows, one K/V tile of 32 keys, the scores, three per-row values. */
static uint32_t
attn_tile_hd(const HrVkKernelConfig *cfg)
{
    return (cfg->max_hd + 31) / 32 * 32;
}

static size_t
attn_tile_shared(const HrVkKernelConfig *cfg)
{
    const size_t ld = attn_tile_hd(cfg) + 1, bq = cfg->attn_bq;
    return (bq * ld + 32 * ld + bq * 33 + 3 * bq) * 4;
}

/* The device's shared memory per workgroup (16 KiB, Vulkan's minimum, where
 * it reports none). */
static uint32_t
shared_bytes(const HrVkCaps *caps)
{
    return caps->max_shared_memory ? caps->max_shared_memory : 16384;
}

void
hr_vk_kernel_config_for(const HrVkCaps *caps, uint32_t max_hd, HrVkKernelConfig *cfg)
{
    /* Real GPUs: 128-thread workgroups (4 subgroups of 32 or 2 of 64), two
     * rows per GEMV workgroup. A CPU implementation (lavapipe) runs a
     * workgroup's subgroups one after another and pays for every barrier,
     * so it gets small workgroups and more rows per group. */
    memset(cfg, 0, sizeof *cfg);
    bool cpu = caps->type == VK_PHYSICAL_DEVICE_TYPE_CPU;
    uint32_t wg = cpu ? 32 : 128;
    if (caps->subgroup_size > wg && caps->subgroup_size <= 1024)
        wg = caps->subgroup_size;
    wg = pow2_floor(MIN(wg, caps->max_workgroup_invocations ? caps->max_workgroup_invocations : 64));
    cfg->wg = wg;
    cfg->gemv_rows = cpu ? 4 : 2;
    cfg->gemv_nt = 8;
    cfg->attn_split = 256;
    cfg->attn_qt = 4;
    cfg->max_hd = max_hd < 64 ? 64 : max_hd;
    cfg->subgroup = caps->subgroup_arithmetic;
    const char *f16 = g_getenv("HEARTH_VULKAN_FP16_MATH");
    cfg->fp16_math = caps->shader_float16 && f16 && f16[0] == '1';
    const char *gv = g_getenv("HEARTH_VULKAN_GEMV");
    cfg->gemv_wide = gv && strcmp(gv, "wide") == 0;
    cfg->gemv_q8 = gv && strcmp(gv, "q8") == 0 && caps->integer_dot_product;
    /* The GEMV keeps wg * rows * tokens * 2 partial sums in shared memory;
     * attention keeps split + max_hd + wg floats. */
    const uint32_t shared = shared_bytes(caps);
    while (cfg->gemv_nt > 1 && (size_t)cfg->wg * cfg->gemv_rows * cfg->gemv_nt * 2 * 4 > shared)
        cfg->gemv_nt /= 2;
    while (cfg->gemv_rows > 1 && (size_t)cfg->wg * cfg->gemv_rows * cfg->gemv_nt * 2 * 4 > shared)
        cfg->gemv_rows /= 2;
    while (cfg->attn_split > 32 &&
           (size_t)(cfg->attn_qt * (cfg->attn_split + cfg->max_hd) + cfg->wg) * 4 > shared)
        cfg->attn_split /= 2;
    while (cfg->attn_qt > 1 && (size_t)(cfg->attn_qt * (cfg->attn_split + cfg->max_hd) + cfg->wg) * 4 > shared)
        cfg->attn_qt /= 2;
    /* Prefill attention in tiles (HEARTH_VULKAN_ATTN=tile; opt-in until a
     * GPU measures it: on lavapipe it is slower than attn.comp's query
     * groups): 16 rows a workgroup (fewer where shared memory is short), at
     * least one per group of 32 threads. */
    const char *at = g_getenv("HEARTH_VULKAN_ATTN");
    cfg->attn_bq = at && strcmp(at, "tile") == 0 && wg % 32 == 0 ? 16 : 0;
    while (cfg->attn_bq > wg / 32 && attn_tile_shared(cfg) > shared)
        cfg->attn_bq /= 2;
    if (cfg->attn_bq && (cfg->attn_bq < wg / 32 || attn_tile_shared(cfg) > shared))
        cfg->attn_bq = 0;
    /* GEMM tiles: 8 x 8 sums per thread (4 shared loads per 16
     * multiply-adds): 128 rows x 64 tokens (128 threads) on GPUs; 64 x 64
     * (64 threads) on a CPU device (lavapipe: 2.3x the GEMM of 32 x 16 with
     * 4 x 4; 64 x 128 is 10 % faster at 128 tokens and more but pads short
     * prompts twice as much). gate+up keeps two blocks of sums per thread,
     * so it takes half the tokens (gemm_tile). */
    cfg->gemm = true;
    cfg->gemm_bm = cpu ? 64 : 128;
    cfg->gemm_bn = 64;
    cfg->gemm_bk = 32;
    cfg->gemm_tm = 8;
    cfg->gemm_tn = 8;
    const char *tile = g_getenv("HEARTH_VULKAN_GEMM_TILE");   /* BM,BN,BK,TM,TN (measurements) */
    if (tile) {
        unsigned t[5];
        if (sscanf(tile, "%u,%u,%u,%u,%u", &t[0], &t[1], &t[2], &t[3], &t[4]) == 5 && t[3] && t[4] &&
            t[0] % t[3] == 0 && t[1] % t[4] == 0 && t[2] % 8 == 0 && t[2]) {
            cfg->gemm_bm = t[0];
            cfg->gemm_bn = t[1];
            cfg->gemm_bk = t[2];
            cfg->gemm_tm = t[3];
            cfg->gemm_tn = t[4];
        }
    }
    while (cfg->gemm_bm > 16 && gemm_shared(cfg) > shared)
        cfg->gemm_bm /= 2;
    if (gemm_threads(cfg) > caps->max_workgroup_invocations || gemm_shared(cfg) > shared)
        cfg->gemm = false;
    /* Prefill on matrix units (HEARTH_VULKAN_GEMM=coop; opt-in until a GPU
     * measures it): 128 rows x 64 tokens, 4 subgroups of 64 x 32, K slices
     * of 32; coop-emu runs the same tiles without the extension (tests).
     * HEARTH_VULKAN_COOP_TILE=BM,BN,WM,WN overrides the tile (measurements).
     * Where the device cannot take it the tiles above stay. */
    const char *gm = g_getenv("HEARTH_VULKAN_GEMM");
    const HrVkKernelConfig tiled = *cfg;
    cfg->gemm_coop = !gm ? 0 : strcmp(gm, "coop") == 0 ? 1 : strcmp(gm, "coop-emu") == 0 ? 2 : 0;
    if (cfg->gemm_coop) {
        cfg->gemm = true;
        cfg->gemm_bm = 128;
        cfg->gemm_bn = 64;
        cfg->gemm_bk = 32;
        cfg->coop_wm = 64;
        cfg->coop_wn = 32;
        cfg->coop_fm = 16;
        cfg->coop_fn = cfg->gemm_coop == 1 ? caps->coop_n : 16;
        cfg->coop_fk = 16;
        const char *pf = g_getenv("HEARTH_VULKAN_COOP_PREFETCH");
        cfg->coop_prefetch = !(pf && pf[0] == '0');
        const char *ct = g_getenv("HEARTH_VULKAN_COOP_TILE");
        unsigned t[4];
        if (ct && sscanf(ct, "%u,%u,%u,%u", &t[0], &t[1], &t[2], &t[3]) == 4) {
            cfg->gemm_bm = t[0];
            cfg->gemm_bn = t[1];
            cfg->coop_wm = t[2];
            cfg->coop_wn = t[3];
        }
        if (!coop_fits(cfg, caps) || gemm_shared(cfg) > shared)
            *cfg = tiled;
    }
}

/* Pipelines to create, each with its own result (create_pipes). */
typedef struct {
    HrVkPipeline *pipe;
    const PipeRecipe *r;
    HrStatus st;
    HrError err;
} PipeJob;

typedef struct {
    HrVkContext *ctx;
    PipeJob jobs[HR_VK_K_COUNT];
    int n;
} PipeJobs;

static void
recipe(HrVkKernels *k, HrVkKernelId id, const uint32_t *spv, size_t bytes, uint32_t bindings, uint32_t push,
       const uint32_t *spec, uint32_t n_spec)
{
    g_assert(n_spec <= MAX_SPEC && bindings <= MAX_BINDINGS);
    PipeRecipe *r = &k->recipes[id];
    *r = (PipeRecipe){ .spv = spv, .bytes = bytes, .bindings = bindings, .push = push, .n_spec = n_spec };
    memcpy(r->spec, spec, n_spec * sizeof *spec);
}

static void
create_range(void *arg, int start, int end)
{
    PipeJobs *J = arg;
    for (int i = start; i < end; i++) {
        PipeJob *j = &J->jobs[i];
        const PipeRecipe *r = j->r;
        j->st = hr_vk_pipeline_new(J->ctx, r->spv, r->bytes, r->bindings, r->push, r->spec, r->n_spec, j->pipe,
                                   &j->err);
    }
}

/* Creates every job's pipeline, several at once (vkCreate* on one device
 * from several threads is allowed, and the pipeline cache is internally
 * synchronized); the first failure in the list's order is the error. */
static HrStatus
create_pipes(PipeJobs *J, HrThreadPool *pool, HrError *err)
{
    HrThreadPool *own = pool || J->n == 1 ? NULL : hr_pool_new(0);
    if (pool || own)
        hr_pool_run(pool ? pool : own, create_range, J, J->n, 1);
    else
        create_range(J, 0, 1);
    if (own)
        hr_pool_free(own);
    for (int i = 0; i < J->n; i++)
        if (J->jobs[i].st != HR_OK) {
            if (err)
                *err = J->jobs[i].err;
            return J->jobs[i].st;
        }
    return HR_OK;
}

HrStatus
hr_vk_kernels_ensure(HrVkKernels *k, HrThreadPool *pool, HrError *err)
{
    g_autofree PipeJobs *J = NULL;   /* error messages: not on the stack */
    for (int i = 0; i < HR_VK_K_COUNT; i++) {
        if (!k->wanted[i] || k->pipes[i].pipeline)
            continue;
        if (!J) {
            J = g_new0(PipeJobs, 1);
            J->ctx = k->ctx;
        }
        J->jobs[J->n++] = (PipeJob){ .pipe = &k->pipes[i], .r = &k->recipes[i] };
    }
    return J ? create_pipes(J, pool, err) : HR_OK;
}

const HrVkKernelConfig *
hr_vk_kernels_config(const HrVkKernels *k)
{
    return &k->cfg;
}

void
hr_vk_kernels_free(HrVkKernels *k)
{
    if (!k)
        return;
    VkDevice dev = hr_vk_context_device(k->ctx);
    for (int i = 0; i < HR_VK_K_COUNT; i++)
        hr_vk_pipeline_free(k->ctx, &k->pipes[i]);
    for (int i = 0; i <= MAX_BINDINGS; i++)
        if (k->set_layouts[i])
            vkDestroyDescriptorSetLayout(dev, k->set_layouts[i], NULL);
    if (k->pools) {
        for (guint i = 0; i < k->pools->len; i++)
            vkDestroyDescriptorPool(dev, g_array_index(k->pools, VkDescriptorPool, i), NULL);
        g_array_unref(k->pools);
    }
    hr_vk_buffer_free(k->ctx, &k->dummy);
    g_free(k);
}

HrStatus
hr_vk_kernels_new(HrVkContext *ctx, const HrVkKernelConfig *cfg, HrVkKernels **out,
                  HrError *err)
{
    *out = NULL;
    const HrVkCaps *caps = hr_vk_context_caps(ctx);
    if (!caps->storage_16bit)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "Vulkan: %s lacks storageBuffer16BitAccess, which the "
                            "FP16 KV cache needs; use --backend cpu", caps->name);
    if (cfg->gemm && cfg->gemm_coop && !coop_fits(cfg, caps))
        return hr_error_set(err, HR_ERR_INVALID_ARG, "Vulkan GEMM on matrix units: a %ux%u tile of %ux%u parts "
                            "in %ux%ux%u fragments is not one %s takes (cooperative matrix %ux%ux%u, subgroup %u, "
                            "at most %u threads)", cfg->gemm_bm, cfg->gemm_bn, cfg->coop_wm, cfg->coop_wn,
                            cfg->coop_fm, cfg->coop_fn, cfg->coop_fk, caps->name, caps->coop_m, caps->coop_n,
                            caps->coop_k, caps->subgroup_size, caps->max_workgroup_invocations);
    if (cfg->gemm && gemm_shared(cfg) > shared_bytes(caps))
        return hr_error_set(err, HR_ERR_INVALID_ARG, "Vulkan GEMM: a %ux%u tile with K slices of %u needs %zu bytes "
                            "of shared memory; %s has %u", cfg->gemm_bm, cfg->gemm_bn, cfg->gemm_bk,
                            gemm_shared(cfg), caps->name, caps->max_shared_memory);
    if (cfg->attn_bq && (cfg->attn_bq % (cfg->wg / 32) != 0 || attn_tile_shared(cfg) > shared_bytes(caps)))
        return hr_error_set(err, HR_ERR_INVALID_ARG, "Vulkan attention tiles of %u rows: not a multiple of %u "
                            "groups of 32 threads, or more than %s's shared memory", cfg->attn_bq, cfg->wg / 32,
                            caps->name);
    if (cfg->fp16_math && !caps->shader_float16)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "Vulkan: FP16 arithmetic was asked for but %s lacks "
                            "shaderFloat16", caps->name);
    if (cfg->gemv_q8 && !caps->integer_dot_product)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "Vulkan: int8 dot products were asked for but %s lacks "
                            "shaderIntegerDotProduct", caps->name);
    HrVkKernels *k = g_new0(HrVkKernels, 1);
    k->ctx = ctx;
    k->cfg = *cfg;
    k->pools = g_array_new(FALSE, FALSE, sizeof(VkDescriptorPool));
    HrStatus st = hr_vk_buffer_new_host(ctx, 256, &k->dummy, err);
    if (st != HR_OK) {
        hr_vk_kernels_free(k);
        return st;
    }

    /* What every pipeline of the configuration is made of (34 to 44 of
     * them); each is created when a dispatch first needs it, the ones a
     * forward step needs all at once on the thread pool
     * (hr_vk_kernels_ensure): a driver compiles each from SPIR-V when it is
     * created (NVIDIA's and RADV's; lavapipe at the first dispatch), tens of
     * milliseconds apiece, and a model uses only the kinds of weights it
     * has (and a chat none of the quantizer's kernels). */
    const uint32_t wg = cfg->wg;
    const uint32_t one[1] = { wg };
    const uint32_t col_sum_spec[2] = { wg, 0 }, col_div_spec[2] = { wg, 1 };
    const uint32_t attn_spec[4] = { wg, cfg->attn_split, cfg->max_hd, 1 };
    const uint32_t attn_pre_spec[4] = { wg, cfg->attn_split, cfg->max_hd, cfg->attn_qt };
    const uint32_t attn_tile_spec[4] = { wg, cfg->attn_split, attn_tile_hd(cfg), cfg->attn_bq };
#define SPV(name) name, sizeof name
/* the build with subgroup operations (the _sg_ one) where the configuration asks for it */
#define SPV_SG(sg, plain) cfg->subgroup ? sg : plain, cfg->subgroup ? sizeof sg : sizeof plain
    recipe(k, HR_VK_K_EMBED, SPV(embed_spv), 4, 10 * 4, one, 1);
    recipe(k, HR_VK_K_RMSNORM, SPV_SG(rmsnorm_sg_spv, rmsnorm_spv), 4, 12, one, 1);
    recipe(k, HR_VK_K_ROPE_KV, SPV(rope_kv_spv), 6, 28, one, 1);
    recipe(k, HR_VK_K_HEAD_NORM, SPV_SG(head_norm_sg_spv, head_norm_spv), 4, 16, one, 1);
    recipe(k, HR_VK_K_ATTN, SPV_SG(attn_sg_spv, attn_spv), 5, 32, attn_spec, 4);
    recipe(k, HR_VK_K_ATTN_PREFILL, SPV_SG(attn_sg_spv, attn_spv), 5, 32, attn_pre_spec, 4);
    recipe(k, HR_VK_K_ATTN_COMBINE, SPV(attn_combine_spv), 3, 12, one, 1);
    recipe(k, HR_VK_K_ARGMAX, SPV(argmax_spv), 2, 8, one, 1);
    recipe(k, HR_VK_K_SILU_MUL, SPV(silu_mul_spv), 3, 8, one, 1);
    recipe(k, HR_VK_K_PENALIZE, SPV(penalize_spv), 3, 4, one, 1);
    recipe(k, HR_VK_K_TOPK, SPV(topk_spv), 7, 16, one, 1);
    recipe(k, HR_VK_K_SQ_DIFF, SPV(sq_diff_spv), 3, 12, one, 1);
    recipe(k, HR_VK_K_SCALE_QUANT, SPV(scale_quant_spv), 3, 24, one, 1);
    recipe(k, HR_VK_K_CLIP_GRAM, SPV(clip_gram_spv), 2, 16, one, 1);
    recipe(k, HR_VK_K_COL_ABS_SUM, SPV(col_ops_spv), 2, 8, col_sum_spec, 2);
    recipe(k, HR_VK_K_DIV_COLS, SPV(col_ops_spv), 2, 8, col_div_spec, 2);
    recipe(k, HR_VK_K_CLIP_SEARCH, SPV(clip_search_spv), 3, 24, one, 1);
    if (cfg->attn_bq)
        recipe(k, HR_VK_K_ATTN_TILE, SPV(attn_tile_spv), 5, 32, attn_tile_spec, 4);
    /* GEMV: kind (FP16, 4-bit, int8) x gate x prefill; GEMM: kind x gate. */
    for (uint32_t v = 0; v < 12; v++) {
        uint32_t kind = v >> 2, gate = (v >> 1) & 1, prefill = v & 1;
        uint32_t spec[5] = { wg, cfg->gemv_rows, prefill ? cfg->gemv_nt : 1, kind, gate };
        if (cfg->fp16_math)
            recipe(k, HR_VK_K_GEMV + v, SPV_SG(gemv_sg_f16a_spv, gemv_f16a_spv), 7, 16 * 4, spec, 5);
        else
            recipe(k, HR_VK_K_GEMV + v, SPV_SG(gemv_sg_spv, gemv_spv), 7, 16 * 4, spec, 5);
    }
    for (uint32_t gate = 0; cfg->gemv_wide && gate < 2; gate++) {
        uint32_t spec[5] = { wg, cfg->gemv_rows, 1, HR_VK_W_Q4, gate };
        recipe(k, HR_VK_K_GEMV_WIDE + gate, SPV_SG(gemv_sg_wide_spv, gemv_wide_spv), 7, 16 * 4, spec, 5);
    }
    for (uint32_t v = 0; cfg->gemv_q8 && v < 4; v++) {   /* 4-bit, int8 weights x gate */
        uint32_t spec[5] = { wg, cfg->gemv_rows, 1, v >> 1 ? HR_VK_W_Q8 : HR_VK_W_Q4, v & 1 };
        recipe(k, HR_VK_K_GEMV_Q8 + v, SPV_SG(gemv_sg_q8_spv, gemv_q8_spv), 7, 16 * 4, spec, 5);
    }
    const uint32_t combine_q8_spec[2] = { wg, cfg->max_hd };
    if (cfg->gemv_q8) {
        recipe(k, HR_VK_K_QUANT_Q8, SPV(quant_q8_spv), 2, 8, one, 1);
        recipe(k, HR_VK_K_RMSNORM_Q8, SPV_SG(rmsnorm_sg_q8_spv, rmsnorm_q8_spv), 5, 12, one, 1);
        recipe(k, HR_VK_K_ATTN_COMBINE_Q8, SPV(attn_combine_q8_spv), 4, 12, combine_q8_spec, 2);
    }
    for (uint32_t v = 0; cfg->gemm && !cfg->gemm_coop && v < 6; v++) {
        uint32_t bn, tn;
        gemm_tile(cfg, v & 1, &bn, &tn);
        uint32_t spec[8] = { gemm_threads(cfg), cfg->gemm_bm, bn, cfg->gemm_bk, cfg->gemm_tm, tn, v >> 1, v & 1 };
        recipe(k, HR_VK_K_GEMM + v, SPV(gemm_spv), 7, 16 * 4, spec, 8);
    }
    for (uint32_t v = 0; cfg->gemm && cfg->gemm_coop && v < 6; v++) {
        uint32_t bn, wn;
        gemm_tile(cfg, v & 1, &bn, &wn);
        uint32_t spec[12] = { gemm_threads(cfg), cfg->gemm_bm, bn, cfg->gemm_bk, cfg->coop_wm, wn, v >> 1, v & 1,
                              cfg->coop_fm, cfg->coop_fn, cfg->coop_fk, cfg->coop_prefetch };
        if (cfg->gemm_coop == 1)
            recipe(k, HR_VK_K_GEMM + v, SPV(gemm_coop_spv), 7, 16 * 4, spec, 12);
        else
            recipe(k, HR_VK_K_GEMM + v, SPV(gemm_coop_emu_spv), 7, 16 * 4, spec, 12);
    }
#undef SPV
#undef SPV_SG
    *out = k;
    return HR_OK;
}

/* ---- weight repacking -------------------------------------------------------------- */

static inline uint32_t
load_u32(const void *base, size_t i)
{
    uint32_t v;
    memcpy(&v, (const char *)base + 4 * i, 4);
    return v;
}

static inline uint16_t
load_u16(const void *base, size_t i)
{
    uint16_t v;
    memcpy(&v, (const char *)base + 2 * i, 2);
    return v;
}

typedef struct {
    const void *src, *qzeros, *scales;
    HrDType dtype;
    int N, K, ng;
    size_t kw, soff;
    uint32_t *out;
} PackJob;

/* Output rows [128 start, 128 end) of an AWQ linear: the nibbles as rows of
 * kw words, input k in nibble k % 8 of word k / 8 (awq-layout.c), then the
 * rows' {scale, zero} words. */
static void
awq_pack_rows(void *arg, int start, int end)
{
    const PackJob *J = arg;
    const int n0 = 128 * start, n1 = MIN(J->N, 128 * end);
    hr_awq_unpack_rows(J->src, J->N, J->K, n0, n1, NULL, (uint8_t *)(J->out + (size_t)n0 * J->kw), J->kw * 4);
    const size_t w8 = (size_t)J->N / 8, ng = (size_t)J->ng;
    for (size_t gi = 0; gi < ng; gi++) {
        for (size_t j = (size_t)n0 / 8; j < (size_t)n1 / 8; j++) {
            uint32_t p = load_u32(J->qzeros, gi * w8 + j);
            for (int c = 0; c < 8; c++) {
                size_t n = j * 8 + (size_t)c;
                J->out[J->soff + n * ng + gi] = load_u16(J->scales, gi * (size_t)J->N + n) | (hr_awq_get(p, c) << 16);
            }
        }
    }
}

uint32_t *
hr_vk_pack_awq(const void *qweight, const void *qzeros, const void *scales, int N, int K, int ng, HrThreadPool *pool,
               HrVkWeight *w, size_t *n_words, HrError *err)
{
    if (N % 8 != 0 || ng < 1 || K % ng != 0) {
        hr_error_set(err, HR_ERR_UNSUPPORTED, "AWQ linear [%d, %d] with %d groups: out must be a multiple of 8 "
                     "and the groups must split the inputs", N, K, ng);
        return NULL;
    }
    const int g = K / ng;
    if (ng > 1 && g % 8 != 0) {
        hr_error_set(err, HR_ERR_UNSUPPORTED, "AWQ group size %d: the Vulkan kernels take groups that are "
                     "a multiple of 8 inputs (or one group per row)", g);
        return NULL;
    }
    const size_t kw = (size_t)(K + 7) / 8;
    const size_t soff = (size_t)N * kw;
    *n_words = soff + (size_t)N * (size_t)ng;
    uint32_t *out = g_new0(uint32_t, *n_words);
    PackJob job = { .src = qweight, .qzeros = qzeros, .scales = scales, .N = N, .K = K, .ng = ng, .kw = kw,
                    .soff = soff, .out = out };
    hr_pool_run(pool, awq_pack_rows, &job, (N + 127) / 128, 1);
    w->kind = HR_VK_W_Q4;
    w->sfmt = HR_VK_S_ZERO;
    w->n = (uint32_t)N;
    w->k = (uint32_t)K;
    w->kw = (uint32_t)kw;
    w->ng = (uint32_t)ng;
    w->gsize = (uint32_t)g;
    w->soff = (uint32_t)soff;
    return out;
}

/* Rows [start, end) of a dense tensor as FP16 rows of kw words. */
static void
f16_pack_rows(void *arg, int start, int end)
{
    const PackJob *J = arg;
    const size_t K = (size_t)J->K;
    for (size_t n = (size_t)start; n < (size_t)end; n++) {
        uint16_t *h = (uint16_t *)(J->out + n * J->kw);
        if (J->dtype == HR_DTYPE_F16) {
            memcpy(h, (const char *)J->src + 2 * n * K, 2 * K);
            continue;
        }
        for (size_t k = 0; k < K; k++) {
            const size_t i = n * K + k;
            float f;
            if (J->dtype == HR_DTYPE_BF16) {
                uint32_t bits = (uint32_t)load_u16(J->src, i) << 16;
                memcpy(&f, &bits, 4);
            } else {
                memcpy(&f, (const char *)J->src + 4 * i, 4);
            }
            /* Beyond FP16's range: saturate rather than become inf. */
            f = f > 65504.0f ? 65504.0f : f < -65504.0f ? -65504.0f : f;
            h[k] = hr_f32_to_f16(f);
        }
    }
}

uint32_t *
hr_vk_pack_f16(const void *data, HrDType dtype, int N, int K, HrThreadPool *pool, HrVkWeight *w, size_t *n_words)
{
    const size_t kw = (size_t)(K + 7) / 8 * 4;
    *n_words = (size_t)N * kw;
    uint32_t *out = g_new0(uint32_t, *n_words);
    PackJob job = { .src = data, .dtype = dtype, .N = N, .K = K, .kw = kw, .out = out };
    hr_pool_run(pool, f16_pack_rows, &job, N, 16);
    memset(w, 0, sizeof *w);
    w->kind = HR_VK_W_F16;
    w->n = (uint32_t)N;
    w->k = (uint32_t)K;
    w->kw = (uint32_t)kw;
    return out;
}

static inline uint32_t
f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* Rows [start, end) rounded to int8 per block of 32: the bytes (input k in
 * byte k % 4 of word k / 4), then each row's FP32 block scales at soff. */
static void
q8_pack_rows(void *arg, int start, int end)
{
    const PackJob *J = arg;
    const size_t K = (size_t)J->K, nb = K / 32;
    const HrMat m = { J->src, J->dtype, J->N, J->K };
    float *row = g_new(float, K);
    for (size_t n = (size_t)start; n < (size_t)end; n++) {
        int8_t *q = (int8_t *)(J->out + n * J->kw);
        hr_mat_row_f32(&m, (int)n, row, J->K);
        for (size_t b = 0; b < nb; b++)
            J->out[J->soff + n * nb + b] = f32_bits(hr_q8_round32(row + 32 * b, q + 32 * b));
    }
    g_free(row);
}

size_t
hr_vk_q8_matrix_words(int64_t N, int64_t K)
{
    return (size_t)N * (size_t)((K + 7) / 8 * 2) + (size_t)N * (size_t)(K / 32);
}

uint32_t *
hr_vk_pack_q8(const void *data, HrDType dtype, int N, int K, HrThreadPool *pool, HrVkWeight *w, size_t *n_words)
{
    const size_t kw = (size_t)(K + 7) / 8 * 2;
    *n_words = hr_vk_q8_matrix_words(N, K);
    uint32_t *out = g_new0(uint32_t, *n_words);
    PackJob job = { .src = data, .dtype = dtype, .N = N, .K = K, .kw = kw, .soff = (size_t)N * kw, .out = out };
    hr_pool_run(pool, q8_pack_rows, &job, N, 16);
    memset(w, 0, sizeof *w);
    w->kind = HR_VK_W_Q8;
    w->sfmt = HR_VK_S_F32;
    w->n = (uint32_t)N;
    w->k = (uint32_t)K;
    w->kw = (uint32_t)kw;
    w->ng = (uint32_t)(K / 32);
    w->gsize = 32;
    w->soff = (uint32_t)job.soff;
    return out;
}

/* ---- GGUF blocks ------------------------------------------------------------------- */

bool
hr_vk_ggml_supported(uint32_t type)
{
    return type == HR_GGML_Q4_0 || type == HR_GGML_Q4_1 || type == HR_GGML_Q4_K || hr_ggml_q8_per(type) > 0;
}

/* Kind, scale format and inputs per group of a supported type. */
static bool
ggml_layout(uint32_t type, HrVkWeightKind *kind, HrVkScaleFormat *sfmt, int *group)
{
    switch (type) {
    case HR_GGML_Q4_0:
    case HR_GGML_Q4_1:
    case HR_GGML_Q4_K:
        *kind = HR_VK_W_Q4;
        *sfmt = type == HR_GGML_Q4_0 ? HR_VK_S_ZERO : type == HR_GGML_Q4_1 ? HR_VK_S_OFF16 : HR_VK_S_K4;
        *group = 32;
        return true;
    default:
        if (hr_ggml_q8_per(type) <= 0)
            return false;
        *kind = HR_VK_W_Q8;
        *sfmt = hr_ggml_q8_has_offset(type) ? HR_VK_S_F32OFF : HR_VK_S_F32;
        *group = hr_ggml_q8_per(type);
        return true;
    }
}

/* Words of a scale table of `entries` (row, group) entries (K4: ng % 8 == 0). */
static size_t
table_words(HrVkScaleFormat sfmt, size_t entries)
{
    return sfmt == HR_VK_S_F32OFF ? 2 * entries : sfmt == HR_VK_S_K4 ? entries / 8 * 5 : entries;
}

size_t
hr_vk_ggml_words(uint32_t type, int64_t N, int64_t K)
{
    HrVkWeightKind kind;
    HrVkScaleFormat sfmt;
    int group;
    if (!ggml_layout(type, &kind, &sfmt, &group))
        return 0;
    const size_t kw = (size_t)(K + 7) / 8 * (kind == HR_VK_W_Q8 ? 2 : 1);
    const size_t entries = (size_t)N * (size_t)(K / group);
    return (size_t)N * kw + table_words(sfmt, entries);
}

uint32_t *
hr_vk_pack_ggml(const void *data, uint32_t type, int N, int K, HrVkWeight *w, size_t *n_words, HrError *err)
{
    HrVkWeightKind kind;
    HrVkScaleFormat sfmt;
    int group, block = 0;
    size_t block_bytes = 0;
    const char *name = hr_ggml_type_name(type);
    if (!ggml_layout(type, &kind, &sfmt, &group) || !hr_ggml_type_block(type, &block, &block_bytes)) {
        hr_error_set(err, HR_ERR_UNSUPPORTED, "GGUF type %s: the Vulkan backend reads Q4_0, Q4_1, Q4_K, Q5_0, "
                     "Q5_1, Q5_K, Q6_K and Q8_0 blocks", name ? name : "(unknown)");
        return NULL;
    }
    if (N < 1 || K < block || K % block != 0) {
        hr_error_set(err, HR_ERR_FORMAT, "GGUF %s matrix [%d, %d]: the rows are not whole blocks of %d", name, N, K,
                     block);
        return NULL;
    }
    const int ng = K / group;
    const size_t row_bytes = (size_t)(K / block) * block_bytes;
    const size_t kw = (size_t)(K + 7) / 8 * (kind == HR_VK_W_Q8 ? 2 : 1);
    const size_t soff = (size_t)N * kw;
    const size_t row_table = table_words(sfmt, (size_t)ng);
    *n_words = soff + (size_t)N * row_table;
    uint32_t *out = g_new0(uint32_t, *n_words);
    float *sc = g_new(float, (size_t)ng), *of = g_new0(float, (size_t)ng);
    uint8_t *s6 = g_new(uint8_t, (size_t)ng), *m6 = g_new(uint8_t, (size_t)ng);
    uint16_t *dd = g_new(uint16_t, (size_t)ng / 8 + 1), *dm = g_new(uint16_t, (size_t)ng / 8 + 1);
    for (size_t r = 0; r < (size_t)N; r++) {
        const uint8_t *src = (const uint8_t *)data + r * row_bytes;
        uint32_t *row = out + r * kw, *tab = out + soff + r * row_table;
        if (sfmt == HR_VK_S_K4) {
            /* the nibbles as hr_ggml_q4_groups() lays them, the 6-bit scales
             * and mins as bytes, d and dmin as FP16: 18.5 bytes per 32 values */
            hr_ggml_q4k_raw(src, K, (uint8_t *)row, s6, m6, dd, dm);
            for (size_t i = 0; i < kw; i++)
                row[i] = GUINT32_FROM_LE(row[i]);
            for (int b = 0; b < ng / 8; b++) {
                uint32_t *t = tab + 5 * (size_t)b;
                t[0] = (uint32_t)dd[b] | ((uint32_t)dm[b] << 16);
                for (int j = 0; j < 8; j++) {
                    t[1 + j / 4] |= (uint32_t)s6[8 * b + j] << (8 * (j % 4));
                    t[3 + j / 4] |= (uint32_t)m6[8 * b + j] << (8 * (j % 4));
                }
            }
            continue;
        }
        if (kind == HR_VK_W_Q4) {
            /* nibbles with value k in the low nibble of byte k/2 when k is
             * even: on a little-endian host exactly the words' layout */
            uint8_t *nib = (uint8_t *)row;
            hr_ggml_q4_groups(type, src, K, nib, sc, of);
            for (size_t i = 0; i < kw; i++)
                row[i] = GUINT32_FROM_LE(row[i]);
        } else {
            int per = 0;
            int8_t *q = (int8_t *)row;
            hr_ggml_q8_groups(type, src, K, q, sc, sfmt == HR_VK_S_F32OFF ? of : NULL, &per);
            for (size_t i = 0; i < kw; i++)
                row[i] = GUINT32_FROM_LE(row[i]);
        }
        for (int g = 0; g < ng; g++) {
            switch (sfmt) {
            case HR_VK_S_ZERO:   /* Q4_0: offset -8 d; the FP16 d is exact */
                tab[g] = hr_f32_to_f16(sc[g]) | (8u << 16);
                break;
            case HR_VK_S_OFF16:  /* Q4_1: FP16 d and m, exact */
                tab[g] = hr_f32_to_f16(sc[g]) | ((uint32_t)hr_f32_to_f16(of[g]) << 16);
                break;
            case HR_VK_S_F32:
                tab[g] = f32_bits(sc[g]);
                break;
            case HR_VK_S_F32OFF:
                tab[2 * g] = f32_bits(sc[g]);
                tab[2 * g + 1] = f32_bits(of[g]);
                break;
            case HR_VK_S_K4: /* written above */
                break;
            }
        }
    }
    g_free(sc);
    g_free(of);
    g_free(s6);
    g_free(m6);
    g_free(dd);
    g_free(dm);
    w->kind = kind;
    w->sfmt = sfmt;
    w->n = (uint32_t)N;
    w->k = (uint32_t)K;
    w->kw = (uint32_t)kw;
    w->ng = (uint32_t)ng;
    w->gsize = (uint32_t)group;
    w->soff = (uint32_t)soff;
    return out;
}

/* ---- dispatches -------------------------------------------------------------------- */

/* The layout of a set of n storage buffers (created at first use). */
static HrStatus
set_layout(HrVkKernels *k, uint32_t n, HrError *err)
{
    return k->set_layouts[n] ? HR_OK : hr_vk_set_layout_new(k->ctx, n, &k->set_layouts[n], err);
}

/* The dispatch's set, for kernel id; its pipeline is made by
 * hr_vk_kernels_ensure before it is recorded. */
static HrStatus
alloc_set(HrVkKernels *k, HrVkKernelId id, HrVkBuffer *const *bufs, uint32_t n, HrVkDispatch *d, HrError *err)
{
    VkDevice dev = hr_vk_context_device(k->ctx);
    const PipeRecipe *rc = &k->recipes[id];
    g_assert(rc->spv && n <= rc->bindings);   /* a kernel of this configuration, with its buffers */
    HrStatus st = set_layout(k, rc->bindings, err);
    if (st != HR_OK)
        return st;
    if (k->pool_left == 0) {
        VkDescriptorPoolSize ps = {
            .type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .descriptorCount = POOL_SETS * MAX_BINDINGS,
        };
        VkDescriptorPoolCreateInfo ci = {
            .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
            .maxSets = POOL_SETS,
            .poolSizeCount = 1,
            .pPoolSizes = &ps,
        };
        VkDescriptorPool pool;
        VkResult r = vkCreateDescriptorPool(dev, &ci, NULL, &pool);
        if (r != VK_SUCCESS)
            return hr_vk_context_vk_fail(err, r, "vkCreateDescriptorPool");
        g_array_append_val(k->pools, pool);
        k->pool_left = POOL_SETS;
    }
    VkDescriptorSetAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
        .descriptorPool = g_array_index(k->pools, VkDescriptorPool, k->pools->len - 1),
        .descriptorSetCount = 1,
        .pSetLayouts = &k->set_layouts[rc->bindings],
    };
    VkResult r = vkAllocateDescriptorSets(dev, &ai, &d->set);
    if (r != VK_SUCCESS)
        return hr_vk_context_vk_fail(err, r, "vkAllocateDescriptorSets");
    k->pool_left--;
    VkDescriptorBufferInfo infos[MAX_BINDINGS];
    VkWriteDescriptorSet writes[MAX_BINDINGS];
    for (uint32_t i = 0; i < n; i++) {
        HrVkBuffer *b = bufs[i] ? bufs[i] : &k->dummy;
        infos[i] = (VkDescriptorBufferInfo){ .buffer = b->buffer, .offset = 0, .range = VK_WHOLE_SIZE };
        writes[i] = (VkWriteDescriptorSet){
            .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
            .dstSet = d->set,
            .dstBinding = i,
            .descriptorCount = 1,
            .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .pBufferInfo = &infos[i],
        };
    }
    vkUpdateDescriptorSets(dev, n, writes, 0, NULL);
    d->kernel = id;
    k->wanted[id] = true;
    return HR_OK;
}

static uint32_t
div_up(uint32_t a, uint32_t b)
{
    return (a + b - 1) / b;
}

HrStatus
hr_vk_make_embed(HrVkKernels *k, HrVkBuffer *tokens, const HrVkWeight *emb, uint32_t row_begin, float scale,
                 HrVkBuffer *x, HrVkBuffer *params, uint32_t max_tokens, HrVkDispatch *d, HrError *err)
{
    memset(d, 0, sizeof *d);
    HrVkBuffer *b[4] = { tokens, (HrVkBuffer *)&emb->buf, x, params };
    HrStatus st = alloc_set(k, HR_VK_K_EMBED, b, 4, d, err);
    d->push[0] = emb->k;
    d->push[1] = emb->kw;
    d->push[2] = row_begin;
    d->push[3] = row_begin + emb->n;
    d->push[4] = emb->kind;
    d->push[5] = emb->sfmt;
    d->push[6] = emb->ng;
    d->push[7] = emb->gsize;
    d->push[8] = emb->soff;
    const float f = scale != 0.0f ? scale : 1.0f;
    memcpy(&d->push[9], &f, 4);
    d->groups[0] = div_up(div_up(emb->k, 8), k->cfg.wg);
    d->groups[1] = max_tokens;
    d->groups[2] = 1;
    return st;
}

/* xq: the Q8 build's int8 row as well (or NULL). */
static HrStatus
make_rmsnorm(HrVkKernels *k, HrVkBuffer *x, HrVkBuffer *out, HrVkBuffer *w, HrVkBuffer *params, uint32_t n, float eps,
             uint32_t flags, uint32_t max_tokens, HrVkBuffer *xq, HrVkDispatch *d, HrError *err)
{
    memset(d, 0, sizeof *d);
    HrVkBuffer *b[5] = { x, out, w, params, xq };
    HrStatus st = alloc_set(k, xq ? HR_VK_K_RMSNORM_Q8 : HR_VK_K_RMSNORM, b, xq ? 5 : 4, d, err);
    d->push[0] = n;
    memcpy(&d->push[1], &eps, 4);
    d->push[2] = flags;
    d->groups[0] = max_tokens;
    d->groups[1] = d->groups[2] = 1;
    return st;
}

HrStatus
hr_vk_make_rmsnorm(HrVkKernels *k, HrVkBuffer *x, HrVkBuffer *out, HrVkBuffer *w, HrVkBuffer *params, uint32_t n,
                   float eps, bool logit_rows, bool residual, uint32_t max_tokens, HrVkDispatch *d, HrError *err)
{
    return make_rmsnorm(k, x, out, w, params, n, eps, (logit_rows ? 1u : 0u) | (residual ? 2u : 0u), max_tokens, NULL,
                        d, err);
}

/* A 4-bit matrix the decode GEMV can read in 32-input units (16-byte loads
 * of weights and activations, one scale entry a unit). */
static bool
units32_ok(const HrVkWeight *w, uint32_t x_stride)
{
    return w->kind == HR_VK_W_Q4 && w->k % 32 == 0 && w->kw % 4 == 0 && x_stride % 4 == 0 &&
           (w->ng == 1 || w->gsize % 32 == 0);
}

/* ... on int8 activations: the same for 4-bit weights; int8 weights also
 * (two 16-byte loads a unit, one or two scale entries). */
static bool
q8_units_ok(const HrVkWeight *w, uint32_t x_stride)
{
    if (w->kind == HR_VK_W_Q8)
        return w->k % 32 == 0 && w->kw % 8 == 0 && x_stride % 4 == 0 &&
               (w->ng == 1 || w->gsize % 32 == 0 || w->gsize == 16);
    return units32_ok(w, x_stride);
}

HrStatus
hr_vk_make_gemv(HrVkKernels *k, const HrVkGemvArgs *a, HrVkDispatch *d, HrError *err)
{
    memset(d, 0, sizeof *d);
    const HrVkWeight *w0 = a->w[0];
    const HrVkWeight *w1 = a->w[1] ? a->w[1] : w0;
    const HrVkWeight *w2 = a->w[2] ? a->w[2] : w1;
    if ((a->w[1] && !hr_vk_weights_fusable(w0, a->w[1])) || (a->w[2] && !hr_vk_weights_fusable(w0, a->w[2])) ||
        (a->gate && (!a->w[1] || a->w[1]->n != w0->n || a->w[2])))
        return hr_error_set(err, HR_ERR_INVALID_ARG, "Vulkan GEMV: fused matrices must share input width, "
                            "storage type and group layout (gate/up: also the row count)");
    const bool gemm = a->prefill && k->cfg.gemm && !a->no_gemm;
    /* 32-input units: 4-bit, one token, whole 16-byte units in every row and
     * activation row, a scale entry per unit; on int8 activations where the
     * caller quantized them */
    const bool q8 = !a->prefill && k->cfg.gemv_q8 && a->xq && q8_units_ok(w0, a->x_stride);
    const bool wide = !a->prefill && units32_ok(w0, a->x_stride) && k->cfg.gemv_wide && !q8;
    HrVkBuffer *b[7] = { q8 ? a->xq : a->x, a->out, (HrVkBuffer *)&w0->buf, (HrVkBuffer *)&w1->buf,
                         (HrVkBuffer *)&w2->buf, a->bias, a->params };
    HrVkKernelId id = gemm ? HR_VK_K_GEMM + w0->kind * 2 + (a->gate ? 1 : 0)
                      : q8   ? HR_VK_K_GEMV_Q8 + (w0->kind == HR_VK_W_Q8 ? 2u : 0u) + (a->gate ? 1u : 0u)
                      : wide ? HR_VK_K_GEMV_WIDE + (a->gate ? 1 : 0)
                             : HR_VK_K_GEMV + w0->kind * 4 + (a->gate ? 2 : 0) + (a->prefill ? 1 : 0);
    HrStatus st = alloc_set(k, id, b, 7, d, err);
    uint32_t n1 = (!a->gate && a->w[1]) ? a->w[1]->n : 0;
    uint32_t n2 = (!a->gate && a->w[2]) ? a->w[2]->n : 0;
    uint32_t *p = d->push;
    p[0] = w0->n;
    p[1] = n1;
    p[2] = n2;
    p[3] = w0->k;
    p[4] = w0->kw;
    p[5] = w0->ng;
    p[6] = w0->gsize;
    p[7] = w0->soff;
    p[8] = w1->soff;
    p[9] = w2->soff;
    p[10] = a->x_stride;
    p[11] = a->o_stride;
    p[12] = (a->residual ? 1u : 0u) | (a->bias ? 2u : 0u) | (a->logit_rows ? 4u : 0u) | (a->gelu ? 8u : 0u) |
            (a->softcap > 0.0f ? 16u : 0u);
    p[13] = a->out_row_offset;
    p[14] = w0->sfmt;
    memcpy(&p[15], &a->softcap, 4);
    uint32_t rows = gemm ? k->cfg.gemm_bm : k->cfg.gemv_rows, toks = a->prefill ? k->cfg.gemv_nt : 1, tn;
    if (gemm)
        gemm_tile(&k->cfg, a->gate, &toks, &tn);
    d->groups[0] = div_up(w0->n, rows) + div_up(n1, rows) + div_up(n2, rows);
    d->groups[1] = div_up(a->max_tokens, toks);
    d->groups[2] = 1;
    return st;
}

bool
hr_vk_gemv_q8(const HrVkKernels *k, const HrVkWeight *w, uint32_t x_stride)
{
    return k->cfg.gemv_q8 && q8_units_ok(w, x_stride);
}

size_t
hr_vk_q8_words(uint32_t K)
{
    return (size_t)K / 32 * 10;   /* 8 words of int8 and a (d, d * sum) pair per block */
}

HrStatus
hr_vk_make_quant_q8(HrVkKernels *k, HrVkBuffer *x, uint32_t x0, uint32_t K, HrVkBuffer *xq, HrVkDispatch *d,
                    HrError *err)
{
    memset(d, 0, sizeof *d);
    if (K % 32 != 0 || x0 % 4 != 0 || !k->cfg.gemv_q8)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "Vulkan int8 activations: %u inputs from float %u (needs a "
                            "multiple of 32 from a multiple of 4, and HEARTH_VULKAN_GEMV=q8)", K, x0);
    HrVkBuffer *b[2] = { x, xq };
    HrStatus st = alloc_set(k, HR_VK_K_QUANT_Q8, b, 2, d, err);
    d->push[0] = K / 32;
    d->push[1] = x0;
    d->groups[0] = div_up(K / 32, k->cfg.wg);
    d->groups[1] = d->groups[2] = 1;
    return st;
}

HrStatus
hr_vk_make_rmsnorm_q8(HrVkKernels *k, HrVkBuffer *x, HrVkBuffer *out, HrVkBuffer *w, HrVkBuffer *params, uint32_t n,
                      float eps, HrVkBuffer *xq, HrVkDispatch *d, HrError *err)
{
    memset(d, 0, sizeof *d);
    if (n % 32 != 0 || !k->cfg.gemv_q8)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "Vulkan RMSNorm with int8 output: %u values", n);
    return make_rmsnorm(k, x, out, w, params, n, eps, 0, 1, xq, d, err);
}

/* xq: the Q8 build's int8 row as well (or NULL). */
static HrStatus
make_attn_combine(HrVkKernels *k, HrVkBuffer *part, HrVkBuffer *out, HrVkBuffer *params, uint32_t n_heads,
                  uint32_t hd, uint32_t context, uint32_t max_tokens, HrVkBuffer *xq, HrVkDispatch *d, HrError *err)
{
    memset(d, 0, sizeof *d);
    HrVkBuffer *b[4] = { part, out, params, xq };
    HrStatus st = alloc_set(k, xq ? HR_VK_K_ATTN_COMBINE_Q8 : HR_VK_K_ATTN_COMBINE, b, xq ? 4 : 3, d, err);
    d->push[0] = n_heads;
    d->push[1] = hd;
    d->push[2] = hr_vk_attn_splits(k, context);
    d->groups[0] = n_heads;
    d->groups[1] = max_tokens;
    d->groups[2] = 1;
    return st;
}

HrStatus
hr_vk_make_attn_combine_q8(HrVkKernels *k, HrVkBuffer *part, HrVkBuffer *out, HrVkBuffer *params, uint32_t n_heads,
                           uint32_t hd, uint32_t context, HrVkBuffer *xq, HrVkDispatch *d, HrError *err)
{
    memset(d, 0, sizeof *d);
    if (hd % 32 != 0 || hd > k->cfg.max_hd || !k->cfg.gemv_q8)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "Vulkan attention combine with int8 output: head_dim %u", hd);
    return make_attn_combine(k, part, out, params, n_heads, hd, context, 1, xq, d, err);
}

HrStatus
hr_vk_make_rope_kv(HrVkKernels *k, HrVkBuffer *qkv, HrVkBuffer *qout, HrVkBuffer *kc, HrVkBuffer *vc,
                   HrVkBuffer *rope_tab, HrVkBuffer *params, uint32_t n_heads, uint32_t n_kv, uint32_t hd,
                   uint32_t rot, uint32_t long_at, uint32_t long_off, uint32_t ring, uint32_t max_tokens,
                   HrVkDispatch *d, HrError *err)
{
    memset(d, 0, sizeof *d);
    HrVkBuffer *b[6] = { qkv, qout, kc, vc, rope_tab, params };
    HrStatus st = alloc_set(k, HR_VK_K_ROPE_KV, b, 6, d, err);
    d->push[6] = ring;
    d->push[0] = n_heads;
    d->push[1] = n_kv;
    d->push[2] = hd;
    d->push[3] = rot;
    d->push[4] = long_at;
    d->push[5] = long_off;
    d->groups[0] = div_up((n_heads + 2 * n_kv) * hd, k->cfg.wg);
    d->groups[1] = max_tokens;
    d->groups[2] = 1;
    return st;
}

HrStatus
hr_vk_make_head_norm(HrVkKernels *k, HrVkBuffer *qkv, HrVkBuffer *wq, HrVkBuffer *wk, HrVkBuffer *params,
                     uint32_t n_heads, uint32_t n_kv, uint32_t hd, float eps, uint32_t max_tokens, HrVkDispatch *d,
                     HrError *err)
{
    memset(d, 0, sizeof *d);
    HrVkBuffer *b[4] = { qkv, wq, wk, params };
    HrStatus st = alloc_set(k, HR_VK_K_HEAD_NORM, b, 4, d, err);
    d->push[0] = n_heads;
    d->push[1] = n_kv;
    d->push[2] = hd;
    memcpy(&d->push[3], &eps, 4);
    d->groups[0] = n_heads + n_kv;
    d->groups[1] = max_tokens;
    d->groups[2] = 1;
    return st;
}

uint32_t
hr_vk_attn_splits(const HrVkKernels *k, uint32_t context)
{
    return div_up(context, k->cfg.attn_split);
}

HrStatus
hr_vk_make_attn(HrVkKernels *k, HrVkBuffer *q, HrVkBuffer *kc, HrVkBuffer *vc, HrVkBuffer *part,
                HrVkBuffer *params, uint32_t n_heads, uint32_t n_kv, uint32_t hd, uint32_t context,
                uint32_t window, uint32_t ring, float scale, float softcap, bool prefill, uint32_t max_tokens,
                HrVkDispatch *d, HrError *err)
{
    memset(d, 0, sizeof *d);
    if (hd > k->cfg.max_hd || n_kv == 0 || n_heads % n_kv != 0)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "Vulkan attention: head_dim %u (max %u), %u heads, %u KV heads",
                            hd, k->cfg.max_hd, n_heads, n_kv);
    HrVkBuffer *b[5] = { q, kc, vc, part, params };
    /* prefill in tiles where a KV group's query heads fit one workgroup's rows */
    const uint32_t G = n_heads / n_kv;
    const bool tile = prefill && k->cfg.attn_bq && G <= k->cfg.attn_bq;
    HrStatus st = alloc_set(k, tile ? HR_VK_K_ATTN_TILE : prefill ? HR_VK_K_ATTN_PREFILL : HR_VK_K_ATTN, b, 5, d, err);
    if (!(scale > 0.0f))
        scale = 1.0f / sqrtf((float)hd);
    d->push[0] = n_heads;
    d->push[1] = n_kv;
    d->push[2] = hd;
    d->push[3] = hr_vk_attn_splits(k, context);
    d->push[4] = window;
    memcpy(&d->push[5], &scale, 4);
    memcpy(&d->push[6], &softcap, 4);
    d->push[7] = ring;
    d->groups[0] = hr_vk_attn_splits(k, context);
    d->groups[1] = tile ? n_kv : n_heads;
    d->groups[2] = div_up(max_tokens, tile ? MAX(1, k->cfg.attn_bq / G) : prefill ? k->cfg.attn_qt : 1);
    return st;
}

HrStatus
hr_vk_make_attn_combine(HrVkKernels *k, HrVkBuffer *part, HrVkBuffer *out, HrVkBuffer *params, uint32_t n_heads,
                        uint32_t hd, uint32_t context, uint32_t max_tokens, HrVkDispatch *d, HrError *err)
{
    return make_attn_combine(k, part, out, params, n_heads, hd, context, max_tokens, NULL, d, err);
}

HrStatus
hr_vk_make_argmax(HrVkKernels *k, HrVkBuffer *v, uint32_t offset, uint32_t n, HrVkBuffer *out, HrVkDispatch *d,
                  HrError *err)
{
    memset(d, 0, sizeof *d);
    HrVkBuffer *b[2] = { v, out };
    HrStatus st = alloc_set(k, HR_VK_K_ARGMAX, b, 2, d, err);
    d->push[0] = n;
    d->push[1] = offset;
    d->groups[0] = d->groups[1] = d->groups[2] = 1;
    return st;
}

uint32_t
hr_vk_topk_groups(uint32_t n)
{
    return div_up(n, HR_VK_TOPK_CH);
}

HrStatus
hr_vk_make_penalize(HrVkKernels *k, HrVkBuffer *logits, HrVkBuffer *seen, HrVkBuffer *params, uint32_t vocab,
                    HrVkDispatch *d, HrError *err)
{
    memset(d, 0, sizeof *d);
    HrVkBuffer *b[3] = { logits, seen, params };
    HrStatus st = alloc_set(k, HR_VK_K_PENALIZE, b, 3, d, err);
    d->push[0] = vocab;
    d->groups[0] = d->groups[1] = d->groups[2] = 1;
    return st;
}

HrStatus
hr_vk_make_topk(HrVkKernels *k, HrVkBuffer *vin, HrVkBuffer *iin, HrVkBuffer *vout, HrVkBuffer *iout,
                HrVkBuffer *stats, HrVkBuffer *params, HrVkBuffer *res, uint32_t n, bool first, bool last,
                uint32_t n_stats, HrVkDispatch *d, HrError *err)
{
    memset(d, 0, sizeof *d);
    HrVkBuffer *b[7] = { vin, iin, vout, iout, stats, params, res };
    HrStatus st = alloc_set(k, HR_VK_K_TOPK, b, 7, d, err);
    d->push[0] = n;
    d->push[1] = first;
    d->push[2] = last;
    d->push[3] = n_stats;
    d->groups[0] = hr_vk_topk_groups(n);
    d->groups[1] = d->groups[2] = 1;
    return st;
}

HrStatus
hr_vk_make_silu_mul(HrVkKernels *k, HrVkBuffer *g, HrVkBuffer *u, HrVkBuffer *params, uint32_t width, bool gelu,
                    uint32_t max_tokens, HrVkDispatch *d, HrError *err)
{
    memset(d, 0, sizeof *d);
    HrVkBuffer *b[3] = { g, u, params };
    HrStatus st = alloc_set(k, HR_VK_K_SILU_MUL, b, 3, d, err);
    d->push[0] = width;
    d->push[1] = gelu ? 1u : 0u;
    d->groups[0] = div_up(width, k->cfg.wg);
    d->groups[1] = max_tokens;
    d->groups[2] = 1;
    return st;
}

HrStatus
hr_vk_make_sq_diff(HrVkKernels *k, HrVkBuffer *a, HrVkBuffer *t, HrVkBuffer *sums, uint32_t width, HrVkDispatch *d,
                   HrError *err)
{
    memset(d, 0, sizeof *d);
    HrVkBuffer *b[3] = { a, t, sums };
    HrStatus st = alloc_set(k, HR_VK_K_SQ_DIFF, b, 3, d, err);
    d->push[0] = width;
    hr_vk_set_sq_diff(d, 0, 0);
    return st;
}

void
hr_vk_set_sq_diff(HrVkDispatch *d, uint32_t n, uint32_t row0)
{
    d->push[1] = n;
    d->push[2] = row0;
    d->groups[0] = MAX(n, 1u);
    d->groups[1] = d->groups[2] = 1;
}

static bool
scale_quant_ok(const HrVkWeight *w, uint32_t group, uint32_t bits)
{
    return w->kind == HR_VK_W_F16 && group >= 2 && group % 2 == 0 && w->k % group == 0 && bits >= 2 && bits <= 8 &&
           w->n <= 65535u;   /* (the least maxComputeWorkGroupCount[1] a device has) */
}

HrStatus
hr_vk_make_scale_quant(HrVkKernels *k, HrVkBuffer *t, HrVkBuffer *s, HrVkWeight *w, uint32_t group, uint32_t bits,
                       bool delta, HrVkDispatch *d, HrError *err)
{
    memset(d, 0, sizeof *d);
    if (!scale_quant_ok(w, group, bits))
        return hr_error_set(err, HR_ERR_INVALID_ARG, "scale_quant: a [%u, %u] FP16 weight in groups of %u, %u bits",
                            w->n, w->k, group, bits);
    HrVkBuffer *b[3] = { t, s, &w->buf };
    HrStatus st = alloc_set(k, HR_VK_K_SCALE_QUANT, b, 3, d, err);
    d->push[0] = w->k;
    d->push[3] = w->kw;
    d->push[4] = w->n;
    hr_vk_set_scale_quant(k, d, w, group, bits, delta);
    return st;
}

bool
hr_vk_set_scale_quant(const HrVkKernels *k, HrVkDispatch *d, const HrVkWeight *w, uint32_t group, uint32_t bits,
                      bool delta)
{
    if (!scale_quant_ok(w, group, bits))
        return false;
    const float qmax = (float)((1u << bits) - 1u);
    d->push[1] = group;
    d->push[2] = delta;
    memcpy(&d->push[5], &qmax, 4);
    d->groups[0] = div_up(w->k / group, k->cfg.wg);
    d->groups[1] = w->n;
    d->groups[2] = 1;
    return true;
}

HrStatus
hr_vk_make_clip(HrVkKernels *k, HrVkBuffer *x, HrVkBuffer *c, HrVkBuffer *w, HrVkBuffer *lim, uint32_t K, uint32_t g,
                uint32_t nt, uint32_t ldx, uint32_t rows, uint32_t bits, uint32_t steps, uint32_t grid,
                HrVkDispatch d[2], HrError *err)
{
    memset(d, 0, 2 * sizeof *d);
    if (g < 1 || g > 256 || K % g || K / g > 65535u || rows > 65535u || bits < 2 || bits > 8 || !steps || !grid)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "clip search: %u rows of %u in groups of %u", rows, K, g);
    HrVkBuffer *bg[2] = { x, c }, *bs[3] = { w, c, lim };
    HrStatus st = alloc_set(k, HR_VK_K_CLIP_GRAM, bg, 2, &d[0], err);
    if (st == HR_OK)
        st = alloc_set(k, HR_VK_K_CLIP_SEARCH, bs, 3, &d[1], err);
    d[0].push[0] = K;
    d[0].push[1] = g;
    d[0].push[2] = nt;
    d[0].push[3] = ldx;
    d[0].groups[0] = K / g;
    d[0].groups[1] = g;
    d[0].groups[2] = 1;
    const float qmax = (float)((1u << bits) - 1u);
    d[1].push[0] = K;
    d[1].push[1] = g;
    d[1].push[2] = steps;
    d[1].push[3] = grid;
    d[1].push[4] = rows;
    memcpy(&d[1].push[5], &qmax, 4);
    d[1].groups[0] = K / g;
    d[1].groups[1] = rows;
    d[1].groups[2] = 1;
    return st;
}

HrStatus
hr_vk_make_col_op(HrVkKernels *k, HrVkBuffer *t, HrVkBuffer *s, uint32_t rows, uint32_t width, bool divide,
                  HrVkDispatch *d, HrError *err)
{
    memset(d, 0, sizeof *d);
    HrVkBuffer *b[2] = { t, s };
    HrStatus st = alloc_set(k, divide ? HR_VK_K_DIV_COLS : HR_VK_K_COL_ABS_SUM, b, 2, d, err);
    d->push[0] = rows;
    d->push[1] = width;
    d->groups[0] = div_up(width, k->cfg.wg);
    d->groups[1] = divide ? MIN(rows, 65535u) : 1;
    d->groups[2] = divide ? div_up(rows, 65535u) : 1;
    return st;
}

void
hr_vk_record(HrVkKernels *k, VkCommandBuffer cb, const HrVkDispatch *d)
{
    const HrVkPipeline *p = &k->pipes[d->kernel];
    g_assert(p->pipeline);   /* hr_vk_kernels_ensure made it */
    vkCmdBindPipeline(cb, VK_PIPELINE_BIND_POINT_COMPUTE, p->pipeline);
    vkCmdBindDescriptorSets(cb, VK_PIPELINE_BIND_POINT_COMPUTE, p->layout, 0, 1, &d->set, 0, NULL);
    if (p->push_size)
        vkCmdPushConstants(cb, p->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, p->push_size, d->push);
    vkCmdDispatch(cb, d->groups[0], d->groups[1], d->groups[2]);
}

void
hr_vk_record_barrier(VkCommandBuffer cb)
{
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT,
    };
    vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                         VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &mb, 0, NULL,
                         0, NULL);
}

void
hr_vk_record_host_barrier(VkCommandBuffer cb)
{
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_HOST_READ_BIT,
    };
    vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                         VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
}

HrStatus
hr_vk_run(HrVkKernels *k, const HrVkDispatch *d, uint32_t n, HrError *err)
{
    VkDevice dev = hr_vk_context_device(k->ctx);
    VkCommandBuffer cb;
    HrStatus st = hr_vk_kernels_ensure(k, NULL, err);
    if (st != HR_OK)
        return st;
    st = hr_vk_context_command_buffers(k->ctx, 1, &cb, err);
    if (st != HR_OK)
        return st;
    st = hr_vk_begin(cb, VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT, err);
    if (st != HR_OK) {
        vkFreeCommandBuffers(dev, hr_vk_context_command_pool(k->ctx), 1, &cb);
        return st;
    }
    for (uint32_t i = 0; i < n; i++) {
        hr_vk_record_barrier(cb);   /* (the first: after the last submit's writes) */
        hr_vk_record(k, cb, &d[i]);
    }
    hr_vk_record_host_barrier(cb);
    VkResult r = vkEndCommandBuffer(cb);
    st = r == VK_SUCCESS ? hr_vk_submit_wait(k->ctx, cb, err)
                                  : hr_vk_context_vk_fail(err, r, "vkEndCommandBuffer");
    vkFreeCommandBuffers(dev, hr_vk_context_command_pool(k->ctx), 1, &cb);
    return st;
}
