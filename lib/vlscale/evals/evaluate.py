"""The evaluate stage: every protocol of the paper on every benchmark, for every cool-down checkpoint.

For one checkpoint, `evaluate_checkpoint` embeds each benchmark's images and texts once (`Embedder`
keeps them for the checkpoint) and runs every protocol that benchmark serves on those embeddings:

    imagenet, cifar100, pet   0-shot and 10-shot classification (imagenet also representation bias)
    coco, flickr              retrieval Recall@1/5/10 both ways
    xm3600                    retrieval per language, both ways
    dollarstreet              0-shot, per-income accuracy and its disparity, 10-shot country geolocalisation
    geode                     0-shot, per-region accuracy and its disparity, 10-shot country and region
                              geolocalisation
    gldv2                     0-shot landmarks
    fairface                  perceived-gender 0-shot and association bias

Each result is a row of the tidy table (`ROW_COLUMNS`): task names as evals/groups.py, a metric
("error_pct", "gap_pct", "male_preference_pct", "probability"), its value, binomial standard error in
the same unit and the number of test items. `evaluate_run` writes one JSON per (checkpoint,
benchmark) under results/evaluate/<run>/<checkpoint>/ and the run's rows to results/evaluate/<run>.parquet.
"""
from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from vlscale.evals import analogs, protocols
from vlscale.evals.groups import INCOME, REGIONS, XM3600_CODE, error_pct
from vlscale.config import REGIONS as WORLD_REGIONS
from vlscale.world.hashing import id_words
from vlscale.world.render import render_jax
from vlscale.world.spec import GENDERS

ROW_COLUMNS = ("run", "fraction", "data_pct", "examples_seen", "budget", "checkpoint", "profile", "model",
               "benchmark", "source", "task", "metric", "value", "se", "n")
CHECKPOINT_DIR = re.compile(r"seen_(\d+)$")
# The world's income groups (analogs.image_meta) in the order of groups.INCOME's task names.
INCOME_TASKS = dict(zip(("0-200", "200-685", "685-1998", ">1998"), INCOME))
REGION_TASKS = dict(zip(WORLD_REGIONS, REGIONS))


def binomial_se_pct(p: float, n: int) -> float:
    """Standard error, in percentage points, of a proportion p (fraction) measured on n items."""
    return 100.0 * float(np.sqrt(p * (1.0 - p) / n)) if n > 0 else float("nan")


def checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """The cool-down checkpoints of a train-stage run: [(examples seen, directory)], by examples seen."""
    found = []
    for d in sorted((Path(run_dir) / "cooldown").glob("seen_*")):
        m = CHECKPOINT_DIR.search(d.name)
        if m and d.is_dir():
            found.append((int(m.group(1)), d))
    if not found:
        raise FileNotFoundError(f"{run_dir}/cooldown has no seen_<examples> checkpoints; run its train stage first")
    return sorted(found)


class Embedder:
    """L2-normalised embeddings of one checkpoint, computed in fixed-size batches (one compiled shape)
    and remembered: a caption or prompt used by several benchmarks is embedded once.

    images(key, make_batch, count): embeddings of `count` images; make_batch(start, stop) returns
    float images in [-1, 1] [stop - start, px, px, 3]; remembered under `key`.
    """

    def __init__(self, embed_images: Callable, embed_texts: Callable, encode: Callable, batch_size: int = 512):
        self._embed_images, self._embed_texts, self._encode = embed_images, embed_texts, encode
        self.batch_size = batch_size
        self._texts: dict[str, np.ndarray] = {}
        self._images: dict[str, np.ndarray] = {}

    def _batched(self, fn, make_batch, count: int) -> np.ndarray:
        out = []
        for start in range(0, count, self.batch_size):
            stop = min(start + self.batch_size, count)
            batch = np.asarray(make_batch(start, stop))
            pad = self.batch_size - len(batch)
            if pad:  # keep one compiled shape
                batch = np.concatenate([batch, np.repeat(batch[-1:], pad, axis=0)])
            out.append(np.asarray(fn(batch), np.float32)[: stop - start])
        return np.concatenate(out)

    def texts(self, texts: Sequence[str]) -> np.ndarray:
        """[len(texts), D] embeddings."""
        new = list(dict.fromkeys(t for t in texts if t not in self._texts))
        if new:
            tokens = self._encode(new)
            z = self._batched(self._embed_texts, lambda a, b: tokens[a:b], len(new))
            self._texts.update(zip(new, z))
        return np.stack([self._texts[t] for t in texts])

    def images(self, key: str, make_batch: Callable, count: int) -> np.ndarray:
        if key not in self._images:
            self._images[key] = self._batched(self._embed_images, make_batch, count)
        return self._images[key]


