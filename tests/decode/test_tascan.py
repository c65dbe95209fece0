"""TASCAN: touching areas, order-free merging, and touching nuclei kept apart by the contour."""

from __future__ import annotations

import numpy as np
import pytest

from bigseg.decode import TascanParams, merge_supervoxels, tascan_block, touching_areas
from bigseg.errors import InputError
from bigseg.testing import same_partition
from bigseg.train import bcd_targets


def _balls(shape, centres, radius):
    zz, yy, xx = np.indices(shape)
    labels = np.zeros(shape, np.uint32)
    for i, (z, y, x) in enumerate(centres, start=1):
        labels[((zz - z) ** 2 + (yy - y) ** 2 + (xx - x) ** 2 <= radius**2) & (labels == 0)] = i
    return labels


def test_touching_areas_count_shell_voxels_once() -> None:
    # 1 1 2 2 3 in a row: label 1's shell holds one voxel of 2; 2's holds one of 1 and one of 3.
    labels = np.array([[[1, 1, 2, 2, 3]]], np.uint32)
    pairs, counts, surface = touching_areas(labels)
    got = {tuple(p): c for p, c in zip(pairs.tolist(), counts.tolist())}
    assert got == {(1, 2): 1, (2, 1): 1, (2, 3): 1, (3, 2): 1}
    assert surface.tolist() == [0, 1, 2, 1]


def _n(labels):
    return len(np.unique(labels[labels > 0]))


def test_merge_rules_area_and_fraction() -> None:
    # Two 10×10×5 slabs face to face: touching area 100 >= 30 merges them.
    slabs = np.zeros((12, 12, 12), np.uint32)
    slabs[1:11, 1:11, 1:6], slabs[1:11, 1:11, 6:11] = 1, 2
    assert _n(merge_supervoxels(slabs)) == 1
    # A 2-voxel contact is below the area rule; the two blobs' surfaces are all each other, so the
    # fraction rule (1.0 >= 0.51) merges them ...
    pair = np.zeros((1, 2, 4), np.uint32)
    pair[..., :2], pair[..., 2:] = 1, 2
    assert _n(merge_supervoxels(pair)) == 1
    # ... but not a middle block whose surface is split 2/2 between two others (0.5 < 0.51),
    # when the ends' fraction does not count either: a star of four arms around a centre.
    star = np.zeros((1, 5, 5), np.uint32)
    star[0, 2, 2] = 5
    star[0, 1, 2], star[0, 3, 2], star[0, 2, 1], star[0, 2, 3] = 1, 2, 3, 4
    # The centre's surface is 4, one voxel per arm: 0.25 < 0.51; each arm's surface is the centre: 1.0.
    assert _n(merge_supervoxels(star)) == 1
    assert _n(merge_supervoxels(star, TascanParams(min_touching_area=30, min_touching_fraction=1.0))) == 1
    strict = merge_supervoxels(star[..., :2, :2] * 0 + np.array([[[1, 0], [0, 2]]], np.uint32))
    assert _n(strict) == 2  # diagonal neighbours do not touch through a face: never merged


def test_merging_does_not_depend_on_label_order() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 6, (6, 7, 8)).astype(np.uint32)
    perm = np.concatenate([[0], rng.permutation(np.arange(1, 6))]).astype(np.uint32)
    params = TascanParams(min_touching_area=12, min_touching_fraction=0.3)
    assert same_partition(merge_supervoxels(perm[labels], params), merge_supervoxels(labels, params))


def test_two_touching_nuclei_stay_apart_and_one_nucleus_stays_whole() -> None:
    labels = _balls((24, 24, 40), [(12, 12, 13), (12, 12, 26), (12, 12, 34)], 6.5)
    maps = bcd_targets(labels)
    out = tascan_block(maps)
    assert same_partition(out, labels)  # three touching nuclei, three objects, nothing split


def test_bad_params_are_refused() -> None:
    with pytest.raises(InputError, match=r"min_touching_fraction must be in \(0, 1\], got 1.5"):
        TascanParams(min_touching_fraction=1.5)
    with pytest.raises(InputError, match=r"`maps` must have shape \(3, Z, Y, X\)"):
        tascan_block(np.zeros((8, 8, 8), np.float32))
