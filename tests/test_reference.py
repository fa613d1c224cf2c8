"""sepconv.reference against torch.nn.functional, Keras 3 and the cost model."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from sepconv import cost, reference
from sepconv.reference import Counter

pytestmark = pytest.mark.usefixtures("torch_single_thread")

os.environ.setdefault("KERAS_BACKEND", "torch")


# --------------------------------------------------------------------------------------------
# Random configurations, and the same operations composed from torch.nn.functional.conv2d


def tf_same(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's SAME padding, written out here so the test does not trust sepconv.padding."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


@dataclass
class Config:
    seed: int
    batch: int | None  # None: unbatched (H, W, C) input
    height: int
    width: int
    in_channels: int
    mid_channels: int
    out_channels: int
    groups: int
    multiplier: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    padding: Any  # exactly what is passed to sepconv
    pads: tuple[tuple[int, int], tuple[int, int]]  # the same, resolved by this test
    order: str
    dtype: type

    @property
    def fits(self) -> bool:
        sizes = (self.height, self.width)
        return all(
            size + before + after >= (k - 1) * d + 1
            for size, (before, after), k, d in zip(sizes, self.pads, self.kernel, self.dilation)
        )

    @property
    def input_shape(self) -> tuple[int, ...]:
        hwc = (self.height, self.width, self.in_channels)
        return hwc if self.batch is None else (self.batch, *hwc)

    def __str__(self) -> str:
        return (
            f"seed{self.seed}-{self.height}x{self.width}x{self.in_channels}"
            f"-k{self.kernel[0]}x{self.kernel[1]}-s{self.stride[0]}{self.stride[1]}"
            f"-d{self.dilation[0]}{self.dilation[1]}-g{self.groups}-m{self.multiplier}"
            f"-{self.dtype.__name__}"
        )


def make_config(seed: int) -> Config:
    rng = np.random.default_rng(seed)
    height, width = (int(v) for v in rng.integers(1, 21, 2))
    kernel = tuple(int(v) for v in rng.integers(1, 8, 2))
    stride = tuple(int(v) for v in rng.integers(1, 4, 2))
    dilation = tuple(int(v) for v in rng.integers(1, 4, 2))
    in_channels = int(rng.integers(1, 9))
    groups = int(rng.choice([g for g in range(1, in_channels + 1) if in_channels % g == 0]))
    out_channels = groups * int(rng.integers(1, 8 // groups + 1))
    mid_channels = groups * int(rng.integers(1, 8 // groups + 1))
    kind = ["valid", "same", "int", "per_axis", "pairs"][seed % 5]
    if kind == "valid":
        padding: Any = "valid"
        pads = ((0, 0), (0, 0))
    elif kind == "same":
        padding = "same"
        pads = tuple(
            tf_same(n, k, s, d) for n, k, s, d in zip((height, width), kernel, stride, dilation)
        )
    elif kind == "int":
        padding = int(rng.integers(0, 4))
        pads = ((padding, padding), (padding, padding))
    elif kind == "per_axis":
        padding = tuple(int(v) for v in rng.integers(0, 4, 2))
        pads = tuple((p, p) for p in padding)
    else:
        padding = tuple(tuple(int(v) for v in rng.integers(0, 4, 2)) for _ in range(2))
        pads = padding
    batch = None if rng.random() < 0.2 else int(rng.integers(1, 3))
    return Config(
        seed,
        batch,
        height,
        width,
        in_channels,
        mid_channels,
        out_channels,
        groups,
        int(rng.integers(1, 4)),
        kernel,
        stride,
        dilation,
        padding,
        pads,
        str(rng.choice(["column_first", "row_first"])),
        np.float64 if seed % 2 else np.float32,
    )


def _configs(count: int) -> tuple[list[Config], list[Config]]:
    fitting, misfits = [], []
    seed = 0
    while len(fitting) < count:
        config = make_config(seed)
        (fitting if config.fits else misfits).append(config)
        seed += 1
    return fitting, misfits


CONFIGS, MISFITS = _configs(220)


def random_arrays(config: Config, *shapes: tuple[int, ...]) -> list[np.ndarray]:
    rng = np.random.default_rng(1000 + config.seed)
    return [rng.standard_normal(shape).astype(config.dtype) for shape in shapes]


def nchw(x: np.ndarray) -> torch.Tensor:
    """Input array in torch's layout, as a fresh contiguous NCHW tensor.

    A copy, not a ``permute`` view: torch 2.13's oneDNN float32 convolution returns garbage for
    a one-channel NCHW view of NHWC memory (strides ``(H*W, 1, W, 1)``) in some strided cases,
    e.g. ``F.conv2d(torch.randn(2, 11, 6, 1).permute(0, 3, 1, 2), torch.randn(1, 1, 4, 5),
    stride=(1, 3))`` is off by about 9. ``.contiguous()`` does not help (with one channel the
    view already counts as contiguous); a copy with standard strides does.
    """
    t = torch.from_numpy(x)
    t = t.unsqueeze(0) if t.ndim == 3 else t
    return t.permute(0, 3, 1, 2).clone(memory_format=torch.contiguous_format)


def nhwc(t: torch.Tensor, unbatched: bool) -> np.ndarray:
    out = t.permute(0, 2, 3, 1).numpy()
    return out[0] if unbatched else out


def torch_conv(x, weight, bias=None, *, pads=((0, 0), (0, 0)), stride=1, dilation=1, groups=1):
    """``F.conv2d`` with explicit (possibly asymmetric) padding through ``F.pad``."""
    (top, bottom), (left, right) = pads
    x = F.pad(x, (left, right, top, bottom))
    return F.conv2d(x, weight, bias, stride=stride, dilation=dilation, groups=groups)


def t(array: np.ndarray | None) -> torch.Tensor | None:
    return None if array is None else torch.from_numpy(np.ascontiguousarray(array))


def assert_close(ours: np.ndarray, expected: np.ndarray, dtype: type) -> None:
    """Within 1e-5 (float32) / 1e-10 (float64) relative to the output's magnitude."""
    assert ours.dtype == dtype
    assert ours.shape == expected.shape
    tol = 1e-5 if dtype == np.float32 else 1e-10
    scale = float(np.abs(expected).max()) if expected.size else 0.0
    np.testing.assert_allclose(ours, expected, rtol=tol, atol=tol * scale)


