"""Exact, deterministic selection of k pairs: per-shard candidates, merged to the same answer for any split.

An arm keeps the k pairs of highest score, ties broken by the smaller id, so the kept set has exactly
k ids whatever the scores (NaN scores rank below every number). `shard_top_k` keeps a shard's own
best k (no pair outside them can be among the global best k), `merge_top_k` selects from the shards'
candidates: the union of any split's candidates holds the global top k, so the result is the same for
every way of cutting the pool into shards (DataComp keeps every pair at or above a threshold instead,
so its subsets are never exactly a given size).
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from vlscale.data.subsets import _mix64, as_key, derive_key


def _order(ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Indices of (ids, scores) best first: score descending (NaN last), then id ascending."""
    s = np.where(np.isnan(scores), -np.inf, scores)
    return np.lexsort((ids, np.isnan(scores), -s))


def _check(ids, scores) -> tuple[np.ndarray, np.ndarray]:
    ids, scores = np.asarray(ids, dtype=np.int64), np.asarray(scores, dtype=np.float64)
    if ids.shape != scores.shape or ids.ndim != 1:
        raise ValueError(f"ids {ids.shape} and scores {scores.shape} must be 1-D arrays of one length")
    return ids, scores


def shard_top_k(ids, scores, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids, scores) of a shard's best min(k, n) pairs, best first."""
    ids, scores = _check(ids, scores)
    best = _order(ids, scores)[:k]
    return ids[best], scores[best]


def merge_top_k(parts: Iterable[tuple[np.ndarray, np.ndarray]], k: int) -> np.ndarray:
    """The sorted ids of the best k of the shards' candidates (shard_top_k of each shard).

    Raises ValueError when the shards hold fewer than k pairs, or an id twice."""
    parts = list(parts)
    ids = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
    scores = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0)
    ids, scores = _check(ids, scores)
    if len(np.unique(ids)) != len(ids):
        raise ValueError("the shards' candidates repeat an id: are two shards overlapping?")
    if len(ids) < k:
        raise ValueError(f"cannot keep {k} pairs: the shards hold only {len(ids)}")
    return np.sort(ids[_order(ids, scores)[:k]])


def top_k(ids, scores, k: int) -> np.ndarray:
    """The sorted ids of the k best pairs of one array (merge_top_k of a single shard)."""
    return merge_top_k([shard_top_k(ids, scores, k)], k)


def keyed_scores(ids, key: int) -> np.ndarray:
    """A keyed pseudo-random score in [0, 1) per id (float64; a pure function of (id, key)), so that a
    random draw of k ids is a top-k like any other arm's, and per-shard like it."""
    ids = np.asarray(ids, dtype=np.int64)
    k = np.uint64(derive_key(as_key(key, "filter.key"), 11))
    h = _mix64(ids.astype(np.uint64) ^ k)
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)
