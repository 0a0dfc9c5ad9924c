"""Mechanism attribution (vlscale.attribution): each piece is the profile's params with one mechanism switched off and
the runs cut to the finding's comparison; a piece is judged by the paper stage's rules; the table and figure read the
pieces' records."""
import json

import pandas as pd
import pytest
from scipy import stats

from conftest import ROOT
from vlscale import attribution as at
from vlscale.config import read_params, validate
from vlscale.world.ablations import ABLATIONS, ablate

STUDY = ROOT / "results/reference/study"


@pytest.fixture(scope="module")
def study():
    return read_params(ROOT / "params.yaml", "study")


@pytest.mark.parametrize("finding", sorted(at.COMPARISONS))
def test_a_piece_is_the_profile_with_one_mechanism_off_and_the_comparisons_runs(study, finding):
    c = at.comparison(finding)
    base = validate(study)
    for name in (at.BASELINE, *ABLATIONS):
        p = validate(at.piece_params(study, finding, name, 3, None, None))
        assert p.world == (base.world if name == at.BASELINE else ablate(base.world, name))
        assert (p.model, p.train, p.tokenizer, p.sample) == (base.model, base.train, base.tokenizer, base.sample)
        assert p.filter.arms == list(c.arms)
        assert set(p.runs) == {f"{r}{f'_seed{s}' if s else ''}" for r in c.runs for s in range(3)}
        for r in c.runs:  # the profile's entry, three seeds
            seeds = {p.runs[n].seed for n in p.runs if n == r or n.startswith(f"{r}_seed")}
            assert seeds == {None, 1, 2}  # the first is the profile's run itself (train.seed)
            assert p.runs[f"{r}_seed2"].model_dump(exclude={"seed"}) == base.runs[r].model_dump(exclude={"seed"})
    assert study == read_params(ROOT / "params.yaml", "study")  # the caller's params untouched


def test_a_smaller_compute_scales_the_pool_the_examples_and_the_schedule(study):
    p = validate(at.piece_params(study, 2, "stereotype", 2, "dev", 200_000))
    base = validate(study)
    assert p.train.examples_seen == p.sample.pool_size == 200_000 and p.evaluate.use_key == "dev"
    for k in at.SCALED:
        assert getattr(p.train, k) == pytest.approx(getattr(base.train, k) / 4, abs=1), k
    assert at.compute(at.piece_params(study, 6, at.BASELINE, 2, None, 200_000)) == {
        "runs": dict.fromkeys(("f_clip", "f_clip_seed1", "f_english", "f_english_seed1"), 66_000),
        "examples_seen": 264_000, "scorer_examples": base.filter.scorer.examples, "pool_size": 200_000}


def test_a_piece_names_what_is_wrong(study):
    with pytest.raises(ValueError, match="--seeds 1: an interval needs the training noise of at least 2 seeds"):
        at.piece_params(study, 2, at.BASELINE, 1, None, None)
    with pytest.raises(ValueError, match="finding 3: no comparison to attribute; findings with one: \\[2, 6\\]"):
        at.piece_params(study, 3, at.BASELINE, 2, None, None)
    without = {**study, "runs": {k: v for k, v in study["runs"].items() if k != "f_english"}}
    with pytest.raises(ValueError, match="finding 6: the study profile has no run \\['f_english'\\]"):
        at.piece_params(without, 6, at.BASELINE, 2, None, None)
    with pytest.raises(ValueError, match="ablation stereotype: the study profile's world already has"):
        at.piece_params({**study, "world": {**study["world"], "stereotype_strength": 0.5}}, 2, "stereotype", 2,
                        None, None)


@pytest.mark.parametrize("finding", sorted(at.COMPARISONS))
def test_a_piece_is_judged_as_the_paper_stage_judges_the_study(study, finding):
    """The study reference's figures record judged by attribution gives the parts its paper stage recorded."""
    fig = json.loads((STUDY / "figures.json").read_text())
    mine = at.judge_figures(fig, finding, validate(study).verdicts)
    (paper,) = [f for f in json.loads((STUDY / "paper.json").read_text())["verdicts"] if f["id"] == finding]
    recorded = {p["label"]: p for p in paper["parts"]}
    assert list(mine["parts"]) == list(at.comparison(finding).parts)
    for label, part in mine["parts"].items():
        assert part["effect"] == pytest.approx(recorded[label]["effect"])
        assert part["ci95"] == pytest.approx(recorded[label]["ci95"])
        assert part["verdict"] == recorded[label]["verdict"]


