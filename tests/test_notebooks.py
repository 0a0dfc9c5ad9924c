"""Notebooks are the stages' sources: their parameters cell is their contract with dvc.yaml, and shows the default
profile's resolved values of the params the stage reads (vlscale.pipeline.STAGE_PARAMS)."""
import ast
import json

import pytest

from conftest import ROOT
from vlscale.config import DEFAULT_PROFILE
from vlscale.pipeline import stage_names, stage_parameters, stage_spec

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
STAGES = stage_names(ROOT / "dvc.yaml")
# Notebooks that are not DVC stages: run by hand elsewhere (Colab).
STANDALONE = {"notebooks/colab_tpu.ipynb"}


def _parameters_cell(path):
    cells = [c for c in json.loads(path.read_text())["cells"] if "parameters" in c["metadata"].get("tags", [])]
    assert len(cells) == 1, f"{path.name}: expected one cell tagged 'parameters', found {len(cells)}"
    tree = ast.parse("".join(cells[0]["source"]))
    return {t.id: ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
            for t in node.targets}


@pytest.mark.parametrize("stage", STAGES)
def test_notebook_parameters_are_exactly_the_stage_params_with_the_default_profiles_values(stage):
    spec = stage_spec(stage, ROOT / "dvc.yaml")
    declared = _parameters_cell(ROOT / spec["notebook"])
    expected = stage_parameters(stage, ROOT / "params.yaml", ROOT / "dvc.yaml", DEFAULT_PROFILE)
    assert sorted(declared) == sorted(expected), f"{spec['notebook']} vs vlscale.pipeline.STAGE_PARAMS['{stage}']"
    for name, value in declared.items():
        assert value == expected[name], (f"{spec['notebook']}: default of '{name}' differs from params.yaml's "
                                         "(python tools/sync_notebook_params.py)")


def test_every_notebook_is_a_stage_or_a_documented_standalone():
    used = {stage_spec(s, ROOT / "dvc.yaml")["notebook"] for s in STAGES}
    assert {f"notebooks/{p.name}" for p in NOTEBOOKS} == used | STANDALONE


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_committed_without_outputs(path):
    for cell in json.loads(path.read_text())["cells"]:
        if cell["cell_type"] == "code":
            assert not cell["outputs"] and cell["execution_count"] is None, f"{path.name} has outputs"


# That every stage notebook runs top to bottom from notebooks/ (JupyterLab's working folder) is shown by
# tests/test_pipeline.py: `dvc repro` executes each one there (vlscale.pipeline.run), and its outputs
# land at the repository root.


def test_stage_kernels_share_one_persistent_compilation_cache(tmp_path, monkeypatch):
    """A second process compiling the same program loads it from the cache the first one wrote."""
    import os
    import subprocess
    import sys

    from vlscale.pipeline import use_compilation_cache

    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    monkeypatch.setenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")  # this small program compiles fast
    use_compilation_cache(tmp_path / "jax")
    assert os.environ["JAX_COMPILATION_CACHE_DIR"] == str((tmp_path / "jax").resolve())
    program = ("import jax, jax.numpy as jnp\n"
               "f = jax.jit(lambda x: jnp.tanh(x @ x.T).sum(0) @ jnp.cos(x))\n"
               "print(f(jnp.ones((256, 256))).block_until_ready()[0])\n")
    first = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    entries = sorted(p.name for p in (tmp_path / "jax").iterdir())
    assert any(name.startswith("jit__lambda") for name in entries), entries
    second = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    assert sorted(p.name for p in (tmp_path / "jax").iterdir()) == entries  # a hit: nothing new written
    assert first.stdout == second.stdout
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", "/elsewhere")
    use_compilation_cache(tmp_path / "other")
    assert os.environ["JAX_COMPILATION_CACHE_DIR"] == "/elsewhere"  # an explicit setting wins
