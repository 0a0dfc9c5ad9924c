"""The training input: a Grain pipeline of compute-matched, shuffled, tokenised batches of a subset.

A source is random access over the positions 0..M-1 of a subset's `Mixture` (the natural mix, or
the low-resource languages upsampled): position j reads the member of rank r of stratum s, where
(s, r) = mixture.source(j). Nothing is materialised, so a subset of 10^10 examples costs no memory:
- `SyntheticSource`: the member is the global id make_ids(s, permutation_s.inverse(r)), exactly the
  one `NestedSubsets.member_ids` lists; its image is rendered later, on the accelerator, inside the
  jitted step, so the host only produces ids (as two uint32 words) and tokens;
- `ShardSource`: the member is a record of a real pool (uid, language, shard, member), read with
  `load_example`, centre-cropped and resized to image_px.

`train_stream` makes the stream compute-matched: whatever the subset's size, a run sees
ceil(examples_seen / global_batch) batches, so a 1% subset is repeated about 100 times and the whole
pool seen once. Epoch e (stream positions e*M .. (e+1)*M-1) reads the mixture in its own keyed order,
mixture.order(derive_key(seed, e)). A batch is a pure function of (source, seed, step), so the
iterator's state is just the next step: restoring it replays the stream bit for bit, at any point.

Multi-host: the global batch of step b is stream positions b*G .. (b+1)*G-1, G = batch_size *
process_count; process p reads the slice p*batch_size .. (p+1)*batch_size-1 of it. Every process
builds the same stream with its own process_index, and the global batch is the processes' batches
in process order.

Grain elements are whole batches (the map reads a batch's positions at once), because ids,
ground truth, captions and tokens are computed vectorised over a batch; Grain provides the
prefetching threads, the worker processes and the checkpointable iterator.
"""
from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from pathlib import Path

import grain
import numpy as np
import pandas as pd
from PIL import Image

from vlscale.data.mixture import Mixture
from vlscale.data.sampling import mixtures, synthetic_subsets
from vlscale.data.shards import load_example
from vlscale.data.subsets import UidSubsets, as_key, derive_key
from vlscale.world.captions import captions
from vlscale.world.hashing import id_words
from vlscale.world.ids import make_ids
from vlscale.world.truth import truth


class SyntheticSource(grain.sources.RandomAccessDataSource):
    """Global ids of the mixture of a synthetic subset, by mixture position.

    subsets: the pool's `NestedSubsets`; fraction: the subset; targets: {language: share of the
    mixture} (None or {}: the natural mix). len(source) == len(source.mixture).
    """

    def __init__(self, world, subsets, fraction, targets: Mapping[str, float] | None = None):
        self.world = world
        self.names = list(subsets.names)
        self.fraction = fraction
        self.permutations = subsets.permutations
        self.mixture = mixtures(subsets, [fraction], targets or {}, subsets.key)[fraction]  # as the sample stage
        if len(self.mixture) == 0:
            raise ValueError(f"the subset of fraction {fraction} of {subsets!r} is empty")

    def __repr__(self):
        return f"SyntheticSource(fraction={self.fraction}, {self.mixture!r})"

    def __len__(self):
        return len(self.mixture)

    def __getitem__(self, position) -> int:
        return int(self.ids(np.array([position]))[0])

    def ids(self, positions) -> np.ndarray:
        """Global ids (int64, shape of `positions`) read at mixture positions."""
        return members_at(self.mixture, positions, lambda s, rank: make_ids(s, self.permutations[s].inverse(rank)))

    def read(self, positions) -> tuple[dict[str, np.ndarray], list[str]]:
        """({id_hi, id_lo: uint32 [N], stratum: int32 [N]}, N captions) at mixture positions ([N] ints)."""
        return read_ids(self.world, self.ids(positions))


def members_at(mixture, positions, member) -> np.ndarray:
    """int64 [shape of positions]: member(s, ranks) of each position's (stratum, rank) in `mixture`, one call per
    stratum present (the lookup every source does: ids of a permutation, of a list, or record rows)."""
    stratum, rank = mixture.source(positions)
    out = np.empty(stratum.shape, np.int64)
    for s in np.unique(stratum).tolist():
        at = stratum == s
        out[at] = member(s, rank[at])
    return out


def read_ids(world, ids: np.ndarray) -> tuple[dict[str, np.ndarray], list[str]]:
    """({id_hi, id_lo: uint32 [N], stratum: int32 [N]}, N captions) of synthetic global ids."""
    gt = truth(world, ids)
    hi, lo = id_words(ids)
    return {"id_hi": hi, "id_lo": lo, "stratum": gt["stratum"]}, captions(world, ids, gt)


