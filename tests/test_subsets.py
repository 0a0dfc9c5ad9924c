"""Nested subsets: keyed permutations are bijections, subsets nest exactly and are reproducible."""
import hashlib
import subprocess
import sys
import textwrap
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vlscale.data.subsets import KeyedPermutation, NestedSubsets, UidSubsets, derive_key, uid_ranks
from vlscale.world.ids import HELDOUT_BIT, LOCAL_BITS, make_ids, split_ids

keys = st.integers(0, 2**64 - 1)
# Fractions as people write them in configs, plus arbitrary floats in (0, 1].
fractions = st.one_of(st.sampled_from([0.001, 0.01, 0.1, 0.29, 0.5, 0.7, 1.0]),
                      st.floats(1e-6, 1.0, exclude_min=True))
pool_sizes = st.lists(st.integers(0, 3000), min_size=1, max_size=6)


def pool_ids(sizes):
    """Every global id of a pool with `sizes[s]` examples in stratum s."""
    return np.concatenate([make_ids(s, np.arange(n)) for s, n in enumerate(sizes)])


# --- KeyedPermutation ------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 1000, 1024, 2**16 + 3])
@settings(max_examples=10, deadline=None)
@given(key=keys)
def test_permutation_is_a_bijection_of_range_n(n, key):
    perm = KeyedPermutation(n, key)
    ranks = perm.forward(np.arange(n))
    assert np.array_equal(np.sort(ranks), np.arange(n))
    assert np.array_equal(perm.inverse(ranks), np.arange(n))


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 5000), key=keys)
def test_permutation_is_a_bijection_for_any_n(n, key):
    ranks = KeyedPermutation(n, key).forward(np.arange(n))
    assert np.array_equal(np.sort(ranks), np.arange(n))


@settings(max_examples=50, deadline=None)
@given(n=st.integers(1, 2**LOCAL_BITS), key=keys, data=st.data())
def test_inverse_undoes_forward_up_to_2_to_the_40(n, key, data):
    x = np.array(data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=50)))
    perm = KeyedPermutation(n, key)
    ranks = perm.forward(x)
    assert ranks.min() >= 0 and ranks.max() < n
    assert np.array_equal(perm.inverse(ranks), x)
    assert np.array_equal(perm.forward(perm.inverse(x)), x)


def test_forward_keeps_the_shape_and_a_scalar_gives_a_scalar():
    perm = KeyedPermutation(100, 5)
    grid = np.arange(100).reshape(4, 25)
    assert perm.forward(grid).shape == (4, 25)
    assert perm.forward(grid)[1, 2] == perm.forward(27) == perm[27]
    assert isinstance(perm.forward(27), np.int64)
    assert len(perm) == 100 and list(perm) == perm.forward(np.arange(100)).tolist()


