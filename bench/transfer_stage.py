"""The transfer stage's transfers made one at a time against `stage.CONCURRENT` at once, side by side in one run:
the default profile's runs (trained: `dvc repro train` first), each way into a fresh folder, so every transfer is
made and compiled afresh (the jitted functions of the way before are dropped). Prints the wall time of each way and checks that both graded every test example alike.

    python bench/transfer_stage.py [--runs-dir runs] [--concurrent 2 3]
"""
from __future__ import annotations

import argparse
import tempfile
import time

from vlscale.config import load_params
from vlscale.transfer import fit, stage


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--concurrent", type=int, nargs="+", default=[stage.CONCURRENT],
                        help="the numbers of transfers at once to compare with one (default: the stage's)")
    args = parser.parse_args(argv)
    p, _ = stage.stage_params(load_params().dump())
    ways, tables = {}, {}
    for concurrent in (1, *args.concurrent):
        stage.CONCURRENT = concurrent
        fit.clear_compiled()  # each way compiles afresh, as a stage's process does
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            tables[concurrent], _, timings = stage.measure(p, args.runs_dir, out, progress=lambda _: None)
            ways[concurrent] = (time.perf_counter() - t0, len(timings["transfers_s"]))
    same = all(tables[1].equals(table) for table in tables.values())
    print(f"profile {p.profile}; graded rows identical both ways: {same}")
    print(f"{'at once':>8}{'transfers':>11}{'wall (s)':>10}{'speed-up':>10}")
    for concurrent, (wall, n) in ways.items():
        print(f"{concurrent:>8}{n:>11}{wall:>10.1f}{ways[1][0] / wall:>9.2f}x")
    if not same:
        raise SystemExit("the ways graded the test examples differently")


if __name__ == "__main__":
    main()
