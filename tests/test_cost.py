"""sepconv.cost: the worked example, the counts, errors, and torch's own FLOP counter."""

from __future__ import annotations

import itertools
import json
import math
from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from sepconv import cost

pytestmark = pytest.mark.usefixtures("torch_single_thread")

# --------------------------------------------------------------------------------------------
# The worked example: 12x12x3 input, 5x5 kernel, 256 filters


def test_smoke_worked_example_valid():
    normal = cost.conv((12, 12, 3), 5, 256, bias=False)
    assert normal.output_shape == (8, 8, 256)
    assert normal.multiplications == 1_228_800 == 256 * (5 * 5 * 3) * (8 * 8)
    sep = cost.separable((12, 12, 3), 5, 256, bias=False)
    depthwise, pointwise = sep.parts
    assert depthwise.multiplications == 4_800 == 3 * (5 * 5) * (8 * 8)
    assert depthwise.output_shape == (8, 8, 3)
    assert pointwise.multiplications == 49_152 == 256 * 3 * (8 * 8)
    assert sep.multiplications == 53_952
    assert sep.output_shape == (8, 8, 256)
    assert round(normal.multiplications / sep.multiplications, 2) == 22.78


def test_smoke_worked_example_same():
    normal = cost.conv((12, 12, 3), 5, 256, padding="same", bias=False)
    assert normal.output_shape == (12, 12, 256)
    assert normal.multiplications == 2_764_800
    sep = cost.separable((12, 12, 3), 5, 256, padding="same", bias=False)
    assert [p.multiplications for p in sep.parts] == [10_800, 110_592]
    assert sep.multiplications == 121_392
    assert sep.output_shape == (12, 12, 256)


def test_parameters_additions_and_bias():
    plain = cost.conv((12, 12, 3), 5, 256, bias=False)
    assert (plain.weights, plain.biases, plain.parameters) == (19_200, 0, 19_200)
    # each output sums 75 products: 74 additions, one more for the bias
    assert plain.additions == 8 * 8 * 256 * 74
    biased = cost.conv((12, 12, 3), 5, 256)  # bias=True is the default, as in nn.Conv2d
    assert (biased.weights, biased.biases, biased.parameters) == (19_200, 256, 19_456)
    assert biased.additions == 8 * 8 * 256 * 75
    assert biased.multiplications == plain.multiplications  # a bias is added, not multiplied
    assert plain.flops == 2 * plain.multiplications

    sep = cost.separable((12, 12, 3), 5, 256)
    depthwise, pointwise = sep.parts
    assert (depthwise.weights, depthwise.biases) == (75, 0)  # Keras: bias on the pointwise step
    assert (pointwise.weights, pointwise.biases) == (768, 256)
    assert sep.parameters == 75 + 768 + 256
    assert sep.additions == 8 * 8 * 3 * 24 + 8 * 8 * 256 * 3
    with_dw_bias = cost.separable((12, 12, 3), 5, 256, depthwise_bias=True)
    assert with_dw_bias.biases == 256 + 3
    assert with_dw_bias.additions == sep.additions + 8 * 8 * 3

    dw = cost.depthwise((12, 12, 3), 5, depth_multiplier=2, bias=True)
    assert (dw.output_shape, dw.weights, dw.biases) == ((8, 8, 6), 150, 6)
    assert dw.multiplications == 8 * 8 * 6 * 25


def test_batch_scales_counts_not_parameters():
    one = cost.separable((12, 12, 3), 5, 256)
    four = cost.separable((12, 12, 3), 5, 256, batch=4)
    assert four.multiplications == 4 * one.multiplications
    assert four.additions == 4 * one.additions
    assert four.parameters == one.parameters
    assert four.output_elements == 4 * 8 * 8 * 256


def test_to_dict_is_json_ready():
    data = json.loads(json.dumps(cost.separable((12, 12, 3), 5, 256, bias=False).to_dict()))
    assert data["multiplications"] == 53_952 and data["flops"] == 107_904
    assert data["output_shape"] == [8, 8, 256]
    assert [p["multiplications"] for p in data["parts"]] == [4_800, 49_152]
    assert data["parameters"] == 75 + 768


