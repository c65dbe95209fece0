"""Large smooth background structure against a nucleus size: where the LoG estimate's leading size sits.

Usage::

    python benchmarks/diameter_background.py             # randomised draws of 3-4-voxel nuclei
    python benchmarks/diameter_background.py --panel     # the panel and the held-out volumes

Per volume: the estimate / the true median diameter (or the refusal), and the leading size's LoG
diameter (3σ) as a share of the coarsest scale examined (``_log._at_coarsest_scale``: refused above
1/1.15). The draws are ``make_panel_volume(PanelCase("random", d, z/xy, 0, seed=s))``: nuclei 2-4
voxels across whose blobs mostly stay in the noise, and a background of smooth random fields and
haze (``bigseg.synth``'s domain-randomised mode). Synthetic volumes only; the conclusions are in
``docs/models.md`` (*Diameter `auto`*, *Large smooth structure*).
"""

from __future__ import annotations

import argparse
import time

from bigseg.diameter import AmbiguousDiameterError, _log, log_diameter
from bigseg.testing._diameter_panel import PANEL, PanelCase, make_panel_volume

# (nucleus diameter in voxels, z/xy, seed) of the randomised draws.
DRAWS: tuple[tuple[float, float, int], ...] = (
    (3, 1, 39), (3, 1, 40), (3, 1, 41), (3, 1, 42), (3, 2, 43), (3, 2, 44), (3, 2, 45), (3, 2, 46), (3, 1, 47),
    (4, 1, 48), (4, 2, 49), (5, 1, 50), (20, 1, 51), (30, 2, 52),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--panel", action="store_true", help="the panel and held-out volumes instead of the draws")
    if parser.parse_args().panel:
        from diameter_panel import HELD_OUT  # type: ignore[import-not-found]

        cases = [c for c in (*PANEL, *HELD_OUT) if c.preset != "em-like"]
    else:
        cases = [PanelCase("random", d, a, 0.0, seed=s) for d, a, s in DRAWS]
    seen: list[float] = []
    shipped = _log._at_coarsest_scale

    def spy(d_um: float, coarsest_um: float) -> bool:
        seen.append(d_um / coarsest_um)
        return shipped(d_um, coarsest_um)

    _log._at_coarsest_scale = spy  # type: ignore[assignment]
    try:
        for case in cases:
            seen.clear()
            vol = make_panel_volume(case)
            t0 = time.perf_counter()
            try:
                est = log_diameter(vol.image, vol.voxel_size)
                res = f"{est.diameter_um / vol.true_diameter_um:5.2f}x ({est.n_blobs} blobs)"
            except AmbiguousDiameterError as exc:
                res = f"refused: {str(exc)[:70]}"
            share = f"{seen[-1]:.2f}" if seen else "  - "
            print(f"{case.name:46s} s{case.seed:<3d} leading / coarsest scale {share}  {res}  "
                  f"({time.perf_counter() - t0:.1f} s)", flush=True)
    finally:
        _log._at_coarsest_scale = shipped
    print(f"refused from a share of {1 / _log._SCALE_EDGE:.2f}")


if __name__ == "__main__":
    main()
