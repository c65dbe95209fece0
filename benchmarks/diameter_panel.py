"""The LoG diameter estimate on the synthetic panel: estimate / true median diameter per volume.

Usage::

    python benchmarks/diameter_panel.py              # the panel
    python benchmarks/diameter_panel.py --held-out   # 25 volumes of other seeds and sizes, never tuned on

Prints one row per panel volume (``bigseg.testing._diameter_panel.PANEL``: every preset and
the domain-randomised mode, nuclei 2-40 voxels across, z/xy anisotropy 1-8, sparse to
crowded), the ratio to the median equivalent-sphere diameter of the nuclei whose centre lies
in the volume (measured whole, in a rendering with margins), or the refusal, and
how many fluorescence volumes fall within ±25 % (the em-like ones, dark nuclei on a bright
background, are out of scope and must be refused).
"""

from __future__ import annotations

import argparse
import math
import time

from bigseg.diameter import AmbiguousDiameterError, log_diameter
from bigseg.testing._diameter_panel import PANEL, PanelCase, make_panel_volume

# Other seeds and sizes of the fluorescence presets, to check a rule decided on the panel.
HELD_OUT: tuple[PanelCase, ...] = (
    *(PanelCase("mesospim", d, a, f, seed=s) for s in (1, 2) for d, a, f in ((3, 1, 0.05), (5, 1.5, 0.08),
                                                                            (8, 2, 0.1), (12, 3, 0.1))),
    *(PanelCase("confocal", d, a, 0.1, seed=1) for d, a in ((5, 2), (12, 2), (24, 3))),
    *(PanelCase("lightsheet-organoid", d, a, 0.15, seed=1) for d, a in ((5, 1), (9, 3), (20, 7.7))),
    *(PanelCase("dense", d, a, 0.45, seed=1) for d, a in ((4, 2), (8, 2), (15, 2))),
    *(PanelCase("random", d, a, 0.0, seed=s) for s, (d, a) in zip(range(11, 19), ((5, 1), (7, 2), (10, 1), (14, 3),
                                                                                   (18, 2), (25, 4), (10, 5), (6, 1)))),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--held-out", action="store_true", help="the held-out volumes instead of the panel")
    cases = HELD_OUT if parser.parse_args().held_out else PANEL
    within = refused_dark = 0
    for case in cases:
        vol = make_panel_volume(case)
        t0 = time.perf_counter()
        try:
            est = log_diameter(vol.image, vol.voxel_size)
        except AmbiguousDiameterError as exc:
            refused_dark += case.preset == "em-like"
            print(f"{case.name:48s} s{case.seed:<3d} true {vol.true_diameter_um:6.2f} µm  refused: {str(exc)[:90]}",
                  flush=True)
            continue
        ratio = est.diameter_um / vol.true_diameter_um
        ok = abs(math.log(ratio)) <= math.log(1.25)
        within += ok and case.preset != "em-like"
        print(f"{case.name:48s} s{case.seed:<3d} true {vol.true_diameter_um:6.2f} µm  estimate {est.diameter_um:6.2f} "
              f"µm  ratio {ratio:4.2f} {'' if ok else 'MISS':4s}  axial r75/r50 {est.axial_shape or math.nan:4.2f} "
              f"{'blur-limited' if est.blur_limited else '':12s}  "
              f"({time.perf_counter() - t0:.1f} s)", flush=True)
    n_dark = sum(c.preset == "em-like" for c in cases)
    print(f"within ±25 %: {within} of {len(cases) - n_dark} fluorescence volumes; "
          f"em-like refused as out of scope: {refused_dark} of {n_dark}")


if __name__ == "__main__":
    main()
