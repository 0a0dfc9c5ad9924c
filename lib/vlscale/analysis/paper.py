"""The paper's evaluation figures and tables (Figures 1-3, Tables 1, 3, 4, the Wilcoxon tests) from the
evaluate stage's tidy results, for whatever subset of tasks was evaluated.

Input: results/evaluate/<run>.parquet, one row per (run, checkpoint, task, metric) with the columns of
COLUMNS. Values are errors in % (metric "error_pct") unless the metric says otherwise. A "data
scale" is a run's data_pct (1, 10, 100 by default, the paper's 1B / 10B / 100B); "final" is each
run's last cooled-down checkpoint (the paper's 100B examples seen). Tasks that were not evaluated
are reported as missing, never filled in.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from scipy import stats

from vlscale.analysis import figures, scaling
from vlscale.evals import groups

COLUMNS = ("run", "fraction", "data_pct", "examples_seen", "budget", "checkpoint", "profile", "model",
           "benchmark", "source", "task", "metric", "value", "se", "n")

# Group averages of errors (%): name -> tasks. Multilinguality follows groups.multilingual_averages.
_BOTH = lambda langs: tuple(groups.xm3600_task(d, l) for d in ("i2t", "t2i") for l in langs)  # noqa: E731
GROUPS = {
    "western": groups.WESTERN,
    "culture": groups.CULTURE,
    "fairness": groups.FAIRNESS,
    "multilingual_low_resource": _BOTH(groups.LOW_RESOURCE),
    "multilingual_high_resource": _BOTH(groups.HIGH_RESOURCE),
    "multilingual": tuple(groups.xm3600_task("i2t", l) for l in groups.XM3600_LANGUAGES),
}
# Figure 1 left: the radar's four axes, and which average stands for each.
RADAR = {"Culture": "culture", "Multilinguality": "multilingual", "Western": "western", "Fairness": "fairness"}

# Figure 1 right: panel column (plots CSV) -> (task, label). Plotted as accuracy / recall = 100 - error.
FIG1_PANELS = {
    "imagenet_0shot_acc": ("imagenet/0shot", "ImageNet 0-shot accuracy (%)"),
    "coco_i2t_r1": ("coco/i2t", "COCO image→text Recall@1 (%)"),
    "dollarstreet_geoloc_acc": ("dollarstreet/geoloc_10shot", "Dollar Street 10-shot geolocalization acc. (%)"),
    "telugu_i2t_r1": (groups.xm3600_task("i2t", "te"), "Telugu (XM3600) image→text Recall@1 (%)"),
}

# Table 1's rows in the paper's order: (section, label, task).
TABLE1 = [
    *[("Zero-shot classification", l, t) for l, t in
      [("ImageNet", "imagenet/0shot"), ("CIFAR100", "cifar100/0shot"), ("Pet", "pet/0shot")]],
    *[("Retrieval @1", l, t) for l, t in
      [("COCO I2T", "coco/i2t"), ("COCO T2I", "coco/t2i"), ("Flickr I2T", "flickr/i2t"), ("Flickr T2I", "flickr/t2i")]],
    *[("10-shot", l, t) for l, t in
      [("ImageNet", "imagenet/10shot"), ("Birds", "birds/10shot"), ("Caltech", "caltech/10shot"),
       ("Cars", "cars/10shot"), ("CIFAR100", "cifar100/10shot"), ("Colorectal", "colorectal/10shot"),
       ("Pet", "pet/10shot"), ("DTD", "dtd/10shot")]],
    *[("Cultural: 10-shot geolocalization", l, t) for l, t in
      [("DS", "dollarstreet/geoloc_10shot"), ("GeoDE-C", "geode/country_geoloc_10shot"),
       ("GeoDE-R", "geode/region_geoloc_10shot")]],
    *[("Cultural: zero-shot classification", l, t) for l, t in
      [("DS", "dollarstreet/0shot"), ("GeoDE", "geode/0shot"), ("GLDv2", "gldv2/0shot")]],
]
TABLE4 = {"dollarstreet/disparity_income": "0-shot Dollar Street (by income)",
          "geode/disparity_region": "0-shot GeoDE (by region)"}
OCCUPATIONS = {"librarian": "scientist", "receptionist": "executive", "nurse": "doctor",
               "secretary": "manager", "housekeeper": "homeowner"}  # first (stereotypically female) -> counterpart


# ---------------------------------------------------------------------------------------------- input

def read_results(directory: str | Path) -> pd.DataFrame:
    """Concatenate every results/evaluate/<run>.parquet in `directory` (columns COLUMNS)."""
    directory = Path(directory)
    files = sorted(directory.glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"no results (*.parquet) in {directory.resolve()}: run the evaluate stage first")
    parts = []
    for f in files:
        d = pd.read_parquet(f)
        missing = [c for c in COLUMNS if c not in d.columns]
        if missing:
            raise ValueError(f"{f}: missing columns {missing}; expected {list(COLUMNS)}")
        parts.append(d)
    return pd.concat(parts, ignore_index=True)


def select_source(tidy: pd.DataFrame, source: str = "analog") -> pd.DataFrame:
    """Rows of one benchmark source ("analog" or "real"); a table never mixes the two."""
    d = tidy[tidy["source"] == source]
    if d.empty:
        raise ValueError(f"no results with source {source!r}; the table has {sorted(tidy['source'].unique())}")
    return d.reset_index(drop=True)


def final(tidy: pd.DataFrame) -> pd.DataFrame:
    """Rows at each run's last checkpoint (its largest examples_seen): the paper's '100B examples seen'.
    Works on the tidy results and on group_means' table alike."""
    last = tidy.groupby("run")["examples_seen"].transform("max")
    return tidy[tidy["examples_seen"] == last]


