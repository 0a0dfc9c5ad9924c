"""The filter stage: the quality-filter arms of the pool, their scores, and the exact account of what each removed.

`run_filter(p)` writes to data/filter/ (`out_dir`):
    <arm>.npy                 the arm's kept ids, sorted (int64; the DataComp contract)
    scores/<shard>.parquet    every pool pair's id, caption_en (its caption is English), its raw scores:
                              clip (scorer cosine), classifier (P(aligned)); the arms' selection scores
                              (arms.SELECTION_COLUMN; NaN: not eligible): clip_en (the cosine of an
                              English-caption pair), english (the English arm's keyed draw), planted (the
                              planted arm's keyed draw); random (member of the random arm)
    account.parquet           per (arm, grouping, group): pool, kept, removed and their shares
    models/scorer, models/classifier   the filter models the stage trained (checkpoints, log)
    manifest.json             k, the arms' sizes and sha256, the filter models' records, timings, provenance
and returns the manifest. The random arm is the pool's nested random subset of filter.keep_fraction, k
its size: when keep_fraction is one of sample.fractions it is that subset exactly, and the natural run
of that fraction is the random arm's run.
"""
from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from vlscale.config import ParamsError
from vlscale.data.ids import CLASSIFIER_BIT, LOCAL_BITS, SCORER_BIT, make_ids
from vlscale.data.input import IdSource, read_sample
from vlscale.data.subsets import derive_key
from vlscale.filtering import account as acc
from vlscale.filtering.arms import (
    REAL_ARMS,
    SCORED_ARMS,
    english_caption,
    merge_arm,
    needs_scorer,
    planted_eligible,
    selection_scores,
    shard_candidates,
)
from vlscale.filtering.classifier import AlignmentHead, auc, features
from vlscale.filtering.manifest import FILTER_DIR, arm_path, sha256_of
from vlscale.filtering.score import Scorers, pool_shards, record_shards, score_record_shard, score_synthetic, shard_ids
from vlscale.filtering.select import keyed_scores
from vlscale.world.truth import truth

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


def model_train_block(p: dict, budget: float) -> dict:
    """The train block a filter model trains with: `budget` × train.examples_seen, one cool-down at its end."""
    T = p["train"]
    return {**T, "examples_seen": int(round(budget * T["examples_seen"])), "cooldown_budgets": [1.0],
            "probe_every_examples": 0}


def train_model(p: dict, world, tokenizer, ids: np.ndarray, budget: float, run_dir: Path, seed: int,
                progress: bool = True) -> dict:
    """Train a SigLIP of params `p`'s model on the pairs `ids`; returns {checkpoint, summary}."""
    from vlscale.evals.stage import checkpoints
    from vlscale.training.run import trainer_for

    T = {**model_train_block(p, budget), "seed": seed}
    source = IdSource(world, ids, derive_key(seed, 3))
    trainer = trainer_for({**p, "train": T}, world, source, tokenizer)
    summary = trainer.fit(run_dir, progress=progress)
    _, last = checkpoints(run_dir)[-1]
    return {"checkpoint": str(last), "examples_seen": T["examples_seen"], "unique_pairs": len(ids), "seed": seed,
            "summary": {k: v for k, v in summary.items() if isinstance(v, (int, float, str, bool))}}


def _embedder(p: dict, tokenizer, checkpoint: Path | str, config: dict | None = None):
    from vlscale.evals.stage import checkpoint_embedder

    model_config = config or {**p["model"], "text": {**p["model"]["text"], "vocab_size": tokenizer.vocab_size}}
    return checkpoint_embedder(Path(checkpoint), model_config, tokenizer, p["train"]["image_px"],
                               p["tokenizer"]["max_len"], p["evaluate"]["batch_size"])


