"""``benchmarks/layers.py --calibrate``: the dispatch constants of the native depthwise kernel.

On MobileNetV1's depthwise shapes (3x3, Keras 'same' padding, stride 1 and 2: at stride 2 on
these even sizes one row and one column at the end) at several batch sizes and both memory
formats of the input, three contenders are timed in interleaved rounds (minimum): the native
kernel on the input as given, PyTorch's ``F.conv2d(groups=C)`` as the layers run it (the
asymmetric padding as a zero tap on the kernel, no padded copy) on the input as given, and the
same after converting the input to the other memory format (and the result back). The
forward + backward pair times the native forward with the native gradients and with PyTorch's
convolution backward.
Each contender's time per (format, stride class) is fitted as a non-negative combination of
``sepconv.nn._dispatch.FEATURES`` (least squares on relative errors) and written, with the
machine and the raw timings, to the cost model file read by ``sepconv.nn._dispatch``.
"""

from __future__ import annotations

import datetime
import sys
from typing import Any

import numpy as np
import torch
from scipy.optimize import nnls

from _common import format_table, write_json
from sepconv.nn import _dispatch
from sepconv.nn import _execution as ex
from sepconv.nn import _native_depthwise as native
from sepconv.padding import conv_padding, same_padding

CL = torch.channels_last
SHAPES = [
    (32, 112, 1),
    (64, 112, 2),
    (128, 56, 1),
    (128, 56, 2),
    (256, 28, 1),
    (256, 28, 2),
    (512, 14, 1),
    (512, 14, 2),
    (1024, 7, 1),
]
BATCHES = [1, 2, 8]


