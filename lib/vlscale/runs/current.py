"""Whether a stage's result for a run is current, by one rule (the package docstring states it): the fingerprints of
a run's training and of its evaluation, and the stages' code versions."""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from vlscale.files import read_json, write_json
from vlscale.runs.layout import RunDir, checkpoint_meta
from vlscale.runs.settings import resolve

PACKAGE = Path(__file__).resolve().parents[1]

# ----------------------------------------------------------------------------------------- code versions

CODE_VERSIONS = {"train": 1, "evaluate": 1}
# The files (under lib/vlscale; of a folder, its code and data files, SOURCE_SUFFIXES) whose code computes each
# stage's results; tests/test_runs.py hashes them.
SOURCE_SUFFIXES = (".py", ".json", ".txt")
STAGE_SOURCES = {
    "train": ("training", "models", "siglip.py", "data/input.py", "data/mixture.py", "data/shards.py",
              "data/subsets.py", "data/tokenizer.py", "world"),
    "evaluate": ("evals", "models", "siglip.py", "data/tokenizer.py", "world"),
}
# sha256 of STAGE_SOURCES[stage] when CODE_VERSIONS[stage] was last confirmed (python -m vlscale.runs --digests)
CODE_DIGESTS = {
    "train": "d6aba0a95bde8332f725d01792d93cc3086d1af1a8bc3bb0eef94a5706fc5f19",
    "evaluate": "74f86547a1a66fa1ec91751136ae03dd6f6181836b08a7d825cb11bed0bf8295",
}


def source_digest(stage: str, package: Path = PACKAGE) -> str:
    """sha256 of the files of STAGE_SOURCES[stage]: their paths under the package and their bytes."""
    h = hashlib.sha256()
    files = []
    for source in STAGE_SOURCES[stage]:
        path = package / source
        if not path.exists():
            raise FileNotFoundError(f"{path}: in vlscale.runs.current.STAGE_SOURCES[{stage!r}] but not in the package; "
                                    "list the files that compute the stage's results now")
        files += [f for f in path.rglob("*") if f.is_file() and f.suffix in SOURCE_SUFFIXES] if path.is_dir() \
            else [path]
    for f in sorted(files):
        h.update(f.relative_to(package).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


# ----------------------------------------------------------------------------------------- currency

FINGERPRINT_FILE = "fingerprint.json"


def fingerprint(stage: str, settings: dict, inputs: dict) -> str:
    """sha256 (16 hex digits) of the resolved `settings` that shape a result of `stage`, the fingerprints of the
    `inputs` it reads, and the stage's code version."""
    shaped = {**settings, **inputs}
    # Version 1 is left out, so that the runs fingerprinted before code versions existed keep their fingerprint.
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


def train_fingerprint(p: dict, name: str, data: dict | None) -> str:
    """The fingerprint of run `name`'s training (of resolved params `p`): the world, tokenizer and train blocks (but
    the train keys that do not shape training), its model and its entry; and the record of the data it reads
    (`data`: vlscale.runs.data.data_record)."""
    run = resolve(p, name)
    train = {k: v for k, v in p["train"].items() if k not in UNSHAPING_TRAIN_KEYS}
    settings = {"world": p["world"], "tokenizer": p["tokenizer"], "model": run.model, "train": train,
                "run": run.hashed_entry}
    return fingerprint("train", settings, {"subset": data})


def evaluation_fingerprint(p: dict, name: str, run_dir: str | Path, tokenizer: str | Path) -> str:
    """The fingerprint of run `name`'s evaluation (of resolved params `p`): the params the stage reads (all but the
    other runs), its entry and its model; the fingerprint of its training, the identity of each of its cool-down
    checkpoints (their name and metadata) and the tokenizer model (the file `tokenizer`, sha256)."""
    run = resolve(p, name)
    settings = {"params": {k: v for k, v in p.items() if k != "runs"}, "run": run.hashed_entry, "model": run.model}
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
        for stage in STAGE_SOURCES:
            print(f'    "{stage}": "{source_digest(stage)}",')
        print("}")
    else:
        parser.print_help()
