"""The attention stage: every run's MAP-head attention on the probe images, scored against the objects' masks.

For each run of `runs` (the data scales, and the curation arms when present) the stage reads the final
cool-down checkpoint and, for a natural run, also the checkpoint at the examples seen where a curated run
ends, so that every comparison is at equal examples seen. Per image and checkpoint it scores the map
(attention/focus.py) and what blind maps score on that image (attention/baselines.py): uniform, a random peak,
the centre prior (chosen on a disjoint draw of images) and the model's own map of another image of the group
(image-shuffled). Then, as a reviewer would:
- per group (attention/groups.py GROUPS, the pooled long tail "cultural", and "all"): the mean of each score
  and baseline, with a bootstrap interval over the probe images; the resamples are drawn once per group and
  shared by all checkpoints, so differences between models are paired;
- finding 8 (arXiv 2502.07617 §5.3), attention/finding8.py: each tenfold data step, each scale against the centre prior
  and its own shuffled maps, and the long tail's gain against the head's, each a difference with training noise
  (the seed variance pooled over the configurations with two seeds at the same examples seen) and test-image
  noise (vlscale.analysis.evidence);
- registers: the share of images whose peak is the model's most common peak patch (Darcet et al. 2024).

Writes results/attention/ (probe.parquet; focus.parquet: per checkpoint and image the scores, the baselines'
scores and the shuffled partner; baselines.npz: per grid the probe and prior images' cell covers and cell hits,
the prior's ids and cells and the partners, enough to re-score any blind map; maps.npz: the figure rows' patch
maps; summary.json: the summary below), paper/figures/attention/ (table6.png, focus.png, curation.png),
plots/attention/focus.csv (the natural runs' means) and metrics/attention.json (the summary, the plan, the
attention params, provenance).
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pandas as pd

from vlscale import siglip
from vlscale.analysis import uncertainty
from vlscale.analysis.figures import save
from vlscale.analysis.results import scale_label
from vlscale.attention import finding8, plots
from vlscale.attention.baselines import centre_prior, derangement, prior_scores, shuffled_scores
from vlscale.attention.focus import focus_scores, head_mean, mask_geometry, peak_concentration
from vlscale.attention.groups import BASELINES, GROUPS, METRICS, POOLS
from vlscale.attention.probe import PRIOR_SPLIT, probe_masks, probe_set
from vlscale.attention.tables import (
    EVIDENCE,
    EVIDENCE_SETUP,
    GRID,
    IMAGE_PX,
    IMAGES,
    MEANS,
    PER_GROUP,
    PLAN,
    POINTING_RADIUS_PX,
    SUMMARY_PATH,
)
from vlscale.config import Params, validate
from vlscale.data.tokenizer import TOKENIZER_PATH, Tokenizer
from vlscale.files import write_json
from vlscale.plan import Plan
from vlscale.plan import apply as apply_plan
from vlscale.provenance import provenance
from vlscale.runs.data import pool_share
from vlscale.runs.layout import RunDir
from vlscale.runs.settings import resolve as resolve_run
from vlscale.world.render import render_ids, render_jax, render_padded
from vlscale.world.spec import build_world

OUT_DIR = Path("results/attention")
FIG_DIR = Path("paper/figures/attention")
FOCUS_CSV = Path("plots/attention/focus.csv")
METRICS_PATH = Path("metrics/attention.json")
WHOLE = ("profile", "world", "tokenizer", "model", "train", "runs", "filter", "attention")  # the blocks it reads whole
# ...and in part (evaluate: keys, use_key, batch_size; sample: source): its blocks in its provenance record's order
BLOCKS = (*WHOLE, "evaluate", "sample")



def checkpoints_to_map(p: Params, runs_dir: Path) -> pd.DataFrame:
    """One row per (run, examples_seen) to map: run, examples_seen, checkpoint, model (runs.model_name),
    data_pct (the share of the pool it trains on), curation, seed."""
    rows = []
    for name in p.runs:
        run = resolve_run(p, name)
        found = dict(RunDir(runs_dir / name).cooled_down())
        rows.append(dict(run=name, model=run.model_name, data_pct=100 * pool_share(run), curation=run.curation,
                         seed=run.seed, found=found, last=max(found)))
    runs = pd.DataFrame(rows)
    ends = set(runs.loc[runs["curation"] != "natural", "last"])
    out = []
    for r in runs.itertuples():
        wanted = {r.last} | ({s for s in ends if s in r.found} if r.curation == "natural" else set())
        out += [dict(run=r.run, examples_seen=s, checkpoint=str(r.found[s]), model=r.model, data_pct=r.data_pct,
                     curation=r.curation, seed=r.seed) for s in sorted(wanted)]
    return pd.DataFrame(out)


def attention_fn(model, params, batch_size: int):
    """images [N, px, px, 3] in [-1, 1] -> head-mean MAP attention on the patch grid [N, gh, gw]."""
    import jax
    import jax.numpy as jnp

    @jax.jit
    def fn(images):
        return model.apply({"params": params}, images, None)[2]["img/map_attention"]

    def maps(images):
        out = []
        for start in range(0, len(images), batch_size):
            chunk = images[start:start + batch_size]
            pad = batch_size - len(chunk)
            batch = np.concatenate([chunk, np.repeat(chunk[-1:], pad, 0)]) if pad else chunk
            weights = np.asarray(fn(jnp.asarray(batch)))
            side = math.isqrt(weights.shape[-1])  # square images: a side x side patch grid, whatever the variant
            out.append(head_mean(weights, (side, side))[:len(chunk)])
        return np.concatenate(out)

    return maps


def _model_config(p: Params, name: str, vocab_size: int) -> dict:
    """The big_vision config (a plain mapping, as siglip.load takes it) of run `name`'s model, with the tokenizer's
    vocabulary."""
    model = resolve_run(p, name).model
    if model.image.get("pool_type", "gap") != "map":
        raise ValueError(f"runs.{name}: its image tower pools with {model.image.get('pool_type', 'gap')!r}; "
                         "the attention stage reads the MAP head's attention (pool_type: map)")
    return {**model.model_dump(), "text": {**model.text, "vocab_size": vocab_size}}


def figure_rows(probe_meta: pd.DataFrame, per_group: int) -> np.ndarray:
    """The figure's images: the first `per_group` of each group in draw order (not chosen by their maps)."""
    return np.concatenate([np.flatnonzero(probe_meta["group"].to_numpy() == g)[:per_group] for g in GROUPS])


