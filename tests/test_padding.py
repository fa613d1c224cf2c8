"""sepconv.padding: TensorFlow/Keras-exact 'same' padding and output sizes."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from sepconv.padding import (
    conv_padding,
    flat_pads,
    output_size,
    padding_of,
    resolve_padding,
    same_padding,
    spatial_passes,
)

pytestmark = pytest.mark.usefixtures("torch_single_thread")


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "dilation", "expected"),
    [
        (12, 5, 1, 1, (2, 2)),
        (224, 3, 2, 1, (0, 1)),  # MobileNet's first layer: the extra row/column at the end
        (225, 3, 2, 1, (1, 1)),
        (8, 3, 2, 1, (0, 1)),
        (7, 3, 2, 1, (1, 1)),
        (10, 4, 1, 1, (1, 2)),  # even kernel: odd total, extra at bottom/right
        (10, 3, 1, 2, (2, 2)),
        (5, 1, 3, 1, (0, 0)),
        (4, 7, 1, 1, (3, 3)),  # kernel larger than the input
        (13, 4, 3, 1, (1, 2)),
        (1, 3, 3, 3, (3, 3)),
    ],
)
def test_same_padding_known_values(size, kernel, stride, dilation, expected):
    assert same_padding(size, kernel, stride, dilation) == expected


def test_same_padding_is_tensorflow_rule(tf_same):
    for size, k, s, d in itertools.product(range(1, 25), range(1, 8), range(1, 4), range(1, 4)):
        before, after = same_padding(size, k, s, d)
        assert (before, after) == tf_same(size, k, s, d)
        assert after - before in (0, 1)
        out = (size + before + after - ((k - 1) * d + 1)) // s + 1
        assert out == -(-size // s)  # ceil(n / stride)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")
@pytest.mark.parametrize(("k", "d"), [(k, d) for k in range(1, 8) for d in (1, 2, 3)])
def test_same_matches_torch_padding_same_at_stride_1(k, d):
    """At stride 1, TF 'same' and torch's padding='same' are the same numbers."""
    torch.manual_seed(k * 10 + d)
    for h, w in [(9, 12), (4, 5), (1, 7)]:
        x = torch.randn(2, 3, h, w, dtype=torch.float64)
        weight = torch.randn(4, 3, k, k + 1, dtype=torch.float64)  # even and odd widths
        expected = F.conv2d(x, weight, padding="same", dilation=d)
        (top, bottom), (left, right) = resolve_padding(
            (h, w), (k, k + 1), dilation=d, padding="same"
        )
        ours = F.conv2d(F.pad(x, (left, right, top, bottom)), weight, dilation=d)
        assert ours.shape == expected.shape == (2, 4, h, w)
        torch.testing.assert_close(ours, expected, rtol=1e-12, atol=1e-12)


