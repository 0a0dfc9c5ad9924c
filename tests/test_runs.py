"""A run, resolved once for every stage; its data; its directory's layout; and the one rule that says whether a
stage's result for it is current (vlscale.runs)."""
import hashlib
import json
import shutil

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vlscale.config import validate
from vlscale.data.filter_arms import sha256_of
from vlscale.runs import current
from vlscale.runs.current import (
    CODE_VERSIONS,
    PACKAGE,
    StaleCodeVersion,
    check_code_version,
    evaluation_fingerprint,
    is_current,
    save_fingerprint,
    stage_sources,
    train_fingerprint,
)
from vlscale.runs.data import data_record, pool_share
from vlscale.runs.layout import RunDir, checkpoint_meta, cooldown_label, examples_of_label
from vlscale.runs.settings import resolve

# A resolved params mapping, small, with a run of each kind: the natural, a seed replicate at a short budget, a
# filter arm's run, and one with its own model and peak learning rate.
TRAIN = {"seed": 0, "image_px": 32, "batch_size": 32, "examples_seen": 4096, "warmup_examples": 128,
         "cooldown_examples": 128, "timescale_examples": 256, "peak_lr": 0.001, "weight_decay": 0.0001,
         "grad_clip_norm": 1.0, "drop_tokens_frac": 0.0, "cooldown_budgets": [0.1, 0.33, 1.0], "loss": "chunked",
         "dtype": "float32", "mesh": {"data": -1, "fsdp": 1}, "checkpoint_every_examples": 1024,
         "log_every_steps": 2, "probe_every_examples": 1024, "probe_images": 143, "workers": 0}
MODEL = {"image_model": "vit", "text_model": "text_transformer",
         "image": {"width": 32, "depth": 1, "mlp_dim": 64, "num_heads": 2, "patch_size": [8, 8], "pool_type": "map"},
         "text": {"width": 32, "depth": 1, "mlp_dim": 64, "num_heads": 2}, "out_dim": [None, 32],
         "temperature_init": 10.0, "bias_init": -10.0}
ENTRY = {"rebalanced": False, "seed": None, "budget": 1.0, "filter": None, "model": None, "peak_lr": None}
P = {"profile": "smoke", "world": {"seed": 0}, "tokenizer": {"vocab_size": 3000, "max_len": 16}, "model": MODEL,
     "train": TRAIN, "evaluate": {"keys": {"dev": 0, "report": 1}}, "filter": {"arms": ["clip"]},
     "runs": {"s10": {**ENTRY, "fraction": 0.1},
              "s100_seed1": {**ENTRY, "fraction": 1.0, "seed": 1, "budget": 0.33},
              "f_clip": {**ENTRY, "fraction": 1.0, "filter": "clip", "budget": 0.33},
              "wide": {**ENTRY, "fraction": 1.0, "peak_lr": 0.0005, "model": {"image": {"variant": "L/16"}}}}}
PARTS = ("world", "tokenizer", "evaluate", "filter")
PARAMS = validate(P, partial=PARTS)  # the world, tokenizer, evaluate and filter blocks given in part
SUBSET = {"key": 0, "source": "synthetic", "world": "7ef148e9", "fraction": 0.1, "examples": 20,
          "counts": {"en": 12, "sw": 8}, "ids_file": "ids_10pct.npy"}


def test_each_stage_code_version_is_recorded_with_the_digest_of_its_sources():
    """Whoever changes the code that computes a stage's results raises its code version (results made before are
    then made again) and records the new digest; a change that leaves every result as it was records it alone."""
    for stage in CODE_VERSIONS:
        check_code_version(stage)  # raises StaleCodeVersion, saying what to do, when the digest is not recorded


def test_a_stages_sources_are_the_import_closure_of_its_root_with_the_data_it_reads():
    names = {f.relative_to(PACKAGE).as_posix() for f in stage_sources("evaluate")}
    assert {"evals/stage.py", "evals/protocols.py", "siglip.py", "models/vit.py", "world/render.py",
            "world/data/concepts.json", "evals/data/classes.json", "runs/settings.py"} <= names
    assert "runs/current.py" not in names  # it records the digests: hashing it would chase its own tail
    assert not any(n.startswith(("paper/", "analysis/", "attention/")) for n in names)
    train = {f.relative_to(PACKAGE).as_posix() for f in stage_sources("train")}
    assert {"training/trainer.py", "training/probe.py", "data/input.py", "evals/protocols.py"} <= train
    assert "evals/stage.py" not in train


