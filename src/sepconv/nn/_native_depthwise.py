"""Native depthwise convolution: the C kernel in ``sepconv/_csrc/depthwise.c``, through ctypes.

:func:`depthwise_conv2d` computes ``torch.nn.functional.conv2d(x, weight, bias, stride,
padding, dilation, groups=C)`` (zero padding, given per side) on a CPU tensor in either memory
format as it is: an NCHW input is read and written as NCHW rows (PyTorch's own NCHW depthwise
kernel is several times slower than its channels-last one, pytorch/pytorch#13716), a
channels-last input as channels-last pixels; no layout copy either way. It is differentiable
(input, weight and bias gradients by the same library; a second derivative, with
``create_graph=True``, falls back to PyTorch's operators). The input gradient at unit stride
is the forward kernel's correlation of the output gradient with the kernel turned by 180
degrees; the 3x3 weight gradient keeps its nine taps in registers, and the 3x3 stride-2 input
gradient on NCHW rows computes the even and odd input columns as two vectors, interleaved.
On a 2-core AMD EPYC at 2 threads, batch 8, NCHW, 128 channels at 56x56, the native forward
with these gradients took 4.1 ms, with PyTorch's convolution backward 6.9 (``python
benchmarks/layers.py --calibrate``: ``samples`` in ``layers_cost_model.json``).

:func:`depthwise_conv3d` does the same for ``F.conv3d(groups=C)`` on NCDHW inputs (rows of unit
stride): each output row sums the rows of its frames, the frames copied once each into a ring
with their zero margins (narrow frames as flat planes, the outputs running across rows); its
weight gradient is its own, its input gradient its forward's on the output gradient spread out
by the stride. PyTorch's NCDHW depthwise convolution runs at a few GMAC/s, its backward
slower still (``benchmarks/depthwise3d.py``).

The library is an optional part of the build (``setup.py``). Where it was not built, lacks
AVX2+FMA code or runs on a processor without them, or ``SEPCONV_NATIVE=0`` is set,
:func:`available` is ``False`` and :func:`depthwise_conv2d` returns ``None``: the caller then
uses PyTorch. It also returns ``None`` for what the kernel does not cover (not a CPU tensor,
not float32/float64, mixed dtypes, an empty tensor, an output with no elements).

Examples
--------
>>> import torch
>>> from sepconv.nn import _native_depthwise as native
>>> x, w = torch.randn(2, 3, 9, 8), torch.randn(6, 1, 3, 3)
>>> y = native.depthwise_conv2d(x, w, None, 2, ((0, 1), (1, 1)))
>>> expected = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (1, 1, 0, 1)), w,
...                                       stride=2, groups=3)
>>> y is None or bool(torch.allclose(y, expected, rtol=1e-5, atol=1e-5))
True
"""

from __future__ import annotations

import array
import ctypes
import os
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .._extensions import load

__all__ = ["available", "depthwise_conv1d", "depthwise_conv2d", "depthwise_conv3d"]

#: below this many multiply-adds one thread does the work (waking a worker costs more)
PARALLEL_MIN = 1 << 17
_CL = torch.channels_last
#: an array.array type code of ptrdiff_t's size (a buffer cheaper to build than a ctypes array)
_WORDS = next(
    (c for c in ("q", "l", "i") if array.array(c).itemsize == ctypes.sizeof(ctypes.c_ssize_t)),
    None,
)


def _configure(lib: ctypes.CDLL) -> bool:
    ptr = ctypes.c_void_p
    for suffix in ("f32", "f64"):
        for name, nargs in (
            ("dw_forward", 5),
            ("dw_grad_input", 4),
            ("dw_grad_weight", 4),
            ("dw_forward3d", 6),
            ("dw_grad_weight3d", 5),
        ):
            fn = getattr(lib, f"{name}_{suffix}")
            fn.argtypes = [ptr] * nargs
            fn.restype = ctypes.c_int
    lib.dw_fast.argtypes = []
    lib.dw_fast.restype = ctypes.c_int
    lib.dw_use_avx512.argtypes = [ctypes.c_int]
    lib.dw_use_avx512.restype = ctypes.c_int
    if hasattr(lib, "dw_pool_spin"):  # absent from a library built before it
        lib.dw_pool_spin.argtypes = [ctypes.c_long]
        lib.dw_pool_spin.restype = ctypes.c_long
    if hasattr(lib, "dw_streaming_bytes"):
        lib.dw_streaming_bytes.argtypes = []
        lib.dw_streaming_bytes.restype = ctypes.c_ssize_t
    if hasattr(lib, "dw_use_openmp"):
        lib.dw_use_openmp.argtypes = [ctypes.c_char_p]
        lib.dw_use_openmp.restype = ctypes.c_int
        _set_openmp(lib, True)
    return bool(lib.dw_fast())


