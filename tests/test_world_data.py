"""The committed real-data tables in lib/vlscale/world/data, as the synthetic world reads them.

These tests read only the committed files (never ../shared); tools/rebuild_world_data.py writes them.
"""

import json
import unicodedata
from collections import Counter
from pathlib import Path

import pytest

import vlscale.world
from vlscale.world.coined import coined_name

DATA = Path(vlscale.world.__file__).parent / "data"

LOW_RESOURCE = ["bn", "fil", "he", "hi", "mi", "sw", "te"]
GEODE_REGIONS = ["Africa", "Americas", "EastAsia", "Europe", "SouthEastAsia", "WestAsia"]

# Unicode blocks of each language's own script (main blocks only).
SCRIPT_RANGES = {
    "ar": [(0x0600, 0x06FF)],
    "bn": [(0x0980, 0x09FF)],
    "he": [(0x0590, 0x05FF)],
    "hi": [(0x0900, 0x097F)],
    "ja": [(0x3040, 0x30FF), (0x4E00, 0x9FFF)],  # kana and CJK ideographs
    "ru": [(0x0400, 0x04FF)],
    "te": [(0x0C00, 0x0C7F)],
    "th": [(0x0E00, 0x0E7F)],
}


def load(name):
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def in_script(text, lang):
    return any(lo <= ord(ch) <= hi for ch in text for lo, hi in SCRIPT_RANGES[lang])


def all_in_script(text, lang):
    """Every character is of the language's script, or a zero-width (non-)joiner as Indic text uses."""
    return all(ch in "\u200c\u200d" or any(lo <= ord(ch) <= hi for lo, hi in SCRIPT_RANGES[lang]) for ch in text)


def english_equal_share(concepts, lang):
    return sum(c["names"][lang].casefold() == c["en"].casefold() for c in concepts) / len(concepts)


@pytest.fixture(scope="module")
def languages():
    return load("languages.json")["languages"]


@pytest.fixture(scope="module")
def codes(languages):
    return [lang["code"] for lang in languages]


@pytest.fixture(scope="module")
def countries():
    return load("countries.json")["countries"]


@pytest.fixture(scope="module")
def concepts():
    return load("concepts.json")["concepts"]


def test_languages_are_the_36_xm3600_languages_in_code_order(codes):
    assert len(codes) == 36
    assert codes == sorted(codes)
    assert {"en", "quz", "fil", "he", "no", "zh"} <= set(codes)


def test_table15_shares_sum_to_the_printed_totals(languages):
    low = sum(lang["web_pages_pct"] for lang in languages if lang["resource_group"] == "low")
    high = sum(lang["web_pages_pct"] for lang in languages if lang["resource_group"] == "high")
    assert abs(round(low, 3) - 0.814) < 1e-9
    assert abs(round(high, 3) - 94.510) < 1e-9


def test_low_resource_languages_are_the_papers_seven(languages):
    assert sorted(lang["code"] for lang in languages if lang["resource_group"] == "low") == LOW_RESOURCE


def test_quechua_is_excluded_from_table15(languages):
    quz = next(lang for lang in languages if lang["code"] == "quz")
    assert quz["resource_group"] is None and quz["web_pages_pct"] is None
    assert quz["primary_country"] == "PE"


def test_every_country_has_a_geode_region_and_names_in_all_36_languages(countries, codes):
    assert [c["iso2"] for c in countries] == sorted({c["iso2"] for c in countries})
    for country in countries:
        assert country["region"] in GEODE_REGIONS, country["iso2"]
        assert sorted(country["names"]) == sorted(codes), country["iso2"]
        assert all(country["names"].values()), country["iso2"]


def test_world_countries_include_geode_dollar_street_and_language_homes(countries, languages):
    world = {c["iso2"] for c in countries}
    assert set(load("geode.json")["country_region"]) <= world
    assert set(load("dollar_street.json")["country_iso2"].values()) <= world
    assert {lang["primary_country"] for lang in languages} <= world


