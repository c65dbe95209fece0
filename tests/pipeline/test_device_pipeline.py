"""The predict stage overlaps device work with host work when the device's worker has threads.

The device is simulated (a sleep per batch of patches, releasing the GIL), so this runs anywhere.
Margin: in sequence the stage takes device + host time; overlapped it must take at most 0.8 of
that (ideal with device ≈ host per block: 0.5).
"""

from __future__ import annotations

import pytest

from bigseg.io import open_volume
from bigseg.pipeline import open_client, segment
from bigseg.predict import SimulatedSpec, busy_fraction, device_intervals
from bigseg.testing import same_partition

BLOCK = (32, 32, 32)
MARGIN = 0.8


def _run(src, out, threads, spec):
    with open_client("local", n_workers=1, threads_per_worker=threads, memory_limit="2GiB", task_threads=1) as client:
        res = segment(str(src), str(out), client=client, predictor_spec=spec, diameter_um=10.0, block_shape=BLOCK)
        (intervals,) = client.run(device_intervals, "simulated").values()
    return res, intervals


@pytest.mark.slow
def test_predict_stage_overlaps_device_and_host(balls, tmp_path):
    src, _, _ = balls
    host_run, _ = _run(src, tmp_path / "host.zarr", 1, SimulatedSpec(0.0))
    host = host_run.timings["predict"]
    # Device time of the whole stage = its host time (the ideal overlap then halves the stage).
    unit = sum(SimulatedSpec(1.0).build().device_seconds(b.read_roi.shape) for b in host_run.grid.blocks())
    res, intervals = _run(src, tmp_path / "overlap.zarr", 3, SimulatedSpec(host / unit))
    device = sum(e - s for s, e in intervals)
    assert len(intervals) == res.n_blocks
    assert res.timings["predict"] < MARGIN * (device + host), (res.timings["predict"], device, host)
    assert busy_fraction(intervals) > 0.6
    assert same_partition(open_volume(res.labels_url).read_level(0), open_volume(host_run.labels_url).read_level(0))
