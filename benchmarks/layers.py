"""Separable layers against nn.Conv2d on the 13 depthwise separable layers of MobileNetV1.

For each layer shape (Howard et al. 2017, Table 1, 224x224 input, 'same' padding), batch 1 and
8, NCHW and channels-last inputs, forward and forward + backward, three contenders run side by
side on the same input, interleaved round by round (the median of each is reported):

- ``conv``: ``nn.Conv2d(C, F, 3, stride, padding=1, bias=False)``, the normal convolution the
  layer replaces, timed on both memory formats (input and weights); the faster one counts.
- ``naive``: ``nn.Sequential(nn.Conv2d(C, C, 3, stride, groups=C), nn.Conv2d(C, F, 1))``, the
  composition a PyTorch user writes, computing the same function as the layer: padding=1 at
  stride 1, and at stride 2 (even sizes) an ``nn.ZeroPad2d((0, 1, 0, 1))`` in front, the
  Keras/TensorFlow 'same' padding; on the caller's input as given.
- ``sepconv``: ``sepconv.nn.SeparableConv2d(C, F, 3, stride, padding='same')`` on the caller's
  input as given.

"efficiency" = realised speedup over ``conv`` / theoretical ratio of multiplications
(``sepconv.cost.conv`` / ``sepconv.cost.separable``): 1.0 means the layer delivers all the
savings the cost model promises. The targets: forward efficiency >= 0.85 (geometric mean) and
>= 0.70 at every shape; forward + backward >= 0.70 (geometric mean); sepconv never more than 5%
slower than the naive composition.

Run: ``python benchmarks/layers.py`` (a few minutes), ``--quick`` for a smoke test,
``--json out.json`` to keep the numbers.
"""

from __future__ import annotations

import copy
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from _common import base_parser, format_table, machine, print_header, write_json
from sepconv import cost
from sepconv.nn import SeparableConv2d
from sepconv.padding import same_padding

# (channels, filters, input size, stride, how many times MobileNetV1 has this layer)
MOBILENET_V1 = [
    (32, 64, 112, 1, 1),
    (64, 128, 112, 2, 1),
    (128, 128, 56, 1, 1),
    (128, 256, 56, 2, 1),
    (256, 256, 28, 1, 1),
    (256, 512, 28, 2, 1),
    (512, 512, 14, 1, 5),
    (512, 1024, 14, 2, 1),
    (1024, 1024, 7, 1, 1),
]
QUICK = [(32, 64, 112, 1, 1), (256, 512, 28, 2, 1), (512, 512, 14, 1, 5)]

TARGETS = {"forward_geomean": 0.85, "forward_min": 0.70, "backward_geomean": 0.70,
           "slower_than_naive": 1.05}


