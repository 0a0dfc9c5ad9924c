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

`run_stage` evaluates every run in one process: the analogs are drawn and rendered once for all of them.
A run whose results were made from the same inputs (its fingerprint: the params the stage reads, the
run's training fingerprint and checkpoints, the tokenizer and the vlscale source) is not evaluated
again; its metrics record is rewritten from its results.
"""
from __future__ import annotations

import functools
import hashlib
import json
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from vlscale.config import fingerprinted_run, model_name, run_model, run_train
from vlscale.evals.embedder import Embedder, Prompts

ROW_COLUMNS = ("run", "seed", "fraction", "data_pct", "curation", "examples_seen", "budget", "checkpoint", "profile",
               "model", "benchmark", "source", "task", "metric", "value", "se", "n")
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
                 progress: Callable = print, curation: str = "natural") -> tuple[pd.DataFrame, pd.DataFrame]:
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
        progress(f"{run} {ckpt.name}: {sum(len(b) for b in suites.values())} benchmarks in {time.perf_counter() - t0:.1f} s")
    return pd.DataFrame(rows, columns=list(ROW_COLUMNS)), pd.concat(items, ignore_index=True)


def run_curation(p: dict, name: str, filter_dir: str | Path | None = None) -> tuple[float, str]:
    """(the share of the pool run `name` trains on, its curation: "natural", "rebalanced" or "filter/<arm>").
    A filter arm's share is its size over the pool's (the filter stage's manifest)."""
    run = p["runs"][name]
    if run.get("filter"):
        from vlscale.filtering.manifest import FILTER_DIR, read_manifest

        manifest = read_manifest(filter_dir or FILTER_DIR)
        return manifest["k"] / manifest["pool_pairs"], f"filter/{run['filter']}"
    return run["fraction"], "rebalanced" if run.get("rebalanced") else "natural"


def run_seed(p: dict, name: str) -> int:
    """The training seed of run `name`: its own `seed`, else train.seed."""
    return run_train(p, name)["seed"]


def run_stage(p: dict, names: str | list[str] | None = None, runs_dir: str | Path = "runs",
              out_dir: str | Path = "results/evaluate", records_dir: str | Path = ".",
              progress: Callable = print) -> pd.DataFrame:
    """The evaluate stage for the runs `names` (default: every run) of resolved params `p`: every cool-down
    checkpoint under <runs_dir>/<name>, every analog with a size and every real set with a folder in `evaluate`.

    Writes, per run, <out_dir>/<name>/<checkpoint>/<source>/<benchmark>.json, the tidy table
    <out_dir>/<name>.parquet, the items <out_dir>/<name>/items.parquet and
    <records_dir>/metrics/evaluate/<name>.json (the final checkpoint's results, timings, provenance).
    Returns the runs' tidy tables, concatenated.
    """
    from vlscale.data.tokenizer import TOKENIZER_PATH, Tokenizer
    from vlscale.evals import real_eval
    from vlscale.evals.analog_eval import analog_facts, analog_suite, evaluate_analog
    from vlscale.provenance import provenance
    from vlscale.world.spec import build_world

    names = list(p["runs"]) if names is None else [names] if isinstance(names, str) else list(names)
    out_dir, runs_dir = Path(out_dir), Path(runs_dir)
    E, T = p["evaluate"], p["train"]
    key = E["keys"][E["use_key"]]
    fingerprints = {name: evaluation_fingerprint(p, name, runs_dir / name) for name in names}
    todo = [n for n in names if _saved_fingerprint(out_dir / n) != fingerprints[n]]
    tables = {n: pd.read_parquet(out_dir / f"{n}.parquet") for n in names if n not in todo}
    for n in tables:
        progress(f"{n}: {out_dir / n} holds its results from the same inputs: not evaluated again")
    if todo:
        t0 = time.perf_counter()
        px, max_len = T["image_px"], p["tokenizer"]["max_len"]
        tokenizer = Tokenizer(TOKENIZER_PATH)
        suites, facts = {}, {}
        sizes = {k: v for k, v in E["analogs"].items() if v > 0}
        if sizes:
            suite = analog_suite(build_world(p["world"]), px, sizes,
                                 {k: v for k, v in E["train_sizes"].items() if k in sizes and v > 0}, key, progress)
            suites["analog"] = {b: (lambda emb, pr, shots, b=b: evaluate_analog(suite, b, emb, pr, shots))
                                for b in sizes}
            facts = analog_facts(suite)
        real = {k: real_eval.LOADERS[k](root) for k, root in E["real_sets"].items() if root}
        if real:
            suites["real"] = real_eval.real_suite(real, px, key)
        if not suites:
            raise ValueError("evaluate: no analog has a size > 0 and no real set has a folder; nothing to evaluate")
        prompts_of = {source: Prompts(tuple(E["templates"][source])) for source in ("analog", "real")}
        setup_s = time.perf_counter() - t0
        for i, name in enumerate(todo):
            progress(f"[{i + 1}/{len(todo)}] evaluating run {name}")
            t1 = time.perf_counter()
            run = p["runs"][name]
            # results of earlier inputs go first: a checkpoint that no longer exists leaves no JSON behind
            shutil.rmtree(out_dir / name, ignore_errors=True)
            (out_dir / f"{name}.parquet").unlink(missing_ok=True)
            model = run_model(p, name)  # the run's own model (the model axis), else params' model
            model_config = {**model, "text": {**model["text"], "vocab_size": tokenizer.vocab_size}}
            record = dict(profile=p["profile"], model=model_name(model), evaluate=E, key=key, run_params=run,
                          provenance=provenance(p["profile"], p))
            fraction, curation = run_curation(p, name)
            table, items = evaluate_run(
                name, runs_dir / name, fraction, run_seed(p, name), T["examples_seen"], suites,
                lambda ckpt, model_config=model_config: checkpoint_embedder(ckpt, model_config, tokenizer, px, max_len,
                                                                            E["batch_size"]),
                prompts_of, out_dir, record, E["shots"], progress, curation)
            (out_dir / name).mkdir(parents=True, exist_ok=True)
            table.to_parquet(out_dir / f"{name}.parquet", index=False)
            items.to_parquet(out_dir / name / "items.parquet", index=False)
            (out_dir / name / "analogs.json").write_text(
                json.dumps({"key": key, "key_use": E["use_key"], "analogs": facts}, indent=1))
            last = table[table["examples_seen"] == table["examples_seen"].max()]
            metrics = {
                "run": name, **run, "seed": run_seed(p, name), "key": key, "key_use": E["use_key"],
                "checkpoints": sorted(int(s) for s in table["examples_seen"].unique()),
                "final": {f"{r.source}/{r.task}": {"value": r.value, "se": r.se, "n": r.n, "metric": r.metric}
                          for r in last.itertuples()},
                "wall_s": time.perf_counter() - t1, "setup_s": setup_s, "fingerprint": fingerprints[name],
                "provenance": record["provenance"],
            }
            (out_dir / name / "metrics.json").write_text(json.dumps(metrics, indent=1, default=str))
            # written last: a run killed before this line is evaluated again
            (out_dir / name / "fingerprint.json").write_text(json.dumps({"fingerprint": fingerprints[name]}))
            tables[name] = table
    metrics_dir = Path(records_dir) / "metrics/evaluate"
    metrics_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        (metrics_dir / f"{name}.json").write_text((out_dir / name / "metrics.json").read_text())
    return pd.concat([tables[n] for n in names], ignore_index=True)


def _saved_fingerprint(run_out: Path) -> str | None:
    path = run_out / "fingerprint.json"
    ok = path.is_file() and (run_out / "metrics.json").is_file() and run_out.with_suffix(".parquet").is_file()
    return json.loads(path.read_text())["fingerprint"] if ok else None


def evaluation_fingerprint(p: dict, name: str, run_dir: Path) -> str:
    """sha256 of everything a run's results are made from: the params the stage reads (all but the other
    runs), the run's training fingerprint and cool-down checkpoints (their step and final loss), the
    tokenizer model and every file of the vlscale package (a code change evaluates again)."""
    from vlscale.data.tokenizer import TOKENIZER_PATH
    from vlscale.training.checkpoint import saved_params_meta

    h = hashlib.sha256()
    params = {k: v for k, v in p.items() if k != "runs"}
    h.update(json.dumps({"params": params, "run": fingerprinted_run(p["runs"][name]), "model": run_model(p, name)},
                        sort_keys=True, default=str).encode())
    stamp = run_dir / "fingerprint.json"
    h.update(stamp.read_bytes() if stamp.is_file() else b"untrained")
    if (run_dir / "cooldown").is_dir():
        for _, ckpt in checkpoints(run_dir):
            meta = saved_params_meta(ckpt)
            h.update(json.dumps({"checkpoint": ckpt.name, "meta": meta}, sort_keys=True, default=str).encode())
    tokenizer = Path(TOKENIZER_PATH)
    h.update(tokenizer.read_bytes() if tokenizer.is_file() else b"no tokenizer")
    h.update(_package_digest().encode())
    return h.hexdigest()[:16]


@functools.cache
def _package_digest() -> str:
    """sha256 of every file of the vlscale package (read once per process, shared by every run)."""
    h = hashlib.sha256()
    package = Path(__file__).resolve().parents[1]
    for f in sorted(package.rglob("*")):
        if f.is_file() and "__pycache__" not in f.parts:
            h.update(str(f.relative_to(package)).encode() + f.read_bytes())
    return h.hexdigest()
