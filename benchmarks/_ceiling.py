"""``benchmarks/layers.py --ceiling``: what PyTorch's own kernels allow at each MobileNetV1
layer shape: the normal convolution against the pointwise step alone and the depthwise step
alone, each on its faster memory format (forward, medians of interleaved runs)."""

from __future__ import annotations

import copy
import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from _common import format_table, write_json
from sepconv import cost


def _step(module: nn.Module, x: torch.Tensor, backward: bool) -> Callable[[], None]:
    if not backward:

        def forward() -> None:
            with torch.no_grad():
                module(x)

        return forward
    x = x.detach().requires_grad_(True)
    params = [p for p in module.parameters() if p.requires_grad]
    grad = None

    def train() -> None:
        nonlocal grad
        for p in params:
            p.grad = None
        x.grad = None
        y = module(x)
        if grad is None:
            grad = torch.ones_like(y)  # same memory format as y
        y.backward(grad)

    return train


def _synced(fn: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        fn()
        torch.cuda.synchronize()

    return run


def interleaved_medians(
    fns: dict[str, Callable[[], None]],
    repeat: int,
    min_time: float,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Median seconds per call of each function; one timing of each per round, in turn."""
    for fn in fns.values():  # warm-up (oneDNN primitive creation, allocator)
        fn()
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            calls = 0
            start = clock()
            while True:
                fn()
                calls += 1
                elapsed = clock() - start
                if elapsed >= min_time:
                    break
            times[name].append(elapsed / calls)
    return {name: statistics.median(values) for name, values in times.items()}


def ceiling_case(
    channels: int,
    filters: int,
    size: int,
    stride: int,
    batch: int,
    repeat: int,
    clock: Callable[[], float] = time.perf_counter,
    device: str = "cpu",
) -> dict[str, Any]:
    """The most any implementation built on PyTorch's kernels can reach at one shape: the
    normal convolution against the pointwise step alone and the depthwise step alone, each
    on its faster memory format (forward)."""
    torch.manual_seed(0)
    out = -(-size // stride)
    x = torch.randn(batch, channels, size, size, device=device)
    y = torch.randn(batch, channels, out, out, device=device)
    cl = torch.channels_last
    conv = nn.Conv2d(channels, filters, 3, stride, padding=1, bias=False).to(device)
    pointwise = nn.Conv2d(channels, filters, 1, bias=False).to(device)
    depthwise = nn.Conv2d(channels, channels, 3, stride, padding=1, groups=channels, bias=False).to(
        device
    )
    fns = {}
    for name, module, inp in (
        ("conv", conv, x),
        ("pointwise", pointwise, y),
        ("depthwise", depthwise, x),
    ):
        fns[f"{name}_nchw"] = _step(module, inp.contiguous(), False)
        fns[f"{name}_cl"] = _step(
            copy.deepcopy(module).to(memory_format=cl), inp.contiguous(memory_format=cl), False
        )
    if x.device.type == "cuda":
        fns = {name: _synced(fn) for name, fn in fns.items()}
    t = interleaved_medians(fns, repeat, 0.02 if batch == 1 else 0.0, clock)
    best = {
        name: min(t[f"{name}_nchw"], t[f"{name}_cl"]) for name in ("conv", "pointwise", "depthwise")
    }
    shape = (size, size, channels)
    ratio = (
        cost.conv(shape, 3, filters, stride=stride, padding="same", bias=False).multiplications
        / cost.separable(
            shape, 3, filters, stride=stride, padding="same", bias=False
        ).multiplications
    )
    return {
        "layer": f"{channels}->{filters} @{size} s{stride}",
        "batch": batch,
        **{f"{name}_ms": value * 1e3 for name, value in best.items()},
        "mult_ratio": ratio,
        "pointwise_only_efficiency": best["conv"] / best["pointwise"] / ratio,
        "both_steps_efficiency": best["conv"] / (best["pointwise"] + best["depthwise"]) / ratio,
    }


def ceiling(args: Any, shapes: list[tuple[int, ...]], repeat: int, info: dict[str, Any]) -> int:
    """``--ceiling``: efficiency if the depthwise step cost nothing, and with both steps at the
    speed of PyTorch's own kernels on their faster memory format (no copies, no padding)."""
    results, rows = [], []
    for batch in args.batch:
        for channels, filters, size, stride, count in shapes:
            r = ceiling_case(
                channels, filters, size, stride, batch, repeat, time.perf_counter, args.device
            )
            r["count"] = count
            results.append(r)
            rows.append(
                [
                    r["layer"] + (f" (x{count})" if count > 1 else ""),
                    batch,
                    f"{r['conv_ms']:.2f}",
                    f"{r['pointwise_ms']:.2f}",
                    f"{r['depthwise_ms']:.2f}",
                    f"{r['mult_ratio']:.1f}x",
                    f"{r['pointwise_only_efficiency']:.2f}",
                    f"{r['both_steps_efficiency']:.2f}",
                ]
            )
    print(
        format_table(
            [
                "layer",
                "batch",
                "conv ms",
                "pointwise ms",
                "depthwise ms",
                "mult ratio",
                "eff, pointwise alone",
                "eff, both steps",
            ],
            rows,
        )
    )
    summary = {}
    for batch in args.batch:
        sel = [r for r in results if r["batch"] == batch]
        weights = [r["count"] for r in sel]
        summary[f"batch {batch}"] = {
            "pointwise_only_geomean": geomean(
                [r["pointwise_only_efficiency"] for r in sel], weights
            ),
            "both_steps_geomean": geomean([r["both_steps_efficiency"] for r in sel], weights),
            "both_steps_min": min(r["both_steps_efficiency"] for r in sel),
        }
    print()
    for key, entry in summary.items():
        print(
            f"{key}: geometric mean efficiency with the pointwise step alone "
            f"{entry['pointwise_only_geomean']:.2f}, with both steps "
            f"{entry['both_steps_geomean']:.2f} (min {entry['both_steps_min']:.2f})"
        )
    write_json(
        args.json,
        {
            "benchmark": "layers --ceiling",
            "machine": info,
            "repeat": repeat,
            "results": results,
            "summary": summary,
        },
    )
    return 0


def geomean(values: list[float], weights: list[int]) -> float:
    return math.exp(sum(w * math.log(v) for v, w in zip(values, weights)) / sum(weights))
