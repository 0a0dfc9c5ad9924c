"""The figures stage's report: build_report (every table, with its uncertainty), draw (the figures), write_report
(figures, tables and `dvc plots` tables) and summary (metrics/figures.json's record); analysis/stage.py runs them.

    tidy, items = results.read_results("results/evaluate"), results.read_items("results/evaluate")
    report = build_report(tidy, items, source="analog", n_boot=1000, seed=0)
    write_report(report, ".")
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from vlscale.analysis import curation as curation_lib
from vlscale.analysis import figures, latex, plots, results, scaling, study, uncertainty
from vlscale.analysis import frequency as frequency_lib
from vlscale.analysis import tradeoff as tradeoff_lib
from vlscale.analysis.results import scale_label
from vlscale.evals import groups

METHOD_NOTE = {
    "bootstrap": "95% intervals from a paired bootstrap over test images: one set of image resamples per "
                 "benchmark, shared by every run, seed and checkpoint",
    "binomial": "no per-item outcomes: 95% intervals from each task's binomial standard error, independent "
                "across runs and checkpoints (gains and fits are then not paired)",
    "mixed": "95% intervals from a paired bootstrap over test images for the tasks with per-item outcomes; "
             "tasks_without_items use their binomial standard error",
}


# metrics/figures.json keys other stages read (the figures stage adds them to summary's)
PLAN = "plan"  # vlscale.plan's record: the pool, its benchmark source, the arms and runs it skipped
PROVENANCE = "provenance"  # the profile, the params, package versions, the runs and result files read


@dataclass
class Report:
    """Everything the figures stage shows and writes, for one benchmark source and one model."""

    source: str
    tidy: pd.DataFrame
    est: uncertainty.Estimates
    missing: dict[str, list[str]]
    gains: pd.DataFrame               # from_pct -> to_pct (Figure 1 left)
    all_gains: dict[tuple, pd.DataFrame]  # (from_pct, to_pct) -> gains, for every reported pair
    fits: pd.DataFrame
    fig1: pd.DataFrame
    fig2: pd.DataFrame
    table1: pd.DataFrame
    table3: pd.DataFrame
    table4: pd.DataFrame
    association: pd.DataFrame
    wilcoxon: dict[str, dict]
    from_pct: float = 10
    to_pct: float = 100
    english_like: tuple[str, ...] = ()  # low-resource average also reported without these languages
    facts: dict = field(default_factory=dict)  # the analogs' draw (results.read_analog_facts)
    figures: dict = field(default_factory=dict)
    curation: curation_lib.Curation | None = None  # Figures 4, 5 and Tables 13, 14 (curated runs)
    model: str = ""  # the model of the paper's single-model tables (the one with the most natural runs)
    evidence: list[dict] = field(default_factory=list)  # analysis/study.py: every comparison with seeds and images
    models: pd.DataFrame = field(default_factory=pd.DataFrame)  # Figure 6: group averages of every model's runs
    not_drawn: dict[str, str] = field(default_factory=dict)  # figures of real sets not given: key -> what they lack
    frequency: frequency_lib.Law | None = None  # the concept-frequency law (analysis/frequency.py), None: not measured
    tradeoff: tradeoff_lib.Tradeoff | None = None  # the quality-quantity trade-off (analysis/tradeoff.py)

    @property
    def means(self) -> pd.DataFrame:
        """Group averages per run and checkpoint (Estimates.groups)."""
        return self.est.groups


WITHOUT_ENGLISH_LIKE = "multilingual_low_resource_without_english_like"

# metrics/figures.json keys other stages read (summary builds them)
SOURCE = "source"  # the benchmarks reported: "analog" | "real"
BENCHMARKS = "benchmarks"  # per benchmark with results: its tasks and its largest test set (n)
GROUP_AVERAGES_BY_SCALE = "group_averages_by_scale"  # per data scale label ("1%", ...) and group: error, interval
MODEL = "model"  # the model of the single-model tables
FIGURE6 = "figure6"  # per model, scale and group: the final checkpoint's error
EVIDENCE = "evidence"  # the study's comparisons by name (analysis/study.py)
N_BOOT = "n_boot"  # image resamples of the bootstrap
ANALOG_KEY_USE = "analog_key_use"  # which held-out key the analogs were drawn with
CONCEPT_FREQUENCY = "concept_frequency"  # the concept-frequency law (frequency.summary)
TRADEOFF = "tradeoff"  # the quality-quantity trade-off (tradeoff.summary)


def build_report(tidy: pd.DataFrame, items: pd.DataFrame | None = None, source: str = "analog",
                 n_boot: int = 1000, seed: int = 0, from_pct: float = 10, to_pct: float = 100,
                 facts: dict | None = None, english_like_share: float = 0.25,
                 keep_fraction: float | None = None, model: str | None = None,
                 frequency_inputs: frequency_lib.Inputs | None = None) -> Report:
    """Compute every table of the stage from the tidy results and the per-item outcomes (None or empty:
    binomial intervals), fits over the Table 1 tasks present. facts: results.read_analog_facts; the
    XM3600 languages whose captions equal English on at least `english_like_share` of the images are
    named, and the low-resource average is also reported without them. The curated runs (rebalanced, filter
    arms) go to `curation` (analysis/curation.py; keep_fraction: filter.keep_fraction, for the random arm).
    frequency_inputs (frequency.read_inputs: concept counts and test-image concepts) adds the concept-frequency law
    of the model's natural runs, and the subsets' sizes for the quality-quantity trade-off's repeats (`tradeoff`:
    analysis/tradeoff.py, every filter arm and the whole pool at equal examples seen)."""
    natural = results.natural(results.select_source(tidy, source))  # curated runs: analysis/curation.py
    runs_per_model = natural.groupby("model")["run"].nunique()
    if model is not None and model not in runs_per_model.index:
        raise ValueError(f"no natural runs of model {model!r}; the results hold {sorted(runs_per_model.index)}")
    model = model or sorted(runs_per_model.index, key=lambda m: (-runs_per_model[m], m))[0]
    d = natural[natural["model"] == model].reset_index(drop=True)  # the model axis: Figure 6 (report.models)
    # the analogs' draw says nothing of the real sets: their chance levels come from their own sizes
    facts = (facts or {}) if source == "analog" else results.real_set_facts(tidy)
    english_like = results.english_like_languages(facts, english_like_share)
    kept = [lang for lang in groups.LOW_RESOURCE if lang not in english_like]
    extra = {WITHOUT_ENGLISH_LIKE: tuple(groups.xm3600_task(dr, lang) for dr in ("i2t", "t2i") for lang in kept)}
    est = uncertainty.estimate(d, items, n_boot=n_boot, seed=seed, extra_groups=extra)
    t1 = results.TABLE1_TASKS
    fits = scaling.fit_tasks(d[d["task"].isin(t1)], n_boot=n_boot, seed=seed, draws=est.fit_draws())
    pcts = results.scales(d)
    pairs = list(zip(pcts, pcts[1:]))
    pairs += [(from_pct, to_pct)] if (from_pct, to_pct) not in pairs else []
    all_gains = {p: est.gains(*p) for p in pairs}
    # Figure 6 (data x model x compute): every natural run of every model, on the same image resamples
    every = est if len(runs_per_model) == 1 else uncertainty.estimate(natural, items, n_boot=n_boot, seed=seed)
    models = every.groups[every.groups["group"].isin(plots.FIG6_GROUPS)].reset_index(drop=True)
    # every run of the model, natural and curated, on the same image resamples: the study's comparisons
    of_model = results.select_source(tidy, source)
    of_model = of_model[of_model["model"] == model].reset_index(drop=True)
    est_all = uncertainty.estimate(of_model, items, n_boot=n_boot, seed=seed, extra_groups=extra)
    keep_pct = 100.0 * keep_fraction if keep_fraction is not None else None
    evidence = study.comparisons(est_all, keep_pct, facts, list(results.TABLE1_TASKS), seed)
    evidence += study.model_comparisons(every) if len(runs_per_model) > 1 else []
    all_gains = {p: with_training_noise(g, evidence, model) for p, g in all_gains.items()}
    return Report(
        source=source, tidy=d, est=est, missing=results.missing_tasks(d), gains=all_gains[(from_pct, to_pct)],
        all_gains=all_gains, fits=fits, fig1=results.figure1_data(est.by_scale),
        fig2=results.figure2_data(est.scale_groups), table1=results.table1(est.by_scale, fits),
        table3=results.table3(est.by_scale), table4=results.table4(est.disparity),
        association=results.association_bias(est.by_scale),
        wilcoxon={name: uncertainty.wilcoxon_scales(est.by_scale, groups.AVERAGES[name], from_pct, to_pct)
                  for name in ("western", "culture")},
        from_pct=from_pct, to_pct=to_pct, english_like=tuple(english_like), facts=facts,
        curation=curation_lib.build_curation(of_model, items, source, keep_fraction, n_boot, seed, est=est_all),
        model=model, models=models,
        evidence=evidence,
        frequency=None if frequency_inputs is None else frequency_lib.build_law(
            of_model, items, frequency_inputs, source, keep_pct, n_boot, seed),
        tradeoff=tradeoff_lib.build_tradeoff(
            est_all, keep_pct, frequency_lib.subset_sizes(frequency_inputs.counts) if frequency_inputs else None),
    )


def with_training_noise(gains: pd.DataFrame, evidence: list[dict], model: str) -> pd.DataFrame:
    """Estimates.gains with each interval replaced by the study's (analysis/study.py: seeds and test images) where
    the study has the comparison; `interval` says which the row carries ("seeds+images" or "images")."""
    by_name = {r["name"]: r for r in evidence}
    out = gains.assign(interval="images", n_seeds_from=np.nan, n_seeds_to=np.nan)
    for i, row in out.iterrows():
        r = by_name.get(f"gain/{row['group']}/{row['from_pct']:g}_to_{row['to_pct']:g}")
        if r is None or row["model"] != model:
            continue
        out.loc[i, ["lo", "hi", "n_seeds_from", "n_seeds_to"]] = [r["lo"], r["hi"], r["n_a"], r["n_b"]]
        out.loc[i, "interval"] = "seeds+images" if r["seeds_measured"] else "images"
    return out


MULTILINGUAL = ("multilingual_low_resource", "multilingual_high_resource")


def unmeasured_figures(report: Report) -> dict[str, str]:
    """The figures whose benchmarks the report has no result of (on the real sets, those not given): key -> what
    the figure needs. They are left out rather than drawn as empty panels."""
    out = {}
    if not report.fig2["error_pct"].notna().any():
        out["fig2_xm3600"] = "XM3600 retrieval"
    if not len(report.association) or report.association.isna().all().all():
        out["fig3_association_bias"] = "FairFace's occupation pairs"
    cur = report.curation
    if cur is not None and not cur.rebalance[cur.rebalance["group"].isin(MULTILINGUAL)]["diff"].notna().any():
        out["fig5_rebalancing"] = "XM3600 retrieval of rebalanced runs"
    return out


def draw(report: Report) -> dict:
    """The stage's figures (matplotlib Figures by file stem); also kept on report.figures."""
    makers = {
        "fig1_gains": lambda: plots.figure1_gains(report.gains),
        "fig1_curves": lambda: plots.figure1_curves(report.fig1),
        "fig2_xm3600": lambda: plots.figure2(report.fig2, report.from_pct, report.to_pct),
        "fig3_association_bias": lambda: plots.figure3(report.association),
        "learning_curves": lambda: plots.learning_curves(report.means),
        "fig6_models": lambda: plots.figure6(report.models),
    }
    if report.curation is not None:
        makers["fig4_filters"] = lambda: plots.figure4(report.curation.filter_curves, curation_lib.ARM_LABELS)
        makers["fig5_rebalancing"] = lambda: plots.figure5(report.curation.rebalance)
    if report.tradeoff is not None:
        makers["tradeoff"] = lambda: plots.tradeoff(report.tradeoff.averages, tradeoff_lib.labels(report.tradeoff),
                                                    tradeoff_lib.CONTROL)
    if report.frequency is not None and len(report.frequency.lines):
        law = report.frequency
        makers["concept_frequency"] = lambda: plots.concept_frequency(
            law.lines, frequency_lib.binned(law.points), {t: label for t, (_, label) in frequency_lib.TASKS.items()})
    real = report.source == "real"
    report.not_drawn = unmeasured_figures(report) if real else {}
    report.figures = {k: make() for k, make in makers.items() if k not in report.not_drawn}
    if real:  # the paper's own benchmarks: the titles do not say analog
        for fig in report.figures.values():
            for text in [fig._suptitle, *(ax.title for ax in fig.axes)]:
                if text is not None:
                    text.set_text(results.on_real_benchmarks(text.get_text()))
    return report.figures


