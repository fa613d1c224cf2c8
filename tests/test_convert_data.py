"""Data-aware conversion, budgets, 1x1/Linear SVD, batch-norm re-estimation and fine-tuning."""

from __future__ import annotations

import copy
import math
import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from sepconv.convert import (
    LowRank,
    convert,
    finetune,
    linear_factors,
    load,
    recalibrate_batchnorm,
    save,
)
from sepconv.nn import SeparableConv2d, SpatiallySeparableConv2d
from sepconv.profiling import profile


def _vgg(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 10),
    )


class _Basic(nn.Module):
    """ResNet basic block with a strided 1x1 projection shortcut."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.down(x))


class _Inception(nn.Module):
    """Inception-v3-style block: 1x1, 1x1 -> 5x5, 1x1 -> 3x3 -> 3x3, pool -> 1x1, dilated 3x3."""

    def __init__(self, cin):
        super().__init__()
        self.b1 = nn.Conv2d(cin, 8, 1)
        self.b5 = nn.Sequential(nn.Conv2d(cin, 6, 1), nn.ReLU(), nn.Conv2d(6, 8, 5, padding=2))
        self.b3 = nn.Sequential(
            nn.Conv2d(cin, 6, 1),
            nn.ReLU(),
            nn.Conv2d(6, 8, 3, padding="same"),
            nn.ReLU(),
            nn.Conv2d(8, 8, (1, 3), padding=(0, 1)),
        )
        self.pool = nn.Sequential(nn.AvgPool2d(3, 1, 1), nn.Conv2d(cin, 8, 1))
        self.dilated = nn.Conv2d(cin, 8, 3, padding=2, dilation=2, padding_mode="reflect")
        self.grouped = nn.Conv2d(cin, 8, 3, padding=1, groups=2, padding_mode="circular")

    def forward(self, x):
        return torch.cat(
            [self.b1(x), self.b5(x), self.b3(x), self.pool(x), self.dilated(x), self.grouped(x)], 1
        )


def _architectures():
    torch.manual_seed(1)
    resnet = nn.Sequential(
        nn.Conv2d(3, 8, 3, 2, 1, padding_mode="replicate"),
        nn.ReLU(),
        _Basic(8, 16, 2),
        _Basic(16, 16, 1),
    )
    inception = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), _Inception(8))
    mixed = nn.Sequential(
        SeparableConv2d(3, 8, 3, padding="same"),
        nn.Conv2d(8, 12, (3, 5), stride=(2, 1), padding=(1, 2)),
        nn.Conv2d(12, 12, 3, padding=2, dilation=2, padding_mode="circular"),
    )
    return {"vgg": _vgg(), "resnet": resnet, "inception": inception, "mixed": mixed}


def _trained_like(model):
    """Give batch norms non-trivial statistics, as a trained model has."""
    torch.manual_seed(2)
    recalibrate_batchnorm(model, torch.randn(64, 3, 16, 16))
    return model.double().eval()


@pytest.mark.parametrize("method", ["depthwise", "spatial"])
@pytest.mark.parametrize("arch", ["vgg", "resnet", "inception", "mixed"])
def test_full_rank_is_exact_closed_form_and_data_aware(arch, method):
    model = _trained_like(_architectures()[arch])
    x = torch.randn(4, 3, 16, 16, dtype=torch.float64)
    calibration = torch.randn(16, 3, 16, 16, dtype=torch.float64)
    for kwargs in ({}, {"calibration": calibration, "recalibrate_bn": False}):
        converted, report = convert(
            model, method=method, rank=10_000, min_speedup=0, linear=True, **kwargs
        )
        assert report.replaced
        torch.testing.assert_close(converted(x), model(x), rtol=1e-9, atol=1e-9)
        if kwargs:
            assert all(r.output_error < 1e-6 for r in report.replaced)
    # by default the statistics are re-estimated on the calibration data: the original's are
    converted, report = convert(
        model, method=method, rank=10_000, min_speedup=0, linear=True, calibration=calibration
    )
    norms = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    assert report.recalibrated_bn == norms
    recalibrated = recalibrate_batchnorm(copy.deepcopy(model), calibration)
    torch.testing.assert_close(converted(x), recalibrated(x), rtol=1e-9, atol=1e-9)
    assert norms != torch.allclose(recalibrated(x), model(x), rtol=1e-6, atol=1e-6)
    kinds = {r.reason for r in report.skipped}
    if arch == "inception":
        assert "grouped (groups=2)" in kinds


@pytest.mark.parametrize("method", ["depthwise", "spatial"])
def test_data_aware_never_worse_than_closed_form_at_the_same_budget(method):
    model = _trained_like(_vgg())
    torch.manual_seed(3)
    calibration = torch.randn(128, 3, 16, 16, dtype=torch.float64)
    held_out = torch.randn(64, 3, 16, 16, dtype=torch.float64)
    for budget in (0.5, 0.3):
        closed, r_closed = convert(
            model, method=method, budget=budget, input_size=(1, 3, 16, 16), example_input=held_out
        )
        fitted, r_fitted = convert(
            model, method=method, budget=budget, calibration=calibration, example_input=held_out
        )
        assert r_fitted.calibration_output_error <= r_fitted.closed_form_calibration_error
        assert r_fitted.output_relative_error <= r_closed.output_relative_error * 1.0001
        for row in r_fitted.replaced:
            assert row.output_error <= row.closed_form_output_error


def test_data_aware_refit_is_least_squares_optimal():
    # One layer: the refitted pointwise weights must match numpy's lstsq on the same features.
    torch.manual_seed(4)
    conv = nn.Conv2d(4, 6, 3, padding=1).double()
    x = torch.randn(2, 4, 6, 6, dtype=torch.float64)
    converted, report = convert(nn.Sequential(conv), rank=1, calibration=x)
    layer = converted[0].requires_grad_(False)
    conv.requires_grad_(False)
    z = layer.depthwise(x).movedim(1, -1).reshape(-1, 4)
    design = torch.cat([z, torch.ones(len(z), 1, dtype=z.dtype)], 1)
    target = conv(x).movedim(1, -1).reshape(-1, 6)
    solution = torch.linalg.lstsq(design, target).solution
    torch.testing.assert_close(
        layer.pointwise.weight.reshape(6, 4), solution[:4].T, rtol=1e-6, atol=1e-6
    )
    torch.testing.assert_close(layer.pointwise.bias, solution[4], rtol=1e-6, atol=1e-6)
    residual = torch.linalg.vector_norm(design @ solution - target)
    assert math.isclose(
        report.replaced[0].output_error,
        float(residual / torch.linalg.vector_norm(target)),
        rel_tol=1e-6,
    )


@pytest.mark.parametrize("method", ["depthwise", "spatial"])
@pytest.mark.parametrize("budget", [1 / 2, 1 / 3, 1 / 4])
@pytest.mark.parametrize("data", [False, True])
def test_budget_is_respected(method, budget, data):
    model = _trained_like(_vgg())
    size = (1, 3, 16, 16)
    kwargs = (
        {"calibration": torch.randn(32, 3, 16, 16, dtype=torch.float64)}
        if data
        else {"input_size": size}
    )
    converted, report = convert(model, method=method, budget=budget, linear=True, **kwargs)
    assert report.mult_adds_after <= budget * report.mult_adds_before
    # The profiler agrees: the model lost at least what the report says.
    saved = profile(model, size).total_mult_adds - profile(converted, size).total_mult_adds
    assert saved == report.mult_adds_before - report.mult_adds_after
    assert all(re.match(r"rank \d+ from the budget, ", r.reason) for r in report.replaced)
    assert "budget" in str(report)


def test_budget_keeps_cheap_layers_and_rejects_unreachable_budgets():
    model = _trained_like(_vgg())
    _, report = convert(model, budget=0.9, input_size=(1, 3, 16, 16))
    # 3 -> 16 channels: a depthwise separable layer barely saves; at 90% it stays whole.
    first = report.layers[0]
    assert not first.replaced and (
        "keeps it whole" in first.reason or "no rank saves" in first.reason
    )
    with pytest.raises(ValueError, match="`budget` must be at least"):
        convert(model, budget=0.01, input_size=(1, 3, 16, 16))


def test_exception():
    model = _vgg()
    with pytest.raises(ValueError, match="not several"):
        convert(model, rank=2, budget=0.5, input_size=(1, 3, 8, 8))
    for bad in (0, 1.5, -0.1):
        with pytest.raises(ValueError, match=r"`budget` must be in \(0, 1\]"):
            convert(model, budget=bad, input_size=(1, 3, 8, 8))
    with pytest.raises(ValueError, match="need `input_size` or `calibration`"):
        convert(model, budget=0.5)
    with pytest.raises(TypeError, match="`calibration` must be a tensor batch"):
        convert(model, rank=2, calibration=3)
    with pytest.raises(ValueError, match="at least one batch"):
        convert(model, rank=2, calibration=[])
    with pytest.raises(ValueError, match="floating-point tensors"):
        convert(model, rank=2, calibration=[torch.zeros(2, 3, 8, 8, dtype=torch.int64)])
    with pytest.raises(ValueError, match="pairs when no `teacher`"):
        finetune(model, [torch.randn(2, 3, 8, 8)], progress=False)
    with pytest.raises(TypeError, match="`model` must be an nn.Module"):
        recalibrate_batchnorm("model", [torch.randn(2, 3, 8, 8)])


def test_calibration_pairs_and_iterables_give_the_same_result():
    model = _trained_like(_vgg())
    x = torch.randn(40, 3, 16, 16, dtype=torch.float64)
    a, _ = convert(model, rank=2, calibration=x)
    b, _ = convert(model, rank=2, calibration=[(x[:20], None), (x[20:], torch.zeros(20))])
    probe = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    torch.testing.assert_close(a(probe), b(probe))


def test_batchnorm_recalibration_is_the_cumulative_average():
    torch.manual_seed(5)
    model = nn.Sequential(
        nn.Conv2d(2, 3, 3),
        nn.BatchNorm2d(3, momentum=0.3),
        nn.ReLU(),
        nn.Conv2d(3, 4, 3),
        nn.BatchNorm2d(4),
    )
    batches = [torch.randn(n, 2, 9, 9) * (1 + n) + n for n in (3, 5, 2)]
    before = {
        k: v.clone()
        for k, v in model.state_dict().items()
        if "running" not in k and "num_batches" not in k
    }
    out = recalibrate_batchnorm(model, [(b, None) for b in batches])
    assert out is model and not model.training and model[1].momentum == 0.3
    # Manual: each batch's mean and unbiased variance, averaged over batches (equal weights).
    model.eval()
    with torch.no_grad():
        first = [model[0](b) for b in batches]
        means = torch.stack([f.mean((0, 2, 3)) for f in first]).mean(0)
        variances = torch.stack([f.transpose(0, 1).reshape(3, -1).var(1) for f in first]).mean(0)
        torch.testing.assert_close(model[1].running_mean, means)
        torch.testing.assert_close(model[1].running_var, variances)
        bn = model[1]
        second = [
            model[3](
                model[2](
                    nn.functional.batch_norm(
                        f, None, None, bn.weight, bn.bias, training=True, eps=bn.eps
                    )
                )
            )
            for f in first
        ]
        torch.testing.assert_close(
            model[4].running_mean, torch.stack([s.mean((0, 2, 3)) for s in second]).mean(0)
        )
    for key, value in model.state_dict().items():
        if key in before:
            assert torch.equal(value, before[key])


@given(
    c_in=st.integers(1, 12),
    c_out=st.integers(1, 12),
    rank=st.integers(1, 12),
    seed=st.integers(0, 2**16),
)
@settings(max_examples=30, deadline=None)
def test_linear_factors_are_eckart_young(c_in, c_out, rank, seed):
    rank = min(rank, c_in, c_out)
    w = torch.randn(c_out, c_in, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    first, second, error = linear_factors(w, rank)
    s = torch.linalg.svdvals(w)
    expected = float(torch.sqrt(torch.sum(s[rank:] ** 2)) / torch.linalg.vector_norm(w))
    assert math.isclose(error, expected, rel_tol=1e-9, abs_tol=1e-12)
    approx = torch.from_numpy(second @ first)
    assert math.isclose(
        float(torch.linalg.vector_norm(w - approx) / torch.linalg.vector_norm(w)),
        expected,
        rel_tol=1e-7,
        abs_tol=1e-10,
    )


def test_linear_and_1x1_svd_exact_at_full_rank_and_save_load(tmp_path):
    torch.manual_seed(6)
    model = nn.Sequential(
        nn.Conv2d(3, 24, 1, stride=2, padding=1, padding_mode="reflect"),
        nn.ReLU(),
        nn.Conv2d(24, 16, 1),
        nn.Flatten(),
        nn.Linear(16 * 9 * 9, 40),
        nn.ReLU(),
        nn.Linear(40, 10, bias=False),
    ).double()
    x = torch.randn(3, 3, 16, 16, dtype=torch.float64)
    converted, report = convert(model, rank=10_000, linear=True, min_speedup=0)
    assert [r.name for r in report.replaced] == ["0", "2", "4", "6"]
    assert all(isinstance(converted[i], LowRank) for i in (0, 2, 4, 6))
    torch.testing.assert_close(converted(x), model(x), rtol=1e-10, atol=1e-10)
    cheap, report = convert(model, rank=4, linear=True, input_size=(1, 3, 16, 16))
    row = {r.name: r for r in report.layers}["4"]
    assert row.mult_adds_after == 4 * (16 * 81 + 40)
    path = tmp_path / "m.pt"
    save(cheap, report, path)
    restored = load(path, model)
    torch.testing.assert_close(restored(x), cheap(x))
    # Without `linear`, 1x1 layers are kept with their reason and Linear layers not listed.
    _, report = convert(model, rank=4)
    assert {r.reason for r in report.layers} == {"1x1 kernel: nothing spatial to separate"}


def test_measured_latency_and_min_speedup_on_measured_time():
    model = _vgg().eval()
    _, report = convert(model, rank=2, input_size=(1, 3, 32, 32), measure_latency=True)
    assert report.model_latency_before_ms > 0 and report.model_latency_after_ms > 0
    assert report.threads == torch.get_num_threads()
    for row in report.layers:
        if row.mult_adds_before is not None:
            assert row.latency_before_ms > 0 and row.latency_after_ms > 0
    assert "latency" in str(report)
    _, report = convert(
        model, rank=2, input_size=(1, 3, 32, 32), measure_latency=True, min_speedup=1000
    )
    assert not report.replaced
    assert all("measured" in r.reason for r in report.layers if r.latency_before_ms is not None)


def test_finetune_distils_from_the_teacher():
    teacher = _trained_like(_vgg()).float()
    student, _ = convert(teacher, rank=1)
    torch.manual_seed(7)
    x = torch.randn(64, 3, 16, 16)
    batches = list(x.split(16))

    def gap():
        with torch.no_grad():
            return float(torch.linalg.vector_norm(student(x) - teacher(x)))

    start = gap()
    losses = finetune(student, batches, epochs=3, lr=3e-3, teacher=teacher, progress=False)
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert gap() < start and not student.training and not teacher.training


def test_spatial_budget_uses_sepconv_layers():
    model = _trained_like(_vgg())
    converted, report = convert(model, method="spatial", budget=0.5, input_size=(1, 3, 16, 16))
    replaced = [converted.get_submodule(r.name) for r in report.replaced]
    assert replaced and all(isinstance(m, SpatiallySeparableConv2d) for m in replaced)


def test_report_fits_100_columns_and_its_columns_are_the_json_names():
    from sepconv.models import create_model

    torch.manual_seed(0)
    model = create_model("mnist_conv", width_multiplier=0.25).eval()
    _, report = convert(
        model,
        method="depthwise+spatial",  # the longest method name
        budget=0.5,
        calibration=torch.randn(32, 1, 28, 28),
        measure_latency=True,  # latencies in the detail lines
        linear=True,
    )
    lines = str(report).splitlines()
    assert max(map(len, lines)) <= 100, str(report)
    headers = re.split(r" {2,}", lines[0])
    assert headers == [
        "name",
        "method",
        "rank",
        "weight error",
        "output error",
        "mult-adds",
    ]
    # Each column is the JSON field of the same name (before/after for the costs); the
    # detail lines give the module, parameters, reason and the closed-form output error.
    fields = set(report.to_dict()["layers"][0])
    for header in headers:
        name = header.replace(" ", "_").replace("-", "_")
        assert {name} <= fields or {f"{name}_before", f"{name}_after"} <= fields, header
    details = {"module", "parameters_before", "latency_before_ms", "reason"}
    assert details | {"closed_form_output_error"} <= fields
    assert not {"layer", "relative_error", "multiplications_before"} & fields
    for row in report.layers:
        assert f"  {row.name} ({row.module}, " in str(report)
        if row.latency_before_ms is not None:
            latency = f"{row.latency_before_ms:.3f} -> {row.latency_after_ms:.3f} ms)"
            assert latency in row.detail()
        if row.replaced:  # says why, not just "replaced"
            assert row.reason.startswith(f"rank {row.rank} "), row.reason


def test_cli_convert_budget_calibrate_recalibrate(tmp_path, capsys):
    import json

    from sepconv.cli import main
    from sepconv.models import create_model

    model = create_model("mnist_conv", width_multiplier=0.25).eval()  # quick to fit
    weights = tmp_path / "weights.pt"
    torch.save(model.state_dict(), weights)
    out = tmp_path / "converted.pt"
    status = main(
        [
            "convert",
            "mnist_conv",
            str(out),
            "--model-arg",
            "width_multiplier=0.25",
            "--weights",
            str(weights),
            "--budget",
            "0.5",
            "--calibrate",
            "digits",
            "--calibration-samples",
            "128",
            "--recalibrate-bn",
            "--json",
        ]
    )
    printed = capsys.readouterr().out
    assert status == 0, printed
    report = json.loads(printed)
    assert report["budget"] == 0.5 and report["mult_adds_after"] <= 0.5 * report["mult_adds_before"]
    assert report["recalibrated_bn"] and report["refitted"] == ["classifier"]
    assert out.exists()
    assert (
        main(["convert", "mnist_conv", str(tmp_path / "x.pt"), "--budget", "0.5", "--rank", "2"])
        == 2
    )
    assert "not allowed with" in capsys.readouterr().err


def test_cli_convert_no_whiten(tmp_path, capsys):
    import json

    from sepconv.cli import main
    from sepconv.models import create_model

    torch.manual_seed(0)
    weights = tmp_path / "weights.pt"
    torch.save(create_model("mnist_conv", width_multiplier=0.25).eval().state_dict(), weights)
    common = ["--weights", str(weights), "--budget", "0.5", "--calibrate", "digits", "--json"]
    common += ["--calibration-samples", "96", "--model-arg", "width_multiplier=0.25"]
    reports = {}
    for flag in ([], ["--no-whiten", "--no-recalibrate-bn"]):
        out = tmp_path / f"converted{len(flag)}.pt"
        assert main(["convert", "mnist_conv", str(out), *common, *flag]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["data_aware"] and out.exists()
        reports[bool(flag)] = report
    assert reports[False]["whitened"] and reports[False]["recalibrated_bn"]
    assert not reports[True]["whitened"] and not reports[True]["recalibrated_bn"]
    for flags, message in (
        (["--rank", "2", "--no-whiten"], "--no-whiten needs --calibrate"),
        (["--rank", "2", "--no-recalibrate-bn"], "--no-recalibrate-bn needs --calibrate"),
        (["--rank", "2", "--calibration-samples", "8"], "--calibration-samples needs --calibrate"),
        (
            ["--rank", "2", "--calibrate", "digits", "--calibration-samples", "0"],
            "--calibration-samples must be a number of digits >= 1, got 0",
        ),
    ):
        assert main(["convert", "mnist_conv", str(tmp_path / "x.pt"), *flags]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.pt").exists()


def test_layers_the_calibration_does_not_reach_keep_the_closed_form():
    class WithAux(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Conv2d(3, 8, 3, padding=1)
            self.aux = nn.Conv2d(8, 8, 3, padding=1)  # used only in training, as aux heads

        def forward(self, x):
            y = self.body(x)
            return y + self.aux(y) if self.training else y

    torch.manual_seed(8)
    model = WithAux().double().eval()
    x = torch.randn(8, 3, 10, 10, dtype=torch.float64)
    _, report = convert(model, calibration=x, rank=2)
    rows = {r.name: r for r in report.layers}
    assert rows["aux"].replaced and "not run on the calibration data" in rows["aux"].reason
    assert rows["body"].output_error is not None and rows["aux"].output_error is None
    # A budget cannot count what does not run: such a layer is left whole, with the reason.
    _, report = convert(model, calibration=x, budget=0.6)
    rows = {r.name: r for r in report.layers}
    assert not rows["aux"].replaced and "no cost to budget" in rows["aux"].reason
    assert rows["body"].replaced
