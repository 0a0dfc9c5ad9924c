"""Figures of the study. Each function takes a tidy table and returns a matplotlib Figure."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

KIND_COLORS = {"head": "#1f77b4", "other": "#7f7f7f", "culture": "#d62728", "landmark": "#2ca02c"}


def save(fig, path: str | Path, dpi: int = 150) -> Path:
    """Write a figure as PNG (parents created); the notebook still shows it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def language_shares(df: pd.DataFrame, title: str = "Page language shares"):
    """Bars per language (sorted by the paper's share) of the world's share against Table 15 (log scale)."""
    d = df[df["paper_pct"].notna()].sort_values("paper_pct")
    fig, ax = plt.subplots(figsize=(12, 3.8))
    x = np.arange(len(d))
    colors = np.where(d["group"] == "low", "#d62728", "#1f77b4")
    ax.bar(x - 0.2, d["paper_pct"], 0.4, color=colors, alpha=0.45, label="paper (Table 15)")
    ax.bar(x + 0.2, d["world_pct"], 0.4, color=colors, label="synthetic web")
    ax.set_xticks(x, [f"{lang}\n{'L' if g == 'low' else 'H'}" for lang, g in zip(d["language"], d["group"])], fontsize=7)
    ax.set_yscale("log")
    ax.set_ylim(1e-4, 100)
    ax.set_ylabel("% of pages")
    ax.set_title(title + " (red: low-resource; the pool's language strata follow Table 15 up to rounding)")
    ax.legend(frameon=False)
    return fig


def long_tail(freq: pd.DataFrame):
    """Rank-frequency of concepts on log-log axes, coloured by kind."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for kind, color in KIND_COLORS.items():
        d = freq[(freq["kind"] == kind) & (freq["count"] > 0)]
        ax.scatter(d["rank"], d["count"], s=6, color=color, label=f"{kind} ({(freq['kind'] == kind).sum()})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("concept rank")
    ax.set_ylabel("examples")
    ax.set_title("Long tail of concepts")
    ax.legend(frameon=False, fontsize=8)
    return fig


def region_income(table: pd.DataFrame):
    """Heatmap of the share of examples (%) by region and income group."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    import seaborn as sns  # here only: with scipy.stats it is 5 s of every stage's start on a 2-core CPU

    sns.heatmap(table, annot=True, fmt=".1f", cmap="Blues", ax=ax, cbar_kws={"label": "% of examples"})
    ax.set_xlabel("monthly income group (US$)")
    ax.set_title("Region × income")
    return fig


def image_grid(images: np.ndarray, labels: list[str], cols: int = 8):
    """A grid of images [N, H, W, 3] in [0, 1] with a short label under each."""
    n = len(images)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.6, rows * 1.9))
    for i, ax in enumerate(np.atleast_1d(axes).ravel()):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i], interpolation="nearest")
            ax.set_title(labels[i], fontsize=6)
    fig.tight_layout()
    return fig


def rebalancing(lang: pd.DataFrame, subset: str):
    """Language mix of one subset before and after rebalancing (like the paper's Figure 8), log scale."""
    d = lang[lang["subset"] == subset].sort_values("paper_pct", na_position="last")
    fig, ax = plt.subplots(figsize=(12, 3.8))
    x = np.arange(len(d))
    ax.bar(x - 0.2, d["natural_pct"].clip(lower=1e-4), 0.4, color="#7f7f7f", label="natural")
    ax.bar(x + 0.2, d["rebalanced_pct"].clip(lower=1e-4), 0.4,
           color=np.where(d["low_resource"], "#d62728", "#1f77b4"), label="rebalanced")
    for xi, n in zip(x, d["natural_count"]):
        if n == 0:
            ax.text(xi, 1.5e-4, "0", ha="center", fontsize=7, color="#d62728")
    ax.set_xticks(x, d["language"], fontsize=7)
    ax.set_yscale("log")
    ax.set_ylim(1e-4, 100)
    ax.set_ylabel("% of examples")
    ax.set_title(f"Language mix of the {subset} subset, before and after rebalancing "
                 "(red: low-resource; '0': none left to upsample)")
    ax.legend(frameon=False)
    return fig


def coverage(cov: pd.DataFrame, unit: str = "concepts"):
    """Fraction of `unit` (concepts, or a real pool's page languages) with at least k examples against subset size,
    one panel per k."""
    ks = sorted(cov["k"].unique())
    fig, axes = plt.subplots(1, len(ks), figsize=(4.5 * len(ks), 3.5), squeeze=False)
    for ax, k in zip(axes[0], ks):
        for kind, d in cov[cov["k"] == k].groupby("kind"):
            ax.plot(100 * d["fraction"], 100 * d["covered"], marker="o", label=kind)
        ax.set_xscale("log")
        ax.set_xlabel("subset (% of pool)")
        ax.set_ylabel(f"% of {unit} with ≥{k} examples")
        ax.set_ylim(-2, 102)
        ax.set_title(f"Long-tail coverage, k = {k}")
    axes[0][0].legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


