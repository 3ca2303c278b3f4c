/* cpu-amx.c — the FP32 GEMM on AMX tiles (see cpu-amx.h).
 *
 * Roles: W is the tiles' A operand (16 rows x 32 inputs of BF16, row-major
 * as the weights are) and x the B operand (16 pairs of inputs x 16 tokens,
 * "VNNI" order: word [p][j] holds inputs 2p and 2p+1 of token j), so a
 * product tile is out^T: 16 weight rows x 16 tokens.
 *   - W is split once (hr_amx_pack) into panels of 32 rows: per input step
 *     of 32, two row tiles, each high and low part (4 KB per step).
 *   - x is split per block of 512 tokens, on the pool, one tile of 16
 *     tokens x 32 inputs at a time (a 16 x 16 transposition of 32-bit pairs
 *     in registers), laid out so that a pair of token tiles reads its input
 *     steps as one stream.
 *   - The pool's items are groups of up to 8 panels. Per group the inputs
 *     go by in blocks of 512: the block's slice of x (1 MB) stays in L2
 *     while each panel runs every pair of token tiles against it with four
 *     accumulators (2 row tiles x 2 token tiles): per input step 12 tile
 *     products (W_hi x_hi, W_lo x_hi, W_hi x_lo) from 10 tile loads. The
 *     accumulators wait in L2 between blocks.
 *   - After the last block the accumulators go out through 16 x 16
 *     transpositions, plus bias, a token's row of the group at a time.
 * Each output is one accumulator's fixed sequence of products over the
 * inputs: independent of the thread count and of the grouping.
 *
 * Measured (tests/bench/RESULTS.md, tests/bench/bench-amx): 2.0-2.9x the
 * FP32 AVX-512 GEMM at 512 tokens per call on two cores, about 1.1-1.3
 * TFLOP/s of tile products per core (the instruction's peak here: 3.8),
 * bound by L2 bandwidth (ten 1 KB tile loads per twelve products) and the
 * accumulators' round trips. */
#include "cpu-amx.h"

#include <stdint.h>
#include <string.h>

#include <glib.h>

#include "cpu-kernels.h"

#if defined(__x86_64__) && defined(__GNUC__) && __GNUC__ >= 11
#define HAVE_AMX_BUILD 1
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#define AMX_FN __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

enum {
    PANEL = 32,          /* weight rows per panel: two row tiles */
    KSTEP = 32,          /* inputs per tile */
    TILE_WORDS = 256,    /* 16 x 16 32-bit words: one 1 KB tile */
    KBLOCK = 16,         /* input steps per block (512 inputs) */
    KBLOCK1 = 8,         /* the same in BF16 (measured: 8 steps 10-20 % faster than 16 or 32) */
    TBLOCK = 512,        /* tokens per block: x's slice of a block of inputs, 512 x 512 x 4 bytes, stays in L2 */
};

typedef struct {
    uint8_t palette, start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} __attribute__((packed)) TileConfig;

/* AVX512-BF16 (vdpbf16ps) with AVX-512 */
static bool
avx512_bf16_probe(void)
{
    unsigned a, b, c, d;
    return __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 5)) && hr_cpu_avx512();
}

static bool
amx_probe(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return false;
    const bool amx_bf16 = d & (1u << 22), amx_tile = d & (1u << 24);
    if (!amx_bf16 || !amx_tile || !avx512_bf16_probe())
        return false;
    /* Linux hands out the tile data state only on request (5.16+). */
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
}

static bool
amx_usable(void)
{
    return !g_getenv("HEARTH_CPU_NO_AMX") && !g_getenv("HEARTH_CPU_SCALAR") && amx_probe();
}

/* the BF16 products on tiles, or without them on vdpbf16ps */
static bool
bf16_usable(void)
{
    return !g_getenv("HEARTH_CPU_NO_BF16") && !g_getenv("HEARTH_CPU_SCALAR") && (hr_cpu_amx() || avx512_bf16_probe());
}

/* probe() asked once; thread-safe */
static bool
ask_once(gsize *once, bool *ok, bool (*probe)(void))
{
    if (g_once_init_enter(once)) {
        *ok = probe();
        g_once_init_leave(once, 1);
    }
    return *ok;
}

bool
hr_cpu_amx(void)
{
    static gsize once = 0;
    static bool ok;
    return ask_once(&once, &ok, amx_usable);
}

