"""Accuracy and cost of the ways to combine the default model's patches on the global grid.

Usage::

    python benchmarks/patch_blend.py [--shape 64 128 128] [--volumes 4] [--windows 64 80]

On four synthetic volumes (``bigseg.synth`` presets, 1 µm voxels, nuclei 10 µm: model step
0.83, or 14 µm: step 1.17) it runs the whole volume with: the old per-block sliding window
(``old``, MONAI, 64³, overlap 0.25), and the global patch grid with Gaussian blending or
overlap-tile at several windows and borders (model voxels). Per row: patch voxels run per data
voxel, seconds, F1 at IoU 0.5 / 0.75 against the truth (decoding: the card's thresholds), and
mean / 99.9th-percentile |Δ| of the maps against a reference run (Gaussian, 64³ windows,
overlap 0.5: every voxel blended from several patches, far from their borders). Prints figures only.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _old_tiling import old_predict

from bigseg.evaluate import evaluate
from bigseg.predict import DEFAULT_MODEL, default_model_spec, load_model_package
from bigseg.synth import synthesize
from bigseg.train import decode_bcd

VOLUMES = (("confocal", 3, 10.0), ("dense", 5, 10.0), ("lightsheet-organoid", 7, 10.0), ("dense", 11, 14.0))
# (blend, window, overlap): tile's border is overlap * window / 2 (64/0.25: 8; 72/1/9: 4; 80/0.2: 8; 96/1/6: 8).
RUNS = [("old", 64, 0.25), ("gaussian", 64, 0.25), ("tile", 64, 0.25), ("tile", 72, 1 / 9), ("tile", 80, 0.2),
        ("tile", 96, 1 / 6)]


def _volume(shape: tuple[int, ...], preset: str, seed: int, diameter: float) -> tuple[np.ndarray, np.ndarray]:
    image, truth = synthesize(shape, preset=preset, voxel_size=(1, 1, 1), diameter_um=diameter, seed=seed)
    image = image.astype(np.float32)
    lo, hi = np.percentile(image, [1, 99.8])
    return (image - lo) / (hi - lo), truth


def _patch_voxels(pred, shape) -> float:
    if pred is None:
        return float("nan")
    _, n = pred.scale.model_range((0, 0, 0), shape)
    count = sum(1 for _ in pred.patches.indices((0, 0, 0), n))
    return count * float(np.prod(pred.patches.size)) / float(np.prod(shape))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, nargs=3, default=(64, 128, 128))
    ap.add_argument("--volumes", type=int, default=len(VOLUMES), help="only the first N volumes")
    ap.add_argument("--windows", type=int, nargs="+", default=None,
                    help="only the overlap-tile rows with these windows (e.g. 64 80: the old and new defaults)")
    args = ap.parse_args()
    runs = [r for r in RUNS if args.windows is None or (r[0] == "tile" and r[1] in args.windows)]
    thresholds = load_model_package(DEFAULT_MODEL).card.decoding
    print(f"{'volume':<24} {'blend':<9} {'window':>6} {'border':>6} {'patch/vox':>9} {'s':>6} {'F1@.5':>6} {'F1@.75':>6}"
          f" {'mean|Δ|':>8} {'p99.9|Δ|':>8}")
    for preset, seed, diameter in VOLUMES[:args.volumes]:
        image, truth = _volume(tuple(args.shape), preset, seed, diameter)
        name = f"{preset} {diameter:g} µm"
        ref = default_model_spec((1.0, 1.0, 1.0), diameter, device="cpu", blend="gaussian", patch_size=(64,) * 3,
                                 overlap=0.5).build()
        reference = ref.predict(image)
        for blend, window, overlap in runs:
            spec = default_model_spec((1.0, 1.0, 1.0), diameter, device="cpu", patch_size=(window,) * 3,
                                      blend="gaussian" if blend == "old" else blend, overlap=overlap)
            pred = spec.build()
            t0 = time.perf_counter()
            maps = old_predict(pred, image) if blend == "old" else pred.predict(image)
            seconds = time.perf_counter() - t0
            scores = evaluate(decode_bcd(maps, thresholds), truth, thresholds=(0.5, 0.75), ignore_border=True)
            diff = np.abs(maps - reference)
            border = "" if blend == "old" else pred.patches.border[0]
            print(f"{name:<24} {blend:<9} {window:>6} {border:>6} "
                  f"{_patch_voxels(None if blend == 'old' else pred, image.shape):>9.2f}"
                  f" {seconds:>6.1f} {scores.at(0.5).f1:>6.3f} {scores.at(0.75).f1:>6.3f} {diff.mean():>8.4f}"
                  f" {np.percentile(diff, 99.9):>8.3f}", flush=True)


if __name__ == "__main__":
    main()
