"""What a Dask cluster costs against one process: cluster efficiency and per-block task overhead.

One synthetic volume (default 96×256×256, nuclei of 8 µm at 1 µm voxels) in blocks of 32×64×64,
the default model, segmented

* in this process (``--scheduler sync``, torch and BLAS on one thread: one core per block),
* in N plain processes at once (no Dask), each the same whole run on its own output: the share of
  its one-process speed that the machine gives each of N concurrent processes (shared caches,
  memory bandwidth, a hypervisor's core siblings). That is the *ceiling* of the cluster efficiency
  here, whatever the scheduler: ``T_process / T_concurrent`` per stage,
* on bigseg's embedded LocalCluster of N single-threaded workers (its worker environment), and
* on a LocalCluster as distributed starts it by default (``before``: trim threshold 64 KiB),

and prints per stage the seconds, the cluster efficiency ``T_process / (N × T_cluster)`` (1 is
the ideal 1/N) beside its ceiling and the share of the ceiling reached, the CPU seconds each way
(the cluster's: its workers', and the driver process's with the scheduler inside it), the time of the model's ``predict`` on one block inside a worker against this
process, and, with a predictor that does nothing (``SimulatedSpec(0)``), each stage's task
overhead in ms of core time per block: ``(N × T_cluster − T_process) / blocks``.

    python benchmarks/orchestration.py                       # 2 workers
    python benchmarks/orchestration.py --workers 2 --shape 64 128 128   # quick
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bigseg.io import open_volume
from bigseg.pipeline import open_client, segment, worker_settings
from bigseg.predict import SimulatedSpec, default_model_spec, estimate_normalization, get_predictor
from bigseg.synth import write_synthetic


def _block_predict(image: np.ndarray, diameter: float, repeats: int = 3) -> tuple[float, float, float]:
    """The default model's predict on ``image`` in the calling process and thread: best wall
    seconds, best CPU seconds of the thread, and minor page faults per call (the last two barely
    depend on what else the machine runs)."""
    import resource

    import torch as _torch

    _torch.set_num_threads(1)
    pred = get_predictor(default_model_spec((1.0, 1.0, 1.0), diameter, device="cpu"))
    pred.predict(image)
    wall = cpu = float("inf")
    faults = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.thread_time()
        pred.predict(image)
        wall, cpu = min(wall, time.perf_counter() - t0), min(cpu, time.thread_time() - c0)
    return wall, cpu, (resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - faults) / repeats


def _plain_run(src: str, out: str, common: dict[str, Any], spec: Any, diameter: float, barrier: Any,
               results: Any) -> None:
    """One plain process of the ceiling run: warm up, wait for the others, segment in-process."""
    torch.set_num_threads(1)
    if spec is None:
        get_predictor(default_model_spec((1.0, 1.0, 1.0), diameter, device="cpu"))
    _import_stack()
    barrier.wait()
    cpu = time.process_time()
    res = segment(src, out, scheduler="sync", predictor_spec=spec, **common)
    results.put((res.timings, time.process_time() - cpu))


def _concurrent(src: Path, work: Path, workers: int, common: dict[str, Any], spec: Any,
                diameter: float) -> tuple[dict[str, float], float]:
    """Per stage, the mean seconds of ``workers`` plain processes running the same whole run at once;
    and the CPU seconds of all of them."""
    import multiprocessing

    mp = multiprocessing.get_context("spawn")
    barrier, results = mp.Barrier(workers), mp.Queue()
    procs = [mp.Process(target=_plain_run, args=(str(src), str(work / f"plain{k}.zarr"), common, spec, diameter,
                                                 barrier, results)) for k in range(workers)]
    for p in procs:
        p.start()
    got = [results.get() for _ in procs]
    for p in procs:
        p.join()
    timings = [t for t, _ in got]
    return {s: float(np.mean([t[s] for t in timings])) for s in timings[0]}, sum(c for _, c in got)


def _cpu(client: Any = None) -> tuple[float, float]:
    """CPU seconds so far of this process (the driver; with a LocalCluster, its scheduler too) and of the
    client's workers together."""
    return time.process_time(), sum(client.run(time.process_time).values()) if client is not None else 0.0


def _used(start: tuple[float, float], client: Any = None) -> tuple[float, float]:
    end = _cpu(client)
    return end[0] - start[0], end[1] - start[1]


