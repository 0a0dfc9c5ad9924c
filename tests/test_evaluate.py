"""The evaluate stage's library: embedding reuse, result rows and their per-item outcomes, the analogs'
protocols, checkpoints, the stage's outputs."""
import json

import jax
import numpy as np
import pandas as pd
import pytest

from vlscale import siglip
from vlscale.evals import analog_eval, stage
from vlscale.evals import rows as ev
from vlscale.evals.embedder import Embedder, Prompts
from vlscale.evals.groups import INCOME, REGIONS, XM3600_LANGUAGES

SMALL_MODEL = {"image_model": "vit", "text_model": "text_transformer",
               "image": {"width": 32, "depth": 1, "mlp_dim": 64, "num_heads": 2, "patch_size": [8, 8],
                         "pool_type": "map"},
               "text": {"width": 32, "depth": 1, "mlp_dim": 64, "num_heads": 2, "vocab_size": 300},
               "out_dim": [None, 32], "temperature_init": 10.0, "bias_init": -10.0}


class CountingEmbedder(Embedder):
    """Texts embed as the one-hot of their index in `vocabulary`; counts the embedding calls."""

    def __init__(self, vocabulary, batch_size=4):
        self.vocabulary, self.calls = list(vocabulary), []
        super().__init__(self._images, self._texts, self._encode, batch_size)

    def _encode(self, texts):
        return np.array([self.vocabulary.index(t) for t in texts])

    def _texts(self, tokens):
        self.calls.append(("texts", len(tokens)))
        return np.eye(len(self.vocabulary))[tokens]

    def _images(self, images):
        self.calls.append(("images", len(images)))
        return images.reshape(len(images), -1)


def test_embedder_pads_to_one_batch_shape_and_embeds_each_text_once():
    emb = CountingEmbedder(["a", "b", "c", "d", "e"], batch_size=4)
    z = emb.texts(["a", "b", "c", "d", "e", "a"])
    assert np.array_equal(z, np.eye(5)[[0, 1, 2, 3, 4, 0]])
    assert emb.calls == [("texts", 4), ("texts", 4)]  # 5 distinct texts, padded to two batches of 4
    emb.texts(["e", "b"])
    assert len(emb.calls) == 2  # remembered
    images = np.arange(6 * 2).reshape(6, 2, 1, 1).astype(np.float32)
    out = emb.images("k", lambda a, b: images[a:b], 6)
    assert np.array_equal(out, images.reshape(6, -1)) and emb.calls[-1] == ("images", 4)
    assert emb.images("k", lambda a, b: 1 / 0, 6) is out  # not recomputed


def test_classification_rows_perfect_and_known_errors():
    names = ["cat", "dog", "cow"]
    emb = CountingEmbedder(names)
    labels = np.array([0, 1, 2, 0, 1, 2])
    zimg = np.eye(3)[labels]
    (row,) = ev.classification_rows("pet", zimg, labels, names, emb, Prompts())
    assert {k: row[k] for k in ("task", "metric", "value", "se", "n")} == dict(
        task="pet/0shot", metric="error_pct", value=0.0, se=0.0, n=6)
    assert row["item"].tolist() == list(range(6)) and row["item_value"].tolist() == [1.0] * 6
    zimg[0] = np.eye(3)[1]  # one of six misread
    (row,) = ev.classification_rows("pet", zimg, labels, names, emb, Prompts())
    assert row["value"] == pytest.approx(100 / 6)
    assert row["se"] == pytest.approx(100 * np.sqrt((1 / 6) * (5 / 6) / 6))


def test_retrieval_rows_with_a_known_swap():
    emb_img = np.eye(4)
    ztxt = np.eye(4)[[1, 0, 2, 3]]  # captions of images 0 and 1 swapped
    rows = {r["task"]: r["value"] for r in ev.retrieval_rows("coco", emb_img, ztxt, np.arange(4), ks=(1, 5))}
    assert rows["coco/i2t"] == 50.0 and rows["coco/t2i"] == 50.0
    assert rows["coco/i2t@5"] == 0.0 and rows["coco/t2i@5"] == 0.0


