/* The NCHW forward at unit horizontal stride with AVX-512 masked loads, included by
 * depthwise_backward.h once per element type (T, SFX; FN from depthwise_kernels.h).
 *
 * Each output row is computed straight from the input rows it reads: a vector of LANES
 * outputs, for each tap, loads the input row at the tap's column offset with a mask that
 * zeroes the lanes falling outside the row (the zero padding) and beyond the output row, so
 * there is no padded copy of the input and no per-row ring: a 7x7 or 14x14 plane is one
 * vector per row, which the row-ring and whole-plane paths handle with copies that cost as
 * much as the arithmetic. Masked-off lanes are not read (AVX-512 suppresses their faults).
 * Used where the processor has AVX-512F and the horizontal stride is 1; any vertical stride,
 * dilation, padding, kernel size and depth multiplier. Sums run over the taps in row-major
 * order, one fused multiply-add each, whatever the thread count; eight output rows are
 * computed together (eight independent sums keep the multiply-add units busy). */
#if DW_HAVE_AVX512_CODE

#if defined(DW_AVX512_FLOAT)
#define AV __m512
#define AMASK __mmask16
#define ALANES 16
#define ASET1 _mm512_set1_ps
#define ALOADZ _mm512_maskz_loadu_ps
#define AFMA _mm512_fmadd_ps
#define ASTORE _mm512_mask_storeu_ps
#else
#define AV __m512d
#define AMASK __mmask8
#define ALANES 8
#define ASET1 _mm512_set1_pd
#define ALOADZ _mm512_maskz_loadu_pd
#define AFMA _mm512_fmadd_pd
#define ASTORE _mm512_mask_storeu_pd
#endif

/* lanes [lo, hi) set */
static inline AMASK FN(lanes)(ptrdiff_t lo, ptrdiff_t hi)
{
    return (AMASK)(((1u << hi) - 1u) & ~((1u << lo) - 1u));
}

/* out[t] = the sum of a[t]'s lanes (in double, lane order), t < 9: a weight gradient's taps */
__attribute__((target("avx512f"))) static inline void FN(reduce9)(const AV *a, T *out)
{
    for (int t = 0; t < 9; t++) {
        T lanes[ALANES];
        _mm512_storeu_si512((void *)lanes, (__m512i)a[t]);
        double sum = 0;
        for (int i = 0; i < ALANES; i++)
            sum += lanes[i];
        out[t] = (T)sum;
    }
}

#define MAX_TAPS 49
#define ROWS 8 /* output rows computed together: independent accumulators hide FMA latency */

/* The 3 x 3 kernel at unit stride and dilation in both axes... rows: the ten input rows of
 * eight output rows are each loaded once (three shifted vectors) and feed every sum that
 * reads them; each sum still adds its nine products in row-major tap order. Written out row
 * by row, so that the eight sums stay in registers. */
__attribute__((target("avx512f"))) static inline void FN(s1_33_block)(
    T *out, ptrdiff_t ystride, ptrdiff_t nr, const T *const *rows, const AV *wv, AV bias,
    AMASK k0, AMASK k1, AMASK k2, ptrdiff_t c0, ptrdiff_t c1, ptrdiff_t c2, AMASK keep)
{
    const AV w0 = wv[0], w1 = wv[1], w2 = wv[2], w3 = wv[3], w4 = wv[4], w5 = wv[5];
    const AV w6 = wv[6], w7 = wv[7], w8 = wv[8];
    AV a0 = bias, a1 = bias, a2 = bias, a3 = bias, a4 = bias, a5 = bias, a6 = bias, a7 = bias;
    AV x0, x1, x2;
    if (rows[0]) {
        x0 = ALOADZ(k0, rows[0] + c0);
        x1 = ALOADZ(k1, rows[0] + c1);
        x2 = ALOADZ(k2, rows[0] + c2);
        a0 = AFMA(w2, x2, AFMA(w1, x1, AFMA(w0, x0, a0)));
    }
    if (rows[1]) {
        x0 = ALOADZ(k0, rows[1] + c0);
        x1 = ALOADZ(k1, rows[1] + c1);
        x2 = ALOADZ(k2, rows[1] + c2);
        a1 = AFMA(w2, x2, AFMA(w1, x1, AFMA(w0, x0, a1)));
        a0 = AFMA(w5, x2, AFMA(w4, x1, AFMA(w3, x0, a0)));
    }
    if (rows[2]) {
        x0 = ALOADZ(k0, rows[2] + c0);
        x1 = ALOADZ(k1, rows[2] + c1);
        x2 = ALOADZ(k2, rows[2] + c2);
        a2 = AFMA(w2, x2, AFMA(w1, x1, AFMA(w0, x0, a2)));
        a1 = AFMA(w5, x2, AFMA(w4, x1, AFMA(w3, x0, a1)));
        a0 = AFMA(w8, x2, AFMA(w7, x1, AFMA(w6, x0, a0)));
    }
    if (rows[3]) {
        x0 = ALOADZ(k0, rows[3] + c0);
        x1 = ALOADZ(k1, rows[3] + c1);
        x2 = ALOADZ(k2, rows[3] + c2);
        a3 = AFMA(w2, x2, AFMA(w1, x1, AFMA(w0, x0, a3)));
        a2 = AFMA(w5, x2, AFMA(w4, x1, AFMA(w3, x0, a2)));
        a1 = AFMA(w8, x2, AFMA(w7, x1, AFMA(w6, x0, a1)));
    }
    if (rows[4]) {
        x0 = ALOADZ(k0, rows[4] + c0);
        x1 = ALOADZ(k1, rows[4] + c1);
        x2 = ALOADZ(k2, rows[4] + c2);
        a4 = AFMA(w2, x2, AFMA(w1, x1, AFMA(w0, x0, a4)));
        a3 = AFMA(w5, x2, AFMA(w4, x1, AFMA(w3, x0, a3)));
        a2 = AFMA(w8, x2, AFMA(w7, x1, AFMA(w6, x0, a2)));
    }
    if (rows[5]) {
        x0 = ALOADZ(k0, rows[5] + c0);
        x1 = ALOADZ(k1, rows[5] + c1);
        x2 = ALOADZ(k2, rows[5] + c2);
        a5 = AFMA(w2, x2, AFMA(w1, x1, AFMA(w0, x0, a5)));
        a4 = AFMA(w5, x2, AFMA(w4, x1, AFMA(w3, x0, a4)));
        a3 = AFMA(w8, x2, AFMA(w7, x1, AFMA(w6, x0, a3)));
    }
    if (rows[6]) {
        x0 = ALOADZ(k0, rows[6] + c0);
        x1 = ALOADZ(k1, rows[6] + c1);
        x2 = ALOADZ(k2, rows[6] + c2);
        a6 = AFMA(w2, x2, AFMA(w1, x1, AFMA(w0, x0, a6)));
        a5 = AFMA(w5, x2, AFMA(w4, x1, AFMA(w3, x0, a5)));
        a4 = AFMA(w8, x2, AFMA(w7, x1, AFMA(w6, x0, a4)));
    }
    if (rows[7]) {
        x0 = ALOADZ(k0, rows[7] + c0);
        x1 = ALOADZ(k1, rows[7] + c1);
        x2 = ALOADZ(k2, rows[7] + c2);
        a7 = AFMA(w2, x2, AFMA(w1, x1, AFMA(w0, x0, a7)));
        a6 = AFMA(w5, x2, AFMA(w4, x1, AFMA(w3, x0, a6)));
        a5 = AFMA(w8, x2, AFMA(w7, x1, AFMA(w6, x0, a5)));
    }
    if (rows[8]) {
        x0 = ALOADZ(k0, rows[8] + c0);
        x1 = ALOADZ(k1, rows[8] + c1);
        x2 = ALOADZ(k2, rows[8] + c2);
        a7 = AFMA(w5, x2, AFMA(w4, x1, AFMA(w3, x0, a7)));
        a6 = AFMA(w8, x2, AFMA(w7, x1, AFMA(w6, x0, a6)));
    }
    if (rows[9]) {
        x0 = ALOADZ(k0, rows[9] + c0);
        x1 = ALOADZ(k1, rows[9] + c1);
        x2 = ALOADZ(k2, rows[9] + c2);
        a7 = AFMA(w8, x2, AFMA(w7, x1, AFMA(w6, x0, a7)));
    }
    AV acc[8] = {a0, a1, a2, a3, a4, a5, a6, a7};
    for (ptrdiff_t r = 0; r < nr; r++)
        ASTORE(out + r * ystride, keep, acc[r]);
}

