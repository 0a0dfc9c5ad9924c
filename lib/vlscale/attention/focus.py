"""How much of a model's attention falls on the object, measured against the object's ground-truth mask.

A map is non-negative and lives on a grid that divides the image: the MAP head's patch grid [gh, gw], or the
pixels themselves. A patch's weight is spread evenly over its pixels (nearest upsampling), so a map's mass
inside a mask is its weight times the share of the patch the mask covers. The mask is binary: a pixel is the
object's where the renderer's anti-aliased coverage is at least one half (`world.render.object_mask`).

Scores per image (docs/world.md, "Attention against the object's mask"):
- energy: the energy-based pointing game (Score-CAM, Wang et al. 2020), sum(S * M) / sum(S); all mass on the
  object gives 1, a uniform map gives the mask's area share;
- area: the mask's area share, so a uniform map's energy, and lift = energy / area (1 for a uniform map);
- hit: the pointing game (Zhang et al. 2016): the map's peak (the centre of its largest cell) is a hit when a
  mask pixel lies within `radius_px` of it; hit_chance is the share of the grid's cells whose centre would be a
  hit, what a peak placed at random scores;
- energy_bound: the largest share of one cell's area the mask covers. Energy is the normalised map's weights
  times the cells' covers, a weighted mean of the covers, so no map on this grid scores more, and the one-hot map
  at the most-covered cell scores exactly this: the bound of `energy` at this grid's resolution (below 1 where
  no cell lies wholly inside the object).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

FOCUS_COLUMNS = ("energy", "area", "lift", "hit", "hit_chance", "energy_bound", "peak", "object_peak")


def head_mean(weights, grid: tuple[int, int]) -> np.ndarray:
    """MAP-head attention [B, heads, 1, N] (the ViT's out["map_attention"]) averaged over heads, on the patch
    grid: float32 [B, gh, gw]."""
    w = np.asarray(weights, dtype=np.float32)
    if w.ndim != 4 or w.shape[2] != 1:
        raise ValueError(f"MAP attention of shape {w.shape}: expected [batch, heads, 1 probe, patches]")
    gh, gw = grid
    if w.shape[-1] != gh * gw:
        raise ValueError(f"MAP attention over {w.shape[-1]} tokens does not fill the {gh}x{gw} patch grid "
                         "(a run with token dropping keeps its tokens at train time only; maps need every patch)")
    return w.mean(axis=1)[:, 0].reshape(-1, gh, gw)


def _cell_cover(masks: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """[N, gh, gw]: the share of each grid cell's pixels inside the mask."""
    n, h, w = masks.shape
    gh, gw = grid
    if h % gh or w % gw:
        raise ValueError(f"a {gh}x{gw} map does not divide {h}x{w} masks into whole cells")
    return masks.reshape(n, gh, h // gh, gw, w // gw).mean(axis=(2, 4), dtype=np.float64)


def _cell_centres(grid: tuple[int, int], px: tuple[int, int]) -> np.ndarray:
    """[gh * gw, 2] (row, column) pixel coordinates of each cell's centre, pixel edges at integers."""
    gh, gw = grid
    rows = (np.arange(gh) + 0.5) * (px[0] / gh)
    cols = (np.arange(gw) + 0.5) * (px[1] / gw)
    return np.stack(np.meshgrid(rows, cols, indexing="ij"), axis=-1).reshape(-1, 2)


@dataclass(frozen=True, eq=False)
class Geometry:
    """What the scores need of N masks on one grid: cover [N, gh, gw] (each cell's share inside the mask), near
    [N, gh * gw] bool (a peak at the cell's centre is a pointing-game hit) and area [N] (the mask's share)."""
    cover: np.ndarray
    near: np.ndarray
    area: np.ndarray

    @property
    def grid(self) -> tuple[int, int]:
        return self.cover.shape[1], self.cover.shape[2]


def mask_geometry(masks, grid: tuple[int, int], radius_px: float) -> Geometry:
    """The Geometry of masks [N, H, W] bool on a [gh, gw] grid, with the pointing game's tolerance radius_px."""
    masks = np.asarray(masks)
    if masks.dtype != bool:
        raise ValueError(f"masks of dtype {masks.dtype}: expected bool (object_mask(...) >= 0.5)")
    if masks.ndim != 3:
        raise ValueError(f"masks of shape {masks.shape}: expected [N, H, W]")
    area = masks.mean(axis=(1, 2), dtype=np.float64)
    if (area == 0).any():
        raise ValueError(f"{int((area == 0).sum())} masks are empty: the object is outside the image")
    cover = _cell_cover(masks, tuple(grid))
    centres = _cell_centres(tuple(grid), masks.shape[1:])
    near = np.zeros((len(masks), len(centres)), bool)
    for i, m in enumerate(masks):
        tree = cKDTree(np.argwhere(m) + 0.5)  # mask pixel centres
        near[i] = np.isfinite(tree.query(centres, distance_upper_bound=radius_px + 1e-9)[0])
    return Geometry(cover=cover, near=near, area=area)


def _check_maps(maps, n: int) -> np.ndarray:
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim != 3 or len(maps) != n:
        raise ValueError(f"maps of shape {maps.shape}: expected [{n}, gh, gw], one per mask")
    if not np.isfinite(maps).all() or (maps < 0).any():
        raise ValueError("maps must be finite and non-negative")
    total = maps.sum(axis=(1, 2))
    if (total <= 0).any():
        raise ValueError(f"{int((total <= 0).sum())} maps have no mass")
    return maps / total[:, None, None]


def map_scores(maps, geo: Geometry) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(energy [N], hit [N] bool, peak [N]) of maps [N, gh, gw] against the masks of `geo`."""
    maps = _check_maps(maps, len(geo.area))
    if maps.shape[1:] != geo.grid:
        raise ValueError(f"maps on a {maps.shape[1]}x{maps.shape[2]} grid, masks' geometry on {geo.grid}")
    energy = (maps * geo.cover).sum(axis=(1, 2))
    peak = maps.reshape(len(maps), -1).argmax(axis=1)
    return energy, geo.near[np.arange(len(peak)), peak], peak


def geometry_scores(geo: Geometry) -> pd.DataFrame:
    """The scores of the images alone, one row per image: area, hit_chance, energy_bound and object_peak."""
    flat = geo.cover.reshape(len(geo.cover), -1)
    return pd.DataFrame({"area": geo.area, "hit_chance": geo.near.mean(axis=1), "energy_bound": flat.max(axis=1),
                         "object_peak": flat.argmax(axis=1)})


def focus_scores(maps, masks, radius_px: float, geo: Geometry | None = None) -> pd.DataFrame:
    """Every score of the module docstring, one row per image.

    maps: [N, gh, gw] non-negative (a patch grid, or [N, H, W] pixels); masks: [N, H, W] bool (the object);
    radius_px: the pointing game's tolerance, in pixels; geo: the masks' Geometry on the maps' grid, if already
    computed. `peak` is the flat index of the map's largest cell (the first, on ties), `object_peak` that of the
    cell the object covers most."""
    masks = np.asarray(masks)
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim != 3 or masks.ndim != 3 or len(maps) != len(masks):
        raise ValueError(f"maps {maps.shape} and masks {masks.shape}: expected [N, gh, gw] and [N, H, W]")
    geo = geo or mask_geometry(masks, maps.shape[1:], radius_px)
    energy, hit, peak = map_scores(maps, geo)
    images = geometry_scores(geo)
    return pd.DataFrame({"energy": energy, "area": images["area"], "lift": energy / images["area"], "hit": hit,
                         "hit_chance": images["hit_chance"], "energy_bound": images["energy_bound"], "peak": peak,
                         "object_peak": images["object_peak"]})


def peak_concentration(peaks: np.ndarray, n_cells: int) -> float:
    """The share of images whose peak is the most common peak cell: near 1 when a map lands on the same cells
    whatever the image shows (the high-norm "register" patches of Darcet et al. 2024), ~1/n_cells for
    peaks spread over the grid."""
    counts = np.bincount(np.asarray(peaks, dtype=np.int64), minlength=n_cells)
    return float(counts.max() / counts.sum())


def upsample(maps, px: int) -> np.ndarray:
    """Maps [N, gh, gw] to [N, px, px] by bilinear interpolation between cell centres (for display), in units
    of a uniform map's weight (1 everywhere for a uniform map)."""
    from scipy.ndimage import zoom

    maps = np.asarray(maps, dtype=np.float32)
    out = np.stack([zoom(m, (px / m.shape[0], px / m.shape[1]), order=1, mode="nearest", grid_mode=True)
                    for m in maps])
    return out * np.float32(maps.shape[1] * maps.shape[2]) / np.maximum(maps.sum(axis=(1, 2))[:, None, None], 1e-12)
