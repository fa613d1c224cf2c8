"""Weight interchange with Keras 3's separable layers.

Keras stores kernels channels-last, PyTorch channels-first. For ``n`` spatial axes, ``C``
input channels, depth multiplier ``M`` and ``F`` filters:

========================  ===============================  ==================================
weight                    Keras (``get_weights()``)        sepconv / PyTorch
========================  ===============================  ==================================
depthwise kernel          ``(*k, C, M)``                   ``(C * M, 1, *k)``; channel
                                                           ``c * M + m`` <- ``[..., c, m]``
pointwise kernel          ``(1, ..., 1, C * M, F)``        ``(F, C * M, 1, ..., 1)``
bias (separable)          ``(F,)``, the pointwise bias     ``pointwise.bias``
bias (depthwise layer)    ``(C * M,)``                     ``bias``
========================  ===============================  ==================================

``keras.layers.SeparableConv1D/2D`` give ``[depthwise_kernel, pointwise_kernel(, bias)]``,
``keras.layers.DepthwiseConv1D/2D`` give ``[kernel(, bias)]``. Keras has no 3-D separable or
depthwise layer; the same layout (``(kd, kh, kw, C, M)``) is used for 3-D.

Keras's separable layers have no depthwise bias and nothing between the two steps: loading
sets a ``depthwise_bias`` to zero, and exporting folds it into the pointwise bias
(``b_pw + W_pw @ b_dw``, exact), which needs a pointwise bias and no norm or activation.

Examples
--------
>>> import numpy as np
>>> from sepconv.nn import SeparableConv2d
>>> layer = SeparableConv2d(3, 8, 3, depth_multiplier=2)
>>> dw = np.arange(3 * 3 * 3 * 2, dtype="float32").reshape(3, 3, 3, 2)
>>> pw = np.ones((1, 1, 6, 8), dtype="float32")
>>> _ = load_keras_weights(layer, [dw, pw, np.zeros(8, dtype="float32")])
>>> layer.depthwise.weight[1, 0]   # input channel 0, multiplier 1: dw[:, :, 0, 1]
tensor([[ 1.,  7., 13.],
        [19., 25., 31.],
        [37., 43., 49.]], grad_fn=<SelectBackward0>)
>>> [w.shape for w in to_keras_weights(layer)]
[(3, 3, 3, 2), (1, 1, 6, 8), (8,)]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from .. import layouts
from .._checks import SepconvTypeError, SepconvValueError

__all__ = [
    "load_keras_weights",
    "to_keras_weights",
    "depthwise_kernel_from_keras",
    "depthwise_kernel_to_keras",
    "pointwise_kernel_from_keras",
    "pointwise_kernel_to_keras",
]

# The layouts, under the names this module has always offered (see sepconv.layouts).
depthwise_kernel_from_keras = layouts.depthwise_kernel_keras_to_torch
pointwise_kernel_from_keras = layouts.pointwise_kernel_keras_to_torch
pointwise_kernel_to_keras = layouts.pointwise_kernel_torch_to_keras


def depthwise_kernel_to_keras(weight: Any, in_channels: int) -> np.ndarray:
    """Torch ``(C * M, 1, *k)`` -> Keras ``(*k, C, M)`` for ``C = in_channels``.

    :func:`sepconv.layouts.depthwise_kernel_torch_to_keras` with ``M = C * M / in_channels``.

    >>> depthwise_kernel_to_keras(np.zeros((8, 1, 3, 5)), 4).shape
    (3, 5, 4, 2)
    """
    weight = np.asarray(weight)
    return layouts.depthwise_kernel_torch_to_keras(
        weight, depth_multiplier=max(weight.shape[0] // in_channels, 1)
    )


def _layout(layer: Any) -> str | None:
    """``'separable'`` or ``'depthwise'``: the Keras layout a sepconv layer declares."""
    return getattr(type(layer), "_keras_layout", None)


def _as_list(weights: Any, names: tuple[str, ...]) -> list[np.ndarray]:
    if isinstance(weights, dict):
        missing = [name for name in names[:-1] if name not in weights]
        if missing:
            raise SepconvValueError(
                f"`weights` must have the keys {', '.join(map(repr, names))} (bias optional), "
                f"missing {', '.join(map(repr, missing))}"
            )
        items = [weights[name] for name in names if name in weights]
    elif isinstance(weights, list | tuple):
        items = list(weights)
    else:
        raise SepconvTypeError(
            f"`weights` must be the list of Keras's get_weights() or a dict by weight name, "
            f"got {type(weights).__name__}"
        )
    return [
        np.asarray(item.detach().cpu() if isinstance(item, torch.Tensor) else item)
        for item in items
    ]


def _copy(param: nn.Parameter, value: np.ndarray, what: str) -> None:
    if tuple(value.shape) != tuple(param.shape):
        raise SepconvValueError(
            f"`weights`: the {what} must have shape {tuple(param.shape)} in torch's layout for "
            f"this layer, got {tuple(value.shape)} after conversion"
        )
    with torch.no_grad():
        param.copy_(torch.as_tensor(value, dtype=param.dtype, device=param.device))


def load_keras_weights(layer: nn.Module, weights: Any) -> nn.Module:
    """Copy Keras weights into a sepconv depthwise or separable layer (in place).

    Parameters
    ----------
    layer : DepthwiseConv1d/2d/3d or SeparableConv1d/2d/3d
    weights : list of arrays or dict
        ``keras_layer.get_weights()``, or a dict with the keys ``'depthwise_kernel'``,
        ``'pointwise_kernel'``, ``'bias'`` (separable) or ``'kernel'``, ``'bias'`` (depthwise).

    Returns
    -------
    nn.Module
        ``layer``, for chaining.
    """
    if _layout(layer) == "separable":
        items = _as_list(weights, ("depthwise_kernel", "pointwise_kernel", "bias"))
        has_bias = layer.pointwise.bias is not None
        if len(items) != 2 + has_bias:
            raise SepconvValueError(
                f"`weights` must hold {2 + has_bias} arrays (depthwise_kernel, pointwise_kernel"
                f"{', bias' if has_bias else ''}) for a layer with bias={has_bias}, got "
                f"{len(items)}"
            )
        _copy(layer.depthwise.weight, depthwise_kernel_from_keras(items[0]), "depthwise_kernel")
        _copy(layer.pointwise.weight, pointwise_kernel_from_keras(items[1]), "pointwise_kernel")
        if has_bias:
            _copy(layer.pointwise.bias, items[2], "bias")
        if layer.depthwise.bias is not None:
            with torch.no_grad():
                layer.depthwise.bias.zero_()
        return layer
    if _layout(layer) == "depthwise":
        items = _as_list(weights, ("kernel", "bias"))
        has_bias = layer.bias is not None
        if len(items) != 1 + has_bias:
            raise SepconvValueError(
                f"`weights` must hold {1 + has_bias} arrays (kernel{', bias' if has_bias else ''})"
                f" for a layer with bias={has_bias}, got {len(items)}"
            )
        _copy(layer.weight, depthwise_kernel_from_keras(items[0]), "kernel")
        if has_bias:
            _copy(layer.bias, items[1], "bias")
        return layer
    raise SepconvTypeError(
        f"`layer` must be a sepconv DepthwiseConvNd or SeparableConvNd, got {type(layer).__name__}"
    )


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy()


def to_keras_weights(layer: nn.Module) -> list[np.ndarray]:
    """The weights of a sepconv layer in the order and layout of Keras's ``get_weights()``.

    Parameters
    ----------
    layer : DepthwiseConv1d/2d/3d or SeparableConv1d/2d/3d

    Returns
    -------
    list of numpy.ndarray
        ``[depthwise_kernel, pointwise_kernel(, bias)]`` or ``[kernel(, bias)]``.
    """
    if _layout(layer) == "separable":
        if "norm" in layer._modules or "act" in layer._modules:
            raise SepconvValueError(
                "`layer` has a norm or activation between its steps, which Keras's "
                "SeparableConv layers cannot hold; export `layer.depthwise` and "
                "`layer.pointwise` separately"
            )
        depthwise = depthwise_kernel_to_keras(_numpy(layer.depthwise.weight), layer.in_channels)
        pointwise = pointwise_kernel_to_keras(_numpy(layer.pointwise.weight))
        out = [depthwise, pointwise]
        bias = layer.pointwise.bias
        if layer.depthwise.bias is not None:
            if bias is None:
                raise SepconvValueError(
                    "`layer` has a depthwise bias but no pointwise bias: Keras's SeparableConv "
                    "layers have only the pointwise one, to which it can be folded"
                )
            matrix = layer.pointwise.weight.reshape(layer.out_channels, -1)
            bias = bias + matrix @ layer.depthwise.bias
        if bias is not None:
            out.append(_numpy(bias))
        return out
    if _layout(layer) == "depthwise":
        out = [depthwise_kernel_to_keras(_numpy(layer.weight), layer.in_channels)]
        if layer.bias is not None:
            out.append(_numpy(layer.bias))
        return out
    raise SepconvTypeError(
        f"`layer` must be a sepconv DepthwiseConvNd or SeparableConvNd, got {type(layer).__name__}"
    )
