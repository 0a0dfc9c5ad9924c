"""The quality-quantity trade-off (Goyal et al., CVPR 2024, "Scaling laws for data filtering"): a filtered set is
small, so with more compute it is seen again and again, and its advantage over a larger unfiltered set may shrink.

The filter arms (each keeps k pairs of the pool) and the unfiltered control (the natural runs of the whole pool, s100's
data) at every budget of examples seen that the CLIP arm's runs have (their cool-down checkpoints; the default
0.1, 0.17 and 0.33 of train.examples_seen span 3.3×), compared only at equal examples seen: a run of any compared arm
without a checkpoint at a budget is an error, not a gap. Per budget:
- each arm's Western, Culture and Fairness error averages (analysis/curation.py's groups), seed means with their
  image-resample interval (study.Study.mean), and how often its kept set is repeated: examples seen / its pairs;
- the CLIP filter's Western advantage (the other side's error minus CLIP's: positive when CLIP is better) and
  Culture cost (CLIP's error minus the other side's: positive when CLIP is worse), against the English baseline and
  against the unfiltered control: study.Study.compare, with training noise (seeds) and test-image noise in each
  interval;
- between the largest and the smallest budget, the change of each advantage and cost (a difference of differences:
  per run, its error at the largest budget minus at the smallest, compared between the two sides with the same
  machinery), and its reading: the advantage "shrinks" or "grows", the cost "grows" or "shrinks" with budget, or
  "inconclusive" when the interval holds zero.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from vlscale.analysis import study
from vlscale.analysis.curation import ARM_LABELS, FILTER_ARMS, FILTER_GROUPS
from vlscale.analysis.results import scale_label

CONTROL = "unfiltered"  # the natural runs of the whole pool
CONTROL_LABEL = "No filter (whole pool, control)"
ARM = "clip"  # the filter whose trade-off is measured
AGAINST = ("english", CONTROL)
MEASURES = {"western_advantage": ("western", +1), "culture_cost": ("culture", -1)}  # sign: against minus arm


@dataclass
class Tradeoff:
    budgets: list[int]
    arms: dict[str, str]       # arm -> its configuration (study.configurations)
    averages: pd.DataFrame     # examples_seen, arm, group, error_pct, lo, hi, runs, n_seeds, seed_sd, ..., pairs, repeats
    effects: pd.DataFrame      # examples_seen, against, measure, effect, lo, hi, p, n_a, n_b, seeds_measured
    changes: pd.DataFrame      # against, measure, from_seen, to_seen, change, lo, hi, p, reading
    notes: list[str] = field(default_factory=list)


def _between(quantity, lo: int, hi: int):
    """A run's quantity at budget `hi` minus at `lo` (point and image resamples), whatever `seen` is asked."""
    def q(est, run, seen):
        a, b = quantity(est, run, hi), quantity(est, run, lo)
        return None if a is None or b is None else (a[0] - b[0], a[1] - b[1])
    return q


def _record(r: dict) -> dict:
    return {"effect": r["effect"], "lo": r["lo"], "hi": r["hi"], "p": r["p"], "n_a": r["n_a"], "n_b": r["n_b"],
            "seeds_measured": r["seeds_measured"]}


def check_matched(st: study.Study, arms: dict[str, str], budgets: list[int]) -> None:
    """Every run of every compared arm has a checkpoint at every budget (else a ValueError naming the run)."""
    for arm, config in arms.items():
        runs = list(st.runs.index[st.runs["config"] == config])
        if not runs:
            raise ValueError(f"arm {arm!r} (configuration {config}) has no run")
        for run in runs:
            have = sorted(st.checkpoints(run))
            missing = [b for b in budgets if b not in have]
            if missing:
                raise ValueError(f"run {run} (arm {arm!r}) has no checkpoint at {missing} examples seen (it has "
                                 f"{have}): the trade-off compares arms at equal examples seen; give it those "
                                 "cool-down budgets (train.cooldown_budgets, its run's budget)")


