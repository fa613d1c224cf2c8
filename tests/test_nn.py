"""Tests of sepconv.nn: layers and functional forms against F.conv compositions, validation,
autograd, memory formats, state dicts, torch.compile and torch's FLOP counter."""

from __future__ import annotations

import copy
import math
import random

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import sepconv.nn as snn
from sepconv import cost
from sepconv.nn import _execution as execution
from sepconv.nn import functional as SF
from sepconv.padding import resolve_padding

CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
DEPTHWISE = {1: snn.DepthwiseConv1d, 2: snn.DepthwiseConv2d, 3: snn.DepthwiseConv3d}
SEPARABLE = {1: snn.SeparableConv1d, 2: snn.SeparableConv2d, 3: snn.SeparableConv3d}
TORCH_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
MODES = ["zeros", "reflect", "replicate", "circular"]


def tf_pads(sizes, kernel, stride, dilation, padding):
    """Explicit pads, with 'same' written out independently (TensorFlow's rule)."""
    if padding != "same":
        return resolve_padding(
            tuple(sizes), kernel, stride=stride, dilation=dilation, padding=padding
        )
    out = []
    for size, k, s, d in zip(sizes, kernel, stride, dilation):
        total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
        out.append((total // 2, total - total // 2))
    return tuple(out)


def reference_depthwise(x, weight, bias, stride, padding, dilation, mode="zeros"):
    """F.pad + F.convNd with groups=C on a contiguous NCHW tensor: the plain composition."""
    n = x.dim() - 2
    stride, dilation = (
        (stride,) * n if isinstance(stride, int) else stride,
        ((dilation,) * n if isinstance(dilation, int) else dilation),
    )
    pads = tf_pads(x.shape[2:], weight.shape[2:], stride, dilation, padding)
    flat = [p for pair in reversed(pads) for p in pair]
    x = F.pad(x.contiguous(), flat, mode="constant" if mode == "zeros" else mode)
    return CONV[n](x, weight, bias, stride, 0, dilation, x.shape[1])


def reference_separable(x, layer, mode="zeros"):
    dw = layer.depthwise
    y = reference_depthwise(x, dw.weight, dw.bias, dw.stride, dw.keras_padding, dw.dilation, mode)
    return CONV[x.dim() - 2](y, layer.pointwise.weight, layer.pointwise.bias)


def random_config(rng: random.Random, n: int) -> dict:
    stride = rng.choice([1, 1, 2, 3])
    dilation = 1 if stride > 1 else rng.choice([1, 1, 2, 3])
    kernel = tuple(rng.choice([1, 2, 3, 4, 5]) for _ in range(n))
    padding = rng.choice(["same", "same", "valid", 1, tuple(rng.randint(0, 2) for _ in range(n))])
    span = max((k - 1) * dilation + 1 for k in kernel)
    sizes = tuple(rng.randint(span, span + 7) for _ in range(n))
    return {
        "n": n,
        "stride": stride,
        "dilation": dilation,
        "kernel": kernel,
        "padding": padding,
        "sizes": sizes,
        "channels": rng.randint(1, 5),
        "multiplier": rng.randint(1, 4),
        "filters": rng.randint(1, 6),
        "batch": rng.randint(1, 3),
        "mode": rng.choice(MODES),
    }


CONFIGS = [random_config(random.Random(seed), 1 + seed % 3) for seed in range(110)]


# ------------------------------------------------------------------------------ smoke / api
def test_smoke():
    layer = snn.SeparableConv2d(3, 256, 5)
    assert isinstance(layer.depthwise, nn.Conv2d) and isinstance(layer.pointwise, nn.Conv2d)
    assert [name for name, _ in layer.named_children()] == ["depthwise", "pointwise"]
    y = layer(torch.randn(2, 3, 12, 12))
    assert y.shape == (2, 256, 8, 8)
    assert layer.cost((2, 3, 12, 12)).multiplications == 2 * 53952
    assert layer.kernel_size == (5, 5) and layer.stride == (1, 1) and layer.dilation == (1, 1)
    assert layer.in_channels == 3 and layer.out_channels == 256 and layer.padding == "valid"
    unbatched = layer.cost((3, 12, 12))
    assert unbatched.batch == 1 and unbatched.input_shape == (12, 12, 3)
    assert unbatched == cost.separable((12, 12, 3), 5, 256)


def test_public_names():
    assert sorted(snn.__all__) == sorted(
        [
            "DepthwiseConv1d",
            "DepthwiseConv2d",
            "DepthwiseConv3d",
            "PointwiseConv1d",
            "PointwiseConv2d",
            "PointwiseConv3d",
            "SeparableConv1d",
            "SeparableConv2d",
            "SeparableConv3d",
            "SpatiallySeparableConv2d",
            "functional",
            "load_keras_weights",
            "to_keras_weights",
            "use_autotune",
            "use_native_depthwise",
        ]
    )
    assert sorted(SF.__all__) == sorted(
        [
            "depthwise_conv1d",
            "depthwise_conv2d",
            "depthwise_conv3d",
            "separable_conv1d",
            "separable_conv2d",
            "separable_conv3d",
            "spatially_separable_conv2d",
            "plain_composition",
            "PADDING_MODES",
        ]
    )


def test_import_sepconv_stays_light(run_python):
    code = (
        "import sys, sepconv; assert 'torch' not in sys.modules; sepconv.nn; "
        "assert 'torch' in sys.modules"
    )
    assert run_python(code=code).returncode == 0


@pytest.mark.parametrize("n", [1, 2, 3])
def test_attributes_like_conv(n):
    layer = SEPARABLE[n](4, 6, 3, stride=2, padding=1, dilation=1, depth_multiplier=2)
    reference = TORCH_CONV[n](4, 6, 3, stride=2, padding=1)
    for name in ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation"):
        assert getattr(layer, name) == getattr(reference, name), name
    dw = DEPTHWISE[n](4, 3, depth_multiplier=3, padding="same")
    assert isinstance(dw, TORCH_CONV[n]) and dw.groups == 4 and dw.out_channels == 12
    assert dw.weight.shape == (12, 1, *(3,) * n) and dw.padding == "same"
    asymmetric = DEPTHWISE[n](4, 3, padding=((0, 1),) * n)
    assert asymmetric.padding == ((0, 1),) * n


def test_children_norm_activation():
    layer = snn.SeparableConv2d(4, 8, 3, norm_layer=nn.BatchNorm2d, activation=nn.ReLU)
    assert [name for name, _ in layer.named_children()] == ["depthwise", "norm", "act", "pointwise"]
    assert layer.norm.num_features == 4
    layer.eval()
    x = torch.randn(2, 4, 9, 9)
    expected = layer.pointwise(torch.relu(layer.norm(layer.depthwise(x))))
    torch.testing.assert_close(layer(x), expected)
    assert isinstance(snn.SeparableConv2d(4, 8, 3, activation=nn.ReLU6()).act, nn.ReLU6)


# ------------------------------------------------------------------------------ numerics
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c['n']}d")
def test_separable_matches_conv_composition(config):
    """110 random settings (1-D, 2-D, 3-D; strides 1-3, dilations, multipliers 1-4, all
    padding modes) against F.pad + F.convNd compositions on NCHW tensors."""
    n, c = config["n"], config
    torch.manual_seed(0)
    layer = SEPARABLE[n](
        c["channels"],
        c["filters"],
        c["kernel"],
        stride=c["stride"],
        padding=c["padding"],
        dilation=c["dilation"],
        depth_multiplier=c["multiplier"],
        padding_mode=c["mode"],
        depthwise_bias=True,
    )
    x = torch.randn(c["batch"], c["channels"], *c["sizes"])
    pads = tf_pads(c["sizes"], c["kernel"], (c["stride"],) * n, (c["dilation"],) * n, c["padding"])
    too_big = any(max(p) >= size for p, size in zip(pads, c["sizes"]))
    if c["mode"] == "reflect" and too_big:
        with pytest.raises(ValueError, match="`padding_mode` 'reflect'"):
            layer(x)
        return
    expected = reference_separable(x, layer, c["mode"])
    y = layer(x)
    torch.testing.assert_close(y, expected, atol=2e-5, rtol=1e-5)
    with torch.no_grad():  # inference takes the zero-tap kernel for asymmetric padding
        torch.testing.assert_close(layer(x), expected, atol=2e-5, rtol=1e-5)
        torch.testing.assert_close(
            layer.depthwise(x),
            reference_depthwise(
                x,
                layer.depthwise.weight,
                layer.depthwise.bias,
                c["stride"],
                c["padding"],
                c["dilation"],
                c["mode"],
            ),
            atol=2e-5,
            rtol=1e-5,
        )
    if c["padding"] == "same":
        assert y.shape[2:] == tuple(math.ceil(s / c["stride"]) for s in c["sizes"])
    assert y.shape[2:] == layer.cost(tuple(x.shape)).output_shape[:-1]


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("size", [7, 8])
def test_depthwise_stride2_same(n, size, tf_same):
    torch.manual_seed(1)
    layer = DEPTHWISE[n](3, 3, stride=2, padding="same", depth_multiplier=2)
    x = torch.randn(2, 3, *(size,) * n)
    pad = tf_same(size, 3, 2)
    assert pad == ((0, 1) if size % 2 == 0 else (1, 1))
    expected = CONV[n](F.pad(x, pad * n), layer.weight, layer.bias, 2, 0, 1, 3)
    torch.testing.assert_close(layer(x), expected)


@pytest.mark.parametrize("order", ["column_first", "row_first"])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("padding", ["same", "valid", ((1, 0), (2, 1))])
def test_spatially_separable(order, stride, padding):
    """Against the full kernel: column (x) row outer product, per output/input channel pair."""
    torch.manual_seed(2)
    layer = snn.SpatiallySeparableConv2d(
        3, 3, (3, 5), stride=stride, padding=padding, order=order, groups=3, bias=False
    )
    x = torch.randn(2, 3, 9, 10)
    full = layer.column.weight * layer.row.weight  # (3, 1, 3, 1) * (3, 1, 1, 5): grouped, exact
    pads = tf_pads((9, 10), (3, 5), (stride, stride), (1, 1), padding)
    expected = F.conv2d(
        F.pad(x, [p for pair in reversed(pads) for p in pair]), full, stride=stride, groups=3
    )
    torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)
    assert [name for name, _ in layer.named_children()] == (
        ["column", "row"] if order == "column_first" else ["row", "column"]
    )
    c = layer.cost((2, 3, 9, 10))
    assert c.output_shape == (*expected.shape[2:], 3)
    assert c == cost.spatially_separable(
        (9, 10, 3),
        (3, 5),
        3,
        order=order,
        stride=stride,
        padding=padding,
        groups=3,
        bias=False,
        batch=2,
    )