def _openmp_runtime() -> str | None:
    """The file of the OpenMP runtime PyTorch runs its intra-op threads on (GNU libgomp, or
    Intel's, which provides the same entry points), where PyTorch's parallel backend is OpenMP
    on Linux; else None. The native kernels then run their threads in PyTorch's team instead
    of a pool of their own, which would compete with PyTorch's spinning threads for the
    cores (``depthwise_pool.c``)."""
    if not torch.__config__.parallel_info().count("parallel backend: OpenMP"):
        return None
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if ".so" in line}
    except OSError:
        return None
    found = sorted(
        p
        for p in paths
        if os.path.basename(p).startswith(("libgomp", "libiomp")) and ".so" in os.path.basename(p)
    )
    here = os.path.dirname(torch.__file__)
    found.sort(key=lambda p: not p.startswith(here))  # PyTorch's own copy first
    return found[0] if found else None


def _use_openmp(on: bool) -> bool:
    """Run the kernels' threads on PyTorch's OpenMP team (``True``, the default where there is
    one) or on their own pool (``False``, to compare); returns whether the team is used now."""
    lib = _load()
    if lib is None or not hasattr(lib, "dw_use_openmp"):
        return False
    return _set_openmp(lib, on)


def _set_openmp(lib: ctypes.CDLL, on: bool) -> bool:
    path = _openmp_runtime() if on else None
    return bool(lib.dw_use_openmp(None if path is None else os.fsencode(path)))


def _load() -> ctypes.CDLL | None:
    return load("sepconv._depthwise", _configure)


def available() -> bool:
    """True when the native kernel is built, loadable and fast on this processor."""
    return _load() is not None


def _use_avx512(on: bool) -> bool:
    """Let the forward's AVX-512 rows run (``True``, the default where the processor has
    AVX-512F) or not (the portable paths, to compare them); returns whether they run now."""
    lib = _load()
    return bool(lib.dw_use_avx512(int(on))) if lib is not None else False


def _streaming_bytes() -> int:
    """The output size in bytes above which the kernel stores NCHW rows and channels-last
    pixels of whole cache lines past the caches (the last-level cache's size), or -1 where it
    has no streaming stores."""
    lib = _load()
    if lib is None or not hasattr(lib, "dw_streaming_bytes"):
        return -1
    return int(lib.dw_streaming_bytes())


def _pool_spin(microseconds: float | None = None) -> float:
    """How long the kernel's pool threads watch for work before they sleep, in microseconds
    (0, the default: they sleep at once); ``microseconds`` sets it (a number >= 0) and the
    previous value is returned. A spin saves the wake-up of a sleeping thread between
    consecutive calls (PyTorch's OpenMP threads spin likewise) at the price of that much of a
    core after each call; results do not depend on it. Raises ``ValueError`` for a negative
    or non-finite value."""
    if microseconds is not None and not (
        isinstance(microseconds, (int, float)) and 0 <= microseconds < 1e9
    ):
        raise ValueError(f"`microseconds` must be a number in [0, 1e9), got {microseconds!r}")
    lib = _load()
    if lib is None or not hasattr(lib, "dw_pool_spin"):
        return 0.0
    return lib.dw_pool_spin(-1 if microseconds is None else round(microseconds * 1e3)) / 1e3


def _pair(value: Any, name: str) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    if (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, int) for v in value)
    ):
        return int(value[0]), int(value[1])
    raise TypeError(f"`{name}` must be an int or a pair of ints, got {value!r}")


