"""Voxel-pair metrics from a :class:`Contingency`: foreground Dice, adapted Rand error, VI.

Conventions (see docs/evaluation.md):

* Adapted Rand error and variation of information are computed over the
  voxels that are *foreground in the ground truth*; background in the
  prediction inside them counts as one more segment (so a missed nucleus is a
  merge with the background). This is the SNEMI3D/CREMI convention and equals
  ``skimage.metrics.adapted_rand_error(gt, pred)`` and
  ``skimage.metrics.variation_of_information(gt, pred, ignore_labels=(0,))``.
* Rand pairs are ordered pairs of *distinct* voxels, ``n (n - 1)`` per segment
  of ``n`` voxels (as skimage; CREMI's script counts ``n**2``).
* VI is in bits (log base 2); split = H(pred | gt), merge = H(gt | pred).
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


def _gt_foreground(table: Contingency) -> tuple[np.ndarray, ...]:
    """Pair counts restricted to ground-truth foreground, and the marginals.

    Returns ``n`` (K,), segment sizes ``a`` (pred) and ``b`` (gt) within the
    restriction, and ``a_of``/``b_of`` (K,): the sizes of each pair's segments.
    """
    fg = table.gt_ids != 0
    n = table.counts[fg].astype(np.float64)
    _, p_inv = np.unique(table.pred_ids[fg], return_inverse=True)
    _, g_inv = np.unique(table.gt_ids[fg], return_inverse=True)
    p_inv, g_inv = p_inv.reshape(-1), g_inv.reshape(-1)
    a = np.bincount(p_inv, weights=n)
    b = np.bincount(g_inv, weights=n)
    return n, a, b, a[p_inv], b[g_inv]


def adapted_rand_error(table: Contingency) -> tuple[float, float, float]:
    """Adapted Rand error, precision and recall (SNEMI3D; Arganda-Carreras et al. 2015).

    Over ground-truth foreground voxels: with ``n_ij`` the voxels shared by
    predicted segment ``i`` and true segment ``j``, ``a_i``/``b_j`` the
    segment sizes, and ``f(x) = x (x - 1)``::

        precision = Σ f(n_ij) / Σ f(a_i)      (pairs joined in pred that are right)
        recall    = Σ f(n_ij) / Σ f(b_j)      (pairs joined in gt that pred joins)
        ARE       = 1 - 2 Σ f(n_ij) / (Σ f(a_i) + Σ f(b_j))

    A ratio with no pairs to count is 1 (nothing joined, nothing wrong), so
    empty ground truth gives ARE 0. Note: skimage 0.26 returns precision and
    recall swapped (scikit-image issue 6485); the error is the same.

    Returns
    -------
    are, precision, recall : float
    """
    n, a, b, _, _ = _gt_foreground(table)
    both = float(np.sum(n * (n - 1)))
    pred_pairs = float(np.sum(a * (a - 1)))
    gt_pairs = float(np.sum(b * (b - 1)))
    precision = both / pred_pairs if pred_pairs else 1.0
    recall = both / gt_pairs if gt_pairs else 1.0
    f_score = 2.0 * both / (pred_pairs + gt_pairs) if pred_pairs + gt_pairs else 1.0
    return 1.0 - f_score, precision, recall


def variation_of_information(table: Contingency) -> tuple[float, float]:
    """Variation of information split and merge, in bits (Meilă 2007; CREMI).

    Over ground-truth foreground voxels, with ``p_ij = n_ij / N``::

        split = H(pred | gt) = -Σ p_ij log2(n_ij / b_j)   (gt objects cut into pieces)
        merge = H(gt | pred) = -Σ p_ij log2(n_ij / a_i)   (pred objects spanning several)

    Both are 0 when there is no ground-truth foreground.

    Returns
    -------
    split, merge : float
    """
    n, _, _, p_of, g_of = _gt_foreground(table)
    total = float(n.sum())
    if total == 0:
        return 0.0, 0.0
    split = -float(np.sum(n * np.log2(n / g_of))) / total
    merge = -float(np.sum(n * np.log2(n / p_of))) / total
    # -0.0 and rounding noise below zero read badly in a report.
    return max(split, 0.0), max(merge, 0.0)
