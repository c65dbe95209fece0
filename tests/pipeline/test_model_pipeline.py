"""The pipeline with a network predictor (a small, randomly initialised U-Net package)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bigseg.io import open_volume
from bigseg.pipeline import segment
from bigseg.predict._card import ModelCard
from bigseg.predict._networks import build_network
from bigseg.predict._package import save_model_package
from bigseg.testing import same_partition


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    torch.manual_seed(0)
    card = ModelCard(name="tiny", architecture="unet", architecture_kwargs={"channels": [4, 8], "strides": [2]},
                     head="bcd", patch_size=(16, 32, 32), halo=(6, 6, 6), voxel_size_um=(1.0, 1.0, 1.0),
                     diameter_um=10.0)
    net = build_network(card.architecture, card.head, card.architecture_kwargs)
    return save_model_package(net, card, tmp_path_factory.mktemp("m") / "tiny")


def test_model_predictor_blockwise_equals_whole_volume(balls, tmp_path, tiny_model):
    """Patches are placed on the block, so maps near a patch seam can differ in the last bits; the
    partition must agree on at least 99.9 % of voxels and in object count."""
    src, _, _ = balls
    common = dict(scheduler="sync", predictor="model", model=str(tiny_model), diameter_um=10.0)
    whole = segment(str(src), str(tmp_path / "w.zarr"), block_shape=(64, 96, 96), **common)
    blocked = segment(str(src), str(tmp_path / "b.zarr"), block_shape=(32, 48, 48), **common)
    a = open_volume(whole.labels_url).read_level(0)
    b = open_volume(blocked.labels_url).read_level(0)
    assert blocked.n_blocks == 8
    if not same_partition(a, b):
        assert whole.n_objects == blocked.n_objects
        assert np.mean((a > 0) != (b > 0)) < 1e-3
