"""The model's patches on one grid fixed to the whole volume, and their blending.

Patches sit at fixed places of the volume's model grid (model voxel ``k`` is
data coordinate ``k * step``, see :mod:`bigseg.predict._scale`), not where a
block happens to start. Along each axis, patch ``j`` reads the window
``[j * stride - border, j * stride - border + size)`` and contributes to the
voxels of its *support* ``[j * stride, j * stride + size - 2 * border)`` with
a weight that depends only on the position in the patch::

    model voxels  0           S           2S          3S        (S = stride, b = border)
    window j=0  [b|  support  |b]
    window j=1              [b|  support  |b]
    window j=2                          [b|  support  |b]

A voxel's maps are the weighted mean of the patches whose support holds it,
summed in the patches' global (row-major) order. So a block that evaluates
exactly the patches whose support meets its write ROI, from the same input, gets
the same maps bit for bit as the whole volume: the maps are a function of the
volume alone, not of the blocking.

Two weightings:

``"gaussian"``
    border 0, a Gaussian of sigma ``size / 8`` (MONAI's default): patch
    borders, where the network sees zero padding, count little.
``"tile"``
    overlap-tile: a box of ones on the support, with ``stride = size - 2 *
    border``, so each voxel comes from exactly one patch, at least ``border``
    voxels from its border.

The input a write ROI needs reaches :attr:`PatchGrid.reach` model voxels beyond it
on each side. Windows that stick out of the image are filled by repeating
its edge, which matches the whole volume only where the image edge is the
volume's edge: elsewhere the caller's halo must hold the reach.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from bigseg.errors import InputError

__all__ = ["DEFAULT_BORDER", "Blend", "PatchGrid", "predict_on_grid"]

Blend = Literal["gaussian", "tile"]
# MONAI's default Gaussian: sigma = 1/8 of the patch.
_SIGMA_SCALE = 0.125
#: Overlap-tile's border by default: an eighth of the patch (overlap 0.25), at most 8 model voxels
#: (2/3 of the default model's training diameter of context on every side; docs/models.md).
DEFAULT_BORDER = 8


@dataclass(frozen=True, slots=True)
class PatchGrid:
    """Where the model's patches sit, and how much each voxel of a patch counts.

    Parameters
    ----------
    size : (int, int, int)
        Patch shape, model voxels.
    stride : (int, int, int)
        Distance between neighbouring patches, model voxels; at most
        ``size - 2 * border`` so that the supports cover every voxel.
    border : (int, int, int)
        Voxels at each patch border that get weight 0 (``"tile"``); 0 for ``"gaussian"``.
    blend : {"gaussian", "tile"}

    Examples
    --------
    >>> g = PatchGrid.from_overlap((64, 64, 64), 0.25, "tile")
    >>> g.stride, g.border, g.reach
    ((48, 48, 48), (8, 8, 8), (55, 55, 55))
    >>> list(g.indices((0, 0, 0), (1, 1, 50)))[:3]
    [(0, 0, 0), (0, 0, 1)]
    """

    size: tuple[int, int, int]
    stride: tuple[int, int, int]
    border: tuple[int, int, int]
    blend: Blend

    def __post_init__(self) -> None:
        if self.blend not in ("gaussian", "tile"):
            raise InputError(f"`blend` must be 'gaussian' or 'tile', got {self.blend!r}")
        for name in ("size", "stride", "border"):
            value = tuple(int(v) for v in getattr(self, name))
            if len(value) != 3:
                raise InputError(f"`{name}` must be 3 ints (z, y, x), got {getattr(self, name)}")
            object.__setattr__(self, name, value)
        for p, s, m in zip(self.size, self.stride, self.border):
            if m < 0 or p - 2 * m < 1 or not 1 <= s <= p - 2 * m:
                raise InputError(
                    f"patch grid size {self.size}, stride {self.stride}, border {self.border}: need border >= 0 "
                    "and 1 <= stride <= size - 2 * border per axis (else some voxels get no patch)"
                )

    @classmethod
    def from_overlap(cls, size: tuple[int, int, int], overlap: float, blend: Blend) -> PatchGrid:
        """Neighbouring windows share ``overlap`` of the patch (``"tile"``: the borders, half on each side)."""
        if not 0 <= overlap < 1:
            raise InputError(f"`overlap` must be in [0, 1), got {overlap}")
        shared = [int(round(p * overlap)) for p in size]
        if blend == "tile":
            border = [s // 2 for s in shared]
            stride = [p - 2 * m for p, m in zip(size, border)]
        else:
            border = [0, 0, 0]
            stride = [max(p - s, 1) for p, s in zip(size, shared)]
        return cls(tuple(size), tuple(stride), tuple(border), blend)  # type: ignore[arg-type]

    @classmethod
    def default(cls, size: tuple[int, int, int], blend: Blend) -> PatchGrid:
        """The predictors' default grid: ``"tile"`` with a border of ``min(size // 8, 8)``, ``"gaussian"`` at overlap 0.25.

        An 80³ patch then keeps its centre of 64³ (stride 64), so power-of-two blocks
        of at least 64 model voxels start and end on patch boundaries.

        >>> PatchGrid.default((80, 80, 16), "tile").stride
        (64, 64, 12)
        """
        if blend != "tile":
            return cls.from_overlap(size, 0.25, blend)
        border = [min(int(p) // 8, DEFAULT_BORDER) for p in size]
        return cls(tuple(size), tuple(int(p) - 2 * m for p, m in zip(size, border)), tuple(border), blend)  # type: ignore[arg-type]

    @property
    def support(self) -> tuple[int, ...]:
        return tuple(p - 2 * m for p, m in zip(self.size, self.border))

    @property
    def reach(self) -> tuple[int, int, int]:
        """Model voxels of input beyond a write ROI (any box) that its patches read, per side."""
        return tuple(p - m - 1 for p, m in zip(self.size, self.border))  # type: ignore[return-value]

    def axis_weights(self, axis: int) -> np.ndarray:
        """``(size,)`` float64 weights along ``axis``, zero on the borders."""
        p, m = self.size[axis], self.border[axis]
        w = np.zeros(p)
        if self.blend == "tile":
            w[m:p - m] = 1.0
        else:
            x = np.arange(p) - (p - 1) / 2
            w[m:p - m] = np.exp(-0.5 * (x[m:p - m] / (p * _SIGMA_SCALE)) ** 2)
        return w

    def weights(self) -> np.ndarray:
        """``(pz, py, px)`` float32 weight of each patch voxel (the same for every patch)."""
        wz, wy, wx = (self.axis_weights(a) for a in range(3))
        return (wz[:, None, None] * wy[None, :, None] * wx[None, None, :]).astype(np.float32)

    def indices(self, lo: tuple[int, ...], hi: tuple[int, ...]) -> Iterator[tuple[int, ...]]:
        """Patch indices whose support meets the model box ``[lo, hi)``, in row-major order."""
        ranges = []
        for a, b, s, n in zip(lo, hi, self.stride, self.support):
            first = math.ceil((a - n + 1) / s)
            last = (b - 1) // s
            ranges.append(range(first, last + 1))
        return itertools.product(*ranges)

    def window(self, index: tuple[int, ...]) -> tuple[int, ...]:
        """First model voxel of patch ``index``'s window."""
        return tuple(j * s - m for j, s, m in zip(index, self.stride, self.border))


