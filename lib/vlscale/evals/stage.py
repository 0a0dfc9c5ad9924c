"""The evaluate stage: every protocol of the paper on every benchmark, for every cool-down checkpoint
of every run.

For one checkpoint, `evaluate_run` builds an Embedder (evals/embedder.py) that embeds each benchmark's
images and texts once, and runs every protocol each benchmark serves on those embeddings (the analogs:
evals/analog_eval.py; the real sets: evals/real_eval.py). Outputs, under results/evaluate/:

    <run>/<checkpoint>/<source>/<benchmark>.json   one JSON per (checkpoint, benchmark), with provenance
    <run>.parquet                                   tidy rows (ROW_COLUMNS): one per (checkpoint, task)
    <run>/items.parquet                             per-item outcomes (ITEM_COLUMNS), for the paired
                                                    bootstrap of analysis/uncertainty.py
    <run>/analogs.json                              each analog's size, caption ceilings and share of
                                                    captions equal to English, per language

    <run>/fingerprint.json, <run>/metrics.json      what the results were made from; the metrics record

Which held-out draws the analogs use is `evaluate.keys[evaluate.use_key]`: "dev" for tuning the world
and the analogs, "report" (a key nobody tuned on) for what the README and paper report.

`run(params, name=None)` is the stage: it validates the stage's params and evaluates every run (or run `name`) in
one process, the analogs drawn and rendered once for all of them (`evaluate_runs`). A run whose results are current
(vlscale.runs: the fingerprint saved beside them is that of the params the stage reads, the run's training and
checkpoints, the tokenizer and the evaluate stage's code version) is not evaluated again; its metrics record is
rewritten from its results.
"""
from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from vlscale.config import Params, validate
from vlscale.data.tokenizer import TOKENIZER_PATH, Tokenizer
from vlscale.evals import real_eval
from vlscale.evals.analog_eval import analog_facts, analog_suite, evaluate_analog
from vlscale.evals.embedder import Prompts, checkpoint_embedder
from vlscale.files import read_json, write_json
from vlscale.plan import apply as apply_plan
from vlscale.provenance import provenance
from vlscale.runs.current import check_code_version, evaluation_fingerprint, is_current, save_fingerprint
from vlscale.runs.data import pool_share
from vlscale.runs.layout import RunDir
from vlscale.runs.settings import resolve
from vlscale.world.spec import build_world

ROW_COLUMNS = ("run", "seed", "fraction", "data_pct", "curation", "examples_seen", "budget", "checkpoint", "profile",
               "model", "benchmark", "source", "task", "metric", "value", "se", "n")
ITEM_COLUMNS = ("run", "seed", "data_pct", "examples_seen", "source", "benchmark", "task", "item", "value")
OUT_DIR = Path("results/evaluate")
# the blocks the evaluate stage validates whole; of `sample` it reads the pool's source
BLOCKS = ("profile", "world", "tokenizer", "model", "train", "runs", "evaluate", "filter")