def test_memory_bytes():
    normal = cost.conv((12, 12, 3), 5, 256, bias=False)
    assert normal.memory_bytes() == 4 * (19_200 + 8 * 8 * 256)
    sep = cost.separable((12, 12, 3), 5, 256, bias=False)
    assert sep.memory_bytes(itemsize=2) == 2 * (75 + 768 + 8 * 8 * 3 + 8 * 8 * 256)


def test_compare_and_rule_of_thumb():
    c = cost.compare((12, 12, 3), 5, 256)
    assert [r.multiplications for r in c.rows] == [1_228_800, 53_952, 4_320 + 245_760]
    assert c.rule == pytest.approx(1 / 256 + 1 / 25)
    data = json.loads(json.dumps(c.to_dict()))
    assert data["ratios"]["depthwise_separable"] == pytest.approx(1_228_800 / 53_952)
    # the rule is exact whenever both outputs have the same size ('same', stride 1)
    for k, filters, m in [(3, 32, 1), (5, 256, 1), (7, 64, 2), ((3, 5), 10, 3)]:
        c = cost.compare((10, 9, 4), k, filters, padding="same", depth_multiplier=m)
        exact = Fraction(c.depthwise_separable.multiplications, c.normal.multiplications)
        kk = math.prod(k) if isinstance(k, tuple) else k * k
        assert exact == m * (Fraction(1, filters) + Fraction(1, kk))
        assert c.rule == pytest.approx(float(exact))
    assert cost.compare((20, 7), 3, 8).spatially_separable is None  # 1-D: no k x 1 / 1 x k


def test_spatially_separable():
    s = cost.spatially_separable((12, 12, 3), 5, 256, bias=False)
    column, row = s.parts
    assert column.output_shape == (8, 12, 3) and column.multiplications == 8 * 12 * 3 * 5 * 3
    assert row.output_shape == (8, 8, 256) and row.multiplications == 8 * 8 * 256 * 5 * 3
    assert s.output_shape == cost.conv((12, 12, 3), 5, 256).output_shape
    flipped = cost.spatially_separable((12, 12, 3), 5, 256, bias=False, order="row_first")
    assert flipped.parts[0].output_shape == (12, 8, 3)
    # Inception-v3 style with a 1-channel bottleneck; image filtering with groups = C
    thin = cost.spatially_separable((12, 12, 3), 5, 256, intermediate_channels=1, bias=False)
    assert thin.parts[0].multiplications == 8 * 12 * 1 * 5 * 3
    per_channel = cost.spatially_separable((20, 30, 3), 5, 3, groups=3, padding="same", bias=False)
    per_pixel = cost.filtering((5, 5), rank=1).multiplications
    assert per_channel.multiplications == 20 * 30 * 3 * per_pixel
    assert per_channel.output_shape == (20, 30, 3)


def test_filtering():
    assert cost.filtering((3, 3)).multiplications == 9
    assert cost.filtering((3, 3), rank=1).multiplications == 6
    assert cost.filtering((15, 15), rank=2).multiplications == 60
    assert cost.filtering((5, 5, 5), rank=1).multiplications == 15
    direct = cost.filtering((7, 5), image_shape=(100, 80))
    assert direct.multiplications == 100 * 80 * 35 and direct.output_shape == (100, 80)
    assert direct.additions == 100 * 80 * 34
    separated = cost.filtering((7, 5), rank=2, image_shape=(100, 80))
    assert separated.multiplications == 100 * 80 * 2 * 12
    # two passes of 7 and 5 taps per term (6 + 4 additions), then one addition joins the terms
    assert separated.additions == 100 * 80 * (2 * 10 + 1)


