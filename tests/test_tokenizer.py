"""The text tokenizer: deterministic, language-balanced, lossless, fixed-length ids."""
import io
import pickle
import tarfile

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from vlscale.config import LOW_RESOURCE
from vlscale.data import sampling
from vlscale.data.sampling import synthetic_subsets
from vlscale.data.shards import scan_shards
from vlscale.data.subsets import NestedSubsets
from vlscale.data.tokenizer import (
    EOS_ID,
    OVERSAMPLE,
    PAD_ID,
    UNK_ID,
    Tokenizer,
    balanced_caption_sample,
    balanced_record_captions,
    caption_sample_ids,
    language_stats,
    pool_caption_sample,
    train_tokenizer,
)
from vlscale.world.ids import HELDOUT_BIT, LOCAL_BITS, STRATUM_BITS, TOKENIZER_BIT, split_ids
from vlscale.world.truth import truth

VOCAB = 8000
PER_LANGUAGE = 600


@pytest.fixture(scope="module")
def sample(world):
    # the cpu profile's pool: every low-resource language has hundreds of pages in it
    return balanced_caption_sample(world, synthetic_subsets(world, 4_000_000, key=0), 1.0, PER_LANGUAGE, key=1)


@pytest.fixture(scope="module")
def model(sample, tmp_path_factory):
    return train_tokenizer(sample, VOCAB, tmp_path_factory.mktemp("tok") / "a.model")


@pytest.fixture(scope="module")
def tok(model):
    return Tokenizer(model)


def test_the_sample_is_balanced_over_caption_languages(world, sample):
    sizes = {language: len(texts) for language, texts in sample.items()}
    assert max(sizes.values()) == PER_LANGUAGE
    for language in ("en", "ja", "te", "bn", "hi", "sw", "fil", "he"):
        assert sizes[language] == PER_LANGUAGE, language
    # Maori and Quechua have a few pages only: capped by what they have, but present
    assert 0 < sizes["mi"] < PER_LANGUAGE and 0 < sizes["quz"] < PER_LANGUAGE
    assert "und" not in sizes  # an untagged page's caption is in some language
    again = balanced_caption_sample(world, synthetic_subsets(world, 4_000_000, key=0), 1.0, PER_LANGUAGE, key=1)
    assert again == sample


@settings(max_examples=30, deadline=None)
@given(sizes=st.lists(st.integers(0, 2**LOCAL_BITS), min_size=1, max_size=40), pool_key=st.integers(0, 2**32),
       key=st.integers(0, 2**32), per_language=st.integers(1, 300))
def test_the_sample_lies_outside_every_pool_and_every_benchmark(sizes, pool_key, key, per_language):
    subsets = NestedSubsets(sizes, pool_key)
    ids = caption_sample_ids(subsets, 1.0, per_language, key)
    strata, _ = split_ids(ids)
    assert np.bincount(strata & ((1 << STRATUM_BITS) - 1), minlength=len(sizes)).tolist() == [
        min(n, OVERSAMPLE * per_language) for n in sizes]
    # a pool's ids are make_ids(s, k), s < 2^STRATUM_BITS, k < 2^LOCAL_BITS: all below 2^52
    assert np.all(ids >= 1 << (LOCAL_BITS + STRATUM_BITS)) and np.all(ids & (1 << TOKENIZER_BIT))
    assert not np.any(ids & (1 << HELDOUT_BIT))  # benchmark analogs set bit 62
    assert not subsets.contains(ids, 1.0).any()
    full = NestedSubsets([2**LOCAL_BITS] * len(sizes), pool_key)  # every pool of these strata is inside it
    assert not full.contains(ids, 1.0).any()
    assert np.unique(ids).size == ids.size


def test_the_sample_pages_are_pages_of_their_language(world):
    subsets = synthetic_subsets(world, 4_000_000, key=0)
    ids = caption_sample_ids(subsets, 1.0, PER_LANGUAGE, key=1)
    strata, _ = split_ids(ids)
    np.testing.assert_array_equal(truth(world, ids)["stratum"], strata & ((1 << STRATUM_BITS) - 1))
    assert not np.isin(ids, subsets.ids(1.0)).any()


