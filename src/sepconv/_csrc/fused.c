/*
 * Depthwise then pointwise convolution in one pass, for inference: channels-last float32,
 * depth multiplier 1, on processors with AVX-512F or with AVX2 and FMA (checked at run time;
 * elsewhere the entry point returns 3 and the caller composes two convolutions instead).
 *
 * A separable layer run as two convolutions writes the depthwise output to memory and reads
 * it back for the pointwise step. Here each task computes the depthwise output of a tile of
 * output rows into a buffer that stays in cache (pixels x channels, the tile sized to the
 * second-level cache) and multiplies it at once by the pointwise weights, writing only the
 * layer's output. The pointwise step is a matrix product, tile (P x C) times weights
 * (C x Cout), computed by a register-blocked kernel: with AVX-512, six pixels by 64 output
 * channels held in 24 vector accumulators, one broadcast of a depthwise value and four weight
 * vectors per input channel; with AVX2 (16 registers), six pixels by 16 output channels in
 * 12 accumulators, four times per block of 64 (the blockings of BLIS-style GEMM
 * micro-kernels, without packing the tile, which is already laid out as the kernel reads it).
 * The driver (tiling, threads, layouts) is one; each instruction set provides the depthwise
 * pixels, the register block and the layout conversions of the NCHW path (fu_isa_t), and both
 * give the same sums in the same order.
 *
 * NCHW inputs: where an image's buffers take at most FU_IMAGE_BYTES, each tile's input rows
 * are converted to channels-last in cache and run as above; a larger image runs in strips of
 * output rows that keep NCHW throughout (the native NCHW depthwise kernel, then a register
 * block of four output channels by 24 pixels; see fu_strip_task).
 *
 * Weights come prepared by the caller: depthwise weights as (KH * KW, C) (taps major),
 * pointwise weights as (Cout_padded / 64, C, 64), blocks of 64 output channels each stored
 * whole so that the kernel streams them in order, with Cout_padded a multiple of 64 and zero
 * columns past Cout, and the pointwise bias (or NULL) padded alike. Each output sums its depthwise
 * taps in row-major order, then its pointwise terms in channel order, whatever the number of
 * threads or the tiling.
 */
#include <math.h>

#include "depthwise.h"

#define FU_NR 64 /* output channels per register block (four vectors) */
#define FU_MR 6  /* pixels per register block */
/* the flags of a register block's call (fu_block_fn) */
/* an NCHW image runs in tiles converted to channels-last in cache where its buffers take at
 * most this many bytes, else in strips of rows that stay NCHW */
#ifndef FU_IMAGE_BYTES
#define FU_IMAGE_BYTES (2 << 20)
#endif
#define FU_CONTINUE 1 /* add to the partial sums in out instead of starting from the bias */
#define FU_FINISH 2   /* the last input channels: clamp and store the outputs */

typedef struct fu_isa fu_isa_t;

typedef struct {
    const fu_isa_t *isa;
    ptrdiff_t p[P_COUNT];
    ptrdiff_t cout, coutp;
    const float *x, *wdw, *bdw, *wpw, *bpw;
    float *y;
    ptrdiff_t rows, tiles, splits, blocks; /* rows per tile, tiles per image, Cout splits */
    float lo, hi; /* the depthwise output clamped to [lo, hi] (an activation between the steps) */
    float out[2]; /* the output clamped to [out[0], out[1]] (an activation after the layer) */
    int eight;    /* depthwise pixels eight at a time (fu_dw_eight), else one by one */
    const float *wstd; /* NCHW strips: the depthwise weights as (C, KH, KW) */
    const float *wgrp; /* NCHW strips: the pointwise weights as (coutp / 4, C, 4) */
    ptrdiff_t lda;     /* NCHW strips: the tile's channel stride (pixels, a multiple of 8) */
    int failed;
} fused_t;

/* depthwise output of one pixel: taps ky in [ky0, ky1), kx in [kx0, kx1) */
typedef void (*fu_pixel_fn)(float *out, const float *x, const fused_t *f, ptrdiff_t ky0,
                            ptrdiff_t ky1, ptrdiff_t kx0, ptrdiff_t kx1);
/* eight pixels whose taps all lie inside the input (columns); out rows are C apart */
typedef void (*fu_eight_fn)(float *out, const float *x, ptrdiff_t xstep, const fused_t *f,
                            ptrdiff_t ky0, ptrdiff_t ky1);
/* out[i][j] = bias[j] + sum_k A[i][k] B[k][j] for i < MR pixels, j < cols (<= 64) output
 * channels, clamped to [oc[0], oc[1]] (a NaN stays NaN); A rows lda apart, B rows FU_NR
 * apart, out rows ldo apart. The input channels may come in consecutive chunks (so that a
 * chunk of B stays in the first-level cache for every pixel of a tile): flags FU_CONTINUE
 * (every chunk but the first: the sums so far are read back from out, bias unused) and
 * FU_FINISH (the last: clamped); the sums are the same, term by term, as in one call. */
typedef void (*fu_block_fn)(float *out, ptrdiff_t ldo, const float *A, ptrdiff_t lda,
                            const float *B, ptrdiff_t K, const float *bias, ptrdiff_t cols,
                            const float *oc, int flags);
/* d[q * C + c] = s[c * sc + q] for q < Q, c < C: an NCHW image to channels-last */
typedef void (*fu_to_cl_fn)(float *restrict d, const float *restrict s, ptrdiff_t C,
                            ptrdiff_t Q, ptrdiff_t sc);
/* out[j * so + q] = O[q * 64 + j] for j < nj, q < Q: a pixels x 64 block to NCHW rows */
typedef void (*fu_to_nchw_fn)(float *restrict out, ptrdiff_t so, const float *restrict O,
                              ptrdiff_t nj, ptrdiff_t Q);

struct fu_isa {
    ptrdiff_t tile_bytes; /* the channels-last depthwise tile's size, for the second-level cache */
    ptrdiff_t kc;         /* input channels a chunk (fu_block_fn), 0: all at once */
    ptrdiff_t lanes;      /* floats a vector */
    fu_pixel_fn pixel;
    fu_eight_fn eight;
    fu_block_fn block[FU_MR + 1]; /* by the number of pixels, 1 to FU_MR */
    fu_to_cl_fn to_cl;
    fu_to_nchw_fn to_nchw;
};

#if DW_HAVE_AVX512_CODE
static __thread float *tile_buf;
static __thread size_t tile_cap;

