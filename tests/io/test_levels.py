"""Reading boxes in µm from resolution levels: bounded reads, whole-box means, crops inside the image."""

from __future__ import annotations

import numpy as np
import pytest

from bigseg.io import Levels, array_levels, coarse_view, crop_box, crop_centres, open_volume, pick_level, read_box, volume_levels
from bigseg.testing import write_image


def test_read_box_averages_whole_boxes_at_the_requested_voxel():
    levels = array_levels(np.arange(8 * 8 * 8, dtype=np.float32).reshape(8, 8, 8), (2.0, 0.5, 0.5))
    # A 2 µm model voxel: z stays at 2 µm, y and x are averaged by 4.
    block, voxel = read_box(levels, (0.0, 0.0, 0.0), (16.0, 4.0, 4.0), (2.0, 2.0, 2.0))
    assert block.shape == (8, 2, 2) and voxel == (2.0, 2.0, 2.0)
    assert block[0, 0, 0] == pytest.approx(np.arange(512).reshape(8, 8, 8)[0, :4, :4].mean())
    # A remainder at the far end is dropped: 5 voxels by 2 give 2 whole boxes, 3 by 4 one box of 3.
    odd = array_levels(np.ones((5, 4, 3), np.float32), (1.0, 1.0, 1.0))
    block, voxel = read_box(odd, (0.0, 0.0, 0.0), (5.0, 4.0, 3.0), (2.0, 2.0, 4.0))
    assert block.shape == (2, 2, 1) and block.dtype == np.float32 and voxel == (2.0, 2.0, 4.0)


def test_crop_box_shifts_into_the_image_and_shrinks_to_it():
    assert crop_box((1.0, 50.0, 99.0), (10.0, 10.0, 10.0), (8.0, 100.0, 100.0)) == ((0.0, 45.0, 90.0), (8.0, 55.0, 100.0))


def test_pick_level_is_the_coarsest_not_coarser_than_the_model_voxel():
    levels = Levels(((64, 512, 512), (64, 256, 256), (32, 128, 128)),
                    ((2.0, 0.25, 0.25), (2.0, 0.5, 0.5), (4.0, 1.0, 1.0)), lambda *_: np.zeros(1))
    assert pick_level(levels, (0.3, 0.3, 0.3)) == 0
    assert pick_level(levels, (0.6, 0.6, 0.6)) == 1  # z is coarser than the model voxel already
    assert pick_level(levels, (3.0, 3.0, 3.0)) == 2


def test_crops_and_coarse_view_do_not_depend_on_the_storage(tmp_path):
    """Two bright spots far apart: found in that order, in memory and stored in two chunkings with a pyramid."""
    image = np.zeros((32, 64, 64), np.float32)
    image[6:10, 8:14, 8:14] = 2.0
    image[20:26, 44:52, 44:52] = 3.0
    voxel = (2.0, 1.0, 1.0)
    expected = crop_centres(array_levels(image, voxel), 2)
    assert len(expected) == 2 and expected[0][1] > 32 > expected[1][1]
    for name, chunks in (("a.zarr", (8, 16, 16)), ("b.zarr", (32, 32, 32))):
        write_image(tmp_path / name, image, voxel_size=voxel, chunk_shape=chunks, n_levels=2)
        levels = volume_levels(open_volume(str(tmp_path / name)))
        assert levels.shapes[0] == image.shape and levels.extent_um == (64.0, 64.0, 64.0)
        assert crop_centres(levels, 2) == expected
        view, view_voxel, offset = coarse_view(levels)
        assert view.shape == image.shape and view_voxel == voxel and offset == (0.0, 0.0, 0.0)
