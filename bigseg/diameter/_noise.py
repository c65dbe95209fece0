"""How strongly the image's pixel noise answers the LoG at each scale: the blobs' significance floor.

A blob counts only where its response stands several noise standard deviations above white
noise's response at its scale. That response is computed, not modelled: the image is noise of
sd ``s`` per native voxel, resampled to the working grid (:func:`bigseg.diameter._log._isotropic`:
an anti-aliasing blur where an axis shrinks, linear interpolation) and filtered by
``-σ² ∇²G_σ`` (on a grid coarsened by ``f``). Every step is linear and separable along the axes,
so the response is ``Σ_j A_j ⊗ B_k ⊗ B_l`` (second derivative along axis ``j``, smoothing along
the others) applied to the noise, and its variance follows from 1-D operators alone::

    var = σ⁴ s² Σ_{j,k} Π_axes mean over positions (row · row of the two 1-D operators)

The white-noise model ``0.3 s (V / w³)^½ σ^-1.5`` that it replaces holds only where σ is several
native voxels: on a grid finer than the native one (half the finest voxel, the usual working
grid) the interpolated noise is smooth, and the model overstated the response 1.3-11x below
about 2 native voxels (most along a coarse z step), so the gate asked far more of small nuclei
than of large ones; on a grid coarser than native it understated it by 10-30 %.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

__all__ = ["noise_response_sd", "pixel_noise_sd"]

# The 1-D operators span at most this many native voxels per axis (a window of a longer axis: the
# response's variance depends on the position only within a few σ of a face).
_MAX_AXIS = 256


def pixel_noise_sd(image: np.ndarray) -> float:
    """Robust sd of the pixel noise: MAD of neighbour differences along the finest-sampled axes."""
    diffs = [np.diff(image, axis=ax).ravel() for ax in (1, 2)]
    d = np.concatenate(diffs)
    mad = float(np.median(np.abs(d - np.median(d))))
    return max(1.4826 * mad / math.sqrt(2), 1e-12)


def _axis_operator(n: int, voxel: float, work: float) -> np.ndarray:
    """(n_work, n) matrix: ``n`` native samples of ``voxel`` µm to the working grid of ``work`` µm, as
    :func:`bigseg.diameter._log._isotropic` resamples one axis."""
    zoom = voxel / work
    eye = np.eye(n)
    if zoom < 1:
        eye = ndi.gaussian_filter1d(eye, (1 / zoom - 1) / 2, axis=0, mode="nearest")
    return ndi.zoom(eye, (zoom, 1), order=1, mode="nearest", grid_mode=True)


def noise_response_sd(shape: Sequence[int], voxel_size: Sequence[float], work_um: float,
                      sigmas_vox: Sequence[float] | np.ndarray, factors: Sequence[int]) -> np.ndarray:
    """sd of the response ``-σ² ∇²G_σ`` to white noise of unit sd per native voxel, per scale.

    ``shape`` and ``voxel_size`` (µm) are the native image's; ``sigmas_vox`` the scales in working
    voxels (of ``work_um`` µm) and ``factors`` the coarsening of the grid each is computed on
    (:func:`bigseg.diameter._log._responses`). Averaged over the positions of the grid.
    """
    ops = [_axis_operator(min(int(n), _MAX_AXIS), float(v), work_um) for n, v in zip(shape, voxel_size)]
    out = []
    for s, f in zip(sigmas_vox, factors):
        sf = s / f
        rows: list[dict[tuple[int, int], float]] = []  # per axis: mean row products of the (order a, order b) ops
        for op in ops:
            if f > 1:
                m = op.shape[0] // f
                op = op[: m * f].reshape(m, f, -1).mean(axis=1)
            a = {o: ndi.gaussian_filter1d(op, sf, axis=0, order=o, mode="nearest") for o in (0, 2)}
            rows.append({(p, q): float(np.mean(np.sum(a[p] * a[q], axis=1))) for p in (0, 2) for q in (0, 2)})
        var = sum(math.prod(rows[ax][(2 if ax == j else 0, 2 if ax == k else 0)] for ax in range(3))
                  for j in range(3) for k in range(3))
        out.append(sf**2 * math.sqrt(max(var, 0.0)))
    return np.array(out)
