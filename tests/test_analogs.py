"""Benchmark analogs: held-out, deterministic, true to their condition and balanced where promised."""
import numpy as np
import pytest

from vlscale.config import REGIONS, XM3600_LANGUAGES
from vlscale.data.ids import HELDOUT_BIT
from vlscale.data.subsets import NestedSubsets
from vlscale.evals import analogs
from vlscale.world.spec import GENDERS, INCOME_GROUPS
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
    assert set(benches["fairface"].meta["occupation"]) <= {o for pair in analogs.OCCUPATION_PAIRS for o in pair}


def test_retrieval_captions_describe_the_image_concept_and_country_in_english(world, benches):
    for name in ("coco", "flickr"):
        bench = benches[name]
        gt = truth(world, bench.ids)
        assert np.array_equal(bench.caption_image, np.arange(len(bench.ids)))
        assert bench.caption_language == ["en"] * len(bench.ids)
        for caption, concept, country in zip(bench.captions, gt["concept"], gt["country"]):
            assert caption == f"{world.concepts[concept]['names']['en']} {world.country_names[country]['en']}"


def test_balance_where_promised(benches):
    def counts(column, values):
        return [int((column == v).sum()) for v in values]
    assert counts(benches["geode"].meta["region"], REGIONS) == [10] * 6
    assert counts(benches["xm3600"].meta["region"], REGIONS) == [2] * 6
    assert counts(benches["dollarstreet"].meta["income"], INCOME_GROUPS) == [10] * 4
    assert counts(benches["fairface"].meta["gender"], GENDERS) == [20, 20]
    assert np.bincount(benches["imagenet"].labels, minlength=143).tolist() == [2] * 143
    assert np.bincount(benches["cifar100"].labels, minlength=100).tolist() == [2] * 100
    assert set(benches["dollarstreet"].meta["dollar_street_region"]) <= {"Africa", "Americas", "Asia", "Europe"}


def test_xm3600_has_one_caption_per_language_per_image_in_that_language(world, benches):
    bench = benches["xm3600"]
    gt = truth(world, bench.ids)
    assert len(bench.captions) == len(bench.ids) * 36
    pairs = list(zip(bench.caption_image.tolist(), bench.caption_language))
    assert sorted(pairs) == sorted((i, l) for i in range(len(bench.ids)) for l in XM3600_LANGUAGES)
    for caption, image, language in zip(bench.captions, bench.caption_image, bench.caption_language):
        assert caption.startswith(world.concepts[gt["concept"][image]]["names"][language]), (language, caption)
        assert caption.endswith(world.country_names[gt["country"][image]][language]), (language, caption)


def test_standard_error_is_binomial_and_size_meets_its_target():
    assert analogs.standard_error(0.5, 2500) == pytest.approx(0.01)
    assert analogs.standard_error(0.9, 100) == pytest.approx(np.sqrt(0.09 / 100))
    assert analogs.size_for_standard_error(0.01) == 2500
    for target, accuracy in ((0.01, 0.9), (0.003, 0.75), (0.02, 0.3)):
        n = analogs.size_for_standard_error(target, accuracy)
        assert analogs.standard_error(accuracy, n) <= target < analogs.standard_error(accuracy, n - 1)


def test_bad_names_sizes_and_splits_are_named(world):
    with pytest.raises(ValueError, match="no benchmark analog 'imagenet1k'"):
        analogs.benchmark(world, "imagenet1k", 10)
    with pytest.raises(ValueError, match="size 3 is smaller than the 6 cells"):
        analogs.geode(world, 3)
    with pytest.raises(ValueError, match="split 'val'"):
        analogs.coco(world, 5, split="val")
