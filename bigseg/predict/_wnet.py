"""WNet3D (CellSeg3D, after Xia & Kulis's W-Net): two U-Nets, an encoder into K soft classes and a decoder back.

Trained self-supervised (soft N-cuts on the encoder's classes + reconstruction
by the decoder, :mod:`bigseg.train`). At inference only the encoder runs, and
:meth:`WNet3D.forward` returns the logit of the class chosen as foreground, so
the network is a semantic (1-channel) model like any other.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["WNet3D"]


class WNet3D(nn.Module):
    """Encoder U-Net ``(N, 1, Z, Y, X) → (N, K, ...)`` and decoder U-Net ``(N, K, ...) → (N, 1, ...)``.

    Parameters
    ----------
    num_classes : int
        K, the encoder's soft classes (CellSeg3D: 2).
    foreground_class : int
        The class :meth:`forward` returns as foreground (chosen after training).
    channels, strides, num_res_units, dropout
        Both U-Nets' MONAI ``UNet`` arguments.
    """

    def __init__(
        self,
        num_classes: int = 2,
        foreground_class: int = 1,
        channels: tuple[int, ...] = (8, 16, 32),
        strides: tuple[int, ...] = (2, 2),
        num_res_units: int = 1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        from monai.networks.nets import UNet

        if int(num_classes) < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        if not 0 <= int(foreground_class) < int(num_classes):
            raise ValueError(f"foreground_class must be in [0, {num_classes}), got {foreground_class}")
        self.num_classes, self.foreground_class = int(num_classes), int(foreground_class)
        kw: dict[str, Any] = dict(spatial_dims=3, channels=tuple(channels), strides=tuple(strides),
                                  num_res_units=num_res_units, dropout=dropout, norm="batch")
        self.encoder = UNet(in_channels=1, out_channels=self.num_classes, **kw)
        self.decoder = UNet(in_channels=self.num_classes, out_channels=1, **kw)

    def classes(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's class logits ``(N, K, Z, Y, X)``."""
        return self.encoder(x)

    def reconstruct(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Class probabilities (softmax) and the decoder's reconstruction of ``x``."""
        prob = torch.softmax(self.encoder(x), dim=1)
        return prob, self.decoder(prob)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Foreground logit ``(N, 1, Z, Y, X)``: log p_fg − log(1 − p_fg) of the encoder's softmax."""
        logp = torch.log_softmax(self.encoder(x), dim=1)
        fg = logp[:, self.foreground_class : self.foreground_class + 1]
        others = torch.cat([logp[:, : self.foreground_class], logp[:, self.foreground_class + 1 :]], dim=1)
        return fg - torch.logsumexp(others, dim=1, keepdim=True)
