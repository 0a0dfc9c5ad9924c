"""The pipeline end to end on the smoke profile (params.yaml with profiles/smoke.yaml over it): dvc repro,
idempotence, param-level invalidation through each stage's resolved params, experiments.

Runs the real stages (papermill-executed notebooks) in a copy of the repository.
"""
import json
import subprocess

import numpy as np
import pytest
import yaml

from conftest import ROOT, repo_copy
from vlscale.config import load_params, overlay_path

pytestmark = pytest.mark.pipeline


def _run(cmd, cwd, env):
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout + r.stderr


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    dst = tmp_path_factory.mktemp("repo")
    env = repo_copy(dst, lambda params: params.update(profile="smoke"))
    (dst / "repro.log").write_text(_run(["dvc", "repro"], dst, env))
    return dst, env


def _status(repo, env):
    out = subprocess.run(["dvc", "status", "--json"], cwd=repo, env=env, capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout or "{}"))


RUNS = ("s1", "s10", "s100")
TRAIN = {"train"}
EVAL = {"evaluate"}
FILTER = {"filter"}  # it trains its filter models with the model and train blocks
ATTENTION = {"attention"}  # it maps every run's checkpoints with the model, tokenizer and train blocks
TRANSFER = {"transfer"}  # it transfers the natural runs' final image towers with the same blocks


def test_repro_runs_every_stage_and_records_the_profile(repo):
    path, env = repo
    for out in ("reports/01_world.ipynb", "reports/02_sample.ipynb", "paper/figures/world/language_shares.png",
                "paper/figures/world/examples.png", "paper/figures/sample/coverage.png",
                "paper/figures/sample/language_mix_1pct.png", "data/sample/subsets.json", "data/sample/ids_1pct.npy",
                "data/tokenizer/spm.model", "reports/03_tokenizer.ipynb", "reports/05_train.ipynb",
                "paper/figures/train/loss_curves.png", "paper/figures/train/probe_curves.png",
                "reports/06_evaluate.ipynb", "results/evaluate/s100.parquet", "reports/08_figures.ipynb",
                "paper/tables/table1.tex", "paper/tables/table3.tex", "paper/tables/table4.tex",
                "paper/tables/wilcoxon.tex", "paper/figures/eval/fig1_curves.png",
                "paper/figures/eval/fig2_xm3600.png", "paper/figures/eval/fig3_association_bias.png",
                "plots/figures/fig1.csv", "reports/04_filter.ipynb", "data/filter/manifest.json",
                "data/filter/clip.npy", "data/filter/account.parquet", "paper/figures/filter/account.png",
                "paper/figures/filter/languages.png", "paper/figures/eval/fig4_filters.png",
                "paper/figures/eval/fig5_rebalancing.png", "paper/tables/table13.tex", "paper/tables/table14.tex",
                "plots/figures/fig4.csv", "plots/figures/fig5.csv", "plots/world/captions.csv",
                "reports/07_attention.ipynb", "results/attention/summary.json", "results/attention/focus.parquet",
                "paper/figures/attention/table6.png", "paper/figures/attention/focus.png",
                "paper/tables/attention_focus.tex", "reports/09_paper.ipynb", "paper/main.pdf",
                "paper/generated/values.json", "reports/10_transfer.ipynb", "results/transfer/rows.parquet"):
        assert (path / out).is_file(), out
    for m in ("world", "sample", "tokenizer", "filter", *(f"train/{r}" for r in RUNS),
              *(f"evaluate/{r}" for r in RUNS), "attention", "figures", "paper", "transfer"):
        metrics = json.loads((path / f"metrics/{m}.json").read_text())
        assert metrics["provenance"]["profile"] == "smoke"
        assert metrics["provenance"]["versions"]["jax"]
    # nothing a user must ignore: the kernels talk over IPC (no TCP-encryption warning), tqdm has ipywidgets
    log = (path / "repro.log").read_text()
    assert "without encryption" not in log and "IProgress not found" not in log
    # the executed notebooks are signed as trusted, so JupyterLab draws their saved progress widgets
    import nbformat
    from nbformat.sign import NotebookNotary

    assert NotebookNotary().check_signature(nbformat.read(path / "reports/05_train.ipynb", as_version=4))
    # vlscale.pipeline runs each notebook from notebooks/, as JupyterLab does: outputs still land at the root
    assert not (path / "notebooks/metrics").exists() and not (path / "notebooks/data").exists()
    sample = json.loads((path / "metrics/sample.json").read_text())
    # 1% of the smoke pool of 50,000, floored in each of the 37 language strata
    assert 463 <= sample["subsets"]["1pct"]["examples"] <= 500
    assert sample["subsets"]["100pct"]["examples"] == 50_000
    # DVC reads the per-run metrics of the train and evaluate stages' metrics folders
    shown = json.loads(_run(["dvc", "metrics", "show", "--json"], path, env))
    files = {f for rev in shown.values() for f in rev.get("data", {})}
    assert {*(f"metrics/train/{r}.json" for r in RUNS), *(f"metrics/evaluate/{r}.json" for r in RUNS)} <= files