def spatial_cost_args(c: Config) -> dict[str, Any]:
    return {"stride": c.stride, "padding": c.padding, "dilation": c.dilation, "batch": c.batch or 1}


def test_enough_configurations():
    """The acceptance asks for 200 configurations that cover the whole ranges."""
    assert len(CONFIGS) >= 200
    assert {c.kernel[0] for c in CONFIGS} == set(range(1, 8))
    assert {c.stride[0] for c in CONFIGS} == {1, 2, 3}
    assert {c.dilation[1] for c in CONFIGS} == {1, 2, 3}
    assert {c.multiplier for c in CONFIGS} == {1, 2, 3}
    assert {type(c.padding).__name__ for c in CONFIGS} == {"str", "int", "tuple"}
    assert {c.padding for c in CONFIGS if isinstance(c.padding, str)} == {"valid", "same"}
    assert {c.groups for c in CONFIGS} >= {1, 2, 3, 4}
    assert min(c.height for c in CONFIGS) == 1 and max(c.width for c in CONFIGS) == 20
    assert {c.dtype for c in CONFIGS} == {np.float32, np.float64}
    assert any(c.batch is None for c in CONFIGS) and any(c.batch == 2 for c in CONFIGS)


@pytest.mark.parametrize("c", CONFIGS, ids=str)
def test_conv2d_equals_torch(c: Config):
    x, kernel, bias = random_arrays(
        c, c.input_shape, (*c.kernel, c.in_channels // c.groups, c.out_channels), (c.out_channels,)
    )
    counter = Counter()
    ours = reference.conv2d(
        x,
        kernel,
        bias,
        stride=c.stride,
        padding=c.padding,
        dilation=c.dilation,
        groups=c.groups,
        counter=counter,
    )
    weight = t(kernel).permute(3, 2, 0, 1)
    expected = torch_conv(
        nchw(x), weight, t(bias), pads=c.pads, stride=c.stride, dilation=c.dilation, groups=c.groups
    )
    assert_close(ours, nhwc(expected, c.batch is None), c.dtype)
    formula = cost.conv(
        (c.height, c.width, c.in_channels),
        c.kernel,
        c.out_channels,
        groups=c.groups,
        **spatial_cost_args(c),
    )
    assert counter.multiplications == formula.multiplications
    assert counter.by_operation == {"conv2d": formula.multiplications}
    assert ours.shape[-3:] == formula.output_shape


@pytest.mark.parametrize("c", CONFIGS, ids=str)
def test_depthwise_conv2d_equals_torch(c: Config):
    x, kernel, bias = random_arrays(
        c, c.input_shape, (*c.kernel, c.in_channels, c.multiplier), (c.in_channels * c.multiplier,)
    )
    counter = Counter()
    ours = reference.depthwise_conv2d(
        x, kernel, bias, stride=c.stride, padding=c.padding, dilation=c.dilation, counter=counter
    )
    # torch's groups=C convolution, output channel c*M + m = kernel[:, :, c, m]
    weight = t(kernel).permute(2, 3, 0, 1).reshape(c.in_channels * c.multiplier, 1, *c.kernel)
    expected = torch_conv(
        nchw(x),
        weight,
        t(bias),
        pads=c.pads,
        stride=c.stride,
        dilation=c.dilation,
        groups=c.in_channels,
    )
    assert_close(ours, nhwc(expected, c.batch is None), c.dtype)
    formula = cost.depthwise(
        (c.height, c.width, c.in_channels),
        c.kernel,
        depth_multiplier=c.multiplier,
        **spatial_cost_args(c),
    )
    assert counter.multiplications == formula.multiplications
    assert counter.by_operation == {"depthwise_conv2d": formula.multiplications}


@pytest.mark.parametrize("c", CONFIGS, ids=str)
def test_pointwise_conv2d_equals_torch(c: Config):
    x, kernel, bias = random_arrays(
        c, c.input_shape, (c.in_channels, c.out_channels), (c.out_channels,)
    )
    counter = Counter()
    # the 2-D and the 4-D kernel shapes are both accepted
    given = kernel if c.seed % 2 else kernel.reshape(1, 1, *kernel.shape)
    ours = reference.pointwise_conv2d(x, given, bias, counter=counter)
    weight = t(kernel).T.reshape(c.out_channels, c.in_channels, 1, 1)
    expected = F.conv2d(nchw(x), weight, t(bias))
    assert_close(ours, nhwc(expected, c.batch is None), c.dtype)
    formula = cost.pointwise((c.height, c.width, c.in_channels), c.out_channels, batch=c.batch or 1)
    assert counter.multiplications == formula.multiplications


@pytest.mark.parametrize("c", CONFIGS, ids=str)
def test_separable_conv2d_equals_torch(c: Config):
    middle = c.in_channels * c.multiplier
    x, depthwise_kernel, pointwise_kernel, bias = random_arrays(
        c,
        c.input_shape,
        (*c.kernel, c.in_channels, c.multiplier),
        (1, 1, middle, c.out_channels),
        (c.out_channels,),
    )
    counter = Counter()
    ours = reference.separable_conv2d(
        x,
        depthwise_kernel,
        pointwise_kernel,
        bias,
        stride=c.stride,
        padding=c.padding,
        dilation=c.dilation,
        counter=counter,
    )
    dw = t(depthwise_kernel).permute(2, 3, 0, 1).reshape(middle, 1, *c.kernel)
    pw = t(pointwise_kernel).permute(3, 2, 0, 1)
    hidden = torch_conv(
        nchw(x), dw, pads=c.pads, stride=c.stride, dilation=c.dilation, groups=c.in_channels
    )
    expected = F.conv2d(hidden, pw, t(bias))
    assert_close(ours, nhwc(expected, c.batch is None), c.dtype)
    formula = cost.separable(
        (c.height, c.width, c.in_channels),
        c.kernel,
        c.out_channels,
        depth_multiplier=c.multiplier,
        **spatial_cost_args(c),
    )
    assert counter.multiplications == formula.multiplications
    assert counter.by_operation == {
        "depthwise_conv2d": formula.parts[0].multiplications,
        "pointwise_conv2d": formula.parts[1].multiplications,
    }


@pytest.mark.parametrize("c", CONFIGS, ids=str)
def test_spatially_separable_conv2d_equals_torch(c: Config):
    kh, kw = c.kernel
    g = c.groups
    if c.order == "column_first":
        column_shape = (kh, 1, c.in_channels // g, c.mid_channels)
        row_shape = (1, kw, c.mid_channels // g, c.out_channels)
    else:
        row_shape = (1, kw, c.in_channels // g, c.mid_channels)
        column_shape = (kh, 1, c.mid_channels // g, c.out_channels)
    x, column, row, bias = random_arrays(
        c, c.input_shape, column_shape, row_shape, (c.out_channels,)
    )
    counter = Counter()
    ours = reference.spatially_separable_conv2d(
        x,
        column,
        row,
        bias,
        stride=c.stride,
        padding=c.padding,
        dilation=c.dilation,
        groups=g,
        order=c.order,
        counter=counter,
    )

    (top, bottom), (left, right) = c.pads
    (sh, sw), (dh, dw) = c.stride, c.dilation

    def column_pass(y, b=None):
        return torch_conv(
            y,
            t(column).permute(3, 2, 0, 1),
            b,
            pads=((top, bottom), (0, 0)),
            stride=(sh, 1),
            dilation=(dh, 1),
            groups=g,
        )

    def row_pass(y, b=None):
        return torch_conv(
            y,
            t(row).permute(3, 2, 0, 1),
            b,
            pads=((0, 0), (left, right)),
            stride=(1, sw),
            dilation=(1, dw),
            groups=g,
        )

    if c.order == "column_first":
        expected = row_pass(column_pass(nchw(x)), t(bias))
    else:
        expected = column_pass(row_pass(nchw(x)), t(bias))
    assert_close(ours, nhwc(expected, c.batch is None), c.dtype)
    formula = cost.spatially_separable(
        (c.height, c.width, c.in_channels),
        c.kernel,
        c.out_channels,
        intermediate_channels=c.mid_channels,
        order=c.order,
        groups=g,
        **spatial_cost_args(c),
    )
    assert counter.multiplications == formula.multiplications
    first, second = ("column_conv2d", "row_conv2d")[:: 1 if c.order == "column_first" else -1]
    assert counter.by_operation == {
        first: formula.parts[0].multiplications,
        second: formula.parts[1].multiplications,
    }


@pytest.mark.parametrize("c", MISFITS[:30], ids=str)
def test_exception_kernel_larger_than_padded_input(c: Config):
    """Where torch refuses the kernel, so does every reference op, naming `kernel_size`."""
    x = np.zeros(c.input_shape, c.dtype)
    kernel = np.zeros((*c.kernel, c.in_channels, 1), c.dtype)
    with pytest.raises(RuntimeError):
        torch_conv(
            nchw(x),
            t(kernel).permute(3, 2, 0, 1),
            pads=c.pads,
            stride=c.stride,
            dilation=c.dilation,
        )
    common = {"stride": c.stride, "padding": c.padding, "dilation": c.dilation}
    match = r"`kernel_size` \d+ with dilation \d+ spans \d+ elements .* more than the padded"
    with pytest.raises(ValueError, match=match):
        reference.conv2d(x, kernel, **common)
    with pytest.raises(ValueError, match=match):
        reference.depthwise_conv2d(x, kernel, **common)
    with pytest.raises(ValueError, match=match):
        reference.separable_conv2d(x, kernel, np.ones((c.in_channels, 2)), **common)
    column = np.zeros((c.kernel[0], 1, c.in_channels, 1))
    row = np.zeros((1, c.kernel[1], 1, 1))
    with pytest.raises(ValueError, match=match):
        reference.spatially_separable_conv2d(x, column, row, **common)


# --------------------------------------------------------------------------------------------
# Keras 3 (torch backend): the semantics the reference promises


def _keras_output(layer, weights: list[np.ndarray], x: np.ndarray) -> np.ndarray:
    import keras

    layer.build(x.shape)
    layer.set_weights(weights)
    return keras.ops.convert_to_numpy(layer(x))


KERAS_CASES = [
    # (height, width, channels, kernel, stride, padding, dilation)
    (8, 8, 3, 3, 2, "same", 1),
    (7, 7, 3, 3, 2, "same", 1),
    (9, 6, 2, 4, 2, "same", 1),
    (10, 11, 4, 5, 3, "same", 1),
    (12, 12, 3, 5, 1, "valid", 1),
    (11, 9, 2, 3, 1, "same", 2),
    (13, 12, 2, (2, 5), (2, 1), "valid", 1),
]


@pytest.mark.parametrize("case", KERAS_CASES, ids=str)
def test_keras_layers_equal_reference(case):
    import keras

    height, width, channels, kernel_size, stride, padding, dilation = case
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    rng = np.random.default_rng(height * 100 + width)
    x = rng.standard_normal((2, height, width, channels)).astype(np.float32)
    filters, multiplier = 4, 2
    common = {"strides": stride, "padding": padding, "dilation_rate": dilation}
    ours_common = {"stride": stride, "padding": padding, "dilation": dilation}

    kernel = rng.standard_normal((kh, kw, channels, filters)).astype(np.float32)
    bias = rng.standard_normal(filters).astype(np.float32)
    expected = _keras_output(keras.layers.Conv2D(filters, kernel_size, **common), [kernel, bias], x)
    np.testing.assert_allclose(
        reference.conv2d(x, kernel, bias, **ours_common), expected, rtol=1e-5, atol=1e-5
    )

    dw = rng.standard_normal((kh, kw, channels, multiplier)).astype(np.float32)
    dw_bias = rng.standard_normal(channels * multiplier).astype(np.float32)
    expected = _keras_output(
        keras.layers.DepthwiseConv2D(kernel_size, depth_multiplier=multiplier, **common),
        [dw, dw_bias],
        x,
    )
    np.testing.assert_allclose(
        reference.depthwise_conv2d(x, dw, dw_bias, **ours_common), expected, rtol=1e-5, atol=1e-5
    )

    pw = rng.standard_normal((1, 1, channels * multiplier, filters)).astype(np.float32)
    expected = _keras_output(
        keras.layers.SeparableConv2D(filters, kernel_size, depth_multiplier=multiplier, **common),
        [dw, pw, bias],
        x,
    )
    ours = reference.separable_conv2d(x, dw, pw, bias, **ours_common)
    assert ours.shape == expected.shape
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-5)
    if padding == "same":
        sh, sw = (stride, stride) if isinstance(stride, int) else stride
        assert ours.shape[1:3] == (-(-height // sh), -(-width // sw))


def test_keras_grouped_conv2d_equals_reference():
    import keras

    rng = np.random.default_rng(7)
    x = rng.standard_normal((1, 9, 8, 6)).astype(np.float32)
    kernel = rng.standard_normal((3, 3, 2, 9)).astype(np.float32)
    bias = np.zeros(9, np.float32)
    expected = _keras_output(keras.layers.Conv2D(9, 3, padding="same", groups=3), [kernel, bias], x)
    ours = reference.conv2d(x, kernel, padding="same", groups=3)
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------------------------
# Smaller properties


def test_smoke_worked_example():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 12, 3))
    counter = Counter()
    y = reference.conv2d(x, rng.standard_normal((5, 5, 3, 256)), counter=counter)
    assert y.shape == (8, 8, 256) and counter.multiplications == 1_228_800
    counter.reset()
    assert counter.multiplications == 0 and counter.by_operation == {}
    y = reference.separable_conv2d(
        x, rng.standard_normal((5, 5, 3, 1)), rng.standard_normal((3, 256)), counter=counter
    )
    assert y.shape == (8, 8, 256)
    assert counter.by_operation == {"depthwise_conv2d": 4_800, "pointwise_conv2d": 49_152}
    assert counter.multiplications == 53_952
    counter.reset()
    y = reference.separable_conv2d(
        x,
        rng.standard_normal((5, 5, 3, 1)),
        rng.standard_normal((3, 256)),
        padding="same",
        counter=counter,
    )
    assert y.shape == (12, 12, 256)
    assert counter.by_operation == {"depthwise_conv2d": 10_800, "pointwise_conv2d": 110_592}
    assert counter.multiplications == 121_392


@settings(max_examples=60, deadline=None)
@given(
    size=st.tuples(st.integers(1, 40), st.integers(1, 40)),
    kernel=st.tuples(st.integers(1, 9), st.integers(1, 9)),
    stride=st.tuples(st.integers(1, 5), st.integers(1, 5)),
    dilation=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    padding=st.one_of(
        st.sampled_from(["valid", "same"]),
        st.integers(0, 5),
        st.tuples(
            st.tuples(st.integers(0, 5), st.integers(0, 5)),
            st.tuples(st.integers(0, 5), st.integers(0, 5)),
        ),
    ),
    channels=st.integers(1, 6),
    multiplier=st.integers(1, 4),
    filters=st.integers(1, 6),
    batch=st.integers(1, 3),
)
def test_counts_equal_cost_property(
    size, kernel, stride, dilation, padding, channels, multiplier, filters, batch
):
    """Beyond the torch comparisons: counts equal the cost model on a wider space of shapes."""
    x = np.ones((batch, *size, channels), np.float32)
    spatial = {"stride": stride, "padding": padding, "dilation": dilation}
    try:
        expected = cost.separable(
            (*size, channels), kernel, filters, depth_multiplier=multiplier, batch=batch, **spatial
        )
    except ValueError as exc:
        assert "`kernel_size`" in str(exc)
        with pytest.raises(ValueError, match="`kernel_size`"):
            reference.conv2d(x, np.ones((*kernel, channels, filters), np.float32), **spatial)
        return
    counter = Counter()
    y = reference.separable_conv2d(
        x,
        np.ones((*kernel, channels, multiplier), np.float32),
        np.ones((channels * multiplier, filters), np.float32),
        counter=counter,
        **spatial,
    )
    assert counter.multiplications == expected.multiplications
    assert y.shape == (batch, *expected.output_shape)
    counter.reset()
    reference.conv2d(
        x, np.ones((*kernel, channels, filters), np.float32), counter=counter, **spatial
    )
    assert (
        counter.multiplications
        == cost.conv((*size, channels), kernel, filters, batch=batch, **spatial).multiplications
    )
    counter.reset()
    column = np.ones((kernel[0], 1, channels, 2), np.float32)
    row = np.ones((1, kernel[1], 2, filters), np.float32)
    reference.spatially_separable_conv2d(x, column, row, counter=counter, **spatial)
    assert (
        counter.multiplications
        == cost.spatially_separable(
            (*size, channels), kernel, filters, intermediate_channels=2, batch=batch, **spatial
        ).multiplications
    )


def test_counter_accumulates_across_calls():
    counter = Counter()
    x = np.ones((6, 6, 2))
    reference.depthwise_conv2d(x, np.ones((3, 3, 2, 1)), counter=counter)
    reference.depthwise_conv2d(x, np.ones((3, 3, 2, 1)), counter=counter)
    reference.pointwise_conv2d(x, np.ones((2, 5)), counter=counter)
    assert counter.by_operation == {
        "depthwise_conv2d": 2 * 4 * 4 * 2 * 9,
        "pointwise_conv2d": 6 * 6 * 2 * 5,
    }
    assert counter.multiplications == sum(counter.by_operation.values())
    assert "multiplications=936" in repr(counter)


def test_counter_counts_what_is_computed_in_blocks(monkeypatch):
    """Large outputs are computed in row blocks; the result and the count do not change."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 11, 9, 4))
    kernel = rng.standard_normal((3, 2, 2, 6))
    whole, counted_whole = Counter(), Counter()
    expected = reference.conv2d(x, kernel, stride=(2, 1), padding="same", groups=2, counter=whole)
    monkeypatch.setattr(reference, "_BLOCK_ELEMENTS", 50)
    ours = reference.conv2d(
        x, kernel, stride=(2, 1), padding="same", groups=2, counter=counted_whole
    )
    np.testing.assert_array_equal(ours, expected)
    assert counted_whole.multiplications == whole.multiplications


def test_spatially_separable_equals_outer_product_kernel():
    """Per-channel filtering with ``column x row`` is the 2-D convolution with the outer product."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 13, 10, 3))
    column = rng.standard_normal((5, 1, 1, 3))
    row = rng.standard_normal((1, 4, 1, 3))
    full = (column[:, :, 0, :] * row[:, :, 0, :])[:, :, None, :]  # (5, 4, 1, 3)
    for padding in ("valid", "same", ((2, 1), (0, 3))):
        for stride, dilation in ((1, 1), ((2, 3), 1), (1, (2, 1))):
            ours = reference.spatially_separable_conv2d(
                x, column, row, stride=stride, padding=padding, dilation=dilation, groups=3
            )
            direct = reference.conv2d(
                x, full, stride=stride, padding=padding, dilation=dilation, groups=3
            )
            np.testing.assert_allclose(ours, direct, rtol=1e-12, atol=1e-12)
            other = reference.spatially_separable_conv2d(
                x,
                column,
                row,
                stride=stride,
                padding=padding,
                dilation=dilation,
                groups=3,
                order="row_first",
            )
            np.testing.assert_allclose(other, direct, rtol=1e-12, atol=1e-12)


def test_unbatched_equals_batched_and_inputs_unchanged():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((7, 6, 2))
    kernel = rng.standard_normal((3, 3, 2, 4))
    bias = rng.standard_normal(4)
    before = (x.copy(), kernel.copy(), bias.copy())
    single = reference.conv2d(x, kernel, bias, padding="same")
    batched = reference.conv2d(x[None], kernel, bias, padding="same")
    assert single.shape == (7, 6, 4) and batched.shape == (1, 7, 6, 4)
    np.testing.assert_array_equal(single, batched[0])
    for original, now in zip(before, (x, kernel, bias)):
        np.testing.assert_array_equal(original, now)


def test_dtypes():
    x = np.arange(16).reshape(4, 4, 1)
    y = reference.conv2d(x, np.ones((2, 2, 1, 1), np.int32))
    assert y.dtype == np.float64 and y[0, 0, 0] == 0 + 1 + 4 + 5
    assert (
        reference.conv2d(x.astype(np.float32), np.ones((2, 2, 1, 1), np.float32)).dtype
        == np.float32
    )
    assert reference.conv2d(x.astype(np.float32), np.ones((2, 2, 1, 1))).dtype == np.float64
    # nested lists are array_like
    assert reference.pointwise_conv2d([[[1.0, 2.0]]], [[1.0], [1.0]]).tolist() == [[[3.0]]]


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda: reference.conv2d(np.ones((4, 4)), np.ones((3, 3, 1, 1))),
            ValueError,
            r"`x` must have 3 or 4 dimensions \(N, H, W, C\) or \(H, W, C\), got array of shape "
            r"\(4, 4\)",
        ),
        (
            lambda: reference.conv2d(np.ones((1, 1, 4, 4, 1)), np.ones((3, 3, 1, 1))),
            ValueError,
            "`x` must have 3 or 4 dimensions",
        ),
        (
            lambda: reference.conv2d(np.ones((0, 4, 1)), np.ones((3, 3, 1, 1))),
            ValueError,
            r"`x` must have positive sizes .* got array of shape \(0, 4, 1\)",
        ),
        (
            lambda: reference.conv2d(np.ones((4, 4, 1)), np.ones((0, 3, 1, 1))),
            ValueError,
            "`kernel` must have positive sizes",
        ),
        (
            lambda: reference.conv2d(np.ones((4, 4, 1)), np.ones((3, 3, 1))),
            ValueError,
            r"`kernel` must have 4 dimensions \(kh, kw, C_in / groups, C_out\)",
        ),
        (
            lambda: reference.conv2d(np.ones((4, 4, 1)), np.ones((5, 3, 1, 1))),
            ValueError,
            r"`kernel_size` 5 with dilation 1 spans 5 elements along spatial axis 0, more than "
            r"the padded input's 4",
        ),
        (
            lambda: reference.conv2d(np.ones((4, 4, 1)), np.ones((3, 3, 1, 1)), dilation=2),
            ValueError,
            "`kernel_size` 3 with dilation 2 spans 5 elements",
        ),
        (
            lambda: reference.conv2d(np.ones((4, 4, 1)), np.ones((3, 3, 1, 1)), stride=0),
            ValueError,
            "`stride` must be a positive integer or a tuple of 2 such integers, got 0",
        ),
        (
            lambda: reference.conv2d(np.ones((4, 4, 1)), np.ones((3, 3, 1, 1)), stride=-1),
            ValueError,
            "`stride` must be a positive integer",
        ),
        (
            lambda: reference.conv2d(np.ones((4, 4, 1)), np.ones((3, 3, 1, 1)), stride=1.5),
            TypeError,
            "`stride` must be a positive integer .* got 1.5",
        ),
        (
            lambda: reference.conv2d(np.ones((4, 4, 1)), np.ones((3, 3, 1, 1)), stride=(1, 2, 1)),
            ValueError,
            "`stride` must be .* of length 3",
        ),
        (
            lambda: reference.conv2d(np.ones((4, 4, 1)), np.ones((3, 3, 1, 1)), dilation=0),
            ValueError,
            "`dilation` must be a positive integer",
        ),
        (
            lambda: reference.conv2d(np.ones((4, 4, 1)), np.ones((3, 3, 1, 1)), padding="full"),
            ValueError,
            "`padding` must be 'valid', 'same', .* got 'full'",
        ),
        (
            lambda: reference.conv2d(np.ones((4, 4, 1)), np.ones((3, 3, 1, 1)), padding=-1),
            ValueError,
            "`padding` must be 'valid', 'same'",
        ),
        (
            lambda: reference.conv2d(np.ones((4, 4, 3)), np.ones((3, 3, 4, 8))),
            ValueError,
            r"`kernel` of shape \(3, 3, 4, 8\) expects 4 input channels .* but `x` has 3",
        ),
        (
            lambda: reference.conv2d(np.ones((4, 4, 4)), np.ones((3, 3, 4, 8)), groups=2),
            ValueError,
            "`kernel` of shape .* expects 8 input channels .* groups = 2",
        ),
        (
            lambda: reference.conv2d(np.ones((4, 4, 4)), np.ones((3, 3, 2, 6)), groups=4),
            ValueError,
            r"`groups` must divide the input channels of `x` \(4\) and the output "
            r"channels of `kernel` \(6\), got 4",
        ),
        (
            lambda: reference.conv2d(np.ones((4, 4, 1)), np.ones((3, 3, 1, 1)), groups=0),
            ValueError,
            "`groups` must be a positive integer, got 0",
        ),
        (
            lambda: reference.conv2d(np.ones((4, 4, 1)), np.ones((3, 3, 1, 2)), np.ones(3)),
            ValueError,
            r"`bias` must have one value per output channel \(2",
        ),
        (
            lambda: reference.conv2d(np.ones((4, 4, 1), complex), np.ones((3, 3, 1, 1))),
            TypeError,
            "`x` must hold real numbers .* dtype complex128",
        ),
        (
            lambda: reference.conv2d(np.ones((4, 4, 1), bool), np.ones((3, 3, 1, 1))),
            TypeError,
            "`x` must hold real numbers .* dtype bool",
        ),
        (
            lambda: reference.conv2d(np.ones((4, 4, 1)), np.ones((3, 3, 1, 1), object)),
            TypeError,
            "`kernel` must hold real numbers .* dtype object",
        ),
        (
            lambda: reference.conv2d("image", np.ones((3, 3, 1, 1))),
            TypeError,
            "`x` must hold real numbers",
        ),
        (
            lambda: reference.depthwise_conv2d(np.ones((6, 6, 3)), np.ones((3, 3, 2, 1))),
            ValueError,
            r"`depthwise_kernel` of shape \(3, 3, 2, 1\) \(kh, kw, C, M\) expects 2 "
            r"input channels, but `x` has 3",
        ),
        (
            lambda: reference.depthwise_conv2d(np.ones((6, 6, 2)), np.ones((3, 3, 2))),
            ValueError,
            r"`depthwise_kernel` must have 4 dimensions \(kh, kw, C, M\)",
        ),
        (
            lambda: reference.pointwise_conv2d(np.ones((6, 6, 3)), np.ones((2, 5))),
            ValueError,
            r"`pointwise_kernel` of shape \(1, 1, 2, 5\) expects 2 input channels, but `x` has 3",
        ),
        (
            lambda: reference.pointwise_conv2d(np.ones((6, 6, 3)), np.ones((3, 3, 3, 5))),
            ValueError,
            r"`pointwise_kernel` must have shape \(1, 1, C_in, C_out\)",
        ),
        (
            lambda: reference.separable_conv2d(
                np.ones((6, 6, 3)), np.ones((3, 3, 3, 2)), np.ones((3, 5))
            ),
            ValueError,
            r"`pointwise_kernel` of shape \(1, 1, 3, 5\) expects 3 input channels, but the "
            r"depthwise step gives C \* M = 6",
        ),
        (
            lambda: reference.separable_conv2d(
                np.ones((6, 6, 3)), np.ones((3, 3, 3, 1)), np.ones((3, 5)), np.ones(3)
            ),
            ValueError,
            r"`bias` must have one value per output channel \(5",
        ),
        (
            lambda: reference.spatially_separable_conv2d(
                np.ones((6, 6, 3)), np.ones((3, 1, 3, 4)), np.ones((1, 3, 3, 2))
            ),
            ValueError,
            r"`row_kernel` of shape \(1, 3, 3, 2\) expects 3 input channels .* but the output "
            r"of `column_kernel` has 4",
        ),
        (
            lambda: reference.spatially_separable_conv2d(
                np.ones((6, 6, 3)), np.ones((3, 1, 2, 4)), np.ones((1, 3, 4, 2))
            ),
            ValueError,
            r"`column_kernel` of shape \(3, 1, 2, 4\) expects 2 input channels .* but `x` has 3",
        ),
        (
            lambda: reference.spatially_separable_conv2d(
                np.ones((6, 6, 3)), np.ones((3, 2, 3, 4)), np.ones((1, 3, 4, 2))
            ),
            ValueError,
            r"`column_kernel` must have shape \(kh, 1, C / groups, C'\)",
        ),
        (
            lambda: reference.spatially_separable_conv2d(
                np.ones((6, 6, 3)), np.ones((3, 1, 3, 4)), np.ones((2, 3, 4, 2))
            ),
            ValueError,
            r"`row_kernel` must have shape \(1, kw, C / groups, C'\)",
        ),
        (
            lambda: reference.spatially_separable_conv2d(
                np.ones((6, 6, 4)), np.ones((3, 1, 2, 3)), np.ones((1, 3, 3, 2)), groups=2
            ),
            ValueError,
            r"`groups` \(2\) must divide .* output channels of `column_kernel` \(3\)",
        ),
        (
            lambda: reference.spatially_separable_conv2d(
                np.ones((6, 6, 3)), np.ones((3, 1, 3, 3)), np.ones((1, 3, 3, 3)), order="rows"
            ),
            ValueError,
            "`order` must be one of 'column_first', 'row_first', got 'rows'",
        ),
        (
            lambda: reference.depthwise_kernel_from_torch(np.ones((6, 1, 3, 3)), 4),
            ValueError,
            r"`weight` must have shape \(C \* M, 1, \*kernel_size\) with C \* M divisible by "
            r"`depth_multiplier` \(4\)",
        ),
        (
            lambda: reference.pointwise_kernel_from_torch(np.ones((6, 2, 3, 3))),
            ValueError,
            r"`weight` must have shape \(C_out, C_in, 1, ..., 1\)",
        ),
        (
            lambda: reference.conv_kernel_to_torch(np.ones((3, 2))),
            ValueError,
            r"`kernel` must have 3, 4 or 5 dimensions",
        ),
        (
            lambda: reference.to_nchw(np.ones((3, 3))),
            ValueError,
            r"`x` must have 3 or 4 dimensions \(N, \*spatial, C\) or \(\*spatial, C\)",
        ),
    ],
)
def test_exception(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_converters_round_trip_and_match_torch_semantics():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 9, 7, 4))
    np.testing.assert_array_equal(reference.to_nhwc(reference.to_nchw(x)), x)
    np.testing.assert_array_equal(reference.to_nchw(x), x.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(reference.to_nchw(x[0]), x[0].transpose(2, 0, 1))
    xt = torch.from_numpy(reference.to_nchw(x))

    kernel = rng.standard_normal((3, 2, 2, 6))
    weight = reference.conv_kernel_to_torch(kernel)
    assert weight.shape == (6, 2, 3, 2)
    np.testing.assert_array_equal(reference.conv_kernel_from_torch(weight), kernel)
    expected = F.conv2d(xt, torch.from_numpy(weight), groups=2).numpy()
    np.testing.assert_allclose(
        reference.to_nchw(reference.conv2d(x, kernel, groups=2)), expected, rtol=1e-12, atol=1e-12
    )

    dw = rng.standard_normal((3, 3, 4, 3))
    weight = reference.depthwise_kernel_to_torch(dw)
    assert weight.shape == (12, 1, 3, 3)
    np.testing.assert_array_equal(weight[1 * 3 + 2, 0], dw[:, :, 1, 2])
    np.testing.assert_array_equal(reference.depthwise_kernel_from_torch(weight, 3), dw)
    expected = F.conv2d(xt, torch.from_numpy(weight), groups=4).numpy()
    np.testing.assert_allclose(
        reference.to_nchw(reference.depthwise_conv2d(x, dw)), expected, rtol=1e-12, atol=1e-12
    )

    pw = rng.standard_normal((4, 5))
    weight = reference.pointwise_kernel_to_torch(pw)
    assert weight.shape == (5, 4, 1, 1)
    np.testing.assert_array_equal(
        reference.pointwise_kernel_from_torch(weight), pw.reshape(1, 1, 4, 5)
    )
    np.testing.assert_array_equal(
        reference.pointwise_kernel_to_torch(pw.reshape(1, 1, 4, 5)), weight
    )


def test_module_exports():
    assert set(reference.__all__) == {
        "Counter",
        "conv2d",
        "depthwise_conv2d",
        "pointwise_conv2d",
        "separable_conv2d",
        "spatially_separable_conv2d",
        "to_nchw",
        "to_nhwc",
        "conv_kernel_to_torch",
        "conv_kernel_from_torch",
        "depthwise_kernel_to_torch",
        "depthwise_kernel_from_torch",
        "pointwise_kernel_to_torch",
        "pointwise_kernel_from_torch",
    }
    for name in reference.__all__:
        assert getattr(reference, name).__doc__


def test_layout_aliases_and_light_import(run_python):
    """The converters here are sepconv.layouts' functions; both modules stay NumPy-only."""
    from sepconv import layouts
    from sepconv.nn import keras as skeras

    assert reference.conv_kernel_to_torch is layouts.conv_kernel_keras_to_torch
    assert reference.depthwise_kernel_from_torch is layouts.depthwise_kernel_torch_to_keras
    assert skeras.depthwise_kernel_from_keras is layouts.depthwise_kernel_keras_to_torch
    rng = np.random.default_rng(7)
    for n in (1, 2, 3):  # N-D: Keras (*k, C, M) <-> torch (C * M, 1, *k), round trip
        kernel = rng.standard_normal((*(3,) * n, 4, 2))
        weight = layouts.depthwise_kernel_keras_to_torch(kernel)
        assert weight.shape == (8, 1, *(3,) * n)
        np.testing.assert_array_equal(weight[1 * 2 + 1, 0], kernel[..., 1, 1])
        np.testing.assert_array_equal(
            layouts.depthwise_kernel_torch_to_keras(weight, depth_multiplier=2), kernel
        )
        x = rng.standard_normal((2, *(5,) * n, 3))
        np.testing.assert_array_equal(
            layouts.channels_last(layouts.channels_first(x, spatial_dims=n), spatial_dims=n), x
        )
    result = run_python(
        code="import sys, sepconv.layouts, sepconv.padding\n"
        "print(sorted(m for m in ('torch', 'cv2') if m in sys.modules))"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