__attribute__((target("avx512f"))) static void FN(fwd_s1_task)(void *vctx, ptrdiff_t task)
{
    job_t *job = vctx;
    const ptrdiff_t *p = job->p;
    const ptrdiff_t planes = p[P_N] * p[P_C], M = p[P_M], KH = p[P_KH], KW = p[P_KW];
    const ptrdiff_t W = p[P_W], H = p[P_H], OH = p[P_OH], OW = p[P_OW];
    const ptrdiff_t DH = p[P_DH], DW = p[P_DW], PL = p[P_PL], taps = KH * KW;
    const ptrdiff_t first = planes * task / job->ntasks, last = planes * (task + 1) / job->ntasks;
    const T *w = job->w, *b = job->b;
    /* a padding row: the masked lanes read columns [0, W) of it, all zeros (the products
     * PyTorch forms with its zero padding) */
    T *zero = calloc(W, sizeof(T));
    if (!zero) {
        job->failed = 1;
        return;
    }
    /* 3 x 3, unit vertical stride and dilation: the row-sharing block */
    const int k33 = KH == 3 && KW == 3 && p[P_SH] == 1 && DH == 1;
    AV wv[MAX_TAPS];
    unsigned cols[MAX_TAPS];
    ptrdiff_t c0[MAX_TAPS];
    for (ptrdiff_t plane = first; plane < last; plane++) {
        ptrdiff_t n = plane / p[P_C], c = plane % p[P_C];
        const T *src = (const T *)job->x + n * p[P_XN] + c * p[P_XC];
        for (ptrdiff_t m = 0; m < M; m++) {
            ptrdiff_t o = c * M + m;
            T *out = (T *)job->y + n * p[P_YN] + o * p[P_YC];
            const T *wk = w + o * taps;
            for (ptrdiff_t t = 0; t < taps; t++)
                wv[t] = ASET1(wk[t]);
            const AV bias = ASET1(b ? b[o] : (T)0);
            /* eight output rows at a time, swept left to right: their input rows stay in
             * the first-level cache */
            for (ptrdiff_t oh0 = 0; oh0 < OH; oh0 += ROWS) {
                const ptrdiff_t nr = OH - oh0 < ROWS ? OH - oh0 : ROWS;
                for (ptrdiff_t ow0 = 0; ow0 < OW; ow0 += ALANES) {
                    const ptrdiff_t nout = OW - ow0 < ALANES ? OW - ow0 : ALANES;
                    for (ptrdiff_t kx = 0; kx < KW; kx++) {
                        c0[kx] = ow0 + kx * DW - PL;
                        ptrdiff_t lo = c0[kx] < 0 ? -c0[kx] : 0;
                        ptrdiff_t hi = W - c0[kx] < nout ? W - c0[kx] : nout;
                        cols[kx] = hi > lo ? FN(lanes)(lo, hi) : 0u;
                    }
                    const AMASK keep = FN(lanes)(0, nout);
                    if (k33) {
                        const T *rows[ROWS + 2];
                        for (int j = 0; j < ROWS + 2; j++) {
                            ptrdiff_t ih = oh0 - p[P_PT] + j;
                            rows[j] = j < nr + 2 && ih >= 0 && ih < H ? src + ih * p[P_XH] : NULL;
                        }
                        FN(s1_33_block)(out + oh0 * p[P_YH] + ow0, p[P_YH], nr, rows, wv, bias,
                                        (AMASK)cols[0], (AMASK)cols[1], (AMASK)cols[2], c0[0],
                                        c0[1], c0[2], keep);
                        continue;
                    }
                    /* eight named sums (an array would live on the stack) */
                    AV a0 = bias, a1 = bias, a2 = bias, a3 = bias;
                    AV a4 = bias, a5 = bias, a6 = bias, a7 = bias;
                    for (ptrdiff_t ky = 0; ky < KH; ky++) {
                        const T *rows[ROWS];
                        for (int r = 0; r < ROWS; r++) {
                            ptrdiff_t ih = (oh0 + r) * p[P_SH] - p[P_PT] + ky * DH;
                            rows[r] = r < nr && ih >= 0 && ih < H ? src + ih * p[P_XH] : zero;
                        }
                        const T *r0 = rows[0], *r1 = rows[1], *r2 = rows[2], *r3 = rows[3];
                        const T *r4 = rows[4], *r5 = rows[5], *r6 = rows[6], *r7 = rows[7];
                        const AV *wrow = wv + ky * KW;
                        for (ptrdiff_t kx = 0; kx < KW; kx++) {
                            if (!cols[kx])
                                continue;
                            const AMASK k = (AMASK)cols[kx];
                            const ptrdiff_t off = c0[kx];
                            const AV wt = wrow[kx];
#define TAP(a, r) a = AFMA(wt, ALOADZ(k, r + off), a)
                            TAP(a0, r0);
                            TAP(a1, r1);
                            TAP(a2, r2);
                            TAP(a3, r3);
                            TAP(a4, r4);
                            TAP(a5, r5);
                            TAP(a6, r6);
                            TAP(a7, r7);
#undef TAP
                        }
                    }
                    AV acc[ROWS] = {a0, a1, a2, a3, a4, a5, a6, a7};
                    for (ptrdiff_t r = 0; r < nr; r++)
                        ASTORE(out + (oh0 + r) * p[P_YH] + ow0, keep, acc[r]);
                }
            }
        }
    }
    free(zero);
}

/* rows at most this wide take fwd_s1_task; wider ones only when the input fits in cache
 * (at most S1_CACHED_BYTES): from memory the row ring streams large planes faster (measured,
 * one thread, 3 x 3: 32 planes of 112 x 112, batch 8, 12.8 MB, 2.4 ms here against 1.7 in the
 * ring; batch 1, 1.6 MB, 0.14 ms here against 0.23; 64 planes of 112 x 112, 3.2 MB, 0.28
 * against 0.44) */
#define S1_MAX_WIDTH 64
#define S1_CACHED_BYTES (4 << 20)

/* whether fwd_s1_task applies: AVX-512F present, NCHW rows, unit horizontal stride */
static int FN(fwd_s1_applies)(const ptrdiff_t *p)
{
    ptrdiff_t bytes = p[P_N] * p[P_C] * p[P_H] * p[P_W] * (ptrdiff_t)sizeof(T);
    return dw_avx512() && p[P_SW] == 1 &&
           (p[P_OW] <= S1_MAX_WIDTH || bytes <= S1_CACHED_BYTES) &&
           p[P_KH] * p[P_KW] <= MAX_TAPS;
}
#undef S1_MAX_WIDTH
#undef S1_CACHED_BYTES

/* ---- 3 x 3 at stride 2 in both axes (dilation 1) ------------------------------------------ */
/* Output columns ow0 .. ow0 + LANES - 1 read input columns base + 2l + kx (base = 2 ow0 - pl):
 * two masked loads of 2 LANES consecutive inputs split into their even and odd lanes give
 * the kx = 0 and kx = 1 vectors, and the even lanes shifted by one (with the next input from a
 * third load) the kx = 2 one. Eight output rows read seventeen input rows, each loaded once;
 * written out row by row, so that the eight sums stay in registers. */
#if defined(DW_AVX512_FLOAT)
#define APERM _mm512_permutex2var_ps
#define AIDX(v) _mm512_set_epi32(v)
#define ASHIFT1(next, even) \
    _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(next), _mm512_castps_si512(even), 1))
#define EVEN_IDX 30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0
#define ODD_IDX 31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1
#else
#define APERM _mm512_permutex2var_pd
#define AIDX(v) _mm512_set_epi64(v)
#define ASHIFT1(next, even) \
    _mm512_castsi512_pd(_mm512_alignr_epi64(_mm512_castpd_si512(next), _mm512_castpd_si512(even), 1))
#define EVEN_IDX 14, 12, 10, 8, 6, 4, 2, 0
#define ODD_IDX 15, 13, 11, 9, 7, 5, 3, 1
#endif

/* masked load of the inputs at columns [o, o + LANES) that lie in [0, W) */
__attribute__((target("avx512f"))) static inline AV FN(row_load)(const T *row, ptrdiff_t o,
                                                                   ptrdiff_t W)
{
    ptrdiff_t lo = o < 0 ? -o : 0, hi = W - o < ALANES ? W - o : ALANES;
    if (hi <= lo)
        return ASET1((T)0);
    return ALOADZ(FN(lanes)(lo, hi), row + o);
}