static float *tile_buffer(size_t floats)
{
    if (floats > tile_cap) {
        free(tile_buf);
        size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
        void *mem = NULL;
        tile_buf = posix_memalign(&mem, 64, bytes) == 0 ? mem : NULL;
        tile_cap = tile_buf ? floats : 0;
    }
    return tile_buf;
}

/* ---- AVX-512 ----------------------------------------------------------------------------- */
/* max and min return their second operand where either is NaN: a NaN stays NaN, as PyTorch's
 * activations leave it */
#define FU_CLAMP(a) _mm512_min_ps(hi, _mm512_max_ps(lo, (a)))
/* the first min(n, 16) lanes (n >= 0) */
static inline __mmask16 fu_lanes(ptrdiff_t n)
{
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

__attribute__((target("avx512f"))) static void fu_dw_pixel(float *out, const float *x,
                                                            const fused_t *f, ptrdiff_t ky0,
                                                            ptrdiff_t ky1, ptrdiff_t kx0,
                                                            ptrdiff_t kx1)
{
    const ptrdiff_t *p = f->p;
    const ptrdiff_t C = p[P_C], KW = p[P_KW];
    const ptrdiff_t dy = p[P_DH] * p[P_XH], dx = p[P_DW] * p[P_XW];
    const __m512 lo = _mm512_set1_ps(f->lo), hi = _mm512_set1_ps(f->hi);
    for (ptrdiff_t c = 0; c < C; c += 16) {
        const __mmask16 k = fu_lanes(C - c);
        __m512 a = f->bdw ? _mm512_maskz_loadu_ps(k, f->bdw + c) : _mm512_setzero_ps();
        for (ptrdiff_t ky = ky0; ky < ky1; ky++)
            for (ptrdiff_t kx = kx0; kx < kx1; kx++)
                a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, f->wdw + (ky * KW + kx) * C + c),
                                    _mm512_maskz_loadu_ps(k, x + ky * dy + kx * dx + c), a);
        _mm512_mask_storeu_ps(out + c, k, FU_CLAMP(a));
    }
}

__attribute__((target("avx512f"))) static void fu_dw_eight(float *out, const float *x,
                                                            ptrdiff_t xstep, const fused_t *f,
                                                            ptrdiff_t ky0, ptrdiff_t ky1)
{
    const ptrdiff_t *p = f->p;
    const ptrdiff_t C = p[P_C], KW = p[P_KW];
    const ptrdiff_t dy = p[P_DH] * p[P_XH], dx = p[P_DW] * p[P_XW];
    const __m512 lo = _mm512_set1_ps(f->lo), hi = _mm512_set1_ps(f->hi);
    for (ptrdiff_t c = 0; c < C; c += 16) {
        const __mmask16 k = fu_lanes(C - c);
        const __m512 bias = f->bdw ? _mm512_maskz_loadu_ps(k, f->bdw + c) : _mm512_setzero_ps();
        __m512 a0 = bias, a1 = bias, a2 = bias, a3 = bias, a4 = bias, a5 = bias, a6 = bias,
               a7 = bias;
        for (ptrdiff_t ky = ky0; ky < ky1; ky++)
            for (ptrdiff_t kx = 0; kx < KW; kx++) {
                const __m512 wv = _mm512_maskz_loadu_ps(k, f->wdw + (ky * KW + kx) * C + c);
                const float *s = x + ky * dy + kx * dx + c;
                a0 = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(k, s + 0 * xstep), a0);
                a1 = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(k, s + 1 * xstep), a1);
                a2 = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(k, s + 2 * xstep), a2);
                a3 = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(k, s + 3 * xstep), a3);
                a4 = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(k, s + 4 * xstep), a4);
                a5 = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(k, s + 5 * xstep), a5);
                a6 = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(k, s + 6 * xstep), a6);
                a7 = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(k, s + 7 * xstep), a7);
            }
        _mm512_mask_storeu_ps(out + 0 * C + c, k, FU_CLAMP(a0));
        _mm512_mask_storeu_ps(out + 1 * C + c, k, FU_CLAMP(a1));
        _mm512_mask_storeu_ps(out + 2 * C + c, k, FU_CLAMP(a2));
        _mm512_mask_storeu_ps(out + 3 * C + c, k, FU_CLAMP(a3));
        _mm512_mask_storeu_ps(out + 4 * C + c, k, FU_CLAMP(a4));
        _mm512_mask_storeu_ps(out + 5 * C + c, k, FU_CLAMP(a5));
        _mm512_mask_storeu_ps(out + 6 * C + c, k, FU_CLAMP(a6));
        _mm512_mask_storeu_ps(out + 7 * C + c, k, FU_CLAMP(a7));
    }
}

static inline __attribute__((always_inline, target("avx512f"))) void
fu_block(int MR, float *out, ptrdiff_t ldo, const float *A, ptrdiff_t lda, const float *B,
         ptrdiff_t K, const float *bias, ptrdiff_t cols, const float *oc, int flags)
{
    const __m512 lo = _mm512_set1_ps(flags & FU_FINISH ? oc[0] : -INFINITY);
    const __m512 hi = _mm512_set1_ps(flags & FU_FINISH ? oc[1] : INFINITY);
    __m512 acc[FU_MR][4];
    for (int v = 0; v < 4; v++) {
        const __mmask16 m = fu_lanes(cols - 16 * v);
        const __m512 b = bias ? _mm512_loadu_ps(bias + 16 * v) : _mm512_setzero_ps();
        for (int i = 0; i < MR; i++)
            acc[i][v] = flags & FU_CONTINUE ? _mm512_maskz_loadu_ps(m, out + i * ldo + 16 * v)
                                            : b;
    }
    for (ptrdiff_t k = 0; k < K; k++) {
        const __m512 b0 = _mm512_loadu_ps(B + k * FU_NR);
        const __m512 b1 = _mm512_loadu_ps(B + k * FU_NR + 16);
        const __m512 b2 = _mm512_loadu_ps(B + k * FU_NR + 32);
        const __m512 b3 = _mm512_loadu_ps(B + k * FU_NR + 48);
        for (int i = 0; i < MR; i++) {
            const __m512 a = _mm512_set1_ps(A[i * lda + k]);
            acc[i][0] = _mm512_fmadd_ps(a, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(a, b1, acc[i][1]);
            acc[i][2] = _mm512_fmadd_ps(a, b2, acc[i][2]);
            acc[i][3] = _mm512_fmadd_ps(a, b3, acc[i][3]);
        }
    }
    for (int v = 0; v < 4; v++) {
        const __mmask16 m = fu_lanes(cols - 16 * v);
        for (int i = 0; i < MR; i++)
            _mm512_mask_storeu_ps(out + i * ldo + 16 * v, m, FU_CLAMP(acc[i][v]));
    }
}

__attribute__((target("avx512f"))) static void fu_to_cl(float *restrict d, const float *restrict s,
                                                         ptrdiff_t C, ptrdiff_t Q, ptrdiff_t sc)
{
    const __m512i idx = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32((int)sc));
    for (ptrdiff_t q = 0; q < Q; q++)
        for (ptrdiff_t c = 0; c < C; c += 16) {
            const __mmask16 k = fu_lanes(C - c);
            const __m512 v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), k, idx,
                                                      s + c * sc + q, 4);
            _mm512_mask_storeu_ps(d + q * C + c, k, v);
        }
}

