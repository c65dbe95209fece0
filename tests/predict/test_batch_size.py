"""Patches per forward pass from the device's memory, checked without a GPU: the rule itself, the
simulated device's stated memory, the CPU default, and the CUDA measurement against a fake
``torch.cuda`` whose memory a fake network fills in proportion to its batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bigseg.errors import InputError
from bigseg.predict import CPU_BATCH, MAX_BATCH, SimulatedSpec, batch_for_memory
from bigseg.predict._card import ModelCard
from bigseg.predict._model import ModelPredictor, ModelSpec

GIB = 2**30


@pytest.mark.parametrize("free, per_patch, fixed, expected", [
    (16 * GIB, GIB, 0, 8),            # half of 16 GiB: 8 patches of 1 GiB
    (15.9 * GIB, GIB, 0, 4),          # 7.95 fit: the power of two below
    (140 * GIB, 0.1 * GIB, 0, MAX_BATCH),
    (4 * GIB, 0.5 * GIB, 0.5 * GIB, 2),   # (2 GiB - 0.5 GiB fixed) / 0.5 GiB = 3 → 2
    (2 * GIB, GIB, 0, 1),
])
def test_batch_for_memory(free, per_patch, fixed, expected):
    assert batch_for_memory(free, per_patch, fixed_bytes=fixed) == expected


def test_batch_grows_with_memory_and_stays_a_power_of_two():
    sizes = [batch_for_memory(g * GIB, 0.25 * GIB) for g in np.linspace(0.5, 64, 200)]
    assert sizes == sorted(sizes) and sizes[0] == 1 and sizes[-1] == MAX_BATCH
    assert {s & (s - 1) for s in sizes} == {0}


def test_no_patch_fits():
    with pytest.raises(InputError, match=r"one patch needs 3.00 GiB of device memory but only 0.5 × 4.00 GiB free"):
        batch_for_memory(4 * GIB, 2 * GIB, fixed_bytes=GIB)
    with pytest.raises(InputError, match="per_patch_bytes > 0"):
        batch_for_memory(4 * GIB, 0)


def test_simulated_device_batch_from_its_stated_memory():
    # 32×64×64 patches at 1 KiB per voxel = 128 MiB each; half of 1 GiB holds 4.
    assert SimulatedSpec(1.0).build().batch_size == 4
    assert SimulatedSpec(1.0, memory_gib=0.25).build().batch_size == 1
    assert SimulatedSpec(1.0, memory_gib=64.0).build().batch_size == MAX_BATCH
    assert SimulatedSpec(1.0, memory_gib=0.25, batch_size=3).build().batch_size == 3
    with pytest.raises(InputError, match="one patch needs 0.12 GiB"):
        SimulatedSpec(1.0, memory_gib=0.2).build()
    with pytest.raises(InputError, match="`memory_gib` must be a finite number > 0, got 0.0"):
        SimulatedSpec(1.0, memory_gib=0.0)


class _Pointwise(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([4 * x - 2, 2 - 4 * x, 3 * x - 1], dim=1)


def _card() -> ModelCard:
    return ModelCard(name="fake", architecture="unet", architecture_kwargs={"channels": [4, 8], "strides": [2]},
                     head="bcd", patch_size=(16, 16, 16))


def test_cpu_batch_is_fixed_and_a_given_batch_wins():
    assert ModelPredictor(_Pointwise(), _card(), spec=ModelSpec("x", device="cpu")).batch_size == CPU_BATCH
    assert ModelPredictor(_Pointwise(), _card(), spec=ModelSpec("x", device="cpu", batch_size=5)).batch_size == 5
    with pytest.raises(InputError, match=r"`batch_size` must be >= 1 \(or None: from the device's memory\), got 0"):
        ModelSpec("x", batch_size=0)


class _FakeCuda:
    """torch.cuda's memory counters for a device of ``free`` bytes on which a pass of n patches peaks at
    ``fixed + n * per_patch`` bytes above what was allocated before it."""

    def __init__(self, free: int, total: int, fixed: int, per_patch: int) -> None:
        self.free, self.total, self.fixed, self.per_patch = free, total, fixed, per_patch
        self.allocated, self.peak = 3 * GIB, 3 * GIB  # the network's weights and the like

    def forward_of(self, n: int) -> None:
        self.peak = max(self.peak, self.allocated + self.fixed + n * self.per_patch)

    def mem_get_info(self, device=None):
        return self.free, self.total

    def reset_peak_memory_stats(self, device=None):
        self.peak = self.allocated

    def memory_allocated(self, device=None):
        return self.allocated

    def max_memory_allocated(self, device=None):
        return self.peak

    def synchronize(self, device=None):
        pass


def test_cuda_batch_from_measured_memory(monkeypatch, caplog):
    fake = _FakeCuda(free=140 * GIB, total=140 * GIB, fixed=GIB, per_patch=3 * GIB)

    class _Counting(_Pointwise):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            fake.forward_of(x.shape[0])
            return super().forward(x)

    for name in ("mem_get_info", "reset_peak_memory_stats", "memory_allocated", "max_memory_allocated", "synchronize"):
        monkeypatch.setattr(torch.cuda, name, getattr(fake, name))
    pred = ModelPredictor(_Counting(), _card(), spec=ModelSpec("x", device="cpu"))
    # measured: 3 GiB per patch, 1 GiB fixed; (70 GiB - 1 GiB) / 3 GiB = 23 → 16
    assert pred._batch_from_memory() == 16
    fake.total = fake.free = 40 * GIB  # (20 - 1) / 3 = 6.3 → 4
    assert pred._batch_from_memory() == 4
    fake.free = 30 * GIB  # the total decides: other processes' use does not change the batch ...
    assert pred._batch_from_memory() == 4 and not caplog.records
    fake.free = 20 * GIB  # ... unless the batch no longer fits: (10 - 1) / 3 = 3 → 2, with a warning
    assert pred._batch_from_memory() == 2
    assert "2 patches per pass instead of 4" in caplog.text
    fake.free = 6 * GIB
    with pytest.raises(InputError, match="one patch needs 4.00 GiB of device memory"):
        pred._batch_from_memory()
