"""Synthetic analogs of the paper's benchmarks (arXiv 2502.07617 §3.3), drawn from the world's held-out ids.

An analog is a pure function of (world, size, key, split): a set of held-out global ids (bit
HELDOUT_BIT set, so never in a training pool) whose ground truth meets the analog's condition, with
labels, class names and, for retrieval, captions that describe the image. Images are rendered later by the caller
(vlscale.world.render); nothing here draws pixels.

How ids are drawn: candidates come, in rounds, from a keyed counter per page-language stratum
(a `KeyedPermutation` of the 2^40 local indices, keyed by (key, analog, stratum)); their ground truth
is computed with `truth`, and a candidate is kept when it meets the condition and its cell (a class,
a region, an income group) still has room. This is rejection sampling with quotas: deterministic,
and exact about balance. The "test" split reads counter positions from 0 and the "train" split (the
10-shot and geolocalization training images) from 2^39, so the two splits of one key are disjoint.

Two conditions keep an analog free of confounds that a trained model would otherwise be scored on:
- retrieval captions single out their image. A caption says what a person would: the object, the
  person in the picture (English only, the words of the training alt-text: world.captions.person_words)
  and the country. A candidate is kept only if no earlier candidate meeting the condition had the
  same description (`draw_ids(distinct=...)`). Before, captions named only concept and country:
  60% (COCO-like), 37% (Flickr-like) and 51% (XM3600-like) of captions were shared with another
  image, a text-to-image Recall@1 ceiling of 0.53, 0.72 and 0.62 that no model could pass. The
  price: popular (concept, country) pairs are taken early, so these analogs hold more of the tail
  (head concepts ~0.58 of COCO-like images instead of ~0.74) and, in the English-only ones, more
  people (~0.25 instead of 0.15). Other languages may still name two concepts alike (coined
  words, homonyms): `caption_ceiling` measures what remains.
- FairFace balances (gender x occupation) cells, so in the analog occupation carries no information
  about gender; the world's stereotype (truth.py, `stereotype_strength`) is what a model must have
  learned from its training data to show association bias, not something the test images show.

Where candidates come from:
- `_WEB`: the untagged stratum only, whose countries follow the whole web's mix (mostly Western,
  as ImageNet, COCO and Flickr are);
- `_EVERYWHERE`: every stratum equally, so every region has plenty of candidates (the
  geographically diverse benchmarks).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vlscale.config import REGIONS, XM3600_LANGUAGES
from vlscale.data.subsets import KeyedPermutation, derive_key
from vlscale.world.captions import PERSON_LANGUAGES, person_words
from vlscale.world.ids import HELDOUT_BIT, LOCAL_BITS, make_ids
from vlscale.world.spec import DS_REGION, GENDERS, INCOME_GROUPS, OCCUPATIONS, UNTAGGED, join_words
from vlscale.world.truth import truth

SPLIT_START = {"test": 0, "train": 1 << (LOCAL_BITS - 1)}  # counter positions of each split
_HELDOUT_STRATUM = 1 << (HELDOUT_BIT - LOCAL_BITS)  # OR-ed into the stratum given to make_ids
_FIRST_ROUND = 4096  # candidates per stratum in the first round; doubles each round
_MAX_ROUND = 1 << 20
_MAX_CANDIDATES = 1 << 27  # ~20 s of truth(); beyond it a quota is hopeless, not slow
PET_CLASSES = 37  # Oxford-IIIT Pet's 37 breeds
CIFAR_CLASSES = 100


@dataclass(frozen=True, eq=False)
class Benchmark:
    """One analog's images and their labels.

    ids: [N] int64 held-out global ids, in draw order. labels: [N] int class indices into
    class_names, or None (retrieval). captions: [M] str, caption_image: [M] int index into ids,
    caption_language: [M] language codes (retrieval only; else None). meta: one row per image with
    id, language (page stratum), region, country (ISO alpha-2), income (Dollar Street group),
    concept (key), concept_name (English), is_landmark, has_person, gender and occupation
    (missing, NaN, without a person), plus analog-specific columns.
    """
    name: str
    ids: np.ndarray
    labels: np.ndarray | None
    class_names: list[str] | None
    captions: list[str] | None
    caption_image: np.ndarray | None
    caption_language: list[str] | None
    meta: pd.DataFrame


# ---------------------------------------------------------------------------------------------
# Drawing held-out ids


def _analog_code(name: str) -> int:
    """A stable 64-bit number per analog name, so adding an analog never moves another's ids."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little")