def test_the_three_runs_are_compute_matched_and_keep_every_cooldown(repo):
    path, _ = repo
    train = [json.loads((path / f"metrics/train/{r}.json").read_text()) for r in RUNS]
    assert len({m["examples_seen"] for m in train}) == 1 and len({m["steps"] for m in train}) == 1
    epochs = [m["epochs"] for m in train]
    assert epochs[0] > 10 * epochs[1] * 0.9 and epochs[1] > 10 * epochs[2] * 0.9  # 1% repeats 10× more than 10%
    budgets = load_params(path / "params.yaml").train.cooldown_budgets
    for r, m in zip(RUNS, train):
        assert len(m["cooldown_losses"]) == len(budgets) and np.isfinite(m["final_loss"])
        assert len(list((path / "runs" / r / "cooldown").iterdir())) == len(budgets)


def test_evaluate_and_figures_cover_every_checkpoint_and_table(repo):
    path, _ = repo
    import pandas as pd

    budgets = load_params(path / "params.yaml").train.cooldown_budgets
    for r in RUNS:
        table = pd.read_parquet(path / f"results/evaluate/{r}.parquet")
        assert table["examples_seen"].nunique() == len(budgets)
        tasks = set(table["task"])
        assert {"imagenet/0shot", "coco/i2t", "xm3600/i2t/te", "dollarstreet/geoloc_10shot",
                "geode/disparity_region", "fairface/representation_bias"} <= tasks
        assert table["value"].notna().all() and (table["n"] > 0).all()
        saved = json.loads(next((path / f"results/evaluate/{r}").glob("seen_*/analog/imagenet.json")).read_text())
        assert saved["provenance"]["profile"] == "smoke" and "imagenet/0shot" in saved["results"]
    figures = json.loads((path / "metrics/figures.json").read_text())
    assert figures["provenance"]["profile"] == "smoke"
    # every run the profile trains is in the figures stage's plan
    assert set(figures["plan"]["runs"]) == set(load_params(path / "params.yaml").runs)
    # the curated runs: every filter arm against examples seen, every data scale before and after rebalancing
    curated = figures["curation"]
    # every arm's seed replicates; the random arm is the natural 10% runs and f_random (the same data)
    assert curated["filter_runs"] == {"random": ["s10", "s10_seed1", "f_random", "s10_seed3"],
                                      "english": ["f_english", "f_english_seed1"],
                                      "clip": ["f_clip", "f_clip_seed1"], "classifier": ["f_classifier"],
                                      "planted": ["f_planted"], "balanced": ["f_balanced"]}
    assert set(curated["rebalancing"]) == {"10%", "100%"} and not curated["notes"]
    assert {"clip_minus_english", "planted_minus_random"} <= set(curated["filter_differences"])
    assert {"control/negative/culture", "control/positive/culture_0shot"} <= set(figures["evidence"])
    assert "\\begin{tabular}" in (path / "paper/tables/table1.tex").read_text()


def test_the_attention_stage_maps_every_run_and_tests_finding_8(repo):
    path, _ = repo
    import pandas as pd

    summary = json.loads((path / "metrics/attention.json").read_text())
    assert summary["provenance"]["profile"] == "smoke"
    focus = pd.read_parquet(path / "results/attention/focus.parquet")
    runs = load_params(path / "params.yaml").runs  # the runs of the smoke profile
    assert set(focus["run"]) == set(runs)
    per = summary["per_group"]
    assert (focus.groupby(["run", "examples_seen"]).size() == 4 * per).all()
    assert ((focus["energy"] >= 0) & (focus["energy"] <= focus["energy_bound"] + 1e-9)).all()
    assert any(n.startswith("attention/step/") for n in summary["evidence"])
    # every comparison, and the seed variance it counts, at the natural runs' final examples seen
    setup = summary["evidence_setup"]["models"]
    assert all(r["examples_seen"] == setup[r["model"]]["examples_seen"] for r in summary["evidence"].values())


