"""How busy the predict stage keeps one device: a simulated device on any machine (prints figures).

One worker process holds the (simulated) device, as a GPU worker does. Its device time is a sleep
proportional to the patch voxels (:class:`bigseg.predict.SimulatedSpec`), which releases the GIL
as a GPU kernel does. The benchmark first measures the predict stage's host work per block
(reading, normalising, writing the image copy and the maps, labelling seeds) with no device
time, then gives the device ``--device-vs-host`` times that work per block and runs the stage
with the worker's Dask threads at 1 (each block in sequence: *before*) and at ``--threads``
(blocks overlap: while one block holds the device, others read and write: *after*). Busy
fraction: device time / wall time, from the end of the first block's device use to the last.

    python benchmarks/device_busy.py                    # 64 blocks, threads 1 and 3
    python benchmarks/device_busy.py --shape 128 256 512 --threads 1 2 3 4
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bigseg.pipeline import open_client, segment
from bigseg.predict import SimulatedSpec, busy_fraction, device_intervals
from bigseg.synth import write_synthetic


def _run(src: Path, out: Path, threads: int, spec: SimulatedSpec, block: tuple[int, ...]) -> tuple[float, list[Any]]:
    with open_client("local", n_workers=1, threads_per_worker=threads, memory_limit="auto", task_threads=1) as client:
        client.run(_import_stack)
        res = segment(str(src), str(out), client=client, predictor_spec=spec, diameter_um=8.0,
                      block_shape=block, overwrite=True)
        intervals = next(iter(client.run(device_intervals).values()))
    return res.timings["predict"], intervals


def _import_stack() -> None:
    import bigseg.pipeline._tasks  # noqa: F401


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, nargs=3, default=(128, 256, 256))
    ap.add_argument("--block", type=int, nargs=3, default=(32, 64, 64))
    ap.add_argument("--threads", type=int, nargs="+", default=(1, 3))
    ap.add_argument("--device-vs-host", type=float, default=1.0, help="device time per block / host time per block")
    args = ap.parse_args()
    block = tuple(args.block)
    n_blocks = int(np.prod([-(-s // b) for s, b in zip(args.shape, block)]))
    work = Path(tempfile.mkdtemp(prefix="bigseg-busy-"))
    try:
        src = work / "in.zarr"
        write_synthetic(src, tuple(args.shape), voxel_size=(1.0, 1.0, 1.0), preset="confocal", diameter_um=8.0,
                        block_shape=(64, 128, 128), overwrite=True)
        host, _ = _run(src, work / "host.zarr", 1, SimulatedSpec(0.0), block)
        probe = SimulatedSpec(1.0)
        read = tuple(min(s, b + 2 * h) for s, b, h in zip(args.shape, block, probe.halo))
        per_mvox = args.device_vs_host * host / n_blocks / probe.build().device_seconds(read)
        spec = SimulatedSpec(per_mvox)
        device_block = spec.build().device_seconds(read)
        print(f"# {n_blocks} blocks of {block}, volume {tuple(args.shape)}; host work {host / n_blocks * 1e3:.0f} ms "
              f"per block (no device); simulated device {device_block * 1e3:.0f} ms per block "
              f"({per_mvox:.3f} s per Mvox of patches)")
        print(f"{'threads':>7} {'predict s':>9} {'device s':>8} {'busy':>5}")
        for threads in args.threads:
            t0 = time.perf_counter()
            wall, intervals = _run(src, work / f"t{threads}.zarr", threads, spec, block)
            device = sum(e - s for s, e in intervals)
            print(f"{threads:>7} {wall:>9.2f} {device:>8.2f} {busy_fraction(intervals):>5.2f}"
                  f"   (run {time.perf_counter() - t0:.0f}s)", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
