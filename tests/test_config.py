"""params.yaml and its profiles' overlays resolve to one set of values per profile, validated before any work;
errors name the file, the key, the value and what is allowed."""
import copy
import hashlib
import json
import os
import subprocess
import sys

import pytest
import yaml
from pydantic import ValidationError

from conftest import ROOT
from vlscale.config import (
    DEFAULT_PROFILE,
    PROFILES,
    ParamsError,
    load_params,
    overlay,
    overlay_path,
    read_params,
    validate,
)
from vlscale.pipeline import overlay_note
from vlscale.runs.settings import resolve


@pytest.fixture()
def raw():
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def _overlay(profile):
    return yaml.safe_load(overlay_path(ROOT / "params.yaml", profile).read_text()) or {}


def _digest(params):
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:16]


# sha256 of each profile's validated params. The training fingerprints of finished runs (runs/*/fingerprint.json)
# hash these values: a change here retrains every run of the profile. Update a digest only for a change of params
# that is meant to change what the profile trains or measures.
RESOLVED_DIGESTS = {"smoke": "5bdb9ec66684098d", "cpu": "c20dc036afa27eca", "study": "7624cb558bdc1c44",
                    "gpu": "cc36dd96b9c49634", "tpu": "5e3e4a26212f2c6b", "colab": "af9c9a153468a0e7"}


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_resolves_to_its_pinned_values(profile):
    p = load_params(ROOT / "params.yaml", profile)
    assert p.profile == profile
    assert _digest(p.dump()) == RESOLVED_DIGESTS[profile], f"the {profile} profile's resolved params changed"


def test_params_yaml_holds_the_default_profile_and_its_overlay_is_empty(raw):
    assert raw["profile"] == DEFAULT_PROFILE and _overlay(DEFAULT_PROFILE) == {}
    assert read_params(ROOT / "params.yaml", DEFAULT_PROFILE) == raw


def _leaves(tree, at=()):
    for key, value in tree.items():
        if isinstance(value, dict) and at != ("runs",):
            yield from _leaves(value, (*at, key))
        else:
            yield (*at, key), value


@pytest.mark.parametrize("profile", [p for p in PROFILES if p != DEFAULT_PROFILE])
def test_an_overlay_holds_only_what_differs_from_params_yaml(raw, profile):
    for path, value in _leaves(_overlay(profile)):
        base = raw
        for key in path:
            base = base.get(key) if isinstance(base, dict) else None
        assert value != base, f"profiles/{profile}.yaml: {'.'.join(path)} = {value!r} repeats params.yaml"


def test_the_study_profile_adds_its_model_axis_runs_and_the_others_do_not():
    runs = {profile: load_params(ROOT / "params.yaml", profile).runs for profile in PROFILES}
    assert set(runs["study"]) - set(runs["cpu"]) == {"m10", "m100"}
    assert all(set(runs[p]) == set(runs["cpu"]) for p in PROFILES if p != "study")
    assert runs["study"]["m100"].peak_lr == 0.002 and runs["study"]["m100"].model["image"]["width"] == 96


def test_an_overlay_merges_mappings_replaces_other_values_and_null_removes_a_key():
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 2, "runs": {"s1": {"fraction": 0.01}, "s10": {"fraction": 0.1}},
            "model": {"image": {"width": 64, "depth": 1}}}
    over = {"a": {"y": [3]}, "runs": {"s10": None, "m": {"fraction": 1.0}},
            "model": {"image": {"variant": "B/16", "width": None, "depth": None}}}
    assert overlay(base, over, "o.yaml") == {"a": {"x": 1, "y": [3]}, "b": 2,
                                             "runs": {"s1": {"fraction": 0.01}, "m": {"fraction": 1.0}},
                                             "model": {"image": {"variant": "B/16"}}}
    assert base["runs"]["s10"] == {"fraction": 0.1}  # the base is not changed


def test_null_removes_only_an_open_mappings_entry_and_never_a_block():
    base = {"train": {"peak_lr": 0.002, "seed": 0}, "runs": {"s1": {"fraction": 0.01}}}
    assert overlay(base, {"train": {"peak_lr": None}}, "o.yaml")["train"] == {"peak_lr": None, "seed": 0}  # a value
    assert overlay(base, {"runs": {"s1": {"seed": 5}}}, "o.yaml")["runs"]["s1"] == {"fraction": 0.01, "seed": 5}
    with pytest.raises(ParamsError, match=r"o\.yaml: train: null; .* cannot remove the block"):
        overlay(base, {"train": None}, "o.yaml")
    with pytest.raises(ParamsError, match=r"o\.yaml: runs\.s9: params\.yaml has no such key"):
        overlay(base, {"runs": {"s9": None}}, "o.yaml")  # nothing to remove


