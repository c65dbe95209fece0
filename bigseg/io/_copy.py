"""Copy the input image into an output image, block by block."""

from __future__ import annotations

import numpy as np

from bigseg.errors import InputError
from bigseg.io._volume import Volume
from bigseg.io._writer import ImageWriter
from bigseg.tiling import Roi

__all__ = ["copy_image_block"]


def copy_image_block(volume: Volume, writer: ImageWriter, roi: Roi, level: int = 0) -> None:
    """Copy ``roi`` of ``volume`` (its chosen level) into ``level`` of ``writer``.

    The input is only read. ``roi`` must be aligned to the writer's write
    unit (see :meth:`ImageWriter.write`), and the shapes must agree.

    Raises
    ------
    InputError
        ``volume.shape`` differs from the writer's level shape, or the data
        cannot be stored in the writer's dtype without loss of kind (float
        into integer).
    """
    if writer.has_channel:
        raise InputError(f"copy_image_block writes single-channel images; {writer.url!r} has channels")
    target = writer.spatial_shape(level)
    if tuple(volume.shape) != tuple(target):
        raise InputError(
            f"input {volume.source!r} (level {volume.level}, shape {volume.shape}) does not match "
            f"level {level} of {writer.url!r} (shape {target})"
        )
    data = volume.read(roi)
    if np.dtype(writer.dtype) != data.dtype:
        data = data.astype(np.dtype(writer.dtype), casting="same_kind")
    writer.write(roi, data, level)
