"""Benchmark analogs: held-out, deterministic, true to their condition and balanced where promised."""
import numpy as np
import pytest

from vlscale.config import REGIONS, XM3600_LANGUAGES
from vlscale.data.subsets import NestedSubsets
from vlscale.evals import analogs
from vlscale.world.captions import person_words
from vlscale.world.ids import HELDOUT_BIT
from vlscale.world.spec import GENDERS, INCOME_GROUPS, OCCUPATIONS
from vlscale.world.truth import truth

SIZES = dict(imagenet=2 * 143, cifar100=200, pet=74, coco=40, flickr=40, xm3600=12, dollarstreet=40,
             geode=60, gldv2=20, fairface=40)
CLASSIFICATION = ("imagenet", "cifar100", "pet", "dollarstreet", "geode", "gldv2")


@pytest.fixture(scope="module")
def benches(world):
    return {name: analogs.benchmark(world, name, SIZES[name], key=7) for name in analogs.ANALOGS}


def test_every_analog_has_its_size_and_a_name_of_groups_py(benches):
    assert set(benches) == set(SIZES)
    for name, bench in benches.items():
        assert bench.name == name and bench.ids.dtype == np.int64 and len(bench.ids) == SIZES[name]
        assert len(np.unique(bench.ids)) == len(bench.ids)
        assert len(bench.meta) == len(bench.ids) and np.array_equal(bench.meta["id"], bench.ids)


def test_ids_are_held_out_and_in_no_training_pool(world, benches):
    pool = NestedSubsets(world.pool_sizes(10**5), key=3)
    assert pool.contains(pool.ids(1)[:50], 1).all()  # the check can say yes
    for bench in benches.values():
        assert np.all(bench.ids & (np.int64(1) << HELDOUT_BIT)), bench.name
        assert not pool.contains(bench.ids, 1).any(), bench.name


def test_same_key_same_ids_other_key_or_split_other_ids(world, benches):
    for name in ("imagenet", "xm3600", "gldv2"):
        again = analogs.benchmark(world, name, SIZES[name], key=7)
        assert np.array_equal(again.ids, benches[name].ids)
        assert again.captions == benches[name].captions
        other = analogs.benchmark(world, name, SIZES[name], key=8)
        assert not np.isin(other.ids, benches[name].ids).any()
        train = analogs.benchmark(world, name, SIZES[name], key=7, split="train")
        assert not np.isin(train.ids, benches[name].ids).any()


def test_classification_labels_are_the_true_concept_and_class_names_match(world, benches):
    for name in CLASSIFICATION:
        bench = benches[name]
        gt = truth(world, bench.ids)
        names = np.array(bench.class_names, dtype=object)
        assert np.array_equal(names[bench.labels], [world.concepts[c]["en"] for c in gt["concept"]]), name
        assert np.array_equal(names[bench.labels], bench.meta["concept_name"].to_numpy()), name


def test_each_analog_condition_holds_for_every_image(world, benches):
    gt = {name: truth(world, b.ids) for name, b in benches.items()}
    head = analogs.head_concepts(world)
    assert world.is_head[gt["imagenet"]["concept"]].all()
    assert np.isin(gt["cifar100"]["concept"], head[:100]).all()
    assert all(world.concepts[c]["group"] == "Animals & Nature" for c in gt["pet"]["concept"])
    assert world.is_head[gt["pet"]["concept"]].all() and len(benches["pet"].class_names) == 37
    assert all(world.concepts[c]["dollar_street_topic"] for c in gt["dollarstreet"]["concept"])
    assert all(world.concepts[c]["geode_object"] for c in gt["geode"]["concept"])
    assert gt["gldv2"]["is_landmark"].all() and (world.landmark_country[gt["gldv2"]["concept"]] >= 0).all()
    assert gt["fairface"]["has_person"].all()
    assert np.array_equal(benches["fairface"].labels, gt["fairface"]["gender"])
    assert set(benches["fairface"].meta["occupation"]) <= set(OCCUPATIONS)


def test_retrieval_captions_describe_the_image_concept_person_and_country_in_english(world, benches):
    for name in ("coco", "flickr"):
        bench = benches[name]
        gt = truth(world, bench.ids)
        assert np.array_equal(bench.caption_image, np.arange(len(bench.ids)))
        assert bench.caption_language == ["en"] * len(bench.ids)
        assert gt["has_person"].any() and not gt["has_person"].all()
        for i, caption in enumerate(bench.captions):
            who = [person_words(gt["gender"][i], gt["occupation"][i])] if gt["has_person"][i] else []
            words = [world.concepts[gt["concept"][i]]["names"]["en"], *who, world.country_names[gt["country"][i]]["en"]]
            assert caption == " ".join(words)
    assert "woman nurse" == person_words(0, OCCUPATIONS.index("nurse"))