def scales(tidy: pd.DataFrame) -> list[float]:
    """The data scales present (data_pct), ascending."""
    return sorted(tidy["data_pct"].unique().tolist())


def scale_label(pct: float) -> str:
    """'1%', '10%', '100%': a run's share of the pool (the paper's 1B / 10B / 100B)."""
    return f"{pct:g}%"


def _errors(tidy: pd.DataFrame) -> pd.DataFrame:
    return tidy[tidy["metric"] == "error_pct"]


def _at(tidy: pd.DataFrame, pct: float) -> pd.DataFrame:
    return tidy[np.isclose(tidy["data_pct"], pct)]


def missing_tasks(tidy: pd.DataFrame) -> dict[str, list[str]]:
    """For each group average and for Table 1: the tasks it names that the table lacks."""
    present = set(_errors(tidy)["task"])
    out = {name: [t for t in tasks if t not in present] for name, tasks in GROUPS.items()}
    out["table1"] = [t for _, _, t in TABLE1 if t not in present]
    out["figure1"] = [t for t, _ in FIG1_PANELS.values() if t not in present]
    return out


# ---------------------------------------------------------------------------------- group averages

def group_means(tidy: pd.DataFrame) -> pd.DataFrame:
    """Group averages of errors (%) per (run, examples_seen) over the tasks PRESENT of each group.

    Returns rows run, data_pct, examples_seen, group, error_pct, se (of the mean, assuming independent
    tasks), n_present, n_tasks and missing (comma-separated task names). A group with no task
    present has error_pct NaN.
    """
    d = _errors(tidy)
    rows = []
    for (run, pct, seen), g in d.groupby(["run", "data_pct", "examples_seen"], sort=True):
        by_task = g.drop_duplicates("task").set_index("task")
        for name, tasks in GROUPS.items():
            here = [t for t in tasks if t in by_task.index]
            err, se = by_task.loc[here, "value"], by_task.loc[here, "se"]
            rows.append({"run": run, "data_pct": pct, "examples_seen": seen, "group": name,
                         "error_pct": float(err.mean()) if here else np.nan,
                         "se": float(np.sqrt((se ** 2).sum()) / len(here)) if here else np.nan,
                         "n_present": len(here), "n_tasks": len(tasks),
                         "missing": ",".join(t for t in tasks if t not in by_task.index)})
    return pd.DataFrame(rows)


