"""The training input: compute-matched, reshuffled every epoch, exactly restorable, on synthetic and real pools."""
import json
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vlscale.data import sampling
from vlscale.data.input import (
    ShardSource,
    StreamPlan,
    SyntheticSource,
    center_crop_resize,
    load_source,
    stream_plan,
    train_stream,
)
from vlscale.data.mixture import Mixture, low_resource_targets
from vlscale.data.shards import load_example
from vlscale.data.tokenizer import EOS_ID, Tokenizer, balanced_caption_sample, pool_caption_sample, train_tokenizer
from vlscale.world.ids import LOCAL_BITS

POOL = 200_000  # the smoke profile's pool
MAX_LEN = 32


@pytest.fixture(scope="module")
def subsets(world):
    return sampling.synthetic_subsets(world, POOL, key=0)


@pytest.fixture(scope="module")
def tok(world, subsets, tmp_path_factory):
    sample = balanced_caption_sample(world, subsets, 1.0, per_language=200, key=0)
    return Tokenizer(train_tokenizer(sample, 4000, tmp_path_factory.mktemp("tok") / "t.model"))


def batches(source, tok, batch_size, examples_seen, seed=0, **kw):
    iterator = iter(train_stream(source, tok, batch_size, examples_seen, seed, MAX_LEN,
                                 process_index=kw.pop("process_index", 0), process_count=kw.pop("process_count", 1),
                                 **kw))
    return list(iterator)


def stream_ids(stream) -> np.ndarray:
    return np.concatenate([(b["id_hi"].astype(np.int64) << 32) | b["id_lo"] for b in stream])


def test_every_subset_size_gets_the_same_compute(world, subsets, tok):
    small, full = SyntheticSource(world, subsets, 0.01), SyntheticSource(world, subsets, 1.0)
    seen = POOL  # one pass over the whole pool
    a, b = batches(small, tok, 1000, seen), batches(full, tok, 1000, seen)
    assert len(a) == len(b) == 200
    assert [int(x["examples_seen"]) for x in a] == [1000 * (i + 1) for i in range(200)]
    ids = stream_ids(b)
    np.testing.assert_array_equal(np.sort(ids), subsets.ids(1.0))  # the pool, each example once
    repeats = Counter(stream_ids(a).tolist())
    assert set(repeats) == set(subsets.ids(0.01).tolist())  # the 1% subset, repeated ~100 times each
    expected = seen / len(small)
    assert min(repeats.values()) >= np.floor(expected) and max(repeats.values()) <= np.ceil(expected)
    assert stream_plan(small, 1000, seen, 0).epochs == pytest.approx(expected)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=1, max_size=4).filter(any), st.integers(1, 50), st.integers(1, 4),
       st.integers(1, 400), st.integers(0, 2**64 - 1))
