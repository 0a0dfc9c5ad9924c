"""What the study runs on its pool: the filter arms and runs the pool supports, the benchmarks it reports, and a
one-line note for everything params.yaml asks for that the pool cannot give.

A synthetic pool supports every arm and every run. A real pool (sample.source webdataset or parquet) has no world
truth: the classifier arm's labels and the planted arm's concepts come from it, so both are skipped; the CLIP-score
arms need a scorer, which is trained here only on the synthetic world's curated pairs, so they are skipped unless
filter.scorer.checkpoint names one; the balanced arm matches concept names, the synthetic world's unless
filter.balanced.metadata lists a real pool's. A run that reads a skipped arm is skipped with it. Every stage applies the same
plan (`apply`), so the filter stage writes exactly the arms the train stage trains on, and the figures and the paper
report what was skipped and why.

The figures' benchmark source follows the pool when figures.source is `auto`: the synthetic analogs for a synthetic
pool, the real evaluation sets (evaluate.real_sets) for a real one.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from vlscale.config import FilterParams, Params, RunParams

CLIP_ARMS = ("clip", "clip_multilingual")  # the filter arms that select by a scorer's image-text cosine
# the filter arms only the synthetic world can make, and why
SYNTHETIC_ONLY = {"classifier": "its labels come from the synthetic world's truth",
                  "planted": "it excludes pairs by their concept, which only the synthetic world's truth knows"}


@dataclass(frozen=True)
class Plan:
    pool: str                                   # "synthetic" or "real"
    arms: tuple[str, ...]                       # the filter arms the filter stage makes
    runs: dict[str, RunParams]                  # the runs trained, evaluated and mapped
    skipped_arms: dict[str, str] = field(default_factory=dict)   # arm -> why
    skipped_runs: dict[str, str] = field(default_factory=dict)   # run -> why
    source: str | None = None                   # the benchmarks the figures report ("analog" | "real")

    def notes(self, runs: bool = True) -> list[str]:
        """One line per skipped arm and (with `runs`) run, as the stage logs print them."""
        return ([f"filter arm {a!r} skipped: {why}" for a, why in self.skipped_arms.items()]
                + [f"run {r!r} skipped: {why}" for r, why in self.skipped_runs.items() if runs])

    def record(self) -> dict:
        return {"pool": self.pool, "source": self.source, "arms": list(self.arms), "runs": list(self.runs),
                "skipped_arms": dict(self.skipped_arms), "skipped_runs": dict(self.skipped_runs)}


def arm_skip_reason(arm: str, filter_params: FilterParams, pool: str) -> str | None:
    """Why a pool of kind `pool` cannot have filter arm `arm` (None: it can)."""
    if pool == "synthetic":
        return None
    if arm in SYNTHETIC_ONLY:
        return f"{SYNTHETIC_ONLY[arm]}; a real pool has none"
    if arm == "balanced" and not filter_params.balanced.metadata:
        return ("it matches captions against the synthetic world's concept names; set filter.balanced.metadata to a "
                "JSON file {language: [entry, ...]} to balance a real pool")
    if arm in CLIP_ARMS and not filter_params.scorer.checkpoint:
        return ("its scorer is trained here on the synthetic world's curated pairs only; set filter.scorer.checkpoint "
                "to a model (any vlscale.siglip.load reads) to score a real pool")
    return None


def skipped_arms(filter_params: FilterParams | None, pool: str) -> dict[str, str]:
    """{arm: why} of the arms of the filter block `filter_params` that a pool of kind `pool` cannot have."""
    arms = filter_params.arms if filter_params is not None else []
    return {a: why for a in arms if (why := arm_skip_reason(a, filter_params, pool))}


def study_plan(p: Params) -> Plan:
    """The plan of validated params `p` (blocks sample, filter, runs and figures where present)."""
    pool = p.pool_kind
    skipped = skipped_arms(p.filter, pool)
    runs, skipped_runs = {}, {}
    for name, run in (p.runs or {}).items():
        if run.filter in skipped:
            skipped_runs[name] = f"it trains on filter arm {run.filter!r}, which is skipped"
        else:
            runs[name] = run
    arms = tuple(a for a in (p.filter.arms if p.filter is not None else []) if a not in skipped)
    return Plan(pool, arms, runs, skipped, skipped_runs, p.benchmark_source)


def apply(p: Params, log=print) -> tuple[Params, Plan]:
    """`p` as the stages run it: filter.arms and runs cut to the plan's (blocks absent from `p` stay absent), each
    skipped arm and run logged on one line. Returns (params, plan)."""
    plan = study_plan(p)
    update = {}
    if p.filter is not None:
        update["filter"] = p.filter.model_copy(update={"arms": list(plan.arms)})
    if p.runs is not None:
        update["runs"] = dict(plan.runs)
    for line in plan.notes():
        log(line)
    return p.replace(**update), plan