def _clean(v):
    """JSON-safe: NaN -> None, numpy scalars -> Python."""
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, (np.floating, float)):
        return None if np.isnan(v) else float(v)
    if isinstance(v, (np.integer, np.bool_)):
        return v.item()
    return v


def _spread(r) -> dict:
    return {"seed_sd": r["seed_sd"], "seed_range": [r["seed_min"], r["seed_max"]], "n_seeds": r["n_seeds"]}


def benchmarks_present(tidy: pd.DataFrame) -> dict[str, dict]:
    """Every benchmark of the report's source with results: its tasks and its largest test set (images or pairs)."""
    return {b: {"tasks": sorted(g["task"].unique()), "n": int(g["n"].max())}
            for b, g in tidy.groupby("benchmark", sort=True)}


def summary(report: Report) -> dict:
    """metrics/figures.json's record, JSON-ready: source; uncertainty ("bootstrap" | "binomial" | "mixed") with its
    note and tasks_without_items; group_averages (per run, final checkpoint) and group_averages_by_scale (seed mean,
    seed spread); gains_<a>_to_<b>; table1; representation_bias; disparity (gap, interval and the noise-only null);
    wilcoxon; fits; missing_tasks; model; figure6; curation; concept_frequency; tradeoff; evidence. Every interval is
    a 95% "ci95"."""
    est = report.est
    last = results.final(est.groups)
    by_scale = est.by_scale
    table1_rows = results.errors(by_scale)[lambda d: d["task"].isin(results.TABLE1_TASKS)]
    fits = report.fits.dropna(subset=["c"])
    out = {
        SOURCE: report.source,
        "uncertainty": est.method,
        "uncertainty_note": METHOD_NOTE[est.method],
        "tasks_without_items": est.without_items,
        N_BOOT: est.n_boot,
        "level": est.level,
        "items_vs_tidy_max_abs_diff": est.item_mismatch if est.method != "binomial" else None,
        "english_like_languages": list(report.english_like),
        "low_resource_without_english_like": [lang for lang in groups.LOW_RESOURCE if lang not in report.english_like],
        BENCHMARKS: benchmarks_present(report.tidy),
        "figures_not_drawn": report.not_drawn,
        "analogs": report.facts.get("analogs", {}),
        "analog_key": report.facts.get("key"), ANALOG_KEY_USE: report.facts.get("key_use"),
        "group_averages": {run: {r["group"]: {"error_pct": r["error_pct"], "ci95": [r["lo"], r["hi"]]}
                                 for _, r in g.iterrows()} for run, g in last.groupby("run")},
        GROUP_AVERAGES_BY_SCALE: {
            scale_label(pct): {r["group"]: {"error_pct": r["error_pct"], "ci95": [r["lo"], r["hi"]], **_spread(r),
                                            "runs": r["runs"]} for _, r in g.iterrows()}
            for pct, g in est.scale_groups.groupby("data_pct")},
    }
    for (a, b), g in report.all_gains.items():
        out[f"gains_{a:g}_to_{b:g}"] = {r["group"]: {"gain": r["gain"], "ci95": [r["lo"], r["hi"]], **_spread(r),
                                                     "interval": r["interval"]}
                                        for _, r in g.iterrows()}
    out["table1"] = {task: {scale_label(r["data_pct"]): {"error_pct": r["value"], "ci95": [r["lo"], r["hi"]],
                                                         **_spread(r)} for _, r in g.iterrows()}
                     for task, g in table1_rows.groupby("task", sort=False)}
    rep = by_scale[by_scale["task"] == "fairface/representation_bias"]
    out["representation_bias"] = {scale_label(r["data_pct"]): {"male_preference_pct": r["value"],
                                                               "ci95": [r["lo"], r["hi"]], **_spread(r)}
                                  for _, r in rep.iterrows()}
    out["disparity"] = {task: {scale_label(r["data_pct"]): {
        "gap_pct": r["value"], "ci95": [r["lo"], r["hi"]], "noise_null_mean": r["null_mean"],
        "noise_null_p95": r["null_p95"], "p_noise": r["p_noise"], "null": r["null"], **_spread(r)}
        for _, r in g.iterrows()} for task, g in est.disparity.groupby("task")}
    out["wilcoxon"] = {k: {q: v[q] for q in ("statistic", "p_value", "n_pairs", "median_difference", "reason")}
                       | {"note": uncertainty.WILCOXON_NOTE} for k, v in report.wilcoxon.items()}
    out["fits"] = {run: {r["task"]: {"c": r["c"], "c_ci": [r["c_lo"], r["c_hi"]], "eps": r["eps"],
                                     "eps_ci": [r["eps_lo"], r["eps_hi"]], "ci": r["ci"]} for _, r in g.iterrows()}
                   for run, g in fits.groupby("run")}
    out["missing_tasks"] = report.missing
    out[MODEL] = report.model
    out[FIGURE6] = {m: {scale_label(pct): {r["group"]: {"error_pct": r["error_pct"], "ci95": [r["lo"], r["hi"]],
                                                           "examples_seen": int(r["examples_seen"]), "run": r["run"]}
                                             for _, r in results.final(g).iterrows()}
                          for pct, g in gm.groupby("data_pct")}
                      for m, gm in report.models.groupby("model")} if len(report.models) else {}
    if report.curation is not None:
        out["curation"] = curation_summary(report.curation)
    if report.frequency is not None:
        out[CONCEPT_FREQUENCY] = frequency_lib.summary(report.frequency)
    if report.tradeoff is not None:
        out[TRADEOFF] = tradeoff_lib.summary(report.tradeoff)
    out[EVIDENCE] = {r["name"]: r for r in report.evidence}
    out["evidence_note"] = study.__doc__.split("\n\n")[0]
    return _clean(out)