class IdSource(grain.sources.RandomAccessDataSource):
    """Synthetic examples of an explicit id list (a filter arm, a filter model's source), by mixture position.

    ids: distinct global ids, any order (kept sorted); key: the mixture's key. The strata are the ids'
    page languages (world.strata) in their natural mix, so the stream reads them as it reads a subset.
    """

    def __init__(self, world, ids, key: int):
        ids = np.asarray(ids, dtype=np.int64)
        self.sorted_ids = np.unique(ids)
        if len(self.sorted_ids) != len(ids):
            raise ValueError(f"an id source needs distinct ids; {len(ids) - len(self.sorted_ids)} of {len(ids)} repeat")
        if len(ids) == 0:
            raise ValueError("an id source needs at least one id")
        self.world = world
        self.names = list(world.strata)
        strata = truth(world, self.sorted_ids)["stratum"]
        order = np.argsort(strata, kind="stable")
        counts = np.bincount(strata, minlength=len(self.names))
        self._members = np.split(self.sorted_ids[order], np.cumsum(counts)[:-1])  # ids by stratum, by rank
        self.mixture = Mixture(counts, self.names, {}, key)

    def __repr__(self):
        return f"IdSource({len(self.sorted_ids)} ids, {self.mixture!r})"

    def __len__(self):
        return len(self.mixture)

    def __getitem__(self, position) -> int:
        return int(self.ids(np.array([position]))[0])

    def ids(self, positions) -> np.ndarray:
        """Global ids (int64, shape of `positions`) read at mixture positions."""
        return members_at(self.mixture, positions, lambda s, rank: self._members[s][rank])

    def read(self, positions) -> tuple[dict[str, np.ndarray], list[str]]:
        """As SyntheticSource.read."""
        return read_ids(self.world, self.ids(positions))


class ShardSource(grain.sources.RandomAccessDataSource):
    """Examples of a real pool's subset by mixture position: images decoded, cropped and resized.

    records: one row per example with uid, language, shard, member (a `uids_<label>.parquet`);
    key: the sample stage's key (members of a language are in its keyed uid order, so an upsampled
    language cycles through them as `Mixture` describes); targets as in `SyntheticSource`.
    Strata are the records' languages, sorted (`names`).
    """

    def __init__(self, records: pd.DataFrame, key: int, targets: Mapping[str, float] | None = None,
                 image_px: int = 224):
        missing = {"uid", "language", "shard", "member"} - set(records.columns)
        if missing:
            raise ValueError(f"records lack columns {sorted(missing)}; expected uid, language, shard, member")
        if len(records) == 0:
            raise ValueError("records are empty: a shard source needs at least one record")
        self.records = records[["uid", "language", "shard", "member"]].reset_index(drop=True)
        self.names = sorted(self.records["language"].unique())
        strata = self.records["language"].map({n: i for i, n in enumerate(self.names)}).to_numpy(np.int64)
        self._strata = strata.astype(np.int32)
        subsets = UidSubsets(self.records["uid"].tolist(), strata, key, names=self.names)
        self._members = [subsets.member_ids(1, s) for s in range(len(self.names))]  # row indices by rank
        self.mixture = mixtures(subsets, [1], targets or {}, key)[1]
        self.image_px = image_px

    def __repr__(self):
        return f"ShardSource({len(self.records)} records, image_px={self.image_px}, {self.mixture!r})"

    def __len__(self):
        return len(self.mixture)

    def __getitem__(self, position) -> dict:
        return self.records.iloc[int(self.rows(np.array([position]))[0])].to_dict()

    def rows(self, positions) -> np.ndarray:
        """Row indices of `records` (int64, shape of `positions`) read at mixture positions."""
        return members_at(self.mixture, positions, lambda s, rank: self._members[s][rank])

    def read(self, positions) -> tuple[dict[str, np.ndarray], list[str]]:
        """({image: uint8 [N, px, px, 3], stratum: int32 [N]}, N captions) at mixture positions ([N] ints)."""
        rows = self.rows(positions)
        images = np.empty((len(rows), self.image_px, self.image_px, 3), np.uint8)
        texts = []
        for i, row in enumerate(rows.tolist()):
            image, caption = load_example(self.records.iloc[row])
            images[i] = center_crop_resize(image, self.image_px)
            texts.append(caption)
        return {"image": images, "stratum": self._strata[rows]}, texts