class Blind:
    """What the blind baselines need for the probe masks on one grid: their Geometry (`geo`), the prior images'
    ids and Geometry, the CentrePrior chosen on those, and its per-image scores on the probe images."""

    def __init__(self, world, per_group: int, key: int, px: int, masks: np.ndarray, grid: tuple[int, int],
                 radius: float):
        self.prior_ids = probe_set(world, per_group, key, PRIOR_SPLIT).ids
        self.prior_geo = mask_geometry(probe_masks(world, self.prior_ids, px), grid, radius)
        self.geo = mask_geometry(masks, grid, radius)
        self.prior = centre_prior(self.prior_geo)
        self.prior_energy, self.prior_hit = prior_scores(self.prior, self.geo)

    def arrays(self, label: str) -> dict[str, np.ndarray]:
        """baselines.npz's arrays for this grid, named <label>/<array>."""
        return {f"{label}/probe_cover": self.geo.cover, f"{label}/probe_near": self.geo.near,
                f"{label}/prior_cover": self.prior_geo.cover, f"{label}/prior_near": self.prior_geo.near,
                f"{label}/prior_ids": self.prior_ids,
                f"{label}/prior_cells": np.array([self.prior.energy_cell, self.prior.hit_cell])}


def score_checkpoint(maps: np.ndarray, masks: np.ndarray, radius: float, blind: Blind,
                     partner: np.ndarray) -> pd.DataFrame:
    """focus_scores of one checkpoint's maps, with the blind baselines' scores on each image and its partner."""
    s = focus_scores(maps, masks, radius, blind.geo)
    s["shuffled_energy"], s["shuffled_hit"] = shuffled_scores(maps, blind.geo, partner)
    s["prior_energy"], s["prior_hit"] = blind.prior_energy, blind.prior_hit
    s["partner"] = partner
    return s


