"""How vlscale writes its result files: whole or not at all, and JSON in one way.

Every JSON file a stage, a run or a tool writes goes through `write_json`: numpy scalars become the Python numbers
they hold, arrays lists, anything else JSON does not know its `str`; the file appears only once it is complete.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np


def jsonable(o):
    """The JSON value of an object `json` does not know: a numpy scalar's number, an array's list, else str(o)."""
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def dumps(obj, indent: int | None = 1, sort_keys: bool = False) -> str:
    """`obj` as vlscale writes it: UTF-8 text (non-ASCII kept), numpy values as numbers (see `jsonable`)."""
    return json.dumps(obj, indent=indent, sort_keys=sort_keys, ensure_ascii=False, default=jsonable)


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call write(tmp) on a temporary path beside `path`, then move it into place: a reader (or a resumed run) sees
    the old file or the whole new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_json(path: str | Path, obj, indent: int | None = 1, sort_keys: bool = False) -> Path:
    """Write `obj` to `path` as JSON (see `dumps`), atomically, creating the folder; returns the path."""
    text = dumps(obj, indent=indent, sort_keys=sort_keys) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def read_json(path: str | Path):
    """The JSON value in `path`; a malformed file raises ValueError naming it."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
