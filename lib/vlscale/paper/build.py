"""The paper stage: the reproduction report, every number from a file the pipeline wrote, typeset to a PDF.

`write_generated(root, verdicts)` reads the stages' records (metrics/*.json), the paper's own numbers and effects
(paper/reference.json in this package, each with where in the paper it comes from) and params.yaml's `verdicts`,
and writes paper/generated/:
    values.json     every number and verdict the text prints, formatted (the text holds no typed number)
    findings.json   per finding of the paper: its claim and numbers, its parts (each a comparison of the study with
                    its effect, interval over seeds and test images, seeds, detectable effect and verdict), the
                    finding's verdict, its rule, and what the profile can and cannot test
    controls.json   the negative and positive controls, each with its comparisons and whether it passed
    figures.json    every figure the stages made (path, caption, the finding it belongs to)
    tables.json     every LaTeX table of paper/tables/, parsed into rows for the typesetter
    captions.json   one alt-text caption per language of the world (the 36 scripts the fonts must draw)
`compile_pdf` typesets paper/main.typ with typst (a PyPI wheel: no TeX needed) and the fonts the package
ships, ignoring the machine's own fonts and with a fixed timestamp, so the PDF is the same on every machine.
"""
from __future__ import annotations

import copy
import datetime as dt
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from vlscale.analysis import evidence as ev
from vlscale.analysis.results import on_real_benchmarks, scale_label
from vlscale.config import LOW_RESOURCE
from vlscale.evals.groups import AVERAGES
from vlscale.world import vocab

REFERENCE = Path(__file__).parent / "reference.json"
REF_SCALE = json.loads(REFERENCE.read_text())["scale"]
GENERATED = Path("paper/generated")
MINUS = "\u2212"

# Every figure a stage writes, with what it shows; a figure without a caption here fails the build, so a new
# figure cannot be left out of the paper. finding: the finding it is shown with (None: the appendix).
FIGURES = {
    "world/language_shares": ("Page-language shares of the synthetic web against the paper's Table 15.", None),
    "world/long_tail": ("The concepts' long tail: examples per concept by popularity rank and kind.", None),
    "world/region_income": ("Region by Dollar Street income group of the synthetic web's images.", None),
    "world/examples": ("Example images of the synthetic web, with their page language and country.", None),
    "sample/coverage": ("Long-tail coverage of the nested 1%, 10% and 100% subsets.", None),
    "sample/language_mix_1pct": ("Language mix of the 1% subset before and after rebalancing (Figure 8).", 7),
    "sample/language_mix_10pct": ("Language mix of the 10% subset before and after rebalancing.", None),
    "sample/language_mix_100pct": ("Language mix of the 100% subset before and after rebalancing.", None),
    "filter/account": ("What each filter arm kept: the representation ratio per group.", 6),
    "filter/languages": ("Representation ratio of the low-resource languages in each filter arm.", None),
    "filter/caption_languages": ("Caption languages of what each filter arm kept: the English-caption share and the "
                                 "largest other languages.", None),
    "train/loss_curves": ("Training loss of every run and cool-down branch.", None),
    "train/probe_curves": ("Held-out probe while training (development key).", None),
    "eval/fig1_gains": ("Figure 1 analog: error change per benchmark group between data scales.", 1),
    "eval/fig1_curves": ("Figure 1 analog: accuracy and Recall@1 against data scale.", 2),
    "eval/learning_curves": ("Error of each group against examples seen, per run.", None),
    "eval/fig2_xm3600": ("Figure 2 analog: XM3600 retrieval error of low- and high-resource languages.", 3),
    "eval/fig3_association_bias": ("Figure 3 analog: association bias by data scale.", 4),
    "eval/fig4_filters": ("Figure 4 analog: the filter arms against the English baseline, by examples seen.", 6),
    "eval/fig5_rebalancing": ("Figure 5 analog: before and after language rebalancing.", 7),
    "eval/fig6_models": ("Figure 6 analog: error against compute, per model and data scale.", 9),
    "attention/table6": ("Table 6 analog: MAP-head attention of the 1%, 10% and 100% models on held-out images "
                         "(colour: attention relative to a uniform map; cyan: the object's mask).", 8),
    "attention/focus": ("Focus of the attention on the object, per concept group and data scale.", 8),
    "attention/curation": ("MAP-head attention of every run at the curated runs' examples seen.", None),
}
# Every LaTeX table of paper/tables, with the finding it is shown with (None: the appendix).
TABLES = {"table1": 1, "wilcoxon": 2, "table3": 4, "table4": 4, "table13": 6, "table14": 7,
          "attention_focus": 8}


def fmt(x, digits: int = 1, sign: bool = False) -> str:
    """A number as the text prints it: fixed digits, a true minus sign, '+' when `sign`; '--' for NaN/None."""
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "--"
    s = f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"
    return s.replace("-", MINUS)


def fmt_ci(v, ci, digits: int = 1, sign: bool = False) -> str:
    lo, hi = (ci or (None, None))
    return f"{fmt(v, digits, sign)} [{fmt(lo, digits, sign)}, {fmt(hi, digits, sign)}]"


