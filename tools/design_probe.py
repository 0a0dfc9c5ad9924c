"""A design probe for the study profile: one natural run (the 100% run by default) of a ladder rung under a few
param overrides, evaluated on the development key, and the study targets' levels it reaches.

    python tools/design_probe.py a5 '{"world.language_share_exponent": 0.5}' [--examples 800000] [--seed 0]
    python tools/design_probe.py --table          # results/reference/ladder/design_dev.md from the rows so far

A probe is rung N of tools/ladder.py (the cpu profile with the pool, examples and schedule scaled to N) with one run,
a single cool-down at its end, the random filter arm alone and the overrides applied (dotted paths into params.yaml
as the cpu profile resolves it, vlscale.config.read_params). It trains and evaluates in <work>/<name> with `dvc repro evaluate`
(a finished run there is not trained again) and appends a row to results/reference/ladder/design_dev.csv: the
overrides, the levels of the study targets (tools/ladder.TARGETS), the high-resource XM3600 R@1, the male preference
and the training time. One seed per probe: the dev-key seed spread of the 100% run at N = 800,000 (two seeds, the
ladder's rung) is the yardstick a difference must beat.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from vlscale.config import read_params

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ladder import OUT, ROOT, TARGETS, clone_of, last_checkpoint, repro, rung_params  # noqa: E402

CSV = OUT / "design_dev.csv"
TASKS = {  # level (accuracy or R@1, %) -> how it is read from one evaluated checkpoint's {task: error %}
    "imagenet_0shot": lambda v: 100 - v["imagenet/0shot"],
    "imagenet_10shot": lambda v: 100 - v["imagenet/10shot"],
    "coco_i2t_r1": lambda v: 100 - v["coco/i2t"],
    "perceived_gender": lambda v: 100 - v["fairface/perceived_gender"],
    "low_resource_xm3600_r1": lambda v: 100 - _mean(v, "low"),
    "high_resource_xm3600_r1": lambda v: 100 - _mean(v, "high"),
    "male_preference": lambda v: v["fairface/representation_bias"],
}
assert len(TARGETS) == 5  # the first five levels above are the study targets, in TARGETS' order


def _mean(v: dict, group: str) -> float:
    from vlscale.evals.groups import XM3600_HIGH_RESOURCE, XM3600_LOW_RESOURCE

    tasks = XM3600_LOW_RESOURCE if group == "low" else XM3600_HIGH_RESOURCE
    return sum(v[t] for t in tasks) / len(tasks)


def _set(p: dict, path: str, value) -> None:
    *parents, last = path.split(".")
    for k in parents:
        if k not in p:
            raise SystemExit(f"override {path!r}: params.yaml has no key {k!r}")
        p = p[k]
    p[last] = value


def probe_params(params: dict, n: int, overrides: dict, seed: int = 0, fraction: float = 1.0) -> dict:
    """params.yaml at rung N with one natural run of `fraction`, one cool-down at its end and the overrides."""
    p = rung_params(params, n, key="dev", seeds=1)
    p["runs"] = {"probe": {"fraction": fraction, "seed": seed}}
    p["train"]["cooldown_budgets"] = [1.0]
    for path, value in overrides.items():
        _set(p, path, value)
    return p


def levels(clone: Path, run: str = "probe") -> dict:
    """The levels of a run's last checkpoint in <clone>/results/evaluate."""
    d = last_checkpoint(clone / f"results/evaluate/{run}.parquet")
    v = dict(zip(d.task, d.value))
    return {name: round(float(read(v)), 2) for name, read in TASKS.items()}


def run(name: str, overrides: dict, n: int, seed: int, work: Path) -> dict:
    params = probe_params(read_params(ROOT / "params.yaml", "cpu"), n, overrides, seed)
    t0 = time.time()
    clone = clone_of(work / name)
    repro(clone, params, clone / "probe_repro.log", "evaluate")
    train = json.loads((clone / "runs/probe/train.json").read_text())
    row = {"probe": name, "examples_seen": n, "seed": seed, "overrides": json.dumps(overrides, sort_keys=True),
           **levels(clone), "train_s": round(train["wall_s"], 1),
           "examples_per_s": round(train["examples_per_s"]), "wall_s": round(time.time() - t0, 1)}
    _append(row)
    return row


def _append(row: dict) -> None:
    import pandas as pd

    rows = pd.read_csv(CSV).to_dict("records") if CSV.exists() else []
    rows = [r for r in rows if r["probe"] != row["probe"]] + [row]
    pd.DataFrame(rows).to_csv(CSV, index=False)


def table() -> Path:
    import pandas as pd

    d = pd.read_csv(CSV)
    names = list(TASKS)
    lines = ["# Design probes for the study profile (dev key, one seed, the 100% run's last checkpoint)", "",
             "Levels in %; targets: " + ", ".join(f"{n} ≥ {t}" for n, (t, _) in TARGETS.items()) + ".", "",
             "| probe | N | overrides | " + " | ".join(names) + " | train s | ex/s |",
             "|---|---|---|" + "---|" * (len(names) + 2)]
    for _, r in d.iterrows():
        lines.append(f"| {r['probe']} | {r['examples_seen']:,} | `{r['overrides']}` | "
                     + " | ".join(f"{r[n]:.1f}" for n in names) + f" | {r['train_s']:.0f} | {r['examples_per_s']:,} |")
    path = OUT / "design_dev.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", nargs="?")
    parser.add_argument("overrides", nargs="?", default="{}", help="JSON: dotted param path -> value")
    parser.add_argument("--examples", type=int, default=800_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=ROOT.parent / "design")
    parser.add_argument("--table", action="store_true")
    args = parser.parse_args(argv)
    if args.table:
        print(table())
        return
    if not args.name:
        parser.error("a probe name is needed (or --table)")
    print(run(args.name, json.loads(args.overrides), args.examples, args.seed, args.work))


if __name__ == "__main__":
    main()
