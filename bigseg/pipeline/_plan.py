"""Turning a validated config and an opened volume into the run's fixed values."""

from __future__ import annotations

import logging
import math
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeGuard, cast

from bigseg.config import SegmentConfig
from bigseg.decode import DECODERS, DecodeParams, Decoder, make_decoder
from bigseg.diameter import LogDiameterEstimate, volume_log_diameter
from bigseg.errors import InputError
from bigseg.io import Volume
from bigseg.predict import ClassicalSpec, Normalization, PredictorSpec, estimate_normalization, get_predictor
from bigseg.tiling import Grid, Halo

if TYPE_CHECKING:  # imports torch: loaded where a model is used
    from bigseg.predict import ModelCard, ModelPredictor, ModelSpec

__all__ = [
    "Plan", "check_output_location", "decode_overrides", "decode_params", "make_plan", "plan_decoder", "required_halo",
    "skip_margin",
]

logger = logging.getLogger(__name__)

DEFAULT_DIAMETER_UM = 10.0


@dataclass(frozen=True)
class Plan:
    """Fixed values of one run, derived once from the config."""

    grid: Grid
    predictor: PredictorSpec | None
    normalization: Normalization | None
    params: DecodeParams
    diameter_um: float
    diameter_estimate: LogDiameterEstimate | None = None
    #: Voxels (per axis) from the tissue estimate beyond which a block is skipped (:func:`skip_margin`).
    reach: tuple[int, ...] = (0, 0, 0)
    decoder: Decoder = Decoder()
    stitch: str = "seeds"


def check_output_location(input_url: str, output_url: str) -> None:
    """Refuse an output that is, or lies inside, the input (the input is never modified)."""
    if "://" in input_url or "://" in output_url:
        same = output_url.rstrip("/") == input_url.rstrip("/")
        inside = output_url.startswith(input_url.rstrip("/") + "/")
    else:
        inp, out = Path(input_url).resolve(), Path(output_url).resolve()
        same, inside = out == inp, inp in out.parents
    if same or inside:
        raise InputError(
            f"output {output_url!r} is {'the input' if same else 'inside the input'} {input_url!r}; "
            "bigseg never modifies its input: choose an output path outside it"
        )


def decode_overrides(cfg: SegmentConfig) -> dict[str, float]:
    """The decode thresholds the config sets explicitly."""
    return {
        k: getattr(cfg, k)
        for k in ("seed_foreground", "seed_contour", "seed_distance", "mask_foreground", "min_volume_um3")
        if getattr(cfg, k) is not None
    }


def decode_params(cfg: SegmentConfig, defaults: DecodeParams, diameter_um: float) -> DecodeParams:
    """Decode thresholds: the predictor's defaults, overridden by the config."""
    overrides = decode_overrides(cfg)
    if "min_volume_um3" not in overrides:
        # Default: a tenth of a typical nucleus (a sphere of the typical diameter).
        overrides["min_volume_um3"] = 0.1 * math.pi / 6 * diameter_um**3
    return replace(defaults, **overrides)


def plan_decoder(
    cfg: SegmentConfig, default: str, diameter_um: float, voxel_size: tuple[float, float, float]
) -> tuple[Decoder, str]:
    """The run's decoder (the config's, else ``default``) and the stitch path it takes."""
    name = cfg.decoder or default
    decoder = make_decoder(
        name, diameter_um=diameter_um, voxel_size=voxel_size, spot_sigma_um=cfg.spot_sigma_um,
        outline_sigma_um=cfg.outline_sigma_um, min_touching_area=cfg.min_touching_area,
        min_touching_fraction=cfg.min_touching_fraction,
    )
    paths = DECODERS[name]
    stitch = cfg.stitch or paths[0]
    if stitch not in paths:
        raise InputError(
            f"decoder {name!r} works on the {' or '.join(repr(p) for p in paths)} stitch path, not {stitch!r}: "
            f"drop --stitch or pass --stitch {paths[0]}"
        )
    return decoder, stitch


