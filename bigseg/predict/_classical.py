"""A classical BCD predictor that needs no weights.

It makes bigseg work out of the box and is the reference the models are
compared with. Every operation has bounded support, so with a halo of at
least :attr:`ClassicalPredictor.halo` the maps of a block's write ROI equal those
computed on the whole volume::

    image ─gaussian(σ = d/8)─▶ smooth ─sigmoid((s − t)/w)──────────▶ foreground
                                  │ ─|∇s|·σ·√(2π)/(2t)──────────────▶ contour
                                  └─ s > t ─EDT (µm), clipped at d/2─▶ distance
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import edt as edt_lib
import numpy as np
from scipy import ndimage as ndi

from bigseg.errors import InputError
from bigseg.tiling import Roi, parse_voxel_size

__all__ = ["ClassicalPredictor", "ClassicalSpec"]

_TRUNCATE = 3.0
_SOFTNESS = 0.05  # width of the foreground sigmoid, in normalised intensity


@dataclass(frozen=True, slots=True)
class ClassicalSpec:
    """Parameters of :class:`ClassicalPredictor`.

    Parameters
    ----------
    voxel_size : (3,) tuple of float
        Voxel size (z, y, x) in µm.
    diameter_um : float
        Typical nucleus diameter in µm; sets the smoothing scale and the
        distance normalisation.
    threshold : float
        Foreground level in normalised intensity (e.g. the whole-volume Otsu
        threshold from :func:`bigseg.predict.estimate_normalization`).
    """

    voxel_size: tuple[float, float, float]
    diameter_um: float
    threshold: float = 0.5

    def __post_init__(self) -> None:
        vs = parse_voxel_size(self.voxel_size)
        if not (math.isfinite(self.diameter_um) and self.diameter_um > 0):
            raise InputError(f"`diameter_um` must be a positive number of µm, got {self.diameter_um!r}")
        object.__setattr__(self, "voxel_size", vs)

    def build(self) -> ClassicalPredictor:
        return ClassicalPredictor(self)


class ClassicalPredictor:
    """Smoothed intensity → foreground, gradient → contour, EDT → distance."""

    def __init__(self, spec: ClassicalSpec) -> None:
        self.spec = spec

    @cached_property
    def _sigma(self) -> tuple[float, ...]:
        return tuple(self.spec.diameter_um / 8.0 / v for v in self.spec.voxel_size)

    @cached_property
    def halo(self) -> tuple[int, int, int]:
        radius = self.spec.diameter_um / 2.0
        return tuple(  # type: ignore[return-value]
            math.ceil(_TRUNCATE * s) + math.ceil(radius / v) + 4 for s, v in zip(self._sigma, self.spec.voxel_size)
        )

    @cached_property
    def foreground_halo(self) -> tuple[int, int, int]:
        """How far (voxels, z y x) the foreground at a voxel depends on the image: the Gaussian's support.

        Farther than this from anything brighter than the empty space, the foreground is the empty
        space's (below any threshold), which is what lets empty blocks be skipped exactly.
        """
        return tuple(math.ceil(_TRUNCATE * s) for s in self._sigma)  # type: ignore[return-value]

    def predict(
        self, image: np.ndarray, *, offset: tuple[int, ...] = (0, 0, 0), write_roi: Roi | None = None
    ) -> np.ndarray:
        """BCD maps of one normalised block, or of its write ROI.

        Parameters
        ----------
        image : (Z, Y, X) ndarray of float32
            Block normalised with whole-volume statistics.
        offset : (int, int, int)
            Global position of ``image[0, 0, 0]``; only locates ``write_roi``, the maps depend on no position.
        write_roi : Roi, optional
            Global box inside the block whose maps are returned; the whole block by default.

        Returns
        -------
        (3, *write_roi.shape) ndarray of float32
        """
        if image.ndim != 3:
            raise InputError(f"`image` must be 3D (Z, Y, X), got shape {image.shape}")
        spec = self.spec
        t = spec.threshold
        smooth = ndi.gaussian_filter(image.astype(np.float32), self._sigma, truncate=_TRUNCATE, mode="nearest")
        out = np.empty((3, *image.shape), dtype=np.float32)
        out[0] = 1.0 / (1.0 + np.exp(-(smooth - t) / _SOFTNESS))
        grads = np.gradient(smooth, *spec.voxel_size) if min(image.shape) > 1 else [np.zeros_like(smooth)]
        gmag = np.sqrt(sum(g * g for g in grads))
        sigma_um = spec.diameter_um / 8.0
        out[1] = np.clip(gmag * sigma_um * math.sqrt(2 * math.pi) / (2 * max(t, 0.05)), 0, 1)
        radius = spec.diameter_um / 2.0
        mask = smooth > t
        inside = edt_lib.edt(mask, anisotropy=spec.voxel_size, black_border=False, parallel=1)
        outside = edt_lib.edt(~mask, anisotropy=spec.voxel_size, black_border=False, parallel=1)
        dist = np.where(mask, np.minimum(inside / radius, 1.0), -np.minimum(outside / radius, 1.0))
        # A light smoothing breaks the plateaus of the EDT so watershed ties are rare.
        out[2] = ndi.gaussian_filter(dist.astype(np.float32), 1.0, truncate=_TRUNCATE, mode="nearest")
        if write_roi is None:
            return out
        block = Roi(tuple(int(o) for o in offset), image.shape)
        if write_roi.empty or not block.contains(write_roi):
            raise InputError(f"`write_roi` {write_roi} must be a non-empty box inside the block {block}")
        return np.ascontiguousarray(out[(slice(None), *write_roi.relative_to(block))])
