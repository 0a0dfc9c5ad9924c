"""The curation study (arXiv 2502.07617 §5.1, §5.2) from the evaluate stage's results: Figure 4 / Table 13 (quality
filters) and Figure 5 / Table 14 (language rebalancing), with paired-bootstrap intervals.

Runs say what they are in the tidy table's `curation` column: "natural", "rebalanced" or "filter/<arm>".
An arm is a configuration (analysis/study.py) and its runs are seed replicates: every value is their mean, with
the spread over seeds beside it.
- Filters: each arm against examples seen; the random arm is the natural runs of filter.keep_fraction and the
  runs of "filter/random" (the same random data), at the checkpoints the filter runs have. Differences are
  taken against the English baseline (the paper's Baseline (en)) and against random, at equal examples seen.
- Rebalancing: each rebalanced configuration against the natural one of the same data scale at the rebalanced
  runs' last checkpoint (equal examples seen): "before" and "after".
Every difference is study.Study.compare's: its interval counts training noise (the seed variance pooled over the
configurations with replicates at that checkpoint) and test-image noise (paired resamples), so two arms whose
difference is within what another seed gives are not called different.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from vlscale.analysis import results, study, uncertainty
from vlscale.evals import groups

FILTER_ARMS = ("random", "english", "clip", "clip_multilingual", "classifier", "balanced", "custom",
               "planted")  # Figure 4's lines
ARM_LABELS = {"random": "Random (control)", "english": "Baseline (en)", "clip": "CLIP score (English)",
              "clip_multilingual": "CLIP score (all languages)", "classifier": "Classifier",
              "balanced": "Balanced concepts (MetaCLIP)", "custom": "Custom filter (filter.custom)",
              "planted": "Planted: no place-bound concept (positive control)"}
FILTER_GROUPS = ("western", "culture", "fairness")
REBALANCE_GROUPS = ("multilingual_low_resource", "multilingual_high_resource", "multilingual", "western",
                    "culture", "fairness")
# Table 13 / 14's per-task rows present in the analogs, in the paper's order (label, task)
TASK_ROWS = [
    ("ImageNet 0-shot", "imagenet/0shot"), ("CIFAR100 0-shot", "cifar100/0shot"), ("Pet 0-shot", "pet/0shot"),
    ("ImageNet 10-shot", "imagenet/10shot"), ("CIFAR100 10-shot", "cifar100/10shot"), ("Pet 10-shot", "pet/10shot"),
    ("COCO I2T", "coco/i2t"), ("COCO T2I", "coco/t2i"), ("Flickr I2T", "flickr/i2t"), ("Flickr T2I", "flickr/t2i"),
    ("Dollar Street 0-shot", "dollarstreet/0shot"), ("Dollar Street 10-shot", "dollarstreet/geoloc_10shot"),
    ("GeoDE 0-shot", "geode/0shot"), ("GeoDE (country) 10-shot", "geode/country_geoloc_10shot"),
    ("GeoDE (region) 10-shot", "geode/region_geoloc_10shot"), ("GLDv2 0-shot", "gldv2/0shot"),
    *[(t.split("/")[1], t) for t in groups.INCOME + groups.REGIONS],
    ("Perceived gender", "fairface/perceived_gender"),
]
GROUP_LABELS = {"western": "Average Western", "culture": "Average Culture Diversity", "fairness": "Average Fairness",
                "multilingual_low_resource": "Average Multilingual: low-resource",
                "multilingual_high_resource": "Average Multilingual: high-resource",
                "multilingual": "Average Multilingual"}


@dataclass
class Curation:
    """The curation tables; empty frames where the runs they need are absent (notes say which). Every value is the
    mean over an arm's seed replicates; every difference is analysis/study.py's, with training noise in it."""
    filter_runs: dict[str, list[str]]    # arm -> its runs (seed replicates)
    filter_curves: pd.DataFrame          # arm, runs, examples_seen, group, error_pct, lo, hi, n_seeds, seed_sd
    filter_diffs: pd.DataFrame           # arm, against, examples_seen, group, diff, lo, hi, p, n_a, n_b
    table13: pd.DataFrame                # rows (label, task) + groups; columns (arm, examples_seen) -> value/lo/hi
    rebalance: pd.DataFrame              # data_pct, before_run, after_run, examples_seen, group, before, after, diff, lo, hi, p
    table14: pd.DataFrame                # rows (label, task); columns ("1%" ..., before|after)
    languages: pd.DataFrame              # per low-resource language (i2t): data_pct, before, after, diff, lo, hi
    notes: list[str] = field(default_factory=list)


DIFF_COLUMNS = ["arm", "against", "examples_seen", "group", "diff", "lo", "hi", "p", "n_a", "n_b"]


def _diff(rec: dict) -> dict:
    return {"diff": rec["effect"], "lo": rec["lo"], "hi": rec["hi"], "p": rec["p"], "n_a": rec["n_a"],
            "n_b": rec["n_b"]}


def build_curation(tidy: pd.DataFrame, items: pd.DataFrame | None = None, source: str = "analog",
                   keep_fraction: float | None = None, n_boot: int = 1000, seed: int = 0,
                   est: uncertainty.Estimates | None = None) -> Curation:
    """The curation study from the tidy results of every run (results.read_results) and their items; `est`: the
    figures stage's estimates of these runs when it has them (the same image resamples)."""
    d = results.select_source(tidy, source)
    if "curation" not in d:
        d = d.assign(curation="natural")
    notes = []
    est = est if est is not None else uncertainty.estimate(d, items, n_boot=n_boot, seed=seed)
    pct = 100.0 * keep_fraction if keep_fraction is not None else None
    st = study.Study(est, pct)
    runs = st.runs

    # -------------------------------------------------------------------------------- filters
    configs = st.arm_configs()
    random = f"natural@{results.scale_label(pct)}" if pct is not None else None
    if configs and random and (runs["config"] == random).any():
        configs["random"] = random
    elif configs:
        notes.append(f"no random arm: no run 'filter/random' and no natural run of {pct}% of the pool")
    if not configs:
        notes.append("no filter runs (runs with `filter`): Figure 4 and Table 13 are empty")
    filter_runs = {a: list(runs.index[runs["config"] == c]) for a, c in configs.items()}
    curated = [a for a in configs if a not in ("random", "planted")]
    seen_of = {a: {s for r in filter_runs[a] for s in st.checkpoints(r)} for a in configs}
    common = sorted(set.intersection(*[seen_of[a] for a in curated])) if curated else []
    if "random" in configs and curated:
        missing = [s for s in common if s not in seen_of["random"]]
        if missing:
            notes.append(f"the random arm's runs {filter_runs['random']} have no checkpoint at {missing} examples seen")
    curves, diffs = [], []
    for arm in [a for a in FILTER_ARMS if a in configs]:
        for s in common:
            for group in FILTER_GROUPS:
                m = st.mean(configs[arm], s, study.QUANTITIES[group])
                if m:
                    curves.append({"arm": arm, "examples_seen": s, "group": group, "error_pct": m.pop("value"), **m})
    curves = pd.DataFrame(curves, columns=["arm", "examples_seen", "group", "error_pct", "lo", "hi", "runs",
                                           "n_seeds", "seed_sd", "seed_min", "seed_max"])
    for against in ("english", "random"):
        if against not in configs:
            continue
        # against English: the filters (the paper's comparison); against random: every other arm
        others = [a for a in FILTER_ARMS if a in configs and a != against and not (against == "english" and a == "random")]
        for arm in others:
            for s in common:
                for group in FILTER_GROUPS:
                    rec = st.compare(f"{arm}-{against}", configs[arm], configs[against], s, group)
                    if rec:
                        diffs.append({"arm": arm, "against": against, "examples_seen": s, "group": group, **_diff(rec)})
    if "random" in configs and len(filter_runs["random"]) < 2:
        notes.append("one run on the random data: the seed-to-seed difference of equal data is not measured")
    diffs = pd.DataFrame(diffs, columns=DIFF_COLUMNS)
    table13 = _table(est, [(arm, filter_runs[arm], s) for arm in FILTER_ARMS if arm in configs for s in common],
                     list(FILTER_GROUPS) + ["multilingual_low_resource", "multilingual_high_resource"])

    # ----------------------------------------------------------------------------- rebalancing
    rebalance, lang_rows, columns = [], [], []
    for rpct in sorted(runs.loc[runs["curation"] == "rebalanced", "data_pct"].unique()):
        after_cfg, before_cfg = f"rebalanced@{results.scale_label(rpct)}", f"natural@{results.scale_label(rpct)}"
        after_runs = list(runs.index[runs["config"] == after_cfg])
        seen = max(max(st.checkpoints(r)) for r in after_runs)
        before_runs = st.runs_of(before_cfg, seen)
        if not before_runs:
            notes.append(f"rebalanced runs {after_runs}: no natural run of {rpct:g}% has a checkpoint at {seen} examples")
            continue
        after_runs = st.runs_of(after_cfg, seen)
        label = results.scale_label(rpct)
        columns += [((label, "before"), before_runs, seen), ((label, "after"), after_runs, seen)]
        for group in REBALANCE_GROUPS:
            rec = st.compare(f"rebalance/{group}", before_cfg, after_cfg, seen, group)  # positive: lower error after
            if rec:
                rebalance.append({"data_pct": rpct, "before_run": "+".join(before_runs), "after_run": "+".join(after_runs),
                                  "examples_seen": seen, "group": group, "before": rec["a_value"],
                                  "after": rec["b_value"], **_diff(rec)})
        for lang in groups.LOW_RESOURCE:
            for direction in ("i2t", "t2i"):
                t = groups.xm3600_task(direction, lang)
                rec = st.compare(t, before_cfg, after_cfg, seen, study.tasks_of({t: 1.0}, "error_pct"))
                if rec:
                    lang_rows.append({"data_pct": rpct, "language": lang, "direction": direction,
                                      "before": rec["a_value"], "after": rec["b_value"], **_diff(rec)})
    if not columns:
        notes.append("no rebalanced runs with a natural counterpart: Figure 5 and Table 14 are empty")
    rebalance = pd.DataFrame(rebalance, columns=["data_pct", "before_run", "after_run", "examples_seen", "group",
                                                 "before", "after", "diff", "lo", "hi", "p", "n_a", "n_b"])
    table14 = _table(est, columns, list(REBALANCE_GROUPS))
    languages = pd.DataFrame(lang_rows, columns=["data_pct", "language", "direction", "before", "after", "diff",
                                                 "lo", "hi", "p", "n_a", "n_b"])
    return Curation(filter_runs, curves, diffs, table13, rebalance, table14, languages, notes)