__attribute__((target("avx512f"))) static inline void FN(s2_33_block)(
    T *out, ptrdiff_t ystride, ptrdiff_t nr, const T *const *rows, const AV *wv, AV bias,
    ptrdiff_t base, ptrdiff_t W, AMASK keep)
{
    const AV w0 = wv[0], w1 = wv[1], w2 = wv[2], w3 = wv[3], w4 = wv[4], w5 = wv[5];
    const AV w6 = wv[6], w7 = wv[7], w8 = wv[8];
    const __m512i even_idx = AIDX(EVEN_IDX), odd_idx = AIDX(ODD_IDX);
    AV a0 = bias, a1 = bias, a2 = bias, a3 = bias, a4 = bias, a5 = bias, a6 = bias, a7 = bias;
    AV x0, x1, x2;
    if (rows[0]) {
        const AV lo = FN(row_load)(rows[0], base, W);
        const AV hi = FN(row_load)(rows[0], base + ALANES, W);
        const AV next = FN(row_load)(rows[0], base + 2 * ALANES, W);
        x0 = APERM(lo, even_idx, hi);
        x1 = APERM(lo, odd_idx, hi);
        x2 = ASHIFT1(next, x0);
        a0 = AFMA(w2, x2, AFMA(w1, x1, AFMA(w0, x0, a0)));
    }
    if (rows[1]) {
        const AV lo = FN(row_load)(rows[1], base, W);
        const AV hi = FN(row_load)(rows[1], base + ALANES, W);
        const AV next = FN(row_load)(rows[1], base + 2 * ALANES, W);
        x0 = APERM(lo, even_idx, hi);
        x1 = APERM(lo, odd_idx, hi);
        x2 = ASHIFT1(next, x0);
        a0 = AFMA(w5, x2, AFMA(w4, x1, AFMA(w3, x0, a0)));
    }
    if (rows[2]) {
        const AV lo = FN(row_load)(rows[2], base, W);
        const AV hi = FN(row_load)(rows[2], base + ALANES, W);
        const AV next = FN(row_load)(rows[2], base + 2 * ALANES, W);
        x0 = APERM(lo, even_idx, hi);
        x1 = APERM(lo, odd_idx, hi);
        x2 = ASHIFT1(next, x0);
        a1 = AFMA(w2, x2, AFMA(w1, x1, AFMA(w0, x0, a1)));
        a0 = AFMA(w8, x2, AFMA(w7, x1, AFMA(w6, x0, a0)));
    }
    if (rows[3]) {
        const AV lo = FN(row_load)(rows[3], base, W);
        const AV hi = FN(row_load)(rows[3], base + ALANES, W);
        const AV next = FN(row_load)(rows[3], base + 2 * ALANES, W);
        x0 = APERM(lo, even_idx, hi);
        x1 = APERM(lo, odd_idx, hi);
        x2 = ASHIFT1(next, x0);
        a1 = AFMA(w5, x2, AFMA(w4, x1, AFMA(w3, x0, a1)));
    }
    if (rows[4]) {
        const AV lo = FN(row_load)(rows[4], base, W);
        const AV hi = FN(row_load)(rows[4], base + ALANES, W);
        const AV next = FN(row_load)(rows[4], base + 2 * ALANES, W);
        x0 = APERM(lo, even_idx, hi);
        x1 = APERM(lo, odd_idx, hi);
        x2 = ASHIFT1(next, x0);
        a2 = AFMA(w2, x2, AFMA(w1, x1, AFMA(w0, x0, a2)));
        a1 = AFMA(w8, x2, AFMA(w7, x1, AFMA(w6, x0, a1)));
    }
    if (rows[5]) {
        const AV lo = FN(row_load)(rows[5], base, W);
        const AV hi = FN(row_load)(rows[5], base + ALANES, W);
        const AV next = FN(row_load)(rows[5], base + 2 * ALANES, W);
        x0 = APERM(lo, even_idx, hi);
        x1 = APERM(lo, odd_idx, hi);
        x2 = ASHIFT1(next, x0);
        a2 = AFMA(w5, x2, AFMA(w4, x1, AFMA(w3, x0, a2)));
    }
    if (rows[6]) {
        const AV lo = FN(row_load)(rows[6], base, W);
        const AV hi = FN(row_load)(rows[6], base + ALANES, W);
        const AV next = FN(row_load)(rows[6], base + 2 * ALANES, W);
        x0 = APERM(lo, even_idx, hi);
        x1 = APERM(lo, odd_idx, hi);
        x2 = ASHIFT1(next, x0);
        a3 = AFMA(w2, x2, AFMA(w1, x1, AFMA(w0, x0, a3)));
        a2 = AFMA(w8, x2, AFMA(w7, x1, AFMA(w6, x0, a2)));
    }
    if (rows[7]) {
        const AV lo = FN(row_load)(rows[7], base, W);
        const AV hi = FN(row_load)(rows[7], base + ALANES, W);
        const AV next = FN(row_load)(rows[7], base + 2 * ALANES, W);
        x0 = APERM(lo, even_idx, hi);
        x1 = APERM(lo, odd_idx, hi);
        x2 = ASHIFT1(next, x0);
        a3 = AFMA(w5, x2, AFMA(w4, x1, AFMA(w3, x0, a3)));
    }
    if (rows[8]) {
        const AV lo = FN(row_load)(rows[8], base, W);
        const AV hi = FN(row_load)(rows[8], base + ALANES, W);
        const AV next = FN(row_load)(rows[8], base + 2 * ALANES, W);
        x0 = APERM(lo, even_idx, hi);
        x1 = APERM(lo, odd_idx, hi);
        x2 = ASHIFT1(next, x0);
        a4 = AFMA(w2, x2, AFMA(w1, x1, AFMA(w0, x0, a4)));
        a3 = AFMA(w8, x2, AFMA(w7, x1, AFMA(w6, x0, a3)));
    }
    if (rows[9]) {
        const AV lo = FN(row_load)(rows[9], base, W);
        const AV hi = FN(row_load)(rows[9], base + ALANES, W);
        const AV next = FN(row_load)(rows[9], base + 2 * ALANES, W);
        x0 = APERM(lo, even_idx, hi);
        x1 = APERM(lo, odd_idx, hi);
        x2 = ASHIFT1(next, x0);
        a4 = AFMA(w5, x2, AFMA(w4, x1, AFMA(w3, x0, a4)));
    }
    if (rows[10]) {
        const AV lo = FN(row_load)(rows[10], base, W);
        const AV hi = FN(row_load)(rows[10], base + ALANES, W);
        const AV next = FN(row_load)(rows[10], base + 2 * ALANES, W);
        x0 = APERM(lo, even_idx, hi);
        x1 = APERM(lo, odd_idx, hi);
        x2 = ASHIFT1(next, x0);
        a5 = AFMA(w2, x2, AFMA(w1, x1, AFMA(w0, x0, a5)));
        a4 = AFMA(w8, x2, AFMA(w7, x1, AFMA(w6, x0, a4)));
    }
    if (rows[11]) {
        const AV lo = FN(row_load)(rows[11], base, W);
        const AV hi = FN(row_load)(rows[11], base + ALANES, W);
        const AV next = FN(row_load)(rows[11], base + 2 * ALANES, W);
        x0 = APERM(lo, even_idx, hi);
        x1 = APERM(lo, odd_idx, hi);
        x2 = ASHIFT1(next, x0);
        a5 = AFMA(w5, x2, AFMA(w4, x1, AFMA(w3, x0, a5)));
    }
    if (rows[12]) {
        const AV lo = FN(row_load)(rows[12], base, W);
        const AV hi = FN(row_load)(rows[12], base + ALANES, W);
        const AV next = FN(row_load)(rows[12], base + 2 * ALANES, W);
        x0 = APERM(lo, even_idx, hi);
        x1 = APERM(lo, odd_idx, hi);
        x2 = ASHIFT1(next, x0);
        a6 = AFMA(w2, x2, AFMA(w1, x1, AFMA(w0, x0, a6)));
        a5 = AFMA(w8, x2, AFMA(w7, x1, AFMA(w6, x0, a5)));
    }
    if (rows[13]) {
        const AV lo = FN(row_load)(rows[13], base, W);
        const AV hi = FN(row_load)(rows[13], base + ALANES, W);
        const AV next = FN(row_load)(rows[13], base + 2 * ALANES, W);
        x0 = APERM(lo, even_idx, hi);
        x1 = APERM(lo, odd_idx, hi);
        x2 = ASHIFT1(next, x0);
        a6 = AFMA(w5, x2, AFMA(w4, x1, AFMA(w3, x0, a6)));
    }
    if (rows[14]) {
        const AV lo = FN(row_load)(rows[14], base, W);
        const AV hi = FN(row_load)(rows[14], base + ALANES, W);
        const AV next = FN(row_load)(rows[14], base + 2 * ALANES, W);
        x0 = APERM(lo, even_idx, hi);
        x1 = APERM(lo, odd_idx, hi);
        x2 = ASHIFT1(next, x0);
        a7 = AFMA(w2, x2, AFMA(w1, x1, AFMA(w0, x0, a7)));
        a6 = AFMA(w8, x2, AFMA(w7, x1, AFMA(w6, x0, a6)));
    }
    if (rows[15]) {
        const AV lo = FN(row_load)(rows[15], base, W);
        const AV hi = FN(row_load)(rows[15], base + ALANES, W);
        const AV next = FN(row_load)(rows[15], base + 2 * ALANES, W);
        x0 = APERM(lo, even_idx, hi);
        x1 = APERM(lo, odd_idx, hi);
        x2 = ASHIFT1(next, x0);
        a7 = AFMA(w5, x2, AFMA(w4, x1, AFMA(w3, x0, a7)));
    }
    if (rows[16]) {
        const AV lo = FN(row_load)(rows[16], base, W);
        const AV hi = FN(row_load)(rows[16], base + ALANES, W);
        const AV next = FN(row_load)(rows[16], base + 2 * ALANES, W);
        x0 = APERM(lo, even_idx, hi);
        x1 = APERM(lo, odd_idx, hi);
        x2 = ASHIFT1(next, x0);
        a7 = AFMA(w8, x2, AFMA(w7, x1, AFMA(w6, x0, a7)));
    }
    AV acc[8] = {a0, a1, a2, a3, a4, a5, a6, a7};
    for (ptrdiff_t r = 0; r < nr; r++)
        ASTORE(out + r * ystride, keep, acc[r]);
}

__attribute__((target("avx512f"))) static void FN(fwd_s2_task)(void *vctx, ptrdiff_t task)
{
    job_t *job = vctx;
    const ptrdiff_t *p = job->p;
    const ptrdiff_t planes = p[P_N] * p[P_C], M = p[P_M];
    const ptrdiff_t W = p[P_W], H = p[P_H], OH = p[P_OH], OW = p[P_OW];
    const ptrdiff_t first = planes * task / job->ntasks, last = planes * (task + 1) / job->ntasks;
    const T *w = job->w, *b = job->b;
    AV wv[9];
    for (ptrdiff_t plane = first; plane < last; plane++) {
        ptrdiff_t n = plane / p[P_C], c = plane % p[P_C];
        const T *src = (const T *)job->x + n * p[P_XN] + c * p[P_XC];
        for (ptrdiff_t m = 0; m < M; m++) {
            ptrdiff_t o = c * M + m;
            T *out = (T *)job->y + n * p[P_YN] + o * p[P_YC];
            for (int t = 0; t < 9; t++)
                wv[t] = ASET1(w[o * 9 + t]);
            const AV bias = ASET1(b ? b[o] : (T)0);
            for (ptrdiff_t oh0 = 0; oh0 < OH; oh0 += ROWS) {
                const ptrdiff_t nr = OH - oh0 < ROWS ? OH - oh0 : ROWS;
                const T *rows[2 * ROWS + 1];
                for (int j = 0; j < 2 * ROWS + 1; j++) {
                    ptrdiff_t ih = 2 * oh0 - p[P_PT] + j;
                    rows[j] = j < 2 * nr + 1 && ih >= 0 && ih < H ? src + ih * p[P_XH] : NULL;
                }
                for (ptrdiff_t ow0 = 0; ow0 < OW; ow0 += ALANES) {
                    const ptrdiff_t nout = OW - ow0 < ALANES ? OW - ow0 : ALANES;
                    FN(s2_33_block)(out + oh0 * p[P_YH] + ow0, p[P_YH], nr, rows, wv, bias,
                                    2 * ow0 - p[P_PL], W, FN(lanes)(0, nout));
                }
            }
        }
    }
}