def _pads(padding: Any) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) from an int, (rows, columns) or ((top, bottom), (left,
    right))."""
    if isinstance(padding, int):
        return padding, padding, padding, padding
    if isinstance(padding, (tuple, list)) and len(padding) == 2:
        if all(isinstance(p, int) for p in padding):
            return padding[0], padding[0], padding[1], padding[1]
        if all(isinstance(p, (tuple, list)) and len(p) == 2 for p in padding):
            (top, bottom), (left, right) = padding
            return int(top), int(bottom), int(left), int(right)
    raise TypeError(
        "`padding` must be an int, (rows, columns) or ((top, bottom), (left, "
        f"right)), got {padding!r}"
    )


def _layout(t: Tensor) -> str | None:
    """'nchw' for an NCHW-contiguous tensor or one whose W axis has unit stride, 'cl' for a
    channels-last one or one whose C axis has unit stride, else None."""
    if t.is_contiguous():
        return "nchw"
    if t.is_contiguous(memory_format=_CL):
        return "cl"
    if t.shape[3] == 1 or t.stride(3) == 1:
        return "nchw"
    if t.shape[1] == 1 or t.stride(1) == 1:
        return "cl"
    return None


def _arrange(t: Tensor, layout: str) -> Tensor:
    """``t`` with the layout's unit-stride axis (a copy only where it has not)."""
    if _layout(t) == layout:
        return t
    return t.contiguous() if layout == "nchw" else t.contiguous(memory_format=_CL)


def _empty(shape: tuple[int, ...], like: Tensor, layout: str) -> Tensor:
    if layout == "nchw":
        return torch.empty(shape, dtype=like.dtype)
    return torch.empty(shape, dtype=like.dtype, memory_format=_CL)


def _params(
    x: Tensor,
    x_layout: str,
    y: Tensor,
    multiplier: int,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    top: int,
    left: int,
    threads: int,
) -> Any:
    """The kernel's integer parameters (``P_*`` in depthwise.h), as a buffer whose address
    :func:`_address` gives; built with as little Python work as possible (a call on a small
    tensor is mostly this)."""
    unit = 3 if x_layout == "nchw" else 1
    xs, ys = list(x.stride()), list(y.stride())
    xs[unit] = ys[unit] = 1
    values = [
        *x.shape,
        *xs,
        multiplier,
        kernel[0],
        kernel[1],
        y.shape[2],
        y.shape[3],
        *ys,
        stride[0],
        stride[1],
        dilation[0],
        dilation[1],
        top,
        left,
        threads,
    ]
    if _WORDS is None:
        return (ctypes.c_ssize_t * len(values))(*values)
    return array.array(_WORDS, values)


def _address(params: Any) -> int | Any:
    """What to pass for the parameters made by :func:`_params`."""
    return params if _WORDS is None else params.buffer_info()[0]


def _threads(work: int) -> int:
    return torch.get_num_threads() if work >= PARALLEL_MIN else 1


def _call(fn: Any, *args: Any) -> None:
    code = fn(*args)
    if code == 1:
        raise MemoryError("the native depthwise convolution could not allocate its buffers")
    if code:
        raise RuntimeError(f"the native depthwise convolution failed (code {code})")


def _plan(
    x: Tensor, weight: Tensor, stride: tuple, pads: tuple, dilation: tuple, layout: str
) -> tuple[tuple[int, ...], Any, Any]:
    """The output's shape, the kernel's parameters (:func:`_params`) and its function for
    inputs like ``x`` and ``weight`` (an output below one pixel: a shape with a zero)."""
    n, c, h, w = x.shape
    out_channels, _, kh, kw = weight.shape
    top, bottom, left, right = pads
    oh = (h + top + bottom - (kh - 1) * dilation[0] - 1) // stride[0] + 1
    ow = (w + left + right - (kw - 1) * dilation[1] - 1) // stride[1] + 1
    shape = (n, out_channels, max(oh, 0), max(ow, 0))
    y = _empty(shape, x, layout)  # the output's strides (those of every call's)
    p = _params(
        x,
        layout,
        y,
        out_channels // c,
        (kh, kw),
        stride,
        dilation,
        top,
        left,
        _threads(y.numel() * kh * kw),
    )
    lib = _load()
    return shape, p, lib.dw_forward_f32 if x.dtype == torch.float32 else lib.dw_forward_f64


