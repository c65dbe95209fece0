"""Named parameter sets, one per imaging modality bigseg serves (the only place they live).

Each preset was set against a real volume in ``shared/data`` (see
``docs/synthetic.md`` and ``benchmarks/synth_vs_real.py``): voxel size from its
``meta.json``, nucleus diameter from its labels, intensities and noise from
its raw image.
"""

from __future__ import annotations

from typing import Any

from bigseg.errors import InputError
from bigseg.synth._params import SynthParams

__all__ = ["PRESETS", "preset"]

PRESETS: dict[str, SynthParams] = {
    # mesoSPIM light-sheet of a cleared mouse brain (CellSeg3D c5): 5 µm voxels,
    # sparse labelled neurons 2-3 voxels wide, elongated in z by the axial PSF,
    # strongly varying brightness, diffuse haze and faint stripes.
    "mesospim": SynthParams(
        voxel_size=(5.0, 5.26, 5.26),
        diameter_um=15.0,
        diameter_cv=0.2,
        axis_sd=0.1,
        irregularity=0.05,
        volume_fraction=0.009,
        max_intersection=0.1,
        clustering=0.3,
        cluster_scale_um=150.0,
        background=390.0,
        nucleus_intensity=2000.0,
        intensity_cv=0.6,
        texture=0.0,
        background_texture=0.04,
        background_texture_scale_um=20.0,
        psf_sigma_um=(10.0, 4.0, 4.0),
        haze=0.12,
        haze_sigma_um=(25.0, 4.0, 4.0),
        stripes=0.05,
        stripe_period_um=60.0,
        photons_per_unit=1.6,
        read_noise=2.0,
        dtype="float32",
    ),
    # Point-scanning confocal of sparse, large nuclei (mouse embryo, QCANet/BBBC050):
    # bright heterogeneous nuclei with granular chromatin, camera offset 100.
    "confocal": SynthParams(
        voxel_size=(1.75, 0.8, 0.8),
        diameter_um=14.5,
        axial_stretch=1.5,
        diameter_cv=0.15,
        axis_sd=0.1,
        irregularity=0.06,
        volume_fraction=0.015,
        max_intersection=0.05,
        background=10.0,
        nucleus_intensity=380.0,
        intensity_cv=0.6,
        texture=0.35,
        texture_scale_um=0.8,
        psf_sigma_um=(2.5, 0.4, 0.4),
        haze=0.08,
        haze_sigma_um=(12.0, 5.0, 5.0),
        photons_per_unit=0.1,
        read_noise=2.0,
        offset=95.0,
        dtype="uint16",
    ),
    # Live light-sheet organoid (LSTree), denoised and deconvolved: z step 7.7x the
    # pixel, nuclei clustered in an epithelium with empty lumen/matrix around.
    "lightsheet-organoid": SynthParams(
        voxel_size=(2.0, 0.26, 0.26),
        diameter_um=9.5,
        diameter_cv=0.1,
        axis_sd=0.3,
        irregularity=0.06,
        volume_fraction=0.015,
        max_intersection=0.1,
        clustering=2.0,
        cluster_scale_um=20.0,
        background=5.0,
        nucleus_intensity=28000.0,
        intensity_cv=0.1,
        texture=0.4,
        texture_scale_um=0.5,
        psf_sigma_um=(0.8, 0.2, 0.2),
        haze=0.02,
        haze_sigma_um=(6.0, 4.0, 4.0),
        stripes=0.15,
        stripe_period_um=15.0,
        attenuation_um=300.0,
        blob_fraction=0.3,
        blob_sigma_um=1.5,
        blob_intensity=0.1,
        photons_per_unit=0.05,
        read_noise=5.0,
        dtype="uint16",
    ),
    # Dense, touching plant nuclei imaged by confocal (GoNuclear ovule): small
    # nuclei elongated in z, low photon counts (very noisy), 8-bit.
    "dense": SynthParams(
        voxel_size=(0.2837, 0.1268, 0.1268),
        diameter_um=4.2,
        axial_stretch=1.3,
        diameter_cv=0.1,
        axis_sd=0.12,
        irregularity=0.08,
        volume_fraction=0.5,
        max_intersection=0.3,
        regularity=0.2,
        background=20.0,
        nucleus_intensity=35.0,
        intensity_cv=0.2,
        texture=0.3,
        texture_scale_um=0.3,
        background_texture=0.3,
        background_texture_scale_um=0.8,
        psf_sigma_um=(0.5, 0.15, 0.15),
        haze=0.2,
        haze_sigma_um=(3.0, 2.0, 2.0),
        photons_per_unit=0.2,
        read_noise=1.0,
        dtype="uint8",
    ),
    # Serial-section EM of a larval zebrafish brain downsampled to ~0.5 µm (NucMM-Z):
    # dark textured nuclei with a darker envelope, packed in bright textured neuropil.
    # No such volume in shared/data: ~170,000 nuclei in 0.1 mm³ (the NucMM paper) and a
    # mean radius of ~7 voxels set density and size; the voxel size is approximate.
    "em-like": SynthParams(
        voxel_size=(0.48, 0.51, 0.51),
        diameter_um=6.5,
        diameter_cv=0.12,
        axis_sd=0.1,
        irregularity=0.08,
        volume_fraction=0.5,
        max_intersection=0.25,
        regularity=0.2,
        background=170.0,
        nucleus_intensity=-60.0,
        intensity_cv=0.15,
        texture=0.25,
        texture_scale_um=0.5,
        envelope=-50.0,
        background_texture=0.2,
        background_texture_scale_um=0.6,
        psf_sigma_um=(0.25, 0.25, 0.25),
        haze=0.0,
        photons_per_unit=10.0,
        read_noise=6.0,
        dtype="uint8",
    ),
}


def preset(name: str, **overrides: Any) -> SynthParams:
    """The parameters of preset ``name``, with some fields replaced.

    Parameters
    ----------
    name : str
        A key of :data:`PRESETS`.
    **overrides
        Any :class:`SynthParams` field, e.g. ``voxel_size=(2, 1, 1)``.

    Raises
    ------
    InputError
        Unknown preset or field name, or an invalid value.
    """
    if name not in PRESETS:
        raise InputError(f"unknown synthetic preset {name!r}; valid presets: {', '.join(PRESETS)}")
    return PRESETS[name].updated(**overrides)
