"""The SigLIP trainer: one jit-compiled step over a (data, fsdp) mesh, resumable, with cool-down branches.

The same code runs on 1 CPU device, on 8 simulated CPU devices, on a GPU, on a TPU host and on a
multi-host pod (call `jax.distributed.initialize()` first; each process feeds its part of the batch).

A run is compute-matched: it takes `examples_seen` examples whatever the size of its subset. The main
run follows the inverse-square-root schedule without a cool-down. At each budget (a fraction of
`examples_seen`) a branch starts `cooldown_examples` before the budget from the main run's state and
data position, decays the learning rate linearly to zero, and saves its model under
cooldown/<label>/ for evaluation; the last budget's branch is the run's final model.

Logs are JSON lines (log.jsonl): step, examples_seen, loss, learning_rate, examples_per_s,
step_time_s, mfu, phase; with a probe (training/probe.py), records with "event": "probe" hold its
held-out metrics every `probe_every_examples` of the main run and at the end of every branch.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from vlscale import siglip
from vlscale.config import TrainParams
from vlscale.models.vit import decode_variant
from vlscale.runs.layout import RunDir, checkpoint_meta, cooldown_label
from vlscale.training import checkpoint, flops
from vlscale.training import mesh as meshlib
from vlscale.training.loss import chunked_sigmoid_loss, sigmoid_loss
from vlscale.training.optim import learning_rate, optimizer
from vlscale.training.schedule import Schedule, cooldown_budgets


@dataclass(frozen=True)
class CooledDown:
    """A schedule whose cool-down ends at `end_examples`, a traced value inside the update (+inf: never).

    Schedule.with_cooldown(end).relative(e) for a finite end, Schedule.relative(e) for +inf."""
    schedule: Schedule
    end_examples: object

    @property
    def peak_lr(self) -> float:
        return self.schedule.peak_lr

    def relative(self, examples_seen):
        cool = (self.end_examples - examples_seen) / max(self.schedule.cooldown_examples, 1)
        return self.schedule.relative(examples_seen) * jnp.clip(cool, 0.0, 1.0)


@dataclass(frozen=True)
class Plan:
    """The steps of a run: where the main run stops and where each cool-down branch starts and ends."""
    batch_size: int
    cooldown_steps: int
    budget_steps: tuple[int, ...]  # end step of each branch, ascending; the last is the run's end

    @classmethod
    def of(cls, examples_seen: int, batch_size: int, schedule: Schedule, budgets: list[float]) -> Plan:
        ends = cooldown_budgets(examples_seen, budgets, schedule)
        steps = tuple(sorted({max(1, round(e / batch_size)) for e in ends}))
        cooldown_steps = math.ceil(schedule.cooldown_examples / batch_size)
        if steps[0] < cooldown_steps:
            raise ValueError(f"train.cooldown_budgets: the first budget is {steps[0]} steps of {batch_size}, "
                             f"shorter than the {cooldown_steps}-step cool-down")
        return cls(batch_size, cooldown_steps, steps)

    @property
    def main_steps(self) -> int:
        return self.budget_steps[-1] - self.cooldown_steps

    def branches_at(self, step: int) -> list[int]:
        """End steps of the branches that start at `step` of the main run."""
        return [end for end in self.budget_steps if end - self.cooldown_steps == step]

    @property
    def total_steps(self) -> int:
        return self.main_steps + len(self.budget_steps) * self.cooldown_steps


def schedule_of(train: TrainParams) -> Schedule:
    """The main run's schedule from the `train` block."""
    return Schedule(train.peak_lr, train.warmup_examples, train.cooldown_examples, train.timescale_examples)


def plan_of(train: TrainParams) -> Plan:
    """The run's plan from the `train` block: the input stream must last plan.budget_steps[-1] steps."""
    return Plan.of(train.examples_seen, train.batch_size, schedule_of(train), train.cooldown_budgets)


def tower_settings(tower: dict) -> dict:
    """A tower's width, depth, mlp_dim, num_heads (and patch_size) from its variant and overrides."""
    return {**decode_variant(tower.get("variant")), **tower}


def training_model(config: dict, dtype: str, drop_tokens_frac: float):
    """The two-tower model of a big_vision config, computing in `dtype` and dropping image tokens in training."""
    dt = jnp.dtype(dtype)
    return siglip.model_from_config({**config, "image": {**config["image"], "dtype_mm": dt,
                                                         "drop_tokens_frac": drop_tokens_frac},
                                     "text": {**config["text"], "dtype_mm": dt}})


