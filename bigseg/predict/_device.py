"""One accelerator per worker process, shared by the threads of that worker.

A GPU worker runs a few Dask threads so that one block's inference overlaps the
next block's reading and resampling and the previous block's writing; only one
thread at a time may run the network on the device (its memory holds one batch
of patches). :func:`device_use` is that lock; it also records when the device
was busy, so a run can report its busy fraction.

How many patches one forward pass takes is decided by the device's memory
(:func:`batch_for_memory`): on CUDA from ``torch.cuda.mem_get_info`` and the
memory a forward pass of 1 and 2 patches was measured to take; on the
simulated device from its stated memory size; on CPU a fixed
:data:`CPU_BATCH` (a CPU gains little from larger batches, and its maps keep
the bits they had).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from bigseg.errors import InputError

__all__ = [
    "CPU_BATCH", "KEEP", "MAX_BATCH", "MEMORY_SHARE", "batch_for_memory", "busy_fraction", "device_intervals", "device_task",
    "device_tasks", "device_use", "device_uses", "overlap_times", "reset_device_intervals",
]

#: Patches per forward pass on a CPU.
CPU_BATCH = 2
#: The largest batch chosen from memory: past it a GPU gains little, and every block pads its last batch
#: with zeros up to the batch size (a fixed batch keeps a patch's maps independent of its batch-mates).
MAX_BATCH = 16
#: Share of the device's memory given to one batch; the rest holds one block's blending buffers
#: (on the device), the allocator's caching and fragmentation.
MEMORY_SHARE = 0.5

#: The most recent uses per device and tasks this process remembers: a long-lived worker's records
#: stay bounded whatever the number of blocks (a measured run resets them and reads them at its end).
KEEP = 4096

_LOCKS: dict[str, threading.Lock] = {}
# Per device: (thread id, asked for, acquired, released), wall-clock seconds.
_USES: dict[str, deque[tuple[int, float, float, float]]] = {}
# Tasks that use a device: (thread id, start, end).
_TASKS: deque[tuple[int, float, float]] = deque(maxlen=KEEP)
_GUARD = threading.Lock()


@contextmanager
def device_use(device: str) -> Iterator[None]:
    """Hold ``device`` (e.g. ``"cuda:0"``) for one block's inference; record the busy interval."""
    with _GUARD:
        lock = _LOCKS.setdefault(device, threading.Lock())
        uses = _USES.setdefault(device, deque(maxlen=KEEP))
    asked = time.time()
    with lock:
        start = time.time()
        try:
            yield
        finally:
            uses.append((threading.get_ident(), asked, start, time.time()))


def device_intervals(device: str | None = None) -> list[tuple[float, float]]:
    """Busy intervals (wall-clock seconds) of ``device``, or of every device, in this process."""
    return sorted((start, end) for _, _, start, end in device_uses(device))


def device_uses(device: str | None = None) -> list[tuple[int, float, float, float]]:
    """The last :data:`KEEP` uses of ``device`` (or of every device) in this process: ``(thread id, asked
    for, acquired, released)``; a thread waited for the device from the second to the third and held it until the fourth."""
    with _GUARD:
        if device is not None:
            return list(_USES.get(device, ()))
        return sorted(u for v in _USES.values() for u in v)


@contextmanager
def device_task() -> Iterator[None]:
    """Record the interval of one block's task that uses a device (on this thread): with
    :func:`device_uses` it tells the task's host time from its device time (:func:`overlap_times`)."""
    start = time.time()
    try:
        yield
    finally:
        with _GUARD:
            _TASKS.append((threading.get_ident(), start, time.time()))


def device_tasks() -> list[tuple[int, float, float]]:
    """The last :data:`KEEP` recorded tasks of this process: ``(thread id, start, end)``."""
    with _GUARD:
        return list(_TASKS)


def reset_device_intervals() -> None:
    """Forget the recorded uses and tasks (before a measured run)."""
    with _GUARD:
        for v in _USES.values():
            v.clear()
        _TASKS.clear()


