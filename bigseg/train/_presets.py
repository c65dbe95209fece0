"""Training volumes from ``bigseg.synth`` presets, brought to the model's scale.

A preset volume is rendered at the preset's own voxel size (anisotropic,
with its PSF, noise and artefacts), normalised with whole-volume percentiles
and resampled to the model's grid by the same :class:`ScaleMap` inference
uses, so training sees the resampling artefacts real data will show (z
interpolated up, x-y anti-aliased down). Density and diameter are
randomised around the preset, and the diameter passed to the scale is off
by a factor of 0.6-1.6 (log-uniform), as an estimate may be; with
``max_upsample`` small nuclei stay smaller than the model's diameter, as
inference leaves them.
"""

from __future__ import annotations

import numpy as np

from bigseg.predict import ScaleMap

__all__ = ["PRESET_NAMES", "preset_volume"]

# Fluorescence presets only ("em-like" has dark nuclei on a bright background).
PRESET_NAMES = ("confocal", "lightsheet-organoid", "dense", "mesospim")


def preset_volume(
    rng: np.random.Generator,
    shape: tuple[int, int, int],
    *,
    model_voxel_size: tuple[float, float, float],
    model_diameter: float,
    name: str | None = None,
    names: tuple[str, ...] = PRESET_NAMES,
    max_upsample: float | None = None,
    max_downsample: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic volume of ``shape`` model voxels from a random preset.

    ``name`` picks the preset (default: one drawn uniformly from ``names``; a name
    repeated there is drawn more often). ``max_downsample`` renders the preset at a
    coarser voxel where it would be shrunk more than that per axis on its way to the
    model (the same specimen imaged at a lower resolution): a coarse model then gets
    fine-voxel presets without rendering hundreds of millions of voxels.

    Returns
    -------
    image : (Z, Y, X) ndarray of float32
        Normalised with the 1st / 99.8th percentiles of the rendered volume.
    labels : (Z, Y, X) ndarray of uint32
    """
    from bigseg.synth import PRESETS, synthesize
    from bigseg.train._volumes import resample_labels

    drawn = names[int(rng.integers(len(names)))]
    name = name or drawn
    params = PRESETS[name]
    diameter = params.diameter_um * float(rng.uniform(0.8, 1.25))
    fraction = float(rng.uniform(0.25, 0.5)) if name == "dense" else float(rng.uniform(0.02, 0.3))
    guess = diameter * float(np.exp(rng.uniform(np.log(0.6), np.log(1.6))))  # the diameter estimate
    voxel: tuple[float, float, float] = params.voxel_size
    scale = ScaleMap.between(voxel, model_voxel_size, data_diameter=guess, model_diameter=model_diameter,
                             max_upsample=max_upsample)
    if max_downsample is not None and max(scale.step) > max_downsample:
        z, y, x = (v * max(1.0, st / max_downsample) for v, st in zip(voxel, scale.step))
        voxel = (z, y, x)
        scale = ScaleMap.between(voxel, model_voxel_size, data_diameter=guess, model_diameter=model_diameter,
                                 max_upsample=max_upsample)
    data_shape = tuple(max(4, int(np.ceil(n * st))) for n, st in zip(shape, scale.step))
    image, labels = synthesize(
        data_shape, preset=name, seed=int(rng.integers(2**31)), diameter_um=diameter, volume_fraction=fraction,
        voxel_size=voxel,
    )
    lo, hi = np.percentile(image, [1.0, 99.8])
    norm = (image.astype(np.float32) - lo) / max(float(hi - lo), 1e-6)
    small = scale.to_model(norm)
    lab = resample_labels(labels.astype(np.uint32), scale)
    out_img = np.zeros(shape, np.float32)
    out_lab = np.zeros(shape, np.uint32)
    sl = tuple(slice(0, min(a, b)) for a, b in zip(shape, small.shape))
    out_img[sl] = small[sl]
    out_lab[sl] = lab[sl]
    return out_img, out_lab