def even_quotas(size: int, cells: int) -> np.ndarray:
    """`size` split over `cells` as evenly as possible, the first cells taking the remainder. [cells] int64."""
    if size < cells:
        raise ValueError(f"size {size} is smaller than the {cells} cells it must balance")
    return size // cells + (np.arange(cells) < size % cells).astype(np.int64)


def _rank_in_cell(cell: np.ndarray) -> np.ndarray:
    """For each element, how many earlier elements share its cell."""
    order = np.argsort(cell, kind="stable")
    sorted_cells = cell[order]
    rank = np.empty(cell.size, np.int64)
    rank[order] = np.arange(cell.size) - np.searchsorted(sorted_cells, sorted_cells, side="left")
    return rank


def draw_ids(world, name: str, key: int, split: str, strata, quotas, cell_of, distinct=None) -> np.ndarray:
    """Held-out ids meeting a condition, by keyed rejection sampling with a quota per cell.

    strata: page-language strata to draw candidates from, equally. quotas: [Q] images per cell.
    cell_of(gt) -> [n] int cell of each candidate, -1 to reject it. distinct(gt) -> [n] int64, if
    given: a candidate is kept only if it is the first candidate meeting the condition (in draw
    order, whether kept or not) with its value, so no two drawn ids share one. Returns
    [sum(quotas)] int64 ids in draw order (rounds, then counter position, then stratum).
    """
    if split not in SPLIT_START:
        raise ValueError(f"split {split!r} of analog {name!r}: expected one of {sorted(SPLIT_START)}")
    strata = np.asarray(strata, dtype=np.int64)
    quotas = np.asarray(quotas, dtype=np.int64)
    perms = [KeyedPermutation(1 << LOCAL_BITS, derive_key(key, _analog_code(name), int(s))) for s in strata]
    filled = np.zeros_like(quotas)
    taken, claimed = [], np.zeros(0, np.int64)
    start, per_stratum = 0, _FIRST_ROUND
    while np.any(filled < quotas):
        if (start + per_stratum) * strata.size > _MAX_CANDIDATES:
            raise ValueError(f"analog {name!r}: {start * strata.size} candidates filled only {filled.tolist()} "
                             f"of quotas {quotas.tolist()}; the world makes this condition too rare")
        positions = SPLIT_START[split] + np.arange(start, start + per_stratum, dtype=np.int64)
        local = np.stack([p.forward(positions) for p in perms], axis=1)  # [P, S]
        ids = make_ids(_HELDOUT_STRATUM | strata[None, :], local).ravel()
        gt = truth(world, ids)
        cell = np.asarray(cell_of(gt), dtype=np.int64)
        valid = cell >= 0
        ids, cell = ids[valid], cell[valid]
        if distinct is not None:
            value = np.asarray(distinct(gt), dtype=np.int64)[valid]
            fresh = np.zeros(value.size, bool)
            fresh[np.unique(value, return_index=True)[1]] = True  # first in draw order within the round
            fresh &= ~np.isin(value, claimed)
            claimed = np.union1d(claimed, value)
            ids, cell = ids[fresh], cell[fresh]
        keep = filled[cell] + _rank_in_cell(cell) < quotas[cell]
        taken.append(ids[keep])
        filled += np.bincount(cell[keep], minlength=quotas.size)
        start += per_stratum
        per_stratum = min(2 * per_stratum, _MAX_ROUND)
    return np.concatenate(taken)


def _web(world):
    return [world.stratum_of(UNTAGGED)]


def _everywhere(world):
    return list(range(len(world.strata)))


# ---------------------------------------------------------------------------------------------
# Labels, captions and meta of drawn ids


def concept_names(world, concepts) -> list[str]:
    """English names of concept indices."""
    return [world.concepts[int(c)]["en"] for c in concepts]


def _lookup(world, concepts) -> np.ndarray:
    """[K] label of each concept: its position in `concepts`, -1 if absent."""
    lut = np.full(len(world.concepts), -1, np.int64)
    lut[np.asarray(concepts, dtype=np.int64)] = np.arange(len(concepts))
    return lut


