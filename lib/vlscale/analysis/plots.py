"""The paper's evaluation figures (Figures 1-3 and the group learning curves) as matplotlib Figures, and
the wide tables `dvc plots` draws. Error bars are the paired-bootstrap 95% intervals (uncertainty.py)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from vlscale.analysis.results import FIG1_PANELS, RADAR, at, scale_label
from vlscale.config import OCCUPATION_PAIRS
from vlscale.evals import groups


def _yerr(d: pd.DataFrame, value: str = "value") -> np.ndarray:
    """[2, n] distances from the point to its interval's ends (0 where the interval is unknown)."""
    return np.nan_to_num(np.stack([d[value] - d["lo"], d["hi"] - d[value]]).clip(min=0))


def figure1_curves(data: pd.DataFrame, title: str = ""):
    """Four panels of accuracy (%) against data scale (log x) with 95% intervals; an absent task says so."""
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.4))
    for ax, (column, (task, label)) in zip(axes, FIG1_PANELS.items()):
        d = data[data["panel"] == column]
        ax.set_title(label, fontsize=9)
        ax.set_xscale("log")
        ax.set_xlabel("data scale (% of pool)")
        if d.empty:
            ax.text(0.5, 0.5, f"{task}\nnot evaluated", ha="center", va="center", transform=ax.transAxes)
            continue
        ax.errorbar(d["data_pct"], d["value"], yerr=_yerr(d), marker="o", capsize=3)
        ax.set_xticks(d["data_pct"], [scale_label(p) for p in d["data_pct"]])
    fig.suptitle(title or "Figure 1 (right) analog: Western metrics vs. cultural and multilingual ones")
    fig.tight_layout()
    return fig


def figure1_gains(g: pd.DataFrame):
    """Figure 1 left as bars: the average accuracy gain (pp) between two data scales per group, with its
    95% interval (`g`: Estimates.gains of one model)."""
    d = g.set_index("group").reindex(list(RADAR.values()))
    from_pct, to_pct = g["from_pct"].iloc[0], g["to_pct"].iloc[0]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    colors = ["#d62728", "#ff7f0e", "#1f77b4", "#7f7f7f"]
    ax.bar(list(RADAR), d["gain"].fillna(0), color=colors, yerr=_yerr(d, "gain"), capsize=4)
    for i, v in enumerate(d["gain"]):
        ax.text(i, 0 if np.isnan(v) else v, "n/a" if np.isnan(v) else f"{v:+.2f}", ha="left",
                va="bottom" if np.isnan(v) or v >= 0 else "top", fontsize=9)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylabel(f"gain {scale_label(from_pct)}→{scale_label(to_pct)} (pp, error reduction)")
    ax.set_title("Figure 1 (left) analog: average gain per group (95% CI)")
    return fig