/* whether fwd_s2_task applies: AVX-512F, NCHW rows, 3 x 3 at stride 2, dilation 1 */
static int FN(fwd_s2_applies)(const ptrdiff_t *p)
{
    return dw_avx512() && p[P_KH] == 3 && p[P_KW] == 3 && p[P_SH] == 2 && p[P_SW] == 2 &&
           p[P_DH] == 1 && p[P_DW] == 1 && p[P_OW] <= 64;
}

/* Gradients of the 3 x 3 convolution at stride 2 (dilation 1, M = 1), NCHW. */
#if defined(DW_AVX512_FLOAT)
#define INTERLEAVE_LO 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0
#define INTERLEAVE_HI 31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8
#else
#define INTERLEAVE_LO 11, 3, 10, 2, 9, 1, 8, 0
#define INTERLEAVE_HI 15, 7, 14, 6, 13, 5, 12, 4
#endif

/* Input gradient. Padded input column u = iw + pl receives g[u / 2] w[0] + g[u / 2 - 1] w[2]
 * when u is even, g[(u - 1) / 2] w[1] when odd (and likewise along the rows): for output-
 * gradient columns j0 .. j0 + LANES - 1, the even and odd sums are two vectors, interleaved
 * into the 2 LANES input columns they give. Task: a range of planes (as gx_nchw_task). */
__attribute__((target("avx512f"))) static void FN(gx_s2_nchw512_task)(void *vctx,
                                                                      ptrdiff_t task)
{
    job_t *job = vctx;
    const ptrdiff_t *p = job->p;
    ptrdiff_t planes = p[P_N] * p[P_C], H = p[P_H], W = p[P_W], OH = p[P_OH], OW = p[P_OW];
    ptrdiff_t first = planes * task / job->ntasks, last = planes * (task + 1) / job->ntasks;
    ptrdiff_t pt = p[P_PT], pl = p[P_PL];
    const __m512i ilo = AIDX(INTERLEAVE_LO), ihi = AIDX(INTERLEAVE_HI);
    for (ptrdiff_t plane = first; plane < last; plane++) {
        ptrdiff_t n = plane / p[P_C], c = plane % p[P_C];
        const T *w = (const T *)job->w + c * 9;
        const T *gc = (const T *)job->gy + n * p[P_YN] + c * p[P_YC];
        T *xc = (T *)job->gx + n * p[P_XN] + c * p[P_XC];
        for (ptrdiff_t ih = 0; ih < H; ih++) {
            const T *grow[2];
            const T *wrow[2];
            ptrdiff_t nrows = FN(s2_rows)(ih, pt, OH, gc, p[P_YH], w, grow, wrow);
            T *out = xc + ih * p[P_XH];
            for (ptrdiff_t j0 = 0; 2 * j0 < W + pl; j0 += ALANES) {
                AV even = ASET1(0), odd = even;
                for (ptrdiff_t r = 0; r < nrows; r++) {
                    AV g = FN(row_load)(grow[r], j0, OW), gm = FN(row_load)(grow[r], j0 - 1, OW);
                    even = AFMA(ASET1(wrow[r][0]), g, AFMA(ASET1(wrow[r][2]), gm, even));
                    odd = AFMA(ASET1(wrow[r][1]), g, odd);
                }
                for (int half = 0; half < 2; half++) {
                    ptrdiff_t u0 = 2 * j0 + half * ALANES; /* padded column of lane 0 */
                    ptrdiff_t lo = pl - u0, hi = W + pl - u0;
                    lo = lo < 0 ? 0 : lo;
                    hi = hi > ALANES ? ALANES : hi;
                    if (hi > lo)
                        ASTORE(out + u0 - pl, FN(lanes)(lo, hi),
                               APERM(even, half ? ihi : ilo, odd));
                }
            }
        }
    }
}

/* Weight gradient. Task: one channel, summed over the batch in order; the input columns of
 * each tap are split from two loads as in the forward (even, odd, even shifted by one). */
__attribute__((target("avx512f"))) static void FN(gw_s2_nchw512_task)(void *vctx, ptrdiff_t c)
{
    job_t *job = vctx;
    const ptrdiff_t *p = job->p;
    ptrdiff_t H = p[P_H], W = p[P_W], OH = p[P_OH], OW = p[P_OW], pt = p[P_PT], pl = p[P_PL];
    const __m512i even_idx = AIDX(EVEN_IDX), odd_idx = AIDX(ODD_IDX);
    AV a[9];
    for (int t = 0; t < 9; t++)
        a[t] = ASET1(0);
    for (ptrdiff_t n = 0; n < p[P_N]; n++) {
        const T *xc = (const T *)job->x + n * p[P_XN] + c * p[P_XC];
        const T *gc = (const T *)job->gy + n * p[P_YN] + c * p[P_YC];
        for (ptrdiff_t ow0 = 0; ow0 < OW; ow0 += ALANES) {
            ptrdiff_t base = 2 * ow0 - pl;
            AMASK kg = FN(lanes)(0, OW - ow0 < ALANES ? OW - ow0 : ALANES);
            for (ptrdiff_t oh = 0; oh < OH; oh++) {
                AV g = ALOADZ(kg, gc + oh * p[P_YH] + ow0);
#pragma GCC unroll 3
                for (int ky = 0; ky < 3; ky++) {
                    ptrdiff_t ih = 2 * oh + ky - pt;
                    if (ih < 0 || ih >= H)
                        continue;
                    const T *row = xc + ih * p[P_XH];
                    AV lo = FN(row_load)(row, base, W), hi = FN(row_load)(row, base + ALANES, W);
                    AV next = FN(row_load)(row, base + 2 * ALANES, W);
                    AV x0 = APERM(lo, even_idx, hi);
                    a[3 * ky] = AFMA(g, x0, a[3 * ky]);
                    a[3 * ky + 1] = AFMA(g, APERM(lo, odd_idx, hi), a[3 * ky + 1]);
                    a[3 * ky + 2] = AFMA(g, ASHIFT1(next, x0), a[3 * ky + 2]);
                }
            }
        }
    }
    FN(reduce9)(a, (T *)job->gw + c * 9);
}

/* whether the two tasks above apply: AVX-512F, 3 x 3 at stride 2, dilation 1, M = 1, NCHW */
static int FN(grad_s2_applies)(const ptrdiff_t *p)
{
    return dw_avx512() && p[P_KH] == 3 && p[P_KW] == 3 && p[P_SH] == 2 && p[P_SW] == 2 &&
           p[P_DH] == 1 && p[P_DW] == 1 && p[P_M] == 1;
}
#undef INTERLEAVE_LO
#undef INTERLEAVE_HI
#undef APERM
#undef AIDX
#undef ASHIFT1
#undef EVEN_IDX
#undef ODD_IDX

/* ---- channels-last, eight pixels at a time ------------------------------------------------ */
/* Vectors run along the channels (M = 1); a tap's weight vector is loaded once for eight
 * output pixels of a row whose taps all fall inside the input (the rest, near the left and
 * right borders, go through fwd_cl_pixel). Channels past the last full vector are masked.
 * Each output sums its taps in row-major order, as fwd_cl_pixel does. */
__attribute__((target("avx512f"))) static void FN(cl8_block)(
    T *out, ptrdiff_t ystep, const T *x, ptrdiff_t xstep, const T *wt, const T *b,
    const ptrdiff_t *p, ptrdiff_t ky0, ptrdiff_t ky1)
{
    const ptrdiff_t C = p[P_C], KW = p[P_KW];
    const ptrdiff_t dy = p[P_DH] * p[P_XH], dx = p[P_DW] * p[P_XW];
    for (ptrdiff_t c = 0; c < C; c += ALANES) {
        const AMASK k = FN(lanes)(0, C - c < ALANES ? C - c : ALANES);
        const AV bias = b ? ALOADZ(k, b + c) : ASET1((T)0);
        AV a0 = bias, a1 = bias, a2 = bias, a3 = bias, a4 = bias, a5 = bias, a6 = bias, a7 = bias;
        for (ptrdiff_t ky = ky0; ky < ky1; ky++)
            for (ptrdiff_t kx = 0; kx < KW; kx++) {
                const AV wv = ALOADZ(k, wt + (ky * KW + kx) * C + c);
                const T *s = x + ky * dy + kx * dx + c;
                a0 = AFMA(wv, ALOADZ(k, s + 0 * xstep), a0);
                a1 = AFMA(wv, ALOADZ(k, s + 1 * xstep), a1);
                a2 = AFMA(wv, ALOADZ(k, s + 2 * xstep), a2);
                a3 = AFMA(wv, ALOADZ(k, s + 3 * xstep), a3);
                a4 = AFMA(wv, ALOADZ(k, s + 4 * xstep), a4);
                a5 = AFMA(wv, ALOADZ(k, s + 5 * xstep), a5);
                a6 = AFMA(wv, ALOADZ(k, s + 6 * xstep), a6);
                a7 = AFMA(wv, ALOADZ(k, s + 7 * xstep), a7);
            }
        ASTORE(out + 0 * ystep + c, k, a0);
        ASTORE(out + 1 * ystep + c, k, a1);
        ASTORE(out + 2 * ystep + c, k, a2);
        ASTORE(out + 3 * ystep + c, k, a3);
        ASTORE(out + 4 * ystep + c, k, a4);
        ASTORE(out + 5 * ystep + c, k, a5);
        ASTORE(out + 6 * ystep + c, k, a6);
        ASTORE(out + 7 * ystep + c, k, a7);
    }
}

static void FN(fwd_cl8_task)(void *vctx, ptrdiff_t task)
{
    FN(fwd_cl_rows)(vctx, task, FN(cl8_block), 8);
}

/* with AVX-512F, where eight pixels at a time pay */
static int FN(fwd_cl8_applies)(const ptrdiff_t *p)
{
    return dw_avx512() && FN(cl8_pays)(p, ALANES);
}

