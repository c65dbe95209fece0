"""Contingency tables: block-wise accumulation equals the whole-volume table, exactly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bigseg.errors import InputError
from bigseg.evaluate import Contingency, contingency_block
from bigseg.tiling import Grid, Halo, Roi


def _blockwise(pred, gt, block_shape, mask=None):
    grid = Grid(gt.shape, block_shape, Halo.of(0, gt.ndim))
    tables = []
    for block in grid.blocks():
        s = block.write_roi.to_slices()
        tables.append(contingency_block(
            pred[s], gt[s], None if mask is None else mask[s], roi=block.write_roi, volume_shape=gt.shape
        ))
    return Contingency.combine(tables)


def test_small_table_by_hand():
    # pred 0 0 1 1 2      pairs (p, g): (0,0)x1 (0,5)x1 (1,5)x2 (2,0)x1
    # gt   0 5 5 5 0
    pred = np.array([[[0, 0, 1, 1, 2]]], np.uint8)
    gt = np.array([[[0, 5, 5, 5, 0]]], np.int32)
    t = contingency_block(pred, gt)
    assert t.pred_ids.tolist() == [0, 0, 1, 2]
    assert t.gt_ids.tolist() == [0, 5, 5, 0]
    assert t.counts.tolist() == [1, 1, 2, 1]
    assert t.pred_labels.tolist() == [0, 1, 2] and t.pred_sizes.tolist() == [2, 2, 1]
    assert t.gt_labels.tolist() == [0, 5] and t.gt_sizes.tolist() == [2, 3]
    assert t.n_voxels == 5
    # A (1, 1, 5) volume: every voxel is on an outer face.
    assert t.pred_border.tolist() == [1, 2] and t.gt_border.tolist() == [5]


def test_border_labels_only_on_outer_faces():
    gt = np.zeros((6, 6, 6), np.uint16)
    gt[0, 2, 2] = 1  # on the z = 0 face
    gt[2:4, 2:4, 2:4] = 2  # inside
    gt[3, 3, 5] = 3  # on the x = 5 face
    t = _blockwise(gt, gt, (2, 3, 4))
    assert t.gt_border.tolist() == [1, 3]
    assert t.pred_border.tolist() == [1, 3]


def test_mask_removes_voxels_from_both():
    pred = np.arange(8, dtype=np.uint8).reshape(2, 2, 2)
    gt = np.ones((2, 2, 2), np.uint8)
    mask = np.zeros((2, 2, 2), bool)
    mask[0] = True
    t = contingency_block(pred, gt, mask)
    assert t.n_voxels == 4
    assert t.pred_labels.tolist() == [0, 1, 2, 3]
    assert t.gt_sizes.tolist() == [4]


def test_add_and_combine_agree_and_empty_is_neutral():
    rng = np.random.default_rng(1)
    a = contingency_block(rng.integers(0, 4, (3, 4, 5)), rng.integers(0, 3, (3, 4, 5)))
    b = contingency_block(rng.integers(0, 4, (3, 4, 5)), rng.integers(0, 3, (3, 4, 5)))
    assert a + b == Contingency.combine([b, a])
    assert a + Contingency.empty() == a
    assert Contingency.combine([]) == Contingency.empty()
    assert (a + b).n_voxels == 120


def test_large_labels_take_the_general_path():
    big = np.uint64(2**40)
    pred = np.array([[[big, big, 1]]], np.uint64)
    gt = np.array([[[3, 3, 3]]], np.uint64)
    t = contingency_block(pred, gt)
    assert t.pred_ids.tolist() == [1, int(big)] and t.counts.tolist() == [1, 2]


@settings(max_examples=40, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 9), st.integers(1, 9), st.integers(1, 9)),
    block=st.tuples(st.integers(1, 5), st.integers(1, 5), st.integers(1, 5)),
    n_labels=st.integers(1, 6),
    seed=st.integers(0, 2**16),
    masked=st.booleans(),
)
def test_blockwise_equals_whole(shape, block, n_labels, seed, masked):
    rng = np.random.default_rng(seed)
    pred = rng.integers(0, n_labels + 1, shape).astype(np.uint32)
    gt = rng.integers(0, n_labels, shape).astype(np.int16)
    mask = rng.random(shape) < 0.7 if masked else None
    assert _blockwise(pred, gt, block, mask) == contingency_block(pred, gt, mask)


def test_bad_blocks_are_refused():
    a = np.zeros((2, 2, 2), np.uint8)
    with pytest.raises(InputError, match=r"`pred` \(shape \(2, 2, 2\)\) must have the same shape as `gt` \(shape \(2, 2\)\)"):
        contingency_block(a, a[0])
    with pytest.raises(InputError, match="integer labels, got dtype float32"):
        contingency_block(a.astype(np.float32), a)
    with pytest.raises(InputError, match="labels >= 0.*got minimum -1"):
        contingency_block(a, a.astype(np.int8) - 1)
    with pytest.raises(InputError, match="`volume_shape` must be given"):
        contingency_block(a, a, roi=Roi((0, 0, 0), (2, 2, 2)))
    with pytest.raises(InputError, match=r"`mask` \(shape \(2, 2\)\)"):
        contingency_block(a, a, a[0])
    with pytest.raises(InputError, match="must each sum to n_voxels=3"):
        Contingency([1], [1], [2], [1], [2], [1], [2], 3)
