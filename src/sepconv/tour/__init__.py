"""A guided tour of separable convolutions on a real photograph, with counted multiplications.

The tour draws every picture of the idea from the real computation, on matplotlib's sample
photograph of Grace Hopper (shipped with matplotlib; nothing is downloaded) or on a photograph
of one's own:

1. a separable kernel: 3×3 kernels as a 3×1 column times a 1×3 row; Sobel on the photograph as a
   column pass then a row pass, 6 instead of 9 multiplications per pixel;
2. why separable kernels are rare (ranks of random kernels) and where low rank helps (Laplacian
   of Gaussian, Gabor: their terms and singular values against the tolerance);
3. normal convolution: a 12×12×3 input and one 5×5×3 kernel give 8×8×1; 256 kernels give
   8×8×256, 1,228,800;
4. depthwise: three 5×5×1 kernels, one per colour channel → 8×8×3, 4,800;
5. pointwise: 1×1×3 kernels → 8×8×256, 49,152; 53,952 in all and the fraction 1/C_out + 1/k²;
6. MobileNetV1 against the same network with full convolutions, layer by layer;
7. converting a layer trained in the run (a small denoiser): its filters before and after,
   and the error against the terms kept.

Multiplications are counted by :mod:`sepconv.reference` while it computes, and compared with
:mod:`sepconv.cost`. :func:`run` returns the steps; with ``out`` it writes ``report.html`` (one
self-contained page: figures embedded, no network access, an interactive cost calculator),
``README.md`` with the figures as PNG files, and ``report.json`` with every number. The folder
is written whole or not at all. Figures follow "A guide to convolution arithmetic for deep
learning" (Dumoulin & Visin, 2016) in drawing tensors as blocks.

Examples
--------
>>> from sepconv import tour
>>> photo = tour.load_photo()
>>> photo.shape, photo.dtype
((600, 512, 3), dtype('float64'))
"""

from __future__ import annotations

import errno
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .._api import public_dir as _public_dir
from .._checks import SepconvValueError
from .._text import ratio_text
from ._steps import Figure, Step

__all__ = [
    "Figure",
    "Step",
    "run",
    "load_photo",
    "load_image",
    "check_out",
    "describe_image",
    "MAX_SIDE",
]

MAX_SIDE = 640
MIN_SIDE = 24