__attribute__((target("avx512f"))) static void fu_to_nchw(float *restrict out, ptrdiff_t so,
                                                           const float *restrict O, ptrdiff_t nj,
                                                           ptrdiff_t Q)
{
    const __m512i idx = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32(FU_NR));
    for (ptrdiff_t j = 0; j < nj; j++)
        for (ptrdiff_t q = 0; q < Q; q += 16) {
            const __mmask16 k = fu_lanes(Q - q);
            const __m512 v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), k, idx,
                                                      O + q * FU_NR + j, 4);
            _mm512_mask_storeu_ps(out + j * so + q, k, v);
        }
}

/* ---- AVX2 and FMA ------------------------------------------------------------------------ */
/* The tile as with AVX-512; the input channels in chunks of 256 (64 kB of a block's weights:
 * the second-level cache, shared by every pixel of the tile). Measured (2-core AMD family 25,
 * interleaved, batch 8, channels-last, 3 x 3 then 1 x 1): 1024 channels at 7 x 7, 5.6-6.3 ms
 * against 6.4-6.5 without chunks; 128 at 56 x 56, 6.3-6.8 against 6.4-7.1; chunks of 64 to 512
 * and tiles of 64 to 192 kB within the timing spread of each other. */
#ifndef FU2_TILE_BYTES
#define FU2_TILE_BYTES (96 * 1024)
#endif
#ifndef FU2_KC
#define FU2_KC 256
#endif
#define FU2_CLAMP(a) _mm256_min_ps(hi, _mm256_max_ps(lo, (a)))
static const int fu2_ones[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

/* the first min(n, 8) lanes (n >= 0) */
__attribute__((target("avx2"))) static inline __m256i fu2_lanes(ptrdiff_t n)
{
    return _mm256_loadu_si256((const __m256i *)(fu2_ones + 8 - (n >= 8 ? 8 : n <= 0 ? 0 : n)));
}

__attribute__((target("avx2,fma"))) static inline __m256 fu2_load(const float *s, ptrdiff_t n,
                                                                  __m256i k)
{
    return n >= 8 ? _mm256_loadu_ps(s) : _mm256_maskload_ps(s, k);
}

__attribute__((target("avx2,fma"))) static inline void fu2_store(float *d, ptrdiff_t n, __m256i k,
                                                                 __m256 v)
{
    if (n >= 8)
        _mm256_storeu_ps(d, v);
    else if (n > 0)
        _mm256_maskstore_ps(d, k, v);
}

__attribute__((target("avx2,fma"))) static void fu2_dw_pixel(float *out, const float *x,
                                                             const fused_t *f, ptrdiff_t ky0,
                                                             ptrdiff_t ky1, ptrdiff_t kx0,
                                                             ptrdiff_t kx1)
{
    const ptrdiff_t *p = f->p;
    const ptrdiff_t C = p[P_C], KW = p[P_KW];
    const ptrdiff_t dy = p[P_DH] * p[P_XH], dx = p[P_DW] * p[P_XW];
    const __m256 lo = _mm256_set1_ps(f->lo), hi = _mm256_set1_ps(f->hi);
    ptrdiff_t c = 0;
    /* four vectors of channels at a time: four independent chains of FMAs (one chain waits
     * on the FMA's latency at every tap) */
    for (; c + 32 <= C; c += 32) {
        __m256 a[4];
#pragma GCC unroll 4
        for (int v = 0; v < 4; v++)
            a[v] = f->bdw ? _mm256_loadu_ps(f->bdw + c + 8 * v) : _mm256_setzero_ps();
        for (ptrdiff_t ky = ky0; ky < ky1; ky++)
            for (ptrdiff_t kx = kx0; kx < kx1; kx++) {
                const float *w = f->wdw + (ky * KW + kx) * C + c, *s = x + ky * dy + kx * dx + c;
#pragma GCC unroll 4
                for (int v = 0; v < 4; v++)
                    a[v] = _mm256_fmadd_ps(_mm256_loadu_ps(w + 8 * v), _mm256_loadu_ps(s + 8 * v),
                                           a[v]);
            }
#pragma GCC unroll 4
        for (int v = 0; v < 4; v++)
            _mm256_storeu_ps(out + c + 8 * v, FU2_CLAMP(a[v]));
    }
    for (; c < C; c += 8) {
        const ptrdiff_t n = C - c;
        const __m256i k = fu2_lanes(n);
        __m256 a = f->bdw ? fu2_load(f->bdw + c, n, k) : _mm256_setzero_ps();
        for (ptrdiff_t ky = ky0; ky < ky1; ky++)
            for (ptrdiff_t kx = kx0; kx < kx1; kx++)
                a = _mm256_fmadd_ps(fu2_load(f->wdw + (ky * KW + kx) * C + c, n, k),
                                    fu2_load(x + ky * dy + kx * dx + c, n, k), a);
        fu2_store(out + c, n, k, FU2_CLAMP(a));
    }
}

__attribute__((target("avx2,fma"))) static void fu2_dw_eight(float *out, const float *x,
                                                             ptrdiff_t xstep, const fused_t *f,
                                                             ptrdiff_t ky0, ptrdiff_t ky1)
{
    const ptrdiff_t *p = f->p;
    const ptrdiff_t C = p[P_C], KW = p[P_KW];
    const ptrdiff_t dy = p[P_DH] * p[P_XH], dx = p[P_DW] * p[P_XW];
    const __m256 lo = _mm256_set1_ps(f->lo), hi = _mm256_set1_ps(f->hi);
    for (ptrdiff_t c = 0; c < C; c += 8) {
        const ptrdiff_t n = C - c;
        const __m256i k = fu2_lanes(n);
        const __m256 bias = f->bdw ? fu2_load(f->bdw + c, n, k) : _mm256_setzero_ps();
        __m256 a[8];
        for (int i = 0; i < 8; i++)
            a[i] = bias;
        for (ptrdiff_t ky = ky0; ky < ky1; ky++)
            for (ptrdiff_t kx = 0; kx < KW; kx++) {
                const __m256 wv = fu2_load(f->wdw + (ky * KW + kx) * C + c, n, k);
                const float *s = x + ky * dy + kx * dx + c;
#pragma GCC unroll 8
                for (int i = 0; i < 8; i++)
                    a[i] = _mm256_fmadd_ps(wv, fu2_load(s + i * xstep, n, k), a[i]);
            }
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++)
            fu2_store(out + i * C + c, n, k, FU2_CLAMP(a[i]));
    }
}

