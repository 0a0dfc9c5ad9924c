"""The concept-frequency law (analysis/frequency.py): the sample stage's exact concept counts, the log-linear fit with
its intervals over seeds, concepts and test images, the one-curve-or-shift answer, and the figure."""
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT
from test_figures import synthetic_tidy
from vlscale.analysis import frequency, report
from vlscale.config import read_params
from vlscale.data import sampling
from vlscale.data import stage as sample_stage
from vlscale.world.hashing import id_words
from vlscale.world.spec import build_world
from vlscale.world.truth import ground_truth

SMOKE = read_params(ROOT / "params.yaml", "smoke")
TASK = "imagenet/0shot"


@pytest.mark.filterwarnings("ignore:rebalance targets")  # a pool of 3,000 lacks some low-resource languages
def test_the_sample_stage_persists_every_concepts_exact_pairs_per_subset(tmp_path, monkeypatch):
    """data/concept_counts.parquet equals a brute-force count: each id of the subset's sorted list, its true
    concept, one at a time."""
    monkeypatch.chdir(tmp_path)
    params = {n: SMOKE[n] for n in ("profile", "world", "engine", "beam")}
    params["sample"] = {**SMOKE["sample"], "pool_size": 3000}
    sample_stage.run(params)
    table = pd.read_parquet(tmp_path / sample_stage.CONCEPT_COUNTS)
    world = build_world(sample_stage.validate(params).world)
    subsets = sampling.synthetic_subsets(world, 3000, params["sample"]["key"])
    assert set(table["world_fingerprint"]) == {world.fingerprint()}
    for f in params["sample"]["fractions"]:
        counted = Counter(int(ground_truth(world, *id_words([i]))["concept"][0]) for i in subsets.ids(f))
        got = table[table["fraction"] == f].set_index("concept")
        assert len(got) == len(world.concepts) and (got["examples"] == len(subsets.ids(f))).all()
        assert got["pairs"].to_dict() == {k: counted.get(k, 0) for k in range(len(world.concepts))}
        assert got["head"].to_numpy().tolist() == world.is_head.tolist()
    by = table.pivot(index="concept", columns="fraction", values="pairs")
    assert (by[1.0] >= by[0.1]).all() and (by[0.1] >= by[0.01]).all()  # nested subsets


