/* The forward kernels of the native depthwise convolution, included by depthwise.c once per
 * element type with T (float or double), VT (its 32-byte vector type) and SFX (f32 or f64)
 * defined; depthwise_backward.h (the gradients and the entry points) follows. */
#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)
#define FN(name) CAT(name, SFX)
#define L ((ptrdiff_t)(sizeof(VT) / sizeof(T)))

/* lane indices of GCC's __builtin_shuffle for VT */
#if defined(DW_AVX512_FLOAT)
typedef int FN(vidx) __attribute__((vector_size(32)));
#define SHIFT_IN_FIRST {8, 0, 1, 2, 3, 4, 5, 6} /* lanes up by one, lane 0 from the other */
#define SHIFT_IN_LAST {1, 2, 3, 4, 5, 6, 7, 8}  /* lanes down by one, the last from the other */
#else
typedef long long FN(vidx) __attribute__((vector_size(32)));
#define SHIFT_IN_FIRST {4, 0, 1, 2}
#define SHIFT_IN_LAST {1, 2, 3, 4}
#endif

/* Geometry of the phase-split row ring of the NCHW path. */
typedef struct {
    ptrdiff_t sw, plen, rowlen, ring; /* phases, elements a phase, a row (all phases), rows */
} FN(ring_t);

static FN(ring_t) FN(ring_geometry)(const ptrdiff_t *p, ptrdiff_t width_needed)
{
    FN(ring_t) g;
    g.sw = p[P_SW];
    ptrdiff_t plen = p[P_OW] + (p[P_KW] - 1) * p[P_DW] / p[P_SW] + 1;
    if (plen < width_needed)
        plen = width_needed;
    ptrdiff_t blk = NB * L;
    g.plen = (plen + blk - 1) / blk * blk + blk; /* slack for the last block's loads */
    g.rowlen = g.sw * g.plen;
    g.ring = (p[P_KH] - 1) * p[P_DH] + 2; /* + 1: two output rows' inputs at stride 1 */
    return g;
}

/* Short copies and fills inline (memcpy/memset calls cost more than rows of a few vectors). */
static inline void FN(copy)(T *restrict d, const T *restrict s, ptrdiff_t n)
{
    ptrdiff_t i = 0;
    for (; i + 2 * L <= n; i += 2 * L) {
        VT a = *(const VT *)(s + i), b = *(const VT *)(s + i + L);
        *(VT *)(d + i) = a;
        *(VT *)(d + i + L) = b;
    }
    for (; i + L <= n; i += L)
        *(VT *)(d + i) = *(const VT *)(s + i);
    for (; i < n; i++)
        d[i] = s[i];
}

static inline void FN(zero)(T *d, ptrdiff_t n)
{
    ptrdiff_t i = 0;
    for (; i + L <= n; i += L)
        *(VT *)(d + i) = (VT){0};
    for (; i < n; i++)
        d[i] = 0;
}

/* Copy input row `src` (W elements, unit stride) zero-padded into phase-split `dst`:
 * phase q, index j holds input column j * sw + q - pl. */
static void FN(split_row)(T *restrict dst, const T *restrict src, const ptrdiff_t *p,
                          const FN(ring_t) *g)
{
    ptrdiff_t W = p[P_W], pl = p[P_PL], sw = g->sw;
    if (sw == 1) {
        ptrdiff_t a = pl < 0 ? 0 : (pl < g->plen ? pl : g->plen); /* first j inside */
        ptrdiff_t first = pl < 0 ? -pl : 0;              /* its column */
        ptrdiff_t n = W - first;
        if (n > g->plen - a)
            n = g->plen - a;
        if (n < 0)
            n = 0;
        FN(zero)(dst, a);
        FN(copy)(dst + a, src + first, n);
        FN(zero)(dst + a + n, g->plen - a - n);
        return;
    }
    for (ptrdiff_t q = 0; q < sw; q++) {
        T *d = dst + q * g->plen;
        ptrdiff_t first = pl - q; /* j holds input column j * sw - first */
        ptrdiff_t jlo = first > 0 ? (first + sw - 1) / sw : 0;
        ptrdiff_t jhi = (W - 1 + first) >= 0 ? (W - 1 + first) / sw + 1 : 0;
        if (jhi > g->plen)
            jhi = g->plen;
        if (jlo > jhi)
            jlo = jhi;
        const T *s = src - first;
        FN(zero)(d, jlo);
        if (sw == 2)
            for (ptrdiff_t j = jlo; j < jhi; j++)
                d[j] = s[2 * j];
        else
            for (ptrdiff_t j = jlo; j < jhi; j++)
                d[j] = s[j * sw];
        FN(zero)(d + jhi, g->plen - jhi);
    }
}

/* The 3 x 3 stride-2 input gradient of input row ih: the kernel rows ky whose output row
 * oh = (ih + pt - ky) / 2 exists (0 <= oh < OH), their output-gradient rows (base + oh pitch)
 * in grow and weight rows in wrow; returns how many (0 to 2). */
static inline ptrdiff_t FN(s2_rows)(ptrdiff_t ih, ptrdiff_t pt, ptrdiff_t OH, const T *base,
                                    ptrdiff_t pitch, const T *w, const T **grow, const T **wrow)
{
    ptrdiff_t v = ih + pt, nrows = 0;
    for (ptrdiff_t ky = v % 2; ky < 3; ky += 2) {
        ptrdiff_t oh = (v - ky) / 2;
        if (v - ky >= 0 && oh < OH) {
            grow[nrows] = base + oh * pitch;
            wrow[nrows++] = w + 3 * ky;
        }
    }
    return nrows;
}

/* gw[t] = extra[t] (0 without extra) + the lanes of a[t] summed in double, t < 9: a weight
 * gradient's nine taps from their vector accumulators */
static inline void FN(sum_taps9)(T *gw, const VT *a, const T *extra)
{
    for (int t = 0; t < 9; t++) {
        double sum = extra ? extra[t] : 0;
        for (ptrdiff_t i = 0; i < L; i++)
            sum += a[t][i];
        gw[t] = (T)sum;
    }
}

/* ---- forward, NCHW ---------------------------------------------------------------------- */
/* One output row: out[ow] = bias + sum over valid ky and all kx of w * phase-row load. */
DW_CLONES static void FN(fwd_row)(T *restrict out, const T *const *rows, const T *restrict w,
                                  T bias, ptrdiff_t KH, ptrdiff_t KW, const ptrdiff_t *phase_off,
                                  ptrdiff_t OW)
{
    ptrdiff_t ow = 0;
    for (; ow + NB * L <= OW; ow += NB * L) {
        VT a[NB];
        for (int v = 0; v < NB; v++)
            a[v] = (VT){0} + bias;
        for (ptrdiff_t ky = 0; ky < KH; ky++) {
            if (!rows[ky])
                continue;
            for (ptrdiff_t kx = 0; kx < KW; kx++) {
                const T c = w[ky * KW + kx];
                const T *s = rows[ky] + phase_off[kx] + ow;
                for (int v = 0; v < NB; v++)
                    a[v] += c * *(const VT *)(s + v * L);
            }
        }
        for (int v = 0; v < NB; v++)
            *(VT *)(out + ow + v * L) = a[v];
    }
    for (; ow < OW; ow += L) {
        VT a = (VT){0} + bias;
        for (ptrdiff_t ky = 0; ky < KH; ky++) {
            if (!rows[ky])
                continue;
            for (ptrdiff_t kx = 0; kx < KW; kx++)
                a += w[ky * KW + kx] * *(const VT *)(rows[ky] + phase_off[kx] + ow);
        }
        if (ow + L <= OW) {
            *(VT *)(out + ow) = a;
        } else {
            for (ptrdiff_t i = 0; ow + i < OW; i++)
                out[ow + i] = a[i];
        }
    }
}

/* The 3 x 3 kernel: the nine weights in registers. */
DW_CLONES static void FN(fwd_row33)(T *restrict out, const T *const *rows, const T *restrict w,
                                    T bias, const ptrdiff_t *phase_off, ptrdiff_t OW)
{
    const T *r0 = rows[0], *r1 = rows[1], *r2 = rows[2];
    const ptrdiff_t o0 = phase_off[0], o1 = phase_off[1], o2 = phase_off[2];
    const VT w0 = (VT){0} + w[0], w1 = (VT){0} + w[1], w2 = (VT){0} + w[2];
    const VT w3 = (VT){0} + w[3], w4 = (VT){0} + w[4], w5 = (VT){0} + w[5];
    const VT w6 = (VT){0} + w[6], w7 = (VT){0} + w[7], w8 = (VT){0} + w[8];
#define LD(r, o, i) (*(const VT *)((r) + (o) + (i)))
#define TAPS(i)                                                                                \
    ((VT){0} + bias + w0 * LD(r0, o0, i) + w1 * LD(r0, o1, i) + w2 * LD(r0, o2, i) +            \
     w3 * LD(r1, o0, i) + w4 * LD(r1, o1, i) + w5 * LD(r1, o2, i) + w6 * LD(r2, o0, i) +        \
     w7 * LD(r2, o1, i) + w8 * LD(r2, o2, i))
    ptrdiff_t ow = 0;
    for (; ow + NB * L <= OW; ow += NB * L)
        for (int v = 0; v < NB; v++)
            *(VT *)(out + ow + v * L) = TAPS(ow + v * L);
    for (; ow + L <= OW; ow += L)
        *(VT *)(out + ow) = TAPS(ow);
    if (ow < OW) {
        VT a = TAPS(ow);
        for (ptrdiff_t i = 0; ow + i < OW; i++)
            out[ow + i] = a[i];
    }
#undef TAPS
#undef LD
}

