"""Is an image blur-limited along z? The shape of its blobs' axial profiles says so.

A ball of radius R blurred by a Gaussian of sd s falls from its centre value to 75 % and to 50 % at
radii whose ratio r75/r50 is 0.97 for s = 0.05 R, 0.86 for 0.2 R, 0.77 for 0.3 R, 0.69 for 0.4 R
and, from s = 0.5 R on, within 3 % of a Gaussian blob's 0.644 (``benchmarks/diameter_blur.py``):
past that the profile shows the blur, not the nucleus. Light microscopes blur 2-4x more along z
than across, so z is where an image becomes blur-limited first (the mesoSPIM preset: s = 1.33 R
along z, 0.53 R across). Where the blobs' median axial r75/r50 is at most that of a ball blurred
by 0.3 R, their z extent is more blur than nucleus and their profiles are rounded: the
measurement (``_log._measure``) then reads the z extent no longer than the lateral one (the
isotropic prior: the image does not show the nuclei's own elongation) and takes the level from
each blob's true peak (:func:`core_peak`) in the unsmoothed image (a smoothing, or a core's
median, widens a rounded blob's half-maximum region but not a flat-topped one's).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["BLUR_LIMITED_Q", "GAUSSIAN_Q", "core_peak"]

# r75/r50 of a ball blurred by a Gaussian of sd 0.3 R, and of a Gaussian blob (analytic; levels
# relative to the centre value).
BLUR_LIMITED_Q = 0.766
GAUSSIAN_Q = 0.644


def core_peak(box: np.ndarray, axes: Sequence[np.ndarray], fit: np.ndarray) -> float:
    """The value at a blob's centre (``axes``: offsets of ``box``'s voxels from it, broadcastable) of a
    quadratic least-squares fit of ``box`` over the voxels ``fit`` (at least 33 of them for its 10
    coefficients): the blob's peak, with noise averaged out. (A median of the core, right for
    flat-topped nuclei, sits below a rounded blob's peak and widens its half-maximum region.) On a
    flat top with grains it is unbiased but spreads about 1.7x more than the core's median: it is
    used only on blur-limited images, whose blur averages grains."""
    p = [np.broadcast_to(a, box.shape)[fit] for a in axes]
    design = np.stack([np.ones_like(p[0]), *p, *(a * b for k, a in enumerate(p) for b in p[k:])], axis=1)
    return float(np.linalg.lstsq(design, box[fit].astype(np.float64), rcond=None)[0][0])
