"""Checkpoints of a run: model, optimiser and input-iterator state saved together (Orbax).

Layout of a run directory:
    checkpoints/<step>/{params, opt_state, data, meta}   the main run, resumable at <step>
    cooldown/<label>/<step>/{params, meta}              a cooled-down model for evaluation
`params` is an Orbax StandardSave of the parameter tree, so `vlscale.siglip.load` reads any of
them. Orbax writes a step to a temporary folder and renames it when complete, so a process killed
mid-save leaves the previous step as the latest.
"""
from __future__ import annotations

from pathlib import Path

import jax
import orbax.checkpoint as ocp


def _manager(directory: Path, keep: int | None, items: tuple[str, ...]) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True, cleanup_tmp_directories=True,
                                           enable_async_checkpointing=False)
    return ocp.CheckpointManager(Path(directory).absolute(), options=options, item_names=items)


class RunCheckpoints:
    """The main run's resumable checkpoints under `directory` (keeps the newest `keep`)."""

    ITEMS = ("params", "opt_state", "data", "meta")

    def __init__(self, directory: str | Path, keep: int = 2):
        self.directory = Path(directory)
        self.manager = _manager(self.directory, keep, self.ITEMS)

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state: dict, data_state: dict, meta: dict):
        """Save the train state {params, opt_state}, the iterator's state and JSON metadata at `step`."""
        if step in self.manager.all_steps():
            return
        self.manager.save(step, args=ocp.args.Composite(
            params=ocp.args.StandardSave(state["params"]), opt_state=ocp.args.StandardSave(state["opt_state"]),
            data=ocp.args.JsonSave(data_state), meta=ocp.args.JsonSave(meta)), force=True)
        self.manager.wait_until_finished()

    def restore(self, step: int, like: dict) -> tuple[dict, dict, dict]:
        """(state, data_state, meta) at `step`; arrays take the shardings and dtypes of `like`."""
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
        r = self.manager.restore(step, args=ocp.args.Composite(
            params=ocp.args.StandardRestore(abstract["params"]),
            opt_state=ocp.args.StandardRestore(abstract["opt_state"]),
            data=ocp.args.JsonRestore(), meta=ocp.args.JsonRestore()))
        return {"params": r.params, "opt_state": r.opt_state}, r.data, r.meta


def save_params(directory: str | Path, step: int, params, meta: dict):
    """Save a finished model (a cool-down branch) as <directory>/<step>/{params, meta}."""
    manager = _manager(Path(directory), None, ("params", "meta"))
    manager.save(step, args=ocp.args.Composite(params=ocp.args.StandardSave(params),
                                               meta=ocp.args.JsonSave(meta)), force=True)
    manager.wait_until_finished()
    manager.close()
