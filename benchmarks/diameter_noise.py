"""Noise against size: what the LoG estimate's significance gate asks of the panel's smallest noisy nuclei.

Usage::

    python benchmarks/diameter_noise.py                      # the two volumes refused until 2026-11-30
    python benchmarks/diameter_noise.py --case "dense d=5vox z/xy=2.2 fill=0.45"   # any panel volume

Each volume is rendered a second time without its noise (the same draw: the generator's random
stream is consumed as before and its noise draws discarded; a domain-randomised twin is mapped
onto the raw image's intensity scale by least squares), so the noise is known exactly. Printed:

1. The pixel noise: the estimate's (MAD of neighbour differences, ``_noise.pixel_noise_sd``)
   against the true noise's sd, over the volume, the background and the nuclei (Poisson noise
   grows with the intensity).
2. Per LoG scale σ (working voxels; 3σ µm), the response of white noise of the estimated sd:
   as modelled until 2026-11-30 (``0.3 s (V / w³)^½ σ^-1.5``, gate 8 sd), as the gate now
   computes it (``_noise.noise_response_sd``, gate ``_log._MIN_SIGNIFICANCE``) and as measured
   (such noise drawn per native voxel and put through ``_log._isotropic`` and
   ``_log._responses``); each gate in sd of the measured response; and the noise-free nuclei's
   LoG peaks (local maxima of the twin's response) in sd of the measured response: how far a
   nucleus stands out of the noise.
3. The estimate on the raw volume, on the twin, on the twin with a quarter and a half of the
   noise, and on the raw volume with the gate at other levels.

Synthetic volumes only; the conclusions are in ``docs/models.md`` (*Diameter `auto`*).
"""

from __future__ import annotations

import argparse
import math

import numpy as np
from scipy import ndimage as ndi

from bigseg.diameter import AmbiguousDiameterError, _log, log_diameter
from bigseg.diameter._noise import noise_response_sd, pixel_noise_sd
from bigseg.testing._diameter_panel import PANEL, PanelCase, _margin, _shape, make_panel_volume

REFUSED = ("dense d=2.5vox z/xy=1 fill=0.45", "random d=3vox z/xy=1 fill=0")
# The white-noise model of the response and its gate until 2026-11-30 (for the comparison).
_MODEL_K, _MODEL_GATE = 0.3, 8.0


class _Quiet(np.random.Generator):
    """A generator whose Poisson and volume-sized normal draws are consumed but not returned."""

    def __init__(self, seed: object, volume_shape: tuple[int, ...]) -> None:
        super().__init__(np.random.PCG64(seed))
        self.volume_shape = volume_shape

    def poisson(self, lam=1.0, size=None):  # type: ignore[no-untyped-def,override]
        super().poisson(lam, size)
        return np.asarray(lam, dtype=np.float64)

    def normal(self, loc=0.0, scale=1.0, size=None):  # type: ignore[no-untyped-def,override]
        out = super().normal(loc, scale, size)
        return np.zeros_like(out) if size is not None and tuple(np.atleast_1d(size)) == self.volume_shape else out


def noise_free_twin(case: PanelCase, raw: np.ndarray) -> np.ndarray:
    """The panel volume ``case`` (``raw``, as ``make_panel_volume`` renders it) without its noise."""
    from bigseg.synth import PRESETS, RandomNucleiConfig, random_nuclei, synthesize

    shape, margin = _shape(case), _margin(case)
    big = tuple(s + 2 * m for s, m in zip(shape, margin))
    crop = tuple(slice(m, m + s) for m, s in zip(margin, shape))
    if case.preset != "random":
        v = PRESETS[case.preset].diameter_um / case.d_vox
        image, _ = synthesize(big, preset=case.preset, voxel_size=(case.anisotropy * v, v, v), seed=100 + case.seed,
                              volume_fraction=case.fraction, photons_per_unit=1e9, read_noise=0.0, dtype="float32")
        return np.asarray(image, dtype=np.float64)[crop]
    a = max(int(round(case.anisotropy)), 1)
    iso = (big[0] * a, big[1], big[2])
    image, _ = random_nuclei(iso, seed=_Quiet((11, case.seed), iso), config=RandomNucleiConfig(diameter=case.d_vox))
    clean = np.asarray(image, dtype=np.float64)[::a][crop]
    # Normalised by its own percentiles: put it on the raw image's scale (the noise has mean ~0).
    slope, offset = np.polyfit(clean.ravel(), raw.astype(np.float64).ravel(), 1)
    return slope * clean + offset


