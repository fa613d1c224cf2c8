"""Kernel factorization: separability, integer factors, low rank (Eckart–Young), N-D and CP."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import ndimage

from sepconv import cost, factor, kernels
from sepconv.factor import Factorization, NotSeparableError, lowrank, rank, separate

EPS64 = np.finfo(np.float64).eps
EPS32 = np.finfo(np.float32).eps


def _outer(*vectors):
    out = np.asarray(vectors[0], dtype=np.float64)
    for v in vectors[1:]:
        out = np.multiply.outer(out, v)
    return out


def _matlab_rank(h):
    """MATLAB's isfilterseparable rule: singular values above numel(h) * max(s) * eps."""
    s = np.linalg.svd(h, compute_uv=False)
    return int(np.sum(s > h.size * s.max() * EPS64))


# --------------------------------------------------------------------------------------------
# smoke and the forms people write


def test_smoke():
    f = separate(kernels.get("sobel-x"))
    assert isinstance(f, Factorization)
    assert f.rank == 1 and f.is_exact and f.is_separable and f.method == "integer"
    assert f.shape == (3, 3) and f.error == 0 and f.relative_error == 0
    for factor_ in f.terms[0]:
        assert factor_.dtype == np.float64 and factor_.ndim == 1
    assert np.array_equal(f.reconstruct(), kernels.get("sobel-x"))


@pytest.mark.parametrize(
    ("kernel", "column", "row"),
    [
        ([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], [1, 2, 1], [-1, 0, 1]),
        ([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], [-1, 0, 1], [1, 2, 1]),
        (kernels.scharr("x"), [3, 10, 3], [-1, 0, 1]),
        (kernels.prewitt("y"), [-1, 0, 1], [1, 1, 1]),
        (kernels.binomial(5, normalize=False), [1, 4, 6, 4, 1], [1, 4, 6, 4, 1]),
        (kernels.box(3, normalize=False), [1, 1, 1], [1, 1, 1]),
        (kernels.sobel("x", size=5), [1, 4, 6, 4, 1], [-1, -2, 0, 2, 1]),
        (kernels.sobel("x", order=2), [1, 2, 1], [1, -2, 1]),
        (np.outer([1, 2, 1], [-1, 0, 1]) * 6, [6, 12, 6], [-1, 0, 1]),  # scale on the column
        (np.outer([2, 4], [3, 6, 9]), [6, 12], [1, 2, 3]),
        (np.array([[7]]), [7], [1]),
    ],
)
def test_integer_factors_smallest_magnitude(kernel, column, row):
    f = separate(np.asarray(kernel))
    assert f.method == "integer"
    got_column, got_row = f.terms[0]
    assert got_column.tolist() == column
    assert got_row.tolist() == row


def test_integer_dtype_and_integer_valued_floats_agree():
    sobel = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    for kernel in (sobel, sobel.astype(np.int8), sobel.astype(np.float32), sobel.astype(float)):
        column, row = separate(kernel).terms[0]
        assert column.tolist() == [1, 2, 1] and row.tolist() == [-1, 0, 1]


def test_non_integer_factors_are_balanced_like_matlab():
    rng = np.random.default_rng(3)
    u, v = rng.standard_normal(4), rng.standard_normal(6)
    kernel = np.outer(u, v)
    column, row = separate(kernel).terms[0]
    # MATLAB: u1 * sqrt(s1), v1 * sqrt(s1): equal norms, product = kernel
    assert np.isclose(np.linalg.norm(column), np.linalg.norm(row))
    assert np.allclose(np.outer(column, row), kernel, rtol=0, atol=1e-14)
    s = np.linalg.svd(kernel, compute_uv=False)[0]
    assert np.isclose(np.linalg.norm(column), np.sqrt(s))


def test_normalised_gaussian_factors_are_scipys_1d_gaussian():
    g2 = kernels.gaussian(1.5)
    column, row = separate(g2).terms[0]
    impulse = np.zeros(2 * 6 + 1)
    impulse[6] = 1
    g1 = ndimage.gaussian_filter1d(impulse, 1.5, mode="constant")
    assert np.allclose(column, g1, atol=1e-15) and np.allclose(row, g1, atol=1e-15)
    column, row = separate(kernels.binomial(5)).terms[0]  # [1, 4, 6, 4, 1] / 16
    assert np.allclose(column, np.array([1, 4, 6, 4, 1]) / 16, atol=1e-16)


