"""Coined names: a made-up word for a thing that has no real name in a language.

Where no source gives a concept's name in a language, the world does not fall back to the English
name (that would make every such concept an English word on every page, and a class group with poor
coverage an English task). It coins a word instead, the same rule for every concept and group: a few
units of that language's own real words, picked by a hash of (what is named, language). A unit is a
pair of adjacent letters (grapheme clusters, so that Hindi, Bengali, Telugu or Thai vowel signs stay on
their consonant), or a single cluster in scripts written in syllables or without spaces. Only letters
of the language's own script are units, so a Hindi coined word is all Devanagari even though a few
real Hindi names are Latin ("DVD").

One rule at rebuild time and at run time: tools/rebuild_world_data.py coins the concept names that
no source gives from the units of the real names it has just built, and `language_units` reads the
same real names back from world/data/concepts.json (every name whose language is not in the concept's
`names_coined`), so `coined_name` gives the committed coined names and coins new ones (landmarks) alike.
"""
from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable, Sequence
from functools import cache

from vlscale.world import vocab

# Unicode character-name prefixes of the letters of each script code in world/data/languages.json.
SCRIPT_LETTERS = {
    "Arab": ("ARABIC",), "Beng": ("BENGALI",), "Cyrl": ("CYRILLIC",), "Deva": ("DEVANAGARI",),
    "Grek": ("GREEK",), "Hans": ("CJK",), "Hebr": ("HEBREW",), "Jpan": ("HIRAGANA", "KATAKANA", "CJK"),
    "Kore": ("HANGUL",), "Latn": ("LATIN",), "Telu": ("TELUGU",), "Thai": ("THAI",),
}
CHARACTER_SCRIPTS = ("Hans", "Jpan", "Kore", "Thai")  # a unit is one cluster (syllabic or unspaced scripts)
UNITS_PER_WORD = (2, 3)  # a coined word has 2 or 3 units (cluster pairs, or clusters)
_JOINERS = ("\u200c", "\u200d")  # zero-width (non-)joiner: part of the cluster they sit in
_VIRAMA = 9  # canonical combining class of a virama, which joins its consonant to the next one


def _hash_ints(*parts: str, count: int) -> list[int]:
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=4 * count).digest()
    return [int.from_bytes(digest[4 * i: 4 * i + 4], "little") for i in range(count)]


def _is_letter_of(ch: str, script: str) -> bool:
    return ch.isalpha() and unicodedata.name(ch, "").startswith(SCRIPT_LETTERS[script])


def letter_runs(word: str, script: str) -> list[list[str]]:
    """The runs of adjacent grapheme clusters of `script`'s letters in `word` (lower case, NFC): a
    cluster is a letter with its combining marks and joiners, and across a virama, the next letter."""
    runs, run, joined = [], [], False
    for ch in unicodedata.normalize("NFC", word.lower()):
        if run and (unicodedata.category(ch).startswith("M") or ch in _JOINERS
                    or (joined and _is_letter_of(ch, script))):
            run[-1] += ch
            joined = ch in _JOINERS or unicodedata.combining(ch) == _VIRAMA
        elif _is_letter_of(ch, script):
            run.append(ch)
            joined = False
        else:
            if run:
                runs.append(run)
            run, joined = [], False
    if run:
        runs.append(run)
    return runs


def units_of(words: Iterable[str], script: str) -> tuple[str, ...]:
    """The sorted distinct units of a language's real words written in `script`: pairs of adjacent
    letter clusters, or single clusters for CHARACTER_SCRIPTS."""
    if script not in SCRIPT_LETTERS:
        raise ValueError(f"script {script!r} has no letter table; expected one of {sorted(SCRIPT_LETTERS)}")
    units = set()
    for phrase in words:
        for run in letter_runs(phrase, script):
            if script in CHARACTER_SCRIPTS:
                units.update(run)
            else:
                units.update(a + b for a, b in zip(run, run[1:]))
    return tuple(sorted(units))


def coin(key: str, language: str, units: Sequence[str]) -> str:
    """A made-up word for `key` in `language` from its `units` (units_of); deterministic."""
    if not units:
        raise ValueError(f"no letter units to coin a word in language {language!r}")
    h = _hash_ints(key, language, count=4)
    n = UNITS_PER_WORD[h[0] % len(UNITS_PER_WORD)]
    return "".join(units[x % len(units)] for x in h[1:1 + n])


def real_names(concepts: Iterable[dict], language: str) -> list[str]:
    """The real (not coined) names of `concepts` in `language`."""
    return [c["names"][language] for c in concepts
            if language in c["names"] and language not in c["names_coined"]]


@cache
def language_units(language: str) -> tuple[str, ...]:
    """Units of a language's real concept names in world/data/concepts.json."""
    scripts = {lang["code"]: lang["script"] for lang in vocab.load("languages")["languages"]}
    if language not in scripts:
        raise ValueError(f"unknown language {language!r}; world/data/languages.json has {sorted(scripts)}")
    return units_of(real_names(vocab.load("concepts")["concepts"], language), scripts[language])


def coined_name(key: str, language: str) -> str:
    """A coined name for `key` in `language`, from that language's real words in the world data."""
    return coin(key, language, language_units(language))
