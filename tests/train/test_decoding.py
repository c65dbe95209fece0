"""Choosing decoding thresholds on selection volumes, and `bigseg train` writing them into the card."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import bigseg.train._decoding as decoding
from bigseg.errors import InputError
from bigseg.predict import load_model_package
from bigseg.testing import balls_volume
from bigseg.train import (
    SelectionVolume,
    TrainConfig,
    bcd_targets,
    choose_decoding,
    train,
)


class _FromTruth:
    """A stand-in predictor whose maps are the truth's BCD targets, foreground scaled to ``level``."""

    card = SimpleNamespace(input=SimpleNamespace(percentiles=(1.0, 99.8)))

    def __init__(self, labels: np.ndarray, level: float) -> None:
        self.maps = bcd_targets(labels).astype(np.float32)
        self.maps[0] *= level

    def predict(self, image: np.ndarray) -> np.ndarray:
        return self.maps


def _volume(seed: int) -> SelectionVolume:
    centres = np.random.default_rng(seed).uniform(9, 23, (4, 3)) * (1, 1.5, 1.5)
    image, labels = balls_volume((32, 48, 48), centres, radius=5, seed=seed)
    return SelectionVolume(f"balls-{seed}", image, labels, (1.0, 1.0, 1.0), 10.0)


def test_the_setting_that_scores_best_is_chosen() -> None:
    vols = [_volume(1)]
    # Foreground peaks at 0.6: only seed_foreground 0.5 finds seeds; ties go to the earlier setting.
    grid = [(0.8, 0.5, 0.0, 0.3), (0.65, 0.5, 0.0, 0.3), (0.5, 0.5, 0.0, 0.3), (0.5, 0.5, 0.0, 0.2)]
    choice = choose_decoding(lambda vs, d: _FromTruth(vols[0].labels, 0.6), vols, grid=grid)
    assert (choice.params.seed_foreground, choice.params.mask_foreground) == (0.5, 0.3)
    assert choice.f1_50 == pytest.approx(1.0) and choice.scores[(0.8, 0.5, 0.0, 0.3)] == (0.0, 0.0)
    assert choice.summary()["chosen"] == [0.5, 0.5, 0.0, 0.3] and choice.summary()["settings"] == 4
    with pytest.raises(InputError, match="`grid` must be a non-empty list"):
        choose_decoding(lambda vs, d: None, vols, grid=[(0.5, 0.5)])
    with pytest.raises(InputError, match="`volumes` is empty"):
        choose_decoding(lambda vs, d: None, [], grid=grid)


def test_train_writes_the_chosen_thresholds_into_the_card(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny: dict
) -> None:
    monkeypatch.setattr(decoding, "selection_volumes", lambda: [_volume(3)])
    monkeypatch.setattr(decoding, "DEFAULT_GRID", ((0.8, 0.7, 0.4, 0.5), (0.5, 0.3, 0.0, 0.2)))
    cfg = TrainConfig(out=str(tmp_path / "run"), steps=1, val_every=1, checkpoint_every=1,
                      **{**tiny, "tune_decoding": True})
    card = load_model_package(train(cfg).package).card
    record = card.provenance.metrics["decoding_selection"]
    assert record["settings"] == 2 and list(record["per_volume"]) == ["balls-3"]
    chosen = record["chosen"]
    assert chosen in ([0.8, 0.7, 0.4, 0.5], [0.5, 0.3, 0.0, 0.2])
    assert [card.decoding.seed_foreground, card.decoding.seed_contour, card.decoding.seed_distance,
            card.decoding.mask_foreground] == chosen


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason=(
    "two of the four domain-randomised selection volumes changed when the generator's z stretch was made to act "
    "along z (it acted along a random axis); the shipped card's thresholds were chosen on the old set. "
    "Re-choose them with the next default model"))
def test_the_shipped_cards_thresholds_are_what_the_selection_chooses() -> None:
    """docs/models.md: the default model's decoding comes from choose_decoding on synthetic volumes only."""
    from bigseg.predict import default_model_spec, get_predictor

    choice = choose_decoding(lambda vs, d: get_predictor(default_model_spec(vs, d, device="cpu")))
    d = load_model_package("default").card.decoding
    assert choice.summary()["chosen"] == [d.seed_foreground, d.seed_contour, d.seed_distance, d.mask_foreground]
    assert choice.f1_50 >= 0.7 and choice.f1_75 >= 0.6  # measured 0.750 / 0.681
