"""The paper's findings as data, and how each is judged.

A `Finding` is one claim of arXiv 2502.07617 (its title, claim, section and the paper's numbers are in
reference.json under its number): its name, the text of what the study compares to test it, and its check. A check
reads the study's comparisons (metrics/figures.json, metrics/attention.json and metrics/transfer.json `evidence`:
analysis/study.py, attention/stage.py, transfer/stage.py) through a `Judge` and returns the finding's parts; each part is one comparison judged by one rule
of analysis/evidence.py, with the paper's effect (reference.json `effects`, in the claim's direction) and the margins
of params.yaml `verdicts`, fixed before any data was seen. `judge` applies every finding of FINDINGS; `controls` the
negative and positive controls the verdicts rest on.
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vlscale.analysis import evidence as ev
from vlscale.analysis import report
from vlscale.analysis.results import scale_label
from vlscale.attention import tables as attention_tables
from vlscale.config import VerdictsParams
from vlscale.evals.groups import AVERAGES
from vlscale.files import read_json
from vlscale.paper.text import finite, fmt
from vlscale.transfer import results as transfer_results

REFERENCE = Path(__file__).parent / "reference.json"

# The benchmark tasks a quantity of the study's records reads, beyond the group averages its name spells (each a
# prefix: any task present that starts with one measures it).
QUANTITY_TASKS = {
    "low_minus_high_resource": {"multilingual_low_resource": AVERAGES["multilingual_low_resource"],
                                "multilingual_high_resource": AVERAGES["multilingual_high_resource"]},
    "geode_region_gap": {"GeoDE's regional disparity": ("geode/disparity_region",)},
    "dollarstreet_income_gap": {"Dollar Street's income disparity": ("dollarstreet/disparity_income",)},
    "male_preference": {"representation bias": ("fairface/representation_bias",)},
    "association_bias": {"association bias (FairFace)": ("fairface/association_bias/",)},
    "perceived_gender_error": {"perceived gender (FairFace)": ("fairface/perceived_gender",)},
}


GROUP_NAMES = {"western": "a Western benchmark", "culture": "a cultural benchmark (Dollar Street, GeoDE, GLDv2)",
               "fairness": "a fairness benchmark (Dollar Street, GeoDE, FairFace)",
               "multilingual_low_resource": "XM3600's low-resource languages",
               "multilingual_high_resource": "XM3600's high-resource languages"}


def needed_tasks(name: str) -> dict[str, tuple[str, ...]]:
    """What the comparison or level `name` (a record of the study) reads: {what, as the text names it: task
    prefixes}."""
    out = {}
    for token in name.split("/"):
        out |= {GROUP_NAMES.get(g, g): tasks for g, tasks in QUANTITY_TASKS.get(token, {}).items()}
        for side in token.split("_minus_"):
            if side in AVERAGES:
                out[GROUP_NAMES.get(side, side)] = AVERAGES[side]
    return out


def difference_of(rec: dict) -> ev.Difference:
    """The Difference a study record holds (None, as JSON writes NaN, read back as NaN)."""
    fields = {f: rec.get(f) for f in ev.Difference.__dataclass_fields__}
    return ev.Difference(**{k: (np.nan if v is None else v) for k, v in fields.items()})


def part(label: str, rec: dict | None, verdict: ev.Verdict | None, paper: float | None, unit: str = "pp",
          power: float = 0.8, absent: str = "the runs it compares were not trained") -> dict:
    """One part of a finding: what was compared, its effect, interval, seeds and minimal detectable effect, and its
    verdict (None: not tested, for the reason `absent`)."""
    if rec is None or verdict is None:
        v = ev.Verdict(ev.NOT_TESTED, absent, "")
        return {"label": label, **v.record(), "paper_effect": paper, "unit": unit}
    d = difference_of(rec)

    def number(x):  # JSON has no NaN: an unmeasured number (a seed sd without replicates) is null
        return float(x) if np.isfinite(x) else None

    return {"label": label, **verdict.record(), "effect": number(d.effect), "ci95": [number(d.lo), number(d.hi)],
            "n_seeds": [d.n_a, d.n_b], "seed_sd": number(d.seed_sd), "seed_df": d.seed_df,
            "image_se": number(d.image_se), "mde": number(d.mde(power)),
            "paper_effect": paper, "unit": unit, "runs": [rec.get("runs_a"), rec.get("runs_b")],
            "examples_seen": rec.get("examples_seen")}


class Judge:
    """Applies the rules of analysis/evidence.py to the study's evidence with the `verdicts` params."""

    def __init__(self, fig: dict, att: dict, verdicts: VerdictsParams, effects: dict, transfer: dict | None = None):
        self.fig, self.transfer = fig, transfer or {}
        self.model = fig.get(report.MODEL, "")  # the figures stage's model: the one finding 8 reads the maps of
        self.pool = att.get(attention_tables.PLAN, {}).get("pool", "synthetic")
        self.ev = {**fig.get(report.EVIDENCE, {}), **att.get(attention_tables.EVIDENCE, {}),
                   **self.transfer.get(transfer_results.EVIDENCE, {})}
        self.verdicts, self.effects = verdicts, effects
        self.power = verdicts.power
        self.source, self.benchmarks = fig.get(report.SOURCE), list(fig.get(report.BENCHMARKS, {}))
        self.tasks = sorted({t for b in fig.get(report.BENCHMARKS, {}).values() for t in b["tasks"]})
        self.skipped_arms = fig.get(report.PLAN, {}).get("skipped_arms", {})

    def absent(self, name: str) -> str:
        """Why the comparison `name` was not measured: its filter arm was skipped on this pool, no real benchmark
        given measures it, or its runs were not trained."""
        for arm, why in self.skipped_arms.items():
            if f"/{arm}_minus_" in name or name.startswith(f"filter/{arm}/"):
                return f"filter arm {arm} skipped on this pool ({why})"
        if self.source == "real":
            lacking = self.unmeasured(name)
            if lacking:  # the sets given are named once, in the setup
                return f"no real set given measures {' or '.join(lacking)}"
            if name.startswith("correlation/"):
                return "it needs at least four tasks measured at 10% and 100% data; the real sets given measure fewer"
        if name.startswith("rebalance/"):
            return "no rebalanced run was evaluated beside its natural run at the same examples seen"
        return "the runs it compares were not trained"

    def unmeasured(self, name: str) -> list[str]:
        """What `name` reads that no benchmark of the report measures."""
        return [what for what, prefixes in needed_tasks(name).items()
                if not any(t.startswith(p) for t in self.tasks for p in prefixes)]

    def with_records(self, records: dict) -> Judge:
        """This judge, reading `records` instead."""
        other = copy.copy(self)
        other.ev = records
        return other

    def rec(self, name: str) -> dict | None:
        return self.ev.get(name)

    def directional(self, label: str, name: str, sign: int, effect_key: str | None, unit: str = "pp",
                    floor: tuple[str, str] | None = None) -> dict:
        """A part claiming sign(A - B) = sign; `floor`: (level record, what) that must lie off its chance floor."""
        rec, paper = self.rec(name), self.effects.get(effect_key) if effect_key else None
        if rec is None:
            return part(label, None, None, paper, unit, absent=self.absent(name))
        verdict = ev.directional(difference_of(rec), sign, paper, self.power)
        if floor is not None:
            verdict = self._floor(verdict, *floor)
        return part(label, rec, verdict, paper, unit, self.power)

    def no_change(self, label: str, name: str, margin_key: str, unit: str = "pp",
                  floors: tuple[tuple[str, str], ...] = ()) -> dict:
        rec, margin = self.rec(name), getattr(self.verdicts.margins, margin_key)
        if rec is None:
            return part(label, None, None, 0.0, unit, absent=self.absent(name))
        verdict = ev.no_change(difference_of(rec), margin, self.power)
        for floor in floors:
            verdict = self._floor(verdict, *floor)
        return part(label, rec, verdict, 0.0, unit, self.power) | {"margin": margin}

    def _floor(self, verdict: ev.Verdict, level_name: str, what: str) -> ev.Verdict:
        """Inconclusive when the level the part needs sits at its chance floor (or was not measured)."""
        lv = self.rec(level_name)
        if lv is None and self.source == "real" and self.unmeasured(level_name):
            return ev.Verdict(ev.NOT_TESTED, f"{what}: {self.absent(level_name)}", verdict.rule)
        if lv is None or not finite(lv.get("value_hi")):
            return ev.Verdict(ev.INCONCLUSIVE, f"{what}: its distance from chance was not measured", verdict.rule)
        if not ev.off_floor(lv["value_hi"], lv["reference"], self.verdicts.chance_floor_pp):
            return ev.Verdict(ev.INCONCLUSIVE, f"{what} is at its chance floor ({fmt(lv['value'])}%, interval up to "
                              f"{fmt(lv['value_hi'])}%, chance {fmt(lv['reference'])}%): no change can be seen",
                              verdict.rule + f"; needs {what} at least {fmt(self.verdicts.chance_floor_pp)} pp below chance")
        return verdict