def test_channels_last_pass_keeps_a_channels_last_weight():
    """On the channels-last route a pass convolves with a channels-last copy of its weight made
    once (PyTorch copies an NCHW weight on every call): the same result as the NCHW weight,
    bit for bit; an in-place change to the weight is seen; in training the weight itself."""
    torch.manual_seed(4)
    layer = snn.SpatiallySeparableConv2d(6, 8, 5, padding="same", order="row_first").eval()
    x = torch.randn(2, 6, 9, 9).contiguous(memory_format=torch.channels_last)
    first, second = layer.row, layer.column

    def reference() -> torch.Tensor:
        y = F.conv2d(x, first.weight, None, 1, (0, 2))
        return F.conv2d(y, second.weight, second.bias, 1, (2, 0))

    with torch.no_grad(), snn.use_autotune(False):
        assert torch.equal(layer(x), reference())
        kept = first.__dict__["_sepconv_cl_weight"][2]
        assert kept.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(kept, first.weight)
        assert torch.equal(layer(x), reference())
        assert first.__dict__["_sepconv_cl_weight"][2] is kept  # made once
        first.weight.mul_(-2.0)
        assert torch.equal(layer(x), reference())
    with snn.use_autotune(False):
        y = layer(x)
    (grad,) = torch.autograd.grad(y.sum(), [first.weight])
    (want,) = torch.autograd.grad(reference().sum(), [first.weight])
    torch.testing.assert_close(grad, want)
    assert "_sepconv_cl_weight" not in copy.deepcopy(layer).row.__dict__


