"""One call on a fresh GPU machine: model speed, bf16 vs fp32, and an end-to-end run (prints figures).

    python3 benchmarks/gpu.py                # installs a CUDA torch if needed, then runs (≤ ~10 min)
    python3 benchmarks/gpu.py --cpu --small  # the same code paths on a CPU, tiny sizes (no install)

Run from the repository root. Without a CUDA-capable torch in this interpreter, the script makes a
virtual environment (``--venv``, default ``.venv-gpu``), installs torch (PyPI's default Linux
wheels bundle CUDA), ``nvidia-ml-py`` and bigseg into it with pip, and runs itself again there.
Sections print as they finish, shortest first, each skipped when the time left (``--budget``
seconds from the start, install included) is too short for it:

1. the default model's forward pass in Mvox/s of patch voxels: fp32, bf16 and fp16 autocast at
   batch sizes 1–16, then channels-last-3d and ``torch.compile`` on the best batch of each;
2. the bf16-vs-fp32 difference in the maps of one block and in the labels of a small volume;
3. ``bigseg.segment`` end to end on a synthetic volume of a few hundred Mvox with one GPU worker
   (three Dask threads sharing the device) and one single-threaded CPU worker per remaining core:
   GPU utilisation sampled through NVML, the device busy fraction, Mvox/s end to end, and the
   projected time for a 4 Gvox brain.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
START = time.monotonic()
BRAIN_VOXELS = 4e9


def _left(args: argparse.Namespace) -> float:
    return args.budget - (time.monotonic() - START)


def _say(text: str) -> None:
    print(text, flush=True)


# ---------------------------------------------------------------- bootstrap (standard library only)

def _has_cuda_torch(python: str) -> bool:
    probe = "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"
    return subprocess.run([python, "-c", probe], capture_output=True).returncode == 0


def _install(python: str, *packages: str) -> None:
    """pip install into ``python``'s environment (uv's pip when present: much faster)."""
    import shutil

    uv = shutil.which("uv")
    if uv and "--user" not in packages:  # uv has no user site
        cmd = [uv, "pip", "install", "--python", python, *packages]
    else:
        cmd = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *packages]
    subprocess.run(cmd, check=True)


def _bootstrap(args: argparse.Namespace) -> None:
    """Re-run this script in an interpreter whose torch sees a GPU, installing one if needed."""
    if args.cpu or _has_cuda_torch(sys.executable):
        return
    venv = Path(args.venv).resolve()
    python = str(venv / "bin" / "python")
    if not (venv / "bin" / "python").exists():
        _say(f"# making {venv}")
        made = subprocess.run([sys.executable, "-m", "venv", str(venv)]).returncode == 0
        if not made:  # no venv module (e.g. Debian without python3-venv): this interpreter's user site
            _say("# venv unavailable; installing into this interpreter's user site instead")
            python = sys.executable
    if not _has_cuda_torch(python):
        _say("# installing torch (CUDA wheels from PyPI), nvidia-ml-py and bigseg; this takes a few minutes")
        extra = ["--user"] if python == sys.executable and not os.environ.get("VIRTUAL_ENV") else []
        _install(python, *extra, "torch", "nvidia-ml-py")
        _install(python, *extra, "-e", str(ROOT))
        if not _has_cuda_torch(python):
            sys.exit("torch installed but sees no CUDA device: check the driver (nvidia-smi) and that "
                     "PyPI's torch wheel matches it")
    _say(f"# install done after {time.monotonic() - START:.0f}s; running with {python}")
    env = {**os.environ, "BIGSEG_GPU_BENCH_START": str(time.time() - (time.monotonic() - START))}
    raise SystemExit(subprocess.run([python, __file__, *sys.argv[1:]], env=env).returncode)


# ---------------------------------------------------------------- 1. forward speed

def _timed_forward(net: Any, x: Any, dtype: Any, device: Any, repeats: int) -> float:
    import torch

    def once() -> None:
        with torch.inference_mode():
            if dtype is None:
                net(x)
            else:
                with torch.autocast(device.type, dtype=dtype):
                    net(x)

    once()
    once()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeats):
        once()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return x.numel() * repeats / (time.perf_counter() - t0) / 1e6


def _precisions(device: Any) -> dict[str, Any]:
    import torch

    out: dict[str, Any] = {"fp32": None, "bf16": torch.bfloat16}
    if device.type == "cuda":
        out["fp16"] = torch.float16
    return out


def model_speed(args: argparse.Namespace, device: Any) -> None:
    import torch

    from bigseg.predict import load_model_package

    loaded = load_model_package("default")
    net = loaded.network.to(device).eval()
    patch = tuple(loaded.card.patch_size)
    batches = [1, 2] if args.small else [1, 2, 4, 8, 16]
    repeats = 2 if args.small else 5
    _say(f"\n## 1. forward pass, patch {patch}, Mvox/s of patch voxels ({args.device_name})")
    _say(f"{'precision':<10} " + " ".join(f"{'b=' + str(b):>8}" for b in batches) + f" {'+chlast':>8} {'+compile':>9}")
    for name, dtype in _precisions(device).items():
        rates = []
        for b in batches:
            if _left(args) < 240:
                break
            x = torch.rand((b, 1, *patch), device=device)
            try:
                rates.append(_timed_forward(net, x, dtype, device, repeats))
            except torch.OutOfMemoryError:
                break
        if not rates:
            _say(f"{name:<10} skipped (time)")
            continue
        best_b = batches[max(range(len(rates)), key=rates.__getitem__)]
        x = torch.rand((best_b, 1, *patch), device=device)
        extra = []
        try:
            cl = net.to(memory_format=torch.channels_last_3d)
            extra.append(_timed_forward(cl, x.to(memory_format=torch.channels_last_3d), dtype, device, repeats))
        except Exception as exc:  # noqa: BLE001  (a variant that does not work is reported, not fatal)
            extra.append(float("nan"))
            _say(f"#   channels-last-3d failed: {type(exc).__name__}: {exc}")
        finally:
            net = net.to(memory_format=torch.contiguous_format)
        if _left(args) > 300 and not args.small:
            try:
                compiled = torch.compile(net)
                extra.append(_timed_forward(compiled, x, dtype, device, repeats))
            except Exception as exc:  # noqa: BLE001
                extra.append(float("nan"))
                _say(f"#   torch.compile failed: {type(exc).__name__}: {str(exc)[:200]}")
        else:
            extra.append(float("nan"))
        cells = [f"{r:>8.1f}" for r in rates] + [f"{'-':>8}"] * (len(batches) - len(rates))
        _say(f"{name:<10} " + " ".join(cells) + f" {extra[0]:>8.1f} {extra[1]:>9.1f}   (extras at b={best_b})")


# ---------------------------------------------------------------- 2. bf16 vs fp32

def precision_difference(args: argparse.Namespace, device: Any, work: Path) -> None:
    import numpy as np

    from bigseg.io import open_volume
    from bigseg.pipeline import segment
    from bigseg.predict import ModelSpec, get_predictor
    from bigseg.synth import synthesize, write_synthetic

    low = "bf16"
    shape = (32, 64, 96) if args.small else (96, 256, 256)
    image, _ = synthesize(shape, preset="confocal", voxel_size=(1.0, 1.0, 1.0), diameter_um=10.0, seed=5)
    image = image.astype(np.float32)
    lo, hi = np.percentile(image, [1, 99.8])
    image = (image - lo) / (hi - lo)
    specs = {p: ModelSpec(voxel_size=(1.0, 1.0, 1.0), diameter_um=10.0, device=device.type, precision=p)
             for p in ("fp32", low)}
    maps = {p: get_predictor(s).predict(image) for p, s in specs.items()}
    diff = np.abs(maps[low] - maps["fp32"])
    _say(f"\n## 2. {low} vs fp32 ({args.device_name})")
    for c, name in enumerate(("foreground", "contour", "distance")):
        _say(f"maps {name:<10}: max |Δ| {diff[c].max():.4f}, mean |Δ| {diff[c].mean():.5f}")
    vol = work / "prec.zarr"
    vshape = (32, 96, 96) if args.small else (128, 384, 384)
    write_synthetic(vol, vshape, voxel_size=(1.0, 1.0, 1.0), preset="confocal", diameter_um=10.0, seed=6,
                    overwrite=True)
    labels = {}
    for p, spec in specs.items():
        res = segment(str(vol), str(work / f"prec-{p}.zarr"), scheduler="sync", predictor_spec=spec,
                      diameter_um=10.0, overwrite=True, block_shape=(64, 128, 128))
        labels[p] = (open_volume(res.labels_url).read_level(0), res.n_objects)
    a, b = labels["fp32"][0], labels[low][0]
    fg = (a > 0) | (b > 0)
    _say(f"labels {vshape}: objects fp32 {labels['fp32'][1]}, {low} {labels[low][1]}; "
         f"foreground voxels differing {np.count_nonzero((a > 0) != (b > 0)) / max(1, fg.sum()):.2e} "
         f"of {int(fg.sum())}")
    try:
        from bigseg.evaluate import evaluate

        f1 = evaluate(b, a, thresholds=(0.5, 0.9))
        _say(f"object match of {low} labels to fp32 labels: F1@0.5 {f1.at(0.5).f1:.4f}, F1@0.9 {f1.at(0.9).f1:.4f}")
    except Exception as exc:  # noqa: BLE001
        _say(f"#   evaluate failed: {type(exc).__name__}: {exc}")


# ---------------------------------------------------------------- 3. end to end

class _NvmlSampler:
    """GPU utilisation (%) every 100 ms through NVML, in a thread."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        try:
            import pynvml

            pynvml.nvmlInit()
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(0)
            self._nvml: Any = pynvml
        except Exception as exc:  # noqa: BLE001  (no NVML: report and go on)
            _say(f"#   no NVML ({type(exc).__name__}: {exc}); GPU utilisation not sampled")
            self._nvml = None
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            util = self._nvml.nvmlDeviceGetUtilizationRates(self._handle).gpu
            self.samples.append((time.time(), int(util)))
            time.sleep(0.1)

    def __enter__(self) -> _NvmlSampler:
        if self._nvml is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()

    def mean(self, start: float, end: float) -> float:
        vals = [u for t, u in self.samples if start <= t <= end]
        return sum(vals) / len(vals) if vals else float("nan")


