from __future__ import annotations

import numpy as np
import pytest

from bigseg.testing import balls_volume, write_image


def lattice_centres(shape, spacing, jitter, seed):
    """Ball centres on a jittered lattice: moderately dense, some nearly touching."""
    rng = np.random.default_rng(seed)
    axes = [np.arange(spacing / 2, s - spacing / 2 + 1e-6, spacing) for s in shape]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    return grid + rng.uniform(-jitter, jitter, grid.shape)


@pytest.fixture(scope="session")
def balls(tmp_path_factory):
    """64×96×96 voxels, 1 µm, balls of radius 5 every 13 voxels (± 1.5): 5×7×7 = 245 nuclei."""
    shape = (64, 96, 96)
    image, labels = balls_volume(shape, lattice_centres(shape, 13, 1.5, seed=1), 5.0, noise=0.03, seed=2)
    path = tmp_path_factory.mktemp("in") / "balls.ome.zarr"
    write_image(path, image, chunk_shape=(32, 32, 32))
    return path, image, labels
