"""The guided tour: runs end to end on the shipped photograph, and its numbers are the real ones."""

from __future__ import annotations

import json

import pytest

from sepconv import cost
from sepconv.cli import main
from sepconv.tour import run


@pytest.fixture(scope="module")
def tour(tmp_path_factory):
    out = tmp_path_factory.mktemp("tour") / "tour"
    return out, run(out)


def test_smoke_writes_report_and_figures(tour):
    out, steps = tour
    assert len(steps) == 5
    readme = (out / "README.md").read_text(encoding="utf-8")
    for step in steps:
        assert step.title in readme
        assert step.figure is None or (out / step.figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sum(step.figure is not None for step in steps) == 4
    data = json.loads((out / "tour.json").read_text(encoding="utf-8"))
    assert [d["title"] for d in data] == [s.title for s in steps]


def test_sobel_step_counts_and_factors(tour):
    numbers = tour[1][0].numbers
    assert numbers["column"] == [1, 2, 1] and numbers["row"] == [-1, 0, 1]
    assert numbers["per_pixel"] == [9, 6]
    h, w = numbers["image_shape"]
    assert numbers["direct_multiplications"] == cost.filtering((3, 3), image_shape=(h, w)) \
        .multiplications
    assert numbers["max_abs_difference"] < 1e-12


def test_lowrank_step_ranks(tour):
    numbers = tour[1][1].numbers
    assert numbers["ranks"]["random 7x7"] == 7
    assert numbers["ranks"]["gaussian σ=2"] == 1
    assert numbers["ranks"]["laplacian of gaussian σ=2"] == 2
    assert numbers["ranks"]["gabor θ=30°"] == 2
    assert numbers["lowrank_max_relative_error"] < 1e-5


def test_worked_example_step_is_counted(tour):
    numbers = tour[1][2].numbers
    assert numbers["output_shape"] == [8, 8, 256]
    assert numbers["normal"] == 1_228_800
    assert numbers["separable"] == 53_952
    assert numbers["by_operation"] == {"depthwise_conv2d": 4_800, "pointwise_conv2d": 49_152}
    assert numbers["same"] == {"normal": 2_764_800, "separable": 121_392}
    assert numbers["equivalent_max_abs_difference"] < 1e-9
    assert "1,228,800" in tour[1][2].text and "53,952" in tour[1][2].text


def test_mobilenet_and_convert_steps(tour):
    numbers = tour[1][3].numbers
    assert round(numbers["separable"]["mult_adds"] / 1e6) == 569
    assert round(numbers["separable"]["parameters"] / 1e5) == 42
    rows = tour[1][4].numbers["spatial"]
    errors = [r["weight_error"] for r in rows]
    assert errors == sorted(errors, reverse=True) and errors[-1] <= 0.01
    assert all(r["speedup"] > 1 for r in rows)


def test_cli_errors_are_one_line(tmp_path, capsys):
    status = main(["tour", "--out", str(tmp_path / "missing" / "tour")])
    err = capsys.readouterr().err
    assert status == 2
    assert len(err.strip().splitlines()) == 1 and "does not exist" in err


def _close(a, b):
    if isinstance(a, dict):
        return set(a) == set(b) and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b)) or (a < 1e-9 and b < 1e-9)
    return a == b


def test_committed_tour_is_what_the_command_writes(tour):
    """docs/tour, shown in the README, holds the numbers a fresh `sepconv tour` computes."""
    from pathlib import Path

    committed = Path(__file__).resolve().parents[1] / "docs" / "tour" / "tour.json"
    data = json.loads(committed.read_text(encoding="utf-8"))
    fresh = json.loads((tour[0] / "tour.json").read_text(encoding="utf-8"))
    assert [d["title"] for d in data] == [d["title"] for d in fresh]
    for old, new in zip(data, fresh):
        assert _close(old["numbers"], new["numbers"]), old["title"]