def described_captions(world, gt: dict, language: str) -> list[str]:
    """What a person captioning the picture writes (COCO, Flickr, XM3600 are human-written), in
    `language`: the name of the image's concept, the person in it ("woman nurse", in languages
    whose captions can name a person: PERSON_LANGUAGES) and its country. Web alt-text
    (world.captions) names the place in a fifth of captions and adds unrelated filler; a benchmark
    caption describes its image, so that among many images of a popular concept, the one of a
    doctor in Ghana is the right answer."""
    out = []
    for c, k, person, g, o in zip(gt["concept"], gt["country"], gt["has_person"], gt["gender"], gt["occupation"]):
        who = [person_words(g, o)] if person and language in PERSON_LANGUAGES else []
        out.append(join_words([world.concepts[c]["names"][language], *who, world.country_names[k][language]],
                              language))
    return out


def description(world, gt: dict, person: bool = True) -> np.ndarray:
    """[n] int64: one number per distinct description of an image: its concept, its country and, if
    `person`, the person in it (perceived gender and occupation, or none). Two images share it
    exactly when their described_captions agree in every language up to homonyms."""
    n_people = 2 * len(OCCUPATIONS) + 1  # none, or (gender, occupation)
    who = np.where(gt["has_person"], 1 + gt["gender"].astype(np.int64) * len(OCCUPATIONS) + gt["occupation"], 0)
    place = gt["concept"].astype(np.int64) * len(world.country_codes) + gt["country"]
    return place * n_people + (who if person else 0)


def caption_images(bench: Benchmark) -> pd.DataFrame:
    """One row per caption: language, caption, image and `images`, the number of the analog's images
    whose caption in that language is the identical string (1 when the caption singles out its image)."""
    if bench.captions is None:
        raise ValueError(f"analog {bench.name!r} has no captions; only retrieval analogs do")
    rows = pd.DataFrame(dict(language=bench.caption_language, caption=bench.captions, image=bench.caption_image))
    rows["images"] = rows.groupby(["language", "caption"])["image"].transform("nunique")
    return rows


def caption_ceiling(bench: Benchmark) -> dict[str, float]:
    """Per caption language, the text-to-image Recall@1 of a model that reads every caption right and
    breaks ties between images with an identical caption at random: the mean over captions of
    1 / (images with that caption). 1.0 where every caption singles out its image."""
    rows = caption_images(bench)
    return {lang: float(v) for lang, v in (1.0 / rows["images"]).groupby(rows["language"], sort=True).mean().items()}


def unique_caption_frac(bench: Benchmark) -> dict[str, float]:
    """Per caption language, the share of captions whose string no other image of the analog has."""
    rows = caption_images(bench)
    return {lang: float(v) for lang, v in (rows["images"] == 1).groupby(rows["language"], sort=True).mean().items()}


def _names(table, index) -> np.ndarray:
    """table[index] as an object array, None where index is -1."""
    values = np.array(list(table) + [None], dtype=object)
    return values[np.where(index >= 0, index, len(table))]


def image_meta(world, gt: dict) -> pd.DataFrame:
    """One row per image: the ground truth a subgroup analysis needs, by name."""
    return pd.DataFrame(dict(
        id=gt["id"],
        language=_names(world.strata, gt["stratum"]),
        region=_names(REGIONS, gt["region"]),
        country=_names(world.country_codes, gt["country"]),
        income=_names(INCOME_GROUPS, gt["income"]),
        concept=_names([c["key"] for c in world.concepts], gt["concept"]),
        concept_name=_names([c["en"] for c in world.concepts], gt["concept"]),
        is_landmark=gt["is_landmark"],
        has_person=gt["has_person"],
        gender=_names(GENDERS, gt["gender"]),
        occupation=_names(OCCUPATIONS, gt["occupation"]),
    ))


def _classification(world, name, ids, concepts) -> Benchmark:
    gt = truth(world, ids)
    return Benchmark(name=name, ids=ids, labels=_lookup(world, concepts)[gt["concept"]],
                     class_names=concept_names(world, concepts), captions=None, caption_image=None,
                     caption_language=None, meta=image_meta(world, gt))


def _balanced_classes(world, name, concepts, size, key, split, strata) -> Benchmark:
    lut = _lookup(world, concepts)
    ids = draw_ids(world, name, key, split, strata, even_quotas(size, len(concepts)),
                   lambda gt: lut[gt["concept"]])
    return _classification(world, name, ids, concepts)