def gains(means: pd.DataFrame, from_pct: float = 10, to_pct: float = 100) -> pd.DataFrame:
    """Error reduction (percentage points) from data scale from_pct to to_pct at the final checkpoint,
    per group: error(from) - error(to), i.e. the accuracy gain (Figure 1 left). NaN if a scale is absent."""
    last = final(means)
    a = _at(last, from_pct).set_index("group")["error_pct"]
    b = _at(last, to_pct).set_index("group")["error_pct"]
    out = pd.DataFrame({"group": list(GROUPS)})
    out[f"error_{from_pct:g}"] = out["group"].map(a)
    out[f"error_{to_pct:g}"] = out["group"].map(b)
    out["gain"] = out[f"error_{from_pct:g}"] - out[f"error_{to_pct:g}"]
    return out


# ------------------------------------------------------------------------------------------- Figure 1

def figure1_data(tidy: pd.DataFrame) -> pd.DataFrame:
    """Figure 1 right: accuracy / Recall@1 (%) = 100 - error at the final checkpoint, per panel and
    data scale, with its se. Absent panels are left out (missing_tasks says which)."""
    d = _errors(final(tidy))
    rows = []
    for column, (task, label) in FIG1_PANELS.items():
        for _, r in d[d["task"] == task].iterrows():
            rows.append({"panel": column, "label": label, "task": task, "data_pct": r["data_pct"],
                         "value": 100.0 - r["value"], "se": r["se"]})
    return pd.DataFrame(rows, columns=["panel", "label", "task", "data_pct", "value", "se"]).sort_values(
        ["panel", "data_pct"], ignore_index=True)


def figure1_curves(data: pd.DataFrame, title: str = ""):
    """Four panels of accuracy (%) against data scale (log x), ±1 se; an absent task says so."""
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.4))
    for ax, (column, (task, label)) in zip(axes, FIG1_PANELS.items()):
        d = data[data["panel"] == column]
        ax.set_title(label, fontsize=9)
        ax.set_xscale("log")
        ax.set_xlabel("data scale (% of pool)")
        if d.empty:
            ax.text(0.5, 0.5, f"{task}\nnot evaluated", ha="center", va="center", transform=ax.transAxes)
            continue
        ax.errorbar(d["data_pct"], d["value"], yerr=d["se"].fillna(0), marker="o", capsize=3)
        ax.set_xticks(d["data_pct"], [scale_label(p) for p in d["data_pct"]])
    fig.suptitle(title or "Figure 1 (right) analog: Western metrics vs. cultural and multilingual ones")
    fig.tight_layout()
    return fig


def figure1_gains(g: pd.DataFrame, from_pct: float = 10, to_pct: float = 100):
    """Figure 1 left as bars: the average accuracy gain (pp) from from_pct to to_pct data, per group."""
    d = g.set_index("group").loc[list(RADAR.values())]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    colors = ["#d62728", "#ff7f0e", "#1f77b4", "#7f7f7f"]
    ax.bar(list(RADAR), d["gain"].fillna(0), color=colors)
    for i, v in enumerate(d["gain"]):
        ax.text(i, 0 if np.isnan(v) else v, "n/a" if np.isnan(v) else f"{v:+.2f}", ha="center",
                va="bottom" if np.isnan(v) or v >= 0 else "top", fontsize=9)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylabel(f"gain {scale_label(from_pct)}→{scale_label(to_pct)} (pp, error reduction)")
    ax.set_title("Figure 1 (left) analog: average gain per group")
    return fig


def figure1_csv(data: pd.DataFrame) -> pd.DataFrame:
    """Wide table for `dvc plots`: data_pct and one column per Figure 1 panel (empty if not evaluated)."""
    wide = data.pivot_table(index="data_pct", columns="panel", values="value") if len(data) else pd.DataFrame()
    return wide.reindex(columns=list(FIG1_PANELS)).rename_axis(None, axis=1).reset_index(names="data_pct") \
        if len(wide) else pd.DataFrame(columns=["data_pct", *FIG1_PANELS])


# ------------------------------------------------------------------------------------------- Figure 2

def figure2_data(means: pd.DataFrame) -> pd.DataFrame:
    """XM3600 low- vs high-resource average retrieval error (%) per data scale at the final checkpoint."""
    last = final(means)
    d = last[last["group"].isin(["multilingual_low_resource", "multilingual_high_resource"])]
    d = d.assign(resource=d["group"].str.removeprefix("multilingual_").str.removesuffix("_resource"))
    return d[["resource", "data_pct", "error_pct", "se", "n_present", "n_tasks"]].sort_values(
        ["resource", "data_pct"], ignore_index=True)