def build_tradeoff(est, keep_pct: float | None, sizes: dict[float, int] | None = None) -> Tradeoff | None:
    """The trade-off (module docstring) from the estimates of every run of one model (uncertainty.estimate, as the
    study's); None without a CLIP arm, an English arm and natural runs of the whole pool. sizes: pairs of the natural
    subsets by data_pct (frequency.subset_sizes), for the repeats: a filter arm keeps data_pct of the 100% subset's
    pairs (None: repeats not reported)."""
    st = study.Study(est, keep_pct)
    configs = st.arm_configs()
    if keep_pct is not None and (st.runs["config"] == f"natural@{scale_label(keep_pct)}").any():
        configs["random"] = f"natural@{scale_label(keep_pct)}"
    whole = st.runs.loc[st.runs["curation"] == "natural", "data_pct"]
    if ARM not in configs or "english" not in configs or not (whole == 100.0).any():
        return None
    arms = {a: configs[a] for a in FILTER_ARMS if a in configs} | {CONTROL: "natural@100%"}
    budgets = sorted(set.union(*(st.checkpoints(r) for r in st.runs.index[st.runs["config"] == configs[ARM]])))
    check_matched(st, arms, budgets)
    notes = []
    if len(budgets) < 2 or budgets[-1] < 3 * budgets[0]:
        notes.append(f"budgets {budgets} span less than 3×: the trade-off with budget is hardly measured")
    pct = st.runs.groupby("config")["data_pct"].first()
    rows = []
    for seen in budgets:
        for arm, config in arms.items():
            pairs = np.nan if not sizes else sizes.get(pct[config], sizes.get(100.0, np.nan) * pct[config] / 100)
            for group in FILTER_GROUPS:
                m = st.mean(config, seen, study.QUANTITIES[group])
                if m:
                    rows.append({"examples_seen": seen, "arm": arm, "group": group, "error_pct": m.pop("value"), **m,
                                 "pairs": round(pairs) if pairs == pairs else np.nan, "repeats": seen / pairs})
    effects, changes = [], []
    for against in AGAINST:
        for measure, (group, sign) in MEASURES.items():
            a, b = (arms[against], arms[ARM]) if sign > 0 else (arms[ARM], arms[against])
            for seen in budgets:
                r = st.compare(f"tradeoff/{measure}/{against}", a, b, seen, group)
                if r:
                    effects.append({"examples_seen": seen, "against": against, "measure": measure, **_record(r)})
            lo, hi = budgets[0], budgets[-1]
            r = st.compare(f"tradeoff/{measure}/{against}/change", a, b, hi,
                           _between(study.QUANTITIES[group], lo, hi)) if hi > lo else None
            if r:
                reading = ("inconclusive" if r["lo"] <= 0 <= r["hi"] else
                           ("grows" if r["effect"] > 0 else "shrinks"))
                changes.append({"against": against, "measure": measure, "from_seen": lo, "to_seen": hi,
                                "change": r["effect"], **{k: v for k, v in _record(r).items() if k != "effect"},
                                "reading": reading})
    return Tradeoff(budgets, arms,
                    pd.DataFrame(rows, columns=["examples_seen", "arm", "group", "error_pct", "lo", "hi", "runs",
                                                "n_seeds", "seed_sd", "seed_min", "seed_max", "pairs", "repeats"]),
                    pd.DataFrame(effects, columns=["examples_seen", "against", "measure", "effect", "lo", "hi", "p",
                                                   "n_a", "n_b", "seeds_measured"]),
                    pd.DataFrame(changes, columns=["against", "measure", "from_seen", "to_seen", "change", "lo", "hi",
                                                   "p", "n_a", "n_b", "seeds_measured", "reading"]), notes)


def labels(t: Tradeoff) -> dict[str, str]:
    """Each compared arm's legend label: its name and how often its kept set is seen at the smallest and largest
    budget."""
    out = {}
    for arm in t.arms:
        name = CONTROL_LABEL if arm == CONTROL else ARM_LABELS.get(arm, arm)
        rep = t.averages[t.averages["arm"] == arm].drop_duplicates("examples_seen").sort_values("examples_seen")
        rep = rep["repeats"].to_numpy()
        out[arm] = name + (f", each pair seen {rep[0]:.2g}–{rep[-1]:.2g}×" if len(rep) and np.isfinite(rep).all() else "")
    return out


def summary(t: Tradeoff) -> dict:
    """metrics/figures.json's `tradeoff`: budgets, arms, per budget each arm's averages and repeats, the CLIP arm's
    advantage and cost per budget, their change between the budgets, the notes."""
    avg = {}
    for _, r in t.averages.iterrows():
        node = avg.setdefault(str(int(r["examples_seen"])), {}).setdefault(r["arm"], {"pairs": r["pairs"],
                                                                                       "repeats": r["repeats"]})
        node[r["group"]] = {"error_pct": r["error_pct"], "ci95": [r["lo"], r["hi"]], "n_seeds": r["n_seeds"],
                            "runs": r["runs"]}
    eff = {}
    for _, r in t.effects.iterrows():
        eff.setdefault(f"{r['measure']}_vs_{r['against']}", {})[str(int(r["examples_seen"]))] = {
            "effect": r["effect"], "ci95": [r["lo"], r["hi"]], "p": r["p"], "seeds_measured": r["seeds_measured"]}
    changes = {f"{r['measure']}_vs_{r['against']}": {
        "from_seen": int(r["from_seen"]), "to_seen": int(r["to_seen"]), "change": r["change"],
        "ci95": [r["lo"], r["hi"]], "p": r["p"], "reading": r["reading"]} for _, r in t.changes.iterrows()}
    return {"arm": ARM, "budgets": t.budgets, "arms": t.arms, "averages": avg, "effects": eff, "changes": changes,
            "notes": t.notes}
