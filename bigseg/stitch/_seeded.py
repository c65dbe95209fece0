"""Seeded path: exact chunked connected components (6-connectivity) over a :class:`~bigseg.tiling.Grid`.

Each block labels its write ROI alone; objects cut by a block face are
rejoined by the pairs of labels that touch across that face::

         block lo (write ROI)        block hi (write ROI)
      ┌──────────────────────┐ ┌──────────────────────┐
      │           ┌──────────┤ ├──────┐               │
      │           │ local 3  │ │ loc 1│               │   last plane of lo, first plane of hi:
      │           └──────────┤ ├──────┘               │   (lo 3, hi 1) nonzero at the same (y, x)
      └──────────────────────┘ └──────────────────────┘   -> pair ((lo << 32) | 3, (hi << 32) | 1)

Only face-adjacent voxels (same position on the two planes) join, which is
exactly 6-connectivity; blocks meeting at an edge or corner add no pairs.
"""

from __future__ import annotations

from typing import Iterator

import cc3d
import numpy as np

from bigseg.errors import InputError
from bigseg.stitch._ids import MAX_LOCAL, SHIFT, check_block_linear, provisional_ids
from bigseg.stitch._numbering import Numbering, number_objects
from bigseg.tiling import Block, Grid

__all__ = ["face_neighbours", "face_pairs", "face_planes", "label_blockwise", "label_seeds"]


def label_seeds(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """6-connected components of one block's write ROI.

    Parameters
    ----------
    mask : (Z, Y, X) ndarray of bool
        Foreground of the block's write ROI (nonzero counts as foreground).

    Returns
    -------
    labels : (Z, Y, X) ndarray of uint32
        Local labels ``1..n`` in raster order of first voxel; 0 is background.
    n : int
        Number of components (may be 0).
    """
    mask = np.asarray(mask)
    if mask.ndim != 3:
        raise InputError(f"`mask` must be a (Z, Y, X) array, got shape {mask.shape}")
    if mask.size > MAX_LOCAL:
        raise InputError(
            f"`mask` of shape {mask.shape} has more voxels than uint32 local labels can count; "
            "use a smaller block_shape"
        )
    if mask.dtype != bool:
        mask = mask != 0
    labels, n = cc3d.connected_components(mask, connectivity=6, return_N=True, out_dtype=np.uint32)
    return labels, int(n)


def face_planes(local: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """The first and last plane of ``local`` along each axis, as small copies.

    Parameters
    ----------
    local : (Z, Y, X) ndarray of uint32

    Returns
    -------
    tuple of (first, last) per axis
        2-D copies, so a block task can return its faces and free the block.
    """
    local = np.asarray(local)
    return tuple((np.take(local, 0, axis=a).copy(), np.take(local, -1, axis=a).copy()) for a in range(local.ndim))


def face_pairs(lo_plane: np.ndarray, lo_block: int, hi_plane: np.ndarray, hi_block: int) -> np.ndarray:
    """Unique pairs of provisional IDs that touch across one block face.

    Parameters
    ----------
    lo_plane : (A, B) ndarray of uint32
        Last plane (along the face's axis) of the lower block's local labels.
    lo_block : int
        The lower block's linear index.
    hi_plane : (A, B) ndarray of uint32
        First plane of the next block's local labels along the same axis.
    hi_block : int
        That block's linear index.

    Returns
    -------
    (E, 2) ndarray of uint64
        ``(lo ID, hi ID)`` for every label pair nonzero at the same position.
    """
    lo_plane, hi_plane = np.asarray(lo_plane), np.asarray(hi_plane)
    if lo_plane.shape != hi_plane.shape:
        raise InputError(
            f"`lo_plane` (shape {lo_plane.shape}) must have the same shape as `hi_plane` (shape {hi_plane.shape}); "
            "pass the touching planes of two face-adjacent blocks"
        )
    lo_b, hi_b = check_block_linear(lo_block, name="lo_block"), check_block_linear(hi_block, name="hi_block")
    both = (lo_plane != 0) & (hi_plane != 0)
    # One uint64 key per touching position; np.unique dedupes the pairs.
    keys = np.unique((provisional_ids(lo_plane[both], 0) << SHIFT) | provisional_ids(hi_plane[both], 0))
    lo = provisional_ids((keys >> SHIFT).astype(np.uint32), lo_b)
    hi = provisional_ids((keys & np.uint64(0xFFFFFFFF)).astype(np.uint32), hi_b)
    return np.stack([lo, hi], axis=1)


def face_neighbours(grid: Grid) -> Iterator[tuple[Block, Block, int]]:
    """Every pair of blocks sharing a face: ``(lo, hi, axis)`` with ``hi.index[axis] == lo.index[axis] + 1``."""
    for lo in grid.blocks():
        for axis, (i, g) in enumerate(zip(lo.index, grid.grid_shape)):
            if i + 1 < g:
                nxt = list(lo.index)
                nxt[axis] += 1
                yield lo, grid.block(tuple(nxt)), axis


def label_blockwise(mask: np.ndarray, grid: Grid) -> tuple[np.ndarray, int, Numbering]:
    """Serial reference of the seeded path: label every write ROI, join faces, number, relabel.

    The pipeline runs the same three steps as parallel tasks; this loop is
    for tests, benchmarks and small volumes.

    Parameters
    ----------
    mask : (Z, Y, X) ndarray of bool
        Must have ``grid.volume_shape``.
    grid : Grid
        Only the write ROIs are used (the halo plays no part here).

    Returns
    -------
    labels : (Z, Y, X) ndarray of uint32
        Equal to ``scipy.ndimage.label(mask)`` up to renaming.
    n : int
        Number of objects.
    numbering : Numbering
    """
    if tuple(np.shape(mask)) != grid.volume_shape:
        raise InputError(f"`mask` (shape {np.shape(mask)}) must have the grid's volume shape {grid.volume_shape}")
    counts = np.zeros(grid.n_blocks, dtype=np.int64)
    faces = {}
    locals_ = {}
    for blk in grid.blocks():
        locals_[blk.linear], counts[blk.linear] = label_seeds(mask[blk.write_roi.to_slices()])
        faces[blk.linear] = face_planes(locals_[blk.linear])
    pairs = [face_pairs(faces[lo.linear][ax][1], lo.linear, faces[hi.linear][ax][0], hi.linear)
             for lo, hi, ax in face_neighbours(grid)]
    numbering = number_objects(counts, np.concatenate(pairs) if pairs else np.zeros((0, 2), np.uint64))
    out = np.zeros(grid.volume_shape, dtype=np.uint32)
    for blk in grid.blocks():
        out[blk.write_roi.to_slices()] = numbering.subset([blk.linear]).relabel_block(locals_[blk.linear], blk.linear)
    return out, numbering.n_objects, numbering
