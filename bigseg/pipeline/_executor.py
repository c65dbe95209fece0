"""Running one task per block, in a bounded window: the only module that submits to Dask.

Not ``map_overlap``: its graph grows with the volume and explodes for whole
brains. Here the driver keeps at most ``window`` futures in flight and
submits the next block as one finishes, so scheduler memory is bounded.
A block is tried ``1 + retries`` times (optionally each under a timeout);
then the stage stops with :class:`BlockFailedError` naming it, its ROI and
the cause.

With a :class:`~bigseg.pipeline._records.RecordStore`, the runner does not
care what a stage computes: items whose done record exists are not run and
their recorded result is returned; every other item runs, its output is
durable when the task function returns, and only then does the task write its
done record (with the small result), on the worker.

On a cluster, one Dask task may run several consecutive items in turn (a
*batch*), each with its own timeout, output and done record, so that light
stages do not pay Dask's per-task cost (10–25 ms of scheduler, client and
worker time) for every block. The runner sizes batches as the stage goes
(guided scheduling): a task should take about :data:`TASK_SECONDS` of work at
the item time measured so far, never more than :data:`MAX_BATCH` items, and
never more than the remaining items spread over twice the worker threads, so
the stage's last tasks are short and no worker idles long at its end. Heavy
items (model inference on CPU) stay one per task.
"""

from __future__ import annotations

import contextvars
import logging
import os
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from bigseg.config import parse_scheduler
from bigseg.errors import BigsegError, BlockFailedError, BlockTimeoutError, InputError
from bigseg.pipeline._records import RecordStore
from bigseg.pipeline._workers import WorkerLayout, exit_quickly, local_layout, worker_config, worker_environ

__all__ = [
    "KILL_AT_ENV", "KILL_MARKER_ENV", "MAX_BATCH", "TASK_SECONDS", "BlockRunner", "StartingClient", "fault_point",
    "open_client",
]

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
Task = Callable[..., Any]  # fn(context, item, *args(item))
ArgsOf = Callable[[Any], tuple[Any, ...]]  # an item's extra arguments, computed when it is submitted
Resources = dict[str, float]  # Dask worker resources, e.g. {"GPU": 1}

#: Seconds of work a cluster task should carry, so Dask's per-task cost stays a small share.
TASK_SECONDS = 0.25
#: At most this many items in one cluster task (bounds a batch's arguments, results and redo on retry).
MAX_BATCH = 32


def _describe(item: Any) -> str:
    roi = getattr(item, "write_roi", None)
    index = getattr(item, "index", None)
    if roi is not None:
        return f"block {index} (write ROI offset {roi.offset}, shape {roi.shape})"
    return repr(item)[:200]


KILL_AT_ENV = "BIGSEG_KILL_AT"
KILL_MARKER_ENV = "BIGSEG_KILL_MARKER"


