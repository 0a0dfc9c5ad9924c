"""Rewrite every stage notebook's parameters cell: the default profile's resolved values of the params the stage
reads (vlscale.pipeline.STAGE_PARAMS).

Run after editing params.yaml or a stage's params: `python tools/sync_notebook_params.py`. A notebook's parameters
cell is its contract with its stage (tests/test_notebooks.py checks it); papermill replaces its values under
`dvc repro` with the profile's. Only that cell changes: every other cell of the file keeps its bytes, and a
notebook this tool cannot rewrite so is left alone with an error.
"""
import json
import sys
from pathlib import Path

from vlscale.config import DEFAULT_PROFILE
from vlscale.pipeline import stage_names, stage_parameters, stage_spec

HEADER = ("# Parameters: the stage's params, the default profile's values (papermill replaces this cell under "
          "`dvc repro`).")
WIDTH = 116
ROOT = Path(__file__).resolve().parents[1]


def parameters_source(values: dict) -> str:
    """The cell's source: the header, then `name = value` per param as a Python literal; a mapping too long for one
    line gets one line per entry."""
    lines = [HEADER]
    for name, value in values.items():
        line = f"{name} = {value!r}"
        if isinstance(value, dict) and len(line) > WIDTH:
            line = "\n".join([f"{name} = {{", *(f"    {k!r}: {v!r}," for k, v in value.items()), "}"])
        lines.append(line)
    return "\n".join(lines)


def _dump(nb: dict) -> str:
    """A notebook as nbformat writes it (one-space indent, sorted keys, a final newline)."""
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def rewrite(path: Path, source: str) -> bool:
    """Replace the parameters cell's source of the notebook at `path`; returns whether the file changed. Raises
    ValueError when the file is not as nbformat writes it (its other cells could not be kept byte for byte)."""
    text = path.read_text()
    nb = json.loads(text)
    if _dump(nb) != text:
        raise ValueError(f"{path}: not in nbformat's layout; save it from Jupyter first, so that only its parameters "
                         "cell changes")
    cells = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"{path}: expected one cell tagged 'parameters', found {len(cells)}")
    cells[0]["source"] = source.splitlines(keepends=True)
    new = _dump(nb)
    if new != text:
        path.write_text(new)
    return new != text


def main(root: Path = ROOT) -> int:
    failed = 0
    for stage in stage_names(root / "dvc.yaml"):
        notebook = stage_spec(stage, root / "dvc.yaml")["notebook"]
        values = stage_parameters(stage, root / "params.yaml", root / "dvc.yaml", DEFAULT_PROFILE)
        try:
            changed = rewrite(root / notebook, parameters_source(values))
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            failed += 1
            continue
        print(f"{notebook}: {', '.join(values)}{'' if changed else ' (unchanged)'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