/* sixteen output channels at a time (12 accumulators of the 16 registers), the block's four
 * groups in turn; groups past cols are skipped */
static inline __attribute__((always_inline, target("avx2,fma"))) void
fu2_block(int MR, float *out, ptrdiff_t ldo, const float *A, ptrdiff_t lda, const float *B,
          ptrdiff_t K, const float *bias, ptrdiff_t cols, const float *oc, int flags)
{
    const __m256 lo = _mm256_set1_ps(flags & FU_FINISH ? oc[0] : -INFINITY);
    const __m256 hi = _mm256_set1_ps(flags & FU_FINISH ? oc[1] : INFINITY);
    for (ptrdiff_t j = 0; j < FU_NR && j < cols; j += 16) {
        __m256 acc[FU_MR][2];
        for (int v = 0; v < 2; v++) {
            const ptrdiff_t n = cols - j - 8 * v;
            const __m256i k = fu2_lanes(n);
            const __m256 b = bias ? _mm256_loadu_ps(bias + j + 8 * v) : _mm256_setzero_ps();
            for (int i = 0; i < MR; i++)
                acc[i][v] = flags & FU_CONTINUE ? fu2_load(out + i * ldo + j + 8 * v, n, k) : b;
        }
        const float *Bj = B + j;
        for (ptrdiff_t k = 0; k < K; k++) {
            const __m256 b0 = _mm256_loadu_ps(Bj + k * FU_NR);
            const __m256 b1 = _mm256_loadu_ps(Bj + k * FU_NR + 8);
            for (int i = 0; i < MR; i++) {
                const __m256 a = _mm256_broadcast_ss(A + i * lda + k);
                acc[i][0] = _mm256_fmadd_ps(a, b0, acc[i][0]);
                acc[i][1] = _mm256_fmadd_ps(a, b1, acc[i][1]);
            }
        }
        for (int v = 0; v < 2; v++) {
            const ptrdiff_t n = cols - j - 8 * v;
            const __m256i k = fu2_lanes(n);
            for (int i = 0; i < MR; i++)
                fu2_store(out + i * ldo + j + 8 * v, n, k, FU2_CLAMP(acc[i][v]));
        }
    }
}

/* r[i] = column i of the 8 x 8 block whose rows are r[0..7] */
__attribute__((target("avx2"))) static inline void fu2_transpose8(__m256 *r)
{
    __m256 t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
        r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
    }
}

/* d[q * dq + c] = s[c * sc + q] for q < Q, c < C: 8 x 8 blocks transposed in registers, the
 * edges element by element (gathers are slow on some processors: Zen 3) */
__attribute__((target("avx2"))) static void fu2_transpose(float *restrict d, ptrdiff_t dq,
                                                           const float *restrict s, ptrdiff_t sc,
                                                           ptrdiff_t C, ptrdiff_t Q)
{
    const ptrdiff_t C8 = C / 8 * 8, Q8 = Q / 8 * 8;
    for (ptrdiff_t c = 0; c < C8; c += 8)
        for (ptrdiff_t q = 0; q < Q8; q += 8) {
            __m256 r[8];
            for (int i = 0; i < 8; i++)
                r[i] = _mm256_loadu_ps(s + (c + i) * sc + q);
            fu2_transpose8(r);
            for (int i = 0; i < 8; i++)
                _mm256_storeu_ps(d + (q + i) * dq + c, r[i]);
        }
    for (ptrdiff_t c = 0; c < C; c++)
        for (ptrdiff_t q = c < C8 ? Q8 : 0; q < Q; q++)
            d[q * dq + c] = s[c * sc + q];
}

/* d[q * C + c] = s[c * sc + q] for q < Q, c < C: an NCHW image to channels-last */
__attribute__((target("avx2,fma"))) static void fu2_to_cl(float *restrict d,
                                                          const float *restrict s, ptrdiff_t C,
                                                          ptrdiff_t Q, ptrdiff_t sc)
{
    fu2_transpose(d, C, s, sc, C, Q);
}

/* out[j * so + q] = O[q * 64 + j] for j < nj, q < Q: a pixels x 64 block to NCHW rows */
__attribute__((target("avx2,fma"))) static void fu2_to_nchw(float *restrict out, ptrdiff_t so,
                                                            const float *restrict O, ptrdiff_t nj,
                                                            ptrdiff_t Q)
{
    fu2_transpose(out, so, O, FU_NR, Q, nj);
}

/* one function per number of pixels, so that the accumulators stay in registers */
#define FU_BLOCK(NAME, TARGET, MR)                                                             \
    __attribute__((target(TARGET))) static void NAME##MR(                                      \
        float *out, ptrdiff_t ldo, const float *A, ptrdiff_t lda, const float *B, ptrdiff_t K,  \
        const float *bias, ptrdiff_t cols, const float *oc, int flags)                         \
    {                                                                                          \
        NAME(MR, out, ldo, A, lda, B, K, bias, cols, oc, flags);                               \
    }
#define FU_BLOCKS(NAME, TARGET)                                                                \
    FU_BLOCK(NAME, TARGET, 1)                                                                  \
    FU_BLOCK(NAME, TARGET, 2)                                                                  \
    FU_BLOCK(NAME, TARGET, 3)                                                                  \
    FU_BLOCK(NAME, TARGET, 4)                                                                  \
    FU_BLOCK(NAME, TARGET, 5)                                                                  \
    FU_BLOCK(NAME, TARGET, 6)
FU_BLOCKS(fu_block, "avx512f")
FU_BLOCKS(fu2_block, "avx2,fma")