def _estimate(image: np.ndarray, voxel: tuple[float, float, float], true: float) -> str:
    try:
        est = log_diameter(image.astype(np.float32), voxel)
    except AmbiguousDiameterError as exc:
        return "refused: " + str(exc)[:110]
    modes = ", ".join(f"{m.diameter_um:.3g} µm x{m.n_blobs}" for m in est.modes[:3])
    return f"{est.diameter_um / true:.2f}x  ({est.n_blobs} blobs; modes {modes})"


def report(case: PanelCase) -> None:
    vol = make_panel_volume(case)
    raw, voxel, fg = vol.image.astype(np.float64), vol.voxel_size, vol.labels > 0
    clean = noise_free_twin(case, vol.image)
    noise = raw - clean
    est_sd = pixel_noise_sd(vol.image.astype(np.float32))
    print(f"\n{case.name}: {vol.image.shape} voxels of {voxel} µm, true median diameter {vol.true_diameter_um:.2f} µm "
          f"({vol.true_diameter_um / voxel[2]:.2f} voxels), {fg.mean():.0%} of the crop in nuclei")
    print(f"  pixel noise sd: estimate {est_sd:.4g}; true {noise.std():.4g} (background {noise[~fg].std():.4g}, "
          f"nuclei {noise[fg].std():.4g}); estimate / true {est_sd / noise.std():.2f}")

    work_um = _log._work_voxel(vol.image.shape, voxel)
    work_shape = _log._isotropic(vol.image, voxel, work_um).shape
    n_sigma = int(math.floor(_log._PER_OCTAVE * math.log2(max(min(work_shape) / 3.0, 1.0) / _log._SIGMA0_VOX
                                                          / math.sqrt(3))))
    sigmas = _log._SIGMA0_VOX * 2.0 ** (np.arange(n_sigma + 1) / _log._PER_OCTAVE)
    white = np.random.default_rng(0).standard_normal(vol.image.shape) * est_sd
    measured = [r.std() for r, _ in _log._responses(_log._isotropic(white.astype(np.float32), voxel, work_um), sigmas)]
    peaks = _log._responses(_log._isotropic(clean.astype(np.float32), voxel, work_um), sigmas)
    model = est_sd * math.sqrt(math.prod(voxel) / work_um**3) * _MODEL_K * sigmas**-1.5
    computed = est_sd * noise_response_sd(vol.image.shape, voxel, work_um, sigmas,
                                          [_log._grid_factor(float(s), work_shape) for s in sigmas])
    gate = _log._MIN_SIGNIFICANCE
    print(f"  working voxel {work_um:.3g} µm; white noise's response per scale, and each gate in sd of the measured one")
    print(f"    σ (wv)  3σ µm   model  computed  measured   gate: model x{_MODEL_GATE:g}  now x{gate:g}   "
          "nuclei's peaks / measured: p50  p90")
    for k, s in enumerate(sigmas):
        r = peaks[k][0]
        top = r[(r == ndi.maximum_filter(r, size=3, mode="nearest")) & (r > 0)]
        p50, p90 = (np.percentile(top, [50, 90]) / measured[k]) if top.size else (math.nan, math.nan)
        print(f"    {s:6.2f}  {3 * s * work_um:6.2f}  {model[k]:8.3g}  {computed[k]:8.3g}  {measured[k]:8.3g}"
              f"   {_MODEL_GATE * model[k] / measured[k]:13.1f}  {gate * computed[k] / measured[k]:7.1f}"
              f"   {p50:27.1f} {p90:4.1f}")

    true = vol.true_diameter_um
    print(f"  estimate, raw volume:          {_estimate(raw, voxel, true)}")
    print(f"  estimate, noise-free twin:     {_estimate(clean, voxel, true)}")
    for frac in (0.25, 0.5):
        print(f"  estimate, twin + {frac:g} x noise: {_estimate(clean + frac * noise, voxel, true)}")
    shipped = _log._MIN_SIGNIFICANCE
    try:
        for level in (6.0, 8.0, 12.0):
            _log._MIN_SIGNIFICANCE = level
            print(f"  estimate, raw, gate {level:4.1f} sd:    {_estimate(raw, voxel, true)}")
    finally:
        _log._MIN_SIGNIFICANCE = shipped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", action="append", help="a panel volume's name (default: the two refused ones)")
    names = parser.parse_args().case or list(REFUSED)
    by_name = {c.name: c for c in PANEL}
    for name in names:
        if name not in by_name:
            parser.error(f"--case {name!r} is not a panel volume; one of: {', '.join(by_name)}")
        report(by_name[name])


if __name__ == "__main__":
    main()
