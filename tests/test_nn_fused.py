"""The fused depthwise-pointwise inference kernel (sepconv.nn._fused) against PyTorch's two
convolutions, and its prepared call inside the separable layers (sepconv.nn._prepared)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import sepconv.nn as snn
from sepconv.nn import _autotune, _fused, _prepared
from sepconv.nn import _native_depthwise as native

pytestmark = pytest.mark.skipif(
    not _fused.available(), reason="no AVX-512F or AVX2, or no native build"
)
CL = torch.channels_last


def _reference(x, dw, dwb, pw, pwb, stride, pads, dilation, clamp=None):
    """The two convolutions in float64, the depthwise output clamped to ``clamp``."""
    top, bottom, left, right = pads
    x = F.pad(x.double(), (left, right, top, bottom))
    y = F.conv2d(
        x, dw.double(), None if dwb is None else dwb.double(), stride, 0, dilation, dw.shape[0]
    )
    if clamp is not None:
        y = y.clamp(*clamp)
    return F.conv2d(y, pw.double(), None if pwb is None else pwb.double())


@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("channels", [257, 600])
@pytest.mark.parametrize("size", [(5, 6), (29, 31)])
def test_many_input_channels(channels, channels_last, size):
    """More input channels than the AVX2 kernel takes at once (its chunks of 256, the partial
    sums kept in the output between them), in one tile or several (29 x 31: tiles of rows
    sized by a chunk's channels): the same sums, clamps applied once at the end."""
    g = torch.Generator().manual_seed(channels)
    x = torch.randn(2, channels, *size, generator=g)
    if channels_last:
        x = x.contiguous(memory_format=CL)
    dw, dwb = torch.randn(channels, 1, 3, 3, generator=g), torch.randn(channels, generator=g)
    pw, pwb = torch.randn(70, channels, 1, 1, generator=g), torch.randn(70, generator=g)
    pads = (1, 1, 1, 1)
    packed = _fused.pack(dw, dwb, pw, pwb, clamp=(0.0, 6.0), out_clamp=(-20.0, 25.0))
    y = _fused.separable_conv2d(x, packed, 1, pads, 1, 2)
    want = F.conv2d(
        F.conv2d(x.double(), dw.double(), dwb.double(), 1, 1, 1, channels).clamp(0, 6),
        pw.double(),
        pwb.double(),
    ).clamp(-20, 25)
    assert (y.double() - want).abs().max().item() <= 1e-5 * (want.abs().max().item() + 1)
    assert (y == 25).any() and (y == -20).any()  # the clamps took effect
    with_avx512 = native._use_avx512(False)
    try:
        other = _fused.separable_conv2d(x, packed, 1, pads, 1, 1)
    finally:
        native._use_avx512(with_avx512)
    assert other.equal(y)


@settings(max_examples=60, deadline=None)
@given(
    batch=st.integers(1, 3),
    channels=st.integers(1, 40),
    out_channels=st.integers(1, 140),
    size=st.tuples(st.integers(1, 17), st.integers(1, 17)),
    kernel=st.tuples(st.integers(1, 5), st.integers(1, 5)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    pads=st.tuples(*[st.integers(0, 3)] * 4),
    biases=st.tuples(st.booleans(), st.booleans()),
    threads=st.sampled_from([1, 2, 3]),
    channels_last=st.booleans(),
)
def test_equals_the_two_convolutions(
    batch,
    channels,
    out_channels,
    size,
    kernel,
    stride,
    dilation,
    pads,
    biases,
    threads,
    channels_last,
):
    top, bottom, left, right = pads
    span_h, span_w = (kernel[0] - 1) * dilation[0] + 1, (kernel[1] - 1) * dilation[1] + 1
    if size[0] + top + bottom < span_h or size[1] + left + right < span_w:
        return  # the kernel does not fit
    g = torch.Generator().manual_seed(batch * 1000 + channels)
    x = torch.randn(batch, channels, *size, generator=g)
    if channels_last:
        x = x.contiguous(memory_format=CL)
    dw = torch.randn(channels, 1, *kernel, generator=g)
    pw = torch.randn(out_channels, channels, 1, 1, generator=g)
    dwb = torch.randn(channels, generator=g) if biases[0] else None
    pwb = torch.randn(out_channels, generator=g) if biases[1] else None
    before = x.clone()
    y = _fused.separable_conv2d(x, _fused.pack(dw, dwb, pw, pwb), stride, pads, dilation, threads)
    want = _reference(x, dw, dwb, pw, pwb, stride, pads, dilation)
    assert y.shape == want.shape and y.dtype == torch.float32
    # an input contiguous in both formats (one channel, say) counts as NCHW, as in the layers
    expected = CL if not x.is_contiguous() else torch.contiguous_format
    assert y.is_contiguous(memory_format=expected)
    scale = want.abs().max().item() + 1
    assert (y.double() - want).abs().max().item() <= 2e-6 * scale * (
        channels * kernel[0] * kernel[1]
    ) ** 0.5
    assert x.equal(before)
    with_avx512 = native._use_avx512(False)  # the AVX2 kernel: the same sums in the same order
    try:
        other = _fused.separable_conv2d(
            x, _fused.pack(dw, dwb, pw, pwb), stride, pads, dilation, threads
        )
    finally:
        native._use_avx512(with_avx512)
    assert other.equal(y)


@pytest.mark.parametrize("channels_last", [False, True])
def test_result_does_not_depend_on_the_thread_count(channels_last):
    torch.manual_seed(0)
    x = torch.randn(2, 96, 30, 30)
    if channels_last:
        x = x.contiguous(memory_format=CL)
    packed = _fused.pack(
        torch.randn(96, 1, 3, 3), torch.randn(96), torch.randn(200, 96, 1, 1), None
    )
    runs = [_fused.separable_conv2d(x, packed, 1, (1, 1, 1, 1), 1, t) for t in (1, 2, 4)]
    assert runs[0].equal(runs[1]) and runs[0].equal(runs[2])


@pytest.mark.parametrize(
    ("shape", "out_channels", "kernel", "stride", "dilation", "pads"),
    [
        ((1, 32, 112, 112), 64, 3, 1, 1, (1, 1, 1, 1)),  # MobileNet's second block
        ((2, 64, 112, 112), 128, 3, 2, 1, (0, 1, 0, 1)),  # Keras 'same' at stride 2
        ((1, 8, 161, 150), 13, 3, 1, 1, (1, 1, 1, 1)),  # few channels, odd widths
        ((2, 33, 141, 127), 65, 3, 2, 1, (1, 1, 1, 1)),  # tails everywhere
        ((1, 40, 120, 97), 70, 5, 1, 2, (4, 4, 4, 4)),  # 5 x 5, dilated
        ((1, 24, 150, 200), 30, (1, 7), (1, 3), 1, (0, 0, 3, 3)),  # 1 x 7, strides 1 and 3
        ((1, 300, 40, 40), 200, 3, 1, 1, (1, 1, 1, 1)),  # input channels in three chunks
        ((1, 128, 40, 40), 64, 3, 1, 1, (9, 9, 1, 1)),  # strips of rows wholly in the padding
    ],
)
def test_large_nchw_images_run_in_strips(shape, out_channels, kernel, stride, dilation, pads):
    """An NCHW image whose buffers exceed the second-level cache runs as it is, in strips of
    output rows (no layout conversion): equal to the two convolutions, the clamps applied,
    the same result on 1, 2 and 3 threads, the input untouched."""
    g = torch.Generator().manual_seed(shape[1])
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    c = shape[1]
    x = torch.randn(*shape, generator=g)
    dw, dwb = torch.randn(c, 1, kh, kw, generator=g), torch.randn(c, generator=g)
    pw = torch.randn(out_channels, c, 1, 1, generator=g) / c**0.5
    pwb = torch.randn(out_channels, generator=g)
    packed = _fused.pack(dw, dwb, pw, pwb, clamp=(-1.0, 2.0), out_clamp=(-1.5, 1.5))
    before = x.clone()
    runs = [_fused.separable_conv2d(x, packed, stride, pads, dilation, t) for t in (1, 2, 3)]
    want = _reference(x, dw, dwb, pw, pwb, stride, pads, dilation, (-1, 2)).clamp(-1.5, 1.5)
    y = runs[0]
    assert y.shape == want.shape and y.is_contiguous()
    oh, ow = want.shape[2:]  # one image's buffers (input, depthwise output, a block) > 2 MB
    assert (c * (shape[2] * shape[3] + oh * ow) + oh * ow * 64) * 4 > 2 << 20
    torch.testing.assert_close(y.double(), want, rtol=1e-5, atol=1e-5)
    assert (y == 1.5).any() and (y == -1.5).any()  # the output clamps took effect
    assert runs[1].equal(y) and runs[2].equal(y)
    assert x.equal(before)


@pytest.mark.parametrize(
    ("shape", "out_channels", "kernel", "stride", "dilation", "pads"),
    [
        ((1, 256, 28, 28), 256, 3, 1, 1, (1, 1, 1, 1)),  # MobileNet, ten tiles of three rows
        ((2, 256, 28, 28), 512, 3, 2, 1, (0, 1, 0, 1)),  # Keras 'same' at stride 2
        ((1, 512, 14, 14), 512, 3, 1, 1, (1, 1, 1, 1)),  # tiles of one row, split outputs
        ((1, 1024, 7, 7), 1000, 3, 1, 1, (1, 1, 1, 1)),  # chunks of input channels, a tail
        ((1, 96, 45, 37), 70, 5, 1, 2, (4, 4, 4, 4)),  # 5 x 5, dilated, odd sizes
        ((1, 128, 20, 20), 64, 3, 1, 1, (12, 12, 1, 1)),  # tiles wholly in the padding
    ],
)
def test_small_nchw_images_run_in_converted_tiles(
    shape, out_channels, kernel, stride, dilation, pads
):
    """An NCHW image whose buffers take at most 2 MB runs in tiles of output rows whose input
    rows are converted to channels-last in cache: the result is the channels-last kernel's,
    bit for bit, on a channels-last copy, on 1, 2 and 3 threads; equal to the two
    convolutions; the input untouched."""
    g = torch.Generator().manual_seed(shape[1])
    c = shape[1]
    x = torch.randn(*shape, generator=g)
    dw, dwb = torch.randn(c, 1, kernel, kernel, generator=g), torch.randn(c, generator=g)
    pw = torch.randn(out_channels, c, 1, 1, generator=g) / c**0.5
    pwb = torch.randn(out_channels, generator=g)
    packed = _fused.pack(dw, dwb, pw, pwb, clamp=(-1.0, 2.0))
    before = x.clone()
    runs = [_fused.separable_conv2d(x, packed, stride, pads, dilation, t) for t in (1, 2, 3)]
    y = runs[0]
    oh, ow = y.shape[2:]
    assert (c * (shape[2] * shape[3] + oh * ow) + oh * ow * 64) * 4 <= 2 << 20
    assert y.is_contiguous()
    cl = _fused.separable_conv2d(x.contiguous(memory_format=CL), packed, stride, pads, dilation)
    assert cl.is_contiguous(memory_format=CL) and y.equal(cl)
    assert runs[1].equal(y) and runs[2].equal(y)
    want = _reference(x, dw, dwb, pw, pwb, stride, pads, dilation, (-1, 2))
    torch.testing.assert_close(y.double(), want, rtol=1e-5, atol=1e-5)
    assert x.equal(before)


def test_refuses_what_it_does_not_cover():
    packed = _fused.pack(torch.randn(4, 1, 3, 3), None, torch.randn(8, 4, 1, 1), None)
    x = torch.randn(1, 4, 6, 6)
    assert _fused.separable_conv2d(x[..., ::2], packed, 1, (1, 1, 1, 1), 1) is None  # strided
    x = x.contiguous(memory_format=CL)
    assert _fused.separable_conv2d(x.double(), packed, 1, (1, 1, 1, 1), 1) is None
    assert _fused.separable_conv2d(x[:, :3], packed, 1, (1, 1, 1, 1), 1) is None


def _layer(**kwargs) -> nn.Module:
    torch.manual_seed(0)
    return snn.SeparableConv2d(16, 72, 3, padding="same", **kwargs).eval()


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("stride", [1, 2])
def test_prepared_call_returns_the_callers_format(channels_last, stride):
    layer = snn.SeparableConv2d(16, 72, 3, stride, padding="same", depthwise_bias=True).eval()
    x = torch.randn(2, 16, 13, 12)
    if channels_last:
        x = x.contiguous(memory_format=CL)
    with torch.no_grad():
        call = _prepared.fused(layer, x)
        got = call(x)
        with snn.use_autotune(False), snn.use_native_depthwise(False):
            want = layer(x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert got.is_contiguous(memory_format=CL if channels_last else torch.contiguous_format)


def test_prepared_call_sees_weights_changed_in_place():
    layer = _layer()
    x = torch.randn(1, 16, 9, 9)
    other = _layer(bias=True)
    with torch.no_grad():
        other.pointwise.weight.mul_(-3)
        other.depthwise.weight.add_(1)
        call = _prepared.fused(layer, x)
        call(x)
        layer.load_state_dict(other.state_dict())  # copies into the same tensors
        call(x)
        layer.depthwise.weight.data = layer.depthwise.weight.data * 2  # new storage
        got = call(x)
        with snn.use_autotune(False):
            want = layer(x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_prepared_call_declines_what_it_does_not_cover():
    x = torch.randn(1, 16, 9, 9)
    with torch.no_grad():
        assert _prepared.fused(_layer(norm_layer=nn.BatchNorm2d).train(), x) is None
        assert _prepared.fused(_layer(norm_layer=nn.LayerNorm), x) is None
        assert _prepared.fused(_layer(activation=nn.GELU), x) is None
        assert _prepared.fused(_layer(depth_multiplier=2), x) is None
        assert _prepared.fused(_layer(padding_mode="reflect"), x) is None
        assert _prepared.fused(_layer().double(), x.double()) is None
    assert _prepared.fused(_layer(), x) is None  # gradients wanted for the weights
    layer = _layer()
    with torch.no_grad():
        call = _prepared.fused(layer, x)
    assert call(x) is None  # called with gradients enabled: the general path runs


def test_layer_in_training_never_takes_the_fused_route():
    layer = _layer().train()
    x = torch.randn(2, 16, 9, 9, requires_grad=True)
    layer(x).sum().backward()
    assert all(route[1] != "fused" for route in layer._sepconv_routes.values())
    assert x.grad is not None
    _autotune.clear()


def test_pytorchs_openmp_team_and_the_own_pool_give_the_same_result():
    """Where PyTorch runs OpenMP, the native kernels run their threads in its team (two pools
    would compete for the cores); the result does not depend on which threads ran."""
    from sepconv.nn import _native_depthwise as native

    torch.manual_seed(0)
    x = torch.randn(2, 64, 20, 20)
    packed = _fused.pack(torch.randn(64, 1, 3, 3), None, torch.randn(96, 64, 1, 1), None)
    w = torch.randn(64, 1, 3, 3)
    results = []
    try:
        for on in (True, False):
            native._use_openmp(on)
            results.append(
                (
                    _fused.separable_conv2d(x, packed, 1, (1, 1, 1, 1), 1, 2),
                    native.depthwise_conv2d(x, w, None, 1, 1),
                )
            )
    finally:
        used = native._use_openmp(True)
    assert results[0][0].equal(results[1][0]) and results[0][1].equal(results[1][1])
    if "parallel backend: OpenMP" in torch.__config__.parallel_info():
        assert used


@pytest.mark.parametrize("activation", [None, nn.ReLU, nn.ReLU6, lambda: nn.Hardtanh(-0.5, 2.0)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_batch_norm_and_activation_between_the_steps(activation, channels_last):
    """MobileNet's separable block: depthwise, batch norm, activation, pointwise. In eval mode
    the norm is folded into the depthwise weights and the activation clamps the depthwise
    output; a NaN stays NaN, as PyTorch's activations leave it."""
    torch.manual_seed(0)
    layer = snn.SeparableConv2d(
        16, 40, 3, 1, padding="same", norm_layer=nn.BatchNorm2d, activation=activation
    )
    with torch.no_grad():
        for _ in range(3):  # running statistics far from 0 and 1
            layer(torch.randn(4, 16, 12, 12) * 3 + 1)
    layer.eval()
    x = torch.randn(2, 16, 12, 12)
    x[0, 0, 3, 3] = float("nan")
    if channels_last:
        x = x.contiguous(memory_format=CL)
    with torch.no_grad():
        got = _prepared.fused(layer, x)(x)
        with snn.use_autotune(False), snn.use_native_depthwise(False):
            want = layer(x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5, equal_nan=True)
    assert got.isnan().any()


def test_batch_norm_changes_are_seen():
    layer = _layer(norm_layer=nn.BatchNorm2d, activation=nn.ReLU)
    x = torch.randn(1, 16, 9, 9)
    with torch.no_grad():
        call = _prepared.fused(layer, x)
        call(x)
        layer.norm.running_mean.add_(0.5)  # in place, as load_state_dict does
        layer.norm.running_var.mul_(3)
        got = call(x)
        with snn.use_autotune(False):
            want = layer(x)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
        layer.train()
        assert call(x) is None  # training mode: statistics of the batch, the general path


def test_large_inputs_take_the_pixel_by_pixel_depthwise_order():
    """Above 4 MB of input and four vectors of channels (64 with AVX-512, 32 with AVX2) the
    depthwise part runs pixel by pixel (it streams better from memory); same result as the
    two convolutions."""
    torch.manual_seed(0)
    x = torch.randn(2, 96, 80, 80).contiguous(memory_format=CL)
    assert x.numel() * 4 > 4 << 20
    dw, pw, pwb = torch.randn(96, 1, 3, 3), torch.randn(70, 96, 1, 1), torch.randn(70)
    y = _fused.separable_conv2d(x, _fused.pack(dw, None, pw, pwb), 2, (0, 1, 0, 1), 1)
    want = _reference(x, dw, None, pw, pwb, 2, (0, 1, 0, 1), 1)
    torch.testing.assert_close(y.double(), want, rtol=1e-5, atol=1e-4)


def _block(activation=nn.ReLU):
    from sepconv.models.mobilenet import SeparableBlock

    torch.manual_seed(3)
    block = SeparableBlock(16, 40, activation=activation)
    with torch.no_grad():
        for _ in range(3):  # running statistics far from 0 and 1, both norms
            block(torch.randn(4, 16, 10, 10) * 3 + 1)
    return block.eval()


def _plain(block, x):
    with snn.use_autotune(False), snn.use_native_depthwise(False):
        return block.act(block.norm(block.conv(x)))


def _epilogue_prepared(block):
    return any(k[-1] == "after" for k in block.conv.__dict__.get("_sepconv_prepared", {}))


@pytest.mark.parametrize("activation", [nn.ReLU, nn.ReLU6, lambda: nn.Hardtanh(-0.5, 2.0)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_block_norm_and_activation_after_the_layer(activation, channels_last):
    """MobileNet's block: the batch norm after the pointwise step folded into its weights,
    the activation a clamp of the output, in the same fused call; a NaN stays NaN."""
    block = _block(activation)
    x = torch.randn(2, 16, 10, 10)
    x[0, 0, 3, 3] = float("nan")
    if channels_last:
        x = x.contiguous(memory_format=CL)
    with torch.no_grad():
        got = _prepared.fused(block.conv, x, block._modules)(x)
        want = _plain(block, x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5, equal_nan=True)
    assert got.isnan().any()
    assert got.is_contiguous(memory_format=CL if channels_last else torch.contiguous_format)


def test_block_takes_the_epilogue_once_its_route_is_fused():
    block = _block()
    x = torch.randn(2, 16, 10, 10).contiguous(memory_format=CL)
    with torch.no_grad():
        block.conv._sepconv_routes = {_autotune._key(block.conv, x): ("cl", "fused")}
        got = block(x)
        assert _epilogue_prepared(block)
        torch.testing.assert_close(got, _plain(block, x), rtol=1e-5, atol=1e-5)
        block.norm.running_mean.add_(0.5)  # in place, as load_state_dict does
        torch.testing.assert_close(block(x), _plain(block, x), rtol=1e-5, atol=1e-5)
        seen = []
        handle = block.norm.register_forward_hook(lambda *_: seen.append(1))
        block(x)  # a hook on the norm: the modules are called, the hook sees its call
        assert seen == [1]
        handle.remove()
        block.act = nn.GELU()  # not a clamp: the general path
        torch.testing.assert_close(block(x), _plain(block, x), rtol=1e-5, atol=1e-5)
        block.train()
    y = block(x.requires_grad_(True))  # training: the modules in turn, gradients flow
    y.sum().backward()
    assert x.grad is not None


def test_block_with_a_fused_route_is_timed_again_at_its_eighth_call(monkeypatch):
    """A block whose layer's route is the fused kernel calls that kernel directly, not the
    layer; its calls are counted all the same, and its RETUNE_AT-th call goes through the
    layer, whose routes are timed again there (warm), as any layer's are."""
    block = _block()
    x = torch.randn(2, 16, 10, 10).contiguous(memory_format=CL)
    timings = []

    def counted(*args, **kwargs):
        timings.append(1)
        return ("cl", "fused")

    monkeypatch.setattr(_autotune, "_tune", counted)
    with torch.no_grad():
        want = _plain(block, x)
        for call in range(1, _autotune.RETUNE_AT + 3):
            got = block(x)
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
            assert len(timings) == (1 if call < _autotune.RETUNE_AT else 2)
            assert _epilogue_prepared(block) == (call > 1)  # the first call timed the layer
    (timing,) = block.conv.__dict__["_sepconv_shared"].values()
    assert timing.retuned


def test_mobilenet_runs_nchw_inputs_channels_last_inside():
    from sepconv.models import mobilenet_v1

    torch.manual_seed(0)
    net = mobilenet_v1(width_multiplier=0.25, num_classes=10).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        got, features = net(x), net.forward_features(x)
        with snn.use_autotune(False), snn.use_native_depthwise(False):
            want = net.classifier(net.flatten(net.pool(net.blocks(net.stem(x)))))
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    assert features.is_contiguous()  # the caller's format back
    net.train()
    x.requires_grad_(True)
    net(x).sum().backward()
    assert x.grad.is_contiguous()


def test_block_sees_norm_tensors_replaced_and_eps():
    """New tensors in the norms (buffers and parameters assigned anew, again and again: a new
    one may land where a freed one was), ``p.data = t`` and ``eps`` are all seen."""
    block = _block()
    x = torch.randn(1, 16, 10, 10).contiguous(memory_format=CL)
    edits = [
        lambda: setattr(block.norm, "running_mean", block.norm.running_mean + 0.1),
        lambda: setattr(block.conv.norm, "running_var", block.conv.norm.running_var * 1.5),
        lambda: setattr(block.norm, "weight", nn.Parameter(block.norm.weight * 0.5)),
        lambda: setattr(block.norm.weight, "data", block.norm.weight.data * 0.9),
        lambda: setattr(block.conv.norm, "bias", nn.Parameter(block.conv.norm.bias + 0.2)),
        lambda: setattr(block.norm, "eps", block.norm.eps * 4),
    ]
    with torch.no_grad():
        block.conv._sepconv_routes = {_autotune._key(block.conv, x): ("cl", "fused")}
        block(x)
        for edit in edits * 2:
            before = block(x)
            edit()
            first = block(x)  # planned with what changed: the modules in turn, planned anew
            got = block(x)
            assert _epilogue_prepared(block)
            for y in (first, got):
                torch.testing.assert_close(y, _plain(block, x), rtol=1e-5, atol=1e-5)
            assert not torch.equal(got, before)


@pytest.mark.parametrize("kind", ["separable", "depthwise"])
def test_layers_built_under_inference_mode_run_at_stride_2(kind):
    """Inference tensors have no version counter: the zero-tap kernel is not kept for them."""
    with torch.inference_mode():
        torch.manual_seed(0)
        if kind == "separable":
            layer = snn.SeparableConv2d(8, 12, 3, 2, padding="same").eval()
        else:
            layer = snn.DepthwiseConv2d(8, 3, 2, padding="same").eval()
        x = torch.randn(2, 8, 10, 10)
        for memory_format in (torch.contiguous_format, CL):
            x = x.contiguous(memory_format=memory_format)
            got = layer(x)
            with snn.use_autotune(False), snn.use_native_depthwise(False):
                want = layer(x)
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
