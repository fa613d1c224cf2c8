"""``sepconv profile`` and ``sepconv train`` through the command line's entry point."""

from __future__ import annotations

import json

import pytest

from sepconv.cli import main

# Many small torch calls: one intra-op thread is faster and steadier on a busy machine.
pytestmark = pytest.mark.usefixtures("torch_single_thread")


def test_profile_text(capsys) -> None:
    assert main(["profile", "mobilenet_v1", "--width", "0.5", "--resolution", "160"]) == 0
    out = capsys.readouterr().out
    assert "blocks.0.conv.depthwise" in out and "DepthwiseConv2d" in out
    assert "76,524,800 mult-adds" in out and "1,331,592 parameters" in out
    assert "ReLU" not in out  # layers without parameters or mult-adds are left out


def test_profile_json(capsys) -> None:
    assert main(["profile", "mobilenet_v1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["totals"]["mult_adds"] == 568_740_352
    assert data["totals"]["torch_flops"] == 2 * 568_740_352
    assert data["input_size"] == [1, 3, 224, 224]
    assert data["name"] == "mobilenet_v1"


def test_profile_markdown_summary(capsys) -> None:
    assert main(["profile", "mobilenet_v1", "--summary", "--markdown"]) == 0
    out = capsys.readouterr().out
    assert "| Conv 1x1 | 13 | 539,492,352 | 94.86% | 3,139,584 | 74.57% |" in out
    assert "| Norm | 27 | 0 | - | 21,888 | - |" in out


@pytest.mark.parametrize("name", ["mobilenet_v1_conv", "mnist_separable", "mnist_conv"])
def test_profile_other_models(capsys, name: str) -> None:
    args = ["profile", name, "--markdown"]
    if name == "mobilenet_v1_conv":
        args += ["--width", "0.25", "--resolution", "128"]
    assert main(args) == 0
    assert "| **total** |" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["profile", "mobilenet_v9"], "must be a registered model, got 'mobilenet_v9'"),
        (["profile", "mobilenet_v1", "--width", "0.01"], "--width must leave"),
        (["profile", "mobilenet_v1", "--width", "-1"], "expected a positive number"),
        (["profile", "mobilenet_v1", "--resolution", "0"], "expected a positive integer"),
        (["profile", "mobilenet_v1", "--json", "--markdown"], "not allowed with argument"),
        (["train", "--epochs", "0"], "expected a positive integer"),
    ],
)
def test_exception(capsys, args: list[str], message: str) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_train_quick(capsys, tmp_path) -> None:
    out = tmp_path / "run"
    assert main(["train", "--quick", "--no-progress", "--out", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["model"] for r in data["rows"]] == ["mnist_separable", "mnist_conv"]
    assert all(r["test_accuracy"] > 0.5 for r in data["rows"])
    assert data["config"]["epochs"] == 1 and data["config"]["train_limit"] == 2000
    assert {p.name for p in out.iterdir()} == {
        "results.md",
        "results.json",
        "mnist_separable.pt",
        "mnist_conv.pt",
    }


def test_convert_counts_mult_adds_on_the_registered_input_size(capsys, tmp_path) -> None:
    out = tmp_path / "c.pt"
    assert main(["convert", "mnist_conv", str(out), "--rank", "2", "--json"]) == 0
    default = json.loads(capsys.readouterr().out)
    assert (
        main(
            [
                "convert",
                "mnist_conv",
                str(out),
                "--rank",
                "2",
                "--json",
                "--force",
                "--input-size",
                "1x1x28x28",
            ]
        )
        == 0
    )
    explicit = json.loads(capsys.readouterr().out)
    counts = [(r["mult_adds_before"], r["mult_adds_after"]) for r in default["layers"]]
    assert counts == [(r["mult_adds_before"], r["mult_adds_after"]) for r in explicit["layers"]]
    assert counts[0][0] == 32 * 9 * 14 * 14  # the stem: 1 -> 32 channels, 3x3, stride 2 on 28x28


@pytest.mark.parametrize(
    ("name", "options", "cls"),
    [
        ("mnist_conv", [], "full-convolution twin of SmallNet"),
        ("mnist_separable", [], "SmallNet"),
        (
            "mobilenet_v1_conv",
            ["--width", "0.25", "--resolution", "96"],
            "full-convolution twin of MobileNetV1",
        ),
        ("mobilenet_v1", ["--width", "0.25", "--resolution", "96"], "MobileNetV1"),
    ],
)
def test_profile_names_the_model_as_typed(capsys, name: str, options: list[str], cls: str) -> None:
    for view in ([], ["--summary"], ["--markdown"]):
        assert main(["profile", name, *options, *view]) == 0
        last = capsys.readouterr().out.strip().splitlines()[-1]
        assert last.startswith(f"{name} ({cls}) on input "), last


@pytest.fixture
def fixed_width_model():
    """A registered model that takes ``num_classes`` only (no width, no resolution)."""
    import torch

    from sepconv.models import _registry

    def build(*, num_classes: int = 10) -> torch.nn.Module:
        net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, num_classes))
        net.default_input_size = (3, 2, 2)
        return net

    _registry.register("fixed_width_test", build)
    yield "fixed_width_test"
    del _registry._BUILDERS["fixed_width_test"]


@pytest.mark.parametrize(("option", "value"), [("--width", "0.5"), ("--resolution", "64")])
def test_profile_refuses_an_option_the_model_does_not_take(
    capsys, fixed_width_model, option: str, value: str
) -> None:
    assert main(["profile", fixed_width_model, option, value]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"sepconv profile: error: model '{fixed_width_model}' takes no "
        f"{option} option; leave it out\n"
    )
    assert main(["profile", fixed_width_model, "--num-classes", "3", "--summary"]) == 0
    assert "36 mult-adds" in capsys.readouterr().out  # 12 inputs x 3 outputs
