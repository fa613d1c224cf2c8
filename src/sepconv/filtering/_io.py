"""Reading and writing image files (PNG, JPEG, TIFF) with OpenCV, whole or not at all.

Images are read with ``cv2.IMREAD_UNCHANGED``: 8- and 16-bit depths, grey, colour (BGR) and
alpha channels are kept as they are in the file. Writing encodes the image in memory first,
then writes a temporary file in the destination folder and renames it over the destination
(``os.replace``), so a failed write never leaves a partial file.
"""

from __future__ import annotations

import os

import numpy as np

from .._checks import SepconvValueError
from .._files import atomic_write

__all__ = ["SUFFIXES", "read_image", "write_image"]

#: File suffixes and the dtypes each format stores.
SUFFIXES = {
    ".png": ("uint8", "uint16"),
    ".jpg": ("uint8",),
    ".jpeg": ("uint8",),
    ".tif": ("uint8", "uint16", "float32"),
    ".tiff": ("uint8", "uint16", "float32"),
}


def _suffix(path: str, what: str) -> str:
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in SUFFIXES:
        raise SepconvValueError(
            f"{what} {path!r} has an unsupported format {suffix or '(no suffix)'!r}; "
            f"accepted: {', '.join(SUFFIXES)}"
        )
    return suffix


def read_image(path: str) -> np.ndarray:
    """Read an image file as ``(H, W)`` or ``(H, W, C)``, depth and channels unchanged.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        Unsupported suffix, or a file OpenCV cannot decode.
    """
    import cv2

    _suffix(path, "input")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"input image {path!r} does not exist")
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise SepconvValueError(f"cannot decode {path!r} as an image (corrupt or not an image)")
    return image


def write_image(path: str, image: np.ndarray, *, source: str | None = None,
                force: bool = False) -> None:
    """Write ``image`` to ``path`` atomically; refuse to overwrite ``source`` unless ``force``.

    Raises
    ------
    FileNotFoundError
        The destination folder does not exist.
    FileExistsError
        ``path`` is the input file ``source`` and ``force`` is false.
    ValueError
        Unsupported suffix, or a dtype the format cannot store.
    """
    import cv2

    suffix = _suffix(path, "output")
    if image.dtype.name not in SUFFIXES[suffix]:
        raise SepconvValueError(
            f"{suffix} files cannot store {image.dtype} images; accepted: "
            f"{', '.join(SUFFIXES[suffix])}"
        )
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"output folder {folder!r} does not exist")
    if (source is not None and not force and os.path.exists(path)
            and os.path.samefile(path, source)):
        raise FileExistsError(
            f"output {path!r} is the input file; pass --force to overwrite it"
        )
    ok, encoded = cv2.imencode(suffix, image)
    if not ok:
        raise SepconvValueError(f"OpenCV could not encode the image as {suffix}")
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(encoded.tobytes())
            f.flush()
            os.fsync(f.fileno())

    atomic_write(path, write)