def test_the_transfer_stage_grades_each_natural_run_against_its_oracle_and_chance(repo):
    path, _ = repo
    import pandas as pd

    from vlscale.transfer.tasks import TASKS

    metrics = json.loads((path / "metrics/transfer.json").read_text())
    p = load_params(path / "params.yaml")
    assert {(s["run"], s["setting"]) for s in metrics["scores"].values()} == {
        (r, s) for r in RUNS for s in p.transfer.settings}
    rows = pd.read_parquet(path / "results/transfer/rows.parquet")
    assert (rows.groupby(["run", "setting"]).size() == len(TASKS) * p.transfer.test_images).all()
    oracle, chance = metrics["checks"]["oracle"]["tasks"], metrics["checks"]["chance"]["tasks"]
    assert all(oracle[t] == 100.0 for t in TASKS if t not in ("caption_en", "caption_page"))
    assert all(chance[t] < oracle[t] for t in TASKS)
    # finding 5's evidence, judged by the paper stage and shown with its Table 2 / 12 analogs
    assert {f"transfer/frozen/100_minus_{p}" for p in (1, 10)} <= set(metrics["evidence"])
    five = next(f for f in json.loads((path / "paper/generated/findings.json").read_text()) if f["id"] == 5)
    assert five["verdict"] in ("reproduces", "does not reproduce", "inconclusive") and len(five["parts"]) == 2
    assert five["tables"] == ["transfer_table2", "transfer_table12"]
    assert (path / "paper/tables/transfer_table2.tex").is_file()


def test_the_paper_pdf_shows_every_figure_and_table_and_no_placeholder(repo, tmp_path):
    """Read the PDF as a reader would: every page rendered, every figure the stages made drawn with its caption,
    every table's caption and a row of it in the text, each finding's verdict, the captions of all 36 languages
    in fonts that have their scripts, and no placeholder or unformatted value left."""
    import collections

    import numpy as np
    from PIL import Image

    from vlscale.paper.build import read_pdf

    path, _ = repo
    pages = read_pdf(path / "paper/main.pdf", render_dir=tmp_path, scale=0.5)
    assert len(pages) >= 8
    for p in pages:  # every page renders, and shows something
        assert np.asarray(Image.open(p["png"]).convert("L")).std() > 1
    text = " ".join(" ".join(p["text"] for p in pages).split())
    figures = sorted(f.relative_to(path / "paper/figures").with_suffix("").as_posix()
                     for f in (path / "paper/figures").glob("*/*.png"))
    generated = json.loads((path / "paper/generated/figures.json").read_text())
    assert [g["key"] for g in generated] == figures
    assert sum(p["images"] for p in pages) == len(figures)
    # a compound broken at its hyphen at a line's end is read back with the hyphen as \x02 ("COCO\x02like")
    flat = text.replace("\x02", "").replace("-", "")
    for g in generated:
        assert " ".join(g["caption"].split()).replace("-", "") in flat, g["key"]
    tables = sorted(t.stem for t in (path / "paper/tables").glob("*.tex"))
    parsed = json.loads((path / "paper/generated/tables.json").read_text())
    assert sorted(t["key"] for t in parsed) == tables
    for t in parsed:
        assert " ".join(t["caption"].split())[:60].replace("-", "") in flat, t["key"]
        first = next(r for r in t["rows"] if isinstance(r, list))
        assert " ".join(first[0].split()) in text, t["key"]
    for f in json.loads((path / "paper/generated/findings.json").read_text()):
        assert f["title"] in text and f["verdict"] in text
    # metrics/paper.json: per finding its verdict, effect, interval, seeds per side and detectable effect; the controls
    record = json.loads((path / "metrics/paper.json").read_text())
    verdicts = {v["id"]: v for v in record["verdicts"]}
    assert set(verdicts) == set(range(1, 11))
    assert {v["verdict"] for v in verdicts.values()} <= {"reproduces", "does not reproduce", "inconclusive", "not tested"}
    judged = verdicts[2]  # the culture finding: its comparisons ran on three seeds of 10% and 100%
    assert judged["n_seeds"] == [3, 3] and judged["ci95"][0] < judged["effect"] < judged["ci95"][1] and judged["mde"] > 0
    assert [c["control"] for c in record["controls"]] == ["negative", "positive"]
    assert all(c["passed"] in (True, False) for c in record["controls"])
    assert ("control failed" in text) == any(c["passed"] is False for c in record["controls"])
    for c in json.loads((path / "paper/generated/captions.json").read_text()):
        chars = collections.Counter(ch for ch in c["caption"] if not ch.isspace())
        assert not chars - collections.Counter(text.replace(" ", "")), c["language"]  # right-to-left: any order
    raw = (path / "paper/main.pdf").read_bytes()
    for face in (b"NotoSansArabic", b"NotoSansBengali", b"NotoSansDevanagari", b"NotoSansTelugu", b"NotoSansThai",
                 b"NotoSansCJK"):
        assert face in raw, face
    for marker in ("??", "NaN", "nan ", "None", "--", "TODO", "#val", "#f.", "{", "}", "-inf", "inf "):
        assert marker not in text, marker
    values = json.loads((path / "paper/generated/values.json").read_text())
    # empty: no control failed, every control was judged, no study reference pointed to, no ladder figure (not study),
    # no committed attribution of the smoke profile
    blank_when_none = ("controls_failed", "controls_unrun", "study_reference", "ladder_figures", "attribution")
    assert all(v and "--" not in v for k, v in values.items() if k not in blank_when_none), values


