"""Uncertainty as a reviewer computes it (analysis/uncertainty.py), on synthetic per-image outcomes whose
truth is known: the paired bootstrap over test images, the spread over training seeds, the permutation
null of a disparity gap, the scaling-law bootstrap, and the binomial fallback when items are absent."""
import numpy as np
import pandas as pd
import pytest

from vlscale.analysis import report, results, scaling, uncertainty
from vlscale.evals import groups


def evaluate(outcomes: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(tidy, items) as the evaluate stage writes them, from per-image outcomes.

    outcomes: (run, seed, data_pct, examples_seen, task) -> per-image success [n] (items 0..n-1), or
    (images, success) for a task over a subset of the benchmark's images (a subgroup). Error tasks only;
    a disparity gap row is added for every complete set of groups.INCOME / REGIONS subgroups.
    """
    items, tidy = [], []
    for (run, seed, pct, seen, task), v in outcomes.items():
        image, value = v if isinstance(v, tuple) else (np.arange(len(v)), v)
        bench = task.split("/")[0]
        where = dict(run=run, seed=seed, data_pct=float(pct), examples_seen=int(seen), source="analog",
                     benchmark=bench)
        items.append(pd.DataFrame({**where, "task": task, "item": np.asarray(image, np.int32),
                                   "value": np.asarray(value, np.float32)}))
        acc = float(np.mean(value))
        tidy.append({**where, "fraction": pct / 100, "budget": 1.0, "checkpoint": "c", "profile": "test",
                     "model": "cpu", "task": task, "metric": "error_pct", "value": groups.error_pct(acc),
                     "se": 100 * np.sqrt(acc * (1 - acc) / len(value)), "n": len(value)})
    tidy = pd.DataFrame(tidy)
    for gap, subgroups in groups.DISPARITY.items():
        for _, g in tidy[tidy["task"].isin(subgroups)].groupby(["run", "examples_seen"]):
            if len(g) == len(subgroups):
                tidy = pd.concat([tidy, g.iloc[[0]].assign(task=gap, metric="gap_pct", se=np.nan,
                                                           value=g["value"].max() - g["value"].min())])
    return tidy.reset_index(drop=True), pd.concat(items, ignore_index=True)


def two_runs_differing_on(n_images=2000, n_fixed=100, seed=0):
    """s10 and s100 scored on the same images; s100 gets n_fixed of s10's wrong images right."""
    rng = np.random.default_rng(seed)
    s10 = (rng.random(n_images) < 0.6).astype(float)
    s100 = s10.copy()
    s100[np.flatnonzero(s10 == 0)[:n_fixed]] = 1.0
    return evaluate({("s10", 0, 10, 1000, "gldv2/0shot"): s10, ("s100", 0, 100, 1000, "gldv2/0shot"): s100})


def test_paired_bootstrap_of_a_gain_covers_the_true_difference_and_is_narrower_than_unpaired():
    tidy, items = two_runs_differing_on(n_images=2000, n_fixed=100)
    true_gain = 100 * 100 / 2000  # pp of error: 100 of 2000 images fixed
    paired = uncertainty.estimate(tidy, items, n_boot=1000, seed=0).gains(10, 100).set_index("group")
    unpaired = uncertainty.estimate(tidy, items, n_boot=1000, seed=0, paired=False).gains(10, 100).set_index("group")
    g = paired.loc["culture"]  # gldv2 is the one culture task present
    assert g["gain"] == pytest.approx(true_gain)
    assert g["lo"] < true_gain < g["hi"] and g["lo"] > 0  # the gain is real
    width, unpaired_width = g["hi"] - g["lo"], unpaired.loc["culture", "hi"] - unpaired.loc["culture", "lo"]
    # paired: only the 100 fixed images vary the difference, sd = 100 sqrt(p(1-p)/n) with p = 0.05
    assert width == pytest.approx(2 * 1.96 * 100 * np.sqrt(0.05 * 0.95 / 2000), rel=0.15)
    assert width < unpaired_width / 2


def test_the_same_image_resample_serves_every_run_and_checkpoint():
    rng = np.random.default_rng(1)
    v = (rng.random(500) < 0.7).astype(float)
    tidy, items = evaluate({(run, 0, pct, seen, "geode/0shot"): v
                            for run, pct in (("s1", 1), ("s10", 10)) for seen in (100, 300)})
    est = uncertainty.estimate(tidy, items, n_boot=200, seed=3)
    assert est.method == "bootstrap" and est.item_mismatch == pytest.approx(0, abs=1e-4)
    assert np.ptp(est.draws, axis=0).max() == 0  # identical outcomes, identical replicates
    assert np.ptp(est.draws[0]) > 0
    again = uncertainty.estimate(tidy, items, n_boot=200, seed=3)
    assert np.array_equal(est.draws, again.draws)  # seeded by figures.seed


def test_resample_counts_draw_each_image_set_with_replacement():
    c = uncertainty.resample_counts(300, 1000, np.random.default_rng(0))
    assert c.shape == (1000, 300) and (c.sum(axis=1) == 300).all()
    assert c.mean() == pytest.approx(1.0) and c.var() == pytest.approx(1 - 1 / 300, rel=0.05)  # multinomial


def test_seed_replicates_average_and_report_their_spread():
    rows = []
    for pct, errors in ((10, (30.0, 32.0, 34.0)), (100, (28.0, 29.0, 30.0))):
        for seed, e in enumerate(errors):
            rows.append({"run": f"s{pct}" + (f"_seed{seed}" if seed else ""), "seed": seed, "fraction": pct / 100,
                         "data_pct": float(pct), "examples_seen": 1000, "budget": 1.0, "checkpoint": "c",
                         "profile": "test", "model": "cpu", "benchmark": "gldv2", "source": "analog",
                         "task": "gldv2/0shot", "metric": "error_pct", "value": e, "se": 0.0, "n": 1000})
    est = uncertainty.estimate(pd.DataFrame(rows), None, n_boot=50)
    at10 = est.scale_groups.set_index(["group", "data_pct"]).loc[("culture", 10.0)]
    assert at10["error_pct"] == pytest.approx(32.0) and at10["n_seeds"] == 3
    assert at10["seed_sd"] == pytest.approx(2.0) and (at10["seed_min"], at10["seed_max"]) == (30.0, 34.0)
    assert at10["runs"] == "s10+s10_seed1+s10_seed2"
    g = est.gains(10, 100).set_index("group").loc["culture"]
    assert g["gain"] == pytest.approx(3.0)
    assert g["seed_sd"] == pytest.approx(1.0) and (g["seed_min"], g["seed_max"]) == (2.0, 4.0)  # gains 2, 3, 4
    assert est.by_scale.set_index(["task", "data_pct"]).loc[("gldv2/0shot", 100.0), "value"] == pytest.approx(29.0)


def _regions(accuracies, n_per=300, seed=0):
    rng = np.random.default_rng(seed)
    images = np.arange(len(accuracies) * n_per).reshape(len(accuracies), n_per)
    return evaluate({("s100", 0, 100, 1000, task): (images[i], (rng.random(n_per) < acc).astype(float))
                     for i, (task, acc) in enumerate(zip(groups.REGIONS, accuracies))})


def test_permutation_null_of_a_gap_between_equal_groups_is_about_the_observed_gap():
    means, observed = [], []
    for s in range(5):
        tidy, items = _regions([0.8] * 6, seed=s)
        d = uncertainty.estimate(tidy, items, n_boot=400, seed=s).disparity.set_index("task").loc[
            "geode/disparity_region"]
        assert d["null"] == "permutation"
        assert d["null_mean"] > 3  # six groups of 300 images: noise alone makes a gap of several points
        assert d["lo"] <= d["value"] <= d["hi"]
        means.append(d["null_mean"])
        observed.append(d["value"])
    assert np.mean(observed) == pytest.approx(np.mean(means), rel=0.3)


def test_a_real_gap_stands_out_of_the_permutation_null():
    tidy, items = _regions([0.6, 0.9, 0.8, 0.8, 0.8, 0.8])
    d = uncertainty.estimate(tidy, items, n_boot=400).disparity.set_index("task").loc["geode/disparity_region"]
    assert d["value"] > 20 and d["null_p95"] < 10 and d["p_noise"] == 0
    assert d["lo"] > d["null_p95"]


def test_the_scaling_bootstrap_resamples_the_images_once_for_every_checkpoint_of_a_run():
    seen = np.array([20_000, 66_000, 200_000])
    accuracy = 1 - (10 * (seen / seen[-1]) ** -0.5 + 30) / 100  # a power law in error
    u = np.random.default_rng(0).random(3000)  # an image is right once the model is good enough: nested sets
    tidy, items = evaluate({("s100", 0, 100, x, "imagenet/0shot"): (u < a).astype(float)
                            for x, a in zip(seen, accuracy)})
    est = uncertainty.estimate(tidy, items, n_boot=300, seed=0)
    reps = np.stack([est.fit_draws()[("cpu", 100.0, x, "imagenet/0shot")] for x in seen], axis=1)  # [B, 3]
    assert (np.diff(reps, axis=1) <= 1e-9).all()  # every replicate is one coherent, falling curve
    fits = scaling.fit_tasks(tidy, n_boot=300, draws=est.fit_draws()).iloc[0]
    assert fits["ci"] == "bootstrap"
    assert fits["c_lo"] <= fits["c"] <= fits["c_hi"] and fits["eps_lo"] <= fits["eps"] <= fits["eps_hi"]
    assert scaling.fit_tasks(tidy, n_boot=50).iloc[0]["ci"] == "parametric"  # without replicates: from se


def test_without_items_the_intervals_are_binomial_and_the_metrics_say_so(tmp_path):
    tidy, items = two_runs_differing_on()
    est = uncertainty.estimate(tidy, None, n_boot=200)
    assert est.method == "binomial" and est.without_items == ["gldv2/0shot"]
    se = tidy.loc[0, "se"]
    lo, hi = est.cells.loc[0, ["lo", "hi"]]
    assert hi - lo == pytest.approx(2 * 1.96 * se, rel=0.2)
    more = tidy.iloc[:1].assign(task="geode/0shot", benchmark="geode")  # one task with no items
    mixed = uncertainty.estimate(pd.concat([tidy, more], ignore_index=True), items, n_boot=50)
    assert mixed.method == "mixed" and mixed.without_items == ["geode/0shot"]
    m = report.summary(report.build_report(tidy, None, n_boot=20))
    assert m["uncertainty"] == "binomial" and m["tasks_without_items"] == ["gldv2/0shot"]


def test_recall_at_5_without_items_does_not_make_the_uncertainty_mixed():
    tidy, items = two_runs_differing_on()
    at5 = tidy.assign(task="coco/i2t@5", benchmark="coco")
    est = uncertainty.estimate(pd.concat([tidy, at5], ignore_index=True), items, n_boot=20)
    assert est.method == "bootstrap"


def test_several_outcomes_of_one_image_are_resampled_together():
    # a text->image task with two captions per image: an image drawn twice brings both captions twice
    image = np.repeat(np.arange(400), 2)
    hit = np.tile([1.0, 0.0], 400)  # every image: one caption found, one not
    tidy, items = evaluate({("s10", 0, 10, 1000, "coco/t2i"): (image, hit)})
    est = uncertainty.estimate(tidy, items, n_boot=200)
    assert est.cells.loc[0, "value"] == pytest.approx(50.0) and est.item_mismatch == pytest.approx(0, abs=1e-4)
    assert np.ptp(est.draws[0]) == pytest.approx(0, abs=1e-4)  # each image's captions average 0.5: no variation


def test_read_items_reads_every_runs_items(tmp_path):
    tidy, items = two_runs_differing_on(n_images=50)
    for run, d in items.groupby("run"):
        (tmp_path / run).mkdir()
        d.to_parquet(tmp_path / run / "items.parquet")
    assert len(results.read_items(tmp_path)) == len(items)
    items.drop(columns="item").to_parquet(tmp_path / "s10" / "items.parquet")
    with pytest.raises(ValueError, match=r"s10/items.parquet.*\['item'\]"):
        results.read_items(tmp_path)
