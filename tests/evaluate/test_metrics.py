"""Metrics from a contingency table: hand-computed cases, skimage, a dense matching oracle."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from skimage.metrics import adapted_rand_error as sk_are
from skimage.metrics import variation_of_information as sk_vi

from bigseg.errors import InputError
from bigseg.evaluate import contingency_block, match_instances, parse_thresholds, score

THRESHOLDS = (0.1, 0.5, 0.6, 0.7, 0.9)
TOL = 1e-12  # absolute, for closed-form values computed in float64


def _score(pred, gt, **kw):
    return score(contingency_block(pred, gt), thresholds=kw.pop("thresholds", THRESHOLDS), **kw)


def _vol():
    return np.zeros((8, 8, 8), np.uint16)


def _cube(vol, label, z, y, x, size=(4, 4, 4)):
    vol[z:z + size[0], y:y + size[1], x:x + size[2]] = label
    return vol


def test_perfect_match_up_to_renaming():
    gt = _cube(_cube(_vol(), 1, 0, 0, 0, (2, 2, 2)), 7, 3, 3, 3)
    pred = np.where(gt > 0, gt * 10 + 3, 0).astype(np.uint32)
    r = _score(pred, gt)
    for s in r.matching:
        assert (s.tp, s.fp, s.fn) == (2, 0, 0)
        assert s.precision == s.recall == s.f1 == s.ap == s.mean_iou == s.pq == 1.0
    assert r.dice == 1.0 and r.adapted_rand_error == 0.0
    assert r.vi_split == 0.0 and r.vi_merge == 0.0
    assert r.mean_gt_iou == r.mean_gt_dice == 1.0
    assert (r.n_gt, r.n_pred, r.n_voxels) == (2, 2, 512)


def test_empty_prediction():
    # two 2x2x2 ground-truth cubes (8 voxels each), nothing predicted
    gt = _cube(_cube(_vol(), 1, 0, 0, 0, (2, 2, 2)), 2, 4, 4, 4, (2, 2, 2))
    r = _score(np.zeros_like(gt), gt)
    for s in r.matching:
        assert (s.tp, s.fp, s.fn) == (0, 0, 2)
        assert s.precision == s.recall == s.f1 == s.ap == s.mean_iou == s.pq == 0.0
    assert r.dice == 0.0
    # unlabelled voxels are singletons: no predicted pairs (precision 1 by convention),
    # none of the 2*8*7 true pairs recovered (recall 0)  ->  ARE 1
    assert (r.adapted_rand_error, r.rand_precision, r.rand_recall) == (1.0, 1.0, 0.0)
    assert (r.vi_split, r.vi_merge) == (0.0, 0.0)  # no voxel is foreground in both
    assert r.mean_gt_iou == r.mean_gt_dice == 0.0


def test_empty_ground_truth():
    pred = _cube(_cube(_vol(), 1, 0, 0, 0, (2, 2, 2)), 2, 4, 4, 4, (2, 2, 2))
    r = _score(pred, np.zeros_like(pred))
    for s in r.matching:
        assert (s.tp, s.fp, s.fn) == (0, 2, 0)
        assert s.precision == s.recall == s.f1 == s.ap == s.pq == 0.0
    assert r.dice == 0.0
    # ARE and VI only look at gt foreground: nothing to score, defined as perfect
    assert (r.adapted_rand_error, r.rand_precision, r.rand_recall) == (0.0, 1.0, 1.0)
    assert (r.vi_split, r.vi_merge) == (0.0, 0.0)
    assert r.mean_gt_iou == 0.0


def test_both_empty_is_perfect():
    z = _vol()
    r = _score(z, z)
    for s in r.matching:
        assert (s.tp, s.fp, s.fn) == (0, 0, 0)
        assert s.precision == s.recall == s.f1 == s.ap == s.mean_iou == s.pq == 1.0
    assert (r.dice, r.adapted_rand_error, r.vi_split, r.vi_merge) == (1.0, 0.0, 0.0, 0.0)
    assert r.mean_gt_iou == r.mean_gt_dice == 1.0


def test_one_object_split_in_two():
    # gt: one 4x4x4 cube (64 voxels); pred: its two 2x4x4 halves -> IoU 32/64 = 0.5 each
    gt = _cube(_vol(), 1, 2, 2, 2)
    pred = _cube(_cube(_vol(), 1, 2, 2, 2, (2, 4, 4)), 2, 4, 2, 2, (2, 4, 4))
    r = _score(pred, gt)
    for t in (0.1, 0.5):  # IoU >= t: only one half can match (one-to-one)
        s = r.at(t)
        assert (s.tp, s.fp, s.fn) == (1, 1, 0)
        assert (s.precision, s.recall) == (0.5, 1.0)
        assert s.f1 == pytest.approx(2 / 3, abs=TOL) and s.ap == 0.5
        assert s.mean_iou == 0.5 and s.pq == pytest.approx(1 / 3, abs=TOL)
    assert (r.at(0.6).tp, r.at(0.6).fp, r.at(0.6).fn) == (0, 2, 1)
    assert r.dice == 1.0
    # joined pairs: both 2*32*31 = 1984 = pred; gt 64*63 = 4032
    assert r.rand_precision == 1.0 and r.rand_recall == pytest.approx(1984 / 4032, abs=TOL)
    assert r.adapted_rand_error == pytest.approx(1 - 2 * 1984 / (1984 + 4032), abs=TOL)
    assert r.vi_split == pytest.approx(1.0, abs=TOL) and r.vi_merge == pytest.approx(0.0, abs=TOL)
    assert r.mean_gt_iou == 0.5 and r.mean_gt_dice == pytest.approx(2 / 3, abs=TOL)


def test_two_objects_merged_into_one():
    gt = _cube(_cube(_vol(), 1, 2, 2, 2, (2, 4, 4)), 2, 4, 2, 2, (2, 4, 4))
    pred = _cube(_vol(), 9, 2, 2, 2)
    r = _score(pred, gt)
    s = r.at(0.5)
    assert (s.tp, s.fp, s.fn) == (1, 0, 1)
    assert (s.precision, s.recall, s.ap) == (1.0, 0.5, 0.5)
    assert s.pq == pytest.approx(1 / 3, abs=TOL)
    assert r.rand_recall == 1.0 and r.rand_precision == pytest.approx(1984 / 4032, abs=TOL)
    assert r.adapted_rand_error == pytest.approx(1 - 2 * 1984 / (1984 + 4032), abs=TOL)
    assert r.vi_split == pytest.approx(0.0, abs=TOL) and r.vi_merge == pytest.approx(1.0, abs=TOL)
    # JI: one gt matched at 0.5, the other unmatched (0)
    assert r.mean_gt_iou == 0.25 and r.mean_gt_dice == pytest.approx(1 / 3, abs=TOL)


def test_shifted_object_iou_around_thresholds():
    # 4x4x4 cube shifted by one voxel in x: overlap 48, union 80, IoU 0.6 exactly
    gt = _cube(_vol(), 1, 2, 2, 1)
    pred = _cube(_vol(), 1, 2, 2, 2)
    r = _score(pred, gt, thresholds=(0.59, 0.6, 0.61))
    assert [(s.tp, s.fp, s.fn) for s in r.matching] == [(1, 0, 0), (1, 0, 0), (0, 1, 1)]
    assert r.at(0.6).mean_iou == pytest.approx(0.6, abs=TOL) and r.at(0.6).pq == pytest.approx(0.6, abs=TOL)
    assert r.dice == pytest.approx(2 * 48 / 128, abs=TOL)


def _ignore_border_case():
    gt, pred = _vol(), _vol()
    _cube(gt, 1, 2, 2, 2, (2, 2, 2)); _cube(pred, 11, 2, 2, 2, (2, 2, 2))  # inside, matched: TP
    _cube(gt, 2, 0, 5, 5, (2, 2, 2)); _cube(pred, 12, 0, 5, 5, (2, 2, 2))  # both on z=0: ignored pair
    _cube(gt, 3, 5, 0, 0, (2, 2, 2))  # gt on y=0 and x=0, missed: ignored, not FN
    _cube(pred, 14, 6, 6, 6, (2, 2, 2))  # pred on faces, unmatched: ignored, not FP
    _cube(pred, 15, 3, 5, 1, (1, 1, 1))  # pred inside, unmatched: FP
    _cube(gt, 6, 5, 3, 6, (2, 1, 1)); _cube(pred, 16, 5, 3, 6, (2, 1, 2))  # gt inside, pred reaches x=7: TP
    return pred, gt


def test_ignore_border():
    pred, gt = _ignore_border_case()
    plain = match_instances(contingency_block(pred, gt), 0.5)[0]
    assert (plain.tp, plain.fp, plain.fn) == (3, 2, 1)
    s = match_instances(contingency_block(pred, gt), 0.5, ignore_border=True)[0]
    assert (s.tp, s.fp, s.fn) == (2, 1, 0)
    assert s.mean_iou == pytest.approx((1 + 2 / 4) / 2, abs=TOL)


def _singletons(pred, gt):
    """``pred`` with every unlabelled voxel inside ground-truth foreground given its own label."""
    out = pred.astype(np.int64)
    holes = (out == 0) & (gt != 0)
    out[holes] = out.max() + 1 + np.arange(np.count_nonzero(holes))
    return out


def test_skimage_equality_on_random_volumes():
    rng = np.random.default_rng(42)
    for trial in range(6):
        shape = (7, 9, 11)
        gt = rng.integers(0, 3 + trial, shape).astype(np.uint16)
        pred = rng.integers(0, 2 + 2 * trial, shape).astype(np.int32)
        r = _score(pred, gt)
        are, sk_p, sk_r = sk_are(gt, _singletons(pred, gt))
        assert r.adapted_rand_error == pytest.approx(are, rel=1e-12)
        # skimage 0.26 returns precision and recall swapped (scikit-image issue 6485)
        assert (r.rand_precision, r.rand_recall) == pytest.approx((sk_r, sk_p), rel=1e-12)
        both = (gt != 0) & (pred != 0)
        split, merge = sk_vi(gt[both], pred[both])
        assert (r.vi_split, r.vi_merge) == pytest.approx((split, merge), rel=1e-12, abs=1e-12)


def test_skimage_equality_without_unlabelled_foreground():
    # where the prediction labels every ground-truth voxel, skimage's defaults apply as they are
    rng = np.random.default_rng(43)
    gt = rng.integers(0, 4, (6, 7, 8)).astype(np.uint8)
    pred = rng.integers(1, 5, (6, 7, 8)).astype(np.uint8)
    r = _score(pred, gt)
    assert r.adapted_rand_error == pytest.approx(sk_are(gt, pred)[0], rel=1e-12)


def _dense_reference(pred, gt, threshold):
    """TP and matched-IoU sum from a dense IoU matrix over all labels (StarDist-style cost)."""
    g_ids, p_ids = np.unique(gt[gt > 0]), np.unique(pred[pred > 0])
    if not len(g_ids) or not len(p_ids):
        return 0, 0.0
    iou = np.array([[np.sum((gt == g) & (pred == p)) / np.sum((gt == g) | (pred == p)) for p in p_ids] for g in g_ids])
    ok = iou >= threshold
    n = min(iou.shape)
    rows, cols = linear_sum_assignment(np.where(ok, 1 + iou / (2 * n), 0.0), maximize=True)
    hit = ok[rows, cols]
    return int(hit.sum()), float(iou[rows, cols][hit].sum())


def test_matching_equals_dense_assignment():
    rng = np.random.default_rng(7)
    for _ in range(8):
        gt = rng.integers(0, 6, (4, 5, 6))
        pred = rng.integers(0, 8, (4, 5, 6))
        gt, pred = np.repeat(gt, 2, axis=2), np.repeat(pred, 2, axis=2)  # blobs: IoUs spread over (0, 1]
        for s in match_instances(contingency_block(pred, gt), (0.05, 0.1, 0.2, 0.3, 0.5)):
            tp, iou_sum = _dense_reference(pred, gt, s.threshold)
            assert s.tp == tp
            assert s.mean_iou * s.tp == pytest.approx(iou_sum, abs=1e-9)


def test_result_to_dict_is_json_and_table_lists_thresholds():
    gt = _cube(_vol(), 1, 2, 2, 1)
    r = _score(_cube(_vol(), 1, 2, 2, 2), gt)
    d = json.loads(json.dumps(r.to_dict()))
    assert [m["threshold"] for m in d["matching"]] == list(THRESHOLDS)
    assert d["dice"] == r.dice and d["shape"] == []
    table = r.to_table()
    assert table.splitlines()[0].split() == ["IoU", "TP", "FP", "FN", "prec", "recall", "F1", "AP", "meanIoU", "PQ"]
    assert " 0.60       1       0       0  1.000  1.000  1.000  1.000   0.600  0.600" in table
    assert "VI split / merge (bits)" in table


def test_thresholds_are_validated():
    assert parse_thresholds([0.5, 0.1, 0.5]) == (0.1, 0.5)
    with pytest.raises(InputError, match=r"IoU values in \(0, 1\], got \[0.0, 0.5\]"):
        parse_thresholds([0.0, 0.5])
    with pytest.raises(InputError, match="got 'high'"):
        parse_thresholds("high")
