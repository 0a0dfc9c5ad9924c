"""The filter stage: exact, deterministic, split-independent arms; filter models trained only on reserved ids;
an account that adds up and reports planted removals exactly; errors before any work; real pools streamed.

The stage itself runs twice on the smoke profile, in two processes, in a work folder that holds what the
sample and tokenizer stages write.
"""
import json
import subprocess
import sys

import jax
import numpy as np
import pandas as pd
import pytest
import yaml

from vlscale import siglip
from vlscale.config import ParamsError, validate
from vlscale.data.ids import CLASSIFIER_BIT, HELDOUT_BIT, LOCAL_BITS, SCORER_BIT, TOKENIZER_BIT
from vlscale.data.input import IdSource, read_sample
from vlscale.evals.embedder import Embedder
from vlscale.filtering import account as acc
from vlscale.filtering.classifier import AlignmentHead, auc
from vlscale.filtering.manifest import read_arm
from vlscale.filtering.score import Scorers, pool_shards, score_records, shard_ids
from vlscale.filtering.select import keyed_scores, merge_top_k, shard_top_k, top_k
from vlscale.filtering.stage import run_filter, scorer_ids, web_ids
from vlscale.world.spec import build_world
from vlscale.world.truth import truth

from conftest import ROOT, spoil_member

ARMS = ("clip", "classifier", "english", "random")


# ------------------------------------------------------------------------------------------ selection

def test_top_k_keeps_exactly_k_best_first_ties_to_the_smaller_id_nan_last():
    ids = np.array([50, 10, 40, 20, 30, 60])
    scores = np.array([0.5, 0.9, 0.5, np.nan, 0.5, 0.1])
    assert top_k(ids, scores, 1).tolist() == [10]
    assert top_k(ids, scores, 3).tolist() == [10, 30, 40]  # three tie at 0.5: 30 and 40 before 50
    assert top_k(ids, scores, 5).tolist() == [10, 30, 40, 50, 60]  # NaN ranks below every number
    assert len(top_k(ids, scores, 6)) == 6
    with pytest.raises(ValueError, match="cannot keep 7 pairs: the shards hold only 6"):
        top_k(ids, scores, 7)


@pytest.mark.parametrize("n_shards", [1, 2, 7, 50])
def test_the_selection_does_not_depend_on_how_the_pool_is_split(n_shards):
    rng = np.random.default_rng(0)
    ids = rng.permutation(5000) * 3 + 11
    scores = np.round(rng.random(5000), 2)  # many ties
    whole = top_k(ids, scores, 700)
    cuts = np.sort(rng.choice(np.arange(1, 5000), n_shards - 1, replace=False))
    parts = [shard_top_k(i, s, 700) for i, s in zip(np.split(ids, cuts), np.split(scores, cuts))]
    assert np.array_equal(merge_top_k(parts, 700), whole) and len(whole) == 700
    assert np.all(np.diff(whole) > 0)  # sorted, distinct: the DataComp contract
    with pytest.raises(ValueError, match="repeat an id"):
        merge_top_k(parts + parts[:1], 700)


def test_keyed_scores_are_a_pure_function_of_id_and_key_in_another_process():
    ids = np.arange(0, 10**6, 997, dtype=np.int64)
    here = keyed_scores(ids, 5)
    code = ("import numpy as np, sys; from vlscale.filtering.select import keyed_scores; "
            "sys.stdout.buffer.write(keyed_scores(np.arange(0, 10**6, 997, dtype=np.int64), 5).tobytes())")
    there = np.frombuffer(subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout)
    assert np.array_equal(here, there)
    assert 0 <= here.min() and here.max() < 1 and abs(here.mean() - 0.5) < 0.02
    assert not np.array_equal(here, keyed_scores(ids, 6))


# ------------------------------------------------------------------------------------------ the account

