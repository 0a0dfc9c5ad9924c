"""Curation that balances concepts, in MetaCLIP's manner (Xu et al. 2024; per-language thresholds as MetaCLIP 2
sets them), with the exact kept count k every vlscale filter arm has.

MetaCLIP matches each caption against a list of entries (here: concept names, per language), counts each entry's
matches over the pool, and keeps a pair when, for any entry it matches, a uniform draw falls below t / count (a
tail entry, count <= t, always keeps its pairs; a head entry keeps about t). With one keyed uniform u per (pair,
entry), pair i is kept at threshold t exactly when a_i = min over its entries of u_ie * count_e is below t, so the
kept sets grow with t, nested, and "the t that keeps k pairs" is the k smallest a_i (`balanced_scores` gives -a, a
top-k score like every other arm's). MetaCLIP 2 gives each language its own threshold: the one whose tail share
(the share of the language's matches that fall in entries rarer than t) is English's at t_en. Those thresholds rise
with t_en, so the kept sets are nested again; `per_language_selection` finds the t_en that keeps k and breaks the
tie at that step with the keyed draw.

Matching is word-bounded (an entry is found where it stands between spaces or punctuation) and case-insensitive;
languages written without spaces (ja, zh) match by substring, as MetaCLIP 2 does for such scripts. Every entry
a caption contains counts, nested ones too ("bear" in "teddy bear").
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from vlscale.data.subsets import _mix64, as_key, derive_key
from vlscale.filtering import select
from vlscale.world.spec import WRITTEN_WITHOUT_SPACES

BALANCED_KEY_PART = 7  # filter.key's part for the (pair, entry) draws (select.py and arms.py use others)


def _spaced(text: str) -> str:
    """Lower case, punctuation as spaces, one space between words and one at either end."""
    text = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text.lower())
    return " " + re.sub(r"\s+", " ", text).strip() + " "


@dataclass(frozen=True)
class Matcher:
    """Entries per language: `entries[language]` is the list of that language's entry strings, entry e of every
    language naming the same thing (a concept); an empty string is no entry. A caption is read once: its word n-grams
    (its substrings, for a language written without spaces) are looked up in each language's index."""
    entries: dict[str, list[str]]

    def __post_init__(self):
        sizes = {len(v) for v in self.entries.values()}
        if len(sizes) > 1:
            raise ValueError(f"every language needs one string per entry; got {sorted(sizes)} entries")

    @property
    def n_entries(self) -> int:
        return len(next(iter(self.entries.values()))) if self.entries else 0

    @cached_property
    def _index(self) -> dict[str, tuple[dict[str, list[int]], int]]:
        """{language: ({entry key: entry ids}, the longest key in words, or characters without spaces)}."""
        out = {}
        for language, names in self.entries.items():
            unspaced, index = language in WRITTEN_WITHOUT_SPACES, {}
            for e, name in enumerate(names):
                key = name.lower() if unspaced else _spaced(name).strip()
                if key:
                    index.setdefault(key, []).append(e)
            longest = max((len(key) if unspaced else key.count(" ") + 1 for key in index), default=0)
            out[language] = (index, longest)
        return out

    def match(self, text: str, language: str) -> list[int]:
        """The ids of the entries of `language` that `text` contains, ascending (none for a language without
        entries)."""
        if language not in self._index:
            return []
        index, longest = self._index[language]
        if language in WRITTEN_WITHOUT_SPACES:
            units, sep = text.lower(), ""
        else:
            units, sep = _spaced(text).split(), " "
        found = set()
        for i in range(len(units)):
            for n in range(1, min(longest, len(units) - i) + 1):
                found.update(index.get(sep.join(units[i:i + n]), ()))
        return sorted(found)


def world_entries(world) -> dict[str, list[str]]:
    """The synthetic world's vocabulary as entries: each concept's name in each caption language (entry e: concept
    e), the list MetaCLIP's metadata is for a real pool."""
    languages = [s for s in world.strata if s != "und"]
    return {lang: [c["names"].get(lang, "") for c in world.concepts] for lang in languages}


def read_entries(path: str) -> dict[str, list[str]]:
    """A user's metadata file (JSON {language: [entry, ...]}) as entries, each language's list padded with empty
    strings (no entry) to one length; ValueError naming the file and what is wrong."""
    import json

    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(f"filter.balanced.metadata = {path!r}: {type(e).__name__}: {e}") from e
    if not isinstance(raw, dict) or not raw or not all(
            isinstance(v, list) and all(isinstance(x, str) for x in v) for v in raw.values()):
        raise ValueError(f"filter.balanced.metadata = {path!r}: expected a JSON object "
                         "{language: [entry, ...]} of strings")
    n = max(len(v) for v in raw.values())
    return {lang: v + [""] * (n - len(v)) for lang, v in raw.items()}


