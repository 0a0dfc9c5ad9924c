"""The concept-frequency law (Udandarao et al. 2024, arXiv 2404.04125, "No 'zero-shot' without exponential data"),
measured on the synthetic web, whose truth gives every concept's exact number of training pairs.

Per concept, the natural runs' zero-shot accuracy on the ImageNet-like analog (its 143 Western head concepts) and
image-to-text Recall@1 on the COCO-like analog (images of any concept, so tail concepts too), against the concept's
pairs in the run's subset (the sample stage's data/concept_counts.parquet: the image's true concept, exact). The
concept of each test image comes from re-drawing the analog (a pure function of the world, its size and the key the
evaluate stage recorded in analogs.json) in the world the counts were made in (checked by its fingerprint).

For each task, data scale and cool-down checkpoint (examples seen) the law is the least-squares line
    value (%) = a + b · log10(pairs)
over the test images of the concepts with pairs > 0 (a concept weighs by its images: the ImageNet-like analog's are
equal); the images of zero-pair concepts are reported apart (their mean). `level` is the line at one reference
x_ref per task (the median of log10 pairs over every scale's counted concepts), where the scales' lines are compared.
Exposures (pairs × examples seen / subset size) differ from pairs by a constant per run, so a fit against them has
the same slope and an intercept moved by log10(examples seen / subset size) · b.

Uncertainty, as the rest of the figures stage weighs it:
- test images and concepts: each replicate refits with image weights (the figures stage's own paired image
  resamples, uncertainty.resample_counts per (source, benchmark)) times concept weights (concepts resampled with
  replacement, one draw per benchmark shared by every run): a two-stage bootstrap, conservative, and paired across
  runs, scales and checkpoints;
- training noise: seed replicates of a data scale (and the random filter arm's runs, s10's data) are averaged, and
  each interval is evidence.difference's, with the seed variance pooled over the scales that have replicates at that
  checkpoint.
One curve or a shifted curve: at equal examples seen, each larger scale against the next smaller one, the difference
of slopes and of levels at x_ref. If a concept's accuracy followed its pairs whatever data set it is in, the levels
would be equal (one curve in pairs); if it followed exposures (how often its pairs were seen) alone, the larger set,
seen fewer times per pair, would lie lower by b · log10(N_large / N_small). `beyond_exposures` is the level difference
minus that prediction. The answer: "consistent with one curve in pairs" (level difference within noise,
beyond_exposures not: a shift is not shown, which is not a test of its absence),
"shifted up|down, as exposures predict" (the reverse), "shifted ..., beyond what exposures predict" (neither holds),
or "inconclusive" (noise admits both).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from vlscale.analysis import evidence, study, uncertainty
from vlscale.analysis.results import scale_label

COUNTS_PATH = Path("data/concept_counts.parquet")
# task -> (its analog, what its value is); an item of each is one test image
TASKS = {"imagenet/0shot": ("imagenet", "zero-shot accuracy (%)"), "coco/i2t": ("coco", "image→text Recall@1 (%)")}
QUANTITIES = ("intercept", "slope", "level", "zero_pairs")
BINS_PER_DECADE = 2
GRID = 24  # points of each fitted line and band
POINT_COLUMNS = ["task", "data_pct", "examples_seen", "concept", "name", "pairs", "exposures", "value", "n_test"]


@dataclass
class Inputs:
    """What the law joins to the items: every concept's pairs per subset, and each task's test image concepts."""
    counts: pd.DataFrame                 # data/concept_counts.parquet (data/stage.py concept_table)
    concepts: dict[str, np.ndarray]      # task -> [n_images] true concept of each test image, in item order


@dataclass
class Law:
    fits: pd.DataFrame         # task, data_pct, examples_seen, quantity, value, lo, hi, se, n_seeds, runs,
                               # seeds_measured, x_ref, n_concepts (fitted), n_zero (zero-pair concepts)
    points: pd.DataFrame       # task, data_pct, examples_seen, concept, name, pairs, exposures, value, n_test
    lines: pd.DataFrame        # task, data_pct, examples_seen, log10_pairs, value, lo, hi
    comparisons: pd.DataFrame  # task, examples_seen, small_pct, large_pct, quantity, diff, lo, hi, p, seeds_measured
    answers: pd.DataFrame      # task, examples_seen, small_pct, large_pct, answer, exposures
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------ inputs

def read_counts(path: str | Path = COUNTS_PATH) -> pd.DataFrame:
    """The sample stage's concept counts (data/stage.py concept_table); no rows for a real pool."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the concept-frequency law reads the sample stage's exact concept counts; "
                                "run the sample stage (dvc repro sample)")
    return pd.read_parquet(path)


