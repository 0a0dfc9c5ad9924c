"""Class names and prompt templates of the real evaluation sets, as shipped in evals/data/ (see its
NOTICE.md; rebuilt by tools/rebuild_eval_data.py).

    classes("imagenet")  -> {"ids": [1000 wnids, sorted], "names": [CLIP's class name of each]}
    classes("cifar100"), classes("pets")
    templates("clip7")   -> ["itap of a {}.", ...]; also "big_vision8", "clip80_imagenet", "clip18_cifar", "clip_pets"
"""
from __future__ import annotations

import functools
import json
from importlib import resources


@functools.cache
def _load(name: str) -> dict:
    return json.loads(resources.files("vlscale.evals").joinpath("data", name).read_text(encoding="utf-8"))


def classes(dataset: str) -> dict[str, list[str]]:
    table = _load("classes.json")
    if dataset not in table:
        raise ValueError(f"no shipped class names for {dataset!r}; shipped: {sorted(table)}")
    return table[dataset]


def templates(name: str) -> list[str]:
    table = _load("templates.json")
    if name not in table:
        raise ValueError(f"no shipped prompt templates {name!r}; shipped: {sorted(table)}")
    return list(table[name])


def imagenet_name_of() -> dict[str, str]:
    """{wnid: CLIP's class name} of the 1,000 ImageNet-1k classes."""
    table = classes("imagenet")
    return dict(zip(table["ids"], table["names"]))
