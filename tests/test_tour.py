"""The guided tour: runs end to end on the shipped photograph, and its numbers are the real ones."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from sepconv import cost, factor, kernels
from sepconv.cli import main
from sepconv.tour import load_photo, run

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tour(tour_run):
    return tour_run[:3]


@pytest.fixture(scope="module")
def legend_overlaps(tour_run):
    """What the legends of the tour's matplotlib figures cover, by the figure's titles."""
    return tour_run[3]


@pytest.fixture(scope="module")
def tour_run(tmp_path_factory):
    """The tour run once, and what each figure's legends cover, looked at before it is saved."""
    import sepconv.tour as module

    out = tmp_path_factory.mktemp("tour") / "docs" / "tour"  # parents made like mkdir -p
    overlaps: dict[str, list[str]] = {}
    original = module._png

    def png(fig):
        overlaps[_title(fig)] = _legend_overlaps(fig)
        return original(fig)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, "_png", png)
        steps = run(out)
    return out, steps, {s.key: s for s in steps}, overlaps


def _title(fig) -> str:
    titles = [fig._suptitle] if fig._suptitle is not None else []
    titles += [ax.title for ax in fig.axes]
    return " / ".join(t.get_text() for t in titles if t.get_text()) or "untitled"


def _legend_overlaps(fig) -> list[str]:
    """What a legend of ``fig`` covers: bars, points or segments of lines, texts (in pixels)."""
    from matplotlib.transforms import Bbox

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]
    found = []
    for legend in legends:
        box = legend.get_window_extent(renderer).padded(-1)

        def covers(extent, clip, box=box) -> bool:
            part = Bbox.intersection(extent, clip)
            part = part and Bbox.intersection(part, box)
            return bool(part) and part.width > 1 and part.height > 1

        for ax in fig.axes:
            for patch in ax.patches:
                if patch.get_visible() and covers(patch.get_window_extent(renderer), ax.bbox):
                    found.append(f"bar {patch.get_label() or patch}")
            for line in ax.lines:
                points = line.get_transform().transform(line.get_path().vertices)
                points = points[np.isfinite(points).all(axis=1)]
                if line.get_linestyle() not in ("None", "", " ") and len(points) > 1:
                    t = np.linspace(0, 1, 50)[:, None, None]
                    points = (points[:-1] * (1 - t) + points[1:] * t).reshape(-1, 2)
                inside = [p for p in points if ax.bbox.contains(*p) and box.contains(*p)]
                if inside:
                    found.append(f"line {line.get_label()}")
            for text in ax.texts:
                if text.get_text() and covers(text.get_window_extent(renderer), fig.bbox):
                    found.append(f"text {text.get_text()!r}")
    return found


def test_smoke_writes_report_markdown_json_and_figures(tour):
    out, steps, _ = tour
    assert [s.key for s in steps] == [
        "spatial",
        "rare",
        "normal",
        "depthwise",
        "pointwise",
        "mobilenet",
        "convert",
    ]
    names = [f.name for s in steps for f in s.figures]
    assert len(names) >= 10 and len(set(names)) == len(names)
    for name in names:
        assert (out / name).read_bytes()[:8] == PNG
    readme = (out / "README.md").read_text(encoding="utf-8")
    for step in steps:
        assert step.title in readme
    assert all(f"]({name})" in readme for name in names)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*names, "README.md", "report.html", "report.json"]
    )


def test_html_is_self_contained(tour):
    out, steps, _ = tour
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count('<img src="data:image/png;base64,') == sum(len(s.figures) for s in steps)
    # No resource outside the page: every src/href is a data URI or an anchor.
    for url in re.findall(r'(?:src|href)="([^"]*)"', page):
        assert url.startswith(("data:", "#")), url
    assert "default-src 'none'" in page
    assert "window.sepconvCost" in page
    for step in steps:
        assert f'id="{step.key}"' in page


