"""Separable layers against what a user would write instead, on MobileNetV1's 13 layers.

For each depthwise separable layer of MobileNetV1 (Howard et al. 2017, Table 1, 224x224 input,
Keras 'same' padding), batch 1 and 8, NCHW and channels-last inputs, these contenders compute
the same function on the same input and weights, interleaved round by round (one timing of each
per round; the minimum and the median over the rounds are reported):

- ``sepconv``: ``sepconv.nn.SeparableConv2d(C, F, 3, stride, padding='same')`` on the input as
  given, the caller's memory format out; its depthwise step runs the native kernel or
  PyTorch's, in the caller's memory format or the other one, as timed on the layer's first
  call (``sepconv.nn._autotune``; column ``route``: the format it runs in / who runs the
  depthwise step, or ``cl/fused``: both steps in one pass, ``sepconv.nn._fused``).
- ``naive_nchw``: ``nn.Sequential(nn.Conv2d(C, C, 3, stride, groups=C), nn.Conv2d(C, F, 1))``
  (with ``nn.ZeroPad2d((0, 1, 0, 1))`` in front at stride 2: Keras 'same') run in NCHW, the
  input converted first and the result converted back where the caller is channels-last.
- ``naive_cl``: the same composition in channels-last (weights and input), converted from and
  back to the caller's format where it is NCHW.
- ``onnxruntime``: the naive composition exported to ONNX (same weights), run by an
  ``InferenceSession`` with the same number of threads and ``session.intra_op.allow_spinning =
  0`` (a spinning pool would steal the cores from the next contender); a channels-last input is
  made contiguous first (ONNX is NCHW), the NCHW result is not converted back.

Forward rows also time the pointwise step alone (``nn.Conv2d(C, F, 1)`` on a ready depthwise
output, the faster format counts): column ``pointwise alone/naive``, the floor of any
composition running PyTorch's 1x1 convolution, however fast its depthwise step.

The depthwise step alone (forward) is timed the same way: ``sepconv``'s ``DepthwiseConv2d``,
PyTorch's ``F.conv2d(groups=C)`` on NCHW and on channels-last tensors (ready in that format),
the same converted from and back to the caller's format (``torch_converted``), and the native
kernel (``sepconv.nn._native_depthwise``) on the input as given, where it is built. The
layer is judged against the best a user could write (``sepconv/torch``): PyTorch's
convolution in the caller's format or converted.

``SpatiallySeparableConv2d`` is timed at Inception-v3's factorized 7x7 shapes against the two
``nn.Conv2d`` of the same function (``benchmarks/_spatial.py``).

Roofline: the machine's peak is measured in the same run as the best of a large matrix product
and a large 3x3 convolution (GFLOP/s), its bandwidth as a large tensor copy (bytes read +
written per second). A contender's bound is ``max(flops / peak, bytes / bandwidth)`` with the
bytes of the input, output and weights read or written once; ``of bound`` is bound / time (1.0:
at the roofline). Where a depthwise row's tensors exceed half the last-level cache, the
roofline's large copy also runs in that row's rounds, and ``native/bound same rounds`` is the
native kernel's time over the row's bytes at that bandwidth; the out-of-cache target is
checked against it, since a shared machine's bandwidth moves between the run's start and
those rows minutes later.

Allocator: fresh ``mmap``s fault their pages on first touch (timings then differ severalfold
between processes). Unless ``--default-allocator`` is given, the script re-runs itself with
``MALLOC_MMAP_THRESHOLD_=2147483647 MALLOC_TRIM_THRESHOLD_=2147483647`` (freed memory is kept
and reused) and says so in its header and JSON.

On a GPU (``--device cuda``, batches 1 and 32) the same contenders run without onnxruntime
and the native kernel; timings synchronize before and after (throughput), TF32 as PyTorch's.

Run: ``python benchmarks/layers.py --json benchmarks/results/layers.json``; ``--quick`` for a
smoke test, ``--calibrate`` to measure the native depthwise kernel against PyTorch's and write
the dispatch constants (``src/sepconv/nn/layers_cost_model.json``), ``--ceiling`` for
PyTorch's own kernels alone.
"""

from __future__ import annotations

import copy
import io
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

ALLOCATOR_ENV = {"MALLOC_MMAP_THRESHOLD_": "2147483647", "MALLOC_TRIM_THRESHOLD_": "2147483647"}


def _fix_allocator(argv: list[str]) -> None:
    """Re-execute with glibc's mmap and trim thresholds raised, unless asked not to."""
    if "--default-allocator" in argv or all(
        os.environ.get(k) == v for k, v in ALLOCATOR_ENV.items()
    ):
        return
    env = {**os.environ, **ALLOCATOR_ENV}
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


if __name__ == "__main__":
    _fix_allocator(sys.argv[1:])

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from _common import (  # noqa: E402
    base_parser,
    format_table,
    machine,
    print_header,
    torch_device,
    write_json,
)
from sepconv.nn import DepthwiseConv2d, SeparableConv2d  # noqa: E402
from sepconv.padding import same_padding  # noqa: E402

