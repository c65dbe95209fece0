"""Inference cost of the shipped default model per data voxel: old per-block tiling vs the global patch grid.

Usage::

    python benchmarks/model_speed.py [--blocks 64 128 256] [--threads 1] [--device cpu]

For each cubic block shape it times one interior block (write ROI at offset = block shape,
read ROI = write ROI + halo) with

* ``old``: the tiling before the global patch grid (``benchmarks/_old_tiling.py``): MONAI's
  sliding window over the whole read ROI from its own start, Gaussian blending, halo = the
  card's halo scaled to the data;
* ``new``: ``ModelPredictor.predict(..., write_roi=...)``: the patches of the volume's global
  grid that meet the write ROI (the defaults: overlap-tile, 80³ windows keeping their centre of
  64³), halo = what the patches of a grid of such blocks read (``ModelPredictor.grid_halo``).

Both at the model's own scale (1 µm voxels, 12 µm nuclei: step 1, no resampling) and with the
pipeline's halo rule (at least the seeds' reach of one diameter). Columns: halo, patch voxels run
per write-ROI voxel (for ``new`` also the mean over the 8 block positions of a row, since where the
block falls on the patch grid changes it), seconds per block, µs per write-ROI voxel, and new / old.
The block is synthetic (``bigseg.synth``, confocal preset). Prints figures only.

``--mesospim`` prints instead the cost per data voxel on mesoSPIM-like data (``mesospim``
preset: 5 × 5.26 × 5.26 µm voxels, 15 µm nuclei, 3 voxels across) before and after the coarse
model: the default without a cap on upsampling (the fine model: about 4x per axis to its
12-voxel nuclei), and with ``--max-upsample 2`` (the default then picks the coarse model, at most
2x per axis: ``default_model_for``), and the cost of flip test-time augmentation (``tta``) at the
fine model's scale::

    python benchmarks/model_speed.py --mesospim [--mesospim-shape 32 64 64] [--repeats 1]

``--counts`` runs no network: it prints, for candidate patch geometries (window / border in model
voxels, overlap-tile), the patch voxels run per data voxel of a write ROI at step 1 (block at
offset = block shape, as timed above) and their ratio to the old tiling's, averaged over steps
0.5–2 (data voxels per model voxel) and 8 block positions (where blocks fall on the patch grid)::

    python benchmarks/model_speed.py --counts
"""

from __future__ import annotations

import argparse
import math
import platform
import time

import numpy as np
import torch
from _old_tiling import OLD_OVERLAP, OLD_PATCH, old_halo, old_predict

from bigseg.predict import MAX_UPSAMPLE, ModelPredictor, default_model_spec
from bigseg.predict._patches import PatchGrid
from bigseg.predict._scale import ScaleMap
from bigseg.tiling import Roi

#: (window, border) candidates of ``--counts``, model voxels; (80, 8) is the default.
GEOMETRIES = ((64, 8), (64, 4), (72, 4), (80, 8), (96, 8), (144, 8))
STEPS = (0.5, 0.6, 0.7, 0.83, 0.9, 1.0, 1.1, 1.25, 1.5, 1.75, 2.0)


def _image(shape: tuple[int, ...]) -> np.ndarray:
    from bigseg.synth import synthesize

    image, _ = synthesize(shape, preset="confocal", voxel_size=(1.0, 1.0, 1.0), diameter_um=12.0, seed=0)
    image = image.astype(np.float32)
    lo, hi = np.percentile(image, [1, 99.8])
    return (image - lo) / (hi - lo)


