"""NaN and infinite pixels, and integer images with any cval, on every method and engine.

The reference is ``scipy.ndimage.correlate`` / ``convolve`` (which skips zero weights, so a NaN
reaches only the outputs under the kernel's non-zero weights), except where SciPy departs from
its own definition: 'reflect' with a kernel that reaches beyond the whole axis, where the
reference is the definition itself (``np.pad(mode='symmetric')`` and a direct sum).
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view

import sepconv
from sepconv.filtering import MODES, _native, use_implementation
from sepconv.filtering._modes import NUMPY_PAD, kernel_anchor

ENGINES = ["numpy-native", "numpy-opencv", "torch-numpy", "torch-matmul", "dask"]
METHODS = ["auto", "direct", "separable", "lowrank", "fft"]


def _engines() -> list:
    marks = pytest.mark.skipif(not _native.available(), reason="native kernel not available")
    return [pytest.param(e, marks=marks) if e == "numpy-native" else e for e in ENGINES]


def run(
    engine: str,
    image: np.ndarray,
    kernel: np.ndarray,
    *,
    flip: bool = False,
    nd: int = 2,
    **options,
) -> np.ndarray:
    """sepconv on ``engine``; ``image`` is (*spatial) or (*spatial, C) as NumPy has it."""
    fn = sepconv.convolve if flip else sepconv.correlate
    separable = "opencv" if engine == "numpy-opencv" or not _native.available() else None
    torch_cpu = "matmul" if engine == "torch-matmul" else "numpy"
    with use_implementation(separable, torch_cpu=torch_cpu):
        if engine.startswith("numpy"):
            return fn(image, kernel, **options)
        if engine == "dask":
            chunks = tuple(max(1, n // 2) for n in image.shape)
            lazy = fn(da.from_array(image, chunks=chunks), kernel, **options)
            return lazy.compute(scheduler="sync")
        channels = image.ndim > nd
        t = torch.from_numpy(np.ascontiguousarray(image))
        t = t.movedim(-1, 0)[None] if channels else t[None, None]
        out = fn(t, kernel, **options)[0]
        out = out.movedim(0, -1) if channels else out[0]
        return out.numpy()


def _reaches_beyond(shape: tuple[int, ...], kernel_shape: tuple[int, ...]) -> bool:
    return any(k // 2 >= n or k - 1 - k // 2 >= n for n, k in zip(shape, kernel_shape))


def definition(
    image: np.ndarray, kernel: np.ndarray, mode: str, cval: float = 0.0, flip: bool = False
) -> np.ndarray:
    """The filter by its definition, in float64: the image extended with ``np.pad``, then
    ``sum(w * x)`` over the kernel's non-zero weights (``|w| > DBL_EPSILON``, as SciPy)."""
    nd = kernel.ndim
    if flip:
        kernel = kernel[(slice(None, None, -1),) * nd]
    anchor = kernel_anchor(kernel.shape, flip)
    widths = [(a, k - 1 - a) for k, a in zip(kernel.shape, anchor)]
    widths += [(0, 0)] * (image.ndim - nd)
    options = {"constant_values": cval} if mode == "constant" else {}
    padded = np.pad(image.astype(np.float64), widths, mode=NUMPY_PAD[mode], **options)
    windows = sliding_window_view(padded, kernel.shape, axis=tuple(range(nd)))
    out = np.zeros(image.shape)
    with np.errstate(invalid="ignore", over="ignore"):
        for index in zip(*np.nonzero(np.abs(kernel) > np.finfo(np.float64).eps)):
            out = out + kernel[index] * windows[(Ellipsis, *index)]
    return out


def reference(
    image: np.ndarray, kernel: np.ndarray, mode: str, cval: float = 0.0, flip: bool = False
) -> np.ndarray:
    """SciPy's answer in float64, or the definition's where SciPy departs from it."""
    if mode == "reflect" and _reaches_beyond(image.shape, kernel.shape):
        return definition(image, kernel, mode, cval, flip)
    weights = kernel.reshape(kernel.shape + (1,) * (image.ndim - kernel.ndim))
    fn = ndi.convolve if flip else ndi.correlate
    with np.errstate(invalid="ignore", over="ignore"):
        return fn(image.astype(np.float64), weights, mode=mode, cval=cval)


