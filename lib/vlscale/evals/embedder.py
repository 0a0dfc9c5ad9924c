"""What a checkpoint says about images and texts: embeddings computed once, and the prompts the
zero-shot protocols embed.

`Embedder` wraps a model's image and text towers: fixed-size batches (one compiled shape), texts
remembered so that a prompt or caption several benchmarks share is embedded once, images remembered by
benchmark. `Prompts` holds the templates around class names and the words for the genders and
occupations of the bias measures.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from vlscale import siglip
from vlscale.evals import protocols
from vlscale.world.spec import GENDER_WORDS


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

    def fresh(self) -> Embedder:
        """An Embedder of the same model with nothing remembered (to embed a stream shard by shard)."""
        return Embedder(self._embed_images, self._embed_texts, self._encode, self.batch_size)

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

    def has_images(self, key: str) -> bool:
        return key in self._images

    def remember(self, key: str, z: np.ndarray):
        """Hold `z` as the image embeddings of `key` (computed elsewhere, e.g. without the unreadable images)."""
        self._images[key] = np.asarray(z, np.float32)

    def forget(self, key: str):
        self._images.pop(key, None)


def _world_gender_words() -> dict[str, str]:
    return dict(GENDER_WORDS)  # the words the synthetic captions use


@dataclasses.dataclass
class Prompts:
    """The texts the zero-shot protocols use: templates around a class name (per benchmark source:
    the synthetic alt-text names things bare, real sets take CLIP-style prompts), and the words for the
    genders of the bias measures (by default the world's own, world/spec.GENDER_WORDS)."""

    templates: Sequence[str] = ("{}",)
    gender_words: dict[str, str] = dataclasses.field(default_factory=_world_gender_words)

    @property
    def male(self) -> str:
        return self.gender_words["male"]

    @property
    def female(self) -> str:
        return self.gender_words["female"]

    def classes(self, embedder: Embedder, names: Sequence[str]) -> np.ndarray:
        return protocols.class_embeddings(embedder.texts, list(names), list(self.templates))

    def genders(self, labels: Sequence[str]) -> list[str]:
        """The prompt word of each gender label ("female"/"Female" -> the female word, "male" -> male)."""
        return [self.gender_words[g.lower()] for g in labels]


def checkpoint_embedder(checkpoint: Path, model_config: dict, tokenizer, px: int, max_len: int,
                        batch_size: int) -> Embedder:
    """An Embedder over the SigLIP checkpoint at `checkpoint` (an Orbax cool-down directory)."""
    model, params = siglip.load(checkpoint, model_config, image_size_px=px, text_len=max_len)
    return Embedder(lambda x: siglip.embed_images(model, params, x), lambda t: siglip.embed_texts(model, params, t),
                    lambda texts: tokenizer.encode(texts, max_len), batch_size)