def _naive(channels: int, filters: int, size: int, stride: int) -> nn.Sequential:
    """The plain composition computing the same function as the layer (Keras 'same')."""
    pads = same_padding(size, 3, stride)
    if pads[0] == pads[1]:
        return nn.Sequential(
            nn.Conv2d(channels, channels, 3, stride, padding=pads[0], groups=channels,
                      bias=False),
            nn.Conv2d(channels, filters, 1, bias=False))
    return nn.Sequential(
        nn.ZeroPad2d((pads[0], pads[1], pads[0], pads[1])),
        nn.Conv2d(channels, channels, 3, stride, groups=channels, bias=False),
        nn.Conv2d(channels, filters, 1, bias=False))


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


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def _synced(fn: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        fn()
        torch.cuda.synchronize()
    return run


def interleaved_medians(fns: dict[str, Callable[[], None]], repeat: int,
                        min_time: float, clock: Callable[[], float] = time.perf_counter
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


def bench_case(channels: int, filters: int, size: int, stride: int, batch: int,
               channels_last: bool, backward: bool, repeat: int,
               clock: Callable[[], float] = time.perf_counter,
               device: str = "cpu") -> dict[str, Any]:
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    conv = nn.Conv2d(channels, filters, 3, stride, padding=1, bias=False).to(device)
    conv_cl = nn.Conv2d(channels, filters, 3, stride, padding=1, bias=False).to(
        device, memory_format=torch.channels_last)
    naive = _naive(channels, filters, size, stride).to(device)
    layer = SeparableConv2d(channels, filters, 3, stride, padding="same", bias=False,
                            device=device)
    x = torch.randn(batch, channels, size, size, device=device).contiguous(memory_format=fmt)
    x_nchw = x.contiguous()
    x_cl = x.contiguous(memory_format=torch.channels_last)
    fns = {
        "conv_nchw": _step(conv, x_nchw, backward),
        "conv_cl": _step(conv_cl, x_cl, backward),
        "naive": _step(naive, x, backward),
        "sepconv": _step(layer, x, backward),
    }
    if x.device.type == "cuda":  # time the kernels, not their launch
        fns = {name: _synced(fn) for name, fn in fns.items()}
    min_time = 0.02 if batch == 1 or x.device.type == "cuda" else 0.0
    t = interleaved_medians(fns, repeat, min_time, clock)
    shape = (size, size, channels)
    normal = cost.conv(shape, 3, filters, stride=stride, padding="same", bias=False)
    separable = cost.separable(shape, 3, filters, stride=stride, padding="same", bias=False)
    ratio = normal.multiplications / separable.multiplications
    best_conv = min(t["conv_nchw"], t["conv_cl"])
    return {
        "layer": f"{channels}->{filters} @{size} s{stride}",
        "channels": channels, "filters": filters, "size": size, "stride": stride,
        "batch": batch, "input": "channels_last" if channels_last else "nchw",
        "pass": "forward+backward" if backward else "forward",
        "conv_nchw_ms": t["conv_nchw"] * 1e3, "conv_cl_ms": t["conv_cl"] * 1e3,
        "naive_ms": t["naive"] * 1e3, "sepconv_ms": t["sepconv"] * 1e3,
        "mult_ratio": ratio,
        "naive_efficiency": best_conv / t["naive"] / ratio,
        "sepconv_efficiency": best_conv / t["sepconv"] / ratio,
        "sepconv_vs_naive": t["sepconv"] / t["naive"],
    }


def ceiling_case(channels: int, filters: int, size: int, stride: int, batch: int, repeat: int,
                 clock: Callable[[], float] = time.perf_counter,
                 device: str = "cpu") -> dict[str, Any]:
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
    depthwise = nn.Conv2d(channels, channels, 3, stride, padding=1, groups=channels,
                          bias=False).to(device)
    fns = {}
    for name, module, inp in (("conv", conv, x), ("pointwise", pointwise, y),
                              ("depthwise", depthwise, x)):
        fns[f"{name}_nchw"] = _step(module, inp.contiguous(), False)
        fns[f"{name}_cl"] = _step(copy.deepcopy(module).to(memory_format=cl),
                                  inp.contiguous(memory_format=cl), False)
    if x.device.type == "cuda":
        fns = {name: _synced(fn) for name, fn in fns.items()}
    t = interleaved_medians(fns, repeat, 0.02 if batch == 1 else 0.0, clock)
    best = {name: min(t[f"{name}_nchw"], t[f"{name}_cl"])
            for name in ("conv", "pointwise", "depthwise")}
    shape = (size, size, channels)
    ratio = (cost.conv(shape, 3, filters, stride=stride, padding="same", bias=False)
             .multiplications / cost.separable(shape, 3, filters, stride=stride,
                                               padding="same", bias=False).multiplications)
    return {
        "layer": f"{channels}->{filters} @{size} s{stride}", "batch": batch,
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
            r = ceiling_case(channels, filters, size, stride, batch, repeat,
                             CLOCKS[args.clock], args.device)
            r["count"] = count
            results.append(r)
            rows.append([r["layer"] + (f" (x{count})" if count > 1 else ""), batch,
                         f"{r['conv_ms']:.2f}", f"{r['pointwise_ms']:.2f}",
                         f"{r['depthwise_ms']:.2f}", f"{r['mult_ratio']:.1f}x",
                         f"{r['pointwise_only_efficiency']:.2f}",
                         f"{r['both_steps_efficiency']:.2f}"])
    print(format_table(["layer", "batch", "conv ms", "pointwise ms", "depthwise ms",
                        "mult ratio", "eff, pointwise alone", "eff, both steps"], rows))
    summary = {}
    for batch in args.batch:
        sel = [r for r in results if r["batch"] == batch]
        weights = [r["count"] for r in sel]
        summary[f"batch {batch}"] = {
            "pointwise_only_geomean": geomean([r["pointwise_only_efficiency"] for r in sel],
                                              weights),
            "both_steps_geomean": geomean([r["both_steps_efficiency"] for r in sel], weights),
            "both_steps_min": min(r["both_steps_efficiency"] for r in sel),
        }
    print()
    for key, entry in summary.items():
        print(f"{key}: geometric mean efficiency with the pointwise step alone "
              f"{entry['pointwise_only_geomean']:.2f}, with both steps "
              f"{entry['both_steps_geomean']:.2f} (min {entry['both_steps_min']:.2f})")
    write_json(args.json, {"benchmark": "layers --ceiling", "machine": info, "repeat": repeat,
                           "results": results, "summary": summary})
    return 0


def geomean(values: list[float], weights: list[int]) -> float:
    return math.exp(sum(w * math.log(v) for v, w in zip(values, weights)) / sum(weights))


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8],
                        help="batch sizes (default 1 8)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's choice, one per core)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="wall time (default) or CPU time of this process, which other "
                             "processes on a busy machine do not inflate (use with --threads 1)")
    parser.add_argument("--shapes", type=int, nargs="+", default=None, metavar="I",
                        help="only these rows of the MobileNetV1 table (0-8)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--ceiling", action="store_true",
                        help="measure instead what PyTorch's own kernels allow: the normal "
                             "convolution against the pointwise and depthwise steps alone")
    parser.add_argument("--passes", nargs="+", choices=["forward", "backward"],
                        default=["forward", "backward"],
                        help="forward, and/or forward + backward (default both)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    shapes = QUICK if args.quick else MOBILENET_V1
    if args.shapes:
        shapes = [MOBILENET_V1[i] for i in args.shapes]
    repeat = 3 if args.quick else args.repeat
    info = machine("torch")
    info["threads"] = torch.get_num_threads()
    info["clock"] = args.clock
    info["device"] = (torch.cuda.get_device_name() if args.device.startswith("cuda")
                      else args.device)
    info["load_average_start"] = os.getloadavg()
    print_header("sepconv.nn.SeparableConv2d vs nn.Conv2d and the naive nn.Sequential "
                 "(MobileNetV1 layers)", info)
    print(f"threads: {info['threads']}, clock: {args.clock}, repeat: {repeat} (medians), "
          f"load average at start: {info['load_average_start'][0]:.2f} (other processes)")
    if args.ceiling:
        return ceiling(args, shapes, repeat, info)
    results = []
    rows = []
    for backward in [p == "backward" for p in args.passes]:
        for batch in args.batch:
            for channels_last in (False, True):
                for channels, filters, size, stride, count in shapes:
                    r = bench_case(channels, filters, size, stride, batch, channels_last,
                                   backward, repeat, CLOCKS[args.clock], args.device)
                    r["count"] = count
                    results.append(r)
                    rows.append([
                        r["layer"] + (f" (x{count})" if count > 1 else ""), batch, r["input"],
                        r["pass"], f"{min(r['conv_nchw_ms'], r['conv_cl_ms']):.2f}",
                        f"{r['naive_ms']:.2f}", f"{r['sepconv_ms']:.2f}",
                        f"{r['mult_ratio']:.1f}x", f"{r['naive_efficiency']:.2f}",
                        f"{r['sepconv_efficiency']:.2f}", f"{r['sepconv_vs_naive']:.2f}",
                    ])
                    print(f"  {rows[-1][0]} batch {batch} {r['input']} {r['pass']}: "
                          f"efficiency {r['sepconv_efficiency']:.2f}", file=sys.stderr)
    headers = ["layer", "batch", "input", "pass", "conv ms (best)", "naive ms", "sepconv ms",
               "mult ratio", "naive eff", "sepconv eff", "sepconv/naive time"]
    print(format_table(headers, rows))
    print()
    summary: dict[str, Any] = {}
    summary_rows = []
    for pass_name in ("forward", "forward+backward"):
        for fmt in ("nchw", "channels_last", "all"):
            sel = [r for r in results if r["pass"] == pass_name and fmt in ("all", r["input"])]
            if not sel:
                continue
            weights = [r["count"] for r in sel]
            entry = {
                "sepconv_geomean": geomean([r["sepconv_efficiency"] for r in sel], weights),
                "sepconv_min": min(r["sepconv_efficiency"] for r in sel),
                "naive_geomean": geomean([r["naive_efficiency"] for r in sel], weights),
                "naive_min": min(r["naive_efficiency"] for r in sel),
                "worst_sepconv_vs_naive": max(r["sepconv_vs_naive"] for r in sel),
            }
            summary[f"{pass_name}/{fmt}"] = entry
            summary_rows.append([pass_name, fmt, f"{entry['sepconv_geomean']:.2f}",
                                 f"{entry['sepconv_min']:.2f}", f"{entry['naive_geomean']:.2f}",
                                 f"{entry['naive_min']:.2f}",
                                 f"{entry['worst_sepconv_vs_naive']:.2f}"])
    print("efficiency = (conv time / layer time) / (conv mults / layer mults); geometric means "
          "count each MobileNetV1 layer once (512@14 s1 five times)")
    print(format_table(["pass", "input", "sepconv geomean", "sepconv min", "naive geomean",
                        "naive min", "worst sepconv/naive time"], summary_rows))
    info["load_average_end"] = os.getloadavg()
    print(f"load average at end: {info['load_average_end'][0]:.2f}; on a busy machine use "
          "--threads 1 --clock cpu")
    checks = []
    fwd, bwd = summary.get("forward/all"), summary.get("forward+backward/all")
    if fwd:
        checks += [("forward efficiency geomean >= 0.85", fwd["sepconv_geomean"] >= 0.85),
                   ("forward efficiency >= 0.70 at every shape", fwd["sepconv_min"] >= 0.70)]
    if bwd:
        checks += [("forward+backward efficiency geomean >= 0.70",
                    bwd["sepconv_geomean"] >= 0.70)]
    worst = max(entry["worst_sepconv_vs_naive"] for entry in (fwd, bwd) if entry)
    checks.append(("never more than 5% slower than naive",
                   worst <= TARGETS["slower_than_naive"]))
    print()
    for text, ok in checks:
        print(f"target {text}: {'met' if ok else 'NOT met'}")
    write_json(args.json, {"benchmark": "layers", "machine": info, "repeat": repeat,
                           "results": results, "summary": summary,
                           "targets": {text: ok for text, ok in checks}})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
