"""Running one task per block, in a bounded window: the only module that submits to Dask.

Not ``map_overlap``: its graph grows with the volume and explodes for whole
brains. Here the driver keeps at most ``window`` futures in flight and
submits the next block as one finishes, so scheduler memory is bounded.
A failed block stops the stage with :class:`BlockFailedError` naming it.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from bigseg.config import parse_scheduler
from bigseg.errors import BigsegError, BlockFailedError, InputError
from bigseg.pipeline._workers import WorkerLayout, local_layout, worker_config

__all__ = ["BlockRunner", "open_client"]

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
Task = Callable[..., Any]  # fn(context, item, *args(item))
ArgsOf = Callable[[Any], tuple[Any, ...]]  # an item's extra arguments, computed when it is submitted
Resources = dict[str, float]  # Dask worker resources, e.g. {"GPU": 1}


def _describe(item: Any) -> str:
    roi = getattr(item, "write_roi", None)
    index = getattr(item, "index", None)
    if roi is not None:
        return f"block {index} (write ROI offset {roi.offset}, shape {roi.shape})"
    return repr(item)[:200]


@dataclass
class BlockRunner:
    """Runs ``fn(context, item, *args(item))`` for every item, at most ``window`` at a time.

    The one place that submits work to Dask (``pipeline``, ``synth`` and
    ``evaluate`` all run their blocks here). ``client`` None runs in this
    process: serially, or on ``threads`` threads (no Dask either way).
    Build it with :meth:`on` for the default window.
    """

    client: Any = None
    window: int = 8
    progress: Progress | None = None
    threads: int = 1
    _context_future: Any = field(default=None, init=False, repr=False)
    _context: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.window < 1 or self.threads < 1:
            raise InputError(f"BlockRunner needs window >= 1 and threads >= 1, got {self.window} and {self.threads}")

    @classmethod
    def on(cls, client: Any, *, window: int | None = None, progress: Progress | None = None, threads: int = 1) -> BlockRunner:
        """A runner on ``client`` (or ``threads`` local threads) with ``window`` default 2 per thread (at least 2)."""
        n = sum(client.nthreads().values()) if client is not None else threads
        return cls(client, window=window or max(2, 2 * n), progress=progress, threads=threads)

    def set_context(self, context: Any) -> None:
        """Send ``context`` (small, shared by every task) to the workers once."""
        self._context = context
        if self.client is not None:
            self._context_future = self.client.scatter(context, broadcast=True, hash=False)

    def share(self, value: Any) -> Any:
        """A handle on ``value`` (e.g. per-block offsets) to pass to many tasks: sent to each worker once."""
        if self.client is None:
            return value
        return self.client.scatter(value, broadcast=True, hash=False)

    def run(self, stage: str, fn: Task, items: Sequence[Any], args: ArgsOf | None = None, *,
            resources: Resources | None = None) -> list[Any]:
        """Run ``fn`` over ``items``; results come back in the order of ``items``."""
        results: list[Any] = [None] * len(items)
        for i, result in self.imap(stage, fn, items, args, resources=resources):
            results[i] = result
        return results

    def imap(self, stage: str, fn: Task, items: Sequence[Any], args: ArgsOf | None = None, *,
             resources: Resources | None = None) -> Iterator[tuple[int, Any]]:
        """Yield ``(index, result)`` as items finish, so a caller can fold results in bounded memory.

        ``args(item)`` is called only when the item is submitted: at most
        ``window`` items' arguments exist at once.
        """
        n = len(items)
        extra = args or (lambda item: ())
        if self.progress:
            self.progress(stage, 0, n)
        if self.client is not None:
            source = self._imap_dask(stage, fn, items, extra, resources)
        elif self.threads > 1:
            source = self._imap_threads(stage, fn, items, extra)
        else:
            source = ((i, self._call_local(stage, fn, item, extra(item))) for i, item in enumerate(items))
        for done, (i, result) in enumerate(source, 1):
            if self.progress:
                self.progress(stage, done, n)
            yield i, result

    def _call_local(self, stage: str, fn: Callable[..., Any], item: Any, extra: tuple[Any, ...]) -> Any:
        try:
            return fn(self._context, item, *extra)
        except BlockFailedError:
            raise
        except Exception as exc:
            raise _failure(stage, item, exc) from exc

    def _imap_threads(
        self, stage: str, fn: Callable[..., Any], items: Sequence[Any], extra: Callable[[Any], tuple[Any, ...]]
    ) -> Iterator[tuple[int, Any]]:
        pending = iter(range(len(items)))
        with ThreadPoolExecutor(self.threads, thread_name_prefix=f"bigseg-{stage}") as pool:

            def submit(i: int) -> Future[Any]:
                return pool.submit(self._call_local, stage, fn, items[i], extra(items[i]))

            running = {submit(i): i for _, i in zip(range(self.window), pending)}
            try:
                while running:
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        i = running.pop(fut)
                        yield i, fut.result()
                        nxt = next(pending, None)
                        if nxt is not None:
                            running[submit(nxt)] = nxt
            finally:
                for fut in running:
                    fut.cancel()

    def _imap_dask(
        self,
        stage: str,
        fn: Callable[..., Any],
        items: Sequence[Any],
        extra: Callable[[Any], tuple[Any, ...]],
        resources: dict[str, float] | None,
    ) -> Iterator[tuple[int, Any]]:
        from distributed import as_completed

        pending = iter(range(len(items)))
        index_of: dict[str, int] = {}

        def submit(i: int) -> Any:
            fut = self.client.submit(
                fn, self._context_future, items[i], *extra(items[i]),
                key=f"bigseg-{stage}-{i}-{id(self)}", pure=False, resources=resources, retries=1,
            )
            index_of[fut.key] = i
            return fut

        ac = as_completed([submit(i) for _, i in zip(range(self.window), pending)], with_results=False)
        for fut in ac:
            i = index_of.pop(fut.key)
            if fut.status != "finished":
                for other in list(ac.futures):
                    other.cancel()
                exc = fut.exception()
                if isinstance(exc, BlockFailedError):
                    raise exc
                raise _failure(stage, items[i], exc) from exc
            result = fut.result()
            fut.release()
            yield i, result
            nxt = next(pending, None)
            if nxt is not None:
                ac.add(submit(nxt))


def _failure(stage: str, item: Any, exc: BaseException) -> BigsegError:
    """The error a failed item raises: a BigsegError keeps its type, naming the stage and block;
    anything else becomes :class:`BlockFailedError`."""
    if isinstance(exc, BigsegError):
        return type(exc)(f"{stage}: {_describe(item)}: {exc}")
    return BlockFailedError(f"{stage} failed on {_describe(item)}: {type(exc).__name__}: {exc}")


@contextmanager
def open_client(
    scheduler: str,
    *,
    n_workers: int | None,
    threads_per_worker: int,
    memory_limit: str,
    task_threads: int | None = None,
) -> Iterator[Any]:
    """Yield a Dask client for ``scheduler`` ('local', an address or a scheduler file), or None for 'sync'.

    ``scheduler`` is checked by :func:`bigseg.config.parse_scheduler`. 'local' starts an embedded
    LocalCluster laid out by :func:`local_layout`, its workers in :func:`worker_environ` (memory
    trimming, thread counts).
    """
    scheduler = parse_scheduler(scheduler)
    if scheduler == "sync":
        yield None
        return
    from distributed import Client

    # Importing distributed configures its loggers at INFO; follow bigseg's level instead.
    quiet = max(logging.getLogger("bigseg").getEffectiveLevel(), logging.INFO)
    for name in ("distributed", "distributed.scheduler", "distributed.nanny", "distributed.worker"):
        logging.getLogger(name).setLevel(quiet)
    if scheduler == "local":
        layout = local_layout(n_workers, threads_per_worker, task_threads)
        with _local_cluster(layout, memory_limit, quiet) as cluster, Client(cluster) as client:
            logger.info("local Dask cluster: %d workers × %d threads × %d task threads, dashboard %s",
                        layout.n_workers, layout.threads_per_worker, layout.task_threads, client.dashboard_link)
            yield client
        return
    if os.path.isfile(scheduler):
        with Client(scheduler_file=scheduler) as client:
            yield client
        return
    with Client(scheduler) as client:
        yield client


def _local_cluster(layout: WorkerLayout, memory_limit: str, quiet: int) -> Any:
    import dask
    from distributed import LocalCluster

    # The Nanny reads its workers' environment when it starts them, inside this block.
    with dask.config.set(worker_config(layout.task_threads)):
        return LocalCluster(
            n_workers=layout.n_workers, threads_per_worker=layout.threads_per_worker, memory_limit=memory_limit,
            processes=True, dashboard_address="127.0.0.1:0", host="127.0.0.1", silence_logs=quiet,
        )