/* Two consecutive output rows of the 3 x 3 kernel at vertical stride and dilation 1 from
 * four input rows (the middle two loaded once for both); each output sums its nine products
 * in the order fwd_row33 does, so results do not depend on the pairing. */
DW_CLONES static void FN(fwd_rows33)(T *restrict out0, T *restrict out1, const T *const *rows,
                                     const T *restrict w, T bias, const ptrdiff_t *phase_off,
                                     ptrdiff_t OW)
{
    const T *r0 = rows[0], *r1 = rows[1], *r2 = rows[2], *r3 = rows[3];
    const ptrdiff_t o0 = phase_off[0], o1 = phase_off[1], o2 = phase_off[2];
    const VT w0 = (VT){0} + w[0], w1 = (VT){0} + w[1], w2 = (VT){0} + w[2];
    const VT w3 = (VT){0} + w[3], w4 = (VT){0} + w[4], w5 = (VT){0} + w[5];
    const VT w6 = (VT){0} + w[6], w7 = (VT){0} + w[7], w8 = (VT){0} + w[8];
#define LD(r, o, i) (*(const VT *)((r) + (o) + (i)))
#define PAIR(i, A, B)                                                                          \
    do {                                                                                       \
        VT a0 = LD(r1, o0, i), a1 = LD(r1, o1, i), a2 = LD(r1, o2, i);                         \
        VT b0 = LD(r2, o0, i), b1 = LD(r2, o1, i), b2 = LD(r2, o2, i);                         \
        A = (VT){0} + bias + w0 * LD(r0, o0, i) + w1 * LD(r0, o1, i) + w2 * LD(r0, o2, i) +    \
            w3 * a0 + w4 * a1 + w5 * a2 + w6 * b0 + w7 * b1 + w8 * b2;                         \
        B = (VT){0} + bias + w0 * a0 + w1 * a1 + w2 * a2 + w3 * b0 + w4 * b1 + w5 * b2 +       \
            w6 * LD(r3, o0, i) + w7 * LD(r3, o1, i) + w8 * LD(r3, o2, i);                      \
    } while (0)
    ptrdiff_t ow = 0;
    for (; ow + L <= OW; ow += L) {
        VT A, B;
        PAIR(ow, A, B);
        *(VT *)(out0 + ow) = A;
        *(VT *)(out1 + ow) = B;
    }
    if (ow < OW) {
        VT A, B;
        PAIR(ow, A, B);
        for (ptrdiff_t i = 0; ow + i < OW; i++) {
            out0[ow + i] = A[i];
            out1[ow + i] = B[i];
        }
    }
#undef PAIR
#undef LD
}

/* The rows of input plane `src` that output row oh reads, built into the ring as needed;
 * rows[ky] is NULL where the row is padding. */
static void FN(ring_rows)(const T **rows, T *ring, ptrdiff_t *tags, const T *src,
                          ptrdiff_t oh, const ptrdiff_t *p, const FN(ring_t) *g, const T *zero)
{
    ptrdiff_t ih0 = oh * p[P_SH] - p[P_PT];
    for (ptrdiff_t ky = 0; ky < p[P_KH]; ky++) {
        ptrdiff_t ih = ih0 + ky * p[P_DH];
        if (ih < 0 || ih >= p[P_H]) {
            rows[ky] = zero;
            continue;
        }
        ptrdiff_t k = ih % g->ring;
        T *slot = ring + k * g->rowlen;
        if (tags[k] != ih) {
            FN(split_row)(slot, src + ih * p[P_XH], p, g);
            tags[k] = ih;
        }
        rows[ky] = slot;
    }
}

static void FN(fwd_nchw_task)(void *vctx, ptrdiff_t task)
{
    job_t *job = vctx;
    const ptrdiff_t *p = job->p;
    ptrdiff_t planes = p[P_N] * p[P_C], M = p[P_M], KH = p[P_KH], KW = p[P_KW];
    ptrdiff_t first = planes * task / job->ntasks, last = planes * (task + 1) / job->ntasks;
    FN(ring_t) g = FN(ring_geometry)(p, 0);
    T *ring = malloc(((g.ring + 1) * g.rowlen) * sizeof(T)), *zero = ring + g.ring * g.rowlen;
    const T **rows = malloc(KH * sizeof(T *));
    ptrdiff_t *off = malloc(KW * sizeof(ptrdiff_t)), *tags = malloc(g.ring * sizeof(ptrdiff_t));
    if (!ring || !rows || !off || !tags) {
        job->failed = 1;
        goto done;
    }
    FN(zero)(zero, g.rowlen);
    for (ptrdiff_t kx = 0; kx < KW; kx++) {
        ptrdiff_t col = kx * p[P_DW];
        off[kx] = (col % g.sw) * g.plen + col / g.sw;
    }
    const T *w = job->w, *b = job->b;
    const int pairs = KH == 3 && KW == 3 && p[P_SH] == 1 && p[P_DH] == 1;
    for (ptrdiff_t plane = first; plane < last; plane++) {
        ptrdiff_t n = plane / p[P_C], c = plane % p[P_C];
        const T *src = (const T *)job->x + n * p[P_XN] + c * p[P_XC];
        for (ptrdiff_t k = 0; k < g.ring; k++)
            tags[k] = -1;
        for (ptrdiff_t oh = 0; oh < p[P_OH]; oh++) {
            FN(ring_rows)(rows, ring, tags, src, oh, p, &g, zero);
            if (pairs && oh + 1 < p[P_OH]) {
                /* rows oh and oh + 1 share two input rows: each of their vectors loaded once */
                const T *rows4[4];
                FN(ring_rows)(rows4 + 1, ring, tags, src, oh + 1, p, &g, zero);
                rows4[0] = rows[0];
                for (ptrdiff_t m = 0; m < M; m++) {
                    ptrdiff_t o = c * M + m;
                    T *out = (T *)job->y + n * p[P_YN] + o * p[P_YC] + oh * p[P_YH];
                    FN(fwd_rows33)(out, out + p[P_YH], rows4, w + o * 9, b ? b[o] : (T)0, off,
                                   p[P_OW]);
                }
                oh++;
                continue;
            }
            for (ptrdiff_t m = 0; m < M; m++) {
                ptrdiff_t o = c * M + m;
                T *out = (T *)job->y + n * p[P_YN] + o * p[P_YC] + oh * p[P_YH];
                if (KH == 3 && KW == 3)
                    FN(fwd_row33)(out, rows, w + o * 9, b ? b[o] : (T)0, off, p[P_OW]);
                else
                    FN(fwd_row)(out, rows, w + o * KH * KW, b ? b[o] : (T)0, KH, KW, off,
                                p[P_OW]);
            }
        }
    }
done:
    free(ring);
    free((void *)rows);
    free(off);
    free(tags);
}

/* ---- forward, 3-D, NCDHW ---------------------------------------------------------------- */
/* A 3-D depthwise convolution's output row (n, o, od, oh) sums KT x KH input rows, kh rows of
 * each of the KT frames od * ST + kt * DT - PF that lie inside: fwd_row over KT * KH rows,
 * with the weights (KT, KH, KW) of the channel in that order. job->p describes one frame (the
 * 2-D parameters: H, W, their strides, KH, KW, OH, OW, ...); job->q the depth axis (Q_*).
 * Task: planes (n, c). */
typedef struct {
    job_t job;
    ptrdiff_t q[Q_COUNT];
} FN(job3_t);

/* NV vectors of an output row from ow on: all NV accumulators in registers (independent
 * chains over the KT x KH x KW taps), the last vector's lanes past OW not stored (the ring's
 * rows have slack to read). */
static inline __attribute__((always_inline)) void
FN(fwd3_vectors)(T *restrict out, const T *const *rows, const T *restrict w, T bias,
                 ptrdiff_t nrows, ptrdiff_t KW, const ptrdiff_t *off, ptrdiff_t ow, ptrdiff_t OW,
                 const int NV)
{
    VT a[8];
    for (int v = 0; v < NV; v++)
        a[v] = (VT){0} + bias;
    for (ptrdiff_t r = 0; r < nrows; r++) {
        if (!rows[r])
            continue;
        for (ptrdiff_t kx = 0; kx < KW; kx++) {
            const T c = w[r * KW + kx];
            const T *src = rows[r] + off[kx] + ow;
            for (int v = 0; v < NV; v++)
                a[v] += c * *(const VT *)(src + v * L);
        }
    }
    for (int v = 0; v < NV; v++) {
        if (ow + (v + 1) * L <= OW)
            *(VT *)(out + ow + v * L) = a[v];
        else
            for (ptrdiff_t i = 0; ow + v * L + i < OW; i++)
                out[ow + v * L + i] = a[v][i];
    }
}