def _read(root: Path, rel: str):
    path = root / rel
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the paper stage reads it; run the stage that writes it (dvc repro)")
    return json.loads(path.read_text())


def _scales(fig: dict) -> list[str]:
    return list(fig["group_averages_by_scale"])


# ------------------------------------------------------------------------------------------------ findings
# Each finding is a claim made of parts; each part is one comparison of the study (metrics/figures.json and
# metrics/attention.json `evidence`: analysis/study.py, attention/stage.py) judged by one rule of
# analysis/evidence.py, with the paper's effect (reference.json `effects`, in the claim's direction) and the
# margins of params.yaml `verdicts`, fixed before any data was seen.

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
        for part in token.split("_minus_"):
            if part in AVERAGES:
                out[GROUP_NAMES.get(part, part)] = AVERAGES[part]
    return out


def _difference(rec: dict) -> ev.Difference:
    fields = {f: rec.get(f) for f in ev.Difference.__dataclass_fields__}
    return ev.Difference(**{k: (np.nan if v is None else v) for k, v in fields.items()})


def _part(label: str, rec: dict | None, verdict: ev.Verdict | None, paper: float | None, unit: str = "pp",
          power: float = 0.8, absent: str = "the runs it compares were not trained") -> dict:
    """One part of a finding: what was compared, its effect, interval, seeds and minimal detectable effect, and its
    verdict (None: not tested, for the reason `absent`)."""
    if rec is None or verdict is None:
        v = ev.Verdict(ev.NOT_TESTED, absent, "")
        return {"label": label, **v.record(), "paper_effect": paper, "unit": unit}
    d = _difference(rec)
    return {"label": label, **verdict.record(), "effect": d.effect, "ci95": [d.lo, d.hi], "n_seeds": [d.n_a, d.n_b],
            "seed_sd": d.seed_sd, "seed_df": d.seed_df, "image_se": d.image_se, "mde": d.mde(power),
            "paper_effect": paper, "unit": unit, "runs": [rec.get("runs_a"), rec.get("runs_b")],
            "examples_seen": rec.get("examples_seen")}


class Judge:
    """Applies the rules of analysis/evidence.py to the study's evidence with the `verdicts` params."""

    def __init__(self, fig: dict, att: dict, V: dict, effects: dict):
        self.ev = {**fig.get("evidence", {}), **att.get("evidence", {})}
        self.V, self.effects = V, effects
        self.power = V["power"]
        self.source, self.benchmarks = fig.get("source"), list(fig.get("benchmarks", {}))
        self.tasks = sorted({t for b in fig.get("benchmarks", {}).values() for t in b["tasks"]})
        self.skipped_arms = fig.get("plan", {}).get("skipped_arms", {})

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
            return _part(label, None, None, paper, unit, absent=self.absent(name))
        verdict = ev.directional(_difference(rec), sign, paper, self.power)
        if floor is not None:
            verdict = self._floor(verdict, *floor)
        return _part(label, rec, verdict, paper, unit, self.power)

    def no_change(self, label: str, name: str, margin_key: str, unit: str = "pp",
                  floors: tuple[tuple[str, str], ...] = ()) -> dict:
        rec, margin = self.rec(name), self.V["margins"][margin_key]
        if rec is None:
            return _part(label, None, None, 0.0, unit, absent=self.absent(name))
        verdict = ev.no_change(_difference(rec), margin, self.power)
        for floor in floors:
            verdict = self._floor(verdict, *floor)
        return _part(label, rec, verdict, 0.0, unit, self.power) | {"margin": margin}

    def _floor(self, verdict: ev.Verdict, level_name: str, what: str) -> ev.Verdict:
        """Inconclusive when the level the part needs sits at its chance floor (or was not measured)."""
        lv = self.rec(level_name)
        if lv is None and self.source == "real" and self.unmeasured(level_name):
            return ev.Verdict(ev.NOT_TESTED, f"{what}: {self.absent(level_name)}", verdict.rule)
        if lv is None or not _finite(lv.get("value_hi")):
            return ev.Verdict(ev.INCONCLUSIVE, f"{what}: its distance from chance was not measured", verdict.rule)
        if not ev.off_floor(lv["value_hi"], lv["reference"], self.V["chance_floor_pp"]):
            return ev.Verdict(ev.INCONCLUSIVE, f"{what} is at its chance floor ({fmt(lv['value'])}%, interval up to "
                              f"{fmt(lv['value_hi'])}%, chance {fmt(lv['reference'])}%): no change can be seen",
                              verdict.rule + f"; needs {what} at least {fmt(self.V['chance_floor_pp'])} pp below chance")
        return verdict


def _gain(j: Judge, q: str, a="10", b="100") -> str:
    return f"gain/{q}/{a}_to_{b}"


def _f1(j: Judge) -> list[dict]:
    return [j.no_change("Western error, 10% → 100% data (gain)", _gain(j, "western"), "western_gain_pp")]


def _f2(j: Judge) -> list[dict]:
    return [j.directional("Culture error gain, 10% → 100% data", _gain(j, "culture"), +1, "culture_gain"),
            j.directional("Culture gain minus Western gain", _gain(j, "culture_minus_western"), +1,
                          "culture_minus_western_gain")]


