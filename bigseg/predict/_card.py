"""The model card: ``card.json`` beside the weights of a model package.

The card says everything needed to use the weights: the architecture and its
arguments, the head, how inputs are normalised, the scale the model was
trained at (voxel size and typical nucleus diameter), the patch size and
halo, the decoding thresholds that suit it (a :class:`bigseg.decode.DecodeParams`), and where the weights came from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_serializer, field_validator

from bigseg.errors import ModelPackageError
from bigseg.maps import DecodeParams
from bigseg.tiling import parse_shape, parse_voxel_size

__all__ = ["CARD_FILE", "Architecture", "Head", "InputSpec", "ModelCard", "Provenance", "TargetSpec", "parse_card"]

CARD_FILE = "card.json"

_Strict = ConfigDict(extra="forbid", frozen=True)

Architecture = Literal["basic_unet", "unet", "segresnet", "swin_unetr", "wnet3d", "cellsegnet"]
Head = Literal["bcd", "semantic"]

# The DecodeParams fields a card stores (the size filter follows each run's diameter instead).
_CARD_THRESHOLDS = ("seed_foreground", "seed_contour", "seed_distance", "mask_foreground", "mask_distance")


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


class ModelCard(BaseModel):
    """Validated content of ``card.json``.

    Lengths: ``voxel_size`` and ``diameter_um`` in µm; ``patch_size`` and
    ``halo`` in model voxels (z, y, x).
    """

    model_config = _Strict
    format: Literal["bigseg-model"] = "bigseg-model"
    format_version: Literal[1] = 1
    name: str = Field(min_length=1)
    description: str = ""
    architecture: Architecture
    architecture_kwargs: dict[str, Any] = Field(default_factory=dict)
    head: Head
    weights: str = "weights.safetensors"
    input: InputSpec = Field(default_factory=InputSpec)
    # Cards written before bigseg spelled it `voxel_size` everywhere say `voxel_size_um`.
    voxel_size: tuple[float, float, float] = Field(
        default=(1.0, 1.0, 1.0), validation_alias=AliasChoices("voxel_size", "voxel_size_um")
    )
    diameter_um: float = Field(default=12.0, gt=0)
    patch_size: tuple[int, int, int] = (64, 64, 64)
    halo: tuple[int, int, int] = (16, 16, 16)
    targets: TargetSpec = Field(default_factory=TargetSpec)
    decoding: DecodeParams = Field(default_factory=DecodeParams)
    decoder: Literal["bcd", "voronoi-otsu", "tascan"] = Field(
        default="bcd", description="Decoder used unless the run names another (`bigseg.decode.DECODERS`)."
    )
    provenance: Provenance = Field(default_factory=Provenance)

    @field_validator("architecture_kwargs")
    @classmethod
    def _json_kwargs(cls, v: dict[str, Any]) -> dict[str, Any]:
        # Canonical JSON form (tuples become lists) so a card equals itself after a round trip.
        try:
            return json.loads(json.dumps(v))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"must be JSON-serialisable ({exc})") from None

    @field_validator("voxel_size", mode="before")
    @classmethod
    def _voxel_size(cls, v: Any) -> tuple:
        return parse_voxel_size(v)

    @field_validator("patch_size", "halo", mode="before")
    @classmethod
    def _shape(cls, v: Any, info: Any) -> tuple:
        return parse_shape(v, name=info.field_name, minimum=1 if info.field_name == "patch_size" else 0)

    @field_validator("decoding", mode="before")
    @classmethod
    def _decoding_thresholds(cls, v: Any) -> Any:
        if isinstance(v, dict) and "min_volume_um3" in v:
            raise ValueError("min_volume_um3 is not a property of the model (it follows the run's diameter); remove it")
        return v

    @field_serializer("decoding")
    def _decoding_json(self, v: DecodeParams) -> dict[str, float]:
        return {k: getattr(v, k) for k in _CARD_THRESHOLDS}

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
