"""PyTorch layers for separable convolutions, with Keras semantics and fast CPU execution.

Layers (:mod:`sepconv.nn.modules`): :class:`DepthwiseConv1d`, :class:`DepthwiseConv2d`,
:class:`DepthwiseConv3d`, :class:`SeparableConv1d`, :class:`SeparableConv2d`,
:class:`SeparableConv3d`, :class:`SpatiallySeparableConv2d`, and the 1x1
:class:`PointwiseConv1d` / :class:`PointwiseConv2d` / :class:`PointwiseConv3d` they use.
Functional forms:
:mod:`sepconv.nn.functional`. Keras weight interchange: :func:`load_keras_weights`,
:func:`to_keras_weights` (:mod:`sepconv.nn.keras`). Who runs the depthwise step on CPU (a
native C kernel or PyTorch's, chosen from measured constants): :func:`use_native_depthwise`.

Examples
--------
>>> import torch
>>> from sepconv.nn import SeparableConv2d
>>> layer = SeparableConv2d(32, 64, 3, padding="same")
>>> [name for name, _ in layer.named_children()]
['depthwise', 'pointwise']
>>> layer(torch.randn(2, 32, 16, 16)).shape
torch.Size([2, 64, 16, 16])
"""

from __future__ import annotations

from .._api import public_dir as _public_dir
from . import functional
from ._autotune import use_autotune
from ._execution import use_native_depthwise
from ._spatial import SpatiallySeparableConv2d
from .keras import load_keras_weights, to_keras_weights
from .modules import (
    DepthwiseConv1d,
    DepthwiseConv2d,
    DepthwiseConv3d,
    PointwiseConv1d,
    PointwiseConv2d,
    PointwiseConv3d,
    SeparableConv1d,
    SeparableConv2d,
    SeparableConv3d,
)

__all__ = [
    "use_autotune",
    "DepthwiseConv1d",
    "DepthwiseConv2d",
    "DepthwiseConv3d",
    "PointwiseConv1d",
    "PointwiseConv2d",
    "PointwiseConv3d",
    "SeparableConv1d",
    "SeparableConv2d",
    "SeparableConv3d",
    "SpatiallySeparableConv2d",
    "functional",
    "load_keras_weights",
    "to_keras_weights",
    "use_native_depthwise",
]

__dir__ = _public_dir(globals())