try:
    from sepconv.nn import _native_depthwise as native
except ImportError:  # an older tree without the native depthwise kernel
    native = None

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
QUICK = [(32, 64, 112, 1, 1), (256, 512, 28, 2, 1), (1024, 1024, 7, 1, 1)]
CL = torch.channels_last

TARGETS = {
    "sepconv/naive max": 1.05,
    "sepconv/naive geomean": 0.85,
    "sepconv/onnxruntime max": 1.25,
    "sepconv/onnxruntime geomean": 1.0,
    "depthwise nchw / torch channels-last": 1.25,
}


def allocator() -> str:
    if all(os.environ.get(k) == v for k, v in ALLOCATOR_ENV.items()):
        return " ".join(f"{k}={v}" for k, v in ALLOCATOR_ENV.items())
    preload = os.environ.get("LD_PRELOAD", "")
    return f"default glibc malloc{f' (LD_PRELOAD={preload})' if preload else ''}"


# --------------------------------------------------------------------------------------------
# timing
# --------------------------------------------------------------------------------------------
#: wall time, or the CPU time of this process (which other processes on a busy machine do not
#: inflate; meaningful with one thread), set by ``--clock``
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
CLOCK = [time.perf_counter]
#: the torch device of the run (``--device``); on CUDA a timing synchronizes before it starts
#: and before it ends, so it measures the calls' throughput (launch-bound at batch 1)
DEVICE = [torch.device("cpu")]


def _sync() -> None:
    if DEVICE[0].type == "cuda":
        torch.cuda.synchronize(DEVICE[0])


#: a timing of a batch-1 call (about 0.05-2 ms) repeats it for at least this long: shorter
#: timings of the same call moved by 10-25% between rounds on a shared 2-core machine
SMALL_CALLS_S = 0.01


def interleaved(
    fns: dict[str, Callable[[], Any]], rounds: int, min_time: float
) -> dict[str, tuple[float, float]]:
    """(min, median) seconds per call of each function; one timing of each per round, each
    until ``min_time`` seconds pass; each round starts one contender later (none always first)."""
    clock = CLOCK[0]
    for fn in fns.values():  # warm-up: primitive creation, allocator, caches of plans
        fn()
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    order = list(fns.items())
    for turn in range(rounds):
        for name, fn in order[turn % len(order) :] + order[: turn % len(order)]:
            calls = 0
            _sync()
            start = clock()
            while True:
                fn()
                calls += 1
                elapsed = clock() - start
                if elapsed >= min_time:
                    break
            _sync()
            elapsed = clock() - start
            times[name].append(elapsed / calls)
    return {name: (min(v), statistics.median(v)) for name, v in times.items()}


_COPY: list[torch.Tensor] = []


def _large_copy() -> list[torch.Tensor]:
    """The roofline's copy operands (256 MiB each, far beyond the L3 and a GPU's L2), made
    once on the benchmark's device."""
    if not _COPY:
        _COPY.extend(
            [torch.randn(1 << 26, device=DEVICE[0]), torch.empty(1 << 26, device=DEVICE[0])]
        )
    return _COPY


def roofline(threads: int, rounds: int) -> dict[str, float]:
    """Peak GFLOP/s (best of a matrix product and a 3x3 convolution) and copy GB/s."""
    dev = DEVICE[0]
    m, batch = (2048, 1) if dev.type == "cpu" else (8192, 32)
    a, b = torch.randn(m, m, device=dev), torch.randn(m, m, device=dev)
    x = torch.randn(batch, 256, 56, 56, device=dev).contiguous(memory_format=CL)
    w = torch.randn(256, 256, 3, 3, device=dev).contiguous(memory_format=CL)
    src, dst = _large_copy()
    with torch.no_grad():
        t = interleaved(
            {
                "mm": lambda: torch.mm(a, b),
                "conv3x3": lambda: F.conv2d(x, w, padding=1),
                "copy": lambda: dst.copy_(src),
            },
            rounds,
            0.05,
        )
    mm_flops = 2 * m**3
    conv_flops = 2 * batch * 256 * 256 * 9 * 56 * 56
    return {
        "matmul_gflops": mm_flops / t["mm"][0] / 1e9,
        "conv3x3_gflops": conv_flops / t["conv3x3"][0] / 1e9,
        "peak_gflops": max(mm_flops / t["mm"][0], conv_flops / t["conv3x3"][0]) / 1e9,
        "copy_gbps": 2 * src.numel() * 4 / t["copy"][0] / 1e9,
        "threads": threads,
    }


def bound_seconds(flops: float, nbytes: float, roof: dict[str, float]) -> float:
    return max(flops / (roof["peak_gflops"] * 1e9), nbytes / (roof["copy_gbps"] * 1e9))


