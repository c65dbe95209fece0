"""number_objects / Numbering: final IDs against a brute-force union-find oracle."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bigseg.errors import InputError
from bigseg.stitch import Numbering, number_objects, provisional_ids


def pid(block: int, local: int) -> int:
    return (block << 32) | local


def oracle(counts: list[int], pairs: list[tuple[int, int]]) -> dict[int, int]:
    """Final ID of every provisional ID, by a plain dict union-find over all IDs."""
    parent = {pid(b, l): pid(b, l) for b, c in enumerate(counts) for l in range(1, c + 1)}

    def find(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    for p, q in pairs:
        rp, rq = find(p), find(q)
        parent[max(rp, rq)] = min(rp, rq)  # root = smallest ID
    roots = sorted({find(x) for x in parent})
    final = {r: i + 1 for i, r in enumerate(roots)}
    return {x: final[find(x)] for x in parent}


def test_docstring_example() -> None:
    # block 0: 4 labels, block 1: 3 labels; (0,3) ~ (1,1).
    num = number_objects(np.array([4, 3]), np.array([[pid(0, 3), pid(1, 1)]], np.uint64))
    assert num.n_objects == 6
    assert num.offsets.tolist() == [0, 4, 6]
    assert num.to_final(provisional_ids(np.arange(5, dtype=np.uint32), 0)).tolist() == [0, 1, 2, 3, 4]
    assert num.to_final(provisional_ids(np.arange(4, dtype=np.uint32), 1)).tolist() == [0, 3, 5, 6]
    assert [num.owned_count(b) for b in (0, 1)] == [4, 2]


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_property_matches_oracle(data: st.DataObject) -> None:
    counts = data.draw(st.lists(st.integers(0, 6), min_size=1, max_size=6))
    ids = [pid(b, l) for b, c in enumerate(counts) for l in range(1, c + 1)]
    pairs = data.draw(st.lists(st.tuples(st.sampled_from(ids), st.sampled_from(ids)), max_size=12)) if ids else []
    num = number_objects(np.array(counts), np.array(pairs, np.uint64).reshape(-1, 2))
    want = oracle(counts, pairs)
    got = num.to_final(np.array(list(want), np.uint64)) if want else np.zeros(0, np.uint32)
    assert got.tolist() == list(want.values())
    assert num.n_objects == len(set(want.values()))
    for b, c in enumerate(counts):  # per-block fast path and subset agree with to_final
        lut = num.subset([b]).block_lut(b)
        assert lut.tolist() == [0] + [want[pid(b, l)] for l in range(1, c + 1)]


def test_subset_holds_only_its_blocks() -> None:
    counts = np.array([3, 2, 4])
    pairs = np.array([[pid(0, 1), pid(1, 2)], [pid(1, 2), pid(2, 4)], [pid(0, 3), pid(2, 1)]], np.uint64)
    num = number_objects(counts, pairs)
    sub = num.subset([2])
    assert sub.blocks.tolist() == [2]
    assert sub.nonroot_locals.tolist() == [1, 4]  # only block 2's non-roots travel
    np.testing.assert_array_equal(sub.offsets, num.offsets)
    ids = provisional_ids(np.arange(5, dtype=np.uint32), 2)
    np.testing.assert_array_equal(sub.to_final(ids), num.to_final(ids))
    with pytest.raises(InputError, match=r"block\(s\) \[0\] are not in this numbering subset"):
        sub.to_final(np.array([pid(0, 1)], np.uint64))
    with pytest.raises(InputError, match=r"not in this numbering subset"):
        sub.block_lut(1)
    with pytest.raises(InputError, match=r"block 5 is outside 0\.\.2"):
        num.subset([5])


def test_to_final_keeps_shape_and_rejects_unknown_local() -> None:
    num = number_objects(np.array([2, 2]), np.zeros((0, 2), np.uint64))
    ids = np.array([[[0, pid(1, 2)], [pid(0, 1), pid(1, 1)]]], np.uint64)
    assert num.to_final(ids).tolist() == [[[0, 4], [1, 3]]]
    assert num.to_final(np.zeros((0, 3), np.uint64)).shape == (0, 3)
    with pytest.raises(InputError, match=r"\(block 1, local 3\) is above that block's count 2"):
        num.to_final(np.array([pid(1, 3)], np.uint64))
    with pytest.raises(InputError, match=r"local label 3 is above block 0's count 2"):
        num.relabel_block(np.array([3], np.uint32), 0)


def test_invalid_pairs_and_counts_raise() -> None:
    with pytest.raises(InputError, match=r"\(block 1, local 5\) is background or outside `counts`"):
        number_objects(np.array([2, 2]), np.array([[pid(0, 1), pid(1, 5)]], np.uint64))
    with pytest.raises(InputError, match=r"\(block 0, local 0\) is background"):
        number_objects(np.array([2, 2]), np.array([[0, pid(1, 1)]], np.uint64))
    with pytest.raises(InputError, match=r"`counts` must be in 0\.\.4294967295, got range -1\.\.2"):
        number_objects(np.array([-1, 2]), np.zeros((0, 2), np.uint64))
    with pytest.raises(InputError, match=r"`pairs` must be an \(E, 2\) array"):
        number_objects(np.array([2]), np.array([pid(0, 1)], np.uint64))


def test_duplicate_and_self_pairs_are_harmless() -> None:
    pairs = np.array([[pid(0, 1), pid(1, 1)]] * 3 + [[pid(1, 2), pid(1, 2)]], np.uint64)
    num = number_objects(np.array([1, 2]), pairs)
    assert num.n_objects == 2
    assert num.to_final(np.array([pid(0, 1), pid(1, 1), pid(1, 2)], np.uint64)).tolist() == [1, 1, 2]


def test_pickles_and_is_read_only() -> None:
    num = number_objects(np.array([3, 3]), np.array([[pid(0, 2), pid(1, 3)]], np.uint64)).subset([1])
    back = pickle.loads(pickle.dumps(num))
    assert isinstance(back, Numbering)
    np.testing.assert_array_equal(back.block_lut(1), num.block_lut(1))
    with pytest.raises(ValueError, match="read-only"):
        num.offsets[0] = 5
