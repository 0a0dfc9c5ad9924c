"""Every stage's deps cover the code it runs and the params it reads, so that a change to either re-runs the stage.

A stage runs `python -m vlscale.pipeline STAGE`, which executes the stage's notebook: the code it runs
is vlscale.pipeline, the vlscale modules the notebook imports, and, transitively, what those import
(at any depth of the module, inside functions too), every package `__init__.py` on the way, and the
data folders those modules read (a folder next to a module whose name the module spells, as vocab.py
spells "data"). A dep covers a file when it is that file or a folder above it.
Computed from the code, so a new module is checked the day it is imported.

The params a stage reads are its file params/resolved/<stage>.yaml, which the params stage writes (the keys of
vlscale.pipeline.STAGE_PARAMS): the notebook receives them in its parameters cell, and neither it nor its stage
module reads params.yaml or an overlay itself.
"""
import ast
import json
import re
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from vlscale.pipeline import PARAMS_STAGE, STAGE_PARAMS, resolved_file, stage_names

LIB = ROOT / "lib"
PACKAGE = "vlscale"
ENTRY = "vlscale.pipeline"  # every stage's cmd is `python -m vlscale.pipeline STAGE`
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
NOTEBOOK_STAGES = [s for s in STAGES if s != PARAMS_STAGE]


def _file_of(module: str) -> Path | None:
    """The source file of a vlscale module (a .py file or a package's __init__.py), None if none."""
    base = LIB.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imported(tree: ast.AST, module: str, is_package: bool) -> tuple[set[str], set[str]]:
    """The vlscale modules an AST imports, anywhere in it, and those it names that have no file.

    `module` (the AST's own name) resolves relative imports. In `from pkg import name`, pkg is a module
    and name is one when a file of that name exists (a submodule), else an attribute.
    """
    named, maybe = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            named |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = module.split(".")
                anchor = parts[:len(parts) - node.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            named.add(base)
            maybe |= {f"{base}.{alias.name}" for alias in node.names}
    ours = {m for m in named | maybe if m == PACKAGE or m.startswith(PACKAGE + ".")}
    return {m for m in ours if _file_of(m)}, {m for m in ours & named if not _file_of(m)}


def _with_parents(module: str) -> set[str]:
    """The module and every package above it: importing a.b.c runs a/__init__.py and a/b/__init__.py."""
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)}


def _notebook_tree(path: Path) -> ast.Module:
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    source = "\n".join("".join(c["source"]) for c in cells)
    # IPython magics and shell lines are not Python
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    return ast.parse("\n".join(lines), filename=str(path))


def reached_files(notebook: Path | None) -> tuple[set[Path], set[str]]:
    """Every vlscale source file and package data folder a stage running `notebook` (None: none, as the params
    stage) can execute or read, and the vlscale modules imported on the way that have no file (a broken import)."""
    found, broken = _imported(_notebook_tree(notebook), "__main__", False) if notebook else (set(), set())
    todo = set().union(*map(_with_parents, found | {ENTRY}))
    seen, files = set(), set()
    while todo:
        module = todo.pop()
        seen.add(module)
        path = _file_of(module)
        files.add(path)
        tree = ast.parse(path.read_text(), filename=str(path))
        found, unresolved = _imported(tree, module, path.name == "__init__.py")
        broken |= {f"{m} (imported by {path.relative_to(ROOT)})" for m in unresolved}
        for m in found:
            todo |= _with_parents(m) - seen
        # data folders the module names: a sibling folder that is not a package, spelled in a string
        strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
        files |= {d for d in path.parent.iterdir()
                  if d.is_dir() and d.name in strings and not (d / "__init__.py").exists()}
    return files, broken


def _covered(path: Path, deps: list[Path]) -> bool:
    return any(path == d or d in path.parents for d in deps)


def _stage(name: str) -> dict:
    return STAGES[name]


def _notebook(name: str) -> Path:
    notebooks = [d for d in _stage(name).get("deps", []) if d.startswith("notebooks/") and d.endswith(".ipynb")]
    assert len(notebooks) == 1, f"dvc.yaml stage {name}: expected one notebook among its deps, found {notebooks}"
    return ROOT / notebooks[0]


