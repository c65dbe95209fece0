"""Training losses on logits.

BCD head (NucMM): BCE on foreground, class-balanced BCE on contour, MSE on
``tanh(logit)`` against the signed distance. Semantic head: MONAI's Dice,
Dice-CE, generalised Dice or Tversky on the foreground, or the 3DCellSeg loss
(Wang et al. 2022, *Sci Rep*; not to be confused with CellSeg3D, Achard et al.
2024): a Dice loss per class (foreground and background) with a boundary
weight matrix, and with the prediction p replaced by p / (p + α).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F

from bigseg.errors import InputError

__all__ = ["LOSSES", "LossName", "check_loss", "dice_3dcellseg", "make_loss"]

LossName = Literal["bcd", "dice", "dice_ce", "generalized_dice", "tversky", "3dcellseg"]
LOSSES: dict[str, str] = {
    "bcd": "bcd",
    "dice": "semantic",
    "dice_ce": "semantic",
    "generalized_dice": "semantic",
    "tversky": "semantic",
    "3dcellseg": "semantic",
}
# The loss was first called "cellseg3d", which names another paper (CellSeg3D); say so instead of "unknown".
_RENAMED = {"cellseg3d": "3dcellseg"}

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


def dice_3dcellseg(prob: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, *, alpha: float = 0.1,
                   smooth: float = 1.0) -> torch.Tensor:
    """The 3DCellSeg Dice loss of one class.

    ``1 - (2 Σ w q t + s) / (Σ w q² + Σ w t² + s)`` with ``q = p / (p + α)``; ``w``
    weighs each voxel (the boundary weight matrix), ``s`` smooths empty patches.
    All tensors have the same shape; sums run over everything (batch included).
    The weight multiplies the denominator's sums too: with it in the numerator only
    (as in the reference code) a weight above 1 drives the loss below zero and
    rewards over-confident boundary voxels instead of correct ones.
    """
    q = prob / (prob + alpha)
    inter = 2 * (weight * q * target).sum()
    return 1 - (inter + smooth) / ((weight * q * q).sum() + (weight * target * target).sum() + smooth)


def _3dcellseg_loss(
    logits: torch.Tensor, target: torch.Tensor, *, boundary_weight: float = 5.0, alpha: float = 0.1
) -> tuple[torch.Tensor, dict[str, float]]:
    """Foreground and background 3DCellSeg Dice; voxels on a contour weigh ``boundary_weight``."""
    fg_t = target[:, :1]
    weight = 1.0 + (boundary_weight - 1.0) * target[:, 1:2]  # touching nuclei are the hard part
    prob = torch.sigmoid(logits[:, :1])
    fg = dice_3dcellseg(prob, fg_t, weight, alpha=alpha)
    bg = dice_3dcellseg(1 - prob, 1 - fg_t, weight, alpha=alpha)
    return fg + bg, {"loss_dice_foreground": float(fg.detach()), "loss_dice_background": float(bg.detach())}


def check_loss(name: str, head: str) -> None:
    """Refuse an unknown loss (listing the losses), an old name (giving the new one), or one that does not fit ``head``."""
    if name in _RENAMED:
        raise InputError(f"loss {name!r} is now called {_RENAMED[name]!r} (3DCellSeg, Wang et al. 2022); use --loss {_RENAMED[name]}")
    if name not in LOSSES:
        raise InputError(f"unknown loss {name!r}; choose one of {sorted(LOSSES)} (CLI: --loss)")
    if LOSSES[name] != head:
        fits = sorted(k for k, v in LOSSES.items() if v == head)
        raise InputError(f"loss {name!r} does not fit the {head!r} head; use one of {fits} (CLI: --loss)")


def make_loss(name: str, head: str) -> LossFn:
    """Loss function ``(logits, target) -> (loss, parts)`` for ``head``.

    ``target`` is always the ``(N, 3, Z, Y, X)`` BCD target; semantic losses
    use its foreground channel (and the 3DCellSeg loss its contour channel as the boundary).

    Raises
    ------
    InputError
        For an unknown loss or one that does not fit the head.
    """
    check_loss(name, head)
    if name == "bcd":
        return _bcd_loss
    if name == "3dcellseg":
        return _3dcellseg_loss
    return _monai(name)
