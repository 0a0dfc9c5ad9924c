"""Train one run: from resolved params to checkpoints, a log and a metrics JSON; and the command line.

`train_run(p, name)` reads the subset the sample stage wrote (data/sample) or the filter arm the filter stage wrote
(data/filter), and the tokenizer the tokenizer stage wrote (data/tokenizer), trains with `Trainer`, and writes
    runs/<name>/            checkpoints/, cooldown/<label>/, log.jsonl, fingerprint.json, train.json (vlscale.runs)
    metrics/train/<name>.json
    plots/train/<name>.csv, plots/train/<name>_cooldown.csv   the loss curves (for `dvc plots`)
    plots/train_probe/<name>.csv                              the held-out probe
A run directory whose saved fingerprint (vlscale.runs.current.train_fingerprint) differs from this run's is cleared
first: stale checkpoints are never resumed into a different run. A run whose directory holds its finished, current
training (train.json) is not trained again: its records are rewritten from what the directory holds.

`python -m vlscale.training.run RUN` trains one run outside DVC (`main`); training/stage.py is the train stage.
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from vlscale.config import Params, ParamsError, apply_sets, load_params, validate
from vlscale.data.filter_arms import FILTER_DIR, read_arm
from vlscale.data.input import IdSource, ShardSource, SyntheticSource, load_source, read_sample, train_stream
from vlscale.data.sampling import fraction_label
from vlscale.data.subsets import derive_key
from vlscale.data.tokenizer import TOKENIZER_PATH, Tokenizer
from vlscale.files import dumps, read_json, write_json
from vlscale.provenance import provenance
from vlscale.runs.current import check_code_version, is_current, save_fingerprint, train_fingerprint
from vlscale.runs.data import SAMPLE_DIR, data_record
from vlscale.runs.layout import RunDir
from vlscale.runs.settings import Run, resolve
from vlscale.training.probe import Probe
from vlscale.training.trainer import Trainer, plan_of
from vlscale.world.render import render
from vlscale.world.spec import build_world
from vlscale.world.truth import ground_truth

# The batch fields the step reads; the rest (stratum, examples_seen) stay on the host.
STEP_FIELDS = ("id_hi", "id_lo", "image", "tokens")


class Inputs:
    """The run's input: Grain iterators over the subset, and images made on the device.

    Synthetic examples arrive as ids and are rendered on the device just before each update, so the
    host only makes captions and tokens; real examples arrive as uint8 pixels.
    """

    def __init__(self, world, source, tokenizer: Tokenizer, batch_size: int, examples: int, seed: int,
                 max_len: int, image_px: int, workers: int = 0):
        self.world, self.max_len, self.image_px = world, max_len, image_px
        self.source = source
        self.synthetic = isinstance(source, (SyntheticSource, IdSource))
        per_process = batch_size // jax.process_count()
        self.stream = train_stream(source, tokenizer, per_process, examples, seed, max_len, num_workers=workers)

    # Where each process appends the ids of every batch it reads (None: nowhere); `--record-inputs DIR` sets it.
    record_to: Path | None = None

    def iterator(self, state: dict | None = None):
        """A batch iterator from the start, or resumed at `state` (an earlier iterator's get_state())."""
        record = None
        if self.record_to is not None:
            self.record_to.mkdir(parents=True, exist_ok=True)
            record = self.record_to / f"process_{jax.process_index()}.jsonl"
        it = _StepFields(iter(self.stream), record)
        if state is not None:
            it.set_state(state)
        return it

    def batch_images(self, batch: dict):
        """The model's images [B, px, px, 3] in [-1, 1], on the device (traced)."""
        if self.synthetic:
            hi, lo = batch["id_hi"], batch["id_lo"]
            images = render(self.world, ground_truth(self.world, hi, lo, jnp), hi, lo, self.image_px, jnp)
            return images * 2.0 - 1.0
        return batch["image"].astype(jnp.float32) / 127.5 - 1.0


class _StepFields:
    """A Grain iterator yielding only the fields the step reads."""

    def __init__(self, it, record: Path | None = None):
        self.it, self.record = it, record

    def __next__(self):
        batch = {k: v for k, v in next(self.it).items() if k in STEP_FIELDS}
        if self.record is not None:  # this process's part of the global batch, by example id
            ids = (batch["id_hi"].astype(np.uint64) << np.uint64(32)) | batch["id_lo"].astype(np.uint64)
            with open(self.record, "a") as f:
                f.write(json.dumps({"ids": ids.tolist()}) + "\n")
        return batch

    def get_state(self) -> dict:
        return self.it.get_state()

    def set_state(self, state: dict):
        self.it.set_state(state)


def prepare_run_dir(run_dir: RunDir, fp: str) -> RunDir:
    """The run directory, cleared first when the training it holds is not of fingerprint `fp`, with `fp` saved."""
    if jax.process_index() == 0:  # on a pod, process 0 owns the (shared) run directory
        if run_dir.path.exists() and not is_current(run_dir.path, fp):
            shutil.rmtree(run_dir.path)
        run_dir.path.mkdir(parents=True, exist_ok=True)
        save_fingerprint(run_dir.path, fp)
    return run_dir


def finished_record(run_dir: RunDir, fp: str) -> dict | None:
    """The metrics of the finished training in `run_dir` when it is current (fingerprint `fp`), else None."""
    if not (is_current(run_dir.path, fp) and run_dir.record.is_file()):
        return None
    metrics = read_json(run_dir.record)
    return metrics if metrics.get("finished") else None


class Shared:
    """What every run of one stage shares: the world, the tokenizer and the probe (its images rendered once).

    The probe reads only blocks every run shares (world, tokenizer.max_len, train.image_px,
    train.probe_images, evaluate.keys.dev), so one serves them all."""

    def __init__(self, p: Params):
        self.world = build_world(p.world)
        self.tokenizer = Tokenizer(TOKENIZER_PATH)
        self._p, self._probe = p, None

    def probe(self) -> Probe | None:
        p = self._p
        if self._probe is None and p.train.probe_every_examples:
            self._probe = probe_of(p, self.world, self.tokenizer)
        return self._probe


def build(p: Params, name: str, mesh=None, shared: Shared | None = None) -> Trainer:
    """The Trainer of run `name` from validated params `p` (vlscale.config.validate)."""
    run = resolve(p, name)
    shared = shared or Shared(p)
    # a seed replicate's own seed; a short run's examples and cool-downs; the run's own model (the model axis)
    p = p.replace(train=run.train, model=run.model)
    source = run_source(shared.world, run, p.train.image_px)
    return trainer_for(p, shared.world, source, shared.tokenizer, mesh, probe=shared.probe())


def run_source(world, run: Run, image_px: int):
    """The source a run reads: its subset of the sample stage (natural or rebalanced), or its filter arm."""
    if run.filter:
        ids, entry = read_arm(run.filter, FILTER_DIR)
        if entry.get("source") == "real":  # a real pool's arm lists record rows of its largest subset
            _, _, records = read_sample(world, SAMPLE_DIR, entry["pool_label"])
            return ShardSource(records.iloc[ids].reset_index(drop=True), entry["key"], {}, image_px)
        if entry.get("world") != world.fingerprint():
            raise ValueError(f"{FILTER_DIR}/manifest.json was made from world {entry.get('world')}, not this world "
                             f"({world.fingerprint()}); re-run the filter stage")
        return IdSource(world, ids, derive_key(entry["key"], 9))
    return load_source(world, SAMPLE_DIR, fraction_label(run.fraction), run.rebalanced, image_px)


def probe_of(p: Params, world, tokenizer: Tokenizer) -> Probe:
    """The held-out probe of params `p`: analogs of the development key (params.yaml evaluate.keys)."""
    max_len = p.tokenizer.max_len
    return Probe(world, lambda texts: tokenizer.encode(texts, max_len), p.train.image_px, p.train.probe_images,
                 p.evaluate.keys.dev)


def trainer_for(p: Params, world, source, tokenizer: Tokenizer, mesh=None, probe: Probe | None = None) -> Trainer:
    """A Trainer over `source` with the model, tokenizer length and train settings of params `p`.

    probe: the held-out probe to log (default: made from `p` when train.probe_every_examples is set)."""
    train = p.train
    model = p.model.model_dump()
    model_config = {**model, "text": {**model["text"], "vocab_size": tokenizer.vocab_size}}
    # The stream lasts until the last cool-down branch ends (budgets are rounded to whole steps).
    inputs = Inputs(world, source, tokenizer, train.batch_size, plan_of(train).budget_steps[-1] * train.batch_size,
                    train.seed, p.tokenizer.max_len, train.image_px, train.workers)
    if probe is None and train.probe_every_examples:
        probe = probe_of(p, world, tokenizer)
    return Trainer(train, model_config, inputs, mesh=mesh, probe=probe if train.probe_every_examples else None)


def train_run(p: Params, name: str, runs_dir: str | Path = "runs", progress: bool = True,
              stop_at_step: int | None = None, records_dir: str | Path = ".", shared: Shared | None = None) -> dict:
    """Train run `name` (resuming if its directory holds checkpoints of the same run); returns its metrics.

    A directory holding the finished run of the same fingerprint (its train.json) is not trained again:
    its metrics are read back and its records rewritten. The metrics JSON and loss-curve CSVs go to
    <records_dir>/metrics/train, <records_dir>/plots/train and <records_dir>/plots/train_probe.
    """
    check_code_version("train")  # a finished run is current only if the code that trained it is this code
    fp = train_fingerprint(p, name, data_record(resolve(p, name)))
    run_dir = prepare_run_dir(RunDir(Path(runs_dir) / name), fp)
    done = finished_record(run_dir, fp)
    if done is not None and stop_at_step is None:
        print(f"run {name}: {run_dir.record} holds this run, finished (fingerprint {fp}): not trained again")
        if jax.process_index() == 0:
            write_records(done, run_dir, records_dir)
        return done
    t0 = time.perf_counter()
    trainer = build(p, name, shared=shared)
    summary = trainer.fit(run_dir.path, progress=progress, stop_at_step=stop_at_step)
    if jax.process_index() != 0:  # on a pod, process 0 writes the run's log and records
        return summary
    log = read_log(run_dir.log)
    main = log[log["phase"] == "main"]
    steady = main[main["step"] > main["step"].max() * 0.1]  # after compilation and warm-up
    metrics = {
        "run": name, **p.runs[name].model_dump(), "seed": trainer.seed, **summary,
        "examples_seen": trainer.plan.budget_steps[-1] * trainer.batch_size,
        "epochs": trainer.plan.budget_steps[-1] * trainer.batch_size / len(trainer.inputs.source),
        # loss at the end of each cool-down branch, by examples seen; the last is the run's final model
        "cooldown_losses": {int(r["examples_seen"]): float(r["loss"])
                            for _, r in log[log["phase"] != "main"].groupby("phase").tail(1).iterrows()},
        "examples_per_s": float(steady["examples_per_s"].median()),
        "step_time_s": float(steady["step_time_s"].median()),
        "mfu": float(steady["mfu"].median()),
        "wall_s": time.perf_counter() - t0,
        "devices": trainer.mesh.devices.size,
        "device_kind": trainer.mesh.devices.flat[0].device_kind,
        "cooldowns": sorted(str(d.relative_to(run_dir.path)) for d in run_dir.cooldowns.glob("*")),
        "provenance": provenance(p.profile, p.dump(), fingerprint=fp),
    }
    if metrics["cooldown_losses"]:
        metrics["final_loss"] = metrics["cooldown_losses"][max(metrics["cooldown_losses"])]
    probes = read_probes(run_dir.log)
    if trainer.probe is not None:
        cooled = probes[probes["phase"] != "main"].sort_values("examples_seen") if len(probes) else probes
        metrics["probe"] = {"key": "dev", "images": p.train.probe_images, "chance": trainer.probe.chance,
                            "final": cooled.iloc[-1][list(trainer.probe.chance)].to_dict() if len(cooled) else None}
    metrics = json.loads(dumps(metrics))  # as it reads back from train.json
    if metrics["finished"]:
        write_json(run_dir.record, metrics)
    write_records(metrics, run_dir, records_dir, log=log, probes=probes)
    return metrics


def write_records(metrics: dict, run_dir: RunDir, records_dir: str | Path = ".", log: pd.DataFrame | None = None,
                  probes: pd.DataFrame | None = None) -> None:
    """A run's metrics JSON, loss-curve CSVs and probe CSV, from its metrics and its run directory's log
    (log, probes: read_log and read_probes of it, when the caller has them)."""
    name = metrics["run"]
    dirs = {k: Path(records_dir) / k for k in ("metrics/train", "plots/train", "plots/train_probe")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    write_json(dirs["metrics/train"] / f"{name}.json", metrics)
    log = read_log(run_dir.log) if log is None else log
    columns = ["phase", "step", "examples_seen", "loss", "learning_rate"]
    is_main = log["phase"] == "main"
    log[is_main][columns].to_csv(dirs["plots/train"] / f"{name}.csv", index=False)
    log[~is_main][columns].to_csv(dirs["plots/train"] / f"{name}_cooldown.csv", index=False)
    chance = (metrics.get("probe") or {}).get("chance") or {}
    probe_columns = ["phase", "step", "examples_seen", *chance]
    probes = read_probes(run_dir.log) if probes is None else probes  # empty without a probe
    probes.reindex(columns=probe_columns).to_csv(dirs["plots/train_probe"] / f"{name}.csv", index=False)


def _records(path: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def read_log(path: str | Path) -> pd.DataFrame:
    """The step records of a run's log.jsonl (later records of a step replace earlier ones after a resume)."""
    log = pd.DataFrame([r for r in _records(path) if "event" not in r])
    return log.drop_duplicates(["phase", "step"], keep="last").sort_values(["phase", "step"]).reset_index(drop=True)


def read_probes(path: str | Path) -> pd.DataFrame:
    """The probe records of a run's log.jsonl: phase, step, examples_seen and the probe's metrics
    (later records of a step replace earlier ones after a resume); empty without a probe."""
    probes = pd.DataFrame([r for r in _records(path) if r.get("event") == "probe"])
    if probes.empty:
        return probes
    probes = probes.drop(columns="event").drop_duplicates(["phase", "step"], keep="last")
    return probes.sort_values(["phase", "step"]).reset_index(drop=True)


def planned_examples(p: Params, name: str) -> int:
    """Examples run `name` trains in all: its main run and every cool-down branch (train.cooldown_budgets)."""
    plan = plan_of(resolve(p, name).train)
    return plan.total_steps * plan.batch_size


def examples_done(run_dir: str | Path) -> int:
    """Examples a run has trained so far, from its log: the main run's last logged step, and every step of the
    cool-down branches (which log each step); 0 before its log exists."""
    path = RunDir(run_dir).log
    if not path.is_file():
        return 0
    log = read_log(path)
    if log.empty:
        return 0
    last = log.loc[log["step"].idxmax()]
    batch = round(last["examples_seen"] / last["step"])  # every record's examples_seen is step × batch
    main = log[log["phase"] == "main"]
    steps = (int(main["step"].max()) if len(main) else 0) + int((log["phase"] != "main").sum())
    return steps * batch


def measured_rate(run_dir: str | Path, skip: int = 2) -> float:
    """Examples/s of a run's main phase as logged, the median after the first `skip` records (compilation)."""
    path = RunDir(run_dir).log
    if not path.is_file():
        raise ValueError(f"{path}: no log yet (the run has not started)")
    log = read_log(path)
    rates = log.loc[log["phase"] == "main", "examples_per_s"].dropna().to_numpy()[skip:]
    if not len(rates):
        raise ValueError(f"{run_dir}/log.jsonl: no examples/s logged yet after the first {skip} records")
    return float(np.median(rates))


def time_left(p: Params, names: list[str], runs_dir: str | Path, examples_per_s: float) -> dict:
    """{"examples": planned, "done": trained, "left_s": seconds at `examples_per_s`} over the runs `names`."""
    planned = sum(planned_examples(p, n) for n in names)
    done = sum(min(examples_done(Path(runs_dir) / n), planned_examples(p, n)) for n in names)
    return {"examples": planned, "done": done, "left_s": (planned - done) / examples_per_s}


def main(argv=None):
    """Train one run outside DVC: `python -m vlscale.training.run RUN [--profile P] [--set train.batch_size=64]`.

    On a pod, every host runs the same command with --distributed (jax.distributed.initialize()).
    """
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("run")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--profile", help="override params.yaml's profile")
    parser.add_argument("--set", action="append", default=[], metavar="BLOCK.KEY=VALUE",
                        help="override a resolved value (YAML), e.g. train.mesh={data: 4, fsdp: 2}")
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--records-dir", default=".",
                        help="where metrics/train and plots/train go (default: here, as the DVC stage expects)")
    parser.add_argument("--stop-at-step", type=int)
    parser.add_argument("--distributed", action="store_true",
                        help="call jax.distributed.initialize() first (on a TPU pod or a SLURM/Kubernetes GPU "
                             "cluster it finds its peers itself; elsewhere give the three options below)")
    parser.add_argument("--coordinator", help="with --distributed: process 0's address, host:port")
    parser.add_argument("--num-processes", type=int, help="with --distributed: how many processes take part")
    parser.add_argument("--process-id", type=int, help="with --distributed: this process's index, 0 .. n-1")
    parser.add_argument("--record-inputs", metavar="DIR",
                        help="append the example ids of every batch this process reads to DIR/process_<i>.jsonl")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.distributed:
        jax.distributed.initialize(args.coordinator, args.num_processes, args.process_id)
    elif any(v is not None for v in (args.coordinator, args.num_processes, args.process_id)):
        raise SystemExit("error: --coordinator, --num-processes and --process-id need --distributed")
    if args.record_inputs:
        Inputs.record_to = Path(args.record_inputs)
    try:
        p = load_params(args.params, args.profile)
        p = validate(apply_sets(p.dump(), args.set), f"{args.params} with --set")
        if args.run not in p.runs:
            raise ParamsError(f"{args.params}: no run {args.run!r}; runs are {sorted(p.runs)}")
        p = p.replace(runs={args.run: p.runs[args.run]})
    except ParamsError as e:
        raise SystemExit(f"error: {e}") from None
    train_run(p, args.run, args.runs_dir, progress=not args.no_progress, stop_at_step=args.stop_at_step,
              records_dir=args.records_dir)


if __name__ == "__main__":
    main()
