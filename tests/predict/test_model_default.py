"""The shipped default model: accuracy on a synthetic volume, and blocking / overlap invariance."""

from __future__ import annotations

import numpy as np
import pytest

from bigseg.decode import DecodeParams
from bigseg.predict import get_predictor
from bigseg.predict._model import default_model_spec
from bigseg.predict._package import COARSE_MODEL, DEFAULT_MODEL, load_model_package
from bigseg.tiling import Roi
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
    """Cores cut at arbitrary offsets, predicted from their read ROI (``halo`` around them, clipped
    to the volume) at a non-trivial scale (step 0.83), equal the whole volume's maps exactly."""
    image, _ = volume
    pred = get_predictor(default_model_spec((1.0, 1.0, 1.0), 10.0, device="cpu"))
    whole = pred.predict(image)
    full = Roi((0, 0, 0), image.shape)
    for roi in [Roi((0, 0, 0), (48, 40, 37)), Roi((5, 41, 23), (17, 30, 50)), Roi((20, 61, 59), (28, 35, 37))]:
        read = roi.grow(pred.halo).intersect(full)
        maps = pred.predict(image[read.to_slices()], offset=read.offset, write_roi=roi)
        np.testing.assert_array_equal(maps, whole[(slice(None), *roi.to_slices())])


def test_default_model_output_barely_depends_on_patch_overlap(volume) -> None:
    """Default patches (80³ windows, overlap-tile), borders of 8 (the default) vs 16 model voxels
    dropped (overlap 0.4), all maps: mean |Δ| < 0.003, 99.9th percentile < 0.1, max < 0.3
    (measured with 64³ windows, bcd_unet_synth_v2: 0.0009, 0.035, 0.13; the largest differences
    are single voxels where a map changes fast)."""
    image, _ = volume

    def run(overlap: float | None) -> np.ndarray:
        return default_model_spec((1.0, 1.0, 1.0), 12.0, device="cpu", overlap=overlap).build().predict(image)

    diff = np.abs(run(None) - run(0.4))
    assert diff.mean() < 0.003 and np.percentile(diff, 99.9) < 0.1 and diff.max() < 0.3, (
        diff.mean(), np.percentile(diff, 99.9), diff.max())
    assert diff.max() > 0  # the two runs did tile the volume differently


def _sized_volume(d_vox: int) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    """Confocal-like volume, 10 µm nuclei ``d_vox`` voxels across (isotropic voxels), seed 7."""
    from bigseg.synth import synthesize

    shape = {3: (40, 48, 48), 12: (48, 96, 96), 30: (80, 160, 160)}[d_vox]
    v = 10.0 / d_vox
    image, truth = synthesize(
        shape, preset="confocal", voxel_size=(v, v, v), diameter_um=10.0, seed=7, volume_fraction=0.1,
        psf_sigma_um=(1.0, 0.5, 0.5), haze=0.0, texture=0.2, intensity_cv=0.15, axial_stretch=1.0,
    )
    image = image.astype(np.float32)
    lo, hi = np.percentile(image, [1, 99.8])
    return (image - lo) / (hi - lo), truth, (v, v, v)


@pytest.mark.slow
@pytest.mark.parametrize(("d_vox", "cap"), [(3, None), (12, None), (30, None), (3, 2.0)])
def test_default_model_f1_across_the_size_range(d_vox: int, cap: float | None) -> None:
    """F1@0.5 >= 0.9 (border nuclei excluded) with nuclei 3, 12 and 30 voxels across, told the
    labels' median diameter. Without a cap (the default) the fine model enlarges the 3-voxel case 4x
    per axis; with a 2x cap it goes to the coarse model (the fine model under the cap scored 0.53)."""
    from bigseg.evaluate import evaluate
    from bigseg.synth import truth_stats

    image, truth, voxel = _sized_volume(d_vox)
    d = float(truth_stats(truth, voxel, exclude_border=True)["median_diameter_um"])
    pred = get_predictor(default_model_spec(voxel, d, device="cpu", max_upsample=cap))
    assert pred.card.name == (COARSE_MODEL if cap else DEFAULT_MODEL)  # type: ignore[attr-defined]
    assert cap is None or max(1 / s for s in pred.scale.step) <= cap + 1e-9  # type: ignore[attr-defined]
    labels = decode_bcd(pred.predict(image), pred.card.decoding)  # type: ignore[attr-defined]
    scores = evaluate(labels, truth, thresholds=(0.5,), ignore_border=True)
    assert scores.at(0.5).f1 >= 0.9, scores.to_table()
