"""The text tokenizer: a multilingual SentencePiece model trained on a language-balanced caption sample.

mT5's conventions, so that our model and the real mT5 `spiece.model` are interchangeable: a unigram
model, pad id 0, eos id 1, unk id 2, no bos. One difference: our model does not normalise text
(mT5's `nmt_nfkc` is a choice of `train_tokenizer`), so decode(encode(x)) == x for every caption that
fits. NFKC would rewrite 19% of our Chinese captions (full-width punctuation), 12% of the Thai ones
(SARA AM) and the zero-width non-joiner Persian writes inside words. Byte fallback makes
every caption encodable (no unk), and a character coverage below 1 keeps the rarest CJK characters
out of the alphabet (they fall back to bytes).

The training sample is balanced over caption languages (the same number of captions per language,
capped by what each language has), so that Telugu or Bengali get pieces of their own, not just bytes:
trained on the natural mix, English and Japanese would take most of the vocabulary. On a synthetic
pool the sample's pages are fresh draws of the same web, with ids in the TOKENIZER_BIT range
(world/ids.py), in no training pool and no benchmark; on a real pool (webdataset or parquet shards)
there is no other web to draw from, so the sample is captions of the pool itself.

Token ids have a fixed length: SigLIP's text tower pools the LAST token, so every caption is encoded
as its pieces (cut to max_len - 1), then eos, then padding, always exactly max_len ids; the padding
is the pad id, or eos with `pad_with_eos` (big_vision's SigLIP configs tokenise with eos="sticky",
pad_value=eos, so that the last token is always eos).
"""
from __future__ import annotations

import io
import itertools
import os
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import sentencepiece as spm

from vlscale.config import LOW_RESOURCE
from vlscale.data.input import read_sample
from vlscale.data.shards import load_example
from vlscale.data.subsets import KeyedPermutation, derive_key, uid_ranks
from vlscale.world.captions import captions
from vlscale.world.ids import LOCAL_BITS, TOKENIZER_BIT, make_ids
from vlscale.world.truth import truth

PAD_ID, EOS_ID, UNK_ID = 0, 1, 2  # mT5's
TOKENIZER_PATH = Path("data/tokenizer/spm.model")  # the tokenizer stage's model, read by train and evaluate
CHARACTER_COVERAGE = 0.9995  # SentencePiece's advice for CJK; rarer characters use byte fallback
OVERSAMPLE = 2  # draws per stratum per wanted caption: some captions are in English, not the page language
_TOKENIZER_STRATUM = 1 << (TOKENIZER_BIT - LOCAL_BITS)  # OR-ed into the stratum given to make_ids


# ---------------------------------------------------------------------------------------------
# A language-balanced sample of captions


def caption_sample_ids(subsets, fraction, per_language: int, key: int) -> np.ndarray:
    """Ids of the tokenizer's synthetic caption sample: int64 [N], stratum by stratum.

    Stratum s gives min(OVERSAMPLE * per_language, subsets.counts(fraction)[s]) ids: as many pages as
    the subset would have given, so a language rare in the pool stays rare, but pages of the
    TOKENIZER_BIT range (world/ids.py), drawn by a keyed permutation of its 2^40 local indices. They
    are in no pool of any size and no benchmark, so the tokenizer never sees a training or test caption.
    """
    if per_language < 1:
        raise ValueError(f"per_language must be >= 1, got {per_language}")
    counts = np.minimum(subsets.counts(fraction), OVERSAMPLE * per_language).tolist()
    ids = [make_ids(_TOKENIZER_STRATUM | s,
                    KeyedPermutation(1 << LOCAL_BITS, derive_key(key, TOKENIZER_BIT, s)).forward(np.arange(n)))
           for s, n in enumerate(counts) if n]
    return np.concatenate(ids) if ids else np.zeros(0, np.int64)


def balanced_caption_sample(world, subsets, fraction, per_language: int, key: int) -> dict[str, list[str]]:
    """Up to `per_language` captions per caption language, of pages like the synthetic subset of `fraction`.

    subsets: the pool's `NestedSubsets` (strata = world.strata); their counts cap the pages drawn per
    page language, the pages themselves are outside every pool (`caption_sample_ids`). Captions are
    grouped by the caption language of the ground truth (an untagged page's caption is in some
    language; some pages have English captions); each language keeps its first `per_language`.
    Returns {language: captions}, languages in world.strata order, languages without any caption
    left out. Deterministic in (world, subsets, fraction, key).
    """
    ids = caption_sample_ids(subsets, fraction, per_language, key)
    gt = truth(world, ids)
    by_language = {name: [] for name in world.strata}
    for language, caption in zip(gt["caption_language"].tolist(), captions(world, ids, gt)):
        by_language[world.strata[language]].append(caption)
    return {name: texts[:per_language] for name, texts in by_language.items() if texts}


