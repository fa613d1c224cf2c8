"""Measured CPU latency of layers and models before and after conversion.

Contenders run interleaved in rounds (one call of each per round, after warm-up calls), in
inference mode, with the same number of PyTorch threads, and the median (and minimum) over
rounds is reported: on a shared machine the load of other processes moves both contenders
alike.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

import torch

#: Rounds of interleaved calls (each contender once per round) and warm-up calls.
ROUNDS, WARMUP = 25, 3


def interleaved(
    calls: Sequence[Callable[[], object]], *, rounds: int = ROUNDS, warmup: int = WARMUP
) -> list[tuple[float, float]]:
    """``(median, minimum)`` seconds of each call, measured in interleaved rounds."""
    times: list[list[float]] = [[] for _ in calls]
    with torch.inference_mode():
        for _ in range(warmup):
            for call in calls:
                call()
        for _ in range(rounds):
            for i, call in enumerate(calls):
                start = time.perf_counter()
                call()
                times[i].append(time.perf_counter() - start)
    return [(statistics.median(t), min(t)) for t in times]


def compare(
    before: torch.nn.Module,
    after: torch.nn.Module,
    input_shape: Sequence[int],
    *,
    rounds: int = ROUNDS,
) -> tuple[float, float]:
    """Median seconds of ``before(x)`` and ``after(x)`` for a random ``x`` of ``input_shape``."""
    parameter = next(before.parameters(), None)
    x = torch.randn(
        tuple(input_shape),
        dtype=parameter.dtype if parameter is not None else None,
        device=parameter.device if parameter is not None else None,
    )
    modes = before.training, after.training
    before.eval()
    after.eval()
    try:
        (b, _), (a, _) = interleaved([lambda: before(x), lambda: after(x)], rounds=rounds)
    finally:
        before.train(modes[0])
        after.train(modes[1])
    return b, a
