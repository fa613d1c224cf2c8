"""1x1 convolutions and ``nn.Linear`` layers as two thinner layers (truncated SVD).

A weight ``W`` of shape ``(C_out, C_in)`` (a linear layer, or a 1x1 convolution's kernel)
truncated to ``r`` singular triplets is ``U_r (S_r V_r^T)``: a first layer ``C_in -> r``
without bias (``V_r^T`` scaled by the singular values) and a second ``r -> C_out`` with the
original bias. It pays when ``r (C_in + C_out) < C_in C_out``. This is the "weight SVD" of
Qualcomm AIMET and of Denton et al., "Exploiting Linear Structure Within Convolutional
Networks for Efficient Evaluation" (NIPS 2014), and the channel decomposition of Zhang et al.
(2016) before its data-driven refit.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from .._checks import SepconvTypeError, SepconvValueError
from ._linalg import lowrank

__all__ = ["LowRank", "linear_factors", "lowrank_layer", "lowrank_limit", "lowrank_padding"]


class LowRank(nn.Sequential):
    """Two thinner layers replacing one ``nn.Linear`` or 1x1 convolution: ``first`` then ``second``.

    ``first`` maps ``in_features`` to ``rank`` channels (no bias; a 1x1 convolution keeps the
    original stride and padding here), ``second`` maps ``rank`` to ``out_features`` with the
    original bias. State-dict keys ``0.weight``, ``1.weight``, ``1.bias``.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from sepconv.convert import lowrank_layer
    >>> linear = nn.Linear(64, 32)
    >>> layer, error = lowrank_layer(linear, rank=32)
    >>> layer.rank, error < 1e-6
    (32, True)
    >>> x = torch.randn(5, 64)
    >>> torch.allclose(layer(x), linear(x), atol=1e-5)
    True
    """

    def __init__(self, first: nn.Module, second: nn.Module, rank: int) -> None:
        super().__init__(first, second)
        self.rank = rank

    def multiplications(self, positions: int) -> int:
        """Mult-adds for ``positions`` output positions (rows of a linear layer's input)."""
        first, second = self[0], self[1]
        c_in = first.in_features if isinstance(first, nn.Linear) else first.in_channels
        c_out = second.out_features if isinstance(second, nn.Linear) else second.out_channels
        return positions * self.rank * (c_in + c_out)


def _matrix(layer: nn.Module) -> np.ndarray:
    weight = layer.weight.detach().to("cpu", torch.float64).numpy()
    return weight.reshape(weight.shape[0], -1)


def lowrank_limit(layer: nn.Module) -> int:
    """The exact rank ``min(C_in, C_out)`` of a linear layer or 1x1 convolution."""
    return min(_matrix(layer).shape)


def lowrank_padding(layer: nn.Module) -> Any:
    """Torch padding of a 1x1 convolution for ``nn.ConvNd``, or ``None`` when not expressible."""
    padding = getattr(layer, "keras_padding", layer.padding)
    if padding in ("same", "valid"):
        return 0  # a 1x1 kernel needs no padding at any stride in either convention
    if isinstance(padding, tuple) and all(isinstance(p, int) for p in padding):
        return padding
    return None


def linear_factors(
    weight: Any, rank: int, *, covariance: Any = None
) -> tuple[np.ndarray, np.ndarray, float]:
    """First ``(rank, C_in)`` and second ``(C_out, rank)`` factors of a ``(C_out, C_in)`` weight.

    Parameters
    ----------
    weight : array_like or Tensor, shape (C_out, C_in) or (C_out, C_in, 1, ...)
    rank : int
        At most ``min(C_out, C_in)``, which is exact.
    covariance : array_like or Tensor, shape (C_in, C_in), optional
        Second moment ``S = E[x x^T]`` of the layer's inputs. With it the truncation minimises
        the expected output error ``||(W - second @ first) S^{1/2}||_F``: SVD of ``W S^{1/2} =
        U Sig V^T``, ``first = V_r^T S^{-1/2}``, ``second = U_r Sig_r`` (Zhang et al., TPAMI
        2016; SVD-LLM). Eigenvalues below ``1e-6`` of the largest are raised to that.

    Returns
    -------
    first, second : ndarray
        ``second @ first`` is the best rank-``rank`` approximation (Eckart–Young), in the
        weighted norm with ``covariance``.
    relative_error : float
        ``||W - second @ first||_F / ||W||_F``; with ``covariance``, ``||(W - second @ first)
        S^{1/2}||_F / ||W S^{1/2}||_F``.

    Raises
    ------
    ValueError
        When ``rank`` exceeds ``min(C_out, C_in)``, or ``covariance`` is not a finite
        ``(C_in, C_in)`` array.

    Examples
    --------
    >>> import numpy as np
    >>> w = np.random.default_rng(0).standard_normal((6, 4))
    >>> first, second, err = linear_factors(w, 4)
    >>> first.shape, second.shape, err < 1e-12
    ((4, 4), (6, 4), True)
    >>> x = np.random.default_rng(1).standard_normal((200, 4)) * [3.0, 1.0, 0.1, 0.1]
    >>> plain = linear_factors(w, 2)
    >>> weighted = linear_factors(w, 2, covariance=x.T @ x / len(x))
    >>> e_plain, e_weighted = [np.linalg.norm(x @ (w - s @ f).T) for f, s, _ in (plain, weighted)]
    >>> bool(e_weighted < e_plain / 5)  # output error on those inputs
    True
    """
    if isinstance(weight, torch.Tensor):
        weight = weight.detach().to("cpu", torch.float64).numpy()
    matrix = np.asarray(weight, dtype=np.float64)
    matrix = matrix.reshape(matrix.shape[0], -1)
    limit = min(matrix.shape)
    if not 1 <= rank <= limit:
        raise SepconvValueError(
            f"`rank` must be between 1 and min(C_out, C_in) = {limit} for a weight of shape "
            f"{matrix.shape}, got {rank}"
        )
    if covariance is not None:
        from ._whiten import check_moment, whitened_terms

        moment = check_moment("covariance", covariance, (matrix.shape[1],) * 2)
        second, first, error, values = whitened_terms(matrix, moment, rank, lowrank)
        norm = math.sqrt(float(np.sum(values**2)))
        return first, second, (error / norm if norm else 0.0)
    part = lowrank(matrix, rank=rank)
    second = np.stack([left for left, _ in part.terms], axis=1)
    first = np.stack([right for _, right in part.terms])
    norm = float(np.linalg.norm(matrix))
    return first, second, (part.error / norm if norm else 0.0)


def lowrank_layer(
    layer: nn.Module, rank: int, *, empty: bool = False, covariance: Any = None
) -> tuple[LowRank, float]:
    """A :class:`LowRank` pair approximating an ``nn.Linear`` or a 1x1 ``nn.ConvNd`` (groups 1).

    Returns the pair (bias copied; weights left as initialised when ``empty``) and the
    relative weight error (weighted by ``covariance``, the ``(C_in, C_in)`` second moment of
    the inputs, when given: see :func:`linear_factors`). See :class:`LowRank` for an example.
    """
    common = {"device": layer.weight.device, "dtype": layer.weight.dtype}
    has_bias = layer.bias is not None
    if isinstance(layer, nn.Linear):
        first = nn.Linear(layer.in_features, rank, bias=False, **common)
        second = nn.Linear(rank, layer.out_features, bias=has_bias, **common)
    elif isinstance(layer, (nn.Conv1d, nn.Conv2d, nn.Conv3d)) and math.prod(layer.kernel_size) == 1:
        padding = lowrank_padding(layer)
        if layer.groups != 1 or padding is None:
            declared = getattr(layer, "keras_padding", layer.padding)
            raise SepconvValueError(
                f"`layer` must have groups=1 and torch or 'same'/'valid' padding, got "
                f"groups={layer.groups}, padding={declared!r}"
            )
        cls = (
            type(layer)
            if type(layer) in (nn.Conv1d, nn.Conv2d, nn.Conv3d)
            else next(c for c in (nn.Conv1d, nn.Conv2d, nn.Conv3d) if isinstance(layer, c))
        )
        first = cls(
            layer.in_channels,
            rank,
            1,
            layer.stride,
            padding,
            bias=False,
            padding_mode=layer.padding_mode,
            **common,
        )
        second = cls(rank, layer.out_channels, 1, bias=has_bias, **common)
    else:
        raise SepconvTypeError(
            f"`layer` must be an nn.Linear or a 1x1 convolution, got {type(layer).__name__}"
        )
    pair = LowRank(first, second, rank)
    if empty:
        return pair, float("nan")
    first_w, second_w, error = linear_factors(layer.weight, rank, covariance=covariance)
    with torch.no_grad():
        first.weight.copy_(torch.from_numpy(first_w).reshape(first.weight.shape))
        second.weight.copy_(torch.from_numpy(second_w).reshape(second.weight.shape))
        if has_bias:
            second.bias.copy_(layer.bias)
    return pair, error
