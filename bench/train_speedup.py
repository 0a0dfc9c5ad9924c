"""The CPU trainer of another revision against this one, side by side in one run on this machine.

    python bench/train_speedup.py                  # against commit 1954a21: two blocks a tower, 4k pieces, 32 tokens
    python bench/train_speedup.py --old <rev> --rounds 3 --steps 20

The other trainer is the repository at --old, unpacked with `git archive` into a temporary folder and run
with this environment's Python: its own bench/train_throughput.py times its own step on its own cpu
profile. This trainer runs twice: on that profile's model and input (what the code alone gains)
and on this checkout's cpu profile. The three alternate, --rounds times, so that a
machine's noise falls on all of them alike; the table gives each round and the median speed-up.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE_REV = "1954a21"  # a trainer of two blocks a tower, 4k-piece tokenizer and 32 tokens
# That revision's cpu profile's model and input, as --set overrides of this params.yaml.
OLD_PROFILE = ["model.image={width: 64, depth: 2, mlp_dim: 256, num_heads: 4, patch_size: [8, 8], pool_type: map}",
               "model.text={width: 64, depth: 2, mlp_dim: 256, num_heads: 4}", "model.out_dim=[null, 64]",
               "train.batch_size=256", "train.image_px=32", "tokenizer.max_len=32", "tokenizer.vocab_size=4000",
               "tokenizer.per_language=2000"]
ROW = re.compile(r"^\|\s*(\d+)\s*\|\s*([\d,]+)\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)%")


def unpack(rev: str) -> Path:
    """The tree of `rev` in a temporary folder."""
    out = Path(tempfile.mkdtemp(prefix=f"vlscale-{rev}-"))
    out_git = subprocess.run(["git", "-C", str(ROOT), "archive", rev], capture_output=True)
    if out_git.returncode:
        raise SystemExit(f"--old {rev}: git archive failed in {ROOT} (a shallow clone lacks old commits: "
                         f"git fetch --unshallow): {out_git.stderr.decode().strip()}")
    archive = out_git.stdout
    tar = out / "tree.tar"
    tar.write_bytes(archive)
    with tarfile.open(tar) as t:
        t.extractall(out, filter="data")
    tar.unlink()
    return out


def throughput(tree: Path, steps: int, sets: list[str]) -> dict:
    """examples/s, step ms and MFU of `tree`'s trainer on its cpu profile (with `sets`), in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(tree / "lib")}
    cmd = [sys.executable, "bench/train_throughput.py", "--steps", str(steps)]
    for s in sets:
        cmd += ["--set", s]
    out = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{tree}: bench/train_throughput.py failed:\n{out.stderr[-3000:]}")
    rows = [m for m in (ROW.match(line) for line in out.stdout.splitlines()) if m]
    if not rows:
        raise SystemExit(f"{tree}: no throughput table in its output:\n{out.stdout[-2000:]}")
    batch, rate, step_ms, mfu = rows[-1].groups()
    return {"batch": int(batch), "examples_per_s": float(rate.replace(",", "")), "step_ms": float(step_ms),
            "mfu": float(mfu)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old", default=BASELINE_REV, help="the revision of the old trainer (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    old_tree = unpack(args.old)
    arms = {f"old trainer ({args.old}), old cpu profile": (old_tree, []),
            "new trainer, old cpu profile": (ROOT, OLD_PROFILE),
            "new trainer, new cpu profile": (ROOT, [])}
    results = {name: [] for name in arms}
    for r in range(args.rounds):
        for name, (tree, sets) in arms.items():
            results[name].append(throughput(tree, args.steps, sets))
            print(f"round {r + 1}: {name}: {results[name][-1]['examples_per_s']:,.0f} examples/s", flush=True)

    import platform

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    avx512 = "avx512f" in Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else None
    print(f"\nvlscale trainer speed-up — {os.cpu_count()} cores, {cpu}, AVX-512 {'yes' if avx512 else 'no'}; "
          f"{args.rounds} alternating rounds of {args.steps} timed steps")
    base = [r["examples_per_s"] for r in results[next(iter(arms))]]
    print("\n| trainer | batch | examples/s per round | median | MFU (median) | speed-up (median of rounds) |")
    print("|---|---:|---|---:|---:|---:|")
    for name, rows in results.items():
        rates = [r["examples_per_s"] for r in rows]
        ratio = statistics.median(a / b for a, b in zip(rates, base))
        print(f"| {name} | {rows[0]['batch']} | {', '.join(f'{x:,.0f}' for x in rates)} | "
              f"{statistics.median(rates):,.0f} | {statistics.median(r['mfu'] for r in rows):.1f}% | {ratio:.2f}× |")


if __name__ == "__main__":
    main()
