"""The 1x1 convolution as matrix products, forward and backward (a route of the layers).

A 1x1 convolution of ``x`` (N, C, H, W) with ``weight`` (F, C, 1, 1) is the matrix product of
the (F, C) weight matrix with the batch's (C, N H W) pixel columns (NCHW), or of the (N H W, C)
pixel rows of a channels-last tensor with its transpose: one ``torch.mm`` for the whole batch.
Pixel rows are a view of a channels-last tensor; NCHW columns beyond batch 1 are a copy (the
images side by side), which costs far less than a thin product per image of (C, H W) columns
at the small images of a network's last stages. Its gradients are single matrix products too:
the input's ``W^T G`` (``G W`` by pixel rows), the weight's ``G X^T`` (``G^T X``).
PyTorch's convolution backward (oneDNN) runs the same products at most shapes, but on a 2-core
AMD EPYC at 2 threads (``benchmarks/layers.py``) it took 5.1 ms for the backward of 1024 ->
1024 channels at 7x7, batch 1, NCHW, where these products take 1.5; channels-last 3.0 against
1.3 (forward 2.0 against 0.8). So training routes time this kernel beside PyTorch's convolution
(:mod:`sepconv.nn._autotune`) and keep it where it is faster.

Examples
--------
>>> import torch
>>> import torch.nn.functional as F
>>> x, w = torch.randn(2, 8, 5, 5), torch.randn(4, 8, 1, 1)
>>> bool(torch.allclose(pointwise(x, w, None), F.conv2d(x, w), atol=1e-5))
True
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["pointwise"]

_CL = torch.channels_last


def _rows(t: Tensor) -> Tensor:
    """The (N H W, C) pixel rows of a channels-last tensor (a view)."""
    return t.permute(0, 2, 3, 1).reshape(-1, t.shape[1])


def _columns(t: Tensor) -> Tensor:
    """The (C, N H W) pixel columns of an NCHW tensor: a view at batch 1, else a copy (the
    images side by side, so that the whole batch is one matrix product rather than one thin
    product per image)."""
    n, c = t.shape[:2]
    return t.reshape(n, c, -1).transpose(0, 1).reshape(c, -1)


def _uncolumns(m: Tensor, n: int, h: int, w: int) -> Tensor:
    """The NCHW tensor (N, F, H, W) of (F, N H W) pixel columns (a view at batch 1)."""
    f = m.shape[0]
    return m.view(f, n, h * w).transpose(0, 1).contiguous().view(n, f, h, w)


class _Pointwise(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        n, c, h, w = x.shape
        matrix = weight.reshape(weight.shape[0], c)
        channels_last = not x.is_contiguous()
        ctx.save_for_backward(x, weight)
        ctx.channels_last, ctx.has_bias = channels_last, bias is not None
        if channels_last:
            rows = _rows(x)
            out = rows @ matrix.t() if bias is None else torch.addmm(bias, rows, matrix.t())
            return out.view(n, h, w, -1).permute(0, 3, 1, 2)
        columns = _columns(x)
        out = matrix @ columns if bias is None else torch.addmm(bias[:, None], matrix, columns)
        return _uncolumns(out, n, h, w)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        n, c, h, w = x.shape
        filters = weight.shape[0]
        matrix = weight.reshape(filters, c)
        need_x, need_w, need_b = ctx.needs_input_grad
        grad_x = grad_w = grad_b = None
        if ctx.channels_last:
            g = _rows(grad.contiguous(memory_format=_CL))
            if need_x:
                grad_x = (g @ matrix).view(n, h, w, c).permute(0, 3, 1, 2)
            if need_w:
                grad_w = (g.t() @ _rows(x)).view(weight.shape)
            if need_b and ctx.has_bias:
                grad_b = g.sum(0)
            return grad_x, grad_w, grad_b
        g = _columns(grad.contiguous())
        if need_x:
            grad_x = _uncolumns(matrix.t() @ g, n, h, w)
        if need_w:
            grad_w = (g @ _columns(x).t()).view(weight.shape)
        if need_b and ctx.has_bias:
            grad_b = g.sum(1)
        return grad_x, grad_w, grad_b


def pointwise(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``F.conv2d(x, weight, bias)`` for a 1x1 ``weight`` (F, C, 1, 1) and an NCHW or
    channels-last ``x`` (N, C, H, W) of the weight's dtype, by matrix products; the result
    (N, F, H, W) in ``x``'s memory format (an input in neither is made contiguous first).
    Differentiable (its backward is matrix products as well). An empty ``x`` (a batch of 0, say)
    runs ``F.conv2d``."""
    if x.numel() == 0:
        return F.conv2d(x, weight, bias)
    if not x.is_contiguous() and not x.is_contiguous(memory_format=_CL):
        x = x.contiguous()
    return _Pointwise.apply(x, weight, bias)
