"""Real image-text pools: scan webdataset tar and parquet shards into kept records and an exact account.

A real pool is a set of shards in the img2dataset / DataComp layouts. `scan_shards` reads every
example once, keeps the good ones as small records (uid, language, caption, where the image lives,
scores) and counts every bad one under exactly one reason of `REASONS`, so that

    examples_in == kept + sum(rejected)

holds for every scan. Image bytes are never held beyond the example being checked; `load_example`
re-reads a kept record's image and caption from its shard when it is needed.

Shard layouts:
- ``.tar`` (webdataset): members grouped by key, the member name up to the first dot of its base
  name. ``KEY.jpg|jpeg|png|webp`` holds the image, ``KEY.txt`` the caption, ``KEY.json`` metadata:
  uid under "uid" (DataComp) or "key" (img2dataset), else KEY; the caption under "caption" or
  "text" when there is no .txt; optional "language"; numeric fields whose name contains "score".
- ``.parquet``: one row per example. uid from "uid" or "key" (else "<file name>:<row>"), caption
  from "caption" or "text", image bytes from the first of jpg/jpeg/png/webp/image that is a binary
  column or a struct column with a "bytes" field (the Hugging Face datasets Image layout), optional
  "language", numeric columns whose name contains "score".
"""
import dataclasses
import functools
import glob
import io
import json
import os
import tarfile
from collections import Counter
from collections.abc import Collection, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image
from tqdm import tqdm  # the text bar: tqdm.auto needs ipywidgets, which is not a dependency

from vlscale.files import write_json

# The order matters: an example is counted under the first reason that applies to it.
REASONS = (
    "unreadable_shard",
    "missing_image",
    "corrupt_image",
    "missing_caption",
    "empty_caption",
    "oversized_caption",
    "unknown_language",
    "duplicate_uid",
)
RECORD_COLUMNS = ("uid", "language", "caption", "shard", "member")
SHARD_SUFFIXES = (".tar", ".parquet")
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")  # tar member extensions, in order of preference
PARQUET_IMAGE_COLUMNS = ("jpg", "jpeg", "png", "webp", "image")
SAMPLES_PER_REASON = 10
PARQUET_BATCH_ROWS = 256  # rows decoded at a time: bounds the image bytes held in memory

UNREADABLE_NOTE = (
    "An unreadable shard counts as one item in examples_in and in rejected['unreadable_shard']: "
    "the examples inside it cannot be counted. Its samples entry is [shard, error]."
)

# Errors that make a whole shard unreadable (anything else is a bug and propagates).
_SHARD_ERRORS = (OSError, EOFError, tarfile.TarError, pa.ArrowException)


@dataclasses.dataclass
class ShardScan:
    """Result of `scan_shards`: the kept records and the account of everything read.

    records: one row per kept example; columns uid, language, caption, shard, member (str), then
        one float column per score found (NaN where an example has none).
    report: examples_in, kept, rejected {reason: count}, samples {reason: [[shard, key], ...]},
        shards (count), shards_unreadable [paths], identity_holds, note.
    """

    records: pd.DataFrame
    report: dict

    def check(self):
        """Raise AssertionError, with the numbers, unless examples_in == kept + sum(rejected)."""
        r = self.report
        rejected = sum(r["rejected"].values())
        if r["examples_in"] != r["kept"] + rejected:
            raise AssertionError(
                f"shard scan accounting broken: examples_in={r['examples_in']} but "
                f"kept={r['kept']} + rejected={rejected} = {r['kept'] + rejected}; "
                f"rejected by reason: {r['rejected']}"
            )

    def require_kept(self):
        """Raise ValueError, with the reasons, when the scan kept no record: there is nothing to sample."""
        r = self.report
        if r["kept"]:
            return
        rejected = {k: v for k, v in r["rejected"].items() if v}
        hint = ("; a pool without language tags needs sample.untagged_language (und keeps such records untagged)"
                if rejected.get("unknown_language") else "")
        raise ValueError(f"the scan of {r['shards']} shard(s) kept none of its {r['examples_in']} records: rejected "
                         f"by reason {rejected}{hint}")

    def to_json(self, path):
        """Write the report as indented JSON to `path`."""
        write_json(path, self.report, indent=2)