def _run(
    plan: tuple[tuple[int, ...], Any, Any],
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    layout: str,
) -> Tensor:
    """The kernel's forward on ``x`` as ``plan`` (:func:`_plan`) planned it."""
    shape, p, fn = plan
    y = _empty(shape, x, layout)
    wc = weight if weight.is_contiguous() else weight.detach().contiguous()
    if bias is not None and not bias.is_contiguous():
        bias = bias.detach().contiguous()
    b = None if bias is None else bias.data_ptr()
    _call(fn, _address(p), x.data_ptr(), wc.data_ptr(), b, y.data_ptr())
    return y


def _forward(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: tuple,
    pads: tuple,
    dilation: tuple,
    layout: str,
) -> Tensor:
    return _run(_plan(x, weight, stride, pads, dilation, layout), x, weight, bias, layout)


class _Depthwise(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        stride: tuple,
        pads: tuple,
        dilation: tuple,
        layout: str,
        backward: str,
    ) -> Tensor:
        y = _forward(x, weight, bias, stride, pads, dilation, layout)
        ctx.save_for_backward(x, weight, bias)
        ctx.settings = (stride, pads, dilation, layout, backward)
        return y

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, weight, bias = ctx.saved_tensors
        stride, pads, dilation, layout, backward = ctx.settings
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        if torch.is_grad_enabled():  # create_graph: differentiable PyTorch operators
            return (
                *_reference_grads(x, weight, bias, grad, stride, pads, dilation),
                None,
                None,
                None,
                None,
                None,
            )
        if backward == "torch":
            grad_x, grad_w = _torch_grads(x, weight, grad, stride, pads, dilation, need_x, need_w)
            grad_b = grad.sum((0, 2, 3)) if need_b and bias is not None else None
            return grad_x, grad_w, grad_b, None, None, None, None, None
        lib = _load()
        f32 = x.dtype == torch.float32
        c = x.shape[1]
        out_channels, _, kh, kw = weight.shape
        g = _arrange(grad, layout)
        work = g.numel() * kh * kw
        grad_x = grad_w = grad_b = None
        if need_x:
            grad_x = _empty(tuple(x.shape), x, layout)
            p = _params(
                grad_x,
                layout,
                g,
                out_channels // c,
                (kh, kw),
                stride,
                dilation,
                pads[0],
                pads[2],
                _threads(work),
            )
            wc = weight.detach().contiguous()
            _call(
                lib.dw_grad_input_f32 if f32 else lib.dw_grad_input_f64,
                _address(p),
                g.data_ptr(),
                wc.data_ptr(),
                grad_x.data_ptr(),
            )
        if need_w:
            grad_w = torch.empty(weight.shape, dtype=weight.dtype)
            p = _params(
                x,
                layout,
                g,
                out_channels // c,
                (kh, kw),
                stride,
                dilation,
                pads[0],
                pads[2],
                _threads(work),
            )
            _call(
                lib.dw_grad_weight_f32 if f32 else lib.dw_grad_weight_f64,
                _address(p),
                x.data_ptr(),
                g.data_ptr(),
                grad_w.data_ptr(),
            )
        if need_b and bias is not None:
            grad_b = grad.sum((0, 2, 3))
        return grad_x, grad_w, grad_b, None, None, None, None, None


def _torch_grads(
    x: Tensor,
    weight: Tensor,
    grad: Tensor,
    stride: tuple,
    pads: tuple,
    dilation: tuple,
    need_x: bool,
    need_w: bool,
) -> tuple:
    """Input and weight gradients by PyTorch's convolution backward (what ``F.conv2d``'s
    autograd runs); uneven padding through a padded copy of the input."""
    top, bottom, left, right = pads
    even = top == bottom and left == right
    inp = x if even else F.pad(x, (left, right, top, bottom))
    grad_x, grad_w, _ = torch.ops.aten.convolution_backward(
        grad,
        inp,
        weight,
        None,
        list(stride),
        [top, left] if even else [0, 0],
        list(dilation),
        False,
        [0, 0],
        x.shape[1],
        [need_x, need_w, False],
    )
    if grad_x is not None and not even:
        grad_x = grad_x[:, :, top : top + x.shape[2], left : left + x.shape[3]]
    return grad_x, grad_w


