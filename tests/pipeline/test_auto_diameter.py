"""`segment(..., diameter_um="auto")`: estimated once in the driver, used, and recorded."""

from __future__ import annotations

import pytest

from bigseg.evaluate import evaluate
from bigseg.io import open_group, open_volume
from bigseg.pipeline import segment
from bigseg.synth import synthesize, truth_stats
from bigseg.testing import write_image


@pytest.fixture(scope="module")
def confocal(tmp_path_factory):
    """`confocal` preset at 1 µm voxels, 10 µm nuclei, 48×96×96 voxels, seed 5 (as test_model_pipeline)."""
    image, truth = synthesize((48, 96, 96), preset="confocal", voxel_size=(1, 1, 1), diameter_um=10, seed=5,
                              volume_fraction=0.10, axial_stretch=1.0)
    path = tmp_path_factory.mktemp("in") / "confocal.zarr"
    write_image(path, image)
    median = truth_stats(truth, (1, 1, 1), exclude_border=True)["median_diameter_um"]
    return path, truth, float(median)


def test_auto_diameter_is_estimated_used_and_recorded(confocal, tmp_path):
    src, truth, median = confocal
    result = segment(str(src), str(tmp_path / "o.zarr"), scheduler="sync", diameter_um="auto", block_shape=(48, 96, 96))
    run = dict(open_group(result.labels_url).attrs)["bigseg"]["run"]
    assert run["config"]["diameter_um"] == "auto"
    assert abs(run["diameter_um"] / median - 1) <= 0.25  # labels' median 10.3 µm
    assert run["diameter_estimate"]["diameter_um"] == pytest.approx(run["diameter_um"], abs=1e-3)
    labels = open_volume(result.labels_url).read_level(0)
    assert evaluate(labels, truth, thresholds=(0.5,), ignore_border=True).at(0.5).f1 >= 0.9


def test_a_model_run_without_a_diameter_estimates_it(confocal, tmp_path, monkeypatch):
    import bigseg.pipeline._plan as plan

    src, _, median = confocal
    calls = []
    real = plan.estimate_normalization
    monkeypatch.setattr(plan, "estimate_normalization", lambda *a, **k: calls.append(1) or real(*a, **k))
    result = segment(str(src), str(tmp_path / "o.zarr"), scheduler="sync", block_shape=(48, 96, 96))
    assert len(calls) == 1  # the estimate and the run share one normalisation
    run = dict(open_group(result.labels_url).attrs)["bigseg"]["run"]
    assert run["config"]["diameter_um"] is None
    assert abs(run["diameter_um"] / median - 1) <= 0.25 and run["diameter_estimate"] is not None


def test_without_nuclei_the_run_refuses_rather_than_guesses(tmp_path):
    """No diameter and nothing to measure it on: a clear error asking for --diameter, not a fallback."""
    import numpy as np

    from bigseg.diameter import AmbiguousDiameterError

    src = tmp_path / "flat.zarr"
    write_image(src, np.full((32, 64, 64), 100, np.uint16))
    for diameter in (None, "auto"):
        with pytest.raises(AmbiguousDiameterError, match=r"stands out of the noise.*pass --diameter UM"):
            segment(str(src), str(tmp_path / f"o{diameter}.zarr"), scheduler="sync", diameter_um=diameter)
