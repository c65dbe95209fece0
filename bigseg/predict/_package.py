"""Model packages: a folder or ``.zip`` with ``card.json`` and the weights.

::

    my_model/                     my_model.zip
      card.json                     card.json
      weights.safetensors           weights.safetensors   (or weights.pt: a torch state dict)

Shipped packages live in ``bigseg/models/<name>/`` and are found by name;
``"default"`` names the shipped pair :data:`DEFAULT_MODELS`: the fine model
:data:`DEFAULT_MODEL` and, for nuclei only a few voxels across in a run that caps the
enlargement (``--max-upsample``), the coarse :data:`COARSE_MODEL`
(:func:`bigseg.predict.default_model_for` chooses).
"""

from __future__ import annotations

import functools
import io
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from bigseg.errors import ModelPackageError
from bigseg.predict._card import CARD_FILE, ModelCard, parse_card
from bigseg.predict._networks import build_network

__all__ = [
    "COARSE_MODEL",
    "DEFAULT_MODEL",
    "DEFAULT_MODELS",
    "LoadedModel",
    "available_models",
    "load_model_package",
    "read_card",
    "resolve_model",
    "save_model_package",
]

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "bcd_unet_synth_v2"
COARSE_MODEL = "bcd_unet_synth_coarse_v1"
DEFAULT_MODELS = (DEFAULT_MODEL, COARSE_MODEL)
_SHIPPED = Path(__file__).resolve().parent.parent / "models"


@dataclass(frozen=True)
class LoadedModel:
    """A network with its weights loaded (eval mode, CPU) and its card."""

    network: nn.Module
    card: ModelCard
    source: Path


def available_models() -> list[str]:
    """Names of the model packages shipped with bigseg."""
    if not _SHIPPED.is_dir():
        return []
    return sorted(p.name for p in _SHIPPED.iterdir() if (p / CARD_FILE).is_file())


def resolve_model(model: str | Path) -> Path:
    """Path of a model package given a path or a shipped model's name.

    Raises
    ------
    ModelPackageError
        If ``model`` is neither an existing path nor a shipped name.
    """
    name = str(model)
    if name == "default":
        name = DEFAULT_MODEL
    path = Path(name).expanduser()
    if path.exists():
        return path.resolve()
    shipped = _SHIPPED / name
    if (shipped / CARD_FILE).is_file():
        return shipped
    raise ModelPackageError(
        f"model {str(model)!r} is neither a model package (folder or .zip with {CARD_FILE}) nor a shipped "
        f"model; shipped models: {available_models() or 'none'} (use 'default' for {DEFAULT_MODEL})"
    )


def _read_files(path: Path) -> tuple[dict[str, bytes] | None, Path | None]:
    """Zip members by base name, or the folder; checks the card exists."""
    if path.is_dir():
        if not (path / CARD_FILE).is_file():
            raise ModelPackageError(f"{path}: model folder has no {CARD_FILE}; a package needs a card and weights")
        return None, path
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            files = {Path(n).name: zf.read(n) for n in zf.namelist() if not n.endswith("/")}
        if CARD_FILE not in files:
            raise ModelPackageError(f"{path}: zip has no {CARD_FILE}; members are {sorted(files)}")
        return files, None
    raise ModelPackageError(f"{path}: not a model package (expected a folder or a .zip with {CARD_FILE})")


def _load_state(blob: bytes, name: str, source: str) -> dict[str, torch.Tensor]:
    try:
        if name.endswith(".safetensors"):
            from safetensors.torch import load

            return load(blob)
        state = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any decoding failure means a broken file
        raise ModelPackageError(f"{source}/{name}: cannot read the weights ({exc}); re-export the package") from None
    if not isinstance(state, dict):
        raise ModelPackageError(f"{source}/{name}: must hold a state dict, got {type(state).__name__}")
    return state


def load_model_package(model: str | Path) -> LoadedModel:
    """Load and check a model package (see the module docstring for the layout).

    Raises
    ------
    ModelPackageError
        Naming the file and field that is wrong: a missing or invalid card,
        missing weights, or weights that do not fit the card's architecture.
    """
    path = resolve_model(model)
    return _load_cached(path, path.stat().st_mtime_ns)


def read_card(model: str | Path) -> ModelCard:
    """The card of a model package, without loading its weights."""
    path = resolve_model(model)
    return _card(path, *_read_files(path))


def _card(path: Path, files: dict[str, bytes] | None, folder: Path | None) -> ModelCard:
    text = files[CARD_FILE] if files is not None else (folder / CARD_FILE).read_bytes()  # type: ignore[operator]
    return parse_card(text, f"{path}/{CARD_FILE}")


@functools.lru_cache(maxsize=8)
def _load_cached(path: Path, mtime_ns: int) -> LoadedModel:
    files, folder = _read_files(path)
    card = _card(path, files, folder)
    if files is not None:
        blob = files.get(card.weights)
    else:
        wpath = folder / card.weights  # type: ignore[operator]
        blob = wpath.read_bytes() if wpath.is_file() else None
    if blob is None:
        raise ModelPackageError(
            f"{path}: weights file {card.weights!r} named by {CARD_FILE} field `weights` is missing; "
            "add it or fix the field"
        )
    state = _load_state(blob, card.weights, str(path))
    network = build_network(card.architecture, card.head, card.architecture_kwargs)
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0:3]
        raise ModelPackageError(
            f"{path}/{card.weights}: weights do not fit architecture {card.architecture!r} with "
            f"architecture_kwargs {card.architecture_kwargs} and head {card.head!r}: {' '.join(first)}; "
            "fix the card's `architecture`/`architecture_kwargs`/`head` or export the weights again"
        ) from None
    network.eval()
    logger.info("loaded model %s (%s, head %s) from %s", card.name, card.architecture, card.head, path)
    return LoadedModel(network=network, card=card, source=path)


def save_model_package(network: nn.Module, card: ModelCard, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``network``'s weights and ``card`` as a package.

    A ``path`` ending in ``.zip`` gives a zip archive, anything else a folder.
    Weights are written as safetensors when ``card.weights`` ends in
    ``.safetensors``, else as a torch state dict.

    Returns
    -------
    Path
        The package written.
    """
    from bigseg.errors import OutputExistsError

    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists; pass overwrite=True to replace it")
    state = {k: v.detach().cpu().contiguous() for k, v in network.state_dict().items()}
    if card.weights.endswith(".safetensors"):
        from safetensors.torch import save

        blob = save(state, metadata={"format": "pt", "bigseg_model": card.name})
    else:
        buf = io.BytesIO()
        torch.save(state, buf)
        blob = buf.getvalue()
    card_bytes = card.to_json().encode()
    if path.suffix == ".zip":
        path.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(CARD_FILE, card_bytes)
            zf.writestr(card.weights, blob)
    else:
        path.mkdir(parents=True, exist_ok=True)
        (path / card.weights).write_bytes(blob)
        (path / CARD_FILE).write_bytes(card_bytes)
    return path