def _label_rows(s: pd.DataFrame, r, groups: np.ndarray) -> pd.DataFrame:
    s.insert(0, "image", np.arange(len(s)))
    for col in ("seed", "curation", "data_pct", "model", "examples_seen", "run"):
        s.insert(0, col, getattr(r, col))
    s["group"] = groups
    return s


def stage_params(params: dict) -> tuple[Params, Plan]:
    """The stage's params validated (profile, world, tokenizer, model, train, runs, filter, attention, and in part
    the evaluate values it reads, keys, use_key and batch_size, and the pool's kind, sample.source), with the study
    plan applied (vlscale.plan: the runs the pool cannot have are left out, one printed line each); and the Plan."""
    p = validate({**{k: params[k] for k in WHOLE}, "evaluate": params["evaluate"],
                  "sample": {"source": params["sample"]["source"]}}, partial=("sample", "evaluate"))
    return apply_plan(p)


def run(params: dict) -> dict:
    """The attention stage (module docstring); params: the blocks the stage declares (stage_params). Returns the
    metrics it writes to metrics/attention.json."""
    p, plan = stage_params(params)
    summary = measure(p)
    write_figures(p, summary)
    means = pd.DataFrame(summary[MEANS])
    FOCUS_CSV.parent.mkdir(parents=True, exist_ok=True)
    means[means["curation"] == "natural"].to_csv(FOCUS_CSV, index=False)
    dumped = p.dump()  # the params as the stage ran them, its blocks in BLOCKS' order
    metrics = {**summary, PLAN: plan.record(), "params": p.attention.model_dump(),
               "provenance": provenance(p.profile, {k: dumped[k] for k in BLOCKS})}
    write_json(METRICS_PATH, metrics)
    return metrics


