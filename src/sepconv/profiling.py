"""Per-layer cost tables of PyTorch models: :func:`profile`.

What is counted
---------------
- **mult-adds**: scalar multiplications, the MobileNet paper's unit; FLOPs are
  ``2 x mult-adds`` (the convention of ``torch.utils.flop_counter``). Convolutions (1-D, 2-D,
  3-D, grouped and depthwise included), ``nn.Linear`` and sepconv's layers are counted by
  :mod:`sepconv.cost` from the shapes seen in one forward pass. Every other layer gets the count
  of ``torch.utils.flop_counter.FlopCounterMode`` (matrix products, attention, transposed
  convolutions, ...), which gives 0 to batch normalization, activations, pooling and dropout;
  so does the paper, which counts convolutions and the fully connected layer only. Operations
  a model runs outside any leaf module (``torch.matmul`` in a ``forward``) form one extra row.
- **parameters**: elements of learnable tensors (``nn.Parameter``), each counted once even when
  shared. Buffers (batch norm's running mean and variance) are not parameters; Keras counts them
  as "non-trainable params", the paper does not count them.

Examples
--------
>>> import torch
>>> from sepconv import profile
>>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 256, 5, bias=False), torch.nn.Flatten(),
...                           torch.nn.Linear(256 * 8 * 8, 10))
>>> p = profile(net, (1, 3, 12, 12))
>>> [(row.name, row.kind, row.mult_adds) for row in p.rows]
[('0', 'Conv 5x5', 1228800), ('1', 'Other', 0), ('2', 'Fully Connected', 163840)]
>>> p.total_mult_adds, p.total_parameters, p.torch_flops == 2 * p.total_mult_adds
(1392640, 183050, True)
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from . import cost as _cost
from ._api import public_dir as _public_dir
from ._checks import SepconvTypeError, SepconvValueError, check_shape, describe
from ._text import format_table, markdown_table, millions, percent, thousands
from .padding import padding_of

__all__ = ["profile", "Profile", "LayerProfile", "KindSummary"]

#: Where a row's mult-adds come from.
SOURCE_COST = "sepconv.cost"
SOURCE_COUNTER = "torch.utils.flop_counter"


@dataclass(frozen=True)
class LayerProfile:
    """One row of a :class:`Profile`: a leaf module (or the operations outside every leaf).

    Attributes
    ----------
    name : str
        Qualified name in the model (``'blocks.0.conv.depthwise'``).
    type : str
        Class name (``'DepthwiseConv2d'``).
    kind : str
        Category as in the paper's Table 2: ``'Conv 3x3'``, ``'Conv DW 3x3'``, ``'Conv 1x1'``,
        ``'Fully Connected'``, or ``'Norm'``, ``'Activation'``, ``'Pooling'``, ``'Dropout'``,
        ``'Other'``.
    input_shape, output_shape : tuple of int
        Torch shapes ``(N, C, ...)`` of the first call.
    parameters : int
        Learnable elements owned by this module (not counted again for another row).
    mult_adds : int
        Scalar multiplications of all its calls, for the whole batch.
    share : float
        ``mult_adds`` as a fraction of the model's total (0 to 1).
    source : str
        ``'sepconv.cost'`` or ``'torch.utils.flop_counter'``.
    counter_flops : int
        What ``FlopCounterMode`` counted for this row (``2 * mult_adds`` when they agree).
    calls : int
        Times the module ran in the forward pass.
    cost : sepconv.cost.Cost or None
        The detailed cost, for rows counted by :mod:`sepconv.cost`.
    """

    name: str
    type: str
    kind: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    parameters: int
    mult_adds: int
    share: float
    source: str
    counter_flops: int
    calls: int = 1
    cost: _cost.Cost | None = field(default=None, repr=False)

    @property
    def flops(self) -> int:
        """``2 * mult_adds``."""
        return 2 * self.mult_adds

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "cost"}
        data["input_shape"] = list(self.input_shape)
        data["output_shape"] = list(self.output_shape)
        data["flops"] = self.flops
        return data


@dataclass(frozen=True)
class KindSummary:
    """Totals of one layer kind (a row of the paper's Table 2)."""

    kind: str
    layers: int
    mult_adds: int
    parameters: int
    mult_add_share: float
    parameter_share: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _fmt_shape(shape: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in shape)


@dataclass(frozen=True)
class Profile:
    """The result of :func:`profile`: rows, totals and summaries.

    Attributes
    ----------
    model : str
        Class name of the model.
    input_size : tuple of int
        The input shape profiled, ``(N, C, *spatial)``.
    rows : tuple of LayerProfile
        One per leaf module that ran, in execution order.
    total_parameters : int
        Learnable elements of the whole model, each counted once.
    total_mult_adds : int
        Sum of the rows' mult-adds, for the whole batch.
    torch_flops : int
        Total of ``torch.utils.flop_counter.FlopCounterMode`` over the same forward pass
        (an independent check: equals ``2 * total_mult_adds`` when both agree).
    """

    model: str
    input_size: tuple[int, ...]
    rows: tuple[LayerProfile, ...]
    total_parameters: int
    total_mult_adds: int
    torch_flops: int

    @property
    def total_flops(self) -> int:
        """``2 * total_mult_adds``."""
        return 2 * self.total_mult_adds

    def by_kind(self, kinds: tuple[str, ...] | list[str] | None = None) -> list[KindSummary]:
        """Totals per layer kind with their shares, as the paper's Table 2.

        Parameters
        ----------
        kinds : sequence of str, optional
            Kinds to include; shares are fractions of these kinds' totals. Default: every kind,
            shares of the whole model (parameters of modules that never ran excluded).

        Returns
        -------
        list of KindSummary
            Sorted by mult-adds, largest first.

        Examples
        --------
        >>> from sepconv import profile
        >>> from sepconv.models import mobilenet_v1
        >>> table2 = ("Conv 1x1", "Conv DW 3x3", "Conv 3x3", "Fully Connected")
        >>> for s in profile(mobilenet_v1(), (1, 3, 224, 224)).by_kind(table2):
        ...     print(f"{s.kind:16}{100 * s.mult_add_share:6.2f}%{100 * s.parameter_share:6.2f}%")
        Conv 1x1         94.86% 74.57%
        Conv DW 3x3       3.06%  1.06%
        Conv 3x3          1.91%  0.02%
        Fully Connected   0.18% 24.35%
        """
        selected = [r for r in self.rows if kinds is None or r.kind in kinds]
        if kinds is not None:
            unknown = sorted(set(kinds) - {r.kind for r in self.rows})
            if unknown:
                present = sorted({r.kind for r in self.rows})
                raise SepconvValueError(
                    f"`kinds` must name kinds present in the profile ({', '.join(present)}), "
                    f"got {', '.join(map(repr, unknown))}"
                )
        total_ma = sum(r.mult_adds for r in selected) or 1
        total_p = sum(r.parameters for r in selected) or 1
        groups: dict[str, list[LayerProfile]] = {}
        for row in selected:
            groups.setdefault(row.kind, []).append(row)
        out = [
            KindSummary(
                kind,
                len(rows),
                sum(r.mult_adds for r in rows),
                sum(r.parameters for r in rows),
                sum(r.mult_adds for r in rows) / total_ma,
                sum(r.parameters for r in rows) / total_p,
            )
            for kind, rows in groups.items()
        ]
        return sorted(out, key=lambda s: (-s.mult_adds, -s.parameters, s.kind))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready ``dict``: model, input size, rows, totals and the per-kind summary."""
        return {
            "model": self.model,
            "input_size": list(self.input_size),
            "rows": [row.to_dict() for row in self.rows],
            "totals": {
                "parameters": self.total_parameters,
                "mult_adds": self.total_mult_adds,
                "flops": self.total_flops,
                "torch_flops": self.torch_flops,
            },
            "by_kind": [s.to_dict() for s in self.by_kind()],
            "units": "mult-adds are scalar multiplications for the whole batch; "
            "FLOPs = 2 x mult-adds",
        }

    def _table(self, skip_empty: bool) -> tuple[list[str], list[list[str]]]:
        headers = ["layer", "type", "output", "parameters", "mult-adds", "share"]
        rows = []
        for row in self.rows:
            if skip_empty and row.mult_adds == 0 and row.parameters == 0:
                continue
            rows.append(
                [
                    row.name,
                    row.type,
                    _fmt_shape(row.output_shape[1:]),
                    thousands(row.parameters),
                    thousands(row.mult_adds),
                    percent(row.share),
                ]
            )
        rows.append(
            [
                "total",
                "",
                "",
                thousands(self.total_parameters),
                thousands(self.total_mult_adds),
                percent(1.0),
            ]
        )
        return headers, rows

    def summary_line(self) -> str:
        """One line: model, input, parameters, mult-adds and FLOPs."""
        return (
            f"{self.model} on input {_fmt_shape(self.input_size)}: "
            f"{self.total_parameters:,} parameters ({millions(self.total_parameters)}), "
            f"{self.total_mult_adds:,} mult-adds ({millions(self.total_mult_adds)}), "
            f"FLOPs = 2 x mult-adds = {self.total_flops:,}"
        )

    def to_text(self, *, skip_empty: bool = False) -> str:
        """Plain-text table (one row per layer, then the total) and a summary line.

        ``skip_empty=True`` leaves out rows with no parameters and no mult-adds (activations,
        pooling, dropout).
        """
        headers, rows = self._table(skip_empty)
        table = format_table(headers, rows[:-1], "lllrrr", footer=rows[-1])
        return "\n".join([table, "", self.summary_line()])

    def to_markdown(self, *, skip_empty: bool = False) -> str:
        """Markdown table (one row per layer, then the total in bold) and a summary line.

        Examples
        --------
        >>> import torch
        >>> from sepconv import profile
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU())
        >>> print(profile(net, (1, 3, 6, 6)).to_markdown())
        | layer | type | output | parameters | mult-adds | share |
        |---|---|---|---:|---:|---:|
        | 0 | Conv2d | 8x4x4 | 224 | 3,456 | 100.00% |
        | 1 | ReLU | 8x4x4 | 0 | 0 | 0.00% |
        | **total** |  |  | **224** | **3,456** | **100.00%** |
        <BLANKLINE>
        Sequential on input 1x3x6x6: 224 parameters (0.00M), 3,456 mult-adds (0.00M), FLOPs = 2 x mult-adds = 6,912
        """  # noqa: E501
        headers, rows = self._table(skip_empty)
        total = ["**total**", "", "", *(f"**{cell}**" for cell in rows[-1][3:])]
        table = markdown_table(headers, [*rows[:-1], total], "lllrrr")
        return "\n".join([table, "", self.summary_line()])

    def __str__(self) -> str:
        return self.to_text()


def _kind(module: Any) -> str:
    from torch import nn

    if isinstance(module, nn.modules.conv._ConvNd):
        size = "x".join(str(k) for k in module.kernel_size)
        if getattr(module, "transposed", False):
            return f"Conv Transpose {size}"
        if module.groups > 1 and module.groups == module.in_channels:
            return f"Conv DW {size}"
        if module.groups > 1:
            return f"Conv {size} (groups={module.groups})"
        return f"Conv {size}"
    if isinstance(module, nn.Linear):
        return "Fully Connected"
    if isinstance(
        module, nn.modules.batchnorm._NormBase | nn.GroupNorm | nn.LayerNorm | nn.LocalResponseNorm
    ):
        return "Norm"
    if type(module).__module__ == "torch.nn.modules.activation" or isinstance(
        module, nn.ReLU | nn.ReLU6 | nn.GELU | nn.SiLU | nn.Hardswish | nn.Sigmoid | nn.Tanh
    ):
        return "Activation"
    if type(module).__module__ == "torch.nn.modules.pooling":
        return "Pooling"
    if isinstance(module, nn.modules.dropout._DropoutNd):
        return "Dropout"
    return "Other"


def _conv_cost(
    module: Any, input_shape: tuple[int, ...], output_shape: tuple[int, ...]
) -> _cost.Cost | None:
    """Exact cost of one call of a convolution from its input and output shapes."""
    batch, channels, *spatial = input_shape
    expected = (*output_shape[2:], output_shape[1])
    candidates = []
    own = getattr(module, "cost", None)
    if callable(own):
        candidates.append(lambda: own(tuple(input_shape)))
    common = {
        "stride": module.stride,
        "dilation": module.dilation,
        "groups": module.groups,
        "bias": module.bias is not None,
        "batch": batch,
    }
    shape = (*spatial, channels)
    # The padding the module declares (sepconv.padding.padding_of), then Keras 'same' for a
    # foreign layer that pads inside its forward (such as timm's Conv2dSame).
    for padding in (padding_of(module), "same"):
        candidates.append(
            lambda padding=padding: _cost.conv(
                shape, module.kernel_size, module.out_channels, padding=padding, **common
            )
        )
    for make in candidates:
        try:
            result = make()
        except (ValueError, TypeError):
            continue
        if tuple(result.output_shape) == expected and result.batch == batch:
            return result
    return None


def _linear_cost(module: Any, input_shape: tuple[int, ...]) -> _cost.Cost:
    """``nn.Linear`` as a pointwise convolution over the positions of its input."""
    batch = input_shape[0] if len(input_shape) > 1 else 1
    positions = math.prod(input_shape[1:-1]) if len(input_shape) > 2 else 1
    result = _cost.pointwise(
        (positions, module.in_features),
        module.out_features,
        bias=module.bias is not None,
        batch=batch,
    )
    return dataclasses.replace(
        result, operation=f"linear {module.in_features}->{module.out_features}"
    )


def _known_cost(
    module: Any, input_shape: tuple[int, ...], output_shape: tuple[int, ...]
) -> _cost.Cost | None:
    from torch import nn

    if isinstance(module, nn.modules.conv._ConvNd) and not module.transposed:
        if len(input_shape) == len(module.kernel_size) + 2:
            return _conv_cost(module, input_shape, output_shape)
        return None
    if isinstance(module, nn.Linear) and len(input_shape) >= 1:
        return _linear_cost(module, input_shape)
    return None


def _first_tensor(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, list | tuple):
        for item in value:
            found = _first_tensor(item)
            if found is not None:
                return found
    if isinstance(value, dict):
        for item in value.values():
            found = _first_tensor(item)
            if found is not None:
                return found
    return None


def profile(model: Any, input_size: Any) -> Profile:
    """Profile ``model`` on an input of shape ``input_size``: parameters and mult-adds per layer.

    Runs one forward pass on zeros in eval mode without gradients (the model's mode is restored
    afterwards), under ``torch.utils.flop_counter.FlopCounterMode``, with hooks on every leaf
    module. See the module documentation for what is counted.

    Parameters
    ----------
    model : torch.nn.Module
    input_size : tuple of int
        The full input shape with the batch dimension, ``(N, C, *spatial)``, e.g.
        ``(1, 3, 224, 224)``. Counts cover the whole batch.

    Returns
    -------
    Profile
        ``rows`` (name, type, kind, output shape, parameters, mult-adds, share, ...),
        ``total_parameters``, ``total_mult_adds``, ``torch_flops``; ``to_text()``,
        ``to_markdown()``, ``to_dict()`` and ``by_kind()`` (the paper's Table 2).

    Raises
    ------
    TypeError
        If ``model`` is not an ``nn.Module``.
    ValueError
        If ``input_size`` is not a shape of 2 to 6 positive integers.

    References
    ----------
    A. G. Howard et al., "MobileNets", arXiv:1704.04861, 2017: Tables 1, 2, 4, 6 and 7.

    Examples
    --------
    >>> from sepconv import profile
    >>> from sepconv.models import mobilenet_v1
    >>> p = profile(mobilenet_v1(width_multiplier=0.5, resolution=160), (1, 3, 160, 160))
    >>> p.total_mult_adds, p.total_parameters
    (76524800, 1331592)
    >>> row = p.rows[3]
    >>> row.name, row.kind, row.output_shape, row.mult_adds
    ('blocks.0.conv.depthwise', 'Conv DW 3x3', (1, 16, 80, 80), 921600)
    """
    import torch
    from torch import nn
    from torch.utils.flop_counter import FlopCounterMode

    from .nn.functional import plain_composition

    if not isinstance(model, nn.Module):
        raise SepconvTypeError(f"`model` must be a torch.nn.Module, got {describe(model)}")
    input_size = check_shape("input_size", input_size, range(2, 7), what="sizes (N, C, *spatial)")
    reference = next(iter(model.parameters()), None)
    if reference is None:
        reference = next(iter(model.buffers()), None)
    dtype = (
        reference.dtype
        if reference is not None and reference.is_floating_point()
        else torch.get_default_dtype()
    )
    device = reference.device if reference is not None else torch.device("cpu")
    x = torch.zeros(input_size, dtype=dtype, device=device)

    names = {module: name for name, module in model.named_modules(remove_duplicate=True)}
    leaves = [m for m in names if not m._modules or m._parameters]
    records: dict[Any, dict[str, Any]] = {}
    order: list[Any] = []
    counter = FlopCounterMode(display=False)

    def counted() -> int:
        return sum(counter.flop_counts["Global"].values())

    def pre_hook(module: Any, args: Any) -> None:
        module.__dict__["_sepconv_profile_start"] = counted()

    def post_hook(module: Any, args: Any, output: Any) -> None:
        start = module.__dict__.pop("_sepconv_profile_start", counted())
        flops = counted() - start
        inp, out = _first_tensor(args), _first_tensor(output)
        in_shape = tuple(inp.shape) if inp is not None else ()
        out_shape = tuple(out.shape) if out is not None else ()
        record = records.get(module)
        if record is None:
            record = records[module] = {
                "in": in_shape,
                "out": out_shape,
                "flops": 0,
                "calls": 0,
                "cost": None,
                "mult_adds": 0,
                "known": True,
            }
            order.append(module)
        record["flops"] += flops
        record["calls"] += 1
        known = _known_cost(module, in_shape, out_shape) if module._modules == {} else None
        if known is None:
            record["known"] = False
        else:
            record["cost"] = known if record["cost"] is None else record["cost"]
            record["mult_adds"] += known.multiplications

    handles = []
    for module in leaves:
        handles.append(module.register_forward_pre_hook(pre_hook))
        handles.append(module.register_forward_hook(post_hook))
    was_training = model.training
    try:
        model.eval()
        # sepconv's layers run the convolutions sepconv.cost counts (plain_composition).
        with torch.no_grad(), plain_composition(), counter:
            model(x)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)

    total_flops = counted()
    seen: set[int] = set()

    def own_parameters(module: Any) -> int:
        count = 0
        for p in module._parameters.values():
            if p is not None and id(p) not in seen:
                seen.add(id(p))
                count += p.numel()
        return count

    # Modules that have children get a row only for their own parameters and for the operations
    # their ``forward`` runs outside the recorded modules nested in them.
    exclusive = {module: records[module]["flops"] for module in order}
    recorded_names = {names[m]: m for m in order}
    for module in order:
        if not module._modules:
            continue
        prefix = f"{names[module]}." if names[module] else ""
        for name, inner in recorded_names.items():
            if inner is module or not name.startswith(prefix):
                continue
            between = any(
                other != names[module]
                and name.startswith(f"{other}.")
                and other.startswith(prefix)
                and recorded_names[other]._modules
                for other in recorded_names
            )
            if not between:
                exclusive[module] -= records[inner]["flops"]

    raw = []
    for module in order:
        record = records[module]
        if record["known"]:
            mult_adds, source = record["mult_adds"], SOURCE_COST
        else:
            mult_adds, source = exclusive[module] // 2, SOURCE_COUNTER
        raw.append(
            dict(
                name=names[module] or type(module).__name__,
                type=type(module).__name__,
                kind=_kind(module),
                input_shape=record["in"],
                output_shape=record["out"],
                parameters=own_parameters(module),
                mult_adds=mult_adds,
                source=source,
                counter_flops=exclusive[module],
                calls=record["calls"],
                cost=record["cost"],
            )
        )
    outside = total_flops - sum(exclusive.values())
    if outside > 0:
        raw.append(
            dict(
                name="(outside leaf modules)",
                type="functional",
                kind="Other",
                input_shape=(),
                output_shape=(),
                parameters=0,
                mult_adds=outside // 2,
                source=SOURCE_COUNTER,
                counter_flops=outside,
                calls=1,
                cost=None,
            )
        )
    total_mult_adds = sum(r["mult_adds"] for r in raw)
    total_parameters = sum(p.numel() for p in model.parameters())
    rows = tuple(
        LayerProfile(share=r["mult_adds"] / total_mult_adds if total_mult_adds else 0.0, **r)
        for r in raw
    )
    return Profile(
        model=type(model).__name__,
        input_size=tuple(input_size),
        rows=rows,
        total_parameters=total_parameters,
        total_mult_adds=total_mult_adds,
        torch_flops=total_flops,
    )


__dir__ = _public_dir(globals())
