"""How busy the predict stage keeps one device: a simulated device on any machine (prints figures).

One worker process holds the (simulated) device, as a GPU worker does. Its device time is a sleep
proportional to the patch voxels (:class:`bigseg.predict.SimulatedSpec`), which releases the GIL
as a GPU kernel does. The benchmark first measures the predict stage's host work per block
(reading, normalising, writing the image copy and the maps, labelling seeds) with no device time,
in one worker thread, then gives the device ``--device-vs-host`` times that work per block and runs
the stage three ways:

- ``serial``: the device's worker with one Dask thread: blocks in sequence (*before* issue 16);
- ``threads``: that worker with ``--threads`` Dask threads, everything in one stage: while one block
  holds the device, others read and write (issue 16's first round);
- ``split``: ``gpu_resources`` on, the worker with ``--threads`` threads and the GPU resource plus
  ``--cpu-workers`` single-threaded workers: the GPU stage only reads, predicts and writes the maps;
  the image copy and the seed labels follow in a host stage on every worker.

Figures: the GPU stage's wall time, the host stage's (split only), the device time, the busy fraction
(device time / wall time from the end of the first block's device use), the GPU stage's host time
measured inside the same run (``bigseg.predict.overlap_times``) with the share of it the device hid,
and the CPU seconds per block of the device worker's process during that stage (all its threads:
what one process must fit into the device time per block, whatever the machine's load).

    python benchmarks/device_busy.py                    # 64 blocks
    python benchmarks/device_busy.py --shape 128 256 512 --threads 4 --only split
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bigseg.pipeline import segment, worker_config
from bigseg.predict import SimulatedSpec, busy_fraction, device_tasks, device_uses, overlap_times
from bigseg.synth import write_synthetic

MODES = ("serial", "threads", "split")


def _cluster(gpu_threads: int, cpu_workers: int) -> tuple[Any, Any]:
    """One worker holding the device (``GPU`` resource) and ``cpu_workers`` plain single-threaded ones."""
    import dask
    from distributed import Client, Nanny, Scheduler, SpecCluster

    workers: dict[str, Any] = {"gpu-0": {"cls": Nanny, "options": {
        "nthreads": gpu_threads, "resources": {"GPU": gpu_threads}, "memory_limit": "4GiB"}}}
    for i in range(cpu_workers):
        workers[f"cpu-{i}"] = {"cls": Nanny, "options": {"nthreads": 1, "memory_limit": "4GiB"}}
    with dask.config.set(worker_config(1)):
        cluster = SpecCluster(workers=workers, scheduler={"cls": Scheduler, "options": {"dashboard_address": ":0"}},
                              silence_logs=40)
    return cluster, Client(cluster)


def _run(src: Path, out: Path, mode: str, threads: int, cpu_workers: int, spec: SimulatedSpec,
         block: tuple[int, ...]) -> dict[str, Any]:
    gpu_threads = 1 if mode == "serial" else threads
    cluster, client = _cluster(gpu_threads, cpu_workers if mode == "split" else 0)
    with cluster, client:
        client.run(_import_stack)
        gpu = next(a for a, w in client.scheduler_info()["workers"].items() if w.get("name") == "gpu-0")
        cpu: list[float] = []

        def progress(stage: str, done: int, total: int) -> None:
            # The device worker's process CPU seconds at the start and the end of the stage that uses the device.
            if stage in ("predict", "predict-gpu") and done in (0, total):
                cpu.append(client.run(_cpu_seconds, workers=[gpu])[gpu])

        res = segment(str(src), str(out), client=client, predictor_spec=spec, diameter_um=8.0, progress=progress,
                      block_shape=block, overwrite=True, gpu_resources=(mode == "split"))
        uses = client.run(device_uses, workers=[gpu])[gpu]
        tasks = client.run(device_tasks, workers=[gpu])[gpu]
    span, host, device = overlap_times(tasks, uses)
    return {"predict": res.timings["predict"], "seeds": res.timings.get("seeds", 0.0), "device": device,
            "busy": busy_fraction([(s, e) for _, _, s, e in uses]) if uses else float("nan"),
            "host": host, "hidden": (host + device - span) / host if host else float("nan"),
            "cpu": (cpu[-1] - cpu[0]) / res.n_blocks if len(cpu) == 2 else float("nan")}


def _cpu_seconds() -> float:
    import psutil

    t = psutil.Process().cpu_times()
    return float(t.user + t.system)


def _import_stack() -> None:
    import bigseg.pipeline._tasks  # noqa: F401


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, nargs=3, default=(128, 256, 256))
    ap.add_argument("--block", type=int, nargs=3, default=(32, 64, 64))
    ap.add_argument("--threads", type=int, default=3, help="Dask threads of the device's worker")
    ap.add_argument("--cpu-workers", type=int, default=1, help="plain workers beside it (split)")
    ap.add_argument("--only", nargs="+", choices=MODES, default=list(MODES))
    ap.add_argument("--device-vs-host", type=float, default=1.0, help="device time per block / host time per block")
    args = ap.parse_args()
    block = tuple(args.block)
    n_blocks = int(np.prod([-(-s // b) for s, b in zip(args.shape, block)]))
    work = Path(tempfile.mkdtemp(prefix="bigseg-busy-"))
    try:
        src = work / "in.zarr"
        write_synthetic(src, tuple(args.shape), voxel_size=(1.0, 1.0, 1.0), preset="confocal", diameter_um=8.0,
                        block_shape=(64, 128, 128), overwrite=True)
        host = _run(src, work / "host.zarr", "serial", 1, 0, SimulatedSpec(0.0), block)["predict"]
        probe = SimulatedSpec(1.0)
        read = tuple(min(s, b + 2 * h) for s, b, h in zip(args.shape, block, probe.halo))
        per_mvox = args.device_vs_host * host / n_blocks / probe.build().device_seconds(read)
        spec = SimulatedSpec(per_mvox)
        device_block = spec.build().device_seconds(read)
        print(f"# {n_blocks} blocks of {block}, volume {tuple(args.shape)}; host work {host / n_blocks * 1e3:.0f} ms "
              f"per block (one stage, one thread, no device); simulated device {device_block * 1e3:.0f} ms per block "
              f"({per_mvox:.3f} s per Mvox of patches); device worker threads {args.threads}, "
              f"{args.cpu_workers} CPU worker(s) in split mode")
        print(f"{'mode':>8} {'GPU stage s':>11} {'host stage s':>12} {'device s':>8} {'busy':>5} "
              f"{'host in run s':>13} {'hidden':>6} {'device worker CPU ms/block':>26}")
        for mode in args.only:
            t0 = time.perf_counter()
            r = _run(src, work / f"{mode}.zarr", mode, args.threads, args.cpu_workers, spec, block)
            print(f"{mode:>8} {r['predict']:>11.2f} {r['seeds']:>12.2f} {r['device']:>8.2f} {r['busy']:>5.2f} "
                  f"{r['host']:>13.2f} {r['hidden']:>6.2f} {r['cpu'] * 1e3:>26.0f}   (run {time.perf_counter() - t0:.0f}s)",
                  flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