def figure2(data: pd.DataFrame, from_pct: float = 10, to_pct: float = 100):
    """Average XM3600 retrieval error against data scale, low vs high resource, with Δ = error(from) - error(to)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for resource, color in (("low", "#d62728"), ("high", "#1f77b4")):
        d = data[(data["resource"] == resource) & data["error_pct"].notna()]
        if d.empty:
            continue
        ax.errorbar(d["data_pct"], d["error_pct"], yerr=_yerr(d, "error_pct"), marker="o", capsize=3, color=color,
                    label=f"{resource}-resource ({d['n_present'].iloc[0]}/{d['n_tasks'].iloc[0]} tasks)")
        a, b = at(d, from_pct)["error_pct"], at(d, to_pct)["error_pct"]
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


def figure3(ab: pd.DataFrame):
    """Association-bias heatmaps, one panel per data scale, rows Female/Male, annotated probabilities."""
    pcts = sorted(ab.index.get_level_values("data_pct").unique()) if len(ab) else []
    fig, axes = plt.subplots(1, max(1, len(pcts)), figsize=(4.2 * max(1, len(pcts)), 2.6), squeeze=False)
    if not pcts:
        axes[0][0].text(0.5, 0.5, "association bias not evaluated", ha="center", va="center")
        axes[0][0].axis("off")
        return fig
    counterpart = dict(OCCUPATION_PAIRS)
    for ax, pct in zip(axes[0], pcts):
        panel = ab.xs(pct, level="data_pct").reindex(["Female", "Male"])
        sns.heatmap(panel, annot=True, fmt=".2g", vmin=0, vmax=1, cmap="Reds", cbar=ax is axes[0][-1], ax=ax)
        ax.set_title(f"data {scale_label(pct)}")
        ax.set_ylabel("")
        ax.set_xticklabels([f"{o}\n>{counterpart[o]}" for o in panel.columns], fontsize=7, rotation=0)
    fig.suptitle("Figure 3 analog: P(first occupation preferred) on FairFace-like images")
    fig.tight_layout()
    return fig


def learning_curves(means: pd.DataFrame):
    """Group-average error (%) against examples seen with 95% intervals, one panel per group, one line
    per run (`means`: Estimates.groups)."""
    names = list(groups.HEADLINE)
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.2), squeeze=False)
    runs = sorted(means["run"].unique(), key=lambda r: (means.loc[means["run"] == r, "data_pct"].iloc[0], r))
    colors = dict(zip(runs, sns.color_palette("viridis", len(runs))))
    for ax, name in zip(axes[0], names):
        for run in runs:
            d = means[(means["group"] == name) & (means["run"] == run)].sort_values("examples_seen")
            if d["error_pct"].notna().any():
                ax.errorbar(d["examples_seen"], d["error_pct"], yerr=_yerr(d, "error_pct"), marker="o", ms=3,
                            color=colors[run], label=f"{run} ({scale_label(d['data_pct'].iloc[0])})")
        ax.set_xscale("log")
        ax.set_title(name.replace("_", " "), fontsize=9)
        ax.set_xlabel("examples seen")
    axes[0][0].set_ylabel("average error (%)")
    axes[0][0].legend(frameon=False, fontsize=7)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------ tables for dvc plots

def figure1_csv(data: pd.DataFrame) -> pd.DataFrame:
    """Wide table for `dvc plots`: data_pct and one column per Figure 1 panel (empty if not evaluated)."""
    wide = data.pivot_table(index="data_pct", columns="panel", values="value") if len(data) else pd.DataFrame()
    return wide.reindex(columns=list(FIG1_PANELS)).rename_axis(None, axis=1).reset_index(names="data_pct") \
        if len(wide) else pd.DataFrame(columns=["data_pct", *FIG1_PANELS])


def figure2_csv(data: pd.DataFrame) -> pd.DataFrame:
    """Wide table for `dvc plots`: data_pct, low_resource and high_resource average error (%)."""
    wide = data.pivot_table(index="data_pct", columns="resource", values="error_pct") if len(data) else pd.DataFrame()
    wide = wide.reindex(columns=["low", "high"]).rename(columns=lambda r: f"{r}_resource")
    return wide.rename_axis(None, axis=1).reset_index(names="data_pct") if len(wide) else \
        pd.DataFrame(columns=["data_pct", "low_resource", "high_resource"])


def group_curves_csv(means: pd.DataFrame) -> pd.DataFrame:
    """Wide table for `dvc plots`: examples_seen and one column <group>_<run> of average error (%)."""
    wide = means.pivot_table(index="examples_seen", columns=["group", "run"], values="error_pct")
    wide.columns = [f"{g}_{r}" for g, r in wide.columns]
    return wide.reset_index()


def figure4(curves: pd.DataFrame, arm_labels: dict[str, str]):
    """Figure 4 analog: Western, Culture and Fairness average error (%) against examples seen, one line per
    filter arm, with 95% paired-bootstrap bands."""
    panels = (("western", "Average Western"), ("culture", "Average Culture Diversity"), ("fairness", "Average Fairness"))
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    colors = dict(zip(arm_labels, sns.color_palette("colorblind", len(arm_labels))))
    for ax, (group, title) in zip(axes, panels):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("examples seen")
        ax.set_ylabel("error (%)")
        d = curves[curves["group"] == group]
        if d.empty:
            ax.text(0.5, 0.5, "no filter runs", ha="center", va="center", transform=ax.transAxes)
        for arm, label in arm_labels.items():
            a = d[d["arm"] == arm].sort_values("examples_seen")
            if a.empty:
                continue
            ax.plot(a["examples_seen"], a["error_pct"], marker="o", color=colors[arm], label=label,
                    ls="--" if arm == "random" else "-")
            ax.fill_between(a["examples_seen"], a["lo"], a["hi"], color=colors[arm], alpha=0.15)
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(fontsize=8)
    fig.suptitle("Figure 4 analog: quality filters (each arm keeps the same number of pairs)")
    fig.tight_layout()
    return fig


def figure5(rebalance: pd.DataFrame):
    """Figure 5 analog: low- and high-resource XM3600 average error (%) against data scale, before and after
    rebalancing, with 95% intervals of the difference as text."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, (group, title) in zip(axes, (("multilingual_low_resource", "Multilingual, low-resource"),
                                         ("multilingual_high_resource", "Multilingual, high-resource"))):
        d = rebalance[rebalance["group"] == group].sort_values("data_pct")
        ax.set_title(title, fontsize=10)
        ax.set_xscale("log")
        ax.set_xlabel("data scale (% of pool)")
        ax.set_ylabel("error (%)")
        if d.empty:
            ax.text(0.5, 0.5, "no rebalanced runs", ha="center", va="center", transform=ax.transAxes)
            continue
        ax.plot(d["data_pct"], d["before"], marker="o", label="Before (natural mix)")
        ax.plot(d["data_pct"], d["after"], marker="s", label="After (rebalanced)")
        ax.set_xticks(d["data_pct"], [scale_label(p) for p in d["data_pct"]])
        ax.set_xlim(d["data_pct"].min() / 2, d["data_pct"].max() * 2)
        ax.text(0.02, 0.02, "\n".join(f"Δ {scale_label(r['data_pct'])}: {r['diff']:+.2f} [{r['lo']:+.2f}, {r['hi']:+.2f}]"
                                      for _, r in d.iterrows()), transform=ax.transAxes, fontsize=7, va="bottom")
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(fontsize=8)
    fig.suptitle("Figure 5 analog: language rebalancing (Δ: error reduction, pp, 95% CI)")
    fig.tight_layout()
    return fig