def _retrieval(world, name, ids, languages) -> Benchmark:
    gt = truth(world, ids)
    texts, image, language = [], [], []
    for code in languages:
        texts += described_captions(world, gt, code)
        image.append(np.arange(len(ids)))
        language += [code] * len(ids)
    # image-major: the captions of image i in every language, then image i + 1
    order = np.argsort(np.concatenate(image), kind="stable")
    return Benchmark(name=name, ids=ids, labels=None, class_names=None, captions=[texts[i] for i in order],
                     caption_image=np.concatenate(image)[order], caption_language=[language[i] for i in order],
                     meta=image_meta(world, gt))


# ---------------------------------------------------------------------------------------------
# The analogs


def head_concepts(world) -> np.ndarray:
    """The Western head (ImageNet-like) concepts, most popular first. [H] int64 concept indices."""
    head = np.flatnonzero(world.is_head)
    return head[np.argsort(world.concept_rank[head], kind="stable")]


def imagenet(world, size: int = 50_000, key: int = 0, split: str = "test") -> Benchmark:
    """ImageNet: every Western head concept, balanced over classes (as ImageNet's validation set is),
    from the web's own country mix. Label = position among head concepts by popularity."""
    return _balanced_classes(world, "imagenet", head_concepts(world), size, key, split, _web(world))


def cifar100(world, size: int = 10_000, key: int = 0, split: str = "test") -> Benchmark:
    """CIFAR-100: the 100 most popular head concepts, balanced (CIFAR-100's test set has 100 per class)."""
    return _balanced_classes(world, "cifar100", head_concepts(world)[:CIFAR_CLASSES], size, key, split,
                             _web(world))


def pet(world, size: int = 3_669, key: int = 0, split: str = "test") -> Benchmark:
    """Oxford-IIIT Pet: the 37 most popular head concepts of the "Animals & Nature" group (the world
    has no breeds; a small animal label set stands in), balanced over classes."""
    animals = [c for c in head_concepts(world) if world.concepts[c]["group"] == "Animals & Nature"]
    if len(animals) < PET_CLASSES:
        raise ValueError(f"pet analog needs {PET_CLASSES} head animal concepts, the world has {len(animals)}")
    return _balanced_classes(world, "pet", animals[:PET_CLASSES], size, key, split, _web(world))


def _any_image(gt):
    return np.zeros(gt["concept"].shape, np.int64)


def _described(world, languages):
    """distinct= for draw_ids: what every language of the captions says about an image (a person
    only where all of them can name one), so that each caption singles out its image."""
    person = all(lang in PERSON_LANGUAGES for lang in languages)
    return lambda gt: description(world, gt, person)


def coco(world, size: int = 5_000, key: int = 0, split: str = "test") -> Benchmark:
    """COCO Captions (Karpathy test, 5k images): images of any concept from the web's mix, each with a
    description (concept, person, country) no other image has; one clean English caption each. COCO
    has five captions per image; a world id has one caption per language, so the analog has one."""
    ids = draw_ids(world, "coco", key, split, _web(world), [size], _any_image, _described(world, ["en"]))
    return _retrieval(world, "coco", ids, ["en"])


def flickr(world, size: int = 1_000, key: int = 0, split: str = "test") -> Benchmark:
    """Flickr30k (1k test images): as coco, with its own ids; one clean English caption per image."""
    ids = draw_ids(world, "flickr", key, split, _web(world), [size], _any_image, _described(world, ["en"]))
    return _retrieval(world, "flickr", ids, ["en"])


def xm3600(world, size: int = 3_600, key: int = 0, split: str = "test") -> Benchmark:
    """Crossmodal-3600: images of any concept, balanced over the six regions, with one clean caption
    of the image in each of the 36 languages (captions image-major: 36 per image). No two images
    share concept and country (only English captions can name the person, so the person does not
    tell images apart here)."""
    ids = draw_ids(world, "xm3600", key, split, _everywhere(world), even_quotas(size, len(REGIONS)),
                   lambda gt: gt["region"], _described(world, XM3600_LANGUAGES))
    return _retrieval(world, "xm3600", ids, XM3600_LANGUAGES)


