"""The training loop: outputs, a loadable package, exact resume, CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from typer.testing import CliRunner

from bigseg.errors import InputError
from bigseg.predict import load_model_package
from bigseg.synth import random_nuclei
from bigseg.train import LabelledPair, TrainConfig, train


def test_train_writes_curves_checkpoint_and_package(tmp_path: Path, tiny: dict) -> None:
    cfg = TrainConfig(out=str(tmp_path / "run"), name="tiny", steps=4, val_every=2, checkpoint_every=2, log_every=1, **tiny)
    result = train(cfg)
    run = tmp_path / "run"
    for name in ("config.json", "checkpoint.pt", "loss.csv", "val.csv", "curves.png"):
        assert (run / name).is_file(), name
    with (run / "loss.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert {"loss", "loss_foreground", "loss_contour", "loss_distance", "lr"} <= set(rows[0])
    with (run / "val.csv").open() as fh:
        assert [int(r["step"]) for r in csv.DictReader(fh)] == [2, 4]
    loaded = load_model_package(result.package)
    assert loaded.card.name == "tiny" and loaded.card.provenance.steps == 4
    assert loaded.card.diameter_um == 6.0 and loaded.card.halo == (4, 4, 4)
    assert "f1@0.5" in loaded.card.provenance.metrics["synthetic_validation"]


def test_distance_alpha_sets_the_distance_target_and_the_card(tmp_path: Path, tiny: dict) -> None:
    """A coarse model's distance target keeps the fine model's peak: tanh(d / alpha) with a shorter alpha."""
    from bigseg.train._loop import _Batches

    def first_batch(alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
        return _Batches(TrainConfig(out=str(tmp_path / "b"), steps=1, distance_alpha=alpha, **tiny), None)[0]

    x8, y8 = first_batch(8.0)
    x3, y3 = first_batch(3.0)
    assert torch.equal(x8, x3) and torch.equal(y8[:, :2], y3[:, :2])  # same draws, same foreground and contour
    inside = y8[:, 2] > 0
    assert inside.any()
    d_in = 8.0 * torch.atanh(y8[:, 2][inside].double())
    assert torch.allclose(y3[:, 2][inside].double(), torch.tanh(d_in / 3.0), atol=1e-4)
    assert float(y3[:, 2].max()) > float(y8[:, 2].max())
    result = train(TrainConfig(out=str(tmp_path / "run"), steps=1, val_every=1, checkpoint_every=1, distance_alpha=3.0,
                               **tiny))
    assert load_model_package(result.package).card.targets.distance_alpha == 3.0
    with pytest.raises(InputError, match=r"`distance_alpha` must be a finite number > 0, got 0.0"):
        TrainConfig(out="x", distance_alpha=0.0)


def test_resume_gives_the_same_weights(tmp_path: Path, tiny: dict) -> None:
    """4 steps in one go == 2 steps, stop, resume for 2 more (seeded batches, saved optimiser state)."""
    once = train(TrainConfig(out=str(tmp_path / "once"), steps=4, val_every=4, checkpoint_every=2, seed=3, **tiny))
    first = TrainConfig(out=str(tmp_path / "twice"), steps=4, val_every=4, checkpoint_every=2, seed=3, **tiny)
    # Stop after step 2 by training a 4-step schedule in a run limited to 2 steps' worth of batches:
    _train_until(first, 2)
    twice = train(first, resume=True)
    a = load_model_package(once.package).network.state_dict()
    b = load_model_package(twice.package).network.state_dict()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    with (tmp_path / "twice" / "loss.csv").open() as fh:
        assert [int(r["step"]) for r in csv.DictReader(fh)][-1] == 4


def _train_until(cfg: TrainConfig, stop: int) -> None:
    """Run ``cfg`` but interrupt it right after the checkpoint at ``stop``."""
    import bigseg.train._loop as loop

    real = loop._save_checkpoint

    def save_then_stop(path, step, *args):  # type: ignore[no-untyped-def]
        real(path, step, *args)
        if step == stop:
            raise KeyboardInterrupt

    loop._save_checkpoint = save_then_stop
    try:
        with pytest.raises(KeyboardInterrupt):
            train(cfg)
    finally:
        loop._save_checkpoint = real


def test_init_starts_from_a_package_and_checks_it_fits(tmp_path: Path, tiny: dict) -> None:
    """--init: step 0 holds the package's weights (zero steps trained = the same network)."""
    base = train(TrainConfig(out=str(tmp_path / "base"), steps=2, val_every=2, checkpoint_every=2, seed=1, **tiny))
    as_tuples = {**tiny, "architecture_kwargs": {"channels": (4, 8, 16), "strides": (2, 2)}}  # = the card's lists
    tuned = train(TrainConfig(out=str(tmp_path / "tuned"), steps=1, val_every=1, checkpoint_every=1, seed=2,
                              lr=1e-12, init=str(base.package), **as_tuples))
    a = load_model_package(base.package).network.state_dict()
    b = load_model_package(tuned.package).network.state_dict()
    fresh = train(TrainConfig(out=str(tmp_path / "fresh"), steps=1, val_every=1, checkpoint_every=1, seed=2,
                              lr=1e-12, **tiny))
    c = load_model_package(fresh.package).network.state_dict()
    weights = [k for k in a if k.endswith("weight") and a[k].ndim > 1]
    assert weights and all(torch.allclose(a[k], b[k], atol=1e-6) for k in weights)
    assert not all(torch.allclose(a[k], c[k], atol=1e-6) for k in weights)
    card = load_model_package(tuned.package).card
    assert f"fine-tuned from {base.package}" in card.provenance.data
    wider = {**tiny, "architecture_kwargs": {"channels": [8, 8, 16], "strides": [2, 2]}}
    with pytest.raises(InputError, match=r"is a 'unet' network .* Pass --architecture unet --head bcd --arch-kwargs"):
        train(TrainConfig(out=str(tmp_path / "w"), steps=1, init=str(base.package), **wider))
    with pytest.raises(InputError, match=r"trained at nuclei 6.0 µm .* Pass --model-diameter 6.0"):
        train(TrainConfig(out=str(tmp_path / "d"), steps=1, init=str(base.package), **{**tiny, "diameter_um": 9.0}))
    # Moving it to another scale on purpose: its weights start the run, and the card says where they came from.
    moved = train(TrainConfig(out=str(tmp_path / "m"), steps=1, val_every=1, checkpoint_every=1, lr=1e-12,
                              init=str(base.package), init_other_scale=True,
                              **{**tiny, "diameter_um": 9.0}))
    m = load_model_package(moved.package)
    assert m.card.diameter_um == 9.0 and all(torch.allclose(a[k], m.network.state_dict()[k], atol=1e-6) for k in weights)
    assert "trained at nuclei 6.0 µm across" in m.card.provenance.data


