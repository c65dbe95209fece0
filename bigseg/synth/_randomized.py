"""Domain-randomised synthetic nuclei: the generator's mode beside the presets.

Each call draws a fresh ``(image, labels)`` pair whose nuclei are about
``diameter`` voxels across (scaled by a factor drawn from ``diameter_range``),
at a random density from sparse to touching, with random shapes, z squash or
stretch, textures, point-spread blur, z anisotropy, debris, haze and
Poisson-Gaussian noise, then percentile-normalised like the pipeline
normalises a volume. The point is variety (domain randomisation), not realism
of one microscope: a model trained on it has to rely on shape.

The presets (:func:`bigseg.synth.synthesize`) render one modality block by
block, the same for any blocking; this mode draws one small volume at once
(a training draw, cheap enough for one per few steps on a CPU), so it has no
blocks to agree across. A draw is a pure function of its seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from bigseg.errors import InputError

__all__ = ["RandomNucleiConfig", "random_nuclei"]


@dataclass(frozen=True, slots=True)
class RandomNucleiConfig:
    """Ranges the generator draws from (lengths in voxels at the model's scale).

    Attributes
    ----------
    diameter : float
        Median nucleus diameter, voxels.
    diameter_range : (float, float)
        Relative range of a volume's mean diameter (log-uniform).
    fill_range : (float, float)
        Fraction of the volume covered by nuclei.
    anisotropy_range : (float, float)
        Factor by which z is degraded (blur + downsample + linear upsample),
        drawn when anisotropy is simulated (probability ``p_anisotropy``).
    z_scale_range : (float, float)
        Factor on every nucleus' z axis (labels and image), drawn uniformly
        with probability ``p_z_scale``: below 1 squashed in z (data whose z
        step was not fully interpolated away), above 1 stretched (axial blur
        drawn into the labels).
    """

    diameter: float = 12.0
    diameter_range: tuple[float, float] = (0.7, 1.4)
    fill_range: tuple[float, float] = (0.01, 0.45)
    anisotropy_range: tuple[float, float] = (1.5, 4.5)
    p_anisotropy: float = 0.5
    z_scale_range: tuple[float, float] = (1.1, 1.7)
    p_z_scale: float = 0.25

    def __post_init__(self) -> None:
        if not self.diameter > 1:
            raise InputError(f"`diameter` must be > 1 voxel, got {self.diameter}")
        for name in ("diameter_range", "fill_range", "anisotropy_range", "z_scale_range"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise InputError(f"`{name}` must be (low, high) with 0 < low <= high, got {(lo, hi)}")
        for name in ("p_anisotropy", "p_z_scale"):
            if not 0 <= getattr(self, name) <= 1:
                raise InputError(f"`{name}` must be in [0, 1], got {getattr(self, name)}")


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Gaussian random field with unit standard deviation."""
    f = ndi.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma)
    return f / max(float(f.std()), 1e-6)