def center_crop_resize(image: np.ndarray, px: int) -> np.ndarray:
    """The central square of `image` (uint8 [H, W, 3]) resized to uint8 [px, px, 3] (bilinear, antialiased)."""
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = np.ascontiguousarray(image[top:top + side, left:left + side])  # nothing outside it bleeds in
    return np.asarray(Image.fromarray(square).resize((px, px), Image.BILINEAR), np.uint8)


def read_sample(world, sample_dir: str | Path, label: str | None = None):
    """(label, entry, pool) of a subset written by the sample stage to `sample_dir`.

    label: "1pct", ...; None: the largest subset (a real pool's largest with a uid list).
    entry: the subset's entry in subsets.json, plus its "key". pool: for a synthetic pool its
    `NestedSubsets`, rebuilt from the recorded pool size and key and checked against the world and
    the recorded counts; for a real pool the subset's records (uids_<label>.parquet).
    """
    index_path = Path(sample_dir) / "subsets.json"
    index = json.loads(index_path.read_text())
    synthetic = index["source"] == "synthetic"
    if label is None:
        labels = [k for k, e in index["subsets"].items() if synthetic or e["ids_file"]]
        if not labels:
            raise ValueError(f"{index_path}: no subset has a uid list (all exceed write_ids_max)")
        label = max(labels, key=lambda k: index["subsets"][k]["fraction"])
    if label not in index["subsets"]:
        raise ValueError(f"{index_path}: no subset {label!r}; subsets are {sorted(index['subsets'])}")
    entry = {**index["subsets"][label], "key": index["key"]}
    if synthetic:
        if index["world_fingerprint"] != world.fingerprint():
            raise ValueError(f"{index_path} was made from world {index['world_fingerprint']}, "
                             f"not this world ({world.fingerprint()}); re-run the sample stage")
        pool = synthetic_subsets(world, index["provenance"]["params"]["sample"]["pool_size"], index["key"])
        counts = dict(zip(pool.names, pool.counts(entry["fraction"]).tolist()))
        if counts != entry["counts"]:
            raise ValueError(f"{index_path}: subset {label!r} records counts {entry['counts']}, but the pool "
                             f"rebuilt from its pool size and key gives {counts}")
        return label, entry, pool
    if entry["ids_file"] is None:
        raise ValueError(f"{index_path}: subset {label!r} has no uid list (more than write_ids_max examples)")
    return label, entry, pd.read_parquet(Path(sample_dir) / entry["ids_file"])


def load_source(world, sample_dir: str | Path, label: str, rebalanced: bool, image_px: int = 224):
    """The source of subset `label` ("1pct", ...) written by the sample stage to `sample_dir`.

    rebalanced: the subset's mixture targets (the low-resource languages upsampled), or the natural
    mix. A synthetic pool gives a `SyntheticSource`, a real pool a `ShardSource` (see `read_sample`).
    """
    label, entry, pool = read_sample(world, sample_dir, label)
    targets = entry["mixture"]["targets"] if rebalanced else {}
    if isinstance(pool, pd.DataFrame):
        source = ShardSource(pool, entry["key"], targets, image_px)
    else:
        source = SyntheticSource(world, pool, entry["fraction"], targets)
    expected = entry["mixture"]["realised_counts"] if rebalanced else entry["counts"]
    if source.mixture.realised_counts != {k: v for k, v in expected.items() if k in source.names}:
        raise ValueError(f"{Path(sample_dir) / 'subsets.json'}: subset {label!r} records "
                         f"{'rebalanced' if rebalanced else 'natural'} counts {expected}, but its source gives "
                         f"{source.mixture.realised_counts}")
    return source


# ---------------------------------------------------------------------------------------------
# The stream


