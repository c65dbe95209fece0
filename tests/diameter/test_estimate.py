"""Nucleus diameter estimation by the default model's self-consistency (``--diameter auto``)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from bigseg.diameter import CandidateScore, DiameterEstimate, candidate_grid, estimate_diameter, estimate_volume_diameter
from bigseg.diameter._estimate import _choose
from bigseg.errors import InputError
from bigseg.io import open_volume
from bigseg.predict import estimate_normalization
from bigseg.synth import synthesize, truth_stats
from bigseg.testing import write_image

# The estimate must lie within this fraction of the labels' median equivalent-sphere diameter
# (nuclei not cut by the border). Measured on these volumes: +6 % (6 µm) and +2 % (20 µm).
TOLERANCE = 0.25
CONFOCAL_VOXEL = (1.75, 0.8, 0.8)


def _normalise(image: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(image, (1, 99.8))
    return ((image.astype(np.float32) - lo) / (hi - lo)).astype(np.float32)


@pytest.fixture(scope="module")
def confocal_6um():
    """`confocal` preset, 6 µm nuclei (3.4 voxels in z), 27×60×60 voxels, seed 5: ~30 whole nuclei."""
    image, labels = synthesize((27, 60, 60), preset="confocal", seed=5, diameter_um=6.0, volume_fraction=0.1)
    return image, float(truth_stats(labels, CONFOCAL_VOXEL, exclude_border=True)["median_diameter_um"])


def test_candidate_grid_is_geometric_and_validated():
    grid = candidate_grid()
    assert grid[0] == 2.5 and 72 < grid[-1] <= 80 and len(grid) == 11
    assert np.allclose(np.diff(np.log(grid)), math.log(1.4), atol=1e-3)
    with pytest.raises(InputError, match="factor.*> 1, got 1"):
        candidate_grid(2, 10, 1)
    with pytest.raises(InputError, match="start <= stop"):
        candidate_grid(10, 2)


def _scores(*rows: tuple[float, int, float]) -> list[CandidateScore]:
    return [CandidateScore(c, n, m, m / c if n else math.nan) for c, n, m in rows]


def test_choose_takes_the_largest_self_consistent_candidate():
    # Chromatin grains are self-consistent at 2.5 µm; the nuclei (~20 µm) from 9.6 up to 18.8 µm.
    scores = _scores((2.5, 17, 2.5), (4.9, 35, 3.3), (9.6, 5, 19.6), (13.4, 6, 22.2), (18.8, 20, 21.8),
                     (26.3, 23, 22.0), (36.9, 14, 24.1))
    chosen, consistent = _choose(scores, 3)
    assert chosen.candidate_um == 18.8 and consistent
    # A sparse image: 2 whole nuclei at the fixed point count with the next candidate's 5.
    sparse = _scores((2.5, 16, 2.5), (6.9, 2, 10.0), (9.6, 2, 10.3), (13.4, 5, 10.9), (18.8, 5, 10.1))
    assert _choose(sparse, 3)[0].candidate_um == 9.6


def test_choose_needs_a_witness_that_the_fixed_point_attracts():
    # Nuclei at ~8 µm (witnessed by 31 smaller-looking objects at 9.6 µm); far above, a model merges
    # one or two clusters into blobs as big as the candidate, with one object above and 0.54 below.
    merged = _scores((2.5, 8, 2.3), (6.9, 26, 7.8), (9.6, 31, 8.3), (13.4, 21, 9.6), (18.8, 26, 10.2),
                     (26.4, 2, 32.3), (36.9, 1, 35.9), (51.7, 1, 38.5))
    assert _choose(merged, 3)[0].candidate_um == 6.9
    # Large, sparse nuclei: few objects everywhere, but the candidate below also sees them larger.
    big = _scores((2.5, 14, 2.3), (6.9, 1, 18.9), (9.6, 2, 19.1), (13.4, 2, 19.2), (18.8, 2, 19.3), (26.4, 1, 19.5))
    assert _choose(big, 3)[0].candidate_um == 18.8


def test_choose_falls_back_to_the_closest_ratio_then_to_nothing():
    chosen, consistent = _choose(_scores((4.9, 10, 3.6), (6.9, 12, 6.6), (9.6, 20, 6.5)), 3)
    assert chosen.candidate_um == 6.9 and not consistent
    assert _choose(_scores((4.9, 2, 3.6), (6.9, 0, math.nan)), 3) is None


@pytest.mark.parametrize("d", [6.0, 20.0])
def test_estimates_confocal_diameter_within_tolerance(d, confocal_6um):
    if d == 6.0:
        image, truth = confocal_6um
    else:  # 68×150×150 voxels, ~10 whole nuclei
        image, labels = synthesize((68, 150, 150), preset="confocal", seed=5, diameter_um=d, volume_fraction=0.1)
        truth = float(truth_stats(labels, CONFOCAL_VOXEL, exclude_border=True)["median_diameter_um"])
    est = estimate_diameter(_normalise(image), CONFOCAL_VOXEL, device="cpu")
    assert est.self_consistent
    assert abs(est.diameter_um / truth - 1) <= TOLERANCE, est.table()
    assert est.refined is not None and est.refined.n_objects >= 3
    json.dumps(est.as_dict())  # goes into the run's metadata


def test_estimate_is_deterministic_and_independent_of_the_storage(confocal_6um, tmp_path):
    """Same image in memory and stored in two chunkings (one with a pyramid): same crops, same answer."""
    image, truth = confocal_6um
    grid = (3.5, 4.9, 6.86, 9.6, 13.45)
    first = estimate_diameter(_normalise(image), CONFOCAL_VOXEL, candidates=grid, device="cpu")
    again = estimate_diameter(_normalise(image), CONFOCAL_VOXEL, candidates=grid, device="cpu")
    assert first == again
    stored = []
    for name, chunks in (("a.zarr", (8, 16, 16)), ("b.zarr", (27, 32, 32))):
        write_image(tmp_path / name, image, voxel_size=CONFOCAL_VOXEL, chunk_shape=chunks, n_levels=2)
        volume = open_volume(str(tmp_path / name))
        stored.append(estimate_volume_diameter(volume, estimate_normalization(volume), candidates=grid, device="cpu"))
    assert stored[0] == stored[1]
    assert abs(stored[0].diameter_um / truth - 1) <= TOLERANCE, stored[0].table()


def test_empty_or_tiny_image_raises_with_the_fix():
    with pytest.raises(InputError, match=r"no nuclei found at any candidate.*--diameter"):
        estimate_diameter(np.zeros((24, 48, 48), np.float32), (1.0, 1.0, 1.0), candidates=(4.0, 8.0), device="cpu")
    with pytest.raises(InputError, match=r"too small.*--diameter"):
        estimate_diameter(np.zeros((4, 4, 4), np.float32), (1.0, 1.0, 1.0), device="cpu")


def test_bad_arguments_name_the_value():
    image = np.zeros((8, 8, 8), np.float32)
    with pytest.raises(InputError, match=r"\(Z, Y, X\).*\(8, 8\)"):
        estimate_diameter(image[0], (1, 1, 1))
    with pytest.raises(InputError, match="finite"):
        estimate_diameter(np.full((8, 8, 8), np.nan, np.float32), (1, 1, 1))
    with pytest.raises(InputError, match=r"candidates.*\[-1\.0\]"):
        estimate_diameter(image, (1, 1, 1), candidates=[-1.0])
    with pytest.raises(InputError, match=r"candidates.*\['big'\]"):
        estimate_diameter(image, (1, 1, 1), candidates=["big"])
    with pytest.raises(InputError, match="crop_size.*got 8"):
        estimate_diameter(image, (1, 1, 1), crop_size=8)
    with pytest.raises(InputError, match="voxel_size"):
        estimate_diameter(image, (1, 0, 1))


def test_estimate_summary_is_readable():
    rows = (CandidateScore(4.9, 0, math.nan, math.nan), CandidateScore(6.9, 12, 7.0, 7.0 / 6.9))
    est = DiameterEstimate(7.0, 6.9, True, rows)
    assert "6.90" in est.table() and "<- chosen" in est.table()
    assert est.as_dict()["candidates"] == [[4.9, 0, None], [6.9, 12, 7.0]]
    with pytest.raises(InputError, match="> 0"):
        DiameterEstimate(0.0, 6.9, True, rows)
