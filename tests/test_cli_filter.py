"""``sepconv filter``: image files in and out, atomic writes, one-line errors."""

from __future__ import annotations

import os
import re

import cv2
import numpy as np
import pytest
from skimage import data

import sepconv
from sepconv.cli import main


def run_cli(argv, capsys):
    status = main(["filter", *map(str, argv)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def camera_png(tmp_path):
    path = tmp_path / "camera.png"
    cv2.imwrite(str(path), data.camera())
    return path


def test_smoke_grey_png(camera_png, tmp_path, capsys):
    out = tmp_path / "blurred.png"
    status, stdout, err = run_cli([camera_png, out, "--kernel", "gaussian:sigma=2"], capsys)
    assert (status, stdout, err) == (0, "", "")
    written = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    kernel = sepconv.kernels.parse("gaussian:sigma=2")
    np.testing.assert_array_equal(written, sepconv.correlate(data.camera(), kernel))
    assert written.dtype == np.uint8 and written.shape == data.camera().shape


def test_colour_per_channel_and_explain(tmp_path, capsys):
    source = tmp_path / "astronaut.png"
    cv2.imwrite(str(source), data.astronaut())
    out = tmp_path / "edges.png"
    status, stdout, _ = run_cli([source, out, "--kernel", "log:sigma=2", "--explain",
                                 "--mode", "nearest"], capsys)
    assert status == 0
    assert "rank 2" in stdout and "method: lowrank (auto)" in stdout and "why:" in stdout
    written = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    kernel = sepconv.kernels.parse("log:sigma=2")
    image = cv2.imread(str(source), cv2.IMREAD_UNCHANGED)
    for c in range(3):
        want = sepconv.correlate(image[:, :, c], kernel, mode="nearest")
        np.testing.assert_array_equal(written[:, :, c], want)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_sixteen_bit_kept(tmp_path, capsys, suffix):
    image = (data.coins().astype(np.uint16) * 257)
    source = tmp_path / f"coins16{suffix}"
    cv2.imwrite(str(source), image)
    out = tmp_path / f"out{suffix}"
    status, _, _ = run_cli([source, out, "--kernel", "1 2 1; 2 4 2; 1 2 1", "--convolve"],
                           capsys)
    assert status == 0
    written = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert written.dtype == np.uint16
    want = sepconv.convolve(image, np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]))
    np.testing.assert_array_equal(written, want)
    assert written.max() == 65535  # saturated, not wrapped


def test_jpeg(camera_png, tmp_path, capsys):
    out = tmp_path / "out.jpg"
    status, _, _ = run_cli([camera_png, out, "--kernel", "box:size=5", "--method", "direct"],
                           capsys)
    assert status == 0 and cv2.imread(str(out)).shape[:2] == data.camera().shape


def _listing(folder):
    return sorted(os.listdir(folder))


def test_refuses_to_overwrite_input(camera_png, capsys):
    before = camera_png.read_bytes()
    status, _, err = run_cli([camera_png, camera_png, "--kernel", "sobel-x"], capsys)
    assert status == 2 and err.count("\n") == 1
    assert "is the input file; pass --force" in err
    assert camera_png.read_bytes() == before
    status, _, err = run_cli([camera_png, camera_png, "--kernel", "sobel-x", "--force"], capsys)
    assert status == 0 and camera_png.read_bytes() != before


@pytest.mark.parametrize("case, message", [
    ("missing input", "input image .* does not exist"),
    ("unreadable input", "cannot decode"),
    ("unsupported input", "unsupported format '.bmp'"),
    ("unsupported output", "unsupported format '.gif'"),
    ("missing folder", "output folder .* does not exist"),
    ("bad kernel", "sepconv filter: error:"),
    ("nan kernel", "`kernel` must be finite"),
    ("cval with reflect", "`cval` is only used with mode='constant'"),
    ("separable rank 2", "`method` 'separable' needs a kernel of rank 1"),
    ("negative tol", "`tol` must be >= 0.0"),
])
def test_exception(camera_png, tmp_path, capsys, case, message):
    out = tmp_path / "out.png"
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"not an image at all")
    argv = {
        "missing input": [tmp_path / "nope.png", out, "--kernel", "sobel-x"],
        "unreadable input": [corrupt, out, "--kernel", "sobel-x"],
        "unsupported input": [tmp_path / "a.bmp", out, "--kernel", "sobel-x"],
        "unsupported output": [camera_png, tmp_path / "out.gif", "--kernel", "sobel-x"],
        "missing folder": [camera_png, tmp_path / "no" / "out.png", "--kernel", "sobel-x"],
        "bad kernel": [camera_png, out, "--kernel", "no-such-kernel"],
        "nan kernel": [camera_png, out, "--kernel", "1 nan; 2 3"],
        "cval with reflect": [camera_png, out, "--kernel", "sobel-x", "--cval", "2"],
        "separable rank 2": [camera_png, out, "--kernel", "log:sigma=2", "--method",
                             "separable"],
        "negative tol": [camera_png, out, "--kernel", "sobel-x", "--tol", "-1"],
    }[case]
    listing = _listing(tmp_path)
    status, stdout, err = run_cli(argv, capsys)
    assert status == 2
    assert err.count("\n") == 1 and err.startswith("sepconv filter: error:")
    assert re.search(message, err), err
    assert _listing(tmp_path) == listing  # no output, no temporary file left behind
