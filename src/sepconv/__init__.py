"""sepconv: separable convolutions, spatially and depthwise.

``import sepconv`` imports NumPy only. Submodules that need PyTorch, OpenCV, matplotlib or
dask import them when first used, so NumPy-only users and ``sepconv --help`` do not pay for
them.

Submodules
----------
cost        exact multiplication / addition / parameter counts (the one home of the formulas)
padding     output sizes and Keras/TensorFlow-exact 'same' padding
reference   readable NumPy convolutions that count the multiplications they perform
kernels     named kernels (sobel, gaussian, log, gabor, ...) and kernel parsing
factor      separability, low-rank and N-D factorization of kernels
filtering   ``correlate`` / ``convolve`` / ``plan``: filtering that takes the cheapest exact path
nn          PyTorch layers: depthwise, separable and spatially separable convolutions
models      MobileNetV1 and a model registry
profiling   per-layer cost tables of PyTorch models (``sepconv.profile``)
convert     replace a trained model's convolutions by separable approximations
tour        the guided tour on a real photograph, with figures
layouts     Keras (channels-last) and PyTorch (channels-first) layouts of inputs and weights
experiment  the accuracy-against-cost experiment on MNIST digits (``sepconv train``)
"""

from __future__ import annotations

import importlib
from typing import Any

from ._api import public_dir as _public_dir

__version__ = "0.1.0"

_SUBMODULES = (
    "cost",
    "padding",
    "reference",
    "kernels",
    "factor",
    "filtering",
    "nn",
    "models",
    "profiling",
    "convert",
    "tour",
    "layouts",
    "experiment",
)
# Public functions re-exported at the top level, and the submodule each one lives in.
_FUNCTIONS = {
    "correlate": "filtering",
    "convolve": "filtering",
    "plan": "filtering",
    "separate": "factor",
    "lowrank": "factor",
    "profile": "profiling",
}

__all__ = ["__version__", *_SUBMODULES, *_FUNCTIONS]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    if name in _FUNCTIONS:
        module = importlib.import_module(f"{__name__}.{_FUNCTIONS[name]}")
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__dir__ = _public_dir(globals())
