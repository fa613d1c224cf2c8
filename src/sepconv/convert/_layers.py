"""Which modules :mod:`sepconv.convert` can take, how they pad, and how the report names them."""

from __future__ import annotations

import math
from typing import Any

from torch import nn

from . import _probe
from ._factors import _CONVS, SPATIAL
from ._lowrank import lowrank_padding


def _dims(conv: nn.Module) -> int | None:
    """Spatial dimensions of a convolution sepconv can convert, else ``None``.

    Plain ``nn.Conv1d/2d/3d`` qualify, subclasses that say which padding they apply through
    a ``keras_padding`` attribute ('valid', 'same' or (before, after) pairs,
    :func:`sepconv.padding.padding_of`), like every sepconv layer
    (:class:`sepconv.nn.modules.KerasPaddingConv`) and ``sepconv.models.mobilenet.Conv2dSame``,
    and other subclasses whose padding a probe of their output establishes (timm's
    ``Conv2dSame``: :mod:`sepconv.convert._probe`).
    """
    for cls, n in _CONVS.items():
        if type(conv) is cls or (isinstance(conv, cls) and hasattr(conv, "keras_padding")):
            return n
        if isinstance(conv, cls):
            return n if _probe.probe(conv, n) is not None else None
    return None


def _padding_of(conv: nn.Module) -> Any:
    # nn.ConvNd keeps symmetric ints or the strings 'same' (stride 1 only, where torch and
    # TensorFlow agree) and 'valid'; subclasses with their own padding declare it, or a probe
    # established it.
    from ..padding import padding_of

    n = _dims(conv)
    if n is not None and type(conv) not in _CONVS and not hasattr(conv, "keras_padding"):
        found = _probe.probe(conv, n)
        if found in ("same", "valid"):
            return found
    return padding_of(conv)


def _describe(conv: nn.Module) -> str:
    if isinstance(conv, nn.Linear):
        return f"Linear {conv.in_features}->{conv.out_features}"
    kernel = "x".join(str(k) for k in conv.kernel_size)
    text = f"{type(conv).__name__} {conv.in_channels}->{conv.out_channels} {kernel}"
    if type(conv) not in _CONVS and not hasattr(conv, "keras_padding"):
        n = next((n for cls, n in _CONVS.items() if isinstance(conv, cls)), None)
        found = _probe.probe(conv, n) if n is not None else None
        if found == "own":
            text += f" (pads as nn.Conv{n}d: probed)"
        elif found is not None:
            text += f" ({found!r} padding: probed)"
    return text


def _skip_reason(conv: nn.Module, method: str) -> str | None:
    n = _dims(conv)
    if conv.groups != 1:
        return f"grouped (groups={conv.groups})"
    if math.prod(conv.kernel_size) == 1:
        return "1x1 kernel: nothing spatial to separate"
    if method in SPATIAL:
        if n != 2:
            return f"method {method!r} is for 2-D convolutions"
        if 1 in conv.kernel_size:
            return "kernel is already 1-D"
    return None


def _is_lowrank_candidate(module: nn.Module) -> bool:
    """An ``nn.Linear`` or a plain 1x1 convolution (groups 1) that :class:`LowRank` can replace."""
    if type(module) is nn.Linear:
        return True
    return (
        _dims(module) is not None
        and math.prod(module.kernel_size) == 1
        and module.groups == 1
        and lowrank_padding(module) is not None
    )
