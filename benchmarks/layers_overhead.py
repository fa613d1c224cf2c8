"""Per-call overhead: the layers' own Python and dispatch work against the naive composition's.

At batch 1 on a GPU a separable layer is launch-bound: its time is the host work per call (the
Python of ``forward``, module calls, PyTorch's dispatch), not the kernels. This script isolates
that work: the convolution and padding functions (``F.conv2d``, ``F.pad``) are replaced by a
function that returns a ready tensor, so what remains is exactly what each contender does
around its kernels. Contenders, interleaved round by round (min and median over the rounds):

- ``naive``: ``nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)) at stride 2, nn.Conv2d(C, C, 3,
  groups=C), nn.Conv2d(C, F, 1))``, what a user writes for Keras 'same' padding;
- ``sepconv``: ``SeparableConv2d(C, F, 3, stride, padding='same')``;
- ``sepconv_depthwise``: ``DepthwiseConv2d(C, 3, stride, padding='same')`` against
  ``naive_depthwise`` (the padding and the depthwise ``nn.Conv2d``).

The tensors live on ``--device`` (default: ``cuda`` when available, else ``meta``, whose
tensors have shapes and no data: the layers take the same per-call path there as on a GPU),
batch 1, NCHW, MobileNetV1's first layer shapes, with and without gradients. With ``--device
cpu`` the layers take their CPU path: the route is timed on the first call (with the stubs)
and later calls run it as a prepared call (``sepconv.nn._prepared``).

Run: ``python benchmarks/layers_overhead.py --json benchmarks/results/layers_overhead.json``
(a GPU), ``--device cpu --json benchmarks/results/layers_overhead_cpu.json`` (the CPU).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from _common import (
    base_parser,
    format_table,
    machine,
    print_header,
    torch_device,
    write_json,
)
from sepconv.nn import DepthwiseConv2d, SeparableConv2d, _execution


def interleaved(fns: dict[str, Callable[[], Any]], rounds: int, calls: int) -> dict[str, Any]:
    """(min, median) microseconds per call of each function, one timing of each per round."""
    for fn in fns.values():
        for _ in range(calls // 10):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            times[name].append((time.perf_counter() - start) / calls * 1e6)
    return {name: (min(v), statistics.median(v)) for name, v in times.items()}


def _calls(*modules_and_input: Any) -> dict[str, Callable[[], Any]]:
    naive, layer, naive_dw, dw, x = modules_and_input
    return {
        "naive": lambda: naive(x),
        "sepconv": lambda: layer(x),
        "naive_depthwise": lambda: naive_dw(x),
        "sepconv_depthwise": lambda: dw(x),
    }


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    default = "cuda" if torch.cuda.is_available() else "meta"
    parser.add_argument("--device", default=default, help=f"torch device (default {default})")
    parser.add_argument("--calls", type=int, default=5000, help="calls per timing")
    args = parser.parse_args(argv)
    device = torch_device(parser, args.device)
    rounds = 3 if args.quick else args.repeat
    info = machine("torch")
    info["device"] = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    print_header("per-call overhead of the layers (kernels stubbed out)", info)
    # Ready outputs of 4x4 pixels with the weight's output channels (the depthwise step's 32,
    # the pointwise step's 64), so that every route's later steps (on the CPU also a pointwise
    # step by matrix products) take shapes they accept; with gradients on, a differentiable one.
    ready = {
        (channels, grad): torch.zeros(1, channels, 4, 4, device=device).requires_grad_(grad)
        for channels in (32, 64)
        for grad in (False, True)
    }

    def stub(input: torch.Tensor, weight: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return ready[weight.shape[0], torch.is_grad_enabled()]

    def pad_stub(input: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return input

    saved = F.conv2d, F.pad, _execution.CONV[2]
    F.conv2d = _execution.CONV[2] = stub  # type: ignore[assignment]
    F.pad = pad_stub  # type: ignore[assignment]
    rows, results = [], []
    try:
        for stride in (1, 2):
            pad = [nn.ZeroPad2d((0, 1, 0, 1))] if stride == 2 else []
            depthwise = nn.Conv2d(32, 32, 3, stride, 1 if stride == 1 else 0, groups=32)
            naive = nn.Sequential(*pad, depthwise, nn.Conv2d(32, 64, 1)).to(device)
            naive_dw = nn.Sequential(*pad, depthwise).to(device)
            layer = SeparableConv2d(32, 64, 3, stride, padding="same").to(device)
            dw = DepthwiseConv2d(32, 3, stride, padding="same").to(device)
            x = torch.zeros(1, 32, 112, 112, device=device)
            for grad in (False, True):
                with torch.set_grad_enabled(grad):
                    t = interleaved(_calls(naive, layer, naive_dw, dw, x), rounds, args.calls)
                r = {"stride": stride, "grad": grad}
                for name, (low, mid) in t.items():
                    r[f"{name}_us"], r[f"{name}_median_us"] = low, mid
                r["sepconv_minus_naive_us"] = t["sepconv"][0] - t["naive"][0]
                r["depthwise_minus_naive_us"] = t["sepconv_depthwise"][0] - t["naive_depthwise"][0]
                results.append(r)
                rows.append(
                    [
                        f"32->64 s{stride}",
                        "yes" if grad else "no",
                        *(f"{t[n][0]:.2f}/{t[n][1]:.2f}" for n in t),
                        f"{r['sepconv_minus_naive_us']:+.2f}",
                        f"{r['depthwise_minus_naive_us']:+.2f}",
                    ]
                )
    finally:
        F.conv2d, F.pad, _execution.CONV[2] = saved
    print(
        format_table(
            [
                "layer",
                "grad",
                "naive us",
                "sepconv us",
                "naive depthwise us",
                "sepconv depthwise us",
                "separable - naive",
                "depthwise - naive",
            ],
            rows,
        )
    )
    print("times: min/median microseconds per call over the rounds, kernels stubbed out")
    write_json(args.json, {"benchmark": "layers_overhead", "machine": info, "results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
