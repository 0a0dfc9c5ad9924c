"""The compute ladder: the natural 1% / 10% / 100% runs at examples seen N (pool = N, so the 100% run sees each pair
once), with seed replicates, through the whole pipeline, and for each finding its effect, interval and verdict
against N.

A rung is the default profile (cpu) with four things scaled by N / 200,000 (the default's N): the pool, the examples
seen, the inverse-sqrt timescale (the default keeps it at the run's length, so the rate stays high through the run)
and the checkpoint and probe cadences; warm-up and cool-down stay the default's 3% of the run. Everything else (the
model, batch, learning rate, image size, tokenizer size, world) is the default's, so the rungs differ in compute and
data alone. Only the natural runs train (the filter stage makes the random arm alone, which needs no filter model);
every rung is evaluated on `--key` (dev while designing, report at the end).

    python tools/ladder.py run 800000 [--key dev] [--seeds 2] [--work ../ladder]   # a rung, in a scratch clone
    python tools/ladder.py table [--key dev]       # results/reference/ladder/: the table and phase diagram of every rung

`run` makes <work>/N<N>_<key>/ (a copy of this checkout's files), trains and evaluates there with `dvc repro`
(a finished run there is not trained again: a rung can be built up over sessions), and copies its records to
results/reference/ladder/N<N>_<key>/: metrics/{paper,figures,attention,sample}.json, metrics/train/*.json and the
stage times. `table` writes results/reference/ladder/ladder_<key>.md and .csv: per finding and part, its effect,
95% interval, seeds and verdict at each N, and ladder_<key>.png, the same as a phase diagram (verdict colours).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from vlscale.files import read_json, write_json

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results/reference/ladder"
BASE_N = 200_000  # the cpu profile's examples seen and pool
SCALED = {  # train-block keys that follow N (the cpu profile's value times N / BASE_N)
    "examples_seen", "warmup_examples", "cooldown_examples", "timescale_examples", "checkpoint_every_examples",
    "probe_every_examples"}
RECORDS = ("metrics/paper.json", "metrics/figures.json", "metrics/attention.json", "metrics/sample.json")


def rung_runs(seeds: int) -> dict[str, dict]:
    """The natural runs of a rung: each data scale with `seeds` seeds (the 1% one seed: it is the floor)."""
    runs = {"s1": {"fraction": 0.01}, "s10": {"fraction": 0.1}, "s100": {"fraction": 1.0}}
    for s in range(1, seeds):
        runs[f"s10_seed{s}"] = {"fraction": 0.1, "seed": s}
        runs[f"s100_seed{s}"] = {"fraction": 1.0, "seed": s}
    return runs


def rung_params(params: dict, n: int, key: str = "dev", seeds: int = 2) -> dict:
    """params.yaml (as read) with the cpu profile at rung N: see the module docstring."""
    p = json.loads(json.dumps(params))  # a deep copy
    factor = n / BASE_N
    p["profile"] = "cpu"
    p["sample"]["pool_size"] = n  # params.yaml holds the cpu profile's values (profiles/cpu.yaml is empty)
    for k in SCALED:
        p["train"][k] = int(round(p["train"][k] * factor))
    p["runs"] = rung_runs(seeds)
    p["filter"]["arms"] = ["random"]
    p["evaluate"]["use_key"] = key
    return p


def last_checkpoint(parquet: Path, columns: list[str] | None = None):
    """The rows of an evaluated run's last checkpoint (results/evaluate/<run>.parquet), as a DataFrame."""
    import pandas as pd

    d = pd.read_parquet(parquet, columns=columns)
    return d[d["examples_seen"] == d["examples_seen"].max()]


def clone_of(clone: Path) -> Path:
    """<clone> as a scratch copy of this checkout's files (a git repository, for DVC); returns it."""
    from vlscale.pipeline import copy_checkout

    clone.mkdir(parents=True, exist_ok=True)
    copy_checkout(ROOT, clone)
    if not (clone / ".git").exists():
        subprocess.run(["git", "init", "-q"], cwd=clone, check=True)
    return clone


