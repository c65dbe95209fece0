"""Cost of exact blockwise seed labelling (bigseg.stitch, seeded path) versus whole-volume labelling.

Runs the seeded path serially in one process -- label every write ROI
(cc3d), pair labels across faces, number objects, relabel every block --
over a seed mask of ellipsoid-ish blobs (thresholded smoothed noise), and
compares with ``scipy.ndimage.label`` of the whole mask (same 6-connectivity).
Prints median wall time of 3 runs (interleaved); no asserts. Target: ratio within 2x.

    python benchmarks/stitch_cost.py            # 256^3 and 384^3, blocks 64^3
    python benchmarks/stitch_cost.py --sizes 128 --block 32
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Callable

import cc3d
import numpy as np
import scipy.ndimage as ndi

from bigseg.stitch import face_neighbours, face_pairs, face_planes, label_blockwise, label_seeds, number_objects
from bigseg.tiling import Grid


def blob_mask(size: int, seed: int = 0) -> np.ndarray:
    """(size, size, size) bool mask of blobs ~6-10 voxels across, ~15 % foreground."""
    rng = np.random.default_rng(seed)
    coarse = ndi.gaussian_filter(rng.standard_normal((size // 2,) * 3).astype(np.float32), 1.5)
    smooth = ndi.zoom(coarse, 2, order=1)  # ellipsoid-ish blobs at half the cost of smoothing full-size noise
    return smooth > np.quantile(smooth[::4, ::4, ::4], 0.85)


def interleaved_times(fns: dict[str, Callable[[], object]], repeats: int = 3) -> dict[str, list[float]]:
    """Wall times of each function, alternated run by run so machine load hits all alike."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def phases(mask: np.ndarray, grid: Grid) -> dict[str, float]:
    """One instrumented run of the same steps as ``label_blockwise``: seconds per phase."""
    t = {"label": 0.0, "faces+pairs": 0.0, "number": 0.0, "relabel": 0.0}
    t0 = time.perf_counter()
    local, counts = {}, np.zeros(grid.n_blocks, np.int64)
    for blk in grid.blocks():
        local[blk.linear], counts[blk.linear] = label_seeds(mask[blk.write_roi.to_slices()])
    t["label"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    faces = {b: face_planes(lab) for b, lab in local.items()}
    pairs = np.concatenate([face_pairs(faces[lo.linear][a][1], lo.linear, faces[hi.linear][a][0], hi.linear)
                            for lo, hi, a in face_neighbours(grid)])
    t["faces+pairs"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    numbering = number_objects(counts, pairs)
    t["number"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = np.zeros(grid.volume_shape, np.uint32)
    for blk in grid.blocks():
        out[blk.write_roi.to_slices()] = numbering.subset([blk.linear]).relabel_block(local[blk.linear], blk.linear)
    t["relabel"] = time.perf_counter() - t0
    t["pairs (count)"] = len(pairs)
    return t


def run(size: int, block: int) -> None:
    mask = blob_mask(size)
    grid = Grid(mask.shape, (block,) * 3, (0, 0, 0))
    n_ours = label_blockwise(mask, grid)[1]
    n_ref = ndi.label(mask)[1]
    times = interleaved_times({
        "ours": lambda: label_blockwise(mask, grid),
        "scipy": lambda: ndi.label(mask, output=np.uint32),
        "cc3d": lambda: cc3d.connected_components(mask, connectivity=6, out_dtype=np.uint32),
    })
    t_ours, t_ref, t_cc3d = (statistics.median(times[k]) for k in ("ours", "scipy", "cc3d"))
    ratio = statistics.median(o / r for o, r in zip(times["ours"], times["scipy"]))
    print(f"{size}^3 in {block}^3 blocks ({grid.n_blocks} blocks), {mask.mean():.1%} foreground, "
          f"{n_ours} objects (scipy {n_ref})")
    print(f"  bigseg.stitch serial  {t_ours:7.3f} s")
    print(f"  scipy.ndimage.label   {t_ref:7.3f} s   ratio stitch/scipy = {t_ours / t_ref:.2f} "
          f"(median of per-run ratios {ratio:.2f})")
    print(f"  cc3d whole volume     {t_cc3d:7.3f} s   (for reference)")
    print("  phases (one run): " + ", ".join(
        f"{k} {v:.3f} s" if isinstance(v, float) else f"{k} {v}" for k, v in phases(mask, grid).items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 384])
    parser.add_argument("--block", type=int, default=64)
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}, load average: {' '.join(f'{v:.2f}' for v in os.getloadavg())}; median of 3")
    for size in args.sizes:
        run(size, args.block)


if __name__ == "__main__":
    main()
