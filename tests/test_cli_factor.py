"""``sepconv factor``: text and JSON output, the plot, and one-line errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from sepconv import cost, kernels
from sepconv.cli import main


def run_cli(argv, capsys):
    status = main(["factor", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_smoke_sobel(capsys):
    status, out, err = run_cli(["sobel-x"], capsys)
    assert status == 0 and err == ""
    assert "rank 1: separable" in out
    assert "column  [1, 2, 1]" in out
    assert "row     [-1, 0, 1]" in out
    assert "direct 9, separable 6 (33% fewer)" in out
    assert "reconstruction error: 0 (relative 0)" in out
    assert "vanishing" not in out


def test_literal_gaussian_kernel(capsys):
    status, out, _ = run_cli(["1 2 1; 2 4 2; 1 2 1"], capsys)
    assert status == 0
    assert "column  [1, 2, 1]" in out and "row     [1, 2, 1]" in out


def test_random_kernel_explains_why(capsys):
    kernel = np.random.default_rng(0).standard_normal((3, 3)).round(3)
    text = "; ".join(" ".join(str(v) for v in row) for row in kernel)
    status, out, _ = run_cli([text], capsys)
    assert status == 0
    assert "rank 3: not separable" in out
    text = " ".join(out.split())
    assert "vanishing subset" in text and "measure zero" in text
    assert "This 3x3 kernel has 9 free entries, a separable one only 5" in text
    assert "term 3:" in out
    assert "direct 9, 3 separable terms 18 (2.00x more: filter directly)" in out
    # rank 2: 12 multiplications for 9 are 33% more, not "1.33x more" (one wording rule)
    assert re.search(r"^2 .* 12 +33% more: filter directly$", out, re.M), out


def test_low_rank_kernel(capsys):
    status, out, _ = run_cli(["gabor:theta=0.6,sigma=3,wavelength=6"], capsys)
    assert status == 0
    assert "rank 2: not separable" in out
    assert "low rank: 2 separable terms reproduce this 15x15 kernel" in " ".join(out.split())
    assert "factors: the closed form the kernel is defined by" in out
    direct, factored = cost.filtering((15, 15)), cost.filtering((15, 15), rank=2)
    assert f"direct {direct.multiplications}, 2 separable terms {factored.multiplications}" in out
    assert "(3.75x fewer)" in out


def test_closed_form_terms_are_shown_for_named_kernels(capsys):
    status, out, _ = run_cli(["log:sigma=1,truncate=2"], capsys)
    assert status == 0 and "closed form" in out
    g = kernels.gaussian(1.0, truncate=2.0, ndim=1)
    assert f"row     [{', '.join(f'{v:.6g}' for v in g)}]" in out
    status, out, _ = run_cli(["0 1 0; 1 -4 1; 0 1 0"], capsys)  # numbers: SVD terms
    assert status == 0 and "closed form" not in out and "rank 2" in out


def test_rank_and_tolerance_options(capsys):
    status, out, _ = run_cli(["disk:radius=4", "--rank", "1"], capsys)
    assert status == 0 and "above the tolerance" in out and "term 2" not in out
    status, out, _ = run_cli(["disk:radius=4", "--rtol", "0.5"], capsys)
    assert status == 0 and "rank 1: separable" in out
    status, out, _ = run_cli(["log:sigma=2", "--tol", "1e-3"], capsys)
    assert status == 0


def test_zero_and_1d_kernels(capsys):
    status, out, _ = run_cli(["0 0; 0 0"], capsys)
    assert status == 0 and "rank 0: the zero kernel" in out
    status, out, _ = run_cli(["1 2 3"], capsys)
    assert status == 0 and "rank 1: separable" in out and "direct 3, separable 3 (the same)" in out


def test_json(capsys):
    status, out, _ = run_cli(["log:sigma=1.4", "--json"], capsys)
    assert status == 0
    data = json.loads(out)
    kernel = kernels.laplacian_of_gaussian(1.4)
    assert data["rank"] == 2 and data["separable"] is False and data["is_exact"]
    assert data["shape"] == [13, 13]
    assert np.allclose(data["singular_values"], np.linalg.svd(kernel, compute_uv=False))
    assert data["multiplications_per_output"] == {"direct": 169, "factored": 52}
    terms = [[np.array(f) for f in term] for term in data["terms"]]
    assert np.allclose(sum(np.outer(c, r) for c, r in terms), kernel, atol=1e-15)
    assert data["error_by_rank"][0]["multiplications"] == 26
    assert data["best_separable_relative_error"] > 0.1


def test_3d_kernel(capsys):
    status, out, _ = run_cli(["gaussian:sigma=1,ndim=3,truncate=2"], capsys)
    assert status == 0
    assert "rank 1: separable" in out and "z (planes)" in out
    assert "direct 125, separable 15 (8.33x fewer)" in out


def test_kernel_file(tmp_path, capsys):
    np.save(tmp_path / "k.npy", np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]))
    status, out, _ = run_cli([str(tmp_path / "k.npy")], capsys)
    assert status == 0 and "column  [1, 4, 6, 4, 1]" in out


def test_float32_file_is_judged_at_float32_precision(tmp_path, capsys):
    """A Gaussian saved as float32 is separable: its rounding is not rank."""
    np.save(tmp_path / "g.npy", kernels.gaussian(1.5).astype(np.float32))
    status, out, _ = run_cli([str(tmp_path / "g.npy")], capsys)
    assert status == 0 and "rank 1: separable" in out
    assert "singular values: [0.188067, 0, 0, 0, 0," in out


@pytest.mark.parametrize("suffix", ["png", "svg"])
def test_plot(tmp_path, capsys, suffix):
    path = tmp_path / f"gabor.{suffix}"
    status, out, _ = run_cli(["gabor:theta=0.6", "--plot", str(path)], capsys)
    assert status == 0 and f"wrote {path}" in out
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG") if suffix == "png" else b"<svg" in data[:2000]
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left
    if suffix != "png":
        return
    for kernel in ("sobel-x", "1 2 3", "log:ndim=3,truncate=2"):
        target = tmp_path / "more.png"
        assert run_cli([kernel, "--plot", str(target)], capsys)[0] == 0
        assert target.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["no-such-kernel"], "unknown kernel 'no-such-kernel'"),
        (["1 2; 3"], "ragged"),
        (["1 nan"], "kernel must be finite, got nan"),
        ([""], "must not be empty"),
        (["missing.npy"], "no such file"),
        (["gaussian:colour=2"], "unknown parameter colour"),
        (["sobel-x", "--rank", "4"], "--rank must be between 1 and 3"),
        (["sobel-x", "--rank", "0"], "expected a positive integer"),
        (["sobel-x", "--tol", "-1"], "--tol must be a finite number >= 0"),
        (["sobel-x", "--tol", "1", "--rtol", "1"], "not allowed with argument"),
        (["sobel-x", "--plot", "out.jpg"], "error: --plot must end in .png, .svg or .pdf"),
    ],
)
def test_exception(argv, match, capsys):
    status, out, err = run_cli(argv, capsys)
    assert status == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert match in err


def test_exception_plot_leaves_no_file(tmp_path, capsys):
    target = tmp_path / "missing-folder" / "k.png"
    status, _, err = run_cli(["sobel-x", "--plot", str(target)], capsys)
    assert status == 2 and "does not exist" in err
    assert not target.parent.exists()
    # a bad kernel with a good plot path: no file either
    good = tmp_path / "k.png"
    status, _, _ = run_cli(["1 2; 3", "--plot", str(good)], capsys)
    assert status == 2 and list(tmp_path.iterdir()) == []


def test_help_lists_examples(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["factor", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "sepconv factor sobel-x" in out and "--plot" in out


# --------------------------------------------------------------------------------------------
# output independent of the BLAS kernel, the thread count and the CPU

_BLAS_SCRIPT = """
import contextlib, io, sys
from sepconv.cli import main
for argv in [a.split("|") for a in sys.argv[1:]]:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        status = main(["factor", *argv])
    print(f"=== {argv} -> {status}")
    print(buffer.getvalue())
