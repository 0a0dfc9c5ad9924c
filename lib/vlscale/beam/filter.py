"""The filter stage's per-pair work on Beam: every pool pair scored shard by shard, each arm's exact top k, and
the account, for a synthetic pool (the filter models are trained first, as on the local engine) and for a real
one (`filter_real`: one shard file per element, the scorer checkpoint loaded once per worker).

Workers load the world, the tokenizer and the filter models once, in `DoFn.setup` (not per shard), and
call `vlscale.filtering.stage.score_shard`, the local loop's own per-shard function; each arm's k best are
kept by a combiner (`TopK`) whose accumulators are per-shard candidates, so the arms do not depend on how
shards meet in bundles or workers, and selected as the local loop selects them (`arms.merge_arm`: exactly k,
or the error naming the arm, k and its eligible pairs); the account adds the shards' count tables
(`shard_counts`).
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

import apache_beam as beam
import numpy as np
import pandas as pd

from vlscale.beam.runner import pipeline
from vlscale.beam.sample import _atomic_write
from vlscale.filtering.arms import merge_arm, needs_scorer
from vlscale.filtering.select import shard_top_k

log = logging.getLogger("vlscale.beam")


class TopK(beam.CombineFn):
    """The k best (id, score) pairs, best first, ties to the smaller id: `select.shard_top_k` of the union of
    whatever it is given, so any order of inputs and merges gives one answer. Its output is those candidates
    (all of them when there are fewer than k); `select_arm` makes them an arm."""

    def __init__(self, k: int):
        self.k = k

    def create_accumulator(self):
        return np.zeros(0, np.int64), np.zeros(0)

    def add_input(self, acc, candidates):
        return self.merge_accumulators([acc, candidates])

    def merge_accumulators(self, accs):
        accs = list(accs)
        return shard_top_k(np.concatenate([a[0] for a in accs]), np.concatenate([a[1] for a in accs]), self.k)

    def extract_output(self, acc):
        return acc


def select_arm(item: tuple, k: int) -> tuple[str, np.ndarray]:
    """(arm, its sorted k ids) from (arm, TopK's candidates): `arms.merge_arm`, as the local loop selects."""
    arm, candidates = item
    return arm, merge_arm(arm, [candidates], k)


class _Scorer:
    """What a worker needs to score shards, loaded once per worker (`setup`)."""

    def __init__(self, p: dict, sample_dir: str, tokenizer_path: str, models: dict, head, out_dir: str, k: int):
        self.p, self.sample_dir, self.tokenizer_path = p, sample_dir, tokenizer_path
        self.models, self.head, self.out_dir, self.k = models, head, out_dir, k

    def load(self):
        from vlscale.data.input import read_sample
        from vlscale.data.tokenizer import Tokenizer
        from vlscale.filtering.score import Scorers
        from vlscale.filtering.stage import _embedder
        from vlscale.world.render import render_jax
        from vlscale.world.spec import build_world

        t0 = time.perf_counter()
        self.world = build_world(self.p["world"])
        _, _, self.pool = read_sample(self.world, self.sample_dir, None)
        tokenizer = Tokenizer(self.tokenizer_path)
        emb = {name: _embedder(self.p, tokenizer, m["checkpoint"]) for name, m in self.models.items()}
        self.scorers = Scorers(clip=emb.get("scorer"), classifier=emb.get("classifier"), head=self.head)
        self.render = render_jax(self.world, self.p["train"]["image_px"])
        log.info("worker loaded the world and %d filter models in %.1f s", len(emb), time.perf_counter() - t0)


class _ModelShards(beam.DoFn):
    """A DoFn whose worker state (`scorer.load()`: the models) is made once per worker, in setup; the Beam
    counters model_loads and shards_scored say how many times each happened."""

    def __init__(self, scorer):
        self.scorer = scorer
        self.loads = beam.metrics.Metrics.counter("vlscale.filter", "model_loads")
        self.shards = beam.metrics.Metrics.counter("vlscale.filter", "shards_scored")

    def setup(self):
        self.scorer.load()

    def count_load(self):
        if not getattr(self, "_counted", False):  # one load per DoFn instance, counted where metrics count
            self.loads.inc()
            self._counted = True


class ScoreShard(_ModelShards):
    """Scores a synthetic pool's shards with the filter models."""

    def process(self, item):
        from vlscale.filtering.stage import score_shard

        self.count_load()
        index, shard = item
        s = self.scorer
        best, random_ids = score_shard(s.world, s.pool, s.scorers, s.render, s.p["filter"], index, shard, s.k,
                                       Path(s.out_dir))
        self.shards.inc()
        log.info("scored shard %d: %d pairs", index, shard[2] - shard[1])
        for arm, candidates in best.items():
            yield beam.pvalue.TaggedOutput("best", (arm, candidates))
        yield beam.pvalue.TaggedOutput("random", random_ids)


class CountShard(beam.DoFn):
    """One shard's account counts against the arms (a side input)."""

    def __init__(self, world_params: dict):
        self.world_params = world_params

    def setup(self):
        from vlscale.world.spec import build_world
        self.world = build_world(self.world_params)

    def process(self, item, arms):
        from vlscale.filtering.stage import shard_counts
        yield shard_counts(self.world, item[1], arms)


def filter_synthetic(p: dict, shards: list, k: int, models: dict, head, out_dir: Path, sample_dir,
                     tokenizer_path) -> tuple[dict, pd.DataFrame, dict]:
    """(arms {arm: sorted ids}, the shards' summed account counts, Beam's counters) of a synthetic pool on Beam; the scores
    go to out_dir/scores as the local loop writes them. models: {"scorer"|"classifier": {"checkpoint": ...}}."""
    F = p["filter"]
    scorer = _Scorer(p, str(Path(sample_dir).resolve()), str(Path(tokenizer_path).resolve()),
                     {n: {"checkpoint": str(Path(m["checkpoint"]).resolve())} for n, m in models.items()}, head,
                     str(Path(out_dir).resolve()), k)
    stage = Path(out_dir) / "beam"
    stage.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    p_beam = pipeline(p["beam"], "vlscale-filter")
    with p_beam as pl:
        indexed = pl | "shards" >> beam.Create(list(enumerate(shards))) | "spread" >> beam.Reshuffle()
        scored = indexed | "score" >> beam.ParDo(ScoreShard(scorer)).with_outputs("best", "random")
        arms = scored.best | "top k" >> beam.CombinePerKey(TopK(k)) | "select" >> beam.Map(select_arm, k)
        random = (scored.random | "random ids" >> beam.combiners.ToList()
                  | beam.Map(lambda parts: ("random", np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64))))
        all_arms = ((arms, random) | beam.Flatten() | beam.combiners.ToDict()
                    | beam.Map(_arms_in_order, list(F["arms"])))
        all_arms | "write arms" >> beam.Map(_write_arms_npz, str(stage / "arms.npz"))
        counts = indexed | "count" >> beam.ParDo(CountShard(p["world"]), beam.pvalue.AsSingleton(all_arms))
        (counts | "tables" >> beam.combiners.ToList()
         | "write counts" >> beam.Map(_write_counts, str(stage / "counts.parquet")))
    result = p_beam.result
    counters = {r.key.metric.name: r.committed for r in result.metrics().query()["counters"]}
    counters["seconds"] = time.perf_counter() - t0
    with np.load(stage / "arms.npz") as z:
        arms = {a: z[a] for a in F["arms"]}
    counts = pd.read_parquet(stage / "counts.parquet")
    shutil.rmtree(stage)
    return arms, counts, counters


