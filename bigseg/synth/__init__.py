"""Synthetic 3D nuclei volumes with exact instance labels (NucGen3D-style).

One generator for tests, demos, benchmarks and training: ellipsoidal,
smoothly deformed nuclei placed by a local point process, rendered with
chromatin texture, PSF, haze, light-sheet artefacts and Poisson-Gaussian
noise; presets per modality in :data:`PRESETS`. Reproducible from a seed and
generated block by block: any blocking gives the same volume, bit for bit.

Beside the presets, a domain-randomisation mode (:func:`random_nuclei`) draws
small whole volumes with every property randomised (size, shape, density,
anisotropy, PSF, intensity, noise): the training data of the shipped models.
"""

from bigseg.synth._api import synthesize
from bigseg.synth._fields import KEY_CUBE
from bigseg.synth._params import SynthParams
from bigseg.synth._presets import PRESETS, preset
from bigseg.synth._randomized import RandomNucleiConfig, random_nuclei
from bigseg.synth._render import synthesize_block
from bigseg.synth._stats import truth_stats
from bigseg.synth._write import SynthResult, write_synthetic

__all__ = [
    "KEY_CUBE",
    "PRESETS",
    "RandomNucleiConfig",
    "SynthParams",
    "SynthResult",
    "preset",
    "random_nuclei",
    "synthesize",
    "synthesize_block",
    "truth_stats",
    "write_synthetic",
]