/* One output row of the 3-D kernel: eight vectors at a time, then the rest (up to eight, the
 * last one partial) in one pass */
DW_CLONES static void FN(fwd3_row)(T *restrict out, const T *const *rows, const T *restrict w,
                                   T bias, ptrdiff_t nrows, ptrdiff_t KW, const ptrdiff_t *off,
                                   ptrdiff_t OW)
{
    ptrdiff_t ow = 0;
    for (; ow + 8 * L <= OW; ow += 8 * L)
        FN(fwd3_vectors)(out, rows, w, bias, nrows, KW, off, ow, OW, 8);
    switch ((OW - ow + L - 1) / L) {
#define FWD3_CASE(nv)                                                                          \
    case nv:                                                                                   \
        FN(fwd3_vectors)(out, rows, w, bias, nrows, KW, off, ow, OW, nv);                       \
        break;
        FWD3_CASE(1)
        FWD3_CASE(2)
        FWD3_CASE(3)
        FWD3_CASE(4)
        FWD3_CASE(5)
        FWD3_CASE(6)
        FWD3_CASE(7)
        FWD3_CASE(8)
#undef FWD3_CASE
    default: /* none left */
        break;
    }
}

/* The input frames of one plane (n, c) of a 3-D call, as rows: a ring of R whole frames, each
 * row split into phases with its zero margins (as the NCHW row ring has them); the KT frames
 * of an output frame are distinct slots (d mod R), each input frame copied once at unit depth
 * stride. */
typedef struct {
    FN(ring_t) g;
    ptrdiff_t R, frame_len, a, from, count; /* count: a row's elements copied, from column from */
    T *frames;
    ptrdiff_t *held; /* the frame in each slot, -1: none */
    const T **framep; /* the frame of each kt for the current output frame, NULL: padding */
} FN(frames_t);

static int FN(frames_init)(FN(frames_t) *f, const ptrdiff_t *p, const ptrdiff_t *q)
{
    f->g = FN(ring_geometry)(p, 0);
    f->R = (q[Q_KT] - 1) * q[Q_DT] + 1;
    f->frame_len = p[P_H] * f->g.rowlen;
    /* at unit horizontal stride the margins stay zero: rows copied without them */
    const ptrdiff_t pl = p[P_PL];
    f->a = pl < 0 ? 0 : (pl < f->g.plen ? pl : f->g.plen);
    f->from = pl < 0 ? -pl : 0;
    f->count = p[P_W] - f->from;
    if (f->count > f->g.plen - f->a)
        f->count = f->g.plen - f->a;
    f->frames = calloc(f->R * f->frame_len, sizeof(T));
    f->held = malloc(f->R * sizeof(ptrdiff_t));
    f->framep = malloc(q[Q_KT] * sizeof(T *));
    return f->frames && f->held && f->framep;
}

static void FN(frames_free)(FN(frames_t) *f)
{
    free(f->frames);
    free(f->held);
    free((void *)f->framep);
}

/* the frames of output frame od of input plane src (held frames of another plane dropped
 * by the caller: held[] = -1) */
static void FN(frames_at)(FN(frames_t) *f, const T *src, ptrdiff_t od, const ptrdiff_t *p,
                          const ptrdiff_t *q)
{
    for (ptrdiff_t kt = 0; kt < q[Q_KT]; kt++) {
        const ptrdiff_t d = od * q[Q_ST] + kt * q[Q_DT] - q[Q_PF];
        if (d < 0 || d >= q[Q_D]) {
            f->framep[kt] = NULL; /* padding: no products */
            continue;
        }
        T *slot = f->frames + (d % f->R) * f->frame_len;
        if (f->held[d % f->R] != d) {
            const T *frame = src + d * q[Q_XD];
            for (ptrdiff_t ih = 0; ih < p[P_H]; ih++) {
                if (f->g.sw == 1) {
                    if (f->count > 0)
                        FN(copy)(slot + ih * f->g.rowlen + f->a, frame + ih * p[P_XH] + f->from,
                                 f->count);
                } else {
                    FN(split_row)(slot + ih * f->g.rowlen, frame + ih * p[P_XH], p, &f->g);
                }
            }
            f->held[d % f->R] = d;
        }
        f->framep[kt] = slot;
    }
}

/* the KT x KH rows of output row oh in the current frames (NULL: padding) */
static inline void FN(frames_rows)(const T **rows, const FN(frames_t) *f, ptrdiff_t oh,
                                   const ptrdiff_t *p, const ptrdiff_t *q)
{
    const ptrdiff_t ih0 = oh * p[P_SH] - p[P_PT], KH = p[P_KH];
    for (ptrdiff_t kt = 0; kt < q[Q_KT]; kt++)
        for (ptrdiff_t ky = 0; ky < KH; ky++) {
            const ptrdiff_t ih = ih0 + ky * p[P_DH];
            rows[kt * KH + ky] = f->framep[kt] && ih >= 0 && ih < p[P_H]
                                     ? f->framep[kt] + ih * f->g.rowlen
                                     : NULL;
        }
}

/* the phase-row offset of each tap kx */
static void FN(tap_offsets)(ptrdiff_t *off, const ptrdiff_t *p, const FN(ring_t) *g)
{
    for (ptrdiff_t kx = 0; kx < p[P_KW]; kx++) {
        ptrdiff_t col = kx * p[P_DW];
        off[kx] = (col % g->sw) * g->plen + col / g->sw;
    }
}

static void FN(fwd3_nchw_task)(void *vctx, ptrdiff_t task)
{
    FN(job3_t) *job3 = vctx;
    job_t *job = &job3->job;
    const ptrdiff_t *p = job->p, *q = job3->q;
    const ptrdiff_t planes = p[P_N] * p[P_C], M = p[P_M], KW = p[P_KW];
    const ptrdiff_t rowsn = q[Q_KT] * p[P_KH];
    const ptrdiff_t first = planes * task / job->ntasks, last = planes * (task + 1) / job->ntasks;
    FN(frames_t) f;
    int ok = FN(frames_init)(&f, p, q);
    const T **rows = malloc(rowsn * sizeof(T *));
    ptrdiff_t *off = malloc(KW * sizeof(ptrdiff_t));
    if (!ok || !rows || !off) {
        job->failed = 1;
        goto done;
    }
    FN(tap_offsets)(off, p, &f.g);
    const T *w = job->w, *b = job->b;
    for (ptrdiff_t plane = first; plane < last; plane++) {
        const ptrdiff_t n = plane / p[P_C], c = plane % p[P_C];
        const T *src = (const T *)job->x + n * p[P_XN] + c * p[P_XC];
        for (ptrdiff_t k = 0; k < f.R; k++)
            f.held[k] = -1;
        for (ptrdiff_t od = 0; od < q[Q_OD]; od++) {
            FN(frames_at)(&f, src, od, p, q);
            for (ptrdiff_t oh = 0; oh < p[P_OH]; oh++) {
                FN(frames_rows)(rows, &f, oh, p, q);
                for (ptrdiff_t m = 0; m < M; m++) {
                    const ptrdiff_t o = c * M + m;
                    T *out = (T *)job->y + n * p[P_YN] + o * p[P_YC] + od * q[Q_YD] +
                             oh * p[P_YH];
                    FN(fwd3_row)(out, rows, w + o * rowsn * KW, b ? b[o] : (T)0, rowsn, KW, off,
                                 p[P_OW]);
                }
            }
        }
    }
done:
    FN(frames_free)(&f);
    free((void *)rows);
    free(off);
}

/* 3-D, unit stride across rows and columns, rows narrower than two vectors (a network's last
 * stages: 7x7, 14x14 frames): each input frame copied once into a flat plane of pitch P with
 * its zero margins, so that output (oh, ow) is flat position j = oh P + ow and the tap
 * (ky, kx) of every output the load at j + ky DH P + kx DW: vectors run across rows (P - OW
 * lanes of each row's share are discarded), eight at a time in registers, the rows stored out
 * of a buffer. The row kernel (fwd3_nchw_task) spends more on each row than its few lanes'
 * arithmetic there. */
/* flat outputs j .. j + nv L - 1 into dst: eight vectors of accumulators (all eight loaded:
 * the slots have the slack) over the taps of the frames present */
DW_CLONES static void FN(fwd3_flat_block)(T *restrict dst, const T *const *slot_of,
                                          const T *restrict wo, T bias, const ptrdiff_t *off,
                                          ptrdiff_t KT, ptrdiff_t per, ptrdiff_t j, int nv)
{
    VT a[8];
    for (int v = 0; v < 8; v++)
        a[v] = (VT){0} + bias;
    for (ptrdiff_t kt = 0; kt < KT; kt++) {
        if (!slot_of[kt])
            continue;
        for (ptrdiff_t t = kt * per; t < (kt + 1) * per; t++) {
            const T cw = wo[t];
            const T *s = slot_of[kt] + off[t] + j;
            for (int v = 0; v < 8; v++)
                a[v] += cw * *(const VT *)(s + v * L);
        }
    }
    for (int v = 0; v < nv; v++)
        *(VT *)(dst + v * L) = a[v];
}

static int FN(fwd3_flat_applies)(const ptrdiff_t *p)
{
    return p[P_SH] == 1 && p[P_SW] == 1 && p[P_OW] < 2 * L;
}