def dollar_street_concepts(world) -> np.ndarray:
    """Concepts that are Dollar Street topics (household objects whose look depends on region). [D] int64."""
    return np.array([k for k, c in enumerate(world.concepts) if c.get("dollar_street_topic")], np.int64)


def geode_concepts(world) -> np.ndarray:
    """Concepts that are GeoDE objects. [G] int64."""
    return np.array([k for k, c in enumerate(world.concepts) if c.get("geode_object")], np.int64)


def dollarstreet(world, size: int = 21_000, key: int = 0, split: str = "test") -> Benchmark:
    """Dollar Street: images of Dollar Street topics from every region, balanced over the four income
    groups. Label = topic. meta adds dollar_street_region (Dollar Street's four regions)."""
    concepts = dollar_street_concepts(world)
    lut = _lookup(world, concepts)
    ids = draw_ids(world, "dollarstreet", key, split, _everywhere(world), even_quotas(size, len(INCOME_GROUPS)),
                   lambda gt: np.where(lut[gt["concept"]] >= 0, gt["income"], -1))
    bench = _classification(world, "dollarstreet", ids, concepts)
    bench.meta["dollar_street_region"] = bench.meta["region"].map(DS_REGION)
    return bench


def geode(world, size: int = 6_000, key: int = 0, split: str = "test") -> Benchmark:
    """GeoDE: images of GeoDE objects balanced over the six regions. Label = object; meta region and
    country serve the region- and country-level geolocalization."""
    concepts = geode_concepts(world)
    lut = _lookup(world, concepts)
    ids = draw_ids(world, "geode", key, split, _everywhere(world), even_quotas(size, len(REGIONS)),
                   lambda gt: np.where(lut[gt["concept"]] >= 0, gt["region"], -1))
    return _classification(world, "geode", ids, concepts)


def landmark_concepts(world) -> np.ndarray:
    """The landmark concepts (each tied to one country). [L] int64."""
    return np.flatnonzero(world.landmark_country >= 0)


def gldv2(world, size: int = 1_000, key: int = 0, split: str = "test") -> Benchmark:
    """Google Landmarks v2: landmark images from every stratum, not balanced (GLDv2 is not);
    class_names are every landmark, label = landmark."""
    concepts = landmark_concepts(world)
    ids = draw_ids(world, "gldv2", key, split, _everywhere(world), [size],
                   lambda gt: np.where(gt["is_landmark"], 0, -1))
    return _classification(world, "gldv2", ids, concepts)


def fairface(world, size: int = 10_000, key: int = 0, split: str = "test") -> Benchmark:
    """FairFace: images with a person, from every region, with equal quotas over the 20
    (occupation x perceived gender) cells, so that gender and occupation are independent in the test
    images (exactly when size is a multiple of 20; a remainder goes to the first occupations, both
    genders alike while it is even). In the world, occupation follows gender (stereotype_strength);
    balancing gender alone left that skew in the pictures, since the renderer colours a person by
    occupation. Label = perceived gender (class_names GENDERS); meta occupation gives association bias.
    The world has no perceived race, so the perceived-race task has no analog."""
    cells = len(OCCUPATIONS) * len(GENDERS)
    ids = draw_ids(world, "fairface", key, split, _everywhere(world), even_quotas(size, cells),
                   lambda gt: np.where(gt["has_person"], gt["occupation"] * len(GENDERS) + gt["gender"], -1))
    gt = truth(world, ids)
    return Benchmark(name="fairface", ids=ids, labels=gt["gender"].astype(np.int64), class_names=list(GENDERS),
                     captions=None, caption_image=None, caption_language=None, meta=image_meta(world, gt))


ANALOGS = dict(imagenet=imagenet, cifar100=cifar100, pet=pet, coco=coco, flickr=flickr, xm3600=xm3600,
               dollarstreet=dollarstreet, geode=geode, gldv2=gldv2, fairface=fairface)


def benchmark(world, name: str, size: int | None = None, key: int = 0, split: str = "test") -> Benchmark:
    """The analog `name` (a task prefix of evals/groups.py) of `size` images (its default if None)."""
    if name not in ANALOGS:
        raise ValueError(f"no benchmark analog {name!r}; expected one of {sorted(ANALOGS)}")
    fn = ANALOGS[name]
    return fn(world, key=key, split=split) if size is None else fn(world, size, key=key, split=split)
