"""``sepconv filter``: image files in and out, atomic writes, one-line errors."""

from __future__ import annotations

import os
import re

import cv2
import numpy as np
import pytest
from PIL import Image
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
    status, stdout, _ = run_cli(
        [source, out, "--kernel", "log:sigma=2", "--explain", "--mode", "nearest"], capsys
    )
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
    image = data.coins().astype(np.uint16) * 257
    source = tmp_path / f"coins16{suffix}"
    cv2.imwrite(str(source), image)
    out = tmp_path / f"out{suffix}"
    status, _, _ = run_cli([source, out, "--kernel", "1 2 1; 2 4 2; 1 2 1", "--convolve"], capsys)
    assert status == 0
    written = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert written.dtype == np.uint16
    want = sepconv.convolve(image, np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]))
    np.testing.assert_array_equal(written, want)
    assert written.max() == 65535  # saturated, not wrapped


def test_jpeg(camera_png, tmp_path, capsys):
    out = tmp_path / "out.jpg"
    status, _, _ = run_cli(
        [camera_png, out, "--kernel", "box:size=5", "--method", "direct"], capsys
    )
    assert status == 0 and cv2.imread(str(out)).shape[:2] == data.camera().shape


def _listing(folder):
    return sorted(os.listdir(folder))


@pytest.mark.parametrize("same_as_input", [True, False])
def test_force_overwrites_an_existing_output_as_convert_does(
    camera_png, tmp_path, capsys, same_as_input
):
    target = camera_png if same_as_input else tmp_path / "existing.png"
    if not same_as_input:
        target.write_bytes(b"keep me")
    before = target.read_bytes()
    status, _, err = run_cli([camera_png, target, "--kernel", "sobel-x"], capsys)
    assert status == 2 and err.count("\n") == 1
    assert f"OUTPUT {str(target)!r} exists; pass --force to overwrite it" in err
    assert target.read_bytes() == before
    status, _, err = run_cli([camera_png, target, "--kernel", "sobel-x", "--force"], capsys)
    assert status == 0 and target.read_bytes() != before


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing input", "INPUT '.*nope.png' does not exist"),
        ("unreadable input", "INPUT '.*corrupt.png' is not an image file"),
        ("unsupported input", "unsupported format '.bmp'"),
        ("unsupported output", "unsupported format '.gif'"),
        ("missing folder", "the folder of OUTPUT '.*out.png' does not exist"),
        ("bad kernel", "sepconv filter: error:"),
        ("nan kernel", "--kernel must be finite"),
        ("cval with reflect", "--cval is only used with --mode constant"),
        ("separable rank 2", "--method 'separable' needs a kernel of rank 1"),
        ("negative tol", "--tol must be >= 0.0"),
        ("float32 into png", "--output-dtype float32 needs a .tif OUTPUT"),
        ("alpha into jpeg", "JPEG files cannot store the input's alpha channel"),
    ],
)
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
        "separable rank 2": [camera_png, out, "--kernel", "log:sigma=2", "--method", "separable"],
        "negative tol": [camera_png, out, "--kernel", "sobel-x", "--tol", "-1"],
        "float32 into png": [camera_png, out, "--kernel", "sobel-x", "--output-dtype", "float32"],
        "alpha into jpeg": [_write_rgba(tmp_path), tmp_path / "out.jpg", "--kernel", "box"],
    }[case]
    listing = _listing(tmp_path)
    status, stdout, err = run_cli(argv, capsys)
    assert status == 2
    assert err.count("\n") == 1 and err.startswith("sepconv filter: error:")
    assert re.search(message, err), err
    assert "`" not in err  # argument names as typed on the command line, not the library's
    assert _listing(tmp_path) == listing  # no output, no temporary file left behind


def _write_rgba(folder):
    path = folder / "rgba.png"
    if not path.exists():
        rgb = data.astronaut()[:64, :64]
        Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 200, np.uint8)])).save(path)
    return path


