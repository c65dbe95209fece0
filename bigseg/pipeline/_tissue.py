"""Which blocks hold tissue: decided once, in the driver, from a low-resolution level.

A whole organ fills about half of its bounding box; the rest is dark camera
noise. Blocks far from any tissue are never read at level 0 nor predicted::

    coarse level ──► mean over one nucleus ──► threshold (noise floor of the whole level) ──► tissue
    tissue ──► dilated by the skip margin (in coarse voxels) ──► margin
    block active  ⇔  its write ROI meets tissue or margin

The coarse level is first averaged in bins (up to half a nucleus per axis) down to at most
:data:`MAX_MASK_VOXELS` voxels, which costs the filters below an eighth at bins of 2 and leaves
the noise after the nucleus mean as it was; the mask and the blocks' decisions use those bins.
It is then averaged over one nucleus (where its voxels are
smaller than a nucleus; near the volume's faces over the voxels inside it, with
a noise allowance grown to match), so camera noise averages out while a nucleus keeps
about half its contrast. The threshold then sits above the empty space's
noise, far below any nucleus: ``t = p1 + min(8 sigma, (otsu - p1) / 4)``, where
``p1`` is the 1st percentile of the averaged level, ``sigma`` its noise from the
1st-5th percentile spread, and ``otsu`` its Otsu threshold.

The skip margin (``bigseg.pipeline._plan.skip_margin``) is half a nucleus plus how
far the predictor's foreground (and the decoder's decisions on it) reach: a
skipped block's stored maps stay at 0, which its neighbours' floods treat exactly
as the empty space's maps, so a run without skipping finds nothing there either.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from bigseg.io import Volume
from bigseg.tiling import Grid

__all__ = ["TissueMask", "estimate_tissue"]

logger = logging.getLogger(__name__)

#: The finest level with at most this many voxels is used.
MAX_COARSE_VOXELS = 2**24
#: That level is averaged in bins (of at most half a nucleus per axis) to at most this many voxels
#: before the estimate: its filters then cost an eighth (at bins of 2), with the same noise after
#: the mean over one nucleus.
MAX_MASK_VOXELS = 2**21
TISSUE, MARGIN = 1, 2


@dataclass(frozen=True, eq=False)
class TissueMask:
    """The tissue estimate of one run.

    Attributes
    ----------
    level : int
        Input level it was computed on.
    factor : (3,) tuple of int
        Voxels of the segmented level per coarse voxel, per axis.
    threshold : float
        Raw intensity above which a coarse voxel is tissue.
    mask : (Z, Y, X) ndarray of uint8
        0 empty, 1 tissue, 2 margin (the dilation), at the coarse level.
    active : (n_blocks,) ndarray of bool
        Per block (linear order): processed (True) or skipped.
    """

    level: int
    factor: tuple[int, int, int]
    threshold: float
    mask: np.ndarray
    active: np.ndarray

    @property
    def n_skipped(self) -> int:
        return int(np.count_nonzero(~self.active))


def _coarse_level(volume: Volume) -> int | None:
    """The finest level (at or below the segmented one) small enough to read whole."""
    for level in range(volume.level, volume.n_levels):
        if math.prod(volume.level_shapes[level]) <= MAX_COARSE_VOXELS:
            return level
    return None


def _noise_floor(coarse: np.ndarray) -> tuple[float, float, float]:
    """The whole level's ``p1``, noise ``sigma`` and Otsu threshold (see the module docstring)."""
    from skimage.filters import threshold_otsu

    values = coarse.astype(np.float64, copy=False).ravel()
    p1, p5 = (float(v) for v in np.percentile(values, [1.0, 5.0]))
    sigma = (p5 - p1) / 0.681  # z(0.05) - z(0.01) of a normal distribution
    otsu = float(threshold_otsu(values)) if values.max() > values.min() else p1
    return p1, sigma, otsu


def tissue_threshold(
    coarse: np.ndarray, fill: np.ndarray | float = 1.0, floor: tuple[float, float, float] | None = None
) -> np.ndarray | float:
    """Raw intensity separating tissue from the empty space's noise (see the module docstring).

    ``fill`` is the fraction of each voxel's averaging window inside the volume (1 inside): a
    mean of fewer voxels near a face is noisier, so its noise allowance grows as ``1 / sqrt(fill)``
    (without that, camera noise at the volume's faces and corners read as tissue). ``floor``:
    :func:`_noise_floor` of ``coarse`` when already computed.
    """
    p1, sigma, otsu = floor if floor is not None else _noise_floor(coarse)
    return p1 + np.minimum(8.0 * sigma / np.sqrt(fill), max(0.0, otsu - p1) / 4.0)


