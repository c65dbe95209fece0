"""Shared settings of the training tests."""

from __future__ import annotations

from typing import Any

import pytest

# A network and data small enough that a few training steps take seconds on one CPU thread.
TINY: dict[str, Any] = dict(
    architecture="unet", architecture_kwargs={"channels": [4, 8, 16], "strides": [2, 2]}, batch_size=2,
    patch_size=(16, 16, 16), infer_patch_size=(16, 16, 16), pool_size=2, pool_volume=(24, 24, 24),
    refresh_every=2, val_volumes=1, val_shape=(24, 24, 24), workers=0, diameter_um=6.0, halo=(4, 4, 4),
    tune_decoding=False,
)


@pytest.fixture
def tiny() -> dict[str, Any]:
    """Keyword arguments of a tiny :class:`bigseg.train.TrainConfig` (no decoding selection)."""
    return dict(TINY)