static void FN(fwd3_flat_task)(void *vctx, ptrdiff_t task)
{
    FN(job3_t) *job3 = vctx;
    job_t *job = &job3->job;
    const ptrdiff_t *p = job->p, *q = job3->q;
    const ptrdiff_t planes = p[P_N] * p[P_C], M = p[P_M], KT = q[Q_KT], KH = p[P_KH];
    const ptrdiff_t KW = p[P_KW], H = p[P_H], W = p[P_W], OH = p[P_OH], OW = p[P_OW];
    const ptrdiff_t pt = p[P_PT], pl = p[P_PL], taps = KT * KH * KW;
    const ptrdiff_t first = planes * task / job->ntasks, last = planes * (task + 1) / job->ntasks;
    /* columns and rows the outputs read: P and HP (input columns or rows beyond are unread) */
    const ptrdiff_t wr = OW + (KW - 1) * p[P_DW], hr = OH + (KH - 1) * p[P_DH];
    const ptrdiff_t P = wr > pl + W ? wr : pl + W, HP = hr > pt + H ? hr : pt + H;
    const ptrdiff_t cols = W < P - pl ? W : P - pl, rowsn = H < HP - pt ? H : HP - pt;
    const ptrdiff_t span = (OH * P + L - 1) / L * L; /* the flat outputs, whole vectors */
    const ptrdiff_t slot_len = HP * P + span + 8 * L; /* + the last vectors' reach */
    const ptrdiff_t R = (KT - 1) * q[Q_DT] + 1;
    T *slots = calloc(R * slot_len, sizeof(T));
    T *buf = malloc(span * sizeof(T));
    ptrdiff_t *held = malloc(R * sizeof(ptrdiff_t)), *off = malloc(taps * sizeof(ptrdiff_t));
    const T **slot_of = malloc(KT * sizeof(T *));
    if (!slots || !buf || !held || !off || !slot_of) {
        job->failed = 1;
        goto done;
    }
    for (ptrdiff_t kt = 0, t = 0; kt < KT; kt++)
        for (ptrdiff_t ky = 0; ky < KH; ky++)
            for (ptrdiff_t kx = 0; kx < KW; kx++, t++)
                off[t] = ky * p[P_DH] * P + kx * p[P_DW];
    const T *w = job->w, *b = job->b;
    for (ptrdiff_t plane = first; plane < last; plane++) {
        const ptrdiff_t n = plane / p[P_C], c = plane % p[P_C];
        const T *src = (const T *)job->x + n * p[P_XN] + c * p[P_XC];
        for (ptrdiff_t k = 0; k < R; k++)
            held[k] = -1;
        for (ptrdiff_t od = 0; od < q[Q_OD]; od++) {
            for (ptrdiff_t kt = 0; kt < KT; kt++) {
                const ptrdiff_t d = od * q[Q_ST] + kt * q[Q_DT] - q[Q_PF];
                if (d < 0 || d >= q[Q_D]) {
                    slot_of[kt] = NULL; /* padding: no products */
                    continue;
                }
                T *slot = slots + (d % R) * slot_len;
                if (held[d % R] != d) { /* the margins stay zero: rows copied without them */
                    const T *frame = src + d * q[Q_XD];
                    for (ptrdiff_t ih = 0; ih < rowsn; ih++)
                        FN(copy)(slot + (ih + pt) * P + pl, frame + ih * p[P_XH], cols);
                    held[d % R] = d;
                }
                slot_of[kt] = slot;
            }
            for (ptrdiff_t m = 0; m < M; m++) {
                const ptrdiff_t o = c * M + m;
                const T *wo = w + o * taps, bias = b ? b[o] : (T)0;
                for (ptrdiff_t j = 0; j < span; j += 8 * L)
                    FN(fwd3_flat_block)(buf + j, slot_of, wo, bias, off, KT, KH * KW, j,
                                        span - j >= 8 * L ? 8 : (int)((span - j) / L));
                T *out = (T *)job->y + n * p[P_YN] + o * p[P_YC] + od * q[Q_YD];
                for (ptrdiff_t oh = 0; oh < OH; oh++)
                    FN(copy)(out + oh * p[P_YH], buf + oh * P, OW);
            }
        }
    }
done:
    free(slots);
    free(buf);
    free(held);
    free(off);
    free((void *)slot_of);
}

/* ---- forward, NCHW, 3 x 3 at unit stride, rows read in place ---------------------------- */
/* Where the padding left and right is the same, 0 or 1 ('valid' or 'same'), rows are more than
 * a vector wide and dilation is 1 (planes of at most 256 outputs take the whole-plane paths
 * before this one, where they apply): the three taps of a row are loads at columns
 * x - pl, x - pl + 1 and x - pl + 2 straight from the input row, no copy (the row ring's
 * copies and bookkeeping cost more than the arithmetic on rows of 56: measured, one thread,
 * batch 8, 128 channels at 56 x 56, 39% of the time in split_row and ring_rows; two threads,
 * batch 8, 0.98 ms against 1.81 for the ring and 1.56 for PyTorch's channels-last kernel, and
 * 256 channels at 28 x 28, 0.85 against 1.41 for the padded whole planes). With pl = 1
 * the first vector's left taps and the last vector's right taps are the centre vector
 * shifted by a lane with the padding's zero shifted in. A row whose width is not a multiple
 * of L ends with a vector that overlaps the one before (the same values stored twice). Two
 * output rows at a time share their two middle input rows; each output sums its nine
 * products in the order fwd_row33 does. */
static int FN(fwd_s1_33_applies)(const ptrdiff_t *p)
{
#if DW_HAVE_AVX512_CODE
    if (dw_avx512()) /* the AVX-512 rows (fwd_s1_task) or the ring, measured there */
        return 0;
#endif
    const ptrdiff_t pl = p[P_PL];
    return p[P_KH] == 3 && p[P_KW] == 3 && p[P_SH] == 1 && p[P_SW] == 1 && p[P_DH] == 1 &&
           p[P_DW] == 1 && (pl == 0 || pl == 1) && p[P_OW] == p[P_W] + 2 * pl - 2 &&
           p[P_OW] > L; /* the first vector's right taps inside the row */
}

/* v stored at d (aligned to sizeof(VT)) past the caches (DW_HAVE_STREAM) */
static inline __attribute__((always_inline)) void FN(stream)(T *d, VT v)
{
#if DW_HAVE_STREAM
    union {
        VT v;
        __m128i q[sizeof(VT) / 16];
    } u = {v};
    for (unsigned i = 0; i < sizeof(VT) / 16; i++)
        _mm_stream_si128((__m128i *)d + i, u.q[i]);
#else
    *(VT *)d = v;
#endif
}

/* whether an NCHW forward's output rows are stored past the caches (dw_stream_bytes): rows
 * that start on a cache line and are whole lines long, and an output larger than the
 * last-level cache */
static int FN(stream_rows_pay)(const ptrdiff_t *p, const void *y)
{
    const ptrdiff_t row = p[P_OW] * (ptrdiff_t)sizeof(T);
    const ptrdiff_t e = 64 / (ptrdiff_t)sizeof(T); /* elements a line */
    return DW_HAVE_STREAM && (size_t)y % 64 == 0 && row % 64 == 0 && p[P_YH] % e == 0 &&
           p[P_YC] % e == 0 && p[P_YN] % e == 0 &&
           p[P_N] * p[P_C] * p[P_M] * p[P_OH] * row > dw_stream_bytes();
}

/* output rows out0 (and out1 where PAIR) from input rows rows[0..3] (rows of the padding
 * point into a row of zeros, with one zero before it); NT: stored with streaming stores (rows
 * aligned to a vector and a whole number of vectors long). DELAY: each vector's outputs
 * stored after the next vector's loads. Without it, an output row as far from an input row as
 * a multiple of 4 kB (as two page-aligned tensors of one shape are) has each vector's left-tap
 * load wait on the store just before it, which it matches in the address bits the processor
 * compares (measured, Zen 1, batch 8, 32 channels at 112 x 112, 2 threads, output beyond the
 * last-level cache: 3.04 ms at a multiple of 4 kB against 2.39 at other distances; 2.07
 * delayed). */
