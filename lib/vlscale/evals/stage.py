"""The evaluate stage: every protocol of the paper on every benchmark, for every cool-down checkpoint
of one run.

For one checkpoint, `evaluate_run` builds an Embedder (evals/embedder.py) that embeds each benchmark's
images and texts once, and runs every protocol each benchmark serves on those embeddings (the analogs:
evals/analog_eval.py; the real sets: evals/real_eval.py). Outputs, under results/evaluate/:

    <run>/<checkpoint>/<source>/<benchmark>.json   one JSON per (checkpoint, benchmark), with provenance
    <run>.parquet                                   tidy rows (ROW_COLUMNS): one per (checkpoint, task)
    <run>/items.parquet                             per-item outcomes (ITEM_COLUMNS), for the paired
                                                    bootstrap of analysis/uncertainty.py
    <run>/analogs.json                              each analog's size, caption ceilings and share of
                                                    captions equal to English, per language

Which held-out draws the analogs use is `evaluate.keys[evaluate.use_key]`: "dev" for tuning the world
and the analogs, "report" (a key nobody tuned on) for what the README and paper report.
"""
from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from vlscale.config import run_train
from vlscale.evals.embedder import Embedder, Prompts

ROW_COLUMNS = ("run", "seed", "fraction", "data_pct", "examples_seen", "budget", "checkpoint", "profile", "model",
               "benchmark", "source", "task", "metric", "value", "se", "n")
ITEM_COLUMNS = ("run", "seed", "data_pct", "examples_seen", "source", "benchmark", "task", "item", "value")
CHECKPOINT_DIR = re.compile(r"seen_(\d+)$")


def checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """The cool-down checkpoints of a train-stage run: [(examples seen, directory)], by examples seen."""
    found = []
    for d in sorted((Path(run_dir) / "cooldown").glob("seen_*")):
        m = CHECKPOINT_DIR.search(d.name)
        if m and d.is_dir():
            found.append((int(m.group(1)), d))
    if not found:
        raise FileNotFoundError(f"{run_dir}/cooldown has no seen_<examples> checkpoints; run its train stage first")
    return sorted(found)


def checkpoint_embedder(checkpoint: Path, model_config: dict, tokenizer, px: int, max_len: int,
                        batch_size: int) -> Embedder:
    """An Embedder over the SigLIP checkpoint at `checkpoint` (an Orbax cool-down directory)."""
    from vlscale import siglip

    model, params = siglip.load(checkpoint, model_config, image_size_px=px, text_len=max_len)
    return Embedder(lambda x: siglip.embed_images(model, params, x), lambda t: siglip.embed_texts(model, params, t),
                    lambda texts: tokenizer.encode(texts, max_len), batch_size)