def planted(law, n_concepts=100, per_concept=40, seeds=2, seen=(10_000, 40_000), a=5.0, b=12.0, seed=0):
    """Runs at 10% and 100% of a 100,000-pair pool, `seeds` each, whose per-image success is Bernoulli of
    a + b·log10(x) (%), x = a concept's pairs (law "pairs") or its exposures, pairs × seen / subset size (law
    "exposures"); concepts' pairs at 100% are log-uniform over 3..10,000 and a tenth of that at 10% (some none)."""
    rng = np.random.default_rng(seed)
    pairs100 = np.round(10 ** rng.uniform(0.5, 4, n_concepts)).astype(np.int64)
    pairs = {1.0: pairs100, 0.1: pairs100 // 10}
    size = {1.0: 100_000, 0.1: 10_000}
    concepts = np.repeat(np.arange(n_concepts), per_concept)
    counts = pd.concat([pd.DataFrame({"subset": sampling.fraction_label(f), "fraction": f, "examples": size[f],
                                      "concept": np.arange(n_concepts), "name": [f"c{k}" for k in range(n_concepts)],
                                      "pairs": p, "world_fingerprint": "planted"}) for f, p in pairs.items()])
    tidy, items = [], []
    for f in (0.1, 1.0):
        for s in range(seeds):
            run = f"s{100 * f:g}_seed{s}"
            tidy.append({"run": run, "curation": "natural", "data_pct": 100 * f, "seed": s, "model": "m"})
            for n in seen:
                x = pairs[f][concepts] * (n / size[f] if law == "exposures" else 1.0)
                p = np.clip((a + b * np.log10(np.maximum(x, 1))) / 100, 0, 1)
                items.append(pd.DataFrame({"run": run, "seed": s, "data_pct": 100 * f, "examples_seen": n,
                                           "source": "analog", "benchmark": "imagenet", "task": TASK,
                                           "item": np.arange(len(concepts)), "value": rng.random(len(p)) < p}))
    inputs = frequency.Inputs(counts, {TASK: concepts})
    return pd.DataFrame(tidy), pd.concat(items, ignore_index=True).astype({"value": float}), inputs


def test_the_fit_recovers_a_planted_slope_and_its_interval_covers_it():
    tidy, items, inputs = planted("pairs")
    law = frequency.build_law(tidy, items, inputs, n_boot=300, seed=0)
    fits = law.fits.set_index(["data_pct", "examples_seen", "quantity"])
    for pct in (10.0, 100.0):
        for seen in (10_000, 40_000):
            slope, intercept = fits.loc[(pct, seen, "slope")], fits.loc[(pct, seen, "intercept")]
            assert slope["lo"] < 12.0 < slope["hi"] and slope["value"] == pytest.approx(12.0, abs=2.5)
            assert intercept["lo"] < 5.0 < intercept["hi"]
            assert slope["n_seeds"] == 2 and slope["seeds_measured"] and slope["hi"] - slope["lo"] < 8
    # 10% of the pool: concepts of fewer than 10 pairs at 100% have none; they are reported apart, not fitted
    zero = int((inputs.counts.query("fraction == 0.1")["pairs"] == 0).sum())
    assert zero > 0 and (law.fits.loc[law.fits["data_pct"] == 10.0, "n_zero"] == zero).all()
    # accuracy follows pairs wherever the concept is: one curve, and not the curve exposures predict
    assert set(law.answers["answer"]) == {"consistent with one curve in pairs"}
    # the points: every concept once per (scale, checkpoint), its seed mean
    assert len(law.points) == 2 * 2 * 100 and (law.points["n_test"] == 40).all()


def test_accuracy_that_follows_exposures_shifts_the_larger_scales_curve_down():
    """At equal examples seen the 10x larger set repeats each pair a tenth as often: its line lies lower at equal
    pairs by b·log10(10), as the exposures predict."""
    tidy, items, inputs = planted("exposures", a=30.0, b=12.0)
    law = frequency.build_law(tidy, items, inputs, n_boot=300, seed=0)
    level = law.comparisons[law.comparisons["quantity"] == "level"]
    assert (level["hi"] < 0).all() and level["diff"].to_numpy() == pytest.approx(-12.0, abs=4)
    assert set(law.answers["answer"]) == {"shifted down, as exposures predict"}


def test_a_run_evaluated_on_another_draw_is_refused():
    tidy, items, inputs = planted("pairs", seen=(10_000,))
    short = items[items["item"] < 3000]
    with pytest.raises(ValueError, match="evaluated with other params"):
        frequency.build_law(tidy, short, inputs, n_boot=20)
    counts = inputs.counts[inputs.counts["fraction"] == 1.0]
    with pytest.raises(ValueError, match="runs of 10% of the pool"):
        frequency.build_law(tidy, items, frequency.Inputs(counts, inputs.concepts), n_boot=20)


def test_the_report_draws_the_law_and_writes_its_table(tmp_path):
    """The figures stage's report: the law of its natural runs (here the planted per-item outcomes of s1, s10 and
    s100 at their checkpoints), its figure, its CSVs and its summary."""
    tidy = synthetic_tidy()
    seen = sorted(tidy["examples_seen"].unique())
    rng = np.random.default_rng(1)
    concepts = np.repeat(np.arange(50), 20)
    pairs = {p: np.round(10 ** rng.uniform(0, 2, 50) * p).astype(np.int64) for p in (1, 10, 100)}
    counts = pd.concat([pd.DataFrame({"fraction": p / 100, "examples": 1000 * p, "concept": np.arange(50),
                                      "name": [f"c{k}" for k in range(50)], "pairs": pairs[p],
                                      "world_fingerprint": "planted"}) for p in pairs])
    items = pd.concat([pd.DataFrame({"run": f"s{p}", "seed": 0, "data_pct": float(p), "examples_seen": n,
                                     "source": "analog", "benchmark": "imagenet", "task": TASK,
                                     "item": np.arange(1000),
                                     "value": (rng.random(1000) < 0.1 + 0.2 * np.log10(1 + pairs[p][concepts]) / 4
                                               ).astype(float)})
                       for p in (1, 10, 100) for n in seen], ignore_index=True)
    rep = report.build_report(tidy, items, n_boot=50, keep_fraction=0.1,
                              frequency_inputs=frequency.Inputs(counts, {TASK: concepts}))
    figs = report.draw(rep)
    assert "concept_frequency" in figs and len(figs["concept_frequency"].axes) == len(frequency.TASKS) * 3
    written = report.write_report(rep, tmp_path)
    assert tmp_path / "paper/figures/eval/concept_frequency.png" in written
    fits = pd.read_csv(tmp_path / "plots/figures/concept_frequency.csv")
    assert set(fits["data_pct"]) == {1.0, 10.0, 100.0} and set(fits["examples_seen"]) == set(seen)
    law = report.summary(rep)[report.CONCEPT_FREQUENCY]
    assert set(law["fits"][TASK]) == {"1%", "10%", "100%"} and set(law["answers"][TASK]) == {"10%_vs_1%", "100%_vs_10%"}
