"""Tensors and kernels drawn as 3-D blocks of cells (matplotlib, oblique projection).

A ``(H, W, C)`` array is drawn as the primer draws it: a block ``W`` cells wide, ``H`` cells
high and ``C`` cells deep, whose visible faces show the real values: the front face is channel
0, the top face the first row of every channel and the right face the last column of every
channel. Blocks with many channels get thinner slices, so an 8x8x256 block stays on the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Block", "draw_block", "signed_colors", "channel_colors", "photo_colors", "arrow"]

# Direction of the depth axis on the page, per cell of depth.
OBLIQUE = (0.5, 0.36)


@dataclass(frozen=True)
class Block:
    """Where a drawn block lies on the page: its front-face corner and its full extent."""

    x: float
    y: float
    width: float  # front face
    height: float  # front face
    depth_x: float  # extent of the depth axis on the page
    depth_y: float

    @property
    def right(self) -> float:
        return self.x + self.width + self.depth_x

    @property
    def top(self) -> float:
        return self.y + self.height + self.depth_y

    @property
    def middle_y(self) -> float:
        return self.y + (self.height + self.depth_y) / 2


def signed_colors(
    values: np.ndarray, limit: float | None = None, cmap: str = "RdBu_r"
) -> np.ndarray:
    """RGBA of signed values on a diverging map centred at 0 (``limit`` maps to the ends)."""
    import matplotlib

    values = np.asarray(values, dtype=np.float64)
    if limit is None:
        limit = float(np.max(np.abs(values))) or 1.0
    return matplotlib.colormaps[cmap](0.5 + 0.5 * np.clip(values / limit, -1, 1))


def channel_colors(values: np.ndarray) -> np.ndarray:
    """RGBA of an ``(H, W, 3)`` RGB array in 0..1, each channel tinted with its own colour."""
    values = np.clip(np.asarray(values, dtype=np.float64), 0, 1)
    h, w, c = values.shape
    rgba = np.ones((h, w, c, 4))
    for channel in range(c):
        tint = np.zeros(3)
        tint[channel % 3] = 1.0
        # From near black (0) to the pure primary colour (1), lifted so dark cells stay visible.
        shade = 0.12 + 0.88 * values[..., channel, None]
        rgba[..., channel, :3] = shade * (0.25 + 0.75 * tint)
    return rgba


def photo_colors(rgb: np.ndarray) -> np.ndarray:
    """RGBA of an ``(H, W, 3)`` RGB array in 0..1: the pixels as they look."""
    rgb = np.clip(np.asarray(rgb, dtype=np.float64), 0, 1)
    return np.concatenate([rgb, np.ones(rgb.shape[:2] + (1,))], axis=-1)


def _shade(rgba: np.ndarray, factor: float) -> np.ndarray:
    out = rgba.copy()
    out[..., :3] *= factor
    return out


def draw_block(
    ax: Any,
    x: float,
    y: float,
    colors: np.ndarray,
    *,
    front: np.ndarray | None = None,
    cell: float = 1.0,
    max_depth: float = 6.0,
    label: str | None = None,
    dims: tuple[str, str, str] | None = None,
    fontsize: float = 11,
    grid: bool | None = None,
    zorder: float = 1,
) -> Block:
    """Draw an ``(H, W, C, 4)`` RGBA array as a block with its front corner at ``(x, y)``.

    ``front`` (``(H, W, 4)``) replaces the colours of the front face (for a photograph shown
    as it looks). ``dims`` labels the height, width and depth edges; ``label`` goes under the
    block. Blocks drawn later with a higher ``zorder`` hide those behind them. Returns where the
    block lies.
    """
    from matplotlib.collections import PolyCollection

    h, w, c = colors.shape[:3]
    depth = min(1.0, max_depth / c) * cell
    ox, oy = OBLIQUE[0] * depth, OBLIQUE[1] * depth
    if grid is None:
        grid = depth >= 0.3 * cell
    polygons, faces = [], []
    front_colors = colors[:, :, 0] if front is None else front
    for i in range(h):
        for j in range(w):
            x0, y0 = x + j * cell, y + (h - 1 - i) * cell
            polygons.append([(x0, y0), (x0 + cell, y0), (x0 + cell, y0 + cell), (x0, y0 + cell)])
            faces.append(front_colors[i, j])
    top = _shade(colors[0], 0.88)
    for k in range(c):
        for j in range(w):
            x0, y0 = x + j * cell + k * ox, y + h * cell + k * oy
            polygons.append(
                [(x0, y0), (x0 + cell, y0), (x0 + cell + ox, y0 + oy), (x0 + ox, y0 + oy)]
            )
            faces.append(top[j, k])
    side = _shade(colors[:, -1], 0.72)
    for k in range(c):
        for i in range(h):
            x0, y0 = x + w * cell + k * ox, y + (h - 1 - i) * cell + k * oy
            polygons.append(
                [(x0, y0), (x0 + ox, y0 + oy), (x0 + ox, y0 + cell + oy), (x0, y0 + cell)]
            )
            faces.append(side[i, k])
    ax.add_collection(
        PolyCollection(
            polygons,
            facecolors=np.asarray(faces),
            edgecolors=(1, 1, 1, 0.55) if grid else "none",
            linewidths=0.4 if grid else 0,
            zorder=zorder,
        )
    )
    dx, dy = c * ox, c * oy
    W, H = w * cell, h * cell
    outline = [
        (x, y),
        (x + W, y),
        (x + W + dx, y + dy),
        (x + W + dx, y + H + dy),
        (x + dx, y + H + dy),
        (x, y + H),
        (x, y),
    ]
    lines = {"color": "0.15", "zorder": zorder + 0.5}
    ax.plot(*zip(*outline), lw=0.9, solid_joinstyle="round", **lines)
    ax.plot([x + W, x + W, x], [y, y + H, y + H], lw=0.6, **lines)
    ax.plot([x + W, x + W + dx], [y + H, y + H + dy], lw=0.6, **lines)
    block = Block(x, y, W, H, dx, dy)
    if dims is not None:
        height, width, chans = dims
        ax.text(
            x - 0.25 * cell,
            y + H / 2,
            height,
            ha="right",
            va="center",
            fontsize=fontsize - 1,
            color="0.25",
        )
        ax.text(
            x + W / 2,
            y - 0.25 * cell,
            width,
            ha="center",
            va="top",
            fontsize=fontsize - 1,
            color="0.25",
        )
        ax.text(
            x + W + dx / 2 + 0.35 * cell,
            y + dy / 2 - 0.15 * cell,
            chans,
            ha="left",
            va="top",
            fontsize=fontsize - 1,
            color="0.25",
        )
    if label:
        ax.text(
            x + (W + dx) / 2,
            y - (1.6 if dims else 0.6) * cell,
            label,
            ha="center",
            va="top",
            fontsize=fontsize,
            fontweight="bold",
        )
    return block


def arrow(
    ax: Any,
    start: tuple[float, float],
    end: tuple[float, float],
    text: str = "",
    *,
    fontsize: float = 10,
    above: bool = True,
) -> None:
    """A labelled arrow from ``start`` to ``end``."""
    ax.annotate(
        "",
        xy=end,
        xytext=start,
        arrowprops={"arrowstyle": "-|>", "color": "0.3", "lw": 1.4, "shrinkA": 2, "shrinkB": 2},
    )
    if text:
        mx, my = (start[0] + end[0]) / 2, (start[1] + end[1]) / 2
        ax.text(
            mx,
            my + (0.5 if above else -0.5),
            text,
            ha="center",
            va="bottom" if above else "top",
            fontsize=fontsize,
            color="0.15",
            linespacing=1.25,
        )