def test_spatially_separable_intermediate_channels():
    torch.manual_seed(3)
    layer = snn.SpatiallySeparableConv2d(4, 6, 3, padding="same", intermediate_channels=5)
    x = torch.randn(1, 4, 8, 8)
    expected = F.conv2d(
        F.conv2d(x, layer.column.weight, padding=(1, 0)),
        layer.row.weight,
        layer.row.bias,
        padding=(0, 1),
    )
    torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)
    assert layer.column.weight.shape == (5, 4, 3, 1) and layer.row.weight.shape == (6, 5, 1, 3)


@settings(max_examples=40, deadline=None)
@given(
    size=st.integers(1, 20),
    kernel=st.integers(1, 6),
    stride=st.integers(1, 4),
    dilation=st.integers(1, 3),
)
def test_same_output_size_property(size, kernel, stride, dilation):
    layer = snn.DepthwiseConv1d(
        2, kernel, stride=stride, dilation=dilation, padding="same", bias=False
    )
    y = layer(torch.randn(1, 2, size))
    assert y.shape[-1] == math.ceil(size / stride)
    expected = reference_depthwise(
        torch.ones(1, 2, size), layer.weight, None, stride, "same", dilation
    )
    torch.testing.assert_close(layer(torch.ones(1, 2, size)), expected)


# ------------------------------------------------------------------------------ module == function
def test_module_equals_function():
    torch.manual_seed(4)
    x2, x1, x3 = torch.randn(2, 3, 9, 8), torch.randn(2, 3, 11), torch.randn(1, 3, 5, 6, 7)
    for n, x in ((1, x1), (2, x2), (3, x3)):
        sep = SEPARABLE[n](
            3, 4, 3, stride=2, padding="same", depth_multiplier=2, depthwise_bias=True
        )
        fn = getattr(SF, f"separable_conv{n}d")
        torch.testing.assert_close(
            sep(x),
            fn(
                x,
                sep.depthwise.weight,
                sep.pointwise.weight,
                sep.pointwise.bias,
                sep.depthwise.bias,
                2,
                "same",
            ),
        )
        dw = DEPTHWISE[n](3, 3, dilation=2, padding="same", padding_mode="replicate")
        fn = getattr(SF, f"depthwise_conv{n}d")
        torch.testing.assert_close(dw(x), fn(x, dw.weight, dw.bias, 1, "same", 2, "replicate"))
    ss = snn.SpatiallySeparableConv2d(3, 4, (3, 5), stride=2, padding="same", order="row_first")
    torch.testing.assert_close(
        ss(x2),
        SF.spatially_separable_conv2d(
            x2, ss.column.weight, ss.row.weight, ss.column.bias, 2, "same", order="row_first"
        ),
    )


