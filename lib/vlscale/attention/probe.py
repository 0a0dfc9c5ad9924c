"""The attention stage's images: held-out pictures of four kinds of concept, and their objects' masks.

Like the paper's Tables 6 and 7 (images of cultures in Western-centric countries and in the countries of the
low-resource languages), the probe set holds, in equal numbers:
- culture: culture-specific concepts (the world's concepts with a home region, as Igorot dance or igloo);
- regional: objects whose look depends on the region (the GeoDE and Dollar Street objects);
- landmark: the landmarks (a tower of its own per landmark, tied to one country);
- head: common Western head concepts (ImageNet-like, as bison).
A concept belongs to the first of these groups it qualifies for. Images are held-out ids of every
page-language stratum (the benchmark analogs' draw, `evals.analogs.draw_ids`, under the analog name
"attention"), so no model trained on them. Pictures with a person are left out: the figure is a second
foreground object the mask does not cover, and a map that points at it would be scored a miss.

The centre prior (attention/baselines.py) is chosen on a second draw of the same size, groups and key from the
other half of the draw's counter (split "train"): held-out ids as well, disjoint from the probe images by
construction (one keyed permutation per stratum, two disjoint ranges of its positions).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from vlscale.attention.groups import GROUPS
from vlscale.evals.analogs import described_captions, draw_ids, even_quotas, image_meta
from vlscale.world.hashing import id_words
from vlscale.world.render import object_mask
from vlscale.world.truth import truth


@dataclass(frozen=True, eq=False)
class Probe:
    """ids [N] int64 held-out ids (draw order within each group); meta: image_meta's columns plus group,
    caption (what the picture shows, in its page's caption language) and caption_language."""
    ids: np.ndarray
    meta: pd.DataFrame


def concept_groups(world) -> np.ndarray:
    """[K] index into GROUPS of every concept (-1: in none)."""
    group = np.full(len(world.concepts), -1, np.int64)
    for g, member in reversed(list(enumerate((world.culture_region >= 0, world.has_variants,
                                              world.landmark_country >= 0, world.is_head)))):
        group[member] = g  # reversed: the first group a concept qualifies for wins
    return group


PROBE_SPLIT, PRIOR_SPLIT = "test", "train"  # the scored images; the images the centre prior is chosen on


def probe_set(world, per_group: int, key: int, split: str = PROBE_SPLIT) -> Probe:
    """`per_group` held-out images of each group of GROUPS, without a person, from every stratum equally, from
    the draw's `split` (PROBE_SPLIT: the probe images; PRIOR_SPLIT: the centre prior's, disjoint from them)."""
    group_of = concept_groups(world)
    ids = draw_ids(world, "attention", key, split, list(range(len(world.strata))),
                   even_quotas(per_group * len(GROUPS), len(GROUPS)),
                   lambda gt: np.where(gt["has_person"], -1, group_of[gt["concept"]]))
    gt = truth(world, ids)
    group = group_of[gt["concept"]]
    order = np.argsort(group, kind="stable")
    ids = ids[order]
    gt = {k: v[order] for k, v in gt.items()}
    meta = image_meta(world, gt)
    meta.insert(1, "group", np.asarray(GROUPS)[group[order]])
    languages = [world.strata[c] for c in gt["caption_language"]]
    meta["caption_language"] = languages
    caption = np.empty(len(ids), object)
    for lang in set(languages):
        rows = np.flatnonzero(np.asarray(languages) == lang)
        caption[rows] = described_captions(world, {k: v[rows] for k, v in gt.items()}, lang)
    meta["caption"] = caption
    return Probe(ids=ids, meta=meta)


def probe_masks(world, ids: np.ndarray, px: int) -> np.ndarray:
    """[N, px, px] bool: each image's object, where the renderer's coverage is at least one half."""
    hi, lo = id_words(ids)
    return object_mask(world, truth(world, ids), hi, lo, px) >= 0.5