def _arms_in_order(found: dict, arms: list) -> dict:
    missing = [a for a in arms if a not in found]
    if missing:
        raise ValueError(f"filter arms {missing} got no candidate pair from any shard (filter.keep_fraction is too "
                         "large for them)")
    return {a: found[a] for a in arms}


def _write_arms_npz(arms: dict, path: str):
    def save(tmp):
        with open(tmp, "wb") as f:  # a file object: np.savez would add ".npz" to a path
            np.savez(f, **arms)

    _atomic_write(Path(path), save)


def _write_counts(tables: list, path: str):
    from vlscale.filtering import account as acc
    _atomic_write(Path(path), lambda tmp: acc.add_counts(tables).to_parquet(tmp, index=False))


# ------------------------------------------------------------------------------------------- a real pool


class _RealScorer:
    """What a worker needs to score a real pool's shard files: the CLIP-score arms' scorer checkpoint
    (filter.scorer.checkpoint), loaded once per worker."""

    def __init__(self, p: dict, tokenizer_path: str, random_rows: np.ndarray, k: int, out_dir: str):
        self.p, self.tokenizer_path, self.random_rows, self.k, self.out_dir = p, tokenizer_path, random_rows, k, out_dir

    def load(self):
        from vlscale.data.tokenizer import Tokenizer
        from vlscale.filtering.score import Scorers
        from vlscale.filtering.stage import load_scorer

        clip = needs_scorer(self.p["filter"]["arms"])
        self.scorers = Scorers(clip=load_scorer(self.p, Tokenizer(self.tokenizer_path)) if clip else None)