def test_json_holds_every_step_and_figure(tour):
    out, steps, _ = tour
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert [d["key"] for d in data["steps"]] == [s.key for s in steps]
    assert [d["figures"] for d in data["steps"]] == [[f.name for f in s.figures] for s in steps]
    assert data["steps"][4]["numbers"]["separable_total"] == 53_952
    assert data["image"]["shape"] == [600, 512, 3]
    assert data["image"]["original_shape"] == [600, 512]


def test_spatial_step_counts_and_factors(tour):
    numbers = tour[2]["spatial"].numbers
    assert numbers["sobel_x"] == {"column": [1, 2, 1], "row": [-1, 0, 1]}
    assert numbers["per_pixel"] == {"direct": 9, "column_pass": 3, "row_pass": 3}
    h, w = numbers["image_shape"]
    assert (
        numbers["direct_multiplications"]
        == cost.filtering((3, 3), image_shape=(h, w)).multiplications
    )
    assert (
        numbers["separable_multiplications"]
        == cost.filtering((3, 3), rank=1, image_shape=(h, w)).multiplications
    )
    assert numbers["max_abs_difference"] == 0.0


def test_rare_step_ranks(tour):
    numbers = tour[2]["rare"].numbers
    counts = numbers["random_rank_counts"]
    assert counts["5×5, normal entries"] == {"5": numbers["random_trials"]}
    assert sum(counts["3×3, entries in {-1, 0, 1}"].values()) == numbers["random_trials"]
    ranks = numbers["ranks"]
    assert ranks["Gaussian σ=2"] == 1
    assert ranks["Laplacian of Gaussian σ=2"] == 2
    assert ranks["Gabor σ=3 θ=30°"] == 2
    assert ranks["random 15×15"] == 15
    log = numbers["log"]
    image = numbers["log"]["direct_multiplications"] // 225
    assert log["per_pixel"] == [
        cost.filtering((15, 15)).multiplications,
        cost.filtering((15, 15), rank=2).multiplications,
    ]
    assert log["terms_multiplications"] == cost.filtering((15, 15), rank=2).multiplications * image
    assert log["max_relative_difference"] < 1e-9
    assert factor.lowrank(kernels.get("log", sigma=2.0, size=15)).rank == log["rank"]


def test_worked_example_is_counted(tour):
    steps = tour[2]
    normal, depthwise, pointwise = (steps[k].numbers for k in ("normal", "depthwise", "pointwise"))
    c = cost.compare((12, 12, 3), 5, 256)
    dw, pw = (p.multiplications for p in c.depthwise_separable.parts)
    assert normal["one_kernel"] == {
        "output_shape": [8, 8, 1],
        "multiplications": 4_800,
        "per_output_value": 75,
    }
    assert normal["all_kernels"]["output_shape"] == [8, 8, 256]
    assert normal["all_kernels"]["multiplications"] == c.normal.multiplications == 1_228_800
    assert depthwise["output_shape"] == [8, 8, 3]
    assert depthwise["multiplications"] == dw == 4_800
    assert depthwise["per_channel_multiplications"] == [1_600] * 3
    assert pointwise["one_kernel"] == {"output_shape": [8, 8, 1], "multiplications": 192}
    assert pointwise["all_kernels"]["multiplications"] == pw == 49_152
    assert pointwise["by_operation"] == {"depthwise_conv2d": dw, "pointwise_conv2d": pw}
    assert pointwise["separable_total"] == c.depthwise_separable.multiplications == 53_952
    assert pointwise["rule"] == pytest.approx(1 / 256 + 1 / 25)
    assert pointwise["same"] == {
        "normal": 2_764_800,
        "depthwise": 10_800,
        "pointwise": 110_592,
        "separable": 121_392,
    }
    assert pointwise["separable_equals_two_steps"] == 0.0
    for k, points in pointwise["ratio_curve"].items():
        for c_out, ratio in points:
            assert ratio == pytest.approx(1 / c_out + 1 / int(k) ** 2)
    text = steps["pointwise"].text
    assert "53,952" in text and "1,228,800" in text