def write_results(rows: list[dict], out_dir: Path, record: dict) -> Path:
    """One JSON per benchmark: its results keyed by task, with the run, checkpoint and provenance."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{record['benchmark']}.json"
    results = {r["task"]: {k: r[k] for k in ("metric", "value", "se", "n")} for r in rows}
    path.write_text(json.dumps({**record, "results": results}, indent=1, default=str))
    return path


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
                 progress: Callable = print) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Evaluate every cool-down checkpoint of `run` on every benchmark of `suites`.

    suites: source ("analog" | "real") -> {benchmark name: fn(embedder, prompts, shots) -> rows}.
    embedder_of(checkpoint dir) -> Embedder. prompts_of: source -> Prompts. record: what every result
    carries (profile, model, params, provenance). Writes <out_dir>/<run>/<checkpoint>/<source>/<benchmark>.json;
    returns (tidy rows, per-item outcomes).
    """
    rows, items = [], []
    for seen, ckpt in checkpoints(run_dir):
        t0 = time.perf_counter()
        embedder = embedder_of(ckpt)
        where = dict(run=run, seed=seed, fraction=fraction, data_pct=100.0 * fraction, examples_seen=seen,
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
        progress(f"{run} {ckpt.name}: {sum(len(b) for b in suites.values())} benchmarks in {time.perf_counter() - t0:.1f} s")
    return pd.DataFrame(rows, columns=list(ROW_COLUMNS)), pd.concat(items, ignore_index=True)


def run_seed(p: dict, name: str) -> int:
    """The training seed of run `name`: its own `seed`, else train.seed."""
    return run_train(p, name)["seed"]


def run_stage(p: dict, name: str, runs_dir: str | Path = "runs", out_dir: str | Path = "results/evaluate",
              records_dir: str | Path = ".", progress: Callable = print) -> pd.DataFrame:
    """The evaluate stage for run `name` of resolved params `p`: every cool-down checkpoint under
    <runs_dir>/<name>, every analog with a size and every real set with a folder in `evaluate`.

    Writes <out_dir>/<name>/<checkpoint>/<source>/<benchmark>.json, the tidy table
    <out_dir>/<name>.parquet, the items <out_dir>/<name>/items.parquet and
    <records_dir>/metrics/evaluate/<name>.json (the final checkpoint's results, timings, provenance).
    Returns the tidy table.
    """
    from vlscale.data.tokenizer import TOKENIZER_PATH, Tokenizer
    from vlscale.evals import real_eval
    from vlscale.evals.analog_eval import analog_facts, analog_suite, evaluate_analog
    from vlscale.provenance import provenance
    from vlscale.world.spec import build_world

    t0 = time.perf_counter()
    E, T = p["evaluate"], p["train"]
    run = p["runs"][name]
    key = E["keys"][E["use_key"]]
    px, max_len = T["image_px"], p["tokenizer"]["max_len"]
    tokenizer = Tokenizer(TOKENIZER_PATH)
    model_config = {**p["model"], "text": {**p["model"]["text"], "vocab_size": tokenizer.vocab_size}}
    suites, facts = {}, {}
    sizes = {k: v for k, v in E["analogs"].items() if v > 0}
    if sizes:
        suite = analog_suite(build_world(p["world"]), px, sizes,
                             {k: v for k, v in E["train_sizes"].items() if k in sizes and v > 0}, key, progress)
        suites["analog"] = {b: (lambda emb, pr, shots, b=b: evaluate_analog(suite, b, emb, pr, shots)) for b in sizes}
        facts = analog_facts(suite)
    real = {k: real_eval.LOADERS[k](root) for k, root in E["real_sets"].items() if root}
    if real:
        suites["real"] = real_eval.real_suite(real, px, key)
    if not suites:
        raise ValueError("evaluate: no analog has a size > 0 and no real set has a folder; nothing to evaluate")
    image_cfg = p["model"]["image"]
    model_name = image_cfg.get("variant") or f"w{image_cfg['width']}d{image_cfg['depth']}p{image_cfg['patch_size'][0]}"
    record = dict(profile=p["profile"], model=model_name, evaluate=E, key=key, run_params=run,
                  provenance=provenance(p["profile"], p))
    prompts_of = {source: Prompts(tuple(E["templates"][source])) for source in ("analog", "real")}
    out_dir = Path(out_dir)
    table, items = evaluate_run(
        name, Path(runs_dir) / name, run["fraction"], run_seed(p, name), T["examples_seen"], suites,
        lambda ckpt: checkpoint_embedder(ckpt, model_config, tokenizer, px, max_len, E["batch_size"]),
        prompts_of, out_dir, record, E["shots"], progress)
    (out_dir / name).mkdir(parents=True, exist_ok=True)
    table.to_parquet(out_dir / f"{name}.parquet", index=False)
    items.to_parquet(out_dir / name / "items.parquet", index=False)
    (out_dir / name / "analogs.json").write_text(json.dumps({"key": key, "key_use": E["use_key"], "analogs": facts},
                                                            indent=1))
    last = table[table["examples_seen"] == table["examples_seen"].max()]
    metrics = {
        "run": name, **run, "seed": run_seed(p, name), "key": key, "key_use": E["use_key"],
        "checkpoints": sorted(int(s) for s in table["examples_seen"].unique()),
        "final": {f"{r.source}/{r.task}": {"value": r.value, "se": r.se, "n": r.n, "metric": r.metric}
                  for r in last.itertuples()},
        "wall_s": time.perf_counter() - t0, "provenance": record["provenance"],
    }
    metrics_dir = Path(records_dir) / "metrics/evaluate"
    metrics_dir.mkdir(parents=True, exist_ok=True)
    (metrics_dir / f"{name}.json").write_text(json.dumps(metrics, indent=1, default=str))
    return table
