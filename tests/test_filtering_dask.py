"""dask engine of sepconv.correlate / convolve: lazy, and equal to the in-memory result."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest

import sepconv
from sepconv.filtering import MODES


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kernel_shape", [(3, 3), (4, 5), (2, 2), (15, 15), (40, 9)])
def test_equals_in_memory(mode, kernel_shape):
    rng = np.random.default_rng(0)
    x = rng.random((45, 52))
    kernel = rng.standard_normal(kernel_shape)
    cval = 2.5 if mode == "constant" else 0.0
    lazy = da.from_array(x, chunks=(16, 13))
    for fn in (sepconv.correlate, sepconv.convolve):
        out = fn(lazy, kernel, mode=mode, cval=cval)
        assert isinstance(out, da.Array) and out.chunks == lazy.chunks
        np.testing.assert_allclose(
            out.compute(), fn(x, kernel, mode=mode, cval=cval), rtol=0, atol=1e-12 * 10
        )


def test_lazy_in_lazy_out():
    calls = []

    def make(block_info=None):
        if isinstance(block_info, dict):  # a real block, not dask probing the function
            calls.append(block_info)
        return np.ones((32, 32), np.float32)

    lazy = da.map_blocks(
        make, chunks=((32, 32), (32, 32)), dtype=np.float32, meta=np.empty((0, 0), np.float32)
    )
    out = sepconv.correlate(lazy, np.ones((5, 5)) / 25)
    assert isinstance(out, da.Array) and calls == []  # nothing computed yet
    with dask.config.set(scheduler="synchronous"):
        np.testing.assert_allclose(out.compute(), 1.0, rtol=1e-6)
    assert calls


def test_dtypes_channels_and_methods():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (40, 44, 3)).astype(np.uint8)
    kernel = sepconv.kernels.get("log", sigma=1.5, size=9) * 50
    lazy = da.from_array(x, chunks=(20, 15, 3))
    for method in ("auto", "direct", "lowrank", "fft"):
        out = sepconv.correlate(lazy, kernel, method=method)
        assert out.dtype == np.uint8
        want = sepconv.correlate(x, kernel, method=method)
        assert np.max(np.abs(out.compute().astype(int) - want.astype(int))) <= 1
    out = sepconv.correlate(lazy, kernel, output=np.float32)
    assert out.dtype == np.float32 and out.compute().dtype == np.float32


def test_kernel_larger_than_image():
    rng = np.random.default_rng(2)
    x = rng.random((6, 50))
    kernel = rng.random((15, 3))
    for mode in MODES:
        out = sepconv.correlate(da.from_array(x, chunks=(3, 10)), kernel, mode=mode)
        np.testing.assert_allclose(
            out.compute(), sepconv.correlate(x, kernel, mode=mode), atol=1e-12
        )
