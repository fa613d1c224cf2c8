"""Output sizes and padding, the one place they are computed.

``'same'`` padding is TensorFlow/Keras-exact: the output has ``ceil(n / stride)`` elements along
an axis and the total padding ``max((out - 1) * stride + (k - 1) * dilation + 1 - n, 0)`` is
split with the odd extra element at the end (bottom/right). PyTorch's ``padding='same'`` agrees
with it only for stride 1 and puts the odd extra element at the same end.

Examples
--------
>>> from sepconv.padding import resolve_padding, output_size
>>> resolve_padding((12, 12), (5, 5), stride=1, dilation=1, padding="same")
((2, 2), (2, 2))
>>> resolve_padding((224, 224), (3, 3), stride=2, dilation=1, padding="same")
((0, 1), (0, 1))
>>> output_size((12, 12), (5, 5), stride=1, dilation=1, padding="valid")
(8, 8)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ._api import public_dir as _public_dir
from ._checks import (
    SepconvValueError,
    check_choice,
    check_ntuple,
    check_padding,
    check_positive_int,
    check_shape,
)

#: A size for every axis, or one per axis (``kernel_size``, ``stride``, ``dilation``).
IntOrInts = int | tuple[int, ...]
#: ``'valid'``, ``'same'``, an int (every side), one int per axis (symmetric) or one
#: ``(before, after)`` pair per axis.
PaddingLike = str | int | tuple[int, ...] | tuple[tuple[int, int], ...]

__all__ = [
    "IntOrInts",
    "PaddingLike",
    "same_padding",
    "resolve_padding",
    "output_size",
    "PADDING_MODES",
    "ConvPadding",
    "PadPlan",
    "conv_padding",
    "check_fits",
    "zero_taps",
    "flat_pads",
    "padding_of",
    "SpatialPass",
    "spatial_passes",
]


def same_padding(size: int, kernel: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's 'SAME' padding ``(before, after)`` for one axis."""
    size = check_positive_int("size", size)
    kernel = check_positive_int("kernel", kernel)
    stride = check_positive_int("stride", stride)
    dilation = check_positive_int("dilation", dilation)
    out = -(-size // stride)
    effective = (kernel - 1) * dilation + 1
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def resolve_padding(
    input_size: tuple[int, ...],
    kernel_size: IntOrInts,
    *,
    stride: IntOrInts = 1,
    dilation: IntOrInts = 1,
    padding: PaddingLike = "valid",
) -> tuple[tuple[int, int], ...]:
    """Explicit ``(before, after)`` padding per spatial axis for any accepted ``padding``."""
    input_size = check_shape("input_size", input_size, range(1, 33))
    n = len(input_size)
    kernel_size = check_ntuple("kernel_size", kernel_size, n)
    stride = check_ntuple("stride", stride, n)
    dilation = check_ntuple("dilation", dilation, n)
    spec = check_padding("padding", padding, n)
    if spec == "valid":
        return tuple((0, 0) for _ in range(n))
    if spec == "same":
        return tuple(
            same_padding(size, k, s, d)
            for size, k, s, d in zip(input_size, kernel_size, stride, dilation)
        )
    return spec


def output_size(
    input_size: tuple[int, ...],
    kernel_size: IntOrInts,
    *,
    stride: IntOrInts = 1,
    dilation: IntOrInts = 1,
    padding: PaddingLike = "valid",
) -> tuple[int, ...]:
    """Spatial output size of a convolution; raises if the kernel does not fit the input."""
    input_size = check_shape("input_size", input_size, range(1, 33))
    n = len(input_size)
    kernel_size = check_ntuple("kernel_size", kernel_size, n)
    stride = check_ntuple("stride", stride, n)
    dilation = check_ntuple("dilation", dilation, n)
    pads = resolve_padding(
        input_size, kernel_size, stride=stride, dilation=dilation, padding=padding
    )
    check_fits(input_size, kernel_size, dilation, pads, padding=padding)
    return tuple(
        (size + before + after - (k - 1) * d - 1) // s + 1
        for size, k, s, d, (before, after) in zip(input_size, kernel_size, stride, dilation, pads)
    )


# --------------------------------------------------------------------------------------------
# The padding of one convolution, resolved once when the layer is built
# --------------------------------------------------------------------------------------------
#: The accepted ``padding_mode`` values, as ``torch.nn.Conv2d``.
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")

Pads = tuple[tuple[int, int], ...]


def check_fits(
    input_size: tuple[int, ...],
    kernel_size: tuple[int, ...],
    dilation: tuple[int, ...],
    pads: Pads,
    padding_mode: str = "zeros",
    *,
    padding: Any = None,
) -> None:
    """Raise ``ValueError`` unless the kernel fits the padded input and ``padding_mode`` can pad.

    ``'reflect'`` needs every pad smaller than the input, ``'circular'`` no larger (as
    ``torch.nn.functional.pad``). ``padding``: the argument as the caller gave it, for the
    message (default: the pair of that axis).

    >>> check_fits((4,), (7,), (1,), ((1, 1),))
    Traceback (most recent call last):
    ...
    sepconv._checks.SepconvValueError: `kernel_size` 7 with dilation 1 spans 7 elements along \
spatial axis 0, more than the padded input's 6 (input size 4, padding (1, 1)); use \
padding='same' or a larger input
    """
    for axis, (size, k, d, (before, after)) in enumerate(
        zip(input_size, kernel_size, dilation, pads)
    ):
        size = int(size)
        effective = (k - 1) * d + 1
        if size + before + after < effective:
            raise SepconvValueError(
                f"`kernel_size` {k} with dilation {d} spans {effective} elements along spatial "
                f"axis {axis}, more than the padded input's {size + before + after} "
                f"(input size {size}, padding "
                f"{(before, after) if padding is None else padding!r}); "
                + (
                    "use a larger input"
                    if padding == "same" or size == 0
                    else "use padding='same' or a larger input"
                )
            )
        if padding_mode == "reflect" and max(before, after) >= size:
            raise SepconvValueError(
                f"`padding_mode` 'reflect' needs a padding smaller than the input along every "
                f"axis, got padding {(before, after)} for size {size} along spatial axis {axis}; "
                f"use 'replicate' or a larger input"
            )
        if padding_mode == "circular" and max(before, after) > size:
            raise SepconvValueError(
                f"`padding_mode` 'circular' needs a padding no larger than the input along "
                f"every axis, got padding {(before, after)} for size {size} along spatial axis "
                f"{axis}"
            )


def zero_taps(pads: Pads, dilation: tuple[int, ...]) -> tuple[tuple[int, ...], Pads] | None:
    """Symmetric padding plus zero taps giving the products of asymmetric zero padding.

    Padding ``(b, a)`` along an axis equals padding ``p = max(b, a)`` on both sides with
    ``(p - b) / d`` zero taps added before the kernel and ``(p - a) / d`` after it (dilation
    ``d``): the output reads the same input elements with the same weights, and the extra
    products are with zeros. Returns ``(symmetric pads, (taps before, taps after) per axis)``,
    or None when the taps would fall off the dilation grid.

    >>> zero_taps(((0, 1), (1, 1)), (1, 1))      # Keras 'same', stride 2, even height
    ((1, 1), ((1, 0), (0, 0)))
    >>> zero_taps(((0, 1),), (2,)) is None
    True
    """
    sym = tuple(max(pair) for pair in pads)
    if not all(
        (p - before) % d == 0 and (p - after) % d == 0
        for p, (before, after), d in zip(sym, pads, dilation)
    ):
        return None
    return sym, tuple(
        ((p - before) // d, (p - after) // d) for p, (before, after), d in zip(sym, pads, dilation)
    )


def flat_pads(pads: Pads) -> tuple[int, ...]:
    """``(before, after)`` per axis, first axis first, in ``torch.nn.functional.pad``'s order
    (last axis first).

    >>> flat_pads(((0, 1), (2, 3)))
    (2, 3, 0, 1)
    """
    return tuple(p for pair in reversed(pads) for p in pair)


class PadPlan(NamedTuple):
    """How a convolution pads one input size (see :meth:`ConvPadding.plan`).

    ``inside``: the convolution's own symmetric zero padding per axis, when that is all it
    takes. ``tapped``: ``(symmetric padding, zero taps in flat_pads order)`` giving the products
    of asymmetric zero padding (:func:`zero_taps`). ``outside``: amounts for
    ``torch.nn.functional.pad`` (None when nothing is padded).
    """

    inside: tuple[int, ...] | None
    tapped: tuple[tuple[int, ...], tuple[int, ...]] | None
    outside: tuple[int, ...] | None


@dataclass(frozen=True)
class ConvPadding:
    """The padding policy of one convolution, resolved once when the layer is built.

    As timm's ``get_padding_value``: :attr:`static` holds the ``(before, after)`` pairs when
    they do not depend on the input size (explicit padding, ``'valid'``, ``'same'`` with
    stride 1 or a one-element kernel); otherwise ``'same'`` is resolved per input size by
    :meth:`pads` (TensorFlow's rule, :func:`same_padding`). Build it with
    :func:`conv_padding`, which checks the arguments.

    Attributes
    ----------
    kernel_size, stride, dilation : tuple of int
        One entry per spatial axis.
    spec : str or tuple of (int, int)
        ``'valid'``, ``'same'`` or ``(before, after)`` per axis.
    mode : str
        ``padding_mode``: one of :data:`PADDING_MODES`.
    static : tuple of (int, int) or None
        The pads when they are the same for every input size.
    lifted : ConvPadding or None
        For one spatial axis: this policy with a leading axis of one element (a 1-D
        convolution run as 2-D).
    """

    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    spec: str | Pads
    mode: str = "zeros"
    static: Pads | None = field(init=False, compare=False)
    lifted: ConvPadding | None = field(init=False, compare=False, repr=False)
    _plans: dict = field(init=False, compare=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        if self.spec == "valid":
            static: Pads | None = tuple((0, 0) for _ in self.kernel_size)
        elif self.spec == "same":
            # The total 'same' padding depends on the size modulo the stride, except with
            # stride 1 (total (k - 1) * d) or a one-element kernel (total 0).
            if all(s == 1 or k == 1 for k, s in zip(self.kernel_size, self.stride)):
                static = tuple(
                    same_padding(1, k, 1, d) if k > 1 else (0, 0)
                    for k, d in zip(self.kernel_size, self.dilation)
                )
            else:
                static = None
        else:
            static = self.spec  # type: ignore[assignment]
        object.__setattr__(self, "static", static)
        lifted = None
        if len(self.kernel_size) == 1:
            spec = self.spec if isinstance(self.spec, str) else ((0, 0), *self.spec)
            lifted = ConvPadding(
                (1, *self.kernel_size), (1, *self.stride), (1, *self.dilation), spec, self.mode
            )
        object.__setattr__(self, "lifted", lifted)

    @property
    def attribute(self) -> str | tuple:
        """``nn.Conv2d``-style ``padding``: the string, symmetric ints, or the pairs."""
        if isinstance(self.spec, str):
            return self.spec
        if all(before == after for before, after in self.spec):
            return tuple(before for before, _ in self.spec)
        return tuple(self.spec)

    def pads(self, input_size: tuple[int, ...]) -> Pads:
        """``(before, after)`` per spatial axis for an input of these spatial sizes."""
        if self.static is not None:
            return self.static
        return tuple(
            same_padding(int(size), k, s, d)
            for size, k, s, d in zip(input_size, self.kernel_size, self.stride, self.dilation)
        )

    def plan(self, input_size: tuple[int, ...], *, cache: bool = True) -> PadPlan:
        """The checked :class:`PadPlan` for this input size (memoised unless ``cache=False``).

        Raises ``ValueError`` when the kernel does not fit (:func:`check_fits`).
        """
        if cache:
            found = self._plans.get(input_size)
            if found is not None:
                return found
        pads = self.pads(input_size)
        check_fits(input_size, self.kernel_size, self.dilation, pads, self.mode)
        outside = flat_pads(pads) if any(b or a for b, a in pads) else None
        if self.mode != "zeros":
            plan = PadPlan(None, None, outside)
        elif all(before == after for before, after in pads):
            plan = PadPlan(tuple(before for before, _ in pads), None, None)
        else:
            taps = zero_taps(pads, self.dilation)
            plan = PadPlan(None, None if taps is None else (taps[0], flat_pads(taps[1])), outside)
        if cache and len(self._plans) < 1024:
            self._plans[input_size] = plan
        return plan

    def symbolic_pads(self, input_size: tuple[Any, ...], clamp: Any) -> tuple[Any, ...]:
        """:meth:`pads` in :func:`flat_pads` order for sizes that are graph values.

        While an exporter records a graph, the sizes are symbols or traced scalars and the
        'same' arithmetic is recorded with them, so the graph pads every input size right.
        ``clamp(value)`` must give ``max(value, 0)`` for such a value.
        """
        pairs = []
        for size, k, s, d, static in zip(
            input_size,
            self.kernel_size,
            self.stride,
            self.dilation,
            self.static or (None,) * len(self.stride),
        ):
            if static is not None or s == 1 or k == 1:
                pairs.append(static or (same_padding(1, k, 1, d) if k > 1 else (0, 0)))
                continue
            effective = (k - 1) * d + 1
            total = ((size + s - 1) // s - 1) * s + effective - size
            if effective < s:  # the total can be negative: keep it at 0
                total = clamp(total)
            pairs.append((total // 2, total - total // 2))
        return flat_pads(tuple(pairs))


def conv_padding(
    kernel_size: IntOrInts,
    stride: IntOrInts = 1,
    padding: PaddingLike = "valid",
    dilation: IntOrInts = 1,
    padding_mode: str = "zeros",
    *,
    n: int,
) -> ConvPadding:
    """Check a convolution's settings and resolve its padding policy (:class:`ConvPadding`).

    Raises ``ValueError``/``TypeError`` naming the argument, the value and what is accepted.

    >>> p = conv_padding(3, stride=2, padding="same", n=2)
    >>> p.static is None, p.pads((224, 223))
    (True, ((0, 1), (1, 1)))
    >>> conv_padding(3, padding="same", n=2).static
    ((1, 1), (1, 1))
    """
    return ConvPadding(
        check_ntuple("kernel_size", kernel_size, n),
        check_ntuple("stride", stride, n),
        check_ntuple("dilation", dilation, n),
        check_padding("padding", padding, n),
        check_choice("padding_mode", padding_mode, PADDING_MODES),
    )


def padding_of(conv: Any) -> str | Pads:
    """The padding a convolution module applies, in Keras terms: ``'valid'``, ``'same'`` or pairs.

    The protocol every reader of a layer's padding follows (conversion, inference, profiling):
    a module that pads in its own way declares it with a ``keras_padding`` attribute (sepconv's
    layers and ``sepconv.models.Conv2dSame`` do); a plain ``nn.ConvNd`` holds ``'valid'``,
    ``'same'`` (stride 1 only, where PyTorch and TensorFlow agree) or symmetric ints in
    ``padding``.

    >>> from types import SimpleNamespace
    >>> padding_of(SimpleNamespace(padding=(1, 2)))
    ((1, 1), (2, 2))
    >>> padding_of(SimpleNamespace(padding=0, keras_padding="same"))
    'same'
    """
    declared = getattr(conv, "keras_padding", None)
    if declared is not None:
        return declared
    padding = conv.padding
    if isinstance(padding, str):
        return padding
    return tuple((int(p), int(p)) for p in padding)


# --------------------------------------------------------------------------------------------
# The two passes of a spatially separable convolution
# --------------------------------------------------------------------------------------------
class SpatialPass(NamedTuple):
    """One pass of a spatially separable 2-D convolution: ``'column'`` (``kh x 1``) or
    ``'row'`` (``1 x kw``), with the stride, dilation and padding of its own axis."""

    name: str
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    padding: str | Pads


def spatial_passes(
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    padding: str | Pads,
    order: str = "column_first",
) -> tuple[SpatialPass, SpatialPass]:
    """The two passes of a ``kh x kw`` spatially separable convolution, in the order they run.

    Each pass takes its own axis's stride, dilation and padding, so the output has the shape of
    the ``kh x kw`` convolution: ``'same'`` and ``'valid'`` stay as they are (per axis, 'same'
    of a ``kh x 1`` kernel pads rows only), ``(before, after)`` pairs are split by axis. The one
    home of this geometry for :mod:`sepconv.cost`, :mod:`sepconv.reference` and
    :mod:`sepconv.nn` (Szegedy et al. 2016, the ``n x 1`` / ``1 x n`` factorization).

    >>> [p.name for p in spatial_passes((3, 5), (2, 1), (1, 1), "same", "row_first")]
    ['row', 'column']
    >>> spatial_passes((3, 5), (1, 1), (1, 1), ((1, 1), (2, 2)))[0]
    SpatialPass(name='column', kernel_size=(3, 1), stride=(1, 1), dilation=(1, 1), \
padding=((1, 1), (0, 0)))
    """
    (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
    if isinstance(padding, str):
        column_padding: str | Pads = padding
        row_padding: str | Pads = padding
    else:
        column_padding, row_padding = (padding[0], (0, 0)), ((0, 0), padding[1])
    column = SpatialPass("column", (kh, 1), (sh, 1), (dh, 1), column_padding)
    row = SpatialPass("row", (1, kw), (1, sw), (1, dw), row_padding)
    return (column, row) if order == "column_first" else (row, column)


__dir__ = _public_dir(globals())
