"""Layers kept whole after converted ones: refitted to the converted model's inputs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sepconv.convert import _whole, convert, rebuild


def _inputs(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 12, 12, generator=g, dtype=torch.float64)
    box = torch.ones(3, 1, 3, 3, dtype=torch.float64) / 9
    return F.conv2d(x, box, groups=3)


def _model():
    torch.manual_seed(0)
    return (
        nn.Sequential(
            nn.Conv2d(3, 8, 1),  # 1x1, before anything converted: left alone
            nn.ReLU(),
            nn.Conv2d(8, 16, 3, padding=1),  # converted
            nn.ReLU(),
            nn.Conv2d(16, 8, 1),  # 1x1 after it: refitted
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(8 * 10 * 10, 5),  # the head: refitted
        )
        .double()
        .eval()
    )


@pytest.mark.parametrize("method", ["depthwise", "spatial"])
def test_layers_kept_whole_after_a_converted_one_are_refitted(method, monkeypatch):
    model = _model()
    calibration = _inputs(64, seed=1)
    results = {}
    for refit in (False, True):
        monkeypatch.setattr(_whole, "REFIT", refit)
        results[refit] = convert(model, method=method, rank=2, calibration=calibration)
    converted, report = results[True]
    assert report.refitted == ("4", "7")
    assert results[False][1].refitted == ()
    assert "kept whole, weights refitted" in str(report) and report.to_dict()["refitted"] == [
        "4",
        "7",
    ]
    # the layer before the converted one sees the same inputs: untouched, bit for bit
    assert torch.equal(converted[0].weight, model[0].weight)
    assert not torch.equal(converted[7].weight, model[7].weight)
    assert torch.equal(results[False][0][7].weight, model[7].weight)
    # the head is the output: least squares on every calibration sample cannot do worse
    before = results[False][1].calibration_output_error
    assert report.calibration_output_error <= before * (1 + 1e-9)
    assert report.calibration_output_error < 0.99 * before
    assert converted.state_dict().keys() == rebuild(model, report).state_dict().keys()


def test_is_whole_takes_plain_layers_only():
    assert _whole.is_whole(nn.Conv2d(3, 4, 3)) and _whole.is_whole(nn.Linear(3, 4))
    assert not _whole.is_whole(nn.Conv2d(4, 4, 3, groups=2))
    assert not _whole.is_whole(type("Padded", (nn.Conv2d,), {})(3, 4, 3))
    assert not _whole.is_whole(nn.Linear(_whole.WIDTH + 1, 2))


def _normed(seed=0):
    torch.manual_seed(seed)
    model = (
        nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1),  # converted
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(16 * 10 * 10, 5),  # the head: refitted
        )
        .double()
        .eval()
    )
    with torch.no_grad():  # statistics of its own, so that the norm is not the identity
        model[1].running_mean.uniform_(-0.5, 0.5)
        model[1].running_var.uniform_(0.5, 2.0)
    return model


def _error(model, reference, x):
    with torch.no_grad():
        want = reference(x)
        return float(torch.linalg.vector_norm(model(x) - want) / torch.linalg.vector_norm(want))


def test_the_head_is_refitted_to_re_estimated_batch_norm_statistics():
    """By default the conversion re-estimates the norms' statistics on the calibration data
    before it refits the head: re-estimating them again afterwards changes nothing, and on
    other inputs of the same kind it does not undo the fit. Refitted to the original
    statistics instead (``recalibrate_bn=False``), the head loses its fit when they are
    re-estimated, and ``recalibrate_batchnorm`` says so."""
    import warnings

    from sepconv.convert import recalibrate_batchnorm

    model = _normed()
    calibration, other, held_out = _inputs(64, seed=1), _inputs(64, seed=2), _inputs(64, seed=3)
    converted, report = convert(model, method="spatial", rank=1, calibration=calibration)
    assert report.recalibrated_bn and report.to_dict()["recalibrated_bn"]
    assert "4" in report.refitted and "re-estimated" in str(report)
    assert report.calibration_output_error == pytest.approx(
        _error(converted, model, calibration), rel=1e-9
    )
    before = _error(converted, model, held_out)
    with torch.no_grad():
        out = converted(held_out)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to warn about
        recalibrate_batchnorm(converted, calibration)
    with torch.no_grad():
        assert torch.allclose(converted(held_out), out, rtol=1e-9, atol=1e-12 * out.abs().max())
    recalibrate_batchnorm(converted, other)
    assert _error(converted, model, held_out) < 1.25 * before

    kept, report = convert(
        model, method="spatial", rank=1, calibration=calibration, recalibrate_bn=False
    )
    assert not report.recalibrated_bn and "4" in report.refitted
    kept_before = _error(kept, model, held_out)
    with pytest.warns(UserWarning, match=r"recalibrate_batchnorm: 4 were refitted"):
        recalibrate_batchnorm(kept, calibration)
    assert _error(kept, model, held_out) > 1.25 * kept_before  # the fit undone
    assert _error(kept, model, held_out) > 1.25 * _error(converted, model, held_out)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        recalibrate_batchnorm(model, calibration)  # the original: nothing refitted


def test_recalibrate_bn_is_checked_and_needs_norms():
    model = _normed()
    with pytest.raises(TypeError, match=r"`recalibrate_bn` must be True or False, got 'yes'"):
        convert(model, rank=1, calibration=_inputs(8, seed=1), recalibrate_bn="yes")
    _, report = convert(_model(), method="spatial", rank=1, calibration=_inputs(16, seed=1))
    assert not report.recalibrated_bn  # no batch norm: nothing to re-estimate
    _, report = convert(model, method="spatial", rank=1)
    assert not report.recalibrated_bn  # no calibration data
