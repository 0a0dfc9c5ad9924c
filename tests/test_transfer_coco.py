"""Transfer to real COCO captions (vlscale.transfer.coco and the `python -m vlscale.transfer` CLI) on small COCO folders
in the official layouts: the draw follows the Karpathy split (or a hash of the keys without it), trains on every
reference and tests on all of them; the oracle and chance levels are what their definitions say; the CLI transfers a
checkpoint saved as our trainer saves one."""
import json
import math
import re

import numpy as np
import pandas as pd
import pytest
from flax import traverse_util

from conftest import ROOT, write_coco, write_image
from vlscale import siglip
from vlscale.data.input import center_crop_resize
from vlscale.data.tokenizer import train_tokenizer
from vlscale.evals import real_sets
from vlscale.evals.real_eval import shot_pool
from vlscale.transfer import coco, score
from vlscale.transfer.__main__ import main

OBJECTS = ("dog", "cat", "horse", "bus", "train", "pizza", "bicycle", "kite", "boat", "clock", "giraffe", "zebra",
           "elephant", "surfboard", "umbrella", "bench")
COLOURS = ("red", "black", "white", "brown", "green", "yellow", "blue", "grey")
PLACES = ("on a street", "in a park", "near the water", "in a kitchen", "on the grass", "by a building")
# image i's split in the Karpathy file: 8 train (train2014), 2 restval, 2 val, 4 test (val2014)
SPLITS = ["train"] * 8 + ["restval"] * 2 + ["val"] * 2 + ["test"] * 4
UNRELATED = "a man swinging a tennis racket at a ball"


def captions_of(i: int) -> list[str]:
    """Five references of image i, all about its own object (distinct per image), colour and place."""
    obj, colour, place = OBJECTS[i % len(OBJECTS)], COLOURS[i % len(COLOURS)], PLACES[i % len(PLACES)]
    return [f"A {colour} {obj} {place}.", f"the {obj} is {colour} and sits {place}", f"a photo of a {colour} {obj}",
            f"{obj} standing {place} on a sunny day", f"one {obj} seen {place}"]


def write_karpathy_coco(root, splits=SPLITS):
    """COCO 2014 with the Karpathy split file: image i (cocoid 100 + i) in train2014/ when its split is train, else
    in val2014/, five official captions each (captions_of) in captions_<folder>.json."""
    records, official = [], {"train2014": {"images": [], "annotations": []}, "val2014": {"images": [], "annotations": []}}
    for i, split in enumerate(splits):
        folder = "train2014" if split == "train" else "val2014"
        cocoid, name = 100 + i, f"COCO_{folder}_{100 + i:012d}.jpg"
        write_image(root / folder / name, seed=i)
        official[folder]["images"].append({"id": cocoid, "file_name": name})
        official[folder]["annotations"] += [{"id": 10 * cocoid + k, "image_id": cocoid, "caption": c}
                                            for k, c in enumerate(captions_of(i))]
        records.append({"filepath": folder, "filename": name, "cocoid": cocoid, "split": split,
                        "sentences": [{"raw": c} for c in captions_of(i)]})
    (root / "annotations").mkdir(parents=True)
    for folder, data in official.items():
        (root / "annotations" / f"captions_{folder}.json").write_text(json.dumps(data))
    (root / "dataset_coco.json").write_text(json.dumps({"dataset": "coco", "images": records}))
    return root


def write_coco2017(root, images=12):
    """COCO 2017 val alone (no Karpathy file): `images` images with five captions each."""
    names = [f"{100 + i:012d}.jpg" for i in range(images)]
    for i, name in enumerate(names):
        write_image(root / "val2017" / name, seed=i)
    data = {"images": [{"id": 100 + i, "file_name": n} for i, n in enumerate(names)],
            "annotations": [{"id": 10 * (100 + i) + k, "image_id": 100 + i, "caption": c}
                            for i in range(images) for k, c in enumerate(captions_of(i))]}
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "captions_val2017.json").write_text(json.dumps(data))
    return root


