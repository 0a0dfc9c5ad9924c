"""The transfer stage's transfers made three ways, each in a fresh process (so each compiles afresh and starts with
an empty heap; no persistent compilation cache): glibc's allocator defaults and one transfer at a time (the stage
before it was made faster, VLSCALE_SYSTEM_MALLOC=1), vlscale.allocator with one at a time, and vlscale.allocator
with `stage.CONCURRENT` at once (the stage as it runs). The default profile's runs (trained: `dvc repro train`
first), each way into a fresh folder. Prints each way's wall time, CPU time and peak memory, and checks that every
way graded every test example alike.

    python bench/transfer_stage.py [--runs-dir runs]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import pandas as pd


def worker(runs_dir: str, concurrent: int, out: str) -> dict:
    from vlscale.config import load_params
    from vlscale.transfer import stage

    stage.CONCURRENT = concurrent
    p, _ = stage.stage_params(load_params().dump())
    t0 = time.perf_counter()
    table, _, timings = stage.measure(p, runs_dir, out, progress=lambda _: None)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"wall_s": time.perf_counter() - t0, "transfers": len(timings["transfers_s"]),
            "cpu_s": usage.ru_utime + usage.ru_stime, "kernel_s": usage.ru_stime, "max_rss_mb": usage.ru_maxrss / 1024}


WAYS = (("glibc defaults, one at a time", "1", 1), ("vlscale.allocator, one at a time", "0", 1),
        ("vlscale.allocator, at once", "0", None))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--worker", nargs=2, metavar=("CONCURRENT", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.runs_dir, int(args.worker[0]), args.worker[1])))
        return
    from vlscale.transfer import stage

    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    got, frames = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        for name, opt_out, concurrent in WAYS:
            concurrent = concurrent or stage.CONCURRENT
            out = os.path.join(tmp, str(len(got)))
            done = subprocess.run([sys.executable, __file__, "--runs-dir", args.runs_dir, "--worker", str(concurrent),
                                   out], env={**env, "VLSCALE_SYSTEM_MALLOC": opt_out}, capture_output=True,
                                  text=True, check=True)
            got[name] = {**json.loads(done.stdout.strip().splitlines()[-1]), "at_once": concurrent}
            frames.append(pd.read_parquet(os.path.join(out, "rows.parquet")))
    same = all(frames[0].equals(frame) for frame in frames)
    base = got[WAYS[0][0]]["wall_s"]
    print(f"the default profile's {got[WAYS[0][0]]['transfers']} transfers, each way in a fresh process; "
          f"graded rows identical every way: {same}")
    print(f"{'way':<36}{'at once':>8}{'wall (s)':>10}{'CPU (s)':>9}{'kernel (s)':>11}{'peak RSS (MB)':>15}"
          f"{'speed-up':>10}")
    for name, r in got.items():
        print(f"{name:<36}{r['at_once']:>8}{r['wall_s']:>10.1f}{r['cpu_s']:>9.1f}{r['kernel_s']:>11.1f}"
              f"{r['max_rss_mb']:>15.0f}{base / r['wall_s']:>9.2f}x")
    if not same:
        raise SystemExit("the ways graded the test examples differently")


if __name__ == "__main__":
    main()
