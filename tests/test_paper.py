"""The paper stage's parts: the fonts cover every script the world writes, a table renders to LaTeX and to the
typesetter's rows with the same cells, no figure or table can be left out of the paper unnoticed, and every
finding's rule reaches its verdicts on planted comparisons."""
import dataclasses
import json

import numpy as np
import pytest
from fontTools.ttLib import TTFont

from conftest import ROOT
from vlscale.analysis import evidence as ev
from vlscale.analysis.fonts import FAMILIES, font_files
from vlscale.analysis.latex import DAGGER, Math, Table, ci, write_table
from vlscale.config import VerdictsParams
from vlscale.paper.build import (
    FIGURES,
    STUDY_REFERENCE,
    TABLES,
    control_values,
    figure_list,
    point_to_study,
    study_reference,
    table_list,
)
from vlscale.paper.findings import FINDINGS, controls, judge
from vlscale.paper.text import fmt
from vlscale.world.captions import captions
from vlscale.world.ids import make_ids


def test_the_shipped_faces_draw_every_character_of_every_caption_the_world_writes(world):
    cmaps = {}
    for path in font_files():
        cmaps[path.stem] = set(TTFont(path).getBestCmap())
    assert len(cmaps) == len(FAMILIES) + 1  # Noto Sans comes in regular and bold
    covered = set().union(*cmaps.values())
    text = set()
    for s in range(len(world.strata)):
        text |= set("".join(captions(world, make_ids(s, np.arange(300)))))
    for concept in world.concepts:
        text |= set("".join(concept["names"].values()))
    for names in world.country_names:
        text |= set("".join(names.values()))
    missing = sorted(c for c in text if not c.isspace() and ord(c) not in covered and ord(c) not in (0x200C, 0x200D))
    assert not missing, f"characters no shipped face has: {missing[:20]} (run tools/build_fonts.py)"


def test_a_table_renders_the_same_cells_to_latex_and_to_the_typesetters_rows(tmp_path):
    table = Table(("Error (%) with its 95% interval; ", DAGGER, ": at a bound."),
                  ["Task", ("median ", Math("Δ", r"\Delta")), "10%"],
                  ["Zero-shot", ["ImageNet_1k", ci(12.5, 11.0, 14.0), (ci(-1.5, -2.0, -1.0), DAGGER)],
                   ["A & B", "--", "3.0"]], "tab:x", "lrr", notes=("Not evaluated: x_y.",))
    latex = table.latex()
    assert r"Task & median $\Delta$ & 10\% \\" in latex
    assert r"\multicolumn{3}{l}{\textit{Zero-shot}} \\" in latex
    assert r"ImageNet\_1k & 12.5 [11.0, 14.0] & -1.5 [-2.0, -1.0]$^\dagger$ \\" in latex
    assert r"A \& B & -- & 3.0 \\" in latex
    assert r"\caption{Error (\%) with its 95\% interval; $^\dagger$: at a bound. Not evaluated: x\_y.}" in latex
    rows = table.typst()
    assert rows["header"] == ["Task", "median Δ", "10%"]
    assert rows["rows"][0] == {"section": "Zero-shot"}
    assert rows["rows"][1] == ["ImageNet_1k", "12.5 [11.0, 14.0]", "\u22121.5 [\u22122.0, \u22121.0]\u2020"]
    assert rows["rows"][2] == ["A & B", "\u2013", "3.0"]
    assert rows["caption"] == "Error (%) with its 95% interval; †: at a bound. Not evaluated: x_y."
    tex_path, json_path = write_table(table, tmp_path / "x.tex")
    assert tex_path.read_text() == latex and json.loads(json_path.read_text()) == rows
    real = table.map_text(lambda s: s.replace("Error", "Fehler"))
    assert real.typst()["caption"].startswith("Fehler (%)") and real.header[1][1] == Math("Δ", r"\Delta")
    with pytest.raises(ValueError, match="rows of"):
        Table("c", ["a", "b"], [["1"]], "tab:y", "lr")


def test_a_figure_or_table_the_paper_does_not_place_fails_the_build(tmp_path):
    from PIL import Image

    (tmp_path / "paper/figures/world").mkdir(parents=True)
    Image.new("RGB", (40, 20)).save(tmp_path / "paper/figures/world/long_tail.png")
    assert [f["key"] for f in figure_list(tmp_path)] == ["world/long_tail"]
    Image.new("RGB", (40, 20)).save(tmp_path / "paper/figures/world/new_plot.png")
    with pytest.raises(ValueError, match="new_plot"):
        figure_list(tmp_path)
    (tmp_path / "paper/tables").mkdir(parents=True)
    write_table(Table("c", ["a"], [["1"]], "tab:table99", "l"), tmp_path / "paper/tables/table99.tex")
    with pytest.raises(ValueError, match="table99"):
        table_list(tmp_path)
    assert set(TABLES) >= {"table1", "table13", "table14", "attention_focus"}
    assert all(caption and not caption.endswith(" ") for caption, _ in FIGURES.values())


