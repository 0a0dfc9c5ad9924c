"""What each filter arm keeps: the top k pool pairs of its own selection score, NaN where a pair is not eligible.

The arms that are a top k (SCORED_ARMS) and the column of the scores table each selects by:
- clip (column clip_en): the scorer's image-text cosine among pairs whose caption is English, NaN elsewhere:
  the paper's CLIP filter, which keeps the best-scored pairs of English alt-text;
- clip_multilingual (column clip): the scorer's cosine of every pair: the top k of the whole multilingual pool;
- classifier (column classifier): P(aligned) of every pair;
- english (column english): a keyed random draw among pairs whose caption is English (the paper's Baseline
  (en)), the same English as clip's, so that clip against english isolates the score;
- planted (column planted): a keyed random draw among pairs whose concept is bound to no place (not
  culture-specific, no regional variants, not a landmark): a positive control, a data change of known direction
  (synthetic pools only);
- custom (column custom): a user's plug-in's score (filtering/custom.py; NaN: never kept).
Two arms are not a top k of a shard's column:
- balanced: MetaCLIP's concept balancing (filtering/balance.py), a global choice from every pair's matched concept
  names (column matches): each concept's pairs are capped at a threshold, the one that keeps k;
- random: the pool's nested random subset (stage.filter_k).

A pair's caption is English when its true caption language is English (a synthetic pool: truth
caption_language) or its record's language is "en" (a real pool).
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from vlscale.data.subsets import derive_key
from vlscale.filtering.select import keyed_scores, merge_top_k, shard_top_k
from vlscale.plan import CLIP_ARMS

SCORED_ARMS = ("clip", "clip_multilingual", "classifier", "english", "planted", "custom")
REAL_ARMS = ("clip", "clip_multilingual", "english", "custom")  # the scored arms a real pool can have
SELECTION_COLUMN = {"clip": "clip_en", "clip_multilingual": "clip", "classifier": "classifier", "english": "english",
                    "planted": "planted", "custom": "custom"}
ELIGIBLE = {"clip": "pairs with an English caption (and a scorer cosine)", "clip_multilingual": "scored pairs",
            "classifier": "scored pairs", "english": "pairs with an English caption",
            "planted": "pairs whose concept is bound to no place (not culture-specific, no regional variants, not a landmark)",
            "custom": "pairs the custom filter scored (not NaN)"}
ENGLISH_KEY, PLANTED_KEY = 4, 6  # parts of filter.key (derive_key) of the english and planted arms' draws


def needs_scorer(arms: Iterable[str]) -> bool:
    """Whether any of `arms` selects by the scorer's cosine (CLIP_ARMS)."""
    return any(a in CLIP_ARMS for a in arms)


def english_caption(world, gt: dict) -> np.ndarray:
    """bool [N]: the synthetic pairs (ground truth `gt`) whose caption language is English."""
    return np.asarray(gt["caption_language"]) == world.stratum_of("en")


def planted_eligible(world, gt: dict) -> np.ndarray:
    """bool [N]: the synthetic pairs the planted arm may keep: a concept bound to no place (not culture-specific, no
    regional variants, not a landmark). A quarter of the pool is place-bound, what the culture benchmarks test."""
    concept = np.asarray(gt["concept"])
    return (world.culture_region[concept] < 0) & ~world.has_variants[concept] & ~np.asarray(gt["is_landmark"], bool)


def selection_scores(ids: np.ndarray, raw: dict[str, np.ndarray], english: np.ndarray, key: int,
                     planted_ok: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The selection columns a pair's raw scores (`raw`: clip cosine and/or classifier P(aligned)) do not give
    directly: clip_en (when raw has clip), english and, with `planted_ok`, planted (float64, NaN: not eligible).
    ids: the pairs' ids (synthetic) or record rows (real); key: filter.key."""
    out = {}
    if "clip" in raw:
        out["clip_en"] = np.where(english, raw["clip"], np.nan)
    out["english"] = np.where(english, keyed_scores(ids, derive_key(key, ENGLISH_KEY)), np.nan)
    if planted_ok is not None:
        out["planted"] = np.where(planted_ok, keyed_scores(ids, derive_key(key, PLANTED_KEY)), np.nan)
    return out


def shard_candidates(ids: np.ndarray, columns: dict[str, np.ndarray], arms: Iterable[str],
                     k: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{arm: the shard's best k eligible (ids, scores)} for each scored arm of `arms`, from the selection
    columns (a pair whose selection score is NaN is not a candidate)."""
    out = {}
    for arm in (a for a in SCORED_ARMS if a in arms):
        s = np.asarray(columns[SELECTION_COLUMN[arm]], np.float64)
        ok = ~np.isnan(s)
        out[arm] = shard_top_k(ids[ok], s[ok], k)
    return out


def merge_arm(arm: str, candidates: list[tuple[np.ndarray, np.ndarray]], k: int) -> np.ndarray:
    """The sorted ids of `arm`'s k pairs from the shards' candidates (shard_candidates), or ValueError naming the
    arm, k and how many eligible pairs the pool has (each shard gives min(k, its eligible pairs), so when they
    add up to fewer than k their sum is the pool's count)."""
    found = sum(len(c[0]) for c in candidates)
    if found < k:
        raise ValueError(f"filter arm {arm!r} keeps k = {k:,} pairs, but the pool has only {found:,} {ELIGIBLE[arm]} "
                         "(filter.keep_fraction is too large for it)")
    return merge_top_k(candidates, k)