def _read_window(image: np.ndarray, start: tuple[int, ...], size: tuple[int, ...]) -> np.ndarray:
    """``image[start : start + size]``, edge values repeated where it sticks out."""
    lo = [min(max(s, 0), n - 1) for s, n in zip(start, image.shape)]
    hi = [max(min(s + p, n), lo_ + 1) for s, p, n, lo_ in zip(start, size, image.shape, lo)]
    part = image[tuple(slice(a, b) for a, b in zip(lo, hi))]
    pad = [(a - s, s + p - b) for s, p, a, b in zip(start, size, lo, hi)]
    if any(x or y for x, y in pad):
        # A window wholly outside the image (possible only beyond the volume) repeats its nearest edge voxel.
        pad = [(max(x, 0), max(y, 0)) for x, y in pad]
        part = np.pad(part, pad, mode="edge")
        part = part[tuple(slice(0, p) for p in size)] if part.shape != tuple(size) else part
    return part


def predict_on_grid(
    image: np.ndarray,
    forward: Callable[[torch.Tensor], torch.Tensor],
    grid: PatchGrid,
    *,
    origin: tuple[int, ...],
    lo: tuple[int, ...],
    hi: tuple[int, ...],
    batch_size: int = 2,
) -> np.ndarray:
    """Blended maps of the model box ``[lo, hi)`` from the patches of ``grid`` that meet it.

    Parameters
    ----------
    image : (Z, Y, X) ndarray of float32
        Input on the model grid; ``image[0, 0, 0]`` is global model voxel ``origin``.
    forward : callable
        ``(N, 1, pz, py, px)`` CPU tensor → ``(N, C, pz, py, px)`` tensor of maps,
        on any device; the blending runs on that device.
    grid : PatchGrid
    origin, lo, hi : (int, int, int)
        Global model-voxel coordinates; ``[lo, hi)`` lies inside the image.
    batch_size : int
        Patches per call of ``forward``. Every call gets exactly this many
        (the last batch is filled with zeros): on CPU a patch's maps then do
        not depend on which other patches share its batch.

    Returns
    -------
    (C, *(hi - lo)) ndarray of float32
    """
    if image.ndim != 3:
        raise InputError(f"`image` must be a (Z, Y, X) block, got shape {image.shape}")
    if batch_size < 1:
        raise InputError(f"`batch_size` must be >= 1, got {batch_size}")
    out_shape = tuple(b - a for a, b in zip(lo, hi))
    if min(out_shape) < 1 or any(a < o or b > o + n for a, b, o, n in zip(lo, hi, origin, image.shape)):
        raise InputError(f"model box {lo}..{hi} must be non-empty and inside the image {origin} + {image.shape}")
    weights = torch.from_numpy(grid.weights())
    starts = [grid.window(j) for j in grid.indices(lo, hi)]
    acc: torch.Tensor | None = None
    wsum: torch.Tensor | None = None
    for first in range(0, len(starts), batch_size):
        chunk = starts[first:first + batch_size]
        batch = np.zeros((batch_size, 1, *grid.size), dtype=np.float32)
        for i, start in enumerate(chunk):
            batch[i, 0] = _read_window(image, tuple(s - o for s, o in zip(start, origin)), grid.size)
        with torch.inference_mode():
            maps = forward(torch.from_numpy(batch)).float()
            if acc is None or wsum is None:
                # Blending happens where the maps are (on a GPU: no copy back until the end).
                weights = weights.to(maps.device)
                acc = torch.zeros((maps.shape[1], *out_shape), dtype=torch.float32, device=maps.device)
                wsum = torch.zeros(out_shape, dtype=torch.float32, device=maps.device)
            for i, start in enumerate(chunk):
                # Only the support: the border's weight is 0 (and must not carry a NaN in).
                a = [max(s + m, l) for s, m, l in zip(start, grid.border, lo)]
                b = [min(s + p - m, h) for s, p, m, h in zip(start, grid.size, grid.border, hi)]
                dst = tuple(slice(x - l, y - l) for x, y, l in zip(a, b, lo))
                src = tuple(slice(x - s, y - s) for x, y, s in zip(a, b, start))
                w = weights[src]
                acc[(slice(None), *dst)] += w * maps[i][(slice(None), *src)]
                wsum[dst] += w
    assert acc is not None and wsum is not None  # every box meets at least one support (stride <= support)
    with torch.inference_mode():
        return (acc / wsum).cpu().numpy()
