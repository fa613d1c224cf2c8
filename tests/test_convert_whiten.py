"""Whitened (input-moment-weighted) first factors of sepconv.convert."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from sepconv.convert import (
    _whiten,
    convert,
    depthwise_factors,
    linear_factors,
    spatial_factors,
    to_separable,
)


def _spd(n, rng, condition=1e3):
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (q * np.geomspace(1.0, 1.0 / condition, n)) @ q.T


def _depthwise_weight(dw, pw, shape):
    c_out, c_in = shape[:2]
    m = dw.shape[0] // c_in
    return np.einsum("ocm,cmt->oct", pw.reshape(c_out, c_in, m), dw.reshape(c_in, m, -1)).reshape(
        shape
    )


def _spatial_weight(col, row):
    return np.einsum("kci,okj->ocij", col[..., 0], row[:, :, 0])


@settings(max_examples=25, deadline=None)
@given(
    c_out=st.integers(1, 6),
    c_in=st.integers(1, 4),
    kernel=st.sampled_from([(3,), (3, 3), (2, 3), (3, 1, 2)]),
    seed=st.integers(0, 2**16),
)
def test_whitened_depthwise_factors_are_exact_at_full_rank(c_out, c_in, kernel, seed):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((c_out, c_in, *kernel))
    taps = int(np.prod(kernel))
    s = np.stack([_spd(taps, rng) for _ in range(c_in)])
    dw, pw, err = depthwise_factors(w, rank=min(c_out, taps), covariance=s)
    np.testing.assert_allclose(_depthwise_weight(dw, pw, w.shape), w, atol=1e-9)
    assert err < 1e-9


@settings(max_examples=25, deadline=None)
@given(
    c_out=st.integers(1, 5),
    c_in=st.integers(1, 4),
    kh=st.integers(2, 4),
    kw=st.integers(2, 4),
    seed=st.integers(0, 2**16),
)
def test_whitened_spatial_factors_are_exact_at_full_rank(c_out, c_in, kh, kw, seed):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((c_out, c_in, kh, kw))
    s = _spd(c_in * kh, rng)
    col, row, err = spatial_factors(w, rank=min(c_in * kh, c_out * kw), covariance=s)
    np.testing.assert_allclose(_spatial_weight(col, row), w, atol=1e-9)
    assert err < 1e-9


def test_identity_covariance_gives_the_closed_form():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((8, 3, 3, 3))
    for rank in (1, 2, 5):
        dw0, pw0, e0 = depthwise_factors(w, rank=rank)
        dw1, pw1, e1 = depthwise_factors(w, rank=rank, covariance=np.stack([np.eye(9)] * 3))
        np.testing.assert_allclose(
            _depthwise_weight(dw1, pw1, w.shape), _depthwise_weight(dw0, pw0, w.shape), atol=1e-12
        )
        # balanced like the closed form: each term's two factors keep their norms
        np.testing.assert_allclose(np.abs(dw1), np.abs(dw0), atol=1e-12)
        assert e1 == pytest.approx(e0, rel=1e-12)
    for rank in (1, 4, 9):
        col0, row0, e0 = spatial_factors(w, rank=rank)
        col1, row1, e1 = spatial_factors(w, rank=rank, covariance=np.eye(9))
        np.testing.assert_allclose(
            _spatial_weight(col1, row1), _spatial_weight(col0, row0), atol=1e-12
        )
        np.testing.assert_allclose(np.abs(col1), np.abs(col0), atol=1e-12)
        assert e1 == pytest.approx(e0, rel=1e-12)
    m = rng.standard_normal((7, 5))
    f0, s0, e0 = linear_factors(m, 3)
    f1, s1, e1 = linear_factors(m, 3, covariance=np.eye(5))
    np.testing.assert_allclose(s1 @ f1, s0 @ f0, atol=1e-12)
    assert e1 == pytest.approx(e0, rel=1e-12)


def _smooth(n, c, size, seed, dims=2):
    """Inputs with strongly correlated neighbouring pixels (a blurred noise image)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, *(size,) * dims, generator=g, dtype=torch.float64)
    box = torch.ones(c, 1, *(5,) * dims, dtype=torch.float64) / 5**dims
    conv = F.conv2d if dims == 2 else F.conv1d
    scale = torch.linspace(0.2, 3, c, dtype=torch.float64).reshape(1, c, *(1,) * dims)
    return conv(x, box, padding=2, groups=c) * scale