/* ---- whole small planes, flattened (unit strides, output as wide as the input) ----------- */
/* Where OW == W and rows are contiguous (a stride-1 'same' layer), output p = oh * W + ow
 * reads input p + (ky dh - pt) W + (kx dw - pl) for every tap: a whole plane is a flat run
 * of outputs, each tap one masked load at a fixed offset (the mask, the same for every plane,
 * zeroes the lanes whose input lies in the padding). A 7 x 7 plane is four float vectors
 * instead of seven one-row vectors. */
#define FLAT_VECS 16

__attribute__((target("avx512f"))) static void FN(fwd_flat512_task)(void *vctx, ptrdiff_t task)
{
    job_t *job = vctx;
    const ptrdiff_t *p = job->p;
    const ptrdiff_t planes = p[P_N] * p[P_C], M = p[P_M], KH = p[P_KH], KW = p[P_KW];
    const ptrdiff_t W = p[P_W], H = p[P_H], taps = KH * KW, count = p[P_OH] * p[P_OW];
    const ptrdiff_t nvec = (count + ALANES - 1) / ALANES;
    const ptrdiff_t first = planes * task / job->ntasks, last = planes * (task + 1) / job->ntasks;
    const T *w = job->w, *b = job->b;
    unsigned masks[MAX_TAPS][FLAT_VECS];
    ptrdiff_t offs[MAX_TAPS];
    for (ptrdiff_t ky = 0; ky < KH; ky++)
        for (ptrdiff_t kx = 0; kx < KW; kx++) {
            ptrdiff_t t = ky * KW + kx, dy = ky * p[P_DH] - p[P_PT], dx = kx * p[P_DW] - p[P_PL];
            offs[t] = dy * W + dx;
            for (ptrdiff_t v = 0; v < nvec + 3; v++) { /* three past the end: masks 0 */
                unsigned m = 0;
                for (ptrdiff_t l = 0; l < ALANES; l++) {
                    ptrdiff_t q = v * ALANES + l, oh = q / W, ow = q % W;
                    if (q < count && oh + dy >= 0 && oh + dy < H && ow + dx >= 0 && ow + dx < W)
                        m |= 1u << l;
                }
                masks[t][v] = m;
            }
        }
    const AMASK last_keep = FN(lanes)(0, count - (nvec - 1) * ALANES);
    ptrdiff_t plane = first;
    if (M == 1 && nvec <= 4) {
        /* planes of at most four vectors two at a time: eight independent sums instead of
         * four (a 7 x 7 plane's nine taps are otherwise one chain of multiply-adds per
         * vector); each output still adds its taps in the same order */
        for (; plane + 1 < last; plane += 2) {
            const ptrdiff_t q = plane + 1;
            const T *src0 = (const T *)job->x + plane / p[P_C] * p[P_XN] + plane % p[P_C] * p[P_XC];
            const T *src1 = (const T *)job->x + q / p[P_C] * p[P_XN] + q % p[P_C] * p[P_XC];
            T *out0 = (T *)job->y + plane / p[P_C] * p[P_YN] + plane % p[P_C] * p[P_YC];
            T *out1 = (T *)job->y + q / p[P_C] * p[P_YN] + q % p[P_C] * p[P_YC];
            const T *wk0 = w + plane % p[P_C] * taps, *wk1 = w + q % p[P_C] * taps;
            const AV bias0 = ASET1(b ? b[plane % p[P_C]] : (T)0);
            const AV bias1 = ASET1(b ? b[q % p[P_C]] : (T)0);
            AV a0 = bias0, a1 = bias0, a2 = bias0, a3 = bias0;
            AV e0 = bias1, e1 = bias1, e2 = bias1, e3 = bias1;
            for (ptrdiff_t t = 0; t < taps; t++) {
                const AV wt0 = ASET1(wk0[t]), wt1 = ASET1(wk1[t]);
                const T *s0 = src0 + offs[t], *s1 = src1 + offs[t];
                const AMASK k0 = (AMASK)masks[t][0], k1 = (AMASK)masks[t][1];
                const AMASK k2 = (AMASK)masks[t][2], k3 = (AMASK)masks[t][3];
                a0 = AFMA(wt0, ALOADZ(k0, s0), a0);
                e0 = AFMA(wt1, ALOADZ(k0, s1), e0);
                a1 = AFMA(wt0, ALOADZ(k1, s0 + ALANES), a1);
                e1 = AFMA(wt1, ALOADZ(k1, s1 + ALANES), e1);
                a2 = AFMA(wt0, ALOADZ(k2, s0 + 2 * ALANES), a2);
                e2 = AFMA(wt1, ALOADZ(k2, s1 + 2 * ALANES), e2);
                a3 = AFMA(wt0, ALOADZ(k3, s0 + 3 * ALANES), a3);
                e3 = AFMA(wt1, ALOADZ(k3, s1 + 3 * ALANES), e3);
            }
            AV acc0[4] = {a0, a1, a2, a3}, acc1[4] = {e0, e1, e2, e3};
            for (ptrdiff_t v = 0; v < nvec; v++) {
                const AMASK keep = v == nvec - 1 ? last_keep : FN(lanes)(0, ALANES);
                ASTORE(out0 + v * ALANES, keep, acc0[v]);
                ASTORE(out1 + v * ALANES, keep, acc1[v]);
            }
        }
    }
    for (; plane < last; plane++) {
        ptrdiff_t n = plane / p[P_C], c = plane % p[P_C];
        const T *src = (const T *)job->x + n * p[P_XN] + c * p[P_XC];
        for (ptrdiff_t m = 0; m < M; m++) {
            ptrdiff_t o = c * M + m;
            T *out = (T *)job->y + n * p[P_YN] + o * p[P_YC];
            const T *wk = w + o * taps;
            const AV bias = ASET1(b ? b[o] : (T)0);
            for (ptrdiff_t v0 = 0; v0 < nvec; v0 += 4) {
                AV a0 = bias, a1 = bias, a2 = bias, a3 = bias;
                const T *s0 = src + v0 * ALANES;
                for (ptrdiff_t t = 0; t < taps; t++) {
                    const AV wt = ASET1(wk[t]);
                    const T *s = s0 + offs[t];
                    const unsigned *mk = masks[t] + v0;
                    /* vectors past the plane have all-zero masks (set above) */
                    a0 = AFMA(wt, ALOADZ((AMASK)mk[0], s), a0);
                    a1 = AFMA(wt, ALOADZ((AMASK)mk[1], s + ALANES), a1);
                    a2 = AFMA(wt, ALOADZ((AMASK)mk[2], s + 2 * ALANES), a2);
                    a3 = AFMA(wt, ALOADZ((AMASK)mk[3], s + 3 * ALANES), a3);
                }
                AV acc[4] = {a0, a1, a2, a3};
                for (ptrdiff_t v = v0; v < v0 + 4 && v < nvec; v++)
                    ASTORE(out + v * ALANES, v == nvec - 1 ? last_keep : FN(lanes)(0, ALANES),
                           acc[v - v0]);
            }
        }
    }
}

/* whether fwd_flat512_task applies: AVX-512F, unit strides, output rows as wide as the
 * input's and at most 8 (wider, the eight-row blocks of fwd_s1_task share their loads
 * better: 14 x 14 planes 81 us here against 60 there for 512 channels, one thread),
 * contiguous rows in both, at most FLAT_VECS - 3 vectors a plane */
static int FN(fwd_flat512_applies)(const ptrdiff_t *p)
{
    ptrdiff_t count = p[P_OH] * p[P_OW];
    return dw_avx512() && p[P_SH] == 1 && p[P_SW] == 1 && p[P_OW] == p[P_W] &&
           p[P_XH] == p[P_W] && p[P_YH] == p[P_OW] && p[P_W] <= 8 &&
           count <= (FLAT_VECS - 3) * ALANES && p[P_KH] * p[P_KW] <= MAX_TAPS;
}
#undef FLAT_VECS

/* The same shapes with AVX2 (processors without AVX-512, or with it turned off), planes up
 * to FLAT2_VECS vectors (a 14 x 14 float plane is 25), since there are no eight-row blocks
 * to prefer; without masked loads (fwd_flat256_task below). */
#if defined(DW_AVX512_FLOAT)
#define BV __m256
#define BLANES 8
#define BSET1 _mm256_set1_ps
#define BFMA _mm256_fmadd_ps
#define BLOADZ(k, s) _mm256_maskload_ps((s), (k))
#define BLOADU _mm256_loadu_ps
#define BSTORE(s, k, v) _mm256_maskstore_ps((s), (k), (v))
#define BSTOREU _mm256_storeu_ps
#define BAND(k, v) _mm256_and_ps(_mm256_castsi256_ps(k), (v))
#else
#define BV __m256d
#define BLANES 4
#define BSET1 _mm256_set1_pd
#define BFMA _mm256_fmadd_pd
#define BLOADZ(k, s) _mm256_maskload_pd((s), (k))
#define BLOADU _mm256_loadu_pd
#define BSTORE(s, k, v) _mm256_maskstore_pd((s), (k), (v))
#define BSTOREU _mm256_storeu_pd
#define BAND(k, v) _mm256_and_pd(_mm256_castsi256_pd(k), (v))
#endif
#define FLAT2_VECS 32

/* lane l of the result all ones where bit l of m is set */
__attribute__((target("avx2"))) static inline __m256i FN(lane_mask)(unsigned m)
{
#if defined(DW_AVX512_FLOAT)
    const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)m), bit), bit);
#else
    const __m256i bit = _mm256_setr_epi64x(1, 2, 4, 8);
    return _mm256_cmpeq_epi64(_mm256_and_si256(_mm256_set1_epi64x(m), bit), bit);
#endif
}

/* vectors v0 .. v0 + NV - 1 of a plane's outputs, vector v at element v BLANES of the plane,
 * except, where LAST, the group's last vector, at element `at`; tap t reads base + tofs[t]
 * plus the vector's element (its kernel column's copy): plain loads at fixed displacements,
 * no masks. WHOLE: every vector stored whole, else the one vector's first count lanes. */
