"""The study's comparisons between configurations, each with training noise and test-image noise in its interval.

Every run of one model is placed in a configuration (data scale, curation) and every comparison the paper's
findings rest on is computed at one checkpoint (examples seen) by analysis/evidence.py: the seed variance is
pooled over the configurations that have replicates at that checkpoint, the image resamples are the figures
stage's (uncertainty.py), shared by every run. A run on the random filter arm trains on the natural run's data
of filter.keep_fraction, so both are runs of one configuration.

The comparisons (names are what the paper stage's rules read):
- at the natural runs' final checkpoint: each group's gain from one data scale to the next and from 10% to 100%
  (error of the smaller minus the larger: positive when more data helps), the paired contrasts of the gains
  (Culture minus Western, low- minus high-resource), the change of each disparity gap, of representation bias
  and of association bias, and the levels the floors are read from (low-resource retrieval error, perceived
  gender error) against chance;
- at the curated runs' checkpoint: every filter arm minus the English baseline and minus random on Western,
  Culture and Fairness; each rebalanced run against the natural run of its scale (low-resource reduction, and
  its contrast with the high-resource one);
- the controls: the negative control splits the random data's runs into two halves by seed and passes them
  through the same difference as two arms (it must show no difference); the positive control is the planted arm
  (no place-bound concept: culture-specific concepts, concepts with regional variants and landmarks removed)
  against random on the Culture zero-shot tasks, whose classes are those concepts (it must come out worse), and,
  for the record, on each filter group. Culture as a whole mixes those tasks with geolocalization, which reads the
  place and which the planted arm's data, all of it unbound concepts on the same pages, can help.
"""
from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pandas as pd

from vlscale.analysis import evidence
from vlscale.analysis.results import scale_label
from vlscale.analysis.uncertainty import interval, seed_spread
from vlscale.config import OCCUPATION_PAIRS
from vlscale.models.vit import decode_variant

# The Culture tasks whose classes are place-bound concepts (regional variants, landmarks), what the planted filter
# arm leaves out of its data; Culture's geolocalization tasks read the place, not the concept.
CULTURE_ZERO_SHOT = ("dollarstreet/0shot", "geode/0shot", "gldv2/0shot")
Quantity = Callable[[object, str, int], "tuple[float, np.ndarray] | None"]
GAIN_GROUPS = ("western", "culture", "fairness", "multilingual", "multilingual_low_resource",
               "multilingual_high_resource")
FILTER_GROUPS = ("western", "culture", "fairness")
ASSOCIATION_TASKS = {f"fairface/association_bias/{first}/{g}": (1 if g == "female" else -1) / len(OCCUPATION_PAIRS)
                     for first, _ in OCCUPATION_PAIRS for g in ("female", "male")}


# ------------------------------------------------------------------------------------------------ quantities

def groups_of(coefs: dict[str, float]) -> Quantity:
    """A linear combination of group averages (error %, est.groups) of one run at one checkpoint."""
    def q(est, run, seen):
        g = est.groups
        point, draws = 0.0, 0.0
        for name, c in coefs.items():
            row = g.index[(g["run"] == run) & (g["examples_seen"] == seen) & (g["group"] == name)]
            if not len(row) or not np.isfinite(g.at[row[0], "error_pct"]) or g.at[row[0], "n_present"] == 0:
                return None
            point += c * g.at[row[0], "error_pct"]
            draws = draws + c * est.group_draws[row[0]]
        return point, np.asarray(draws, dtype=float)
    return q


def tasks_of(coefs: dict[str, float], metric: str) -> Quantity:
    """A linear combination of task values of `metric` (est.cells) of one run at one checkpoint."""
    def q(est, run, seen):
        c = est.cells
        here = c[(c["run"] == run) & (c["examples_seen"] == seen) & (c["metric"] == metric)]
        index = dict(zip(here["task"], here.index))
        if any(t not in index or not np.isfinite(c.at[index[t], "value"]) for t in coefs):
            return None
        point = sum(w * c.at[index[t], "value"] for t, w in coefs.items())
        draws = sum(w * est.draws[index[t]] for t, w in coefs.items())
        return float(point), np.asarray(draws, dtype=float)
    return q


