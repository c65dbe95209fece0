"""Training: targets from labels, synthetic and file data, losses, the loop (``bigseg train``)."""

from bigseg.train._augment import Augmenter
from bigseg.train._config import LabelledPair, TrainConfig, UnlabelledImage, default_infer_patch_size
from bigseg.train._data import LabelledVolume, SyntheticPool, VolumeSource
from bigseg.train._decoding import (
    DEFAULT_GRID,
    DecodingChoice,
    SelectionVolume,
    choose_decoding,
    selection_volumes,
)
from bigseg.train._loop import TrainResult, train
from bigseg.train._losses import LOSSES, dice_3dcellseg, make_loss
from bigseg.train._ncuts import soft_ncuts
from bigseg.train._wnet import ArraySource, choose_foreground, train_wnet
from bigseg.train._targets import DISTANCE_ALPHA, DISTANCE_BETA, bcd_targets
from bigseg.train._validate import decode_bcd, score

__all__ = [
    "DEFAULT_GRID",
    "DISTANCE_ALPHA",
    "DISTANCE_BETA",
    "LOSSES",
    "ArraySource",
    "Augmenter",
    "DecodingChoice",
    "LabelledPair",
    "LabelledVolume",
    "SelectionVolume",
    "SyntheticPool",
    "TrainConfig",
    "default_infer_patch_size",
    "TrainResult",
    "UnlabelledImage",
    "VolumeSource",
    "bcd_targets",
    "choose_decoding",
    "choose_foreground",
    "decode_bcd",
    "dice_3dcellseg",
    "make_loss",
    "score",
    "selection_volumes",
    "soft_ncuts",
    "train",
    "train_wnet",
]