def _layouts(folder):
    """One file of every layout ``sepconv filter`` keeps, written by Pillow or OpenCV."""
    grey = data.camera()[::8, ::8]
    colour = data.astronaut()[::8, ::8]
    alpha = np.linspace(0, 255, grey.size).reshape(grey.shape).astype(np.uint8)
    files = {}
    for mode, pixels in [
        ("L", grey),
        ("LA", np.dstack([grey, alpha])),
        ("RGB", colour),
        ("RGBA", np.dstack([colour, alpha])),
    ]:
        files[mode] = folder / f"{mode}.png"
        Image.fromarray(pixels).save(files[mode])
    files["L16"] = folder / "L16.png"
    cv2.imwrite(str(files["L16"]), grey.astype(np.uint16) * 257)
    files["RGB16"] = folder / "RGB16.png"
    cv2.imwrite(str(files["RGB16"]), colour.astype(np.uint16) * 257)
    files["RGBA16"] = folder / "RGBA16.tif"
    cv2.imwrite(str(files["RGBA16"]), np.dstack([colour, alpha]).astype(np.uint16) * 257)
    files["F"] = folder / "F.tif"
    cv2.imwrite(str(files["F"]), grey.astype(np.float32) / 255)
    return files


@pytest.mark.parametrize("kind", ["L", "LA", "RGB", "RGBA", "L16", "RGB16", "RGBA16", "F"])
def test_layout_of_every_input_kind_is_kept(tmp_path, capsys, kind):
    source = _layouts(tmp_path)[kind]
    out = tmp_path / f"out{source.suffix}"
    status, _, err = run_cli([source, out, "--kernel", "gaussian:sigma=1.5"], capsys)
    assert (status, err) == (0, "")
    with Image.open(source) as a, Image.open(out) as b:
        assert b.mode == a.mode and b.size == a.size
    before = cv2.imread(str(source), cv2.IMREAD_UNCHANGED)
    after = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert after.dtype == before.dtype and after.shape == before.shape
    kernel = sepconv.kernels.parse("gaussian:sigma=1.5")
    channels = [before] if before.ndim == 2 else [before[:, :, c] for c in range(3)]
    for c, channel in enumerate(channels):
        got = after if after.ndim == 2 else after[:, :, c]
        np.testing.assert_array_equal(got, sepconv.correlate(channel, kernel))
    if before.ndim == 3 and before.shape[2] == 4:  # alpha is copied unchanged
        np.testing.assert_array_equal(after[:, :, 3], before[:, :, 3])


def test_derivative_kernel_display_options(camera_png, tmp_path, capsys):
    kernel = sepconv.kernels.parse("log:sigma=2")
    exact = sepconv.correlate(data.camera().astype(np.float32), kernel)
    assert exact.min() < -10 and 0 < exact.max() < 64  # signed, small: 8 bits keep little
    outputs = {}
    for name, options in [
        ("plain.png", []),
        ("abs.png", ["--abs"]),
        ("rescale.png", ["--rescale"]),
        ("both.png", ["--abs", "--rescale"]),
        ("float.tif", ["--output-dtype", "float32"]),
    ]:
        status, _, err = run_cli(
            [camera_png, tmp_path / name, "--kernel", "log:sigma=2", *options], capsys
        )
        assert (status, err) == (0, ""), err
        outputs[name] = cv2.imread(str(tmp_path / name), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(outputs["plain.png"], sepconv.correlate(data.camera(), kernel))
    np.testing.assert_array_equal(
        outputs["abs.png"], np.clip(np.rint(np.abs(exact)), 0, 255).astype(np.uint8)
    )
    stretched = (exact - exact.min()) * (255 / (exact.max() - exact.min()))
    np.testing.assert_allclose(outputs["rescale.png"], np.rint(stretched), atol=1)
    assert outputs["rescale.png"].min() == 0 and outputs["rescale.png"].max() == 255
    assert outputs["both.png"].max() == 255
    assert outputs["float.tif"].dtype == np.float32
    np.testing.assert_allclose(outputs["float.tif"], exact, rtol=1e-5, atol=1e-4)
