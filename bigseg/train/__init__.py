"""Training: targets from labels, synthetic and file data, losses, the loop (``bigseg train``)."""

from bigseg.train._augment import Augmenter
from bigseg.train._config import LabelledPair, TrainConfig
from bigseg.train._data import LabelledVolume, SyntheticPool, VolumeSource
from bigseg.train._decoding import (
    DEFAULT_GRID,
    DecodingChoice,
    SelectionVolume,
    choose_decoding,
    selection_volumes,
)
from bigseg.train._loop import TrainResult, train
from bigseg.train._losses import LOSSES, make_loss
from bigseg.train._randomized import RandomNucleiConfig, random_nuclei
from bigseg.train._targets import DISTANCE_ALPHA, DISTANCE_BETA, bcd_targets
from bigseg.train._validate import decode_bcd, score

__all__ = [
    "DEFAULT_GRID",
    "DISTANCE_ALPHA",
    "DISTANCE_BETA",
    "LOSSES",
    "Augmenter",
    "DecodingChoice",
    "LabelledPair",
    "LabelledVolume",
    "RandomNucleiConfig",
    "SelectionVolume",
    "SyntheticPool",
    "TrainConfig",
    "TrainResult",
    "VolumeSource",
    "bcd_targets",
    "choose_decoding",
    "decode_bcd",
    "make_loss",
    "random_nuclei",
    "score",
    "selection_volumes",
    "train",
]