static inline __attribute__((always_inline, target("avx2,fma"))) void
FN(flat2_group)(int NV, int LAST, T *out, const T *base, const T *wk, BV bias,
                const ptrdiff_t *tofs, ptrdiff_t taps, ptrdiff_t v0, ptrdiff_t at, int whole,
                ptrdiff_t count)
{
    BV a[8];
    for (int i = 0; i < NV; i++)
        a[i] = bias;
    const ptrdiff_t e0 = v0 * BLANES;
    for (ptrdiff_t t = 0; t < taps; t++) {
        const BV wt = BSET1(wk[t]);
        const T *s = base + tofs[t];
        for (int i = 0; i < NV; i++)
            a[i] = BFMA(wt, BLOADU(s + (LAST && i == NV - 1 ? at : e0 + i * BLANES)), a[i]);
    }
    if (whole) {
        for (int i = 0; i < NV; i++)
            BSTOREU(out + (LAST && i == NV - 1 ? at : e0 + i * BLANES), a[i]);
    } else {
        T lanes[BLANES];
        BSTOREU(lanes, a[0]);
        for (ptrdiff_t l = 0; l < count; l++)
            out[l] = lanes[l];
    }
}

/* the first element of vector v of a flat run of n elements: v BLANES, the last vector
 * overlapping the one before where n >= BLANES */
static inline ptrdiff_t FN(flat_at)(ptrdiff_t v, ptrdiff_t n)
{
    return n >= BLANES && v * BLANES > n - BLANES ? n - BLANES : v * BLANES;
}

#define FLAT2_GROUP(NV, LAST)                                                                  \
    case NV:                                                                                   \
        FN(flat2_group)(NV, LAST, out, base, wk, bias, tofs, taps, v0, at, whole, count);      \
        break;

/* Where OW == W and rows are contiguous (a stride-1 layer whose output is as wide as its
 * input), output q = oh * W + ow of a plane reads input q + offs[t] for tap t, offs[t] =
 * (ky dh - pt) W + (kx dw - pl): a whole plane is a flat run of outputs, each tap a load at a
 * fixed offset, except where that offset leaves the row (a read of the row before or after)
 * or the plane (the padding). Each plane is copied once into one buffer per kernel column
 * kx, between zero margins (above and below: the padding rows), with the columns that a read
 * leaving the row would reach zeroed (kx dw - pl = -1 reads column W - 1 of the row before
 * for output column 0: column W - 1 zeroed in that copy; +1 zeroes column 0): every tap is
 * then a plain load from its column's copy (no masked loads, slow on some processors:
 * measured, AMD EPYC family 23 (Zen 1), batch 8, 1024 channels at 7 x 7, one thread 0.85 ms
 * against 2.82 with masked loads and 0.97 with plain loads and a mask for each; two threads
 * 0.45, 1.81 and 0.52; PyTorch's channels-last kernel 0.69-0.80 and 0.39-0.43). A plane of count >=
 * BLANES outputs is nvec vectors at 0, BLANES, 2 BLANES, ... and the last at count - BLANES
 * (overlapping the one before: the same values stored twice), all stored whole; a smaller
 * one is one vector, its first count lanes stored. The vectors are summed in groups of at
 * most eight of about equal size (eight chains of multiply-adds side by side: a 14 x 14
 * float plane, 25 vectors, as 7 + 6 + 6 + 6, not 8 + 8 + 8 + 1). */
__attribute__((target("avx2,fma"))) static void FN(fwd_flat256_task)(void *vctx, ptrdiff_t task)
{
    job_t *job = vctx;
    const ptrdiff_t *p = job->p;
    const ptrdiff_t planes = p[P_N] * p[P_C], M = p[P_M], KH = p[P_KH], KW = p[P_KW];
    const ptrdiff_t W = p[P_W], taps = KH * KW, count = p[P_OH] * p[P_OW];
    const ptrdiff_t nvec = (count + BLANES - 1) / BLANES;
    const int whole = count >= BLANES;
    const ptrdiff_t first = planes * task / job->ntasks, last = planes * (task + 1) / job->ntasks;
    const T *w = job->w, *b = job->b;
    ptrdiff_t offs[MAX_TAPS], lo = 0, hi = 0;
    const ptrdiff_t at = FN(flat_at)(nvec - 1, count); /* the last output vector's element */
    for (ptrdiff_t ky = 0; ky < KH; ky++)
        for (ptrdiff_t kx = 0; kx < KW; kx++) {
            ptrdiff_t t = ky * KW + kx;
            offs[t] = (ky * p[P_DH] - p[P_PT]) * W + kx * p[P_DW] - p[P_PL];
            lo = offs[t] < lo ? offs[t] : lo;
            hi = offs[t] > hi ? offs[t] : hi;
        }
    /* copy kx: [margin zeros | input plane | zeros], the plane's cin = H W elements at element
     * `before`, in nin vectors (the last overlapping the one before) */
    const ptrdiff_t cin = p[P_H] * W, nin = (cin + BLANES - 1) / BLANES;
    const int whole_in = cin >= BLANES;
    const ptrdiff_t reach = cin > nvec * BLANES + hi ? cin : nvec * BLANES + hi;
    const ptrdiff_t before = (-lo + BLANES - 1) / BLANES * BLANES;
    const ptrdiff_t stride = (before + reach + 2 * BLANES - 1) / BLANES * BLANES;
    T *copies = NULL; /* two sets: the next plane's copied while this one's are read */
    __m256i *keep = NULL; /* (KW, nin): the lanes of input vector v that copy kx keeps */
    ptrdiff_t tofs[MAX_TAPS];
    if (posix_memalign((void **)&copies, 32, 2 * KW * stride * sizeof(T)) ||
        posix_memalign((void **)&keep, 32, KW * nin * sizeof(__m256i))) {
        free(copies);
        job->failed = 1;
        return;
    }
    memset(copies, 0, 2 * KW * stride * sizeof(T));
    for (ptrdiff_t kx = 0; kx < KW; kx++) {
        const ptrdiff_t dx = kx * p[P_DW] - p[P_PL];
        for (ptrdiff_t v = 0; v < nin; v++) {
            unsigned m = 0;
            for (ptrdiff_t l = 0; l < BLANES; l++) {
                const ptrdiff_t col = (FN(flat_at)(v, cin) + l) % W;
                if (dx < 0 ? col < W + dx : col >= dx)
                    m |= 1u << l;
            }
            keep[kx * nin + v] = FN(lane_mask)(m);
        }
        for (ptrdiff_t ky = 0; ky < KH; ky++)
            tofs[ky * KW + kx] = kx * stride + before + offs[ky * KW + kx];
    }
    const ptrdiff_t groups = (nvec + 7) / 8;
    for (ptrdiff_t plane = first - 1; plane < last; plane++) {
        /* copy plane + 1 (its stores retire while this plane is summed: a load of a copy
         * right after its stores, across two of them, would wait for them) */
        if (plane + 1 < last) {
            const ptrdiff_t nx = (plane + 1) / p[P_C], cx = (plane + 1) % p[P_C];
            const T *src = (const T *)job->x + nx * p[P_XN] + cx * p[P_XC];
            T *dst = copies + ((plane + 1) & 1) * KW * stride + before;
            if (whole_in && KW == 3)
                for (ptrdiff_t v = 0; v < nin; v++) {
                    const ptrdiff_t e = FN(flat_at)(v, cin);
                    const BV x = BLOADU(src + e);
                    BSTOREU(dst + e, BAND(keep[v], x));
                    BSTOREU(dst + stride + e, BAND(keep[nin + v], x));
                    BSTOREU(dst + 2 * stride + e, BAND(keep[2 * nin + v], x));
                }
            else if (whole_in)
                for (ptrdiff_t kx = 0; kx < KW; kx++)
                    for (ptrdiff_t v = 0; v < nin; v++) {
                        const ptrdiff_t e = FN(flat_at)(v, cin);
                        BSTOREU(dst + kx * stride + e,
                                BAND(keep[kx * nin + v], BLOADU(src + e)));
                    }
            else
                for (ptrdiff_t kx = 0; kx < KW; kx++) {
                    const ptrdiff_t dx = kx * p[P_DW] - p[P_PL];
                    for (ptrdiff_t q = 0; q < cin; q++) {
                        const ptrdiff_t col = q % W;
                        dst[kx * stride + q] = (dx < 0 ? col < W + dx : col >= dx) ? src[q] : (T)0;
                    }
                }
        }
        if (plane < first)
            continue;
        const ptrdiff_t n = plane / p[P_C], c = plane % p[P_C];
        const T *base = copies + (plane & 1) * KW * stride;
        for (ptrdiff_t m = 0; m < M; m++) {
            ptrdiff_t o = c * M + m;
            T *out = (T *)job->y + n * p[P_YN] + o * p[P_YC];
            const T *wk = w + o * taps;
            const BV bias = BSET1(b ? b[o] : (T)0);
            for (ptrdiff_t g = 0, v0 = 0; g < groups; g++) {
                const ptrdiff_t nv = nvec / groups + (g < nvec % groups);
                if (g + 1 < groups)
                    switch (nv) {
                        FLAT2_GROUP(1, 0)
                        FLAT2_GROUP(2, 0)
                        FLAT2_GROUP(3, 0)
                        FLAT2_GROUP(4, 0)
                        FLAT2_GROUP(5, 0)
                        FLAT2_GROUP(6, 0)
                        FLAT2_GROUP(7, 0)
                        FLAT2_GROUP(8, 0)
                    }
                else
                    switch (nv) {
                        FLAT2_GROUP(1, 1)
                        FLAT2_GROUP(2, 1)
                        FLAT2_GROUP(3, 1)
                        FLAT2_GROUP(4, 1)
                        FLAT2_GROUP(5, 1)
                        FLAT2_GROUP(6, 1)
                        FLAT2_GROUP(7, 1)
                        FLAT2_GROUP(8, 1)
                    }
                v0 += nv;
            }
        }
    }
    free(copies);
    free(keep);
}
#undef FLAT2_GROUP

