"""The attention stage's focus scores as a table (the measured Table 6), for the notebook and, in LaTeX, for the
figures stage's paper/tables/."""
from __future__ import annotations

import numpy as np
import pandas as pd

from vlscale.analysis.latex import ci, tabular, tex
from vlscale.analysis.results import scale_label
from vlscale.attention.groups import GROUP_LABELS, METRICS, POOLS


def focus_table(summary: dict) -> pd.DataFrame:
    """Table 6's measured analog: per group, each natural data scale's energy, lift and pointing hit (95%
    interval) at the examples seen they share, beside what a uniform map or a random peak scores and the
    grid's ceiling."""
    m = pd.DataFrame(summary["means"])
    d = m[m["curation"] == "natural"]
    if d.empty:
        return pd.DataFrame()
    seen = max(set.intersection(*d.groupby("data_pct")["examples_seen"].apply(set)))
    d = d[d["examples_seen"] == seen].sort_values(["data_pct", "seed"]).groupby(["data_pct", "pool", "metric"]).first()
    rows = []
    for pool in POOLS:
        row = {"pool": pool, "examples_seen": seen}
        for pct in sorted({i[0] for i in d.index}):
            for metric in METRICS:
                r = d.loc[(pct, pool, metric)]
                row[(pct, metric)] = (r["value"], r["lo"], r["hi"])
        any_pct = min(i[0] for i in d.index)
        for base in ("area", "hit_chance", "oracle_energy"):
            row[base] = d.loc[(any_pct, pool, base), "value"]
        rows.append(row)
    return pd.DataFrame(rows)


def focus_latex(summary: dict) -> str:
    t = focus_table(summary)
    if t.empty:
        return ""
    scales = sorted({k[0] for k in t.columns if isinstance(k, tuple)})
    header = ["group"] + [f"{scale_label(s)} {name}" for name in ("mass", "hit") for s in scales] + \
             ["uniform", "random peak", "ceiling"]
    rows = []
    for r in t.itertuples(index=False):
        r = dict(zip(t.columns, r))
        label = GROUP_LABELS[r["pool"]]
        rows.append([tex(label)] + [ci(*(100 * np.asarray(r[(s, m)])), digits=1) for m in ("energy", "hit")
                                    for s in scales]
                    + [f"{100 * r['area']:.1f}", f"{100 * r['hit_chance']:.1f}", f"{100 * r['oracle_energy']:.1f}"])
    caption = (f"Focus of the MAP-head attention at {int(t['examples_seen'].iloc[0]):,} examples seen: the share of "
               "attention on the object (mass, \\%) and the pointing-game hit rate (\\%) per data scale, with 95\\% "
               "intervals over the probe images; a uniform map's mass, a random peak's hit rate and the patch "
               "grid's ceiling beside them.")
    return tabular(header, rows, caption, "tab:attention_focus", "l" + "r" * (len(header) - 1))
