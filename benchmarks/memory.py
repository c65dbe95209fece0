"""Peak worker memory of `bigseg segment` against volume size (prints figures, asserts nothing).

Synthesizes a volume (confocal-like nuclei at 1 µm voxels, written block by block), segments it
with the classical predictor in 128³ blocks on a fresh LocalCluster of 2 single-threaded worker
processes in bigseg's worker environment (``worker_config``), and prints each worker's peak
resident memory (sampled every 50 ms) next to the volume size, and its resident memory after the
run. Memory must follow the block, not the volume: the peak should stay flat while the volume
grows 8×, and over hundreds of blocks (``--block 32``).

    python benchmarks/memory.py                      # 256×512×512 and 512×1024×1024
    python benchmarks/memory.py --shapes 128,256,256  # quick check
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import dask
from distributed import Client, LocalCluster

from bigseg.pipeline import segment, worker_config
from bigseg.synth import write_synthetic


def _start_sampler(dask_worker: object) -> None:
    """Sample this worker's resident memory every 50 ms (ru_maxrss is inherited from the nanny
    across fork/exec, so it cannot tell a worker's own peak)."""
    import threading

    import psutil

    proc, worker = psutil.Process(), dask_worker
    worker.bigseg_peak_rss = 0  # type: ignore[attr-defined]  (state lives on the worker, not in a pickled global)

    def loop() -> None:
        while True:
            worker.bigseg_peak_rss = max(worker.bigseg_peak_rss, proc.memory_info().rss)  # type: ignore[attr-defined]
            time.sleep(0.05)

    threading.Thread(target=loop, daemon=True).start()


def _peak_mib(dask_worker: object) -> float:
    return dask_worker.bigseg_peak_rss / 2**20  # type: ignore[attr-defined]


def _import_stack() -> None:
    import bigseg.pipeline._tasks  # noqa: F401  (what a worker imports before its first block)


def _cluster(kw: dict) -> LocalCluster:
    """A LocalCluster whose workers run in bigseg's worker environment (as `bigseg segment` starts them)."""
    with dask.config.set(worker_config(1)):
        return LocalCluster(**kw)


def _rss_mib(dask_worker: object) -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def run(shape: tuple[int, int, int], block: int, workdir: Path) -> None:
    src, dst = workdir / "in.zarr", workdir / "out.zarr"
    kw = dict(n_workers=2, threads_per_worker=1, processes=True, memory_limit="6GiB", dashboard_address=None)
    with _cluster(kw) as cluster, Client(cluster) as client:
        t0 = time.perf_counter()
        synth = write_synthetic(src, shape, voxel_size=(1.0, 1.0, 1.0), preset="confocal", diameter_um=10.0,
                                volume_fraction=0.10, psf_sigma_um=(1.0, 0.5, 0.5), haze=0.0, texture=0.2,
                                intensity_cv=0.15, axial_stretch=1.0, block_shape=(block,) * 3, client=client,
                                overwrite=True)
        t_synth = time.perf_counter() - t0
    # A fresh cluster: the peaks below are the segmentation's alone.
    with _cluster(kw) as cluster, Client(cluster) as client:
        client.run(_import_stack)
        client.run(_start_sampler)
        time.sleep(0.5)
        idle = client.run(_peak_mib)
        t0 = time.perf_counter()
        result = segment(str(src), str(dst), client=client, predictor="classical", diameter_um=10.0,
                         block_shape=(block,) * 3, overwrite=True)
        t_seg = time.perf_counter() - t0
        peaks = client.run(_peak_mib)
        after = client.run(_rss_mib)
    vox = shape[0] * shape[1] * shape[2]
    halo = result.grid.halo.shape
    read = [block + 2 * h for h in halo]
    # Working set of one task: image float32 + 3 maps float32 + markers/labels (uint32, int64 in watershed).
    working = read[0] * read[1] * read[2] * (4 + 12 + 4 + 8 + 8) / 2**20
    print(f"volume {shape} = {vox / 1e6:.0f} Mvox ({vox * 4 / 2**30:.2f} GiB as float32), blocks {block}³, "
          f"halo {halo}, {result.n_blocks} blocks, {result.n_objects} nuclei (truth {synth.n_nuclei})")
    print(f"  synth {t_synth:.0f}s, segment {t_seg:.0f}s ({vox / t_seg / 1e6:.2f} Mvox/s on 2 workers)")
    grown = max(peaks[w] - idle[w] for w in peaks)
    print(f"  peak worker RSS: {', '.join(f'{v:.0f} MiB' for v in peaks.values())} "
          f"(idle after imports: {', '.join(f'{v:.0f} MiB' for v in idle.values())}); "
          f"growth {grown:.0f} MiB vs one task's arrays ≈ {working:.0f} MiB: ratio {grown / working:.1f}; "
          f"RSS after the run: {', '.join(f'{v:.0f} MiB' for v in after.values())}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", nargs="+", default=["256,512,512", "512,1024,1024"], help="Z,Y,X per run")
    ap.add_argument("--block", type=int, default=128)
    args = ap.parse_args()
    for text in args.shapes:
        shape = tuple(int(v) for v in text.split(","))
        workdir = Path(tempfile.mkdtemp(prefix="bigseg-mem-"))
        try:
            run(shape, args.block, workdir)  # type: ignore[arg-type]
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