def balanced_record_captions(records: pd.DataFrame, per_language: int, key: int) -> dict[str, list[str]]:
    """Up to `per_language` captions per language of a real pool's records.

    These are captions of the pool itself (a real pool has no other web to draw from): a model trained
    on the pool trains on them too. records: rows with uid, language, shard, member (e.g. a
    `uids_<label>.parquet` of the sample stage). Per language, the records of lowest keyed uid hash
    (`uid_ranks`) are read with `load_example`. Returns {language: captions}, languages sorted.
    """
    if per_language < 1:
        raise ValueError(f"per_language must be >= 1, got {per_language}")
    missing = {"uid", "language", "shard", "member"} - set(records.columns)
    if missing:
        raise ValueError(f"records lack columns {sorted(missing)}; expected uid, language, shard, member")
    names = sorted(records["language"].unique())
    strata = records["language"].map({n: i for i, n in enumerate(names)}).to_numpy(np.int64)
    ranks = uid_ranks(records["uid"].tolist(), strata, derive_key(key, 1))
    out = {}
    for s, name in enumerate(names):
        rows = np.flatnonzero((strata == s) & (ranks < per_language))
        rows = rows[np.argsort(ranks[rows])]
        out[name] = [load_example(records.iloc[r])[1] for r in rows]
    return out


def pool_caption_sample(world, sample_dir: str | os.PathLike, per_language: int, key: int) -> dict[str, list[str]]:
    """The balanced caption sample of the largest subset the sample stage wrote to `sample_dir`.

    A synthetic pool's largest subset (normally the whole pool) goes through `balanced_caption_sample`
    (pages outside every pool, as many per language as the subset has), a real pool's largest subset
    with a uid list through `balanced_record_captions` (the pool's own captions).
    """
    _, entry, pool = read_sample(world, sample_dir)
    if isinstance(pool, pd.DataFrame):
        return balanced_record_captions(pool, per_language, key)
    return balanced_caption_sample(world, pool, entry["fraction"], per_language, key)


# ---------------------------------------------------------------------------------------------
# Training


def train_tokenizer(captions_by_language: Mapping[str, Sequence[str]] | Iterable[str], vocab_size: int,
                    out_path: str | os.PathLike, *, per_language: int | None = None, seed: int = 0,
                    character_coverage: float = CHARACTER_COVERAGE, normalization: str = "identity") -> Path:
    """Train a unigram SentencePiece model and write it to `out_path` (a .model file); returns the path.

    captions_by_language: {language: captions} (each language cut to its first `per_language`
    captions if given, then interleaved round-robin so that no language comes in one block), or any
    iterable of captions, used as it is. The vocabulary has exactly `vocab_size` pieces (an error if
    the captions cannot fill it), pad 0, eos 1, unk 2, and byte fallback. normalization: a
    SentencePiece rule name ("identity": none; "nmt_nfkc": mT5's).
    Deterministic: the same captions and arguments give a byte-identical file (one thread, fixed seed).
    """
    if isinstance(captions_by_language, Mapping):
        lists = [list(texts)[:per_language] for _, texts in sorted(captions_by_language.items())]
        sentences = [texts[i] for i in range(max(map(len, lists), default=0)) for texts in lists if i < len(texts)]
    else:
        sentences = list(captions_by_language)
    sentences = [s for s in sentences if s.strip()]
    if not sentences:
        raise ValueError("no non-empty captions to train the tokenizer on")
    model = io.BytesIO()
    spm.set_random_generator_seed(seed)  # global in SentencePiece; its trainer takes no seed argument
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences), model_writer=model, model_type="unigram", vocab_size=vocab_size,
            character_coverage=character_coverage, byte_fallback=True, normalization_rule_name=normalization,
            pad_id=PAD_ID, eos_id=EOS_ID, unk_id=UNK_ID, bos_id=-1, num_threads=1,
            input_sentence_size=0, max_sentence_length=1 << 16, minloglevel=2)
    except RuntimeError as e:  # e.g. "Vocabulary size too high (8000). Please set it to a value <= 5321."
        raise ValueError(f"tokenizer training on {len(sentences)} captions with vocab_size={vocab_size} "
                         f"failed: {e}") from None
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(model.getvalue())
    return out_path


# ---------------------------------------------------------------------------------------------
# Encoding


_ASCII_PUNCTUATION = str.maketrans("", "", string.punctuation)


def canonical_text(text: str) -> str:
    """big_vision's canonical prompt text (prompt_engineering.canonicalize_text): lower case, ASCII
    punctuation removed, whitespace collapsed and stripped ("Two cats, asleep!" -> "two cats asleep")."""
    return re.sub(r"\s+", " ", text.lower().translate(_ASCII_PUNCTUATION)).strip()


