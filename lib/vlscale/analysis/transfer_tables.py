"""The Table 2 and Table 12 analogs (arXiv 2502.07617 §4.5) from the transfer stage's metrics/transfer.json: the
generative transfers' scores per setting (frozen, unfrozen tower) and data scale, beside the blind chance level and
the oracle. Table 2 gives each task family's score and the average with its 95% interval (pretraining seeds and test
images, as finding 5 reads it); Table 12 every task's score. Scores are means over the pretraining seeds."""
from __future__ import annotations

import numpy as np

from vlscale.analysis.latex import Table, ci
from vlscale.analysis.results import scale_label
from vlscale.transfer import results

FAMILY_LABELS = {"semantics": "Semantics", "culture": "Culture", "multilinguality": "Multilinguality",
                 "captioning": "COCO captions"}
TASK_LABELS = {"caption_en": "Caption en", "caption_page": "Caption (page lang.)", "object": "What",
               "country": "Country", "region": "Region", "person": "Person?", "who": "Who",
               results.COCO_TASK: "COCO caption"}
UNITS = ("Captions: CIDEr; questions: exact match (%); a family's score is the mean of its tasks', the average the "
         "mean of the families'.")


def _data(t, model: str, pct: float) -> str:
    """A row's data scale, and its model where the table has several."""
    several = t.index.get_level_values("model").nunique() > 1
    return f"{scale_label(pct)} ({model})" if several else scale_label(pct)


def _level(metrics: dict, setting: str, pct: float) -> tuple[float, float, float]:
    rec = metrics.get(results.EVIDENCE, {}).get(f"level/transfer/{setting}/{scale_label(pct)}")
    if rec is None:
        return np.nan, np.nan, np.nan
    lo, hi = rec["ci95"]
    return rec["value"], np.nan if lo is None else lo, np.nan if hi is None else hi


def _checks(metrics: dict, cells) -> list[list[str]]:
    names = ({"chance": "Chance: best training caption", "oracle": "Oracle: a human reference"}
             if metrics.get("source") == "coco" else
             {"chance": "Chance: majority answer", "oracle": "Oracle: the world's answer"})
    return [[f"{name} (all scales)", "--", *cells(metrics[results.CHECKS][check])]
            for check, name in names.items() if check in metrics.get(results.CHECKS, {})]


def table2(metrics: dict) -> Table | None:
    """Table 2's analog (None without a transfer)."""
    if not metrics.get(results.SCORES):
        return None
    t = results.table2(metrics)
    families = [f for f in results.FAMILIES if f in t.columns]
    rows: list = []
    for setting in dict.fromkeys(t.index.get_level_values("setting")):
        rows.append(f"{setting} image tower")
        for (_, model, pct), r in t.loc[[setting]].iterrows():
            # the interval is the judged model's (finding 5 reads it); another model's average stands alone
            level = _level(metrics, setting, pct) if model == metrics.get(results.MODEL) else (r["average"], np.nan,
                                                                                                np.nan)
            rows.append([_data(t, model, pct), str(int(r["seeds"])), *[f"{r[f]:.1f}" for f in families],
                         ci(*level)])
    rows += _checks(metrics, lambda c: [*[f"{results.family_scores(c['tasks'])[f]:.1f}" for f in families],
                                        f"{c['average']:.1f}"])
    header = ["Data", "seeds", *[FAMILY_LABELS[f] for f in families], "Average [95% CI]"]
    return Table("Generative transfer (Table 2 analog): a PaliGemma-style model on each data scale's image tower, "
                 "per task family.", header, rows, "tab:transfer_table2", "lr" + "r" * (len(families) + 1),
                 (UNITS, "The interval counts the pretraining seeds (where there are two or more) and the test "
                  "images."))


def table12(metrics: dict) -> Table | None:
    """Table 12's analog: every task (None without a transfer)."""
    if not metrics.get(results.SCORES):
        return None
    t = results.table12(metrics)
    names = [n for n in (*results.TASKS, results.COCO_TASK) if n in t.columns]
    rows: list = []
    for setting in dict.fromkeys(t.index.get_level_values("setting")):
        rows.append(f"{setting} image tower")
        for (_, model, pct), r in t.loc[[setting]].iterrows():
            rows.append([_data(t, model, pct), str(int(r["seeds"])), *[f"{r[n]:.1f}" for n in names]])
    rows += _checks(metrics, lambda c: [f"{c['tasks'][n]:.1f}" for n in names])
    header = ["Data", "seeds", *[TASK_LABELS[n] for n in names]]
    return Table("Generative transfer per task (Table 12 analog).", header, rows, "tab:transfer_table12",
                 "lr" + "r" * len(names), (UNITS,))
