"""One accelerator per worker process, shared by the threads of that worker.

A GPU worker runs a few Dask threads so that one block's inference overlaps the
next block's reading and resampling and the previous block's writing; only one
thread at a time may run the network on the device (its memory holds one batch
of patches). :func:`device_use` is that lock; it also records when the device
was busy, so a run can report its busy fraction.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["busy_fraction", "device_intervals", "device_use", "reset_device_intervals"]

_LOCKS: dict[str, threading.Lock] = {}
_INTERVALS: dict[str, list[tuple[float, float]]] = {}
_GUARD = threading.Lock()


@contextmanager
def device_use(device: str) -> Iterator[None]:
    """Hold ``device`` (e.g. ``"cuda:0"``) for one block's inference; record the busy interval."""
    with _GUARD:
        lock = _LOCKS.setdefault(device, threading.Lock())
        intervals = _INTERVALS.setdefault(device, [])
    with lock:
        start = time.time()
        try:
            yield
        finally:
            intervals.append((start, time.time()))


def device_intervals(device: str | None = None) -> list[tuple[float, float]]:
    """Busy intervals (wall-clock seconds) of ``device``, or of every device, in this process."""
    with _GUARD:
        if device is not None:
            return list(_INTERVALS.get(device, []))
        return sorted(i for v in _INTERVALS.values() for i in v)


def reset_device_intervals() -> None:
    """Forget the recorded intervals (before a measured run)."""
    with _GUARD:
        for v in _INTERVALS.values():
            v.clear()


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
