"""The shipped default model: accuracy on a synthetic volume, and blocking / overlap invariance."""

from __future__ import annotations

import numpy as np
import pytest

from bigseg.decode import DecodeParams
from bigseg.predict import get_predictor
from bigseg.predict._model import default_model_spec
from bigseg.predict._package import DEFAULT_MODEL, load_model_package
from bigseg.train import decode_bcd


@pytest.fixture(scope="module")
def volume() -> tuple[np.ndarray, np.ndarray]:
    """`confocal` preset at 1 µm isotropic voxels, 10 µm nuclei, 10 % volume fraction, seed 3,
    48×96×96 voxels (the settings of the pipeline's accuracy test, smaller)."""
    from bigseg.synth import synthesize

    image, truth = synthesize(
        (48, 96, 96), preset="confocal", voxel_size=(1, 1, 1), diameter_um=10, seed=3, volume_fraction=0.10,
        psf_sigma_um=(1.0, 0.5, 0.5), haze=0.0, texture=0.2, intensity_cv=0.15, axial_stretch=1.0,
    )
    image = image.astype(np.float32)
    lo, hi = np.percentile(image, [1, 99.8])
    return (image - lo) / (hi - lo), truth


def _thresholds() -> DecodeParams:
    return load_model_package(DEFAULT_MODEL).card.decoding


def test_default_model_f1_on_synthetic(volume) -> None:
    """F1 at IoU 0.5 >= 0.9 without nuclei cut by the volume border (their truth is a fragment)."""
    from bigseg.evaluate import evaluate

    image, truth = volume
    pred = get_predictor(default_model_spec((1.0, 1.0, 1.0), 10.0, device="cpu"))
    labels = decode_bcd(pred.predict(image), _thresholds())
    scores = evaluate(labels, truth, thresholds=(0.5, 0.75), ignore_border=True)
    assert scores.at(0.5).f1 >= 0.9, scores.to_table()


def test_default_model_blocks_agree(volume) -> None:
    """Two overlapping blocks, predicted with their global offsets at a non-trivial scale
    (step 0.83), agree with the whole volume in their interiors (``halo`` from each cut).
    Tolerance (all maps): mean |Δ| < 0.01, 99.9th percentile < 0.15, max < 0.3. The
    differences come from where the sliding window's patches fall (they do not shrink
    away from the cut); measured (bcd_unet_synth_v2): mean 0.003-0.004, p99.9 0.10, max 0.26."""
    image, _ = volume
    pred = get_predictor(default_model_spec((1.0, 1.0, 1.0), 10.0, device="cpu"))
    whole = pred.predict(image)
    h = pred.halo
    for lo, hi in [((0, 0, 0), (48, 64, 60)), ((0, 30, 36), (48, 96, 96))]:
        block = image[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        maps = pred.predict(block, offset=lo)
        inner = tuple(slice(h[i] if lo[i] > 0 else 0, (hi[i] - lo[i]) - (h[i] if hi[i] < image.shape[i] else 0))
                      for i in range(3))
        ref = whole[(slice(None),) + tuple(slice(lo[i] + s.start, lo[i] + s.stop) for i, s in enumerate(inner))]
        diff = np.abs(maps[(slice(None),) + inner] - ref)
        assert diff.mean() < 0.01 and np.percentile(diff, 99.9) < 0.15 and diff.max() < 0.3, (
            diff.mean(), np.percentile(diff, 99.9), diff.max())


def test_default_model_output_barely_depends_on_patch_overlap(volume) -> None:
    """48³ patches, overlap 0.25 vs 0.5 (many patches per volume), all maps: mean |Δ| < 0.01,
    99.9th percentile < 0.2, max < 0.6 (measured, bcd_unet_synth_v2: 0.0030, 0.13, 0.44; the largest
    differences are single voxels where a map changes fast)."""
    image, _ = volume

    def run(overlap: float) -> np.ndarray:
        spec = default_model_spec((1.0, 1.0, 1.0), 12.0, device="cpu", overlap=overlap, patch_size=(48, 48, 48))
        return spec.build().predict(image)

    diff = np.abs(run(0.25) - run(0.5))
    assert diff.mean() < 0.01 and np.percentile(diff, 99.9) < 0.2 and diff.max() < 0.6, (
        diff.mean(), np.percentile(diff, 99.9), diff.max())
    assert diff.max() > 0  # the two runs did tile the volume differently
