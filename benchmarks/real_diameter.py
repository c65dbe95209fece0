"""The diameter estimate alone on the shared real volumes: estimate / labels' median diameter.

Usage::

    python benchmarks/real_diameter.py --data ../shared/data

For each volume in ``--data`` (``raw.tif`` with its ``meta.json`` voxel size) prints the LoG
estimate on the whole image (``bigseg.diameter.log_diameter``) and through the pipeline's
reader (``volume_log_diameter``: on the working grid of the whole image, from a pyramid level
read whole or from up to 4 boxes of it, as ``bigseg segment`` reads it), with the modes, or the refusal; where labels exist, their median equivalent-sphere
diameter of the nuclei not cut by the border, and the ratio. Checking only: nothing here is
tuned on these volumes.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import tifffile

from bigseg.diameter import AmbiguousDiameterError, log_diameter, volume_log_diameter
from bigseg.io import open_volume
from bigseg.synth import truth_stats

ROOT = Path(__file__).resolve().parents[1]


def _run(label: str, fn, true: float | None) -> None:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    try:
        est = fn()
    except AmbiguousDiameterError as exc:
        print(f"  {label:14s} refused: {exc}  ({time.perf_counter() - t0:.1f} s)", flush=True)
        return
    modes = ", ".join(f"{m.diameter_um:.3g} µm ({m.n_blobs} blobs, {m.weight:.0%})" for m in est.modes[:3])
    ratio = f"  ratio {est.diameter_um / true:.2f}" if true else ""
    shape = "-" if est.axial_shape is None else f"{est.axial_shape:.3f}"
    blur = f"  axial r75/r50 {shape}{' (blur-limited)' if est.blur_limited else ''}"
    print(f"  {label:14s} {est.diameter_um:6.2f} µm{ratio}  modes: {modes}{blur}  ({time.perf_counter() - t0:.1f} s)",
          flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = ap.parse_args()
    for meta_path in sorted(args.data.glob("*/meta.json")):
        meta = json.loads(meta_path.read_text())
        voxel = tuple(float(v) for v in meta["voxel_size_um"])
        raw = meta_path.parent / "raw.tif"
        labels = meta_path.parent / "labels.tif"
        true = None
        if labels.exists():
            true = float(truth_stats(tifffile.imread(labels), voxel, exclude_border=True)["median_diameter_um"])
        print(f"{meta['name']}: labels' median diameter {'none' if true is None else f'{true:.2f} µm'}")
        image = np.asarray(tifffile.imread(raw))
        _run("whole image", lambda: log_diameter(image, voxel), true)
        _run("pipeline read", lambda: volume_log_diameter(open_volume(str(raw), voxel_size=voxel)), true)


if __name__ == "__main__":
    main()