def load_scorer(p: dict, tokenizer):
    """The Embedder of filter.scorer.checkpoint, or ParamsError naming it when it does not load or does not
    match the model config (checked before any work)."""
    path = p["filter"]["scorer"]["checkpoint"]
    try:
        return _embedder(p, tokenizer, path)
    except (OSError, ValueError, KeyError) as e:
        raise ParamsError(f"params.yaml: filter.scorer.checkpoint = {path!r}: {type(e).__name__}: {e}") from e


def fit_classifier(world, embedder, n: int, holdout: float, key: int, render) -> tuple[AlignmentHead, dict]:
    """The aligned/misaligned head on n labelled web pairs (label: the caption is clean), measured on the
    held-out share `holdout` of them (drawn by a keyed score)."""
    from vlscale.world.captions import captions
    from vlscale.world.render import render_padded

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

def run_filter(p: dict, out_dir: str | Path = FILTER_DIR, sample_dir: str | Path = "data/sample",
               progress: bool = True, log=print) -> dict:
    """The filter stage on resolved params `p` (see the module docstring)."""
    import jax

    from vlscale.data.tokenizer import TOKENIZER_PATH, Tokenizer
    from vlscale.provenance import provenance
    from vlscale.world.render import render_jax
    from vlscale.world.spec import build_world

    F, out_dir = p["filter"], Path(out_dir)
    world = build_world(p["world"])
    tokenizer = Tokenizer(TOKENIZER_PATH)
    label, entry, pool = read_sample(world, sample_dir, None)  # the largest subset: the pool
    synthetic = not isinstance(pool, pd.DataFrame)
    skipped = skipped_arms(F, synthetic, log)
    F = {**F, "arms": [a for a in F["arms"] if a not in skipped]}
    p = {**p, "filter": F}
    scorer = load_scorer(p, tokenizer) if needs_scorer(F["arms"]) and F["scorer"]["checkpoint"] else None
    shutil.rmtree(out_dir, ignore_errors=True)
    (out_dir / "scores").mkdir(parents=True)
    times, models = {}, {}
    t0 = time.perf_counter()
    render = render_jax(world, p["train"]["image_px"]) if synthetic else None
    if needs_scorer(F["arms"]) and scorer is None:
        log(f"training the scorer on {F['scorer']['examples']:,} curated English pairs")
        models["scorer"] = train_model(p, world, tokenizer, scorer_ids(world, F["scorer"]["examples"]),
                                       F["scorer"]["budget"], out_dir / "models/scorer",
                                       derive_key(F["key"], 1) % 2**31, progress)
        scorer = _embedder(p, tokenizer, models["scorer"]["checkpoint"])
        times["scorer_train_s"] = time.perf_counter() - t0
    elif scorer is not None:
        models["scorer"] = {"checkpoint": F["scorer"]["checkpoint"]}
    head = classifier = None
    if "classifier" in F["arms"]:
        t1 = time.perf_counter()
        C = F["classifier"]
        log(f"training the classifier's model on {C['web_examples']:,} web pairs")
        models["classifier"] = train_model(p, world, tokenizer, web_ids(world, C["web_examples"]), C["budget"],
                                           out_dir / "models/classifier", derive_key(F["key"], 2) % 2**31, progress)
        classifier = _embedder(p, tokenizer, models["classifier"]["checkpoint"])
        head, models["classifier"]["head"] = fit_classifier(world, classifier, C["labelled"], C["holdout"], F["key"],
                                                            render)
        log(f"classifier head: {models['classifier']['head']}")
        times["classifier_train_s"] = time.perf_counter() - t1
    scorers = Scorers(clip=scorer, classifier=classifier, head=head)

    t2 = time.perf_counter()
    if p.get("engine", "local") == "beam":
        manifest = (_filter_synthetic_beam(p, pool, models, head, out_dir, sample_dir, log) if synthetic
                    else _filter_real_beam(p, pool, out_dir, log))
    else:
        manifest = (_filter_synthetic if synthetic else _filter_real)(p, world, pool, scorers, render, out_dir, log)
    times["scoring_s"] = time.perf_counter() - t2
    manifest |= {"pool_label": label, "keep_fraction": F["keep_fraction"], "key": F["key"],
                 "world_fingerprint": world.fingerprint(), "source": "synthetic" if synthetic else "real",
                 "skipped_arms": skipped, "models": models, "engine": p.get("engine", "local"), "seconds": {**times, "total_s": time.perf_counter() - t0},
                 "devices": jax.device_count(), "provenance": provenance(p["profile"], p)}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1, default=_json))
    return manifest


