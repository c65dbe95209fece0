"""Where the nuclei are: a deterministic, local point process.

Space is cut into cubic-ish *cells* (in voxels, from the origin; one ring of
cells outside the volume so that nuclei cut by the border are as frequent as
inside). A cell's candidate nuclei are drawn from
``np.random.default_rng([seed, tag, cell])`` alone, so any block can rebuild
the candidates it needs without seeing the rest of the volume::

      cell (-1,-1)  cell (-1,0)  ...
            ┌──────┬──────┬──────┐
            │ ·    │   ·  │ ·  · │   · candidate centres
            ├──────┼──────┼──────┤   cells are >= 2 x the largest nucleus
            │   ·  │ ·    │    · │   radius, so nuclei conflict only with
            └──────┴──────┴──────┘   the 26 neighbouring cells

Each candidate has a random priority. It is accepted unless it overlaps
(more than ``max_intersection``) a *higher-priority accepted* candidate: random
sequential addition, a global rule whose answer for one candidate depends
only on chains of strictly rising priority around it. :class:`Placement`
follows those chains lazily, so every block gets the exact global answer
whatever the blocking.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from bigseg.errors import InputError
from bigseg.synth._params import SynthParams
from bigseg.synth._tissue import tissue_inside
from bigseg.tiling import Roi

__all__ = ["Geometry", "NucleusSet", "Placement", "directional_radius"]

TAG_NUCLEI = 1
TAG_CLUSTER = 2
TAG_BLOB = 3
N_WAVES = 3  # terms of the radial perturbation
_KEY_OFFSET = 1 << 32  # keeps rng keys of negative positions non-negative
_TARGET_PER_CELL = 6.0
_MAX_LABEL = np.iinfo(np.uint32).max


@dataclass(frozen=True, slots=True)
class Geometry:
    """Derived constants of the point process for one parameter set and volume."""

    mu: float  # log-normal diameter parameters
    sigma: float
    r_max_um: float  # largest possible bounding radius of a nucleus
    cell_vox: tuple[int, int, int]
    n_cells: tuple[int, int, int]  # cells covering the volume (without the outer ring)
    lam: float  # mean candidates per cell
    per_cell: int  # cap on candidates per cell (and ID stride)
    blob_sigma_max_um: float
    n_sub: tuple[int, int, int]  # lattice sites per cell and axis (regular placement)
    site_prob: float  # chance that a lattice site holds a candidate

    @classmethod
    def of(cls, p: SynthParams, shape: tuple[int, int, int]) -> Geometry:
        sigma = math.sqrt(math.log1p(p.diameter_cv**2))
        mu = math.log(p.diameter_um) - sigma**2 / 2
        d_max = math.exp(mu + 2.5 * sigma)
        stretch = max(1.0, p.axial_stretch)
        r_max = d_max / 2 * math.exp(2 * p.axis_sd) * (1 + p.irregularity) * stretch
        mean_vol = math.pi / 6 * math.exp(3 * mu + 4.5 * sigma**2) * p.axial_stretch
        blob_max = p.blob_sigma_um * math.exp(0.6) if p.blob_fraction > 0 else 0.0
        edge = max(2 * r_max, r_max + 3 * blob_max, (_TARGET_PER_CELL * mean_vol / p.volume_fraction) ** (1 / 3))
        site = (mean_vol / p.volume_fraction) ** (1 / 3)  # lattice spacing (µm) giving volume_fraction
        n_side = math.ceil(edge / site) if p.regularity > 0 else 1
        cell = tuple(max(1, math.ceil(n_side * site / v if p.regularity > 0 else edge / v)) for v in p.voxel_size)
        n_sub = (n_side,) * 3
        cell_um3 = math.prod(c * v for c, v in zip(cell, p.voxel_size))
        lam = p.volume_fraction * cell_um3 / mean_vol
        site_prob = min(1.0, lam / math.prod(n_sub))
        if p.regularity > 0:
            per_cell = math.prod(n_sub)
        else:
            lam_max = lam * math.exp(3 * p.clustering)
            per_cell = int(lam_max + 6 * math.sqrt(lam_max) + 8)
        n_cells = tuple(-(-s // c) for s, c in zip(shape, cell))
        total = math.prod(n + 2 for n in n_cells) * per_cell
        if total >= _MAX_LABEL:
            raise InputError(
                f"a volume of shape {shape} at this density needs label IDs up to {total}, more than "
                "uint32 holds; write it in parts or lower `volume_fraction`/`clustering`"
            )
        return cls(mu, sigma, r_max, cell, n_cells, lam, per_cell, blob_max, n_sub, site_prob)  # type: ignore[arg-type]

    def cell_range(self, roi: Roi, margin_vox: tuple[float, ...]) -> Iterator[tuple[int, int, int]]:
        """Cells (outer ring included) whose nuclei may reach ``roi`` grown by ``margin_vox``."""
        ranges = []
        for o, e, c, n, m in zip(roi.offset, roi.end, self.cell_vox, self.n_cells, margin_vox):
            lo = max(-1, math.floor((o - m) / c) - 1)
            hi = min(n, math.floor((e - 1 + m) / c) + 1)
            ranges.append(range(lo, hi + 1))
        for cz in ranges[0]:
            for cy in ranges[1]:
                for cx in ranges[2]:
                    yield (cz, cy, cx)


@dataclass(frozen=True, slots=True)
class NucleusSet:
    """Nuclei as a struct of arrays (n nuclei), sorted by ``ids``.

    ``centre`` is in voxels (z, y, x); ``axes`` are semi-axes in µm (before
    ``axial_stretch``); ``inv``
    holds ``R diag(1/a^2) R^T`` (µm^-2) so that a point ``d`` µm from the
    centre lies on the ellipsoid when ``d^T inv d = 1``; ``bound_um`` is a
    radius that contains the whole (perturbed) nucleus.
    """

    ids: np.ndarray  # (n,) int64
    centre: np.ndarray  # (n, 3) float64, voxels
    axes: np.ndarray  # (n, 3) float64, µm
    inv: np.ndarray  # (n, 3, 3) float64, µm^-2
    bound_um: np.ndarray  # (n,)
    prio: np.ndarray  # (n,)
    brightness: np.ndarray  # (n,) relative, mean 1
    wave_dir: np.ndarray  # (n, N_WAVES, 3) unit vectors
    wave_freq: np.ndarray  # (n, N_WAVES)
    wave_phase: np.ndarray  # (n, N_WAVES)
    wave_weight: np.ndarray  # (n, N_WAVES), scaled so |perturbation| <= irregularity

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def take(self, index: np.ndarray) -> NucleusSet:
        return NucleusSet(*(getattr(self, f)[index] for f in self.__slots__))  # type: ignore[arg-type]

    @staticmethod
    def concat(parts: list[NucleusSet]) -> NucleusSet:
        return NucleusSet(*(np.concatenate([getattr(p, f) for p in parts]) for f in NucleusSet.__slots__))


def directional_radius(nuc: NucleusSet, index: np.ndarray, u: np.ndarray, irregularity: float) -> np.ndarray:
    """Radius (µm) of nuclei ``index`` along unit vectors ``u`` ((m, 3), world frame)."""
    a = nuc.inv[index]
    q = np.einsum("mi,mij,mj->m", u, a, u)
    return (1.0 + perturbation(nuc, index, u, irregularity)) / np.sqrt(q)


def perturbation(nuc: NucleusSet, index: np.ndarray, u: np.ndarray, irregularity: float) -> np.ndarray:
    """Relative radial perturbation of nuclei ``index`` along unit vectors ``u`` (m, 3)."""
    if irregularity == 0:
        return np.zeros(u.shape[0])
    t = np.einsum("mi,mji->mj", u, nuc.wave_dir[index])
    return np.sum(nuc.wave_weight[index] * np.cos(nuc.wave_freq[index] * t + nuc.wave_phase[index]), axis=1)


class Placement:
    """The accepted nuclei of one volume, computed lazily cell by cell.

    Parameters
    ----------
    params : SynthParams
    shape : (3,) tuple of int
        Volume shape in voxels (z, y, x).
    seed : int
        Non-negative seed; the same seed gives the same nuclei.
    """

    def __init__(self, params: SynthParams, shape: tuple[int, int, int], seed: int) -> None:
        self.params = params
        self.shape = shape
        self.seed = int(seed)
        self.geo = Geometry.of(params, shape)
        self._vs = np.asarray(params.voxel_size, dtype=np.float64)
        self._cells: dict[tuple[int, int, int], NucleusSet] = {}
        self._higher: dict[int, list[int]] = {}
        self._resolved: set[tuple[int, int, int]] = set()
        self._status: dict[int, bool] = {}
        self._lattice: dict[tuple[int, int, int], float] = {}

    # -- candidates ---------------------------------------------------------
    def cell_id_base(self, cell: tuple[int, int, int]) -> int:
        nz, ny, nx = (n + 2 for n in self.geo.n_cells)
        lin = ((cell[0] + 1) * ny + cell[1] + 1) * nx + cell[2] + 1
        return 1 + lin * self.geo.per_cell

    def cell_of_id(self, nid: int) -> tuple[int, int, int]:
        _, ny, nx = (n + 2 for n in self.geo.n_cells)
        lin = (nid - 1) // self.geo.per_cell
        return (lin // (ny * nx) - 1, (lin // nx) % ny - 1, lin % nx - 1)

    def candidates(self, cell: tuple[int, int, int]) -> NucleusSet:
        """All candidate nuclei of one cell (accepted or not)."""
        got = self._cells.get(cell)
        if got is None:
            got = self._draw_cell(cell)
            self._cells[cell] = got
        return got

    def _draw_cell(self, cell: tuple[int, int, int]) -> NucleusSet:
        p, geo = self.params, self.geo
        rng = np.random.default_rng([self.seed, TAG_NUCLEI, *(c + 1 for c in cell)])
        slot, centre = self._positions(rng, cell)
        n = slot.size
        diam = np.exp(geo.mu + geo.sigma * np.clip(rng.standard_normal(n), -2.5, 2.5))
        logs = rng.normal(0.0, p.axis_sd, (n, 3)) if p.axis_sd > 0 else np.zeros((n, 3))
        logs = np.clip(logs - logs.mean(axis=1, keepdims=True), -2 * p.axis_sd, 2 * p.axis_sd)
        axes = diam[:, None] / 2 * np.exp(logs)
        rot = _rotations(rng.standard_normal((n, 4)))
        inv = np.einsum("nij,nj,nkj->nik", rot, 1.0 / axes**2, rot)
        if p.axial_stretch != 1:  # x -> diag(s, 1, 1) x, so inv -> S^-1 inv S^-1
            unstretch = np.array([1.0 / p.axial_stretch, 1.0, 1.0])
            inv = inv * unstretch[None, :, None] * unstretch[None, None, :]
        prio = rng.random(n)
        s_int = math.sqrt(math.log1p(p.intensity_cv**2))
        brightness = np.exp(s_int * np.clip(rng.standard_normal(n), -3, 3) - s_int**2 / 2)
        wdir = rng.standard_normal((n, N_WAVES, 3))
        wdir /= np.linalg.norm(wdir, axis=2, keepdims=True)
        wfreq = rng.uniform(1.5, 4.0, (n, N_WAVES))
        wphase = rng.uniform(0, 2 * math.pi, (n, N_WAVES))
        wweight = rng.uniform(0.5, 1.0, (n, N_WAVES))
        wweight *= p.irregularity / wweight.sum(axis=1, keepdims=True)
        ids = self.cell_id_base(cell) + slot
        bound = axes.max(axis=1) * (1 + p.irregularity) * max(1.0, p.axial_stretch)
        out = NucleusSet(ids, centre, axes, inv, bound, prio, brightness, wdir, wfreq, wphase, wweight)
        # Drawn first, filtered after: a cell's random stream does not depend on the tissue.
        return out.take(np.flatnonzero(self._in_tissue(centre))) if p.tissue != "none" else out

    def _in_tissue(self, centre: np.ndarray) -> np.ndarray:
        return tissue_inside(self.params.tissue, self.shape, self.seed, centre[:, 0], centre[:, 1], centre[:, 2])

    def _positions(self, rng: np.random.Generator, cell: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Slot numbers (ID offsets within the cell) and centres (voxels) of a cell's candidates.

        ``regularity == 0``: a Poisson number of uniform points. Otherwise one
        point per occupied lattice site, jittered by ``1 - regularity`` of
        the site: fewer near-collisions, so far denser packings survive.
        """
        geo, r = self.geo, self.params.regularity
        cell_vox = np.asarray(geo.cell_vox, dtype=np.float64)
        if r == 0:
            n = min(int(rng.poisson(geo.lam * self._density(cell))), geo.per_cell)
            return np.arange(n, dtype=np.int64), (np.asarray(cell) + rng.random((n, 3))) * cell_vox
        n_sites = geo.per_cell
        occupied = rng.random(n_sites) < geo.site_prob * self._density(cell)
        jitter = rng.random((n_sites, 3)) - 0.5
        slot = np.flatnonzero(occupied).astype(np.int64)
        site = np.stack(np.unravel_index(slot, geo.n_sub), axis=1)
        frac = (site + 0.5 + (1 - r) * jitter[slot]) / np.asarray(geo.n_sub)
        return slot, (np.asarray(cell) + frac) * cell_vox

    def _density(self, cell: tuple[int, int, int]) -> float:
        """Relative density (mean about 1) of the clustering field at the cell centre."""
        s = self.params.clustering
        if s == 0:
            return 1.0
        pos = (np.asarray(cell) + 0.5) * np.asarray(self.geo.cell_vox) * self._vs / self.params.cluster_scale_um
        base = np.floor(pos).astype(np.int64)
        frac = pos - base
        value = 0.0
        for corner in np.ndindex(2, 2, 2):
            w = float(np.prod(np.where(corner, frac, 1 - frac)))
            bz, by, bx = (int(b + c) for b, c in zip(base, corner))
            value += w * self._lattice_value((bz, by, bx))
        # trilinear interpolation of unit normals has variance about (2/3)^3
        n = float(np.clip(value / (2 / 3) ** 1.5, -3, 3))
        return math.exp(s * n - s * s / 2)

    def _lattice_value(self, key: tuple[int, int, int]) -> float:
        v = self._lattice.get(key)
        if v is None:
            rng = np.random.default_rng([self.seed, TAG_CLUSTER, *(k + _KEY_OFFSET for k in key)])
            v = float(rng.standard_normal())
            self._lattice[key] = v
        return v

    def neighbourhood(self, cell: tuple[int, int, int]) -> NucleusSet:
        """Candidates of ``cell`` and its 26 neighbours (inside the outer ring)."""
        parts = []
        for off in np.ndindex(3, 3, 3):
            c = tuple(int(a + b - 1) for a, b in zip(cell, off))
            if all(-1 <= ci <= ni for ci, ni in zip(c, self.geo.n_cells)):
                parts.append(self.candidates(c))  # type: ignore[arg-type]
        return NucleusSet.concat(parts)

    # -- acceptance ---------------------------------------------------------
    def _higher_conflicts(self, nid: int) -> list[int]:
        """IDs of the higher-priority candidates that candidate ``nid`` overlaps too much."""
        cell = self.cell_of_id(nid)
        if cell not in self._resolved:
            self._resolve_cell(cell)
        return self._higher[nid]

    def _resolve_cell(self, cell: tuple[int, int, int]) -> None:
        own, nb = self.candidates(cell), self.neighbourhood(cell)
        out: list[list[int]] = [[] for _ in range(len(own))]
        if len(own) and len(nb):
            ii = np.repeat(np.arange(len(own)), len(nb))
            jj = np.tile(np.arange(len(nb)), len(own))
            higher = (nb.prio[jj] > own.prio[ii]) | ((nb.prio[jj] == own.prio[ii]) & (nb.ids[jj] < own.ids[ii]))
            ii, jj = ii[higher], jj[higher]
            bad = self._too_close(own, ii, nb, jj)
            for i, j in zip(ii[bad], jj[bad]):
                out[int(i)].append(int(nb.ids[j]))
        for i, lst in enumerate(out):
            self._higher[int(own.ids[i])] = lst
        self._resolved.add(cell)

    def _too_close(self, a: NucleusSet, ia: np.ndarray, b: NucleusSet, ib: np.ndarray) -> np.ndarray:
        d = (b.centre[ib] - a.centre[ia]) * self._vs
        dist = np.linalg.norm(d, axis=1)
        # cheap pre-filter: farther apart than both bounding radii can never conflict
        near = dist < a.bound_um[ia] + b.bound_um[ib]
        out = np.zeros(dist.shape, dtype=bool)
        if not near.any():
            return out
        d, dist, ia, ib = d[near], dist[near], ia[near], ib[near]
        u = d / np.maximum(dist, 1e-12)[:, None]
        irr = self.params.irregularity
        ra = directional_radius(a, ia, u, irr)
        rb = directional_radius(b, ib, -u, irr)
        depth = ra + rb - dist
        out[near] = (dist == 0) | (depth > self.params.max_intersection * np.minimum(ra, rb))
        return out

    def accepted(self, nid: int) -> bool:
        """Whether candidate ``nid`` survives random sequential addition."""
        status = self._status
        if nid in status:
            return status[nid]
        stack = [nid]
        while stack:
            top = stack[-1]
            if top in status:
                stack.pop()
                continue
            higher = self._higher_conflicts(top)
            if any(status.get(h) is True for h in higher):
                status[top] = False
                stack.pop()
                continue
            pending = [h for h in higher if h not in status]
            if pending:
                stack.extend(pending)  # strictly higher priority: no cycles
                continue
            status[top] = True
            stack.pop()
        return status[nid]

    # -- queries ------------------------------------------------------------
    def nuclei_near(self, roi: Roi, margin_um: float = 0.0) -> NucleusSet:
        """Accepted nuclei whose bounding sphere grown by ``margin_um`` meets ``roi``, sorted by ID."""
        margin_vox = tuple((self.geo.r_max_um + margin_um) / v for v in self.params.voxel_size)
        parts = []
        for cell in self.geo.cell_range(roi, margin_vox):
            cand = self.candidates(cell)
            if not len(cand):
                continue
            reach = (cand.bound_um[:, None] + margin_um) / self._vs
            lo, hi = np.asarray(roi.offset) - 0.5, np.asarray(roi.end) - 0.5
            meets = np.all((cand.centre + reach > lo) & (cand.centre - reach < hi), axis=1)
            keep = [i for i in np.flatnonzero(meets) if self.accepted(int(cand.ids[i]))]
            if keep:
                parts.append(cand.take(np.asarray(keep, dtype=np.int64)))
        if not parts:
            return _empty()
        out = NucleusSet.concat(parts)
        return out.take(np.argsort(out.ids, kind="stable"))

    def blobs_near(self, roi: Roi) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Bright non-nuclear blobs whose 3-sd support meets ``roi``.

        Returns
        -------
        centre : (m, 3) ndarray of float64, voxels
        sigma_um : (m,) ndarray of float64
        peak : (m,) ndarray of float64, relative to ``|nucleus_intensity|``
        """
        p = self.params
        if p.blob_fraction == 0:
            return np.zeros((0, 3)), np.zeros(0), np.zeros(0)
        reach_um = 3 * self.geo.blob_sigma_max_um
        parts = []
        for cell in self.geo.cell_range(roi, tuple(reach_um / v for v in p.voxel_size)):
            centre, sigma, peak = self._blob_cell(cell)
            reach = 3 * sigma[:, None] / self._vs
            lo, hi = np.asarray(roi.offset) - 0.5, np.asarray(roi.end) - 0.5
            meets = np.all((centre + reach > lo) & (centre - reach < hi), axis=1)
            parts.append((centre[meets], sigma[meets], peak[meets]))
        if not parts:
            return np.zeros((0, 3)), np.zeros(0), np.zeros(0)
        return tuple(np.concatenate([q[i] for q in parts]) for i in range(3))  # type: ignore[return-value]

    def _blob_cell(self, cell: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Blob candidates of one cell that stay clear of every accepted nucleus."""
        p = self.params
        rng = np.random.default_rng([self.seed, TAG_BLOB, *(c + 1 for c in cell)])
        n = int(rng.poisson(self.geo.lam * p.blob_fraction))
        centre = (np.asarray(cell) + rng.random((n, 3))) * np.asarray(self.geo.cell_vox)
        sigma = p.blob_sigma_um * np.exp(np.clip(0.3 * rng.standard_normal(n), -0.6, 0.6))
        peak = p.blob_intensity * np.exp(0.4 * rng.standard_normal(n))
        nb = self.neighbourhood(cell)
        clear = self._in_tissue(centre) if p.tissue != "none" else np.ones(n, dtype=bool)
        for i in np.flatnonzero(clear):
            dist = np.linalg.norm((nb.centre - centre[i]) * self._vs, axis=1)
            close = np.flatnonzero(dist <= nb.bound_um + 3 * sigma[i])
            clear[i] = not any(self.accepted(int(nb.ids[j])) for j in close)
        return centre[clear], sigma[clear], peak[clear]


def _rotations(q: np.ndarray) -> np.ndarray:
    """Uniformly random rotation matrices (n, 3, 3) from normal 4-vectors (n, 4)."""
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], axis=-1),
            np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], axis=-1),
            np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], axis=-1),
        ],
        axis=1,
    )


def _empty() -> NucleusSet:
    z = np.zeros
    return NucleusSet(
        z(0, np.int64), z((0, 3)), z((0, 3)), z((0, 3, 3)), z(0), z(0), z(0),
        z((0, N_WAVES, 3)), z((0, N_WAVES)), z((0, N_WAVES)), z((0, N_WAVES)),
    )
