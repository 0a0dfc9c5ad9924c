"""Every protocol of the paper (arXiv 2502.07617 §3.3) on the real evaluation sets, as read by evals/real_sets.py.

`evaluate_real(name, data, embedder, prompts, px)` embeds the set's images once (key "real/<name>"),
runs the protocols that set serves and returns tidy rows (task, metric, value, se, n), the same rows
and task names (evals/groups.py) as `analog_eval.evaluate_analog` gives for the synthetic analogs:

    imagenet      0-shot; representation bias (Table 3 asks about random ImageNet images)
    coco, flickr  retrieval Recall@1/5/10 both ways, all captions English
    xm3600        retrieval Recall@1 both ways per language, each language over the images it captions
    xtd10, xflickrco  retrieval Recall@1/5/10 both ways per language (one caption per image and language)
    dollarstreet  0-shot over first topics, per-income errors and their gap, 10-shot country geolocalisation
    geode         0-shot, per-region errors and their gap, 10-shot country and region geolocalisation
    gldv2         0-shot landmarks
    fairface      perceived gender and perceived race 0-shot, association bias

Choices the paper leaves open, made here:
- Dollar Street's label is an image's first topic, and the classes are the distinct first topics
  (canonicalised). Where the CSV has an ``imagenet_sysnet_id`` column (the ImageNet-mapped test CSV of
  ref. [63], ~21K images) only rows with a mapped synset are evaluated, so the full ``images_v2.csv``
  gives the same subset.
- Dollar Street income (US$ per month) falls into Table 10's groups with the upper edge inclusive:
  [0, 200] -> "0-200", (200, 685] -> "200-685", (685, 1998] -> "685-1998", above 1998 -> ">1998".
- The real sets have no training split, so few-shot geolocalisation splits the set by a seeded hash
  of each image's key (`shot_pool`): about half is the pool the shots are drawn from, the rest is
  tested. Countries (or regions) with fewer than `shots` pool images leave the test too.
- Retrieval needs every image to have a caption (protocols.retrieval_recall), so each language's
  (or set's) retrieval runs over the images that have at least one caption in it.
"""
from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from vlscale.config import REGIONS as WORLD_REGIONS
from vlscale.data.input import center_crop_resize
from vlscale.evals import real_sets
from vlscale.evals.embedder import Embedder, Prompts
from vlscale.evals.groups import XM3600_CODE, XM3600_LANGUAGES
from vlscale.evals.protocols import canonicalize
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

# params.yaml's evaluate.real_sets keys -> the loader of each set and the name its EvalSet carries.
LOADERS = {
    "imagenet": real_sets.load_imagenet,
    "coco": real_sets.load_coco_captions,
    "flickr": real_sets.load_flickr30k,
    "xm3600": real_sets.load_xm3600,
    "xtd10": real_sets.load_xtd10,
    "xflickrco": real_sets.load_xflickrco,
    "dollarstreet": real_sets.load_dollar_street,
    "geode": real_sets.load_geode,
    "gldv2": real_sets.load_gldv2,
    "fairface": real_sets.load_fairface,
}
EVALSET_NAMES = {"flickr": "flickr30k", "dollarstreet": "dollar_street"}  # the others carry their key

# Table 10's income groups (world/spec.INCOME_GROUPS, the keys of rows.INCOME_TASKS): upper edges, inclusive.
INCOME_UPPER_EDGES = (200.0, 685.0, 1998.0)
INCOME_GROUPS = tuple(INCOME_TASKS)
# GeoDE writes "EastAsia", "SouthEastAsia", ...; spaced, hyphenated or lower-case forms mean the same.
GEODE_REGIONS = {re.sub(r"[^a-z]", "", r.lower()): r for r in WORLD_REGIONS}
DECODE_THREADS = 8  # JPEG decoding releases the GIL; a batch of 512 decodes in parallel


