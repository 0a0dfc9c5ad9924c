"""Language rebalancing: target languages reach their share, the rest keeps its natural mix."""
import json
import warnings
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vlscale.data.mixture import LOW_RESOURCE, Mixture, low_resource_targets
from vlscale.data.subsets import NestedSubsets, derive_key

# % of pages in WebLI-100B (paper, App. I Table 15): the 7 low-resource languages, the largest
# high-resource ones, and everything else as "other".
PAGES_PCT = {"bn": 0.113, "fil": 0.111, "he": 0.240, "hi": 0.267, "mi": 0.001, "sw": 0.046, "te": 0.036,
             "en": 35.353, "ja": 8.752, "es": 8.214, "ru": 6.981, "de": 3.869, "zh": 3.544, "fr": 3.354}
PAGES_PCT["other"] = 100 - sum(PAGES_PCT.values())
NAMES = list(PAGES_PCT)


def subset_counts(pool_examples, fraction=0.01, key=7):
    """Examples per language in the `fraction` subset of a pool with the paper's language shares."""
    sizes = [int(pct / 100 * pool_examples) for pct in PAGES_PCT.values()]
    return NestedSubsets(sizes, key, NAMES).counts(fraction)


def test_each_low_resource_language_is_one_percent_of_the_mixture():
    mixture = Mixture(subset_counts(10**8), NAMES, low_resource_targets(), key=1)
    for code in LOW_RESOURCE:
        assert abs(mixture.realised_shares[code] - 0.01) <= 1 / len(mixture)
    assert mixture.missing == []
    # Maori: 10 examples in the subset, each seen about a thousand times.
    assert mixture.counts[NAMES.index("mi")] == 10 and mixture.realised_counts["mi"] > 10_000


# At most 1/7 each: then rounding each target to whole examples moves every share by < 1/len.
targets_by_code = st.dictionaries(st.sampled_from(LOW_RESOURCE), st.floats(0, 1 / len(LOW_RESOURCE)),
                                  min_size=1)


@settings(max_examples=100, deadline=None)
@given(counts=st.lists(st.integers(0, 10**6), min_size=len(NAMES), max_size=len(NAMES)),
       targets=targets_by_code)
def test_realised_target_shares_are_within_one_example_of_the_target(counts, targets):
    counts[NAMES.index("en")] += 1  # some data outside the targets, else shares are undefined
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mixture = Mixture(np.array(counts), NAMES, targets, key=0)
    missing = [code for code, target in targets.items() if counts[NAMES.index(code)] == 0 and target > 0]
    assert mixture.missing == missing
    assert [str(w.message).split("'")[1] for w in caught] == missing
    for code, target in targets.items():
        if code in missing:
            assert mixture.realised_counts[code] == 0
        elif counts[NAMES.index(code)] > 0:
            assert abs(mixture.realised_shares[code] - target) <= 1 / len(mixture)


@settings(max_examples=100, deadline=None)
@given(counts=st.lists(st.integers(1, 10**6), min_size=len(NAMES), max_size=len(NAMES)),
       targets=targets_by_code)
def test_non_target_languages_keep_their_examples_and_relative_shares_exactly(counts, targets):
    mixture = Mixture(np.array(counts), NAMES, targets, key=0)
    rest = [name for name in NAMES if name not in targets]
    natural_total = sum(counts[NAMES.index(name)] for name in rest)
    realised_total = sum(mixture.realised_counts[name] for name in rest)
    for name in rest:
        assert mixture.realised_counts[name] == counts[NAMES.index(name)]
        assert (Fraction(mixture.realised_counts[name], realised_total)
                == Fraction(counts[NAMES.index(name)], natural_total))


@pytest.mark.parametrize("key", [0, 1, 2**64 - 1, derive_key(20250211, 3)])
def test_a_prefix_of_the_shuffled_stream_has_each_language_at_its_share(key):
    mixture = Mixture(subset_counts(10**8), NAMES, low_resource_targets(), key=key)
    m = 20_000
    strata, _ = mixture.source(mixture.order()[np.arange(m)])
    seen = np.bincount(strata, minlength=len(NAMES)) / m
    for s, name in enumerate(NAMES):
        share = mixture.realised_shares[name]
        standard_error = np.sqrt(share * (1 - share) / m)
        assert abs(seen[s] - share) <= 4 * standard_error, name


