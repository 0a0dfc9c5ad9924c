"""The allocator setting of vlscale.allocator against glibc's defaults, side by side in one run: a SigLIP training
step (the profile's model and batch, fed from the real input stream) and a transfer training step (frozen and
unfrozen tower), each timed in a fresh process with VLSCALE_SYSTEM_MALLOC=1 (glibc's defaults) and without it (the
setting). Prints ms per step (median of the timed steps), the kernel's share of the process's CPU time and the
peak memory, and checks that every step's loss is the same both ways.

    python bench/allocator.py [--profile cpu] [--steps 20]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path


def _median_ms(step, args_of, steps: int, warmup: int = 3) -> tuple[float, list[float]]:
    """(ms per step, median over the timed steps; every step's loss)."""
    import jax
    import numpy as np

    times, losses = [], []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        loss = jax.block_until_ready(step(*args_of(i)))
        if i >= warmup:
            times.append(time.perf_counter() - t0)
        losses.append(float(loss))
    return 1000 * float(np.median(times)), losses


def _siglip_step(p, steps: int) -> tuple[float, list[float]]:
    sys.path.insert(0, str(Path(__file__).parent))
    from train_throughput import _tokenizer
    from vlscale.data.input import SyntheticSource
    from vlscale.data.sampling import synthetic_subsets
    from vlscale.training import mesh as meshlib
    from vlscale.training.run import trainer_for
    from vlscale.world.spec import build_world

    world = build_world(p.world)
    subsets = synthetic_subsets(world, min(p.sample.pool_size, 10**8), p.sample.key)
    source = SyntheticSource(world, subsets, 1.0)
    trainer = trainer_for(p, world, source, _tokenizer(p, world, subsets))
    fn, _ = trainer.step_fn(None)
    it = trainer.inputs.iterator()
    batches = [meshlib.global_batch(trainer.mesh, next(it)) for _ in range(8)]

    def step(i):
        trainer.state, metrics = fn(trainer.state, batches[i % len(batches)], i)
        return metrics["loss"]

    return _median_ms(step, lambda i: (i,), steps)


def _transfer_steps(p, steps: int) -> dict[str, tuple[float, list[float]]]:
    from vlscale.data.tokenizer import TOKENIZER_PATH, Tokenizer
    from vlscale.transfer import fit, stage
    from vlscale.transfer.model import Model
    from vlscale.transfer.run import init_params
    from vlscale.world.spec import build_world

    block, tokenizer = p.transfer, Tokenizer(TOKENIZER_PATH)
    train, _ = stage._examples(build_world(p.world), tokenizer, block, p.evaluate.keys.dev, p.train.image_px, 256)
    texts = train.texts
    model = Model(img=p.model.image,
                  llm=stage.decoder_config(tokenizer, block, p.model.image, p.train.image_px, block.answer_len))
    params = init_params(model, train, 0)
    batches = fit.batch_order(len(train.tasks.image), steps + 3, block.batch_size, 0)
    capacity = fit.capacity_for(texts, batches)
    out = {}
    for setting in ("frozen", "unfrozen"):
        recipe = stage.recipe(block, setting)
        tx = fit.optimizer(params, recipe)
        state = tx.init(params)
        images, image_is = ((fit.encode_images(model, params, train.images), "encoded") if recipe.frozen
                            else (train.images, "pixels"))
        train_step = fit.make_train_step(model, tx, image_is)

        def step(*args, train_step=train_step):  # trained from the same state each step: its loss
            return train_step(*args)[2]

        def args_of(i, state=state, images=images):
            rows = batches[i]
            return (params, state, images[train.tasks.image[rows]], texts.text[rows], texts.input_mask[rows],
                    texts.mask_ar[rows], fit.pack(texts, rows, capacity))

        out[f"transfer {setting}"] = _median_ms(step, args_of, steps)
    return out


def worker(profile: str, steps: int) -> dict:
    from vlscale import allocator
    from vlscale.config import read_params, validate

    allocator.keep_freed_memory()  # as `import vlscale.transfer` does, before any step (VLSCALE_SYSTEM_MALLOC=1: not)
    p = validate(read_params("params.yaml", profile), "params.yaml")
    got = {"siglip train": _siglip_step(p, steps), **_transfer_steps(p, steps)}
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"set": allocator.keep_freed_memory(), "ms": {k: ms for k, (ms, _) in got.items()},
            "losses": {k: losses for k, (_, losses) in got.items()},
            "kernel_share": usage.ru_stime / (usage.ru_utime + usage.ru_stime), "max_rss_mb": usage.ru_maxrss / 1024}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.profile, args.steps)))
        return
    ways = {}
    for name, opt_out in (("glibc defaults", "1"), ("vlscale.allocator", "0")):
        env = {**os.environ, "VLSCALE_SYSTEM_MALLOC": opt_out}
        done = subprocess.run([sys.executable, __file__, "--worker", "--profile", args.profile, "--steps",
                               str(args.steps)], env=env, capture_output=True, text=True, check=True)
        ways[name] = json.loads(done.stdout.strip().splitlines()[-1])
    old, new = ways["glibc defaults"], ways["vlscale.allocator"]
    if old["set"] or not new["set"]:
        raise SystemExit(f"the allocator was not set as asked (defaults: {old['set']}, setting: {new['set']})")
    same = old["losses"] == new["losses"]
    print(f"profile {args.profile}; ms per step, median of {args.steps}; every step's loss the same both ways: {same}")
    print(f"{'step':<20}{'glibc defaults':>16}{'vlscale.allocator':>19}{'speed-up':>10}")
    for step in old["ms"]:
        print(f"{step:<20}{old['ms'][step]:>16.1f}{new['ms'][step]:>19.1f}{old['ms'][step] / new['ms'][step]:>9.2f}x")
    print(f"{'kernel share of CPU':<20}{old['kernel_share']:>16.1%}{new['kernel_share']:>19.1%}")
    print(f"{'peak RSS (MB)':<20}{old['max_rss_mb']:>16.0f}{new['max_rss_mb']:>19.0f}")
    if not same:
        raise SystemExit("the allocator setting changed a loss")


if __name__ == "__main__":
    main()