# ------------------------------------------------------------------------------ formats, shapes
@pytest.mark.parametrize("n", [2, 3])
def test_memory_format_is_preserved(n):
    torch.manual_seed(5)
    fmt = torch.channels_last if n == 2 else torch.channels_last_3d
    layer = SEPARABLE[n](8, 6, 3, stride=2, padding="same")
    x = torch.randn(2, 8, *(7,) * n)
    y = layer(x)
    y_cl = layer(x.contiguous(memory_format=fmt))
    assert y.is_contiguous() and y_cl.is_contiguous(memory_format=fmt)
    torch.testing.assert_close(y, y_cl)
    assert x.is_contiguous()  # input untouched


def test_channels_last_1d_input_stays_channels_last():
    torch.manual_seed(11)
    layer = snn.SeparableConv1d(6, 4, 3, stride=2, padding="same")
    x = torch.randn(2, 6, 9)
    x_nlc = x.transpose(1, 2).contiguous().transpose(1, 2)  # (N, C, L) with channel stride 1
    y, y_nlc = layer(x), layer(x_nlc)
    assert y.is_contiguous() and y_nlc.stride(1) == 1
    torch.testing.assert_close(y, y_nlc)


def test_pointwise_writes_caller_format_directly():
    torch.manual_seed(12)
    conv = snn.PointwiseConv2d(8, 5, 1)
    y = torch.randn(2, 8, 6, 7).contiguous(memory_format=torch.channels_last)
    expected = F.conv2d(y.contiguous(), conv.weight, conv.bias)
    out = conv(y, contiguous_output=True)
    assert out.is_contiguous()
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(conv(y), expected, atol=1e-5, rtol=1e-5)


def test_model_surgery_on_children():
    """A pointwise child replaced by a plain nn.Conv2d still gives the same result."""
    torch.manual_seed(13)
    layer = snn.SeparableConv2d(4, 6, 3, stride=2, padding="same")
    x = torch.randn(2, 4, 8, 8)
    expected = layer(x)
    plain = nn.Conv2d(4, 6, 1)
    plain.load_state_dict(layer.pointwise.state_dict())
    layer.pointwise = plain
    y = layer(x)
    assert y.is_contiguous()
    torch.testing.assert_close(y, expected)


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("channels_last", [False, True])
def test_wide_layers_every_path(batch, channels_last):
    """64+ channels: an NCHW input runs in NCHW, a channels-last one there; same numbers."""
    torch.manual_seed(14)
    layer = snn.SeparableConv2d(64, 8, 3, stride=2, padding="same", depth_multiplier=2)
    x = torch.randn(batch, 64, 8, 6)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    expected = reference_separable(x, layer)
    torch.testing.assert_close(layer(x), expected, atol=1e-4, rtol=1e-5)
    with torch.no_grad():
        y = layer(x)
    torch.testing.assert_close(y, expected, atol=1e-4, rtol=1e-5)
    assert y.is_contiguous(memory_format=torch.channels_last) == channels_last


@pytest.mark.parametrize(
    ("channels", "batch", "expected"),
    [(32, 1, True), (32, 8, True), (64, 1, False), (64, 8, False), (512, 8, False)],
)
def test_fast_path_dispatch_rule(channels, batch, expected):
    """2-D NCHW input: channels-last inside below 64 channels, in inference only."""
    x = torch.zeros(batch, channels, 4, 4)
    assert execution.fast(x, 2) is expected
    assert execution.fast(x.contiguous(memory_format=torch.channels_last), 2) is True
    assert execution.fast(x.double(), 2) is False
    weight = torch.zeros(channels, 1, 3, 3, requires_grad=True)
    assert execution.fast(x, 2, weight) is False  # training: NCHW stays NCHW
    with torch.no_grad():
        assert execution.fast(x, 2, weight) is expected
    with SF.plain_composition():
        assert execution.fast(x.contiguous(memory_format=torch.channels_last), 2) is False


def test_depthwise_child_replaced():
    """A depthwise child replaced by a plain module is called without the fast argument."""
    torch.manual_seed(15)
    layer = snn.SeparableConv2d(64, 8, 3, padding=1)
    x = torch.randn(2, 64, 6, 6)
    expected = layer(x)
    plain = nn.Conv2d(64, 64, 3, padding=1, groups=64, bias=False)
    plain.load_state_dict(layer.depthwise.state_dict())
    layer.depthwise = plain
    torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)


def test_unbatched_input():
    torch.manual_seed(6)
    for layer, shape in (
        (snn.SeparableConv2d(3, 4, 3, padding="same"), (3, 6, 6)),
        (snn.DepthwiseConv1d(3, 3), (3, 9)),
        (snn.SpatiallySeparableConv2d(3, 4, 3), (3, 6, 6)),
    ):
        x = torch.randn(*shape)
        torch.testing.assert_close(layer(x), layer(x[None])[0])


