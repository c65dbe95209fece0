"""Overlap path: blocks label their read ROIs independently; mutual-best IoU on shared regions joins them."""

from __future__ import annotations

import fastremap
import numpy as np
import pytest
import scipy.ndimage as ndi

from bigseg.errors import InputError
from bigseg.stitch import (
    face_neighbours,
    number_objects,
    iou_pairs,
    provisional_ids,
    shared_read_roi,
)
from bigseg.tiling import Grid

from ._helpers import assert_same_up_to_renaming, ball

# Two blocks along x: write x 0..16 | 16..32, read x 0..20 | 12..32, shared region x 12..20.
#
#   x:  0          12   16   20          32
#       [ read 0 ...........)
#                  [ read 1 .............)
#       [ write 0      )[ write 1        )
TWO = Grid((12, 12, 32), (12, 12, 16), (0, 0, 4))


def decode(gt: np.ndarray, grid: Grid) -> dict[int, np.ndarray]:
    """A consistent fake decoder: each block's read ROI, ground-truth objects renumbered 1..n locally."""
    out = {}
    for blk in grid.blocks():
        out[blk.linear] = fastremap.renumber(gt[blk.read_roi.to_slices()], in_place=False)[0].astype(np.uint32)
    return out


def stitch(block_labels: dict[int, np.ndarray], grid: Grid, min_iou: float = 0.5) -> np.ndarray:
    """The pipeline loop of the iou stitch path, serially: pairs on every face neighbour, number, write the write ROIs."""
    prov = {b: provisional_ids(lab, b) for b, lab in block_labels.items()}
    counts = np.array([int(block_labels[b].max()) for b in range(grid.n_blocks)])
    pairs = [np.zeros((0, 2), np.uint64)]
    for lo, hi, _ in face_neighbours(grid):
        roi = shared_read_roi(lo, hi)
        assert roi is not None
        a, b = prov[lo.linear][roi.relative_to(lo.read_roi)], prov[hi.linear][roi.relative_to(hi.read_roi)]
        pairs.append(iou_pairs(a, b, min_iou=min_iou))
    numbering = number_objects(counts, np.concatenate(pairs))
    out = np.zeros(grid.volume_shape, np.uint32)
    for blk in grid.blocks():
        out[blk.write_roi.to_slices()] = numbering.subset([blk.linear]).to_final(prov[blk.linear][blk.write_in_read])
    return out


def test_ball_cut_by_face_is_merged() -> None:
    gt = ball(TWO.volume_shape, (6, 6, 16), 4.5).astype(np.uint32)
    got = stitch(decode(gt, TWO), TWO)
    np.testing.assert_array_equal(got, gt)  # one object, ID 1


def test_balls_touching_at_face_stay_apart() -> None:
    gt = ball(TWO.volume_shape, (6, 6, 11.5), 4.4).astype(np.uint32)
    gt[ball(TWO.volume_shape, (6, 6, 19.5), 4.4)] = 2
    assert (gt[:, :, 15] == 1).any() and ((gt[:, :, 15] == 1) & (gt[:, :, 16] == 2)).any()  # they touch
    assert ndi.label(gt > 0)[1] == 1  # so a mask-based (contact) join would make them one
    got = stitch(decode(gt, TWO), TWO)
    assert_same_up_to_renaming(got, gt)
    assert len(np.unique(got)) == 3