def evaluated_world(results_dir: str | Path, runs) -> dict:
    """The profile and world params the evaluate stage drew its analogs in (results/evaluate/<run>/metrics.json's
    provenance); every run must agree."""
    found = {}
    for run in runs:
        path = Path(results_dir) / run / "metrics.json"
        if path.is_file():
            params = json.loads(path.read_text())["provenance"]["params"]
            found[path] = {"profile": params["profile"], "world": params["world"]}
    if not found:
        raise FileNotFoundError(f"no {results_dir}/<run>/metrics.json for runs {list(runs)}: no evaluated world")
    (first_path, first), *rest = found.items()
    for path, params in rest:
        if params["world"] != first["world"]:
            raise ValueError(f"{path} and {first_path} were evaluated in different worlds")
    return first


def item_concepts(world, facts: dict, tasks=TASKS) -> dict[str, np.ndarray]:
    """task -> the true concept of each of its analog's test images (the draw of facts' key and size:
    results.read_analog_facts), in item order."""
    from vlscale.evals import analogs  # the draws (the figures stage imports them only for the law)

    out = {}
    for task in tasks:
        bench = tasks[task][0]
        size = (facts.get("analogs", {}).get(bench) or {}).get("images")
        if size is None or facts.get("key") is None:
            raise ValueError(f"the analogs' facts (results/evaluate/<run>/analogs.json) give no key or no size of "
                             f"{bench!r}: the test images of {task} cannot be re-drawn")
        out[task] = analogs.truth(world, analogs.benchmark(world, bench, size, key=facts["key"]).ids)["concept"]
    return out


def read_inputs(results_dir: str | Path, runs, facts: dict, counts_path: str | Path = COUNTS_PATH) -> Inputs | None:
    """The law's inputs for the evaluated runs; None where the counts have no row (a real pool: no concepts). The
    world is the evaluated one, and must be the one the counts were made in."""
    from vlscale.config import validate
    from vlscale.world.spec import build_world

    counts = read_counts(counts_path)
    if counts.empty:
        return None
    world = build_world(validate(evaluated_world(results_dir, runs)).world)
    made_in = set(counts["world_fingerprint"])
    if made_in != {world.fingerprint()}:
        raise ValueError(f"{counts_path} counts concepts of world {sorted(made_in)}, {results_dir} was evaluated in "
                         f"world {world.fingerprint()}: run the sample stage with the evaluated world params")
    return Inputs(counts, item_concepts(world, facts))


def subset_sizes(counts: pd.DataFrame) -> dict[float, int]:
    """Pairs of each natural subset by its data_pct (the counts' `examples`)."""
    sizes = counts.drop_duplicates("fraction")
    return {float(100 * f): int(n) for f, n in zip(sizes["fraction"], sizes["examples"])}


# ------------------------------------------------------------------------------------------------ the fit

def concept_values(values: np.ndarray, concepts: np.ndarray) -> pd.DataFrame:
    """Per concept of the test images: the mean of their values ([n], in item order) and their number (n_test)."""
    g = pd.DataFrame({"concept": concepts, "value": values}).groupby("concept")["value"]
    return g.agg(value="mean", n_test="size").reset_index()