_CAPTIONS = {
    "01-column-times-row.png": (
        "Three 3×3 kernels, each the outer product of a 3×1 column and a 1×3 row: entry (i, j) "
        "of the kernel is column[i] · row[j].",
        "3x3 kernels as column times row",
    ),
    "02-sobel-passes.png": (
        "The photograph after the 3×1 column pass, after the 1×3 row pass, and with the 3×3 "
        "kernel applied directly: the same edges; the counts are those sepconv.reference made.",
        "Sobel as a column pass then a row pass on the photograph",
    ),
    "03-random-ranks.png": (
        "How many random kernels have each rank, on a logarithmic axis: rank 1 (separable) "
        "essentially never happens for real-valued entries.",
        "ranks of random kernels",
    ),
    "04-lowrank-spectra.png": (
        "Named 15×15 kernels (top) and the error of their best approximation by r separable "
        "terms (bottom), which the singular values give; the dashed line is sepconv's "
        "default tolerance, and errors under it (rounding) are drawn as 0 on the grey band; "
        "curves that coincide are nudged sideways.",
        "error against number of separable terms",
    ),
    "05-log-factors.png": (
        "The Laplacian of Gaussian as a sum of column ⊗ row terms, and its singular values "
        "against the tolerance (the figure of `sepconv factor log:sigma=2,size=15 --plot`).",
        "Laplacian of Gaussian factored",
    ),
    "06-gabor-factors.png": (
        "The Gabor kernel as a sum of column ⊗ row terms, and its singular values.",
        "Gabor kernel factored",
    ),
    "07-log-photo.png": (
        "The Laplacian of Gaussian applied to the photograph directly and as its separable "
        "terms, with their counted multiplications: the same response.",
        "Laplacian of Gaussian on the photograph",
    ),
    "08-normal-one-kernel.png": (
        "The photograph averaged down to 12×12×3 (front face: the pixels; top and side: each "
        "channel), one 5×5×3 kernel and its 8×8×1 output, all with their real values.",
        "normal convolution with one kernel",
    ),
    "09-normal-256-kernels.png": (
        "256 kernels of 5×5×3, each giving one 8×8 channel of the output.",
        "normal convolution with 256 kernels",
    ),
    "10-depthwise.png": (
        "Depthwise convolution: each colour channel of the 12×12 patch with its own 5×5×1 "
        "kernel, three 8×8×1 outputs stacked into 8×8×3.",
        "depthwise convolution",
    ),
    "11-pointwise-one-kernel.png": (
        "Pointwise convolution: a 1×1×3 kernel turns the 8×8×3 depthwise output into 8×8×1.",
        "pointwise convolution with one kernel",
    ),
    "12-pointwise-256-kernels.png": (
        "256 pointwise kernels give the 8×8×256 output the normal convolution gave.",
        "pointwise convolution with 256 kernels",
    ),
    "13-cost.png": (
        "Left: multiplications of the worked example on a logarithmic axis, where the "
        "depthwise step is visible; the separable bar is the two steps added (not stacked, "
        "which a log axis would distort), with their shares written in it. Right: the counted "
        "fraction for other layer sizes (dots) against the rule 1/C_out + 1/k² (lines).",
        "cost of normal and separable",
    ),
    "14-mobilenet.png": (
        "Multiplications of every layer of MobileNetV1 (depthwise and pointwise side by side) "
        "and of its full-convolution twin, on a logarithmic axis.",
        "MobileNetV1 layers",
    ),
    "15-convert-filters.png": (
        "The 16 filters of the denoiser's first layer as trained in this run, then the filters "
        "of the converted layer with K intermediate channels; each filter keeps one colour "
        "scale in its column.",
        "trained filters before and after conversion",
    ),
    "16-convert-error.png": (
        "Left: weight error and output error (relative to the trained network's output on the "
        "noisy photograph) against the number of terms K, and the saving in multiplications. "
        "Right: how far the network's output is from the clean photograph.",
        "conversion error against terms",
    ),
    "17-convert-photo.png": (
        "The denoiser at work on the centre of the photograph (at half size): the clean image, "
        "the noisy input, the trained network's output and the converted network's output, "
        "each with its distance to the clean image (RMS, grey levels of 255).",
        "denoising before and after conversion",
    ),
}


def load_photo() -> np.ndarray:
    """Grace Hopper's portrait from matplotlib's sample data: ``(600, 512, 3)`` float64, 0 to 1.

    Shipped with matplotlib (``matplotlib.cbook.get_sample_data``); nothing is downloaded.
    """
    import matplotlib.cbook
    import matplotlib.image

    path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return matplotlib.image.imread(path).astype(np.float64) / 255.0