@dataclasses.dataclass
class _Example:
    """One example as read from a shard, before any check."""

    key: str  # where it sits in the shard: tar key, or parquet row index
    member: str  # what load_example needs: the image member name, or the parquet row index
    uid: str
    image: bytes | None  # None: no image in the shard
    caption: str | None
    language: str | None
    scores: dict[str, float]


def scan_shards(
    paths: Sequence[str | os.PathLike],
    *,
    languages: Collection[str],
    max_caption_chars: int = 1024,
    default_language: str | None = None,
    progress: bool = True,
) -> ShardScan:
    """Read every example of the shards at `paths`; keep the good ones, count the bad ones by reason.

    paths: shard files or glob patterns (``.tar`` or ``.parquet``), scanned in the order given,
        each glob's matches sorted; a shard named twice is scanned once. An unknown suffix or a
        path that matches nothing raises ValueError before any shard is read.
    languages: the allowed page languages; an example whose language is not among them is rejected.
    max_caption_chars: longest caption kept, in characters after stripping surrounding whitespace.
    default_language: the language of examples that carry none; if None, they are rejected as
        unknown_language.

    Every example read is either kept or counted under the first reason of `REASONS` that applies;
    a uid is a duplicate if an example with that uid was kept earlier in the scan (any shard). A
    shard that cannot be read to its end (not a tar or parquet file, truncated) contributes nothing
    but one count of unreadable_shard, and is listed in report["shards_unreadable"].
    """
    shards, allowed = scan_plan(paths, languages, max_caption_chars, default_language)
    merged = ScanMerge(len(shards))
    bar = tqdm(shards, desc="scan shards", unit="shard", disable=not progress)
    for shard in bar:
        merged.add(scan_shard(shard, allowed, max_caption_chars, default_language))
        bar.set_postfix(kept=merged.kept, rejected=merged.rejected_total)
    return merged.result()


def scan_plan(paths, languages: Collection[str], max_caption_chars: int,
              default_language: str | None) -> tuple[list[str], frozenset]:
    """(shards in scan order, allowed languages) of a scan, or ValueError naming the bad path or value before
    any shard is read (see `scan_shards`)."""
    shards = _expand_shard_paths(paths)
    allowed = frozenset(languages)
    if default_language is not None and default_language not in allowed:
        raise ValueError(f"default_language {default_language!r} is not among the allowed languages {sorted(allowed)}")
    if max_caption_chars < 1:
        raise ValueError(f"max_caption_chars must be at least 1, got {max_caption_chars}")
    return shards, allowed


def load_example(record: Mapping | pd.Series) -> tuple[np.ndarray, str]:
    """Re-read one kept record from its shard: (image (H, W, 3) uint8 RGB, caption stripped).

    Only record["shard"] and record["member"] are used, so any row of `ShardScan.records` works.
    """
    shard, member = str(record["shard"]), str(record["member"])
    if shard.endswith(".tar"):
        example = _load_tar_example(shard, member)
    elif shard.endswith(".parquet"):
        example = _load_parquet_example(shard, member)
    else:
        raise ValueError(f"record shard {shard!r} (member {member!r}): expected a path ending in one of {SHARD_SUFFIXES}")
    where = f"shard {shard}, member {member}"
    if not example.image:
        raise ValueError(f"{where}: no readable image bytes (uid {example.uid!r}); was this record kept by scan_shards?")
    if example.caption is None:
        raise ValueError(f"{where}: no caption (uid {example.uid!r}); was this record kept by scan_shards?")
    try:
        with Image.open(io.BytesIO(example.image)) as im:
            pixels = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except Exception as e:  # PIL signals bad bytes with many exception types
        raise ValueError(f"{where}: image does not decode ({type(e).__name__}: {e}); expected a JPEG/PNG/WebP") from e
    return pixels, example.caption.strip()


