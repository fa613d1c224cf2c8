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
        if (FN(fwd_flat512_applies)(params))
            parallel_for(FN(fwd_flat512_task), &job, job.ntasks, threads);
        else if (FN(fwd_s1_applies)(params))
            parallel_for(FN(fwd_s1_task), &job, job.ntasks, threads);
        else if (FN(fwd_s2_applies)(params))
            parallel_for(FN(fwd_s2_task), &job, job.ntasks, threads);
        else if (params[P_OW] < FLAT_MAX_WIDTH &&
            g.phase * params[P_SH] * params[P_SW] * (ptrdiff_t)sizeof(T) <= FLAT_MAX_BYTES)
            parallel_for(FN(fwd_flat_task), &job, job.ntasks, threads);
        else
            parallel_for(FN(fwd_nchw_task), &job, job.ntasks, threads);
    } else if (cl_layout(params)) {
        if (!(job.scratch = FN(transposed_weights)(params, w)))
            return 1;
        job.ntasks = FN(task_count)(params[P_N] * params[P_OH], threads);
        parallel_for(FN(fwd_cl8_applies)(params) ? FN(fwd_cl8_task) : FN(fwd_cl_task), &job,
                     job.ntasks, threads);
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
