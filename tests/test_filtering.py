"""sepconv.correlate / convolve / plan, NumPy engine: against SciPy and OpenCV."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import scipy.ndimage as ndi
from hypothesis import given, settings
from hypothesis import strategies as st

import sepconv
from sepconv import cost
from sepconv.filtering import MODES, plan, use_implementation
from sepconv.filtering._modes import extension_indices

RNG = np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _fixed_seed():
    """Every test draws the same numbers whatever the order tests run in (xdist)."""
    global RNG
    RNG = np.random.default_rng(1234)


@pytest.fixture(autouse=True, params=["native", "opencv"])
def engine(request):
    """Every test runs with the native separable kernel and with its OpenCV fallback."""
    with use_implementation(request.param):
        yield request.param


def _kernel(
    shape: tuple[int, ...], rank: int, rng: np.random.Generator | None = None
) -> np.ndarray:
    """A kernel that is a sum of ``rank`` random separable terms."""
    rng = RNG if rng is None else rng
    out = np.zeros(shape)
    for _ in range(rank):
        term = rng.standard_normal(shape[0])
        for size in shape[1:]:
            term = np.multiply.outer(term, rng.standard_normal(size))
        out += term
    return out


def _reach_beyond(shape: tuple[int, ...], kernel_shape: tuple[int, ...]) -> bool:
    return any(k // 2 >= n or k - 1 - k // 2 >= n for n, k in zip(shape, kernel_shape))


def _scipy(x: np.ndarray, kernel: np.ndarray, mode: str, cval: float, flip: bool) -> np.ndarray:
    """SciPy's answer, or the definition's where SciPy departs from it: with 'reflect' and a
    kernel that reaches beyond the whole axis, ``scipy.ndimage.correlate`` (N-D) extends the
    axis differently from ``np.pad(mode='symmetric')``; sepconv follows the definition, so
    those cases are checked against ``np.pad`` and a direct sum."""
    weights = kernel.reshape(kernel.shape + (1,) * (x.ndim - kernel.ndim))
    if not (mode == "reflect" and _reach_beyond(x.shape, kernel.shape)):
        fn = ndi.convolve if flip else ndi.correlate
        return fn(x, weights, mode=mode, cval=cval)
    from numpy.lib.stride_tricks import sliding_window_view

    from sepconv.filtering._modes import kernel_anchor

    nd = kernel.ndim
    if flip:
        kernel = kernel[(slice(None, None, -1),) * nd]
    widths = [(a, k - 1 - a) for k, a in zip(kernel.shape, kernel_anchor(kernel.shape, flip))]
    padded = np.pad(x, widths + [(0, 0)] * (x.ndim - nd), mode="symmetric")
    windows = sliding_window_view(padded, kernel.shape, axis=tuple(range(nd)))
    return np.einsum(
        windows,
        [*range(x.ndim), *range(x.ndim, x.ndim + nd)],
        kernel,
        list(range(x.ndim, x.ndim + nd)),
        list(range(x.ndim)),
    )


def _close(got: np.ndarray, want: np.ndarray, rtol: float) -> None:
    scale = max(1.0, float(np.max(np.abs(want))))
    np.testing.assert_allclose(got, want, rtol=0, atol=rtol * scale)


def test_smoke():
    image = np.ascontiguousarray(RNG.random((64, 48), dtype=np.float32))
    out = sepconv.correlate(image, np.ones((3, 3)) / 9)
    assert out.shape == image.shape and out.dtype == np.float32
    assert sepconv.correlate is sepconv.filtering.correlate


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "kernel_shape", [(1, 1), (3, 3), (2, 2), (4, 3), (3, 6), (5, 5), (13, 9), (17, 17)]
)
@pytest.mark.parametrize("flip", [False, True])
def test_parity_scipy_float64(mode, kernel_shape, flip):
    fn = sepconv.convolve if flip else sepconv.correlate
    for image_shape in [(9, 11), (2, 3), (1, 1)]:
        x = RNG.standard_normal(image_shape)
        cval = 1.75 if mode == "constant" else 0.0
        for rank in (1, 2):
            kernel = _kernel(kernel_shape, rank)
            want = _scipy(x, kernel, mode, cval, flip)
            methods = ["auto", "direct", "fft", "lowrank"]
            if np.linalg.matrix_rank(kernel) == 1:
                methods.append("separable")
            for method in methods:
                got = fn(x, kernel, mode=mode, cval=cval, method=method)
                assert got.dtype == np.float64
                _close(got, want, 1e-12)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kernel_shape", [(3, 3), (6, 6), (15, 15), (31, 31)])
def test_parity_scipy_float32(mode, kernel_shape):
    x = RNG.random((70, 90), dtype=np.float32)
    cval = -0.5 if mode == "constant" else 0.0
    for rank in (1, 2):
        kernel = _kernel(kernel_shape, rank)
        want = ndi.correlate(x.astype(np.float64), kernel, mode=mode, cval=cval)
        for method in ("auto", "direct", "lowrank", "fft"):
            got = sepconv.correlate(x, kernel, mode=mode, cval=cval, method=method)
            assert got.dtype == np.float32
            _close(got, want, 1e-5)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16])
@pytest.mark.parametrize("mode", ["reflect", "constant", "wrap"])
def test_integers_rounded_and_saturated(dtype, mode):
    info = np.iinfo(dtype)
    x = RNG.integers(info.min, info.max, size=(40, 50), endpoint=True).astype(dtype)
    kernel = 4 * _kernel((5, 4), 2)  # negative and large weights: results leave the range
    want = ndi.correlate(x.astype(np.float64), kernel, mode=mode)
    want = np.clip(np.rint(want), info.min, info.max)
    for method in ("auto", "direct", "lowrank", "fft"):
        got = sepconv.correlate(x, kernel, mode=mode, method=method)
        assert got.dtype == dtype
        assert np.max(np.abs(got.astype(np.float64) - want)) <= 1
    assert np.any(want == info.max) and np.any(want == info.min)  # saturation was exercised
    # scipy.ndimage itself wraps around instead; sepconv never does
    assert not np.array_equal(ndi.correlate(x, kernel, mode=mode), got)


def test_integer_output_float32():
    x = skimage_camera()
    kernel = np.outer([1, 2, 1], [-1, 0, 1])
    got = sepconv.correlate(x, kernel, output=np.float32)
    assert got.dtype == np.float32
    want = ndi.correlate(x.astype(np.float64), kernel)
    _close(got, want, 1e-6)
    assert got.min() < 0  # negative edges kept


def skimage_camera() -> np.ndarray:
    from skimage import data

    return data.camera()


@pytest.mark.parametrize("channels", [1, 3, 4, 6])
def test_multichannel(channels):
    x = RNG.random((30, 41, channels))
    for rank in (1, 2):
        kernel = _kernel((7, 4), rank)
        for fn, ref in ((sepconv.correlate, ndi.correlate), (sepconv.convolve, ndi.convolve)):
            want = ref(x, kernel[:, :, None], mode="mirror")
            for method in ("auto", "direct", "lowrank", "fft"):
                _close(fn(x, kernel, mode="mirror", method=method), want, 1e-12)


def test_color_image_per_channel():
    from skimage import data

    image = data.astronaut()
    kernel = sepconv.kernels.get("gaussian", sigma=2.0)
    out = sepconv.correlate(image, kernel)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], sepconv.correlate(image[:, :, c], kernel))


@pytest.mark.parametrize("mode", MODES)
def test_volume_3d(mode):
    x = RNG.random((9, 10, 11))
    kernel = _kernel((3, 4, 5), 2)
    cval = 0.5 if mode == "constant" else 0.0
    want = ndi.correlate(x, kernel, mode=mode, cval=cval)
    for method in ("auto", "direct", "lowrank", "fft"):
        _close(sepconv.correlate(x, kernel, mode=mode, cval=cval, method=method), want, 1e-12)
    want = ndi.convolve(x, kernel, mode=mode, cval=cval)
    _close(sepconv.convolve(x, kernel, mode=mode, cval=cval, method="lowrank"), want, 1e-12)
    # a trailing channel axis
    xc = RNG.random((6, 7, 8, 2)).astype(np.float32)
    want = ndi.correlate(xc.astype(np.float64), kernel[..., None], mode=mode, cval=cval)
    _close(sepconv.correlate(xc, kernel, mode=mode, cval=cval), want, 1e-5)


def test_signal_1d():
    x = RNG.random(50)
    kernel = RNG.random(6)
    for mode in MODES:
        _close(sepconv.correlate(x, kernel, mode=mode), ndi.correlate(x, kernel, mode=mode), 1e-12)
        _close(sepconv.convolve(x, kernel, mode=mode), ndi.convolve(x, kernel, mode=mode), 1e-12)


@pytest.mark.parametrize("method", ["auto", "direct", "lowrank", "fft"])
def test_layouts_and_input_unchanged(method):
    base = RNG.random((60, 70, 3)).astype(np.float32)
    kernel = _kernel((5, 6), 2)
    views = {
        "C": base[:, :, 0].copy(),
        "F": np.asfortranarray(base[:, :, 0]),
        "strided": base[::2, 1::3, 1],
        "reversed": base[::-1, ::-1, 2],
        "transposed": base[:, :, 0].T,
        "channels view": base[5:50, 3:60],
    }
    for name, x in views.items():
        before = x.copy()
        want = ndi.correlate(
            np.array(x, dtype=np.float64),
            kernel if x.ndim == 2 else kernel[:, :, None],
            mode="nearest",
        )
        got = sepconv.correlate(x, kernel, mode="nearest", method=method)
        _close(got, want, 1e-5)
        np.testing.assert_array_equal(x, before, err_msg=name)
        assert not np.shares_memory(got, x)


def test_output_argument():
    x = RNG.integers(0, 256, (20, 30)).astype(np.uint8)
    kernel = np.ones((3, 3)) / 9
    out = np.empty((20, 30), np.float64)
    result = sepconv.correlate(x, kernel, output=out)
    assert result is out
    _close(out, ndi.correlate(x.astype(np.float64), kernel), 1e-12)
    as_uint16 = sepconv.correlate(x, kernel * 300, output=np.uint16)
    assert as_uint16.dtype == np.uint16 and as_uint16.max() > 255
    assert sepconv.correlate(x, kernel, output="float32").dtype == np.float32


@pytest.mark.parametrize("method", ["direct", "separable", "lowrank", "fft"])
def test_output_float_in_place(method):
    """A float output of the working dtype is written directly, also when it is the image."""
    x = RNG.standard_normal((40, 33)).astype(np.float32)
    kernel = _kernel((5, 5), 1 if method == "separable" else 2)
    want = ndi.correlate(x.astype(np.float64), kernel, mode="mirror")
    out = np.full_like(x, np.nan)
    assert sepconv.correlate(x, kernel, mode="mirror", method=method, output=out) is out
    _close(out, want, 1e-5)
    image = x.copy()
    assert sepconv.correlate(image, kernel, mode="mirror", method=method, output=image) is image
    _close(image, want, 1e-5)
    strided = np.full((40, 66), np.nan, np.float32)[:, ::2]  # not contiguous: through a copy
    assert sepconv.correlate(x, kernel, mode="mirror", method=method, output=strided) is strided
    _close(strided, want, 1e-5)


@pytest.mark.parametrize("mode", ["reflect", "mirror", "nearest", "constant"])
@pytest.mark.parametrize("kernel_shape", [(3, 3), (5, 7), (4, 4), (15, 15)])
def test_parity_opencv(mode, kernel_shape):
    borders = {
        "reflect": cv2.BORDER_REFLECT,
        "mirror": cv2.BORDER_REFLECT_101,
        "nearest": cv2.BORDER_REPLICATE,
        "constant": cv2.BORDER_CONSTANT,
    }
    x = RNG.random((50, 60), dtype=np.float32)
    kernel = _kernel(kernel_shape, 1).astype(np.float32)
    want = cv2.filter2D(x, -1, kernel, borderType=borders[mode])
    for method in ("auto", "direct", "separable", "fft"):
        _close(sepconv.correlate(x, kernel, mode=mode, method=method), want, 1e-5)


def test_extension_indices_match_numpy_pad():
    from sepconv.filtering._modes import NUMPY_PAD

    for mode in ("reflect", "mirror", "nearest", "wrap"):
        for n in (1, 2, 3, 7):
            if mode == "mirror" and n == 1:
                continue  # np.pad cannot reflect a single sample
            x = np.arange(n)
            want = np.pad(x, (9, 5), mode=NUMPY_PAD[mode])
            np.testing.assert_array_equal(x[extension_indices(n, 9, 5, mode)], want)


def test_modes_and_methods_are_public_and_what_the_cli_offers():
    """MODES and METHODS are the public lists the filters check against (the table's modes),
    and the choices of ``sepconv filter --mode/--method``."""
    import argparse

    from sepconv import filtering
    from sepconv.cli import cmd_filter
    from sepconv.filtering._modes import TABLE

    assert {"MODES", "METHODS", "DTYPES"} <= set(filtering.__all__)
    assert filtering.MODES == tuple(TABLE) == ("reflect", "mirror", "nearest", "constant", "wrap")
    image = np.ones((4, 4), np.float32)
    for mode in filtering.MODES:
        assert sepconv.correlate(image, np.ones((1, 3)), mode=mode).shape == (4, 4)
    with pytest.raises(ValueError, match="`mode` must be one of 'reflect', 'mirror'"):
        sepconv.correlate(image, np.ones((1, 3)), mode="symmetric")
    parser = argparse.ArgumentParser()
    cmd_filter.add_arguments(parser)
    choices = {a.dest: tuple(a.choices) for a in parser._actions if a.choices}
    assert choices["mode"] == filtering.MODES
    assert choices["method"] == filtering.METHODS


@settings(max_examples=40, deadline=None)
@given(
    h=st.integers(1, 12),
    w=st.integers(1, 12),
    kh=st.integers(1, 9),
    kw=st.integers(1, 9),
    rank=st.integers(1, 3),
    mode=st.sampled_from(MODES),
    flip=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_property_parity(h, w, kh, kw, rank, mode, flip, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((h, w))
    kernel = _kernel((kh, kw), rank, rng)
    cval = 0.25 if mode == "constant" else 0.0
    fn = sepconv.convolve if flip else sepconv.correlate
    _close(fn(x, kernel, mode=mode, cval=cval), _scipy(x, kernel, mode, cval, flip), 1e-12)


def test_plan_choices_and_costs():
    gauss = sepconv.kernels.get("gaussian", sigma=2.5, size=15)
    p = plan(gauss, (2048, 2048), np.float32)
    assert (p.method, p.rank) == ("separable", 1)
    assert (
        p.multiplications["direct"]
        == cost.filtering((15, 15), image_shape=(2048, 2048)).multiplications
    )
    assert (
        p.multiplications["separable"]
        == cost.filtering((15, 15), rank=1, image_shape=(2048, 2048)).multiplications
    )
    log = sepconv.kernels.get("log", sigma=2.5, size=15)
    p = plan(log, (2048, 2048, 3), np.uint8)
    assert (p.method, p.rank) == ("lowrank", 2)
    assert (
        p.multiplications["lowrank"]
        == 3 * cost.filtering((15, 15), rank=2, image_shape=(2048, 2048)).multiplications
    )
    assert "lowrank" in p.explain() and "why:" in str(p)
    json.dumps(p.to_dict())
    random3 = _kernel((3, 3), 3)
    assert plan(random3, (512, 512)).method == "direct"
    fixed = plan(gauss, (64, 64), method="fft")
    assert fixed.method == "fft" and fixed.requested == "fft" and "requested" in fixed.reason
    assert plan(gauss, (1, 2, 64, 64), engine="torch").method in ("separable", "direct")


def test_plan_terms_reproduce_kernel():
    log = sepconv.kernels.get("log", sigma=2.0, size=13)
    p = plan(log, (100, 100))
    rebuilt = sum(np.outer(*term) for term in p.terms)
    np.testing.assert_allclose(rebuilt, log, atol=1e-15)


def test_lowrank_tolerance():
    x = RNG.random((64, 64))
    kernel = _kernel((9, 9), 4)
    s = np.linalg.svd(kernel, compute_uv=False)
    tol = float(np.sqrt(np.sum(s[2:] ** 2))) * 1.0001
    p = plan(kernel, x.shape, x.dtype, tol=tol)
    assert p.rank == 2
    approx = sepconv.correlate(x, kernel, method="lowrank", tol=tol)
    exact = ndi.correlate(x, kernel)
    # error of a filter with a kernel error E is at most ||E||_1 * max|x|
    assert np.max(np.abs(approx - exact)) <= 9 * tol


def test_exception():
    x = RNG.random((10, 10)).astype(np.float32)
    k = np.ones((3, 3))
    with pytest.raises(ValueError, match="`image` must not be empty"):
        sepconv.correlate(np.zeros((0, 5), np.float32), k)
    with pytest.raises(ValueError, match="`image` must have 2 or 3 dimensions"):
        sepconv.correlate(np.zeros((2, 3, 4, 5), np.float32), k)
    with pytest.raises(ValueError, match="`image` must have 2 or 3 dimensions"):
        sepconv.correlate(np.zeros(5, np.float32), k)
    with pytest.raises(ValueError, match="`kernel` must be finite"):
        sepconv.correlate(x, [[1.0, np.nan]])
    with pytest.raises(ValueError, match="`kernel` must be a non-empty"):
        sepconv.correlate(x, np.zeros((0, 3)))
    for dtype in (np.complex64, np.bool_, np.float16, np.int32, np.int64):
        message = f"`image` dtype must be one of .*got {np.dtype(dtype)}"
        with pytest.raises(TypeError, match=message):
            sepconv.correlate(x.astype(dtype), k)
    with pytest.raises(TypeError, match="`kernel` must hold real numbers"):
        sepconv.correlate(x, k.astype(np.complex128))
    with pytest.raises(TypeError, match="`kernel` must hold real numbers"):
        sepconv.correlate(x, k.astype(bool))
    with pytest.raises(ValueError, match="`mode` must be one of 'reflect'.*got 'same'"):
        sepconv.correlate(x, k, mode="same")
    with pytest.raises(ValueError, match="`cval` is only used with mode='constant'"):
        sepconv.correlate(x, k, cval=1.0)
    with pytest.raises(ValueError, match="`cval` must be a finite number"):
        sepconv.correlate(x, k, mode="constant", cval=float("nan"))
    with pytest.raises(ValueError, match="`method` must be one of"):
        sepconv.correlate(x, k, method="winograd")
    with pytest.raises(ValueError, match="`method` 'separable' needs a kernel of rank 1"):
        sepconv.correlate(x, np.eye(3), method="separable")
    with pytest.raises(ValueError, match="`tol` must be >= 0.0"):
        sepconv.correlate(x, k, tol=-1.0)
    with pytest.raises(TypeError, match="`image` must be a NumPy array, a torch tensor"):
        sepconv.correlate([[1.0, 2.0]], k)
    with pytest.raises(ValueError, match="`output` must have the image's shape"):
        sepconv.correlate(x, k, output=np.empty((3, 3), np.float32))
    with pytest.raises(TypeError, match="`output` dtype must be one of"):
        sepconv.correlate(x, k, output=np.complex64)
    read_only = np.empty((10, 10), np.float32)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="`output` must be a writeable array"):
        sepconv.correlate(x, k, output=read_only)
    with pytest.raises(ValueError, match="`image_shape` must be a tuple of 2 or 3"):
        plan(k, (5,))
    with pytest.raises(ValueError, match="`engine` must be one of"):
        plan(k, (5, 5), engine="jax")


def test_import_is_light(run_python):
    code = (
        "import sys, sepconv.filtering, numpy as np; "
        "sepconv.filtering.plan(np.ones((3, 3)), (8, 8)); "
        "print(sorted(m for m in ('torch', 'cv2', 'dask') if m in sys.modules))"
    )
    result = run_python(code=code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_explain_names_the_implementation(engine):
    g = np.hanning(17)[1:-1]
    p = plan(np.outer(g, g), (512, 512), np.float32)
    assert p.method == "separable"
    runs_on = [line for line in p.explain().splitlines() if line.startswith("runs on:")]
    assert p.implementation == ("native" if engine == "native" else "cv2.sepFilter2D")
    assert len(runs_on) == 1
    assert ("sepconv's native" if engine == "native" else "cv2.sepFilter2D") in runs_on[0]
    assert p.to_dict()["implementation"] == p.implementation
    assert (
        plan(np.ones((3, 3)), (64, 64), np.float32, method="direct").implementation
        == "cv2.filter2D"
    )
    assert plan(np.ones((3, 3, 3)), (9, 9, 9), np.float32).implementation.startswith(
        "scipy.ndimage"
    )
    assert plan(np.ones((4, 4)), (64, 64), np.float32, method="fft").implementation == "scipy.fft"


def test_use_implementation_is_scoped_and_checked(engine):
    kernel = np.outer([1.0, 2.0, 1.0], [1.0, 0.0, -1.0])
    outer = "native" if engine == "native" else "cv2.sepFilter2D"

    def runs(shape=(32, 32), engine="numpy"):
        return plan(kernel, shape, method="separable", engine=engine).implementation

    with use_implementation("opencv"):
        assert runs() == "cv2.sepFilter2D"
        with use_implementation(torch_cpu="matmul"):
            assert runs() == "cv2.sepFilter2D"
            assert runs((1, 1, 32, 32), "torch") == "torch banded matmul"
        assert runs((1, 1, 32, 32), "torch") == "cv2.sepFilter2D"
    with use_implementation():  # nothing chosen: the enclosing choice holds
        assert runs() == outer
    assert runs() == outer
    with pytest.raises(ValueError, match="separable"):
        with use_implementation("cuda"):
            pass
    with pytest.raises(ValueError, match="torch_cpu"):
        with use_implementation(torch_cpu="gpu"):
            pass


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16])
@pytest.mark.parametrize("method", ["direct", "separable", "lowrank", "fft"])
def test_integer_images_every_method_and_output(dtype, method):
    """Integer images give the rounded, saturated float result whichever way they run
    (the native kernel reads and writes them directly), into a new array or ``output=``."""
    info = np.iinfo(dtype)
    x = RNG.integers(info.min, info.max, (37, 41, 3), endpoint=True).astype(dtype)
    kernel = _kernel((7, 5), 1 if method == "separable" else 2) * 3  # saturates somewhere
    want64 = ndi.correlate(x.astype(np.float64), kernel[:, :, None], mode="nearest")
    want = np.clip(np.rint(want64), info.min, info.max)
    got = sepconv.correlate(x, kernel, mode="nearest", method=method)
    assert got.dtype == dtype
    assert np.abs(got.astype(np.float64) - want).max() <= 1  # float32 arithmetic
    assert (got == info.max).any() and (got == info.min).any()
    out = np.zeros_like(x)
    assert sepconv.correlate(x, kernel, mode="nearest", method=method, output=out) is out
    np.testing.assert_array_equal(out, got)
    as_float = sepconv.correlate(x, kernel, mode="nearest", method=method, output=np.float32)
    assert np.abs(as_float - want64).max() <= 1e-5 * np.abs(want64).max()


def test_cost_model_is_data_with_its_machine():
    """The planner's timings come from the packaged cost_model.json, which names the machine
    and marks the constants no run measured."""
    import copy
    import re
    from pathlib import Path

    from sepconv.filtering import _cost_model

    model = _cost_model.load()
    assert {"cpu", "cores", "versions", "date"} <= set(model.machine)
    assert set(model.estimates) == {"nd_direct", "nd_pass"}
    assert model.float64_factor > 1 and model.native[1] > 0
    path = Path(_cost_model.__file__).with_name(_cost_model.FILE)
    data = json.loads(path.read_text())
    assert data["command"] == "python benchmarks/filter.py --calibrate"
    broken = copy.deepcopy(data)
    del broken["constants"]["native"]
    with pytest.raises(ValueError, match="native"):
        _cost_model.parse(broken)
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    package_data = re.search(
        r"\[tool\.setuptools\.package-data\]\s*sepconv = \[([^]]*)\]", pyproject
    )
    assert package_data and '"filtering/cost_model.json"' in package_data.group(1)