def test_a_changed_source_makes_its_stage_refuse_until_the_version_is_confirmed(tmp_path, monkeypatch):
    copy = tmp_path / "vlscale"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(current, "CODE_DIGESTS", {s: current.source_digest(s, copy) for s in CODE_VERSIONS})
    (copy / "evals" / "stage.py").write_text("# edited\n")  # a source of evaluation, not of training
    check_code_version("train", copy)
    protocols = copy / "evals" / "protocols.py"  # a source of both: the in-run probe uses the protocols
    protocols.write_text(protocols.read_text() + "\nCHANGED = True\n")
    for stage in ("evaluate", "train"):
        with pytest.raises(StaleCodeVersion, match=rf"CODE_VERSIONS\['{stage}'\].*python -m vlscale.runs --digests"):
            check_code_version(stage, copy)


def test_the_training_fingerprint_is_the_hash_finished_runs_were_made_with():
    """sha256 of the world, tokenizer, model and train blocks (without the keys that do not shape training) and the
    run's entry (without the later keys left null) and subset, as runs/<name>/fingerprint.json holds it."""
    train = {k: v for k, v in TRAIN.items() if k not in ("checkpoint_every_examples", "log_every_steps", "workers",
                                                         "probe_every_examples", "probe_images")}
    entry = {k: v for k, v in P["runs"]["s10"].items() if k not in ("model", "peak_lr")}
    shaped = {"world": P["world"], "tokenizer": P["tokenizer"], "model": MODEL, "train": train, "run": entry,
              "subset": SUBSET}
    expected = hashlib.sha256(json.dumps(shaped, sort_keys=True).encode()).hexdigest()[:16]
    assert train_fingerprint(PARAMS, "s10", SUBSET) == expected == "8326982b9acaddcd"


def test_a_code_version_above_one_changes_the_fingerprint(monkeypatch):
    before = train_fingerprint(PARAMS, "s10", SUBSET)
    monkeypatch.setitem(CODE_VERSIONS, "train", 2)
    assert train_fingerprint(PARAMS, "s10", SUBSET) != before


def test_what_does_not_shape_training_leaves_its_fingerprint():
    base = train_fingerprint(PARAMS, "s10", SUBSET)
    quiet = {**P, "train": {**TRAIN, "log_every_steps": 7, "workers": 4, "probe_images": 1},
             "runs": {"s10": P["runs"]["s10"]}, "evaluate": {"batch_size": 8}}
    assert train_fingerprint(validate(quiet, partial=PARTS), "s10", SUBSET) == base
    faster = validate({**P, "train": {**TRAIN, "peak_lr": 0.5}}, partial=PARTS)
    assert train_fingerprint(faster, "s10", SUBSET) != base
    assert train_fingerprint(PARAMS, "s10", {**SUBSET, "key": 1}) != base


def test_a_run_resolves_its_seed_budget_model_and_curation():
    natural, replicate, arm, wide = (resolve(PARAMS, n) for n in ("s10", "s100_seed1", "f_clip", "wide"))
    assert (natural.seed, replicate.seed) == (0, 1)
    assert natural.train.model_dump() == TRAIN and natural.model_name == "w32d1p8"
    assert natural.model.model_dump() == {**MODEL, "out_dim": (None, 32)}
    assert replicate.train.examples_seen == round(0.33 * 4096)
    assert replicate.train.cooldown_budgets == [pytest.approx(0.1 / 0.33), 1.0]  # 0.33 itself is the end
    assert [r.curation for r in (natural, replicate, arm)] == ["natural", "natural", "filter/clip"]
    assert wide.train.peak_lr == 0.0005 and wide.model_name == "L/16" and wide.model.text == MODEL["text"]
    with pytest.raises(KeyError, match="no run 'nope'"):
        resolve(PARAMS, "nope")


