"""Submission and bookkeeping overhead of the block runner at 10^4 and 10^5 blocks.

Runs ``BlockRunner.imap`` (the one place that submits to Dask, with its
bounded window and its batches of light blocks) over the blocks of a grid with
a trivial task (returns the block's linear index), on a LocalCluster (its
scheduler inside this, the driver's, process) and on an external ``dask
scheduler`` + ``dask worker`` pair (2 single-threaded workers each). The blocks
are made on demand, as the pipeline's are, and the results checked as they come
(a count and a sum), so the driver's own memory holds nothing per block. Prints
time per block and the driver's resident memory before and after, so that
growth per block shows; with ``--every N``, also the time per block and the
driver's memory over each further N blocks of one run (flat: no growth with the
blocks done). ``--max-batch 1`` runs one block per Dask task (as before batching).

    python benchmarks/submission.py                  # 1e4 and 1e5 blocks, local and external
    python benchmarks/submission.py --blocks 1e4 --kinds local
    python benchmarks/submission.py --blocks 1e5 --kinds local --every 1e4
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import psutil

from bigseg.pipeline import BlockRunner
from bigseg.tiling import Block, Grid, Halo


class Blocks(Sequence[Block]):
    """The blocks of ``grid``, made when submitted (the driver holds no list of them)."""

    def __init__(self, grid: Grid) -> None:
        self.grid = grid

    def __len__(self) -> int:
        return self.grid.n_blocks

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self.grid.block(k) for k in range(*i.indices(len(self)))]
        return self.grid.block(int(i))


def trivial(context: Any, block: Any) -> int:
    return int(block.linear)


@contextlib.contextmanager
def external(n_workers: int) -> Iterator[str]:
    """A `dask scheduler` and `n_workers` `dask worker` processes on this machine."""
    bindir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as tmp:
        sched_file = os.path.join(tmp, "scheduler.json")
        procs = [subprocess.Popen([str(bindir / "dask"), "scheduler", "--scheduler-file", sched_file,
                                   "--host", "127.0.0.1", "--no-dashboard"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
        for _ in range(200):
            if os.path.exists(sched_file):
                break
            time.sleep(0.1)
        procs += [subprocess.Popen([str(bindir / "dask"), "worker", "--scheduler-file", sched_file, "--nthreads",
                                    "1", "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                  for _ in range(n_workers)]
        try:
            yield sched_file
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(30)


@contextlib.contextmanager
def client_for(kind: str, n_workers: int) -> Iterator[Any]:
    from distributed import Client, LocalCluster

    if kind == "local":
        with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None,
                          host="127.0.0.1") as cluster, Client(cluster) as client:
            yield client
        return
    with external(n_workers) as sched_file, Client(scheduler_file=sched_file) as client:
        client.wait_for_workers(n_workers, timeout=120)
        yield client


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--blocks", type=float, nargs="+", default=[1e4, 1e5])
    ap.add_argument("--kinds", nargs="+", default=["local", "external"])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--every", type=float, default=0, help="print a checkpoint every this many blocks")
    ap.add_argument("--max-batch", type=int, default=None, help="blocks per Dask task at most (default: the runner's)")
    args = ap.parse_args()
    me = psutil.Process()
    for kind in args.kinds:
        with client_for(kind, args.workers) as client:
            for n in (int(b) for b in args.blocks):
                side = round(n ** (1 / 3))
                grid = Grid((side * 4, side * 4, round(n / side / side) * 4), (4, 4, 4), Halo.of(1))
                blocks = Blocks(grid)
                runner = BlockRunner.on(client, **({"max_batch": args.max_batch} if args.max_batch else {}))
                runner.set_context(None)
                rss0 = me.memory_info().rss
                t0 = last = time.perf_counter()
                count = total = 0
                for k, (i, result) in enumerate(runner.imap("trivial", trivial, blocks), 1):
                    assert result == i, (i, result)
                    count, total = count + 1, total + result
                    if args.every and k % int(args.every) == 0:
                        now = time.perf_counter()
                        print(f"  {kind:8s} {k:>7,} done: {(now - last) / args.every * 1e3:.2f} ms/block over the last "
                              f"{int(args.every):,}; driver RSS {me.memory_info().rss / 2**20:.0f} MiB", flush=True)
                        last = now
                seconds = time.perf_counter() - t0
                n = grid.n_blocks
                assert count == n and total == n * (n - 1) // 2, (count, total)
                grew = (me.memory_info().rss - rss0) / 2**20
                print(f"{kind:8s} {n:>7,} blocks (window {runner.window}, at most {runner.max_batch} per task): "
                      f"{seconds:7.1f} s, {seconds / n * 1e3:.2f} ms/block; driver RSS +{grew:.0f} MiB "
                      f"({(me.memory_info().rss) / 2**20:.0f} MiB); load average {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
