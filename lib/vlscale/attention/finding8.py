"""Finding 8's evidence (the paper's §5.3: more data focuses the attention, more so on the long tail), every
comparison a `vlscale.analysis.evidence.difference` with training noise and test-image noise in one interval.

A configuration is (model, curation, data_pct) at one examples seen; its runs (seeds) are its replicates. As in
analysis/study.py, a run on the random filter arm is a run of the natural configuration of filter.keep_fraction
(the data it trains on) when `keep_pct` is given. A quantity has, per run, a point value (a pool's mean over the
probe images, in percentage points) and bootstrap draws over image resamples shared by every run
(stage._pool_draws). Per model, at the largest examples seen every natural data scale of that model has (the
natural runs' final checkpoint when they are compute-matched), per score (energy, hit) and pool:
- attention/step: each pair of consecutive natural data scales, larger minus smaller (positive: more data
  focuses the attention, the paper's direction);
- attention/long_tail_minus_head: the first-to-last-scale gain of a long-tail pool minus the head's (per run the
  pool's score minus the head's; positive: the long tail gains more, the paper's direction);
- attention_context/centre_prior: each natural scale minus the centre prior (a fixed map, not trained);
- attention_context/shuffled: each natural scale minus its own image-shuffled score (per run the model's score
  minus its shuffled score, against zero: the part of the focus that depends on the image's content);
- attention_context/step_over_shuffled: each step of that content-dependent part (the rise not explained by the
  model's spatial habits).
The attention/ records are the steps the paper's claim states (`claim`: true); the attention_context/ ones compare
the maps with blind maps (`claim`: false). The paper stage's rule for finding 8 (paper/findings.py) needs both: the
steps, and the largest scale beating the centre prior and its own shuffled maps. The seed variance of each
quantity, and the churn between seeds it shares with the image resamples, are pooled (evidence.pooled_seed_variance,
evidence.pooled_churn) over every configuration with at least two runs at that same examples seen, so the
training-noise null is read where the comparisons are. A blind baseline is not a trained model:
difference(b_trained=False) counts only A's seeds (seed_var / n_A).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from vlscale.analysis.evidence import Config, Difference, constant, difference, pooled_churn, pooled_seed_variance
from vlscale.analysis.results import scale_label
from vlscale.analysis.study import join_random_arm
from vlscale.attention.groups import CULTURAL, GROUP_LABELS, POOLS, SCORES

Quantity = Callable[[str, int], tuple[float, np.ndarray]]  # (run, examples seen) -> (point, draws [B]), in pp
STEP, CONTRAST = "step", "long_tail_minus_head"
CENTRE, SHUFFLED, STEP_OVER_SHUFFLED = "centre_prior", "shuffled", "step_over_shuffled"
SCORE_LABELS = {"energy": "Attention mass on the object", "hit": "Pointing-game hit rate"}
KINDS = {"score": POOLS, "lift_over_shuffled": POOLS, "gap": (*CULTURAL, "cultural")}  # quantities with seeds


def quantities(val: dict, draws: dict) -> dict[str, Callable[..., Quantity]]:
    """The quantities compared, in percentage points, from the pooled means `val` and draws `draws` keyed
    (run, seen, pool, metric): score(pool, metric), lift_over_shuffled(pool, metric) (score minus the model's
    shuffled score), gap(pool, metric) (pool minus head) and prior(pool, metric) (the centre prior's score)."""
    def get(pool, metric):
        return lambda run, seen: (100 * val[(run, seen, pool, metric)], 100 * draws[(run, seen, pool, metric)])

    def minus(q1, q2):
        return lambda run, seen: tuple(x - y for x, y in zip(q1(run, seen), q2(run, seen)))

    return {"score": get,
            "lift_over_shuffled": lambda pool, metric: minus(get(pool, metric), get(pool, f"shuffled_{metric}")),
            "gap": lambda pool, metric: minus(get(pool, metric), get("head", metric)),
            "prior": lambda pool, metric: get(pool, f"prior_{metric}")}


# ------------------------------------------------------------------------------------------------ configurations

def config_key(model: str, curation: str, data_pct: float) -> tuple:
    """A checkpoint's configuration: (model, curation, data_pct to 1e-6)."""
    return model, curation, round(float(data_pct), 6)


def configurations(ckpts: pd.DataFrame, seen: int) -> dict[tuple, list[str]]:
    """{config_key: runs in seed order} of the checkpoints at `seen` examples seen."""
    at = ckpts[ckpts["examples_seen"] == seen].sort_values(["model", "curation", "data_pct", "seed"])
    out: dict[tuple, list[str]] = {}
    for model, curation, pct, run in zip(at["model"], at["curation"], at["data_pct"], at["run"]):
        out.setdefault(config_key(model, curation, pct), []).append(run)
    return out


def config_name(curation: str, pct: float) -> str:
    """As analysis/study.py names a configuration: 'natural@10%'."""
    return f"{curation}@{scale_label(pct)}"


def make_config(name: str, runs: list[str], seen: int, q: Quantity) -> Config:
    """A Config of `runs` at `seen` examples seen, one seed per run, of quantity q."""
    pairs = [q(run, seen) for run in runs]
    return Config(name, points=np.array([p for p, _ in pairs]), draws=np.stack([d for _, d in pairs]),
                  runs=tuple(runs))


def evidence_checkpoints(ckpts: pd.DataFrame) -> dict[str, int]:
    """Per model, the largest examples seen every natural data scale of that model has (none: fewer than two
    natural scales share one)."""
    out = {}
    natural = ckpts[ckpts["curation"] == "natural"]
    for model, d in natural.groupby("model"):
        by_scale = d.groupby("data_pct")["examples_seen"].apply(set)
        shared = set.intersection(*by_scale) if len(by_scale) >= 2 else set()
        if shared:
            out[model] = int(max(shared))
    return out


def seed_table(configs: dict[tuple, list[str]], seen: int, q: dict) -> dict:
    """{(kind, pool, score): (s², df, the configurations pooled, w)} for every quantity with training noise: its
    seed variance at `seen` and the image-by-image churn between seeds (evidence.pooled_churn), pooled over the
    configurations `configs` with at least two runs."""
    replicated = {"/".join(map(str, k)): runs for k, runs in configs.items() if len(runs) >= 2}
    out = {}
    for kind, pools in KINDS.items():
        for pool in pools:
            for score in SCORES:
                qq = q[kind](pool, score)
                s2, df = pooled_seed_variance([[qq(r, seen)[0] for r in runs] for runs in replicated.values()])
                churn = pooled_churn([np.stack([qq(r, seen)[1] for r in runs]) for runs in replicated.values()])
                out[(kind, pool, score)] = (s2, df, list(replicated), churn)
    return out


# ------------------------------------------------------------------------------------------------ comparisons

class Scales:
    """One model's natural data scales at one examples seen: what every comparison reads."""

    def __init__(self, model: str, seen: int, runs: dict[float, list[str]], q: dict, seed: dict, level: float,
                 prefix: str = ""):
        self.model, self.seen, self.runs, self.q, self.seed, self.level = model, seen, runs, q, seed, level
        self.pcts = sorted(runs)
        self.prefix = prefix  # "<model>/" where the study has several models

    def config(self, pct: float, kind: str, pool: str, score: str) -> Config:
        return make_config(config_name("natural", pct), self.runs[pct], self.seen, self.q[kind](pool, score))

    def diff(self, a: Config, b: Config, kind: str, pool: str, score: str, trained: bool = True) -> Difference:
        s2, df, _, churn = self.seed[(kind, pool, score)]
        return difference(a, b, s2, df, self.level, b_trained=trained, churn=churn)

    def record(self, name: str, label: str, d: Difference, a: Config, b: Config, values=None, **labels) -> dict:
        """As analysis/study.py records a comparison, with this stage's labels; effect = a_value - b_value."""
        a_value, b_value = values or (float(a.points.mean()), float(b.points.mean()))
        ns, _, rest = name.partition("/")
        full = f"{ns}/{self.prefix}{rest}"
        return {"name": full, "label": label, "unit": "pp", "claim": ns == "attention", "model": self.model,
                "examples_seen": self.seen, "a": a.name, "b": b.name, "runs_a": list(a.runs), "runs_b": list(b.runs),
                "a_value": a_value, "b_value": b_value, **labels, **d.record()}


def _labels(comparison, score, pool, from_pct=None, to_pct=None, data_pct=None, baseline=None) -> dict:
    return dict(comparison=comparison, quantity=f"{score}/{pool}", score=score, group=pool, from_pct=from_pct,
                to_pct=to_pct, data_pct=data_pct, baseline=baseline)


def _what(score: str, pool: str) -> str:
    return f"{SCORE_LABELS[score]}, {GROUP_LABELS[pool]}"


def steps(s: Scales) -> list[dict]:
    """Each consecutive pair of natural scales, larger minus smaller, of the score and of its content-dependent
    part (score minus shuffled score)."""
    out = []
    for lo, hi in zip(s.pcts[:-1], s.pcts[1:]):
        tag = f"{lo:g}_to_{hi:g}"
        for score in SCORES:
            for pool in POOLS:
                a, b = s.config(hi, "score", pool, score), s.config(lo, "score", pool, score)
                out.append(s.record(f"attention/{STEP}/{score}/{pool}/{tag}",
                                    f"{_what(score, pool)}, {lo:g}% → {hi:g}%", s.diff(a, b, "score", pool, score),
                                    a, b, **_labels(STEP, score, pool, lo, hi)))
                a, b = (s.config(p, "lift_over_shuffled", pool, score) for p in (hi, lo))
                out.append(s.record(f"attention_context/{STEP_OVER_SHUFFLED}/{score}/{pool}/{tag}",
                                    f"{_what(score, pool)} minus its image-shuffled score, {lo:g}% → {hi:g}%",
                                    s.diff(a, b, "lift_over_shuffled", pool, score), a, b,
                                    **_labels(STEP_OVER_SHUFFLED, score, pool, lo, hi, baseline=SHUFFLED)))
    return out


def baselines(s: Scales) -> list[dict]:
    """Each natural scale minus the centre prior and minus its own image-shuffled score, per score and pool."""
    out = []
    for pct in s.pcts:
        for score in SCORES:
            for pool in POOLS:
                out += [_against_centre(s, pct, score, pool), _against_shuffled(s, pct, score, pool)]
    return out


def _against_centre(s: Scales, pct: float, score: str, pool: str) -> dict:
    """The scale's runs minus the centre prior (its scores are the same image columns in every run)."""
    a = s.config(pct, "score", pool, score)
    point, draws = s.q["prior"](pool, score)(s.runs[pct][0], s.seen)
    b = Config("centre prior", points=[point], draws=np.asarray(draws)[None])
    d = s.diff(a, b, "score", pool, score, trained=False)
    return s.record(f"attention_context/{CENTRE}/{score}/{pool}/{scale_label(pct)}",
                    f"{_what(score, pool)}, {pct:g}% minus the centre prior", d, a, b,
                    **_labels(CENTRE, score, pool, data_pct=pct, baseline=CENTRE))


def _against_shuffled(s: Scales, pct: float, score: str, pool: str) -> dict:
    """Per run its score minus its own shuffled score, against zero (the pairing within a run kept)."""
    lift = s.config(pct, "lift_over_shuffled", pool, score)
    zero = constant("0", 0.0, lift.draws.shape[1])
    d = s.diff(lift, zero, "lift_over_shuffled", pool, score, trained=False)
    model = s.config(pct, "score", pool, score).points.mean()
    shuffled = np.mean([s.q["score"](pool, f"shuffled_{score}")(r, s.seen)[0] for r in s.runs[pct]])
    return s.record(f"attention_context/{SHUFFLED}/{score}/{pool}/{scale_label(pct)}",
                    f"{_what(score, pool)}, {pct:g}% minus its image-shuffled score", d, lift, zero,
                    (float(model), float(shuffled)), **_labels(SHUFFLED, score, pool, data_pct=pct, baseline=SHUFFLED))


def contrasts(s: Scales) -> list[dict]:
    """The first-to-last-scale gain of each long-tail pool minus the head's, per score."""
    out = []
    lo, hi = s.pcts[0], s.pcts[-1]
    for score in SCORES:
        for pool in (*CULTURAL, "cultural"):
            a, b = s.config(hi, "gap", pool, score), s.config(lo, "gap", pool, score)
            out.append(s.record(f"attention/{CONTRAST}/{score}/{pool}/{lo:g}_to_{hi:g}",
                                f"{SCORE_LABELS[score]}: the gain {lo:g}% → {hi:g}% of {GROUP_LABELS[pool]} minus "
                                "the head's", s.diff(a, b, "gap", pool, score), a, b,
                                **_labels(CONTRAST, score, pool, lo, hi)))
    return out


# ------------------------------------------------------------------------------------------------ the whole

def _setup(model: str, seen: int, configs: dict, seed: dict) -> dict:
    """What the comparisons of one model rest on: its configurations' seeds and the pooled seed variances."""
    return {"examples_seen": seen,
            "configurations": [dict(curation=k[1], data_pct=k[2], name=config_name(k[1], k[2]), runs=runs,
                                    n_seeds=len(runs)) for k, runs in configs.items() if k[0] == model],
            "seed_variance": [dict(quantity=k[0], group=k[1], score=k[2], unit="pp²",
                                   seed_var=float(v[0]) if np.isfinite(v[0]) else None, seed_df=int(v[1]),
                                   pooled_over=v[2]) for k, v in seed.items()]}


def evidence(ckpts: pd.DataFrame, val: dict, draws: dict, level: float = 0.95,
             keep_pct: float | None = None) -> tuple[dict, dict]:
    """(evidence, setup): every comparison of the module docstring as {name: record} for each model with two
    natural scales, and per model what they rest on (examples seen, configurations and their seeds, the pooled
    seed variances) with notes."""
    ckpts = join_random_arm(ckpts, keep_pct)
    q = quantities(val, draws)
    out, setup = {}, {"models": {}, "notes": []}
    chosen = evidence_checkpoints(ckpts)
    for model, seen in chosen.items():
        configs = configurations(ckpts, seen)
        seed = seed_table(configs, seen, q)
        runs = {k[2]: r for k, r in configs.items() if k[0] == model and k[1] == "natural"}
        s = Scales(model, seen, runs, q, seed, level, prefix=f"{model}/" if len(chosen) > 1 else "")
        for part in (steps, contrasts, baselines):
            out.update({r["name"]: r for r in part(s)})
        setup["models"][model] = _setup(model, seen, configs, seed)
        if not any(v[1] for v in seed.values()):
            setup["notes"].append(f"{model}: no configuration has two seeds at {seen:,} examples seen, so training "
                                  "noise is not measured there: the intervals cover test images only")
    if not chosen:
        setup["notes"].append("fewer than two natural data scales share a checkpoint: finding 8 is not tested")
    return out, setup
