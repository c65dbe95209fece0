"""A one-node SLURM cluster on this machine for the tests: munged, slurmctld and slurmd as root,
every file (config, keys, state, logs, sockets) in one private folder, ports chosen free."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "scontrol", "sinfo")


def why_not() -> str | None:
    """Why a SLURM cluster cannot be started here (None if it can)."""
    missing = [d for d in DAEMONS if shutil.which(d) is None and not Path("/usr/sbin", d).exists()]
    if missing:
        return f"SLURM is not installed ({', '.join(missing)} missing; .ci/run installs slurm-wlm and munge)"
    if os.geteuid() != 0:
        return "starting slurmd and munged needs root"
    return None


def _exe(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_CONF = """ClusterName=bigsegtest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
AuthType=auth/munge
AuthInfo=socket={root}/munge/socket
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MinJobAge=600
KillWait=5
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
GresTypes=gpu
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=4000 Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""
# A GPU "device" for the scheduler's books only: jobs asking for --gres=gpu:1 get scheduled and
# see SLURM_GPUS_ON_NODE=1; nothing runs on a GPU (the tests use the classical predictor).
_GRES = "Name=gpu File=/dev/null\n"


@dataclass
class SlurmCluster:
    root: Path
    env: dict[str, str]
    pids: list[int]

    def run(self, *args: str, timeout: float = 60) -> str:
        proc = subprocess.run([_exe(args[0]), *args[1:]], env=self.env, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}\n{self.logs()}")
        return proc.stdout

    def sbatch(self, *args: str, env: dict[str, str] | None = None) -> str:
        proc = subprocess.run([_exe("sbatch"), "--parsable", *args], env={**self.env, **(env or {})},
                              capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise RuntimeError(f"sbatch {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc.stdout.strip().split(";")[0]

    def state(self, job_id: str) -> str:
        out = self.run("scontrol", "show", "job", job_id)
        return out.split("JobState=", 1)[1].split()[0]

    def wait(self, job_id: str, timeout: float = 300, until: tuple[str, ...] = ("COMPLETED", "FAILED", "CANCELLED",
                                                                                "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY")) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            state = self.state(job_id)
            if state in until:
                return state
            time.sleep(0.5)
        raise TimeoutError(f"job {job_id} still {self.state(job_id)} after {timeout}s\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted((self.root / "log").glob("*.log")))

    def stop(self) -> None:
        for pid in reversed(self.pids):
            try:
                os.kill(pid, 15)
            except ProcessLookupError:
                pass


def _pid(path: Path, timeout: float = 20) -> int:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists() and path.read_text().strip():
            return int(path.read_text().strip())
        time.sleep(0.1)
    raise TimeoutError(f"no pid file {path} after {timeout}s")


def start(root: Path) -> SlurmCluster:
    """Start munged, slurmctld and slurmd with everything under ``root``; wait for the node to be idle."""
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    for sub in ("munge", "state", "spool", "log"):
        (root / sub).mkdir(mode=0o700, exist_ok=True)
    # munged checks that its socket folder is reachable by the users it serves.
    os.chmod(root, 0o711)
    os.chmod(root / "munge", 0o711)
    key = root / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    host = socket.gethostname().split(".")[0]
    conf = root / "slurm.conf"
    conf.write_text(_CONF.format(host=host, root=root, ctld_port=_free_port(), d_port=_free_port(),
                                 cpus=min(2, os.cpu_count() or 1)))
    (root / "gres.conf").write_text(_GRES)
    env = {**os.environ, "SLURM_CONF": str(conf)}
    pids: list[int] = []
    cluster = SlurmCluster(root, env, pids)
    try:
        m = root / "munge"
        subprocess.run([_exe("munged"), "--force", f"--socket={m}/socket", f"--key-file={key}", f"--pid-file={m}/pid",
                        f"--seed-file={m}/seed", f"--log-file={root}/log/munged.log"], check=True, env=env, timeout=30)
        pids.append(_pid(m / "pid"))
        subprocess.run([_exe("slurmctld"), "-f", str(conf)], check=True, env=env, timeout=30)
        pids.append(_pid(root / "slurmctld.pid"))
        subprocess.run([_exe("slurmd"), "-f", str(conf), "-N", host], check=True, env=env, timeout=30)
        pids.append(_pid(root / "slurmd.pid"))
        end = time.monotonic() + 60
        while time.monotonic() < end:
            out = subprocess.run([_exe("sinfo"), "-h", "-o", "%T"], env=env, capture_output=True, text=True, timeout=30)
            if out.stdout.strip() == "idle":
                return cluster
            time.sleep(0.5)
        raise TimeoutError(f"the SLURM node is not idle after 60s (sinfo: {out.stdout.strip()!r})\n{cluster.logs()}")
    except BaseException:
        cluster.stop()
        raise


@pytest.fixture(scope="session")
def slurm(tmp_path_factory):
    """A running one-node SLURM cluster (2 CPUs, one bookkeeping GPU); skipped where it cannot start."""
    reason = why_not()
    if reason:
        pytest.skip(reason)
    # A short path: munge's socket path must fit in a sockaddr_un.
    root = Path(tempfile.mkdtemp(prefix="bigseg-slurm-"))
    cluster = start(root)
    try:
        yield cluster
    finally:
        cluster.stop()
        time.sleep(1)
        shutil.rmtree(root, ignore_errors=True)


def _refused_without_certificate(address: str, ca: str) -> None:
    """A TLS client that trusts the job's CA (public) but presents no certificate gets no reply."""
    import ssl

    host, port = address.removeprefix("tls://").rsplit(":", 1)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(cadata=ca)
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        # TLS 1.3 reports the missing client certificate at the first read after the handshake.
        with pytest.raises(ssl.SSLError, match="CERTIFICATE_REQUIRED|certificate required"):
            with ctx.wrap_socket(raw) as tls:
                tls.recv(1)


@pytest.fixture
def assert_refused():
    """``check(address, ca_pem)``: clients without the job's certificate do not get in: plain TCP,
    TLS without a client certificate, and TLS with another (self-signed) certificate."""

    def check(address: str, ca: str) -> None:
        from distributed import Client
        from distributed.security import Security

        with pytest.raises((OSError, TimeoutError)):
            Client(address.replace("tls://", "tcp://"), timeout=3)
        _refused_without_certificate(address, ca)
        with pytest.raises((OSError, TimeoutError)):
            Client(address, security=Security.temporary(), timeout=3)

    return check
