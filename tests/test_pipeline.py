"""The pipeline end to end on the smoke profile: dvc repro, idempotence, param-level invalidation, experiments.

Runs the real stages (papermill-executed notebooks) in a copy of the repository.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

pytestmark = pytest.mark.pipeline


def _run(cmd, cwd, env):
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout + r.stderr


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    dst = tmp_path_factory.mktemp("repo")
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        if (ROOT / f).is_file() and not f.startswith("dvc.lock"):
            (dst / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, dst / f)
    params = yaml.safe_load((dst / "params.yaml").read_text())
    params["profile"] = "smoke"
    (dst / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    _run(["git", "init", "-q"], dst, env)
    _run(["git", "add", "-A"], dst, env)
    _run(["git", "commit", "-qm", "copy"], dst, env)
    _run(["dvc", "repro"], dst, env)
    return dst, env


def _status(repo, env):
    out = subprocess.run(["dvc", "status", "--json"], cwd=repo, env=env, capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout or "{}"))


def test_repro_runs_every_stage_and_records_the_profile(repo):
    path, _ = repo
    for out in ("reports/01_world.ipynb", "reports/02_sample.ipynb", "paper/figures/world/language_shares.png",
                "paper/figures/world/examples.png", "paper/figures/sample/coverage.png",
                "paper/figures/sample/language_mix_1pct.png", "data/sample/subsets.json", "data/sample/ids_1pct.npy"):
        assert (path / out).is_file(), out
    for m in ("world", "sample"):
        metrics = json.loads((path / f"metrics/{m}.json").read_text())
        assert metrics["provenance"]["profile"] == "smoke"
        assert metrics["provenance"]["versions"]["jax"]
    sample = json.loads((path / "metrics/sample.json").read_text())
    # 1% of the smoke pool of 200,000, floored in each of the 37 language strata
    assert 1963 <= sample["subsets"]["1pct"]["examples"] <= 2000
    assert sample["subsets"]["100pct"]["examples"] == 200_000


def test_second_repro_does_nothing(repo):
    path, env = repo
    assert _status(path, env) == set()
    out = _run(["dvc", "repro"], path, env)
    assert "Running stage" not in out


def test_changing_one_param_reruns_only_the_stages_that_read_it(repo):
    path, env = repo
    text = (path / "params.yaml").read_text()
    (path / "params.yaml").write_text(text.replace("grid_px: 96", "grid_px: 64"))
    assert _status(path, env) == {"world"}
    (path / "params.yaml").write_text(text.replace("key: 0", "key: 3"))
    assert _status(path, env) == {"sample"}
    (path / "params.yaml").write_text(text.replace("seed: 0", "seed: 1"))
    assert _status(path, env) == {"world", "sample"}
    (path / "params.yaml").write_text(text)
    assert _status(path, env) == set()


def test_dvc_exp_run_with_a_set_param(repo):
    path, env = repo
    out = _run(["dvc", "exp", "run", "-S", "sample.key=1"], path, env)
    assert "Running stage 'sample'" in out and "Running stage 'world'" not in out
    sample = json.loads((path / "metrics/sample.json").read_text())
    assert sample["provenance"]["params"]["sample"]["key"] == 1