def test_geode_countries_keep_geodes_own_region(countries):
    geode = load("geode.json")["country_region"]
    assert {c["iso2"]: c["region"] for c in countries if c["iso2"] in geode} == geode


def test_every_language_is_a_web_language_of_at_least_one_country(countries, languages, codes):
    spoken = Counter(code for c in countries for code in c["languages"])
    assert set(spoken) == set(codes)
    by_iso2 = {c["iso2"]: c for c in countries}
    for lang in languages:
        assert lang["code"] in by_iso2[lang["primary_country"]]["languages"], lang["code"]


def test_every_country_has_at_least_one_distinct_web_language(countries):
    for country in countries:
        assert country["languages"], country["iso2"]
        assert len(set(country["languages"])) == len(country["languages"]), country["iso2"]


def test_every_concept_has_a_real_or_coined_name_in_all_36_languages(concepts, codes):
    assert len({c["key"] for c in concepts}) == len(concepts)
    for concept in concepts:
        assert list(concept["names"]) == codes, concept["key"]
        assert all(concept["names"].values()), concept["key"]
        assert concept["names"]["en"] == concept["en"], concept["key"]
        assert set(concept["names_coined"]) <= set(codes) - {"en"}, concept["key"]


def test_no_coined_name_is_the_english_name(concepts):
    coined = [(c, lang) for c in concepts for lang in c["names_coined"]]
    assert len(coined) > 1000
    for concept, lang in coined:
        assert concept["names"][lang].casefold() != concept["en"].casefold(), (concept["key"], lang)


def test_coined_names_are_what_coined_name_gives_at_run_time(concepts):
    # the rebuild and the run time (landmarks) coin by one rule from the same real names
    for concept in concepts:
        for lang in concept["names_coined"]:
            assert coined_name(concept["key"], lang) == concept["names"][lang], (concept["key"], lang)
    assert coined_name("landmark:JP:0", "ja") == coined_name("landmark:JP:0", "ja")
    assert coined_name("landmark:JP:0", "ja") != coined_name("landmark:JP:1", "ja")


@pytest.mark.parametrize("lang", sorted(SCRIPT_RANGES))
def test_coined_names_are_letters_of_their_languages_own_script(concepts, lang):
    coined = [c["names"][lang] for c in concepts if lang in c["names_coined"]]
    assert coined
    for name in coined:
        assert all_in_script(name, lang), name


def test_coined_latin_script_names_are_lower_case_latin_letters(concepts, languages):
    latin = [lang["code"] for lang in languages if lang["script"] == "Latn"]
    for concept in concepts:
        for lang in set(concept["names_coined"]) & set(latin):
            name = concept["names"][lang]
            assert name.isalpha() and name == name.lower(), (concept["key"], lang, name)
            assert all(unicodedata.name(ch).startswith("LATIN") for ch in name), (concept["key"], lang, name)


def test_culture_classes_are_no_more_english_than_imagenet_classes(concepts, codes):
    """Dollar Street and GeoDE class names equal the English name about as often as ImageNet-like
    ones, averaged over the 35 non-English languages (they were English on 81% of pages, against
    17%, when a missing name fell back to English)."""
    others = [lang for lang in codes if lang != "en"]
    culture = [c for c in concepts if c["dollar_street_topic"] is not None or c["geode_object"] is not None]
    imagenet = [c for c in concepts if c["imagenet"]]
    gap = sum(english_equal_share(culture, lang) - english_equal_share(imagenet, lang) for lang in others)
    assert abs(gap / len(others)) <= 0.08


def test_name_coverage_report_matches_the_concepts(concepts, codes):
    report = load("name_coverage.json")["groups"]
    imagenet = [c for c in concepts if c["imagenet"]]
    assert report["imagenet"]["concepts"] == len(imagenet)
    mi = report["imagenet"]["languages"]["mi"]
    assert mi["real"] + mi["coined"] == pytest.approx(1.0)
    assert mi["english_equal"] == round(english_equal_share(imagenet, "mi"), 4)
    assert set(report["geode"]["languages"]) == set(codes) - {"en"}


