"""Training losses on logits.

BCD head (NucMM): BCE on foreground, class-balanced BCE on contour, MSE on
``tanh(logit)`` against the signed distance. Semantic head: MONAI's Dice,
Dice-CE, generalised Dice or Tversky on the foreground, or the 3DCellSeg loss
(BCE + Dice, with a heavier weight near contours, after Wang et al. 2022).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F

from bigseg.errors import InputError

__all__ = ["LOSSES", "LossName", "make_loss"]

LossName = Literal["bcd", "dice", "dice_ce", "generalized_dice", "tversky", "cellseg3d"]
LOSSES: dict[str, str] = {
    "bcd": "bcd",
    "dice": "semantic",
    "dice_ce": "semantic",
    "generalized_dice": "semantic",
    "tversky": "semantic",
    "cellseg3d": "semantic",
}

LossFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, dict[str, float]]]


def _bcd_loss(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """``logits``, ``target``: (N, 3, Z, Y, X); target channels fg, contour, distance."""
    fg = F.binary_cross_entropy_with_logits(logits[:, 0], target[:, 0])
    p = target[:, 1].mean().clamp(1e-3, 1.0)
    # Contours are a thin minority class: balance them (NucMM uses weighted BCE).
    pos_weight = ((1 - p) / p).clamp(1.0, 5.0)
    ct = F.binary_cross_entropy_with_logits(logits[:, 1], target[:, 1], pos_weight=pos_weight)
    dist = F.mse_loss(torch.tanh(logits[:, 2]), target[:, 2])
    total = fg + ct + dist
    return total, {"loss_foreground": float(fg.detach()), "loss_contour": float(ct.detach()), "loss_distance": float(dist.detach())}


def _monai(name: str) -> LossFn:
    from monai.losses import DiceCELoss, DiceLoss, GeneralizedDiceLoss, TverskyLoss

    fn = {
        "dice": lambda: DiceLoss(sigmoid=True),
        "dice_ce": lambda: DiceCELoss(sigmoid=True),
        "generalized_dice": lambda: GeneralizedDiceLoss(sigmoid=True),
        "tversky": lambda: TverskyLoss(sigmoid=True, alpha=0.3, beta=0.7),
    }[name]()

    def loss(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        value = fn(logits[:, :1], target[:, :1])
        return value, {f"loss_{name}": float(value.detach())}

    return loss


def _cellseg3d_loss(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """3DCellSeg-style loss: contour-weighted BCE + soft Dice on the foreground."""
    fg_t = target[:, :1]
    weight = 1.0 + 4.0 * target[:, 1:2]  # contours weigh 5x: touching nuclei are the hard part
    bce = F.binary_cross_entropy_with_logits(logits[:, :1], fg_t, weight=weight)
    prob = torch.sigmoid(logits[:, :1])
    inter = (prob * fg_t).sum()
    dice = 1 - (2 * inter + 1) / (prob.sum() + fg_t.sum() + 1)
    return bce + dice, {"loss_bce": float(bce.detach()), "loss_dice": float(dice.detach())}


def make_loss(name: str, head: str) -> LossFn:
    """Loss function ``(logits, target) -> (loss, parts)`` for ``head``.

    ``target`` is always the ``(N, 3, Z, Y, X)`` BCD target; semantic losses
    use its foreground channel (and the 3DCellSeg loss its contour channel).

    Raises
    ------
    InputError
        For an unknown loss or one that does not fit the head.
    """
    if name not in LOSSES:
        raise InputError(f"unknown loss {name!r}; choose one of {sorted(LOSSES)} (CLI: --loss)")
    if LOSSES[name] != head:
        fits = sorted(k for k, v in LOSSES.items() if v == head)
        raise InputError(f"loss {name!r} does not fit the {head!r} head; use one of {fits}")
    if name == "bcd":
        return _bcd_loss
    if name == "cellseg3d":
        return _cellseg3d_loss
    return _monai(name)
