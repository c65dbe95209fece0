"""The same run on an embedded LocalCluster (worker processes) gives the in-process result."""

from __future__ import annotations

import pytest

from bigseg.io import open_volume
from bigseg.pipeline import segment
from bigseg.testing import same_partition


@pytest.mark.slow
def test_local_cluster_equals_sync(balls, tmp_path):
    src, _, _ = balls
    common = dict(predictor="classical", diameter_um=10.0, block_shape=(32, 48, 48))
    sync = segment(str(src), str(tmp_path / "sync.zarr"), scheduler="sync", **common)
    seen = []
    dist = segment(
        str(src), str(tmp_path / "dist.zarr"), scheduler="local", n_workers=2, window=3,
        progress=lambda stage, done, total: seen.append((stage, done, total)), **common,
    )
    assert dist.dashboard_link and dist.dashboard_link.startswith("http://127.0.0.1:")
    assert dist.n_objects == sync.n_objects
    assert same_partition(open_volume(dist.labels_url).read_level(0), open_volume(sync.labels_url).read_level(0))
    assert ("predict", dist.n_blocks, dist.n_blocks) in seen


def test_a_small_run_starts_no_cluster_by_default(balls, tmp_path, monkeypatch):
    """scheduler 'auto' (the default): a volume this small runs in the driver's process."""
    import psutil

    monkeypatch.delenv("BIGSEG_SCHEDULER", raising=False)
    src, _, _ = balls
    started = []
    res = segment(str(src), str(tmp_path / "auto.zarr"), predictor="classical", diameter_um=10.0,
                  block_shape=(32, 48, 48), on_cluster=started.append,
                  progress=lambda *a: started.extend(p.pid for p in psutil.Process().children(recursive=True)
                                                     if "spawn_main" in " ".join(p.cmdline())))
    assert started == [None] and res.dashboard_link is None and res.n_objects > 0
