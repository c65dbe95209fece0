"""Blur against size: what decided the LoG estimate's blur-limited measurement (bigseg.diameter._blur).

Before it the mesoSPIM panel volumes read 1.35-1.51x; these figures say why, and what can be done.

Usage::

    python benchmarks/diameter_blur.py          # mesoSPIM panel volumes and five others
    python benchmarks/diameter_blur.py --all    # every fluorescence panel volume

1. A ball of radius R blurred by a Gaussian of sd s (the analytic profile): the radii where it
   falls to 75, 50 and 25 % of its centre value, and their ratios, against s/R. The ratios are
   what an image shows of the blur; a Gaussian blob has r75/r50 = 0.644 and r25/r50 = 1.414.
2. The same on rendered balls (0.5 µm grid, R = 7.5 µm) under the mesoSPIM preset's PSF and
   variants of it (anisotropic: across and along z).
3. Per panel volume (``bigseg.testing._diameter_panel``), the estimate's error split over the
   blobs the estimate measures (its leading mode's strongest, uncut ones), each matched to the
   labelled nucleus at its centre: ``sel``, their nuclei's median diameter / the true median
   (which nuclei are measured); ``sharp``, the median of measured / own diameter under the rule
   for images that are not blur-limited (``_log._measure(..., blurred=False)``: half-way between
   background and the core's median, in the image smoothed at a quarter of the radius, z cut at
   1.5x the lateral extent); ``z=lat``, the
   same with the z extent taken equal to the lateral; ``quad``, the level half-way to the value
   of a quadratic least-squares fit of the core at the centre, no smoothing (the true peak of a
   blurred blob); ``quad z=lat`` (the rule for blur-limited images, ``bigseg.diameter._blur``);
   ``r75/r50 across``, the sharp rule's lateral
   extent at 75 % over that at 50 % (the shape ratio of part 1, as measured); ``rim/core``, the
   labelled voxels' mean intensity in the outer fifth of the radius over that deeper than 0.4 of
   it (where the labels lie against the intensity profile; nan where nuclei a few voxels across
   have no voxel in either band). The product of ``sel`` and a column is about
   what the estimate would read with that rule.

Checking only, on synthetic volumes; the figures and what was concluded are in ``docs/models.md``
(*Diameter `auto`*, mesoSPIM).
"""

from __future__ import annotations

import argparse
import math

import edt
import numpy as np
from scipy import ndimage as ndi
from scipy.optimize import brentq
from scipy.special import erf

from bigseg.diameter import _log
from bigseg.testing._diameter_panel import PANEL, make_panel_volume


def _ball_profile(r: np.ndarray | float, radius: float, s: float) -> np.ndarray:
    """Radial profile of a unit ball of ``radius`` convolved with an isotropic 3D Gaussian of sd ``s``."""
    r = np.maximum(np.asarray(r, dtype=np.float64), 1e-9)
    k = math.sqrt(2) * s
    inner = 0.5 * (erf((radius - r) / k) + erf((radius + r) / k))
    return inner - s / (r * math.sqrt(2 * math.pi)) * (np.exp(-((r - radius) ** 2) / (2 * s * s))
                                                       - np.exp(-((r + radius) ** 2) / (2 * s * s)))


def analytic_table() -> None:
    print("1. blurred ball, analytic (radii relative to R, levels relative to its centre value)")
    print("   s/R   centre  r75/R  r50/R  r25/R  r75/r50  r25/r50")
    for sr in (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.53, 0.6, 0.7, 0.8, 1.0, 1.33, 2.0):
        c0 = float(_ball_profile(0.0, 1.0, sr))
        r = [brentq(lambda x: float(_ball_profile(x, 1.0, sr)) - f * c0, 1e-6, 30) for f in (0.75, 0.5, 0.25)]
        print(f"  {sr:5.2f}  {c0:5.3f}  {r[0]:5.3f}  {r[1]:5.3f}  {r[2]:5.3f}  {r[0] / r[1]:6.3f}  {r[2] / r[1]:6.3f}")


