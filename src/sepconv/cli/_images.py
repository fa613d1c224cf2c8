"""Image files for ``sepconv filter``: read and write PNG, JPEG and TIFF, keeping their layout.

A file's channel layout is kept from input to output: grey (``L``), grey with alpha (``LA``),
colour (``RGB``) and colour with alpha (``RGBA``), at 8 or 16 bits, and 32-bit float TIFF.
Every layout written reads back the same (grey+alpha PNG files hold 8 bits only; the others are
refused by :func:`check_writable` before any work).

PNG and JPEG: Pillow reads the file's header (it knows grey+alpha from colour+alpha, which
OpenCV does not: ``cv2.IMREAD_UNCHANGED`` returns a grey+alpha PNG as four channels); OpenCV
decodes and encodes the pixels (Pillow reads a 16-bit colour PNG as 8 bits). Grey+alpha PNG
images are encoded by Pillow, since OpenCV writes one, three or four channels only.

TIFF: tifffile reads and writes them. Pillow cannot open colour float TIFFs, OpenCV cannot read
grey+alpha TIFFs and writes four-channel TIFFs without the ExtraSamples tag that marks the
fourth channel as alpha; tifffile writes each layout with its Photometric and ExtraSamples tags
(alpha as unassociated alpha, zlib compression) and reads the layout from the same tags. TIFF
files tifffile cannot decode (LZW or JPEG compression without the imagecodecs package) or does
not return as display colours (palette, CMYK, YCbCr) are decoded by OpenCV.

Palette and 1-bit images are read as the 8-bit grey or colour (with alpha where the file has
transparency) they display as.

Colour channels are kept in OpenCV's order (blue, green, red) from reading to writing; the
filter runs per channel, so the order does not matter in between. Writing encodes the image in
memory first, then writes it through :func:`sepconv._files.atomic_write`: a failed write never
leaves a partial or temporary file, and an existing file is replaced only with ``force``.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass

import numpy as np

from .._checks import SepconvValueError
from .._files import atomic_write

__all__ = ["SUFFIXES", "Picture", "check_writable", "read_image", "write_image"]

#: File suffixes and the dtypes each format stores.
SUFFIXES = {
    ".png": ("uint8", "uint16"),
    ".jpg": ("uint8",),
    ".jpeg": ("uint8",),
    ".tif": ("uint8", "uint16", "float32"),
    ".tiff": ("uint8", "uint16", "float32"),
}

_TIFF = (".tif", ".tiff")


@dataclass(frozen=True)
class Picture:
    """An image as read from a file: its colour (or grey) channels and its alpha channel.

    ``colour`` is ``(H, W)`` for grey images or ``(H, W, 3)`` (blue, green, red), of dtype
    uint8, uint16 or float32; ``alpha`` is ``(H, W)`` of the same dtype, or ``None``.
    """

    colour: np.ndarray
    alpha: np.ndarray | None = None

    @property
    def mode(self) -> str:
        """``'L'``, ``'LA'``, ``'RGB'`` or ``'RGBA'``, as Pillow names the layouts."""
        base = "L" if self.colour.ndim == 2 else "RGB"
        return base + ("A" if self.alpha is not None else "")


def _suffix(path: str, what: str) -> str:
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in SUFFIXES:
        raise SepconvValueError(
            f"{what} {path!r} has an unsupported format {suffix or '(no suffix)'!r}; "
            f"accepted: {', '.join(SUFFIXES)}"
        )
    return suffix


def read_image(path: str, *, what: str = "INPUT") -> Picture:
    """Read an image file, keeping its depth and its channel layout.

    ``what`` names the file in error messages (the command-line argument it came from).

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist or is not a file.
    ValueError
        Unsupported suffix, a file that is not an image, or a depth other than 8-bit, 16-bit or
        32-bit float.
    """
    suffix = _suffix(path, what)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} {path!r} does not exist or is not a file")
    data = np.fromfile(path, dtype=np.uint8)
    picture = _read_tiff(data, path, what) if suffix in _TIFF else None
    if picture is None:
        picture = _read_decoded(data, path, what)
    if picture.colour.dtype.name not in ("uint8", "uint16", "float32"):
        raise SepconvValueError(
            f"{what} {path!r} holds {picture.colour.dtype} pixels; "
            f"accepted: 8-bit, 16-bit or 32-bit float images"
        )
    return picture


def _not_an_image(path: str, what: str) -> SepconvValueError:
    return SepconvValueError(
        f"{what} {path!r} is not an image file this command can read "
        f"(corrupt, or not PNG, JPEG or TIFF)"
    )


def _read_tiff(data: np.ndarray, path: str, what: str) -> Picture | None:
    """A TIFF file in grey or RGB (with alpha or not), by its tags; ``None``: decode by OpenCV.

    A fourth colour channel (second grey one) is alpha whether or not ExtraSamples says so, as
    OpenCV reads it.
    """
    import tifffile
    from tifffile import PHOTOMETRIC, PLANARCONFIG

    try:
        with tifffile.TiffFile(io.BytesIO(data.tobytes())) as tif:
            page = tif.pages[0]
            photometric, samples = page.photometric, page.samplesperpixel
            layouts = {
                (PHOTOMETRIC.MINISBLACK, 1),
                (PHOTOMETRIC.MINISBLACK, 2),
                (PHOTOMETRIC.RGB, 3),
                (PHOTOMETRIC.RGB, 4),
            }
            if (
                (photometric, samples) not in layouts
                or page.imagedepth != 1
                or page.bitspersample not in (8, 16, 32)
            ):  # 1-bit: OpenCV's 8-bit grey
                return None
            try:
                pixels = page.asarray()
            except (ValueError, NotImplementedError) as exc:  # a codec needs imagecodecs
                if samples == 2:  # OpenCV reads grey+alpha TIFFs without their alpha
                    return _read_grey_alpha_by_pillow(data, path, what, exc)
                return None
            separate = page.planarconfig == PLANARCONFIG.SEPARATE
    except tifffile.TiffFileError:
        raise _not_an_image(path, what) from None
    if samples > 1 and separate:
        pixels = np.moveaxis(pixels, 0, -1)
    if pixels.ndim != (2 if samples == 1 else 3):
        return None
    if samples == 1:
        return Picture(pixels)
    colour, alpha = pixels[:, :, :-1], np.ascontiguousarray(pixels[:, :, -1])
    if samples == 2:
        return Picture(np.ascontiguousarray(colour[:, :, 0]), alpha)
    if samples == 3:
        return Picture(np.ascontiguousarray(pixels[:, :, ::-1]))  # RGB -> OpenCV's BGR
    return Picture(np.ascontiguousarray(colour[:, :, ::-1]), alpha)


def _read_grey_alpha_by_pillow(data: np.ndarray, path: str, what: str, exc: Exception) -> Picture:
    """An 8-bit grey+alpha TIFF whose compression tifffile cannot decode, decoded by Pillow."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data.tobytes())) as image:
            if image.mode == "LA":
                pixels = np.asarray(image)
                return Picture(
                    np.ascontiguousarray(pixels[:, :, 0]), np.ascontiguousarray(pixels[:, :, 1])
                )
    except (UnidentifiedImageError, OSError, ValueError):
        pass
    raise SepconvValueError(
        f"{what} {path!r}: cannot decode this grey+alpha TIFF ({exc}); "
        f"install imagecodecs or save it uncompressed"
    )


