"""Pyramid factors, block downsampling and pyramid write ROIs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bigseg.errors import InputError
from bigseg.io import create_image, default_factors, downsample
from bigseg.io._pyramid import parse_factors, pyramid_shapes


def test_default_factors_keep_anisotropic_z():
    # z 4 µm vs xy 0.5 µm: z stays until xy reaches 2 µm (z <= 2 * xy), then halves
    assert default_factors((4.0, 0.5, 0.5), 5) == ((1, 2, 2), (1, 2, 2), (2, 2, 2), (2, 2, 2))
    assert default_factors((1.0, 1.0, 1.0), 2) == ((2, 2, 2),)
    assert default_factors((1.0, 1.0, 1.0), 1) == ()


def test_parse_factors_and_shapes():
    assert parse_factors((1, 2, 2), (1, 1, 1), 3) == ((1, 2, 2), (1, 2, 2))
    assert parse_factors([(1, 2, 2), (2, 2, 2)], (1, 1, 1), 3) == ((1, 2, 2), (2, 2, 2))
    with pytest.raises(InputError, match="one per level after the first"):
        parse_factors([(1, 2, 2)], (1, 1, 1), 3)
    with pytest.raises(InputError, match="3 ints >= 1"):
        parse_factors((0, 2, 2), (1, 1, 1), 2)
    assert pyramid_shapes((5, 9, 1), ((2, 2, 2), (2, 2, 2))) == ((5, 9, 1), (3, 5, 1), (2, 3, 1))


def test_mean_averages_partial_edge_boxes():
    data = np.arange(5, dtype=np.uint16).reshape(1, 1, 5)  # [0 1 2 3 4]
    out = downsample(data, (1, 1, 2), "mean")
    np.testing.assert_array_equal(out, [[[0, 2, 4]]])  # 0.5 -> 0 (round half even), 2.5 -> 2, 4
    floats = downsample(data.astype(np.float32), (1, 1, 2), "mean")
    np.testing.assert_allclose(floats, [[[0.5, 2.5, 4.0]]])
    assert floats.dtype == np.float32


def test_nearest_and_mode_on_labels():
    labels = np.array([[[1, 1, 2, 3], [1, 5, 3, 3]]], dtype=np.uint32)  # (1, 2, 4)
    np.testing.assert_array_equal(downsample(labels, (1, 2, 2), "nearest"), [[[1, 2]]])
    # boxes {1,1,1,5} -> 1 and {2,3,3,3} -> 3
    np.testing.assert_array_equal(downsample(labels, (1, 2, 2), "mode"), [[[1, 3]]])


def test_channel_axis_is_not_downscaled():
    data = np.ones((3, 4, 4, 4), np.float32)
    assert downsample(data, (2, 2, 2), "mean").shape == (3, 2, 2, 2)


def test_unknown_method_raises():
    with pytest.raises(InputError, match="'mean', 'nearest' or 'mode', got 'median'"):
        downsample(np.zeros((2, 2, 2)), (2, 2, 2), "median")  # type: ignore[arg-type]


@settings(max_examples=15, deadline=None)
@given(
    shape=st.tuples(*[st.integers(1, 40)] * 3),
    chunk=st.tuples(*[st.integers(1, 12)] * 3),
    sharded=st.booleans(),
)
def test_pyramid_rois_tile_each_level_exactly(tmp_path_factory, shape, chunk, sharded):
    shard = tuple(2 * c for c in chunk) if sharded else None
    img = create_image(
        tmp_path_factory.mktemp("p") / "p.zarr", shape=shape, dtype="uint8", voxel_size=(1, 1, 1),
        chunk_shape=chunk, shard_shape=shard, n_levels=3,
    )
    for level in (1, 2):
        cover = np.zeros(img.spatial_shape(level), np.int32)
        for roi in img.pyramid_rois(level):
            img._check_aligned(roi, level)  # every ROI is a legal write
            cover[roi.to_slices()] += 1
        assert (cover == 1).all()
