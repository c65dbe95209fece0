"""The model card: ``card.json`` beside the weights of a model package.

The card says everything needed to use the weights: the architecture and its
arguments, the head, how inputs are normalised, the scale the model was
trained at (voxel size and typical nucleus diameter), the patch size and
halo, decoding defaults, and where the weights came from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bigseg.errors import ModelPackageError

__all__ = ["CARD_FILE", "DecodingDefaults", "InputSpec", "ModelCard", "Provenance", "TargetSpec", "parse_card"]

CARD_FILE = "card.json"

_Strict = ConfigDict(extra="forbid", frozen=True)


class InputSpec(BaseModel):
    """How the image is normalised before the network sees it."""

    model_config = _Strict
    normalization: Literal["percentile"] = "percentile"
    percentiles: tuple[float, float] = (1.0, 99.8)

    @field_validator("percentiles")
    @classmethod
    def _ordered(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0 <= v[0] < v[1] <= 100:
            raise ValueError(f"must be (low, high) with 0 <= low < high <= 100, got {v}")
        return v


class TargetSpec(BaseModel):
    """Scales of the signed-distance target (model voxels)."""

    model_config = _Strict
    distance_alpha: float = Field(default=8.0, gt=0)
    distance_beta: float = Field(default=50.0, gt=0)


class DecodingDefaults(BaseModel):
    """NucMM decoding thresholds that suit this model (the fields of ``bigseg.decode.DecodeParams``)."""

    model_config = _Strict
    seed_foreground: float = Field(default=0.75, ge=0, le=1)
    seed_contour: float = Field(default=0.3, ge=0, le=1)
    seed_distance: float = Field(default=0.4, ge=-1, le=1)
    mask_foreground: float = Field(default=0.5, ge=0, le=1)
    mask_distance: float = Field(default=-1.0, ge=-1, le=1)


class Provenance(BaseModel):
    """Where the weights came from."""

    model_config = _Strict
    data: str = ""
    steps: int = Field(default=0, ge=0)
    command: str = ""
    seed: int | None = None
    created: str = ""
    bigseg_version: str = ""
    metrics: dict[str, Any] = Field(default_factory=dict)


def _triple(v: Any, name: str, positive: bool = True) -> tuple:
    if isinstance(v, (int, float)):
        v = (v, v, v)
    v = tuple(v)
    if len(v) != 3:
        raise ValueError(f"{name} needs 3 values (z, y, x), got {len(v)}")
    if positive and any(x <= 0 for x in v):
        raise ValueError(f"{name} values must be > 0, got {v}")
    return v


class ModelCard(BaseModel):
    """Validated content of ``card.json``.

    Lengths: ``voxel_size_um`` and ``diameter_um`` in µm; ``patch_size`` and
    ``halo`` in model voxels (z, y, x).
    """

    model_config = _Strict
    format: Literal["bigseg-model"] = "bigseg-model"
    format_version: Literal[1] = 1
    name: str = Field(min_length=1)
    description: str = ""
    architecture: Literal["basic_unet", "unet", "segresnet", "swin_unetr"]
    architecture_kwargs: dict[str, Any] = Field(default_factory=dict)
    head: Literal["bcd", "semantic"]
    weights: str = "weights.safetensors"
    input: InputSpec = Field(default_factory=InputSpec)
    voxel_size_um: tuple[float, float, float] = (1.0, 1.0, 1.0)
    diameter_um: float = Field(default=12.0, gt=0)
    patch_size: tuple[int, int, int] = (64, 64, 64)
    halo: tuple[int, int, int] = (16, 16, 16)
    targets: TargetSpec = Field(default_factory=TargetSpec)
    decoding: DecodingDefaults = Field(default_factory=DecodingDefaults)
    provenance: Provenance = Field(default_factory=Provenance)

    @field_validator("architecture_kwargs")
    @classmethod
    def _json_kwargs(cls, v: dict[str, Any]) -> dict[str, Any]:
        # Canonical JSON form (tuples become lists) so a card equals itself after a round trip.
        try:
            return json.loads(json.dumps(v))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"must be JSON-serialisable ({exc})") from None

    @field_validator("voxel_size_um", "patch_size", mode="before")
    @classmethod
    def _positive_triple(cls, v: Any, info: Any) -> tuple:
        return _triple(v, info.field_name)

    @field_validator("halo", mode="before")
    @classmethod
    def _halo_triple(cls, v: Any) -> tuple:
        v = _triple(v, "halo", positive=False)
        if any(x < 0 for x in v):
            raise ValueError(f"halo values must be >= 0, got {v}")
        return v

    @field_validator("weights")
    @classmethod
    def _weights_name(cls, v: str) -> str:
        if "/" in v or "\\" in v or not v.endswith((".safetensors", ".pt", ".pth")):
            raise ValueError(f"must be a file name ending in .safetensors, .pt or .pth, got {v!r}")
        return v

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"


def parse_card(text: str | bytes, source: str | Path) -> ModelCard:
    """Parse and validate card JSON.

    Raises
    ------
    ModelPackageError
        Naming ``source``, the offending field(s) and how to fix them.
    """
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelPackageError(f"{source}: not valid JSON ({exc}); fix the file or re-export the model") from None
    if not isinstance(raw, dict):
        raise ModelPackageError(f"{source}: must hold a JSON object, got {type(raw).__name__}")
    try:
        return ModelCard.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "(card)"
            got = err.get("input")
            hint = " (unknown field: remove it)" if err["type"] == "extra_forbidden" else ""
            lines.append(f"  field `{field}`: {err['msg']}{hint}; got {got!r}"[:300])
        raise ModelPackageError(
            f"{source}: invalid model card ({len(lines)} problem(s)):\n" + "\n".join(lines)
            + "\nFix these fields (see docs/models.md for the card format)."
        ) from None
