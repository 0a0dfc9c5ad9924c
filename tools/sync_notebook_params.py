"""Rewrite every stage notebook's parameters cell from dvc.yaml and params.yaml.

Run after editing params.yaml: `python tools/sync_notebook_params.py`. A notebook's parameters cell
is its contract with its stage (tests/test_notebooks.py checks it); this keeps the defaults equal to
params.yaml without hand-editing JSON.
"""
from pathlib import Path

import nbformat
import yaml

from vlscale.pipeline import notebook_parameters, stage_names, stage_spec

HEADER = "# Parameters: the stage's params from params.yaml (papermill replaces this cell under `dvc repro`)."


def main(root: Path = Path(__file__).resolve().parents[1]):
    params = yaml.safe_load((root / "params.yaml").read_text())
    done = set()
    for stage in stage_names(root / "dvc.yaml", root / "params.yaml"):
        spec = stage_spec(stage, root / "dvc.yaml")
        if spec["notebook"] in done:  # a foreach notebook takes its first item's params
            continue
        done.add(spec["notebook"])
        path = root / spec["notebook"]
        nb = nbformat.read(path, as_version=4)
        cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        values = notebook_parameters(params, spec["param_names"])
        cell.source = "\n".join([HEADER, *(f"{k} = {v!r}" for k, v in values.items())])
        nbformat.write(nb, path)
        print(f"{spec['notebook']}: {', '.join(values)}")


if __name__ == "__main__":
    main()
