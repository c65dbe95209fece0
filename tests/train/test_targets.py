"""BCD targets from instance labels (known answers drawn in comments)."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.segmentation import find_boundaries

from bigseg.errors import InputError
from bigseg.train import DISTANCE_ALPHA, DISTANCE_BETA, bcd_targets
from bigseg.train._targets import _thick_boundaries


def _two_touching_boxes() -> np.ndarray:
    #  x:  0 ... 5 | 6 ... 11      two boxes share the face between x=5 and x=6
    lab = np.zeros((12, 12, 20), np.uint32)
    lab[2:10, 2:10, 2:6] = 1
    lab[2:10, 2:10, 6:10] = 2
    return lab


def test_channels_and_ranges() -> None:
    t = bcd_targets(_two_touching_boxes())
    assert t.shape == (3, 12, 12, 20) and t.dtype == np.float32
    fg, contour, dist = t
    np.testing.assert_array_equal(fg, _two_touching_boxes() > 0)
    assert set(np.unique(contour)) == {0.0, 1.0}
    assert np.all(dist[fg > 0] > 0) and np.all(dist[fg == 0] <= 0)
    assert dist.max() < 1 and dist.min() >= -1


def test_touching_nuclei_are_separated() -> None:
    lab = _two_touching_boxes()
    _, contour, dist = bcd_targets(lab)
    # the shared face is a contour on both sides ...
    assert contour[5, 5, 5] == 1 and contour[5, 5, 6] == 1
    assert contour[5, 5, 3] == 0
    # ... and a valley of the distance map: 1 voxel from the other label
    assert dist[5, 5, 5] == pytest.approx(np.tanh(1 / DISTANCE_ALPHA))
    assert dist[5, 5, 4] == pytest.approx(np.tanh(2 / DISTANCE_ALPHA))


def test_distance_of_a_ball_follows_alpha_and_beta() -> None:
    z, y, x = np.mgrid[:41, :41, :41]
    lab = ((z - 20) ** 2 + (y - 20) ** 2 + (x - 20) ** 2 <= 10**2).astype(np.uint32)
    dist = bcd_targets(lab)[2]
    # nearest outside voxel of the centre: offset (10, 1, 0), sqrt(101) voxels away
    assert dist[20, 20, 20] == pytest.approx(np.tanh(np.sqrt(101) / DISTANCE_ALPHA), abs=1e-6)
    assert dist[20, 20, 0] == pytest.approx(-np.tanh(10 / DISTANCE_BETA), abs=1e-6)  # 10 voxels to the ball


def test_thick_boundaries_match_skimage() -> None:
    lab = np.random.default_rng(0).integers(0, 4, (10, 11, 12)).astype(np.uint32)
    np.testing.assert_array_equal(_thick_boundaries(lab), find_boundaries(lab, connectivity=1, mode="thick"))


def test_empty_and_full() -> None:
    empty = bcd_targets(np.zeros((4, 5, 6), np.uint16))
    assert empty[0].max() == 0 and empty[1].max() == 0 and np.all(empty[2] == -1)
    full = bcd_targets(np.ones((4, 5, 6), np.uint16))
    assert full[0].min() == 1 and np.all(full[2] > 0)


def test_bad_input() -> None:
    with pytest.raises(InputError, match=r"must be a \(Z, Y, X\) volume, got shape \(4, 4\)"):
        bcd_targets(np.zeros((4, 4), np.uint32))
    with pytest.raises(InputError, match="`alpha` and `beta` must be > 0, got alpha=0"):
        bcd_targets(np.zeros((4, 4, 4), np.uint32), alpha=0)
    assert DISTANCE_BETA == 50.0
