"""The compute ladder (tools/ladder.py): a rung is the default profile with the pool, the examples seen and the
schedule's lengths scaled by N alone, and its table reads every part of every finding from the rungs' records."""
import json
import shutil
import sys

import pytest
import yaml

from conftest import ROOT
from vlscale.config import validate

sys.path.insert(0, str(ROOT / "tools"))
import ladder  # noqa: E402


def test_a_rung_scales_pool_examples_and_schedule_by_n_and_nothing_else():
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    rung = ladder.rung_params(raw, 800_000, key="report", seeds=3)
    base, p = validate(raw), validate(rung)
    assert p.sample.pool_size == p.train.examples_seen == 800_000  # the 100% run sees each pair once
    train, base_train = p.train.model_dump(), base.train.model_dump()
    for k in ladder.SCALED:
        assert train[k] == pytest.approx(4 * base_train[k], abs=1), k
    unscaled = set(base_train) - ladder.SCALED
    assert {k: train[k] for k in unscaled} == {k: base_train[k] for k in unscaled}
    assert p.model == base.model and p.world == base.world and p.tokenizer == base.tokenizer
    assert set(p.runs) == {"s1", "s10", "s100", "s10_seed1", "s100_seed1", "s10_seed2", "s100_seed2"}
    assert all(r.filter is None and not r.rebalanced for r in p.runs.values())
    assert p.filter.arms == ["random"] and p.evaluate.use_key == "report"
    assert raw["runs"] == yaml.safe_load((ROOT / "params.yaml").read_text())["runs"]  # the caller's params untouched


def test_the_table_reads_each_finding_at_each_rung(tmp_path):
    """Two rungs made of a real paper stage record (results/reference/2026-12-06_cpu_3seeds): every part at both N."""
    record = ROOT / "results/reference/2026-12-06_cpu_3seeds/paper.json"
    for n in (200_000, 800_000):
        rung = tmp_path / f"N{n}_dev"
        rung.mkdir()
        shutil.copy(record, rung / "paper.json")
        shutil.copy(record.with_name("figures.json"), rung / "figures.json")
        (rung / "rung.json").write_text(json.dumps({"examples_seen": n}))
    rows = ladder.table("dev", tmp_path)
    parts = sum(len(f["parts"]) for f in json.loads(record.read_text())["verdicts"])
    assert len(rows) == 2 * parts and {r["examples_seen"] for r in rows} == {200_000, 800_000}
    path = ladder.write_table("dev", tmp_path)
    text = path.read_text()
    assert "N = 200,000" in text and "N = 800,000" in text
    western = next(r for r in rows if r["finding"] == 1)
    lo, hi = western["ci95"]
    assert f"{western['effect']:+.2f} [{lo:+.2f}, {hi:+.2f}] {western['verdict']}" in text
    assert ladder.table("report", tmp_path) == []
    # the study profile's targets at the 100% scale, read from the figures record
    figures = json.loads(record.with_name("figures.json").read_text())
    zero_shot = next(r for r in ladder.levels("dev", tmp_path) if r["target"] == "ImageNet-like 0-shot accuracy")
    assert zero_shot["value"] == pytest.approx(100 - figures["table1"]["imagenet/0shot"]["100%"]["error_pct"])
    assert f"| ImageNet-like 0-shot accuracy | {zero_shot['value']:.1f} | {zero_shot['value']:.1f} | ≥ 40 |" in text


def test_a_design_probe_is_one_run_of_a_rung_with_its_overrides_in_every_profile():
    import design_probe

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    over = {"world.language_share_exponent": 0.5, "model.out_dim": [None, 96],
            "model.image": {"width": 96, "depth": 1, "mlp_dim": 384, "num_heads": 4, "patch_size": [8, 8],
                            "pool_type": "map"},
            "model.text": {"width": 96, "depth": 1, "mlp_dim": 384, "num_heads": 4}}
    probe = design_probe.probe_params(raw, 800_000, over, seed=3)
    p, rung = validate(probe), validate(ladder.rung_params(raw, 800_000, key="dev", seeds=1))
    assert p.dump("runs")["runs"] == {"probe": {**rung.runs["s100"].model_dump(), "seed": 3}}
    assert p.train.cooldown_budgets == [1.0]
    assert p.dump("world")["world"] == {**rung.dump("world")["world"], "language_share_exponent": 0.5}
    assert p.model.image["width"] == p.model.text["width"] == 96 and tuple(p.model.out_dim) == (None, 96)
    assert p.train.model_dump(exclude={"cooldown_budgets"}) == rung.train.model_dump(exclude={"cooldown_budgets"})
    with pytest.raises(SystemExit, match="no key 'nope'"):
        design_probe.probe_params(raw, 800_000, {"nope.x": 1})


