"""Switching one mechanism of the world off (mechanism attribution; docs/world.md, "Switching a mechanism off").

`ABLATIONS` names each mechanism a finding may rest on and the `world` params that switch it off. An ablation removes
the mechanism's dependence and keeps its pool-wide amount where it has one: caption noise equal in every region at
the pool's average rate, English alt-text equally common on every non-English page at the pool's average rate.
`ablate(world, name)` is the world block with the ablation's overlay laid over it, validated; the switched-off
world is drawn exactly as any other (tests/test_ablations.py measures each mechanism gone).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from vlscale.config import REGIONS, WorldParams, overlay
from vlscale.world.spec import build_world, region_page_share


@dataclass(frozen=True)
class Ablation:
    name: str
    mechanism: str  # what it switches off
    neutral: str  # the statistic of a drawn world that shows it off, at its neutral value
    overlay: Callable[[WorldParams], dict]  # the world block's values that switch it off, given the block


def _pool_rate(rates, weights) -> float:
    """The pool's average of per-group rates (weights: the groups' shares of pages), to 4 decimals."""
    return round(float(np.dot(rates, weights) / np.sum(weights)), 4)


def _region_noise(w: WorldParams) -> dict:
    share = region_page_share(w)
    return {"noise": {kind: dict.fromkeys(REGIONS, _pool_rate([getattr(w.noise, kind)[r] for r in REGIONS], share))
                      for kind in ("misaligned", "vague")}}


def _english_captions(w: WorldParams) -> dict:
    """English alt-text at one rate on every non-English page: the pool's rate over the page languages (tagged pages,
    and untagged pages by their caption language's share)."""
    world = build_world(w)
    share = world.page_share[:-1] + world.page_share[-1] * world.page_share[:-1] / world.page_share[:-1].sum()
    other = np.array([s != "en" for s in world.strata[:-1]])
    low = np.array([g == "low" for g in world.resource_group[:-1]])
    rates = np.where(low, w.noise.english_caption["low"], w.noise.english_caption["high"])
    return {"noise": {"english_caption": dict.fromkeys(("low", "high"), _pool_rate(rates[other], share[other]))}}


ABLATIONS = {a.name: a for a in (
    Ablation("region_noise", "caption noise (misaligned and vague captions) that differs by region",
             "each region's misaligned and vague rates equal", _region_noise),
    Ablation("english_low_resource", "more English alt-text on low-resource than on high-resource pages",
             "English-caption rate equal on low- and high-resource pages", _english_captions),
    Ablation("culture_boost", "culture-specific concepts boosted in their home region",
             "a culture-specific concept as likely at home as abroad", lambda w: {"culture_boost": 1.0}),
    Ablation("western_head", "the ImageNet-like (Western) concepts at the head of the popularity ranking",
             "Western concepts' popularity ranks exchangeable with the others'", lambda w: {"western_head": False}),
    Ablation("stereotype", "the gender-occupation stereotype",
             "P(stereotyped occupation of a pair | gender) = 0.5", lambda w: {"stereotype_strength": 0.5}),
    Ablation("gender_skew", "more men than women in pictures of people", "P(male | person) = 0.5",
             lambda w: {"male_share": 0.5}),
    Ablation("income_skew", "the web's over-representation of richer homes (income | country tilted)",
             "income | country equals Dollar Street's mix", lambda w: {"income_tilt": [1.0, 1.0, 1.0, 1.0]}),
    Ablation("income_appearance", "poorer homes' darker, more cluttered backgrounds",
             "an image unchanged when its income changes", lambda w: {"income_appearance": False}),
    Ablation("regional_variants", "regional objects' region-dependent look (texture and colour)",
             "no example drawn with a regional look", lambda w: {"regional_variants": False}),
)}


def ablation_names(names: str | list[str] | None) -> list[str]:
    """The ablations `names` asks for ("a,b", a list, or None/"all": every one), checked against ABLATIONS."""
    if names is None or names == "all":
        return list(ABLATIONS)
    names = names.split(",") if isinstance(names, str) else list(names)
    unknown = [n for n in names if n not in ABLATIONS]
    if unknown or not names:
        raise ValueError(f"unknown ablation(s) {unknown or names}; allowed: {', '.join(ABLATIONS)} (or 'all')")
    return names


def ablate(world: WorldParams | dict, name: str, source: str = "the world block") -> WorldParams:
    """The world block `world` with the mechanism `name` switched off (validated). A ValueError names an unknown
    ablation, or one whose mechanism is already off in `world` (`source` says where the block came from)."""
    world = WorldParams.model_validate(world)
    (name,) = ablation_names([name])
    base = world.model_dump()
    off = WorldParams.model_validate(overlay(base, ABLATIONS[name].overlay(world), f"ablation {name}"))
    if off.model_dump() == base:
        raise ValueError(f"ablation {name}: {source} already has {ABLATIONS[name].mechanism} switched off "
                         f"({ABLATIONS[name].overlay(world)}); nothing to compare")
    return off
