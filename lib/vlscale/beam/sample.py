"""The sample stage's data work on Beam: the scan of real shards and the nested subsets of the pool it keeps.

`scan_shards` runs `vlscale.data.shards.scan_shard` on every shard in a ParDo (shards spread over workers
by a Reshuffle), settles duplicate uids with a group by uid (the first in scan order, (shard index,
position), is kept, as the local scan keeps it), writes each shard's kept records as one parquet file and
the parts' counts beside them; the ShardScan read back from those files equals the local one.

`subset_uid_lists` writes the uid list of every nested subset (a real pool's DataComp contract): a
record's rank in its stratum (language) is the order of a keyed BLAKE2b hash of its uid (`subsets.uid_hash`),
ties broken by the uid, exactly as `vlscale.data.subsets.uid_ranks`. The subset of fraction f takes the
floor(f * N_s) first records of each stratum; it is found without sorting a stratum: a histogram of the hashes'
buckets gives each subset's boundary bucket (`subsets.boundary_plan`), every record below it is a member, and
only the boundary bucket's records are sorted (`subsets.boundary_members`). Each list is written sorted by uid.

This module only wires Beam around those functions of vlscale.data (and `shards.scan_shard`, the local
scan's own per-shard function).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from vlscale.beam.runner import pipeline
from vlscale.config import BeamParams
from vlscale.data import shards as sh
from vlscale.data.sampling import write_uid_list
from vlscale.data.subsets import (
    boundary_members,
    boundary_plan,
    subset_counts,
    uid_bucket,
    uid_hash,
    uid_key_bytes,
)
from vlscale.files import atomic_write, read_json, write_json

log = logging.getLogger("vlscale.beam")
UID_COLUMNS = ["uid", "language", "shard", "member"]


# ------------------------------------------------------------------------------------------------ scan


def _scan_one(item, allowed, max_caption_chars, default_language):
    index, shard = item
    part = sh.scan_shard(shard, allowed, max_caption_chars, default_language)
    log.info("scanned shard %d (%s): %d examples, %d candidates", index, shard, part.examples_in,
             len(part.candidates))
    return index, part


def _counts_only(indexed_part):
    index, part = indexed_part
    return index, part.counts()


def _by_uid(indexed_part):
    index, part = indexed_part
    for c in part.candidates:
        yield c.uid, (index, part.shard, c)


def _settle(uid_group):
    """The first candidate of a uid in scan order is kept; the others are duplicate_uid."""
    import apache_beam as beam

    _, group = uid_group
    group = sorted(group, key=lambda g: (g[0], g[2].position))
    index, shard, first = group[0]
    yield index, (shard, first)
    for index, shard, c in group[1:]:
        yield beam.pvalue.TaggedOutput("duplicate", (index, c.position, shard, c.key))


def _write_records(shard_group, out: str):
    index, kept = shard_group
    kept = sorted(kept, key=lambda k: k[1].position)
    frame = sh.records_frame([c for _, c in kept], kept[0][0])
    atomic_write(Path(out) / f"shard_{index:06d}.parquet", lambda p: frame.to_parquet(p, index=False))
    return index, len(frame)


def _write_scan_parts(_, out: str, parts, duplicates, duplicate_samples, written):
    parts = sorted(parts, key=lambda x: x[0])
    doc = {"parts": [p for _, p in parts], "duplicates": int(duplicates),
           "duplicate_samples": [[shard, key] for _, _, shard, key in sorted(duplicate_samples)],
           "record_files": sorted(i for i, _ in written)}
    write_json(Path(out) / "scan_parts.json", doc, indent=None)


def scan_shards(paths, *, languages, out_dir, beam_params: BeamParams, max_caption_chars: int = 1024,
                default_language: str | None = None) -> sh.ShardScan:
    """`vlscale.data.shards.scan_shards` as a Beam pipeline; its files go to `out_dir` (records/shard_*.parquet:
    each shard's kept records; scan_parts.json: the shards' counts). Returns the same ShardScan."""
    import apache_beam as beam

    shards, allowed = sh.scan_plan(paths, languages, max_caption_chars, default_language)
    out = Path(out_dir) / "records"
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("shard_*.parquet"):
        stale.unlink()
    with pipeline(beam_params, "vlscale-scan") as p:
        parts = (p | "shards" >> beam.Create(list(enumerate(shards))) | beam.Reshuffle()
                 | "scan" >> beam.Map(_scan_one, allowed, max_caption_chars, default_language))
        counts = parts | "counts" >> beam.Map(_counts_only)
        settled = (parts | "by uid" >> beam.FlatMap(_by_uid) | "group uid" >> beam.GroupByKey()
                   | "settle" >> beam.FlatMap(_settle).with_outputs("duplicate", main="kept"))
        written = (settled.kept | "group shard" >> beam.GroupByKey()
                   | "write records" >> beam.Map(_write_records, str(out)))
        dups = settled.duplicate
        n_dup = dups | "count duplicates" >> beam.combiners.Count.Globally()
        first_dups = dups | "first duplicates" >> beam.combiners.Top.Of(sh.SAMPLES_PER_REASON, reverse=True)
        (p | "once" >> beam.Create([None])
         | "write parts" >> beam.Map(_write_scan_parts, str(out_dir), beam.pvalue.AsList(counts),
                                     beam.pvalue.AsSingleton(n_dup), beam.pvalue.AsSingleton(first_dups),
                                     beam.pvalue.AsList(written)))
    return read_scan(out_dir)


def read_scan(out_dir) -> sh.ShardScan:
    """The ShardScan a Beam scan wrote to `out_dir`, as the local scan returns it."""
    out_dir = Path(out_dir)
    doc = read_json(out_dir / "scan_parts.json")
    merged = sh.ScanMerge(len(doc["parts"]))
    for part in doc["parts"]:
        merged.add_counts(sh.ShardPart.from_counts(part))
    merged.counts["duplicate_uid"] += doc["duplicates"]
    merged.samples["duplicate_uid"] = doc["duplicate_samples"]
    frames = [pd.read_parquet(out_dir / "records" / f"shard_{i:06d}.parquet") for i in doc["record_files"]]
    records = sh.concat_records(frames)
    return sh.ShardScan(records=records, report=merged.report(len(records)))


# --------------------------------------------------------------------------------------------- subsets


def _hashed_rows(path: str, key_bytes: bytes):
    """A record file's rows as (language, (uid hash, uid, shard, member)); hashes travel between workers as bytes
    (Beam's coder garbles ints of 2^63 and more)."""
    frame = pd.read_parquet(path, columns=UID_COLUMNS)
    for uid, language, shard, member in frame.itertuples(index=False):
        yield language, (uid_hash(uid, key_bytes), uid, shard, member)


def _plan(language_hist, sizes: dict, fractions: dict):
    """Per (language, label): (boundary bucket, members needed from it): `subsets.boundary_plan`."""
    language, hist = language_hist
    for label, boundary in boundary_plan(hist, sizes[language], fractions).items():
        yield (language, label), boundary


def _assign(row, plan: dict, labels):
    import apache_beam as beam

    language, (h, uid, shard, member) = row
    bucket = uid_bucket(h)
    for label in labels:
        b, need = plan[(language, label)]
        if bucket < b:
            yield label, (uid, language, shard, member)
        elif bucket == b and need:
            yield beam.pvalue.TaggedOutput("boundary", ((language, label), (h, uid, shard, member)))


def _take_boundary(group, plan: dict):
    (language, label), rows = group
    rows = boundary_members(list(rows), plan[(language, label)][1], language)
    return [(label, (uid, language, shard, member)) for _, uid, shard, member in rows]


def _write_uid_list(label_group, out: str, files: dict):
    label, rows = label_group
    frame = pd.DataFrame(sorted(rows), columns=UID_COLUMNS)
    atomic_write(Path(out) / files[label], lambda p: write_uid_list(frame, p))
    return label, len(frame)


def subset_uid_lists(record_files, fractions: dict, key: int, out_dir, beam_params: BeamParams,
                     write_ids_max: int) -> dict:
    """Write `uids_<label>.parquet` (uid, language, shard, member; sorted by uid) for every subset of
    {label: fraction} with at most `write_ids_max` records, from the scan's record files. Returns
    {"sizes": {language: N_s}, "files": {label: file name or None}}; the files are the local stage's bytes."""
    import apache_beam as beam

    key_bytes = uid_key_bytes(key, "sample.key")
    out_dir = Path(out_dir)
    record_files = [str(f) for f in record_files]
    with pipeline(beam_params, "vlscale-sizes") as p:  # first the strata's sizes: which lists are written
        (p | beam.Create(record_files) | beam.FlatMap(lambda f: pd.read_parquet(f, columns=["language"])["language"])
         | beam.combiners.Count.PerElement() | beam.combiners.ToDict()
         | beam.Map(lambda d: write_json(out_dir / "strata_sizes.json", d, indent=None, sort_keys=True)))
    sizes = read_json(out_dir / "strata_sizes.json") if record_files else {}
    (out_dir / "strata_sizes.json").unlink(missing_ok=True)
    sizes_arr = np.array([sizes[n] for n in sorted(sizes)], np.int64)
    files = {label: (f"uids_{label}.parquet" if subset_counts(sizes_arr, f).sum() <= write_ids_max else None)
             for label, f in fractions.items()}
    wanted = {label: f for label, f in fractions.items() if files[label]}
    if wanted and sizes:
        with pipeline(beam_params, "vlscale-subsets") as p:
            rows = (p | "files" >> beam.Create(record_files) | beam.Reshuffle()
                    | "hash" >> beam.FlatMap(_hashed_rows, key_bytes))
            hist = (rows | "bucket" >> beam.Map(lambda r: ((r[0], uid_bucket(r[1][0])), 1))
                    | "histogram" >> beam.CombinePerKey(sum)
                    | beam.Map(lambda kv: (kv[0][0], (kv[0][1], kv[1]))) | "per language" >> beam.GroupByKey())
            plan = beam.pvalue.AsDict(hist | "plan" >> beam.FlatMap(_plan, sizes, wanted))
            assigned = rows | "assign" >> beam.FlatMap(_assign, plan, list(wanted)).with_outputs("boundary",
                                                                                                   main="member")
            edge = (assigned.boundary | "group boundary" >> beam.GroupByKey()
                    | "take boundary" >> beam.FlatMap(_take_boundary, plan))
            ((assigned.member, edge) | beam.Flatten() | "group subset" >> beam.GroupByKey()
             | "write" >> beam.Map(_write_uid_list, str(out_dir), files))
    for label in wanted:  # a subset with no member has no group in the pipeline: its list is empty
        if not (out_dir / files[label]).exists():
            write_uid_list(pd.DataFrame({c: pd.Series(dtype="str") for c in UID_COLUMNS}), out_dir / files[label])
    return {"sizes": sizes, "files": files}
