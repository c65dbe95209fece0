"""All parameters of the synthetic nuclei generator, in one frozen dataclass.

Physical quantities are in µm (``_um`` suffix) and refer to the sample, not to
voxels, so one parameter set renders the same tissue at any voxel size.
Intensities are in output units (grey values of the written image).
"""

from __future__ import annotations

import math
import dataclasses
from dataclasses import dataclass, fields
from typing import Any, Literal

from bigseg.errors import InputError
from bigseg.tiling import parse_triple, parse_voxel_size
from bigseg.synth._tissue import TISSUE_KINDS

__all__ = ["DTYPES", "SynthParams"]

DTYPES = ("uint8", "uint16", "float32")


# Former names of fields, for a message that names the new one.
_RENAMED = {"max_overlap": "max_intersection"}

# name -> (low, high, low inclusive, high inclusive); None = unbounded
_RANGES: dict[str, tuple[float | None, float | None, bool, bool]] = {
    "diameter_um": (0.0, None, False, True),
    "diameter_cv": (0.0, 0.5, True, True),
    "axis_sd": (0.0, 0.5, True, True),
    "irregularity": (0.0, 0.4, True, True),
    "axial_stretch": (0.0, 3.0, False, True),
    "volume_fraction": (0.0, 0.6, False, True),
    "max_intersection": (0.0, 0.5, True, True),
    "regularity": (0.0, 1.0, True, True),
    "clustering": (0.0, 2.0, True, True),
    "cluster_scale_um": (0.0, None, False, True),
    "background": (0.0, None, True, True),
    "intensity_cv": (0.0, 1.0, True, True),
    "texture": (0.0, 1.0, True, True),
    "texture_scale_um": (0.0, None, False, True),
    "background_texture": (0.0, 1.0, True, True),
    "background_texture_scale_um": (0.0, None, False, True),
    "haze": (0.0, 1.0, True, True),
    "stripes": (0.0, 0.9, True, True),
    "stripe_period_um": (0.0, None, False, True),
    "attenuation_um": (0.0, None, True, True),
    "blob_fraction": (0.0, 2.0, True, True),
    "blob_sigma_um": (0.0, None, False, True),
    "blob_intensity": (0.0, None, True, True),
    "photons_per_unit": (0.0, None, False, True),
    "read_noise": (0.0, None, True, True),
    "offset": (0.0, None, True, True),
    "outside_background": (0.0, None, True, True),
}


