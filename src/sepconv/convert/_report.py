"""What :func:`sepconv.convert.convert` did: one row per layer, totals, measured errors."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .._text import ratio_text


def saving_reason(rank: int, ratio: float, min_speedup: float, counted: str) -> str:
    """Why a layer is kept although factored at ``rank``: ``ratio`` is before / after.

    ``counted`` is ``'mult-adds'``, ``'parameters'`` or ``'time'`` (measured latency). How
    much more or less is worded by :func:`sepconv._text.ratio_text` (a percentage below 2x).

    >>> saving_reason(3, 1 / 1.06, 1.0, "mult-adds")
    'rank 3 would need 6% more mult-adds'
    >>> saving_reason(3, 1.2, 1.5, "time")
    'rank 3 measured only 17% less time, a speedup of 1.20 below min_speedup 1.5'
    """
    if counted == "time":
        change = ratio_text(ratio, fewer="less time", more="more time", digits=2)
        if ratio < 1:
            return f"rank {rank} measured {change}"
        return (
            f"rank {rank} measured only {change}, a speedup of {ratio:.2f} below min_speedup "
            f"{min_speedup:g}"
        )
    change = ratio_text(ratio, digits=2)
    if ratio < 1:
        return f"rank {rank} would need {change} {counted}"
    return (
        f"rank {rank} needs only {change} {counted}, a speedup of {ratio:.2f} below min_speedup "
        f"{min_speedup:g}"
    )


@dataclass(frozen=True)
class LayerReport:
    """What :func:`convert` did with one layer, and why.

    ``relative_error`` is the weight error of the factors before any least-squares refit
    (the whitened ones when the report says ``whitened``); ``output_error`` the relative
    error of the layer's output against the original layer's on the calibration data (with
    the inputs the converted model feeds it), ``closed_form_output_error`` the same before
    the least-squares refit of the second factor.
    Latencies are medians of interleaved batch calls at the report's input size, in ms.
    """

    name: str
    layer: str
    replaced: bool
    reason: str
    method: str | None = None
    rank: int | None = None
    relative_error: float | None = None
    parameters_before: int = 0
    parameters_after: int | None = None
    multiplications_before: int | None = None
    multiplications_after: int | None = None
    output_error: float | None = None
    closed_form_output_error: float | None = None
    latency_before_ms: float | None = None
    latency_after_ms: float | None = None

    @property
    def speedup(self) -> float | None:
        """Multiplications before / after (``None`` without an input size)."""
        if self.multiplications_before is None or not self.multiplications_after:
            return None
        return self.multiplications_before / self.multiplications_after

    @property
    def measured_speedup(self) -> float | None:
        """Measured latency before / after (``None`` unless measured)."""
        if self.latency_before_ms is None or not self.latency_after_ms:
            return None
        return self.latency_before_ms / self.latency_after_ms


@dataclass(frozen=True)
class ConversionReport:
    """Per-layer record of a conversion, with totals and the measured output errors.

    ``output_relative_error``: the whole model's relative output error on ``example_input``
    (held-out data); ``calibration_output_error`` and ``closed_form_calibration_error``: on
    the calibration data with and without the data-aware refit. ``budget``: the requested
    fraction; ``mult_adds_before``/``after``: the convertible layers together. ``whitened``:
    the kept data-aware factors have first factors weighted by the measured input moments
    (:func:`sepconv.convert.convert`, ``whiten``). ``refitted``: layers kept whole whose
    weights the data-aware conversion refitted to the converted model's inputs.
    ``recalibrated_bn``: the batch norms' statistics were re-estimated on the calibration
    data, before those layers were refitted (``calibration_output_error`` is then measured
    with the new statistics).
    """

    layers: tuple[LayerReport, ...]
    output_relative_error: float | None = None
    budget: float | None = None
    data_aware: bool = False
    calibration_output_error: float | None = None
    closed_form_calibration_error: float | None = None
    model_latency_before_ms: float | None = None
    model_latency_after_ms: float | None = None
    threads: int | None = None
    whitened: bool = False
    refitted: tuple[str, ...] = ()
    recalibrated_bn: bool = False

    @property
    def replaced(self) -> tuple[LayerReport, ...]:
        return tuple(row for row in self.layers if row.replaced)

    @property
    def skipped(self) -> tuple[LayerReport, ...]:
        return tuple(row for row in self.layers if not row.replaced)

    @property
    def mult_adds_before(self) -> int | None:
        """Mult-adds of the layers that were candidates for conversion, before."""
        rows = [r for r in self.layers if r.multiplications_before is not None]
        return sum(r.multiplications_before for r in rows) if rows else None

    @property
    def mult_adds_after(self) -> int | None:
        """The same layers after: converted ones at their new cost, the others unchanged."""
        rows = [r for r in self.layers if r.multiplications_before is not None]
        if not rows:
            return None
        return sum(
            r.multiplications_after if r.replaced else r.multiplications_before for r in rows
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "layers": [asdict(row) for row in self.layers],
            "output_relative_error": self.output_relative_error,
            "budget": self.budget,
            "data_aware": self.data_aware,
            "calibration_output_error": self.calibration_output_error,
            "closed_form_calibration_error": self.closed_form_calibration_error,
            "mult_adds_before": self.mult_adds_before,
            "mult_adds_after": self.mult_adds_after,
            "model_latency_before_ms": self.model_latency_before_ms,
            "model_latency_after_ms": self.model_latency_after_ms,
            "threads": self.threads,
            "whitened": self.whitened,
            "refitted": list(self.refitted),
            "recalibrated_bn": self.recalibrated_bn,
        }

    def __str__(self) -> str:
        headers = [
            "layer",
            "module",
            "action",
            "rank",
            "weight error",
            "layer output error",
            "mult-adds",
            "latency ms",
            "parameters",
        ]
        rows = []
        for row in self.layers:
            mults = ""
            if row.multiplications_before is not None:
                mults = (
                    f"{row.multiplications_before:,} -> {row.multiplications_after:,}"
                    if row.replaced
                    else f"{row.multiplications_before:,}"
                )
            latency = ""
            if row.latency_before_ms is not None:
                latency = (
                    f"{row.latency_before_ms:.3f} -> {row.latency_after_ms:.3f}"
                    if row.latency_after_ms is not None
                    else f"{row.latency_before_ms:.3f}"
                )
            output = (
                ""
                if row.output_error is None
                else (
                    f"{row.closed_form_output_error:.2e} -> {row.output_error:.2e}"
                    if row.closed_form_output_error is not None
                    else f"{row.output_error:.2e}"
                )
            )
            if row.replaced:
                action = row.method if row.reason == "replaced" else f"{row.method}: {row.reason}"
                rows.append(
                    [
                        row.name,
                        row.layer,
                        action,
                        str(row.rank),
                        f"{row.relative_error:.2e}",
                        output,
                        mults,
                        latency,
                        f"{row.parameters_before:,} -> {row.parameters_after:,}",
                    ]
                )
            else:
                rows.append(
                    [
                        row.name,
                        row.layer,
                        f"kept: {row.reason}",
                        "",
                        "",
                        "",
                        mults,
                        latency,
                        f"{row.parameters_before:,}",
                    ]
                )
        keep = [i for i in range(len(headers)) if i < 4 or any(r[i] for r in rows)]
        table = [[r[i] for i in keep] for r in [headers, *rows]]
        widths = [max(len(r[i]) for r in table) for i in range(len(keep))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in table]
        lines.insert(1, "  ".join("-" * w for w in widths))
        before, after = self.mult_adds_before, self.mult_adds_after
        if before:
            lines.append(
                f"convertible layers: {before:,} -> {after:,} mult-adds "
                f"({after / before:.1%})"
                + (f", budget {self.budget:.1%}" if self.budget is not None else "")
            )
        if any(r.closed_form_output_error is not None for r in self.layers):
            lines.append(
                "layer output error: each layer's relative error on the calibration data, "
                "with the inputs the converted model feeds it, before -> after its refit"
            )
        if self.calibration_output_error is not None:
            lines.append(
                f"model output error on the calibration data: "
                f"{self.closed_form_calibration_error:.3e} closed form, "
                f"{self.calibration_output_error:.3e} "
                f"{'data-aware' if self.data_aware else 'kept closed form'}"
                + (" (whitened first factors)" if self.whitened else "")
                + (", batch-norm statistics re-estimated on it" if self.recalibrated_bn else "")
            )
        if self.refitted:
            lines.append(
                "kept whole, weights refitted to the converted model's inputs: "
                + ", ".join(self.refitted)
            )
        if self.output_relative_error is not None:
            lines.append(
                f"relative output error on the example input: {self.output_relative_error:.3e}"
            )
        if self.model_latency_before_ms is not None:
            lines.append(
                f"model latency (median, {self.threads} thread"
                f"{'s' * (self.threads != 1)}): {self.model_latency_before_ms:.3f} ms "
                f"-> {self.model_latency_after_ms:.3f} ms"
            )
        return "\n".join(lines)
