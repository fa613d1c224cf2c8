"""The padding of a convolution subclass that pads its own way, established by probing it.

Libraries subclass ``nn.Conv2d`` to pad at run time: timm's ``Conv2dSame`` (TensorFlow
'same', the extra row and column at the end, computed from each input's size) is used by every
``tf_*`` model. Such a layer does not say what it does, so :func:`probe` runs it on two seeded
random inputs of different sizes (one of each parity along every axis, at least the kernel's
extent) and compares its output with each candidate a converted layer can reproduce:

- ``'own'``: ``nn.ConvNd``'s own forward with the layer's attributes (a subclass that only adds
  behaviour around the convolution, such as logging);
- ``'same'``: Keras / TensorFlow 'same' (``sepconv.padding``), what timm's ``Conv2dSame``,
  ``tf.keras`` and ``sepconv.models.Conv2dSame`` compute;
- ``'valid'``: no padding.

A candidate is accepted when it reproduces the layer's output to 1e-4 relative (float32;
1e-2 in half precision) on both inputs. A layer whose forward does something else (timm's
``StdConv2d`` standardises its weight first) matches none and is left alone, with the reason
in the report. Probing runs the layer without gradients, on its device and dtype; the layer is
not modified.
"""

from __future__ import annotations

import math
import weakref

import torch
import torch.nn.functional as F
from torch import nn

_CONVS = {1: (nn.Conv1d, F.conv1d), 2: (nn.Conv2d, F.conv2d), 3: (nn.Conv3d, F.conv3d)}
CANDIDATES = ("own", "same", "valid")
#: layer -> established padding ('own', 'same', 'valid') or None: probed once per layer
_FOUND: weakref.WeakKeyDictionary[nn.Module, str | None] = weakref.WeakKeyDictionary()


def _same_pads(sizes: tuple[int, ...], conv: nn.Module) -> list[int]:
    """``F.pad`` amounts (last axis first) of Keras 'same' for an input of ``sizes``."""
    pads: list[int] = []
    for size, k, s, d in zip(sizes, conv.kernel_size, conv.stride, conv.dilation):
        total = max((math.ceil(size / s) - 1) * s + d * (k - 1) + 1 - size, 0)
        pads[:0] = [total // 2, total - total // 2]
    return pads


def _candidate(name: str, conv: nn.Module, x: torch.Tensor, n: int) -> torch.Tensor:
    base, fn = _CONVS[n]
    if name == "own":
        return base.forward(conv, x)
    if name == "same":
        x = F.pad(x, _same_pads(tuple(x.shape[2:]), conv))
    return fn(x, conv.weight, conv.bias, conv.stride, 0, conv.dilation, conv.groups)


def probe(conv: nn.Module, n: int) -> str | None:
    """``'own'``, ``'same'`` or ``'valid'``: the padding ``conv`` (an ``nn.ConvNd`` subclass of
    ``n`` spatial axes) was seen to apply, or ``None`` when it matched none of them.

    Examples
    --------
    >>> import torch.nn.functional as F
    >>> from torch import nn
    >>> class TFSame(nn.Conv2d):  # pads like TensorFlow, as timm's Conv2dSame
    ...     def forward(self, x):
    ...         pad_h = max((-(-x.shape[2] // 2) - 1) * 2 + 3 - x.shape[2], 0)
    ...         pad_w = max((-(-x.shape[3] // 2) - 1) * 2 + 3 - x.shape[3], 0)
    ...         x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
    ...         return F.conv2d(x, self.weight, self.bias, self.stride)
    >>> probe(TFSame(3, 4, 3, stride=2), 2)
    'same'
    >>> class Scaled(nn.Conv2d):  # not a plain convolution
    ...     def forward(self, x):
    ...         return 2 * super().forward(x)
    >>> probe(Scaled(3, 4, 3), 2) is None
    True
    """
    if conv in _FOUND:
        return _FOUND[conv]
    weight = conv.weight
    low = weight.dtype in (torch.float16, torch.bfloat16)
    rtol = 1e-2 if low else 1e-4
    generator = torch.Generator().manual_seed(0)
    alive = list(CANDIDATES)
    try:
        with torch.no_grad():
            for extra in (0, 1):
                sizes = [
                    d * (k - 1) + 1 + s + extra
                    for k, s, d in zip(conv.kernel_size, conv.stride, conv.dilation)
                ]
                x = torch.randn(2, conv.in_channels, *sizes, generator=generator)
                x = x.to(weight.device, weight.dtype)
                got = conv(x)
                if not isinstance(got, torch.Tensor):
                    alive = []
                    break
                scale = float(got.abs().max()) if got.numel() else 0.0
                for name in list(alive):
                    want = _candidate(name, conv, x, n)
                    if want.shape != got.shape or not torch.allclose(
                        got, want, rtol=rtol, atol=rtol * scale
                    ):
                        alive.remove(name)
    except (RuntimeError, ValueError, TypeError):  # a forward that refuses the probe
        alive = []
    found = alive[0] if alive else None
    _FOUND[conv] = found
    return found
