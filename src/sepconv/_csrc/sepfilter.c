/*
 * Separable correlation of 2-D images: a sum of separable terms, each a vertical 1-D pass
 * followed by a horizontal 1-D pass, computed four output rows at a time so that the
 * intermediate rows stay in the first-level cache and the image is read and written once.
 *
 * The functions are plain C called through ctypes (which releases the GIL), so Python
 * threads can filter disjoint bands of output rows at the same time.
 *
 * Layout: an image of H rows, W pixels a row, C interleaved channels a pixel, rows
 * `src_stride` / `dst_stride` elements apart, pixels and channels contiguous. Channels are
 * filtered independently: a horizontal tap moves C elements along the flat row.
 *
 * Borders follow scipy.ndimage's modes (index mapping per axis, valid for any distance
 * outside the image): 0 reflect (d c b a | a b c d), 1 mirror (d c b | a b c d),
 * 2 nearest, 3 wrap, 4 constant zero (callers subtract a nonzero cval beforehand).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define SEP_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define SEP_HAVE_AVX2_CODE 1
#else
#define SEP_CLONES
#if defined(__AVX2__) && defined(__FMA__)
#define SEP_HAVE_AVX2_CODE 1
#else
#define SEP_HAVE_AVX2_CODE 0
#endif
#endif

#ifdef _WIN32
#define SEP_EXPORT __declspec(dllexport)
#else
#define SEP_EXPORT __attribute__((visibility("default")))
#endif

/* Index of position p (any integer) of an axis of length n; -1 for the constant zero. */
static ptrdiff_t map_index(ptrdiff_t p, ptrdiff_t n, int mode)
{
    if (p >= 0 && p < n)
        return p;
    switch (mode) {
    case 0: { /* reflect: period 2n */
        ptrdiff_t q = p % (2 * n);
        if (q < 0)
            q += 2 * n;
        return q < n ? q : 2 * n - 1 - q;
    }
    case 1: { /* mirror: period 2n - 2 */
        if (n == 1)
            return 0;
        ptrdiff_t period = 2 * n - 2;
        ptrdiff_t q = p % period;
        if (q < 0)
            q += period;
        return q < n ? q : period - q;
    }
    case 2:
        return p < 0 ? 0 : n - 1;
    case 3: {
        ptrdiff_t q = p % n;
        return q < 0 ? q + n : q;
    }
    default:
        return -1;
    }
}

/* Both passes keep NV vectors of outputs in registers across all taps, so that each output
 * is stored once. The vertical pass computes four output rows at a time from taps + 3 source
 * rows (each source vector loaded once for all four; two or one at the end of a band, with the
 * same arithmetic, so results do not depend on how rows are split into bands); the horizontal
 * pass folds symmetric and antisymmetric factors: c * (x[t] +- x[k-1-t]), half the
 * multiplications. GCC/Clang vector
 * extensions, 32 bytes wide, compiled for AVX-512, AVX2+FMA and the baseline by target_clones
 * where available. */
#define NV 4

/* element types of integer sources and destinations (SEP_SAME: the filter's float type) */
#define SEP_SAME 0
#define SEP_U8 1
#define SEP_U16 2
#define SEP_I16 3
typedef float vf32 __attribute__((vector_size(32), aligned(4)));
typedef double vf64 __attribute__((vector_size(32), aligned(8)));

/* 1 symmetric, -1 antisymmetric, 0 neither */
#define DEFINE_SYMMETRY(NAME, T)                                                               \
    static int NAME##_symmetry(const T *c, ptrdiff_t k)                                        \
    {                                                                                          \
        int sym = 1, anti = 1;                                                                 \
        for (ptrdiff_t t = 0; t < k / 2; t++) {                                                \
            sym &= c[t] == c[k - 1 - t];                                                       \
            anti &= c[t] == -c[k - 1 - t];                                                     \
        }                                                                                      \
        if (k % 2 == 1 && c[k / 2] != 0)                                                       \
            anti = 0;                                                                          \
        return k < 2 ? 0 : sym ? 1 : anti ? -1 : 0;                                            \
    }