def _gain(q: str, a="10", b="100") -> str:
    return f"gain/{q}/{a}_to_{b}"


def western_saturates(j: Judge) -> list[dict]:
    return [j.no_change("Western error, 10% → 100% data (gain)", _gain("western"), "western_gain_pp")]


def culture_improves(j: Judge) -> list[dict]:
    return [j.directional("Culture error gain, 10% → 100% data", _gain("culture"), +1, "culture_gain"),
            j.directional("Culture gain minus Western gain", _gain("culture_minus_western"), +1,
                          "culture_minus_western_gain")]


def low_resource_gains_more(j: Judge) -> list[dict]:
    return [j.directional("Low-resource minus high-resource XM3600 gain, 10% → 100%",
                          _gain("low_minus_high_resource"), +1, "low_minus_high_gain",
                          floor=("level/multilingual_low_resource/100%", "the low-resource retrieval error at 100%"))]


def disparity_narrows_bias_stays(j: Judge) -> list[dict]:
    gender = (("level/perceived_gender_error/10%", "perceived-gender error at 10%"),
              ("level/perceived_gender_error/100%", "perceived-gender error at 100%"))
    return [j.directional("GeoDE regional disparity narrows, 10% → 100%", "change/geode_region_gap/10_to_100", +1,
                          "geode_gap_narrowing"),
            j.directional("Dollar Street income disparity narrows, 10% → 100%",
                          "change/dollarstreet_income_gap/10_to_100", +1, "income_gap_narrowing"),
            j.no_change("Representation bias (% preferring male) unchanged", "change/male_preference/10_to_100",
                        "male_preference_pp", floors=gender),
            j.no_change("Association bias unchanged", "change/association_bias/10_to_100", "association_bias_pp",
                        floors=gender)]