def test_mobilenet_step(tour):
    numbers = tour[2]["mobilenet"].numbers
    assert round(numbers["separable"]["mult_adds"] / 1e6) == 569
    assert round(numbers["full"]["mult_adds"] / 1e6, 1) == 4867.3
    layers = numbers["layers"]["separable"]
    assert sum(layer["mult_adds"] for layer in layers) == numbers["separable"]["mult_adds"]
    assert sum(layer["kind"] == "depthwise" for layer in layers) == 13
    assert sum(layer["kind"] == "pointwise" for layer in layers) == 13


def test_conversion_step(tour):
    numbers = tour[2]["convert"].numbers
    rows = numbers["rows"]
    errors = [r["weight_error"] for r in rows]
    assert errors == sorted(errors, reverse=True)
    assert errors[-1] < 1e-9 and rows[-1]["rank"] == numbers["layer_rank"] == 9
    assert rows[-1]["output_error"] == 0.0
    assert all(r["speedup"] > 1 for r in rows[:-1])
    assert numbers["impulse_check"] == 0.0
    h, w = numbers["image_shape"]
    k, filters = numbers["kernel_size"], numbers["filters"]
    assert (
        rows[0]["multiplications_before"]
        == cost.conv((h, w, 1), k, filters, bias=False).multiplications
    )
    # The layer was trained: the loss fell, and the network removes part of the noise.
    training, levels = numbers["training"], numbers["grey_levels"]
    assert training["last_loss"] < training["first_loss"] / 10
    assert levels["noisy"] == pytest.approx(255 * training["noise"], rel=0.05)
    assert levels["trained"] < 0.8 * levels["noisy"]
    assert rows[-1]["grey_levels"] == pytest.approx(levels["trained"], rel=1e-9)
    shown = next(r for r in rows if r["rank"] == numbers["shown_rank"])
    assert shown["output_error"] < 0.05 and shown["grey_levels"] < levels["noisy"]


def test_summaries_say_what_each_number_is(tour):
    """The one-line summaries name the kernel as a kernel (not a step of the arrow chain), what
    K is, that the conversion errors are relative, and the LoG kernel's size."""
    by_key = tour[2]
    normal = by_key["normal"].summary
    assert "12×12×3 input, 256 kernels of 5×5×3 → 8×8×256" in normal
    assert normal.count("→") == 1
    rare = by_key["rare"]
    log = rare.numbers["log"]
    assert f"15×15 LoG (σ=2) rank {log['rank']}: {log['per_pixel'][0]} → " in rare.summary
    convert = by_key["convert"]
    numbers = convert.numbers
    k, shown = numbers["kernel_size"], numbers["shown_rank"]
    assert (
        f"rank K = {shown}, i.e. each filter a sum of {shown} column × row pairs "
        f"({k}×1 times 1×{k}; the {shown} columns shared by all {numbers['filters']} filters)"
    ) in convert.summary
    # the LoG's size is said, and the library's default size for the same sigma
    default = kernels.get("log", sigma=2.0)
    size, rank = default.shape[0], factor.lowrank(default).rank
    said = f"make it {size}×{size}, rank {rank}) is {log['rank']} separable terms"
    assert said in " ".join(rare.paragraphs)
    assert "relative weight error" in convert.summary
    assert "relative output error" in convert.summary