bool
hr_cpu_bf16_products(void)
{
    static gsize once = 0;
    static bool ok;
    return ask_once(&once, &ok, bf16_usable);
}
#else
bool
hr_cpu_amx(void)
{
    return false;
}

bool
hr_cpu_bf16_products(void)
{
    return false;
}
#endif

#ifdef HAVE_AMX_BUILD

/* r[j] (16 words) -> r[p][j] = r[j][p] */
AMX_FN static inline void
transpose16(__m512i r[16])
{
    __m512i t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        u[4 * i + 0] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        u[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    /* u[4i + c], lane L: rows 4i..4i+3 of column 4L + c */
    for (int c = 0; c < 4; c++) {
        t[c] = _mm512_shuffle_i32x4(u[c], u[4 + c], 0x88);
        t[4 + c] = _mm512_shuffle_i32x4(u[c], u[4 + c], 0xdd);
        t[8 + c] = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0x88);
        t[12 + c] = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0xdd);
    }
    for (int c = 0; c < 4; c++) {
        r[c] = _mm512_shuffle_i32x4(t[c], t[8 + c], 0x88);
        r[8 + c] = _mm512_shuffle_i32x4(t[c], t[8 + c], 0xdd);
        r[4 + c] = _mm512_shuffle_i32x4(t[4 + c], t[12 + c], 0x88);
        r[12 + c] = _mm512_shuffle_i32x4(t[4 + c], t[12 + c], 0xdd);
    }
}

/* 32 floats of src, n of them valid (the rest read as 0), in two vectors */
AMX_FN static inline void
load32(const float *src, int n, __m512 *a0, __m512 *a1)
{
    const __mmask16 m0 = n >= 16 ? 0xffff : (__mmask16)((1u << (n > 0 ? n : 0)) - 1);
    const __mmask16 m1 = n >= 32 ? 0xffff : (__mmask16)(n > 16 ? (1u << (n - 16)) - 1 : 0);
    *a0 = _mm512_maskz_loadu_ps(m0, src);
    *a1 = _mm512_maskz_loadu_ps(m1, src + 16);
}

/* 32 floats of src (n valid, the rest 0) -> 32 BF16 high parts and 32 low
 * parts, in input order. */
AMX_FN static inline void
split32(const float *src, int n, __m512i *hi, __m512i *lo)
{
    __m512 a0, a1;
    load32(src, n, &a0, &a1);
    __m512bh h = _mm512_cvtne2ps_pbh(a1, a0);
    __m512i hw = (__m512i)h;
    __m512 h0 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(hw)), 16));
    __m512 h1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(hw, 1)), 16));
    *hi = hw;
    *lo = (__m512i)_mm512_cvtne2ps_pbh(_mm512_sub_ps(a1, h1), _mm512_sub_ps(a0, h0));
}

/* 32 floats of src (n valid, the rest 0) -> 32 BF16 (rounded to nearest) */
AMX_FN static inline __m512i
round32(const float *src, int n)
{
    __m512 a0, a1;
    load32(src, n, &a0, &a1);
    return (__m512i)_mm512_cvtne2ps_pbh(a1, a0);
}

struct HrAmxWeights {
    int N, K, KS, panels;
    int parts;           /* 2: split in high and low parts; 1: rounded to BF16 */
    uint16_t *tiles;     /* [panels][KS][2 row tiles][parts][16 x 32 BF16] */
};

typedef struct {
    float *out;
    const HrAmxWeights *w;
    const float *bias, *x;
    int N, K, T;
    int KS;              /* input steps */
    int t0, TB;          /* this token block's first token, token tiles (even) */
    int group;           /* panels per pool item */
    int parts;           /* the weights' and x's parts: 2 or 1 */
    int kblock;          /* input steps per block */
    const float *base;   /* NULL, or out = base + the product (no bias; base may be out) */
    uint32_t *xp;        /* TB x KS x parts tiles, laid out by x_tile() */
} Job;

/* Where x's tiles (high, low; or the one BF16 tile) of token tile tt, input
 * step ks start, in tiles: per block of J->kblock input steps (contiguous),
 * per pair of token tiles, the steps in order, so the product's inner loop
 * reads one contiguous stream. */
static inline size_t
x_tile(const Job *J, int tt, int ks)
{
    const int k0 = ks / J->kblock * J->kblock, KB = MIN(J->kblock, J->KS - k0);
    return ((size_t)k0 * J->TB + (((size_t)(tt / 2) * KB + (ks - k0)) * 2 + tt % 2)) * J->parts;
}