FIG6_GROUPS = ("western", "culture", "multilingual_low_resource")


def figure6(groups_table: pd.DataFrame):
    """Figure 6 analog: average error (%) against examples seen for every natural run, colour by data scale,
    line style by model (the paper: ViT-B/L/H on 1B/10B/100B). groups_table: Estimates.groups rows."""
    titles = {"western": "Average Western", "culture": "Average Culture Diversity",
              "multilingual_low_resource": "Multilingual, low-resource"}
    fig, axes = plt.subplots(1, len(FIG6_GROUPS), figsize=(13, 3.6))
    pcts = sorted(groups_table["data_pct"].unique()) if len(groups_table) else []
    models = sorted(groups_table["model"].unique()) if len(groups_table) else []
    colors = dict(zip(pcts, sns.color_palette("viridis", max(len(pcts), 1))))
    styles = dict(zip(models, ["-", "--", ":", "-."] * 4))
    for ax, group in zip(axes, FIG6_GROUPS):
        ax.set_title(titles[group], fontsize=10)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(plt.NullFormatter())  # the log axis's minor labels overlap
        ax.set_xlabel("examples seen")
        ax.set_ylabel("error (%)")
        d = groups_table[groups_table["group"] == group] if len(groups_table) else groups_table
        for (model, pct, _run), r in (d.groupby(["model", "data_pct", "run"]) if len(d) else []):
            r = r.sort_values("examples_seen")
            ax.plot(r["examples_seen"], r["error_pct"], styles[model], marker="o", ms=3, color=colors[pct],
                    label=f"{model}, {scale_label(pct)}")
    if len(groups_table):
        axes[0].legend(fontsize=7)
    fig.suptitle(f"Figure 6 analog: data scale × model × examples seen ({len(models)} model size"
                 f"{'s' if len(models) != 1 else ''})")
    fig.tight_layout()
    return fig