def test_study_targets_read_each_level_with_an_interval_over_seeds_and_images():
    import study_reference

    figures = json.loads((ROOT / "results/reference/ladder/N800000_dev/figures.json").read_text())
    rows = {r["target"]: r for r in study_reference.targets(figures)}
    assert list(rows) == list(ladder.TARGETS)  # the ladder's levels and the study's targets are one list
    for name, (threshold, read) in ladder.TARGETS.items():
        r = rows[name]
        assert r["threshold"] == threshold and r["value"] == pytest.approx(read(figures), abs=0.01)
        assert r["ci95"][0] <= r["value"] <= r["ci95"][1] and r["n_seeds"] == 2
        assert r["pass"] == (r["value"] >= threshold)
    # two seeds: a table level's interval is wider than its test images' alone
    images_only = figures["table1"]["imagenet/0shot"]["100%"]["ci95"]
    assert rows["ImageNet-like 0-shot accuracy"]["ci95"][1] - rows["ImageNet-like 0-shot accuracy"]["ci95"][0] > \
        images_only[1] - images_only[0]


def test_the_phase_diagram_has_a_row_per_part_and_a_column_per_rung(tmp_path):
    import matplotlib.image

    for rung in ("N200000_dev", "N800000_dev"):
        shutil.copytree(ladder.OUT / rung, tmp_path / rung)
    path = ladder.phase_diagram("dev", tmp_path)
    parts = {(r["finding"], r["part"]) for r in ladder.table("dev", tmp_path)}
    image = matplotlib.image.imread(path)
    assert path.name == "ladder_dev.png" and len(parts) >= 20
    assert image.shape[0] > 20 * len(parts) and image.shape[1] > image.shape[0] / 2


def test_seeds_needed_shrink_with_seed_noise_and_stop_at_image_noise_or_a_gate():
    """tools/power.py on the study reference's record: each inconclusive part's seeds a side, by its own rule."""
    import power

    paper = json.loads((ROOT / "results/reference/study/paper.json").read_text())
    rows = power.table(paper)
    inconclusive = [p for f in paper["verdicts"] for p in f["parts"]
                    if p["verdict"] == "inconclusive" and p.get("effect") is not None]
    assert len(rows) == len(inconclusive) > 0
    change = {"effect": 2.0, "seed_sd": 2.0, "image_se": 0.1, "reason": "… the minimal detectable effect is 5",
              "rule": "does not reproduce when …", "runs": [["s10"], ["s100"]]}
    n, claim = power.seeds_needed(change)
    assert claim == "a change" and n == 17  # 2·4 / ((2 / 2.80)² − 0.01), rounded up
    assert power.seeds_needed({**change, "seed_sd": 1.0})[0] < n  # less seed noise, fewer seeds
    assert power.seeds_needed({**change, "image_se": 1.0})[0] is None  # image noise alone too large
    inside = {**change, "effect": 0.2, "margin": 1.0, "rule": "reproduces when … (equivalence, two one-sided tests)"}
    assert power.seeds_needed(inside)[1] == "equivalence within ±1"
    assert power.seeds_needed({**change, "runs": [["s100"], []]})[0] == 9  # one side (a level): half the seed noise
    # a directional part is also decided when its one-sided bound falls short of the paper's effect, by fewer seeds
    # here: the effect lies on the other side of zero from the paper's
    short = {**change, "effect": -2.0, "paper_effect": 1.0,
             "rule": "… its one-sided bound falls short of the paper's effect"}
    assert power.seeds_needed(short)[1] == "an effect short of the paper's" and power.seeds_needed(short)[0] < n
    gated = {**change, "reason": "perceived-gender error at 100% is at its chance floor"}
    assert power.seeds_needed(gated) == (None, "not for lack of power: " + gated["reason"])
    assert "| 4 | Association bias unchanged |" in power.markdown(rows, "paper.json")