def test_a_planted_filter_is_accounted_exactly(world):
    """Scores planted from the truth: keep the clean captions outside Africa. The account must say so exactly."""
    ids = np.concatenate([shard_ids(s) for s in pool_shards(world.pool_sizes(20000), 4096)])
    gt = truth(world, ids)
    africa = world.regions.index("Africa")
    planted = ((gt["caption_kind"] == 0) & (gt["region"] != africa)).astype(float)
    k = int(planted.sum())
    kept = np.isin(ids, top_k(ids, planted, k))
    assert np.array_equal(kept, planted == 1)
    a = acc.account(acc.labels(world, gt), kept, "planted").set_index(["grouping", "group"])
    assert a.loc[("region", "Africa"), "kept"] == 0 and a.loc[("region", "Africa"), "removal_rate"] == 1.0
    assert a.loc[("region", "Africa"), "removed"] == int((gt["region"] == africa).sum())
    for kind in ("misaligned", "vague"):
        assert a.loc[("caption_kind", kind), "kept"] == 0
    clean_outside = int(((gt["caption_kind"] == 0) & (gt["region"] != africa)).sum())
    assert a.loc[("caption_kind", "clean"), "kept"] == clean_outside == k
    europe = (gt["region"] == world.regions.index("Europe"))
    assert a.loc[("region", "Europe"), "kept"] == int((europe & (gt["caption_kind"] == 0)).sum())
    # every grouping adds up to the pool and the kept set; the noise account follows
    assert (a.groupby(level=0)["pool"].sum() == len(ids)).all() and (a.groupby(level=0)["kept"].sum() == k).all()
    noise = acc.noise_from_account(a.reset_index())["planted"]
    noisy = int((gt["caption_kind"] != 0).sum())
    assert noise["recall"] == 1.0 and noise["noisy_removed"] == noisy
    assert noise["precision"] == pytest.approx(noisy / (len(ids) - k)) and noise["noise_share_kept"] == 0


def test_shards_counts_add_up_to_the_whole_account(world):
    ids = np.concatenate([shard_ids(s) for s in pool_shards(world.pool_sizes(9000), 1000)])
    gt = truth(world, ids)
    kept = keyed_scores(ids, 1) < 0.3
    whole = acc.finish(acc.count_table(acc.labels(world, gt), {"r": kept}))
    parts = [acc.count_table(acc.labels(world, truth(world, i)), {"r": k})
             for i, k in zip(np.array_split(ids, 4), np.array_split(kept, 4))]
    pd.testing.assert_frame_equal(acc.finish(acc.add_counts(parts)), whole)
    broken = whole.assign(kept=whole["kept"] + (whole["group"] == "Africa"))
    with pytest.raises(AssertionError, match="pool != kept \\+ removed"):
        acc.check_identity(broken)
    with pytest.raises(AssertionError, match="add up to different totals"):
        acc.check_identity(broken.assign(removed=broken["pool"] - broken["kept"]))


# ------------------------------------------------------------------------------------------ the classifier

def test_the_alignment_head_separates_what_is_separable_and_not_noise():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 5))
    y = (x[:, 0] + 0.5 * x[:, 3] > 0).astype(int)
    head = AlignmentHead.fit(x[:1500], y[:1500])
    assert auc(head.prob(x[1500:]), y[1500:]) > 0.97
    noise = AlignmentHead.fit(x[:1500], rng.integers(0, 2, 1500))
    assert abs(auc(noise.prob(x[1500:]), rng.integers(0, 2, 500)) - 0.5) < 0.08
    assert auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75
    with pytest.raises(ValueError, match="both classes"):
        AlignmentHead.fit(x[:10], np.ones(10))


# ------------------------------------------------------------------------------------------ the filter models' data

def test_the_filter_models_train_only_on_ids_outside_every_pool_benchmark_and_tokenizer_sample(world):
    scorer, web, labelled = scorer_ids(world, 3000), web_ids(world, 3000), web_ids(world, 500, labelled=True)
    for ids, bit in ((scorer, SCORER_BIT), (web, CLASSIFIER_BIT), (labelled, CLASSIFIER_BIT)):
        assert np.all((ids >> bit) & 1 == 1)
        for other in {SCORER_BIT, CLASSIFIER_BIT, HELDOUT_BIT, TOKENIZER_BIT} - {bit}:
            assert not np.any((ids >> other) & 1)  # not a benchmark's, the tokenizer's or the other model's
        assert np.all(ids >= 1 << (LOCAL_BITS + 12))  # every pool id of any size is below 2^52 (data/ids.py)
    assert len(np.intersect1d(web, labelled)) == 0 and len(np.unique(scorer)) == 3000
    gt = truth(world, scorer)  # the curated English source: English pages, clean English captions
    en = world.stratum_of("en")
    assert (gt["stratum"] == en).all() and (gt["caption_kind"] == 0).all() and (gt["caption_language"] == en).all()
    web_strata = np.bincount(truth(world, web)["stratum"], minlength=len(world.strata))
    assert np.array_equal(web_strata, world.pool_sizes(3000))  # the web's language mix
    assert (truth(world, labelled)["caption_kind"] != 0).mean() > 0.1  # raters see noisy pairs too


def test_an_id_source_reads_its_ids_in_their_natural_mix(world):
    ids = scorer_ids(world, 500)
    source = IdSource(world, ids[::-1], key=3)
    assert len(source) == 500 and np.array_equal(np.sort(source.ids(np.arange(500))), np.sort(ids))
    fields, texts = source.read(np.arange(8))
    assert len(texts) == 8 and fields["id_hi"].dtype == np.uint32
    with pytest.raises(ValueError, match="distinct ids"):
        IdSource(world, np.concatenate([ids, ids[:3]]), key=3)


