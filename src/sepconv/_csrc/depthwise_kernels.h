/* The kernels of the native depthwise convolution, included by depthwise.c once per element
 * type with T (float or double), VT (its 32-byte vector type) and SFX (f32 or f64) defined. */
#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)
#define FN(name) CAT(name, SFX)
#define L ((ptrdiff_t)(sizeof(VT) / sizeof(T)))

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
    g.ring = (p[P_KH] - 1) * p[P_DH] + 1;
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
    for (ptrdiff_t plane = first; plane < last; plane++) {
        ptrdiff_t n = plane / p[P_C], c = plane % p[P_C];
        const T *src = (const T *)job->x + n * p[P_XN] + c * p[P_XC];
        for (ptrdiff_t k = 0; k < g.ring; k++)
            tags[k] = -1;
        for (ptrdiff_t oh = 0; oh < p[P_OH]; oh++) {
            FN(ring_rows)(rows, ring, tags, src, oh, p, &g, zero);
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

/* ---- input gradient, NCHW --------------------------------------------------------------- */
/* acc[off + ow] += c * g[ow] for ow < OW */
DW_CLONES static void FN(axpy)(T *restrict acc, const T *restrict g, T c, ptrdiff_t OW)
{
    ptrdiff_t ow = 0;
    for (; ow + L <= OW; ow += L)
        *(VT *)(acc + ow) += c * *(const VT *)(g + ow);
    for (; ow < OW; ow++)
        acc[ow] += c * g[ow];
}

static void FN(gx_nchw_task)(void *vctx, ptrdiff_t task)
{
    job_t *job = vctx;
    const ptrdiff_t *p = job->p;
    ptrdiff_t planes = p[P_N] * p[P_C], M = p[P_M], KH = p[P_KH], KW = p[P_KW];
    ptrdiff_t first = planes * task / job->ntasks, last = planes * (task + 1) / job->ntasks;
    ptrdiff_t sw = p[P_SW], pl = p[P_PL];
    FN(ring_t) g = FN(ring_geometry)(p, (p[P_W] + (pl > 0 ? pl : 0)) / sw + 1);
    T *acc = malloc(g.rowlen * sizeof(T));
    if (!acc) {
        job->failed = 1;
        return;
    }
    const T *w = job->w;
    for (ptrdiff_t plane = first; plane < last; plane++) {
        ptrdiff_t n = plane / p[P_C], c = plane % p[P_C];
        for (ptrdiff_t ih = 0; ih < p[P_H]; ih++) {
            memset(acc, 0, g.rowlen * sizeof(T));
            for (ptrdiff_t ky = 0; ky < KH; ky++) {
                ptrdiff_t t = ih + p[P_PT] - ky * p[P_DH];
                if (t < 0 || t % p[P_SH])
                    continue;
                ptrdiff_t oh = t / p[P_SH];
                if (oh >= p[P_OH])
                    continue;
                for (ptrdiff_t m = 0; m < M; m++) {
                    ptrdiff_t o = c * M + m;
                    const T *grow = (const T *)job->gy + n * p[P_YN] + o * p[P_YC] +
                                    oh * p[P_YH];
                    for (ptrdiff_t kx = 0; kx < KW; kx++) {
                        ptrdiff_t col = kx * p[P_DW];
                        FN(axpy)(acc + (col % sw) * g.plen + col / sw, grow,
                                 w[(o * KH + ky) * KW + kx], p[P_OW]);
                    }
                }
            }
            T *dst = (T *)job->gx + n * p[P_XN] + c * p[P_XC] + ih * p[P_XH];
            if (sw == 1 && pl >= 0) {
                memcpy(dst, acc + pl, p[P_W] * sizeof(T));
            } else {
                for (ptrdiff_t iw = 0; iw < p[P_W]; iw++) {
                    ptrdiff_t col = iw + pl;
                    dst[iw] = col < 0 ? (T)0 : acc[(col % sw) * g.plen + col / sw];
                }
            }
        }
    }
    free(acc);
}

/* ---- input gradient, channels-last ------------------------------------------------------ */
DW_CLONES static void FN(gx_cl_pixel)(T *restrict out, const T *gy, const T *wt,
                                      const ptrdiff_t *p, ptrdiff_t ih, ptrdiff_t iw,
                                      ptrdiff_t n)
{
    ptrdiff_t C = p[P_C], M = p[P_M], CM = C * M, KH = p[P_KH], KW = p[P_KW];
    ptrdiff_t c = 0;
    const T *base = gy + n * p[P_YN];
    if (M == 1) {
        for (; c + L <= C; c += L) {
            VT a = (VT){0};
            for (ptrdiff_t ky = 0; ky < KH; ky++) {
                ptrdiff_t t = ih + p[P_PT] - ky * p[P_DH];
                if (t < 0 || t % p[P_SH] || t / p[P_SH] >= p[P_OH])
                    continue;
                for (ptrdiff_t kx = 0; kx < KW; kx++) {
                    ptrdiff_t u = iw + p[P_PL] - kx * p[P_DW];
                    if (u < 0 || u % p[P_SW] || u / p[P_SW] >= p[P_OW])
                        continue;
                    a += *(const VT *)(wt + (ky * KW + kx) * CM + c) *
                         *(const VT *)(base + t / p[P_SH] * p[P_YH] + u / p[P_SW] * p[P_YW] + c);
                }
            }
            *(VT *)(out + c) = a;
        }
    }
    for (; c < C; c++) {
        T a = 0;
        for (ptrdiff_t ky = 0; ky < KH; ky++) {
            ptrdiff_t t = ih + p[P_PT] - ky * p[P_DH];
            if (t < 0 || t % p[P_SH] || t / p[P_SH] >= p[P_OH])
                continue;
            for (ptrdiff_t kx = 0; kx < KW; kx++) {
                ptrdiff_t u = iw + p[P_PL] - kx * p[P_DW];
                if (u < 0 || u % p[P_SW] || u / p[P_SW] >= p[P_OW])
                    continue;
                const T *g = base + t / p[P_SH] * p[P_YH] + u / p[P_SW] * p[P_YW];
                for (ptrdiff_t m = 0; m < M; m++)
                    a += wt[(ky * KW + kx) * CM + c * M + m] * g[c * M + m];
            }
        }
        out[c] = a;
    }
}

static void FN(gx_cl_task)(void *vctx, ptrdiff_t task)
{
    job_t *job = vctx;
    const ptrdiff_t *p = job->p;
    ptrdiff_t rows = p[P_N] * p[P_H];
    ptrdiff_t first = rows * task / job->ntasks, last = rows * (task + 1) / job->ntasks;
    for (ptrdiff_t r = first; r < last; r++) {
        ptrdiff_t n = r / p[P_H], ih = r % p[P_H];
        for (ptrdiff_t iw = 0; iw < p[P_W]; iw++)
            FN(gx_cl_pixel)((T *)job->gx + n * p[P_XN] + ih * p[P_XH] + iw * p[P_XW], job->gy,
                            job->scratch, p, ih, iw, n);
    }
}

/* ---- weight gradient, NCHW -------------------------------------------------------------- */
/* acc[t] += g[ow] * rows[ky][off[kx] + ow] over ow, tap t = ky * KW + kx, one vector each */
DW_CLONES static void FN(gw_row)(VT *restrict acc, T *restrict tail, const T *restrict grow,
                                 const T *const *rows, ptrdiff_t KH, ptrdiff_t KW,
                                 const ptrdiff_t *off, ptrdiff_t OW)
{
    ptrdiff_t ow = 0;
    for (; ow + L <= OW; ow += L) {
        VT gv = *(const VT *)(grow + ow);
        for (ptrdiff_t ky = 0; ky < KH; ky++) {
            if (!rows[ky])
                continue;
            for (ptrdiff_t kx = 0; kx < KW; kx++)
                acc[ky * KW + kx] += gv * *(const VT *)(rows[ky] + off[kx] + ow);
        }
    }
    for (; ow < OW; ow++)
        for (ptrdiff_t ky = 0; ky < KH; ky++) {
            if (!rows[ky])
                continue;
            for (ptrdiff_t kx = 0; kx < KW; kx++)
                tail[ky * KW + kx] += grow[ow] * rows[ky][off[kx] + ow];
        }
}

/* task: one output channel o, summed over the batch in order */
static void FN(gw_nchw_task)(void *vctx, ptrdiff_t o)
{
    job_t *job = vctx;
    const ptrdiff_t *p = job->p;
    ptrdiff_t M = p[P_M], KH = p[P_KH], KW = p[P_KW], taps = KH * KW, c = o / M;
    FN(ring_t) g = FN(ring_geometry)(p, 0);
    T *ring = malloc(g.ring * g.rowlen * sizeof(T));
    const T **rows = malloc(KH * sizeof(T *));
    ptrdiff_t *off = malloc(KW * sizeof(ptrdiff_t)), *tags = malloc(g.ring * sizeof(ptrdiff_t));
    VT *acc = malloc(taps * sizeof(VT));
    T *tail = calloc(taps, sizeof(T));
    if (!ring || !rows || !off || !tags || !acc || !tail) {
        job->failed = 1;
        goto done;
    }
    for (ptrdiff_t t = 0; t < taps; t++)
        acc[t] = (VT){0};
    for (ptrdiff_t kx = 0; kx < KW; kx++) {
        ptrdiff_t col = kx * p[P_DW];
        off[kx] = (col % g.sw) * g.plen + col / g.sw;
    }
    for (ptrdiff_t n = 0; n < p[P_N]; n++) {
        const T *src = (const T *)job->x + n * p[P_XN] + c * p[P_XC];
        for (ptrdiff_t k = 0; k < g.ring; k++)
            tags[k] = -1;
        for (ptrdiff_t oh = 0; oh < p[P_OH]; oh++) {
            FN(ring_rows)(rows, ring, tags, src, oh, p, &g, NULL);
            const T *grow = (const T *)job->gy + n * p[P_YN] + o * p[P_YC] + oh * p[P_YH];
            FN(gw_row)(acc, tail, grow, rows, KH, KW, off, p[P_OW]);
        }
    }
    for (ptrdiff_t t = 0; t < taps; t++) {
        double s = tail[t];
        for (ptrdiff_t i = 0; i < L; i++)
            s += acc[t][i];
        ((T *)job->gw)[o * taps + t] = (T)s;
    }
done:
    free(ring);
    free((void *)rows);
    free(off);
    free(tags);
    free(acc);
    free(tail);
}

/* ---- weight gradient, channels-last ----------------------------------------------------- */
/* task: a fixed band of output rows of one image; partial sums (taps, C * M) in scratch */
DW_CLONES static void FN(gw_cl_task)(void *vctx, ptrdiff_t task)
{
    job_t *job = vctx;
    const ptrdiff_t *p = job->p;
    ptrdiff_t C = p[P_C], M = p[P_M], CM = C * M, KH = p[P_KH], KW = p[P_KW];
    ptrdiff_t bands = job->per_task, n = task / bands, band = task % bands;
    ptrdiff_t oh0 = p[P_OH] * band / bands, oh1 = p[P_OH] * (band + 1) / bands;
    T *part = (T *)job->scratch + task * KH * KW * CM;
    memset(part, 0, KH * KW * CM * sizeof(T));
    for (ptrdiff_t oh = oh0; oh < oh1; oh++) {
        ptrdiff_t ih0 = oh * p[P_SH] - p[P_PT], ky0, ky1;
        tap_range(ih0, p[P_DH], KH, p[P_H], &ky0, &ky1);
        for (ptrdiff_t ow = 0; ow < p[P_OW]; ow++) {
            ptrdiff_t iw0 = ow * p[P_SW] - p[P_PL], kx0, kx1;
            tap_range(iw0, p[P_DW], KW, p[P_W], &kx0, &kx1);
            const T *g = (const T *)job->gy + n * p[P_YN] + oh * p[P_YH] + ow * p[P_YW];
            const T *x = (const T *)job->x + n * p[P_XN] + ih0 * p[P_XH] + iw0 * p[P_XW];
            for (ptrdiff_t ky = ky0; ky < ky1; ky++)
                for (ptrdiff_t kx = kx0; kx < kx1; kx++) {
                    const T *s = x + ky * p[P_DH] * p[P_XH] + kx * p[P_DW] * p[P_XW];
                    T *acc = part + (ky * KW + kx) * CM;
                    ptrdiff_t o = 0;
                    if (M == 1)
                        for (; o + L <= CM; o += L)
                            *(VT *)(acc + o) += *(const VT *)(g + o) * *(const VT *)(s + o);
                    for (; o < CM; o++)
                        acc[o] += g[o] * s[o / M];
                }
        }
    }
}

/* ---- entry points ----------------------------------------------------------------------- */
static ptrdiff_t FN(task_count)(ptrdiff_t units, int threads)
{
    ptrdiff_t n = threads <= 1 ? 1 : 8 * (ptrdiff_t)threads;
    return n < units ? n : (units > 0 ? units : 1);
}

static T *FN(transposed_weights)(const ptrdiff_t *p, const T *w)
{
    ptrdiff_t CM = p[P_C] * p[P_M], taps = p[P_KH] * p[P_KW];
    T *wt = malloc(taps * CM * sizeof(T));
    if (wt)
        for (ptrdiff_t o = 0; o < CM; o++)
            for (ptrdiff_t t = 0; t < taps; t++)
                wt[t * CM + o] = w[o * taps + t];
    return wt;
}

/* Returns 0, 1 (out of memory) or 2 (a layout neither NCHW nor channels-last). */
DW_EXPORT int FN(dw_forward)(const ptrdiff_t *params, const T *x, const T *w, const T *b, T *y)
{
    job_t job = {0};
    memcpy(job.p, params, sizeof(job.p));
    job.x = x;
    job.w = w;
    job.b = b;
    job.y = y;
    int threads = (int)params[P_THREADS];
    if (nchw_layout(params)) {
        FN(flat_t) g = FN(flat_geometry)(params);
        job.ntasks = FN(task_count)(params[P_N] * params[P_C], threads);
        if (params[P_OW] < FLAT_MAX_WIDTH &&
            g.phase * params[P_SH] * params[P_SW] * (ptrdiff_t)sizeof(T) <= FLAT_MAX_BYTES)
            parallel_for(FN(fwd_flat_task), &job, job.ntasks, threads);
        else
            parallel_for(FN(fwd_nchw_task), &job, job.ntasks, threads);
    } else if (cl_layout(params)) {
        if (!(job.scratch = FN(transposed_weights)(params, w)))
            return 1;
        job.ntasks = FN(task_count)(params[P_N] * params[P_OH], threads);
        parallel_for(FN(fwd_cl_task), &job, job.ntasks, threads);
        free(job.scratch);
    } else {
        return 2;
    }
    return job.failed;
}

/* gx: input gradient with the input's geometry (params' N, C, H, W and X strides); gy: the
 * output gradient (params' OH, OW and Y strides). */
DW_EXPORT int FN(dw_grad_input)(const ptrdiff_t *params, const T *gy, const T *w, T *gx)
{
    job_t job = {0};
    memcpy(job.p, params, sizeof(job.p));
    job.gy = gy;
    job.w = w;
    job.gx = gx;
    int threads = (int)params[P_THREADS];
    if (nchw_layout(params)) {
        job.ntasks = FN(task_count)(params[P_N] * params[P_C], threads);
        parallel_for(FN(gx_nchw_task), &job, job.ntasks, threads);
    } else if (cl_layout(params)) {
        if (!(job.scratch = FN(transposed_weights)(params, w)))
            return 1;
        job.ntasks = FN(task_count)(params[P_N] * params[P_H], threads);
        parallel_for(FN(gx_cl_task), &job, job.ntasks, threads);
        free(job.scratch);
    } else {
        return 2;
    }
    return job.failed;
}

/* gw: (C * M, KH, KW) contiguous. */
DW_EXPORT int FN(dw_grad_weight)(const ptrdiff_t *params, const T *x, const T *gy, T *gw)
{
    job_t job = {0};
    memcpy(job.p, params, sizeof(job.p));
    job.x = x;
    job.gy = gy;
    job.gw = gw;
    int threads = (int)params[P_THREADS];
    ptrdiff_t CM = params[P_C] * params[P_M], taps = params[P_KH] * params[P_KW];
    if (nchw_layout(params)) {
        parallel_for(FN(gw_nchw_task), &job, CM, threads);
        return job.failed;
    }
    if (!cl_layout(params))
        return 2;
    /* a partition fixed by the shapes: bands of about 8 output rows of each image */
    job.per_task = (params[P_OH] + 7) / 8;
    job.ntasks = params[P_N] * job.per_task;
    if (!(job.scratch = malloc(job.ntasks * taps * CM * sizeof(T))))
        return 1;
    parallel_for(FN(gw_cl_task), &job, job.ntasks, threads);
    const T *part = job.scratch;
    for (ptrdiff_t i = 0; i < taps * CM; i++) {
        double s = 0;
        for (ptrdiff_t t = 0; t < job.ntasks; t++)
            s += part[t * taps * CM + i];
        ptrdiff_t tap = i / CM, o = i % CM;
        gw[o * taps + tap] = (T)s;
    }
    free(job.scratch);
    return 0;
}

#undef CAT_
#undef CAT
#undef FN
#undef L
