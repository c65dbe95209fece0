"""Voxel-pair metrics from a :class:`Contingency`: foreground Dice, adapted Rand error, VI.

Conventions (see docs/evaluation.md), following 3DCellSeg's evaluation code
(itself from gala/CREMI):

* Adapted Rand error is the SNEMI3D definition: only voxels that are
  foreground in the ground truth count, and each of those that the
  prediction leaves unlabelled is a segment of its own (a missed nucleus
  lowers recall without being "merged" with the background). Rand pairs are
  ordered pairs of *distinct* voxels, ``n (n - 1)`` per segment of ``n``
  voxels (as skimage; the SNEMI3D/CREMI scripts count ``n**2`` with a
  per-voxel correction). This equals ``skimage.metrics.adapted_rand_error``
  once each unlabelled predicted voxel gets a label of its own.
* Variation of information counts voxels that are foreground in *both*
  (background of either side ignored, as gala's ``split_vi`` and 3DCellSeg),
  in bits; split = H(pred | gt), merge = H(gt | pred).
"""

from __future__ import annotations

import numpy as np

from bigseg.evaluate._contingency import Contingency

__all__ = ["adapted_rand_error", "foreground_dice", "variation_of_information"]


def foreground_dice(table: Contingency) -> float:
    """Dice of the binary foregrounds: ``2 |P ∩ G| / (|P| + |G|)`` (1.0 if both are empty)."""
    both = int(table.counts[(table.pred_ids != 0) & (table.gt_ids != 0)].sum())
    n_pred = int(table.pred_sizes[table.pred_labels != 0].sum())
    n_gt = int(table.gt_sizes[table.gt_labels != 0].sum())
    return 1.0 if n_pred + n_gt == 0 else 2.0 * both / (n_pred + n_gt)


def _marginals(pid: np.ndarray, gid: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pair: the size of its predicted and of its true segment, within the pairs given."""
    _, p_inv = np.unique(pid, return_inverse=True)
    _, g_inv = np.unique(gid, return_inverse=True)
    p_inv, g_inv = p_inv.reshape(-1), g_inv.reshape(-1)
    return np.bincount(p_inv, weights=n)[p_inv], np.bincount(g_inv, weights=n)[g_inv]


def _pairs(x: np.ndarray) -> float:
    return float(np.sum(x * (x - 1)))


def adapted_rand_error(table: Contingency) -> tuple[float, float, float]:
    """Adapted Rand error, precision and recall (SNEMI3D; Arganda-Carreras et al. 2015).

    Over ground-truth foreground voxels, unlabelled predicted voxels being
    singletons: with ``n_ij`` the voxels shared by predicted segment ``i``
    and true segment ``j``, ``a_i``/``b_j`` the segment sizes, and
    ``f(x) = x (x - 1)`` (ordered pairs of distinct voxels)::

        precision = Σ f(n_ij) / Σ f(a_i)      (pairs joined in pred that are right)
        recall    = Σ f(n_ij) / Σ f(b_j)      (pairs joined in gt that pred joins)
        ARE       = 1 - 2 Σ f(n_ij) / (Σ f(a_i) + Σ f(b_j))

    A ratio with no pairs to count is 1 (nothing joined, nothing wrong), so
    empty ground truth gives ARE 0, and an empty prediction ARE 1.

    Returns
    -------
    are, precision, recall : float
    """
    gt_pairs = _pairs(table.gt_sizes[table.gt_labels != 0].astype(np.float64))
    # Unlabelled predicted voxels are singletons: they join no pairs.
    joint = (table.gt_ids != 0) & (table.pred_ids != 0)
    n = table.counts[joint].astype(np.float64)
    _, p_inv = np.unique(table.pred_ids[joint], return_inverse=True)
    pred_pairs = _pairs(np.bincount(p_inv.reshape(-1), weights=n))
    both = _pairs(n)
    precision = both / pred_pairs if pred_pairs else 1.0
    recall = both / gt_pairs if gt_pairs else 1.0
    f_score = 2.0 * both / (pred_pairs + gt_pairs) if pred_pairs + gt_pairs else 1.0
    return 1.0 - f_score, precision, recall


def variation_of_information(table: Contingency) -> tuple[float, float]:
    """Variation of information split and merge, in bits (Meilă 2007; CREMI, 3DCellSeg).

    Over voxels that are foreground in both, ``N`` of them, with
    ``p_ij = n_ij / N``::

        split = H(pred | gt) = -Σ p_ij log2(n_ij / b_j)   (gt objects cut into pieces)
        merge = H(gt | pred) = -Σ p_ij log2(n_ij / a_i)   (pred objects spanning several)

    Both are 0 when no voxel is foreground in both.

    Returns
    -------
    split, merge : float
    """
    fg = (table.gt_ids != 0) & (table.pred_ids != 0)
    n = table.counts[fg].astype(np.float64)
    total = float(n.sum())
    if total == 0:
        return 0.0, 0.0
    a_of, b_of = _marginals(table.pred_ids[fg], table.gt_ids[fg], n)
    split = -float(np.sum(n * np.log2(n / b_of))) / total
    merge = -float(np.sum(n * np.log2(n / a_of))) / total
    # Rounding can leave -0.0 or -1e-17 for a perfect score; report 0.
    return (split if split > 0 else 0.0), (merge if merge > 0 else 0.0)
