"""Run one DVC stage: resolve the params for it, or execute its notebook with papermill.

`python -m vlscale.pipeline params` (dvc.yaml's first stage) resolves params.yaml for its profile (its
overlay profiles/<profile>.yaml laid over it), validates it, and writes for every other stage the values of
exactly the params it reads (STAGE_PARAMS) to params/resolved/<stage>.yaml. Each stage depends on its file,
not on params.yaml, so a change to params.yaml or an overlay re-runs exactly the stages whose values it changes.
`python -m vlscale.pipeline STAGE` passes the stage's notebook the values of its file (its parameters cell)
and writes the executed notebook to reports/.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml

from vlscale.config import Params, ParamsError, load_params, overlay_path, overridden_keys, read_mapping, read_params
from vlscale.plan import study_plan

PARAMS_STAGE = "params"  # the stage that writes the others' resolved params
RESOLVED_DIR = Path("params/resolved")
# The params each stage reads: a top-level key of params.yaml, or `block.key` for one entry of a block. A stage's
# notebook receives these and nothing else (tests/test_stage_deps.py checks that it reads no other).
STAGE_PARAMS = {
    "world": ("profile", "world", "world_report"),
    "sample": ("profile", "world", "sample", "engine", "beam"),
    "tokenizer": ("profile", "world", "tokenizer"),
    "filter": ("profile", "world", "sample.key", "tokenizer", "model", "train", "evaluate.batch_size", "filter",
               "engine", "beam"),
    "train": ("profile", "sample.source", "world", "tokenizer", "model", "train", "runs", "evaluate.keys", "filter"),
    "evaluate": ("profile", "sample.source", "world", "tokenizer", "model", "train", "runs", "evaluate", "filter"),
    "attention": ("profile", "sample.source", "world", "tokenizer", "model", "train", "runs", "evaluate.keys",
                  "evaluate.use_key", "evaluate.batch_size", "filter", "attention"),
    "transfer": ("profile", "sample.source", "world", "tokenizer", "model", "train", "runs", "evaluate.keys",
                 "evaluate.use_key", "evaluate.real_sets", "filter", "transfer"),
    "figures": ("profile", "runs", "sample.source", "filter.keep_fraction", "filter.arms", "filter.scorer",
                "filter.balanced", "figures"),
    "paper": ("profile", "verdicts"),
}


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


def copy_checkout(src: str | Path, dst: str | Path) -> list[str]:
    """The files of the checkout at `src` (tracked and untracked, not ignored), except dvc.lock, copied into `dst`
    (a scratch clone to run `dvc repro` in with other params); returns their paths relative to `src`."""
    import shutil
    import subprocess

    src, dst = Path(src), Path(dst)
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=src,
                           capture_output=True, text=True, check=True).stdout.split()
    files = [f for f in files if (src / f).is_file() and f != "dvc.lock"]
    for f in files:
        (dst / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / f, dst / f)
    return files


def stage_names(dvc_file: str | Path = "dvc.yaml") -> list[str]:
    """Every stage that runs a notebook (all but the params stage), in dvc.yaml's order."""
    stages = yaml.safe_load(Path(dvc_file).read_text())["stages"]
    return [name for name in stages if name != PARAMS_STAGE]


def stage_spec(stage: str, dvc_file: str | Path = "dvc.yaml") -> dict:
    """The stage's entry in dvc.yaml, with `notebook` (its notebooks/ dependency) and `param_names` (the params it
    reads, STAGE_PARAMS) added.

    Raises ValueError naming dvc_file for an unknown stage or one without exactly one notebook.
    """
    stages = yaml.safe_load(Path(dvc_file).read_text())["stages"]
    if stage not in stages or stage == PARAMS_STAGE:
        raise ValueError(f"{dvc_file}: no notebook stage '{stage}'; stages are "
                         f"{', '.join(s for s in stages if s != PARAMS_STAGE)}")
    if stage not in STAGE_PARAMS:
        raise ValueError(f"{dvc_file}: stage '{stage}' has no entry in vlscale.pipeline.STAGE_PARAMS (the params it "
                         "reads)")
    spec = dict(stages[stage])
    notebooks = [d for d in spec.get("deps", []) if str(d).startswith("notebooks/") and str(d).endswith(".ipynb")]
    if len(notebooks) != 1:
        raise ValueError(f"{dvc_file}: stage '{stage}' must depend on exactly one notebook, found {notebooks}")
    spec["notebook"] = notebooks[0]
    spec["param_names"] = list(STAGE_PARAMS[stage])
    return spec