def test_the_params_stage_names_the_keys_an_overlay_sets_and_how_to_change_them(tmp_path, raw):
    (tmp_path / "profiles").mkdir()
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({**raw, "profile": "study"}))
    (tmp_path / "profiles/study.yaml").write_text("train: {peak_lr: 0.004}\nruns: {m: {fraction: 1.0}}\n")
    note = overlay_note(tmp_path / "params.yaml")
    assert "sets 1 values" in note and "(train.peak_lr)" in note
    assert f"dvc exp run -S {tmp_path}/profiles/study.yaml:KEY=VALUE" in note


def test_an_overlay_key_params_yaml_lacks_is_an_error_naming_the_file_and_key(tmp_path, raw):
    (tmp_path / "profiles").mkdir()
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({**raw, "profile": "study"}))
    (tmp_path / "profiles/study.yaml").write_text("train: {peak_lrr: 0.003}\n")
    with pytest.raises(ParamsError, match=r"profiles/study\.yaml: train\.peak_lrr: params\.yaml has no such key"):
        load_params(tmp_path / "params.yaml")
    (tmp_path / "profiles/study.yaml").write_text("runs: {s1: {sead: 3}}\n")  # a run's entry is open; validation names it
    with pytest.raises(ParamsError, match=r"profiles/study\.yaml: runs\.s1\.sead"):
        load_params(tmp_path / "params.yaml")
    (tmp_path / "profiles/study.yaml").write_text("train: {peak_lr: -1}\n")  # a bad value names both files
    with pytest.raises(ParamsError, match=r"params\.yaml with .*profiles/study\.yaml: train\.peak_lr = -1"):
        load_params(tmp_path / "params.yaml")
    (tmp_path / "profiles/study.yaml").unlink()
    with pytest.raises(ParamsError, match=r"profiles/study\.yaml: no such file"):
        load_params(tmp_path / "params.yaml")


def test_negative_fraction_names_key_value_and_allowed_range(raw):
    raw["sample"]["fractions"] = [-0.1, 0.1, 1.0]
    with pytest.raises(ParamsError) as e:
        validate(raw, "params.yaml")
    msg = str(e.value)
    assert "params.yaml: sample.fractions" in msg and "-0.1" in msg and "(0, 1]" in msg


def test_unknown_language_code_names_it_and_lists_the_allowed_codes(raw):
    raw["sample"]["rebalance_targets"]["xx"] = 0.01
    with pytest.raises(ParamsError) as e:
        validate(raw)
    msg = str(e.value)
    assert "sample.rebalance_targets" in msg and "'xx'" in msg and "bn, cs" in msg


def test_paper_language_aliases_are_accepted(raw):
    raw["sample"]["rebalance_targets"] = {"iw": 0.01, "tl": 0.01}
    assert validate(raw).sample.rebalance_targets == {"he": 0.01, "fil": 0.01}


def test_unknown_profile_names_it_and_lists_profiles(raw):
    raw["profile"] = "huge"
    with pytest.raises(ParamsError, match=r"profile = 'huge': unknown profile; allowed: smoke, cpu, study, gpu, tpu"):
        validate(raw)


def test_every_error_is_reported_at_once(raw):
    raw["world"]["zipf_exponent"] = -1
    raw["sample"]["fractions"] = [0.5, 2.0]
    with pytest.raises(ParamsError) as e:
        validate(raw)
    assert "world.zipf_exponent = -1" in str(e.value) and "sample.fractions" in str(e.value)


def test_unknown_block_and_missing_region_are_errors(raw):
    bad = copy.deepcopy(raw)
    bad["trian"] = {}
    with pytest.raises(ParamsError, match="trian: unknown block"):
        validate(bad)
    del raw["world"]["noise"]["misaligned"]["Africa"]
    with pytest.raises(ParamsError, match="lacks regions"):
        validate(raw)


