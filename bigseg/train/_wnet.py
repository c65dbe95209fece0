"""Self-supervised WNet3D training (CellSeg3D) on the user's own unlabelled volumes.

Each step draws random patches at the model's scale, and minimises, with equal
weights, the soft N-cuts loss of the encoder's K classes (radius 2, intensity
σ 1, spatial σ 4: CellSeg3D's defaults; intensities in units of each patch's
standard deviation) and the decoder's mean squared
reconstruction error. The first third of the steps (the warm start) instead fit
the encoder's class 1 to the voxels above the volume's own Otsu level: soft
N-cuts of a sparse foreground has a deep but narrow minimum at the nuclei and a
broad basin of large blobs around them, which a randomly started encoder falls
into (docs/models.md, *Why WNet3D needs a warm start*). At the end the class
with the brighter mean intensity becomes the foreground; the choice and the
class means go on the card::

    OUT/config.json  OUT/loss.csv  OUT/model/ (card.json: head "semantic",
    architecture_kwargs.foreground_class, decoder "voronoi-otsu")
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from bigseg.errors import InputError
from bigseg.predict import ModelCard, Provenance, build_network, full_kwargs, save_model_package
from bigseg.train._config import TrainConfig
from bigseg.train._curves import append_rows
from bigseg.train._ncuts import soft_ncuts

__all__ = ["ArraySource", "ImageSource", "choose_foreground", "train_wnet"]

logger = logging.getLogger(__name__)

NCUTS_RADIUS = 2.0
NCUTS_INTENSITY_SIGMA = 1.0
NCUTS_SPATIAL_SIGMA = 4.0
WARM_START_FRACTION = 1 / 3  # of the steps: the encoder's class 1 fits the voxels above the Otsu level


class ImageSource(Protocol):
    """Anything that cuts normalised model-scale image patches (``draw(rng, shape) → (image, labels)``)
    and knows its whole volume's Otsu level on that normalised scale (``threshold``)."""

    @property
    def threshold(self) -> float: ...

    def draw(self, rng: np.random.Generator, shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]: ...