static inline __attribute__((always_inline)) void
FN(rows33_body)(T *restrict out0, T *restrict out1, const T *const *rows, const T *restrict w,
                T bias, ptrdiff_t pl, ptrdiff_t OW, const int NT, const int PAIR,
                const int DELAY)
{
    const T *r0 = rows[0], *r1 = rows[1], *r2 = rows[2], *r3 = rows[3];
    const T *p4 = rows[4], *p5 = rows[5]; /* the next call's new rows (or NULL): prefetched */
    const VT w0 = (VT){0} + w[0], w1 = (VT){0} + w[1], w2 = (VT){0} + w[2];
    const VT w3 = (VT){0} + w[3], w4 = (VT){0} + w[4], w5 = (VT){0} + w[5];
    const VT w6 = (VT){0} + w[6], w7 = (VT){0} + w[7], w8 = (VT){0} + w[8];
    const VT z = {0};
    const FN(vidx) first = SHIFT_IN_FIRST, last = SHIFT_IN_LAST;
#define LD(r, i) (*(const VT *)((r) + (i)))
#define PUT(d, v)                                                                              \
    do {                                                                                       \
        if (NT)                                                                                \
            FN(stream)(d, v);                                                                  \
        else                                                                                   \
            *(VT *)(d) = (v);                                                                  \
    } while (0)
    /* row r's left, centre and right taps for outputs x .. x + L - 1, each added to s0 (A)
     * with weight a0, a1, a2 and to s1 (B) with b0, b1, b2 as soon as it is loaded: one or two
     * loads live at a time, so the nine weights stay in registers beside the two sums and the
     * two pending vectors of DELAY */
#define TAPS(r, x, edge, A, B, a0, a1, a2, b0, b1, b2)                                         \
    do {                                                                                       \
        VT t_, c_;                                                                             \
        if (pl == 0 || (edge) == 0) {                                                          \
            const ptrdiff_t o_ = pl == 0 ? 0 : -1;                                             \
            t_ = LD(r, (x) + o_);                                                              \
            ADD(A, B, a0, b0, t_);                                                             \
            t_ = LD(r, (x) + o_ + 1);                                                          \
            ADD(A, B, a1, b1, t_);                                                             \
            t_ = LD(r, (x) + o_ + 2);                                                          \
            ADD(A, B, a2, b2, t_);                                                             \
        } else {                                                                               \
            c_ = LD(r, x);                                                                     \
            t_ = (edge) & 1 ? __builtin_shuffle(c_, z, first) : LD(r, (x) - 1);                \
            ADD(A, B, a0, b0, t_);                                                             \
            ADD(A, B, a1, b1, c_);                                                             \
            t_ = (edge) & 2 ? __builtin_shuffle(c_, z, last) : LD(r, (x) + 1);                 \
            ADD(A, B, a2, b2, t_);                                                             \
        }                                                                                      \
    } while (0)
#define ADD(A, B, a, b, t)                                                                     \
    do {                                                                                       \
        if (A)                                                                                 \
            s0 = s0 + (a) * (t);                                                               \
        if (B)                                                                                 \
            s1 = s1 + (b) * (t);                                                               \
    } while (0)
    /* the left, centre and right taps of row r for outputs x .. x + L - 1 (three loads live
     * at a time: the nine weights stay in registers) */
#define TRIPLE(r, x, l, c, rt, edge)                                                           \
    do {                                                                                       \
        if (pl == 0) {                                                                         \
            l = LD(r, x);                                                                      \
            c = LD(r, (x) + 1);                                                                \
            rt = LD(r, (x) + 2);                                                               \
        } else {                                                                               \
            c = LD(r, x);                                                                      \
            l = (edge) & 1 ? __builtin_shuffle(c, z, first) : LD(r, (x) - 1);                  \
            rt = (edge) & 2 ? __builtin_shuffle(c, z, last) : LD(r, (x) + 1);                  \
        }                                                                                      \
    } while (0)
    /* each output's nine products summed in the same order whatever the variant (TAPS where
     * the pending vectors of DELAY need the registers, TRIPLE measured faster otherwise) */
#define ROWS(x, edge)                                                                          \
    do {                                                                                       \
        VT s0 = (VT){0} + bias, s1 = s0;                                                       \
        if (DELAY) {                                                                           \
            TAPS(r0, x, edge, 1, 0, w0, w1, w2, w0, w1, w2);                                   \
            TAPS(r1, x, edge, 1, PAIR, w3, w4, w5, w0, w1, w2);                                \
            TAPS(r2, x, edge, 1, PAIR, w6, w7, w8, w3, w4, w5);                                \
            if (PAIR)                                                                          \
                TAPS(r3, x, edge, 0, 1, w0, w1, w2, w6, w7, w8);                               \
        } else {                                                                               \
            VT t0, t1, t2;                                                                     \
            TRIPLE(r0, x, t0, t1, t2, edge);                                                   \
            s0 = s0 + w0 * t0 + w1 * t1 + w2 * t2;                                             \
            TRIPLE(r1, x, t0, t1, t2, edge);                                                   \
            s0 = s0 + w3 * t0 + w4 * t1 + w5 * t2;                                             \
            if (PAIR)                                                                          \
                s1 = s1 + w0 * t0 + w1 * t1 + w2 * t2;                                         \
            TRIPLE(r2, x, t0, t1, t2, edge);                                                   \
            s0 = s0 + w6 * t0 + w7 * t1 + w8 * t2;                                             \
            PUT(out0 + (x), s0);                                                               \
            if (PAIR) {                                                                        \
                s1 = s1 + w3 * t0 + w4 * t1 + w5 * t2;                                         \
                TRIPLE(r3, x, t0, t1, t2, edge);                                               \
                PUT(out1 + (x), s1 + w6 * t0 + w7 * t1 + w8 * t2);                             \
            }                                                                                  \
        }                                                                                      \
        if (DELAY) {                                                                           \
            if ((x) > 0) {                                                                     \
                PUT(out0 + px, q0);                                                            \
                if (PAIR)                                                                      \
                    PUT(out1 + px, q1);                                                        \
            }                                                                                  \
            px = (x);                                                                          \
            q0 = s0;                                                                           \
            q1 = s1;                                                                           \
        }                                                                                      \
    } while (0)
    VT q0 = z, q1 = z;
    ptrdiff_t px = 0;
    const ptrdiff_t lastx = OW - L; /* the last vector's first output */
    ROWS(0, 1);
    ptrdiff_t x = L;
    const ptrdiff_t line = 64 / (ptrdiff_t)sizeof(T); /* elements a cache line */
    if (p4)
        for (ptrdiff_t e = 0; e < 2 * line; e += line) {
            __builtin_prefetch(p4 + e);
            __builtin_prefetch(p5 + e);
        }
    for (; x < lastx; x += L) {
        if (p4 && x % line == 0) {
            __builtin_prefetch(p4 + x + 2 * line);
            __builtin_prefetch(p5 + x + 2 * line);
        }
        ROWS(x, 0);
    }
    ROWS(lastx, 2);
    if (DELAY) {
        PUT(out0 + px, q0);
        if (PAIR)
            PUT(out1 + px, q1);
    }
#undef ROWS
#undef ADD
#undef TAPS
#undef TRIPLE
#undef PUT
#undef LD
}

/* rows33_body with its variant chosen at run time: streaming stores (nt), two output rows
 * (rows[3] not NULL); fwd_rows33_direct without delayed stores, fwd_rows33_delayed with them
 * (one function for all eight variants, a switch on the three, measured 4-5% slower on rows
 * of 28 floats: Zen 1, batch 1 and 8, 256 channels at 28 x 28, one thread) */
#define ROWS33_VARIANTS(name, DELAY)                                                           \
    DW_CLONES static void FN(name)(T *restrict out0, T *restrict out1, const T *const *rows,  \
                                   const T *restrict w, T bias, ptrdiff_t pl, ptrdiff_t OW,    \
                                   int nt)                                                     \
    {                                                                                          \
        if (nt) {                                                                              \
            if (rows[3])                                                                       \
                FN(rows33_body)(out0, out1, rows, w, bias, pl, OW, 1, 1, DELAY);               \
            else                                                                               \
                FN(rows33_body)(out0, out1, rows, w, bias, pl, OW, 1, 0, DELAY);               \
        } else if (rows[3]) {                                                                  \
            FN(rows33_body)(out0, out1, rows, w, bias, pl, OW, 0, 1, DELAY);                   \
        } else {                                                                               \
            FN(rows33_body)(out0, out1, rows, w, bias, pl, OW, 0, 0, DELAY);                   \
        }                                                                                      \
    }
ROWS33_VARIANTS(fwd_rows33_direct, 0)
ROWS33_VARIANTS(fwd_rows33_delayed, 1)
#undef ROWS33_VARIANTS

/* whether a store at `out` of a vector and loads of a vector at `in` and one element either
 * side match in the low 12 address bits (the 4 kB aliasing that rows33_body's DELAY avoids) */
static inline int FN(aliases)(const T *out, const T *in)
{
    const ptrdiff_t d = (ptrdiff_t)(((uintptr_t)out - (uintptr_t)in) & 4095);
    const ptrdiff_t near = 2 * (ptrdiff_t)sizeof(VT);
    return d < near || d > 4096 - near;
}