def test_flop_counter_agrees_with_cost():
    layer = snn.SeparableConv2d(32, 64, 3, stride=2, padding="same", bias=False)
    x = torch.randn(2, 32, 16, 15)
    with FlopCounterMode(display=False) as counter:
        layer(x)
    assert counter.get_total_flops() == layer.cost(tuple(x.shape)).flops


# ------------------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"depth_multiplier": 0}, "`depth_multiplier` must be a positive integer, got 0"),
        ({"depth_multiplier": 1.5}, "`depth_multiplier` must be a positive integer, got 1.5"),
        ({"depth_multiplier": 2.0}, "`depth_multiplier` must be a positive integer, got 2.0"),
        ({"padding": "full"}, "`padding` must be 'valid', 'same'.*got 'full'"),
        ({"kernel_size": 0}, "`kernel_size` must be a positive integer"),
        ({"stride": 0}, "`stride` must be a positive integer"),
        ({"stride": (1, 0)}, "`stride` must be a positive integer"),
        ({"dilation": 0}, "`dilation` must be a positive integer"),
        ({"padding_mode": "symmetric"}, "`padding_mode` must be one of 'zeros'.*'symmetric'"),
        ({"in_channels": 0}, "`in_channels` must be a positive integer"),
        ({"out_channels": -1}, "`out_channels` must be a positive integer"),
    ],
)
def test_exception(kwargs, match):
    args = {"in_channels": 4, "out_channels": 8, "kernel_size": 3, **kwargs}
    with pytest.raises(ValueError, match=match):
        snn.SeparableConv2d(**args)


def test_exception_depthwise_and_spatial():
    with pytest.raises(ValueError, match="`depth_multiplier`"):
        snn.DepthwiseConv2d(4, 3, depth_multiplier=-1)
    with pytest.raises(ValueError, match="`padding` must be"):
        snn.DepthwiseConv1d(4, 3, padding="causal")
    with pytest.raises(ValueError, match=r"`groups` \(3\) must divide `out_channels` \(4\)"):
        snn.SpatiallySeparableConv2d(3, 4, 3, groups=3)
    with pytest.raises(ValueError, match="`order` must be one of"):
        snn.SpatiallySeparableConv2d(3, 4, 3, order="diagonal")
    with pytest.raises(TypeError, match="`norm_layer`"):
        snn.SeparableConv2d(3, 4, 3, norm_layer="batchnorm")


def test_exception_at_forward():
    layer = snn.SeparableConv2d(4, 8, 3, padding="same", padding_mode="reflect")
    with pytest.raises(ValueError, match="`input` must have 4 channels"):
        layer(torch.randn(1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"`input` must have shape \(N, C, H, W\)"):
        layer(torch.randn(8, 8))
    with pytest.raises(ValueError, match="`padding_mode` 'reflect' needs a padding smaller"):
        layer(torch.randn(1, 4, 1, 8))
    with pytest.raises(ValueError, match="`kernel_size` 5 with dilation 1 spans 5"):
        snn.DepthwiseConv2d(4, 5)(torch.randn(1, 4, 3, 8))
    for cls in (snn.SeparableConv2d, snn.DepthwiseConv2d, snn.SpatiallySeparableConv2d):
        args = (4, 3) if cls is snn.DepthwiseConv2d else (4, 8, 3)
        with pytest.raises(TypeError, match="`input` must be a floating-point tensor"):
            cls(*args)(torch.ones(1, 4, 8, 8, dtype=torch.int64))
    with pytest.raises(ValueError, match="`input_shape` must have 4 channels"):
        layer.cost((1, 3, 8, 8))
    with pytest.raises(ValueError, match="`pointwise_weight` must have shape"):
        SF.separable_conv2d(
            torch.randn(1, 4, 8, 8), torch.randn(4, 1, 3, 3), torch.randn(8, 5, 1, 1)
        )


# ------------------------------------------------------------------------------ autograd, state
@pytest.mark.parametrize("n", [1, 2, 3])
def test_gradcheck(n):
    torch.manual_seed(7)
    size = (5, 6, 4)[:n] if n < 3 else (4, 5, 3)
    layer = SEPARABLE[n](
        2,
        3,
        3,
        stride=2,
        padding="same",
        depth_multiplier=2,
        depthwise_bias=True,
        padding_mode="reflect",
        dtype=torch.float64,
    )
    x = torch.randn(1, 2, *size, dtype=torch.float64, requires_grad=True)
    params = (
        layer.depthwise.weight,
        layer.pointwise.weight,
        layer.pointwise.bias,
        layer.depthwise.bias,
    )
    fn = getattr(SF, f"separable_conv{n}d")

    def f(x, dw, pw, b, dwb):
        return fn(x, dw, pw, b, dwb, 2, "same", 1, "reflect")

    assert torch.autograd.gradcheck(f, (x, *params), fast_mode=True)
    assert torch.autograd.gradcheck(layer, (x,), fast_mode=True)


def test_gradcheck_spatially_separable():
    torch.manual_seed(8)
    layer = snn.SpatiallySeparableConv2d(
        2, 3, (3, 2), stride=2, padding="same", dtype=torch.float64
    )
    x = torch.randn(1, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x,), fast_mode=True)


