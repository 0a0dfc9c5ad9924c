"""Alt-text: the caption of each example, in its page's language, from real words.

A clean caption mixes the concept's name (or one of its CLDR keywords), the country's name and a
real Tatoeba sentence as filler, in a per-example order. Noise, drawn in truth.py with rates that
differ by region and by the language's resource group: misaligned captions (another concept),
vague captions (filler and place only), English captions on non-English pages. Person words
(perceived gender, occupation: `person_words`, "woman nurse") appear in English captions only: CLDR
has no such words for us. The benchmark analogs' captions (evals/analogs.py) use the same words.
"""
from __future__ import annotations

import numpy as np

from vlscale.world import vocab
from vlscale.world.hashing import hash32, id_words, uniform
from vlscale.world.spec import GENDER_WORDS, GENDERS, OCCUPATIONS, join_words
from vlscale.world.truth import truth

_S_KEYWORD, _S_PLACE, _S_FILLER, _S_PICK, _S_ORDER = 101, 102, 103, 104, 105
_P_KEYWORD, _P_FILLER = 0.3, 0.6  # a keyword instead of the name; a filler sentence
PERSON_LANGUAGES = ("en",)  # the languages whose captions can name a person


def person_words(gender: int, occupation: int) -> str:
    """How an English caption names a person: gender word and occupation ("woman nurse"), from the
    ground truth's gender (0 female, 1 male) and occupation (index into OCCUPATIONS)."""
    return f"{GENDER_WORDS[GENDERS[gender]]} {OCCUPATIONS[occupation]}"


def captions(world, ids, gt: dict | None = None) -> list[str]:
    """The caption of every id (a list of str, in the order of `ids`, a 1-D int64 array)."""
    ids = np.asarray(ids, dtype=np.int64).ravel()
    gt = truth(world, ids) if gt is None else gt
    hi, lo = id_words(ids)
    u = {s: uniform(np, hash32(np, world.seed, s, hi, lo)) for s in (_S_KEYWORD, _S_PLACE, _S_FILLER)}
    pick = hash32(np, world.seed, _S_PICK, hi, lo)
    order = hash32(np, world.seed, _S_ORDER, hi, lo)
    filler = vocab.load("filler")["sentences"]
    place_share = world.params.place_share
    out = []
    for i in range(len(ids)):
        lang = world.strata[gt["caption_language"][i]]
        concept = world.concepts[gt["caption_concept"][i]]
        country = world.country_names[gt["country"][i]][lang]
        sentences = filler.get(lang, ())
        words = []
        if gt["caption_kind"][i] != 2:  # vague captions name nothing in the picture
            keywords = concept["keywords"].get(lang) or ()
            use_kw = keywords and u[_S_KEYWORD][i] < _P_KEYWORD
            words.append(keywords[pick[i] % len(keywords)] if use_kw else concept["names"][lang])
        if u[_S_PLACE][i] < place_share or not words:
            words.append(country)
        if sentences and (u[_S_FILLER][i] < _P_FILLER or gt["caption_kind"][i] == 2):
            words.append(sentences[(pick[i] >> 8) % len(sentences)])
        if lang in PERSON_LANGUAGES and gt["has_person"][i]:
            words.append(person_words(gt["gender"][i], gt["occupation"][i]))
        rot = int(order[i] % len(words))
        words = words[rot:] + words[:rot]
        out.append(join_words(words, lang))
    return out
