"""Settings of a training run (one frozen value, saved with every checkpoint)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bigseg.errors import InputError
from bigseg.predict import ARCHITECTURES, HEADS, Architecture, Head, patch_divisor
from bigseg.train._augment import AugmentLevel
from bigseg.train._losses import LossName, check_loss
from bigseg.train._presets import PRESET_NAMES
from bigseg.train._targets import DISTANCE_ALPHA

__all__ = ["LabelledPair", "TrainConfig", "UnlabelledImage", "default_infer_patch_size"]

INFER_PATCH = 80  # the inference window per axis: its kept centre of 64 is a power of two (docs/architecture.md)


def default_infer_patch_size(architecture: str, kwargs: dict[str, Any] | None = None) -> tuple[int, int, int]:
    """The inference window written to a card: 80 per axis, rounded up to the architecture's downsampling
    (96 for SwinUNETR, which halves its input five times)."""
    # An unknown architecture is refused by TrainConfig, naming the choices.
    div = patch_divisor(architecture, kwargs) if architecture in ARCHITECTURES else 1
    side = -(-INFER_PATCH // div) * div
    return (side, side, side)



@dataclass(frozen=True, slots=True)
class LabelledPair:
    """An image file and its instance-label file (TIFF, zarr array or OME-Zarr image).

    ``voxel_size`` (µm, z y x) is needed when the file has none; ``diameter_um``
    is the typical nucleus diameter, used with the voxel size to bring the
    pair to the model's scale (without it only voxel sizes are matched).
    """

    image: str
    labels: str
    voxel_size: tuple[float, float, float] | None = None
    diameter_um: float | None = None


@dataclass(frozen=True, slots=True)
class UnlabelledImage:
    """An image file for self-supervised training (WNet3D); fields as in :class:`LabelledPair`."""

    image: str
    voxel_size: tuple[float, float, float] | None = None
    diameter_um: float | None = None


SELF_SUPERVISED = {"wnet3d": "soft_ncuts"}  # architecture → the loss it is trained with (no labels)


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """Everything that determines a training run.

    Lengths: ``patch_size`` in model voxels; ``voxel_size`` and
    ``diameter_um`` describe the model's scale (the synthetic nuclei are
    ``diameter_um / voxel_size`` voxels across). ``init`` names a model
    package (path or shipped name) whose weights the run starts from
    (fine-tuning); its architecture, head and scale must be the run's, unless
    ``init_other_scale`` says the run moves it to another nucleus scale (its
    weights are then only the starting point: transfer learning).
    ``tune_decoding`` chooses the card's decoding thresholds on synthetic
    volumes at the end (:func:`bigseg.train.choose_decoding`).

    Scale robustness: domain-randomised nuclei are ``scale_range`` times the
    model's diameter (log-uniform), their z degraded by a factor drawn from
    ``anisotropy_range``; preset volumes are brought to the model's scale
    with a diameter guess off by 0.6-1.6x and at most ``max_upsample``
    enlargement per axis, as inference does; each is drawn uniformly from
    ``presets`` (a name repeated weighs more), and rendered at a coarser voxel where
    it would be shrunk more than ``preset_max_downsample`` per axis (None: never). ``device`` is where the network
    trains (``"cpu"``, ``"cuda"`` or ``"cuda:N"``). ``distance_alpha`` is the distance target's
    length (voxels) inside a nucleus, ``tanh(d / alpha)``: NucMM's 8 suits 12-voxel nuclei; a model
    trained at a smaller diameter keeps the same peak with ``8 * diameter / 12``.
    """

    out: str
    name: str = "model"
    architecture: Architecture = "unet"
    architecture_kwargs: dict[str, Any] = field(default_factory=dict)
    head: Head = "bcd"
    loss: LossName = "bcd"
    steps: int = 2000
    batch_size: int = 4
    patch_size: tuple[int, int, int] = (48, 48, 48)
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    synthetic: bool = True
    pairs: tuple[LabelledPair, ...] = ()
    images: tuple[UnlabelledImage, ...] = ()
    synthetic_fraction: float = 1.0
    preset_fraction: float = 0.0
    presets: tuple[str, ...] = PRESET_NAMES
    preset_max_downsample: float | None = None
    augment: AugmentLevel = "light"
    voxel_size: tuple[float, float, float] = (1.0, 1.0, 1.0)
    diameter_um: float = 12.0
    scale_range: tuple[float, float] = (0.3, 1.7)
    anisotropy_range: tuple[float, float] = (1.0, 6.0)
    max_upsample: float = 2.0
    distance_alpha: float = DISTANCE_ALPHA
    pool_size: int = 16
    pool_volume: tuple[int, int, int] = (80, 80, 80)
    refresh_every: int = 4
    val_every: int = 250
    val_volumes: int = 2
    val_shape: tuple[int, int, int] = (64, 64, 64)
    checkpoint_every: int = 250
    log_every: int = 10
    workers: int = 1
    threads: int = 1
    infer_patch_size: tuple[int, int, int] = (INFER_PATCH, INFER_PATCH, INFER_PATCH)
    halo: tuple[int, int, int] = (16, 16, 16)
    init: str | None = None
    init_other_scale: bool = False
    tune_decoding: bool = True
    device: str = "cpu"
    command: str = ""

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise InputError(f"unknown architecture {self.architecture!r}; choose one of {sorted(ARCHITECTURES)}")
        if self.head not in HEADS:
            raise InputError(f"unknown head {self.head!r}; choose one of {sorted(HEADS)}")
        if self.architecture in SELF_SUPERVISED:
            self._check_self_supervised()
        elif self.images:
            raise InputError(
                f"images without labels train only a self-supervised architecture ({sorted(SELF_SUPERVISED)}); "
                f"give --labels for each --image to train {self.architecture!r}"
            )
        else:
            check_loss(self.loss, self.head)
        for name in ("steps", "batch_size", "val_every", "val_volumes", "checkpoint_every", "log_every", "threads",
                     "pool_size", "refresh_every"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"`{name}` must be >= 1, got {getattr(self, name)}")
        if self.workers < 0:
            raise InputError(f"`workers` must be >= 0, got {self.workers}")
        div = patch_divisor(self.architecture, self.architecture_kwargs)
        for name in ("patch_size", "infer_patch_size"):
            p = tuple(int(v) for v in getattr(self, name))
            if len(p) != 3 or any(v < div or v % div for v in p):
                raise InputError(
                    f"`{name}` {p} must be 3 multiples of {div} (the downsampling of {self.architecture!r}); "
                    f"e.g. {tuple(max(div, -(-v // div) * div) for v in p)}"
                )
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise InputError(f"`lr` must be > 0, got {self.lr}")
        if not self.synthetic and not self.pairs and not self.images:
            raise InputError("no training data: pass labelled pairs (CLI: --image/--labels) or use --synthetic")
        for name in ("synthetic_fraction", "preset_fraction"):
            if not 0 <= getattr(self, name) <= 1:
                raise InputError(f"`{name}` must be in [0, 1], got {getattr(self, name)}")
        unknown = sorted(set(self.presets) - set(PRESET_NAMES))
        if unknown or not self.presets:
            raise InputError(f"`presets` must be names from {list(PRESET_NAMES)} (repeat one to weight it), "
                             f"got {list(self.presets)}")
        for name in ("scale_range", "anisotropy_range"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise InputError(f"`{name}` must be (low, high) with 0 < low <= high, got {(lo, hi)}")
        if not (math.isfinite(self.distance_alpha) and self.distance_alpha > 0):
            raise InputError(f"`distance_alpha` must be a finite number > 0, got {self.distance_alpha}")
        if self.preset_max_downsample is not None and not (
                math.isfinite(self.preset_max_downsample) and self.preset_max_downsample >= 1):
            raise InputError(f"`preset_max_downsample` must be >= 1 (or None), got {self.preset_max_downsample}")
        if not (math.isfinite(self.max_upsample) and self.max_upsample >= 1):
            raise InputError(f"`max_upsample` must be >= 1, got {self.max_upsample}")
        if not (self.device == "cpu" or self.device == "cuda" or self.device.startswith("cuda:")):
            raise InputError(f"`device` must be 'cpu', 'cuda' or 'cuda:N', got {self.device!r} (CLI: --device)")
        if self.augment not in ("none", "light", "full"):
            raise InputError(f"`augment` must be 'none', 'light' or 'full', got {self.augment!r} (CLI: --augment)")

    def _check_self_supervised(self) -> None:
        if self.head != "semantic" or self.loss != SELF_SUPERVISED[self.architecture]:
            raise InputError(
                f"{self.architecture!r} is a semantic model trained with {SELF_SUPERVISED[self.architecture]!r}; "
                f"got head {self.head!r} and loss {self.loss!r} (leave --head and --loss out)"
            )
        if self.pairs or not self.images:
            raise InputError(
                f"{self.architecture!r} trains without labels on your own images: pass --image (no --labels); "
                f"got {len(self.images)} images and {len(self.pairs)} labelled pairs"
            )

    @property
    def out_dir(self) -> Path:
        return Path(self.out)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        d = dict(d)
        if "voxel_size_um" in d:  # checkpoints written before the one spelling `voxel_size`
            d["voxel_size"] = d.pop("voxel_size_um")
        d["pairs"] = tuple(LabelledPair(**p) if isinstance(p, dict) else p for p in d.get("pairs", ()))
        d["images"] = tuple(UnlabelledImage(**p) if isinstance(p, dict) else p for p in d.get("images", ()))
        for key in ("patch_size", "voxel_size", "pool_volume", "infer_patch_size", "halo", "val_shape",
                    "scale_range", "anisotropy_range", "presets"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d)
