"""Shared timing and reporting for the benchmark scripts.

Every benchmark runs the peers side by side in one process on the same inputs, reports the
median of repeated runs, and prints ratios ``peer time / sepconv time`` (above 1: sepconv is
faster). ``--json PATH`` writes the same table with the machine and library versions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from importlib import metadata
from typing import Any

from sepconv._text import format_table

__all__ = [
    "median_time",
    "cpu_name",
    "versions",
    "machine",
    "print_header",
    "format_table",
    "base_parser",
    "write_json",
    "torch_device",
]


def median_time(
    fn: Callable[[], Any], *, repeat: int = 7, warmup: int = 1, min_time: float = 0.0
) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeat`` runs after ``warmup`` runs.

    With ``min_time`` > 0, each run calls ``fn`` in a loop until ``min_time`` seconds pass and
    counts the mean time per call (for very short functions).
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        calls = 0
        start = time.perf_counter()
        while True:
            fn()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time:
                break
        times.append(elapsed / calls)
    return statistics.median(times)


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions(*packages: str) -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("sepconv", *packages):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def cpu_id() -> str:
    """The processor's vendor, family and model numbers as ``/proc/cpuinfo`` gives them (two
    processors of one marketing name can differ in vector width), or ``''``."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("vendor_id", "cpu family", "model") and key not in fields:
                    fields[key] = value.strip()
                if not line.strip():
                    break
    except OSError:
        return ""
    if not fields:
        return ""
    return (
        f"{fields.get('vendor_id', '?')} family {fields.get('cpu family', '?')} "
        f"model {fields.get('model', '?')}"
    )


def machine(*packages: str) -> dict[str, Any]:
    """CPU (name, family/model, :func:`sepconv.nn._dispatch.machine_kind`), core count and
    library versions, for the report header and the JSON file."""
    from sepconv.nn._dispatch import machine_kind

    return {
        "cpu": cpu_name(),
        "cpu_id": cpu_id(),
        "kind": machine_kind(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "versions": versions(*packages),
    }


def print_header(title: str, info: dict[str, Any]) -> None:
    print(title)
    print(
        f"cpu: {info['cpu']} ({info.get('cpu_id') or 'family unknown'}, "
        f"{info.get('kind', '?')}, {info['cores']} cores), {info['platform']}"
    )
    print("versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()))
    print()


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument(
        "--repeat", type=int, default=7, help="timed rounds per case (minimum and median)"
    )
    parser.add_argument("--quick", action="store_true", help="a smaller grid, for a smoke test")
    return parser


def torch_device(parser: argparse.ArgumentParser, name: str) -> Any:
    """``torch.device(name)``, or the parser's one-line error (exit status 2) where the name
    is not a device or this PyTorch build cannot reach it (a CUDA device on a CPU build)."""
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as error:
        parser.error(f"--device {name!r} is not a torch device ({error})")
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {name!r}: this PyTorch build or machine has no CUDA device")
    if device.type not in ("cpu", "cuda", "meta"):
        try:
            torch.empty(1, device=device)
        except (RuntimeError, AssertionError) as error:
            parser.error(f"--device {name!r} cannot be used here ({error})")
    return device


def write_json(path: str | None, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` whole or not at all (temporary file, then rename)."""
    if not path:
        return
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)
    print(f"wrote {path}", file=sys.stderr)
