"""Reading 3D inputs (OME-Zarr, zarr, TIFF; local or fsspec URLs) and writing OME-Zarr outputs."""

from bigseg.io._copy import copy_image_block
from bigseg.io._create import create_group, create_image, create_labels, describe_image, is_complete, open_writer
from bigseg.io._levels import (
    MAX_READ_VOXELS,
    Levels,
    array_levels,
    coarse_view,
    crop_box,
    crop_centres,
    pick_level,
    read_box,
    volume_levels,
)
from bigseg.io._open import open_volume
from bigseg.io._pyramid import default_factors, downsample
from bigseg.io._store import (
    FileIdentity,
    file_identity,
    forget_handles,
    get_fs,
    is_local,
    join_url,
    make_store,
    normalize_url,
    open_array,
    open_group,
    path_exists,
    remove_tree,
)
from bigseg.io._volume import Volume, check_finite
from bigseg.io._writer import ImageWriter

__all__ = [
    "MAX_READ_VOXELS",
    "FileIdentity",
    "ImageWriter",
    "Levels",
    "Volume",
    "array_levels",
    "check_finite",
    "coarse_view",
    "copy_image_block",
    "create_group",
    "create_image",
    "create_labels",
    "crop_box",
    "crop_centres",
    "default_factors",
    "describe_image",
    "downsample",
    "file_identity",
    "forget_handles",
    "get_fs",
    "is_complete",
    "is_local",
    "join_url",
    "make_store",
    "normalize_url",
    "open_array",
    "open_group",
    "open_volume",
    "open_writer",
    "path_exists",
    "pick_level",
    "read_box",
    "remove_tree",
    "volume_levels",
]
