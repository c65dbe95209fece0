from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bigseg.errors import InputError
from bigseg.tiling import Grid, Halo, Roi

shapes = st.tuples(*[st.integers(1, 40)] * 3)


@settings(max_examples=60, deadline=None)
@given(volume=shapes, block=shapes, halo=st.tuples(*[st.integers(0, 9)] * 3))
def test_write_rois_tile_the_volume_and_read_rois_contain_them(volume, block, halo):
    grid = Grid(volume, block, Halo(halo))
    cover = np.zeros(volume, dtype=np.int32)
    blocks = list(grid.blocks())
    assert len(blocks) == grid.n_blocks
    for b in blocks:
        cover[b.write_roi.to_slices()] += 1
        assert b.read_roi.contains(b.write_roi)
        assert grid.volume_roi.contains(b.read_roi)
        # the read ROI is the write ROI grown by the halo, cut only by the volume
        assert b.read_roi == b.write_roi.grow(grid.halo).intersect(grid.volume_roi)
        assert all(o % s == 0 for o, s in zip(b.write_roi.offset, block))  # chunk-aligned starts
        assert grid.block(b.linear) == b
    assert np.all(cover == 1)


def test_edge_blocks_and_linear_index():
    # volume 100 along z, blocks of 64: the second block is cut to 36 voxels
    #   z: [0 ........ 64)[64 ... 100)
    grid = Grid((100, 10, 10), (64, 10, 10), Halo((8, 0, 0)))
    assert grid.grid_shape == (2, 1, 1)
    last = grid.block((1, 0, 0))
    assert last.write_roi == Roi((64, 0, 0), (36, 10, 10))
    assert last.read_roi == Roi((56, 0, 0), (44, 10, 10))
    assert last.write_in_read == (slice(8, 44), slice(0, 10), slice(0, 10))
    assert [b.index for b in grid.blocks_touching(Roi((60, 0, 0), (10, 1, 1)))] == [(0, 0, 0), (1, 0, 0)]


def test_bad_shapes_name_the_value():
    with pytest.raises(InputError, match=r"block_shape.*>= 1.*\(0, 4, 4\)"):
        Grid((8, 8, 8), (0, 4, 4), Halo((0, 0, 0)))
    with pytest.raises(InputError, match="3 values"):
        Grid((8, 8, 8), (4, 4), Halo((0, 0, 0)))
    with pytest.raises(InputError, match="outside the grid"):
        Grid((8, 8, 8), (4, 4, 4), Halo((0, 0, 0))).block((2, 0, 0))
    with pytest.raises(InputError, match=">= 0"):
        Roi((0, 0, 0), (1, -1, 1))


def test_halo_of_one_int_says_how_to_write_it():
    with pytest.raises(InputError, match=r"Halo takes one value per axis, e.g. Halo\(\(8, 8, 8\)\), got Halo\(8\).*Halo.of\(8\)"):
        Halo(8)  # type: ignore[arg-type]
    assert Halo.of(8) == Halo((8, 8, 8))
