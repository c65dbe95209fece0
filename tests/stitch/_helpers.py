"""Shared checks for the stitch tests."""

from __future__ import annotations

import numpy as np


def assert_same_up_to_renaming(got: np.ndarray, want: np.ndarray) -> None:
    """Assert two label volumes are one bijection apart (same background, one-to-one IDs).

    Via the contingency of nonzero voxels: the number of distinct (got, want)
    pairs must equal the number of distinct IDs on each side.
    """
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_array_equal(got == 0, want == 0)
    fg = want != 0
    pairs = np.unique(np.stack([got[fg].astype(np.uint64), want[fg].astype(np.uint64)]), axis=1)
    n_got, n_want = len(np.unique(got[fg])), len(np.unique(want[fg]))
    assert pairs.shape[1] == n_got == n_want, f"{pairs.shape[1]} pairs for {n_got} vs {n_want} IDs"


def ball(shape: tuple[int, int, int], centre: tuple[float, float, float], radius: float) -> np.ndarray:
    """Boolean ball of ``radius`` voxels around ``centre`` (voxel coordinates)."""
    zz, yy, xx = np.indices(shape, dtype=float)
    return (zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2 <= radius**2