class ArraySource:
    """An image already normalised and at the model's scale, held in memory (tests, small volumes)."""

    def __init__(self, image: np.ndarray) -> None:
        if image.ndim != 3:
            raise InputError(f"`image` must be a (Z, Y, X) volume, got shape {image.shape}")
        self.image = np.asarray(image, dtype=np.float32)
        from skimage.filters import threshold_otsu

        self._threshold = float(threshold_otsu(np.clip(self.image, 0, 1)))

    @property
    def threshold(self) -> float:
        """Otsu level of the whole image (clipped to [0, 1], as the pipeline's normalisation)."""
        return self._threshold

    def draw(self, rng: np.random.Generator, shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        out = np.zeros(shape, np.float32)
        start = [int(rng.integers(0, max(n - s, 0) + 1)) for n, s in zip(self.image.shape, shape)]
        crop = self.image[tuple(slice(a, a + s) for a, s in zip(start, shape))]
        out[tuple(slice(0, c) for c in crop.shape)] = crop
        return out, np.zeros(shape, np.uint32)


def _batch(sources: Sequence[ImageSource], cfg: TrainConfig, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` patches ``(N, 1, Z, Y, X)`` and each one's volume Otsu level ``(N, 1, 1, 1, 1)``."""
    picked = [sources[int(rng.integers(len(sources)))] for _ in range(cfg.batch_size)]
    xs = [src.draw(rng, cfg.patch_size)[0] for src in picked]
    levels = torch.tensor([float(src.threshold) for src in picked], dtype=torch.float32).view(-1, 1, 1, 1, 1)
    return torch.from_numpy(np.stack(xs)[:, None]), levels


def _standardise(x: torch.Tensor) -> torch.Tensor:
    """Each patch in units of its own standard deviation: the affinities' intensity σ of 1 then
    separates nuclei from background whatever the normalisation (on [0, 1] intensities it would not)."""
    mean = x.mean(dim=(1, 2, 3, 4), keepdim=True)
    std = x.std(dim=(1, 2, 3, 4), keepdim=True).clamp_min(1e-6)
    return (x - mean) / std


def choose_foreground(net: Any, sources: Sequence[ImageSource], cfg: TrainConfig, n_patches: int = 8) -> tuple[int, list[float]]:
    """The class with the brightest mean intensity (weighted by its probability) on fixed patches."""
    rng = np.random.default_rng((cfg.seed, 5))
    k = net.num_classes
    weighted, mass = np.zeros(k), np.zeros(k)
    net.eval()
    with torch.no_grad():
        for _ in range(n_patches):
            x, _ = _batch(sources, cfg, rng)
            prob = torch.softmax(net.classes(x), dim=1)
            weighted += (prob * x).sum(dim=(0, 2, 3, 4)).double().numpy()
            mass += prob.sum(dim=(0, 2, 3, 4)).double().numpy()
    means = (weighted / np.maximum(mass, 1e-12)).tolist()
    return int(np.argmax(means)), [round(m, 6) for m in means]


def _card(cfg: TrainConfig, kwargs: dict[str, Any], fg: int, means: list[float], steps: int) -> ModelCard:
    data = ", ".join(p.image for p in cfg.images) or "in-memory volumes"
    return ModelCard(
        name=cfg.name,
        description=(
            f"WNet3D (CellSeg3D), trained self-supervised without labels. Semantic (foreground) model: "
            f"class {fg} of {kwargs['num_classes']} is the foreground (brighter mean intensity: "
            f"{', '.join(f'{m:.3f}' for m in means)}). Decoded by Voronoi-Otsu unless --decoder says otherwise."
        ),
        architecture="wnet3d", architecture_kwargs=kwargs, head="semantic",
        voxel_size=cfg.voxel_size, diameter_um=cfg.diameter_um,  # type: ignore[arg-type]
        patch_size=cfg.infer_patch_size, halo=cfg.halo, decoder="voronoi-otsu",
        provenance=Provenance(
            data=f"self-supervised: {data}", steps=steps, command=cfg.command, seed=cfg.seed,
            created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            metrics={"foreground_class": fg, "class_mean_intensity": means, "warm_start_steps": _warm_steps(steps),
                     "loss": "0.5 soft N-cuts (r 2, σI 1, σX 4) + 0.5 reconstruction MSE, after a warm start "
                             "(class 1 fits the voxels above the volume's Otsu level, BCE)"},
        ),
    )


def _warm_steps(steps: int) -> int:
    return int(steps * WARM_START_FRACTION)


def _step_loss(net: Any, x: torch.Tensor, level: torch.Tensor, warm: bool) -> tuple[torch.Tensor, dict[str, float]]:
    """The warm start's BCE of class 1 against ``x > level``, else 0.5 soft N-cuts + 0.5 reconstruction."""
    nan = float("nan")
    if warm:
        # forward() is class 1's logit while foreground_class is 1 (its value until training ends).
        bce = F.binary_cross_entropy_with_logits(net(x), (x > level).float())
        return bce, {"loss_warm_start": float(bce.detach()), "loss_ncuts": nan, "loss_reconstruction": nan}
    prob, recon = net.reconstruct(x)
    ncuts = soft_ncuts(prob, _standardise(x), radius=NCUTS_RADIUS, intensity_sigma=NCUTS_INTENSITY_SIGMA,
                       spatial_sigma=NCUTS_SPATIAL_SIGMA)
    rec = F.mse_loss(recon, x)
    return 0.5 * ncuts + 0.5 * rec, {"loss_warm_start": nan, "loss_ncuts": float(ncuts.detach()),
                                     "loss_reconstruction": float(rec.detach())}


def train_wnet(
    cfg: TrainConfig,
    *,
    sources: Sequence[ImageSource] | None = None,
    on_log: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[Any, ModelCard]:
    """Train WNet3D on ``cfg.images`` (or ``sources``) and write the package to ``cfg.out/model``.

    Returns the trained network and its card.
    """
    out = cfg.out_dir
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2, default=list) + "\n")
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    if sources is None:
        from bigseg.train._volumes import load_image

        sources = [load_image(i, model_voxel_size=cfg.voxel_size, model_diameter=cfg.diameter_um) for i in cfg.images]
    if not sources:
        raise InputError("WNet3D trains on your own images: pass at least one --image")
    net: Any = build_network("wnet3d", "semantic", {**cfg.architecture_kwargs, "foreground_class": 1})
    warm_steps = _warm_steps(cfg.steps)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    (out / "loss.csv").unlink(missing_ok=True)
    rows: list[dict[str, Any]] = []
    t0 = time.monotonic()
    net.train()
    for step in range(cfg.steps):
        x, level = _batch(sources, cfg, np.random.default_rng((cfg.seed, 4, step)))
        loss, parts = _step_loss(net, x, level, warm=step < warm_steps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        done = step + 1
        if done % cfg.log_every == 0 or done == cfg.steps:
            row = {"step": done, "loss": float(loss.detach()), **parts, "elapsed_s": round(time.monotonic() - t0, 1)}
            rows.append(row)
            if on_log:
                on_log(row)
    append_rows(out / "loss.csv", rows)
    fg, means = choose_foreground(net, sources, cfg)
    logger.info("WNet3D: class %d is the foreground (class mean intensities %s)", fg, means)
    net.foreground_class = fg
    kwargs = {**full_kwargs("wnet3d", cfg.architecture_kwargs), "foreground_class": fg}
    card = _card(cfg, kwargs, fg, means, cfg.steps)
    save_model_package(net, card, out / "model", overwrite=True)
    return net, card
