/* Declarations shared by the native depthwise convolution's sources (depthwise.c, the kernels
 * in depthwise_kernels.h, the thread pool in depthwise_pool.c). */
#ifndef SEPCONV_DEPTHWISE_H
#define SEPCONV_DEPTHWISE_H
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define DW_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define DW_HAVE_AVX2_CODE 1
#else
#define DW_CLONES
#if defined(__AVX2__) && defined(__FMA__)
#define DW_HAVE_AVX2_CODE 1
#else
#define DW_HAVE_AVX2_CODE 0
#endif
#endif

#ifdef _WIN32
#define DW_EXPORT __declspec(dllexport)
#else
#define DW_EXPORT __attribute__((visibility("default")))
#endif

/* AVX-512 intrinsics for the unit-stride NCHW rows (depthwise_avx512.h), chosen at run time */
#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define DW_HAVE_AVX512_CODE 1
int dw_avx512(void);
int dw_avx2(void);
#else
#define DW_HAVE_AVX512_CODE 0
#endif

typedef float vf32 __attribute__((vector_size(32), aligned(4)));
typedef double vf64 __attribute__((vector_size(32), aligned(8)));

/* fn(ctx, i) for i in [0, ntasks), on up to `threads` threads including the caller's
 * (depthwise_pool.c). */
typedef void (*task_fn)(void *ctx, ptrdiff_t index);
void parallel_for(task_fn fn, void *ctx, ptrdiff_t ntasks, int threads);

/* ---- parameters ------------------------------------------------------------------------- */
/* The integer parameters of every call, one ptrdiff_t array (fewer ctypes arguments). */
enum {
    P_N, P_C, P_H, P_W,          /* input (or input gradient) */
    P_XN, P_XC, P_XH, P_XW,      /* its strides */
    P_M, P_KH, P_KW, P_OH, P_OW, /* depth multiplier, kernel, output size */
    P_YN, P_YC, P_YH, P_YW,      /* strides of the output (or output gradient) */
    P_SH, P_SW, P_DH, P_DW, P_PT, P_PL, P_THREADS, P_COUNT
};

/* The depth axis of a 3-D call (dw_forward3d; P_* describe one frame): input frames, their
 * stride, kernel frames, output frames, their stride, stride, dilation, padding in front. */
enum { Q_D, Q_XD, Q_KT, Q_OD, Q_YD, Q_ST, Q_DT, Q_PF, Q_COUNT };

typedef struct {
    ptrdiff_t p[P_COUNT];
    const void *x;   /* input (forward, weight gradient) */
    const void *w;   /* weight (C * M, KH, KW) contiguous */
    const void *b;   /* bias or NULL */
    void *y;         /* output (forward) */
    const void *gy;  /* output gradient (backward) */
    void *gx;        /* input gradient */
    void *gw;        /* weight gradient */
    void *scratch;   /* partial sums, weights transposed */
    ptrdiff_t ntasks, per_task;
    int failed;
    int stream; /* output stored with streaming stores (dw_stream_bytes) */
} job_t;

/* Streaming (non-temporal) stores: an output far larger than the last-level cache, written
 * through the cache, is first read in (a read for ownership) and later evicted by the output
 * after it; stored past the cache in whole lines, it is only written. They pay where every
 * line of the output is written whole by one task, close together in time (rows that start
 * on a line and are whole lines long), and the output does not fit in the last-level cache,
 * where a consumer could still have found it. dw_stream_bytes: the size above which they
 * run, the last-level cache's (the processor's, or 8 MB where it does not say). */
