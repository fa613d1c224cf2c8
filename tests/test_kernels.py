"""Named kernels against OpenCV and SciPy, their closed-form factors, and kernel parsing."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from scipy import ndimage

from sepconv import factor, kernels

ISSUE_NAMES = (
    "sobel",
    "scharr",
    "prewitt",
    "gaussian",
    "box",
    "binomial",
    "laplacian",
    "log",
    "dog",
    "gabor",
    "disk",
    "motion",
)


def _impulse_response(shape, filter_):
    impulse = np.zeros(shape)
    impulse[tuple(n // 2 for n in shape)] = 1.0
    return filter_(impulse)


def test_smoke():
    names = kernels.available()
    for name in ISSUE_NAMES:
        assert name in names
    for name, params in names.items():
        kernel = kernels.get(name)
        assert isinstance(kernel, np.ndarray) and kernel.dtype == np.float64, name
        assert np.all(np.isfinite(kernel)) and kernel.size > 0, name
        assert set(params) <= set(kernels.available()[name])
        exact = kernels.factors(name)
        if exact is not None:
            assert exact.is_exact, name
            # the kernel is built from these very terms: the same numbers, bit for bit
            assert np.array_equal(exact.reconstruct(), kernel), name


@pytest.mark.parametrize(
    "function",
    [
        kernels.sobel,
        kernels.scharr,
        kernels.prewitt,
        kernels.gaussian,
        kernels.box,
        kernels.binomial,
        kernels.laplacian,
        kernels.laplacian_of_gaussian,
        kernels.difference_of_gaussians,
        kernels.gabor,
        kernels.disk,
        kernels.motion,
    ],
)
def test_module(function):
    """Each kernel is one function: its public form, the registry and its terms agree."""
    import inspect

    name = {"laplacian_of_gaussian": "log", "difference_of_gaussians": "dog"}.get(
        function.__name__, function.__name__
    )
    signature = inspect.signature(function)
    assert signature.return_annotation == "np.ndarray"
    assert list(signature.parameters) == list(kernels.available()[name])
    assert function.__module__ == "sepconv.kernels" and function.__doc__
    assert np.array_equal(function(), kernels.get(name))
    kernel = function()
    kernel[...] = 0  # every call builds a new array
    assert np.any(function())


# --------------------------------------------------------------------------------------------
# against OpenCV


@pytest.mark.parametrize("size", [3, 5, 7, 9])
@pytest.mark.parametrize("normalize", [False, True])
def test_sobel_equals_opencv_deriv_kernels(size, normalize):
    for order in range(1, size):
        kx, ky = cv2.getDerivKernels(order, 0, size, normalize=normalize, ktype=cv2.CV_64F)
        want = np.outer(ky.ravel(), kx.ravel())
        got = kernels.sobel("x", size=size, order=order, normalize=normalize)
        assert np.allclose(got, want, rtol=0, atol=1e-15)
        assert np.allclose(
            kernels.sobel("y", size=size, order=order, normalize=normalize),
            want.T,
            rtol=0,
            atol=1e-15,
        )
        column, row = kernels.factors(
            "sobel", direction="x", size=size, order=order, normalize=normalize
        ).terms[0]
        assert np.array_equal(column, ky.ravel()) and np.array_equal(row, kx.ravel())


def test_sobel_filters_like_cv2_sobel():
    image = np.random.default_rng(0).random((20, 24))
    for size in (3, 5):
        for direction, (dx, dy) in (("x", (1, 0)), ("y", (0, 1))):
            want = cv2.Sobel(image, cv2.CV_64F, dx, dy, ksize=size)
            got = cv2.filter2D(image, cv2.CV_64F, kernels.sobel(direction, size=size))
            assert np.allclose(got, want, atol=1e-12)


@pytest.mark.parametrize("normalize", [False, True])
def test_scharr_equals_opencv(normalize):
    kx, ky = cv2.getDerivKernels(1, 0, cv2.FILTER_SCHARR, normalize=normalize, ktype=cv2.CV_64F)
    assert np.allclose(kernels.scharr("x", normalize=normalize), np.outer(ky, kx), atol=1e-15)
    image = np.random.default_rng(1).random((12, 10))
    got = cv2.filter2D(image, cv2.CV_64F, kernels.scharr("y"))
    assert np.allclose(got, cv2.Scharr(image, cv2.CV_64F, 0, 1), atol=1e-12)


def test_prewitt():
    assert np.array_equal(kernels.prewitt("x"), [[-1, 0, 1]] * 3)
    assert np.array_equal(kernels.prewitt("x", size=5)[0], [-1, -2, 0, 2, 1])
    assert np.allclose(kernels.prewitt("x", normalize=True).sum(axis=0), [-1 / 2, 0, 1 / 2])
    # skimage's prewitt_v is the normalised horizontal-derivative kernel (as convolution)
    skimage_filters = pytest.importorskip("skimage.filters")
    image = np.random.default_rng(2).random((16, 16))
    want = skimage_filters.prewitt_v(image)
    got = ndimage.correlate(image, kernels.prewitt("x") / 3, mode="reflect")
    assert np.allclose(got[1:-1, 1:-1], want[1:-1, 1:-1], atol=1e-12)


@pytest.mark.parametrize("size", [3, 5, 7, 9])
@pytest.mark.parametrize("normalize", [False, True])
def test_prewitt_is_opencv_derivative_times_box(size, normalize):
    """The derivative factor is OpenCV's first derivative (scaled as getDerivKernels with
    normalize), the smoothing a box (summing to 1 with normalize), in 2-D and 3-D."""
    kx, _ = cv2.getDerivKernels(1, 0, size, normalize=normalize, ktype=cv2.CV_64F)
    box = np.full(size, 1.0 / size if normalize else 1.0)
    assert np.allclose(
        kernels.prewitt("x", size=size, normalize=normalize),
        np.outer(box, kx.ravel()),
        rtol=0,
        atol=1e-15,
    )
    terms = kernels.factors("prewitt", direction="y", size=size, ndim=3, normalize=normalize).terms
    assert len(terms) == 1
    planes, rows, columns = terms[0]
    assert np.allclose(rows, kx.ravel(), rtol=0, atol=1e-15)
    assert np.array_equal(planes, box) and np.array_equal(columns, box)


@pytest.mark.parametrize("sigma", [0.7, 1.0, 2.3])
def test_gaussian_with_size_equals_cv2_getgaussiankernel(sigma):
    for size in (3, 5, 9, 11):
        g = cv2.getGaussianKernel(size, sigma, ktype=cv2.CV_64F).ravel()
        assert np.allclose(kernels.gaussian(sigma, size=size), np.outer(g, g), atol=1e-16)


@pytest.mark.parametrize(("size", "neighbours", "ksize"), [(3, 4, 1), (5, 4, 5), (7, 4, 7)])
def test_laplacian_equals_cv2_laplacian(size, neighbours, ksize):
    kernel = kernels.laplacian(size, neighbours)
    response = _impulse_response((15, 15), lambda x: cv2.Laplacian(x, cv2.CV_64F, ksize=ksize))
    n = kernel.shape[0] // 2
    assert np.allclose(response[7 - n : 8 + n, 7 - n : 8 + n], kernel[::-1, ::-1], atol=1e-12)
    assert kernels.factors("laplacian", size=size).rank == 2


@pytest.mark.parametrize("theta", [0.0, 0.3, 1.0, np.pi / 2, 2.5, -0.7])
@pytest.mark.parametrize("phase", [0.0, 0.8, np.pi / 2])
@pytest.mark.parametrize("size", [None, 9])
def test_gabor_equals_cv2_getgaborkernel(theta, phase, size):
    sigma, wavelength, gamma = 2.2, 5.5, 1.0
    want = cv2.getGaborKernel(
        (size or 0, size or 0), sigma, theta, wavelength, gamma, phase, ktype=cv2.CV_64F
    )
    got = kernels.gabor(sigma, theta, wavelength, phase, gamma, size)
    assert got.shape == want.shape
    assert np.allclose(got, want, rtol=0, atol=1e-12)
    exact = kernels.factors(
        "gabor", sigma=sigma, theta=theta, wavelength=wavelength, phase=phase, size=size
    )
    assert exact.is_exact and exact.rank <= 2
    assert np.allclose(exact.reconstruct(), got, atol=1e-13)


def test_gabor_elongated_envelope():
    want = cv2.getGaborKernel((0, 0), 3.0, 0.6, 6.0, 0.5, 0.2, ktype=cv2.CV_64F)
    got = kernels.gabor(3.0, 0.6, 6.0, 0.2, gamma=0.5)
    assert np.allclose(got, want, atol=1e-12)
    assert kernels.factors("gabor", sigma=3.0, theta=0.6, gamma=0.5) is None
    assert factor.rank(got) > 2  # an oblique elongated envelope is not rank 2
    assert kernels.factors("gabor", theta=0.0, gamma=0.5).rank == 1


# --------------------------------------------------------------------------------------------
# against SciPy


@pytest.mark.parametrize("sigma", [0.5, 1.0, 1.7, 3.0])
@pytest.mark.parametrize("truncate", [4.0, 2.5])
def test_gaussian_equals_scipy_gaussian_filter(sigma, truncate):
    kernel = kernels.gaussian(sigma, truncate=truncate)
    radius = int(truncate * sigma + 0.5)
    assert kernel.shape == (2 * radius + 1,) * 2
    response = _impulse_response(
        kernel.shape,
        lambda x: ndimage.gaussian_filter(x, sigma, mode="constant", truncate=truncate),
    )
    assert np.allclose(kernel, response, rtol=0, atol=1e-16)
    assert kernel.sum() == pytest.approx(1.0, abs=1e-14)


def test_gaussian_3d_and_anisotropic_equal_scipy():
    kernel = kernels.gaussian(1.0, ndim=3, truncate=3.0)
    response = _impulse_response(
        kernel.shape, lambda x: ndimage.gaussian_filter(x, 1.0, mode="constant", truncate=3.0)
    )
    assert kernel.shape == (7, 7, 7) and np.allclose(kernel, response, atol=1e-17)
    kernel = kernels.gaussian((1.0, 2.0))
    response = _impulse_response(
        kernel.shape, lambda x: ndimage.gaussian_filter(x, (1.0, 2.0), mode="constant")
    )
    assert kernel.shape == (9, 17) and np.allclose(kernel, response, atol=1e-17)


@pytest.mark.parametrize("sigma", [0.8, 1.4, 2.0])
def test_log_equals_scipy_gaussian_laplace(sigma):
    kernel = kernels.laplacian_of_gaussian(sigma)
    response = _impulse_response(
        kernel.shape, lambda x: ndimage.gaussian_laplace(x, sigma, mode="constant")
    )
    assert np.allclose(kernel, response, rtol=0, atol=1e-15)
    assert kernel[kernel.shape[0] // 2, kernel.shape[1] // 2] < 0
    zero = kernels.laplacian_of_gaussian(sigma, zero_sum=True)
    assert abs(zero.sum()) < 1e-15 and factor.rank(zero) == 2
    assert kernels.factors("log", sigma=sigma).rank == 2


def test_dog_equals_scipy_difference():
    kernel = kernels.difference_of_gaussians(1.0, 2.0)
    radius = kernel.shape[0] // 2
    assert radius == 8  # from the wider Gaussian, int(4 * 2 + 0.5)
    response = _impulse_response(
        kernel.shape,
        lambda x: (
            ndimage.gaussian_filter(x, 1.0, mode="constant", radius=radius)
            - ndimage.gaussian_filter(x, 2.0, mode="constant", radius=radius)
        ),
    )
    assert np.allclose(kernel, response, atol=1e-16)
    assert abs(kernel.sum()) < 1e-15
    f = kernels.factors("dog", sigma=1.0, sigma2=2.0)
    assert f.rank == 2 and f.is_exact
    assert kernels.difference_of_gaussians(1.0).shape == kernels.gaussian(1.6).shape


def test_filtering_with_closed_form_terms_equals_direct_filtering():
    """The factors are usable: two 1-D passes per term reproduce cv2.filter2D."""
    image = np.random.default_rng(3).random((32, 40))
    for name, params in (
        ("gabor", {"theta": 0.7, "phase": 0.4}),
        ("log", {"sigma": 1.5}),
        ("sobel-y", {"size": 5}),
        ("laplacian", {}),
    ):
        kernel = kernels.get(name, **params)
        direct = cv2.filter2D(image, cv2.CV_64F, kernel, borderType=cv2.BORDER_REFLECT_101)
        total = np.zeros_like(image)
        for column, row in kernels.factors(name, **params).terms:
            total += cv2.sepFilter2D(
                image, cv2.CV_64F, row, column, borderType=cv2.BORDER_REFLECT_101
            )
        assert np.allclose(total, direct, atol=1e-12), name


# --------------------------------------------------------------------------------------------
# the others


def test_box_and_binomial():
    assert np.allclose(kernels.box(3), np.full((3, 3), 1 / 9))
    assert kernels.box((3, 5), normalize=False).sum() == 15
    assert kernels.box(4, ndim=3).shape == (4, 4, 4)
    assert np.array_equal(kernels.binomial(5, normalize=False)[2], [6, 24, 36, 24, 6])
    assert kernels.binomial(5).sum() == pytest.approx(1.0)
    # a binomial kernel is the discrete Gaussian: close to gaussian(sqrt((n-1)/4))
    one_d = kernels.binomial(9, ndim=1)
    assert np.abs(one_d - kernels.gaussian(np.sqrt(2.0), size=9, ndim=1)).max() < 0.01


def test_sobel_3d():
    kernel = kernels.sobel("x", ndim=3)
    assert kernel.shape == (3, 3, 3)
    assert np.array_equal(kernel[1, 1], [-2 * 2, 0, 2 * 2])
    assert np.array_equal(kernels.sobel("z", ndim=3), np.moveaxis(kernel, 2, 0))
    with pytest.raises(ValueError, match=r"`direction` must be one of 'x', 'y', got 'z'"):
        kernels.sobel("z")
    assert np.array_equal(kernels.get("sobel-z"), kernels.sobel("z", ndim=3))
    assert kernels.get("prewitt-z", size=5).shape == (5, 5, 5)


def test_disk_and_motion():
    assert kernels.disk(2).shape == (5, 5) and kernels.disk(2).sum() == pytest.approx(1.0)
    assert kernels.factors("disk") is None
    assert np.allclose(kernels.motion(5), np.full((1, 5), 0.2))
    assert np.allclose(kernels.motion(4), np.array([[1, 2, 2, 2, 1]]) / 8)
    vertical = kernels.motion(5, 90)
    assert vertical.shape == (5, 1) and np.allclose(vertical, 0.2)
    diagonal = kernels.motion(7, 45)
    assert diagonal.shape == (5, 5) and diagonal.sum() == pytest.approx(1.0)
    assert np.allclose(np.fliplr(diagonal), np.diag(np.diag(np.fliplr(diagonal))))  # on the line
    assert factor.rank(kernels.motion(9, 30)) > 2
    assert kernels.factors("motion", length=5).rank == 1
    assert kernels.factors("motion", angle=30) is None


def test_factors_are_exact_for_separable_kernels():
    for name in ("sobel-x", "scharr-y", "prewitt-x", "gaussian", "box", "binomial"):
        f = kernels.factors(name)
        assert f.rank == 1 and f.error <= 1e-16 * np.linalg.norm(kernels.get(name)) + 1e-300


# --------------------------------------------------------------------------------------------
# get / available / parse


def test_get_names_are_forgiving():
    assert np.array_equal(kernels.get("Sobel_X"), kernels.sobel("x"))
    assert np.array_equal(
        kernels.get("laplacian-of-gaussian", sigma=2.0), kernels.laplacian_of_gaussian(2.0)
    )
    assert np.array_equal(kernels.get("sobel", direction="y", size=5), kernels.sobel("y", 5))


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("sobel-x", kernels.sobel("x")),
        ("  SOBEL-Y ", kernels.sobel("y")),
        ("gaussian:sigma=2,size=9", kernels.gaussian(2.0, size=9)),
        ("gaussian: sigma = 1.5 , truncate=3", kernels.gaussian(1.5, truncate=3.0)),
        ("gaussian:sigma=1x2", kernels.gaussian((1.0, 2.0))),
        ("box:size=3x5,normalize=false", kernels.box((3, 5), normalize=False)),
        ("gabor:theta=0.5,phase=1", kernels.gabor(theta=0.5, phase=1.0)),
        ("1 2 1; 2 4 2; 1 2 1", np.outer([1, 2, 1], [1, 2, 1])),
        ("1,2,1;2,4,2;1,2,1", np.outer([1, 2, 1], [1, 2, 1])),
        ("1 2 1\n2 4 2\n1 2 1\n", np.outer([1, 2, 1], [1, 2, 1])),
        ("-1 0 1", np.array([-1.0, 0.0, 1.0])),
        ("[[1, 2], [3, 4.5]]", np.array([[1, 2], [3, 4.5]])),
        ("1e-1 2.5e0", np.array([0.1, 2.5])),
    ],
)
def test_parse(text, want):
    got = kernels.parse(text)
    assert got.dtype == np.float64
    assert np.array_equal(got, want)


def test_parse_files(tmp_path):
    kernel = np.outer([1.0, 2.0, 1.0], [-1.0, 0.0, 1.0])
    np.save(tmp_path / "k.npy", kernel)
    np.savetxt(tmp_path / "k.txt", kernel)
    np.savetxt(tmp_path / "k.csv", kernel, delimiter=",", header="sobel", comments="# ")
    np.save(tmp_path / "v.npy", np.ones((2, 3, 4), dtype=np.float32))
    for name in ("k.npy", "k.txt", "k.csv"):
        assert np.array_equal(kernels.parse(str(tmp_path / name)), kernel), name
    assert np.array_equal(kernels.parse(tmp_path / "k.npy"), kernel)  # a Path
    assert kernels.parse(str(tmp_path / "v.npy")).shape == (2, 3, 4)
    np.save(tmp_path / "f32.npy", np.ones((3, 3), np.float32))
    assert kernels.parse(str(tmp_path / "f32.npy")).dtype == np.float32
    np.save(tmp_path / "i16.npy", np.ones((3, 3), np.int16))
    assert kernels.parse(str(tmp_path / "i16.npy")).dtype == np.float64


@pytest.mark.parametrize(
    ("text", "error", "match"),
    [
        ("", ValueError, "must not be empty"),
        ("   ", ValueError, "must not be empty"),
        (";", ValueError, "must not be empty"),
        ("1 2 3; 4 5", ValueError, "ragged: its rows have 2 and 3 entries"),
        ("1 nan 2", ValueError, "`kernel` must be finite, got nan at index 1"),
        ("1 inf", ValueError, "`kernel` must be finite, got inf"),
        ("1 2 x", ValueError, r"'1 2 x' is not a row of numbers"),
        ("sobel-q", ValueError, "unknown kernel 'sobel-q'"),
        (
            "gaussian:sigma=2,colour=red",
            ValueError,
            "unknown parameter `colour` for kernel 'gaussian'; accepted: sigma, size",
        ),
        ("gaussian:sigma", ValueError, "must be written name=value"),
        ("gaussian:sigma=-1", ValueError, "`sigma` must be a positive number"),
        ("gaussian:sigma=abc", TypeError, "`sigma` must be a real number, got 'abc'"),
        ("sobel:size=4", ValueError, "`size` must be an odd integer >= 3, got 4"),
        ("sobel:order=3", ValueError, r"`order` must be between 1 and size - 1 = 2"),
        ("sobel-x:direction=y", ValueError, "fixes `direction`"),
        ("scharr:size=5", ValueError, "`size` must be 3 for the Scharr kernel"),
        ("box:normalize=1", TypeError, "`normalize` must be True or False"),
        ("[[1, 2], [3]]", ValueError, "ragged"),
        ("[[1, 2", ValueError, "cannot read the kernel literal"),
        ("missing.npy", ValueError, "cannot read kernel file 'missing.npy': no such file"),
        (3, TypeError, "`text` must be a string or a path"),
    ],
)
def test_exception(text, error, match):
    with pytest.raises(error, match=match):
        kernels.parse(text)


def test_exception_files(tmp_path):
    cases = {
        "object.npy": (np.array([1, "a"], dtype=object), ValueError, "cannot read kernel file"),
        "complex.npy": (np.array([1 + 1j, 2]), TypeError, "real numbers .* dtype complex128"),
        "bool.npy": (np.array([True, False]), TypeError, "dtype bool"),
        "scalar.npy": (np.array(3.0), ValueError, "at least one axis"),
        "empty.npy": (np.zeros((0, 2)), ValueError, r"non-empty .* got shape \(0, 2\)"),
        "nan.npy": (np.array([1.0, np.nan]), ValueError, "must be finite, got nan"),
    }
    for name, (array, error, match) in cases.items():
        np.save(tmp_path / name, array, allow_pickle=True)
        with pytest.raises(error, match=match):
            kernels.parse(str(tmp_path / name))
    (tmp_path / "ragged.csv").write_text("1,2,3\n4,5\n")
    with pytest.raises(ValueError, match="ragged"):
        kernels.parse(str(tmp_path / "ragged.csv"))
    (tmp_path / "blank.txt").write_text("# nothing\n\n")
    with pytest.raises(ValueError, match="holds no numbers"):
        kernels.parse(str(tmp_path / "blank.txt"))
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(ValueError, match="cannot read kernel file"):
        kernels.parse(str(tmp_path / "binary.txt"))
    (tmp_path / "bad.npy").write_bytes(b"not a npy file")
    with pytest.raises(ValueError, match="cannot read kernel file"):
        kernels.parse(str(tmp_path / "bad.npy"))


def test_exception_get():
    with pytest.raises(TypeError, match="`name` must be a kernel name"):
        kernels.get(3)
    with pytest.raises(ValueError, match=r"unknown kernel 'gaus'.*did you mean 'gaussian'"):
        kernels.get("gaus")
    with pytest.raises(ValueError, match=r"`radius` must be a positive integer, got 0"):
        kernels.disk(0)
    with pytest.raises(ValueError, match=r"`size` must be a positive odd integer"):
        kernels.gabor(size=8)
    with pytest.raises(ValueError, match=r"`neighbours` must be 4 or 8, got 6"):
        kernels.laplacian(neighbours=6)
    with pytest.raises(ValueError, match=r"`sigma` must be a positive number or a tuple of 2"):
        kernels.gaussian((1.0, 2.0, 3.0), ndim=2)
    with pytest.raises(ValueError, match=r"`sigma` must be at least 1e-06"):
        kernels.gaussian(1e-300)
    with pytest.raises(ValueError, match=r"more than the 16,777,216 sepconv builds; pass a "):
        kernels.get("gaussian", sigma=1e9)
    with pytest.raises(ValueError, match=r"more than the 16,777,216"):
        kernels.box(300, ndim=3)
    with pytest.raises(ValueError, match=r"at most 1023 \(binomial coefficients overflow"):
        kernels.sobel(size=1025)
    with pytest.raises(ValueError, match=r"`sigma` and `sigma / gamma` must be at least"):
        kernels.gabor(sigma=1.0, gamma=1e9)