/* whether fwd_flat256_task applies: AVX2 and FMA without AVX-512 (or with it turned off),
 * the shapes of fwd_flat512_task, at most FLAT2_VECS vectors a plane */
static int FN(fwd_flat256_applies)(const ptrdiff_t *p)
{
    return dw_avx2() && !dw_avx512() && p[P_SH] == 1 && p[P_SW] == 1 && p[P_OW] == p[P_W] &&
           p[P_XH] == p[P_W] && p[P_YH] == p[P_OW] &&
           p[P_OH] * p[P_OW] <= FLAT2_VECS * BLANES && p[P_KH] * p[P_KW] <= MAX_TAPS;
}
#undef FLAT2_VECS

/* 3 x 3 at stride 2 (dilation 1), NCHW, AVX2: each vector of an output row from its three
 * input rows straight, two loads of 2 BLANES inputs split into even and odd lanes (and two
 * more from two columns on for kx = 2), no padded copy: the lanes outside the row cleared by
 * a mask (plain loads and a bitwise and where the loads stay inside the tensor, masked loads
 * at its ends). A row at least a vector wide ends with a block that overlaps the one before
 * (the same values stored twice), so every store is whole; a narrower row of a dense output
 * plane is stored whole in order where the vector ends inside the plane (its spare lanes land
 * on the next row, which overwrites them), the others masked. */
#ifndef S2_MAX_BLOCKS
#define S2_MAX_BLOCKS 16
#endif
/* even lanes of (lo, hi) in e, odd lanes in o, by in-lane shuffles only: both in the order
 * whose 64-bit quarters 1 and 2 are swapped (float: outputs 0 1 4 5 2 3 6 7; double: 0 2 1 3).
 * Every operand of a sum is in that order, so its products are those of the outputs in
 * order, and S2_UNSWAP puts the sum in order once before its store (one cross-lane
 * permutation a vector instead of two for each split; measured, AVX2 (Zen 3), 2 threads,
 * three alternating runs each, float32: batch 8, 64 channels at 112 x 112, 1.43-1.76 ms
 * against 1.99-2.09; 128 at 56 x 56, 0.85-0.96 against 0.95-1.10; batch 2, 64 at 112 x 112,
 * 0.29-0.39 against 0.34-0.47; float64 unchanged, 4.4-4.8 ms; results bit for bit the same) */
#if defined(DW_AVX512_FLOAT)
#define S2_SPLIT(lo, hi, e, o)                                                                 \
    do {                                                                                       \
        e = _mm256_shuffle_ps((lo), (hi), 0x88);                                               \
        o = _mm256_shuffle_ps((lo), (hi), 0xDD);                                               \
    } while (0)
#define S2_UNSWAP(v) _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(v), 0xD8))
#else
#define S2_SPLIT(lo, hi, e, o)                                                                 \
    do {                                                                                       \
        e = _mm256_unpacklo_pd((lo), (hi));                                                    \
        o = _mm256_unpackhi_pd((lo), (hi));                                                    \
    } while (0)
#define S2_UNSWAP(v) _mm256_permute4x64_pd((v), 0xD8)
#endif

__attribute__((target("avx2,fma"))) static void FN(fwd_s2_narrow256_task)(void *vctx,
                                                                          ptrdiff_t task)
{
    job_t *job = vctx;
    const ptrdiff_t *p = job->p;
    const ptrdiff_t planes = p[P_N] * p[P_C], M = p[P_M], H = p[P_H], W = p[P_W];
    const ptrdiff_t OH = p[P_OH], OW = p[P_OW], pt = p[P_PT], pl = p[P_PL];
    const ptrdiff_t first = planes * task / job->ntasks, last = planes * (task + 1) / job->ntasks;
    const ptrdiff_t nb = (OW + BLANES - 1) / BLANES, plane_end = OH * OW;
    const int dense = p[P_YH] == OW;
    const int pairs = p[P_N] * p[P_C] * H * W * (ptrdiff_t)sizeof(T) <= (16 << 20);
    /* out of cache (one row at a time) with rows wider than 256 bytes: the next output row's
     * new input rows prefetched (measured, Zen 1, batch 8, NCHW, 64 channels at 112 x 112:
     * two threads 2.51 ms against 3.11, one thread 4.25 against 4.66; in cache no faster) */
    const int prefetch = !pairs && W * (ptrdiff_t)sizeof(T) > 256;
    /* block j of a row loads from columns 2 j BLANES - pl (+ BLANES) and from 2 on */
    __m256i k[S2_MAX_BLOCKS][4];
    int whole[S2_MAX_BLOCKS];  /* all four loads inside the row */
    ptrdiff_t ob[S2_MAX_BLOCKS]; /* block j's first output column */
    const T *x0 = job->x;
    const T *x_end = x0 + (p[P_N] - 1) * p[P_XN] + (p[P_C] - 1) * p[P_XC] + (H - 1) * p[P_XH] + W;
    for (ptrdiff_t j = 0; j < nb; j++) {
        ob[j] = OW >= BLANES && j == nb - 1 ? OW - BLANES : j * BLANES;
        whole[j] = 1;
        for (int v = 0; v < 4; v++) {
            unsigned m = 0;
            for (ptrdiff_t l = 0; l < BLANES; l++) {
                ptrdiff_t col = 2 * ob[j] + (v & 1) * BLANES + (v >> 1) * 2 + l - pl;
                if (col >= 0 && col < W)
                    m |= 1u << l;
            }
            k[j][v] = FN(lane_mask)(m);
            whole[j] &= m == (1u << BLANES) - 1u;
        }
    }
    const __m256i keep = FN(lane_mask)((1u << (OW - (nb - 1) * BLANES)) - 1u);
    const T *b = job->b;
    for (ptrdiff_t plane = first; plane < last; plane++) {
        ptrdiff_t n = plane / p[P_C], c = plane % p[P_C];
        const T *src = (const T *)job->x + n * p[P_XN] + c * p[P_XC] - pl;
        for (ptrdiff_t m = 0; m < M; m++) {
            ptrdiff_t o = c * M + m;
            const T *w = (const T *)job->w + o * 9;
            T *out = (T *)job->y + n * p[P_YN] + o * p[P_YC];
            const BV bias = BSET1(b ? b[o] : (T)0);
            /* in cache, two output rows at a time: their five input rows loaded and split
             * once (the middle one serves both), two independent chains of multiply-adds;
             * beyond half the last-level cache, one row at a time, three input rows
             * (measured, AVX2, 2 threads, batch 8: 64 channels at 112 x 112, 25.7 MB, three
             * runs, 1.31-2.13 ms one row at a time against 1.45-2.33 two; 128 at 56 x 56,
             * 12.8 MB, 1.00-1.22 against 0.92-1.02) */
            /* rows and blocks whose input lies inside: straight code, the nine weights in
             * registers (the loop below tests each row and block for the padding, and its
             * branches and address arithmetic took more time than the arithmetic itself) */
            const BV w0 = BSET1(w[0]), w1 = BSET1(w[1]), w2 = BSET1(w[2]), w3 = BSET1(w[3]),
                     w4 = BSET1(w[4]), w5 = BSET1(w[5]), w6 = BSET1(w[6]), w7 = BSET1(w[7]),
                     w8 = BSET1(w[8]);
            for (ptrdiff_t oh = 0; oh < OH; oh += pairs ? 2 : 1) {
                const ptrdiff_t rows = pairs && oh + 1 < OH ? 5 : 3;
                const int inside = 2 * oh - pt >= 0 && 2 * oh - pt + rows <= H;
                /* the input rows that the next output rows read first (next[0 .. fetch)),
                 * prefetched block by block */
                const T *next[4];
                ptrdiff_t fetch = 0;
                if (prefetch)
                    for (ptrdiff_t ih = 2 * oh - pt + rows; ih < 2 * oh - pt + rows + (pairs ? 4 : 2);
                         ih++)
                        if (ih >= 0 && ih < H)
                            next[fetch++] = src + ih * p[P_XH];
                for (ptrdiff_t j = 0; j < nb; j++) {
                    BV acc = bias, acc2 = bias;
                    for (ptrdiff_t f = 0; f < fetch; f++)
                        __builtin_prefetch(next[f] + 2 * ob[j]);
                    const T *row0 = src + (2 * oh - pt) * p[P_XH] + 2 * ob[j];
                    if (inside && (whole[j] || (row0 - x0 >= 0 &&
                                                x_end - row0 - (rows - 1) * p[P_XH] >=
                                                    2 + 2 * BLANES))) {
                        const T *row = row0;
                        const int mk = !whole[j]; /* the lanes outside the row cleared */
                        BV e, od, e2, od2;
#define S2_LD(v, at) (mk ? BAND(k[j][v], BLOADU(at)) : BLOADU(at))
#define S2_ROW(r)                                                                              \
    do {                                                                                       \
        S2_SPLIT(S2_LD(0, row + (r) * p[P_XH]), S2_LD(1, row + (r) * p[P_XH] + BLANES), e, od); \
        S2_SPLIT(S2_LD(2, row + (r) * p[P_XH] + 2), S2_LD(3, row + (r) * p[P_XH] + 2 + BLANES),  \
                 e2, od2);                                                                     \
        (void)od2;                                                                             \
    } while (0)
#define S2_TAPS(a, wa, wb, wc) /* a kernel row's three taps, as the loop below sums them */ \
    do {                                                                                       \
        a = BFMA(wa, e, a);                                                                    \
        a = BFMA(wb, od, a);                                                                   \
        a = BFMA(wc, e2, a);                                                                   \
    } while (0)
                        S2_ROW(0);
                        S2_TAPS(acc, w0, w1, w2);
                        S2_ROW(1);
                        S2_TAPS(acc, w3, w4, w5);
                        S2_ROW(2);
                        S2_TAPS(acc, w6, w7, w8);
                        if (rows == 5) {
                            S2_TAPS(acc2, w0, w1, w2);
                            S2_ROW(3);
                            S2_TAPS(acc2, w3, w4, w5);
                            S2_ROW(4);
                            S2_TAPS(acc2, w6, w7, w8);
                        }
#undef S2_TAPS
#undef S2_ROW
#undef S2_LD
                    } else
#pragma GCC unroll 5
                    for (ptrdiff_t r = 0; r < 5; r++) {
                        ptrdiff_t ih = 2 * oh + r - pt;
                        if (r >= rows || ih < 0 || ih >= H)
                            continue;
                        const T *row = src + ih * p[P_XH] + 2 * ob[j];
                        BV e, od, e2, od2;
                        if (whole[j]) { /* plain loads inside the row */
                            S2_SPLIT(BLOADU(row), BLOADU(row + BLANES), e, od);
                            S2_SPLIT(BLOADU(row + 2), BLOADU(row + 2 + BLANES), e2, od2);
                        } else if (row - x0 >= 0 && x_end - row >= 2 + 2 * BLANES) {
                            /* inside the tensor: plain loads, the lanes outside the row
                             * cleared (masked loads are slow on some processors) */
                            S2_SPLIT(BAND(k[j][0], BLOADU(row)), BAND(k[j][1], BLOADU(row + BLANES)),
                                     e, od);
                            S2_SPLIT(BAND(k[j][2], BLOADU(row + 2)),
                                     BAND(k[j][3], BLOADU(row + 2 + BLANES)), e2, od2);
                        } else {
                            S2_SPLIT(BLOADZ(k[j][0], row), BLOADZ(k[j][1], row + BLANES), e,
                                     od);
                            S2_SPLIT(BLOADZ(k[j][2], row + 2), BLOADZ(k[j][3], row + 2 + BLANES),
                                     e2, od2);
                        }
                        (void)od2;
                        if (r < 3) { /* kernel row r of output row oh */
                            acc = BFMA(BSET1(w[3 * r]), e, acc);
                            acc = BFMA(BSET1(w[3 * r + 1]), od, acc);
                            acc = BFMA(BSET1(w[3 * r + 2]), e2, acc);
                        }
                        if (r >= 2 && rows == 5) { /* kernel row r - 2 of output row oh + 1 */
                            acc2 = BFMA(BSET1(w[3 * r - 6]), e, acc2);
                            acc2 = BFMA(BSET1(w[3 * r - 5]), od, acc2);
                            acc2 = BFMA(BSET1(w[3 * r - 4]), e2, acc2);
                        }
                    }
                    acc = S2_UNSWAP(acc);
                    acc2 = S2_UNSWAP(acc2);
                    /* rows of at least a vector have no spare lanes (their last block
                     * overlaps the one before); a narrower row's spare lanes land on the next
                     * row of a dense plane, stored after it, but not past the plane */
                    ptrdiff_t at = oh * p[P_YH] + ob[j];
                    if (OW >= BLANES || (dense && at + BLANES <= plane_end))
                        BSTOREU(out + at, acc);
                    else
                        BSTORE(out + at, keep, acc);
                    if (rows == 3)
                        continue;
                    at += p[P_YH];
                    if (OW >= BLANES || (dense && at + BLANES <= plane_end))
                        BSTOREU(out + at, acc2);
                    else
                        BSTORE(out + at, keep, acc2);
                }
            }
        }
    }
}