/* Pack token tiles [start, end) of the block. */
AMX_FN static void
pack_x_range(void *arg, int start, int end)
{
    Job *J = arg;
    for (int tt = start; tt < end; tt++) {
        for (int ks = 0; ks < J->KS; ks++) {
            __m512i h[16], l[16];
            const int k0 = ks * KSTEP;
            uint32_t *dst = J->xp + x_tile(J, tt, ks) * TILE_WORDS;
            for (int j = 0; j < 16; j++) {
                const int t = J->t0 + tt * 16 + j;
                const float *src = J->x + (size_t)(t < J->T ? t : 0) * J->K + k0;
                const int n = t < J->T ? J->K - k0 : 0;
                if (J->parts == 2)
                    split32(src, n, &h[j], &l[j]);
                else
                    h[j] = round32(src, n);
            }
            transpose16(h);
            for (int p = 0; p < 16; p++)
                _mm512_store_si512(dst + p * 16, h[p]);
            if (J->parts == 2) {
                transpose16(l);
                for (int p = 0; p < 16; p++)
                    _mm512_store_si512(dst + TILE_WORDS + p * 16, l[p]);
            }
        }
    }
}

#define TILE_BYTES 1024
/* W tile: input step ks, row tile i (0, 1), hl 0 = high parts, 1 = low
 * (split weights) */
#define WT(ks, i, hl) ((const char *)wp + ((size_t)((ks) * 2 + (i)) * 2 + (hl)) * TILE_BYTES)
/* W tile of weights rounded to BF16 */
#define WT1(ks, i) ((const char *)wp + (size_t)((ks) * 2 + (i)) * TILE_BYTES)
#define PANEL_BYTES(KS, parts) ((size_t)(KS) * 2 * (parts) * TILE_BYTES)

typedef struct {
    const float *w;
    HrAmxWeights *p;
} PackW;

/* Split panels [start, end) of W into their tiles, one input step at a
 * time (the stores fill the step's four tiles in order). */
AMX_FN static void
pack_w_range(void *arg, int start, int end)
{
    PackW *A = arg;
    const HrAmxWeights *P = A->p;
    for (int pn = start; pn < end; pn++) {
        uint16_t *wp = (uint16_t *)((char *)P->tiles + (size_t)pn * PANEL_BYTES(P->KS, P->parts));
        for (int ks = 0; ks < P->KS; ks++) {
            const int k = ks * KSTEP;
            for (int r = 0; r < PANEL; r++) {
                const int n = pn * PANEL + r;
                const float *src = A->w + (size_t)(n < P->N ? n : 0) * P->K + k;
                if (k + 4 * KSTEP + 32 <= P->K) { /* 32 rows: too many streams for the prefetcher */
                    _mm_prefetch((const char *)(src + 4 * KSTEP), _MM_HINT_T0);
                    _mm_prefetch((const char *)(src + 4 * KSTEP + 16), _MM_HINT_T0);
                }
                if (P->parts == 1) {
                    _mm512_store_si512((char *)WT1(ks, r / 16) + (r % 16) * 64, round32(src, n < P->N ? P->K - k : 0));
                    continue;
                }
                __m512i h, l;
                split32(src, n < P->N ? P->K - k : 0, &h, &l);
                char *d = (char *)WT(ks, r / 16, 0) + (r % 16) * 64;
                _mm512_store_si512(d, h);
                _mm512_store_si512(d + TILE_BYTES, l);
            }
        }
    }
}
/* The four accumulators += W row tiles (6, 7) x token tiles (4, 5). */
#define PRODUCTS_2X2()                                                                                                \
    do {                                                                                                              \
        _tile_dpbf16ps(0, 6, 4);                                                                                      \
        _tile_dpbf16ps(1, 6, 5);                                                                                      \
        _tile_dpbf16ps(2, 7, 4);                                                                                      \
        _tile_dpbf16ps(3, 7, 5);                                                                                      \
    } while (0)
/* x tile: token tile tt, input step ks */
#define XT(tt, ks, hl) ((const char *)J->xp + (x_tile(J, tt, ks) + (hl)) * TILE_BYTES)

/* out rows of token tile tt from the accumulators of panels [p0, p1)
 * (acc: per panel, per token pair, tiles 0 = rows 0-15 x tokens 0-15,
 * 1 = rows 0-15 x tokens 16-31, 2 = rows 16-31 x tokens 0-15, 3 = rows
 * 16-31 x tokens 16-31), transposed, plus bias. A token's row of the
 * group's outputs is written in one go (one page of out, not one per panel). */
