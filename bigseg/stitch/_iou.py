"""The ``iou`` stitch path: match objects of neighbouring blocks on the region where their read ROIs intersect.

For decoders without global seeds each block labels its whole read ROI on
its own. Two face neighbours both see the region where their read ROIs
intersect (twice the halo thick, at most)::

        block a read ROI
      ┌─────────────────────────┐
      │             ┌───────────┼─────────────────┐  block b read ROI
      │   write a   │  shared   │    write b      │
      │             │  region   │                 │
      │             └───────────┼─────────────────┘
      └─────────────────────────┘

On the shared region an object of ``a`` and an object of ``b`` are the same
when each is the other's best match by IoU and the IoU is at least
``min_iou``. Voxels that merely touch never overlap, so contact alone never
merges; an object one block split in two keeps only its best half matched.
"""

from __future__ import annotations

import numpy as np

from bigseg.errors import InputError
from bigseg.tiling import Block, Roi

__all__ = ["iou_pairs", "shared_read_roi"]


def shared_read_roi(block_a: Block, block_b: Block) -> Roi | None:
    """The intersection of two blocks' read ROIs if they share a face, else ``None``.

    Raises :class:`~bigseg.errors.InputError` for face neighbours whose read
    ROIs do not intersect (a zero halo): the iou stitch path needs a halo.
    """
    diff = [abs(i - j) for i, j in zip(block_a.index, block_b.index)]
    if sorted(diff) != [0] * (len(diff) - 1) + [1]:
        return None
    roi = block_a.read_roi.intersect(block_b.read_roi)
    if roi.empty:
        raise InputError(
            f"the read ROIs of face neighbours {block_a.index} and {block_b.index} do not intersect "
            f"({block_a.read_roi} vs {block_b.read_roi}); the iou stitch path needs a halo of at least 1 voxel "
            "(typically the largest nucleus radius)"
        )
    return roi


def _best_partner(first: np.ndarray, second: np.ndarray, iou: np.ndarray) -> np.ndarray:
    """Boolean mask of entries that are the best (highest IoU, then smallest ``second``) for their ``first``."""
    order = np.lexsort((second, -iou, first))
    is_best = np.zeros(len(first), dtype=bool)
    head = np.ones(len(order), dtype=bool)
    head[1:] = first[order][1:] != first[order][:-1]
    is_best[order[head]] = True
    return is_best


def iou_pairs(a: np.ndarray, b: np.ndarray, *, min_iou: float = 0.5) -> np.ndarray:
    """Mutual-best IoU matches between two labelings of the same region.

    Parameters
    ----------
    a, b : (Z, Y, X) ndarray of uint64
        Provisional IDs of two neighbouring blocks, both cut to the region
        where their read ROIs intersect (:func:`shared_read_roi`); 0 is
        background.
    min_iou : float, default 0.5
        Smallest IoU that merges, in ``[0, 1]``. Above 0.5 a match is always
        mutual-best.

    Returns
    -------
    (E, 2) ndarray of uint64
        ``(a ID, b ID)`` pairs to merge, sorted by ``a`` ID.

    Notes
    -----
    IoU uses each object's voxels *within the region* only (both voxel
    counts restricted to it). Pairs with no common voxel are never scored,
    so objects that only touch are never merged, whatever ``min_iou``.
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise InputError(
            f"`a` (shape {a.shape}) must have the same shape as `b` (shape {b.shape}); "
            "cut both labelings to the same read-ROI intersection"
        )
    if not 0.0 <= float(min_iou) <= 1.0:
        raise InputError(f"`min_iou` must be in [0, 1], got {min_iou}")
    ua, ia, size_a = np.unique(a.ravel(), return_inverse=True, return_counts=True)
    ub, ib, size_b = np.unique(b.ravel(), return_inverse=True, return_counts=True)
    both = (a.ravel() != 0) & (b.ravel() != 0)
    # Compact indices (< region size) make one int64 key per (a, b) pair: a sparse contingency table.
    keys, inter = np.unique(ia[both].astype(np.int64) * len(ub) + ib[both], return_counts=True)
    if len(keys) == 0:
        return np.zeros((0, 2), dtype=np.uint64)
    ka, kb = keys // len(ub), keys % len(ub)
    iou = inter / (size_a[ka] + size_b[kb] - inter)
    keep = _best_partner(ka, kb, iou) & _best_partner(kb, ka, iou) & (iou >= min_iou)
    return np.stack([ua[ka[keep]], ub[kb[keep]]], axis=1).astype(np.uint64)
