"""A panel of synthetic volumes with known nucleus diameters, for size estimates.

Every ``bigseg.synth`` preset and the domain-randomised mode, nuclei 2-40
voxels across (x-y), z/xy anisotropy 1-8, sparse to crowded. The true
diameter is the median equivalent-sphere diameter of the nuclei whose centre
lies in the volume, measured whole: each volume is rendered with margins and
cropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["PANEL", "PanelCase", "PanelVolume", "make_panel_volume"]


@dataclass(frozen=True, slots=True)
class PanelCase:
    """``preset`` ("random" = domain-randomised) with nuclei ``d_vox`` x-y voxels across,
    z voxels ``anisotropy`` times the x-y voxel, ``fraction`` of the volume in nuclei."""

    preset: str
    d_vox: float
    anisotropy: float
    fraction: float
    seed: int = 0

    @property
    def name(self) -> str:
        return f"{self.preset} d={self.d_vox:g}vox z/xy={self.anisotropy:g} fill={self.fraction:g}"


@dataclass(frozen=True)
class PanelVolume:
    """A rendered case: image (Z, Y, X), labels, voxel size (µm) and true median diameter (µm)."""

    case: PanelCase
    image: np.ndarray
    labels: np.ndarray
    voxel_size: tuple[float, float, float]
    true_diameter_um: float


PANEL: tuple[PanelCase, ...] = (
    PanelCase("confocal", 3, 1, 0.05),
    PanelCase("confocal", 8, 2, 0.05),
    PanelCase("confocal", 16, 2, 0.1),
    PanelCase("confocal", 30, 2.2, 0.1),
    PanelCase("confocal", 40, 4, 0.1),
    PanelCase("lightsheet-organoid", 4, 1, 0.1),
    PanelCase("lightsheet-organoid", 12, 4, 0.1),
    PanelCase("lightsheet-organoid", 24, 7.7, 0.1),
    PanelCase("lightsheet-organoid", 36, 8, 0.1),
    PanelCase("lightsheet-organoid", 6, 2, 0.3),
    PanelCase("dense", 2.5, 1, 0.45),
    PanelCase("dense", 5, 2.2, 0.45),
    PanelCase("dense", 10, 2.2, 0.5),
    PanelCase("dense", 20, 2, 0.5),
    PanelCase("dense", 33, 2.2, 0.5),
    PanelCase("mesospim", 2, 1, 0.02),
    PanelCase("mesospim", 3, 1, 0.05),
    PanelCase("mesospim", 4, 1, 0.1),
    PanelCase("mesospim", 6, 2, 0.05),
    PanelCase("mesospim", 10, 3, 0.1),
    PanelCase("em-like", 4, 1, 0.4),
    PanelCase("em-like", 8, 1, 0.5),
    PanelCase("em-like", 14, 1, 0.5),
    PanelCase("em-like", 20, 2, 0.4),
    PanelCase("random", 3, 1, 0.0),
    PanelCase("random", 6, 2, 0.0, seed=1),
    PanelCase("random", 12, 4, 0.0, seed=2),
    PanelCase("random", 20, 1, 0.0, seed=3),
    PanelCase("random", 30, 6, 0.0, seed=4),
    PanelCase("random", 40, 8, 0.0, seed=5),
    PanelCase("random", 8, 1, 0.0, seed=6),
    PanelCase("random", 16, 3, 0.0, seed=7),
)


def _shape(case: PanelCase) -> tuple[int, int, int]:
    k = 6.0 if case.fraction < 0.1 else 4.5
    n_xy = int(min(max(math.ceil(k * case.d_vox), 48), 160))
    return (max(int(math.ceil(n_xy / case.anisotropy)), 12), n_xy, n_xy)


def _margin(case: PanelCase) -> tuple[int, int, int]:
    """Voxels rendered beyond each face: more than the largest nucleus' half-length (z stretch up to 1.7x)."""
    m_xy = int(math.ceil(0.8 * case.d_vox)) + 1
    return (int(math.ceil(0.8 * 1.7 * case.d_vox / case.anisotropy)) + 1, m_xy, m_xy)


def _true_diameter(labels: np.ndarray, margin: tuple[int, int, int], voxel_size: tuple[float, float, float]) -> float:
    """Median equivalent-sphere diameter of the nuclei whose centroid lies in the crop, measured whole
    in the rendering with margins (a crop's cut nuclei would bias it; so would keeping only the uncut
    ones, which favours the small nuclei of a volume only a few nuclei across)."""
    from scipy import ndimage as ndi

    ids, inverse, sizes = np.unique(labels, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(labels.shape)
    fg = ids > 0
    centres = np.array(ndi.center_of_mass(np.ones(labels.shape), inverse, np.flatnonzero(fg)))
    inside = np.all([(centres[:, ax] >= margin[ax] - 0.5) & (centres[:, ax] < labels.shape[ax] - margin[ax] - 0.5)
                     for ax in range(3)], axis=0)
    if int(inside.sum()) < 3:
        raise AssertionError(f"a panel volume needs at least 3 nuclei, got {int(inside.sum())}")
    diam = (6.0 * sizes[fg][inside] * math.prod(voxel_size) / math.pi) ** (1 / 3)
    return float(np.median(diam))


def make_panel_volume(case: PanelCase) -> PanelVolume:
    """Render one panel case (deterministic): the volume with margins, then its centre crop."""
    from bigseg.synth import PRESETS, RandomNucleiConfig, random_nuclei, synthesize

    shape, margin = _shape(case), _margin(case)
    big = tuple(s + 2 * m for s, m in zip(shape, margin))
    if case.preset == "random":
        a = max(int(round(case.anisotropy)), 1)
        iso = (big[0] * a, big[1], big[2])
        image, labels = random_nuclei(iso, seed=(11, case.seed), config=RandomNucleiConfig(diameter=case.d_vox))
        # A coarse z step: keep every a-th plane of the isotropic draw.
        image, labels = image[::a], labels[::a]
        voxel: tuple[float, float, float] = (float(a), 1.0, 1.0)
    else:
        params = PRESETS[case.preset]
        v = params.diameter_um / case.d_vox
        voxel = (case.anisotropy * v, v, v)
        image, labels = synthesize(big, preset=case.preset, voxel_size=voxel, seed=100 + case.seed,
                                   volume_fraction=case.fraction)
    crop = tuple(slice(m, m + s) for m, s in zip(margin, shape))
    return PanelVolume(case, np.asarray(image)[crop], np.asarray(labels)[crop], voxel,
                       _true_diameter(np.asarray(labels), margin, voxel))
