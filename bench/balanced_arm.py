"""Benchmark: what the balanced (MetaCLIP) filter arm adds to the filter stage, per profile's pool.

The arm's cost is its own: captioning and matching every pool pair against the concept names of its caption's
language (in the shard map, beside the other arms' scoring), then one selection over every pair's matches. The
other arms' scoring (the scorer and classifier models) is the same with or without it. For each profile the table
prints, over the whole pool on one core: the truth and captions every shard draws anyway (baseline), the matching the
arm adds to it, and the selection at the stage's k.

    .venv/bin/python bench/balanced_arm.py                      # the cpu and study profiles
    .venv/bin/python bench/balanced_arm.py --profiles smoke
"""
import argparse
import platform
import time

import numpy as np
import pandas as pd

from vlscale.config import load_params
from vlscale.data.sampling import synthetic_subsets
from vlscale.filtering.balance import Matcher, select_balanced, world_entries
from vlscale.filtering.score import pool_shards, shard_ids
from vlscale.world.captions import captions
from vlscale.world.spec import build_world
from vlscale.world.truth import truth


def measure(profile: str) -> dict:
    p = load_params("params.yaml", profile)
    world = build_world(p.world)
    pool = synthetic_subsets(world, p.sample.pool_size, p.sample.key)
    k = int(pool.counts(p.filter.keep_fraction).sum())
    matcher = Matcher(world_entries(world))
    drawn = matched = 0.0
    frames = []
    for shard in pool_shards(pool.sizes, p.filter.shard_size):
        ids = shard_ids(shard)
        t0 = time.perf_counter()
        gt = truth(world, ids)
        texts = captions(world, ids, gt)
        t1 = time.perf_counter()
        languages = np.asarray(world.strata)[gt["caption_language"]]
        found = [matcher.match(t, lang) for t, lang in zip(texts, languages)]
        t2 = time.perf_counter()
        drawn, matched = drawn + t1 - t0, matched + t2 - t1
        frames.append(pd.DataFrame({"id": ids, "language": languages, "matches": found}))
    pairs = pd.concat(frames, ignore_index=True)
    t0 = time.perf_counter()
    _, record = select_balanced(pairs, k, p.filter)
    selected = time.perf_counter() - t0
    return {"profile": profile, "pool": len(pairs), "k": k, "matched": record["matched_pairs"],
            "truth_captions_s": drawn, "matching_s": matched, "selection_s": selected,
            "added_s": matched + selected, "pairs_per_s": len(pairs) / matched}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--profiles", default="cpu,study")
    args = ap.parse_args()
    print(f"balanced arm cost, one core; {platform.processor() or platform.machine()}")
    print("| profile | pool | k | matched pairs | truth + captions (s) | matching (s) | selection (s) | added (s) "
          "| matching pairs/s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for profile in args.profiles.split(","):
        r = measure(profile)
        print(f"| {r['profile']} | {r['pool']:,} | {r['k']:,} | {r['matched']:,} | {r['truth_captions_s']:.1f} | "
              f"{r['matching_s']:.1f} | {r['selection_s']:.1f} | {r['added_s']:.1f} | {r['pairs_per_s']:,.0f} |")


if __name__ == "__main__":
    main()