def test_the_processes_together_read_every_epoch_as_a_permutation(counts, batch_size, processes, seen, seed):
    mixture = Mixture(np.array(counts), [f"l{i}" for i in range(len(counts))], {}, key=1)
    plans = [StreamPlan(len(mixture), seen, batch_size, seed, p, processes) for p in range(processes)]
    steps = plans[0].num_batches
    assert (steps - 1) * batch_size * processes < seen <= steps * batch_size * processes
    stream = np.concatenate([plan.positions(mixture, step) for step in range(steps) for plan in plans])
    m = len(mixture)
    for e in range(len(stream) // m):  # every whole epoch reads each mixture position once
        np.testing.assert_array_equal(np.sort(stream[e * m:(e + 1) * m]), np.arange(m))


def test_a_batch_holds_ids_tokens_and_the_examples_seen(world, subsets, tok):
    batch = batches(SyntheticSource(world, subsets, 0.01), tok, 64, 64)[0]
    assert set(batch) == {"id_hi", "id_lo", "stratum", "tokens", "examples_seen"}
    assert batch["id_hi"].dtype == batch["id_lo"].dtype == np.uint32 and batch["id_hi"].shape == (64,)
    assert batch["tokens"].dtype == np.int32 and batch["tokens"].shape == (64, MAX_LEN)
    assert batch["examples_seen"].dtype == np.int64 and batch["examples_seen"].shape == ()
    ids = stream_ids([batch])
    np.testing.assert_array_equal(batch["stratum"], ids >> LOCAL_BITS)
    from vlscale.world.captions import captions

    assert (batch["tokens"] == EOS_ID).sum(1).tolist() == [1] * 64
    np.testing.assert_array_equal(batch["tokens"], tok.encode(captions(world, ids), MAX_LEN))


def test_every_epoch_has_its_own_order(world, subsets, tok):
    source = SyntheticSource(world, subsets, 0.01)
    m = len(source)
    ids = stream_ids(batches(source, tok, 500, 3 * m))
    epochs = [ids[e * m:(e + 1) * m] for e in range(3)]
    for e in range(3):
        np.testing.assert_array_equal(np.sort(epochs[e]), subsets.ids(0.01))
    assert not np.array_equal(epochs[0], epochs[1]) and not np.array_equal(epochs[1], epochs[2])
    assert np.mean(epochs[0] == epochs[1]) < 0.01


def test_the_stream_is_a_function_of_its_seed(world, subsets, tok):
    source = SyntheticSource(world, subsets, 0.01)
    a = batches(source, tok, 256, 2048, seed=3)
    b = batches(SyntheticSource(world, subsets, 0.01), tok, 256, 2048, seed=3)  # built anew
    for x, y in zip(a, b):
        assert x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x)
    assert not np.array_equal(stream_ids(a), stream_ids(batches(source, tok, 256, 2048, seed=4)))


def _same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for k in x:
            assert x[k].dtype == y[k].dtype and np.array_equal(x[k], y[k]), k


@pytest.mark.parametrize("num_workers", [0, 2])
def test_a_restored_iterator_replays_the_stream_bit_for_bit(world, subsets, tok, num_workers):
    source = SyntheticSource(world, subsets, 0.01)  # 1999 examples: epoch 1 begins inside step 15
    make = lambda: iter(train_stream(source, tok, 128, 40 * 128, 7, MAX_LEN, process_index=0,  # noqa: E731
                                     process_count=1, num_workers=num_workers))
    reference = batches(source, tok, 128, 40 * 128, seed=7)  # uninterrupted, no workers
    # mid-epoch, and just before the batch that crosses into epoch 1 (workers take ~15 s to start: one restore)
    checkpoints = (6, 15) if num_workers == 0 else (15,)
    it, got, states = make(), [], {}
    for step in range(40):
        if step in checkpoints:
            states[step] = json.loads(json.dumps(it.get_state()))  # a checkpoint stores it as JSON
        got.append(next(it))
    with pytest.raises(StopIteration):
        next(it)
    it.close()
    _same(got, reference)
    for step, state in states.items():
        restored = make()  # a fresh pipeline, as after a restart
        restored.set_state(state)
        _same(list(restored), reference[step:])
        restored.close()


def test_processes_read_disjoint_slices_of_the_global_batch(world, subsets, tok):
    source = SyntheticSource(world, subsets, 0.01)
    whole = batches(source, tok, 300, 3000)
    parts = [batches(source, tok, 100, 3000, process_index=p, process_count=3) for p in range(3)]
    assert len(whole) == len(parts[0]) == 10
    for step, batch in enumerate(whole):
        for key in ("id_hi", "id_lo", "tokens"):
            np.testing.assert_array_equal(batch[key], np.concatenate([p[step][key] for p in parts]))
        assert all(int(p[step]["examples_seen"]) == int(batch["examples_seen"]) for p in parts)
    with pytest.raises(ValueError, match="process_index 3"):
        stream_plan(source, 100, 3000, 0, process_index=3, process_count=3)