@pytest.mark.parametrize(("min_iou", "n_expected"), [(0.5, 2), (0.95, 3)])
def test_block_splitting_an_object_keeps_best_pair_only(min_iou: float, n_expected: int) -> None:
    # Ball x 13..23. Block 0 sees x 13..19 of it and splits it at x = 14|15 into a small part
    # A2 (x 13..14, ~30 voxels) and a large part A1 (x 15..19, ~340); block 1 has the ball whole (B).
    # On the shared region, IoU(A1, B) ~ 0.92 and IoU(A2, B) ~ 0.08: B's best is A1, so only (A1, B) merges.
    # Result with min_iou 0.5: A2's voxels in write ROI 0 (x 13..14) are their own object; the rest is one.
    # With min_iou 0.95 nothing merges: x 13..14, x 15 and x 16..23 are three objects.
    gt = ball(TWO.volume_shape, (6, 6, 18), 5).astype(np.uint32)
    labels = decode(gt, TWO)
    split = labels[0].copy()
    split[:, :, 15:] *= 2  # read ROI 0 starts at x 0: A2 keeps local 1, A1 becomes local 2
    labels[0] = split
    got = stitch(labels, TWO, min_iou=min_iou)
    want = gt.copy()
    want[:, :, :15] *= 2
    if n_expected == 3:
        want[:, :, 15] *= 3
    assert_same_up_to_renaming(got, want)
    assert len(np.unique(got)) - 1 == n_expected


def test_random_balls_on_a_3d_grid_match_ground_truth() -> None:
    rng = np.random.default_rng(3)
    grid = Grid((28, 30, 33), (12, 14, 16), (4, 4, 4))
    gt = np.zeros(grid.volume_shape, np.uint32)
    n = 0
    for _ in range(200):  # non-overlapping balls, so every object is connected
        b = ball(gt.shape, tuple(rng.uniform(0, s) for s in gt.shape), rng.uniform(2, 4.5))
        if b.any() and not gt[b].any():
            n += 1
            gt[b] = n
    assert n > 20
    assert_same_up_to_renaming(stitch(decode(gt, grid), grid), gt)


def test_contact_without_overlap_never_pairs() -> None:
    a = np.zeros((4, 4, 8), np.uint64)
    b = np.zeros_like(a)
    a[:, :, :4] = 11
    b[:, :, 4:] = 22
    assert iou_pairs(a, b, min_iou=0.0).shape == (0, 2)


def test_iou_pairs_iou_uses_region_voxels_and_mutual_best() -> None:
    a = np.zeros((1, 1, 10), np.uint64)
    b = np.zeros_like(a)
    a[..., 0:6] = 1  # a1: 6 voxels
    a[..., 6:10] = 2  # a2: 4 voxels
    b[..., 2:10] = 5  # b5: 8 voxels; IoU(a1, b5) = 4 / 10, IoU(a2, b5) = 4 / 8
    assert iou_pairs(a, b, min_iou=0.5).tolist() == [[2, 5]]
    assert iou_pairs(a, b, min_iou=0.51).tolist() == []


def test_iou_pairs_rejects_bad_input() -> None:
    with pytest.raises(InputError, match=r"`a` \(shape \(2, 2, 2\)\) must have the same shape as `b`"):
        iou_pairs(np.zeros((2, 2, 2), np.uint64), np.zeros((2, 2, 3), np.uint64))
    with pytest.raises(InputError, match=r"`min_iou` must be in \[0, 1\], got 1.5"):
        iou_pairs(np.zeros((2, 2, 2), np.uint64), np.zeros((2, 2, 2), np.uint64), min_iou=1.5)


def test_shared_read_roi() -> None:
    grid = Grid((20, 20, 20), (10, 10, 10), (2, 2, 2))
    roi = shared_read_roi(grid.block((0, 0, 0)), grid.block((0, 1, 0)))
    assert roi is not None and roi.offset == (0, 8, 0) and roi.shape == (12, 4, 12)
    assert shared_read_roi(grid.block((0, 0, 0)), grid.block((0, 1, 1))) is None  # edge neighbours
    assert shared_read_roi(grid.block((0, 0, 0)), grid.block((0, 0, 0))) is None
    no_halo = Grid((20, 20, 20), (10, 10, 10), (0, 0, 0))
    with pytest.raises(InputError, match="the iou stitch path needs a halo of at least 1 voxel"):
        shared_read_roi(no_halo.block((0, 0, 0)), no_halo.block((1, 0, 0)))
