"""The interface between models and the rest of bigseg.

A predictor turns one normalised image block into NucMM's "BCD" maps
(channels in :mod:`bigseg.maps`)::

    image (Z, Y, X) float32, ~[0, 1]  ──predict──▶  maps (3, Z, Y, X) float32
                                                    maps[0] foreground probability  [0, 1]
                                                    maps[1] contour probability     [0, 1]
                                                    maps[2] signed distance         [-1, 1]
                                                            (> 0 inside nuclei, 1 at centres)

Predictors are described by a small, picklable, hashable *spec* that is sent
to Dask workers; :func:`bigseg.predict.get_predictor` builds the predictor
from its spec once per worker process and caches it (models are loaded once
per worker, not once per block).
"""

from __future__ import annotations

from typing import Hashable, Protocol, runtime_checkable

import numpy as np

from bigseg.tiling import Roi

__all__ = ["Predictor", "PredictorSpec"]


@runtime_checkable
class Predictor(Protocol):
    """Turns a normalised image block into BCD maps."""

    @property
    def halo(self) -> tuple[int, int, int]:
        """Voxels of context (z, y, x) the maps at a voxel depend on, or that
        the predictor needs to be accurate; the pipeline's halo is at least this.

        A predictor may also define ``foreground_halo`` (same form): how far the
        *foreground* map at a voxel depends on the image, when that is less than
        ``halo`` (the classical predictor's Gaussian). Skipping empty blocks uses it
        (``bigseg.pipeline._plan.skip_margin``); without it, ``halo`` is assumed."""
        ...

    def predict(
        self, image: np.ndarray, *, offset: tuple[int, ...] = (0, 0, 0), write_roi: Roi | None = None
    ) -> np.ndarray:
        """Map a ``(Z, Y, X) float32`` block to ``(3, *write_roi.shape) float32`` maps of its write ROI.

        ``offset`` is the block's first voxel in the volume and ``write_roi``
        a global box inside the block (the whole block by default). With a
        block that reaches at least :attr:`halo` beyond the write ROI (or to
        the volume's edge), its maps must equal the whole volume's:
        predictors work on grids fixed to the volume, and may compute only
        what the write ROI needs.
        """
        ...


@runtime_checkable
class PredictorSpec(Hashable, Protocol):
    """A frozen, hashable description of a predictor; ``build()`` makes one."""

    def build(self) -> Predictor: ...
