"""Empty space costs (almost) nothing: a volume with nuclei in one octant against a full one.

Two 96 x 256 x 256 volumes at 1 µm: one full of nuclei (radius 4, every 11
voxels), one with the same nuclei in a single octant and dark camera noise
elsewhere. Each is segmented by the CLI in a fresh process (start-up, local
cluster and writing included) with ``--diameter 8 --block-shape 32 64 64``;
the octant volume also with ``--no-skip-empty``. Prints wall time and the CPU time
of each run's whole process tree (less sensitive to other load on a shared
machine), the ratios octant / full (goal <= 0.5), the blocks skipped and each
run's own timings (``plan``, ``tissue`` and the stages, as the CLI reports them).

A third volume of camera noise and one nucleus, in the middle of the first
block (every other block skipped), measures the fixed cost of a run (plus one
block): the process, its imports, the local cluster's start and close,
planning and the tissue mask, the outputs' metadata. The script prints the
ratio of the rest (each run less that cost), which the tissue decides. (Noise
alone is no use here: with no tissue at all, the mask's threshold falls inside
the noise and every block is processed.)
With ``--repeat N`` every run is made N times, interleaved, and the medians are
reported (the spread of wall times on a shared machine is large).

Without ``--scheduler`` the runs use the CLI's default (``auto``: these volumes
are small enough to run in the CLI's own process on a machine of few cores);
``--scheduler local`` makes every run start its LocalCluster.

    python benchmarks/empty_space.py [--workdir DIR] [--output-mode copy|labels-only] [--scheduler local]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from scipy import ndimage as ndi

from bigseg.testing import write_image

SHAPE = (96, 256, 256)


def balls(centres: np.ndarray, radius: float, seed: int) -> np.ndarray:
    """Blurred bright balls on dark camera noise (each ball drawn in its own box)."""
    image = np.zeros(SHAPE, np.float32)
    r = int(np.ceil(radius))
    for c in centres:
        lo = np.maximum(np.floor(c).astype(int) - r, 0)
        hi = np.minimum(np.floor(c).astype(int) + r + 2, SHAPE)
        grid = np.ogrid[tuple(slice(a, b) for a, b in zip(lo, hi))]
        image[tuple(slice(a, b) for a, b in zip(lo, hi))] += sum((g - v) ** 2 for g, v in zip(grid, c)) <= radius**2
    image = ndi.gaussian_filter(np.minimum(image, 1.0), 1.0)
    return image + np.random.default_rng(seed).normal(0, 0.03, SHAPE).astype(np.float32)


def volumes(folder: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    axes = [np.arange(6, s - 5, 11) for s in SHAPE]
    centres = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3).astype(float)
    centres += rng.uniform(-1.5, 1.5, centres.shape)
    half = np.asarray(SHAPE) / 2
    out = {}
    one = np.array([[16.0, 32.0, 32.0]])  # the middle of block (0, 0, 0): its skip margin stays inside it
    for name, chosen in (("full", centres), ("octant", centres[np.all(centres < half, axis=1)]), ("one", one)):
        out[name] = folder / f"{name}.ome.zarr"
        write_image(out[name], balls(chosen, 4.0, seed=1), chunk_shape=(32, 64, 64))
    return out


def segment(src: Path, out: Path, *extra: str) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds of the whole process tree (start-up, cluster and workers included), stdout."""
    cmd = [str(Path(sys.executable).parent / "bigseg"), "segment", str(src), str(out), "--predictor", "classical",
           "--diameter", "8", "--block-shape", "32", "64", "64", "--no-progress", "--overwrite", *extra]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if res.returncode:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{res.stderr[-3000:]}")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return seconds, cpu, res.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--output-mode", default="copy")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each kind, interleaved; medians reported")
    ap.add_argument("--scheduler", default=None, help="passed to every run (default: the CLI's, 'auto')")
    args = ap.parse_args()
    mode = ("--output-mode", args.output_mode, *(("--scheduler", args.scheduler) if args.scheduler else ()))
    kinds = {"full": ("full", ()), "octant": ("octant", ()), "octant, --no-skip-empty": ("octant", ("--no-skip-empty",)),
             "one nucleus (fixed cost)": ("one", ())}
    got: dict[str, list[tuple[float, float, str]]] = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        srcs = volumes(Path(tmp))
        for _ in range(args.repeat):
            for k, (vol, extra) in kinds.items():
                got[k].append(segment(srcs[vol], Path(tmp) / f"{vol}-out.zarr", *mode, *extra))
    runs = {k: (float(np.median([r[0] for r in v])), float(np.median([r[1] for r in v])), v[-1][2])
            for k, v in got.items()}
    print(f"volume {SHAPE}, blocks 32 x 64 x 64 (48 blocks), output mode {args.output_mode}, "
          f"scheduler {args.scheduler or 'default (auto)'}, "
          f"{args.repeat} run(s) each (medians), load average {os.getloadavg()[0]:.1f} at the end")
    for name, (seconds, cpu, stdout) in runs.items():
        lines = [line.strip() for line in stdout.splitlines()]
        skipped = next((line for line in lines if "skipped" in line), "")
        total = next((line.rsplit(" in ", 1)[-1] for line in lines if line.startswith("found ")), "?")
        stages = next((line for line in lines if line.startswith("stages:")), "")
        print(f"  {name:24s} wall {seconds:6.1f} s, CPU {cpu:6.1f} s   {skipped}; run {total}\n  {'':24s} {stages}")
    fixed = runs["one nucleus (fixed cost)"]
    for k, what in ((0, "wall"), (1, "CPU")):
        print(f"{what} ratio octant / full: {runs['octant'][k] / runs['full'][k]:.2f} (goal <= 0.5); "
              f"octant with / without skipping: {runs['octant'][k] / runs['octant, --no-skip-empty'][k]:.2f}; "
              f"fixed cost (one block) {fixed[k]:.1f} s; beyond it, octant / full: "
              f"{(runs['octant'][k] - fixed[k]) / (runs['full'][k] - fixed[k]):.2f}")
    print(json.dumps({k: [[round(r[0], 1), round(r[1], 1)] for r in v] for k, v in got.items()}))


if __name__ == "__main__":
    main()
