"""End-to-end runs of `bigseg.segment` on known-answer volumes (scheduler='sync' unless stated)."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
from skimage.measure import regionprops_table

from bigseg.io import is_complete, open_volume
from bigseg.pipeline import segment
from bigseg.predict import SimulatedSpec
from bigseg.testing import balls_volume, same_partition, write_image

DIAMETER = 10.0


def run(src, out, **kw):
    kw.setdefault("scheduler", "sync")
    kw.setdefault("predictor", "classical")
    kw.setdefault("diameter_um", DIAMETER)
    return segment(str(src), str(out), **kw)


def read_labels(out):
    return open_volume(f"{out}/labels/nuclei").read_level(0)


def match_f1(pred, truth, thr=0.5):
    """F1 at IoU > thr with one-to-one matches (unique for thr >= 0.5)."""
    ids_p, ids_t = np.unique(pred[pred > 0]), np.unique(truth[truth > 0])
    both = (pred > 0) & (truth > 0)
    pairs, inter = np.unique(np.stack([pred[both], truth[both]]), axis=1, return_counts=True)
    size_p = dict(zip(*np.unique(pred, return_counts=True)))
    size_t = dict(zip(*np.unique(truth, return_counts=True)))
    tp = sum(1 for (p, t), n in zip(pairs.T, inter) if n / (size_p[p] + size_t[t] - n) > thr)
    return 2 * tp / (len(ids_p) + len(ids_t))


@pytest.mark.parametrize("block_shape", [(32, 32, 32), (48, 64, 80)])
def test_seeded_blockwise_equals_whole_volume(balls, tmp_path, block_shape):
    src, _, _ = balls
    whole = read_labels(run(src, tmp_path / "whole.zarr", block_shape=(64, 96, 96)).output)
    blocked = run(src, tmp_path / "blocked.zarr", block_shape=block_shape)
    assert blocked.n_blocks > 1
    assert same_partition(read_labels(blocked.output), whole)


def test_ids_renumbered_by_first_voxel_do_not_depend_on_the_block_shape(balls, tmp_path):
    """The recipe of docs/stitching.md: IDs ranked by the table's `first_voxel` are the same label
    volume, IDs included, at any block shape (the run's own IDs are a renaming of each other)."""
    src, _, _ = balls

    def stable(block_shape):
        result = run(src, tmp_path / f"{block_shape[0]}.zarr", block_shape=block_shape)
        table = pq.read_table(result.table_url, columns=["id", "first_voxel"])
        ids, first = table["id"].to_numpy(), table["first_voxel"].to_numpy()
        lookup = np.zeros(int(ids.max()) + 1, np.uint32)
        lookup[ids[np.argsort(first)]] = np.arange(1, len(ids) + 1, dtype=np.uint32)
        labels = read_labels(result.output)
        return labels, lookup[labels]

    (raw_a, a), (raw_b, b) = stable((64, 96, 96)), stable((24, 40, 56))
    assert not np.array_equal(raw_a, raw_b)  # the run's IDs follow the owning blocks
    np.testing.assert_array_equal(a, b)


def test_accuracy_and_consecutive_ids(balls, tmp_path):
    src, _, truth = balls
    result = run(src, tmp_path / "out.zarr", block_shape=(32, 48, 48))
    labels = read_labels(result.output)
    assert labels.dtype == np.uint32
    ids = np.unique(labels[labels > 0])
    assert np.array_equal(ids, np.arange(1, result.n_objects + 1))  # consecutive 1..N
    assert match_f1(labels, truth) >= 0.9
    assert abs(result.n_objects - int(truth.max())) <= 0.05 * truth.max()


def test_object_table_matches_whole_volume_measurement(balls, tmp_path):
    src, image, _ = balls
    result = run(src, tmp_path / "out.zarr", block_shape=(32, 32, 32))
    labels = read_labels(result.output)
    table = {k: np.asarray(v) for k, v in pq.read_table(result.table_url).to_pydict().items()}
    props = regionprops_table(labels, intensity_image=image, properties=("label", "area", "centroid", "bbox", "intensity_mean", "intensity_max"))
    assert sorted(table["id"]) == sorted(props["label"])
    row = {i: k for k, i in enumerate(table["id"])}
    order = {k: v[[row[i] for i in props["label"]]] for k, v in table.items()}
    np.testing.assert_array_equal(order["voxel_count"], props["area"])
    np.testing.assert_allclose(order["centroid_z_um"], props["centroid-0"], atol=1e-9)
    np.testing.assert_allclose(order["centroid_x_um"], props["centroid-2"], atol=1e-9)
    np.testing.assert_array_equal(order["bbox_y_min"], props["bbox-1"])
    np.testing.assert_array_equal(order["bbox_x_max"], props["bbox-5"])
    np.testing.assert_allclose(order["mean_intensity"], props["intensity_mean"], rtol=1e-5)
    np.testing.assert_allclose(order["max_intensity"], props["intensity_max"], rtol=1e-6)
    border = (props["bbox-0"] == 0) | (props["bbox-3"] == labels.shape[0]) | (props["bbox-2"] == 0) | (props["bbox-5"] == labels.shape[2]) | (props["bbox-1"] == 0) | (props["bbox-4"] == labels.shape[1])
    np.testing.assert_array_equal(order["touches_border"], border)
    np.testing.assert_allclose(order["volume_um3"], props["area"] * 1.0)


def test_iou_path_neither_splits_nor_merges_across_borders(tmp_path):
    # Block faces at 32 (z, y, x). Balls centred on faces, an edge and a corner are each one
    # nucleus; pairs of separate balls touching each other across a face stay two.
    shape = (64, 64, 64)
    centres = [
        (32, 16, 16), (16, 32, 48), (48, 48, 32),   # cut by one face
        (32, 32, 12),                               # on an edge (two faces)
        (32, 32, 32),                               # on the corner of 8 blocks
        (52, 12, 26.5), (52, 12, 37.5),             # touching each other across the x face
        (12, 26.5, 12), (12, 37.5, 12),             # touching across the y face
    ]
    image, truth = balls_volume(shape, np.array(centres), 5.5, noise=0.02, seed=3)
    src = tmp_path / "in.zarr"
    write_image(src, image)
    # seed_distance 0.6 keeps the touching pairs apart in the decoder itself (not under test here).
    opts = dict(stitch="iou", min_volume_um3=20, seed_distance=0.6)
    result = run(src, tmp_path / "out.zarr", block_shape=(32, 32, 32), **opts)
    labels = read_labels(result.output)
    assert result.n_objects == len(centres)
    assert match_f1(labels, truth, 0.7) == 1.0
    # Each block decodes its read ROI alone, so voxels where two nuclei meet may differ from a
    # whole-volume decode; the objects themselves must not.
    whole = read_labels(run(src, tmp_path / "whole.zarr", block_shape=shape, **opts).output)
    assert match_f1(labels, whole, 0.9) == 1.0


def test_maps_saved_and_output_complete(balls, tmp_path):
    src, _, _ = balls
    result = run(src, tmp_path / "out.zarr", block_shape=(64, 96, 96), save_maps=True)
    assert is_complete(result.output) and is_complete(result.labels_url)
    maps = open_volume(f"{result.output}/maps", channel=0).read_level(0)
    assert maps.shape == (64, 96, 96) and 0.0 <= maps.min() and maps.max() <= 1.0
    assert not (tmp_path / "out.zarr" / ".bigseg-work").exists()


def test_two_pyramid_levels_are_written(tmp_path):
    image, _ = balls_volume((32, 64, 64), np.array([(16, 20, 20), (16, 44, 44)]), 6.0)
    src = tmp_path / "in.zarr"
    write_image(src, image, n_levels=2)
    result = run(src, tmp_path / "out.zarr", block_shape=(32, 32, 32))
    lab = open_volume(result.labels_url)
    assert lab.n_levels == 2
    low = lab.with_level(1).read_level(1)
    full = lab.read_level(0)
    factor = tuple(a // b for a, b in zip(full.shape, low.shape))
    np.testing.assert_array_equal(low, full[:: factor[0], :: factor[1], :: factor[2]])


def test_accuracy_on_moderately_dense_synthetic_volume(tmp_path):
    """Generator settings: `confocal` preset at 1 µm isotropic voxels, 10 µm nuclei (cv 0.15),
    10 % volume fraction (~11 % touching), texture 0.2, intensity cv 0.15, PSF σ (1, 0.5, 0.5) µm,
    no haze, no axial stretch; 64×128×128 voxels, seed 3 (~176 nuclei). Scored without nuclei cut by the volume
    border, whose truth is a fragment: F1 at IoU 0.5 >= 0.9 at two blockings."""
    from bigseg.evaluate import evaluate
    from bigseg.synth import synthesize

    image, truth = synthesize(
        (64, 128, 128), preset="confocal", voxel_size=(1, 1, 1), diameter_um=10, seed=3, volume_fraction=0.10,
        psf_sigma_um=(1.0, 0.5, 0.5), haze=0.0, texture=0.2, intensity_cv=0.15, axial_stretch=1.0,
    )
    src = tmp_path / "syn.zarr"
    write_image(src, image.astype(np.float32))
    for block in [(64, 128, 128), (32, 48, 64)]:
        result = run(src, tmp_path / f"out{block[0]}.zarr", block_shape=block)
        scores = evaluate(read_labels(result.output), truth, ignore_border=True).at(0.5)
        assert scores.f1 >= 0.9, (block, scores)


def test_decode_from_saved_maps_matches_a_fresh_run(balls, tmp_path):
    src, _, _ = balls
    from bigseg.pipeline import decode

    first = run(src, tmp_path / "out.zarr", block_shape=(32, 48, 48), save_maps=True)
    before = read_labels(first.output)
    again = decode(str(first.output), label_name="nuclei_t2", scheduler="sync", seed_distance=0.7)
    fresh = run(src, tmp_path / "fresh.zarr", block_shape=(32, 48, 48), seed_distance=0.7)
    assert is_complete(again.labels_url) and again.labels_url.endswith("labels/nuclei_t2")
    assert same_partition(read_labels(fresh.output), open_volume(again.labels_url).read_level(0))
    np.testing.assert_array_equal(read_labels(first.output), before)  # the first labels untouched
    with pytest.raises(Exception, match="overwrite"):
        decode(str(first.output), scheduler="sync")


def test_decode_without_maps_says_how_to_fix(balls, tmp_path):
    from bigseg.errors import InputError
    from bigseg.pipeline import decode

    src, _, _ = balls
    first = run(src, tmp_path / "out.zarr", block_shape=(64, 96, 96))
    with pytest.raises(InputError, match="--save-maps"):
        decode(str(first.output), scheduler="sync")


@pytest.mark.parametrize("block_shape", [(32, 64, 64), (16, 32, 32)])
def test_the_size_filter_keeps_nuclei_cut_by_a_face_of_the_volume(tmp_path, block_shape):
    """A nucleus cut by the volume's face shows only part of itself, so its size is no evidence against
    it: a cap at the face smaller than the size filter is kept, an equally small object inside is not."""
    shape = (32, 64, 64)
    big, big_truth = balls_volume(shape, np.array([(16, 16, 16), (16, 44, 44)]), 5.5, noise=0.0)
    cap, cap_truth = balls_volume(shape, np.array([(-3, 32, 50)]), 5.5, noise=0.0)  # 2.5 voxels inside z = 0
    small, small_truth = balls_volume(shape, np.array([(20, 48, 14)]), 2.5, noise=0.0)
    image = np.maximum(np.maximum(big, cap), small) + np.random.default_rng(1).normal(0, 0.02, shape)
    src = tmp_path / "in.zarr"
    write_image(src, image.astype(np.float32))
    assert 0 < (cap_truth > 0).sum() < 150 and 0 < (small_truth > 0).sum() < 150
    # Maps that follow the image (foreground = image): every bright object is decoded, whatever its size.
    spec = SimulatedSpec(0.0, patch_size=(16, 32, 32))
    every = run(src, tmp_path / "every.zarr", block_shape=block_shape, min_volume_um3=0, predictor_spec=spec)
    assert every.n_objects == 4
    result = run(src, tmp_path / "out.zarr", block_shape=block_shape, min_volume_um3=150, predictor_spec=spec)
    labels = read_labels(result.output)
    assert result.n_objects == 3
    assert labels[0, 32, 50] > 0 and labels[20, 48, 14] == 0
    table = pq.read_table(f"{result.output}/labels/nuclei.parquet").to_pandas()
    cut = table[table.touches_border]
    assert len(cut) == 1 and cut.voxel_count.iloc[0] < 150
    assert (table[~table.touches_border].voxel_count >= 150).all()
