"""The figures stage: the paper's figures and tables from every run's evaluation, each number with its uncertainty.

`run(params)` reads results/evaluate/ (the runs of the study plan, on the benchmarks of its source: the analogs
for the synthetic web, the real sets for real shards), builds the report (analysis/report.py: Figures 1-6,
Tables 1, 3, 4, 13, 14 and the Wilcoxon tests, with paired bootstrap intervals over test images and the spread
over seeds, and the concept-frequency law: analysis/frequency.py, from data/concept_counts.parquet) and writes:
    paper/figures/eval/        every figure (PNG and PDF)
    paper/tables/              every table (LaTeX and typst's rows), with the attention stage's focus table
                               (the measured Table 6 of arXiv 2502.07617, from results/attention/summary.json)
                               and the transfer stage's Table 2 and 12 analogs (from metrics/transfer.json)
    plots/figures/             the `dvc plots` tables
    metrics/figures.json       analysis/report.py `summary`, the plan and provenance
and returns the metrics.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from vlscale.analysis import frequency, latex, results, transfer_tables
from vlscale.analysis import report as report_lib
from vlscale.analysis.report import PLAN, PROVENANCE
from vlscale.attention.tables import SUMMARY_PATH, focus_tabular
from vlscale.config import Params, validate
from vlscale.files import read_json, write_json
from vlscale.plan import Plan, study_plan
from vlscale.provenance import provenance

RESULTS_DIR = Path("results/evaluate")
METRICS_PATH = Path("metrics/figures.json")
ATTENTION_TABLE = Path("paper/tables/attention_focus.tex")
TRANSFER_METRICS = Path("metrics/transfer.json")
TRANSFER_TABLES = {"transfer_table2": transfer_tables.table2, "transfer_table12": transfer_tables.table12}
BLOCKS = ("profile", "runs", "sample", "filter", "figures")  # sample.source; filter.keep_fraction, arms, scorer, balanced



def stage_params(params: dict) -> Params:
    """The stage's blocks of `params` (BLOCKS) validated: runs and figures whole, sample and filter in part."""
    validate({k: params[k] for k in ("profile", "figures")})  # a figures block lacking a key fails here, not in part
    return validate({k: params[k] for k in BLOCKS}, partial=("sample", "filter"))


def build(p: Params) -> tuple[report_lib.Report, Plan]:
    """The report of the runs the pool allowed, on the benchmarks of its kind, and the study plan (the runs and
    arms it skipped are printed, one line each); `p`: the stage's params (stage_params)."""
    plan = study_plan(p)
    print(*plan.notes(), sep="\n")
    print("benchmarks:", plan.source, "| runs:", ", ".join(plan.runs))
    items, facts = results.read_items(RESULTS_DIR, plan.runs), results.read_analog_facts(RESULTS_DIR, plan.runs)
    report = report_lib.build_report(
        results.read_results(RESULTS_DIR, plan.runs), items,
        source=plan.source, n_boot=p.figures.bootstrap, seed=p.figures.seed, facts=facts,
        english_like_share=p.figures.english_like_share,
        keep_fraction=p.filter.keep_fraction, frequency_inputs=frequency_inputs(plan, items, facts))
    return report, plan


def frequency_inputs(plan: Plan, items, facts: dict) -> frequency.Inputs | None:
    """The concept-frequency law's inputs (the sample stage's data/concept_counts.parquet, the analogs' test-image
    concepts); None where it cannot be measured: real benchmarks, no per-item outcomes of its tasks, a real pool."""
    if plan.source != "analog" or not items["task"].isin(list(frequency.TASKS)).any():
        return None
    return frequency.read_inputs(RESULTS_DIR, plan.runs, facts, frequency.COUNTS_PATH)


def reported_runs(report: report_lib.Report) -> list[str]:
    """The runs of the report's model, by data scale and seed."""
    runs = report.tidy.groupby("run")[["seed", "data_pct", "examples_seen"]].max()
    return runs.sort_values(["data_pct", "seed"]).index.tolist()


def write_attention_table(summary_path: str | Path = SUMMARY_PATH, path: str | Path = ATTENTION_TABLE) -> list[Path]:
    """The attention stage's focus table beside the other tables (nothing without natural runs)."""
    table = focus_tabular(read_json(summary_path))
    return latex.write_table(table, path) if table is not None else []


def write_transfer_tables(metrics_path: str | Path = TRANSFER_METRICS, tables_dir: str | Path = "paper/tables"
                          ) -> list[Path]:
    """The transfer stage's Table 2 and Table 12 analogs beside the other tables (nothing without a transfer)."""
    metrics, written = read_json(metrics_path), []
    for name, build_table in TRANSFER_TABLES.items():
        table = build_table(metrics)
        written += latex.write_table(table, Path(tables_dir) / f"{name}.tex") if table is not None else []
    return written


def run(params: dict) -> dict:
    """The figures stage (module docstring). params: profile, runs, sample (source), filter (keep_fraction, arms,
    scorer), figures."""
    p = stage_params(params)
    report, plan = build(p)
    report_lib.draw(report)
    plt.close("all")
    runs = reported_runs(report)
    # the params as the stage received them (the runs without their defaults filled in)
    record = provenance(p.profile, {k: params[k] for k in BLOCKS}, runs=runs,
                        results=[f"{RESULTS_DIR}/{r}.parquet" for r in runs],
                        items=[f"{RESULTS_DIR}/{r}/items.parquet" for r in runs])
    report_lib.write_report(report, ".")
    write_attention_table()
    write_transfer_tables()
    metrics = report_lib.summary(report) | {PLAN: plan.record(), PROVENANCE: record}
    write_json(METRICS_PATH, metrics)
    return metrics
