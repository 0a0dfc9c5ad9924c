"""The sample stage: nested subsets of a pool, language rebalancing, and what each subset covers.

Works on the synthetic pool (virtual: ids are never all held in memory unless written out) and on
real shards (records indexed by vlscale.data.shards). Results are tables the notebook plots and
files the train stage reads: per fraction, the sorted id list (when small enough) and the mixture.
"""
from __future__ import annotations

import json
import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from vlscale.config import LOW_RESOURCE
from vlscale.data.mixture import Mixture
from vlscale.data.subsets import NestedSubsets, UidSubsets, derive_key
from vlscale.files import atomic_write, jsonable
from vlscale.world.hashing import id_words
from vlscale.world.spec import paper_pages_pct
from vlscale.world.truth import ground_truth

_CHUNK = 1 << 20


# metrics/sample.json keys other stages read
SOURCE = "source"  # synthetic | webdataset | parquet
POOL_EXAMPLES = "pool_examples"  # examples in the pool
SUBSETS = "subsets"  # per subset label (1pct, 10pct, 100pct): its record, below
SUBSET_EXAMPLES = "examples"  # a subset's examples
SCAN = "scan"  # a real pool: what the scan read, kept and rejected (by reason), its shards
SHARDS = "shards"  # a real pool: vlscale.data.shards.shard_summary of its shard paths
LANGUAGES = "languages"  # a real pool: examples per page language as tagged


def fraction_label(fraction: float) -> str:
    """'1pct', '10pct', '100pct', '0.5pct': a file-name-safe name of a fraction."""
    pct = Fraction(str(fraction)) * 100
    return (f"{pct.numerator}" if pct.denominator == 1 else f"{float(pct):g}") + "pct"


def synthetic_subsets(world, pool_size: int, key: int) -> NestedSubsets:
    """Nested subsets of the synthetic pool of `pool_size` examples, one stratum per page language."""
    return NestedSubsets(world.pool_sizes(pool_size), key, names=world.strata)


def real_subsets(records: pd.DataFrame, key: int) -> UidSubsets:
    """Nested subsets of records scanned from real shards, one stratum per language tag.

    The subsets' ids are row positions in `records`; `write_subsets` writes their uids.
    """
    names = sorted(records["language"].unique())
    strata = records["language"].map({n: i for i, n in enumerate(names)}).to_numpy(np.int64)
    return UidSubsets(records["uid"].tolist(), strata, key, names=names)


def mixtures(subsets, fractions, targets: dict, key: int) -> dict[float, Mixture]:
    """The rebalanced mixture of every subset (targets: language -> share of the mixture)."""
    absent = sorted(set(targets) - set(subsets.names))
    if absent:  # a real pool may lack a language entirely: say so rather than drop it silently
        warnings.warn(f"rebalance targets {absent} have no stratum in this pool (strata: {list(subsets.names)}); "
                      "they cannot be upsampled", stacklevel=2)
    targets = {k: v for k, v in targets.items() if k not in absent}
    return {f: Mixture(subsets.counts(f), list(subsets.names), targets, derive_key(key, 7, i))
            for i, f in enumerate(fractions)}


def language_table(subsets, fractions, mixes: dict) -> pd.DataFrame:
    """Per fraction and language: examples and shares before and after rebalancing, and Table 15's share."""
    paper = paper_pages_pct()
    rows = []
    for f in fractions:
        counts = subsets.counts(f)
        mix = mixes[f]
        for s, name in enumerate(subsets.names):
            rows.append(dict(fraction=f, subset=fraction_label(f), language=name,
                             low_resource=name in LOW_RESOURCE, paper_pct=paper.get(name),
                             natural_count=int(counts[s]), natural_pct=100 * counts[s] / max(counts.sum(), 1),
                             rebalanced_count=int(mix.realised_counts[name]),
                             rebalanced_pct=100 * mix.realised_shares[name],
                             target_pct=100 * mix.targets[name] if name in mix.targets else None))
    return pd.DataFrame(rows)


