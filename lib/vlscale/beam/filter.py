"""The filter stage's shard work on Beam: the back-end that maps `filtering.shards` over a pool's shards.

`map_shards(work, shards, beam_params)` is the local engine's `filtering.shards.map_shards` as a pipeline: each
worker loads `work` once, in `DoFn.setup` (the world, the pool, the filter models; not per shard), and scores
its shards with `ShardScorer.score`, the local engine's own per-shard function; each arm's k best are kept by a
combiner (`TopK`) whose accumulators are per-shard candidates, so the arms do not depend on how shards meet in
bundles or workers, and are selected as the local engine selects them (`arms.merge_arm`); a synthetic pool's
account adds the shards' count tables (`shards.shard_counts`). The result is the local engine's `Selection`,
with Beam's counters (model_loads, shards_scored, seconds).
"""
from __future__ import annotations

import logging
import pickle
import shutil
import time
from pathlib import Path

import apache_beam as beam
import numpy as np

from vlscale.beam.runner import pipeline
from vlscale.config import BeamParams, WorldParams
from vlscale.files import atomic_write
from vlscale.filtering import account as acc
from vlscale.filtering.arms import merge_arm
from vlscale.filtering.select import shard_top_k
from vlscale.filtering.shards import SYNTHETIC, Selection, ShardWork, shard_counts
from vlscale.world.spec import build_world

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
    """(arm, its sorted k ids) from (arm, TopK's candidates): `arms.merge_arm`, as the local engine selects."""
    arm, candidates = item
    return arm, merge_arm(arm, [candidates], k)


class ScoreShard(beam.DoFn):
    """Scores shards with the worker's `ShardScorer`, loaded once per worker (setup); the Beam counters
    model_loads and shards_scored say how many times each happened."""

    def __init__(self, work: ShardWork):
        self.work = work
        self.loads = beam.metrics.Metrics.counter("vlscale.filter", "model_loads")
        self.shards = beam.metrics.Metrics.counter("vlscale.filter", "shards_scored")

    def setup(self):
        t0 = time.perf_counter()
        self.scorer = self.work.load()
        self._counted = False
        log.info("worker loaded the pool and %d filter models in %.1f s", len(self.work.models),
                 time.perf_counter() - t0)

    def process(self, item):
        if not self._counted:  # one load per DoFn instance, counted where metrics count
            self.loads.inc()
            self._counted = True
        index, shard = item
        best, rest = self.scorer.score(index, shard)
        self.shards.inc()
        log.info("scored shard %d", index)
        for arm, candidates in best.items():
            yield beam.pvalue.TaggedOutput("best", (arm, candidates))
        yield beam.pvalue.TaggedOutput("rest", (index, rest))


class CountShard(beam.DoFn):
    """A synthetic shard's account counts against the arms (a side input)."""

    def __init__(self, world_params: WorldParams):
        self.world_params = world_params

    def setup(self):
        self.world = build_world(self.world_params)

    def process(self, item, arms):
        yield shard_counts(self.world, item[1], arms)


def _all_arms(scored: dict, rests: list, work: ShardWork) -> dict:
    return work.all_arms(scored, [rest for _, rest in sorted(rests, key=lambda r: r[0])])


def _write_pickle(value, path: str):
    atomic_write(Path(path), lambda tmp: tmp.write_bytes(pickle.dumps(value)))


def map_shards(work: ShardWork, shards: list, beam_params: BeamParams) -> Selection:
    """The Selection of `filtering.shards.map_shards`, on Beam: the shards' scores go to work.out_dir/scores as
    the local engine writes them."""
    stage = Path(work.out_dir) / "beam"
    stage.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    p_beam = pipeline(beam_params, "vlscale-filter")
    with p_beam as pl:
        indexed = pl | "shards" >> beam.Create(list(enumerate(shards))) | "spread" >> beam.Reshuffle()
        scored = indexed | "score" >> beam.ParDo(ScoreShard(work)).with_outputs("best", "rest")
        best = (scored.best | "top k" >> beam.CombinePerKey(TopK(work.k)) | "select" >> beam.Map(select_arm, work.k)
                | "scored arms" >> beam.combiners.ToDict())
        rests = scored.rest | "rests" >> beam.combiners.ToList()
        arms = best | "all arms" >> beam.Map(_all_arms, beam.pvalue.AsSingleton(rests), work)
        arms | "write arms" >> beam.Map(_write_pickle, str(stage / "arms.pkl"))
        rests | "write rests" >> beam.Map(lambda r: _write_pickle([x for _, x in sorted(r, key=lambda i: i[0])],
                                                                   str(stage / "rests.pkl")))
        if work.kind == SYNTHETIC:
            counts = indexed | "count" >> beam.ParDo(CountShard(work.p.world), beam.pvalue.AsSingleton(arms))
            (counts | "tables" >> beam.combiners.ToList() | "add" >> beam.Map(acc.add_counts)
             | "write counts" >> beam.Map(_write_pickle, str(stage / "counts.pkl")))
    counters = {r.key.metric.name: r.committed for r in p_beam.result.metrics().query()["counters"]}
    counters["seconds"] = time.perf_counter() - t0
    arms = pickle.loads((stage / "arms.pkl").read_bytes())
    rests = pickle.loads((stage / "rests.pkl").read_bytes())
    counts = pickle.loads((stage / "counts.pkl").read_bytes()) if work.kind == SYNTHETIC else None
    shutil.rmtree(stage)
    return Selection(arms, rests, counts, counters)
