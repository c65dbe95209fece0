"""The environment of bigseg's Dask workers: memory trimming and thread counts.

distributed's Nanny starts every worker with ``MALLOC_TRIM_THRESHOLD_=65536``
(``distributed.nanny.pre-spawn-environ``). Setting it at all fixes glibc's
mmap threshold at 128 KiB, so every array above that is mapped and unmapped
again, and each numpy/torch temporary pays its page faults anew: the model's
``predict`` on one block ran 2× slower in a worker than in a plain process.
bigseg's workers instead keep freed memory up to :data:`TRIM_THRESHOLD` and map
only arrays above :data:`MMAP_THRESHOLD` (glibc's own upper limit for its
dynamic threshold), so long-lived workers still give large blocks back.

Dask's own sampling profiler walks each worker's task stack every 10 ms by default: about 2 % of
a core per worker, taken from the task on a one-core worker. bigseg's workers sample every
:data:`PROFILE_INTERVAL` instead (the dashboard's profile still fills, at a tenth of the samples).
Every scheduler, nanny, worker and client also checks its event loop's health every 20 ms and
samples the process's CPU and memory every 500 ms: an idle LocalCluster of two workers took 4 %
of a core in the driver (scheduler, nannies, client) and 1.6 % in each worker, mostly those
checks. bigseg's clusters check every :data:`TICK_INTERVAL` (still well within the 3 s after which
Dask warns of a blocked loop) and sample every :data:`MONITOR_INTERVAL`: 1.1 % and 0.6 %.

Threads: every Dask thread of a worker runs one task, and each task may use
``task_threads`` cores in torch (intra-op) and BLAS; a worker's Dask threads ×
task threads are the cores it is given. The same values reach workers that
bigseg starts (:func:`worker_config`, applied by ``open_client``) and workers
started by ``dask worker`` (the Dask config file ``deploy/dask/bigseg.yaml``,
named by ``DASK_CONFIG``; a test keeps it equal to :func:`worker_environ`).

A worker process of the embedded cluster that has closed normally ends without the interpreter's
teardown (:func:`exit_quickly`): freeing the modules of scipy, zarr, pandas and the rest took 0.8–1.7 s
per process, which the cluster's close waited for at the end of every run.

A small run is faster without a cluster: starting and stopping one (the worker processes spawning,
importing the stack, exiting) costs seconds, more than a few blocks' work. The default scheduler
``'auto'`` runs in this process when :func:`auto_scheduler` expects that to be no slower.
"""

from __future__ import annotations

import atexit
import os
import sys
from dataclasses import dataclass
from typing import Any

from bigseg.errors import InputError

__all__ = [
    "IN_PROCESS_VOXELS",
    "MMAP_THRESHOLD",
    "MONITOR_INTERVAL",
    "PROFILE_INTERVAL",
    "TICK_INTERVAL",
    "TRIM_THRESHOLD",
    "WorkerLayout",
    "auto_scheduler",
    "exit_quickly",
    "local_layout",
    "worker_config",
    "worker_environ",
    "worker_settings",
]

TRIM_THRESHOLD = 128 * 2**20  # bytes of free heap kept before glibc gives memory back
MMAP_THRESHOLD = 32 * 2**20  # allocations above this are mapped (freed at once)
ENV_KEY = "distributed.nanny.pre-spawn-environ"
PROFILE_INTERVAL = "100ms"  # distributed's default 10ms costs ~2 % of a worker's core
PROFILE_KEY = "distributed.worker.profile.interval"
TICK_INTERVAL = "1s"  # distributed's default 20ms: the event loop's health check, most of an idle cluster's CPU
TICK_KEY = "distributed.admin.tick.interval"
MONITOR_INTERVAL = "2s"  # distributed's default 500ms: CPU and memory samples for the dashboard
MONITOR_KEY = "distributed.admin.system-monitor.interval"
# Workers of the embedded cluster get at least this much memory each; past that, cores go to
# task threads rather than to more workers (each worker holds a model and a block's arrays).
MIN_WORKER_MEMORY = 2 * 2**30
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
#: Voxels up to which a classical-predictor run is no slower in this process than on an embedded
#: cluster of two single-threaded workers, start and close included (measured on 2 cores: 6.3 Mvox
#: took 15-19 s in-process against 23-25 s on the cluster, 12.6 Mvox 44-49 s against 41-47 s;
#: docs/benchmarks.md, *Empty space*). The cluster's extra fixed cost is what this buys back.
IN_PROCESS_VOXELS = 2**23
#: A model's voxel costs about this many classical ones on a CPU (16 against 1.5 s/Mvox of ``segment``).
MODEL_VOXEL_COST = 10
#: Share of its workers' cores a cluster turns into speed: what it reached of the machine's ceiling
#: (two plain processes at once) in docs/benchmarks.md, *Orchestration* (0.9-0.96).
CLUSTER_EFFICIENCY = 0.9


def worker_environ(task_threads: int = 1) -> dict[str, int]:
    """Environment of a worker process whose tasks each use ``task_threads`` cores.

    For ``distributed.nanny.pre-spawn-environ`` (set before the worker process starts,
    where glibc, OpenMP and BLAS read it). A variable already set in the environment
    of ``dask worker`` wins over these values (distributed's rule).
    """
    if int(task_threads) < 1:
        raise InputError(f"`task_threads` must be >= 1, got {task_threads}")
    n = int(task_threads)
    return {
        "MALLOC_TRIM_THRESHOLD_": TRIM_THRESHOLD,
        "MALLOC_MMAP_THRESHOLD_": MMAP_THRESHOLD,
        **{name: n for name in THREAD_VARIABLES},
    }