def rendered_balls() -> None:
    print("2. rendered ball, R = 7.5 µm on a 0.5 µm grid (levels relative to its centre value)")
    h, radius, n = 0.5, 7.5, 161
    c = (n - 1) // 2
    zz, yy, xx = np.ogrid[:n, :n, :n]
    ball = (((zz - c) ** 2 + (yy - c) ** 2 + (xx - c) ** 2) * h * h <= radius**2).astype(np.float32)
    for psf in ((0.5, 0.5, 0.5), (4.0, 4.0, 4.0), (10.0, 4.0, 4.0), (10.0, 2.0, 2.0), (10.0, 0.5, 0.5), (10.0, 6.0, 6.0)):
        img = ndi.gaussian_filter(ball, [p / h for p in psf])
        top = float(img[c, c, c])

        def at(line: np.ndarray, f: float) -> float:
            return float(np.interp(-f * top, -line, np.arange(len(line)))) * h / radius

        lat, ax = img[c, c, c:], img[c:, c, c]
        print(f"  PSF sd (z, y, x) {psf} µm: centre {top:.3f}; across r50/R {at(lat, .5):.3f}, "
              f"r75/r50 {at(lat, .75) / at(lat, .5):.3f}, r25/r50 {at(lat, .25) / at(lat, .5):.3f}; "
              f"along z r50/R {at(ax, .5):.3f}")


def _regions(ev: _log._Evidence, d0: float, mine: np.ndarray, *, quad: bool,
             level: float = 0.5) -> list[tuple[int, list[float], float]]:
    """Whole regions above ``level`` (0.5: half-maximum) of blobs ``mine``: (blob, semi-axes, voxel
    count), measured as ``_log._regions`` measures them (working voxels). ``quad=False`` is the sharp
    rule; ``quad=True`` the level half-way to a quadratic fit of the unsmoothed core at the centre
    (the blur-limited rule's)."""
    return [(i, semi, count) for i, semi, cut, count in _log._regions(ev, d0, mine, blurred=quad, level=level)
            if not cut]


def _diameter(semi: list[float], count: float, *, z_as_lateral: bool) -> float:
    lateral = math.sqrt(semi[1] * semi[2])
    if z_as_lateral:
        return 2 * lateral
    vol = count
    if semi[0] > _log._MAX_ELONGATION * lateral:
        vol *= _log._MAX_ELONGATION * lateral / semi[0]
    return (6 * vol / math.pi) ** (1 / 3)


def _rim(vol) -> float:  # type: ignore[no-untyped-def]
    """Mean intensity of the labelled voxels in the outer fifth of the nuclei's radius over that of
    those deeper than 0.4 of it (background, the unlabelled median, subtracted): 1 for a sharp-edged
    nucleus, about 0.5 where the image is blurred or the nuclei are dimmer towards their edge."""
    depth = edt.edt(vol.labels, anisotropy=vol.voxel_size, black_border=False) / (vol.true_diameter_um / 2)
    image = vol.image.astype(np.float64)
    bg = float(np.median(image[vol.labels == 0]))
    rim, core = (vol.labels > 0) & (depth < 0.2), (vol.labels > 0) & (depth >= 0.4)
    if not rim.any() or not core.any():
        return math.nan
    return (float(image[rim].mean()) - bg) / (float(image[core].mean()) - bg)


