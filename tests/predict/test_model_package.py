"""Model packages: save → load round trips, and clear errors for broken packages."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from bigseg.errors import ModelPackageError, OutputExistsError
from bigseg.predict._card import ModelCard, parse_card
from bigseg.predict._networks import build_network
from bigseg.predict._package import (
    available_models,
    load_model_package,
    resolve_model,
    save_model_package,
)

KW = {"channels": (4, 8, 16), "strides": (2, 2)}


def _card(**kw) -> ModelCard:
    return ModelCard(name="tiny", architecture="unet", architecture_kwargs=KW, head="bcd", patch_size=(16, 16, 16), **kw)


def _trained_like_net() -> torch.nn.Module:
    torch.manual_seed(1)
    net = build_network("unet", "bcd", KW)
    net.train()
    with torch.no_grad():  # move the batch-norm running statistics away from their defaults
        net(torch.rand(2, 1, 16, 16, 16) * 3)
    return net.eval()


@pytest.mark.parametrize("target,weights", [("pkg", "weights.safetensors"), ("pkg.zip", "weights.safetensors"),
                                            ("pkg", "weights.pt")])
def test_round_trip_is_bit_identical(tmp_path: Path, target: str, weights: str) -> None:
    net = _trained_like_net()
    card = _card(weights=weights)
    path = save_model_package(net, card, tmp_path / target)
    loaded = load_model_package(path)
    assert loaded.card == card
    x = torch.rand(1, 1, 16, 24, 16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        a, b = net(x), loaded.network(x)
    assert torch.equal(a, b)  # exactly equal, not approximately
    for (ka, va), (kb, vb) in zip(net.state_dict().items(), loaded.network.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


def test_save_refuses_to_overwrite(tmp_path: Path) -> None:
    save_model_package(_trained_like_net(), _card(), tmp_path / "pkg")
    with pytest.raises(OutputExistsError, match="pkg exists; pass overwrite=True"):
        save_model_package(_trained_like_net(), _card(), tmp_path / "pkg")
    save_model_package(_trained_like_net(), _card(), tmp_path / "pkg", overwrite=True)


def test_missing_card(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelPackageError, match="empty: model folder has no card.json"):
        load_model_package(tmp_path / "empty")
    with zipfile.ZipFile(tmp_path / "m.zip", "w") as zf:
        zf.writestr("weights.safetensors", b"")
    with pytest.raises(ModelPackageError, match=r"zip has no card.json; members are \['weights.safetensors'\]"):
        load_model_package(tmp_path / "m.zip")


def test_unknown_model_name_lists_shipped_models() -> None:
    with pytest.raises(ModelPackageError, match="'no_such_model' is neither a model package.*shipped models"):
        resolve_model("no_such_model")


def _edit_card(path: Path, **changes) -> None:
    card = json.loads((path / "card.json").read_text())
    for key, value in changes.items():
        if value is None:
            card.pop(key)
        else:
            card[key] = value
    (path / "card.json").write_text(json.dumps(card))


@pytest.mark.parametrize(
    "changes,match",
    [
        ({"architecture": "vnet"}, r"(?s)card.json: invalid model card.*field `architecture`.*got 'vnet'"),
        ({"head": None}, r"field `head`: Field required"),
        ({"patch_size": [64, 64]}, r"field `patch_size`.*must have 3 values"),
        ({"voxel_size": [1, 0, 1]}, r"field `voxel_size`.*must be 3 finite numbers > 0"),
        ({"decoding": {"seed_foreground": 1.5}}, r"field `decoding`.*seed_foreground.*must be in \[0, 1\], got 1.5"),
        ({"decoding": {"seed_contour": "low"}}, r"field `decoding.seed_contour`.*valid number"),
        ({"decoding": {"min_volume_um3": 5.0}}, r"field `decoding`.*min_volume_um3 is not a property of the model"),
        ({"colour": "blue"}, r"field `colour`.*unknown field: remove it"),
        ({"weights": "../w.bin"}, r"field `weights`.*must be a file name"),
    ],
)
def test_invalid_card_fields_are_named(tmp_path: Path, changes: dict, match: str) -> None:
    path = save_model_package(_trained_like_net(), _card(), tmp_path / "pkg")
    _edit_card(path, **changes)
    with pytest.raises(ModelPackageError, match=match):
        load_model_package(path)


def test_card_of_an_earlier_release_still_loads() -> None:
    """Cards written before the one spelling `voxel_size` say `voxel_size_um`; a DecodingDefaults-era
    `decoding` section (five thresholds) reads as a DecodeParams."""
    raw = json.loads(_card().to_json())
    raw["voxel_size_um"] = raw.pop("voxel_size")
    raw["voxel_size_um"] = [2.0, 0.5, 0.5]
    raw["decoding"] = {"seed_foreground": 0.8, "seed_contour": 0.7, "seed_distance": 0.0, "mask_foreground": 0.3,
                       "mask_distance": -1.0}
    card = parse_card(json.dumps(raw), "old/card.json")
    assert card.voxel_size == (2.0, 0.5, 0.5) and card.decoding.seed_contour == 0.7
    assert '"voxel_size": [' in card.to_json() and "voxel_size_um" not in card.to_json()


def test_card_that_is_not_json() -> None:
    with pytest.raises(ModelPackageError, match="x/card.json: not valid JSON"):
        parse_card("{not json", "x/card.json")


def test_missing_weights_file(tmp_path: Path) -> None:
    path = save_model_package(_trained_like_net(), _card(), tmp_path / "pkg")
    (path / "weights.safetensors").unlink()
    with pytest.raises(ModelPackageError, match="weights file 'weights.safetensors'.*is missing"):
        load_model_package(path)


def test_weights_that_do_not_fit_the_architecture(tmp_path: Path) -> None:
    path = save_model_package(_trained_like_net(), _card(), tmp_path / "pkg")
    _edit_card(path, architecture_kwargs={"channels": [8, 16, 32], "strides": [2, 2]})
    with pytest.raises(ModelPackageError, match="weights do not fit architecture 'unet'"):
        load_model_package(path)


def test_corrupt_weights(tmp_path: Path) -> None:
    path = save_model_package(_trained_like_net(), _card(), tmp_path / "pkg")
    (path / "weights.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(ModelPackageError, match="cannot read the weights"):
        load_model_package(path)


def test_shipped_models_have_valid_cards() -> None:
    names = available_models()
    assert "bcd_unet_synth_v2" in names
    for name in names:
        loaded = load_model_package(name)
        assert loaded.card.name == name
        assert np.all(np.array(loaded.card.patch_size) > 0)
