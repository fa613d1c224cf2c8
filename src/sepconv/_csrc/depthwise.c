/*
 * Depthwise 2-D convolution (cross-correlation, as torch.nn.functional.conv2d with
 * groups = C): forward, input gradient and weight gradient, on tensors of either memory layout
 * as they are (no layout copy), float32 and float64, any stride, dilation, zero padding
 * (top/left given, bottom/right implied by the output size) and depth multiplier M (output
 * channel o = c * M + m reads input channel c). 1-D convolutions are the case H = 1.
 *
 * Layouts. Tensors are given by their element strides (N, C, H, W). Where W is the unit
 * stride of both tensors ("NCHW"), each channel plane is processed as rows: a padded input
 * row is copied once into a small ring of rows in the first-level cache, split into `stride`
 * phases (phase q holds padded columns q, q + s, q + 2s, ...), so every tap of a row of
 * outputs is a contiguous vector load at any stride and dilation, with no bounds tests. Where
 * C is the unit stride ("channels-last"), vectors run along the channels of a pixel.
 * Where the processor has AVX-512F (checked at run time), the forward takes the paths of
 * depthwise_avx512.h instead where they apply: NCHW rows up to 64 wide at unit horizontal
 * stride and 3 x 3 at stride 2 read straight from the input with masked loads (no copy),
 * and channels-last pixels eight at a time.
 *
 * Each output element (and input-gradient element) is computed by one task with the same
 * arithmetic whatever the number of threads; weight gradients are summed over a partition
 * that depends on the shapes only, in a fixed order, so results do not depend on the thread
 * count.
 *
 * Threads: a small pthread pool; ctypes releases the GIL for the call. The caller's thread
 * works too; a worker that wakes after the work is taken does nothing.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "depthwise.h"

/* the kernels, once per element type */
#if DW_HAVE_AVX512_CODE
static int avx512_allowed = 1;

/* 1 where the AVX-512 rows of depthwise_avx512.h run: the processor has AVX-512F and
 * dw_use_avx512 has not turned them off. */
int dw_avx512(void)
{
    static int present = -1;
    if (present < 0) {
        __builtin_cpu_init();
        present = __builtin_cpu_supports("avx512f") ? 1 : 0;
    }
    return present && avx512_allowed;
}

/* 1 where the processor has AVX2 and FMA (the AVX2 intrinsics paths: depthwise_avx512.h's
 * AVX2 kernels, fused.c) */
int dw_avx2(void)
{
    static int present = -1;
    if (present < 0) {
        __builtin_cpu_init();
        present = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 1 : 0;
    }
    return present;
}

/* Turn the AVX-512 rows off (0) or back on (1), to compare them with the portable paths;
 * returns whether they run now. */
DW_EXPORT int dw_use_avx512(int on)
{
    avx512_allowed = on != 0;
    return dw_avx512();
}
#else
DW_EXPORT int dw_use_avx512(int on)
{
    (void)on;
    return 0;
}
#endif

/* The output size above which NCHW rows and channels-last pixels of whole cache lines are
 * stored past the caches (dw_stream_bytes), or -1 where this build has no streaming stores. */
DW_EXPORT ptrdiff_t dw_streaming_bytes(void) { return DW_HAVE_STREAM ? dw_stream_bytes() : -1; }

#define T float
#define VT vf32
#define SFX f32
#define DW_AVX512_FLOAT
#include "depthwise_kernels.h"
#include "depthwise_avx512.h"
#include "depthwise_backward.h"
#undef DW_AVX512_FLOAT
#undef T
#undef VT
#undef SFX
#define T double
#define VT vf64
#define SFX f64
#include "depthwise_kernels.h"
#include "depthwise_avx512.h"
#include "depthwise_backward.h"
#undef T
#undef VT
#undef SFX

/* 1 where the code above runs fast: AVX2 and FMA compiled (a clone or the whole build) and
 * present on this processor. */
DW_EXPORT int dw_fast(void)
{
#if DW_HAVE_AVX2_CODE && defined(__GNUC__) && defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

static struct PyModuleDef depthwise_module = {
    PyModuleDef_HEAD_INIT, "_depthwise",
    "Native depthwise convolution (forward and gradients), called through ctypes.", -1, NULL,
};

PyMODINIT_FUNC PyInit__depthwise(void) { return PyModule_Create(&depthwise_module); }
