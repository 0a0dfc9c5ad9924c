"""The filter stage: the quality-filter arms of the pool, their scores, and the exact account of what each removed.

`run(params)` (params: the notebook's parameters cell) validates them and calls `run_filter(p)`, which writes to
data/filter/ (`out_dir`):
    <arm>.npy                 the arm's kept ids, sorted (int64; the DataComp contract)
    scores/<shard>.parquet    every pool pair's id, caption_en (its caption is English), its raw scores:
                              clip (scorer cosine), classifier (P(aligned)); the arms' selection scores
                              (arms.SELECTION_COLUMN; NaN: not eligible): clip_en (the cosine of an
                              English-caption pair), english (the English arm's keyed draw), planted (the
                              planted arm's keyed draw); random (member of the random arm)
    account.parquet           per (arm, grouping, group): pool, kept, removed and their shares
    models/scorer, models/classifier   the filter models the stage trained (checkpoints, log)
    manifest.json             k, the arms' sizes and sha256, the filter models' records, timings, provenance
and returns the manifest; `run` writes it to metrics/filter.json too, the account to plots/filter/account.csv and
its figures to paper/figures/filter/ (FIG_DIR: account.png, languages.png, caption_languages.png).
Scoring maps one function over the pool's shards (filtering/shards.py) on the local engine or on Beam
(`engine: beam`, vlscale.beam.filter): the same files either way. The random arm is the pool's nested random subset of filter.keep_fraction, k
its size: when keep_fraction is one of sample.fractions it is that subset exactly, and the natural run
of that fraction is the random arm's run.
"""
from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from pathlib import Path

import jax
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from vlscale import plan
from vlscale.analysis import figures
from vlscale.beam.runner import outside_ipython
from vlscale.config import LOW_RESOURCE, FilterParams, Params, ParamsError, TrainParams, validate
from vlscale.data.filter_arms import FILTER_DIR, arm_path, sha256_of
from vlscale.data.input import IdSource, read_sample
from vlscale.data.sampling import real_subsets
from vlscale.data.subsets import derive_key
from vlscale.data.tokenizer import TOKENIZER_PATH, Tokenizer
from vlscale.files import write_json
from vlscale.filtering import account as acc
from vlscale.filtering.arms import needs_scorer
from vlscale.filtering.classifier import AlignmentHead, auc, features
from vlscale.filtering.score import Scorers, load_embedder, pool_shards, record_shards
from vlscale.filtering.select import keyed_scores
from vlscale.filtering.shards import (
    REAL,
    SYNTHETIC,
    Selection,
    ShardScorer,
    ShardWork,
    load_extras,
    map_shards,
    member,
)
from vlscale.provenance import provenance
from vlscale.runs.layout import RunDir
from vlscale.training.run import trainer_for
from vlscale.world.captions import captions
from vlscale.world.ids import CLASSIFIER_BIT, LOCAL_BITS, SCORER_BIT, make_ids
from vlscale.world.render import render_jax, render_padded
from vlscale.world.spec import build_world
from vlscale.world.truth import truth

METRICS = Path("metrics/filter.json")
ACCOUNT_PLOT = Path("plots/filter/account.csv")
FIG_DIR = Path("paper/figures/filter")
_SCORER_STRATUM = 1 << (SCORER_BIT - LOCAL_BITS)
_CLASSIFIER_STRATUM = 1 << (CLASSIFIER_BIT - LOCAL_BITS)
_LABELLED_OFFSET = 1 << (LOCAL_BITS - 1)  # the labelled pairs' local indices, apart from the web source's


# ------------------------------------------------------------------------------- the filter models' data

def scorer_ids(world, n: int) -> np.ndarray:
    """The scorer's curated English source: the first n English pages of the SCORER_BIT range whose caption
    is clean and in English (as the English, curated sources CLIP-style filters were trained on)."""
    en = world.stratum_of("en")
    out, start, chunk = [], 0, max(4 * n, 1024)
    while sum(map(len, out)) < n:
        ids = make_ids(_SCORER_STRATUM | en, np.arange(start, start + chunk))
        gt = truth(world, ids)
        out.append(ids[(gt["caption_kind"] == 0) & (gt["caption_language"] == en)])
        start += chunk
    return np.concatenate(out)[:n]


