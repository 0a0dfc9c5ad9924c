"""Run one DVC stage: validate params.yaml, then execute the stage's notebook with papermill.

`python -m vlscale.pipeline STAGE` is the `cmd` of every stage in dvc.yaml. It passes the notebook
exactly the params the stage declares in dvc.yaml (top-level blocks of params.yaml, unresolved, so
the notebook sees what the file says), and writes the executed notebook to reports/.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml

from vlscale.config import ParamsError, load_params


def at_repo_root(start: str | Path = ".") -> Path:
    """chdir to the repository root (the folder with dvc.yaml) and return it.

    Notebooks call this first: JupyterLab starts them in notebooks/, papermill at the root, and
    their outputs must land where dvc.yaml declares them either way.
    """
    here = Path(start).resolve()
    for folder in (here, *here.parents):
        if (folder / "dvc.yaml").is_file():
            os.chdir(folder)
            return folder
    raise FileNotFoundError(f"no dvc.yaml in {here} or any parent: open the notebook inside the vlscale repository")


def stage_spec(stage: str, dvc_file: str | Path = "dvc.yaml") -> dict:
    """The stage's entry in dvc.yaml, with `notebook` (its notebooks/ dependency) added."""
    stages = yaml.safe_load(Path(dvc_file).read_text())["stages"]
    if stage not in stages:
        raise SystemExit(f"{dvc_file}: no stage '{stage}'; stages are {', '.join(stages)}")
    spec = dict(stages[stage])
    notebooks = [d for d in spec.get("deps", []) if str(d).startswith("notebooks/") and str(d).endswith(".ipynb")]
    if len(notebooks) != 1:
        raise SystemExit(f"{dvc_file}: stage '{stage}' must depend on exactly one notebook, found {notebooks}")
    spec["notebook"] = notebooks[0]
    spec["param_names"] = [p for p in spec.get("params", []) if isinstance(p, str)]
    return spec


def run(stage: str, params_file: str = "params.yaml", dvc_file: str = "dvc.yaml") -> Path:
    """Execute the stage's notebook; returns the path of the executed copy under reports/."""
    import papermill

    params = load_params(params_file)  # fails before any work, naming the bad key
    spec = stage_spec(stage, dvc_file)
    missing = [p for p in spec["param_names"] if p not in params]
    if missing:
        raise ParamsError(f"{params_file}: stage '{stage}' declares params {missing} that the file lacks")
    notebook = Path(spec["notebook"])
    out = Path("reports") / notebook.name
    out.parent.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(
        str(notebook), str(out), parameters={p: params[p] for p in spec["param_names"]},
        kernel_name="python3", cwd=".", progress_bar=sys.stderr.isatty(), log_output=True,
    )
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("stage")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    try:
        run(args.stage, args.params)
    except ParamsError as e:
        raise SystemExit(f"error: {e}") from None


if __name__ == "__main__":
    main()