@pytest.fixture(scope="module")
def karpathy(tmp_path_factory):
    root = write_karpathy_coco(tmp_path_factory.mktemp("coco"))
    return root, coco.load_coco(root)


def test_the_draw_trains_on_karpathy_train_and_restval_and_tests_on_its_test_images(karpathy):
    root, data = karpathy
    assert data.examples["split"].value_counts().to_dict() == {"train": 8, "restval": 2, "test": 4}  # no val
    train, test, references = coco.draw(data, train_images=10, test_images=4, seed=0)
    split = data.examples["split"].to_numpy()
    assert set(split[train.ids]) == {"train", "restval"} and set(split[test.ids]) == {"test"}
    assert not set(train.ids) & set(test.ids)
    # rows of the set: its keys name the image files, its captions are the image's own
    for row, refs in zip(test.ids, references):
        index = SPLITS.index("test") + list(np.flatnonzero(split == "test")).index(row)
        assert data.images[row].name == f"COCO_val2014_{100 + index:012d}.jpg"
        assert refs == [c.strip() for c in captions_of(index)]
    assert set(test.task) == {coco.TASK} and set(test.prompts) == {"caption en"} and set(test.languages) == {"en"}
    assert test.answers == [refs[0] for refs in references] and list(test.image) == list(range(4))
    # the same seed draws the same images; another seed other training images, the test draw its own stream
    again = coco.draw(data, 10, 4, seed=0)
    assert np.array_equal(again[0].ids, train.ids) and np.array_equal(again[1].ids, test.ids)
    assert np.array_equal(coco.draw(data, 5, 4, seed=0)[1].ids, test.ids)
    assert len({tuple(coco.draw(data, 5, 2, seed=s)[0].ids) for s in range(6)}) > 1


def test_one_training_example_per_reference_caption(karpathy):
    _, data = karpathy
    train, _, _ = coco.draw(data, 6, 2, seed=3)
    refs = coco.references(data, train.ids)
    assert len(train.answers) == sum(len(r) for r in refs) == 5 * 6
    for k, row in enumerate(train.ids):
        mine = [a for a, image in zip(train.answers, train.image) if image == k]
        assert mine == refs[k] == data.captions.loc[data.captions["image"] == row, "caption"].tolist()
    assert coco.training_references(train) == refs


def test_grading_scores_against_every_reference(karpathy):
    _, data = karpathy
    _, test, references = coco.draw(data, 4, 4, seed=0)
    fourth = coco.grade(test, [refs[3] for refs in references], references)
    unrelated = coco.grade(test, [UNRELATED] * 4, references)
    assert all(a["cider"] > b["cider"] for a, b in zip(fourth, unrelated))
    assert [r["exact_match"] for r in fourth] == [1.0] * 4 and [r["exact_match"] for r in unrelated] == [0.0] * 4
    expected = score.cider([refs[3] for refs in references], references)
    assert [r["cider"] for r in fourth] == pytest.approx(list(expected), abs=1e-12)
    # against the first reference alone (run.grade's way) reference 3 is no exact match and scores less
    first_only = score.cider([refs[3] for refs in references], [[refs[0]] for refs in references])
    assert all(r["cider"] > f for r, f in zip(fourth, first_only))
    assert set(fourth[0]) == {"task", "image", "language", "exact_match", "cider"}


def test_the_oracle_is_each_first_reference_left_out_of_the_others(karpathy):
    _, data = karpathy
    _, test, references = coco.draw(data, 4, 4, seed=1)
    rows = coco.oracle_answers(test, references)
    by_hand = score.cider([r[0] for r in references], [r[1:] for r in references])
    assert [r["cider"] for r in rows] == pytest.approx(list(by_hand), abs=1e-12)
    assert all(np.isfinite(r["cider"]) and r["cider"] > 0 for r in rows)
    assert [r["exact_match"] for r in rows] == [0.0] * 4  # the fixture's references differ from each other


