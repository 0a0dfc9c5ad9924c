"""Mechanism attribution: which of the world's mechanisms a finding needs.

For the baseline world and for each single ablation of world/ablations.py, the finding's comparison is trained and
judged in a work directory of its own (a piece): a scratch copy of this checkout whose params.yaml is the profile's,
with the world ablated, the runs cut to the comparison's (each with `--seeds` seeds) and the filter arms to those it
compares. `dvc repro` runs its params, sample, tokenizer, filter, train and evaluate stages there, one at a time (a
stage already run with the same inputs is skipped, a finished run kept), then the figures stage's comparisons
(analysis/study.py) give the comparison's evidence and paper/findings.py judges it, as the paper stage does. A
piece judged before with the same params is not run again (its record <piece>/attribution_f<N>.json: delete it to
judge again).

    python -m vlscale.attribution --finding 2 [--ablations region_noise,culture_boost|all] [--profile study]
        [--examples 200000] [--seeds 2] [--key report] [--work ../attribution] [--out results/attribution]

`--examples N` runs it at a stated smaller compute: the pool and the examples seen (and the schedule's lengths and
cadences) scaled by N / the profile's examples seen, everything else the profile's. It prints the compute and writes
<out>/finding<N>_<profile>_<full|N...>_<key>.{csv,md,json,png}: per ablation and part, the effect with its 95%
interval and verdict, the change from the baseline, and whether the finding needs the mechanism.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from scipy import stats

from vlscale.analysis import evidence as ev
from vlscale.config import overlay_path, read_params, validate
from vlscale.files import read_json, write_json
from vlscale.world.ablations import ABLATIONS, ablate, ablation_names

ROOT = Path(__file__).resolve().parents[2]
BASELINE = "baseline"
# train-block keys that follow the compute (the profile's value times N / its examples seen), as tools/ladder.py
SCALED = ("examples_seen", "warmup_examples", "cooldown_examples", "timescale_examples", "checkpoint_every_examples",
          "probe_every_examples")
STAGES = ("params", "sample", "tokenizer", "filter", "train", "evaluate")  # a piece's stages, in dvc.yaml's order
Z95 = 1.959963984540054


@dataclass(frozen=True)
class Comparison:
    """What a finding compares: the claim tested, its runs (params.yaml's entries, replicated over seeds), the filter
    arms they need, and the parts of paper/findings.py's check that test it, each with the sign the claim gives the
    effect."""
    claim: str
    runs: tuple[str, ...]
    arms: tuple[str, ...]
    parts: dict[str, int]


COMPARISONS = {
    2: Comparison("the Culture error gain from 10% to 100% data is positive and larger than the Western gain",
                  ("s10", "s100"), ("random",),
                  {"Culture error gain, 10% → 100% data": +1, "Culture gain minus Western gain": +1}),
    6: Comparison("the CLIP filter lowers the Western error and raises Culture and Fairness against the English "
                  "baseline", ("f_clip", "f_english"), ("clip", "english"),
                  {"CLIP minus English, Western error": -1, "CLIP minus English, Culture error": +1,
                   "CLIP minus English, Fairness error": +1}),
}


def comparison(finding: int) -> Comparison:
    if finding not in COMPARISONS:
        raise ValueError(f"finding {finding}: no comparison to attribute; findings with one: {sorted(COMPARISONS)}")
    return COMPARISONS[finding]


def piece_params(base: dict, finding: int, ablation: str, seeds: int, key: str | None,
                 examples: int | None) -> dict:
    """The params of one piece: `base` (read_params' resolved values of a profile) with the world ablated (none for
    the baseline), the comparison's runs with `seeds` seeds, its filter arms, the evaluation key and, with
    `examples`, the compute scaled to it. Validated."""
    if seeds < 2:
        raise ValueError(f"--seeds {seeds}: an interval needs the training noise of at least 2 seeds")
    p = json.loads(json.dumps(base))  # a deep copy
    c = comparison(finding)
    if ablation != BASELINE:
        p["world"] = json.loads(ablate(p["world"], ablation, f"the {p['profile']} profile's world").model_dump_json())
    missing = [r for r in c.runs if r not in p["runs"]]
    if missing:
        raise ValueError(f"finding {finding}: the {p['profile']} profile has no run {missing} (its runs: "
                         f"{', '.join(p['runs'])})")
    p["runs"] = {f"{r}_seed{s}" if s else r: {**{k: v for k, v in p["runs"][r].items() if k != "seed"},
                                               **({"seed": s} if s else {})}
                 for r in c.runs for s in range(seeds)}
    p["filter"]["arms"] = list(c.arms)
    if key is not None:
        p["evaluate"]["use_key"] = key
    if examples is not None:
        factor = examples / p["train"]["examples_seen"]
        p["sample"]["pool_size"] = max(1, round(p["sample"]["pool_size"] * factor))
        for k in SCALED:
            if p["train"].get(k) is not None:
                p["train"][k] = max(1, round(p["train"][k] * factor))
    validate(p, f"the {ablation} piece of finding {finding}")
    return p


def compute(p: dict) -> dict:
    """The training compute of a piece: examples seen per run (its budget's share) and in all."""
    seen = p["train"]["examples_seen"]
    runs = {name: round(seen * run.get("budget", 1.0)) for name, run in p["runs"].items()}
    scorer = p["filter"]["scorer"]["examples"] if "clip" in p["filter"]["arms"] else 0
    return {"runs": runs, "examples_seen": sum(runs.values()), "scorer_examples": scorer,
            "pool_size": p["sample"]["pool_size"]}


def digest(p: dict) -> str:
    return hashlib.sha256(json.dumps(p, sort_keys=True).encode()).hexdigest()[:12]


@contextmanager
def _cwd(path: Path):
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def prepare(folder: Path, p: dict) -> Path:
    """`folder` as a scratch copy of this checkout (a git repository, for DVC) whose params.yaml is `p` and whose
    profile overlay is empty (p holds the profile's values already)."""
    from vlscale.pipeline import copy_checkout

    folder.mkdir(parents=True, exist_ok=True)
    copy_checkout(ROOT, folder)
    if not (folder / ".git").exists():
        subprocess.run(["git", "init", "-q"], cwd=folder, check=True)
    (folder / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False, allow_unicode=True))
    overlay_path(folder / "params.yaml", p["profile"]).write_text("{}\n")
    return folder


def reproduce(folder: Path, name: str, log=print) -> None:
    """`dvc repro` of the piece's stages up to evaluate, stage by stage (a stage whose inputs did not change is
    skipped), on the piece's own copy of lib/; progress on `log`, each stage's output in <folder>/attribution.log."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "PYTHONPATH": str(folder / "lib")}
    with open(folder / "attribution.log", "a") as f:
        for stage in STAGES:
            t0 = time.time()
            f.write(f"\n### dvc repro --single-item {stage}\n")
            f.flush()
            r = subprocess.run(["dvc", "repro", "--single-item", stage], cwd=folder, stdout=f,
                               stderr=subprocess.STDOUT, env=env)
            if r.returncode:
                raise SystemExit(f"{name}: stage {stage} failed; see {folder / 'attribution.log'}")
            log(f"  {name}: {stage} done ({time.time() - t0:.0f} s)")


def judge_piece(folder: Path, finding: int) -> dict:
    """The finding's parts in a piece whose runs are evaluated: the figures stage's comparisons of its results
    (analysis/study.comparisons over every run, with the stage's bootstrap: the evidence metrics/figures.json would
    hold, without the figures, which need natural runs), judged by paper/findings.py with the piece's verdicts params."""
    from vlscale.analysis import report, results, study, uncertainty
    from vlscale.analysis.stage import RESULTS_DIR, stage_params
    from vlscale.plan import study_plan

    params = read_params(folder / "params.yaml")
    p = stage_params(params)
    with _cwd(folder):
        plan = study_plan(p)
        tidy = results.select_source(results.read_results(RESULTS_DIR, plan.runs), plan.source)
        items, facts = results.read_items(RESULTS_DIR, plan.runs), results.read_analog_facts(RESULTS_DIR, plan.runs)
    est = uncertainty.estimate(tidy, items, n_boot=p.figures.bootstrap, seed=p.figures.seed)
    records = study.comparisons(est, 100 * p.filter.keep_fraction, facts, list(results.TABLE1_TASKS), p.figures.seed)
    fig = {report.SOURCE: plan.source, report.PLAN: plan.record(), report.EVIDENCE: {r["name"]: r for r in records}}
    return judge_figures(fig, finding, validate({"profile": params["profile"], "verdicts": params["verdicts"]}).verdicts)


def judge_figures(fig: dict, finding: int, verdicts) -> dict:
    """The comparison's parts of `finding` judged from a figures record (metrics/figures.json's evidence), and their
    combined verdict."""
    from vlscale.paper import findings

    (judged,) = [f for f in findings.judge(fig, {}, verdicts) if f["id"] == finding]
    parts = {p["label"]: p for p in judged["parts"]}
    wanted = comparison(finding).parts
    unknown = [label for label in wanted if label not in parts]
    if unknown:
        raise ValueError(f"finding {finding}: paper/findings.py has no part {unknown}; its parts: {list(parts)}")
    shown = {label: parts[label] for label in wanted}
    combined = ev.combine({k: ev.Verdict(p["verdict"], p["reason"], p.get("rule", "")) for k, p in shown.items()})
    return {"finding": finding, "parts": shown, "verdict": combined.verdict, "reason": combined.reason}


def finished(work: Path, finding: int, ablation: str, p: dict) -> dict | None:
    """The record of a piece judged before with params `p`, or None."""
    path = work / ablation / f"attribution_f{finding}.json"
    return read_json(path) if path.is_file() and read_json(path).get("params_digest") == digest(p) else None


def run_piece(work: Path, finding: int, ablation: str, p: dict, log=print) -> dict:
    """Train, evaluate and judge one piece (skipped when its record for these params exists); returns its record."""
    folder = work / ablation
    record_path = folder / f"attribution_f{finding}.json"
    if (done := finished(work, finding, ablation, p)) is not None:
        log(f"  {ablation}: finished before, skipped")
        return done
    t0 = time.time()
    prepare(folder, p)
    reproduce(folder, ablation, log)
    record = judge_piece(folder, finding) | {"ablation": ablation, "params_digest": digest(p), "compute": compute(p),
                                             "wall_s": round(time.time() - t0, 1), "world": p["world"]}
    write_json(record_path, record)
    return record


def _ci(part: dict) -> tuple[float | None, float | None]:
    return tuple(part.get("ci95") or (None, None))


def part_se(part: dict) -> tuple[float, float]:
    """A judged part's standard error and degrees of freedom, as analysis/evidence.difference built its interval: the
    pooled seed variance over both sides' seeds plus the paired image resamples' variance, with Welch-Satterthwaite's
    degrees of freedom from the seed variance's. A record without those fields (not from evidence.difference): its
    interval's half-width / 1.96 and a normal approximation."""
    keys = ("seed_sd", "seed_df", "image_se", "n_seeds")
    if all(part.get(k) is not None for k in keys) and part["seed_df"] >= 1 and np.isfinite(part["seed_sd"]):
        n_a, n_b = part["n_seeds"]
        seed_part = part["seed_sd"] ** 2 * (1 / n_a + 1 / n_b)
        total = seed_part + part["image_se"] ** 2
        df = part["seed_df"] * (total / seed_part) ** 2 if seed_part > 0 else np.inf
        return float(np.sqrt(total)), float(df)
    lo, hi = _ci(part)
    return ((hi - lo) / (2 * Z95) if lo is not None and hi is not None else np.nan), np.inf


def change_of(part: dict, base: dict) -> dict:
    """An ablated world's part minus the world as built's: the two pieces are trained and tested apart (independent),
    so the standard errors add in quadrature, with Welch-Satterthwaite's degrees of freedom; a 95% interval."""
    (se_a, df_a), (se_b, df_b) = part_se(part), part_se(base)
    effect, b = part.get("effect"), base.get("effect")
    if effect is None or b is None or not np.isfinite(se_a) or not np.isfinite(se_b):
        return {"change": None if effect is None or b is None else effect - b, "se": np.nan, "df": np.nan}
    se = float(np.hypot(se_a, se_b))
    terms = [s ** 4 / d for s, d in ((se_a, df_a), (se_b, df_b)) if np.isfinite(d)]
    df = float(se ** 4 / sum(terms)) if len(terms) == 2 else np.inf  # a normal side makes the total nearly normal
    return {"change": effect - b, "se": se, "df": df}


def rows(records: dict[str, dict], finding: int) -> list[dict]:
    """One row per ablation and part: its effect, interval and verdict, and its change from the baseline with a 95%
    interval (change_of)."""
    signs, base = comparison(finding).parts, records[BASELINE]["parts"]
    out = []
    for name, rec in records.items():
        for label, part in rec["parts"].items():
            c = change_of(part, base[label]) if name != BASELINE else {"change": None, "se": np.nan, "df": np.nan}
            known = c["change"] is not None and np.isfinite(c["se"])
            half = float(stats.t.ppf(0.975, c["df"])) * c["se"] if known else None
            out.append({"ablation": name, "part": label, "sign": signs[label], "effect": part.get("effect"),
                        "lo": _ci(part)[0], "hi": _ci(part)[1], "n_seeds": part.get("n_seeds"),
                        "verdict": part["verdict"], "change": c["change"],
                        "change_lo": c["change"] - half if known else None,
                        "change_hi": c["change"] + half if known else None,
                        "change_se": c["se"] if known else None, "change_df": c["df"] if known else None,
                        "finding_verdict": rec["verdict"]})
    return out


# one-sided levels: a fall is shown at 2.5% (Holm over the parts, the 95% interval's side), a fall smaller than the
# margin at 5% (each part, the two one-sided tests' convention: the 90% interval's lower end)
FALL_ALPHA, EQUIVALENCE_ALPHA = 0.025, 0.05
MARGIN = 0.5  # the largest fall, as a share of the world as built's effect, that still counts as "not needed"


def check_margin(margin: float) -> None:
    if not 0 < margin < 1:
        raise ValueError(f"--margin {margin}: the share of the effect a mechanism may carry and still be 'not "
                         "needed' lies strictly between 0 and 1")


def needs(records: dict[str, dict], table: list[dict], margin: float = MARGIN) -> dict[str, str]:
    """Per ablation, whether the finding needs the mechanism, judged on the parts the world as built reproduces (a part
    it does not reproduce has nothing to attribute):
    - "yes": one of them fell against the claim without the mechanism: the change's one-sided p-value in the claim's
      opposite direction below FALL_ALPHA after Holm's correction over those parts (for "any part", its first step:
      the smallest p below FALL_ALPHA / their number);
    - "no": each of them is reproduced without it and fell by less than `margin` times its effect in the world as
      built (non-inferiority: the change's one-sided lower bound at EQUIVALENCE_ALPHA, in the claim's direction,
      above -margin * |effect|); an intersection of tests, so no correction;
    - "undecided" otherwise (too noisy to tell), and "n/a" for every ablation when the world as built reproduces no
      part."""
    check_margin(margin)
    base = records[BASELINE]["parts"]
    shown = [label for label, part in base.items() if part["verdict"] == ev.REPRODUCES]
    out = {}
    for name, rec in records.items():
        if name == BASELINE:
            continue
        if not shown:
            out[name] = "n/a"
            continue
        mine = {r["part"]: r for r in table if r["ablation"] == name and r["part"] in shown}
        known = {k: r for k, r in mine.items() if r["change_se"] is not None}
        # one-sided p of "the effect fell" (small when sign * change is far below zero); Holm's first step decides
        # whether any part fell: the smallest p against FALL_ALPHA / the number of parts
        p_fell = [float(stats.t.cdf(r["sign"] * r["change"] / r["change_se"], r["change_df"])) for r in known.values()]
        fell = bool(p_fell) and min(p_fell) <= FALL_ALPHA / len(p_fell)
        within = len(known) == len(shown) and all(
            r["sign"] * r["change"] - stats.t.ppf(1 - EQUIVALENCE_ALPHA, r["change_df"]) * r["change_se"]
            > -margin * abs(base[k]["effect"]) for k, r in known.items())
        kept = all(rec["parts"][label]["verdict"] == ev.REPRODUCES for label in shown)
        out[name] = "yes" if fell else "no" if kept and within else "undecided"
    return out


# what a reader must know to read "needs": the benchmarks are drawn from the ablated world too
ABLATED_BENCHMARKS = ("Each world is the whole world with the mechanism off, its benchmarks included: where the "
                      "mechanism also shapes test images (the regional looks, income-dependent appearance), the "
                      "ablated world measures the finding on benchmarks without it as well.")
NEEDS_RULE = ("Judged on the parts the world as built reproduces. A mechanism is needed when one of them fell against "
              "the claim without it (the change from the world as built, the two worlds' standard errors in quadrature "
              "with Welch-Satterthwaite degrees of freedom: one-sided p below 0.025 after Holm's correction over the "
              "parts); not needed when each is still reproduced and fell by less than {margin:.0%} of its effect "
              "(non-inferiority: the change's one-sided 95% bound); else undecided.")


def _fmt(x, signed=True):
    return "–" if x is None else (f"{x:+.2f}" if signed else f"{x:.2f}")


def write_outputs(records: dict[str, dict], finding: int, out: Path, stem: str, meta: dict) -> list[Path]:
    """<out>/<stem>.csv (one row per ablation and part), .md (with which mechanisms the finding needs), .png (each
    part's effect and interval per ablation) and .json (the records and `meta`)."""
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    table = rows(records, finding)
    margin = meta.get("margin", MARGIN)
    need = needs(records, table, margin)
    frame = pd.DataFrame(table)
    frame["needs_mechanism"] = [need.get(name, "") for name in frame["ablation"]]
    frame.to_csv(out / f"{stem}.csv", index=False)
    lines = [f"# Mechanism attribution of finding {finding}", "",
             f"Claim: {meta['claim']}. Profile {meta['profile']}, {meta['scale']}; {meta['seeds']} seeds per run; "
             f"evaluation key {meta['key']}. Each row: the world with one mechanism switched off "
             f"(lib/vlscale/world/ablations.py), its comparison trained and judged in its own work directory. "
             f"Compute per piece: {meta['compute']['examples_seen']:,} examples seen over "
             f"{len(meta['compute']['runs'])} runs (pool {meta['compute']['pool_size']:,}"
             + (f", CLIP scorer {meta['compute']['scorer_examples']:,} examples" if meta['compute']['scorer_examples']
                else "") + f"); {len(records)} pieces.", "",
             "| ablation | mechanism switched off | " + " | ".join(f"{label} (change)" for label in
                                                           comparison(finding).parts) + " | verdict | needs it |",
             "|---|---|" + "---|" * len(comparison(finding).parts) + "---|---|"]
    for name, rec in records.items():
        cells = []
        for label in comparison(finding).parts:
            r = next(x for x in table if x["ablation"] == name and x["part"] == label)
            cell = f"{_fmt(r['effect'])} [{_fmt(r['lo'])}, {_fmt(r['hi'])}] {r['verdict']}"
            if name != BASELINE and r["change"] is not None:
                cell += f" ({_fmt(r['change'])} [{_fmt(r['change_lo'])}, {_fmt(r['change_hi'])}])"
            cells.append(cell)
        what = "none" if name == BASELINE else ABLATIONS[name].mechanism.replace("|", "\\|")  # a pipe ends a cell
        lines.append(f"| {name} | {what} | " + " | ".join(cells) + f" | {rec['verdict']} | {need.get(name, '')} |")
    needed = [n for n, v in need.items() if v == "yes"]
    planned = meta.get("pieces_planned", list(records))
    if len(records) < len(planned):
        lines += ["", f"{len(records)} of {len(planned)} worlds done; still to run: "
                  f"{', '.join(p for p in planned if p not in records)}."]
    base = records[BASELINE]["parts"]
    unshown = [label for label, part in base.items() if part["verdict"] != ev.REPRODUCES]
    if "n/a" in need.values():
        summary = (f"The world as built reproduces no part of finding {finding}: there is nothing to attribute, and "
                   "no mechanism is judged.")
    else:
        nothing = "none of the mechanisms ablated" + (" so far" if len(records) < len(planned) else "")
        summary = (f"Finding {finding} needs: {', '.join(needed) if needed else nothing}"
                   + (f"; not needed: {', '.join(n for n, v in need.items() if v == 'no')}"
                      if "no" in need.values() else "")
                   + (f"; undecided: {', '.join(n for n, v in need.items() if v == 'undecided')}"
                      if "undecided" in need.values() else "") + ".")
        if unshown:
            summary += (f" Judged on what the world as built reproduces; not on {', '.join(unshown)}, which it does "
                        "not reproduce.")
    rule = NEEDS_RULE.format(margin=margin)
    lines += ["", summary, "", rule, "", ABLATED_BENCHMARKS]
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    write_json(out / f"{stem}.json", {**meta, "margin": margin, "needs": need, "needs_rule": rule, "records": records})
    return [out / f"{stem}.{ext}" for ext in ("csv", "md", "json")] + [figure(table, need, finding, out / f"{stem}.png")]


VERDICT_COLOURS = {ev.REPRODUCES: "#4daf4a", ev.DOES_NOT: "#e41a1c", ev.INCONCLUSIVE: "#d8b300",
                   ev.NOT_TESTED: "#999999"}


def figure(table: list[dict], need: dict[str, str], finding: int, path: Path) -> Path:
    """One panel per part: each ablation's effect with its 95% interval, coloured by verdict, the baseline's as a
    band; zero dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(comparison(finding).parts)
    names = list(dict.fromkeys(r["ablation"] for r in table))
    fig, axes = plt.subplots(1, len(labels), figsize=(3.6 * len(labels), 0.36 * len(names) + 1.2), sharey=True,
                             squeeze=False)
    for ax, label in zip(axes[0], labels):
        for i, name in enumerate(names):
            r = next(x for x in table if x["ablation"] == name and x["part"] == label)
            if r["effect"] is None:
                continue
            if name == BASELINE and r["lo"] is not None:
                ax.axvspan(r["lo"], r["hi"], color="#dddddd", zorder=0)
            err = None if r["lo"] is None else [[r["effect"] - r["lo"]], [r["hi"] - r["effect"]]]
            ax.errorbar(r["effect"], i, xerr=err, fmt="o", ms=4, capsize=2, color=VERDICT_COLOURS[r["verdict"]])
        ax.axvline(0, color="k", lw=0.6, ls="--")
        ax.set_title(f"{label}\n(claim: {'>' if comparison(finding).parts[label] > 0 else '<'} 0)", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.set_xlabel("effect (pp)", fontsize=7)
    said = {"yes": "needed", "no": "not needed", "undecided": "undecided", "n/a": "not judged"}
    axes[0][0].set_yticks(range(len(names)), [f"{n} ({said[need[n]]})" if n in need else n for n in names],
                          fontsize=7)
    axes[0][0].set_ylim(len(names) - 0.5, -0.5)
    handles = [plt.Line2D([], [], marker="o", ls="", color=c) for c in VERDICT_COLOURS.values()]
    fig.legend(handles, list(VERDICT_COLOURS), ncol=4, fontsize=7, loc="lower center", frameon=False)
    fig.suptitle(f"Finding {finding} under each single ablation", fontsize=8)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def attribute(finding: int, ablations: list[str], profile: str = "study", examples: int | None = None,
              seeds: int = 2, key: str | None = None, work: Path | None = None, out: Path | None = None,
              params_file: Path = ROOT / "params.yaml", log=print, report_only: bool = False,
              margin: float = MARGIN) -> list[Path]:
    """The baseline and each ablation of `ablations` for `finding` (module docstring); returns the files written.
    `report_only`: run nothing; write the table of the pieces already judged (the baseline among them)."""
    check_margin(margin)
    base = read_params(params_file, profile)
    pieces = {name: piece_params(base, finding, name, seeds, key, examples) for name in [BASELINE, *ablations]}
    key = pieces[BASELINE]["evaluate"]["use_key"]
    scale = f"N{examples}" if examples is not None else "full"
    work = (work or ROOT.parent / "attribution") / f"{profile}_{scale}_{key}" / f"f{finding}"
    c = compute(pieces[BASELINE])
    log(f"finding {finding}: {len(pieces)} pieces (baseline, {', '.join(ablations)}) in {work}; each trains "
        f"{len(c['runs'])} runs, {c['examples_seen']:,} examples seen in all (pool {c['pool_size']:,}"
        + (f", CLIP scorer {c['scorer_examples']:,}" if c["scorer_examples"] else "") + ")")
    meta = {"finding": finding, "claim": comparison(finding).claim, "profile": profile, "scale": (
        f"the compute scaled to {examples:,} examples seen per run" if examples else "the profile's compute"),
        "seeds": seeds, "key": key, "compute": c, "ablations": ablations, "margin": margin}
    records, written = {}, []
    for i, (name, p) in enumerate(pieces.items(), 1):
        if report_only:
            if (done := finished(work, finding, name, p)) is None:
                if name == BASELINE:
                    raise ValueError(f"--report: the baseline of finding {finding} in {work} is not judged yet")
                log(f"  {name}: not run yet")
                continue
            records[name] = done
        else:
            log(f"[{i}/{len(pieces)}] {name}")
            records[name] = run_piece(work, finding, name, p, log)
        log(f"  {name}: {records[name]['verdict']}")
        # the table so far after every piece (a long attribution is built up piece by piece; `pieces_done` says how far)
        written = write_outputs(records, finding, out or ROOT / "results/attribution",
                                f"finding{finding}_{profile}_{scale}_{key}",
                                meta | {"pieces_done": list(records), "pieces_planned": list(pieces)})
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--finding", type=int, required=True, choices=sorted(COMPARISONS))
    parser.add_argument("--ablations", default="all", help=f"comma-separated, or all: {', '.join(ABLATIONS)}")
    parser.add_argument("--profile", default="study")
    parser.add_argument("--examples", type=int, help="a smaller compute: examples seen per run (pool scaled alike)")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--key", choices=("dev", "report"), help="evaluation key (default: the profile's use_key)")
    parser.add_argument("--work", type=Path, help="work directories' root (default: ../attribution)")
    parser.add_argument("--out", type=Path, help="where the table and figure go (default: results/attribution)")
    parser.add_argument("--margin", type=float, default=MARGIN,
                        help="the largest fall, as a share of a part's effect in the world as built, that still counts "
                             f"as 'not needed' (default {MARGIN})")
    parser.add_argument("--report", action="store_true",
                        help="run nothing: write the table of the pieces judged so far (a long attribution in parts)")
    args = parser.parse_args(argv)
    try:
        names = ablation_names(args.ablations)
    except ValueError as e:
        parser.error(str(e))
    for path in attribute(args.finding, names, args.profile, args.examples, args.seeds, args.key, args.work, args.out,
                          report_only=args.report, margin=args.margin):
        print(path)


if __name__ == "__main__":
    main()