def _read_decoded(data: np.ndarray, path: str, what: str) -> Picture:
    """A file decoded by OpenCV, its layout read by Pillow."""
    import cv2
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data.tobytes())) as header:
            mode = header.mode
    except (UnidentifiedImageError, OSError, ValueError):
        mode = None
    # CMYK is converted to the colours it displays as; other layouts are decoded unchanged.
    flags = cv2.IMREAD_COLOR if mode == "CMYK" else cv2.IMREAD_UNCHANGED
    pixels = cv2.imdecode(data, flags) if data.size else None
    if pixels is None:
        raise _not_an_image(path, what)
    if pixels.ndim == 2:
        return Picture(pixels)
    if pixels.shape[2] == 1:
        return Picture(pixels[:, :, 0])
    if pixels.shape[2] != 4:
        return Picture(pixels)
    alpha = np.ascontiguousarray(pixels[:, :, 3])
    if mode in ("LA", "La"):
        # OpenCV repeats the grey channel three times; the file holds one.
        return Picture(np.ascontiguousarray(pixels[:, :, 0]), alpha)
    return Picture(np.ascontiguousarray(pixels[:, :, :3]), alpha)


def check_writable(path: str, mode: str, dtype: str, *, what: str = "OUTPUT") -> None:
    """Refuse, before any work, a layout (``'L'``, ``'LA'``, ``'RGB'``, ``'RGBA'``) and dtype
    that the format of ``path`` cannot store so that it reads back the same.

    Raises
    ------
    ValueError
        Unsupported suffix, a dtype the format cannot store, alpha in a JPEG file, or a
        grey+alpha PNG file of more than 8 bits.
    """
    suffix = _suffix(path, what)
    if dtype not in SUFFIXES[suffix]:
        raise SepconvValueError(
            f"{what} {path!r}: {suffix} files cannot store {dtype} images; accepted: "
            f"{', '.join(SUFFIXES[suffix])} (float32 needs .tif)"
        )
    if mode.endswith("A") and suffix in (".jpg", ".jpeg"):
        raise SepconvValueError(
            f"{what} {path!r}: JPEG files cannot store the input's alpha "
            f"channel; write .png or .tif"
        )
    if mode == "LA" and suffix == ".png" and dtype != "uint8":
        raise SepconvValueError(
            f"{what} {path!r}: grey+alpha PNG files are written with 8 bits "
            f"only, got {dtype}; write .tif"
        )


