"""Notebooks are the stages' sources: their parameters cell is their contract with dvc.yaml."""
import ast
import json

import pytest
import yaml

from vlscale.pipeline import stage_spec

from conftest import ROOT

DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _parameters_cell(path):
    cells = [c for c in json.loads(path.read_text())["cells"] if "parameters" in c["metadata"].get("tags", [])]
    assert len(cells) == 1, f"{path.name}: expected one cell tagged 'parameters', found {len(cells)}"
    tree = ast.parse("".join(cells[0]["source"]))
    return {t.id: ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
            for t in node.targets}


@pytest.mark.parametrize("stage", sorted(DVC["stages"]))
def test_notebook_parameters_are_exactly_the_stage_params_with_params_yaml_defaults(stage):
    spec = stage_spec(stage, ROOT / "dvc.yaml")
    declared = _parameters_cell(ROOT / spec["notebook"])
    assert sorted(declared) == sorted(spec["param_names"]), f"{spec['notebook']} vs dvc.yaml stage {stage}"
    for name, value in declared.items():
        assert value == PARAMS[name], f"{spec['notebook']}: default of '{name}' differs from params.yaml"


def test_every_notebook_is_a_stage():
    used = {stage_spec(s, ROOT / "dvc.yaml")["notebook"] for s in DVC["stages"]}
    assert {f"notebooks/{p.name}" for p in NOTEBOOKS} == used


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_committed_without_outputs(path):
    for cell in json.loads(path.read_text())["cells"]:
        if cell["cell_type"] == "code":
            assert not cell["outputs"] and cell["execution_count"] is None, f"{path.name} has outputs"