def _ci_rows(t: pd.DataFrame, keys: list[str], value: str) -> dict:
    out = {}
    for _, r in t.iterrows():
        node = out
        for k in keys[:-1]:
            node = node.setdefault(str(r[k]), {})
        node[str(r[keys[-1]])] = {value: r[value], "ci95": [r["lo"], r["hi"]], **({"p": r["p"]} if "p" in r else {})}
    return out


def curation_summary(c: curation_lib.Curation) -> dict:
    """metrics/figures.json's `curation`: the filter arms' group averages by examples seen and their
    differences from the English baseline and from random; rebalancing's before/after per data scale."""
    reb = {}
    for _, r in c.rebalance.iterrows():
        reb.setdefault(scale_label(r["data_pct"]), {})[r["group"]] = {
            "before": r["before"], "after": r["after"], "reduction": r["diff"], "ci95": [r["lo"], r["hi"]],
            "p": r["p"], "examples_seen": int(r["examples_seen"]), "runs": [r["before_run"], r["after_run"]]}
    return {"filter_runs": c.filter_runs,
            "filters": _ci_rows(c.filter_curves, ["arm", "examples_seen", "group"], "error_pct"),
            "filter_differences": {f"{a}_minus_{b}": _ci_rows(g, ["examples_seen", "group"], "diff")
                                   for (a, b), g in c.filter_diffs.groupby(["arm", "against"])},
            "rebalancing": reb,
            "rebalancing_languages": _ci_rows(c.languages.assign(
                key=c.languages["language"] + "/" + c.languages["direction"]).rename(columns={"diff": "reduction"}),
                ["data_pct", "key"], "reduction"),
            "notes": c.notes}


