from __future__ import annotations

import numpy as np
import pytest

from bigseg.errors import InputError
from bigseg.predict import ClassicalSpec, Normalization, Predictor, get_predictor
from bigseg.testing import balls_volume
from bigseg.tiling import Grid, Halo


def test_maps_of_each_core_equal_whole_volume_maps():
    image, _ = balls_volume((40, 56, 56), np.array([(20, 20, 20), (20, 36, 36), (8, 50, 10)]), 6.0, noise=0.05)
    spec = ClassicalSpec((1.0, 0.5, 0.5), diameter_um=8.0, threshold=0.4)
    pred = get_predictor(spec)
    assert isinstance(pred, Predictor)
    whole = pred.predict(image)
    assert whole.shape == (3, 40, 56, 56) and whole.dtype == np.float32
    grid = Grid(image.shape, (16, 24, 20), Halo(pred.halo))
    stitched = np.zeros_like(whole)
    for b in grid.blocks():
        maps = pred.predict(image[b.read_roi.to_slices()], offset=b.read_roi.offset)
        stitched[(slice(None), *b.write_roi.to_slices())] = maps[(slice(None), *b.write_in_read)]
    np.testing.assert_allclose(stitched, whole, atol=1e-5)  # float32 summation order only


def test_maps_ranges_and_meaning():
    image, labels = balls_volume((32, 48, 48), np.array([(16, 24, 24)]), 8.0, noise=0.0)
    maps = ClassicalSpec((1, 1, 1), 16.0, threshold=0.5).build().predict(image)
    fg, contour, dist = maps
    assert fg[16, 24, 24] > 0.99 and fg[2, 2, 2] < 0.01
    assert dist[16, 24, 24] > 0.6 and dist[2, 2, 2] < -0.5
    assert dist[16, 24, 24] == dist.max()  # the distance peaks at the centre
    assert contour[16, 24, 24] < contour[16, 24, 32]  # the edge is more contour than the centre
    assert 0 <= contour.min() and contour.max() <= 1


def test_spec_validation_and_normalization():
    with pytest.raises(InputError, match="voxel_size"):
        ClassicalSpec((1.0, 0.0, 1.0), 8.0)
    with pytest.raises(InputError, match="diameter_um"):
        ClassicalSpec((1.0, 1.0, 1.0), -2.0)
    with pytest.raises(InputError, match="high"):
        Normalization(5.0, 5.0)
    norm = Normalization(100.0, 300.0)
    np.testing.assert_allclose(norm.apply(np.array([100, 200, 300], np.uint16)), [0.0, 0.5, 1.0])