def generative_transfer_flat(j: Judge) -> list[dict]:
    """A generative VLM made from the 100% runs' image towers is no better than one from the 10% or 1% runs' (the
    transfer stage's average over task families, per setting: frozen and unfrozen tower), within the margin
    transfer_average_pp. A comparison whose transfers do not rise above their chance level (the lower end of each
    one's interval at least verdicts.chance_floor_pp above the blind chance level's average, on the same test images)
    cannot show that more data does not help: inconclusive; nor can a difference between two transfers at chance."""
    names = sorted((n for n in j.ev if n.startswith("transfer/")),
                   key=lambda n: (n.split("/")[1], -float(n.rsplit("_minus_", 1)[1])))
    if not names:
        why = j.transfer.get(transfer_results.SKIPPED) or "no transfer of two data scales was made"
        return [part("a generative VLM on the 1%, 10% and 100% runs' towers", None, None, None, absent=why)]
    parts = []
    floor = j.verdicts.chance_floor_pp
    for name in names:
        _, setting, step = name.split("/")
        top, other = step.split("_minus_")
        shown = j.no_change(f"Transfer average ({setting} tower), {top}% minus {other}% data", name,
                            "transfer_average_pp", unit="points")
        above = {pct: j.rec(f"above_chance/transfer/{setting}/{pct}%") for pct in (top, other)}
        off = {pct: a is not None and finite(a["ci95"][0]) and a["ci95"][0] > floor for pct, a in above.items()}
        shown["rule"] += f"; and needs each transfer's interval {fmt(floor)} points above its chance level"
        # flat transfers prove nothing unless both learned; a gain is seen when one side rose off the floor
        if (shown["verdict"] == ev.REPRODUCES and not all(off.values())) or \
                (shown["verdict"] == ev.DOES_NOT and not any(off.values())):
            at = next(pct for pct, ok in off.items() if not ok)
            chance = above[at]["chance"] if above[at] else np.nan
            shown |= {"verdict": ev.INCONCLUSIVE,
                      "reason": f"the {at}% tower's transfer is not above its chance level (blind answers, "
                                f"average {fmt(chance)}) by {fmt(floor)} points: no change can be judged"}
        parts.append(shown)
    return parts