def test_the_stream_reads_every_position_once_per_epoch():
    mixture = Mixture(subset_counts(10**7), NAMES, low_resource_targets(), key=3)
    positions = mixture.order()[np.arange(len(mixture))]
    assert np.array_equal(np.sort(positions), np.arange(len(mixture)))
    assert not np.array_equal(positions, mixture.order(derive_key(3, 1))[np.arange(len(mixture))])


def test_an_upsampled_language_cycles_through_its_members_in_rank_order():
    mixture = Mixture(np.array([90, 3]), ["en", "mi"], {"mi": 0.1}, key=0)
    assert mixture.realised_counts == {"en": 90, "mi": 10}
    strata, ranks = mixture.source(np.arange(len(mixture)))
    assert strata.tolist() == [0] * 90 + [1] * 10
    assert ranks.tolist() == list(range(90)) + [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]


def test_a_target_below_the_natural_share_keeps_a_rank_prefix():
    mixture = Mixture(np.array([90, 50]), ["en", "hi"], {"hi": 0.1}, key=0)
    assert mixture.realised_counts["hi"] == 10
    _, ranks = mixture.source(np.arange(90, 100))
    assert ranks.tolist() == list(range(10))


def test_a_missing_low_resource_language_is_warned_about_and_recorded():
    counts = subset_counts(10**7)  # 10^5 examples, of which one is Maori (0.001%): remove it
    counts[NAMES.index("mi")] = 0
    with pytest.warns(UserWarning, match=r"'mi' has no examples in this subset of \d+ examples"):
        mixture = Mixture(counts, NAMES, low_resource_targets(), key=0)
    assert mixture.missing == ["mi"]
    assert mixture.realised_counts["mi"] == 0
    # The other six still reach 1% of the mixture: Maori's share is not left as a hole.
    for code in set(LOW_RESOURCE) - {"mi"}:
        assert abs(mixture.realised_shares[code] - 0.01) <= 1 / len(mixture)
    assert mixture.as_dict()["missing"] == ["mi"]


def test_without_targets_the_mixture_is_the_subset():
    counts = subset_counts(10**6)
    mixture = Mixture(counts, NAMES, {}, key=0)
    assert len(mixture) == counts.sum()
    assert mixture.realised_counts == dict(zip(NAMES, counts.tolist()))
    assert mixture.realised_shares == mixture.natural_shares
    strata, ranks = mixture.source(np.arange(len(mixture)))
    assert np.array_equal(np.bincount(strata, minlength=len(NAMES)), counts)
    assert np.array_equal(ranks, np.concatenate([np.arange(n) for n in counts]))


def test_as_dict_is_json_with_the_accounting():
    mixture = Mixture(subset_counts(10**7), NAMES, low_resource_targets(), key=0)
    written = json.loads(json.dumps(mixture.as_dict()))
    assert written["examples"] == len(mixture)
    assert written["realised_counts"] == mixture.realised_counts
    assert written["targets"] == low_resource_targets()
    assert sum(written["realised_counts"].values()) == len(mixture)


@pytest.mark.parametrize("targets, match", [
    ({"xx": 0.01}, r"'xx' is not a stratum; strata are \['bn'"),
    ({"iw": 0.01}, "'iw' is not a stratum"),
    ({"mi": 1.0}, "target share of 'mi' must be in \\[0, 1\\), got 1.0"),
    ({"mi": -0.01}, "target share of 'mi' must be in \\[0, 1\\), got -0.01"),
    ({"mi": float("nan")}, "target share of 'mi' must be a finite number"),
    ({"mi": 0.6, "te": 0.5}, "target shares sum to 1.1"),
])
def test_bad_targets_are_refused_naming_the_key(targets, match):
    with pytest.raises(ValueError, match=match):
        Mixture(subset_counts(10**6), NAMES, targets, key=0)


def test_positions_outside_the_mixture_are_refused_naming_them():
    mixture = Mixture(np.array([5, 5]), ["en", "mi"], {}, key=0)
    with pytest.raises(ValueError, match="position 10 is outside"):
        mixture.source([0, 10])
