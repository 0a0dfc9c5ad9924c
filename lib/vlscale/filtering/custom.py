"""The custom arm: a user's filter, named in params (filter.custom.name, "package.module:function").

The function scores one shard of pairs at a time:

    function(images, texts, languages, uids, **filter.custom.kwargs) -> scores

images: float32 [n, px, px, 3] in [-1, 1], the pixels the CLIP-score filter sees (train.image_px); texts: the n
captions; languages: their languages (a synthetic pair's caption language, a real record's language); uids: the
pairs' ids (int64, a synthetic pool) or record uids (str, a real pool). It returns n numbers: the arm keeps the k
highest (ties to the smaller id or row), NaN for a pair it must never keep. A score must depend on the pair alone,
never on the rest of its shard, or the arm would change with filter.shard_size and differ between engines.

The module is imported from the Python path, with the working directory first (the project root when a stage
runs), so a file filters/mine.py of the project is "filters.mine:function". Its source's sha256 goes into the
stage's manifest and so into the arm's runs' fingerprints; add the file to the filter stage's deps in dvc.yaml so
that an edit reruns the stage.
"""
from __future__ import annotations

import hashlib
import importlib
import inspect
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from vlscale.config import CustomParams, ParamsError


@dataclass
class CustomFilter:
    """A loaded plug-in: its params' name and kwargs and the function; calling it checks what the function gives."""
    name: str
    kwargs: dict
    function: Callable

    def __call__(self, images, texts, languages, uids) -> np.ndarray:
        n = len(texts)
        try:
            scores = np.asarray(self.function(images, texts, languages, uids, **self.kwargs), dtype=np.float64)
        except Exception as e:  # whatever the plug-in raises, the error names it (the cause stays chained)
            raise ValueError(f"filter.custom.name = {self.name!r}: {type(e).__name__}: {e}") from e
        if scores.shape != (n,):
            raise ValueError(f"filter.custom.name = {self.name!r} returned scores of shape {scores.shape} for a shard "
                             f"of {n} pairs; it must return one number per pair, shape ({n},)")
        if np.isinf(scores).any():
            raise ValueError(f"filter.custom.name = {self.name!r} returned an infinite score for "
                             f"{int(np.isinf(scores).sum())} pairs; use NaN for a pair never to keep")
        return scores

    def record(self) -> dict:
        """What the manifest keeps of it: its name, kwargs, source file and the source's sha256."""
        path = inspect.getsourcefile(self.function) or ""
        digest = hashlib.sha256(open(path, "rb").read()).hexdigest() if path and os.path.isfile(path) else None
        return {"name": self.name, "kwargs": dict(self.kwargs), "file": path, "sha256": digest}


def load_custom(custom: CustomParams) -> CustomFilter:
    """Import filter.custom's function, or ParamsError naming it and what went wrong (checked before any work)."""
    module_name, _, attr = custom.name.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    where = f"params.yaml: filter.custom.name = {custom.name!r}"
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ParamsError(f"{where}: cannot import {module_name!r} ({e}); the module must be on the Python path "
                          f"(the working directory {os.getcwd()} is on it)") from e
    function = getattr(module, attr, None)
    if function is None:
        raise ParamsError(f"{where}: module {module_name!r} ({module.__file__}) has no {attr!r}")
    if not callable(function):
        raise ParamsError(f"{where}: {attr!r} is a {type(function).__name__}, not a function")
    return CustomFilter(custom.name, dict(custom.kwargs), function)