def test_every_retrieval_caption_in_english_singles_out_its_image(world):
    for bench in (analogs.coco(world, 400, key=3), analogs.flickr(world, 400, key=3), analogs.xm3600(world, 120, key=3)):
        english = [c for c, lang in zip(bench.captions, bench.caption_language) if lang == "en"]
        assert len(english) == len(bench.ids) and len(set(english)) == len(english), bench.name
        assert analogs.caption_ceiling(bench)["en"] == 1.0 and analogs.unique_caption_frac(bench)["en"] == 1.0
        # no two images share what every language's caption says about them
        person = bench.name != "xm3600"
        assert len(np.unique(analogs.description(world, truth(world, bench.ids), person))) == len(bench.ids)


def test_caption_ceiling_is_the_expected_recall_at_1_under_random_tie_breaking():
    # image 0 and 1 share "dog" in de; image 2 is alone; in en all three are distinct
    bench = analogs.Benchmark(name="hand", ids=np.arange(3, dtype=np.int64), labels=None, class_names=None,
                              captions=["dog a", "Hund", "dog b", "Hund", "cat", "Katze"],
                              caption_image=np.array([0, 0, 1, 1, 2, 2]),
                              caption_language=["en", "de", "en", "de", "en", "de"], meta=None)
    assert analogs.caption_ceiling(bench) == {"de": pytest.approx((0.5 + 0.5 + 1) / 3), "en": 1.0}
    assert analogs.unique_caption_frac(bench) == {"de": pytest.approx(1 / 3), "en": 1.0}
    with pytest.raises(ValueError, match="analog 'x' has no captions"):
        analogs.caption_ceiling(analogs.Benchmark("x", bench.ids, None, None, None, None, None, None))


def test_balance_where_promised(benches):
    def counts(column, values):
        return [int((column == v).sum()) for v in values]
    assert counts(benches["geode"].meta["region"], REGIONS) == [10] * 6
    assert counts(benches["xm3600"].meta["region"], REGIONS) == [2] * 6
    assert counts(benches["dollarstreet"].meta["income"], INCOME_GROUPS) == [10] * 4
    assert counts(benches["fairface"].meta["gender"], GENDERS) == [20, 20]
    cells = benches["fairface"].meta.groupby(["gender", "occupation"]).size()
    assert len(cells) == 20 and set(cells) == {2}
    assert np.bincount(benches["imagenet"].labels, minlength=143).tolist() == [2] * 143
    assert np.bincount(benches["cifar100"].labels, minlength=100).tolist() == [2] * 100
    assert set(benches["dollarstreet"].meta["dollar_street_region"]) <= {"Africa", "Americas", "Asia", "Europe"}


def test_xm3600_has_one_caption_per_language_per_image_in_that_language(world, benches):
    bench = benches["xm3600"]
    gt = truth(world, bench.ids)
    assert len(bench.captions) == len(bench.ids) * 36
    pairs = list(zip(bench.caption_image.tolist(), bench.caption_language))
    assert sorted(pairs) == sorted((i, lang) for i in range(len(bench.ids)) for lang in XM3600_LANGUAGES)
    for caption, image, language in zip(bench.captions, bench.caption_image, bench.caption_language):
        assert caption.startswith(world.concepts[gt["concept"][image]]["names"][language]), (language, caption)
        assert caption.endswith(world.country_names[gt["country"][image]][language]), (language, caption)


def test_fairface_shows_no_association_between_gender_and_occupation(world):
    """The world's stereotype skews occupation by gender; the analog's test images must not, or a
    model would be scored on a bias the pictures carry rather than one it learned."""
    meta = analogs.fairface(world, 400, key=5).meta
    first = meta["occupation"].map(lambda o: OCCUPATIONS.index(o) % 2 == 0)  # the first of its pair
    assert first[meta["gender"] == "female"].mean() == first[meta["gender"] == "male"].mean() == 0.5
    cells = meta.groupby(["gender", "occupation"]).size()
    assert len(cells) == 2 * len(OCCUPATIONS) and set(cells) == {20}


def test_bad_names_sizes_and_splits_are_named(world):
    with pytest.raises(ValueError, match="no benchmark analog 'imagenet1k'"):
        analogs.benchmark(world, "imagenet1k", 10)
    with pytest.raises(ValueError, match="size 3 is smaller than the 6 cells"):
        analogs.geode(world, 3)
    with pytest.raises(ValueError, match="split 'val'"):
        analogs.coco(world, 5, split="val")
