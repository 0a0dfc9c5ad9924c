"""The filter stage's work on one shard of the pool, and the local engine that maps it over the pool.

`ShardWork` says what scoring a pool takes (picklable, so that a Beam worker gets it whole): the pool's kind
(synthetic or real), the params, k, the filter models' checkpoints and head, where the scores go. A worker
loads it once (`ShardWork.load`: the world, the pool, the models) into a `ShardScorer`, whose `score(index,
shard)` scores one shard, writes its scores table (scores/shard_<index>.parquet) and returns the shard's best
k eligible (ids, scores) per scored arm, with the shard's rest: its random-arm ids (a synthetic pool) or its
bad records by reason (a real pool). A synthetic shard's account counts against the arms are `shard_counts`.

An engine maps these over the shards and selects each arm from the shards' candidates as `arms.merge_arm`
does: `map_shards` here, `vlscale.beam.filter.map_shards` on Beam. Both give the same `Selection`, and the
same bytes in every file.
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from vlscale.config import FilterParams, Params
from vlscale.data.input import read_sample
from vlscale.data.tokenizer import Tokenizer
from vlscale.files import write_json
from vlscale.filtering import account as acc
from vlscale.filtering.arms import (
    REAL_ARMS,
    SCORED_ARMS,
    english_caption,
    merge_arm,
    planted_eligible,
    selection_scores,
    shard_candidates,
)
from vlscale.filtering.balance import Matcher, read_entries, read_matches, select_balanced, world_entries
from vlscale.filtering.classifier import AlignmentHead
from vlscale.filtering.custom import load_custom
from vlscale.filtering.score import Scorers, load_embedder, score_record_shard, score_synthetic, shard_ids
from vlscale.world.render import render_jax
from vlscale.world.spec import build_world
from vlscale.world.truth import truth

SYNTHETIC, REAL = "synthetic", "real"  # the kinds of pool
SCORES_ORDER = ("id", "row", "uid", "language", "caption_language", "caption_en", "clip", "clip_en", "classifier",
                "custom", "english", "planted", "matches", "random")  # a scores table's columns, in order (those it has)


def write_scores(out_dir: Path, index: int, columns: dict) -> None:
    """Write one shard's scores table (scores/shard_<index>.parquet): the columns it has, in SCORES_ORDER."""
    table = pd.DataFrame({c: columns[c] for c in SCORES_ORDER if c in columns})
    table.to_parquet(Path(out_dir) / "scores" / f"shard_{index:05d}.parquet", index=False)


def member(ids: np.ndarray, sorted_ids: np.ndarray) -> np.ndarray:
    """bool [len(ids)]: which ids are in the sorted id list (binary search, as DataComp's resharder does)."""
    at = np.minimum(np.searchsorted(sorted_ids, ids), max(len(sorted_ids) - 1, 0))
    return (sorted_ids[at] == ids) if len(sorted_ids) else np.zeros(len(ids), bool)


def shard_counts(world, shard, arms: dict[str, np.ndarray]) -> pd.DataFrame:
    """One synthetic shard's additive account counts: every pair's truth against each arm's sorted kept ids."""
    ids = shard_ids(shard)
    return acc.count_table(acc.labels(world, truth(world, ids)), {a: member(ids, kept) for a, kept in arms.items()})


def scored_arms(filter_params: FilterParams, kind: str) -> list[str]:
    """The arms of filter.arms that are a top k, for a pool of `kind` (a real pool has REAL_ARMS only)."""
    return [arm for arm in (SCORED_ARMS if kind == SYNTHETIC else REAL_ARMS) if arm in filter_params.arms]


def load_extras(filter_params: FilterParams, world=None) -> dict:
    """{"custom": the custom arm's plug-in, "matcher": the balanced arm's entries (filter.balanced.metadata's, or
    the synthetic `world`'s vocabulary)} for the arms filter.arms has; ParamsError / ValueError naming the param."""
    out = {}
    if "custom" in filter_params.arms:
        out["custom"] = load_custom(filter_params.custom)
    if "balanced" in filter_params.arms:
        metadata = filter_params.balanced.metadata
        out["matcher"] = Matcher(read_entries(metadata) if metadata else world_entries(world))
    return out


