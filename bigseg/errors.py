"""One error hierarchy for bigseg.

Every class inherits :class:`BigsegError` *and* the built-in a caller would
naturally catch (``ValueError``, ``FileNotFoundError``, ...), so
``except ValueError`` keeps working for code that does not know bigseg.
Messages name the value received and say how to fix it.
"""

from __future__ import annotations

__all__ = [
    "BigsegError",
    "BlockFailedError",
    "BlockTimeoutError",
    "InputError",
    "MissingVoxelSizeError",
    "ModelPackageError",
    "OutputExistsError",
    "OutputLockedError",
    "OutputMismatchError",
    "VolumeNotFoundError",
]


class BigsegError(Exception):
    """Base class of every error raised by bigseg on purpose."""


class InputError(BigsegError, ValueError):
    """An argument, file or volume is not what bigseg can work with."""


class MissingVoxelSizeError(InputError):
    """The input records no voxel size and none was given."""


class VolumeNotFoundError(BigsegError, FileNotFoundError):
    """The input path or URL does not exist or holds no image."""


class OutputExistsError(BigsegError, FileExistsError):
    """The output exists and ``overwrite`` was not asked for."""


class OutputMismatchError(OutputExistsError):
    """The output holds (part of) a run of another input or configuration."""


class OutputLockedError(BigsegError, RuntimeError):
    """Another run holds the output's lock."""


class ModelPackageError(BigsegError, ValueError):
    """A model package (weights + card) is missing parts or is inconsistent."""


class BlockFailedError(BigsegError, RuntimeError):
    """A block task failed; the run is not complete and says so."""


class BlockTimeoutError(BigsegError, TimeoutError):
    """A block task ran longer than the per-block timeout."""