static const fu_isa_t fu_avx512 = {
    96 * 1024,
    0,
    16,
    fu_dw_pixel,
    fu_dw_eight,
    {NULL, fu_block1, fu_block2, fu_block3, fu_block4, fu_block5, fu_block6},
    fu_to_cl,
    fu_to_nchw,
};
static const fu_isa_t fu_avx2 = {
    FU2_TILE_BYTES,
    FU2_KC,
    8,
    fu2_dw_pixel,
    fu2_dw_eight,
    {NULL, fu2_block1, fu2_block2, fu2_block3, fu2_block4, fu2_block5, fu2_block6},
    fu2_to_cl,
    fu2_to_nchw,
};

/* ---- the driver -------------------------------------------------------------------------- */
/* depthwise output of output rows [oh0, oh1) of image n into A (pixel-major, C per pixel) */
static void fu_dw_tile(float *A, const fused_t *f, ptrdiff_t n, ptrdiff_t oh0, ptrdiff_t oh1)
{
    const ptrdiff_t *p = f->p;
    const ptrdiff_t C = p[P_C], SW = p[P_SW], OW = p[P_OW];
    ptrdiff_t owa = (p[P_PL] + SW - 1) / SW;
    ptrdiff_t span = (p[P_KW] - 1) * p[P_DW];
    ptrdiff_t owb = p[P_W] - 1 - span + p[P_PL] >= 0 ? (p[P_W] - 1 - span + p[P_PL]) / SW + 1 : 0;
    if (owb > OW)
        owb = OW;
    if (owa > owb)
        owa = owb;
    for (ptrdiff_t oh = oh0; oh < oh1; oh++) {
        ptrdiff_t ih0 = oh * p[P_SH] - p[P_PT], ky0, ky1;
        tap_range(ih0, p[P_DH], p[P_KH], p[P_H], &ky0, &ky1);
        const float *xrow = f->x + n * p[P_XN] + ih0 * p[P_XH];
        float *arow = A + (oh - oh0) * OW * C;
        for (ptrdiff_t ow = 0; ow < OW; ow++) {
            if (f->eight && ow >= owa && ow + 8 <= owb) {
                f->isa->eight(arow + ow * C, xrow + (ow * SW - p[P_PL]) * p[P_XW], SW * p[P_XW],
                              f, ky0, ky1);
                ow += 7;
                continue;
            }
            ptrdiff_t iw0 = ow * SW - p[P_PL], kx0, kx1;
            tap_range(iw0, p[P_DW], p[P_KW], p[P_W], &kx0, &kx1);
            f->isa->pixel(arow + ow * C, xrow + iw0 * p[P_XW], f, ky0, ky1, kx0, kx1);
        }
    }
}

/* task's unit of work: image *n, output rows [*oh0, *oh1), the split *split of the blocks */
static void fu_unit(const fused_t *f, ptrdiff_t task, ptrdiff_t *n, ptrdiff_t *oh0,
                    ptrdiff_t *oh1, ptrdiff_t *split)
{
    const ptrdiff_t tile = task / f->splits, OH = f->p[P_OH];
    *split = task % f->splits;
    *n = tile / f->tiles;
    *oh0 = tile % f->tiles * f->rows;
    *oh1 = *oh0 + f->rows < OH ? *oh0 + f->rows : OH;
}

static void fu_task(void *vctx, ptrdiff_t task)
{
    fused_t *f = vctx;
    const ptrdiff_t *p = f->p;
    const ptrdiff_t C = p[P_C], OW = p[P_OW];
    ptrdiff_t n, oh0, oh1, split;
    fu_unit(f, task, &n, &oh0, &oh1, &split);
    const ptrdiff_t P = (oh1 - oh0) * OW;
    float *A = tile_buffer((size_t)(f->rows * OW * C));
    if (!A) {
        f->failed = 1;
        return;
    }
    fu_dw_tile(A, f, n, oh0, oh1);
    const fu_block_fn *blocks = f->isa->block;
    const ptrdiff_t b0 = f->blocks * split / f->splits, b1 = f->blocks * (split + 1) / f->splits;
    const ptrdiff_t ldo = p[P_YW], kc = f->isa->kc > 0 ? f->isa->kc : C;
    for (ptrdiff_t blk = b0; blk < b1; blk++) {
        const ptrdiff_t j0 = blk * FU_NR, cols = f->cout - j0;
        const float *bias = f->bpw ? f->bpw + j0 : NULL;
        float *ybase = f->y + n * p[P_YN] + j0;
        for (ptrdiff_t k0 = 0; k0 < C; k0 += kc) {
            const ptrdiff_t kn = C - k0 < kc ? C - k0 : kc;
            const int flags = (k0 > 0 ? FU_CONTINUE : 0) | (k0 + kn == C ? FU_FINISH : 0);
            /* this block's weights, (C, 64), from input channel k0 */
            const float *B = f->wpw + (blk * C + k0) * FU_NR;
            for (ptrdiff_t i = 0; i < P; i += FU_MR) {
                const int mr = P - i < FU_MR ? (int)(P - i) : FU_MR;
                /* pixel i of the tile: output row oh0 + i / OW, column i % OW; rows of the
                 * tile are consecutive in the output where its row stride is OW pixels */
                ptrdiff_t r = i / OW, c = i % OW;
                float *out = ybase + (oh0 + r) * p[P_YH] + c * ldo;
                if (c + mr <= OW || p[P_YH] == OW * ldo) {
                    blocks[mr](out, ldo, A + i * C + k0, C, B, kn, bias, cols, f->out, flags);
                } else {
                    for (int q = 0; q < mr; q++) {
                        ptrdiff_t rq = (i + q) / OW, cq = (i + q) % OW;
                        blocks[1](ybase + (oh0 + rq) * p[P_YH] + cq * ldo, ldo,
                                  A + (i + q) * C + k0, C, B, kn, bias, cols, f->out, flags);
                    }
                }
            }
        }
    }
}

/* ---- NCHW: small images, tiles converted in cache -------------------------------------- */
/* Each task converts the input rows its tile of output rows reads (image n, every channel) to
 * channels-last in a buffer (a copy in cache, where PyTorch's conversion of a small image
 * costs as much as a tenth of the layer), computes the tile's depthwise output as the
 * channels-last path does, multiplies it in blocks of 64 output channels into a pixels x 64
 * buffer and writes each block's channels as runs of NCHW rows. The units of work are those
 * of the channels-last path (fu_unit): tiles of rows, the output channels split where there
 * are too few tiles. */