def test_xm3600_rows_name_hebrew_as_crossmodal_does():
    z = np.eye(3)
    rows = ev.xm3600_rows(z, np.concatenate([z, z]), np.tile(np.arange(3), 2), ["he"] * 3 + ["te"] * 3, ["he", "te"])
    assert [r["task"] for r in rows] == ["xm3600/i2t/iw", "xm3600/t2i/iw", "xm3600/i2t/te", "xm3600/t2i/te"]
    assert all(r["value"] == 0.0 for r in rows)


def test_few_shot_rows_leave_out_classes_without_enough_shots():
    rng = np.random.default_rng(0)
    train_y = np.repeat([0, 1, 2], [12, 12, 3])  # class 2 has only 3 training images
    test_y = np.array([0, 1, 2, 2])
    centres = np.eye(3) * 5
    train_x = centres[train_y] + rng.normal(0, 0.1, (len(train_y), 3))
    test_x = centres[test_y]
    (row,) = ev.few_shot_rows("geode/country_geoloc_10shot", train_x, train_y, test_x, test_y, shots=10)
    assert row["n"] == 2 and row["value"] == 0.0  # the class-2 images left the test with their class
    assert row["item"].tolist() == [0, 1]  # the items name the test images that stayed
    assert ev.few_shot_rows("x", train_x, np.zeros_like(train_y), test_x, np.zeros_like(test_y), 10) == []


def test_subgroup_rows_give_per_group_errors_and_the_gap():
    correct = np.array([1, 1, 1, 0, 1, 0, 0, 0], bool)
    groups = np.array(["0-200"] * 4 + [">1998"] * 4, dtype=object)
    rows = {r["task"]: r for r in ev.subgroup_rows("ds", correct, groups, ev.INCOME_TASKS, "ds/gap")}
    assert rows[INCOME[0]]["value"] == 25.0 and rows[INCOME[3]]["value"] == 75.0
    assert rows["ds/gap"]["metric"] == "gap_pct" and rows["ds/gap"]["value"] == 50.0
    assert rows[INCOME[3]]["item"].tolist() == [4, 5, 6, 7] and "item" not in rows["ds/gap"]
    with pytest.raises(ValueError, match="subgroup 'middle'"):
        ev.subgroup_rows("ds", correct, np.array(["middle"] * 8, dtype=object), ev.INCOME_TASKS, "ds/gap")


@pytest.fixture(scope="module")
def untrained(world):
    """A randomly initialised SigLIP on 16 px images, and every analog at a small size."""
    model = siglip.model_from_config(SMALL_MODEL)
    params = model.init(jax.random.PRNGKey(0), np.zeros((1, 16, 16, 3), np.float32), np.zeros((1, 8), np.int32))["params"]
    emb = Embedder(lambda x: siglip.embed_images(model, params, x), lambda t: siglip.embed_texts(model, params, t),
                      lambda texts: np.array([[(sum(map(ord, w)) % 297) + 3 for w in t.split()[:7]] + [1] + [0] * (7 - len(t.split()[:7]))
                                              for t in texts], np.int32), batch_size=256)
    sizes = dict(imagenet=572, cifar100=400, pet=148, coco=200, flickr=100, xm3600=60, dollarstreet=400,
                 geode=360, gldv2=100, fairface=200)
    suite = analog_eval.analog_suite(world, 16, sizes, dict(imagenet=1430, cifar100=1000, pet=370, dollarstreet=1600,
                                                    geode=1800), progress=lambda m: None)
    return suite, emb


def test_every_analog_gives_every_task_and_an_untrained_model_is_at_chance(untrained):
    suite, emb = untrained
    rows = {name: analog_eval.evaluate_analog(suite, name, emb, Prompts()) for name in suite.test}
    tasks = {r["task"] for rs in rows.values() for r in rs}
    expected = {"imagenet/0shot", "imagenet/10shot", "cifar100/0shot", "cifar100/10shot", "pet/0shot", "pet/10shot",
                "coco/i2t", "coco/t2i", "flickr/i2t", "flickr/t2i", "dollarstreet/0shot",
                "dollarstreet/geoloc_10shot", "dollarstreet/disparity_income", "geode/0shot",
                "geode/country_geoloc_10shot", "geode/region_geoloc_10shot", "geode/disparity_region",
                "gldv2/0shot", "fairface/perceived_gender", "fairface/representation_bias"}
    expected |= set(INCOME) | set(REGIONS) | {f"xm3600/{d}/{lang}" for d in ("i2t", "t2i") for lang in XM3600_LANGUAGES}
    expected |= {f"fairface/association_bias/{o}/{g}" for o in
                 ("librarian", "nurse", "housekeeper", "receptionist", "secretary") for g in ("female", "male")}
    assert expected <= tasks
    for r in (r for rs in rows.values() for r in rs):
        assert np.isfinite(r["value"]) and r["n"] > 0
    zero_shot = {r["task"]: r for r in rows["imagenet"] + rows["cifar100"] if r["task"].endswith("0shot")}
    for task, classes in (("imagenet/0shot", 143), ("cifar100/0shot", 100)):
        r = zero_shot[task]  # random embeddings classify at chance, within four standard errors
        assert abs(r["value"] - 100 * (1 - 1 / classes)) < 4 * 100 * np.sqrt((1 / classes) / r["n"]) + 1e-9


