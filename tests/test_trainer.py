"""The trainer: resumable bit-for-bit after SIGKILL, the same on 8 devices as on 1, and its bookkeeping.

Training runs in subprocesses (`python -m vlscale.training.run`), as a user or DVC starts it, in a work
folder that holds what the sample and tokenizer stages write for the smoke profile.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import ROOT
from vlscale.config import load_params, read_params, validate
from vlscale.data.input import ShardSource, load_source
from vlscale.data.tokenizer import Tokenizer, train_tokenizer
from vlscale.runs.current import train_fingerprint
from vlscale.siglip import read_orbax_params
from vlscale.training import stage as train_stage
from vlscale.training.mesh import param_spec
from vlscale.training.run import (
    examples_done,
    measured_rate,
    planned_examples,
    read_log,
    read_probes,
    time_left,
    trainer_for,
)
from vlscale.training.trainer import Plan, plan_of, schedule_of


@pytest.fixture(scope="module")
def workdir(train_workdir):
    """conftest.train_workdir: params.yaml (smoke) and the sample and tokenizer stages' outputs."""
    return train_workdir


def _command(runs_dir, *args):
    return [sys.executable, "-m", "vlscale.training.run", "s10", "--no-progress", "--runs-dir", str(runs_dir), *args]


def _env(devices: int = 1):
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    return env


