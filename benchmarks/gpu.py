"""One call on a fresh GPU machine: model speed, bf16 vs fp32, GPU vs CPU maps, an end-to-end run (prints figures).

    python3 benchmarks/gpu.py                    # installs what is missing, then runs (≤ ~10 min)
    python3 benchmarks/gpu.py --wheels WHEELS    # the same without package access: wheels from WHEELS
    python3 benchmarks/gpu.py --cpu --small      # the same code paths on a CPU, tiny sizes (no install)

Run from the repository root. The script uses this interpreter's torch when it sees a GPU, else
makes a virtual environment (``--venv``, default ``.venv-gpu``) and installs torch there (PyPI's
default Linux wheels bundle CUDA). bigseg's other dependencies that are not installed go into
that environment too (it sees this interpreter's packages), from PyPI or, with ``--wheels``, only
from a folder of wheels (``pip download`` them beforehand on a machine with package access; the
script names what is missing). bigseg itself runs from this checkout (``PYTHONPATH``, which the
Dask workers inherit). Sections print as they finish, each skipped when the time left
(``--budget`` seconds from the start, install included) is too short for it:

1. the default model's forward pass in Mvox/s of patch voxels: fp32, bf16 and fp16 autocast at
   batch sizes 1–16, then channels-last-3d and ``torch.compile`` on the best batch of each, and
   the batch bigseg picks from the device's memory;
2. the bf16-vs-fp32 difference in the maps of one block and in the labels of a small volume;
3. issue 11's GPU check: fp32 maps on the GPU (``torch.use_deterministic_algorithms``, TF32 off)
   against the CPU's fp32 maps, within a stated tolerance; the GPU maps of two runs bit for bit;
   and whether the labels then equal the CPU's;
4. ``bigseg.segment`` end to end on a synthetic volume of a few hundred Mvox with one GPU worker
   (three Dask threads sharing the device, batch sized to its memory) and one single-threaded CPU
   worker per remaining core: GPU utilisation sampled through NVML, the device busy fraction,
   Mvox/s end to end, and the projected time for a 4 Gvox brain.
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
# Issue 11: largest |Δ| allowed between GPU and CPU fp32 maps (maps lie in [0, 1] and [-1, 1]).
MAPS_TOLERANCE = 1e-3


def _left(args: argparse.Namespace) -> float:
    return args.budget - (time.monotonic() - START)


def _say(text: str) -> None:
    print(text, flush=True)


# ---------------------------------------------------------------- bootstrap (standard library only)

def _has_cuda_torch(python: str) -> bool:
    probe = "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"
    return subprocess.run([python, "-c", probe], capture_output=True).returncode == 0


def _requirements() -> list[str]:
    """bigseg's runtime requirements from pyproject.toml (standard library only: no tomllib before 3.11)."""
    text = (ROOT / "pyproject.toml").read_text()
    block = text[text.index("dependencies = ["):]
    block = block[:block.index("\n]")]
    return [line.strip().strip('",') for line in block.splitlines()[1:] if line.strip().startswith('"')]


def _missing(python: str) -> list[str]:
    """Requirements (other than torch) with no installed distribution in ``python``'s environment."""
    probe = ("import sys, re, importlib.metadata as m\n"
             "for r in sys.argv[1:]:\n"
             "    name = re.split(r'[<>=!~\\[ ]', r)[0]\n"
             "    try: m.version(name)\n"
             "    except m.PackageNotFoundError: print(r)\n")
    # dask's "distributed" extra is a distribution of its own
    reqs = [r for r in _requirements() if not r.startswith("torch")] + ["distributed", "nvidia-ml-py"]
    out = subprocess.run([python, "-c", probe, *reqs], capture_output=True, text=True, check=True).stdout
    return out.split()