def test_train_on_labelled_files(tmp_path: Path, tiny: dict) -> None:
    img, lab = random_nuclei((20, 28, 28), seed=1)
    tifffile.imwrite(tmp_path / "img.tif", (img * 1000).astype(np.uint16))
    tifffile.imwrite(tmp_path / "lab.tif", lab.astype(np.uint16))
    pair = LabelledPair(str(tmp_path / "img.tif"), str(tmp_path / "lab.tif"), voxel_size=(1.0, 0.5, 0.5), diameter_um=6.0)
    cfg = TrainConfig(out=str(tmp_path / "run"), steps=2, val_every=2, checkpoint_every=2, synthetic=False,
                      pairs=(pair,), augment="full", **tiny)
    assert train(cfg).package.is_dir()


def test_config_errors() -> None:
    with pytest.raises(InputError, match="no training data"):
        TrainConfig(out="x", synthetic=False)
    with pytest.raises(InputError, match=r"loss 'dice' does not fit the 'bcd' head; use one of \['bcd'\]"):
        TrainConfig(out="x", loss="dice")
    with pytest.raises(InputError, match=r"`patch_size` \(20, 48, 48\) must be 3 multiples of 8.*e.g. \(24, 48, 48\)"):
        TrainConfig(out="x", patch_size=(20, 48, 48))
    with pytest.raises(InputError, match="unknown architecture 'vnet'"):
        TrainConfig(out="x", architecture="vnet")
    with pytest.raises(InputError, match=r"`scale_range` must be \(low, high\) with 0 < low <= high, got \(1.5, 0.5\)"):
        TrainConfig(out="x", scale_range=(1.5, 0.5))
    with pytest.raises(InputError, match=r"`device` must be 'cpu', 'cuda' or 'cuda:N', got 'gpu'"):
        TrainConfig(out="x", device="gpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error where no CUDA device is present")
