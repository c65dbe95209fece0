"""BlockRunner, the one block runner: order of results, bounded window, failures named (no cluster)."""

from __future__ import annotations

import contextlib
import threading
import time

import pytest

from bigseg.errors import BlockFailedError, InputError
from bigseg.pipeline import BlockRunner
from bigseg.pipeline._records import RecordStore
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


# ------------------------------------------------------------------ on a cluster: several items per task

LINE = list(Grid((8, 8, 8 * 40), (8, 8, 8), Halo.of(0)).blocks())  # 40 light blocks along x


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as c:
        with distributed.Client(c) as cl:
            yield cl


def _linear_unless(context: None, block, bad: int) -> int:
    if block.linear == bad:
        raise ZeroDivisionError("boom")
    return block.linear * 3


def _tasks_of(client, run) -> tuple[list, int]:
    from distributed import get_task_stream

    with get_task_stream(client) as stream:
        out = run()
    return out, len({t["key"] for t in stream.data if str(t["key"]).startswith("bigseg-")})


def test_light_items_share_cluster_tasks_and_each_is_recorded(client, tmp_path):
    records = RecordStore(str(tmp_path / "rec"))
    runner = BlockRunner.on(client, records=records)
    runner.set_context(None)
    out, tasks = _tasks_of(client, lambda: runner.run("s", _linear_unless, LINE, lambda b: (-1,)))
    assert out == [3 * i for i in range(40)]
    assert records.done("s") == set(range(40))
    assert 4 <= tasks < 20  # the first window one item each, then batches; short again at the end
    one = BlockRunner.on(client, max_batch=1)
    one.set_context(None)
    out, tasks = _tasks_of(client, lambda: one.run("s", _linear_unless, LINE, lambda b: (-1,)))
    assert out == [3 * i for i in range(40)] and tasks == 40


def test_a_failed_item_in_a_batch_is_named_and_never_done(client, tmp_path):
    records = RecordStore(str(tmp_path / "rec"))
    runner = BlockRunner.on(client, records=records, retries=1)
    runner.set_context(None)
    with pytest.raises(BlockFailedError, match=r"s failed on block \(0, 0, 25\) .*after 2 tries: ZeroDivisionError"):
        runner.run("s", _linear_unless, LINE, lambda b: (25,))
    done = records.done("s")
    assert 25 not in done and done  # the items before it in its batch (and other batches) stay done
    again = BlockRunner.on(client, records=records)
    again.set_context(None)
    assert again.run("s", _linear_unless, LINE, lambda b: (-1,)) == [3 * i for i in range(40)]
    # Tasks already running when the stage stopped finish on their worker (Dask cannot stop a running
    # thread) and record their items then: more may be done by now, never fewer, never item 25.
    assert again.skipped["s"][0] >= len(done) and again.skipped["s"][1] == 40


def test_max_batch_is_validated():
    with pytest.raises(InputError, match="max_batch >= 1.*got 2, 1, 1 and 0"):
        BlockRunner(None, window=2, max_batch=0)


def test_starting_client_hands_back_a_given_client_or_none():
    from bigseg.pipeline._executor import StartingClient

    given = object()
    with StartingClient("local", given) as starting:
        assert starting.get() is given  # a caller's client: nothing started, nothing closed
    with StartingClient("sync") as starting:
        assert starting.get() is None


def test_starting_client_raises_its_start_error_in_the_caller(monkeypatch):
    import bigseg.pipeline._executor as executor

    @contextlib.contextmanager
    def failing(scheduler, **options):
        raise OSError(f"cannot reach {scheduler}")
        yield

    monkeypatch.setattr(executor, "open_client", failing)
    with executor.StartingClient("tcp://127.0.0.1:1") as starting:
        with pytest.raises(OSError, match="cannot reach tcp://127.0.0.1:1"):
            starting.get()


@pytest.mark.slow
def test_a_run_that_fails_while_its_cluster_starts_closes_the_cluster(tmp_path):
    """The cluster starts while the driver plans; a plan that fails must not leave its workers running."""
    import numpy as np
    import psutil

    from bigseg.pipeline import segment
    from bigseg.testing import balls_volume, write_image

    image, _ = balls_volume((32, 48, 48), np.array([(16, 16, 16)]), 6.0)
    write_image(tmp_path / "in.zarr", image)
    def workers() -> set[int]:  # multiprocessing's resource tracker, started with the first worker, stays
        return {p.pid for p in psutil.Process().children(recursive=True) if "spawn_main" in " ".join(p.cmdline())}

    before = workers()
    with pytest.raises(InputError, match="smaller than the predictor needs") as failed:
        segment(str(tmp_path / "in.zarr"), str(tmp_path / "out.zarr"), scheduler="local", n_workers=1,
                predictor="classical", diameter_um=10.0, halo=(0, 0, 0))
    # Checked while the error (and so the run's frames) is still held: closed by the run, not by
    # the garbage collector.
    assert failed.value is not None and not workers() - before
