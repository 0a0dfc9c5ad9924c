"""Embeddings that know the answer, and embeddings that know nothing: the guard on every benchmark.

A benchmark that hands a model the answer, or denies it, shows up here before any model is trained:

- `OracleEmbedder` embeds an analog's images from their ground truth (concept, country, region,
  perceived gender, occupation, and the image's description) and each text by what it means (a class
  name by its concept, "woman" by its gender, a caption by the descriptions of the images it was
  written for). Every protocol run on it must reach ~0% error, or the benchmark's stated ceiling
  where two images share a caption (analogs.caption_ceiling). It knows what the task asks: its images
  carry the `blocks` of truth a task reads (the concept for classification, the country and region
  for geolocalisation, the description for retrieval), since a 10-shot probe given every block treats
  the others as noise. Blind to gender (every block but "gender"), it must show no representation
  bias and no association bias: a bias measured on it would be drawn into the benchmark, not learned.
- `RandomEmbedder` embeds every image and text as a random unit vector (seeded by the image's id or
  the text): every protocol must give chance.

Both are Embedders (evals/embedder.py), so the same code paths that evaluate a checkpoint run on them.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from vlscale.config import OCCUPATION_PAIRS
from vlscale.evals import analogs
from vlscale.evals.embedder import Embedder
from vlscale.evals.protocols import canonicalize
from vlscale.world.spec import GENDER_WORDS, GENDERS
from vlscale.world.truth import truth

DESCRIPTION_DIM = 512  # random unit vectors per description: distinct ones are ~orthogonal
BLOCKS = ("concept", "country", "region", "gender", "occupation", "description")


def _seeded_unit(text: str, dim: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
    v = np.random.default_rng(seed).normal(size=dim)
    return v / np.linalg.norm(v)


def _split_key(key: str) -> tuple[str, str]:
    name, _, split = key.partition("/")
    return name, split or "test"


class OracleEmbedder(Embedder):
    """Ground-truth embeddings of an AnalogSuite's images and of every text its protocols embed.

    suite: the analog_eval.AnalogSuite whose benchmarks are evaluated (its captions define what each
    caption means). blocks: the parts of the truth the image embeddings carry (default all of BLOCKS).
    """

    def __init__(self, suite, blocks: Sequence[str] = BLOCKS):
        unknown = set(blocks) - set(BLOCKS)
        if unknown or not blocks:
            raise ValueError(f"oracle blocks {list(blocks)}; expected some of {BLOCKS}")
        super().__init__(self._no_pixels, self._no_pixels, self._no_pixels)
        self.suite, self.world, self.blocks = suite, suite.world, tuple(blocks)
        w = self.world
        self.sizes = dict(concept=len(w.concepts), country=len(w.country_codes), region=len(w.regions),
                          gender=len(GENDERS), occupation=2 * len(OCCUPATION_PAIRS), description=DESCRIPTION_DIM)
        self.offset = dict(zip(BLOCKS, np.cumsum([0] + [self.sizes[b] for b in BLOCKS[:-1]])))
        self.dim = sum(self.sizes.values())
        self._meaning = self._text_meanings()

    @staticmethod
    def _no_pixels(_):
        raise RuntimeError("the oracle embeds from ground truth, never from pixels or tokens")

    def _one_hot(self, block: str, index) -> np.ndarray:
        index = np.asarray(index)
        z = np.zeros((index.size, self.dim))
        ok = index >= 0
        z[np.flatnonzero(ok), self.offset[block] + index[ok]] = 1.0
        return z

    def _description(self, codes) -> np.ndarray:
        z = np.zeros((len(codes), self.dim))
        off = self.offset["description"]
        for i, code in enumerate(codes):
            z[i, off:off + DESCRIPTION_DIM] = _seeded_unit(f"description:{int(code)}", DESCRIPTION_DIM)
        return z

    def _text_meanings(self) -> dict[str, np.ndarray]:
        """Every text the protocols may embed -> the mean of what it can mean (a shared string means
        each of its senses alike, so the oracle cannot tell them apart either)."""
        senses: dict[str, list[np.ndarray]] = {}
        for k, c in enumerate(self.world.concepts):
            senses.setdefault(canonicalize(c["en"]), []).append(self._one_hot("concept", [k])[0])
        for g, word in GENDER_WORDS.items():
            senses.setdefault(canonicalize(word), []).append(self._one_hot("gender", [GENDERS.index(g)])[0])
        occupations = [o for pair in OCCUPATION_PAIRS for o in pair]
        for o, word in enumerate(occupations):
            senses.setdefault(canonicalize(word), []).append(self._one_hot("occupation", [o])[0])
        for bench in self.suite.test.values():
            if bench.captions is None:
                continue
            z = self._description(analogs.description(self.world, truth(self.world, bench.ids)))
            for caption, image in zip(bench.captions, bench.caption_image):
                senses.setdefault(caption, []).append(z[image])
        return {t: np.mean(v, axis=0) for t, v in senses.items()}

    def texts(self, texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in texts if t not in self._meaning]
        if missing:
            raise KeyError(f"the oracle does not know what {missing[:3]} mean; every prompt of an analog must "
                           f"be a class name, a gender or occupation word, or one of its captions")
        z = np.stack([self._meaning[t] for t in texts])
        return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)

    def images(self, key: str, make_batch=None, count: int | None = None) -> np.ndarray:
        name, split = _split_key(key)
        bench = (self.suite.test if split == "test" else self.suite.train)[name]
        gt = truth(self.world, bench.ids)
        parts = dict(concept=self._one_hot("concept", gt["concept"]), country=self._one_hot("country", gt["country"]),
                     region=self._one_hot("region", gt["region"]), gender=self._one_hot("gender", gt["gender"]),
                     occupation=self._one_hot("occupation", gt["occupation"]),
                     description=self._description(analogs.description(self.world, gt)))
        z = sum(parts[b] for b in self.blocks)
        return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)


class RandomEmbedder(Embedder):
    """A random unit vector per image (seeded by its id) and per text (seeded by the string): chance."""

    def __init__(self, suite, dim: int = 64):
        super().__init__(OracleEmbedder._no_pixels, OracleEmbedder._no_pixels, OracleEmbedder._no_pixels)
        self.suite, self.dim = suite, dim

    def texts(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([_seeded_unit(f"text:{t}", self.dim) for t in texts])

    def images(self, key: str, make_batch=None, count: int | None = None) -> np.ndarray:
        name, split = _split_key(key)
        bench = (self.suite.test if split == "test" else self.suite.train)[name]
        return np.stack([_seeded_unit(f"image:{int(i)}", self.dim) for i in bench.ids])
