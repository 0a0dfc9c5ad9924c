"""Where a training step's time goes: each part of the step timed on its own, on this machine.

    python bench/step_profile.py                  # the cpu profile at its batch size
    python bench/step_profile.py --batch 512 --trace /tmp/trace   # also a jax.profiler trace

Each row is a jit-compiled function fed the same real batch from the Grain input stream, timed over
--steps calls after a warm-up: the host input (ids, captions, tokens), the host→device transfer,
the renderer, each tower's forward pass, the full forward with the loss, forward + backward, and the
full step (backward + the optimiser update). Differences between rows are what each part adds.
"""
from __future__ import annotations

import argparse
import time

import jax

from train_throughput import _tokenizer  # noqa: E402  (bench/ is the script's folder)


def timed(fn, *args, steps: int) -> float:
    """Mean seconds per call of fn(*args) after two warm-up calls (compilation)."""
    for _ in range(2):
        jax.block_until_ready(fn(*args))
    t0 = time.perf_counter()
    for _ in range(steps):
        out = fn(*args)
    jax.block_until_ready(out)
    return (time.perf_counter() - t0) / steps


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--batch", type=int)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--set", action="append", default=[], metavar="BLOCK.KEY=VALUE")
    parser.add_argument("--trace", help="write a jax.profiler trace of a few full steps here")
    args = parser.parse_args()


    from vlscale.config import apply_sets, read_params, validate
    from vlscale.data.input import SyntheticSource
    from vlscale.data.sampling import synthetic_subsets
    from vlscale.training import mesh as meshlib
    from vlscale.training.run import trainer_for
    from vlscale.world.spec import build_world

    raw = read_params("params.yaml", args.profile)
    p = validate(apply_sets(raw, args.set), "params.yaml with --set")
    if args.batch:
        p = p.replace(train=p.train.model_copy(update={"batch_size": args.batch}))
    world = build_world(p.world)
    subsets = synthetic_subsets(world, min(p.sample.pool_size, 10**8), p.sample.key)
    source = SyntheticSource(world, subsets, 1.0)
    trainer = trainer_for(p, world, source, _tokenizer(p, world, subsets))
    batch_size = trainer.batch_size
    it = trainer.inputs.iterator()
    host = next(it)
    batch = meshlib.global_batch(trainer.mesh, host)
    params = trainer.state["params"]
    model, inputs = trainer.model, trainer.inputs
    rng = jax.random.key(0)

    def render(batch):
        return inputs.batch_images(batch)

    images = jax.jit(render)(batch)

    def image_fwd(params, images):
        return model.apply({"params": params}, images, None, train=True, rngs={"dropout": rng})[0]

    def text_fwd(params, tokens):
        return model.apply({"params": params}, None, tokens, train=True, rngs={"dropout": rng})[1]

    def loss(params, batch):
        return trainer._loss(params, trainer._images(batch), batch["tokens"], rng)

    def loss_given_images(params, images, tokens):
        return trainer._loss(params, images, tokens, rng)

    step, _ = trainer.step_fn(None)
    state = trainer.state

    def full_step(batch):
        nonlocal state
        state, m = step(state, batch, 0)
        return m["loss"]

    rows = [
        ("host input: ids, captions, tokens (Grain)", None, lambda: next(it)),
        ("host → device transfer", None, lambda: meshlib.global_batch(trainer.mesh, host)),
        ("render (in the step)", jax.jit(render), (batch,)),
        ("image tower forward", jax.jit(image_fwd), (params, images)),
        ("text tower forward", jax.jit(text_fwd), (params, batch["tokens"])),
        ("forward + loss, images given", jax.jit(loss_given_images), (params, images, batch["tokens"])),
        ("forward + backward, images given", jax.jit(jax.grad(loss_given_images)), (params, images, batch["tokens"])),
        ("render + forward + backward", jax.jit(jax.grad(loss)), (params, batch)),
        ("full step (+ clip, Adam, decay)", full_step, (batch,)),
    ]
    results = []
    for name, fn, a in rows:
        if fn is None:  # a host function: time it directly
            a()
            t0 = time.perf_counter()
            for _ in range(args.steps):
                jax.block_until_ready(a())
            s = (time.perf_counter() - t0) / args.steps
        else:
            s = timed(fn, *a, steps=args.steps)
        results.append((name, s))
        print(f"{name}: {1e3 * s:.1f} ms", flush=True)
    if args.trace:
        jax.profiler.start_trace(args.trace)
        for _ in range(3):
            jax.block_until_ready(full_step(batch))
        jax.profiler.stop_trace()

    model_params = p.model
    print(f"\nvlscale step profile — profile {args.profile}, batch {batch_size}, jax {jax.__version__}, "
          f"{trainer.mesh.devices.size} × {trainer.mesh.devices.flat[0].device_kind}")
    print(f"model: image {model_params.image}, text {model_params.text}; {p.train.image_px} px, "
          f"{p.tokenizer.max_len} tokens, {p.train.dtype}\n")
    full = results[-1][1]
    print("| part | ms / step | share of full step | examples/s alone |")
    print("|---|---:|---:|---:|")
    for name, s in results:
        print(f"| {name} | {1e3 * s:.1f} | {s / full:.0%} | {batch_size / s:,.0f} |")


if __name__ == "__main__":
    main()
