"""The world stage: draw a pool of the synthetic web and describe it against the paper's Table 15.

`run(params)` draws `world_report.examples` examples (the first examples of every language stratum, in proportion
to the page shares), and writes:
    paper/figures/world/   language_shares.png, long_tail.png, region_income.png, examples.png (a grid of
                           `world_report.grid_examples` rendered examples)
    plots/world/           language_shares.csv (page share per language, world and paper), examples.csv (the
                           grid's languages, concepts, caption kinds and captions), captions.csv (the first clean
                           caption of each language in its own script)
    metrics/world.json     the keys below, the world's fingerprint and provenance
and returns the metrics.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from vlscale.analysis import figures
from vlscale.config import validate
from vlscale.files import write_json
from vlscale.provenance import provenance
from vlscale.world import vocab
from vlscale.world.captions import captions
from vlscale.world.describe import (
    EXAMPLES,
    HEAD_SHARE_OF_EXAMPLES,
    LANGUAGE_SHARE_MAX_ABS_DEV_PCT,
    LOW_RESOURCE_SHARE_PCT,
    caption_noise,
    concept_frequencies,
    language_shares,
    pool_ids,
    region_income,
)
from vlscale.world.ids import make_ids
from vlscale.world.render import render_ids
from vlscale.world.spec import build_world
from vlscale.world.truth import truth

FIG_DIR, PLOTS_DIR, METRICS_PATH = Path("paper/figures/world"), Path("plots/world"), Path("metrics/world.json")
CAPTIONS_CSV = PLOTS_DIR / "captions.csv"  # one caption per language, read by the paper stage


GRID_LANGUAGES = ("en", "hi", "te", "ja", "ar", "ru", "sw", "he", "zh", "th", "bn", "fil")  # several scripts
CAPTION_KIND_NAMES = ("clean", "misaligned", "vague")


def example_grid(world, ids: np.ndarray, gt: dict, n: int, px: int) -> pd.DataFrame:
    """Draw the first two examples of each GRID_LANGUAGES page language (at most `n`) to FIG_DIR/examples.png;
    returns their language, concept, caption kind and caption."""
    pick = np.concatenate([ids[gt["stratum"] == world.stratum_of(lang)][:2] for lang in GRID_LANGUAGES])[:n]
    sub = truth(world, pick)
    caps = captions(world, pick, sub)
    labels = [f"{i}: {world.strata[s]} · {world.country_codes[c]}"
              for i, (s, c) in enumerate(zip(sub["stratum"], sub["country"]))]
    figures.save(figures.image_grid(render_ids(world, pick, px), labels), FIG_DIR / "examples.png")
    return pd.DataFrame({"language": [world.strata[s] for s in sub["stratum"]],
                         "concept": [world.concepts[k]["en"] for k in sub["concept"]],
                         "caption kind": [CAPTION_KIND_NAMES[k] for k in sub["caption_kind"]],
                         "caption": caps})


def caption_per_language(world) -> pd.DataFrame:
    """The first clean caption of each language's own pages (among its first 4,096), in its script: one row per
    language of the vocabulary's language list (language, script, concept, caption)."""
    scripts = {lang["code"]: lang["script"] for lang in vocab.load("languages")["languages"]}
    rows = []
    for lang in (s for s in world.strata if s in scripts):
        own = make_ids(world.stratum_of(lang), np.arange(4096))
        g = truth(world, own)
        first = own[(g["caption_language"] == world.stratum_of(lang)) & (g["caption_kind"] == 0)][:1]
        one = truth(world, first)
        rows.append({"language": lang, "script": scripts[lang], "concept": world.concepts[one["concept"][0]]["en"],
                     "caption": captions(world, first, one)[0]})
    return pd.DataFrame(rows)


def run(params: dict) -> dict:
    """The world stage (module docstring). params: profile, world, world_report (as params.yaml has them)."""
    p = validate({k: params[k] for k in ("profile", "world", "world_report")})
    world = build_world(p.world)
    for folder in (FIG_DIR, PLOTS_DIR):
        folder.mkdir(parents=True, exist_ok=True)
    ids = pool_ids(world, p.world_report.examples)
    gt = truth(world, ids)

    langs = language_shares(world, gt)
    langs.to_csv(PLOTS_DIR / "language_shares.csv", index=False)
    figures.save(figures.language_shares(langs), FIG_DIR / "language_shares.png")
    freq = concept_frequencies(world, gt)
    figures.save(figures.long_tail(freq), FIG_DIR / "long_tail.png")
    figures.save(figures.region_income(region_income(world, gt)), FIG_DIR / "region_income.png")
    noise = caption_noise(world, gt)
    grid = example_grid(world, ids, gt, p.world_report.grid_examples, p.world_report.grid_px)
    grid.to_csv(PLOTS_DIR / "examples.csv", index=False)
    caption_per_language(world).to_csv(CAPTIONS_CSV, index=False)

    known = langs[langs["paper_pct"].notna()]
    metrics = {
        EXAMPLES: int(len(ids)),
        LANGUAGE_SHARE_MAX_ABS_DEV_PCT: float((known["world_pct"] - known["paper_pct"]).abs().max()),
        LOW_RESOURCE_SHARE_PCT: float(langs.loc[langs["group"] == "low", "world_pct"].sum()),
        "concepts": {k: int(v) for k, v in freq["kind"].value_counts().items()},
        HEAD_SHARE_OF_EXAMPLES: float(freq.loc[freq["kind"] == "head", "count"].sum() / len(ids)),
        "concepts_seen_frac": float((freq["count"] > 0).mean()),
        "caption_kinds_pct": {k: float(100 * np.mean(gt["caption_kind"] == i)) for i, k in enumerate(noise.columns)},
        "english_caption_pct": noise.attrs,
        "world_fingerprint": world.fingerprint(),
        "provenance": provenance(p.profile, p.dump()),
    }
    write_json(METRICS_PATH, metrics)
    return metrics