def test_a_stage_with_bad_params_fails_before_any_work(raw, tmp_path):
    raw["profile"] = "huge"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    (tmp_path / "dvc.yaml").write_text((ROOT / "dvc.yaml").read_text())
    r = subprocess.run([sys.executable, "-m", "vlscale.pipeline", "world"], cwd=tmp_path,
                       capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "lib")})
    assert r.returncode != 0
    assert "profile = 'huge': unknown profile" in r.stderr
    assert not (tmp_path / "reports").exists()


def test_load_params_reads_the_committed_file():
    assert load_params(ROOT / "params.yaml").profile in PROFILES


def test_background_tints_may_not_exceed_the_whole_background(raw):
    raw["world"]["background_region_tint"], raw["world"]["background_country_tint"] = 0.8, 0.5
    with pytest.raises(ParamsError, match="background_region_tint \\+ background_country_tint = 1.3"):
        validate(raw)


def test_evaluate_block_names_unknown_benchmarks_and_bad_templates(raw):
    bad = copy.deepcopy(raw)
    bad["evaluate"]["analogs"]["mnist"] = 10
    bad["evaluate"]["real_sets"]["laion"] = "/data"
    bad["evaluate"]["templates"]["real"] = ["a photo"]
    bad["evaluate"]["keys"]["report"] = bad["evaluate"]["keys"]["dev"]
    bad["evaluate"]["train_sizes"]["coco"] = 10
    with pytest.raises(ParamsError) as e:
        validate(bad)
    msg = str(e.value)
    assert "unknown analogs ['mnist']" in msg and "unknown real sets ['laion']" in msg
    assert "templates ['a photo'] have no '{}'" in msg and "analogs without a few-shot task ['coco']" in msg
    assert "the report key must be fresh" in msg


def test_the_evaluate_block_knows_exactly_the_benchmarks_the_library_has():
    from vlscale import config
    from vlscale.evals import analogs, real_eval

    assert set(config.ANALOG_NAMES) == set(analogs.ANALOGS)
    assert set(config.REAL_SET_NAMES) == set(real_eval.LOADERS)
    assert set(config.FEW_SHOT_ANALOGS) <= set(config.ANALOG_NAMES)


def test_a_short_run_trains_its_budget_and_cools_down_where_the_full_runs_do(raw):
    raw["runs"]["arm"] = {"fraction": 0.1, "budget": 0.3, "seed": 7}
    p = validate(raw)
    short, full = resolve(p, "arm").train, resolve(p, "s100").train
    assert short.examples_seen == round(0.3 * p.train.examples_seen) and short.seed == 7
    assert full == p.train  # a run without budget or seed trains the train block as it is
    ends = [c * short.examples_seen for c in short.cooldown_budgets]
    shared = [c * p.train.examples_seen for c in p.train.cooldown_budgets if c < 0.3]
    assert ends[:-1] == pytest.approx(shared) and ends[-1] == short.examples_seen


def test_a_runs_own_peak_lr_replaces_the_train_blocks_and_shapes_its_fingerprint_alone(raw):
    from vlscale.runs.current import train_fingerprint as fingerprint

    raw["runs"]["wide"] = {"fraction": 1.0, "peak_lr": 0.0005}
    p = validate(raw)
    assert resolve(p, "wide").train.peak_lr == 0.0005 and resolve(p, "s100").train.peak_lr == p.train.peak_lr
    assert p.runs["s100"].peak_lr is None  # a run without one hashes as an entry without the key:
    subset = {"key": 0, "counts": {"en": 10}}
    assert "peak_lr" not in resolve(p, "s100").hashed_entry
    raw_s100 = {k: v for k, v in raw["runs"]["s100"].items() if k != "peak_lr"}
    with_lr = validate({**raw, "runs": {"s100": {**raw_s100, "peak_lr": 0.0005}}})
    assert fingerprint(with_lr, "s100", subset) != fingerprint(p, "s100", subset)
    assert fingerprint(with_lr, "s100", subset) == fingerprint(p.replace(runs={"s100": with_lr.runs["s100"]}),
                                                               "s100", subset)
    raw["runs"]["wide"]["peak_lr"] = -1
    with pytest.raises(ParamsError, match=r"runs\.wide\.peak_lr"):
        validate(raw, "params.yaml")


