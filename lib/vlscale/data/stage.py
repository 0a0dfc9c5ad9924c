"""The sample stage: the pool's nested data scales, their language-rebalanced mixtures and their long-tail coverage.

Every language stratum of the pool is put in a keyed random order and a subset of fraction f takes its first
⌊f·N⌋ examples, so 1% ⊂ 10% ⊂ 100% exactly (the paper samples its 1B and 10B sets from WebLI-100B at random,
arXiv 2502.07617 §3). Each subset's mixture raises the seven low-resource languages to their target shares and
keeps the rest once (§5.2). The pool is the synthetic web (`sample.source: synthetic`, virtual: nothing stored)
or the records of real shards, scanned and validated first, by loops in this process (`engine: local`) or by
Apache Beam pipelines over the shards (`engine: beam`); both write the same bytes.

`run(params)` writes:
    data/sample/             subsets.json (every subset's counts, mixture and id-list file), the id lists
                             (ids_<label>.npy; uids_<label>.parquet for a real pool), scan_report.json (a real pool)
    data/concept_counts.parquet  a synthetic pool: every concept's exact pairs in every subset (concept_table), which
                             the figures stage's concept-frequency law reads (beside data/sample, so that the stages
                             reading data/sample do not change with it)
    paper/figures/sample/    language_mix_<label>.png per subset, coverage.png
    plots/sample/            language_mix.csv (natural and rebalanced shares), coverage.csv
    metrics/sample.json      the keys below and provenance
and returns the metrics.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from vlscale.analysis import figures
from vlscale.config import Params, SampleParams, validate
from vlscale.data import sampling
from vlscale.data.sampling import LANGUAGES, POOL_EXAMPLES, SCAN, SHARDS, SOURCE, SUBSET_EXAMPLES, SUBSETS
from vlscale.data.shards import scan_shards, shard_summary
from vlscale.data.subsets import StrataCounts
from vlscale.files import write_json
from vlscale.provenance import provenance
from vlscale.world.spec import build_world

OUT_DIR, FIG_DIR, PLOTS_DIR = Path("data/sample"), Path("paper/figures/sample"), Path("plots/sample")
METRICS_PATH = Path("metrics/sample.json")
CONCEPT_COUNTS = Path("data/concept_counts.parquet")
CONCEPT_COLUMNS = {"subset": str, "fraction": float, "examples": np.int64, "concept": np.int64, "name": str,
                   "head": bool, "culture": bool, "landmark": bool, "pairs": np.int64, "world_fingerprint": str}



def scan_local(p: Params, world):
    """A real pool scanned in this process: (ShardScan, subsets, uid lists None)."""
    scan = scan_shards(p.sample.shards, languages=world.strata, max_caption_chars=p.sample.max_caption_chars,
                       default_language=p.sample.untagged_language)
    _account(scan)
    return scan, sampling.real_subsets(scan.records, p.sample.key), None


def scan_beam(p: Params, world):
    """A real pool scanned, and its subsets' uid lists written, by Beam pipelines over the shards:
    (ShardScan, StrataCounts, {label: uid-list file})."""
    from vlscale.beam import sample as beam_sample  # the beam extra
    from vlscale.beam.runner import outside_ipython  # Beam's interactive mode does not import with pandas 3

    scan = outside_ipython(beam_sample.scan_shards, paths=p.sample.shards, languages=world.strata,
                           max_caption_chars=p.sample.max_caption_chars, out_dir=OUT_DIR / "beam", beam_params=p.beam,
                           default_language=p.sample.untagged_language)
    _account(scan)
    lists = outside_ipython(beam_sample.subset_uid_lists,
                            record_files=sorted((OUT_DIR / "beam/records").glob("shard_*.parquet")),
                            fractions={sampling.fraction_label(f): f for f in p.sample.fractions}, key=p.sample.key,
                            out_dir=OUT_DIR, beam_params=p.beam, write_ids_max=p.sample.write_ids_max)
    return scan, StrataCounts(lists["sizes"], p.sample.key), lists["files"]


def _account(scan) -> None:
    """Check a scan, write its account (scan_report.json, also when nothing was kept), then require a kept record."""
    scan.check()
    scan.to_json(OUT_DIR / "scan_report.json")
    scan.require_kept()
    print({k: scan.report[k] for k in ("examples_in", "kept", "rejected")})


def coverage(sample: SampleParams, world, subsets, counts: dict | None = None):
    """Long-tail coverage per subset: of the concepts of each kind (synthetic pool: `counts`, fraction -> pairs per
    concept) or of the page languages (real shards carry no concept), the share with at least k examples."""
    if sample.source == "synthetic":
        return sampling.coverage_table(world, counts, sample.coverage_k)
    return sampling.language_coverage(subsets, sample.fractions, sample.coverage_k)


def concept_table(world, counts: dict) -> pd.DataFrame:
    """Every concept's exact pairs per subset (counts: fraction -> [K] pairs, sampling.concept_counts: the image's
    true concept): subset, fraction, examples (the subset's size), concept, name (English), head, culture, landmark,
    pairs, and world_fingerprint (the world they were counted in). No rows for a real pool (counts None: its records
    carry no concept)."""
    fp = world.fingerprint()
    rows = [pd.DataFrame(columns=list(CONCEPT_COLUMNS))] + [pd.DataFrame({"subset": sampling.fraction_label(f), "fraction": f, "examples": int(c.sum()),
                          "concept": np.arange(len(c)), "name": [k["en"] for k in world.concepts],
                          "head": world.is_head, "culture": world.culture_region >= 0,
                          "landmark": world.landmark_country >= 0, "pairs": c.astype(np.int64),
                          "world_fingerprint": fp}) for f, c in (counts or {}).items()]
    return pd.concat(rows, ignore_index=True).astype(CONCEPT_COLUMNS)


def subset_metrics(subsets, fraction, mix, index: dict, lang, cov) -> dict:
    """metrics/sample.json's record of one subset."""
    label = sampling.fraction_label(fraction)
    low = lang[lang["low_resource"] & (lang["subset"] == label)]
    out = {
        SUBSET_EXAMPLES: index["subsets"][label]["examples"],
        "mixture_examples": len(mix),
        "languages_present": int((subsets.counts(fraction) > 0).sum()),
        "low_resource_pct_natural": float(low["natural_pct"].sum()),
        "low_resource_pct_rebalanced": float(low["rebalanced_pct"].sum()),
        "low_resource_missing": list(mix.missing),
    }
    for _, r in cov[cov["subset"] == label].iterrows():
        out[f"coverage_{r['kind'].replace(' ', '_').replace('-', '_')}_k{r['k']}"] = r["covered"]
    return out


def run(params: dict) -> dict:
    """The sample stage (module docstring). params: profile, world, sample, engine, beam."""
    p = validate({k: params[k] for k in ("profile", "world", "sample", "engine", "beam")})
    sample, world = p.sample, build_world(p.world)
    fractions, synthetic = sample.fractions, sample.source == "synthetic"
    for folder in (OUT_DIR, FIG_DIR, PLOTS_DIR):
        folder.mkdir(parents=True, exist_ok=True)
    if synthetic:
        scan, subsets, uid_lists = None, sampling.synthetic_subsets(world, sample.pool_size, sample.key), None
    else:
        scan, subsets, uid_lists = (scan_beam if p.engine == "beam" else scan_local)(p, world)
    print(subsets)

    mixes = sampling.mixtures(subsets, fractions, sample.rebalance_targets, sample.key)
    lang = sampling.language_table(subsets, fractions, mixes)
    lang.to_csv(PLOTS_DIR / "language_mix.csv", index=False)
    index = sampling.write_subsets(OUT_DIR, subsets, fractions, mixes, sample.write_ids_max,
                                   meta={"source": sample.source, "world_fingerprint": world.fingerprint(),
                                         "provenance": provenance(p.profile, p.dump(), with_commit=False)},
                                   records=None if synthetic else scan.records, uid_lists=uid_lists)
    for f in fractions:
        label = sampling.fraction_label(f)
        figures.save(figures.rebalancing(lang, label), FIG_DIR / f"language_mix_{label}.png")
    counts = {f: sampling.concept_counts(world, subsets, f) for f in fractions} if synthetic else None
    concept_table(world, counts).to_parquet(CONCEPT_COUNTS, index=False)
    cov = coverage(sample, world, subsets, counts)
    cov.to_csv(PLOTS_DIR / "coverage.csv", index=False)
    figures.save(figures.coverage(cov, "concepts" if synthetic else "page languages"), FIG_DIR / "coverage.png")

    metrics = {SOURCE: sample.source, POOL_EXAMPLES: int(subsets.sizes.sum()),
               SUBSETS: {sampling.fraction_label(f): subset_metrics(subsets, f, mixes[f], index, lang, cov)
                         for f in fractions}}
    if scan is not None:  # a real pool: its shards, what the scan kept and rejected, its languages as tagged
        metrics[SCAN] = {k: scan.report[k] for k in ("examples_in", "kept", "rejected", "shards", "shards_unreadable")}
        metrics[SHARDS] = shard_summary(sample.shards)
        metrics[LANGUAGES] = {code: int(n) for code, n in zip(subsets.names, subsets.counts(max(fractions))) if n}
    metrics["provenance"] = provenance(p.profile, p.dump())
    write_json(METRICS_PATH, metrics)
    return metrics