def test_one_and_three_dimensional():
    assert cost.conv((20, 4), 3, 8).output_shape == (18, 8)
    assert cost.conv((20, 4), 3, 8).multiplications == 18 * 8 * 3 * 4
    # a 2-entry shape is (L, C): 12 samples of 12 channels, not a 12x12 image
    assert cost.conv((12, 12), 5, 8).output_shape == (8, 8)
    three = cost.separable((6, 7, 8, 2), (3, 3, 1), 5, depth_multiplier=2, bias=False)
    assert three.output_shape == (4, 5, 8, 5)
    assert three.multiplications == 4 * 5 * 8 * 4 * 9 + 4 * 5 * 8 * 4 * 5


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda: cost.conv((12,), 5, 8),
            ValueError,
            r"`input_shape` must be a tuple of 2 or 3 or 4 positive integer sizes \(\*spatial, "
            r"channels\), got \(12,\) with 1 entries",
        ),
        (
            lambda: cost.conv((12, 0, 3), 5, 8),
            ValueError,
            r"`input_shape` must be a tuple of .* positive integer sizes .* got \(12, 0, 3\)",
        ),
        (lambda: cost.conv((12, -1, 3), 5, 8), ValueError, "`input_shape` must be"),
        (lambda: cost.conv("12x12x3", 5, 8), TypeError, "`input_shape` must be a tuple"),
        (
            lambda: cost.conv((12, 12, 3), 0, 8),
            ValueError,
            "`kernel_size` must be a positive integer or a tuple of 2 such integers, got 0",
        ),
        (
            lambda: cost.conv((12, 12, 3), 5, 0),
            ValueError,
            "`filters` must be a positive integer, got 0",
        ),
        (
            lambda: cost.conv((12, 12, 3), 5, 8.0),
            TypeError,
            r"`filters` must be an integer, got the float 8.0 \(write 8\)",
        ),
        (
            lambda: cost.conv((12, 12, 3), 13, 8),
            ValueError,
            "`kernel_size` 13 with dilation 1 spans 13 elements along spatial axis 0, more than "
            "the padded input's 12",
        ),
        (
            lambda: cost.conv((12, 12, 3), 5, 8, dilation=3),
            ValueError,
            "`kernel_size` 5 with dilation 3 spans 13 elements",
        ),
        (
            lambda: cost.conv((12, 12, 3), 5, 8, stride=0),
            ValueError,
            "`stride` must be a positive integer or a tuple of 2 such integers, got 0",
        ),
        (
            lambda: cost.conv((12, 12, 3), 5, 8, stride=1.5),
            TypeError,
            "`stride` must be a positive integer .* got 1.5",
        ),
        (
            lambda: cost.conv((12, 12, 3), 5, 8, stride=(1, 1, 1)),
            ValueError,
            "`stride` must be .* of length 3",
        ),
        (
            lambda: cost.conv((12, 12, 3), 5, 8, padding="full"),
            ValueError,
            "`padding` must be 'valid', 'same', .* got 'full'",
        ),
        (
            lambda: cost.conv((12, 12, 3), 5, 8, groups=2),
            ValueError,
            r"`groups` must divide both the input channels \(3\) and `filters` \(8\), got 2",
        ),
        (
            lambda: cost.depthwise((12, 12, 3), 5, depth_multiplier=0),
            ValueError,
            "`depth_multiplier` must be a positive integer, got 0",
        ),
        (
            lambda: cost.pointwise((12, 12, 3), -4),
            ValueError,
            "`filters` must be a positive integer, got -4",
        ),
        (
            lambda: cost.separable((12, 12, 3), 5, 8, batch=0),
            ValueError,
            "`batch` must be a positive integer, got 0",
        ),
        (
            lambda: cost.spatially_separable((12, 12, 3, 3), 5, 8),
            ValueError,
            r"`input_shape` must be a tuple of 3 positive integer sizes \(H, W, C\)",
        ),
        (
            lambda: cost.spatially_separable((12, 12, 3), 5, 8, order="diagonal"),
            ValueError,
            "`order` must be one of 'column_first', 'row_first', got 'diagonal'",
        ),
        (
            lambda: cost.spatially_separable((12, 12, 4), 5, 8, intermediate_channels=3, groups=2),
            ValueError,
            r"`groups` \(2\) must divide intermediate_channels \(3\)",
        ),
        (
            lambda: cost.filtering((3, 3), rank=0),
            ValueError,
            "`rank` must be a positive integer, got 0",
        ),
        (
            lambda: cost.filtering((3, 3), image_shape=(10, 10, 3)),
            ValueError,
            r"`image_shape` must be a tuple of 2 positive integer sizes",
        ),
    ],
)
def test_exception(call, error, match):
    with pytest.raises(error, match=match):
        call()