def test_the_rebalanced_stream_has_the_low_resource_shares(world, subsets, tok):
    with pytest.warns(UserWarning, match="'mi' has no examples"):  # 200k pages hold no Maori at 10%
        source = SyntheticSource(world, subsets, 0.1, low_resource_targets())
    m = len(source)
    strata = np.concatenate([b["stratum"] for b in batches(source, tok, 1000, 2 * m)])[:2 * m]
    counts = np.bincount(strata, minlength=len(world.strata))
    realised = source.mixture.realised_counts
    assert {name: int(counts[s]) for s, name in enumerate(world.strata)} == {k: 2 * v for k, v in realised.items()}
    for language in ("bn", "fil", "he", "hi", "sw", "te"):
        assert counts[world.stratum_of(language)] / (2 * m) == pytest.approx(0.01, abs=1e-4)
    natural = SyntheticSource(world, subsets, 0.1)
    assert natural.mixture.realised_counts == dict(zip(world.strata, subsets.counts(0.1).tolist()))


def test_a_synthetic_source_loads_from_the_sample_stage(world, subsets, tmp_path):
    fractions = [0.01, 1.0]
    with pytest.warns(UserWarning, match="cannot be upsampled"):  # no Maori, Swahili, Telugu in 1%
        mixes = sampling.mixtures(subsets, fractions, low_resource_targets(), key=0)
    meta = {"source": "synthetic", "world_fingerprint": world.fingerprint(),
            "provenance": {"params": {"sample": {"pool_size": POOL}}}}
    sampling.write_subsets(tmp_path, subsets, fractions, mixes, 10**6, meta)
    with pytest.warns(UserWarning):
        source = load_source(world, tmp_path, "1pct", rebalanced=True)
    assert source.mixture.realised_counts == mixes[0.01].realised_counts
    assert subsets.contains(source.ids(np.arange(len(source))), 0.01).all()
    assert len(load_source(world, tmp_path, "1pct", rebalanced=False)) == int(subsets.counts(0.01).sum())
    with pytest.raises(ValueError, match="no subset '5pct'"):
        load_source(world, tmp_path, "5pct", rebalanced=False)


def test_a_real_shard_source_yields_cropped_images_and_their_captions(world, real_sample, tok):
    source = load_source(world, real_sample, "100pct", rebalanced=False, image_px=16)
    assert isinstance(source, ShardSource) and len(source) == 24
    stream = batches(source, tok, 8, 24)
    assert len(stream) == 3
    seen = []
    for batch in stream:
        assert batch["image"].dtype == np.uint8 and batch["image"].shape == (8, 16, 16, 3)
        assert batch["tokens"].shape == (8, MAX_LEN)
        texts = tok.decode(batch["tokens"])
        for image, text, stratum in zip(batch["image"], texts, batch["stratum"]):
            i = int(text.split()[1])
            record = source.records.set_index("uid").loc[f"u{i}"]
            pixels, caption = load_example(record)
            assert caption == text and source.names[stratum] == text.split()[2]
            np.testing.assert_array_equal(image, center_crop_resize(pixels, 16))
            seen.append(i)
    assert sorted(seen) == list(range(24))  # one epoch: every record once


def test_a_real_pools_tokenizer_sample_reads_its_uid_list(world, real_sample):
    sample = pool_caption_sample(world, real_sample, per_language=5, key=0)
    assert {k: len(v) for k, v in sample.items()} == {"de": 5, "en": 5, "sw": 5}
    assert all(text.endswith(language) for language, texts in sample.items() for text in texts)


def test_center_crop_keeps_the_middle_square():
    image = np.zeros((10, 30, 3), np.uint8)
    image[:, 10:20] = 255  # the central 10x10 square is white, the sides black
    out = center_crop_resize(image, 5)
    assert out.shape == (5, 5, 3) and (out == 255).all()
    assert center_crop_resize(np.arange(48, dtype=np.uint8).reshape(4, 4, 3), 4).tolist() == \
        np.arange(48, dtype=np.uint8).reshape(4, 4, 3).tolist()


def test_bad_stream_arguments_are_named(world, subsets, tok):
    source = SyntheticSource(world, subsets, 0.01)
    with pytest.raises(ValueError, match="examples_seen must be >= 1, got 0"):
        stream_plan(source, 10, 0, 0)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got -2"):
        stream_plan(source, -2, 10, 0)
    with pytest.raises(IndexError, match="step 5"):
        stream_plan(source, 10, 50, 0).positions(source.mixture, 5)
