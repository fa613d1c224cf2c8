"""Image files for ``sepconv filter``: read and write PNG, JPEG and TIFF, keeping their layout.

A file's channel layout is kept from input to output: grey (``L``), grey with alpha (``LA``),
colour (``RGB``) and colour with alpha (``RGBA``), at 8 or 16 bits, and 32-bit float TIFF.
Pillow reads the file's header (it knows grey+alpha from colour+alpha, which OpenCV does not:
``cv2.IMREAD_UNCHANGED`` returns a grey+alpha PNG as four channels); OpenCV decodes and encodes
the pixels (Pillow reads a 16-bit colour PNG as 8 bits). Grey+alpha images are encoded by
Pillow, since OpenCV writes one, three or four channels only. Palette and 1-bit images are read
as the 8-bit grey or colour (with alpha where the file has transparency) they display as.

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

__all__ = ["SUFFIXES", "Picture", "read_image", "write_image"]

#: File suffixes and the dtypes each format stores.
SUFFIXES = {
    ".png": ("uint8", "uint16"),
    ".jpg": ("uint8",),
    ".jpeg": ("uint8",),
    ".tif": ("uint8", "uint16", "float32"),
    ".tiff": ("uint8", "uint16", "float32"),
}

_PILLOW_FORMAT = {".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF"}


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
    import cv2
    from PIL import Image, UnidentifiedImageError

    _suffix(path, what)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} {path!r} does not exist or is not a file")
    data = np.fromfile(path, dtype=np.uint8)
    try:
        with Image.open(io.BytesIO(data.tobytes())) as header:
            mode = header.mode
    except (UnidentifiedImageError, OSError, ValueError):
        mode = None
    pixels = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if pixels is None or mode is None:
        raise SepconvValueError(
            f"{what} {path!r} is not an image file this command can read "
            f"(corrupt, or not PNG, JPEG or TIFF)"
        )
    if pixels.dtype.name not in ("uint8", "uint16", "float32"):
        raise SepconvValueError(
            f"{what} {path!r} holds {pixels.dtype} pixels; accepted: "
            f"8-bit, 16-bit or 32-bit float images"
        )
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
    import cv2

    suffix = _suffix(path, what)
    dtype = picture.colour.dtype.name
    if dtype not in SUFFIXES[suffix]:
        raise SepconvValueError(
            f"{what} {path!r}: {suffix} files cannot store {dtype} images; accepted: "
            f"{', '.join(SUFFIXES[suffix])} (float32 needs .tif)"
        )
    if picture.alpha is not None and suffix not in _PILLOW_FORMAT:
        raise SepconvValueError(
            f"{what} {path!r}: JPEG files cannot store the input's alpha "
            f"channel; write .png or .tif"
        )
    if picture.mode == "LA" and dtype != "uint8":
        raise SepconvValueError(
            f"{what} {path!r}: grey+alpha images are written with 8 bits only, got {dtype}"
        )
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"the folder of {what} {path!r} does not exist")
    if os.path.exists(path) and not force:
        raise FileExistsError(f"{what} {path!r} exists; pass --force to overwrite it")

    if picture.mode == "LA":
        from PIL import Image

        buffer = io.BytesIO()
        Image.fromarray(np.dstack([picture.colour, picture.alpha])).save(
            buffer, format=_PILLOW_FORMAT[suffix]
        )
        encoded = buffer.getvalue()
    else:
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