def _reference_grads(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    grad: Tensor,
    stride: tuple,
    pads: tuple,
    dilation: tuple,
) -> tuple:
    """Gradients through PyTorch's operators, recorded (``create_graph``): differentiable
    again with respect to the inputs and ``grad``."""
    inputs = (x, weight, bias)
    wanted = [t for t in inputs if t is not None and t.requires_grad]
    with torch.enable_grad():
        y = F.conv2d(
            F.pad(x, (pads[2], pads[3], pads[0], pads[1])),
            weight,
            bias,
            stride,
            0,
            dilation,
            x.shape[1],
        )
        grads = iter(torch.autograd.grad(y, wanted, grad, create_graph=True))
    return tuple(next(grads) if t is not None and t.requires_grad else None for t in inputs)


def depthwise_conv2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: Any = 0,
    dilation: int | tuple[int, int] = 1,
    *,
    backward: str = "native",
) -> Tensor | None:
    """Depthwise 2-D cross-correlation of ``x`` (N, C, H, W) with ``weight`` (C * M, 1, KH,
    KW) and optional ``bias`` (C * M,), zero ``padding`` an int, (rows, columns) or ((top,
    bottom), (left, right)); as ``F.conv2d(F.pad(x, ...), weight, bias, stride, 0, dilation,
    groups=C)``. The result (N, C * M, H_out, W_out) has ``x``'s memory format (an input whose
    W axis has unit stride gives an NCHW result, one whose C axis has a channels-last one).

    Returns ``None`` where the native kernel is unavailable or does not apply (see the module
    docstring); raises ``TypeError`` for a malformed ``stride``, ``padding`` or
    ``dilation``. ``backward``: which kernel computes the gradients, ``'native'`` or
    ``'torch'`` (PyTorch's convolution backward, as ``F.conv2d``'s autograd runs it).
    """
    stride, dilation, pads = _pair(stride, "stride"), _pair(dilation, "dilation"), _pads(padding)
    if backward not in ("native", "torch"):
        raise ValueError(f"`backward` must be 'native' or 'torch', got {backward!r}")
    if not _applies(x, weight, bias) or min(*stride, *dilation) < 1 or min(pads) < 0:
        return None
    kh, kw = weight.shape[2:]
    for size, before, after, k, d in (
        (x.shape[2], pads[0], pads[1], kh, dilation[0]),
        (x.shape[3], pads[2], pads[3], kw, dilation[1]),
    ):
        if size + before + after < (k - 1) * d + 1:
            return None
    layout = _layout(x)
    if layout is None:
        x, layout = x.contiguous(), "nchw"
    if torch.is_grad_enabled() and (
        x.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad)
    ):
        return _Depthwise.apply(x, weight, bias, stride, pads, dilation, layout, backward)
    return _forward(x, weight, bias, stride, pads, dilation, layout)


def planned_conv2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: tuple[int, int],
    pads: tuple[int, int, int, int],
    dilation: tuple[int, int],
) -> Callable[[Tensor, Tensor, Tensor | None], Tensor] | None:
    """:func:`depthwise_conv2d`'s inference call planned once for inputs like ``x`` (same
    shape, strides, dtype; weights of ``weight``'s and ``bias``'s shape and dtype) at the
    current thread count: ``f(x, weight, bias)`` runs the kernel with the parameters worked
    out here (the same kernel call, so the same result bit for bit); None where
    :func:`depthwise_conv2d` would not run the kernel on ``x``. For calls without gradients
    (a prepared call, ``sepconv.nn._prepared``, checks what it was planned with)."""
    if not _applies(x, weight, bias) or min(*stride, *dilation) < 1 or min(pads) < 0:
        return None
    layout = _layout(x)
    if layout is None:
        return None
    plan = _plan(x, weight, stride, pads, dilation, layout)
    if 0 in plan[0][2:]:
        return None

    def run(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        return _run(plan, x, weight, bias, layout)

    return run


def depthwise_conv1d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int = 1,
) -> Tensor | None:
    """Depthwise 1-D cross-correlation of ``x`` (N, C, L) with ``weight`` (C * M, 1, K):
    :func:`depthwise_conv2d` with H = 1 (``padding`` an int or (left, right)); ``None`` where
    it does not apply."""
    if not (
        isinstance(x, Tensor) and isinstance(weight, Tensor) and x.dim() == 3 and weight.dim() == 3
    ):
        return None
    pair = (padding, padding) if isinstance(padding, int) else tuple(padding)
    y = depthwise_conv2d(
        x.unsqueeze(2), weight.unsqueeze(2), bias, (1, stride), ((0, 0), pair), (1, dilation)
    )
    return None if y is None else y.squeeze(2)