def figure2(data: pd.DataFrame, from_pct: float = 10, to_pct: float = 100):
    """Average XM3600 retrieval error against data scale, low vs high resource, with Δ = error(from) - error(to)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for resource, color in (("low", "#d62728"), ("high", "#1f77b4")):
        d = data[(data["resource"] == resource) & data["error_pct"].notna()]
        if d.empty:
            continue
        ax.errorbar(d["data_pct"], d["error_pct"], yerr=d["se"].fillna(0), marker="o", capsize=3, color=color,
                    label=f"{resource}-resource ({d['n_present'].iloc[0]}/{d['n_tasks'].iloc[0]} tasks)")
        a, b = _at(d, from_pct)["error_pct"], _at(d, to_pct)["error_pct"]
        if len(a) and len(b):
            ax.annotate(f"Δ={a.iloc[0] - b.iloc[0]:+.2f}", (to_pct, b.iloc[0]), textcoords="offset points",
                        xytext=(6, 0), color=color, fontsize=9, va="center")
    ax.set_xscale("log")
    ticks = sorted(data["data_pct"].unique())
    ax.set_xticks(ticks, [scale_label(p) for p in ticks])
    ax.set_xlabel("data scale (% of pool)")
    ax.set_ylabel("average XM3600 retrieval error (%)")
    ax.set_title(f"Figure 2 analog (Δ: {scale_label(from_pct)} → {scale_label(to_pct)})")
    ax.legend(frameon=False, fontsize=8)
    return fig


def figure2_csv(data: pd.DataFrame) -> pd.DataFrame:
    """Wide table for `dvc plots`: data_pct, low_resource and high_resource average error (%)."""
    wide = data.pivot_table(index="data_pct", columns="resource", values="error_pct") if len(data) else pd.DataFrame()
    wide = wide.reindex(columns=["low", "high"]).rename(columns=lambda r: f"{r}_resource")
    return wide.rename_axis(None, axis=1).reset_index(names="data_pct") if len(wide) else \
        pd.DataFrame(columns=["data_pct", "low_resource", "high_resource"])


# --------------------------------------------------------------------------------- learning curves

def group_curves_csv(means: pd.DataFrame) -> pd.DataFrame:
    """Wide table for `dvc plots`: examples_seen and one column <group>_<run> of average error (%)."""
    wide = means.pivot_table(index="examples_seen", columns=["group", "run"], values="error_pct")
    wide.columns = [f"{g}_{r}" for g, r in wide.columns]
    return wide.reset_index()


def learning_curves(means: pd.DataFrame):
    """Group-average error (%) against examples seen, one panel per group, one line per run."""
    names = list(GROUPS)
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.2), squeeze=False)
    runs = sorted(means["run"].unique(), key=lambda r: means.loc[means["run"] == r, "data_pct"].iloc[0])
    colors = dict(zip(runs, sns.color_palette("viridis", len(runs))))
    for ax, name in zip(axes[0], names):
        for run in runs:
            d = means[(means["group"] == name) & (means["run"] == run)].sort_values("examples_seen")
            if d["error_pct"].notna().any():
                ax.errorbar(d["examples_seen"], d["error_pct"], yerr=d["se"].fillna(0), marker="o", ms=3,
                            color=colors[run], label=f"{run} ({scale_label(d['data_pct'].iloc[0])})")
        ax.set_xscale("log")
        ax.set_title(name.replace("_", " "), fontsize=9)
        ax.set_xlabel("examples seen")
    axes[0][0].set_ylabel("average error (%)")
    axes[0][0].legend(frameon=False, fontsize=7)
    fig.tight_layout()
    return fig


# -------------------------------------------------------------------------------------------- Table 1

def _one_model(tidy: pd.DataFrame, what: str) -> None:
    models = tidy["model"].unique()
    if len(models) > 1:
        raise ValueError(f"{what} is for one model; the results hold {sorted(models)}: filter by `model` first")


def table1(tidy: pd.DataFrame, fits: pd.DataFrame | None = None) -> pd.DataFrame:
    """Table 1 analog: per present Table 1 metric (rows: section, metric, task), the error (%) at the
    final checkpoint with its se for each data scale, then the fitted exponent c and limit eps (%)
    with their bootstrap CI (columns (quantity, data_pct); quantities value, se, c, c_lo, c_hi, eps,
    eps_lo, eps_hi). `fits` is scaling.fit_tasks' table; without it the fit columns are NaN."""
    _one_model(tidy, "Table 1")
    d = _errors(final(tidy))
    pcts = scales(tidy)
    present = set(d["task"])
    index = pd.MultiIndex.from_tuples([r for r in TABLE1 if r[2] in present], names=["section", "metric", "task"])
    quantities = ["value", "se", "c", "c_lo", "c_hi", "eps", "eps_lo", "eps_hi"]
    out = pd.DataFrame(np.nan, index=index, columns=pd.MultiIndex.from_product([quantities, pcts]))
    for (_, _, task) in index:
        for pct in pcts:
            r = _at(d[d["task"] == task], pct)
            if len(r):
                out.loc[(slice(None), slice(None), task), ("value", pct)] = r["value"].iloc[0]
                out.loc[(slice(None), slice(None), task), ("se", pct)] = r["se"].iloc[0]
            if fits is not None:
                f = _at(fits[fits["task"] == task], pct)
                if len(f):
                    for q in quantities[2:]:
                        out.loc[(slice(None), slice(None), task), (q, pct)] = f[q].iloc[0]
    return out


