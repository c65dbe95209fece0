"""3DCellSegNet: the light-weight residual network of 3DCellSeg (Wang et al. 2022).

A 3×3×3 stem, three stride-2 stages each followed by a residual module (two
3×3×3 convolutions, batch norm, ReLU, identity shortcut), then transposed
convolutions back up with skip connections by addition; a 1×1×1 output layer.
About 0.26 M parameters at the default 8 base features.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["CellSegNet"]


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv3d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm3d(cout),
                         nn.ReLU(inplace=True))


class _Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv3d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm3d(channels), nn.ReLU(inplace=True),
            nn.Conv3d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm3d(channels),
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.body(x))


class CellSegNet(nn.Module):
    """``(N, 1, Z, Y, X) → (N, out_channels, Z, Y, X)`` logits; sizes must be multiples of 8."""

    def __init__(self, out_channels: int, features: int = 8) -> None:
        super().__init__()
        f = int(features)
        self.stem = _conv(1, f)
        self.down = nn.ModuleList([nn.Sequential(_conv(a, b, stride=2), _Residual(b))
                                   for a, b in ((f, 2 * f), (2 * f, 4 * f), (4 * f, 4 * f))])
        self.up = nn.ModuleList([nn.ConvTranspose3d(a, b, 2, stride=2) for a, b in ((4 * f, 4 * f), (4 * f, 2 * f), (2 * f, f))])
        self.refine = nn.ModuleList([_Residual(c) for c in (4 * f, 2 * f, f)])
        self.out = nn.Conv3d(f, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.stem(x)]
        for stage in self.down:
            skips.append(stage(skips[-1]))
        y = skips.pop()
        for up, refine in zip(self.up, self.refine):
            y = refine(up(y) + skips.pop())
        return self.out(y)
