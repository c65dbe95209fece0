"""Soft N-cuts: equals a dense (voxels × voxels) reference; memory grows with the patch, not its square."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from bigseg.errors import InputError
from bigseg.train import soft_ncuts


def _dense(prob: torch.Tensor, image: torch.Tensor, radius: float, si: float, sx: float) -> torch.Tensor:
    shape = prob.shape[2:]
    coords = torch.tensor(list(itertools.product(*[range(s) for s in shape])), dtype=torch.float64)
    d2 = ((coords[:, None] - coords[None]) ** 2).sum(-1)
    k = prob.shape[1]
    out = []
    for b in range(prob.shape[0]):
        i = image[b, 0].reshape(-1)
        w = torch.exp(-((i[:, None] - i[None]) ** 2) / si**2) * torch.exp(-d2 / sx**2) * (d2 <= radius**2)
        p = prob[b].reshape(k, -1)
        out.append(k - sum((p[c] @ w @ p[c]) / (p[c] @ w.sum(1)) for c in range(k)))
    return torch.stack(out).mean()


@pytest.mark.parametrize("radius,si,sx", [(2.0, 1.0, 4.0), (3.0, 0.3, 2.0)])
def test_matches_dense_reference(radius: float, si: float, sx: float) -> None:
    g = torch.Generator().manual_seed(0)
    prob = torch.softmax(torch.randn(2, 3, 4, 5, 6, generator=g, dtype=torch.float64), dim=1)
    image = torch.rand(2, 1, 4, 5, 6, generator=g, dtype=torch.float64)
    got = soft_ncuts(prob, image, radius=radius, intensity_sigma=si, spatial_sigma=sx)
    torch.testing.assert_close(got, _dense(prob, image, radius, si, sx), rtol=1e-12, atol=1e-12)


def test_perfect_split_of_two_flat_regions_scores_near_zero() -> None:
    image = torch.zeros(1, 1, 8, 8, 8, dtype=torch.float64)
    image[..., 4:] = 10.0  # intensity jump: no affinity across
    prob = torch.zeros(1, 2, 8, 8, 8, dtype=torch.float64)
    prob[:, 0, ..., :4], prob[:, 1, ..., 4:] = 1, 1
    assert float(soft_ncuts(prob, image)) < 1e-12
    uniform = torch.full_like(prob, 0.5)
    assert float(soft_ncuts(uniform, image)) == pytest.approx(1.0)


class _Largest(TorchDispatchMode):
    """Records the largest tensor any operation produces (elements)."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


def _largest_tensor(side: int) -> int:
    prob = torch.softmax(torch.randn(1, 2, side, side, side), dim=1).requires_grad_(True)
    image = torch.rand(1, 1, side, side, side)
    with _Largest() as mode:
        soft_ncuts(prob, image).backward()
    return mode.largest


def test_memory_grows_with_the_patch_not_its_square() -> None:
    small, large = _largest_tensor(8), _largest_tensor(16)  # 512 and 4096 voxels
    assert large <= 2 * 4096  # never more than the class maps (K = 2) of the patch
    assert large / small == pytest.approx(8, rel=0.01)  # linear: 8× the voxels, 8× the largest tensor


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(InputError, match=r"`prob` must be \(N, K, Z, Y, X\) and `image` \(N, 1, Z, Y, X\)"):
        soft_ncuts(torch.rand(1, 2, 4, 4, 4), torch.rand(1, 1, 4, 4, 5))