AMX_FN static void
write_out(const Job *J, const float *acc, int p0, int p1, int tt)
{
    const int t0 = J->t0 + tt * 16, nt = MIN(16, J->T - t0);
    if (nt <= 0)
        return;
    for (int pn = p0; pn < p1; pn++) {
        for (int half = 0; half < 2; half++) {
            const int nb = pn * PANEL + half * 16, nn = MIN(16, J->N - nb);
            if (nn <= 0)
                return;
            const float *c = acc + (((size_t)(pn - p0) * J->TB + (tt & ~1)) * 2 + half * 2 + (tt & 1)) * 256;
            __m512i r[16];
            for (int p = 0; p < 16; p++)
                r[p] = _mm512_load_si512(c + p * 16);
            transpose16(r);
            const __mmask16 m = nn == 16 ? 0xffff : (__mmask16)((1u << nn) - 1);
            const __m512 b = J->bias ? _mm512_maskz_loadu_ps(m, J->bias + nb) : _mm512_setzero_ps();
            for (int j = 0; j < nt; j++) {
                const size_t at = (size_t)(t0 + j) * J->N + nb;
                const __m512 v = _mm512_castsi512_ps(r[j]);
                _mm512_mask_storeu_ps(J->out + at, m,
                                      _mm512_add_ps(v, J->base ? _mm512_maskz_loadu_ps(m, J->base + at) : b));
            }
        }
    }
}

/* Items [start, end): groups of J->group panels of PANEL weight rows,
 * against the token block. Per group the inputs go by in blocks of KBLOCK
 * steps: the block's slice of x (TB x 16 tokens x 512 inputs, 1 MB) stays
 * in L2 while every panel of the group runs against it, and the group's
 * accumulators (group x 32 rows x TB x 16 tokens) wait in L2 between
 * blocks. */
AMX_FN static void
group_range(void *arg, int start, int end)
{
    Job *J = arg;
    const int KS = J->KS, panels = (J->N + PANEL - 1) / PANEL;
    float *acc = g_aligned_alloc((size_t)J->group * J->TB * 2, TILE_BYTES, 64);
    TileConfig cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int i = 0; i < 8; i++) {
        cfg.rows[i] = 16;
        cfg.colsb[i] = 64;
    }
    _tile_loadconfig(&cfg);
    for (int it = start; it < end; it++) {
        const int p0 = it * J->group, p1 = MIN(panels, p0 + J->group);
        for (int k0 = 0; k0 < KS; k0 += J->kblock) {
            const int KB = MIN(J->kblock, KS - k0);
            const bool first = k0 == 0, last = k0 + KB == KS;
            for (int pn = p0; pn < p1; pn++) {
                const char *wp = (const char *)J->w->tiles + (size_t)pn * PANEL_BYTES(KS, J->parts) +
                                 (size_t)k0 * 2 * J->parts * TILE_BYTES;
                for (int tt = 0; tt < J->TB; tt += 2) {
                    char *ct = (char *)acc + ((size_t)(pn - p0) * J->TB + tt) * 2 * TILE_BYTES;
                    if (first) {
                        _tile_zero(0);
                        _tile_zero(1);
                        _tile_zero(2);
                        _tile_zero(3);
                    } else {
                        _tile_loadd(0, ct, 64);
                        _tile_loadd(1, ct + TILE_BYTES, 64);
                        _tile_loadd(2, ct + 2 * TILE_BYTES, 64);
                        _tile_loadd(3, ct + 3 * TILE_BYTES, 64);
                    }
                    const char *xb = XT(tt, k0, 0); /* then tt + 1, then the next step */
                    if (J->parts == 1) {
                        /* one BF16 product per pair of tiles, four loads per four */
                        for (int ks = 0; ks < KB; ks++, xb += 2 * TILE_BYTES) {
                            _tile_loadd(4, xb, 64);
                            _tile_loadd(6, WT1(ks, 0), 64);
                            _tile_dpbf16ps(0, 6, 4);
                            _tile_loadd(5, xb + TILE_BYTES, 64);
                            _tile_dpbf16ps(1, 6, 5);
                            _tile_loadd(7, WT1(ks, 1), 64);
                            _tile_dpbf16ps(2, 7, 4);
                            _tile_dpbf16ps(3, 7, 5);
                        }
                    }
                    for (int ks = 0; ks < KB && J->parts == 2; ks++, xb += 4 * TILE_BYTES) {
                        _tile_loadd(4, xb, 64);
                        _tile_loadd(5, xb + 2 * TILE_BYTES, 64);
                        _tile_loadd(6, WT(ks, 0, 0), 64);
                        _tile_loadd(7, WT(ks, 1, 0), 64);
                        PRODUCTS_2X2();
                        _tile_loadd(6, WT(ks, 0, 1), 64);
                        _tile_loadd(7, WT(ks, 1, 1), 64);
                        PRODUCTS_2X2();
                        _tile_loadd(4, xb + TILE_BYTES, 64);
                        _tile_loadd(5, xb + 3 * TILE_BYTES, 64);
                        _tile_loadd(6, WT(ks, 0, 0), 64);
                        _tile_loadd(7, WT(ks, 1, 0), 64);
                        PRODUCTS_2X2();
                    }
                    _tile_stored(0, ct, 64);
                    _tile_stored(1, ct + TILE_BYTES, 64);
                    _tile_stored(2, ct + 2 * TILE_BYTES, 64);
                    _tile_stored(3, ct + 3 * TILE_BYTES, 64);
                }
            }
            if (last) {
                for (int tt = 0; tt < J->TB; tt++)
                    write_out(J, acc, p0, p1, tt);
            }
        }
    }
    _tile_release();
    g_aligned_free(acc);
}