def filtering_trades_diversity(j: Judge) -> list[dict]:
    return [j.directional("CLIP minus English, Western error", "filter/clip_minus_english/western", -1,
                          "clip_western_gain"),
            j.directional("CLIP minus English, Culture error", "filter/clip_minus_english/culture", +1,
                          "clip_culture_loss"),
            j.directional("CLIP minus English, Fairness error", "filter/clip_minus_english/fairness", +1,
                          "clip_fairness_loss"),
            j.directional("Classifier minus English, Culture error", "filter/classifier_minus_english/culture", +1,
                          "classifier_culture_loss"),
            j.directional("Classifier minus English, Fairness error", "filter/classifier_minus_english/fairness", +1,
                          "classifier_fairness_loss")]


def rebalancing_helps_low_resource(j: Judge) -> list[dict]:
    pcts = sorted({r["data_pct"] for n, r in j.ev.items() if n.startswith("rebalance/low_minus_high_resource/")})
    return [j.directional(f"Low-resource reduction minus high-resource, {scale_label(p)} data",
                          f"rebalance/low_minus_high_resource/{scale_label(p)}", +1, f"rebalance_contrast_{p:g}",
                          floor=(f"level/multilingual_low_resource/rebalanced@{scale_label(p)}",
                                 f"the rebalanced low-resource error at {scale_label(p)}"))
            for p in pcts] or [part("rebalanced runs", None, None, None,
                                    absent=j.absent("rebalance/low_minus_high_resource"))]


def attention_focuses(j: Judge) -> list[dict]:
    """Attention focuses more with more data: each tenfold step of both scores on all probe images and the step to
    100% on the cultural long tail, and the largest scale's maps beating the blind centre prior and their own
    image-shuffled maps (attention/finding8.py's records; every interval counts seeds and probe images). Not tested
    for a real pool: the probe images with object masks are the synthetic world's."""
    model = j.model
    if j.pool == "real":
        return [part("attention maps of two data scales", None, None, None,
                     absent="the attention stage scores maps against the object masks of the synthetic world's probe "
                            "images, which models trained on a real pool were not trained to see")]
    # with several models the attention stage writes attention/<model>/...: read the figures stage's model's
    prefix = f"{model}/" if any(n.startswith(f"attention/{model}/step/") for n in j.ev) else ""
    if prefix:
        j = j.with_records({n.replace(f"/{prefix}", "/", 1): r for n, r in j.ev.items() if n.split("/", 2)[1] == model})
    steps = sorted({n.rsplit("/", 1)[1] for n in j.ev if n.startswith("attention/step/hit/all/")},
                   key=lambda x: float(x.split("_to_")[0]))
    if not steps:
        return [part("attention maps of two data scales", None, None, None)]
    top = steps[-1].split("_to_")[1]
    parts = []
    for score, name in (("energy", "mass on the object"), ("hit", "pointing-game hit")):
        for step in steps:
            lo, hi = step.split("_to_")
            parts.append(j.directional(f"Attention {name}, {lo}% → {hi}% data", f"attention/step/{score}/all/{step}",
                                       +1, None))
        for base, what in (("centre_prior", "the blind centre prior"), ("shuffled", "its image-shuffled maps")):
            parts.append(j.directional(f"Attention {name} at {top}% minus {what}",
                                       f"attention_context/{base}/{score}/all/{top}%", +1, None))
    parts.append(j.directional(f"Pointing-game hit on the cultural long tail, {steps[-1].replace('_to_', '% → ')}%",
                               f"attention/step/hit/cultural/{steps[-1]}", +1, None))
    return parts


def larger_models_help_everywhere(j: Judge) -> list[dict]:
    """Larger models lower the error everywhere: each smaller model's error minus the next larger one's, per group,
    at the 100% data scale (analysis/study.model_comparisons). The compute half of the claim is Figure 6's curves."""
    pairs = sorted({(r["small"], r["large"]) for key, r in j.ev.items() if key.startswith("model/")})
    if not pairs:
        models = j.fig.get(report.FIGURE6, {})
        why = ("the profile trains one model size (the study, gpu and tpu profiles' model axis)" if len(models) < 2 else
               "its model sizes share no final checkpoint at every data scale, or cannot be ordered by size")
        return [{"label": f"model sizes: {', '.join(models) or 'none'}", "verdict": ev.NOT_TESTED, "reason": why,
                 "rule": ""}]
    names = {"western": "Western", "culture": "Culture", "multilingual": "multilingual XM3600"}
    return [j.directional(f"{names[g]} error, {small} minus {large}, 100% data", f"model/{g}/{small}_minus_{large}/100%",
                          +1, None) for small, large in pairs for g in names]