@dataclasses.dataclass
class Prompts:
    """The texts the zero-shot protocols use: templates around a class name, and the words for the
    genders and occupations of the bias measures."""

    templates: Sequence[str] = ("{}",)
    male: str = "man"
    female: str = "woman"

    def classes(self, embedder: Embedder, names: Sequence[str]) -> np.ndarray:
        return protocols.class_embeddings(embedder.texts, list(names), list(self.templates))

    def genders(self, labels: Sequence[str]) -> list[str]:
        """The prompt word of each gender label ("female"/"Female" -> self.female, "male" -> self.male)."""
        return [{"female": self.female, "male": self.male}[g.lower()] for g in labels]


def _row(task: str, metric: str, value: float, se: float, n: int) -> dict:
    return dict(task=task, metric=metric, value=float(value), se=float(se), n=int(n))


def error_row(task: str, accuracy: float, n: int) -> dict:
    return _row(task, "error_pct", error_pct(accuracy), binomial_se_pct(accuracy, n), n)


def few_shot_rows(task: str, train_x, train_y, test_x, test_y, shots: int) -> list[dict]:
    """10-shot probe over the classes with at least `shots` training examples (rarer classes — a
    country with few images — leave the test set too). Returns one error row, or none without 2 classes."""
    counts = np.bincount(train_y, minlength=int(max(train_y.max(), test_y.max())) + 1)
    kept = np.flatnonzero(counts >= shots)
    if kept.size < 2:
        return []
    remap = np.full(counts.size, -1)
    remap[kept] = np.arange(kept.size)
    tr, te = remap[train_y] >= 0, remap[test_y] >= 0
    acc, _ = protocols.linear_probe_accuracy(train_x[tr], remap[train_y[tr]], test_x[te], remap[test_y[te]],
                                             kept.size, shots=shots)
    return [error_row(task, acc, int(te.sum()))]


def zero_shot_subgroup_rows(name: str, zimg, class_names, labels, groups, task_of: dict, gap_task: str,
                            embedder: Embedder, prompts: Prompts) -> list[dict]:
    """Dollar Street / GeoDE: the 0-shot error, then each subgroup's error and their gap (Table 4)."""
    acc, correct = zero_shot(embedder, prompts, zimg, class_names, labels)
    return [error_row(f"{name}/0shot", acc, len(labels)),
            *subgroup_rows(name, correct, groups, task_of, gap_task)]


def subgroup_rows(name: str, correct: np.ndarray, groups: np.ndarray, task_of: dict, gap_task: str) -> list[dict]:
    """Per-subgroup 0-shot errors and the maximum accuracy gap between subgroups (Table 4)."""
    gap, per_group = protocols.performance_disparity(correct, groups)
    rows = []
    for g, acc in per_group.items():
        if g not in task_of:
            raise ValueError(f"{name}: subgroup {g!r} is none of {sorted(task_of)}")
        rows.append(error_row(task_of[g], acc, int(np.sum(groups == g))))
    best, worst = max(per_group, key=per_group.get), min(per_group, key=per_group.get)
    se = np.hypot(*(binomial_se_pct(per_group[g], int(np.sum(groups == g))) for g in (best, worst)))
    rows.append(_row(gap_task, "gap_pct", 100.0 * gap, se, len(correct)))
    return rows