def test_the_table_and_figure_read_every_piece(study, tmp_path):
    """Two real figures records (the study's and the cpu profile's 3-seed reference) as two pieces of finding 6: the
    change is their difference, its interval from both pieces' intervals; the files hold every row."""
    verdicts = validate(study).verdicts
    records = {name: at.judge_figures(json.loads((ROOT / f"results/reference/{ref}/figures.json").read_text()), 6,
                                      verdicts)
               for name, ref in ((at.BASELINE, "study"), ("region_noise", "2026-12-06_cpu_3seeds"))}
    meta = {"claim": "claim", "profile": "study", "scale": "the profile's compute", "seeds": 3, "key": "report",
            "compute": at.compute(at.piece_params(study, 6, at.BASELINE, 3, None, None))}
    paths = at.write_outputs(records, 6, tmp_path, "f6", meta)
    assert [p.name for p in paths] == ["f6.csv", "f6.md", "f6.json", "f6.png"] and all(p.stat().st_size for p in paths)
    table = pd.read_csv(tmp_path / "f6.csv")
    assert len(table) == 2 * 3
    culture = table[(table["ablation"] == "region_noise") & (table["part"] == "CLIP minus English, Culture error")].iloc[0]
    base, off = (records[n]["parts"]["CLIP minus English, Culture error"] for n in (at.BASELINE, "region_noise"))
    assert culture["change"] == pytest.approx(off["effect"] - base["effect"])
    # each piece's standard error is the one its own interval was built from (seeds and images, Welch's df) ...
    for part in (base, off):
        se, df = at.part_se(part)
        assert stats.t.ppf(0.975, df) * se == pytest.approx((part["ci95"][1] - part["ci95"][0]) / 2, rel=1e-3)
    # ... and the change's adds them in quadrature, with Welch-Satterthwaite's df
    (se_b, df_b), (se_o, df_o) = at.part_se(base), at.part_se(off)
    se = (se_b ** 2 + se_o ** 2) ** 0.5
    assert culture["change_se"] == pytest.approx(se)
    assert culture["change_hi"] - culture["change"] == pytest.approx(
        stats.t.ppf(0.975, se ** 4 / (se_b ** 4 / df_b + se_o ** 4 / df_o)) * se)
    # the study reproduces the Culture part; the cpu record shrinks it, not beyond its noise, and no longer reproduces
    # it: undecided
    assert base["verdict"] == "reproduces" and off["verdict"] != "reproduces" and culture["change_hi"] > 0
    assert culture["needs_mechanism"] == "undecided"
    text = (tmp_path / "f6.md").read_text()
    assert "| region_noise | " + ABLATIONS["region_noise"].mechanism in text and "1,584,000 examples seen over 6 runs" in text
    assert at.NEEDS_RULE.format(margin=at.MARGIN) in text and at.ABLATED_BENCHMARKS in text


def _records(base, **worlds):
    """Records of finding 2 whose parts (both alike) have `(effect, half-width, verdict)`, the baseline's `base`."""
    def rec(effect, half, verdict):
        part = {"effect": effect, "ci95": [effect - half, effect + half], "verdict": verdict}
        return {"parts": {label: dict(part) for label in at.comparison(2).parts}, "verdict": verdict}
    return {at.BASELINE: rec(*base), **{name: rec(*w) for name, w in worlds.items()}}


def test_needs_says_yes_only_when_an_effect_fell_beyond_its_noise():
    records = _records((10.0, 2.0, "reproduces"), culture_boost=(1.0, 2.0, "inconclusive"),
                       stereotype=(9.5, 2.0, "reproduces"), western_head=(8.0, 2.0, "reproduces"),
                       region_noise=(7.0, 8.0, "inconclusive"))
    assert at.needs(records, at.rows(records, 2)) == {"culture_boost": "yes", "stereotype": "no",
                                                      "western_head": "no", "region_noise": "undecided"}


