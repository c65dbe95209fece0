"""The user-facing run configuration.

One pydantic model, ``extra="forbid"``, layered in this order (later wins):
a YAML job file → ``BIGSEG_*`` environment variables → explicit arguments
(CLI flags or keyword arguments of :func:`bigseg.segment`). It is converted
once, at the entry, into the frozen values the stages use.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal, Mapping

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bigseg.errors import InputError
from bigseg.maps import Device
from bigseg.tiling import parse_voxel_size

__all__ = ["SegmentConfig", "load_config", "parse_scheduler"]

ENV_PREFIX = "BIGSEG_"

# A Dask scheduler address: optional protocol, a host (name, IPv4 or [IPv6]) and a port.
_ADDRESS = re.compile(r"^(?:(?:tcp|tls|ucx|ws|wss|inproc)://)?(?:[A-Za-z0-9_.\-]+|\[[0-9A-Fa-f:]+\]):\d{1,5}$")


def parse_scheduler(value: Any) -> str:
    """``value`` as a scheduler: ``"auto"``, ``"local"``, ``"sync"``, an address (``tcp://host:8786``,
    ``host:8786``) or the path of an existing scheduler file (``dask scheduler --scheduler-file``).

    A typo must not become an address, so anything else is refused.
    """
    text = str(value).strip() if isinstance(value, (str, os.PathLike)) else None
    if text in ("auto", "local", "sync") or (text and (_ADDRESS.match(text) or os.path.isfile(text))):
        return text  # type: ignore[return-value]
    raise InputError(
        f"`scheduler` must be 'auto', 'local', 'sync', a scheduler address (tcp://host:8786 or host:8786) or the path of "
        f"an existing scheduler file, got {value!r} (CLI: --scheduler)"
    )

Triple = tuple[int, int, int]


class SegmentConfig(BaseModel):
    """Everything a segmentation run needs besides input and output.

    Lengths in µm are named ``*_um``; shapes are voxels (z, y, x).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # input
    level: int = Field(0, ge=0, description="Resolution level of the input to segment.")
    channel: int | None = Field(None, ge=0, description="Channel of a multi-channel image.")
    voxel_size: tuple[float, float, float] | None = Field(
        None, description="Voxel size (z, y, x) in µm; overrides or supplies the metadata."
    )
    # prediction
    predictor: Literal["model", "classical"] = Field(
        "model", description="'model' (a trained network; the shipped default unless `model` is set) or 'classical'."
    )
    model: str | None = Field(None, description="Path of a model package; default: the shipped model.")
    diameter_um: float | Literal["auto"] | None = Field(
        None,
        description=(
            "Typical nucleus diameter in µm, or 'auto' to estimate it from the image with the model "
            "(default: estimated from the image for a model; 10 for the classical predictor)."
        ),
    )
    tta: bool = Field(False, description="Flip test-time augmentation.")
    max_upsample: float | None = Field(
        None, ge=1,
        description=(
            "Enlarge the data at most this many times per axis on its way to the model (whole-brain light-sheet: 2, "
            "at most 8 model voxels per data voxel). With the default model, nuclei the fine model would enlarge more "
            "than that along every axis go to the shipped coarse model (docs/models.md). Default: no cap."
        ),
    )
    device: Device = "auto"
    # decoding
    seed_foreground: float | None = Field(None, ge=0, le=1)
    seed_contour: float | None = Field(None, ge=0, le=1)
    seed_distance: float | None = Field(None, ge=-1, le=1)
    mask_foreground: float | None = Field(None, ge=0, le=1)
    min_volume_um3: float | None = Field(None, ge=0, description="Remove objects smaller than this (µm³); objects cut by a face of the volume are kept whatever their size.")
    decoder: Literal["bcd", "voronoi-otsu", "tascan"] | None = Field(
        None,
        description=(
            "'bcd' (NucMM seeded watershed), 'voronoi-otsu' (CellSeg3D, on the foreground map) or 'tascan' "
            "(3DCellSeg supervoxel merging). Default: the model card's (bcd for the classical predictor)."
        ),
    )
    spot_sigma_um: float | None = Field(None, ge=0, description="Voronoi-Otsu seed Gaussian (µm); default d/4.")
    outline_sigma_um: float | None = Field(None, ge=0, description="Voronoi-Otsu mask Gaussian (µm); default d/8.")
    min_touching_area: int | None = Field(None, ge=1, description="TASCAN: merge at this touching area (voxels); 30.")
    min_touching_fraction: float | None = Field(
        None, gt=0, le=1, description="TASCAN: merge at this share of a supervoxel's surface; 0.51."
    )
    # tiling and stitching
    block_shape: Triple = Field((128, 128, 128), description="Block (and output chunk) shape in voxels.")
    halo: Triple | None = Field(None, description="Halo in voxels; default from the predictor and diameter.")
    stitch: Literal["seeds", "iou"] | None = Field(
        None,
        description=(
            "'seeds': global seed IDs (exact); 'iou': per-block labels merged on mutual-best IoU. "
            "Default: the decoder's ('iou' for tascan, else 'seeds')."
        ),
    )
    min_iou: float = Field(0.5, gt=0, le=1, description="IoU needed to merge across blocks ('iou' only).")
    skip_empty: bool = Field(
        True, description="Skip blocks with no tissue (estimated from a low-resolution level): never read, never predicted."
    )
    # output
    output_mode: Literal["copy", "labels-only", "into-input"] = Field(
        "copy",
        description=(
            "'copy': OUT holds a copy of the image and the labels; 'labels-only': OUT holds only the labels, "
            "naming the input as their image; 'into-input': the labels go into the input OME-Zarr (no OUT)."
        ),
    )
    ngff_version: Literal["0.4", "0.5"] = "0.5"
    save_maps: bool = Field(False, description="Keep the BCD maps (OUT/maps) for `bigseg decode`.")
    maps_dtype: Literal["float32", "float16"] = Field(
        "float16", description="How the BCD maps are stored between prediction and decoding (see docs/architecture.md)."
    )
    shard: bool = Field(False, description="Write shards of one block each (chunks of half a block).")
    overwrite: bool = False
    # execution
    scheduler: str = Field(
        "auto",
        description="'auto' (in-process for a small run, else 'local'), 'local' (embedded LocalCluster), "
        "'sync' (in-process, no Dask), a scheduler address (tcp://host:8786) or the path of a scheduler file.",
    )
    n_workers: int | None = Field(None, ge=1)
    threads_per_worker: int = Field(1, ge=1, description="Dask threads per worker of the embedded cluster.")
    task_threads: int | None = Field(
        None, ge=1,
        description="Torch and BLAS threads of each task on the embedded cluster (default: the cores left "
        "after one per Dask thread); workers × threads_per_worker × task_threads ≤ cores.",
    )
    memory_limit: str = "auto"
    window: int | None = Field(None, ge=1, description="Most block tasks in flight (default 2 per worker thread).")
    gpu_resources: bool = Field(False, description=(
        "Ask for resources={'GPU': 1} for inference tasks, which then only write the maps; the image copy and "
        "the seed labels follow on any worker (docs/deploy.md)."))
    block_timeout: float | None = Field(
        None, gt=0, description="Seconds one block task may run before it counts as failed (default: no limit)."
    )
    retries: int = Field(1, ge=0, description="Times a failed block task is tried again before the run stops.")
    lock_stale_s: float = Field(
        120.0, gt=0, description="A run's output lock is taken over when its heartbeat is older than this (seconds)."
    )

    @field_validator("block_shape", "halo")
    @classmethod
    def _positive(cls, v: Triple | None, info: Any) -> Triple | None:
        if v is None:
            return v
        minimum = 1 if info.field_name == "block_shape" else 0
        if any(x < minimum for x in v):
            raise ValueError(f"{info.field_name} values must be >= {minimum}, got {v}")
        return v

    @field_validator("scheduler", mode="before")
    @classmethod
    def _scheduler(cls, v: Any) -> str:
        return parse_scheduler(v)

    @field_validator("stitch", mode="before")
    @classmethod
    def _stitch(cls, v: Any) -> Any:
        if v == "overlap":
            raise ValueError("the stitch mode 'overlap' is now called 'iou'; pass stitch: iou (CLI: --stitch iou)")
        return v

    @field_validator("diameter_um", mode="before")
    @classmethod
    def _diameter(cls, v: Any) -> float | str | None:
        if v is None:
            return v
        if isinstance(v, str) and v.strip().lower() == "auto":
            return "auto"
        try:
            d = None if isinstance(v, bool) else float(v)
        except (TypeError, ValueError):
            d = None
        if d is None or not 0 < d < float("inf"):
            raise ValueError("must be a diameter in µm > 0 or 'auto' (CLI: --diameter 8 or --diameter auto)")
        return d

    @field_validator("voxel_size", mode="before")
    @classmethod
    def _voxel(cls, v: Any) -> tuple[float, float, float] | None:
        return None if v is None else parse_voxel_size(v)


def _env_layer(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, raw in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        name = key[len(ENV_PREFIX):].lower()
        if name not in SegmentConfig.model_fields:
            continue
        out[name] = yaml.safe_load(raw) if raw.strip() else None
    return out


def load_config(
    path: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> SegmentConfig:
    """Build a :class:`SegmentConfig` from a YAML file, the environment and overrides.

    ``None`` overrides are ignored, so unset CLI flags do not mask lower layers.
    """
    layers: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise InputError(f"config file {str(p)!r} does not exist; pass the path of a YAML job file")
        loaded = yaml.safe_load(p.read_text()) or {}
        if not isinstance(loaded, dict):
            raise InputError(f"config file {str(p)!r} must hold a YAML mapping of options, got {type(loaded).__name__}")
        layers.update(loaded)
    layers.update(_env_layer(os.environ if environ is None else environ))
    layers.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return SegmentConfig.model_validate(layers)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']} (got {e.get('input')!r})"
            for e in exc.errors()
        )
        raise InputError(f"invalid bigseg configuration: {problems}") from None