@dataclass
class ShardWork:
    """What scoring a pool's shards takes, for one worker or many.

    kind: SYNTHETIC or REAL; p: the validated params; k: each arm's size; out_dir: the stage's folder (scores/
    goes in it); sample_dir, tokenizer_path: the sample and tokenizer stages' outputs; models: {"scorer" |
    "classifier": checkpoint path} of the filter models; head: the classifier's head; random_rows: a real pool's
    random arm (record rows)."""
    kind: str
    p: Params
    k: int
    out_dir: str
    sample_dir: str
    tokenizer_path: str
    models: dict
    head: AlignmentHead | None = None
    random_rows: np.ndarray | None = None

    @property
    def arms(self) -> list[str]:
        """The scored arms (top k) this pool has."""
        return scored_arms(self.p.filter, self.kind)

    def load(self) -> ShardScorer:
        """A ShardScorer from the files: the world, the pool, the tokenizer and the filter models' checkpoints."""
        tokenizer = Tokenizer(self.tokenizer_path)
        emb = {name: load_embedder(self.p, tokenizer, path) for name, path in self.models.items()}
        world = build_world(self.p.world) if self.kind == SYNTHETIC else None
        scorers = Scorers(clip=emb.get("scorer"), classifier=emb.get("classifier"), head=self.head,
                          **load_extras(self.p.filter, world))
        if self.kind == REAL:
            return ShardScorer(self, None, None, scorers, None)
        _, _, pool = read_sample(world, self.sample_dir, None)
        return ShardScorer(self, world, pool, scorers, render_jax(world, self.p.train.image_px))

    def all_arms(self, scored: dict[str, np.ndarray], rests: list) -> dict[str, np.ndarray]:
        """Every arm of filter.arms in its order, from the scored arms' sorted ids and the shards' rests (the
        random arm: the shards' random ids of a synthetic pool, `random_rows` of a real one), and the balanced arm
        from every shard's matches in the scores tables (its record: balanced.json beside them). A scored arm no
        shard had a candidate for raises merge_arm's error."""
        arms = {arm: scored[arm] if arm in scored else merge_arm(arm, [], self.k) for arm in self.arms}
        if "balanced" in self.p.filter.arms:
            arms["balanced"], record = select_balanced(read_matches(Path(self.out_dir)), self.k, self.p.filter)
            write_json(Path(self.out_dir) / "balanced.json", record)
        if "random" in self.p.filter.arms:
            if self.kind == SYNTHETIC:
                arms["random"] = np.sort(np.concatenate(rests)) if rests else np.zeros(0, np.int64)
            else:
                arms["random"] = np.sort(self.random_rows)
        return {a: arms[a] for a in self.p.filter.arms}


@dataclass
class ShardScorer:
    """A worker's loaded state (`ShardWork.load`, or what the stage already holds): scores shards."""
    work: ShardWork
    world: object
    pool: object  # a synthetic pool's NestedSubsets
    scorers: Scorers
    render: object  # world.render.render_jax of the run's image size

    def score(self, index: int, shard) -> tuple[dict, np.ndarray | Counter]:
        """Score shard number `index` and write its scores; ({scored arm: the shard's best k eligible (ids,
        scores)}, the shard's rest). A synthetic shard is (stratum, start, stop) and its rest its random-arm
        ids; a real shard is (its records, their rows in the pool's records) and its rest its bad records."""
        if self.work.kind == SYNTHETIC:
            return self._score_synthetic(index, shard)
        return self._score_real(index, *shard)

    def _score_synthetic(self, index: int, shard) -> tuple[dict, np.ndarray]:
        filter_params = self.work.p.filter
        ids = shard_ids(shard)
        gt, raw = score_synthetic(self.world, ids, self.scorers, self.render)
        english = english_caption(self.world, gt)
        if "matches" in raw:  # the balanced arm reads each pair's matches in its caption's language
            raw["caption_language"] = np.asarray(self.world.strata)[gt["caption_language"]]
        columns = {"caption_en": english, **raw,
                   **selection_scores(ids, raw, english, filter_params.key, planted_eligible(self.world, gt))}
        in_random = self.pool.contains(ids, filter_params.keep_fraction)
        write_scores(self.work.out_dir, index, {"id": ids, **columns, "random": in_random})
        return shard_candidates(ids, columns, self.work.arms, self.work.k), ids[in_random]

    def _score_real(self, index: int, records: pd.DataFrame, positions: np.ndarray) -> tuple[dict, Counter]:
        table, bad = score_record_shard(records, positions, self.scorers, self.work.p.train.image_px)
        here = table["row"].to_numpy()
        english = table["language"].to_numpy() == "en"
        columns = {c: table[c].to_numpy() for c in table.columns} | {"caption_en": english}
        raw = {c: columns[c] for c in self.scorers.names}
        columns |= (selection_scores(here, raw, english, self.work.p.filter.key)
                    | {"random": np.isin(here, self.work.random_rows)})
        write_scores(self.work.out_dir, index, columns)
        return shard_candidates(here, columns, self.work.arms, self.work.k), bad


@dataclass
class Selection:
    """What an engine gives: every arm's sorted ids (filter.arms' order), the shards' rests (in shard order on
    the local engine), a synthetic pool's summed account counts (None for a real pool), and Beam's counters."""
    arms: dict[str, np.ndarray]
    rests: list
    counts: pd.DataFrame | None
    counters: dict | None = None


def map_shards(scorer: ShardScorer, shards: list, log=print) -> Selection:
    """The local engine: score the shards one after another, select the arms, count a synthetic pool's account."""
    work = scorer.work
    candidates = {arm: [] for arm in work.arms}
    rests, t0, done = [], time.perf_counter(), 0
    for i, shard in enumerate(shards):
        best, rest = scorer.score(i, shard)
        rests.append(rest)
        for arm, c in best.items():
            candidates[arm].append(c)
        done += shard[2] - shard[1] if work.kind == SYNTHETIC else len(shard[1])
        if (i + 1) % max(1, len(shards) // 10) == 0 or i + 1 == len(shards):
            log(f"scored {i + 1}/{len(shards)} shards, {done:,} pairs, "
                f"{done / max(time.perf_counter() - t0, 1e-9):,.0f} pairs/s")
    arms = work.all_arms({arm: merge_arm(arm, c, work.k) for arm, c in candidates.items() if c}, rests)
    counts = None
    if work.kind == SYNTHETIC:  # the account: every pool pair's truth, shard by shard, against each arm
        counts = acc.add_counts([shard_counts(scorer.world, shard, arms) for shard in shards])
    return Selection(arms, rests, counts)