def headroom_weakly_explains_gains(j: Judge) -> list[dict]:
    return [j.no_change("Spearman correlation of error level at 10% and gain to 100%, over tasks",
                        "correlation/level_vs_gain/10_to_100", "correlation", unit="")]


def _describe(p: dict) -> str:
    """One part as the text prints it."""
    if "effect" not in p:
        return f"{p['label']}: {p['reason']}."
    u = p["unit"]
    n = "/".join(str(x) for x in p["n_seeds"])
    paper = f"; paper {fmt(p['paper_effect'], 2, sign=True)}" if finite(p.get("paper_effect")) else ""
    return (f"{p['label']}: {fmt(p['effect'], 2, sign=True)} [{fmt(p['ci95'][0], 2, sign=True)}, "
            f"{fmt(p['ci95'][1], 2, sign=True)}]{' ' + u if u else ''} (seeds {n}; minimal detectable effect "
            f"{fmt(p['mde'], 2)}{paper}): {p['verdict']}, {p['reason']}.")


def _scope(parts: list[dict]) -> str:
    """What this profile can and cannot test of the finding, and why, from its parts."""
    measured = [p for p in parts if "effect" in p]
    if not measured:
        return "This profile cannot test it: " + "; ".join(p["reason"] for p in parts) + "."
    seeds = sorted({x for p in measured for x in p["n_seeds"]})
    blocked = [p for p in measured if p["verdict"] == ev.INCONCLUSIVE and ("floor" in p["reason"] or "seed" in p["reason"])]
    text = (f"This profile measures it with {'–'.join(map(str, [seeds[0], seeds[-1]])) if len(seeds) > 1 else seeds[0]} "
            f"seed(s) per configuration.")
    if blocked:
        text += " It cannot decide: " + "; ".join(f"{p['label']} ({p['reason']})" for p in blocked) + "."
    return text


@dataclass(frozen=True)
class Finding:
    """One finding of the paper: `number` (its § order; reference.json holds its title, claim and numbers under it),
    `name`, `rule` (what the study compares to test it, in words) and `check` (the Judge to its parts)."""
    number: int
    name: str
    rule: str
    check: Callable[[Judge], list[dict]]


FINDINGS = (
    Finding(1, "western_saturates", "no change: the Western error gain from 10% to 100% data lies within the "
            "margin western_gain_pp (equivalence)", western_saturates),
    Finding(2, "culture_improves", "the Culture error gain from 10% to 100% data is positive, and larger than the "
            "Western gain", culture_improves),
    Finding(3, "low_resource_gains_more", "XM3600's low-resource languages gain more than the high-resource ones "
            "from 10% to 100% data, their error at 100% off its chance floor", low_resource_gains_more),
    Finding(4, "disparity_narrows_bias_stays", "GeoDE's regional and Dollar Street's income disparities narrow from "
            "10% to 100% data; representation and association bias stay within their margins, perceived gender "
            "off its chance floor", disparity_narrows_bias_stays),
    Finding(5, "generative_transfer_flat", "no change: the average score of a generative transfer from the 100% "
            "runs' towers lies within the margin transfer_average_pp of the 10% and 1% runs', frozen and unfrozen, "
            "each transfer chance_floor_pp above its chance level", generative_transfer_flat),
    Finding(6, "filtering_trades_diversity", "the CLIP filter lowers the Western error and raises Culture and "
            "Fairness against the English baseline; the classifier filter raises Culture and Fairness",
            filtering_trades_diversity),
    Finding(7, "rebalancing_helps_low_resource", "at each data scale rebalancing lowers the low-resource error more "
            "than the high-resource one, the rebalanced error off its chance floor", rebalancing_helps_low_resource),
    Finding(8, "attention_focuses", "each tenfold data step raises the attention's mass on the object and its "
            "pointing-game hit, and the largest scale beats the centre prior and its image-shuffled maps (synthetic "
            "probe images only)", attention_focuses),
    Finding(9, "larger_models_help_everywhere", "each larger model has lower Western, Culture and XM3600 error at "
            "100% data", larger_models_help_everywhere),
    Finding(10, "headroom_weakly_explains_gains", "no change: the Spearman correlation of the error at 10% and its "
            "gain to 100% over tasks lies within the margin correlation", headroom_weakly_explains_gains),
)


