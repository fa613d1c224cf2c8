"""The native separable kernel (sepconv/_csrc/sepfilter.c) on its own: against SciPy's 1-D
passes for every border mode, shape, channel count, dtype and memory layout."""

from __future__ import annotations

import os

import numpy as np
import pytest
import scipy.ndimage as ndi
from hypothesis import given, settings
from hypothesis import strategies as st

import sepconv
from sepconv.filtering import MODES, _native

pytestmark = pytest.mark.skipif(
    os.environ.get("SEPCONV_NATIVE") == "0", reason="native kernel disabled by SEPCONV_NATIVE=0"
)


def test_available():
    assert _native.available(), "the native separable filter is not built"


def _expected(x: np.ndarray, terms, anchor, mode: str) -> np.ndarray:
    """Sum over terms of SciPy 1-D passes (float64), with the anchor as a SciPy origin."""
    out = np.zeros(x.shape, np.float64)
    for col, row in terms:
        y = ndi.correlate1d(
            x.astype(np.float64),
            np.asarray(col, np.float64),
            axis=0,
            mode=mode,
            origin=anchor[0] - len(col) // 2,
        )
        y = ndi.correlate1d(
            y, np.asarray(row, np.float64), axis=1, mode=mode, origin=anchor[1] - len(row) // 2
        )
        out += y
    return out


def _terms(rng: np.random.Generator, rank: int, kh: int, kw: int, kind: str = "random"):
    terms = []
    for _ in range(rank):
        col, row = rng.standard_normal(kh), rng.standard_normal(kw)
        if kind == "symmetric":
            col, row = col + col[::-1], row + row[::-1]
        elif kind == "antisymmetric":
            col, row = col - col[::-1], row - row[::-1]
        terms.append((col, row))
    return tuple(terms)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", ["random", "symmetric", "antisymmetric"])