def test_not_needed_is_a_non_inferiority_test_and_needed_is_corrected_for_the_parts():
    # the baseline's effect 10 (se 1.02): a world that fell by 4 (change se 1.44) fell significantly once (p = 0.003 <
    # 0.025 / 2): needed; one that fell by 2.8 (p = 0.026): not shown, and its one-sided 95% bound (-2.8 - 1.645 *
    # 1.44 = -5.2) is past the margin (-5): undecided; with a 60% margin (-6): not needed
    records = _records((10.0, 2.0, "reproduces"), culture_boost=(6.0, 2.0, "reproduces"),
                       stereotype=(7.2, 2.0, "reproduces"))
    table = at.rows(records, 2)
    assert at.needs(records, table) == {"culture_boost": "yes", "stereotype": "undecided"}
    assert at.needs(records, table, margin=0.6) == {"culture_boost": "yes", "stereotype": "no"}
    # Holm: a fall with one-sided p = 0.02 is shown for one part but not when the claim has two (0.02 > 0.025 / 2)
    z = stats.norm.ppf(0.02) * 2 ** 0.5 * 2 / at.Z95
    one = {at.BASELINE: {"parts": {"a": {"effect": 10.0, "ci95": [8.0, 12.0], "verdict": "reproduces"}}},
           "x": {"parts": {"a": {"effect": 10.0 + z, "ci95": [8.0 + z, 12.0 + z], "verdict": "reproduces"}}}}
    table = [{"ablation": "x", "part": "a", "sign": 1, "change": z, "change_se": 2 ** 0.5 * 2 / at.Z95,
              "change_df": float("inf")}]
    assert at.needs(one, table) == {"x": "yes"}
    two = _records((10.0, 2.0, "reproduces"), x=(10.0 + z, 2.0, "reproduces"))
    assert at.needs(two, at.rows(two, 2)) == {"x": "undecided"}
    # a world as built that reproduces no part leaves nothing to attribute
    none = _records((10.0, 20.0, "inconclusive"), culture_boost=(1.0, 2.0, "inconclusive"))
    assert at.needs(none, at.rows(none, 2)) == {"culture_boost": "n/a"}
    with pytest.raises(ValueError, match="--margin 1.5"):
        at.needs(records, table, margin=1.5)


def test_a_piece_runs_every_stage_evaluate_needs_in_dvc_yamls_order():
    import yaml

    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    made = {}
    for name, s in stages.items():
        for out in s.get("outs", []) + s.get("metrics", []) + s.get("plots", []):
            made[out if isinstance(out, str) else next(iter(out))] = name

    def upstream(stage):
        deps = stages[stage].get("deps", [])
        ups = {made[o] for o in made for d in deps if d == o or d.startswith(f"{o}/") or o.startswith(f"{d}/")}
        return set().union(*(upstream(u) | {u} for u in ups - {stage}))
    assert set(at.STAGES) == upstream("evaluate") | {"evaluate"}
    assert list(at.STAGES) == [s for s in stages if s in at.STAGES]


def test_the_paper_section_reads_a_committed_attribution(study, tmp_path):
    """paper/build.attribution_values on a written attribution (two real records as finding 6's baseline and one
    ablation, one more planned): its table holds each world's parts with their intervals and verdicts, its text what
    is still to run, its figure copied for the PDF."""
    from vlscale.paper.build import ATTRIBUTION, attribution_values

    verdicts = validate(study).verdicts
    records = {name: at.judge_figures(json.loads((ROOT / f"results/reference/{ref}/figures.json").read_text()), 6,
                                      verdicts)
               for name, ref in ((at.BASELINE, "study"), ("region_noise", "2026-12-06_cpu_3seeds"))}
    meta = {"finding": 6, "claim": "the claim", "profile": "study", "scale": "the profile's compute", "seeds": 3,
            "key": "report", "compute": at.compute(at.piece_params(study, 6, at.BASELINE, 3, None, None)),
            "pieces_done": list(records), "pieces_planned": [*records, "culture_boost"]}
    at.write_outputs(records, 6, tmp_path / ATTRIBUTION, "finding6_study_full_report", meta)
    (a,) = attribution_values(tmp_path, tmp_path / "generated", "study")
    assert a["finding"] == 6 and (tmp_path / "generated" / "attribution/finding6_study_full_report.png").is_file()
    assert a["header"] == ["world", "mechanism off", *at.comparison(6).parts, "needs it"]
    assert [r[0] for r in a["rows"]] == [at.BASELINE, "region_noise"] and a["rows"][1][-1] == "undecided"
    part = records["region_noise"]["parts"]["CLIP minus English, Culture error"]
    assert a["rows"][1][3].endswith(part["verdict"]) and f"{part['effect']:+.1f}" in a["rows"][1][3]
    assert "2 of 3 worlds done (still to run: culture_boost)" in a["text"]
    # the study reproduces the Western and Culture parts, not Fairness: only those two are attributed
    assert ("Judged on CLIP minus English, Western error and CLIP minus English, Culture error, which the world as "
            "built reproduces: the finding needs none of the mechanisms tested; undecided: region_noise (margin: a "
            "fall of less than 50% of a part's effect is not needed)." in a["text"])
    assert attribution_values(tmp_path, tmp_path / "g2", "cpu") == []  # another profile's is not this PDF's