def write_results(rows: list[dict], out_dir: Path, record: dict) -> Path:
    """One JSON per benchmark: its results keyed by task, with the run, checkpoint and provenance."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results = {r["task"]: {k: r[k] for k in ("metric", "value", "se", "n")} for r in rows}
    return write_json(out_dir / f"{record['benchmark']}.json", {**record, "results": results})


def items_table(rows: list[dict], where: dict) -> pd.DataFrame:
    """The per-item outcomes of `rows` (those that have them) as ITEM_COLUMNS, with `where`'s run,
    seed, data_pct, examples_seen, source and benchmark."""
    parts = [pd.DataFrame({"task": r["task"], "item": r["item"], "value": r["item_value"]})
             for r in rows if "item" in r]
    if not parts:
        return pd.DataFrame(columns=list(ITEM_COLUMNS))
    d = pd.concat(parts, ignore_index=True)
    for column in ("run", "seed", "data_pct", "examples_seen", "source", "benchmark"):
        d[column] = where[column]
    return d[list(ITEM_COLUMNS)]


def evaluate_run(run: str, run_dir: Path, fraction: float, seed: int, total_examples: int, suites: dict,
                 embedder_of: Callable, prompts_of: dict, out_dir: Path, record: dict, shots: int = 10,
                 progress: Callable = print, curation: str = "natural") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Evaluate every cool-down checkpoint of `run` on every benchmark of `suites`.

    suites: source ("analog" | "real") -> {benchmark name: fn(embedder, prompts, shots) -> rows}.
    embedder_of(checkpoint dir) -> Embedder. prompts_of: source -> Prompts. record: what every result
    carries (profile, model, params, provenance). Writes <out_dir>/<run>/<checkpoint>/<source>/<benchmark>.json;
    returns (tidy rows, per-item outcomes).
    """
    rows, items = [], []
    for seen, ckpt in RunDir(run_dir).cooled_down():
        t0 = time.perf_counter()
        embedder = embedder_of(ckpt)
        where = dict(run=run, seed=seed, fraction=fraction, data_pct=100.0 * fraction, curation=curation,
                     examples_seen=seen,
                     budget=seen / total_examples, checkpoint=str(ckpt), profile=record["profile"],
                     model=record["model"])
        for source, benches in suites.items():
            for name, fn in benches.items():
                t1 = time.perf_counter()
                got = fn(embedder, prompts_of[source], shots)
                here = {**where, "benchmark": name, "source": source}
                write_results(got, out_dir / run / ckpt.name / source,
                              {**record, **here, "seconds": time.perf_counter() - t1})
                rows += [{**here, **{k: r[k] for k in ("task", "metric", "value", "se", "n")}} for r in got]
                items.append(items_table(got, here))
        benchmarks = sum(len(b) for b in suites.values())
        progress(f"{run} {ckpt.name}: {benchmarks} benchmarks in {time.perf_counter() - t0:.1f} s")
    return pd.DataFrame(rows, columns=list(ROW_COLUMNS)), pd.concat(items, ignore_index=True)


def run(params: dict, name: str | None = None) -> dict[str, dict]:
    """The evaluate stage on the stage's params `params` (the blocks notebooks/06_evaluate.ipynb's parameters cell
    holds): every run the study plan trains, or run `name` alone; returns {run: its metrics record}
    (metrics/evaluate/<run>.json)."""
    # and the pool's kind, sample.source: what the study can run on it
    p = validate({**{k: params[k] for k in BLOCKS if k in params}, "sample": {"source": params["sample"]["source"]}},
                 partial=("sample",))
    p = apply_plan(p)[0]
    if name is not None and name not in p.runs:
        raise ValueError(f"run {name!r} is not evaluated: not a run of params' runs, or the plan skips it "
                         f"(runs evaluated: {sorted(p.runs)})")
    return evaluate_runs(p, list(p.runs) if name is None else [name])


def results_table(names: list[str], out_dir: str | Path = OUT_DIR) -> pd.DataFrame:
    """The tidy rows (ROW_COLUMNS) of the runs `names`, concatenated: their <out_dir>/<run>.parquet."""
    return pd.concat([pd.read_parquet(Path(out_dir) / f"{n}.parquet") for n in names], ignore_index=True)