def measure(p: Params, runs_dir: str | Path = "runs", out_dir: str | Path = OUT_DIR, progress=print) -> dict:
    """Map, score and summarise (module docstring); writes <out_dir> and returns the summary."""
    runs_dir, out_dir = Path(runs_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    world = build_world(p.world)
    key = p.evaluate.key
    probe = probe_set(world, p.attention.images_per_group, key)
    px = p.train.image_px
    masks = probe_masks(world, probe.ids, px)
    images = render_padded(render_jax(world, px), probe.ids, p.evaluate.batch_size)
    radius = p.attention.pointing_radius * px
    groups = probe.meta["group"].to_numpy()
    partner = derangement(groups, uncertainty._rng(p.attention.seed, "attention", "shuffle"))
    todo = checkpoints_to_map(p, runs_dir)
    vocab = Tokenizer(TOKENIZER_PATH).vocab_size
    rows = figure_rows(probe.meta, p.attention.figure_rows_per_group)
    setup_s = time.perf_counter() - t0
    progress(f"{len(probe.ids)} probe images ({p.attention.images_per_group} per group), "
             f"{len(todo)} checkpoints to map")
    scores, figure_maps, blind = [], {}, {}
    for i, r in enumerate(todo.itertuples()):
        model, params = siglip.load(Path(r.checkpoint), _model_config(p, r.run, vocab), image_size_px=px,
                                    text_len=p.tokenizer.max_len)
        maps = attention_fn(model, params, p.evaluate.batch_size)(images)
        grid = "x".join(map(str, maps.shape[1:]))
        if grid not in blind:
            blind[grid] = Blind(world, p.attention.images_per_group, key, px, masks, maps.shape[1:], radius)
        s = _label_rows(score_checkpoint(maps, masks, radius, blind[grid], partner), r, groups)
        scores.append(s)
        figure_maps[f"{r.run}@{r.examples_seen}"] = maps[rows]
        progress(f"[{i + 1}/{len(todo)}] {r.run} at {r.examples_seen:,} seen: energy {s['energy'].mean():.3f} "
                 f"(uniform {s['area'].mean():.3f}, centre prior {s['prior_energy'].mean():.3f}, shuffled "
                 f"{s['shuffled_energy'].mean():.3f}), pointing {s['hit'].mean():.3f} (centre prior "
                 f"{s['prior_hit'].mean():.3f}, shuffled {s['shuffled_hit'].mean():.3f})")
    focus = pd.concat(scores, ignore_index=True)
    probe.meta.to_parquet(out_dir / "probe.parquet", index=False)
    focus.to_parquet(out_dir / "focus.parquet", index=False)
    np.savez_compressed(out_dir / "maps.npz", rows=rows, masks=masks[rows], **figure_maps)
    np.savez_compressed(out_dir / "baselines.npz", probe_ids=probe.ids, partner=partner,
                        **{k: v for g, b in blind.items() for k, v in b.arrays(g).items()})
    keep_pct = 100 * p.filter.keep_fraction if p.filter is not None else None
    summary = summarise(focus, int(np.prod(maps.shape[1:])), p.attention.bootstrap, p.attention.seed,
                        keep_pct=keep_pct)
    summary.update({IMAGES: int(len(probe.ids)), PER_GROUP: p.attention.images_per_group, "key": key,
                    "key_use": p.evaluate.use_key, IMAGE_PX: px, POINTING_RADIUS_PX: radius,
                    GRID: list(maps.shape[1:]),
                    "baselines": _baselines_record(blind, key), "setup_s": setup_s,
                    "wall_s": time.perf_counter() - t0})
    write_json(out_dir / SUMMARY_PATH.name, summary)
    return summary


def _baselines_record(blind: dict[str, Blind], key: int) -> dict:
    """The summary's record of the blind baselines: per grid the centre prior's cells and what chose them."""
    return {"centre_prior": {g: {**b.prior.record(), "draw": f"analog 'attention', key {key}, split {PRIOR_SPLIT!r}"}
                             for g, b in blind.items()},
            "shuffled": "each image scored with the same model's map of another image of its group (a fixed random "
                        "cycle per group, focus.parquet `partner`, the same for every run)"}


# ------------------------------------------------------------------------------------------------ summary

POOLED = (*METRICS, *BASELINES)  # the focus columns averaged per pool


def _pool_draws(focus: pd.DataFrame, n_boot: int, seed: int) -> tuple[pd.DataFrame, dict]:
    """Means per (checkpoint, pool, column of POOLED) and their bootstrap draws [n_boot], the image resamples
    drawn once per group (stratified: a pool resamples each of its groups) and shared by every checkpoint."""
    keys = ["run", "examples_seen"]
    base = focus[focus.groupby(keys, sort=False).ngroup() == 0]
    images = {g: base.loc[base["group"] == g, "image"].to_numpy() for g in GROUPS}
    counts = {g: _resample(len(images[g]), n_boot, uncertainty._rng(seed, "attention", g)) for g in GROUPS}
    rows, draws = [], {}
    for (run, seen), d in focus.groupby(keys, sort=False):
        info = d.iloc[0]
        sums, reps = _group_sums(d, images, counts, f"{run} at {seen:,} seen")
        for pool, members in POOLS.items():
            n = sum(len(images[g]) for g in members)
            value = sum(sums[g] for g in members) / n
            rep = sum(reps[g] for g in members) / n  # [n_boot, metrics]
            for j, metric in enumerate(POOLED):
                draws[(run, int(seen), pool, metric)] = rep[:, j]
                rows.append(dict(run=run, examples_seen=int(seen), model=info["model"],
                                 data_pct=float(info["data_pct"]), curation=info["curation"], seed=int(info["seed"]),
                                 pool=pool, metric=metric, value=float(value[j]), n=n))
    return pd.DataFrame(rows), draws


def _group_sums(d: pd.DataFrame, images: dict, counts: dict, name: str) -> tuple[dict, dict]:
    """Per group of one checkpoint's rows: the sums of the POOLED columns [metrics] and their resampled sums
    [n_boot, metrics]; refuses a checkpoint whose images differ from the first checkpoint's."""
    group = d["group"].to_numpy()
    values = d[list(POOLED)].to_numpy(dtype=np.float64)
    sums, reps = {}, {}
    for g in GROUPS:
        rows = group == g
        if not np.array_equal(d["image"].to_numpy()[rows], images[g]):
            raise ValueError(f"{name}: its {g!r} images differ from the first checkpoint's; paired resamples need "
                             "the same images in the same order")
        sums[g] = values[rows].sum(axis=0)
        reps[g] = counts[g].astype(np.float64) @ values[rows]
    return sums, reps


def _resample(n: int, n_boot: int, rng) -> np.ndarray:
    """[n_boot, n] resample counts (uncertainty.resample_counts); with n_boot 0, no resample."""
    return uncertainty.resample_counts(n, n_boot, rng) if n_boot else np.zeros((0, n), np.float32)


def summarise(focus: pd.DataFrame, n_cells: int, n_boot: int = 1000, seed: int = 0, level: float = 0.95,
              keep_pct: float | None = None) -> dict:
    """From focus.parquet's rows (maps of `n_cells` patches), JSON-ready: `means` (per checkpoint, pool and
    column of POOLED, with a bootstrap interval over the probe images), `evidence` and `evidence_setup`
    (finding8.evidence; the random filter arm's runs count as natural runs of keep_pct, the data they train on),
    `peaks` (register-like peaks per checkpoint)."""
    means, draws = _pool_draws(focus, n_boot, seed)
    lo, hi = uncertainty.interval(np.stack([draws[(r.run, r.examples_seen, r.pool, r.metric)]
                                            for r in means.itertuples()]), level)
    means["lo"], means["hi"] = lo, hi
    val = {(r.run, r.examples_seen, r.pool, r.metric): r.value for r in means.itertuples()}
    ckpts = means[["run", "examples_seen", "model", "data_pct", "curation", "seed"]].drop_duplicates()
    evidence, setup = finding8.evidence(ckpts, val, draws, level, keep_pct)
    peaks = [dict(run=run, examples_seen=int(seen), peak_mode_share=peak_concentration(d["peak"], n_cells),
                  object_mode_share=peak_concentration(d["object_peak"], n_cells))
             for (run, seen), d in focus.groupby(["run", "examples_seen"], sort=False)]
    return {MEANS: means.to_dict("records"), EVIDENCE: evidence, EVIDENCE_SETUP: setup, "peaks": peaks,
            "bootstrap": n_boot, "level": level, "notes": setup["notes"]}


# ------------------------------------------------------------------------------------------------ outputs

def write_figures(p: Params, summary: dict, results_dir: str | Path = OUT_DIR, fig_dir: str | Path = FIG_DIR,
                  px: int = 96) -> list[Path]:
    """The Table 6 analog (natural runs at the examples seen they share), the same for the curated runs at
    theirs, and the focus-by-scale chart; returns the paths written."""
    results_dir, fig_dir = Path(results_dir), Path(fig_dir)
    fig_dir.mkdir(parents=True, exist_ok=True)
    meta = pd.read_parquet(results_dir / "probe.parquet")
    z = np.load(results_dir / "maps.npz")
    rows = z["rows"]
    world = build_world(p.world)
    ids = meta["id"].to_numpy()[rows]
    images, masks = render_ids(world, ids, px), probe_masks(world, ids, px)
    means = pd.DataFrame(summary[MEANS])
    ckpts = means[["run", "examples_seen", "data_pct", "curation"]].drop_duplicates()
    written = []
    natural = ckpts[ckpts["curation"] == "natural"]
    if len(natural):
        seen = max(set.intersection(*natural.groupby("data_pct")["examples_seen"].apply(set)))
        cols = [(f"{scale_label(r.data_pct)} data", z[f"{r.run}@{r.examples_seen}"])
                for r in natural[natural["examples_seen"] == seen].sort_values("data_pct").itertuples()]
        fig = plots.attention_grid(images, masks, meta.iloc[rows], cols, f"MAP-head attention at {seen:,} examples seen")
        written.append(save(fig, fig_dir / "table6.png"))
        written.append(save(plots.focus_by_scale(means), fig_dir / "focus.png"))
    curated = ckpts[ckpts["curation"] != "natural"]
    if len(curated):
        seen = int(curated["examples_seen"].max())
        at = ckpts[ckpts["examples_seen"] == seen].sort_values(["curation", "data_pct"])
        cols = [(f"{r.run}", z[f"{r.run}@{r.examples_seen}"]) for r in at.itertuples()]
        fig = plots.attention_grid(images, masks, meta.iloc[rows], cols,
                                   f"MAP-head attention of every run at {seen:,} examples seen")
        written.append(save(fig, fig_dir / "curation.png"))
    return written
