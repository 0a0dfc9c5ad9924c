"""How long each stage of the last `dvc repro` took, from the executed notebooks papermill wrote.

    python tools/stage_times.py            # reports/*.ipynb of this checkout

Every stage executes its notebook with papermill, which records the notebook's start, end and
duration; this prints them as a table, with the wall time from the first start to the last end (the
stages run one after another), and the seconds of each run inside the train and evaluate stages (their
metrics' wall_s: a run trained or evaluated by an earlier repro and kept shows its own time then).
"""
from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path


def stage_of(notebook: str, stages) -> str:
    """The dvc.yaml stage of an executed notebook: 05_train -> train, 08_figures -> figures (the longest stage
    name its name starts with after the number)."""
    rest = notebook.split("_", 1)[1] if "_" in notebook else notebook
    matches = [s for s in stages if rest == s or rest.startswith(f"{s}_")]
    return max(matches, key=len) if matches else rest


def stage_times(reports: Path, dvc_file: Path = Path("dvc.yaml")) -> list[dict]:
    """One row per executed notebook: name, stage, start, end, seconds."""
    import yaml

    stages = list(yaml.safe_load(dvc_file.read_text())["stages"])
    rows = []
    for path in sorted(reports.glob("*.ipynb")):
        meta = json.loads(path.read_text()).get("metadata", {}).get("papermill", {})
        if not meta.get("duration"):
            continue
        name = path.stem  # e.g. 05_train
        stage = stage_of(name, stages)
        rows.append({"notebook": name, "stage": stage, "start": datetime.fromisoformat(meta["start_time"]),
                     "end": datetime.fromisoformat(meta["end_time"]), "s": float(meta["duration"])})
    return rows


def run_times(metrics: Path = Path("metrics")) -> list[dict]:
    """One row per run and stage (train, evaluate): run, stage, seconds, from metrics/<stage>/<run>.json."""
    rows = []
    for stage in ("train", "evaluate"):
        for path in sorted((metrics / stage).glob("*.json")):
            record = json.loads(path.read_text())
            rows.append({"run": path.stem, "stage": stage, "s": float(record["wall_s"])})
    return rows


def by_stage(rows: list[dict]) -> dict[str, tuple[int, float]]:
    """stage -> (notebooks, seconds), in the order the stages first ran."""
    out = {}
    for r in rows:
        count, s = out.get(r["stage"], (0, 0.0))
        out[r["stage"]] = (count + 1, s + r["s"])
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reports", default="reports", type=Path)
    args = parser.parse_args()
    rows = stage_times(args.reports)
    if not rows:
        raise SystemExit(f"{args.reports}: no executed notebooks with papermill timings; run `dvc repro` first")
    print("| notebook | s |\n|---|---:|")
    for r in rows:
        print(f"| {r['notebook']} | {r['s']:.0f} |")
    stages = by_stage(rows)
    print("\n| stage | notebooks | s | share |\n|---|---:|---:|---:|")
    total = sum(s for _, s in stages.values())
    for stage, (count, s) in stages.items():
        print(f"| {stage} | {count} | {s:.0f} | {s / total:.0%} |")
    wall = (max(r["end"] for r in rows) - min(r["start"] for r in rows)).total_seconds()
    runs = run_times(args.reports.parent / "metrics")
    if runs:
        print("\n| run | train s | evaluate s |\n|---|---:|---:|")
        table = {}
        for r in runs:
            table.setdefault(r["run"], {})[r["stage"]] = r["s"]
        for run, t in table.items():
            cells = [f"{t[k]:.0f}" if k in t else "" for k in ("train", "evaluate")]
            print(f"| {run} | {cells[0]} | {cells[1]} |")
    print(f"\nnotebooks {total:.0f} s ({total / 60:.1f} min); first start to last end {wall:.0f} s "
          f"({wall / 60:.1f} min), DVC's own work between notebooks included")


if __name__ == "__main__":
    main()