def test_numbers_print_with_a_true_minus_sign_and_missing_values_as_a_dash():
    assert fmt(-1.25, 1) == "\u22121.2" and fmt(0.5, 2, sign=True) == "+0.50"
    assert fmt(float("nan")) == "--" and fmt(None) == "--"


# ------------------------------------------------------------------------------------------------ verdicts

V = VerdictsParams(power=0.8, margins={"western_gain_pp": 1.0, "male_preference_pp": 3.0, "association_bias_pp": 5.0, "transfer_average_pp": 2.0,
                                        "correlation": 0.5}, chance_floor_pp=2.0)


def rec(effect: float, se: float, n=(2, 2), df: float = 8.0, **extra) -> dict:
    """A comparison's record as analysis/study.py writes it, with the effect and spread a test plants."""
    d = ev.Difference(effect=effect, lo=np.nan, hi=np.nan, se=se, df=df, image_se=se / 2, seed_sd=se,
                      seed_df=int(df), n_a=n[0], n_b=n[1], p=np.nan, seeds_measured=True, separable=max(n) >= 2)
    lo, hi = d.bounds(0.95)
    return {**dataclasses.replace(d, lo=lo, hi=hi).record(), "runs_a": ["a"], "runs_b": ["b"],
            "examples_seen": 100, **extra}


def test_every_finding_of_the_paper_is_one_named_check_in_the_papers_order():
    reference = json.loads((ROOT / "lib/vlscale/paper/reference.json").read_text())["findings"]
    assert [f.number for f in FINDINGS] == [f["id"] for f in reference] == list(range(1, 11))
    assert len({f.name for f in FINDINGS}) == len(FINDINGS) and all(f.rule for f in FINDINGS)
    assert all(f.name == f.check.__name__ for f in FINDINGS)


def verdict_of_all(evidence: dict, att: dict | None = None) -> list[dict]:
    return judge({"evidence": evidence}, {"evidence": att or {}}, V)


def verdict_of(finding: int, evidence: dict, att: dict | None = None) -> dict:
    return next(f for f in verdict_of_all(evidence, att) if f["id"] == finding)


def test_a_claim_of_no_change_reproduces_only_by_equivalence_within_the_params_margin():
    assert verdict_of(1, {"gain/western/10_to_100": rec(0.1, 0.2)})["verdict"] == ev.REPRODUCES
    assert verdict_of(1, {"gain/western/10_to_100": rec(6.0, 0.3)})["verdict"] == ev.DOES_NOT
    wide = verdict_of(1, {"gain/western/10_to_100": rec(0.2, 2.0)})  # contains zero, yet not equivalent
    assert wide["verdict"] == ev.INCONCLUSIVE and wide["mde"] > 1.0
    assert verdict_of(1, {})["verdict"] == ev.NOT_TESTED


def test_the_culture_finding_is_judged_on_its_contrast_with_western_not_on_culture_alone():
    culture_only = {"gain/culture/10_to_100": rec(3.0, 0.3), "gain/culture_minus_western/10_to_100": rec(-3.0, 0.3)}
    f = verdict_of(2, culture_only)  # culture gains, but less than western: the paper's claim fails
    assert f["verdict"] == ev.DOES_NOT and "Culture gain minus Western gain" in f["reason"]
    both = {"gain/culture/10_to_100": rec(3.0, 0.3), "gain/culture_minus_western/10_to_100": rec(2.0, 0.3)}
    assert verdict_of(2, both)["verdict"] == ev.REPRODUCES


def test_a_multilingual_gain_at_the_chance_floor_is_inconclusive_not_a_failure():
    contrast = {"gain/low_minus_high_resource/10_to_100": rec(-2.0, 0.3)}
    floor = {"level/multilingual_low_resource/100%": {"value": 98.9, "value_hi": 99.3, "reference": 99.83}}
    f = verdict_of(3, {**contrast, **floor})
    assert f["verdict"] == ev.INCONCLUSIVE and "chance floor" in f["reason"] + f["parts"][0]["reason"]
    off = {"level/multilingual_low_resource/100%": {"value": 80.0, "value_hi": 82.0, "reference": 99.83}}
    assert verdict_of(3, {**contrast, **off})["verdict"] == ev.DOES_NOT


def test_one_seed_a_side_never_reproduces_and_one_failing_part_fails_the_finding():
    one = verdict_of(6, {"filter/clip_minus_english/culture": rec(5.0, 0.3, n=(1, 1))})
    assert one["parts"][1]["verdict"] == ev.INCONCLUSIVE and "one seed" in one["parts"][1]["reason"]
    parts = {"filter/clip_minus_english/western": rec(-2.0, 0.3), "filter/clip_minus_english/culture": rec(5.0, 0.3),
             "filter/clip_minus_english/fairness": rec(-3.0, 0.3),  # fairness better with the filter: opposite
             "filter/classifier_minus_english/culture": rec(9.0, 0.5),
             "filter/classifier_minus_english/fairness": rec(2.0, 0.3)}
    f = verdict_of(6, parts)
    assert f["verdict"] == ev.DOES_NOT and "Fairness" in f["reason"]
    assert f["effect"] == -2.0 and f["n_seeds"] == [2, 2] and f["mde"] > 0