def test_the_sample_stage_output_gives_the_same_sample(world, tmp_path):
    subsets = synthetic_subsets(world, 200_000, key=0)
    meta = {"source": "synthetic", "world_fingerprint": world.fingerprint(),
            "provenance": {"params": {"sample": {"pool_size": 200_000}}}}
    sampling.write_subsets(tmp_path, subsets, [0.1, 1.0], sampling.mixtures(subsets, [0.1, 1.0], {}, 0), 0, meta)
    assert pool_caption_sample(world, tmp_path, 50, key=2) == balanced_caption_sample(world, subsets, 1.0, 50, key=2)


def test_training_is_deterministic(sample, model, tmp_path):
    again = train_tokenizer(sample, VOCAB, tmp_path / "b.model")
    assert again.read_bytes() == model.read_bytes()


def test_the_vocab_size_is_honoured_and_the_special_ids_are_mt5s(tok, sample, tmp_path):
    assert tok.vocab_size == VOCAB
    assert (tok.sp.pad_id(), tok.sp.eos_id(), tok.sp.unk_id(), tok.sp.bos_id()) == (PAD_ID, EOS_ID, UNK_ID, -1)
    assert (PAD_ID, EOS_ID, UNK_ID) == (0, 1, 2)
    with pytest.raises(ValueError, match="vocab_size=1000000"):
        train_tokenizer(sample, 1_000_000, tmp_path / "c.model")


def test_every_language_round_trips(tok, sample):
    for language, texts in sample.items():
        tokens = tok.encode(texts, max_len=128)
        fits = tokens[:, -1] == PAD_ID  # eos is not the last position: nothing was cut
        assert fits.mean() > 0.99, language
        decoded = tok.decode(tokens[fits])
        assert decoded == [t for t, f in zip(texts, fits) if f], language
        assert UNK_ID not in tokens, language


def test_low_resource_scripts_get_pieces_not_bytes(tok, sample):
    for language in ("te", "bn", "hi"):
        pieces = tok.sp.encode(sample[language])
        per_char = sum(map(len, pieces)) / sum(map(len, sample[language]))
        # characters one by one would be 1 token per character, byte fallback ~3 (UTF-8 of Indic)
        assert per_char < 0.6, (language, per_char)
        assert not any(tok.sp.is_byte(i) for p in pieces for i in p), language
    assert set(LOW_RESOURCE) <= set(sample)


def test_language_stats_say_how_each_language_is_cut(tok, sample):
    stats = language_stats(tok, sample, max_len=16).set_index("language")
    assert list(stats.index) == list(sample)
    te = stats.loc["te"]
    assert te["low_resource"] and not stats.loc["en", "low_resource"]
    assert te["captions"] == PER_LANGUAGE and te["tokens"] == sum(len(p) for p in tok.sp.encode(sample["te"]))
    assert te["tokens_per_char"] == pytest.approx(te["tokens"] / sum(map(len, sample["te"])))
    assert te["byte_fallback_share"] == 0 and 0 <= te["truncated"] <= 1
    assert stats.loc["zh", "byte_fallback_share"] > 0  # the rarest Chinese characters are left to bytes


def test_encode_pads_to_a_fixed_length_with_one_eos(tok, sample):
    long_text = " ".join(sample["en"][:20])
    tokens = tok.encode(["", "Kenya", long_text], max_len=8)
    assert tokens.dtype == np.int32 and tokens.shape == (3, 8)
    assert tokens[0].tolist() == [EOS_ID] + [PAD_ID] * 7
    n = len(tok.sp.encode("Kenya"))
    assert tokens[1, :n].tolist() == tok.sp.encode("Kenya")
    assert tokens[1, n] == EOS_ID and (tokens[1, n + 1:] == PAD_ID).all()
    assert tokens[2, :7].tolist() == tok.sp.encode(long_text)[:7] and tokens[2, 7] == EOS_ID
    assert tok.encode([], max_len=8).shape == (0, 8)
    sticky = Tokenizer(tok.path, pad_with_eos=True).encode(["Kenya"], max_len=8)  # big_vision's eos="sticky"
    assert sticky[0, :n].tolist() == tokens[1, :n].tolist() and (sticky[0, n:] == EOS_ID).all()
    with pytest.raises(ValueError, match="max_len"):
        tok.encode(["x"], max_len=1)


