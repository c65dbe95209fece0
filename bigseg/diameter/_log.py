"""Nucleus diameter from image evidence alone: scale-normalised LoG scale selection.

A bright blob of radius ``r`` gives the strongest scale-normalised Laplacian-
of-Gaussian response ``-σ² ∇²(G_σ * I)`` at its centre at ``σ ≈ r / √3``
(Lindeberg's scale selection), whatever model later segments it. So::

    image (µm grid) -> isotropic working grid (half the finest voxel, within a budget)
    -> R_σ for σ on a geometric grid (4 per octave; coarser grids for larger σ)
    -> blobs: maxima of R over space and scale, 10 sd above the pixel noise's response at their scale
       (computed through the same resampling and filters: :mod:`bigseg.diameter._noise`)
    -> largest first: a blob holding two stronger smaller ones is a cluster (dropped);
       otherwise the smaller blobs inside it (chromatin grains, noise) are dropped
    -> blobs weaker than 0.3 x the 90th percentile of the kept ones are left out (after the pruning,
       so that grains inside nuclei do not set the bar for the nuclei)
    -> histogram of the blobs' log diameters (3σ), weighted by response x σ³; blobs under 1/1.8 of
       its leading size inside nucleus-sized bright regions (those nuclei's texture) are dropped
       and it is made again
    -> refuse: too few blobs, blobs only at the finest scale, a leading mode of fewer than 4 blobs
       (one bright region is not a nucleus size), a leading mode at the coarsest scale (a response
       still growing there: smooth background structure, :func:`_at_coarsest_scale`), or two strong
       modes (two populations)
    -> one clear mode: measured, not read off σ: the median equivalent-sphere diameter of its
       blobs' half-maximum regions (:func:`_refine`; σ per diameter depends on blur, crowding, texture);
       a region cut by the image's faces is measured from its whole half where few whole ones remain;
       where the blobs' axial profiles are nearly a Gaussian's (the image blur-limited along z,
       :mod:`bigseg.diameter._blur`), from each blob's true peak in the unsmoothed image, z no longer
       than across

A stored volume (:func:`bigseg.diameter._volume.volume_log_diameter`) is examined on the working
grid its whole image would get, read within a bounded memory: the whole pyramid level where it
fits one read, else up to 4 boxes of it (the brightest tiles), whose blobs are pooled
(:func:`_evidence` per read, :func:`_decide` on them all).

It refuses rather than guesses (:class:`AmbiguousDiameterError`, with the
candidates and the evidence): the caller asks the user for ``--diameter``.
All lengths are µm unless named ``_vox``. The constants were set on
synthetic volumes only (``bigseg.testing._diameter_panel``: every preset and
the domain-randomised mode, nuclei 2-40 voxels across, z/xy anisotropy 1-8,
sparse to crowded; ``benchmarks/diameter_panel.py`` prints the table).
Known limits: dark nuclei on a bright background (the ``em-like`` preset)
are out of scope (the bright blobs there are the neuropil): an image
without a bright intensity tail is refused. Past a blur of half the nuclei's
radius a blob's profile is a Gaussian's, so blur and size cannot be separated:
a blur-limited image (mesoSPIM: 4 µm sd across and 10 µm along z for 15 µm
nuclei, read 1.06-1.13x) is read with the isotropic prior along z, and a
nucleus truly longer in z there is read short.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from bigseg.diameter._blur import BLUR_LIMITED_Q, core_peak
from bigseg.diameter._noise import noise_response_sd, pixel_noise_sd
from bigseg.errors import InputError

__all__ = ["AmbiguousDiameterError", "BlobScale", "LogDiameterEstimate", "log_diameter"]

logger = logging.getLogger(__name__)

Size3 = tuple[float, float, float]

# Voxels of the isotropic working grid (the image is resampled to at most this many).
_WORK_VOXELS = 2**21
# Scales per octave, and the smallest scale in working voxels (a blob ~2.4 voxels across).
_PER_OCTAVE = 4
_SIGMA0_VOX = 0.7
# A blob must stand this many standard deviations of the pixel noise's response above it
# (:mod:`bigseg.diameter._noise`).
_MIN_SIGNIFICANCE = 10.0
# Diameter of the equivalent sphere per selected σ (calibrated on synthetic volumes).
_D_PER_SIGMA = 3.0
# Two modes of the size histogram at least this factor apart, the weaker holding at least
# this share of the stronger's weight, are two populations: ambiguous.
_MODE_FACTOR = 1.8
_MODE_SHARE = 0.35
# A size within this factor of the finest or the coarsest scale examined sits at that edge of the scale range.
_SCALE_EDGE = 1.15
# At least this many blobs are needed to speak of a typical size.
_MIN_BLOBS = 4
# ... and a rival population this many.
_MIN_RIVAL = 4
# At most this many blobs are pruned (the strongest).
_MAX_BLOBS = 20000
# Blobs weaker than this fraction of the 90th percentile of blob responses are left out.
_GATE = 0.3
# Bright nuclei on a darker background give the intensities a bright tail: (p99.9 - p50) / (p50 - p0.1)
# is 1.7-5700 on the synthetic fluorescence panel (11.6 for a 0.3 % mesoSPIM fill) and 0.77-0.98 on
# the em-like volumes (dark nuclei on bright neuropil, where the bright blobs measured are the
# neuropil). Below this: refuse.
_MIN_TAIL = 1.25


class AmbiguousDiameterError(InputError):
    """The image does not show one clear nucleus size; ``candidates`` lists what it shows (µm).

    ``too_fine`` is True where the strongest structure sat at the finest scale
    examined (a finer resolution level may show it).
    """

    def __init__(self, message: str, candidates: tuple[float, ...] = (), *, too_fine: bool = False) -> None:
        super().__init__(message)
        self.candidates = candidates
        self.too_fine = too_fine


@dataclass(frozen=True, slots=True)
class BlobScale:
    """One histogram mode: ``diameter_um`` of ``n_blobs`` blobs holding ``weight`` of the response."""

    diameter_um: float
    n_blobs: int
    weight: float


@dataclass(frozen=True, slots=True)
class LogDiameterEstimate:
    """A diameter from LoG scale selection, with its evidence.

    Attributes
    ----------
    diameter_um : float
        Equivalent-sphere diameter of a typical nucleus, µm.
    modes : tuple of BlobScale
        The modes of the blob-size histogram, strongest first: the first with the measured
        diameter (the estimate's), the others with their LoG size (3σ).
    n_blobs : int
        Significant blobs found.
    work_voxel_um : float
        Voxel size of the isotropic working grid, µm.
    seconds : float
        Wall time (not compared).
    blur_limited : bool
        The blobs' axial profiles showed the image blur-limited along z, and they were measured as
        such (:mod:`bigseg.diameter._blur`).
    axial_shape : float or None
        The evidence for it: the measured blobs' median r75/r50 along z (a Gaussian blob's is 0.644,
        a sharp ball's near 1); None where fewer than 4 blobs gave it.
    """

    diameter_um: float
    modes: tuple[BlobScale, ...]
    n_blobs: int
    work_voxel_um: float
    seconds: float = field(default=0.0, compare=False)
    blur_limited: bool = False
    axial_shape: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (for the run's metadata)."""
        return {
            "method": "log-scale-selection", "diameter_um": round(self.diameter_um, 3), "n_blobs": self.n_blobs,
            "work_voxel_um": round(self.work_voxel_um, 4), "seconds": round(self.seconds, 2),
            "blur_limited": self.blur_limited,
            "axial_shape": None if self.axial_shape is None else round(self.axial_shape, 3),
            "modes": [[round(m.diameter_um, 3), m.n_blobs, round(m.weight, 3)] for m in self.modes],
        }


def _validate(image: np.ndarray, voxel_size: Any) -> Size3:
    if not isinstance(image, np.ndarray) or image.ndim != 3:
        raise InputError(f"`image` must be a 3D (Z, Y, X) array, got {getattr(image, 'shape', type(image).__name__)}")
    try:
        vs = tuple(float(v) for v in voxel_size)
    except TypeError:
        raise InputError(f"`voxel_size` must be 3 numbers (z, y, x) in µm, got {voxel_size!r}") from None
    if len(vs) != 3 or not all(math.isfinite(v) and v > 0 for v in vs):
        raise InputError(f"`voxel_size` must be 3 finite numbers > 0 (z, y, x) in µm, got {voxel_size!r}")
    if min(image.shape) < 4:
        raise InputError(f"`image` (shape {image.shape}) must be at least 4 voxels along every axis")
    if not np.isfinite(image).all():
        raise InputError("`image` holds NaN or infinite values; replace them before estimating the diameter")
    return vs  # type: ignore[return-value]


def _work_voxel(shape: tuple[int, ...], voxel_size: Size3) -> float:
    """The working grid's voxel (µm) for an image of ``shape`` voxels of ``voxel_size`` µm: half the
    finest voxel (small nuclei need sub-voxel scales), coarsened until the image fits ``_WORK_VOXELS``."""
    extent = [n * v for n, v in zip(shape, voxel_size)]
    return max(min(voxel_size) / 2, (math.prod(extent) / _WORK_VOXELS) ** (1 / 3))


def _isotropic(image: np.ndarray, voxel_size: Size3, work: float) -> np.ndarray:
    """``image`` linearly resampled to cubic voxels of ``work`` µm."""
    zoom = [v / work for v in voxel_size]
    img = image.astype(np.float32)
    for ax, z in enumerate(zoom):
        if z < 1:  # anti-alias before shrinking an axis
            img = ndi.gaussian_filter1d(img, (1 / z - 1) / 2, axis=ax, mode="nearest")
    out = ndi.zoom(img, zoom, order=1, mode="nearest", grid_mode=True)
    return out.astype(np.float32)


def _grid_factor(s: float, shape: tuple[int, ...]) -> int:
    """The power of 2 by which the working grid (``shape``) is coarsened for scale ``s`` (working voxels):
    σ stays >= 1 voxel and the grid >= 8 voxels."""
    f = 1
    while s / (2 * f) >= 1.0 and min(shape) // (2 * f) >= 8:
        f *= 2
    return f


def _responses(work: np.ndarray, sigmas_vox: np.ndarray) -> list[tuple[np.ndarray, int]]:
    """``-σ² ∇²G_σ * work`` per scale, each on a grid coarsened by a power of 2 (:func:`_grid_factor`)."""
    grids: dict[int, np.ndarray] = {1: work}
    out = []
    for s in sigmas_vox:
        f = _grid_factor(float(s), work.shape)
        if f not in grids:
            prev = grids[f // 2]
            n = [m // 2 for m in prev.shape]
            grids[f] = prev[: 2 * n[0], : 2 * n[1], : 2 * n[2]].reshape(n[0], 2, n[1], 2, n[2], 2).mean(axis=(1, 3, 5))
        sf = s / f
        out.append(((-(sf**2) * ndi.gaussian_laplace(grids[f], sf, mode="nearest")).astype(np.float32), f))
    return out


def _sample(resp: np.ndarray, f: int, pos: np.ndarray) -> np.ndarray:
    """``resp`` (on a grid coarser by ``f``) at working-grid positions ``pos``, linearly interpolated."""
    coords = (pos + 0.5) / f - 0.5
    return ndi.map_coordinates(resp, coords.T, order=1, mode="nearest")


def _blobs(work: np.ndarray, sigmas_vox: np.ndarray, noise: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scale-space maxima above the noise (``noise``: the sd of its response per scale): (positions in
    working voxels, σ in working voxels, response)."""
    resp = _responses(work, sigmas_vox)
    pos_l, sig_l, val_l = [], [], []
    for k, (r, f) in enumerate(resp):
        s = sigmas_vox[k]
        floor = _MIN_SIGNIFICANCE * noise[k]
        peaks = (r == ndi.maximum_filter(r, size=3, mode="nearest")) & (r > floor)
        idx = np.argwhere(peaks)
        if idx.size == 0:
            continue
        pos = (idx + 0.5) * f - 0.5
        val = r[tuple(idx.T)]
        keep = np.ones(len(idx), bool)
        for j in (k - 1, k + 1):  # a maximum over scale as well
            if 0 <= j < len(resp):
                keep &= val >= _sample(resp[j][0], resp[j][1], pos)
        pos_l.append(pos[keep])
        sig_l.append(np.full(int(keep.sum()), s))
        val_l.append(val[keep])
    if not pos_l:
        return np.zeros((0, 3)), np.zeros(0), np.zeros(0)
    return np.concatenate(pos_l), np.concatenate(sig_l), np.concatenate(val_l)


def _prune(pos: np.ndarray, sig: np.ndarray, val: np.ndarray) -> np.ndarray:
    """Indices of the blobs kept, largest first: a blob holding two or more stronger (``val``) smaller
    blobs is a cluster of them and is dropped; otherwise it is kept and the smaller blobs whose
    centres it holds (radius √3 σ: chromatin grains, noise inside a nucleus) are dropped."""
    order = np.lexsort((-val, -sig))
    alive = np.ones(len(sig), bool)
    kept: list[int] = []
    for i in order:
        if not alive[i]:
            continue
        r = math.sqrt(3) * sig[i]
        inside = (np.linalg.norm(pos - pos[i], axis=1) < r) & (sig < sig[i]) & alive
        if int(np.count_nonzero(inside & (val >= val[i]))) >= 2:
            alive[i] = False
            continue
        kept.append(int(i))
        alive[inside] = False
        alive[i] = False
    return np.array(kept, dtype=np.intp)


def _modes(log_d: np.ndarray, weight: np.ndarray) -> list[BlobScale]:
    """Modes of the weighted histogram of log diameters (bins of 1/8 octave, smoothed over ±1/4 octave)."""
    step = math.log(2) / 8
    lo, hi = float(log_d.min()) - 4 * step, float(log_d.max()) + 4 * step
    edges = np.arange(lo, hi + step, step)
    hist, _ = np.histogram(log_d, bins=edges, weights=weight)
    smooth = ndi.gaussian_filter1d(hist.astype(np.float64), 1.5, mode="constant")
    peaks = [i for i in range(len(smooth)) if smooth[i] > 0
             and smooth[i] >= smooth[max(i - 1, 0)] and smooth[i] > smooth[min(i + 1, len(smooth) - 1)] - 1e-15]
    # Each blob belongs to its nearest peak; a mode's diameter is the weighted median of its blobs.
    centres = (edges[:-1] + edges[1:]) / 2
    peak_pos = np.array([centres[i] for i in peaks])
    owner = np.argmin(np.abs(log_d[:, None] - peak_pos[None, :]), axis=1)
    total = float(weight.sum())
    out = []
    for p in range(len(peaks)):
        mine = owner == p
        if not mine.any():
            continue
        order = np.argsort(log_d[mine])
        cw = np.cumsum(weight[mine][order])
        med = float(log_d[mine][order][np.searchsorted(cw, cw[-1] / 2)])
        out.append(BlobScale(math.exp(med), int(mine.sum()), float(weight[mine].sum()) / total))
    return _merge_close(sorted(out, key=lambda m: -m.weight))


def _merge_close(modes: list[BlobScale]) -> list[BlobScale]:
    """Fold modes within ``_MODE_FACTOR`` of a stronger one into it (one population's spread)."""
    kept: list[BlobScale] = []
    for m in modes:
        near = [k for k, big in enumerate(kept) if max(m.diameter_um, big.diameter_um)
                / min(m.diameter_um, big.diameter_um) < _MODE_FACTOR]
        if near:
            big = kept[near[0]]
            kept[near[0]] = BlobScale(big.diameter_um, big.n_blobs + m.n_blobs, big.weight + m.weight)
        else:
            kept.append(m)
    return kept


@dataclass(frozen=True, slots=True)
class _Evidence:
    """What one image (a whole image, or one box of a larger one) shows on the working grid.

    ``work`` is the isotropic working grid; ``pos`` (N, 3), ``sig`` and ``val`` (N,) the blobs kept
    by the pruning (working voxels, response); ``sigmas`` the scales examined (working voxels), empty
    where the image is too small to show a nucleus; ``sample`` the image's intensities (an even
    subsample of at most ``_SAMPLE`` of them) for the intensity checks.
    """

    work: np.ndarray
    pos: np.ndarray
    sig: np.ndarray
    val: np.ndarray
    sigmas: np.ndarray
    sample: np.ndarray

    def kept(self, mask: np.ndarray) -> _Evidence:
        """The same evidence with only the blobs where ``mask`` holds."""
        return _Evidence(self.work, self.pos[mask], self.sig[mask], self.val[mask], self.sigmas, self.sample)

    def in_mode(self, d0: float) -> np.ndarray:
        """Indices of the blobs within ``_MODE_FACTOR`` of ``d0`` across (working voxels): one size mode's."""
        d = _D_PER_SIGMA * self.sig
        return np.flatnonzero((d >= d0 / _MODE_FACTOR) & (d <= d0 * _MODE_FACTOR))


# Intensities kept per image for the intensity checks (percentiles) of several boxes pooled.
_SAMPLE = 2**20


def _evidence(image: np.ndarray, vs: Size3, work_um: float) -> _Evidence:
    """The blobs of ``image`` (voxels of ``vs`` µm) on a working grid of ``work_um`` µm voxels."""
    flat = image.ravel()
    sample = flat[:: max(1, -(-flat.size // _SAMPLE))].copy()  # a copy: the read is not kept alive
    lo, hi = (float(v) for v in np.percentile(image, [0.1, 99.9]))
    empty = np.zeros(0)
    if not hi > lo:  # flat: nothing to find
        return _Evidence(np.zeros((0, 0, 0), np.float32), np.zeros((0, 3)), empty, empty, empty, sample)
    work = _isotropic(image, vs, work_um)
    n_sigma = int(math.floor(_PER_OCTAVE * math.log2(max(min(work.shape) / 3.0, 1.0) / _SIGMA0_VOX / math.sqrt(3))))
    if n_sigma < 3:
        return _Evidence(work, np.zeros((0, 3)), empty, empty, empty, sample)
    sigmas = _SIGMA0_VOX * 2.0 ** (np.arange(n_sigma + 1) / _PER_OCTAVE)
    # The pixel noise's response at each scale, through the same resampling and filters (_noise).
    # (An image without pixel noise, e.g. smooth or quantised, still gets a floor: 1e-4 of its range.)
    factors = [_grid_factor(float(s), work.shape) for s in sigmas]
    noise = max(pixel_noise_sd(image.astype(np.float32)), 1e-4 * (hi - lo)) * noise_response_sd(
        image.shape, vs, work_um, sigmas, factors)
    pos, sig, val = _blobs(work, sigmas, noise)
    if len(val) > _MAX_BLOBS:  # pruning is quadratic: keep the strongest
        top = np.argsort(-val)[:_MAX_BLOBS]
        pos, sig, val = pos[top], sig[top], val[top]
    keep = _prune(pos, sig, val) if len(val) else np.zeros(0, np.intp)
    return _Evidence(work, pos, sig, val, sigmas, sample).kept(keep)


def log_diameter(image: np.ndarray, voxel_size: Any) -> LogDiameterEstimate:
    """Typical nucleus diameter (µm) of ``image`` by scale-normalised LoG scale selection.

    Parameters
    ----------
    image : (Z, Y, X) ndarray
        The image (any intensity scale; bright nuclei on a darker background).
    voxel_size : (3,) sequence of float
        µm per voxel (z, y, x).

    Returns
    -------
    LogDiameterEstimate

    Raises
    ------
    AmbiguousDiameterError
        No significant blobs (e.g. pure noise); no bright intensity tail (dark
        nuclei on a bright background); blobs only at the finest scale examined
        (noise or nuclei below the working voxel); a leading size at the coarsest
        scale examined (smooth background structure); or two populations of clearly
        different sizes. The message lists the candidates and asks for
        ``--diameter``.
    InputError
        ``image`` is not a finite 3D array or ``voxel_size`` is invalid.
    """
    t0 = time.perf_counter()
    vs = _validate(image, voxel_size)
    work_um = _work_voxel(image.shape, vs)
    return _decide([_evidence(image, vs, work_um)], work_um, f"the image ({image.shape} voxels of {vs} µm)", t0)


def _decide(evs: list[_Evidence], work_um: float, what: str, t0: float) -> LogDiameterEstimate:
    """The estimate from the evidence of one image or of several boxes of one (pooled), or the refusal."""
    pooled = evs[0].sample if len(evs) == 1 else np.concatenate([e.sample for e in evs])
    lo, median, hi = (float(v) for v in np.percentile(pooled, [0.1, 50, 99.9]))
    if not hi > lo:
        raise AmbiguousDiameterError(
            f"no nucleus-like structure stands out of the noise: {what} is flat "
            f"(99.8 % of its voxels equal {lo:g}); the diameter cannot be estimated: pass --diameter UM"
        )
    evs = [e for e in evs if len(e.sigmas)]
    if not evs:
        raise AmbiguousDiameterError(f"{what} is too small to show a nucleus size; pass --diameter UM")
    sigmas = max((e.sigmas for e in evs), key=len)
    if any(len(e.val) for e in evs):  # after pruning: grains inside nuclei must not set the bar for the nuclei
        bar = _GATE * float(np.percentile(np.concatenate([e.val for e in evs]), 90))
        evs = [e.kept(e.val >= bar) for e in evs]
    sig = np.concatenate([e.sig for e in evs])
    val = np.concatenate([e.val for e in evs])
    seconds = time.perf_counter() - t0
    if len(val) < _MIN_BLOBS:
        raise AmbiguousDiameterError(
            f"no nucleus-like structure stands out of the noise ({len(val)} significant blobs between "
            f"{_D_PER_SIGMA * sigmas[0] * work_um:.3g} and {_D_PER_SIGMA * sigmas[-1] * work_um:.3g} µm); "
            "the diameter cannot be estimated: pass --diameter UM"
        )
    tail = (hi - median) / max(median - lo, 1e-12 * (hi - lo))
    if tail < _MIN_TAIL:
        raise AmbiguousDiameterError(
            f"the image does not look like bright nuclei on a darker background: its intensities have no bright "
            f"tail ((p99.9 - p50) / (p50 - p0.1) = {tail:.2f} < {_MIN_TAIL}). LoG scale selection measures bright "
            "blobs; dark nuclei on a bright background (electron-microscopy-like images) are outside its scope "
            "and the default model's. Pass --diameter UM"
        )
    # Weight = response x blob volume: the share of the image's structure a size accounts for, so
    # many faint small blobs (texture, noise) do not outvote the nuclei.
    modes = _modes(np.log(_D_PER_SIGMA * sig * work_um), val * sig**3)
    if len(modes) > 1:
        # Blobs several times smaller than the leading size inside nucleus-sized bright regions are those
        # nuclei's texture, not a population of their own (as the pruning drops blobs inside a kept one).
        evs = [_drop_inner(e, modes[0].diameter_um / work_um) for e in evs]
        sig = np.concatenate([e.sig for e in evs])
        val = np.concatenate([e.val for e in evs])
        modes = _modes(np.log(_D_PER_SIGMA * sig * work_um), val * sig**3)
    finest = _D_PER_SIGMA * sigmas[0] * work_um
    listing = ", ".join(f"{m.diameter_um:.3g} µm ({m.n_blobs} blobs, {m.weight:.0%} of the response)" for m in modes)
    if modes[0].diameter_um < _SCALE_EDGE * finest:
        raise AmbiguousDiameterError(
            f"the strongest structure is at the finest scale examined ({finest:.3g} µm, working voxel "
            f"{work_um:.3g} µm): noise, or nuclei too small for this resolution. Candidates: {listing}. "
            "Pass --diameter UM",
            tuple(m.diameter_um for m in modes),
            too_fine=True,
        )
    if modes[0].n_blobs < _MIN_BLOBS:
        raise AmbiguousDiameterError(
            f"the strongest structure is {modes[0].n_blobs} blob(s) of {modes[0].diameter_um:.3g} µm, too few to be a "
            f"typical nucleus (at least {_MIN_BLOBS} are needed: one large bright region, a cluster or a whole "
            f"organ, is not a nucleus size). Candidates: {listing}. Pass --diameter UM",
            tuple(m.diameter_um for m in modes),
        )
    coarsest = _D_PER_SIGMA * sigmas[-1] * work_um
    if _at_coarsest_scale(modes[0].diameter_um, coarsest):
        raise AmbiguousDiameterError(
            f"the strongest structure, {modes[0].n_blobs} blobs of {modes[0].diameter_um:.3g} µm, is at the coarsest "
            f"scale examined ({coarsest:.3g} µm, about half the image's smallest extent): its response may still grow "
            "beyond it, so it is not shown to be an object's size (smooth background structure, such as uneven "
            f"illumination or haze, answers most at the largest scales). Candidates: {listing}. Pass --diameter UM",
            tuple(m.diameter_um for m in modes),
        )
    rivals = [m for m in modes[1:] if m.weight >= _MODE_SHARE * modes[0].weight and m.n_blobs >= _MIN_RIVAL
              and m.diameter_um >= _SCALE_EDGE * finest]
    if rivals:
        raise AmbiguousDiameterError(
            f"the image shows nuclei of clearly different sizes: {listing}. The typical diameter is ambiguous; "
            "pass --diameter UM (the size you want segmented)",
            tuple(m.diameter_um for m in modes),
        )
    # The LoG scale finds the nuclei and their size to within a factor; their half-maximum regions measure it.
    measured, blurred, axial = _refine(evs, modes[0].diameter_um / work_um)
    modes[0] = BlobScale(measured * work_um, modes[0].n_blobs, modes[0].weight)
    seconds = time.perf_counter() - t0
    est = LogDiameterEstimate(modes[0].diameter_um, tuple(modes), int(len(val)), work_um, seconds, blurred, axial)
    logger.info("diameter from LoG scale selection: %.3g µm (%d blobs; modes %s%s; %.1fs)", est.diameter_um,
                est.n_blobs, listing, f"; blur-limited along z (axial r75/r50 {axial:.2f}): measured as such"
                if blurred else "", seconds)
    return est


def _at_coarsest_scale(d_um: float, coarsest_um: float) -> bool:
    """Whether a size (the leading mode's LoG diameter, µm) sits at the coarsest scale examined.

    A blob is kept where its response is a maximum over scale as well as over space, but at the last
    scale there is no larger one to compare with (:func:`_blobs`), so a response still growing with
    scale passes as a maximum there. A nucleus's response peaks at its own scale; smooth background
    structure (uneven illumination, haze, the slow variations of a large debris field), broader than
    the image, answers more and more strongly up to the largest scale examined (about half the image's
    smallest extent). So, as the finest scale (``too_fine``) leaves finer nuclei open, the coarsest
    leaves open that the blobs are a background trend: the estimate refuses there. Panel and held-out
    volumes put their leading size at most 0.6x the coarsest scale (three steps below it; since
    2026-11-30), the misread randomised draws of 3-voxel nuclei at it
    (``benchmarks/diameter_background.py``).
    """
    return d_um > coarsest_um / _SCALE_EDGE


def _drop_inner(ev: _Evidence, d0: float) -> _Evidence:
    """``ev`` without its blobs smaller than ``d0 / _MODE_FACTOR`` (working voxels) whose centres lie in
    a nucleus-sized bright region: a connected region of at least half the volume of a ``d0`` sphere
    of the image smoothed at a quarter of that radius, above half-way between its background (10th
    percentile) and the median peak of the blobs of about ``d0``."""
    small = _D_PER_SIGMA * ev.sig < d0 / _MODE_FACTOR
    lead = ev.in_mode(d0)
    if not small.any() or not len(lead):
        return ev
    smooth = ndi.gaussian_filter(ev.work, max(d0 / 8, 0.5), mode="nearest")
    at = np.clip(np.round(ev.pos).astype(int), 0, np.array(smooth.shape) - 1)
    bg = float(np.percentile(smooth, 10))
    peak = float(np.median(smooth[tuple(at[lead].T)]))
    if not peak > bg:
        return ev
    lab, _ = ndi.label(smooth > bg + 0.5 * (peak - bg))
    big = np.bincount(lab.ravel()) >= 0.5 * math.pi / 6 * d0**3
    big[0] = False
    keep = ~(small & big[lab[tuple(at.T)]])
    return ev.kept(keep)


# Blobs measured by the refinement (the strongest of the leading mode).
_MAX_MEASURED = 300
# Nuclei are taken to be at most this many times longer in z than across: a half-maximum region longer
# than that is stretched by the axial point-spread function, and its z extent is cut to this.
_MAX_ELONGATION = 1.5


def _refine(evs: list[_Evidence], d0: float) -> tuple[float, bool, float | None]:
    """The leading mode's diameter (``d0`` working voxels by its LoG scale) measured from the
    half-maximum regions of its strongest ``_MAX_MEASURED`` blobs, over all the images of ``evs``
    (:func:`_measure`): the median of the whole ones where there are at least ``_MIN_BLOBS``, else of
    all, those cut by an image's faces measured from their whole half (a volume only a few nuclei
    across, or long nuclei in a thin stack, has few whole ones). Where the blobs' axial profiles
    show the image blur-limited along z (:mod:`bigseg.diameter._blur`), they are measured as such
    (returned: the diameter, whether they were, and the blobs' median axial r75/r50 where 4 gave it).
    """
    ranked = [(-float(e.val[i]), k, int(i)) for k, e in enumerate(evs) for i in e.in_mode(d0)]
    chosen = sorted(ranked)[:_MAX_MEASURED]
    mine = [(e, np.array([i for _, kk, i in chosen if kk == k], dtype=np.intp)) for k, e in enumerate(evs)]
    # Levels from each blob's true peak in the unsmoothed image: the axial shape's, and the measurement's
    # where the image is blur-limited.
    peaked = [(e, m, _regions(e, d0, m, blurred=True)) for e, m in mine if len(m)]
    q_z = [q for e, m, half in peaked for q in _axial_shape(e, d0, m, half)]
    axial = float(np.median(q_z)) if len(q_z) >= _MIN_BLOBS else None
    blurred = axial is not None and axial <= BLUR_LIMITED_Q
    diam: list[float] = []
    cut: list[bool] = []
    for e, m, half in peaked:
        d, c = _measure(half if blurred else _regions(e, d0, m, blurred=False), blurred=blurred)
        diam += d
        cut += c
    d_all, is_cut = np.array(diam), np.array(cut, bool)
    use = d_all[~is_cut] if int(np.count_nonzero(~is_cut)) >= _MIN_BLOBS else d_all
    return (float(np.median(use)) if len(use) else d0), blurred, axial


def _axial_shape(ev: _Evidence, d0: float, mine: np.ndarray, half: list) -> list[float]:
    """r75/r50 along z of the whole regions of blobs ``mine`` (``half``: their :func:`_regions` at 50 %,
    levels from each blob's true peak in the unsmoothed image): the z profile's shape
    (:mod:`bigseg.diameter._blur`)."""
    r50 = {i: semi for i, semi, cut, _ in half if not cut}
    r75 = {i: semi for i, semi, cut, _ in _regions(ev, d0, mine, blurred=True, level=0.75) if not cut}
    return [r75[i][0] / r50[i][0] for i in r50 if i in r75]


def _measure(regions: list, *, blurred: bool = False) -> tuple[list[float], list[bool]]:
    """Equivalent-sphere diameters (working voxels) of half-maximum ``regions`` (:func:`_regions`, made
    with the same ``blurred``), and whether each is cut by the image's faces: whole, its voxels; cut,
    the ellipsoid of its semi-axes. Its z extent is cut to ``_MAX_ELONGATION`` times the lateral one,
    or where the image is ``blurred`` (blur-limited along z: the z extent shows the point-spread
    function, not the nucleus) to the lateral one.
    """
    cap = 1.0 if blurred else _MAX_ELONGATION
    diam, cuts = [], []
    for _, semi, cut, count in regions:
        vol = 4 / 3 * math.pi * semi[0] * semi[1] * semi[2] if cut else count
        lateral = math.sqrt(semi[1] * semi[2])
        if semi[0] > cap * lateral:
            vol *= cap * lateral / semi[0]
        diam.append((6 * vol / math.pi) ** (1 / 3))
        cuts.append(cut)
    return diam, cuts


def _regions(ev: _Evidence, d0: float, mine: np.ndarray, *, blurred: bool,
             level: float = 0.5) -> list[tuple[int, list[float], bool, float]]:
    """(blob, semi-axes, cut, voxel count) of the regions of blobs ``mine`` of ``ev`` (working voxels).

    The LoG scale locates the nuclei and sizes them within a factor, but its σ per diameter depends on
    blur, crowding and texture. So each blob (``d0`` across) is measured in the image smoothed at a
    quarter of its radius (chromatin grains, several times smaller, average out): the voxels within
    ``d0`` of its centre that are nearer to it than to any other blob of at least ``d0 / _MODE_FACTOR``
    (touching neighbours are split) and above ``level`` of the way from the local background (10th
    percentile of the box) to its core's median, connected to the core. Where the image is ``blurred``
    the blobs are rounded, and the smoothing and the median would widen them: the image is not
    smoothed and the level is taken from the true peak (:func:`bigseg.diameter._blur.core_peak`). A
    region cut by the image's faces is measured from its whole half (:func:`_semi_axes`); one whose
    centre lies outside is left out.
    """
    from scipy.spatial import cKDTree

    work, pos, sig = ev.work, ev.pos, ev.sig
    r0 = d0 / 2
    f = 1  # a grid coarser by f where the radius stays >= 6 voxels (cheaper, no less exact)
    while r0 / (2 * f) >= 6 and min(work.shape) // (2 * f) >= 8:
        f *= 2
    grid = work
    if f > 1:
        n = [m // f for m in work.shape]
        grid = work[: f * n[0], : f * n[1], : f * n[2]].reshape(n[0], f, n[1], f, n[2], f).mean(axis=(1, 3, 5))
    rg = r0 / f
    smooth = grid if blurred else ndi.gaussian_filter(grid, max(0.25 * rg, 0.5), mode="nearest")
    shape = np.array(smooth.shape)
    cen = (pos + 0.5) / f - 0.5
    marker_idx = np.flatnonzero(_D_PER_SIGMA * sig >= d0 / _MODE_FACTOR)
    tree = cKDTree(cen[marker_idx])
    reach = int(math.ceil(2 * rg)) + 1
    out = []
    for i in mine:
        c = np.clip(np.round(cen[i]).astype(int), 0, shape - 1)
        lo, hi = np.maximum(c - reach, 0), np.minimum(c + reach + 1, shape)
        box = smooth[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        axes = np.meshgrid(*[np.arange(a, b, dtype=np.float64) - ci for a, b, ci in zip(lo, hi, cen[i])],
                           indexing="ij", sparse=True)
        dist = np.sqrt(axes[0] ** 2 + axes[1] ** 2 + axes[2] ** 2)
        core = dist <= max(0.5 * rg, 1.0)
        peak = core_peak(box, axes, dist <= max(0.5 * rg, 2.0)) if blurred else float(np.median(box[core]))
        bg = float(np.percentile(box, 10))
        if not peak > bg:
            continue
        region = (box > bg + level * (peak - bg)) & (dist <= 2 * rg)
        cand = np.argwhere(region)
        _, nearest = tree.query(cand + lo)
        region[tuple(cand[marker_idx[nearest] != i].T)] = False
        lab, _ = ndi.label(region)
        seeds = lab[core & region]
        if seeds.size == 0:
            continue
        ids, counts = np.unique(seeds, return_counts=True)
        where = np.nonzero(lab == ids[np.argmax(counts)])
        semi, cut = _semi_axes(tuple(w + a for w, a in zip(where, lo)), shape)
        if semi is None:
            continue
        out.append((int(i), [s * f for s in semi], cut, float(where[0].size) * f**3))
    return out


def _semi_axes(where: tuple[np.ndarray, ...], shape: np.ndarray) -> tuple[list[float] | None, bool]:
    """Semi-axes (voxels) of a region (voxel ``where`` of an image of ``shape``) as a uniform ellipsoid's,
    and whether a face of the image cuts it.

    Along an axis where it is whole: from its variance (``semi² / 5``). Along an axis where one face
    cuts it: from its whole half, beyond its equator (the mean of its planes of at least 0.9x the
    largest cross-section), whose second moment about the equator is the whole's. None where the
    equator lies within a voxel of the face (the centre is outside the image: the nucleus is not
    this image's, as for the true diameter) or both faces cut it.
    """
    semi: list[float] = []
    cut = False
    for w, n in zip(where, shape):
        at_lo, at_hi = int(w.min()) == 0, int(w.max()) == int(n) - 1
        if not (at_lo or at_hi):
            semi.append(math.sqrt(5 * float(np.var(w)) + 1 / 12))
            continue
        if at_lo and at_hi:
            return None, True
        cut = True
        base = int(w.min())
        area = np.bincount(w - base)
        eq = float(np.mean(np.flatnonzero(area >= 0.9 * area.max()))) + base
        if abs(eq - float(w.min() if at_lo else w.max())) < 1.0:
            return None, True
        half = w[w >= eq] if at_lo else w[w <= eq]
        semi.append(math.sqrt(5 * float(np.mean((half - eq) ** 2)) + 1 / 12))
    return semi, cut