def decomposition(cases: list) -> None:  # type: ignore[type-arg]
    print("3. per panel volume: estimate / true, and the measured blobs' split (medians of measured / own nucleus)")
    print(f"  {'volume':44s} est/true   sel    sharp  z=lat   quad  quad z=lat  blobs  r75/r50 across  rim/core")
    captured: dict = {}  # type: ignore[type-arg]
    refine = _log._refine

    def spy(evs, d0):  # type: ignore[no-untyped-def]
        captured.update(evs=evs, d0=d0)
        return refine(evs, d0)

    _log._refine = spy
    try:
        for case in cases:
            vol = make_panel_volume(case)
            try:
                est = _log.log_diameter(vol.image, vol.voxel_size).diameter_um
            except _log.AmbiguousDiameterError:
                print(f"  {case.name:44s} refused")
                continue
            (ev,), d0 = captured["evs"], captured["d0"]
            mine = ev.in_mode(d0)
            mine = mine[np.argsort(-ev.val[mine])][:_log._MAX_MEASURED]
            work_um, vs = _log._work_voxel(vol.image.shape, vol.voxel_size), np.array(vol.voxel_size)
            ids, counts = np.unique(vol.labels, return_counts=True)
            own_d = dict(zip(ids.tolist(), ((6 * counts * float(np.prod(vs)) / math.pi) ** (1 / 3)).tolist()))
            rows: dict[str, list[float]] = {k: [] for k in ("own", "shipped", "z=lat", "quad", "quad z=lat", "q")}
            quad = {i: (s, c) for i, s, c in _regions(ev, d0, mine, quad=True)}
            high = {i: s for i, s, _ in _regions(ev, d0, mine, quad=False, level=0.75)}
            for i, semi, count in _regions(ev, d0, mine, quad=False):
                at = np.clip(np.round((ev.pos[i] + 0.5) * work_um / vs - 0.5).astype(int), 0,
                             np.array(vol.labels.shape) - 1)
                label = int(vol.labels[tuple(at)])
                if label == 0 or i not in quad:
                    continue
                shipped = _log._measure(_log._regions(ev, d0, np.array([i]), blurred=False))[0]  # this variant reproduces the sharp rule
                assert len(shipped) == 1 and math.isclose(shipped[0], _diameter(semi, count, z_as_lateral=False),
                                                          rel_tol=1e-6), (shipped, semi, count)
                own = own_d[label] / work_um
                rows["own"].append(own)
                rows["shipped"].append(_diameter(semi, count, z_as_lateral=False) / own)
                rows["z=lat"].append(_diameter(semi, count, z_as_lateral=True) / own)
                rows["quad"].append(_diameter(*quad[i], z_as_lateral=False) / own)
                rows["quad z=lat"].append(_diameter(*quad[i], z_as_lateral=True) / own)
                if i in high:  # the profile's shape across: 0.644 for a Gaussian blob, near 1 for a sharp ball
                    rows["q"].append(math.sqrt(high[i][1] * high[i][2] / (semi[1] * semi[2])))
            if not rows["own"]:
                print(f"  {case.name:44s} {est / vol.true_diameter_um:8.2f}   (no whole region at a labelled centre)")
                continue
            med = {k: float(np.median(v)) if v else math.nan for k, v in rows.items()}
            print(f"  {case.name:44s} {est / vol.true_diameter_um:8.2f} {med['own'] * work_um / vol.true_diameter_um:5.2f}"
                  f" {med['shipped']:8.2f} {med['z=lat']:6.2f} {med['quad']:6.2f} {med['quad z=lat']:11.2f}"
                  f"  {len(rows['own']):5d}  {med['q']:14.2f}  {_rim(vol):8.2f}", flush=True)
    finally:
        _log._refine = refine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true", help="every fluorescence panel volume")
    args = parser.parse_args()
    analytic_table()
    rendered_balls()
    others = ("lightsheet-organoid d=4vox z/xy=1 fill=0.1", "confocal d=3vox z/xy=1 fill=0.05",
              "dense d=5vox z/xy=2.2 fill=0.45", "random d=6vox z/xy=2 fill=0", "random d=16vox z/xy=3 fill=0")
    cases = [c for c in PANEL if c.preset != "em-like" and (args.all or c.preset == "mesospim" or c.name in others)]
    decomposition(cases)


if __name__ == "__main__":
    main()
