"""Voronoi-Otsu pure functions: whole-volume Otsu from histograms, sigmas, seeds and flood."""

from __future__ import annotations

import numpy as np
import pytest

from bigseg.decode import (
    HISTOGRAM_BINS,
    gaussian_support,
    otsu_from_histogram,
    outline_histogram,
    smooth,
    voronoi_otsu,
    voronoi_sigmas,
)
from bigseg.errors import InputError


def test_histogram_otsu_matches_skimage_on_the_same_values() -> None:
    from skimage.filters import threshold_otsu

    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(0.2, 0.05, 4000), rng.normal(0.8, 0.05, 1000)]).clip(0, 1)
    thr = otsu_from_histogram(outline_histogram(values))
    assert abs(thr - threshold_otsu(values)) < 2 / HISTOGRAM_BINS  # bin width, written down
    assert otsu_from_histogram(np.zeros(HISTOGRAM_BINS, np.int64)) == 1.0  # flat: nothing is foreground


def test_sigmas_from_diameter_and_um() -> None:
    spot, outline = voronoi_sigmas(8.0, (2.0, 1.0, 1.0))
    assert spot == (1.0, 2.0, 2.0) and outline == (0.5, 1.0, 1.0)
    spot, _ = voronoi_sigmas(8.0, (1.0, 1.0, 1.0), spot_sigma_um=3.0)
    assert spot == (3.0, 3.0, 3.0)
    assert gaussian_support((1.0, 2.0, 0.0)) == (3, 6, 0)
    with pytest.raises(InputError, match=r"`spot_sigma_um` must be >= 0 µm, got -1"):
        voronoi_sigmas(8.0, (1, 1, 1), spot_sigma_um=-1.0)


def test_two_touching_blobs_get_two_labels_and_background_none() -> None:
    fg = np.zeros((20, 20, 40), np.float32)
    zz, yy, xx = np.mgrid[:20, :20, :40]
    for cx in (13, 25):
        fg[(zz - 10) ** 2 + (yy - 10) ** 2 + (xx - cx) ** 2 <= 36] = 1.0
    spot, outline = voronoi_sigmas(12.0, (1, 1, 1))
    labels = voronoi_otsu(fg, spot, outline)
    assert len(np.unique(labels[labels > 0])) == 2
    assert labels[0, 0, 0] == 0 and labels[10, 10, 13] != labels[10, 10, 25]


def test_smooth_does_not_modify_its_input() -> None:
    fg = np.random.default_rng(1).random((8, 8, 8)).astype(np.float32)
    before = fg.copy()
    smooth(fg, (1.0, 1.0, 1.0))
    np.testing.assert_array_equal(fg, before)
