"""Trained networks as predictors: :class:`ModelSpec` → :class:`ModelPredictor`.

Per block: resample to the model's scale on a global grid
(:class:`~bigseg.predict._scale.ScaleMap`), run the patches of the volume's
global patch grid that meet the block's write ROI
(:class:`~bigseg.predict._patches.PatchGrid`; batches, autocast on GPU),
optional flip test-time augmentation, head activation, and resampling back
to the write ROI. A voxel's maps are then the same whatever the blocking.
"""

from __future__ import annotations

import logging
import math
from contextlib import AbstractContextManager, nullcontext
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from bigseg.errors import InputError
from bigseg.maps import DEVICES, Device
from bigseg.predict._card import ModelCard
from bigseg.predict._device import CPU_BATCH, batch_for_memory, device_use
from bigseg.predict._networks import activate, patch_divisor
from bigseg.predict._package import COARSE_MODEL, DEFAULT_MODEL, load_model_package, read_card
from bigseg.predict._patches import Blend, PatchGrid, predict_on_grid
from bigseg.predict._scale import ScaleMap
from bigseg.tiling import Roi, parse_shape, parse_voxel_size

__all__ = ["MAX_UPSAMPLE", "ModelPredictor", "ModelSpec", "default_model_for", "default_model_spec", "semantic_to_bcd"]

logger = logging.getLogger(__name__)

Precision = Literal["auto", "fp32", "bf16", "fp16"]
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
# One CPU forward pass at a time per process, so that the pinned thread count holds for all of it.
_CPU_FORWARD = threading.Lock()
# The cap for whole-brain runs (CLI: --max-upsample 2): at most 8 model voxels per data voxel.
MAX_UPSAMPLE = 2.0
# Flip test-time augmentation: identity and one flip per axis of (N, C, Z, Y, X).
_TTA_FLIPS: tuple[tuple[int, ...], ...] = ((), (2,), (3,), (4,))


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """Hashable description of a model predictor (sent to Dask workers).

    Parameters
    ----------
    model : str
        Path of a model package (folder or .zip) or a shipped model's name;
        ``"default"`` is the shipped pair, resolved here to one model by
        :func:`default_model_for` from the scale and ``max_upsample``
        (``spec.model`` then names it).
    voxel_size : (float, float, float)
        Voxel size of the data, µm (z, y, x).
    diameter_um : float, optional
        Expected nucleus diameter in the data, µm. With the voxel size it sets
        the rescaling to the model's training scale; without it nuclei are
        assumed to be as large (µm) as the model's training nuclei.
    device : {"auto", "cpu", "cuda"}
        ``auto`` picks CUDA when available.
    tta : bool
        Average over flips along each axis (4 passes).
    batch_size : int, optional
        Patches per forward pass. Default: from the device's memory on CUDA
        (measured once per process, :func:`bigseg.predict.batch_for_memory` of
        the total memory, lowered where less is free),
        :data:`~bigseg.predict.CPU_BATCH` on CPU.
    patch_size : (int, int, int), optional
        Patch shape on the model's grid; the card's by default.
    precision : {"auto", "fp32", "bf16", "fp16"}
        ``auto``: bf16 autocast on a GPU that supports it (else fp16), fp32 on CPU.
    overlap : float, optional
        Fraction of a patch's window shared with its neighbours, in [0, 1).
        Default: ``"tile"`` drops a border of an eighth of the patch, at most 8
        model voxels (the default model's 80³ patches keep their centre of 64³:
        :meth:`PatchGrid.default`); ``"gaussian"`` overlaps by 0.25.
    threads : int
        CPU threads of each forward pass. oneDNN's reduction order, and so the
        maps' last bits, change with the thread count: pinning it makes the
        maps bit-identical whatever the process's setting or the scheduler
        (Dask workers run one thread each by default).
    blend : {"tile", "gaussian"}
        How patches combine (see :mod:`bigseg.predict._patches`): ``tile``
        keeps each patch's centre (the borders it drops are ``overlap / 2`` of the
        window each), ``gaussian`` averages overlapping patches with Gaussian weights.
    max_upsample : float, optional
        Largest enlargement of the data per axis on its way to the model's
        grid, e.g. 2: nuclei smaller than half the model's diameter in voxels
        then reach the model smaller than its training size instead of costing
        ``(1 / step)³`` model voxels per data voxel. Default ``None`` (no cap).
        With ``model="default"`` a cap also chooses the model
        (:func:`default_model_for`): nuclei the fine model would enlarge more
        than the cap along every axis go to the shipped coarse model, for which
        the fine ``bcd_unet_synth_v2`` collapses under the cap on
        mesoSPIM-like data (``docs/models.md``).
    """

    model: str = "default"
    voxel_size: tuple[float, float, float] = (1.0, 1.0, 1.0)
    diameter_um: float | None = None
    device: Device = "auto"
    tta: bool = False
    batch_size: int | None = None
    patch_size: tuple[int, int, int] | None = None
    precision: Precision = "auto"
    overlap: float | None = None
    blend: Blend = "tile"
    threads: int = 1
    max_upsample: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "model", str(self.model))
        object.__setattr__(self, "voxel_size", parse_voxel_size(self.voxel_size))
        if self.diameter_um is not None:
            d = float(self.diameter_um)
            if not (math.isfinite(d) and d > 0):
                raise InputError(f"`diameter_um` must be > 0 µm, got {self.diameter_um} (CLI: --diameter)")
            object.__setattr__(self, "diameter_um", d)
        if self.device not in DEVICES:
            raise InputError(f"`device` must be 'auto', 'cpu' or 'cuda', got {self.device!r} (CLI: --device)")
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise InputError(f"`precision` must be 'auto', 'fp32', 'bf16' or 'fp16', got {self.precision!r}")
        if self.batch_size is not None:
            if int(self.batch_size) < 1:
                raise InputError(f"`batch_size` must be >= 1 (or None: from the device's memory), got {self.batch_size}")
            object.__setattr__(self, "batch_size", int(self.batch_size))
        if int(self.threads) < 1:
            raise InputError(f"`threads` must be >= 1, got {self.threads}")
        object.__setattr__(self, "threads", int(self.threads))
        if self.patch_size is not None:
            object.__setattr__(self, "patch_size", parse_shape(self.patch_size, name="patch_size"))
        if self.overlap is not None:
            if not 0 <= float(self.overlap) < 1:
                raise InputError(f"`overlap` must be in [0, 1), got {self.overlap}")
            object.__setattr__(self, "overlap", float(self.overlap))
        if self.blend not in ("tile", "gaussian"):
            raise InputError(f"`blend` must be 'tile' or 'gaussian', got {self.blend!r}")
        object.__setattr__(self, "tta", bool(self.tta))
        if self.max_upsample is not None:
            m = float(self.max_upsample)
            if not (math.isfinite(m) and m >= 1):
                raise InputError(f"`max_upsample` must be >= 1 (or None for no cap), got {self.max_upsample}")
            object.__setattr__(self, "max_upsample", m)
        if self.model == "default":
            object.__setattr__(self, "model", default_model_for(self.voxel_size, self.diameter_um, self.max_upsample))

    def build(self) -> ModelPredictor:
        """Load the package and make the predictor (use ``get_predictor`` to cache it)."""
        loaded = load_model_package(self.model)
        return ModelPredictor(loaded.network, loaded.card, spec=self, source=loaded.source)