def zero_shot(embedder: Embedder, prompts: Prompts, zimg, class_names, labels):
    acc, predictions = protocols.zero_shot_accuracy(zimg, prompts.classes(embedder, class_names), labels)
    return acc, predictions == np.asarray(labels)


def classification_rows(name: str, zimg, labels, class_names, embedder: Embedder, prompts: Prompts,
                        train_z=None, train_labels=None, shots: int = 10) -> list[dict]:
    """0-shot (and 10-shot when a training split is given) errors of a classification benchmark."""
    acc, _ = zero_shot(embedder, prompts, zimg, class_names, labels)
    rows = [error_row(f"{name}/0shot", acc, len(labels))]
    if train_z is not None:
        rows += few_shot_rows(f"{name}/10shot", train_z, np.asarray(train_labels), zimg, np.asarray(labels), shots)
    return rows


def representation_bias_rows(task: str, zimg, embedder: Embedder, prompts: Prompts) -> list[dict]:
    """Table 3: % of images closer to the male than to the female prompt."""
    z_male, z_female = prompts.classes(embedder, [prompts.male, prompts.female])
    male_frac = protocols.representation_bias(zimg, z_male, z_female)["male_frac"]
    return [_row(task, "male_preference_pct", 100.0 * male_frac, binomial_se_pct(male_frac, len(zimg)), len(zimg))]


def association_bias_rows(zimg, is_female, embedder: Embedder, prompts: Prompts) -> list[dict]:
    """Figure 3: P(first occupation of each pair preferred) for female and for male images."""
    firsts = [a for a, _ in protocols.OCCUPATION_PAIRS]
    seconds = [b for _, b in protocols.OCCUPATION_PAIRS]
    bias = protocols.association_bias(zimg, is_female, prompts.classes(embedder, firsts),
                                      prompts.classes(embedder, seconds))
    counts = {"female": int(np.sum(is_female)), "male": int(np.sum(~np.asarray(is_female)))}
    return [_row(f"fairface/association_bias/{first}/{g}", "probability", p, binomial_se_pct(p, counts[g]) / 100.0,
                 counts[g])
            for first, by_gender in bias.items() for g, p in by_gender.items()]


def retrieval_rows(name: str, zimg, ztxt, caption_image, ks: Sequence[int] = (1, 5, 10)) -> list[dict]:
    """Image->text and text->image Recall@k errors; the task without @k is Recall@1 (Table 1)."""
    recall = protocols.retrieval_recall(zimg, ztxt, caption_image, ks)
    rows = []
    for k in ks:
        for d, n in (("i2t", len(zimg)), ("t2i", len(ztxt))):
            task = f"{name}/{d}" if k == 1 else f"{name}/{d}@{k}"
            rows.append(error_row(task, recall[f"{d}@{k}"], n))
    return rows


def xm3600_rows(zimg, ztxt, caption_image, caption_language, languages: Iterable[str]) -> list[dict]:
    """Per-language Recall@1 errors both ways: each language's captions against all images."""
    caption_language = np.asarray(caption_language)
    rows = []
    for lang in languages:
        sel = caption_language == lang
        if not sel.any():
            continue
        recall = protocols.retrieval_recall(zimg, ztxt[sel], np.asarray(caption_image)[sel], ks=(1,))
        code = XM3600_CODE.get(lang, lang)
        rows += [error_row(f"xm3600/{d}/{code}", recall[f"{d}@1"], int(sel.sum()) if d == "t2i" else len(zimg))
                 for d in ("i2t", "t2i")]
    return rows


# ---------------------------------------------------------------------------------------------
# The synthetic analogs