static void fu_nchw_task(void *vctx, ptrdiff_t task)
{
    fused_t *f = vctx;
    const ptrdiff_t *p = f->p;
    const ptrdiff_t C = p[P_C], W = p[P_W], OW = p[P_OW];
    ptrdiff_t n, oh0, oh1, split;
    fu_unit(f, task, &n, &oh0, &oh1, &split);
    /* the input rows [ih0, ih1) that output rows [oh0, oh1) read */
    ptrdiff_t ih0 = oh0 * p[P_SH] - p[P_PT];
    ptrdiff_t ih1 = (oh1 - 1) * p[P_SH] - p[P_PT] + (p[P_KH] - 1) * p[P_DH] + 1;
    ih0 = ih0 < 0 ? 0 : ih0;
    ih1 = ih1 > p[P_H] ? p[P_H] : ih1;
    if (ih1 < ih0)
        ih1 = ih0;
    const ptrdiff_t Q = (ih1 - ih0) * W, P = (oh1 - oh0) * OW;
    float *X = tile_buffer((size_t)(Q * C + P * C + P * FU_NR));
    if (!X) {
        f->failed = 1;
        return;
    }
    float *A = X + Q * C, *O = A + P * C;
    f->isa->to_cl(X, f->x + n * p[P_XN] + ih0 * W, C, Q, p[P_XC]);
    fused_t g = *f; /* the rows in the buffer, as a channels-last image of their own */
    g.x = X;
    g.p[P_H] = ih1 - ih0;
    g.p[P_PT] = p[P_PT] + ih0;
    g.p[P_XN] = 0;
    g.p[P_XC] = 1;
    g.p[P_XW] = C;
    g.p[P_XH] = W * C;
    g.eight = 1; /* the rows are in cache */
    fu_dw_tile(A, &g, 0, oh0, oh1);
    const fu_block_fn *blocks = f->isa->block;
    const ptrdiff_t b0 = f->blocks * split / f->splits, b1 = f->blocks * (split + 1) / f->splits;
    const ptrdiff_t kc = f->isa->kc > 0 ? f->isa->kc : C;
    for (ptrdiff_t blk = b0; blk < b1; blk++) {
        const ptrdiff_t j0 = blk * FU_NR, nj = f->cout - j0 < FU_NR ? f->cout - j0 : FU_NR;
        const float *bias = f->bpw ? f->bpw + j0 : NULL;
        for (ptrdiff_t k0 = 0; k0 < C; k0 += kc) {
            const ptrdiff_t kn = C - k0 < kc ? C - k0 : kc;
            const int flags = (k0 > 0 ? FU_CONTINUE : 0) | (k0 + kn == C ? FU_FINISH : 0);
            const float *B = f->wpw + (blk * C + k0) * FU_NR;
            for (ptrdiff_t i = 0; i < P; i += FU_MR) {
                const int mr = P - i < FU_MR ? (int)(P - i) : FU_MR;
                blocks[mr](O + i * FU_NR, FU_NR, A + i * C + k0, C, B, kn, bias, nj, f->out,
                           flags);
            }
        }
        f->isa->to_nchw(f->y + n * p[P_YN] + j0 * p[P_YC] + oh0 * OW, p[P_YC], O, nj, P);
    }
}


/* ---- NCHW, large images: strips of output rows --------------------------------------------- */
/* An image whose buffers exceed FU_IMAGE_BYTES is not converted: each task computes
 * the depthwise output of a strip of output rows for every channel with the native NCHW
 * kernels (depthwise.c, one thread), into a tile of channels x pixels (channel-major, as the
 * output's planes), and multiplies it by the pointwise weights with a register block that
 * keeps the output's layout: four output channels by 24 pixels (12 accumulators), a
 * broadcast weight and three tile vectors per input channel, storing runs of 24 pixels of
 * four output planes. The strip's pixels are consecutive in each output plane (rows of OW
 * one after another), so the tile's columns need no rearranging either way. */
int dw_forward_f32(const ptrdiff_t *params, const float *x, const float *w, const float *b,
                   float *y);

#define FU2N_MR 4  /* output channels a register block */
#define FU2N_NR 24 /* pixels a register block (three vectors) */
#ifndef FU2N_TILE_BYTES
#define FU2N_TILE_BYTES (128 * 1024)
#endif
#ifndef FU2N_KC
#define FU2N_KC 128
#endif

/* out[i * ldo + q] = bias[i] + sum_k B[k * 4 + i] A[k * lda + q] for i < mc (<= 4) output
 * channels, q < nq (<= 24) pixels, clamped to [oc[0], oc[1]]; flags as fu_block_fn. A's rows
 * are read whole (24 pixels: the slack past nq holds anything finite or not). */
