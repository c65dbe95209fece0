"""BlockRunner, the one block runner: order of results, bounded window, failures named (no cluster)."""

from __future__ import annotations

import threading
import time

import pytest

from bigseg.errors import BlockFailedError, InputError
from bigseg.pipeline import BlockRunner
from bigseg.tiling import Grid, Halo


def _square(context: int, item: int, extra: int) -> int:
    return context * item * item + extra


@pytest.mark.parametrize("threads", [1, 3])
def test_results_come_back_in_item_order(threads):
    runner = BlockRunner.on(None, threads=threads, window=4)
    runner.set_context(2)
    assert runner.run("square", _square, list(range(20)), lambda i: (i % 2,)) == [2 * i * i + i % 2 for i in range(20)]


def test_threads_never_hold_more_than_the_window():
    lock, state = threading.Lock(), {"now": 0, "most": 0}

    def task(_: None, item: int) -> int:
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        time.sleep(0.01)
        with lock:
            state["now"] -= 1
        return item

    runner = BlockRunner(None, window=3, threads=8)
    assert sorted(i for i, _ in runner.imap("wait", task, list(range(24)))) == list(range(24))
    assert state["most"] <= 3


@pytest.mark.parametrize("threads", [1, 2])
def test_a_failed_block_is_named(threads):
    blocks = list(Grid((8, 8, 16), (8, 8, 8), Halo.of(0)).blocks())

    def fail_second(_: None, block) -> int:
        if block.linear == 1:
            raise ZeroDivisionError("boom")
        return block.linear

    runner = BlockRunner.on(None, threads=threads)
    with pytest.raises(BlockFailedError, match=r"flood failed on block \(0, 0, 1\) \(write ROI offset \(0, 0, 8\).*boom"):
        runner.run("flood", fail_second, blocks)

    def bad_input(_: None, block) -> int:
        raise InputError("labels must be >= 0")

    with pytest.raises(InputError, match=r"flood: block \(0, 0, 0\).*labels must be >= 0"):
        runner.run("flood", bad_input, blocks[:1])


def test_window_and_threads_are_validated():
    with pytest.raises(InputError, match="window >= 1.*got 0"):
        BlockRunner(None, window=0)
