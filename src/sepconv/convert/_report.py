"""What :func:`sepconv.convert.convert` did: one row per layer, totals, measured errors."""

from __future__ import annotations

import textwrap
from dataclasses import asdict, dataclass
from typing import Any

from .._text import format_table, ratio_text

#: Columns of the printed report; its detail lines, notes and totals are wrapped to fit.
WIDTH = 100


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


def replaced_reason(
    rank: int, requested: int | None, rtol: float | None, ratio: float, counted: str
) -> str:
    """Why a layer is replaced: how its ``rank`` was chosen, and what it saves.

    ``requested`` is the ``rank`` argument (``None`` when ``rtol`` chose it); ``ratio`` and
    ``counted`` are as in :func:`saving_reason`.

    >>> replaced_reason(16, 16, None, 4.0, "mult-adds")
    'rank 16 as requested, 4.00x fewer mult-adds'
    >>> replaced_reason(3, 16, None, 1.2, "parameters")
    'rank 3, the full rank (16 requested), 17% fewer parameters'
    >>> replaced_reason(5, None, 0.3, 2.5, "time")
    'rank 5, the fewest terms within rtol 0.3, measured 2.50x less time'
    """
    if requested is None:
        how = f"rank {rank}, the fewest terms within rtol {rtol:g}"
    elif rank == requested:
        how = f"rank {rank} as requested"
    else:
        how = f"rank {rank}, the full rank ({requested} requested)"
    if counted == "time":
        return f"{how}, measured {ratio_text(ratio, fewer='less time', more='more time', digits=2)}"
    return f"{how}, {ratio_text(ratio, digits=2)} {counted}"


def _arrow(before: Any, after: Any, spec: str) -> str:
    """``'before -> after'`` (``'before'`` alone without ``after``; ``''`` without either)."""
    if before is None:
        return ""
    return f"{before:{spec}}" if after is None else f"{before:{spec}} -> {after:{spec}}"


def _wrap(text: str, indent: str = "") -> list[str]:
    more = indent + "    "
    return textwrap.wrap(
        text,
        WIDTH,
        initial_indent=indent,
        subsequent_indent=more,
        break_long_words=False,  # names and numbers stay whole
        break_on_hyphens=False,
    )


