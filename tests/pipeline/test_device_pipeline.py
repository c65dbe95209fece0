"""The predict stage overlaps device work with host work on a GPU worker with threads.

The device is simulated (a sleep per batch of patches, releasing the GIL), so this runs anywhere.
Host and device time are measured inside the same run, so a loaded machine stretches both alike:
per task of the GPU stage, host time is the task's time minus the time its thread waited for or
held the device (``bigseg.predict.overlap_times``). Without overlap the device's intervals and
the host intervals are disjoint and the stage takes at least their sum. Stated margin: the
overlap must hide at least half of the smaller of the two (ideal: all of it).
"""

from __future__ import annotations

import numpy as np
import pytest

from bigseg.io import open_volume
from bigseg.pipeline import segment
from bigseg.predict import SimulatedSpec, device_tasks, device_uses, overlap_times

BLOCK = (32, 32, 32)
MARGIN = 0.5


def _gpu_run(src, out, threads, spec):
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=threads, resources={"GPU": threads}, processes=True,
                      memory_limit="2GiB", dashboard_address="127.0.0.1:0", host="127.0.0.1") as cluster, \
            Client(cluster) as client:
        res = segment(str(src), str(out), client=client, predictor_spec=spec, diameter_um=10.0,
                      block_shape=BLOCK, gpu_resources=True)
        (uses,) = client.run(device_uses, "simulated").values()
        (tasks,) = client.run(device_tasks).values()
    return res, tasks, uses


@pytest.mark.slow
def test_predict_stage_overlaps_device_and_host(balls, tmp_path):
    src, _, _ = balls
    # About 0.3 s of device per block (two patches of 32×40×40): several times this machine's host work
    # per block even when it is loaded, so that the device is rarely waiting and the host work hides.
    spec = SimulatedSpec(3.0)
    res, tasks, uses = _gpu_run(src, tmp_path / "gpu.zarr", 3, spec)
    assert len(tasks) == len(uses) == res.n_blocks
    span, host, device = overlap_times(tasks, uses)
    assert host + device - span >= MARGIN * min(host, device), (span, host, device)
    # The control: one thread (no overlap) hides nothing, whatever the load.
    _, tasks, uses = _gpu_run(src, tmp_path / "serial.zarr", 1, spec)
    span, host, device = overlap_times(tasks, uses)
    assert host + device - span < MARGIN * min(host, device), (span, host, device)
    # The GPU form (maps on the GPU worker, image copy and seeds on the host stage) gives the one-stage labels.
    one = segment(str(src), str(tmp_path / "one.zarr"), scheduler="sync", predictor_spec=SimulatedSpec(0.0),
                  diameter_um=10.0, block_shape=BLOCK)
    assert {"predict", "seeds"} <= set(res.timings) and res.n_objects == one.n_objects
    np.testing.assert_array_equal(open_volume(res.labels_url).read_level(0), open_volume(one.labels_url).read_level(0))
    np.testing.assert_array_equal(open_volume(res.output).read_level(0), open_volume(one.output).read_level(0))
