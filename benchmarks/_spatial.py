"""``benchmarks/layers.py``'s spatially separable rows: ``SpatiallySeparableConv2d`` against
the two ``nn.Conv2d`` a user would write instead, at Inception-v3's factorized 7x7 shapes.

Inception-v3 (Szegedy et al. 2016, "Rethinking the Inception Architecture", section 3.2 and
figure 6) replaces a 7x7 convolution on its 17x17 grid by a ``1 x 7`` convolution followed by
a ``7 x 1`` one: in torchvision's ``InceptionC`` the branch ``branch7x7_2`` / ``branch7x7_3``
takes ``c7`` channels to ``c7`` (``1 x 7``) and then to 192 (``7 x 1``), ``c7`` = 128, 160
and 192 in the three kinds of block. The layer
``SpatiallySeparableConv2d(c7, 192, 7, padding='same', intermediate_channels=c7,
order='row_first')`` computes that pair (no norm or activation between the passes); the
contenders, interleaved round by round on the same input and weights:

- ``sepconv``: the layer on the input as given, the caller's memory format out (its CPU
  route, the caller's format or the other one, timed on its first call); its weights in the
  caller's memory format (a channels-last caller's model moved there with
  ``.to(memory_format=torch.channels_last)``, as PyTorch's convolutions want);
- ``naive_nchw``: ``nn.Sequential(nn.Conv2d(c7, c7, (1, 7), padding=(0, 3), bias=False),
  nn.Conv2d(c7, 192, (7, 1), padding=(3, 0)))`` run in NCHW, the input converted first and the
  result back where the caller is channels-last;
- ``naive_cl``: the same in channels-last, converted from and back to an NCHW caller's format;
- ``onnxruntime`` (forward, CPU): the NCHW composition exported to ONNX, as for the separable
  rows.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

#: (c7, intermediate channels, filters, grid size, kernel size, Inception-v3 blocks of the kind)
INCEPTION_V3 = [(128, 128, 192, 17, 7, 1), (160, 160, 192, 17, 7, 2), (192, 192, 192, 17, 7, 1)]
QUICK = [(128, 128, 192, 17, 7, 1)]
CL = torch.channels_last


def naive(channels: int, mid: int, filters: int, kernel: int) -> nn.Sequential:
    """The two convolutions, row pass first, 'same' padding (odd kernel: symmetric)."""
    half = kernel // 2
    return nn.Sequential(
        nn.Conv2d(channels, mid, (1, kernel), padding=(0, half), bias=False),
        nn.Conv2d(mid, filters, (kernel, 1), padding=(half, 0)),
    )


def spatial_case(
    channels: int,
    mid: int,
    filters: int,
    size: int,
    kernel: int,
    batch: int,
    channels_last: bool,
    backward: bool,
    rounds: int,
    threads: int,
    roof: dict[str, float],
    tools: Any,
) -> dict[str, Any]:
    """One row: ``tools`` is ``benchmarks/layers.py`` (its timing, contenders and bound)."""
    from sepconv.nn import SpatiallySeparableConv2d

    torch.manual_seed(0)
    caller = CL if channels_last else torch.contiguous_format
    plain = naive(channels, mid, filters, kernel)
    layer = SpatiallySeparableConv2d(
        channels,
        filters,
        kernel,
        padding="same",
        intermediate_channels=mid,
        order="row_first",
    )
    with torch.no_grad():  # the same weights everywhere
        layer.row.weight.copy_(plain[0].weight)
        layer.column.weight.copy_(plain[1].weight)
        layer.column.bias.copy_(plain[1].bias)
    as_cl = copy.deepcopy(plain).to(memory_format=CL)
    dev = tools.DEVICE[0]
    plain, as_cl, layer = plain.to(dev), as_cl.to(dev), layer.to(dev, memory_format=caller)
    x = torch.randn(batch, channels, size, size, device=dev).contiguous(memory_format=caller)
    fns = tools.contenders(layer, plain, as_cl, x, backward, threads)
    small = tools.SMALL_CALLS_S if batch == 1 or dev.type != "cpu" else 0.0
    with torch.set_grad_enabled(backward):
        t = tools.interleaved(fns, rounds, small)
    pixels = batch * size * size
    flops = 2 * pixels * kernel * (channels * mid + mid * filters)
    nbytes = 4 * (
        pixels * (channels + 2 * mid + filters) + kernel * (channels * mid + mid * filters)
    )
    r: dict[str, Any] = {
        "layer": f"{channels}->{mid}->{filters} @{size} 1x{kernel},{kernel}x1",
        "channels": channels,
        "intermediate_channels": mid,
        "filters": filters,
        "size": size,
        "kernel": kernel,
        "batch": batch,
        "input": "channels_last" if channels_last else "nchw",
    }
    tools.timed_row(r, t, flops, nbytes, backward, roof)
    r["sepconv_format"] = tools._run_format(layer, x, backward)
    return r