def test_a_budget_too_short_for_warmup_and_cooldown_names_the_run_and_value(raw):
    raw["runs"]["arm"] = {"fraction": 0.1, "budget": 0.01}
    with pytest.raises(ParamsError, match=r"runs\.arm\.budget = 0\.01: its first cool-down ends at \d+ examples"):
        validate(raw, "params.yaml")
    raw["runs"]["arm"] = {"fraction": 0.1, "budget": 1.5}
    with pytest.raises(ParamsError, match=r"runs\.arm\.budget"):
        validate(raw, "params.yaml")


def test_a_runs_model_replaces_the_model_blocks_keys_for_that_run_and_is_validated():
    raw = read_params(ROOT / "params.yaml", "gpu")
    large = {"image": {"variant": "L/16", "pool_type": "map"}, "text": {"variant": "L"}, "out_dim": [None, 1024]}
    raw["runs"]["l100"] = {"fraction": 1.0, "model": large}  # the example params.yaml's comment gives
    p = validate(raw)
    large_model = resolve(p, "l100").model
    assert large_model.image == {"variant": "L/16", "pool_type": "map"}
    assert large_model.out_dim == (None, 1024) and large_model.bias_init == p.model.bias_init
    assert resolve(p, "s100").model == p.model and large_model.name == "L/16"
    raw["runs"]["l100"]["model"] = {"image": {"variant": "L/16", "patchsize": 16}}
    with pytest.raises(ParamsError, match=r"runs.l100.model.image = .*unknown tower keys \['patchsize'\]"):
        validate(raw)


def test_validated_params_are_typed_frozen_and_dump_to_what_they_were_built_from(raw):
    p = validate(raw)
    assert p.train.peak_lr == raw["train"]["peak_lr"] and p.runs["s10"].fraction == 0.1
    assert p.evaluate.keys.report == raw["evaluate"]["keys"]["report"] and p.engine == raw["engine"]
    with pytest.raises(ValidationError):
        p.train.peak_lr = 1.0  # frozen: a stage cannot change the params another stage reads
    assert validate(p.dump()) == p and validate(p.dump()).dump() == p.dump()
    assert validate(p) is p
    assert p.dump("train", "runs") == {"train": p.train.model_dump(),
                                       "runs": {n: r.model_dump() for n, r in p.runs.items()}}


def test_a_block_given_in_part_holds_only_its_keys_each_checked():
    p = validate({"profile": "cpu", "sample": {"source": "synthetic"}, "evaluate": {"keys": {"dev": 1, "report": 2}}},
                 partial=("sample", "evaluate"))
    assert p.sample.source == "synthetic" and p.evaluate.keys.dev == 1 and p.train is None
    with pytest.raises(AttributeError):
        getattr(p.sample, "pool_size")  # noqa: B009 (not given: absent, not its default)
    assert p.dump() == {"profile": "cpu", "sample": {"source": "synthetic"},
                        "evaluate": {"keys": {"dev": 1, "report": 2}}}
    with pytest.raises(ParamsError, match=r"params.yaml: sample.source = 'laion': Input should be"):
        validate({"profile": "cpu", "sample": {"source": "laion"}}, partial=("sample",))
    with pytest.raises(ParamsError, match=r"evaluate.keys = .*the report key must be fresh"):
        validate({"profile": "cpu", "evaluate": {"keys": {"dev": 1, "report": 1}}}, partial=("evaluate",))
    with pytest.raises(ParamsError, match=r"sample: unknown keys \['sorce'\]"):
        validate({"profile": "cpu", "sample": {"sorce": "synthetic"}}, partial=("sample",))
    with pytest.raises(ParamsError, match="sample.pool_size = None: Field required"):  # whole params: every key
        validate({"profile": "cpu", "sample": {"source": "synthetic"}})
    with pytest.raises(ParamsError, match="sample.pool_size = None: Field required"):  # only the blocks named
        validate({"profile": "cpu", "sample": {"source": "synthetic"}}, partial=("evaluate",))


@pytest.mark.parametrize("profile", PROFILES)
def test_every_stages_declared_params_validate_as_the_stage_reads_them(profile):
    from vlscale.pipeline import STAGE_PARAMS, stage_parameters

    for stage in STAGE_PARAMS:
        parts = {name.partition(".")[0] for name in STAGE_PARAMS[stage] if "." in name}
        p = validate(stage_parameters(stage, ROOT / "params.yaml", ROOT / "dvc.yaml", profile), partial=parts)
        assert {name.partition(".")[0] for name in STAGE_PARAMS[stage]} == set(p.dump())
