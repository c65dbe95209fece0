"""``evaluate``: block-wise == in-memory, mask and border options, bad input, Dask."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from bigseg.errors import InputError
from bigseg.evaluate import contingency_block, evaluate, score
from bigseg.tiling import Roi


def _blobs(rng, shape=(20, 24, 28), n=25, max_size=7):
    """Random boxes of random labels (later boxes overwrite earlier ones)."""
    vol = np.zeros(shape, np.uint32)
    for label in rng.choice(10_000, size=n, replace=False) + 1:
        size = rng.integers(2, max_size, 3)
        lo = [rng.integers(0, s - d + 1) for s, d in zip(shape, size)]
        vol[tuple(slice(a, a + d) for a, d in zip(lo, size))] = label
    return vol


def _jitter(rng, labels):
    """A plausible prediction: shifted labels, one object dropped, a few renamed."""
    pred = np.roll(labels, shift=tuple(rng.integers(-1, 2, 3)), axis=(0, 1, 2)).astype(np.int64)
    ids = np.unique(labels[labels > 0])
    pred[pred == ids[0]] = 0
    pred[pred == ids[1]] = 99_999
    return pred


@pytest.mark.parametrize("block_shape", [5, (7, 24, 3), (20, 24, 28), (64, 64, 64)])
def test_blockwise_equals_in_memory(block_shape):
    rng = np.random.default_rng(3)
    gt = _blobs(rng)
    pred = _jitter(rng, _blobs(rng) if block_shape == 5 else gt)
    whole = score(contingency_block(pred, gt), ignore_border=True)
    got = evaluate(pred, gt, block_shape=block_shape, ignore_border=True)
    assert got.to_dict() == {**whole.to_dict(), "shape": list(gt.shape)}


def test_mask_equals_scoring_the_masked_box():
    rng = np.random.default_rng(4)
    gt = _blobs(rng)
    pred = _jitter(rng, gt)
    box = (slice(3, 15), slice(0, 24), slice(5, 20))
    mask = np.zeros(gt.shape, bool)
    mask[box] = True
    masked = evaluate(pred, gt, mask=mask, block_shape=8)
    cropped = evaluate(pred[box], gt[box], block_shape=8)
    assert masked.n_voxels == int(mask.sum())
    assert masked.matching == cropped.matching
    assert (masked.dice, masked.adapted_rand_error, masked.vi_split, masked.vi_merge) == pytest.approx(
        (cropped.dice, cropped.adapted_rand_error, cropped.vi_split, cropped.vi_merge), rel=1e-12
    )
    assert masked.masked and "inside the mask" in masked.to_table()


def test_ignore_border_blockwise():
    gt = np.zeros((10, 10, 10), np.uint16)
    pred = np.zeros_like(gt)
    gt[4:6, 4:6, 4:6] = 1
    pred[4:6, 4:6, 4:6] = 1  # inside: TP
    gt[8:10, 4:6, 4:6] = 2  # touches z = 9, missed: ignored
    pred[0:2, 0:2, 0:2] = 3  # touches the corner, unmatched: ignored
    pred[2, 7, 7] = 4  # inside, unmatched: FP
    s = evaluate(pred, gt, ignore_border=True, block_shape=3, thresholds=0.5).matching[0]
    assert (s.tp, s.fp, s.fn) == (1, 1, 0)
    s = evaluate(pred, gt, ignore_border=False, block_shape=3, thresholds=0.5).matching[0]
    assert (s.tp, s.fp, s.fn) == (1, 2, 1)


def test_distributed_equals_serial():
    distributed = pytest.importorskip("distributed")
    rng = np.random.default_rng(5)
    gt = _blobs(rng)
    pred = _jitter(rng, gt)
    mask = rng.random(gt.shape) < 0.9
    serial = evaluate(pred, gt, mask=mask, block_shape=6)
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    ) as cluster, distributed.Client(cluster) as client:
        parallel = evaluate(pred, gt, mask=mask, block_shape=6, client=client)
        fake = _FakeVolume(gt, (1.0, 0.5, 0.5))  # a non-ndarray source travels to the worker whole
        from_volume = evaluate(pred, fake, mask=mask, block_shape=6, client=client)
    assert parallel == serial
    assert from_volume.matching == serial.matching and from_volume.voxel_size == (1.0, 0.5, 0.5)


@dataclass(frozen=True)
class _FakeVolume:
    """Just the Volume contract evaluate() relies on: shape, dtype, voxel_size, read(roi)."""

    data: np.ndarray
    voxel_size: tuple[float, float, float] | None

    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    def read(self, roi: Roi) -> np.ndarray:
        return self.data[roi.to_slices()]


def test_voxel_size_mismatch_and_override():
    labels = np.zeros((4, 4, 4), np.uint8)
    a = _FakeVolume(labels, (2.0, 0.5, 0.5))
    b = _FakeVolume(labels, (1.0, 0.5, 0.5))
    with pytest.raises(
        InputError, match=r"`pred` voxel size \(2.0, 0.5, 0.5\) µm differs from `gt` voxel size \(1.0, 0.5, 0.5\).*voxel_size="
    ):
        evaluate(a, b)
    assert evaluate(a, b, voxel_size=(1.0, 0.5, 0.5)).voxel_size == (1.0, 0.5, 0.5)
    assert evaluate(a, labels).voxel_size == (2.0, 0.5, 0.5)  # one side without metadata: nothing to compare
    with pytest.raises(InputError, match="`mask` voxel size"):
        evaluate(labels, b, mask=a)


def test_bad_input_is_refused():
    labels = np.zeros((4, 4, 4), np.uint8)
    with pytest.raises(InputError, match=r"`pred` \(shape \(4, 4, 5\)\) must have the same shape as `gt` \(shape \(4, 4, 4\)\)"):
        evaluate(np.zeros((4, 4, 5), np.uint8), labels)
    with pytest.raises(InputError, match=r"`gt` must hold integer labels, got dtype float64.*astype"):
        evaluate(labels, labels.astype(float))
    with pytest.raises(InputError, match="`pred` must hold labels >= 0"):
        evaluate(labels.astype(np.int8) - 1, labels)
    with pytest.raises(InputError, match=r"`mask` \(shape \(4, 4\)\)"):
        evaluate(labels, labels, mask=labels[0])
    with pytest.raises(InputError, match="`block_shape` must have 3 values"):
        evaluate(labels, labels, block_shape=(2, 2))
    with pytest.raises(InputError, match="`pred` must be a label array.*got list"):
        evaluate([[1]], labels)