# --- one shard -------------------------------------------------------------------------------------


@dataclasses.dataclass
class Candidate:
    """An example of a shard that passed every check but the duplicate one (which needs the other shards)."""

    position: int  # its place among the shard's examples (0, 1, ...): the scan's order inside a shard
    key: str
    uid: str
    language: str
    caption: str  # stripped
    member: str
    scores: dict[str, float]


@dataclasses.dataclass
class ShardPart:
    """What one shard contributes to a scan, on its own: a pure function of the shard (`scan_shard`).

    Rejections other than duplicate_uid are counted here; `candidates` are the examples that passed every
    other check, in shard order; whether each is kept or a duplicate is decided against the earlier shards
    (`ScanMerge`, or the Beam scan's group by uid). An unreadable shard has `error` and nothing else.
    """

    shard: str
    examples_in: int = 0
    rejected: Counter = dataclasses.field(default_factory=Counter)
    samples: dict = dataclasses.field(default_factory=dict)  # reason -> [[shard, key]], the first SAMPLES_PER_REASON
    candidates: list = dataclasses.field(default_factory=list)
    error: str | None = None

    def counts(self) -> dict:
        """The part less its candidates, as plain values (what the scan's report needs of it)."""
        return {"shard": self.shard, "examples_in": self.examples_in, "rejected": dict(self.rejected),
                "samples": self.samples, "error": self.error}

    @classmethod
    def from_counts(cls, counts: dict) -> "ShardPart":
        """The part of `counts()` (no candidates)."""
        return cls(counts["shard"], counts["examples_in"], Counter(counts["rejected"]), counts["samples"],
                   error=counts["error"])

    def reject(self, reason, key):
        self.examples_in += 1
        self.rejected[reason] += 1
        pairs = self.samples.setdefault(reason, [])
        if len(pairs) < SAMPLES_PER_REASON:
            pairs.append([self.shard, key])


def scan_shard(shard: str, allowed: Collection[str], max_caption_chars: int,
               default_language: str | None) -> ShardPart:
    """Check every example of one shard (see `scan_shards`); a shard that cannot be read to its end is one
    unreadable_shard item and contributes nothing else."""
    part = ShardPart(shard)
    try:
        for example in _read_shard(shard):
            language = example.language if example.language is not None else default_language
            reason = _reject_reason(example, language, allowed, max_caption_chars)
            if reason is None:
                part.candidates.append(Candidate(part.examples_in, example.key, example.uid, language,
                                                 example.caption.strip(), example.member, example.scores))
                part.examples_in += 1
            else:
                part.reject(reason, example.key)
    except _SHARD_ERRORS as e:
        # Nothing of a shard that failed part-way is kept or counted: it is one unreadable item.
        part = ShardPart(shard, error=f"{type(e).__name__}: {e}")
        part.reject("unreadable_shard", part.error)
    return part


def records_frame(kept: Sequence[Candidate], shard: str) -> pd.DataFrame:
    """The records of one shard's kept examples, in shard order: RECORD_COLUMNS, then one float column per
    score name in the order first seen (NaN where an example has none)."""
    columns = {"uid": [c.uid for c in kept], "language": [c.language for c in kept],
               "caption": [c.caption for c in kept], "shard": [shard] * len(kept), "member": [c.member for c in kept]}
    scores = pd.DataFrame.from_records([c.scores for c in kept], index=range(len(kept)))
    return pd.concat([pd.DataFrame(columns), scores.astype(np.float64)], axis=1)


