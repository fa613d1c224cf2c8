"""Tests of sepconv.nn: layers, functional forms, validation, autograd, state dicts."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import sepconv.nn as snn
from sepconv import cost
from sepconv.nn import functional as SF
from sepconv.padding import resolve_padding

CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
DEPTHWISE = {1: snn.DepthwiseConv1d, 2: snn.DepthwiseConv2d, 3: snn.DepthwiseConv3d}
SEPARABLE = {1: snn.SeparableConv1d, 2: snn.SeparableConv2d, 3: snn.SeparableConv3d}


def reference_separable(x, dw, pw, bias, dw_bias, stride, padding, dilation, mode="zeros"):
    """F.pad + F.convNd composition with pads from sepconv.padding (NCHW, no fast path)."""
    n = x.dim() - 2
    pads = resolve_padding(tuple(x.shape[2:]), tuple(dw.shape[2:]), stride=stride,
                           dilation=dilation, padding=padding)
    flat = [p for pair in reversed(pads) for p in pair]
    x = F.pad(x, flat, mode="constant" if mode == "zeros" else mode)
    y = CONV[n](x, dw, dw_bias, stride, 0, dilation, x.shape[1])
    return y if pw is None else CONV[n](y, pw, bias)


def test_smoke():
    layer = snn.SeparableConv2d(3, 256, 5)
    assert isinstance(layer.depthwise, nn.Conv2d) and isinstance(layer.pointwise, nn.Conv2d)
    assert [name for name, _ in layer.named_children()] == ["depthwise", "pointwise"]
    y = layer(torch.randn(2, 3, 12, 12))
    assert y.shape == (2, 256, 8, 8)
    assert layer.cost((2, 3, 12, 12)).multiplications == 2 * 53952
    assert layer.kernel_size == (5, 5) and layer.stride == (1, 1) and layer.dilation == (1, 1)


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("size", [7, 8])
@pytest.mark.parametrize("multiplier", [1, 3])
def test_separable_matches_conv_composition(n, stride, size, multiplier):
    torch.manual_seed(0)
    layer = SEPARABLE[n](4, 5, 3, stride=stride, padding="same", depth_multiplier=multiplier,
                         depthwise_bias=True)
    x = torch.randn(2, 4, *(size,) * n)
    expected = reference_separable(x, layer.depthwise.weight, layer.pointwise.weight,
                                   layer.pointwise.bias, layer.depthwise.bias, stride, "same", 1)
    y = layer(x)
    assert y.shape[2:] == (math.ceil(size / stride),) * n
    torch.testing.assert_close(y, expected, atol=1e-5, rtol=1e-5)
