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


def _tiff_input(path, mode, dtype, rng):
    """A TIFF of ``mode`` and ``dtype`` written by tifffile (RGB order), and its planes as
    sepconv holds them (colour in OpenCV's blue-green-red order, alpha apart)."""
    import tifffile

    shape = (13, 17) if mode.startswith("L") else (13, 17, 3)
    top = 1.0 if dtype == "float32" else np.iinfo(dtype).max
    colour = (rng.random(shape) * top).astype(dtype)
    alpha = (rng.random(shape[:2]) * top).astype(dtype) if mode.endswith("A") else None
    pixels = colour if alpha is None else np.dstack([colour, alpha])
    tifffile.imwrite(
        path,
        pixels,
        photometric="minisblack" if mode.startswith("L") else "rgb",
        extrasamples=None if alpha is None else ["unassalpha"],
    )
    return (colour if colour.ndim == 2 else colour[:, :, ::-1]), alpha


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA"])
def test_every_tiff_layout_written_reads_back(tmp_path, capsys, mode, dtype):
    import tifffile
    from scipy import ndimage

    source, first, second = (tmp_path / n for n in ("in.tif", "first.tif", "second.tif"))
    colour, alpha = _tiff_input(source, mode, dtype, np.random.default_rng(7))
    kernel = "1 2 1; 2 4 2; 1 2 1"
    status, _, err = run_cli([source, first, "--kernel", kernel, "--mode", "nearest"], capsys)
    assert (status, err) == (0, "")

    # The file's tags say its layout, as the TIFF specification (and tifffile, Pillow) read it.
    with tifffile.TiffFile(first) as tif:
        page = tif.pages[0]
        assert page.photometric == (
            tifffile.PHOTOMETRIC.MINISBLACK if mode.startswith("L") else tifffile.PHOTOMETRIC.RGB
        )
        assert page.samplesperpixel == len(mode)
        assert page.extrasamples == (
            (tifffile.EXTRASAMPLE.UNASSALPHA,) if alpha is not None else ()
        )
        written = page.asarray()
    assert written.dtype == np.dtype(dtype)
    if dtype == "uint8":  # Pillow opens 8-bit files of every layout
        with Image.open(first) as image:
            assert image.mode == mode
    planes = written if written.ndim == 2 else np.moveaxis(written, -1, 0)
    if alpha is not None:
        np.testing.assert_array_equal(planes[-1], alpha)  # alpha copied unchanged
        planes = planes[:-1]
    weights = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], float)
    inputs = [colour] if colour.ndim == 2 else [colour[:, :, c] for c in (2, 1, 0)]  # RGB
    for got, plane in zip(np.reshape(planes, (-1, 13, 17)), inputs):
        exact = ndimage.correlate(plane.astype(np.float64), weights, mode="nearest")
        if dtype == "float32":
            np.testing.assert_allclose(got, exact, rtol=1e-5)
        else:
            top = np.iinfo(dtype).max
            np.testing.assert_allclose(got, np.clip(exact, 0, top), atol=1)  # rounding ties

    # What sepconv wrote, sepconv reads: filtering it with the identity kernel gives it back.
    status, _, err = run_cli([first, second, "--kernel", "0 0 0; 0 1 0; 0 0 0"], capsys)
    assert (status, err) == (0, "")
    np.testing.assert_array_equal(tifffile.imread(second), written)


def test_float_tiff_to_8_bits(tmp_path, capsys):
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), data.astronaut()[::4, ::4, ::-1])
    edges, jpeg = tmp_path / "e_f.tif", tmp_path / "out.jpg"
    assert (
        run_cli([photo, edges, "--kernel", "log:sigma=2", "--output-dtype", "float32"], capsys)[0]
        == 0
    )
    status, _, err = run_cli([edges, jpeg, "--kernel", "box:size=3"], capsys)
    assert status == 2 and err.count("\n") == 1 and not jpeg.exists()
    assert "holds float32 pixels" in err and "--output-dtype uint8" in err
    status, _, err = run_cli(
        [edges, jpeg, "--kernel", "box:size=3", "--output-dtype", "uint8", "--abs", "--rescale"],
        capsys,
    )
    assert (status, err) == (0, "")
    assert cv2.imread(str(jpeg)).shape == data.astronaut()[::4, ::4].shape