class ScanMerge:
    """The scan of shards, merged part by part in scan order: a uid kept in an earlier shard (or earlier in
    the same shard) makes a later candidate a duplicate_uid. `result()` is the ShardScan."""

    def __init__(self, n_shards: int):
        self.n_shards = n_shards
        self.examples_in, self.counts = 0, Counter()
        self.samples = {reason: [] for reason in REASONS}
        self.kept_uids, self.frames, self.unreadable = set(), [], []

    @property
    def kept(self) -> int:
        return len(self.kept_uids)

    @property
    def rejected_total(self) -> int:
        return sum(self.counts.values())

    def add_counts(self, part: ShardPart):
        """A part's examples and rejections (not its candidates), in scan order."""
        self.examples_in += part.examples_in
        self.counts.update(part.rejected)
        for reason, pairs in part.samples.items():
            self.samples[reason].extend(pairs[: SAMPLES_PER_REASON - len(self.samples[reason])])
        if part.error is not None:
            self.unreadable.append(part.shard)

    def add(self, part: ShardPart):
        self.add_counts(part)
        kept = []
        for c in part.candidates:
            if c.uid in self.kept_uids:
                self.add_duplicate(part.shard, c.key)
            else:
                self.kept_uids.add(c.uid)
                kept.append(c)
        if kept:
            self.frames.append(records_frame(kept, part.shard))

    def add_duplicate(self, shard: str, key: str):
        """A candidate (already among examples_in) whose uid was kept before it."""
        self.counts["duplicate_uid"] += 1
        if len(self.samples["duplicate_uid"]) < SAMPLES_PER_REASON:
            self.samples["duplicate_uid"].append([shard, key])

    def report(self, kept: int) -> dict:
        return {
            "examples_in": self.examples_in,
            "kept": kept,
            "rejected": {reason: self.counts[reason] for reason in REASONS},
            "samples": self.samples,
            "shards": self.n_shards,
            "shards_unreadable": self.unreadable,
            "identity_holds": self.examples_in == kept + self.rejected_total,
            "note": UNREADABLE_NOTE,
        }

    def result(self) -> ShardScan:
        records = concat_records(self.frames)
        return ShardScan(records=records, report=self.report(len(records)))


def _reject_reason(example, language, allowed, max_caption_chars):
    """The first reason of REASONS (other than shard-level and duplicate ones) that applies, or None."""
    if example.image is None:
        return "missing_image"
    if not _decodes(example.image):
        return "corrupt_image"
    if example.caption is None:
        return "missing_caption"
    caption = example.caption.strip()
    if not caption:
        return "empty_caption"
    if len(caption) > max_caption_chars:
        return "oversized_caption"
    if language is None or language not in allowed:
        return "unknown_language"
    return None


def _decodes(data):
    """True if PIL can open and fully decode `data` (a truncated file fails here)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
    except Exception:  # PIL raises OSError, SyntaxError, ValueError, DecompressionBombError...
        return False
    return True


def _read_shard(shard):
    return _read_tar(shard) if shard.endswith(".tar") else _read_parquet(shard)


def _expand_shard_paths(paths):
    """Shard paths as str: globs expanded (sorted), duplicates dropped; ValueError naming a bad path."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    shards = {}  # insertion-ordered set
    for path in paths:
        pattern = os.path.expanduser(os.fspath(path))
        if any(c in pattern for c in "*?["):
            matches = sorted(glob.glob(pattern, recursive=True))
        else:
            matches = [pattern] if os.path.exists(pattern) else []
        if not matches:
            raise ValueError(f"shard path {os.fspath(path)!r} matches no file; expected .tar or .parquet shards")
        for match in matches:
            if not match.endswith(SHARD_SUFFIXES) or not os.path.isfile(match):
                raise ValueError(
                    f"shard path {match!r} (from {os.fspath(path)!r}) is not a file ending in one of {SHARD_SUFFIXES}"
                )
            shards[match] = None
    return list(shards)