def _f3(j: Judge) -> list[dict]:
    return [j.directional("Low-resource minus high-resource XM3600 gain, 10% → 100%",
                          _gain(j, "low_minus_high_resource"), +1, "low_minus_high_gain",
                          floor=("level/multilingual_low_resource/100%", "the low-resource retrieval error at 100%"))]


def _f4(j: Judge) -> list[dict]:
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


def _f6(j: Judge) -> list[dict]:
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


def _f7(j: Judge) -> list[dict]:
    pcts = sorted({r["data_pct"] for n, r in j.ev.items() if n.startswith("rebalance/low_minus_high_resource/")})
    return [j.directional(f"Low-resource reduction minus high-resource, {scale_label(p)} data",
                          f"rebalance/low_minus_high_resource/{scale_label(p)}", +1, f"rebalance_contrast_{p:g}",
                          floor=(f"level/multilingual_low_resource/rebalanced@{scale_label(p)}",
                                 f"the rebalanced low-resource error at {scale_label(p)}"))
            for p in pcts] or [_part("rebalanced runs", None, None, None,
                                     absent=j.absent("rebalance/low_minus_high_resource"))]


def _f8(j: Judge, model: str = "", pool: str = "synthetic") -> list[dict]:
    """Attention focuses more with more data: each tenfold step of both scores on all probe images and the step to
    100% on the cultural long tail, and the largest scale's maps beating the blind centre prior and their own
    image-shuffled maps (attention/finding8.py's records; every interval counts seeds and probe images). Not tested
    for a real pool: the probe images with object masks are the synthetic world's."""
    if pool == "real":
        return [_part("attention maps of two data scales", None, None, None,
                      absent="the attention stage scores maps against the object masks of the synthetic world's probe "
                             "images, which models trained on a real pool were not trained to see")]
    # with several models the attention stage writes attention/<model>/...: read the figures stage's model's
    prefix = f"{model}/" if any(n.startswith(f"attention/{model}/step/") for n in j.ev) else ""
    if prefix:
        j = j.with_records({n.replace(f"/{prefix}", "/", 1): r for n, r in j.ev.items() if n.split("/", 2)[1] == model})
    steps = sorted({n.rsplit("/", 1)[1] for n in j.ev if n.startswith("attention/step/hit/all/")},
                   key=lambda x: float(x.split("_to_")[0]))
    if not steps:
        return [_part("attention maps of two data scales", None, None, None)]
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


def _f9(j: Judge, fig: dict) -> list[dict]:
    """Larger models lower the error everywhere: each smaller model's error minus the next larger one's, per group,
    at the 100% data scale (analysis/study.model_comparisons). The compute half of the claim is Figure 6's curves."""
    pairs = sorted({(r["small"], r["large"]) for key, r in j.ev.items() if key.startswith("model/")})
    if not pairs:
        models = fig.get("figure6", {})
        why = ("the profile trains one model size (the study, gpu and tpu profiles' model axis)" if len(models) < 2 else
               "its model sizes share no final checkpoint at every data scale, or cannot be ordered by size")
        return [{"label": f"model sizes: {', '.join(models) or 'none'}", "verdict": ev.NOT_TESTED, "reason": why,
                 "rule": ""}]
    names = {"western": "Western", "culture": "Culture", "multilingual": "multilingual XM3600"}
    return [j.directional(f"{names[g]} error, {small} minus {large}, 100% data", f"model/{g}/{small}_minus_{large}/100%",
                          +1, None) for small, large in pairs for g in names]


def _f10(j: Judge) -> list[dict]:
    return [j.no_change("Spearman correlation of error level at 10% and gain to 100%, over tasks",
                        "correlation/level_vs_gain/10_to_100", "correlation", unit="")]


def _describe(p: dict) -> str:
    """One part as the text prints it."""
    if "effect" not in p:
        return f"{p['label']}: {p['reason']}."
    u = p["unit"]
    n = "/".join(str(x) for x in p["n_seeds"])
    paper = f"; paper {fmt(p['paper_effect'], 2, sign=True)}" if _finite(p.get("paper_effect")) else ""
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


def _finite(x) -> bool:
    """A number that was measured: not None, not NaN."""
    return x is not None and bool(np.isfinite(x))


RULES = {1: _f1, 2: _f2, 3: _f3, 4: _f4, 6: _f6, 7: _f7, 10: _f10}


