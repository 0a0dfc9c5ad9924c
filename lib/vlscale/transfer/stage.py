"""The transfer stage (arXiv 2502.07617 §4.5, Tables 2 and 12): does a vision encoder pretrained on more data make a
better generative vision-language model?

For the final checkpoint of each natural run (every run without curation; with `transfer.replicates`, the seed
replicates too, else one run per data scale and model) and of the runs `transfer.extra_runs` names, in each setting of `transfer.settings` (frozen: the image tower stays as
pretrained; unfrozen: it is fine-tuned), a small PaliGemma-style model (vlscale.transfer.model) is trained on the
transfer tasks' training draw and graded on their test draw (vlscale.transfer.tasks, with the evaluation key). A
transfer is current, and not made again, while its fingerprint holds (vlscale.runs: the transfer block, the run's
settings, its training fingerprint, its checkpoint and the tokenizer, and the stage's code version).

Writes results/transfer/<run>/<setting>/{rows.parquet, summary.json, fingerprint.json}, results/transfer/rows.parquet
(every graded test example of every transfer), results/transfer/checks.parquet (the oracle and chance answers, graded)
and metrics/transfer.json: each transfer's task scores (exact match in %, CIDEr for captions), family and overall
averages, the oracle and chance levels, and finding 5's evidence (`evidence_records`: the 100% runs against the 10%
and 1% runs on the average, per setting, with training noise and test-image noise in each interval), which the paper
stage judges with the `verdicts` params, as every finding.
"""
from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from vlscale import siglip
from vlscale.allocator import keep_freed_memory
from vlscale.analysis import evidence, uncertainty
from vlscale.config import Params, TransferParams, validate
from vlscale.data.tokenizer import TOKENIZER_PATH, Tokenizer
from vlscale.files import read_json, write_json
from vlscale.models import vit
from vlscale.plan import Plan
from vlscale.plan import apply as apply_plan
from vlscale.provenance import provenance
from vlscale.runs.current import check_code_version, fingerprint, is_current, save_fingerprint, saved_fingerprint
from vlscale.runs.data import pool_share
from vlscale.runs.layout import RunDir, checkpoint_meta
from vlscale.runs.settings import resolve
from vlscale.transfer import coco, fit, tasks
from vlscale.transfer.results import (
    CHECKS,
    EVIDENCE,
    MODEL,
    SCORES,
    SKIPPED,
    average,
    average_draws,
    family_scores,
    task_scores,
)
from vlscale.transfer.run import Examples, grade, lay_out_tasks, majority_answers, transfer
from vlscale.world.render import render_jax, render_padded
from vlscale.world.spec import build_world

WHOLE = ("profile", "world", "tokenizer", "model", "train", "runs", "filter", "transfer")
OUT_DIR = Path("results/transfer")
METRICS_PATH = Path("metrics/transfer.json")
ROW_COLUMNS = ("run", "setting", "curation", "seed", "data_pct", "model", "examples_seen", "task", "image",
               "language", "exact_match", "cider")
CONCURRENT = 2  # transfers made at once (bench/transfer_stage.py)
UNSHAPING_KEYS = ("extra_runs", "replicates", "settings", "bootstrap")  # transfer keys no single transfer depends on


def stage_params(params: dict) -> tuple[Params, Plan]:
    """The stage's params validated (WHOLE, and in part the evaluate keys and the pool's kind), with the study plan
    applied (the runs the pool cannot have are left out, one printed line each); and the Plan."""
    p = validate({**{k: params[k] for k in WHOLE}, "evaluate": params["evaluate"],
                  "sample": {"source": params["sample"]["source"]}}, partial=("sample", "evaluate"))
    p, plan = apply_plan(p)
    unknown = [name for name in p.transfer.extra_runs if name not in p.runs]
    if unknown:
        raise ValueError(f"transfer.extra_runs names {unknown}, which are not runs the study trains "
                         f"(runs: {sorted(p.runs)})")
    return p, plan


