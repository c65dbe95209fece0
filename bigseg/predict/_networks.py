"""Registry of 3D network architectures (MONAI) and output heads.

A network maps ``(N, 1, Z, Y, X)`` images to ``(N, C, Z, Y, X)`` *logits*;
the head says how many channels there are and how logits become maps:

=========  ==  =====================================================
head       C   activation
=========  ==  =====================================================
bcd        3   sigmoid (foreground), sigmoid (contour), tanh (distance)
semantic   1   sigmoid (foreground)
=========  ==  =====================================================

``wnet3d`` (CellSeg3D's self-supervised W-Net, :class:`~bigseg.predict._wnet.WNet3D`)
has the semantic head only: its forward pass returns the foreground class's
logit. ``cellsegnet`` is 3DCellSeg's light-weight network.

Training works on logits (numerically stable losses); inference applies
:func:`activate`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from bigseg.errors import ModelPackageError

__all__ = [
    "ARCHITECTURES",
    "HEADS",
    "activate",
    "build_network",
    "full_kwargs",
    "head_channels",
    "patch_divisor",
]


HEADS: dict[str, int] = {"bcd": 3, "semantic": 1}


@dataclass(frozen=True, slots=True)
class _ArchInfo:
    build: Callable[[int, dict[str, Any]], nn.Module]
    defaults: dict[str, Any]
    divisor: Callable[[dict[str, Any]], int]


def _basic_unet(out: int, kw: dict[str, Any]) -> nn.Module:
    from monai.networks.nets import BasicUNet

    return BasicUNet(spatial_dims=3, in_channels=1, out_channels=out, **kw)


def _unet(out: int, kw: dict[str, Any]) -> nn.Module:
    from monai.networks.nets import UNet

    return UNet(spatial_dims=3, in_channels=1, out_channels=out, **kw)


def _segresnet(out: int, kw: dict[str, Any]) -> nn.Module:
    from monai.networks.nets import SegResNet

    return SegResNet(spatial_dims=3, in_channels=1, out_channels=out, **kw)


def _swin_unetr(out: int, kw: dict[str, Any]) -> nn.Module:
    from monai.networks.nets import SwinUNETR

    return SwinUNETR(spatial_dims=3, in_channels=1, out_channels=out, **kw)


def _wnet3d(out: int, kw: dict[str, Any]) -> nn.Module:
    from bigseg.predict._wnet import WNet3D

    if out != 1:
        raise ValueError("wnet3d has a semantic (foreground) head only: pass head 'semantic'")
    return WNet3D(**kw)


def _cellsegnet(out: int, kw: dict[str, Any]) -> nn.Module:
    from bigseg.predict._cellsegnet import CellSegNet

    return CellSegNet(out, **kw)


def _unet_divisor(kw: dict[str, Any]) -> int:
    d = 1
    for s in kw.get("strides", ()):
        d *= int(s) if isinstance(s, int) else int(max(s))
    return d


ARCHITECTURES: dict[str, _ArchInfo] = {
    "basic_unet": _ArchInfo(_basic_unet, {"features": (8, 16, 32, 64, 128, 8), "norm": "batch"}, lambda kw: 16),
    "unet": _ArchInfo(
        _unet,
        {"channels": (16, 32, 64, 128), "strides": (2, 2, 2), "num_res_units": 1, "norm": "batch"},
        _unet_divisor,
    ),
    "segresnet": _ArchInfo(
        _segresnet,
        {"init_filters": 8, "blocks_down": (1, 2, 2, 4), "blocks_up": (1, 1, 1)},
        lambda kw: 2 ** (len(kw.get("blocks_down", (1, 2, 2, 4))) - 1),
    ),
    "wnet3d": _ArchInfo(
        _wnet3d,
        {"num_classes": 2, "foreground_class": 1, "channels": (8, 16, 32), "strides": (2, 2), "num_res_units": 1,
         "dropout": 0.0},
        _unet_divisor,
    ),
    "cellsegnet": _ArchInfo(_cellsegnet, {"features": 8}, lambda kw: 8),
    "swin_unetr": _ArchInfo(_swin_unetr, {"feature_size": 12, "depths": (2, 2, 2, 2), "num_heads": (3, 6, 12, 24)}, lambda kw: 32),
}


def _check(architecture: str, head: str) -> None:
    if architecture not in ARCHITECTURES:
        raise ModelPackageError(
            f"unknown architecture {architecture!r}; choose one of {sorted(ARCHITECTURES)}"
        )
    if head not in HEADS:
        raise ModelPackageError(f"unknown head {head!r}; choose one of {sorted(HEADS)}")


def head_channels(head: str) -> int:
    """Number of output channels of ``head``."""
    _check(next(iter(ARCHITECTURES)), head)
    return HEADS[head]


def full_kwargs(architecture: str, kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """The architecture's default arguments updated with ``kwargs``."""
    _check(architecture, "bcd")
    return {**ARCHITECTURES[architecture].defaults, **(kwargs or {})}


def build_network(architecture: str, head: str, kwargs: dict[str, Any] | None = None) -> nn.Module:
    """Build an untrained network.

    Parameters
    ----------
    architecture : {"basic_unet", "unet", "segresnet", "swin_unetr", "wnet3d", "cellsegnet"}
        MONAI architecture, or WNet3D / 3DCellSegNet.
    head : {"bcd", "semantic"}
        Output head (3 or 1 channels of logits).
    kwargs : dict, optional
        Architecture arguments, on top of the registry's defaults (e.g.
        ``{"channels": [8, 16, 32], "strides": [2, 2]}`` for ``unet``).

    Raises
    ------
    ModelPackageError
        For an unknown architecture or head, or arguments the architecture rejects.
    """
    _check(architecture, head)
    kw = full_kwargs(architecture, kwargs)
    try:
        return ARCHITECTURES[architecture].build(HEADS[head], kw)
    except (TypeError, ValueError, AssertionError) as exc:
        raise ModelPackageError(
            f"architecture {architecture!r} rejected its arguments {kw}: {exc}; "
            "fix `architecture_kwargs` (see the MONAI documentation of this network)"
        ) from exc


def patch_divisor(architecture: str, kwargs: dict[str, Any] | None = None) -> int:
    """Patch sizes must be multiples of this (the network's total downsampling)."""
    return ARCHITECTURES[architecture].divisor(full_kwargs(architecture, kwargs))


def activate(logits: torch.Tensor, head: str) -> torch.Tensor:
    """Logits ``(N, C, Z, Y, X)`` → maps in their ranges (probabilities, tanh distance)."""
    if head == "bcd":
        return torch.cat([torch.sigmoid(logits[:, :2]), torch.tanh(logits[:, 2:3])], dim=1)
    if head == "semantic":
        return torch.sigmoid(logits)
    _check(next(iter(ARCHITECTURES)), head)
    raise AssertionError("unreachable")
