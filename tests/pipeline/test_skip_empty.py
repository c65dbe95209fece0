"""Empty-block skipping: identical labels with and without it, skipped blocks counted and saved as a mask."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow.parquet as pq
import pytest
import zarr
from scipy import ndimage as ndi

from bigseg.io import open_volume
from bigseg.pipeline import segment
from bigseg.predict import ClassicalSpec
from bigseg.testing import balls_volume, write_image

SHAPE = (96, 64, 64)
EDGE = 32  # tissue is z < EDGE


@pytest.fixture(scope="module")
def edge_volume(tmp_path_factory):
    """Tissue (a brighter background with nuclei) for z < 32, then a dark box with camera noise;
    a row of nuclei is centred right on the tissue edge, half of each outside it."""
    rng = np.random.default_rng(5)
    inner = np.stack(np.meshgrid(np.arange(6, EDGE - 4, 11), np.arange(6, 60, 11), np.arange(6, 60, 11),
                                 indexing="ij"), -1).reshape(-1, 3).astype(float)
    on_edge = np.stack(np.meshgrid([EDGE - 0.5], np.arange(10, 60, 13), np.arange(10, 60, 13), indexing="ij"),
                       -1).reshape(-1, 3)
    centres = np.concatenate([inner + rng.uniform(-1, 1, inner.shape), on_edge])
    image, labels = balls_volume(SHAPE, centres, 4.0, noise=0.02, seed=6)
    image[:EDGE] += 0.15
    path = tmp_path_factory.mktemp("skip") / "edge.ome.zarr"
    write_image(path, image, chunk_shape=(16, 32, 32))
    return path, labels


def _run(src, out, **kw):
    return segment(str(src), str(out), scheduler="sync", predictor="classical", diameter_um=8.0,
                   block_shape=(16, 32, 32), **kw)


def test_skipping_gives_identical_labels_and_table(edge_volume, tmp_path) -> None:
    src, truth = edge_volume
    on = _run(src, tmp_path / "on.zarr")
    off = _run(src, tmp_path / "off.zarr", skip_empty=False)
    assert off.n_skipped == 0
    assert on.n_skipped >= 8  # the z blocks beyond the tissue plus its margin
    assert on.n_objects == off.n_objects > 0
    a = open_volume(f"{on.output}/labels/nuclei").read_level(0)
    b = open_volume(f"{off.output}/labels/nuclei").read_level(0)
    assert np.array_equal(a, b)  # same IDs, voxel for voxel
    assert (a[EDGE - 4:EDGE + 4] > 0).any()  # the nuclei on the tissue edge are found
    assert pq.read_table(on.table_url).equals(pq.read_table(off.table_url))
    assert "skipped" in on.summary() and f"{on.n_skipped} of {on.n_blocks}" in on.summary()


def test_the_mask_is_saved_as_a_label_image(edge_volume, tmp_path) -> None:
    src, _ = edge_volume
    result = _run(src, tmp_path / "out.zarr")
    group = zarr.open_group(str(tmp_path / "out.zarr"), mode="r")
    assert set(group["labels"].attrs["ome"]["labels"]) == {"nuclei", "tissue"}
    tissue = group["labels/tissue/0"][:]
    assert set(np.unique(tissue)) <= {0, 1, 2}
    assert tissue.shape == SHAPE  # same levels as the nuclei, as NGFF wants of a label image
    assert (tissue[:EDGE] == 1).mean() > 0.9 and (tissue[-16:] == 0).all()
    meta = dict(group["labels/tissue"].attrs)["bigseg"]["tissue"]
    assert meta["skipped_blocks"] == result.n_skipped


def test_skipped_blocks_are_never_predicted(edge_volume, tmp_path, monkeypatch) -> None:
    import bigseg.pipeline._tasks as tasks

    seen = []
    real = tasks.predict_task

    def spy(ctx, block, *args):
        seen.append(block.linear)
        return real(ctx, block, *args)

    monkeypatch.setattr(tasks, "predict_task", spy)
    import bigseg.pipeline._driver as seg

    monkeypatch.setattr(seg, "predict_task", spy)
    result = _run(edge_volume[0], tmp_path / "out.zarr")
    assert len(seen) == result.n_blocks - result.n_skipped
    assert max(seen) < result.n_blocks - 8  # the last z blocks (empty box) never ran


def test_skipped_blocks_are_never_read_without_an_image_copy(edge_volume, tmp_path, monkeypatch) -> None:
    from bigseg.io import Volume
    from bigseg.tiling import Grid, Halo

    reads = []
    real = Volume.read

    def spy(self, roi):
        reads.append(roi)
        return real(self, roi)

    monkeypatch.setattr(Volume, "read", spy)
    result = _run(edge_volume[0], tmp_path / "out.zarr", output_mode="labels-only")
    grid = result.grid
    assert result.n_skipped >= 8
    cores = Grid(grid.volume_shape, grid.block_shape, Halo.of(0))
    last = [b.write_roi for b in cores.blocks() if b.write_roi.offset[0] >= SHAPE[0] - 16]  # skipped: far from tissue
    assert reads and not any(not r.intersect(w).empty for r in reads for w in last)


def test_a_volume_with_nuclei_in_one_octant_skips_most_blocks(tmp_path) -> None:
    shape = (64, 128, 128)
    axes = [np.arange(6, s // 2 - 4, 11) for s in shape]  # nuclei in the low octant only
    centres = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3).astype(float)
    image, _ = balls_volume(shape, centres, 4.0, noise=0.03, seed=2)
    write_image(tmp_path / "octant.zarr", image, chunk_shape=(16, 32, 32))
    kw = dict(scheduler="sync", predictor="classical", diameter_um=8.0, block_shape=(16, 32, 32),
              output_mode="labels-only")
    on = segment(str(tmp_path / "octant.zarr"), str(tmp_path / "on.zarr"), **kw)
    off = segment(str(tmp_path / "octant.zarr"), str(tmp_path / "off.zarr"), skip_empty=False, **kw)
    assert on.n_skipped >= 0.4 * on.n_blocks  # 7/8 empty, less the margin (halo + half a nucleus) around the octant
    assert on.n_objects == off.n_objects == len(centres)
    assert np.array_equal(open_volume(on.labels_url).read_level(0), open_volume(off.labels_url).read_level(0))


@dataclass(frozen=True)
class SpreadSpec:
    """A predictor whose foreground reaches ``spread`` voxels beyond anything bright (the classical
    predictor on the image's grey dilation); it declares a foreground reach of ``declared`` more
    voxels than the classical predictor's, so a test can make it understate its reach."""

    spread: int
    declared: int

    def build(self) -> SpreadPredictor:
        return SpreadPredictor(self)


class SpreadPredictor:
    def __init__(self, spec: SpreadSpec) -> None:
        self.spec = spec
        self.classical = ClassicalSpec((1.0, 1.0, 1.0), 8.0, threshold=0.5).build()

    @property
    def halo(self) -> tuple[int, int, int]:
        return tuple(h + self.spec.spread for h in self.classical.halo)  # type: ignore[return-value]

    @property
    def foreground_halo(self) -> tuple[int, int, int]:
        return tuple(h + self.spec.declared for h in self.classical.foreground_halo)  # type: ignore[return-value]

    def predict(self, image, *, offset=(0, 0, 0), write_roi=None):
        wide = ndi.grey_dilation(image, size=2 * self.spec.spread + 1, mode="nearest")
        return self.classical.predict(wide, offset=offset, write_roi=write_roi)


def test_a_margin_short_of_the_foreground_reach_would_change_labels(tmp_path) -> None:
    # Nuclei centred at z = 12 in a dark box; the predictor's foreground spreads 18 voxels past them,
    # into z blocks [24, 32) and [32, 40) (blocks of 8 in z), well beyond the tissue estimate (~z 18):
    #   z   0        12        18  24      32  ~34     40
    #       |  nuclei |  tissue |   | fg .... |  fg |    |
    # Declared, the margin covers that foreground and labels are identical; understated (the classical
    # predictor's own reach only), the [32, 40) blocks are skipped while a run without skipping labels them.
    shape = (64, 32, 64)
    centres = np.stack(np.meshgrid([12.0], [16.0], np.arange(8, 60, 12), indexing="ij"), -1).reshape(-1, 3)
    image, _ = balls_volume(shape, centres, 4.0, noise=0.02, seed=3)
    write_image(tmp_path / "row.zarr", image, chunk_shape=(8, 32, 32))
    kw = dict(scheduler="sync", diameter_um=8.0, block_shape=(8, 32, 32), output_mode="labels-only")

    def labels(name: str, spec: SpreadSpec, **extra) -> tuple[np.ndarray, int]:
        result = segment(str(tmp_path / "row.zarr"), str(tmp_path / name), predictor_spec=spec, **kw, **extra)
        return open_volume(result.labels_url).read_level(0), result.n_skipped

    reference, _ = labels("off.zarr", SpreadSpec(18, 18), skip_empty=False)
    assert (reference[32:40] > 0).any()  # the spread foreground is labelled there
    declared, skipped = labels("declared.zarr", SpreadSpec(18, 18))
    assert skipped > 0 and np.array_equal(declared, reference)
    understated, skipped_more = labels("understated.zarr", SpreadSpec(18, 0))
    assert skipped_more > skipped and not np.array_equal(understated, reference)


def test_camera_noise_at_the_volume_faces_is_not_tissue(tmp_path) -> None:
    # One nucleus in the middle of a noisy dark box: a mean over one nucleus is noisier near the faces
    # (fewer voxels inside the volume), which read as tissue at the corners before the allowance grew.
    from bigseg.pipeline._tissue import estimate_tissue
    from bigseg.tiling import Grid, Halo

    shape = (64, 128, 128)
    image, _ = balls_volume(shape, [(32, 64, 64)], 4.0, noise=0.03, seed=9)
    write_image(tmp_path / "one.zarr", image, chunk_shape=(16, 32, 32))
    grid = Grid(shape, (16, 32, 32), Halo.of(0))
    tissue = estimate_tissue(open_volume(str(tmp_path / "one.zarr")), grid, (8, 8, 8), (8, 8, 8))
    assert tissue is not None
    assert (tissue.mask == 1).sum() < 20**3  # the nucleus, averaged over one nucleus
    # tissue at z 25-40, y and x 57-72, grown by 8: z blocks 1-3, y and x blocks 1-2; none on a face in y or x
    active = {grid.block(int(i)).index for i in np.flatnonzero(tissue.active)}
    assert active == {(z, y, x) for z in (1, 2, 3) for y in (1, 2) for x in (1, 2)}


def test_the_coarse_level_is_binned_to_a_bounded_size_within_half_a_nucleus():
    from bigseg.pipeline._tissue import MAX_MASK_VOXELS, _bin_mean, _bins

    image = np.arange(5 * 7 * 3, dtype=np.float32).reshape(5, 7, 3)
    binned = _bin_mean(image, (2, 3, 2))
    assert binned.shape == (3, 3, 2)
    assert binned[0, 0, 0] == image[:2, :3, :2].mean() and binned[2, 2, 1] == image[4:, 6:, 2:].mean()  # partial bins
    assert _bins((96, 256, 256), (8, 8, 8)) == (2, 2, 2)  # 6.3 M voxels -> 0.8 M
    assert _bins((64, 64, 64), (8, 8, 8)) == (1, 1, 1)  # small enough already
    assert _bins((2000, 2000, 2000), (8, 8, 8)) == (4, 4, 4)  # never more than half a nucleus
    assert _bins((300, 300, 300), (3, 8, 8)) == (1, 4, 4)
    assert np.prod([-(-s // 2) for s in (96, 256, 256)]) <= MAX_MASK_VOXELS