@pytest.mark.parametrize("method", ["depthwise", "spatial"])
def test_whitened_rank_r_output_error_is_below_the_closed_form(method):
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 12, 3, padding=1, bias=False).double()
    x = _smooth(64, 4, 12, seed=1)
    moment = _whiten.moments(nn.Sequential(conv), [("0", conv, method)], [x], rows=10**6)["0"]
    y = conv(x).detach()
    for rank in (1, 2, 3):
        errors = []
        for covariance in (None, moment):
            layer, _ = to_separable(conv, method, rank, covariance=covariance)
            with torch.no_grad():
                diff = torch.linalg.vector_norm(layer(x) - y)
            errors.append(float(diff / torch.linalg.vector_norm(y)))
        assert errors[1] < 0.9 * errors[0], (rank, errors)


@settings(max_examples=20, deadline=None)
@given(c_in=st.integers(2, 6), c_out=st.integers(2, 6), seed=st.integers(0, 2**16))
def test_whitened_linear_factors_are_the_best_rank_r_map_on_the_data(c_in, c_out, seed):
    # Reduced-rank regression: no rank-r map reproduces W x better on these x.
    rng = np.random.default_rng(seed)
    # correlated inputs, conditioned well above the eigenvalue floor (_whiten.FLOOR, 1e-6 of
    # the largest), below which the weighting deliberately departs from the data's moment
    x = rng.standard_normal((300, c_in)) @ _spd(c_in, rng, condition=30)
    w = rng.standard_normal((c_out, c_in))
    rank = min(c_in, c_out) - 1
    if rank < 1:
        return
    first, second, err = linear_factors(w, rank, covariance=x.T @ x / len(x))
    y = x @ w.T
    best = np.linalg.norm(y - x @ (second @ first).T)
    # closed form: the exact projection of y = x W^T onto its top right singular vectors
    u, s, vt = np.linalg.svd(y, full_matrices=False)
    optimum = np.sqrt(np.sum(s[rank:] ** 2))
    assert best == pytest.approx(optimum, rel=1e-6, abs=1e-9)
    assert err == pytest.approx(optimum / np.linalg.norm(y), rel=1e-6, abs=1e-9)
    plain_first, plain_second, _ = linear_factors(w, rank)
    assert best <= np.linalg.norm(y - x @ (plain_second @ plain_first).T) * (1 + 1e-9)


@pytest.mark.parametrize("bias", [False, True])
def test_moments_equal_the_patch_second_moments(bias):
    # a layer fitted with a bias is weighted by the covariance of its patches
    torch.manual_seed(1)
    conv = nn.Conv2d(
        3, 5, (3, 2), stride=2, padding=1, dilation=(1, 2), padding_mode="reflect", bias=bias
    )
    x = torch.randn(4, 3, 9, 10)
    model = nn.Sequential(conv)
    # the patches by unfold, after the reflect padding
    padded = F.pad(x, (1, 1, 1, 1), mode="reflect").double()
    patches = F.unfold(padded, (3, 2), dilation=(1, 2), stride=2)  # (N, C*kh*kw, L)
    p = patches.movedim(1, -1).reshape(-1, 3, 3, 2).numpy() + 2.0  # a mean to remove
    x = x + 2.0
    dw = _whiten.moments(model, [("0", conv, "depthwise")], [x], rows=10**6)["0"]
    sp = _whiten.moments(model, [("0", conv, "spatial")], [x], rows=10**6)["0"]
    flat = p.reshape(len(p), 3, 6)
    if bias:
        flat = flat - flat.mean(0)
    np.testing.assert_allclose(dw, np.einsum("pct,pcs->cts", flat, flat) / len(p), atol=1e-5)
    cols = p.transpose(0, 3, 1, 2)  # (P, kw, C*kh): the moment averages the kw taps
    if bias:
        cols = cols - cols.mean(0)
    cols = cols.reshape(-1, 9)
    np.testing.assert_allclose(sp, cols.T @ cols / len(cols), atol=1e-5)


def test_convert_whitens_by_default_and_is_never_worse_than_closed_form():
    torch.manual_seed(2)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 8, 1),
    ).double()
    calibration = _smooth(64, 3, 12, seed=3)
    held_out = _smooth(32, 3, 12, seed=4)
    for method in ("depthwise", "spatial"):
        _, closed = convert(
            model, method=method, budget=0.4, input_size=(1, 3, 12, 12), example_input=held_out
        )
        _, plain = convert(model, method=method, budget=0.4, calibration=calibration, whiten=False)
        _, report = convert(
            model,
            method=method,
            budget=0.4,
            calibration=calibration,
            example_input=held_out,
            linear=True,
        )
        assert not plain.whitened
        assert report.data_aware
        assert report.calibration_output_error <= report.closed_form_calibration_error
        assert report.to_dict()["whitened"] == report.whitened
        assert ("whitened first factors" in str(report)) == report.whitened
        for row in report.replaced:  # the weight error of the factors kept
            assert 0 <= row.weight_error < 1