def test_sign_rule():
    # smoothing factors sum positive; a zero-sum factor reads [-1, 0, 1]; minus sign on the last
    g = np.array([1.0, 2.0, 1.0])
    column, row = separate(-np.outer(g, g)).terms[0]
    assert column.tolist() == [1, 2, 1] and row.tolist() == [-1, -2, -1]
    column, row = separate(np.outer([1, -2, 1], [1, 0, -1])).terms[0]
    assert column.tolist() == [1, -2, 1] and row.tolist() == [1, 0, -1]  # row carries the sign
    column, row = separate(np.outer([1, -2, 1], [-1, 0, 1])).terms[0]
    assert column.tolist() == [1, -2, 1] and row.tolist() == [-1, 0, 1]
    rng = np.random.default_rng(0)
    d = np.array([-0.5, 0.0, 0.5])
    smooth = rng.random(3) + 0.1
    column, row = separate(np.outer(d, smooth) * -1.7).terms[0]
    assert row.sum() > 0 and column[-1] < 0  # the zero-sum factor carries the sign


def test_zero_and_1d_kernels():
    assert rank(np.zeros((3, 3))) == 0
    assert factor.is_separable(np.zeros((3, 3)))
    f = separate(np.zeros((3, 3)))
    assert f.rank == 1 and f.error == 0 and f.relative_error == 0
    assert lowrank(np.zeros((2, 2, 2))).rank == 1
    one = separate([1, 2, 3])
    assert one.rank == 1 and one.terms[0][0].tolist() == [1, 2, 3] and one.error == 0
    assert rank([0.5, 1]) == 1
    assert one.cost()[1].multiplications == 3


# --------------------------------------------------------------------------------------------
# ranks of named kernels (acceptance)


def test_rank_named_kernels():
    for name in ("sobel-x", "sobel-y", "scharr-x", "prewitt-x", "gaussian", "box", "binomial"):
        assert rank(kernels.get(name)) == 1, name
        assert factor.is_separable(kernels.get(name))
    for sigma in (0.8, 1.4, 3.0):
        assert rank(kernels.laplacian_of_gaussian(sigma)) == 2
        assert rank(kernels.laplacian_of_gaussian(sigma, zero_sum=True)) == 2
        assert rank(kernels.difference_of_gaussians(sigma)) == 2
    assert rank(kernels.laplacian()) == 2
    assert rank(kernels.laplacian(neighbours=8)) == 2
    assert rank(kernels.laplacian(5)) == 2


@pytest.mark.parametrize("theta", np.linspace(0.05, np.pi - 0.05, 8))  # avoids 90°
@pytest.mark.parametrize("phase", [0.0, 0.7, np.pi / 2])
def test_gabor_rank_two_at_any_angle(theta, phase):
    kernel = kernels.gabor(sigma=2.5, theta=theta, wavelength=5.0, phase=phase)
    assert rank(kernel) == 2
    # and the numerical rule of NumPy and MATLAB agree on it
    assert np.linalg.matrix_rank(kernel) == 2 and _matlab_rank(kernel) == 2


def test_gabor_axis_aligned_is_separable():
    for theta in (0.0, np.pi / 2, np.pi):
        assert rank(kernels.gabor(theta=theta, phase=0.3)) == 1


def test_disk_rank_grows_with_size():
    ranks = [rank(kernels.disk(r)) for r in range(1, 12)]
    assert ranks == sorted(ranks) and ranks[-1] > ranks[0] + 4
    assert ranks[:3] == [2, 3, 3]