def write_image(path: str, picture: Picture, *, force: bool = False, what: str = "OUTPUT") -> None:
    """Write ``picture`` to ``path`` whole or not at all, in the layout it has.

    Raises
    ------
    FileNotFoundError
        The destination folder does not exist.
    FileExistsError
        ``path`` exists and ``force`` is false.
    ValueError
        Unsupported suffix, a dtype the format cannot store, or alpha in a JPEG file.
    """
    suffix = _suffix(path, what)
    check_writable(path, picture.mode, picture.colour.dtype.name, what=what)
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"the folder of {what} {path!r} does not exist")
    if os.path.exists(path) and not force:
        raise FileExistsError(f"{what} {path!r} exists; pass --force to overwrite it")

    if suffix in _TIFF:
        encoded = _encode_tiff(picture)
    elif picture.mode == "LA":
        from PIL import Image

        buffer = io.BytesIO()
        Image.fromarray(np.dstack([picture.colour, picture.alpha])).save(buffer, format="PNG")
        encoded = buffer.getvalue()
    else:
        import cv2

        pixels = (
            picture.colour if picture.alpha is None else np.dstack([picture.colour, picture.alpha])
        )
        ok, array = cv2.imencode(suffix, pixels)
        if not ok:
            raise SepconvValueError(f"{what} {path!r}: could not encode the image as {suffix}")
        encoded = array.tobytes()

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(encoded)
            f.flush()
            os.fsync(f.fileno())

    atomic_write(path, write)


def _encode_tiff(picture: Picture) -> bytes:
    """``picture`` as TIFF bytes, with the Photometric and ExtraSamples tags of its layout."""
    import tifffile

    colour = picture.colour if picture.colour.ndim == 2 else picture.colour[:, :, ::-1]
    if picture.alpha is None:
        pixels, extra = colour, None
    else:
        pixels, extra = np.dstack([colour, picture.alpha]), ["unassalpha"]
    buffer = io.BytesIO()
    tifffile.imwrite(
        buffer,
        np.ascontiguousarray(pixels),
        photometric="minisblack" if picture.colour.ndim == 2 else "rgb",
        extrasamples=extra,
        compression="zlib",
        metadata=None,
    )
    return buffer.getvalue()
