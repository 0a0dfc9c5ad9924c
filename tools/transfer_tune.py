"""Tune the transfer recipe on the development key: one run's final checkpoint transferred under each recipe of a
small grid, graded on the dev key's test draw (never the report key's), one row per recipe.

    python tools/transfer_tune.py --run s100 --setting frozen --set peak_lr=0.003,0.01 --set steps=200,400

Each --set names a key of params.yaml's `transfer` block and the values to try (the grid is their product); the
other keys keep the profile's values. Prints the average (Table 2's), each family's score and the time; needs the
run trained (dvc repro train) and the tokenizer.
"""
from __future__ import annotations

import argparse
import itertools
import time

import pandas as pd
import yaml

from vlscale.allocator import keep_freed_memory
from vlscale.config import load_params
from vlscale.data.tokenizer import TOKENIZER_PATH, Tokenizer
from vlscale.runs.layout import RunDir
from vlscale.runs.settings import resolve
from vlscale.transfer import results, stage
from vlscale.transfer.run import transfer
from vlscale.world.spec import build_world


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default="s100")
    parser.add_argument("--setting", choices=("frozen", "unfrozen"), default="frozen")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=V1,V2",
                        help="a transfer key and the values to try")
    parser.add_argument("--runs-dir", default="runs")
    args = parser.parse_args(argv)
    keep_freed_memory()  # as the transfer stage does (vlscale.allocator)
    p = load_params()
    grid = {}
    for item in args.set:
        key, _, values = item.partition("=")
        if key not in type(p.transfer).model_fields:
            raise SystemExit(f"--set {item}: transfer has no key {key!r}")
        grid[key] = [yaml.safe_load(v) for v in values.split(",")]
    run = resolve(p, args.run)
    _, checkpoint = RunDir(f"{args.runs_dir}/{args.run}").cooled_down()[-1]
    tokenizer = Tokenizer(TOKENIZER_PATH)
    world = build_world(p.world)
    tower = stage.pretrained(p, args.run, checkpoint, tokenizer)
    dev = p.evaluate.keys.dev
    print(f"{args.run} ({checkpoint.name}), {args.setting}, dev key {dev}")
    drawn = {}
    for values in itertools.product(*grid.values()):
        block = p.transfer.model_copy(update=dict(zip(grid, values)))
        sizes = (block.train_images, block.test_images, block.prompt_len, block.answer_len)
        if sizes not in drawn:
            drawn[sizes] = stage._examples(world, tokenizer, block, dev, p.train.image_px, 256)
        train, test = drawn[sizes]
        llm = stage.decoder_config(tokenizer, block, run.model.image, p.train.image_px, block.answer_len)
        t0 = time.perf_counter()
        got = transfer(tower, run.model.image, train, test, tokenizer, llm, stage.recipe(block, args.setting),
                       block.seed + run.seed, block.answer_len, 256)
        scores = results.task_scores(pd.DataFrame(got["rows"]))
        families = results.family_scores(scores)
        print(", ".join(f"{k}={v}" for k, v in zip(grid, values)),
              f"| average {results.average(scores):.1f} |",
              " ".join(f"{k} {v:.1f}" for k, v in families.items()), "|",
              " ".join(f"{k} {v:.1f}" for k, v in scores.items()),
              f"| final loss {got['losses'][-1]:.3f} | {time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