def _old_patches(read: tuple[int, ...], divisor: int = 8) -> int:
    """Patch voxels MONAI's sliding window runs over a read ROI on the model grid (scans at
    int(patch * (1 - overlap)); the patch shrinks to a smaller read ROI)."""
    n = 1
    for r, p in zip(read, OLD_PATCH):
        p = min(p, -(-r // divisor) * divisor)
        interval = max(int(p * (1 - OLD_OVERLAP)), 1)
        n *= (math.ceil(max(r - p, 0) / interval) + 1) * p
    return n


def _new_patches(patches: PatchGrid, scale: ScaleMap, roi: Roi) -> int:
    """Patch voxels the global grid runs for a write ROI (the model voxels ``predict`` covers)."""
    lo, hi = (roi.offset, roi.end) if scale.is_identity else scale.model_cover(roi.offset, roi.shape)
    return sum(1 for _ in patches.indices(lo, hi)) * int(np.prod(patches.size))


def _old_read(scale: ScaleMap, roi: Roi, halo: int) -> tuple[int, ...]:
    """Model voxels of the old tiling's read ROI (write ROI + halo)."""
    return scale.model_range(roi.grow((halo,) * 3).offset, roi.grow((halo,) * 3).shape)[1]


def _counts(blocks: list[int]) -> None:
    """Patch voxels per data voxel for candidate geometries, at step 1 and averaged over steps."""
    card_halo = default_model_spec((1.0, 1.0, 1.0), 12.0, device="cpu").build().card.halo
    print("# patch voxels run per write-ROI voxel (overlap-tile on the global grid); old: MONAI window "
          f"{OLD_PATCH[0]}³, overlap {OLD_OVERLAP}, halo = card halo, at least the seeds' reach")
    print(f"# 'mean new/old': over steps {STEPS} and 8 block positions along z")
    print(f"{'window/border':<14}" + "".join(f"{f'{b}³ step 1':>12} {'new/old':>7} {'mean new/old':>12}" for b in blocks))
    for size, border in GEOMETRIES:
        grid = PatchGrid((size,) * 3, (size - 2 * border,) * 3, (border,) * 3, "tile")
        row = f"{f'{size}/{border}':<14}"
        for b in blocks:
            ratios, step1 = [], 0.0
            for st in STEPS:
                scale = ScaleMap((st,) * 3)
                halo = max(scale.halo(card_halo)[0], math.ceil(12.0 * st) + 1)
                old = _old_patches(_old_read(scale, Roi((b,) * 3, (b,) * 3), halo))
                new = [_new_patches(grid, scale, Roi((i * b, b, b), (b,) * 3)) for i in range(8)]
                ratios.append(float(np.mean(new)) / old)
                if st == 1.0:
                    step1 = new[1] / b**3
                    old1 = old / b**3
            row += f"{step1:>12.2f} {step1 / old1:>7.2f} {float(np.mean(ratios)):>12.2f}"
        print(row, flush=True)


def _sync(pred: ModelPredictor) -> None:
    if pred.device.type == "cuda":
        torch.cuda.synchronize()


def _seconds(pred: ModelPredictor, block: np.ndarray, repeats: int) -> float:
    """Best wall time of ``pred.predict(block)`` over ``repeats`` runs, after a warm-up."""
    pred.predict(block[:16, :32, :32])
    best = float("inf")
    for _ in range(repeats):
        _sync(pred)
        t0 = time.perf_counter()
        pred.predict(block)
        _sync(pred)
        best = min(best, time.perf_counter() - t0)
    return best


def _cost_rows(args: argparse.Namespace) -> None:
    """Seconds per data Mvox: mesoSPIM-like data without and with the upsampling cap; TTA off / on."""
    from bigseg.synth import PRESETS, synthesize

    meso, _ = synthesize(tuple(args.mesospim_shape), preset="mesospim", seed=0, volume_fraction=0.03)
    lo, hi = np.percentile(meso, [1, 99.8])
    meso = ((meso.astype(np.float32) - lo) / (hi - lo)).astype(np.float32)
    voxel = PRESETS["mesospim"].voxel_size
    print(f"# mesoSPIM-like block {meso.shape} = {meso.size / 1e6:.3f} Mvox of {voxel} µm, nuclei 15 µm; "
          f"torch {torch.__version__}, {args.threads} CPU thread(s)")
    print(f"{'case':<30} {'steps (data vox / model vox)':<30} {'model voxels':>12} {'s / data Mvox':>14}")
    cost = {}
    options = {"device": args.device, "batch_size": args.batch_size, "threads": args.threads}
    for label, spec in (("no cap", default_model_spec(voxel, 15.0, **options)),
                        ("max_upsample 2", default_model_spec(voxel, 15.0, max_upsample=MAX_UPSAMPLE, **options))):
        pred = spec.build()
        _, n = pred.scale.model_range((0, 0, 0), meso.shape)
        cost[label] = _seconds(pred, meso, args.repeats) / meso.size * 1e6
        steps = tuple(round(s, 3) for s in pred.scale.step)
        print(f"{label + ' (' + pred.card.name + ')':<30} {steps!s:<30} {int(np.prod(n)) / 1e6:>10.2f} M "
              f"{cost[label]:>14.1f}", flush=True)
    print(f"{'no cap / cap':<30} {'':<30} {'':>12} {cost['no cap'] / cost['max_upsample 2']:>13.1f}x")
    block = _image((32, 96, 96))
    tta = {}
    for on in (False, True):
        pred = default_model_spec((1.0, 1.0, 1.0), 12.0, device=args.device, batch_size=args.batch_size,
                                  threads=args.threads, tta=on).build()
        tta[on] = _seconds(pred, block, args.repeats) / block.size * 1e6
        print(f"{'tta ' + ('on' if on else 'off') + ' (model scale)':<30} {'(1, 1, 1)':<30} "
              f"{block.size / 1e6:>10.2f} M {tta[on]:>14.1f}", flush=True)
    print(f"{'tta on / off':<30} {'':<30} {'':>12} {tta[True] / tta[False]:>13.1f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, nargs="+", default=(64, 128, 256))
    ap.add_argument("--threads", type=int, default=1, help="CPU threads of the network (the predictor's default: 1)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--mesospim", action="store_true", help="cost per data voxel on mesoSPIM-like data, cap vs none")
    ap.add_argument("--mesospim-shape", type=int, nargs=3, default=(32, 64, 64))
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--counts", action="store_true", help="patch voxels per voxel of candidate geometries (no network)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.counts:
        _counts(list(args.blocks))
        return
    if args.mesospim:
        _cost_rows(args)
        return
    pred = default_model_spec((1.0, 1.0, 1.0), 12.0, device=args.device, batch_size=args.batch_size,
                              threads=args.threads).build()
    reach = math.ceil(12.0 / 1.0) + 1  # the seeds' reach (pipeline._plan): one diameter + 1
    name = torch.cuda.get_device_name() if pred.device.type == "cuda" else platform.processor() or platform.machine()
    print(f"# torch {torch.__version__}, {args.threads} CPU thread(s), {pred.device} ({name}), batch {args.batch_size}, "
          f"patch {pred.patch_size}, new grid {pred.patches}")
    print(f"{'block':>6} {'tiling':<6} {'halo':>5} {'patch vox/voxel':>18} {'(mean)':>7} {'s/block':>8}"
          f" {'µs/voxel':>11} {'new/old':>7}")
    pred.predict(_image((16, 64, 64)))  # warm-up
    for b in args.blocks:
        roi = Roi((b, b, b), (b, b, b))
        old_cost = 0.0
        # The pipeline's halo for a grid of such blocks (8 blocks per axis): what their patches read.
        for tiling, halo in (("old", old_halo(pred)[0]), ("new", pred.grid_halo((b,) * 3, (8 * b,) * 3)[0])):
            halo = max(halo, reach)
            read = roi.grow((halo,) * 3)
            image = _image(read.shape)
            _sync(pred)
            t0 = time.perf_counter()
            if tiling == "old":
                old_predict(pred, image, read.offset)
                patch = _old_patches(pred.scale.model_range(read.offset, read.shape)[1], pred.divisor)
                mean = float(patch)
            else:
                pred.predict(image, offset=read.offset, write_roi=roi)
                patch = _new_patches(pred.patches, pred.scale, roi)
                mean = float(np.mean([_new_patches(pred.patches, pred.scale, Roi((i * b, b, b), roi.shape))
                                      for i in range(8)]))
            _sync(pred)
            seconds = time.perf_counter() - t0
            cost = seconds / roi.size * 1e6
            ratio = "" if tiling == "old" else f"{cost / old_cost:>7.2f}"
            old_cost = cost
            print(f"{b:>6} {tiling:<6} {halo:>5} {patch / roi.size:>18.2f} {mean / roi.size:>7.2f} {seconds:>8.1f}"
                  f" {cost:>11.3f} {ratio}", flush=True)
            del image


if __name__ == "__main__":
    main()
