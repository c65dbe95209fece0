"""The object table is a partitioned Parquet dataset that reads as one table everywhere."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import bigseg.pipeline._driver as seg
from bigseg.io import open_volume
from bigseg.measure import block_stats, combine_stats, object_table
from bigseg.pipeline import segment
from bigseg.tiling import Grid, Halo


@pytest.fixture(scope="module")
def run(balls, tmp_path_factory):
    src, image, _ = balls
    out = tmp_path_factory.mktemp("table") / "out.zarr"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(seg, "ROWS_PER_TABLE_FILE", 60)  # several files even for this small volume
        result = segment(str(src), str(out), scheduler="sync", predictor="classical", diameter_um=10.0,
                         block_shape=(32, 48, 48))
    return result, image


def _single_table(result, image) -> pa.Table:
    """Today's single table: every block's partial statistics of the final labels, combined in one place."""
    labels = open_volume(result.labels_url).read_level(0)
    grid = Grid(labels.shape, (32, 32, 32), Halo.of(0))
    parts = [block_stats(labels[b.write_roi.to_slices()], image[b.write_roi.to_slices()], b.write_roi, labels.shape)
             for b in grid.blocks()]
    return object_table(combine_stats(parts), result.voxel_size)


def test_partitioned_table_equals_the_single_table(run) -> None:
    result, image = run
    files = sorted(os.listdir(result.table_url))
    assert len(files) >= 3 and all(f.startswith("part-") and f.endswith(".parquet") for f in files)
    table = pq.read_table(result.table_url)
    assert table.num_rows == result.n_objects
    assert np.array_equal(table["id"].to_numpy(), np.arange(1, result.n_objects + 1))  # sorted by ID, as read
    expected = _single_table(result, image)
    for name in expected.column_names:
        np.testing.assert_allclose(table[name].to_numpy(), expected[name].to_numpy(), rtol=1e-9, err_msg=name)


def test_pandas_duckdb_and_polars_read_it_as_one_table(run) -> None:
    result, _ = run
    import duckdb
    import pandas as pd

    frame = pd.read_parquet(result.table_url)
    assert len(frame) == result.n_objects and frame["id"].is_monotonic_increasing
    con = duckdb.connect()
    n, top = con.execute(f"SELECT count(*), max(id) FROM read_parquet('{result.table_url}/*.parquet')").fetchone()
    assert n == top == result.n_objects
    polars = pytest.importorskip("polars", reason="polars is optional")
    assert polars.read_parquet(result.table_url).height == result.n_objects


def test_an_object_wider_than_two_blocks_is_one_exact_row(tmp_path) -> None:
    from bigseg.testing import write_image

    image = np.zeros((32, 32, 128), np.float32)
    zz, yy = np.ogrid[:32, :32]
    image[:, :, 14:114][(zz - 16) ** 2 + (yy - 16) ** 2 <= 16] = 1.0  # a rod along x, across 7 blocks
    write_image(tmp_path / "rod.zarr", image)
    result = segment(str(tmp_path / "rod.zarr"), str(tmp_path / "out.zarr"), scheduler="sync",
                     predictor="classical", diameter_um=6.0, block_shape=(16, 16, 16))
    labels = open_volume(result.labels_url).read_level(0)
    table = pq.read_table(result.table_url)
    ids, sizes = np.unique(labels[labels > 0], return_counts=True)
    assert result.n_objects == table.num_rows == len(ids)
    assert np.array_equal(table["voxel_count"].to_numpy(), sizes)
    assert labels[16, 16, 20] == labels[16, 16, 100] != 0  # one object across 5+ blocks along x