def write_report(report: Report, root: str | Path = ".") -> list[Path]:
    """Write figures (paper/figures/eval/*.png|pdf), tables (paper/tables/: LaTeX and typst's rows) and plots CSVs
    (plots/figures/) under root, creating the folders. Returns the paths written."""
    root = Path(root)
    fig_dir, tab_dir, plot_dir = root / "paper/figures/eval", root / "paper/tables", root / "plots/figures"
    for folder in (fig_dir, tab_dir, plot_dir):
        folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, fig in (report.figures or draw(report)).items():
        written += [figures.save(fig, fig_dir / f"{name}.png"), figures.save(fig, fig_dir / f"{name}.pdf")]
    tables = {
        "table1.tex": latex.table1(report.table1, report.missing["table1"], report.est.method),
        "table3.tex": latex.scale_table(report.table3, "Representation bias: % of images for which the "
                                        "model prefers 'male' over 'female' [95% CI] (Table 3 analog; "
                                        "paper: about 85%).", "tab:table3"),
        "table4.tex": latex.scale_table(report.table4, "Performance disparity: maximum zero-shot accuracy "
                                        "gap (pp) across income groups and regions [95% CI] (Table 4 "
                                        "analog), and the gap expected from test-set noise alone (mean "
                                        "of a permutation null of the subgroup labels).", "tab:table4"),
        "wilcoxon.tex": latex.wilcoxon_table(report.wilcoxon, report.from_pct, report.to_pct),
    }
    if report.curation is not None:
        c = report.curation
        tables["table13.tex"] = latex.curation_table(
            c.table13, "Quality filters (Table 13 analog): error (%) [95% CI] per arm and examples seen; every arm "
            "keeps the same number of pairs; Random is the control of that size.", "tab:table13")
        tables["table14.tex"] = latex.curation_table(
            c.table14, "Language rebalancing (Table 14 analog): error (%) [95% CI] before and after raising the "
            "seven low-resource languages to 1% each, per data scale, at equal examples seen.", "tab:table14")
    for name, table in tables.items():
        if report.source == "real":  # the paper's own benchmarks, not their analogs
            table = table.map_text(results.on_real_benchmarks)
        written += latex.write_table(table, tab_dir / name)
    csvs = {"fig1.csv": plots.figure1_csv(report.fig1), "fig2.csv": plots.figure2_csv(report.fig2),
            "groups.csv": plots.group_curves_csv(report.means)}
    csvs["fig6.csv"] = report.models
    if report.curation is not None:
        csvs["fig4.csv"] = report.curation.filter_curves
        csvs["fig5.csv"] = report.curation.rebalance
    if report.tradeoff is not None:
        t = report.tradeoff
        csvs |= {"tradeoff.csv": t.averages, "tradeoff_effects.csv": t.effects, "tradeoff_changes.csv": t.changes}
    if report.frequency is not None:
        law = report.frequency
        csvs |= {"concept_frequency.csv": law.fits, "concept_frequency_points.csv": law.points,
                 "concept_frequency_comparisons.csv": law.comparisons.merge(
                     law.answers, on=["task", "examples_seen", "small_pct", "large_pct"], how="left")}
    for name, table in csvs.items():
        table.to_csv(plot_dir / name, index=False)
        written.append(plot_dir / name)
    return written
