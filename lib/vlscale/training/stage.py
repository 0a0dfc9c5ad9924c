"""The train stage: every run of params.yaml `runs` the study plan trains, one after another in one process.

`run(params, names=None)` validates the stage's params (the blocks notebooks/05_train.ipynb's parameters cell holds),
applies the study plan (vlscale.plan), trains each run (or the runs `names`) with training/run.py's `train_run`
(which leaves a run whose directory holds its current, finished training as it is), draws the loss and probe curves
of the runs it trained to paper/figures/train/ (FIG_DIR) and returns {run: its metrics}, as written to
metrics/train/<run>.json. The world, tokenizer and probe images are made once for all runs. `resolved(params)`
holds the runs the plan trains (its `runs`), in params order.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from vlscale.analysis import figures
from vlscale.config import Params, validate
from vlscale.plan import apply as apply_plan
from vlscale.runs.layout import RunDir
from vlscale.training.run import Shared, read_log, read_probes, train_run

FIG_DIR = Path("paper/figures/train")
RUNS_DIR = Path("runs")
# the blocks the train stage validates whole; of `evaluate` it reads the keys, of `sample` the pool's source
BLOCKS = ("profile", "world", "tokenizer", "model", "train", "runs", "filter")


def resolved(params: dict, log=print) -> Params:
    """The stage's params validated, with the plan applied (a run the pool cannot have is dropped and logged)."""
    p = validate({**{k: params[k] for k in BLOCKS if k in params},
                  "evaluate": {"keys": params["evaluate"]["keys"]},  # the probe's dev key
                  "sample": {"source": params["sample"]["source"]}},  # the pool's kind: what the study can run on it
                 partial=("sample", "evaluate"))
    return apply_plan(p, log)[0]


def run(params: dict, names: list[str] | None = None) -> dict[str, dict]:
    """The train stage on the stage's params `params`: every run the study plan trains, or the runs `names`;
    writes paper/figures/train/ (loss_curves.png, and probe_curves.png when the runs probed) and returns
    {run: its metrics} (metrics/train/<run>.json)."""
    p = resolved(params, log=lambda line: None)
    names = list(p.runs) if names is None else list(names)
    skipped = [name for name in names if name not in p.runs]
    if skipped:
        raise ValueError(f"runs {skipped} are not trained: not runs of params' runs, or the plan skips them "
                         f"(runs trained: {sorted(p.runs)})")
    shared = Shared(p)
    metrics = {name: train_run(p, name, runs_dir=RUNS_DIR, shared=shared) for name in names}
    draw_curves(metrics)
    return metrics


def draw_curves(metrics: dict[str, dict], runs_dir: Path = RUNS_DIR, fig_dir: Path = FIG_DIR):
    """The loss curves of the runs of `metrics` (their log.jsonl under runs_dir) to fig_dir/loss_curves.png, and
    their probe curves to fig_dir/probe_curves.png when any run probed."""
    fig_dir.mkdir(parents=True, exist_ok=True)
    logs = {name: read_log(RunDir(runs_dir / name).log) for name in metrics}
    fig = figures.loss_curves(logs, title="Training loss at equal examples seen")
    figures.save(fig, fig_dir / "loss_curves.png")
    plt.close(fig)
    probes = {name: read_probes(RunDir(runs_dir / name).log) for name in metrics}
    probes = {name: t for name, t in probes.items() if len(t)}
    if not probes:
        (fig_dir / "probe_curves.png").unlink(missing_ok=True)  # no curves: none from an earlier call
        return
    chance = next(m["probe"]["chance"] for m in metrics.values() if "probe" in m)
    fig = figures.probe_curves(probes, chance)
    figures.save(fig, fig_dir / "probe_curves.png")
    plt.close(fig)