def test_second_repro_does_nothing(repo):
    path, env = repo
    assert _status(path, env) == set()
    out = _run(["dvc", "repro"], path, env)
    assert "Running stage" not in out


def _set(file, dotted: str, value):
    """The YAML file `file` with one value replaced (its mappings created as needed)."""
    params = yaml.safe_load(file.read_text()) or {}
    *blocks, key = dotted.split(".")
    node = params
    for b in blocks:
        node = node.setdefault(b, {})
    node[key] = value
    file.write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True))


def _where(path, dotted: str):
    """The file that gives the smoke profile's value of `dotted`: its overlay where it names the key, else params.yaml."""
    smoke = overlay_path(path / "params.yaml", "smoke")
    node = yaml.safe_load(smoke.read_text())
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return path / "params.yaml"
        node = node[key]
    return smoke


def _rerun(path, env) -> set:
    """The stages `dvc repro` would run after the params stage has resolved the params again."""
    _run(["dvc", "repro", "params"], path, env)
    return _status(path, env)


def test_changing_one_param_reruns_only_the_stages_that_read_it(repo):
    path, env = repo
    files = [path / "params.yaml", *sorted((path / "profiles").glob("*.yaml"))]
    texts = {f: f.read_text() for f in files}
    cases = [("world_report.grid_px", 64, {"world"}),
             ("sample.key", 3, {"sample", *FILTER}),  # a real pool's random arm is its subset of this key
             ("tokenizer.vocab_size", 2500, {"tokenizer", *FILTER, *TRAIN, *EVAL, *ATTENTION, *TRANSFER}),
             ("model.bias_init", -5.0, FILTER | TRAIN | EVAL | ATTENTION | TRANSFER),
             ("runs.s10.fraction", 1.0, {"train", "evaluate", "attention", "transfer", "figures"}),  # retrains: below
             ("transfer.steps", 12, TRANSFER),
             ("attention.pointing_radius", 0.1, ATTENTION),
             ("evaluate.shots", 5, EVAL),
             ("figures.seed", 1, {"figures"}),
             ("filter.shard_size", 100, FILTER | TRAIN | EVAL | ATTENTION | TRANSFER),  # they validate the filter block
             ("world.seed", 1, {"world", "sample", "tokenizer", *FILTER, *TRAIN, *EVAL, *ATTENTION, *TRANSFER})]
    for key, value, stages in cases:  # each where the smoke profile takes it from (params.yaml or its overlay)
        _set(_where(path, key), key, value)
        assert _rerun(path, env) == stages, key
        for f, text in texts.items():
            f.write_text(text)
    assert _rerun(path, env) == set()
    # another profile's overlay, or a value the smoke overlay replaces, changes nothing the smoke profile runs
    for file, key, value in [(path / "profiles/gpu.yaml", "train.peak_lr", 0.0005),
                             (path / "profiles/study.yaml", "runs.m10.peak_lr", 0.003),
                             (path / "params.yaml", "train.examples_seen", 100_000)]:
        _set(file, key, value)
        assert _status(path, env) == {"params"}, (file, key)
        assert _rerun(path, env) == set(), (file, key)
        file.write_text(texts[file])
    assert _rerun(path, env) == set()


def test_colab_notebook_trains_through_dvc_in_the_clone_it_is_given(repo):
    import papermill

    path, env = repo
    out = path / "reports/colab_tpu.ipynb"
    papermill.execute_notebook(str(ROOT / "notebooks/colab_tpu.ipynb"), str(out), kernel_name="python3",
                               parameters={"profile": "smoke", "run": "s1", "repo_dir": str(path)})
    assert json.loads((path / "metrics/train/s1.json").read_text())["provenance"]["profile"] == "smoke"


