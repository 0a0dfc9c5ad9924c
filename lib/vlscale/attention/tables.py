"""The attention stage's focus scores as a table (the measured Table 6), for the notebook and, as a latex.Table, for
the figures stage's paper/tables/."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from vlscale.analysis.latex import Table, ci
from vlscale.analysis.results import scale_label
from vlscale.attention.groups import GROUP_LABELS, METRICS, POOLS

SUMMARY_PATH = Path("results/attention/summary.json")  # the attention stage's summary, which these tables lay out

PER_SCALE = (*METRICS, "shuffled_energy", "shuffled_hit")  # what each scale's model scores (its own maps)
BLIND = ("area", "prior_energy", "hit_chance", "prior_hit", "energy_bound")  # the same for every model


# metrics/attention.json (and summary.json) keys other stages read
MEANS = "means"  # per checkpoint, pool and score: value, 95% interval (attention/tables.py lays them out)
EVIDENCE = "evidence"  # finding 8's comparisons by name (vlscale.analysis.evidence records)
EVIDENCE_SETUP = "evidence_setup"  # per model: examples seen, configurations and their seeds, seed variance
IMAGES = "images"  # probe images
PER_GROUP = "per_group"  # probe images per group
GRID = "grid"  # the patch grid [rows, columns]
IMAGE_PX = "image_px"
POINTING_RADIUS_PX = "pointing_radius_px"
PLAN = "plan"  # vlscale.plan's record: the pool and what it skipped


def _shared_seen(d: pd.DataFrame) -> int:
    return max(set.intersection(*d.groupby("data_pct")["examples_seen"].apply(set)))


def focus_table(summary: dict) -> pd.DataFrame:
    """Table 6's measured analog: per group, each natural data scale's energy, lift, pointing hit and its
    image-shuffled energy and hit at the examples seen the scales share: the mean over the scale's seeds with, for
    several seeds, their range (lowest and highest seed), else the 95% interval over the probe images (`spread`
    says which); beside them what content-free maps score: uniform (area), the centre prior's energy and hit, a
    random peak (hit_chance), and energy's bound on the grid (energy_bound)."""
    m = pd.DataFrame(summary[MEANS])
    d = m[m["curation"] == "natural"]
    if d.empty:
        return pd.DataFrame()
    seen = _shared_seen(d)
    d = d[d["examples_seen"] == seen].groupby(["data_pct", "pool", "metric"]).agg(
        value=("value", "mean"), lo=("lo", "first"), hi=("hi", "first"), low=("value", "min"), high=("value", "max"),
        seeds=("seed", "nunique"))
    several = d["seeds"] > 1  # several seeds: their range, not one seed's image interval
    d.loc[several, "lo"], d.loc[several, "hi"] = d.loc[several, "low"], d.loc[several, "high"]
    scales = sorted({i[0] for i in d.index})
    rows = []
    for pool in POOLS:
        row = {"pool": pool, "examples_seen": seen, "seeds": "/".join(str(int(d.loc[(p, pool, "energy"), "seeds"]))
                                                                    for p in sorted({i[0] for i in d.index}))}
        for pct in scales:
            for metric in PER_SCALE:
                r = d.loc[(pct, pool, metric)]
                row[(pct, metric)] = (r["value"], r["lo"], r["hi"])
        for base in BLIND:
            r = d.loc[(scales[0], pool, base)]
            row[base] = (r["value"], r["lo"], r["hi"])
        rows.append(row)
    return pd.DataFrame(rows)


def focus_tabular(summary: dict) -> Table | None:
    """focus_table as the paper prints it: mass and hit per scale, then the blind maps' (uniform, centre prior, random
    peak) and the bound; None without natural runs."""
    t = focus_table(summary)
    if t.empty:
        return None
    scales = sorted({k[0] for k in t.columns if isinstance(k, tuple)})
    header = ["group"] + [f"{scale_label(s)} {name}" for name in ("mass", "hit") for s in scales] + \
             ["uniform mass", "centre mass", "random-peak hit", "centre hit", "one-hot bound"]
    rows = []
    for r in t.itertuples(index=False):
        r = dict(zip(t.columns, r))
        rows.append([GROUP_LABELS[r["pool"]]]
                    + [ci(*(100 * np.asarray(r[(s, m)])), digits=1) for m in ("energy", "hit") for s in scales]
                    + [f"{100 * r[b][0]:.1f}" for b in ("area", "prior_energy", "hit_chance", "prior_hit",
                                                        "energy_bound")])
    caption = (f"Focus of the MAP-head attention at {int(t['examples_seen'].iloc[0]):,} examples seen: the share of "
               "attention on the object (mass, %) and the pointing-game hit rate (%) per data scale, the mean over "
               f"the scale's seeds ({t['seeds'].iloc[0]} seeds at {', '.join(scale_label(x) for x in scales)}) with the "
               "range over its seeds, or the 95% interval over the probe images for one seed; beside them what content-free maps score: a uniform map's mass, "
               "the centre prior's mass and hit (the best fixed map, chosen on other images: objects sit near the "
               "centre), a random peak's hit rate, and the largest mass any map on the patch grid can reach (a "
               "one-hot map at the cell the object covers most).")
    return Table(caption, header, rows, "tab:attention_focus", "l" + "r" * (len(header) - 1))