def test_concepts_are_861_emoji_then_geode_and_dollar_street_additions(concepts):
    groups = Counter(c["group"] for c in concepts)
    assert sum(n for g, n in groups.items() if g not in ("GeoDE", "DollarStreet")) == 861
    added = [c["key"] for c in concepts if c["group"] in ("GeoDE", "DollarStreet")]
    assert added == sorted(added)
    assert [c["key"] for c in concepts[-len(added):]] == added


def test_maori_lacks_183_emoji_names_which_are_coined(concepts):
    emoji = [c for c in concepts if c["group"] not in ("GeoDE", "DollarStreet")]
    coined = [c for c in emoji if "mi" in c["names_coined"]]
    assert len(coined) == 183
    assert not any(c["names"]["mi"].casefold() == c["en"].casefold() for c in coined)


def test_some_dollar_street_and_geode_names_are_cldr_keywords(concepts):
    by_key = {c["key"]: c for c in concepts}
    fruits = by_key["dollarstreet:fruits"]
    assert fruits["names"]["de"] == "Obst" and fruits["names"]["ja"] == "果物"
    assert "de" not in fruits["names_coined"]
    assert by_key["geode:boat"]["names"]["fr"] == "bateau"


def test_every_geode_object_and_dollar_street_topic_is_one_concept(concepts):
    geode = [c["geode_object"] for c in concepts if c["geode_object"] is not None]
    topics = [c["dollar_street_topic"] for c in concepts if c["dollar_street_topic"] is not None]
    assert sorted(geode) == sorted(load("geode.json")["objects"])
    assert len(topics) == len(set(topics)) == 84
    assert set(load("dollar_street.json")["topic_to_imagenet1k"]) <= set(topics)


@pytest.mark.parametrize("lang", sorted(SCRIPT_RANGES))
def test_names_are_written_in_their_languages_own_script(concepts, countries, lang):
    names = [c["names"][lang] for c in concepts if lang not in c["names_coined"]]
    in_own = sum(in_script(name, lang) for name in names)
    # CLDR keeps a few Latin names such as "DVD", "DNA" or "piñata"
    assert in_own >= 0.99 * len(names)
    for country in countries:
        assert in_script(country["names"][lang], lang), (country["iso2"], country["names"][lang])


def test_culture_regions_are_geode_regions_and_not_imagenet(concepts):
    cultural = [c for c in concepts if c["culture_region"] is not None]
    assert len(cultural) >= 40
    assert {c["culture_region"] for c in cultural} == set(GEODE_REGIONS)
    assert not any(c["imagenet"] for c in cultural)


def test_some_emoji_are_imagenet_classes(concepts):
    by_en = {c["en"]: c for c in concepts}
    assert by_en["zebra"]["imagenet"] and by_en["tiger face"]["imagenet"]
    assert not by_en["sushi"]["imagenet"]


def test_filler_sentences_are_short_and_distinct():
    sentences = load("filler.json")["sentences"]
    assert "en" in sentences and "mi" not in sentences and "quz" not in sentences
    assert len(sentences) == 34
    for lang, texts in sentences.items():
        assert 0 < len(texts) <= 120, lang
        assert len(set(texts)) == len(texts), lang
        assert all(0 < len(t) <= 48 for t in texts), lang


def test_dollar_street_counts_every_image_once_per_country_and_once_per_topic():
    ds = load("dollar_street.json")
    assert ds["income_edges"] == [200, 685, 1998] and len(ds["income_groups"]) == 4
    assert sum(sum(counts) for counts in ds["country_income_counts"].values()) == 13565
    assert set(ds["country_region"].values()) == set(ds["regions"])
    rows = ds["topic_income_region_counts"]
    assert rows == sorted(rows)
    # 551 images carry more than one topic, so per-topic counts exceed the image count
    assert sum(n for _, _, _, n in rows) > 13565
    assert all(region in ds["regions"] and 0 <= group < 4 for _, region, group, _ in rows)
