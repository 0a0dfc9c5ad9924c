"""The attention stage: every run's MAP-head attention on the probe images, scored against the objects' masks.

For each run of `runs` (the data scales, and the curation arms when present) the stage reads the final
cool-down checkpoint and, for a natural run, also the checkpoint at the examples seen where a curated run
ends, so that every comparison is at equal examples seen. Per image and checkpoint it scores the map
(attention/focus.py). Then, as a reviewer would:
- per group (attention/probe.py GROUPS, the pooled long tail "cultural", and "all"): the mean of each score,
  with a bootstrap interval over the probe images; the resamples are drawn once per group and shared by all
  checkpoints, so differences between models are paired;
- finding 8 (PAPER.md §5): does focus rise from 1% to 10% to 100% data, at equal examples seen, and more on
  the long-tail groups than on the head? The differences of consecutive scales, the gain 1% -> 100%, and its
  excess over the head's (a difference in differences), each with a paired interval and p-value;
- the training-noise null: runs on the same data with another seed (the random filter arm and the natural
  run of keep_fraction, or seed replicates) give the difference expected from training noise alone;
- registers: the share of images whose peak is the model's most common peak patch (Darcet et al. 2024).

Writes results/attention/ (probe.parquet, focus.parquet, maps.npz: the figure rows' patch maps) and returns
the summary the notebook writes to metrics/attention.json.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd

from vlscale.analysis import uncertainty
from vlscale.attention.focus import focus_scores, head_mean, peak_concentration
from vlscale.attention.groups import CULTURAL, GROUPS, METRICS, POOLS
from vlscale.attention.probe import probe_masks, probe_set
OUT_DIR = Path("results/attention")


def checkpoints_to_map(p: dict, runs_dir: Path) -> pd.DataFrame:
    """One row per (run, examples_seen) to map: run, examples_seen, checkpoint, data_pct, curation, seed."""
    from vlscale.evals.stage import checkpoints, run_curation, run_seed

    rows = []
    for name in p["runs"]:
        fraction, curation = run_curation(p, name)
        found = dict(checkpoints(runs_dir / name))
        rows.append(dict(run=name, data_pct=100 * fraction, curation=curation, seed=run_seed(p, name),
                         found=found, last=max(found)))
    runs = pd.DataFrame(rows)
    ends = set(runs.loc[runs["curation"] != "natural", "last"])
    out = []
    for r in runs.itertuples():
        wanted = {r.last} | ({s for s in ends if s in r.found} if r.curation == "natural" else set())
        out += [dict(run=r.run, examples_seen=s, checkpoint=str(r.found[s]), data_pct=r.data_pct,
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


def _model_config(p: dict, name: str, vocab_size: int) -> dict:
    from vlscale.config import run_model

    model = run_model(p, name)
    if model["image"].get("pool_type", "gap") != "map":
        raise ValueError(f"runs.{name}: its image tower pools with {model['image'].get('pool_type', 'gap')!r}; "
                         "the attention stage reads the MAP head's attention (pool_type: map)")
    return {**model, "text": {**model["text"], "vocab_size": vocab_size}}


def figure_rows(probe_meta: pd.DataFrame, per_group: int) -> np.ndarray:
    """The figure's images: the first `per_group` of each group in draw order (not chosen by their maps)."""
    return np.concatenate([np.flatnonzero(probe_meta["group"].to_numpy() == g)[:per_group] for g in GROUPS])


