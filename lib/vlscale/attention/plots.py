"""The attention stage's figures: the maps laid out as the paper's Table 6, and the focus scores by data scale."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from vlscale.analysis.fonts import use_fonts  # noqa: E402
from vlscale.attention.focus import upsample  # noqa: E402
from vlscale.attention.groups import GROUP_LABELS, GROUPS  # noqa: E402

METRIC_LABELS = {"energy": "attention mass on the object", "lift": "lift over a uniform map",
                 "hit": "pointing game: peak on the object"}


def attention_grid(images: np.ndarray, masks: np.ndarray, meta: pd.DataFrame, columns: list[tuple[str, np.ndarray]],
                   title: str | None = None):
    """One row per image (its concept, country, caption and group), the image, then one column per model with
    its attention (bilinear from the patch grid) over the image and the object's outline.

    images [R, px, px, 3] in [0, 1]; masks [R, px, px] bool; columns: (label, patch maps [R, gh, gw])."""
    family = use_fonts()
    rows, cols = len(images), 1 + len(columns)
    heats = [upsample(maps, images.shape[1]) for _, maps in columns]
    vmax = max(float(np.percentile(h, 99.5)) for h in heats) if heats else 1.0
    height = 1.35 * rows + (0.55 if title else 0.3)  # inches; the top strip holds the title and column names
    fig, axes = plt.subplots(rows, cols + 1, figsize=(2.9 + 1.35 * cols, height),
                             gridspec_kw={"width_ratios": [2.2] + [1] * cols}, squeeze=False)
    for i in range(rows):
        m = meta.iloc[i]
        label = axes[i][0]
        label.axis("off")
        label.text(1.0, 0.62, f"{m['concept_name']} ({m['country']})", ha="right", va="center", fontsize=8,
                   family=family, weight="bold", transform=label.transAxes)
        label.text(1.0, 0.40, m["caption"], ha="right", va="center", fontsize=8, family=family,
                   transform=label.transAxes)
        label.text(1.0, 0.18, f"{GROUP_LABELS[m['group']]} · {m['caption_language']}", ha="right", va="center",
                   fontsize=6.5, color="0.4", family=family, transform=label.transAxes)
        for j in range(cols):
            ax = axes[i][j + 1]
            ax.set_xticks([])
            ax.set_yticks([])
            ax.imshow(images[i], interpolation="nearest")
            if j:
                shown = ax.imshow(heats[j - 1][i], cmap="inferno", alpha=0.65, vmin=0, vmax=vmax,
                                  interpolation="nearest")
                ax.contour(masks[i], levels=[0.5], colors="cyan", linewidths=0.7)
            if i == 0:
                ax.set_title("image" if j == 0 else columns[j - 1][0], fontsize=8)
    fig.subplots_adjust(left=0.01, right=0.9, top=1 - (0.5 if title else 0.25) / height, bottom=0.01, wspace=0.05,
                        hspace=0.08)
    if title:
        fig.suptitle(title, fontsize=9, x=0.6, y=1 - 0.08 / height, va="top")
    if heats:
        bar = fig.colorbar(shown, cax=fig.add_axes([0.915, 0.3, 0.012, 0.4]))
        bar.set_label("attention / uniform", fontsize=7)
        bar.ax.tick_params(labelsize=6)
    return fig


def focus_by_scale(means: pd.DataFrame, metrics=("energy", "hit")):
    """Each group's mean focus (95% interval) against data scale, natural runs (the first seed of each scale);
    dotted: a uniform map's energy and a random peak's hit rate; dash-dotted: the centre prior's (the best fixed
    map, chosen on other images)."""
    d = means[means["curation"] == "natural"]
    seen = d.groupby("data_pct")["examples_seen"].apply(set)
    shared = max(set.intersection(*seen)) if len(seen) else None
    d = d[d["examples_seen"] == shared]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.2), squeeze=False)
    blind = {"energy": (("area", ":"), ("prior_energy", "-.")), "hit": (("hit_chance", ":"), ("prior_hit", "-."))}
    for ax, metric in zip(axes[0], metrics):
        for k, pool in enumerate([*GROUPS]):
            g = d[(d["pool"] == pool) & (d["metric"] == metric)].sort_values(["data_pct", "seed"])
            g = g.groupby("data_pct", as_index=False).first()
            color = f"C{k}"
            ax.errorbar(g["data_pct"], g["value"], yerr=[g["value"] - g["lo"], g["hi"] - g["value"]], marker="o",
                        ms=4, capsize=2, color=color, label=GROUP_LABELS[pool])
            for base, style in blind.get(metric, ()):
                b = d[(d["pool"] == pool) & (d["metric"] == base)]["value"]
                if len(b):
                    ax.axhline(float(b.iloc[0]), color=color, ls=style, lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("data scale (% of the pool)")
        ax.set_title(METRIC_LABELS[metric], fontsize=10)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False, fontsize=7)
    if shared is not None:
        fig.suptitle(f"Focus of the MAP-head attention at {shared:,} examples seen "
                     "(dotted: uniform map / random peak; dash-dotted: centre prior)", fontsize=9)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig
