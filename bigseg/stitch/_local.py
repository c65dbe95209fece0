"""The numbering worked out block by block: no process holds a table of all objects.

:func:`number_objects` needs every pair of the volume in one place. Here each
block finds the roots of its own merged IDs from the pairs around it, and the
final IDs follow from per-block counts by prefix sums::

    pairs of the blocks around b ──► resolve_roots(b): non-roots of b and their roots
    per block: counts - non-roots ──► offsets = prefix sums   (the driver: O(blocks))
    a block's own + neighbours' tables ──► local_numbering ──► Numbering.subset-equivalent

A block sees the whole group of each of its IDs when the group lies in at
most two blocks along each axis (an object smaller than a block). Larger
groups ("wide": a bright slab, a long fibre) are left to one global
union-find over their pairs only (:func:`merge_wide`), which the driver runs:
its size follows the number of wide objects, not of all objects. The IDs are
exactly those of :func:`number_objects` on the same counts and pairs.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import scipy.sparse
import scipy.sparse.csgraph

from bigseg.errors import InputError
from bigseg.stitch._ids import split_provisional
from bigseg.stitch._numbering import Numbering

__all__ = ["local_numbering", "merge_wide", "owner_blocks", "resolve_roots"]


def _unravel(linear: np.ndarray, grid_shape: tuple[int, ...]) -> np.ndarray:
    return np.stack(np.unravel_index(linear, grid_shape), axis=-1).astype(np.int64)


def resolve_roots(
    pairs: np.ndarray, block: int, grid_shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Root (smallest provisional ID of its group) of every merged ID of ``block``.

    Parameters
    ----------
    pairs : (E, 2) ndarray of uint64
        Every pair that has an ID in a block at most one step from ``block``
        along each axis (the 3 x 3 x 3 blocks around it): the face pairs of
        the blocks ``block + d``, ``d`` in ``-2..1`` per axis. More pairs are fine.
    block : int
        Linear index of the block.
    grid_shape : tuple of int
        Blocks per axis.

    Returns
    -------
    nonroot_locals : (M,) ndarray of uint32
        Sorted local labels of ``block`` merged into a smaller ID.
    roots : (M,) ndarray of uint64
        Their roots' provisional IDs.
    wide : (W,) ndarray of uint32
        Sorted local labels of ``block`` in groups spanning more than two
        blocks along some axis: their roots are for :func:`merge_wide`, and
        they are in neither array above.
    """
    pairs = np.asarray(pairs, dtype=np.uint64).reshape(-1, 2)
    empty = (np.zeros(0, np.uint32), np.zeros(0, np.uint64), np.zeros(0, np.uint32))
    if not len(pairs):
        return empty
    # Only pairs with an ID in the 3 x 3 x 3 blocks around ``block`` matter.
    centre = np.asarray(np.unravel_index(block, grid_shape), dtype=np.int64)
    near = np.any(np.all(np.abs(_unravel(pairs >> np.uint64(32), grid_shape) - centre) <= 1, axis=-1), axis=1)
    pairs = pairs[near]
    nodes = np.unique(pairs)
    ij = np.searchsorted(nodes, pairs)
    graph = scipy.sparse.coo_matrix((np.ones(len(ij), np.int8), (ij[:, 0], ij[:, 1])), shape=(len(nodes),) * 2)
    _, comp = scipy.sparse.csgraph.connected_components(graph, directed=False)
    blk, loc = split_provisional(nodes)
    mine = blk == block
    if not mine.any():
        return empty
    where = _unravel(blk, grid_shape)
    order = np.argsort(comp, kind="stable")  # components are 0..n_comp-1, all present
    starts = np.flatnonzero(np.r_[True, comp[order][1:] != comp[order][:-1]])
    lo = np.minimum.reduceat(where[order], starts, axis=0)
    hi = np.maximum.reduceat(where[order], starts, axis=0)
    # Seen from here, a group reaching beyond the 3 x 3 x 3 blocks spans > 2 blocks too, so every
    # block of a wide group calls it wide, and every block of a narrow one sees all of it.
    wide = np.any(hi - lo > 1, axis=1)[comp]
    # nodes are sorted, so the first node of each component is its smallest ID: the root.
    _, first = np.unique(comp, return_index=True)
    root = nodes[first[comp]]
    keep = mine & ~wide & (root != nodes)
    return loc[keep].astype(np.uint32), root[keep], np.sort(loc[mine & wide]).astype(np.uint32)


def merge_wide(pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Union-find over the pairs of wide groups: ``(non-root IDs, their roots)``, sorted by ID (uint64)."""
    pairs = np.asarray(pairs, dtype=np.uint64).reshape(-1, 2)
    if not len(pairs):
        return np.zeros(0, np.uint64), np.zeros(0, np.uint64)
    nodes = np.unique(pairs)
    ij = np.searchsorted(nodes, pairs)
    graph = scipy.sparse.coo_matrix((np.ones(len(ij), np.int8), (ij[:, 0], ij[:, 1])), shape=(len(nodes),) * 2)
    _, comp = scipy.sparse.csgraph.connected_components(graph, directed=False)
    _, first = np.unique(comp, return_index=True)
    root = nodes[first[comp]]
    keep = root != nodes
    return nodes[keep], root[keep]


def local_numbering(offsets: np.ndarray, tables: Mapping[int, tuple[np.ndarray, np.ndarray]], blocks: list[int]) -> Numbering:
    """The :class:`Numbering` of ``blocks``, from per-block root tables and offsets.

    Parameters
    ----------
    offsets : (n_blocks + 1,) ndarray of int64
        Prefix sums of the number of roots per block (``counts`` minus the
        non-roots found by :func:`resolve_roots`).
    tables : mapping block -> (nonroot_locals, roots)
        :func:`resolve_roots` of every block in ``blocks`` and of every block
        holding one of their roots.
    blocks : list of int
        The blocks whose IDs will be converted.
    """
    blocks = sorted(set(int(b) for b in blocks))
    locals_, finals = [], []
    for b in blocks:
        nonroot, roots = tables[b]
        r_blk, r_loc = split_provisional(roots)
        fin = np.zeros(len(roots), dtype=np.int64)
        for r in np.unique(r_blk):
            sel = r_blk == r
            below = np.searchsorted(tables[int(r)][0], r_loc[sel]) if int(r) in tables else _missing(int(r), b)
            fin[sel] = offsets[r] + r_loc[sel].astype(np.int64) - below
        locals_.append(nonroot)
        finals.append(fin)
    ptr = np.concatenate([[0], np.cumsum([len(x) for x in locals_])]).astype(np.int64)
    cat = (lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt))
    return Numbering(offsets, np.asarray(blocks, np.int64), ptr, cat(locals_, np.uint32), cat(finals, np.uint32),
                     int(offsets[-1]))


def _missing(root_block: int, block: int) -> np.ndarray:
    raise InputError(f"block {block} has IDs rooted in block {root_block}, whose root table was not given")


def owner_blocks(ids: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The block owning each final ID: the block holding its root, ``offsets[b] < id <= offsets[b + 1]``."""
    return np.searchsorted(offsets, np.asarray(ids, dtype=np.int64), side="left") - 1