def _resolve_diameter(cfg: SegmentConfig, volume: Volume) -> tuple[SegmentConfig, LogDiameterEstimate | None]:
    """The config with its diameter estimated from the image where it asks for that, once, in the driver.

    ``"auto"`` estimates, and so does a model run given no diameter: scale-normalised
    LoG scale selection on a coarse pyramid level (:func:`bigseg.diameter.volume_log_diameter`),
    which depends on no model. Where the image shows no clear nucleus size (pure noise, two
    populations of different sizes) it stops with :class:`bigseg.diameter.AmbiguousDiameterError`
    listing the candidates and asking for ``--diameter``: it never guesses.
    """
    explicit = cfg.diameter_um == "auto"
    if not explicit and not (cfg.diameter_um is None and cfg.predictor == "model"):
        return cfg, None
    estimate = volume_log_diameter(volume)
    logger.info("diameter %s: %.3g µm from LoG scale selection (%d blobs; %s; %.1fs)",
                "'auto'" if explicit else "not given, estimated", estimate.diameter_um, estimate.n_blobs,
                ", ".join(f"{m.diameter_um:.3g} µm x{m.n_blobs} ({m.weight:.0%})" for m in estimate.modes),
                estimate.seconds)
    return cfg.model_copy(update={"diameter_um": estimate.diameter_um}), estimate


def _predictor(
    cfg: SegmentConfig, volume: Volume, norm: Normalization | None = None
) -> tuple[PredictorSpec, Normalization, DecodeParams, float]:
    """The predictor spec, normalisation, decode defaults and diameter; ``norm`` is a model run's
    normalisation when already estimated."""
    diameter_um = cfg.diameter_um if cfg.diameter_um != "auto" else None  # resolved by make_plan
    if cfg.predictor == "classical":
        norm = estimate_normalization(volume)
        diameter = diameter_um or DEFAULT_DIAMETER_UM
        return ClassicalSpec(volume.voxel_size, diameter, threshold=norm.threshold), norm, DecodeParams(), diameter
    from bigseg.predict import ModelSpec, load_model_package  # torch: only for model runs

    spec = ModelSpec(
        model=cfg.model or "default", voxel_size=volume.voxel_size, diameter_um=diameter_um,
        device=cfg.device, tta=cfg.tta, max_upsample=cfg.max_upsample,
    )
    if (cfg.model or "default") == "default":
        logger.info("default model for %.3g µm nuclei in %s µm voxels: %s%s", diameter_um or 0.0, volume.voxel_size,
                    spec.model, f", enlarging at most {spec.max_upsample:g}x per axis" if spec.max_upsample else "")
    card = load_model_package(spec.model).card
    norm = norm if norm is not None else estimate_normalization(volume, percentiles=card.input.percentiles)
    return spec, norm, card.decoding, diameter_um or card.diameter_um


def required_halo(
    spec: PredictorSpec, block_shape: tuple[int, ...] | None = None, volume_shape: tuple[int, ...] | None = None
) -> tuple[int, ...]:
    """The halo (voxels, z y x) the predictor needs: its maps at a write-ROI voxel depend on this much context.

    With ``block_shape`` and ``volume_shape``, a model's need for that grid's blocks
    (:meth:`~bigseg.predict.ModelPredictor.grid_halo`: the input its patches read, often
    far less than for a write ROI anywhere). The one place that computes it: the default
    halo and the check of a user's ``halo`` both use it.
    """
    predictor = get_predictor(spec)
    if _is_model(spec) and block_shape is not None and volume_shape is not None:
        return cast("ModelPredictor", predictor).grid_halo(block_shape, volume_shape)  # a ModelSpec builds one
    return tuple(int(h) for h in predictor.halo)


def _halo(
    cfg: SegmentConfig, spec: PredictorSpec, diameter_um: float, voxel_size: tuple[float, ...], decoder: Decoder,
    block_shape: tuple[int, ...], volume_shape: tuple[int, ...],
) -> tuple[int, ...]:
    """The user's halo, refused where smaller than :func:`required_halo`; by default also the decoder's reach."""
    need = required_halo(spec, block_shape, volume_shape)
    if cfg.halo is None:
        # Seeds flood at most about one diameter: the read ROI must hold every seed of a write-ROI voxel.
        reach = decoder.halo(tuple(math.ceil(diameter_um / v) + 1 for v in voxel_size))
        return tuple(max(a, b) for a, b in zip(reach, need))
    if any(h < n for h, n in zip(cfg.halo, need)):
        raise InputError(
            f"`halo` {tuple(cfg.halo)} is smaller than the predictor needs: at least {need} voxels (z, y, x); "
            f"pass at least that (CLI: --halo {' '.join(map(str, need))}) or leave it out for the default"
        )
    return tuple(cfg.halo)