def _tex(s: str) -> str:
    return str(s).replace("\\", r"\textbackslash{}").replace("&", r"\&").replace("%", r"\%") \
        .replace("_", r"\_").replace("#", r"\#")


def _pm(v: float, se: float, digits: int = 1) -> str:
    if np.isnan(v):
        return "--"
    return f"{v:.{digits}f}" if np.isnan(se) else f"{v:.{digits}f} $\\pm$ {se:.{digits}f}"


def _ci(v: float, lo: float, hi: float, digits: int) -> str:
    if np.isnan(v):
        return "--"
    return f"{v:.{digits}f}" if np.isnan(lo) else f"{v:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _tabular(header: list[str], rows: list[list[str] | str], caption: str, label: str, align: str) -> str:
    """A plain LaTeX table (no packages beyond the base classes); a str row is a section heading."""
    lines = [r"\begin{table}[t]", r"\centering", r"\small", rf"\begin{{tabular}}{{{align}}}", r"\hline",
             " & ".join(header) + r" \\", r"\hline"]
    for r in rows:
        lines.append(rf"\multicolumn{{{len(header)}}}{{l}}{{\textit{{{_tex(r)}}}}} \\" if isinstance(r, str)
                     else " & ".join(r) + r" \\")
    lines += [r"\hline", r"\end{tabular}", rf"\caption{{{caption}}}", rf"\label{{{label}}}", r"\end{table}", ""]
    return "\n".join(lines)


def _bound_mark(value: float, low: float, high: float | None, tol: float = 5e-3) -> str:
    """A dagger when a fitted parameter sits at a bound of the fit (not identified by the data)."""
    if not np.isfinite(value):
        return ""
    at_bound = abs(value - low) <= tol or (high is not None and abs(value - high) <= tol)
    return "$^\\dagger$" if at_bound else ""