# --------------------------------------------------------------------------------------------
# contenders
# --------------------------------------------------------------------------------------------
def naive(channels: int, filters: int, size: int, stride: int) -> nn.Sequential:
    """The plain composition computing the same function as the layer (Keras 'same')."""
    pads = same_padding(size, 3, stride)
    depthwise = nn.Conv2d(
        channels,
        channels,
        3,
        stride,
        padding=pads[0] if pads[0] == pads[1] else 0,
        groups=channels,
        bias=False,
    )
    steps = [depthwise, nn.Conv2d(channels, filters, 1, bias=False)]
    if pads[0] != pads[1]:
        steps.insert(0, nn.ZeroPad2d((pads[0], pads[1], pads[0], pads[1])))
    return nn.Sequential(*steps)


def onnx_session(module: nn.Module, x: torch.Tensor, threads: int) -> Callable[[], Any]:
    import onnxruntime as ort

    buffer = io.BytesIO()
    torch.onnx.export(module, (x.contiguous(),), buffer, dynamo=False, input_names=["x"])
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])

    def run() -> Any:
        return torch.from_numpy(session.run(None, {"x": x.contiguous().numpy()})[0])

    return run


def _converted(
    module: nn.Module, x: torch.Tensor, fmt: torch.memory_format, back: torch.memory_format
) -> Callable[[], Any]:
    return lambda: module(x.contiguous(memory_format=fmt)).contiguous(memory_format=back)


def _trained(
    fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, params: list[torch.Tensor]
) -> Callable[[], None]:
    x = x.detach().requires_grad_(True)
    grad: list[torch.Tensor] = []

    def step() -> None:
        for p in [x, *params]:
            p.grad = None
        y = fn(x)
        if not grad:
            grad.append(torch.ones_like(y))  # same memory format as y
        y.backward(grad[0])

    return step


def contenders(
    layer: nn.Module,
    plain: nn.Module,
    as_cl: nn.Module,
    x: torch.Tensor,
    backward: bool,
    threads: int,
) -> dict[str, Callable[[], Any]]:
    """The layer and the naive composition in NCHW and in channels-last (``plain`` and its
    channels-last copy ``as_cl``, converted from and back to ``x``'s format), forward or a
    training step; onnxruntime running ``plain`` too, forward on the CPU."""
    caller = CL if not x.is_contiguous() and x.is_contiguous(memory_format=CL) else None
    caller = caller or torch.contiguous_format
    if not backward:
        cpu = DEVICE[0].type == "cpu"
        return {
            "sepconv": lambda: layer(x),
            "naive_nchw": _converted(plain, x, torch.contiguous_format, caller),
            "naive_cl": _converted(as_cl, x, CL, caller),
            **({"onnxruntime": onnx_session(plain, x, threads)} if cpu else {}),
        }
    return {
        "sepconv": _trained(layer, x, list(layer.parameters())),
        "naive_nchw": _trained(
            lambda t: plain(t.contiguous()).contiguous(memory_format=caller),
            x,
            list(plain.parameters()),
        ),
        "naive_cl": _trained(
            lambda t: as_cl(t.contiguous(memory_format=CL)).contiguous(memory_format=caller),
            x,
            list(as_cl.parameters()),
        ),
    }


def timed_row(
    r: dict[str, Any],
    t: dict[str, tuple[float, float]],
    flops: float,
    nbytes: float,
    backward: bool,
    roof: dict[str, float],
) -> dict[str, Any]:
    """``r`` with the pass, the roofline bound of a forward of ``flops`` and ``nbytes``
    (three times that with the backward), each contender's minimum and median (ms) and
    fraction of the bound, and sepconv's ratios to the faster naive composition and to
    onnxruntime."""
    if backward:  # forward, input gradient and weight gradient: about three passes
        flops, nbytes = 3 * flops, 3 * nbytes
    bound = bound_seconds(flops, nbytes, roof)
    r["pass"] = "forward+backward" if backward else "forward"
    r["bound_ms"] = bound * 1e3
    for name, (low, mid) in t.items():
        r[f"{name}_min_ms"], r[f"{name}_median_ms"] = low * 1e3, mid * 1e3
        r[f"{name}_of_bound"] = bound / low
    r["sepconv_vs_naive"] = t["sepconv"][0] / min(t["naive_nchw"][0], t["naive_cl"][0])
    if "onnxruntime" in t:
        r["sepconv_vs_onnxruntime"] = t["sepconv"][0] / t["onnxruntime"][0]
    return r


def _run_format(layer: SeparableConv2d, x: torch.Tensor, backward: bool) -> str:
    """The timed route's format ('nchw', 'cl'), '/fused' (one pass), '/mm' (pointwise by mm)."""
    for key, (fmt, kind, *mm) in layer.__dict__.get("_sepconv_routes", {}).items():
        if key[0] == x.shape and key[1] == x.stride() and key[4] == backward:
            return fmt + "/fused" * (kind == "fused") + "/mm" * bool(mm)
    return "untimed"


