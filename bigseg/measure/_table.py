"""The object table: one row per nucleus, accumulated per block.

Each block reduces its write ROI to per-label partial sums (voxel count, sums of
coordinates and intensity, bounding box, max intensity, border contact);
partials of an object cut by block borders are combined by ID. The volume is
never loaded to measure it.
"""

from __future__ import annotations

from dataclasses import dataclass

import fastremap
import numpy as np
import pyarrow as pa
from scipy import ndimage as ndi

from bigseg.errors import InputError
from bigseg.tiling import Roi

__all__ = ["BlockStats", "block_stats", "combine_stats", "object_table"]

# Second moments of the voxel coordinates (zz, yy, xx, zy, zx, yx) give each nucleus's shape.
_MOMENTS = ("zz", "yy", "xx", "zy", "zx", "yx")
_SUM_FIELDS = ("count", "sum_z", "sum_y", "sum_x", "sum_intensity", *(f"sum_{m}" for m in _MOMENTS))


@dataclass(frozen=True, slots=True)
class BlockStats:
    """Per-label partial statistics; every array has one entry per ID.

    ``lo``/``hi`` are the global half-open bounding box, shape ``(n, 3)``;
    ``first`` the global row-major index of the object's first voxel (a key
    that depends on the object alone, not on the blocking or its ID).
    ``sum_zz`` ... ``sum_yx`` the sums of products of global voxel coordinates.
    """

    ids: np.ndarray
    count: np.ndarray
    sum_z: np.ndarray
    sum_y: np.ndarray
    sum_x: np.ndarray
    sum_intensity: np.ndarray
    max_intensity: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    touches_border: np.ndarray
    first: np.ndarray
    sum_zz: np.ndarray
    sum_yy: np.ndarray
    sum_xx: np.ndarray
    sum_zy: np.ndarray
    sum_zx: np.ndarray
    sum_yx: np.ndarray

    @classmethod
    def empty(cls) -> BlockStats:
        f = np.zeros(0, dtype=np.float64)
        box = np.zeros((0, 3), dtype=np.int64)
        return cls(np.zeros(0, np.uint64), np.zeros(0, np.int64), f, f, f, f, f, box, box, np.zeros(0, bool),
                   np.zeros(0, np.int64), *([f] * len(_MOMENTS)))

    def __len__(self) -> int:
        return len(self.ids)


def block_stats(labels: np.ndarray, image: np.ndarray, write_roi: Roi, volume_shape: tuple[int, ...]) -> BlockStats:
    """Partial statistics of the labels in one block's write ROI.

    Parameters
    ----------
    labels : (Z, Y, X) ndarray of unsigned int
        The write ROI's labels (0 = background).
    image : (Z, Y, X) ndarray
        The raw image over the same write ROI.
    write_roi : Roi
        Where the write ROI lies in the volume (voxels).
    volume_shape : tuple of int
        Shape of the whole volume, to flag objects touching its border.
    """
    if labels.shape != image.shape or labels.shape != write_roi.shape:
        raise InputError(
            f"`labels` (shape {labels.shape}), `image` (shape {image.shape}) and write_roi {write_roi.shape} "
            "must have the same shape"
        )
    ids = fastremap.unique(labels)
    ids = ids[ids != 0]
    if len(ids) == 0:
        return BlockStats.empty()
    compact = fastremap.remap(labels, {int(i): k + 1 for k, i in enumerate(ids)}, preserve_missing_labels=True)
    compact = compact.astype(np.int64 if len(ids) >= 2**31 else np.int32)
    index = np.arange(1, len(ids) + 1)
    n = len(ids)
    flat = compact.ravel()
    count = np.bincount(flat, minlength=n + 1)[1:].astype(np.int64)
    grids: tuple[np.ndarray, ...] = np.indices(labels.shape, sparse=True)
    coords = {a: np.broadcast_to((g + o).astype(np.float64), labels.shape).ravel()
              for a, g, o in zip("zyx", grids, write_roi.offset)}

    def per_label(weights: np.ndarray) -> np.ndarray:
        return np.bincount(flat, weights=weights, minlength=n + 1)[1:]

    sum_z, sum_y, sum_x = (per_label(coords[a]) for a in "zyx")
    moments = [per_label(coords[m[0]] * coords[m[1]]) for m in _MOMENTS]
    img = image.astype(np.float64)
    sum_int = np.bincount(flat, weights=img.ravel(), minlength=n + 1)[1:]
    max_int = np.asarray(ndi.maximum(img, compact, index), dtype=np.float64)
    slices = ndi.find_objects(compact)
    off = np.asarray(write_roi.offset, dtype=np.int64)
    lo = np.array([[s.start for s in sl] for sl in slices], dtype=np.int64) + off
    hi = np.array([[s.stop for s in sl] for sl in slices], dtype=np.int64) + off
    vol = np.asarray(volume_shape, dtype=np.int64)
    touches = np.any(lo == 0, axis=1) | np.any(hi == vol, axis=1)
    # Within one block, row-major order is the volume's: the first occurrence is the global first.
    _, at = np.unique(flat, return_index=True)
    local = np.unravel_index(at[-n:], labels.shape)
    first = np.ravel_multi_index(tuple(c + o for c, o in zip(local, write_roi.offset)), tuple(volume_shape))
    return BlockStats(ids.astype(np.uint64), count, sum_z, sum_y, sum_x, sum_int, max_int, lo, hi, touches,
                      first.astype(np.int64), *moments)