def table1_latex(t1: pd.DataFrame, missing: list[str] | None = None) -> str:
    """Table 1 as LaTeX: error ± se per data scale, then c [95% CI] and eps [95% CI] per data scale."""
    pcts = list(t1.columns.get_level_values(1).unique())
    labels = [_tex(scale_label(p)) for p in pcts]
    header = ["Metric", *[f"Error {p}" for p in labels], *[f"$c$ {p}" for p in labels],
              *[rf"$\varepsilon$ {p}" for p in labels]]
    rows, section = [], None
    for (sec, metric, _), r in t1.iterrows():
        if sec != section:
            rows.append(sec)
            section = sec
        rows.append([_tex(metric), *[_pm(r[("value", p)], r[("se", p)]) for p in pcts],
                     *[_ci(r[("c", p)], r[("c_lo", p)], r[("c_hi", p)], 2) + _bound_mark(r[("c", p)], 0, scaling.C_MAX)
                       for p in pcts],
                     *[_ci(r[("eps", p)], r[("eps_lo", p)], r[("eps_hi", p)], 1) + _bound_mark(r[("eps", p)], 0, None)
                       for p in pcts]])
    caption = ("Error (\\%) at the final cooled-down checkpoint per data scale ($\\pm$ 1 s.e.), and the fitted "
               "exponent $c$ and limit $\\varepsilon$ of $\\alpha x^{-c}+\\varepsilon$ against examples seen "
               "[bootstrap 95\\% CI]. $^\\dagger$: at a bound of the fit ($c$ = 0 or "
               f"{scaling.C_MAX:g}, $\\varepsilon$ = 0), i.e. the curve shows no bend within the budgets and that "
               "parameter is not identified.")
    if missing:
        caption += " Not evaluated: " + _tex(", ".join(missing)) + "."
    return _tabular(header, rows, caption, "tab:table1", "l" + "r" * (3 * len(pcts)))


# ------------------------------------------------------------------------------------ Tables 3 and 4

def _by_model_and_scale(tidy: pd.DataFrame, tasks: list[str]) -> pd.DataFrame:
    d = final(tidy)
    d = d[d["task"].isin(tasks)]
    return d.pivot_table(index=["task", "model"], columns="data_pct", values=["value", "se"], dropna=False)


def table3(tidy: pd.DataFrame) -> pd.DataFrame:
    """Table 3 analog: % of images where the model prefers "male" over "female" (rows model; columns
    (value|se, data_pct)) at the final checkpoint. Empty when representation bias was not evaluated."""
    t = _by_model_and_scale(tidy, ["fairface/representation_bias"])
    return t.droplevel("task") if len(t) else t


def table4(tidy: pd.DataFrame) -> pd.DataFrame:
    """Table 4 analog: maximum subgroup accuracy gap (pp) per benchmark and model (rows) and data scale."""
    t = _by_model_and_scale(tidy, list(TABLE4))
    if not len(t):
        return t
    return t.rename(index=TABLE4, level="task").rename_axis(["benchmark", "model"])


def scale_table_latex(t: pd.DataFrame, caption: str, label: str, digits: int = 1) -> str:
    """LaTeX of table3/table4: index levels as the first columns, then value ± se per data scale."""
    if not len(t):
        return _tabular(["--"], [["not evaluated"]], _tex(caption) + " Not evaluated.", label, "l")
    pcts = list(t.columns.get_level_values(1).unique())
    names = [n or "" for n in t.index.names]
    header = [_tex(n) for n in names] + [_tex(scale_label(p)) for p in pcts]
    rows = []
    for idx, r in t.iterrows():
        idx = idx if isinstance(idx, tuple) else (idx,)
        rows.append([_tex(i) for i in idx] + [_pm(r[("value", p)], r[("se", p)], digits) for p in pcts])
    return _tabular(header, rows, _tex(caption), label, "l" * len(names) + "r" * len(pcts))


# ------------------------------------------------------------------------------------------- Figure 3

def association_bias(tidy: pd.DataFrame) -> pd.DataFrame:
    """Figure 3 data: P(prefers the first, stereotypically female occupation over its counterpart) at the
    final checkpoint; rows (data_pct, gender "Female"/"Male"), columns the first occupations present."""
    d = final(tidy)
    d = d[d["metric"] == "probability"]
    d = d[d["task"].str.startswith("fairface/association_bias/")]
    if d.empty:
        return pd.DataFrame()
    parts = d["task"].str.split("/", expand=True)
    d = d.assign(occupation=parts[2], gender=parts[3].str.capitalize())
    t = d.pivot_table(index=["data_pct", "gender"], columns="occupation", values="value")
    return t.reindex(columns=[o for o in OCCUPATIONS if o in t.columns]).rename_axis(None, axis=1)