def default_model_for(
    voxel_size: tuple[float, float, float], diameter_um: float | None = None, max_upsample: float | None = None
) -> str:
    """The shipped model ``"default"`` names for data of ``voxel_size`` µm with nuclei ``diameter_um``
    across, enlarged at most ``max_upsample`` times per axis.

    Without a cap, the fine model (:data:`DEFAULT_MODEL`, nuclei 12 voxels across), whatever the
    enlargement (whole-brain light-sheet, nuclei 2-4 voxels across: about 4x per axis, 64 model
    voxels per data voxel). With a cap (``max_upsample``, e.g. :data:`MAX_UPSAMPLE`), data the fine
    model would enlarge more than that along every axis (nuclei under ``12 / max_upsample`` voxels
    across in every direction) go to the coarse model (:data:`COARSE_MODEL`, nuclei 9 voxels across,
    trained on 5.4-14.4): under the cap it sees them near its own scale, where the fine model would see
    them at half of its own and fail (``docs/models.md``). Either model then runs under the cap.
    """
    if max_upsample is None:
        return DEFAULT_MODEL
    fine = read_card(DEFAULT_MODEL)
    step = ScaleMap.between(voxel_size, fine.voxel_size, data_diameter=diameter_um, model_diameter=fine.diameter_um).step
    return DEFAULT_MODEL if max(step) >= 1.0 / max_upsample else COARSE_MODEL


def default_model_spec(
    voxel_size: tuple[float, float, float], diameter_um: float | None = None, **options: object
) -> ModelSpec:
    """Spec of the shipped default (the model :func:`default_model_for` picks) for data of ``voxel_size`` µm.

    ``options`` are further :class:`ModelSpec` fields (device, tta, ...).
    """
    return ModelSpec(model="default", voxel_size=voxel_size, diameter_um=diameter_um, **options)  # type: ignore[arg-type]


