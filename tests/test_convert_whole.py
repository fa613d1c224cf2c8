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


def test_recalibrating_batch_norms_after_a_refit_warns_and_names_the_layers():
    """Layers refitted to the batch norms' statistics are named when those statistics are
    re-estimated (which can undo the fit); a model without such layers gives no warning."""
    import warnings

    from sepconv.convert import recalibrate_batchnorm

    torch.manual_seed(0)
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
    calibration = _inputs(64, seed=1)
    with torch.no_grad():  # statistics of its own, so that the norm is not the identity
        model[1].running_mean.uniform_(-0.5, 0.5)
        model[1].running_var.uniform_(0.5, 2.0)
    converted, report = convert(model, method="spatial", rank=1, calibration=calibration)
    assert "4" in report.refitted
    with pytest.warns(UserWarning, match=r"recalibrate_batchnorm: 4 were refitted"):
        recalibrate_batchnorm(converted, calibration)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        recalibrate_batchnorm(model, calibration)  # the original: nothing refitted