def _train(workdir, runs_dir, *args, devices: int = 1):
    out = subprocess.run(_command(runs_dir, *args), cwd=workdir, env=_env(devices), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def _params(directory: Path) -> dict:
    """{path: array} of the params of the newest step saved under `directory`, on the host."""
    return read_orbax_params(directory)


def _all_models(run_dir: Path) -> dict:
    models = {"main": _params(run_dir / "checkpoints")}
    for branch in sorted((run_dir / "cooldown").iterdir()):
        models[branch.name] = _params(branch)
    return models


def _wait_for(log: Path, predicate, proc, timeout_s=300):
    t0 = time.time()
    while time.time() - t0 < timeout_s:
        if log.is_file():
            rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
            if any(predicate(r) for r in rows if "event" not in r):
                return
        if proc.poll() is not None:
            raise AssertionError(f"training ended before the kill point: {proc.stderr.read()[-3000:]}")
        time.sleep(0.05)
    raise AssertionError("timed out waiting for the kill point")


@pytest.mark.pipeline
def test_a_run_killed_with_sigkill_twice_ends_bit_identical_to_an_uninterrupted_run(workdir):
    _train(workdir, workdir / "runs_a")
    runs_b = workdir / "runs_b"
    log = runs_b / "s10" / "log.jsonl"
    plan = plan_of(validate(yaml.safe_load((workdir / "params.yaml").read_text())).train)
    kill_points = [  # after the first checkpoint, in the main run; then inside the first cool-down branch
        lambda r: r["phase"] == "main" and r["step"] >= plan.main_steps // 2 + 3,
        lambda r: r["phase"].startswith("cooldown") and r["step"] > plan.budget_steps[0] - plan.cooldown_steps + 2,
    ]
    for point in kill_points:
        proc = subprocess.Popen(_command(runs_b), cwd=workdir, env=_env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        _wait_for(log, point, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    _train(workdir, runs_b)
    a, b = _all_models(workdir / "runs_a" / "s10"), _all_models(runs_b / "s10")
    assert a.keys() == b.keys() and len(a) == 1 + len(plan.budget_steps)
    for model in a:
        for name in a[model]:
            np.testing.assert_array_equal(a[model][name], b[model][name], err_msg=f"{model}: {name}")
    # The resumed run logged every step of the uninterrupted one, with the same losses.
    la, lb = read_log(workdir / "runs_a/s10/log.jsonl"), read_log(log)
    np.testing.assert_array_equal(la["loss"].to_numpy(), lb["loss"].to_numpy())


@pytest.mark.pipeline
def test_eight_devices_with_data_and_fsdp_axes_match_one_device(workdir):
    steps = 12
    _train(workdir, workdir / "one", "--stop-at-step", str(steps))
    _train(workdir, workdir / "eight", "--stop-at-step", str(steps), "--set", "train.mesh={data: 4, fsdp: 2}",
           devices=8)
    one, eight = _params(workdir / "one/s10/checkpoints"), _params(workdir / "eight/s10/checkpoints")
    start = json.loads((workdir / "eight/s10/log.jsonl").read_text().splitlines()[0])
    assert start["devices"] == 8
    # Sums run in another order on 8 devices, and Adam turns a tiny gradient difference on a
    # near-zero gradient into up to a whole step, so the tolerance is a tenth of the peak rate.
    # Attention key biases are left out: their exact gradient is zero (a softmax does not change
    # when a constant is added to every score of a query), so what Adam makes of them is rounding noise.
    compared = [n for n in one if not n.endswith("/key/bias")]
    assert len(compared) > 0.9 * len(one)
    for name in compared:
        np.testing.assert_allclose(eight[name], one[name], rtol=1e-3, atol=1e-4, err_msg=name)
    loss_one, loss_eight = (read_log(workdir / f"{d}/s10/log.jsonl")["loss"].to_numpy() for d in ("one", "eight"))
    np.testing.assert_allclose(loss_eight, loss_one, rtol=1e-5)


def test_log_records_what_the_issue_names(workdir):
    _train(workdir, workdir / "logged", "--stop-at-step", "6")
    rows = [json.loads(line) for line in (workdir / "logged/s10/log.jsonl").read_text().splitlines()]
    start, steps = rows[0], [r for r in rows[1:] if "event" not in r]
    assert start["event"] == "start" and start["n_params"] > 0 and start["flops_per_example"] > 0
    assert [r["step"] for r in steps] == [2, 4, 6]
    for r in steps:
        assert {"step", "examples_seen", "loss", "learning_rate", "examples_per_s", "step_time_s", "mfu"} <= set(r)
        assert r["examples_seen"] == r["step"] * 32 and np.isfinite(r["loss"])
    assert all(np.isfinite(r["mfu"]) and r["mfu"] > 0 for r in steps[1:])


def test_the_probe_is_logged_through_the_main_run_and_at_each_branch_end(workdir):
    """Probe records (dev-key analogs) at step 0, every probe_every_examples and after every
    cool-down; the run's metrics carry the last branch's probe and the chance levels."""
    runs, records = workdir / "probed", workdir / "probed_records"
    _train(workdir, runs, "--records-dir", str(records), "--set", "train.probe_every_examples=1024",
           "--set", "train.probe_images=143")
    probes = read_probes(runs / "s10/log.jsonl")
    main = probes[probes["phase"] == "main"]
    assert main["step"].tolist() == [0, 32, 64, 96]  # 4096 examples of 32, the last at the main run's end
    branches = probes[probes["phase"] != "main"]
    assert branches["step"].tolist() == [42, 128]  # budgets 0.33 and 1.0 of 4096 examples, in steps of 32
    for column in ("imagenet_0shot_acc", "coco_i2t_r1"):
        assert probes[column].between(0, 100).all()
    metrics = json.loads((records / "metrics/train/s10.json").read_text())
    assert metrics["probe"]["key"] == "dev" and metrics["probe"]["images"] == 143
    assert metrics["probe"]["chance"]["imagenet_0shot_acc"] == pytest.approx(100 / 143)
    assert metrics["probe"]["final"] == branches.iloc[-1][["imagenet_0shot_acc", "coco_i2t_r1"]].to_dict()
    assert (records / "plots/train_probe/s10.csv").is_file()
    assert len(pd.read_csv(records / "plots/train_probe/s10.csv")) == len(probes)


def test_a_finished_run_is_not_trained_again_and_its_records_are_rewritten(workdir):
    """The train stage trains every run; a run finished with the same params keeps its model and log,
    and its records (metrics JSON, loss and probe CSVs) come back from its run directory."""
    runs, first, again = workdir / "finished", workdir / "finished_records", workdir / "finished_again"
    probe = ("--set", "train.probe_every_examples=2048", "--set", "train.probe_images=143")
    _train(workdir, runs, "--records-dir", str(first), *probe)
    log = (runs / "s10/log.jsonl").read_text()
    cooled = sorted((runs / "s10/cooldown").iterdir())
    stamps = [p.stat().st_mtime_ns for p in cooled]
    out = _train(workdir, runs, "--records-dir", str(again), *probe)
    assert "not trained again" in out.stdout
    assert (runs / "s10/log.jsonl").read_text() == log  # no new start record, no step
    assert [p.stat().st_mtime_ns for p in sorted((runs / "s10/cooldown").iterdir())] == stamps
    for name in ("metrics/train/s10.json", "plots/train/s10.csv", "plots/train/s10_cooldown.csv",
                 "plots/train_probe/s10.csv"):
        assert (again / name).read_text() == (first / name).read_text(), name
    # a changed param trains again, from scratch
    out = _train(workdir, runs, "--records-dir", str(again), *probe, "--set", "train.peak_lr=0.002")
    assert "not trained again" not in out.stdout
    assert json.loads((again / "metrics/train/s10.json").read_text())["provenance"]["params"]["train"]["peak_lr"] == 0.002


def test_the_train_stage_trains_the_runs_it_is_given_and_draws_their_curves(workdir, monkeypatch):
    """run(params, names) trains each named run (all of params' runs without names), returns {run: its metrics} and
    draws the curves its notebook shows."""
    monkeypatch.chdir(workdir)
    params = read_params("params.yaml")
    with pytest.raises(ValueError, match="'nowhere'"):
        train_stage.run(params, ["s10", "nowhere"])  # refused before any work
    assert not Path("runs").exists()
    metrics = train_stage.run(params, ["s10"])
    assert list(metrics) == ["s10"]
    assert metrics["s10"]["examples_seen"] == json.loads(Path("metrics/train/s10.json").read_text())["examples_seen"]
    assert sorted(p.name for p in train_stage.FIG_DIR.iterdir()) == ["loss_curves.png", "probe_curves.png"]


def test_a_run_with_changed_params_starts_afresh_instead_of_resuming(workdir):
    runs = workdir / "changed"
    _train(workdir, runs, "--stop-at-step", "4")
    _train(workdir, runs, "--stop-at-step", "4", "--set", "train.peak_lr=0.002")
    rows = [json.loads(line) for line in (runs / "s10/log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r.get("event") == "start"] == [0]  # one start, at step 0: the old run was cleared


def test_plan_places_cooldown_branches_at_the_budgets():
    p = validate(yaml.safe_load((ROOT / "params.yaml").read_text()))
    train = p.train.model_copy(update={"examples_seen": 100_000, "batch_size": 100, "warmup_examples": 1000,
                                       "cooldown_examples": 1000, "cooldown_budgets": [0.03, 0.1, 1.0]})
    plan = plan_of(train)
    assert plan.budget_steps == (30, 100, 1000) and plan.cooldown_steps == 10 and plan.main_steps == 990
    assert plan.branches_at(20) == [30] and plan.branches_at(990) == [1000] and plan.branches_at(21) == []
    assert plan.total_steps == 990 + 3 * 10
    with pytest.raises(ValueError, match="budget"):
        Plan.of(100_000, 100, schedule_of(train.model_copy(update={"cooldown_examples": 5000})), [0.03, 1.0])


def test_fsdp_rule_splits_the_largest_divisible_dimension():
    assert param_spec((768, 3072), 2) == (None, "fsdp") or tuple(param_spec((768, 3072), 2)) == (None, "fsdp")
    assert tuple(param_spec((3, 5), 2)) == ()
    assert tuple(param_spec((64,), 1)) == ()
    assert tuple(param_spec((1,), 2)) == ()


def test_fingerprint_changes_with_what_shapes_training_only():
    p = validate(yaml.safe_load((ROOT / "params.yaml").read_text()))
    subset = {"key": 0, "counts": {"en": 10}}
    base = train_fingerprint(p, "s1", subset)
    assert train_fingerprint(p.replace(train=p.train.model_copy(update={"log_every_steps": 7})), "s1", subset) == base
    assert train_fingerprint(p.replace(train=p.train.model_copy(update={"peak_lr": 0.5})), "s1", subset) != base
    assert train_fingerprint(p, "s1", {**subset, "key": 1}) != base


def test_training_on_real_shards_takes_steps_on_their_pixels(params, world, real_sample, tmp_path):
    """A real pool trains through the same step: images arrive as uint8 pixels instead of ids."""
    p = load_params(ROOT / "params.yaml", "smoke")
    source = load_source(world, real_sample, "100pct", rebalanced=False, image_px=p.train.image_px)
    assert isinstance(source, ShardSource)
    captions = {"all": [f"caption {i} {lang}" for i in range(24) for lang in ("en", "de", "sw")] * 20}
    tokenizer = Tokenizer(train_tokenizer(captions, 282, tmp_path / "t.model"))  # 256 bytes + characters
    p = p.replace(train=p.train.model_copy(update={"batch_size": 8, "examples_seen": 240, "warmup_examples": 16,
                                                   "cooldown_examples": 16, "timescale_examples": 16,
                                                   "log_every_steps": 1}))
    trainer = trainer_for(p, world, source, tokenizer)
    assert not trainer.inputs.synthetic
    summary = trainer.fit(tmp_path / "run", progress=False, stop_at_step=4)
    log = read_log(tmp_path / "run/log.jsonl")
    assert summary["steps"] == 4 and list(log["step"]) == [1, 2, 3, 4] and np.isfinite(log["loss"]).all()


def test_a_run_with_its_own_model_trains_that_model_and_fingerprints_apart(workdir):
    """The model axis: runs.<run>.model replaces top-level keys of the model block for that run alone."""
    runs = workdir / "wider"
    tower = "width: 48, depth: 1, mlp_dim: 96, num_heads: 2"
    # both towers wider, and the text head to the image width (the image tower has no head: out_dim [null, d])
    _train(workdir, runs, "--set", f"runs.s10.model={{image: {{{tower}, patch_size: [8, 8], pool_type: map}}, "
                                   f"text: {{{tower}}}, out_dim: [null, 48]}}")
    params = _params(runs / "s10/checkpoints")
    kernel = next(v for k, v in params.items() if k.startswith("img/embedding") and k.endswith("kernel"))
    assert kernel.shape[-1] == 48  # the image tower's width; the smoke model's is 32
    raw = yaml.safe_load((workdir / "params.yaml").read_text())
    assert "model" not in raw["runs"]["s10"]
    base = train_fingerprint(validate(raw), "s10", None)
    # a run whose model is null fingerprints as one without the key
    unset = {**raw, "runs": {**raw["runs"], "s10": {**raw["runs"]["s10"], "model": None}}}
    assert train_fingerprint(validate(unset), "s10", None) == base
    own = {**raw, "runs": {**raw["runs"], "s10": {**raw["runs"]["s10"],
                                                  "model": {"image": {**raw["model"]["image"], "width": 48}}}}}
    assert train_fingerprint(validate(own), "s10", None) != base


def test_the_time_left_counts_the_main_run_and_every_cool_down_branch(workdir):
    """What the Colab notebook prints: examples planned (main run and branches), done so far from the log, and
    the time left at a measured rate; a run stopped at step 12 has done 12 batches."""
    p = validate(yaml.safe_load((workdir / "params.yaml").read_text()))
    plan = plan_of(p.train)
    assert planned_examples(p, "s10") == (plan.main_steps + len(plan.budget_steps) * plan.cooldown_steps) * 32
    assert examples_done(workdir / "eta/s10") == 0
    with pytest.raises(ValueError, match="no log yet"):
        measured_rate(workdir / "eta/s10")
    _train(workdir, workdir / "eta", "--stop-at-step", "12")
    assert examples_done(workdir / "eta/s10") == 12 * 32
    rate = measured_rate(workdir / "eta/s10")
    assert rate > 0
    left = time_left(p, ["s10", "s1"], workdir / "eta", rate)
    assert left["examples"] == planned_examples(p, "s10") + planned_examples(p, "s1") and left["done"] == 12 * 32
    assert left["left_s"] == pytest.approx((left["examples"] - 12 * 32) / rate)