def web_ids(world, n: int, labelled: bool = False) -> np.ndarray:
    """n web pairs of the CLASSIFIER_BIT range in the web's language mix (world.pool_sizes): the classifier's
    model learns from these (labelled=False); raters label the others (labelled=True)."""
    offset = _LABELLED_OFFSET if labelled else 0
    return np.concatenate([make_ids(_CLASSIFIER_STRATUM | s, offset + np.arange(m))
                           for s, m in enumerate(world.pool_sizes(n).tolist()) if m])


def model_train_block(train: TrainParams, budget: float) -> TrainParams:
    """The train block a filter model trains with: `budget` × train.examples_seen, one cool-down at its end."""
    return train.model_copy(update={"examples_seen": int(round(budget * train.examples_seen)),
                                    "cooldown_budgets": [1.0], "probe_every_examples": 0})


def train_model(p: Params, world, tokenizer, ids: np.ndarray, budget: float, run_dir: Path, seed: int,
                progress: bool = True) -> dict:
    """Train a SigLIP of params `p`'s model on the pairs `ids`; returns {checkpoint, summary}."""
    train = model_train_block(p.train, budget).model_copy(update={"seed": seed})
    source = IdSource(world, ids, derive_key(seed, 3))
    trainer = trainer_for(p.replace(train=train), world, source, tokenizer)
    summary = trainer.fit(run_dir, progress=progress)
    _, last = RunDir(run_dir).cooled_down()[-1]
    return {"checkpoint": str(last), "examples_seen": train.examples_seen, "unique_pairs": len(ids), "seed": seed,
            "summary": {k: v for k, v in summary.items() if isinstance(v, (int, float, str, bool))}}


def load_scorer(p: Params, tokenizer):
    """The Embedder of filter.scorer.checkpoint, or ParamsError naming it when it does not load or does not
    match the model config (checked before any work)."""
    path = p.filter.scorer.checkpoint
    try:
        return load_embedder(p, tokenizer, path)
    except (OSError, ValueError, KeyError) as e:
        raise ParamsError(f"params.yaml: filter.scorer.checkpoint = {path!r}: {type(e).__name__}: {e}") from e


def fit_classifier(world, embedder, n: int, holdout: float, key: int, render) -> tuple[AlignmentHead, dict]:
    """The aligned/misaligned head on n labelled web pairs (label: the caption is clean), measured on the
    held-out share `holdout` of them (drawn by a keyed score)."""
    ids = web_ids(world, n, labelled=True)
    gt = truth(world, ids)
    label = (gt["caption_kind"] == 0).astype(np.int64)
    pixels = render_padded(render, ids, embedder.batch_size)
    e = embedder.fresh()
    x = features(e.images("labelled", lambda a, b: pixels[a:b], len(ids)), e.texts(captions(world, ids, gt)))
    test = keyed_scores(ids, derive_key(key, 5)) < holdout
    head = AlignmentHead.fit(x[~test], label[~test])
    prob = head.prob(x[test])
    record = {"labelled": len(ids), "train": int((~test).sum()), "holdout": int(test.sum()),
              "aligned_share": float(label.mean()), "holdout_auc": auc(prob, label[test]),
              "holdout_accuracy": float(((prob > 0.5) == label[test]).mean()),
              "holdout_auc_cosine": auc(x[test, -1], label[test])}
    return head, record


# ----------------------------------------------------------------------------------------------- stage

BLOCKS = ("profile", "world", "tokenizer", "model", "train", "filter", "engine", "beam")  # validated whole
PART_BLOCKS = {"sample": ("key",), "evaluate": ("batch_size",)}  # the entries of other blocks it reads


def run(params: dict) -> dict:
    """The filter stage: `params` the notebook's parameters cell (BLOCKS, and sample.key and evaluate.batch_size,
    the two values of other blocks it reads: a real pool's subset key, and the embedding batch). Writes data/filter
    (see the module docstring), metrics/filter.json (the manifest), plots/filter/account.csv and the figures of
    paper/figures/filter/; returns the manifest."""
    parts = {block: {key: params[block][key] for key in keys} for block, keys in PART_BLOCKS.items()}
    p = validate({**{name: params[name] for name in BLOCKS}, **parts}, partial=tuple(PART_BLOCKS))
    manifest = run_filter(p, progress=False)
    write_json(METRICS, manifest)
    ACCOUNT_PLOT.parent.mkdir(parents=True, exist_ok=True)
    account = pd.read_parquet(FILTER_DIR / "account.parquet")
    account.to_csv(ACCOUNT_PLOT, index=False)
    draw_account(account, list(manifest["arms"]))
    return manifest