class Trainer:
    """Builds the model, optimiser, step function and state of one run from resolved params.

    train: the validated `train` block; model_config: the big_vision two-tower config; inputs: an
    object with `iterator(state=None)` returning a batch iterator (get_state/set_state) and
    `batch_images(batch)` giving the model's images [B, px, px, 3] in [-1, 1] on the device (traced; the
    trainer compiles it as a program of its own, run just before each update);
    probe: None or a callable (model, params) -> {metric: value} logged as the run trains.
    """

    def __init__(self, train: TrainParams, model_config: dict, inputs, mesh=None, probe=None):
        self.train = train
        self.probe = probe
        self.inputs = inputs
        self.mesh = mesh if mesh is not None else meshlib.make_mesh(train.mesh.data, train.mesh.fsdp)
        self.batch_size = int(train.batch_size)
        n_dev = self.mesh.devices.size
        if self.batch_size % n_dev:
            raise ValueError(f"train.batch_size = {self.batch_size} must be divisible by the {n_dev} devices")
        self.schedule = schedule_of(train)
        self.plan = plan_of(train)
        self.model_config = dict(model_config)
        self.model = training_model(self.model_config, train.dtype, train.drop_tokens_frac)
        self.seed = train.seed
        self._steps = {}
        self._render = self._update = None
        self._init_state()
        image, text = tower_settings(model_config["image"]), tower_settings(model_config["text"])
        out_dims = model_config["out_dim"]
        out_dims = (out_dims, out_dims) if isinstance(out_dims, int) else tuple(out_dims)
        self.flops_per_example = flops.train_flops_per_example(
            image, text, train.image_px, inputs.max_len, out_dims, self.batch_size, train.drop_tokens_frac)
        self.peak_flops, self.peak_source = flops.peak_flops(self.mesh.devices.flat[0])

    # -- state --------------------------------------------------------------------------------

    def _tx(self, schedule: Schedule):
        return optimizer(schedule, self.batch_size, weight_decay=self.train.weight_decay,
                         grad_clip_norm=self.train.grad_clip_norm)

    def _init_state(self):
        px, L = self.train.image_px, self.inputs.max_len
        images = jnp.zeros((1, px, px, 3), jnp.float32)
        tokens = jnp.zeros((1, L), jnp.int32)
        init = lambda key: self.model.init(key, images, tokens)["params"]  # noqa: E731
        abstract = jax.eval_shape(init, jax.random.key(self.seed))
        self.param_shardings = meshlib.tree_shardings(self.mesh, abstract)
        params = jax.jit(init, out_shardings=self.param_shardings)(jax.random.key(self.seed))
        tx = self._tx(self.schedule)
        abstract_opt = jax.eval_shape(tx.init, abstract)
        self.opt_shardings = meshlib.tree_shardings(self.mesh, abstract_opt)
        opt_state = jax.jit(tx.init, out_shardings=self.opt_shardings)(params)
        self.state = {"params": params, "opt_state": opt_state}
        self.state_shardings = {"params": self.param_shardings, "opt_state": self.opt_shardings}
        self.n_params = int(sum(np.prod(a.shape) for a in jax.tree.leaves(abstract)))

    # -- the step -----------------------------------------------------------------------------

    def _images(self, batch):
        """The batch's model images, in a jit-compiled program of their own (see step_fn)."""
        if self._render is None:
            sharding = meshlib.batch_sharding(self.mesh)
            self._render = jax.jit(self.inputs.batch_images, in_shardings=(sharding,), out_shardings=sharding)
        return self._render(batch)

    def _loss(self, params, images, tokens, rng):
        zimg, ztxt, _ = self.model.apply({"params": params}, images, tokens, train=True,
                                         rngs={"dropout": rng})
        t, b = params["t"][0], params["b"][0]
        if self.train.loss == "chunked":
            return chunked_sigmoid_loss(zimg, ztxt, t, b, self.mesh)
        return sigmoid_loss(zimg, ztxt, t, b)

    def step_fn(self, end_step: int | None = None):
        """The update for the main run (end_step None) or a branch cooling down to end_step, and its schedule.

        One jit-compiled program serves the main run and every branch: the end of the cool-down is an
        argument of the update (+inf for the main run), not a constant, so a run with five budgets
        compiles once instead of six times (~10 s each for the cpu model)."""
        if end_step in self._steps:
            return self._steps[end_step]
        schedule = self.schedule if end_step is None else self.schedule.with_cooldown(end_step * self.batch_size)
        if self._update is None:
            self._update = self._compile_update()
        end = jnp.float32(np.inf if end_step is None else end_step * self.batch_size)

        def fn(state, batch, step_index):
            # Images are rendered by a program of their own, not inside the update: in one program XLA
            # fused the renderer into the patch embedding's reads and, on a CPU, ran it twice (forward
            # and backward) in a transposed layout, at 3x the cost of rendering once
            # (bench/step_profile.py; XLA:CPU drops optimisation barriers).
            return self._update(state, self._images(batch), batch["tokens"], step_index, end)

        self._steps[end_step] = (fn, schedule)
        return self._steps[end_step]

    def _compile_update(self):
        def update(state, images, tokens, step_index, end_examples):
            tx = self._tx(CooledDown(self.schedule, end_examples))  # the same chain (and state) for every end
            rng = jax.random.fold_in(jax.random.key(self.seed), step_index)
            loss, grads = jax.value_and_grad(self._loss)(state["params"], images, tokens, rng)
            updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
            params = optax.apply_updates(state["params"], updates)
            return {"params": params, "opt_state": opt_state}, {"loss": loss, "grad_norm": optax.tree.norm(grads)}

        batch_sharding = meshlib.batch_sharding(self.mesh)
        return jax.jit(update, in_shardings=(self.state_shardings, batch_sharding, batch_sharding, None, None),
                       out_shardings=(self.state_shardings, None), donate_argnums=0)

    # -- the loop -----------------------------------------------------------------------------

    def fit(self, run_dir: str | Path, progress: bool = True, stop_at_step: int | None = None) -> dict:
        """Train (resuming from run_dir/checkpoints if present); returns a summary dict.

        stop_at_step: return after that main-run step (for tests and time-boxed sessions).
        """
        from tqdm.auto import tqdm

        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        ckpts = RunState(RunDir(run_dir), self)
        step, iterator = ckpts.restore_or_start()
        every = max(1, int(self.train.checkpoint_every_examples) // self.batch_size)
        bar = tqdm(total=self.plan.total_steps, initial=ckpts.steps_done(step), disable=not progress,
                   desc=run_dir.name, unit="step")
        log = Logger(ckpts.run_dir.log, self, bar, resume_step=step)
        fn, schedule = self.step_fn(None)
        probe_every = int(self.train.probe_every_examples) // self.batch_size
        if self.probe is not None and step == 0:
            log.probe(0, "main", self.probe(self.model, self.state["params"]))
        while True:
            for end in self.plan.branches_at(step):
                if not ckpts.branch_done(end):
                    ckpts.save(step, iterator)
                    self._branch(end, step, iterator, ckpts, log)
            if step >= self.plan.main_steps:
                break
            if stop_at_step is not None and step >= stop_at_step:
                ckpts.save(step, iterator)  # resumable where it stopped
                break
            batch = meshlib.global_batch(self.mesh, next(iterator))
            self.state, metrics = fn(self.state, batch, step)
            step += 1
            log.step(step, metrics, schedule, "main")
            if self.probe is not None and probe_every and step % probe_every == 0:
                log.probe(step, "main", self.probe(self.model, self.state["params"]))
            if step % every == 0:
                ckpts.save(step, iterator)
        bar.close()
        log.close()
        return {"steps": step, "n_params": self.n_params, "flops_per_example": self.flops_per_example,
                "peak_flops": self.peak_flops, "peak_flops_source": self.peak_source,
                "finished": step >= self.plan.main_steps}

    def _branch(self, end: int, start: int, iterator, ckpts: RunState, log: Logger):
        """Cool down from the main run's state at `start` to `end`; save the model; leave the main run as it was."""
        fn, schedule = self.step_fn(end)
        state = jax.tree.map(jnp.copy, self.state)  # the step donates its input; keep the main state
        branch_iter = self.inputs.iterator(iterator.get_state())
        label = cooldown_label(end * self.batch_size)
        metrics = None
        for step in range(start, end):
            batch = meshlib.global_batch(self.mesh, next(branch_iter))
            state, metrics = fn(state, batch, step)
            log.step(step + 1, metrics, schedule, f"cooldown/{label}")
        meta = {"step": end, "examples_seen": end * self.batch_size, "label": label,
                "cooldown_from_step": start, "final_loss": float(metrics["loss"]),
                "model_config": self.model_config}
        checkpoint.save_params(ckpts.cooldown_dir(end), end, state["params"], meta)
        if self.probe is not None:
            log.probe(end, f"cooldown/{label}", self.probe(self.model, state["params"]))


class RunState:
    """Resume logic of a run directory: the main run's checkpoints and the finished branches."""

    def __init__(self, run_dir: RunDir, trainer: Trainer):
        self.run_dir = run_dir
        self.trainer = trainer
        self.checkpoints = checkpoint.RunCheckpoints(run_dir.checkpoints)

    def cooldown_dir(self, end: int) -> Path:
        return self.run_dir.cooldown(end * self.trainer.batch_size)

    def branch_done(self, end: int) -> bool:
        meta = checkpoint_meta(self.cooldown_dir(end))
        return meta is not None and meta.get("step") == end

    def steps_done(self, step: int) -> int:
        plan = self.trainer.plan
        return step + sum(plan.cooldown_steps for end in plan.budget_steps if self.branch_done(end))

    def restore_or_start(self):
        t = self.trainer
        latest = self.checkpoints.latest_step()
        if latest is None:
            return 0, t.inputs.iterator(None)
        state, data_state, meta = self.checkpoints.restore(latest, t.state)
        if meta.get("batch_size") != t.batch_size or meta.get("main_steps") != t.plan.main_steps:
            raise ValueError(f"{self.run_dir.checkpoints}/{latest} was written by a run with batch_size "
                             f"{meta.get('batch_size')} and {meta.get('main_steps')} main steps; this run has "
                             f"{t.batch_size} and {t.plan.main_steps}. Use a new run directory.")
        t.state = state
        return latest, t.inputs.iterator(data_state)

    def save(self, step: int, iterator):
        t = self.trainer
        meta = {"step": step, "examples_seen": step * t.batch_size, "batch_size": t.batch_size,
                "main_steps": t.plan.main_steps, "model_config": t.model_config}
        self.checkpoints.save(step, t.state, iterator.get_state(), meta)


class Logger:
    """JSON lines and the progress bar; rates are measured between logged steps (host time, input included)."""

    def __init__(self, path: Path, trainer: Trainer, bar, resume_step: int):
        self.trainer = trainer
        self.bar = bar
        self.every = int(trainer.train.log_every_steps)
        # On a pod every process trains; one writes the log.
        self.file = open(path, "a") if jax.process_index() == 0 else open(os.devnull, "w")
        self.file.write(json.dumps({"event": "start", "step": resume_step, "n_params": trainer.n_params,
                                    "devices": trainer.mesh.devices.size,
                                    "device_kind": trainer.mesh.devices.flat[0].device_kind,
                                    "peak_flops": trainer.peak_flops, "peak_flops_source": trainer.peak_source,
                                    "flops_per_example": trainer.flops_per_example}) + "\n")
        self.last_time = time.perf_counter()
        self.timed = False  # the first interval holds compilation: no rate for it
        self.count = 0

    def step(self, step: int, metrics: dict, schedule: Schedule, phase: str):
        self.bar.update(1)
        self.count += 1
        if step % self.every and phase == "main":  # cool-downs are short: every step of them is logged
            return
        loss = float(metrics["loss"])  # blocks until the step is done
        now = time.perf_counter()
        t = self.trainer
        elapsed = now - self.last_time
        rate = self.count * t.batch_size / elapsed if self.timed else float("nan")
        mfu = rate * t.flops_per_example / (t.peak_flops * t.mesh.devices.size)
        record = {"step": step, "examples_seen": step * t.batch_size, "loss": loss,
                  "learning_rate": float(learning_rate(schedule, step - 1, t.batch_size)),
                  "grad_norm": float(metrics["grad_norm"]), "examples_per_s": rate,
                  "step_time_s": elapsed / self.count if self.timed else float("nan"),
                  "mfu": mfu, "phase": phase}
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        self.bar.set_postfix(loss=f"{loss:.3f}", ex_s=f"{rate:.0f}")
        self.last_time, self.timed = now, True
        self.count = 0

    def probe(self, step: int, phase: str, metrics: dict):
        """A probe record: the held-out metrics of the model after `step` of `phase`."""
        record = {"event": "probe", "step": step, "examples_seen": step * self.trainer.batch_size,
                  "phase": phase, **metrics}
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        self.bar.write(f"probe {phase} step {step}: " + ", ".join(f"{k} {v:.1f}" for k, v in metrics.items()))
        self.last_time = time.perf_counter()  # the probe's time is not the step's
        self.timed = self.timed and self.count == 0

    def close(self):
        self.file.close()