@dataclass(frozen=True, slots=True)
class SynthParams:
    """Everything that defines a synthetic volume, apart from its shape and seed.

    Attributes
    ----------
    voxel_size : (3,) tuple of float
        Voxel size in µm, (z, y, x).
    diameter_um : float
        Mean equivalent-sphere diameter of a nucleus, µm.
    diameter_cv : float
        Coefficient of variation of the diameter (log-normal, clipped at ±2.5 sd).
    axis_sd : float
        Standard deviation of the log semi-axes around the equivalent radius
        (0 = spheres; 0.15 gives typical axis ratios of about 1.3).
    irregularity : float
        Amplitude of the smooth low-order radial perturbation, as a fraction
        of the radius (0 = perfect ellipsoids).
    axial_stretch : float
        Apparent stretch of every nucleus along z (refractive-index mismatch
        makes confocal nuclei look taller than wide); applied to labels and
        image alike, after the random orientation. 1 = none.
    volume_fraction : float
        Fraction of the volume that candidate nuclei would fill; the realised
        fraction is lower where candidates are rejected for overlapping.
    regularity : float
        0 places candidates as a Poisson process (random, clumpy). Above 0,
        at most one candidate sits near each site of a lattice whose spacing
        gives ``volume_fraction``, jittered by ``1 - regularity`` of a site;
        use 0.3-0.7 for crowded tissue, which RSA alone cannot reach.
    max_intersection : float
        How deep two nuclei may interpenetrate along the line joining their
        centres, as a fraction of the smaller radius; deeper placements are
        rejected. Voxels in the shared part go to the nucleus whose surface
        is farther away, so touching nuclei meet along a smooth interface.
    clustering : float
        Strength (log-normal sd) of a smooth random density field modulating
        the number of nuclei; 0 = homogeneous.
    cluster_scale_um : float
        Correlation length of that density field, µm.
    background : float
        Background level before noise, output units.
    nucleus_intensity : float
        Mean nucleus intensity relative to the background; negative gives
        dark nuclei on a bright background (electron-microscopy-like).
    intensity_cv : float
        Coefficient of variation of the per-nucleus intensity.
    texture : float
        Relative amplitude of the chromatin-like texture inside nuclei.
    texture_scale_um : float
        Grain size (Gaussian sd) of that texture, µm.
    envelope : float
        Extra intensity at the nuclear rim (output units; negative = dark
        nuclear envelope).
    background_texture : float
        Relative amplitude of a texture on the background (cytoplasm, neuropil).
    background_texture_scale_um : float
        Grain size of the background texture, µm.
    psf_sigma_um : (3,) tuple of float
        Gaussian point-spread function sd (z, y, x), µm; 0 disables an axis.
    haze : float
        Out-of-focus light: peak of a wide glow around each nucleus, as a
        fraction of its intensity.
    haze_sigma_um : (3,) tuple of float
        Size (Gaussian sd, z, y, x) of the glow, µm.
    stripes : float
        Light-sheet stripe contrast (0 = none); stripes run along x and vary
        along y (and slowly along z).
    stripe_period_um : float
        Typical distance between stripes along y, µm.
    attenuation_um : float
        Length over which intensity falls by 1/e with depth along z, µm;
        0 = no attenuation.
    blob_fraction : float
        Bright non-nuclear blobs (debris, autofluorescence), per nucleus; they
        lie outside every nucleus and are never labelled.
    blob_sigma_um : float
        Blob size (Gaussian sd), µm.
    blob_intensity : float
        Blob peak intensity as a multiple of ``|nucleus_intensity|``.
    photons_per_unit : float
        Photons per output unit: the Poisson noise has variance
        ``signal / photons_per_unit`` (smaller = noisier).
    read_noise : float
        Gaussian camera noise sd, output units.
    offset : float
        Camera baseline added after the noise (not photons), output units.
    tissue : {"none", "ellipsoid", "brain"}
        Where the tissue is: everywhere ("none"), an ellipsoid filling the box
        (about 52 % of it) or a seeded brain-like blob (about 45 %). Outside it
        there are no nuclei or blobs, and the background is
        ``outside_background`` (a dark box with camera noise).
    outside_background : float
        Background level outside the tissue before noise, output units.
    dtype : {"uint8", "uint16", "float32"}
        Image data type; integer types are rounded and clipped.
    """

    voxel_size: tuple[float, float, float] = (1.0, 0.5, 0.5)
    diameter_um: float = 8.0
    diameter_cv: float = 0.12
    axis_sd: float = 0.1
    irregularity: float = 0.06
    axial_stretch: float = 1.0
    volume_fraction: float = 0.1
    max_intersection: float = 0.1
    regularity: float = 0.0
    clustering: float = 0.0
    cluster_scale_um: float = 50.0
    background: float = 100.0
    nucleus_intensity: float = 600.0
    intensity_cv: float = 0.25
    texture: float = 0.2
    texture_scale_um: float = 0.5
    envelope: float = 0.0
    background_texture: float = 0.0
    background_texture_scale_um: float = 1.0
    psf_sigma_um: tuple[float, float, float] = (0.8, 0.25, 0.25)
    haze: float = 0.05
    haze_sigma_um: tuple[float, float, float] = (6.0, 4.0, 4.0)
    stripes: float = 0.0
    stripe_period_um: float = 20.0
    attenuation_um: float = 0.0
    blob_fraction: float = 0.0
    blob_sigma_um: float = 1.0
    blob_intensity: float = 2.0
    photons_per_unit: float = 1.0
    read_noise: float = 2.0
    offset: float = 0.0
    tissue: str = "none"
    outside_background: float = 0.0
    dtype: Literal["uint8", "uint16", "float32"] = "uint16"

    def __post_init__(self) -> None:
        _set = object.__setattr__
        _set(self, "voxel_size", parse_voxel_size(self.voxel_size))
        _set(self, "psf_sigma_um", parse_triple(self.psf_sigma_um, name="psf_sigma_um", strict=False))
        _set(self, "haze_sigma_um", parse_triple(self.haze_sigma_um, name="haze_sigma_um"))
        for name, (lo, hi, lo_in, hi_in) in _RANGES.items():
            _set(self, name, _check_range(name, getattr(self, name), lo, hi, lo_in, hi_in))
        for name in ("nucleus_intensity", "envelope"):
            _set(self, name, _check_range(name, getattr(self, name), None, None, True, True))
        if self.tissue not in TISSUE_KINDS:
            raise InputError(f"`tissue` must be one of {', '.join(TISSUE_KINDS)}, got {self.tissue!r}")
        if self.dtype not in DTYPES:
            raise InputError(f"`dtype` must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        smallest = min(self.voxel_size)
        if self.diameter_um < smallest:
            raise InputError(
                f"`diameter_um` ({self.diameter_um} µm) is smaller than one voxel ({smallest} µm); "
                "use a smaller `voxel_size` or larger nuclei"
            )

    def updated(self, **overrides: Any) -> SynthParams:
        """These parameters with ``overrides`` (SynthParams fields) replaced, validated again."""
        unknown = sorted(set(overrides) - set(self.field_names()))
        if unknown:
            renamed = [f"`{k}` is now `{_RENAMED[k]}`" for k in unknown if k in _RENAMED]
            raise InputError(
                f"unknown synthetic parameter(s) {', '.join(unknown)}"
                + (f" ({'; '.join(renamed)})" if renamed else "")
                + f"; valid: {', '.join(self.field_names())}"
            )
        return dataclasses.replace(self, **overrides) if overrides else self

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """Names of all parameters, in declaration order."""
        return tuple(f.name for f in fields(cls))


def _check_range(
    name: str, value: Any, lo: float | None, hi: float | None, lo_in: bool, hi_in: bool
) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"`{name}` must be a number, got {value!r}")
    v = float(value)
    ok = math.isfinite(v)
    if lo is not None:
        ok = ok and (v >= lo if lo_in else v > lo)
    if hi is not None:
        ok = ok and (v <= hi if hi_in else v < hi)
    if not ok:
        left = "(-inf" if lo is None else ("[" if lo_in else "(") + f"{lo:g}"
        right = "inf)" if hi is None else f"{hi:g}" + ("]" if hi_in else ")")
        raise InputError(f"`{name}` must be in {left}, {right}, got {value!r}")
    return v