def _triple(value: Any, name: str) -> tuple[int, int, int]:
    if isinstance(value, int):
        return value, value, value
    if (
        isinstance(value, (tuple, list))
        and len(value) == 3
        and all(isinstance(v, int) for v in value)
    ):
        return int(value[0]), int(value[1]), int(value[2])
    raise TypeError(f"`{name}` must be an int or a triple of ints, got {value!r}")


def _pads3(padding: Any) -> tuple[int, int, int, int, int, int]:
    """(front, back, top, bottom, left, right) from an int, (frames, rows, columns) or
    ((front, back), (top, bottom), (left, right))."""
    if isinstance(padding, int):
        return (padding,) * 6
    if isinstance(padding, (tuple, list)) and len(padding) == 3:
        if all(isinstance(p, int) for p in padding):
            return tuple(int(p) for p in padding for _ in range(2))  # type: ignore[return-value]
        if all(
            isinstance(p, (tuple, list)) and len(p) == 2 and all(isinstance(v, int) for v in p)
            for p in padding
        ):
            return tuple(int(v) for p in padding for v in p)  # type: ignore[return-value]
    raise TypeError(
        "`padding` must be an int, (frames, rows, columns) or ((front, back), (top, bottom), "
        f"(left, right)), got {padding!r}"
    )


def _params3d(
    x: Tensor, y: Tensor, weight: Tensor, stride: tuple, pads: tuple, dilation: tuple
) -> tuple[Any, Any]:
    """The 3-D kernels' parameters: one frame's (:func:`_params`, of ``x`` and the output or
    output gradient ``y``) and the depth axis's (``Q_*`` in depthwise.h)."""
    out_channels, _, kt, kh, kw = weight.shape
    p = _params(
        x[:, :, 0],
        "nchw",
        y[:, :, 0],
        out_channels // x.shape[1],
        (kh, kw),
        stride[1:],
        dilation[1:],
        pads[2],
        pads[4],
        _threads(y.numel() * kt * kh * kw),
    )
    depth = (x.shape[2], x.stride(2), kt, y.shape[2], y.stride(2), stride[0], dilation[0], pads[0])
    return p, (ctypes.c_ssize_t * len(depth))(*depth)


