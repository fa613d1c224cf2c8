"""Depthwise then pointwise convolution in one native pass, for inference (``_csrc/fused.c``).

A separable layer run as two convolutions writes its depthwise output to memory and reads it
back for the pointwise step. :func:`separable_conv2d` computes ``F.conv2d(F.conv2d(x, dw,
dw_bias, stride, padding, dilation, groups=C), pw, pw_bias)`` with the depthwise output of a
tile of rows kept in cache and multiplied at once by the pointwise weights (a register-blocked
matrix product, six pixels by 64 output channels with AVX-512, six by 16 with AVX2: the
blockings of BLIS-style GEMM micro-kernels), so only the layer's output is written.
Channels-last tensors are read and written as they are. Where an NCHW image's buffers take
at most 2 MB, each task converts the input rows of its tile of output rows to channels-last
inside the kernel, in cache, and writes its result back as runs of NCHW rows; a larger one
is not converted: each task computes the depthwise output of a strip of rows for every
channel with the native NCHW kernels (``sepconv.nn._native_depthwise``) and multiplies it
with a register block that keeps NCHW (four output channels by 24 pixels), writing runs of
pixels of the output's planes. float32,
depth multiplier 1, zero padding, no gradient, and a processor with AVX-512F or with AVX2 and
FMA (both give the same sums in the same order): elsewhere :func:`available` is ``False`` and
the layers compose two convolutions. ``python benchmarks/layers.py`` compares the layers,
which take this route where it was timed fastest, with PyTorch's compositions and
onnxruntime.

Weights are packed once (:func:`pack`: the depthwise taps transposed, the pointwise weights
in blocks of 64 output channels, zero-padded); the sums are taken in a fixed order (depthwise
taps row-major, then pointwise terms in channel order), whatever the thread count.
``sepconv.nn._autotune`` times this route beside the others and keeps it where it is fastest.

Examples
--------
>>> import torch
>>> import torch.nn.functional as F
>>> from sepconv.nn import _fused
>>> x = torch.randn(2, 8, 10, 10).contiguous(memory_format=torch.channels_last)
>>> dw, pw, b = torch.randn(8, 1, 3, 3), torch.randn(16, 8, 1, 1), torch.randn(16)
>>> packed = _fused.pack(dw, None, pw, b)
>>> y = _fused.separable_conv2d(x, packed, 1, (1, 1, 1, 1), 1)
>>> expected = F.conv2d(F.conv2d(x, dw, None, 1, 1, groups=8), pw, b)
>>> y is None or bool(torch.allclose(y, expected, rtol=1e-4, atol=1e-4))
True
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from . import _native_depthwise as native

__all__ = ["available", "pack", "planned", "separable_conv2d"]

_CL = torch.channels_last
#: output channels per block of the packed pointwise weights (the kernel's register block)
BLOCK = 64


def _configure(lib: ctypes.CDLL) -> bool:
    if not hasattr(lib, "dw_fused_cl_f32"):  # a library built before it
        return False
    fn = lib.dw_fused_cl_f32
    fn.argtypes = [ctypes.c_void_p, ctypes.c_ssize_t, ctypes.c_ssize_t] + [ctypes.c_void_p] * 6
    fn.argtypes += [ctypes.c_float] * 4
    fn.restype = ctypes.c_int
    lib.dw_fused_nchw_f32.argtypes = fn.argtypes
    lib.dw_fused_nchw_f32.restype = ctypes.c_int
    # an empty channels-last call (batch 0): 0 where the kernel runs here, 3 without AVX-512F
    # or AVX2
    params = (ctypes.c_ssize_t * 24)(0, *[1] * 20, 0, 0, 1)
    everything = (-math.inf, math.inf) * 2
    return fn(params, 1, BLOCK, None, None, None, None, None, None, *everything) == 0


#: the configured library, or None (filled on first use)
_LIB: list[ctypes.CDLL | None] = []


def available() -> bool:
    """True where the fused kernel is built and runs on this processor (AVX-512F, or AVX2 and
    FMA)."""
    if not _LIB:
        lib = native._load()
        _LIB.append(lib if lib is not None and _configure(lib) else None)
    return _LIB[0] is not None


class Packed(NamedTuple):
    """A separable layer's weights as the kernel reads them (see :func:`pack`)."""

    taps: Tensor  # (KH * KW, C): depthwise weights, taps major
    depthwise_bias: Tensor | None  # (C,)
    blocks: Tensor  # (Cout_padded / 64, C, 64): pointwise weights in blocks of output channels
    padded_bias: Tensor | None  # (Cout_padded,): pointwise bias, zeros past Cout
    kernel: tuple[int, int]
    out_channels: int
    clamp: tuple[float, float]  # the depthwise output clamped to [lo, hi] before the pointwise
    out_clamp: tuple[float, float] = (-math.inf, math.inf)  # the output clamped (after)


