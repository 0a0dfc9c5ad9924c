"""Evidence as a reviewer weighs it: a difference between two configurations with training noise and test-image
noise in one interval, and the rules that turn such differences into verdicts.

A configuration is what a run is trained on and how (model, data, curation) at one checkpoint; runs of one
configuration that differ only by seed are its replicates. A quantity (a group average, a contrast of two
averages, a disparity gap, an attention score) has, per run, a point value on the whole test set and B
bootstrap replicates over the test images, drawn with the same image resamples for every run (uncertainty.py).

The difference of two configurations A and B is mean over A's seeds minus mean over B's seeds. Its variance has
two parts that add:
- training noise: s² (1/n_A + 1/n_B), where s² is the seed-to-seed variance of the quantity pooled over every
  configuration of the study that has replicates at that checkpoint (within-configuration variance, df =
  Σ(n_c - 1)); pooling assumes the seed variance is alike across configurations;
- test-image noise: the variance over the paired image resamples of the seed-averaged difference, less the part
  of it that s² already holds. Two seeds also differ image by image on the fixed test set (one solves an image
  the other misses); that churn is in s² and, through the seed average, in the resamples too. Its size, w
  (1/n_A + 1/n_B), comes from the resamples of each seed's deviation from its configuration's mean (`churn`,
  pooled like s²), and is subtracted once.
The interval is effect ± t(df) · se, with df by Welch–Satterthwaite (the image part counted as known), so an
interval from two seeds is as wide as two seeds deserve. Where no configuration of the study has replicates,
the training noise is not measured: the interval covers test images only and `seeds_measured` is False. A
comparison whose configurations have one seed each is not separable from training noise (`separable`), as no
pooling from elsewhere makes one run of each side a replicate of its own configuration.

The minimal detectable effect is the true difference found (interval excluding zero) with probability `power`:
(t(1 - α/2) + t(power)) · se.

Verdicts (the categories a reviewer recognises):
- reproduces: the paper's claim holds beyond both noises;
- does not reproduce: an effect of the opposite sign, or an equivalence test that excludes the paper's effect;
- inconclusive: the interval admits both no effect and the paper's effect (the minimal detectable effect says
  how large an effect the study could have seen), or the measurement cannot show the effect (a chance floor, one
  seed per side);
- not tested: the study lacks the runs.
Rules are functions of a Difference and margins fixed in params.yaml (`verdicts`) before any data is seen; each
returns its verdict, the reason, and the rule's text, which the paper prints beside the verdict.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

REPRODUCES, DOES_NOT, INCONCLUSIVE, NOT_TESTED = "reproduces", "does not reproduce", "inconclusive", "not tested"
VERDICTS = (REPRODUCES, DOES_NOT, INCONCLUSIVE, NOT_TESTED)
LEVEL = 0.95


@dataclass(frozen=True)
class Config:
    """One configuration at one checkpoint: per seed the quantity's point value [n] and its image replicates
    [n, B] (the same image resamples for every configuration compared)."""
    name: str
    points: np.ndarray
    draws: np.ndarray
    runs: tuple[str, ...] = ()

    def __post_init__(self):
        points = np.atleast_1d(np.asarray(self.points, dtype=float))
        draws = np.atleast_2d(np.asarray(self.draws, dtype=float))
        if len(points) == 0 or draws.shape[0] != len(points):
            raise ValueError(f"configuration {self.name!r}: {len(points)} seeds' points and draws of shape "
                             f"{draws.shape}; expected one row of draws per seed")
        object.__setattr__(self, "points", points)
        object.__setattr__(self, "draws", draws)

    @property
    def n(self) -> int:
        return len(self.points)


def pooled_churn(draws: Iterable[np.ndarray]) -> float:
    """w: the variance over image resamples of one seed's deviation from its configuration's seed mean, scaled to
    one seed (× n/(n-1)) and pooled over the configurations (one [n, B] draws array each) with n ≥ 2. It is the
    image-by-image churn between seeds that both the seed variance and the resamples of a seed mean contain. NaN
    without replicates."""
    total, weight = 0.0, 0
    for d in draws:
        d = np.atleast_2d(np.asarray(d, dtype=float))
        n = len(d)
        if n < 2:
            continue
        dev = d - d.mean(axis=0)
        dev = dev[:, np.isfinite(dev).all(axis=0)]
        if dev.shape[1] < 2:
            continue
        total += float(dev.var(axis=1, ddof=1).mean()) * n  # × n/(n-1) per seed, weighted by its n-1 df
        weight += n - 1
    return total / weight if weight else np.nan


def pooled_seed_variance(groups: Iterable[Sequence[float]]) -> tuple[float, int]:
    """(s², df): the within-group variance of the values of each group (one group per configuration, one value
    per seed), pooled over the groups with at least two values. (NaN, 0) when none has two."""
    ss, df = 0.0, 0
    for g in groups:
        v = np.asarray(g, dtype=float)
        v = v[np.isfinite(v)]
        if len(v) >= 2:
            ss += float(((v - v.mean()) ** 2).sum())
            df += len(v) - 1
    return (ss / df if df else np.nan), df


def _quantile(q: float, df: float) -> float:
    """The q quantile of Student's t with df degrees of freedom (the normal's for df = inf)."""
    return float(stats.t.ppf(q, df)) if np.isfinite(df) else float(stats.norm.ppf(q))


@dataclass(frozen=True)
class Difference:
    """A minus B with its interval over seeds and test images (see the module docstring)."""
    effect: float
    lo: float
    hi: float
    se: float
    df: float           # degrees of freedom of the t quantile (inf: test-image noise only)
    image_se: float
    seed_sd: float      # pooled seed sd of the quantity (NaN: not measured)
    seed_df: int
    n_a: int
    n_b: int
    p: float            # two-sided p of no difference
    seeds_measured: bool
    separable: bool     # training noise measured and some side replicated

    def quantile(self, level: float) -> float:
        return _quantile((1 + level) / 2, self.df)

    def bounds(self, level: float) -> tuple[float, float]:
        q = self.quantile(level)
        return self.effect - q * self.se, self.effect + q * self.se

    def mde(self, power: float = 0.8, level: float = LEVEL) -> float:
        """The smallest true |difference| this comparison detects with probability `power`."""
        return (self.quantile(level) + _quantile(power, self.df)) * self.se

    def record(self, power: float = 0.8) -> dict:
        """JSON-ready: every field, the 95% interval, and the minimal detectable effect."""
        out = {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in asdict(self).items()}
        return out | {"ci95": [self.lo, self.hi], "mde": self.mde(power)}


def difference(a: Config, b: Config, seed_var: float = np.nan, seed_df: int = 0,
               level: float = LEVEL, b_trained: bool = True, churn: float = 0.0) -> Difference:
    """A minus B (seed means), its interval over seeds (the pooled seed variance `seed_var` with `seed_df`
    degrees of freedom, pooled_seed_variance) and over the paired image resamples of both.

    b_trained=False: B is not a trained model (a blind baseline, or zero), so only A's seeds add training
    noise (s²/n_A) and one seed of A is enough to be separable once the seed variance is measured.
    churn: pooled_churn of the same configurations, taken out of the image part once (see the module docstring)."""
    if a.draws.shape[1] != b.draws.shape[1]:
        raise ValueError(f"{a.name!r} and {b.name!r} have {a.draws.shape[1]} and {b.draws.shape[1]} image "
                         "resamples; a paired difference needs the same resamples")
    effect = float(a.points.mean() - b.points.mean())
    rep = a.draws.mean(axis=0) - b.draws.mean(axis=0)
    rep = rep[np.isfinite(rep)]
    image_var = float(rep.var(ddof=1)) if len(rep) > 1 else 0.0
    measured = seed_df >= 1 and np.isfinite(seed_var)
    per_seed = 1 / a.n + (1 / b.n if b_trained else 0.0)
    seed_part = seed_var * per_seed if measured else 0.0
    if measured and np.isfinite(churn):
        image_var = max(0.0, image_var - churn * per_seed)  # the churn is in the seed part already
    total = image_var + seed_part
    se = float(np.sqrt(total))
    df = seed_df * (total / seed_part) ** 2 if measured and seed_part > 0 else np.inf
    half = _quantile((1 + level) / 2, df) * se
    if se > 0:
        p = float(2 * (stats.t.sf(abs(effect) / se, df) if np.isfinite(df) else stats.norm.sf(abs(effect) / se)))
    else:
        p = 1.0 if effect == 0 else 0.0
    return Difference(effect=effect, lo=effect - half, hi=effect + half, se=se, df=float(df),
                      image_se=float(np.sqrt(image_var)), seed_sd=float(np.sqrt(seed_var)) if measured else np.nan,
                      seed_df=int(seed_df) if measured else 0, n_a=a.n, n_b=b.n, p=p, seeds_measured=bool(measured),
                      separable=bool(measured and (max(a.n, b.n) >= 2 or not b_trained)))


# ------------------------------------------------------------------------------------------------ verdicts

@dataclass(frozen=True)
class Verdict:
    verdict: str
    reason: str
    rule: str

    def record(self) -> dict:
        return asdict(self)


def constant(name: str, value: float, n_boot: int) -> Config:
    """A fixed reference (zero, a chance level) as a configuration without noise, for difference(b_trained=False)."""
    return Config(name, [value], np.full((1, n_boot), float(value)))


def _unseparable(d: Difference) -> str | None:
    if not d.seeds_measured:
        return "training noise is not measured (no configuration of the study has two seeds)"
    if not d.separable:
        return "one seed per configuration: the effect cannot be separated from training noise"
    return None


def directional(d: Difference, sign: int, paper_effect: float | None, power: float = 0.8) -> Verdict:
    """The paper claims A - B has sign `sign` (+1 or -1), of size `paper_effect` (in the claim's direction, None
    where the paper gives no number). Does not reproduce when the 95% interval lies on the other side of zero, or
    when the one-sided 95% bound in the claimed direction (the 90% interval's end) falls short of the paper's effect
    (an equivalence test against the paper's number, applied first so that more noise never turns "does not" into
    "reproduces" nor the reverse); reproduces when the 95% interval lies on the claimed side of zero; otherwise
    inconclusive."""
    rule = ("does not reproduce when the 95% interval (seeds and test images) lies on the other side of zero or its "
            "one-sided bound falls short of the paper's effect; reproduces when it lies on the paper's side of zero; "
            "else inconclusive")
    if sign not in (1, -1):
        raise ValueError(f"sign must be +1 or -1, got {sign!r}")
    why = _unseparable(d)
    if why:
        return Verdict(INCONCLUSIVE, why, rule)
    lo, hi = sorted((sign * d.lo, sign * d.hi))
    lo90, hi90 = sorted(sign * x for x in d.bounds(0.90))
    if hi < 0:
        return Verdict(DOES_NOT, "the interval lies on the opposite side of zero", rule)
    if paper_effect is not None and np.isfinite(paper_effect) and paper_effect > 0 and hi90 < paper_effect:
        shown = "in the paper's direction, but " if lo > 0 else ""
        return Verdict(DOES_NOT, f"{shown}smaller than the paper's {paper_effect:.2f} (equivalence test, one-sided "
                       "5%)", rule)
    if lo > 0:
        return Verdict(REPRODUCES, "the interval lies on the paper's side of zero", rule)
    return Verdict(INCONCLUSIVE, f"the interval admits no effect and the paper's; the minimal detectable effect "
                   f"is {d.mde(power):.2f}", rule)


def no_change(d: Difference, margin: float, power: float = 0.8) -> Verdict:
    """The paper claims no change. Reproduces when the 90% interval lies inside ±margin (two one-sided tests at 5%:
    equivalence); does not when the 95% interval lies beyond the margin (a change larger than it); else
    inconclusive."""
    rule = (f"reproduces when the 90% interval lies within ±{margin:g} (equivalence, two one-sided tests); does "
            f"not when the 95% interval lies beyond ±{margin:g}; else inconclusive")
    if not margin > 0:
        raise ValueError(f"an equivalence margin must be positive, got {margin!r}")
    why = _unseparable(d)
    if why:
        return Verdict(INCONCLUSIVE, why, rule)
    lo90, hi90 = d.bounds(0.90)
    if -margin < lo90 and hi90 < margin:
        return Verdict(REPRODUCES, f"equivalent to no change within ±{margin:g}", rule)
    if d.lo > margin or d.hi < -margin:
        return Verdict(DOES_NOT, f"a change beyond ±{margin:g}: the 95% interval lies outside the margin", rule)
    return Verdict(INCONCLUSIVE, f"neither a change beyond ±{margin:g} nor equivalence within it; the minimal "
                   f"detectable effect is {d.mde(power):.2f}", rule)


def off_floor(error_hi: float, chance: float, floor_pp: float) -> bool:
    """A task whose error interval's upper end lies at least floor_pp below its chance error is off its floor:
    a change in it can be seen."""
    return bool(np.isfinite(error_hi) and error_hi < chance - floor_pp)


def combine(parts: Mapping[str, Verdict], rule: str = "") -> Verdict:
    """A claim made of parts: reproduces when every part does; does not when any part does not; not tested when
    every part is; else inconclusive."""
    rule = rule or "reproduces when every part does; does not when any part does not; else inconclusive"
    if not parts:
        return Verdict(NOT_TESTED, "no part of the claim was measured", rule)
    v = {k: p.verdict for k, p in parts.items()}
    if all(x == NOT_TESTED for x in v.values()):
        return Verdict(NOT_TESTED, "; ".join(f"{k}: {p.reason}" for k, p in parts.items()), rule)
    failed = [k for k, x in v.items() if x == DOES_NOT]
    if failed:
        return Verdict(DOES_NOT, "fails on " + ", ".join(failed), rule)
    if all(x == REPRODUCES for x in v.values()):
        return Verdict(REPRODUCES, "every part reproduces", rule)
    open_ = [k for k, x in v.items() if x != REPRODUCES]
    return Verdict(INCONCLUSIVE, "undecided: " + ", ".join(open_), rule)