def test_unknown_characters_fall_back_to_bytes(tok):
    text = "🦜 ꦲꦤꦕꦫꦏ"  # an emoji and Javanese script: in no caption
    tokens = tok.encode([text], max_len=64)
    assert UNK_ID not in tokens
    assert tok.decode(tokens) == [text]


def test_a_tokenizer_pickles_for_worker_processes(tok, sample):
    copy = pickle.loads(pickle.dumps(tok))
    np.testing.assert_array_equal(copy.encode(sample["te"][:50], 32), tok.encode(sample["te"][:50], 32))


def test_a_bad_model_path_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere/spiece.model"):
        Tokenizer(tmp_path / "nowhere" / "spiece.model")
    (tmp_path / "junk.model").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="junk.model"):
        Tokenizer(tmp_path / "junk.model")


def _png(seed):
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def test_real_pool_captions_are_balanced_by_language(world, tmp_path):
    captions = {"en": [f"a red stove {i}" for i in range(30)], "sw": [f"jiko jekundu {i}" for i in range(4)]}
    with tarfile.open(tmp_path / "a.tar", "w") as tar:
        for language, texts in captions.items():
            for i, text in enumerate(texts):
                meta = f'{{"uid": "{language}{i}", "language": "{language}"}}'.encode()
                for ext, data in (("png", _png(i)), ("txt", text.encode()), ("json", meta)):
                    info = tarfile.TarInfo(f"{language}{i:03d}.{ext}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    records = scan_shards([str(tmp_path / "a.tar")], languages=world.strata, progress=False).records
    sample = balanced_record_captions(records, per_language=10, key=0)
    assert {k: len(v) for k, v in sample.items()} == {"en": 10, "sw": 4}
    assert set(sample["en"]) <= set(captions["en"]) and sorted(sample["sw"]) == sorted(captions["sw"])
    assert balanced_record_captions(records.sample(frac=1, random_state=0), 10, key=0) == sample
    with pytest.raises(ValueError, match="member"):
        balanced_record_captions(pd.DataFrame({"uid": ["x"], "language": ["en"]}), 10, key=0)


def test_released_siglip_tokenisation_equals_transformers_siglip_tokenizer(tmp_path):
    """Same SentencePiece file, same ids: canonical text, pieces cut to max_len - 1, eos, eos as padding."""
    transformers = pytest.importorskip("transformers")
    corpus = [f"{a} photo of the {c} in {p}" for a in ("a", "the", "one")
              for c in ("dog", "cat", "house", "tree", "car", "façade", "猫") for p in ("paris", "tokyo", "lagos")] * 5
    path = train_tokenizer(corpus, 285, tmp_path / "spiece.model", normalization="nmt_nfkc")
    texts = ["A photo of a Dog.", "Two cats, sleeping on a sofa!", "  extra   spaces\there ",
             "Ünïcödé façade — “quotes”", "日本の猫", "a_b-c (d) [e]", "numbers 12,345.6%", "x" * 200, ""]
    hf = transformers.SiglipTokenizer(str(path))
    want = hf(texts, padding="max_length", max_length=16, truncation=True)["input_ids"]
    got = Tokenizer.released_siglip(path).encode(texts, 16)
    assert got.tolist() == want
    assert (got[:, -1] == 1).all()  # the pooled last position is always eos
    plain = Tokenizer(path).encode(texts, 16)
    assert plain.tolist() != want  # without canonical text and sticky eos the ids differ