def evaluate_real(name: str, data: real_sets.EvalSet, embedder: Embedder, prompts: Prompts, px: int,
                  shots: int = 10, seed: int = 0, strict: bool = False) -> list[dict]:
    """Every protocol the real set `name` serves, on one checkpoint's embeddings.

    name: a key of LOADERS; data: that set as its loader returns it; px: the model's image size
    (images are centre-cropped and resized to [px, px, 3], scaled to [-1, 1]); shots: examples per
    class of the few-shot probes; seed: the geolocalisation split (`shot_pool`); strict: an image that
    does not decode is an error (default: it is left out and counted, see evaluate_real_set).
    Returns tidy rows (task, metric, value, se, n).
    """
    return evaluate_real_set(name, data, embedder, prompts, px, shots, seed, strict)[0]


def evaluate_real_set(name: str, data: real_sets.EvalSet, embedder: Embedder, prompts: Prompts, px: int,
                      shots: int = 10, seed: int = 0, strict: bool = False) -> tuple[list[dict], real_sets.EvalSet]:
    """(rows, the set as evaluated): as evaluate_real, and the set without the images that did not
    decode, which its `skipped` lists ("image does not decode") beside any the loader left out;
    `accounting()` gives listed = evaluated + skipped."""
    if name not in LOADERS:
        raise ValueError(f"no protocols for real set {name!r}; expected one of {sorted(LOADERS)}")
    expected = EVALSET_NAMES.get(name, name)
    if data.name != expected:
        raise ValueError(f"real set {name!r}: got the EvalSet of {data.name!r}; expected one from "
                         f"real_sets.{LOADERS[name].__name__} (named {expected!r})")
    if len(data) == 0:
        raise ValueError(f"real set {name!r}: no images")
    if name == "dollarstreet":
        data = _dollar_street_subset(data)
    data = readable_images(embedder, f"real/{name}", data, px, strict)
    if len(data) == 0:
        raise ValueError(f"real set {name!r}: none of its images decodes")
    return _PROTOCOLS[name](name, data, embedder, prompts, px, shots, seed), data


def _batches(pixels_of: Callable[[int], np.ndarray]) -> Callable:
    """make_batch(start, stop) for Embedder.images: uint8 pixels of rows start..stop-1, decoded in
    parallel threads, as float in [-1, 1]."""
    def make_batch(start, stop):
        with ThreadPoolExecutor(DECODE_THREADS) as pool:
            pixels = list(pool.map(pixels_of, range(start, stop)))
        return np.stack(pixels).astype(np.float32) / 127.5 - 1.0

    return make_batch


def readable_images(embedder: Embedder, key: str, data: real_sets.EvalSet, px: int,
                    strict: bool = False) -> real_sets.EvalSet:
    """Embed every image of `data` once (remembered under `key`) and return the set without those that
    do not decode, recorded in its `skipped`; with strict, the first such image is a ValueError naming it."""
    if embedder.has_images(key):
        return data
    failed: dict[int, str] = {}

    def one(i):
        try:
            return center_crop_resize(real_sets.read_image(data.images[i]), px)
        except ValueError as e:
            if strict:
                raise ValueError(f"{e} (strict: pass strict=False, or leave out --strict, to skip it)") from e
            failed[i] = str(e)
            return np.zeros((px, px, 3), np.uint8)

    z = embedder.images(f"{key}/as listed", _batches(one), len(data))
    bad = sorted(failed)
    if bad:
        warnings.warn(f"{data.name}: {len(bad)} of {len(data)} images do not decode, left out; e.g. "
                      f"{[failed[i] for i in bad[:3]]}", stacklevel=2)
        data = data.without(bad, real_sets.IMAGE_UNDECODABLE)
        z = np.delete(z, bad, axis=0)
    embedder.remember(key, z)
    embedder.forget(f"{key}/as listed")
    return data


def real_suite(sets: dict[str, real_sets.EvalSet], px: int, seed: int = 0) -> dict[str, Callable]:
    """The "real" entry of evaluate.evaluate_run's suites: name -> fn(embedder, prompts, shots) -> rows."""
    return {name: (lambda embedder, prompts, shots, name=name, data=data:
                   evaluate_real(name, data, embedder, prompts, px, shots, seed))
            for name, data in sets.items()}


