"""Whether the native depthwise kernel beats PyTorch's, from measured constants.

The constants live in ``layers_cost_model.json`` beside this module, written by
``python benchmarks/layers.py --calibrate`` (which records the machine, the thread count and
the raw timings it fitted), one calibration per kind of processor (:func:`machine_kind`: the
architecture and the widest vector instructions the kernels use) and thread count measured;
of the calibrations of this processor's kind (all of them where none is), the one nearest to
``torch.get_num_threads()`` is used. Layer calls that :mod:`sepconv.nn._autotune` times do not
consult it; the others do (training with batch-norm children, unbatched inputs,
``use_autotune(False)``). For each memory format of the input (``nchw``: the W axis has unit
stride; ``cl``: channels-last) and stride class (``s1``; ``s2``: any stride above 1), each
contender's time is modelled as a non-negative combination of :data:`FEATURES`, corrected
by the nearest measured case (:func:`predict`):

- ``native``: :func:`sepconv.nn._native_depthwise.depthwise_conv2d` on the input as given;
- ``torch``: ``F.conv2d(groups=C)`` on the input as given (the naive composition's step);
- ``torch_converted``: the input converted to the other memory format, ``F.conv2d`` there,
  the result converted back (what a user who knows PyTorch's fast format would write);
- ``native_backward`` and ``torch_backward``: the native forward followed by the native
  gradients, or by PyTorch's convolution backward (forward + backward time).

:func:`should_use_native` is true only where the native kernel applies and its modelled time
is below both others' by :data:`MARGIN`; without a model (file missing or unreadable) it is
false, so a layer that asks never runs slower than PyTorch's own kernels by the model's
measure.

Examples
--------
>>> import torch
>>> from sepconv.nn import _dispatch
>>> x, w = torch.randn(8, 32, 112, 112), torch.randn(32, 1, 3, 3)
>>> isinstance(_dispatch.should_use_native(x, w, 1, 1, 1), bool)
True
>>> y = _dispatch.native_depthwise(x, w, None, 1, 1, 1)
>>> y is None or tuple(y.shape) == (8, 32, 112, 112)
True
"""

from __future__ import annotations

import json
import math
import os
import platform
from typing import Any

import torch
from torch import Tensor

from . import _native_depthwise as native

__all__ = [
    "FEATURES",
    "backward_kernel",
    "features",
    "load_model",
    "machine_kind",
    "native_depthwise",
    "predict",
    "should_use_native",
]

#: what a contender's time (seconds) is modelled on: a constant per call, per channel plane
#: (N * C), per million multiply-adds, per million elements read and written
FEATURES = ("call", "planes", "mmacs", "melements")
#: the native kernel is chosen only where its modelled time is below this fraction of the
#: best alternative's (the model's error on a busy machine is of this order)
MARGIN = 0.9
#: a measured case corrects the predictions of inputs within this factor of its channel planes
#: and of its multiply-adds (see :func:`predict`)
NEAR = 2.0
MODEL_PATH = os.path.join(os.path.dirname(__file__), "layers_cost_model.json")
_MODEL: dict[str, Any] | None = None
_KIND: list[str] = []
#: decisions already taken: (shapes, strides, settings, model) -> bool
_CHOICES: dict[tuple, bool] = {}


def load_model(path: str | None = None) -> dict[str, Any]:
    """The cost model file: ``calibrations``, one per thread count it was measured with (each
    a dict with ``models``, ``samples``, ``machine``); an empty one where the file is missing
    or malformed. A file of one calibration (``models`` at the top) is read as such."""
    try:
        with open(path or MODEL_PATH) as f:
            model = json.load(f)
        if not isinstance(model, dict):
            raise ValueError("not an object")
        if isinstance(model.get("models"), dict):
            model = {"features": model.get("features"), "calibrations": [model]}
        found = model.get("calibrations")
        calibrations = [
            c
            for c in (found if isinstance(found, list) else ())
            if isinstance(c, dict) and isinstance(c.get("models"), dict)
        ]
        if not calibrations:
            raise ValueError("no models")
        return {**model, "calibrations": calibrations}
    except (OSError, ValueError):
        return {"calibrations": [{"models": {}}]}