def draw_account(account: pd.DataFrame, arms: list[str], fig_dir: Path = FIG_DIR):
    """The account's figures: each arm's representation ratio per group (account.png), the kept share of each page
    language's pairs (languages.png) and of each caption language's (caption_languages.png)."""
    fig = figures.filter_account(account, arms)
    figures.save(fig, fig_dir / "account.png")
    plt.close(fig)
    fig = figures.filter_languages(account, LOW_RESOURCE)
    figures.save(fig, fig_dir / "languages.png")
    plt.close(fig)
    by_caption = account[account["grouping"] == "caption_language"]
    fig = figures.filter_languages(by_caption.assign(grouping="language"), LOW_RESOURCE)
    fig.axes[0].set_title("Pairs kept per caption language (* low-resource), languages by pool size")
    figures.save(fig, fig_dir / "caption_languages.png")
    plt.close(fig)


def run_filter(p: Params, out_dir: str | Path = FILTER_DIR, sample_dir: str | Path = "data/sample",
               progress: bool = True, log=print) -> dict:
    """The filter stage's work on validated params `p` (BLOCKS, sample.key and evaluate.batch_size; see the module
    docstring); returns the manifest."""
    filter_params, out_dir = p.filter, Path(out_dir)
    world = build_world(p.world)
    tokenizer = Tokenizer(TOKENIZER_PATH)
    label, _, pool = read_sample(world, sample_dir, None)  # the largest subset: the pool
    kind = REAL if isinstance(pool, pd.DataFrame) else SYNTHETIC
    skipped = skipped_arms(filter_params, kind, log)
    filter_params = filter_params.model_copy(update={"arms": [a for a in filter_params.arms if a not in skipped]})
    p = p.replace(filter=filter_params)
    scorer = (load_scorer(p, tokenizer) if needs_scorer(filter_params.arms) and filter_params.scorer.checkpoint
              else None)
    extras = load_extras(filter_params, world if kind == SYNTHETIC else None)  # the plug-in, the balanced entries
    shutil.rmtree(out_dir, ignore_errors=True)
    (out_dir / "scores").mkdir(parents=True)
    times, models = {}, {}
    t0 = time.perf_counter()
    render = render_jax(world, p.train.image_px) if kind == SYNTHETIC else None
    if needs_scorer(filter_params.arms) and scorer is None:
        log(f"training the scorer on {filter_params.scorer.examples:,} curated English pairs")
        models["scorer"] = train_model(p, world, tokenizer, scorer_ids(world, filter_params.scorer.examples),
                                       filter_params.scorer.budget, out_dir / "models/scorer",
                                       derive_key(filter_params.key, 1) % 2**31, progress)
        scorer = load_embedder(p, tokenizer, models["scorer"]["checkpoint"])
        times["scorer_train_s"] = time.perf_counter() - t0
    elif scorer is not None:
        models["scorer"] = {"checkpoint": filter_params.scorer.checkpoint}
    head = classifier = None
    if "classifier" in filter_params.arms:
        t1 = time.perf_counter()
        classifier_params = filter_params.classifier
        log(f"training the classifier's model on {classifier_params.web_examples:,} web pairs")
        models["classifier"] = train_model(p, world, tokenizer, web_ids(world, classifier_params.web_examples),
                                           classifier_params.budget, out_dir / "models/classifier",
                                           derive_key(filter_params.key, 2) % 2**31, progress)
        classifier = load_embedder(p, tokenizer, models["classifier"]["checkpoint"])
        head, models["classifier"]["head"] = fit_classifier(world, classifier, classifier_params.labelled,
                                                            classifier_params.holdout, filter_params.key, render)
        log(f"classifier head: {models['classifier']['head']}")
        times["classifier_train_s"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    if kind == SYNTHETIC:
        k, random_rows = filter_k(pool, filter_params), None
        shards = pool_shards(pool.sizes, filter_params.shard_size)
    else:
        pool = pool.reset_index(drop=True)
        random_rows = real_random_rows(p, pool)
        k, shards = len(random_rows), [(pool.iloc[pos], pos) for _, pos in record_shards(pool)]
    work = ShardWork(kind, p, k, str(out_dir.resolve()), str(Path(sample_dir).resolve()),
                     str(Path(TOKENIZER_PATH).resolve()),
                     {name: str(Path(m["checkpoint"]).resolve()) for name, m in models.items()}, head, random_rows)
    engine = p.engine or "local"
    if engine == "beam":
        from vlscale.beam import filter as beam_filter  # apache_beam: the optional extra

        selection = outside_ipython(beam_filter.map_shards, work=work, shards=shards, beam_params=p.beam)
        log(f"Beam ({p.beam.runner}) scored {selection.counters.get('shards_scored', '?')} shards in "
            f"{selection.counters['seconds']:.1f} s, {selection.counters.get('model_loads', '?')} model loads")
    else:
        scorers = Scorers(clip=scorer, classifier=classifier, head=head, **extras)
        selection = map_shards(ShardScorer(work, world, pool, scorers, render), shards, log)
    manifest = _write_arms(filter_params, kind, pool, selection, out_dir, k, log, shards=len(shards))
    if "balanced" in filter_params.arms:
        manifest["balanced"] = json.loads((out_dir / "balanced.json").read_text())
    if "custom" in extras:
        manifest["custom"] = extras["custom"].record()
    if selection.counters is not None:
        manifest["beam"] = {"runner": p.beam.runner, "counters": selection.counters}
    times["scoring_s"] = time.perf_counter() - t2
    manifest |= {"pool_label": label, "keep_fraction": filter_params.keep_fraction, "key": filter_params.key,
                 "world_fingerprint": world.fingerprint(), "source": kind, "skipped_arms": skipped,
                 "models": models, "engine": engine, "seconds": {**times, "total_s": time.perf_counter() - t0},
                 "devices": jax.device_count(), "provenance": provenance(p.profile, p.dump())}
    write_json(out_dir / "manifest.json", manifest)
    return manifest


def skipped_arms(filter_params: FilterParams, kind: str, log=print) -> dict[str, str]:
    """The arms of filter.arms a pool of `kind` cannot have, each with why (vlscale.plan.skipped_arms: a real pool
    has no world truth, and no scorer unless filter.scorer.checkpoint names one), each logged on one line."""
    skipped = plan.skipped_arms(filter_params, kind)
    for arm, why in skipped.items():
        log(f"filter arm {arm!r} skipped: {why}")
    return skipped


def filter_k(pool, filter_params: FilterParams) -> int:
    """k: the size of the random arm, the nested random subset of filter.keep_fraction."""
    return int(pool.counts(filter_params.keep_fraction).sum())


def real_random_rows(p: Params, records: pd.DataFrame) -> np.ndarray:
    """The random arm of a real pool: its nested random subset of filter.keep_fraction (record rows)."""
    return real_subsets(records, p.sample.key).ids(p.filter.keep_fraction)


def _write_arms(filter_params: FilterParams, kind: str, pool, selection: Selection, out_dir: Path, k: int, log,
                **extra) -> dict:
    """Write each arm (<arm>.npy; a real pool's also <arm>_uids.parquet) and the account; the manifest's entries."""
    arms = selection.arms
    if kind == SYNTHETIC:
        account = acc.finish(selection.counts)
        extra = {"pool_pairs": int(pool.sizes.sum()), **extra}
    else:  # a real arm's members are record rows; their uids go beside them
        rows = np.arange(len(pool))
        language = pool["language"].to_numpy(str)  # a record has one language: its page's and its caption's
        groups = {"language": language, "caption_language": language}
        account = acc.finish(acc.count_table(groups, {a: member(rows, arms[a]) for a in filter_params.arms}))
        for arm, ids in arms.items():
            pd.DataFrame({"uid": pool["uid"].to_numpy()[ids]}).to_parquet(out_dir / f"{arm}_uids.parquet",
                                                                         index=False)
        bad = sum(selection.rests, Counter())
        extra = {"pool_pairs": len(pool), "bad_records": dict(sorted(bad.items())), **extra}
    entries = {}
    for arm in filter_params.arms:
        ids = arms[arm]
        if len(ids) != k:
            raise RuntimeError(f"arm {arm!r} kept {len(ids)} pairs, not k = {k}")
        np.save(arm_path(arm, out_dir), ids)
        entries[arm] = {"kept": int(len(ids)), "sha256": sha256_of(ids), "file": arm_path(arm, out_dir).name}
        log(f"arm {arm}: {len(ids):,} pairs kept")
    account.to_parquet(out_dir / "account.parquet", index=False)
    return {"k": k, "arms": entries, "noise_removal": acc.noise_from_account(account), **acc.shares(account), **extra}