def test_state_dict_round_trip(tmp_path):
    torch.manual_seed(9)
    for make in (
        lambda: snn.SeparableConv2d(4, 6, 3, padding="same", norm_layer=nn.BatchNorm2d),
        lambda: snn.DepthwiseConv3d(2, 3, depth_multiplier=2),
        lambda: snn.SpatiallySeparableConv2d(3, 5, 3, intermediate_channels=4),
    ):
        a, b = make(), make()
        path = tmp_path / "state.pt"
        torch.save(a.state_dict(), path)
        b.load_state_dict(torch.load(path, weights_only=True))
        x = torch.randn(2, a.in_channels, *(6,) * (x_dim := (a._n if hasattr(a, "_n") else 2)))
        a.eval(), b.eval()
        torch.testing.assert_close(a(x), b(x))
        assert x_dim in (2, 3)
    keys = snn.SeparableConv2d(4, 6, 3, depthwise_bias=True).state_dict().keys()
    assert list(keys) == [
        "depthwise.weight",
        "depthwise.bias",
        "pointwise.weight",
        "pointwise.bias",
    ]


def test_forward_hooks_see_conv_children():
    layer = snn.SeparableConv2d(4, 6, 3, stride=2, padding="same")
    seen = []
    for module in layer.modules():
        if isinstance(module, nn.Conv2d):
            module.register_forward_hook(
                lambda m, i, o: seen.append((type(m).__name__, tuple(o.shape)))
            )
    layer(torch.randn(1, 4, 8, 8))
    assert seen == [("DepthwiseConv2d", (1, 4, 4, 4)), ("PointwiseConv2d", (1, 6, 4, 4))]


# ------------------------------------------------------------------------------ torch.compile
@pytest.mark.parametrize(
    "make",
    [
        lambda: (snn.SeparableConv2d(4, 6, 3, stride=2, padding="same"), (2, 4, 7, 8)),
        lambda: (snn.SeparableConv1d(4, 6, 3, padding="same", padding_mode="circular"), (2, 4, 9)),
        lambda: (snn.SpatiallySeparableConv2d(4, 6, 3, stride=2, padding="same"), (2, 4, 7, 7)),
    ],
    ids=["separable2d", "separable1d", "spatial2d"],
)
def test_torch_compile_full_graph(make):
    """Dynamo traces every layer in one graph (no graph break); aot_eager also checks autograd."""
    torch._dynamo.reset()
    layer, shape = make()
    x = torch.randn(*shape, requires_grad=True)
    compiled = torch.compile(layer, backend="aot_eager", fullgraph=True)
    y = compiled(x)
    torch.testing.assert_close(y, layer(x))
    y.sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape


@pytest.mark.parametrize("stride", [(1, 3), (3, 1), (2, 3)])
def test_one_channel_view_of_channels_last_memory(stride):
    # torch 2.13's oneDNN convolution misreads a one-channel NCHW view of NHWC memory for
    # some strides; the layers must give the float64 result regardless of the input's strides.
    from sepconv.nn import DepthwiseConv2d, SeparableConv2d, SpatiallySeparableConv2d

    torch.manual_seed(0)
    x = torch.randn(2, 11, 6, 1).permute(0, 3, 1, 2)
    for layer in (
        SeparableConv2d(1, 4, (4, 5), stride=stride),
        DepthwiseConv2d(1, (4, 5), stride=stride, depth_multiplier=2),
        SpatiallySeparableConv2d(1, 3, (4, 5), stride=stride),
    ):
        with torch.no_grad():
            expected = layer.double()(x.double().contiguous())
            got = layer.float()(x)
        torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-5)


def test_parametrized_weights():
    """Weight normalisation (a parametrization) on both steps: forward and gradients."""
    from torch.nn.utils import parametrizations

    torch.manual_seed(0)
    layer = snn.SeparableConv2d(4, 6, 3, padding="same")
    x = torch.randn(2, 4, 9, 9)
    want = layer(x)
    parametrizations.weight_norm(layer.depthwise)
    parametrizations.weight_norm(layer.pointwise)
    got = layer(x)
    torch.testing.assert_close(got, want)
    got.sum().backward()
    assert layer.depthwise.parametrizations.weight.original1.grad is not None
    assert layer.pointwise.parametrizations.weight.original1.grad is not None