def skipped_arms(F: dict, synthetic: bool, log=print) -> dict[str, str]:
    """The arms of filter.arms this pool cannot have, each with why (vlscale.plan.skipped_arms: a real pool has no
    world truth, and no scorer unless filter.scorer.checkpoint names one), each logged on one line."""
    from vlscale import plan

    skipped = plan.skipped_arms(F, "synthetic" if synthetic else "real")
    for arm, why in skipped.items():
        log(f"filter arm {arm!r} skipped: {why}")
    return skipped


def _json(o):
    if isinstance(o, (np.integer, np.floating)):
        return o.item()
    return str(o)


def score_shard(world, pool, scorers, render, F: dict, index: int, shard, k: int, out_dir: Path) -> tuple[dict, np.ndarray]:
    """One shard of the synthetic pool: every pair scored, the scores written (scores/shard_<index>.parquet),
    and ({scored arm: the shard's best k eligible (ids, selection scores)}, the shard's random-arm ids). A pure
    function of the shard: the local loop and the Beam pipeline both call it."""
    ids = shard_ids(shard)
    gt, raw = score_synthetic(world, ids, scorers, render)
    english = english_caption(world, gt)
    columns = {"caption_en": english, **raw,
               **selection_scores(ids, raw, english, F["key"], planted_eligible(world, gt))}
    in_random = pool.contains(ids, F["keep_fraction"])
    write_scores(out_dir, index, {"id": ids, **columns, "random": in_random})
    return shard_candidates(ids, columns, F["arms"], k), ids[in_random]


SCORES_ORDER = ("id", "row", "uid", "language", "caption_en", "clip", "clip_en", "classifier", "english", "planted",
                "random")  # the columns of a scores table, in this order (those a pool has)


def write_scores(out_dir: Path, index: int, columns: dict) -> None:
    """Write one shard's scores table (scores/shard_<index>.parquet): the columns it has, in SCORES_ORDER."""
    table = pd.DataFrame({c: columns[c] for c in SCORES_ORDER if c in columns})
    table.to_parquet(out_dir / "scores" / f"shard_{index:05d}.parquet", index=False)


def shard_counts(world, shard, arms: dict[str, np.ndarray]) -> pd.DataFrame:
    """One shard's additive account counts: every pair's truth against each arm's sorted kept ids."""
    ids = shard_ids(shard)
    return acc.count_table(acc.labels(world, truth(world, ids)), {a: member(ids, kept) for a, kept in arms.items()})


def filter_k(pool, F: dict) -> int:
    """k: the size of the random arm, the nested random subset of filter.keep_fraction."""
    return int(pool.counts(F["keep_fraction"]).sum())