def pack(
    dw: Tensor,
    dw_bias: Tensor | None,
    pw: Tensor,
    pw_bias: Tensor | None,
    clamp: tuple[float, float] = (-math.inf, math.inf),
    out_clamp: tuple[float, float] = (-math.inf, math.inf),
) -> Packed:
    """The weights of a separable layer (depthwise ``(C, 1, KH, KW)``, pointwise
    ``(Cout, C, 1, 1)``, float32) packed for :func:`separable_conv2d` (new tensors).
    ``clamp``: an activation between the steps, the depthwise output clamped to ``[lo, hi]``
    (``(0, inf)`` a ReLU, ``(0, 6)`` a ReLU6; a NaN stays NaN); ``out_clamp``: one after the
    pointwise step, the output clamped alike."""
    with torch.no_grad():
        c, _, kh, kw = dw.shape
        cout = int(pw.shape[0])
        padded = -(-cout // BLOCK) * BLOCK
        taps = dw.detach().reshape(c, kh * kw).t().contiguous()
        wide = pw.new_zeros(c, padded)
        wide[:, :cout] = pw.detach().reshape(cout, c).t()
        blocks = wide.reshape(c, padded // BLOCK, BLOCK).permute(1, 0, 2).contiguous()
        bias = None
        if pw_bias is not None:
            bias = pw.new_zeros(padded)
            bias[:cout] = pw_bias.detach()
        dwb = None if dw_bias is None else dw_bias.detach().contiguous().clone()
    return Packed(
        taps,
        dwb,
        blocks,
        bias,
        (int(kh), int(kw)),
        cout,
        (float(clamp[0]), float(clamp[1])),
        (float(out_clamp[0]), float(out_clamp[1])),
    )


def _ptr(t: Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def separable_conv2d(
    x: Tensor,
    packed: Packed,
    stride: int | tuple[int, int],
    pads: tuple[int, int, int, int],
    dilation: int | tuple[int, int],
    threads: int | None = None,
) -> Tensor | None:
    """The separable layer's output for a float32 CPU ``x`` ``(N, C, H, W)``, in ``x``'s
    memory format (NCHW or channels-last); ``pads`` = (top, bottom, left, right) zeros. None
    where the kernel does not apply (not available here, another dtype, other strides, a
    depth multiplier other than 1). ``threads``: default PyTorch's thread count (one for
    small work)."""
    run = planned(x, packed, stride, pads, dilation, threads)
    return None if run is None else run(x)


def planned(
    x: Tensor,
    packed: Packed,
    stride: int | tuple[int, int],
    pads: tuple[int, int, int, int],
    dilation: int | tuple[int, int],
    threads: int | None = None,
) -> Callable[[Tensor], Tensor] | None:
    """:func:`separable_conv2d` planned once for inputs of ``x``'s shape, strides and dtype
    (the kernel's parameters built once): ``run(x) -> y``, or None where it does not apply.
    ``packed`` is read at each run: it must not be replaced, only its tensors' values."""
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
    if (
        not available()
        or x.dtype is not torch.float32
        or not x.is_cpu
        or x.dim() != 4
        or packed.taps.shape[1] != x.shape[1]
        or x.numel() == 0
    ):
        return None
    n, c, h, w = x.shape
    kh, kw = packed.kernel
    top, bottom, left, right = pads
    oh = (h + top + bottom - (kh - 1) * dh - 1) // sh + 1
    ow = (w + left + right - (kw - 1) * dw - 1) // sw + 1
    if oh <= 0 or ow <= 0:
        return None
    nchw = x.is_contiguous()
    if not nchw and not x.is_contiguous(memory_format=_CL):
        return None
    shape = (n, packed.out_channels, oh, ow)
    layout = torch.contiguous_format if nchw else _CL
    y = torch.empty(shape, dtype=x.dtype, memory_format=layout)
    if threads is None:
        threads = torch.get_num_threads() if y.numel() * c >= native.PARALLEL_MIN else 1
    xs, ys = list(x.stride()), list(y.stride())
    unit = 3 if nchw else 1
    xs[unit] = ys[unit] = 1  # a stride along a single element is free; the kernel wants 1
    params = (ctypes.c_ssize_t * 24)(
        *x.shape, *xs, 1, kh, kw, oh, ow, *ys, sh, sw, dh, dw, top, left, threads
    )
    kernel = _LIB[0].dw_fused_nchw_f32 if nchw else _LIB[0].dw_fused_cl_f32
    cout, coutp = packed.out_channels, packed.blocks.shape[0] * BLOCK
    lo, hi = packed.clamp
    out_lo, out_hi = packed.out_clamp

    def run(x: Tensor) -> Tensor:
        y = torch.empty(shape, dtype=torch.float32, memory_format=layout)
        code = kernel(
            params,
            cout,
            coutp,
            x.data_ptr(),
            packed.taps.data_ptr(),
            _ptr(packed.depthwise_bias),
            packed.blocks.data_ptr(),
            _ptr(packed.padded_bias),
            y.data_ptr(),
            lo,
            hi,
            out_lo,
            out_hi,
        )
        if code:
            raise MemoryError("the fused separable kernel could not allocate its buffer")
        return y

    return run
