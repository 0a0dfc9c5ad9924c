"""How sure the figures stage is of each number, computed as a reviewer would from per-image outcomes.

- Test-set sampling: a paired bootstrap over test images. B resamples of image indices are drawn ONCE
  per (source, benchmark), the same for every run, seed and checkpoint, so that a difference between
  runs (a gain) or between checkpoints (a scaling curve) is resampled on the same images: its interval
  is that of the difference, narrower than two independent intervals would suggest. Every task's
  metric, group average, gain and disparity gap is recomputed per resample; intervals are percentile
  intervals (95% by default).
- Training seeds: runs that share (model, data_pct) are seed replicates. Point estimates (and each
  resample) average over them, and the seed spread (sd and range over seeds) is reported beside the
  test-sampling interval: the two are different sources of variation.
- Disparity (max - min over subgroups) is biased upward by noise: with equal true accuracies the
  observed gap is still positive. The permutation null (subgroup labels shuffled among the
  benchmark's images, outcomes kept) gives the gap expected from noise alone.
- Without items (results written without them, e.g. of real sets evaluated without them) a task's replicates are drawn
  from N(value, se) with its binomial se, independently per run and checkpoint, and `method` says so
  ("binomial", or "mixed" when only some reported tasks have items).
- The Wilcoxon signed-rank test over tasks is the paper's; it treats tasks as independent pairs,
  which they are not (one model, shared images), so its p-values are optimistic.
"""
from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from vlscale.analysis.results import ITEM_METRICS, TABLE1_TASKS, at, errors, final, no_items, scale_label
from vlscale.evals import groups

CELL = ["run", "examples_seen", "task"]  # one tidy result (its metric is a function of the task)
SCALE = ["model", "data_pct"]  # runs sharing these are seed replicates
WILCOXON_NOTE = ("tasks are correlated (one model, shared test images, overlapping classes): the signed-rank "
                 "test treats them as independent pairs, so its p-values are optimistic")


def _rng(seed: int, *names) -> np.random.Generator:
    """A generator of its own for (seed, names): adding a benchmark or a run changes no other draw."""
    return np.random.default_rng([seed, zlib.crc32("/".join(map(str, names)).encode())])


