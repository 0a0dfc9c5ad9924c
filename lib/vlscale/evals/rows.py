"""Results as rows: every protocol's outcome on one benchmark, as the tidy table and the items table
hold it.

A row is a dict: task (the names of evals/groups.py), metric ("error_pct", "gap_pct",
"male_preference_pct", "probability"), value, se (binomial, same unit), n (test items), and, except for
gaps, `item` ([n] int: the test image each outcome belongs to, an index into the benchmark's images;
a text→image outcome belongs to its caption's image) and `item_value` ([n] float in [0, 1]: success
per item, ties split). The per-item outcomes let analysis/uncertainty.py resample the same test images
for every run (a paired bootstrap) instead of trusting binomial errors.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from vlscale.config import OCCUPATION_PAIRS
from vlscale.config import REGIONS as WORLD_REGIONS
from vlscale.evals import protocols
from vlscale.evals.embedder import Embedder, Prompts
from vlscale.evals.groups import INCOME, REGIONS, XM3600_CODE, error_pct
from vlscale.world.spec import INCOME_GROUPS

# The world's income groups (and real Dollar Street's, by Table 10) -> groups.INCOME's task names.
INCOME_TASKS = dict(zip(INCOME_GROUPS, INCOME))
REGION_TASKS = dict(zip(WORLD_REGIONS, REGIONS))


def binomial_se_pct(p: float, n: int) -> float:
    """Standard error, in percentage points, of a proportion p (fraction) measured on n items."""
    return 100.0 * float(np.sqrt(p * (1.0 - p) / n)) if n > 0 else float("nan")


def row(task: str, metric: str, value: float, se: float, n: int, item=None, item_value=None) -> dict:
    out = dict(task=task, metric=metric, value=float(value), se=float(se), n=int(n))
    if item is not None:
        out |= dict(item=np.asarray(item, np.int32), item_value=np.asarray(item_value, np.float32))
    return out


def error_row(task: str, hits, item=None) -> dict:
    """Error % of per-item successes `hits` [n] (item: their test images, default 0..n-1)."""
    hits = np.asarray(hits, np.float64)
    acc = float(hits.mean())
    item = np.arange(hits.size) if item is None else item
    return row(task, "error_pct", error_pct(acc), binomial_se_pct(acc, hits.size), hits.size, item, hits)


def few_shot_rows(task: str, train_x, train_y, test_x, test_y, shots: int) -> list[dict]:
    """10-shot probe over the classes with at least `shots` training examples (rarer classes — a
    country with few images — leave the test set too). Returns one error row, or none without 2 classes."""
    train_y, test_y = np.asarray(train_y), np.asarray(test_y)
    counts = np.bincount(train_y, minlength=int(max(train_y.max(), test_y.max())) + 1)
    kept = np.flatnonzero(counts >= shots)
    if kept.size < 2:
        return []
    remap = np.full(counts.size, -1)
    remap[kept] = np.arange(kept.size)
    tr, te = remap[train_y] >= 0, remap[test_y] >= 0
    hits = protocols.linear_probe_hits(train_x[tr], remap[train_y[tr]], test_x[te], remap[test_y[te]],
                                       kept.size, shots=shots)
    return [error_row(task, hits, np.flatnonzero(te))]


def zero_shot(embedder: Embedder, prompts: Prompts, zimg, class_names, labels) -> np.ndarray:
    """[N] zero-shot success per image (ties split)."""
    return protocols.zero_shot_hits(zimg, prompts.classes(embedder, class_names), labels)


def classification_rows(name: str, zimg, labels, class_names, embedder: Embedder, prompts: Prompts,
                        train_z=None, train_labels=None, shots: int = 10) -> list[dict]:
    """0-shot (and 10-shot when a training split is given) errors of a classification benchmark."""
    rows = [error_row(f"{name}/0shot", zero_shot(embedder, prompts, zimg, class_names, labels))]
    if train_z is not None:
        rows += few_shot_rows(f"{name}/10shot", train_z, np.asarray(train_labels), zimg, np.asarray(labels), shots)
    return rows


def subgroup_rows(name: str, hits: np.ndarray, groups: np.ndarray, task_of: dict, gap_task: str) -> list[dict]:
    """Per-subgroup 0-shot errors and the maximum accuracy gap between subgroups (Table 4)."""
    gap, per_group = protocols.performance_disparity(hits, groups)
    rows, sizes = [], {}
    for g in per_group:
        if g not in task_of:
            raise ValueError(f"{name}: subgroup {g!r} is none of {sorted(task_of)}")
        sel = np.flatnonzero(groups == g)
        sizes[g] = sel.size
        rows.append(error_row(task_of[g], hits[sel], sel))
    best, worst = max(per_group, key=per_group.get), min(per_group, key=per_group.get)
    se = np.hypot(*(binomial_se_pct(per_group[g], sizes[g]) for g in (best, worst)))
    rows.append(row(gap_task, "gap_pct", 100.0 * gap, se, len(hits)))
    return rows


def zero_shot_subgroup_rows(name: str, zimg, class_names, labels, groups, task_of: dict, gap_task: str,
                            embedder: Embedder, prompts: Prompts) -> list[dict]:
    """Dollar Street / GeoDE: the 0-shot error, then each subgroup's error and their gap (Table 4)."""
    hits = zero_shot(embedder, prompts, zimg, class_names, labels)
    return [error_row(f"{name}/0shot", hits), *subgroup_rows(name, hits, np.asarray(groups), task_of, gap_task)]


