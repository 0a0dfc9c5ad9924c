"""Coined names: a made-up word for a thing that has no real name in a language.

Where no source gives a concept's name in a language, the world does not fall back to the English
name (that would make every such concept an English word on every page, and a class group with poor
coverage an English task). It coins a word instead, the same rule for every concept and group: a few
letter pairs (or, for scripts written without spaces, single characters) of that language's own real
words, picked by a hash of (what is named, language). A coined name is a pure function of its inputs,
is written in the language's script and is learned from that language's pages, as a real name is.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from functools import lru_cache

from vlscale.world import vocab

CHARACTER_SCRIPTS = ("ja", "zh", "ko", "th")  # a unit is one character (syllabic or unspaced scripts)
UNITS_PER_WORD = (2, 3)  # a coined word has 2 or 3 units (letter pairs, or characters)


def _hash_ints(*parts: str, count: int) -> list[int]:
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=4 * count).digest()
    return [int.from_bytes(digest[4 * i: 4 * i + 4], "little") for i in range(count)]


def units_of(words: Iterable[str], language: str) -> tuple[str, ...]:
    """The sorted distinct units of a language's real words: letter pairs inside each word (letters
    only), or single letters for CHARACTER_SCRIPTS."""
    units = set()
    for phrase in words:
        for word in phrase.split():
            letters = [ch for ch in word if ch.isalpha()]
            if language in CHARACTER_SCRIPTS:
                units.update(letters)
            else:
                units.update(a + b for a, b in zip(letters, letters[1:]))
    return tuple(sorted(units))


def coin(key: str, language: str, units: Sequence[str]) -> str:
    """A made-up word for `key` in `language` from its `units` (units_of); deterministic."""
    if not units:
        raise ValueError(f"no letter units to coin a word in language {language!r}")
    h = _hash_ints(key, language, count=4)
    n = UNITS_PER_WORD[h[0] % len(UNITS_PER_WORD)]
    return "".join(units[x % len(units)] for x in h[1:1 + n])


@lru_cache(maxsize=None)
def language_units(language: str) -> tuple[str, ...]:
    """Units of a language's real (not coined) concept names in world/data/concepts.json."""
    concepts = vocab.load("concepts")["concepts"]
    real = [c["names"][language] for c in concepts
            if language in c["names"] and language not in c.get("names_coined", c.get("names_fallback", ()))]
    return units_of(real, language)


def coined_name(key: str, language: str) -> str:
    """A coined name for `key` in `language`, from that language's real words in the world data."""
    return coin(key, language, language_units(language))
