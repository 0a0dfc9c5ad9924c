"""The filter stage: exact, deterministic, split-independent arms; the clip and english arms on English captions,
the planted arm off place-bound concepts; filter models trained only on reserved ids; an
account that adds up and reports planted removals exactly; errors before any work; real pools streamed.

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

from conftest import ROOT, spoil_member
from vlscale import siglip
from vlscale.config import FILTER_ARMS, CustomParams, ParamsError, validate
from vlscale.data.filter_arms import read_arm
from vlscale.data.input import IdSource, read_sample
from vlscale.data.subsets import derive_key
from vlscale.evals.embedder import Embedder
from vlscale.filtering import account as acc
from vlscale.filtering import arms as filter_arms
from vlscale.filtering.classifier import AlignmentHead, auc
from vlscale.filtering.score import Scorers, pool_shards, score_record_shard, score_records, shard_ids
from vlscale.filtering.select import keyed_scores, merge_top_k, shard_top_k, top_k
from vlscale.filtering.stage import draw_account, run_filter, scorer_ids, web_ids
from vlscale.world.ids import CLASSIFIER_BIT, HELDOUT_BIT, LOCAL_BITS, SCORER_BIT, TOKENIZER_BIT
from vlscale.world.spec import build_world
from vlscale.world.truth import truth


def pool_of(world, n: int, shard_size: int) -> tuple[list, np.ndarray, dict]:
    """(shards, ids, truth) of a synthetic pool of n pairs cut into shards of shard_size."""
    shards = pool_shards(world.pool_sizes(n), shard_size)
    ids = np.concatenate([shard_ids(s) for s in shards])
    return shards, ids, truth(world, ids)


def excluded_by_planted(world, gt) -> np.ndarray:
    """The pairs the planted arm must never keep, from the truth: a culture-specific concept, one with regional
    variants, or a landmark."""
    concept = gt["concept"]
    return (world.culture_region[concept] >= 0) | world.has_variants[concept] | (concept >= world.landmark_start)


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


# ------------------------------------------------------------------------------------------ the arms' definitions

def test_the_arm_names_are_the_params_arms():
    assert set(filter_arms.SCORED_ARMS) | {"random", "balanced"} == set(FILTER_ARMS)  # two arms are not a top k
    assert set(filter_arms.SELECTION_COLUMN) == set(filter_arms.ELIGIBLE) == set(filter_arms.SCORED_ARMS)


def select_arms(world, shards, ids, gt, cosine, key=0, k=1500):
    """Every scored arm of a pool with scorer cosines `cosine`, per shard then merged, as the stage selects."""
    candidates = {a: [] for a in filter_arms.SCORED_ARMS if a not in ("classifier", "custom")}
    at = 0
    for shard in shards:
        here = slice(at, at + shard[2] - shard[1])
        at = here.stop
        g = {f: v[here] for f, v in gt.items()}
        english = filter_arms.english_caption(world, g)
        raw = {"clip": cosine[here]}
        planted_ok = filter_arms.planted_eligible(world, g)
        columns = raw | filter_arms.selection_scores(ids[here], raw, english, key, planted_ok)
        for arm, c in filter_arms.shard_candidates(ids[here], columns, list(candidates), k).items():
            candidates[arm].append(c)
    return {arm: filter_arms.merge_arm(arm, c, k) for arm, c in candidates.items()}


def test_clip_keeps_the_top_k_of_english_captions_and_english_draws_english_captions_not_pages(world):
    shards, ids, gt = pool_of(world, 20000, 3000)
    cosine = np.round(np.random.default_rng(0).random(len(ids)), 3)  # ties, and no preference for English
    k = 1500
    arms = select_arms(world, shards, ids, gt, cosine, k=k)
    en = world.stratum_of("en")
    english = gt["caption_language"] == en
    assert np.array_equal(arms["clip"], top_k(ids[english], cosine[english], k))
    assert (truth(world, arms["clip"])["caption_language"] == en).all()
    old = top_k(ids, cosine, k)  # the top k of the whole multilingual pool: the clip_multilingual arm
    assert np.array_equal(arms["clip_multilingual"], old) and not np.array_equal(arms["clip"], old)
    assert (truth(world, old)["caption_language"] != en).mean() > 0.4
    # english: a keyed draw among English captions, whatever the page's language
    kept = truth(world, arms["english"])
    assert len(arms["english"]) == k and (kept["caption_language"] == en).all()
    assert (kept["stratum"] != en).sum() > 50  # English alt-text of other pages: the page definition would miss it
    draw = keyed_scores(ids, derive_key(0, filter_arms.ENGLISH_KEY))
    assert np.array_equal(arms["english"], top_k(ids[english], draw[english], k))


def test_the_planted_arm_keeps_k_pairs_of_concepts_bound_to_no_place_at_random(world):
    shards, ids, gt = pool_of(world, 20000, 3000)
    cosine = np.zeros(len(ids))
    arms = select_arms(world, shards, ids, gt, cosine)
    excluded = excluded_by_planted(world, gt)
    assert gt["is_landmark"].any() and (world.culture_region[gt["concept"]] >= 0).any()
    assert world.has_variants[gt["concept"]].any() and not world.has_variants[gt["concept"][np.isin(ids, arms["planted"])]].any()
    planted = arms["planted"]
    assert len(planted) == 1500 and not excluded[np.isin(ids, planted)].any()
    draw = keyed_scores(ids, derive_key(0, filter_arms.PLANTED_KEY))
    assert np.array_equal(planted, top_k(ids[~excluded], draw[~excluded], 1500))  # a pure function of ids and key
    other_split = pool_shards(world.pool_sizes(20000), 7000)
    assert np.array_equal(planted, select_arms(world, other_split, ids, gt, cosine)["planted"])
    assert not np.array_equal(planted, select_arms(world, shards, ids, gt, cosine, key=1)["planted"])
    assert len(np.intersect1d(planted, arms["english"])) < 0.7 * 1500  # its own draw, not the English arm's


def test_an_arm_with_fewer_eligible_pairs_than_k_names_the_arm_k_and_the_count(world):
    shards, ids, gt = pool_of(world, 5000, 700)
    n_english = int((gt["caption_language"] == world.stratum_of("en")).sum())
    cosine = np.random.default_rng(1).random(len(ids))
    with pytest.raises(ValueError, match=f"filter arm 'clip' keeps k = {n_english + 1:,} pairs, but the pool has "
                                         f"only {n_english:,} pairs with an English caption"):
        select_arms(world, shards, ids, gt, cosine, k=n_english + 1)
    assert len(select_arms(world, shards, ids, gt, cosine, k=n_english)["clip"]) == n_english


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


def test_the_account_groups_by_caption_language_and_it_adds_up(world):
    _, ids, gt = pool_of(world, 20000, 4096)
    english = gt["caption_language"] == world.stratum_of("en")
    kept = {"english_only": english & (keyed_scores(ids, 2) < 0.5), "any": keyed_scores(ids, 3) < 0.2}
    table = acc.finish(acc.count_table(acc.labels(world, gt), kept))
    assert "caption_language" in acc.GROUPINGS and set(table["grouping"]) == set(acc.GROUPINGS)
    for arm, mask in kept.items():
        a = table[(table["arm"] == arm) & (table["grouping"] == "caption_language")].set_index("group")
        want_pool = np.bincount(gt["caption_language"], minlength=len(world.strata))
        want_kept = np.bincount(gt["caption_language"][mask], minlength=len(world.strata))
        for lang in a.index:
            assert a.loc[lang, "pool"] == want_pool[world.stratum_of(lang)], lang
            assert a.loc[lang, "kept"] == want_kept[world.stratum_of(lang)], lang
        assert a["pool"].sum() == len(ids) and a["kept"].sum() == mask.sum()
        assert (a["kept"] + a["removed"] == a["pool"]).all()
    # the caption language differs from the page language: English alt-text on other pages
    lang = table[(table["arm"] == "any") & (table["grouping"] == "language")].set_index("group")
    cap = table[(table["arm"] == "any") & (table["grouping"] == "caption_language")].set_index("group")
    assert cap.loc["en", "pool"] > lang.loc["en", "pool"]
    shares = acc.shares(table)
    assert shares["english_caption_share"]["english_only"] == 1.0
    assert shares["english_caption_share"]["pool"] == pytest.approx(english.mean())
    assert shares["english_caption_share"]["any"] == pytest.approx(english[kept["any"]].mean())
    culture_or_landmark = (world.culture_region[gt["concept"]] >= 0) | (gt["concept"] >= world.landmark_start)
    assert shares["culture_or_landmark_share"]["pool"] == pytest.approx(culture_or_landmark.mean())
    assert shares["culture_or_landmark_share"]["any"] == pytest.approx(culture_or_landmark[kept["any"]].mean())


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
        assert np.all(ids >= 1 << (LOCAL_BITS + 12))  # every pool id of any size is below 2^52 (world/ids.py)
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


def stage_scores(out_dir) -> pd.DataFrame:
    """Every pool pair's scores the filter stage wrote to out_dir/scores, one parquet per shard."""
    return pd.concat(pd.read_parquet(f) for f in sorted((out_dir / "scores").glob("*.parquet")))


