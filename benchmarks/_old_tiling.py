"""The tiling bigseg used before the global patch grid, kept for comparison in benchmarks only.

Each block was covered by MONAI's sliding window from its own read ROI's start (patches where
the block happens to begin, Gaussian blending, patch shrunk to small blocks), so the maps near
block faces depended on the blocking. Its halo was the card's halo scaled to the data, its patch
the card's 64³ of that time, overlap 0.25.
"""

from __future__ import annotations

import numpy as np

from bigseg.predict import ModelPredictor, sliding_window

#: The old tiling's patch (model voxels) and overlap: the shipped card's patch before the global grid.
OLD_PATCH = (64, 64, 64)
OLD_OVERLAP = 0.25


def old_halo(pred: ModelPredictor) -> tuple[int, int, int]:
    return pred.scale.halo(pred.card.halo)


def old_predict(pred: ModelPredictor, image: np.ndarray, offset: tuple[int, ...] = (0, 0, 0)) -> np.ndarray:
    """``(3, Z, Y, X)`` maps of the whole block, as the old ``ModelPredictor.predict`` computed them."""
    small = pred.scale.to_model(np.asarray(image, dtype=np.float32), offset)
    maps = sliding_window(small, pred._forward, patch_size=OLD_PATCH, overlap=OLD_OVERLAP,
                          batch_size=pred.spec.batch_size, divisor=pred.divisor, device=pred.device)
    out = pred.scale.to_data(maps, offset, image.shape)
    np.clip(out[:2], 0.0, 1.0, out=out[:2])
    np.clip(out[2], -1.0, 1.0, out=out[2])
    return out
