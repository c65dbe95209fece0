"""WNet3D: self-supervised training on an unlabelled volume, then segmentation through the pipeline."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from bigseg.cli import app
from bigseg.errors import InputError
from bigseg.evaluate import evaluate
from bigseg.io import open_volume
from bigseg.synth import PRESETS, synthesize
from bigseg.testing import write_image
from bigseg.train import LabelledPair, TrainConfig, UnlabelledImage


def test_config_refuses_labels_heads_and_missing_images() -> None:
    with pytest.raises(InputError, match=r"'wnet3d' trains without labels on your own images: pass --image"):
        TrainConfig(out="x", architecture="wnet3d", head="semantic", loss="soft_ncuts", synthetic=False)
    with pytest.raises(InputError, match=r"'wnet3d' is a semantic model trained with 'soft_ncuts'; got head 'bcd'"):
        TrainConfig(out="x", architecture="wnet3d", head="bcd", loss="bcd", images=(UnlabelledImage("a.tif"),))
    with pytest.raises(InputError, match=r"images without labels train only a self-supervised architecture"):
        TrainConfig(out="x", architecture="unet", images=(UnlabelledImage("a.tif"),))
    with pytest.raises(InputError, match=r"pass --image \(no --labels\); got 1 images and 1 labelled pairs"):
        TrainConfig(out="x", architecture="wnet3d", head="semantic", loss="soft_ncuts",
                    images=(UnlabelledImage("a.tif"),), pairs=(LabelledPair("a.tif", "b.tif"),))


@pytest.mark.slow
def test_a_few_hundred_steps_separate_nuclei_from_background(tmp_path) -> None:
    """200 steps (about 45 s on one CPU thread) on a sparse confocal-preset volume (11 nuclei, 1.5 %
    of the voxels, haze around them): the CLI trains, the card names the brighter class as
    foreground and Voronoi-Otsu, and `bigseg segment` with the package finds the nuclei (F1 at
    IoU 0.5 >= 0.5; 0.95 when written). Without the warm start the same run finds no nucleus
    (F1 0): soft N-cuts alone falls into blobs far larger than the nuclei."""
    vs = PRESETS["confocal"].voxel_size
    image, truth = synthesize((64, 160, 160), preset="confocal", seed=3)
    src = tmp_path / "raw.ome.zarr"
    write_image(src, image, voxel_size=vs)
    out = tmp_path / "wnet"
    runner = CliRunner()
    scale = ["--voxel-size", *map(str, vs), "--diameter", "14.5"]
    res = runner.invoke(app, [
        "train", str(out), "--architecture", "wnet3d", "--image", str(src), *scale,
        "--model-diameter", "9", "--arch-kwargs", '{"channels": [8, 16], "strides": [2]}', "--steps", "200",
        "--batch-size", "2", "--patch-size", "32", "32", "32", "--infer-patch-size", "32", "32", "32",
        "--lr", "0.005", "--seed", "0",
    ])
    assert res.exit_code == 0, res.output
    card = json.loads((out / "model" / "card.json").read_text())
    assert card["architecture"] == "wnet3d" and card["head"] == "semantic" and card["decoder"] == "voronoi-otsu"
    means = card["provenance"]["metrics"]["class_mean_intensity"]
    assert card["architecture_kwargs"]["foreground_class"] == int(np.argmax(means))
    assert card["provenance"]["metrics"]["warm_start_steps"] == 66
    seg = tmp_path / "seg.zarr"
    res = runner.invoke(app, ["segment", str(src), str(seg), "--model", str(out / "model"), *scale,
                              "--scheduler", "sync", "--no-progress"])
    assert res.exit_code == 0, res.output
    labels = open_volume(f"{seg}/labels/nuclei").read_level(0)
    scores = evaluate(labels, truth, thresholds=(0.5,))
    assert scores.at(0.5).f1 >= 0.5, scores.to_table()
