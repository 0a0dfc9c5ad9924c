"""Whether a stage's result for a run is current, by one rule (the package docstring states it): the fingerprints of
a run's training and of its evaluation, and the stages' code versions."""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
from pathlib import Path

from vlscale.config import Params
from vlscale.files import read_json, write_json
from vlscale.runs.layout import RunDir, checkpoint_meta
from vlscale.runs.settings import resolve

PACKAGE = Path(__file__).resolve().parents[1]

# ----------------------------------------------------------------------------------------- code versions

# transfer 2: the decoder's seed is transfer.seed plus the run's seed, and the unfrozen tower learns at its own rate;
# transfer 3: the loss is optax's softmax cross-entropy and the initialiser is compiled (last-bit differences)
CODE_VERSIONS = {"train": 1, "evaluate": 1, "transfer": 3}
# The module whose import closure within vlscale computes each stage's results: every vlscale module it imports,
# directly or not, and the data files (DATA_SUFFIXES) of each package's data/ folder, are the stage's sources.
STAGE_ROOTS = {"train": "vlscale.training.run", "evaluate": "vlscale.evals.stage",
               "transfer": "vlscale.transfer.stage"}
# This module decides currency and records the digests of the others: it is nobody's source.
NOT_SOURCES = ("vlscale.runs.current",)
DATA_SUFFIXES = (".json", ".txt")
# sha256 of a stage's sources when CODE_VERSIONS[stage] was last confirmed (python -m vlscale.runs --digests)
CODE_DIGESTS = {
    "train": "ee1ded313598bbe2854a93cea03200336a40e5663c9a48b96109c6fbe5dd3e85",
    "evaluate": "8e0cfee548dffad9f2b1fc94f50a5aded82879056fd63406e2f8c79784cecba3",
    "transfer": "5d3d67accc170d6415a681d84880b58eeb02aaede52331171fb683002048a710",
}


class StaleCodeVersion(RuntimeError):
    """The sources of a stage changed since its code version was last confirmed."""


def _module_file(module: str, package: Path) -> Path | None:
    parts = module.split(".")[1:]
    for path in (package.joinpath(*parts).with_suffix(".py"), package.joinpath(*parts, "__init__.py")):
        if path.is_file():
            return path
    return None


def _imports(path: Path, module: str) -> set[str]:
    """The vlscale modules the file `path` (module `module`) imports, at any depth of its code."""
    found = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}  # `from vlscale import siglip`: a module
    return {m for m in found if m == "vlscale" or m.startswith("vlscale.")}


def stage_sources(stage: str, package: Path = PACKAGE) -> list[Path]:
    """The files that compute `stage`'s results: the import closure of STAGE_ROOTS[stage] within vlscale (each
    module's file and its parent packages' __init__.py) and the data files of the packages it reaches."""
    seen, todo, files = set(), [STAGE_ROOTS[stage]], set()
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        path = _module_file(module, package)
        if path is None or module in NOT_SOURCES:
            continue
        files.add(path)
        parts = module.split(".")
        todo += [".".join(parts[:i]) for i in range(2, len(parts))]  # importing a.b.c runs a.b's __init__
        todo += sorted(_imports(path, module))
        data = path.parent / "data"
        if data.is_dir():
            files |= {f for f in data.rglob("*") if f.is_file() and f.suffix in DATA_SUFFIXES}
    return sorted(files)