# --------------------------------------------------------------------------------------------
# Against torch.utils.flop_counter.FlopCounterMode (FLOPs = 2 x mult-adds)


def torch_flops(fn, *args, **kwargs) -> int:
    """FLOPs torch counts while running ``fn(*args, **kwargs)``."""
    with FlopCounterMode(display=False) as counter:
        fn(*args, **kwargs)
    return counter.get_total_flops()


def meta(*shape: int) -> torch.Tensor:
    return torch.empty(shape, device="meta")


def torch_conv_nd(x, weight, *, pads, stride, dilation, groups=1):
    """``F.conv{1,2,3}d`` with explicit per-axis (before, after) padding."""
    flat = [p for pair in reversed(pads) for p in pair]
    x = F.pad(x, flat)
    conv = {3: F.conv1d, 4: F.conv2d, 5: F.conv3d}[x.ndim]
    return conv(x, weight, stride=stride, dilation=dilation, groups=groups)


def _pads(spatial, kernel, stride, dilation, padding, tf_same):
    if padding == "valid":
        return [(0, 0)] * len(spatial)
    if padding == "same":
        return [tf_same(n, k, s, d) for n, k, s, d in zip(spatial, kernel, stride, dilation)]
    return [tuple(p) for p in padding]


def _fits(spatial, kernel, dilation, pads):
    return all(
        n + a + b >= (k - 1) * d + 1 for n, k, d, (a, b) in zip(spatial, kernel, dilation, pads)
    )


GRID_2D = [
    (shape, k, s, d, p)
    for shape, k, s, d, p in itertools.product(
        [(12, 12, 3), (7, 9, 4), (16, 15, 6), (5, 5, 8)],
        [1, 2, 3, (5, 3)],
        [1, 2, (3, 1)],
        [1, 2],
        ["valid", "same", ((1, 2), (0, 3))],
    )
]