__attribute__((target("avx2,fma"))) static void fu2n_block(float *out, ptrdiff_t ldo,
                                                           const float *A, ptrdiff_t lda,
                                                           const float *B, ptrdiff_t K,
                                                           const float *bias, ptrdiff_t mc,
                                                           ptrdiff_t nq, const float *oc,
                                                           int flags)
{
    const __m256 lo = _mm256_set1_ps(flags & FU_FINISH ? oc[0] : -INFINITY);
    const __m256 hi = _mm256_set1_ps(flags & FU_FINISH ? oc[1] : INFINITY);
    __m256 acc[FU2N_MR][3];
    __m256i k[3];
#pragma GCC unroll 3
    for (int v = 0; v < 3; v++)
        k[v] = fu2_lanes(nq - 8 * v);
#pragma GCC unroll 4
    for (int i = 0; i < FU2N_MR; i++) {
        const __m256 b = _mm256_set1_ps(bias ? bias[i] : 0.0f);
#pragma GCC unroll 3
        for (int v = 0; v < 3; v++)
            acc[i][v] = flags & FU_CONTINUE && i < mc ? fu2_load(out + i * ldo + 8 * v,
                                                                 nq - 8 * v, k[v])
                                                      : b;
    }
    for (ptrdiff_t kk = 0; kk < K; kk++) {
        const __m256 a0 = _mm256_loadu_ps(A + kk * lda);
        const __m256 a1 = _mm256_loadu_ps(A + kk * lda + 8);
        const __m256 a2 = _mm256_loadu_ps(A + kk * lda + 16);
#pragma GCC unroll 4
        for (int i = 0; i < FU2N_MR; i++) {
            const __m256 w = _mm256_broadcast_ss(B + kk * FU2N_MR + i);
            acc[i][0] = _mm256_fmadd_ps(a0, w, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(a1, w, acc[i][1]);
            acc[i][2] = _mm256_fmadd_ps(a2, w, acc[i][2]);
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < FU2N_MR; i++)
#pragma GCC unroll 3
        for (int v = 0; v < 3; v++)
            if (i < mc)
                fu2_store(out + i * ldo + 8 * v, nq - 8 * v, k[v], FU2_CLAMP(acc[i][v]));
}

/* the depthwise output of output rows [oh0, oh1) of image n, every channel, into A (channel c
 * at A + c * lda, rows of OW pixels one after another), clamped to [lo, hi] */
__attribute__((target("avx2,fma"))) static int fu_dw_strip(float *A, const fused_t *f,
                                                           ptrdiff_t n, ptrdiff_t oh0,
                                                           ptrdiff_t oh1)
{
    const ptrdiff_t *p = f->p;
    ptrdiff_t q[P_COUNT];
    memcpy(q, p, sizeof(q));
    /* the input rows the strip reads, as an image of their own */
    ptrdiff_t top = oh0 * p[P_SH] - p[P_PT];
    ptrdiff_t end = (oh1 - 1) * p[P_SH] - p[P_PT] + (p[P_KH] - 1) * p[P_DH] + 1;
    ptrdiff_t first = top < 0 ? 0 : top, last = end < p[P_H] ? end : p[P_H];
    if (last <= first) { /* every tap of the strip in the padding: the bias alone */
        first = 0;
        last = 1;
    }
    q[P_N] = 1;
    q[P_H] = last - first;
    q[P_PT] = first - top;
    q[P_OH] = oh1 - oh0;
    q[P_YN] = 0;
    q[P_YC] = f->lda;
    q[P_YH] = p[P_OW];
    q[P_YW] = 1;
    q[P_THREADS] = 1;
    const float *x = f->x + n * p[P_XN] + first * p[P_XH];
    if (dw_forward_f32(q, x, f->wstd, f->bdw, A))
        return 1;
    if (f->lo > -INFINITY || f->hi < INFINITY) {
        const __m256 lo = _mm256_set1_ps(f->lo), hi = _mm256_set1_ps(f->hi);
        const ptrdiff_t P = (oh1 - oh0) * p[P_OW];
        for (ptrdiff_t c = 0; c < p[P_C]; c++)
            for (ptrdiff_t i = 0; i < P; i += 8) {
                const __m256i k = fu2_lanes(P - i);
                float *a = A + c * f->lda + i;
                fu2_store(a, P - i, k, FU2_CLAMP(fu2_load(a, P - i, k)));
            }
    }
    return 0;
}

static void fu_strip_task(void *vctx, ptrdiff_t task)
{
    fused_t *f = vctx;
    const ptrdiff_t *p = f->p;
    const ptrdiff_t C = p[P_C], OW = p[P_OW];
    ptrdiff_t n, oh0, oh1, split;
    fu_unit(f, task, &n, &oh0, &oh1, &split);
    const ptrdiff_t P = (oh1 - oh0) * OW, lda = f->lda;
    const ptrdiff_t kc = C < FU2N_KC ? C : FU2N_KC;
    /* the tile, FU2N_NR columns of slack (a last panel's columns past P), the panel */
    float *A = tile_buffer((size_t)(C * lda + FU2N_NR + kc * FU2N_NR));
    if (!A || fu_dw_strip(A, f, n, oh0, oh1)) {
        f->failed = 1;
        return;
    }
    float *panel = A + C * lda + FU2N_NR; /* kc x 24 pixels of the tile, contiguous */
    /* this split's output channels, in groups of four */
    const ptrdiff_t g0 = f->blocks * split / f->splits * (FU_NR / FU2N_MR);
    ptrdiff_t g1 = f->blocks * (split + 1) / f->splits * (FU_NR / FU2N_MR);
    if (g1 * FU2N_MR > f->cout)
        g1 = (f->cout + FU2N_MR - 1) / FU2N_MR;
    for (ptrdiff_t k0 = 0; k0 < C; k0 += kc) {
        const ptrdiff_t kn = C - k0 < kc ? C - k0 : kc;
        const int flags = (k0 > 0 ? FU_CONTINUE : 0) | (k0 + kn == C ? FU_FINISH : 0);
        for (ptrdiff_t i = 0; i < P; i += FU2N_NR) {
            const ptrdiff_t nq = P - i < FU2N_NR ? P - i : FU2N_NR;
            for (ptrdiff_t k = 0; k < kn; k++)
                memcpy(panel + k * FU2N_NR, A + (k0 + k) * lda + i, FU2N_NR * sizeof(float));
            for (ptrdiff_t g = g0; g < g1; g++) {
                const ptrdiff_t o = g * FU2N_MR;
                float *out = f->y + n * p[P_YN] + o * p[P_YC] + oh0 * OW + i;
                fu2n_block(out, p[P_YC], panel, FU2N_NR, f->wgrp + (g * C + k0) * FU2N_MR, kn,
                           f->bpw ? f->bpw + o : NULL, f->cout - o, nq, f->out, flags);
            }
        }
    }
}

/* the instruction set the kernel runs with here, or NULL */
static const fu_isa_t *fu_isa(void)
{
    if (dw_avx512())
        return &fu_avx512;
    return dw_avx2() ? &fu_avx2 : NULL;
}
#endif

#define FU_ARGS                                                                                \
    const ptrdiff_t *params, ptrdiff_t cout, ptrdiff_t coutp, const float *x, const float *wdw,  \
        const float *bdw, const float *wpw, const float *bpw, float *y, float lo, float hi,      \
        float out_lo, float out_hi

/* Both entry points: the checks, the work's division and the parallel run. */
static int fu_run(int nchw, FU_ARGS)
{
#if DW_HAVE_AVX512_CODE
    const fu_isa_t *isa = fu_isa();
    if (!isa)
        return 3;
    const ptrdiff_t *p = params;
    if (!(nchw ? nchw_layout(p) && p[P_YH] == p[P_OW] && p[P_XH] == p[P_W] : cl_layout(p)) ||
        p[P_M] != 1 || coutp % FU_NR || coutp < cout)
        return 2;
    const ptrdiff_t N = p[P_N], C = p[P_C], OH = p[P_OH], OW = p[P_OW];
    const int threads = (int)p[P_THREADS];
    if (N <= 0 || OH <= 0 || OW <= 0 || cout <= 0)
        return 0;
    fused_t f = {.isa = isa, .cout = cout, .coutp = coutp, .x = x, .wdw = wdw, .bdw = bdw, .wpw = wpw,
                 .bpw = bpw, .y = y, .lo = lo, .hi = hi, .out = {out_lo, out_hi},
                 .blocks = coutp / FU_NR};
    memcpy(f.p, p, sizeof(f.p));
    /* eight pixels at a time share each weight load, but touch eight pixels' channels in turn:
     * from memory, pixel by pixel streams better (measured, one thread, depthwise part alone,
     * batch 8: 128 channels at 56 x 56, 12.8 MB, 3.0 ms against 3.5; 256 at 28 x 28, 1.2
     * against 1.7; in cache, 512 at 14 x 14, 0.42 against 0.52; AVX2, 2 threads, batch 8,
     * channels-last, 64 -> 128 at 112 x 112 stride 2: 3.4-4.2 ms pixel by pixel against
     * 4.3-5.1 eight at a time): eight_pixels_pay, the native kernel's rule (the NCHW path
     * copies each tile's rows into cache first) */
    f.eight = eight_pixels_pay(N * C * p[P_H] * p[P_W] * (ptrdiff_t)sizeof(float), C, isa->lanes);
    /* the units of work: tiles of rows (NCHW: converted in cache where the image's buffers
     * take at most FU_IMAGE_BYTES, else strips of rows that stay NCHW) */
    const ptrdiff_t HW = p[P_H] * p[P_W], P = OH * OW;
    const ptrdiff_t image = (C * (HW + P) + P * FU_NR) * (ptrdiff_t)sizeof(float);
    const int strips = nchw && image > FU_IMAGE_BYTES;
    ptrdiff_t tile = strips ? FU2N_TILE_BYTES : isa->tile_bytes;
    /* the tile's rows sized by the input channels of a chunk (the tile's part a register
     * block reads while a chunk of the weights streams by): more pixels a tile where there
     * are many channels, each weight read from cache for more of them (measured, AVX2, 2
     * threads, interleaved, channels-last, 1024 -> 1024 at 7x7: batch 8, 5.6-7.2 ms against
     * 7.0-8.1 sized by all the channels; batch 1, 1.36-1.49 against 1.60-1.66; NCHW equal) */
    const ptrdiff_t width = !strips && isa->kc > 0 && C > isa->kc ? isa->kc : C;
    ptrdiff_t rows = tile / (OW * width * (ptrdiff_t)sizeof(float));
    if (strips) /* whole register blocks of pixels where a few rows make them */
        for (ptrdiff_t r = rows; r > 0 && r > rows / 2; r--)
            if (r * OW % FU2N_NR == 0) {
                rows = r;
                break;
            }
    f.rows = rows < 1 ? 1 : rows > OH ? OH : rows;
    f.tiles = (OH + f.rows - 1) / f.rows;
    float *wstd = NULL;
    if (strips) {
        /* the tile's rows: a multiple of 8 pixels, and not of 1024 bytes (cache sets) */
        f.lda = (f.rows * OW + 7) / 8 * 8;
        if (f.lda % 256 == 0)
            f.lda += 8;
        const ptrdiff_t taps = p[P_KH] * p[P_KW];
        if (!(wstd = malloc((size_t)(C * taps + coutp * C) * sizeof(float))))
            return 1;
        for (ptrdiff_t c = 0; c < C; c++)
            for (ptrdiff_t t = 0; t < taps; t++)
                wstd[c * taps + t] = wdw[t * C + c];
        f.wstd = wstd;
        /* the pointwise weights in groups of four output channels, (coutp / 4, C, 4) */
        float *wgrp = wstd + C * taps;
        for (ptrdiff_t o = 0; o < coutp; o++)
            for (ptrdiff_t c = 0; c < C; c++)
                wgrp[(o / FU2N_MR * C + c) * FU2N_MR + o % FU2N_MR] =
                    wpw[(o / FU_NR * C + c) * FU_NR + o % FU_NR];
        f.wgrp = wgrp;
    }
    /* too few units to keep every thread busy: split the output channels too (each split
     * recomputes its unit's depthwise output, a small fraction of the work) */
    /* NCHW: fewer units, each split converting its rows again (measured, AVX2, 2 threads,
     * batch 1: 256 -> 256 at 28 x 28, 0.80 ms with 2 units a thread, 1.08 with 8, 1.03 for
     * whole images split in two; 512 -> 512 at 14 x 14, 0.85, 1.20, 1.00; 1024 -> 1024 at
     * 7 x 7 within the spread of the whole image's 1.20-1.32) */
#ifndef FU_NCHW_UNITS
#define FU_NCHW_UNITS 2
#endif
    ptrdiff_t want = (nchw ? FU_NCHW_UNITS : 8) * (ptrdiff_t)threads, have = N * f.tiles;
    f.splits = have >= want ? 1 : (want + have - 1) / have;
    if (f.splits > f.blocks)
        f.splits = f.blocks;
    parallel_for(strips ? fu_strip_task : nchw ? fu_nchw_task : fu_task, &f, have * f.splits,
                 threads);
    free(wstd);
    return f.failed;
#else
    (void)nchw, (void)params, (void)cout, (void)coutp, (void)x, (void)wdw, (void)bdw, (void)wpw,
        (void)bpw, (void)y, (void)lo, (void)hi, (void)out_lo, (void)out_hi;
    return 3;
#endif
}

/* params: the depthwise geometry (P_* of depthwise.h, M = 1) with the output's strides in the
 * Y slots (channel stride 1); x channels-last (channel stride 1); wdw (KH * KW, C); bdw (C) or
 * NULL; wpw (coutp / 64, C, 64); bpw (coutp) or NULL; y (N, Cout, OH, OW) channels-last;
 * [lo, hi]: the depthwise output clamped there (-inf, inf: not at all; 0, inf: a ReLU);
 * [out_lo, out_hi]: the output clamped there (an activation after the layer).
 * Returns 0, 1 (out of memory), 2 (not channels-last, or M != 1) or 3 (neither AVX-512F nor
 * AVX2 and FMA here). */
DW_EXPORT int dw_fused_cl_f32(FU_ARGS)
{
    return fu_run(0, params, cout, coutp, x, wdw, bdw, wpw, bpw, y, lo, hi, out_lo, out_hi);
}

/* The same for NCHW tensors (unit stride along W, planes of H x W one after another), with
 * the same prepared weights: x (N, C, H, W); y (N, Cout, OH, OW) with rows of OW pixels one
 * after another in each plane. A task works on a tile of output rows converted to
 * channels-last in cache where the image's buffers take at most FU_IMAGE_BYTES, else on a
 * strip of output rows that stays NCHW.
 * Returns 0, 1 (out of memory), 2 (not NCHW, or M != 1) or 3 (neither AVX-512F nor AVX2 and
 * FMA here). */
DW_EXPORT int dw_fused_nchw_f32(FU_ARGS)
{
    return fu_run(1, params, cout, coutp, x, wdw, bdw, wpw, bpw, y, lo, hi, out_lo, out_hi);
}
