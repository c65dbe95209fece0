"""Done records and the runner that honours them: skip what is done, time out, retry, fail clearly."""

from __future__ import annotations

import time

import numpy as np
import pytest

from bigseg.errors import BlockFailedError, InputError
from bigseg.measure import BlockStats
from bigseg.pipeline._executor import BlockRunner
from bigseg.pipeline._records import RecordStore, decode_value, encode_value
from bigseg.stitch import Renumbering, number_objects
from bigseg.tiling import Grid, Halo

GRID = Grid((16, 16, 32), (16, 16, 8), Halo.of(0))  # 4 blocks along x


def test_values_round_trip_without_pickles():
    numbering = number_objects(np.array([2, 3], np.int64), np.array([[1, 2 ** 32 + 1]], np.uint64))
    stats = BlockStats(**{name: np.arange(3) for name in BlockStats.__dataclass_fields__})
    for value in (None, 7, 2.5, np.arange(4, dtype=np.uint64), (1, np.zeros((0, 2), np.uint64)), stats,
                  Renumbering.from_sizes(np.array([1, 2, 3], np.uint32), np.array([5, 1, 9]), min_size=2)):
        back = decode_value(encode_value(value))
        assert type(back) is type(value)
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(back, value)
            assert back.dtype == value.dtype
    back = decode_value(encode_value(numbering))
    np.testing.assert_array_equal(back.offsets, numbering.offsets)
    assert back.n_objects == numbering.n_objects == 4
    with pytest.raises(TypeError, match="cannot record a value of type dict"):
        encode_value({"a": 1})


def _double(ctx, block, calls):
    calls.append(block.linear)
    return block.linear * 2


def test_done_items_are_skipped_and_their_results_returned(tmp_path):
    records = RecordStore(str(tmp_path / "rec"))
    blocks = list(GRID.blocks())
    calls: list[int] = []
    runner = BlockRunner(records=records)
    assert runner.run("s", _double, blocks, lambda b: (calls,)) == [0, 2, 4, 6]
    assert records.done("s") == {0, 1, 2, 3}
    (tmp_path / "rec" / "done" / "s" / "2").unlink()  # as if killed before block 2's record
    calls.clear()
    again = BlockRunner(records=records)
    assert again.run("s", _double, blocks, lambda b: (calls,)) == [0, 2, 4, 6]
    assert calls == [2] and again.skipped["s"] == (3, 4)


def _flaky(ctx, block, state):
    state["tries"] = state.get("tries", 0) + 1
    if block.linear == 1 and state["tries"] < 3:
        raise OSError("connection reset")
    return block.linear


def test_retries_then_a_clear_failure_and_done_blocks_stay_done(tmp_path):
    records = RecordStore(str(tmp_path / "rec"))
    blocks = list(GRID.blocks())
    with pytest.raises(BlockFailedError, match=r"s failed on block \(0, 0, 1\) \(write ROI offset \(0, 0, 8\), "
                                               r"shape \(16, 16, 8\)\) after 2 tries: OSError: connection reset; "
                                               r"blocks already done stay done"):
        BlockRunner(records=records, retries=1).run("s", _flaky, blocks, lambda b: ({},))
    assert records.done("s") == {0}  # the failed block is not marked done
    state: dict = {}
    assert BlockRunner(records=records, retries=2).run("s", _flaky, blocks, lambda b: (state,)) == [0, 1, 2, 3]
    assert state["tries"] == 3 + 2  # block 1 three times, blocks 2 and 3 once; block 0 not again


def _slow(ctx, block):
    if block.linear == 2:
        time.sleep(5)
    return 0


def test_block_timeout(tmp_path):
    records = RecordStore(str(tmp_path / "rec"))
    t0 = time.perf_counter()
    with pytest.raises(BlockFailedError, match=r"block \(0, 0, 2\).*after 2 tries: BlockTimeoutError: did not finish "
                                               r"within the block timeout of 0.2s"):
        BlockRunner(records=records, retries=1, timeout=0.2).run("s", _slow, list(GRID.blocks()))
    assert time.perf_counter() - t0 < 3
    assert records.done("s") == {0, 1}


def _bad_input(ctx, block):
    raise InputError("the image has NaN values")


def test_bad_input_is_not_retried_and_keeps_its_class(tmp_path):
    with pytest.raises(InputError, match=r"s: block \(0, 0, 0\) .*NaN"):
        BlockRunner(records=RecordStore(str(tmp_path)), retries=3).run("s", _bad_input, list(GRID.blocks()))


def test_named_records(tmp_path):
    records = RecordStore(str(tmp_path))
    assert records.load("numbering") == (False, None)
    records.save("numbering", np.arange(3))
    found, value = records.load("numbering")
    assert found and value.tolist() == [0, 1, 2]
