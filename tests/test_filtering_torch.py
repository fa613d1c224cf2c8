"""torch engine of sepconv.correlate / convolve: against the NumPy engine, kornia, F.conv2d."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
import torch.nn.functional as F

import sepconv
from sepconv.filtering import MODES, use_implementation

pytestmark = pytest.mark.usefixtures("torch_single_thread")


@pytest.fixture
def matmul_path():
    """Force the banded-matrix-product path (the one other devices take) on CPU."""
    with use_implementation(torch_cpu="matmul"):
        yield


@pytest.fixture(params=["opencv", "matmul"])
def path(request):
    """Both CPU paths: the NumPy engine under autograd, and the banded matrix products."""
    with use_implementation(torch_cpu="numpy" if request.param == "opencv" else "matmul"):
        yield request.param


def _kernel(shape, rank, seed=0):
    rng = np.random.default_rng(seed)
    return sum(
        np.outer(rng.standard_normal(shape[0]), rng.standard_normal(shape[1])) for _ in range(rank)
    )


def _numpy_engine(x: torch.Tensor, kernel, fn, **kwargs) -> np.ndarray:
    array = x.detach().numpy()
    out = np.empty(array.shape, dtype=np.float64)
    for n in range(array.shape[0]):
        for c in range(array.shape[1]):
            out[n, c] = fn(array[n, c].astype(np.float64), kernel, **kwargs)
    return out


def test_smoke():
    x = torch.rand(2, 3, 16, 20)
    out = sepconv.correlate(x, np.ones((3, 3)) / 9)
    assert isinstance(out, torch.Tensor) and out.shape == x.shape and out.dtype == x.dtype


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kernel_shape", [(1, 1), (2, 4), (5, 6), (9, 9), (19, 19)])
@pytest.mark.parametrize("flip", [False, True])
def test_equals_numpy_engine(mode, kernel_shape, flip, matmul_path):
    fn = sepconv.convolve if flip else sepconv.correlate
    cval = -1.25 if mode == "constant" else 0.0
    for shape in [(2, 3, 11, 13), (1, 1, 3, 2), (1, 2, 40, 37)]:
        x = torch.rand(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
        for rank in (1, 2):
            kernel = _kernel(kernel_shape, rank)
            want = _numpy_engine(x, kernel, fn, mode=mode, cval=cval)
            for method in ("auto", "direct", "lowrank"):
                got = fn(x, kernel, mode=mode, cval=cval, method=method)
                assert got.dtype == torch.float64
                np.testing.assert_allclose(
                    got.numpy(), want, rtol=0, atol=1e-12 * max(1.0, np.abs(want).max())
                )


def test_float32_and_integer_tensors(path):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 2, 50, 60, generator=g)
    kernel = sepconv.kernels.get("log", sigma=2.0, size=13)
    want = _numpy_engine(x, kernel, sepconv.correlate)
    got = sepconv.correlate(x, kernel)
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-5 * np.abs(want).max())
    x8 = (x * 255).round().to(torch.uint8)
    got8 = sepconv.correlate(x8, 40 * kernel)
    want8 = np.clip(np.rint(_numpy_engine(x8, 40 * kernel, sepconv.correlate)), 0, 255)
    assert got8.dtype == torch.uint8
    assert np.max(np.abs(got8.numpy().astype(float) - want8)) <= 1


def test_volume_3d(path):
    g = torch.Generator().manual_seed(2)
    x = torch.rand(1, 2, 8, 9, 10, dtype=torch.float64, generator=g)
    rng = np.random.default_rng(3)
    kernel = sum(
        np.einsum("i,j,k->ijk", rng.random(3), rng.random(4), rng.random(5)) for _ in range(2)
    )
    want = np.stack([sepconv.correlate(x[0, c].numpy(), kernel, mode="wrap") for c in range(2)])
    for method in ("auto", "direct", "lowrank"):
        got = sepconv.correlate(x, kernel, mode="wrap", method=method)
        np.testing.assert_allclose(got[0].numpy(), want, atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("method", ["lowrank", "direct"])
def test_gradcheck(mode, method, path):
    x = torch.rand(2, 2, 6, 7, dtype=torch.float64, requires_grad=True)
    kernel = _kernel((3, 4), 2)
    cval = 0.5 if mode == "constant" else 0.0
    assert torch.autograd.gradcheck(
        lambda t: sepconv.correlate(t, kernel, mode=mode, cval=cval, method=method), (x,)
    )


def test_gradcheck_large_kernel_3d(path):
    x = torch.rand(1, 1, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    kernel = np.random.default_rng(5).random((4, 3, 7))  # reaches beyond the image
    for mode in MODES:
        assert torch.autograd.gradcheck(
            lambda t, mode=mode: sepconv.convolve(t, kernel, mode=mode), (x,)
        )


def test_input_unchanged_and_not_shared(path):
    x = torch.rand(1, 1, 20, 20)
    before = x.clone()
    out = sepconv.correlate(x, np.ones((3, 3)))
    assert torch.equal(x, before) and out.data_ptr() != x.data_ptr()


def test_peer_kornia_and_conv2d(path):
    kornia = pytest.importorskip("kornia")
    g = torch.Generator().manual_seed(4)
    x = torch.rand(2, 3, 33, 40, generator=g)
    kernel = sepconv.kernels.get("gaussian", sigma=1.5, size=9).astype(np.float32)
    k = torch.from_numpy(kernel)
    # kornia 'reflect' is torch's reflect, which is SciPy's (and sepconv's) 'mirror'
    want = kornia.filters.filter2d(x, k[None], border_type="reflect")
    torch.testing.assert_close(
        sepconv.correlate(x, kernel, mode="mirror"), want, rtol=1e-5, atol=1e-6
    )
    want = kornia.filters.filter2d(x, k[None], border_type="replicate")
    torch.testing.assert_close(
        sepconv.correlate(x, kernel, mode="nearest"), want, rtol=1e-5, atol=1e-6
    )
    want = kornia.filters.filter2d(x, k[None], border_type="circular")
    torch.testing.assert_close(
        sepconv.correlate(x, kernel, mode="wrap"), want, rtol=1e-5, atol=1e-6
    )
    # F.conv2d is a correlation with zero padding
    weight = k[None, None].expand(3, 1, 9, 9)
    want = F.conv2d(x, weight, padding=4, groups=3)
    torch.testing.assert_close(
        sepconv.correlate(x, kernel, mode="constant"), want, rtol=1e-5, atol=1e-6
    )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_device():
    x = torch.rand(1, 2, 64, 70, device="cuda", dtype=torch.float64)
    kernel = _kernel((7, 5), 2)
    out = sepconv.correlate(x, kernel)
    assert out.device == x.device
    want = sepconv.correlate(x.cpu(), kernel)
    torch.testing.assert_close(out.cpu(), want)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("method", ["direct", "separable", "lowrank", "fft"])
def test_cuda_nonfinite_pixels_and_integer_cval(method):
    """The device code (banded matrix products, F.conv2d) gives SciPy's NaN positions and
    rounds integer images filtered with any cval, as the CPU does."""
    rng = np.random.default_rng(4)
    image = rng.random((2, 40, 33))
    image[0, 5, 7], image[1, 20, 20], image[1, 0, 32] = np.nan, np.inf, -np.inf
    g = np.exp(-(np.arange(-2, 3) ** 2) / 2.0)
    kernel = np.outer(g, [1.0, 0.0, -1.0, 0.5, 0.0]) + (method == "lowrank") * np.eye(5)
    x = torch.from_numpy(image)[None].cuda()
    got = sepconv.correlate(x, kernel, method=method, mode="wrap")[0].cpu().numpy()
    want = np.stack([ndi.correlate(plane, kernel, mode="wrap") for plane in image])
    for test in (np.isnan, np.isposinf, np.isneginf):
        np.testing.assert_array_equal(test(got), test(want))
    finite = np.isfinite(want)
    np.testing.assert_allclose(got[finite], want[finite], atol=1e-9)
    pixels = torch.tensor([[[[1, 2, 3, 2, 1]]]], dtype=torch.uint8, device="cuda")
    for cval, row in ((2.5, [6, 6, 7, 6, 6]), (300, [255, 6, 7, 6, 255])):
        out = sepconv.correlate(
            pixels,
            np.ones((1, 3)),
            mode="constant",
            cval=cval,
            method="direct" if method == "lowrank" else method,
        )
        assert out.flatten().tolist() == row


def test_exception():
    x = torch.rand(1, 1, 8, 8)
    with pytest.raises(ValueError, match=r"`image` must be a tensor \(N, C, \*spatial\) with 4"):
        sepconv.correlate(torch.rand(8, 8), np.ones((3, 3)))
    with pytest.raises(TypeError, match="`image` dtype must be one of .*got float16"):
        sepconv.correlate(x.half(), np.ones((3, 3)))
    with pytest.raises(TypeError, match="`image` dtype must be one of .*got complex64"):
        sepconv.correlate(x.to(torch.complex64), np.ones((3, 3)))
    with pytest.raises(TypeError, match="`kernel` must be a constant array"):
        sepconv.correlate(x, torch.ones(3, 3, requires_grad=True))
    with pytest.raises(TypeError, match="`output` must be None or a dtype for a torch image"):
        sepconv.correlate(x, np.ones((3, 3)), output=np.empty((1, 1, 8, 8), np.float32))
    with pytest.raises(ValueError, match="`image` must not be empty"):
        sepconv.correlate(torch.rand(0, 1, 8, 8), np.ones((3, 3)))