def test_ratios_are_worded_right_near_1(tour):
    """A saving below 2 times is a percentage (6% more, never '1.1x more' for 1.06); a factor
    is at least 2 and never below 1 ('0.9x fewer')."""
    out, _, by_key = tour
    texts = [(out / name).read_text(encoding="utf-8") for name in ("README.md", "report.html")]
    texts[1] = re.sub(r"<script.*?</script>", "", texts[1], flags=re.S)
    factors = [
        float(m) for text in texts for m in re.findall(r"(\d+(?:\.\d+)?)x (?:fewer|more)", text)
    ]
    assert factors and min(factors) >= 2
    assert not [t for t in texts if re.search(r"\d× (?:fewer|more)", t)]  # one sign: 'x'
    rows = by_key["convert"].numbers["rows"]
    last = rows[-1]  # K = 9, exact: costs more than the 9×9 layer itself
    assert last["speedup"] < 1
    more = 100 * (1 / last["speedup"] - 1)
    assert f"{more:.0f}% more multiplications" in texts[0]
    for row in rows:
        if 1 < row["speedup"] < 2:
            assert f"{100 * (1 - 1 / row['speedup']):.0f}% fewer multiplications" in texts[0]


def test_conversion_is_repeatable_and_restores_threads():
    torch = pytest.importorskip("torch")
    from sepconv.tour import _convert_step, _steps

    image = _steps.gray(load_photo())[200:300, 150:250]
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        first, data = _convert_step.conversion(image)
        assert torch.get_num_threads() == 2
        second, _ = _convert_step.conversion(image)
    finally:
        torch.set_num_threads(before)
    assert first.numbers == second.numbers
    # The output error is the one convert reports: relative to the trained network's output.
    k = first.numbers["kernel_size"]
    y, y1 = data["denoised"], data["outputs"][1]
    assert first.numbers["rows"][0]["output_error"] == pytest.approx(
        np.linalg.norm(y1 - y) / np.linalg.norm(y), rel=1e-9
    )
    assert first.numbers["image_shape"] == [50, 50] and y.shape == (50 - k + 1, 50 - k + 1)


def test_own_image_and_sizes(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((900, 60, 3)) * 255).astype(np.uint8)).save(tmp_path / "a.png")
    steps = run(image=tmp_path / "a.png", figures=False)
    assert steps[0].numbers["image_shape"] == [640, 43]
    from sepconv.tour import describe_image

    assert "resized from 900×60 to 640×43 pixels" in describe_image(
        tmp_path / "a.png", (640, 43, 3), (900, 60)
    )
    assert "resized" not in describe_image(tmp_path / "a.png", (640, 43, 3), (640, 43))
    assert steps[4].numbers["separable_total"] == 53_952


