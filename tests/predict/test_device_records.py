"""The device's use and task records stay bounded in a long-lived worker, whatever the number of blocks."""

from __future__ import annotations

from bigseg.predict._device import KEEP, device_task, device_tasks, device_use, device_uses, reset_device_intervals


def test_records_keep_the_last_uses_and_tasks_only():
    reset_device_intervals()
    try:
        for _ in range(KEEP + 10):
            with device_task(), device_use("test:0"):
                pass
        uses, tasks = device_uses("test:0"), device_tasks()
        assert len(uses) == KEEP and len(tasks) == KEEP
        assert all(a[2] <= b[2] for a, b in zip(uses, uses[1:]))  # the most recent, in order
    finally:
        reset_device_intervals()