def _union(intervals: list[tuple[float, float]]) -> float:
    total, reach = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b > reach:
            total += b - max(a, reach)
            reach = b
    return total


def overlap_times(
    tasks: list[tuple[int, float, float]], uses: list[tuple[int, float, float, float]]
) -> tuple[float, float, float]:
    """Span, host time and device time of a run's tasks, each a union over threads (seconds).

    A task's host time is its interval minus the time its thread waited for or held the
    device. Without overlap, host and device intervals are disjoint and the span is at least
    host + device; ``host + device - span`` is the time the overlap hid.

    Examples
    --------
    >>> overlap_times([(1, 0, 3), (2, 1, 4)], [(1, 1, 1, 2), (2, 2, 2, 3)])  # each task: 1 s host, 1 s device, 1 s host
    (4, 4.0, 2.0)
    """
    host = []
    for thread, start, end in tasks:
        cursor = start
        for _, asked, _, released in sorted(u for u in uses if u[0] == thread and start <= u[1] <= end):
            host.append((cursor, asked))
            cursor = released
        host.append((cursor, end))
    device = [(acquired, released) for _, _, acquired, released in uses]
    if not tasks:
        return 0.0, 0.0, _union(device)
    span = max(e for _, _, e in tasks) - min(s for _, s, _ in tasks)
    return span, _union(host), _union(device)


def busy_fraction(intervals: list[tuple[float, float]], *, skip_first: bool = True) -> float:
    """Fraction of time the device was busy, from the end of its first use (``skip_first``:
    nothing can overlap the first block's reading) to the end of its last.

    Examples
    --------
    >>> busy_fraction([(0, 1), (1, 2), (3, 4)])
    0.6666666666666666
    """
    spans = sorted(intervals)
    if len(spans) < 2:
        return float("nan")
    start = spans[0][1] if skip_first else spans[0][0]
    rest = spans[1:] if skip_first else spans
    end = max(e for _, e in spans)
    busy = sum(min(e, end) - max(s, start) for s, e in rest if e > start)
    return busy / (end - start) if end > start else float("nan")


def batch_for_memory(
    free_bytes: float, per_patch_bytes: float, *, fixed_bytes: float = 0.0, share: float = MEMORY_SHARE,
    largest: int = MAX_BATCH,
) -> int:
    """Patches per forward pass on a device with ``free_bytes`` of free memory.

    The largest power of two, at most ``largest``, whose pass fits in ``share`` of the free memory:
    ``fixed_bytes + batch * per_patch_bytes <= share * free_bytes``. Powers of two keep the choice
    stable when the free memory moves a little between workers or runs (the batch size is part of
    a GPU's numerics).

    Raises
    ------
    InputError
        Not even one patch fits.

    Examples
    --------
    >>> batch_for_memory(16 * 2**30, 2**30)        # 8 GiB for batches of 1 GiB per patch
    8
    >>> batch_for_memory(80 * 2**30, 2**28)        # capped
    16
    >>> batch_for_memory(4 * 2**30, 2**29, fixed_bytes=2**29)
    2
    """
    if not (per_patch_bytes > 0 and free_bytes >= 0 and fixed_bytes >= 0 and 0 < share <= 1 and largest >= 1):
        raise InputError(
            f"batch_for_memory needs per_patch_bytes > 0, free and fixed bytes >= 0, 0 < share <= 1 and largest >= 1; "
            f"got {per_patch_bytes}, {free_bytes}, {fixed_bytes}, {share}, {largest}"
        )
    fits = int((share * free_bytes - fixed_bytes) // per_patch_bytes)
    if fits < 1:
        gib = 2**30
        raise InputError(
            f"one patch needs {(fixed_bytes + per_patch_bytes) / gib:.2f} GiB of device memory but only "
            f"{share:g} × {free_bytes / gib:.2f} GiB free may hold a batch: free the device (other processes), "
            "use a smaller patch_size, or run on the CPU (--device cpu)"
        )
    batch = 1
    while batch * 2 <= min(fits, largest):
        batch *= 2
    return batch
