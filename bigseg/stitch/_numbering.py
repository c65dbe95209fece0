"""Final object numbering from per-block label counts and the pairs of provisional IDs to merge.

Both stitching paths (seeded faces, mutual-best IoU) reduce to the same data:
how many local labels each block has, and which provisional IDs are one
object. :func:`number_objects` turns that into consecutive final IDs
``1..N`` without ever materialising anything of size ``sum(counts)``: only
IDs that appear in a pair (objects crossing a block boundary) enter the
union-find graph, and every other ID's final value follows arithmetically.

Numbering rule (roots ordered by provisional ID)::

    block 0: locals 1 2 3 4        block 1: locals 1 2 3
                   └──merged────────────────┘
    non-roots: (1, 1)                 root of {(0,3),(1,1)} = (0,3), the smaller ID
    final(0,l) = 0 + l               -> 1 2 3 4
    final(1,l) = 4 + l - #{non-roots of block 1 with local < l}
               -> (1,1) takes 3 (its root's), (1,2) -> 5, (1,3) -> 6
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import fastremap
import numpy as np
import scipy.sparse
import scipy.sparse.csgraph

from bigseg.errors import InputError
from bigseg.stitch._ids import MAX_BLOCKS, MAX_LOCAL, SHIFT, split_provisional

__all__ = ["Numbering", "number_objects"]


def _frozen_array(a: np.ndarray, dtype: type, name: str, ndim: int = 1) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != ndim:
        raise InputError(f"`{name}` must be {ndim}-D, got shape {a.shape}")
    a = np.array(a, dtype=dtype, copy=a.dtype != np.dtype(dtype))
    a.setflags(write=False)
    return a


@dataclass(frozen=True, slots=True, eq=False)
class Numbering:
    """Provisional → final ID mapping, for all blocks or a subset of them.

    Roots (the smallest provisional ID of each merged group, and every ID
    never merged) get consecutive final IDs by arithmetic; only non-roots
    (IDs merged into a smaller one) are stored. A task relabelling block
    ``b`` needs :meth:`subset` ``([b])``: ``offsets`` plus block ``b``'s own
    non-roots, never the whole table.

    Attributes
    ----------
    offsets : (n_blocks + 1,) ndarray of int64
        ``offsets[b]`` = number of roots in blocks ``< b``;
        ``offsets[-1] == n_objects``.
    blocks : (K,) ndarray of int64
        Sorted block indices whose non-root tables are held.
    ptr : (K + 1,) ndarray of int64
        Non-roots of ``blocks[k]`` are ``nonroot_locals[ptr[k]:ptr[k+1]]``.
    nonroot_locals : (M,) ndarray of uint32
        Local labels of non-roots, sorted within each block.
    nonroot_final : (M,) ndarray of uint32
        Their final IDs (their root's).
    n_objects : int
        Number of final objects ``N``; final IDs are ``1..N``.
    """

    offsets: np.ndarray
    blocks: np.ndarray
    ptr: np.ndarray
    nonroot_locals: np.ndarray
    nonroot_final: np.ndarray
    n_objects: int

    def __post_init__(self) -> None:
        for name, dtype in [("offsets", np.int64), ("blocks", np.int64), ("ptr", np.int64),
                            ("nonroot_locals", np.uint32), ("nonroot_final", np.uint32)]:
            object.__setattr__(self, name, _frozen_array(getattr(self, name), dtype, name))
        object.__setattr__(self, "n_objects", int(self.n_objects))
        n_blocks = len(self.offsets) - 1
        if n_blocks < 0 or self.offsets[0] != 0 or self.offsets[-1] != self.n_objects:
            raise InputError(f"`offsets` must start at 0 and end at n_objects={self.n_objects}, got {self.offsets}")
        if len(self.ptr) != len(self.blocks) + 1 or self.ptr[0] != 0 or self.ptr[-1] != len(self.nonroot_locals):
            raise InputError(
                f"`ptr` (length {len(self.ptr)}) must have len(blocks) + 1 = {len(self.blocks) + 1} entries "
                f"from 0 to len(nonroot_locals) = {len(self.nonroot_locals)}"
            )
        if len(self.nonroot_final) != len(self.nonroot_locals):
            raise InputError("`nonroot_final` and `nonroot_locals` must have the same length")
        if len(self.blocks) and (np.any(np.diff(self.blocks) <= 0) or self.blocks[0] < 0
                                 or self.blocks[-1] >= n_blocks):
            raise InputError(f"`blocks` must be sorted, unique and within 0..{n_blocks - 1}")

    @property
    def n_blocks(self) -> int:
        return len(self.offsets) - 1

    def owned_count(self, block: int) -> int:
        """Number of final objects whose root (smallest provisional ID) lies in ``block``."""
        b = self._check_block(block)
        return int(self.offsets[b + 1] - self.offsets[b])

    def subset(self, block_linears: Iterable[int]) -> Numbering:
        """The same numbering holding only the non-root tables of ``block_linears``.

        Raises :class:`~bigseg.errors.InputError` for a block this numbering
        does not hold.
        """
        want = np.unique(np.fromiter((self._check_block(b) for b in block_linears), dtype=np.int64))
        k = self._positions(want)
        starts, stops = self.ptr[k], self.ptr[k + 1]
        lens = stops - starts
        idx = np.repeat(starts - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens) + np.arange(lens.sum())
        return Numbering(self.offsets, want, np.concatenate([[0], np.cumsum(lens)]),
                         self.nonroot_locals[idx], self.nonroot_final[idx], self.n_objects)

    def block_lut(self, block: int) -> np.ndarray:
        """Lookup table ``final = lut[local]`` for one held block.

        Returns
        -------
        (count + 1,) ndarray of uint32
            ``count`` = the block's number of local labels; ``lut[0] == 0``.
        """
        b = self._check_block(block)
        k = int(self._positions(np.array([b]))[0])
        locs = self.nonroot_locals[self.ptr[k]:self.ptr[k + 1]]
        count = int(self.offsets[b + 1] - self.offsets[b]) + len(locs)
        is_root = np.ones(count + 1, dtype=bool)
        is_root[0] = False
        is_root[locs] = False
        lut = np.zeros(count + 1, dtype=np.uint32)
        lut[is_root] = np.arange(self.offsets[b] + 1, self.offsets[b + 1] + 1, dtype=np.uint32)
        lut[locs] = self.nonroot_final[self.ptr[k]:self.ptr[k + 1]]
        return lut

    def relabel_block(self, local: np.ndarray, block: int) -> np.ndarray:
        """Final IDs for one block's local labels, ``(Z, Y, X) uint32 -> uint32`` (fast path)."""
        lut = self.block_lut(block)
        local = np.asarray(local)
        if local.size and int(local.max()) >= len(lut):
            raise InputError(
                f"local label {int(local.max())} is above block {block}'s count {len(lut) - 1}; "
                "the labels must be the ones the numbering was built from"
            )
        return np.take(lut, local)  # faster than lut[local] for large blocks

    def to_final(self, ids: np.ndarray) -> np.ndarray:
        """Final IDs for provisional IDs of any held blocks.

        Parameters
        ----------
        ids : ndarray of uint64 (any shape)
            Provisional IDs (0 = background).

        Returns
        -------
        ndarray of uint32, same shape
        """
        ids = np.asarray(ids)
        if ids.size == 0:
            return np.zeros(ids.shape, dtype=np.uint32)
        uniq = fastremap.unique(ids)
        table = dict(zip(uniq.tolist(), self._final_of_unique(uniq).tolist()))
        return fastremap.remap(ids, table, preserve_missing_labels=False, in_place=False).astype(np.uint32)

    def _final_of_unique(self, uniq: np.ndarray) -> np.ndarray:
        blk, loc = split_provisional(uniq)
        fg = uniq != 0
        blk, loc = blk[fg], loc[fg].astype(np.int64)
        ublk = np.unique(blk)
        k = self._positions(ublk)[np.searchsorted(ublk, blk)]
        counts = self.offsets[blk + 1] - self.offsets[blk] + self.ptr[k + 1] - self.ptr[k]
        bad = loc > counts
        if bad.any():
            i = int(np.argmax(bad))
            raise InputError(
                f"provisional ID (block {blk[i]}, local {loc[i]}) is above that block's count {counts[i]}; "
                "the IDs must come from the labels the numbering was built from"
            )
        keys = (np.repeat(self.blocks, np.diff(self.ptr)).astype(np.uint64) << SHIFT) | self.nonroot_locals
        pos = np.searchsorted(keys, uniq[fg])
        hit = pos < len(keys)
        hit[hit] = keys[pos[hit]] == uniq[fg][hit]
        out = np.zeros(len(uniq), dtype=np.uint32)
        fin = self.offsets[blk] + loc - (pos - self.ptr[k])
        fin[hit] = self.nonroot_final[pos[hit]]
        out[fg] = fin
        return out

    def _check_block(self, block: int) -> int:
        if isinstance(block, (bool, np.bool_)) or not isinstance(block, (int, np.integer)):
            raise InputError(f"block index must be an int, got {block!r}")
        if not 0 <= int(block) < self.n_blocks:
            raise InputError(f"block {block} is outside 0..{self.n_blocks - 1}")
        return int(block)

    def _positions(self, blocks: np.ndarray) -> np.ndarray:
        """Positions of ``blocks`` in ``self.blocks``; raise if any is not held."""
        k = np.searchsorted(self.blocks, blocks)
        held = k < len(self.blocks)
        held[held] = self.blocks[k[held]] == blocks[held]
        if not held.all():
            missing = blocks[~held][:5].tolist()
            raise InputError(
                f"block(s) {missing} are not in this numbering subset (it holds {len(self.blocks)} block(s)); "
                "pass every block whose IDs you convert to Numbering.subset()"
            )
        return k


def _check_counts_pairs(counts: np.ndarray, pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    counts = np.asarray(counts)
    if counts.ndim != 1 or counts.dtype.kind not in "ui":
        raise InputError(f"`counts` must be a 1-D integer array (one count per block), got {counts.dtype} {counts.shape}")
    if len(counts) >= MAX_BLOCKS:
        raise InputError(f"at most {MAX_BLOCKS - 1} blocks are supported, got {len(counts)}; use a larger block_shape")
    counts = counts.astype(np.int64)
    if len(counts) and (counts.min() < 0 or counts.max() > MAX_LOCAL):
        raise InputError(f"`counts` must be in 0..{MAX_LOCAL}, got range {counts.min()}..{counts.max()}")
    pairs = np.asarray(pairs)
    if pairs.size == 0:
        return counts, np.zeros((0, 2), dtype=np.uint64)
    if pairs.ndim != 2 or pairs.shape[1] != 2 or pairs.dtype.kind not in "ui":
        raise InputError(f"`pairs` must be an (E, 2) array of uint64 provisional IDs, got {pairs.dtype} {pairs.shape}")
    pairs = pairs.astype(np.uint64)
    blk, loc = split_provisional(pairs)
    bad = (loc == 0) | (blk >= len(counts))
    bad[~bad] = loc[~bad] > counts[blk[~bad]]
    if bad.any():
        i = np.argwhere(bad)[0]
        raise InputError(
            f"pair ID {int(pairs[tuple(i)])} (block {blk[tuple(i)]}, local {loc[tuple(i)]}) is background or "
            f"outside `counts` ({len(counts)} blocks); counts[b] must be the largest local label of block b"
        )
    return counts, pairs


def number_objects(counts: np.ndarray, pairs: np.ndarray) -> Numbering:
    """Union-find over ``pairs``, then consecutive final IDs ``1..N`` ordered by root provisional ID.

    Parameters
    ----------
    counts : (n_blocks,) ndarray of int64
        Number of local labels (= largest local ID) of each block.
    pairs : (E, 2) ndarray of uint64
        Provisional IDs that are the same object (from :func:`face_pairs`
        or :func:`iou_pairs`); duplicates and self-pairs are fine.

    Returns
    -------
    Numbering
        Holding every block's non-root table; send tasks ``subset([b])``.

    Notes
    -----
    The graph only has the IDs that appear in ``pairs`` (boundary-crossing
    objects), so the cost is O(E log E + n_blocks), never O(sum(counts)).
    Every local label ``1..counts[b]`` gets a final ID, so blocks whose
    labels have gaps (e.g. a decoder's raw output) leave unused final IDs;
    renumber such blocks to ``1..n`` first (``fastremap.renumber``).
    """
    counts, pairs = _check_counts_pairs(counts, pairs)
    nodes = np.unique(pairs)
    ij = np.searchsorted(nodes, pairs)
    graph = scipy.sparse.coo_matrix((np.ones(len(ij), np.int32), (ij[:, 0], ij[:, 1])), shape=(len(nodes),) * 2)
    _, comp = scipy.sparse.csgraph.connected_components(graph, directed=False)
    # nodes are sorted, so the first node of each component is its smallest ID: the root.
    _, first = np.unique(comp, return_index=True)
    root = nodes[first[comp]]
    nonroot, nonroot_root = nodes[nodes != root], root[nodes != root]
    nr_blk, nr_loc = split_provisional(nonroot)
    n_nonroot = np.bincount(nr_blk, minlength=len(counts))
    offsets = np.concatenate([[0], np.cumsum(counts - n_nonroot)]).astype(np.int64)
    if offsets[-1] > MAX_LOCAL:
        raise InputError(f"{offsets[-1]} objects do not fit in uint32 final IDs (at most {MAX_LOCAL})")
    r_blk, r_loc = split_provisional(nonroot_root)
    rank = np.searchsorted(nonroot, nonroot_root) - np.searchsorted(nonroot, r_blk.astype(np.uint64) << SHIFT)
    nonroot_final = offsets[r_blk] + r_loc.astype(np.int64) - rank
    ptr = np.concatenate([[0], np.cumsum(n_nonroot)])
    return Numbering(offsets, np.arange(len(counts)), ptr, nr_loc, nonroot_final, int(offsets[-1]))
