from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bigseg.errors import InputError
from bigseg.stitch import provisional_ids, split_provisional


def test_background_stays_zero_and_block_goes_high() -> None:
    ids = provisional_ids(np.array([[0, 1], [5, 0]], np.uint32), 3)
    assert ids.dtype == np.uint64
    np.testing.assert_array_equal(ids, [[0, (3 << 32) | 1], [(3 << 32) | 5, 0]])


@given(st.integers(0, 2**32 - 1), st.lists(st.integers(1, 2**32 - 1), min_size=1, max_size=20))
def test_split_inverts_provisional(block: int, locals_: list[int]) -> None:
    blk, loc = split_provisional(provisional_ids(np.array(locals_, np.uint32), block))
    assert blk.dtype == np.int64 and loc.dtype == np.uint32
    assert blk.tolist() == [block] * len(locals_)
    assert loc.tolist() == locals_


@pytest.mark.parametrize("block", [-1, 2**32])
def test_block_out_of_range_raises(block: int) -> None:
    with pytest.raises(InputError, match=r"`block_linear` must be in 0\.\.4294967295 .* got"):
        provisional_ids(np.ones(3, np.uint32), block)


def test_local_too_large_raises() -> None:
    with pytest.raises(InputError, match=r"must be in 0\.\.4294967295 to fit the low 32 bits"):
        provisional_ids(np.array([2**32], np.uint64), 0)
    with pytest.raises(InputError, match="integer dtype"):
        provisional_ids(np.ones(3, np.float32), 0)
