"""``evaluate`` and ``bigseg evaluate`` on stored volumes (OME-Zarr label group, TIFF)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from bigseg.cli import app
from bigseg.errors import InputError
from bigseg.evaluate import evaluate
from bigseg.io import create_image, create_labels
from bigseg.tiling import Roi


def _labels(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vol = np.zeros((16, 20, 24), np.uint32)
    for label in range(1, 15):
        z, y, x = rng.integers(0, 12), rng.integers(0, 16), rng.integers(0, 20)
        vol[z:z + 4, y:y + 4, x:x + 4] = label
    return vol


def _write_ome(url, labels, voxel_size=(1.0, 0.5, 0.5)) -> str:
    """An OME-Zarr image with the label image ``labels/nuclei``; returns the label group's path."""
    img = create_image(url, shape=labels.shape, dtype="uint8", voxel_size=voxel_size, chunk_shape=(8, 8, 8), n_levels=1)
    img.write(Roi((0, 0, 0), labels.shape), (labels > 0).astype(np.uint8))
    nuclei = create_labels(img, "nuclei", dtype="uint32")
    nuclei.write(Roi((0, 0, 0), labels.shape), labels)
    nuclei.finalize()
    img.finalize()
    return f"{url}/labels/nuclei"


@pytest.fixture
def stored(tmp_path):
    gt = _labels(0)
    pred = np.roll(gt, 1, axis=2)
    pred_url = _write_ome(tmp_path / "out.zarr", pred)
    gt_path = tmp_path / "gt.tif"
    tifffile.imwrite(gt_path, gt.astype(np.uint16), photometric="minisblack")  # no voxel size recorded: nothing to compare
    return pred, gt, pred_url, str(gt_path)


def test_paths_equal_arrays(stored):
    pred, gt, pred_url, gt_path = stored
    from_paths = evaluate(pred_url, gt_path, block_shape=8, ignore_border=True)
    in_memory = evaluate(pred, gt, block_shape=8, ignore_border=True)
    assert from_paths.matching == in_memory.matching
    assert from_paths.adapted_rand_error == in_memory.adapted_rand_error
    assert from_paths.voxel_size == (1.0, 0.5, 0.5)


def test_stored_voxel_sizes_must_agree(tmp_path, stored):
    pred, gt, pred_url, _ = stored
    gt_url = _write_ome(tmp_path / "gt.zarr", gt, voxel_size=(2.0, 0.5, 0.5))
    with pytest.raises(InputError, match=r"`pred` voxel size \(1.0, 0.5, 0.5\) µm differs from `gt` voxel size \(2.0, 0.5, 0.5\)"):
        evaluate(pred_url, gt_url)
    assert evaluate(pred_url, gt_url, voxel_size=(2.0, 0.5, 0.5)).voxel_size == (2.0, 0.5, 0.5)


def test_cli_prints_table_and_writes_json(tmp_path, stored):
    _, _, pred_url, gt_path = stored
    out = tmp_path / "scores.json"
    result = CliRunner().invoke(
        app, ["evaluate", pred_url, gt_path, "-t", "0.5", "-t", "0.3", "--json", str(out), "--block-shape", "8"]
    )
    assert result.exit_code == 0, result.output
    assert "foreground Dice" in result.output and " 0.30 " in result.output
    report = json.loads(out.read_text())
    assert report["pred"] == pred_url and [m["threshold"] for m in report["matching"]] == [0.3, 0.5]
    assert report["matching"][1]["tp"] == evaluate(pred_url, gt_path, thresholds=0.5).matching[0].tp


def test_cli_reports_bad_input(tmp_path, stored):
    _, _, pred_url, _ = stored
    small = tmp_path / "small.tif"
    tifffile.imwrite(small, np.zeros((4, 6, 8), np.uint16), photometric="minisblack", metadata={"axes": "ZYX"})
    result = CliRunner().invoke(app, ["evaluate", pred_url, str(small)])
    assert result.exit_code == 2
    assert "error: `pred` (shape (16, 20, 24)) must have the same shape as `gt` (shape (4, 6, 8))" in result.output
