"""The global patch grid: coverage, blending, and blocks equal to the whole volume bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bigseg.errors import InputError
from bigseg.predict._patches import PatchGrid, predict_on_grid


def _smear(x: torch.Tensor) -> torch.Tensor:
    """A fake network that sees its patch's zero padding: a 5³ box mean, then two channels."""
    y = torch.nn.functional.avg_pool3d(x, 5, stride=1, padding=2)
    return torch.cat([y, y * y - x], 1)


@pytest.mark.parametrize("blend", ["tile", "gaussian"])
def test_supports_cover_every_voxel(blend) -> None:
    grid = PatchGrid.from_overlap((16, 24, 8), 0.25, blend)
    w = [grid.axis_weights(a) for a in range(3)]
    for axis in range(3):
        count = np.zeros(200)
        weight = np.zeros(200)
        for j in range(-5, 60):
            start = j * grid.stride[axis] - grid.border[axis]
            lo, hi = max(start, 0), min(start + grid.size[axis], 200)
            if lo < hi:
                count[lo:hi] += w[axis][lo - start:hi - start] > 0
                weight[lo:hi] += w[axis][lo - start:hi - start]
        assert weight.min() > 0
        if blend == "tile":
            assert (count == 1).all()  # overlap-tile: each voxel from exactly one patch


def test_indices_are_the_patches_whose_support_meets_the_box() -> None:
    grid = PatchGrid((16, 16, 16), (12, 12, 12), (2, 2, 2), "tile")
    # support of patch j: [12 j, 12 j + 12); the box [11, 25) meets j = 0, 1, 2
    assert [j[0] for j in grid.indices((11, 0, 0), (25, 1, 1))] == [0, 1, 2]
    assert grid.window((1, 0, -1)) == (10, -2, -14)
    assert grid.reach == (13, 13, 13)


def test_bad_grid() -> None:
    with pytest.raises(InputError, match=r"need border >= 0 and 1 <= stride <= size - 2 \* border"):
        PatchGrid((16, 16, 16), (14, 12, 12), (2, 2, 2), "tile")
    with pytest.raises(InputError, match=r"`blend` must be 'gaussian' or 'tile', got 'max'"):
        PatchGrid((16, 16, 16), (12, 12, 12), (2, 2, 2), "max")  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"`overlap` must be in \[0, 1\), got 1.5"):
        PatchGrid.from_overlap((16, 16, 16), 1.5, "tile")


def test_default_grid_keeps_a_power_of_two_centre() -> None:
    # Border an eighth of the window, at most 8: 80 keeps 64 (stride 64), 64 keeps 48, 16 keeps 12.
    grid = PatchGrid.default((80, 64, 16), "tile")
    assert grid.border == (8, 8, 2) and grid.stride == (64, 48, 12) and grid.support == grid.stride
    assert PatchGrid.default((80, 80, 80), "gaussian") == PatchGrid.from_overlap((80, 80, 80), 0.25, "gaussian")
    # A write ROI on the patch period runs exactly its own patches: 128 / 64 = 2 per axis.
    assert len(list(PatchGrid.default((80, 80, 80), "tile").indices((128, 0, 64), (256, 128, 192)))) == 8


@pytest.mark.parametrize("blend", ["tile", "gaussian"])
def test_pointwise_model_is_reproduced(blend) -> None:
    img = np.random.default_rng(0).random((20, 45, 33), dtype=np.float32)
    grid = PatchGrid.from_overlap((16, 16, 16), 0.25, blend)
    out = predict_on_grid(img, lambda x: torch.cat([2 * x, x + 1], 1), grid, origin=(0, 0, 0),
                          lo=(0, 0, 0), hi=img.shape, batch_size=3)
    assert out.shape == (2, 20, 45, 33)
    np.testing.assert_allclose(out[0], 2 * img, rtol=1e-6)
    np.testing.assert_allclose(out[1], img + 1, rtol=1e-6)


@pytest.mark.parametrize("blend", ["tile", "gaussian"])
def test_any_box_equals_the_whole_image_exactly(blend) -> None:
    """A box read with `reach` around it (clipped to the image) gives the whole image's values
    bit for bit, wherever it is cut (the edge of the image stands for the volume's edge)."""
    rng = np.random.default_rng(1)
    img = rng.random((30, 41, 37), dtype=np.float32)
    grid = PatchGrid.from_overlap((16, 8, 16), 0.5, blend)
    whole = predict_on_grid(img, _smear, grid, origin=(0, 0, 0), lo=(0, 0, 0), hi=img.shape)
    r = grid.reach
    for _ in range(6):
        lo = tuple(int(rng.integers(0, n - 1)) for n in img.shape)
        hi = tuple(int(rng.integers(a + 1, n + 1)) for a, n in zip(lo, img.shape))
        a = tuple(max(x - h, 0) for x, h in zip(lo, r))
        b = tuple(min(x + h, n) for x, h, n in zip(hi, r, img.shape))
        part = predict_on_grid(img[tuple(slice(x, y) for x, y in zip(a, b))], _smear, grid, origin=a, lo=lo, hi=hi,
                               batch_size=2)
        np.testing.assert_array_equal(part, whole[(slice(None), *(slice(x, y) for x, y in zip(lo, hi)))])


def test_box_outside_the_image() -> None:
    img = np.zeros((8, 8, 8), np.float32)
    grid = PatchGrid.from_overlap((8, 8, 8), 0.25, "tile")
    with pytest.raises(InputError, match=r"must be non-empty and inside the image"):
        predict_on_grid(img, _smear, grid, origin=(4, 0, 0), lo=(0, 0, 0), hi=(4, 4, 4))
