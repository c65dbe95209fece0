"""The output of `segment` is valid OME-Zarr (0.5 by default, 0.4 on request), sharded on request."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from bigseg.io import open_volume
from bigseg.pipeline import segment
from bigseg.testing import balls_volume, same_partition, write_image

ome_v04 = pytest.importorskip("ome_zarr_models.v04")
ome_v05 = pytest.importorskip("ome_zarr_models.v05")


@pytest.fixture
def src(tmp_path):
    image, _ = balls_volume((32, 64, 64), np.array([(16, 16, 16), (16, 48, 40), (8, 30, 50)]), 6.0)
    path = tmp_path / "in.zarr"
    write_image(path, image, n_levels=2)
    return path


@pytest.mark.parametrize("version, models", [("0.5", ome_v05), ("0.4", ome_v04)])
def test_output_validates_as_ome_zarr(src, tmp_path, version, models):
    out = tmp_path / f"out{version}.zarr"
    result = segment(str(src), str(out), scheduler="sync", predictor="classical", diameter_um=12.0,
                     block_shape=(16, 32, 32), ngff_version=version)
    group = zarr.open_group(str(out), mode="r")
    models.Image.from_zarr(group)
    models.ImageLabel.from_zarr(group["labels/nuclei"])
    models.Labels.from_zarr(group["labels"])
    assert result.n_objects == 3
    assert open_volume(str(out)).n_levels == 2
    np.testing.assert_array_equal(open_volume(str(out)).read_level(0), open_volume(str(src)).read_level(0))


def test_sharded_output_equals_unsharded(src, tmp_path):
    common = dict(scheduler="sync", predictor="classical", diameter_um=12.0, block_shape=(16, 32, 32))
    plain = segment(str(src), str(tmp_path / "plain.zarr"), **common)
    sharded = segment(str(src), str(tmp_path / "sharded.zarr"), shard=True, **common)
    arr = zarr.open_array(f"{sharded.labels_url}/0", mode="r")
    assert arr.shards == (16, 32, 32) and arr.chunks == (8, 16, 16)
    assert same_partition(open_volume(plain.labels_url).read_level(0), open_volume(sharded.labels_url).read_level(0))
