"""Scoring the pool, one shard at a time: the per-pair work of the CLIP-score and classifier filters.

A synthetic pool's shards cut each stratum's local indices 0..N_s-1 into runs of `shard_size`; a pair's
scores depend only on the pair (its image, caption and the models), so any split gives the same scores,
and `select.merge_top_k` the same arms. A real pool's shards are its files: each record is re-read,
and a record that cannot be read is counted under its reason (shards.REASONS) and scored NaN, never
fatal.
"""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from vlscale.config import Params
from vlscale.data.input import center_crop_resize
from vlscale.data.shards import load_example
from vlscale.evals.embedder import Embedder, checkpoint_embedder
from vlscale.filtering.balance import Matcher
from vlscale.filtering.classifier import AlignmentHead, features
from vlscale.filtering.custom import CustomFilter
from vlscale.world.captions import captions
from vlscale.world.ids import make_ids
from vlscale.world.render import render_padded
from vlscale.world.truth import truth


@dataclass
class Scorers:
    """What scores a pair: the CLIP-score filter's scorer, the classifier filter's model and head, the custom arm's
    plug-in (filtering/custom.py), and the balanced arm's matcher (its entries, filtering/balance.py)."""
    clip: Embedder | None = None
    classifier: Embedder | None = None
    head: AlignmentHead | None = None
    custom: CustomFilter | None = None
    matcher: Matcher | None = None

    @property
    def names(self) -> list[str]:
        """The scores these give: "clip" (with a scorer), "classifier" (with a classifier), "custom" (a plug-in)."""
        return [name for name, x in (("clip", self.clip), ("classifier", self.classifier), ("custom", self.custom))
                if x is not None]

    @property
    def batch_size(self) -> int | None:
        """The image batch the pixels are padded to (the models'), None when nothing looks at pixels."""
        model = self.clip or self.classifier
        return model.batch_size if model is not None else (256 if self.custom is not None else None)

    def score(self, make_images: Callable, count: int, texts: list[str], languages=None,
              uids=None) -> dict[str, np.ndarray]:
        """{"clip": cosine, "classifier": P(aligned), "custom": the plug-in's score} of `count` pairs (images from
        make_images(a, b); the plug-in also gets their languages and uids)."""
        out = {}
        for name, emb in (("clip", self.clip), ("classifier", self.classifier)):
            if emb is None:
                continue
            e = emb.fresh()
            zi, zt = e.images("shard", make_images, count), e.texts(texts)
            out[name] = (zi * zt).sum(1) if name == "clip" else self.head.prob(features(zi, zt))
        if self.custom is not None:
            out["custom"] = self.custom(make_images(0, count), list(texts), list(languages), uids)
        return out

    def match(self, texts: list[str], languages) -> list[list[int]]:
        """The balanced arm's matched entries of each pair (empty lists without a matcher)."""
        if self.matcher is None:
            return [[] for _ in texts]
        return [self.matcher.match(t, lang) for t, lang in zip(texts, languages, strict=True)]


def load_embedder(p: Params, tokenizer, checkpoint: Path | str, config: dict | None = None) -> Embedder:
    """The Embedder of a filter model's checkpoint: params `p`'s model (or the big_vision config `config`), its
    image size, the tokenizer's max_len and evaluate.batch_size."""
    model_config = config or {**p.model.model_dump(), "text": {**p.model.text, "vocab_size": tokenizer.vocab_size}}
    return checkpoint_embedder(Path(checkpoint), model_config, tokenizer, p.train.image_px, p.tokenizer.max_len,
                               p.evaluate.batch_size)


def pool_shards(sizes, shard_size: int) -> list[tuple[int, int, int]]:
    """(stratum, start, stop) local-index ranges covering a synthetic pool of `sizes` pairs per stratum."""
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    return [(s, a, min(a + shard_size, int(n))) for s, n in enumerate(sizes) for a in range(0, int(n), shard_size)]


