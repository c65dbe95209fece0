"""resolve_roots + local_numbering (block by block) give exactly number_objects' IDs (all pairs at once)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from bigseg.stitch import (
    face_neighbours,
    face_pairs,
    label_seeds,
    local_numbering,
    merge_wide,
    number_objects,
    owner_blocks,
    provisional_ids,
    resolve_roots,
)
from bigseg.tiling import Grid


def _blockwise(mask: np.ndarray, grid: Grid):
    counts = np.zeros(grid.n_blocks, np.int64)
    local = {}
    for b in grid.blocks():
        local[b.linear], counts[b.linear] = label_seeds(mask[b.write_roi.to_slices()])
    by_block: dict[int, list[np.ndarray]] = {b: [] for b in range(grid.n_blocks)}
    for lo, hi, ax in face_neighbours(grid):
        lo_plane = np.take(local[lo.linear], -1, axis=ax)
        hi_plane = np.take(local[hi.linear], 0, axis=ax)
        by_block[lo.linear].append(face_pairs(lo_plane, lo.linear, hi_plane, hi.linear))
    pairs = {b: np.concatenate(v) if v else np.zeros((0, 2), np.uint64) for b, v in by_block.items()}
    return counts, local, pairs


def _around(grid: Grid, index, lo, hi):
    out = []
    for b in grid.blocks():
        if all(i + lo <= j <= i + hi for i, j in zip(index, b.index)):
            out.append(b.linear)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_block_by_block_equals_all_at_once(seed) -> None:
    rng = np.random.default_rng(seed)
    shape = (24, 30, 28)
    mask = np.zeros(shape, bool)
    grid_z, grid_y, grid_x = np.ogrid[:24, :30, :28]
    for c in rng.uniform(0, 1, (40, 3)) * shape:  # small touching blobs, many cut by block faces
        r = rng.uniform(1.0, 2.5)
        mask |= (grid_z - c[0]) ** 2 + (grid_y - c[1]) ** 2 + (grid_x - c[2]) ** 2 <= r * r
    grid = Grid(mask.shape, (10, 10, 10), (0, 0, 0))  # objects <= 9 voxels: within two blocks
    counts, local, pairs = _blockwise(mask, grid)
    reference = number_objects(counts, np.concatenate(list(pairs.values())))
    tables = {}
    for b in grid.blocks():
        near = np.concatenate([pairs[c] for c in _around(grid, b.index, -2, 1)])
        nonroot, roots, wide = resolve_roots(near, b.linear, grid.grid_shape)
        assert not len(wide)
        tables[b.linear] = (nonroot, roots)
    nonroots = np.array([len(tables[b][0]) for b in range(grid.n_blocks)])
    offsets = np.concatenate([[0], np.cumsum(counts - nonroots)])
    assert np.array_equal(offsets, reference.offsets)
    for b in grid.blocks():
        numbering = local_numbering(offsets, tables, [b.linear])
        ids = provisional_ids(local[b.linear], b.linear)
        assert np.array_equal(numbering.to_final(ids), reference.to_final(ids))
        final = reference.to_final(ids)
        owners = owner_blocks(final[final > 0], offsets)
        assert all(abs(i - j) <= 1 for o in np.unique(owners) for i, j in zip(grid.block_index(int(o)), b.index))
    assert reference.n_objects == ndi.label(mask)[1]


def test_objects_wider_than_two_blocks_go_to_merge_wide() -> None:
    mask = np.zeros((4, 8, 30), bool)
    mask[1:3, 1:3, 2:28] = True  # a rod across 4 blocks along x
    mask[1:3, 5:7, 9:12] = True  # a small object cut by one face
    grid = Grid(mask.shape, (4, 8, 8), (0, 0, 0))
    counts, local, pairs = _blockwise(mask, grid)
    reference = number_objects(counts, np.concatenate(list(pairs.values())))
    tables, wide_pairs = {}, []
    for b in grid.blocks():
        near = np.concatenate([pairs[c] for c in _around(grid, b.index, -2, 1)])
        nonroot, roots, wide = resolve_roots(near, b.linear, grid.grid_shape)
        assert len(wide) == 1  # the rod's piece in every block, and only it
        own = pairs[b.linear]
        wide_pairs.append(own[np.isin(own[:, 0] & np.uint64(0xFFFFFFFF), wide)])
        tables[b.linear] = (nonroot, roots)
    ids, roots = merge_wide(np.concatenate(wide_pairs))
    assert len(ids) == 3  # the rod: 4 pieces, one root
    for i, r in zip(ids.tolist(), roots.tolist()):
        b = i >> 32
        nonroot = np.concatenate([tables[b][0], [i & 0xFFFFFFFF]]).astype(np.uint32)
        order = np.argsort(nonroot)
        tables[b] = (nonroot[order], np.concatenate([tables[b][1], [r]]).astype(np.uint64)[order])
    offsets = np.concatenate([[0], np.cumsum(counts - [len(tables[b][0]) for b in range(grid.n_blocks)])])
    for b in grid.blocks():
        ids_b = provisional_ids(local[b.linear], b.linear)
        assert np.array_equal(local_numbering(offsets, tables, [b.linear]).to_final(ids_b), reference.to_final(ids_b))