static void FN(fwd_s1_33_task)(void *vctx, ptrdiff_t task)
{
    job_t *job = vctx;
    const ptrdiff_t *p = job->p;
    const ptrdiff_t planes = p[P_N] * p[P_C], M = p[P_M], H = p[P_H], OH = p[P_OH];
    const ptrdiff_t first = planes * task / job->ntasks, last = planes * (task + 1) / job->ntasks;
    T *zero = calloc(p[P_W] + 2 + L, sizeof(T));
    if (!zero) {
        job->failed = 1;
        return;
    }
    const T *w = job->w, *b = job->b;
    /* 4 kB aliasing measured only where the output does not fit in the last-level cache (its
     * stores wait long in the store queue); in cache the check cost more than it saved */
    const int big = planes * M * OH * p[P_OW] * (ptrdiff_t)sizeof(T) > dw_stream_bytes();
    for (ptrdiff_t plane = first; plane < last; plane++) {
        const ptrdiff_t n = plane / p[P_C], c = plane % p[P_C];
        const T *src = (const T *)job->x + n * p[P_XN] + c * p[P_XC];
        for (ptrdiff_t oh = 0; oh < OH; oh += 2) {
            const T *rows[6];
            for (ptrdiff_t k = 0; k < 6; k++) {
                const ptrdiff_t ih = oh - p[P_PT] + k;
                rows[k] = ih >= 0 && ih < H ? src + ih * p[P_XH] : zero + 1;
            }
            if (oh + 1 >= OH)
                rows[3] = NULL;
            /* rows wider than 256 bytes: the next call's two new rows prefetched, two cache
             * lines ahead (measured, Zen 1, batch 8, NCHW, 32 channels at 112 x 112: two
             * threads 2.57 ms against 3.33, PyTorch's channels-last kernel 2.53; one thread
             * 4.00 against 4.68; rows of 56 floats no faster with it) */
            if (oh - p[P_PT] + 5 >= H || p[P_W] * (ptrdiff_t)sizeof(T) <= 256)
                rows[4] = rows[5] = NULL;
            for (ptrdiff_t m = 0; m < M; m++) {
                const ptrdiff_t o = c * M + m;
                T *out = (T *)job->y + n * p[P_YN] + o * p[P_YC] + oh * p[P_YH];
                const T bias = b ? b[o] : (T)0;
                int aliased = 0;
                for (int k = 0; k < 4 && big && !aliased; k++)
                    aliased = rows[k] && (FN(aliases)(out, rows[k]) ||
                                          (rows[3] && FN(aliases)(out + p[P_YH], rows[k])));
                (aliased ? FN(fwd_rows33_delayed) : FN(fwd_rows33_direct))(
                    out, out + p[P_YH], rows, w + o * 9, bias, p[P_PL], p[P_OW], job->stream);
            }
        }
    }
    if (job->stream)
        dw_stream_fence();
    free(zero);
}

/* ---- forward, NCHW, whole planes ------------------------------------------------------- */
/* A plane that fits in the second-level cache is copied once, zero-padded, into sh * sw phase
 * planes of Hq x Wq (phase (qy, qx), row r, column j holds input row r * sh + qy - pt, column
 * j * sw + qx - pl), so that every tap is one flat offset and a whole plane of outputs, at
 * row pitch Wq (the Wq - OW columns past the end of each row are computed and dropped), is
 * one long vector loop: no per-row overhead on small planes. */
typedef struct {
    ptrdiff_t hq, wq, phase; /* rows and columns of a phase plane, elements a phase (+slack) */
    ptrdiff_t nout;          /* OH * Wq outputs computed */
} FN(flat_t);

static FN(flat_t) FN(flat_geometry)(const ptrdiff_t *p)
{
    FN(flat_t) g;
    ptrdiff_t blk = NB * L;
    g.hq = p[P_OH] + (p[P_KH] - 1) * p[P_DH] / p[P_SH];
    g.wq = p[P_OW] + (p[P_KW] - 1) * p[P_DW] / p[P_SW];
    g.phase = (g.hq * g.wq + 2 * blk + blk - 1) / blk * blk;
    g.nout = p[P_OH] * g.wq;
    return g;
}

static void FN(flat_fill)(T *restrict B, const T *restrict src, const ptrdiff_t *p,
                          const FN(flat_t) *g)
{
    ptrdiff_t sh = p[P_SH], sw = p[P_SW], H = p[P_H], W = p[P_W], pt = p[P_PT], pl = p[P_PL];
    ptrdiff_t wq = g->wq;
    for (ptrdiff_t qy = 0; qy < sh; qy++)
        for (ptrdiff_t qx = 0; qx < sw; qx++) {
            T *d = B + (qy * sw + qx) * g->phase;
            ptrdiff_t first = pl - qx; /* column j holds input column j * sw - first */
            ptrdiff_t jlo = first > 0 ? (first + sw - 1) / sw : 0;
            ptrdiff_t jhi = (W - 1 + first) >= 0 ? (W - 1 + first) / sw + 1 : 0;
            if (jhi > wq)
                jhi = wq;
            if (jlo > jhi)
                jlo = jhi;
            for (ptrdiff_t r = 0; r < g->hq; r++, d += wq) {
                ptrdiff_t ih = r * sh + qy - pt;
                if (ih < 0 || ih >= H) {
                    FN(zero)(d, wq);
                    continue;
                }
                const T *s = src + ih * p[P_XH] - first;
                for (ptrdiff_t j = 0; j < jlo; j++)
                    d[j] = 0;
                if (sw == 1)
                    FN(copy)(d + jlo, s + jlo, jhi - jlo);
                else if (sw == 2)
                    for (ptrdiff_t j = jlo; j < jhi; j++)
                        d[j] = s[2 * j];
                else
                    for (ptrdiff_t j = jlo; j < jhi; j++)
                        d[j] = s[j * sw];
                for (ptrdiff_t j = jhi; j < wq; j++)
                    d[j] = 0;
            }
        }
}

/* out[i] = bias + sum_t w[t] * B[off[t] + i] for i < n (rounded up to whole vectors) */
#define FLAT_BODY(NTAPS)                                                                       \
    do {                                                                                       \
        ptrdiff_t i = 0;                                                                       \
        for (; i < n; i += NB * L) {                                                           \
            VT a[NB];                                                                          \
            for (int v = 0; v < NB; v++)                                                       \
                a[v] = (VT){0} + bias;                                                         \
            for (ptrdiff_t t = 0; t < (NTAPS); t++) {                                          \
                const T c = w[t];                                                              \
                const T *s = B + off[t] + i;                                                   \
                for (int v = 0; v < NB; v++)                                                   \
                    a[v] += c * *(const VT *)(s + v * L);                                      \
            }                                                                                  \
            for (int v = 0; v < NB; v++)                                                       \
                *(VT *)(out + i + v * L) = a[v];                                               \
        }                                                                                      \
    } while (0)

DW_CLONES static void FN(flat_taps)(T *restrict out, const T *restrict B, const T *restrict w,
                                    const ptrdiff_t *restrict off, ptrdiff_t ntaps, T bias,
                                    ptrdiff_t n)
{
    FLAT_BODY(ntaps);
}

DW_CLONES static void FN(flat_taps9)(T *restrict out, const T *restrict B, const T *restrict w,
                                     const ptrdiff_t *restrict off, T bias, ptrdiff_t n)
{
    FLAT_BODY(9);
}

static void FN(fwd_flat_task)(void *vctx, ptrdiff_t task)
{
    job_t *job = vctx;
    const ptrdiff_t *p = job->p;
    ptrdiff_t planes = p[P_N] * p[P_C], M = p[P_M], KH = p[P_KH], KW = p[P_KW];
    ptrdiff_t taps = KH * KW, blk = NB * L;
    ptrdiff_t first = planes * task / job->ntasks, last = planes * (task + 1) / job->ntasks;
    FN(flat_t) g = FN(flat_geometry)(p);
    ptrdiff_t nbuf = (g.nout + blk - 1) / blk * blk;
    T *B = calloc(p[P_SH] * p[P_SW] * g.phase, sizeof(T));
    T *tmp = malloc(nbuf * sizeof(T));
    ptrdiff_t *off = malloc(taps * sizeof(ptrdiff_t));
    if (!B || !tmp || !off) {
        job->failed = 1;
        goto done;
    }
    for (ptrdiff_t ky = 0; ky < KH; ky++)
        for (ptrdiff_t kx = 0; kx < KW; kx++) {
            ptrdiff_t row = ky * p[P_DH], col = kx * p[P_DW];
            off[ky * KW + kx] = ((row % p[P_SH]) * p[P_SW] + col % p[P_SW]) * g.phase +
                                row / p[P_SH] * g.wq + col / p[P_SW];
        }
    const T *w = job->w, *b = job->b;
    for (ptrdiff_t plane = first; plane < last; plane++) {
        ptrdiff_t n = plane / p[P_C], c = plane % p[P_C];
        FN(flat_fill)(B, (const T *)job->x + n * p[P_XN] + c * p[P_XC], p, &g);
        for (ptrdiff_t m = 0; m < M; m++) {
            ptrdiff_t o = c * M + m;
            T *out = (T *)job->y + n * p[P_YN] + o * p[P_YC];
            T bias = b ? b[o] : (T)0;
            if (taps == 9)
                FN(flat_taps9)(tmp, B, w + o * taps, off, bias, g.nout);
            else
                FN(flat_taps)(tmp, B, w + o * taps, off, taps, bias, g.nout);
            for (ptrdiff_t oh = 0; oh < p[P_OH]; oh++)
                FN(copy)(out + oh * p[P_YH], tmp + oh * g.wq, p[P_OW]);
        }
    }
done:
    free(B);
    free(tmp);
    free(off);
}