def concept_frequency(lines: pd.DataFrame, binned: pd.DataFrame, tasks: dict[str, str]):
    """The concept-frequency law (analysis/frequency.py): per task (row) and data scale (column), each concept's value
    against its training pairs (log x), binned (dots: the image-weighted mean of the concepts in each half-decade),
    with the fitted line a + b·log10(pairs) and its 95% band (seeds, concepts and test images), one colour per
    checkpoint (examples seen); one x axis for all, so that a scale's shift shows. `tasks`: task -> value label. Zero-pair concepts are off the log axis (the fits
    table reports them)."""
    pcts = sorted(lines["data_pct"].unique()) if len(lines) else []
    seens = sorted(lines["examples_seen"].unique()) if len(lines) else []
    colors = dict(zip(seens, sns.color_palette("viridis", max(len(seens), 1))))
    fig, axes = plt.subplots(len(tasks), max(len(pcts), 1), figsize=(4.2 * max(len(pcts), 1), 3.2 * len(tasks)),
                             squeeze=False, sharex=True, sharey="row")
    for row, (task, label) in zip(axes, tasks.items()):
        for ax, pct in zip(row, pcts or [None]):
            ax.set_xscale("log")
            ax.set_xlabel("training pairs of the concept")
            ax.set_title(f"{task}, {scale_label(pct)} data" if pct is not None else task, fontsize=9)
            ax.set_ylabel(label if ax is row[0] else "")
            here = lines[(lines["task"] == task) & (lines["data_pct"] == pct)] if len(lines) else lines
            if here.empty:
                ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes)
                continue
            for seen, d in here.groupby("examples_seen"):
                x = 10 ** d["log10_pairs"]
                ax.plot(x, d["value"], color=colors[seen], label=f"{seen:,} seen")
                ax.fill_between(x, d["lo"], d["hi"], color=colors[seen], alpha=0.12)
                b = binned[(binned["task"] == task) & (binned["data_pct"] == pct) & (binned["examples_seen"] == seen)
                           & (binned["pairs"] > 0)]
                ax.plot(b["pairs"], b["value"], "o", ms=3, color=colors[seen])
    if len(pcts) and axes[0][0].get_legend_handles_labels()[0]:
        axes[0][0].legend(fontsize=7)
    fig.suptitle("Concept frequency: value against a concept's training pairs (lines: a + b·log10(pairs), 95% bands)")
    fig.tight_layout()
    return fig


def tradeoff(averages: pd.DataFrame, arm_labels: dict[str, str], control: str = "unfiltered"):
    """The quality-quantity trade-off (analysis/tradeoff.py): Western, Culture and Fairness average error (%) against
    examples seen (log x), one line per filter arm with its 95% band and the unfiltered control dashed, at the
    compute-matched budgets only."""
    panels = (("western", "Average Western"), ("culture", "Average Culture Diversity"), ("fairness", "Average Fairness"))
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    colors = dict(zip(arm_labels, sns.color_palette("colorblind", len(arm_labels))))
    for ax, (group, title) in zip(axes, panels):
        ax.set_title(title, fontsize=10)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(plt.NullFormatter())
        ax.set_xlabel("examples seen (budget)")
        ax.set_ylabel("error (%)")
        d = averages[averages["group"] == group]
        for arm, label in arm_labels.items():
            a = d[d["arm"] == arm].sort_values("examples_seen")
            if a.empty:
                continue
            color = "black" if arm == control else colors[arm]
            ax.plot(a["examples_seen"], a["error_pct"], marker="o", ms=4, color=color, label=label,
                    ls="--" if arm == control else "-")
            ax.fill_between(a["examples_seen"], a["lo"], a["hi"], color=color, alpha=0.12)
        ax.set_xticks(sorted(d["examples_seen"].unique()), [f"{s:,}" for s in sorted(d["examples_seen"].unique())],
                      fontsize=7)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=3, fontsize=7, frameon=False)
    fig.suptitle("Quality vs quantity: filter arms and the unfiltered pool at equal examples seen")
    fig.tight_layout(rect=(0, 0.14, 1, 1))
    return fig
