"""A transfer stage's results as numbers: each task's score, the task families' and their average (arXiv 2502.07617
Table 2 groups the tasks so), and the Table 2 and Table 12 analogs from metrics/transfer.json; the keys of that file
other stages read (the figures and paper stages)."""
from __future__ import annotations

import numpy as np
import pandas as pd

# metrics/transfer.json's keys that the figures and paper stages read
SCORES, CHECKS, EVIDENCE, SKIPPED = "scores", "checks", "evidence", "skipped"
TASKS = ("caption_en", "caption_page", "object", "country", "region", "person", "who")  # tasks.py draws them
COCO_TASK = "caption_coco"  # a real pool's transfer: COCO captions (coco.py)
CAPTION_TASKS = ("caption_en", "caption_page", COCO_TASK)  # scored by CIDEr; the others by exact match
FAMILIES = {"semantics": ("caption_en", "object", "person", "who"), "culture": ("country", "region"),
            "multilinguality": ("caption_page",), "captioning": (COCO_TASK,)}  # Table 2's grouping of the tasks
MODEL = "model"  # the model whose natural runs' transfers are compared (the params' model block, as the figures')


def task_scores(rows: pd.DataFrame) -> dict[str, float]:
    """Each task's score on graded rows: CIDEr for a caption task, exact match in % for a question."""
    out = {}
    for task, group in rows.groupby("task", sort=False):
        out[task] = float(group["cider"].mean() if task in CAPTION_TASKS else 100 * group["exact_match"].mean())
    return out


def family_scores(scores: dict[str, float]) -> dict[str, float]:
    return {family: float(np.mean([scores[t] for t in members if t in scores]))
            for family, members in FAMILIES.items() if any(t in scores for t in members)}


def average(scores: dict[str, float]) -> float:
    """The average over the families of their tasks' mean (the paper's Table 2 groups tasks so)."""
    return float(np.mean(list(family_scores(scores).values())))


def image_scores(rows: pd.DataFrame) -> pd.DataFrame:
    """[images x tasks] per-image score (CIDEr, or exact match in %)."""
    value = np.where(rows["task"].isin(CAPTION_TASKS), rows["cider"], 100 * rows["exact_match"])
    return rows.assign(value=value).pivot_table(index="image", columns="task", values="value", aggfunc="mean")


def average_draws(rows: pd.DataFrame, counts: np.ndarray) -> np.ndarray:
    """[B] the average of each bootstrap resample of the test images (counts [B, images]); a task's mean is over its
    scored images, as the point estimate's (a caption of a language with one test image has no CIDEr)."""
    per_image = image_scores(rows).reindex(range(counts.shape[1]))
    values = per_image.to_numpy()
    scored = np.isfinite(values)
    means = (counts @ np.where(scored, values, 0.0)) / (counts @ scored)
    by_task = dict(zip(per_image.columns, means.T))
    families = [np.mean([by_task[t] for t in members if t in by_task], axis=0)
                for members in FAMILIES.values() if any(t in by_task for t in members)]
    return np.mean(families, axis=0)


def _by_scale(metrics: dict, key: str) -> pd.DataFrame:
    """metrics[SCORES]' values under `key` (a mapping per transfer) per setting, model and data scale: means over the
    pretraining seeds, and how many."""
    rows = [{"setting": s["setting"], "data_pct": s["data_pct"], "model": s["model"], "run": s["run"],
             **(s[key] if isinstance(s[key], dict) else {key: s[key]})} for s in metrics[SCORES].values()]
    table = pd.DataFrame(rows)
    keys = ["setting", "model", "data_pct"]
    values = [c for c in table.columns if c not in (*keys, "run")]
    return table.groupby(keys)[values].mean().assign(seeds=table.groupby(keys)["run"].nunique())


def table2(metrics: dict) -> pd.DataFrame:
    """The paper's Table 2 analog: per setting, model and data scale, each family's score and the average (means
    over the pretraining seeds, and how many)."""
    return _by_scale(metrics, "families").join(_by_scale(metrics, "average")[["average"]])


def table12(metrics: dict) -> pd.DataFrame:
    """The paper's Table 12 analog: every task's score per setting, model and data scale (means over seeds)."""
    return _by_scale(metrics, "tasks")