def test_dvc_exp_run_with_a_set_param(repo):
    """`dvc exp run -S` sets the param, in params.yaml or in an overlay, and reruns what reads it (verdicts.power: the
    paper stage alone, so the test stays short; which stages each param reruns is test_changing_one_param_reruns_...)."""
    path, env = repo
    out = _run(["dvc", "exp", "run", "-S", "verdicts.power=0.9"], path, env)
    assert "Running stage 'paper'" in out and "Running stage 'figures" not in out
    paper = json.loads((path / "metrics/paper.json").read_text())
    assert paper["provenance"]["params"]["verdicts"]["power"] == 0.9
    out = _run(["dvc", "exp", "run", "-S", "profiles/smoke.yaml:+verdicts.power=0.7"], path, env)
    assert "Running stage 'paper'" in out and "Running stage 'figures" not in out
    assert json.loads((path / "metrics/paper.json").read_text())["provenance"]["params"]["verdicts"]["power"] == 0.7


def test_a_changed_run_alone_is_trained_and_evaluated_again(repo):
    """The train and evaluate stages hold every run: when one run's params change, DVC reruns both stages,
    and they train and evaluate that run alone; the others keep their models and results."""
    path, env = repo
    import pandas as pd

    before = {r: pd.read_parquet(path / f"results/evaluate/{r}.parquet") for r in RUNS}
    logs = {r: (path / f"runs/{r}/log.jsonl").read_text() for r in RUNS}
    _set(path / "params.yaml", "runs.s10.seed", 5)
    stale = path / "results/evaluate/s10/seen_000000000001/analog/imagenet.json"  # as a dropped budget leaves
    stale.parent.mkdir(parents=True)
    stale.write_text("{}")
    out = _run(["dvc", "repro"], path, env)
    assert not stale.exists()
    for stage in ("train", "evaluate", "figures"):
        assert f"Running stage '{stage}'" in out
    train, evaluate = ((path / f"reports/{nb}.ipynb").read_text() for nb in ("05_train", "06_evaluate"))
    for r in ("s1", "s100"):
        assert f"run {r}: runs/{r}/train.json holds this run, finished" in train
        assert f"{r}: results/evaluate/{r} holds its results from the same inputs: not evaluated again" in evaluate
        assert (path / f"runs/{r}/log.jsonl").read_text() == logs[r]
        pd.testing.assert_frame_equal(pd.read_parquet(path / f"results/evaluate/{r}.parquet"), before[r])
    assert "run s10: runs/s10/train.json" not in train and "evaluating run s10" in evaluate
    assert (path / "runs/s10/log.jsonl").read_text() != logs["s10"]
    after = pd.read_parquet(path / "results/evaluate/s10.parquet")
    assert (after["seed"] == 5).all() and not after["value"].equals(before["s10"]["value"])
    assert json.loads((path / "metrics/train/s10.json").read_text())["seed"] == 5


def test_similarity_scaling_measures_each_head_concept_and_language_against_its_training_pairs(repo):
    """tools/similarity.py on the repro: per head concept, accuracy over its analog images (weighted, the run's
    ImageNet-like 0-shot accuracy) against its pairs in the run's subset (nested: never fewer at 100% than at 10%);
    per language, XM3600 R@1 against the language's pairs."""
    import sys

    import pandas as pd

    sys.path.insert(0, str(ROOT / "tools"))
    import similarity

    path, _ = repo
    table = similarity.measure(path)
    tidy = pd.read_parquet(path / "results/evaluate/s100.parquet")
    final = tidy[(tidy["examples_seen"] == tidy["examples_seen"].max()) & (tidy["task"] == "imagenet/0shot")]
    heads = table[(table["run"] == "s100") & (table["kind"] == "head concept")]
    weighted = (heads["value"] * heads["n_test"]).sum() / heads["n_test"].sum()
    assert weighted == pytest.approx(100 - final.loc[final["metric"] == "error_pct", "value"].item(), abs=1e-6)
    pairs = table[table["kind"] == "head concept"].pivot_table(index="name", columns="run", values="pairs")
    assert (pairs["s100"] >= pairs["s10"]).all() and (pairs["s10"] >= pairs["s1"]).all() and pairs["s100"].sum() > 0
    languages = table[(table["run"] == "s100") & (table["kind"] == "language")]
    assert len(languages) > 30 and languages["value"].between(0, 100).all()
    curves = similarity.curves(table)
    assert set(curves["kind"]) == {"head concept", "language"} and curves["points"].sum() == len(table)