def test_cuda_without_a_gpu_is_a_clear_error(tmp_path: Path, tiny: dict) -> None:
    with pytest.raises(InputError, match=r"--device cuda was asked for but torch sees no CUDA device"):
        train(TrainConfig(out=str(tmp_path / "run"), steps=1, device="cuda", **tiny))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_train_on_cuda_writes_a_cpu_package(tmp_path: Path, tiny: dict) -> None:
    result = train(TrainConfig(out=str(tmp_path / "run"), steps=2, val_every=2, checkpoint_every=2, device="cuda",
                               **tiny))
    loaded = load_model_package(result.package)
    assert all(p.device.type == "cpu" for p in loaded.network.parameters())
    resumed = train(TrainConfig(out=str(tmp_path / "run"), steps=3, val_every=3, checkpoint_every=3, device="cuda",
                                **tiny))
    assert resumed.steps == 3


def test_cli_train(tmp_path: Path, tiny: dict) -> None:
    from bigseg.cli import app

    args = ["train", str(tmp_path / "run"), "--steps", "2", "--batch-size", "1", "--patch-size", "16", "16", "16",
            "--arch-kwargs", json.dumps(tiny["architecture_kwargs"]), "--val-every", "2", "--checkpoint-every", "2",
            "--workers", "0", "--model-diameter", "6", "--name", "cli_model", "--pool-size", "2",
            "--pool-volume", "24", "24", "24", "--val-volumes", "1", "--val-shape", "24", "24", "24",
            "--infer-patch-size", "16", "16", "16", "--no-synthetic", "--synthetic", "--no-tune-decoding",
            "--init-other-scale"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "model package:" in result.output and "f1@0.5=" in result.output
    card = json.loads((tmp_path / "run" / "model" / "card.json").read_text())
    assert card["name"] == "cli_model"
    # The recorded command reproduces the run: options that differ from their defaults, in order.
    command = card["provenance"]["command"]
    assert command.startswith(f"bigseg train {tmp_path / 'run'} --arch-kwargs")
    assert "--steps 2 --batch-size 1 --patch-size 16 16 16" in command and "--synthetic" not in command
    assert command.endswith("--no-tune-decoding --init-other-scale")  # a flag is named, not given a value
    bad = CliRunner().invoke(app, ["train", str(tmp_path / "x"), "--image", "a.tif"])
    assert bad.exit_code == 2 and "error: give one --labels per --image" in bad.output


def test_the_cli_default_inference_window_fits_every_architecture() -> None:
    """80 per axis, rounded up to each architecture's downsampling: SwinUNETR (32) gets 96, and
    TrainConfig accepts every default (the CLI's SwinUNETR command failed with a fixed 80)."""
    from bigseg.predict import ARCHITECTURES, patch_divisor
    from bigseg.train import default_infer_patch_size

    assert default_infer_patch_size("swin_unetr") == (96, 96, 96)
    assert default_infer_patch_size("unet") == (80, 80, 80)
    for arch in ARCHITECTURES:
        window = default_infer_patch_size(arch)
        div = patch_divisor(arch)
        assert all(80 <= w < 80 + div and w % div == 0 for w in window), (arch, window)
        if arch != "wnet3d":  # self-supervised: needs images
            TrainConfig(out="x", architecture=arch, infer_patch_size=window,  # type: ignore[arg-type]
                        patch_size=(div * max(1, 32 // div),) * 3)