def fit_lines(x: np.ndarray, fitted: np.ndarray, zero: np.ndarray, y: np.ndarray, weights: np.ndarray,
              x_ref: float) -> dict[str, np.ndarray]:
    """Weighted least squares of y on x over the items `fitted`, per row of weights: [W, n] weights, y [n] or [n, R]
    values. Returns intercept, slope, level (at x_ref) and zero_pairs (the weighted mean of the items `zero`),
    each [W] or [W, R]."""
    y = y if y.ndim == 2 else y[:, None]
    f, z = fitted.astype(float)[:, None], zero.astype(float)[:, None]
    xf = np.where(fitted, x, 0.0)[:, None]
    k = y.shape[1]
    sums = weights @ np.hstack([f, xf, xf ** 2, z, f * y, xf * y, z * y])  # one pass over the weights
    s0, sx, sxx, sz = (sums[:, i] for i in range(4))
    sy, sxy, szy = sums[:, 4:4 + k], sums[:, 4 + k:4 + 2 * k], sums[:, 4 + 2 * k:]
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = (s0[:, None] * sxy - sx[:, None] * sy) / (s0 * sxx - sx ** 2)[:, None]
        intercept = (sy - slope * sx[:, None]) / s0[:, None]
        zero_pairs = szy / sz[:, None]
    out = {"intercept": intercept, "slope": slope, "level": intercept + slope * x_ref, "zero_pairs": zero_pairs}
    return {k: v[:, 0] if v.shape[1] == 1 else v for k, v in out.items()}


def resample_weights(concepts: np.ndarray, n_boot: int, seed: int, source: str, bench: str) -> np.ndarray:
    """[1 + n_boot, n] image weights: ones (the point estimate), then per replicate the figures stage's image
    resample of the benchmark times a resample of its concepts (every image of a drawn concept, as often as drawn)."""
    images = uncertainty.resample_counts(len(concepts), n_boot, uncertainty._rng(seed, source, bench))
    unique, which = np.unique(concepts, return_inverse=True)
    drawn = uncertainty.resample_counts(len(unique), n_boot, uncertainty._rng(seed, "concepts", source, bench))
    return np.vstack([np.ones(len(concepts)), images * drawn[:, which]])


def _configs(tidy: pd.DataFrame, keep_pct: float | None) -> pd.DataFrame:
    """The natural runs (and the random arm's, s10's data) by data scale: run, seed, data_pct."""
    runs = tidy.groupby("run")[["curation", "data_pct", "seed", "model"]].first() if "curation" in tidy else \
        tidy.groupby("run")[["data_pct", "seed", "model"]].first().assign(curation="natural")
    runs = study.join_random_arm(runs, keep_pct)
    runs = runs[runs["curation"] == "natural"]
    if runs["model"].nunique() > 1:
        raise ValueError(f"the law is of one model's runs; got models {sorted(runs['model'].unique())}")
    return runs.sort_values(["data_pct", "seed"])


def _interval(points: np.ndarray, draws: np.ndarray, var: float, df: int, churn: float, other=None):
    """evidence.difference of a configuration ([seeds] points, [seeds, B] draws) against `other` (a (points,
    draws) pair of another configuration) or zero."""
    a = evidence.Config("a", points, draws)
    b = evidence.Config("b", *other) if other is not None else evidence.constant("0", 0.0, draws.shape[1])
    return evidence.difference(a, b, var, df, b_trained=other is not None, churn=churn)