def mean_of_present(tasks: tuple[str, ...], metric: str) -> Quantity:
    """The mean of `metric` over those of `tasks` the run was evaluated on: a benchmark the evaluation left out (a
    real pool's missing set) is left out of the mean, but a task evaluated to a non-finite value makes the quantity
    None, as a group average's does. None when the run has none of the tasks."""
    def q(est, run, seen):
        c = est.cells
        here = c[(c["run"] == run) & (c["examples_seen"] == seen) & (c["metric"] == metric)]
        present = [t for t in tasks if t in set(here["task"])]
        return tasks_of({t: 1.0 / len(present) for t in present}, metric)(est, run, seen) if present else None
    return q


QUANTITIES: dict[str, Quantity] = {
    **{g: groups_of({g: 1.0}) for g in GAIN_GROUPS},
    "culture_minus_western": groups_of({"culture": 1.0, "western": -1.0}),
    "low_minus_high_resource": groups_of({"multilingual_low_resource": 1.0, "multilingual_high_resource": -1.0}),
    "geode_region_gap": tasks_of({"geode/disparity_region": 1.0}, "gap_pct"),
    "dollarstreet_income_gap": tasks_of({"dollarstreet/disparity_income": 1.0}, "gap_pct"),
    "male_preference": tasks_of({"fairface/representation_bias": 1.0}, "male_preference_pct"),
    "association_bias": tasks_of({t: 100 * w for t, w in ASSOCIATION_TASKS.items()}, "probability"),
    "perceived_gender_error": tasks_of({"fairface/perceived_gender": 1.0}, "error_pct"),
    "culture_0shot": mean_of_present(CULTURE_ZERO_SHOT, "error_pct"),
}


# ------------------------------------------------------------------------------------------------ configurations

def join_random_arm(table: pd.DataFrame, keep_pct: float | None) -> pd.DataFrame:
    """`table` (curation and data_pct columns) with the random filter arm's runs as runs of the natural
    configuration of keep_pct, the data they train on; unchanged when keep_pct is None."""
    if keep_pct is None:
        return table
    random = (table["curation"] == "filter/random").to_numpy()
    return table.assign(curation=np.where(random, "natural", table["curation"]),
                        data_pct=np.where(random, float(keep_pct), table["data_pct"]))


def configurations(est, keep_pct: float | None) -> pd.DataFrame:
    """One row per run: its seed and configuration (curation, data_pct, and the model where the runs hold several:
    "natural@100%/w96d1p8"); the random arm's runs join the natural runs of keep_pct, whose data they train on."""
    c = est.cells
    if "curation" not in c:
        c = c.assign(curation="natural")
    if "model" not in c:
        c = c.assign(model="")
    runs = c.groupby("run").agg(seed=("seed", "first"), data_pct=("data_pct", "first"), curation=("curation", "first"),
                                model=("model", "first"))
    runs = join_random_arm(runs, keep_pct)
    several = runs["model"].nunique() > 1
    runs["config"] = [f"{cur}@{scale_label(pct)}" + (f"/{m}" if several else "")
                      for cur, pct, m in zip(runs["curation"], runs["data_pct"], runs["model"])]
    return runs.sort_values(["config", "seed"])


def model_size(name: str) -> int | None:
    """A model's size for ordering the model axis: its image tower's width² × depth, from its results name
    (config.model_name: "w96d1p8", or a big_vision variant "L/16"); None for a name that is neither."""
    m = re.fullmatch(r"w(\d+)d(\d+)p\d+", name)
    if m:
        return int(m.group(1)) ** 2 * int(m.group(2))
    try:
        kw = decode_variant(name)
    except ValueError:
        return None
    return kw["width"] ** 2 * kw["depth"]


