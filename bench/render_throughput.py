"""Rendering throughput of the synthetic web: images/s at 32, 64 and 224 px.

    python bench/render_throughput.py            # NumPy (1 and all cores) and JAX on the default device
    python bench/render_throughput.py --jax-only --batch 65536   # e.g. on a GPU

Targets: at 32 px, >= 10,000 images/s with NumPy on a 2-core machine and
>= 1,000,000 images/s with the JAX renderer on one H100/H200. Ground truth is computed from the ids
inside the timed region, as it is in training. Prints a markdown table.
"""
import argparse
import os
import platform
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from vlscale.config import load_params
from vlscale.world.hashing import id_words
from vlscale.world.ids import make_ids
from vlscale.world.render import render_ids, render_jax
from vlscale.world.spec import build_world


def _ids(n, offset=0):
    return make_ids(np.arange(n) % 37, np.arange(n) + offset)


def numpy_rate(world, px, n, threads, chunk=256):
    ids = _ids(n)
    chunks = [ids[i:i + chunk] for i in range(0, n, chunk)]
    render_ids(world, chunks[0], px)  # warm-up
    t = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(lambda c: render_ids(world, c, px), chunks):
            pass
    return n / (time.perf_counter() - t)


def jax_rate(world, px, batch, repeats):
    import jax

    fn = render_jax(world, px)
    hi, lo = (jax.device_put(a) for a in id_words(_ids(batch)))
    fn(hi, lo).block_until_ready()  # compile
    t = time.perf_counter()
    for r in range(repeats):
        out = fn(hi, lo + np.uint32(r))  # new ids each repeat
    out.block_until_ready()
    return batch * repeats / (time.perf_counter() - t)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 224])
    ap.add_argument("--jax-only", action="store_true")
    ap.add_argument("--batch", type=int, default=4096, help="JAX batch at 32 px (scaled down for larger px)")
    args = ap.parse_args()
    world = build_world(load_params(args.params).world)
    cores = os.cpu_count()
    rows = []
    import jax

    device = jax.devices()[0]
    for px in args.sizes:
        n = max(512, int(40_000 * (32 / px) ** 2))
        if not args.jax_only:
            rows.append(("NumPy, 1 thread", px, numpy_rate(world, px, n, 1)))
            rows.append((f"NumPy, {cores} threads", px, numpy_rate(world, px, n, cores)))
        batch = max(64, int(args.batch * (32 / px) ** 2))
        rows.append((f"JAX jit ({device.platform}: {device.device_kind}), batch {batch}", px,
                     jax_rate(world, px, batch, repeats=10)))
    print(f"\nRendering throughput — {platform.processor() or platform.machine()}, {cores} cores, jax {jax.__version__}\n")
    print("| renderer | px | images/s |")
    print("|---|---:|---:|")
    for name, px, rate in rows:
        print(f"| {name} | {px} | {rate:,.0f} |")


if __name__ == "__main__":
    main()