def combine_stats(parts: list[BlockStats]) -> BlockStats:
    """Combine partials by ID: sums add, boxes and first voxels take min/max, flags OR."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return BlockStats.empty()
    ids = np.concatenate([p.ids for p in parts])
    order = np.argsort(ids, kind="stable")
    ids = ids[order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])

    def cat(field: str) -> np.ndarray:
        return np.concatenate([getattr(p, field) for p in parts])[order]

    sums = {f: np.add.reduceat(cat(f), starts) for f in _SUM_FIELDS}
    return BlockStats(
        ids=ids[starts],
        max_intensity=np.maximum.reduceat(cat("max_intensity"), starts),
        lo=np.minimum.reduceat(cat("lo"), starts, axis=0),
        hi=np.maximum.reduceat(cat("hi"), starts, axis=0),
        touches_border=np.logical_or.reduceat(cat("touches_border"), starts),
        first=np.minimum.reduceat(cat("first"), starts),
        **sums,
    )


def object_table(stats: BlockStats, voxel_size: tuple[float, float, float]) -> pa.Table:
    """The nucleus table (one row per ID) from combined statistics.

    Columns: ``id``, ``voxel_count``, ``volume_um3``, ``centroid_{z,y,x}_um``,
    ``bbox_{z,y,x}_{min,max}`` (voxels, half-open), ``mean_intensity``,
    ``max_intensity``, ``touches_border``, ``elongation`` (longest / shortest principal axis,
    >= 1: the square root of the largest over the smallest eigenvalue of the coordinate
    covariance in µm², each voxel counted as a box, i.e. ``voxel_size**2 / 12`` added per axis),
    ``first_voxel`` (int64: the row-major index in the volume of the object's first voxel; a key
    of the object alone, whatever the blocking: ordering by it numbers objects independently of
    the block shape, ``docs/stitching.md``).
    """
    vs = np.asarray(voxel_size, dtype=np.float64)
    count = stats.count.astype(np.float64)
    safe = np.maximum(count, 1.0)
    cols: dict[str, np.ndarray] = {
        "id": stats.ids.astype(np.uint32),
        "voxel_count": stats.count,
        "volume_um3": count * float(np.prod(vs)),
        "centroid_z_um": stats.sum_z / safe * vs[0],
        "centroid_y_um": stats.sum_y / safe * vs[1],
        "centroid_x_um": stats.sum_x / safe * vs[2],
    }
    for k, axis in enumerate("zyx"):
        cols[f"bbox_{axis}_min"] = stats.lo[:, k]
        cols[f"bbox_{axis}_max"] = stats.hi[:, k]
    cols["mean_intensity"] = stats.sum_intensity / safe
    cols["max_intensity"] = stats.max_intensity
    cols["touches_border"] = stats.touches_border
    cols["elongation"] = _elongation(stats, vs, safe)
    cols["first_voxel"] = stats.first.astype(np.int64)
    return pa.table(cols)


def _elongation(stats: BlockStats, vs: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Principal-axis ratio per object from the summed moments (shape ``(n,)``)."""
    n = len(stats.ids)
    mean = np.stack([stats.sum_z, stats.sum_y, stats.sum_x], axis=1) / count[:, None]
    cov = np.empty((n, 3, 3))
    index = {"z": 0, "y": 1, "x": 2}
    for m in _MOMENTS:
        i, j = index[m[0]], index[m[1]]
        c = (getattr(stats, f"sum_{m}") / count - mean[:, i] * mean[:, j]) * vs[i] * vs[j]
        cov[:, i, j] = cov[:, j, i] = c
    cov[:, range(3), range(3)] += vs**2 / 12.0
    eig = np.linalg.eigvalsh(cov) if n else np.zeros((0, 3))
    return np.sqrt(np.maximum(eig[:, -1], 0) / np.maximum(eig[:, 0], 1e-12))