@dataclasses.dataclass
class AnalogSuite:
    """The analog benchmarks of one world, drawn once and shared by every checkpoint.

    test: name -> Benchmark (held-out "test" split); train: name -> Benchmark ("train" split, the
    few-shot probes' shots come from it)."""

    world: object
    px: int
    test: dict
    train: dict

    def __post_init__(self):
        self._render = render_jax(self.world, self.px)  # on the accelerator, as training renders

    def images(self, embedder: Embedder, name: str, split: str = "test") -> np.ndarray:
        ids = (self.test if split == "test" else self.train)[name].ids
        hi, lo = id_words(ids)

        def make_batch(start, stop):  # always a full batch of ids: one compiled shape
            sel = np.minimum(np.arange(start, start + embedder.batch_size), len(ids) - 1)
            return np.asarray(self._render(hi[sel], lo[sel]))[: stop - start] * 2.0 - 1.0

        return embedder.images(f"{name}/{split}", make_batch, len(ids))


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
    """Every protocol the analog `name` serves, on one checkpoint's embeddings. Returns tidy rows
    (task, metric, value, se, n)."""
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
        acc, _ = zero_shot(embedder, prompts, z, b.class_names, b.labels)
        return [error_row("gldv2/0shot", acc, len(b.labels))]
    if name == "fairface":
        acc, _ = zero_shot(embedder, prompts, z, prompts.genders(GENDERS), b.labels)
        rows = [error_row("fairface/perceived_gender", acc, len(b.labels))]
        return rows + association_bias_rows(z, np.asarray(b.labels) == GENDERS.index("female"), embedder, prompts)
    if name == "dollarstreet":
        return _geographic_rows(name, b, z, tr, tz, embedder, prompts, shots, "income", INCOME_TASKS,
                                "disparity_income", {"geoloc_10shot": "country"})
    if name == "geode":
        return _geographic_rows(name, b, z, tr, tz, embedder, prompts, shots, "region", REGION_TASKS,
                                "disparity_region", {"country_geoloc_10shot": "country",
                                                     "region_geoloc_10shot": "region"})
    raise ValueError(f"no protocols for analog {name!r}; expected one of {sorted(analogs.ANALOGS)}")


# ---------------------------------------------------------------------------------------------
# One run of the train stage, every checkpoint


def checkpoint_embedder(checkpoint: Path, model_config: dict, tokenizer, px: int, max_len: int,
                        batch_size: int) -> Embedder:
    """An Embedder over the SigLIP checkpoint at `checkpoint` (an Orbax cool-down directory)."""
    from vlscale import siglip

    model, params = siglip.load(checkpoint, model_config, image_size_px=px, text_len=max_len)
    return Embedder(lambda x: siglip.embed_images(model, params, x), lambda t: siglip.embed_texts(model, params, t),
                    lambda texts: tokenizer.encode(texts, max_len), batch_size)


