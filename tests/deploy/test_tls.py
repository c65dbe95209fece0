"""`bigseg tls DIR` (what the SLURM script runs): a scheduler and worker started with its settings
accept a client holding the certificate and refuse any other."""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from bigseg.errors import InputError
from bigseg.pipeline import write_job_certificates

BIN = Path(sys.executable).parent


def _exports(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        out[key] = shlex.split(value)[0]
    return out


def test_certificate_files_are_private(tmp_path):
    files = write_job_certificates(tmp_path / "tls")
    assert stat.S_IMODE((tmp_path / "tls").stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in files.values()} == {0o600}
    open_dir = tmp_path / "open"
    open_dir.mkdir(mode=0o755)
    os.chmod(open_dir, 0o755)
    with pytest.raises(InputError, match=r"has mode 0o755; others could read the job's key.*chmod 700"):
        write_job_certificates(open_dir)


@pytest.mark.slow
def test_scheduler_with_job_certificate_refuses_other_clients(tmp_path, assert_refused):

    proc = subprocess.run([str(BIN / "bigseg"), "tls", str(tmp_path / "tls")], capture_output=True, text=True, check=True)
    env = {**os.environ, **_exports(proc.stdout)}
    sched = tmp_path / "scheduler.json"
    procs = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--scheduler-file", str(sched), "--protocol", "tls",
                               "--host", "127.0.0.1", "--port", "0", "--dashboard-address", "127.0.0.1:0"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        import json
        import time

        end = time.monotonic() + 60
        while not sched.exists():
            assert time.monotonic() < end, "the TLS scheduler did not start"
            time.sleep(0.2)
        address = json.loads(sched.read_text())["address"]
        assert address.startswith("tls://127.0.0.1:")
        procs.append(subprocess.Popen([str(BIN / "dask"), "worker", address, "--nthreads", "1", "--no-dashboard",
                                       "--host", "127.0.0.1"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        # The job's own client (the settings from `bigseg tls`) gets in and runs code on the worker.
        code = ("from distributed import Client; c = Client(%r, timeout=60); c.wait_for_workers(1, timeout=60); "
                "print(c.submit(sum, [1, 2]).result())" % address)
        ok = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
        assert ok.stdout.strip() == "3", ok.stderr
        assert_refused(address, Path(env["DASK_DISTRIBUTED__COMM__TLS__CA_FILE"]).read_text())
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)