def evaluate_runs(p: Params, names: list[str], runs_dir: str | Path = "runs", out_dir: str | Path = OUT_DIR,
                  records_dir: str | Path = ".", progress: Callable = print) -> dict[str, dict]:
    """Evaluate the runs `names` of validated params `p`: every cool-down checkpoint under <runs_dir>/<name>, every
    analog with a size and every real set with a folder in `evaluate`.

    Writes, per run, <out_dir>/<name>/<checkpoint>/<source>/<benchmark>.json, the tidy table
    <out_dir>/<name>.parquet, the items <out_dir>/<name>/items.parquet and
    <records_dir>/metrics/evaluate/<name>.json (the final checkpoint's results, timings, provenance).
    Returns {run: its metrics record}.
    """
    out_dir, runs_dir = Path(out_dir), Path(runs_dir)
    evaluate_params = p.evaluate
    key = evaluate_params.key
    check_code_version("evaluate")  # a current evaluation is one this code made
    fingerprints = {name: evaluation_fingerprint(p, name, runs_dir / name, TOKENIZER_PATH) for name in names}
    # the fingerprint is written last: results beside a current fingerprint are complete
    todo = [n for n in names if not (is_current(out_dir / n, fingerprints[n]) and (out_dir / f"{n}.parquet").is_file()
                                     and (out_dir / n / "metrics.json").is_file())]
    for n in names:
        if n not in todo:
            progress(f"{n}: {out_dir / n} holds its results from the same inputs: not evaluated again")
    if todo:
        t0 = time.perf_counter()
        px, max_len = p.train.image_px, p.tokenizer.max_len
        tokenizer = Tokenizer(TOKENIZER_PATH)
        suites, facts = {}, {}
        sizes = {k: v for k, v in evaluate_params.analogs.items() if v > 0}
        if sizes:
            train_sizes = {k: v for k, v in evaluate_params.train_sizes.items() if k in sizes and v > 0}
            suite = analog_suite(build_world(p.world), px, sizes, train_sizes, key, progress)
            suites["analog"] = {b: (lambda emb, pr, shots, b=b: evaluate_analog(suite, b, emb, pr, shots))
                                for b in sizes}
            facts = analog_facts(suite)
        real = {k: real_eval.LOADERS[k](root) for k, root in evaluate_params.real_sets.items() if root}
        if real:
            suites["real"] = real_eval.real_suite(real, px, key)
        if not suites:
            raise ValueError("evaluate: no analog has a size > 0 and no real set has a folder; nothing to evaluate")
        prompts_of = {source: Prompts(tuple(getattr(evaluate_params.templates, source)))
                      for source in ("analog", "real")}
        setup_s = time.perf_counter() - t0
        for i, name in enumerate(todo):
            progress(f"[{i + 1}/{len(todo)}] evaluating run {name}")
            t1 = time.perf_counter()
            run = resolve(p, name)
            # results of earlier inputs go first: a checkpoint that is gone leaves no JSON behind
            shutil.rmtree(out_dir / name, ignore_errors=True)
            (out_dir / f"{name}.parquet").unlink(missing_ok=True)
            # the run's own model (the model axis), else params' model
            model = run.model.model_dump()
            model_config = {**model, "text": {**model["text"], "vocab_size": tokenizer.vocab_size}}
            record = dict(profile=p.profile, model=run.model_name, evaluate=evaluate_params.model_dump(), key=key,
                          run_params=run.entry.model_dump(), provenance=provenance(p.profile, p.dump()))
            table, items = evaluate_run(
                name, runs_dir / name, pool_share(run), run.seed, p.train.examples_seen, suites,
                lambda ckpt, model_config=model_config: checkpoint_embedder(ckpt, model_config, tokenizer, px, max_len,
                                                                            evaluate_params.batch_size),
                prompts_of, out_dir, record, evaluate_params.shots, progress, run.curation)
            (out_dir / name).mkdir(parents=True, exist_ok=True)
            table.to_parquet(out_dir / f"{name}.parquet", index=False)
            items.to_parquet(out_dir / name / "items.parquet", index=False)
            write_json(out_dir / name / "analogs.json",
                       {"key": key, "key_use": evaluate_params.use_key, "analogs": facts})
            last = table[table["examples_seen"] == table["examples_seen"].max()]
            metrics = {
                "run": name, **run.entry.model_dump(), "seed": run.seed, "key": key, "key_use": evaluate_params.use_key,
                "checkpoints": sorted(int(s) for s in table["examples_seen"].unique()),
                "final": {f"{r.source}/{r.task}": {"value": r.value, "se": r.se, "n": r.n, "metric": r.metric}
                          for r in last.itertuples()},
                "wall_s": time.perf_counter() - t1, "setup_s": setup_s, "fingerprint": fingerprints[name],
                "provenance": record["provenance"],
            }
            write_json(out_dir / name / "metrics.json", metrics)
            save_fingerprint(out_dir / name, fingerprints[name])  # written last: a run killed before is evaluated again
    out = {}
    for name in names:
        out[name] = read_json(out_dir / name / "metrics.json")
        write_json(Path(records_dir) / "metrics/evaluate" / f"{name}.json", out[name])
    return out