class Tokenizer:
    """A SentencePiece model (ours or mT5's spiece.model) that encodes captions to fixed-length ids.

    pad_with_eos: pad with eos instead of the pad id (see the module's docstring).
    canonicalize: before encoding, lower-case, drop ASCII punctuation and collapse whitespace, as
        big_vision's SigLIP evaluations and transformers' SiglipTokenizer do (`released_siglip`).
    Picklable (it carries the model's bytes), so Grain worker processes can use it.
    """

    def __init__(self, path: str | os.PathLike, pad_with_eos: bool = False, canonicalize: bool = False):
        self.path = str(path)
        self.pad_with_eos, self.canonicalize = pad_with_eos, canonicalize
        try:
            proto = Path(path).read_bytes()
        except OSError as e:
            raise FileNotFoundError(f"tokenizer model {self.path!r} cannot be read ({e.strerror}); "
                                    f"expected a SentencePiece .model file") from None
        self._load(proto)

    def _load(self, proto: bytes):
        self._proto = proto
        self.sp = spm.SentencePieceProcessor()
        try:
            self.sp.LoadFromSerializedProto(proto)
        except RuntimeError as e:
            raise ValueError(f"tokenizer model {self.path!r} is not a SentencePiece model: {e}") from None
        self.pad_id, self.eos_id = self.sp.pad_id(), self.sp.eos_id()
        if self.pad_id < 0 or self.eos_id < 0:
            raise ValueError(f"tokenizer model {self.path!r} has pad id {self.pad_id} and eos id {self.eos_id}; "
                             f"both must be defined (mT5: pad 0, eos 1)")

    @classmethod
    def released_siglip(cls, path: str | os.PathLike) -> Tokenizer:
        """The tokenisation released SigLIP checkpoints were trained and evaluated with: canonical
        text, pieces, eos, then eos as padding ("sticky" eos, so the pooled last token is eos). Equal to
        transformers' SiglipTokenizer(path)(texts, padding="max_length", truncation=True) (tested)."""
        return cls(path, pad_with_eos=True, canonicalize=True)

    def __getstate__(self):
        return {"path": self.path, "proto": self._proto, "pad_with_eos": self.pad_with_eos,
                "canonicalize": self.canonicalize}

    def __setstate__(self, state):
        self.path, self.pad_with_eos = state["path"], state["pad_with_eos"]
        self.canonicalize = state.get("canonicalize", False)
        self._load(state["proto"])

    def __repr__(self):
        return f"Tokenizer({self.path!r}, vocab_size={self.vocab_size})"

    @property
    def vocab_size(self) -> int:
        """Number of token ids (ids are in [0, vocab_size))."""
        return self.sp.vocab_size()

    def encode(self, texts: Sequence[str], max_len: int) -> np.ndarray:
        """Token ids of `texts`: int32 [N, max_len].

        Row i is the pieces of texts[i] cut to max_len - 1, then eos, then padding up to max_len
        (pad id, or eos if pad_with_eos), so the last position is eos or padding.
        """
        if max_len < 2:
            raise ValueError(f"max_len must be >= 2 (at least one piece and eos), got {max_len}")
        texts = [canonical_text(t) for t in texts] if self.canonicalize else list(texts)
        pieces = [ids[:max_len - 1] for ids in self.sp.encode(texts, out_type=int, num_threads=1)]
        lengths = np.array([len(ids) for ids in pieces], np.int64)
        out = np.full((len(pieces), max_len), self.eos_id if self.pad_with_eos else self.pad_id, np.int32)
        out[np.arange(max_len) < lengths[:, None]] = np.fromiter(itertools.chain.from_iterable(pieces), np.int32,
                                                                 int(lengths.sum()))
        out[np.arange(len(pieces)), lengths] = self.eos_id
        return out

    def decode(self, tokens) -> list[str]:
        """Texts of token rows (int [N, L]); pad and eos are dropped."""
        tokens = np.atleast_2d(np.asarray(tokens))
        return [self.sp.decode([int(t) for t in row if t not in (self.pad_id, self.eos_id)]) for row in tokens]


def language_stats(tokenizer: Tokenizer, captions_by_language: Mapping[str, Sequence[str]],
                   max_len: int) -> pd.DataFrame:
    """How the tokenizer cuts each language: one row per language.

    Columns: language, low_resource, captions, characters, tokens (pieces, eos not counted),
    tokens_per_char, byte_fallback_share (of the tokens), truncated (share of captions whose pieces
    and eos exceed max_len).
    """
    rows = []
    for language, texts in captions_by_language.items():
        pieces = tokenizer.sp.encode(list(texts), out_type=int)
        tokens = sum(map(len, pieces))
        characters = sum(map(len, texts))
        rows.append(dict(language=language, low_resource=language in LOW_RESOURCE, captions=len(texts),
                         characters=characters, tokens=tokens, tokens_per_char=tokens / max(characters, 1),
                         byte_fallback_share=sum(tokenizer.sp.is_byte(i) for p in pieces for i in p) / max(tokens, 1),
                         truncated=float(np.mean([len(p) + 1 > max_len for p in pieces])) if pieces else 0.0))
    return pd.DataFrame(rows)