def load_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a photograph (PNG, JPEG, TIFF, ... anything Pillow reads) as RGB in 0..1.

    Returns ``(H, W, 3)`` float64. Images larger than ``MAX_SIDE`` pixels on their longer side
    are reduced to it (the tour's counting engine is plain NumPy), a shorter side never below
    ``MIN_SIDE``; grey images are repeated into three channels and an alpha channel is dropped.
    :func:`run` says in its report when the photograph was resized.

    Raises
    ------
    ValueError
        ``path`` is missing, not a file, not an image Pillow can read, or smaller than
        ``MIN_SIDE`` pixels on a side.

    Examples
    --------
    >>> import matplotlib.cbook
    >>> load_image(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).shape
    (600, 512, 3)
    """
    return _read_image(path)[0]


def _read_image(path: str | os.PathLike[str]) -> tuple[np.ndarray, tuple[int, int]]:
    """:func:`load_image`, and the photograph's own (height, width) before any resizing."""
    from PIL import Image, UnidentifiedImageError

    name = os.fspath(path)
    if not os.path.isfile(name):
        raise SepconvValueError(f"`image`: {name!r} is not a file")
    try:
        with Image.open(name) as img:
            img.load()
            rgb = img.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise SepconvValueError(
            f"`image`: cannot read {name!r} as an image (PNG, JPEG, TIFF, "
            f"...): {' '.join(str(exc).split())}"
        ) from None
    original = (rgb.size[1], rgb.size[0])
    if min(rgb.size) < MIN_SIDE:
        raise SepconvValueError(
            f"`image`: {name!r} is {rgb.size[0]}x{rgb.size[1]} pixels; the "
            f"tour needs at least {MIN_SIDE} on each side"
        )
    if max(rgb.size) > MAX_SIDE:
        scale = MAX_SIDE / max(rgb.size)
        size = (
            max(MIN_SIDE, round(rgb.size[0] * scale)),
            max(MIN_SIDE, round(rgb.size[1] * scale)),
        )
        rgb = rgb.resize(size, Image.Resampling.LANCZOS)
    return np.asarray(rgb, dtype=np.float64) / 255.0, original


def describe_image(
    image: str | os.PathLike[str] | None,
    shape: tuple[int, ...],
    original: tuple[int, int] | None = None,
) -> str:
    """The photograph as the report names it, saying when it was resized (height×width)."""
    if image is None:
        return "Grace Hopper's portrait from matplotlib's sample data"
    text = f"the photograph {os.path.basename(os.fspath(image))}"
    if original is not None and tuple(original) != tuple(shape[:2]):
        text += (
            f" (resized from {original[0]}×{original[1]} to {shape[0]}×{shape[1]} pixels, "
            f"height × width: the tour works on at most {MAX_SIDE} pixels on the longer "
            f"side and at least {MIN_SIDE} on the shorter)"
        )
    return text


_OWN_FILES = ("README.md", "report.html", "report.json")


def _previous_tour(folder: Path) -> set[str] | None:
    """The files an earlier tour wrote into ``folder`` (by its report.json), or None."""
    import json

    try:
        data = json.loads((folder / "report.json").read_text(encoding="utf-8"))
        if not isinstance(data, dict) or "sepconv" not in data:
            return None
        names = {name for step in data.get("steps", []) for name in step.get("figures", [])}
    except (OSError, ValueError, AttributeError, TypeError):
        return None
    return {n for n in names if isinstance(n, str) and os.path.basename(n) == n} | set(_OWN_FILES)


def check_out(out: str | os.PathLike[str], *, force: bool = False, figures: bool = True) -> Path:
    """Validate the output folder before any work; missing parent folders are created later.

    ``out`` may be missing (it is created, with its parents, like ``mkdir -p``) or a folder.
    Files the tour would write there (``README.md``, ``report.html``, ``report.json`` and,
    with ``figures``, the PNG figures) may be replaced only if an earlier tour wrote them (its
    ``report.json`` lists them) or ``force`` is true.

    Returns the folder as a ``Path``; raises ``ValueError`` naming ``out`` otherwise.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "README.md").write_text("my own notes")
    >>> check_out(folder)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    sepconv._checks.SepconvValueError: `out`: ... holds README.md, which the tour would replace; ...
    >>> check_out(folder, force=True) == folder
    True
    """
    folder = Path(os.fspath(out))
    existing = folder.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing != folder.absolute() and not existing.is_dir():
        raise SepconvValueError(f"`out`: {str(existing)!r} is a file, not a folder")
    if folder.exists() and not folder.is_dir():
        raise SepconvValueError(f"`out`: {str(folder)!r} exists and is not a folder")
    if folder.is_dir() and not os.access(folder, os.W_OK):
        raise SepconvValueError(f"`out`: cannot write into {str(folder)!r} (permission denied)")
    parent = folder.absolute().parent
    where = parent if parent.is_dir() else existing
    try:  # the report is first written beside `out` (or in its nearest existing folder)
        os.rmdir(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=where))
    except OSError as exc:
        if exc.errno == errno.ENOENT and where.is_dir():
            # /proc, /sys: the folder is there, but its file system takes no new entries
            reason = "its file system accepts no new files or folders"
        else:
            reason = exc.strerror or str(exc)
        raise SepconvValueError(f"`out`: cannot write into {str(where)!r} ({reason})") from None
    if folder.is_dir() and not force:
        names = set(_OWN_FILES) | ({n for n in _CAPTIONS} if figures else set())
        clash = sorted(n for n in names if (folder / n).exists())
        clash = sorted(set(clash) - (_previous_tour(folder) or set()))
        if clash:
            shown = ", ".join(clash[:4]) + (f" and {len(clash) - 4} more" if len(clash) > 4 else "")
            them = "it" if len(clash) == 1 else "them"
            raise SepconvValueError(
                f"`out`: {str(folder)!r} holds {shown}, which the tour would "
                f"replace; pass --force to overwrite {them}"
            )
    return folder


