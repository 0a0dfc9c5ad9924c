"""vlscale.filtering.balance (MetaCLIP-style balancing at exactly k) on planted pools whose answer is known."""
import numpy as np
import pytest

from vlscale.filtering import balance, select


def test_matching_is_word_bounded_counts_nested_entries_and_reads_unspaced_scripts_by_substring():
    m = balance.Matcher({"en": ["bear", "teddy bear", "car", ""], "ja": ["熊", "テディベア", "車", ""]})
    assert m.match("A Teddy-Bear, on the sofa.", "en") == [0, 1]
    assert m.match("ball bearings and a cart", "en") == []
    assert m.match("car", "en") == [2]
    assert m.match("ソファの上のテディベア", "ja") == [1]
    assert m.match("熊と車", "ja") == [0, 2]
    assert m.match("bear", "sw") == []
    with pytest.raises(ValueError, match="one string per entry"):
        balance.Matcher({"en": ["a", "b"], "sw": ["a"]})


def _pool(sizes: dict[tuple[str, int], int]):
    """Pairs matching one planted entry each: sizes[(language, entry)] of them; ids 0..n-1."""
    matches, languages = [], []
    for (language, entry), n in sizes.items():
        matches += [[entry]] * n
        languages += [language] * n
    return np.arange(len(matches)), matches, languages


def test_one_threshold_keeps_the_tail_whole_and_caps_the_head_as_metaclips_draw_would():
    ids, matches, languages = _pool({("en", 0): 2000, ("en", 1): 30, ("en", 2): 5})
    scores = balance.balanced_scores(ids, matches, languages, 3, key=0)
    kept = select.top_k(ids, scores, 135)
    entry = np.array([m[0] for m in matches])
    assert len(kept) == 135 and set(ids[entry > 0]) <= set(kept)  # both tail entries kept whole
    # MetaCLIP's rule at the t that keeps k: a head pair is kept exactly when its draw u < t / 2000
    t = -np.sort(scores[np.isfinite(scores)])[::-1][134]
    u = balance.pair_entry_uniforms(ids[entry == 0], np.zeros((entry == 0).sum(), int), key=0)
    assert set(ids[entry == 0][u * 2000 <= t]) == set(kept) - set(ids[entry > 0])
    assert np.isnan(balance.balanced_scores([7], [[]], ["en"], 3, key=0)).all()  # no match: not eligible


def test_tail_share_and_its_threshold():
    counts = np.array([1, 2, 3, 4, 0])
    assert balance.tail_share(counts, 3) == pytest.approx(0.3)
    assert balance.threshold_for_share(counts, 0.3) == 3
    # the nearest share, as MetaCLIP 2's p_to_t: 0.25 is nearest 0.3 (t = 3), 0.14 nearest 0.1 (t = 2)
    assert balance.threshold_for_share(counts, 0.25) == 3 and balance.threshold_for_share(counts, 0.14) == 2
    assert balance.threshold_for_share(counts, 0.0) == 1 and balance.threshold_for_share(counts, 0.04) == 1
    assert balance.threshold_for_share(counts, 1.0) == 5
    assert balance.threshold_for_share(np.array([2, 2, 5]), 0.5) == 3  # equal counts join the tail together


def test_per_language_thresholds_give_each_language_englishs_tail_share_and_exactly_k():
    sizes = {("en", 0): 3000, ("en", 1): 400, ("en", 2): 100, ("en", 3): 20,
             ("sw", 0): 300, ("sw", 1): 40, ("sw", 2): 10, ("sw", 3): 2}
    ids, matches, languages = _pool(sizes)
    small = balance.per_language_selection(ids, matches, languages, 4, k=600, key=3)
    large = balance.per_language_selection(ids, matches, languages, 4, k=900, key=3)
    assert len(small.kept) == 600 and len(large.kept) == 900 and set(small.kept) <= set(large.kept)
    # The answer by hand. At k = 600 English's cut lies in (100, 400]: its tail (entries under it) is 100 + 20 of its
    # 3,520 matches, 3/88; the record names the interval's top, 400. Swahili's tail shares are 0, 2/352, 12/352 = 3/88,
    # 52/352, ...: 3/88 exactly, first reached at t = 11 (entries 10 and 2 under it). The expected kept count is then
    # 2 t + 120 (English) + 11 + 11 + 12 (Swahili) = 600, t = 223: English's two heads keep about 223 each.
    assert small.thresholds == {"en": 400.0, "sw": 11.0} == large.thresholds
    assert small.tail_shares == pytest.approx({"en": 3 / 88, "sw": 3 / 88})
    lang, entry = np.array(languages), np.array([m[0] for m in matches])
    kept = np.isin(np.arange(len(ids)), small.kept)
    heads = [kept[(lang == "en") & (entry == e)].sum() for e in (0, 1)]
    assert all(abs(h - 223) < 4 * 223 ** 0.5 for h in heads)  # binomial draws at one common cut
    assert all(kept[(lang == "sw") & (entry == e)].sum() < 11 + 4 * 11 ** 0.5 for e in (0, 1))
    for language in ("en", "sw"):  # an entry at or below its language's threshold is kept whole
        for e in range(4):
            rows = np.flatnonzero((lang == language) & (entry == e))
            if len(rows) < small.thresholds[language] and rows.size:
                assert np.isin(rows, small.kept).all(), (language, e)
    with pytest.raises(ValueError, match="only 3872 pairs match"):
        balance.per_language_selection(ids, matches, languages, 4, k=5000, key=3)


def test_the_paper_says_how_many_languages_sit_at_the_floor_threshold():
    from vlscale.paper.build import language_thresholds

    record = {"t": {"en": 7.0, "es": 2.0, "ar": 1.0, "sw": 1.0},
              "tail_share": {"en": 0.0094, "es": 0.0118, "ar": 0.0, "sw": 0.0}}
    text = language_thresholds(record)
    assert "0.9% of English's matches" in text and "for 2 of the 3 other languages that nearest share is zero" in text
    assert "nearest share is zero" not in language_thresholds({**record, "t": {"en": 7.0, "es": 2.0, "ar": 3.0,
                                                                                "sw": 2.0}})


def test_per_language_thresholds_without_english_name_the_param_and_the_way_out():
    ids, matches, languages = _pool({("sw", 0): 30, ("de", 1): 20})
    with pytest.raises(ValueError, match=r"filter.balanced.thresholds = per_language: no pool pair in language 'en' "
                                         r"matches an entry \(languages matched: de, sw\).*thresholds: single"):
        balance.per_language_selection(ids, matches, languages, 2, k=10, key=0)