def resolved_file(stage: str) -> Path:
    """The file the params stage writes `stage`'s resolved params to (relative to the repository root)."""
    return RESOLVED_DIR / f"{stage}.yaml"


def notebook_parameters(params: dict, param_names: list[str], source: str = "params.yaml") -> dict:
    """The values of `param_names` in resolved params: whole blocks, and for a dotted name `a.b` the block `a`
    with only `b`."""
    out = {}
    for name in param_names:
        block, _, entry = name.partition(".")
        if block not in params or (entry and entry not in (params[block] or {})):
            raise ParamsError(f"{source}: the stage declares param '{name}', which the file lacks")
        if entry:
            out.setdefault(block, {})[entry] = params[block][entry]
        else:
            out[block] = params[block]
    return out


def stage_parameters(stage: str, params_file: str | Path = "params.yaml", dvc_file: str | Path = "dvc.yaml",
                     profile: str | None = None) -> dict:
    """The stage's params resolved for params.yaml's profile (or `profile`), as the files write them (no defaults
    filled in)."""
    return notebook_parameters(read_params(params_file, profile), stage_spec(stage, dvc_file)["param_names"],
                               str(params_file))


def _dump(values: dict) -> str:
    return yaml.safe_dump(values, sort_keys=False, allow_unicode=True, width=120)


def write_resolved(params_file: str | Path = "params.yaml", dvc_file: str | Path = "dvc.yaml",
                   out_dir: str | Path = RESOLVED_DIR) -> list[Path]:
    """The params stage: validate params.yaml with its profile's overlay, then write each notebook stage's resolved
    params to out_dir/<stage>.yaml (a file whose content is unchanged is not rewritten). Returns the files."""
    load_params(params_file)  # fails before any file is written, naming the file and key
    raw = read_params(params_file)
    print(overlay_note(params_file))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for stage in stage_names(dvc_file):
        path = out_dir / resolved_file(stage).name
        text = _dump(notebook_parameters(raw, stage_spec(stage, dvc_file)["param_names"], str(params_file)))
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
        written.append(path)
    return written


def overlay_note(params_file: str | Path = "params.yaml") -> str:
    """One line saying which keys the active profile's overlay sets over params.yaml: a `dvc exp run -S KEY=VALUE`
    on one of those changes params.yaml and nothing the stages read, so the line says how to change them."""
    base = read_mapping(Path(params_file), "the params")
    over_file = overlay_path(params_file, base["profile"])
    keys = overridden_keys(base, read_mapping(over_file, "the overlay"))
    if not keys:
        return f"profile {base['profile']}: {over_file} changes no value of {params_file}"
    return (f"profile {base['profile']}: {over_file} sets {len(keys)} values over {params_file} ({', '.join(keys)}); "
            f"change one with `dvc exp run -S {over_file}:KEY=VALUE`")


def read_resolved(stage: str, params_file: str | Path = "params.yaml", dvc_file: str | Path = "dvc.yaml",
                  resolved_dir: str | Path = RESOLVED_DIR) -> dict:
    """The stage's params from the params stage's file (resolved afresh where there is none, for a stage run by hand
    outside DVC); a ParamsError when the file is no longer what params.yaml and its overlay resolve to (the params
    stage has not run since they changed)."""
    path = Path(resolved_dir) / resolved_file(stage).name
    expected = stage_parameters(stage, params_file, dvc_file)
    if path.is_file() and yaml.safe_load(path.read_text()) != expected:
        raise ParamsError(f"{path}: differs from what {params_file} and its profile's overlay resolve to; run the "
                          f"params stage again (`dvc repro {PARAMS_STAGE}`)")
    return expected