def shard_summary(paths) -> dict:
    """What sample.shards names, as the report describes the pool: the patterns given, the shard files they match
    (count, total bytes, the first and last file name) and each file's format."""
    files = _expand_shard_paths(paths)
    return {"patterns": [os.fspath(p) for p in ([paths] if isinstance(paths, (str, os.PathLike)) else paths)],
            "files": len(files), "bytes": int(sum(os.path.getsize(f) for f in files)),
            "first": os.path.basename(files[0]), "last": os.path.basename(files[-1]),
            "formats": sorted({"webdataset" if f.endswith(".tar") else "parquet" for f in files})}


def concat_records(frames):
    """The scan's records: the kept shards' frames in scan order (empty RECORD_COLUMNS when none)."""
    if not frames:
        return pd.DataFrame({name: pd.Series(dtype=str) for name in RECORD_COLUMNS})
    return pd.concat(frames, ignore_index=True)


def _score_names(names):
    return [name for name in names if "score" in name.lower()]


# --- webdataset tar shards -------------------------------------------------------------------------


def _index_tar(shard):
    """{key: {extension: (member name, data offset, size)}} of a tar's regular files, in tar order.

    Only uncompressed tars ("r:"), so that a member's bytes can be read by seeking in the file.
    """
    index = {}
    with tarfile.open(shard, "r:") as tar:
        for info in tar:
            key, extension = _tar_key(info.name)
            if info.isfile() and extension:  # no extension, or a hidden file: not part of any example
                index.setdefault(key, {}).setdefault(extension, (info.name, info.offset_data, info.size))
    return index


def _tar_key(name):
    """(key, extension) of a tar member name, as webdataset splits it: "d/k.seg.png" -> ("d/k", "seg.png")."""
    directory, slash, base = name.rpartition("/")
    stem, _, extension = base.partition(".")
    return (directory + slash + stem, extension.lower()) if stem else (name, "")


@functools.lru_cache(maxsize=16)
def _cached_tar_index(shard, mtime_ns, size):
    return _index_tar(shard)  # keyed on mtime and size so that a rewritten shard is indexed anew


def _read_tar(shard):
    index = _index_tar(shard)
    with open(shard, "rb") as f:
        for key, members in index.items():
            yield _tar_example(f, key, members)


def _load_tar_example(shard, member):
    stat = os.stat(shard)
    index = _cached_tar_index(shard, stat.st_mtime_ns, stat.st_size)
    key, _ = _tar_key(member)
    if key not in index:
        raise ValueError(f"shard {shard}: no member {member!r} (key {key!r}); expected a member name from ShardScan.records")
    with open(shard, "rb") as f:
        return _tar_example(f, key, index[key])


def _tar_example(f, key, members):
    """Build the _Example of one tar key from its members {extension: (name, offset, size)}."""
    extension = next((e for e in IMAGE_EXTENSIONS if e in members), None)
    image = _read_member(f, members[extension]) if extension is not None else None
    meta = {}
    if "json" in members:
        try:
            meta = json.loads(_read_member(f, members["json"]))
        except ValueError:
            meta = {}  # unreadable metadata: uid falls back to the key, language to the default
        if not isinstance(meta, dict):
            meta = {}
    if "txt" in members:
        caption = _read_member(f, members["txt"]).decode("utf-8", errors="replace")
    else:
        caption = next((meta[k] for k in ("caption", "text") if isinstance(meta.get(k), str)), None)
    uid = next((meta[k] for k in ("uid", "key") if meta.get(k) not in (None, "")), key)
    language = meta.get("language")
    scores = {
        name: float(meta[name])
        for name in _score_names(meta)
        if isinstance(meta[name], (int, float)) and not isinstance(meta[name], bool)
    }
    return _Example(
        key=key,
        member=members[extension][0] if extension else key,
        uid=str(uid),
        image=image,
        caption=caption,
        language=None if language is None else str(language),
        scores=scores,
    )


def _read_member(f, entry):
    """A member's bytes; tarfile.ReadError if the file ends before them (it changed since it was indexed)."""
    name, offset, size = entry
    f.seek(offset)
    data = f.read(size)
    if len(data) != size:
        raise tarfile.ReadError(f"{f.name}: member {name} needs {size} bytes at offset {offset}, file has {len(data)}")
    return data


