"""TLS for Dask clusters that other people can reach.

A Dask scheduler runs any code a client sends it. On a shared cluster an open
scheduler port therefore lets any user run code as the job's owner. Every
bigseg cluster beyond this machine (the SLURM batch script and
:func:`~bigseg.pipeline.slurm_cluster`) uses mutual TLS with a certificate made
for that job only: the scheduler accepts only clients and workers that present
it, and the files are readable by the job's owner only.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

__all__ = ["job_security", "tls_environment", "write_job_certificates"]

_FILES = {"ca": "ca.pem", "cert": "cert.pem", "key": "key.pem"}


def job_security() -> Any:
    """A fresh ``distributed.Security``: a self-signed certificate for every role, TLS required."""
    from distributed.security import Security

    return Security.temporary()


def write_job_certificates(directory: str | os.PathLike[str]) -> dict[str, Path]:
    """Write a fresh job certificate as ``ca.pem``, ``cert.pem`` and ``key.pem`` in ``directory``.

    ``directory`` is created with mode 0700 (or must already be a directory only its owner can
    enter); the files are 0600. Returns their paths by role (``ca``, ``cert``, ``key``).
    """
    path = Path(directory)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        from bigseg.errors import InputError

        raise InputError(
            f"certificate directory {str(path)!r} has mode {oct(mode)}; others could read the job's key. "
            f"Use a new directory or `chmod 700 {path}`"
        )
    sec = job_security()
    contents = {"ca": sec.tls_ca_file, "cert": sec.tls_scheduler_cert, "key": sec.tls_scheduler_key}
    out = {}
    for role, name in _FILES.items():
        target = path / name
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(contents[role])
        out[role] = target
    return out


def tls_environment(files: dict[str, Path]) -> dict[str, str]:
    """Dask configuration (as ``DASK_*`` environment variables) that makes the scheduler, workers
    and clients started with it use ``files`` and refuse unencrypted connections."""
    env = {
        "DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION": "True",
        "DASK_DISTRIBUTED__COMM__DEFAULT_SCHEME": "tls",
        "DASK_DISTRIBUTED__COMM__TLS__CA_FILE": str(files["ca"]),
    }
    for role in ("SCHEDULER", "WORKER", "CLIENT"):
        env[f"DASK_DISTRIBUTED__COMM__TLS__{role}__CERT"] = str(files["cert"])
        env[f"DASK_DISTRIBUTED__COMM__TLS__{role}__KEY"] = str(files["key"])
    return env