def judge(fig: dict, att: dict, verdicts: VerdictsParams, transfer: dict | None = None) -> list[dict]:
    """Per finding of the paper (reference.json's, in its order): its parts (each a judged comparison), the combined
    verdict, the rule, and what this profile can test. fig, att, transfer: metrics/figures.json, attention.json and
    transfer.json."""
    ref = read_json(REFERENCE)
    j = Judge(fig, att, verdicts, ref["effects"], transfer)
    by_number = {f.number: f for f in FINDINGS}
    out = []
    for f in ref["findings"]:
        parts = by_number[f["id"]].check(j)
        combined = ev.combine({p["label"]: ev.Verdict(p["verdict"], p["reason"], p.get("rule", "")) for p in parts})
        rules = sorted({p["rule"] for p in parts if p.get("rule")})
        primary = next((p for p in parts if "effect" in p), None)
        out.append({**f, "parts": parts, "ours": " ".join(_describe(p) for p in parts), "verdict": combined.verdict,
                    "reason": combined.reason, "rule": (f"each part {'; '.join(rules)}; the finding {combined.rule}"
                                                        if len(parts) > 1 and rules else
                                                        (rules[0] if rules else combined.rule)),
                    "scope": _scope(parts),
                    "effect": primary["effect"] if primary else None, "ci95": primary["ci95"] if primary else None,
                    "n_seeds": primary["n_seeds"] if primary else None, "mde": primary["mde"] if primary else None})
    return out


POSITIVE_EXPECT = "planted arm worse on Culture zero-shot"


def controls(fig: dict, verdicts: VerdictsParams) -> list[dict]:
    """The negative control (the random data's runs split by seed into two halves, compared as two arms: must show
    no difference) and the positive control (the planted arm against random: must come out worse on the Culture
    zero-shot tasks, whose classes are the place-bound concepts it leaves out), each through the difference a
    finding's comparison goes through. The negative control tests each group present (three
    on the analogs) at 5% divided by their number (Bonferroni): the control's false alarm rate stays at 5%. A control whose training noise is not
    measured is not judged (passed: None)."""
    e, out = fig.get(report.EVIDENCE, {}), []
    neg = {k.rsplit("/", 1)[1]: v for k, v in e.items() if k.startswith("control/negative/")}
    level = 1 - (1 - ev.LEVEL) / max(len(neg), 1)
    if neg and all(r["separable"] for r in neg.values()):
        found = [g for g, r in neg.items() if not (lambda lo, hi: lo <= 0 <= hi)(*difference_of(r).bounds(level))]
        parts = []
        for g, r in neg.items():
            verdict = ev.Verdict("a difference" if g in found else "no difference",
                                 "a difference" if g in found else "no difference",
                                 f"no difference when the {fmt(100 * level, 1)}% interval contains zero")
            shown = part(f"{g}: {'+'.join(map(str, r['runs_a']))} vs {'+'.join(map(str, r['runs_b']))}",
                         r, verdict, None, power=verdicts.power)
            parts.append(shown | {"ci95": list(difference_of(r).bounds(level)), "level": level})
        out.append({"control": "negative", "expect": "no difference", "passed": not found,
                    "outcome": (("a difference on " + ", ".join(found)) if found else "no difference") +
                    f" (intervals at {fmt(100 * level, 1)}%: {len(neg)} group{'s' if len(neg) > 1 else ''}, Bonferroni)", "parts": parts})
    else:
        why = "training noise of its halves not measured" if neg else "fewer than two runs on the random data"
        out.append({"control": "negative", "expect": "no difference", "passed": None,
                    "outcome": f"not judged: {why}", "parts": []})
    pos = e.get("control/positive/culture_0shot")
    if pos and pos["separable"]:
        v = ev.directional(difference_of(pos), +1, None, verdicts.power)
        seen = v.verdict == ev.REPRODUCES
        shown = ev.Verdict("detected" if seen else "not detected", v.reason, v.rule)
        out.append({"control": "positive", "expect": POSITIVE_EXPECT, "passed": seen,
                    "outcome": v.reason, "parts": [part("Culture zero-shot error, planted minus random", pos, shown,
                                                        None, power=verdicts.power)]})
    else:
        skipped = fig.get(report.PLAN, {}).get("skipped_arms", {}).get("planted")
        why = ("its training noise is not measured" if pos else
               f"filter arm planted skipped on this pool ({skipped})" if skipped else "no run on the planted arm")
        out.append({"control": "positive", "expect": POSITIVE_EXPECT, "passed": None,
                    "outcome": f"not judged: {why}", "parts": []})
    return out

