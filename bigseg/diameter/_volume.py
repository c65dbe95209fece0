"""The LoG diameter estimate of a stored volume, read within a bounded memory.

The estimate of a volume must not depend on whether it fits one read. So a
stored volume is examined on the working grid :func:`~bigseg.diameter.log_diameter`
would give its whole (level-0) image, from the coarsest pyramid level no
coarser than that grid::

    level fits one read (_READ_VOXELS)?  yes -> read it whole
                                         no  -> cut it into equal, non-overlapping tiles of at most
                                                one read (and _WORK_VOXELS working voxels), read the
                                                _MAX_BOXES brightest in the coarse view, one at a time
    -> each read resampled to the working grid, its blobs found (``_log._evidence``)
    -> the blobs of all reads pooled and decided on as one image's (``_log._decide``)
    -> the strongest structure at the grid's finest scale (small nuclei in a large image):
       halve the working voxel, down to half the finest voxel, and read again

Memory: one read plus ``_MAX_BOXES`` working grids, whatever the volume.
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np

from bigseg.diameter import _log
from bigseg.diameter._log import AmbiguousDiameterError, LogDiameterEstimate
from bigseg.io import Levels, Volume, coarse_view, volume_levels

__all__ = ["volume_log_diameter"]

logger = logging.getLogger(__name__)

# A read for the estimate holds at most this many voxels, and at most this many reads are made.
_READ_VOXELS = 2**22
_MAX_BOXES = 4


def _boxes(levels: Levels, level: int, work_um: float) -> list[tuple[slice, ...]]:
    """Where to read level ``level`` for a working grid of ``work_um`` µm: the whole level where it fits
    one read, else the ``_MAX_BOXES`` brightest tiles (in the coarse view) of a tiling of it.

    A tile holds at most ``_READ_VOXELS`` voxels and at most ``_log._WORK_VOXELS`` on the working grid
    (so that it is examined at ``work_um``, as the whole image would be); axes shorter than a cube's
    side are read whole, the rest share what is left; the tiles (as many per axis as that side needs,
    of equal size) cover the level without overlapping.
    """
    shape, voxel = levels.shapes[level], levels.voxel_sizes[level]
    if math.prod(shape) <= _READ_VOXELS:
        return [tuple(slice(0, s) for s in shape)]
    left, free = min(float(_READ_VOXELS), _log._WORK_VOXELS * work_um**3 / math.prod(voxel)), [0, 1, 2]
    side = [0, 0, 0]
    for ax in sorted(range(3), key=lambda a: shape[a]):
        side[ax] = max(1, min(shape[ax], int(left ** (1 / len(free)))))
        left /= side[ax]
        free.remove(ax)
    counts = [-(-n // s) for n, s in zip(shape, side)]
    edges = [np.linspace(0, n, c + 1).round().astype(int) for n, c in zip(shape, counts)]
    tiles = [tuple(slice(int(e[i]), int(e[i + 1])) for e, i in zip(edges, idx)) for idx in np.ndindex(*counts)]
    view, view_voxel, offset = coarse_view(levels)
    centres = [(np.arange(n) + 0.5) * v + o for n, v, o in zip(view.shape, view_voxel, offset)]

    def brightness(tile: tuple[slice, ...]) -> float:
        inside = [np.flatnonzero((c >= sl.start * v) & (c < sl.stop * v)) for c, sl, v in zip(centres, tile, voxel)]
        if any(len(i) == 0 for i in inside):  # outside the coarse view (a central box of a huge image)
            return -math.inf
        return float(view[np.ix_(*inside)].mean())

    bright = [brightness(t) for t in tiles]
    order = sorted(range(len(tiles)), key=lambda k: (-bright[k], k))
    return [tiles[k] for k in order[:_MAX_BOXES] if math.isfinite(bright[k]) or k == order[0]]


def volume_log_diameter(volume: Volume) -> LogDiameterEstimate:
    """:func:`~bigseg.diameter.log_diameter` of a stored volume, on the working grid its whole image
    would have, read within a bounded memory (see the module's docstring).

    Parameters
    ----------
    volume : Volume
        The image, with its pyramid levels where it has them.

    Returns
    -------
    LogDiameterEstimate

    Raises
    ------
    AmbiguousDiameterError
        As :func:`~bigseg.diameter.log_diameter`, for the pooled reads.
    """
    t0 = time.perf_counter()
    levels = volume_levels(volume)
    v0 = levels.voxel_sizes[0]
    finest = min(v0) / 2
    work_um = _log._work_voxel(levels.shapes[0], v0)
    while True:
        level = max(i for i, v in enumerate(levels.voxel_sizes)
                    if i == 0 or all(a <= max(work_um, b) * (1 + 1e-6) for a, b in zip(v, v0)))
        boxes = _boxes(levels, level, work_um)
        voxel = levels.voxel_sizes[level]
        evs = [_log._evidence(levels.read(level, sl), voxel, work_um) for sl in boxes]
        what = f"the image ({levels.shapes[0]} voxels of {v0} µm; {len(boxes)} read(s) of level {level})"
        try:
            return _log._decide(evs, work_um, what, t0)
        except AmbiguousDiameterError as exc:
            if not exc.too_fine or work_um <= finest * (1 + 1e-6):
                raise
            logger.info("diameter: structure at the finest scale of a %.3g µm working grid; trying %.3g µm",
                        work_um, max(work_um / 2, finest))
            work_um = max(work_um / 2, finest)
