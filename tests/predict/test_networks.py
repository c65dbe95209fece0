"""Every architecture × head builds and maps (N, 1, Z, Y, X) → (N, C, Z, Y, X)."""

from __future__ import annotations

import pytest
import torch

from bigseg.errors import ModelPackageError
from bigseg.predict._networks import (
    ARCHITECTURES,
    HEADS,
    activate,
    build_network,
    patch_divisor,
)

# Tiny variants so each forward pass takes well under a second on a loaded CPU.
TINY = {
    "basic_unet": {"features": (4, 4, 8, 8, 16, 4)},
    "unet": {"channels": (4, 8, 16), "strides": (2, 2)},
    "segresnet": {"init_filters": 8, "blocks_down": (1, 1, 1), "blocks_up": (1, 1)},
    "swin_unetr": {"feature_size": 12, "depths": (1, 1, 1, 1), "num_heads": (1, 1, 1, 1)},
    "wnet3d": {"channels": (4, 8), "strides": (2,)},
    "cellsegnet": {"features": 4},
}
SEMANTIC_ONLY = {"wnet3d"}


def test_registry_covers_the_tiny_variants() -> None:
    assert set(TINY) == set(ARCHITECTURES)


@pytest.mark.parametrize("head", sorted(HEADS))
@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_forward_shapes(architecture: str, head: str) -> None:
    if architecture in SEMANTIC_ONLY and head != "semantic":
        with pytest.raises(ModelPackageError, match=f"{architecture} has a semantic .* head only"):
            build_network(architecture, head, TINY[architecture])
        return
    torch.manual_seed(0)
    net = build_network(architecture, head, TINY[architecture]).eval()
    div = patch_divisor(architecture, TINY[architecture])
    # SwinUNETR needs 2 voxels at its coarsest level (instance norm); 64 = 2 * 32.
    shape = (64, 64, 64) if architecture == "swin_unetr" else (2 * div, 2 * div, div)
    x = torch.rand(1, 1, *shape)
    with torch.no_grad():
        logits = net(x)
        maps = activate(logits, head)
    assert logits.shape == (1, HEADS[head], *shape)
    assert maps.shape == logits.shape
    assert float(maps[:, :2].min()) >= 0 and float(maps[:, :2].max()) <= 1
    assert float(maps.min()) >= -1


def test_bcd_activation_channels() -> None:
    logits = torch.tensor([-50.0, 0.0, 50.0]).reshape(1, 3, 1, 1, 1)
    maps = activate(logits, "bcd").flatten().tolist()
    assert maps == pytest.approx([0.0, 0.5, 1.0], abs=1e-6)  # sigmoid, sigmoid, tanh
    assert activate(torch.zeros(1, 3, 1, 1, 1) - 50, "bcd")[0, 2].item() == pytest.approx(-1.0)


def test_unknown_architecture_and_head() -> None:
    with pytest.raises(ModelPackageError, match="unknown architecture 'vnet'.*basic_unet"):
        build_network("vnet", "bcd")
    with pytest.raises(ModelPackageError, match="unknown head 'affinity'.*bcd"):
        build_network("unet", "affinity")


def test_bad_architecture_kwargs_are_reported() -> None:
    with pytest.raises(ModelPackageError, match="segresnet.*rejected its arguments.*architecture_kwargs"):
        build_network("segresnet", "bcd", {"init_filters": 4})  # groups of 8 need >= 8 filters
    with pytest.raises(ModelPackageError, match="unet.*rejected"):
        build_network("unet", "bcd", {"channels": (4, 8), "strides": (2, 2), "bogus": 1})


def test_patch_divisor_follows_strides() -> None:
    assert patch_divisor("unet", {"channels": (4, 8, 16, 32), "strides": (2, 2, 2)}) == 8
    assert patch_divisor("unet", {"channels": (4, 8), "strides": (2,)}) == 2
    assert patch_divisor("basic_unet") == 16
    assert patch_divisor("swin_unetr") == 32


def test_wnet3d_forward_is_the_foreground_logit_of_its_encoder() -> None:
    """sigmoid(forward) equals the encoder's softmax probability of the foreground class."""
    torch.manual_seed(0)
    x = torch.rand(1, 1, 8, 8, 8)
    for fg in (0, 1, 2):
        net = build_network("wnet3d", "semantic", {**TINY["wnet3d"], "num_classes": 3, "foreground_class": fg}).eval()
        with torch.no_grad():
            expected = torch.softmax(net.classes(x), dim=1)[:, fg : fg + 1]
            torch.testing.assert_close(torch.sigmoid(net(x)), expected, rtol=1e-5, atol=1e-6)
            prob, recon = net.reconstruct(x)
        assert prob.shape == (1, 3, 8, 8, 8) and recon.shape == x.shape
