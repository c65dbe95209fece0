"""The training loop: batches → loss → AdamW, with validation, checkpoints and resume.

Output folder::

    OUT/config.json        the TrainConfig
    OUT/checkpoint.pt      latest state (model, optimizer, schedule, step); resume reads it
    OUT/loss.csv           step, loss parts, learning rate, elapsed seconds
    OUT/val.csv            step, F1 / AP at IoU 0.5 and 0.75 on synthetic validation volumes
    OUT/curves.png         both, drawn
    OUT/model/             the model package (card.json + weights.safetensors) at the end
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bigseg.errors import InputError
from bigseg.decode import DecodeParams
from bigseg.predict import (
    ModelCard,
    Provenance,
    TargetSpec,
    activate,
    build_network,
    full_kwargs,
    load_model_package,
    save_model_package,
    semantic_to_bcd,
    sliding_window,
)
from bigseg.train._augment import Augmenter
from bigseg.train._config import TrainConfig
from bigseg.train._curves import append_rows, plot_curves, truncate_rows
from bigseg.train._data import PatchSource, SyntheticPool, VolumeSource
from bigseg.train._losses import make_loss
from bigseg.synth._randomized import RandomNucleiConfig, random_nuclei
from bigseg.train._targets import DISTANCE_BETA, bcd_targets
from bigseg.train._validate import decode_bcd, score

__all__ = ["TrainResult", "train"]

logger = logging.getLogger(__name__)

_PATCH_PAD = 8  # voxels around each patch so targets near its edge see neighbouring nuclei


@dataclass(frozen=True)
class TrainResult:
    """Where the run wrote its package, and its last validation scores."""

    package: Path
    steps: int
    metrics: dict[str, float]


class _Batches(torch.utils.data.Dataset):
    """Batch ``i`` is a pure function of ``(seed, i)``: resumable and worker-safe."""

    def __init__(self, cfg: TrainConfig, volumes: VolumeSource | None) -> None:
        self.cfg = cfg
        self.volumes = volumes
        self.synth_cfg = _training_nuclei(cfg)
        self.pool: SyntheticPool | None = None
        self.augment = Augmenter(cfg.augment)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return self.cfg.steps

    def _source(self, rng: np.random.Generator) -> PatchSource:
        cfg = self.cfg
        use_synth = cfg.synthetic and (self.volumes is None or rng.random() < cfg.synthetic_fraction)
        if use_synth:
            if self.pool is None:
                self.pool = SyntheticPool(
                    cfg.seed, cfg.pool_volume, cfg.pool_size, cfg.refresh_every, self.synth_cfg,
                    preset_fraction=cfg.preset_fraction, presets=cfg.presets,
                    preset_max_downsample=cfg.preset_max_downsample, model_voxel_size=cfg.voxel_size,
                    model_diameter=cfg.diameter_um, max_upsample=cfg.max_upsample,
                )
            return self.pool
        assert self.volumes is not None  # config validation guarantees a source
        return self.volumes

    def __getitem__(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        torch.set_num_threads(1)
        rng = np.random.default_rng((self.cfg.seed, 2, step))
        crop = tuple(p + 2 * _PATCH_PAD for p in self.cfg.patch_size)
        inner = (slice(None),) + tuple(slice(_PATCH_PAD, _PATCH_PAD + p) for p in self.cfg.patch_size)
        xs, ys = [], []
        for _ in range(self.cfg.batch_size):
            image, labels = self._source(rng).draw(rng, crop, step)  # type: ignore[arg-type]
            image, labels = self.augment(image, labels, int(rng.integers(2**31)))
            ys.append(bcd_targets(labels, alpha=self.cfg.distance_alpha)[inner])
            xs.append(image[None][inner])
        return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))


def _training_nuclei(cfg: TrainConfig) -> RandomNucleiConfig:
    """Domain-randomised draws for training: sizes over ``cfg.scale_range``, z degraded over
    ``cfg.anisotropy_range``, and nuclei squashed in z (down to 0.4) as capped z upsampling leaves them."""
    return RandomNucleiConfig(
        diameter=cfg.diameter_um / (sum(cfg.voxel_size) / 3), diameter_range=cfg.scale_range,
        anisotropy_range=cfg.anisotropy_range, p_anisotropy=0.6, z_scale_range=(0.4, 1.7), p_z_scale=0.4,
    )


def _schedule(step: int, total: int, warmup: int) -> float:
    """Linear warm-up, then cosine decay to 2% of the peak learning rate."""
    if step < warmup:
        return (step + 1) / warmup
    t = (step - warmup) / max(total - warmup, 1)
    return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))


def _validation_set(cfg: TrainConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    """Fixed synthetic volumes (seeded apart from the training draws)."""
    synth = RandomNucleiConfig(diameter=cfg.diameter_um / (sum(cfg.voxel_size) / 3))
    return [random_nuclei(cfg.val_shape, seed=(cfg.seed, 3, i), config=synth) for i in range(cfg.val_volumes)]


def _validate(net: torch.nn.Module, cfg: TrainConfig, val_set: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    net.eval()
    scores: list[dict[str, float]] = []
    device = next(net.parameters()).device
    for image, labels in val_set:
        with torch.no_grad():
            maps = sliding_window(
                image, lambda x: activate(net(x), cfg.head), patch_size=cfg.infer_patch_size, batch_size=2,
                device=device,
            )
        if cfg.head == "semantic":
            maps = semantic_to_bcd(maps[0], cfg.distance_alpha)
        # Nuclei cut by the volume's faces are fragments in the truth: leave them out of the score.
        scores.append(score(decode_bcd(maps, DecodeParams()), labels, ignore_border=True))
    net.train()
    return {k: float(np.mean([s[k] for s in scores])) for k in scores[0] if k.startswith(("f1@", "ap@"))}


def _save_checkpoint(path: Path, step: int, net, opt, sched) -> None:  # type: ignore[no-untyped-def]
    tmp = path.with_suffix(".tmp")
    torch.save(
        {"step": step, "model": net.state_dict(), "optimizer": opt.state_dict(), "schedule": sched.state_dict(),
         "torch_rng": torch.get_rng_state()},
        tmp,
    )
    os.replace(tmp, path)


def _card(cfg: TrainConfig, metrics: dict[str, float], steps: int) -> ModelCard:
    from importlib.metadata import PackageNotFoundError, version

    try:
        bigseg_version = version("bigseg")
    except PackageNotFoundError:
        bigseg_version = ""
    data = ""
    if cfg.synthetic:
        data = "synthetic: bigseg.train domain-randomised nuclei"
        if cfg.preset_fraction:
            data += (f" + {cfg.preset_fraction:.0%} bigseg.synth presets {list(cfg.presets)} "
                     "(rescaled to the model's scale)")
    if cfg.pairs:
        data = (data + "; " if data else "") + ", ".join(p.image for p in cfg.pairs)
    if cfg.init:
        base_card = load_model_package(cfg.init).card
        base = base_card.name  # "default" names a different model in each release
        data += f"; fine-tuned from {cfg.init}" + (f" ({base})" if base != cfg.init else "")
        if not _same_scale(base_card, cfg):
            data += f", trained at nuclei {base_card.diameter_um} µm across in {tuple(base_card.voxel_size)} µm voxels"
    return ModelCard(
        name=cfg.name, architecture=cfg.architecture,  # type: ignore[arg-type]
        # All arguments, defaults included: the package must not depend on the registry's defaults.
        architecture_kwargs=full_kwargs(cfg.architecture, cfg.architecture_kwargs),
        head=cfg.head, voxel_size=cfg.voxel_size, diameter_um=cfg.diameter_um,  # type: ignore[arg-type]
        patch_size=cfg.infer_patch_size, halo=cfg.halo,
        targets=TargetSpec(distance_alpha=cfg.distance_alpha, distance_beta=DISTANCE_BETA),
        decoding=DecodeParams(),
        provenance=Provenance(
            data=data, steps=steps, command=cfg.command, seed=cfg.seed,
            created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            bigseg_version=bigseg_version, metrics={"synthetic_validation": metrics},
        ),
    )


def train(
    cfg: TrainConfig, *, resume: bool = True, volumes: VolumeSource | None = None,
    on_log: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train a network as ``cfg`` says and export a model package.

    Parameters
    ----------
    cfg : TrainConfig
        The run's settings; ``cfg.out`` receives checkpoints, curves and the package.
    resume : bool
        Continue from ``cfg.out/checkpoint.pt`` when it exists.
    volumes : VolumeSource, optional
        Labelled volumes already at the model's scale; by default ``cfg.pairs`` are read.
    on_log : callable, optional
        Called with each logged row (the CLI prints progress with it).

    Returns
    -------
    TrainResult
    """
    if cfg.architecture == "wnet3d":  # self-supervised: its own loop, no labels
        from bigseg.train._wnet import train_wnet

        train_wnet(cfg, on_log=on_log)
        return TrainResult(package=cfg.out_dir / "model", steps=cfg.steps, metrics={})
    out = cfg.out_dir
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2, default=list) + "\n")
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    device = _training_device(cfg.device)
    if volumes is None and cfg.pairs:
        from bigseg.train._volumes import load_pair

        volumes = VolumeSource(tuple(load_pair(p, model_voxel_size=cfg.voxel_size, model_diameter=cfg.diameter_um)
                                     for p in cfg.pairs))
    net = build_network(cfg.architecture, cfg.head, cfg.architecture_kwargs)
    resuming = resume and (out / "checkpoint.pt").is_file()
    if cfg.init and not resuming:
        _initialise(net, cfg)
    net.to(device)  # before the optimizer, so its state lives on the same device
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    warmup = max(1, min(200, cfg.steps // 20))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _schedule(s, cfg.steps, warmup))
    start = _resume(out / "checkpoint.pt", net, opt, sched, device) if resume else 0
    for name in ("loss.csv", "val.csv"):
        (out / name).unlink(missing_ok=True) if start == 0 else truncate_rows(out / name, start)
    loss_fn = make_loss(cfg.loss, cfg.head)
    val_set = _validation_set(cfg)
    loader = torch.utils.data.DataLoader(
        _Batches(cfg, volumes), batch_size=None, sampler=range(start, cfg.steps), num_workers=cfg.workers,
    )
    metrics: dict[str, float] = {}
    rows: list[dict[str, Any]] = []
    t0 = time.monotonic()
    net.train()
    step = start
    for step, (x, y) in enumerate(loader, start=start):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        loss, parts = loss_fn(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        done = step + 1
        if done % cfg.log_every == 0 or done == cfg.steps:
            row = {"step": done, "loss": float(loss.detach()), **parts, "lr": sched.get_last_lr()[0],
                   "elapsed_s": round(time.monotonic() - t0, 1)}
            rows.append(row)
            if on_log:
                on_log(row)
        if done % cfg.val_every == 0 or done == cfg.steps:
            metrics = _validate(net, cfg, val_set)
            append_rows(out / "val.csv", [{"step": done, **metrics}])
            logger.info("step %d validation %s", done, metrics)
            if on_log:
                on_log({"step": done, **metrics})
        if done % cfg.checkpoint_every == 0 or done == cfg.steps:
            append_rows(out / "loss.csv", rows)
            rows = []
            _save_checkpoint(out / "checkpoint.pt", done, net, opt, sched)
            plot_curves(out / "loss.csv", out / "val.csv", out / "curves.png")
    if not metrics:  # resumed from a finished run: nothing trained, score what is there
        metrics = _validate(net, cfg, val_set)
    net.cpu().eval()  # the package and the decoding choice are made on the CPU, wherever it trained
    card = _card(cfg, metrics, cfg.steps)
    if cfg.tune_decoding:
        card = _tune_decoding(net, card, out, cfg.max_upsample)
    package = save_model_package(net, card, out / "model", overwrite=True)
    return TrainResult(package=package, steps=cfg.steps, metrics=metrics)


def _tune_decoding(net: torch.nn.Module, card: ModelCard, out: Path, max_upsample: float | None) -> ModelCard:
    """The card with decoding thresholds chosen on the synthetic selection set."""
    from bigseg.predict import ModelPredictor, ModelSpec
    from bigseg.train._decoding import choose_decoding

    def predictor_for(voxel_size: tuple[float, float, float], diameter_um: float) -> ModelPredictor:
        spec = ModelSpec(model=str(out / "model"), voxel_size=voxel_size, diameter_um=diameter_um,
                         max_upsample=max_upsample)
        return ModelPredictor(net, card, spec=spec)

    choice = choose_decoding(predictor_for)
    logger.info("decoding thresholds chosen on synthetic volumes: %s", choice.summary())
    decoding = dataclasses.replace(choice.params, min_volume_um3=0.0)  # the size filter is the run's
    metrics = {**card.provenance.metrics, "decoding_selection": choice.summary()}
    provenance = card.provenance.model_copy(update={"metrics": metrics})
    return card.model_copy(update={"decoding": decoding, "provenance": provenance})


def _training_device(name: str) -> torch.device:
    """The torch device for ``--device``; a clear error when CUDA was asked for and is missing."""
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device {name} was asked for but torch sees no CUDA device; train with --device cpu")
    return torch.device(name)


def _same_scale(card: ModelCard, cfg: TrainConfig) -> bool:
    """Whether ``card``'s model was trained at ``cfg``'s scale (model voxel size and nucleus diameter)."""
    return (tuple(card.voxel_size), float(card.diameter_um)) == (tuple(cfg.voxel_size), float(cfg.diameter_um))


def _initialise(net: torch.nn.Module, cfg: TrainConfig) -> None:
    """Start from the weights of the package ``cfg.init`` (fine-tuning)."""
    loaded = load_model_package(cfg.init)  # type: ignore[arg-type]
    card = loaded.card
    ours = (cfg.architecture, full_kwargs(cfg.architecture, cfg.architecture_kwargs), cfg.head)
    theirs = (card.architecture, full_kwargs(card.architecture, card.architecture_kwargs), card.head)
    if json.dumps(ours, sort_keys=True) != json.dumps(theirs, sort_keys=True):  # lists and tuples alike
        raise InputError(
            f"--init {cfg.init!r} is a {card.architecture!r} network with head {card.head!r} and arguments "
            f"{json.dumps(theirs[1])}; this run builds {cfg.architecture!r} / {cfg.head!r} with {json.dumps(ours[1])}. "
            f"Pass --architecture {card.architecture} --head {card.head} --arch-kwargs '{json.dumps(theirs[1])}'"
        )
    if not _same_scale(card, cfg) and not cfg.init_other_scale:
        raise InputError(
            f"--init {cfg.init!r} was trained at nuclei {card.diameter_um} µm across in {card.voxel_size} µm "
            f"voxels; this run's scale is {cfg.diameter_um} µm in {cfg.voxel_size} µm voxels. "
            f"Pass --model-diameter {card.diameter_um} (and the same model voxel size) to fine-tune it, "
            "or --init-other-scale to start a model of this run's scale from its weights"
        )
    net.load_state_dict(loaded.network.state_dict())
    logger.info("starting from the weights of %s (%s)", card.name, loaded.source)


def _resume(path: Path, net, opt, sched, device: torch.device) -> int:  # type: ignore[no-untyped-def]
    if not path.is_file():
        return 0
    state = torch.load(path, map_location=device, weights_only=False)
    net.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["schedule"])
    torch.set_rng_state(state["torch_rng"].cpu())
    logger.info("resuming from %s at step %d", path, state["step"])
    return int(state["step"])
