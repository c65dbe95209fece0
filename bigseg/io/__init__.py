"""Reading 3D inputs (OME-Zarr, zarr, TIFF; local or fsspec URLs) and writing OME-Zarr outputs."""

from bigseg.io._create import create_image, create_labels, is_complete
from bigseg.io._pyramid import default_factors, downsample
from bigseg.io._writer import ImageWriter

__all__ = [
    "ImageWriter",
    "create_image",
    "create_labels",
    "default_factors",
    "downsample",
    "is_complete",
]
