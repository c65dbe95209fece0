"""Pieces shared by the sub-commands."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Optional

from bigseg.pipeline import open_client

__all__ = ["cluster"]


@contextlib.contextmanager
def cluster(scheduler: Optional[str], n_workers: Optional[int]) -> Iterator[Any]:
    """None (run in this process) for no scheduler, 'sync' or 'threads'; else a client of
    an embedded LocalCluster ('local') or of a running scheduler (an address)."""
    if scheduler in (None, "sync", "threads"):
        yield None
        return
    with open_client(scheduler, n_workers=n_workers, threads_per_worker=1, memory_limit="auto") as client:
        yield client
