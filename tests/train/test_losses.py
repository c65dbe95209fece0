"""Losses: every option runs, mismatches are refused, and training makes the loss fall."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bigseg.errors import InputError
from bigseg.predict import build_network
from bigseg.train import (
    LOSSES,
    RandomNucleiConfig,
    bcd_targets,
    make_loss,
    random_nuclei,
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
