"""Running one task per block, in a bounded window.

Not ``map_overlap``: its graph grows with the volume and explodes for whole
brains. Here the driver keeps at most ``window`` futures in flight and
submits the next block as one finishes, so scheduler memory is bounded.
A failed block stops the stage with :class:`BlockFailedError` naming it.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from bigseg.errors import BigsegError, BlockFailedError

__all__ = ["BlockRunner", "open_client"]

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]


def _describe(item: Any) -> str:
    roi = getattr(item, "write_roi", None)
    index = getattr(item, "index", None)
    if roi is not None:
        return f"block {index} (write ROI offset {roi.offset}, shape {roi.shape})"
    return repr(item)[:200]


@dataclass
class BlockRunner:
    """Runs ``fn(context, item, *args)`` for every item, in order of completion.

    ``client`` None runs in this process (no Dask), for tests and debugging.
    """

    client: Any = None
    window: int = 8
    progress: Progress | None = None
    _context_future: Any = field(default=None, init=False, repr=False)
    _context: Any = field(default=None, init=False, repr=False)

    def set_context(self, context: Any) -> None:
        """Send ``context`` (small, shared by every task) to the workers once."""
        self._context = context
        if self.client is not None:
            self._context_future = self.client.scatter(context, broadcast=True, hash=False)

    def run(
        self,
        stage: str,
        fn: Callable[..., Any],
        items: Sequence[Any],
        args: Callable[[Any], tuple[Any, ...]] | None = None,
        *,
        resources: dict[str, float] | None = None,
    ) -> list[Any]:
        """Run ``fn`` over ``items``; results come back in the order of ``items``."""
        n = len(items)
        results: list[Any] = [None] * n
        extra = args or (lambda item: ())
        if self.progress:
            self.progress(stage, 0, n)
        if self.client is None:
            for i, item in enumerate(items):
                results[i] = self._call_local(stage, fn, item, extra(item))
                if self.progress:
                    self.progress(stage, i + 1, n)
            return results
        return self._run_dask(stage, fn, items, extra, resources, results)

    def _call_local(self, stage: str, fn: Callable[..., Any], item: Any, extra: tuple[Any, ...]) -> Any:
        try:
            return fn(self._context, item, *extra)
        except BigsegError as exc:
            if isinstance(exc, BlockFailedError):
                raise
            raise type(exc)(f"{stage}: {_describe(item)}: {exc}") from exc
        except Exception as exc:
            raise BlockFailedError(f"{stage} failed on {_describe(item)}: {type(exc).__name__}: {exc}") from exc

    def _run_dask(
        self,
        stage: str,
        fn: Callable[..., Any],
        items: Sequence[Any],
        extra: Callable[[Any], tuple[Any, ...]],
        resources: dict[str, float] | None,
        results: list[Any],
    ) -> list[Any]:
        from distributed import as_completed

        n = len(items)
        pending = iter(range(n))
        index_of: dict[str, int] = {}

        def submit(i: int) -> Any:
            fut = self.client.submit(
                fn, self._context_future, items[i], *extra(items[i]),
                key=f"bigseg-{stage}-{i}-{id(self)}", pure=False, resources=resources, retries=1,
            )
            index_of[fut.key] = i
            return fut

        ac = as_completed([submit(i) for _, i in zip(range(self.window), pending)], with_results=False)
        done = 0
        for fut in ac:
            i = index_of.pop(fut.key)
            if fut.status != "finished":
                for other in list(ac.futures):
                    other.cancel()
                exc = fut.exception()
                if isinstance(exc, BigsegError) and not isinstance(exc, BlockFailedError):
                    raise type(exc)(f"{stage}: {_describe(items[i])}: {exc}") from exc
                raise BlockFailedError(
                    f"{stage} failed on {_describe(items[i])}: {type(exc).__name__}: {exc}"
                ) from exc
            results[i] = fut.result()
            fut.release()
            done += 1
            if self.progress:
                self.progress(stage, done, n)
            nxt = next(pending, None)
            if nxt is not None:
                ac.add(submit(nxt))
        return results


@contextmanager
def open_client(
    scheduler: str, *, n_workers: int | None, threads_per_worker: int, memory_limit: str
) -> Iterator[Any]:
    """Yield a Dask client for ``scheduler`` ('local', 'sync' or an address), or None for 'sync'."""
    if scheduler == "sync":
        yield None
        return
    from distributed import Client, LocalCluster

    # Importing distributed configures its loggers at INFO; follow bigseg's level instead.
    quiet = max(logging.getLogger("bigseg").getEffectiveLevel(), logging.INFO)
    for name in ("distributed", "distributed.scheduler", "distributed.nanny", "distributed.worker"):
        logging.getLogger(name).setLevel(quiet)
    if scheduler == "local":
        import os

        workers = n_workers or max(1, (os.cpu_count() or 1) // threads_per_worker)
        with LocalCluster(
            n_workers=workers, threads_per_worker=threads_per_worker, memory_limit=memory_limit,
            processes=True, dashboard_address="127.0.0.1:0", host="127.0.0.1", silence_logs=quiet,
        ) as cluster, Client(cluster) as client:
            logger.info("local Dask cluster: %d workers, dashboard %s", workers, client.dashboard_link)
            yield client
        return
    with Client(scheduler) as client:
        yield client
