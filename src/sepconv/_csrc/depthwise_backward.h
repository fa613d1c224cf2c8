/* The gradient kernels and the entry points of the native depthwise convolution, included by
 * depthwise.c after depthwise_kernels.h, once per element type. */
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

#define GX_LIST_MAX 32 /* kernel rows and columns of the listed path (M = 1) */

/* M = 1: an input pixel's taps listed once (divisions per pixel, not per channel vector) */
DW_CLONES static void FN(gx_cl_listed)(T *restrict out, const T *base, const T *wt,
                                       const ptrdiff_t *p, int nr, const ptrdiff_t *rk,
                                       const ptrdiff_t *ro, int nc, const ptrdiff_t *ck,
                                       const ptrdiff_t *co)
{
    ptrdiff_t C = p[P_C], KW = p[P_KW], c = 0;
    for (; c + L <= C; c += L) {
        VT a = (VT){0};
        for (int i = 0; i < nr; i++)
            for (int j = 0; j < nc; j++)
                a += *(const VT *)(wt + (rk[i] * KW + ck[j]) * C + c) *
                     *(const VT *)(base + ro[i] * p[P_YH] + co[j] * p[P_YW] + c);
        *(VT *)(out + c) = a;
    }
    for (; c < C; c++) {
        T a = 0;
        for (int i = 0; i < nr; i++)
            for (int j = 0; j < nc; j++)
                a += wt[(rk[i] * KW + ck[j]) * C + c] *
                     base[ro[i] * p[P_YH] + co[j] * p[P_YW] + c];
        out[c] = a;
    }
}

static void FN(gx_cl_task)(void *vctx, ptrdiff_t task)
{
    job_t *job = vctx;
    const ptrdiff_t *p = job->p;
    ptrdiff_t rows = p[P_N] * p[P_H];
    ptrdiff_t first = rows * task / job->ntasks, last = rows * (task + 1) / job->ntasks;
    int listed = p[P_M] == 1 && p[P_KH] <= GX_LIST_MAX && p[P_KW] <= GX_LIST_MAX;
    ptrdiff_t rk[GX_LIST_MAX], ro[GX_LIST_MAX], ck[GX_LIST_MAX], co[GX_LIST_MAX];
    for (ptrdiff_t r = first; r < last; r++) {
        ptrdiff_t n = r / p[P_H], ih = r % p[P_H];
        T *out = (T *)job->gx + n * p[P_XN] + ih * p[P_XH];
        if (!listed) {
            for (ptrdiff_t iw = 0; iw < p[P_W]; iw++)
                FN(gx_cl_pixel)(out + iw * p[P_XW], job->gy, job->scratch, p, ih, iw, n);
            continue;
        }
        int nr = tap_list(ih, p[P_PT], p[P_DH], p[P_SH], p[P_KH], p[P_OH], rk, ro);
        for (ptrdiff_t iw = 0; iw < p[P_W]; iw++) {
            int nc = tap_list(iw, p[P_PL], p[P_DW], p[P_SW], p[P_KW], p[P_OW], ck, co);
            FN(gx_cl_listed)(out + iw * p[P_XW], (const T *)job->gy + n * p[P_YN],
                             job->scratch, p, nr, rk, ro, nc, ck, co);
        }
    }
}
#undef GX_LIST_MAX

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