def _nucleus_mean(coarse: np.ndarray, size: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Mean over one nucleus around each voxel, of the voxels inside the volume only, and the
    fraction of the window they fill."""
    image = coarse.astype(np.float32)
    if max(size) <= 1:
        return image, np.ones(1, dtype=np.float32)
    # The window's share inside the volume is a product over the axes: one line per axis, not a
    # filter over a volume of ones.
    fill = _outer([ndi.uniform_filter1d(np.ones(n, np.float32), k, mode="constant") for n, k in zip(image.shape, size)])
    return ndi.uniform_filter(image, size=size, mode="constant") / fill, fill


def _bins(shape: tuple[int, ...], size: tuple[int, ...]) -> tuple[int, ...]:
    """Voxels per bin and axis: the smallest common bin that brings ``shape`` to at most
    :data:`MAX_MASK_VOXELS`, capped at half of ``size`` (a nucleus, in voxels of ``shape``) so that
    the mean over one nucleus still spans two bins or more."""
    cap = tuple(max(1, n // 2) for n in size)
    b = 1
    while True:
        bins = tuple(min(b, c) for c in cap)
        if bins == cap or math.prod(-(-s // k) for s, k in zip(shape, bins)) <= MAX_MASK_VOXELS:
            return bins
        b += 1


def _bin_mean(image: np.ndarray, bins: tuple[int, ...]) -> np.ndarray:
    """Mean of ``image`` over bins of ``bins`` voxels (the last bin of an axis over the voxels it has)."""
    if all(b == 1 for b in bins):
        return image
    padded = np.pad(image.astype(np.float32), [(0, -s % b) for s, b in zip(image.shape, bins)])
    split = [x for s, b in zip(padded.shape, bins) for x in (s // b, b)]
    sums = padded.reshape(split).sum(axis=tuple(range(1, 2 * image.ndim, 2)), dtype=np.float32)
    counts = _outer([np.minimum(b, s - np.arange(0, s, b)).astype(np.float32) for s, b in zip(image.shape, bins)])
    return sums / counts


def _outer(lines: list[np.ndarray]) -> np.ndarray:
    """The product of one line per axis, broadcast to their grid (``lines[a]`` along axis ``a``)."""
    out = np.ones((1,) * len(lines), np.float32)
    for axis, line in enumerate(lines):
        out = out * line.reshape([-1 if a == axis else 1 for a in range(len(lines))])
    return out


def estimate_tissue(
    volume: Volume, grid: Grid, reach: tuple[int, ...], nucleus: tuple[int, ...]
) -> TissueMask | None:
    """The tissue mask and active blocks of ``grid``; None where no level is small enough to read whole.

    ``reach`` is the skip margin (voxels, per axis): blocks whose write ROI lies
    farther than that from tissue are skipped. ``nucleus`` is a nucleus
    diameter in voxels per axis.
    """
    level = _coarse_level(volume)
    if level is None:
        logger.warning("no level of %s has <= %d voxels: every block is processed (write a pyramid to skip "
                       "empty blocks)", volume.source, MAX_COARSE_VOXELS)
        return None
    coarse = volume.read_level(level)
    factor = tuple(-(-s // c) for s, c in zip(volume.shape, coarse.shape))
    bins = _bins(coarse.shape, tuple(max(1, round(n / f)) for n, f in zip(nucleus, factor)))
    coarse = _bin_mean(coarse, bins)
    factor = tuple(f * b for f, b in zip(factor, bins))
    size = tuple(max(1, round(n / f)) for n, f in zip(nucleus, factor))
    smooth, fill = _nucleus_mean(coarse, size)
    floor = _noise_floor(smooth)
    threshold = float(tissue_threshold(smooth, floor=floor))  # inside the volume; higher near its faces
    tissue = smooth > tissue_threshold(smooth, fill, floor)
    radius = tuple(-(-r // f) for r, f in zip(reach, factor))
    grown = ndi.maximum_filter(tissue.view(np.uint8), size=tuple(2 * r + 1 for r in radius), mode="constant") > 0
    mask = np.where(tissue, TISSUE, np.where(grown, MARGIN, 0)).astype(np.uint8)
    active = np.zeros(grid.n_blocks, dtype=bool)
    for block in grid.blocks():
        lo = [o // f for o, f in zip(block.write_roi.offset, factor)]
        hi = [-(-e // f) for e, f in zip(block.write_roi.end, factor)]
        active[block.linear] = bool(grown[tuple(slice(a, b) for a, b in zip(lo, hi))].any())
    logger.info("tissue: level %d in bins of %s (factor %s), threshold %.4g, %.1f%% of the volume, %d of %d blocks skipped",
                level, bins, factor, threshold, 100 * tissue.mean(), int((~active).sum()), grid.n_blocks)
    return TissueMask(level, factor, threshold, mask, active)  # type: ignore[arg-type]
