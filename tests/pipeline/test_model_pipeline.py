"""The pipeline with the shipped default model (the default predictor)."""

from __future__ import annotations

import numpy as np
import pytest

from bigseg.evaluate import evaluate
from bigseg.io import open_group, open_volume
from bigseg.pipeline import segment
from bigseg.synth import synthesize
from bigseg.testing import same_partition, write_image


@pytest.fixture(scope="module")
def confocal(tmp_path_factory):
    """`confocal` preset at 1 µm voxels with 10 µm nuclei (the model was trained at 12 µm, so the
    blocks are rescaled: step 0.83), 32×64×64 voxels, seed 5."""
    image, truth = synthesize((32, 64, 64), preset="confocal", voxel_size=(1, 1, 1), diameter_um=10, seed=5,
                              volume_fraction=0.10, axial_stretch=1.0)
    path = tmp_path_factory.mktemp("in") / "confocal.zarr"
    write_image(path, image)
    return path, truth


@pytest.mark.slow
def test_default_model_labels_do_not_depend_on_the_block_shape(confocal, tmp_path):
    """One block, 32³ blocks and 24×40×56 blocks give the same partition voxel for voxel: the
    model's patches sit on one global grid. (IDs are numbered per owning block, so they are a
    renaming of each other; docs/stitching.md says why.)"""
    src, truth = confocal
    runs = {}
    for name, block in [("one", (32, 64, 64)), ("cube", (32, 32, 32)), ("odd", (24, 40, 56))]:
        result = segment(str(src), str(tmp_path / f"{name}.zarr"), scheduler="sync", diameter_um=10.0,
                         block_shape=block)
        runs[name] = (result, open_volume(result.labels_url).read_level(0))
    assert [r.n_blocks for r, _ in runs.values()] == [1, 4, 8]
    one = runs["one"][1]
    assert runs["one"][0].n_objects > 10
    for name in ("cube", "odd"):
        assert same_partition(runs[name][1], one), name
    assert evaluate(one, truth, thresholds=(0.5,), ignore_border=True).at(0.5).f1 >= 0.9


def test_the_output_records_the_predictor(confocal, tmp_path):
    """The labels' metadata name the model that predicted the maps and how it was applied (its
    scale and cap), beside the config (whose ``model`` is None when the default was used)."""
    from bigseg.predict import DEFAULT_MODEL

    src, _ = confocal
    result = segment(str(src), str(tmp_path / "out.zarr"), scheduler="sync", diameter_um=10.0)
    run = dict(open_group(result.labels_url).attrs)["bigseg"]["run"]
    assert run["config"]["model"] is None
    assert run["predictor"] == {**run["predictor"], "kind": "ModelSpec", "model": DEFAULT_MODEL, "diameter_um": 10.0,
                                "voxel_size": [1.0, 1.0, 1.0], "max_upsample": None}


def test_with_a_cap_small_nuclei_go_to_the_coarse_model_and_the_output_says_so(tmp_path):
    """mesoSPIM-like data (15 µm nuclei in 5 µm voxels: 3 across) with no model named and a 2x cap: the
    default picks the coarse model and the labels' metadata records it; without the cap, or told 40 µm
    nuclei (8 voxels), the fine model."""
    from bigseg.predict import COARSE_MODEL, DEFAULT_MODEL, MAX_UPSAMPLE

    image, _ = synthesize((24, 40, 40), preset="mesospim", seed=9, volume_fraction=0.05)
    src = tmp_path / "meso.zarr"
    write_image(src, image, voxel_size=(5.0, 5.26, 5.26))
    for diameter, cap, model in ((15.0, MAX_UPSAMPLE, COARSE_MODEL), (15.0, None, DEFAULT_MODEL),
                                 (40.0, MAX_UPSAMPLE, DEFAULT_MODEL)):
        result = segment(str(src), str(tmp_path / f"out{diameter:g}-{cap}.zarr"), scheduler="sync",
                         diameter_um=diameter, max_upsample=cap)
        run = dict(open_group(result.labels_url).attrs)["bigseg"]["run"]
        assert (run["predictor"]["model"], run["predictor"]["max_upsample"]) == (model, cap)
        assert run["predictor"]["kind"] == "ModelSpec" and run["config"]["model"] is None