def test_a_runs_data_is_its_subset_or_its_filter_arm(tmp_path):
    sample, filtered = tmp_path / "sample", tmp_path / "filter"
    sample.mkdir()
    (sample / "subsets.json").write_text(json.dumps({"key": 3, "source": "synthetic", "world_fingerprint": "w",
                                                     "subsets": {"10pct": {"fraction": 0.1, "examples": 20},
                                                                 "100pct": {"fraction": 1.0, "examples": 200}}}))
    natural = resolve(PARAMS, "s10")
    assert data_record(natural, sample, filtered) == {"key": 3, "source": "synthetic", "world": "w", "fraction": 0.1,
                                                     "examples": 20}
    assert pool_share(natural, filtered) == 0.1
    ids = np.arange(0, 40, 2, dtype=np.int64)
    filtered.mkdir()
    np.save(filtered / "clip.npy", ids)
    (filtered / "manifest.json").write_text(json.dumps({
        "k": 20, "pool_pairs": 200, "key": 5, "world_fingerprint": "w", "source": "synthetic", "pool_label": "100pct",
        "arms": {"clip": {"kept": 20, "sha256": sha256_of(ids), "file": "clip.npy"}}}))
    arm = resolve(PARAMS, "f_clip")
    assert data_record(arm, sample, filtered) == {"filter": "clip", "kept": 20, "sha256": sha256_of(ids),
                                                 "file": "clip.npy", "key": 5, "world": "w"}
    assert pool_share(arm, filtered) == 0.1
    with pytest.raises(ValueError, match="no subset of fraction 0.5"):
        data_record(resolve(validate({**P, "runs": {"half": {**ENTRY, "fraction": 0.5}}}, partial=PARTS), "half"),
                    sample, filtered)


@given(st.integers(min_value=0, max_value=10**12 - 1))
def test_a_cooldown_label_reads_back_as_its_examples_seen(examples_seen):
    assert examples_of_label(cooldown_label(examples_seen)) == examples_seen


def test_cooldown_checkpoints_are_listed_by_examples_seen_and_their_absence_is_named(tmp_path):
    run_dir = RunDir(tmp_path / "s10")
    for seen in (66048, 19968):
        run_dir.cooldown(seen).mkdir(parents=True)
    (run_dir.cooldowns / "notes").mkdir()
    assert run_dir.cooldown(19968).name == "seen_000000019968" and examples_of_label("notes") is None
    assert run_dir.cooled_down() == [(19968, run_dir.cooldown(19968)), (66048, run_dir.cooldown(66048))]
    with pytest.raises(FileNotFoundError, match="nothing/cooldown"):
        RunDir(tmp_path / "nothing").cooled_down()


def test_a_saved_fingerprint_is_current_until_another_is_asked_for(tmp_path):
    assert not is_current(tmp_path, "abc")
    (tmp_path / "fingerprint.json").write_text('{"fingerprint": "abc"}')  # as runs made before wrote it
    assert is_current(tmp_path, "abc") and not is_current(tmp_path, "abd")
    save_fingerprint(tmp_path, "abc")
    assert (tmp_path / "fingerprint.json").read_text() == '{"fingerprint": "abc"}'  # left as it was
    save_fingerprint(tmp_path, "abd")
    assert is_current(tmp_path, "abd")


def test_an_evaluation_is_made_again_when_its_training_or_a_checkpoint_changes(tmp_path):
    run_dir, tokenizer = RunDir(tmp_path / "runs/s10"), tmp_path / "spm.model"
    tokenizer.write_bytes(b"pieces")
    meta = run_dir.cooldown(19968) / "78/meta"
    meta.mkdir(parents=True)
    (meta / "metadata").write_text(json.dumps({"step": 78, "final_loss": 6.5}))
    save_fingerprint(run_dir.path, "t1")

    def fp(p=PARAMS):
        return evaluation_fingerprint(p, "s10", run_dir.path, tokenizer)

    base = fp()
    assert checkpoint_meta(run_dir.cooldown(19968)) == {"step": 78, "final_loss": 6.5}
    assert fp(PARAMS.replace(runs={"s10": PARAMS.runs["s10"]})) == base  # the other runs are not its inputs
    assert fp(validate({**P, "filter": {"arms": ["clip", "balanced"]}}, partial=PARTS)) == base  # nor the arms
    assert fp(validate({**P, "evaluate": {**P["evaluate"], "use_key": "report"}}, partial=PARTS)) != base
    (meta / "metadata").write_text(json.dumps({"step": 78, "final_loss": 6.4}))
    assert fp() != base
    (meta / "metadata").write_text(json.dumps({"step": 78, "final_loss": 6.5}))
    save_fingerprint(run_dir.path, "t2")
    assert fp() != base
    save_fingerprint(run_dir.path, "t1")
    tokenizer.write_bytes(b"other pieces")
    assert fp() != base