def count_matches(matches: list[list[int]], languages: list[str], n_entries: int) -> dict[str, np.ndarray]:
    """Per language, each entry's number of matches over the pairs ([n_entries] int64 each)."""
    counts: dict[str, np.ndarray] = {}
    for found, language in zip(matches, languages, strict=True):
        c = counts.setdefault(language, np.zeros(n_entries, np.int64))
        np.add.at(c, found, 1)
    return counts


def pair_entry_uniforms(ids: np.ndarray, entries: np.ndarray, key: int) -> np.ndarray:
    """A keyed uniform in [0, 1) per (pair id, entry id): a pure function of both and filter.key."""
    k = np.uint64(derive_key(as_key(key, "filter.key"), BALANCED_KEY_PART))
    h = _mix64(_mix64(np.asarray(ids, np.int64).astype(np.uint64) ^ k) ^ np.asarray(entries, np.int64).astype(
        np.uint64))
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def admission(ids: np.ndarray, matches: list[list[int]], counts: np.ndarray | list[np.ndarray], key: int) -> np.ndarray:
    """a_i = min over pair i's entries e of u_ie * count_e (`counts`: one array for all pairs, or the pair's own
    language's per pair); inf where a pair matches nothing. Pair i is kept at threshold t exactly when a_i < t."""
    sizes = np.array([len(m) for m in matches], np.int64)
    out = np.full(len(ids), np.inf)
    if not sizes.sum():
        return out
    pair = np.repeat(np.arange(len(ids)), sizes)
    entry = np.concatenate([np.asarray(m, np.int64) for m in matches if len(m)])
    if isinstance(counts, np.ndarray):
        c = counts[entry]
    else:  # per pair: its language's counts
        c = np.array([counts[i][e] for i, e in zip(pair.tolist(), entry.tolist())], np.float64)
    a = pair_entry_uniforms(np.asarray(ids, np.int64)[pair], entry, key) * c
    np.minimum.at(out, pair, a)
    return out


def balanced_scores(ids, matches, languages, n_entries: int, key: int) -> np.ndarray:
    """The single-threshold arm's top-k score: -a_i with every language's matches counted together (NaN: no match,
    not eligible). Keeping the k highest is MetaCLIP's rule at the t that keeps k."""
    total = sum(count_matches(matches, languages, n_entries).values())
    a = admission(np.asarray(ids), matches, total, key)
    return np.where(np.isfinite(a), -a, np.nan)


def tail_share(counts: np.ndarray, t: float) -> float:
    """The share of the matches that fall in entries with fewer than t matches (MetaCLIP 2's tail proportion)."""
    total = counts.sum()
    return float(counts[counts < t].sum() / total) if total else 0.0


def threshold_for_share(counts: np.ndarray, share: float) -> float:
    """The whole-number threshold whose tail share is nearest `share`, as MetaCLIP 2's p_to_t picks it (the lower on a
    tie). A language's tail share changes only at its entries' counts, so two languages' shares are equal up to one
    entry's matches; the threshold never falls below the rarest entry's count (no tail at all)."""
    c = np.sort(counts[counts > 0])
    if c.size == 0:
        return np.inf
    last = np.r_[c[1:] != c[:-1], True]  # the last entry of each run of equal counts
    thresholds = np.r_[c[0], c[last] + 1].astype(float)  # every distinct tail: none, then count <= c_j
    shares = np.r_[0.0, np.cumsum(c)[last] / c.sum()]
    return float(thresholds[int(np.argmin(np.abs(shares - share)))])


def language_thresholds(counts: dict[str, np.ndarray], t_en: float, reference: str = "en") -> dict[str, float]:
    """Each language's threshold at English's t_en: the one giving the language English's tail share."""
    share = tail_share(counts[reference], t_en)
    return {lang: (float(t_en) if lang == reference else threshold_for_share(c, share)) for lang, c in counts.items()}


@dataclass(frozen=True)
class Selection:
    kept: np.ndarray  # [k] indices into the pairs, in pair order
    t_en: float
    thresholds: dict[str, float]
    tail_shares: dict[str, float]


