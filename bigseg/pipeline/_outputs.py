"""Where a run writes: the output URL, the image copy or its description, the label images, the maps.

``copy`` creates an OME-Zarr image at OUT holding a copy of the input;
``labels-only`` creates OUT with only ``labels/`` (the label image names the
input as its source); ``into-input`` adds ``labels/`` to the input OME-Zarr
itself, and nothing else.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import replace
from typing import Any, Sequence

from bigseg.config import SegmentConfig
from bigseg.errors import BigsegError, InputError
from bigseg.io import (
    ImageWriter,
    Volume,
    create_group,
    create_image,
    create_labels,
    describe_image,
    is_local,
    join_url,
    normalize_url,
)
from bigseg.maps import MAP_CHANNELS
from bigseg.pipeline._plan import check_output_location
from bigseg.tiling import Grid

__all__ = ["create_outputs", "create_tissue_labels", "output_url", "relative"]

logger = logging.getLogger(__name__)

LABEL_NAME = "nuclei"
TISSUE_NAME = "tissue"
#: Above this many voxels, a copy of the image gets a warning that a no-copy mode exists.
COPY_HINT_VOXELS = 2**32


def output_url(cfg: SegmentConfig, in_url: str, output: str | None) -> str:
    if cfg.output_mode == "into-input":
        if output is not None and normalize_url(output) != in_url:
            raise InputError(
                f"output_mode 'into-input' writes the labels into the input {in_url!r}; "
                f"give no output (got {output!r}), or use output_mode 'labels-only' to write them there"
            )
        if cfg.save_maps:
            raise InputError("save_maps needs an output of its own: use output_mode 'labels-only' or 'copy'")
        return in_url
    if output is None:
        raise InputError("give an output path or URL (or output_mode 'into-input' to write the labels into the input)")
    out_url = normalize_url(output)
    check_output_location(in_url, out_url)
    return out_url


def _image_group(volume: Volume) -> str:
    """The OME-Zarr image group holding the input's levels; only OME-Zarr images can take labels."""
    if volume.kind != "zarr" or volume.ngff_version not in ("0.4", "0.5"):
        raise InputError(
            f"output_mode 'into-input' needs an OME-Zarr 0.4 or 0.5 image, but {volume.source!r} is "
            f"{'a TIFF' if volume.kind == 'tiff' else 'a plain zarr array'}; use output_mode 'labels-only' or 'copy'"
        )
    return volume.level_urls[0].rsplit("/", 1)[0]


def relative(target: str, start: str) -> str:
    """``target`` relative to ``start`` where both are local paths, else ``target`` itself."""
    if is_local(target) and is_local(start):
        return os.path.relpath(target, start)
    return target


def create_outputs(
    cfg: SegmentConfig, volume: Volume, grid: Grid, in_url: str, out_url: str, *,
    storage_options: dict[str, Any] | None = None, fingerprint: dict[str, Any] | None = None,
    keep: Sequence[str] = (), reopen: bool = False,
) -> tuple[ImageWriter | None, ImageWriter, ImageWriter, str]:
    """The image copy (or None), the label image, the maps and the folder that holds the run's scratch.

    ``fingerprint`` is recorded in the output's root and label groups; ``keep`` names entries of
    OUT left alone (the run's lock); ``reopen`` describes the outputs an earlier attempt of the
    same run created, touching nothing (a resumed run).
    """
    so = storage_options
    attrs = {"fingerprint": fingerprint} if fingerprint is not None else {}
    block = grid.block_shape
    chunk = tuple(b // 2 for b in block) if cfg.shard else block
    shard = block if cfg.shard else None
    n_levels = max(1, volume.n_levels - cfg.level)
    geometry: dict[str, Any] = dict(shape=volume.shape, dtype=volume.dtype, voxel_size=volume.voxel_size, chunk_shape=chunk,
                    shard_shape=shard, n_levels=n_levels, storage_options=so)
    if cfg.output_mode == "copy":
        if math.prod(volume.shape) > COPY_HINT_VOXELS:
            logger.warning("copying a %.1f Gvox image into %s; --output-mode labels-only (or into-input) writes "
                           "the labels without a copy", math.prod(volume.shape) / 1e9, out_url)
        image = create_image(out_url, ngff_version=cfg.ngff_version, overwrite=cfg.overwrite, attrs=attrs,  # type: ignore[arg-type]
                             keep=keep, reopen=reopen, **geometry)
        labels = create_labels(image, LABEL_NAME, dtype="uint32", attrs=attrs, reopen=reopen)
        return image, labels, _create_maps(image, grid, cfg, reopen), out_url
    if cfg.output_mode == "labels-only":
        source = volume.level_urls[0].rsplit("/", 1)[0] if volume.kind == "zarr" else volume.source
        if not reopen:
            create_group(out_url, ngff_version=cfg.ngff_version, overwrite=cfg.overwrite, storage_options=so, keep=keep,
                         attributes={"bigseg": {**attrs, "complete": False, "source_image": source}})
        parent = describe_image(out_url, ngff_version=cfg.ngff_version, **geometry)  # type: ignore[arg-type]
        labels = create_labels(parent, LABEL_NAME, dtype="uint32", attrs=attrs, reopen=reopen,
                               source=relative(source, join_url(out_url, "labels", LABEL_NAME)))
        return None, labels, _create_maps(parent, grid, cfg, reopen), out_url
    group = _image_group(volume)
    parent = describe_image(group, ngff_version=volume.ngff_version, **geometry)  # type: ignore[arg-type]
    try:
        labels = create_labels(parent, LABEL_NAME, dtype="uint32", overwrite=cfg.overwrite, source="../../")
    except BigsegError:
        raise
    except Exception as exc:  # the store refused the write: PermissionError, HTTP 501, read-only store, ...
        raise InputError(
            f"cannot write labels into the input {group!r}: it is read-only here ({type(exc).__name__}: {exc}); "
            "use output_mode 'labels-only' with an output path"
        ) from None
    maps = create_image(join_url(labels.url, ".bigseg-maps"), shape=(len(MAP_CHANNELS), *grid.volume_shape),
                        dtype=cfg.maps_dtype, voxel_size=labels.voxel_size, chunk_shape=grid.block_shape,
                        ngff_version=labels.ngff_version, channel_names=MAP_CHANNELS, overwrite=True,
                        storage_options=labels.storage_options)
    return None, labels, maps, labels.url


def _create_maps(image: ImageWriter, grid: Grid, cfg: SegmentConfig, reopen: bool = False) -> ImageWriter:
    return create_image(
        join_url(image.url, "maps"), shape=(len(MAP_CHANNELS), *grid.volume_shape), dtype=cfg.maps_dtype,
        voxel_size=image.voxel_size, chunk_shape=grid.block_shape, ngff_version=cfg.ngff_version,
        channel_names=MAP_CHANNELS, overwrite=True, storage_options=image.storage_options, reopen=reopen,
    )


def create_tissue_labels(cfg: SegmentConfig, labels: ImageWriter, *, reopen: bool = False) -> ImageWriter:
    """The label image ``labels/tissue`` beside the nuclei (same levels): 1 tissue, 2 margin, 0 skipped."""
    parent = replace(labels, url=labels.url.rsplit("/", 2)[0], is_labels=False, label_source=None)
    return create_labels(parent, TISSUE_NAME, dtype="uint8", overwrite=cfg.overwrite, source=labels.label_source,
                         reopen=reopen)
