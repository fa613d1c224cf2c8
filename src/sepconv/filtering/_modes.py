"""Border modes: SciPy's names, their OpenCV, NumPy, dask and torch equivalents, and the
indices that extend an axis the way ``scipy.ndimage`` does.

=========  ===========================  ==================  =================  ==============
mode       extends ``a b c d`` as       OpenCV border       ``np.pad`` mode    torch ``F.pad``
=========  ===========================  ==================  =================  ==============
reflect    ``c b a | a b c d | d c b``  BORDER_REFLECT      ``'symmetric'``    (none)
mirror     ``d c b | a b c d | c b a``  BORDER_REFLECT_101  ``'reflect'``      ``'reflect'``
nearest    ``a a a | a b c d | d d d``  BORDER_REPLICATE    ``'edge'``         ``'replicate'``
constant   ``k k k | a b c d | k k k``  BORDER_CONSTANT     ``'constant'``     ``'constant'``
wrap       ``b c d | a b c d | a b c``  (none in filter2D)  ``'wrap'``         ``'circular'``
=========  ===========================  ==================  =================  ==============

Extensions longer than the axis repeat the pattern (period ``2n`` for reflect, ``2n - 2`` for
mirror, ``n`` for wrap), as ``scipy.ndimage`` does; the torch engine pads with these indices
so it follows the same rule.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MODES", "NUMPY_PAD", "OPENCV_BORDER", "extension_indices", "kernel_anchor"]

MODES = ("reflect", "mirror", "nearest", "constant", "wrap")

#: ``np.pad`` mode with the same extension as each SciPy mode.
NUMPY_PAD = {
    "reflect": "symmetric",
    "mirror": "reflect",
    "nearest": "edge",
    "constant": "constant",
    "wrap": "wrap",
}

#: Name of the OpenCV border constant for each mode (``None``: OpenCV's filters lack it).
OPENCV_BORDER = {
    "reflect": "BORDER_REFLECT",
    "mirror": "BORDER_REFLECT_101",
    "nearest": "BORDER_REPLICATE",
    "constant": "BORDER_CONSTANT",
    "wrap": None,
}


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
