"""A Dask cluster of SLURM jobs (dask-jobqueue): GPU jobs for inference, CPU jobs for the rest.

For a notebook or script on a cluster's login node::

    from distributed import Client
    from bigseg.pipeline import slurm_cluster
    import bigseg

    cluster = slurm_cluster(gpu_jobs=2, cpu_jobs=8, queue="gpu", account="lab")
    client = Client(cluster)           # TLS: only this process holds the job certificate
    bigseg.segment("brain.ome.zarr", "brain-seg.ome.zarr", client=client, gpu_resources=True)

Each GPU job asks for a GPU (``--gres=gpu:1`` by default) and runs one worker that advertises
``GPU=1``, so inference goes there; each CPU job runs one single-threaded worker per core for
decoding, stitching and writing. Scheduler, workers and client use mutual TLS with a certificate
made for this cluster (``security=Security.temporary()``); dask-jobqueue writes it for the workers
into ``tls_directory``, which is created readable by its owner only.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

from bigseg.errors import InputError
from bigseg.pipeline._security import job_security
from bigseg.pipeline._workers import worker_config

__all__ = ["slurm_cluster"]

logger = logging.getLogger(__name__)


def _private_dir(path: str | os.PathLike[str] | None) -> str:
    if path is None:
        # The home directory is shared with the compute nodes on typical clusters; /tmp is not.
        base = Path.home() / ".bigseg" / "tls"
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
        return tempfile.mkdtemp(prefix="cluster-", dir=base)
    p = Path(path)
    p.mkdir(mode=0o700, parents=True, exist_ok=True)
    if p.stat().st_mode & 0o077:
        raise InputError(f"`tls_directory` {str(p)!r} is readable by others; use a new directory or `chmod 700 {p}`")
    return str(p)


def _worker_config_file(directory: str) -> str:
    """bigseg's worker environment (:func:`worker_config`) as a Dask config file for the jobs."""
    import yaml

    nested: dict[str, Any] = {}
    for dotted, value in worker_config(1).items():
        node = nested
        *parents, last = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    path = Path(directory) / "bigseg-dask.yaml"
    path.write_text(yaml.safe_dump(nested))
    return str(path)


def _check_counts(gpu_jobs: int, cpu_jobs: int) -> None:
    for name, n in (("gpu_jobs", gpu_jobs), ("cpu_jobs", cpu_jobs)):
        if not isinstance(n, int) or n < 0:
            raise InputError(f"`{name}` must be an int >= 0, got {n!r}")
    if gpu_jobs + cpu_jobs == 0:
        raise InputError("`gpu_jobs` + `cpu_jobs` must be >= 1: a cluster without jobs runs nothing")


def slurm_cluster(
    *,
    gpu_jobs: int = 1,
    cpu_jobs: int = 4,
    cores: int = 8,
    memory: str = "32GiB",
    gpu_cores: int = 3,
    gpu_memory: str = "32GiB",
    gpu_directives: Sequence[str] = ("--gres=gpu:1",),
    walltime: str = "12:00:00",
    queue: str | None = None,
    account: str | None = None,
    tls_directory: str | os.PathLike[str] | None = None,
    dashboard_address: str = "127.0.0.1:8787",
    **job_kwargs: Any,
) -> Any:
    """Start a ``dask_jobqueue.SLURMCluster`` with ``gpu_jobs`` GPU jobs and ``cpu_jobs`` CPU jobs.

    Parameters
    ----------
    gpu_jobs : int
        Jobs with ``gpu_directives`` (``#SBATCH`` lines), ``gpu_cores`` CPUs and ``gpu_memory``;
        each runs one worker of ``gpu_cores`` threads with resource ``GPU=gpu_cores`` (threads
        share the device: one runs the network while the others read and write blocks). Run
        ``segment(..., gpu_resources=True)`` when this is > 0 so that inference runs only there.
    cpu_jobs : int
        Jobs with ``cores`` CPUs and ``memory``; each runs ``cores`` single-threaded workers.
    walltime, queue, account : str
        As in ``sbatch --time``, ``--partition``, ``--account``.
    tls_directory : path, optional
        Where the workers read the cluster's certificate: a directory on a file system the
        compute nodes share, created with mode 0700 (default: a new one under ``~/.bigseg/tls``).
    dashboard_address : str
        The scheduler's dashboard binds here: this machine only by default (reach it with an SSH
        tunnel); pass ``":8787"`` to open it to the network.
    **job_kwargs
        Passed to ``SLURMCluster`` for both kinds of job (``python``, ``job_script_prologue``,
        ``local_directory``, ``log_directory``, ``job_extra_directives``, ...).

    Returns
    -------
    dask_jobqueue.SLURMCluster
        Its jobs are submitted already; ``Client(cluster).wait_for_workers(n)`` waits for them.
    """
    _check_counts(gpu_jobs, cpu_jobs)
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError:
        raise InputError("slurm_cluster needs dask-jobqueue: pip install 'bigseg[slurm]'") from None
    shared = list(job_kwargs.pop("job_extra_directives", []))
    extra_args = list(job_kwargs.pop("worker_extra_args", []))
    directory = _private_dir(tls_directory)
    # Workers get bigseg's worker environment (memory trimming, one BLAS/torch thread per Dask
    # thread) from a Dask config file the job exports, as `dask worker` does in the other deployments.
    prologue = [f"export DASK_CONFIG={_worker_config_file(directory)}", *job_kwargs.pop("job_script_prologue", [])]
    cluster = SLURMCluster(
        cores=cores, processes=cores, memory=memory, walltime=walltime, queue=queue, account=account,
        security=job_security(), shared_temp_directory=directory,
        scheduler_options={"dashboard_address": dashboard_address},
        job_extra_directives=shared, worker_extra_args=extra_args, job_script_prologue=prologue, **job_kwargs,
    )
    # SpecCluster workers may differ: GPU jobs are named specs with their own options; scale()
    # then fills up with CPU jobs from the cluster's template.
    gpu_options = {
        **cluster._job_kwargs, "cores": gpu_cores, "processes": 1, "memory": gpu_memory,
        "job_extra_directives": shared + list(gpu_directives),
        "worker_extra_args": extra_args + ["--resources", f"GPU={gpu_cores}"],
    }
    for i in range(gpu_jobs):
        cluster.worker_spec[f"{cluster.name}-gpu-{i}"] = {"cls": cluster.job_cls, "options": gpu_options}
    cluster.scale(jobs=gpu_jobs + cpu_jobs)
    # The link names the scheduler's host even where the dashboard listens on 127.0.0.1 only.
    logger.info("SLURM cluster: %d GPU jobs, %d CPU jobs, scheduler %s, dashboard on %s (%s)",
                gpu_jobs, cpu_jobs, cluster.scheduler_address, dashboard_address, cluster.dashboard_link)
    return cluster