def test_rendered_images_are_kept_for_the_next_checkpoint_and_equal_rendering_anew(untrained):
    """The suite renders each analog once and every checkpoint embeds the same pixels; past its cache
    budget it renders batch by batch, with identical images."""
    import dataclasses

    suite, _ = untrained
    kept = dataclasses.replace(suite)  # a fresh cache
    seen = []
    record = lambda start, stop, make: seen.append(np.asarray(make(start, stop)))  # noqa: E731
    cached = Embedder(lambda x: x.reshape(len(x), -1)[:, :4], None, None, batch_size=128)
    cached.images = lambda key, make, count: [record(a, min(a + 128, count), make) for a in range(0, count, 128)]
    kept.images(cached, "pet")
    assert list(kept._pixels) == ["pet/test"] and kept._pixels["pet/test"].shape == (148, 16, 16, 3)
    from_cache = np.concatenate(seen)
    seen.clear()
    anew = dataclasses.replace(suite, cache_bytes=0)
    anew.images(cached, "pet")
    assert not anew._pixels
    np.testing.assert_array_equal(from_cache, np.concatenate(seen))
    assert from_cache.min() >= -1 and from_cache.max() <= 1


def test_evaluate_run_writes_a_json_per_benchmark_and_tidy_rows(untrained, tmp_path):
    suite, emb = untrained
    run_dir = tmp_path / "runs/s1"
    for seen in (100, 300):
        (run_dir / f"cooldown/seen_{seen:012d}").mkdir(parents=True)
    suites = {"analog": {b: (lambda e, p, s, b=b: analog_eval.evaluate_analog(suite, b, e, p, s)) for b in ("coco", "gldv2")}}
    record = {"profile": "test", "model": "tiny", "provenance": {"git": "x"}}
    table, items = stage.evaluate_run("s1", run_dir, 0.01, 7, 300, suites, lambda ckpt: emb,
                                      {"analog": Prompts()}, tmp_path / "out", record, progress=lambda m: None)
    assert list(table.columns) == list(stage.ROW_COLUMNS) and set(table["seed"]) == {7}
    assert list(items.columns) == list(stage.ITEM_COLUMNS)
    # every error row's value is the mean of its items, per checkpoint
    for r in table[table["metric"] == "error_pct"].itertuples():
        got = items[(items["task"] == r.task) & (items["examples_seen"] == r.examples_seen)]
        assert len(got) == r.n and 100 * (1 - got["value"].mean()) == pytest.approx(r.value, abs=1e-4)
    assert sorted(table["examples_seen"].unique()) == [100, 300]
    assert set(table["budget"]) == {100 / 300, 1.0} and set(table["data_pct"]) == {1.0}
    saved = json.loads((tmp_path / "out/s1/seen_000000000300/analog/gldv2.json").read_text())
    assert saved["examples_seen"] == 300 and saved["provenance"] == {"git": "x"}
    row = table[(table["task"] == "gldv2/0shot") & (table["examples_seen"] == 300)].iloc[0]
    assert saved["results"]["gldv2/0shot"]["value"] == pytest.approx(row["value"])
    pd.testing.assert_frame_equal(table[table["examples_seen"] == 100].drop(columns=["examples_seen", "budget", "checkpoint"]).reset_index(drop=True),
                                  table[table["examples_seen"] == 300].drop(columns=["examples_seen", "budget", "checkpoint"]).reset_index(drop=True))