@pytest.mark.parametrize(
    "shape", [(1, 1), (1, 9), (9, 1), (2, 3), (5, 40), (37, 70), (64, 33, 3), (17, 19, 6)]
)
def test_modes_shapes_kinds(mode, kind, shape):
    rng = np.random.default_rng(abs(hash((mode, kind, shape))) % 2**32)
    x = rng.standard_normal(shape)
    for kh, kw in [(1, 1), (3, 3), (7, 4), (2, 9), (15, 15)]:
        terms = _terms(rng, 2, kh, kw, kind)
        anchor = (kh // 2, kw // 2)
        got = _native.separable(x, terms, anchor, mode)
        np.testing.assert_allclose(
            got,
            _expected(x, terms, anchor, mode),
            rtol=1e-10,
            atol=1e-10,
            err_msg=f"{mode} {kind} {shape} {kh}x{kw}",
        )


@pytest.mark.parametrize("anchor", [(0, 0), (4, 1), (2, 3)])
def test_any_anchor(anchor):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((23, 31))
    terms = _terms(rng, 1, 5, 4)
    for mode in MODES:
        np.testing.assert_allclose(
            _native.separable(x, terms, anchor, mode), _expected(x, terms, anchor, mode), atol=1e-11
        )


def test_float32_and_float64():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((300, 257)).astype(np.float32)
    terms = _terms(rng, 3, 9, 9)
    expected = _expected(x, terms, (4, 4), "reflect")
    got32 = _native.separable(x, terms, (4, 4), "reflect")
    got64 = _native.separable(x.astype(np.float64), terms, (4, 4), "reflect")
    assert got32.dtype == np.float32 and got64.dtype == np.float64
    scale = np.abs(expected).max()
    assert np.abs(got32 - expected).max() <= 1e-5 * scale
    assert np.abs(got64 - expected).max() <= 1e-12 * scale


@pytest.mark.parametrize("threads", [1, 2, 3, 7])
def test_result_independent_of_thread_bands(threads):
    """Output rows are computed the same way whatever band they fall in: bitwise equal."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((301, 130)).astype(np.float32)
    terms = _terms(rng, 2, 7, 7, "symmetric")
    reference = _native.separable(x, terms, (3, 3), "mirror", threads=1)
    np.testing.assert_array_equal(
        _native.separable(x, terms, (3, 3), "mirror", threads=threads), reference
    )


def test_views_strides_and_out():
    rng = np.random.default_rng(8)
    base = rng.standard_normal((80, 100, 3))
    terms = _terms(rng, 2, 5, 3)
    for view in (base[5:60, 7:90], base[::-1], base[::2, 3:50], base[:, :, 1]):
        view_copy = view.copy()
        got = _native.separable(view, terms, (2, 1), "wrap")
        np.testing.assert_allclose(got, _expected(view_copy, terms, (2, 1), "wrap"), atol=1e-11)
        np.testing.assert_array_equal(view, view_copy)  # the input is never modified
    out = np.full(base.shape, np.nan)
    result = _native.separable(base, terms, (2, 1), "nearest", out=out)
    assert result is out
    np.testing.assert_allclose(out, _expected(base, terms, (2, 1), "nearest"), atol=1e-11)


def test_through_correlate_matches_scipy_for_every_layout():
    """sepconv.correlate hands F-ordered, strided and channel-sliced inputs to the kernel."""
    rng = np.random.default_rng(9)
    kernel = np.outer(rng.standard_normal(7), rng.standard_normal(5))
    base = rng.standard_normal((64, 48, 4)).astype(np.float32)
    for image in (
        np.asfortranarray(base[:, :, 0]),
        base[:, :, 2],
        base[::-1, ::2],
        np.asfortranarray(base),
    ):
        expected = ndi.correlate(
            image.astype(np.float64),
            kernel.reshape(kernel.shape + (1,) * (image.ndim - 2)),
            mode="mirror",
        )
        got = sepconv.correlate(image, kernel, mode="mirror", method="separable")
        assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max()


@settings(max_examples=60, deadline=None)
@given(
    h=st.integers(1, 40),
    w=st.integers(1, 40),
    c=st.integers(1, 5),
    kh=st.integers(1, 12),
    kw=st.integers(1, 12),
    rank=st.integers(1, 3),
    mode=st.sampled_from(MODES),
    seed=st.integers(0, 2**32 - 1),
    threads=st.integers(1, 4),
)
def test_property_against_scipy(h, w, c, kh, kw, rank, mode, seed, threads):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((h, w, c) if c > 1 else (h, w))
    terms = _terms(rng, rank, kh, kw)
    anchor = (int(rng.integers(kh)), int(rng.integers(kw)))
    got = _native.separable(x, terms, anchor, mode, threads=threads)
    np.testing.assert_allclose(got, _expected(x, terms, anchor, mode), rtol=1e-9, atol=1e-9)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_after_fork():
    """A child forked after the pool started (as DataLoader workers are) filters too."""
    import multiprocessing

    x = np.random.default_rng(10).standard_normal((1100, 1000)).astype(np.float32)
    terms = _terms(np.random.default_rng(11), 1, 5, 5)
    want = _native.separable(x, terms, (2, 2), "reflect", threads=2)  # the pool is running
    context = multiprocessing.get_context("fork")
    with context.Pool(1) as pool:
        got = pool.apply_async(_native.separable, (x, terms, (2, 2), "reflect", None, 2)).get(
            timeout=60
        )
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16])
@pytest.mark.parametrize("mode", MODES)
def test_integer_in_and_out(dtype, mode):
    """Integer rows are read as they are and written rounded half to even, saturated."""
    info = np.iinfo(dtype)
    rng = np.random.default_rng(12)
    x = rng.integers(info.min, info.max, (45, 38, 2), endpoint=True).astype(dtype)
    terms = _terms(rng, 2, 6, 5)
    expected = _expected(x.astype(np.float64), terms, (3, 2), mode)
    as_float = _native.separable(x, terms, (3, 2), mode)
    assert as_float.dtype == np.float32
    np.testing.assert_allclose(as_float, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
    got = _native.separable(x, terms, (3, 2), mode, out_dtype=dtype, threads=3)
    assert got.dtype == dtype
    want = np.clip(np.rint(as_float), info.min, info.max).astype(dtype)
    np.testing.assert_array_equal(got, want)  # the same float32 values, rounded the same way
    np.testing.assert_array_equal(x, x.copy())


def test_rounding_ties_to_even():
    x = np.array([[1, 3, 5, 7, 9, 2]], np.uint8)
    half = ((np.array([1.0]), np.array([0.5])),)  # every value becomes k + 0.5 or an integer
    got = _native.separable(x, half, (0, 0), "nearest", out_dtype=np.uint8)
    np.testing.assert_array_equal(got, np.rint(x * 0.5).astype(np.uint8))  # [0, 2, 2, 4, 4, 1]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_all_finite_finds_every_position(dtype):
    """The vectorised test sees a NaN or an infinity wherever it is (blocks and tail)."""
    for size in (1, 7, 31, 32, 33, 70):
        x = np.arange(size, dtype=dtype)
        assert _native.all_finite(x) is True
        for i in range(size):
            for value in (np.nan, np.inf, -np.inf):
                y = x.copy()
                y[i] = value
                assert _native.all_finite(y) is False
    big = np.full((64, 64), np.finfo(dtype).max, dtype)  # finite, whatever its sums
    assert _native.all_finite(big) is True and _native.all_finite(big.T) is True
    assert _native.all_finite(big[:, ::2]) is None  # strided: the caller tests it