/* gw[t] = tail[t] + the lanes of acc[t] summed in double, t < taps */
static void FN(store_taps)(T *gw, const VT *acc, const T *tail, ptrdiff_t taps)
{
    for (ptrdiff_t t = 0; t < taps; t++) {
        double s = tail[t];
        for (ptrdiff_t i = 0; i < L; i++)
            s += acc[t][i];
        gw[t] = (T)s;
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
    FN(store_taps)((T *)job->gw + o * taps, acc, tail, taps);
done:
    free(ring);
    free((void *)rows);
    free(off);
    free(tags);
    free(acc);
    free(tail);
}

/* ---- weight gradient, 3-D, NCDHW -------------------------------------------------------- */
/* task: one output channel o, summed over the batch in order: each output-gradient row
 * against the KT x KH input rows of its frames (gw_row over KT * KH rows), the frames as the
 * forward reads them (frames_at) */
static void FN(gw3d_nchw_task)(void *vctx, ptrdiff_t o)
{
    FN(job3_t) *job3 = vctx;
    job_t *job = &job3->job;
    const ptrdiff_t *p = job->p, *q = job3->q;
    const ptrdiff_t M = p[P_M], KW = p[P_KW], rowsn = q[Q_KT] * p[P_KH], taps = rowsn * KW;
    const ptrdiff_t c = o / M;
    FN(frames_t) f;
    int ok = FN(frames_init)(&f, p, q);
    const T **rows = malloc(rowsn * sizeof(T *));
    ptrdiff_t *off = malloc(KW * sizeof(ptrdiff_t));
    VT *acc = malloc(taps * sizeof(VT));
    T *tail = calloc(taps, sizeof(T));
    if (!ok || !rows || !off || !acc || !tail) {
        job->failed = 1;
        goto done;
    }
    for (ptrdiff_t t = 0; t < taps; t++)
        acc[t] = (VT){0};
    FN(tap_offsets)(off, p, &f.g);
    for (ptrdiff_t n = 0; n < p[P_N]; n++) {
        const T *src = (const T *)job->x + n * p[P_XN] + c * p[P_XC];
        for (ptrdiff_t k = 0; k < f.R; k++)
            f.held[k] = -1;
        for (ptrdiff_t od = 0; od < q[Q_OD]; od++) {
            FN(frames_at)(&f, src, od, p, q);
            for (ptrdiff_t oh = 0; oh < p[P_OH]; oh++) {
                FN(frames_rows)(rows, &f, oh, p, q);
                const T *grow = (const T *)job->gy + n * p[P_YN] + o * p[P_YC] +
                                od * q[Q_YD] + oh * p[P_YH];
                FN(gw_row)(acc, tail, grow, rows, rowsn, KW, off, p[P_OW]);
            }
        }
    }
    FN(store_taps)((T *)job->gw + o * taps, acc, tail, taps);
done:
    FN(frames_free)(&f);
    free((void *)rows);
    free(off);
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

/* ---- 3 x 3 at stride 2 (dilation 1, M = 1), NCHW, portable vectors ------------------------ */
/* The method of gx_s2_nchw512_task and gw_s2_nchw512_task (depthwise_avx512.h) with the
 * vectors of GCC's extensions, for processors without AVX-512 (or with it turned off): even
 * and odd columns split and interleaved by shuffles, a row's ends loaded lane by lane. */
#if defined(DW_AVX512_FLOAT)
#define S2_EVEN {0, 2, 4, 6, 8, 10, 12, 14}
#define S2_ODD {1, 3, 5, 7, 9, 11, 13, 15}
#define S2_LO {0, 8, 1, 9, 2, 10, 3, 11}
#define S2_HI {4, 12, 5, 13, 6, 14, 7, 15}
#else
#define S2_EVEN {0, 2, 4, 6}
#define S2_ODD {1, 3, 5, 7}
#define S2_LO {0, 4, 1, 5}
#define S2_HI {2, 6, 3, 7}
#endif

/* rows of a plane (n columns, pitch `pitch`) copied into buf at column `left` of rows
 * `width` long, zeros around */
static void FN(padded_plane)(T *restrict buf, const T *restrict src, ptrdiff_t rows,
                             ptrdiff_t n, ptrdiff_t pitch, ptrdiff_t left, ptrdiff_t width)
{
    for (ptrdiff_t r = 0; r < rows; r++) {
        T *d = buf + r * width;
        FN(zero)(d, left);
        FN(copy)(d + left, src + r * pitch, n);
        FN(zero)(d + left + n, width - left - n);
    }
}

/* Input gradient: padded column u = iw + pl gets g[u / 2] w[0] + g[u / 2 - 1] w[2] (u even),
 * g[(u - 1) / 2] w[1] (u odd). Task: a range of planes; each plane's output gradient is
 * copied with zero margins first, so that every load is a whole vector. */
DW_CLONES static void FN(gx_s2_nchw_task)(void *vctx, ptrdiff_t task)
{
    job_t *job = vctx;
    const ptrdiff_t *p = job->p;
    ptrdiff_t planes = p[P_N] * p[P_C], H = p[P_H], W = p[P_W], OH = p[P_OH], OW = p[P_OW];
    ptrdiff_t first = planes * task / job->ntasks, last = planes * (task + 1) / job->ntasks;
    ptrdiff_t pt = p[P_PT], pl = p[P_PL];
    /* columns j0 - 1 .. j0 + L - 1 for j0 < (W + pl) / 2 + L: a margin of L on the left */
    ptrdiff_t width = L + ((W + pl) / 2 + 3 * L > OW ? (W + pl) / 2 + 3 * L : OW + L);
    T *G = malloc(OH * width * sizeof(T));
    if (!G) {
        job->failed = 1;
        return;
    }
    const FN(vidx) ilo = S2_LO, ihi = S2_HI;
    for (ptrdiff_t plane = first; plane < last; plane++) {
        ptrdiff_t n = plane / p[P_C], c = plane % p[P_C];
        const T *w = (const T *)job->w + c * 9;
        FN(padded_plane)(G, (const T *)job->gy + n * p[P_YN] + c * p[P_YC], OH, OW, p[P_YH], L,
                         width);
        T *xc = (T *)job->gx + n * p[P_XN] + c * p[P_XC];
        for (ptrdiff_t ih = 0; ih < H; ih++) {
            const T *grow[2];
            const T *wrow[2];
            ptrdiff_t nrows = FN(s2_rows)(ih, pt, OH, G + L, width, w, grow, wrow);
            T *out = xc + ih * p[P_XH];
            for (ptrdiff_t j0 = 0; 2 * j0 < W + pl; j0 += L) {
                VT even = (VT){0}, odd = even;
                for (ptrdiff_t r = 0; r < nrows; r++) {
                    VT g = *(const VT *)(grow[r] + j0), gm = *(const VT *)(grow[r] + j0 - 1);
                    even += wrow[r][2] * gm;
                    even += wrow[r][0] * g;
                    odd += wrow[r][1] * g;
                }
                VT halves[2] = {__builtin_shuffle(even, odd, ilo),
                                __builtin_shuffle(even, odd, ihi)};
                for (int half = 0; half < 2; half++) {
                    ptrdiff_t u0 = 2 * j0 + half * L; /* padded column of lane 0 */
                    ptrdiff_t lo = pl - u0, hi = W + pl - u0;
                    lo = lo < 0 ? 0 : lo;
                    hi = hi > L ? L : hi;
                    if (lo == 0 && hi == L)
                        *(VT *)(out + u0 - pl) = halves[half];
                    else
                        for (ptrdiff_t i = lo; i < hi; i++)
                            out[u0 - pl + i] = halves[half][i];
                }
            }
        }
    }
    free(G);
}

/* Weight gradient. Task: one channel, summed over the batch in order; tap kx of output
 * columns ow0 .. ow0 + L - 1 reads the even lanes of the input from column 2 ow0 - pl + kx.
 * Each image's input plane (zero margins) and output gradient (zeros past OW) are copied
 * first, so that every load is a whole vector. */
DW_CLONES static void FN(gw_s2_nchw_task)(void *vctx, ptrdiff_t c)
{
    job_t *job = vctx;
    const ptrdiff_t *p = job->p;
    ptrdiff_t H = p[P_H], W = p[P_W], OH = p[P_OH], OW = p[P_OW], pt = p[P_PT], pl = p[P_PL];
    ptrdiff_t gwidth = (OW + L - 1) / L * L;
    /* input column 2 ow0 - pl + i at pl + 2 ow0 + i, i < 2 L + 2 */
    ptrdiff_t xwidth = pl + (W > 2 * gwidth + 2 * L + 2 ? W : 2 * gwidth + 2 * L + 2);
    T *X = malloc((H * xwidth + OH * gwidth) * sizeof(T)), *G = X + H * xwidth;
    if (!X) {
        job->failed = 1;
        return;
    }
    const FN(vidx) even_idx = S2_EVEN, odd_idx = S2_ODD;
    VT a[9];
    for (int t = 0; t < 9; t++)
        a[t] = (VT){0};
    for (ptrdiff_t n = 0; n < p[P_N]; n++) {
        FN(padded_plane)(X, (const T *)job->x + n * p[P_XN] + c * p[P_XC], H, W, p[P_XH], pl,
                         xwidth);
        FN(padded_plane)(G, (const T *)job->gy + n * p[P_YN] + c * p[P_YC], OH, OW, p[P_YH], 0,
                         gwidth);
        for (ptrdiff_t ow0 = 0; ow0 < OW; ow0 += L) {
            for (ptrdiff_t oh = 0; oh < OH; oh++) {
                VT g = *(const VT *)(G + oh * gwidth + ow0);
#pragma GCC unroll 3
                for (int ky = 0; ky < 3; ky++) {
                    ptrdiff_t ih = 2 * oh + ky - pt;
                    if (ih < 0 || ih >= H)
                        continue;
                    const T *row = X + ih * xwidth + 2 * ow0;
                    VT lo = *(const VT *)row, hi = *(const VT *)(row + L);
                    VT lo2 = *(const VT *)(row + 2), hi2 = *(const VT *)(row + 2 + L);
                    a[3 * ky] += g * __builtin_shuffle(lo, hi, even_idx);
                    a[3 * ky + 1] += g * __builtin_shuffle(lo, hi, odd_idx);
                    a[3 * ky + 2] += g * __builtin_shuffle(lo2, hi2, even_idx);
                }
            }
        }
    }
    free(X);
    FN(sum_taps9)((T *)job->gw + c * 9, a, NULL);
}

/* Weight gradient of the 3 x 3 kernel at unit stride (any dilation, M = 1) on narrow planes
 * (gw3_nchw_task's vectors run along a row, and rows narrower than a few vectors leave most
 * columns to its scalar loop): each image's input plane is copied zero-padded at a pitch of
 * OW + 2 dw columns and its output gradient at the same pitch (zeros past OW), so that tap
 * (ky, kx) is the dot product of the two flat runs at offset ky dh pitch + kx dw. Task: one
 * channel, summed over the batch in order. */
DW_CLONES static void FN(gw3_flat_nchw_task)(void *vctx, ptrdiff_t c)
{
    job_t *job = vctx;
    const ptrdiff_t *p = job->p;
    ptrdiff_t H = p[P_H], W = p[P_W], OH = p[P_OH], OW = p[P_OW], dh = p[P_DH], dw = p[P_DW];
    ptrdiff_t pt = p[P_PT], pl = p[P_PL];
    ptrdiff_t pitch = OW + 2 * dw, rows = OH + 2 * dh;
    ptrdiff_t nv = (OH * pitch + L - 1) / L, reach = 2 * dh * pitch + 2 * dw;
    ptrdiff_t xlen = nv * L + reach > rows * pitch ? nv * L + reach : rows * pitch;
    T *X = calloc(xlen + nv * L, sizeof(T)), *G = X + xlen;
    if (!X) {
        job->failed = 1;
        return;
    }
    ptrdiff_t off[9];
    for (int t = 0; t < 9; t++)
        off[t] = t / 3 * dh * pitch + t % 3 * dw;
    /* padded columns [u0, u1) hold input columns u - pl */
    ptrdiff_t u0 = pl > 0 ? pl : 0, u1 = W + pl < pitch ? W + pl : pitch;
    VT a[9];
    for (int t = 0; t < 9; t++)
        a[t] = (VT){0};
    for (ptrdiff_t n = 0; n < p[P_N]; n++) {
        const T *xc = (const T *)job->x + n * p[P_XN] + c * p[P_XC];
        const T *gc = (const T *)job->gy + n * p[P_YN] + c * p[P_YC];
        for (ptrdiff_t r = 0; r < rows; r++) {
            ptrdiff_t ih = r - pt;
            T *d = X + r * pitch;
            if (ih < 0 || ih >= H || u1 <= u0) {
                FN(zero)(d, pitch);
                continue;
            }
            FN(zero)(d, u0);
            FN(copy)(d + u0, xc + ih * p[P_XH] + u0 - pl, u1 - u0);
            FN(zero)(d + u1, pitch - u1);
        }
        for (ptrdiff_t oh = 0; oh < OH; oh++)
            FN(copy)(G + oh * pitch, gc + oh * p[P_YH], OW); /* zeros past OW stay */
        for (ptrdiff_t q = 0; q < nv * L; q += L) {
            VT g = *(const VT *)(G + q);
#pragma GCC unroll 9
            for (int t = 0; t < 9; t++)
                a[t] += g * *(const VT *)(X + q + off[t]);
        }
    }
    free(X);
    FN(sum_taps9)((T *)job->gw + c * 9, a, NULL);
}

/* whether the two tasks above apply: 3 x 3 at stride 2, dilation 1, M = 1 (NCHW) */
static int FN(grad_s2_portable_applies)(const ptrdiff_t *p)
{
    return p[P_KH] == 3 && p[P_KW] == 3 && p[P_SH] == 2 && p[P_SW] == 2 && p[P_DH] == 1 &&
           p[P_DW] == 1 && p[P_M] == 1;
}
#undef S2_EVEN
#undef S2_ODD
#undef S2_LO
#undef S2_HI

/* ---- weight gradient, 3 x 3, M = 1: nine accumulators in registers ---------------------- */
/* One output-gradient row g against the three input rows r[0..2] of its kernel rows at unit
 * dilation, the padding left and right the same, 0 or 1 (r[ky][ow + kx] is tap (ky, kx) of
 * column ow), rows more than a vector wide: every column in vectors, the rows read in place
 * as fwd_rows33_direct reads them (both ends' taps the centre vector shifted by a lane, the
 * padding's zero shifted in); where the width is not a multiple of L, a last vector
 * overlapping the one before with the products of the columns already counted zeroed (the
 * lanes of `keep`). Adds into the nine accumulators a[3 ky + kx]: one load of g serves the
 * three kernel rows, and nine independent chains keep both FMA pipes busy (measured, batch 8,
 * 32 channels at 112 x 112, two threads: a row at a time, three chains, ran 1.3 x slower). */
static inline __attribute__((always_inline)) void
FN(gw3_rows_in_place)(VT *a, const T *g, const T *const *r, ptrdiff_t pl, ptrdiff_t OW,
                      FN(vidx) keep)
{
    const ptrdiff_t nfull = OW / L, rem = OW % L;
    const VT z = {0};
    const FN(vidx) first = SHIFT_IN_FIRST, last = SHIFT_IN_LAST;
    VT a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3], a4 = a[4], a5 = a[5], a6 = a[6], a7 = a[7],
       a8 = a[8];
    const T *r0 = r[0], *r1 = r[1], *r2 = r[2];
#define LD(r, i) (*(const VT *)((r) + (i)))
#define ACC(A0, A1, A2, gv, l, ce, rt)                                                         \
    do {                                                                                       \
        A0 += (gv) * (l);                                                                      \
        A1 += (gv) * (ce);                                                                     \
        A2 += (gv) * (rt);                                                                     \
    } while (0)
#define KEPT(v) ((VT)((FN(vidx))(v) & keep))
#define ACC_KEPT(A0, A1, A2, gv, l, ce, rt)                                                    \
    do {                                                                                       \
        A0 += KEPT((gv) * (l));                                                                \
        A1 += KEPT((gv) * (ce));                                                               \
        A2 += KEPT((gv) * (rt));                                                               \
    } while (0)
/* the three kernel rows at one vector of columns: M(accumulators, input row) */
#define ROWS3(M)                                                                               \
    do {                                                                                       \
        M(a0, a1, a2, r0);                                                                     \
        M(a3, a4, a5, r1);                                                                     \
        M(a6, a7, a8, r2);                                                                     \
    } while (0)
    if (pl == 0) {
        VT gv;
        ptrdiff_t x;
#define INSIDE(A0, A1, A2, rr) ACC(A0, A1, A2, gv, LD(rr, x), LD(rr, x + 1), LD(rr, x + 2))
#define INSIDE_KEPT(A0, A1, A2, rr)                                                            \
    ACC_KEPT(A0, A1, A2, gv, LD(rr, x), LD(rr, x + 1), LD(rr, x + 2))
        for (x = 0; x < nfull * L; x += L) {
            gv = LD(g, x);
            ROWS3(INSIDE);
        }
        if (rem) {
            x = OW - L;
            gv = LD(g, x);
            ROWS3(INSIDE_KEPT);
        }
#undef INSIDE_KEPT
#undef INSIDE
    } else {
        /* rr + 1 is the input row; its column ow - 1 + kx is tap kx */
        VT gv = LD(g, 0), ce;
        ptrdiff_t x = 0;
#define FIRST(A0, A1, A2, rr)                                                                  \
    do {                                                                                       \
        ce = LD(rr + 1, 0);                                                                    \
        ACC(A0, A1, A2, gv, __builtin_shuffle(ce, z, first), ce, LD(rr + 1, 1));               \
    } while (0)
#define MIDDLE(A0, A1, A2, rr)                                                                 \
    ACC(A0, A1, A2, gv, LD(rr + 1, x - 1), LD(rr + 1, x), LD(rr + 1, x + 1))
#define LAST(A0, A1, A2, rr)                                                                   \
    do {                                                                                       \
        ce = LD(rr + 1, x);                                                                    \
        ACC(A0, A1, A2, gv, LD(rr + 1, x - 1), ce, __builtin_shuffle(ce, z, last));            \
    } while (0)
#define LAST_KEPT(A0, A1, A2, rr)                                                              \
    do {                                                                                       \
        ce = LD(rr + 1, x);                                                                    \
        ACC_KEPT(A0, A1, A2, gv, LD(rr + 1, x - 1), ce, __builtin_shuffle(ce, z, last));       \
    } while (0)
        ROWS3(FIRST);
        for (x = L; x + L < OW; x += L) {
            gv = LD(g, x);
            ROWS3(MIDDLE);
        }
        if (x + L == OW) { /* the last full vector ends the row */
            gv = LD(g, x);
            ROWS3(LAST);
        } else if (rem) {
            x = OW - L;
            gv = LD(g, x);
            ROWS3(LAST_KEPT);
        }
#undef LAST_KEPT
#undef LAST
#undef MIDDLE
#undef FIRST
    }
    a[0] = a0;
    a[1] = a1;
    a[2] = a2;
    a[3] = a3;
    a[4] = a4;
    a[5] = a5;
    a[6] = a6;
    a[7] = a7;
    a[8] = a8;
#undef ROWS3
#undef ACC_KEPT
#undef KEPT
#undef ACC
#undef LD
}

/* NCHW at unit stride. Task: one channel, summed over the batch in order. For each output
 * row and kernel row, the columns whose three taps fall inside the input row run as vectors
 * (one output-gradient load, three input loads, three products a vector); the columns near
 * the borders run one at a time into scalar sums, or as vectors too where gw3_rows_in_place
 * applies. */
DW_CLONES static void FN(gw3_nchw_task)(void *vctx, ptrdiff_t c)
{
    job_t *job = vctx;
    const ptrdiff_t *p = job->p;
    ptrdiff_t H = p[P_H], W = p[P_W], OH = p[P_OH], OW = p[P_OW];
    ptrdiff_t dh = p[P_DH], dw = p[P_DW], pt = p[P_PT], pl = p[P_PL];
    ptrdiff_t lo = pl > 0 ? pl : 0, hi = W - 2 * dw + pl;
    if (hi > OW)
        hi = OW;
    if (hi < lo)
        hi = lo;
    ptrdiff_t vend = lo + (hi - lo) / L * L;
    VT a[9];
    T s[9];
    for (int t = 0; t < 9; t++) {
        a[t] = (VT){0};
        s[t] = 0;
    }
    const int in_place = dh == 1 && dw == 1 && (pl == 0 || pl == 1) && OW == W + 2 * pl - 2 &&
                         OW > L;
    FN(vidx) keep; /* the lanes of an overlapping last vector not counted before */
    for (ptrdiff_t i = 0; i < L; i++)
        keep[i] = i >= L - OW % L ? -1 : 0;
    for (ptrdiff_t n = 0; n < p[P_N]; n++) {
        const T *xc = (const T *)job->x + n * p[P_XN] + c * p[P_XC];
        const T *gc = (const T *)job->gy + n * p[P_YN] + c * p[P_YC];
        for (ptrdiff_t oh = 0; oh < OH; oh++) {
            const T *g = gc + oh * p[P_YH];
            if (in_place) {
                /* a kernel row in the padding reads another row into accumulators that are
                 * put back afterwards */
                const T *r[3] = {NULL, NULL, NULL};
                for (int ky = 0; ky < 3; ky++) {
                    ptrdiff_t ih = oh + ky - pt;
                    if (ih >= 0 && ih < H)
                        r[ky] = xc + ih * p[P_XH] - pl;
                }
                const T *any = r[1] ? r[1] : r[0] ? r[0] : r[2];
                if (!any)
                    continue;
                VT kept[9];
                for (int t = 0; t < 9; t++)
                    kept[t] = a[t];
                const T *rows[3] = {r[0] ? r[0] : any, r[1] ? r[1] : any, r[2] ? r[2] : any};
                FN(gw3_rows_in_place)(a, g, rows, pl, OW, keep);
                for (int t = 0; t < 9; t++)
                    if (!r[t / 3])
                        a[t] = kept[t];
                continue;
            }
#pragma GCC unroll 3
            for (int ky = 0; ky < 3; ky++) {
                ptrdiff_t ih = oh + ky * dh - pt;
                if (ih < 0 || ih >= H)
                    continue;
                const T *r = xc + ih * p[P_XH] - pl; /* r[ow + kx dw]: tap kx of column ow */
                VT a0 = a[3 * ky], a1 = a[3 * ky + 1], a2 = a[3 * ky + 2];
                for (ptrdiff_t ow = lo; ow < vend; ow += L) {
                    VT gv = *(const VT *)(g + ow);
                    a0 += gv * *(const VT *)(r + ow);
                    a1 += gv * *(const VT *)(r + ow + dw);
                    a2 += gv * *(const VT *)(r + ow + 2 * dw);
                }
                a[3 * ky] = a0;
                a[3 * ky + 1] = a1;
                a[3 * ky + 2] = a2;
                for (ptrdiff_t ow = 0; ow < OW; ow++) {
                    if (ow == lo)
                        ow = vend; /* the vector columns are done */
                    if (ow >= OW)
                        break;
                    for (int kx = 0; kx < 3; kx++) {
                        ptrdiff_t iw = ow + kx * dw - pl;
                        if (iw >= 0 && iw < W)
                            s[3 * ky + kx] += g[ow] * r[ow + kx * dw];
                    }
                }
            }
        }
    }
    FN(sum_taps9)((T *)job->gw + c * 9, a, s);
}

/* Channels-last, any stride and dilation. Task: a fixed band of output rows of one image (as
 * gw_cl_task); for each vector of channels, nine accumulators sweep the band's pixels. */
DW_CLONES static void FN(gw3_cl_task)(void *vctx, ptrdiff_t task)
{
    job_t *job = vctx;
    const ptrdiff_t *p = job->p;
    ptrdiff_t C = p[P_C], H = p[P_H], W = p[P_W], OW = p[P_OW];
    ptrdiff_t sh = p[P_SH], sw = p[P_SW], dh = p[P_DH], dw = p[P_DW];
    ptrdiff_t XH = p[P_XH], XW = p[P_XW];
    ptrdiff_t bands = job->per_task, n = task / bands, band = task % bands;
    ptrdiff_t oh0 = p[P_OH] * band / bands, oh1 = p[P_OH] * (band + 1) / bands;
    T *part = (T *)job->scratch + task * 9 * C;
    const T *xn = (const T *)job->x + n * p[P_XN];
    const T *gn = (const T *)job->gy + n * p[P_YN];
    ptrdiff_t cvec = C / L * L;
    for (ptrdiff_t c = 0; c < cvec; c += L) {
        VT a[9];
        for (int t = 0; t < 9; t++)
            a[t] = (VT){0};
        for (ptrdiff_t oh = oh0; oh < oh1; oh++) {
            ptrdiff_t ih0 = oh * sh - p[P_PT];
            int rows_inside = ih0 >= 0 && ih0 + 2 * dh < H;
            for (ptrdiff_t ow = 0; ow < OW; ow++) {
                ptrdiff_t iw0 = ow * sw - p[P_PL];
                VT gv = *(const VT *)(gn + oh * p[P_YH] + ow * p[P_YW] + c);
                const T *x = xn + ih0 * XH + iw0 * XW + c;
                if (rows_inside && iw0 >= 0 && iw0 + 2 * dw < W) {
#pragma GCC unroll 3
                    for (int ky = 0; ky < 3; ky++)
#pragma GCC unroll 3
                        for (int kx = 0; kx < 3; kx++)
                            a[3 * ky + kx] += gv * *(const VT *)(x + ky * dh * XH + kx * dw * XW);
                } else {
#pragma GCC unroll 3
                    for (int ky = 0; ky < 3; ky++)
#pragma GCC unroll 3
                        for (int kx = 0; kx < 3; kx++) {
                            ptrdiff_t ih = ih0 + ky * dh, iw = iw0 + kx * dw;
                            if (ih >= 0 && ih < H && iw >= 0 && iw < W)
                                a[3 * ky + kx] +=
                                    gv * *(const VT *)(x + ky * dh * XH + kx * dw * XW);
                        }
                }
            }
        }
        for (int t = 0; t < 9; t++)
            *(VT *)(part + t * C + c) = a[t];
    }
    for (ptrdiff_t c = cvec; c < C; c++) { /* channels past the last full vector */
        T a[9] = {0};
        for (ptrdiff_t oh = oh0; oh < oh1; oh++) {
            ptrdiff_t ih0 = oh * sh - p[P_PT];
            for (ptrdiff_t ow = 0; ow < OW; ow++) {
                ptrdiff_t iw0 = ow * sw - p[P_PL];
                T g = gn[oh * p[P_YH] + ow * p[P_YW] + c];
                for (int ky = 0; ky < 3; ky++)
                    for (int kx = 0; kx < 3; kx++) {
                        ptrdiff_t ih = ih0 + ky * dh, iw = iw0 + kx * dw;
                        if (ih >= 0 && ih < H && iw >= 0 && iw < W)
                            a[3 * ky + kx] += g * xn[ih * XH + iw * XW + c];
                    }
            }
        }
        for (int t = 0; t < 9; t++)
            part[t * C + c] = a[t];
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
    if (wt) /* in blocks of 16 channels: each tap's row written a cache line at a time */
        for (ptrdiff_t o0 = 0; o0 < CM; o0 += 16) {
            ptrdiff_t o1 = o0 + 16 < CM ? o0 + 16 : CM;
            for (ptrdiff_t t = 0; t < taps; t++)
                for (ptrdiff_t o = o0; o < o1; o++)
                    wt[t * CM + o] = w[o * taps + t];
        }
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
        if (FN(fwd_flat512_applies)(params))
            parallel_for(FN(fwd_flat512_task), &job, job.ntasks, threads);
        else if (FN(fwd_flat256_applies)(params))
            parallel_for(FN(fwd_flat256_task), &job, job.ntasks, threads);
        else if (FN(fwd_s2_narrow256_applies)(params))
            parallel_for(FN(fwd_s2_narrow256_task), &job, job.ntasks, threads);
        else if (FN(fwd_s1_applies)(params))
            parallel_for(FN(fwd_s1_task), &job, job.ntasks, threads);
        else if (FN(fwd_s2_applies)(params))
            parallel_for(FN(fwd_s2_task), &job, job.ntasks, threads);
        else if (FN(fwd_s1_33_applies)(params)) {
            job.stream = FN(stream_rows_pay)(params, y);
            parallel_for(FN(fwd_s1_33_task), &job, job.ntasks, threads);
        }
        else if (params[P_OW] < FLAT_MAX_WIDTH &&
            g.phase * params[P_SH] * params[P_SW] * (ptrdiff_t)sizeof(T) <= FLAT_MAX_BYTES)
            parallel_for(FN(fwd_flat_task), &job, job.ntasks, threads);
        else
            parallel_for(FN(fwd_nchw_task), &job, job.ntasks, threads);
    } else if (cl_layout(params)) {
        if (!(job.scratch = FN(transposed_weights)(params, w)))
            return 1;
        job.ntasks = FN(task_count)(params[P_N] * params[P_OH], threads);
        /* AVX-512 keeps its eight pixels at a time (four at a time not measured there) */
        task_fn task = FN(fwd_cl8_applies)(params) ? FN(fwd_cl8_task)
                       : FN(cl4_pays)(params)      ? FN(fwd_cl4_task)
                       : FN(cl8_pays)(params, L)   ? FN(fwd_cl8v_task)
                                                   : FN(fwd_cl_task);
        job.stream = task == FN(fwd_cl8v_task) && FN(stream_pixels_pay)(params, y);
        parallel_for(task, &job, job.ntasks, threads);
        free(job.scratch);
    } else {
        return 2;
    }
    return job.failed;
}

/* 3-D forward on NCDHW rows (W the unit stride of input and output): params as dw_forward's
 * for one frame, depth as the Q_* parameters. Returns 0, 1 (out of memory) or 2 (a layout
 * without unit-stride rows). */
DW_EXPORT int FN(dw_forward3d)(const ptrdiff_t *params, const ptrdiff_t *depth, const T *x,
                               const T *w, const T *b, T *y)
{
    FN(job3_t) job3 = {0};
    memcpy(job3.job.p, params, sizeof(job3.job.p));
    memcpy(job3.q, depth, sizeof(job3.q));
    job3.job.x = x;
    job3.job.w = w;
    job3.job.b = b;
    job3.job.y = y;
    if (!nchw_layout(params))
        return 2;
    int threads = (int)params[P_THREADS];
    job3.job.ntasks = FN(task_count)(params[P_N] * params[P_C], threads);
    parallel_for(FN(fwd3_flat_applies)(params) ? FN(fwd3_flat_task) : FN(fwd3_nchw_task), &job3,
                 job3.job.ntasks, threads);
    return job3.job.failed;
}

/* 3-D weight gradient on NCDHW rows: x and its geometry as dw_forward3d's, gy the output
 * gradient (the output's geometry), gw (C * M, KT, KH, KW) contiguous. Returns as
 * dw_forward3d. */
DW_EXPORT int FN(dw_grad_weight3d)(const ptrdiff_t *params, const ptrdiff_t *depth, const T *x,
                                   const T *gy, T *gw)
{
    FN(job3_t) job3 = {0};
    memcpy(job3.job.p, params, sizeof(job3.job.p));
    memcpy(job3.q, depth, sizeof(job3.q));
    job3.job.x = x;
    job3.job.gy = gy;
    job3.job.gw = gw;
    if (!nchw_layout(params))
        return 2;
    job3.job.ntasks = params[P_C] * params[P_M]; /* one channel a task: its sums in order */
    parallel_for(FN(gw3d_nchw_task), &job3, job3.job.ntasks, (int)params[P_THREADS]);
    return job3.job.failed;
}

/* Stride 1, M = 1: the input gradient is the output gradient correlated with the kernel
 * turned by 180 degrees, padded by (K - 1) d - p before (the forward kernel and its paths).
 * Returns -1 where this does not apply (more padding before than the kernel reaches). */
static int FN(gx_by_forward)(const ptrdiff_t *p, const T *gy, const T *w, T *gx)
{
    ptrdiff_t KH = p[P_KH], KW = p[P_KW], taps = KH * KW;
    ptrdiff_t top = (KH - 1) * p[P_DH] - p[P_PT], left = (KW - 1) * p[P_DW] - p[P_PL];
    if (top < 0 || left < 0)
        return -1;
    ptrdiff_t q[P_COUNT];
    memcpy(q, p, sizeof(q));
    q[P_H] = p[P_OH];
    q[P_W] = p[P_OW];
    q[P_OH] = p[P_H];
    q[P_OW] = p[P_W];
    for (int i = 0; i < 4; i++) { /* the output gradient is the input, the gradient the output */
        q[P_XN + i] = p[P_YN + i];
        q[P_YN + i] = p[P_XN + i];
    }
    q[P_PT] = top;
    q[P_PL] = left;
    T *turned = malloc(p[P_C] * taps * sizeof(T));
    if (!turned)
        return 1;
    for (ptrdiff_t c = 0; c < p[P_C]; c++)
        for (ptrdiff_t t = 0; t < taps; t++)
            turned[c * taps + t] = w[c * taps + taps - 1 - t];
    int code = FN(dw_forward)(q, gy, turned, NULL, gx);
    free(turned);
    return code;
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
    if (params[P_M] == 1 && params[P_SH] == 1 && params[P_SW] == 1 &&
        (nchw_layout(params) || cl_layout(params))) {
        int code = FN(gx_by_forward)(params, gy, w, gx);
        if (code >= 0)
            return code;
    }
    if (nchw_layout(params)) {
        job.ntasks = FN(task_count)(params[P_N] * params[P_C], threads);
        parallel_for(FN(grad_s2_applies)(params)            ? FN(gx_s2_nchw512_task)
                     : FN(grad_s2_portable_applies)(params) ? FN(gx_s2_nchw_task)
                                                            : FN(gx_nchw_task),
                     &job, job.ntasks, threads);
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
    int three = params[P_KH] == 3 && params[P_KW] == 3 && params[P_M] == 1;
    if (nchw_layout(params)) {
        int unit = params[P_SH] == 1 && params[P_SW] == 1;
        task_fn fn = FN(gw3_nchw512_applies)(params) ? FN(gw3_nchw512_task)
                     : FN(grad_s2_applies)(params)    ? FN(gw_s2_nchw512_task)
                     : FN(grad_s2_portable_applies)(params) ? FN(gw_s2_nchw_task)
                     : three && unit && params[P_OW] < 4 * L ? FN(gw3_flat_nchw_task)
                     : three && unit                  ? FN(gw3_nchw_task)
                                                      : FN(gw_nchw_task);
        parallel_for(fn, &job, CM, threads);
        return job.failed;
    }
    if (!cl_layout(params))
        return 2;
    /* a partition fixed by the shapes: bands of about 8 output rows of each image */
    job.per_task = (params[P_OH] + 7) / 8;
    job.ntasks = params[P_N] * job.per_task;
    if (!(job.scratch = malloc(job.ntasks * taps * CM * sizeof(T))))
        return 1;
    parallel_for(three ? FN(gw3_cl_task) : FN(gw_cl_task), &job, job.ntasks, threads);
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

#undef SHIFT_IN_FIRST
#undef SHIFT_IN_LAST
#undef CAT_
#undef CAT
#undef FN
#undef L