# ------------------------------------------------------------------------------ conversion
def test_convert_full_rank_handles_every_sepconv_layer():
    """`sepconv.convert` reads every sepconv layer's padding (keras_padding): nothing is
    reported as an undeclared convolution subclass, and full rank is exact."""
    from sepconv.convert import convert
    from sepconv.models.mobilenet import Conv2dSame

    torch.manual_seed(21)
    model = (
        nn.Sequential(
            snn.DepthwiseConv2d(4, 3, stride=2, padding="same", depth_multiplier=2),
            snn.SeparableConv2d(8, 6, 3, padding="same"),
            snn.SpatiallySeparableConv2d(6, 6, 3, stride=2, padding="same"),
            Conv2dSame(6, 8, 3, stride=2),
            snn.PointwiseConv2d(8, 8, 1),
            snn.DepthwiseConv2d(8, 3, padding=((0, 1), (2, 0)), padding_mode="zeros"),
        )
        .double()
        .eval()
    )
    x = torch.randn(2, 4, 19, 18, dtype=torch.float64)
    converted, report = convert(model, rank=10_000, min_speedup=0, example_input=x)
    reasons = {row.name: row.reason for row in report.layers}
    assert not any("declaring" in reason for reason in reasons.values()), reasons
    assert "grouped" in reasons["0"] and "grouped" in reasons["5"]  # depthwise: no groups=1
    assert "1x1" in reasons["4"]
    assert [row.name for row in report.layers if row.replaced] == ["3"]
    assert isinstance(converted[3], snn.SeparableConv2d)
    assert converted[3].padding == "same" and converted[3].stride == (2, 2)
    with torch.no_grad():
        torch.testing.assert_close(converted(x), model(x), rtol=1e-10, atol=1e-10)
    one_d = (
        nn.Sequential(
            snn.DepthwiseConv1d(3, 3, stride=2, padding="same"),
            snn.SeparableConv1d(3, 4, 3),
            nn.Conv1d(4, 5, 3),
        )
        .double()
        .eval()
    )
    _, report = convert(one_d, rank=10_000)
    assert not any("declaring" in row.reason for row in report.layers)


def test_padding_set_after_build_is_resolved_again():
    """Setting `padding` or `padding_mode` on a layer resolves its policy again."""
    torch.manual_seed(22)
    x = torch.randn(1, 3, 9, 8)
    layer = snn.DepthwiseConv2d(3, 3, stride=2, padding="valid")
    layer.padding = "same"
    assert layer.padding == "same" and layer.keras_padding == "same"
    fresh = snn.DepthwiseConv2d(3, 3, stride=2, padding="same")
    fresh.load_state_dict(layer.state_dict())
    torch.testing.assert_close(layer(x), fresh(x))
    layer.padding_mode = "reflect"
    assert layer.padding_mode == "reflect" and "padding_mode=reflect" in repr(layer)
    torch.testing.assert_close(
        layer(x), reference_depthwise(x, layer.weight, layer.bias, 2, "same", 1, "reflect")
    )


def test_functional_checks_every_call():
    """A call with valid settings does not let a later one with a float or bool pass."""
    x, weight = torch.randn(1, 2, 6, 6), torch.randn(2, 1, 3, 3)
    SF.depthwise_conv2d(x, weight, stride=1)
    for stride in (1.0, True, (1, 1.0)):
        with pytest.raises((ValueError, TypeError), match="`stride`"):
            SF.depthwise_conv2d(x, weight, stride=stride)


def test_layer_pickled_without_resolved_padding_loads():
    """A layer whose pickle holds only `padding` (as older versions wrote) resolves it."""
    import pickle

    torch.manual_seed(23)
    layer = snn.SeparableConv2d(3, 4, 3, stride=2, padding="same", padding_mode="reflect")
    x = torch.randn(1, 3, 8, 9)
    state = layer.depthwise.__dict__.copy()
    del state["_padding"]
    old = snn.DepthwiseConv2d.__new__(snn.DepthwiseConv2d)
    old.__setstate__(state)
    assert old.keras_padding == "same" and old.padding_mode == "reflect"
    layer.depthwise = old
    torch.testing.assert_close(layer(x), pickle.loads(pickle.dumps(layer))(x))
    torch.testing.assert_close(layer(x), reference_separable(x, layer, "reflect"))