/* One block of NV vectors: a[v] += sum over taps of coef[t] * src_t[v], where src_t is
 * ptr(t) (a row pointer for the vertical pass, an offset into the row for the horizontal
 * pass), folding (anti)symmetric taps. */
#define ACCUMULATE(T, VT, LANES, taps, coef, sym, PTR)                                         \
    do {                                                                                       \
        ptrdiff_t half_ = (sym) ? (taps) / 2 : (taps);                                         \
        for (ptrdiff_t t = 0; t < half_; t++) {                                                \
            const T c_ = (coef)[t];                                                            \
            const T *p_ = PTR(t);                                                              \
            if ((sym) == 0) {                                                                  \
                for (int v = 0; v < NV; v++)                                                   \
                    a[v] += c_ * *(const VT *)(p_ + v * (LANES));                              \
            } else {                                                                           \
                const T *m_ = PTR((taps) - 1 - t);                                             \
                if ((sym) > 0)                                                                 \
                    for (int v = 0; v < NV; v++)                                               \
                        a[v] += c_ * (*(const VT *)(p_ + v * (LANES)) +                        \
                                      *(const VT *)(m_ + v * (LANES)));                        \
                else                                                                           \
                    for (int v = 0; v < NV; v++)                                               \
                        a[v] += c_ * (*(const VT *)(p_ + v * (LANES)) -                        \
                                      *(const VT *)(m_ + v * (LANES)));                        \
            }                                                                                  \
        }                                                                                      \
        /* the centre tap of a symmetric factor (an antisymmetric one has a zero there) */    \
        if ((sym) > 0 && (taps) % 2 == 1) {                                                    \
            const T c_ = (coef)[(taps) / 2];                                                   \
            const T *p_ = PTR((taps) / 2);                                                     \
            for (int v = 0; v < NV; v++)                                                       \
                a[v] += c_ * *(const VT *)(p_ + v * (LANES));                                  \
        }                                                                                      \
    } while (0)