def run_attention(p: dict, runs_dir: str | Path = "runs", out_dir: str | Path = OUT_DIR,
                  progress=print) -> dict:
    """Map, score and summarise (module docstring); writes <out_dir> and returns the summary."""
    from vlscale import siglip
    from vlscale.data.tokenizer import TOKENIZER_PATH, Tokenizer
    from vlscale.world.render import render_jax, render_padded
    from vlscale.world.spec import build_world

    A, T, E = p["attention"], p["train"], p["evaluate"]
    runs_dir, out_dir = Path(runs_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    world = build_world(p["world"])
    key = E["keys"][E["use_key"]]
    probe = probe_set(world, A["images_per_group"], key)
    px = T["image_px"]
    masks = probe_masks(world, probe.ids, px)
    images = render_padded(render_jax(world, px), probe.ids, E["batch_size"])
    radius = A["pointing_radius"] * px
    todo = checkpoints_to_map(p, runs_dir)
    vocab = Tokenizer(TOKENIZER_PATH).vocab_size
    rows = figure_rows(probe.meta, A["figure_rows_per_group"])
    setup_s = time.perf_counter() - t0
    progress(f"{len(probe.ids)} probe images ({A['images_per_group']} per group), {len(todo)} checkpoints to map")
    scores, figure_maps = [], {}
    for i, r in enumerate(todo.itertuples()):
        model, params = siglip.load(Path(r.checkpoint), _model_config(p, r.run, vocab), image_size_px=px,
                                    text_len=p["tokenizer"]["max_len"])
        maps = attention_fn(model, params, E["batch_size"])(images)
        s = focus_scores(maps, masks, radius)
        s.insert(0, "image", np.arange(len(s)))
        for col in ("seed", "curation", "data_pct", "examples_seen", "run"):
            s.insert(0, col, getattr(r, col))
        s.insert(len(s.columns) - 1, "group", probe.meta["group"].to_numpy())
        scores.append(s)
        figure_maps[f"{r.run}@{r.examples_seen}"] = maps[rows]
        progress(f"[{i + 1}/{len(todo)}] {r.run} at {r.examples_seen:,} seen: energy {s['energy'].mean():.3f} "
                 f"(uniform {s['area'].mean():.3f}), pointing {s['hit'].mean():.3f}")
    focus = pd.concat(scores, ignore_index=True)
    probe.meta.to_parquet(out_dir / "probe.parquet", index=False)
    focus.to_parquet(out_dir / "focus.parquet", index=False)
    np.savez_compressed(out_dir / "maps.npz", rows=rows, masks=masks[rows], **figure_maps)
    summary = summarise(focus, int(np.prod(maps.shape[1:])), A["bootstrap"], A["seed"])
    summary.update(images=int(len(probe.ids)), per_group=A["images_per_group"], key=key, key_use=E["use_key"],
                   image_px=px, pointing_radius_px=radius, grid=list(maps.shape[1:]),
                   setup_s=setup_s, wall_s=time.perf_counter() - t0)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1, default=float))
    return summary


# ------------------------------------------------------------------------------------------------ summary

def _pool_draws(focus: pd.DataFrame, n_boot: int, seed: int) -> tuple[pd.DataFrame, dict]:
    """Means per (checkpoint, pool, metric) and their bootstrap draws [n_boot], the image resamples drawn once
    per group (stratified: a pool resamples each of its groups) and shared by every checkpoint."""
    keys = ["run", "examples_seen"]
    first = focus.groupby(keys, sort=False).ngroup() == 0
    base = focus[first]
    counts = {g: _resample(int((base["group"] == g).sum()), n_boot, uncertainty._rng(seed, "attention", g))
              for g in GROUPS}
    rows, draws = [], {}
    for (run, seen), d in focus.groupby(keys, sort=False):
        info = d.iloc[0]
        for pool, members in POOLS.items():
            for metric in (*METRICS, "area", "hit_chance", "oracle_energy"):
                total, dr, n = 0.0, np.zeros(n_boot), 0
                for g in members:
                    v = d.loc[d["group"] == g, metric].to_numpy(dtype=float)
                    total += v.sum()
                    dr += counts[g] @ v
                    n += len(v)
                rows.append(dict(run=run, examples_seen=int(seen), data_pct=float(info["data_pct"]),
                                 curation=info["curation"], seed=int(info["seed"]), pool=pool, metric=metric,
                                 value=total / n, n=n))
                draws[(run, int(seen), pool, metric)] = dr / n
    return pd.DataFrame(rows), draws


def _resample(n: int, n_boot: int, rng) -> np.ndarray:
    """[n_boot, n] resample counts (uncertainty.resample_counts); with n_boot 0, no resample."""
    return uncertainty.resample_counts(n, n_boot, rng) if n_boot else np.zeros((0, n), np.float32)


