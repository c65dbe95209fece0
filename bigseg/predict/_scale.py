"""Resampling between the data's voxel grid and the model's, in global coordinates.

Model voxel ``k`` (per axis) sits at data coordinate ``k * step``, counted
from the *volume's* origin, not the block's. A block whose read ROI starts
at data offset ``o`` samples exactly the model voxels ``k`` with
``o <= k * step <= o + n - 1``; two blocks that overlap sample identical
positions in the overlap, so the maps there agree (up to the network's
patch-border effects, which the halo absorbs)::

    data   |o   .   .   .   .   .   .   .   .   .   .   .|      step = 2.5
    model  ^k0      ^       ^         ^         ^              k * 2.5
           (first k with k * step >= o)

Going down in resolution (``step > 1``) first blurs with a Gaussian of
sigma ``(step - 1) / 2`` (as ``skimage.transform.rescale`` anti-aliases);
interpolation is linear, separable, clamped at the block edge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from bigseg.errors import InputError
from bigseg.tiling import parse_triple

__all__ = ["ScaleMap"]

_EPS = 1e-9


def _interp_axis(arr: np.ndarray, pos: np.ndarray, start: int, axis: int) -> np.ndarray:
    """Linear interpolation of ``arr`` at global fractional positions ``pos`` along ``axis``.

    ``arr``'s first index along ``axis`` is global position ``start``; positions
    outside are clamped to its edge. The weights come from the global positions,
    not from positions relative to the block, so that overlapping blocks compute
    bit-identical values.
    """
    n = arr.shape[axis]
    base = np.floor(pos)
    w = (pos - base).astype(np.float32)
    lo = base.astype(np.intp) - start
    hi = np.clip(lo + 1, 0, n - 1)
    w = np.where(lo < 0, np.float32(0), w).astype(np.float32)
    lo = np.clip(lo, 0, n - 1)
    if np.all(w == 0):
        return np.take(arr, lo, axis=axis)
    shape = [1] * arr.ndim
    shape[axis] = len(pos)
    w = w.reshape(shape)
    a = np.take(arr, lo, axis=axis)
    b = np.take(arr, hi, axis=axis)
    return a + (b - a) * w


@dataclass(frozen=True, slots=True)
class ScaleMap:
    """Data voxels per model voxel along (z, y, x).

    ``step > 1`` shrinks the data to the model's scale (nuclei larger than the
    model expects), ``step < 1`` enlarges it.

    Examples
    --------
    >>> ScaleMap((1.0, 2.0, 2.0)).model_range((0, 3, 4), (4, 8, 8))
    ((0, 2, 2), (4, 4, 4))
    """

    step: tuple[float, float, float]

    def __post_init__(self) -> None:
        object.__setattr__(self, "step", parse_triple(self.step, name="step", unit="data voxels per model voxel"))

    @classmethod
    def between(
        cls,
        data_voxel_size: tuple[float, float, float],
        model_voxel_size: tuple[float, float, float],
        *,
        data_diameter: float | None = None,
        model_diameter: float,
        max_upsample: float | None = None,
    ) -> ScaleMap:
        """Scale that brings nuclei of ``data_diameter`` µm to the model's size in voxels.

        Without ``data_diameter`` the nuclei are assumed to be as large (µm) as
        the model's training nuclei, and only the voxel sizes are matched.
        ``max_upsample`` caps the enlargement per axis (``step >= 1 /
        max_upsample``): small nuclei then reach the model smaller than its
        training diameter instead of costing ``(1 / step)³`` model voxels per
        data voxel.
        """
        ratio = 1.0 if data_diameter is None else data_diameter / model_diameter
        steps = [ratio * m / d for m, d in zip(model_voxel_size, data_voxel_size)]
        if max_upsample is not None:
            if not (math.isfinite(max_upsample) and max_upsample >= 1):
                raise InputError(f"`max_upsample` must be a finite number >= 1, got {max_upsample}")
            steps = [max(s, 1.0 / max_upsample) for s in steps]
        return cls(tuple(steps))  # type: ignore[arg-type]

    @property
    def is_identity(self) -> bool:
        return all(abs(s - 1.0) < 1e-6 for s in self.step)

    def model_range(self, offset: tuple[int, ...], shape: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """First model index and number of model voxels inside a data box (at least 1)."""
        k0, n = [], []
        for o, s, st in zip(offset, shape, self.step):
            a = math.ceil(o / st - _EPS)
            b = math.floor((o + s - 1) / st + _EPS)
            k0.append(a)
            n.append(max(b - a + 1, 1))
        return tuple(k0), tuple(n)

    def model_cover(self, offset: tuple[int, ...], shape: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Model voxels ``[lo, hi)`` that :meth:`to_data` interpolates from for a data box."""
        lo = tuple(math.floor(o / st) for o, st in zip(offset, self.step))
        hi = tuple(math.floor((o + s - 1) / st) + 2 for o, s, st in zip(offset, shape, self.step))
        return lo, hi

    def halo(self, model_halo: tuple[int, int, int]) -> tuple[int, int, int]:
        """Data voxels of halo needed for ``model_halo`` model voxels of context."""
        out = []
        for h, st in zip(model_halo, self.step):
            blur = 3 * (st - 1) / 2 if st > 1 else 0.0
            out.append(math.ceil(h * st + st + blur))
        return tuple(out)  # type: ignore[return-value]

    def to_model(self, image: np.ndarray, offset: tuple[int, ...] = (0, 0, 0)) -> np.ndarray:
        """Resample a ``(Z, Y, X)`` block starting at global ``offset`` onto the model grid.

        Returns
        -------
        (Zm, Ym, Xm) ndarray of float32
            Model voxels ``k0 .. k0 + n - 1`` of :meth:`model_range`.
        """
        if self.is_identity:
            return np.asarray(image, dtype=np.float32)
        k0, n = self.model_range(offset, image.shape)
        out = np.asarray(image, dtype=np.float32)
        for ax, st in enumerate(self.step):
            if st > 1:
                out = ndi.gaussian_filter1d(out, (st - 1) / 2, axis=ax, mode="nearest", truncate=3.0)
            out = _interp_axis(out, (k0[ax] + np.arange(n[ax])) * st, offset[ax], ax)
        return out

    def to_data(
        self, maps: np.ndarray, offset: tuple[int, ...], shape: tuple[int, ...],
        k0: tuple[int, ...] | None = None,
    ) -> np.ndarray:
        """Resample ``(C, Zm, Ym, Xm)`` model-grid maps back onto the data box ``offset`` + ``shape``.

        ``k0`` is the global model voxel of ``maps[:, 0, 0, 0]``; by default that of
        :meth:`model_range` of the box (the maps of :meth:`to_model` of the same box).

        Returns
        -------
        (C, Z, Y, X) ndarray of float32
        """
        if self.is_identity:
            return np.asarray(maps, dtype=np.float32)
        if k0 is None:
            k0, _ = self.model_range(offset, shape)
        out = np.asarray(maps, dtype=np.float32)
        for ax, st in enumerate(self.step):
            out = _interp_axis(out, (offset[ax] + np.arange(shape[ax])) / st, k0[ax], ax + 1)
        return out
