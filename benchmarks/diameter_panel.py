"""The LoG diameter estimate on the synthetic panel: estimate / true median diameter per volume.

Usage::

    python benchmarks/diameter_panel.py

Prints one row per panel volume (``bigseg.testing._diameter_panel.PANEL``: every preset and
the domain-randomised mode, nuclei 2-40 voxels across, z/xy anisotropy 1-8, sparse to
crowded), the ratio to the median equivalent-sphere diameter of the nuclei whose centre lies
in the volume (measured whole, in a rendering with margins), or the refusal, and
how many fluorescence volumes fall within ±25 % (the em-like ones, dark nuclei on a bright
background, are out of scope and must be refused).
"""

from __future__ import annotations

import math
import time

from bigseg.diameter import AmbiguousDiameterError, log_diameter
from bigseg.testing._diameter_panel import PANEL, make_panel_volume


def main() -> None:
    within = refused_dark = 0
    for case in PANEL:
        vol = make_panel_volume(case)
        t0 = time.perf_counter()
        try:
            est = log_diameter(vol.image, vol.voxel_size)
        except AmbiguousDiameterError as exc:
            refused_dark += case.preset == "em-like"
            print(f"{case.name:48s} true {vol.true_diameter_um:6.2f} µm  refused: {str(exc)[:90]}", flush=True)
            continue
        ratio = est.diameter_um / vol.true_diameter_um
        ok = abs(math.log(ratio)) <= math.log(1.25)
        within += ok and case.preset != "em-like"
        print(f"{case.name:48s} true {vol.true_diameter_um:6.2f} µm  estimate {est.diameter_um:6.2f} µm  "
              f"ratio {ratio:4.2f} {'' if ok else 'MISS'}  ({time.perf_counter() - t0:.1f} s)", flush=True)
    n_dark = sum(c.preset == "em-like" for c in PANEL)
    print(f"within ±25 %: {within} of {len(PANEL) - n_dark} fluorescence volumes; "
          f"em-like refused as out of scope: {refused_dark} of {n_dark}")


if __name__ == "__main__":
    main()
