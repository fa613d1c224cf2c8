"""sepconv.convert: factors against NumPy's SVD, converted layers against F.conv, model surgery."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from sepconv import cost
from sepconv.convert import convert, depthwise_factors, spatial_factors, to_separable
from sepconv.nn import SeparableConv2d, SpatiallySeparableConv2d
from sepconv.nn.functional import plain_composition

RNG = np.random.default_rng(1234)


def _conv_nd(n):
    return {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[n]


@pytest.mark.parametrize("n,kernel", [(1, (5,)), (2, (3, 3)), (2, (3, 5)), (3, (3, 3, 3))])
def test_depthwise_factors_exact_at_full_rank(n, kernel):
    weight = RNG.standard_normal((6, 4, *kernel))
    full = min(6, math.prod(kernel))
    dw, pw, error = depthwise_factors(weight, rank=full)
    assert error < 1e-12
    x = torch.from_numpy(RNG.standard_normal((2, 4, *(9,) * n)))
    conv = _conv_nd(n)
    expected = conv(x, torch.from_numpy(weight))
    got = conv(conv(x, torch.from_numpy(dw), groups=4), torch.from_numpy(pw))
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("rank", [1, 2, 4])
def test_depthwise_factors_error_is_eckart_young(rank):
    weight = RNG.standard_normal((8, 3, 3, 3))
    _, _, error = depthwise_factors(weight, rank=rank)
    discarded = 0.0
    for c in range(3):
        s = np.linalg.svd(weight[:, c].reshape(8, 9), compute_uv=False)
        discarded += np.sum(s[rank:] ** 2)
    assert error == pytest.approx(math.sqrt(discarded) / np.linalg.norm(weight), rel=1e-9)


def test_depthwise_factors_rtol_picks_fewest_terms():
    # Each channel slice has rank 2 by construction, so rtol=1e-9 must pick exactly 2.
    left = RNG.standard_normal((3, 8, 2))
    right = RNG.standard_normal((3, 2, 9))
    weight = np.einsum("cor,crk->ock", left, right).reshape(8, 3, 3, 3)
    dw, pw, error = depthwise_factors(weight, rtol=1e-9)
    assert dw.shape == (6, 1, 3, 3) and pw.shape == (8, 6, 1, 1)
    assert error < 1e-9
    _, _, one = depthwise_factors(weight, rank=1)
    assert one > 1e-3


@pytest.mark.parametrize("kernel", [(3, 3), (5, 3)])
def test_spatial_factors_match_svd_and_reconstruct(kernel):
    kh, kw = kernel
    weight = RNG.standard_normal((5, 4, kh, kw))
    full = min(4 * kh, 5 * kw)
    column, row, error = spatial_factors(weight, rank=full)
    assert error < 1e-12
    x = torch.from_numpy(RNG.standard_normal((1, 4, 11, 12)))
    got = F.conv2d(F.conv2d(x, torch.from_numpy(column)), torch.from_numpy(row))
    torch.testing.assert_close(got, F.conv2d(x, torch.from_numpy(weight)), rtol=1e-10, atol=1e-10)
    s = np.linalg.svd(weight.transpose(1, 2, 0, 3).reshape(4 * kh, 5 * kw), compute_uv=False)
    _, _, error2 = spatial_factors(weight, rank=2)
    assert error2 == pytest.approx(math.sqrt(np.sum(s[2:] ** 2)) / np.linalg.norm(weight), rel=1e-9)


@pytest.mark.parametrize("method", ["depthwise", "spatial"])
@pytest.mark.parametrize(
    "stride,padding,dilation", [(1, 1, 1), (2, 0, 1), (1, 2, 2), (1, "same", 1), (2, (1, 2), 1)]
)
def test_to_separable_equals_conv(method, stride, padding, dilation):
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, stride=stride, padding=padding, dilation=dilation).double()
    rank = 6 if method == "depthwise" else 12
    layer, error = to_separable(conv, method, rank=rank)
    assert error < 1e-12
    x = torch.randn(2, 4, 13, 12, dtype=torch.float64)
    torch.testing.assert_close(layer(x), conv(x), rtol=1e-10, atol=1e-10)


def test_to_separable_keeps_padding_mode_and_dtype():
    conv = nn.Conv2d(3, 5, 3, padding=1, padding_mode="reflect", bias=False)
    layer, _ = to_separable(conv, rank=5)
    assert isinstance(layer, SeparableConv2d)
    assert layer.padding_mode == "reflect" and layer.pointwise.bias is None
    assert layer.depthwise.weight.dtype == torch.float32
    x = torch.randn(1, 3, 8, 8)
    torch.testing.assert_close(layer(x), conv(x), rtol=1e-4, atol=1e-5)


def _model():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.Sequential(nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU()),
        nn.Conv2d(32, 32, 3, groups=32, padding=1),
        nn.Conv2d(32, 10, 1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )


def test_convert_reports_every_convolution_and_why():
    model = _model()
    converted, report = convert(model, rank=2, input_size=(1, 3, 16, 16))
    names = [row.name for row in report.layers]
    assert names == ["0", "2.0", "3", "4"]
    assert [row.name for row in report.replaced] == ["0", "2.0"]
    reasons = {row.name: row.reason for row in report.skipped}
    assert reasons == {"3": "grouped (groups=32)", "4": "1x1 kernel: nothing spatial to separate"}
    assert isinstance(converted[0], SeparableConv2d)
    assert isinstance(converted[2][0], SeparableConv2d)
    assert "kept: grouped" in str(report)


def test_convert_does_not_modify_the_input_model_unless_inplace():
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    converted, _ = convert(model, rank=2)
    assert converted is not model
    assert type(model[0]) is nn.Conv2d
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])
    same, _ = convert(model, rank=2, inplace=True)
    assert same is model and isinstance(model[0], SeparableConv2d)


def test_convert_exact_rank_keeps_outputs_and_measures_error():
    model = _model().double().eval()
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    converted, report = convert(model, rank=9, min_speedup=0, example_input=x)
    assert report.output_relative_error < 1e-12
    torch.testing.assert_close(converted(x), model(x))
    _, lossy = convert(model, rank=1, example_input=x)
    assert lossy.output_relative_error > 1e-6


def test_convert_costs_agree_with_cost_model_and_flop_counter():
    model = _model().eval()
    converted, report = convert(model, rank=2, input_size=(1, 3, 16, 16))
    first = report.replaced[0]
    assert first.mult_adds_before == cost.conv((16, 16, 3), 3, 16, padding=1).multiplications
    assert (
        first.mult_adds_after
        == cost.separable((16, 16, 3), 3, 16, padding=1, depth_multiplier=2).multiplications
    )
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad(), plain_composition():
        converted(torch.zeros(1, 3, 16, 16))
    per_op = counter.get_flop_counts()["Global"]
    conv_flops = sum(v for k, v in per_op.items() if "convolution" in str(k))
    expected = (
        sum(row.mult_adds_after for row in report.replaced)
        + cost.conv((8, 8, 32), 3, 32, padding=1, groups=32).multiplications
        + cost.pointwise((8, 8, 32), 10).multiplications
    )
    assert conv_flops == 2 * expected


def test_convert_min_speedup_keeps_layers_that_would_not_pay():
    model = _model()
    _, report = convert(model, rank=9, input_size=(1, 3, 16, 16))
    assert report.replaced == ()
    # Rank 9 of a 3x3 kernel costs more than the convolution: the reason says how much more,
    # never "saves 0.94x" nor "1.06x more" for 6% more.
    for row in report.skipped[:2]:
        more = 100 * (row.mult_adds_after / row.mult_adds_before - 1)
        assert 0 < more < 100
        assert row.reason == f"rank 9 would need {more:.0f}% more mult-adds", row.reason
        assert "saves" not in str(report)
    # Cheaper, but not by enough.
    _, report = convert(model, rank=1, min_speedup=100, input_size=(1, 3, 16, 16))
    row = report.skipped[0]
    ratio = row.mult_adds_before / row.mult_adds_after
    assert row.reason == (
        f"rank 1 needs only {ratio:.2f}x fewer mult-adds, a speedup of {ratio:.2f} below "
        "min_speedup 100"
    )
    # Without input_size the layers are judged by their parameters, and the reason says so.
    _, report = convert(model, rank=9)
    assert report.skipped[0].reason.endswith("more parameters")


def test_replaced_layers_say_how_their_rank_was_chosen_and_what_it_saves():
    model = _model()
    _, report = convert(model, rank=2, input_size=(1, 3, 16, 16))
    row = report.replaced[0]
    assert row.reason == f"rank 2 as requested, {row.speedup:.2f}x fewer mult-adds", row.reason
    _, report = convert(model, method="spatial", rank=16, min_speedup=0)  # capped at 3 * 3
    assert report.replaced[0].reason.startswith("rank 9, the full rank (16 requested), ")
    assert report.replaced[0].reason.endswith(" parameters")
    _, report = convert(model, rtol=0.5, input_size=(1, 3, 16, 16))
    for row in report.replaced:
        assert row.reason.startswith(f"rank {row.rank}, the fewest terms within rtol 0.5, ")
    assert "replaced: rank" in str(report)


def test_convert_spatial_method_and_1d_models():
    model = _model().double().eval()
    x = torch.randn(1, 3, 16, 16, dtype=torch.float64)
    converted, report = convert(model, method="spatial", rtol=1e-12, min_speedup=0, example_input=x)
    assert isinstance(converted[0], SpatiallySeparableConv2d)
    assert report.output_relative_error < 1e-10
    seq = nn.Sequential(nn.Conv1d(4, 8, 5), nn.Conv1d(8, 8, 3))
    _, report1d = convert(seq, method="spatial", rank=1)
    assert {row.reason for row in report1d.skipped} == {"method 'spatial' is for 2-D convolutions"}


def test_convert_leaves_sepconv_layers_alone():
    model = nn.Sequential(SeparableConv2d(3, 8, 3), SpatiallySeparableConv2d(8, 8, 3))
    _, report = convert(model, rank=1)
    assert report.layers == ()


def test_exception():
    conv = nn.Conv2d(3, 4, 3)
    with pytest.raises(ValueError, match="give `rank` or `rtol`, not both"):
        convert(nn.Sequential(conv), rank=1, rtol=0.1)
    with pytest.raises(ValueError, match="give `rank`"):
        convert(nn.Sequential(conv))
    with pytest.raises(ValueError, match="`method` must be one of"):
        convert(nn.Sequential(conv), method="tucker", rank=1)
    with pytest.raises(TypeError, match="`model` must be an nn.Module"):
        convert("model", rank=1)
    with pytest.raises(ValueError, match=r"`rank` must be at most .* = 4"):
        depthwise_factors(conv.weight, rank=5)
    with pytest.raises(ValueError, match="`weight` must have shape"):
        spatial_factors(np.zeros((4, 3, 3)), rank=1)
    with pytest.raises(ValueError, match="`conv` must have groups=1"):
        to_separable(nn.Conv2d(4, 4, 3, groups=2), rank=1)
    with pytest.raises(TypeError, match="`conv` must be an nn.Conv1d"):
        to_separable(nn.Linear(3, 3), rank=1)
    for rtol in (-1, 1, 2):  # a relative error of 1 is met by any rank
        with pytest.raises(
            ValueError,
            match=r"`rtol` \(relative weight error\) must be in "
            r"\[0, 1\)",
        ):
            depthwise_factors(conv.weight, rtol=rtol)
        with pytest.raises(ValueError, match="`rtol`"):
            convert(nn.Sequential(conv), rtol=rtol)
    with pytest.raises(ValueError, match="`input_size`"):
        convert(nn.Sequential(conv), rank=1, input_size=(3, 0, 8))


def test_save_load_round_trip_is_safe_and_exact(tmp_path):
    from sepconv.convert import load, save

    model = _model().eval()
    converted, report = convert(model, rank=2)
    path = tmp_path / "converted.pt"
    save(converted, report, path, metadata={"model": "test"})
    payload = torch.load(path, weights_only=True)
    assert payload["conversion"] == [
        {"name": "0", "method": "depthwise", "rank": 2},
        {"name": "2.0", "method": "depthwise", "rank": 2},
    ]
    restored = load(path, _model())
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(restored(x), converted.eval()(x))
    assert [p.name for p in tmp_path.iterdir()] == ["converted.pt"]


def test_rebuild_exception():
    from sepconv.convert import rebuild

    with pytest.raises(ValueError, match="'missing', which the model does not have"):
        rebuild(_model(), [{"name": "missing", "method": "depthwise", "rank": 1}])
    with pytest.raises(ValueError, match="a ReLU, not an nn.Conv1d/2d/3d"):
        rebuild(_model(), [{"name": "1", "method": "depthwise", "rank": 1}])
    with pytest.raises(ValueError, match="entries must be dicts"):
        rebuild(_model(), [("0", "depthwise", 1)])


def test_cli_convert(tmp_path, capsys):
    from sepconv.cli import main
    from sepconv.convert import load
    from sepconv.models import create_model

    model = create_model("mnist_conv").eval()
    weights = tmp_path / "weights.pt"
    torch.save(model.state_dict(), weights)
    out = tmp_path / "converted.pt"
    status = main(
        [
            "convert",
            "mnist_conv",
            str(out),
            "--weights",
            str(weights),
            "--rank",
            "2",
            "--input-size",
            "1x1x28x28",
            "--min-speedup",
            "0",
        ]
    )
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert "replaced" in printed and out.exists()
    restored = load(out, create_model("mnist_conv"))
    assert any(isinstance(m, SeparableConv2d) for m in restored.modules())
    # An existing output is not overwritten without --force; a pickled model needs an opt-in.
    for argv, message in (
        (["convert", "mnist_conv", str(out), "--rank", "2"], "exists; pass --force"),
        (["convert", str(weights), str(tmp_path / "b.pt"), "--rank", "2"], "--trust-pickle"),
        (["convert", "mnist_conv", str(tmp_path / "no" / "c.pt"), "--rank", "2"], "does not exist"),
        (["convert", "nope", str(tmp_path / "d.pt"), "--rank", "2"], "nope"),
        (["convert", "mnist_conv", str(tmp_path / "e.pt")], "one of the arguments"),
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and message in err, err
    assert not (tmp_path / "b.pt").exists() and not (tmp_path / "d.pt").exists()


def test_convert_conv_with_declared_keras_padding():
    from sepconv.models.mobilenet import Conv2dSame

    conv = Conv2dSame(4, 16, 3, stride=2).double()
    layer, error = to_separable(conv, rank=9)
    assert error < 1e-12 and layer.padding == "same"
    for size in (9, 10):
        x = torch.randn(1, 4, size, size, dtype=torch.float64)
        torch.testing.assert_close(layer(x), conv(x), rtol=1e-10, atol=1e-10)

    class Opaque(nn.Conv2d):
        pass

    _, report = convert(nn.Sequential(Opaque(3, 4, 3)), rank=1)  # a probe: pads as nn.Conv2d
    assert report.layers[0].replaced and "probed" in report.layers[0].module


# ------------------------------------------------------- subclasses that pad their own way
class _TFSameConv2d(nn.Conv2d):
    """Mimics timm's Conv2dSame: TensorFlow 'same' padding computed from each input's size."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, padding=0, **kwargs)

    def forward(self, x):
        pads = []
        for size, k, s, d in zip(x.shape[2:], self.kernel_size, self.stride, self.dilation):
            total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
            pads[:0] = [total // 2, total - total // 2]
        x = torch.nn.functional.pad(x, pads)
        return torch.nn.functional.conv2d(
            x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups
        )


class _StdConv2d(nn.Conv2d):
    """Mimics timm's StdConv2d: the weight standardised in forward (not a plain convolution)."""

    def forward(self, x):
        w = self.weight
        w = (w - w.mean(dim=(1, 2, 3), keepdim=True)) / (w.std(dim=(1, 2, 3), keepdim=True) + 1e-5)
        return torch.nn.functional.conv2d(x, w, self.bias, self.stride, self.padding)


class _LoggedConv2d(nn.Conv2d):
    calls = 0

    def forward(self, x):
        type(self).calls += 1
        return super().forward(x)


@pytest.mark.parametrize("method", ["depthwise", "spatial", "depthwise+spatial"])
def test_subclasses_that_pad_their_own_way_are_probed_and_converted(method):
    torch.manual_seed(0)
    model = nn.Sequential(
        _TFSameConv2d(3, 8, 3, stride=2),
        nn.ReLU(),
        _TFSameConv2d(8, 8, (3, 5), dilation=(1, 2)),
        _LoggedConv2d(8, 6, 3, padding=1),
        _StdConv2d(6, 4, 3, padding=1),
    ).double()
    converted, report = convert(model, method=method, rtol=0.0, min_speedup=0.0)
    rows = {r.name: r for r in report.layers}
    assert rows["0"].replaced and rows["2"].replaced and rows["3"].replaced
    assert "'same' padding: probed" in rows["0"].module and "probed" in rows["3"].module
    assert not rows["4"].replaced and "matched none" in rows["4"].reason
    for size in [(9, 9), (10, 13), (16, 7)]:  # odd and even: 'same' depends on the size
        x = torch.randn(2, 3, *size, dtype=torch.float64)
        torch.testing.assert_close(converted(x), model(x), rtol=1e-9, atol=1e-9)
    assert isinstance(model[0], _TFSameConv2d)  # the input model is left as it was