@pytest.mark.parametrize(("shape", "k", "s", "d", "padding"), GRID_2D, ids=str)
def test_conv_grouped_depthwise_equal_torch_flop_counter(shape, k, s, d, padding, tf_same):
    h, w, c = shape
    kernel = (k, k) if isinstance(k, int) else k
    stride = (s, s) if isinstance(s, int) else s
    dilation = (d, d)
    pads = _pads((h, w), kernel, stride, dilation, padding, tf_same)
    if not _fits((h, w), kernel, dilation, pads):
        with pytest.raises(ValueError, match="`kernel_size`"):
            cost.conv(shape, k, 4, stride=s, dilation=d, padding=padding)
        return
    batch = 2
    x = meta(batch, c, h, w)
    for filters, groups in [(5, 1), (2 * c, c), (4, 2 if c % 2 == 0 else 1)]:
        ours = cost.conv(
            shape, k, filters, stride=s, padding=padding, dilation=d, groups=groups, batch=batch
        )
        weight = meta(filters, c // groups, *kernel)
        flops = torch_flops(
            torch_conv_nd, x, weight, pads=pads, stride=stride, dilation=dilation, groups=groups
        )
        assert ours.flops == flops
        out = torch_conv_nd(x, weight, pads=pads, stride=stride, dilation=dilation, groups=groups)
        assert tuple(out.shape[2:]) == ours.output_shape[:2]
    for multiplier in (1, 3):
        ours = cost.depthwise(
            shape,
            k,
            depth_multiplier=multiplier,
            stride=s,
            padding=padding,
            dilation=d,
            batch=batch,
        )
        flops = torch_flops(
            torch_conv_nd,
            x,
            meta(c * multiplier, 1, *kernel),
            pads=pads,
            stride=stride,
            dilation=dilation,
            groups=c,
        )
        assert ours.flops == flops


@pytest.mark.parametrize(("shape", "k", "s", "d", "padding"), GRID_2D[::3], ids=str)
def test_separable_and_spatially_separable_equal_torch_flop_counter(
    shape, k, s, d, padding, tf_same
):
    h, w, c = shape
    kernel = (k, k) if isinstance(k, int) else k
    stride = (s, s) if isinstance(s, int) else s
    dilation = (d, d)
    pads = _pads((h, w), kernel, stride, dilation, padding, tf_same)
    filters, multiplier = 7, 2
    if not _fits((h, w), kernel, dilation, pads):
        # the kernel spans more than the padded input: every separable form refuses it, as
        # the normal convolution does (and as torch does), naming the axis that does not fit
        axis = next(
            i
            for i, (n, kk, (a, b)) in enumerate(zip((h, w), kernel, pads))
            if n + a + b < (kk - 1) * d + 1
        )
        match = f"`kernel_size` {kernel[axis]} with dilation {d} .* spatial axis {axis},"
        for order in ("column_first", "row_first"):
            with pytest.raises(ValueError, match=match):
                cost.spatially_separable(
                    shape, k, filters, order=order, stride=s, padding=padding, dilation=d
                )
        for make in (cost.separable, cost.compare):
            with pytest.raises(ValueError, match=match):
                make(shape, k, filters, stride=s, padding=padding, dilation=d)
        return
    x = meta(1, c, h, w)

    def separable():
        y = torch_conv_nd(
            x,
            meta(c * multiplier, 1, *kernel),
            pads=pads,
            stride=stride,
            dilation=dilation,
            groups=c,
        )
        F.conv2d(y, meta(filters, c * multiplier, 1, 1))

    ours = cost.separable(
        shape, k, filters, depth_multiplier=multiplier, stride=s, padding=padding, dilation=d
    )
    assert ours.flops == torch_flops(separable)
    assert (
        ours.flops
        == cost.pointwise(ours.parts[0].output_shape, filters).flops + ours.parts[0].flops
    )

    column = {
        "size": (kernel[0], 1),
        "pads": [pads[0], (0, 0)],
        "stride": (stride[0], 1),
        "dilation": (dilation[0], 1),
    }
    row = {
        "size": (1, kernel[1]),
        "pads": [(0, 0), pads[1]],
        "stride": (1, stride[1]),
        "dilation": (1, dilation[1]),
    }

    def spatially_separable(first, second, mid, out_channels, groups):
        y = torch_conv_nd(
            x,
            meta(mid, c // groups, *first["size"]),
            pads=first["pads"],
            stride=first["stride"],
            dilation=first["dilation"],
            groups=groups,
        )
        torch_conv_nd(
            y,
            meta(out_channels, mid // groups, *second["size"]),
            pads=second["pads"],
            stride=second["stride"],
            dilation=second["dilation"],
            groups=groups,
        )

    for mid, order, groups in [(c, "column_first", 1), (3, "row_first", 1), (c, "column_first", c)]:
        out_channels = c if groups > 1 else filters
        first, second = (column, row) if order == "column_first" else (row, column)
        ours = cost.spatially_separable(
            shape,
            k,
            out_channels,
            intermediate_channels=mid,
            order=order,
            groups=groups,
            stride=s,
            padding=padding,
            dilation=d,
        )
        assert ours.flops == torch_flops(
            spatially_separable, first, second, mid, out_channels, groups
        )


@pytest.mark.parametrize(
    ("length", "c", "k", "s", "d", "padding"),
    [
        (20, 3, 3, 1, 1, "valid"),
        (20, 3, 4, 2, 1, "same"),
        (17, 4, 5, 3, 2, "same"),
        (9, 2, 2, 1, 3, ((2, 1),)),
        (1, 5, 1, 1, 1, "valid"),
        (6, 6, 7, 2, 1, "same"),
    ],
)
def test_one_dimensional_equals_torch_flop_counter(length, c, k, s, d, padding, tf_same):
    pads = _pads((length,), (k,), (s,), (d,), padding, tf_same)
    x = meta(3, c, length)
    for filters, groups in [(8, 1), (c, c), (2 * c, c)]:
        ours = cost.conv(
            (length, c), k, filters, stride=s, padding=padding, dilation=d, groups=groups, batch=3
        )
        flops = torch_flops(
            torch_conv_nd,
            x,
            meta(filters, c // groups, k),
            pads=pads,
            stride=s,
            dilation=d,
            groups=groups,
        )
        assert ours.flops == flops
    ours = cost.separable((length, c), k, 8, stride=s, padding=padding, dilation=d, batch=3)
    flops = torch_flops(
        lambda: F.conv1d(
            torch_conv_nd(x, meta(c, 1, k), pads=pads, stride=s, dilation=d, groups=c),
            meta(8, c, 1),
        )
    )
    assert ours.flops == flops


@pytest.mark.parametrize(
    ("shape", "k", "s", "d", "padding"),
    [
        ((6, 7, 8, 2), 3, 1, 1, "valid"),
        ((6, 7, 8, 2), (3, 3, 1), 2, 1, "same"),
        ((5, 9, 4, 3), 2, (1, 2, 3), (2, 1, 1), "same"),
        ((4, 4, 4, 1), 3, 1, 1, ((1, 1), (0, 2), (1, 0))),
    ],
    ids=str,
)
def test_three_dimensional_equals_torch_flop_counter(shape, k, s, d, padding, tf_same):
    kernel = (k,) * 3 if isinstance(k, int) else k
    stride = (s,) * 3 if isinstance(s, int) else s
    dilation = (d,) * 3 if isinstance(d, int) else d
    pads = _pads(shape[:3], kernel, stride, dilation, padding, tf_same)
    c = shape[-1]
    x = meta(2, c, *shape[:3])
    ours = cost.conv(shape, k, 4, stride=s, padding=padding, dilation=d, batch=2)
    weight = meta(4, c, *kernel)
    flops = torch_flops(torch_conv_nd, x, weight, pads=pads, stride=stride, dilation=dilation)
    assert ours.flops == flops
    out = torch_conv_nd(x, weight, pads=pads, stride=stride, dilation=dilation)
    assert tuple(out.shape[2:]) == ours.output_shape[:3]
    ours = cost.separable(
        shape, k, 4, depth_multiplier=2, stride=s, padding=padding, dilation=d, batch=2
    )
    flops = torch_flops(
        lambda: F.conv3d(
            torch_conv_nd(
                x, meta(2 * c, 1, *kernel), pads=pads, stride=stride, dilation=dilation, groups=c
            ),
            meta(4, 2 * c, 1, 1, 1),
        )
    )
    assert ours.flops == flops


@pytest.mark.parametrize("shape", [(20, 3), (12, 12, 3), (7, 9, 1), (4, 5, 6, 8)], ids=str)
def test_pointwise_equals_torch_flop_counter(shape):
    conv = {2: F.conv1d, 3: F.conv2d, 4: F.conv3d}[len(shape)]
    c, spatial = shape[-1], shape[:-1]
    for filters, batch in [(1, 1), (256, 1), (5, 3)]:
        ours = cost.pointwise(shape, filters, batch=batch)
        flops = torch_flops(conv, meta(batch, c, *spatial), meta(filters, c, *(1,) * len(spatial)))
        assert ours.flops == flops
        assert ours.multiplications == batch * math.prod(spatial) * c * filters


def test_module_exports():
    assert set(cost.__all__) == {
        "Cost",
        "Comparison",
        "conv",
        "depthwise",
        "pointwise",
        "separable",
        "spatially_separable",
        "filtering",
        "compare",
        "separable_ratio",
    }