def build_law(tidy: pd.DataFrame, items: pd.DataFrame, inputs: Inputs, source: str = "analog",
              keep_pct: float | None = None, n_boot: int = 1000, seed: int = 0) -> Law:
    """The law (module docstring) from one model's tidy results and items, the counts and the image concepts."""
    runs = _configs(tidy, keep_pct)
    counts, notes = inputs.counts, []
    fractions = counts.drop_duplicates("fraction").set_index("fraction")["examples"]
    fits, points, lines, comps, answers = [], [], [], [], []
    items = items[items["task"].isin(list(inputs.concepts))]
    for task, concepts in inputs.concepts.items():
        bench = TASKS[task][0]
        got = items[(items["task"] == task) & items["run"].isin(runs.index) & (items["source"] == source)]
        if got.empty:
            notes.append(f"no items of {task}: its law is not measured")
            continue
        weights = resample_weights(concepts, n_boot, seed, source, bench)
        values = {}  # (run, seen) -> [n] value (%) by item
        for (run, seen), g in got.groupby(["run", "examples_seen"]):
            if len(g) != len(concepts) or g["item"].max() != len(concepts) - 1:
                raise ValueError(f"results/evaluate/{run}: {len(g)} items of {task} at {seen} examples seen, the "
                                 f"analog's draw has {len(concepts)} images: evaluated with other params")
            values[(run, int(seen))] = 100.0 * g.sort_values("item")["value"].to_numpy(float)
        pairs_of = {}
        for pct in sorted(runs["data_pct"].unique()):
            match = [f for f in fractions.index if np.isclose(100 * f, pct)]
            if not match:
                raise ValueError(f"runs of {pct:g}% of the pool: data/concept_counts.parquet counts the subsets "
                                 f"{[100 * f for f in fractions.index]}% only")
            c = counts[counts["fraction"] == match[0]].set_index("concept").sort_index()
            if not np.array_equal(c.index, np.arange(len(c))) or concepts.max() >= len(c):
                raise ValueError(f"data/concept_counts.parquet: the {100 * match[0]:g}% subset's concepts are not "
                                 f"0..{len(c) - 1} or miss the test images' concepts (up to {concepts.max()})")
            pairs_of[pct] = (c["pairs"].to_numpy(), int(fractions[match[0]]), c["name"])
        logs = np.concatenate([np.log10(p[0][np.unique(concepts)][p[0][np.unique(concepts)] > 0])
                               for p in pairs_of.values()])
        x_ref = float(np.median(logs))
        seens = sorted({s for _, s in values})
        est = {}  # (pct, seen) -> (runs, {quantity: (points [seeds], draws [seeds, B])})
        for pct, (pairs, n_subset, names) in pairs_of.items():
            item_pairs = pairs[concepts]
            fitted, zero = item_pairs > 0, item_pairs == 0
            x = np.log10(np.maximum(item_pairs, 1))
            for s in seens:
                rr = [r for r in runs.index[runs["data_pct"] == pct] if (r, s) in values]
                if not rr:
                    continue
                y = np.stack([values[(r, s)] for r in rr], axis=1)  # [n, seeds]
                q = fit_lines(x, fitted, zero, y, weights, x_ref)
                est[(pct, s)] = (rr, {k: (v[0].reshape(-1), v[1:].T.reshape(len(rr), -1)) for k, v in q.items()},
                                 n_subset, int(len(np.unique(concepts[fitted]))), int(len(np.unique(concepts[zero]))))
                per = concept_values(y.mean(axis=1), concepts)
                c = per["concept"].to_numpy()
                points.append(per.assign(task=task, data_pct=pct, examples_seen=s, name=names.loc[c].to_numpy(),
                                         pairs=pairs[c], exposures=pairs[c] * s / n_subset))
        for s in seens:
            here = {pct: v for (pct, ss), v in est.items() if ss == s}
            noise = {}
            for k in QUANTITIES:
                var, df = evidence.pooled_seed_variance([v[1][k][0] for v in here.values()])
                noise[k] = (var, df, evidence.pooled_churn([v[1][k][1] for v in here.values()]))
            for pct, (rr, q, _, n_fit, n_zero) in here.items():
                for k in QUANTITIES:
                    pts, dr = q[k]
                    if not np.isfinite(pts).all():
                        continue
                    d = _interval(pts, dr, *noise[k])
                    fits.append({"task": task, "data_pct": pct, "examples_seen": s, "quantity": k, "value": d.effect,
                                 "lo": d.lo, "hi": d.hi, "se": d.se, "n_seeds": len(rr), "runs": "+".join(rr),
                                 "seeds_measured": d.seeds_measured, "x_ref": x_ref, "n_concepts": n_fit,
                                 "n_zero": n_zero})
                lines.append(_band(task, pct, s, q, here, pairs_of[pct][0][np.unique(concepts)]))
            scales = sorted(here)
            for small, large in zip(scales, scales[1:]):
                rows = _compare(task, s, small, large, here, noise, x_ref)
                comps += rows
                answers.append(_answer(task, s, small, large, rows))
    cols = ["task", "data_pct", "examples_seen", "quantity", "value", "lo", "hi", "se", "n_seeds", "runs",
            "seeds_measured", "x_ref", "n_concepts", "n_zero"]
    return Law(pd.DataFrame(fits, columns=cols),
               pd.concat(points, ignore_index=True)[POINT_COLUMNS] if points else pd.DataFrame(columns=POINT_COLUMNS),
               pd.concat(lines, ignore_index=True) if lines else pd.DataFrame(),
               pd.DataFrame(comps, columns=["task", "examples_seen", "small_pct", "large_pct", "quantity", "diff", "lo",
                                            "hi", "p", "seeds_measured"]),
               pd.DataFrame(answers, columns=["task", "examples_seen", "small_pct", "large_pct", "answer",
                                              "exposures"]), notes)


