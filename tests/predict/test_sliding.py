"""Sliding-window inference, tested with fake models (the trained model: test_model_default.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bigseg.errors import InputError
from bigseg.predict._sliding import fit_patch_size, sliding_window


def test_fake_model_is_reproduced_exactly() -> None:
    # A pointwise model: any blending of patches gives the model's value back.
    img = np.random.default_rng(0).random((20, 45, 33), dtype=np.float32)
    for overlap in (0.0, 0.25, 0.5):
        out = sliding_window(img, lambda x: torch.cat([2 * x, x + 1], 1), patch_size=(16, 16, 16),
                             overlap=overlap, batch_size=3, divisor=8)
        assert out.shape == (2, 20, 45, 33)
        np.testing.assert_allclose(out[0], 2 * img, atol=1e-5)
        np.testing.assert_allclose(out[1], img + 1, atol=1e-5)


def test_image_smaller_than_patch() -> None:
    img = np.ones((5, 9, 40), dtype=np.float32)
    out = sliding_window(img, lambda x: x * 3, patch_size=(32, 32, 32), divisor=8)
    assert out.shape == (1, 5, 9, 40)
    np.testing.assert_allclose(out, 3.0, atol=1e-6)


def test_fit_patch_size() -> None:
    assert fit_patch_size((64, 64, 64), (20, 100, 3), 8) == (24, 64, 8)
    assert fit_patch_size((48, 48, 48), (48, 49, 200), 16) == (48, 48, 48)


@pytest.mark.parametrize("kwargs,match", [({"overlap": 1.0}, r"`overlap` must be in \[0, 1\), got 1.0"),
                                          ({"batch_size": 0}, "`batch_size` must be >= 1, got 0")])
def test_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        sliding_window(np.zeros((8, 8, 8), np.float32), lambda x: x, patch_size=(8, 8, 8), **kwargs)
    with pytest.raises(InputError, match=r"must be a \(Z, Y, X\) block, got shape \(8, 8\)"):
        sliding_window(np.zeros((8, 8), np.float32), lambda x: x, patch_size=(8, 8, 8))