def assert_same_nonfinite(got: np.ndarray, want: np.ndarray, atol: float) -> None:
    """Same NaN, +inf and -inf positions; finite values within ``atol``."""
    for test in (np.isnan, np.isposinf, np.isneginf):
        np.testing.assert_array_equal(test(got), test(want), err_msg=test.__name__)
    finite = np.isfinite(want)
    np.testing.assert_allclose(got[finite], want[finite], rtol=0, atol=atol)


# ------------------------------------------------------------------------------------------
# strategies


@st.composite
def kernels(draw, nd: int = 2) -> np.ndarray:
    """Kernels of rank 1 to 3 with exact zeros (whole rows, columns or single taps)."""
    shape = tuple(draw(st.integers(1, 7)) for _ in range(nd))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    rank = draw(st.integers(1, 3))
    out = np.zeros(shape)
    for _ in range(rank):
        term = np.ones(())
        for size in shape:
            factor = rng.standard_normal(size)
            factor[rng.random(size) < 0.3] = 0.0  # a zero row/column: skipped by SciPy
            term = np.multiply.outer(term, factor)
        out += term
    if draw(st.booleans()):
        out[rng.random(shape) < 0.2] = 0.0  # single zero taps (the kernel's rank grows)
    if draw(st.booleans()):
        out = np.abs(out)  # no negative weights
    return out


@st.composite
def nonfinite_images(draw, nd: int = 2) -> np.ndarray:
    shape = tuple(draw(st.integers(1, 12)) for _ in range(nd))
    if draw(st.booleans()):
        shape += (draw(st.integers(1, 3)),)
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    image = rng.standard_normal(shape) * draw(st.sampled_from([1.0, 1e3]))
    count = draw(st.integers(1, 4))
    specials = draw(
        st.lists(st.sampled_from([np.nan, np.inf, -np.inf]), min_size=count, max_size=count)
    )
    flat = image.reshape(-1)
    for value in specials:
        flat[rng.integers(flat.size)] = value
    return image.astype(dtype)


def _tolerance(image: np.ndarray, kernel: np.ndarray, cval: float = 0.0) -> float:
    finite = image[np.isfinite(image)]
    scale = (max(np.abs(finite).max(initial=0.0), abs(cval)) + 1.0) * np.abs(kernel).sum()
    return scale * (2e-5 if image.dtype == np.float32 else 1e-10)


PROPERTY = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ------------------------------------------------------------------------------------------
# non-finite pixels


@pytest.mark.parametrize("engine", _engines())
@PROPERTY
@given(
    image=nonfinite_images(),
    kernel=kernels(),
    mode=st.sampled_from(MODES),
    cval=st.sampled_from([0.0, 1.5, -300.0]),
    method=st.sampled_from(METHODS),
    flip=st.booleans(),
)
def test_nonfinite_pixels_as_scipy(engine, image, kernel, mode, cval, method, flip):
    cval = cval if mode == "constant" else 0.0
    try:
        got = run(engine, image, kernel, flip=flip, mode=mode, cval=cval, method=method)
    except ValueError as error:  # 'separable' with a kernel of higher rank
        assume(not (method == "separable" and "rank 1" in str(error)))
        raise
    assert got.shape == image.shape and got.dtype == image.dtype
    want = reference(image, kernel, mode, cval, flip)
    assert_same_nonfinite(got, want, _tolerance(image, kernel, cval))


@pytest.mark.parametrize("engine", ["numpy-opencv", "torch-numpy", "torch-matmul", "dask"])
@settings(PROPERTY, max_examples=15)
@given(
    image=nonfinite_images(nd=3),
    kernel=kernels(nd=3),
    mode=st.sampled_from(MODES),
    method=st.sampled_from(METHODS),
)
def test_nonfinite_pixels_nd_kernels(engine, image, kernel, mode, method):
    """3-D kernels (SciPy's 1-D passes and ndimage.correlate, scipy.fft; F.conv3d and 1-D
    banded matrix products for the device code)."""
    try:
        got = run(engine, image, kernel, nd=3, mode=mode, method=method)
    except ValueError as error:  # 'separable' with a kernel of higher rank
        assume(not (method == "separable" and "rank 1" in str(error)))
        raise
    assert_same_nonfinite(got, reference(image, kernel, mode), _tolerance(image, kernel))


