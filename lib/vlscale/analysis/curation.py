"""The curation study (PAPER.md §5.1, §5.2) from the evaluate stage's results: Figure 4 / Table 13 (quality
filters) and Figure 5 / Table 14 (language rebalancing), with paired-bootstrap intervals.

Runs say what they are in the tidy table's `curation` column: "natural", "rebalanced" or "filter/<arm>".
- Filters: each arm's run against examples seen; the random arm is a run "filter/random" or, failing one,
  the natural run whose data share is the arm's (filter.keep_fraction of the pool, at random: the same
  data), at the checkpoints the filter runs have. Differences are taken against the English baseline
  (the paper's Baseline (en)) and against random, at equal examples seen.
- Rebalancing: each rebalanced run against the natural run of the same data scale and seed at the
  rebalanced run's last checkpoint (equal examples seen): "before" and "after".
A difference's interval and p-value come from the same image resamples for both runs (uncertainty.py's
pairing), so they are the intervals of the difference; p is the two-sided bootstrap p of "no difference".
A paired-bootstrap interval covers test-set sampling only. Training noise is measured where two runs see
the same random data (the random arm's run and the natural run of its share, different seeds and data
orders): their difference (`filter_diffs` rows "random:<run>") is what a difference of arms must exceed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from vlscale.analysis import results, uncertainty
from vlscale.evals import groups

FILTER_ARMS = ("random", "english", "clip", "classifier")  # the order of Figure 4's lines
ARM_LABELS = {"random": "Random (control)", "english": "Baseline (en)", "clip": "CLIP score", "classifier": "Classifier"}
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
    """The curation tables; empty frames where the runs they need are absent (notes say which)."""
    filter_runs: dict[str, str]          # arm -> run
    filter_curves: pd.DataFrame          # arm, run, examples_seen, group, error_pct, lo, hi
    filter_diffs: pd.DataFrame           # arm, against, examples_seen, group, diff, lo, hi, p
    table13: pd.DataFrame                # rows (label, task) + groups; columns (arm, examples_seen) -> value/lo/hi
    rebalance: pd.DataFrame              # data_pct, before_run, after_run, examples_seen, group, before, after, diff, lo, hi, p
    table14: pd.DataFrame                # rows (label, task); columns ("1%" ..., before|after)
    languages: pd.DataFrame              # per low-resource language (i2t): data_pct, before, after, diff, lo, hi
    notes: list[str] = field(default_factory=list)


def _diff_row(a_draws, b_draws, a_val, b_val, level) -> dict:
    diff = a_draws - b_draws
    lo, hi = uncertainty.interval(diff, level)
    return {"diff": a_val - b_val, "lo": lo[0], "hi": hi[0], "p": uncertainty.p_two_sided(diff)}


def _task_cells(est, run: str, seen: int) -> dict:
    """task -> row of est.cells of run's error (%) results at `seen` examples."""
    c = est.cells
    sel = c[(c["run"] == run) & (c["examples_seen"] == seen) & (c["metric"] == "error_pct")]
    return dict(zip(sel["task"], sel.index))


