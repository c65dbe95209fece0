"""Whole-volume intensity normalisation.

Statistics come from the whole volume (a low-resolution level when the image
has a pyramid), never from one block, so a voxel's normalised value does not
depend on how the volume is blocked.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from bigseg.errors import InputError

from bigseg.io import check_finite

if TYPE_CHECKING:
    from bigseg.io import Volume

__all__ = ["Normalization", "estimate_normalization"]

logger = logging.getLogger(__name__)

# A level with at most this many voxels is read whole to estimate statistics.
_MAX_STATS_VOXELS = 2**25


@dataclass(frozen=True, slots=True)
class Normalization:
    """Affine map of raw intensities to ~[0, 1]: ``(x - low) / (high - low)``.

    ``threshold`` is an Otsu threshold of the normalised intensities, used by
    the classical predictor as its foreground level.
    """

    low: float
    high: float
    threshold: float = 0.5

    def __post_init__(self) -> None:
        for name in ("low", "high", "threshold"):
            v = getattr(self, name)
            if not math.isfinite(v):
                raise InputError(f"Normalization.{name} must be finite, got {v}")
        if self.high <= self.low:
            raise InputError(f"Normalization.high ({self.high}) must be > low ({self.low})")

    def apply(self, block: np.ndarray) -> np.ndarray:
        """Return ``block`` normalised, as float32 (not clipped)."""
        out = block.astype(np.float32, copy=True)
        out -= np.float32(self.low)
        out /= np.float32(self.high - self.low)
        return out


def _sample(volume: Volume) -> np.ndarray:
    for level in reversed(range(volume.n_levels)):
        shape = volume.level_shapes[level]
        if level == 0 or int(np.prod(shape)) >= 32**3:
            if int(np.prod(shape)) <= _MAX_STATS_VOXELS:
                return volume.read_level(level)
            break
    # One big level: read a deterministic subset of z-slabs (whole-volume, blocking-independent).
    from bigseg.tiling import Roi

    level = volume.n_levels - 1
    shape = volume.level_shapes[level]
    plane = int(np.prod(shape[1:]))
    n = max(1, _MAX_STATS_VOXELS // plane)
    zs = np.unique(np.linspace(0, shape[0] - 1, num=min(n, shape[0])).astype(int))
    vol = volume.with_level(level)
    return np.stack([vol.read(Roi((z, 0, 0), (1, *shape[1:])))[0] for z in zs])


def estimate_normalization(volume: Volume, *, percentiles: tuple[float, float] = (1.0, 99.8)) -> Normalization:
    """Percentile normalisation of ``volume`` from its coarsest useful level.

    Raises
    ------
    InputError
        If the sample contains NaN or infinite values.
    """
    sample = _sample(volume)
    check_finite(sample, f"the image {volume.source!r} (in the level used for statistics)")
    lo, hi = (float(v) for v in np.percentile(sample, percentiles))
    if hi <= lo:
        # Constant image: nothing to find; keep a valid affine map.
        logger.warning("image %s has constant intensity %s: no nuclei can be found", volume.source, lo)
        return Normalization(lo, lo + 1.0, threshold=1.0)
    norm = (sample.astype(np.float32) - lo) / (hi - lo)
    from skimage.filters import threshold_otsu

    thr = float(threshold_otsu(np.clip(norm, 0, 1)))
    logger.info("normalisation: low=%.4g high=%.4g otsu=%.3f", lo, hi, thr)
    return Normalization(lo, hi, threshold=thr)