def _diff(draws: dict, a: tuple, b: tuple, va: float, vb: float, level: float = 0.95) -> dict:
    d = draws[a] - draws[b]
    lo, hi = uncertainty.interval(d, level)
    return {"diff": va - vb, "lo": float(lo[0]), "hi": float(hi[0]), "p": uncertainty.p_two_sided(d)}


def summarise(focus: pd.DataFrame, n_cells: int, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """The module docstring's tables from focus.parquet's rows (maps of `n_cells` patches); JSON-ready."""
    means, draws = _pool_draws(focus, n_boot, seed)
    lo, hi = uncertainty.interval(np.stack([draws[(r.run, r.examples_seen, r.pool, r.metric)]
                                            for r in means.itertuples()]), level)
    means["lo"], means["hi"] = lo, hi
    val = {(r.run, r.examples_seen, r.pool, r.metric): r.value for r in means.itertuples()}
    natural = means[(means["curation"] == "natural")][["run", "examples_seen", "data_pct", "seed"]].drop_duplicates()
    # the scale comparison: the natural runs' largest checkpoint that every data scale has
    by_scale = natural.groupby("data_pct")["examples_seen"].apply(set)
    shared = set.intersection(*by_scale) if len(by_scale) else set()
    scale_rows, contrast_rows, notes = [], [], []
    if len(by_scale) >= 2 and shared:
        seen = max(shared)
        at = natural[natural["examples_seen"] == seen].sort_values(["data_pct", "seed"])
        pick = at.groupby("data_pct").first()["run"]  # one run per scale (the first seed) for paired differences
        if at.groupby("data_pct").size().max() > 1:
            notes.append("several seeds at one data scale: the differences use each scale's first seed; the "
                         "seed null below measures the rest")
        scales = list(pick.index)
        pairs = list(zip(scales[:-1], scales[1:])) + ([(scales[0], scales[-1])] if len(scales) > 2 else [])
        for metric in METRICS:
            for pool in POOLS:
                for a, b in pairs:
                    ka, kb = (pick[b], seen, pool, metric), (pick[a], seen, pool, metric)
                    scale_rows.append(dict(pool=pool, metric=metric, examples_seen=seen, from_pct=a, to_pct=b,
                                           before=val[kb], after=val[ka], **_diff(draws, ka, kb, val[ka], val[kb])))
            a, b = scales[0], scales[-1]
            head = (pick[b], seen, "head", metric), (pick[a], seen, "head", metric)
            for pool in (*CULTURAL, "cultural"):
                ka, kb = (pick[b], seen, pool, metric), (pick[a], seen, pool, metric)
                gain = draws[ka] - draws[kb] - (draws[head[0]] - draws[head[1]])
                glo, ghi = uncertainty.interval(gain, level)
                contrast_rows.append(dict(pool=pool, metric=metric, examples_seen=seen, from_pct=a, to_pct=b,
                                          gain=val[ka] - val[kb], head_gain=val[head[0]] - val[head[1]],
                                          diff=val[ka] - val[kb] - val[head[0]] + val[head[1]],
                                          lo=float(glo[0]), hi=float(ghi[0]), p=uncertainty.p_two_sided(gain)))
    else:
        notes.append("fewer than two natural data scales share a checkpoint: no scale comparison")
    scale = pd.DataFrame(scale_rows)
    contrast = pd.DataFrame(contrast_rows)
    null = _seed_null(means, draws, val, level)
    peaks = []
    for (run, seen), d in focus.groupby(["run", "examples_seen"], sort=False):
        peaks.append(dict(run=run, examples_seen=int(seen), peak_mode_share=peak_concentration(d["peak"], n_cells),
                          object_mode_share=peak_concentration(d["object_peak"], n_cells)))
    return dict(means=means.to_dict("records"), scale=scale.to_dict("records"),
                contrast=contrast.to_dict("records"), seed_null=null.to_dict("records"), peaks=peaks,
                finding8=_verdict(scale, contrast, null), bootstrap=n_boot, level=level, notes=notes)


def _seed_null(means: pd.DataFrame, draws: dict, val: dict, level: float) -> pd.DataFrame:
    """Differences between runs trained on the same data with other seeds: the random filter arm against the
    natural run of its share, and seed replicates of one natural scale, at each checkpoint both have."""
    runs = means[["run", "examples_seen", "data_pct", "curation", "seed"]].drop_duplicates()
    data = np.where(runs["curation"].isin(["natural", "filter/random"]), "natural", runs["curation"])
    runs = runs.assign(data=data, pct=runs["data_pct"].round(1))
    rows = []
    for (_, _, seen), d in runs.groupby(["data", "pct", "examples_seen"]):
        names = list(d.assign(other=d["curation"] != "natural").sort_values(["other", "seed"])["run"])  # natural first
        for other in names[1:]:
            for metric in METRICS:
                for pool in POOLS:
                    ka, kb = (other, int(seen), pool, metric), (names[0], int(seen), pool, metric)
                    rows.append(dict(run=other, against=names[0], examples_seen=int(seen), pool=pool, metric=metric,
                                     **_diff(draws, ka, kb, val[ka], val[kb], level)))
    return pd.DataFrame(rows, columns=["run", "against", "examples_seen", "pool", "metric", "diff", "lo", "hi", "p"])


def _verdict(scale: pd.DataFrame, contrast: pd.DataFrame, null: pd.DataFrame) -> dict:
    """Finding 8 per score (energy, pointing), in words a reader can check against the tables: each tenfold
    step of data, whether it is positive, outside its test-image interval, and larger than the largest
    difference two runs on the same data show (the seed null)."""
    if scale.empty:
        return {"tested": False}
    out = {"tested": True}
    for metric in ("energy", "hit"):
        e = scale[scale["metric"] == metric]
        steps = e[(e["to_pct"] / e["from_pct"]).round() == 10]
        n = null[null["metric"] == metric]
        res = {}
        for pool in ("cultural", "head", "all"):
            s = steps[steps["pool"] == pool]
            noise = float(n.loc[n["pool"] == pool, "diff"].abs().max()) if len(n) else float("nan")
            res[pool] = {"rises_each_step": bool((s["diff"] > 0).all()),
                         "each_step_significant": bool((s["lo"] > 0).all()),
                         "each_step_beyond_seed_null": bool((s["diff"] > noise).all()) if np.isfinite(noise) else None,
                         "seed_null_abs_diff": noise,
                         "steps": [{"from_pct": r.from_pct, "to_pct": r.to_pct, "diff": r.diff, "lo": r.lo,
                                    "hi": r.hi} for r in s.itertuples()]}
        c = contrast[(contrast["metric"] == metric) & (contrast["pool"] == "cultural")]
        if len(c):
            r = c.iloc[0]
            res["more_on_cultural"] = {"diff": r["diff"], "lo": r["lo"], "hi": r["hi"], "p": r["p"],
                                       "significant": bool(r["lo"] > 0 or r["hi"] < 0)}
        out[metric] = res
    return out


# ------------------------------------------------------------------------------------------------ outputs

def write_figures(p: dict, summary: dict, results_dir: str | Path = OUT_DIR,
                  fig_dir: str | Path = "paper/figures/attention", px: int = 96) -> list[Path]:
    """The Table 6 analog (natural runs at the examples seen they share), the same for the curated runs at
    theirs, and the focus-by-scale chart; returns the paths written."""
    from vlscale.analysis.figures import save
    from vlscale.analysis.results import scale_label
    from vlscale.attention import plots
    from vlscale.world.render import render_ids
    from vlscale.world.spec import build_world

    results_dir, fig_dir = Path(results_dir), Path(fig_dir)
    fig_dir.mkdir(parents=True, exist_ok=True)
    meta = pd.read_parquet(results_dir / "probe.parquet")
    z = np.load(results_dir / "maps.npz")
    rows = z["rows"]
    world = build_world(p["world"])
    ids = meta["id"].to_numpy()[rows]
    images, masks = render_ids(world, ids, px), probe_masks(world, ids, px)
    means = pd.DataFrame(summary["means"])
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
