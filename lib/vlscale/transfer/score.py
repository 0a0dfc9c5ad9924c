"""Grading a transfer model's answers: exact match for questions, CIDEr (pycocoevalcap's CIDEr-D) for captions.

Text is normalised as big_vision's caption evaluators have pycocoevalcap's PTB tokenizer do it (lower case,
punctuation removed, split into words), in Python, so no Java is needed; a language written without spaces (ja, zh)
is split into characters instead, so that its n-grams mean what they mean for the others. CIDEr is reported as
pycocoevalcap computes it, times 100 (the convention of the paper's Table 12). Its document frequencies come from
the references of the images scored together, so a language's captions are scored as one corpus.
"""
from __future__ import annotations

import re
import unicodedata

import numpy as np
from pycocoevalcap.cider.cider import Cider

from vlscale.world.spec import WRITTEN_WITHOUT_SPACES


def normalise(text: str, language: str = "en") -> str:
    """Lower case, punctuation (Unicode category P*) removed, whitespace collapsed; characters separated by
    spaces for a language written without spaces."""
    text = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text.lower())
    if language in WRITTEN_WITHOUT_SPACES:
        text = " ".join(ch for ch in text if not ch.isspace())
    return re.sub(r"\s+", " ", text).strip()


def exact_match(predictions: list[str], references: list[str], languages: list[str]) -> np.ndarray:
    """[N] 1.0 where the normalised prediction equals the normalised reference, else 0.0."""
    return np.array([float(normalise(p, lang) == normalise(r, lang))
                     for p, r, lang in zip(predictions, references, languages, strict=True)])


def cider(predictions: list[str], references: list[list[str]], language: str = "en") -> np.ndarray:
    """[N] CIDEr-D (x 100) of each prediction against its image's references, the corpus being these N images
    (pycocoevalcap.cider; its corpus score is the mean). Needs two or more images: with one, every n-gram's document
    frequency is the corpus size and every score is 0."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} reference sets")
    if len(predictions) < 2:
        raise ValueError("CIDEr needs at least two images: its weights come from document frequencies over images")
    gts = {i: [normalise(r, language) for r in refs] for i, refs in enumerate(references)}
    res = {i: [normalise(p, language)] for i, p in enumerate(predictions)}
    _, per_image = Cider().compute_score(gts, res)
    return 100.0 * np.asarray(per_image, dtype=np.float64)