def _install(python: str, packages: list[str], wheels: str | None) -> None:
    """pip install into ``python``'s environment (uv's pip when present and online: much faster)."""
    import shutil

    source = ["--no-index", "--find-links", str(Path(wheels).resolve())] if wheels else []
    uv = shutil.which("uv")
    if uv and not wheels:
        cmd = [uv, "pip", "install", "--python", python, *packages]
    else:
        cmd = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *source, *packages]
    if subprocess.run(cmd).returncode != 0:
        names = " ".join(f"'{p}'" for p in packages)
        sys.exit(f"could not install {names}" + (
            f" from {wheels}: download them (and what they need) on a machine with package access, e.g. "
            f"pip download --only-binary=:all: --python-version {sys.version_info.major}.{sys.version_info.minor} "
            f"--platform manylinux2014_x86_64 -d WHEELS {names}" if wheels else ""))


def _bootstrap(args: argparse.Namespace) -> None:
    """Re-run this script in an interpreter whose torch sees a GPU and that has bigseg's dependencies."""
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    if args.cpu:
        return
    python = sys.executable
    cuda_here = _has_cuda_torch(python)
    missing = _missing(python)
    if cuda_here and not missing:
        return
    venv = Path(args.venv).resolve()
    python = str(venv / "bin" / "python")
    if not (venv / "bin" / "python").exists():
        _say(f"# making {venv} (it sees this interpreter's packages)")
        if subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)]).returncode != 0:
            sys.exit("could not make a virtual environment (python3-venv missing?); install bigseg's dependencies "
                     "into this interpreter instead and run again")
    if not _has_cuda_torch(python):
        _say("# installing torch (PyPI's Linux wheels bundle CUDA); this takes a few minutes")
        _install(python, ["torch"], args.wheels)
        if not _has_cuda_torch(python):
            sys.exit("torch installed but sees no CUDA device: check the driver (nvidia-smi) and that "
                     "PyPI's torch wheel matches it")
    missing = _missing(python)
    if missing:
        _say(f"# installing {len(missing)} missing dependencies: {' '.join(missing)}")
        _install(python, missing, args.wheels)
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
    from bigseg.predict import ModelSpec, get_predictor

    picked = get_predictor(ModelSpec(device=device.type)).batch_size
    _say(f"batch bigseg picks from the device's memory: {picked} patches of {patch}")


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


# ---------------------------------------------------------------- 3. GPU vs CPU (issue 11)

def gpu_vs_cpu(args: argparse.Namespace, device: Any, work: Path) -> None:
    import numpy as np
    import torch

    from bigseg.io import open_volume
    from bigseg.pipeline import segment
    from bigseg.predict import ModelSpec, get_predictor
    from bigseg.synth import synthesize, write_synthetic

    # True fp32 on the GPU: TF32 convolutions and matmuls off (cuDNN allows TF32 by default).
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    shape = (32, 64, 96) if args.small else (96, 256, 256)
    image, _ = synthesize(shape, preset="confocal", voxel_size=(1.0, 1.0, 1.0), diameter_um=10.0, seed=8)
    image = image.astype(np.float32)
    lo, hi = np.percentile(image, [1, 99.8])
    image = (image - lo) / (hi - lo)
    dev = ModelSpec(voxel_size=(1.0, 1.0, 1.0), diameter_um=10.0, device=device.type, precision="fp32",
                    batch_size=2)
    cpu = ModelSpec(voxel_size=(1.0, 1.0, 1.0), diameter_um=10.0, device="cpu", precision="fp32", batch_size=2,
                    threads=max(1, min(8, os.cpu_count() or 1)))
    t0 = time.perf_counter()
    predictor = get_predictor(dev)  # on CUDA it switches deterministic algorithms on
    _say(f"\n## 3. {args.device_name} fp32 vs CPU fp32 (deterministic algorithms "
         f"{torch.are_deterministic_algorithms_enabled()}, TF32 off, batch 2 on both)")
    first = predictor.predict(image)
    second = predictor.predict(image)
    _say(f"{device.type} maps of two runs bit-identical: {np.array_equal(first, second)}")
    ref = get_predictor(cpu).predict(image)
    diff = np.abs(first - ref)
    worst = float(diff.max())
    _say(f"maps {shape}: max |Δ| {worst:.2e}, mean |Δ| {diff.mean():.2e}; tolerance {MAPS_TOLERANCE:g}: "
         f"{'within' if worst <= MAPS_TOLERANCE else 'NOT within'} ({time.perf_counter() - t0:.0f}s)")
    if _left(args) < 120:
        _say("# labels: skipped (time)")
        return
    vol = work / "det.zarr"
    vshape = (32, 96, 96) if args.small else (64, 256, 256)
    write_synthetic(vol, vshape, voxel_size=(1.0, 1.0, 1.0), preset="confocal", diameter_um=10.0, seed=9,
                    overwrite=True)
    labels = {}
    for name, spec in (("gpu", dev), ("cpu", cpu)):
        res = segment(str(vol), str(work / f"det-{name}.zarr"), scheduler="sync", predictor_spec=spec,
                      diameter_um=10.0, overwrite=True, block_shape=(64, 128, 128), maps_dtype="float32")
        labels[name] = (open_volume(res.labels_url).read_level(0), res.n_objects)
    a, b = labels["cpu"][0], labels["gpu"][0]
    fg = (a > 0) | (b > 0)
    _say(f"labels {vshape}: objects CPU {labels['cpu'][1]}, {device.type} {labels['gpu'][1]}; "
         f"identical: {np.array_equal(a, b)}; "
         f"voxels with another label {np.count_nonzero(a != b) / max(1, fg.sum()):.2e} of {int(fg.sum())} foreground")