/* whether fwd_s2_narrow256_task applies: AVX2 without AVX-512 (or with it off), 3 x 3 at
 * stride 2 and dilation 1, at most S2_MAX_BLOCKS vectors a row, NCHW rows */
static int FN(fwd_s2_narrow256_applies)(const ptrdiff_t *p)
{
    return dw_avx2() && !dw_avx512() && p[P_KH] == 3 && p[P_KW] == 3 && p[P_SH] == 2 &&
           p[P_SW] == 2 && p[P_DH] == 1 && p[P_DW] == 1 && p[P_OW] >= 1 &&
           p[P_OW] <= S2_MAX_BLOCKS * BLANES && p[P_YH] >= p[P_OW];
}
#undef S2_SPLIT
#undef S2_UNSWAP
#undef S2_MAX_BLOCKS
#undef BV
#undef BAND
#undef BLANES
#undef BSET1
#undef BFMA
#undef BLOADZ
#undef BLOADU
#undef BSTORE
#undef BSTOREU

/* ---- weight gradient, 3 x 3 at unit stride, NCHW ----------------------------------------- */
/* Task: one channel (M = 1), summed over the batch in order. Nine accumulators stay in
 * registers; each vector of LANES output-gradient columns is loaded once per kernel row and
 * multiplies the input row at the three column offsets, masked loads zeroing the lanes past
 * the output row and those whose input falls in the padding (no border columns apart). */
__attribute__((target("avx512f"))) static void FN(gw3_nchw512_task)(void *vctx, ptrdiff_t c)
{
    job_t *job = vctx;
    const ptrdiff_t *p = job->p;
    ptrdiff_t H = p[P_H], W = p[P_W], OH = p[P_OH], OW = p[P_OW];
    ptrdiff_t dh = p[P_DH], dw = p[P_DW], pt = p[P_PT], pl = p[P_PL];
    AV a0 = ASET1(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0;
    for (ptrdiff_t n = 0; n < p[P_N]; n++) {
        const T *xc = (const T *)job->x + n * p[P_XN] + c * p[P_XC];
        const T *gc = (const T *)job->gy + n * p[P_YN] + c * p[P_YC];
        for (ptrdiff_t ow0 = 0; ow0 < OW; ow0 += ALANES) {
            ptrdiff_t out = OW - ow0 < ALANES ? OW - ow0 : ALANES;
            AMASK kg = FN(lanes)(0, out), kx[3];
            for (int k = 0; k < 3; k++) { /* lanes l with 0 <= ow0 + l + k dw - pl < W */
                ptrdiff_t lo = pl - k * dw - ow0, hi = W + pl - k * dw - ow0;
                lo = lo < 0 ? 0 : lo;
                hi = hi > out ? out : hi;
                kx[k] = hi > lo ? FN(lanes)(lo, hi) : 0;
            }
            for (ptrdiff_t oh = 0; oh < OH; oh++) {
                AV g = ALOADZ(kg, gc + oh * p[P_YH] + ow0);
                const T *r = xc + ow0 - pl;
                ptrdiff_t ih = oh - pt;
                if (ih >= 0 && ih < H) {
                    const T *q = r + ih * p[P_XH];
                    a0 = AFMA(g, ALOADZ(kx[0], q), a0);
                    a1 = AFMA(g, ALOADZ(kx[1], q + dw), a1);
                    a2 = AFMA(g, ALOADZ(kx[2], q + 2 * dw), a2);
                }
                ih += dh;
                if (ih >= 0 && ih < H) {
                    const T *q = r + ih * p[P_XH];
                    a3 = AFMA(g, ALOADZ(kx[0], q), a3);
                    a4 = AFMA(g, ALOADZ(kx[1], q + dw), a4);
                    a5 = AFMA(g, ALOADZ(kx[2], q + 2 * dw), a5);
                }
                ih += dh;
                if (ih >= 0 && ih < H) {
                    const T *q = r + ih * p[P_XH];
                    a6 = AFMA(g, ALOADZ(kx[0], q), a6);
                    a7 = AFMA(g, ALOADZ(kx[1], q + dw), a7);
                    a8 = AFMA(g, ALOADZ(kx[2], q + 2 * dw), a8);
                }
            }
        }
    }
    AV acc[9] = {a0, a1, a2, a3, a4, a5, a6, a7, a8};
    FN(reduce9)(acc, (T *)job->gw + c * 9);
}

/* whether gw3_nchw512_task applies: AVX-512F, 3 x 3 at unit stride, M = 1, NCHW rows */
static int FN(gw3_nchw512_applies)(const ptrdiff_t *p)
{
    return dw_avx512() && p[P_KH] == 3 && p[P_KW] == 3 && p[P_M] == 1 && p[P_SH] == 1 &&
           p[P_SW] == 1;
}

#undef MAX_TAPS
#undef ROWS
#undef AV
#undef AMASK
#undef ALANES
#undef ASET1
#undef ALOADZ
#undef AFMA
#undef ASTORE

#else
/* without AVX-512 code: nothing applies, and the tasks are never run */
#define DW_NEVER(name)                                                                         \
    static int FN(name)(const ptrdiff_t *p)                                                    \
    {                                                                                          \
        (void)p;                                                                               \
        return 0;                                                                              \
    }
#define DW_NO_TASK(name)                                                                       \
    static void FN(name)(void *vctx, ptrdiff_t task)                                           \
    {                                                                                          \
        (void)vctx;                                                                            \
        (void)task;                                                                            \
    }
DW_NEVER(fwd_s1_applies)
DW_NEVER(fwd_s2_applies)
DW_NEVER(gw3_nchw512_applies)
DW_NEVER(grad_s2_applies)
DW_NEVER(fwd_cl8_applies)
DW_NEVER(fwd_flat512_applies)
DW_NEVER(fwd_flat256_applies)
DW_NEVER(fwd_s2_narrow256_applies)
DW_NO_TASK(gx_s2_nchw512_task)
DW_NO_TASK(gw_s2_nchw512_task)
DW_NO_TASK(gw3_nchw512_task)
DW_NO_TASK(fwd_flat512_task)
DW_NO_TASK(fwd_flat256_task)
DW_NO_TASK(fwd_s2_narrow256_task)
DW_NO_TASK(fwd_cl8_task)
DW_NO_TASK(fwd_s2_task)
DW_NO_TASK(fwd_s1_task)
#undef DW_NEVER
#undef DW_NO_TASK
#endif
