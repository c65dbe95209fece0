"""One-to-one matching of predicted and ground-truth objects by IoU.

Only pairs that share voxels can match, so the IoU "matrix" is the list of
foreground pairs in the :class:`Contingency`. At a threshold ``t`` a pair is a
candidate when ``IoU >= t`` (StarDist's rule). Candidates form a bipartite
graph; a candidate whose two objects have no other candidate is matched
outright (always the case for ``t > 0.5``, where each object has at most one
partner), and each remaining connected component is solved with
:func:`scipy.optimize.linear_sum_assignment` on a dense matrix over that
component's objects only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components

from bigseg.evaluate._contingency import Contingency

__all__ = ["ObjectPairs", "match"]


@dataclass(frozen=True, slots=True)
class ObjectPairs:
    """Foreground objects of a table and the IoU of every overlapping pair.

    Attributes
    ----------
    gt_labels, pred_labels : (G,), (P,) ndarray of uint64
        Nonzero labels present in the scored region.
    gt_sizes, pred_sizes : (G,), (P,) ndarray of int64
        Their voxel counts.
    gt_index, pred_index : (K,) ndarray of int64
        Each overlapping pair as indices into ``gt_labels`` / ``pred_labels``.
    intersection : (K,) ndarray of int64
        Shared voxels.
    iou : (K,) ndarray of float64
        ``intersection / (gt size + pred size - intersection)``, in (0, 1].
    gt_border, pred_border : (G,), (P,) ndarray of bool
        Whether each object touches the volume's outer faces.
    """

    gt_labels: np.ndarray
    pred_labels: np.ndarray
    gt_sizes: np.ndarray
    pred_sizes: np.ndarray
    gt_index: np.ndarray
    pred_index: np.ndarray
    intersection: np.ndarray
    iou: np.ndarray
    gt_border: np.ndarray
    pred_border: np.ndarray

    @classmethod
    def from_table(cls, table: Contingency) -> ObjectPairs:
        gk, pk = table.gt_labels != 0, table.pred_labels != 0
        g_lab, g_size = table.gt_labels[gk], table.gt_sizes[gk]
        p_lab, p_size = table.pred_labels[pk], table.pred_sizes[pk]
        fg = (table.gt_ids != 0) & (table.pred_ids != 0)
        gi = np.searchsorted(g_lab, table.gt_ids[fg]).astype(np.int64)
        pi = np.searchsorted(p_lab, table.pred_ids[fg]).astype(np.int64)
        inter = table.counts[fg]
        iou = inter / (g_size[gi] + p_size[pi] - inter).astype(np.float64)
        return cls(
            g_lab, p_lab, g_size, p_size, gi, pi, inter, iou,
            np.isin(g_lab, table.gt_border), np.isin(p_lab, table.pred_border),
        )


def match(
    gt_index: np.ndarray,
    pred_index: np.ndarray,
    iou: np.ndarray,
    *,
    threshold: float,
    objective: Literal["count", "iou"] = "count",
) -> np.ndarray:
    """Optimal one-to-one matching among pairs with ``iou >= threshold``.

    Parameters
    ----------
    gt_index, pred_index : (K,) ndarray of int
        Candidate pairs (object indices); each pair listed once.
    iou : (K,) ndarray of float
        IoU of each pair.
    threshold : float
        Pairs below it never match.
    objective : {"count", "iou"}
        ``"count"``: as many matches as possible, ties broken by the larger
        sum of IoU (StarDist). ``"iou"``: the largest sum of IoU.

    Returns
    -------
    (M,) ndarray of int64
        Positions (into the K pairs) of the matched pairs.
    """
    cand = np.flatnonzero(iou >= threshold)
    if cand.size == 0:
        return cand.astype(np.int64)
    gi, pi = gt_index[cand], pred_index[cand]
    _, g_inv, g_deg = np.unique(gi, return_inverse=True, return_counts=True)
    _, p_inv, p_deg = np.unique(pi, return_inverse=True, return_counts=True)
    alone = (g_deg[g_inv.reshape(-1)] == 1) & (p_deg[p_inv.reshape(-1)] == 1)
    matched = [cand[alone]]
    rest = cand[~alone]
    if rest.size:
        matched.append(_match_components(gt_index[rest], pred_index[rest], iou[rest], objective, rest))
    return np.sort(np.concatenate(matched)).astype(np.int64)


def _match_components(
    gi: np.ndarray, pi: np.ndarray, iou: np.ndarray, objective: str, positions: np.ndarray
) -> np.ndarray:
    """Solve each connected component of the candidate graph with a dense assignment."""
    g_nodes, g_loc = np.unique(gi, return_inverse=True)
    p_nodes, p_loc = np.unique(pi, return_inverse=True)
    g_loc, p_loc = g_loc.reshape(-1), p_loc.reshape(-1)
    n_g, n_p = len(g_nodes), len(p_nodes)
    graph = coo_array((np.ones(len(gi)), (g_loc, n_g + p_loc)), shape=(n_g + n_p, n_g + n_p))
    _, comp = connected_components(graph, directed=False)
    edge_comp = comp[g_loc]
    order = np.argsort(edge_comp, kind="stable")
    bounds = np.flatnonzero(np.diff(edge_comp[order])) + 1
    out = []
    for edges in np.split(order, bounds):
        out.append(positions[edges[_assign(g_loc[edges], p_loc[edges], iou[edges], objective)]])
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def _assign(g: np.ndarray, p: np.ndarray, iou: np.ndarray, objective: str) -> np.ndarray:
    """Matched edges (indices into ``g``/``p``) of one component."""
    rows, r = np.unique(g, return_inverse=True)
    cols, c = np.unique(p, return_inverse=True)
    r, c = r.reshape(-1), c.reshape(-1)
    if objective == "count":
        # Each match is worth 1; the IoU term sums to <= 1/2 over all matches, so it
        # only breaks ties between matchings of equal size.
        weight = 1.0 + iou / (2 * min(len(rows), len(cols)))
    else:
        weight = iou
    dense = np.zeros((len(rows), len(cols)))
    dense[r, c] = weight
    edge_of = np.full((len(rows), len(cols)), -1, dtype=np.int64)
    edge_of[r, c] = np.arange(len(g))
    ri, ci = linear_sum_assignment(dense, maximize=True)
    chosen = edge_of[ri, ci]
    return chosen[chosen >= 0]
