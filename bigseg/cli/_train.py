"""``bigseg train``: train a network on labelled volumes and/or synthetic nuclei."""

from __future__ import annotations

import json
import shlex
from typing import Optional

import typer

__all__ = ["register"]


def _train(
    ctx: typer.Context,
    out: str = typer.Argument(..., help="Output folder (checkpoints, curves, and the model package in OUT/model)."),
    image: list[str] | None = typer.Option(
        None, "--image", help="Training image (TIFF or zarr); repeat with --labels (wnet3d: no --labels)."
    ),
    labels: list[str] | None = typer.Option(None, "--labels", help="Instance labels for each --image, in order."),
    voxel_size: tuple[float, float, float] | None = typer.Option(
        None, "--voxel-size", help="Voxel size Z Y X (µm) of the --image files, where they state none."
    ),
    diameter: float | None = typer.Option(None, "--diameter", help="Typical nucleus diameter (µm) in the --image files."),
    synthetic: bool = typer.Option(True, "--synthetic/--no-synthetic", help="Draw synthetic nuclei on the fly."),
    synthetic_fraction: float = typer.Option(1.0, help="Share of patches drawn from synthetic data when files are given too."),
    preset_fraction: float = typer.Option(0.0, help="Share of synthetic volumes from bigseg.synth presets (rest: domain-randomised)."),
    presets: list[str] | None = typer.Option(
        None, "--presets", help="Presets drawn from, uniformly; repeat to add one, repeat a name to weight it "
        "[default: confocal, lightsheet-organoid, dense, mesospim]."),
    preset_max_downsample: Optional[float] = typer.Option(
        None, help="Render a preset at a coarser voxel where it would be shrunk more than this per axis "
        "(a coarse model's presets stay small) [default: never]."),
    architecture: str = typer.Option("unet", help="basic_unet, unet, segresnet, swin_unetr, cellsegnet (3DCellSeg) or wnet3d (CellSeg3D, self-supervised: --image without --labels)."),
    arch_kwargs: str = typer.Option("{}", help='Architecture arguments as JSON, e.g. \'{"channels": [8, 16, 32], "strides": [2, 2]}\'.'),
    head: str | None = typer.Option(
        None, help="bcd (foreground, contour, distance; the default) or semantic (foreground; wnet3d's only head)."
    ),
    loss: str | None = typer.Option(None, help="bcd; for semantic heads dice, dice_ce, generalized_dice, tversky or 3dcellseg (3DCellSeg, Wang et al. 2022)."),
    steps: int = typer.Option(2000, help="Optimizer steps."),
    batch_size: int = typer.Option(4, help="Patches per step."),
    patch_size: tuple[int, int, int] = typer.Option((48, 48, 48), help="Training patch Z Y X (model voxels)."),
    lr: float = typer.Option(2e-3, help="Peak learning rate (AdamW, warm-up then cosine decay)."),
    seed: int = typer.Option(0, help="Seed: the same seed gives the same run."),
    augment: str = typer.Option("light", help="Augmentation: none, light or full."),
    name: str = typer.Option("model", help="Model name written to the card."),
    model_diameter: float = typer.Option(12.0, help="Nucleus diameter (µm, at 1 µm voxels) the model is trained at."),
    scale_range: tuple[float, float] = typer.Option(
        (0.3, 1.7), help="Synthetic nuclei LO..HI times the model diameter (scale robustness)."
    ),
    anisotropy_range: tuple[float, float] = typer.Option(
        (1.0, 6.0), help="Simulated z step LO..HI times the x-y voxel (blur, subsample, interpolate back)."
    ),
    max_upsample: float = typer.Option(2.0, help="Largest enlargement per axis of preset volumes (as inference)."),
    distance_alpha: float = typer.Option(
        8.0, help="Distance target tanh(d / ALPHA) inside nuclei, d in model voxels (NucMM's 8 for 12-voxel nuclei; "
        "8 * diameter / 12 keeps its peak for a smaller model diameter)."),
    device: str = typer.Option("cpu", help="Where the network trains: cpu, cuda or cuda:N."),
    workers: int = typer.Option(1, help="Processes preparing batches (0: in the training process)."),
    threads: int = typer.Option(1, help="Torch threads of the training process."),
    val_every: int = typer.Option(250, help="Steps between validations."),
    val_volumes: int = typer.Option(2, help="Synthetic validation volumes."),
    val_shape: tuple[int, int, int] = typer.Option((64, 64, 64), help="Shape Z Y X of each validation volume."),
    pool_size: int = typer.Option(16, help="Synthetic volumes kept in the pool patches are cut from."),
    refresh_every: int = typer.Option(4, help="Steps between replacing one pool volume."),
    pool_volume: tuple[int, int, int] = typer.Option((80, 80, 80), help="Shape Z Y X of each pool volume."),
    infer_patch_size: Optional[tuple[int, int, int]] = typer.Option(
        None, help="Inference patch Z Y X written to the card [default: 80, rounded up to a multiple of the "
        "architecture's downsampling: the kept centre is then a power of two]."),
    checkpoint_every: int = typer.Option(250, help="Steps between checkpoints."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Continue from OUT/checkpoint.pt if present."),
    tune_decoding: bool = typer.Option(
        True, "--tune-decoding/--no-tune-decoding", help="Choose the card's decoding thresholds on synthetic volumes."
    ),
    init: str | None = typer.Option(
        None, "--init", help="Start from this model package's weights (a path, or 'default'): fine-tuning."
    ),
    init_other_scale: bool = typer.Option(
        False, "--init-other-scale", help="Let --init be a model trained at another nucleus scale (voxels per "
        "diameter): its weights start a model of this run's scale."
    ),
) -> None:
    """Train a 3D network (BCD or semantic head) and write a model package to OUT/model.

    With --architecture wnet3d and --image files without --labels, trains CellSeg3D's WNet3D
    self-supervised on those images (soft N-cuts + reconstruction); its package is a semantic
    model decoded by Voronoi-Otsu.
    """
    from bigseg.errors import InputError
    from bigseg.train import LabelledPair, TrainConfig, UnlabelledImage, default_infer_patch_size, train
    from bigseg.train._presets import PRESET_NAMES

    image, labels = list(image or []), list(labels or [])
    self_supervised = architecture == "wnet3d"
    head = head or ("semantic" if self_supervised else "bcd")
    loss = loss or ("soft_ncuts" if self_supervised else "bcd" if head == "bcd" else "dice_ce")
    images: tuple[UnlabelledImage, ...] = ()
    if self_supervised and not labels:
        images = tuple(UnlabelledImage(i, voxel_size=voxel_size, diameter_um=diameter) for i in image)
        image, synthetic = [], False
    if len(image) != len(labels):
        raise InputError(f"give one --labels per --image; got {len(image)} images and {len(labels)} label files")
    try:
        kwargs = json.loads(arch_kwargs)
    except json.JSONDecodeError as exc:
        raise InputError(f"--arch-kwargs must be a JSON object, got {arch_kwargs!r} ({exc})") from None
    pairs = tuple(LabelledPair(i, l, voxel_size=voxel_size, diameter_um=diameter) for i, l in zip(image, labels))
    # architecture, head, loss and augment are checked by TrainConfig (the CLI passes them as typed).
    cfg = TrainConfig(
        out=out, name=name, architecture=architecture, architecture_kwargs=kwargs, head=head,  # type: ignore[arg-type]
        loss=loss,  # type: ignore[arg-type]
        steps=steps, batch_size=batch_size, patch_size=patch_size, lr=lr, seed=seed, synthetic=synthetic,
        pairs=pairs, images=images, synthetic_fraction=synthetic_fraction, diameter_um=model_diameter,
        augment=augment,  # type: ignore[arg-type]
        workers=workers, threads=threads, val_every=val_every, checkpoint_every=checkpoint_every,
        val_volumes=val_volumes, val_shape=val_shape, pool_size=pool_size, pool_volume=pool_volume,
        infer_patch_size=infer_patch_size or default_infer_patch_size(architecture, kwargs), preset_fraction=preset_fraction,
        presets=tuple(presets) if presets else PRESET_NAMES, preset_max_downsample=preset_max_downsample,
        refresh_every=refresh_every,
        init=init, init_other_scale=init_other_scale, tune_decoding=tune_decoding, scale_range=scale_range, anisotropy_range=anisotropy_range,
        max_upsample=max_upsample, distance_alpha=distance_alpha, device=device, command=_command_line(ctx),
    )

    def show(row: dict) -> None:
        text = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())
        typer.echo(text)

    result = train(cfg, resume=resume, on_log=show)
    typer.echo(f"model package: {result.package}")


def _command_line(ctx: typer.Context) -> str:
    """The command as typed, rebuilt from the parsed options that differ from their defaults."""
    words = ["bigseg", "train"]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)  # type: ignore[arg-type]
        if param.param_type_name == "argument":
            words.append(str(value))
            continue
        default = param.default
        if value == default or (value in (None, (), []) and default in (None, (), [])):
            continue
        if isinstance(value, bool) and param.secondary_opts:  # type: ignore[attr-defined]
            words.append(param.opts[0] if value else param.secondary_opts[0])  # type: ignore[attr-defined]
        elif isinstance(value, bool):  # a flag without a --no- form: named when set
            words.append(param.opts[0])  # type: ignore[attr-defined]
        elif isinstance(value, list):
            for item in value:
                words += [param.opts[0], str(item)]
        elif isinstance(value, tuple):
            words += [param.opts[0], *(str(v) for v in value)]
        else:
            words += [param.opts[0], str(value)]
    return " ".join(shlex.quote(w) for w in words)


def register(app: typer.Typer) -> None:
    """Add ``bigseg train`` to ``app``."""
    app.command("train")(_train)
