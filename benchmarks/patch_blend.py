"""Accuracy and cost of the ways to combine the default model's patches on the global grid.

Usage::

    python benchmarks/patch_blend.py [--threads 2]

On three synthetic volumes (``bigseg.synth`` presets, nuclei 10 µm, 1 µm voxels: model step
0.83) it runs the whole volume with: the old per-block sliding window (``old``, MONAI, overlap
0.25), and the global patch grid with Gaussian blending or overlap-tile at several overlaps.
Per row: patch voxels run per data voxel, seconds, F1 at IoU 0.5 / 0.75 against the truth
(decoding: the card's thresholds), and mean / 99.9th-percentile |Δ| of the maps against a
reference run (Gaussian, overlap 0.5: every voxel blended from several patches, far from their
borders). Prints figures only.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _old_tiling import old_predict

from bigseg.evaluate import evaluate
from bigseg.predict import DEFAULT_MODEL, default_model_spec, load_model_package
from bigseg.synth import synthesize
from bigseg.train import decode_bcd

VOLUMES = {"confocal": 3, "dense": 5, "lightsheet-organoid": 7}
RUNS = [("old", 0.25), ("gaussian", 0.25), ("tile", 0.125), ("tile", 0.25), ("tile", 0.375)]


def _volume(preset: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    image, truth = synthesize((48, 112, 112), preset=preset, voxel_size=(1, 1, 1), diameter_um=10, seed=seed)
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
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    thresholds = load_model_package(DEFAULT_MODEL).card.decoding
    print(f"{'volume':<20} {'blend':<9} {'overlap':>7} {'patch/vox':>9} {'s':>6} {'F1@.5':>6} {'F1@.75':>6}"
          f" {'mean|Δ|':>8} {'p99.9|Δ|':>8}")
    for preset, seed in VOLUMES.items():
        image, truth = _volume(preset, seed)
        ref = default_model_spec((1.0, 1.0, 1.0), 10.0, device="cpu", blend="gaussian", overlap=0.5).build()
        reference = ref.predict(image)
        for blend, overlap in RUNS:
            spec = default_model_spec((1.0, 1.0, 1.0), 10.0, device="cpu", blend="gaussian" if blend == "old" else blend,
                                      overlap=overlap)
            pred = spec.build()
            t0 = time.perf_counter()
            maps = old_predict(pred, image) if blend == "old" else pred.predict(image)
            seconds = time.perf_counter() - t0
            scores = evaluate(decode_bcd(maps, thresholds), truth, thresholds=(0.5, 0.75), ignore_border=True)
            diff = np.abs(maps - reference)
            print(f"{preset:<20} {blend:<9} {overlap:>7} {_patch_voxels(None if blend == 'old' else pred, image.shape):>9.2f}"
                  f" {seconds:>6.1f} {scores.at(0.5).f1:>6.3f} {scores.at(0.75).f1:>6.3f} {diff.mean():>8.4f}"
                  f" {np.percentile(diff, 99.9):>8.3f}", flush=True)


if __name__ == "__main__":
    main()