def skip_margin(
    spec: PredictorSpec, decoder: Decoder, stitch: str, halo: tuple[int, ...], diameter_um: float,
    voxel_size: tuple[float, ...],
) -> tuple[int, ...]:
    """How far (voxels, z y x) a block's write ROI must lie from the tissue estimate to be skipped
    with every label unchanged.

    A skipped block is never predicted: its stored maps stay at the fill value (0: no foreground,
    so no seeds and outside every flood's mask), and so do its seeds and labels. A run without
    skipping must therefore find no foreground there either, in any voxel a decision reads::

        tissue estimate ─┬─ half a nucleus (+1): the rim of a nucleus the coarse estimate misses
                         ├─ the predictor's foreground reach (``foreground_halo``, else its halo)
                         ├─ the decoder's own reach over the foreground (Voronoi-Otsu's blurs; 0 for bcd)
                         └─ iou path only: the halo (each block decodes its whole read ROI alone)
        ─────────────────┴─► beyond: a block's foreground is the empty space's

    The seeds path needs no halo here: a neighbour floods over a skipped block's part of its read
    ROI, where the maps are 0 instead of the empty space's, which gives the same mask, the same
    seeds and so the same flood (tested in ``tests/pipeline/test_skip_empty.py``).
    """
    predictor = get_predictor(spec)
    fg = tuple(getattr(predictor, "foreground_halo", predictor.halo))
    own = decoder.halo((0,) * len(halo))
    read = halo if stitch == "iou" else (0,) * len(halo)
    return tuple(f + d + r + math.ceil(diameter_um / 2 / v) + 1 for f, d, r, v in zip(fg, own, read, voxel_size))


def _given_predictor(
    cfg: SegmentConfig, volume: Volume, spec: PredictorSpec
) -> tuple[SegmentConfig, PredictorSpec, Normalization, DecodeParams, float]:
    """A predictor given by the caller: the config's diameter (or the default); a model's own
    normalisation and thresholds, default ones for others."""
    cfg, _ = _resolve_diameter(cfg.model_copy(update={"predictor": "classical"}), volume)
    diameter = cfg.diameter_um if isinstance(cfg.diameter_um, float) else DEFAULT_DIAMETER_UM
    if _is_model(spec):
        card = _card(spec)
        norm = estimate_normalization(volume, percentiles=card.input.percentiles)
        return cfg, spec, norm, card.decoding, diameter
    return cfg, spec, estimate_normalization(volume), DecodeParams(), diameter


def _default_decoder(spec: PredictorSpec) -> str:
    """A model's card names its decoder; other predictors make BCD maps for NucMM's."""
    return _card(spec).decoder if _is_model(spec) else "bcd"


def _is_model(spec: PredictorSpec) -> TypeGuard[ModelSpec]:
    """Whether ``spec`` is a model's, without importing torch for other predictors (a ModelSpec's
    module, which imports torch, is loaded wherever one exists)."""
    model = sys.modules.get("bigseg.predict._model")
    return model is not None and isinstance(spec, model.ModelSpec)


def _card(spec: ModelSpec) -> ModelCard:
    from bigseg.predict import load_model_package

    return load_model_package(spec.model).card


def make_plan(cfg: SegmentConfig, volume: Volume, predictor: PredictorSpec | None = None) -> Plan:
    """Choose the predictor, decode thresholds, halo and grid for ``volume``.

    ``predictor`` replaces the config's predictor (a custom or simulated one).
    """
    estimate = None
    if predictor is not None:
        cfg, spec, norm, defaults, diameter = _given_predictor(cfg, volume, predictor)
    else:
        cfg, estimate = _resolve_diameter(cfg, volume)
        spec, norm, defaults, diameter = _predictor(cfg, volume)
    params = decode_params(cfg, defaults, diameter)
    decoder, stitch = plan_decoder(cfg, _default_decoder(spec), diameter, volume.voxel_size)
    block = tuple(min(b, s) for b, s in zip(cfg.block_shape, volume.shape))
    halo = _halo(cfg, spec, diameter, volume.voxel_size, decoder, block, volume.shape)
    if cfg.shard and any(b % 2 for b in block):
        raise InputError(f"`shard` needs an even block_shape (chunks are half a block), got {block}")
    reach = skip_margin(spec, decoder, stitch, halo, diameter, volume.voxel_size)
    return Plan(Grid(volume.shape, block, Halo.of(halo)), spec, norm, params, diameter, estimate, reach, decoder, stitch)