PLANNED_STAGES = ("filter", "train", "evaluate", "attention", "transfer", "figures")


def plan_notes(stage: str, params: Params) -> list[str]:
    """What the stage skips on this pool (vlscale.plan), one line each, as `dvc repro` prints it before the stage runs:
    the filter stage its arms, the stages that read the runs the runs on them too."""
    if stage not in PLANNED_STAGES:
        return []
    return study_plan(params).notes(runs=stage != "filter")


def _ipc_kernel_manager():
    """A Jupyter kernel manager that talks to the kernel over IPC sockets in the temp folder, not TCP:
    nothing on the network, and no "Kernel is running over TCP without encryption" warning per stage."""
    import tempfile
    import uuid

    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class IPCKernelManager(AsyncKernelManager):
        @default("transport")
        def _default_transport(self):
            return "ipc"

        @default("ip")
        def _default_ip(self):  # for IPC, the sockets' path prefix
            return os.path.join(tempfile.gettempdir(), f"vlscale-kernel-{uuid.uuid4().hex[:12]}")

    return IPCKernelManager


def run(stage: str, params_file: str = "params.yaml", dvc_file: str = "dvc.yaml") -> Path:
    """Execute the stage's notebook with its resolved params; returns the path of the executed copy under reports/."""
    import papermill

    params = load_params(params_file)  # fails before any work, naming the file and key
    spec = stage_spec(stage, dvc_file)
    for line in plan_notes(stage, params):
        print(f"{stage}: {line}", file=sys.stderr, flush=True)
    parameters = read_resolved(stage, params_file, dvc_file)
    notebook = Path(spec["notebook"])
    out = Path("reports") / notebook.name
    out.parent.mkdir(parents=True, exist_ok=True)
    use_compilation_cache()
    # Run from the notebook's own folder, as JupyterLab runs it: the notebook finds the repository root
    # itself (at_repo_root), so every `dvc repro` also shows that the notebooks work where users open them.
    papermill.execute_notebook(
        str(notebook), str(out), parameters=parameters,
        kernel_name="python3", cwd=str(notebook.parent), progress_bar=sys.stderr.isatty(), log_output=True,
        kernel_manager_class=_ipc_kernel_manager(),
    )
    _trust(out)
    return out


COMPILATION_CACHE = Path(".cache/jax")


def use_compilation_cache(folder: Path = COMPILATION_CACHE):
    """Have the notebook kernels this process starts share JAX's persistent compilation cache.

    Every run of the train stage compiles the same update, and every evaluate run the same towers: the
    first compiles, the rest load the executable (~20 s per train stage on a 2-core CPU). JAX keys the cache
    by the program, the JAX/XLA versions and the compile options, so a stale entry is never used; it lives
    in this working tree (git-ignored, never shared between machines) and an explicit
    JAX_COMPILATION_CACHE_DIR wins.
    """
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(folder.resolve()))
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")


def _trust(path: Path):
    """Sign the executed notebook as trusted (Jupyter's notebook signature database): it is this machine's
    own output, and JupyterLab renders rich outputs only of trusted notebooks. Untrusted, a saved progress
    widget falls back to the text it had when it was created ("0/136") instead of its final state."""
    import nbformat
    from nbformat.sign import NotebookNotary

    NotebookNotary().sign(nbformat.read(path, as_version=4))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("stage")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    try:
        if args.stage == PARAMS_STAGE:
            for path in write_resolved(args.params):
                print(path)
        else:
            run(args.stage, args.params)
    except (ParamsError, ValueError) as e:
        raise SystemExit(f"error: {e}") from None


if __name__ == "__main__":
    main()