def repro(clone: Path, params: dict, log: Path, *targets: str) -> None:
    """Validate `params`, write them into the scratch clone and `dvc repro` its `targets` (all: none given), on the
    clone's own lib first, so that edits to this checkout while it runs do not reach it."""
    from vlscale.config import validate

    validate(params)  # bad params fail here, before any work
    (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "PYTHONPATH": str(clone / "lib")}
    with open(log, "w") as f:
        r = subprocess.run(["dvc", "repro", *targets], cwd=clone, stdout=f, stderr=subprocess.STDOUT, env=env)
    if r.returncode:
        raise SystemExit(f"{clone.name}: dvc repro {' '.join(targets)} failed; see {log}")


def run(n: int, key: str, seeds: int, work: Path, reuse: Path | None = None) -> Path:
    """Train and evaluate rung N in <work>/N<N>_<key>; returns the folder its records were copied to. reuse: a
    runs/ folder whose finished runs of the same params are taken instead of trained (a default repro's for
    N = 200,000: the train stage keeps a run whose fingerprint matches)."""
    clone = clone_of(work / f"N{n}_{key}")
    for name in rung_runs(seeds) if reuse else ():
        if (reuse / name / "train.json").is_file() and not (clone / "runs" / name).exists():
            shutil.copytree(reuse / name, clone / "runs" / name)
    params = rung_params(yaml.safe_load((ROOT / "params.yaml").read_text()), n, key, seeds)
    t0 = time.time()
    repro(clone, params, clone / "ladder_repro.log")
    out = OUT / clone.name
    (out / "train").mkdir(parents=True, exist_ok=True)
    for rel in RECORDS:
        shutil.copy2(clone / rel, out / Path(rel).name)
    for f in sorted((clone / "metrics/train").glob("*.json")):
        shutil.copy2(f, out / "train" / f.name)
    write_json(out / "rung.json", {"examples_seen": n, "key": key, "seeds": seeds,
                                   "wall_s": round(time.time() - t0, 1), "params": params})
    return out


def table(key: str, out: Path = OUT) -> list[dict]:
    """Every part of every finding at every rung of `key` under `out` (results/reference/ladder/)."""
    rows = []
    for rung in sorted(out.glob(f"N*_{key}"), key=lambda p: int(p.name[1:].split("_")[0])):
        n = read_json(rung / "rung.json")["examples_seen"]
        for f in read_json(rung / "paper.json")["verdicts"]:
            for part in f["parts"]:
                rows.append({"examples_seen": n, "finding": f["id"], "part": part["label"], "verdict": part["verdict"],
                             "effect": part.get("effect"), "ci95": part.get("ci95"), "n_seeds": part.get("n_seeds"),
                             "mde": part.get("mde"), "finding_verdict": f["verdict"]})
    return rows


# The study profile's targets at its 100% run (accuracy or R@1, %), each read from a rung's figures record.
TARGETS = {
    "ImageNet-like 0-shot accuracy": (40, lambda f: 100 - f["table1"]["imagenet/0shot"]["100%"]["error_pct"]),
    "ImageNet-like 10-shot accuracy": (50, lambda f: 100 - f["table1"]["imagenet/10shot"]["100%"]["error_pct"]),
    "COCO-like image-to-text R@1": (40, lambda f: 100 - f["table1"]["coco/i2t"]["100%"]["error_pct"]),
    "perceived gender accuracy": (85, lambda f: 100 - f["evidence"]["level/perceived_gender_error/100%"]["value"]),
    "low-resource XM3600 R@1": (10, lambda f: 100 - f["group_averages_by_scale"]["100%"]["multilingual_low_resource"][
        "error_pct"]),
}


def levels(key: str, out: Path = OUT) -> list[dict]:
    """Each target's level at the 100% data scale (seed mean) at every rung of `key`."""
    rows = []
    for rung in sorted(out.glob(f"N*_{key}"), key=lambda p: int(p.name[1:].split("_")[0])):
        n = read_json(rung / "rung.json")["examples_seen"]
        fig = read_json(rung / "figures.json")
        for name, (target, read) in TARGETS.items():
            rows.append({"examples_seen": n, "target": name, "value": read(fig), "study_target": target})
    return rows