def test_one_nan_reaches_the_kernels_footprint_only():
    """The issue's cases: 169 NaN pixels for a 13x13 kernel, 25 for a 5x5 Gaussian, 6 for a
    Sobel kernel (whose zero column SciPy skips)."""
    rng = np.random.default_rng(0)
    image = rng.random((32, 32))
    image[10, 10] = np.nan
    g = np.exp(-(np.arange(-2, 3) ** 2) / 2.0)
    cases = [
        (rng.random((13, 13)), 169),
        (np.outer(g, g), 25),
        (np.outer([1.0, 2.0, 1.0], [-1.0, 0.0, 1.0]), 6),
    ]
    for kernel, count in cases:
        assert np.isnan(ndi.correlate(image, kernel)).sum() == count
        for engine in [e for e in ENGINES if e != "numpy-native" or _native.available()]:
            for method in METHODS:
                if method == "separable" and np.linalg.matrix_rank(kernel) > 1:
                    continue
                got = run(engine, image, kernel, method=method)
                assert np.isnan(got).sum() == count, (engine, method)


def test_infinities_of_opposite_sign_meet_as_nan():
    image = np.zeros((9, 9))
    image[4, 3] = np.inf
    image[4, 5] = np.inf
    kernel = np.array([[1.0, 0.0, -1.0]])  # +inf - inf at the pixel between them
    want = ndi.correlate(image, kernel)
    for method in ("direct", "separable", "fft"):
        got = sepconv.correlate(image, kernel, method=method)
        assert_same_nonfinite(got, want, 1e-12)
        assert np.isnan(got[4, 4]) and np.isneginf(got[4, 2]) and np.isposinf(got[4, 6])


@pytest.mark.parametrize("engine", _engines())
def test_nan_under_zero_weights_only(engine):
    """A NaN that only zero weights reach leaves every output finite (SciPy skips them; the
    native kernel skips the zero centre of an antisymmetric factor)."""
    image = np.arange(5.0)[:, None]
    image[2, 0] = np.nan
    kernel = np.array([[1.0, 0.0, -1.0]])
    for method in ("direct", "separable", "fft"):
        got = run(engine, image, kernel, mode="constant", method=method)
        np.testing.assert_allclose(got, ndi.correlate(image, kernel, mode="constant"), atol=1e-12)
        assert np.isfinite(got).all()


def test_finite_images_that_overflow_keep_the_overflow():
    """A finite float32 image whose filtered values overflow is not taken for a non-finite
    one (the native kernel flags it; the image test clears it)."""
    image = np.full((16, 16), 3e38, np.float32)
    got = sepconv.correlate(image, np.ones((3, 3)))
    assert np.isposinf(got).all()
    with np.errstate(over="ignore"):
        assert np.isposinf(ndi.correlate(image, np.ones((3, 3)))).all()


def test_nonfinite_into_integer_output():
    """NaN becomes 0 and infinities saturate when a float image is written to integers."""
    image = np.full((5, 5), 10.0)
    image[0, 0], image[4, 4] = np.nan, np.inf
    image[2, 2] = -np.inf
    for method in ("direct", "separable", "fft"):
        got = sepconv.correlate(image, [[1.0]], method=method, output=np.uint8)
        assert got[0, 0] == 0 and got[4, 4] == 255 and got[2, 2] == 0 and got[1, 1] == 10
        t = sepconv.correlate(
            torch.from_numpy(image)[None, None], [[1.0]], method=method, output=torch.int16
        )
        assert t[0, 0, 0, 0] == 0 and t[0, 0, 4, 4] == 32767 and t[0, 0, 2, 2] == -32768


def test_nonfinite_check_on_strided_and_fortran_images():
    base = np.random.default_rng(3).random((20, 30))
    base[7, 8] = np.nan
    for image in (base[::2, ::3], np.asfortranarray(base), base.T):
        want = ndi.correlate(image, np.ones((3, 3)))
        for method in ("direct", "separable", "fft"):
            assert_same_nonfinite(
                sepconv.correlate(image, np.ones((3, 3)), method=method), want, 1e-12
            )