/* ---- forward, channels-last ------------------------------------------------------------- */
/* job->scratch: the weights as (KH, KW, C * M), channels contiguous. */
DW_CLONES static void FN(fwd_cl_pixel)(T *restrict out, const T *restrict x, const T *wt,
                                       const T *b, const ptrdiff_t *p, ptrdiff_t ky0,
                                       ptrdiff_t ky1, ptrdiff_t kx0, ptrdiff_t kx1)
{
    ptrdiff_t C = p[P_C], M = p[P_M], CM = C * M, KW = p[P_KW];
    ptrdiff_t dy = p[P_DH] * p[P_XH], dx = p[P_DW] * p[P_XW];
    if (M == 1) {
        ptrdiff_t c = 0;
        for (; c + NB * L <= C; c += NB * L) {
            VT a[NB];
            for (int v = 0; v < NB; v++)
                a[v] = b ? *(const VT *)(b + c + v * L) : (VT){0};
            for (ptrdiff_t ky = ky0; ky < ky1; ky++)
                for (ptrdiff_t kx = kx0; kx < kx1; kx++) {
                    const T *s = x + ky * dy + kx * dx + c, *wk = wt + (ky * KW + kx) * CM + c;
                    for (int v = 0; v < NB; v++)
                        a[v] += *(const VT *)(wk + v * L) * *(const VT *)(s + v * L);
                }
            for (int v = 0; v < NB; v++)
                *(VT *)(out + c + v * L) = a[v];
        }
        for (; c + L <= C; c += L) {
            VT a = b ? *(const VT *)(b + c) : (VT){0};
            for (ptrdiff_t ky = ky0; ky < ky1; ky++)
                for (ptrdiff_t kx = kx0; kx < kx1; kx++)
                    a += *(const VT *)(wt + (ky * KW + kx) * CM + c) *
                         *(const VT *)(x + ky * dy + kx * dx + c);
            *(VT *)(out + c) = a;
        }
        for (; c < C; c++) {
            T a = b ? b[c] : 0;
            for (ptrdiff_t ky = ky0; ky < ky1; ky++)
                for (ptrdiff_t kx = kx0; kx < kx1; kx++)
                    a += wt[(ky * KW + kx) * CM + c] * x[ky * dy + kx * dx + c];
            out[c] = a;
        }
        return;
    }
    for (ptrdiff_t o = 0; o < CM; o++) {
        T a = b ? b[o] : 0;
        for (ptrdiff_t ky = ky0; ky < ky1; ky++)
            for (ptrdiff_t kx = kx0; kx < kx1; kx++)
                a += wt[(ky * KW + kx) * CM + o] * x[ky * dy + kx * dx + o / M];
        out[o] = a;
    }
}

/* Eight output pixels of a row, ystep apart, whose taps all fall inside the input (x: the
 * first one's first tap, the next pixel's xstep on), M = 1: a tap's weight vector is loaded
 * once for the eight; each output sums its taps in row-major order, as fwd_cl_pixel does. */
typedef void (*FN(cl8_fn))(T *out, ptrdiff_t ystep, const T *x, ptrdiff_t xstep, const T *wt,
                           const T *b, const ptrdiff_t *p, ptrdiff_t ky0, ptrdiff_t ky1);

static inline __attribute__((always_inline)) void
FN(cl8v_body)(T *out, ptrdiff_t ystep, const T *x, ptrdiff_t xstep, const T *wt, const T *b,
              const ptrdiff_t *p, ptrdiff_t ky0, ptrdiff_t ky1, const int NT)
{
    const ptrdiff_t C = p[P_C], KW = p[P_KW];
    const ptrdiff_t dy = p[P_DH] * p[P_XH], dx = p[P_DW] * p[P_XW];
    ptrdiff_t c = 0;
    for (; c + L <= C; c += L) {
        const VT bias = b ? *(const VT *)(b + c) : (VT){0};
        VT a[8];
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++)
            a[i] = bias;
        for (ptrdiff_t ky = ky0; ky < ky1; ky++)
            for (ptrdiff_t kx = 0; kx < KW; kx++) {
                const VT wv = *(const VT *)(wt + (ky * KW + kx) * C + c);
                const T *s = x + ky * dy + kx * dx + c;
#pragma GCC unroll 8
                for (int i = 0; i < 8; i++)
                    a[i] += wv * *(const VT *)(s + i * xstep);
            }
        if (NT) {
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++)
                FN(stream)(out + i * ystep + c, a[i]);
        } else {
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++)
                *(VT *)(out + i * ystep + c) = a[i];
        }
    }
    for (; c < C; c++)
        for (int i = 0; i < 8; i++) {
            T a = b ? b[c] : 0;
            for (ptrdiff_t ky = ky0; ky < ky1; ky++)
                for (ptrdiff_t kx = 0; kx < KW; kx++)
                    a += wt[(ky * KW + kx) * C + c] * x[i * xstep + ky * dy + kx * dx + c];
            out[i * ystep + c] = a;
        }
}

DW_CLONES static void FN(cl8v_block)(T *out, ptrdiff_t ystep, const T *x, ptrdiff_t xstep,
                                     const T *wt, const T *b, const ptrdiff_t *p, ptrdiff_t ky0,
                                     ptrdiff_t ky1)
{
    FN(cl8v_body)(out, ystep, x, xstep, wt, b, p, ky0, ky1, 0);
}

/* cl8v_block with streaming stores (pixels of whole cache lines, aligned: stream_pixels_pay) */
DW_CLONES static void FN(cl8v_block_nt)(T *out, ptrdiff_t ystep, const T *x, ptrdiff_t xstep,
                                        const T *wt, const T *b, const ptrdiff_t *p,
                                        ptrdiff_t ky0, ptrdiff_t ky1)
{
    FN(cl8v_body)(out, ystep, x, xstep, wt, b, p, ky0, ky1, 1);
}

/* whether a channels-last forward's output pixels are stored past the caches: pixels that
 * start on a cache line and are whole lines long, and an output larger than the last-level
 * cache (dw_stream_bytes) */
static int FN(stream_pixels_pay)(const ptrdiff_t *p, const void *y)
{
    const ptrdiff_t e = 64 / (ptrdiff_t)sizeof(T); /* elements a line */
    const ptrdiff_t CM = p[P_C] * p[P_M];
    return DW_HAVE_STREAM && (size_t)y % 64 == 0 && CM % e == 0 && p[P_YW] % e == 0 &&
           p[P_YH] % e == 0 && p[P_YN] % e == 0 &&
           p[P_N] * p[P_OH] * p[P_OW] * CM * (ptrdiff_t)sizeof(T) > dw_stream_bytes();
}

/* Channels-last rows (M = 1), `width` pixels at a time through `block` where their taps all
 * fall inside the input, the others (near the left and right borders) through fwd_cl_pixel.
 * Task: a range of output rows. */
static void FN(fwd_cl_rows)(job_t *job, ptrdiff_t task, FN(cl8_fn) block, ptrdiff_t width)
{
    const ptrdiff_t *p = job->p;
    const ptrdiff_t rows = p[P_N] * p[P_OH], SW = p[P_SW];
    const ptrdiff_t first = rows * task / job->ntasks, last = rows * (task + 1) / job->ntasks;
    ptrdiff_t owa, owb;
    inside_columns(p, &owa, &owb);
    for (ptrdiff_t r = first; r < last; r++) {
        ptrdiff_t n = r / p[P_OH], oh = r % p[P_OH], ky0, ky1;
        ptrdiff_t ih0 = oh * p[P_SH] - p[P_PT];
        tap_range(ih0, p[P_DH], p[P_KH], p[P_H], &ky0, &ky1);
        const T *xrow = (const T *)job->x + n * p[P_XN] + ih0 * p[P_XH];
        T *yrow = (T *)job->y + n * p[P_YN] + oh * p[P_YH];
        for (ptrdiff_t ow = 0; ow < p[P_OW]; ow++) {
            if (ow >= owa && ow + width <= owb) {
                block(yrow + ow * p[P_YW], p[P_YW], xrow + (ow * SW - p[P_PL]) * p[P_XW],
                      SW * p[P_XW], job->scratch, job->b, p, ky0, ky1);
                ow += width - 1;
                continue;
            }
            ptrdiff_t iw0 = ow * SW - p[P_PL], kx0, kx1;
            tap_range(iw0, p[P_DW], p[P_KW], p[P_W], &kx0, &kx1);
            FN(fwd_cl_pixel)(yrow + ow * p[P_YW], xrow + iw0 * p[P_XW], job->scratch, job->b, p,
                             ky0, ky1, kx0, kx1);
        }
    }
    if (job->stream)
        dw_stream_fence();
}

/* whether eight pixels at a time pay (M = 1), with vectors of `lanes` channels: where the
 * input comes from memory rather than cache and has more than four vectors of channels,
 * fwd_cl_task's pixel-by-pixel order (all channels of a pixel in turn) streams better
 * (measured, batch 8, 2 threads, interleaved: AVX2, 32 channels at 112 x 112, 1.25-1.35 ms
 * eight at a time against 1.72; 64 channels, 4.0 against 2.95; 128 at 56 x 56, 2.47 against
 * 1.51-1.71; AVX-512, one thread: 32 channels at 112 x 112, 1.8 against 2.8; 128 at 56 x 56,
 * 3.2 against 2.4) */
static int FN(cl8_pays)(const ptrdiff_t *p, ptrdiff_t lanes)
{
    ptrdiff_t bytes = p[P_N] * p[P_C] * p[P_H] * p[P_W] * (ptrdiff_t)sizeof(T);
    return p[P_M] == 1 && eight_pixels_pay(bytes, p[P_C], lanes);
}

