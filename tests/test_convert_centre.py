"""Layers that feed a batch norm are fitted with a free bias, folded into the norm."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from sepconv.convert import _centre, convert, load, rebuild, recalibrate_batchnorm, save


def _inputs(n, c, size, seed, offset=3.0):
    """Blurred noise with a large mean (as after a ReLU)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, size + 4, size + 4, generator=g, dtype=torch.float64)
    box = torch.ones(c, 1, 3, 3, dtype=torch.float64) / 9
    return F.conv2d(F.conv2d(x, box, groups=c), box, groups=c) + offset


def _last(layer):
    return layer.pointwise if hasattr(layer, "pointwise") else layer.row


def _model(seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(4, 16, 3, padding=1, bias=False),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1, bias=False),
        nn.ReLU(),  # not straight into a norm: fitted without a bias
        nn.BatchNorm2d(16),
        nn.Conv2d(16, 8, 3, padding=1),  # has its own bias
    ).double()
    with torch.no_grad():  # stored statistics that are not the defaults
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                m.weight.uniform_(0.5, 1.5)
    return model.eval()


def test_feeding_finds_the_norms_that_take_the_layer_output_itself():
    model = _model()
    layers = [(n, model.get_submodule(n)) for n in ("0", "3", "6")]
    found = _centre.feeding(model, layers, _inputs(2, 4, 8, 0))
    assert found == {"0": model[1]}  # "3" feeds a ReLU; "6" has a bias
    model[1].train()
    assert _centre.feeding(model, layers, _inputs(2, 4, 8, 0)) == {}  # batch statistics


def test_fold_leaves_the_norm_output_unchanged():
    torch.manual_seed(1)
    conv = nn.Conv2d(3, 6, 3, bias=True).double()
    norm = nn.BatchNorm2d(6).double().eval()
    with torch.no_grad():
        conv.bias.normal_()
        norm.running_mean.normal_()
    x = torch.randn(2, 3, 7, 7, dtype=torch.float64)
    before = norm(conv(x))
    _centre.fold(conv, norm)
    assert conv.bias is None
    torch.testing.assert_close(norm(conv(x)), before, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method", ["depthwise", "spatial"])
def test_centred_fit_keeps_the_structure_of_the_converted_model(method, tmp_path):
    model = _model()
    calibration = _inputs(48, 4, 10, seed=2)
    converted, report = convert(model, method=method, rank=2, calibration=calibration)
    # no bias left where the original had none: rebuild/save/load see the usual structure
    assert [r.name for r in report.replaced] == ["0", "3", "6"]
    assert _last(converted[0]).bias is None and _last(converted[6]).bias is not None
    assert converted.state_dict().keys() == rebuild(model, report).state_dict().keys()
    save(converted, report, tmp_path / "m.pt")
    x = _inputs(2, 4, 10, seed=3)
    torch.testing.assert_close(load(tmp_path / "m.pt", model)(x), converted(x))
    recalibrate_batchnorm(converted, [calibration])
    assert torch.isfinite(converted(x)).all()


def _linear_before_norm(seed, offset):
    """``Linear(8, 6) -> BatchNorm1d(6)`` (float64, eval mode) and 200 correlated calibration
    rows with mean ``offset``, both drawn from ``seed``."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(8, 6, bias=False), nn.BatchNorm1d(6)).double().eval()
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(8, 8, generator=g, dtype=torch.float64)
    return model, torch.randn(200, 8, generator=g, dtype=torch.float64) @ mix + offset


def _convert_without_and_with(model, calibration, rank, switch):
    """``{False: (converted, report), True: ...}``: the data-aware linear conversion at
    ``rank`` with ``_centre.<switch>`` off, then on; the norm's statistics are kept as they are
    (``recalibrate_bn=False``), so the fit is to the norm as it is."""
    results = {}
    for on in (False, True):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(_centre, switch, on)
            results[on] = convert(
                model,
                linear=True,
                rank=rank,
                min_speedup=0,
                calibration=calibration,
                recalibrate_bn=False,
            )
    return results


@settings(max_examples=10, deadline=None)
@given(rank=st.integers(1, 5), offset=st.floats(0.0, 5.0), seed=st.integers(0, 2**16))
def test_centred_linear_fit_is_the_best_rank_r_map_before_a_norm(rank, offset, seed):
    # for a linear layer, the covariance-weighted truncation with a free bias is the global
    # optimum of the error the norm sees: never above the fit without the bias
    model, calibration = _linear_before_norm(seed, offset)
    results = _convert_without_and_with(model, calibration, rank, "CENTRE")
    errors = {c: r.calibration_output_error for c, (_, r) in results.items()}
    assert errors[True] <= errors[False] * (1 + 1e-6) + 1e-9


def test_scale_and_unscale_leave_the_norm_output_and_restore_the_layer():
    torch.manual_seed(2)
    conv = nn.Conv2d(3, 6, 3, bias=False).double()
    norm = nn.BatchNorm2d(6).double().eval()
    with torch.no_grad():
        norm.running_mean.normal_()
        norm.running_var.uniform_(0.1, 4)
        norm.weight.uniform_(-2, 2)
    original = (conv.weight.clone(), norm.running_mean.clone(), norm.running_var.clone())
    x = torch.randn(2, 3, 7, 7, dtype=torch.float64)
    before = norm(conv(x))
    (d,) = _centre.scales({"c": norm}).values()
    torch.testing.assert_close(d, norm.weight.abs() / torch.sqrt(norm.running_var + norm.eps))
    var = _centre.scale(conv, norm, d)
    torch.testing.assert_close(norm(conv(x)), before, rtol=1e-12, atol=1e-12)
    _centre.unscale(conv, norm, d, var)
    for got, want in zip((conv.weight, norm.running_mean, norm.running_var), original):
        torch.testing.assert_close(got, want, rtol=1e-14, atol=1e-14)


@settings(max_examples=10, deadline=None)
@given(rank=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_weighted_linear_fit_is_the_best_rank_r_map_through_the_norm(rank, seed):
    # the norm's output is the model's: weighting the channels by the norm's scale gives the
    # best rank-r map for it (covariance-whitened truncation of the scaled weight)
    model, calibration = _linear_before_norm(seed, offset=1.0)
    with torch.no_grad():
        model[1].running_var.copy_(torch.logspace(-2, 2, 6, dtype=torch.float64))
    results = _convert_without_and_with(model, calibration, rank, "WEIGHT")
    errors = {w: r.calibration_output_error for w, (_, r) in results.items()}
    assert errors[True] <= errors[False] * (1 + 1e-6) + 1e-9
    converted, report = results[True]
    # the norm's statistics are the original ones again, up to the folded bias
    torch.testing.assert_close(converted[1].running_var, model[1].running_var)
    low = converted[0]
    weight = (low[1].weight @ low[0].weight).detach()
    w0 = model[0].weight.detach()
    want = torch.linalg.norm(weight - w0) / torch.linalg.norm(w0)
    assert report.layers[0].weight_error == pytest.approx(float(want), rel=1e-9, abs=1e-12)
