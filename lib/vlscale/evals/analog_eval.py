"""The paper's protocols on the synthetic analogs (evals/analogs.py), for one checkpoint:

    imagenet, cifar100, pet   0-shot and 10-shot classification (imagenet also representation bias)
    coco, flickr              retrieval Recall@1/5/10 both ways
    xm3600                    retrieval per language, both ways
    dollarstreet              0-shot, per-income errors and their gap, 10-shot country geolocalisation
    geode                     0-shot, per-region errors and their gap, 10-shot country and region
                              geolocalisation
    gldv2                     0-shot landmarks
    fairface                  perceived-gender 0-shot and association bias

Images are rendered by the jit-compiled JAX renderer, the one training uses, in full batches.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from vlscale.evals import analogs
from vlscale.evals.embedder import Embedder, Prompts
from vlscale.evals.rows import (
    INCOME_TASKS,
    REGION_TASKS,
    association_bias_rows,
    classification_rows,
    error_row,
    few_shot_rows,
    representation_bias_rows,
    retrieval_rows,
    xm3600_rows,
    zero_shot,
    zero_shot_subgroup_rows,
)
from vlscale.world.render import render_jax, render_padded
from vlscale.world.spec import GENDERS


@dataclasses.dataclass
class AnalogSuite:
    """The analog benchmarks of one world, drawn once and shared by every checkpoint.

    test: name -> Benchmark (held-out "test" split); train: name -> Benchmark ("train" split, the
    few-shot probes' shots come from it)."""

    world: object
    px: int
    test: dict
    train: dict

    cache_bytes: int = 2 << 30  # rendered images kept for the next checkpoint, up to this many bytes

    def __post_init__(self):
        self._render = render_jax(self.world, self.px)  # on the accelerator, as training renders
        self._pixels: dict[str, np.ndarray] = {}  # rendered once, embedded by every checkpoint

    def _rendered(self, key: str, ids: np.ndarray, batch_size: int) -> np.ndarray | None:
        """All images of `ids` in [-1, 1] if they fit the cache (rendered on first use), else None."""
        if key not in self._pixels:
            need = len(ids) * self.px * self.px * 3 * 4
            if need + sum(a.nbytes for a in self._pixels.values()) > self.cache_bytes:
                return None
            self._pixels[key] = render_padded(self._render, ids, batch_size)
        return self._pixels[key]

    def images(self, embedder: Embedder, name: str, split: str = "test") -> np.ndarray:
        ids = (self.test if split == "test" else self.train)[name].ids
        key = f"{name}/{split}"
        pixels = self._rendered(key, ids, embedder.batch_size)
        if pixels is None:  # past the cache budget: render batch by batch
            return embedder.images(key, lambda a, b: render_padded(self._render, ids[a:b], embedder.batch_size), len(ids))
        return embedder.images(key, lambda start, stop: pixels[start:stop], len(ids))


def analog_suite(world, px: int, sizes: dict, train_sizes: dict, key: int = 0, progress: Callable = print) -> AnalogSuite:
    """Draw the analogs named in `sizes` (name -> test size) and the training splits in `train_sizes`."""
    test, train = {}, {}
    for name, size in sizes.items():
        t0 = time.perf_counter()
        test[name] = analogs.benchmark(world, name, size, key=key, split="test")
        if name in train_sizes:
            train[name] = analogs.benchmark(world, name, train_sizes[name], key=key, split="train")
        progress(f"drew {name}: {len(test[name].ids)} test images"
                 + (f", {len(train[name].ids)} train" if name in train else "") + f" ({time.perf_counter() - t0:.1f} s)")
    return AnalogSuite(world=world, px=px, test=test, train=train)


def english_equal_share(bench) -> dict[str, float]:
    """Per caption language of a multilingual retrieval analog, the share of its images whose caption
    in that language is the same string as their English caption: near 1 for a language whose names
    the world mostly shares with English (where its retrieval is partly an English task)."""
    rows = analogs.caption_images(bench)
    english = rows[rows["language"] == "en"].set_index("image")["caption"]
    same = rows["caption"].to_numpy() == english.reindex(rows["image"]).to_numpy()
    return {lang: float(v) for lang, v in pd.Series(same).groupby(rows["language"].to_numpy(), sort=True).mean().items()}


def analog_facts(suite: AnalogSuite) -> dict:
    """What each analog's draw is, beside the results: its size and, for retrieval analogs, the
    caption ceiling per language (analogs.caption_ceiling) and the share of captions equal to English."""
    facts = {}
    for name, bench in suite.test.items():
        facts[name] = {"images": int(len(bench.ids)), "train_images": int(len(suite.train[name].ids))
                       if name in suite.train else 0}
        if bench.captions is not None:
            facts[name]["caption_ceiling"] = analogs.caption_ceiling(bench)
            facts[name]["english_equal_share"] = english_equal_share(bench)
    return facts


def _codes(*columns) -> list[np.ndarray]:
    """Integer codes of string columns, shared across them."""
    codes, _ = pd.factorize(np.concatenate([np.asarray(c, dtype=object) for c in columns]))
    return np.split(codes, np.cumsum([len(c) for c in columns])[:-1])


def _geographic_rows(name, b, z, tr, tz, embedder, prompts, shots, subgroup, task_of, gap, geoloc) -> list[dict]:
    """Dollar Street / GeoDE: 0-shot, per-subgroup errors and their gap, and few-shot geolocalisation
    (task -> the meta column it predicts) when the analog has a training split."""
    rows = zero_shot_subgroup_rows(name, z, b.class_names, b.labels, b.meta[subgroup].to_numpy(), task_of,
                                   f"{name}/{gap}", embedder, prompts)
    if tr is not None:
        for task, column in geoloc.items():
            train_y, test_y = _codes(tr.meta[column], b.meta[column])
            rows += few_shot_rows(f"{name}/{task}", tz, train_y, z, test_y, shots)
    return rows


def evaluate_analog(suite: AnalogSuite, name: str, embedder: Embedder, prompts: Prompts, shots: int = 10) -> list[dict]:
    """Every protocol the analog `name` serves, on one checkpoint's embeddings. Returns rows
    (evals/rows.py: task, metric, value, se, n, and the per-item outcomes)."""
    b = suite.test[name]
    z = suite.images(embedder, name)
    tr = suite.train.get(name)
    tz = suite.images(embedder, name, "train") if tr is not None else None
    if name in ("imagenet", "cifar100", "pet"):
        rows = classification_rows(name, z, b.labels, b.class_names, embedder, prompts,
                                   tz, None if tr is None else tr.labels, shots)
        if name == "imagenet":  # Table 3 asks about random ImageNet images
            rows += representation_bias_rows("fairface/representation_bias", z, embedder, prompts)
        return rows
    if name in ("coco", "flickr"):
        return retrieval_rows(name, z, embedder.texts(b.captions), b.caption_image)
    if name == "xm3600":
        return xm3600_rows(z, embedder.texts(b.captions), b.caption_image, b.caption_language,
                           dict.fromkeys(b.caption_language))
    if name == "gldv2":
        return [error_row("gldv2/0shot", zero_shot(embedder, prompts, z, b.class_names, b.labels))]
    if name == "fairface":
        hits = zero_shot(embedder, prompts, z, prompts.genders(GENDERS), b.labels)
        return [error_row("fairface/perceived_gender", hits),
                *association_bias_rows(z, np.asarray(b.labels) == GENDERS.index("female"), embedder, prompts)]
    if name == "dollarstreet":
        return _geographic_rows(name, b, z, tr, tz, embedder, prompts, shots, "income", INCOME_TASKS,
                                "disparity_income", {"geoloc_10shot": "country"})
    if name == "geode":
        return _geographic_rows(name, b, z, tr, tz, embedder, prompts, shots, "region", REGION_TASKS,
                                "disparity_region", {"country_geoloc_10shot": "country",
                                                     "region_geoloc_10shot": "region"})
    raise ValueError(f"no protocols for analog {name!r}; expected one of {sorted(analogs.ANALOGS)}")
