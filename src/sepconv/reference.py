"""Readable NumPy convolutions that count the multiplications they perform.

This module is the oracle of the test suite and the engine of the worked examples. It is slow
on purpose: every operation loops over the kernel taps and, for each tap, forms the array of
elementwise products of the shifted input with that tap's weights, adds the array's ``size``
to a :class:`Counter` and only then sums it into the output. The count is therefore what the
computation did, not a closed-form formula; the tests check it against :mod:`sepconv.cost`.

All operations are cross-correlations (the kernel is not flipped), as in every deep-learning
framework.

Layout
------
NHWC inputs with Keras-shaped weights, as ``keras.layers.Conv2D`` and TensorFlow:

============================== ==================================== ============================
what                           sepconv.reference (Keras)            torch (``nn.Conv2d``)
============================== ==================================== ============================
input                          ``(N, H, W, C)`` or ``(H, W, C)``    ``(N, C, H, W)``
conv2d kernel                  ``(kh, kw, C_in / groups, C_out)``   ``(C_out, C_in / groups,
                                                                    kh, kw)``
depthwise kernel               ``(kh, kw, C, M)``                   ``(C * M, 1, kh, kw)``
pointwise kernel               ``(1, 1, C_in, C_out)`` or           ``(C_out, C_in, 1, 1)``
                               ``(C_in, C_out)``
bias                           ``(C_out,)``                         ``(C_out,)``
============================== ==================================== ============================

``M`` is the depth multiplier; depthwise output channel ``c * M + m`` is input channel ``c``
filtered with kernel ``[:, :, c, m]``, as in TensorFlow and as torch's ``groups=C``
convolution orders its output channels. :mod:`sepconv.layouts` converts arrays and weights
between the layouts; :func:`to_nchw`, :func:`to_nhwc` and the ``*_to_torch`` /
``*_from_torch`` names here are its ``channels_first``, ``channels_last``,
``*_keras_to_torch`` and ``*_torch_to_keras``.

Padding is ``'valid'`` (none), ``'same'`` (TensorFlow/Keras-exact, see :mod:`sepconv.padding`:
output ``ceil(n / stride)``, the odd extra element at the bottom/right), an int (every side),
a tuple ``(ph, pw)`` (symmetric per axis) or ``((top, bottom), (left, right))``.

Examples
--------
The worked example: a 12x12x3 input, 256 filters of 5x5, no padding.

>>> import numpy as np
>>> from sepconv import reference
>>> rng = np.random.default_rng(0)
>>> x = rng.standard_normal((12, 12, 3))
>>> counter = reference.Counter()
>>> y = reference.conv2d(x, rng.standard_normal((5, 5, 3, 256)), counter=counter)
>>> y.shape, counter.multiplications
((8, 8, 256), 1228800)
>>> counter.reset()
>>> y = reference.separable_conv2d(x, rng.standard_normal((5, 5, 3, 1)),
...                                rng.standard_normal((1, 1, 3, 256)), counter=counter)
>>> y.shape, counter.multiplications, counter.by_operation
((8, 8, 256), 53952, {'depthwise_conv2d': 4800, 'pointwise_conv2d': 49152})
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import layouts as _layouts
from ._api import public_dir as _public_dir
from ._checks import (
    SepconvTypeError,
    SepconvValueError,
    check_choice,
    check_ntuple,
    check_padding,
    check_positive_int,
    describe,
)
from .padding import output_size, resolve_padding, spatial_passes

__all__ = [
    "Counter",
    "conv2d",
    "depthwise_conv2d",
    "pointwise_conv2d",
    "separable_conv2d",
    "spatially_separable_conv2d",
    "to_nchw",
    "to_nhwc",
    "conv_kernel_to_torch",
    "conv_kernel_from_torch",
    "depthwise_kernel_to_torch",
    "depthwise_kernel_from_torch",
    "pointwise_kernel_to_torch",
    "pointwise_kernel_from_torch",
]

# Largest product array formed at once (elements); larger outputs are computed in row blocks.
_BLOCK_ELEMENTS = 1 << 22


class Counter:
    """Tally of the scalar multiplications the operations of this module perform.

    Pass one as ``counter=`` to any operation; the operation adds, for every kernel tap, the
    number of products it formed. Composite operations record each step under its own name.

    Attributes
    ----------
    multiplications : int
        Total scalar multiplications counted since creation or the last :meth:`reset`.
    by_operation : dict of str to int
        The same total split by step: ``'conv2d'``, ``'depthwise_conv2d'``,
        ``'pointwise_conv2d'``, ``'column_conv2d'`` (the ``kh x 1`` pass of a spatially
        separable convolution) and ``'row_conv2d'`` (its ``1 x kw`` pass).

    Examples
    --------
    >>> import numpy as np
    >>> from sepconv.reference import Counter, depthwise_conv2d
    >>> counter = Counter()
    >>> _ = depthwise_conv2d(np.ones((12, 12, 3)), np.ones((5, 5, 3, 1)), counter=counter)
    >>> counter
    Counter(multiplications=4800, by_operation={'depthwise_conv2d': 4800})
    """

    def __init__(self) -> None:
        self.multiplications = 0
        self.by_operation: dict[str, int] = {}

    def add(self, operation: str, multiplications: int) -> None:
        """Record ``multiplications`` scalar products performed by ``operation``."""
        self.multiplications += int(multiplications)
        self.by_operation[operation] = self.by_operation.get(operation, 0) + int(multiplications)

    def reset(self) -> None:
        """Set every count back to zero."""
        self.multiplications = 0
        self.by_operation = {}

    def __repr__(self) -> str:
        return f"Counter(multiplications={self.multiplications}, by_operation={self.by_operation})"


# --------------------------------------------------------------------------------------------
# Validation


def _check_array(name: str, value: Any, ndims: tuple[int, ...], layout: str) -> np.ndarray:
    """Array with one of ``ndims`` dimensions, positive sizes and a real numeric dtype."""
    array = np.asarray(value)
    if array.dtype.kind not in "iuf":
        raise SepconvTypeError(
            f"`{name}` must hold real numbers (integer or floating dtype), got {describe(array)}"
        )
    if array.ndim not in ndims:
        wanted = " or ".join(str(d) for d in ndims)
        raise SepconvValueError(
            f"`{name}` must have {wanted} dimensions {layout}, got {describe(array)}"
        )
    if 0 in array.shape:
        raise SepconvValueError(
            f"`{name}` must have positive sizes {layout}, got {describe(array)}"
        )
    return array


def _check_input(x: Any) -> tuple[np.ndarray, bool]:
    """Return ``x`` as a 4-D NHWC array and whether it was unbatched ``(H, W, C)``."""
    array = _check_array("x", x, (3, 4), "(N, H, W, C) or (H, W, C)")
    if array.ndim == 3:
        return array[np.newaxis], True
    return array, False


def _result_dtype(*arrays: np.ndarray | None) -> np.dtype:
    dtype = np.result_type(*(a for a in arrays if a is not None))
    return dtype if dtype.kind == "f" else np.dtype(np.float64)


def _check_bias(bias: Any, channels: int, what: str) -> np.ndarray | None:
    if bias is None:
        return None
    array = _check_array("bias", bias, (1,), "(C_out,)")
    if array.shape[0] != channels:
        raise SepconvValueError(
            f"`bias` must have one value per output channel ({channels}, {what}), got "
            f"{describe(array)}"
        )
    return array


def _finish(y: np.ndarray, bias: np.ndarray | None, unbatched: bool) -> np.ndarray:
    if bias is not None:
        y = y + bias.astype(y.dtype)
    return y[0] if unbatched else y


# --------------------------------------------------------------------------------------------
# The one loop every operation runs


def _correlate(
    x: np.ndarray,
    kernel: np.ndarray,
    *,
    stride: tuple[int, int],
    pads: tuple[tuple[int, int], tuple[int, int]],
    dilation: tuple[int, int],
    groups: int,
    dtype: np.dtype,
    counter: Counter | None,
    operation: str,
) -> np.ndarray:
    """Grouped 2-D cross-correlation of NHWC ``x`` with a ``(kh, kw, C_in/g, C_out)`` kernel.

    For each kernel tap ``(i, j)``: take the input values that tap meets for every output
    position (a strided slice of the padded input), multiply them by the tap's
    ``(C_in/g, C_out/g)`` weights of each group, count the products and sum them over the input
    channels of the group.
    """
    n, height, width, in_channels = x.shape
    kh, kw, group_in, out_channels = kernel.shape
    group_out = out_channels // groups
    (top, bottom), (left, right) = pads
    padded = np.zeros((n, height + top + bottom, width + left + right, in_channels), dtype)
    padded[:, top : top + height, left : left + width, :] = x
    out_h, out_w = output_size(
        (height, width), (kh, kw), stride=stride, dilation=dilation, padding=pads
    )
    # weights[i, j, g] is the (C_in/g, C_out/g) matrix of tap (i, j) for group g
    weights = kernel.astype(dtype).reshape(kh, kw, group_in, groups, group_out)
    weights = weights.transpose(0, 1, 3, 2, 4)
    out = np.zeros((n, out_h, out_w, groups, group_out), dtype)

    # Output rows are computed in blocks so that one product array stays of moderate size.
    products_per_row = n * out_w * in_channels * group_out
    rows_per_block = max(1, _BLOCK_ELEMENTS // max(products_per_row, 1))
    for row0 in range(0, out_h, rows_per_block):
        rows = range(row0, min(row0 + rows_per_block, out_h))
        for i in range(kh):
            for j in range(kw):
                first_row = rows[0] * stride[0] + i * dilation[0]
                first_col = j * dilation[1]
                patch = padded[
                    :,
                    first_row : first_row + (len(rows) - 1) * stride[0] + 1 : stride[0],
                    first_col : first_col + (out_w - 1) * stride[1] + 1 : stride[1],
                    :,
                ].reshape(n, len(rows), out_w, groups, group_in, 1)
                products = patch * weights[i, j]  # (n, rows, out_w, groups, C_in/g, C_out/g)
                if counter is not None:
                    counter.add(operation, products.size)
                out[:, rows.start : rows.stop] += products.sum(axis=4)
    return out.reshape(n, out_h, out_w, out_channels)


def _geometry(
    spatial: tuple[int, int],
    kernel_size: tuple[int, int],
    stride: Any,
    padding: Any,
    dilation: Any,
) -> tuple[tuple[int, int], tuple[tuple[int, int], ...], tuple[int, int]]:
    stride = check_ntuple("stride", stride, 2)
    dilation = check_ntuple("dilation", dilation, 2)
    pads = resolve_padding(
        spatial,
        kernel_size,
        stride=stride,
        dilation=dilation,
        padding=check_padding("padding", padding, 2),
    )
    # Raises a message naming `kernel_size` when the kernel does not fit the padded input.
    output_size(spatial, kernel_size, stride=stride, dilation=dilation, padding=padding)
    return stride, pads, dilation


# --------------------------------------------------------------------------------------------
# Operations


def conv2d(
    x: Any,
    kernel: Any,
    bias: Any = None,
    *,
    stride: Any = 1,
    padding: Any = "valid",
    dilation: Any = 1,
    groups: int = 1,
    counter: Counter | None = None,
) -> np.ndarray:
    """Normal (optionally grouped) 2-D convolution, as ``keras.layers.Conv2D``.

    Parameters
    ----------
    x : array_like, shape (N, H, W, C_in) or (H, W, C_in)
        Input, real numbers. Integer inputs are computed in float64.
    kernel : array_like, shape (kh, kw, C_in / groups, C_out)
        Weights in Keras's layout.
    bias : array_like, shape (C_out,), optional
        Added to every output position.
    stride, dilation : int or tuple of 2 int
        Per spatial axis (rows, columns).
    padding : {'valid', 'same'}, int, tuple of 2 int or ((top, bottom), (left, right))
        ``'same'`` is TensorFlow/Keras-exact.
    groups : int
        Input and output channels are split into ``groups`` independent groups.
    counter : Counter, optional
        Receives the multiplications performed, under ``'conv2d'``.

    Returns
    -------
    numpy.ndarray, shape (N, H_out, W_out, C_out) or (H_out, W_out, C_out)
        Same rank as ``x``; dtype the floating result type of the inputs.

    Notes
    -----
    Every output element sums ``kh * kw * C_in / groups`` products, so the count is
    ``N * H_out * W_out * C_out * kh * kw * C_in / groups``, :func:`sepconv.cost.conv`.

    Examples
    --------
    >>> import numpy as np
    >>> from sepconv.reference import Counter, conv2d
    >>> x = np.arange(16.0).reshape(4, 4, 1)
    >>> counter = Counter()
    >>> conv2d(x, np.ones((3, 3, 1, 1)), counter=counter)[..., 0]
    array([[45., 54.],
           [81., 90.]])
    >>> counter.multiplications
    36
    >>> conv2d(x, np.ones((3, 3, 1, 1)), stride=2, padding="same")[..., 0]
    array([[45., 39.],
           [66., 50.]])
    """
    x, unbatched = _check_input(x)
    kernel = _check_array("kernel", kernel, (4,), "(kh, kw, C_in / groups, C_out)")
    groups = check_positive_int("groups", groups)
    in_channels = x.shape[-1]
    kh, kw, group_in, out_channels = kernel.shape
    if in_channels % groups or out_channels % groups:
        raise SepconvValueError(
            f"`groups` must divide the input channels of `x` ({in_channels}) and the output "
            f"channels of `kernel` ({out_channels}), got {groups}"
        )
    if group_in * groups != in_channels:
        raise SepconvValueError(
            f"`kernel` of shape {kernel.shape} expects {group_in * groups} input channels "
            f"(C_in / groups = {group_in}, groups = {groups}), but `x` has {in_channels} "
            f"channels (shape {x.shape[1:] if unbatched else x.shape})"
        )
    bias = _check_bias(bias, out_channels, "the last axis of `kernel`")
    stride, pads, dilation = _geometry(x.shape[1:3], (kh, kw), stride, padding, dilation)
    y = _correlate(
        x,
        kernel,
        stride=stride,
        pads=pads,
        dilation=dilation,
        groups=groups,
        dtype=_result_dtype(x, kernel, bias),
        counter=counter,
        operation="conv2d",
    )
    return _finish(y, bias, unbatched)


def _depthwise(
    x: np.ndarray,
    depthwise_kernel: np.ndarray,
    *,
    stride: Any,
    padding: Any,
    dilation: Any,
    dtype: np.dtype,
    counter: Counter | None,
    unbatched: bool,
) -> np.ndarray:
    channels = x.shape[-1]
    kh, kw, kernel_channels, multiplier = depthwise_kernel.shape
    if kernel_channels != channels:
        raise SepconvValueError(
            f"`depthwise_kernel` of shape {depthwise_kernel.shape} (kh, kw, C, M) expects "
            f"{kernel_channels} input channels, but `x` has {channels} "
            f"(shape {x.shape[1:] if unbatched else x.shape})"
        )
    stride, pads, dilation = _geometry(x.shape[1:3], (kh, kw), stride, padding, dilation)
    # A depthwise convolution is the grouped one with groups = C: output channel c*M + m.
    kernel = depthwise_kernel.reshape(kh, kw, 1, channels * multiplier)
    return _correlate(
        x,
        kernel,
        stride=stride,
        pads=pads,
        dilation=dilation,
        groups=channels,
        dtype=dtype,
        counter=counter,
        operation="depthwise_conv2d",
    )


def depthwise_conv2d(
    x: Any,
    depthwise_kernel: Any,
    bias: Any = None,
    *,
    stride: Any = 1,
    padding: Any = "valid",
    dilation: Any = 1,
    counter: Counter | None = None,
) -> np.ndarray:
    """Depthwise 2-D convolution, as ``keras.layers.DepthwiseConv2D``.

    Each input channel is filtered on its own by ``M`` kernels (the depth multiplier, read from
    the kernel's shape); output channel ``c * M + m`` uses ``depthwise_kernel[:, :, c, m]``.

    Parameters
    ----------
    x : array_like, shape (N, H, W, C) or (H, W, C)
        Input.
    depthwise_kernel : array_like, shape (kh, kw, C, M)
        One ``kh x kw`` kernel per input channel and multiplier.
    bias : array_like, shape (C * M,), optional
        Added to every output position.
    stride, padding, dilation
        As in :func:`conv2d`.
    counter : Counter, optional
        Receives the multiplications performed, under ``'depthwise_conv2d'``.

    Returns
    -------
    numpy.ndarray, shape (N, H_out, W_out, C * M) or (H_out, W_out, C * M)

    Notes
    -----
    The count is ``N * H_out * W_out * C * M * kh * kw``, :func:`sepconv.cost.depthwise`.
    Howard et al., "MobileNets", 2017, arXiv:1704.04861.

    Examples
    --------
    >>> import numpy as np
    >>> from sepconv.reference import Counter, depthwise_conv2d
    >>> x = np.stack([np.ones((4, 4)), 2 * np.ones((4, 4))], axis=-1)
    >>> kernel = np.ones((3, 3, 2, 2))
    >>> kernel[..., 1] = -1.0
    >>> counter = Counter()
    >>> y = depthwise_conv2d(x, kernel, counter=counter)
    >>> y.shape, y[0, 0], counter.multiplications
    ((2, 2, 4), array([  9.,  -9.,  18., -18.]), 144)
    """
    x, unbatched = _check_input(x)
    depthwise_kernel = _check_array("depthwise_kernel", depthwise_kernel, (4,), "(kh, kw, C, M)")
    out_channels = depthwise_kernel.shape[2] * depthwise_kernel.shape[3]
    bias = _check_bias(bias, out_channels, "C * M of `depthwise_kernel`")
    y = _depthwise(
        x,
        depthwise_kernel,
        stride=stride,
        padding=padding,
        dilation=dilation,
        dtype=_result_dtype(x, depthwise_kernel, bias),
        counter=counter,
        unbatched=unbatched,
    )
    return _finish(y, bias, unbatched)


def _pointwise_kernel(pointwise_kernel: Any) -> np.ndarray:
    """``(1, 1, C_in, C_out)`` view of a pointwise kernel given as 4-D or ``(C_in, C_out)``."""
    kernel = _check_array(
        "pointwise_kernel", pointwise_kernel, (2, 4), "(1, 1, C_in, C_out) or (C_in, C_out)"
    )
    if kernel.ndim == 2:
        return kernel.reshape(1, 1, *kernel.shape)
    if kernel.shape[:2] != (1, 1):
        raise SepconvValueError(
            f"`pointwise_kernel` must have shape (1, 1, C_in, C_out) or (C_in, C_out), got "
            f"{describe(kernel)}"
        )
    return kernel


def _pointwise(
    x: np.ndarray,
    kernel: np.ndarray,
    *,
    dtype: np.dtype,
    counter: Counter | None,
    unbatched: bool,
    source: str = "`x`",
) -> np.ndarray:
    if kernel.shape[2] != x.shape[-1]:
        shape = x.shape[1:] if unbatched else x.shape
        raise SepconvValueError(
            f"`pointwise_kernel` of shape {kernel.shape} expects {kernel.shape[2]} input "
            f"channels, but {source} has {x.shape[-1]} (shape {shape})"
        )
    return _correlate(
        x,
        kernel,
        stride=(1, 1),
        pads=((0, 0), (0, 0)),
        dilation=(1, 1),
        groups=1,
        dtype=dtype,
        counter=counter,
        operation="pointwise_conv2d",
    )


def pointwise_conv2d(
    x: Any,
    pointwise_kernel: Any,
    bias: Any = None,
    *,
    counter: Counter | None = None,
) -> np.ndarray:
    """Pointwise (1x1) convolution: a matrix product over channels at every pixel.

    Parameters
    ----------
    x : array_like, shape (N, H, W, C_in) or (H, W, C_in)
        Input.
    pointwise_kernel : array_like, shape (1, 1, C_in, C_out) or (C_in, C_out)
        Channel-mixing weights.
    bias : array_like, shape (C_out,), optional
        Added to every output position.
    counter : Counter, optional
        Receives the multiplications performed, under ``'pointwise_conv2d'``.

    Returns
    -------
    numpy.ndarray, shape (N, H, W, C_out) or (H, W, C_out)

    Notes
    -----
    The count is ``N * H * W * C_in * C_out``, :func:`sepconv.cost.pointwise`.

    Examples
    --------
    >>> import numpy as np
    >>> from sepconv.reference import Counter, pointwise_conv2d
    >>> counter = Counter()
    >>> y = pointwise_conv2d(np.ones((8, 8, 3)), np.ones((3, 256)), counter=counter)
    >>> y.shape, float(y[0, 0, 0]), counter.multiplications
    ((8, 8, 256), 3.0, 49152)
    """
    x, unbatched = _check_input(x)
    kernel = _pointwise_kernel(pointwise_kernel)
    bias = _check_bias(bias, kernel.shape[3], "the last axis of `pointwise_kernel`")
    y = _pointwise(
        x, kernel, dtype=_result_dtype(x, kernel, bias), counter=counter, unbatched=unbatched
    )
    return _finish(y, bias, unbatched)


def separable_conv2d(
    x: Any,
    depthwise_kernel: Any,
    pointwise_kernel: Any,
    bias: Any = None,
    *,
    stride: Any = 1,
    padding: Any = "valid",
    dilation: Any = 1,
    counter: Counter | None = None,
) -> np.ndarray:
    """Depthwise separable convolution, exactly ``keras.layers.SeparableConv2D``.

    A depthwise convolution (which takes ``stride``, ``padding`` and ``dilation``) followed by
    a pointwise convolution (which takes ``bias``), with no activation in between.

    Parameters
    ----------
    x : array_like, shape (N, H, W, C) or (H, W, C)
        Input.
    depthwise_kernel : array_like, shape (kh, kw, C, M)
        Depthwise weights; ``M`` is the depth multiplier.
    pointwise_kernel : array_like, shape (1, 1, C * M, C_out) or (C * M, C_out)
        Pointwise weights.
    bias : array_like, shape (C_out,), optional
        Added after the pointwise step.
    stride, padding, dilation
        Of the depthwise step, as in :func:`conv2d`.
    counter : Counter, optional
        Receives the multiplications, under ``'depthwise_conv2d'`` and ``'pointwise_conv2d'``.

    Returns
    -------
    numpy.ndarray, shape (N, H_out, W_out, C_out) or (H_out, W_out, C_out)

    Notes
    -----
    The count is that of :func:`sepconv.cost.separable`. Chollet, "Xception", 2017,
    arXiv:1610.02357; Howard et al., "MobileNets", 2017, arXiv:1704.04861.

    Examples
    --------
    >>> import numpy as np
    >>> from sepconv.reference import Counter, separable_conv2d
    >>> counter = Counter()
    >>> y = separable_conv2d(np.ones((12, 12, 3)), np.ones((5, 5, 3, 1)),
    ...                      np.ones((1, 1, 3, 256)), padding="same", counter=counter)
    >>> y.shape, counter.by_operation
    ((12, 12, 256), {'depthwise_conv2d': 10800, 'pointwise_conv2d': 110592})
    """
    x, unbatched = _check_input(x)
    depthwise_kernel = _check_array("depthwise_kernel", depthwise_kernel, (4,), "(kh, kw, C, M)")
    pointwise = _pointwise_kernel(pointwise_kernel)
    bias = _check_bias(bias, pointwise.shape[3], "the last axis of `pointwise_kernel`")
    dtype = _result_dtype(x, depthwise_kernel, pointwise, bias)
    middle = depthwise_kernel.shape[2] * depthwise_kernel.shape[3]
    if pointwise.shape[2] != middle:
        raise SepconvValueError(
            f"`pointwise_kernel` of shape {pointwise.shape} expects {pointwise.shape[2]} input "
            f"channels, but the depthwise step gives C * M = {middle} "
            f"(`depthwise_kernel` of shape {depthwise_kernel.shape})"
        )
    y = _depthwise(
        x,
        depthwise_kernel,
        stride=stride,
        padding=padding,
        dilation=dilation,
        dtype=dtype,
        counter=counter,
        unbatched=unbatched,
    )
    y = _pointwise(y, pointwise, dtype=dtype, counter=counter, unbatched=unbatched)
    return _finish(y, bias, unbatched)


def spatially_separable_conv2d(
    x: Any,
    column_kernel: Any,
    row_kernel: Any,
    bias: Any = None,
    *,
    stride: Any = 1,
    padding: Any = "valid",
    dilation: Any = 1,
    groups: int = 1,
    order: str = "column_first",
    counter: Counter | None = None,
) -> np.ndarray:
    """Spatially separable convolution: a ``kh x 1`` pass and a ``1 x kw`` pass.

    Each pass takes the stride, dilation and padding of its own axis (the padding is resolved
    for the whole ``kh x kw`` kernel), so the output has the shape of the ``kh x kw``
    convolution. The pass that runs first maps ``C_in -> C_mid``, the second
    ``C_mid -> C_out``; ``groups`` applies to both. With one channel (or ``groups = C``) and no
    bias this is filtering with the outer product ``column x row``. The semantics and the count
    are those of :func:`sepconv.cost.spatially_separable`.

    Parameters
    ----------
    x : array_like, shape (N, H, W, C_in) or (H, W, C_in)
        Input.
    column_kernel : array_like, shape (kh, 1, C / groups, C')
        The vertical pass. With ``order='column_first'`` it maps ``C_in -> C_mid``
        (shape ``(kh, 1, C_in / groups, C_mid)``), else ``C_mid -> C_out``.
    row_kernel : array_like, shape (1, kw, C / groups, C')
        The horizontal pass: ``(1, kw, C_mid / groups, C_out)`` with
        ``order='column_first'``, ``(1, kw, C_in / groups, C_mid)`` with ``'row_first'``.
    bias : array_like, shape (C_out,), optional
        Added after the second pass.
    stride, padding, dilation
        As in :func:`conv2d`; the row (first) entries go to the column pass, the column
        (second) entries to the row pass.
    groups : int
        Channel groups of both passes.
    order : {'column_first', 'row_first'}
        Which pass runs first.
    counter : Counter, optional
        Receives the multiplications, under ``'column_conv2d'`` and ``'row_conv2d'``.

    Returns
    -------
    numpy.ndarray, shape (N, H_out, W_out, C_out) or (H_out, W_out, C_out)

    Notes
    -----
    Szegedy et al., "Rethinking the Inception Architecture", 2016, arXiv:1512.00567 (the
    ``n x 1`` / ``1 x n`` factorization).

    Examples
    --------
    A Sobel kernel is ``[1, 2, 1]^T`` times ``[-1, 0, 1]``: two 3-tap passes instead of 9 taps.

    >>> import numpy as np
    >>> from sepconv.reference import Counter, conv2d, spatially_separable_conv2d
    >>> image = np.add.outer(np.arange(5.0), np.arange(5.0) ** 2)[..., None]
    >>> column = np.array([1.0, 2.0, 1.0]).reshape(3, 1, 1, 1)
    >>> row = np.array([-1.0, 0.0, 1.0]).reshape(1, 3, 1, 1)
    >>> counter = Counter()
    >>> y = spatially_separable_conv2d(image, column, row, counter=counter)
    >>> y[..., 0]
    array([[16., 32., 48.],
           [16., 32., 48.],
           [16., 32., 48.]])
    >>> counter.multiplications, counter.by_operation
    (72, {'column_conv2d': 45, 'row_conv2d': 27})
    >>> np.array_equal(y, conv2d(image, column * row))
    True
    """
    x, unbatched = _check_input(x)
    column_kernel = _check_array("column_kernel", column_kernel, (4,), "(kh, 1, C / groups, C')")
    row_kernel = _check_array("row_kernel", row_kernel, (4,), "(1, kw, C / groups, C')")
    groups = check_positive_int("groups", groups)
    order = check_choice("order", order, ("column_first", "row_first"))
    if column_kernel.shape[1] != 1:
        raise SepconvValueError(
            f"`column_kernel` must have shape (kh, 1, C / groups, C'), got "
            f"{describe(column_kernel)}"
        )
    if row_kernel.shape[0] != 1:
        raise SepconvValueError(
            f"`row_kernel` must have shape (1, kw, C / groups, C'), got {describe(row_kernel)}"
        )
    kh, kw = column_kernel.shape[0], row_kernel.shape[1]
    stride, pads, dilation = _geometry(x.shape[1:3], (kh, kw), stride, padding, dilation)
    kernels = {"column": ("column_kernel", column_kernel), "row": ("row_kernel", row_kernel)}
    passes = {
        f"{p.name}_conv2d": (*kernels[p.name], p.stride, p.padding, p.dilation)
        for p in spatial_passes((kh, kw), stride, dilation, pads, order)
    }
    names = list(passes)
    last_argument, last_kernel = passes[names[1]][:2]
    bias = _check_bias(bias, last_kernel.shape[3], f"the last axis of `{last_argument}`")
    dtype = _result_dtype(x, column_kernel, row_kernel, bias)

    y = x
    sources = {names[0]: "`x`", names[1]: f"the output of `{passes[names[0]][0]}`"}
    for name in names:
        argument, kernel, pass_stride, pass_pads, pass_dilation = passes[name]
        channels = y.shape[-1]
        if channels % groups or kernel.shape[3] % groups:
            raise SepconvValueError(
                f"`groups` ({groups}) must divide the input channels of {sources[name]} "
                f"({channels}) and the output channels of `{argument}` ({kernel.shape[3]})"
            )
        if kernel.shape[2] * groups != channels:
            raise SepconvValueError(
                f"`{argument}` of shape {kernel.shape} expects {kernel.shape[2] * groups} input "
                f"channels (C / groups = {kernel.shape[2]}, groups = {groups}), but "
                f"{sources[name]} has {channels}"
            )
        y = _correlate(
            y,
            kernel,
            stride=pass_stride,
            pads=pass_pads,
            dilation=pass_dilation,
            groups=groups,
            dtype=dtype,
            counter=counter,
            operation=name,
        )
    return _finish(y, bias, unbatched)


# --------------------------------------------------------------------------------------------
# Layout converters: the names this module has always offered, for the functions of
# sepconv.layouts (one family for every number of spatial axes).
to_nchw = _layouts.channels_first
to_nhwc = _layouts.channels_last
conv_kernel_to_torch = _layouts.conv_kernel_keras_to_torch
conv_kernel_from_torch = _layouts.conv_kernel_torch_to_keras
depthwise_kernel_to_torch = _layouts.depthwise_kernel_keras_to_torch
depthwise_kernel_from_torch = _layouts.depthwise_kernel_torch_to_keras
pointwise_kernel_to_torch = _layouts.pointwise_kernel_keras_to_torch
pointwise_kernel_from_torch = _layouts.pointwise_kernel_torch_to_keras

__dir__ = _public_dir(globals())
