"""What docker-compose starts, as plain processes on 127.0.0.1: a `dask scheduler`, a GPU-labelled
worker and a CPU worker; then the CLI submits a run to that scheduler."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bigseg.io import is_complete, open_volume
from bigseg.testing import balls_volume, stop_processes, write_image

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@pytest.fixture
def cluster(tmp_path):
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--dashboard-address", "127.0.0.1:0"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        _wait_port(port)
        common = ["--memory-limit", "2GiB", "--host", "127.0.0.1", "--no-dashboard"]
        env = {**os.environ, "DASK_CONFIG": str(Path(__file__).resolve().parents[2] / "deploy" / "dask" / "bigseg.yaml")}
        procs.append(subprocess.Popen([str(BIN / "dask"), "worker", address, *common, "--nthreads", "3",
                                       "--resources", "GPU=3", "--name", "gpu-0"], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        procs.append(subprocess.Popen([str(BIN / "dask"), "worker", address, *common, "--nthreads", "1",
                                       "--name", "cpu-0"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        stop_processes(procs)


@pytest.mark.slow
def test_cli_run_on_external_scheduler_with_gpu_resources(cluster, tmp_path):
    image, truth = balls_volume((32, 64, 64), np.array([(16, 16, 16), (16, 48, 48), (16, 16, 48)]), 6.0)
    src = tmp_path / "in.zarr"
    write_image(src, image)
    env = {**os.environ, "BIGSEG_GPU_RESOURCES": "true"}
    out = tmp_path / "out.zarr"
    proc = subprocess.run(
        [str(BIN / "bigseg"), "segment", str(src), str(out), "--predictor", "classical", "--diameter", "12",
         "--block-shape", "32", "32", "32", "--scheduler", cluster, "--no-progress"],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "found 3 nuclei" in proc.stdout
    assert is_complete(out)
    labels = open_volume(f"{out}/labels/nuclei").read_level(0)
    assert len(np.unique(labels[labels > 0])) == 3