#define BF16_FN __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))

/* One accumulator tile without AMX: c (16 weight rows x 16 tokens, row-major
 * as the tiles store it) += the products of KB input steps of the W tiles
 * at a and the x tiles at b (each the next step's 2 tiles further on), as
 * _tile_dpbf16ps does them: per pair of inputs k, row m's two weights
 * broadcast against the 16 tokens' pairs, one vdpbf16ps (32 products) per
 * row, 16 rows' sums in registers. */
BF16_FN static inline void
tile_bf16_avx512(float *c, const char *a, const char *b, int KB, bool first)
{
    __m512 acc[16];
#pragma GCC unroll 16
    for (int m = 0; m < 16; m++)
        acc[m] = first ? _mm512_setzero_ps() : _mm512_load_ps(c + m * 16);
    for (int ks = 0; ks < KB; ks++) {
        const uint32_t *A = (const uint32_t *)(a + (size_t)ks * 2 * TILE_BYTES);   /* [row][pair] */
        const char *B = b + (size_t)ks * 2 * TILE_BYTES;                           /* [pair][token] */
        for (int k = 0; k < 16; k++) {
            const __m512bh bk = (__m512bh)_mm512_load_si512(B + k * 64);
#pragma GCC unroll 16
            for (int m = 0; m < 16; m++)
                acc[m] = _mm512_dpbf16_ps(acc[m], bk, (__m512bh)_mm512_set1_epi32((int)A[m * 16 + k]));
        }
    }
#pragma GCC unroll 16
    for (int m = 0; m < 16; m++)
        _mm512_store_ps(c + m * 16, acc[m]);
}

/* group_range for weights rounded to BF16 on a CPU with AVX512-BF16 and no
 * AMX: the same blocks, tiles and accumulators in L2, each tile product
 * done by tile_bf16_avx512 (the same products; the sums in another order). */
BF16_FN static void
group_range_avx512(void *arg, int start, int end)
{
    Job *J = arg;
    const int KS = J->KS, panels = (J->N + PANEL - 1) / PANEL;
    float *acc = g_aligned_alloc((size_t)J->group * J->TB * 2, TILE_BYTES, 64);
    for (int it = start; it < end; it++) {
        const int p0 = it * J->group, p1 = MIN(panels, p0 + J->group);
        for (int k0 = 0; k0 < KS; k0 += J->kblock) {
            const int KB = MIN(J->kblock, KS - k0);
            const bool first = k0 == 0, last = k0 + KB == KS;
            for (int pn = p0; pn < p1; pn++) {
                const char *wp = (const char *)J->w->tiles + (size_t)pn * PANEL_BYTES(KS, 1) +
                                 (size_t)k0 * 2 * TILE_BYTES;
                for (int tt = 0; tt < J->TB; tt += 2) {
                    char *ct = (char *)acc + ((size_t)(pn - p0) * J->TB + tt) * 2 * TILE_BYTES;
                    const char *xb = XT(tt, k0, 0);
                    /* accumulators: 0 = row tile 0 x token tile tt, 1 = 0 x tt + 1, 2 = 1 x tt, 3 = 1 x tt + 1 */
                    for (int q = 0; q < 4; q++)
                        tile_bf16_avx512((float *)(ct + (size_t)q * TILE_BYTES), WT1(0, q >> 1),
                                         xb + (size_t)(q & 1) * TILE_BYTES, KB, first);
                }
            }
            if (last) {
                for (int tt = 0; tt < J->TB; tt++)
                    write_out(J, acc, p0, p1, tt);
            }
        }
    }
    g_aligned_free(acc);
}
#endif