# ----------------------------------------------------------------- calls off the CPU (meta)
def test_off_cpu_calls_run_steps_directly_unless_observed():
    """Off the CPU (a GPU; here meta tensors, which take the same path) an unhooked layer
    runs its convolutions directly; a hook, a global hook or an instance ``forward`` on a step
    makes it call the steps as modules, so they see the call."""
    layer = snn.SeparableConv2d(8, 16, 3, 2, padding="same", activation=nn.ReLU).to("meta")
    x = torch.empty(2, 8, 20, 20, device="meta")
    calls = []
    original = snn.DepthwiseConv2d.forward

    def spy(self, *args, **kwargs):
        calls.append(type(self).__name__)
        return original(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(snn.DepthwiseConv2d, "forward", spy)
        # the class's forward replaced: not the one the direct path stands for
        assert layer(x).shape == (2, 16, 10, 10)
    assert calls == ["DepthwiseConv2d"]
    seen = []
    handle = layer.depthwise.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    y = layer(x)
    handle.remove()
    assert seen == [(2, 8, 10, 10)] and y.shape == (2, 16, 10, 10)
    handle = nn.modules.module.register_module_forward_hook(lambda m, i, o: seen.append(1))
    layer(x)
    handle.remove()
    assert seen.count(1) == 4  # the layer, depthwise, act, pointwise
    layer.pointwise.forward = lambda t, **kw: torch.zeros(2, 16, 10, 10, device="meta") + 1
    assert layer(x).shape == (2, 16, 10, 10)
    del layer.pointwise.forward
    dw = snn.DepthwiseConv2d(8, 3, 2, padding="same").to("meta")
    assert dw(x).shape == (2, 8, 10, 10) and dw(x[0]).shape == (8, 10, 10)
    assert layer(x).is_contiguous()  # memory formats out: tests/test_cuda.py (meta kernels
    # do not keep channels-last)


def test_zero_tapped_kernel_is_kept_while_the_weight_is_unchanged():
    """Keras 'same' at stride 2 on an even size runs with zero taps on the kernel; the tapped
    kernel is kept between inference calls and made anew when the weight changes (in place,
    replaced, converted), so results always follow the weight."""
    torch.manual_seed(0)
    layer = snn.DepthwiseConv2d(6, 3, 2, padding="same", bias=False)
    x = torch.randn(2, 6, 12, 10)

    def want():
        return F.conv2d(F.pad(x, (0, 1, 0, 1)), layer.weight, None, 2, 0, 1, 6)

    with torch.no_grad(), snn.use_native_depthwise(False):
        torch.testing.assert_close(layer(x), want())
        kept = layer.__dict__["_sepconv_tapped"][2]
        torch.testing.assert_close(layer(x), want())
        assert layer.__dict__["_sepconv_tapped"][2] is kept  # reused
        layer.weight.mul_(-3)
        torch.testing.assert_close(layer(x), want())
        layer.weight = nn.Parameter(torch.randn(6, 1, 3, 3))
        torch.testing.assert_close(layer(x), want())
        layer.double()
        x = x.double()
        torch.testing.assert_close(layer(x), want())
        copy = __import__("copy").deepcopy(layer)
        copy.weight.mul_(2)
        torch.testing.assert_close(copy(x), 2 * want())
        torch.testing.assert_close(layer(x), want())
    y = layer(x.requires_grad_(True))  # training: a padded copy, gradients right
    torch.testing.assert_close(y, want())


@pytest.mark.parametrize("padding", ["same", "valid", (1, 0, 2)])
def test_depthwise3d_layers_run_the_native_kernel_in_inference(monkeypatch, padding):
    """An NCDHW input of DepthwiseConv3d in inference runs the native 3-D kernel (kept NCDHW,
    not converted to channels_last_3d), with PyTorch's result; so does SeparableConv3d's
    depthwise step where the layer stays NCDHW (one sample of 64 channels or more), not where
    it converts the input for its pointwise step; in training too, with PyTorch's gradients.
    Not inside use_native_depthwise(False), or on a channels_last_3d input."""
    from sepconv.nn import _native_depthwise as native

    if not native.available():
        pytest.skip("the native depthwise kernel is not built here")
    calls = []
    original = native.depthwise_conv3d

    def spy(*args, **kwargs):
        calls.append(args[0].shape)
        return original(*args, **kwargs)

    monkeypatch.setattr(native, "depthwise_conv3d", spy)
    torch.manual_seed(0)
    cases = [
        (snn.DepthwiseConv3d(6, 3, (1, 2, 2), padding, depth_multiplier=2), (2, 6, 5, 9, 8), 1),
        (snn.SeparableConv3d(64, 4, 3, stride=2, padding=padding), (1, 64, 5, 9, 8), 1),
        (snn.SeparableConv3d(6, 4, 3, stride=2, padding=padding), (2, 6, 5, 9, 8), 0),
    ]
    for layer, shape, native_calls in cases:
        x = torch.randn(shape)
        plain = copy.deepcopy(layer)
        with torch.no_grad(), snn.use_autotune(False):  # the untimed choice
            del calls[:]
            y = layer(x)
            assert len(calls) == native_calls and y.is_contiguous()
            with SF.plain_composition():
                expected = plain(x)
            torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-5)
            with snn.use_native_depthwise(False):
                del calls[:]
                layer(x)
                assert not calls
            del calls[:]
            y_cl = layer(x.contiguous(memory_format=torch.channels_last_3d))
            assert not calls and y_cl.is_contiguous(memory_format=torch.channels_last_3d)
        del calls[:]
        grad_x = torch.randn_like(y)
        with snn.use_autotune(False):  # training: the same choice
            trained = layer(x.requires_grad_(True))
            trained.backward(grad_x)
        assert len(calls) == native_calls
        with SF.plain_composition():
            x2 = x.detach().requires_grad_(True)
            plain(x2).backward(grad_x)
        torch.testing.assert_close(x.grad, x2.grad, rtol=1e-5, atol=1e-5)
        for p, q in zip(layer.parameters(), plain.parameters()):
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-4)
