"""Render one block of a synthetic volume: labels first, then the image.

A block is computed on its ROI widened to whole key cubes (``aligned``),
plus the PSF halo for the noise-free object image::

      obj_win ┌ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ┐   object image (nuclei, texture, haze,
              │ aligned ┌─────────┐ │   blobs) and labels, blurred by the PSF
                        │  roi    │     then cropped to `aligned`, where
              │         └─────────┘ │   attenuation, stripes and per-cube
              └ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ┘   noise are applied, then cropped to `roi`

Every value is a function of the global voxel position alone, so any block
equals the same ROI cut from the whole volume, bit for bit.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from bigseg.errors import InputError
from bigseg.synth._fields import KEY_CUBE, blur, key_cubes, gauss_radius, smooth_field
from bigseg.synth._params import SynthParams
from bigseg.synth._placement import NucleusSet, Placement
from bigseg.synth._tissue import tissue_inside
from bigseg.tiling import Roi, parse_shape

__all__ = ["render_labels", "synthesize_block", "validate_seed"]

logger = logging.getLogger(__name__)

TAG_TEXTURE = 11
TAG_BG_TEXTURE = 12
TAG_NOISE = 13
TAG_STRIPES = 14
_N_STRIPE_WAVES = 8


def validate_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"`seed` must be an int >= 0, got {seed!r}")
    return int(seed)


def synthesize_block(
    params: SynthParams, shape: tuple[int, int, int], roi: Roi, seed: int, *, placement: Placement | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Image and labels of ``roi`` within the synthetic volume ``(params, shape, seed)``.

    Parameters
    ----------
    params : SynthParams
    shape : (3,) tuple of int
        Shape of the whole volume, voxels (z, y, x).
    roi : Roi
        The block, inside the volume.
    seed : int
        Non-negative seed.
    placement : Placement, optional
        A cache of nuclei for the same ``(params, shape, seed)`` to reuse
        between blocks of one process.

    Returns
    -------
    image : (Z, Y, X) ndarray of ``params.dtype``
    labels : (Z, Y, X) ndarray of uint32
        0 = background; a nucleus has the same ID in every block. IDs are
        unique but not consecutive.
    """
    shape = parse_shape(shape, name="shape")  # type: ignore[assignment]
    seed = validate_seed(seed)
    volume = Roi((0, 0, 0), shape)
    if not isinstance(roi, Roi) or roi.ndim != 3 or not volume.contains(roi) or roi.empty:
        raise InputError(f"`roi` must be a non-empty Roi inside the volume {volume}, got {roi!r}")
    if placement is None:
        placement = Placement(params, shape, seed)
    elif (placement.params, placement.shape, placement.seed) != (params, shape, seed):
        raise InputError("`placement` was built for different params, shape or seed")
    aligned = _align(roi, volume)
    vs = params.voxel_size
    psf_vox = tuple(s / v for s, v in zip(params.psf_sigma_um, vs))
    obj_win = aligned.grow(tuple(gauss_radius(s) for s in psf_vox))
    haze_um = 3 * max(params.haze_sigma_um) if params.haze > 0 else 0.0
    nuclei = placement.nuclei_near(obj_win, margin_um=haze_um)
    labels, rho = render_labels(nuclei, obj_win, params)
    obj = _object_image(params, shape, seed, obj_win, nuclei, labels, rho)
    _add_spots(obj, obj_win, nuclei.centre, _haze_sigmas(params, len(nuclei)), _haze_peaks(params, nuclei), vs)
    blob_c, blob_s, blob_p = placement.blobs_near(obj_win)
    _add_spots(obj, obj_win, blob_c, np.repeat(blob_s[:, None], 3, axis=1), blob_p * abs(params.nucleus_intensity), vs)
    signal = blur(obj, psf_vox)[aligned.relative_to(obj_win)]
    signal *= _illumination(params, seed, aligned)
    image = _add_noise(params, seed, signal, aligned)
    cut = roi.relative_to(aligned)
    logger.debug("synthesized %s: %d nuclei near the block", roi, len(nuclei))
    return image[cut], labels[roi.relative_to(obj_win)].astype(np.uint32)


