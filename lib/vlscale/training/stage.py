"""The train stage: one run of params.yaml `runs` per call (DVC runs the stage for each run).

`run(params, name)` validates the stage's params (the blocks notebooks/05_train.ipynb's parameters cell holds),
applies the study plan (vlscale.plan), trains run `name` with training/run.py's `train_run` (which leaves a run
whose directory holds its current, finished training as it is) and returns its metrics, as written to
metrics/train/<name>.json. `resolved(params)` holds the runs the plan trains (its `runs`), in params order.
"""
from __future__ import annotations

import json

from vlscale.config import EvaluateKeys, validate
from vlscale.plan import apply as apply_plan
from vlscale.training.run import Shared, train_run

# the blocks the train stage validates whole; of `evaluate` it reads the keys, of `sample` the pool's source
BLOCKS = ("profile", "world", "tokenizer", "model", "train", "runs", "filter")


def resolved(params: dict, log=print) -> dict:
    """The stage's params validated, with the plan applied (a run the pool cannot have is dropped and logged)."""
    p = validate({k: params[k] for k in BLOCKS if k in params})
    p["evaluate"] = {"keys": EvaluateKeys(**params["evaluate"]["keys"]).model_dump()}  # the probe's dev key
    p["sample"] = {"source": params["sample"]["source"]}  # the pool's kind: what the study can run on it
    return apply_plan(p, log)[0]


def run(params: dict, name: str) -> dict:
    """Train run `name` of the stage's params `params`; returns its metrics (metrics/train/<name>.json)."""
    p = resolved(params, log=lambda line: None)
    if name not in p["runs"]:
        raise ValueError(f"run {name!r} is not trained: not a run of params' runs, or the plan skips it "
                         f"(runs trained: {sorted(p['runs'])})")
    return train_run(p, name, shared=_shared(p))


_SHARED: dict[str, Shared] = {}


def _shared(p: dict) -> Shared:
    """The world, tokenizer and probe every run of `p` shares: made once for successive calls of `run` (the
    blocks they read are the key)."""
    key = json.dumps({k: p[k] for k in ("world", "tokenizer", "train", "evaluate")}, sort_keys=True, default=str)
    if key not in _SHARED:
        _SHARED.clear()
        _SHARED[key] = Shared(p)
    return _SHARED[key]