def figure3(ab: pd.DataFrame):
    """Association-bias heatmaps, one panel per data scale, rows Female/Male, annotated probabilities."""
    pcts = sorted(ab.index.get_level_values("data_pct").unique()) if len(ab) else []
    fig, axes = plt.subplots(1, max(1, len(pcts)), figsize=(4.2 * max(1, len(pcts)), 2.6), squeeze=False)
    if not pcts:
        axes[0][0].text(0.5, 0.5, "association bias not evaluated", ha="center", va="center")
        axes[0][0].axis("off")
        return fig
    for ax, pct in zip(axes[0], pcts):
        panel = ab.xs(pct, level="data_pct").reindex(["Female", "Male"])
        sns.heatmap(panel, annot=True, fmt=".2g", vmin=0, vmax=1, cmap="Reds", cbar=ax is axes[0][-1], ax=ax)
        ax.set_title(f"data {scale_label(pct)}")
        ax.set_ylabel("")
        ax.set_xticklabels([f"{o}\n>{OCCUPATIONS[o]}" for o in panel.columns], fontsize=7, rotation=0)
    fig.suptitle("Figure 3 analog: P(first occupation preferred) on FairFace-like images")
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------ Wilcoxon

def wilcoxon_scales(tidy: pd.DataFrame, tasks, from_pct: float = 10, to_pct: float = 100) -> dict:
    """Wilcoxon signed-rank test of error (%) at from_pct vs to_pct data, paired by task over the tasks
    present at both scales at the final checkpoint. median_difference = median(error(from) - error(to))
    (positive: more data helps). Fewer than 3 pairs, or all differences zero, give NaN and a reason
    (note: with fewer than 6 pairs a two-sided p can never fall below 0.05)."""
    d = _errors(final(tidy))
    a = _at(d, from_pct).drop_duplicates("task").set_index("task")["value"]
    b = _at(d, to_pct).drop_duplicates("task").set_index("task")["value"]
    paired = [t for t in tasks if t in a.index and t in b.index]
    diff = np.array([a[t] - b[t] for t in paired])
    out = {"statistic": np.nan, "p_value": np.nan, "n_pairs": len(paired),
           "median_difference": float(np.median(diff)) if len(diff) else np.nan, "tasks": paired, "reason": ""}
    if len(paired) < 3:
        return out | {"reason": f"only {len(paired)} tasks at both {scale_label(from_pct)} and {scale_label(to_pct)}"}
    if not np.any(diff != 0):
        return out | {"reason": "all paired differences are zero"}
    res = stats.wilcoxon(diff)  # the signed-rank test of the paired differences
    return out | {"statistic": float(res.statistic), "p_value": float(res.pvalue)}


def wilcoxon_latex(tests: dict[str, dict], from_pct: float = 10, to_pct: float = 100) -> str:
    """The Wilcoxon tests as a LaTeX table (one row per task group)."""
    rows = [[_tex(name), str(t["n_pairs"]),
             "--" if np.isnan(t["median_difference"]) else f"{t['median_difference']:+.2f}",
             "--" if np.isnan(t["statistic"]) else f"{t['statistic']:.1f}",
             "--" if np.isnan(t["p_value"]) else f"{t['p_value']:.3g}", _tex(t["reason"] or "")]
            for name, t in tests.items()]
    caption = (f"Wilcoxon signed-rank test of the error at {_tex(scale_label(from_pct))} vs "
               f"{_tex(scale_label(to_pct))} data, paired by task (final checkpoint). Paper: p = 0.9 "
               "(Western), p = 0.002 (culture).")
    return _tabular(["Group", "pairs", "median $\\Delta$ (pp)", "$W$", "$p$", "note"], rows, caption,
                    "tab:wilcoxon", "lrrrrl")


# ------------------------------------------------------------------------------------------ the report

@dataclass
class Report:
    """Everything the figures stage shows and writes, for one benchmark source."""

    source: str
    tidy: pd.DataFrame
    missing: dict[str, list[str]]
    means: pd.DataFrame
    gains: pd.DataFrame
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
    figures: dict = field(default_factory=dict)


