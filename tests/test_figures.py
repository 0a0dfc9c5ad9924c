"""The figures stage: power-law fits with bootstrap CIs, and the paper's tables and figures laid out from
the numbers they are given (the paper's own, arXiv 2502.07617 Tables 1, 3, 4 and Figure 3) and from a tidy table.
The uncertainty of those numbers (bootstrap, seeds, permutation null) is tests/test_uncertainty.py's."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from vlscale.analysis import latex, plots, report, results, scaling, uncertainty
from vlscale.config import OCCUPATION_PAIRS
from vlscale.evals import groups

X = np.array([3, 7, 10, 17, 26, 33, 49, 66, 100]) * 1e9  # the paper's cool-down budgets (examples seen)


def law(x, alpha, c, eps):
    return alpha * np.asarray(x, dtype=float) ** -c + eps


def _row(run, pct, seen, task, value, se=np.nan, metric="error_pct", model="H/14", source="analog", seed=0):
    return {"run": run, "seed": seed, "fraction": pct / 100, "data_pct": float(pct), "examples_seen": int(seen),
            "budget": 1.0, "checkpoint": f"runs/{run}/ckpt", "profile": "test", "model": model,
            "benchmark": task.split("/")[0], "source": source, "task": task, "metric": metric,
            "value": float(value), "se": float(se), "n": 1000}


def tidy_from(values: dict, metric="error_pct", model="H/14", se=np.nan, seen=100e9) -> pd.DataFrame:
    """A tidy table with one final checkpoint per data scale: {task: {data_pct: value}}."""
    return pd.DataFrame([_row(f"s{pct:g}", pct, seen, task, v, se, metric, model)
                         for task, by_pct in values.items() for pct, v in by_pct.items()])


def synthetic_tidy(budgets=(20_000, 66_000, 200_000), seed=0) -> pd.DataFrame:
    """Every analog task at 3 checkpoints per run; culture and low-resource tasks gain more from data."""
    rng = np.random.default_rng(seed)
    western = [t for t in groups.WESTERN if not t.startswith(("birds", "caltech", "cars", "colorectal", "dtd"))]
    xm = [groups.xm3600_task(d, lang) for d in ("i2t", "t2i") for lang in groups.XM3600_LANGUAGES]
    tasks = western + list(groups.CULTURE) + list(groups.INCOME) + list(groups.REGIONS) + \
        ["fairface/perceived_gender"] + xm
    base = dict(zip(tasks, rng.uniform(20, 60, len(tasks))))
    rows = []
    for pct in (1, 10, 100):
        for task in tasks:
            cultural = task in groups.CULTURE or any(task.endswith(f"/{lang}") for lang in groups.LOW_RESOURCE)
            eps = base[task] - np.log10(pct) * (4 if cultural else 0.5)
            for seen in budgets:
                rows.append(_row(f"s{pct}", pct, seen, task, law(seen / budgets[-1], 10, 0.5, eps) + rng.normal(0, 0.3),
                                 0.3, model="cpu"))
        seen = budgets[-1]
        rows.append(_row(f"s{pct}", pct, seen, "fairface/representation_bias", 80 + pct / 20, 1.0,
                         "male_preference_pct", model="cpu"))
        for task in results.TABLE4:
            rows.append(_row(f"s{pct}", pct, seen, task, 30 - pct / 50, 1.5, "gap_pct", model="cpu"))
        for occ, _ in OCCUPATION_PAIRS:
            for g, p in (("female", 0.9), ("male", 0.3)):
                rows.append(_row(f"s{pct}", pct, seen, f"fairface/association_bias/{occ}/{g}", p, 0.02,
                                 "probability", model="cpu"))
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------- power-law fits

def test_fit_recovers_alpha_c_eps_of_a_noise_free_curve():
    alpha, c, eps = 50 * (1e11) ** 0.45, 0.45, 23.3
    f = scaling.fit_power_law(X, law(X, alpha, c, eps), n_boot=0)
    assert f.c == pytest.approx(c, abs=1e-4)
    assert f.eps == pytest.approx(eps, abs=1e-3)
    assert f.alpha == pytest.approx(alpha, rel=1e-3)  # in the original units of x
    assert f.predict(X) == pytest.approx(law(X, alpha, c, eps), abs=1e-3)


def test_fit_recovers_parameters_from_noisy_points_and_its_ci_covers_them():
    alpha, c, eps, se = 30 * (1e11) ** 0.6, 0.6, 40.0, 0.2
    y = law(X, alpha, c, eps) + se * np.random.default_rng(3).standard_normal(len(X))
    f = scaling.fit_power_law(X, y, np.full(len(X), se), n_boot=400, seed=1)
    assert f.weighted
    assert f.c == pytest.approx(c, abs=0.05)
    assert f.eps == pytest.approx(eps, abs=1.0)
    assert f.c_ci[0] <= c <= f.c_ci[1]
    assert f.eps_ci[0] <= eps <= f.eps_ci[1]
    assert f.alpha_ci[0] <= alpha <= f.alpha_ci[1]
    assert f.c_ci[1] > f.c_ci[0]


def test_bootstrap_is_reproducible_with_its_seed_and_differs_without():
    y = law(X, 1e6, 0.3, 30) + np.random.default_rng(0).normal(0, 0.5, len(X))
    se = np.full(len(X), 0.5)
    a = scaling.fit_power_law(X, y, se, n_boot=200, seed=7)
    b = scaling.fit_power_law(X, y, se, n_boot=200, seed=7)
    c = scaling.fit_power_law(X, y, se, n_boot=200, seed=8)
    assert a == b
    assert (a.eps_ci, a.alpha_ci) != (c.eps_ci, c.alpha_ci)


def test_three_points_determine_the_three_parameters():
    x = np.array([0.1, 0.33, 1.0]) * 200_000  # the cpu profile's cool-down budgets
    f = scaling.fit_power_law(x, law(x / 200_000, 12, 0.7, 35), se=[0.5, 0.5, 0.5], n_boot=200)
    assert f.n_points == 3
    assert (f.c, f.eps) == (pytest.approx(0.7, abs=1e-3), pytest.approx(35, abs=1e-2))
    assert f.rss == pytest.approx(0, abs=1e-8)
    assert np.isfinite(f.c_ci).all()


def test_fewer_than_three_points_is_refused_naming_the_data():
    with pytest.raises(ValueError, match=r"run s1 task coco/i2t.*at least 3"):
        scaling.fit_power_law([1e9, 1e10], [50, 45], where="run s1 task coco/i2t")
    with pytest.raises(ValueError, match="at least 3"):  # repeated x do not count twice
        scaling.fit_power_law([1e9, 1e9, 1e10], [50, 49, 45])


def test_fit_respects_the_bounds():
    y = np.array([10.0, 12.0, 15.0, 20.0])  # error rising with data: no decreasing law fits, c or alpha hit 0
    f = scaling.fit_power_law(X[:4], y, n_boot=0)
    assert f.alpha >= 0 and 0 <= f.c <= scaling.C_MAX and 0 <= f.eps <= 100


def test_fit_tasks_notes_runs_with_too_few_checkpoints():
    t = synthetic_tidy()
    t = t[~((t["run"] == "s1") & (t["examples_seen"] == 20_000))]
    fits = scaling.fit_tasks(t[t["task"] == "imagenet/0shot"], n_boot=50)
    assert len(fits) == 3
    s1 = fits.set_index("run").loc["s1"]
    assert np.isnan(s1["c"]) and "at least 3" in s1["note"]
    assert fits.set_index("run").loc["s100", "c"] == pytest.approx(0.5, abs=0.2)


# ------------------------------------------------------------------ tables laid out from given numbers

# arXiv 2502.07617 Table 1 (H/14): value at 1B / 10B / 100B data, exponent, limit.
TABLE1_PAPER = {
    "imagenet/0shot": ((29.6, 25.6, 24.9), (0.36, 0.64, 0.52), (26.7, 24.5, 23.3)),
    "cifar100/0shot": ((23.5, 19.8, 21.4), (0.25, 0.36, 0.29), (20.6, 18.0, 17.6)),
    "pet/0shot": ((10.3, 7.5, 7.2), (0.45, 0.42, 0.50), (8.1, 5.3, 4.6)),
    "coco/i2t": ((48.6, 42.0, 42.5), (0.21, 0.62, 0.47), (44.6, 40.3, 40.6)),
    "coco/t2i": ((64.9, 60.3, 59.3), (0.30, 0.55, 0.43), (62.8, 58.9, 57.3)),
    "flickr/i2t": ((16.8, 13.5, 13.9), (0.23, 0.40, 0.23), (12.2, 11.4, 11.3)),
    "flickr/t2i": ((34.3, 28.5, 28.0), (0.23, 0.56, 0.46), (29.6, 26.8, 25.9)),
    "imagenet/10shot": ((32.4, 29.8, 29.3), (0.41, 0.73, 0.79), (30.3, 29.0, 28.3)),
    "birds/10shot": ((41.6, 39.1, 36.3), (0.67, 0.52, 0.47), (40.6, 37.4, 33.9)),
    "caltech/10shot": ((5.7, 6.0, 8.9), (0.21, 0.08, 0.11), (4.3, 3.7, 4.6)),
    "cars/10shot": ((11.3, 10.3, 9.6), (0.27, 0.88, 0.44), (9.1, 10.1, 8.3)),
    "cifar100/10shot": ((25.8, 23.8, 24.2), (0.22, 0.25, 0.24), (21.4, 21.1, 19.7)),
    "colorectal/10shot": ((25.2, 26.2, 25.9), (0.22, 0.20, 0.15), (19.7, 17.9, 20.7)),
    "pet/10shot": ((10.8, 9.1, 8.7), (0.92, 0.48, 0.46), (10.3, 7.6, 6.5)),
    "dtd/10shot": ((29.2, 26.1, 26.8), (0.16, 0.23, 0.23), (25.0, 23.8, 24.8)),
    "dollarstreet/geoloc_10shot": ((64.6, 59.1, 53.7), (0.30, 0.56, 0.64), (61.0, 56.4, 52.5)),
    "geode/country_geoloc_10shot": ((56.9, 50.2, 47.6), (0.23, 0.78, 0.62), (52.2, 49.4, 46.1)),
    "geode/region_geoloc_10shot": ((54.6, 47.6, 44.7), (0.00, 0.38, 0.31), (50.1, 45.3, 41.0)),
    "dollarstreet/0shot": ((50.0, 48.6, 47.4), (0.15, 0.13, 0.20), (43.9, 44.2, 44.1)),
    "geode/0shot": ((6.0, 4.9, 4.8), (0.19, 0.22, 0.24), (3.3, 3.3, 3.5)),
    "gldv2/0shot": ((48.1, 40.1, 38.8), (0.52, 1.34, 0.80), (46.0, 39.0, 36.8)),
}
PCTS = (1.0, 10.0, 100.0)


def by_scale_from(values: dict, metric="error_pct", model="H/14", halfwidth=0.5) -> pd.DataFrame:
    """An Estimates.by_scale-like table {task: {data_pct: value}} with intervals value ± halfwidth."""
    return pd.DataFrame([{"model": model, "data_pct": pct, "task": task, "benchmark": task.split("/")[0],
                          "metric": metric, "value": v, "lo": v - halfwidth, "hi": v + halfwidth}
                         for task, by_pct in values.items() for pct, v in by_pct.items()])


def _paper_table1_inputs(drop=()):
    tasks = {t: v for t, v in TABLE1_PAPER.items() if t not in drop}
    by_scale = by_scale_from({t: dict(zip(PCTS, v[0])) for t, v in tasks.items()})
    fits = pd.DataFrame([{"run": f"s{p:g}", "data_pct": p, "model": "H/14", "task": t, "c": v[1][i],
                          "c_lo": v[1][i] - 0.1, "c_hi": v[1][i] + 0.1, "eps": v[2][i],
                          "eps_lo": v[2][i] - 1, "eps_hi": v[2][i] + 1}
                         for t, v in tasks.items() for i, p in enumerate(PCTS)])
    return by_scale, fits


def test_table1_lays_out_the_papers_h14_values_exponents_and_limits_when_given_them():
    by_scale, fits = _paper_table1_inputs()
    t1 = results.table1(by_scale, fits)
    assert [m for _, m, _ in t1.index][:4] == ["ImageNet", "CIFAR100", "Pet", "COCO I2T"]  # the paper's order
    assert len(t1) == 21
    for task, (values, exponents, limits) in TABLE1_PAPER.items():
        row = t1.xs(task, level="task").iloc[0]
        assert [row[("value", p)] for p in PCTS] == pytest.approx(values)
        assert [row[("hi", p)] - row[("lo", p)] for p in PCTS] == pytest.approx([1.0] * 3)
        assert [row[("c", p)] for p in PCTS] == pytest.approx(exponents)
        assert [row[("eps", p)] for p in PCTS] == pytest.approx(limits)
    tex = latex.table1(t1, []).latex()
    gldv2 = r"GLDv2 & 48.1 [47.6, 48.6] & 40.1 [39.6, 40.6] & 38.8 [38.3, 39.3] & 0.52 [0.42, 0.62] & 1.34 [1.24, 1.44]"
    assert gldv2 in tex
    assert "ImageNet & 29.6 [29.1, 30.1] & 25.6 [25.1, 26.1] & 24.9 [24.4, 25.4] & 0.36" in tex
    assert r"\textit{Cultural: 10-shot geolocalization}" in tex and "paired bootstrap over test images" in tex
    assert tex.count(r"\\") == 1 + 21 + 5  # header, rows, section headings
    assert "binomial standard error" in latex.table1(t1, [], method="binomial").latex()


def test_table1_leaves_out_absent_tasks_and_names_them_in_the_caption():
    by_scale, _ = _paper_table1_inputs(drop=("birds/10shot", "dtd/10shot"))
    t1 = results.table1(by_scale, None)  # without fits: exponents unknown, shown as --
    assert "birds/10shot" not in t1.index.get_level_values("task") and len(t1) == 19
    assert t1[("c", 100.0)].isna().all()
    missing = results.missing_tasks(by_scale)["table1"]
    assert missing == ["birds/10shot", "dtd/10shot"]
    tex = latex.table1(t1, missing).latex()
    assert r"Not evaluated: birds/10shot, dtd/10shot." in tex.replace(r"\_", "_")
    assert "Birds" not in tex


def test_table3_lays_out_the_papers_representation_bias_of_the_b_model_when_given_it():
    by_scale = by_scale_from({"fairface/representation_bias": dict(zip(PCTS, (83.2, 84.5, 85.2)))},
                             metric="male_preference_pct", model="B", halfwidth=0.4)
    t3 = results.table3(by_scale)
    assert [t3.loc["B", ("value", p)] for p in PCTS] == pytest.approx([83.2, 84.5, 85.2])
    tex = latex.scale_table(t3, "Table 3", "tab:t3").latex()
    assert r"B & 83.2 [82.8, 83.6] & 84.5 [84.1, 84.9] & 85.2 [84.8, 85.6] \\" in tex


def test_table4_lays_out_the_papers_disparities_per_model_beside_the_noise_gap():
    rows = []
    for model, ds, geode in (("B", (32.5, 29.9, 29.0), (4.7, 5.5, 4.4)), ("L", (29.7, 29.8, 30.4), (3.2, 4.0, 2.8)),
                             ("H", (32.2, 33.0, 32.1), (3.6, 3.0, 2.7))):
        rows.append(by_scale_from({"dollarstreet/disparity_income": dict(zip(PCTS, ds)),
                                   "geode/disparity_region": dict(zip(PCTS, geode))}, metric="gap_pct",
                                  model=model, halfwidth=np.nan))
    disparity = pd.concat(rows).assign(null_mean=2.0, null_p95=3.5)
    t4 = results.table4(disparity)
    assert [t4.loc[("0-shot GeoDE (by region)", "L"), ("value", p)] for p in PCTS] == pytest.approx([3.2, 4.0, 2.8])
    assert [t4.loc[("0-shot Dollar Street (by income)", "H"), ("value", p)] for p in PCTS] == \
        pytest.approx([32.2, 33.0, 32.1])
    tex = latex.scale_table(t4, "Table 4", "tab:t4").latex()
    assert "0-shot Dollar Street (by income) & B & 32.5 & 29.9 & 29.0 & 2.0 & 2.0 & 2.0" in tex  # no CI: value alone
    assert "noise 100" in tex


FIG3_PAPER = {  # H/14, arXiv 2502.07617 Figure 3: data_pct -> gender -> first occupation -> P(first preferred)
    10.0: {"female": {"librarian": 0.95, "receptionist": 0.66, "nurse": 0.66, "secretary": 0.94, "housekeeper": 0.97},
           "male": {"librarian": 0.66, "receptionist": 0.13, "nurse": 0.11, "secretary": 0.25, "housekeeper": 0.56}},
    100.0: {"female": {"librarian": 0.88, "receptionist": 0.46, "nurse": 0.65, "secretary": 0.88, "housekeeper": 0.96},
            "male": {"librarian": 0.65, "receptionist": 0.069, "nurse": 0.16, "secretary": 0.25, "housekeeper": 0.63}},
}


def test_association_bias_heatmap_lays_out_the_papers_figure3_when_given_it():
    by_scale = pd.concat([by_scale_from({f"fairface/association_bias/{occ}/{g}": {p: v}}, metric="probability")
                          for p, by_g in FIG3_PAPER.items() for g, vs in by_g.items() for occ, v in vs.items()])
    ab = results.association_bias(by_scale)
    firsts = [a for a, _ in OCCUPATION_PAIRS]
    assert list(ab.columns) == firsts  # the pairs' one home, vlscale.config
    assert ab.loc[(100.0, "Male")].tolist() == pytest.approx([FIG3_PAPER[100.0]["male"][o] for o in firsts])
    assert ab.loc[(10.0, "Female")].tolist() == pytest.approx([FIG3_PAPER[10.0]["female"][o] for o in firsts])
    fig = plots.figure3(ab)
    assert len([a for a in fig.axes if a.get_title().startswith("data")]) == 2
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert {"0.95", "0.13", "0.97"} <= texts


# ------------------------------------------------------------------------------- statistics, groups

def _estimates(tidy, n_boot=20):
    return uncertainty.estimate(tidy, None, n_boot=n_boot, seed=0)


def test_wilcoxon_pairs_errors_by_task_and_matches_scipy():
    errors10 = {"a": 30.0, "b": 25.0, "c": 40.0, "d": 12.0, "e": 50.0, "f": 33.0, "g": 21.0}
    errors100 = {"g": 20.0, "f": 30.5, "e": 48.7, "d": 12.5, "c": 36.0, "b": 24.2, "a": 29.9}  # other row order
    by_scale = pd.concat([by_scale_from({t: {10.0: v} for t, v in errors10.items()}),
                          by_scale_from({t: {100.0: v} for t, v in errors100.items()})])
    tasks = list("abcdefg") + ["not_evaluated"]
    w = uncertainty.wilcoxon_scales(by_scale, tasks)
    ref = stats.wilcoxon([errors10[t] for t in "abcdefg"], [errors100[t] for t in "abcdefg"])
    assert (w["statistic"], w["p_value"]) == (pytest.approx(ref.statistic), pytest.approx(ref.pvalue))
    assert w["n_pairs"] == 7 and w["tasks"] == list("abcdefg")
    assert w["median_difference"] == pytest.approx(np.median([errors10[t] - errors100[t] for t in "abcdefg"]))
    # exact, no ties: d is the lone decrease, rank 2; rank sums 0, 1, 2 are as extreme, on either side
    assert w["p_value"] == pytest.approx(2 * 3 / 2**7)
    by_position = stats.wilcoxon(list(errors10.values()), list(errors100.values()))
    assert by_position.pvalue != pytest.approx(w["p_value"])  # pairing rows by order would differ


def test_wilcoxon_with_too_few_pairs_or_no_difference_is_nan_with_a_reason():
    by_scale = by_scale_from({"a": {10.0: 30, 100.0: 29}, "b": {10.0: 20, 100.0: 19}})
    w = uncertainty.wilcoxon_scales(by_scale, ["a", "b"])
    assert np.isnan(w["p_value"]) and w["n_pairs"] == 2 and "only 2 tasks" in w["reason"]
    same = by_scale_from({t: {10.0: 5.0, 100.0: 5.0} for t in "abc"})
    assert uncertainty.wilcoxon_scales(same, list("abc"))["reason"] == "all paired differences are zero"


def test_group_means_average_the_present_tasks_and_report_the_missing():
    present = {"imagenet/0shot": 20.0, "coco/i2t": 40.0, "dollarstreet/0shot": 50.0, "geode/0shot": 10.0,
               groups.xm3600_task("i2t", "te"): 80.0, groups.xm3600_task("t2i", "te"): 90.0,
               groups.xm3600_task("i2t", "en"): 30.0}
    means = _estimates(tidy_from({t: {100.0: v} for t, v in present.items()}, se=0.0)).groups.set_index("group")
    assert means.loc["western", "error_pct"] == pytest.approx(30.0)
    assert means.loc["western", "n_present"] == 2 and means.loc["western", "n_tasks"] == len(groups.WESTERN)
    assert (means.loc["western", "lo"], means.loc["western", "hi"]) == (pytest.approx(30.0), pytest.approx(30.0))
    assert "birds/10shot" in means.loc["western", "missing"] and "coco/i2t" not in means.loc["western", "missing"]
    assert means.loc["culture", "error_pct"] == pytest.approx(30.0)
    assert means.loc["multilingual_low_resource", "error_pct"] == pytest.approx(85.0)  # both directions
    assert means.loc["multilingual", "error_pct"] == pytest.approx(55.0)  # image->text only
    assert np.isnan(means.loc["fairness", "error_pct"]) and means.loc["fairness", "n_present"] == 0


def test_group_means_over_all_tasks_agree_with_groups_group_averages():
    t = synthetic_tidy()
    t = t[(t["run"] == "s100") & (t["examples_seen"] == 200_000) & (t["metric"] == "error_pct")]
    errors = dict(zip(t["task"], t["value"]))
    errors |= {task: 0.0 for task in groups.WESTERN + groups.DEMOGRAPHY if task not in errors}  # complete the set
    means = _estimates(tidy_from({k: {100.0: v} for k, v in errors.items()})).groups.set_index("group")
    expected = groups.group_averages(errors)
    for name in groups.HEADLINE:
        assert means.loc[name, "error_pct"] == pytest.approx(expected[name])


def test_gains_are_the_error_reduction_from_10_to_100_percent_data():
    est = _estimates(synthetic_tidy())
    g = est.gains(10, 100).set_index("group")
    last = est.groups[est.groups["examples_seen"] == 200_000].set_index(["group", "data_pct"])["error_pct"]
    assert g.loc["culture", "gain"] == pytest.approx(last[("culture", 10.0)] - last[("culture", 100.0)])
    assert g.loc["culture", "gain"] > g.loc["western", "gain"]  # the synthetic table is built so
    assert g.loc["culture", "lo"] < g.loc["culture", "gain"] < g.loc["culture", "hi"]


# ------------------------------------------------------------------------------------------ the stage

def test_read_results_concatenates_runs_and_names_an_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        results.read_results(tmp_path)
    t = synthetic_tidy()
    for run, d in t.groupby("run"):
        d.to_parquet(tmp_path / f"{run}.parquet")
    assert len(results.read_results(tmp_path)) == len(t)
    assert results.read_items(tmp_path).empty  # no run wrote items: the stage falls back to binomial
    t.drop(columns="se").to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match=r"bad.parquet.*\['se'\]"):
        results.read_results(tmp_path)


def test_read_results_reads_only_the_runs_params_name(tmp_path):
    # a run removed from params.yaml leaves its outputs behind (DVC does not delete them): not read
    t = synthetic_tidy()
    for run, d in t.groupby("run"):
        d.to_parquet(tmp_path / f"{run}.parquet")
    kept = sorted(t["run"].unique())[:-1]
    assert sorted(results.read_results(tmp_path, {r: {} for r in kept})["run"].unique()) == kept


def test_read_results_gives_older_tables_without_seeds_seed_0(tmp_path):
    synthetic_tidy().drop(columns="seed").to_parquet(tmp_path / "old.parquet")
    assert (results.read_results(tmp_path)["seed"] == 0).all()


def test_select_source_names_the_sources_present():
    with pytest.raises(ValueError, match=r"'real'.*\['analog'\]"):
        results.select_source(synthetic_tidy(), "real")


def test_the_report_writes_every_figure_table_and_plot_and_summarises_every_metric(tmp_path):
    rep = report.build_report(synthetic_tidy(), None, n_boot=50, seed=0)
    paths = report.write_report(rep, tmp_path)
    for stem in ("fig1_gains", "fig1_curves", "fig2_xm3600", "fig3_association_bias", "learning_curves"):
        for ext in ("png", "pdf"):
            f = tmp_path / f"paper/figures/eval/{stem}.{ext}"
            assert f in paths and f.stat().st_size > 1000
    tex = {n: (tmp_path / f"paper/tables/{n}.tex").read_text() for n in ("table1", "table3", "table4", "wilcoxon")}
    assert r"COCO I2T &" in tex["table1"] and "Not evaluated: birds/10shot" in tex["table1"].replace(r"\_", "_")
    assert "binomial standard error" in tex["table1"]  # no items: said, not hidden
    assert tex["table3"].count("cpu & 80.0 [") == 1 and "& 85.0 [" in tex["table3"]
    assert "0-shot GeoDE (by region) & cpu" in tex["table4"]
    assert tex["wilcoxon"].count("western") == 1 and "culture &" in tex["wilcoxon"]
    for t in tex.values():
        assert t.count(r"\begin{tabular}") == t.count(r"\end{tabular}") == 1
    fig1 = pd.read_csv(tmp_path / "plots/figures/fig1.csv")
    assert list(fig1.columns) == ["data_pct", *results.FIG1_PANELS] and fig1["data_pct"].tolist() == [1, 10, 100]
    curves = pd.read_csv(tmp_path / "plots/figures/groups.csv")
    assert "culture_s100" in curves and curves["examples_seen"].tolist() == [20_000, 66_000, 200_000]
    m = report.summary(rep)
    assert m["uncertainty"] == "binomial" and "binomial" in m["uncertainty_note"]
    assert set(m["group_averages"]) == {"s1", "s10", "s100"}
    culture = m["group_averages"]["s100"]["culture"]
    assert culture["ci95"][0] < culture["error_pct"] < culture["ci95"][1]
    assert set(m["group_averages_by_scale"]) == {"1%", "10%", "100%"}
    assert m["group_averages_by_scale"]["10%"]["culture"]["n_seeds"] == 1
    assert {"gains_1_to_10", "gains_10_to_100"} <= set(m)
    assert set(m["gains_10_to_100"]["culture"]) == {"gain", "ci95", "seed_sd", "seed_range", "n_seeds", "interval"}
    assert m["gains_10_to_100"]["culture"]["interval"] == "images"  # one seed per scale: no training noise measured
    assert "gain/culture/10_to_100" in m["evidence"] and m["evidence"]["gain/culture/10_to_100"]["n_a"] == 1
    assert set(m["table1"]["imagenet/0shot"]) == {"1%", "10%", "100%"}
    assert m["disparity"]["geode/disparity_region"]["100%"]["null"] == "binomial"
    assert m["wilcoxon"]["culture"]["n_pairs"] == 6 and m["wilcoxon"]["western"]["n_pairs"] == 10
    assert "correlated" in m["wilcoxon"]["culture"]["note"]
    assert 0 < m["fits"]["s100"]["imagenet/0shot"]["c"] < scaling.C_MAX
    assert m["missing_tasks"]["fairness"] == ["fairface/perceived_race"]


def test_table1_latex_marks_parameters_at_a_bound_of_the_fit():
    assert latex.bound_mark(0.0, 0, 5.0) == latex.DAGGER and latex.bound_mark(5.0, 0, 5.0) == latex.DAGGER
    assert latex.bound_mark(0.64, 0, 5.0) == "" and latex.bound_mark(float("nan"), 0, None) == ""
    assert latex.bound_mark(23.3, 0, None) == "" and latex.bound_mark(0.001, 0, None) == latex.DAGGER


def test_a_real_xm3600s_chance_comes_from_its_own_size_not_the_analogs():
    """On the real sets the low-resource floor is the real XM3600's Recall@1 chance (its images per language), and
    no language is set apart as English-like (that share is known only of the analog's captions)."""
    from vlscale.analysis import study

    tidy = pd.DataFrame({"source": ["real", "real", "real", "analog"],
                         "task": ["xm3600/i2t/te", "xm3600/i2t/en", "xm3600/t2i/te", "xm3600/i2t/te"],
                         "n": [100, 120, 500, 5]})
    facts = results.real_set_facts(tidy)
    assert facts == {"analogs": {"xm3600": {"images": 110}}}
    assert study.chance_levels(facts)["xm3600"] == pytest.approx(100 * (1 - 1 / 110))
    assert results.english_like_languages(facts, 0.25) == []
    assert results.real_set_facts(tidy[tidy["source"] == "analog"]) == {}