def write_results(rows: list[dict], out_dir: Path, record: dict) -> Path:
    """One JSON per benchmark: its results keyed by task, with the run, checkpoint and provenance."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{record['benchmark']}.json"
    results = {r["task"]: {k: r[k] for k in ("metric", "value", "se", "n")} for r in rows}
    path.write_text(json.dumps({**record, "results": results}, indent=1, default=str))
    return path


def evaluate_run(run: str, run_dir: Path, fraction: float, total_examples: int, suites: dict, embedder_of: Callable,
                 prompts: Prompts, out_dir: Path, record: dict, shots: int = 10, progress: Callable = print) -> pd.DataFrame:
    """Evaluate every cool-down checkpoint of `run` on every benchmark of `suites`.

    suites: source ("analog" | "real") -> {benchmark name: fn(embedder, prompts, shots) -> rows}.
    embedder_of(checkpoint dir) -> Embedder. record: what every result carries (profile, model,
    params, provenance). Writes <out_dir>/<run>/<checkpoint>/<benchmark>.json and returns the tidy rows.
    """
    rows = []
    for seen, ckpt in checkpoints(run_dir):
        t0 = time.perf_counter()
        embedder = embedder_of(ckpt)
        where = dict(run=run, fraction=fraction, data_pct=100.0 * fraction, examples_seen=seen,
                     budget=seen / total_examples, checkpoint=str(ckpt), profile=record["profile"],
                     model=record["model"])
        for source, benches in suites.items():
            for name, fn in benches.items():
                t1 = time.perf_counter()
                got = fn(embedder, prompts, shots)
                write_results(got, out_dir / run / ckpt.name / source,
                              {**record, **where, "benchmark": name, "source": source,
                               "seconds": time.perf_counter() - t1})
                rows += [{**where, "benchmark": name, "source": source, **r} for r in got]
        progress(f"{run} {ckpt.name}: {sum(len(b) for b in suites.values())} benchmarks in {time.perf_counter() - t0:.1f} s")
    return pd.DataFrame(rows, columns=list(ROW_COLUMNS))


def run_stage(p: dict, name: str, runs_dir: str | Path = "runs", out_dir: str | Path = "results/evaluate",
              records_dir: str | Path = ".", progress: Callable = print) -> pd.DataFrame:
    """The evaluate stage for run `name` of resolved params `p`: every cool-down checkpoint under
    <runs_dir>/<name>, every analog with a size and every real set with a folder in `evaluate`.

    Writes <out_dir>/<name>/<checkpoint>/<source>/<benchmark>.json, the tidy table
    <out_dir>/<name>.parquet and <records_dir>/metrics/evaluate/<name>.json (the final checkpoint's
    results, timings, provenance). Returns the tidy table.
    """
    from vlscale.data.tokenizer import Tokenizer
    from vlscale.evals import real_eval
    from vlscale.provenance import provenance
    from vlscale.training.run import TOKENIZER_PATH
    from vlscale.world.spec import build_world

    t0 = time.perf_counter()
    E, T = p["evaluate"], p["train"]
    run = p["runs"][name]
    px, max_len = T["image_px"], p["tokenizer"]["max_len"]
    tokenizer = Tokenizer(TOKENIZER_PATH)
    model_config = {**p["model"], "text": {**p["model"]["text"], "vocab_size": tokenizer.vocab_size}}
    suites = {}
    sizes = {k: v for k, v in E["analogs"].items() if v > 0}
    if sizes:
        suite = analog_suite(build_world(p["world"]), px, sizes,
                             {k: v for k, v in E["train_sizes"].items() if k in sizes and v > 0}, E["key"], progress)
        suites["analog"] = {b: (lambda emb, pr, shots, b=b: evaluate_analog(suite, b, emb, pr, shots)) for b in sizes}
    real = {k: real_eval.LOADERS[k](root) for k, root in E["real_sets"].items() if root}
    if real:
        suites["real"] = real_eval.real_suite(real, px, E["key"])
    if not suites:
        raise ValueError("evaluate: no analog has a size > 0 and no real set has a folder; nothing to evaluate")
    image_cfg = p["model"]["image"]
    model_name = image_cfg.get("variant") or f"w{image_cfg['width']}d{image_cfg['depth']}p{image_cfg['patch_size'][0]}"
    record = dict(profile=p["profile"], model=model_name, evaluate=E, run_params=run,
                  provenance=provenance(p["profile"], p))
    prompts = Prompts(tuple(E["templates"]), E["gender_words"]["male"], E["gender_words"]["female"])
    table = evaluate_run(
        name, Path(runs_dir) / name, run["fraction"], T["examples_seen"], suites,
        lambda ckpt: checkpoint_embedder(ckpt, model_config, tokenizer, px, max_len, E["batch_size"]),
        prompts, Path(out_dir), record, E["shots"], progress)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table.to_parquet(out_dir / f"{name}.parquet", index=False)
    last = table[table["examples_seen"] == table["examples_seen"].max()]
    metrics = {
        "run": name, **run, "checkpoints": sorted(int(s) for s in table["examples_seen"].unique()),
        "final": {f"{r.source}/{r.task}": {"value": r.value, "se": r.se, "n": r.n, "metric": r.metric}
                  for r in last.itertuples()},
        "wall_s": time.perf_counter() - t0, "provenance": record["provenance"],
    }
    metrics_dir = Path(records_dir) / "metrics/evaluate"
    metrics_dir.mkdir(parents=True, exist_ok=True)
    (metrics_dir / f"{name}.json").write_text(json.dumps(metrics, indent=1, default=str))
    return table