def _band(task, pct, seen, q, here, pairs) -> pd.DataFrame:
    """The fitted line of one configuration over its concepts' log10 pairs > 0, with its interval at each point
    (the seed variance of the line's value there pooled over the scales at this checkpoint)."""
    x = np.log10(pairs[pairs > 0])
    grid = np.linspace(x.min(), x.max(), GRID) if len(x) else np.zeros(0)
    rows = []
    for g in grid:
        line = {p: (v[1]["intercept"][0] + g * v[1]["slope"][0], v[1]["intercept"][1] + g * v[1]["slope"][1])
                for p, v in here.items()}
        var, df = evidence.pooled_seed_variance([pts for pts, _ in line.values()])
        d = _interval(*line[pct], var, df, evidence.pooled_churn([dr for _, dr in line.values()]))
        rows.append({"task": task, "data_pct": pct, "examples_seen": seen, "log10_pairs": g, "value": d.effect,
                     "lo": d.lo, "hi": d.hi})
    return pd.DataFrame(rows)


def _compare(task, seen, small, large, here, noise, x_ref) -> list[dict]:
    """Larger minus smaller scale at one checkpoint: slope, level at x_ref, and the level difference beyond the
    exposures' prediction, (level_l + r·b_l/2) - (level_s - r·b_s/2) with r = log10(N_large / N_small)."""
    r = np.log10(here[large][2] / here[small][2])

    def combo(pct, sign):  # level + sign·r/2·slope of one scale: (points, draws)
        q = here[pct][1]
        return q["level"][0] + sign * r / 2 * q["slope"][0], q["level"][1] + sign * r / 2 * q["slope"][1]

    def pooled(sign):
        per = [combo(p, sign) for p in here]
        var, df = evidence.pooled_seed_variance([pts for pts, _ in per])
        return var, df, evidence.pooled_churn([dr for _, dr in per])

    (vp, dfp, cp), (vm, dfm, cm) = pooled(1), pooled(-1)
    sides = {k: (here[large][1][k], here[small][1][k], noise[k]) for k in ("slope", "level")}
    sides["beyond_exposures"] = (combo(large, 1), combo(small, -1), ((vp + vm) / 2, min(dfp, dfm), (cp + cm) / 2))
    out = []
    for k, (a, b, (var, df, churn)) in sides.items():
        if not (np.isfinite(a[0]).all() and np.isfinite(b[0]).all()):
            continue
        d = _interval(*a, var, df, churn, other=b)
        out.append({"task": task, "examples_seen": seen, "small_pct": small, "large_pct": large, "quantity": k,
                    "diff": d.effect, "lo": d.lo, "hi": d.hi, "p": d.p, "seeds_measured": d.seeds_measured})
    return out


