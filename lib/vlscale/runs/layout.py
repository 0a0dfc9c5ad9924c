"""Where a run's files live (the package docstring lists them), and the names of its cool-down checkpoints."""
from __future__ import annotations

import re
from pathlib import Path

from vlscale.files import read_json

COOLDOWN_LABEL = re.compile(r"^seen_(\d+)$")


def cooldown_label(examples_seen: int) -> str:
    """The directory name of a cool-down checkpoint: the examples seen at its end, e.g. 'seen_000004096000'."""
    return f"seen_{examples_seen:012d}"


def examples_of_label(label: str) -> int | None:
    """The examples seen of a cool-down checkpoint's directory name (cooldown_label's inverse); None for another."""
    m = COOLDOWN_LABEL.match(label)
    return int(m.group(1)) if m else None


class RunDir:
    """A run's directory, runs/<name>/, and where each of its files lives."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def cooldowns(self) -> Path:
        return self.path / "cooldown"

    @property
    def log(self) -> Path:
        return self.path / "log.jsonl"

    @property
    def record(self) -> Path:
        return self.path / "train.json"

    def cooldown(self, examples_seen: int) -> Path:
        """The directory of the cool-down checkpoint that ends at `examples_seen`."""
        return self.cooldowns / cooldown_label(examples_seen)

    def cooled_down(self, required: bool = True) -> list[tuple[int, Path]]:
        """The cool-down checkpoints: [(examples seen, directory)], by examples seen. None found is a
        FileNotFoundError naming the folder (`required`), else an empty list."""
        found = sorted((seen, d) for d in self.cooldowns.glob("seen_*")
                       if d.is_dir() and (seen := examples_of_label(d.name)) is not None)
        if required and not found:
            raise FileNotFoundError(f"{self.cooldowns} has no seen_<examples> checkpoints; run its train stage first")
        return found


def checkpoint_meta(checkpoint: str | Path) -> dict | None:
    """The metadata the trainer saved with a cool-down checkpoint (its step, examples seen, final loss, model
    config): the JSON of its newest step's `meta` item; None when there is none."""
    checkpoint = Path(checkpoint)
    steps = [d for d in checkpoint.iterdir() if d.is_dir() and d.name.isdigit()] if checkpoint.is_dir() else []
    if not steps:
        return None
    meta = max(steps, key=lambda d: int(d.name)) / "meta" / "metadata"
    return read_json(meta) if meta.is_file() else None