def test_random_3x3_rank_3_and_the_error_says_so():
    kernel = np.random.default_rng(0).standard_normal((3, 3))
    assert rank(kernel) == 3
    assert not factor.is_separable(kernel)
    with pytest.raises(NotSeparableError, match=r"not separable: it has rank 3") as info:
        separate(kernel)
    s = np.linalg.svd(kernel, compute_uv=False)
    best = np.sqrt(s[1] ** 2 + s[2] ** 2)
    assert info.value.rank == 3
    assert np.isclose(info.value.best.error, best)
    assert f"{best / np.linalg.norm(kernel):.3g}" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_ranks_agree_with_numpy_and_matlab_rules():
    """Kernels whose singular values are well above rounding or exactly 0: all rules agree."""
    rng = np.random.default_rng(7)
    for _ in range(60):
        m, n = rng.integers(2, 12, size=2)
        r = int(rng.integers(1, min(m, n) + 1))
        u = np.linalg.qr(rng.standard_normal((m, m)))[0][:, :r]
        v = np.linalg.qr(rng.standard_normal((n, n)))[0][:, :r]
        s = 10 ** rng.uniform(-4, 0, size=r)
        kernel = (u * s) @ v.T * 10 ** rng.uniform(-5, 5)
        assert rank(kernel) == r == np.linalg.matrix_rank(kernel) == _matlab_rank(kernel)


def test_float32_tolerance_ignores_float32_rounding():
    kernel = np.outer(np.float32([0.1, 0.7, 0.3]), np.float32([0.9, -0.2, 0.4, 0.6]))
    assert kernel.dtype == np.float32
    assert rank(kernel) == 1
    # the same values judged as float64 keep their rounding noise only if it is above tol
    assert factor.default_tol(kernel) > 1e4 * factor.default_tol(kernel.astype(np.float64))


# --------------------------------------------------------------------------------------------
# property tests


@st.composite
def _vectors(draw, n_min=1, n_max=9):
    n = draw(st.integers(n_min, n_max))
    seed = draw(st.integers(0, 2**32 - 1))
    scale = draw(st.floats(-6, 6))
    vector = np.random.default_rng(seed).standard_normal(n) * 10.0**scale
    return vector


@settings(max_examples=60, deadline=None)
@given(_vectors(), _vectors())
def test_random_outer_products_are_separable_float64(u, v):
    kernel = np.outer(u, v)
    assert factor.is_separable(kernel)
    f = separate(kernel)
    assert f.rank == 1
    assert np.linalg.norm(f.reconstruct() - kernel) <= 1e-10 * np.linalg.norm(kernel)


@settings(max_examples=60, deadline=None)
@given(_vectors(), _vectors())
def test_random_outer_products_are_separable_float32(u, v):
    kernel = np.outer(u.astype(np.float32), v.astype(np.float32))
    assert kernel.dtype == np.float32
    f = separate(kernel)
    reference = kernel.astype(np.float64)
    assert np.linalg.norm(f.reconstruct() - reference) <= 1e-5 * np.linalg.norm(reference)


@settings(max_examples=60, deadline=None)
@given(_vectors(2), _vectors(2), st.integers(0, 2**32 - 1), st.floats(1.5, 1e6))
def test_noise_above_tolerance_makes_non_separable(u, v, seed, above):
    kernel = np.outer(u, v)
    noise = np.random.default_rng(seed).standard_normal(kernel.shape)
    # keep only the part of the noise no rank-1 change of u v^T can absorb
    pu = np.eye(len(u)) - np.outer(u, u) / (u @ u)
    pv = np.eye(len(v)) - np.outer(v, v) / (v @ v)
    noise = pu @ noise @ pv
    tol = factor.default_tol(kernel)
    noise *= above * tol / np.linalg.norm(noise)
    noisy = kernel + noise
    assert rank(noisy) >= 2
    assert not factor.is_separable(noisy)
    with pytest.raises(NotSeparableError):
        separate(noisy)
    # and with a tolerance above the noise, it is separable again
    assert factor.is_separable(noisy, tol=2 * np.linalg.norm(noise))


@st.composite
def _matrices(draw):
    m, n = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    seed = draw(st.integers(0, 2**32 - 1))
    decay = draw(st.floats(0.0, 3.0))
    rng = np.random.default_rng(seed)
    k = min(m, n)
    u = np.linalg.qr(rng.standard_normal((m, k)))[0]
    v = np.linalg.qr(rng.standard_normal((n, k)))[0]
    s = np.sort(rng.random(k))[::-1] * np.exp(-decay * np.arange(k))
    return (u * s) @ v.T