def findings(fig: dict, att: dict, filt: dict, V: dict) -> list[dict]:
    """Per finding of the paper: its parts (each a judged comparison), the combined verdict, the rule, what this
    profile can test, and the figures and tables shown with it."""
    ref = json.loads(REFERENCE.read_text())
    j = Judge(fig, att, V, ref["effects"])
    out = []
    for f in ref["findings"]:
        if f["id"] == 5:
            parts = [{"label": "a generative VLM on the runs' towers", "verdict": ev.NOT_TESTED,
                      "reason": "vlscale trains no PaliGemma-style transfer yet", "rule": ""}]
        elif f["id"] == 9:
            parts = _f9(j, fig)
        elif f["id"] == 8:
            parts = _f8(j, fig.get("model", ""), att.get("plan", {}).get("pool", "synthetic"))
        else:
            parts = RULES[f["id"]](j)
        combined = ev.combine({p["label"]: ev.Verdict(p["verdict"], p["reason"], p.get("rule", "")) for p in parts})
        rules = sorted({p["rule"] for p in parts if p.get("rule")})
        primary = next((p for p in parts if "effect" in p), None)
        out.append({**f, "parts": parts, "ours": " ".join(_describe(p) for p in parts), "verdict": combined.verdict,
                    "reason": combined.reason, "rule": (f"each part {'; '.join(rules)}; the finding {combined.rule}"
                                                        if len(parts) > 1 and rules else
                                                        (rules[0] if rules else combined.rule)),
                    "scope": _scope(parts),
                    "effect": primary["effect"] if primary else None, "ci95": primary["ci95"] if primary else None,
                    "n_seeds": primary["n_seeds"] if primary else None, "mde": primary["mde"] if primary else None,
                    "figures": [k for k, (_, n) in FIGURES.items() if n == f["id"]],
                    "tables": [k for k, n in TABLES.items() if n == f["id"]]})
    return out


POSITIVE_EXPECT = "planted arm worse on Culture zero-shot"


def controls(fig: dict, V: dict) -> list[dict]:
    """The negative control (the random data's runs split by seed into two halves, compared as two arms: must show
    no difference) and the positive control (the planted arm against random: must come out worse on the Culture
    zero-shot tasks, whose classes are the place-bound concepts it leaves out), each through the difference a
    finding's comparison goes through. The negative control tests each group present (three
    on the analogs) at 5% divided by their number (Bonferroni): the control's false alarm rate stays at 5%. A control whose training noise is not
    measured is not judged (passed: None)."""
    e, out = fig.get("evidence", {}), []
    neg = {k.rsplit("/", 1)[1]: v for k, v in e.items() if k.startswith("control/negative/")}
    level = 1 - (1 - ev.LEVEL) / max(len(neg), 1)
    if neg and all(r["separable"] for r in neg.values()):
        found = [g for g, r in neg.items() if not (lambda lo, hi: lo <= 0 <= hi)(*_difference(r).bounds(level))]
        parts = []
        for g, r in neg.items():
            verdict = ev.Verdict("a difference" if g in found else "no difference",
                                 "a difference" if g in found else "no difference",
                                 f"no difference when the {fmt(100 * level, 1)}% interval contains zero")
            part = _part(f"{g}: {'+'.join(map(str, r['runs_a']))} vs {'+'.join(map(str, r['runs_b']))}",
                         r, verdict, None, power=V["power"])
            parts.append(part | {"ci95": list(_difference(r).bounds(level)), "level": level})
        out.append({"control": "negative", "expect": "no difference", "passed": not found,
                    "outcome": (("a difference on " + ", ".join(found)) if found else "no difference") +
                    f" (intervals at {fmt(100 * level, 1)}%: {len(neg)} group{'s' if len(neg) > 1 else ''}, Bonferroni)", "parts": parts})
    else:
        why = "training noise of its halves not measured" if neg else "fewer than two runs on the random data"
        out.append({"control": "negative", "expect": "no difference", "passed": None,
                    "outcome": f"not judged: {why}", "parts": []})
    pos = e.get("control/positive/culture_0shot")
    if pos and pos["separable"]:
        v = ev.directional(_difference(pos), +1, None, V["power"])
        seen = v.verdict == ev.REPRODUCES
        shown = ev.Verdict("detected" if seen else "not detected", v.reason, v.rule)
        out.append({"control": "positive", "expect": POSITIVE_EXPECT, "passed": seen,
                    "outcome": v.reason, "parts": [_part("Culture zero-shot error, planted minus random", pos, shown,
                                                         None, power=V["power"])]})
    else:
        skipped = fig.get("plan", {}).get("skipped_arms", {}).get("planted")
        why = ("its training noise is not measured" if pos else
               f"filter arm planted skipped on this pool ({skipped})" if skipped else "no run on the planted arm")
        out.append({"control": "positive", "expect": POSITIVE_EXPECT, "passed": None,
                    "outcome": f"not judged: {why}", "parts": []})
    return out


# ------------------------------------------------------------------------------------------------ setup values