def source_digest(stage: str, package: Path = PACKAGE) -> str:
    """sha256 of `stage`'s sources (stage_sources): their paths under the package and their bytes."""
    h = hashlib.sha256()
    for f in stage_sources(stage, package):
        h.update(f.relative_to(package).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def check_code_version(stage: str, package: Path = PACKAGE) -> None:
    """Raise StaleCodeVersion when `stage`'s sources differ from those its code version was confirmed with: a
    result the stage finds current could then have been computed by other code. The train, evaluate and transfer
    stages call it before any work."""
    got = source_digest(stage, package)
    if got != CODE_DIGESTS[stage]:
        raise StaleCodeVersion(
            f"the code that computes the {stage} stage's results (the import closure of {STAGE_ROOTS[stage]}) has "
            f"changed since its code version ({CODE_VERSIONS[stage]}) was confirmed. If what the stage computes "
            f"changed, raise vlscale.runs.current.CODE_VERSIONS[{stage!r}], so that results made before are made "
            f"again; either way record CODE_DIGESTS[{stage!r}] = {got!r} in lib/vlscale/runs/current.py "
            "(`python -m vlscale.runs --digests` prints every stage's)")


# ----------------------------------------------------------------------------------------- currency

FINGERPRINT_FILE = "fingerprint.json"


def fingerprint(stage: str, settings: dict, inputs: dict) -> str:
    """sha256 (16 hex digits) of the resolved `settings` that shape a result of `stage`, the fingerprints of the
    `inputs` it reads, and the stage's code version."""
    shaped = {**settings, **inputs}
    # Version 1 is not hashed: a stage at version 1 has the fingerprint of its settings and inputs alone.
    if CODE_VERSIONS[stage] > 1:
        shaped["code_version"] = CODE_VERSIONS[stage]
    return hashlib.sha256(json.dumps(shaped, sort_keys=True, default=str).encode()).hexdigest()[:16]


def saved_fingerprint(directory: str | Path) -> str | None:
    """The fingerprint saved in `directory` (its fingerprint.json), or None when there is none."""
    path = Path(directory) / FINGERPRINT_FILE
    return read_json(path)["fingerprint"] if path.is_file() else None


def is_current(directory: str | Path, fp: str) -> bool:
    """Whether the result in `directory` is current: the fingerprint saved beside it is `fp`."""
    return saved_fingerprint(directory) == fp


def save_fingerprint(directory: str | Path, fp: str) -> None:
    """Save `fp` as the fingerprint of the result in `directory` (left as it is when it already holds `fp`)."""
    if not is_current(directory, fp):
        write_json(Path(directory) / FINGERPRINT_FILE, {"fingerprint": fp}, indent=None)


# train keys that do not shape training (logging, checkpoint cadence, input workers, the probe)
UNSHAPING_TRAIN_KEYS = ("checkpoint_every_examples", "log_every_steps", "workers", "probe_every_examples",
                        "probe_images")


def train_fingerprint(p: Params, name: str, data: dict | None) -> str:
    """The fingerprint of run `name`'s training (of resolved params `p`): the world, tokenizer and train blocks (but
    the train keys that do not shape training), its model and its entry; and the record of the data it reads
    (`data`: vlscale.runs.data.data_record)."""
    run = resolve(p, name)
    blocks = p.dump("world", "tokenizer", "train")
    train = {k: v for k, v in blocks["train"].items() if k not in UNSHAPING_TRAIN_KEYS}
    settings = {"world": blocks["world"], "tokenizer": blocks["tokenizer"], "model": run.model.model_dump(),
                "train": train, "run": run.hashed_entry}
    return fingerprint("train", settings, {"subset": data})


# blocks the evaluate stage reads that shape no run's evaluation: the other runs, and the filter block (which arms the
# pool has; a filter run's own data is in its training's fingerprint), so adding an arm re-evaluates no run
NOT_EVALUATION_BLOCKS = ("runs", "filter")


def evaluation_fingerprint(p: Params, name: str, run_dir: str | Path, tokenizer: str | Path) -> str:
    """The fingerprint of run `name`'s evaluation (of resolved params `p`): the params the stage reads (all but
    NOT_EVALUATION_BLOCKS), its entry and its model; the fingerprint of its training, the identity of each of its
    cool-down checkpoints (their name and metadata) and the tokenizer model (the file `tokenizer`, sha256)."""
    run = resolve(p, name)
    settings = {"params": {k: v for k, v in p.dump().items() if k not in NOT_EVALUATION_BLOCKS},
                "run": run.hashed_entry,
                "model": run.model.model_dump()}
    tokenizer = Path(tokenizer)
    checkpoints = RunDir(run_dir).cooled_down(required=False)
    inputs = {"training": saved_fingerprint(run_dir),
              "checkpoints": [{"checkpoint": d.name, "meta": checkpoint_meta(d)} for _, d in checkpoints],
              "tokenizer": hashlib.sha256(tokenizer.read_bytes()).hexdigest() if tokenizer.is_file() else None}
    return fingerprint("evaluate", settings, inputs)


def main(argv=None):
    """`python -m vlscale.runs --digests`: the digests of every stage's sources, to record in CODE_DIGESTS."""
    parser = argparse.ArgumentParser(prog="python -m vlscale.runs", description=main.__doc__)
    parser.add_argument("--digests", action="store_true", help="print CODE_DIGESTS as this checkout's sources give it")
    args = parser.parse_args(argv)
    if args.digests:
        print("CODE_DIGESTS = {")
        for stage in STAGE_ROOTS:
            print(f'    "{stage}": "{source_digest(stage)}",')
        print("}")
    else:
        parser.print_help()