def _native_chosen(layer: SeparableConv2d, x: torch.Tensor, backward: bool) -> bool:
    """Whether the layer's depthwise step runs the native kernel on this input, in inference
    or (``backward``) in training (its prepared calls, which bind the kernel, planned anew)."""
    layer.__dict__.pop("_sepconv_prepared", None)
    if native is None:
        return False
    calls = []
    original = native.depthwise_conv2d

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append((y := original(*args, **kwargs)) is not None)
        return y

    native.depthwise_conv2d = spy
    try:
        with torch.set_grad_enabled(backward):
            layer(x.detach().requires_grad_(backward))
    finally:
        native.depthwise_conv2d = original
        layer.__dict__.pop("_sepconv_prepared", None)  # planned with the spy
    return any(calls)


def layer_case(
    channels: int,
    filters: int,
    size: int,
    stride: int,
    batch: int,
    channels_last: bool,
    backward: bool,
    rounds: int,
    threads: int,
    roof: dict[str, float],
) -> dict[str, Any]:
    torch.manual_seed(0)
    caller = CL if channels_last else torch.contiguous_format
    plain = naive(channels, filters, size, stride)
    as_cl = copy.deepcopy(plain).to(memory_format=CL)
    layer = SeparableConv2d(channels, filters, 3, stride, padding="same", bias=False)
    with torch.no_grad():  # the same weights everywhere
        layer.depthwise.weight.copy_(plain[-2].weight)
        layer.pointwise.weight.copy_(plain[-1].weight)
    dev = DEVICE[0]
    plain, as_cl, layer = plain.to(dev), as_cl.to(dev), layer.to(dev)
    x = torch.randn(batch, channels, size, size, device=dev).contiguous(memory_format=caller)
    fns = contenders(layer, plain, as_cl, x, backward, threads)
    if not backward:
        with torch.no_grad():
            mid = plain[:-1](x.contiguous())  # the depthwise step's output
        mid_cl = mid.contiguous(memory_format=CL)
        pw, pw_cl = plain[-1], as_cl[-1]
        # the floor of any composition that runs PyTorch's 1x1 convolution: that step
        # alone, on a ready depthwise output in either format (no conversion)
        fns["pointwise_nchw"] = lambda: pw(mid)
        fns["pointwise_cl"] = lambda: pw_cl(mid_cl)
    with torch.set_grad_enabled(backward):
        t = interleaved(fns, rounds, SMALL_CALLS_S if batch == 1 or dev.type != "cpu" else 0.0)
    out = -(-size // stride)
    flops = 2 * batch * out * out * channels * (9 + filters)
    nbytes = 4 * (
        batch * channels * size * size + batch * filters * out * out + channels * (9 + filters)
    )
    r: dict[str, Any] = {
        "layer": f"{channels}->{filters} @{size} s{stride}",
        "channels": channels,
        "filters": filters,
        "size": size,
        "stride": stride,
        "batch": batch,
        "input": "channels_last" if channels_last else "nchw",
    }
    timed_row(r, t, flops, nbytes, backward, roof)
    best_naive = min(t["naive_nchw"][0], t["naive_cl"][0])
    r["sepconv_native_depthwise"] = dev.type == "cpu" and _native_chosen(layer, x, backward)
    r["sepconv_format"] = _run_format(layer, x, backward)
    if r["sepconv_format"] == "untimed" and dev.type != "cpu":
        r["sepconv_format"] = "caller"  # a GPU call in inference runs in the caller's format
    if "pointwise_nchw" in t:
        r["pointwise_floor_vs_naive"] = (
            min(t["pointwise_nchw"][0], t["pointwise_cl"][0]) / best_naive
        )
    return r


def depthwise_case(
    channels: int,
    size: int,
    stride: int,
    batch: int,
    channels_last: bool,
    rounds: int,
    roof: dict[str, float],
) -> dict[str, Any]:
    """The depthwise step alone (forward, Keras 'same' padding) on the caller's input."""
    torch.manual_seed(0)
    caller = CL if channels_last else torch.contiguous_format
    dev = DEVICE[0]
    x = torch.randn(batch, channels, size, size, device=dev).contiguous(memory_format=caller)
    weight = torch.randn(channels, 1, 3, 3, device=dev)
    pads = same_padding(size, 3, stride)
    layer = DepthwiseConv2d(channels, 3, stride, padding="same", bias=False, device=dev)
    with torch.no_grad():
        layer.weight.copy_(weight)
    x_nchw, x_cl = x.contiguous(), x.contiguous(memory_format=CL)
    w_cl = weight.contiguous(memory_format=CL)
    flat = (pads[0], pads[1], pads[0], pads[1])

    def torch_dw_of(inp: Callable[[], torch.Tensor], w: torch.Tensor) -> Callable[[], Any]:
        if pads[0] == pads[1]:
            return lambda: F.conv2d(inp(), w, None, stride, pads[0], 1, channels)
        return lambda: F.conv2d(F.pad(inp(), flat), w, None, stride, 0, 1, channels)

    def torch_dw(inp: torch.Tensor, w: torch.Tensor) -> Callable[[], Any]:
        return torch_dw_of(lambda: inp, w)

    fns = {
        "sepconv": lambda: layer(x),
        "torch_nchw": torch_dw(x_nchw, weight),
        "torch_cl": torch_dw(x_cl, w_cl),
    }
    # the other format's convolution on the caller's input, converted there and back
    other, w_other = (torch.contiguous_format, weight) if channels_last else (CL, w_cl)
    in_other = torch_dw_of(lambda: x.contiguous(memory_format=other), w_other)
    fns["torch_converted"] = lambda: in_other().contiguous(memory_format=caller)
    if native is not None and native.available() and dev.type == "cpu":
        padding = (pads, pads)
        fns["native"] = lambda: native.depthwise_conv2d(x, weight, None, stride, padding)
    out = -(-size // stride)
    nbytes = 4 * (batch * channels * (size * size + out * out) + 9 * channels)
    if nbytes > out_of_cache() and dev.type == "cpu":
        # the bandwidth in the same rounds: the roofline's large copy
        src, dst = _large_copy()
        fns["copy"] = lambda: dst.copy_(src)
    with torch.no_grad():
        t = interleaved(fns, rounds, SMALL_CALLS_S if batch == 1 or dev.type != "cpu" else 0.0)
    flops = 2 * 9 * batch * channels * out * out
    bound = bound_seconds(flops, nbytes, roof)
    r: dict[str, Any] = {
        "layer": f"dw {channels} @{size} s{stride}",
        "channels": channels,
        "size": size,
        "stride": stride,
        "batch": batch,
        "input": "channels_last" if channels_last else "nchw",
        "bytes": nbytes,
        "bound_ms": bound * 1e3,
    }
    for name, (low, mid) in t.items():
        r[f"{name}_min_ms"], r[f"{name}_median_ms"] = low * 1e3, mid * 1e3
        r[f"{name}_of_bound"] = bound / low
    if "native" in t:
        r["native_vs_torch_cl"] = t["native"][0] / t["torch_cl"][0]
        r["native_vs_bound"] = t["native"][0] / bound
        if "copy" in t:
            gbps = 2 * _large_copy()[0].numel() * 4 / t["copy"][0] / 1e9
            r["copy_gbps_same_rounds"] = gbps
            r["native_vs_bound_same_rounds"] = t["native"][0] / (nbytes / (gbps * 1e9))
    same = t["torch_cl" if channels_last else "torch_nchw"][0]
    r["sepconv_vs_torch"] = t["sepconv"][0] / min(same, t["torch_converted"][0])
    r["sepconv_format"] = _run_format(layer, x, False)
    return r


def geomean(values: list[float], weights: list[int]) -> float:
    return math.exp(sum(w * math.log(v) for v, w in zip(values, weights)) / sum(weights))


def _cells(r: dict[str, Any], names: list[str]) -> list[Any]:
    """A layer row's table cells: the layer, batch, input and pass, each contender's times,
    the bound, sepconv's fraction of it and its ratios to the naive composition and
    onnxruntime."""
    count = r.get("count", 1)
    return [
        r["layer"] + (f" (x{count})" if count > 1 else ""),
        r["batch"],
        r["input"],
        r["pass"],
        *(_ms(r, n) for n in names),
        f"{r['bound_ms']:.3f}",
        f"{r['sepconv_of_bound']:.2f}",
        f"{r['sepconv_vs_naive']:.2f}",
        _ratio(r, "sepconv_vs_onnxruntime"),
    ]


def _headers(names: list[str]) -> list[str]:
    """The headers of :func:`_cells`' columns."""
    return [
        "layer",
        "batch",
        "input",
        "pass",
        *(f"{n} ms" for n in names),
        "bound ms",
        "sepconv of bound",
        "sepconv/naive",
        "sepconv/ort",
    ]


def _ratio(r: dict[str, Any], key: str) -> str:
    """A ratio cell: ``-`` where the row has none (onnxruntime runs forward only)."""
    return f"{r[key]:.2f}" if key in r else "-"


def _ms(r: dict[str, Any], name: str) -> str:
    key = f"{name}_min_ms"
    return f"{r[key]:.3f}/{r[f'{name}_median_ms']:.3f}" if key in r else "-"


def out_of_cache() -> int:
    """Bytes above which a contender's tensors count as out of cache: half the last-level
    cache (other processes share it), 16 MiB where the system does not say."""
    try:
        size = os.sysconf("SC_LEVEL3_CACHE_SIZE")
    except (ValueError, OSError, AttributeError):
        size = 0
    return (size if size > 0 else 32 << 20) // 2


def summarise(
    results: list[dict[str, Any]], dw: list[dict[str, Any]], spatial: list[dict[str, Any]]
) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for kind, rows in (("", results), ("spatially separable ", spatial)):
        _summarise_layers(summary, kind, rows)
    _summarise_native(summary, dw)
    if dw:
        ratios = [r["sepconv_vs_torch"] for r in dw]
        summary["depthwise layer"] = {
            "sepconv/torch geomean": geomean(ratios, [1] * len(ratios)),
            "sepconv/torch max": max(ratios),
        }
    return summary


def _summarise_layers(summary: dict[str, Any], kind: str, results: list[dict[str, Any]]) -> None:
    for pass_name in ("forward", "forward+backward"):
        for fmt in ("nchw", "channels_last", "all"):
            sel = [r for r in results if r["pass"] == pass_name and fmt in ("all", r["input"])]
            if not sel:
                continue
            weights = [r["count"] for r in sel]
            entry = {
                "sepconv/naive geomean": geomean([r["sepconv_vs_naive"] for r in sel], weights),
                "sepconv/naive max": max(r["sepconv_vs_naive"] for r in sel),
            }
            if all("pointwise_floor_vs_naive" in r for r in sel):
                entry["pointwise alone/naive geomean"] = geomean(
                    [r["pointwise_floor_vs_naive"] for r in sel], weights
                )
            if all("sepconv_vs_onnxruntime" in r for r in sel):
                ratios = [r["sepconv_vs_onnxruntime"] for r in sel]
                entry["sepconv/onnxruntime geomean"] = geomean(ratios, weights)
                entry["sepconv/onnxruntime max"] = max(ratios)
            summary[f"{kind}{pass_name}/{fmt}"] = entry


def _summarise_native(summary: dict[str, Any], dw: list[dict[str, Any]]) -> None:
    nchw = [r for r in dw if r["input"] == "nchw" and "native_vs_torch_cl" in r]
    if nchw:
        summary["depthwise nchw"] = {
            "native/torch_cl geomean": geomean(
                [r["native_vs_torch_cl"] for r in nchw], [1] * len(nchw)
            ),
            "native/torch_cl max": max(r["native_vs_torch_cl"] for r in nchw),
            "native/bound max (out of cache)": max(
                [r["native_vs_bound"] for r in nchw if r["bytes"] > out_of_cache()], default=None
            ),
            "native/bound max (out of cache, bandwidth of the same rounds)": max(
                [r["native_vs_bound_same_rounds"] for r in nchw if r["bytes"] > out_of_cache()],
                default=None,
            ),
        }


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--batch",
        type=int,
        nargs="+",
        default=None,
        help="batch sizes (default 1 8 on the CPU, 1 32 on a GPU)",
    )
    parser.add_argument(
        "--threads", type=int, default=2, help="torch, onnxruntime and native threads (default 2)"
    )
    parser.add_argument(
        "--shapes",
        type=int,
        nargs="+",
        default=None,
        metavar="I",
        help="only these of the MobileNetV1 layer shapes (0-8: its 9 distinct shapes of 13 layers)",
    )
    parser.add_argument(
        "--formats",
        nargs="+",
        choices=["nchw", "channels_last"],
        default=["nchw", "channels_last"],
        help="caller's memory formats",
    )
    parser.add_argument(
        "--passes",
        nargs="+",
        choices=["forward", "backward"],
        default=["forward", "backward"],
        help="forward, and/or forward + backward (default both)",
    )
    parser.add_argument("--no-depthwise", action="store_true", help="skip the depthwise step alone")
    parser.add_argument(
        "--no-spatial", action="store_true", help="skip the spatially separable layer"
    )
    parser.add_argument(
        "--depthwise-only", action="store_true", help="only the depthwise step alone"
    )
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="wall time (default) or this process's CPU time, which other "
        "processes on a busy machine do not inflate (use with --threads 1)",
    )
    parser.add_argument(
        "--default-allocator",
        action="store_true",
        help="keep glibc's default mmap/trim thresholds (what users see)",
    )
    parser.add_argument(
        "--spin-us",
        type=float,
        metavar="US",
        help="the native kernels' own pool threads (used where PyTorch has no OpenMP team) spin "
        "this long for the next call before they sleep (default 0)",
    )
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument(
        "--ceiling",
        action="store_true",
        help="PyTorch's own kernels alone: the normal convolution against the "
        "pointwise and depthwise steps",
    )
    parser.add_argument(
        "--calibrate",
        metavar="PATH",
        nargs="?",
        const=_cost_model_path(),
        default=None,
        help="measure the native depthwise kernel against "
        "PyTorch's and write the dispatch constants to PATH (default: the "
        "package's layers_cost_model.json)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.spin_us is not None and (native is None or not 0 <= args.spin_us < 1e9):
        parser.error(f"--spin-us needs the native kernel and 0 <= US < 1e9: {args.spin_us}")
    native is None or args.spin_us is None or native._pool_spin(args.spin_us)
    DEVICE[0] = torch_device(parser, args.device)
    on_gpu = DEVICE[0].type != "cpu"
    if args.batch is None:
        args.batch = [1, 32] if on_gpu else [1, 8]
    CLOCK[0] = CLOCKS[args.clock]
    shapes = QUICK if args.quick else MOBILENET_V1
    if args.shapes:
        shapes = [MOBILENET_V1[i] for i in args.shapes]
    rounds = 3 if args.quick else args.repeat
    info = machine("torch", "onnxruntime")
    info.update(
        threads=torch.get_num_threads(),
        allocator=allocator(),
        clock=args.clock,
        native_pool_spin_us=native._pool_spin() if native is not None else None,
        load_average_start=os.getloadavg(),
        device=torch.cuda.get_device_name(DEVICE[0]) if DEVICE[0].type == "cuda" else args.device,
        cudnn_allow_tf32=torch.backends.cudnn.allow_tf32 if on_gpu else None,
    )
    print_header(
        "sepconv separable layers against the naive composition and onnxruntime "
        "(MobileNetV1 layers)",
        info,
    )
    print(f"allocator: {info['allocator']}, native pool spin: {info['native_pool_spin_us']} us")
    print(
        f"threads: {info['threads']}, clock: {args.clock}, rounds: {rounds} (min/median ms), "
        f"load average at "
        f"start: {info['load_average_start'][0]:.2f} (other processes share the machine)"
    )
    cores = os.cpu_count() or 1
    if info["load_average_start"][0] >= cores:
        print(
            f"warning: the load average ({info['load_average_start'][0]:.2f}) is at least the "
            f"number of cores ({cores}): other processes compete for them, and the times and "
            "ratios below may be off by several times; run again on an idle machine",
            file=sys.stderr,
        )
    if args.ceiling:
        from _ceiling import ceiling

        return ceiling(args, shapes, rounds, info)
    if args.calibrate:
        from _calibrate import calibrate

        return calibrate(args, rounds, info)
    roof = roofline(args.threads, max(3, rounds // 2))
    info["roofline"] = roof
    print(
        f"roofline: peak {roof['peak_gflops']:.0f} GFLOP/s (matmul {roof['matmul_gflops']:.0f}"
        f", 3x3 conv {roof['conv3x3_gflops']:.0f}), copy {roof['copy_gbps']:.1f} GB/s"
    )
    results: list[dict[str, Any]] = []
    rows = []
    names = ["sepconv", "naive_nchw", "naive_cl", "onnxruntime"]
    for backward in [] if args.depthwise_only else [p == "backward" for p in args.passes]:
        for batch in args.batch:
            for fmt in args.formats:
                for channels, filters, size, stride, count in shapes:
                    r = layer_case(
                        channels,
                        filters,
                        size,
                        stride,
                        batch,
                        fmt == "channels_last",
                        backward,
                        rounds,
                        args.threads,
                        roof,
                    )
                    r["count"] = count
                    results.append(r)
                    rows.append(
                        [
                            *_cells(r, names),
                            _ratio(r, "pointwise_floor_vs_naive"),
                            r.get("sepconv_format", "?")
                            + ("/native" if r["sepconv_native_depthwise"] else "/torch")
                            * ("fused" not in r.get("sepconv_format", "")),
                        ]
                    )
                    print("  " + " ".join(map(str, rows[-1])), file=sys.stderr)
    if results:
        print(format_table([*_headers(names), "pointwise alone/naive", "route"], rows))
        print(
            "times: min/median over the rounds; ratios of minima (below 1: sepconv faster); "
            "naive = the faster naive composition; pointwise alone = the 1x1 step by itself"
        )
    dw: list[dict[str, Any]] = []
    if not args.no_depthwise:
        dw_rows = []
        seen = set()
        dw_names = ["sepconv", "torch_nchw", "torch_cl", "torch_converted", "native"]
        for batch in args.batch:
            for fmt in args.formats:
                for channels, _, size, stride, _ in shapes:
                    if (channels, size, stride, batch, fmt) in seen:
                        continue
                    seen.add((channels, size, stride, batch, fmt))
                    r = depthwise_case(
                        channels, size, stride, batch, fmt == "channels_last", rounds, roof
                    )
                    dw.append(r)
                    dw_rows.append(
                        [
                            r["layer"],
                            batch,
                            r["input"],
                            *(_ms(r, n) for n in dw_names),
                            f"{r['bound_ms']:.3f}",
                            *(
                                f"{r[f'{n}_of_bound']:.2f}" if f"{n}_of_bound" in r else "-"
                                for n in dw_names
                            ),
                            _ratio(r, "native_vs_torch_cl"),
                            _ratio(r, "native_vs_bound_same_rounds"),
                            f"{r['copy_gbps_same_rounds']:.1f}"
                            if "copy_gbps_same_rounds" in r
                            else "-",
                            f"{r['sepconv_vs_torch']:.2f}",
                            r["sepconv_format"],
                        ]
                    )
                    print("  " + " ".join(map(str, dw_rows[-1])), file=sys.stderr)
        print()
        print("depthwise step alone (forward)")
        print(
            format_table(
                [
                    "layer",
                    "batch",
                    "input",
                    *(f"{n} ms" for n in dw_names),
                    "bound ms",
                    *(f"{n} of bound" for n in dw_names),
                    "native/torch_cl",
                    "native/bound same rounds",
                    "GB/s same rounds",
                    "sepconv/torch",
                    "route",
                ],
                dw_rows,
            )
        )
    spatial = [] if args.depthwise_only or args.no_spatial else _spatial_rows(args, rounds, roof)
    summary = summarise(results, dw, spatial)
    print()
    for key, entry in summary.items():
        print(f"{key}: " + ", ".join(f"{k} {v:.2f}" for k, v in entry.items() if v is not None))
    info["load_average_end"] = os.getloadavg()
    print(
        f"load average at end: {info['load_average_end'][0]:.2f}; the machine was shared, "
        "so the numbers are indicative"
    )
    checks = {}
    said: dict[str, str] = {}  # the value a target line checks, where its name does not say
    fwd = summary.get("forward/all", {})
    for key in (
        "sepconv/naive max",
        "sepconv/naive geomean",
        "sepconv/onnxruntime max",
        "sepconv/onnxruntime geomean",
    ):
        if key in fwd:
            checks[f"forward {key} <= {TARGETS[key]}"] = fwd[key] <= TARGETS[key]
    bwd = summary.get("forward+backward/all")
    if bwd:  # on the CPU never slower; on a GPU (launch-bound at batch 1) within 5%
        limit = 1.05 if DEVICE[0].type != "cpu" else 1.0
        checks[f"forward+backward sepconv/naive max <= {limit}"] = bwd["sepconv/naive max"] <= limit
    if "depthwise nchw" in summary:
        checks["depthwise nchw native/torch_cl max <= 1.25"] = (
            summary["depthwise nchw"]["native/torch_cl max"] <= 1.25
        )
        # the bandwidth of the large copy timed in the same rounds as the row (the run's
        # opening roofline where there is none): a shared machine's bandwidth moves
        # between the start of a run and its depthwise rows minutes later
        entry = summary["depthwise nchw"]
        beside = entry["native/bound max (out of cache, bandwidth of the same rounds)"]
        bound = beside if beside is not None else entry["native/bound max (out of cache)"]
        if bound is not None:
            key = "depthwise nchw native/bound max (out of cache) <= 1.5"
            checks[key] = bound <= 1.5
            how = "the same rounds' bandwidth" if beside is not None else "the opening roofline"
            said[key] = f"{bound:.2f} at {how}"
    # the layers' dispatch: never slower than the best composition of PyTorch's convolutions
    # (within the forward target's 5%)
    limit = TARGETS["sepconv/naive max"]
    if "depthwise layer" in summary:
        checks[f"depthwise layer sepconv/torch max <= {limit}"] = (
            summary["depthwise layer"]["sepconv/torch max"] <= limit
        )
    for pass_name in ("forward", "forward+backward"):
        entry = summary.get(f"spatially separable {pass_name}/all")
        if entry:
            checks[f"spatially separable {pass_name} sepconv/naive max <= {limit}"] = (
                entry["sepconv/naive max"] <= limit
            )
    for text, ok in checks.items():
        value = f" ({said[text]})" if text in said else ""
        print(f"target {text}: {'met' if ok else 'NOT met'}{value}")
    write_json(
        args.json,
        {
            "benchmark": "layers",
            "machine": info,
            "rounds": rounds,
            "results": results,
            "depthwise": dw,
            "spatially_separable": spatial,
            "summary": summary,
            "targets": checks,
        },
    )
    return 0


def _spatial_rows(args: Any, rounds: int, roof: dict[str, float]) -> list[dict[str, Any]]:
    """The spatially separable rows (``benchmarks/_spatial.py``), printed as a table."""
    import _spatial

    shapes = _spatial.QUICK if args.quick else _spatial.INCEPTION_V3
    names = ["sepconv", "naive_nchw", "naive_cl", "onnxruntime"]
    rows, results = [], []
    tools = sys.modules[__name__]
    for backward in [p == "backward" for p in args.passes]:
        for batch in args.batch:
            for fmt in args.formats:
                for channels, mid, filters, size, kernel, count in shapes:
                    r = _spatial.spatial_case(
                        channels,
                        mid,
                        filters,
                        size,
                        kernel,
                        batch,
                        fmt == "channels_last",
                        backward,
                        rounds,
                        args.threads,
                        roof,
                        tools,
                    )
                    r["count"] = count
                    results.append(r)
                    rows.append([*_cells(r, names), r["sepconv_format"]])
                    print("  " + " ".join(map(str, rows[-1])), file=sys.stderr)
    print()
    print("spatially separable layer (Inception-v3's 1x7 then 7x1)")
    print(format_table([*_headers(names), "route"], rows))
    return results


def _cost_model_path() -> str:
    return os.path.join(
        os.path.dirname(os.path.abspath(__file__)),
        os.pardir,
        "src",
        "sepconv",
        "nn",
        "layers_cost_model.json",
    )


if __name__ == "__main__":
    raise SystemExit(main())