# --- shared steps -------------------------------------------------------------------------------


def image_embeddings(embedder: Embedder, key: str, paths: Sequence, px: int) -> np.ndarray:
    """[len(paths), D] embeddings of the images at `paths`: decoded, centre-cropped and resized to
    px, scaled to [-1, 1], embedded in the embedder's batches and remembered under `key`."""
    z = embedder.images(key, _batches(lambda i: center_crop_resize(real_sets.read_image(paths[i]), px)), len(paths))
    if len(z) != len(paths):  # the embedder remembered another set under this key
        raise ValueError(f"embeddings {key!r}: the embedder holds {len(z)} images, the set has {len(paths)}")
    return z


def shot_pool(keys: Sequence[str], seed: int = 0) -> np.ndarray:
    """[N] bool: True for images in the few-shot pool, False for test images. Each image's side is a
    function of (seed, its key) alone, so it is the same whatever else the set holds; about half go
    to each side."""
    def first_bit(key):
        return hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest()[0] & 1

    return np.array([first_bit(str(k)) == 0 for k in keys], dtype=bool)


def income_group(income, where: Callable[[int], str] = lambda i: f"income[{i}]") -> np.ndarray:
    """[N] Table 10 income group ("0-200", ..., ">1998") of monthly incomes in US$; edges as the
    module docstring. A negative or non-finite income is a ValueError that starts with where(its index)."""
    income = np.asarray(income, dtype=float)
    bad = np.flatnonzero(~np.isfinite(income) | (income < 0))
    if bad.size:
        raise ValueError(f"{where(int(bad[0]))}: income {float(income[bad[0]])!r}; "
                         f"expected a non-negative number of US$ per month")
    return np.asarray(INCOME_GROUPS)[np.digitize(income, INCOME_UPPER_EDGES, right=True)]


def _where(data: real_sets.EvalSet, row: int) -> str:
    """'<set> image <key> (<file>)' for error messages."""
    return f"{data.name} image {data.examples['key'].iloc[row]!r} ({data.images[row]})"


def _geoloc_rows(task: str, keys: Sequence[str], z: np.ndarray, places: Sequence, shots: int,
                 seed: int) -> list[dict]:
    """Few-shot geolocalisation of `places` (country or region of each image of z, by its key; empty
    ones left out): shots from the pool side of `shot_pool`, tested on the other side."""
    codes, _ = pd.factorize(np.asarray(places, dtype=object))
    pool = shot_pool(keys, seed)
    known = codes >= 0
    train, test = pool & known, ~pool & known
    if not train.any() or not test.any():
        return []
    rows = few_shot_rows(task, z[train], codes[train], z[test], codes[test], shots)
    for r in rows:  # items index the set's images, not the test side
        r["item"] = np.flatnonzero(test)[r["item"]].astype(np.int32)
    return rows


def _column(data: real_sets.EvalSet, column: str, needed_for: str) -> pd.Series:
    if column not in data.examples:
        raise ValueError(f"{data.name}: no {column!r} column, needed for {needed_for}; "
                         f"the set has {list(data.examples.columns)}")
    return data.examples[column]


# --- one function per set -----------------------------------------------------------------------


def _classification_set(data):
    labels = _column(data, "label", "0-shot classification").to_numpy()
    if not data.class_names:
        raise ValueError(f"{data.name}: no class_names; expected the loader's names of the labels")
    return labels


def _imagenet(name, data, embedder, prompts, px, shots, seed):
    labels = _classification_set(data)
    z = image_embeddings(embedder, f"real/{name}", data.images, px)
    rows = classification_rows(name, z, labels, data.class_names, embedder, prompts)
    return rows + representation_bias_rows("fairface/representation_bias", z, embedder, prompts)