class Study:
    """Configurations of one model's runs and the comparisons between them (evidence.difference)."""

    def __init__(self, est, keep_pct: float | None):
        self.est = est
        self.runs = configurations(est, keep_pct)
        self.n_boot = est.group_draws.shape[1]

    def arm_configs(self) -> dict[str, str]:
        """filter arm -> its configuration (the random arm's is the natural one of keep_fraction, not listed)."""
        f = self.runs[self.runs["curation"].str.startswith("filter/")]
        return {cur.split("/", 1)[1]: cfg for cur, cfg in zip(f["curation"], f["config"])}

    def checkpoints(self, run: str) -> set[int]:
        c = self.est.cells
        return set(c.loc[c["run"] == run, "examples_seen"].astype(int))

    def runs_of(self, config: str, seen: int) -> list[str]:
        """The runs of `config` that have a checkpoint at `seen`, in seed order."""
        return [r for r in self.runs.index[self.runs["config"] == config] if seen in self.checkpoints(r)]

    def mean(self, config: str, seen: int, quantity: Quantity, level: float = evidence.LEVEL) -> dict | None:
        """A configuration's seed mean at `seen` with its image-resample interval and seed spread."""
        c = self.config(config, self.runs_of(config, seen), seen, quantity)
        if c is None:
            return None
        lo, hi = interval(c.draws.mean(axis=0), level)
        return {"value": float(c.points.mean()), "lo": float(lo[0]), "hi": float(hi[0]), "runs": "+".join(c.runs),
                **seed_spread(c.points)}

    def config(self, name: str, runs: list[str], seen: int, quantity: Quantity) -> evidence.Config | None:
        got = [(r, quantity(self.est, r, seen)) for r in runs]
        got = [(r, v) for r, v in got if v is not None]
        if not got:
            return None
        return evidence.Config(name, [v[0] for _, v in got], np.stack([v[1] for _, v in got]),
                               tuple(r for r, _ in got))

    def seed_noise(self, seen: int, quantity: Quantity, split: dict[str, list[list[str]]] | None = None):
        """(s², df, w) of `quantity` at `seen`: the seed variance and the image-by-image churn between seeds
        (evidence.pooled_churn), pooled over every configuration with ≥2 runs there; `split` replaces a
        configuration's runs by the given groups (the negative control's halves)."""
        configs = []
        for name in self.runs["config"].unique():
            for runs in (split or {}).get(name, [self.runs_of(name, seen)]):
                c = self.config(name, runs, seen, quantity)
                if c is not None:
                    configs.append(c)
        var, df = evidence.pooled_seed_variance([c.points for c in configs])
        return var, df, evidence.pooled_churn([c.draws for c in configs])

    def compare(self, label: str, a: str, b: str, seen: int, quantity: str | Quantity, **extra) -> dict | None:
        """Configuration a minus b of `quantity` (a QUANTITIES name, or a Quantity) at `seen`, as a record (None
        when either configuration has no run there)."""
        q = QUANTITIES[quantity] if isinstance(quantity, str) else quantity
        quantity = quantity if isinstance(quantity, str) else label
        ca, cb = (self.config(n, self.runs_of(n, seen), seen, q) for n in (a, b))
        if ca is None or cb is None:
            return None
        var, df, churn = self.seed_noise(seen, q)
        d = evidence.difference(ca, cb, var, df, churn=churn)
        return _record(label, quantity, seen, ca, cb, d, **extra)

    def level(self, label: str, config: str, seen: int, quantity: str, reference: float, **extra) -> dict | None:
        """A configuration's value minus a fixed reference (a chance level), only its own seeds as training noise."""
        q = QUANTITIES[quantity]
        ca = self.config(config, self.runs_of(config, seen), seen, q)
        if ca is None:
            return None
        var, df, churn = self.seed_noise(seen, q)
        cb = evidence.constant(f"{reference:g}", reference, self.n_boot)
        d = evidence.difference(ca, cb, var, df, b_trained=False, churn=churn)
        return _record(label, quantity, seen, ca, cb, d, value=float(ca.points.mean()),
                       value_hi=float(ca.points.mean() + d.hi - d.effect), reference=reference, **extra)


def _record(label, quantity, seen, ca, cb, d, **extra) -> dict:
    return {"name": label, "quantity": quantity, "examples_seen": int(seen), "a": ca.name, "b": cb.name,
            "runs_a": list(ca.runs), "runs_b": list(cb.runs), "a_value": float(ca.points.mean()),
            "b_value": float(cb.points.mean()), **d.record(), **extra}


# ------------------------------------------------------------------------------------------------ the comparisons

def _natural_final(study: Study) -> tuple[int | None, list[float]]:
    """The largest examples seen that every natural data scale has (their compute-matched final checkpoint), and
    the scales."""
    nat = study.runs[study.runs["curation"] == "natural"]
    if nat.empty:
        return None, []
    per_scale = [set().union(*(study.checkpoints(r) for r in g.index)) for _, g in nat.groupby("data_pct")]
    shared = set.intersection(*per_scale)
    if not shared:
        return None, []
    return max(shared), sorted(nat["data_pct"].unique())


