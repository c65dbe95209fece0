"""Reading boxes given in µm from the resolution levels of an image (pure numpy reads).

A :class:`Levels` describes the levels of one image (in memory or a stored
:class:`~bigseg.io.Volume`) and reads any voxel box of any level. On top of
it, :func:`coarse_view` gives a small whole-image view, :func:`crop_centres`
picks bright, far-apart places in it, and :func:`read_box` reads a box in µm
at about a requested voxel size from the coarsest level that is fine enough,
averaging whole boxes of voxels (``downsample(..., "mean")``) to reach it::

    level 0   0.5 µm
    level 1   1 µm     <- read_box(lo_um, hi_um, res_um=(2, 2, 2)) reads here,
    level 2   4 µm        then averages 2×2×2 voxels

A read holds at most ``MAX_READ_VOXELS`` voxels: a larger box keeps its
centre and shrinks, so memory is bounded whatever the image size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import ndimage as ndi

from bigseg.io._pyramid import downsample
from bigseg.io._volume import Volume
from bigseg.tiling import Roi

__all__ = [
    "MAX_READ_VOXELS",
    "Levels",
    "array_levels",
    "coarse_view",
    "crop_box",
    "crop_centres",
    "pick_level",
    "read_box",
    "volume_levels",
]

Size3 = tuple[float, float, float]
Shape3 = tuple[int, int, int]

# The coarse view comes from the finest level with at most this many voxels; failing that, the
# coarsest level if it holds at most MAX_READ_VOXELS.
COARSE_VOXELS = 2**22
# One read holds at most this many voxels (float32: 128 MiB).
MAX_READ_VOXELS = 2**25


@dataclass(frozen=True, slots=True)
class Levels:
    """Resolution levels of one image, read by voxel box as float32.

    Attributes
    ----------
    shapes : tuple of (Z, Y, X)
        Per level, finest first.
    voxel_sizes : tuple of (z, y, x) floats
        Per level, µm.
    read : callable
        ``read(level, slices) -> (Z, Y, X) ndarray of float32``.
    in_memory : bool
        True where reading the whole coarsest level costs nothing (an array).
    """

    shapes: tuple[Shape3, ...]
    voxel_sizes: tuple[Size3, ...]
    read: Callable[[int, tuple[slice, ...]], np.ndarray]
    in_memory: bool = False

    @property
    def extent_um(self) -> Size3:
        """Size of the image in µm, (z, y, x)."""
        return tuple(s * v for s, v in zip(self.shapes[0], self.voxel_sizes[0]))  # type: ignore[return-value]


def array_levels(image: np.ndarray, voxel_size: Size3) -> Levels:
    """One level: ``image`` (Z, Y, X) at ``voxel_size`` µm, in memory."""

    def read(_: int, sl: tuple[slice, ...]) -> np.ndarray:
        return np.asarray(image[sl], dtype=np.float32)

    return Levels((image.shape,), (voxel_size,), read, in_memory=True)  # type: ignore[arg-type]


def volume_levels(volume: Volume, transform: Callable[[np.ndarray], np.ndarray] | None = None) -> Levels:
    """The levels of ``volume`` from its chosen level down, each read passed through ``transform``
    (e.g. a normalisation; default: a cast to float32)."""
    first = volume.level
    apply = transform or (lambda block: block.astype(np.float32))

    def read(level: int, sl: tuple[slice, ...]) -> np.ndarray:
        roi = Roi(tuple(s.start for s in sl), tuple(s.stop - s.start for s in sl))
        return apply(volume.read_level(first + level, roi))

    return Levels(volume.level_shapes[first:], volume.level_voxel_sizes[first:], read)


def _whole_box_mean(block: np.ndarray, factors: tuple[int, ...]) -> np.ndarray:
    """Mean over whole boxes of ``factors`` voxels (a remainder at the far end is dropped)."""
    if all(f == 1 for f in factors):
        return block
    keep = tuple(slice(0, max(s // f, 1) * min(f, s)) for s, f in zip(block.shape, factors))
    return downsample(block[keep], tuple(min(f, s) for s, f in zip(block.shape, factors)), "mean")


def _slices(lo_um: Size3, hi_um: Size3, voxel: Size3, shape: Shape3) -> tuple[slice, ...]:
    out = []
    for lo, hi, v, s in zip(lo_um, hi_um, voxel, shape):
        a = min(max(int(math.floor(lo / v + 1e-6)), 0), s - 1)
        b = min(max(int(math.ceil(hi / v - 1e-6)), a + 1), s)
        out.append(slice(a, b))
    return tuple(out)


def coarse_view(levels: Levels, *, side: int = 128) -> tuple[np.ndarray, Size3, Size3]:
    """A low-resolution view: (array of at most ``side`` voxels a side, voxel size µm, offset µm).

    The finest level with at most ``COARSE_VOXELS`` voxels, else the coarsest
    level read whole where it is in memory or small enough, else the central
    box of the coarsest level (an image without a pyramid is sampled there only).
    """
    sizes = [math.prod(s) for s in levels.shapes]
    small = [i for i, n in enumerate(sizes) if n <= COARSE_VOXELS]
    level = small[0] if small else len(sizes) - 1
    shape, voxel = levels.shapes[level], levels.voxel_sizes[level]
    if small or levels.in_memory or sizes[level] <= MAX_READ_VOXELS:
        sl = tuple(slice(0, s) for s in shape)
    else:
        cube = int(MAX_READ_VOXELS ** (1 / 3))
        sl = tuple(slice(max((s - cube) // 2, 0), max((s - cube) // 2, 0) + min(s, cube)) for s in shape)
    view = levels.read(level, sl)
    factors = tuple(max(1, -(-n // side)) for n in view.shape)
    offset = tuple(s.start * v for s, v in zip(sl, voxel))
    return _whole_box_mean(view, factors), tuple(v * f for v, f in zip(voxel, factors)), offset  # type: ignore[return-value]


def crop_centres(levels: Levels, n: int) -> list[Size3]:
    """Centres (µm) of the ``n`` brightest regions of a smoothed coarse view, far apart.

    Deterministic, and independent of how the image is stored or later blocked.
    """
    view, voxel, offset = coarse_view(levels)
    extent = max(levels.extent_um)
    smooth = ndi.gaussian_filter(view.astype(np.float64), [extent / 16 / v for v in voxel], mode="nearest")
    grids = np.meshgrid(*[(np.arange(s) + 0.5) * v + o for s, v, o in zip(view.shape, voxel, offset)], indexing="ij")
    centres: list[Size3] = []
    for _ in range(n):
        idx = np.unravel_index(int(np.argmax(smooth)), smooth.shape)
        if not np.isfinite(smooth[idx]):
            break
        c = tuple(float(g[idx]) for g in grids)
        centres.append(c)  # type: ignore[arg-type]
        far = sum((g - ci) ** 2 for g, ci in zip(grids, c)) > (extent / 4) ** 2
        smooth = np.where(far, smooth, -np.inf)
    return centres


def crop_box(centre: Size3, side: Size3, extent: Size3) -> tuple[Size3, Size3]:
    """The box ``(lo, hi)`` of ``side`` µm centred on ``centre``, shifted (and clipped) into the image."""
    lo = tuple(min(max(c - s / 2, 0.0), max(e - s, 0.0)) for c, s, e in zip(centre, side, extent))
    hi = tuple(min(a + s, e) for a, s, e in zip(lo, side, extent))
    return lo, hi  # type: ignore[return-value]


def pick_level(levels: Levels, res_um: Size3) -> int:
    """Coarsest level no coarser than about ``res_um`` (or level 0 where that is coarser)."""
    base = levels.voxel_sizes[0]
    best = 0
    for i, v in enumerate(levels.voxel_sizes):
        if all(vi <= 1.5 * max(r, b) for vi, r, b in zip(v, res_um, base)):
            best = i
    return best


def read_box(levels: Levels, lo_um: Size3, hi_um: Size3, res_um: Size3) -> tuple[np.ndarray, Size3]:
    """The box ``[lo_um, hi_um)`` at about ``res_um`` µm per voxel: (float32 array, its voxel size µm).

    Read from :func:`pick_level`'s level, then averaged over whole boxes of
    voxels. A read holds at most ``MAX_READ_VOXELS`` voxels: a larger box keeps
    its centre and shrinks.
    """
    level = pick_level(levels, res_um)
    voxel, shape = levels.voxel_sizes[level], levels.shapes[level]
    sl = _slices(lo_um, hi_um, voxel, shape)
    keep = min(1.0, (MAX_READ_VOXELS / math.prod(s.stop - s.start for s in sl)) ** (1 / 3))
    if keep < 1:
        widths = [max(int((s.stop - s.start) * keep), 1) for s in sl]
        sl = tuple(slice((s.start + s.stop - w) // 2, (s.start + s.stop - w) // 2 + w) for s, w in zip(sl, widths))
    factors = tuple(max(1, round(r / v)) for r, v in zip(res_um, voxel))
    block = _whole_box_mean(levels.read(level, sl), factors)
    return block, tuple(v * f for v, f in zip(voxel, factors))  # type: ignore[return-value]
