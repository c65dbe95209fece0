"""Sliding-window inference over patches with Gaussian blending.

The block (already on the model's grid) is covered by patches that overlap
by ``overlap`` of their size; each patch's output is weighted by a Gaussian
(sigma = 1/8 of the patch, MONAI's default) so patch borders, where a
convolutional network sees zero padding, count little. Patches run in
batches of ``batch_size``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from bigseg.errors import InputError

__all__ = ["fit_patch_size", "sliding_window"]


def fit_patch_size(patch_size: tuple[int, ...], image_shape: tuple[int, ...], divisor: int) -> tuple[int, ...]:
    """Shrink ``patch_size`` to the image where the image is smaller, keeping multiples of ``divisor``.

    Examples
    --------
    >>> fit_patch_size((64, 64, 64), (20, 100, 100), 8)
    (24, 64, 64)
    """
    out = []
    for p, s in zip(patch_size, image_shape):
        fitted = min(int(p), -(-int(s) // divisor) * divisor)
        out.append(max(fitted, divisor))
    return tuple(out)


def sliding_window(
    image: np.ndarray,
    forward: Callable[[torch.Tensor], torch.Tensor],
    *,
    patch_size: tuple[int, int, int],
    overlap: float = 0.25,
    batch_size: int = 4,
    divisor: int = 1,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Apply ``forward`` to overlapping patches of ``image`` and blend them.

    Parameters
    ----------
    image : (Z, Y, X) ndarray of float32
        One block on the model's grid.
    forward : callable
        ``(N, 1, pz, py, px)`` tensor → ``(N, C, pz, py, px)`` tensor of maps.
    patch_size : (int, int, int)
        Patch shape; shrunk where the image is smaller (see :func:`fit_patch_size`).
    overlap : float
        Fraction of the patch shared by neighbouring patches, in [0, 1).
    batch_size : int
        Patches per call of ``forward``.
    divisor : int
        Patch sizes are kept multiples of this (the network's downsampling).
    device : torch.device or str
        Where ``forward`` runs; blending happens there too on a GPU, on the CPU otherwise.

    Returns
    -------
    (C, Z, Y, X) ndarray of float32
    """
    from monai.inferers import sliding_window_inference

    if image.ndim != 3:
        raise InputError(f"`image` must be a (Z, Y, X) block, got shape {image.shape}")
    if not 0 <= overlap < 1:
        raise InputError(f"`overlap` must be in [0, 1), got {overlap}")
    if batch_size < 1:
        raise InputError(f"`batch_size` must be >= 1, got {batch_size}")
    patch = fit_patch_size(patch_size, image.shape, divisor)
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None]

    device = torch.device(device)
    # On a GPU the block, the patches and the blending stay on the device and the maps come back
    # once: the device never waits for the host between batches.
    blend_on = device if device.type == "cuda" else torch.device("cpu")

    def run(batch: torch.Tensor) -> torch.Tensor:
        return forward(batch.to(device)).float().to(blend_on)

    with torch.inference_mode():
        out = sliding_window_inference(
            x.to(blend_on), roi_size=patch, sw_batch_size=batch_size, predictor=run, overlap=overlap,
            mode="gaussian", sigma_scale=0.125, padding_mode="replicate", sw_device=blend_on, device=blend_on,
        )
    return np.asarray(torch.as_tensor(out)[0].cpu(), dtype=np.float32)