def _cluster(cpu_workers: int, gpu_threads: int, device: str) -> Any:
    import dask
    from distributed import Client, Nanny, Scheduler, SpecCluster

    from bigseg.pipeline import worker_config

    no_gpu = {"CUDA_VISIBLE_DEVICES": ""}
    workers: dict[str, Any] = {
        "gpu-0": {"cls": Nanny, "options": {"nthreads": gpu_threads, "resources": {"GPU": gpu_threads},
                                             "memory_limit": "32GiB"}},
    }
    for i in range(cpu_workers):
        workers[f"cpu-{i}"] = {"cls": Nanny, "options": {"nthreads": 1, "memory_limit": "6GiB",
                                                          "env": no_gpu if device == "cuda" else {}}}
    with dask.config.set(worker_config(1)):
        cluster = SpecCluster(workers=workers, scheduler={"cls": Scheduler, "options": {"dashboard_address": ":0"}})
    return cluster, Client(cluster)


def end_to_end(args: argparse.Namespace, device: Any, work: Path) -> None:
    import numpy as np

    from bigseg.pipeline import segment
    from bigseg.predict import ModelSpec, busy_fraction, device_intervals
    from bigseg.synth import write_synthetic

    cores = len(os.sched_getaffinity(0))
    gpu_threads = 3
    cpu_workers = max(1, cores - gpu_threads)
    shape = tuple(args.e2e_shape) if args.e2e_shape else ((48, 128, 256) if args.small else (192, 1024, 1024))
    nvox = float(np.prod(shape))
    _say(f"\n## 3. end to end: {shape} = {nvox / 1e6:.0f} Mvox, one GPU worker ({gpu_threads} threads) + "
         f"{cpu_workers} CPU workers ({args.device_name}, {cores} cores)")
    cluster, client = _cluster(cpu_workers, gpu_threads, device.type)
    with cluster, client:
        t0 = time.perf_counter()
        src = work / "e2e.zarr"
        write_synthetic(src, shape, voxel_size=(1.0, 1.0, 1.0), preset="confocal", diameter_um=10.0, seed=7,
                        block_shape=(128, 256, 256), client=client, overwrite=True)
        _say(f"synthetic volume written in {time.perf_counter() - t0:.0f}s ({_left(args):.0f}s left)")
        spec = ModelSpec(voxel_size=(1.0, 1.0, 1.0), diameter_um=10.0, device=device.type,
                         batch_size=args.batch_size)
        with _NvmlSampler() as nvml:
            start = time.time()
            res = segment(str(src), str(work / "e2e-out.zarr"), client=client, predictor_spec=spec,
                          diameter_um=10.0, block_shape=tuple(args.block), gpu_resources=True, overwrite=True)
            end = time.time()
        gpu_addr = next(a for a, w in client.scheduler_info()["workers"].items() if w.get("name") == "gpu-0")
        intervals = client.run(device_intervals, workers=[gpu_addr])[gpu_addr]
    total = end - start
    predict_end = start + res.timings.get("predict", 0.0)
    device_s = sum(e - s for s, e in intervals)
    _say(f"stages: " + ", ".join(f"{k} {v:.1f}s" for k, v in res.timings.items()))
    _say(f"{res.n_objects} nuclei, {res.n_blocks} blocks of {tuple(args.block)}; whole run {total:.1f}s = "
         f"{nvox / total / 1e6:.1f} Mvox/s end to end; predict stage {res.timings.get('predict', 0):.1f}s = "
         f"{nvox / max(1e-9, res.timings.get('predict', 0)) / 1e6:.1f} Mvox/s")
    _say(f"GPU utilisation (NVML, mean): predict stage {nvml.mean(start, predict_end):.0f}%, whole run "
         f"{nvml.mean(start, end):.0f}%; device held {device_s:.1f}s, busy fraction after the first block "
         f"{busy_fraction(intervals):.2f}")
    _say(f"projection for a 4 Gvox brain on this machine: {BRAIN_VOXELS / (nvox / total) / 60:.1f} min end to end "
         f"(predict stage alone {BRAIN_VOXELS / (nvox / max(1e-9, res.timings.get('predict', 0))) / 60:.1f} min; "
         f"device alone {BRAIN_VOXELS / (nvox / max(1e-9, device_s)) / 60:.1f} min)")


