"""Intermediate arrays of one run, under ``OUT/.bigseg-work`` (removed at the end).

``seeds`` and ``stitched`` have the volume's shape and one chunk per block.
``slots`` (iou stitch path) gives every block a private slot of ``block + 2 *
halo`` voxels per axis for its whole read ROI, so neighbours can compare their
labels where read ROIs intersect without recomputing them::

    slots:  | slot (0,0,0) | slot (0,0,1) | ...   slot = read ROI of one block,
                                                  zero-padded at volume edges

Small per-block results that other blocks read (face pairs, root tables,
partial statistics, kept IDs) are one ``.npz`` file per block and kind,
``OUT/.bigseg-work/<kind>/<linear>.npz``: the driver never holds them.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zarr

from bigseg.errors import BlockFailedError
from bigseg.io import forget_handles, get_fs, is_local, join_url, make_store, open_array, remove_tree
from bigseg.tiling import Block, Grid, Roi

__all__ = ["Scratch"]


@dataclass(frozen=True)
class Scratch:
    """Scratch arrays of a run; picklable (arrays are opened per process)."""

    url: str
    grid: Grid
    storage_options: dict[str, Any] | None = field(default=None, compare=False, hash=False)

    @property
    def slot_shape(self) -> tuple[int, ...]:
        return tuple(b + 2 * h for b, h in zip(self.grid.block_shape, self.grid.halo.shape))

    def create(self, *, slots: bool) -> None:
        forget_handles(self.url)
        store = make_store(self.url, self.storage_options, read_only=False)
        root = zarr.open_group(store, mode="w")
        for name in ("seeds", "stitched"):
            root.create_array(
                name, shape=self.grid.volume_shape, chunks=self.grid.block_shape, dtype="uint32", fill_value=0
            )
        if slots:
            shape = tuple(g * s for g, s in zip(self.grid.grid_shape, self.slot_shape))
            root.create_array("slots", shape=shape, chunks=self.slot_shape, dtype="uint32", fill_value=0)

    def _array(self, name: str) -> Any:
        if name == "slots":
            shape = tuple(g * s for g, s in zip(self.grid.grid_shape, self.slot_shape))
            expect = (shape, self.slot_shape)
        else:
            expect = (self.grid.volume_shape, self.grid.block_shape)
        return open_array(join_url(self.url, name), self.storage_options, mode="r+", expect=expect)

    def write(self, name: str, roi: Roi, data: np.ndarray) -> None:
        self._array(name)[roi.to_slices()] = data

    def read(self, name: str, roi: Roi) -> np.ndarray:
        return np.asarray(self._array(name)[roi.to_slices()])

    def _slot_origin(self, block: Block) -> tuple[int, ...]:
        """Global voxel position of the slot's first voxel."""
        return tuple(o - h for o, h in zip(block.write_roi.offset, self.grid.halo.shape))

    def write_slot(self, block: Block, labels: np.ndarray) -> None:
        slot = np.zeros(self.slot_shape, dtype=np.uint32)
        origin = self._slot_origin(block)
        inner = tuple(slice(r - o, r - o + s) for r, o, s in zip(block.read_roi.offset, origin, block.read_roi.shape))
        slot[inner] = labels
        start = tuple(i * s for i, s in zip(block.index, self.slot_shape))
        self._array("slots")[tuple(slice(a, a + s) for a, s in zip(start, self.slot_shape))] = slot

    def read_slot(self, block: Block, roi: Roi) -> np.ndarray:
        """The labels ``block`` gave to ``roi`` (global voxels, inside its read ROI)."""
        origin = self._slot_origin(block)
        start = tuple(i * s + r - o for i, s, r, o in zip(block.index, self.slot_shape, roi.offset, origin))
        return np.asarray(self._array("slots")[tuple(slice(a, a + s) for a, s in zip(start, roi.shape))])

    def save(self, kind: str, linear: int, **arrays: np.ndarray) -> None:
        """Store one block's small result ``kind`` (written whole, then renamed into place locally)."""
        buf = io.BytesIO()
        np.savez(buf, **arrays)  # type: ignore[arg-type]
        url = join_url(self.url, kind, f"{int(linear)}.npz")
        if is_local(url):
            os.makedirs(os.path.dirname(url), exist_ok=True)
            tmp = f"{url}.{os.getpid()}.tmp"
            with open(tmp, "wb") as f:
                f.write(buf.getvalue())
            os.replace(tmp, url)
            return
        fs, path = get_fs(url, self.storage_options)
        with fs.open(path, "wb") as f:
            f.write(buf.getvalue())

    def load(self, kind: str, linear: int) -> dict[str, np.ndarray]:
        """One block's result ``kind``, as saved; a missing one is an error, never an empty result."""
        url = join_url(self.url, kind, f"{int(linear)}.npz")
        try:
            if is_local(url):
                with open(url, "rb") as f:
                    data = f.read()
            else:
                fs, path = get_fs(url, self.storage_options)
                with fs.open(path, "rb") as f:
                    data = f.read()
        except FileNotFoundError:
            raise BlockFailedError(f"the {kind!r} result of block {linear} is missing from {self.url!r}") from None
        with np.load(io.BytesIO(data)) as z:
            return {k: z[k] for k in z.files}

    def remove(self) -> None:
        remove_tree(self.url, self.storage_options)
        forget_handles(self.url)