def _environment() -> str:
    import matplotlib
    import torch

    from .. import __version__

    return (
        f"sepconv {__version__}, NumPy {np.__version__}, PyTorch {torch.__version__}, "
        f"matplotlib {matplotlib.__version__}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}"
    )


def _factor_png(kernel: np.ndarray, result: Any, title: str) -> bytes:
    from .._plotting import plot_factorization

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "factors.png")
        plot_factorization(kernel, result, path, title=title)
        return Path(path).read_bytes()


def _png(fig: Any) -> bytes:
    import io

    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    try:
        fig.savefig(
            buffer,
            format="png",
            dpi=110,
            bbox_inches="tight",
            pad_inches=0.12,
            metadata={"Software": None},
        )
    finally:
        plt.close(fig)
    return buffer.getvalue()


def run(
    out: str | os.PathLike[str] | None = None,
    *,
    image: str | os.PathLike[str] | None = None,
    figures: bool = True,
    progress: Callable[[str], None] | None = None,
    force: bool = False,
) -> list[Step]:
    """Run the tour; with ``out``, write ``report.html``, ``README.md``, ``report.json`` and the
    figures (PNG) into that folder.

    Parameters
    ----------
    out : path, optional
        The folder to write, created with its missing parents. The files are first written to
        a temporary folder beside it, then moved in, so a failure leaves ``out`` as it was (and
        removes the parents it created). Files of an earlier tour there are replaced; other
        files it would replace are refused (see :func:`check_out`) unless ``force``.
    image : path, optional
        A photograph of one's own instead of matplotlib's sample photograph.
    figures : bool
        Draw the figures (the slow part); without them only the numbers are computed.
    progress : callable, optional
        Called with a short message as each step starts.
    force : bool
        Replace files in ``out`` that an earlier tour did not write.

    Returns
    -------
    list of Step
        Each with its title, paragraphs, one-line summary, numbers and figures.

    Raises
    ------
    ValueError
        ``out`` (or one of its parents) is a file or not writable, or holds files the tour
        would replace without ``force``; ``image`` cannot be read.

    Examples
    --------
    >>> steps = run(figures=False)          # numbers only, nothing written
    >>> [s.key for s in steps]
    ['spatial', 'rare', 'normal', 'depthwise', 'pointwise', 'mobilenet', 'convert']
    >>> steps[0].numbers["per_pixel"]
    {'direct': 9, 'column_pass': 3, 'row_pass': 3}
    >>> steps[4].numbers["by_operation"], steps[4].numbers["normal"]
    ({'depthwise_conv2d': 4800, 'pointwise_conv2d': 49152}, 1228800)
    """
    started = time.perf_counter()
    say = progress or (lambda message: None)
    folder = None if out is None else check_out(out, force=force, figures=figures)
    photo, original = (load_photo(), None) if image is None else _read_image(image)
    description = describe_image(image, photo.shape, original)
    temporary = None
    created: list[Path] = []
    if folder is not None:
        parent = folder.absolute().parent
        while not parent.exists():
            created.append(parent)
            parent = parent.parent
        for path in reversed(created):
            path.mkdir()
    try:
        if folder is not None:
            temporary = Path(
                tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.absolute().parent)
            )
        steps, pngs = _compute(photo, figures and folder is not None, say)
        if folder is not None and temporary is not None:
            say("writing the report")
            _write(steps, pngs, temporary, description, image, photo, original, started)
            _move(temporary, folder)
            temporary = None
            created = []
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
        for path in created:  # the parents this run made, innermost first
            try:
                path.rmdir()
            except OSError:
                break
    return steps