@pytest.mark.parametrize("flip", [False, True])
def test_reflect_beyond_the_axis_follows_the_definition(flip):
    """A 28x3 image and a 36x25 kernel, 'reflect': the half-sample symmetric extension of
    ``np.pad(mode='symmetric')`` repeated (SciPy 1.17's ``correlate`` is 10-30% off here)."""
    rng = np.random.default_rng(5)
    image = rng.random((28, 3))
    kernel = rng.random((36, 25))
    want = definition(image, kernel, "reflect", flip=flip)
    for engine in [e for e in ENGINES if e != "numpy-native" or _native.available()]:
        for method in ("direct", "lowrank", "fft"):
            got = run(engine, image, kernel, flip=flip, method=method)
            np.testing.assert_allclose(got, want, rtol=1e-9, err_msg=f"{engine} {method}")
    x3 = rng.random((3, 2, 4))
    k3 = rng.random((9, 7, 11))
    for method in ("direct", "lowrank", "fft"):
        np.testing.assert_allclose(
            sepconv.correlate(x3, k3, method=method), definition(x3, k3, "reflect"), rtol=1e-9
        )


# ------------------------------------------------------------------------------------------
# integer images and cval


INTEGER_TYPES = [np.uint8, np.uint16, np.int16]


def _expected_integers(
    image: np.ndarray, kernel: np.ndarray, mode: str, cval: float, flip: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(rounded and saturated float64 result, where float32 rounding may differ by one)."""
    info = np.iinfo(image.dtype)
    exact = reference(image, kernel, mode, cval, flip)
    want = np.clip(np.rint(exact), info.min, info.max)
    scale = (np.abs(image).max() + abs(cval) + 1.0) * np.abs(kernel).sum()
    near_tie = np.abs(np.abs(exact - np.floor(exact)) - 0.5) <= 1e-5 * scale
    return want, near_tie


@pytest.mark.parametrize("engine", _engines())
@PROPERTY
@given(
    kernel=kernels(),
    dtype=st.sampled_from(INTEGER_TYPES),
    cval=st.floats(-1e5, 1e5, allow_nan=False),
    method=st.sampled_from(METHODS),
    shape=st.tuples(st.integers(1, 12), st.integers(1, 12)),
    channels=st.integers(0, 3),
    seed=st.integers(0, 2**32 - 1),
    flip=st.booleans(),
)
def test_integer_images_with_any_cval(
    engine, kernel, dtype, cval, method, shape, channels, seed, flip
):
    info = np.iinfo(dtype)
    if channels:
        shape = (*shape, channels)
    image = np.random.default_rng(seed).integers(info.min, info.max, shape, endpoint=True)
    image = image.astype(dtype)
    try:
        got = run(engine, image, kernel, flip=flip, mode="constant", cval=cval, method=method)
    except ValueError as error:  # 'separable' with a kernel of higher rank
        assume(not (method == "separable" and "rank 1" in str(error)))
        raise
    assert got.dtype == dtype and got.shape == image.shape
    want, near_tie = _expected_integers(image, kernel, "constant", cval, flip)
    diff = np.abs(got.astype(np.float64) - want)
    assert (diff[~near_tie] == 0).all() and (diff <= 1).all()


@pytest.mark.parametrize("engine", _engines())
@pytest.mark.parametrize("method", METHODS)
def test_uint8_border_value_of_the_issue(engine, method):
    image = np.array([[1, 2, 3, 2, 1]], np.uint8)
    expected = {2.5: [[6, 6, 7, 6, 6]], 300: [[255, 6, 7, 6, 255]], -7.25: [[0, 6, 7, 6, 0]]}
    for cval, want in expected.items():
        got = run(engine, image, np.ones((1, 3)), mode="constant", cval=cval, method=method)
        np.testing.assert_array_equal(got, np.array(want, np.uint8))


def test_auto_on_a_large_kernel_rounds_the_float_result():
    """method='auto' takes the FFT for a 63x63 kernel on a 512x512 uint8 image."""
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (512, 512)).astype(np.uint8)
    kernel = rng.random((63, 63)) / 63**2 * 1.7
    assert sepconv.plan(kernel, image.shape, np.uint8).method == "fft"
    got = sepconv.correlate(image, kernel, mode="constant", cval=2.5)
    want, near_tie = _expected_integers(image, kernel, "constant", 2.5)
    diff = np.abs(got.astype(np.float64) - want)
    assert (diff[~near_tie] == 0).all() and (diff <= 1).all()