def values(root: Path, fig: dict, att: dict, filt: dict) -> dict:
    """The setup section's numbers, formatted."""
    world = _read(root, "metrics/world.json")
    sample = _read(root, "metrics/sample.json")
    trains = {p.stem: json.loads(p.read_text()) for p in sorted((root / "metrics/train").glob("*.json"))}
    prov = fig["provenance"]
    natural = [t for t in trains.values() if not t.get("rebalanced") and not t.get("filter") and not t.get("model")]
    biggest = max(natural, key=lambda t: t["examples_seen"]) if natural else next(iter(trains.values()))
    v = {
        "profile": prov["profile"],
        "git_commit": str(prov.get("git_commit") or "unknown"),
        "versions": ", ".join(f"{k} {x}" for k, x in prov["versions"].items() if x),
        "world_examples": f"{world['examples']:,}",
        "low_resource_share": fmt(world["low_resource_share_pct"], 2),
        "language_exponent": fmt(world["provenance"]["params"]["world"].get("language_share_exponent", 1.0), 2),
        "paper_low_resource_share": fmt(sum(lang["web_pages_pct"] for lang in vocab.load("languages")["languages"]
                                            if lang["code"] in LOW_RESOURCE), 2),  # Table 15's
        "language_dev": fmt(world["language_share_max_abs_dev_pct"], 2),
        "head_share": fmt(100 * world["head_share_of_examples"], 1),
        "pool_size": f"{sample['pool_examples']:,}",
        "pool_source": sample["source"],
        "model": fig.get("model", "--"),
        "n_params": f"{biggest['n_params']:,}",
        "examples_seen": f"{biggest['examples_seen']:,}",
        "examples_per_s": f"{biggest['examples_per_s']:,.0f}",
        "device": f"{biggest['devices']} × {biggest['device_kind']}",
        "train_wall_min": fmt(sum(t["wall_s"] for t in trains.values()) / 60, 1),
        "runs": str(len(trains)),
        "run_names": ", ".join(trains),
        "filter_k": f"{filt['k']:,}" if "k" in filt else "--",
        "filter_pool": f"{filt['pool_pairs']:,}" if "pool_pairs" in filt else "--",
        "analog_key_use": fig.get("analog_key_use", "--"),
        "bootstrap": str(fig.get("n_boot", "--")),
        "attention_images": str(att.get("images", "--")),
        "attention_per_group": str(att.get("per_group", "--")),
        "attention_grid": " × ".join(map(str, att.get("grid", []))) or "--",
        "attention_px": str(att.get("image_px", "--")),
        "pointing_radius": fmt(att.get("pointing_radius_px"), 1),
        "scales": ", ".join(_scales(fig)[:-1]) + f" and {_scales(fig)[-1]}" if len(_scales(fig)) > 1 else
        "".join(_scales(fig)),
        "low_resource_count": str(len(LOW_RESOURCE)),
        "paper_params": REF_SCALE["params"], "paper_examples": REF_SCALE["examples"],
    }
    whole = max(natural or trains.values(), key=lambda t: t.get("fraction", 0))  # the run on the whole pool
    v["pool_epochs"] = fmt(whole.get("epochs"), 1)  # how often it sees each pair
    return v | pool_values(sample, fig)


def pool_values(sample: dict, fig: dict) -> dict:
    """What the study ran on, as the setup prints it: the pool's kind, the benchmarks reported, what the pool could
    not give (the plan's skipped arms and runs) and, for real shards, the shards, what the scan kept and rejected by
    reason, the languages as tagged and the subsets' sizes (metrics/sample.json)."""
    plan = fig.get("plan", {})
    skipped = [f"filter arm {a} ({why})" for a, why in plan.get("skipped_arms", {}).items()]
    runs = list(plan.get("skipped_runs", {}))
    if runs:
        skipped.append(f"the run{'s' if len(runs) > 1 else ''} on those arms ({', '.join(runs)})")
    v = {"pool_kind": "synthetic" if sample["source"] == "synthetic" else "real",
         "benchmark_source": "the synthetic analogs" if fig.get("source") == "analog" else "the real evaluation sets",
         "benchmarks": ", ".join(f"{b} ({m['n']:,} test items)" for b, m in fig.get("benchmarks", {}).items()) or "none",
         "skipped": "; ".join(skipped) or "nothing",
         "subset_sizes": _and([f"{label.replace('pct', '%')}: {m['examples']:,}"
                               for label, m in sample["subsets"].items()])}
    if v["pool_kind"] == "real":
        scan, shards, languages = sample["scan"], sample["shards"], sample["languages"]
        n = shards["files"]
        rejected = {k: c for k, c in scan["rejected"].items() if c}
        order = sorted(languages, key=lambda c: (-languages[c], c))
        low = [c for c in LOW_RESOURCE if c in languages]
        absent = [c for c in LOW_RESOURCE if c not in languages]
        v |= {"pool_shards": (f"{n:,} {' and '.join(shards['formats'])} shard{'s' if n > 1 else ''} "
                              f"({shards['first']} to {shards['last']}, {shards['bytes'] / 1e6:,.1f} MB) matched by "
                              f"{', '.join(shards['patterns'])}"),
              "pool_read": f"{scan['examples_in']:,}", "pool_kept": f"{scan['kept']:,}",
              "pool_rejected": f"{sum(scan['rejected'].values()):,}",
              "pool_rejected_by_reason": _and([f"{c:,} {k.replace('_', ' ')}" for k, c in rejected.items()]) or "none",
              "pool_languages": (f"{len(languages)} page languages as tagged (" +
                                 ", ".join(f"{c} {languages[c]:,}" for c in order[:8]) +
                                 (", ..." if len(order) > 8 else "") + "); the low-resource ones: " +
                                 (", ".join(f"{c} {languages[c]:,}" for c in low) or "none") +
                                 (f", and none of {', '.join(absent)}" if absent else ""))}
    return v


def _and(items: list[str]) -> str:
    return ", ".join(items[:-1]) + f" and {items[-1]}" if len(items) > 1 else "".join(items)


# ------------------------------------------------------------------------------------------------ tables

