"""F1@0.5 against the diameter-error factor, per synthetic preset, for one or more models.

Each held-out synthetic volume (seeds apart from training, validation and the decoding
selection) is segmented by the model told a diameter of ``factor x`` its true median
diameter (the labels' equivalent-sphere median), decoded with the card's thresholds and
scored at IoU 0.5 with nuclei cut by the volume's faces left out. A factor of 1 is a
perfect estimate; 0.6-1.6 is the range a diameter estimate may be off by.

Usage::

    python benchmarks/scale_tolerance.py                       # the default model
    python benchmarks/scale_tolerance.py --models default path/to/other/model
    python benchmarks/scale_tolerance.py --sizes                # F1@0.5 at 3, 12 and 30 voxels per diameter

Runs on the CPU (one thread) unless ``--device cuda``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Any

import numpy as np

FACTORS = (0.5, 0.6, 0.8, 1.0, 1.25, 1.6, 2.0)


def _volumes() -> list[tuple[str, np.ndarray, np.ndarray, tuple[float, float, float]]]:
    """(name, image, labels, voxel size µm): the fluorescence presets at their own voxel sizes,
    and domain-randomised volumes at 1 µm voxels."""
    from bigseg.synth import PRESETS, random_nuclei, synthesize

    out = []
    for name, shape, kw in [
        ("confocal", (40, 96, 96), {"volume_fraction": 0.12}),
        ("dense", (48, 112, 112), {}),
        ("lightsheet-organoid", (30, 224, 224), {"volume_fraction": 0.1}),
        ("mesospim", (40, 64, 64), {"volume_fraction": 0.03}),
    ]:
        image, labels = synthesize(shape, preset=name, seed=500, **kw)
        out.append((name, image, labels, PRESETS[name].voxel_size))
    for i in range(3):
        image, labels = random_nuclei((64, 64, 64), seed=(99, i))
        out.append((f"randomised-{i}", image, labels, (1.0, 1.0, 1.0)))
    return out


def size_volumes() -> list[tuple[str, np.ndarray, np.ndarray, tuple[float, float, float]]]:
    """Confocal-like volumes with nuclei 3, 12 and 30 voxels across (1 µm voxels, 10 µm nuclei)."""
    from bigseg.synth import synthesize

    out = []
    for d_vox, shape in [(3, (40, 48, 48)), (12, (48, 96, 96)), (30, (80, 160, 160))]:
        v = 10.0 / d_vox
        image, labels = synthesize(
            shape, preset="confocal", voxel_size=(v, v, v), diameter_um=10.0, seed=7, volume_fraction=0.1,
            psf_sigma_um=(1.0, 0.5, 0.5), haze=0.0, texture=0.2, intensity_cv=0.15, axial_stretch=1.0,
        )
        out.append((f"{d_vox} voxels per diameter", image, labels, (v, v, v)))
    return out


def true_diameter(labels: np.ndarray, voxel: tuple[float, float, float]) -> float:
    from bigseg.synth import truth_stats

    stats = truth_stats(labels, voxel, exclude_border=True)
    return float(stats["median_diameter_um"] if stats["n_measured"] >= 3 else truth_stats(labels, voxel)[
        "median_diameter_um"])


def f1_at(model: str, image: np.ndarray, labels: np.ndarray, voxel: tuple[float, float, float], diameter: float,
          device: str = "cpu", tta: bool = False, max_upsample: float | None = None) -> dict[str, float]:
    """F1 at IoU 0.5 and 0.75 (border nuclei left out) of ``model`` told ``diameter`` µm."""
    from bigseg.predict import ModelSpec, get_predictor
    from bigseg.train import decode_bcd, score

    pred = get_predictor(ModelSpec(model=model, voxel_size=voxel, diameter_um=diameter, device=device, tta=tta,
                                   max_upsample=max_upsample))
    lo, hi = np.percentile(image, pred.card.input.percentiles)  # type: ignore[attr-defined]
    norm = ((image.astype(np.float32) - lo) / max(float(hi - lo), 1e-6)).astype(np.float32)
    maps = pred.predict(norm)
    s = score(decode_bcd(maps, pred.card.decoding), labels, ignore_border=True)  # type: ignore[attr-defined]
    return {"f1@0.5": float(s["f1@0.5"]), "f1@0.75": float(s["f1@0.75"])}


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["default"])
    ap.add_argument("--factors", nargs="+", type=float, default=list(FACTORS))
    ap.add_argument("--sizes", action="store_true", help="score at 3, 12 and 30 voxels per diameter instead")
    ap.add_argument("--tta", action="store_true", help="flip test-time augmentation")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--max-upsample", type=float, default=None, help="cap on upsampling per axis (default: none)")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    ap.add_argument("--only", nargs="+", default=None, help="only these volumes (e.g. mesospim randomised-0)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    vols = size_volumes() if args.sizes else _volumes()
    if args.only:
        vols = [v for v in vols if v[0] in args.only]
    factors = [1.0] if args.sizes else args.factors
    results: dict[str, Any] = {}
    for model in args.models:
        results[model] = {}
        for name, image, labels, voxel in vols:
            d = true_diameter(labels, voxel)
            row = {}
            for f in factors:
                t0 = time.perf_counter()
                row[f] = f1_at(model, image, labels, voxel, d * f, device=args.device, tta=args.tta,
                               max_upsample=args.max_upsample)
                row[f]["seconds"] = round(time.perf_counter() - t0, 2)
            results[model][name] = {"true_diameter_um": d, "scores": row}
            cells = " ".join(f"{row[f]['f1@0.5']:.2f}" for f in factors)
            print(f"{model:>24s} {name:>28s} d={d:6.2f} µm  F1@0.5 at x{factors}: {cells}", flush=True)
        means = [float(np.mean([results[model][n]["scores"][f]["f1@0.5"] for n, *_ in vols])) for f in factors]
        print(f"{model:>24s} {'mean':>28s} {'':12s}  F1@0.5 at x{factors}: "
              + " ".join(f"{m:.2f}" for m in means), flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1, default=lambda o: o if not isinstance(o, float) or math.isfinite(o) else None)


if __name__ == "__main__":
    main()