static void FN(fwd_cl8v_task)(void *vctx, ptrdiff_t task)
{
    job_t *job = vctx;
    FN(fwd_cl_rows)(job, task, job->stream ? FN(cl8v_block_nt) : FN(cl8v_block), 8);
}

/* Four output pixels of a row, 3 taps wide, unit dilation, stride S (1 or 2), M = 1, all
 * their taps inside the input: a channel vector at a time, a kernel row's three weight vectors
 * loaded once for the four and its input columns once each (six at stride 1, nine at 2). */
static inline __attribute__((always_inline)) void FN(cl4_block_s)(
    T *restrict out, ptrdiff_t ystep, const T *restrict x, const T *wt, const T *b,
    const ptrdiff_t *p, ptrdiff_t ky0, ptrdiff_t ky1, const int S)
{
    const ptrdiff_t C = p[P_C], XW = p[P_XW], dy = p[P_DH] * p[P_XH];
    ptrdiff_t c = 0;
    for (; c + 2 * L <= C; c += 2 * L) {
        const VT bias = b ? *(const VT *)(b + c) : (VT){0};
        const VT bias2 = b ? *(const VT *)(b + c + L) : (VT){0};
        VT a0 = bias, a1 = bias, a2 = bias, a3 = bias;
        VT e0 = bias2, e1 = bias2, e2 = bias2, e3 = bias2;
        for (ptrdiff_t ky = ky0; ky < ky1; ky++) {
            const T *r = x + ky * dy + c, *wk = wt + ky * 3 * C + c;
            const VT w0 = *(const VT *)wk, w1 = *(const VT *)(wk + C),
                     w2 = *(const VT *)(wk + 2 * C);
            const VT u0 = *(const VT *)(wk + L), u1 = *(const VT *)(wk + C + L),
                     u2 = *(const VT *)(wk + 2 * C + L);
#define V(j) (*(const VT *)(r + (j) * XW))
#define U(j) (*(const VT *)(r + (j) * XW + L))
            a0 += w0 * V(0);
            e0 += u0 * U(0);
            a0 += w1 * V(1);
            e0 += u1 * U(1);
            a0 += w2 * V(2);
            e0 += u2 * U(2);
            a1 += w0 * V(S);
            e1 += u0 * U(S);
            a1 += w1 * V(S + 1);
            e1 += u1 * U(S + 1);
            a1 += w2 * V(S + 2);
            e1 += u2 * U(S + 2);
            a2 += w0 * V(2 * S);
            e2 += u0 * U(2 * S);
            a2 += w1 * V(2 * S + 1);
            e2 += u1 * U(2 * S + 1);
            a2 += w2 * V(2 * S + 2);
            e2 += u2 * U(2 * S + 2);
            a3 += w0 * V(3 * S);
            e3 += u0 * U(3 * S);
            a3 += w1 * V(3 * S + 1);
            e3 += u1 * U(3 * S + 1);
            a3 += w2 * V(3 * S + 2);
            e3 += u2 * U(3 * S + 2);
#undef V
#undef U
        }
        *(VT *)(out + c) = a0;
        *(VT *)(out + ystep + c) = a1;
        *(VT *)(out + 2 * ystep + c) = a2;
        *(VT *)(out + 3 * ystep + c) = a3;
        *(VT *)(out + c + L) = e0;
        *(VT *)(out + ystep + c + L) = e1;
        *(VT *)(out + 2 * ystep + c + L) = e2;
        *(VT *)(out + 3 * ystep + c + L) = e3;
    }
    for (; c + L <= C; c += L) {
        const VT bias = b ? *(const VT *)(b + c) : (VT){0};
        VT a0 = bias, a1 = bias, a2 = bias, a3 = bias;
        for (ptrdiff_t ky = ky0; ky < ky1; ky++) {
            const T *r = x + ky * dy + c, *wk = wt + ky * 3 * C + c;
            const VT w0 = *(const VT *)wk, w1 = *(const VT *)(wk + C),
                     w2 = *(const VT *)(wk + 2 * C);
            VT v[3 * S + 3];
#pragma GCC unroll 9
            for (int j = 0; j < 3 * S + 3; j++)
                v[j] = *(const VT *)(r + j * XW);
            a0 += w0 * v[0];
            a0 += w1 * v[1];
            a0 += w2 * v[2];
            a1 += w0 * v[S];
            a1 += w1 * v[S + 1];
            a1 += w2 * v[S + 2];
            a2 += w0 * v[2 * S];
            a2 += w1 * v[2 * S + 1];
            a2 += w2 * v[2 * S + 2];
            a3 += w0 * v[3 * S];
            a3 += w1 * v[3 * S + 1];
            a3 += w2 * v[3 * S + 2];
        }
        *(VT *)(out + c) = a0;
        *(VT *)(out + ystep + c) = a1;
        *(VT *)(out + 2 * ystep + c) = a2;
        *(VT *)(out + 3 * ystep + c) = a3;
    }
    for (; c < C; c++)
        for (int i = 0; i < 4; i++) {
            T a = b ? b[c] : 0;
            for (ptrdiff_t ky = ky0; ky < ky1; ky++)
                for (ptrdiff_t kx = 0; kx < 3; kx++)
                    a += wt[(ky * 3 + kx) * C + c] * x[(i * S + kx) * XW + ky * dy + c];
            out[i * ystep + c] = a;
        }
}

/* cl4_block_s as a block of fwd_cl_rows (xstep: SW * XW) */
DW_CLONES static void FN(cl4_block)(T *out, ptrdiff_t ystep, const T *x, ptrdiff_t xstep,
                                    const T *wt, const T *b, const ptrdiff_t *p, ptrdiff_t ky0,
                                    ptrdiff_t ky1)
{
    (void)xstep;
    if (p[P_SW] == 1)
        FN(cl4_block_s)(out, ystep, x, wt, b, p, ky0, ky1, 1);
    else
        FN(cl4_block_s)(out, ystep, x, wt, b, p, ky0, ky1, 2);
}

/* Channels-last rows (M = 1, 3 taps wide, unit dilation, stride 1 or 2) four pixels at a
 * time through cl4_block where their taps all fall inside the input. Task: a range of output
 * rows. */
static void FN(fwd_cl4_task)(void *vctx, ptrdiff_t task)
{
    FN(fwd_cl_rows)(vctx, task, FN(cl4_block), 4);
}

/* whether four pixels at a time (fwd_cl4_task) pay: M = 1, 3 taps wide, unit dilation
 * across, stride 1 or 2 across, and a pixel's channels at least 1 kB. A channel step of two
 * vectors reads whole cache lines: at 1 kB a pixel and more, the lines of a pixel's taps
 * share few cache sets, and a half line left for the next step was gone by then. Measured
 * against the kernel that ran before (eight pixels at a time, or pixel by pixel where a row
 * has no eight inside the input), interleaved, 3 x 3, AVX2 (2-core AMD EPYC, Zen 3): one
 * thread, 0.62-1.02 x (1024 channels at 7 x 7, batch 8, 0.36 against 0.46 ms; 512 at 14 x 14,
 * 0.49 against 0.69; 256 at 28 x 28, 1.28 against 1.25); two threads 0.69-0.86 x (batch 32,
 * 512 at 14 x 14, 2.36 against 3.19 ms). Fewer channels: eight pixels at a time measured
 * faster (128 at 56 x 56, batch 8, one thread: 2.5 against 3.7 ms). */
static int FN(cl4_pays)(const ptrdiff_t *p)
{
    return p[P_M] == 1 && p[P_KW] == 3 && p[P_DW] == 1 && (p[P_SW] == 1 || p[P_SW] == 2) &&
           p[P_C] * (ptrdiff_t)sizeof(T) >= 1024;
}

static void FN(fwd_cl_task)(void *vctx, ptrdiff_t task)
{
    job_t *job = vctx;
    const ptrdiff_t *p = job->p;
    ptrdiff_t rows = p[P_N] * p[P_OH];
    ptrdiff_t first = rows * task / job->ntasks, last = rows * (task + 1) / job->ntasks;
    for (ptrdiff_t r = first; r < last; r++) {
        ptrdiff_t n = r / p[P_OH], oh = r % p[P_OH], ky0, ky1;
        ptrdiff_t ih0 = oh * p[P_SH] - p[P_PT];
        tap_range(ih0, p[P_DH], p[P_KH], p[P_H], &ky0, &ky1);
        for (ptrdiff_t ow = 0; ow < p[P_OW]; ow++) {
            ptrdiff_t iw0 = ow * p[P_SW] - p[P_PL], kx0, kx1;
            tap_range(iw0, p[P_DW], p[P_KW], p[P_W], &kx0, &kx1);
            const T *x = (const T *)job->x + n * p[P_XN] + ih0 * p[P_XH] + iw0 * p[P_XW];
            T *out = (T *)job->y + n * p[P_YN] + oh * p[P_YH] + ow * p[P_YW];
            FN(fwd_cl_pixel)(out, x, job->scratch, job->b, p, ky0, ky1, kx0, kx1);
        }
    }
}