# --- parquet shards --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _ParquetLayout:
    """Which columns of a parquet shard hold what (None: absent)."""

    uid: str | None
    caption: str | None
    image: str | None
    image_is_struct: bool
    language: str | None
    scores: tuple[str, ...]

    @property
    def columns(self):
        names = (self.uid, self.caption, self.image, self.language, *self.scores)
        return [name for name in names if name is not None]


def _parquet_layout(schema: pa.Schema) -> _ParquetLayout:
    names = set(schema.names)

    def first(*candidates):
        return next((name for name in candidates if name in names), None)

    image, image_is_struct = None, False
    for name in PARQUET_IMAGE_COLUMNS:
        if name not in names:
            continue
        kind = schema.field(name).type
        if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
            image = name
            break
        if pa.types.is_struct(kind) and kind.get_field_index("bytes") >= 0:
            image, image_is_struct = name, True
            break
    numeric = [
        field.name
        for field in schema
        if pa.types.is_integer(field.type) or pa.types.is_floating(field.type)
    ]
    return _ParquetLayout(
        uid=first("uid", "key"),
        caption=first("caption", "text"),
        image=image,
        image_is_struct=image_is_struct,
        language=first("language"),
        scores=tuple(_score_names(numeric)),
    )


def _read_parquet(shard):
    with pq.ParquetFile(shard) as pf:
        yield from _parquet_examples(shard, pf, _parquet_layout(pf.schema_arrow), row_groups=None, first_row=0)


def _parquet_examples(shard, pf, layout, row_groups, first_row):
    """_Example per row of `row_groups` (all if None), rows numbered from `first_row`."""
    row = first_row
    batches = pf.iter_batches(batch_size=PARQUET_BATCH_ROWS, row_groups=row_groups, columns=layout.columns)
    for batch in batches:
        uids, captions, languages = (_pylist(batch, name) for name in (layout.uid, layout.caption, layout.language))
        if layout.image is not None and layout.image_is_struct:
            images = batch.column(layout.image).field("bytes").to_pylist()
        else:
            images = _pylist(batch, layout.image)
        scores = {name: _pylist(batch, name) for name in layout.scores}
        for i in range(batch.num_rows):
            uid = uids[i] if uids[i] not in (None, "") else f"{os.path.basename(shard)}:{row}"
            yield _Example(
                key=str(row),
                member=str(row),
                uid=str(uid),
                image=images[i],
                caption=captions[i] if isinstance(captions[i], str) else None,
                language=None if languages[i] is None else str(languages[i]),
                scores={name: float(v[i]) for name, v in scores.items() if v[i] is not None},
            )
            row += 1


def _pylist(batch, name):
    """A column's values as a Python list; all None when the shard has no such column (name None)."""
    return batch.column(name).to_pylist() if name is not None else [None] * batch.num_rows


def _load_parquet_example(shard, member):
    try:
        row = int(member)
    except ValueError:
        raise ValueError(f"shard {shard}: member {member!r} is not a row index; expected an integer string") from None
    if row < 0:
        raise ValueError(f"shard {shard}: row {row} is negative; expected a row index from ShardScan.records")
    with pq.ParquetFile(shard) as pf:
        first_row = 0
        for group in range(pf.metadata.num_row_groups):
            rows = pf.metadata.row_group(group).num_rows
            if row < first_row + rows:
                break
            first_row += rows
        else:
            raise ValueError(f"shard {shard}: row {row} out of range; the shard has {first_row} rows")
        layout = _parquet_layout(pf.schema_arrow)
        for example in _parquet_examples(shard, pf, layout, row_groups=[group], first_row=first_row):
            if example.member == member:
                return example
    raise ValueError(f"shard {shard}: row {row} not found")  # unreachable unless metadata lies

