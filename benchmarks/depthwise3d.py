"""3-D depthwise convolutions: sepconv's native kernel against PyTorch, at X3D-M's shapes.

X3D (Feichtenhofer 2020, "X3D: Expanding Architectures for Efficient Video Recognition", table
1) runs a 3x3x3 depthwise convolution in every residual block, on 16 frames: X3D-M's inner
widths are 54, 108, 216 and 432 channels at 56x56, 28x28, 14x14 and 7x7, the first block of
each stage at spatial stride 2. At batch 1 and 4, on an NCDHW input, forward (inference) and
forward + backward (gradients for the input and the weight), these contenders compute the same
function on the same input and weights, interleaved round by round (one timing each per round;
minimum and median reported):

- ``sepconv``: ``sepconv.nn.DepthwiseConv3d(C, 3, stride, padding='same')`` on the input as
  given (NCDHW out);
- ``native``: the kernel alone (``sepconv.nn._native_depthwise.depthwise_conv3d``);
- ``torch_ncdhw``: ``F.conv3d(groups=C)`` on the NCDHW input;
- ``torch_cl3d``: the same on a ``torch.channels_last_3d`` input with channels-last weights,
  both ready in that format (not what an NCDHW caller has: the floor of converting);
- ``torch_converted``: the NCDHW input converted to ``channels_last_3d``, convolved there, and
  the result converted back (what an NCDHW caller can write to get PyTorch's faster kernel).

``sepconv/torch`` is the layer's time over the best a user could write with PyTorch on the
NCDHW input (``torch_ncdhw`` or ``torch_converted``; ``torch_cl3d`` is not what such a caller
has). A fresh layer's first call, where its routes are timed, and its ``RETUNE_AT``-th, where
the closest are timed again, are timed before the rounds (column ``sepconv 1st/8th call``).
``native of bound``: the bytes of the input and output at the bandwidth of a large copy timed
in the same rounds (``GB/s same rounds``), over the kernel's time (1.0: as fast as that copy).
``--quick``: two shapes, the first batch size only.

Allocator: as ``benchmarks/layers.py`` (re-run with glibc's mmap and trim thresholds raised
unless ``--default-allocator``).

Run: ``python benchmarks/depthwise3d.py --json benchmarks/results/depthwise3d.json``.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from layers import _fix_allocator

if __name__ == "__main__":
    _fix_allocator(sys.argv[1:])

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import layers  # noqa: E402
from _common import base_parser, format_table, machine, print_header, write_json  # noqa: E402
from sepconv.nn import DepthwiseConv3d  # noqa: E402
from sepconv.nn import _native_depthwise as native  # noqa: E402
from sepconv.padding import same_padding  # noqa: E402

# (channels, frames, input size, spatial stride): X3D-M's depthwise steps
X3D_M = [
    (54, 16, 112, 2),
    (54, 16, 56, 1),
    (108, 16, 56, 2),
    (108, 16, 28, 1),
    (216, 16, 28, 2),
    (216, 16, 14, 1),
    (432, 16, 14, 2),
    (432, 16, 7, 1),
]
QUICK = [(54, 16, 56, 1), (432, 16, 7, 1)]
CL3D = torch.channels_last_3d
NAMES = ["sepconv", "native", "torch_ncdhw", "torch_cl3d", "torch_converted"]


def case(
    channels: int, frames: int, size: int, stride: int, batch: int, rounds: int, backward: bool
) -> dict[str, Any]:
    torch.manual_seed(0)
    x = torch.randn(batch, channels, frames, size, size)
    weight = torch.randn(channels, 1, 3, 3, 3)
    layer = DepthwiseConv3d(channels, 3, (1, stride, stride), padding="same", bias=False)
    layer.train(backward)
    with torch.no_grad():
        layer.weight.copy_(weight)
    # the layer's first call (its routes timed there) and the one where they are timed again
    first_s, retune_s = _first_calls(layer, x, backward)
    hp = same_padding(size, 3, stride)
    pads = ((1, 1), hp, hp)
    flat = (hp[0], hp[1], hp[0], hp[1], 1, 1)
    steps = (1, stride, stride)
    x_cl, w_cl = x.contiguous(memory_format=CL3D), weight.contiguous(memory_format=CL3D)

    def torch_conv(inp: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if hp[0] == hp[1]:
            return F.conv3d(inp, w, None, steps, (1, hp[0], hp[0]), 1, channels)
        return F.conv3d(F.pad(inp, flat), w, None, steps, 0, 1, channels)

    with torch.no_grad():
        expected = torch_conv(x, weight)
        got = native.depthwise_conv3d(x, weight, None, steps, pads)
        error = float((got - expected).abs().max() / expected.abs().max())
    if backward:  # forward and backward: gradients for the input and the weight
        for t in (x, weight, x_cl, w_cl):
            t.requires_grad_(True)
    grad = torch.randn(expected.shape)

    def step(run: Any, *inputs: torch.Tensor) -> Any:
        if not backward:
            return run
        return lambda: torch.autograd.grad(run(), inputs, grad)

    src, dst = layers._large_copy()
    fns = {
        "sepconv": step(lambda: layer(x), x, layer.weight),
        "native": step(lambda: native.depthwise_conv3d(x, weight, None, steps, pads), x, weight),
        "torch_ncdhw": step(lambda: torch_conv(x, weight), x, weight),
        "torch_cl3d": step(lambda: torch_conv(x_cl, w_cl), x_cl, w_cl),
        "torch_converted": step(
            lambda: torch_conv(x.contiguous(memory_format=CL3D), w_cl).contiguous(), x, w_cl
        ),
        "copy": lambda: dst.copy_(src),
    }
    with torch.set_grad_enabled(backward):
        t = layers.interleaved(fns, rounds, layers.SMALL_CALLS_S if batch == 1 else 0.0)
    out = -(-size // stride)
    nbytes = 4 * (batch * channels * frames * (size * size + out * out) + 27 * channels)
    gbps = 2 * src.numel() * 4 / t["copy"][0] / 1e9
    r: dict[str, Any] = {
        "layer": f"dw3d {channels} @{frames}x{size} s{stride}",
        "pass": "forward+backward" if backward else "forward",
        "channels": channels,
        "frames": frames,
        "size": size,
        "stride": stride,
        "batch": batch,
        "bytes": nbytes,
        "multiply_adds": batch * channels * frames * out * out * 27,
        "copy_gbps_same_rounds": gbps,
        "bound_ms": nbytes / (gbps * 1e9) * 1e3,
        "native_max_relative_error": error,
        "sepconv_first_call_s": first_s,
        "sepconv_retune_call_s": retune_s,
    }
    for name in NAMES:
        low, mid = t[name]
        r[f"{name}_min_ms"], r[f"{name}_median_ms"] = low * 1e3, mid * 1e3
    best = min(t["torch_ncdhw"][0], t["torch_converted"][0])
    r["native_vs_torch_ncdhw"] = t["native"][0] / t["torch_ncdhw"][0]
    r["native_vs_torch_cl3d"] = t["native"][0] / t["torch_cl3d"][0]
    r["native_of_bound"] = r["bound_ms"] / r["native_min_ms"]
    r["sepconv_vs_torch"] = t["sepconv"][0] / best
    return r


def _first_calls(layer: Any, x: torch.Tensor, backward: bool) -> tuple[float, float]:
    """Seconds of the layer's first call on ``x`` and of its ``RETUNE_AT``-th (forward, and
    backward where ``backward``), on an input copy that wants a gradient in training."""
    from sepconv.nn import _autotune

    inp = x.detach().clone().requires_grad_(backward)
    seconds = []
    with torch.set_grad_enabled(backward):
        for call in range(1, _autotune.RETUNE_AT + 1):
            start = time.perf_counter()
            y = layer(inp)
            if backward:
                y.backward(torch.ones_like(y))
            if call in (1, _autotune.RETUNE_AT):
                seconds.append(time.perf_counter() - start)
    return seconds[0], seconds[1]


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4], help="batch sizes")
    parser.add_argument("--threads", type=int, default=2, help="torch and native threads")
    parser.add_argument("--default-allocator", action="store_true", help="glibc's defaults")
    parser.add_argument(
        "--passes",
        nargs="+",
        choices=["forward", "backward"],
        default=["forward", "backward"],
        help="forward, and/or forward + backward (default both)",
    )
    args = parser.parse_args(argv)
    if not native.available():
        print("the native depthwise kernel is not built here", file=sys.stderr)
        return 1
    torch.set_num_threads(args.threads)
    rounds = 3 if args.quick else args.repeat
    info = machine("torch")
    info.update(
        threads=torch.get_num_threads(),
        allocator=layers.allocator(),
        load_average_start=os.getloadavg(),
    )
    print_header("sepconv 3-D depthwise convolution against PyTorch (X3D-M shapes)", info)
    print(
        f"allocator: {info['allocator']}; threads: {info['threads']}; rounds: {rounds} "
        f"(min/median ms); load average at start: {info['load_average_start'][0]:.2f}"
    )
    rows, results = [], []
    if args.quick:
        args.batch = args.batch[:1]
    print("  (" + ", ".join(_headers()) + ")", file=sys.stderr)
    for backward in [p == "backward" for p in args.passes]:
        for batch in args.batch:
            for channels, frames, size, stride in QUICK if args.quick else X3D_M:
                r = case(channels, frames, size, stride, batch, rounds, backward)
                results.append(r)
                rows.append(_cells(r))
                print("  " + " ".join(map(str, rows[-1])), file=sys.stderr)
    print()
    print(format_table(_headers(), rows))
    summary = {}
    for pass_name in ("forward", "forward+backward"):
        sel = [r for r in results if r["pass"] == pass_name]
        if not sel:
            continue
        ones = [1] * len(sel)
        summary[pass_name] = {
            "native/torch_ncdhw geomean": layers.geomean(
                [r["native_vs_torch_ncdhw"] for r in sel], ones
            ),
            "native/torch_ncdhw max": max(r["native_vs_torch_ncdhw"] for r in sel),
            "native/torch_cl3d geomean": layers.geomean(
                [r["native_vs_torch_cl3d"] for r in sel], ones
            ),
            "sepconv/torch geomean": layers.geomean([r["sepconv_vs_torch"] for r in sel], ones),
            "sepconv/torch max": max(r["sepconv_vs_torch"] for r in sel),
        }
        print()
        print(pass_name + ": " + ", ".join(f"{k} {v:.2f}" for k, v in summary[pass_name].items()))
    info["load_average_end"] = os.getloadavg()
    print(f"load average at end: {info['load_average_end'][0]:.2f}")
    write_json(
        args.json,
        {
            "benchmark": "depthwise3d",
            "machine": info,
            "rounds": rounds,
            "results": results,
            "summary": summary,
        },
    )
    return 0


def _headers() -> list[str]:
    return [
        "layer",
        "pass",
        "batch",
        *(f"{n} ms" for n in NAMES),
        "native/torch_ncdhw",
        "native/torch_cl3d",
        "sepconv/torch",
        "native of bound",
        "GB/s same rounds",
        "sepconv 1st/8th call s",
    ]


def _cells(r: dict[str, Any]) -> list[Any]:
    return [
        r["layer"],
        r["pass"],
        r["batch"],
        *(f"{r[f'{n}_min_ms']:.2f}/{r[f'{n}_median_ms']:.2f}" for n in NAMES),
        f"{r['native_vs_torch_ncdhw']:.2f}",
        f"{r['native_vs_torch_cl3d']:.2f}",
        f"{r['sepconv_vs_torch']:.2f}",
        f"{r['native_of_bound']:.2f}",
        f"{r['copy_gbps_same_rounds']:.1f}",
        f"{r['sepconv_first_call_s']:.2f}/{r['sepconv_retune_call_s']:.2f}",
    ]


if __name__ == "__main__":
    raise SystemExit(main())
