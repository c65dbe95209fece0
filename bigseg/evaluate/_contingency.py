"""A sparse contingency table between predicted and ground-truth labels.

The table lists, for every pair of labels ``(p, g)`` that share at least one
voxel, how many voxels they share. Background (label 0) takes part like any
other label, so the table also holds false-positive and false-negative
voxels. Tables of disjoint blocks add up to the table of their union::

    volume ┌─────────┬─────────┐      table(volume) = table(A) + table(B)
           │    A    │    B    │      (counts of equal (p, g) pairs summed)
           └─────────┴─────────┘

Counts are integers, so block-wise accumulation is exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from bigseg.errors import InputError
from bigseg.tiling import Roi

__all__ = ["Contingency", "check_labels", "contingency_block"]

_ID = np.uint64
_COUNT = np.int64


def _frozen(a: object, dtype: type) -> np.ndarray:
    out: np.ndarray = np.array(a, dtype=dtype).reshape(-1)
    out.flags.writeable = False
    return out


@dataclass(frozen=True, slots=True, eq=False)
class Contingency:
    """Voxel counts shared by predicted and ground-truth labels.

    Build one with :func:`contingency_block`; add tables of disjoint regions
    with ``a + b`` or :meth:`combine`.

    Attributes
    ----------
    pred_ids, gt_ids : (K,) ndarray of uint64
        Label pairs sharing voxels, sorted by ``(pred_ids, gt_ids)``, unique.
        Label 0 is background.
    counts : (K,) ndarray of int64
        Voxels shared by each pair, all > 0.
    pred_labels, gt_labels : (P,) and (G,) ndarray of uint64
        Sorted labels present in the scored region (0 included if present).
    pred_sizes, gt_sizes : (P,) and (G,) ndarray of int64
        Voxels of each label in the scored region.
    n_voxels : int
        Voxels scored (inside the mask, if one was given).
    pred_border, gt_border : ndarray of uint64
        Sorted nonzero labels with a voxel on the volume's outer faces,
        whether or not that voxel is inside the mask.
    """

    pred_ids: np.ndarray
    gt_ids: np.ndarray
    counts: np.ndarray
    pred_labels: np.ndarray
    pred_sizes: np.ndarray
    gt_labels: np.ndarray
    gt_sizes: np.ndarray
    n_voxels: int
    pred_border: np.ndarray = field(default_factory=lambda: np.zeros(0, _ID))
    gt_border: np.ndarray = field(default_factory=lambda: np.zeros(0, _ID))

    def __post_init__(self) -> None:
        for name, dtype in (
            ("pred_ids", _ID), ("gt_ids", _ID), ("counts", _COUNT), ("pred_labels", _ID),
            ("pred_sizes", _COUNT), ("gt_labels", _ID), ("gt_sizes", _COUNT),
            ("pred_border", _ID), ("gt_border", _ID),
        ):
            object.__setattr__(self, name, _frozen(getattr(self, name), dtype))
        object.__setattr__(self, "n_voxels", int(self.n_voxels))
        k = len(self.counts)
        if len(self.pred_ids) != k or len(self.gt_ids) != k:
            raise InputError(
                f"pred_ids ({len(self.pred_ids)}), gt_ids ({len(self.gt_ids)}) and counts ({k}) "
                "must have the same length"
            )
        if len(self.pred_labels) != len(self.pred_sizes) or len(self.gt_labels) != len(self.gt_sizes):
            raise InputError("each of pred_labels/gt_labels must have as many entries as its sizes array")
        totals = {int(self.counts.sum()), int(self.pred_sizes.sum()), int(self.gt_sizes.sum())}
        if totals != {self.n_voxels}:
            raise InputError(
                f"counts, pred_sizes and gt_sizes must each sum to n_voxels={self.n_voxels}, "
                f"got sums {sorted(totals)}"
            )

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def empty(cls) -> Contingency:
        """The table of a region with no voxels."""
        z_id, z_n = np.zeros(0, _ID), np.zeros(0, _COUNT)
        return cls(z_id, z_id, z_n, z_id, z_n, z_id, z_n, 0)

    @classmethod
    def from_pairs(
        cls,
        pred_ids: np.ndarray,
        gt_ids: np.ndarray,
        counts: np.ndarray,
        pred_border: np.ndarray | None = None,
        gt_border: np.ndarray | None = None,
    ) -> Contingency:
        """Table from (possibly repeated, unsorted) pairs; sizes are the marginals."""
        pid = np.asarray(pred_ids, dtype=_ID).reshape(-1)
        gid = np.asarray(gt_ids, dtype=_ID).reshape(-1)
        cnt = np.asarray(counts, dtype=_COUNT).reshape(-1)
        keep = cnt != 0
        pid, gid, cnt = pid[keep], gid[keep], cnt[keep]
        order = np.lexsort((gid, pid))
        pid, gid, cnt = pid[order], gid[order], cnt[order]
        if len(cnt):
            new = np.ones(len(cnt), dtype=bool)
            new[1:] = (pid[1:] != pid[:-1]) | (gid[1:] != gid[:-1])
            starts = np.flatnonzero(new)
            pid, gid, cnt = pid[starts], gid[starts], np.add.reduceat(cnt, starts)
        p_lab, p_inv = np.unique(pid, return_inverse=True)
        g_lab, g_inv = np.unique(gid, return_inverse=True)
        p_size = np.bincount(p_inv.reshape(-1), weights=cnt, minlength=len(p_lab)).astype(_COUNT)
        g_size = np.bincount(g_inv.reshape(-1), weights=cnt, minlength=len(g_lab)).astype(_COUNT)
        # bincount weights are float64: exact below 2**53 voxels, far beyond any volume.
        return cls(
            pid, gid, cnt, p_lab, p_size, g_lab, g_size, int(cnt.sum()),
            _union(pred_border), _union(gt_border),
        )

    @classmethod
    def combine(cls, tables: Iterable[Contingency]) -> Contingency:
        """Sum tables of disjoint regions: counts of equal pairs add up, border labels unite."""
        tables = list(tables)
        if not tables:
            return cls.empty()
        if len(tables) == 1:
            return tables[0]
        return cls.from_pairs(
            np.concatenate([t.pred_ids for t in tables]),
            np.concatenate([t.gt_ids for t in tables]),
            np.concatenate([t.counts for t in tables]),
            np.concatenate([t.pred_border for t in tables]),
            np.concatenate([t.gt_border for t in tables]),
        )

    def __add__(self, other: object) -> Contingency:
        if not isinstance(other, Contingency):
            return NotImplemented
        return Contingency.combine([self, other])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Contingency):
            return NotImplemented
        return self.n_voxels == other.n_voxels and all(
            np.array_equal(getattr(self, n), getattr(other, n))
            for n in ("pred_ids", "gt_ids", "counts", "pred_labels", "pred_sizes",
                      "gt_labels", "gt_sizes", "pred_border", "gt_border")
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"Contingency({len(self.counts)} pairs, {int(np.count_nonzero(self.pred_labels))} predicted "
            f"and {int(np.count_nonzero(self.gt_labels))} ground-truth objects, {self.n_voxels} voxels)"
        )


def _union(ids: np.ndarray | None) -> np.ndarray:
    if ids is None:
        return np.zeros(0, _ID)
    ids = np.unique(np.asarray(ids, dtype=_ID))
    return ids[ids != 0]


def check_labels(array: np.ndarray, name: str) -> None:
    """Raise :class:`InputError` unless ``array`` holds non-negative integer labels."""
    dtype = np.dtype(array.dtype)
    if not (np.issubdtype(dtype, np.integer) or dtype == np.bool_):
        raise InputError(
            f"`{name}` must hold integer labels, got dtype {dtype}; if the values are whole numbers "
            f"convert with `.astype(np.uint32)`, if it is a probability or binary mask label it first "
            f"(e.g. skimage.measure.label(x > 0.5))"
        )
    if np.issubdtype(dtype, np.signedinteger) and array.size and int(array.min()) < 0:
        raise InputError(
            f"`{name}` must hold labels >= 0 (0 = background), got minimum {int(array.min())}"
        )


def contingency_block(
    pred: np.ndarray,
    gt: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    roi: Roi | None = None,
    volume_shape: tuple[int, ...] | None = None,
) -> Contingency:
    """Contingency table of one block.

    Parameters
    ----------
    pred, gt : (Z, Y, X) ndarray of int
        Predicted and ground-truth labels of the block (any integer dtype, or
        bool; 0 = background). Any number of axes works, as long as all agree.
    mask : (Z, Y, X) ndarray of bool, optional
        Voxels to score; voxels where it is False (or 0) count for neither.
    roi : Roi, optional
        Where the block lies in the volume, in voxels. Only the block's faces
        that lie on the volume's outer faces mark objects as touching the
        border. Default: the block is the whole volume.
    volume_shape : tuple of int, optional
        Shape of the whole volume; required with ``roi``.

    Returns
    -------
    Contingency
    """
    if pred.shape != gt.shape:
        raise InputError(f"`pred` (shape {pred.shape}) must have the same shape as `gt` (shape {gt.shape})")
    check_labels(pred, "pred")
    check_labels(gt, "gt")
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != pred.shape:
            raise InputError(f"`mask` (shape {mask.shape}) must have the same shape as `pred` (shape {pred.shape})")
        mask = mask.astype(bool, copy=False)
    faces = _outer_faces(pred.shape, roi, volume_shape)
    p_border = _labels_on_faces(pred, faces)
    g_border = _labels_on_faces(gt, faces)
    p = pred[mask] if mask is not None else pred.reshape(-1)
    g = gt[mask] if mask is not None else gt.reshape(-1)
    pid, gid, cnt = _pair_counts(p, g)
    return Contingency.from_pairs(pid, gid, cnt, p_border, g_border)


def _pair_counts(p: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique (p, g) pairs of two flat label arrays and how often each occurs."""
    if p.size == 0:
        return np.zeros(0, _ID), np.zeros(0, _ID), np.zeros(0, _COUNT)
    p = p.astype(_ID, copy=False)
    g = g.astype(_ID, copy=False)
    if int(p.max()) < 2**32 and int(g.max()) < 2**32:
        # One sort of packed keys instead of three (labels below 2**32 are the usual case).
        keys, cnt = np.unique((p << _ID(32)) | g, return_counts=True)
        return keys >> _ID(32), keys & _ID(0xFFFFFFFF), cnt
    pu, pinv = np.unique(p, return_inverse=True)
    gu, ginv = np.unique(g, return_inverse=True)
    keys, cnt = np.unique(pinv.reshape(-1).astype(np.int64) * len(gu) + ginv.reshape(-1), return_counts=True)
    return pu[keys // len(gu)], gu[keys % len(gu)], cnt


def _outer_faces(
    shape: tuple[int, ...], roi: Roi | None, volume_shape: tuple[int, ...] | None
) -> list[tuple[int, int]]:
    """(axis, index) of the block's faces that lie on the volume's outer faces."""
    if roi is None:
        if volume_shape is not None and tuple(volume_shape) != tuple(shape):
            raise InputError(f"`roi` must be given when the block (shape {shape}) is not the whole volume {volume_shape}")
        roi, volume_shape = Roi((0,) * len(shape), shape), shape
    elif volume_shape is None:
        raise InputError(f"`volume_shape` must be given with `roi` ({roi})")
    if tuple(roi.shape) != tuple(shape):
        raise InputError(f"`roi` shape {roi.shape} must equal the block shape {shape}")
    faces = []
    for axis, (o, e, v) in enumerate(zip(roi.offset, roi.end, volume_shape)):
        if shape[axis] == 0:
            continue
        if o == 0:
            faces.append((axis, 0))
        if e == v:
            faces.append((axis, shape[axis] - 1))
    return faces


def _labels_on_faces(labels: np.ndarray, faces: list[tuple[int, int]]) -> np.ndarray:
    if not faces:
        return np.zeros(0, _ID)
    found = [np.unique(np.take(labels, i, axis=a)) for a, i in faces]
    return np.concatenate(found).astype(_ID)