def _forward3d(
    x: Tensor, weight: Tensor, bias: Tensor | None, stride: tuple, pads: tuple, dilation: tuple
) -> Tensor:
    """The kernel's 3-D forward: ``x`` (N, C, D, H, W) with unit-stride rows, ``weight`` (C *
    M, 1, KT, KH, KW); the result NCDHW contiguous."""
    n, c, d, h, w = x.shape
    out_channels, _, kt, kh, kw = weight.shape
    sizes = []
    for size, (before, after), k, s, dil in zip(
        (d, h, w), (pads[0:2], pads[2:4], pads[4:6]), (kt, kh, kw), stride, dilation
    ):
        sizes.append((size + before + after - (k - 1) * dil - 1) // s + 1)
    y = torch.empty((n, out_channels, *sizes), dtype=x.dtype)
    p, q = _params3d(x, y, weight, stride, pads, dilation)
    lib = _load()
    wc = weight if weight.is_contiguous() else weight.detach().contiguous()
    if bias is not None and not bias.is_contiguous():
        bias = bias.detach().contiguous()
    fn = lib.dw_forward3d_f32 if x.dtype == torch.float32 else lib.dw_forward3d_f64
    b = None if bias is None else bias.data_ptr()
    _call(fn, _address(p), q, x.data_ptr(), wc.data_ptr(), b, y.data_ptr())
    return y


def _grad_input3d(
    grad: Tensor, x: Tensor, weight: Tensor, stride: tuple, pads: tuple, dilation: tuple
) -> Tensor | None:
    """The input gradient by the forward kernel where that is exact: one kernel per channel
    (M = 1), no more padding before or after than the kernel reaches. It is then the output
    gradient, spread out by the stride (zeros between its values), correlated at unit stride
    with the kernel turned over, padded by (K - 1) d - p before; else None."""
    if weight.shape[0] != x.shape[1]:
        return None
    if max(stride) > 1:  # the transposed convolution's input: zeros between the values
        spread = [(o - 1) * s + 1 for o, s in zip(grad.shape[2:], stride)]
        wide = grad.new_zeros((*grad.shape[:2], *spread))
        wide[:, :, :: stride[0], :: stride[1], :: stride[2]] = grad
        grad = wide
    turned = []
    for i, (k, d) in enumerate(zip(weight.shape[2:], dilation)):
        reach = (k - 1) * d
        before = reach - pads[2 * i]
        after = x.shape[2 + i] - grad.shape[2 + i] - before + reach
        if before < 0 or after < 0:
            return None
        turned += [before, after]
    flipped = weight.detach().flip(2, 3, 4).contiguous()
    return _forward3d(grad, flipped, None, (1, 1, 1), tuple(turned), dilation)


def _grad_weight3d(
    grad: Tensor, x: Tensor, weight: Tensor, stride: tuple, pads: tuple, dilation: tuple
) -> Tensor:
    """The weight gradient by the 3-D kernel: each channel's sums in a fixed order."""
    gw = torch.empty(weight.shape, dtype=weight.dtype)
    p, q = _params3d(x, grad, weight, stride, pads, dilation)
    lib = _load()
    fn = lib.dw_grad_weight3d_f32 if x.dtype == torch.float32 else lib.dw_grad_weight3d_f64
    _call(fn, _address(p), q, x.data_ptr(), grad.data_ptr(), gw.data_ptr())
    return gw


class _Depthwise3d(torch.autograd.Function):
    """The native 3-D forward and weight gradient; the input gradient by the forward kernel
    (:func:`_grad_input3d`) or else by PyTorch's convolution backward (what ``F.conv3d``'s
    autograd runs), through a padded copy of the input where the padding is uneven."""

    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        stride: tuple,
        pads: tuple,
        dilation: tuple,
    ) -> Tensor:
        ctx.save_for_backward(x, weight, bias)
        ctx.settings = (stride, pads, dilation)
        return _forward3d(x, weight, bias, stride, pads, dilation)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, weight, bias = ctx.saved_tensors
        stride, pads, dilation = ctx.settings
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        even = all(pads[i] == pads[i + 1] for i in (0, 2, 4))
        if torch.is_grad_enabled():  # create_graph: differentiable PyTorch operators
            inputs = (x, weight, bias)
            wanted = [t for t in inputs if t is not None and t.requires_grad]
            with torch.enable_grad():
                padded = F.pad(x, (pads[4], pads[5], pads[2], pads[3], pads[0], pads[1]))
                y = F.conv3d(padded, weight, bias, stride, 0, dilation, x.shape[1])
                found = iter(torch.autograd.grad(y, wanted, grad, create_graph=True))
            grads = [next(found) if t is not None and t.requires_grad else None for t in inputs]
            return (*grads, None, None, None)
        grad = grad.contiguous()
        grad_x = _grad_input3d(grad, x, weight, stride, pads, dilation) if need_x else None
        if need_x and grad_x is None:  # PyTorch's, through a padded copy where uneven
            inp = x if even else F.pad(x, (pads[4], pads[5], pads[2], pads[3], pads[0], pads[1]))
            grad_x = torch.ops.aten.convolution_backward(
                grad,
                inp,
                weight,
                None,
                list(stride),
                [pads[0], pads[2], pads[4]] if even else [0, 0, 0],
                list(dilation),
                False,
                [0, 0, 0],
                x.shape[1],
                [True, False, False],
            )[0]
            if not even:  # the input's part, contiguous as the native gradients are
                d, h, w = x.shape[2:]
                grad_x = grad_x[
                    :, :, pads[0] : pads[0] + d, pads[2] : pads[2] + h, pads[4] : pads[4] + w
                ].contiguous()
        grad_w = _grad_weight3d(grad, x, weight, stride, pads, dilation) if need_w else None
        grad_b = grad.sum((0, 2, 3, 4)) if need_b and bias is not None else None
        return grad_x, grad_w, grad_b, None, None, None