def resample_counts(n_images: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """[n_boot, n_images] float32: how often each image is drawn in each bootstrap resample
    (n_images draws with replacement; every row sums to n_images)."""
    idx = rng.integers(0, n_images, size=(n_boot, n_images))
    flat = (idx + n_images * np.arange(n_boot)[:, None]).ravel()
    return np.bincount(flat, minlength=n_boot * n_images).reshape(n_boot, n_images).astype(np.float32)


def interval(draws: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of replicates along the last axis (NaN where no replicate is finite)."""
    draws = np.atleast_2d(draws)
    q = 100 * np.array([(1 - level) / 2, (1 + level) / 2])
    out = np.full((len(draws), 2), np.nan)
    ok = np.isfinite(draws).any(axis=1)
    if ok.any():
        out[ok] = np.nanpercentile(draws[ok], q, axis=1).T
    return out[:, 0], out[:, 1]


def seed_spread(values) -> dict:
    """Spread of a quantity over training seeds: n_seeds, seed_sd (sample sd, NaN for one seed),
    seed_min, seed_max."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return {"n_seeds": len(v), "seed_sd": float(v.std(ddof=1)) if len(v) > 1 else np.nan,
            "seed_min": float(v.min()) if len(v) else np.nan, "seed_max": float(v.max()) if len(v) else np.nan}


def reported_tasks(tidy: pd.DataFrame) -> set[str]:
    """The tasks some figure or table reports (their items decide `method`; Recall@5/10 do not)."""
    tasks = {t for name in groups.HEADLINE for t in groups.AVERAGES[name]} | set(TABLE1_TASKS)
    tasks |= {t for subgroups in groups.DISPARITY.values() for t in subgroups}
    return tasks | set(tidy.loc[tidy["metric"].isin(["male_preference_pct", "probability"]), "task"])


# ---------------------------------------------------------------------------------- the replicates

def _item_draws(cells: pd.DataFrame, items: pd.DataFrame, n_boot: int, seed: int, paired: bool):
    """Bootstrap replicates [len(cells), n_boot] of the cells that have items (NaN rows elsewhere), and
    the largest |item mean - tidy value| (a check on the evaluate stage's two outputs)."""
    draws = np.full((len(cells), n_boot), np.nan)
    mismatch = 0.0
    cell_id = pd.Series(np.arange(len(cells)), index=pd.MultiIndex.from_frame(cells[CELL]))
    items = items[items["task"].isin(cells["task"])]
    for (source, bench), b in items.groupby(["source", "benchmark"], sort=True):
        n_images = int(b["item"].max()) + 1  # the benchmark's test set, the same for every run
        ids = cell_id.reindex(pd.MultiIndex.from_frame(b[CELL])).to_numpy()
        b = b.assign(cell=ids)[~np.isnan(ids)]
        b = b[cells["metric"].to_numpy()[b["cell"].astype(int)] != "gap_pct"]
        b = b[np.isin(cells["metric"].to_numpy()[b["cell"].astype(int)], list(ITEM_METRICS))]
        for unit, u in ([(None, b)] if paired else b.groupby("run")):
            counts = resample_counts(n_images, n_boot, _rng(seed, source, bench, *([] if paired else [unit])))
            col_cells, col = np.unique(u["cell"].astype(int), return_inverse=True)
            values = np.zeros((n_images, len(col_cells)), np.float32)
            present = np.zeros_like(values)
            # several outcomes of one image (captions of a text->image task) are resampled together
            np.add.at(values, (u["item"].to_numpy(), col), u["value"].to_numpy(np.float32))
            np.add.at(present, (u["item"].to_numpy(), col), 1.0)
            with np.errstate(invalid="ignore", divide="ignore"):
                means = (counts @ values).astype(float) / (counts @ present)  # [B, cells]
                point = values.sum(0, dtype=float) / present.sum(0)
            for j, c in enumerate(col_cells):
                to_metric = ITEM_METRICS[cells.at[c, "metric"]]
                draws[c] = to_metric(means[:, j])
                mismatch = max(mismatch, abs(float(to_metric(point[j])) - cells.at[c, "value"]))
    return draws, mismatch


def _subgroup_rows(cells: pd.DataFrame) -> dict[int, np.ndarray]:
    """gap cell row -> the rows of its subgroup tasks at the same run and checkpoint."""
    out = {}
    by_cell = {k: i for i, k in enumerate(zip(cells["run"], cells["examples_seen"], cells["task"]))}
    for i, r in cells[cells["metric"] == "gap_pct"].iterrows():
        subgroups = groups.DISPARITY.get(r["task"], ())
        rows = [by_cell[(r["run"], r["examples_seen"], t)] for t in subgroups
                if (r["run"], r["examples_seen"], t) in by_cell]
        if rows:
            out[i] = np.array(rows)
    return out


# ------------------------------------------------------------------------------------- the estimates

@dataclass
class Estimates:
    """Point estimates and replicates of every number the figures stage reports, for one source.

    Each table has a draws array of matching rows ([rows, n_boot]); value/error_pct is the point
    estimate, lo/hi its percentile interval. Seed replicates are averaged in by_scale, scale_groups,
    disparity and gains, whose seed_* columns give their spread.
    """

    cells: pd.DataFrame         # every tidy result: run, seed, model, data_pct, examples_seen, task, value, lo, hi
    draws: np.ndarray
    groups: pd.DataFrame        # headline group averages per (run, examples_seen): error_pct, lo, hi, ...
    group_draws: np.ndarray
    by_scale: pd.DataFrame      # final checkpoint, per (model, data_pct, task), averaged over seeds
    by_scale_draws: np.ndarray
    scale_groups: pd.DataFrame  # final checkpoint, per (model, data_pct, group), averaged over seeds
    scale_group_draws: np.ndarray
    disparity: pd.DataFrame     # Table 4: gap, interval and noise-only null per (model, data_pct, task)
    method: str                 # "bootstrap" | "binomial" | "mixed"
    without_items: list[str]    # reported tasks whose replicates are binomial
    n_boot: int
    level: float
    item_mismatch: float        # largest |metric of the items - tidy value| (0 when they agree)

    def gains(self, from_pct: float = 10, to_pct: float = 100) -> pd.DataFrame:
        """Per (model, group): error(from_pct) - error(to_pct) at the final checkpoint (pp; positive:
        more data helps), averaged over seeds, with its paired-bootstrap interval and its spread over
        seeds (per-seed gains paired by seed value). NaN where a scale is absent."""
        g, d = self.scale_groups, self.scale_group_draws
        rows, per_run_all = [], final(self.groups)
        for (model, name), sub in g.groupby(["model", "group"], sort=False):
            a, b = at(sub, from_pct), at(sub, to_pct)
            row = {"model": model, "group": name, "from_pct": from_pct, "to_pct": to_pct,
                   "error_from": np.nan, "error_to": np.nan, "gain": np.nan, "lo": np.nan, "hi": np.nan}
            if len(a) and len(b):
                diff = d[a.index[0]] - d[b.index[0]]
                lo, hi = interval(diff, self.level)
                row |= {"error_from": a["error_pct"].iloc[0], "error_to": b["error_pct"].iloc[0],
                        "gain": a["error_pct"].iloc[0] - b["error_pct"].iloc[0], "lo": lo[0], "hi": hi[0]}
            per_run = per_run_all[(per_run_all["model"] == model) & (per_run_all["group"] == name)]
            ea = at(per_run, from_pct).set_index("seed")["error_pct"]
            eb = at(per_run, to_pct).set_index("seed")["error_pct"]
            rows.append(row | seed_spread([ea[s] - eb[s] for s in ea.index if s in eb.index]))
        return pd.DataFrame(rows)

    def fit_draws(self) -> dict[tuple, np.ndarray]:
        """(model, data_pct, examples_seen, task) -> [n_boot] replicates of the seed-averaged error (%)
        at that checkpoint, for scaling.fit_tasks: the images of a resample are the same at every
        checkpoint, so a refit per resample sees one coherent curve."""
        e = errors(self.cells)
        out = {}
        for key, g in e.groupby([*SCALE, "examples_seen", "task"], sort=False):
            out[key] = self.draws[g.index].mean(axis=0)
        return out


def _over_seeds(table: pd.DataFrame, draws: np.ndarray, keys: list[str], value: str, level: float):
    """Average rows that differ only by run (seed replicates) at each run's final checkpoint."""
    last = final(table)
    rows, out_draws = [], []
    for key, g in last.groupby(keys, sort=True, dropna=False):
        d = draws[g.index].mean(axis=0)
        lo, hi = interval(d, level)
        first = g.iloc[0]
        rows.append({**dict(zip(keys, key)), **{c: first[c] for c in ("benchmark", "metric", "n_present",
                                                                        "n_tasks", "missing") if c in g},
                     value: float(g[value].mean()), "lo": lo[0], "hi": hi[0],
                     "runs": "+".join(sorted(g["run"])), "examples_seen": int(g["examples_seen"].max()),
                     **seed_spread(g[value])})
        out_draws.append(d)
    return pd.DataFrame(rows), np.array(out_draws).reshape(len(rows), -1)


def _group_table(cells: pd.DataFrame, draws: np.ndarray, level: float, averages: Mapping[str, Sequence[str]]):
    """Group averages (`averages`: name -> tasks) of errors (%) per (run, examples_seen), over the
    tasks PRESENT of each group."""
    rows, out = [], []
    e = errors(cells)
    for (run, seen), g in e.groupby(["run", "examples_seen"], sort=True):
        point = dict(zip(g["task"], g["value"]))
        reps = dict(zip(g["task"], draws[g.index]))
        first = g.iloc[0]
        for name, tasks in averages.items():
            mean, present = groups.group_mean(point, tasks)
            rep, _ = groups.group_mean(reps, tasks)
            lo, hi = interval(rep if present else np.full(draws.shape[1], np.nan), level)
            rows.append({"run": run, "seed": first["seed"], "model": first["model"], "data_pct": first["data_pct"],
                         "examples_seen": seen, "group": name, "error_pct": float(mean), "lo": lo[0], "hi": hi[0],
                         "n_present": len(present), "n_tasks": len(tasks),
                         "missing": ",".join(t for t in tasks if t not in point)})
            out.append(rep if present else np.full(draws.shape[1], np.nan))
    return pd.DataFrame(rows), np.array(out).reshape(len(rows), draws.shape[1])


def _permutation_null(items: pd.DataFrame, cell: pd.Series, subgroups, n_perm: int, rng) -> np.ndarray:
    """[n_perm] gaps (pp) with subgroup labels shuffled among the images, outcomes kept (None: no items)."""
    sub = items[(items["run"] == cell["run"]) & (items["examples_seen"] == cell["examples_seen"])
                & items["task"].isin(subgroups)]
    if sub.empty or sub["task"].nunique() < 2:
        return None
    labels = pd.Categorical(sub["task"]).codes
    values = sub["value"].to_numpy(float)
    perm = rng.permuted(np.tile(labels, (n_perm, 1)), axis=1)
    acc = np.stack([(perm == g) @ values / (labels == g).sum() for g in np.unique(labels)], axis=1)
    return 100 * (acc.max(1) - acc.min(1))


def _binomial_null(cells: pd.DataFrame, rows: np.ndarray, n_perm: int, rng) -> np.ndarray:
    """[n_perm] gaps (pp) of subgroups drawn with one pooled accuracy and their own sizes."""
    n = cells.loc[rows, "n"].to_numpy(int)
    if (n <= 0).any():
        return np.full(n_perm, np.nan)
    p = float(np.sum(n * (1 - cells.loc[rows, "value"].to_numpy() / 100)) / n.sum())
    acc = rng.binomial(n[None, :], p, size=(n_perm, len(n))) / n[None, :]
    return 100 * (acc.max(1) - acc.min(1))


def _disparity(cells, draws, items, subgroup_rows, n_boot, seed, level) -> pd.DataFrame:
    gaps = final(cells[cells["metric"] == "gap_pct"])
    rows = []
    for (model, pct, task), g in gaps.groupby([*SCALE, "task"], sort=True):
        subgroups = groups.DISPARITY.get(task, ())
        nulls, kinds = [], set()
        for i, r in g.iterrows():
            rng = _rng(seed, "null", r["run"], task)
            null = _permutation_null(items, r, subgroups, n_boot, rng) if len(items) else None
            if null is None and i in subgroup_rows:
                null, kind = _binomial_null(cells, subgroup_rows[i], n_boot, rng), "binomial"
            else:
                kind = "permutation" if null is not None else "none"
            nulls.append(null if null is not None else np.full(n_boot, np.nan))
            kinds.add(kind)
        null = np.mean(nulls, axis=0)
        value = float(g["value"].mean())
        lo, hi = interval(draws[g.index].mean(axis=0), level)
        ok = np.isfinite(null).any()
        rows.append({"model": model, "data_pct": pct, "task": task, "value": value, "lo": lo[0], "hi": hi[0],
                     "null_mean": float(np.nanmean(null)) if ok else np.nan,
                     "null_p95": float(np.nanpercentile(null, 95)) if ok else np.nan,
                     "p_noise": float(np.mean(null >= value)) if ok else np.nan,
                     "null": "+".join(sorted(kinds)), "runs": "+".join(sorted(g["run"])), **seed_spread(g["value"])})
    return pd.DataFrame(rows, columns=["model", "data_pct", "task", "value", "lo", "hi", "null_mean", "null_p95",
                                       "p_noise", "null", "runs", "n_seeds", "seed_sd", "seed_min", "seed_max"])


def estimate(tidy: pd.DataFrame, items: pd.DataFrame | None = None, n_boot: int = 1000, seed: int = 0,
             level: float = 0.95, paired: bool = True,
             extra_groups: Mapping[str, Sequence[str]] | None = None) -> Estimates:
    """Replicates and intervals of everything the stage reports, from one source's tidy results and items.

    items: results.read_items' table (rows of other sources are ignored; None or empty: binomial).
    paired=False draws each run's resample independently: only to show what pairing buys.
    extra_groups: averages reported beside groups.HEADLINE (name -> tasks), e.g. the low-resource
    languages without those whose captions mostly equal English.
    """
    if "seed" not in tidy:
        tidy = tidy.assign(seed=0)
    dup = tidy.duplicated(CELL)
    if dup.any():
        r = tidy[dup].iloc[0]
        raise ValueError(f"two results for run {r['run']} task {r['task']} at {r['examples_seen']} examples seen; "
                         "expected one row per (run, examples_seen, task)")
    cells = tidy.reset_index(drop=True)
    items = no_items() if items is None else items
    items = items[items["source"].isin(cells["source"].unique())]
    draws, mismatch = _item_draws(cells, items, n_boot, seed, paired)
    has_items = np.isfinite(draws).any(axis=1)

    subgroup_rows = _subgroup_rows(cells)
    rng = _rng(seed, "binomial")
    for i in np.flatnonzero(~has_items):
        if i in subgroup_rows:
            continue
        se = cells.at[i, "se"]
        draws[i] = cells.at[i, "value"] + (se if np.isfinite(se) else 0.0) * rng.standard_normal(n_boot)
    for i, rows in subgroup_rows.items():  # after the subgroups: max - min of their accuracies, per resample
        draws[i] = draws[rows].max(axis=0) - draws[rows].min(axis=0)

    reported = reported_tasks(cells)
    non_gap = cells["metric"] != "gap_pct"
    without = sorted(set(cells.loc[non_gap & ~has_items & cells["task"].isin(reported), "task"]))
    with_items = set(cells.loc[non_gap & has_items & cells["task"].isin(reported), "task"])
    method = "bootstrap" if not without else ("mixed" if with_items else "binomial")
    lo, hi = interval(draws, level)
    cells = cells.assign(lo=lo, hi=hi, has_items=has_items)

    averages = {name: groups.AVERAGES[name] for name in groups.HEADLINE} | dict(extra_groups or {})
    group_table, group_draws = _group_table(cells, draws, level, averages)
    by_scale, by_scale_draws = _over_seeds(cells, draws, [*SCALE, "task"], "value", level)
    scale_groups, scale_group_draws = _over_seeds(group_table, group_draws, [*SCALE, "group"], "error_pct", level)
    return Estimates(
        cells=cells, draws=draws, groups=group_table, group_draws=group_draws, by_scale=by_scale,
        by_scale_draws=by_scale_draws, scale_groups=scale_groups, scale_group_draws=scale_group_draws,
        disparity=_disparity(cells, draws, items, subgroup_rows, n_boot, seed, level), method=method,
        without_items=without, n_boot=n_boot, level=level, item_mismatch=mismatch)


# ------------------------------------------------------------------------------------------ Wilcoxon

def wilcoxon_scales(by_scale: pd.DataFrame, tasks, from_pct: float = 10, to_pct: float = 100) -> dict:
    """Wilcoxon signed-rank test of error (%) at from_pct vs to_pct data, paired by task over the tasks
    present at both scales (by_scale: Estimates.by_scale, seed-averaged at the final checkpoint).
    median_difference = median(error(from) - error(to)) (positive: more data helps). Fewer than 3
    pairs, or all differences zero, give NaN and a reason (with fewer than 6 pairs a two-sided p can
    never fall below 0.05). The pairs are correlated tasks (WILCOXON_NOTE)."""
    d = errors(by_scale)
    a = at(d, from_pct).drop_duplicates("task").set_index("task")["value"]
    b = at(d, to_pct).drop_duplicates("task").set_index("task")["value"]
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