def test_the_stage_draws_the_figures_of_its_account_that_the_notebook_shows(workdir, tmp_path):
    account = pd.read_parquet(workdir / "data/filter/account.parquet")
    arms = list(json.loads((workdir / "data/filter/manifest.json").read_text())["arms"])
    draw_account(account, arms, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["account.png", "caption_languages.png", "languages.png"]


def test_every_arm_keeps_exactly_k_and_is_the_same_in_two_processes(workdir):
    manifest = json.loads((workdir / "data/filter/manifest.json").read_text())
    p = validate(yaml.safe_load((workdir / "params.yaml").read_text()))
    arms = p.filter.arms
    _, _, pool = read_sample(build_world(p.world), workdir / "data/sample", None)
    k = int(pool.counts(p.filter.keep_fraction).sum())
    assert manifest["k"] == k and list(manifest["arms"]) == arms
    for arm in arms:
        ids, entry = read_arm(arm, workdir / "data/filter")
        again, _ = read_arm(arm, workdir / "data/filter_again")
        assert len(ids) == k and np.all(np.diff(ids) > 0) and np.array_equal(ids, again), arm
        assert pool.contains(ids, 1.0).all()  # every kept pair is a pool pair
    random, _ = read_arm("random", workdir / "data/filter")
    assert np.array_equal(random, pool.ids(p.filter.keep_fraction))  # the natural 10% subset itself
    # the scores behind the arms, one parquet per shard, as DataComp writes them
    scores = stage_scores(workdir / "data/filter")
    assert len(scores) == pool.sizes.sum() and scores["id"].is_unique
    for arm in (a for a in arms if a not in ("random", "balanced")):  # balanced: test_the_balanced_arm_...
        ids, _ = read_arm(arm, workdir / "data/filter")
        column = filter_arms.SELECTION_COLUMN[arm]
        assert np.array_equal(ids, top_k(scores["id"].to_numpy(), scores[column].to_numpy(), k)), arm


def test_the_stored_scores_are_what_the_saved_scorer_gives_those_pairs(workdir):
    """The arms are top-k of the stored scores; those scores must be the scorer's own of each pair, recomputed
    here from the saved model and freshly rendered images and captions, not only a column that agrees with
    itself."""
    from vlscale.data.tokenizer import Tokenizer
    from vlscale.filtering.score import Scorers, load_embedder, score_synthetic
    from vlscale.world.render import render_jax

    p = validate(yaml.safe_load((workdir / "params.yaml").read_text()))
    world = build_world(p.world)
    manifest = json.loads((workdir / "data/filter/manifest.json").read_text())
    tokenizer = Tokenizer(workdir / "data/tokenizer/spm.model")
    scorer = load_embedder(p, tokenizer, workdir / manifest["models"]["scorer"]["checkpoint"])
    scores = stage_scores(workdir / "data/filter").sample(48, random_state=0)
    ids = scores["id"].to_numpy()
    _, fresh = score_synthetic(world, ids, Scorers(clip=scorer), render_jax(world, p.train.image_px))
    assert np.allclose(fresh["clip"], scores["clip"].to_numpy(), atol=1e-4)
    assert np.std(fresh["clip"]) > 1e-3  # the pairs are told apart


def test_the_clip_and_english_arms_keep_english_captions_clip_the_best_scored_of_them(workdir):
    """clip: the top k by scorer cosine of the English-caption pairs, not of the whole pool; english: English
    captions at random, whatever the page's language. The scores table keeps every pair's raw cosine."""
    p = validate(yaml.safe_load((workdir / "params.yaml").read_text()))
    world, k = build_world(p.world), json.loads((workdir / "data/filter/manifest.json").read_text())["k"]
    scores = stage_scores(workdir / "data/filter")
    ids, cosine = scores["id"].to_numpy(), scores["clip"].to_numpy()
    en = world.stratum_of("en")
    english = truth(world, ids)["caption_language"] == en
    assert np.array_equal(scores["caption_en"].to_numpy(), english) and not np.isnan(cosine).any()
    assert np.array_equal(np.isnan(scores["clip_en"].to_numpy()), ~english)
    clip, _ = read_arm("clip", workdir / "data/filter")
    assert np.array_equal(clip, top_k(ids[english], cosine[english], k))
    assert (truth(world, clip)["caption_language"] == en).all()
    assert not np.array_equal(clip, top_k(ids, cosine, k))  # not the top k of the whole multilingual pool
    kept = truth(world, read_arm("english", workdir / "data/filter")[0])
    assert (kept["caption_language"] == en).all() and (kept["stratum"] != en).any()  # caption, not page, language


def test_the_stage_account_adds_up_for_every_arm_and_the_random_arm_keeps_proportions(workdir):
    account = pd.read_parquet(workdir / "data/filter/account.parquet")
    acc.check_identity(account)
    manifest = json.loads((workdir / "data/filter/manifest.json").read_text())
    assert set(account["arm"]) == set(manifest["arms"]) and set(account["grouping"]) == set(acc.GROUPINGS)
    for _, a in account.groupby("arm"):
        assert (a.groupby("grouping")["kept"].sum() == manifest["k"]).all()
    for arm in ("english", "clip"):  # every pair either keeps has an English caption
        en = account[(account["arm"] == arm) & (account["grouping"] == "caption_language")].set_index("group")
        assert en.loc["en", "kept"] == manifest["k"] and en.drop("en")["kept"].sum() == 0, arm
        assert manifest["english_caption_share"][arm] == 1.0
    assert 0 < manifest["english_caption_share"]["pool"] < 1
    page = account[(account["arm"] == "english") & (account["grouping"] == "language")].set_index("group")
    assert 0 < page.loc["en", "kept"] < manifest["k"]  # English alt-text on pages of other languages is kept too
    for name in ("english_caption_share", "culture_or_landmark_share"):  # the random arm keeps the pool's mix
        assert manifest[name]["random"] == pytest.approx(manifest[name]["pool"], abs=0.03), name
    head = manifest["models"]["classifier"]["head"]
    assert head["labelled"] == head["train"] + head["holdout"]
    assert head["holdout_auc"] > 0.55  # the head tells held-out clean captions from noisy ones better than chance


def run_filter_in(path, p) -> None:
    """The filter stage on params `p` into path/data/filter, run from `path` (quietly)."""
    import os

    here = os.getcwd()
    os.chdir(path)
    try:
        run_filter(p, "data/filter", progress=False, log=lambda m: None)
    finally:
        os.chdir(here)


PLANTED_ARMS = ["clip", "clip_multilingual", "english", "planted", "random"]


@pytest.fixture(scope="module")
def planted_run(workdir, tmp_path_factory):
    """(folder, params) of the smoke filter stage with PLANTED_ARMS, its scorer the workdir run's checkpoint (so
    nothing is trained), run in a folder of its own holding the workdir's sample and tokenizer."""
    import shutil

    path = tmp_path_factory.mktemp("planted")
    for d in ("data/sample", "data/tokenizer"):
        shutil.copytree(workdir / d, path / d)
    p = validate(yaml.safe_load((workdir / "params.yaml").read_text()))
    ckpt = workdir / json.loads((workdir / "data/filter/manifest.json").read_text())["models"]["scorer"]["checkpoint"]
    scorer = p.filter.scorer.model_copy(update={"checkpoint": str(ckpt)})
    p = p.replace(filter=p.filter.model_copy(update={"arms": PLANTED_ARMS, "scorer": scorer}))
    run_filter_in(path, p)
    return path, p


def test_the_planted_arm_excludes_every_place_bound_pair_and_keeps_k_at_random(planted_run, workdir):
    path, p = planted_run
    world, out = build_world(p.world), path / "data/filter"
    manifest = json.loads((out / "manifest.json").read_text())
    k = manifest["k"]
    assert list(manifest["arms"]) == PLANTED_ARMS and "classifier" not in manifest["models"]
    scores = stage_scores(out)
    ids = scores["id"].to_numpy()
    excluded = excluded_by_planted(world, truth(world, ids))
    assert excluded.sum() > 100
    planted, _ = read_arm("planted", out)
    assert len(planted) == k and not excluded[np.isin(ids, planted)].any()
    draw = keyed_scores(ids, derive_key(p.filter.key, filter_arms.PLANTED_KEY))
    assert np.array_equal(planted, top_k(ids[~excluded], draw[~excluded], k))  # a pure function of ids and filter.key
    assert np.array_equal(np.isnan(scores["planted"].to_numpy()), excluded)
    shares = manifest["culture_or_landmark_share"]
    cultural = (world.culture_region[truth(world, ids)["concept"]] >= 0) | (truth(world, ids)["is_landmark"])
    assert shares["planted"] == 0 and shares["pool"] == pytest.approx(cultural.mean())
    assert shares["random"] == pytest.approx(cultural[scores["random"].to_numpy()].mean()) and shares["random"] > 0.03
    account = pd.read_parquet(out / "account.parquet")
    acc.check_identity(account)
    groups = account[(account["arm"] == "planted") & (account["grouping"] == "concept_group")].set_index("group")
    assert groups.loc[["culture_specific", "landmark"], "kept"].sum() == 0
    assert groups.loc[["culture_specific", "landmark"], "removal_rate"].eq(1.0).all()


def test_clip_multilingual_is_the_old_clip_arm_and_clip_the_same_with_the_same_scorer(planted_run, workdir):
    path, _ = planted_run
    out = path / "data/filter"
    k = json.loads((out / "manifest.json").read_text())["k"]
    scores = stage_scores(out)
    before = stage_scores(workdir / "data/filter")
    np.testing.assert_array_equal(scores["clip"].to_numpy(), before["clip"].to_numpy())  # one scorer, one cosine
    multilingual, _ = read_arm("clip_multilingual", out)
    assert np.array_equal(multilingual, top_k(scores["id"].to_numpy(), scores["clip"].to_numpy(), k))
    for arm in ("clip", "english", "random"):
        assert np.array_equal(read_arm(arm, out)[0], read_arm(arm, workdir / "data/filter")[0]), arm
    shares = json.loads((out / "manifest.json").read_text())["english_caption_share"]
    assert shares["clip"] == 1.0 and 0 < shares["clip_multilingual"] < 1.0  # the whole pool's top k: every language


def test_a_bad_scorer_checkpoint_fails_before_any_work_naming_the_key(workdir, tmp_path):
    p = validate(yaml.safe_load((workdir / "params.yaml").read_text()))
    out = tmp_path / "out"
    import os
    here = os.getcwd()
    os.chdir(workdir)
    try:
        missing = p.replace(filter=p.filter.model_copy(
            update={"scorer": p.filter.scorer.model_copy(update={"checkpoint": "no/such/dir"})}))
        with pytest.raises(ParamsError, match="filter.scorer.checkpoint = 'no/such/dir'"):
            run_filter(missing, out)
        ckpt = json.loads((workdir / "data/filter/manifest.json").read_text())["models"]["scorer"]["checkpoint"]
        wider = p.model.model_copy(update={"image": {**p.model.image, "width": 48}})
        mismatch = missing.replace(model=wider, filter=p.filter.model_copy(
            update={"scorer": p.filter.scorer.model_copy(update={"checkpoint": ckpt})}))
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
    gone = records.assign(member="9999.png")  # a shard file none of whose records can be read: NaN, not missing
    table, bad = score_record_shard(gone, np.arange(len(gone)), Scorers(clip=emb), 16)
    assert dict(bad) == {"missing_image": 24} and table["clip"].isna().all()


def test_a_real_pool_gets_clip_english_and_random_arms_and_a_run_reads_its_arms_records(workdir, real_sample, tmp_path,
                                                                                          monkeypatch):
    """On real shards: the scorer is a checkpoint (here the smoke scorer), the arms are record rows with their
    uids beside them, clip and english keep records of language "en" only, the classifier and planted arms are
    skipped with a note saying why (so are the CLIP-score arms without a scorer checkpoint), and a filter run's
    source is those records' pixels."""
    import shutil

    from vlscale.config import RunParams
    from vlscale.runs.settings import Run
    from vlscale.training.run import run_source

    p = validate(yaml.safe_load((workdir / "params.yaml").read_text()))
    ckpt = workdir / json.loads((workdir / "data/filter/manifest.json").read_text())["models"]["scorer"]["checkpoint"]
    shutil.copytree(real_sample, tmp_path / "data/sample")
    shutil.copytree(workdir / "data/tokenizer", tmp_path / "data/tokenizer")
    monkeypatch.chdir(tmp_path)
    arms = ["clip", "clip_multilingual", "english", "random"]
    scorer = p.filter.scorer.model_copy(update={"checkpoint": str(ckpt)})
    real = p.replace(sample=p.sample.model_copy(update={"source": "webdataset"}),
                     filter=p.filter.model_copy(update={"arms": arms, "keep_fraction": 0.25, "scorer": scorer}))
    for asked, gone, left in ((["classifier", "english"], "classifier", ["english"]),
                              (["random", "planted"], "planted", ["random"])):  # skipped, with one line saying why
        logged = []
        skipped = run_filter(real.replace(filter=real.filter.model_copy(update={"arms": asked})), progress=False,
                             log=logged.append)
        assert list(skipped["arms"]) == left and list(skipped["skipped_arms"]) == [gone]
        assert "synthetic world's truth" in skipped["skipped_arms"][gone]
        assert logged[0].startswith(f"filter arm '{gone}' skipped: ")
    no_scorer = real.filter.model_copy(update={"scorer": real.filter.scorer.model_copy(update={"checkpoint": None})})
    skipped = run_filter(real.replace(filter=no_scorer), progress=False, log=lambda m: None)
    assert set(skipped["skipped_arms"]) == {"clip", "clip_multilingual"} and list(skipped["arms"]) == ["english", "random"]
    assert not (tmp_path / "data/filter/models").exists()  # no scorer was trained for them
    with pytest.raises(ValueError, match="filter arm 'clip' keeps k = 12 pairs, but the pool has only 8 pairs with an "
                                         "English caption"):
        run_filter(real.replace(filter=real.filter.model_copy(update={"keep_fraction": 0.5})), progress=False,
                   log=lambda m: None)
    manifest = run_filter(real, progress=False, log=lambda m: None)
    assert manifest["source"] == "real" and manifest["pool_pairs"] == 24 and manifest["bad_records"] == {}
    k = manifest["k"]
    _, _, records = read_sample(build_world(p.world), "data/sample", None)
    for arm in arms:
        rows, _ = read_arm(arm)
        uids = pd.read_parquet(f"data/filter/{arm}_uids.parquet")["uid"]
        assert len(rows) == k and uids.tolist() == records["uid"].to_numpy()[rows].tolist()
    language = records["language"].to_numpy()
    for arm in ("english", "clip"):  # 2 of each language's 8 in the random arm, 6 of 8 en in these
        assert k == 6 and set(language[read_arm(arm)[0]]) == {"en"}, arm
    scores = stage_scores(tmp_path / "data/filter").set_index("row").sort_index()
    en = language == "en"
    assert np.array_equal(read_arm("clip")[0], top_k(np.flatnonzero(en), scores["clip"].to_numpy()[en], k))
    assert np.array_equal(read_arm("clip_multilingual")[0], top_k(scores.index.to_numpy(), scores["clip"].to_numpy(), k))
    assert manifest["english_caption_share"] == {"pool": 1 / 3, "clip": 1.0, "clip_multilingual": pytest.approx(
        np.mean(en[read_arm("clip_multilingual")[0]])), "english": 1.0, "random": 1 / 3}
    source = run_source(build_world(p.world), Run("f_clip", RunParams(fraction=1.0, filter="clip"), p.train, p.model),
                        16)
    fields, texts = source.read(np.arange(len(source)))
    assert len(source) == k and fields["image"].shape == (k, 16, 16, 3)
    kept = records.iloc[read_arm("clip")[0]]
    assert sorted(texts) == sorted(f"caption {u[1:]} {lang}" for u, lang in zip(kept["uid"], kept["language"]))


# ------------------------------------------------------------------ the balanced and custom arms in the stage

PLUGIN = '''"""Planted filters for the custom arm's tests."""
import zlib

import numpy as np


def by_id(images, texts, languages, uids, salt=0):
    """A hash of the pair's id (or uid) and `salt`; NaN for a Swahili caption: the kept set is known."""
    s = np.array([zlib.crc32(f"{u}/{salt}".encode()) % 1000003 for u in uids], np.float64)
    return np.where(np.asarray(languages) == "sw", np.nan, s)


def image_mean(images, texts, languages, uids):
    return np.asarray(images, np.float64).mean(axis=(1, 2, 3))


def too_short(images, texts, languages, uids):
    return np.zeros(len(texts) - 1)


not_a_function = 3
'''


def planted_score(uids, languages, salt) -> np.ndarray:
    """The planted filter's scores, computed here (not by the stage)."""
    import zlib
    s = np.array([zlib.crc32(f"{u}/{salt}".encode()) % 1000003 for u in uids], np.float64)
    return np.where(np.asarray(languages) == "sw", np.nan, s)


@pytest.fixture(scope="module")
def plugin_run(workdir, tmp_path_factory):
    """(folder, params) of the smoke filter stage with the custom (planted_filters.by_id, salt 7), balanced, english
    and random arms (no model to train), in a folder holding the workdir's sample and tokenizer and the plug-in."""
    import shutil

    path = tmp_path_factory.mktemp("plugin")
    for d in ("data/sample", "data/tokenizer"):
        shutil.copytree(workdir / d, path / d)
    (path / "planted_filters.py").write_text(PLUGIN)
    p = validate(yaml.safe_load((workdir / "params.yaml").read_text()))
    p = p.replace(filter=p.filter.model_copy(update={
        "arms": ["custom", "balanced", "english", "random"],
        "custom": CustomParams(name="planted_filters:by_id", kwargs={"salt": 7})}))
    run_filter_in(path, p)
    return path, p


def test_the_custom_arm_keeps_the_top_k_of_a_planted_scorer_and_records_it(plugin_run):
    path, p = plugin_run
    world, out = build_world(p.world), path / "data/filter"
    manifest = json.loads((out / "manifest.json").read_text())
    k = manifest["k"]
    scores = stage_scores(out)
    ids = scores["id"].to_numpy()
    languages = np.asarray(world.strata)[truth(world, ids)["caption_language"]]
    want = planted_score(ids, languages, 7)
    np.testing.assert_array_equal(scores["custom"].to_numpy(), want)
    kept, entry = read_arm("custom", out)
    assert np.array_equal(kept, top_k(ids, want, k)) and len(kept) == k
    assert not (languages[np.isin(ids, kept)] == "sw").any() and (languages == "sw").any()
    import hashlib
    record = manifest["custom"]
    assert record["name"] == "planted_filters:by_id" and record["kwargs"] == {"salt": 7}
    assert record["sha256"] == hashlib.sha256((path / "planted_filters.py").read_bytes()).hexdigest()
    account = pd.read_parquet(out / "account.parquet")
    acc.check_identity(account)
    sw = account[(account["arm"] == "custom") & (account["grouping"] == "caption_language")].set_index("group")
    assert sw.loc["sw", "kept"] == 0 and sw.loc["sw", "removal_rate"] == 1.0  # accounted: what it removed
    # a run on the arm reads exactly its pairs
    import os

    from vlscale.config import RunParams
    from vlscale.runs.settings import Run
    from vlscale.training.run import run_source
    here = os.getcwd()
    os.chdir(path)
    try:
        source = run_source(world, Run("f_custom", RunParams(fraction=1.0, filter="custom"), p.train, p.model),
                            p.train.image_px)
    finally:
        os.chdir(here)
    assert len(source) == k and np.array_equal(np.sort(source.ids(np.arange(k))), kept)


def test_the_custom_filter_sees_the_rendered_pixels_and_bad_plugins_fail_before_any_work(plugin_run, tmp_path,
                                                                                            monkeypatch):
    from vlscale.filtering.custom import load_custom
    from vlscale.filtering.score import score_synthetic
    from vlscale.world.render import render_jax, render_padded

    path, p = plugin_run
    monkeypatch.chdir(path)
    world = build_world(p.world)
    ids = stage_scores(path / "data/filter")["id"].to_numpy()[:40]
    mean = load_custom(CustomParams(name="planted_filters:image_mean"))
    pixels = render_padded(render_jax(world, p.train.image_px), ids, 64)[:40]
    _, stage_like = score_synthetic(world, ids, Scorers(custom=mean), render_jax(world, p.train.image_px))
    np.testing.assert_allclose(stage_like["custom"], pixels.astype(np.float64).mean(axis=(1, 2, 3)), rtol=1e-6)
    assert np.std(stage_like["custom"]) > 1e-3
    for name, message in (("no_such_module:f", "cannot import 'no_such_module'"),
                          ("planted_filters:nothing", "has no 'nothing'"),
                          ("planted_filters:not_a_function", "is a int, not a function")):
        bad = p.replace(filter=p.filter.model_copy(update={"custom": CustomParams(name=name)}))
        with pytest.raises(ParamsError, match=f"filter.custom.name = '{name}': .*{message}"):
            run_filter(bad, tmp_path / "out", progress=False, log=lambda m: None)
        assert not (tmp_path / "out").exists()  # nothing written
    short = load_custom(CustomParams(name="planted_filters:too_short"))
    with pytest.raises(ValueError, match=r"too_short' returned scores of shape \(39,\) for a shard of 40 pairs"):
        short(pixels, ["x"] * 40, ["en"] * 40, ids)
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    with pytest.raises(ParamsError, match="arms has 'custom' but filter.custom is not set"):
        validate({**raw, "filter": {**raw["filter"], "arms": ["custom", "random"]}})
    with pytest.raises(ParamsError, match="filter.custom.name"):
        validate({**raw, "filter": {**raw["filter"], "custom": {"name": "no colon"}}})


def test_the_balanced_arm_is_metaclips_rule_on_every_pool_caption_at_k(plugin_run):
    """The stage's balanced arm against a brute-force recount: every pool caption matched against the world's
    concept names in its language, per-language thresholds at equal tail share, exactly k kept, every entry rarer
    than its language's threshold kept whole; the single threshold too."""
    from vlscale.filtering import balance
    from vlscale.world.captions import captions

    path, p = plugin_run
    world, out = build_world(p.world), path / "data/filter"
    manifest = json.loads((out / "manifest.json").read_text())
    k, record = manifest["k"], manifest["balanced"]
    ids = stage_scores(out)["id"].to_numpy()
    gt = truth(world, ids)
    texts, languages = captions(world, ids, gt), np.asarray(world.strata)[gt["caption_language"]]
    matcher = balance.Matcher(balance.world_entries(world))
    matches = [matcher.match(t, lang) for t, lang in zip(texts, languages)]
    pairs = pd.DataFrame({"id": ids, "language": languages, "matches": matches})
    kept, brute = balance.select_balanced(pairs, k, p.filter)
    got, _ = read_arm("balanced", out)
    assert np.array_equal(got, kept) and len(got) == k and brute == record
    assert record["matched_pairs"] == sum(1 for m in matches if m) > k
    counts = balance.count_matches(matches, list(languages), len(world.concepts))
    in_arm = np.isin(ids, got)
    for language, t in record["t"].items():  # an entry rarer than its language's threshold is kept whole
        rare = counts[language] < t
        rows = [i for i, m in enumerate(matches) if languages[i] == language and any(rare[e] for e in m)]
        assert in_arm[rows].all(), language
    shares = [v for lang, v in record["tail_share"].items() if counts[lang].sum() >= 200]
    assert max(shares) - min(shares) < 0.1  # equal tail share, up to one entry's matches
    concept = gt["concept"]  # the head is flattened: the most common concept keeps a smaller share than the pool's
    head = np.bincount(concept).argmax()
    assert (concept[in_arm] == head).mean() < 0.7 * (concept == head).mean()
    single, one = balance.select_balanced(pairs, k, p.filter.model_copy(update={
        "balanced": p.filter.balanced.model_copy(update={"thresholds": "single"})}))
    assert len(single) == k and one["thresholds"] == "single" and not np.array_equal(single, kept)


def test_the_docs_example_filter_runs_as_a_plugin(tmp_path, monkeypatch):
    """docs/filters.md's example, as a user copies it: loaded by name, it scores a shard and names what it kept."""
    import re

    from vlscale.filtering.custom import load_custom

    text = (ROOT / "docs/filters.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    assert len(code.strip().splitlines()) <= 12  # the ten-line filter the docs promise
    params = yaml.safe_load(re.search(r"```yaml\n(.*?)```", text, re.S).group(1))
    (tmp_path / "filters").mkdir()
    (tmp_path / "filters/keywords.py").write_text(code)
    monkeypatch.chdir(tmp_path)
    custom = load_custom(CustomParams(**params["filter"]["custom"]))
    texts = ["a dog and a cat", "a bicycle", "a tree", "un perro"]
    scores = custom(np.zeros((4, 8, 8, 3), np.float32), texts, ["en", "en", "en", "es"], np.arange(4))
    assert scores[0] > scores[1] > 0 and np.isnan(scores[2:]).all()
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())  # the docs' params validate
    raw["filter"] |= params["filter"]
    raw["runs"] |= params["runs"]
    assert validate(raw).runs["f_custom"].filter == "custom"


def test_a_real_pool_gets_the_custom_arm_by_uid_and_the_balanced_arm_from_a_metadata_file(workdir, real_sample,
                                                                                           tmp_path, monkeypatch):
    import shutil

    shutil.copytree(real_sample, tmp_path / "data/sample")
    shutil.copytree(workdir / "data/tokenizer", tmp_path / "data/tokenizer")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "planted_filters.py").write_text(PLUGIN)
    (tmp_path / "entries.json").write_text(json.dumps({"en": ["caption"], "de": ["nothing here"]}))
    p = validate(yaml.safe_load((workdir / "params.yaml").read_text()))
    real = p.replace(sample=p.sample.model_copy(update={"source": "webdataset"}), filter=p.filter.model_copy(update={
        "arms": ["custom", "balanced", "random"], "keep_fraction": 0.25,
        "custom": CustomParams(name="planted_filters:by_id"),
        "balanced": p.filter.balanced.model_copy(update={"metadata": "entries.json"})}))
    manifest = run_filter(real, progress=False, log=lambda m: None)
    k = manifest["k"]
    _, _, records = read_sample(build_world(p.world), "data/sample", None)
    uids, language = records["uid"].to_numpy(), records["language"].to_numpy()
    custom, _ = read_arm("custom")
    assert np.array_equal(custom, top_k(np.arange(len(records)), planted_score(uids, language, 0), k))
    assert pd.read_parquet("data/filter/custom_uids.parquet")["uid"].tolist() == uids[custom].tolist()
    balanced, _ = read_arm("balanced")  # only the English captions contain an entry ("caption 3 en")
    assert len(balanced) == k == 6 and set(language[balanced]) == {"en"}
    assert manifest["balanced"]["matched_pairs"] == 8 and manifest["skipped_arms"] == {}
    with pytest.raises(ValueError, match="k = 12 pairs, but the pool has only 8 pairs whose caption matches"):
        run_filter(real.replace(filter=real.filter.model_copy(update={"keep_fraction": 0.5})), progress=False,
                   log=lambda m: None)
    (tmp_path / "bad.json").write_text('["not", "a", "mapping"]')
    with pytest.raises(ValueError, match="filter.balanced.metadata = 'bad.json': expected a JSON object"):
        run_filter(real.replace(filter=real.filter.model_copy(update={"balanced": real.filter.balanced.model_copy(
            update={"metadata": "bad.json"})})), progress=False, log=lambda m: None)


def test_whatever_a_plugin_raises_names_it():
    from vlscale.filtering.custom import CustomFilter

    def lookup(images, texts, languages, uids):
        return {}["scores"]

    with pytest.raises(ValueError, match=r"filter.custom.name = 'pkg.mod:lookup': KeyError: 'scores'") as e:
        CustomFilter("pkg.mod:lookup", {}, lookup)(None, ["a"], ["en"], [0])
    assert isinstance(e.value.__cause__, KeyError)