_MATH = {r"$\alpha x^{-c}+\varepsilon$": "αx^(−c) + ε", r"$W$": "W", r"$p$": "p", r"$c$": "c", r"$\varepsilon$": "ε", r"$^\dagger$": "†", r"$\Delta$": "Δ", r"$\alpha$": "α",
         r"$\pm$": "±", r"$\times$": "×", r"$\geq$": "≥", r"$\leq$": "≤"}


def _untex(s: str) -> str:
    for k, v in _MATH.items():
        s = s.replace(k, v)
    s = re.sub(r"\\textit\{([^}]*)\}", r"\1", s)
    s = re.sub(r"\\textbf\{([^}]*)\}", r"\1", s)
    s = s.replace(r"\%", "%").replace(r"\&", "&").replace(r"\_", "_").replace(r"\#", "#")
    s = s.replace(r"\textbackslash{}", "\\")
    s = "–" if s.strip() == "--" else re.sub(r"(?<![\w.])-(?=\d)", MINUS, s)  # a minus sign, not a hyphen
    if "$" in s or re.search(r"\\[a-zA-Z]", s):
        raise ValueError(f"LaTeX the paper stage cannot render: {s!r}")
    return s.strip()


def parse_latex_table(tex: str, source: str) -> dict:
    """One of analysis/latex.py's tables (tabular()) as {header, rows, caption, label}; a section heading row is
    {"section": text}."""
    body = re.search(r"\\begin\{tabular\}\{([^}]*)\}(.*?)\\end\{tabular\}", tex, re.S)
    caption = re.search(r"\\caption\{(.*)\}\s*\\label", tex, re.S)
    if not body:
        raise ValueError(f"{source}: no tabular environment")
    lines = [ln.strip() for ln in body.group(2).split(r"\\")]
    rows = []
    for ln in lines:
        ln = ln.replace(r"\hline", "").strip()
        if not ln:
            continue
        m = re.fullmatch(r"\\multicolumn\{\d+\}\{l\}\{(.*)\}", ln)
        rows.append({"section": _untex(m.group(1))} if m else [_untex(c) for c in re.split(r"(?<!\\)&", ln)])
    header, rows = rows[0], rows[1:]
    widths = {len(r) for r in rows if isinstance(r, list)} | {len(header)}
    if len(widths) != 1:
        raise ValueError(f"{source}: rows of {sorted(widths)} cells")
    return {"header": header, "rows": rows, "align": body.group(1),
            "caption": _untex(caption.group(1)) if caption else ""}


# ------------------------------------------------------------------------------------------------ write

SYNTHETIC_PROBES = "On the synthetic world's probe images, not a test of a real pool. "  # attention, on a real pool
# What a figure shows when the study ran on real shards (the pool's kind; the benchmarks are the real sets).
REAL_POOL_CAPTIONS = {
    "sample/coverage": "Coverage of the pool's page languages: the share with at least k examples in the nested 1%, "
                       "10% and 100% subsets.",
    "train/probe_curves": "Held-out probe while training, on the synthetic world's analogs (development key): a "
                          "check that training runs, not a benchmark of the real pool.",
}


def figure_caption(key: str, pool: str = "synthetic", source: str | None = "analog") -> str:
    """A figure's caption for the pool's kind and the benchmarks reported: on real benchmarks the evaluation
    figures are the paper's own, no longer analogs; on a real pool the attention maps are of the synthetic probe
    images."""
    caption = FIGURES[key][0]
    if pool == "real":
        caption = REAL_POOL_CAPTIONS.get(key, caption)
        if key.startswith("attention/"):
            caption = SYNTHETIC_PROBES + caption
    if source == "real" and key.startswith("eval/"):
        caption = on_real_benchmarks(caption)
    return caption


def figure_list(root: Path, pool: str = "synthetic", source: str | None = "analog") -> list[dict]:
    """Every figure of paper/figures with its caption; on a real pool without the synthetic world's figures (the
    pool is not drawn from it)."""
    found = sorted(p.relative_to(root / "paper/figures").with_suffix("").as_posix()
                   for p in (root / "paper/figures").glob("*/*.png"))
    unknown = [f for f in found if f not in FIGURES]
    if unknown:
        raise ValueError(f"paper/figures holds figures the paper has no caption for: {unknown}; add them to "
                         "vlscale.paper.build.FIGURES")
    from PIL import Image

    out = []
    for k in found:
        if pool == "real" and k.startswith("world/"):
            continue
        with Image.open(root / "paper/figures" / f"{k}.png") as im:
            aspect = im.width / im.height
        # wide multi-panel figures take the text width; single plots and tall grids less, for legible text
        width = 100 if aspect > 2.2 else 80 if aspect > 1.4 else 62
        out.append({"key": k, "path": f"figures/{k}.png", "caption": figure_caption(k, pool, source),
                    "finding": FIGURES[k][1],
                    "width": width})
    return out


def table_list(root: Path, pool: str = "synthetic") -> list[dict]:
    out = []
    for path in sorted((root / "paper/tables").glob("*.tex")):
        if path.stem not in TABLES:
            raise ValueError(f"{path}: a table the paper does not place; add it to vlscale.paper.build.TABLES")
        table = parse_latex_table(path.read_text(), str(path))
        if pool == "real" and path.stem.startswith("attention"):
            table["caption"] = SYNTHETIC_PROBES + table["caption"]
        out.append({"key": path.stem, "finding": TABLES[path.stem], **table})
    return out