def test_the_biases_are_not_judged_when_the_model_cannot_see_perceived_gender():
    ev_ = {"change/male_preference/10_to_100": rec(0.1, 0.3), "change/association_bias/10_to_100": rec(0.0, 0.3),
           "level/perceived_gender_error/10%": {"value": 49.5, "value_hi": 51.0, "reference": 50.0},
           "level/perceived_gender_error/100%": {"value": 30.0, "value_hi": 32.0, "reference": 50.0}}
    parts = {p["label"]: p for p in verdict_of(4, ev_)["parts"]}
    bias = parts["Representation bias (% preferring male) unchanged"]
    assert bias["verdict"] == ev.INCONCLUSIVE and "perceived-gender error at 10%" in bias["reason"]


def test_a_failed_control_is_named_at_the_top_of_the_report():
    neg = {f"control/negative/{g}": rec(4.0 if g == "culture" else 0.1, 0.5, control="negative")
           for g in ("western", "culture", "fairness")}
    pos = {"control/positive/culture_0shot": rec(3.0, 0.5, control="positive")}
    ctrl = controls({"evidence": {**neg, **pos}}, V)
    assert [c["passed"] for c in ctrl] == [False, True] and "culture" in ctrl[0]["outcome"]
    assert control_values(ctrl, V)["controls_failed"] == "negative"
    quiet = {k: rec(0.1, 0.5, control="negative") for k in neg}
    assert [c["passed"] for c in controls({"evidence": {**quiet, **pos}}, V)] == [True, True]
    assert [c["passed"] for c in controls({"evidence": {}}, V)] == [None, None]


def test_the_model_axis_is_judged_per_group_at_the_full_data_and_not_tested_with_one_model():
    pair = {"small": "w64d1p8", "large": "w96d1p8"}
    name = "model/{}/w64d1p8_minus_w96d1p8/100%"
    larger_better = {name.format(g): rec(3.0, 0.3, n=(3, 1), name=name.format(g), **pair)
                     for g in ("western", "culture", "multilingual")}
    f = verdict_of(9, larger_better)
    assert [p["label"] for p in f["parts"]] == [f"{g} error, w64d1p8 minus w96d1p8, 100% data"
                                                for g in ("Western", "Culture", "multilingual XM3600")]
    assert f["verdict"] == ev.REPRODUCES
    worse = {**larger_better, name.format("culture"): rec(-3.0, 0.3, n=(3, 1), name=name.format("culture"), **pair)}
    assert verdict_of(9, worse)["verdict"] == ev.DOES_NOT
    one = verdict_of(9, {})
    assert one["verdict"] == ev.NOT_TESTED and "one model size" in one["parts"][0]["reason"]


def test_findings_left_open_here_carry_the_study_references_verdict_marked_as_such(tmp_path):
    assert study_reference(tmp_path) is None  # no reference committed: nothing is pointed to
    ref = tmp_path / STUDY_REFERENCE
    ref.mkdir(parents=True)
    rung = ROOT / "results/reference/ladder/N800000_dev/paper.json"  # a paper record the pipeline wrote
    (ref / "paper.json").write_text(rung.read_text())
    (ref / "targets.json").write_text(json.dumps({"commit": "0123456789abcdef", "wall_s": 3000.0,
                                                  "machine": {"cpu": "AMD EPYC 9B14"}}))
    theirs = {f["id"]: f for f in json.loads(rung.read_text())["verdicts"]}
    found = verdict_of_all({"gain/western/10_to_100": rec(0.1, 0.2)})  # finding 1 decided here, the rest open
    sentence = point_to_study(found, study_reference(tmp_path))
    by_id = {f["id"]: f for f in found}
    assert "study" not in by_id[1] and by_id[1]["verdict"] == ev.REPRODUCES
    for i, f in by_id.items():
        if i != 1:
            assert f["study"] == {"verdict": theirs[i]["verdict"], "reason": theirs[i]["reason"], "commit": "0123456"}
    assert "commit 0123456" in sentence and "50 minutes on AMD EPYC 9B14" in sentence and "not this run's" in sentence
    assert sentence.startswith("Findings 2, 3,")
    assert "not every one of its controls was judged" in sentence  # the rung trains no filter arm: none judged
    study = study_reference(tmp_path)
    failed = point_to_study(verdict_of_all({}), {**study, "controls": {"negative": True, "positive": False}})
    assert "its positive control did not pass, so its verdicts are not to be trusted either" in failed
    assert "its controls passed" in point_to_study(verdict_of_all({}), {**study, "controls": {"negative": True}})
