"""What maps that do not look at the image score, so that a model's focus can be read against them.

Objects sit near the image centre, so a map that ignores the image can still point at the object. Four blind
maps, each scored per probe image like a model:
- uniform: every cell alike; its energy is the mask's area share (focus.py `area`);
- random peak: a peak at a cell drawn at random; its expected hit is the share of cells that would hit
  (focus.py `hit_chance`);
- centre prior: the one map that scores best on images *other than the scored ones* (a disjoint draw of the
  same groups, rendered alike), then fixed. Energy and the pointing game are linear in the normalised map
  (energy = sum_c s_c cover_c with sum_c s_c = 1; the hit rate of a peak at c is the share of images where c
  hits), so over a set of images their means are weighted means over cells and no map beats the best vertex of
  the simplex: the one-hot map at the cell with the largest mean cover (energy), the peak at the cell with the
  highest hit rate (pointing game). It is the strongest content-free map the prior's images can choose;
- image-shuffled: each model's own map of another probe image of the same group (a fixed derangement, the same
  for every run), scored against this image's mask: the model's spatial habits without the image's content.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vlscale.attention.focus import Geometry, map_scores


@dataclass(frozen=True, eq=False)
class CentrePrior:
    """The centre prior's cells (flat indices on the grid) and what it was chosen on: the mean cover [gh, gw]
    and the hit rate of a peak at each cell [gh, gw] over the prior's `images` images."""
    energy_cell: int
    hit_cell: int
    mean_cover: np.ndarray
    hit_rate: np.ndarray
    images: int

    def record(self) -> dict:
        grid = self.mean_cover.shape
        return {"energy_cell": self.energy_cell, "hit_cell": self.hit_cell, "grid": list(grid),
                "energy_cell_rc": [int(i) for i in np.unravel_index(self.energy_cell, grid)],
                "hit_cell_rc": [int(i) for i in np.unravel_index(self.hit_cell, grid)],
                "mean_cover": self.mean_cover.tolist(), "hit_rate": self.hit_rate.tolist(), "images": self.images}


def centre_prior(prior: Geometry) -> CentrePrior:
    """The centre prior chosen on the prior images' Geometry (module docstring); ties go to the first cell."""
    mean_cover = prior.cover.mean(axis=0)
    hit_rate = prior.near.mean(axis=0).reshape(prior.grid)
    return CentrePrior(energy_cell=int(mean_cover.argmax()), hit_cell=int(hit_rate.argmax()),
                       mean_cover=mean_cover, hit_rate=hit_rate, images=len(prior.area))


def prior_scores(prior: CentrePrior, geo: Geometry) -> tuple[np.ndarray, np.ndarray]:
    """(energy [N], hit [N] bool) of the centre prior on the images of `geo` (its one-hot maps, scored)."""
    n, cells = len(geo.area), int(np.prod(geo.grid))
    for name, cell in (("energy_cell", prior.energy_cell), ("hit_cell", prior.hit_cell)):
        if not 0 <= cell < cells:
            raise ValueError(f"the centre prior's {name} {cell} is not a cell of the {geo.grid} grid")
    energy, _, _ = map_scores(_one_hot(prior.energy_cell, n, geo.grid), geo)
    _, hit, _ = map_scores(_one_hot(prior.hit_cell, n, geo.grid), geo)
    return energy, hit


def _one_hot(cell: int, n: int, grid: tuple[int, int]) -> np.ndarray:
    maps = np.zeros((n, grid[0] * grid[1]))
    maps[:, cell] = 1.0
    return maps.reshape(n, *grid)


def derangement(groups, rng: np.random.Generator) -> np.ndarray:
    """[N] partner of each image: the next image on a random cycle through its group (a random order of the
    group, each image taking its successor, the last the first), so no image is its own partner. Refuses a group
    of one image."""
    groups = np.asarray(groups)
    partner = np.arange(len(groups))
    for g in dict.fromkeys(groups.tolist()):
        rows = np.flatnonzero(groups == g)
        if len(rows) < 2:
            raise ValueError(f"group {g!r} has {len(rows)} image: a shuffled baseline needs two per group")
        cycle = rng.permutation(rows)
        partner[cycle] = np.roll(cycle, -1)
    return partner


def shuffled_scores(maps, geo: Geometry, partner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(energy [N], hit [N] bool): row i scores the map of image partner[i] against image i's mask."""
    partner = np.asarray(partner)
    if partner.shape != (len(geo.area),) or np.any(partner == np.arange(len(partner))):
        raise ValueError(f"partner of shape {partner.shape}: expected a derangement of {len(geo.area)} images")
    energy, hit, _ = map_scores(np.asarray(maps)[partner], geo)
    return energy, hit
