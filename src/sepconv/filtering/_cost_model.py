"""The planner's timing model, loaded from data: ``sepconv/filtering/cost_model.json``.

``python benchmarks/filter.py --calibrate`` measures the constants on the machine it runs on
and writes that file, with the machine (CPU, cores, library versions, date); constants no run
measured carry ``"measured": false`` (estimates). Times are nanoseconds per output pixel and
channel in float32; the planner only needs them to rank methods, not to predict wall time.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

__all__ = ["CostModel", "load", "FILE", "NAMES"]

#: the data file, inside the package
FILE = "cost_model.json"

#: the constants the planner reads, in the file's ``constants`` object
NAMES = (
    "cv_direct",
    "cv_dft",
    "cv_separable",
    "cv_add",
    "native",
    "fft",
    "nd_direct",
    "nd_pass",
    "float64_factor",
)


@dataclass(frozen=True)
class CostModel:
    """Constants of the timing model (``(a, b)`` of ``a + b * x``, or one number)."""

    cv_direct: tuple[float, float]
    cv_dft: tuple[float, float]
    cv_separable: tuple[float, float]
    cv_add: float
    native: tuple[float, float]
    fft: tuple[float, float]
    nd_direct: tuple[float, float]
    nd_pass: tuple[float, float]
    float64_factor: float
    machine: dict[str, Any]
    estimates: tuple[str, ...]  #: constants never measured


def parse(data: dict[str, Any]) -> CostModel:
    """A :class:`CostModel` from the file's JSON object; ``ValueError`` names what is wrong."""
    constants = data.get("constants", {})
    values: dict[str, Any] = {}
    for name in NAMES:
        entry = constants.get(name)
        if not isinstance(entry, dict) or "value" not in entry:
            raise ValueError(f"{FILE}: constant {name!r} is missing")
        value = entry["value"]
        values[name] = tuple(float(v) for v in value) if isinstance(value, list) else float(value)
    estimates = tuple(name for name in NAMES if not constants[name].get("measured", False))
    return CostModel(**values, machine=dict(data.get("machine", {})), estimates=estimates)


@functools.lru_cache(maxsize=1)
def load() -> CostModel:
    """The packaged cost model (read once)."""
    text = resources.files("sepconv.filtering").joinpath(FILE).read_text(encoding="utf-8")
    return parse(json.loads(text))