def _answer(task, seen, small, large, rows: list[dict]) -> dict:
    """The answer of one comparison: is the larger scale's line shifted at x_ref (its level difference's interval
    excludes zero), and does accuracy follow pairs or exposures (the level difference beyond the exposures'
    prediction)?"""
    r = {x["quantity"]: x for x in rows}
    level, beyond = r.get("level"), r.get("beyond_exposures")
    if level is None or beyond is None:
        return {"task": task, "examples_seen": seen, "small_pct": small, "large_pct": large, "answer": "not measured",
                "exposures": "not measured"}
    shifted = "up" if level["lo"] > 0 else "down" if level["hi"] < 0 else None
    off_exposures = beyond["lo"] > 0 or beyond["hi"] < 0
    if shifted is None and off_exposures:
        answer = "consistent with one curve in pairs"
    elif shifted is None:
        answer = "inconclusive"
    elif off_exposures:
        answer = f"shifted {shifted}, beyond what exposures predict"
    else:
        answer = f"shifted {shifted}, as exposures predict"
    return {"task": task, "examples_seen": seen, "small_pct": small, "large_pct": large, "answer": answer,
            "exposures": "differs from exposures" if off_exposures else "consistent with exposures"}


def binned(points: pd.DataFrame, bins_per_decade: int = BINS_PER_DECADE) -> pd.DataFrame:
    """The figure's points: per task, scale and checkpoint, the image-weighted mean value over the concepts whose
    pairs fall in each log10 bin (zero pairs in bin -1), with the bin's median pairs and its concepts."""
    p = points.assign(bin=np.where(points["pairs"] > 0, np.floor(np.log10(points["pairs"].clip(lower=1))
                                                                 * bins_per_decade) / bins_per_decade, -1.0),
                      weighted=points["value"] * points["n_test"])
    g = p.groupby(["task", "data_pct", "examples_seen", "bin"])
    out = g.agg(pairs=("pairs", "median"), weighted=("weighted", "sum"), n_test=("n_test", "sum"),
                concepts=("concept", "size")).reset_index()
    return out.assign(value=out["weighted"] / out["n_test"]).drop(columns="weighted")


def summary(law: Law) -> dict:
    """metrics/figures.json's `concept_frequency`: per task, scale label and examples seen, each quantity with its
    interval; the comparisons and the answers; the notes."""
    fits = {}
    for _, r in law.fits.iterrows():
        node = fits.setdefault(r["task"], {}).setdefault(scale_label(r["data_pct"]), {}).setdefault(
            str(int(r["examples_seen"])), {"x_ref": r["x_ref"], "n_concepts": int(r["n_concepts"]),
                                            "n_zero_pair_concepts": int(r["n_zero"]), "n_seeds": int(r["n_seeds"]),
                                            "runs": r["runs"]})
        node[r["quantity"]] = {"value": r["value"], "ci95": [r["lo"], r["hi"]], "seeds_measured": bool(r["seeds_measured"])}
    comps = {}
    for _, r in law.comparisons.iterrows():
        key = f"{scale_label(r['large_pct'])}_minus_{scale_label(r['small_pct'])}"
        comps.setdefault(r["task"], {}).setdefault(key, {}).setdefault(str(int(r["examples_seen"])), {})[
            r["quantity"]] = {"diff": r["diff"], "ci95": [r["lo"], r["hi"]], "p": r["p"]}
    answers = {}
    for _, r in law.answers.iterrows():
        key = f"{scale_label(r['large_pct'])}_vs_{scale_label(r['small_pct'])}"
        answers.setdefault(r["task"], {}).setdefault(key, {})[str(int(r["examples_seen"]))] = {
            "answer": r["answer"], "exposures": r["exposures"]}
    return {"tasks": {t: label for t, (_, label) in TASKS.items()}, "fits": fits, "comparisons": comps,
            "answers": answers, "notes": law.notes}