def machine_kind() -> str:
    """This processor's kind as the calibrations record it: the architecture
    (``platform.machine()``) and, on x86-64, the widest vector instructions the native kernels
    run (``'x86_64/avx512'`` where the processor has AVX-512F, ``'x86_64/avx2'`` with AVX2 and
    FMA, else ``'x86_64'``), read from ``/proc/cpuinfo`` where there is one.

    >>> machine_kind().startswith(platform.machine().lower() or "unknown")
    True
    """
    if not _KIND:
        arch = platform.machine().lower() or "unknown"
        flags: set[str] = set()
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("flags"):
                        flags = set(line.split(":", 1)[1].split())
                        break
        except OSError:
            pass
        if arch in ("x86_64", "amd64") and "avx512f" in flags:
            arch += "/avx512"
        elif arch in ("x86_64", "amd64") and {"avx2", "fma"} <= flags:
            arch += "/avx2"
        _KIND.append(arch)
    return _KIND[0]


def _kind_of(calibration: dict[str, Any]) -> str | None:
    machine = calibration.get("machine")
    kind = machine.get("kind") if isinstance(machine, dict) else None
    return kind if isinstance(kind, str) else None


def _threads_of(calibration: dict[str, Any]) -> int:
    machine = calibration.get("machine")
    threads = machine.get("threads") if isinstance(machine, dict) else None
    return threads if isinstance(threads, int) and threads > 0 else 1


def _model() -> dict[str, Any]:
    """Of the calibrations measured on this kind of processor (:func:`machine_kind`; all of
    them where none was), the one measured with the thread count nearest to PyTorch's current
    one (on a log scale; the fewer threads on a tie)."""
    global _MODEL
    if _MODEL is None:
        _MODEL = load_model()
    if "calibrations" not in _MODEL:  # one calibration given as such
        return _MODEL
    threads = torch.get_num_threads()
    chosen = _MODEL.setdefault("_by_threads", {}).get(threads)
    if chosen is None:
        kind = machine_kind()
        calibrations = [c for c in _MODEL["calibrations"] if _kind_of(c) == kind]
        chosen = min(
            calibrations or _MODEL["calibrations"],
            key=lambda c: (abs(math.log(_threads_of(c) / threads)), _threads_of(c)),
        )
        _MODEL["_by_threads"][threads] = chosen
    return chosen


def features(
    n: int,
    c: int,
    h: int,
    w: int,
    out_channels: int,
    kernel: tuple[int, int],
    out_size: tuple[int, int],
) -> list[float]:
    """The model's features of a depthwise convolution (see :data:`FEATURES`)."""
    outputs = n * out_channels * out_size[0] * out_size[1]
    return [
        1.0,
        float(n * c),
        outputs * kernel[0] * kernel[1] / 1e6,
        (n * c * h * w + outputs) / 1e6,
    ]


def _key(x: Tensor, stride: tuple[int, int]) -> str:
    layout = native._layout(x) or "nchw"
    return f"{layout}/{'s1' if max(stride) == 1 else 's2'}"


def _nearest(model: dict[str, Any], key: str, f: list[float]) -> dict[str, Any] | None:
    """The measured case (``samples`` of the model file) of this format and stride class
    nearest to features ``f`` in channel planes and multiply-adds, if within :data:`NEAR` of
    both; None otherwise."""
    groups = model.get("_samples")
    if groups is None:
        groups = {}
        for sample in model.get("samples") or ():
            if isinstance(sample, dict) and len(sample.get("features", ())) == len(FEATURES):
                groups.setdefault(sample.get("key"), []).append(sample)
        model["_samples"] = groups
    best, best_distance = None, math.log(NEAR)
    for sample in groups.get(key, ()):
        g = sample["features"]
        if min(g[1], g[2], f[1], f[2]) <= 0:
            continue
        distance = max(abs(math.log(f[1] / g[1])), abs(math.log(f[2] / g[2])))
        if distance <= best_distance:
            best, best_distance = sample, distance
    return best


