"""Empty space costs (almost) nothing: a volume with nuclei in one octant against a full one.

Two 96 x 256 x 256 volumes at 1 µm: one full of nuclei (radius 4, every 11
voxels), one with the same nuclei in a single octant and dark camera noise
elsewhere. Each is segmented by the CLI in a fresh process (start-up, local
cluster and writing included) with ``--diameter 8 --block-shape 32 64 64``;
the octant volume also with ``--no-skip-empty``. Prints wall time and the CPU time
of each run's whole process tree (less sensitive to other load on a shared
machine), the ratios octant / full (goal <= 0.5), and the blocks skipped.

    python benchmarks/empty_space.py [--workdir DIR] [--output-mode copy|labels-only]
"""

from __future__ import annotations

import argparse
import json
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
    for name, keep in (("full", np.ones(len(centres), bool)), ("octant", np.all(centres < half, axis=1))):
        out[name] = folder / f"{name}.ome.zarr"
        write_image(out[name], balls(centres[keep], 4.0, seed=1), chunk_shape=(32, 64, 64))
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
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        srcs = volumes(Path(tmp))
        mode = ("--output-mode", args.output_mode)
        runs = {
            "full": segment(srcs["full"], Path(tmp) / "full-out.zarr", *mode),
            "octant": segment(srcs["octant"], Path(tmp) / "octant-out.zarr", *mode),
            "octant, --no-skip-empty": segment(srcs["octant"], Path(tmp) / "octant-all.zarr", *mode,
                                               "--no-skip-empty"),
        }
    print(f"volume {SHAPE}, blocks 32 x 64 x 64 (48 blocks), output mode {args.output_mode}")
    for name, (seconds, cpu, stdout) in runs.items():
        skipped = next((line.strip() for line in stdout.splitlines() if "skipped" in line), "")
        print(f"  {name:24s} wall {seconds:6.1f} s, CPU {cpu:6.1f} s   {skipped}")
    for k, what in ((0, "wall"), (1, "CPU")):
        print(f"{what} ratio octant / full: {runs['octant'][k] / runs['full'][k]:.2f} (goal <= 0.5); "
              f"octant with / without skipping: {runs['octant'][k] / runs['octant, --no-skip-empty'][k]:.2f}")
    print(json.dumps({k: [round(v[0], 1), round(v[1], 1)] for k, v in runs.items()}))


if __name__ == "__main__":
    main()