@pytest.mark.parametrize(
    ("name", "source_mode", "options", "message"),
    [
        ("out.png", "LA16", [], "grey+alpha PNG files are written with 8 bits only, got uint16"),
        ("out.jpg", "RGBA", [], "JPEG files cannot store the input's alpha channel"),
        ("out.jpg", "L", ["--output-dtype", "uint16"], ".jpg files cannot store uint16 images"),
    ],
)
def test_layout_refused_before_filtering(
    tmp_path, capsys, monkeypatch, name, source_mode, options, message
):
    import tifffile

    source = tmp_path / "in.tif"
    if source_mode == "LA16":
        tifffile.imwrite(
            source,
            np.full((8, 9, 2), 300, np.uint16),
            photometric="minisblack",
            extrasamples=["unassalpha"],
        )
    else:
        _tiff_input(source, source_mode, "uint8", np.random.default_rng(0))

    def no_filtering(*args, **kwargs):
        raise AssertionError("filtered before refusing the output's layout")

    monkeypatch.setattr(sepconv, "correlate", no_filtering)
    listing = _listing(tmp_path)
    status, _, err = run_cli([source, tmp_path / name, "--kernel", "box:size=3", *options], capsys)
    assert status == 2 and err.count("\n") == 1
    assert message in err, err
    assert _listing(tmp_path) == listing


def test_separable_error_names_the_default_tolerance(camera_png, tmp_path, capsys):
    status, _, err = run_cli(
        [camera_png, tmp_path / "o.png", "--kernel", "disk:radius=3", "--method", "separable"],
        capsys,
    )
    assert status == 2 and "None" not in err
    tol = sepconv.factor.default_tol(sepconv.kernels.parse("disk:radius=3").astype(np.float64))
    assert f"within the default --tol {tol:.3g}" in err, err
    status, _, err = run_cli(
        [
            camera_png,
            tmp_path / "o.png",
            "--kernel",
            "disk:radius=3",
            "--method",
            "separable",
            "--tol",
            "0.01",
        ],
        capsys,
    )
    assert status == 2 and "within --tol 0.01;" in err


@pytest.mark.parametrize(
    ("kind", "shown_as"),
    [
        ("P", "RGB"),
        ("1", "L"),
        ("CMYK", "RGB"),
        ("LA lzw", "LA"),
        ("RGB lzw", "RGB"),
        ("RGB jpeg", "RGB"),
    ],
)
def test_other_tiffs_read_as_they_display(tmp_path, capsys, kind, shown_as):
    """TIFFs sepconv does not write (palette, 1-bit, CMYK, compressions that need imagecodecs
    in tifffile) are read as Pillow displays them."""
    source, out = tmp_path / "in.tif", tmp_path / "out.png"
    colour = data.astronaut()[::16, ::16]
    mode, _, compression = kind.partition(" ")
    image = Image.fromarray(colour)
    if mode == "LA":
        image = Image.fromarray(np.dstack([colour[:, :, 0], colour[:, :, 1]]), "LA")
    elif mode != "RGB":
        image = image.convert(mode)
    image.save(source, compression={"lzw": "tiff_lzw", "jpeg": "jpeg"}.get(compression))
    status, _, err = run_cli([source, out, "--kernel", "0 0 0; 0 1 0; 0 0 0"], capsys)
    assert (status, err) == (0, "")
    with Image.open(source) as before, Image.open(out) as after:
        assert after.mode == shown_as
        expected = np.asarray(before.convert(shown_as))
        np.testing.assert_allclose(np.asarray(after), expected, atol=1 if mode == "CMYK" else 0)
