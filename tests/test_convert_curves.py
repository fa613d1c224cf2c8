"""Rank-allocation curves after both factors are refitted (sepconv.convert._curves)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from sepconv.convert import _als, _budget, _curves, _factor, _fit, _whiten, convert
from sepconv.convert._kinds import _limit, _subset


def _smooth(n, c, size, seed):
    """Correlated inputs (blurred noise), where whitening and the refit matter."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, size + 4, size + 4, generator=g, dtype=torch.float64)
    box = torch.ones(c, 1, 3, 3, dtype=torch.float64) / 9
    return F.conv2d(F.conv2d(x, box, groups=c), box, groups=c)


def _reference(conv, kind, x, full=True):
    model = nn.Sequential(conv).eval()
    moments = _whiten.moments(model, [("0", conv, kind)], [x])
    layer = _factor(conv, kind, _limit(conv, kind), None, moments["0"])[0]
    data = _fit.Reference(
        model, ["0"], [x], curves={"0": layer}, full={"0": (conv, kind)} if full else None
    )
    return data, layer


@settings(max_examples=12, deadline=None)
@given(
    kind=st.sampled_from(["depthwise", "spatial"]),
    c_in=st.integers(1, 4),
    c_out=st.integers(1, 6),
    bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_curve_after_refit_is_never_above_the_second_factor_curve(kind, c_in, c_out, bias, seed):
    torch.manual_seed(seed)
    conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=bias).double()
    x = _smooth(6, c_in, 8, seed)
    limit = _limit(conv, kind)
    ranks = list(range(1, limit + 1))
    subset = _subset(conv, kind, limit)
    refitted, layer = _reference(conv, kind, x)
    second, _ = _reference(conv, kind, x, full=False)
    after = refitted.curve("0", layer, ranks, subset)
    before = second.curve("0", layer, ranks, subset)
    # errors from the normal equations carry a floor near sqrt(machine epsilon)
    assert all(a <= b + 1e-6 for a, b in zip(after, before)), (after, before)
    assert after[-1] < 1e-6  # full rank: exact


@pytest.mark.parametrize("kind", ["depthwise", "spatial"])
def test_curve_error_is_the_output_error_of_the_refitted_layer(kind):
    # the error of each rank, from the normal equations, equals the error of the layer built
    # from the alternation's factors, run by torch on the sampled positions
    torch.manual_seed(3)
    conv = nn.Conv2d(3, 5, 3, padding=1, bias=True).double()
    x = _smooth(4, 3, 9, seed=1)
    data, layer = _reference(conv, kind, x)
    normal = data.full_normals["0"]
    first, second = _curves.factors(layer, kind, conv)
    index, want = data.samples["0"][0]
    for rank in (1, 2, 4):
        a, b = _curves.truncate(first, second, kind, rank)
        solve = _als.depthwise if kind == "depthwise" else _als.spatial
        a, b, bias = solve(normal.gram, normal.cross, a, b, conv.bias.detach().numpy(), rounds=1)
        (error,) = _curves.errors(normal, layer, conv, kind, [rank])
        if kind == "depthwise":
            weight = np.einsum("ocm,cmt->oct", b, a).reshape(conv.weight.shape)
        else:
            weight = np.einsum("okj,kci->ocij", b, a.reshape(rank, 3, 3))
        y = F.conv2d(x, torch.from_numpy(weight), torch.from_numpy(bias), padding=1)
        got = y.movedim(1, -1).reshape(-1, 5)[index]
        direct = float(torch.linalg.vector_norm(got - want) / torch.linalg.vector_norm(want))
        assert error == pytest.approx(direct, rel=1e-6, abs=1e-12)


def test_budget_allocates_by_the_refitted_errors_and_the_switch_turns_them_off(monkeypatch):
    torch.manual_seed(4)
    model = nn.Sequential(
        nn.Conv2d(3, 12, 3, padding=1), nn.ReLU(), nn.Conv2d(12, 12, 3, padding=1)
    ).double()
    calibration = _smooth(32, 3, 10, seed=5)
    allocate = _budget.allocate
    curves = {}

    def spy(layer_curves, budget):
        curves[_curves.AFTER_REFIT] = {
            (c.name, r): e for c in layer_curves for r, e in zip(c.ranks, c.errors)
        }
        return allocate(layer_curves, budget)

    monkeypatch.setattr(_budget, "allocate", spy)
    for switch in (True, False):
        monkeypatch.setattr(_curves, "AFTER_REFIT", switch)
        _, report = convert(model, method="spatial", budget=0.4, calibration=calibration)
        assert report.mult_adds_after <= 0.4 * report.mult_adds_before
    assert curves[True].keys() == curves[False].keys()
    assert all(curves[True][key] <= curves[False][key] + 1e-6 for key in curves[True])
    assert any(curves[True][key] < 0.99 * curves[False][key] for key in curves[True])