#if defined(__GNUC__) && defined(__x86_64__)
#define DW_HAVE_STREAM 1
#include <unistd.h>
#include <emmintrin.h>
static inline ptrdiff_t dw_stream_bytes(void)
{
    static ptrdiff_t bytes = -1;
    if (bytes < 0) {
        /* the last level of data cache that the first processor reports (Linux); glibc's
         * sysconf can report a whole package's L3 where a core sees one part of it */
        ptrdiff_t best = -1, level = 0;
        for (int i = 0; i < 8; i++) {
            char path[96], type[32] = "";
            long lv = 0, size = 0;
            char unit = 0;
            snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
            FILE *f = fopen(path, "r");
            if (!f)
                break;
            int ok = fscanf(f, "%ld", &lv) == 1;
            fclose(f);
            snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/type", i);
            if (ok && (f = fopen(path, "r"))) {
                ok = fscanf(f, "%31s", type) == 1;
                fclose(f);
            }
            snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
            if (ok && (f = fopen(path, "r"))) {
                ok = fscanf(f, "%ld%c", &size, &unit) >= 1;
                fclose(f);
            }
            if (!ok || strcmp(type, "Instruction") == 0 || lv < level)
                continue;
            level = lv;
            best = size * (unit == 'K' ? 1024 : unit == 'M' ? 1 << 20 : 1);
        }
        if (best <= 0) {
#ifdef _SC_LEVEL3_CACHE_SIZE
            long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
            best = l3 > 0 ? (ptrdiff_t)l3 : -1;
#endif
        }
        bytes = best > 0 ? best : (ptrdiff_t)8 << 20;
    }
    return bytes;
}
/* after a task's streaming stores: ordered before the pool's completion signal */
static inline void dw_stream_fence(void) { _mm_sfence(); }
#else
#define DW_HAVE_STREAM 0
static inline ptrdiff_t dw_stream_bytes(void) { return PTRDIFF_MAX; }
static inline void dw_stream_fence(void) {}
#endif

static inline int nchw_layout(const ptrdiff_t *p) { return p[P_XW] == 1 && p[P_YW] == 1; }
static inline int cl_layout(const ptrdiff_t *p) { return p[P_XC] == 1 && p[P_YC] == 1; }

/* Whether a channels-last depthwise pass pays to run eight output pixels at a time (a tap's
 * weight vector loaded once for the eight, eight chains side by side): where its input is in
 * cache (at most 4 MB) or has at most four vectors of `lanes` channels; from memory, more
 * channels stream better pixel by pixel (all of a pixel's channels in turn). The native
 * kernel (cl8_pays) and the fused one follow it; measurements beside each. */
static inline int eight_pixels_pay(ptrdiff_t input_bytes, ptrdiff_t C, ptrdiff_t lanes)
{
    return input_bytes <= (4 << 20) || C <= 4 * lanes;
}

/* first k in [0, K) with 0 <= base + k * d, and one past the last with base + k * d < n */
static inline void tap_range(ptrdiff_t base, ptrdiff_t d, ptrdiff_t K, ptrdiff_t n, ptrdiff_t *lo,
                      ptrdiff_t *hi)
{
    ptrdiff_t a = base >= 0 ? 0 : (-base + d - 1) / d;
    ptrdiff_t b = base >= n ? 0 : (n - 1 - base) / d + 1;
    *lo = a < K ? a : K;
    *hi = b < K ? b : K;
    if (*hi < *lo)
        *hi = *lo;
}

/* the output columns [*owa, *owb) whose taps all lie inside the input (an empty range at
 * owb where none do) */
static inline void inside_columns(const ptrdiff_t *p, ptrdiff_t *owa, ptrdiff_t *owb)
{
    const ptrdiff_t SW = p[P_SW], last = p[P_W] - 1 - (p[P_KW] - 1) * p[P_DW] + p[P_PL];
    ptrdiff_t a = (p[P_PL] + SW - 1) / SW, b = last >= 0 ? last / SW + 1 : 0;
    if (b > p[P_OW])
        b = p[P_OW];
    *owa = a > b ? b : a;
    *owb = b;
}

/* taps k < K of an input position i that an output position reaches: o = (i + pad - k d) / s
 * exact and in [0, O); their count, with k and o in ks and os */
static inline int tap_list(ptrdiff_t i, ptrdiff_t pad, ptrdiff_t d, ptrdiff_t s, ptrdiff_t K,
                           ptrdiff_t O, ptrdiff_t *ks, ptrdiff_t *os)
{
    int count = 0;
    for (ptrdiff_t k = 0; k < K; k++) {
        ptrdiff_t t = i + pad - k * d;
        if (t >= 0 && t % s == 0 && t / s < O) {
            ks[count] = k;
            os[count++] = t / s;
        }
    }
    return count;
}

#define NB 4 /* vectors of outputs kept in registers */
/* planes whose padded copy is at most this size are convolved whole (second-level cache) */
#define FLAT_MAX_BYTES (512 * 1024)
/* ... and narrower than this: wider rows are convolved row by row straight into the output */
#define FLAT_MAX_WIDTH 32

#endif