def build_report(tidy: pd.DataFrame, source: str = "analog", n_boot: int = 1000, seed: int = 0,
                 from_pct: float = 10, to_pct: float = 100) -> Report:
    """Compute every table of the stage from the tidy results (fits over the Table 1 tasks present)."""
    d = select_source(tidy, source)
    means = group_means(d)
    table1_tasks = [t for _, _, t in TABLE1]
    fits = scaling.fit_tasks(d[d["task"].isin(table1_tasks)], n_boot=n_boot, seed=seed)
    return Report(
        source=source, tidy=d, missing=missing_tasks(d), means=means, gains=gains(means, from_pct, to_pct),
        fits=fits, fig1=figure1_data(d), fig2=figure2_data(means), table1=table1(d, fits),
        table3=table3(d), table4=table4(d), association=association_bias(d),
        wilcoxon={name: wilcoxon_scales(d, GROUPS[name], from_pct, to_pct) for name in ("western", "culture")},
        from_pct=from_pct, to_pct=to_pct,
    )


def draw(report: Report) -> dict:
    """The stage's figures (matplotlib Figures by file stem); also kept on report.figures."""
    report.figures = {
        "fig1_gains": figure1_gains(report.gains, report.from_pct, report.to_pct),
        "fig1_curves": figure1_curves(report.fig1),
        "fig2_xm3600": figure2(report.fig2, report.from_pct, report.to_pct),
        "fig3_association_bias": figure3(report.association),
        "learning_curves": learning_curves(report.means),
    }
    return report.figures


def _clean(v):
    """JSON-safe: NaN -> None, numpy scalars -> Python."""
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, (np.floating, float)):
        return None if np.isnan(v) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    return v


def summary(report: Report) -> dict:
    """The metrics JSON: group averages per run at the final checkpoint, gains, Wilcoxon, fits, missing tasks."""
    last = final(report.means)
    fits = report.fits.dropna(subset=["c"])
    return _clean({
        "source": report.source,
        "group_averages": {run: dict(zip(g["group"], g["error_pct"])) for run, g in last.groupby("run")},
        f"gains_{report.from_pct:g}_to_{report.to_pct:g}": dict(zip(report.gains["group"], report.gains["gain"])),
        "wilcoxon": {k: {q: v[q] for q in ("statistic", "p_value", "n_pairs", "median_difference", "reason")}
                     for k, v in report.wilcoxon.items()},
        "fits": {run: {r["task"]: {"c": r["c"], "c_ci": [r["c_lo"], r["c_hi"]], "eps": r["eps"],
                                   "eps_ci": [r["eps_lo"], r["eps_hi"]]} for _, r in g.iterrows()}
                 for run, g in fits.groupby("run")},
        "missing_tasks": report.missing,
    })


def write_report(report: Report, root: str | Path = ".", provenance: dict | None = None) -> list[Path]:
    """Write figures (paper/figures/eval/*.png|pdf), LaTeX (paper/tables/), plots CSVs (plots/figures/)
    and metrics/figures.json under root, creating the folders. Returns the paths written."""
    root = Path(root)
    fig_dir, tab_dir, plot_dir = root / "paper/figures/eval", root / "paper/tables", root / "plots/figures"
    for folder in (fig_dir, tab_dir, plot_dir, root / "metrics"):
        folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, fig in (report.figures or draw(report)).items():
        written += [figures.save(fig, fig_dir / f"{name}.png"), figures.save(fig, fig_dir / f"{name}.pdf")]
    tables = {
        "table1.tex": table1_latex(report.table1, report.missing["table1"]),
        "table3.tex": scale_table_latex(report.table3, "Representation bias: % of images for which the model "
                                        "prefers 'male' over 'female' (Table 3 analog; paper: about 85%).",
                                        "tab:table3"),
        "table4.tex": scale_table_latex(report.table4, "Performance disparity: maximum zero-shot accuracy gap "
                                        "(pp) across income groups and regions (Table 4 analog).", "tab:table4"),
        "wilcoxon.tex": wilcoxon_latex(report.wilcoxon, report.from_pct, report.to_pct),
    }
    for name, text in tables.items():
        (tab_dir / name).write_text(text)
        written.append(tab_dir / name)
    csvs = {"fig1.csv": figure1_csv(report.fig1), "fig2.csv": figure2_csv(report.fig2),
            "groups.csv": group_curves_csv(report.means)}
    for name, table in csvs.items():
        table.to_csv(plot_dir / name, index=False)
        written.append(plot_dir / name)
    metrics = summary(report) | {"provenance": provenance or {}}
    (root / "metrics/figures.json").write_text(json.dumps(metrics, indent=1))
    written.append(root / "metrics/figures.json")
    return written