def representation_bias_rows(task: str, zimg, embedder: Embedder, prompts: Prompts) -> list[dict]:
    """Table 3: % of images closer to the male than to the female prompt (ties half)."""
    z_male, z_female = prompts.classes(embedder, [prompts.male, prompts.female])
    prefers = protocols.representation_bias(zimg, z_male, z_female)["prefers_male"]
    frac = float(prefers.mean())
    return [row(task, "male_preference_pct", 100.0 * frac, binomial_se_pct(frac, len(zimg)), len(zimg),
                np.arange(len(zimg)), prefers)]


def association_bias_rows(zimg, is_female, embedder: Embedder, prompts: Prompts) -> list[dict]:
    """Figure 3: P(first occupation of each pair preferred) for female and for male images."""
    is_female = np.asarray(is_female, bool)
    if is_female.all() or not is_female.any():
        raise ValueError(f"association bias needs images of both genders; got {int(is_female.sum())} female "
                         f"of {is_female.size}")
    firsts, seconds = [a for a, _ in OCCUPATION_PAIRS], [b for _, b in OCCUPATION_PAIRS]
    prefers = protocols.association_preferences(zimg, prompts.classes(embedder, firsts),
                                                prompts.classes(embedder, seconds))  # [N, P]
    rows = []
    for p, first in enumerate(firsts):
        for gender, sel in (("female", np.flatnonzero(is_female)), ("male", np.flatnonzero(~is_female))):
            v = float(prefers[sel, p].mean())
            rows.append(row(f"fairface/association_bias/{first}/{gender}", "probability", v,
                            binomial_se_pct(v, sel.size) / 100.0, sel.size, sel, prefers[sel, p]))
    return rows


def retrieval_rows(name: str, zimg, ztxt, caption_image, ks: Sequence[int] = (1, 5, 10), images=None) -> list[dict]:
    """Image->text and text->image Recall@k errors; the task without @k is Recall@1 (Table 1).
    images: [N] the benchmark's index of each row of zimg (default 0..N-1), for the items."""
    caption_image = np.asarray(caption_image)
    images = np.arange(len(zimg)) if images is None else np.asarray(images)
    hits = protocols.retrieval_hits(zimg, ztxt, caption_image, ks)
    rows = []
    for k in ks:
        for d, item in (("i2t", images), ("t2i", images[caption_image])):
            rows.append(error_row(f"{name}/{d}" if k == 1 else f"{name}/{d}@{k}", hits[f"{d}@{k}"], item))
    return rows


def xm3600_rows(zimg, ztxt, caption_image, caption_language, languages: Iterable[str], images=None) -> list[dict]:
    """Per-language Recall@1 errors both ways: each language's captions against all images."""
    caption_language, caption_image = np.asarray(caption_language), np.asarray(caption_image)
    images = np.arange(len(zimg)) if images is None else np.asarray(images)
    rows = []
    for lang in languages:
        sel = caption_language == lang
        if not sel.any():
            continue
        hits = protocols.retrieval_hits(zimg, ztxt[sel], caption_image[sel], ks=(1,))
        code = XM3600_CODE.get(lang, lang)
        rows += [error_row(f"xm3600/i2t/{code}", hits["i2t@1"], images),
                 error_row(f"xm3600/t2i/{code}", hits["t2i@1"], images[caption_image[sel]])]
    return rows