def _compute(
    photo: np.ndarray, draw: bool, say: Callable[[str], None]
) -> tuple[list[Step], dict[str, bytes]]:
    from . import _convert_step, _steps

    plt = None
    pngs: dict[str, bytes] = {}
    if draw:
        from . import _figures, _figures_model

        plt = _figures.setup()

    def keep(step: Step, drawn: list[tuple[str, Any]]) -> None:
        for name, fig in drawn:
            pngs[name] = fig if isinstance(fig, bytes) else _png(fig)
            caption, alt = _CAPTIONS[name]
            step.figures.append(Figure(name, caption, alt))

    say("1/7 a separable kernel: Sobel as two 1-D passes")
    spatial, spatial_data = _steps.spatial(photo)
    entries, responses = _steps.gallery(spatial_data["gray"])
    spatial.numbers["gallery"] = entries
    if plt:
        keep(spatial, _figures.draw_spatial(plt, spatial, spatial_data))
        for i, arrays in enumerate(responses):
            pngs[f"gallery/{i}-kernel"] = _figures.kernel_png(arrays["kernel"])
            pngs[f"gallery/{i}-response"] = _figures.response_png(arrays["response"])
    say("2/7 ranks of random kernels; low-rank kernels")
    rare, rare_data = _steps.rare(spatial_data["gray"])
    if plt:
        keep(rare, _figures.draw_rare(plt, rare, rare_data, _factor_png))
    say("3/7 normal convolution, counted")
    normal, worked = _steps.normal(photo)
    if plt:
        keep(normal, _figures.draw_normal(plt, normal, worked))
    say("4/7 depthwise convolution, counted")
    depthwise, dw = _steps.depthwise(worked)
    if plt:
        keep(depthwise, _figures.draw_depthwise(plt, depthwise, worked, dw))
    say("5/7 pointwise convolution, counted")
    pointwise, pw = _steps.pointwise(worked, dw["y"])
    if plt:
        keep(pointwise, _figures.draw_pointwise(plt, pointwise, worked, dw["y"], pw))
    say("6/7 MobileNetV1 against its full-convolution twin")
    network, net = _steps.network()
    if plt:
        keep(network, _figures_model.draw_network(plt, network, net))
    say("7/7 training a small denoiser, converting its first layer")
    conversion, conv = _convert_step.conversion(spatial_data["gray"])
    if plt:
        keep(conversion, _figures_model.draw_conversion(plt, conversion, conv))
    return [spatial, rare, normal, depthwise, pointwise, network, conversion], pngs


def _write(
    steps: list[Step],
    pngs: dict[str, bytes],
    folder: Path,
    description: str,
    image: Any,
    photo: np.ndarray,
    original: tuple[int, int] | None,
    started: float,
) -> None:
    from .. import __version__
    from . import _report

    pw = steps[4].numbers
    net = steps[5].numbers
    meta = {
        "version": __version__,
        "image": {
            "source": "matplotlib sample data: grace_hopper.jpg"
            if image is None
            else os.path.basename(os.fspath(image)),
            "shape": list(photo.shape),
            "original_shape": list(original or photo.shape[:2]),
        },
        "image_description": description,
        "calculator_default": {"h": 12, "w": 12, "c_in": 3, "k": 5, "c_out": 256, "stride": 1},
        "closing": {
            "dw": f"{pw['by_operation']['depthwise_conv2d']:,}",
            "pw": f"{pw['by_operation']['pointwise_conv2d']:,}",
            "normal": f"{pw['normal']:,}",
            "ratio": ratio_text(pw["ratio"], same="as many"),
            "mobilenet": f"{net['separable']['mult_adds'] / 1e6:,.1f}M against "
            f"{net['full']['mult_adds'] / 1e6:,.1f}M multiplications",
        },
        "environment": _environment(),
    }
    for name, data in pngs.items():
        if not name.startswith("gallery/"):  # the gallery lives in report.html only
            (folder / name).write_bytes(data)
    meta["seconds"] = time.perf_counter() - started
    (folder / "report.json").write_text(_report.render_json(steps, meta), encoding="utf-8")
    (folder / "README.md").write_text(_report.render_markdown(steps, meta), encoding="utf-8")
    (folder / "report.html").write_text(_report.render_html(steps, pngs, meta), encoding="utf-8")
    umask = os.umask(0)
    os.umask(umask)
    for path in folder.iterdir():
        os.chmod(path, 0o666 & ~umask)
    os.chmod(folder, 0o777 & ~umask)


def _move(temporary: Path, folder: Path) -> None:
    """Put the finished files in place: rename the folder, or replace file by file."""
    if not folder.exists():
        os.rename(temporary, folder)
        return
    # An earlier tour: its figures (as its report.json lists them) are replaced or removed.
    previous = _previous_tour(folder) or set()
    written = {path.name for path in temporary.iterdir()}
    for name in sorted(written - {"report.html"}) + ["report.html"]:
        os.replace(temporary / name, folder / name)
    for name in previous - written:
        if os.path.basename(name) == name and name.endswith(".png"):
            (folder / name).unlink(missing_ok=True)
    shutil.rmtree(temporary, ignore_errors=True)


__dir__ = _public_dir(globals())
