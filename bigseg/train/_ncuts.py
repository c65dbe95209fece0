"""The soft normalised-cut loss of W-Net (Xia & Kulis 2017), as CellSeg3D trains WNet3D with it.

For K soft classes ``p_k`` over the voxels of a patch and affinities

    w_ij = exp(-(I_i - I_j)² / σ_I²) · exp(-|x_i - x_j|² / σ_X²)   if |x_i - x_j| <= r, else 0,

the loss is ``K - Σ_k (Σ_ij w_ij p_ik p_jk) / (Σ_ij w_ij p_ik)``. Only pairs
within ``r`` voxels interact, so both sums are computed offset by offset (one
shifted copy of the patch per offset in the radius-r ball): memory and time
grow with the patch times the number of offsets, never with the patch squared
as a dense (voxels × voxels) affinity would.
"""

from __future__ import annotations

import math

import torch

from bigseg.errors import InputError

__all__ = ["ball_offsets", "soft_ncuts"]


def ball_offsets(radius: float) -> list[tuple[int, int, int]]:
    """Offsets ``o`` with ``0 < |o| <= radius`` and ``o`` lexicographically positive (one of each ± pair)."""
    r = int(math.floor(radius))
    out = []
    for dz in range(0, r + 1):
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                o = (dz, dy, dx)
                if o > (0, 0, 0) and dz * dz + dy * dy + dx * dx <= radius * radius:
                    out.append(o)
    return out


def _pair_slices(shape: tuple[int, ...], o: tuple[int, int, int]) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """Slices ``a``, ``b`` of a (Z, Y, X) array such that ``x[b]`` is ``x[a]`` moved by ``o``."""
    a, b = [], []
    for n, d in zip(shape, o):
        a.append(slice(max(0, -d), n - max(0, d)))
        b.append(slice(max(0, d), n - max(0, -d)))
    return tuple(a), tuple(b)


def soft_ncuts(
    prob: torch.Tensor,
    image: torch.Tensor,
    *,
    radius: float = 2.0,
    intensity_sigma: float = 1.0,
    spatial_sigma: float = 4.0,
) -> torch.Tensor:
    """Soft N-cuts loss, averaged over the batch.

    Parameters
    ----------
    prob : (N, K, Z, Y, X) tensor
        Soft class assignments (softmax over K).
    image : (N, 1, Z, Y, X) tensor
        The intensities the affinities are computed from.
    radius : float
        Voxels farther apart than this do not interact.
    intensity_sigma, spatial_sigma : float
        Scales of the intensity and spatial (voxels) Gaussians.

    Returns
    -------
    scalar tensor, in [0, K)
    """
    if prob.ndim != 5 or image.ndim != 5 or image.shape[1] != 1 or prob.shape[2:] != image.shape[2:]:
        raise InputError(
            f"`prob` must be (N, K, Z, Y, X) and `image` (N, 1, Z, Y, X) of the same size, "
            f"got {tuple(prob.shape)} and {tuple(image.shape)}"
        )
    if not (radius >= 1 and intensity_sigma > 0 and spatial_sigma > 0):
        raise InputError(
            f"soft N-cuts needs radius >= 1 and sigmas > 0, got radius {radius}, "
            f"intensity_sigma {intensity_sigma}, spatial_sigma {spatial_sigma}"
        )
    n, k = prob.shape[:2]
    dims = (2, 3, 4)
    # The pair (i, i): w = 1.
    assoc = (prob * prob).sum(dim=dims)
    degree = torch.ones_like(image)
    for o in ball_offsets(radius):
        a, b = _pair_slices(tuple(image.shape[2:]), o)
        a, b = (slice(None), slice(None), *a), (slice(None), slice(None), *b)
        spatial = math.exp(-(o[0] ** 2 + o[1] ** 2 + o[2] ** 2) / spatial_sigma**2)
        w = spatial * torch.exp(-((image[a] - image[b]) ** 2) / intensity_sigma**2)
        # Each offset stands for the pairs (i, i + o) and (i + o, i).
        assoc = assoc + 2 * (w * prob[a] * prob[b]).sum(dim=dims)
        deg_a = torch.zeros_like(degree)
        deg_a[a] = w
        deg_b = torch.zeros_like(degree)
        deg_b[b] = w
        degree = degree + deg_a + deg_b
    association = (prob * degree).sum(dim=dims)
    loss = k - (assoc / association.clamp_min(1e-12)).sum(dim=1)
    return loss.mean()
