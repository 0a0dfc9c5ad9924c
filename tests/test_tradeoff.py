"""The quality-quantity trade-off (analysis/tradeoff.py) from per-image outcomes planted for the filter arms, the random
control and the unfiltered pool: the arms are compared only at equal examples seen, a run without a budget's
checkpoint is refused, and the CLIP arm's advantage, cost and their change with budget are the planted ones."""
import zlib

import numpy as np
import pandas as pd
import pytest

from vlscale.analysis import report, tradeoff, uncertainty

N = 400  # test images per task
TASKS = ("imagenet/0shot", "coco/i2t", "dollarstreet/0shot", "geode/0shot")  # Western: the first two; Culture: the rest
LOW, HIGH = 20_000, 66_000


def planted(runs: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """runs: name -> (curation, data_pct, seed, {examples_seen: {task: images right}}), 200 right where not said."""
    rows, items = [], []
    for name, (cur, pct, seed, by_seen) in runs.items():
        for seen, correct in by_seen.items():
            for task in TASKS:
                v = np.zeros(N, np.float32)
                v[np.random.default_rng(zlib.crc32(f"{name}/{task}/{seen}".encode())).permutation(N)[
                    :correct.get(task, 200)]] = 1
                rows.append({"run": name, "seed": seed, "fraction": pct / 100, "data_pct": float(pct), "curation": cur,
                             "examples_seen": seen, "budget": 1.0, "checkpoint": "c", "profile": "test",
                             "model": "cpu", "benchmark": task.split("/")[0], "source": "analog", "task": task,
                             "metric": "error_pct", "value": 100 * (1 - v.mean()),
                             "se": 100 * float(np.sqrt(v.mean() * (1 - v.mean()) / N)), "n": N})
                items.append(pd.DataFrame({"run": name, "seed": seed, "data_pct": float(pct), "examples_seen": seen,
                                           "source": "analog", "benchmark": task.split("/")[0], "task": task,
                                           "item": np.arange(N, dtype=np.int32), "value": v}))
    return pd.DataFrame(rows), pd.concat(items, ignore_index=True)


# CLIP: +40 ImageNet images over English at 20k, +120 at 66k (its Western advantage grows with budget); GeoDE -40
# at both (a Culture cost that does not change). The natural runs also have a 200k checkpoint, which no arm has.
BOTH = (LOW, HIGH)
RUNS = {
    "s10": ("natural", 10, 0, {s: {} for s in (*BOTH, 200_000)}),
    "s10_seed1": ("natural", 10, 1, {s: {"coco/i2t": 204} for s in (*BOTH, 200_000)}),
    "s100": ("natural", 100, 0, {s: {} for s in (*BOTH, 200_000)}),
    "s100_seed1": ("natural", 100, 1, {s: {"geode/0shot": 196} for s in (*BOTH, 200_000)}),
    "f_english": ("filter/english", 10, 0, {s: {} for s in BOTH}),
    "f_english_seed1": ("filter/english", 10, 1, {s: {"coco/i2t": 196} for s in BOTH}),
    "f_clip": ("filter/clip", 10, 0, {LOW: {"imagenet/0shot": 240, "geode/0shot": 160},
                                      HIGH: {"imagenet/0shot": 320, "geode/0shot": 160}}),
    "f_clip_seed1": ("filter/clip", 10, 1, {LOW: {"imagenet/0shot": 242, "geode/0shot": 162},
                                            HIGH: {"imagenet/0shot": 318, "geode/0shot": 158}}),
}
SIZES = {10.0: 20_000, 100.0: 200_000}


def _estimates(runs):
    tidy, items = planted(runs)
    return uncertainty.estimate(tidy, items, n_boot=300, seed=0), tidy, items


def test_the_arms_are_compared_at_equal_examples_seen_and_the_planted_tradeoff_comes_out():
    est, _, _ = _estimates(RUNS)
    t = tradeoff.build_tradeoff(est, 10.0, SIZES)
    assert t.budgets == [LOW, HIGH] and set(t.arms) == {"random", "english", "clip", "unfiltered"}
    # every arm at every budget, and nothing at the natural runs' 200k (no filter run has it)
    for _, d in t.averages.groupby("group"):
        assert set(zip(d["arm"], d["examples_seen"])) == {(a, s) for a in t.arms for s in t.budgets}
    assert set(t.effects["examples_seen"]) == {LOW, HIGH}
    avg = t.averages.set_index(["examples_seen", "arm", "group"])["error_pct"]
    eff = t.effects.set_index(["examples_seen", "against", "measure"])
    for seen in t.budgets:
        for against in ("english", "unfiltered"):
            assert eff.loc[(seen, against, "western_advantage"), "effect"] == pytest.approx(
                avg[(seen, against, "western")] - avg[(seen, "clip", "western")])
            assert eff.loc[(seen, against, "culture_cost"), "effect"] == pytest.approx(
                avg[(seen, "clip", "culture")] - avg[(seen, against, "culture")])
    # the planted numbers, seed means: Western averages ImageNet and COCO, where CLIP is 41 (119) images of 400 right
    # over English at 20k (66k), and English's second seed 4 COCO images lower; Culture averages Dollar Street and GeoDE,
    # where CLIP is 41 images lower at 66k
    assert eff.loc[(LOW, "english", "western_advantage"), "effect"] == pytest.approx((10.25 + 0.5) / 2)
    assert eff.loc[(HIGH, "english", "western_advantage"), "effect"] == pytest.approx((29.75 + 0.5) / 2)
    assert eff.loc[(HIGH, "english", "culture_cost"), "effect"] == pytest.approx(10.25 / 2)
    change = t.changes.set_index(["against", "measure"])
    adv = change.loc[("english", "western_advantage")]
    assert adv["change"] == pytest.approx(eff.loc[(HIGH, "english", "western_advantage"), "effect"]
                                          - eff.loc[(LOW, "english", "western_advantage"), "effect"])
    assert adv["lo"] > 0 and adv["reading"] == "grows"
    cost = change.loc[("english", "culture_cost")]
    assert cost["lo"] < 0 < cost["hi"] and cost["reading"] == "inconclusive"
    # repeats: the arm's 20,000 pairs seen 1× and 3.3×; the whole pool's 200,000 a tenth as often
    rep = t.averages.drop_duplicates(["examples_seen", "arm"]).set_index(["examples_seen", "arm"])["repeats"]
    assert rep[(HIGH, "clip")] == pytest.approx(HIGH / 20_000) and rep[(HIGH, "unfiltered")] == pytest.approx(HIGH / 200_000)


def test_a_run_without_a_budgets_checkpoint_is_refused():
    runs = {**RUNS, "f_english_seed1": ("filter/english", 10, 1, {LOW: {}})}
    est, _, _ = _estimates(runs)
    with pytest.raises(ValueError, match=r"run f_english_seed1 \(arm 'english'\) has no checkpoint at \[66000\]"):
        tradeoff.build_tradeoff(est, 10.0, SIZES)
    runs = {**RUNS, "s100_seed1": ("natural", 100, 1, {LOW: {}, 200_000: {}})}
    est, _, _ = _estimates(runs)
    with pytest.raises(ValueError, match=r"run s100_seed1 \(arm 'unfiltered'\) has no checkpoint at \[66000\]"):
        tradeoff.build_tradeoff(est, 10.0, SIZES)


def test_the_report_draws_the_tradeoff_and_writes_its_tables(tmp_path):
    _, tidy, items = _estimates(RUNS)
    rep = report.build_report(tidy, items, n_boot=50, keep_fraction=0.1)
    assert rep.tradeoff is not None and rep.tradeoff.budgets == [LOW, HIGH]
    assert "tradeoff" in report.draw(rep)
    report.write_report(rep, tmp_path)
    assert (tmp_path / "paper/figures/eval/tradeoff.png").is_file()
    written = pd.read_csv(tmp_path / "plots/figures/tradeoff.csv")
    assert set(written["examples_seen"]) == {LOW, HIGH} and written["repeats"].isna().all()  # no subset sizes given
    summary = report.summary(rep)[report.TRADEOFF]
    assert summary["budgets"] == [LOW, HIGH] and summary["changes"]["western_advantage_vs_english"]["reading"] == "grows"