# ------------------------------------------------------------------------------------------ the stage

@pytest.fixture(scope="module")
def workdir(filter_workdir):
    """conftest.filter_workdir: the smoke filter stage run twice, in two processes."""
    return filter_workdir


def test_every_arm_keeps_exactly_k_and_is_the_same_in_two_processes(workdir):
    manifest = json.loads((workdir / "data/filter/manifest.json").read_text())
    p = validate(yaml.safe_load((workdir / "params.yaml").read_text()))
    _, _, pool = read_sample(build_world(p["world"]), workdir / "data/sample", None)
    k = int(pool.counts(p["filter"]["keep_fraction"]).sum())
    assert manifest["k"] == k and set(manifest["arms"]) == set(ARMS)
    for arm in ARMS:
        ids, entry = read_arm(arm, workdir / "data/filter")
        again, _ = read_arm(arm, workdir / "data/filter_again")
        assert len(ids) == k and np.all(np.diff(ids) > 0) and np.array_equal(ids, again), arm
        assert pool.contains(ids, 1.0).all()  # every kept pair is a pool pair
    random, _ = read_arm("random", workdir / "data/filter")
    assert np.array_equal(random, pool.ids(p["filter"]["keep_fraction"]))  # the natural 10% subset itself
    english, _ = read_arm("english", workdir / "data/filter")
    world = build_world(p["world"])
    assert (truth(world, english)["stratum"] == world.stratum_of("en")).all()
    # the scores behind the arms, one parquet per shard, as DataComp writes them
    scores = pd.concat(pd.read_parquet(f) for f in sorted((workdir / "data/filter/scores").glob("*.parquet")))
    assert len(scores) == pool.sizes.sum() and scores["id"].is_unique
    for arm in ("clip", "classifier"):
        ids, _ = read_arm(arm, workdir / "data/filter")
        assert np.array_equal(ids, top_k(scores["id"].to_numpy(), scores[arm].to_numpy(), k))


def test_the_stage_account_adds_up_for_every_arm_and_the_random_arm_keeps_proportions(workdir):
    account = pd.read_parquet(workdir / "data/filter/account.parquet")
    acc.check_identity(account)
    manifest = json.loads((workdir / "data/filter/manifest.json").read_text())
    assert set(account["arm"]) == set(ARMS) and set(account["grouping"]) == set(acc.GROUPINGS)
    for arm, a in account.groupby("arm"):
        assert (a.groupby("grouping")["kept"].sum() == manifest["k"]).all()
    en = account[(account["arm"] == "english") & (account["grouping"] == "language")].set_index("group")
    assert en.loc["en", "kept"] == manifest["k"] and en.drop("en")["kept"].sum() == 0
    head = manifest["models"]["classifier"]["head"]
    assert head["labelled"] == head["train"] + head["holdout"] and 0 <= head["holdout_auc"] <= 1


def test_a_bad_scorer_checkpoint_fails_before_any_work_naming_the_key(workdir, tmp_path):
    p = validate(yaml.safe_load((workdir / "params.yaml").read_text()))
    out = tmp_path / "out"
    import os
    here = os.getcwd()
    os.chdir(workdir)
    try:
        missing = {**p, "filter": {**p["filter"], "scorer": {**p["filter"]["scorer"], "checkpoint": "no/such/dir"}}}
        with pytest.raises(ParamsError, match="filter.scorer.checkpoint = 'no/such/dir'"):
            run_filter(missing, out)
        ckpt = json.loads((workdir / "data/filter/manifest.json").read_text())["models"]["scorer"]["checkpoint"]
        wider = {**p["model"], "image": {**p["model"]["image"], "width": 48}}
        mismatch = {**missing, "model": wider,
                    "filter": {**p["filter"], "scorer": {**p["filter"]["scorer"], "checkpoint": ckpt}}}
        with pytest.raises(ParamsError, match="filter.scorer.checkpoint = .*seen_"):
            run_filter(mismatch, out)
    finally:
        os.chdir(here)
    assert not out.exists()  # nothing written, nothing lost


def test_params_name_an_unknown_arm_and_a_keep_fraction_outside_0_1():
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for change, message in ((("arms", ["clip", "cleanest"]), "filter.arms = \\['clip', 'cleanest'\\]: unknown arms"),
                            (("keep_fraction", 0), "filter.keep_fraction = 0"),
                            (("keep_fraction", 1.5), "filter.keep_fraction = 1.5")):
        bad = {**raw, "filter": {**raw["filter"], change[0]: change[1]}}
        with pytest.raises(ParamsError, match=message):
            validate(bad)
    bad = {**raw, "runs": {**raw["runs"], "f_x": {"fraction": 1.0, "filter": "cleanest"}}}
    with pytest.raises(ParamsError, match="runs.f_x.filter = 'cleanest': not one of filter.arms"):
        validate(bad)
    bad = {**raw, "runs": {**raw["runs"], "f_x": {"fraction": 0.1, "filter": "clip"}}}
    with pytest.raises(ParamsError, match="runs.f_x.fraction = 0.1: a filter arm is drawn from the whole pool"):
        validate(bad)


