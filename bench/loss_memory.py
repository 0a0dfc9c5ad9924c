"""Per-device memory and wall time of the sigmoid loss: dense vs chunked ring, on 8 CPU devices.

    python bench/loss_memory.py                                   # B = 4096, 16384, 32768; D = 768
    python bench/loss_memory.py --batches 1024 4096 --time-max-batch 4096

Memory comes from XLA's compiled memory analysis of one device's program (temporaries, arguments,
outputs), so large batches need no memory to measure; wall time is measured only up to
--time-max-batch, since 8 simulated devices share the host's cores and RAM. Variants, all under
jax.jit with the batch sharded over the ring of devices unless said otherwise:

- dense, replicated: every device holds the whole batch and all B x B logits (one-device training);
- dense, sharded:    the dense loss left to XLA's partitioner, which makes [B/n, B] logits per device;
- chunked:           `chunked_sigmoid_loss`, [B/n, B/n] logits per device, forward and backward.

Expect temporaries to grow as B^2, B^2/n and (B/n)^2 respectively, for "loss" and "loss+grad".
"""
import os

# 8 simulated devices; must be set before jax is imported.
os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import argparse  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax.sharding import AxisType, NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P

from vlscale.training.loss import chunked_sigmoid_loss, sigmoid_loss  # noqa: E402

AXES = ("data", "fsdp")
MIB = 2**20


def variants(mesh):
    """name -> (loss of (zimg, ztxt, t, b), partition spec of the embeddings, logits block per
    device as a function of the global batch)."""
    n = mesh.size
    return {
        "dense, replicated": (sigmoid_loss, P(), lambda b: (b, b)),
        "dense, sharded": (sigmoid_loss, P(AXES), lambda b: (b // n, b)),
        "chunked": (lambda *a: chunked_sigmoid_loss(*a, mesh, AXES), P(AXES), lambda b: (b // n, b // n)),
    }


def measure(fn, spec, mesh, batch, dim, with_grad, time_it, repeats=3):
    """One row: per-device MiB of temporaries, arguments and outputs; wall ms per call or None."""
    if with_grad:
        fn = jax.value_and_grad(fn, argnums=(0, 1, 2, 3))
    emb = NamedSharding(mesh, spec)
    scalar = NamedSharding(mesh, P())
    shapes = (jax.ShapeDtypeStruct((batch, dim), jnp.float32, sharding=emb),) * 2 + (
        jax.ShapeDtypeStruct((), jnp.float32, sharding=scalar),) * 2
    compiled = jax.jit(fn).lower(*shapes).compile()
    mem = compiled.memory_analysis()
    ms = None
    if time_it:
        key_i, key_t = jax.random.split(jax.random.key(0))
        z = [jax.device_put(x / jnp.linalg.norm(x, axis=1, keepdims=True), emb)
             for x in (jax.random.normal(key_i, (batch, dim)), jax.random.normal(key_t, (batch, dim)))]
        args = (*z, jnp.float32(2.3), jnp.float32(-10.0))
        jax.block_until_ready(compiled(*args))
        start = time.perf_counter()
        for _ in range(repeats):
            jax.block_until_ready(compiled(*args))
        ms = (time.perf_counter() - start) / repeats * 1e3
    return mem.temp_size_in_bytes / MIB, mem.argument_size_in_bytes / MIB, mem.output_size_in_bytes / MIB, ms


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, nargs="+", default=[4096, 16384, 32768])
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--data", type=int, default=4, help="mesh axis 'data'; 'fsdp' takes the rest of the 8 devices")
    ap.add_argument("--time-max-batch", type=int, default=4096)
    args = ap.parse_args()

    n = len(jax.devices())
    mesh = jax.make_mesh((args.data, n // args.data), AXES, axis_types=(AxisType.Auto,) * 2)
    print(f"jax {jax.__version__}, {n} x {jax.devices()[0].device_kind}, mesh {dict(mesh.shape)}, "
          f"D = {args.dim}, float32")
    print("per-device MiB from compiled memory_analysis(); logits = one [rows, cols] float32 block's size\n")
    print("| B | variant | fn | logits/device | temp MiB | args MiB | out MiB | wall ms |")
    print("|---:|---|---|---|---:|---:|---:|---:|")
    for batch in args.batches:
        for name, (fn, spec, logits) in variants(mesh).items():
            rows, cols = logits(batch)
            for with_grad in (False, True):
                temp, arg, out, ms = measure(fn, spec, mesh, batch, args.dim, with_grad, batch <= args.time_max_batch)
                wall = f"{ms:.0f}" if ms is not None else "-"
                print(f"| {batch} | {name} | {'loss+grad' if with_grad else 'loss'} | [{rows}, {cols}] "
                      f"({rows * cols * 4 / MIB:.1f} MiB) | {temp:.1f} | {arg:.1f} | {out:.1f} | {wall} |", flush=True)


if __name__ == "__main__":
    main()