def loss_curves(logs: dict[str, pd.DataFrame], title: str = "Training loss"):
    """Loss against examples seen for each run (log.jsonl tables): main run lines, cool-down branches dotted."""
    fig, (ax, ax_lr) = plt.subplots(2, 1, figsize=(7, 5.5), sharex=True, height_ratios=(3, 1))
    colors = _viridis(len(logs))
    for (name, log), color in zip(logs.items(), colors):
        main = log[log["phase"] == "main"]
        ax.plot(main["examples_seen"], main["loss"], color=color, label=name, lw=1.2)
        for i, (_, branch) in enumerate(log[log["phase"] != "main"].groupby("phase")):
            ax.plot(branch["examples_seen"], branch["loss"], color=color, ls=":", lw=1.5,
                    label=f"{name} cool-downs" if i == 0 else None)
        ax_lr.plot(main["examples_seen"], main["learning_rate"], color=color, lw=1)
    ax.set_yscale("log")
    ax.set_ylabel("sigmoid loss (per image)")
    ax.set_title(title)
    ax.legend(frameon=False, fontsize=8)
    ax_lr.set_ylabel("learning rate")
    ax_lr.set_xlabel("examples seen")
    return fig


PROBE_METRICS = {"imagenet_0shot_acc": "ImageNet-like 0-shot accuracy (%)", "coco_i2t_r1": "COCO-like i2t R@1 (%)"}


def probe_curves(probes: dict[str, pd.DataFrame], chance: dict[str, float] | None = None,
                 title: str = "Held-out probe while training (development key)"):
    """The probe's metrics against examples seen for each run (read_probes tables): the main run as
    lines, each cool-down's end as a dot (what evaluation sees); chance as a grey line."""
    fig, axes = plt.subplots(1, len(PROBE_METRICS), figsize=(11, 3.8))
    colors = _viridis(len(probes))
    for ax, (metric, label) in zip(axes, PROBE_METRICS.items()):
        for (name, table), color in zip(probes.items(), colors):
            main, cooled = table[table["phase"] == "main"], table[table["phase"] != "main"]
            ax.plot(main["examples_seen"], main[metric], color=color, lw=1.2, label=name)
            ax.plot(cooled["examples_seen"], cooled[metric], "o", color=color, ms=4,
                    label=f"{name} cooled down")
        if chance and metric in chance:
            ax.axhline(chance[metric], color="grey", lw=0.8, ls="--", label="chance")
        ax.set_xlabel("examples seen")
        ax.set_ylabel(label)
    axes[0].legend(frameon=False, fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def tokens_per_char(stats: pd.DataFrame):
    """Tokens per character of each language's captions, low-resource languages in red."""
    d = stats.sort_values("tokens_per_char")
    fig, ax = plt.subplots(figsize=(12, 3.2))
    colors = np.where(d["low_resource"], "#d62728", "#1f77b4")
    ax.bar(np.arange(len(d)), d["tokens_per_char"], color=colors)
    ax.set_xticks(np.arange(len(d)), d["language"], fontsize=7)
    ax.set_ylabel("tokens per character")
    ax.set_title("How finely the tokenizer cuts each language (red: low-resource)")
    return fig


def _viridis(n: int) -> list:
    """n colours evenly inside the viridis map, ends excluded (seaborn's color_palette("viridis", n))."""
    return [tuple(c[:3]) for c in plt.get_cmap("viridis")(np.linspace(0, 1, n + 2)[1:-1])]


FILTER_PANELS = (("language_group", "page language group"), ("region", "region"), ("income", "income ($/month)"),
                 ("concept_group", "concept group"), ("caption_kind", "caption kind"))


def filter_account(account: pd.DataFrame, arms: list[str] | None = None):
    """What each filter arm kept, by group: representation ratio (share kept / share of the pool; 1 = as in
    the pool) per grouping, one bar per arm. account: filtering.account.finish's table."""
    arms = arms or list(dict.fromkeys(account["arm"]))
    fig, axes = plt.subplots(1, len(FILTER_PANELS), figsize=(17, 3.6), sharey=True)
    colors = dict(zip(arms, plt.get_cmap("tab10").colors))
    width = 0.8 / len(arms)
    for ax, (grouping, title) in zip(axes, FILTER_PANELS):
        d = account[account["grouping"] == grouping]
        names = list(dict.fromkeys(d.sort_values("pool", ascending=False)["group"]))
        x = np.arange(len(names))
        for i, arm in enumerate(arms):
            a = d[d["arm"] == arm].set_index("group").reindex(names)
            ax.bar(x + (i - (len(arms) - 1) / 2) * width, a["representation_ratio"], width, color=colors[arm], label=arm)
        ax.axhline(1, color="black", lw=0.8)
        ax.set_xticks(x, names, rotation=40, ha="right", fontsize=8)
        ax.set_title(title, fontsize=10)
    axes[0].set_ylabel("share kept / share of pool")
    axes[0].legend(fontsize=8)
    fig.suptitle("What each filter kept (representation ratio per group; below 1: the filter removed the group more)")
    fig.tight_layout()
    return fig


def filter_languages(account: pd.DataFrame, low_resource: tuple[str, ...] = ()):
    """Kept share of each page language's pairs (%, 1 - removal rate) per arm, languages by pool size."""
    d = account[account["grouping"] == "language"]
    order = list(d[d["arm"] == d["arm"].iloc[0]].sort_values("pool", ascending=False)["group"])
    t = d.pivot(index="arm", columns="group", values="removal_rate").reindex(columns=order)
    fig, ax = plt.subplots(figsize=(14, 0.5 * len(t) + 1.5))
    im = ax.imshow(100 * (1 - t.to_numpy(float)), aspect="auto", cmap="viridis", vmin=0)
    ax.set_yticks(range(len(t)), t.index)
    ax.set_xticks(range(len(order)), [f"{lang}*" if lang in low_resource else lang for lang in order], rotation=90, fontsize=8)
    fig.colorbar(im, ax=ax, label="% of the language's pairs kept")
    ax.set_title("Pairs kept per page language (* low-resource), languages by pool size")
    fig.tight_layout()
    return fig
