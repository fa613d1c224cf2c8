"""Native separable filtering: the C kernel in ``sepconv/_csrc/sepfilter.c``, through ctypes.

One call filters a 2-D image (optionally with interleaved channels) with a sum of separable
terms. Output rows are computed four at a time: the vertical 1-D pass of a term writes four
rows into buffers that stay in cache (each source vector loaded once for the four), the
horizontal pass of each adds into its output row, so the image is read once and the output
written once whatever the number of terms (no intermediate image, no per-term accumulation
pass). Symmetric and antisymmetric horizontal factors are folded. Integer images (uint8,
uint16, int16) are read as they are, and integer outputs written rounded half to even and
saturated. ctypes releases the GIL, so bands of output rows run on a thread pool, shared with
the calling thread.

The library is an optional part of the build (``setup.py``): where it was not built, or it
has no AVX2+FMA code or the processor lacks AVX2 and FMA (the code is compiled for AVX-512,
AVX2+FMA and a baseline whose speed does not beat OpenCV), or ``SEPCONV_NATIVE=0`` is set in
the environment, :func:`available` is ``False`` and the engine uses ``cv2.sepFilter2D``
instead.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .._extensions import load
from ._modes import TABLE

__all__ = [
    "available",
    "all_finite",
    "separable",
    "separable_checked",
    "MODE_CODES",
    "INTEGER_TYPES",
]

#: border mode -> the C code's number for it (the ``native`` column of ``_modes.TABLE``)
MODE_CODES = {name: mode.native for name, mode in TABLE.items()}

_LOCK = threading.Lock()
_STATE: dict[str, object] = {}
#: below this many output elements one thread does the work: waking a pool thread costs about
#: 0.1 ms here, as much as filtering a 1024 x 1024 image with a 3 x 3 kernel on one core
_PARALLEL_MIN = 1 << 20


def _configure(lib: ctypes.CDLL) -> bool:
    size, ptr = ctypes.c_ssize_t, ctypes.c_void_p  # ptrdiff_t in the C code
    code = ctypes.c_int
    for fn in (lib.sep_filter_f32, lib.sep_filter_f64):
        fn.argtypes = [
            ptr,
            code,
            size,
            size,
            size,
            size,
            ptr,
            code,
            size,
            ptr,
            size,
            ptr,
            size,
            size,
            size,
            size,
            code,
            size,
            size,
        ]
        fn.restype = ctypes.c_int
    for fn in (lib.sep_filter_f32_finite, lib.sep_filter_f64_finite):
        fn.argtypes = [ptr, size]
        fn.restype = ctypes.c_int
    lib.sep_fast.argtypes = []
    lib.sep_fast.restype = ctypes.c_int
    return bool(lib.sep_fast())


def _load() -> ctypes.CDLL | None:
    return load("sepconv._sepfilter", _configure)


def available() -> bool:
    """True when the native kernel is built, loadable and fast on this processor."""
    return _load() is not None


def all_finite(array: np.ndarray) -> bool | None:
    """Whether a contiguous float32 or float64 array is free of NaN and infinities, in one
    vectorised pass; ``None`` where the native kernel is not available or ``array`` is
    another kind."""
    lib = _load()
    if (
        lib is None
        or array.dtype not in _FLOATS
        or not (array.flags.c_contiguous or array.flags.f_contiguous)
    ):
        return None
    fn = lib.sep_filter_f32_finite if array.dtype == np.float32 else lib.sep_filter_f64_finite
    return bool(fn(array.ctypes.data, array.size))


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _pool() -> ThreadPoolExecutor:
    pool = _STATE.get("pool")
    if pool is None:
        with _LOCK:
            pool = _STATE.get("pool")
            if pool is None:
                pool = ThreadPoolExecutor(
                    max_workers=max(1, (os.cpu_count() or 1) - 1),
                    thread_name_prefix="sepconv-filter",
                )
                _STATE["pool"] = pool
    return pool  # type: ignore[return-value]


def _forget_pool() -> None:
    """In a forked child the parent's pool threads do not exist: start a new pool there."""
    _STATE.pop("pool", None)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)

#: stacked factors of recent plans' terms: (terms, dtype) -> (terms, columns, rows)
_FACTORS: dict[tuple[int, str], tuple[tuple, np.ndarray, np.ndarray]] = {}


