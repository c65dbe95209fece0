"""Workers that bigseg starts, and `dask worker` as the deploy files start it, run with bigseg's
memory-trimming and thread settings (checked in the worker process, not by timing)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bigseg.errors import InputError
from bigseg.pipeline import local_layout, open_client, worker_config, worker_environ, worker_settings
from bigseg.pipeline._workers import (
    IN_PROCESS_VOXELS,
    MODEL_VOXEL_COST,
    MONITOR_INTERVAL,
    PROFILE_INTERVAL,
    TICK_INTERVAL,
    auto_scheduler,
)
from bigseg.testing import stop_processes
from .test_processes import _free_port, _wait_port

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deploy" / "dask" / "bigseg.yaml"
BIN = Path(sys.executable).parent


def _expected(task_threads: int) -> dict[str, object]:
    env = {k: str(v) for k, v in worker_environ(task_threads).items()}
    return {**env, "torch_threads": task_threads, "profile_interval": PROFILE_INTERVAL, "tick_interval": TICK_INTERVAL,
            "monitor_interval": MONITOR_INTERVAL}


def test_deploy_config_file_is_worker_config():
    loaded = yaml.safe_load(CONFIG.read_text())
    assert loaded == {"distributed": {
        "nanny": {"pre-spawn-environ": worker_environ(1)},
        "worker": {"profile": {"interval": PROFILE_INTERVAL}},
        "admin": {"tick": {"interval": TICK_INTERVAL}, "system-monitor": {"interval": MONITOR_INTERVAL}},
    }}
    assert set(worker_config(1)) == {
        "distributed.nanny.pre-spawn-environ", "distributed.worker.profile.interval", "distributed.admin.tick.interval",
        "distributed.admin.system-monitor.interval",
    }


def test_every_deploy_file_points_workers_to_the_config():
    in_image = "/opt/bigseg/deploy/dask/bigseg.yaml"
    assert f"ENV DASK_CONFIG={in_image}" in (ROOT / "deploy" / "Dockerfile").read_text()
    assert "COPY deploy/dask ./deploy/dask" in (ROOT / "deploy" / "Dockerfile").read_text()
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    workers = [s for s in compose.values() if s["command"][:2] == ["dask", "worker"]]
    assert len(workers) == 2 and all(s["environment"]["DASK_CONFIG"] == in_image for s in workers)
    k8s = [d for d in yaml.safe_load_all((ROOT / "deploy" / "k8s" / "bigseg.yaml").read_text()) if d["kind"] == "Deployment"]
    containers = [c for d in k8s for c in d["spec"]["template"]["spec"]["containers"] if c["command"][1] == "worker"]
    assert len(containers) == 2
    assert all({"name": "DASK_CONFIG", "value": in_image} in c["env"] for c in containers)
    sbatch = (ROOT / "deploy" / "slurm" / "bigseg.sbatch").read_text()
    assert "export DASK_CONFIG=${DASK_CONFIG:-$SLURM_SUBMIT_DIR/deploy/dask/bigseg.yaml}" in sbatch
    assert sbatch.index("export DASK_CONFIG") < sbatch.index("dask worker")


@pytest.mark.parametrize("cores, memory, given, expect", [
    (2, 24 * 2**30, {}, (2, 1, 1)),
    (16, 64 * 2**30, {}, (16, 1, 1)),
    (64, 64 * 2**30, {}, (32, 1, 2)),    # memory caps workers at 2 GiB each; spare cores go to tasks
    (128, 512 * 2**30, {"threads_per_worker": 2}, (64, 2, 1)),
    (8, 64 * 2**30, {"n_workers": 2}, (2, 1, 4)),
    (8, 64 * 2**30, {"n_workers": 2, "task_threads": 1}, (2, 1, 1)),
])
def test_local_layout_fills_the_cores(cores, memory, given, expect):
    layout = local_layout(**given, cores=cores, memory=memory)
    assert (layout.n_workers, layout.threads_per_worker, layout.task_threads) == expect
    assert layout.cores <= cores


@pytest.mark.parametrize("cores, voxels, model, expect", [
    (2, IN_PROCESS_VOXELS, False, "sync"),           # where it was measured: two workers
    (2, IN_PROCESS_VOXELS + 1, False, "local"),
    (2, IN_PROCESS_VOXELS // MODEL_VOXEL_COST, True, "sync"),
    (2, IN_PROCESS_VOXELS // MODEL_VOXEL_COST + 1, True, "local"),
    (16, IN_PROCESS_VOXELS // 2, False, "local"),   # many workers pay back their start sooner
    (16, IN_PROCESS_VOXELS // 3, False, "sync"),
    (1, 10**12, True, "sync"),                       # one worker can never beat this process
])
def test_auto_scheduler_keeps_small_runs_in_this_process(cores, voxels, model, expect):
    assert auto_scheduler(voxels, model=model, cores=cores, memory=64 * 2**30) == expect


def test_auto_scheduler_follows_the_layout_and_given_workers():
    # memory for one worker of 2 GiB: no cluster pays off, however large the run
    assert auto_scheduler(10**9, model=False, cores=8, memory=3 * 2**30) == "sync"
    assert auto_scheduler(1, model=False, n_workers=2) == "local"  # workers asked for: a cluster


def test_run_scheduler_resolves_only_auto():
    from bigseg.config import load_config
    from bigseg.pipeline._driver import run_scheduler

    auto = load_config(environ={})
    assert run_scheduler(auto, 1000) == "sync" and run_scheduler(auto, None) == "local"
    assert run_scheduler(load_config(environ={}, scheduler="local"), 1000) == "local"
    assert run_scheduler(load_config(environ={}, scheduler="sync"), 10**12) == "sync"


def test_worker_environ_rejects_zero_threads():
    with pytest.raises(InputError, match="`task_threads` must be >= 1, got 0"):
        worker_environ(0)


@pytest.mark.slow
def test_embedded_cluster_workers_get_the_environment():
    with open_client("local", n_workers=2, threads_per_worker=1, memory_limit="1GiB", task_threads=1) as client:
        seen = client.run(worker_settings)
    assert len(seen) == 2
    for settings in seen.values():
        assert settings == _expected(1)


@pytest.mark.slow
def test_each_embedded_cluster_gets_its_own_thread_counts_and_leaves_this_process_alone():
    """distributed's Nanny writes its workers' variables into the starting process, where a set variable
    wins over the config: a second cluster with other thread counts must still get its own."""
    names = list(worker_environ(1))
    before = {n: os.environ.get(n) for n in names}
    with open_client("local", n_workers=1, threads_per_worker=1, memory_limit="1GiB", task_threads=2) as client:
        assert [s["OMP_NUM_THREADS"] for s in client.run(worker_settings).values()] == ["2"]
    assert {n: os.environ.get(n) for n in names} == before
    with open_client("local", n_workers=1, threads_per_worker=1, memory_limit="1GiB", task_threads=1) as client:
        assert [s["OMP_NUM_THREADS"] for s in client.run(worker_settings).values()] == ["1"]


@pytest.mark.slow
def test_dask_worker_with_deploy_config_gets_the_environment(tmp_path):
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    # As compose, SLURM and Kubernetes start workers: DASK_CONFIG names the shipped file; a
    # variable set where the worker starts (here OMP/MKL/OPENBLAS for 2-core tasks) wins over it.
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DASK_", "MALLOC_", "OMP_", "MKL_", "OPENBLAS_"))}
    env = {**clean, "DASK_CONFIG": str(CONFIG)}
    wide = {**env, "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"}
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    common = ["--nthreads", "1", "--memory-limit", "1GiB", "--host", "127.0.0.1", "--no-dashboard"]
    procs = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--dashboard-address", "127.0.0.1:0"], env=env, **quiet)]
    try:
        _wait_port(port)
        procs.append(subprocess.Popen([str(BIN / "dask"), "worker", address, *common, "--name", "plain"], env=env, **quiet))
        procs.append(subprocess.Popen([str(BIN / "dask"), "worker", address, *common, "--name", "wide"], env=wide, **quiet))
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
            by_name = {info["name"]: addr for addr, info in client.scheduler_info()["workers"].items()}
            seen = client.run(worker_settings)
        assert seen[by_name["plain"]] == _expected(1)
        assert seen[by_name["wide"]] == _expected(2)
    finally:
        stop_processes(procs)


_ENDING = """
import atexit, sys
from pathlib import Path
from types import SimpleNamespace
from distributed.core import Status
from bigseg.pipeline._workers import exit_quickly

out = Path(sys.argv[1])
atexit.register(lambda: (out / "handler").write_text("ran"))  # registered first: runs after exit_quickly's


class Teardown:
    def __del__(self):
        (out / "teardown").write_text("ran")


kept = Teardown()  # freed only by the interpreter's teardown
exit_quickly(SimpleNamespace(status=Status[sys.argv[2]]))
sys.exit(3)
"""


@pytest.mark.parametrize("status, code, teardown", [("closed", 0, False), ("running", 3, True)])
def test_a_closed_worker_ends_without_teardown_after_its_exit_handlers(tmp_path, status, code, teardown):
    script = tmp_path / "ending.py"
    script.write_text(_ENDING)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    res = subprocess.run([sys.executable, str(script), str(tmp_path), status], env=env, timeout=120)
    assert res.returncode == code  # a worker that did not close normally keeps its own exit status
    assert (tmp_path / "handler").read_text() == "ran"  # every exit handler still runs
    assert (tmp_path / "teardown").exists() == teardown