def _pick_device(device: str) -> torch.device:
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("device='cuda' was asked for but no CUDA device is available; use device='auto' or 'cpu'")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _pick_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype, or None for plain fp32."""
    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return _DTYPES.get(precision)


class ModelPredictor:
    """A loaded network that maps normalised blocks to BCD maps.

    Implements :class:`bigseg.predict.Predictor`; build it from a
    :class:`ModelSpec` (through ``get_predictor`` to load it once per process).
    """

    def __init__(self, network: torch.nn.Module, card: ModelCard, *, spec: ModelSpec, source: Path | None = None) -> None:
        self.card = card
        self.spec = spec
        self.source = source
        self.device = _pick_device(spec.device)
        self.autocast_dtype = _pick_precision(spec.precision, self.device)
        self.network = network.to(self.device).eval()
        if self.device.type == "cuda":
            # Same kernels every run (cuDNN autotuning picks per run); warn_only: some ops have no
            # deterministic CUDA kernel. Worker processes are bigseg's, so the global switch is ours.
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True
            torch.use_deterministic_algorithms(True, warn_only=True)
        self.scale = ScaleMap.between(
            spec.voxel_size, card.voxel_size, data_diameter=spec.diameter_um, model_diameter=card.diameter_um,
            max_upsample=spec.max_upsample,
        )
        self.divisor = patch_divisor(card.architecture, card.architecture_kwargs)
        self.patch_size = spec.patch_size or card.patch_size
        bad = [p for p in self.patch_size if p % self.divisor]
        if bad:
            raise InputError(
                f"`patch_size` {self.patch_size} must be multiples of {self.divisor} for architecture "
                f"{card.architecture!r}; e.g. {tuple(-(-p // self.divisor) * self.divisor for p in self.patch_size)}"
            )
        self.patches = (PatchGrid.default(self.patch_size, spec.blend) if spec.overlap is None
                        else PatchGrid.from_overlap(self.patch_size, spec.overlap, spec.blend))
        self._batch_size = spec.batch_size
        self._batch_lock = threading.Lock()
        logger.info("model %s on %s, %s; data voxels per model voxel %s", card.name, self.device,
                    self.autocast_dtype or "fp32", tuple(round(s, 3) for s in self.scale.step))

    @property
    def halo(self) -> tuple[int, int, int]:
        """Data voxels of context (z, y, x) a write ROI needs for maps equal to the whole volume's.

        The patches that meet a write ROI read :attr:`PatchGrid.reach` model voxels
        beyond it, one more is interpolated back to the data, and the
        resampling adds its support (:meth:`ScaleMap.halo`).
        """
        return self.scale.halo(tuple(r + 1 for r in self.patches.reach))  # type: ignore[arg-type]

    def grid_halo(self, block_shape: tuple[int, ...], volume_shape: tuple[int, ...]) -> tuple[int, int, int]:
        """Data voxels of context (z, y, x) the blocks of one grid need: at most :attr:`halo`.

        :attr:`halo` holds for a write ROI anywhere; the blocks of a grid (write ROIs at multiples
        of ``block_shape``, clipped to ``volume_shape``) need only the input their own patches
        read, the most of any block per axis. Where write ROIs start and end on patch boundaries
        (step 1 and power-of-two blocks of at least 64 voxels with the default 80³ windows
        keeping 64³) that is the border (8), not the reach (71)::

            write ROI            |<------ 128 ------>|
            patch supports   ... |   64    |   64    | ...
            windows read       [8|   64    |8]
                                      [8|   64    |8]
        """
        block, volume = parse_shape(block_shape, name="block_shape"), parse_shape(volume_shape, name="volume_shape")
        return tuple(self._axis_halo(a, b, n) for a, (b, n) in enumerate(zip(block, volume)))  # type: ignore[return-value]

    def _axis_halo(self, axis: int, block: int, size: int) -> int:
        """The most any block's patches read beyond its write ROI along ``axis``, in data voxels."""
        st, grid = self.scale.step[axis], self.patches
        p, s, m, n = grid.size[axis], grid.stride[axis], grid.border[axis], grid.support[axis]
        identity = self.scale.is_identity
        # Anti-aliasing support (scipy's radius int(truncate * sigma + 0.5)): blurred values near a cut differ.
        blur = int(3.0 * (st - 1) / 2 + 0.5) if st > 1 else 0
        k_end = self.scale.model_range((0, 0, 0), (size, size, size))[1][axis]  # model voxels of the volume
        need = 0
        for a in range(0, size, block):
            e = min(a + block, size)
            lo, hi = (a, e) if identity else (math.floor(a / st), math.floor((e - 1) / st) + 2)
            lo, hi = max(lo, 0), min(hi, k_end)
            first, last = math.ceil((lo - n + 1) / s), (hi - 1) // s
            k0, k1 = max(first * s - m, 0), min(last * s - m + p, k_end)  # model voxels the windows read
            # Linear interpolation reads data voxels floor(k * step) and the next.
            d0, d1 = (k0, k1) if identity else (math.floor(k0 * st) - blur, math.floor((k1 - 1) * st) + 2 + blur)
            need = max(need, a - max(d0, 0), min(d1, size) - e)
        return need

    @property
    def batch_size(self) -> int:
        """Patches per forward pass: the spec's, else :data:`CPU_BATCH` on CPU, else sized to the
        device's memory (measured at the first use, once per process)."""
        with self._batch_lock:
            if self._batch_size is None:
                self._batch_size = CPU_BATCH if self.device.type == "cpu" else self._batch_from_memory()
                logger.info("model %s on %s: %d patches of %s per forward pass", self.card.name, self.device,
                            self._batch_size, self.patch_size)
            return self._batch_size

    def _batch_from_memory(self) -> int:
        """The largest batch that fits the device, from the peak memory of passes of 1 and 2 patches.

        Decided on the device's total memory, so that every worker with the same GPU model picks the
        same batch (a GPU's numerics, and so the maps' last bits, depend on it); lowered, with a
        warning, where other processes leave less free memory than that batch needs.
        """
        dev = self.device
        torch.cuda.synchronize(dev)
        free, total = torch.cuda.mem_get_info(dev)
        peaks = []
        for n in (1, 2):
            torch.cuda.reset_peak_memory_stats(dev)
            base = torch.cuda.memory_allocated(dev)
            with torch.inference_mode():
                self._forward(torch.zeros((n, 1, *self.patch_size), device=dev))
            torch.cuda.synchronize(dev)
            peaks.append(torch.cuda.max_memory_allocated(dev) - base)
        per_patch = max(peaks[1] - peaks[0], 1)
        fixed = max(peaks[0] - per_patch, 0)
        batch = batch_for_memory(total, per_patch, fixed_bytes=fixed)
        fits = batch_for_memory(free, per_patch, fixed_bytes=fixed)
        if fits < batch:
            logger.warning("%s: %.1f of %.1f GiB free; %d patches per pass instead of %d (maps may differ in their "
                           "last bits from workers that use %d)", dev, free / 2**30, total / 2**30, fits, batch, batch)
        return min(batch, fits)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        flips = _TTA_FLIPS if self.spec.tta else ((),)
        total: torch.Tensor | None = None
        for dims in flips:
            xi = torch.flip(x, dims) if dims else x
            if self.autocast_dtype is not None:
                with torch.autocast(self.device.type, dtype=self.autocast_dtype):
                    logits = self.network(xi)
            else:
                logits = self.network(xi)
            maps = activate(logits.float(), self.card.head)
            maps = torch.flip(maps, dims) if dims else maps
            total = maps if total is None else total + maps
        assert total is not None  # flips is never empty
        return total / len(flips)

    def _device_slot(self) -> AbstractContextManager[None]:
        """One thread at a time on a GPU (its memory holds one batch); CPU threads each use their own cores."""
        return device_use(str(self.device)) if self.device.type == "cuda" else nullcontext()

    def _run(self, batch: torch.Tensor) -> torch.Tensor:
        """Maps of one batch; on a GPU they stay there (blending too: no wait for the host between batches)."""
        if self.device.type != "cpu":
            return self._forward(batch.to(self.device)).float()
        with _CPU_FORWARD:
            before = torch.get_num_threads()
            torch.set_num_threads(self.spec.threads)
            try:
                return self._forward(batch).float()
            finally:
                torch.set_num_threads(before)

    def predict_model_grid(
        self, image: np.ndarray, *, origin: tuple[int, ...] = (0, 0, 0),
        lo: tuple[int, ...] | None = None, hi: tuple[int, ...] | None = None,
    ) -> np.ndarray:
        """Maps of the model box ``[lo, hi)`` (default: all of ``image``) of an image already on the model's grid.

        ``image[0, 0, 0]`` is global model voxel ``origin``. Returns ``(C, *(hi - lo))`` (C = head channels).
        """
        lo = origin if lo is None else lo
        hi = tuple(o + n for o, n in zip(origin, image.shape)) if hi is None else hi
        return predict_on_grid(np.asarray(image, dtype=np.float32), self._run, self.patches, origin=origin,
                               lo=lo, hi=hi, batch_size=self.batch_size)

    def predict(
        self, image: np.ndarray, *, offset: tuple[int, ...] = (0, 0, 0), write_roi: Roi | None = None
    ) -> np.ndarray:
        """BCD maps of one normalised block, or of its write ROI.

        Parameters
        ----------
        image : (Z, Y, X) ndarray
            Normalised block (~[0, 1], whole-volume percentiles).
        offset : (int, int, int)
            Global voxel position of ``image[0, 0, 0]`` (the block's read-ROI offset).
        write_roi : Roi, optional
            Global box inside the block whose maps are wanted; the whole block
            by default. Resampling and patches sit on grids fixed to the
            volume, so a write ROI at least :attr:`halo` from every cut that is
            not the volume's edge gets exactly the whole volume's maps. Without
            it, an image that fits in one patch (on the model's grid) runs as
            that one patch: a whole small volume, not a block.

        Returns
        -------
        (3, *write_roi.shape) ndarray of float32
            Foreground [0, 1], contour [0, 1], signed distance [-1, 1].
        """
        if image.ndim != 3:
            raise InputError(f"`image` must be a (Z, Y, X) block, got shape {image.shape}")
        if min(image.shape) < 1:
            raise InputError(f"`image` must not be empty, got shape {image.shape}")
        offset = tuple(int(o) for o in offset)
        if len(offset) != 3:
            raise InputError(f"`offset` must be 3 ints (z, y, x), got {offset}")
        block = Roi(offset, image.shape)
        roi = block if write_roi is None else write_roi
        if roi.empty or not block.contains(roi):
            raise InputError(f"`write_roi` {roi} must be a non-empty box inside the block {block}")
        small = self.scale.to_model(np.asarray(image, dtype=np.float32), offset)
        k_img, _ = self.scale.model_range(offset, image.shape)
        fitted = tuple(-(-n // self.divisor) * self.divisor for n in small.shape)
        if write_roi is None and all(f <= p for f, p in zip(fitted, self.patch_size)):
            # A whole image that fits in one patch is one patch (no blocking to be independent of):
            # small volumes (training, decoding selection, diameter crops) cost one patch, not up to 8.
            one = PatchGrid(fitted, fitted, (0, 0, 0), "tile")  # type: ignore[arg-type]
            with self._device_slot():
                maps = predict_on_grid(small, self._run, one, origin=(0, 0, 0), lo=(0, 0, 0), hi=small.shape,
                                       batch_size=1)
            return self._finish(maps, offset, image.shape, k_img)
        if self.scale.is_identity:
            lo, hi = roi.offset, roi.end
        else:
            lo, hi = self.scale.model_cover(roi.offset, roi.shape)
        lo = tuple(max(a, k) for a, k in zip(lo, k_img))
        hi = tuple(min(b, k + n) for b, k, n in zip(hi, k_img, small.shape))
        with self._device_slot():
            maps = self.predict_model_grid(small, origin=k_img, lo=lo, hi=hi)
        return self._finish(maps, roi.offset, roi.shape, lo)

    def _finish(
        self, maps: np.ndarray, offset: tuple[int, ...], shape: tuple[int, ...], k0: tuple[int, ...]
    ) -> np.ndarray:
        """Head conversion, resampling of model voxels from ``k0`` onto the data box, clipping."""
        if self.card.head == "semantic":
            # The distance comes from an EDT of this box's mask: not blocking-invariant (docs/stitching.md).
            maps = semantic_to_bcd(maps[0], self.card.targets.distance_alpha)
        out = maps if self.scale.is_identity else self.scale.to_data(maps, offset, shape, k0=k0)
        np.clip(out[:2], 0.0, 1.0, out=out[:2])
        np.clip(out[2], -1.0, 1.0, out=out[2])
        return np.ascontiguousarray(out, dtype=np.float32)


def semantic_to_bcd(fg: np.ndarray, alpha: float) -> np.ndarray:
    """BCD maps from a foreground probability: contour = 4p(1-p), distance from the mask's EDT."""
    import edt

    mask = fg > 0.5
    dist = np.where(
        mask,
        np.tanh(edt.edt(mask, black_border=False) / alpha),
        -np.tanh(edt.edt(~mask, black_border=False) / (alpha * 6)),
    )
    return np.stack([fg, 4 * fg * (1 - fg), dist]).astype(np.float32)