def scale_comparisons(study: Study, chance: dict[str, float]) -> list[dict]:
    """The data-scale study at the natural runs' final checkpoint (see the module docstring)."""
    seen, pcts = _natural_final(study)
    if seen is None:
        return []
    out = []
    nat = lambda pct: f"natural@{scale_label(pct)}"  # noqa: E731
    pairs = list(zip(pcts, pcts[1:]))
    if 10.0 in pcts and 100.0 in pcts and (10.0, 100.0) not in pairs:
        pairs.append((10.0, 100.0))
    for lo, hi in pairs:
        tag = f"{lo:g}_to_{hi:g}"
        for q in (*GAIN_GROUPS, "culture_minus_western", "low_minus_high_resource"):
            out.append(study.compare(f"gain/{q}/{tag}", nat(lo), nat(hi), seen, q, from_pct=lo, to_pct=hi))
        for q in ("geode_region_gap", "dollarstreet_income_gap", "male_preference", "association_bias"):
            out.append(study.compare(f"change/{q}/{tag}", nat(lo), nat(hi), seen, q, from_pct=lo, to_pct=hi))
    for pct in pcts:
        for q, ref in (("multilingual_low_resource", "xm3600"), ("perceived_gender_error", "perceived_gender")):
            if ref in chance:
                out.append(study.level(f"level/{q}/{scale_label(pct)}", nat(pct), seen, q, chance[ref],
                                       data_pct=pct))
    return [r for r in out if r is not None]


def _curated_seen(study: Study) -> int | None:
    cur = study.runs[study.runs["curation"] != "natural"]
    return max((max(study.checkpoints(r)) for r in cur.index), default=None)


def curation_comparisons(study: Study, keep_pct: float | None, chance: dict[str, float]) -> list[dict]:
    """Filter arms and rebalancing at the curated runs' checkpoint, and the two controls."""
    seen = _curated_seen(study)
    if seen is None:
        return []
    out = []
    random = f"natural@{scale_label(keep_pct)}" if keep_pct is not None else None
    arm_configs = study.arm_configs()
    arms = sorted(arm_configs)
    arm = arm_configs.get
    for a in arms:
        for q in FILTER_GROUPS:
            if a != "english" and "english" in arm_configs:
                out.append(study.compare(f"filter/{a}_minus_english/{q}", arm(a), arm("english"), seen, q, arm=a))
            if random:
                out.append(study.compare(f"filter/{a}_minus_random/{q}", arm(a), random, seen, q, arm=a))
    for pct in sorted(study.runs.loc[study.runs["curation"] == "rebalanced", "data_pct"].unique()):
        before, after = f"natural@{scale_label(pct)}", f"rebalanced@{scale_label(pct)}"
        for q in ("multilingual_low_resource", "multilingual_high_resource", "low_minus_high_resource", "western",
                  "culture"):
            out.append(study.compare(f"rebalance/{q}/{scale_label(pct)}", before, after, seen, q, data_pct=pct))
        if "xm3600" in chance:
            out.append(study.level(f"level/multilingual_low_resource/rebalanced@{scale_label(pct)}", after, seen,
                                   "multilingual_low_resource", chance["xm3600"], data_pct=pct))
    if random:
        out += negative_control(study, random, seen)
        if "planted" in arm_configs:
            for q in ("culture_0shot",) + FILTER_GROUPS:
                out.append(study.compare(f"control/positive/{q}", arm("planted"), random, seen, q, control="positive"))
    return [r for r in out if r is not None]


def negative_control(study: Study, config: str, seen: int) -> list[dict]:
    """The random data's runs at `seen`, split by seed into two halves, compared as two arms: the same difference
    (the halves count as two configurations for the seed variance, so their difference is not in it)."""
    runs = study.runs_of(config, seen)
    if len(runs) < 2:
        return []
    a, b = runs[0::2], runs[1::2]  # alternate in seed order, so that how the runs were made mixes in both halves
    out = []
    for q in FILTER_GROUPS:
        quantity = QUANTITIES[q]
        ca, cb = study.config("seeds " + "+".join(a), a, seen, quantity), study.config("seeds " + "+".join(b), b,
                                                                                         seen, quantity)
        if ca is None or cb is None:
            continue
        var, df, churn = study.seed_noise(seen, quantity, split={config: [a, b]})
        out.append(_record(f"control/negative/{q}", q, seen, ca, cb, evidence.difference(ca, cb, var, df, churn=churn),
                           control="negative"))
    return out