# ---------------------------------------------------------------- 4. end to end

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


def _batch_of(spec: Any) -> int:
    from bigseg.predict import get_predictor

    return int(get_predictor(spec).batch_size)


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
    _say(f"\n## 4. end to end: {shape} = {nvox / 1e6:.0f} Mvox, one GPU worker ({gpu_threads} threads) + "
         f"{cpu_workers} CPU workers ({args.device_name}, {cores} cores)")
    cluster, client = _cluster(cpu_workers, gpu_threads, device.type)
    with cluster, client:
        t0 = time.perf_counter()
        src = work / "e2e.zarr"
        write_synthetic(src, shape, voxel_size=(1.0, 1.0, 1.0), preset="confocal", diameter_um=10.0, seed=7,
                        block_shape=(128, 256, 256), client=client, overwrite=True)
        _say(f"synthetic volume written in {time.perf_counter() - t0:.0f}s ({_left(args):.0f}s left)")
        spec = ModelSpec(voxel_size=(1.0, 1.0, 1.0), diameter_um=10.0, device=device.type,
                         batch_size=args.batch_size)  # None: sized to the device's memory, in the GPU worker
        with _NvmlSampler() as nvml:
            start = time.time()
            res = segment(str(src), str(work / "e2e-out.zarr"), client=client, predictor_spec=spec,
                          diameter_um=10.0, block_shape=tuple(args.block), gpu_resources=True, overwrite=True)
            end = time.time()
        gpu_addr = next(a for a, w in client.scheduler_info()["workers"].items() if w.get("name") == "gpu-0")
        intervals = client.run(device_intervals, workers=[gpu_addr])[gpu_addr]
        batch = client.run(_batch_of, spec, workers=[gpu_addr])[gpu_addr]
    total = end - start
    predict_end = start + res.timings.get("predict", 0.0)
    device_s = sum(e - s for s, e in intervals)
    _say(f"stages: " + ", ".join(f"{k} {v:.1f}s" for k, v in res.timings.items()) + f"; batch {batch} patches")
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
    ap.add_argument("--batch-size", type=int, default=None, help="patches per pass (default: from the device's memory)")
    ap.add_argument("--wheels", default=None, help="install missing packages only from this folder of wheels")
    ap.add_argument("--skip", nargs="*", default=[], choices=["speed", "precision", "determinism", "e2e"])
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
                    ("determinism", 120, lambda: gpu_vs_cpu(args, device, work)),
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
