"""Benchmark: how many global ids per second `NestedSubsets.contains` decides, on one core.

A training stream or a filter asks "is this id in the 1% (10%) subset?" for every example it
touches, so membership must cost far less than producing the example. Target: >= 1e8 ids/s per core.

The pool is the synthetic web's (Table 15's language mix over 37 strata), 10^9 examples by default; the ids are drawn uniformly from the pool, so they
fall into strata in proportion to their sizes. Compilation is excluded (a warm-up call first);
numba runs single-threaded (no parallel loops).

    .venv/bin/python bench/subset_membership.py                 # 10^7 and 10^8 ids, pool 10^9
    .venv/bin/python bench/subset_membership.py --pool 1e11 --ids 1e7
"""
import argparse
import platform
import time

import numba
import numpy as np

from vlscale.config import load_params
from vlscale.data.subsets import NestedSubsets
from vlscale.world.ids import make_ids
from vlscale.world.spec import build_world


def pool_sizes(pool_examples: int) -> tuple[np.ndarray, list[str]]:
    """Examples per stratum of the synthetic web's pool: Table 15's language mix (params.yaml world)."""
    world = build_world(load_params().world)
    return world.pool_sizes(pool_examples), list(world.strata)


def random_ids(sizes: np.ndarray, count: int, seed: int) -> np.ndarray:
    """`count` global ids drawn uniformly from the pool (int64, shape (count,))."""
    rng = np.random.default_rng(seed)
    ends = np.cumsum(sizes)
    position = rng.integers(0, ends[-1], count)
    stratum = np.searchsorted(ends, position, side="right")
    return make_ids(stratum, position - (ends - sizes)[stratum])


def time_contains(subsets: NestedSubsets, ids: np.ndarray, fraction: float, repeats: int):
    """Seconds of each of `repeats` calls of contains(ids, fraction), and the members found."""
    subsets.contains(ids[:10_000], fraction)  # warm-up: compilation or cache load
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        members = subsets.contains(ids, fraction)
        seconds.append(time.perf_counter() - start)
    return seconds, int(members.sum())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pool", type=float, default=1e9, help="examples in the pool")
    parser.add_argument("--ids", type=float, nargs="+", default=[1e7, 1e8], help="ids per call")
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.01, 0.1])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--key", type=int, default=20250211)
    args = parser.parse_args()

    sizes, names = pool_sizes(int(args.pool))
    subsets = NestedSubsets(sizes, args.key, names)
    print(f"pool: {sizes.sum():.3e} examples in {sizes.size} strata; numba {numba.__version__}, "
          f"numpy {np.__version__}, {platform.machine()} {_cpu_name()}; single-threaded\n")
    print("| ids per call | fraction | members found | median s | median ids/s | best ids/s |")
    print("|---:|---:|---:|---:|---:|---:|")
    for count in (int(c) for c in args.ids):
        ids = random_ids(sizes, count, seed=0)
        for fraction in args.fractions:
            seconds, members = time_contains(subsets, ids, fraction, args.repeats)
            print(f"| {count:.0e} | {fraction} | {members / count:.4%} | {np.median(seconds):.3f} "
                  f"| {count / np.median(seconds):.3e} | {count / min(seconds):.3e} |", flush=True)
        del ids


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor()


if __name__ == "__main__":
    main()