def chance_levels(facts: dict) -> dict[str, float]:
    """Error (%) at chance: XM3600 Recall@1 over its images' captions, perceived gender's two classes."""
    out = {"perceived_gender": 50.0}
    n = (facts.get("analogs", {}).get("xm3600", {}) or {}).get("images")
    if n:
        out["xm3600"] = 100.0 * (1 - 1 / n)
    return out


def correlation(study: Study, tasks: list[str], n_boot: int, seed: int = 0) -> dict | None:
    """Finding 10: Spearman correlation over `tasks` of a task's error at 10% and its gain 10% → 100% at the final
    checkpoint. One correlation per seed pair (the i-th seed of each scale), with replicates that resample the tasks
    (the same task resample for every pair) and take the image resample of the same index; the error level is read
    from another seed's 10% run than the gain's where there are two, so that one run's noise is not in both (it
    would pull the correlation up). The training noise is the correlations' spread over the pairs."""
    from scipy.stats import spearmanr

    seen, pcts = _natural_final(study)
    if seen is None or not {10.0, 100.0} <= set(pcts):
        return None
    a, b = study.runs_of("natural@10%", seen), study.runs_of("natural@100%", seen)
    got = {(t, r): tasks_of({t: 1.0}, "error_pct")(study.est, r, seen) for t in tasks for r in a + b}
    present = [t for t in tasks if all(got[(t, r)] is not None for r in a + b)]
    if len(present) < 4 or not a or not b:
        return None
    pick = np.random.default_rng(seed).integers(0, len(present), size=(n_boot, len(present)))
    val = {r: np.array([got[(t, r)][0] for t in present]) for r in a + b}
    rep = {r: np.stack([got[(t, r)][1] for t in present]) for r in a + b}
    per_pair = []
    for i, (ra, rb) in enumerate(zip(a, b)):
        rl = a[(i + 1) % len(a)]  # the level's run: another seed of 10% when there is one
        level, gain = val[rl], val[ra] - val[rb]
        if np.ptp(level) == 0 or np.ptp(gain) == 0:
            return None  # a constant level or gain has no correlation
        lev_d, gain_d = rep[rl], rep[ra] - rep[rb]
        draws = np.array([spearmanr(lev_d[pick[j], j], gain_d[pick[j], j]).statistic for j in range(n_boot)])
        per_pair.append((float(spearmanr(level, gain).statistic), draws))
    points = [p[0] for p in per_pair]
    ca = evidence.Config("spearman", points, np.stack([p[1] for p in per_pair]), tuple(f"{x}|{y}" for x, y in zip(a, b)))
    var, df = evidence.pooled_seed_variance([points])
    zero = evidence.constant("0", 0.0, n_boot)
    d = evidence.difference(ca, zero, var, df, b_trained=False)
    return _record("correlation/level_vs_gain/10_to_100", "spearman_rho", seen, ca, zero, d, n_tasks=len(present))


MODEL_GROUPS = ("western", "culture", "multilingual")


def model_comparisons(est) -> list[dict]:
    """The model axis (finding 9): at the natural runs' final shared checkpoint, each smaller model's error minus the
    next larger one's on each MODEL_GROUPS average, at every data scale both trained (positive: the larger model is
    better). `est` holds the natural runs of every model on the same image resamples; the seed variance is pooled
    over every (model, data scale) with replicates."""
    study = Study(est, None)
    models = list(study.runs["model"].unique())
    if len(models) < 2 or any(model_size(m) is None for m in models):  # no size to order them by
        return []
    models.sort(key=model_size)
    seen, pcts = _natural_final(study)
    if seen is None:
        return []
    out = []
    for small, large in zip(models, models[1:]):
        for pct in pcts:
            a, b = (f"natural@{scale_label(pct)}/{m}" for m in (small, large))
            for group in MODEL_GROUPS:
                out.append(study.compare(f"model/{group}/{small}_minus_{large}/{scale_label(pct)}", a, b, seen,
                                         group, small=small, large=large, data_pct=pct))
    return [r for r in out if r is not None]


def comparisons(est, keep_pct: float | None, facts: dict, tasks: list[str], seed: int = 0) -> list[dict]:
    """Every comparison of the study, as records (see the module docstring and evidence.Difference.record)."""
    study = Study(est, keep_pct)
    chance = chance_levels(facts)
    out = scale_comparisons(study, chance) + curation_comparisons(study, keep_pct, chance)
    rho = correlation(study, tasks, study.n_boot, seed)
    return out + ([rho] if rho else [])
