"""Generator statistics match what was asked; labels are exact; presets are sane."""

from __future__ import annotations

import math

import cc3d
import numpy as np
import pytest

from bigseg.synth import PRESETS, SynthParams, preset, synthesize, truth_stats
from bigseg.synth._placement import Placement
from bigseg.tiling import Roi

# shapes only (no blur, no texture) so that the labels are all that is measured
PLAIN = dict(texture=0.0, haze=0.0, psf_sigma_um=(0.0, 0.0, 0.0), diameter_cv=0.12, axis_sd=0.1, irregularity=0.05)


def test_sparse_statistics_match_the_parameters() -> None:
    vs, d, vf = (0.75, 0.75, 0.75), 6.0, 0.03
    shape = (64, 128, 256)
    _, labels = synthesize(shape, preset=SynthParams(voxel_size=vs, diameter_um=d, volume_fraction=vf,
                                                     max_intersection=0.0, **PLAIN), seed=0)
    st = truth_stats(labels, vs, exclude_border=True)
    # candidates: vf / E[nucleus volume] per µm³, over the volume grown by one diameter (cut
    # nuclei count too); random sequential addition with max_intersection=0 keeps about
    # exp(-4 vf) of them (excluded volume 8x a nucleus, half of the neighbours rank higher)
    mean_vol = math.pi / 6 * d**3 * (1 + 0.12**2) ** 3
    expected = vf / mean_vol * math.prod(s * v + d for s, v in zip(shape, vs)) * math.exp(-4 * vf)
    assert st["count"] == pytest.approx(expected, rel=0.15)
    assert st["volume_fraction"] == pytest.approx(vf * math.exp(-4 * vf), rel=0.15)
    assert st["n_measured"] >= 100
    assert st["median_diameter_um"] == pytest.approx(d, rel=0.06)
    diam = st["diameters_um"]
    assert diam.std() / diam.mean() == pytest.approx(0.12, abs=0.03)
    assert st["touching_fraction"] <= 0.1  # max_intersection=0: at most grazing contacts


def test_crowded_tissue_touches() -> None:
    vs = (0.5, 0.5, 0.5)
    p = SynthParams(voxel_size=vs, diameter_um=6.0, volume_fraction=0.4, max_intersection=0.25, regularity=0.6, **PLAIN)
    _, labels = synthesize((64, 96, 96), preset=p, seed=1)
    st = truth_stats(labels, vs, exclude_border=True)
    assert st["touching_fraction"] >= 0.6
    assert st["volume_fraction"] >= 0.2
    # the overlap rule keeps nuclei whole enough to look like themselves
    assert st["median_diameter_um"] == pytest.approx(6.0, rel=0.1)


def test_clustering_makes_density_uneven() -> None:
    def unevenness(clustering: float) -> float:
        p = SynthParams(voxel_size=(1, 1, 1), diameter_um=5.0, volume_fraction=0.05, clustering=clustering,
                        cluster_scale_um=20.0, **PLAIN)
        _, labels = synthesize((32, 128, 128), preset=p, seed=0)
        fg = (labels > 0).reshape(32, 8, 16, 8, 16).mean(axis=(0, 2, 4))  # 64 columns of 16 x 16 µm
        return float(fg.std() / fg.mean())

    assert unevenness(1.0) > 1.4 * unevenness(0.0)


def test_labels_are_exact() -> None:
    vs = (0.5, 0.5, 0.5)
    p = SynthParams(voxel_size=vs, diameter_um=6.0, volume_fraction=0.35, max_intersection=0.3, regularity=0.5,
                    axis_sd=0.2, irregularity=0.2)
    shape = (48, 64, 64)
    _, labels = synthesize(shape, preset=p, seed=2)
    ids = np.unique(labels[labels > 0])
    # one connected piece per nucleus (6-connectivity, label values kept apart)
    _, n_pieces = cc3d.connected_components(labels, connectivity=6, return_N=True)
    assert n_pieces == ids.size
    # each whole nucleus keeps most of its ellipsoid: overlaps are only shaved off
    nuclei = Placement(p, shape, 2).nuclei_near(Roi((0, 0, 0), shape))
    sizes = dict(zip(*np.unique(labels, return_counts=True)))
    inner = [i for i in range(len(nuclei)) if np.all(nuclei.centre[i] - nuclei.bound_um[i] / 0.5 > 0)
             and np.all(nuclei.centre[i] + nuclei.bound_um[i] / 0.5 < np.array(shape) - 1)]
    assert len(inner) >= 5
    kept = [sizes.get(int(nuclei.ids[i]), 0) * 0.125 / (4 / 3 * math.pi * nuclei.axes[i].prod()) for i in inner]
    assert min(kept) >= 0.7 and np.median(kept) >= 0.85


def test_bright_blobs_stay_unlabelled() -> None:
    p = preset("confocal", voxel_size=(1.0, 0.5, 0.5), diameter_um=6.0, volume_fraction=0.2, blob_fraction=1.0,
               blob_intensity=3.0, blob_sigma_um=1.0, photons_per_unit=50.0, psf_sigma_um=(0.5, 0.3, 0.3), haze=0.0,
               dtype="float32")
    shape = (32, 64, 64)
    image, labels = synthesize(shape, preset=p, seed=5)
    centre, sigma, peak = Placement(p, shape, 5).blobs_near(Roi((0, 0, 0), shape))
    vox = np.rint(centre).astype(int)
    inside = np.all((vox >= 0) & (vox < shape), axis=1)
    assert inside.sum() >= 3
    grid = np.stack(np.meshgrid(*(np.arange(s) for s in shape), indexing="ij"), axis=-1)
    for c, s in zip(centre[inside], sigma[inside]):
        d = np.linalg.norm((grid - c) * np.asarray(p.voxel_size), axis=-1)
        assert not labels[d <= 2 * s].any()  # the blob's bright core is background
    bright = image[tuple(vox[inside].T)]
    assert np.all(bright > p.background + 1.0 * p.nucleus_intensity)  # peaks are 3x a nucleus (1.3x at -2 sd)


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_make_sane_volumes(name: str) -> None:
    p = preset(name, clustering=0.0)  # an even density, so that a small volume is never empty
    # a cube holding about 8 nuclei at the preset's density, in the preset's voxels
    side_um = (8 * math.pi / 6 * p.diameter_um**3 * p.axial_stretch / p.volume_fraction) ** (1 / 3)
    shape = tuple(max(16, math.ceil(side_um / v)) for v in p.voxel_size)
    image, labels = synthesize(shape, preset=p, seed=0)
    assert image.shape == labels.shape == shape and image.dtype == np.dtype(p.dtype)
    assert np.isfinite(image).all()
    n = np.unique(labels[labels > 0]).size
    assert n >= 3
    fg, bg = image[labels > 0].mean(), image[labels == 0].mean()
    # nuclei stand out from the background in the preset's direction (dark nuclei for em-like)
    assert np.sign(fg - bg) == np.sign(p.nucleus_intensity)
    assert abs(fg - bg) > 0.15 * abs(p.nucleus_intensity)
