from __future__ import annotations

import numpy as np
import pytest

from bigseg.errors import InputError
from bigseg.measure import block_stats, combine_stats, object_table
from bigseg.tiling import Grid, Halo, Roi


def test_blockwise_stats_equal_whole_volume_stats():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 6, (20, 18, 22)).astype(np.uint32)
    image = rng.normal(100, 10, labels.shape)
    whole = block_stats(labels, image, Roi((0, 0, 0), labels.shape), labels.shape)
    grid = Grid(labels.shape, (7, 9, 8), Halo((0, 0, 0)))
    parts = [
        block_stats(labels[b.write_roi.to_slices()], image[b.write_roi.to_slices()], b.write_roi, labels.shape)
        for b in grid.blocks()
    ]
    combined = combine_stats(parts)
    for field in ("ids", "count", "lo", "hi", "touches_border", "first"):
        np.testing.assert_array_equal(getattr(combined, field), getattr(whole, field))
    flat = labels.ravel()
    assert whole.first.tolist() == [int(np.argmax(flat == i)) for i in whole.ids]
    for field in ("sum_z", "sum_y", "sum_x", "sum_intensity", "max_intensity"):
        np.testing.assert_allclose(getattr(combined, field), getattr(whole, field), rtol=1e-12)


def test_object_table_units():
    labels = np.zeros((4, 4, 4), np.uint32)
    labels[1:3, 1:3, 1:4] = 9
    stats = block_stats(labels, labels.astype(float), Roi((0, 0, 0), (4, 4, 4)), (4, 4, 4))
    row = object_table(stats, (2.0, 0.5, 0.5)).to_pylist()[0]
    assert row["id"] == 9 and row["voxel_count"] == 12
    assert row["volume_um3"] == pytest.approx(12 * 0.5)
    assert (row["centroid_z_um"], row["centroid_y_um"], row["centroid_x_um"]) == pytest.approx((3.0, 0.75, 1.0))
    assert (row["bbox_x_min"], row["bbox_x_max"]) == (1, 4)
    assert row["touches_border"] is True  # x reaches the last plane
    assert row["mean_intensity"] == 9.0


def test_shape_mismatch():
    with pytest.raises(InputError, match="same shape"):
        block_stats(np.zeros((2, 2, 2), np.uint32), np.zeros((2, 2, 3)), Roi((0, 0, 0), (2, 2, 2)), (2, 2, 2))


def test_elongation_of_a_ball_and_of_a_rod_across_blocks():
    from skimage.draw import ellipsoid

    from bigseg.tiling import Roi

    labels = np.zeros((24, 40, 40), np.uint32)
    labels[2:23, 2:23, 2:23] = ellipsoid(10, 10, 10)[1:-1, 1:-1, 1:-1] * 1
    rod = ellipsoid(3, 3, 15)[1:-1, 1:-1, 1:-1]
    labels[5:12, 26:33, 4:35][rod] = 2
    image = np.ones(labels.shape)
    # Two blocks split along x: partial moments combine into whole-object moments.
    parts = [block_stats(labels[..., s], image[..., s], Roi((0, 0, s.start), (24, 40, s.stop - s.start)), labels.shape)
             for s in (slice(0, 20), slice(20, 40))]
    whole = object_table(block_stats(labels, image, Roi((0, 0, 0), labels.shape), labels.shape), (1.0, 1.0, 1.0))
    split = object_table(combine_stats(parts), (1.0, 1.0, 1.0))
    np.testing.assert_allclose(split["elongation"].to_numpy(), whole["elongation"].to_numpy(), rtol=1e-9)
    ball, long = whole["elongation"].to_numpy()
    assert 1.0 <= ball < 1.05  # a sphere, up to voxelisation
    assert 4.0 < long < 5.5  # semi-axes 15 vs 3: ratio 5, a little less once voxels count as boxes
    # Anisotropic voxels: the same voxels 3x longer in z make the ball an ellipsoid 3:1.
    aniso = object_table(block_stats(labels, image, Roi((0, 0, 0), labels.shape), labels.shape), (3.0, 1.0, 1.0))
    assert 2.8 < aniso["elongation"].to_numpy()[0] < 3.1
