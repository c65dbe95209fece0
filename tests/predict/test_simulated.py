"""The simulated device: its time follows the patch voxels, its maps are point-wise, and
it records when it was busy."""

from __future__ import annotations

import time

import numpy as np
import pytest

from bigseg.errors import InputError
from bigseg.predict import SimulatedSpec, busy_fraction, device_intervals, get_predictor, reset_device_intervals


def test_device_time_follows_patch_voxels():
    pred = SimulatedSpec(2.0, patch_size=(16, 16, 16), overlap=0.25).build()
    # 16 voxels: one patch per axis; 28 voxels: step 12 → 2 patches per axis.
    assert pred.device_seconds((16, 16, 16)) == pytest.approx(2.0 * 16**3 / 1e6)
    assert pred.device_seconds((28, 16, 28)) == pytest.approx(4 * 2.0 * 16**3 / 1e6)


def test_predict_sleeps_and_records_the_device():
    spec = SimulatedSpec(0.5, patch_size=(16, 32, 32), batch_size=2)
    pred = get_predictor(spec)
    image = np.random.default_rng(0).random((20, 40, 40), dtype=np.float32)
    reset_device_intervals()
    t0 = time.perf_counter()
    maps = pred.predict(image)
    elapsed = time.perf_counter() - t0
    expected = spec.build().device_seconds(image.shape)
    assert elapsed >= expected
    (start, end), = device_intervals("simulated")
    # the recorded device interval is the sleep: at least the asked time, inside the call (no upper
    # bound in seconds: a loaded machine oversleeps)
    assert expected <= end - start <= elapsed
    assert maps.shape == (3, *image.shape) and maps.dtype == np.float32
    np.testing.assert_array_equal(maps[0], image)
    np.testing.assert_array_equal(maps[2], 2 * image - 1)


def test_zero_rate_never_touches_the_device():
    reset_device_intervals()
    SimulatedSpec(0.0).build().predict(np.zeros((8, 8, 8), np.float32))
    assert device_intervals("simulated") == []


@pytest.mark.parametrize("kwargs, match", [
    ({"seconds_per_mvox": -1.0}, "`seconds_per_mvox` must be a finite number >= 0, got -1.0"),
    ({"patch_size": (0, 8, 8)}, r"`patch_size` must be 3 ints >= 1 \(z, y, x\), got \(0, 8, 8\)"),
    ({"overlap": 1.0}, r"`overlap` must be in \[0, 1\), got 1.0"),
    ({"batch_size": 0}, r"`batch_size` must be >= 1 \(or None: from `memory_gib`\), got 0"),
])
def test_bad_spec(kwargs, match):
    with pytest.raises(InputError, match=match):
        SimulatedSpec(**kwargs)


def test_busy_fraction_skips_the_first_use():
    # Busy 0-1 (first, skipped), 1-2, idle 2-3, busy 3-4: 2 of the 3 s after the first use.
    assert busy_fraction([(3.0, 4.0), (0.0, 1.0), (1.0, 2.0)]) == pytest.approx(2 / 3)
    assert busy_fraction([(0.0, 1.0), (2.0, 3.0)], skip_first=False) == pytest.approx(2 / 3)
    assert np.isnan(busy_fraction([(0.0, 1.0)]))
