"""TASCAN decoding (3DCellSeg, Wang et al. 2022): supervoxels merged by touching area.

::

    maps ─ interior = foreground > f and contour < c, eroded ─▶ EDT ─▶ peaks ─▶ watershed: supervoxels
         ─ merge neighbours whose touching area >= A voxels, or whose touching area
           is >= F of either one's surface (repeated until nothing merges)
         ─ merged supervoxels flood the whole foreground mask over -distance (as the BCD flood)

The *surface* of a supervoxel is its outer shell without background: the
voxels of other supervoxels with a face neighbour inside it (as in the
reference code, so a fragment whose only neighbour is one other supervoxel
always joins it; separating touching nuclei is the contour map's job). The
*touching area* of a pair is the number of one's shell voxels that belong to
the other (the larger of the two counts). The
paper's defaults are A = 30 voxels and F = 0.51. Unlike the reference code,
which grows one cluster at a time from the largest supervoxel (so the result
depends on the visiting order), every round merges all pairs that pass at once,
then measures the merged objects again; the result is the same whatever the
labels' order.

A block decodes its whole read ROI alone (the ``iou`` stitch path): a
nucleus cut by a block face is whole in both neighbours' read ROIs, and the
two labels are joined on IoU evidence where the read ROIs intersect.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cc3d
import edt as edt_lib
import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import watershed

from bigseg.errors import InputError
from bigseg.maps import CONTOUR, DISTANCE, FOREGROUND

__all__ = ["TascanParams", "merge_supervoxels", "supervoxels", "tascan_block", "touching_areas"]


@dataclass(frozen=True, slots=True)
class TascanParams:
    """Thresholds of TASCAN.

    Parameters
    ----------
    min_touching_area : int
        Neighbours sharing at least this many shell voxels merge (paper: 30).
    min_touching_fraction : float
        Neighbours whose touching area is at least this share of either one's
        surface merge (paper: 0.51), in (0, 1].
    erosion : int
        Voxels the interior is eroded by before supervoxels are made (paper: 1).
    peak_distance : int
        Supervoxel seeds are EDT maxima within a cube of ``2 * peak_distance + 1`` voxels (paper: 3).
    """

    min_touching_area: int = 30
    min_touching_fraction: float = 0.51
    erosion: int = 1
    peak_distance: int = 3

    def __post_init__(self) -> None:
        if int(self.min_touching_area) < 1:
            raise InputError(f"TascanParams.min_touching_area must be >= 1 voxel, got {self.min_touching_area}")
        if not (math.isfinite(self.min_touching_fraction) and 0 < self.min_touching_fraction <= 1):
            raise InputError(f"TascanParams.min_touching_fraction must be in (0, 1], got {self.min_touching_fraction}")
        if int(self.erosion) < 0 or int(self.peak_distance) < 1:
            raise InputError(
                f"TascanParams.erosion must be >= 0 and peak_distance >= 1, got {self.erosion}, {self.peak_distance}"
            )


def supervoxels(interior: np.ndarray, *, peak_distance: int = 3, anisotropy: tuple[float, ...] = (1, 1, 1)) -> np.ndarray:
    """Over-segment a boolean interior: watershed of ``-EDT`` from EDT maxima (uint32 labels)."""
    if not interior.any():
        return np.zeros(interior.shape, dtype=np.uint32)
    dist = edt_lib.edt(interior, anisotropy=anisotropy, black_border=False, parallel=1).astype(np.float32)
    peaks = (dist >= ndi.maximum_filter(dist, size=2 * peak_distance + 1, mode="nearest")) & interior
    markers = cc3d.connected_components(peaks, connectivity=6).astype(np.int64)
    return watershed(-dist, markers=markers, mask=interior).astype(np.uint32)


def touching_areas(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shell contacts of a labelling.

    Returns
    -------
    pairs : (E, 2) ndarray of uint32
        ``(a, b)`` with ``a`` ≠ ``b``, both > 0: ``b``'s voxels lie in ``a``'s shell.
    counts : (E,) ndarray of int64
        How many of ``a``'s shell voxels belong to ``b``.
    surface : (L + 1,) ndarray of int64
        Shell size of every label (shell voxels of other labels only), by ID.
    """
    flat = labels.ravel()
    index = np.arange(flat.size, dtype=np.int64).reshape(labels.shape)
    owners, voxels = [], []
    for axis in range(labels.ndim):
        for lo, hi in ((slice(None, -1), slice(1, None)), (slice(1, None), slice(None, -1))):
            a = [slice(None)] * labels.ndim
            b = [slice(None)] * labels.ndim
            a[axis], b[axis] = lo, hi
            la, lb = labels[tuple(a)], labels[tuple(b)]
            edge = (la > 0) & (la != lb)
            owners.append(la[edge].astype(np.int64))
            voxels.append(index[tuple(b)][edge])
    owner, voxel = np.concatenate(owners), np.concatenate(voxels)
    # A shell voxel touching one label through several faces counts once.
    key = np.unique(owner * flat.size + voxel)
    owner, voxel = key // flat.size, key % flat.size
    other = flat[voxel].astype(np.int64)
    inside = other > 0
    surface = np.bincount(owner[inside], minlength=int(labels.max(initial=0)) + 1).astype(np.int64)
    pair_keys, counts = np.unique(owner[inside] * (int(labels.max()) + 1) + other[inside], return_counts=True)
    pairs = np.stack([pair_keys // (int(labels.max()) + 1), pair_keys % (int(labels.max()) + 1)], axis=1)
    return pairs.astype(np.uint32), counts.astype(np.int64), surface


def _merge_round(labels: np.ndarray, params: TascanParams) -> tuple[np.ndarray, bool]:
    pairs, counts, surface = touching_areas(labels)
    if len(pairs) == 0:
        return labels, False
    a, b = pairs[:, 0].astype(np.int64), pairs[:, 1].astype(np.int64)
    # Touching area of a pair: the larger of its two directed counts.
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    key = lo * (len(surface)) + hi
    ukey, inverse = np.unique(key, return_inverse=True)
    area = np.zeros(len(ukey), dtype=np.int64)
    np.maximum.at(area, inverse, counts)
    lo, hi = ukey // len(surface), ukey % len(surface)
    fraction = area / np.minimum(surface[lo], surface[hi])
    merge = (area >= params.min_touching_area) | (fraction >= params.min_touching_fraction)
    if not merge.any():
        return labels, False
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(surface)
    graph = coo_matrix((np.ones(int(merge.sum())), (lo[merge], hi[merge])), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    # Each merged group takes its smallest label (order-independent); background stays 0.
    root = np.full(n, n, dtype=np.int64)
    np.minimum.at(root, component, np.arange(n))
    lut = root[component].astype(np.uint32)
    lut[0] = 0
    return lut[labels], True


def merge_supervoxels(labels: np.ndarray, params: TascanParams | None = None) -> np.ndarray:
    """Merge touching supervoxels until no pair passes the area or fraction rule (uint32 labels)."""
    params = params or TascanParams()
    labels = np.asarray(labels).astype(np.uint32)
    changed = True
    while changed:
        labels, changed = _merge_round(labels, params)
    return labels


def tascan_block(
    maps: np.ndarray,
    *,
    mask_foreground: float = 0.5,
    seed_contour: float = 0.4,
    params: TascanParams | None = None,
    anisotropy: tuple[float, ...] = (1, 1, 1),
) -> np.ndarray:
    """Decode one block's BCD maps ``(3, Z, Y, X)`` with TASCAN (labels local to the block, uint32).

    The interior is ``foreground > mask_foreground`` and ``contour < seed_contour``;
    merged supervoxels then flood ``foreground > mask_foreground`` over ``-distance``.
    """
    if maps.ndim != 4 or maps.shape[0] != 3:
        raise InputError(f"`maps` must have shape (3, Z, Y, X) (foreground, contour, distance), got {maps.shape}")
    params = params or TascanParams()
    mask = maps[FOREGROUND] > mask_foreground
    interior = mask & (maps[CONTOUR] < seed_contour)
    if params.erosion:
        interior = ndi.binary_erosion(interior, iterations=params.erosion, border_value=1)
    merged = merge_supervoxels(supervoxels(interior, peak_distance=params.peak_distance, anisotropy=anisotropy), params)
    if not merged.any():
        return np.zeros(mask.shape, dtype=np.uint32)
    labels = watershed(-maps[DISTANCE].astype(np.float64), markers=merged.astype(np.int64), mask=mask | (merged > 0))
    return labels.astype(np.uint32)
