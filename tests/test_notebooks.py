"""Notebooks are the stages' sources: their parameters cell is their contract with dvc.yaml."""
import ast
import json

import pytest
import yaml

from vlscale.pipeline import notebook_parameters, stage_names, stage_spec

from conftest import ROOT

DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
STAGES = stage_names(ROOT / "dvc.yaml", ROOT / "params.yaml")
# Notebooks that are not DVC stages: run by hand elsewhere (Colab).
STANDALONE = {"notebooks/colab_tpu.ipynb"}


def _parameters_cell(path):
    cells = [c for c in json.loads(path.read_text())["cells"] if "parameters" in c["metadata"].get("tags", [])]
    assert len(cells) == 1, f"{path.name}: expected one cell tagged 'parameters', found {len(cells)}"
    tree = ast.parse("".join(cells[0]["source"]))
    return {t.id: ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
            for t in node.targets}


def _first_items(stages):
    """One stage per notebook: a foreach notebook's defaults are those of its first item."""
    seen, out = set(), []
    for s in stages:
        nb = stage_spec(s, ROOT / "dvc.yaml")["notebook"]
        if nb not in seen:
            seen.add(nb)
            out.append(s)
    return out


@pytest.mark.parametrize("stage", _first_items(STAGES))
def test_notebook_parameters_are_exactly_the_stage_params_with_params_yaml_defaults(stage):
    spec = stage_spec(stage, ROOT / "dvc.yaml")
    declared = _parameters_cell(ROOT / spec["notebook"])
    expected = notebook_parameters(PARAMS, spec["param_names"])
    assert sorted(declared) == sorted(expected), f"{spec['notebook']} vs dvc.yaml stage {stage}"
    for name, value in declared.items():
        assert value == expected[name], f"{spec['notebook']}: default of '{name}' differs from params.yaml"


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