def _gldv2(name, data, embedder, prompts, px, shots, seed):
    labels = _classification_set(data)
    z = image_embeddings(embedder, f"real/{name}", data.images, px)
    return classification_rows(name, z, labels, data.class_names, embedder, prompts)


def _captioned(caption_image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the image rows some caption describes, each caption's index into those rows): retrieval over
    only the captioned images, which protocols.retrieval_recall requires."""
    images = np.unique(caption_image)
    return images, np.searchsorted(images, caption_image)


def _check_captions(data: real_sets.EvalSet):
    if data.captions is None or data.captions.empty:
        raise ValueError(f"{data.name}: no captions; expected the loader's captions (image, language, caption)")
    image = data.captions["image"].to_numpy()
    if image.min() < 0 or image.max() >= len(data):
        raise ValueError(f"{data.name}: captions name image rows {image.min()}..{image.max()}; "
                         f"the set has {len(data)} images")


def _coco_flickr(name, data, embedder, prompts, px, shots, seed):
    _check_captions(data)
    z = image_embeddings(embedder, f"real/{name}", data.images, px)
    images, caption_image = _captioned(data.captions["image"].to_numpy())
    return retrieval_rows(name, z[images], embedder.texts(data.captions["caption"].tolist()), caption_image,
                          images=images)


def _xm3600(name, data, embedder, prompts, px, shots, seed):
    _check_captions(data)
    for lang in dict.fromkeys(data.captions["language"]):
        if XM3600_CODE.get(lang, lang) not in XM3600_LANGUAGES:
            raise ValueError(f"{data.name}: captions in language {lang!r}; "
                             f"expected Crossmodal-3600 codes {XM3600_LANGUAGES}")
    z = image_embeddings(embedder, f"real/{name}", data.images, px)
    ztxt = embedder.texts(data.captions["caption"].tolist())
    language = data.captions["language"].to_numpy()
    rows = []
    for lang in dict.fromkeys(language):  # each language over the images it captions
        sel = np.flatnonzero(language == lang)
        images, caption_image = _captioned(data.captions["image"].to_numpy()[sel])
        rows += xm3600_rows(z[images], ztxt[sel], caption_image, language[sel], [lang], images=images)
    return rows


def _multilingual(name, data, embedder, prompts, px, shots, seed):
    """XTD10, xFlickr&CO: Recall@1/5/10 both ways per language, each over the images it captions."""
    _check_captions(data)
    z = image_embeddings(embedder, f"real/{name}", data.images, px)
    ztxt = embedder.texts(data.captions["caption"].tolist())
    language = data.captions["language"].to_numpy()
    rows = []
    for lang in dict.fromkeys(language):
        sel = np.flatnonzero(language == lang)
        images, caption_image = _captioned(data.captions["image"].to_numpy()[sel])
        rows += retrieval_rows(f"{name}/{lang}", z[images], ztxt[sel], caption_image, images=images)
    return rows


def _dollar_street(name, data, embedder, prompts, px, shots, seed):
    topics = _column(data, "topics", "the 0-shot label (first topic)")
    income = _column(data, "income", "the income groups")
    keep = np.arange(len(data))  # evaluate_real_set has left out the images outside ref. [63]'s subset
    first = []
    for row in keep:
        if not topics.iloc[row]:
            raise ValueError(f"{_where(data, row)}: topics {topics.iloc[row]!r}; expected at least one topic")
        first.append(canonicalize(topics.iloc[row][0]))
    class_names = sorted(set(first))
    labels = np.searchsorted(class_names, first)
    groups = income_group(income.iloc[keep].to_numpy(dtype=float), where=lambda i: _where(data, keep[i]))
    z = image_embeddings(embedder, f"real/{name}", [data.images[i] for i in keep], px)
    rows = zero_shot_subgroup_rows(name, z, class_names, labels, groups, INCOME_TASKS,
                                   "dollarstreet/disparity_income", embedder, prompts)
    if "country" in data.examples:
        rows += _geoloc_rows("dollarstreet/geoloc_10shot", data.examples["key"].iloc[keep], z,
                             data.examples["country"].iloc[keep], shots, seed)
    return rows


NOT_IMAGENET_MAPPED = "no imagenet_sysnet_id (outside the ImageNet-mapped subset of ref. [63])"


def _dollar_street_subset(data):
    """Where the CSV has an imagenet_sysnet_id column (the ImageNet-mapped test CSV of ref. [63]), the
    set without the rows that have no mapped synset (recorded as skipped for that reason)."""
    if "imagenet_sysnet_id" not in data.examples:
        return data
    synsets = data.examples["imagenet_sysnet_id"].fillna("").astype(str).str.strip()
    unmapped = np.flatnonzero(synsets.isin(("", "[]")).to_numpy())
    if unmapped.size == len(data):
        raise ValueError(f"{data.name}: no image has an imagenet_sysnet_id; "
                         f"expected the ImageNet-mapped topics of ref. [63]")
    return data.without(unmapped, NOT_IMAGENET_MAPPED) if unmapped.size else data


def _geode(name, data, embedder, prompts, px, shots, seed):
    labels = _classification_set(data)
    raw = _column(data, "region", "the region groups")
    regions = []
    for row, value in enumerate(raw):
        region = GEODE_REGIONS.get(re.sub(r"[^a-z]", "", str(value).lower()))
        if region is None:
            raise ValueError(f"{_where(data, row)}: region {value!r}; expected one of {list(WORLD_REGIONS)}")
        regions.append(region)
    regions = np.asarray(regions)
    z = image_embeddings(embedder, f"real/{name}", data.images, px)
    rows = zero_shot_subgroup_rows(name, z, data.class_names, labels, regions, REGION_TASKS,
                                   "geode/disparity_region", embedder, prompts)
    if "country" in data.examples:
        rows += _geoloc_rows("geode/country_geoloc_10shot", data.examples["key"], z, data.examples["country"],
                             shots, seed)
    rows += _geoloc_rows("geode/region_geoloc_10shot", data.examples["key"], z, regions, shots, seed)
    return rows


def _fairface(name, data, embedder, prompts, px, shots, seed):
    gender = _column(data, "gender", "perceived gender")
    race = _column(data, "race", "perceived race")
    for column, allowed in ((gender, real_sets.FAIRFACE_GENDERS), (race, real_sets.FAIRFACE_RACES)):
        bad = ~column.isin(allowed).to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{_where(data, row)}: {column.name} {column.iloc[row]!r}; expected one of {allowed}")
    is_female = (gender == "Female").to_numpy()
    if is_female.all() or not is_female.any():
        raise ValueError(f"{data.name}: every image's gender is {gender.iloc[0]!r}; "
                         f"association bias needs images of both {real_sets.FAIRFACE_GENDERS}")
    z = image_embeddings(embedder, f"real/{name}", data.images, px)
    gender_labels = gender.map({g: i for i, g in enumerate(real_sets.FAIRFACE_GENDERS)}).to_numpy()
    rows = [error_row("fairface/perceived_gender",
                      zero_shot(embedder, prompts, z, prompts.genders(real_sets.FAIRFACE_GENDERS), gender_labels))]
    race_labels = race.map({r: i for i, r in enumerate(real_sets.FAIRFACE_RACES)}).to_numpy()
    rows.append(error_row("fairface/perceived_race",
                          zero_shot(embedder, prompts, z, list(real_sets.FAIRFACE_RACES), race_labels)))
    return rows + association_bias_rows(z, is_female, embedder, prompts)


_PROTOCOLS = {
    "imagenet": _imagenet,
    "coco": _coco_flickr,
    "flickr": _coco_flickr,
    "xm3600": _xm3600,
    "xtd10": _multilingual,
    "xflickrco": _multilingual,
    "dollarstreet": _dollar_street,
    "geode": _geode,
    "gldv2": _gldv2,
    "fairface": _fairface,
}
