"""Keras (channels-last) and PyTorch (channels-first) layouts of inputs and weights.

One family, named by direction: ``*_keras_to_torch`` and ``*_torch_to_keras``, for any number of
spatial axes ``n`` (1-D, 2-D, 3-D). NumPy only; every function returns a new contiguous array
and leaves its argument unchanged.

========================== =============================== ==================================
what                       Keras / TensorFlow              PyTorch (``nn.ConvNd``)
========================== =============================== ==================================
input                      ``(N, *spatial, C)``            ``(N, C, *spatial)``
conv kernel                ``(*k, C_in / groups, C_out)``  ``(C_out, C_in / groups, *k)``
depthwise kernel           ``(*k, C, M)``                  ``(C * M, 1, *k)``; channel
                                                           ``c * M + m`` <- ``[..., c, m]``
pointwise kernel           ``(1, ..., 1, C_in, C_out)``    ``(C_out, C_in, 1, ..., 1)``
                           or ``(C_in, C_out)``
bias                       ``(C_out,)``                    ``(C_out,)``
========================== =============================== ==================================

``M`` is the depth multiplier: TensorFlow's ``depthwise_conv2d`` and torch's ``groups=C``
convolution order the depthwise output channels the same way. :mod:`sepconv.reference` (NHWC,
Keras weights) and :mod:`sepconv.nn.keras` (weight interchange with Keras layers) use these
functions; their older names remain there as aliases.

Examples
--------
>>> import numpy as np
>>> from sepconv import layouts
>>> layouts.depthwise_kernel_keras_to_torch(np.zeros((3, 5, 4, 2))).shape
(8, 1, 3, 5)
>>> layouts.depthwise_kernel_torch_to_keras(np.zeros((8, 1, 3, 5)), depth_multiplier=2).shape
(3, 5, 4, 2)
>>> layouts.channels_first(np.zeros((2, 5, 7, 3))).shape
(2, 3, 5, 7)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._api import public_dir as _public_dir
from ._checks import SepconvValueError, check_positive_int, describe

__all__ = [
    "channels_first",
    "channels_last",
    "conv_kernel_keras_to_torch",
    "conv_kernel_torch_to_keras",
    "depthwise_kernel_keras_to_torch",
    "depthwise_kernel_torch_to_keras",
    "pointwise_kernel_keras_to_torch",
    "pointwise_kernel_torch_to_keras",
]


def _array(name: str, value: Any, ndims: tuple[int, ...], layout: str) -> np.ndarray:
    array = np.asarray(value)
    if array.ndim not in ndims:
        wanted = " or ".join(
            [", ".join(str(d) for d in ndims[:-1]), str(ndims[-1])][len(ndims) == 1 :]
        )
        raise SepconvValueError(
            f"`{name}` must have {wanted} dimensions {layout}, got {describe(array)}"
        )
    return array


def channels_first(x: Any, *, spatial_dims: int = 2) -> np.ndarray:
    """``(N, *spatial, C) -> (N, C, *spatial)``, or unbatched ``(*spatial, C) -> (C, *spatial)``.

    >>> channels_first(np.zeros((5, 7, 3))).shape
    (3, 5, 7)
    """
    n = check_positive_int("spatial_dims", spatial_dims)
    array = _array("x", x, (n + 1, n + 2), "(N, *spatial, C) or (*spatial, C)")
    return np.ascontiguousarray(np.moveaxis(array, -1, -n - 1))


def channels_last(x: Any, *, spatial_dims: int = 2) -> np.ndarray:
    """``(N, C, *spatial) -> (N, *spatial, C)``, or unbatched ``(C, *spatial) -> (*spatial, C)``.

    >>> channels_last(np.zeros((3, 5, 7))).shape
    (5, 7, 3)
    """
    n = check_positive_int("spatial_dims", spatial_dims)
    array = _array("x", x, (n + 1, n + 2), "(N, C, *spatial) or (C, *spatial)")
    return np.ascontiguousarray(np.moveaxis(array, -n - 1, -1))


def conv_kernel_keras_to_torch(kernel: Any) -> np.ndarray:
    """Keras ``(*k, C_in / groups, C_out)`` -> torch ``(C_out, C_in / groups, *k)``.

    >>> conv_kernel_keras_to_torch(np.zeros((5, 3, 2, 8))).shape
    (8, 2, 5, 3)
    """
    array = _array("kernel", kernel, (3, 4, 5), "(*kernel_size, C_in / groups, C_out)")
    return np.ascontiguousarray(np.moveaxis(array, (-1, -2), (0, 1)))


def conv_kernel_torch_to_keras(weight: Any) -> np.ndarray:
    """Torch ``(C_out, C_in / groups, *k)`` -> Keras ``(*k, C_in / groups, C_out)``.

    >>> conv_kernel_torch_to_keras(np.zeros((8, 2, 5, 3))).shape
    (5, 3, 2, 8)
    """
    array = _array("weight", weight, (3, 4, 5), "(C_out, C_in / groups, *kernel_size)")
    return np.ascontiguousarray(np.moveaxis(array, (0, 1), (-1, -2)))


def depthwise_kernel_keras_to_torch(kernel: Any) -> np.ndarray:
    """Keras ``(*k, C, M)`` -> torch ``(C * M, 1, *k)`` (for ``groups=C``).

    Output channel ``c * M + m`` holds ``kernel[..., c, m]``.

    >>> kernel = np.arange(2 * 3.0).reshape(1, 1, 2, 3)
    >>> depthwise_kernel_keras_to_torch(kernel).ravel()
    array([0., 1., 2., 3., 4., 5.])
    """
    array = _array("kernel", kernel, (3, 4, 5), "(*kernel_size, C, M)")
    channels, multiplier = array.shape[-2:]
    moved = np.moveaxis(array, (-2, -1), (0, 1))
    return np.ascontiguousarray(moved.reshape(channels * multiplier, 1, *array.shape[:-2]))


def depthwise_kernel_torch_to_keras(weight: Any, depth_multiplier: int = 1) -> np.ndarray:
    """Torch ``(C * M, 1, *k)`` -> Keras ``(*k, C, M)``, ``M = depth_multiplier``.

    >>> depthwise_kernel_torch_to_keras(np.zeros((6, 1, 3, 3)), depth_multiplier=2).shape
    (3, 3, 3, 2)
    """
    array = _array("weight", weight, (3, 4, 5), "(C * M, 1, *kernel_size)")
    multiplier = check_positive_int("depth_multiplier", depth_multiplier)
    out_channels = array.shape[0]
    if array.shape[1] != 1 or out_channels % multiplier:
        raise SepconvValueError(
            f"`weight` must have shape (C * M, 1, *kernel_size) with C * M divisible by "
            f"`depth_multiplier` ({multiplier}), got {describe(array)}"
        )
    grouped = array.reshape(out_channels // multiplier, multiplier, *array.shape[2:])
    return np.ascontiguousarray(np.moveaxis(grouped, (0, 1), (-2, -1)))


def pointwise_kernel_keras_to_torch(kernel: Any, *, spatial_dims: int | None = None) -> np.ndarray:
    """Keras ``(1, ..., 1, C_in, C_out)`` or ``(C_in, C_out)`` -> torch ``(C_out, C_in, 1, ...)``.

    ``spatial_dims``: the ones of the result; default the kernel's (2 for a matrix).

    >>> pointwise_kernel_keras_to_torch(np.zeros((3, 8))).shape
    (8, 3, 1, 1)
    >>> pointwise_kernel_keras_to_torch(np.zeros((1, 6, 8))).shape
    (8, 6, 1)
    """
    array = _array("pointwise_kernel", kernel, (2, 3, 4, 5), "(1, ..., 1, C_in, C_out)")
    if any(k != 1 for k in array.shape[:-2]):
        raise SepconvValueError(
            f"`pointwise_kernel` must have shape (1, ..., 1, C_in, C_out) or (C_in, C_out), got "
            f"{describe(array)}"
        )
    n = (
        (array.ndim - 2 or 2)
        if spatial_dims is None
        else check_positive_int("spatial_dims", spatial_dims)
    )
    matrix = array.reshape(array.shape[-2], array.shape[-1]).T
    return np.ascontiguousarray(matrix.reshape(*matrix.shape, *(1,) * n))


def pointwise_kernel_torch_to_keras(weight: Any) -> np.ndarray:
    """Torch ``(C_out, C_in, 1, ..., 1)`` -> Keras ``(1, ..., 1, C_in, C_out)``.

    >>> pointwise_kernel_torch_to_keras(np.zeros((8, 3, 1, 1))).shape
    (1, 1, 3, 8)
    """
    array = _array("weight", weight, (3, 4, 5), "(C_out, C_in, 1, ..., 1)")
    if any(k != 1 for k in array.shape[2:]):
        raise SepconvValueError(
            f"`weight` must have shape (C_out, C_in, 1, ..., 1), got {describe(array)}"
        )
    matrix = array.reshape(array.shape[0], array.shape[1]).T
    return np.ascontiguousarray(matrix.reshape(*(1,) * (array.ndim - 2), *matrix.shape))


__dir__ = _public_dir(globals())
