"""Losses: every option runs, mismatches are refused, and training makes the loss fall."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bigseg.errors import InputError
from bigseg.synth import RandomNucleiConfig, random_nuclei
from bigseg.predict import build_network
from bigseg.train import (
    LOSSES,
    bcd_targets,
    dice_3dcellseg,
    make_loss,
)


def _batch(n: int = 2, side: int = 24) -> tuple[torch.Tensor, torch.Tensor]:
    cfg = RandomNucleiConfig(diameter=7.0, fill_range=(0.15, 0.3), p_anisotropy=0.0)
    xs, ys = [], []
    for i in range(n):
        img, lab = random_nuclei((side, side, side), seed=i, config=cfg)
        xs.append(img[None])
        ys.append(bcd_targets(lab))
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_loss_is_finite_with_parts(name: str) -> None:
    head = LOSSES[name]
    _, y = _batch(1, 16)
    logits = torch.randn(1, 3 if head == "bcd" else 1, 16, 16, 16, requires_grad=True)
    loss, parts = make_loss(name, head)(logits, y)
    loss.backward()
    assert torch.isfinite(loss) and parts and all(np.isfinite(v) for v in parts.values())
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_mismatched_or_unknown_loss() -> None:
    with pytest.raises(InputError, match=r"loss 'dice' does not fit the 'bcd' head; use one of \['bcd'\]"):
        make_loss("dice", "bcd")
    with pytest.raises(InputError, match="unknown loss 'focal'.*--loss"):
        make_loss("focal", "semantic")


@pytest.mark.parametrize("head,loss_name", [("bcd", "bcd"), ("semantic", "dice_ce")])
def test_loss_falls_within_a_few_steps(head: str, loss_name: str) -> None:
    """20 Adam steps on a fixed tiny synthetic batch cut the loss by at least a quarter."""
    torch.manual_seed(0)
    x, y = _batch()
    net = build_network("unet", head, {"channels": (4, 8, 16), "strides": (2, 2)})
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    loss_fn = make_loss(loss_name, head)
    losses = []
    for _ in range(20):
        loss, _ = loss_fn(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert np.mean(losses[-3:]) < 0.75 * losses[0], losses


def test_3dcellseg_dice_matches_hand_computed_values() -> None:
    # p = (0.9, 0.1), t = (1, 0), w = (2, 1), α = 0.1, smooth 1:
    # q = p/(p+α) = (0.9, 0.5); 2Σwqt = 2·2·0.9 = 3.6; Σwq² = 2·0.81 + 0.25 = 1.87; Σwt² = 2
    # loss = 1 - (3.6 + 1) / (1.87 + 2 + 1) = 1 - 4.6/4.87
    p, t, w = torch.tensor([0.9, 0.1]), torch.tensor([1.0, 0.0]), torch.tensor([2.0, 1.0])
    assert float(dice_3dcellseg(p, t, w)) == pytest.approx(1 - 4.6 / 4.87, rel=1e-6)
    # Never below 0, whatever the weights (q ≤ 1/(1+α) < 1 keeps it above).
    assert float(dice_3dcellseg(torch.ones(3), torch.ones(3), torch.tensor([9.0, 1.0, 1.0]))) >= 0
    # Unit weights and α → 0 give the plain (squared-denominator) Dice loss: perfect → 0 up to smoothing.
    one = torch.ones(4)
    assert float(dice_3dcellseg(one, one, one, alpha=1e-9, smooth=0.0)) == pytest.approx(0.0, abs=1e-6)


def test_3dcellseg_loss_sums_foreground_and_background_dice_with_boundary_weights() -> None:
    # One foreground voxel on a contour (weight 5) and one background voxel; logits 0 → p = 0.5.
    target = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0, 0.0]).reshape(1, 3, 2, 1, 1)  # fg (1, 0), contour (1, 0)
    logits = torch.zeros(1, 1, 2, 1, 1)
    loss, parts = make_loss("3dcellseg", "semantic")(logits, target)
    q = 0.5 / 0.6
    fg = 1 - (2 * 5 * q + 1) / (6 * q * q + 5 + 1)  # foreground class: t = (1, 0), w = (5, 1)
    bg = 1 - (2 * 1 * q + 1) / (6 * q * q + 1 + 1)  # background class: t = (0, 1)
    assert float(loss) == pytest.approx(fg + bg, rel=1e-6)
    assert parts["loss_dice_foreground"] == pytest.approx(fg, rel=1e-6)


def test_old_loss_name_says_it_was_renamed() -> None:
    with pytest.raises(InputError, match=r"loss 'cellseg3d' is now called '3dcellseg'"):
        make_loss("cellseg3d", "semantic")


def test_the_config_refuses_unknown_and_renamed_losses_as_make_loss_does() -> None:
    from bigseg.train import TrainConfig

    with pytest.raises(InputError, match=r"loss 'cellseg3d' is now called '3dcellseg'.*--loss 3dcellseg"):
        TrainConfig(out="x", head="semantic", loss="cellseg3d")  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"unknown loss 'focal'; choose one of \['3dcellseg', 'bcd', 'dice',"):
        TrainConfig(out="x", head="semantic", loss="focal")  # type: ignore[arg-type]
