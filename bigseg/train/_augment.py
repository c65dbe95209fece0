"""MONAI augmentation of ``(image, labels)`` crops.

Spatial transforms move image and labels together (labels with nearest
interpolation); intensity transforms touch the image only. Targets are
computed *after* augmentation, from the augmented labels.

Levels: ``none``; ``light`` (flips on every axis, 90° turns in y-x, intensity
scale / shift / gamma, Gaussian noise); ``full`` (light + small rotations and
scaling + elastic deformation).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from bigseg.errors import InputError

__all__ = ["AugmentLevel", "Augmenter"]

AugmentLevel = Literal["none", "light", "full"]


class Augmenter:
    """Seeded MONAI augmentation pipeline.

    Parameters
    ----------
    level : {"none", "light", "full"}
        How much to augment.
    """

    def __init__(self, level: AugmentLevel = "light") -> None:
        if level not in ("none", "light", "full"):
            raise InputError(f"augmentation level must be 'none', 'light' or 'full', got {level!r} (CLI: --augment)")
        self.level = level
        self._transform = None if level == "none" else self._build(level)

    @staticmethod
    def _build(level: str):  # type: ignore[no-untyped-def]
        from monai import transforms as T

        keys = ["image", "labels"]
        spatial = [
            T.RandFlipd(keys, prob=0.5, spatial_axis=0),
            T.RandFlipd(keys, prob=0.5, spatial_axis=1),
            T.RandFlipd(keys, prob=0.5, spatial_axis=2),
            T.RandRotate90d(keys, prob=0.5, spatial_axes=(1, 2)),
        ]
        if level == "full":
            spatial += [
                T.RandAffined(
                    keys, prob=0.3, rotate_range=(0.26, 0.26, 0.26), scale_range=(0.15, 0.15, 0.15),
                    mode=("bilinear", "nearest"), padding_mode="reflection",
                ),
                T.Rand3DElasticd(
                    keys, sigma_range=(5, 8), magnitude_range=(20, 60), prob=0.15,
                    mode=("bilinear", "nearest"), padding_mode="reflection",
                ),
            ]
        intensity = [
            T.RandScaleIntensityd("image", factors=0.3, prob=0.5),
            T.RandShiftIntensityd("image", offsets=0.1, prob=0.5),
            T.RandAdjustContrastd("image", gamma=(0.7, 1.5), prob=0.3),
            T.RandGaussianNoised("image", std=0.03, prob=0.3),
        ]
        return T.Compose(spatial + intensity)

    def __call__(self, image: np.ndarray, labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Augment one crop.

        Parameters
        ----------
        image : (Z, Y, X) ndarray of float32
        labels : (Z, Y, X) ndarray of int
        seed : int
            Seed of this draw (the pipeline is re-seeded per call, for exact resumes).

        Returns
        -------
        image : (Z, Y, X) ndarray of float32
        labels : (Z, Y, X) ndarray of uint32
        """
        if self._transform is None:
            return image, labels
        from monai.data import get_track_meta, set_track_meta

        self._transform.set_random_state(seed=int(seed) % (2**32))
        tracking = get_track_meta()
        set_track_meta(False)  # metadata tracking doubles the cost and is not needed here
        try:
            out = self._transform(
                {"image": image[None].astype(np.float32), "labels": labels[None].astype(np.float32)}
            )
        finally:
            set_track_meta(tracking)
        img = np.asarray(out["image"][0], dtype=np.float32)
        lab = np.rint(np.asarray(out["labels"][0])).astype(np.uint32)
        return np.ascontiguousarray(img), np.ascontiguousarray(lab)