def transferred_runs(p: Params) -> list[str]:
    """The natural runs (without transfer.replicates, one per data scale and model: the one with train.seed, else the
    first), then transfer.extra_runs."""
    natural = [resolve(p, name) for name in p.runs if resolve(p, name).curation == "natural"]
    if not p.transfer.replicates:
        chosen = {}
        for run in natural:
            scale = (run.fraction, run.model_name)
            if scale not in chosen or (run.seed == p.train.seed and chosen[scale].seed != p.train.seed):
                chosen[scale] = run
        natural = [run for run in natural if chosen[(run.fraction, run.model_name)] is run]
    names = [run.name for run in natural]
    return names + [name for name in p.transfer.extra_runs if name not in names]


def recipe(transfer_params: TransferParams, setting: str) -> fit.Recipe:
    """How a transfer in `setting` trains."""
    keys = ("steps", "batch_size", "peak_lr", "warmup_steps", "weight_decay", "grad_clip_norm", "tower_lr_scale")
    return fit.Recipe(**{k: getattr(transfer_params, k) for k in keys}, frozen=setting == "frozen")


def transfer_fingerprint(p: Params, name: str, setting: str, checkpoint: Path, run_dir: Path,
                         drawn: dict | None = None) -> str:
    """The fingerprint of run `name`'s transfer in `setting` (vlscale.runs.current's rule); `drawn`: what identifies
    a real draw beyond the params (COCO's images and references, hashed; empty for the world's tasks, which the
    world and evaluation key fix). The frozen setting does not read tower_lr_scale."""
    run = resolve(p, name)
    blocks = p.dump("world", "tokenizer")
    unshaping = UNSHAPING_KEYS + (("tower_lr_scale",) if setting == "frozen" else ())
    block = {k: v for k, v in p.transfer.model_dump().items() if k not in unshaping}
    settings = {"transfer": block, "setting": setting, "world": blocks["world"], "tokenizer": blocks["tokenizer"],
                "image_px": p.train.image_px, "run": run.hashed_entry, "model": run.model.model_dump()}
    if drawn:  # a real draw: its own identity, not the world's evaluation key
        settings["drawn"] = drawn
    else:
        settings["key"] = p.evaluate.key
    tokenizer = Path(TOKENIZER_PATH)
    inputs = {"training": saved_fingerprint(run_dir),
              "checkpoint": {"checkpoint": checkpoint.name, "meta": checkpoint_meta(checkpoint)},
              "tokenizer": hashlib.sha256(tokenizer.read_bytes()).hexdigest() if tokenizer.is_file() else None}
    return fingerprint("transfer", settings, inputs)


