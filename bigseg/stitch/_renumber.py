"""Relabel after small-object removal: drop IDs below a size, renumber the rest ``1..M``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import fastremap
import numpy as np

from bigseg.errors import InputError

__all__ = ["Renumbering"]


def _unknown_ids_error(unknown: np.ndarray, n_known: int) -> InputError:
    return InputError(
        f"label ID(s) {unknown[:5].tolist()} are not in this renumbering ({n_known} IDs); "
        "build it from the object table of every block, and subset() with the IDs present in the block"
    )


@dataclass(frozen=True, slots=True, eq=False)
class Renumbering:
    """Old final ID → new ID after removing objects smaller than ``min_size`` voxels.

    Build it once from the object table with :meth:`from_sizes`; the sizes
    must be each object's *combined* voxel count, i.e. the per-block object
    table (measure stage) summed over blocks by final ID, since an object
    crossing block boundaries is counted piecewise by each block. Send each
    block task only :meth:`subset` of the IDs present in that block.

    Attributes
    ----------
    old_ids : (K,) ndarray of uint32
        Sorted, unique, nonzero IDs this table knows.
    new_ids : (K,) ndarray of uint32
        Their new IDs; 0 for removed objects.
    n_kept : int
        ``M``, the number of objects kept (new IDs are ``1..M``).
    """

    old_ids: np.ndarray
    new_ids: np.ndarray
    n_kept: int

    def __post_init__(self) -> None:
        for name in ("old_ids", "new_ids"):
            arr = np.asarray(getattr(self, name))
            if arr.ndim != 1:
                raise InputError(f"`{name}` must be 1-D, got shape {arr.shape}")
            arr = np.array(arr, dtype=np.uint32)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "n_kept", int(self.n_kept))
        if len(self.old_ids) != len(self.new_ids):
            raise InputError(f"`old_ids` ({len(self.old_ids)}) and `new_ids` ({len(self.new_ids)}) must match in length")
        if len(self.old_ids) and (self.old_ids[0] == 0 or np.any(np.diff(self.old_ids.astype(np.int64)) <= 0)):
            raise InputError("`old_ids` must be sorted, unique and nonzero (0 is background)")

    @classmethod
    def from_sizes(
        cls, ids: np.ndarray, sizes: np.ndarray, *, min_size: int, order: np.ndarray | None = None
    ) -> Renumbering:
        """Drop IDs with fewer than ``min_size`` voxels, renumber the rest by ``order`` (default: old ID).

        Parameters
        ----------
        ids : (K,) ndarray of uint32
            Final object IDs (unique, nonzero; any order).
        sizes : (K,) ndarray of int64
            Combined voxel count of each object (all blocks summed).
        min_size : int
            Objects with ``size < min_size`` voxels go to 0; ``>= 0``.
        order : (K,) ndarray of int, optional
            Unique sort key of each object; kept objects are numbered by it.
            The global index of an object's first voxel makes the new IDs
            independent of the blocking.
        """
        ids, sizes = np.asarray(ids), np.asarray(sizes)
        if ids.ndim != 1 or ids.shape != sizes.shape:
            raise InputError(f"`ids` (shape {ids.shape}) and `sizes` (shape {sizes.shape}) must be 1-D of equal length")
        if ids.size and (ids.dtype.kind not in "ui" or ids.min() <= 0 or ids.max() > 2**32 - 1):
            raise InputError(f"`ids` must be uint32 object IDs >= 1, got dtype {ids.dtype}, range {ids.min()}..{ids.max()}")
        if isinstance(min_size, bool) or not isinstance(min_size, (int, np.integer)) or min_size < 0:
            raise InputError(f"`min_size` must be an int >= 0 (voxels), got {min_size!r}")
        if order is not None:
            order = np.asarray(order)
            if order.shape != ids.shape or len(np.unique(order)) != len(order):
                raise InputError(f"`order` (shape {order.shape}) must hold one unique key per ID (shape {ids.shape})")
        by_id = np.argsort(ids, kind="stable")
        ids, sizes = ids[by_id].astype(np.uint32), sizes[by_id]
        if np.any(ids[1:] == ids[:-1]):
            raise InputError(f"`ids` must be unique; {ids[1:][ids[1:] == ids[:-1]][:5].tolist()} repeat")
        keep = sizes >= min_size
        key = ids.astype(np.int64) if order is None else order[by_id]
        rank = np.empty(len(ids), dtype=np.int64)
        rank[np.argsort(np.where(keep, key, np.iinfo(np.int64).max), kind="stable")] = np.arange(len(ids))
        new = np.where(keep, rank + 1, 0)
        return cls(ids, new, int(keep.sum()))

    def subset(self, ids_present: Iterable[int] | np.ndarray) -> Renumbering:
        """This table restricted to ``ids_present`` (0 ignored); raises for IDs it does not know."""
        want = np.unique(np.asarray(list(ids_present) if not isinstance(ids_present, np.ndarray) else ids_present))
        want = want[want != 0].astype(np.int64)
        pos = self._positions(want)
        return Renumbering(self.old_ids[pos], self.new_ids[pos], self.n_kept)

    def apply(self, labels: np.ndarray) -> np.ndarray:
        """Relabel one block.

        Parameters
        ----------
        labels : (Z, Y, X) ndarray of uint32
            Final IDs (0 = background) of one block.

        Returns
        -------
        (Z, Y, X) ndarray of uint32
            New IDs; removed objects become 0.
        """
        labels = np.asarray(labels)
        present = fastremap.unique(labels)
        present = present[present != 0].astype(np.int64)
        pos = self._positions(present)
        table = dict(zip(present.tolist(), self.new_ids[pos].tolist()))
        table[0] = 0
        return fastremap.remap(labels, table, preserve_missing_labels=False, in_place=False).astype(np.uint32, copy=False)

    def _positions(self, ids: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(self.old_ids, ids)
        known = pos < len(self.old_ids)
        known[known] = self.old_ids[pos[known]] == ids[known]
        if not known.all():
            raise _unknown_ids_error(ids[~known], len(self.old_ids))
        return pos
