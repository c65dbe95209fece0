"""Summary statistics of a ground-truth label volume, to check the generator."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from bigseg.errors import InputError
from bigseg.tiling import parse_voxel_size

__all__ = ["truth_stats"]


def truth_stats(labels: np.ndarray, voxel_size: tuple[float, float, float], *, exclude_border: bool = False) -> dict[str, Any]:
    """Count, size, density and contact statistics of an instance label volume.

    Parameters
    ----------
    labels : (Z, Y, X) ndarray of int
        0 = background; every other value is one nucleus.
    voxel_size : (3,) tuple of float
        µm per voxel, (z, y, x).
    exclude_border : bool
        Leave out nuclei touching the volume border from the size and contact
        statistics (they are cut, so smaller than they are).

    Returns
    -------
    dict
        ``count`` (nuclei present), ``density_per_mm3`` (count / volume),
        ``volume_fraction`` (labelled voxels / all voxels), ``diameters_um``
        ((n,) ndarray: equivalent-sphere diameters), ``median_diameter_um``,
        ``touching_fraction`` (share of nuclei with a face-neighbouring voxel
        of another nucleus), ``n_measured`` (nuclei in the size statistics).
    """
    labels = np.asarray(labels)
    if labels.ndim != 3 or not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"`labels` must be a 3-D integer array, got shape {labels.shape} dtype {labels.dtype}")
    vs = parse_voxel_size(voxel_size)
    ids, sizes = np.unique(labels[labels > 0], return_counts=True)
    keep = np.ones(ids.shape, dtype=bool)
    if exclude_border and ids.size:
        border = np.unique(np.concatenate([np.unique(f) for f in _faces(labels)]))
        keep = ~np.isin(ids, border)
    touching = _touching_ids(labels)
    diam = (6.0 * sizes[keep] * math.prod(vs) / math.pi) ** (1 / 3)
    volume_mm3 = labels.size * math.prod(vs) * 1e-9
    n_meas = int(keep.sum())
    return {
        "count": int(ids.size),
        "density_per_mm3": ids.size / volume_mm3,
        "volume_fraction": float(sizes.sum() / labels.size),
        "diameters_um": diam,
        "median_diameter_um": float(np.median(diam)) if n_meas else math.nan,
        "touching_fraction": float(np.isin(ids[keep], touching).mean()) if n_meas else math.nan,
        "n_measured": n_meas,
    }


def _faces(labels: np.ndarray) -> list[np.ndarray]:
    return [labels[0], labels[-1], labels[:, 0], labels[:, -1], labels[:, :, 0], labels[:, :, -1]]


def _touching_ids(labels: np.ndarray) -> np.ndarray:
    """IDs of nuclei with a face-neighbouring voxel that belongs to another nucleus."""
    found = []
    for axis in range(3):
        a = np.moveaxis(labels, axis, 0)
        lo, hi = a[:-1], a[1:]
        contact = (lo > 0) & (hi > 0) & (lo != hi)
        found += [lo[contact], hi[contact]]
    return np.unique(np.concatenate(found)) if found else np.zeros(0, labels.dtype)
