"""Which decoder turns maps into instances, with its fixed parameters (one value per run)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from bigseg.decode._tascan import TascanParams
from bigseg.decode._voronoi import gaussian_support, voronoi_sigmas
from bigseg.errors import InputError

__all__ = ["DECODERS", "Decoder", "DecoderName", "make_decoder"]

DecoderName = Literal["bcd", "voronoi-otsu", "tascan"]
#: decoder → the stitch paths it works on ("seeds": global seed IDs, exact; "iou": per-block labels merged on IoU).
DECODERS: dict[str, tuple[str, ...]] = {"bcd": ("seeds", "iou"), "voronoi-otsu": ("seeds",), "tascan": ("iou",)}


@dataclass(frozen=True, slots=True)
class Decoder:
    """The run's decoder.

    Parameters
    ----------
    name : {"bcd", "voronoi-otsu", "tascan"}
        NucMM's seeded watershed of the BCD maps; CellSeg3D's Voronoi-Otsu of the
        foreground map; 3DCellSeg's TASCAN supervoxel merging.
    spot_sigma, outline_sigma : (float, float, float)
        Voronoi-Otsu Gaussians in voxels (z, y, x).
    threshold : float, optional
        Voronoi-Otsu's whole-volume Otsu threshold, set by the driver once the maps exist.
    tascan : TascanParams
        TASCAN's merge thresholds.
    """

    name: DecoderName = "bcd"
    spot_sigma: tuple[float, float, float] = (0.0, 0.0, 0.0)
    outline_sigma: tuple[float, float, float] = (0.0, 0.0, 0.0)
    threshold: float | None = None
    tascan: TascanParams = field(default_factory=TascanParams)

    def __post_init__(self) -> None:
        if self.name not in DECODERS:
            raise InputError(f"unknown decoder {self.name!r}; choose one of {list(DECODERS)} (CLI: --decoder)")
        if self.threshold is not None and not (math.isfinite(self.threshold) and 0 <= self.threshold <= 1):
            raise InputError(f"Decoder.threshold must be in [0, 1], got {self.threshold}")

    def halo(self, reach: tuple[int, ...]) -> tuple[int, ...]:
        """Voxels of context this decoder needs, given the flood's ``reach`` (about one diameter)."""
        if self.name != "voronoi-otsu":
            return tuple(reach)
        spot, outline = gaussian_support(self.spot_sigma), gaussian_support(self.outline_sigma)
        # Seeds: spot blur + the 3×3×3 maximum; flood: its reach over outline-blurred values.
        return tuple(max(s + 1, r + o) for s, o, r in zip(spot, outline, reach))

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"name": self.name}
        if self.name == "voronoi-otsu":
            out.update(spot_sigma=list(self.spot_sigma), outline_sigma=list(self.outline_sigma), threshold=self.threshold)
        if self.name == "tascan":
            t = self.tascan
            out.update(min_touching_area=t.min_touching_area, min_touching_fraction=t.min_touching_fraction,
                       erosion=t.erosion, peak_distance=t.peak_distance)
        return out


def make_decoder(
    name: str,
    *,
    diameter_um: float,
    voxel_size: tuple[float, float, float],
    spot_sigma_um: float | None = None,
    outline_sigma_um: float | None = None,
    min_touching_area: int | None = None,
    min_touching_fraction: float | None = None,
) -> Decoder:
    """The decoder ``name`` with its parameters in voxels (sigmas from µm or the diameter)."""
    if name not in DECODERS:
        raise InputError(f"unknown decoder {name!r}; choose one of {list(DECODERS)} (CLI: --decoder)")
    spot, outline = voronoi_sigmas(diameter_um, voxel_size, spot_sigma_um=spot_sigma_um,
                                   outline_sigma_um=outline_sigma_um)
    defaults = TascanParams()
    tascan = TascanParams(
        min_touching_area=defaults.min_touching_area if min_touching_area is None else int(min_touching_area),
        min_touching_fraction=defaults.min_touching_fraction if min_touching_fraction is None else min_touching_fraction,
    )
    return Decoder(name, spot, outline, None, tascan)  # type: ignore[arg-type]