# ------------------------------------------------------------------------------------------ real pools

def test_a_real_pool_is_scored_shard_by_shard_and_bad_records_are_counted_not_fatal(world, real_sample, tmp_path):
    _, _, records = read_sample(world, real_sample, None)
    model = siglip.model_from_config({
        "image_model": "vit", "text_model": "text_transformer",
        "image": {"width": 32, "depth": 1, "mlp_dim": 64, "num_heads": 2, "patch_size": [8, 8], "pool_type": "map"},
        "text": {"width": 32, "depth": 1, "mlp_dim": 64, "num_heads": 2, "vocab_size": 300},
        "out_dim": [None, 32], "temperature_init": 10.0, "bias_init": -10.0})
    params = model.init(jax.random.PRNGKey(0), np.zeros((1, 16, 16, 3), np.float32), np.zeros((1, 8), np.int32))["params"]
    emb = Embedder(lambda x: siglip.embed_images(model, params, x), lambda t: siglip.embed_texts(model, params, t),
                   lambda texts: np.array([[(sum(map(ord, w)) % 297) + 3 for w in t.split()[:7]] + [1] * (8 - len(t.split()[:7]))
                                           for t in texts], np.int32), batch_size=8)
    shard = records["shard"].iloc[0]
    # after the scan, one image goes bad on disk and one record points at a member that is not there
    spoil_member(shard, "0003.png")
    records = records.copy()
    records.loc[records.index[5], "member"] = "9999.png"
    logged = []
    out = list(score_records(records, Scorers(clip=emb), 16, logged.append))
    assert len(out) == 1 and logged and "24 records" in logged[0]
    _, table, bad = out[0]
    assert dict(bad) == {"corrupt_image": 1, "missing_image": 1}
    assert len(table) == 24 and table["clip"].isna().sum() == 2 and table["clip"].notna().sum() == 22
    assert table.loc[table["uid"] == records.iloc[5]["uid"], "clip"].isna().all()


def test_a_real_pool_gets_clip_english_and_random_arms_and_a_run_reads_its_arms_records(workdir, real_sample, tmp_path,
                                                                                          monkeypatch):
    """On real shards: the scorer is a checkpoint (here the smoke scorer), the arms are record rows with their
    uids beside them, and a filter run's source is those records' pixels."""
    import shutil

    from vlscale.training.run import run_source

    p = validate(yaml.safe_load((workdir / "params.yaml").read_text()))
    ckpt = workdir / json.loads((workdir / "data/filter/manifest.json").read_text())["models"]["scorer"]["checkpoint"]
    shutil.copytree(real_sample, tmp_path / "data/sample")
    shutil.copytree(workdir / "data/tokenizer", tmp_path / "data/tokenizer")
    monkeypatch.chdir(tmp_path)
    real = {**p, "sample": {**p["sample"], "source": "webdataset"},
            "filter": {**p["filter"], "arms": ["clip", "english", "random"], "keep_fraction": 0.25,
                       "scorer": {**p["filter"]["scorer"], "checkpoint": str(ckpt)}}}
    with pytest.raises(ParamsError, match="filter.arms includes 'classifier'"):
        run_filter({**real, "filter": {**real["filter"], "arms": ["classifier"]}}, progress=False, log=lambda m: None)
    manifest = run_filter(real, progress=False, log=lambda m: None)
    assert manifest["source"] == "real" and manifest["pool_pairs"] == 24 and manifest["bad_records"] == {}
    k = manifest["k"]
    _, _, records = read_sample(build_world(p["world"]), "data/sample", None)
    for arm in ("clip", "english", "random"):
        rows, _ = read_arm(arm)
        uids = pd.read_parquet(f"data/filter/{arm}_uids.parquet")["uid"]
        assert len(rows) == k and uids.tolist() == records["uid"].to_numpy()[rows].tolist()
    english, _ = read_arm("english")
    assert k == 6 and set(records["language"].to_numpy()[english]) == {"en"}  # 2 of each language's 8, 6 of 8 en
    source = run_source(build_world(p["world"]), {"filter": "clip"}, 16)
    fields, texts = source.read(np.arange(len(source)))
    assert len(source) == k and fields["image"].shape == (k, 16, 16, 3)
    kept = records.iloc[read_arm("clip")[0]]
    assert sorted(texts) == sorted(f"caption {u[1:]} {l}" for u, l in zip(kept["uid"], kept["language"]))