def per_language_selection(ids, matches, languages, n_entries: int, k: int, key: int,
                           reference: str = "en") -> Selection:
    """MetaCLIP 2's per-language balancing at exactly k kept pairs. The other languages' thresholds change only
    where English's tail share does, at English's entry counts C; between two of them, t_en in (C_j-1, C_j], they
    are those of C_j and English pairs join one by one as t_en passes their a. So: the smallest C_j keeping at least
    k; the pairs it adds over C_j-1 join other languages' first (at the step's start), each by a / its threshold
    (its keyed draw), then English pairs by a, until k."""
    ids = np.asarray(ids)
    counts = count_matches(matches, languages, n_entries)
    if reference not in counts:
        raise ValueError(f"filter.balanced.thresholds = per_language: no pool pair in language {reference!r} matches "
                         f"an entry (languages matched: {', '.join(sorted(counts)) or 'none'}), and its tail share sets "
                         "every other language's threshold; set filter.balanced.thresholds: single, or give "
                         f"filter.balanced.metadata entries in {reference!r}")
    a = admission(ids, matches, [counts[lang] for lang in languages], key)
    eligible = int(np.isfinite(a).sum())
    if k > eligible:
        raise ValueError(f"balanced arm: k = {k} but only {eligible} pairs match an entry")
    lang = np.asarray(languages)

    names, code = np.unique(lang, return_inverse=True)

    def kept_at(t_en: float) -> tuple[np.ndarray, dict[str, float]]:
        t = language_thresholds(counts, t_en, reference)
        return a < np.array([t[x] for x in names])[code], t

    candidates = np.unique(np.concatenate([counts[reference][counts[reference] > 0].astype(float),
                                           [counts[reference].max() + 1.0]]))
    lo, hi = 0, len(candidates) - 1
    while lo < hi:  # the smallest candidate t_en keeping at least k (kept sets are nested in t_en)
        mid = (lo + hi) // 2
        if kept_at(candidates[mid])[0].sum() >= k:
            hi = mid
        else:
            lo = mid + 1
    t_en = float(candidates[lo])
    mask, thresholds = kept_at(t_en)
    if mask.sum() < k:  # the largest threshold still keeps fewer: every eligible pair's language cap is above it
        mask = np.isfinite(a)
    if lo > 0:
        before, _ = kept_at(candidates[lo - 1])
    else:
        before = np.zeros_like(mask)
    sure = np.flatnonzero(before & mask)
    step = np.flatnonzero(mask & ~before)
    limit = np.array([thresholds[x] for x in names])[code]
    need = k - sure.size
    order = step[np.lexsort((ids[step], a[step] / limit[step], lang[step] == reference))]
    kept = np.sort(np.concatenate([sure, order[:need]]))
    return Selection(kept, t_en, thresholds, {x: tail_share(c, thresholds[x]) for x, c in counts.items()})


def read_matches(out_dir: Path) -> pd.DataFrame:
    """Every pool pair's id (a synthetic pool) or row (a real one), language and matches, from the filter stage's
    scores tables (out_dir/scores), in shard order."""
    files = sorted((Path(out_dir) / "scores").glob("*.parquet"))
    tables = [pd.read_parquet(f, columns=None) for f in files]
    out = []
    for t in tables:
        key = "id" if "id" in t else "row"
        language = t["caption_language"] if "caption_language" in t else t["language"]
        out.append(pd.DataFrame({"id": t[key].to_numpy(np.int64), "language": language.to_numpy(str),
                                 "matches": t["matches"]}))
    return pd.concat(out, ignore_index=True)


def select_balanced(pairs: pd.DataFrame, k: int, filter_params) -> tuple[np.ndarray, dict]:
    """The balanced arm's k pairs (sorted ids) from every pool pair's (id, language, matches), and its record: the
    threshold(s) that keep k, the tail share each language reaches, how many pairs match an entry."""
    ids = pairs["id"].to_numpy(np.int64)
    matches = [list(np.asarray(m, np.int64)) for m in pairs["matches"]]
    languages = pairs["language"].tolist()
    n_entries = 1 + max((max(m) for m in matches if len(m)), default=-1)
    matched = int(sum(1 for m in matches if len(m)))
    if matched < k:
        raise ValueError(f"filter arm 'balanced' keeps k = {k:,} pairs, but the pool has only {matched:,} pairs whose "
                         "caption matches a concept name (filter.keep_fraction is too large for it)")
    key, mode = filter_params.key, filter_params.balanced.thresholds
    record = {"thresholds": mode, "matched_pairs": matched, "entries": n_entries,
              "entries_matched": int(len({e for m in matches for e in m}))}
    if mode == "single":
        scores = balanced_scores(ids, matches, languages, n_entries, key)
        kept = select.top_k(ids, scores, k)
        record |= {"t": float(-np.sort(scores[~np.isnan(scores)])[::-1][k - 1])}
    else:
        chosen = per_language_selection(ids, matches, languages, n_entries, k, key)
        kept = np.sort(ids[chosen.kept])
        record |= {"t_en": chosen.t_en, "t": dict(sorted(chosen.thresholds.items())),
                   "tail_share": dict(sorted(chosen.tail_shares.items()))}
    return kept, record