def _same(size: int, stride: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Keras 'same' padding of a 3x3 kernel: at stride 2 on an even size, one row and one
    column at the end only (the layers' case, and MobileNet's)."""
    pair = same_padding(size, 3, stride)
    return pair, pair


def _contenders(x: torch.Tensor, weight: torch.Tensor, stride: int) -> dict[str, Any]:
    """The native kernel, and PyTorch's convolution as the layers run it (symmetric padding
    inside the convolution, asymmetric padding by a zero tap on the kernel), on the input as
    given and converted to the other memory format (the result converted back)."""
    channels = x.shape[1]
    caller_cl = native._layout(x) == "cl"
    back = CL if caller_cl else torch.contiguous_format
    other = torch.contiguous_format if caller_cl else CL
    pads = _same(x.shape[2], stride)
    policy = conv_padding(3, stride, "same", 1, "zeros", n=2)

    def layer_torch(inp: torch.Tensor) -> torch.Tensor:
        return ex.conv(inp, weight, None, policy, channels, 2, is_fast=True, extend_kernel=True)

    return {
        "native": lambda: native.depthwise_conv2d(x, weight, None, stride, pads),
        "torch": lambda: layer_torch(x),
        "torch_converted": lambda: layer_torch(x.contiguous(memory_format=other)).contiguous(
            memory_format=back
        ),
    }


def _trained(x: torch.Tensor, weight: torch.Tensor, stride: int, backward: str) -> Any:
    x = x.detach().requires_grad_(True)
    weight = weight.detach().requires_grad_(True)
    pads = _same(x.shape[2], stride)
    grad = torch.ones_like(native.depthwise_conv2d(x.detach(), weight.detach(), None, stride, pads))

    def step() -> None:
        x.grad = weight.grad = None
        native.depthwise_conv2d(x, weight, None, stride, pads, backward=backward).backward(grad)

    return step


NAMES = ("native", "torch", "torch_converted", "native_backward", "torch_backward")


def calibrate(args: Any, rounds: int, info: dict[str, Any]) -> int:
    from layers import interleaved

    if not native.available():
        print(
            "the native depthwise kernel is not built here: nothing to calibrate", file=sys.stderr
        )
        return 1
    samples: list[dict[str, Any]] = []
    rows = []
    batches = args.batch if args.batch != [1, 8] else BATCHES
    for layout in args.formats:
        for batch in batches:
            for channels, size, stride in SHAPES:
                torch.manual_seed(0)
                x = torch.randn(batch, channels, size, size)
                x = x.contiguous(memory_format=CL) if layout == "channels_last" else x
                weight = torch.randn(channels, 1, 3, 3)
                with torch.no_grad():
                    t = interleaved(
                        _contenders(x, weight, stride), rounds, 0.002 if batch == 1 else 0.0
                    )
                t.update(
                    interleaved(
                        {
                            f"{b}_backward": _trained(x, weight, stride, b)
                            for b in ("native", "torch")
                        },
                        rounds,
                        0.002 if batch == 1 else 0.0,
                    )
                )
                out = -(-size // stride)
                f = _dispatch.features(batch, channels, size, size, channels, (3, 3), (out, out))
                key = (
                    f"{'cl' if layout == 'channels_last' else 'nchw'}/"
                    f"{'s1' if stride == 1 else 's2'}"
                )
                samples.append(
                    {
                        "key": key,
                        "batch": batch,
                        "channels": channels,
                        "size": size,
                        "stride": stride,
                        "features": f,
                        **{f"{k}_s": v[0] for k, v in t.items()},
                    }
                )
                rows.append([key, batch, channels, size, *(f"{t[k][0] * 1e3:.3f}" for k in t)])
                print("  " + " ".join(map(str, rows[-1])), file=sys.stderr)
    print(format_table(["case", "batch", "channels", "size", *(f"{n} ms" for n in NAMES)], rows))
    models: dict[str, dict[str, list[float]]] = {}
    fit_rows = []
    for key in sorted({s["key"] for s in samples}):
        sel = [s for s in samples if s["key"] == key]
        a = np.array([s["features"] for s in sel])
        models[key] = {}
        for name in NAMES:
            t = np.array([s[f"{name}_s"] for s in sel])
            coefs, _ = nnls(a / t[:, None], np.ones(len(t)))
            models[key][name] = [float(c) for c in coefs]
            error = np.abs(a @ coefs / t - 1)
            fit_rows.append(
                [
                    key,
                    name,
                    *(f"{c:.3g}" for c in coefs),
                    f"{error.mean():.2f}",
                    f"{error.max():.2f}",
                ]
            )
    print()
    print(
        format_table(
            [
                "case",
                "contender",
                *(f"s per {f}" for f in _dispatch.FEATURES),
                "mean rel. error",
                "max rel. error",
            ],
            fit_rows,
        )
    )
    chosen = 0
    for s in samples:
        pred = {k: float(np.dot(c, s["features"])) for k, c in models[s["key"]].items()}
        s["native_backward_chosen"] = (
            pred["native_backward"] < _dispatch.MARGIN * pred["torch_backward"]
        )
        s["native_chosen"] = pred["native"] < _dispatch.MARGIN * min(
            pred["torch"], pred["torch_converted"]
        )
        chosen += s["native_chosen"]
        best = min(s["torch_s"], s["torch_converted_s"])
        s["chosen_vs_best_torch"] = (s["native_s"] if s["native_chosen"] else best) / best
    worst = max(s["chosen_vs_best_torch"] for s in samples)
    print(
        f"\nby the linear fit alone: native chosen in {chosen} of {len(samples)} cases; "
        f"chosen / best PyTorch time: worst {worst:.2f} (on the calibration cases themselves)"
    )
    # The dispatch corrects the fit by the nearest measured case (sepconv.nn._dispatch.predict),
    # which at a measured shape is the measurement itself.
    corrected = [
        s["native_s"] < _dispatch.MARGIN * min(s["torch_s"], s["torch_converted_s"])
        for s in samples
    ]
    print(
        f"with the nearest-case correction (what the dispatch uses): native chosen in "
        f"{sum(corrected)} of {len(samples)} cases, never slower than PyTorch's best there"
    )
    calibration = {
        "models": models,
        "machine": info,
        "rounds": rounds,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "samples": samples,
    }
    # One calibration per kind of processor and thread count: this run's replaces the one of
    # the same kind and count.
    info["kind"] = _dispatch.machine_kind()
    kept = [
        c
        for c in _dispatch.load_model(args.calibrate)["calibrations"]
        if c.get("models")
        and (_dispatch._threads_of(c), _dispatch._kind_of(c)) != (info["threads"], info["kind"])
    ]
    model = {
        "description": "sepconv native depthwise dispatch constants: seconds = features "
        "dot coefficients, one calibration per kind of processor and thread count; written by "
        "benchmarks/layers.py --calibrate",
        "features": list(_dispatch.FEATURES),
        "calibrations": sorted(
            [*kept, calibration],
            key=lambda c: (_dispatch._kind_of(c) or "", _dispatch._threads_of(c)),
        ),
    }
    write_json(args.calibrate, model)
    return 0
