"""Voronoi-Otsu and TASCAN through the pipeline: blocking invariance and cross-block merges."""

from __future__ import annotations

import numpy as np
import pytest

from bigseg.decode import voronoi_otsu, voronoi_sigmas
from bigseg.errors import InputError
from bigseg.io import open_volume
from bigseg.pipeline import segment
from bigseg.predict import ClassicalSpec, estimate_normalization
from bigseg.testing import same_partition

DIAMETER = 10.0


@pytest.fixture(scope="module")
def reference(balls):
    """The pipeline's classical foreground map of the balls volume, decoded whole in memory."""
    _, image, _ = balls
    volume = open_volume(str(balls[0]))
    norm = estimate_normalization(volume)
    spec = ClassicalSpec((1.0, 1.0, 1.0), DIAMETER, threshold=norm.threshold)
    fg = spec.build().predict(norm.apply(image))[0]
    fg = fg.astype(np.float16).astype(np.float32)  # as the pipeline stores maps (maps_dtype float16)
    spot, outline = voronoi_sigmas(DIAMETER, (1.0, 1.0, 1.0))
    return voronoi_otsu(fg, spot, outline)


@pytest.mark.parametrize("block_shape", [(32, 32, 32), (24, 40, 56), (64, 96, 96)])
def test_blockwise_equals_whole_volume_reference(balls, reference, tmp_path, block_shape) -> None:
    src, _, truth = balls
    result = segment(str(src), str(tmp_path / "out.zarr"), scheduler="sync", predictor="classical",
                     diameter_um=DIAMETER, decoder="voronoi-otsu", block_shape=block_shape, min_volume_um3=0)
    labels = open_volume(f"{result.output}/labels/nuclei").read_level(0)
    assert same_partition(labels, reference)
    assert result.n_objects == len(np.unique(truth)) - 1  # and it is right on this easy volume


def test_wrong_stitch_path_is_refused(balls, tmp_path) -> None:
    with pytest.raises(InputError, match=r"decoder 'voronoi-otsu' works on the 'seeds' stitch path, not 'iou'"):
        segment(str(balls[0]), str(tmp_path / "o.zarr"), scheduler="sync", predictor="classical",
                diameter_um=DIAMETER, decoder="voronoi-otsu", stitch="iou")


def test_unknown_decoder_lists_the_choices(balls, tmp_path) -> None:
    with pytest.raises(InputError, match=r"decoder.*'bcd', 'voronoi-otsu' or 'tascan'.*got 'stardist'"):
        segment(str(balls[0]), str(tmp_path / "o.zarr"), scheduler="sync", predictor="classical", decoder="stardist")




def test_tascan_blockwise_joins_nuclei_cut_by_block_faces(balls, tmp_path) -> None:
    """Every nucleus is one object whatever the blocking: the halves of a nucleus cut by a
    block face are joined on IoU evidence (the iou stitch path)."""
    src, _, truth = balls
    kw = dict(scheduler="sync", predictor="classical", diameter_um=DIAMETER, decoder="tascan")
    whole = segment(str(src), str(tmp_path / "whole.zarr"), block_shape=(64, 96, 96), **kw)
    blocked = segment(str(src), str(tmp_path / "blocked.zarr"), block_shape=(32, 32, 32), **kw)
    a = open_volume(f"{whole.output}/labels/nuclei").read_level(0)
    b = open_volume(f"{blocked.output}/labels/nuclei").read_level(0)
    assert blocked.n_blocks == 18
    assert same_partition(a, b)
    assert blocked.n_objects == len(np.unique(truth)) - 1  # small fragments removed after stitching