def _factors(terms: tuple, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """Column and row factors as two C-contiguous (terms, taps) arrays of ``dtype``, reused
    while the same terms (a cached plan's) are filtered again."""
    key = (id(terms), dtype.char)
    entry = _FACTORS.get(key)
    if entry is not None and entry[0] is terms:
        return entry[1], entry[2]
    cols = np.ascontiguousarray(np.stack([np.asarray(c, dtype) for c, _ in terms]))
    rows = np.ascontiguousarray(np.stack([np.asarray(r, dtype) for _, r in terms]))
    if len(_FACTORS) >= 64:
        _FACTORS.pop(next(iter(_FACTORS)))
    _FACTORS[key] = (terms, cols, rows)
    return cols, rows


def _rows_of_contiguous_pixels(a: np.ndarray) -> bool:
    """True when each row of ``a`` is one contiguous run of pixels (and channels)."""
    inner = a.strides[1:]
    expected = (a.shape[2] * a.itemsize, a.itemsize) if a.ndim == 3 else (a.itemsize,)
    return all(s == e or n == 1 for s, e, n in zip(inner, expected, a.shape[1:]))


#: integer element types the kernel reads and writes directly (code in sepfilter.c)
_INTEGER_CODES = {np.dtype(np.uint8): 1, np.dtype(np.uint16): 2, np.dtype(np.int16): 3}
INTEGER_TYPES = tuple(_INTEGER_CODES)


def separable(
    src: np.ndarray,
    terms: tuple,
    anchor: tuple[int, int],
    mode: str,
    out: np.ndarray | None = None,
    threads: int | None = None,
    *,
    work: np.dtype | None = None,
    out_dtype: np.dtype | None = None,
) -> np.ndarray:
    """The filtered image (see :func:`separable_checked`)."""
    return separable_checked(
        src, terms, anchor, mode, out, threads, work=work, out_dtype=out_dtype
    )[0]


def separable_checked(
    src: np.ndarray,
    terms: tuple,
    anchor: tuple[int, int],
    mode: str,
    out: np.ndarray | None = None,
    threads: int | None = None,
    *,
    work: np.dtype | None = None,
    out_dtype: np.dtype | None = None,
) -> tuple[np.ndarray, bool]:
    """Correlate ``src`` ((H, W) or (H, W, C)) with ``sum(outer(col, row) for col, row in
    terms)``, computing in ``work`` (float32 or float64; default: float64 for a float64
    ``src``, else float32).

    ``src`` is float32, float64 or, with a float32 ``work``, uint8, uint16 or int16 (rows are
    converted as they are read). The result has ``out_dtype`` (default ``work``; uint8, uint16
    and int16 are rounded half to even and saturated, as ``np.rint`` then ``np.clip``).
    ``mode`` is a SciPy border mode (``constant`` means a zero border); ``anchor`` the (row,
    column) of the kernel's centre. Rows may have any stride (negative too); an image whose
    pixels or channels are not contiguous is copied first. Writes ``out`` (the image's shape,
    dtype ``out_dtype``, rows of any stride, pixels contiguous) or a new C-contiguous array,
    and returns it with a flag: ``True`` when a float output holds NaN or an infinity (checked
    in registers as each output is written). Every tap is multiplied, zero weights too (but
    the zero centre of an antisymmetric horizontal factor), so a non-finite pixel that
    reaches some output through a non-zero weight, as in ``scipy.ndimage``, raises the flag;
    one that reaches none leaves every output as SciPy's.
    """
    lib = _load()
    if lib is None:
        raise RuntimeError("the native separable filter is not available")
    if src.ndim not in (2, 3):
        raise ValueError(f"expected a 2-D or 3-D array, got shape {src.shape}")
    if work is None:
        work = np.dtype(np.float64 if src.dtype == np.float64 else np.float32)
    work = np.dtype(work)
    out_dtype = work if out_dtype is None else np.dtype(out_dtype)
    if work not in (np.float32, np.float64):
        raise TypeError(f"`work` must be float32 or float64, got {work}")
    if src.dtype != work and not (work == np.float32 and src.dtype in _INTEGER_CODES):
        src = src.astype(work)
    if out_dtype != work and not (work == np.float32 and out_dtype in _INTEGER_CODES):
        raise TypeError(
            f"`out_dtype` must be {work} or, in float32, uint8/uint16/int16, got {out_dtype}"
        )
    if not _rows_of_contiguous_pixels(src):
        src = np.ascontiguousarray(src)
    if out is not None and not (
        out.shape == src.shape and out.dtype == out_dtype and _rows_of_contiguous_pixels(out)
    ):
        raise ValueError("`out` must have the image's shape and `out_dtype`, pixels contiguous")
    fn = lib.sep_filter_f32 if work == np.float32 else lib.sep_filter_f64
    height, width = src.shape[:2]
    channels = src.shape[2] if src.ndim == 3 else 1
    cols, rows = _factors(terms, work)
    if out is None:
        out = np.empty(src.shape, out_dtype)
    args = (
        src.ctypes.data,
        _INTEGER_CODES.get(src.dtype, 0),
        height,
        width,
        channels,
        src.strides[0] // src.itemsize,
        out.ctypes.data,
        _INTEGER_CODES.get(out.dtype, 0),
        out.strides[0] // out.itemsize,
        cols.ctypes.data,
        cols.shape[1],
        rows.ctypes.data,
        rows.shape[1],
        len(terms),
        anchor[0],
        anchor[1],
        MODE_CODES[mode],
    )
    if threads is None:
        threads = (os.cpu_count() or 1) if src.size >= _PARALLEL_MIN else 1
    threads = max(1, min(threads, height))
    # Bands of rows, a few per thread, taken in turn by the calling thread and the workers:
    # a worker that wakes late leaves its share to the others instead of holding them up.
    bands = 1 if threads == 1 else min(height, 4 * threads)
    counter = itertools.count()
    codes: list[int] = []

    def work() -> None:
        for index in iter(counter.__next__, None):
            if index >= bands:
                return
            codes.append(fn(*args, height * index // bands, height * (index + 1) // bands))

    futures = [_pool().submit(work) for _ in range(threads - 1)]
    work()
    for future in futures:
        # A helper that has not started by now has nothing left to do: every band is taken.
        if not future.cancel():
            future.result()
    if any(code < 0 for code in codes):
        raise MemoryError("the native separable filter could not allocate its row buffers")
    return out, any(codes)