def write_table(key: str, out: Path = OUT) -> Path:
    import pandas as pd

    rows = table(key, out)
    if not rows:
        raise SystemExit(f"no rung of key {key!r} under {out}; run `python tools/ladder.py run N --key {key}` first")
    d = pd.DataFrame(rows)
    d.to_csv(out / f"ladder_{key}.csv", index=False)

    def cell(r):
        if r["effect"] is None or pd.isna(r["effect"]):
            return r["verdict"]
        lo, hi = r["ci95"]
        return f"{r['effect']:+.2f} [{lo:+.2f}, {hi:+.2f}] {r['verdict']}"

    d["cell"] = d.apply(cell, axis=1)
    wide = d.pivot_table(index=["finding", "part"], columns="examples_seen", values="cell", aggfunc="first")
    lines = [f"# The compute ladder ({key} key): each finding's parts against examples seen", "",
             "| finding | part | " + " | ".join(f"N = {n:,}" for n in wide.columns) + " |",
             "|---|---|" + "---|" * len(wide.columns)]
    for (finding, part), row in wide.iterrows():
        lines.append(f"| {finding} | {part} | " + " | ".join(str(v) for v in row.values) + " |")
    lv = pd.DataFrame(levels(key, out))
    wide_levels = lv.pivot_table(index="target", columns="examples_seen", values="value", sort=False)
    lines += ["", "Levels at the 100% data scale (seed mean), against the study profile's targets:", "",
              "| level (%) | " + " | ".join(f"N = {n:,}" for n in wide_levels.columns) + " | study target |",
              "|---|" + "---|" * (len(wide_levels.columns) + 1)]
    for name, row in wide_levels.iterrows():
        lines.append(f"| {name} | " + " | ".join(f"{v:.1f}" for v in row.values) + f" | ≥ {TARGETS[name][0]} |")
    path = out / f"ladder_{key}.md"
    path.write_text("\n".join(lines) + "\n")
    return path


VERDICT_COLOURS = {"reproduces": "#4daf4a", "does not reproduce": "#e41a1c", "inconclusive": "#ffd92f",
                   "not tested": "#dddddd"}


def phase_diagram(key: str, out: Path = OUT) -> Path:
    """ladder_<key>.png: every part of every finding (rows) at every rung (columns), coloured by its verdict and
    labelled with its effect: where each finding becomes testable, and whether it reproduces there."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    d = pd.DataFrame(table(key, out))
    parts = list(dict.fromkeys(zip(d["finding"], d["part"])))
    ns = sorted(d["examples_seen"].unique())
    fig, ax = plt.subplots(figsize=(5.5 + 1.4 * len(ns), 0.28 * len(parts) + 1.2))
    for i, (finding, part) in enumerate(parts):
        for j, n in enumerate(ns):
            r = d[(d["finding"] == finding) & (d["part"] == part) & (d["examples_seen"] == n)]
            if r.empty:
                continue
            r = r.iloc[0]
            ax.add_patch(plt.Rectangle((j, i), 1, 1, color=VERDICT_COLOURS[r["verdict"]], ec="white"))
            if r["effect"] is not None and pd.notna(r["effect"]):
                ax.text(j + 0.5, i + 0.5, f"{r['effect']:+.1f}", ha="center", va="center", fontsize=6.5)
    ax.set_xlim(0, len(ns))
    ax.set_ylim(len(parts), 0)
    ax.set_xticks([j + 0.5 for j in range(len(ns))], [f"N = {n:,}" for n in ns], fontsize=7)
    ax.set_yticks([i + 0.5 for i in range(len(parts))], [f"{f}: {p[:80]}" for f, p in parts], fontsize=6)
    ax.tick_params(length=0)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in VERDICT_COLOURS.values()]
    ax.legend(handles, list(VERDICT_COLOURS), ncol=4, fontsize=6.5, loc="lower center", bbox_to_anchor=(0.5, 1.0),
              frameon=False)
    ax.set_title(f"Compute ladder ({key} key): verdict and effect of each part", fontsize=8, pad=18)
    path = out / f"ladder_{key}.png"
    fig.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(fig)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("examples", type=int)
    r.add_argument("--key", choices=("dev", "report"), default="dev")
    r.add_argument("--seeds", type=int, default=2)
    r.add_argument("--work", type=Path, default=ROOT.parent / "ladder")
    r.add_argument("--reuse", type=Path, help="a runs/ folder whose finished runs of the same params are reused")
    t = sub.add_parser("table")
    t.add_argument("--key", choices=("dev", "report"), default="dev")
    args = parser.parse_args(argv)
    if args.cmd == "run":
        print(run(args.examples, args.key, args.seeds, args.work, args.reuse))
    else:
        print(write_table(args.key))
        print(phase_diagram(args.key))


if __name__ == "__main__":
    main()