def _planned_spec(src: Path, common: dict[str, Any]) -> Any:
    """The predictor spec that a run with ``common`` plans for ``src`` (equal to the one its tasks use)."""
    from bigseg.config import load_config
    from bigseg.pipeline._plan import _predictor

    return _predictor(load_config(**common), open_volume(str(src)))[0]


def _warm(client: Any, spec: Any = None) -> float:
    """Import the task stack and torch in every worker and load the run's model there: a cluster's
    fixed start-up cost, timed apart. (The in-process run loads its model while planning, which no
    stage time counts either.)"""
    t0 = time.perf_counter()
    client.run(_import_stack, spec)
    return time.perf_counter() - t0


def _import_stack(spec: Any = None) -> None:
    import torch  # noqa: F401

    import bigseg.pipeline._tasks  # noqa: F401

    if spec is not None:
        get_predictor(spec)


def _before_cluster(workers: int) -> Any:
    """A LocalCluster with distributed's default worker environment (as bigseg started it before)."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, memory_limit="auto",
                           dashboard_address=None, host="127.0.0.1", silence_logs=40)
    return cluster, Client(cluster)


Run = tuple[dict[str, float], Any, tuple[float, float]]  # stage seconds, one-block predict, CPU s (driver, workers)


def _busy(stream: list[dict[str, Any]], workers: int) -> dict[str, float]:
    """Per stage, the workers' busy fraction: seconds inside the stage's tasks over N × the span from
    its first task's start to its last task's end (what Dask's gaps and a stage's tail leave idle)."""
    spans: dict[str, list[tuple[float, float]]] = {}
    for task in stream:
        key = str(task["key"])
        if not key.startswith("bigseg-"):
            continue
        stage = key[len("bigseg-"):].rsplit("-", 2)[0]
        spans.setdefault(stage, []).extend(
            (s["start"], s["stop"]) for s in task["startstops"] if s["action"] == "compute")
    return {stage: sum(b - a for a, b in v) / (workers * (max(b for _, b in v) - min(a for a, _ in v)))
            for stage, v in spans.items()}


def _runs(src: Path, work: Path, workers: int, common: dict[str, Any], spec: Any, image: np.ndarray,
          diameter: float) -> dict[str, Run]:
    out: dict[str, Run] = {}
    block = _block_predict(image, diameter) if spec is None else None
    start = _cpu()
    res = segment(str(src), str(work / "sync.zarr"), scheduler="sync", predictor_spec=spec, **common)
    out["process"] = (res.timings, block, _used(start))
    _partial("process", res.timings, block)
    plain, plain_cpu = _concurrent(src, work, workers, common, spec, diameter)
    out["concurrent"] = (plain, None, (0.0, plain_cpu))
    _partial(f"{workers} plain processes at once, each", plain, None)
    planned = _planned_spec(src, common) if spec is None else None
    with open_client("local", n_workers=workers, threads_per_worker=1, memory_limit="auto", task_threads=1) as client:
        warm = _warm(client, planned)
        from distributed import get_task_stream

        start = _cpu(client)
        with get_task_stream(client) as stream:
            res = segment(str(src), str(work / "after.zarr"), client=client, predictor_spec=spec, **common)
        used = _used(start, client)
        busy = _busy(stream.data, workers)
        inner = client.submit(_block_predict, image, diameter, pure=False).result() if spec is None else None
        settings = next(iter(client.run(worker_settings).values()))
    out["cluster"] = (res.timings, inner, used)
    _partial("cluster", res.timings, inner)
    print(f"#   bigseg workers (imports and model load {warm:.1f}s, not counted): {settings}")
    print("#   workers busy inside tasks, per stage: " + ", ".join(f"{k} {v:.2f}" for k, v in busy.items()))
    cluster, client = _before_cluster(workers)
    with cluster, client:
        _warm(client, planned)
        start = _cpu(client)
        res = segment(str(src), str(work / "before.zarr"), client=client, predictor_spec=spec, **common)
        used = _used(start, client)
        inner = client.submit(_block_predict, image, diameter, pure=False).result() if spec is None else None
    out["before"] = (res.timings, inner, used)
    _partial("before", res.timings, inner)
    return out


def _partial(name: str, timings: dict[str, float], block: Any) -> None:
    """Each run's figures as soon as it ends (a long run cut short still leaves them)."""
    stages = ", ".join(f"{k} {v:.2f}s" for k, v in timings.items())
    print(f"#   {name}: {stages}; whole {sum(timings.values()):.2f}s; one-block predict {block}", flush=True)


