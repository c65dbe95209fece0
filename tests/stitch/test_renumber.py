from __future__ import annotations

import pickle

import numpy as np
import pytest

from bigseg.errors import InputError
from bigseg.stitch import Renumbering


def test_from_sizes_drops_small_and_renumbers_by_old_id() -> None:
    # Unsorted input; 7 and 3 are too small (< 10 voxels).
    ren = Renumbering.from_sizes(np.array([9, 3, 7, 1, 4], np.uint32), np.array([10, 9, 2, 50, 10]), min_size=10)
    assert ren.old_ids.tolist() == [1, 3, 4, 7, 9]
    assert ren.new_ids.tolist() == [1, 0, 2, 0, 3]
    assert ren.n_kept == 3


def test_from_sizes_numbers_by_a_given_order() -> None:
    # Keys are each object's first voxel: the new IDs follow them, whatever the old IDs were.
    ren = Renumbering.from_sizes(np.array([9, 3, 7, 1, 4], np.uint32), np.array([10, 9, 20, 50, 10]), min_size=10,
                                 order=np.array([5, 0, 40, 30, 7]))
    assert ren.old_ids.tolist() == [1, 3, 4, 7, 9]
    assert ren.new_ids.tolist() == [3, 0, 2, 4, 1]
    with pytest.raises(InputError, match=r"`order` \(shape \(2,\)\) must hold one unique key per ID"):
        Renumbering.from_sizes(np.array([1, 2], np.uint32), np.array([1, 1]), min_size=0, order=np.array([3, 3]))


def test_apply_and_subset() -> None:
    ren = Renumbering.from_sizes(np.arange(1, 7, dtype=np.uint32), np.array([5, 1, 5, 1, 5, 5]), min_size=2)
    labels = np.array([[[0, 1, 2], [3, 3, 6]]], np.uint32)
    sub = ren.subset(np.unique(labels))
    assert sub.old_ids.tolist() == [1, 2, 3, 6]
    got = sub.apply(labels)
    assert got.dtype == np.uint32
    assert got.tolist() == [[[0, 1, 0], [2, 2, 4]]]
    np.testing.assert_array_equal(ren.apply(labels), got)
    assert labels.tolist() == [[[0, 1, 2], [3, 3, 6]]]  # input untouched
    with pytest.raises(InputError, match=r"label ID\(s\) \[5\] are not in this renumbering \(4 IDs\)"):
        sub.apply(np.array([[[5, 1]]], np.uint32))
    with pytest.raises(InputError, match=r"label ID\(s\) \[8\] are not in this renumbering"):
        ren.subset([1, 8])


def test_min_size_zero_keeps_everything_and_pickles() -> None:
    ren = Renumbering.from_sizes(np.array([2, 5], np.uint32), np.array([0, 1]), min_size=0)
    assert ren.new_ids.tolist() == [1, 2]
    back = pickle.loads(pickle.dumps(ren))
    np.testing.assert_array_equal(back.new_ids, ren.new_ids)


def test_bad_input_raises() -> None:
    with pytest.raises(InputError, match=r"`ids` must be unique; \[4\] repeat"):
        Renumbering.from_sizes(np.array([4, 4], np.uint32), np.array([1, 1]), min_size=1)
    with pytest.raises(InputError, match=r"`ids` must be uint32 object IDs >= 1"):
        Renumbering.from_sizes(np.array([0, 4], np.uint32), np.array([1, 1]), min_size=1)
    with pytest.raises(InputError, match=r"`min_size` must be an int >= 0 \(voxels\), got -1"):
        Renumbering.from_sizes(np.array([4], np.uint32), np.array([1]), min_size=-1)
    with pytest.raises(InputError, match=r"`ids` \(shape \(2,\)\) and `sizes` \(shape \(3,\)\)"):
        Renumbering.from_sizes(np.array([1, 2], np.uint32), np.array([1, 1, 1]), min_size=1)