def image_tokens(image: dict, px: int) -> int:
    """The patch tokens of a tower config (big_vision's, a variant or explicit sizes) on px x px images."""
    patch = {**vit.decode_variant(image.get("variant")), **image}["patch_size"]
    return (px // patch[0]) * (px // patch[1])


def decoder_config(tokenizer, transfer_params: TransferParams, image: dict, px: int, answer_len: int) -> dict:
    """The decoder's fields: the tokenizer's vocabulary, transfer.decoder's sizes and a sequence long enough for
    the tower's image tokens, the prompt and an answer of `answer_len` pieces."""
    return {"vocab_size": tokenizer.vocab_size, **transfer_params.decoder.model_dump(),
            "max_len": image_tokens(image, px) + transfer_params.prompt_len + answer_len}


def pretrained(p: Params, name: str, checkpoint: Path, tokenizer) -> dict:
    """Run `name`'s SigLIP parameters from `checkpoint` (its model, the tokenizer's vocabulary)."""
    run = resolve(p, name)
    config = {**run.model.model_dump(), "text": {**run.model.text, "vocab_size": tokenizer.vocab_size}}
    return siglip.load(checkpoint, config, image_size_px=p.train.image_px, text_len=p.tokenizer.max_len)[1]


def _examples(world, tokenizer, transfer_params: TransferParams, key: int, px: int,
              batch_size: int) -> tuple[Examples, Examples]:
    """The training and the test draw, rendered and laid out."""
    render = render_jax(world, px)
    out = []
    for images, split in ((transfer_params.train_images, "train"), (transfer_params.test_images, "test")):
        drawn = tasks.draw(world, images, key, split)
        out.append(lay_out_tasks(drawn, render_padded(render, drawn.ids, batch_size), tokenizer,
                                 transfer_params.prompt_len, transfer_params.answer_len))
    return out[0], out[1]


def _world_draws(p: Params, tokenizer) -> tuple[Examples, Examples, pd.DataFrame, object, int, dict]:
    """The world's tasks (synthetic pool): the training and test draws, the oracle's and chance's graded rows, the
    grader, the answer length and what identifies the draw beyond the params (nothing)."""
    block = p.transfer
    train, test = _examples(build_world(p.world), tokenizer, block, p.evaluate.key, p.train.image_px, 256)
    checks = pd.concat([pd.DataFrame(grade(test.tasks, list(test.tasks.answers))).assign(check="oracle"),
                        pd.DataFrame(grade(test.tasks, majority_answers(train.tasks, test.tasks))).assign(
                            check="chance")], ignore_index=True)
    return train, test, checks, grade, block.answer_len, {}


def _coco_draws(p: Params, tokenizer, root: str) -> tuple[Examples, Examples, pd.DataFrame, object, int, dict]:
    """COCO captions (a real pool): the training and test draws (transfer.seed), the oracle (a held-out human
    reference) and the chance caption (the best single training caption), the grader (CIDEr on all of an image's
    references), the answer length (the pieces that hold 99% of the training captions, as transfer.answer_len does
    the world's answers) and what identifies the draw (its images and references, hashed)."""
    block, px = p.transfer, p.train.image_px
    coco_set = coco.load_coco(root)
    train_set, test_set, references = coco.draw(coco_set, block.train_images, block.test_images, block.seed)
    answer_len, fits = coco.answer_length(tokenizer, list(train_set.answers))
    print(f"COCO captions: answers of up to {answer_len} pieces ({100 * fits:.1f}% of the training captions whole)")
    out = [lay_out_tasks(drawn, coco.load_images(coco_set, drawn.ids, px), tokenizer, block.prompt_len,
                         answer_len) for drawn in (train_set, test_set)]
    drawn = [coco_set.examples["key"].iloc[train_set.ids].tolist(), list(train_set.answers),
             coco_set.examples["key"].iloc[test_set.ids].tolist(), references]
    identity = {"coco": hashlib.sha256(json.dumps(drawn, default=str).encode()).hexdigest(), "answer_len": answer_len}
    _, chance = coco.chance_answers(train_set, test_set, references, block.seed)
    checks = pd.concat([pd.DataFrame(coco.oracle_answers(test_set, references)).assign(check="oracle"),
                        pd.DataFrame(chance).assign(check="chance")], ignore_index=True)
    return out[0], out[1], checks, partial(coco.grade, references=references), answer_len, identity


def transfer_source(p: Params) -> str | None:
    """What the runs are transferred to: "world" (the world's tasks, a synthetic pool), "coco" (COCO captions,
    a real pool with evaluate.real_sets.coco), or None (a real pool without COCO: nothing to grade)."""
    if p.pool_kind == "synthetic":
        return "world"
    return "coco" if p.evaluate.real_sets.get("coco") else None


def measure(p: Params, runs_dir: str | Path = "runs", out_dir: str | Path = OUT_DIR,
            progress=print) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Every transfer (made afresh where not current): (graded rows, the oracle and chance checks' graded rows,
    timings)."""
    check_code_version("transfer")
    keep_freed_memory()  # XLA's per-step buffers from a heap that keeps them (vlscale.allocator)
    runs_dir, out_dir = Path(runs_dir), Path(out_dir)
    t0 = time.perf_counter()
    block, px = p.transfer, p.train.image_px
    tokenizer = Tokenizer(TOKENIZER_PATH)
    source = transfer_source(p)
    if source == "world":
        train, test, checks, grader, answer_len, drawn = _world_draws(p, tokenizer)
    else:
        train, test, checks, grader, answer_len, drawn = _coco_draws(p, tokenizer, p.evaluate.real_sets["coco"])
    setup_s = time.perf_counter() - t0
    names = transferred_runs(p)
    progress(f"{len(train.tasks.task)} training and {len(test.tasks.task)} test examples of "
             f"{len(set(train.tasks.task))} task(s) of the {source} ({setup_s:.1f} s); {len(names)} runs x "
             f"{len(block.settings)} settings to transfer")
    jobs = []  # (run name, its settings, setting, label, checkpoint, fingerprint, folder), in the tables' order
    for name in names:
        run = resolve(p, name)
        seen, checkpoint = RunDir(runs_dir / name).cooled_down()[-1]
        label = dict(run=name, curation=run.curation, seed=run.seed, data_pct=100 * pool_share(run),
                     model=run.model_name, examples_seen=seen)
        for setting in block.settings:
            jobs.append((name, run, setting, label, checkpoint,
                         transfer_fingerprint(p, name, setting, checkpoint, runs_dir / name, drawn),
                         out_dir / name / setting))

    def make(job) -> tuple[pd.DataFrame, dict]:
        name, run, setting, label, checkpoint, fp, where = job
        if is_current(where, fp):  # its saved results
            return pd.read_parquet(where / "rows.parquet"), read_json(where / "summary.json")
        got = transfer(pretrained(p, name, checkpoint, tokenizer), run.model.image, train, test, tokenizer,
                       decoder_config(tokenizer, block, run.model.image, px, answer_len),
                       recipe(block, setting), block.seed + run.seed, answer_len, 256, grader=grader)
        where.mkdir(parents=True, exist_ok=True)
        rows = pd.DataFrame(got["rows"]).assign(**label, setting=setting)
        rows["prediction"] = got["predictions"]
        rows.to_parquet(where / "rows.parquet", index=False)
        summary = {"run": name, "setting": setting, "checkpoint": str(checkpoint), "final_loss": got["losses"][-1],
                   "first_loss": got["losses"][0], "train_s": got["train_s"], "decode_s": got["decode_s"]}
        write_json(where / "summary.json", summary)
        save_fingerprint(where, fp)
        return rows, summary

    frames, timings = [], {}
    # CONCURRENT transfers at a time (threads: XLA runs outside the GIL), which compiles the frozen and the unfrozen
    # step side by side and overlaps one transfer's host work with the other's steps (bench/transfer_stage.py). Each
    # transfer's numbers do not depend on it; its recorded seconds are its wall time beside the other.
    pool = ThreadPoolExecutor(CONCURRENT)
    futures = [pool.submit(make, job) for job in jobs]
    try:
        for (name, _, setting, *_), future in zip(jobs, futures):
            rows, summary = future.result()
            timings[f"{name}/{setting}"] = summary["train_s"] + summary["decode_s"]
            frames.append(rows)
            progress(f"{name} {setting}: average {average(task_scores(rows)):.1f} (final loss "
                     f"{summary['final_loss']:.3f}, {timings[f'{name}/{setting}']:.0f} s)")
    finally:  # a failure (or an interrupt) cancels the transfers not yet started
        pool.shutdown(wait=True, cancel_futures=True)
    table = pd.concat(frames, ignore_index=True)[list(ROW_COLUMNS) + ["prediction"]]
    out_dir.mkdir(parents=True, exist_ok=True)
    table.to_parquet(out_dir / "rows.parquet", index=False)
    checks.to_parquet(out_dir / "checks.parquet", index=False)
    return table, checks, {"setup_s": setup_s, "transfers_s": timings, "wall_s": time.perf_counter() - t0}


def scale_name(pct: float) -> str:
    return f"{pct:g}"


def evidence_records(table: pd.DataFrame, chance: pd.DataFrame, transfer_params: TransferParams, model: str,
                     seed: int = 0) -> dict[str, dict]:
    """Finding 5's evidence (the natural runs of `model`, the params' model block), per setting, in the records the
    paper stage judges (paper/findings.py): "transfer/<setting>/<100>_minus_<p>" the average of the 100% runs
    minus that of each smaller data scale p; "level/transfer/<setting>/<p>%" each scale's average and
    "above_chance/transfer/<setting>/<p>%" its distance from the chance level's average (`chance`: the majority
    answers' graded rows, on the same test images), each with its interval: training noise (the pretraining seeds,
    pooled over every configuration with two or more) and test-image noise (paired bootstrap of the test images,
    `transfer.bootstrap` resamples)."""
    images = int(table["image"].max()) + 1
    counts = uncertainty.resample_counts(images, transfer_params.bootstrap, uncertainty._rng(seed, "transfer"))
    natural = table[(table["curation"] == "natural") & (table["model"] == model)]
    zero = evidence.constant("zero", 0.0, transfer_params.bootstrap)
    floor = evidence.Config("chance", [average(task_scores(chance))], average_draws(chance, counts)[None])
    records = {}
    for setting, rows in natural.groupby("setting", sort=False):
        configs = {}
        for pct, by_pct in rows.groupby("data_pct"):
            runs = sorted(by_pct["run"].unique())
            points = [average(task_scores(by_pct[by_pct["run"] == r])) for r in runs]
            draws = np.stack([average_draws(by_pct[by_pct["run"] == r], counts) for r in runs])
            configs[float(pct)] = evidence.Config(f"{scale_name(pct)}%", points, draws, tuple(runs))
        seed_var, seed_df = evidence.pooled_seed_variance(c.points for c in configs.values())
        churn = evidence.pooled_churn(c.draws for c in configs.values())
        for pct, config in configs.items():
            label = {"setting": setting, "data_pct": pct, "runs": list(config.runs)}
            level = evidence.difference(config, zero, seed_var, seed_df, b_trained=False, churn=churn)
            records[f"level/transfer/{setting}/{scale_name(pct)}%"] = {**level.record(), **label,
                                                                       "value": level.effect}
            above = evidence.difference(config, floor, seed_var, seed_df, b_trained=False, churn=churn)
            records[f"above_chance/transfer/{setting}/{scale_name(pct)}%"] = {**above.record(), **label,
                                                                              "chance": float(floor.points[0])}
        top = max(configs)
        for other in sorted(configs)[:-1]:
            d = evidence.difference(configs[top], configs[other], seed_var, seed_df, churn=churn)
            name = f"transfer/{setting}/{scale_name(top)}_minus_{scale_name(other)}"
            records[name] = {**d.record(), "setting": setting, "runs_a": list(configs[top].runs),
                             "runs_b": list(configs[other].runs)}
    return records


def summarise(table: pd.DataFrame, checks: pd.DataFrame, transfer_params: TransferParams, model: str) -> dict:
    """Each transfer's task, family and average scores; the oracle's and chance's; finding 5 (of `model`'s runs)."""
    scores = {}
    for (run, setting), rows in table.groupby(["run", "setting"], sort=False):
        task = task_scores(rows)
        first = rows.iloc[0]
        scores[f"{run}/{setting}"] = {"run": run, "setting": setting, "seed": int(first["seed"]),
                                      "data_pct": float(first["data_pct"]), "model": first["model"],
                                      "examples_seen": int(first["examples_seen"]), "tasks": task,
                                      "families": family_scores(task), "average": average(task)}
    levels = {check: {"tasks": task_scores(rows)} for check, rows in checks.groupby("check")}
    levels = {check: level | {"average": average(level["tasks"])} for check, level in levels.items()}
    return {SCORES: scores, CHECKS: levels, MODEL: model,
            EVIDENCE: evidence_records(table, checks[checks["check"] == "chance"], transfer_params, model)}


def run(params: dict) -> dict:
    """The transfer stage (module docstring); params: the blocks the stage declares. Returns the metrics it writes to
    metrics/transfer.json."""
    p, plan = stage_params(params)
    dumped = p.dump()
    record = {"plan": plan.record(), "params": p.transfer.model_dump(), "provenance": provenance(p.profile, dumped)}
    if transfer_source(p) is None:
        why = ("a real pool: the world's tasks grade only its own images, and evaluate.real_sets.coco names no COCO "
               "folder to transfer to")
        print(f"transfer skipped: {why}")
        metrics = {SKIPPED: why, SCORES: {}, CHECKS: {}, EVIDENCE: {}, **record}
        write_json(METRICS_PATH, metrics)
        return metrics
    table, checks, timings = measure(p)
    metrics = {**summarise(table, checks, p.transfer, p.model.name), "timings": timings, "source": transfer_source(p),
               **record}
    write_json(METRICS_PATH, metrics)
    return metrics


