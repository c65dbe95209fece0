"""Where the tissue is: an analytic mask of the volume (ellipsoid or brain-like blob).

Whole-organ volumes are mostly a tissue blob inside a dark box. The mask is a
function of the global voxel position, the volume shape and the seed alone,
so every block computes the same mask for its voxels whatever the blocking.
Coordinates are normalised to ``[-1, 1]`` per axis (the box)::

      z ┌───────────────────────────────┐   brain: two hemispheres, a cerebellum,
        │        ┌──────┬──────┐        │   olfactory bulbs and a brainstem
        │   ob  (  left │ right )  cb   │   (ellipsoids, unioned), their surface
        │        └──────┴──────┘        │   perturbed by a few smooth lobes
        └───────────────────────────────┘ y
"""

from __future__ import annotations

import functools
import math
from typing import Literal

import numpy as np

__all__ = ["TISSUE_KINDS", "TissueKind", "tissue_inside"]

TissueKind = Literal["none", "ellipsoid", "brain"]
TISSUE_KINDS: tuple[str, ...] = ("none", "ellipsoid", "brain")
TAG_TISSUE = 21

# (centre z, y, x), (radius z, y, x) in normalised box coordinates
_BRAIN_PARTS = (
    ((0.1, 0.1, -0.38), (0.86, 0.74, 0.58)),    # left hemisphere
    ((0.1, 0.1, 0.38), (0.86, 0.74, 0.58)),     # right hemisphere
    ((-0.1, -0.62, 0.0), (0.72, 0.34, 0.78)),   # cerebellum
    ((0.15, 0.8, -0.15), (0.36, 0.19, 0.17)),   # olfactory bulbs
    ((0.15, 0.8, 0.15), (0.36, 0.19, 0.17)),
    ((-0.5, -0.3, 0.0), (0.48, 0.6, 0.4)),      # brainstem
)
_N_LOBES = 4


def tissue_inside(
    kind: str, shape: tuple[int, int, int], seed: int, z: np.ndarray, y: np.ndarray, x: np.ndarray
) -> np.ndarray:
    """Whether voxel positions ``(z, y, x)`` (voxels, broadcastable float arrays) lie in the tissue.

    ``kind`` "none" is everywhere tissue; "ellipsoid" fills the box
    (about 52 % of it); "brain" is a seeded brain-like blob (about 45 %).
    """
    u = [(np.asarray(c, dtype=np.float64) - (s - 1) / 2) / (s / 2) for c, s in zip((z, y, x), shape)]
    if kind == "none":
        return np.ones(np.broadcast_shapes(*(a.shape for a in u)), dtype=bool)
    if kind == "ellipsoid":
        return (u[0] / 0.98) ** 2 + (u[1] / 0.98) ** 2 + (u[2] / 0.98) ** 2 < 1.0
    scale = 1.0 + _lobes(seed, u)
    inside = np.zeros(np.broadcast_shapes(*(a.shape for a in u)), dtype=bool)
    for centre, radius in _BRAIN_PARTS:
        q = sum(((a - c) / r) ** 2 for a, c, r in zip(u, centre, radius))
        inside |= q < scale**2
    return inside


@functools.lru_cache(maxsize=64)
def _lobe_waves(seed: int) -> tuple[tuple[float, float, float, float], ...]:
    rng = np.random.default_rng([seed, TAG_TISSUE])
    out = []
    for _ in range(_N_LOBES):
        k = rng.normal(0.0, 2.5, 3)
        out.append((float(k[0]), float(k[1]), float(k[2]), float(rng.uniform(0.0, 2 * math.pi))))
    return tuple(out)


def _lobes(seed: int, u: list[np.ndarray]) -> np.ndarray:
    """A smooth relative perturbation of the surface (±6 %), fixed by the seed."""
    out: np.ndarray = np.zeros(())
    for kz, ky, kx, phase in _lobe_waves(seed):
        out = out + np.cos(kz * u[0] + ky * u[1] + kx * u[2] + phase)
    return 0.06 / math.sqrt(_N_LOBES / 2) * out