@dataclass(frozen=True)
class LayerReport:
    """What :func:`convert` did with one layer, and why.

    The fields are named as the printed report's columns: ``name`` (the module's path in the
    model), ``method`` (``'kept'`` in the table when not ``replaced``), ``rank``,
    ``weight_error`` ("weight error"), ``output_error`` ("output error"),
    ``mult_adds_before``/``after`` ("mult-adds", counted on the report's input size); its
    detail lines (:meth:`detail`) give ``module`` (type and sizes), ``parameters_before``/
    ``after``, ``latency_before_ms``/``after_ms``, ``reason`` (for a replaced layer, how its
    rank was chosen and what it saves; for a kept one, why it is kept) and
    ``closed_form_output_error``.

    ``weight_error`` is the relative weight error of the factors before any least-squares
    refit (the whitened ones when the report says ``whitened``); ``output_error`` the relative
    error of the layer's output against the original layer's on the calibration data (with
    the inputs the converted model feeds it), ``closed_form_output_error`` the same before
    the least-squares refit of the second factor.
    Latencies are medians of interleaved batch calls at the report's input size, in ms.
    """

    name: str
    module: str
    replaced: bool
    reason: str
    method: str | None = None
    rank: int | None = None
    weight_error: float | None = None
    parameters_before: int = 0
    parameters_after: int | None = None
    mult_adds_before: int | None = None
    mult_adds_after: int | None = None
    output_error: float | None = None
    closed_form_output_error: float | None = None
    latency_before_ms: float | None = None
    latency_after_ms: float | None = None

    @property
    def speedup(self) -> float | None:
        """Mult-adds before / after (``None`` without an input size)."""
        if self.mult_adds_before is None or not self.mult_adds_after:
            return None
        return self.mult_adds_before / self.mult_adds_after

    @property
    def measured_speedup(self) -> float | None:
        """Measured latency before / after (``None`` unless measured)."""
        if self.latency_before_ms is None or not self.latency_after_ms:
            return None
        return self.latency_before_ms / self.latency_after_ms

    def detail(self) -> str:
        """The report's words on this layer: module, parameters, measured latency (when
        measured), why replaced or kept.

        >>> row = LayerReport("0", "Conv2d 16->32 3x3", False, "grouped (groups=2)",
        ...                   parameters_before=2336)
        >>> row.detail()
        '0 (Conv2d 16->32 3x3, 2,336 parameters) kept: grouped (groups=2)'
        """
        after = self.parameters_after if self.replaced else None
        latency = _arrow(self.latency_before_ms, self.latency_after_ms, ".3f")
        text = (
            f"{self.name} ({self.module}, {_arrow(self.parameters_before, after, ',')} "
            f"parameters{f', {latency} ms' if latency else ''}) "
            f"{'replaced' if self.replaced else 'kept'}: {self.reason}"
        )
        if self.closed_form_output_error is not None:
            text += f"; output error before its refit {self.closed_form_output_error:.2e}"
        return text


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
        rows = [r for r in self.layers if r.mult_adds_before is not None]
        return sum(r.mult_adds_before for r in rows) if rows else None

    @property
    def mult_adds_after(self) -> int | None:
        """The same layers after: converted ones at their new cost, the others unchanged."""
        rows = [r for r in self.layers if r.mult_adds_before is not None]
        if not rows:
            return None
        return sum(r.mult_adds_after if r.replaced else r.mult_adds_before for r in rows)

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
        """A table of the layers' numbers (empty columns left out), a line of words per layer
        (:meth:`LayerReport.detail`) and the totals, within :data:`WIDTH` columns but for
        long layer names."""
        headers = ["name", "method", "rank", "weight error", "output error", "mult-adds"]
        rows = []
        for row in self.layers:
            after = row.replaced
            rows.append(
                [
                    row.name,
                    row.method if after else "kept",
                    str(row.rank) if after else "",
                    f"{row.weight_error:.2e}" if after else "",
                    "" if row.output_error is None else f"{row.output_error:.2e}",
                    _arrow(row.mult_adds_before, row.mult_adds_after if after else None, ","),
                ]
            )
        keep = [i for i in range(len(headers)) if i < 2 or any(r[i] for r in rows)]
        lines = [
            format_table(
                [headers[i] for i in keep],
                [[r[i] for i in keep] for r in rows],
                "ll" + "r" * (len(keep) - 2),
            ),
            "why, per layer (module, parameters, measured latency):"
            if self.model_latency_before_ms is not None
            else "why, per layer (module, parameters):",
        ]
        for row in self.layers:
            lines += _wrap(row.detail(), "  ")
        notes = []
        before, after = self.mult_adds_before, self.mult_adds_after
        if before:
            notes.append(
                f"convertible layers: {before:,} -> {after:,} mult-adds "
                f"({after / before:.1%})"
                + (f", budget {self.budget:.1%}" if self.budget is not None else "")
            )
        if any(r.output_error is not None for r in self.layers):
            notes.append(
                "output error: relative, on the calibration data, with the inputs the converted "
                "model feeds the layer"
            )
        if self.calibration_output_error is not None:
            notes.append(
                f"model output error on the calibration data: "
                f"{self.closed_form_calibration_error:.3e} closed form, "
                f"{self.calibration_output_error:.3e} "
                f"{'data-aware' if self.data_aware else 'kept closed form'}"
            )
            how = ["whitened first factors"] if self.whitened else []
            if self.recalibrated_bn:
                how.append("batch-norm statistics re-estimated on the calibration data")
            if how:
                notes.append(f"    ({'; '.join(how)})")
        if self.refitted:
            notes.append(
                "kept whole, weights refitted to the converted model's inputs: "
                + ", ".join(self.refitted)
            )
        if self.output_relative_error is not None:
            notes.append(
                f"relative output error on the example input: {self.output_relative_error:.3e}"
            )
        if self.model_latency_before_ms is not None:
            notes.append(
                f"model latency (median, {self.threads} thread"
                f"{'s' * (self.threads != 1)}): {self.model_latency_before_ms:.3f} ms "
                f"-> {self.model_latency_after_ms:.3f} ms"
            )
        for note in notes:  # each short but for a long list of names
            lines += _wrap(note) if len(note) > WIDTH else [note]
        return "\n".join(lines)