# ---------------------------------------------------------------- main

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu", action="store_true", help="run on the CPU (no install; checks the code paths)")
    ap.add_argument("--small", action="store_true", help="tiny sizes (with --cpu: a quick check)")
    ap.add_argument("--budget", type=float, default=570.0, help="seconds for everything, install included")
    ap.add_argument("--venv", default=str(ROOT / ".venv-gpu"))
    ap.add_argument("--e2e-shape", type=int, nargs=3, default=None)
    ap.add_argument("--block", type=int, nargs=3, default=(128, 256, 256))
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--skip", nargs="*", default=[], choices=["speed", "precision", "e2e"])
    args = ap.parse_args()
    if "BIGSEG_GPU_BENCH_START" in os.environ:  # re-run after the install: keep the first start
        global START
        START -= time.time() - float(os.environ["BIGSEG_GPU_BENCH_START"])
    _bootstrap(args)
    sys.path.insert(0, str(ROOT))
    import torch

    device = torch.device("cpu" if args.cpu else "cuda")
    args.device_name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    if device.type == "cpu":
        torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    _say(f"# bigseg GPU benchmark: {args.device_name}, torch {torch.__version__}, "
         f"CUDA {torch.version.cuda}, {_left(args):.0f}s left")
    with tempfile.TemporaryDirectory(prefix="bigseg-gpu-") as tmp:
        work = Path(tmp)
        sections = [("speed", 200, lambda: model_speed(args, device)),
                    ("precision", 150, lambda: precision_difference(args, device, work)),
                    ("e2e", 150, lambda: end_to_end(args, device, work))]
        for name, need, run in sections:
            if name in args.skip:
                continue
            if _left(args) < need:
                _say(f"\n# {name}: skipped, {_left(args):.0f}s left (needs ~{need}s)")
                continue
            try:
                run()
            except Exception as exc:  # noqa: BLE001  (one failed section must not hide the others)
                import traceback

                _say(f"\n# {name} failed: {type(exc).__name__}: {exc}")
                traceback.print_exc()
    _say(f"\n# done in {time.monotonic() - START:.0f}s")


if __name__ == "__main__":
    main()
