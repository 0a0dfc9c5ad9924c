"""What a study runs on its pool (vlscale.plan): the arms and runs a real pool cannot give are skipped with a reason,
every stage sees the same cut, and a real pool's report needs a real benchmark, checked before any stage runs."""
import copy

import pytest
import yaml

from conftest import ROOT
from vlscale.config import ParamsError, read_params, validate
from vlscale.pipeline import plan_notes
from vlscale.plan import apply, study_plan


@pytest.fixture
def raw():
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def _real(raw, **real_sets):
    out = copy.deepcopy(raw)
    out["sample"].update(source="webdataset", shards=["/data/pool/*.tar"])
    out["evaluate"]["real_sets"].update(real_sets or {"imagenet": "/data/imagenet"})
    return out


def test_a_synthetic_pool_runs_every_arm_and_run_on_the_analogs(raw):
    p = validate(raw)
    plan = study_plan(p)
    assert plan.pool == "synthetic" and plan.source == "analog" and not plan.notes()
    assert list(plan.arms) == p.filter.arms and plan.runs == p.runs


def test_a_real_pool_skips_the_arms_that_need_world_truth_or_a_scorer_and_their_runs(raw):
    p = validate(_real(raw))
    plan = study_plan(p)
    assert plan.pool == "real" and plan.source == "real"
    assert set(plan.skipped_arms) == {"clip", "classifier", "planted", "balanced"}
    assert list(plan.arms) == ["english", "random"]
    assert set(plan.skipped_runs) == {"f_clip", "f_clip_seed1", "f_classifier", "f_planted", "f_balanced"}
    assert set(plan.runs) == set(p.runs) - set(plan.skipped_runs)
    assert "filter.scorer.checkpoint" in plan.skipped_arms["clip"]
    assert "synthetic world's truth" in plan.skipped_arms["classifier"]
    assert "filter.balanced.metadata" in plan.skipped_arms["balanced"]
    # a scorer checkpoint brings the CLIP arm and its runs back, a metadata file the balanced arm
    scorer = p.filter.scorer.model_copy(update={"checkpoint": "/m/scorer"})
    balanced = p.filter.balanced.model_copy(update={"metadata": "/m/entries.json"})
    with_scorer = p.replace(filter=p.filter.model_copy(update={"scorer": scorer, "balanced": balanced}))
    assert set(study_plan(with_scorer).skipped_arms) == {"classifier", "planted"}
    # the stages see the cut blocks, and log one line per skipped arm and run
    logged = []
    cut, _ = apply(p, logged.append)
    assert cut.filter.arms == ["english", "random"] and set(cut.runs) == set(plan.runs)
    assert len(logged) == 9 and p.filter.arms == raw["filter"]["arms"]  # the caller's params are unchanged
    # dvc repro prints them before each stage runs: the filter stage its arms, the stages of the runs all of them
    assert plan_notes("filter", p) == [n for n in plan.notes() if n.startswith("filter arm")]
    assert plan_notes("train", p) == plan.notes() and plan_notes("sample", p) == []
    # the runs a profile's overlay adds are planned like any other
    study = validate(_real(read_params(ROOT / "params.yaml", "study")))
    assert "f_planted" in study_plan(study).skipped_runs and "m100" in study_plan(study).runs


def test_figures_source_follows_the_pool_unless_set(raw):
    real = _real(raw)
    real["figures"]["source"] = "analog"  # the user asks for the synthetic analogs on a real pool
    assert study_plan(validate(real)).source == "analog"
    synthetic = copy.deepcopy(raw)
    synthetic["figures"]["source"] = "real"
    synthetic["evaluate"]["real_sets"]["coco"] = "/data/coco"
    assert study_plan(validate(synthetic)).source == "real"


def test_a_real_pool_without_a_real_benchmark_is_refused_before_any_stage(raw):
    real = _real(raw)
    real["evaluate"]["real_sets"] = {k: None for k in real["evaluate"]["real_sets"]}
    with pytest.raises(ParamsError, match=r"evaluate.real_sets = .*sample.source is 'webdataset', so the report is of "
                                          r"the real benchmarks, and none is given; set the folder of at least one"):
        validate(real)
    real["figures"]["source"] = "analog"  # or report the analogs, by choice
    validate(real)