@pytest.mark.parametrize("stage", NOTEBOOK_STAGES)
def test_the_stage_deps_cover_every_vlscale_module_its_notebook_runs(stage):
    notebook = _notebook(stage)
    files, broken = reached_files(notebook)
    assert not broken, f"dvc.yaml stage {stage} ({notebook.relative_to(ROOT)}) imports modules with no file: " \
                       f"{sorted(broken)}"
    deps = [ROOT / d.rstrip("/") for d in _stage(stage).get("deps", [])]
    missing = sorted(str(f.relative_to(ROOT)) for f in files if not _covered(f, deps))
    assert not missing, (f"dvc.yaml stage {stage} runs {notebook.relative_to(ROOT)} but its deps miss "
                         f"{', '.join(missing)}: add them (a file, or the smallest folder above it)")


def test_imports_are_followed_through_submodules_relative_imports_and_function_bodies():
    tree = ast.parse("from . import protocols\nfrom .nowhere import x\ndef f():\n    import vlscale.world.vocab\n"
                     "from vlscale.data import tokenizer as tk\nfrom vlscale.config import validate\nimport numpy\n")
    found, broken = _imported(tree, "vlscale.evals.analogs", False)
    assert found == {"vlscale.evals", "vlscale.evals.protocols", "vlscale.world.vocab", "vlscale.data",
                     "vlscale.data.tokenizer", "vlscale.config"}
    assert broken == {"vlscale.evals.nowhere"}
    files, _ = reached_files(ROOT / "notebooks/03_tokenizer.ipynb")
    assert {"vlscale/world/data", "vlscale/world/vocab.py", "vlscale/__init__.py", "vlscale/pipeline.py",
            "vlscale/config.py"} <= {str(f.relative_to(LIB)) for f in files}


def test_the_params_stage_deps_cover_the_code_that_resolves_the_params():
    files, broken = reached_files(None)
    deps = [ROOT / d for d in STAGES[PARAMS_STAGE]["deps"]]
    assert not broken and not [f for f in files if not _covered(f, deps)]


def test_only_the_params_stage_reads_the_params_files_and_every_stage_depends_on_its_resolved_file():
    declared = [next(iter(p)) for p in STAGES[PARAMS_STAGE]["params"]]
    assert all(isinstance(p, dict) and list(p.values()) == [None] for p in STAGES[PARAMS_STAGE]["params"])  # whole files
    assert sorted(declared) == sorted(["params.yaml", *(f"profiles/{p.name}" for p in (ROOT / "profiles").glob("*.yaml"))])
    outs = [next(iter(o)) for o in STAGES[PARAMS_STAGE]["outs"]]
    names = stage_names(ROOT / "dvc.yaml")
    assert outs == [str(resolved_file(s)) for s in names]
    assert set(STAGE_PARAMS) == set(names)
    for stage in NOTEBOOK_STAGES:
        assert "params" not in _stage(stage), f"dvc.yaml stage {stage} declares params: it reads its resolved file"
        assert str(resolved_file(stage)) in _stage(stage)["deps"], f"dvc.yaml stage {stage}: no resolved params dep"


PARAMS_READERS = {"load_params", "read_params"}
PARAMS_FILE = re.compile(r"(.*/)?(params\.yaml|profiles/\w+\.yaml)")  # a path to params.yaml or an overlay


def _reads_params_files(tree: ast.AST) -> list[str]:
    """The places in `tree` that could read params.yaml or an overlay itself: a params-loading call or the files'
    names."""
    found = [n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id in PARAMS_READERS]
    found += [n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr in PARAMS_READERS]
    found += [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
              and PARAMS_FILE.fullmatch(n.value)]
    return found


def _parameters_cell(path: Path) -> ast.Module:
    cells = [c for c in json.loads(path.read_text())["cells"] if "parameters" in c["metadata"].get("tags", [])]
    assert len(cells) == 1, f"{path.name}: expected one cell tagged 'parameters', found {len(cells)}"
    return ast.parse("".join(cells[0]["source"]))


@pytest.mark.parametrize("stage", NOTEBOOK_STAGES)
def test_a_stage_reads_no_params_but_the_ones_its_resolved_file_holds(stage):
    notebook = _notebook(stage)
    names = {t.id for node in _parameters_cell(notebook).body if isinstance(node, ast.Assign) for t in node.targets}
    assert names == {p.partition(".")[0] for p in STAGE_PARAMS[stage]}, \
        f"{notebook.name}: its parameters cell should hold exactly vlscale.pipeline.STAGE_PARAMS['{stage}']"
    tree = _notebook_tree(notebook)
    stage_modules = {m for m in _imported(tree, "__main__", False)[0] if m.rpartition(".")[2] == "stage"}
    for where, code in [(notebook.name, tree), *((m, ast.parse(_file_of(m).read_text())) for m in stage_modules)]:
        assert not _reads_params_files(code), f"{where} reads params itself: {_reads_params_files(code)}"