def write_generated(root: str | Path = ".", verdicts: dict | None = None, out_dir: str | Path | None = None) -> dict:
    """paper/generated/ (see the module docstring); `verdicts`: params.yaml's `verdicts` block (power, margins,
    chance floor) the rules read."""
    root = Path(root)
    if verdicts is None:
        raise ValueError("write_generated needs params.yaml's `verdicts` block (power, margins, chance_floor_pp)")
    out = Path(out_dir) if out_dir else root / GENERATED
    out.mkdir(parents=True, exist_ok=True)
    fig, att, filt = (_read(root, f"metrics/{n}.json") for n in ("figures", "attention", "filter"))
    found = findings(fig, att, filt, verdicts)
    ctrl = controls(fig, verdicts)
    counts = pd.Series([f["verdict"] for f in found]).value_counts().to_dict()
    v = values(root, fig, att, filt)
    v.update({f"verdict_{k.replace(' ', '_')}": str(n) for k, n in counts.items()})
    v["findings_total"] = str(len(found))
    v |= control_values(ctrl, verdicts)
    v["replicated"] = replicated(fig, att)
    # the study reference speaks for the synthetic world at small scale: the quick profiles point to it
    study = study_reference(root) if v["profile"] in ("smoke", "cpu") and v["pool_kind"] == "synthetic" else None
    v["study_reference"] = point_to_study(found, study) if study else ""
    v["ladder_figures"] = copy_ladder(root, out) if v["profile"] == "study" else []
    captions = pd.read_csv(root / "plots/world/captions.csv").to_dict("records")
    files = {"values.json": v, "findings.json": found, "controls.json": ctrl, "figures.json": figure_list(root, v["pool_kind"], fig.get("source")),
             "tables.json": table_list(root, v["pool_kind"]), "captions.json": captions}
    for name, data in files.items():
        (out / name).write_text(json.dumps(data, indent=1, ensure_ascii=False, default=str))
    return files


STUDY_REFERENCE = Path("results/reference/study")
UNRESOLVED = (ev.NOT_TESTED, ev.INCONCLUSIVE)


def study_reference(root: Path) -> dict | None:
    """The committed study profile's verdicts (results/reference/study: paper.json, targets.json), or None."""
    ref = root / STUDY_REFERENCE
    if not (ref / "paper.json").is_file() or not (ref / "targets.json").is_file():
        return None
    made = json.loads((ref / "targets.json").read_text())
    paper = json.loads((ref / "paper.json").read_text())
    verdicts = {f["id"]: f for f in paper["verdicts"]}
    return {"verdicts": verdicts, "commit": made["commit"][:7], "cpu": made["machine"]["cpu"],
            "wall_min": made["wall_s"] / 60, "controls": {c["control"]: c.get("passed") for c in paper["controls"]}}


def point_to_study(found: list[dict], study: dict) -> str:
    """Each finding this profile leaves not tested or inconclusive gets the study reference's verdict (`study` in its
    record); returns the sentence the summary prints about it ('' when none is left open here)."""
    pointed = []
    for f in found:
        theirs = study["verdicts"].get(f["id"])
        if f["verdict"] in UNRESOLVED and theirs is not None:
            f["study"] = {"verdict": theirs["verdict"], "reason": theirs["reason"], "commit": study["commit"]}
            pointed.append(f["id"])
    if not pointed:
        return ""
    failed = [name for name, passed in study["controls"].items() if passed is False]
    controls = (f"its {' and '.join(failed)} control did not pass, so its verdicts are not to be trusted either" if failed
                else "its controls passed" if study["controls"] and all(study["controls"].values())
                else "not every one of its controls was judged")
    return (f"Findings {', '.join(map(str, pointed))}, which this profile leaves open, carry the verdict of the "
            f"committed study-profile reference as well (results/reference/study: commit {study['commit']}, "
            f"{study['wall_min']:.0f} minutes on {study['cpu']}; {controls}), marked as such: it is not this run's.")


LADDER = Path("results/reference/ladder")
LADDER_FIGURES = {  # file under LADDER -> caption
    "ladder_dev.png": "The compute ladder (development key): every part of every finding at each rung of examples seen "
                      "N (pool = N; the natural runs of the default model and world, two seeds at 10% and 100%), "
                      "coloured by its verdict and labelled with its effect (results/reference/ladder).",
    "ladder_report.png": "The compute ladder on the report key: the same runs, evaluated on the held-out draws "
                         "nobody tuned on (results/reference/ladder).",
    "similarity_dev.png": "Learning curves (development key): each Western head concept's ImageNet-like zero-shot "
                          "accuracy and each language's XM3600 image-to-text R@1 against its unique training pairs in "
                          "the run's subset, binned, one curve per rung (results/reference/ladder).",
}


