"""A brain-shaped phantom segmented end to end on a local cluster: per-stage time, skipped blocks,
peak RSS of each worker and of the driver, and end-to-end time against the sum of per-block compute.

The phantom is ``bigseg synth`` with the mesoSPIM preset (5 x 5.26 x 5.26 µm voxels) and
``--tissue brain`` (about 45 % of the box is tissue, the rest a dark box with camera noise),
written once with a 4-level pyramid and reused. It is segmented with the classical
predictor, labels only (no image copy), empty blocks skipped, in blocks of 64 x 128 x 128 by
default: against 128^3 they skip 31 % of the blocks instead of 20 % and read 6 % fewer voxels
(halo included) of this phantom's tissue mask, at 672 active blocks instead of 386
(docs/benchmarks.md, *Whole-brain phantom*).

Write the phantom first at low priority (it is not what is timed), then time the run:

    nice -n 19 bigseg synth brain.ome.zarr --shape 512 1408 1408 --preset mesospim --tissue brain \
        --outside-background 60 --seed 1 --block-shape 128 128 128 --n-levels 4 --scheduler local
    python benchmarks/whole_brain.py --phantom brain.ome.zarr            # 512 x 1408 x 1408 (1.0 Gvox)
    python benchmarks/whole_brain.py --phantom small.ome.zarr --shape 384 768 768
"""

from __future__ import annotations

import argparse
import math
import os
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from bigseg.io import is_complete, open_volume


def phantom(path: Path, shape: tuple[int, int, int], client: Any) -> float:
    """Write the phantom unless a complete one of this shape is there; returns seconds spent."""
    if is_complete(str(path)) and open_volume(str(path)).shape == shape:
        return 0.0
    from bigseg.synth import write_synthetic

    t0 = time.perf_counter()
    write_synthetic(path, shape, preset="mesospim", tissue="brain", outside_background=60.0, seed=1,
                    block_shape=(128, 128, 128), n_levels=4, client=client, overwrite=True)
    return time.perf_counter() - t0


class RssSampler:
    """Peak resident memory of this process (driver and scheduler) and of each worker, sampled every 0.2 s."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.peak = {name: 0 for name in self.procs}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            for name, proc in self.procs.items():
                try:
                    self.peak[name] = max(self.peak[name], proc.memory_info().rss)
                except psutil.Error:
                    pass
            time.sleep(0.2)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--phantom", type=Path, required=True)
    ap.add_argument("--shape", type=int, nargs=3, default=(512, 1408, 1408))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--block-shape", type=int, nargs=3, default=(64, 128, 128))
    ap.add_argument("--out", type=Path, default=None, help="default: next to the phantom")
    args = ap.parse_args()
    from distributed import Client, LocalCluster, get_task_stream

    from bigseg.pipeline import segment

    shape = tuple(args.shape)
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, memory_limit="8GiB",
                      dashboard_address="127.0.0.1:0", host="127.0.0.1") as cluster, Client(cluster) as client:
        wrote = phantom(args.phantom, shape, client)  # type: ignore[arg-type]
        out = args.out or args.phantom.with_name(args.phantom.stem + "-labels.zarr")
        client.restart()  # fresh workers: their peaks are this run's
        client.wait_for_workers(args.workers, timeout=300)
        pids = {"driver": os.getpid(), **{f"worker {i}": pid for i, pid in enumerate(client.run(os.getpid).values())}}
        with RssSampler(pids) as rss, get_task_stream(client) as stream:
            t0 = time.perf_counter()
            result = segment(str(args.phantom), str(out), client=client, predictor="classical",
                             block_shape=tuple(args.block_shape), output_mode="labels-only", overwrite=True)
            wall = time.perf_counter() - t0
    compute: dict[str, float] = {}
    for task in stream.data:
        stage = str(task["key"]).split("-")[1] if str(task["key"]).startswith("bigseg-") else "other"
        for ss in task["startstops"]:
            if ss["action"] == "compute":
                compute[stage] = compute.get(stage, 0.0) + ss["stop"] - ss["start"]
    total = sum(compute.values())
    gvox = math.prod(shape) / 1e9
    print(f"phantom {shape} = {gvox:.2f} Gvox at 5 x 5.26 x 5.26 µm ({'written in %.0f s' % wrote if wrote else 'reused'})")
    print(f"{result.n_objects:,} nuclei; {result.n_blocks} blocks of {result.grid.block_shape}, "
          f"halo {result.grid.halo.shape}; {result.n_skipped} skipped ({result.n_skipped / result.n_blocks:.0%})")
    print("start-up and stages (driver wall, s): " + ", ".join(f"{k} {v:.1f}" for k, v in result.timings.items()))
    print("per-block compute (s, summed over tasks): " + ", ".join(f"{k} {v:.1f}" for k, v in compute.items()))
    print("peak RSS (MiB): " + ", ".join(f"{k} {v / 2**20:.0f}" for k, v in rss.peak.items()))
    print(f"end to end {wall:.1f} s on {args.workers} workers; sum of per-block compute {total:.1f} s; "
          f"efficiency = compute / (workers x end to end) = {total / (args.workers * wall):.2f} (goal >= 0.8)")
    print(f"throughput {math.prod(shape) / wall / 1e6:.2f} Mvox/s of box, "
          f"{math.prod(shape) * (1 - result.n_skipped / result.n_blocks) / total / 1e6:.2f} Mvox/s per worker "
          "of processed blocks")


if __name__ == "__main__":
    main()