@settings(max_examples=80, deadline=None)
@given(_matrices(), st.integers(1, 9))
def test_lowrank_error_is_the_discarded_singular_values(kernel, r):
    r = min(r, min(kernel.shape))
    f = lowrank(kernel, rank=r)
    s = np.linalg.svd(kernel, compute_uv=False)
    assert f.rank == r
    assert np.allclose(f.singular_values, s)
    discarded = float(np.sum(s[r:] ** 2))
    # Two SVDs (the factorization's and NumPy's) agree on each singular value to LAPACK's
    # bound, a few max(m, n) * eps * s_1 (their rounding depends on the BLAS kernel): the sums
    # of the k discarded squares then differ by at most 2 sqrt(k * discarded) delta + k delta^2.
    delta = 4 * max(kernel.shape) * np.finfo(np.float64).eps * float(s[0])
    k = len(s) - r
    rounding = 2 * np.sqrt(k * discarded) * delta + k * delta**2
    assert abs(f.error**2 - discarded) <= 1e-9 * discarded + rounding + 1e-300
    measured = np.linalg.norm(kernel - f.reconstruct())
    if measured <= f.noise:  # rounding noise is reported as 0
        assert f.error == 0.0 and f.relative_error == 0.0
    else:
        assert np.isclose(f.error, measured, rtol=1e-12, atol=0)
    assert f.noise == pytest.approx(factor.default_tol(kernel), rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(_matrices(), st.floats(1e-6, 0.9))
def test_lowrank_within_tol_is_fewest_terms(kernel, relative):
    norm = np.linalg.norm(kernel)
    if norm == 0:
        return
    f = lowrank(kernel, rtol=relative)
    assert f.is_exact and f.error <= relative * norm
    assert rank(kernel, rtol=relative) == f.rank
    if f.rank > 1:
        fewer = lowrank(kernel, rank=f.rank - 1)
        assert fewer.error > relative * norm


def test_lowrank_beats_other_rank_r_approximations():
    """Eckart–Young: no separable sum of r terms does better, e.g. r rows of the kernel."""
    rng = np.random.default_rng(1)
    kernel = rng.standard_normal((6, 6))
    for r in range(1, 6):
        best = lowrank(kernel, rank=r).error
        for _ in range(5):
            q = np.linalg.qr(rng.standard_normal((6, r)))[0]
            other = q @ (q.T @ kernel)  # the best approximation in a random r-dim column space
            assert best <= np.linalg.norm(kernel - other) + 1e-12


def test_torch_tensors_are_accepted():
    torch = pytest.importorskip("torch")
    weight = torch.tensor(
        [[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], requires_grad=True
    )
    column, row = separate(weight).terms[0]
    assert column.tolist() == [1, 2, 1] and row.tolist() == [-1, 0, 1]
    assert factor.default_tol(weight.detach()) == pytest.approx(
        factor.default_tol(weight.detach().numpy())
    )
    assert factor.default_tol(weight.detach().double()) < factor.default_tol(weight.detach())


# --------------------------------------------------------------------------------------------
# N-D


def test_3d_gaussian_is_three_1d_gaussians():
    g3 = kernels.gaussian(1.2, ndim=3)
    f = separate(g3)
    assert f.rank == 1 and len(f.terms[0]) == 3
    impulse = np.zeros(11)
    impulse[5] = 1
    g1 = ndimage.gaussian_filter1d(impulse, 1.2, mode="constant")
    for factor_ in f.terms[0]:
        assert np.allclose(factor_, g1, atol=1e-15)
    # anisotropic: each factor proportional to its own 1-D Gaussian
    g3 = kernels.gaussian((1.0, 2.0, 0.7))
    f = separate(g3)
    for factor_, sigma in zip(f.terms[0], (1.0, 2.0, 0.7)):
        radius = int(4 * sigma + 0.5)
        impulse = np.zeros(2 * radius + 1)
        impulse[radius] = 1
        g1 = ndimage.gaussian_filter1d(impulse, sigma, mode="constant")
        assert np.allclose(factor_ / factor_.sum(), g1, atol=1e-15)
    assert np.allclose(f.reconstruct(), g3, atol=1e-17)


def test_3d_sobel_and_box_integer_factors():
    f = separate(kernels.sobel("z", ndim=3))
    assert [t.tolist() for t in f.terms[0]] == [[-1, 0, 1], [1, 2, 1], [1, 2, 1]]
    f = separate(kernels.box(3, ndim=3, normalize=False))
    assert [t.tolist() for t in f.terms[0]] == [[1, 1, 1]] * 3
    assert f.cost()[0].multiplications == 27 and f.cost()[1].multiplications == 9


@settings(max_examples=40, deadline=None)
@given(_vectors(1, 6), _vectors(1, 6), _vectors(1, 6))
@example(*[np.array([125730.22109339])] * 3)  # a cube root of 2e15 is 12 eps off
def test_random_rank1_3d_tensors_are_recovered(a, b, c):
    tensor = _outer(a, b, c)
    f = separate(tensor)
    assert f.rank == 1
    assert np.linalg.norm(f.reconstruct() - tensor) <= 1e-10 * np.linalg.norm(tensor)
    for got, want in zip(f.terms[0], (a, b, c)):
        # each factor is the original up to scale
        cosine = abs(got @ want) / (np.linalg.norm(got) * np.linalg.norm(want))
        assert cosine == pytest.approx(1.0, abs=1e-9)


def test_unfoldings_of_a_separable_tensor_have_rank_one():
    tensor = _outer([1.0, 2.0], [3.0, -1.0, 0.5], [0.2, 0.4, 0.1, 0.3])
    f = lowrank(tensor)
    for sv in f.unfolding_singular_values:
        assert np.sum(sv > 1e-12 * sv[0]) == 1
    assert f.singular_values is None
    assert factor.is_separable(tensor)
    not_separable = tensor.copy()
    not_separable[0, 0, 0] += 1.0
    assert not factor.is_separable(not_separable)
    with pytest.raises(NotSeparableError, match="not separable"):
        separate(not_separable)


@pytest.mark.parametrize("terms", [2, 3])
def test_random_low_rank_3d_tensors_are_recovered(terms):
    rng = np.random.default_rng(terms)
    tensor = sum(
        _outer(rng.standard_normal(5), rng.standard_normal(4), rng.standard_normal(6))
        for _ in range(terms)
    )
    f = lowrank(tensor)
    assert f.rank == terms and f.method == "cp-als" and f.is_exact
    assert np.allclose(f.reconstruct(), tensor, atol=1e-12)
    assert rank(tensor) == terms


def test_3d_log_and_dog_ranks():
    log3 = kernels.laplacian_of_gaussian(1.0, ndim=3, truncate=3.0)
    impulse = np.zeros(log3.shape)
    impulse[tuple(n // 2 for n in log3.shape)] = 1
    assert np.allclose(
        log3, ndimage.gaussian_laplace(impulse, 1.0, mode="constant", truncate=3.0), atol=1e-15
    )
    f = lowrank(log3)
    assert f.rank == 3 and f.is_exact
    dog3 = kernels.difference_of_gaussians(1.0, ndim=3, truncate=3.0)
    assert lowrank(dog3).rank == 2


def test_3d_fixed_rank_and_fallback():
    rng = np.random.default_rng(0)
    tensor = rng.standard_normal((3, 3, 3))
    errors = [lowrank(tensor, rank=r).error for r in (1, 2, 3)]
    assert errors[0] > errors[1] > errors[2]
    f = lowrank(tensor)
    assert f.is_exact and f.rank <= 9  # a 3x3x3 tensor has CP rank at most 9 (slices)
    assert np.allclose(f.reconstruct(), tensor, atol=1e-12)


def test_4d_separable():
    tensor = _outer([1, 2], [1, -1], [3, 1, 2], [1, 0, -1])
    f = separate(tensor)
    assert f.method == "integer" and f.ndim == 4
    assert np.array_equal(f.reconstruct(), tensor)


# --------------------------------------------------------------------------------------------
# the result type


def test_factorization_is_immutable_and_costs_through_sepconv_cost():
    f = lowrank(kernels.gabor(theta=0.4, sigma=3.0))
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.error = 0.0
    with pytest.raises(ValueError, match="read-only"):
        f.terms[0][0][0] = 1.0
    direct, factored = f.cost()
    assert direct == cost.filtering(f.shape)
    assert factored == cost.filtering(f.shape, rank=2)
    direct, factored = f.cost((64, 48))
    assert factored.multiplications == 64 * 48 * 2 * sum(f.shape)
    data = json.loads(json.dumps(f.to_dict()))
    assert data["rank"] == 2 and len(data["terms"]) == 2
    assert "rank=2" in repr(f)


def test_from_terms():
    f = Factorization.from_terms([([1, 2, 1], [-1, 0, 1])])
    assert f.error == 0 and f.rank == 1 and f.method == "closed-form"
    assert np.array_equal(f.reconstruct(), kernels.sobel())
    g = Factorization.from_terms([([1, 2, 1], [-1, 0, 1])], kernel=np.ones((3, 3)))
    assert g.error == pytest.approx(np.linalg.norm(np.ones((3, 3)) - kernels.sobel()))
    with pytest.raises(ValueError, match="factor lengths"):
        Factorization.from_terms([([1, 2, 1], [1, 0])], kernel=np.ones((3, 3)))
    with pytest.raises(ValueError, match="same factor lengths"):
        Factorization.from_terms([([1, 2, 1], [1, 0, 1]), ([1, 2], [1, 0, 1])])
    with pytest.raises(ValueError, match="non-empty sequence"):
        Factorization.from_terms([])


def test_default_tol_depends_on_dtype_and_size():
    kernel = np.ones((3, 5))
    assert factor.default_tol(kernel) == pytest.approx(10 * 5 * EPS64 * np.sqrt(15))
    assert factor.default_tol(kernel.astype(np.float32)) == pytest.approx(
        10 * 5 * EPS32 * np.sqrt(15)
    )
    assert factor.default_tol(kernel.astype(np.int16)) == factor.default_tol(kernel)
    assert factor.default_tol(np.ones((3, 50))) > factor.default_tol(np.ones((3, 5)))


# --------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize(
    ("kernel", "error", "match"),
    [
        (np.zeros((0, 3)), ValueError, r"`kernel` must be a non-empty .* got shape \(0, 3\)"),
        ([], ValueError, "must be a non-empty array with at least one axis"),
        (np.float64(3.0), ValueError, "at least one axis, got the scalar 3.0"),
        (np.array([[1.0, np.nan]]), ValueError, r"must be finite, got nan at index \(0, 1\)"),
        (np.array([[1.0], [np.inf]]), ValueError, r"got inf at index \(1, 0\)"),
        (np.array([[1 + 2j, 0]]), TypeError, "must hold real numbers .* dtype complex128"),
        (np.array([[True, False]]), TypeError, "dtype bool"),
        (np.array([[object()]], dtype=object), TypeError, "must hold real numbers .* dtype object"),
        ([[1, 2], [3]], ValueError, "ragged"),
        ("sobel-x", TypeError, "got the string 'sobel-x' .*sepconv.kernels.parse"),
        (np.array(["a", "b"]), TypeError, "must hold real numbers"),
    ],
)
@pytest.mark.parametrize("function", [rank, separate, lowrank, factor.is_separable])
def test_exception(function, kernel, error, match):
    with pytest.raises(error, match=match):
        function(kernel)


def test_exception_arguments():
    sobel = kernels.sobel()
    with pytest.raises(ValueError, match=r"`rank` must be between 1 and 3"):
        lowrank(sobel, rank=4)
    with pytest.raises(ValueError, match=r"`rank` must be a positive integer, got 0"):
        lowrank(sobel, rank=0)
    with pytest.raises(TypeError, match=r"`rank` must be an integer, got the float 1.0"):
        lowrank(sobel, rank=1.0)
    with pytest.raises(ValueError, match=r"`tol` must be >= 0.0, got -1.0"):
        rank(sobel, tol=-1.0)
    with pytest.raises(ValueError, match=r"`tol` must be a finite number"):
        rank(sobel, tol=float("nan"))
    with pytest.raises(ValueError, match="not both"):
        rank(sobel, tol=1e-3, rtol=1e-3)
    with pytest.raises(ValueError, match=r"`rank` must be between 1 and 1"):
        lowrank([1, 2, 3], rank=2)


def test_inputs_are_not_modified():
    kernel = np.random.default_rng(0).standard_normal((4, 4))
    copy = kernel.copy()
    lowrank(kernel)
    rank(kernel)
    lowrank(kernel, rank=2)
    assert np.array_equal(kernel, copy)


def test_text_is_parsed_by_the_caller():
    assert separate(kernels.parse("sobel-x")).terms[0][0].tolist() == [1, 2, 1]
    assert rank(kernels.parse("1 0 0; 0 1 0; 0 0 1")) == 3


def test_the_kernel_check_is_shared_with_filtering():
    """One checker, one message, whichever function receives the kernel."""
    import sepconv

    image = np.zeros((8, 8), np.float32)
    for bad in ([[1.0, np.nan]], np.zeros((0, 3)), np.ones((3, 3), complex)):
        with pytest.raises((ValueError, TypeError)) as from_factor:
            lowrank(bad)
        with pytest.raises((ValueError, TypeError)) as from_filtering:
            sepconv.correlate(image, bad)
        assert str(from_factor.value) == str(from_filtering.value)
        assert type(from_factor.value) is type(from_filtering.value)


def test_max_rank_caps_the_search():
    kernel = np.random.default_rng(4).standard_normal((5, 5))
    capped = lowrank(kernel, max_rank=2)
    assert capped.rank == 2 and not capped.is_exact
    assert capped.error == pytest.approx(lowrank(kernel, rank=2).error)
    assert lowrank(kernels.sobel(), max_rank=2).rank == 1  # fewer terms suffice
    tensor = np.random.default_rng(5).standard_normal((4, 4, 4))
    capped = lowrank(tensor, max_rank=2)
    assert capped.rank == 2 and not capped.is_exact and capped.method == "cp-als"
    with pytest.raises(ValueError, match="`max_rank` must be a positive integer"):
        lowrank(kernel, max_rank=0)


def test_4d_low_rank_and_budget_fallback():
    rng = np.random.default_rng(6)
    tensor = sum(_outer(*(rng.standard_normal(3) for _ in range(4))) for _ in range(2))
    f = lowrank(tensor)
    assert f.rank == 2 and f.is_exact
    capped = lowrank(rng.standard_normal((3, 3, 3, 3)), max_rank=3)
    assert capped.rank == 3 and not capped.is_exact


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(-20, 20), min_size=1, max_size=7),
    st.lists(st.integers(-20, 20), min_size=1, max_size=7),
)
def test_integer_outer_products_give_primitive_integer_factors(p, q):
    p, q = np.array(p), np.array(q)
    if not p.any() or not q.any():
        return  # the zero kernel has no integer factorization to speak of
    kernel = np.outer(p, q)
    column, row = separate(kernel).terms[0]
    assert np.array_equal(column, np.round(column)) and np.array_equal(row, np.round(row))
    assert np.array_equal(np.outer(column, row), kernel)
    assert np.gcd.reduce(np.abs(row.astype(np.int64))) == 1  # the scale sits on the column
    content = np.gcd.reduce(np.abs(kernel.ravel()))
    assert np.gcd.reduce(np.abs(column.astype(np.int64))) == content


def test_noise_above_float32_tolerance_makes_non_separable():
    rng = np.random.default_rng(11)
    for _ in range(20):
        u, v = rng.standard_normal(5), rng.standard_normal(4)
        kernel = np.outer(u, v).astype(np.float32)
        assert factor.is_separable(kernel)
        noise = rng.standard_normal(kernel.shape)
        pu = np.eye(5) - np.outer(u, u) / (u @ u)
        pv = np.eye(4) - np.outer(v, v) / (v @ v)
        noise = pu @ noise @ pv  # off the rank-1 manifold at u v^T
        tol = factor.default_tol(kernel)
        noisy = (kernel + noise * (3 * tol / np.linalg.norm(noise))).astype(np.float32)
        assert not factor.is_separable(noisy) and rank(noisy) >= 2
        assert lowrank(noisy, rank=1).error > 2 * tol
        assert factor.is_separable(
            (kernel + noise * (0.2 * tol / np.linalg.norm(noise))).astype(np.float32)
        )


@pytest.mark.parametrize("magnitude", [1e-300, 1e-40, 1e40, 1e300])
def test_extreme_magnitudes(magnitude):
    """Kernels are scaled by a power of two internally: no overflow, same relative answers."""
    rng = np.random.default_rng(8)
    kernel = np.outer(rng.standard_normal(4), rng.standard_normal(3))
    f = separate(kernel * magnitude)
    assert f.rank == 1 and np.isfinite(f.error) and np.isfinite(f.tol)
    assert np.allclose(f.reconstruct() / magnitude, kernel, rtol=1e-12, atol=0)
    assert factor.default_tol(kernel * magnitude) == pytest.approx(
        factor.default_tol(kernel) * magnitude, rel=1e-12
    )
    noisy = rng.standard_normal((4, 4)) * magnitude
    assert rank(noisy) == 4
    two = lowrank(noisy, rank=2)
    s = np.linalg.svd(noisy / magnitude, compute_uv=False)
    assert two.error / magnitude == pytest.approx(np.sqrt(np.sum(s[2:] ** 2)), rel=1e-10)
    assert np.allclose(two.singular_values / magnitude, s, rtol=1e-12)
    assert (
        lowrank(noisy, tol=1e-3 * magnitude * s[0]).rank
        == lowrank(noisy / magnitude, tol=1e-3 * s[0]).rank
    )


# --------------------------------------------------------------------------------------------
# numerical noise: reported as 0 so that no result depends on the BLAS kernel or the CPU


@pytest.mark.parametrize("scale", [0.1, 1.0, 3e7, 2.0**-120])
def test_noise_is_reported_as_zero(scale):
    kernel = scale * np.outer([1.0, 2.0, 1.0], [-1.0, 0.0, 1.0]) / 3.0  # not an integer path
    f = lowrank(kernel, rank=3)
    assert f.noise == pytest.approx(factor.default_tol(kernel), rel=1e-12)
    assert f.singular_values[1:].tolist() == [0.0, 0.0]
    assert f.error == 0.0 and f.relative_error == 0.0
    assert all(not np.any(f_) for term in f.terms[1:] for f_ in term)  # noise terms: zeros
    assert f.terms[0][1][1] == 0.0  # the middle tap of the derivative, not 1e-17
    assert "error=0," in repr(f)
    assert f.to_dict()["singular_values"][1:] == [0.0, 0.0]
    assert lowrank(kernel, tol=0.0).rank == 1  # tol below the floor acts as the floor
    assert rank(kernel, tol=0.0) == 1 and separate(kernel, tol=0.0).is_exact


def test_noise_floor_keeps_values_above_it():
    kernel = np.outer([1.0, 2.0, 1.0], [1.0, 2.0, 1.0]) + np.diag([0.0, 1e-9, 0.0])
    f = lowrank(kernel)
    assert f.rank == 2 and f.singular_values[1] > 0 and f.singular_values[2] == 0.0
    three = kernels.gaussian(1.0, ndim=3, truncate=2.0)
    g = lowrank(three)
    for sv in g.unfolding_singular_values:
        assert sv[0] > 0 and not np.any(sv[1:])


def test_to_dict_rounds_to_significant_digits():
    f = lowrank(np.array([[1.0, 2.0], [3.0, 4.0]]))
    d = f.to_dict()
    assert d["singular_values"] == [float(f"{s:.10g}") for s in f.singular_values]
    assert f.to_dict(digits=None)["singular_values"] == f.singular_values.tolist()
    assert d["noise"] == float(f"{f.noise:.10g}")


def test_factor_does_not_import_kernels(run_python):
    """Dependencies run one way, kernels -> factor: factor reads no text."""
    result = run_python(code="import sys, sepconv.factor; print('sepconv.kernels' in sys.modules)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


@settings(max_examples=60, deadline=None)
@given(_vectors(1, 9), _vectors(1, 9))
def test_noise_of_separable_kernels_is_zero(u, v):
    """Whatever the sizes and the magnitude, what rounding leaves of an outer product is 0."""
    kernel = np.outer(u, v)
    full = lowrank(kernel, rank=min(kernel.shape))
    assert full.singular_values[0] > 0 and not np.any(full.singular_values[1:])
    assert full.error == 0.0 and full.relative_error == 0.0
    assert all(not np.any(f) for term in full.terms[1:] for f in term)
    assert rank(kernel, tol=0.0) == 1


@settings(max_examples=60, deadline=None)
@given(_matrices())
def test_noise_rule_keeps_every_value_above_the_floor(kernel):
    f = lowrank(kernel, rank=min(kernel.shape))
    s = np.linalg.svd(kernel, compute_uv=False)
    tails = np.sqrt(np.cumsum((s**2)[::-1])[::-1])
    kept = tails > f.noise  # values whose tail stands above the floor are reported as computed
    assert np.allclose(f.singular_values[kept], s[kept], rtol=1e-12, atol=0)
    assert not np.any(f.singular_values[~kept])
