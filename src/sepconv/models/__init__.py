"""Models built from :mod:`sepconv.nn` layers, and a registry of them.

``list_models()`` names the registered models, ``create_model(name, **kwargs)`` builds one and
``register(name)`` adds a builder. Every registered model has a ``default_input_size``
``(C, H, W)`` that :func:`sepconv.profile` and ``sepconv profile`` use.

- ``mobilenet_v1``: MobileNetV1 (Howard et al., 2017) with width multiplier and resolution;
  ``mobilenet_v1_conv``: its full-convolution twin, the paper's "Conv MobileNet".
- ``mnist_separable`` / ``mnist_conv``: the small twin networks of ``sepconv train``.

:func:`optimize_for_inference` prepares a model for fast CPU inference: batch norm folded into
the convolutions, static padding, channels-last memory, then TorchScript tracing, freezing and
oneDNN conversion (``mode='jit'``, the default with an example input) or ``torch.compile``
(``mode='compile'``). On MobileNetV1 1.0-224 it runs batch 1 about 1.5-2x faster than eager
PyTorch and close to onnxruntime (``python benchmarks/mobilenet.py``).

Examples
--------
>>> from sepconv import models
>>> models.list_models()
['mnist_conv', 'mnist_separable', 'mobilenet_v1', 'mobilenet_v1_conv']
>>> net = models.create_model("mobilenet_v1", width_multiplier=0.5, resolution=160)
>>> net.default_input_size
(3, 160, 160)
"""

from __future__ import annotations

from .._api import public_dir as _public_dir
from ._registry import create_model, list_models, register, unregister
from .inference import fold_batch_norm, optimize_for_inference
from .mobilenet import (
    MOBILENET_V1_TABLE,
    ConvNormAct,
    MobileNetV1,
    SeparableBlock,
    mobilenet_v1,
    mobilenet_v1_conv,
)
from .small import SmallNet, mnist_conv, mnist_separable

__all__ = [
    "list_models",
    "create_model",
    "register",
    "unregister",
    "MOBILENET_V1_TABLE",
    "MobileNetV1",
    "ConvNormAct",
    "SeparableBlock",
    "mobilenet_v1",
    "mobilenet_v1_conv",
    "SmallNet",
    "mnist_separable",
    "mnist_conv",
    "optimize_for_inference",
    "fold_batch_norm",
]

__dir__ = _public_dir(globals())