def concept_counts(world, subsets: NestedSubsets, fraction, progress: bool = True) -> np.ndarray:
    """Examples per concept in a synthetic subset ([K] int64), exact, streamed in chunks."""
    counts = np.zeros(len(world.concepts), np.int64)
    total = int(subsets.counts(fraction).sum())
    with tqdm(total=total, desc=f"concepts in {fraction_label(fraction)}", unit="ex", disable=not progress) as bar:
        for s in range(len(subsets.names)):
            ids = subsets.member_ids(fraction, s)
            for start in range(0, len(ids), _CHUNK):
                hi, lo = id_words(ids[start:start + _CHUNK])
                concept = ground_truth(world, hi, lo, np)["concept"]
                counts += np.bincount(concept, minlength=len(counts))
                bar.update(len(hi))
    return counts


def coverage_table(world, counts_by_fraction: dict, ks) -> pd.DataFrame:
    """Fraction of concepts of each kind with at least k examples, per subset fraction and k."""
    kinds = {
        "all concepts": world.landmark_country < 0,
        "culture-specific": world.culture_region >= 0,
        "landmarks": world.landmark_country >= 0,
        "Western head": world.is_head,
    }
    rows = []
    for f, counts in counts_by_fraction.items():
        for kind, sel in kinds.items():
            for k in ks:
                rows.append(dict(fraction=f, subset=fraction_label(f), kind=kind, k=k, n_concepts=int(sel.sum()),
                                 covered=float(np.mean(counts[sel] >= k)) if sel.any() else float("nan")))
    return pd.DataFrame(rows)


def language_coverage(subsets, fractions, ks) -> pd.DataFrame:
    """Fraction of the pool's page languages (those with an example in the whole pool) with at least k examples,
    per subset fraction and k: a real pool's long-tail coverage, as its records carry a language and no concept."""
    present = subsets.counts(max(fractions)) > 0
    rows = []
    for f in fractions:
        counts = subsets.counts(f)
        for k in ks:
            rows.append(dict(fraction=f, subset=fraction_label(f), kind="page languages", k=k,
                             n_concepts=int(present.sum()), covered=float(np.mean(counts[present] >= k))))
    return pd.DataFrame(rows)


def write_subsets(out_dir: str | Path, subsets, fractions, mixes: dict, write_ids_max: int, meta: dict,
                  records: pd.DataFrame | None = None, uid_lists: dict | None = None) -> dict:
    """Write every subset's counts, mixture and id list; returns the index also written as subsets.json.

    The id list (the DataComp contract) is written when the subset has at most `write_ids_max`
    examples: sorted int64 global ids (`ids_<label>.npy`) for the synthetic pool, or, for a real pool
    (`records` given), the records sorted by uid (`uids_<label>.parquet`: uid, language, shard, member).
    uid_lists: {label: file name or None} of lists already in `out_dir` (vlscale.beam.sample.subset_uid_lists).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    index = {"key": int(subsets.key), "strata": list(subsets.names), "subsets": {}, **meta}
    for f in fractions:
        label = fraction_label(f)
        counts = subsets.counts(f)
        entry = {"fraction": f, "examples": int(counts.sum()),
                 "counts": {n: int(c) for n, c in zip(subsets.names, counts)},
                 "mixture": mixes[f].as_dict(), "ids_file": None}
        if uid_lists is not None:  # a real pool's lists, already written (by the Beam pipeline)
            entry["ids_file"] = uid_lists.get(label)
        elif counts.sum() <= write_ids_max:
            if records is None:
                entry["ids_file"] = f"ids_{label}.npy"
                np.save(out_dir / entry["ids_file"], subsets.ids(f))
            else:
                entry["ids_file"] = f"uids_{label}.parquet"
                write_uid_list(records.iloc[subsets.ids(f)][["uid", "language", "shard", "member"]],
                               out_dir / entry["ids_file"])
        index["subsets"][label] = entry
    # json.dumps, not write_json: ASCII, no final newline (dvc.lock's hash of data/sample is of these bytes)
    text = json.dumps(index, indent=1, default=jsonable)
    atomic_write(out_dir / "subsets.json", lambda tmp: tmp.write_text(text))
    return index


def write_uid_list(chosen: pd.DataFrame, path) -> None:
    """A real subset's id list: its records (uid, language, shard, member) sorted by uid, as parquet (the
    same bytes from the local stage and the Beam pipeline)."""
    chosen.sort_values("uid").to_parquet(path, index=False)
