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
