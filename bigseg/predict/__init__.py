"""Predictors: image block → BCD maps (foreground, contour, signed distance)."""

from bigseg.predict._classical import ClassicalPredictor, ClassicalSpec
from bigseg.predict._normalize import Normalization, estimate_normalization
from bigseg.predict._protocol import CONTOUR, DISTANCE, FOREGROUND, MAP_CHANNELS, Predictor, PredictorSpec
from bigseg.predict._registry import get_predictor

__all__ = [
    "CONTOUR",
    "DISTANCE",
    "FOREGROUND",
    "MAP_CHANNELS",
    "ClassicalPredictor",
    "ClassicalSpec",
    "Normalization",
    "Predictor",
    "PredictorSpec",
    "estimate_normalization",
    "get_predictor",
]