def test_chance_is_one_training_caption_chosen_without_the_test_images(karpathy):
    _, data = karpathy
    train, test, references = coco.draw(data, 10, 4, seed=0)
    caption, rows = coco.chance_answers(train, test, references, seed=0)
    assert caption in train.answers
    assert all(caption != c for refs in references for c in refs)
    assert rows == coco.grade(test, [caption] * 4, references)
    # the best of the candidates on the training images (each scored on the others than its own)
    train_refs = coco.training_references(train)
    means = [np.mean(np.delete(score.cider([a] * len(train_refs), train_refs), k))
             for a, k in zip(train.answers, train.image)]
    assert caption == train.answers[int(np.argmax(means))]
    # the test images do not matter: other test references, the same caption
    assert coco.chance_answers(train, test, [[UNRELATED, UNRELATED]] * 4, seed=0)[0] == caption


def test_too_few_images_is_an_error_that_names_the_root_and_the_numbers(karpathy, tmp_path):
    root, data = karpathy
    with pytest.raises(ValueError, match=rf"COCO at {re.escape(str(root))} .*50 training images asked, 10 available"):
        coco.draw(data, 50, 4, seed=0)
    with pytest.raises(ValueError, match=r"5 test images asked, 4 available"):
        coco.draw(data, 2, 5, seed=0)
    # the conftest's COCO: two Karpathy test images and no training part, split by key instead
    write_coco(tmp_path / "small")
    small = coco.load_coco(tmp_path / "small")
    assert len(small) == 2
    n_train = int(shot_pool(small.examples["key"].tolist(), 0).sum())
    with pytest.raises(ValueError, match=rf"3 training images asked, {n_train} available.* from a split of the 2 "
                                         r"images by a hash"):
        coco.draw(small, 3, 2, seed=0)


def test_without_a_karpathy_file_the_images_are_split_by_key(tmp_path):
    data = coco.load_coco(write_coco2017(tmp_path / "coco2017", images=12))
    assert set(data.examples["split"]) == {"val2017"}
    side = shot_pool(data.examples["key"].tolist(), 7)
    train, test, _ = coco.draw(data, 2, 2, seed=7)
    assert side[train.ids].all() and not side[test.ids].any()
    train_pool, test_pool, how = coco.pools(data, seed=7)
    assert np.array_equal(train_pool, np.flatnonzero(side)) and "hash" in how
    assert len(train_pool) + len(test_pool) == 12


def test_images_are_read_as_the_real_set_evaluation_reads_them(karpathy):
    _, data = karpathy
    rows = np.array([3, 0, 12])
    pixels = coco.load_images(data, rows, 16)
    assert pixels.shape == (3, 16, 16, 3) and pixels.dtype == np.float32
    for got, row in zip(pixels, rows):
        expected = center_crop_resize(real_sets.read_image(data.images[row]), 16).astype(np.float32) / 127.5 - 1.0
        np.testing.assert_array_equal(got, expected)
    assert -1.0 <= pixels.min() and pixels.max() <= 1.0


# --- the CLI on a checkpoint saved as our trainer saves one -------------------------------------------------------

IMG = {"width": 16, "depth": 1, "mlp_dim": 32, "num_heads": 2, "patch_size": [8, 8], "pool_type": "map"}
CONFIG = {"image_model": "vit", "text_model": "text_transformer", "image": IMG,
          "text": {"width": 16, "depth": 1, "mlp_dim": 32, "num_heads": 2, "vocab_size": 40}, "out_dim": [None, 16],
          "temperature_init": 10.0, "bias_init": -10.0}
PX = 16


