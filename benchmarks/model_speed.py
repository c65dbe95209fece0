"""Inference speed of the shipped default model: Mvox/s of ModelPredictor.predict.

Usage::

    python benchmarks/model_speed.py [--shape 64 192 192] [--threads 2] [--repeats 2]

Prints one row per device × precision that this machine has (CPU fp32 always;
CUDA fp32, bf16 and fp16 when a GPU is present). The block is synthetic
(``bigseg.synth``, confocal preset) at the model's own scale (step 1: no
resampling), so the figure is the network + sliding window alone; a second
CPU row adds the resampling of an anisotropic block (voxels 2 × 0.5 × 0.5 µm,
nuclei 9 µm).
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from bigseg.predict import ModelPredictor, default_model_spec


def _block(shape: tuple[int, int, int]) -> np.ndarray:
    from bigseg.synth import synthesize

    image, _ = synthesize(shape, preset="confocal", voxel_size=(1.0, 1.0, 1.0), diameter_um=12.0, seed=0)
    image = image.astype(np.float32)
    lo, hi = np.percentile(image, [1, 99.8])
    return (image - lo) / (hi - lo)


def _time(pred: ModelPredictor, block: np.ndarray, repeats: int) -> float:
    pred.predict(block[:16, :64, :64])  # warm-up (allocations, kernels)
    if pred.device.type == "cuda":
        torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        pred.predict(block)
        if pred.device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return block.size / best / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, nargs=3, default=(64, 192, 192))
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    block = _block(tuple(args.shape))
    rows = [("cpu", "fp32", (1.0, 1.0, 1.0), 12.0)]
    rows.append(("cpu", "fp32", (2.0, 0.5, 0.5), 9.0))
    if torch.cuda.is_available():
        rows += [("cuda", p, (1.0, 1.0, 1.0), 12.0) for p in ("fp32", "bf16", "fp16")]
    print(f"# block {tuple(args.shape)} = {block.size / 1e6:.2f} Mvox, torch {torch.__version__}, "
          f"{args.threads} CPU thread(s), {platform.processor() or platform.machine()}")
    print(f"{'device':<6} {'precision':<9} {'voxel µm':<16} {'diam µm':>7} {'model voxels':>12} {'Mvox/s':>8}")
    for device, precision, voxel, diameter in rows:
        spec = default_model_spec(voxel, diameter, device=device, precision=precision, batch_size=args.batch_size)
        pred = spec.build()
        _, n = pred.scale.model_range((0, 0, 0), block.shape)
        rate = _time(pred, block, args.repeats)
        name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
        print(f"{device:<6} {precision:<9} {voxel!s:<16} {diameter:>7} {int(np.prod(n)) / 1e6:>10.2f} M {rate:>8.2f}"
              f"   ({name})")


if __name__ == "__main__":
    main()