def build_curation(tidy: pd.DataFrame, items: pd.DataFrame | None = None, source: str = "analog",
                   keep_fraction: float | None = None, n_boot: int = 1000, seed: int = 0) -> Curation:
    """The curation study from the tidy results of every run (results.read_results) and their items."""
    d = results.select_source(tidy, source)
    if "curation" not in d:
        d = d.assign(curation="natural")
    notes = []
    est = uncertainty.estimate(d, items, n_boot=n_boot, seed=seed)
    g, gd = est.groups, est.group_draws
    runs = d.groupby("run").agg(curation=("curation", "first"), data_pct=("data_pct", "first"),
                                seed=("seed", "first"), last=("examples_seen", "max"))

    # -------------------------------------------------------------------------------- filters
    filter_runs = {r.curation.split("/", 1)[1]: name for name, r in runs.sort_index(ascending=False).iterrows()
                   if r.curation.startswith("filter/")}
    # every run on a random keep_fraction of the pool: the random arm's runs, and the natural run of that share
    pct = 100.0 * keep_fraction if keep_fraction is not None else -1.0
    randoms = [n for n, r in runs.iterrows() if r.curation == "filter/random"]
    randoms += list(runs[(runs["curation"] == "natural") & np.isclose(runs["data_pct"], pct)].sort_values("seed").index)
    if filter_runs and "random" not in filter_runs:
        if randoms:
            filter_runs["random"] = randoms[0]
        else:
            notes.append(f"no random arm: no run 'filter/random' and no natural run of {pct:g}% of the pool")
    if not filter_runs:
        notes.append("no filter runs (runs with `filter`): Figure 4 and Table 13 are empty")
    seen_of = {arm: set(g.loc[g["run"] == run, "examples_seen"]) for arm, run in filter_runs.items()}
    curated = [a for a in filter_runs if a != "random"]
    common = sorted(set.intersection(*[seen_of[a] for a in curated])) if curated else []
    if "random" in filter_runs and curated:
        missing = [s for s in common if s not in seen_of["random"]]
        if missing:
            notes.append(f"the random arm's run {filter_runs['random']} has no checkpoint at {missing} examples seen")
    curves, diffs = [], []
    for arm in [a for a in FILTER_ARMS if a in filter_runs]:
        sel = g[(g["run"] == filter_runs[arm]) & g["examples_seen"].isin(common) & g["group"].isin(FILTER_GROUPS)]
        curves.append(sel.assign(arm=arm)[["arm", "run", "examples_seen", "group", "error_pct", "lo", "hi"]])
    curves = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(
        columns=["arm", "run", "examples_seen", "group", "error_pct", "lo", "hi"])
    index = {(r.run, r.examples_seen, r.group): i for i, r in zip(g.index, g.itertuples())}
    for against in ("english", "random"):
        if against not in filter_runs:
            continue
        # against English: the filters (the paper's comparison); against random: every other arm
        others = [a for a in FILTER_ARMS if a in filter_runs and a != against and not (against == "english" and a == "random")]
        for arm in others:
            for seen in common:
                for group in FILTER_GROUPS:
                    ia = index.get((filter_runs[arm], seen, group))
                    ib = index.get((filter_runs[against], seen, group))
                    if ia is None or ib is None:
                        continue
                    diffs.append({"arm": arm, "against": against, "examples_seen": seen, "group": group,
                                  **_diff_row(gd[ia], gd[ib], g.at[ia, "error_pct"], g.at[ib, "error_pct"], est.level)})
    # the training-noise null: two runs on the same random data (different seed and data order) differ by this
    if len(randoms) >= 2:
        for seen in common:
            for group in FILTER_GROUPS:
                ia, ib = index.get((randoms[1], seen, group)), index.get((randoms[0], seen, group))
                if ia is not None and ib is not None:
                    diffs.append({"arm": f"random:{randoms[1]}", "against": f"random:{randoms[0]}",
                                  "examples_seen": seen, "group": group,
                                  **_diff_row(gd[ia], gd[ib], g.at[ia, "error_pct"], g.at[ib, "error_pct"], est.level)})
    else:
        notes.append("one run on the random data: the seed-to-seed difference of equal data is not measured")
    diffs = pd.DataFrame(diffs, columns=["arm", "against", "examples_seen", "group", "diff", "lo", "hi", "p"])
    table13 = _table(est, [(arm, filter_runs[arm], s) for arm in FILTER_ARMS if arm in filter_runs for s in common],
                     list(FILTER_GROUPS) + ["multilingual_low_resource", "multilingual_high_resource"])

    # ----------------------------------------------------------------------------- rebalancing
    rebalance, lang_rows, columns = [], [], []
    for name, r in runs[runs["curation"] == "rebalanced"].sort_values("data_pct").iterrows():
        before = runs[(runs["curation"] == "natural") & np.isclose(runs["data_pct"], r.data_pct)]
        before = before[before["seed"] == r.seed] if (before["seed"] == r.seed).any() else before
        seen = int(r["last"])
        cand = [b for b in before.index if ((g["run"] == b) & (g["examples_seen"] == seen)).any()]
        if not cand:
            notes.append(f"rebalanced run {name}: no natural run of {r.data_pct:g}% has a checkpoint at {seen} examples")
            continue
        b = cand[0]
        columns += [((results.scale_label(r.data_pct), "before"), b, seen),
                    ((results.scale_label(r.data_pct), "after"), name, seen)]
        for group in REBALANCE_GROUPS:
            ia, ib = index.get((name, seen, group)), index.get((b, seen, group))
            if ia is None or ib is None:
                continue
            rebalance.append({"data_pct": r.data_pct, "before_run": b, "after_run": name, "examples_seen": seen,
                              "group": group, "before": g.at[ib, "error_pct"], "after": g.at[ia, "error_pct"],
                              # positive: rebalancing lowers the error
                              **_diff_row(gd[ib], gd[ia], g.at[ib, "error_pct"], g.at[ia, "error_pct"], est.level)})
        ta, tb = _task_cells(est, name, seen), _task_cells(est, b, seen)
        for lang in groups.LOW_RESOURCE:
            for direction in ("i2t", "t2i"):
                t = groups.xm3600_task(direction, lang)
                if t in ta and t in tb:
                    lang_rows.append({"data_pct": r.data_pct, "language": lang, "direction": direction,
                                      "before": est.cells.at[tb[t], "value"], "after": est.cells.at[ta[t], "value"],
                                      **_diff_row(est.draws[tb[t]], est.draws[ta[t]], est.cells.at[tb[t], "value"],
                                                  est.cells.at[ta[t], "value"], est.level)})
    if not columns:
        notes.append("no rebalanced runs with a natural counterpart: Figure 5 and Table 14 are empty")
    rebalance = pd.DataFrame(rebalance, columns=["data_pct", "before_run", "after_run", "examples_seen", "group",
                                                 "before", "after", "diff", "lo", "hi", "p"])
    table14 = _table(est, [(c, run, s) for c, run, s in columns], list(REBALANCE_GROUPS))
    languages = pd.DataFrame(lang_rows, columns=["data_pct", "language", "direction", "before", "after", "diff",
                                                 "lo", "hi", "p"])
    return Curation(filter_runs, curves, diffs, table13, rebalance, table14, languages, notes)