def _report(title: str, runs: dict[str, Run], workers: int, n_blocks: int) -> None:
    print(f"\n## {title}")
    stages = [s for s in runs["process"][0] if s in runs["cluster"][0]]
    print(f"{'stage':<10} {'process s':>9} {'ceiling':>7} {'cluster s':>9} {'eff':>5} {'of ceil':>7} "
          f"{'before s':>9} {'eff':>5} {'overhead ms/block':>17}")
    keys = ("process", "concurrent", "cluster", "before")
    rows = [(s, *(runs[k][0][s] for k in keys)) for s in stages]
    rows.append(("whole run", *(sum(runs[k][0][s] for s in stages) for k in keys)))
    for stage, p, q, c, b in rows:
        over = (workers * c - p) / n_blocks * 1e3
        eff = p / (workers * c)
        print(f"{stage:<10} {p:>9.2f} {p / q:>7.2f} {c:>9.2f} {eff:>5.2f} {eff * q / p:>7.2f} {b:>9.2f} "
              f"{p / (workers * b):>5.2f} {over:>17.1f}")
    cpu = {k: sum(runs[k][2]) for k in keys}
    print(f"CPU seconds, whole run: process {cpu['process']:.2f}; {workers} plain processes at once "
          f"{cpu['concurrent']:.2f} ({cpu['concurrent'] / cpu['process']:.2f}×); cluster workers "
          f"{runs['cluster'][2][1]:.2f} + driver and scheduler {runs['cluster'][2][0]:.2f} "
          f"({cpu['cluster'] / cpu['process']:.2f}×); before {cpu['before']:.2f} ({cpu['before'] / cpu['process']:.2f}×)")
    if runs["process"][1] is not None:
        print("predict on one read ROI  wall s   CPU s  faults/call  (CPU s vs process)")
        plain_cpu = runs["process"][1][1]
        for key, name in (("process", "this process"), ("cluster", "bigseg worker"), ("before", "default worker")):
            wall, cpu, faults = runs[key][1]
            print(f"  {name:<21} {wall:>7.3f} {cpu:>7.3f} {faults:>12.0f}  {cpu / plain_cpu:.2f}×")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, nargs=3, default=(96, 256, 256))
    ap.add_argument("--block", type=int, nargs=3, default=(32, 64, 64))
    ap.add_argument("--diameter", type=float, default=8.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip-model", action="store_true", help="only the trivial-predictor overhead")
    args = ap.parse_args()
    torch.set_num_threads(1)  # the in-process runs: one core per block, as each worker has
    work = Path(tempfile.mkdtemp(prefix="bigseg-orch-"))
    try:
        src = work / "in.zarr"
        synth = write_synthetic(src, tuple(args.shape), voxel_size=(1.0, 1.0, 1.0), preset="confocal",
                                diameter_um=args.diameter, block_shape=(64, 128, 128), overwrite=True)
        volume = open_volume(str(src))
        common = dict(diameter_um=args.diameter, block_shape=tuple(args.block), overwrite=True)
        grid_blocks = int(np.prod([-(-s // b) for s, b in zip(args.shape, args.block)]))
        print(f"# volume {tuple(args.shape)}, {synth.n_nuclei} nuclei, {grid_blocks} blocks of {tuple(args.block)}, "
              f"{args.workers} workers × 1 thread, {os.cpu_count()} cores, torch {torch.__version__}, "
              f"load average {os.getloadavg()[0]:.1f} at the start")
        if not args.skip_model:
            norm = estimate_normalization(volume)
            halo = get_predictor(default_model_spec((1.0, 1.0, 1.0), args.diameter, device="cpu")).halo
            read = tuple(min(b + 2 * h, s) for b, h, s in zip(args.block, halo, args.shape))
            image = norm.apply(volume.read_level(0)[tuple(slice(0, r) for r in read)])
            runs = _runs(src, work, args.workers, common, None, image, args.diameter)
            _report(f"default model (read ROI {read})", runs, args.workers, grid_blocks)
        runs = _runs(src, work, args.workers, common, SimulatedSpec(0.0), np.zeros(1), args.diameter)
        _report("trivial predictor (SimulatedSpec(0)): task overhead", runs, args.workers, grid_blocks)
        print(f"load average {os.getloadavg()[0]:.1f} at the end "
              "(other load on the machine skews the wall times; the CPU seconds less)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