def test_output_size_same_is_ceil():
    for n, k, s, d in itertools.product(range(1, 21), range(1, 8), range(1, 4), range(1, 4)):
        assert output_size((n, n + 1), k, stride=s, dilation=d, padding="same") == (
            -(-n // s),
            -(-(n + 1) // s),
        )


def test_output_size_equals_torch():
    """Valid and explicit padding give torch's output size (meta tensors: no compute)."""
    for n, k, s, d, p in itertools.product(
        (1, 5, 12, 17), range(1, 8), range(1, 4), range(1, 4), (0, 1, 3)
    ):
        if n + 2 * p < (k - 1) * d + 1:
            with pytest.raises(ValueError, match="`kernel_size`"):
                output_size((n, n), k, stride=s, dilation=d, padding=p)
            continue
        x = torch.empty(1, 1, n, n, device="meta")
        weight = torch.empty(1, 1, k, k, device="meta")
        y = F.conv2d(x, weight, stride=s, dilation=d, padding=p)
        assert output_size((n, n), k, stride=s, dilation=d, padding=p) == tuple(y.shape[2:])
        if p == 0:
            assert output_size((n, n), k, stride=s, dilation=d, padding="valid") == tuple(
                y.shape[2:]
            )


def test_resolve_padding_forms():
    assert resolve_padding((12, 12), 5) == ((0, 0), (0, 0))
    assert resolve_padding((12, 12), 5, padding="valid") == ((0, 0), (0, 0))
    assert resolve_padding((12, 12), 5, padding="SAME") == ((2, 2), (2, 2))
    assert resolve_padding((12, 12), 5, padding=2) == ((2, 2), (2, 2))
    assert resolve_padding((12, 12), 5, padding=(1, 3)) == ((1, 1), (3, 3))
    assert resolve_padding((12, 12), 5, padding=((0, 1), (2, 3))) == ((0, 1), (2, 3))
    assert resolve_padding((8, 9, 10), (3, 4, 5), stride=2, padding="same") == (
        (0, 1),
        (1, 2),
        (1, 2),
    )
    assert resolve_padding((10,), 4, padding="same") == ((1, 2),)
    assert output_size((12, 12), (5, 3), padding=((0, 1), (2, 3))) == (9, 15)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {"padding": "full"},
            ValueError,
            "`padding` must be 'valid', 'same', a non-negative integer, a tuple of 2 "
            "non-negative integers or a tuple of 2 \\(before, after\\) pairs, got 'full'",
        ),
        ({"padding": -1}, ValueError, "`padding` must be 'valid', 'same'.* got -1"),
        ({"padding": (1, 2, 3)}, ValueError, "`padding` must be"),
        ({"padding": ((1, 2, 3), (0, 0))}, ValueError, "`padding` must be"),
        ({"padding": ((1, -2), (0, 0))}, ValueError, "`padding` must be"),
        ({"padding": True}, TypeError, "`padding` must be"),
        ({"padding": 1.5}, ValueError, "`padding` must be"),
        (
            {"stride": 0},
            ValueError,
            "`stride` must be a positive integer or a tuple of 2 such integers, got 0",
        ),
        ({"stride": 2.0}, TypeError, "`stride` must be a positive integer"),
        ({"stride": "2"}, TypeError, "`stride` must be a positive integer"),
        ({"dilation": (1, 0)}, ValueError, "`dilation` must be a positive integer"),
        ({"kernel_size": (3, 3, 3)}, ValueError, "`kernel_size` must be .* of length 3"),
        (
            {"kernel_size": 13},
            ValueError,
            "`kernel_size` 13 with dilation 1 spans 13 elements along spatial axis 0, more than "
            "the padded input's 12 \\(input size 12, padding 'valid'\\)",
        ),
        (
            {"kernel_size": 4, "dilation": (1, 4)},
            ValueError,
            "`kernel_size` 4 with dilation 4 spans 13 elements along spatial axis 1",
        ),
    ],
)
def test_exception(kwargs, error, match):
    arguments = {"kernel_size": 5, **kwargs}
    with pytest.raises(error, match=match):
        output_size((12, 12), **arguments)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: same_padding(12, 5, 0), ValueError, "`stride` must be a positive integer, got 0"),
        (lambda: same_padding(0, 5), ValueError, "`size` must be a positive integer, got 0"),
        (lambda: same_padding(12, 2.5), TypeError, "`kernel` must be an integer, got 2.5"),
        (
            lambda: same_padding(12, 3, dilation=-1),
            ValueError,
            "`dilation` must be a positive integer, got -1",
        ),
        (
            lambda: output_size((12.5, 12), 3),
            TypeError,
            r"`input_size` must be a tuple of 1 to 32 positive integer sizes, got \(12.5, 12\)",
        ),
        (
            lambda: output_size((0, 12), 3, padding="same"),
            ValueError,
            r"`input_size` must be a tuple of 1 to 32 positive integer sizes, got \(0, 12\)",
        ),
        (
            lambda: resolve_padding((-4, 12), 3, padding="same"),
            ValueError,
            "`input_size` must be a tuple of 1 to 32 positive integer sizes",
        ),
        (
            lambda: output_size(12, 3),
            TypeError,
            "`input_size` must be a tuple of 1 to 32 positive integer sizes, got 12",
        ),
    ],
)
def test_exception_bad_sizes(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_kernel_larger_than_input_fits_with_same_or_enough_padding():
    assert output_size((4, 4), 7, padding="same") == (4, 4)
    assert output_size((4, 4), 7, padding=2) == (2, 2)
    with pytest.raises(ValueError, match="`kernel_size` 7.*use padding='same' or a larger"):
        output_size((4, 4), 7, padding=1)


def test_an_empty_input_with_same_padding_is_not_told_to_use_same_padding():
    import sepconv.nn as snn

    layer = snn.SeparableConv2d(3, 4, 3, padding="same")
    with pytest.raises(ValueError, match="use a larger input$"):
        layer(torch.randn(1, 3, 0, 5))


# ------------------------------------------------------------------------------ ConvPadding
@given(
    size=st.integers(1, 40),
    kernel=st.integers(1, 7),
    stride=st.integers(1, 4),
    dilation=st.integers(1, 3),
    padding=st.sampled_from(["same", "valid", ((1, 2),)]),
)
@settings(max_examples=300, deadline=None)
def test_conv_padding_static_and_symbolic_agree_with_resolve_padding(
    size, kernel, stride, dilation, padding
):
    """The policy resolved at build (static pads, or 'same' per size) and the arithmetic an
    exporter records (symbolic_pads, here on plain ints) give resolve_padding's pads."""
    policy = conv_padding(kernel, stride, padding, dilation, n=1)
    want = resolve_padding((size,), kernel, stride=stride, dilation=dilation, padding=padding)
    assert policy.pads((size,)) == want
    if policy.static is not None:
        assert policy.static == want
    assert policy.symbolic_pads((size,), lambda v: max(v, 0)) == flat_pads(want)


def test_conv_padding_plan_and_zero_taps():
    policy = conv_padding(3, stride=2, padding="same", n=2)
    assert policy.static is None
    plan = policy.plan((8, 9))  # (0, 1) rows, (1, 1) columns
    assert plan.inside is None and plan.outside == (1, 1, 0, 1)
    assert plan.tapped == ((1, 1), (0, 0, 1, 0))
    assert policy.plan((8, 9)) is plan  # memoised
    assert conv_padding(3, padding="same", n=2).plan((5, 5)).inside == (1, 1)
    assert (
        conv_padding(3, stride=2, padding="same", padding_mode="reflect", n=2).plan((8, 8)).tapped
        is None
    )
    with pytest.raises(ValueError, match="`padding_mode` 'reflect' needs a padding smaller"):
        conv_padding(5, padding="same", padding_mode="reflect", n=1).plan((2,))
    with pytest.raises(ValueError, match="`padding_mode` must be one of"):
        conv_padding(3, padding_mode="mirror", n=1)


def test_padding_of_reads_declared_and_torch_padding():
    assert padding_of(torch.nn.Conv2d(2, 2, 3, padding=(1, 2))) == ((1, 1), (2, 2))
    assert padding_of(torch.nn.Conv1d(2, 2, 3, padding="same")) == "same"
    from sepconv.models.mobilenet import Conv2dSame
    from sepconv.nn import DepthwiseConv2d, PointwiseConv2d

    assert padding_of(Conv2dSame(2, 2, 3, stride=2)) == "same"
    assert padding_of(DepthwiseConv2d(2, 3, padding=((0, 1), (1, 1)))) == ((0, 1), (1, 1))
    assert padding_of(PointwiseConv2d(2, 3, 1)) == "valid"


def test_spatial_passes():
    column, row = spatial_passes((3, 5), (2, 1), (1, 2), ((1, 0), (2, 2)))
    assert column == ("column", (3, 1), (2, 1), (1, 1), ((1, 0), (0, 0)))
    assert row == ("row", (1, 5), (1, 1), (1, 2), ((0, 0), (2, 2)))
    assert [p.name for p in spatial_passes((3, 3), (1, 1), (1, 1), "same", "row_first")] == [
        "row",
        "column",
    ]