@dataclasses.dataclass(frozen=True)
class StreamPlan:
    """Which mixture positions each step of a compute-matched stream reads.

    epoch_size: M, the mixture's length; batch_size: per process. The stream has
    num_batches = ceil(examples_seen / global_batch_size) steps (the last one full, so a run sees
    num_batches * global_batch_size >= examples_seen examples).
    """
    epoch_size: int
    examples_seen: int
    batch_size: int
    seed: int
    process_index: int = 0
    process_count: int = 1

    def __post_init__(self):
        for name in ("epoch_size", "examples_seen", "batch_size", "process_count"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        as_key(self.seed, "seed")
        if not 0 <= self.process_index < self.process_count:
            raise ValueError(f"process_index {self.process_index} is outside [0, {self.process_count})")

    @property
    def global_batch_size(self) -> int:
        return self.batch_size * self.process_count

    @property
    def num_batches(self) -> int:
        return math.ceil(self.examples_seen / self.global_batch_size)

    @property
    def epochs(self) -> float:
        """How many times the stream goes through the mixture."""
        return self.num_batches * self.global_batch_size / self.epoch_size

    def positions(self, mixture, step: int) -> np.ndarray:
        """Mixture positions (int64 [batch_size]) this process reads at `step`."""
        if not 0 <= step < self.num_batches:
            raise IndexError(f"step {step} is outside the stream's [0, {self.num_batches})")
        first = step * self.global_batch_size + self.process_index * self.batch_size
        t = np.arange(first, first + self.batch_size, dtype=np.int64)
        epoch, within = np.divmod(t, self.epoch_size)
        out = np.empty_like(t)
        for e in np.unique(epoch).tolist():  # one or two epochs unless the mixture is smaller than a batch
            at = epoch == e
            out[at] = mixture.order(derive_key(self.seed, e)).forward(within[at])
        return out


class _ReadBatch:
    """The Grain map of the stream: step -> batch (a picklable object, for worker processes)."""

    def __init__(self, source, tokenizer, plan: StreamPlan, max_len: int):
        self.source, self.tokenizer, self.plan, self.max_len = source, tokenizer, plan, max_len

    def __call__(self, step) -> dict[str, np.ndarray]:
        fields, texts = self.source.read(self.plan.positions(self.source.mixture, int(step)))
        fields["tokens"] = self.tokenizer.encode(texts, self.max_len)
        fields["examples_seen"] = np.int64((int(step) + 1) * self.plan.global_batch_size)
        return fields


def train_stream(source, tokenizer, batch_size: int, examples_seen: int, seed: int, max_len: int, *,
                 process_index: int | None = None, process_count: int | None = None, num_workers: int = 0,
                 num_threads: int = 2, prefetch: int = 4) -> grain.IterDataset:
    """The compute-matched training stream of `source` as a Grain IterDataset of batches.

    batch_size: examples per batch of THIS process (global batch = batch_size * process_count);
    examples_seen: the run's budget; it gets ceil(examples_seen / global batch) batches, whatever
    len(source). seed: keys every epoch's order. max_len: token length (see Tokenizer.encode).
    process_index / process_count: default jax.process_index() / jax.process_count().
    num_workers: Grain worker processes (0: none); num_threads: batches prepared concurrently by
    threads in each process; prefetch: batches buffered ahead.

    Each batch is a dict of NumPy arrays, B = batch_size, L = max_len:
      synthetic: id_hi, id_lo uint32 [B] (the global ids' words, for vlscale.world.render);
      real:      image uint8 [B, px, px, 3];
      both:      tokens int32 [B, L]; stratum int32 [B] (index into source.names);
                 examples_seen int64 [] (global examples seen once this batch is consumed).
    `iter(stream)` is a grain.DatasetIterator; its get_state() is a JSON-serialisable dict and
    set_state(state) resumes the exact same batches, in a fresh process too.
    """
    if process_index is None or process_count is None:
        import jax  # only for its process layout; the host pipeline itself never touches a device

        process_index = jax.process_index() if process_index is None else process_index
        process_count = jax.process_count() if process_count is None else process_count
    plan = stream_plan(source, batch_size, examples_seen, seed, process_index, process_count)
    stream = grain.MapDataset.range(plan.num_batches).map(_ReadBatch(source, tokenizer, plan, max_len))
    stream = stream.to_iter_dataset(grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=prefetch))
    if num_workers > 0:
        from absl import flags

        if not flags.FLAGS.is_parsed():  # grain 0.2.18 reads an absl flag when jax is loaded (google/grain#1355)
            flags.FLAGS.mark_as_parsed()
        stream = stream.mp_prefetch(grain.MultiprocessingOptions(num_workers=num_workers,
                                                                 per_worker_buffer_size=prefetch))
        stream = stream.map(_own_arrays)
    return stream


def _own_arrays(batch: dict) -> dict:
    """Copies of a worker's arrays, so that no caller holds Grain's shared memory (freed on the spot)."""
    return {k: np.array(v) for k, v in batch.items()}


def stream_plan(source, batch_size: int, examples_seen: int, seed: int, process_index: int = 0,
                process_count: int = 1) -> StreamPlan:
    """The plan `train_stream` follows (num_batches, epochs, ...), without building the stream."""
    return StreamPlan(len(source), examples_seen, batch_size, seed, process_index, process_count)