def _table(est, columns: list[tuple], group_rows: list[str]) -> pd.DataFrame:
    """Rows: TASK_ROWS present, then the group averages; columns: (column label..., quantity) for
    `columns` = [(label, run, examples_seen)]: error (%) value, lo, hi."""
    if not columns:
        return pd.DataFrame()
    c, g = est.cells, est.groups
    data = {}
    for label, run, seen in columns:
        label = label if isinstance(label, tuple) else (label, seen)
        here = c[(c["run"] == run) & (c["examples_seen"] == seen) & (c["metric"] == "error_pct")].set_index("task")
        gh = g[(g["run"] == run) & (g["examples_seen"] == seen)].set_index("group")
        for q, src in (("value", "value"), ("lo", "lo"), ("hi", "hi")):
            col = {}
            for name, task in TASK_ROWS:
                if task in here.index:
                    col[(name, task)] = here.at[task, src]
            for group in group_rows:
                if group in gh.index:
                    col[(GROUP_LABELS[group], group)] = gh.at[group, "error_pct" if q == "value" else q]
            data[(*label, q)] = col
    t = pd.DataFrame(data)
    t.index = pd.MultiIndex.from_tuples(t.index, names=["metric", "task"])
    t.columns = pd.MultiIndex.from_tuples(t.columns)
    return t