def _align(roi: Roi, volume: Roi) -> Roi:
    lo = tuple((o // KEY_CUBE) * KEY_CUBE for o in roi.offset)
    hi = tuple(-(-e // KEY_CUBE) * KEY_CUBE for e in roi.end)
    return Roi(lo, tuple(h - l for l, h in zip(lo, hi))).intersect(volume)


def _axes_um(win: Roi, centre: np.ndarray, vs: tuple[float, ...]) -> list[np.ndarray]:
    """Offsets (µm) of the window's voxel centres from ``centre`` along z, y, x, broadcastable."""
    out = []
    for axis in range(3):
        coords = np.arange(win.offset[axis], win.end[axis], dtype=np.float64)
        d = (coords - centre[axis]) * vs[axis]
        shp = [1, 1, 1]
        shp[axis] = d.size
        out.append(d.reshape(shp))
    return out


def _box(centre: np.ndarray, reach_vox: np.ndarray, win: Roi) -> Roi:
    lo = np.floor(centre - reach_vox).astype(np.int64)
    hi = np.ceil(centre + reach_vox).astype(np.int64) + 1
    return Roi(tuple(lo), tuple(hi - lo)).intersect(win)


def render_labels(nuclei: NucleusSet, win: Roi, params: SynthParams) -> tuple[np.ndarray, np.ndarray]:
    """Instance labels over ``win`` and each labelled voxel's normalised radius.

    A voxel centre belongs to nucleus ``i`` when its normalised radius
    ``rho_i = |d|_ellipsoid / (1 + perturbation)`` is < 1; where several
    nuclei claim it, the smallest ``rho`` wins (ties: the smaller ID).

    Returns
    -------
    labels : (Z, Y, X) ndarray of int64
    rho : (Z, Y, X) ndarray of float64, ``inf`` outside nuclei
    """
    vs = np.asarray(params.voxel_size)
    labels = np.zeros(win.shape, dtype=np.int64)
    best = np.full(win.shape, np.inf)
    for i in range(len(nuclei)):
        box = _box(nuclei.centre[i], nuclei.bound_um[i] / vs, win)
        if box.empty:
            continue
        dz, dy, dx = _axes_um(box, nuclei.centre[i], params.voxel_size)
        a = nuclei.inv[i]
        q = a[0, 0] * dz**2 + a[1, 1] * dy**2 + a[2, 2] * dx**2
        q = q + 2 * (a[0, 1] * dz * dy + a[0, 2] * dz * dx + a[1, 2] * dy * dx)
        cand = q < (1 + params.irregularity) ** 2
        if not cand.any():
            continue
        rho = np.full(box.shape, np.inf)
        rho[cand] = np.sqrt(q[cand]) / (1 + _perturb_at(nuclei, i, dz, dy, dx, cand, params.irregularity))
        sl = box.relative_to(win)
        win_best = best[sl]
        take = (rho < 1) & (rho < win_best)
        win_best[take] = rho[take]
        labels[sl][take] = nuclei.ids[i]
    return labels, best


def _perturb_at(
    nuc: NucleusSet, i: int, dz: np.ndarray, dy: np.ndarray, dx: np.ndarray, mask: np.ndarray, irr: float
) -> np.ndarray:
    """Radial perturbation of nucleus ``i`` at the voxels ``mask`` of its box (1-D float64)."""
    if irr == 0:
        return np.zeros(int(mask.sum()))
    full = [np.broadcast_to(d, mask.shape)[mask] for d in (dz, dy, dx)]
    norm = np.sqrt(full[0] ** 2 + full[1] ** 2 + full[2] ** 2)
    norm[norm == 0] = 1.0
    out = np.zeros(norm.shape)
    for j in range(nuc.wave_dir.shape[1]):
        v = nuc.wave_dir[i, j]
        t = (v[0] * full[0] + v[1] * full[1] + v[2] * full[2]) / norm
        out += nuc.wave_weight[i, j] * np.cos(nuc.wave_freq[i, j] * t + nuc.wave_phase[i, j])
    return out


def _object_image(
    p: SynthParams, shape: tuple[int, int, int], seed: int, win: Roi, nuclei: NucleusSet, labels: np.ndarray,
    rho: np.ndarray,
) -> np.ndarray:
    """Noise-free, unblurred intensity over ``win`` (float64)."""
    vs = p.voxel_size
    obj = np.full(win.shape, p.background, dtype=np.float64)
    if p.tissue != "none":
        z, y, x = (np.arange(o, e, dtype=np.float64) for o, e in zip(win.offset, win.end))
        tissue = tissue_inside(p.tissue, shape, seed, z[:, None, None], y[None, :, None], x[None, None, :])
        obj[~tissue] = p.outside_background
    if p.background_texture > 0:
        sig = tuple(p.background_texture_scale_um / v for v in vs)
        obj *= np.maximum(1.0 + p.background_texture * smooth_field(seed, TAG_BG_TEXTURE, win, sig), 0.0)
    inside = labels > 0
    if not inside.any():
        return obj
    idx = np.searchsorted(nuclei.ids, labels[inside])
    value = p.nucleus_intensity * nuclei.brightness[idx]
    if p.texture > 0:
        sig = tuple(p.texture_scale_um / v for v in vs)
        tex = smooth_field(seed, TAG_TEXTURE, win, sig)[inside]
        value = value * np.maximum(1.0 + p.texture * tex, 0.0)
    if p.envelope != 0:
        value = value + p.envelope * rho[inside] ** 8
    obj[inside] = np.maximum(p.background + value, 0.0)
    return obj


def _haze_sigmas(p: SynthParams, n: int) -> np.ndarray:
    return np.tile(np.asarray(p.haze_sigma_um), (n, 1))


def _haze_peaks(p: SynthParams, nuclei: NucleusSet) -> np.ndarray:
    if p.haze == 0:
        return np.zeros(len(nuclei))
    return p.haze * p.nucleus_intensity * nuclei.brightness


def _add_spots(
    obj: np.ndarray, win: Roi, centre: np.ndarray, sigma_um: np.ndarray, peak: np.ndarray, vs: tuple[float, ...]
) -> None:
    """Add separable Gaussian spots (truncated at 3 sd) to ``obj`` in place, in the given order."""
    for i in range(centre.shape[0]):
        if peak[i] == 0:
            continue
        box = _box(centre[i], 3 * sigma_um[i] / np.asarray(vs), win)
        if box.empty:
            continue
        dz, dy, dx = _axes_um(box, centre[i], vs)
        gz, gy, gx = (np.exp(-0.5 * (d / s) ** 2) for d, s in zip((dz, dy, dx), sigma_um[i]))
        obj[box.relative_to(win)] += peak[i] * gz * gy * gx


def _illumination(p: SynthParams, seed: int, win: Roi) -> np.ndarray:
    """Multiplicative attenuation (along z) and light-sheet stripes (constant along x)."""
    z = np.arange(win.offset[0], win.end[0], dtype=np.float64)[:, None, None] * p.voxel_size[0]
    y = np.arange(win.offset[1], win.end[1], dtype=np.float64)[None, :, None] * p.voxel_size[1]
    out = np.ones((win.shape[0], win.shape[1], 1))
    if p.attenuation_um > 0:
        out = out * np.exp(-z / p.attenuation_um)
    if p.stripes > 0:
        rng = np.random.default_rng([seed, TAG_STRIPES])
        period = p.stripe_period_um * np.exp(rng.uniform(-0.7, 0.7, _N_STRIPE_WAVES))
        tilt = rng.normal(0.0, 0.05, _N_STRIPE_WAVES)
        phase = rng.uniform(0, 2 * math.pi, _N_STRIPE_WAVES)
        s = np.zeros((win.shape[0], win.shape[1], 1))
        for j in range(_N_STRIPE_WAVES):
            s = s + np.cos(2 * math.pi * (y + tilt[j] * z) / period[j] + phase[j])
        # mostly bright with narrow dark shadows, as behind absorbers in a light sheet
        shadow = np.clip(-s / math.sqrt(_N_STRIPE_WAVES / 2) - 0.5, 0.0, None)
        out = out * (1.0 - p.stripes * np.minimum(shadow, 1.0))
    return out


def _add_noise(p: SynthParams, seed: int, signal: np.ndarray, win: Roi) -> np.ndarray:
    """Poisson-Gaussian noise drawn key cube by key cube, then cast to ``p.dtype``."""
    out = np.empty(win.shape, dtype=np.float64)
    for idx, cube in key_cubes(win):
        part = cube.intersect(win)  # ``win`` is cube-aligned except at the volume end
        sl = part.relative_to(win)
        rng = np.random.default_rng([seed, TAG_NOISE, *idx])
        lam = np.maximum(signal[sl], 0.0) * p.photons_per_unit
        noisy = rng.poisson(lam) / p.photons_per_unit
        if p.read_noise > 0:
            noisy = noisy + p.read_noise * rng.standard_normal(part.shape)
        out[sl] = noisy + p.offset
    if p.dtype == "float32":
        return out.astype(np.float32)
    top = np.iinfo(p.dtype).max
    return np.clip(np.rint(out), 0, top).astype(p.dtype)
