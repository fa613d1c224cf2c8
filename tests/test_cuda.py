"""CUDA: the torch filtering engine, the layers and MobileNet on a GPU agree with the CPU.

Skipped where no CUDA device is present.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import sepconv
import sepconv.nn as snn
from sepconv.filtering import MODES

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.fixture(autouse=True)
def _full_precision(monkeypatch):
    """cuDNN convolutions may use TF32 (10-bit mantissa) by default; these tests compare
    full-precision results with the CPU."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)


def _kernel(shape: tuple[int, int], rank: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return sum(
        np.outer(rng.standard_normal(shape[0]), rng.standard_normal(shape[1])) for _ in range(rank)
    )


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("method", ["direct", "lowrank", "fft", "auto"])
@pytest.mark.parametrize("kernel_shape", [(3, 3), (7, 4), (15, 15), (40, 9)])
def test_filtering_matches_cpu(mode, method, kernel_shape):
    torch.manual_seed(0)
    x = torch.rand(2, 3, 37, 30, dtype=torch.float64)
    kernel = _kernel(kernel_shape, 2)
    if method == "fft" and kernel_shape == (40, 9):
        pytest.skip("fft pads; checked on the smaller kernels")
    want = sepconv.correlate(x, kernel, mode=mode, method=method)
    got = sepconv.correlate(x.cuda(), kernel, mode=mode, method=method)
    assert got.device.type == "cuda"
    torch.testing.assert_close(got.cpu(), want, rtol=1e-9, atol=1e-9)


def test_filtering_float32_and_convolve():
    x = torch.rand(1, 1, 256, 300)
    kernel = _kernel((9, 9), 1)
    for fn in (sepconv.correlate, sepconv.convolve):
        want = fn(x, kernel, mode="reflect")
        got = fn(x.cuda(), kernel, mode="reflect")
        torch.testing.assert_close(got.cpu(), want, rtol=1e-4, atol=1e-4)


def test_filtering_gradcheck():
    x = torch.rand(1, 2, 12, 11, dtype=torch.float64, device="cuda", requires_grad=True)
    kernel = _kernel((5, 4), 2)
    for mode in MODES:
        assert torch.autograd.gradcheck(
            lambda t, mode=mode: sepconv.correlate(t, kernel, mode=mode), (x,)
        )


def test_filtering_gradient_matches_cpu():
    x = torch.rand(1, 1, 64, 64, dtype=torch.float64, requires_grad=True)
    kernel = _kernel((9, 9), 1)
    sepconv.correlate(x, kernel, mode="mirror").square().sum().backward()
    xc = x.detach().cuda().requires_grad_(True)
    sepconv.correlate(xc, kernel, mode="mirror").square().sum().backward()
    torch.testing.assert_close(xc.grad.cpu(), x.grad)


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("stride,padding", [(1, "same"), (2, "same"), (2, "valid"), (1, 1)])
def test_separable_layer_matches_cpu(memory_format, stride, padding):
    torch.manual_seed(0)
    layer = snn.SeparableConv2d(16, 24, 3, stride=stride, padding=padding, depth_multiplier=2)
    x = torch.randn(2, 16, 17, 18)
    want = layer(x)
    gpu = layer.cuda()
    got = gpu(x.cuda().to(memory_format=memory_format))
    torch.testing.assert_close(got.cpu(), want, rtol=1e-4, atol=1e-4)
    got.sum().backward()
    assert gpu.depthwise.weight.grad is not None and gpu.depthwise.weight.grad.is_cuda


def test_layers_match_functional_compositions():
    torch.manual_seed(1)
    x = torch.randn(2, 8, 20, 21, device="cuda", dtype=torch.float64)
    dw = snn.DepthwiseConv2d(8, 3, stride=2, padding="same", depth_multiplier=3).cuda().double()
    y = dw(x)
    (top, bottom), (left, right) = (sepconv.padding.same_padding(n, 3, 2) for n in (20, 21))
    want = F.conv2d(F.pad(x, (left, right, top, bottom)), dw.weight, dw.bias, stride=2, groups=8)
    torch.testing.assert_close(y, want)
    for order in ("column_first", "row_first"):
        ss = snn.SpatiallySeparableConv2d(8, 12, 5, padding="same", order=order).double()
        want = ss(x.cpu())
        torch.testing.assert_close(ss.cuda()(x).cpu(), want)


def test_layers_1d_3d_and_gradcheck():
    x1 = torch.randn(2, 4, 30, device="cuda", dtype=torch.float64, requires_grad=True)
    layer1 = snn.SeparableConv1d(4, 6, 5, padding="same").cuda().double()
    assert torch.autograd.gradcheck(layer1, (x1,))
    x3 = torch.randn(1, 3, 6, 7, 8, device="cuda", dtype=torch.float64, requires_grad=True)
    layer3 = snn.SeparableConv3d(3, 5, 3, stride=2, padding="same").cuda().double()
    assert torch.autograd.gradcheck(layer3, (x3,))


def test_mobilenet_matches_cpu():
    from sepconv import models

    torch.manual_seed(0)
    model = models.mobilenet_v1(num_classes=10, width_multiplier=0.25).eval()
    x = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        want = model(x)
        got = model.cuda()(x.cuda())
    torch.testing.assert_close(got.cpu(), want, rtol=1e-3, atol=1e-3)


# ------------------------------------------------------------- per-call path, compile, graphs
@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_layers_on_gpu_keep_format_children_and_hooks(memory_format):
    """A batched GPU input runs the children directly (no route, no format change): the
    caller's memory format out, each child's hooks seen once, the CPU's numbers."""
    torch.manual_seed(0)
    layer = snn.SeparableConv2d(
        8, 12, 3, 2, padding="same", norm_layer=torch.nn.BatchNorm2d, activation=torch.nn.ReLU
    ).eval()
    x = torch.randn(3, 8, 20, 21)
    with torch.no_grad():
        want = layer(x)
    gpu = layer.cuda()
    seen = []
    for name in ("depthwise", "norm", "act", "pointwise"):
        getattr(gpu, name).register_forward_hook(lambda m, i, o, name=name: seen.append(name))
    with torch.no_grad():
        got = gpu(x.cuda().contiguous(memory_format=memory_format))
        unbatched = gpu(x[0].cuda())
    assert seen == ["depthwise", "norm", "act", "pointwise"] * 2
    assert got.is_contiguous(memory_format=memory_format)
    torch.testing.assert_close(got.cpu(), want, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(unbatched.cpu(), want[0], rtol=1e-4, atol=1e-4)
    dw = snn.DepthwiseConv2d(8, 3, 2, padding="same", depth_multiplier=2)
    ss = snn.SpatiallySeparableConv2d(8, 6, 5, 2, padding="same")
    for module in (dw, ss):
        with torch.no_grad():
            want = module(x)
            got = module.cuda()(x.cuda().contiguous(memory_format=memory_format))
        assert got.is_contiguous(memory_format=memory_format)
        torch.testing.assert_close(got.cpu(), want, rtol=1e-4, atol=1e-4)


def _gpu_layers():
    return [
        snn.SeparableConv2d(8, 16, 3, 2, padding="same", norm_layer=torch.nn.BatchNorm2d),
        snn.DepthwiseConv2d(8, 3, 2, padding="same", depth_multiplier=2),
        snn.SpatiallySeparableConv2d(8, 16, 5, padding="same"),
        snn.SeparableConv2d(8, 16, 3, padding="same", padding_mode="reflect"),
    ]


@pytest.mark.parametrize("index", range(4))
def test_torch_compile_inductor_forward_and_backward(index):
    """``torch.compile`` (inductor, one graph) gives eager's outputs and gradients."""
    torch.manual_seed(0)
    layer = _gpu_layers()[index].cuda()
    compiled = torch.compile(layer, fullgraph=True)
    x = torch.randn(2, 8, 18, 20, device="cuda", requires_grad=True)
    want = layer(x)
    (gx_want,) = torch.autograd.grad(want.square().sum(), x)
    got = compiled(x)
    (gx,) = torch.autograd.grad(got.square().sum(), x)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(gx, gx_want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("index", range(4))
def test_cuda_graph_capture_and_replay(index):
    """A layer's forward captured in a CUDA graph replays on new data as eager computes."""
    torch.manual_seed(0)
    layer = _gpu_layers()[index].cuda().eval()
    static = torch.randn(4, 8, 20, 20, device="cuda")
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side), torch.no_grad():
        for _ in range(3):  # warm-up off the capture (cuDNN plans, allocator)
            layer(static)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph), torch.no_grad():
        out = layer(static)
    for seed in (1, 2):
        fresh = torch.randn(
            4, 8, 20, 20, device="cuda", generator=torch.Generator("cuda").manual_seed(seed)
        )
        static.copy_(fresh)
        graph.replay()
        with torch.no_grad():
            torch.testing.assert_close(out, layer(fresh))


def test_make_graphed_callables_training_step():
    """``torch.cuda.make_graphed_callables`` (forward and backward as graphs) gives eager's
    gradients."""
    import copy

    torch.manual_seed(0)
    eager = snn.SeparableConv2d(8, 16, 3, 2, padding="same").cuda()
    graphed_layer = copy.deepcopy(eager)
    x = torch.randn(4, 8, 20, 20, device="cuda", requires_grad=True)
    graphed = torch.cuda.make_graphed_callables(graphed_layer, (x,))
    data = torch.randn(4, 8, 20, 20, device="cuda", requires_grad=True)
    graphed(data).square().sum().backward()
    want = data.detach().clone().requires_grad_(True)
    eager(want).square().sum().backward()
    torch.testing.assert_close(data.grad, want.grad, rtol=1e-4, atol=1e-4)
    for p, q in zip(graphed_layer.parameters(), eager.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("batch", [1, 48])
def test_direct_gpu_calls_match_cpu(memory_format, batch):
    """Unhooked GPU calls run the convolutions directly (zero-tapped kernels for asymmetric
    'same' padding where they pay, kept between calls while the weight is unchanged): the
    CPU's numbers, in inference and in training, after the weight changes too."""
    torch.manual_seed(0)
    layer = snn.SeparableConv2d(16, 8, 3, 2, padding="same", bias=True)
    dw = snn.DepthwiseConv2d(16, 3, 2, padding="same", depth_multiplier=2)
    x = torch.randn(batch, 16, 40, 34)
    for module in (layer, dw):
        with torch.no_grad():
            want = module(x)
        module.cuda()
        xc = x.cuda().contiguous(memory_format=memory_format)
        for _ in range(2):
            with torch.no_grad():
                got = module(xc)
            assert got.is_contiguous(memory_format=memory_format)
            torch.testing.assert_close(got.cpu(), want, rtol=1e-4, atol=1e-4)
        with torch.no_grad():  # an in-place change of the weight is seen
            weight = module.depthwise.weight if module is layer else module.weight
            weight.mul_(-2)
            got = module(xc).cpu()
            module.cpu()
            torch.testing.assert_close(got, module(x), rtol=1e-4, atol=1e-4)
        module.cuda()
        got = module(xc.requires_grad_(True))
        got.sum().backward()
        module.cpu()
        want_x = x.clone().requires_grad_(True)
        module(want_x).sum().backward()
        torch.testing.assert_close(xc.grad.cpu(), want_x.grad, rtol=1e-4, atol=1e-4)