@pytest.fixture(scope="module")
def checkpoint_and_tokenizer(tmp_path_factory):
    from vlscale.training import checkpoint

    folder = tmp_path_factory.mktemp("ckpt")
    # a fresh model's parameters at its shapes, seeded normal values (Flax's init of the two towers takes ~20 s of
    # CPU here; the loader checks every name and shape all the same)
    rng = np.random.default_rng(0)
    shapes = siglip.param_shapes(siglip.model_from_config(CONFIG), image_size_px=PX, text_len=8)
    params = traverse_util.unflatten_dict({k: rng.normal(0, 0.05, shape).astype(np.float32)
                                           for k, shape in shapes.items()}, sep="/")
    checkpoint.save_params(folder / "cooldown", 3, params, {"step": 3, "model_config": CONFIG})
    corpus = [c for i in range(len(SPLITS)) for c in captions_of(i)] * 4
    tokenizer = train_tokenizer(corpus, 300, folder / "spm.model")
    return folder / "cooldown", tokenizer


def _cli(checkpoint, root, tokenizer, out, *extra):
    return main([str(checkpoint), "--coco", str(root), "--tokenizer", str(tokenizer), "--params",
                 str(ROOT / "params.yaml"), "--out", str(out), "--setting", "frozen",
                 "--decoder", "width=16,depth=1,mlp_dim=32,num_heads=2", "--batch-size", "8", "--steps", "5", *extra])


def test_the_cli_transfers_a_checkpoint_to_coco_and_writes_its_levels(karpathy, checkpoint_and_tokenizer, tmp_path):
    root, data = karpathy
    checkpoint, tokenizer = checkpoint_and_tokenizer
    assert _cli(checkpoint, root, tokenizer, tmp_path / "out", "--train-images", "8", "--test-images", "4") == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert all(math.isfinite(summary["cider"][check]) for check in ("transfer", "oracle", "chance"))
    assert summary["train_images"] == 8 and summary["train_examples"] == 40 and summary["test_images"] == 4
    assert summary["image_px"] == PX and summary["image_tokens"] == (PX // 8) ** 2 and summary["setting"] == "frozen"
    assert summary["recipe"]["steps"] == 5 and summary["decoder"]["width"] == 16
    assert math.isfinite(summary["final_loss"]) and summary["provenance"]["profile"] == "cli"
    # the levels are those of the same draw, computed again
    train, test, references = coco.draw(data, 8, 4, seed=summary["seed"])
    assert summary["test_ids"] == test.ids.tolist()
    oracle = np.mean([r["cider"] for r in coco.oracle_answers(test, references)])
    caption, chance = coco.chance_answers(train, test, references, summary["seed"])
    assert summary["cider"]["oracle"] == pytest.approx(oracle) and summary["chance_caption"] == caption
    assert summary["cider"]["chance"] == pytest.approx(np.mean([r["cider"] for r in chance]))
    rows = pd.read_parquet(tmp_path / "out" / "rows.parquet")
    assert rows.groupby("check").size().to_dict() == {"transfer": 4, "oracle": 4, "chance": 4}
    transfer = rows[rows["check"] == "transfer"]
    assert transfer["cider"].mean() == pytest.approx(summary["cider"]["transfer"])
    assert list(transfer["references"].map(list)) == references
    regraded = coco.grade(test, list(transfer["prediction"]), references)
    assert [r["cider"] for r in regraded] == pytest.approx(list(transfer["cider"]))


def test_the_cli_refuses_bad_input_before_training(karpathy, checkpoint_and_tokenizer, tmp_path, capsys):
    root, _ = karpathy
    checkpoint, tokenizer = checkpoint_and_tokenizer
    cases = [((tmp_path / "nowhere", root), "checkpoint .*nowhere: does not exist"),
             ((checkpoint, tmp_path / "no_coco"), r"--coco .*no_coco: not a directory"),
             ((checkpoint, root, "--train-images", "50"), "50 training images asked, 10 available")]
    for (ckpt, coco_root, *extra), message in cases:
        assert _cli(ckpt, coco_root, tokenizer, tmp_path / "out", *extra) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and re.search(message, err), err
    assert not (tmp_path / "out").exists()
