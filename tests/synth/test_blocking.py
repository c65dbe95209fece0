"""Same seed, same volume: bit-identical under any blocking, in memory and on disk."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from typer.testing import CliRunner

from bigseg.cli import app
from bigseg.errors import OutputExistsError
from bigseg.synth import SynthParams, synthesize, synthesize_block, write_synthetic
from bigseg.synth._placement import Placement
from bigseg.tiling import Grid, Halo

# every stage on: irregular clustered nuclei, texture, envelope, haze, blobs,
# stripes, attenuation, PSF and Poisson-Gaussian noise, anisotropic voxels
ALL_ON = SynthParams(
    voxel_size=(1.0, 0.5, 0.5), diameter_um=6.0, diameter_cv=0.2, axis_sd=0.2, irregularity=0.15,
    volume_fraction=0.25, max_intersection=0.3, clustering=0.8, cluster_scale_um=15.0, texture=0.4,
    envelope=50.0, background_texture=0.3, haze=0.2, haze_sigma_um=(4.0, 3.0, 3.0), blob_fraction=0.5,
    stripes=0.4, stripe_period_um=6.0, attenuation_um=40.0, photons_per_unit=0.3, dtype="float32",
)
SHAPE = (37, 70, 66)


def _assemble(params: SynthParams, shape: tuple[int, int, int], block: tuple[int, int, int], seed: int):
    image = np.zeros(shape, dtype=params.dtype)
    labels = np.zeros(shape, dtype=np.uint32)
    placement = Placement(params, shape, seed)  # one cache shared by the blocks, as a worker would
    for b in Grid(shape, block, Halo.of(0)).blocks():
        img, lab = synthesize_block(params, shape, b.write_roi, seed, placement=placement)
        image[b.write_roi.to_slices()] = img
        labels[b.write_roi.to_slices()] = lab
    return image, labels


@pytest.fixture(scope="module")
def whole() -> tuple[np.ndarray, np.ndarray]:
    return synthesize(SHAPE, preset=ALL_ON, seed=7)


@pytest.mark.parametrize("block", [(32, 32, 32), (19, 36, 23)])
def test_blockwise_equals_whole_bit_for_bit(whole, block) -> None:
    image, labels = _assemble(ALL_ON, SHAPE, block, seed=7)
    assert np.array_equal(image, whole[0])  # exact, not allclose
    assert np.array_equal(labels, whole[1])


def test_volume_is_not_trivial(whole) -> None:
    image, labels = whole
    assert image.dtype == np.float32 and labels.dtype == np.uint32
    assert len(np.unique(labels)) - 1 >= 10
    assert np.isfinite(image).all() and image.std() > 10


def test_seed_decides_everything(whole) -> None:
    again = synthesize(SHAPE, preset=ALL_ON, seed=7)
    other = synthesize(SHAPE, preset=ALL_ON, seed=8)
    assert np.array_equal(again[0], whole[0]) and np.array_equal(again[1], whole[1])
    assert not np.array_equal(other[1] > 0, whole[1] > 0)


def test_written_volume_is_the_same_under_two_blockings(tmp_path) -> None:
    shape = (40, 72, 64)
    image, labels = synthesize(shape, preset="dense", seed=3)
    a = write_synthetic(tmp_path / "a.zarr", shape, preset="dense", seed=3, block_shape=(32, 64, 32))
    b = write_synthetic(tmp_path / "b.zarr", shape, preset="dense", seed=3, block_shape=32, window=2, n_levels=2)
    for res in (a, b):
        group = zarr.open_group(res.url, mode="r")
        assert np.array_equal(group["0"][:], image)
        assert np.array_equal(group["labels/truth/0"][:], labels)
        assert res.n_nuclei == len(np.unique(labels)) - 1
        meta = dict(group.attrs)["bigseg"]
        assert meta["complete"] is True and meta["synthetic"]["preset"] == "dense"
    level1 = zarr.open_group(b.url, mode="r")["labels/truth/1"][:]
    assert np.array_equal(level1, labels[:, ::2, ::2])  # nearest-voxel pyramid of the labels
    with pytest.raises(OutputExistsError, match="already exists; pass overwrite=True"):
        write_synthetic(tmp_path / "a.zarr", shape, preset="dense", seed=3)


def test_cli_writes_and_reports(tmp_path) -> None:
    out = tmp_path / "s.zarr"
    run = CliRunner().invoke(
        app, ["synth", str(out), "--shape", "32", "48", "40", "--preset", "confocal", "--seed", "2",
              "--block-shape", "32", "32", "32"],
    )
    assert run.exit_code == 0, run.output
    _, labels = synthesize((32, 48, 40), preset="confocal", seed=2)
    n = len(np.unique(labels)) - 1
    assert f"wrote {n} nuclei (confocal, seed 2)" in run.output and str(out) in run.output
    again = CliRunner().invoke(app, ["synth", str(out), "--shape", "32", "48", "40"])
    assert again.exit_code == 2 and "--overwrite" in again.output
    bad = CliRunner().invoke(app, ["synth", str(tmp_path / "x.zarr"), "--preset", "nope"])
    assert bad.exit_code == 2 and "valid presets: mesospim" in bad.output


@pytest.mark.parametrize("kind", ["ellipsoid", "brain"])
def test_tissue_mask_is_blocking_invariant_and_empty_outside(kind) -> None:
    params = SynthParams(
        voxel_size=(1.0, 1.0, 1.0), diameter_um=5.0, volume_fraction=0.2, clustering=0.8, cluster_scale_um=12.0,
        haze=0.0, tissue=kind, outside_background=20.0, read_noise=3.0, blob_fraction=0.3,
    )
    shape = (30, 64, 58)
    image, labels = synthesize(shape, preset=params, seed=4)
    blocked = _assemble(params, shape, (19, 32, 23), seed=4)
    assert np.array_equal(blocked[0], image) and np.array_equal(blocked[1], labels)
    from bigseg.synth._tissue import tissue_inside

    inside = tissue_inside(kind, shape, 4, *np.indices(shape, sparse=True))
    assert 0.3 < inside.mean() < 0.6
    assert len(np.unique(labels)) > 10
    # nuclei only inside (a nucleus centred inside may cross the edge by its radius)
    from scipy import ndimage as ndi

    assert not (labels[~ndi.binary_dilation(inside, iterations=4)] > 0).any()
    far_out = ~ndi.binary_dilation(inside, iterations=8)
    assert abs(float(image[far_out].mean()) - 20.0) < 2.0  # the dark box: outside level plus noise