def fault_point(stage: str, item: int, moment: str) -> None:
    """Test hook: SIGKILL this process's whole group at ``stage:item:moment``.

    ``BIGSEG_KILL_AT=flood:3:written`` kills the driver and every worker of a
    run (started in its own process group) right after block 3 of ``flood``
    wrote its output, before its done record. Moments: ``written`` and
    ``done`` for block tasks; ``written`` (computed, e.g. the table file
    written) and ``saved`` (its record) for driver-side results;
    ``cluster:0:close`` as a run's own cluster begins to close. Does
    nothing when the variable is unset. A ``:stop`` suffix stops the group
    (SIGSTOP) instead, until a SIGCONT. A ``:worker`` suffix kills only the
    process that runs the task, once (``BIGSEG_KILL_MARKER`` names the file
    that records it), so Dask retries the block elsewhere.
    """
    spec = os.environ.get(KILL_AT_ENV)
    if not spec:
        return
    if spec == f"{stage}:{item}:{moment}":
        logger.warning("%s=%s: killing process group %d", KILL_AT_ENV, spec, os.getpgrp())
        os.killpg(os.getpgrp(), signal.SIGKILL)
    if spec == f"{stage}:{item}:{moment}:stop":
        os.killpg(os.getpgrp(), signal.SIGSTOP)  # frozen until SIGCONT: a run that is "still going"
    if spec == f"{stage}:{item}:{moment}:worker":
        # This process only (a Dask worker), once: the marker file stops the retry from dying too.
        try:
            os.close(os.open(os.environ[KILL_MARKER_ENV], os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
        logger.warning("%s=%s: killing process %d", KILL_AT_ENV, spec, os.getpid())
        os._exit(1)


def _with_timeout(fn: Callable[..., Any], args: tuple[Any, ...], timeout: float | None) -> Any:
    """``fn(*args)``, or BlockTimeoutError after ``timeout`` seconds (the call is abandoned, not stopped)."""
    if timeout is None:
        return fn(*args)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = fn(*args)
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc

    thread = threading.Thread(target=target, name="bigseg-block", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise BlockTimeoutError(f"did not finish within the block timeout of {timeout:g}s")
    if "error" in box:
        raise box["error"]
    return box["result"]


@dataclass(frozen=True)
class _Task:
    """What runs on a worker: the stage function, then the done record (picklable)."""

    fn: Callable[..., Any]
    stage: str
    records: RecordStore | None
    timeout: float | None

    def __call__(self, context: Any, i: int, item: Any, *extra: Any) -> Any:
        result = _with_timeout(self.fn, (context, item, *extra), self.timeout)
        fault_point(self.stage, i, "written")
        if self.records is not None:
            self.records.mark_done(self.stage, i, result)
            fault_point(self.stage, i, "done")
        return result


@dataclass(frozen=True)
class _Batch:
    """What runs on a worker for a batch: each item in turn, as :class:`_Task` (output, then done record).

    Returns the seconds the items took and their ``(index, result)``. An item that fails stops the
    batch with its error, marked with the item's index (``bigseg_item``) so the driver names that
    block; the items before it are done (durable, recorded) and stay done.
    """

    task: _Task

    def __call__(self, context: Any, batch: list[tuple[int, Any, tuple[Any, ...]]]) -> tuple[float, list[Any]]:
        t0, out = time.perf_counter(), []
        for i, item, extra in batch:
            try:
                out.append((i, self.task(context, i, item, *extra)))
            except Exception as exc:
                with suppress(AttributeError, TypeError):  # an error without a __dict__ is named by its batch
                    exc.bigseg_item = i  # type: ignore[attr-defined]  # pickled with the error
                raise
        return time.perf_counter() - t0, out


@dataclass
class BlockRunner:
    """Runs ``fn(context, item, *args(item))`` for every item, at most ``window`` at a time.

    The one place that submits work to Dask (``pipeline``, ``synth`` and
    ``evaluate`` all run their blocks here). ``client`` None runs in this
    process: serially, or on ``threads`` threads (no Dask either way).
    Build it with :meth:`on` for the default window.

    ``records`` None runs everything and records nothing; with records, items
    already done are skipped (their recorded results are returned) and
    ``skipped[stage]`` says how many of how many. ``check`` is called after
    every finished block (a run's lock raises there if it was lost).
    ``max_batch`` caps the items of one cluster task (1: one item per task).
    """

    client: Any = None
    window: int = 8
    progress: Progress | None = None
    threads: int = 1
    records: RecordStore | None = None
    retries: int = 1
    timeout: float | None = None
    check: Callable[[], None] | None = None
    max_batch: int = MAX_BATCH
    skipped: dict[str, tuple[int, int]] = field(default_factory=dict)
    _context_future: Any = field(default=None, init=False, repr=False)
    _context: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.window < 1 or self.threads < 1 or self.retries < 0 or self.max_batch < 1:
            raise InputError(
                f"BlockRunner needs window >= 1, threads >= 1, retries >= 0 and max_batch >= 1, got {self.window}, "
                f"{self.threads}, {self.retries} and {self.max_batch}"
            )

    @classmethod
    def on(
        cls, client: Any, *, window: int | None = None, progress: Progress | None = None, threads: int = 1,
        **options: Any,
    ) -> BlockRunner:
        """A runner on ``client`` (or ``threads`` local threads) with ``window`` default 2 per thread (at least 2);
        ``options``: ``records``, ``retries``, ``timeout``, ``check``."""
        n = sum(client.nthreads().values()) if client is not None else threads
        return cls(client, window=window or max(2, 2 * n), progress=progress, threads=threads, **options)

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
        done: list[int] = []
        if self.records is not None:
            done = sorted(i for i in self.records.done(stage) if i < n)
        self.skipped[stage] = (len(done), n)
        if done:
            logger.info("stage %s: %d of %d blocks already done, skipped", stage, len(done), n)
        if self.progress:
            self.progress(stage, len(done), n)
        if done:
            assert self.records is not None
            yield from self.records.results(stage, done)
        todo = sorted(set(range(n)) - set(done))
        task = _Task(fn, stage, self.records, self.timeout)
        if self.client is not None:
            source = self._imap_dask(stage, task, items, todo, extra, resources)
        elif self.threads > 1:
            source = self._imap_threads(stage, task, items, todo, extra)
        else:
            source = ((i, self._call_local(stage, task, i, items[i], extra(items[i]))) for i in todo)
        for finished, (i, result) in enumerate(source, len(done) + 1):
            if self.check is not None:
                self.check()
            if self.progress:
                self.progress(stage, finished, n)
            yield i, result

    def _call_local(self, stage: str, task: _Task, i: int, item: Any, extra: tuple[Any, ...]) -> Any:
        for attempt in range(self.retries + 1):
            try:
                return task(self._context, i, item, *extra)
            except BlockFailedError:
                raise
            except Exception as exc:
                if isinstance(exc, BigsegError) and not isinstance(exc, BlockTimeoutError):
                    raise _failure(stage, item, exc) from exc  # bad input: trying again cannot help
                if attempt == self.retries:
                    raise _failure(stage, item, exc, attempts=attempt + 1) from exc
                logger.warning("%s: %s failed (%s: %s), trying again", stage, _describe(item), type(exc).__name__, exc)
        raise AssertionError("unreachable")

    def _imap_threads(
        self, stage: str, task: _Task, items: Sequence[Any], todo: list[int], extra: Callable[[Any], tuple[Any, ...]]
    ) -> Iterator[tuple[int, Any]]:
        pending = iter(todo)
        with ThreadPoolExecutor(self.threads, thread_name_prefix=f"bigseg-{stage}") as pool:

            def submit(i: int) -> Future[Any]:
                return pool.submit(self._call_local, stage, task, i, items[i], extra(items[i]))

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
        task: _Task,
        items: Sequence[Any],
        todo: list[int],
        extra: Callable[[Any], tuple[Any, ...]],
        resources: dict[str, float] | None,
    ) -> Iterator[tuple[int, Any]]:
        from distributed import as_completed

        pending = list(reversed(todo))  # popped from the end: items go out in order
        threads = max(1, sum(self.client.nthreads().values()))
        timing = [0.0, 0]  # seconds and items of the batches finished so far
        batch_of: dict[str, list[int]] = {}

        def size() -> int:
            """Items in the next task: about TASK_SECONDS of work, and short towards the stage's end."""
            if not timing[1] or self.max_batch == 1:
                return 1
            per_item = max(timing[0] / timing[1], 1e-6)
            return max(1, min(self.max_batch, int(TASK_SECONDS / per_item), -(-len(pending) // (2 * threads))))

        def submit() -> Any:
            batch = [pending.pop() for _ in range(min(size(), len(pending)))]
            fut = self.client.submit(
                _Batch(task), self._context_future, [(i, items[i], extra(items[i])) for i in batch],
                key=f"bigseg-{stage}-{batch[0]}-{id(self)}", pure=False, resources=resources, retries=self.retries,
            )
            batch_of[fut.key] = batch
            return fut

        ac = as_completed([submit() for _ in range(min(self.window, len(pending)))], with_results=False)
        for fut in ac:
            batch = batch_of.pop(fut.key)
            if fut.status != "finished":
                for other in list(ac.futures):
                    other.cancel()
                exc = fut.exception()
                if isinstance(exc, BlockFailedError):
                    raise exc
                i = getattr(exc, "bigseg_item", batch[0])
                retried = not isinstance(exc, BigsegError) or isinstance(exc, BlockTimeoutError)
                raise _failure(stage, items[i], exc, attempts=self.retries + 1 if retried else 1) from exc
            seconds, results = fut.result()
            fut.release()
            timing[0] += seconds
            timing[1] += len(results)
            yield from results
            if pending:
                ac.add(submit())


def _failure(stage: str, item: Any, exc: BaseException, *, attempts: int = 1) -> BigsegError:
    """The error a failed item raises: bad input (a BigsegError) keeps its type, naming the stage and
    block; anything else (a timeout too) becomes :class:`BlockFailedError` naming the block, its ROI,
    the tries and the cause."""
    if isinstance(exc, BigsegError) and not isinstance(exc, BlockTimeoutError):
        return type(exc)(f"{stage}: {_describe(item)}: {exc}")
    tries = f" after {attempts} tries" if attempts > 1 else ""
    return BlockFailedError(
        f"{stage} failed on {_describe(item)}{tries}: {type(exc).__name__}: {exc}; blocks already done stay done: "
        "run the same command again to redo only this block and what depends on it"
    )


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
    trimming, thread counts). 'auto' is 'local' here: a run resolves it first, from its size
    (:func:`~bigseg.pipeline._workers.auto_scheduler`).
    """
    scheduler = parse_scheduler(scheduler)
    if scheduler == "auto":
        scheduler = "local"
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
            client.run(exit_quickly)  # the close need not wait for each worker's interpreter teardown
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


class StartingClient:
    """A run's Dask client, its start begun at once in a background thread.

    ``client`` when one is given; None for ``'sync'``; else :func:`open_client` with ``options``,
    entered in a thread, so that a cluster's start (its worker processes spawning and importing:
    seconds, on any machine) overlaps what the driver does before the first stage (planning, the
    tissue mask, creating the outputs) instead of following it. :meth:`get` waits for the start
    and returns the client, or raises the start's error. Leaving the ``with`` block closes a
    cluster started here; one still starting is waited for first (a start cannot be cut short).
    """

    def __init__(self, scheduler: str, client: Any = None, **options: Any) -> None:
        self._given, self._cm, self._box = client, None, dict[str, Any]()
        self._thread: threading.Thread | None = None
        # distributed's Client keeps "the current client" in a context variable, which must be
        # reset in the context that set it: the start and the close both run in this one.
        self._context = contextvars.Context()
        if client is None and parse_scheduler(scheduler) != "sync":
            self._cm = open_client(scheduler, **options)
            self._thread = threading.Thread(target=self._context.run, args=(self._start,), name="bigseg-cluster-start",
                                            daemon=True)
            self._thread.start()

    def _start(self) -> None:
        try:
            self._box["client"] = self._cm.__enter__()  # type: ignore[union-attr]
        except BaseException as exc:  # raised by get(), in the caller's thread
            self._box["error"] = exc

    def get(self) -> Any:
        """The client (None in-process), once started."""
        if self._thread is None:
            return self._given
        self._thread.join()
        if "error" in self._box:
            raise self._box["error"]
        return self._box["client"]

    def __enter__(self) -> StartingClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._thread is None:
            return
        self._thread.join()
        if "client" in self._box:
            self._box.pop("client")
            fault_point("cluster", 0, "close")
            self._context.run(self._cm.__exit__, None, None, None)  # type: ignore[union-attr]


def _local_cluster(layout: WorkerLayout, memory_limit: str, quiet: int) -> Any:
    import dask
    from distributed import LocalCluster

    # The Nanny puts its workers' variables into this process's environment to spawn them, and a
    # variable already there wins over the config: put the caller's back, so this process (and a
    # later cluster with other thread counts) keeps its own.
    saved = {name: os.environ.get(name) for name in worker_environ(layout.task_threads)}
    try:
        # The Nanny reads its workers' environment when it starts them, inside this block.
        with dask.config.set(worker_config(layout.task_threads)):
            return LocalCluster(
                n_workers=layout.n_workers, threads_per_worker=layout.threads_per_worker, memory_limit=memory_limit,
                processes=True, dashboard_address="127.0.0.1:0", host="127.0.0.1", silence_logs=quiet,
            )
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
