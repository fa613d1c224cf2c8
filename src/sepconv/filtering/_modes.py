"""Border modes: one table, SciPy's names and what each engine calls them, and the indices
that extend an axis the way ``scipy.ndimage`` does.

========  ===========================  ==================  =========  ========  ======  =========
mode      extends ``a b c d`` as       OpenCV border       np.pad     dask      native  F.pad
========  ===========================  ==================  =========  ========  ======  =========
reflect   ``c b a | a b c d | d c b``  BORDER_REFLECT      symmetric  reflect   0       (none)
mirror    ``d c b | a b c d | c b a``  BORDER_REFLECT_101  reflect    (none)    1       reflect
nearest   ``a a a | a b c d | d d d``  BORDER_REPLICATE    edge       nearest   2       replicate
constant  ``k k k | a b c d | k k k``  BORDER_CONSTANT     constant   ``cval``  4       constant
wrap      ``b c d | a b c d | a b c``  (none: padded)      wrap       periodic  3       circular
========  ===========================  ==================  =========  ========  ======  =========

The columns are the fields of :class:`Mode` in :data:`TABLE` (``dask``: the ``boundary`` of
``map_overlap``; ``native``: the code of ``sepconv/_csrc/sepfilter.c``). Where an engine has no
equivalent, sepconv extends the image itself with :func:`extension_indices`. Extensions
longer than the axis repeat the pattern (period ``2n`` for reflect, ``2n - 2`` for mirror,
``n`` for wrap), as ``scipy.ndimage.correlate1d`` and ``np.pad`` do; every engine follows it
(``scipy.ndimage.correlate`` itself departs from it for 'reflect' there).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Mode", "TABLE", "MODES", "NUMPY_PAD", "extension_indices", "kernel_anchor"]


@dataclass(frozen=True)
class Mode:
    """One border mode and its name in each engine (``None``: the engine lacks it)."""

    name: str  #: SciPy's name, the one sepconv takes
    extends: str  #: how ``a b c d`` is extended (k: ``cval``)
    opencv: str | None  #: OpenCV border constant (``cv2.BORDER_*``) of its filters
    numpy: str  #: ``np.pad`` mode
    dask: str | None  #: ``map_overlap`` boundary ('constant': the ``cval`` itself)
    native: int  #: code in the native kernel
    torch: str | None  #: ``F.pad`` mode


#: every border mode, by SciPy's name
TABLE = {
    mode.name: mode
    for mode in (
        Mode(
            "reflect", "c b a | a b c d | d c b", "BORDER_REFLECT", "symmetric", "reflect", 0, None
        ),
        Mode(
            "mirror", "d c b | a b c d | c b a", "BORDER_REFLECT_101", "reflect", None, 1, "reflect"
        ),
        Mode(
            "nearest",
            "a a a | a b c d | d d d",
            "BORDER_REPLICATE",
            "edge",
            "nearest",
            2,
            "replicate",
        ),
        Mode(
            "constant",
            "k k k | a b c d | k k k",
            "BORDER_CONSTANT",
            "constant",
            "constant",
            4,
            "constant",
        ),
        Mode("wrap", "b c d | a b c d | a b c", None, "wrap", "periodic", 3, "circular"),
    )
}

#: The border modes the filters take (``mode=``), SciPy's names in the table's order:
#: ``('reflect', 'mirror', 'nearest', 'constant', 'wrap')``; public as
#: :data:`sepconv.filtering.MODES` (the CLI's ``--mode`` choices).
MODES = tuple(TABLE)

#: ``np.pad`` mode with the same extension as each SciPy mode.
NUMPY_PAD = {name: mode.numpy for name, mode in TABLE.items()}


def extension_indices(n: int, before: int, after: int, mode: str) -> np.ndarray:
    """Indices into an axis of length ``n`` that extend it by ``before`` and ``after`` samples.

    Entry ``i`` of the result is the source index of padded position ``i`` (position
    ``before`` is the first sample); ``-1`` marks a ``'constant'`` sample.

    Examples
    --------
    >>> extension_indices(4, 3, 3, "reflect").tolist()
    [2, 1, 0, 0, 1, 2, 3, 3, 2, 1]
    >>> extension_indices(4, 3, 3, "mirror").tolist()
    [3, 2, 1, 0, 1, 2, 3, 2, 1, 0]
    >>> extension_indices(2, 2, 3, "wrap").tolist()
    [0, 1, 0, 1, 0, 1, 0]
    """
    i = np.arange(-before, n + after)
    if mode == "reflect":
        i = np.mod(i, 2 * n)
        i = np.where(i >= n, 2 * n - 1 - i, i)
    elif mode == "mirror":
        if n == 1:
            i = np.zeros_like(i)
        else:
            i = np.mod(i, 2 * n - 2)
            i = np.where(i >= n, 2 * n - 2 - i, i)
    elif mode == "nearest":
        i = np.clip(i, 0, n - 1)
    elif mode == "wrap":
        i = np.mod(i, n)
    else:  # constant
        i = np.where((i < 0) | (i >= n), -1, i)
    return i.astype(np.intp)


def kernel_anchor(kernel_shape: tuple[int, ...], flipped: bool) -> tuple[int, ...]:
    """Index of the kernel sample that lies over the output sample, per axis.

    ``scipy.ndimage.correlate`` centres a kernel of size ``k`` at ``k // 2``;
    ``scipy.ndimage.convolve`` flips the kernel and, for even sizes, shifts the centre by one,
    which puts the flipped kernel's centre at ``(k - 1) // 2``.

    >>> kernel_anchor((3, 4), flipped=False), kernel_anchor((3, 4), flipped=True)
    ((1, 2), (1, 1))
    """
    if flipped:
        return tuple((k - 1) // 2 for k in kernel_shape)
    return tuple(k // 2 for k in kernel_shape)
