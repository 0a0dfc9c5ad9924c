"""The curation study's tables from results whose answer is known: per-image outcomes planted for filter arms,
the random control, a rebalanced run and its natural counterpart; the differences, their paired intervals,
the training-noise null and what is left out when a run is missing."""
import zlib

import numpy as np
import pandas as pd
import pytest

from vlscale.analysis import curation, report, results, uncertainty
from vlscale.analysis import study as study_lib
from vlscale.evals import groups

N = 400  # test images per task
SEEN = (20_000, 66_000)
TASKS = ("imagenet/0shot", "coco/i2t", "dollarstreet/0shot", "geode/0shot", "geode/africa",
         "xm3600/i2t/te", "xm3600/t2i/te", "xm3600/i2t/de", "xm3600/t2i/de")


def _outcomes(correct: int, seed: int) -> np.ndarray:
    """N per-image successes, exactly `correct` of them 1, in a seeded order."""
    v = np.zeros(N, np.float32)
    v[np.random.default_rng(seed).permutation(N)[:correct]] = 1
    return v


def planted(runs: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """runs: name -> (curation, data_pct, seed, {task: correct images}) at every checkpoint of SEEN (the
    rebalanced and natural runs' also at 200k)."""
    rows, items = [], []
    for name, (cur, pct, seed, correct) in runs.items():
        for seen in SEEN + ((200_000,) if cur == "natural" else ()):
            for task in TASKS:
                v = _outcomes(correct.get(task, 100), zlib.crc32(f"{name}/{task}".encode()))
                rows.append({"run": name, "seed": seed, "fraction": pct / 100, "data_pct": float(pct),
                             "curation": cur, "examples_seen": seen, "budget": 1.0, "checkpoint": "c",
                             "profile": "test", "model": "cpu", "benchmark": task.split("/")[0], "source": "analog",
                             "task": task, "metric": "error_pct", "value": 100 * (1 - v.mean()),
                             "se": float(np.sqrt(v.mean() * (1 - v.mean()) / N)) * 100, "n": N})
                items.append(pd.DataFrame({"run": name, "seed": seed, "data_pct": float(pct), "examples_seen": seen,
                                           "source": "analog", "benchmark": task.split("/")[0], "task": task,
                                           "item": np.arange(N, dtype=np.int32), "value": v}))
    return pd.DataFrame(rows), pd.concat(items, ignore_index=True)


BASE = {t: 200 for t in TASKS}
RUNS = {
    "s10": ("natural", 10, 0, BASE),
    "s100": ("natural", 100, 0, BASE),
    "f_random": ("filter/random", 10, 1, {**BASE, "imagenet/0shot": 210}),
    "f_english": ("filter/english", 10, 0, BASE),
    "f_clip": ("filter/clip", 10, 0, {**BASE, "imagenet/0shot": 280, "geode/0shot": 120}),
    "f_classifier": ("filter/classifier", 10, 0, {**BASE, "dollarstreet/0shot": 100}),
    "r100": ("rebalanced", 100, 0, {**BASE, "xm3600/i2t/te": 260, "xm3600/t2i/te": 240}),
}


@pytest.fixture(scope="module")
def study():
    tidy, items = planted(RUNS)
    # the rebalanced run stops at 66k: drop its 200k rows (it has none), keep the natural run's
    return curation.build_curation(tidy, items, keep_fraction=0.1, n_boot=300), tidy


def test_the_filter_arms_are_their_runs_and_the_random_arm_is_the_random_run(study):
    c, _ = study
    assert c.filter_runs == {"random": ["s10", "f_random"], "english": ["f_english"], "clip": ["f_clip"],
                             "classifier": ["f_classifier"]}  # the natural 10% run trains on the random arm's data
    assert sorted(c.filter_curves["examples_seen"].unique()) == list(SEEN)  # not the natural run's 200k


def test_differences_are_the_planted_ones_with_paired_intervals(study):
    c, _ = study
    d = c.filter_diffs.set_index(["arm", "against", "examples_seen", "group"])
    # western here is the mean of imagenet/0shot and coco/i2t: clip +80 images on imagenet -> -10 pp of the mean
    clip_w = d.loc[("clip", "english", 66_000, "western")]
    assert clip_w["diff"] == pytest.approx(-100 * 80 / N / 2, abs=1e-4)
    # one degree of freedom of seed noise (the random data's two runs) makes the interval as wide as it should be
    assert clip_w["lo"] < clip_w["diff"] < clip_w["hi"] and clip_w["hi"] - clip_w["lo"] > 10
    # culture: dollarstreet, geode (0-shot); clip loses 80 geode images, classifier 100 dollarstreet images
    assert d.loc[("clip", "english", 66_000, "culture"), "diff"] == pytest.approx(100 * 80 / N / 2, abs=1e-4)
    assert d.loc[("classifier", "english", 66_000, "culture"), "diff"] == pytest.approx(100 * 100 / N / 2, abs=1e-4)
    same = d.loc[("english", "random", 66_000, "culture")]  # equal outcomes' counts, different images
    assert same["diff"] == pytest.approx(0, abs=1e-4) and same["lo"] < 0 < same["hi"]
    # the random arm is the mean of its two runs (s10, f_random: +10 imagenet images)
    assert d.loc[("english", "random", 66_000, "western"), "diff"] == pytest.approx(100 * 5 / N / 2, abs=1e-4)
    assert d.loc[("english", "random", 66_000, "western"), "n_b"] == 2


def test_seed_replicates_of_an_arm_are_averaged_with_their_spread_not_dropped():
    tidy, items = planted({**RUNS, "f_clip_seed1": ("filter/clip", 10, 1, {**BASE, "imagenet/0shot": 240})})
    c = curation.build_curation(tidy, items, keep_fraction=0.1, n_boot=200)
    assert c.filter_runs["clip"] == ["f_clip", "f_clip_seed1"]
    curve = c.filter_curves.set_index(["arm", "examples_seen", "group"]).loc[("clip", 66_000, "western")]
    one, two = 100 * (1 - (280 + 200) / N / 2), 100 * (1 - (240 + 200) / N / 2)  # each run's western error
    assert curve["error_pct"] == pytest.approx((one + two) / 2, abs=1e-4)
    assert curve["n_seeds"] == 2 and curve["seed_sd"] == pytest.approx(abs(one - two) / np.sqrt(2), abs=1e-4)
    # the difference is of the seed means, with both clip seeds counted
    d = c.filter_diffs.set_index(["arm", "against", "examples_seen", "group"]).loc[("clip", "english", 66_000, "western")]
    assert d["diff"] == pytest.approx((one + two) / 2 - 100 * (1 - 200 / N), abs=1e-4) and d["n_a"] == 2
    assert d["lo"] < d["diff"] < d["hi"]


def test_rebalancing_is_read_at_the_rebalanced_runs_examples_seen(study):
    c, tidy = study
    r = c.rebalance.set_index("group")
    assert set(r["before_run"]) == {"s100"} and set(r["after_run"]) == {"r100"} and set(r["examples_seen"]) == {66_000}
    te = [groups.xm3600_task(d, "te") for d in ("i2t", "t2i")]
    assert r.loc["multilingual_low_resource", "diff"] == pytest.approx(100 * (60 + 40) / N / 2, abs=1e-4)
    assert r.loc["multilingual_high_resource", "diff"] == pytest.approx(0, abs=1e-4)
    lang = c.languages.set_index(["language", "direction"])
    assert lang.loc[("te", "i2t"), "diff"] == pytest.approx(15.0, abs=1e-4)  # one seed a side: not separable
    assert set(te) <= set(tidy["task"])
    assert c.table14.columns.get_level_values(1).unique().tolist() == ["before", "after"]
    assert ("Average Multilingual: low-resource", "multilingual_low_resource") in c.table14.index


def test_missing_runs_are_named_not_filled_in():
    tidy, items = planted({k: RUNS[k] for k in ("s10", "f_clip")})
    c = curation.build_curation(tidy, items, keep_fraction=0.1, n_boot=50)
    assert c.filter_runs == {"clip": ["f_clip"], "random": ["s10"]}  # the natural 10% run is the random arm
    assert any("one run on the random data" in n for n in c.notes)
    assert any("no rebalanced runs" in n for n in c.notes) and c.rebalance.empty and c.table14.empty
    none = curation.build_curation(*planted({"s10": RUNS["s10"]}), keep_fraction=0.1, n_boot=50)
    assert none.filter_curves.empty and any("no filter runs" in n for n in none.notes)


def test_the_main_report_leaves_curated_runs_out_and_writes_the_curation_outputs(tmp_path):
    tidy, items = planted(RUNS)
    r = report.build_report(tidy, items, n_boot=50, keep_fraction=0.1)
    assert set(r.tidy["run"]) == {"s10", "s100"} and set(results.natural(tidy)["curation"]) == {"natural"}
    written = {p.name for p in report.write_report(r, tmp_path)}
    assert {"fig4_filters.png", "fig5_rebalancing.png", "table13.tex", "table14.tex", "fig4.csv", "fig5.csv"} <= written
    summary = report.summary(r)["curation"]
    assert summary["filter_runs"]["clip"] == ["f_clip"] and "100%" in summary["rebalancing"]
    assert "\\begin{tabular}" in (tmp_path / "paper/tables/table13.tex").read_text()


def test_a_second_model_goes_to_figure6_and_the_single_model_tables_keep_the_one_with_most_runs(tmp_path):
    tidy, items = planted({**RUNS, "b10": ("natural", 10, 0, {**BASE, "imagenet/0shot": 300})})
    tidy.loc[tidy["run"] == "b10", "model"] = "w96d2p8"
    r = report.build_report(tidy, items, n_boot=50, keep_fraction=0.1)
    assert r.model == "cpu" and set(r.tidy["run"]) == {"s10", "s100"}
    assert set(r.models["model"]) == {"cpu", "w96d2p8"} and set(r.models["run"]) == {"s10", "s100", "b10"}
    west = r.models[(r.models["run"] == "b10") & (r.models["group"] == "western")]
    assert west["error_pct"].iloc[0] == pytest.approx(100 * (1 - (300 + 200) / (2 * N)), abs=1e-4)
    summary = report.summary(r)
    assert set(summary["figure6"]) == {"cpu", "w96d2p8"} and "10%" in summary["figure6"]["w96d2p8"]
    assert "fig6_models.png" in {p.name for p in report.write_report(r, tmp_path)}
    with pytest.raises(ValueError, match="no natural runs of model 'H/14'"):
        report.build_report(tidy, items, n_boot=20, model="H/14")


# ------------------------------------------------------------------------------------ the study's comparisons

def _study(extra: dict, n_boot: int = 200) -> dict:
    tidy, items = planted({**RUNS, **extra})
    est = uncertainty.estimate(tidy, items, n_boot=n_boot)
    return {r["name"]: r for r in study_lib.comparisons(est, 10.0, {"analogs": {"xm3600": {"images": 600}}}, [], 0)}


def test_the_random_arms_runs_are_runs_of_the_natural_configuration_of_its_data():
    tidy, items = planted(RUNS)
    runs = study_lib.configurations(uncertainty.estimate(tidy, items, n_boot=20), 10.0)
    assert runs.loc["f_random", "config"] == runs.loc["s10", "config"] == "natural@10%"
    assert runs.loc["f_clip", "config"] == "filter/clip@10%" and runs.loc["r100", "config"] == "rebalanced@100%"


def test_the_negative_control_splits_the_random_data_by_seed_and_finds_a_planted_difference_between_halves():
    # (runs of one configuration differ in score as well as image by image, as trained seeds do)
    same = _study({"s10_seed1": ("natural", 10, 3, {**BASE, "imagenet/0shot": 192, "coco/i2t": 206})})
    neg = same["control/negative/western"]
    assert neg["runs_a"] == ["s10", "s10_seed1"] and neg["runs_b"] == ["f_random"]  # seeds 0, 1, 3 alternate
    assert neg["lo"] <= 0 <= neg["hi"]
    # a difference planted between the halves (not between seeds of one half) is found: the control can fail
    replicates = {"f_clip_seed1": ("filter/clip", 10, 1, {**BASE, "imagenet/0shot": 270, "geode/0shot": 120}),
                  "f_english_seed1": ("filter/english", 10, 1, {**BASE, "imagenet/0shot": 195})}
    apart = _study({**replicates, "s10_seed1": ("natural", 10, 3, {**BASE, "imagenet/0shot": 192, "coco/i2t": 206}),
                    "f_random": ("filter/random", 10, 1, {**BASE, "imagenet/0shot": 330, "coco/i2t": 330})})
    neg = apart["control/negative/western"]
    assert neg["runs_a"] == ["s10", "s10_seed1"] and neg["runs_b"] == ["f_random"]
    # the seed variance: within each half and within the other replicated arms, never between the halves
    assert neg["lo"] > 0 and neg["seed_df"] == 3  # the halves' difference is found: the control can fail


def test_the_positive_control_is_the_planted_arm_against_random_on_culture():
    recs = _study({"f_planted": ("filter/planted", 10, 0, {**BASE, "dollarstreet/0shot": 100, "geode/0shot": 100})})
    pos = recs["control/positive/culture_0shot"]
    assert pos["a"] == "filter/planted@10%" and pos["b"] == "natural@10%" and pos["effect"] > 0
    # the Culture zero-shot tasks the runs were evaluated on (no gldv2/0shot here): the mean of their two changes
    assert pos["effect"] == pytest.approx(100 * (100 + 100) / (2 * N), abs=1e-4)
    assert "control/positive/culture_0shot" not in _study({})


def test_the_positive_controls_quantity_reads_the_culture_zero_shot_tasks_not_geolocalization():
    """culture_0shot: the mean error of the Culture zero-shot tasks a run was evaluated on, with their image draws;
    geolocalization, which the planted arm can improve, is not in it; a task evaluated to NaN voids it."""
    from types import SimpleNamespace

    cells = pd.DataFrame({"run": "a", "examples_seen": 10, "metric": "error_pct",
                          "task": ["dollarstreet/0shot", "geode/0shot", "dollarstreet/geoloc_10shot", "gldv2/0shot"],
                          "value": [80.0, 60.0, 10.0, 99.0]})
    draws = np.array([[81.0, 79.0], [61.0, 59.0], [11.0, 9.0], [98.0, 100.0]])
    q = study_lib.QUANTITIES["culture_0shot"]
    point, d = q(SimpleNamespace(cells=cells, draws=draws), "a", 10)
    assert point == pytest.approx((80 + 60 + 99) / 3) and d == pytest.approx([(81 + 61 + 98) / 3, (79 + 59 + 100) / 3])
    # a pool without GLDv2: the two it has
    point, _ = q(SimpleNamespace(cells=cells.iloc[:3], draws=draws[:3]), "a", 10)
    assert point == pytest.approx(70.0)
    nan = cells.assign(value=[80.0, np.nan, 10.0, 99.0])
    assert q(SimpleNamespace(cells=nan, draws=draws), "a", 10) is None
    assert q(SimpleNamespace(cells=cells.iloc[2:3], draws=draws[2:3]), "a", 10) is None  # geolocalization alone


def test_levels_are_read_against_chance_with_only_their_own_seeds_as_training_noise():
    recs = _study({"s100_seed1": ("natural", 100, 1, BASE)})
    lr = recs["level/multilingual_low_resource/100%"]
    assert lr["reference"] == pytest.approx(100 * (1 - 1 / 600)) and lr["n_a"] == 2
    assert lr["value"] == pytest.approx(50.0) and lr["value_hi"] > lr["value"]
    gain = recs["gain/western/10_to_100"]
    assert gain["runs_a"] == ["s10"] and gain["runs_b"] == ["s100", "s100_seed1"] and gain["separable"]


def test_every_finding_reads_the_comparisons_the_study_writes():
    """The paper's rules look comparisons up by name: fed the study's own records, no part of a finding whose runs
    exist comes out "not tested"."""
    from vlscale.config import VerdictsParams
    from vlscale.paper.findings import judge

    runs = {"s10_seed1": ("natural", 10, 1, {**BASE, "coco/i2t": 190}), "s100_seed1": ("natural", 100, 1, BASE),
            "f_clip_seed1": ("filter/clip", 10, 1, {**BASE, "imagenet/0shot": 270}),
            "f_english_seed1": ("filter/english", 10, 1, BASE), "r10": ("rebalanced", 10, 0, BASE)}
    recs = _study(runs, n_boot=100)
    verdicts = VerdictsParams(power=0.8, margins={"western_gain_pp": 1.0, "male_preference_pp": 3.0,
                                                  "association_bias_pp": 5.0, "transfer_average_pp": 2.0, "correlation": 0.5},
                              chance_floor_pp=2.0)
    found = {f["id"]: f for f in judge({"evidence": recs}, {"evidence": {}}, verdicts)}
    for fid in (1, 2, 3, 6, 7):
        assert all(p["verdict"] != "not tested" for p in found[fid]["parts"]), (fid, found[fid]["parts"])
    assert [p["label"] for p in found[7]["parts"]] == ["Low-resource reduction minus high-resource, 10% data",
                                                       "Low-resource reduction minus high-resource, 100% data"]


def test_the_model_axis_compares_each_smaller_model_with_the_next_larger_at_every_scale():
    runs = {"s10": ("natural", 10, 0, BASE), "s10_seed1": ("natural", 10, 1, BASE),
            "s100": ("natural", 100, 0, BASE), "s100_seed1": ("natural", 100, 1, BASE),
            "m10": ("natural", 10, 0, BASE), "m100": ("natural", 100, 0, {**BASE, "imagenet/0shot": 280})}
    tidy, items = planted(runs)
    tidy["model"] = np.where(tidy["run"].str.startswith("m"), "w96d1p8", "w64d1p8")
    records = {r["name"]: r for r in study_lib.model_comparisons(uncertainty.estimate(tidy, items, n_boot=300))}
    assert set(records) == {f"model/{g}/w64d1p8_minus_w96d1p8/{s}" for g in study_lib.MODEL_GROUPS
                            for s in ("10%", "100%")}
    western = records["model/western/w64d1p8_minus_w96d1p8/100%"]
    # Western is the mean of imagenet/0shot and coco/i2t here: the larger model's +80 ImageNet images are +10 pp
    assert western["effect"] == pytest.approx(100 * 80 / N / 2, abs=1e-6)
    assert western["runs_a"] == ["s100", "s100_seed1"] and western["runs_b"] == ["m100"]
    assert western["seeds_measured"] and western["separable"] and western["lo"] > 0  # seeds pooled from the small model
    culture = records["model/culture/w64d1p8_minus_w96d1p8/100%"]
    assert culture["effect"] == pytest.approx(0, abs=1e-9) and culture["lo"] < 0 < culture["hi"]
    one_model = tidy[tidy["model"] == "w64d1p8"]
    assert study_lib.model_comparisons(uncertainty.estimate(one_model, items[items["run"].isin(one_model["run"])],
                                                            n_boot=50)) == []
    sizes = [study_lib.model_size(m) for m in ("w64d1p8", "w96d1p8", "B/16", "L/16")]
    assert sizes == sorted(sizes) and len(set(sizes)) == 4 and study_lib.model_size("cpu") is None