#define DEFINE_FILTER(NAME, T, VT, RINT)                                                       \
    DEFINE_SYMMETRY(NAME, T)                                                                   \
    static inline T NAME##_rint(T x) { return RINT(x); } /* half to even (default rounding) */ \
    enum { NAME##_LANES = (int)(sizeof(VT) / sizeof(T)), NAME##_BLOCK = NV * NAME##_LANES };   \
                                                                                               \
    /* Two consecutive output rows at once from taps + 1 source rows: each source vector is    \
     * loaded once for both rows (about half the loads of two single-row passes). */           \
    SEP_CLONES static void NAME##_vertical2(T *restrict acc0, T *restrict acc1,                \
                                            const T *const *rows, const T *restrict coef,      \
                                            ptrdiff_t taps, ptrdiff_t len)                     \
    {                                                                                          \
        const ptrdiff_t L = NAME##_LANES;                                                      \
        ptrdiff_t q0 = 0;                                                                      \
        for (; q0 + NAME##_BLOCK <= len; q0 += NAME##_BLOCK) {                                 \
            VT a0[NV], a1[NV];                                                                 \
            const T c0 = coef[0];                                                              \
            const T *p = rows[0] + q0;                                                         \
            for (int v = 0; v < NV; v++) {                                                     \
                a0[v] = c0 * *(const VT *)(p + v * L);                                         \
                a1[v] = (VT){0};                                                               \
            }                                                                                  \
            for (ptrdiff_t t = 1; t < taps; t++) {                                             \
                const T c = coef[t], b = coef[t - 1];                                          \
                p = rows[t] + q0;                                                              \
                for (int v = 0; v < NV; v++) {                                                 \
                    VT x = *(const VT *)(p + v * L);                                           \
                    a0[v] += c * x;                                                            \
                    a1[v] += b * x;                                                            \
                }                                                                              \
            }                                                                                  \
            const T cl = coef[taps - 1];                                                       \
            p = rows[taps] + q0;                                                               \
            for (int v = 0; v < NV; v++) {                                                     \
                a1[v] += cl * *(const VT *)(p + v * L);                                        \
                *(VT *)(acc0 + q0 + v * L) = a0[v];                                            \
                *(VT *)(acc1 + q0 + v * L) = a1[v];                                            \
            }                                                                                  \
        }                                                                                      \
        for (ptrdiff_t q = q0; q < len; q++) {                                                 \
            T s0 = 0, s1 = 0;                                                                  \
            for (ptrdiff_t t = 0; t < taps; t++) {                                             \
                s0 += coef[t] * rows[t][q];                                                    \
                s1 += coef[t] * rows[t + 1][q];                                                \
            }                                                                                  \
            acc0[q] = s0;                                                                      \
            acc1[q] = s1;                                                                      \
        }                                                                                      \
    }                                                                                          \
                                                                                               \
    /* Four consecutive output rows from taps + 3 source rows (the same arithmetic: each       \
     * row is the taps' products summed in order, as in the two-row pass). */                  \
    SEP_CLONES static void NAME##_vertical4(T *restrict *acc, const T *const *rows,            \
                                            const T *restrict coef, ptrdiff_t taps,            \
                                            ptrdiff_t len)                                     \
    {                                                                                          \
        const ptrdiff_t L = NAME##_LANES;                                                      \
        enum { NB = 2, R = 4 };                                                                \
        ptrdiff_t q0 = 0;                                                                      \
        for (; q0 + NB * L <= len; q0 += NB * L) {                                             \
            VT a[R][NB];                                                                       \
            for (int r = 0; r < R; r++)                                                        \
                for (int v = 0; v < NB; v++)                                                   \
                    a[r][v] = (VT){0};                                                         \
            for (ptrdiff_t t = 0; t < taps + R - 1; t++) {                                     \
                const T *p = rows[t] + q0;                                                     \
                VT x[NB];                                                                      \
                for (int v = 0; v < NB; v++)                                                   \
                    x[v] = *(const VT *)(p + v * L);                                           \
                for (int r = 0; r < R; r++) {                                                  \
                    ptrdiff_t c = t - r;                                                       \
                    if (c >= 0 && c < taps)                                                    \
                        for (int v = 0; v < NB; v++)                                           \
                            a[r][v] += coef[c] * x[v];                                         \
                }                                                                              \
            }                                                                                  \
            for (int r = 0; r < R; r++)                                                        \
                for (int v = 0; v < NB; v++)                                                   \
                    *(VT *)(acc[r] + q0 + v * L) = a[r][v];                                    \
        }                                                                                      \
        for (ptrdiff_t q = q0; q < len; q++)                                                   \
            for (int r = 0; r < R; r++) {                                                      \
                T s0 = 0;                                                                      \
                for (ptrdiff_t t = 0; t < taps; t++)                                           \
                    s0 += coef[t] * rows[t + r][q];                                            \
                acc[r][q] = s0;                                                                \
            }                                                                                  \
    }                                                                                          \
                                                                                               \
    /* Returns 0, or NaN when `check` is set and an output is NaN or infinite (x - x is 0   \
     * for a finite x, NaN otherwise; no fast-math, so the compiler keeps it). */            \
    SEP_CLONES static T NAME##_horizontal(T *restrict out, const T *restrict buf,              \
                                          const T *restrict coef, ptrdiff_t taps, int sym,     \
                                          ptrdiff_t step, ptrdiff_t len, int first, int check) \
    {                                                                                          \
        ptrdiff_t q0 = 0;                                                                      \
        VT seen = {0};                                                                         \
        for (; q0 + NAME##_BLOCK <= len; q0 += NAME##_BLOCK) {                                 \
            VT a[NV];                                                                          \
            for (int v = 0; v < NV; v++)                                                       \
                a[v] = first ? (VT){0} : *(const VT *)(out + q0 + v * NAME##_LANES);           \
            ACCUMULATE(T, VT, NAME##_LANES, taps, coef, sym, HPOS);                            \
            for (int v = 0; v < NV; v++)                                                       \
                *(VT *)(out + q0 + v * NAME##_LANES) = a[v];                                   \
            if (check)                                                                         \
                for (int v = 0; v < NV; v++)                                                   \
                    seen += a[v] - a[v];                                                       \
        }                                                                                      \
        T total = 0;                                                                           \
        for (ptrdiff_t q = q0; q < len; q++) {                                                 \
            T a = first ? 0 : out[q];                                                          \
            for (ptrdiff_t s = 0; s < taps; s++)                                               \
                a += coef[s] * buf[q + s * step];                                              \
            out[q] = a;                                                                        \
            total += a - a;                                                                    \
        }                                                                                      \
        for (int l = 0; l < NAME##_LANES; l++)                                                 \
            total += seen[l];                                                                  \
        return check ? total : 0;                                                              \
    }                                                                                          \
                                                                                               \
    /* 1 when all n elements are finite (a contiguous array; see the horizontal pass). */    \
    SEP_EXPORT SEP_CLONES int NAME##_finite(const T *v, ptrdiff_t n)                           \
    {                                                                                          \
        const ptrdiff_t L = NAME##_LANES;                                                      \
        VT a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};                                             \
        ptrdiff_t q = 0;                                                                       \
        for (; q + 4 * L <= n; q += 4 * L) {                                                   \
            VT x0 = *(const VT *)(v + q), x1 = *(const VT *)(v + q + L);                       \
            VT x2 = *(const VT *)(v + q + 2 * L), x3 = *(const VT *)(v + q + 3 * L);           \
            a0 += x0 - x0;                                                                     \
            a1 += x1 - x1;                                                                     \
            a2 += x2 - x2;                                                                     \
            a3 += x3 - x3;                                                                     \
        }                                                                                      \
        T s = 0;                                                                               \
        for (; q < n; q++)                                                                     \
            s += v[q] - v[q];                                                                  \
        a0 += a1 + a2 + a3;                                                                    \
        for (int l = 0; l < L; l++)                                                            \
            s += a0[l];                                                                        \
        return s == 0;                                                                         \
    }                                                                                          \
                                                                                               \
    /* Source row p converted to T in one of `nslots` cached rows (integer sources). */        \
    SEP_CLONES static const T *NAME##_row_of(const void *src, int src_type, ptrdiff_t src_stride, \
                                  ptrdiff_t p, ptrdiff_t len, T *slots, ptrdiff_t *tags,       \
                                  unsigned char *keep, ptrdiff_t nslots)                       \
    {                                                                                          \
        for (ptrdiff_t s = 0; s < nslots; s++)                                                 \
            if (tags[s] == p) {                                                                \
                keep[s] = 1;                                                                   \
                return slots + s * len;                                                        \
            }                                                                                  \
        ptrdiff_t s = 0;                                                                       \
        while (keep[s])                                                                        \
            s++; /* a free slot exists: nslots >= rows a group needs */                        \
        T *dst = slots + s * len;                                                              \
        if (src_type == SEP_U8) {                                                              \
            const unsigned char *r = (const unsigned char *)src + p * src_stride;              \
            for (ptrdiff_t q = 0; q < len; q++)                                                \
                dst[q] = (T)r[q];                                                              \
        } else if (src_type == SEP_U16) {                                                      \
            const unsigned short *r = (const unsigned short *)src + p * src_stride;            \
            for (ptrdiff_t q = 0; q < len; q++)                                                \
                dst[q] = (T)r[q];                                                              \
        } else {                                                                               \
            const short *r = (const short *)src + p * src_stride;                              \
            for (ptrdiff_t q = 0; q < len; q++)                                                \
                dst[q] = (T)r[q];                                                              \
        }                                                                                      \
        tags[s] = p;                                                                           \
        keep[s] = 1;                                                                           \
        return dst;                                                                            \
    }                                                                                          \
                                                                                               \
    /* Round half to even and saturate a row of T into an integer row. */                      \
    SEP_CLONES static void NAME##_store(void *dst, int dst_type, const T *restrict v,          \
                                        ptrdiff_t len)                                         \
    {                                                                                          \
        if (dst_type == SEP_U8) {                                                              \
            unsigned char *d = (unsigned char *)dst;                                           \
            for (ptrdiff_t q = 0; q < len; q++) {                                              \
                T x = NAME##_rint(v[q]);                                                       \
                d[q] = (unsigned char)(x < 0 ? 0 : x > 255 ? 255 : x);                         \
            }                                                                                  \
        } else if (dst_type == SEP_U16) {                                                      \
            unsigned short *d = (unsigned short *)dst;                                         \
            for (ptrdiff_t q = 0; q < len; q++) {                                              \
                T x = NAME##_rint(v[q]);                                                       \
                d[q] = (unsigned short)(x < 0 ? 0 : x > 65535 ? 65535 : x);                    \
            }                                                                                  \
        } else {                                                                               \
            short *d = (short *)dst;                                                           \
            for (ptrdiff_t q = 0; q < len; q++) {                                              \
                T x = NAME##_rint(v[q]);                                                       \
                d[q] = (short)(x < -32768 ? -32768 : x > 32767 ? 32767 : x);                   \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
                                                                                               \
    /* src: H rows of W * C elements of `src_type` (SEP_SAME: T), rows src_stride elements     \
     * apart; dst likewise with dst_type (integers: rounded half to even and saturated).       \
     * Returns 0, 1 when a float output row holds NaN or an infinity, -1 when out of memory. */ \
    SEP_EXPORT int NAME(const void *src, int src_type, ptrdiff_t H, ptrdiff_t W, ptrdiff_t C,  \
                        ptrdiff_t src_stride, void *dst, int dst_type, ptrdiff_t dst_stride,   \
                        const T *col, ptrdiff_t kh, const T *row, ptrdiff_t kw,                \
                        ptrdiff_t nterms, ptrdiff_t ay, ptrdiff_t ax, int mode, ptrdiff_t r0,  \
                        ptrdiff_t r1)                                                          \
    {                                                                                          \
        ptrdiff_t len = W * C, left = ax, right = kw - 1 - ax;                                 \
        ptrdiff_t blen = (W + kw - 1) * C, nslots = src_type == SEP_SAME ? 0 : kh + 3;         \
        ptrdiff_t nout = dst_type == SEP_SAME ? 0 : 4;                                         \
        /* buf: [the zero row of constant mode | 4 row buffers | converted source rows |       \
         *       output rows before rounding] */                                               \
        T *buf = (T *)malloc(sizeof(T) * (size_t)(len + 4 * blen + (nslots + nout) * len));    \
        const T **rows = (const T **)malloc(sizeof(T *) * (size_t)(kh + 3));                   \
        ptrdiff_t *cols = (ptrdiff_t *)malloc(sizeof(ptrdiff_t) * (size_t)(left + right + 1)); \
        ptrdiff_t *tags = (ptrdiff_t *)malloc(sizeof(ptrdiff_t) * (size_t)(nslots + 1));       \
        unsigned char *keep = (unsigned char *)malloc((size_t)(nslots + 1));                   \
        int *sym = (int *)malloc(sizeof(int) * (size_t)nterms);                                \
        int status = -1, nonfinite = 0;                                                        \
        if (buf == NULL || rows == NULL || cols == NULL || tags == NULL || keep == NULL        \
            || sym == NULL)                                                                    \
            goto done;                                                                         \
        T *zero = buf, *slots = buf + len + 4 * blen, *orows = slots + nslots * len;           \
        memset(zero, 0, sizeof(T) * (size_t)len);                                              \
        for (ptrdiff_t s = 0; s < nslots; s++)                                                 \
            tags[s] = -1;                                                                      \
        for (ptrdiff_t term = 0; term < nterms; term++)                                        \
            sym[term] = NAME##_symmetry(row + term * kw, kw);                                  \
        for (ptrdiff_t j = 0; j < left; j++)                                                   \
            cols[j] = map_index(j - left, W, mode);                                            \
        for (ptrdiff_t j = 0; j < right; j++)                                                  \
            cols[left + j] = map_index(W + j, W, mode);                                        \
        T *mids[4];                                                                            \
        for (int r = 0; r < 4; r++)                                                            \
            mids[r] = buf + len + r * blen + left * C;                                         \
        for (ptrdiff_t i = r0; i < r1;) {                                                      \
            ptrdiff_t nr = r1 - i >= 4 ? 4 : (r1 - i >= 2 ? 2 : 1);                            \
            ptrdiff_t used = kh + (nr == 4 ? 3 : 1);                                           \
            memset(keep, 0, (size_t)(nslots + 1));                                             \
            for (ptrdiff_t t = 0; t < kh + 3; t++) { /* keep the cached rows still needed */   \
                ptrdiff_t p = map_index(i + t - ay, H, mode);                                  \
                for (ptrdiff_t s = 0; s < nslots && t < used && p >= 0; s++)                   \
                    if (tags[s] == p)                                                          \
                        keep[s] = 1;                                                           \
            }                                                                                  \
            for (ptrdiff_t t = 0; t < kh + 3; t++) {                                           \
                ptrdiff_t p = map_index(i + t - ay, H, mode);                                  \
                if (p < 0 || t >= used || (nr == 1 && t == kh))                                \
                    rows[t] = zero;                                                            \
                else if (src_type == SEP_SAME)                                                 \
                    rows[t] = (const T *)src + p * src_stride;                                 \
                else                                                                           \
                    rows[t] = NAME##_row_of(src, src_type, src_stride, p, len, slots, tags,    \
                                            keep, nslots);                                     \
            }                                                                                  \
            for (ptrdiff_t term = 0; term < nterms; term++) {                                  \
                if (nr == 4)                                                                   \
                    NAME##_vertical4(mids, rows, col + term * kh, kh, len);                    \
                else                                                                           \
                    NAME##_vertical2(mids[0], mids[1], rows, col + term * kh, kh, len);        \
                for (ptrdiff_t r = 0; r < nr; r++) {                                           \
                    T *mid = mids[r], *b0 = mid - left * C;                                    \
                    for (ptrdiff_t j = 0; j < left; j++) {                                     \
                        ptrdiff_t m = cols[j];                                                 \
                        for (ptrdiff_t c = 0; c < C; c++)                                      \
                            b0[j * C + c] = m < 0 ? 0 : mid[m * C + c];                        \
                    }                                                                          \
                    for (ptrdiff_t j = 0; j < right; j++) {                                    \
                        ptrdiff_t m = cols[left + j];                                          \
                        for (ptrdiff_t c = 0; c < C; c++)                                      \
                            mid[(W + j) * C + c] = m < 0 ? 0 : mid[m * C + c];                 \
                    }                                                                          \
                    T *out = nout ? orows + r * len : (T *)dst + (i + r) * dst_stride;         \
                    /* a non-finite pixel under a non-zero weight makes a non-finite output \
                     * here (every tap is multiplied, zero weights too): report it */          \
                    int check = !nout && !nonfinite && term == nterms - 1;                     \
                    if (NAME##_horizontal(out, b0, row + term * kw, kw, sym[term], C, len,     \
                                          term == 0, check) != 0)                              \
                        nonfinite = 1;                                                         \
                }                                                                              \
            }                                                                                  \
            if (nout) {                                                                        \
                ptrdiff_t size = dst_type == SEP_U8 ? 1 : 2;                                   \
                for (ptrdiff_t r = 0; r < nr; r++)                                             \
                    NAME##_store((char *)dst + (i + r) * dst_stride * size, dst_type,          \
                                 orows + r * len, len);                                        \
            }                                                                                  \
            i += nr;                                                                           \
        }                                                                                      \
        status = nonfinite;                                                                    \
    done:                                                                                      \
        free(buf);                                                                             \
        free((void *)rows);                                                                    \
        free(cols);                                                                            \
        free(tags);                                                                            \
        free(keep);                                                                            \
        free(sym);                                                                             \
        return status;                                                                         \
    }

#define HPOS(t) (buf + q0 + (t) * step)

DEFINE_FILTER(sep_filter_f32, float, vf32, rintf)
DEFINE_FILTER(sep_filter_f64, double, vf64, rint)

/* 1 where the code above runs fast: compiled for AVX2 and FMA (a clone or the whole build) and
 * running on a processor that has them. Elsewhere the baseline build is slower than OpenCV. */
SEP_EXPORT int sep_fast(void)
{
#if SEP_HAVE_AVX2_CODE && defined(__GNUC__) && defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

/* A module so that the library is importable (and found) like any extension; the functions
 * above are reached through ctypes. */
static struct PyModuleDef sepfilter_module = {
    PyModuleDef_HEAD_INIT, "_sepfilter",
    "Native separable filtering (row-at-a-time 1-D passes), called through ctypes.", -1, NULL,
};

PyMODINIT_FUNC PyInit__sepfilter(void) { return PyModule_Create(&sepfilter_module); }
