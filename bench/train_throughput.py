"""Training throughput and MFU of the SigLIP trainer, and the input pipeline's headroom over it.

    python bench/train_throughput.py                          # the cpu profile's model, here
    python bench/train_throughput.py --profile gpu --batch 256 512 1024 2048   # B/16, 224 px, bf16
    python bench/train_throughput.py --profile gpu --max-batch               # double until memory runs out

For each batch size: the jit-compiled step (synthetic images rendered on the device inside it, the
chunked sigmoid loss, the optimiser update) is timed over --steps steps after --warmup steps, fed
from the real Grain input stream; the host input stream is timed on its own. Prints a table:
examples/s, step time, MFU (model FLOPs / peak; on a CPU the peak is this machine's measured float32
matmul throughput), input examples/s and the input / step ratio (target: >= 1.5).
The synthetic pool is built in memory and a tokenizer of the profile's settings trained on a caption
sample. --set BLOCK.KEY=VALUE overrides a resolved value (bench/train_speedup.py uses it).
"""
from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path


def _tokenizer(p, world, subsets):
    """A tokenizer of the profile's settings, trained here on a caption sample (a few seconds)."""
    from vlscale.data.tokenizer import Tokenizer, balanced_caption_sample, train_tokenizer

    tokenizer_params = p.tokenizer
    path = Path(tempfile.mkdtemp()) / "spm.model"
    captions = balanced_caption_sample(world, subsets, 1.0, tokenizer_params.per_language, tokenizer_params.key)
    train_tokenizer(captions, tokenizer_params.vocab_size, path, per_language=tokenizer_params.per_language)
    return Tokenizer(path)


def measure(p, world, source, tokenizer, batch: int, steps: int, warmup: int) -> dict:
    import jax

    from vlscale.training import mesh as meshlib
    from vlscale.training.run import trainer_for

    p = p.replace(train=p.train.model_copy(update={"batch_size": batch}))
    trainer = trainer_for(p, world, source, tokenizer)
    fn, _ = trainer.step_fn(None)
    it = trainer.inputs.iterator()
    batches = [meshlib.global_batch(trainer.mesh, next(it)) for _ in range(min(steps, 8))]
    t0 = time.perf_counter()
    for i in range(warmup):
        trainer.state, m = fn(trainer.state, batches[i % len(batches)], i)
    jax.block_until_ready(m["loss"])
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(steps):
        trainer.state, m = fn(trainer.state, batches[i % len(batches)], warmup + i)
    jax.block_until_ready(m["loss"])
    step_s = (time.perf_counter() - t0) / steps
    t0 = time.perf_counter()
    for _ in range(steps):
        next(it)
    input_s = (time.perf_counter() - t0) / steps
    rate = batch / step_s
    n = trainer.mesh.devices.size
    return {"batch": batch, "examples_per_s": rate, "step_ms": 1e3 * step_s,
            "mfu": rate * trainer.flops_per_example / (trainer.peak_flops * n),
            "input_examples_per_s": batch / input_s, "input_over_step": step_s / input_s,
            "compile_s": compile_s, "n_params": trainer.n_params, "devices": n,
            "device_kind": trainer.mesh.devices.flat[0].device_kind, "peak_source": trainer.peak_source,
            "flops_per_example": trainer.flops_per_example}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--batch", type=int, nargs="+")
    parser.add_argument("--max-batch", action="store_true", help="double the batch until the device runs out of memory")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--dense", action="store_true", help="the dense loss instead of the chunked one")
    parser.add_argument("--set", action="append", default=[], metavar="BLOCK.KEY=VALUE")
    args = parser.parse_args()

    import jax

    from vlscale.config import apply_sets, read_params, validate
    from vlscale.data.input import SyntheticSource
    from vlscale.data.sampling import synthetic_subsets
    from vlscale.world.spec import build_world

    raw = read_params("params.yaml", args.profile)
    p = validate(apply_sets(raw, args.set), "params.yaml with --set")
    if args.dense:
        p = p.replace(train=p.train.model_copy(update={"loss": "dense"}))
    world = build_world(p.world)
    subsets = synthetic_subsets(world, min(p.sample.pool_size, 10**8), p.sample.key)
    source = SyntheticSource(world, subsets, 1.0)
    tokenizer = _tokenizer(p, world, subsets)
    batches = args.batch or [p.train.batch_size]
    rows = []
    for batch in batches:
        rows.append(measure(p, world, source, tokenizer, batch, args.steps, args.warmup))
    while args.max_batch:
        batch = rows[-1]["batch"] * 2
        try:
            rows.append(measure(p, world, source, tokenizer, batch, args.steps, args.warmup))
        except Exception as e:  # XlaRuntimeError RESOURCE_EXHAUSTED: the previous batch is the largest
            print(f"batch {batch}: {type(e).__name__}: {str(e).splitlines()[0][:160]}")
            break

    r0 = rows[0]
    model_params = p.model
    print(f"\nvlscale train throughput — profile {args.profile}, jax {jax.__version__}, {r0['devices']} × "
          f"{r0['device_kind']}, {platform.processor() or platform.machine()}")
    print(f"model: image {model_params.image}, text {model_params.text}, out_dim {model_params.out_dim}; "
          f"{r0['n_params']:,} params; "
          f"{p.train.image_px} px, {p.tokenizer.max_len} tokens, {p.train.dtype}, "
          f"drop_tokens_frac {p.train.drop_tokens_frac}, {p.train.loss} loss")
    print(f"model FLOPs / example (fwd+bwd): {r0['flops_per_example'] / 1e9:.3f} GFLOP; peak: {r0['peak_source']}\n")
    print("| batch | examples/s | step ms | MFU | input examples/s | input / step | compile s |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['batch']} | {r['examples_per_s']:,.0f} | {r['step_ms']:.1f} | {r['mfu']:.1%} | "
              f"{r['input_examples_per_s']:,.0f} | {r['input_over_step']:.1f}× | {r['compile_s']:.1f} |")


if __name__ == "__main__":
    main()