"""

# the BLAS kernels OpenBLAS picks between on x86-64 machines (unknown names fall back)
_BLAS_SETTINGS = [
    {},
    {"OPENBLAS_CORETYPE": "Haswell"},
    {"OPENBLAS_CORETYPE": "Sandybridge", "OPENBLAS_NUM_THREADS": "1"},
]


def _run_with(setting: dict[str, str], argv: list[str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENBLAS_")}
    return subprocess.run(
        [sys.executable, "-c", _BLAS_SCRIPT, *argv],
        capture_output=True,
        text=True,
        timeout=300,
        env={**env, **setting},
    )


def test_output_does_not_depend_on_blas(tmp_path):
    """Text and JSON of ``sepconv factor`` are the same whichever BLAS kernel runs the SVD:
    rounding noise is printed as 0 and JSON floats are rounded to 10 significant digits."""
    rng = np.random.default_rng(7)
    np.save(tmp_path / "random.npy", rng.standard_normal((5, 5)))
    np.save(tmp_path / "g32.npy", kernels.gaussian(1.5).astype(np.float32))
    kernels_ = [
        "sobel-x",
        "gaussian",
        "log:sigma=2",
        "gabor:theta=0.6,sigma=3,wavelength=6",
        "box",
        "disk:radius=4",
        str(tmp_path / "random.npy"),
        "1 2 1; 2 4 2; 1 2 1",
        "sobel-z",
        "log:sigma=1,ndim=3,truncate=3",
        "sobel-x|--rank|3",
        "motion:length=7,angle=30",
        "disk:radius=6|--rank|4",
        str(tmp_path / "g32.npy"),
    ]
    argv = [*kernels_, *(k + "|--json" for k in kernels_)]
    outputs = []
    for setting in _BLAS_SETTINGS:
        result = _run_with(setting, argv)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
    assert outputs[0].count("-> 0") == len(argv)
    assert "singular values: [3.4641, 0, 0]" in outputs[0]
    for other in outputs[1:]:
        assert other == outputs[0]


def test_files_that_are_not_kernels(tmp_path, capsys):
    """A picture, prose, or a damaged .npy: one line naming the file and the accepted formats."""
    photo = tmp_path / "photo.png"
    from PIL import Image

    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(photo)
    prose = tmp_path / "notes.txt"
    prose.write_text("# a comment\nhello world\n1 2 3\n")
    fake = tmp_path / "fake.npy"
    fake.write_text("1 2 1\n")
    pickled = tmp_path / "object.npy"
    np.save(pickled, np.array([{}], dtype=object), allow_pickle=True)
    cases = {
        photo: "binary data, not text",
        prose: "line 2 'hello world' is not a row of numbers",
        fake: "no .npy header",
        pickled: "it holds Python objects, which are not unpickled",
    }
    for path, why in cases.items():
        status, out, err = run_cli([str(path)], capsys)
        assert status == 2 and out == ""
        assert err.count("\n") == 1
        assert f"'{path}', which is not a kernel file: {why};" in err, err
        assert "accepted: .npy" in err and "text (.txt, .csv)" in err
        assert "codec" not in err and "utf-8" not in err
    nested = tmp_path / "nested.txt"
    nested.write_text("[[1, 2, 1],\n [2, 4, 2]]\n")
    status, out, _ = run_cli([str(nested)], capsys)
    assert status == 0 and "2x3" in out