def test_whitened_full_rank_convert_is_exact():
    torch.manual_seed(5)
    model = nn.Sequential(
        nn.Conv2d(2, 6, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(6, 4, 1),
        nn.Flatten(),
        nn.Linear(4 * 36, 3),
    ).double()
    calibration = _smooth(16, 2, 6, seed=6)
    for method in ("depthwise", "spatial"):
        converted, report = convert(
            model, method=method, rank=10_000, min_speedup=0, linear=True, calibration=calibration
        )
        x = torch.randn(3, 2, 6, 6, dtype=torch.float64)
        torch.testing.assert_close(converted(x), model(x), rtol=1e-8, atol=1e-8)


def test_exception():
    w = np.zeros((4, 2, 3, 3))
    with pytest.raises(ValueError, match=r"`covariance` must have shape \(2, 9, 9\)"):
        depthwise_factors(w, rank=1, covariance=np.eye(9))
    with pytest.raises(ValueError, match=r"`covariance` must have shape \(6, 6\)"):
        spatial_factors(w, rank=1, covariance=np.eye(9))
    with pytest.raises(ValueError, match="`covariance` must be finite"):
        spatial_factors(w, rank=1, covariance=np.full((6, 6), np.nan))
    with pytest.raises(ValueError, match=r"shape \(4, 4\), got shape \(3, 3\)"):
        linear_factors(np.ones((2, 4)), 1, covariance=np.eye(3))
    with pytest.raises(ValueError, match="`covariance` is supported by methods"):
        to_separable(nn.Conv2d(2, 4, 3), "depthwise+spatial", 1, covariance=np.eye(6))
    with pytest.raises(TypeError, match="`whiten` must be True or False"):
        convert(nn.Sequential(nn.Conv2d(2, 4, 3)), rank=1, whiten="yes")
    # dead inputs: a zero moment weighs nothing and leaves the closed form
    dw0, pw0, _ = depthwise_factors(np.ones((4, 2, 3, 3)), rank=1)
    dw1, pw1, _ = depthwise_factors(np.ones((4, 2, 3, 3)), rank=1, covariance=np.zeros((2, 9, 9)))
    np.testing.assert_allclose(
        _depthwise_weight(dw1, pw1, (4, 2, 3, 3)), _depthwise_weight(dw0, pw0, (4, 2, 3, 3))
    )
    w_in = np.arange(8.0).reshape(2, 4)
    s = np.eye(4)
    linear_factors(w_in, 1, covariance=s)
    assert np.array_equal(w_in, np.arange(8.0).reshape(2, 4)) and np.array_equal(s, np.eye(4))


def _objective(features, y, weight, bias):
    return float(np.linalg.norm(y - features @ weight.reshape(len(weight), -1).T - bias))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), m=st.integers(1, 3), rounds=st.integers(1, 4))
def test_alternating_least_squares_never_increases_the_error(seed, m, rounds):
    from sepconv.convert import _als

    rng = np.random.default_rng(seed)
    c_in, taps, c_out, kh, kw = 3, 6, 5, 3, 2
    x = rng.standard_normal((400, c_in * taps)) @ rng.standard_normal((c_in * taps,) * 2)
    y = x @ rng.standard_normal((c_in * taps, c_out)) + rng.standard_normal(c_out)
    ext = np.hstack([x, np.ones((len(x), 1))])
    gram, cross = ext.T @ ext, ext.T @ y
    # depthwise: y ~ b + sum P[:, c, m] (D[c, m] . x_c)
    kernels = rng.standard_normal((c_in, m, taps))
    pointwise = rng.standard_normal((c_out, c_in, m))
    bias = np.zeros(c_out)

    def dw_error(d, p, b):
        w = np.einsum("ocm,cmt->oct", p, d)
        return _objective(x, y, w, b)

    before = dw_error(kernels, pointwise, bias)
    one = _als.depthwise(gram, cross, kernels, pointwise, bias, rounds=1)
    more = _als.depthwise(gram, cross, kernels, pointwise, bias, rounds=rounds + 1)
    assert dw_error(*more) <= dw_error(*one) * (1 + 1e-9) <= before
    # spatial: taps = kh * kw with columns over (c, i) and rows over (o, k, j)
    k = m + 1
    columns = rng.standard_normal((k, c_in * kh))
    rows = rng.standard_normal((c_out, k, kw))

    def sp_error(v, h, b):
        w = np.einsum("okj,ka->oaj", h, v)  # (C_out, C_in*kh, kw): features ordered (c, i, j)
        return _objective(x, y, w, b)

    before = sp_error(columns, rows, bias)
    one = _als.spatial(gram, cross, columns, rows, bias, rounds=1)
    more = _als.spatial(gram, cross, columns, rows, bias, rounds=rounds + 1)
    assert sp_error(*more) <= sp_error(*one) * (1 + 1e-9) <= before
