"""A regular grid of blocks over a volume.

Each block writes its ``write_roi`` and reads it grown by a halo
(``read_roi``), clipped to the volume::

      volume  ┌───────────────────────────────┐
              │ read_roi ┌ ─ ─ ─ ─ ─ ┐         │
              │          ┌───────────┐         │
              │          │ write_roi │ halo    │
              │          └───────────┘         │
              │          └ ─ ─ ─ ─ ─ ┘         │
              └───────────────────────────────┘

Write ROIs tile the volume exactly (edge blocks are smaller), and start at
multiples of ``block_shape``, so that with storage chunks that divide the
block shape every write is chunk-aligned and no two tasks touch one chunk.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Iterator

from bigseg.errors import InputError
from bigseg.tiling._parse import parse_shape
from bigseg.tiling._roi import Halo, Roi

__all__ = ["Block", "Grid"]


@dataclass(frozen=True, slots=True)
class Block:
    """One unit of block-wise work.

    Attributes
    ----------
    index : tuple of int
        Position in the grid, ``(iz, iy, ix)``.
    linear : int
        Row-major position in the grid, ``0 .. n_blocks - 1``; used as the
        high bits of provisional IDs.
    read_roi : Roi
        ``write_roi`` grown by the halo, clipped to the volume.
    write_roi : Roi
        The part of the volume this block owns and writes.
    """

    index: tuple[int, ...]
    linear: int
    read_roi: Roi
    write_roi: Roi

    @property
    def write_in_read(self) -> tuple[slice, ...]:
        """Slices of the write ROI within an array covering the read ROI."""
        return self.write_roi.relative_to(self.read_roi)


@dataclass(frozen=True, slots=True)
class Grid:
    """Volume shape + block shape + halo, in voxels (Z, Y, X).

    Examples
    --------
    >>> g = Grid((100, 64, 64), (64, 64, 64), Halo((8, 8, 8)))
    >>> g.grid_shape, g.n_blocks
    ((2, 1, 1), 2)
    >>> g.block((1, 0, 0)).write_roi
    Roi(offset=(64, 0, 0), shape=(36, 64, 64))
    >>> g.block((1, 0, 0)).read_roi
    Roi(offset=(56, 0, 0), shape=(44, 64, 64))
    """

    volume_shape: tuple[int, ...]
    block_shape: tuple[int, ...]
    halo: Halo

    def __post_init__(self) -> None:
        vol = parse_shape(self.volume_shape, name="volume_shape", ndim=len(tuple(self.volume_shape)))
        blk = parse_shape(self.block_shape, name="block_shape", ndim=len(vol))
        halo = self.halo if isinstance(self.halo, Halo) else Halo.of(self.halo, len(vol))
        if len(halo.shape) != len(vol):
            raise InputError(f"`halo` {halo.shape} must have {len(vol)} values, like the volume shape {vol}")
        object.__setattr__(self, "volume_shape", vol)
        object.__setattr__(self, "block_shape", blk)
        object.__setattr__(self, "halo", halo)

    @property
    def volume_roi(self) -> Roi:
        return Roi((0,) * len(self.volume_shape), self.volume_shape)

    @property
    def grid_shape(self) -> tuple[int, ...]:
        return tuple(-(-v // b) for v, b in zip(self.volume_shape, self.block_shape))

    @property
    def n_blocks(self) -> int:
        n = 1
        for g in self.grid_shape:
            n *= g
        return n

    def linear_index(self, index: tuple[int, ...]) -> int:
        lin = 0
        for i, g in zip(index, self.grid_shape):
            if not 0 <= i < g:
                raise InputError(f"block index {index} is outside the grid {self.grid_shape}")
            lin = lin * g + i
        return lin

    def block_index(self, linear: int) -> tuple[int, ...]:
        if not 0 <= linear < self.n_blocks:
            raise InputError(f"linear block index {linear} is outside 0..{self.n_blocks - 1}")
        out = []
        for g in reversed(self.grid_shape):
            out.append(linear % g)
            linear //= g
        return tuple(reversed(out))

    def block(self, index: tuple[int, ...] | int) -> Block:
        if isinstance(index, int):
            index = self.block_index(index)
        index = tuple(int(i) for i in index)
        linear = self.linear_index(index)
        offset = tuple(i * b for i, b in zip(index, self.block_shape))
        write = Roi(offset, self.block_shape).intersect(self.volume_roi)
        read = write.grow(self.halo).intersect(self.volume_roi)
        return Block(index=index, linear=linear, read_roi=read, write_roi=write)

    def blocks(self) -> Iterator[Block]:
        """All blocks in row-major order."""
        for index in itertools.product(*(range(g) for g in self.grid_shape)):
            yield self.block(index)

    def blocks_touching(self, roi: Roi) -> Iterator[Block]:
        """Blocks whose write ROI intersects ``roi``."""
        lo = [max(0, o // b) for o, b in zip(roi.offset, self.block_shape)]
        hi = [min(g, -(-e // b)) for e, b, g in zip(roi.end, self.block_shape, self.grid_shape)]
        for index in itertools.product(*(range(a, c) for a, c in zip(lo, hi))):
            yield self.block(index)