def _filter_synthetic(p, world, pool, scorers, render, out_dir: Path, log) -> dict:
    F = p["filter"]
    k = filter_k(pool, F)
    shards = pool_shards(pool.sizes, F["shard_size"])
    candidates = {arm: [] for arm in SCORED_ARMS if arm in F["arms"]}
    random_parts, t0, done = [], time.perf_counter(), 0
    for i, shard in enumerate(shards):
        best, random_ids = score_shard(world, pool, scorers, render, F, i, shard, k, out_dir)
        random_parts.append(random_ids)
        for arm, c in best.items():
            candidates[arm].append(c)
        done += shard[2] - shard[1]
        if (i + 1) % max(1, len(shards) // 10) == 0 or i + 1 == len(shards):
            log(f"scored {i + 1}/{len(shards)} shards, {done:,} pairs, {done / (time.perf_counter() - t0):,.0f} pairs/s")
    arms = {arm: merge_arm(arm, c, k) for arm, c in candidates.items()}
    if "random" in F["arms"]:
        arms["random"] = np.sort(np.concatenate(random_parts))
    arms = {a: arms[a] for a in F["arms"]}
    # the account: every pool pair's truth, shard by shard, against each arm's membership
    account = acc.finish(acc.add_counts([shard_counts(world, shard, arms) for shard in shards]))
    return _write_arms(F, arms, account, out_dir, k, log, pool_pairs=int(pool.sizes.sum()), shards=len(shards))


def _filter_synthetic_beam(p, pool, models, head, out_dir: Path, sample_dir, log) -> dict:
    """`_filter_synthetic` on Beam (vlscale.beam.filter): the same scores, arms and account."""
    from vlscale.beam.filter import filter_synthetic
    from vlscale.beam.runner import outside_ipython
    from vlscale.data.tokenizer import TOKENIZER_PATH

    F = p["filter"]
    k = filter_k(pool, F)
    shards = pool_shards(pool.sizes, F["shard_size"])
    checkpoints = {name: {"checkpoint": models[name]["checkpoint"]} for name in ("scorer", "classifier") if name in models}
    arms, counts, counters = outside_ipython(filter_synthetic, p=p, shards=shards, k=k, models=checkpoints, head=head,
                                             out_dir=out_dir, sample_dir=sample_dir, tokenizer_path=TOKENIZER_PATH)
    log(f"Beam ({p['beam']['runner']}) scored {counters.get('shards_scored', '?')} shards in {counters['seconds']:.1f} s, "
        f"{counters.get('model_loads', '?')} model loads")
    return _write_arms(F, arms, acc.finish(counts), out_dir, k, log, pool_pairs=int(pool.sizes.sum()),
                       shards=len(shards), beam={"runner": p["beam"]["runner"], "counters": counters})


def real_arms(F: dict) -> list[str]:
    """The scored arms of filter.arms a real pool has (REAL_ARMS: the classifier and planted need world truth)."""
    return [arm for arm in REAL_ARMS if arm in F["arms"]]


def score_real_shard(records_of_shard: pd.DataFrame, positions: np.ndarray, scorers, px: int, F: dict,
                     random_rows: np.ndarray, k: int, index: int, out_dir: Path) -> tuple[dict, Counter]:
    """One shard file of a real pool: its records scored, the scores written (scores/shard_<index>.parquet), and
    ({scored arm: the shard's best k (rows, scores)}, bad records by reason). The local loop and the Beam
    pipeline both call it."""
    table, bad = score_record_shard(records_of_shard, positions, scorers, px)
    here = table["row"].to_numpy()
    english = table["language"].to_numpy() == "en"
    columns = {c: table[c].to_numpy() for c in table.columns} | {"caption_en": english}
    raw = {c: columns[c] for c in scorers.names}
    columns |= selection_scores(here, raw, english, F["key"]) | {"random": np.isin(here, random_rows)}
    write_scores(out_dir, index, columns)
    return shard_candidates(here, columns, real_arms(F), k), bad


def real_random_rows(p: dict, records: pd.DataFrame) -> np.ndarray:
    """The random arm of a real pool: its nested random subset of filter.keep_fraction (record rows)."""
    from vlscale.data.sampling import real_subsets

    return real_subsets(records, p["sample"]["key"]).ids(p["filter"]["keep_fraction"])


def _filter_real(p, world, records: pd.DataFrame, scorers, render, out_dir: Path, log) -> dict:
    F = p["filter"]
    records = records.reset_index(drop=True)
    random_rows = real_random_rows(p, records)
    k = len(random_rows)
    candidates = {arm: [] for arm in real_arms(F)}
    bad, t0, done = Counter(), time.perf_counter(), 0
    shards = record_shards(records)
    for i, (shard, positions) in enumerate(shards):
        best, bad_here = score_real_shard(records.iloc[positions], positions, scorers, p["train"]["image_px"], F,
                                          random_rows, k, i, out_dir)
        bad += bad_here
        for arm, c in best.items():
            candidates[arm].append(c)
        done += len(positions)
        log(f"scored shard {i + 1}/{len(shards)} ({shard}): {done:,} records, {sum(bad_here.values())} bad here, "
            f"{done / max(time.perf_counter() - t0, 1e-9):,.0f} pairs/s")
    arms = {arm: merge_arm(arm, c, k) for arm, c in candidates.items()}
    return _finish_real(F, records, arms, random_rows, bad, out_dir, k, log)


def _finish_real(F, records, arms, random_rows, bad, out_dir, k, log, **extra) -> dict:
    if "random" in F["arms"]:
        arms["random"] = np.sort(random_rows)
    rows = np.arange(len(records))
    language = records["language"].to_numpy(str)  # a record has one language: its page's and its caption's
    groups = {"language": language, "caption_language": language}
    account = acc.finish(acc.count_table(groups, {a: member(rows, arms[a]) for a in F["arms"]}))
    for arm, ids in arms.items():  # a real arm's members are record rows; their uids go beside them
        pd.DataFrame({"uid": records["uid"].to_numpy()[ids]}).to_parquet(out_dir / f"{arm}_uids.parquet", index=False)
    return _write_arms(F, arms, account, out_dir, k, log, pool_pairs=len(records), bad_records=dict(bad), **extra)


def _filter_real_beam(p, records: pd.DataFrame, out_dir: Path, log) -> dict:
    """`_filter_real` on Beam (vlscale.beam.filter.filter_real): the same scores, arms, account and bad records."""
    from vlscale.beam.filter import filter_real
    from vlscale.beam.runner import outside_ipython
    from vlscale.data.tokenizer import TOKENIZER_PATH

    F = p["filter"]
    records = records.reset_index(drop=True)
    random_rows = real_random_rows(p, records)
    k = len(random_rows)
    arms, bad, counters = outside_ipython(filter_real, p=p, records=records, random_rows=random_rows, k=k,
                                          out_dir=out_dir, tokenizer_path=TOKENIZER_PATH)
    log(f"Beam ({p['beam']['runner']}) scored {counters.get('shards_scored', '?')} shard files in "
        f"{counters['seconds']:.1f} s, {counters.get('model_loads', '?')} model loads")
    return _finish_real(F, records, arms, random_rows, bad, out_dir, k, log,
                        beam={"runner": p["beam"]["runner"], "counters": counters})


def member(ids: np.ndarray, sorted_ids: np.ndarray) -> np.ndarray:
    """bool [len(ids)]: which ids are in the sorted id list (binary search, as DataComp's resharder does)."""
    at = np.minimum(np.searchsorted(sorted_ids, ids), max(len(sorted_ids) - 1, 0))
    return (sorted_ids[at] == ids) if len(sorted_ids) else np.zeros(len(ids), bool)


def _write_arms(F, arms, account, out_dir, k, log, **extra) -> dict:
    entries = {}
    for arm in F["arms"]:
        ids = arms[arm]
        if len(ids) != k:
            raise RuntimeError(f"arm {arm!r} kept {len(ids)} pairs, not k = {k}")
        np.save(arm_path(arm, out_dir), ids)
        entries[arm] = {"kept": int(len(ids)), "sha256": sha256_of(ids), "file": arm_path(arm, out_dir).name}
        log(f"arm {arm}: {len(ids):,} pairs kept")
    account.to_parquet(out_dir / "account.parquet", index=False)
    return {"k": k, "arms": entries, "noise_removal": acc.noise_from_account(account), **acc.shares(account), **extra}