def shard_ids(shard: tuple[int, int, int]) -> np.ndarray:
    s, start, stop = shard
    return make_ids(s, np.arange(start, stop))


def score_synthetic(world, ids: np.ndarray, scorers: Scorers, render) -> tuple[dict, dict[str, np.ndarray]]:
    """(truth, scores) of synthetic pool ids: rendered with `render` (world.render.render_jax), captioned; the
    scores hold "matches" (each pair's matched entries) when `scorers` has a matcher."""
    gt = truth(world, ids)
    if scorers.batch_size is None and scorers.matcher is None:  # only unscored arms (english, random)
        return gt, {}
    texts = captions(world, ids, gt)
    languages = [world.strata[s] for s in gt["caption_language"]]
    out = {"matches": scorers.match(texts, languages)} if scorers.matcher is not None else {}
    if scorers.batch_size is None:
        return gt, out
    pixels = render_padded(render, ids, scorers.batch_size)
    return gt, {**scorers.score(lambda a, b: pixels[a:b], len(ids), texts, languages, ids), **out}


def score_record_shard(rows: pd.DataFrame, positions: np.ndarray, scorers: Scorers,
                       px: int) -> tuple[pd.DataFrame, Counter]:
    """One shard file's records (uid, language, shard, member; `positions`: their rows in the pool's records):
    (scores table [row, uid, language, and clip / classifier for each model `scorers` has], bad records by
    reason). A record that cannot be re-read is counted ("corrupt_image" when its image does not decode, else
    "missing_image") and scored NaN."""
    images, texts, ok, bad = [], [], [], Counter()
    for rec in rows.itertuples(index=False):
        try:
            image, caption = load_example(rec._asdict())
        except (ValueError, OSError, KeyError) as e:
            bad["corrupt_image" if "does not decode" in str(e) else "missing_image"] += 1
            ok.append(False)
            continue
        images.append(center_crop_resize(image, px).astype(np.float32) / 127.5 - 1.0)
        texts.append(caption)
        ok.append(True)
    ok = np.array(ok, bool)
    table = pd.DataFrame({"row": positions, "uid": rows["uid"].to_numpy(), "language": rows["language"].to_numpy()})
    got, languages, uids = {}, table["language"].to_numpy()[ok], table["uid"].to_numpy()[ok]
    if ok.any():
        pixels = np.stack(images)
        got = scorers.score(lambda a, b: pixels[a:b], len(pixels), texts, languages, uids)
    for name in scorers.names:  # a shard of unreadable records only: every score NaN
        full = np.full(len(table), np.nan)
        if name in got:
            full[ok] = got[name]
        table[name] = full
    if scorers.matcher is not None:  # an unreadable record matches nothing
        found = iter(scorers.match(texts, languages))
        table["matches"] = [next(found) if good else [] for good in ok]
    return table, bad


def record_shards(records: pd.DataFrame) -> list[tuple[str, np.ndarray]]:
    """(shard file, positions of its records in `records`) in order of first appearance (a shard's records
    need not be contiguous)."""
    return [(shard, np.asarray(pos)) for shard, pos in records.groupby("shard", sort=False).indices.items()]


def score_records(records: pd.DataFrame, scorers: Scorers, px: int,
                  progress: Callable = print) -> Iterator[tuple[str, pd.DataFrame, Counter]]:
    """Stream a real pool's records (uid, language, shard, member), shard file by shard file:
    yields (shard, scores table, bad records by reason) of `score_record_shard`, with progress."""
    t0, done = time.perf_counter(), 0
    shards = record_shards(records)
    for i, (shard, positions) in enumerate(shards):
        table, bad = score_record_shard(records.iloc[positions], positions, scorers, px)
        done += len(positions)
        progress(f"scored shard {i + 1}/{len(shards)} ({shard}): {done:,} records, {sum(bad.values())} bad here, "
                 f"{done / max(time.perf_counter() - t0, 1e-9):,.0f} pairs/s")
        yield shard, table, bad