def worker_config(task_threads: int = 1) -> dict[str, Any]:
    """Dask config (for ``dask.config.set``) that gives Nanny-started workers :func:`worker_environ`,
    the profiler interval :data:`PROFILE_INTERVAL` and the health-check and monitor intervals
    :data:`TICK_INTERVAL` and :data:`MONITOR_INTERVAL`.

    Use it around the start of any cluster (LocalCluster, dask-jobqueue): the Nanny reads it
    when it starts a worker, and hands it to the worker process; a LocalCluster's scheduler and
    nannies (in the calling process) read the intervals when they start.
    """
    return {ENV_KEY: worker_environ(task_threads), PROFILE_KEY: PROFILE_INTERVAL, TICK_KEY: TICK_INTERVAL,
            MONITOR_KEY: MONITOR_INTERVAL}


@dataclass(frozen=True)
class WorkerLayout:
    """How the embedded cluster divides a machine: workers × Dask threads × task threads ≤ cores."""

    n_workers: int
    threads_per_worker: int
    task_threads: int

    @property
    def cores(self) -> int:
        return self.n_workers * self.threads_per_worker * self.task_threads


def _machine() -> tuple[int, int]:
    """Cores this process may use, and total memory in bytes."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    import psutil

    return max(1, cores), int(psutil.virtual_memory().total)


def local_layout(
    n_workers: int | None = None,
    threads_per_worker: int = 1,
    task_threads: int | None = None,
    *,
    cores: int | None = None,
    memory: int | None = None,
) -> WorkerLayout:
    """The embedded cluster's workers and threads on a machine of ``cores`` and ``memory`` bytes.

    Default: one single-threaded worker process per core (processes avoid the GIL), as many as
    memory allows at :data:`MIN_WORKER_MEMORY` each; cores left over become task threads
    (torch intra-op and BLAS) of each worker. Given values are kept as given.
    """
    if cores is None or memory is None:
        machine_cores, machine_memory = _machine()
        cores = cores or machine_cores
        memory = memory or machine_memory
    if n_workers is None:
        per_worker = threads_per_worker * (task_threads or 1)
        n_workers = max(1, min(cores // per_worker, memory // MIN_WORKER_MEMORY))
    if task_threads is None:
        task_threads = max(1, cores // (n_workers * threads_per_worker))
    return WorkerLayout(int(n_workers), int(threads_per_worker), int(task_threads))


def auto_scheduler(
    voxels: int,
    *,
    model: bool,
    n_workers: int | None = None,
    threads_per_worker: int = 1,
    task_threads: int | None = None,
    cores: int | None = None,
    memory: int | None = None,
) -> str:
    """``'sync'`` (this process) or ``'local'`` (an embedded cluster) for a run over ``voxels``.

    In this process a run works one block at a time, with no cluster to start or close; a cluster of
    ``n`` workers divides the work by about ``0.9 n`` after a fixed cost of its own. So the run stays
    here while its work is below ``fixed * s / (s - 1)`` (``s = 0.9 n``): :data:`IN_PROCESS_VOXELS` at
    two workers (where it was measured), down to about half that on many cores, and
    :data:`MODEL_VOXEL_COST` times fewer voxels with a model. Given ``n_workers`` asks for a cluster;
    a machine that would get one worker (one core, or memory for one) never gains from one.
    """
    if n_workers is not None:
        return "local"
    workers = local_layout(None, threads_per_worker, task_threads, cores=cores, memory=memory).n_workers
    speedup = CLUSTER_EFFICIENCY * workers
    if speedup <= 1:
        return "sync"
    two = 2 * CLUSTER_EFFICIENCY
    budget = IN_PROCESS_VOXELS * (speedup / (speedup - 1)) / (two / (two - 1))
    return "sync" if voxels * (MODEL_VOXEL_COST if model else 1) <= budget else "local"


def exit_quickly(dask_worker: Any) -> None:
    """Make this worker process, once ``dask_worker`` has closed normally, end without the
    interpreter's teardown (``client.run(exit_quickly)`` on the embedded cluster).

    Its exit handlers still run (logging's flush, multiprocessing's, distributed's); only the
    freeing of every module and object is skipped, as a forked child's exit skips it. Every task's
    output is durable when the task returns, so nothing is left to write by then. A worker that did
    not close normally (it failed, or is still running) exits as usual, with its own exit status.
    """
    atexit.register(_end_closed_worker, dask_worker)


def _end_closed_worker(worker: Any) -> None:
    from distributed.core import Status

    if worker.status != Status.closed:
        return
    atexit.unregister(_end_closed_worker)
    atexit._run_exitfuncs()  # the handlers registered before this one
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(0)


def worker_settings() -> dict[str, Any]:
    """What this process runs with: the variables above, torch's thread count and the profiler,
    health-check and monitor intervals (run it in a worker with ``client.run`` to check a deployment)."""
    import dask
    import torch

    names = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", *THREAD_VARIABLES)
    return {**{n: os.environ.get(n) for n in names}, "torch_threads": torch.get_num_threads(),
            "profile_interval": dask.config.get(PROFILE_KEY), "tick_interval": dask.config.get(TICK_KEY),
            "monitor_interval": dask.config.get(MONITOR_KEY)}