@pytest.mark.parametrize("key", [0, 1, 2**63, 2**64 - 1, 20250211])
def test_ranks_of_the_first_percent_are_spread_uniformly(key):
    # Consecutive indices differ only in their low bits; their ranks must still cover [0, n) evenly.
    n, bins = 1_000_003, 20
    first = np.arange(n // 100)
    observed = np.bincount(KeyedPermutation(n, key).forward(first) * bins // n, minlength=bins)
    expected = first.size / bins
    chi2 = ((observed - expected) ** 2 / expected).sum()
    assert chi2 < 63.68  # chi-square with 19 degrees of freedom: P(chi2 > 63.68) = 1e-6


def test_different_keys_give_different_orders():
    a, b = KeyedPermutation(10_000, 1), KeyedPermutation(10_000, 2)
    assert (a.forward(np.arange(10_000)) != b.forward(np.arange(10_000))).mean() > 0.99


@pytest.mark.parametrize("bad", [-1, 10, 2**40])
def test_out_of_range_index_is_refused_naming_the_value(bad):
    perm = KeyedPermutation(10, 3)
    with pytest.raises(ValueError, match=f"index {bad} is outside"):
        perm.forward(np.array([0, bad, 1]))
    with pytest.raises(ValueError, match=f"rank {bad} is outside"):
        perm.inverse([bad])


@pytest.mark.parametrize("n", [0, -5, 2**40 + 1])
def test_size_outside_1_to_2_to_the_40_is_refused(n):
    with pytest.raises(ValueError, match=f"n={n}"):
        KeyedPermutation(n, 0)


@pytest.mark.parametrize("key", [-1, 2**64])
def test_key_outside_64_bits_is_refused(key):
    with pytest.raises(ValueError, match=str(key)):
        KeyedPermutation(5, key)


def test_derived_keys_are_distinct_and_deterministic():
    derived = {derive_key(7, s) for s in range(1000)} | {derive_key(8, s) for s in range(1000)}
    assert len(derived) == 2000
    assert derive_key(7, 3, 1) == derive_key(7, 3, 1) != derive_key(7, 1, 3)


# --- NestedSubsets ---------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(sizes=pool_sizes, key=keys, f1=fractions, f2=fractions)
def test_subsets_nest_exactly_for_every_pair_of_fractions(sizes, key, f1, f2):
    f1, f2 = min(f1, f2), max(f1, f2)
    subsets = NestedSubsets(sizes, key)
    small, large = subsets.ids(f1), subsets.ids(f2)
    assert np.all(np.isin(small, large))
    for s in range(len(sizes)):  # per stratum, the smaller subset is a prefix of the larger's rank order
        members = subsets.member_ids(f2, s)
        assert np.array_equal(subsets.member_ids(f1, s), members[:subsets.counts(f1)[s]])


@settings(max_examples=60, deadline=None)
@given(sizes=pool_sizes, key=keys, fraction=fractions)
def test_counts_are_exact_and_ids_are_sorted_with_those_counts(sizes, key, fraction):
    subsets = NestedSubsets(sizes, key)
    exact = Fraction(repr(fraction))
    assert subsets.counts(fraction).tolist() == [n * exact.numerator // exact.denominator for n in sizes]
    ids = subsets.ids(fraction)
    assert np.all(np.diff(ids) > 0)
    strata, local = split_ids(ids)
    assert np.array_equal(np.bincount(strata, minlength=len(sizes)), subsets.counts(fraction))
    assert np.all(local < np.asarray(sizes)[strata])


def test_counts_use_the_decimal_fraction_not_its_float_error():
    subsets = NestedSubsets([30, 10, 100, 1000], key=0)
    assert subsets.counts(0.1).tolist() == [3, 1, 10, 100]
    assert subsets.counts(0.7).tolist()[1] == 7  # 0.7 * 10 == 6.999999999999999 in floats
    assert subsets.counts(0.29).tolist()[2] == 29  # 0.29 * 100 == 28.999999999999996
    assert subsets.counts(Fraction(1, 3)).tolist() == [10, 3, 33, 333]


@settings(max_examples=150, deadline=None)
@given(sizes=pool_sizes, key=keys, fraction=fractions)
def test_contains_agrees_with_ids(sizes, key, fraction):
    subsets = NestedSubsets(sizes, key)
    every = pool_ids(sizes)
    assert np.array_equal(every[subsets.contains(every, fraction)], subsets.ids(fraction))


def test_contains_is_the_rank_test_of_each_strata_permutation():
    # Realistic strata: 30 bits (English-like), odd bit counts, a 1-example stratum, an empty one.
    sizes = [700_000_001, 3_000_017, 1, 0, 2**20, 2**21 + 1]
    subsets = NestedSubsets(sizes, key=99)
    rng = np.random.default_rng(0)
    for s, n in enumerate(sizes):
        if n == 0:
            continue
        local = rng.integers(0, n, 20_000)
        for fraction in (0.01, 0.1, 0.5, 1.0):
            k = subsets.counts(fraction)[s]
            expected = subsets.permutations[s].forward(local) < k
            assert np.array_equal(subsets.contains(make_ids(s, local), fraction), expected)


def test_ids_outside_the_pool_are_not_members():
    subsets = NestedSubsets([10, 20], key=1)
    foreign = np.array([
        -1,                             # negative
        make_ids(0, 10),                # local index == N_s
        make_ids(1, 2**LOCAL_BITS - 1),  # far past N_s
        make_ids(2, 0),                 # unknown stratum
        (1 << HELDOUT_BIT) | 3,         # held-out benchmark id
        np.iinfo(np.int64).min,
    ])
    assert not subsets.contains(foreign, 1.0).any()
    assert subsets.contains(make_ids(1, 19), 1.0)


def test_contains_keeps_the_shape_of_its_input():
    subsets = NestedSubsets([50, 50], key=3)
    grid = pool_ids([50, 50]).reshape(10, 10)
    assert subsets.contains(grid, 0.5).shape == (10, 10)
    assert subsets.contains(grid, 0.5).sum() == 50


def test_member_ids_are_the_inverse_permutation_of_ranks():
    subsets = NestedSubsets([1000, 37], key=11)
    members = subsets.member_ids(0.1, 0)
    assert np.array_equal(members, make_ids(0, subsets.permutations[0].inverse(np.arange(100))))
    assert np.array_equal(subsets.permutations[0].forward(split_ids(members)[1]), np.arange(100))


def test_strata_use_independent_keys_derived_from_the_pool_key():
    subsets = NestedSubsets([500, 500], key=5)
    assert subsets.permutations[1].key == derive_key(5, 1)
    first, second = (split_ids(subsets.member_ids(0.2, s))[1] for s in (0, 1))
    assert not np.array_equal(first, second)


@pytest.mark.parametrize("bad", [0, -0.1, 1.5, float("nan"), float("inf"), "0.1", None])
def test_fraction_outside_0_to_1_is_refused_naming_it(bad):
    subsets = NestedSubsets([10], key=0)
    for call in (lambda: subsets.counts(bad), lambda: subsets.ids(bad), lambda: subsets.contains([0], bad)):
        with pytest.raises(ValueError, match="fraction"):
            call()
    with pytest.raises(ValueError, match=repr(bad).replace("(", r"\(")):
        subsets.counts(bad)


def test_a_different_key_gives_a_different_subset():
    sizes = [10_000, 5_000]
    assert not np.array_equal(NestedSubsets(sizes, 1).ids(0.1), NestedSubsets(sizes, 2).ids(0.1))


# --- determinism across processes --------------------------------------------------------------

_IN_A_FRESH_PROCESS = textwrap.dedent("""
    import hashlib, numpy as np
    from vlscale.data.subsets import NestedSubsets, UidSubsets
    nested = NestedSubsets([100_000, 3_001, 17, 0], key=20250211).ids(0.1)
    uids = [f"shard-{i // 1000:05d}/{i:08d}" for i in range(5000)]
    real = UidSubsets(uids, np.arange(5000) % 3, key=20250211).ids(0.1)
    print(hashlib.sha256(nested.tobytes()).hexdigest(), hashlib.sha256(real.tobytes()).hexdigest())
""")


def test_the_same_key_gives_the_same_subsets_in_separate_processes():
    runs = [subprocess.Popen([sys.executable, "-c", _IN_A_FRESH_PROCESS], stdout=subprocess.PIPE, text=True)
            for _ in range(2)]
    outputs = [run.communicate(timeout=120)[0].split() for run in runs]
    assert all(run.returncode == 0 for run in runs)
    nested = NestedSubsets([100_000, 3_001, 17, 0], key=20250211).ids(0.1)
    uids = [f"shard-{i // 1000:05d}/{i:08d}" for i in range(5000)]
    real = UidSubsets(uids, np.arange(5000) % 3, key=20250211).ids(0.1)
    here = [hashlib.sha256(nested.tobytes()).hexdigest(), hashlib.sha256(real.tobytes()).hexdigest()]
    assert outputs[0] == outputs[1] == here


# --- real pools: uid ranks ---------------------------------------------------------------------

uid_pools = st.lists(st.tuples(st.text(min_size=1, max_size=12), st.integers(0, 3)),
                     min_size=1, max_size=300, unique_by=lambda r: r)


@settings(max_examples=60, deadline=None)
@given(records=uid_pools, key=keys)
def test_uid_ranks_order_each_stratum_by_the_keyed_hash_of_the_uid(records, key):
    uids, strata = [u for u, _ in records], np.array([s for _, s in records])
    ranks = uid_ranks(uids, strata, key)
    key_bytes = key.to_bytes(8, "little")
    for s in set(strata.tolist()):
        mine = [i for i in range(len(uids)) if strata[i] == s]
        by_hash = sorted(mine, key=lambda i: (hashlib.blake2b(uids[i].encode(), digest_size=8,
                                                              key=key_bytes).digest(), uids[i]))
        assert ranks[by_hash].tolist() == list(range(len(mine)))


@settings(max_examples=60, deadline=None)
@given(records=uid_pools, key=keys, seed=st.integers(0, 2**32 - 1))
def test_uid_ranks_do_not_depend_on_the_order_of_the_records(records, key, seed):
    uids, strata = [u for u, _ in records], np.array([s for _, s in records])
    shuffle = np.random.default_rng(seed).permutation(len(uids))
    ranks = uid_ranks(uids, strata, key)
    shuffled = uid_ranks([uids[i] for i in shuffle], strata[shuffle], key)
    assert np.array_equal(shuffled, ranks[shuffle])


@settings(max_examples=60, deadline=None)
@given(records=uid_pools, key=keys, f1=fractions, f2=fractions)
def test_uid_subsets_nest_exactly_and_contains_agrees_with_ids(records, key, f1, f2):
    f1, f2 = min(f1, f2), max(f1, f2)
    uids, strata = [u for u, _ in records], np.array([s for _, s in records])
    subsets = UidSubsets(uids, strata, key)
    small, large = subsets.ids(f1), subsets.ids(f2)
    assert np.all(np.isin(small, large)) and np.all(np.diff(large) > 0)
    assert np.array_equal(np.bincount(strata[small], minlength=4)[:subsets.sizes.size], subsets.counts(f1))
    every = np.arange(len(uids))
    assert np.array_equal(every[subsets.contains(every, f1)], small)
    for s in range(subsets.sizes.size):
        members = subsets.member_ids(f2, s)
        assert np.array_equal(subsets.member_ids(f1, s), members[:subsets.counts(f1)[s]])
        assert np.array_equal(subsets.ranks[members], np.arange(members.size))


def test_uid_subsets_refuse_a_duplicate_uid_in_a_stratum():
    with pytest.raises(ValueError, match="duplicate uid 'a'"):
        UidSubsets(["a", "b", "a"], [0, 0, 0], key=1)
    UidSubsets(["a", "b", "a"], [0, 0, 1], key=1)  # the same uid in two strata is two records


def test_uid_subsets_record_indices_outside_the_pool_are_not_members():
    subsets = UidSubsets(["a", "b", "c"], [0, 0, 1], key=1)
    assert not subsets.contains([-1, 3, 100], 1.0).any()


def test_a_different_key_gives_a_different_uid_subset():
    uids = [f"{i:06d}" for i in range(2000)]
    strata = np.zeros(2000, np.int64)
    assert not np.array_equal(UidSubsets(uids, strata, 1).ids(0.1), UidSubsets(uids, strata, 2).ids(0.1))
