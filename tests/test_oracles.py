"""Every analog and protocol against an oracle and against chance (evals/oracle.py).

Ground-truth embeddings must reach ~0% error (or the analog's measured caption ceiling), random ones
chance, and an oracle blind to gender no representation or association bias. A benchmark that fails
here hands a model the answer, or denies it, whatever the model learned.
"""
import numpy as np
import pytest

from vlscale.evals import analogs
from vlscale.evals.analog_eval import analog_suite, evaluate_analog
from vlscale.evals.embedder import Prompts
from vlscale.evals.groups import INCOME, REGIONS, XM3600_CODE
from vlscale.evals.oracle import BLOCKS, OracleEmbedder, RandomEmbedder

TEST_SIZES = dict(imagenet=286, cifar100=200, pet=148, coco=200, flickr=100, xm3600=60, dollarstreet=400,
                  geode=360, gldv2=100, fairface=400)
TRAIN_SIZES = dict(imagenet=1430, cifar100=1000, pet=370, dollarstreet=2000, geode=1800)
CLASSES = {"imagenet/0shot": 143, "cifar100/0shot": 100, "pet/0shot": 37, "imagenet/10shot": 143,
           "cifar100/10shot": 100, "pet/10shot": 37, "fairface/perceived_gender": 2}


@pytest.fixture(scope="module")
def suite(world):
    return analog_suite(world, 16, TEST_SIZES, TRAIN_SIZES, key=0, progress=lambda m: None)


def evaluate_all(suite, embedder):
    return {r["task"]: r for name in suite.test for r in evaluate_analog(suite, name, embedder, Prompts(("{}",)))}


@pytest.fixture(scope="module")
def oracle_rows(suite):
    """Each task on the oracle that knows what it asks (OracleEmbedder's blocks)."""
    what = {"concept": OracleEmbedder(suite, ("concept", "gender", "occupation")),
            "place": OracleEmbedder(suite, ("country", "region")), "description": OracleEmbedder(suite, ("description",))}
    rows = {k: evaluate_all(suite, e) for k, e in what.items()}
    reads = lambda task: ("place" if "geoloc" in task else  # noqa: E731
                          "description" if task.split("/")[1].split("@")[0] in ("i2t", "t2i") else "concept")
    return {task: rows[reads(task)][task] for task in rows["concept"]}


def test_the_oracle_classifies_and_geolocalises_every_image(oracle_rows):
    errors = {t: r["value"] for t, r in oracle_rows.items() if r["metric"] == "error_pct" and "xm3600" not in t}
    assert len(errors) >= 30  # 0- and 10-shot, retrieval @1/5/10, subgroups, geolocalisation
    for task, error in errors.items():
        assert error == 0.0, f"{task}: the oracle errs on {error:.2f}% of the images"
    for gap in ("dollarstreet/disparity_income", "geode/disparity_region"):
        assert oracle_rows[gap]["value"] == 0.0


def test_the_oracle_retrieves_every_english_caption_and_reaches_each_languages_ceiling(suite, oracle_rows):
    for name in ("coco", "flickr"):
        for task in (f"{name}/i2t", f"{name}/t2i", f"{name}/i2t@5", f"{name}/t2i@10"):
            assert oracle_rows[task]["value"] == 0.0, task
    ceiling = analogs.caption_ceiling(suite.test["xm3600"])
    assert ceiling["en"] == 1.0
    for language, c in ceiling.items():
        code = XM3600_CODE.get(language, language)
        for d in ("i2t", "t2i"):
            assert oracle_rows[f"xm3600/{d}/{code}"]["value"] == pytest.approx(100 * (1 - c), abs=1e-6), (d, language)


def test_an_oracle_blind_to_gender_shows_no_representation_or_association_bias(suite):
    rows = evaluate_all(suite, OracleEmbedder(suite, [b for b in BLOCKS if b != "gender"]))
    assert rows["fairface/representation_bias"]["value"] == 50.0
    assert rows["fairface/perceived_gender"]["value"] == 50.0  # it cannot tell: every image a tie
    firsts = {t.split("/")[2] for t in rows if t.startswith("fairface/association_bias/")}
    assert len(firsts) == 5
    for first in firsts:
        female, male = (rows[f"fairface/association_bias/{first}/{g}"]["value"] for g in ("female", "male"))
        # it reads occupation perfectly; the analog's cells make occupation independent of gender
        assert female == pytest.approx(male, abs=1e-12) and female == pytest.approx(0.5)


def test_random_embeddings_give_chance_on_every_task(suite):
    rows = evaluate_all(suite, RandomEmbedder(suite))
    for task, r in rows.items():
        if r["metric"] == "error_pct" and task in CLASSES:
            chance = 100 * (1 - 1 / CLASSES[task])
        elif r["metric"] == "error_pct" and task.split("/")[1] in ("i2t", "t2i"):
            n_images = len(suite.test[task.split("/")[0]].ids)
            chance = 100 * (1 - 1 / n_images)
        elif r["metric"] == "male_preference_pct":
            chance = 50.0
        elif r["metric"] == "probability":
            assert abs(r["value"] - 0.5) <= 4 * np.sqrt(0.25 / r["n"]) + 1e-9, task
            continue
        else:
            continue
        se = 100 * np.sqrt(max(chance / 100 * (1 - chance / 100), 1 / r["n"]) / r["n"])
        assert abs(r["value"] - chance) <= 4 * se + 1e-9, f"{task}: {r['value']:.2f}% vs chance {chance:.2f}%"
    # the subgroup tasks of Dollar Street and GeoDE are present for the gap statistics
    assert set(INCOME) | set(REGIONS) <= set(rows)


def test_the_oracle_refuses_a_prompt_it_cannot_read(suite):
    with pytest.raises(KeyError, match="does not know what"):
        OracleEmbedder(suite).texts(["a photo of a dog"])