def copy_ladder(root: Path, out: Path) -> list[dict]:
    """The committed ladder's figures (LADDER_FIGURES), copied into the generated folder for the study's PDF."""
    dest = out / "ladder"
    dest.mkdir(parents=True, exist_ok=True)
    figures = []
    for name, caption in LADDER_FIGURES.items():
        if (root / LADDER / name).is_file():
            shutil.copy2(root / LADDER / name, dest / name)
            figures.append({"path": f"generated/ladder/{name}", "caption": caption, "width": 100})
    return figures


def replicated(fig: dict, att: dict) -> str:
    """The configurations trained with more than one seed, as the text names them: '10% (2 seeds at 199,936
    examples seen), ...' ('none' without replicates)."""
    seen = {}
    for r in {**fig.get("evidence", {}), **att.get("evidence", {})}.values():
        for side in ("a", "b"):
            name, n = r.get(side), r.get(f"n_{side}", 0)
            if n and n >= 2 and "@" in str(name) and not r["name"].startswith("control/"):
                seen[(name, r["examples_seen"])] = max(n, seen.get((name, r["examples_seen"]), 0))
    if not seen:
        return "none"
    def label(c: str) -> str:  # "10%", "clip" (a filter arm draws from the whole pool), "rebalanced 10%"
        curation, _, pct = c.partition("@")
        return pct if curation == "natural" else curation.removeprefix("filter/") if curation.startswith(
            "filter/") else f"{curation} {pct}"

    return ", ".join(f"{label(c)} ({n} seeds at {s:,} examples seen)" for (c, s), n in sorted(seen.items(), key=lambda x: (x[0][1], x[0][0])))


def control_values(ctrl: list[dict], V: dict) -> dict:
    """The controls and the rules' settings as the text prints them; `controls_failed` names any control that
    failed (the report says so at the top)."""
    failed = [c["control"] for c in ctrl if c["passed"] is False]
    unrun = [c["control"] for c in ctrl if c["passed"] is None]
    return {"controls_failed": ", ".join(failed), "controls_unrun": ", ".join(unrun),
            "level_pct": fmt(100 * ev.LEVEL, 0), "power_pct": fmt(100 * V["power"], 0),
            "equivalence_level_pct": fmt(100 * (1 - 2 * (1 - ev.LEVEL)), 0),
            "chance_floor_pp": fmt(V["chance_floor_pp"]),
            "margins": "; ".join(f"{k.replace('_', ' ')} ±{fmt(m, 2)}" for k, m in V["margins"].items())}


def compile_pdf(main: str | Path = "paper/main.typ", output: str | Path = "paper/main.pdf",
                timestamp: int = 0) -> Path:
    """Typeset `main` with typst and the package's fonts only; the PDF's date is `timestamp` (Unix seconds)."""
    import typst

    from vlscale.analysis.fonts import FONT_DIR, font_files

    font_files()  # fails with the fix when the fonts are missing
    main, output = Path(main), Path(output)
    typst.compile(str(main), output=str(output), root=str(main.parent), font_paths=[str(FONT_DIR)],
                  ignore_system_fonts=True, timestamp=timestamp)
    return output


def build_date(timestamp: int) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d")


def read_pdf(path: str | Path, render_dir: str | Path | None = None, scale: float = 1.0) -> list[dict]:
    """The PDF's pages as a reader's software sees them: per page its text and the number of images drawn on it;
    with `render_dir`, each page also rendered to <render_dir>/page_<n>.png (pdfium, `scale` × 72 dpi)."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    pdf = pdfium.PdfDocument(str(path))
    pages = []
    try:
        for i, page in enumerate(pdf):
            text = page.get_textpage().get_text_bounded()
            images = sum(1 for _ in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=4))
            info = {"page": i + 1, "text": text, "images": images, "size_pt": [page.get_width(), page.get_height()]}
            if render_dir is not None:
                out = Path(render_dir) / f"page_{i + 1:02d}.png"
                out.parent.mkdir(parents=True, exist_ok=True)
                page.render(scale=scale).to_pil().save(out)
                info["png"] = str(out)
            pages.append(info)
    finally:
        pdf.close()
    return pages


def build(root: str | Path = ".", verdicts: dict | None = None, timestamp: int = 0) -> dict:
    """The paper stage: generated inputs, the PDF, and its record (pages, images, timings, sha256)."""
    import hashlib
    import time

    root = Path(root)
    t0 = time.perf_counter()
    files = write_generated(root, verdicts)
    t1 = time.perf_counter()
    pdf = compile_pdf(root / "paper/main.typ", root / "paper/main.pdf", timestamp)
    t2 = time.perf_counter()
    pages = read_pdf(pdf)
    return {"pages": len(pages), "images": sum(p["images"] for p in pages), "figures": len(files["figures.json"]),
            "tables": len(files["tables.json"]), "findings": {f["id"]: f["verdict"] for f in files["findings.json"]},
            "verdicts": [{k: f[k] for k in ("id", "title", "verdict", "reason", "rule", "effect", "ci95", "n_seeds",
                                           "mde", "scope", "parts")} for f in files["findings.json"]],
            "controls": files["controls.json"],
            "bytes": pdf.stat().st_size, "sha256": hashlib.sha256(pdf.read_bytes()).hexdigest(),
            "generate_s": t1 - t0, "typeset_s": t2 - t1}