static HrAmxWeights *
pack(HrThreadPool *pool, const float *w, int N, int K, int parts)
{
#ifdef HAVE_AMX_BUILD
    g_return_val_if_fail(parts == 1 ? hr_cpu_bf16_products() : hr_cpu_amx(), NULL);
    HrAmxWeights *P = g_new0(HrAmxWeights, 1);
    P->N = N;
    P->K = K;
    P->KS = (K + KSTEP - 1) / KSTEP;
    P->panels = (N + PANEL - 1) / PANEL;
    P->parts = parts;
    P->tiles = g_aligned_alloc((size_t)P->panels, PANEL_BYTES(P->KS, parts), 64);
    PackW A = { w, P };
    hr_pool_run(pool, pack_w_range, &A, P->panels, 1);
    return P;
#else
    (void)pool, (void)w, (void)N, (void)K, (void)parts;
    g_return_val_if_reached(NULL);
#endif
}

HrAmxWeights *
hr_amx_pack(HrThreadPool *pool, const float *w, int N, int K)
{
    return pack(pool, w, N, K, 2);
}

HrAmxWeights *
hr_amx_pack_bf16(HrThreadPool *pool, const float *w, int N, int K)
{
    return pack(pool, w, N, K, 1);
}

void
hr_amx_free(HrAmxWeights *p)
{
#ifdef HAVE_AMX_BUILD
    if (p) {
        g_aligned_free(p->tiles);
        g_free(p);
    }
#else
    (void)p;
#endif
}

static void
run(HrThreadPool *pool, float *out, const float *base, const HrAmxWeights *w, const float *bias, const float *x, int T)
{
#ifdef HAVE_AMX_BUILD
    g_return_if_fail(w->parts == 1 ? hr_cpu_bf16_products() : hr_cpu_amx());
    const bool tiles = hr_cpu_amx();
    const int panels = w->panels;
    Job J = { .out = out, .w = w, .bias = bias, .x = x, .N = w->N, .K = w->K, .T = T, .KS = w->KS,
              .parts = w->parts, .kblock = w->parts == 2 ? KBLOCK : KBLOCK1, .base = base };
    /* groups of up to 8 panels (256 rows), at least 4 items per thread */
    J.group = CLAMP(panels / (4 * MAX(1, pool ? hr_pool_size(pool) : 1)), 1, 8);
    const int tb_max = MIN((T + 31) / 32 * 2, TBLOCK / 16);
    J.xp = g_aligned_alloc((size_t)tb_max * J.KS * J.parts, TILE_BYTES, 64);
    for (J.t0 = 0; J.t0 < T; J.t0 += TBLOCK) {
        J.TB = MIN(tb_max, (T - J.t0 + 31) / 32 * 2);
        hr_pool_run(pool, pack_x_range, &J, J.TB, 1);
        hr_pool_run(pool, tiles ? group_range : group_range_avx512, &J, (panels + J.group - 1) / J.group, 1);
    }
    g_aligned_free(J.xp);
#else
    (void)pool, (void)out, (void)base, (void)w, (void)bias, (void)x, (void)T;
    g_return_if_reached();
#endif
}

void
hr_amx_matmul_packed(HrThreadPool *pool, float *out, const HrAmxWeights *w, const float *bias, const float *x, int T)
{
    run(pool, out, NULL, w, bias, x, T);
}

void
hr_amx_matmul_packed_add(HrThreadPool *pool, float *out, const float *base, const HrAmxWeights *w, const float *x,
                         int T)
{
    run(pool, out, base, w, NULL, x, T);
}

void
hr_amx_matmul(HrThreadPool *pool, float *out, const float *w, int N, int K, const float *bias, const float *x, int T)
{
    HrAmxWeights *p = hr_amx_pack(pool, w, N, K);
    if (p)
        hr_amx_matmul_packed(pool, out, p, bias, x, T);
    hr_amx_free(p);
}