class ScoreRealShard(_ModelShards):
    """Scores a real pool's shard files with the scorer."""

    def process(self, item):
        from vlscale.filtering.stage import score_real_shard

        self.count_load()
        index, records_of_shard, positions = item
        s = self.scorer
        best, bad = score_real_shard(records_of_shard, positions, s.scorers, s.p["train"]["image_px"], s.p["filter"],
                                     s.random_rows, s.k, index, Path(s.out_dir))
        self.shards.inc()
        log.info("scored shard file %d: %d records, %d bad", index, len(positions), sum(bad.values()))
        for arm, candidates in best.items():
            yield beam.pvalue.TaggedOutput("best", (arm, candidates))
        yield beam.pvalue.TaggedOutput("bad", dict(bad))


def _sum_bad(counts: list) -> dict:
    total = {}
    for c in counts:
        for reason, n in c.items():
            total[reason] = total.get(reason, 0) + n
    return dict(sorted(total.items()))


def filter_real(p: dict, records: pd.DataFrame, random_rows: np.ndarray, k: int, out_dir: Path,
                tokenizer_path) -> tuple[dict, dict, dict]:
    """({scored arm: sorted record rows}, bad records by reason, Beam's counters) of a real pool on Beam, one
    element per shard file (its records travel with it); the scores go to out_dir/scores as the local loop
    writes them."""
    from vlscale.filtering.score import record_shards
    from vlscale.filtering.stage import real_arms

    arms = real_arms(p["filter"])
    items = [(i, records.iloc[pos], pos) for i, (_, pos) in enumerate(record_shards(records))]
    scorer = _RealScorer(p, str(Path(tokenizer_path).resolve()), random_rows, k, str(Path(out_dir).resolve()))
    stage = Path(out_dir) / "beam"
    stage.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    p_beam = pipeline(p["beam"], "vlscale-filter-real")
    with p_beam as pl:
        scored = (pl | "shard files" >> beam.Create(items) | "spread" >> beam.Reshuffle()
                  | "score" >> beam.ParDo(ScoreRealShard(scorer)).with_outputs("best", "bad"))
        best = scored.best | "top k" >> beam.CombinePerKey(TopK(k)) | "select" >> beam.Map(select_arm, k)
        (best | beam.combiners.ToDict() | beam.Map(_arms_in_order, arms)
         | "write arms" >> beam.Map(_write_arms_npz, str(stage / "arms.npz")))
        (scored.bad | beam.combiners.ToList() | beam.Map(_sum_bad)
         | "write bad" >> beam.Map(lambda d: _atomic_write(stage / "bad.json", lambda tmp: tmp.write_text(json.dumps(d)))))
    counters = {r.key.metric.name: r.committed for r in p_beam.result.metrics().query()["counters"]}
    counters["seconds"] = time.perf_counter() - t0
    with np.load(stage / "arms.npz") as z:
        found = {a: z[a] for a in arms}
    bad = json.loads((stage / "bad.json").read_text())
    shutil.rmtree(stage)
    return found, bad, counters
