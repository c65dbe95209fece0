"""Seeded path: blockwise labelling == scipy.ndimage.label (6-connectivity) up to renaming."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from bigseg.errors import InputError
from bigseg.stitch import face_pairs, label_blockwise, label_seeds
from bigseg.tiling import Grid

from ._helpers import assert_same_up_to_renaming

SHAPE = (24, 21, 26)
BLOCKINGS = [(8, 8, 8), (5, 7, 11), SHAPE]


def _check(mask: np.ndarray, block_shape: tuple[int, ...]) -> int:
    labels, n, _ = label_blockwise(mask, Grid(mask.shape, block_shape, (0, 0, 0)))
    want, n_want = ndi.label(mask)  # default structure: 6-connectivity
    assert labels.dtype == np.uint32
    assert n == n_want
    assert set(np.unique(labels[labels != 0]).tolist()) == set(range(1, n + 1))  # consecutive 1..N
    assert_same_up_to_renaming(labels, want)
    return n


@pytest.mark.parametrize("block_shape", BLOCKINGS)
@pytest.mark.parametrize("density", [0.1, 0.3, 0.5, 0.7])
def test_random_masks_match_scipy(density: float, block_shape: tuple[int, ...]) -> None:
    # 0.3 is near the 6-conn percolation threshold: many objects cross many faces.
    mask = np.random.default_rng(int(density * 10)).random(SHAPE) < density
    assert _check(mask, block_shape) > 0


@pytest.mark.parametrize("block_shape", BLOCKINGS)
def test_smooth_blobs_match_scipy(block_shape: tuple[int, ...]) -> None:
    noise = ndi.gaussian_filter(np.random.default_rng(7).standard_normal(SHAPE), 2)
    assert _check(noise > 0.1, block_shape) > 1


@pytest.mark.parametrize("fill", [False, True])
def test_empty_and_full(fill: bool) -> None:
    n = _check(np.full(SHAPE, fill), (5, 7, 11))
    assert n == int(fill)


def test_snake_across_many_blocks_is_one_object() -> None:
    # A boustrophedon path through every row of every z-plane: one object in all 5*3*3 blocks.
    mask = np.zeros((10, 9, 12), bool)
    for z in range(0, 10, 2):
        mask[z, ::2, :] = True
        for y in range(0, 8, 2):
            mask[z, y + 1, 11 if (y // 2) % 2 == 0 else 0] = True
        if z + 1 < 10:
            mask[z + 1, 8, 11 if z % 4 == 0 else 0] = True
    labels, n, numbering = label_blockwise(mask, Grid(mask.shape, (2, 3, 4), (0, 0, 0)))
    assert n == 1 == ndi.label(mask)[1]
    np.testing.assert_array_equal(labels, mask.astype(np.uint32))
    assert sum(numbering.owned_count(b) for b in range(numbering.n_blocks)) == 1


@pytest.mark.parametrize(
    "second",
    [(4, 4, 4), (3, 4, 4), (4, 3, 4), (4, 4, 3)],
    ids=["corner", "edge-x", "edge-y", "edge-z"],
)
def test_corner_or_edge_contact_does_not_connect(second: tuple[int, int, int]) -> None:
    # Block boundary at 4 on every axis; voxel (3, 3, 3) touches `second` only by a corner or an edge.
    mask = np.zeros((8, 8, 8), bool)
    mask[3, 3, 3] = mask[second] = True
    assert ndi.label(mask)[1] == 2
    labels, n, _ = label_blockwise(mask, Grid(mask.shape, (4, 4, 4), (0, 0, 0)))
    assert n == 2
    assert labels[3, 3, 3] != labels[second]


@settings(max_examples=25, deadline=None)
@given(
    mask=arrays(bool, st.tuples(st.integers(1, 9), st.integers(1, 9), st.integers(1, 9))),
    block=st.tuples(st.integers(1, 5), st.integers(1, 5), st.integers(1, 5)),
)
def test_property_blockwise_equals_whole(mask: np.ndarray, block: tuple[int, int, int]) -> None:
    _check(mask, block)


def test_face_pairs_unique_and_provisional() -> None:
    lo = np.array([[1, 1, 0], [2, 0, 3]], np.uint32)
    hi = np.array([[4, 4, 4], [5, 5, 0]], np.uint32)
    got = face_pairs(lo, 7, hi, 8)
    assert got.dtype == np.uint64
    assert got.tolist() == [[(7 << 32) | 1, (8 << 32) | 4], [(7 << 32) | 2, (8 << 32) | 5]]


def test_face_pairs_shape_mismatch_raises() -> None:
    with pytest.raises(InputError, match=r"`lo_plane` \(shape \(2, 3\)\) must have the same shape as `hi_plane`"):
        face_pairs(np.zeros((2, 3), np.uint32), 0, np.zeros((3, 2), np.uint32), 1)


def test_label_seeds_counts_and_rejects_2d() -> None:
    mask = np.zeros((3, 3, 3), bool)
    mask[0, 0, 0] = mask[2, 2, 2] = True
    labels, n = label_seeds(mask)
    assert n == 2 and labels.dtype == np.uint32 and labels.max() == 2
    assert label_seeds(np.zeros((2, 2, 2), bool))[1] == 0
    with pytest.raises(InputError, match=r"must be a \(Z, Y, X\) array, got shape \(3, 3\)"):
        label_seeds(np.zeros((3, 3), bool))


def test_mask_shape_must_match_grid() -> None:
    with pytest.raises(InputError, match=r"must have the grid's volume shape \(4, 4, 4\)"):
        label_blockwise(np.zeros((4, 4, 5), bool), Grid((4, 4, 4), (2, 2, 2), (0, 0, 0)))