def predict(
    x: Tensor, weight: Tensor, stride: Any, padding: Any, dilation: Any
) -> dict[str, float] | None:
    """Modelled seconds of each contender, or ``None`` without a model for this case.

    The fitted linear model, corrected by the measured case nearest to this input (same
    memory format and stride class, channel planes and multiply-adds within a factor
    :data:`NEAR`): each contender's time is scaled by that case's measured / fitted time, so
    the prediction equals the measurement at a measured shape (the linear features miss
    cache effects: the native kernel's time per multiply-add differs between a working set in
    L2 and one in DRAM)."""
    stride, dilation = native._pair(stride, "stride"), native._pair(dilation, "dilation")
    top, bottom, left, right = native._pads(padding)
    model = _model()
    key = _key(x, stride)
    entry = model["models"].get(key)
    if not entry:
        return None
    n, c, h, w = x.shape
    kh, kw = weight.shape[2:]
    out = (
        (h + top + bottom - (kh - 1) * dilation[0] - 1) // stride[0] + 1,
        (w + left + right - (kw - 1) * dilation[1] - 1) // stride[1] + 1,
    )
    f = features(n, c, h, w, weight.shape[0], (kh, kw), out)
    times = {name: sum(a * b for a, b in zip(coefs, f)) for name, coefs in entry.items()}
    sample = _nearest(model, key, f)
    if sample is not None:
        for name, coefs in entry.items():
            fitted = sum(a * b for a, b in zip(coefs, sample["features"]))
            measured = sample.get(f"{name}_s")
            if isinstance(measured, (int, float)) and measured > 0 and fitted > 0:
                times[name] *= measured / fitted
    return times


def _native_wins(times: dict[str, float] | None, training: bool) -> bool:
    if times is None:
        return False
    if not training:
        return times["native"] < MARGIN * min(times["torch"], times["torch_converted"])
    if "native_backward" not in times or "torch_backward" not in times:
        return False
    # Both *_backward times include the native forward; PyTorch's forward and backward:
    # the same with PyTorch's forward in its place.
    native_step = min(times["native_backward"], times["torch_backward"])
    torch_step = times["torch_backward"] - times["native"] + times["torch"]
    return native_step < MARGIN * torch_step


def should_use_native(
    x: Tensor, weight: Tensor, stride: Any, padding: Any, dilation: Any, training: bool = False
) -> bool:
    """True where the native kernel applies to these arguments and the measured model says
    it is faster than ``F.conv2d`` on the input as given and than the converted composition.
    ``padding`` as :func:`sepconv.nn._native_depthwise.depthwise_conv2d`. With ``training``
    (gradients will be computed), the forward and backward together are compared: the native
    forward with the faster of the two gradient kernels (:func:`backward_kernel`) against
    PyTorch's forward and backward on the input as given."""
    if not native._applies(x, weight, None):
        return False
    key = (
        tuple(x.shape),
        x.stride(),
        tuple(weight.shape),
        repr(stride),
        repr(padding),
        repr(dilation),
        bool(training),
        id(_model()),
    )
    choice = _CHOICES.get(key)
    if choice is None:
        choice = _native_wins(predict(x, weight, stride, padding, dilation), training)
        if len(_CHOICES) >= 4096:
            _CHOICES.clear()
        _CHOICES[key] = choice
    return choice


def backward_kernel(x: Tensor, weight: Tensor, stride: Any, padding: Any, dilation: Any) -> str:
    """``'native'`` where the model says the native gradients are faster than PyTorch's
    convolution backward, else ``'torch'`` (what ``F.conv2d``'s autograd runs)."""
    times = predict(x, weight, stride, padding, dilation)
    if not times or "native_backward" not in times or "torch_backward" not in times:
        return "torch"
    return "native" if times["native_backward"] < MARGIN * times["torch_backward"] else "torch"


def native_depthwise(
    x: Tensor, weight: Tensor, bias: Tensor | None, stride: Any, padding: Any, dilation: Any
) -> Tensor | None:
    """The native depthwise convolution where :func:`should_use_native` says it pays, else
    ``None`` (the caller then runs PyTorch's). Arguments and result as
    :func:`sepconv.nn._native_depthwise.depthwise_conv2d` (the input's memory format); the
    gradients by the kernel :func:`backward_kernel` picks."""
    if not should_use_native(x, weight, stride, padding, dilation):
        return None
    return native.depthwise_conv2d(
        x,
        weight,
        bias,
        stride,
        padding,
        dilation,
        backward=backward_kernel(x, weight, stride, padding, dilation),
    )
