"""The blur-limited measurement's pieces: the axial shape ratio's constants and the true peak."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from bigseg.diameter._blur import BLUR_LIMITED_Q, GAUSSIAN_Q, core_peak


def _ratio_of_blurred_ball(radius: float, s: float) -> float:
    """r75/r50 along z of a rendered ball (``radius`` voxels) blurred by a Gaussian of sd ``s``."""
    n = 2 * int(radius + 4 * s) + 9
    c = n // 2
    zz, yy, xx = np.ogrid[:n, :n, :n]
    ball = ((zz - c) ** 2 + (yy - c) ** 2 + (xx - c) ** 2 <= radius**2).astype(np.float64)
    line = ndi.gaussian_filter(ball, s)[c:, c, c]
    top = line[0]
    at = [float(np.interp(-f * top, -line, np.arange(len(line)))) for f in (0.75, 0.5)]
    return at[0] / at[1]


def test_shape_constants_are_those_of_rendered_balls() -> None:
    """A ball blurred by 0.3 of its radius has r75/r50 = BLUR_LIMITED_Q; blurred far more than its size,
    a Gaussian's GAUSSIAN_Q; sharper balls more (the analytic values, within the rendering's sampling)."""
    assert _ratio_of_blurred_ball(12.0, 0.3 * 12) == pytest.approx(BLUR_LIMITED_Q, abs=0.015)
    assert _ratio_of_blurred_ball(4.0, 12.0) == pytest.approx(GAUSSIAN_Q, abs=0.01)
    assert _ratio_of_blurred_ball(12.0, 0.1 * 12) > 0.9
    # Past half the radius the shape is a Gaussian's within 3 %: the blur cannot be told from the size.
    assert _ratio_of_blurred_ball(12.0, 0.55 * 12) == pytest.approx(GAUSSIAN_Q, rel=0.03)


def _offsets(shape: tuple[int, ...], centre: float) -> list[np.ndarray]:
    return np.meshgrid(*[np.arange(n, dtype=np.float64) - centre for n in shape], indexing="ij", sparse=True)


def test_core_peak_is_the_peak_of_a_rounded_blob_where_the_core_median_is_not() -> None:
    rng = np.random.default_rng(0)
    axes = _offsets((25, 25, 25), 12.0)
    r2 = axes[0] ** 2 + axes[1] ** 2 + axes[2] ** 2
    blob = 100 * np.exp(-r2 / (2 * 4.0**2)) + rng.normal(0, 1, (25, 25, 25))
    core = r2 <= 3.0**2
    assert core_peak(blob, axes, core) == pytest.approx(100, rel=0.02)
    assert np.median(blob[core]) < 0.93 * 100


def test_core_peak_of_textured_flat_tops_is_their_plateau() -> None:
    """Grains (sd 0.3 of the plateau, about a voxel across): the fit is unbiased over 30 nuclei (its spread
    per nucleus, 0.18 here, is 1.7x the core median's), where their maximum is 1.5x the plateau."""
    axes = _offsets((25, 25, 25), 12.0)
    r2 = axes[0] ** 2 + axes[1] ** 2 + axes[2] ** 2
    core = r2 <= 3.0**2
    peaks, tops = [], []
    for seed in range(30):
        grains = ndi.gaussian_filter(np.random.default_rng(seed).normal(0, 1, (25, 25, 25)), 1.0)
        flat = 100 * (1 + 0.3 * grains / grains.std()) * (r2 <= 10.0**2)
        peaks.append(core_peak(flat, axes, core))
        tops.append(flat[core].max())
    assert np.mean(peaks) == pytest.approx(100, rel=0.04)
    assert np.mean(tops) > 1.4 * 100