def _table(est, columns: list[tuple], group_rows: list[str]) -> pd.DataFrame:
    """Rows: TASK_ROWS present, then the group averages; columns: (column label..., quantity) for
    `columns` = [(label, runs, examples_seen)]: error (%) value, lo, hi, the mean over the runs (seed replicates)
    with the interval of that mean over the image resamples."""
    if not columns:
        return pd.DataFrame()
    c, g = est.cells, est.groups
    data = {}
    for label, runs, seen in columns:
        label = label if isinstance(label, tuple) else (label, seen)
        col = {q: {} for q in ("value", "lo", "hi")}
        rows = [(name, task, c.index[(c["run"].isin(runs)) & (c["examples_seen"] == seen) & (c["metric"] == "error_pct")
                                     & (c["task"] == task)], c, est.draws, "value") for name, task in TASK_ROWS]
        rows += [(GROUP_LABELS[group], group, g.index[(g["run"].isin(runs)) & (g["examples_seen"] == seen)
                                                      & (g["group"] == group)], g, est.group_draws, "error_pct")
                 for group in group_rows]
        for name, key, idx, table, draws, value in rows:
            if not len(idx):
                continue
            lo, hi = uncertainty.interval(draws[idx].mean(axis=0))
            col["value"][(name, key)] = float(table.loc[idx, value].mean())
            col["lo"][(name, key)], col["hi"][(name, key)] = lo[0], hi[0]
        for q, v in col.items():
            data[(*label, q)] = v
    t = pd.DataFrame(data)
    t.index = pd.MultiIndex.from_tuples(t.index, names=["metric", "task"])
    t.columns = pd.MultiIndex.from_tuples(t.columns)
    return t