def _rotation(rng: np.random.Generator) -> np.ndarray:
    q = rng.standard_normal(4)
    a, b, c, d = q / np.linalg.norm(q)
    return np.array(
        [
            [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
            [2 * (b * c + a * d), a * a - b * b + c * c - d * d, 2 * (c * d - a * b)],
            [2 * (b * d - a * c), 2 * (c * d + a * b), a * a - b * b - c * c + d * d],
        ]
    )


def _place_nuclei(rng: np.random.Generator, shape: tuple[int, ...], cfg: RandomNucleiConfig) -> np.ndarray:
    """Instance labels: perturbed ellipsoids; overlaps go to the nearest centre."""
    mean_d = cfg.diameter * float(np.exp(rng.uniform(*np.log(cfg.diameter_range))))
    fill = rng.uniform(*cfg.fill_range)
    # Dense volumes need nuclei to press into each other; sparse ones keep them apart.
    min_sep = rng.uniform(0.55, 0.85) if fill > 0.25 else rng.uniform(0.8, 1.2)
    pad = int(mean_d)
    big = tuple(s + 2 * pad for s in shape)
    target = fill * np.prod(big)
    irregular = _smooth_noise(rng, big, sigma=mean_d / 4) * rng.uniform(0.0, 0.12)
    # Some samples have nuclei stretched along z (as labels of z-smeared data often are), or squashed.
    z_stretch = rng.uniform(*cfg.z_scale_range) if rng.random() < cfg.p_z_scale else 1.0
    to_round = np.array([1.0 / z_stretch, 1.0, 1.0])  # lab frame -> frame where the nuclei are round
    best = np.full(big, 1.0 + 0.3, dtype=np.float32)  # normalised radius of the nearest nucleus
    labels = np.zeros(big, dtype=np.uint32)
    centres: list[np.ndarray] = []
    radii: list[float] = []
    volume, tries, n = 0.0, 0, 0
    while volume < target and tries < 4000:
        tries += 1
        r = 0.5 * mean_d * rng.uniform(0.8, 1.2)
        c = rng.uniform(0, np.array(big) - 1)
        if centres:
            dist = np.linalg.norm((np.array(centres) - c) * to_round, axis=1)
            if np.any(dist < min_sep * (np.array(radii) + r)):
                continue
        axes = r * np.exp(rng.normal(0, 0.15, 3))
        axes *= r / np.prod(axes) ** (1 / 3)
        n += 1
        _stamp(labels, best, irregular, c, axes, _rotation(rng), n, z_stretch)
        centres.append(c)
        radii.append(r)
        volume += 4 / 3 * np.pi * r**3
    crop = tuple(slice(pad, pad + s) for s in shape)
    return labels[crop]


def _stamp(labels, best, irregular, c, axes, rot, n, z_scale) -> None:  # type: ignore[no-untyped-def]
    """Write nucleus ``n`` (semi-axes ``axes`` turned by ``rot``, then scaled by ``z_scale`` along z)."""
    ext = int(np.ceil(axes.max() * 1.3 * max(z_scale, 1.0))) + 1
    lo = np.maximum(np.floor(c).astype(int) - ext, 0)
    hi = np.minimum(np.floor(c).astype(int) + ext + 1, labels.shape)
    if np.any(hi <= lo):
        return
    sl = tuple(slice(a, b) for a, b in zip(lo, hi))
    grid = np.stack(np.meshgrid(*(np.arange(a, b) for a, b in zip(lo, hi)), indexing="ij"), -1) - c
    grid[..., 0] /= z_scale  # the z scale acts in the volume's frame, after the random orientation
    q = np.linalg.norm((grid @ rot) / axes, axis=-1).astype(np.float32) + irregular[sl]
    win = (q < 1.0) & (q < best[sl])
    labels[sl][win] = n
    best[sl][win] = q[win]


def _render(rng: np.random.Generator, labels: np.ndarray, cfg: RandomNucleiConfig) -> np.ndarray:
    """Microscope-like image of ``labels`` (float32, arbitrary scale)."""
    shape = labels.shape
    n = int(labels.max())
    level = np.zeros(n + 1, dtype=np.float32)
    level[1:] = rng.uniform(0.25, 1.0, n) if rng.random() < 0.7 else rng.uniform(0.7, 1.0, n)
    img = level[labels]
    fg = labels > 0
    if rng.random() < 0.8:  # chromatin texture
        img *= 1 + rng.uniform(0.1, 0.5) * _smooth_noise(rng, shape, rng.uniform(0.7, 2.0))
    if rng.random() < 0.3:  # brighter or dimmer rim
        inner = ndi.binary_erosion(fg, iterations=int(rng.integers(1, 3)))
        img[fg & ~inner] *= rng.uniform(0.5, 1.8)
    if rng.random() < 0.5:
        # Dimmer towards the edge: labels reach into the faint rim of a nucleus, as annotators draw them.
        import edt

        depth = edt.edt(labels, black_border=False)
        fall = rng.uniform(0.3, 0.7) * np.exp(-(depth - 1) / rng.uniform(1.5, 4.0))
        img *= np.where(fg, 1 - fall, 1).astype(np.float32)
    if rng.random() < 0.5:  # unlabelled debris, dimmer than nuclei
        debris = rng.random(shape) < rng.uniform(1e-5, 2e-4)
        debris = ndi.binary_dilation(debris, iterations=int(rng.integers(1, 3))) & ~fg
        img[debris] = rng.uniform(0.1, 0.45) * level[1:].mean()
    img = np.clip(img, 0, None)
    sxy = rng.uniform(0.3, 1.5)
    img = ndi.gaussian_filter(img, (sxy * rng.uniform(1.0, 3.0), sxy, sxy))
    if rng.random() < 0.5:  # out-of-focus haze
        img += rng.uniform(0.05, 0.4) * ndi.gaussian_filter(img, rng.uniform(4, 10))
    bg = rng.uniform(0.0, 0.35) * (1 + rng.uniform(0, 0.5) * _smooth_noise(rng, shape, 16))
    if rng.random() < 0.4:  # textured background (cytoplasm, autofluorescence)
        bg = bg + rng.uniform(0.05, 0.3) * np.clip(_smooth_noise(rng, shape, rng.uniform(1.5, 5.0)), 0, None)
    img = img + np.clip(bg, 0, None)
    if rng.random() < cfg.p_anisotropy:
        img = _degrade_z(img, rng.uniform(*cfg.anisotropy_range))
    photons = np.exp(rng.uniform(np.log(5), np.log(300)))
    img = rng.poisson(np.clip(img, 0, None) * photons).astype(np.float32) / photons
    img += rng.normal(0, rng.uniform(0, 0.06), shape).astype(np.float32)
    return np.clip(img, 0, None) ** rng.uniform(0.7, 1.4)


def _degrade_z(img: np.ndarray, factor: float) -> np.ndarray:
    """Simulate a coarse z step: blur, keep every ``factor``-th plane, interpolate back."""
    img = ndi.gaussian_filter1d(img, factor / 2.5, axis=0)
    z = np.arange(0, img.shape[0] - 1e-6, factor)
    coarse = ndi.map_coordinates(img, _coords(z, img.shape), order=1, mode="nearest")
    back = np.arange(img.shape[0]) / factor
    return ndi.map_coordinates(coarse, _coords(back, coarse.shape), order=1, mode="nearest")


def _coords(z: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    zz, yy, xx = np.meshgrid(z, np.arange(shape[1]), np.arange(shape[2]), indexing="ij")
    return np.stack([zz, yy, xx])


def random_nuclei(
    shape: tuple[int, int, int],
    *,
    seed: int | Sequence[int] | np.random.Generator | None = None,
    config: RandomNucleiConfig | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw one synthetic training volume.

    Parameters
    ----------
    shape : (int, int, int)
        Volume shape (Z, Y, X), voxels at the model's scale.
    seed : int, sequence of int or Generator, optional
        Seed for a deterministic draw.
    config : RandomNucleiConfig, optional
        Ranges to draw from; defaults to nuclei ~12 voxels across.

    Returns
    -------
    image : (Z, Y, X) ndarray of float32
        Normalised with the 1st / 99.8th percentiles (± jitter), not clipped.
    labels : (Z, Y, X) ndarray of uint32
        Instance labels, 0 = background.
    """
    cfg = config or RandomNucleiConfig()
    rng = np.random.default_rng(seed)
    labels = _place_nuclei(rng, tuple(int(s) for s in shape), cfg)
    img = _render(rng, labels, cfg)
    lo, hi = np.percentile(img, [rng.uniform(0.3, 3.0), rng.uniform(99.0, 99.95)])
    image = ((img - lo) / max(hi - lo, 1e-6)).astype(np.float32)
    if rng.random() < 0.3:
        # In a sparse volume the high percentile falls on background and nuclei normalise far above 1.
        image *= rng.uniform(1.0, 4.0)
    return image, labels
