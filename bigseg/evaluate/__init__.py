"""Scores of predicted instance labels against ground truth, at any scale.

A sparse :class:`Contingency` table (voxels shared by each predicted and
ground-truth label) is computed per block and summed; every metric follows
from the table: instance matching at IoU thresholds (TP, FP, FN, precision,
recall, F1, AP, mean IoU, PQ), foreground Dice, adapted Rand error, variation
of information. Definitions and sources: docs/evaluation.md.
"""

from bigseg.evaluate._contingency import Contingency, contingency_block
from bigseg.evaluate._evaluate import evaluate
from bigseg.evaluate._result import (
    DEFAULT_THRESHOLDS,
    EvaluationResult,
    MatchingScores,
    match_instances,
    parse_thresholds,
    score,
)
from bigseg.evaluate._voxel import adapted_rand_error, foreground_dice, variation_of_information

__all__ = [
    "DEFAULT_THRESHOLDS",
    "Contingency",
    "EvaluationResult",
    "MatchingScores",
    "adapted_rand_error",
    "contingency_block",
    "evaluate",
    "foreground_dice",
    "match_instances",
    "parse_thresholds",
    "score",
    "variation_of_information",
]