def depthwise_conv3d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, int, int] = 1,
    padding: Any = 0,
    dilation: int | tuple[int, int, int] = 1,
) -> Tensor | None:
    """Depthwise 3-D cross-correlation of ``x`` (N, C, D, H, W) with ``weight`` (C * M, 1, KT,
    KH, KW) and optional ``bias`` (C * M,), zero ``padding`` an int, (frames, rows, columns)
    or ((front, back), (top, bottom), (left, right)); as ``F.conv3d(F.pad(x, ...), weight,
    bias, stride, 0, dilation, groups=C)``. The result (N, C * M, D_out, H_out, W_out) is
    NCDHW contiguous. Each output row sums the KT x KH input rows of its frames by the NCHW
    row kernel (PyTorch's own NCDHW depthwise convolution runs at a few GMAC/s).

    Returns ``None`` where the kernel is unavailable or does not apply: as
    :func:`depthwise_conv2d`, and for an input whose W axis does not have unit stride (a
    ``torch.channels_last_3d`` tensor, which PyTorch's convolution runs well). Raises
    ``TypeError`` for a malformed ``stride``, ``padding`` or ``dilation``. Differentiable: the
    weight gradient by the kernel's rows, the input gradient by the forward kernel where M = 1
    (on the output gradient spread out by the stride; PyTorch's convolution backward
    otherwise); a second derivative, with ``create_graph=True``, by PyTorch's operators.
    """
    stride, dilation = _triple(stride, "stride"), _triple(dilation, "dilation")
    pads = _pads3(padding)
    if not (
        isinstance(x, Tensor)
        and isinstance(weight, Tensor)
        and x.dim() == 5
        and weight.dim() == 5
        and x.shape[2] > 0
    ):
        return None
    if not _applies(x[:, :, 0], weight[:, :, 0], bias):
        return None
    if min(*stride, *dilation) < 1 or min(pads) < 0 or (x.stride(4) != 1 and x.shape[4] != 1):
        return None
    for size, before, after, k, dil in zip(
        x.shape[2:], pads[0::2], pads[1::2], weight.shape[2:], dilation
    ):
        if size + before + after < (k - 1) * dil + 1:
            return None
    if x.stride(4) != 1:  # W == 1: any stride is as good as 1
        x = x.contiguous()
    if torch.is_grad_enabled() and (
        x.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad)
    ):
        return _Depthwise3d.apply(x, weight, bias, stride, pads, dilation)
    return _forward3d(x, weight, bias, stride, pads, dilation)


def _applies(x: Any, weight: Any, bias: Any) -> bool:
    # cheapest tests first: this runs on every layer call
    if not (
        isinstance(x, Tensor)
        and isinstance(weight, Tensor)
        and x.dim() == 4
        and weight.dim() == 4
        and x.is_cpu
        and weight.is_cpu
        and available()
    ):
        return False
    dtype = x.dtype
    if (dtype is not torch.float32 and dtype is not torch.float64) or weight.dtype is not dtype:
        return False
    out_channels, one, kh, kw = weight.shape
    if bias is not None and not (
        isinstance(bias, Tensor)
        and bias.dtype is dtype
        and bias.is_cpu
        and tuple(bias.shape) == (out_channels,)
    ):
        return False
    c = x.shape[1]
    return (
        x.numel() > 0
        and one == 1
        and c > 0
        and out_channels > 0
        and out_channels % c == 0
        and kh > 0
        and kw > 0
    )