def test_load_photo_is_not_modified():
    a = load_photo()
    b = load_photo()
    assert np.array_equal(a, b) and a.shape == (600, 512, 3)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p / "missing.png", "is not a file"),
        (lambda p: (p / "bad.png").write_text("not an image") and p / "bad.png", "cannot read"),
        (lambda p: p, "is not a file"),
    ],
)
def test_bad_image_is_one_line_and_nothing_written(tmp_path, capsys, make, message):
    image = make(tmp_path)
    out = tmp_path / "out"
    assert main(["tour", "--out", str(out), "--image", str(image)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "Traceback" not in err[0]
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_tiny_image_is_refused(tmp_path, capsys):
    from PIL import Image

    Image.new("RGB", (10, 10)).save(tmp_path / "tiny.png")
    assert main(["tour", "--image", str(tmp_path / "tiny.png")]) == 2
    assert "at least" in capsys.readouterr().err


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: (p / "file").write_text("x") and p / "file", "is not a folder"),
        (lambda p: (p / "file").write_text("x") and p / "file" / "tour", "is a file, not a folder"),
        pytest.param(
            lambda p: Path("/proc/tour"),
            "cannot write into '/proc' (its file system accepts no new files or folders)",
            marks=pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc"),
        ),
    ],
)
def test_bad_out_is_one_line(tmp_path, capsys, make, message):
    out = make(tmp_path)
    assert main(["tour", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_failure_leaves_out_as_it_was(tmp_path, monkeypatch):
    from sepconv.tour import _steps

    out = tmp_path / "tour"
    out.mkdir()
    (out / "report.html").write_text("old", encoding="utf-8")

    def broken(*args, **kwargs):
        raise RuntimeError("broken on purpose")

    monkeypatch.setattr(_steps, "network", broken)
    with pytest.raises(RuntimeError):
        run(out, figures=False, force=True)
    assert [p.name for p in out.iterdir()] == ["report.html"]
    assert (out / "report.html").read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tour"]
    # The parents a failed run created are removed again.
    with pytest.raises(RuntimeError):
        run(tmp_path / "new" / "docs" / "tour", figures=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tour"]


def test_foreign_files_are_refused_before_any_work(tmp_path, capsys, monkeypatch):
    import sepconv.tour

    (tmp_path / "README.md").write_text("my own notes", encoding="utf-8")
    monkeypatch.setattr(sepconv.tour, "load_photo", lambda: pytest.fail("work was started"))
    assert main(["tour", "--out", str(tmp_path), "--no-figures"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "README.md" in err[0] and "--force" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md"]
    assert (tmp_path / "README.md").read_text(encoding="utf-8") == "my own notes"


def test_an_earlier_tour_may_be_replaced_but_not_files_it_did_not_write(tmp_path):
    from sepconv.tour import check_out

    earlier = {"sepconv": "0.1.0", "steps": [{"figures": ["13-cost.png"]}]}
    (tmp_path / "report.json").write_text(json.dumps(earlier), encoding="utf-8")
    for name in ("README.md", "report.html", "13-cost.png"):
        (tmp_path / name).write_bytes(b"x")
    assert check_out(tmp_path) == tmp_path
    (tmp_path / "14-mobilenet.png").write_bytes(b"mine")
    with pytest.raises(ValueError, match=r"holds 14-mobilenet\.png, .*--force"):
        check_out(tmp_path)
    assert check_out(tmp_path, figures=False) == tmp_path  # no figures: not replaced
    assert check_out(tmp_path, force=True) == tmp_path
    # A report.json that is not a tour's does not vouch for the folder.
    (tmp_path / "report.json").write_text('{"steps": []}', encoding="utf-8")
    with pytest.raises(ValueError, match="README.md, report.html, report.json"):
        check_out(tmp_path, figures=False)


@pytest.mark.parametrize("figures", [True, False])
def test_final_message_names_what_was_written(tour, tmp_path, capsys, monkeypatch, figures):
    from PIL import Image

    import sepconv.tour

    Image.new("RGB", (40, 3000)).save(tmp_path / "tall.png")
    monkeypatch.setattr(sepconv.tour, "run", lambda *args, **kwargs: tour[1])
    argv = ["tour", "--out", str(tmp_path / "out"), "--image", str(tmp_path / "tall.png")]
    assert main(argv + ([] if figures else ["--no-figures"])) == 0
    captured = capsys.readouterr()
    assert "resized from 3000×40 to 640×24 pixels" in captured.err
    assert ("PNG" in captured.out) == figures


def _close(a, b):
    if isinstance(a, dict):
        return set(a) == set(b) and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b)) or (a < 1e-9 and b < 1e-9)
    return a == b


def test_committed_tour_is_what_the_command_writes(tour):
    """docs/tour, linked from the README, holds what a fresh `sepconv tour` computes."""
    folder = Path(__file__).resolve().parents[1] / "docs" / "tour"
    committed = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    fresh = json.loads((tour[0] / "report.json").read_text(encoding="utf-8"))
    assert [d["key"] for d in committed["steps"]] == [d["key"] for d in fresh["steps"]]
    for old, new in zip(committed["steps"], fresh["steps"]):
        assert _close(old["numbers"], new["numbers"]), old["key"]
        assert old["figures"] == new["figures"]
        for name in old["figures"]:
            assert (folder / name).exists()


def _ints(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _ints(v)
    elif isinstance(value, list):
        for v in value:
            yield from _ints(v)
    elif isinstance(value, int) and not isinstance(value, bool):
        yield value


def test_every_count_in_the_page_is_in_report_json(tour):
    """Counts printed with thousands separators in report.html are numbers of report.json."""
    out = tour[0]
    page = (out / "report.html").read_text(encoding="utf-8")
    page = re.sub(r'data:image/png;base64,[^"]*', "", page)
    page = re.sub(r"<script.*?</script>", "", page, flags=re.S)
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    known = set(_ints(data))
    pattern = r"(?<![\d.])\d{1,3}(?:,\d{3})+(?![\d.])"
    shown = {int(m.replace(",", "")) for m in re.findall(pattern, page)}
    assert len(shown) > 10
    assert sorted(shown - known) == []


def test_no_legend_covers_bars_lines_or_text(legend_overlaps):
    assert len(legend_overlaps) >= 10
    assert {title: found for title, found in legend_overlaps.items() if found} == {}


def _conversion_data(before, after, rows, image, noisy, trained):
    """The tour's conversion-figure data with synthetic images (each figure's test varies the
    kernels, the rows and the grey levels)."""
    return {
        "before": before,
        "after": after,
        "rows": rows,
        "shown": 2,
        "grey_levels": {"noisy": noisy, "trained": trained},
        "clean": image,
        "noisy": image,
        "denoised": image,
        "outputs": {1: image, 2: image},
    }


def test_conversion_legend_is_clear_of_the_bars():
    """Figure 16 with the tour's own numbers: its legend sat on the bars of K = 1 to 4."""
    pytest.importorskip("matplotlib")
    from sepconv.tour import _figures, _figures_model

    plt = _figures.setup()
    rng = np.random.default_rng(0)
    before = rng.standard_normal((16, 9, 9))
    rows = [
        {"rank": k, "weight_error": w, "output_error": o, "speedup": s, "grey_levels": g}
        for k, w, o, s, g in [
            (1, 0.58, 0.35, 8.5, 37.4),
            (2, 0.25, 0.031, 4.2, 15.4),
            (3, 0.21, 0.027, 2.8, 15.3),
            (4, 0.16, 0.014, 2.1, 15.2),
            (6, 0.12, 0.010, 1.4, 15.2),
            (9, 0.0, 0.0, 0.94, 15.2),
        ]
    ]
    image = rng.random((60, 60)) - 0.5
    data = _conversion_data(before, {1: before * 0.9, 2: before.copy()}, rows, image, 25.4, 15.2)
    figures = dict(_figures_model.draw_conversion(plt, None, data))
    try:
        assert _legend_overlaps(figures["16-convert-error.png"]) == []
    finally:
        for figure in figures.values():
            plt.close(figure)


def test_a_converted_filter_that_vanishes_is_marked_not_left_blank():
    pytest.importorskip("matplotlib")
    from sepconv.tour import _figures, _figures_model

    plt = _figures.setup()
    rng = np.random.default_rng(0)
    before = rng.standard_normal((4, 5, 5))
    after = {1: before * 0.9, 2: before.copy()}
    after[1][2] = before[2] * 0.01  # its part in the first term is about 0
    rows = [
        {"rank": 1, "weight_error": 0.5, "output_error": 0.3, "speedup": 2.0, "grey_levels": 20.0},
        {"rank": 2, "weight_error": 0.0, "output_error": 0.0, "speedup": 1.2, "grey_levels": 15.0},
    ]
    image = rng.random((60, 60)) - 0.5
    data = _conversion_data(before, after, rows, image, 25.0, 15.0)
    figures = dict(_figures_model.draw_conversion(plt, None, data))
    fig = figures["15-convert-filters.png"]
    texts = [(i, t.get_text()) for i, ax in enumerate(fig.axes) for t in ax.texts]
    assert [i for i, text in texts if text == "≈ 0"] == [1 * 4 + 2]  # row K = 1, filter 3
    assert "≈ 0" in fig._supxlabel.get_text()
    for figure in figures.values():
        plt.close(figure)
