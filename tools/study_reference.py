"""The study profile's committed reference: a finished `make repro PROFILE=study` checkout's records, its PDF's pages,
its time by stage and its targets, copied under results/reference/study/.

    git clone <this repository> ../study && cd ../study && make repro PROFILE=study   # the study, from a fresh clone
    python tools/study_reference.py ../study          # results/reference/study/ in this checkout

Writes:
- paper.json, figures.json, attention.json, sample.json, filter.json (metrics/), train/<run>.json;
- pages/main-<n>.png: the PDF's pages (poppler's pdftoppm, 80 dpi; the PDF itself is rebuilt by the repro);
- stage_times.json: each stage's seconds (from the executed notebooks) and their sum;
- targets.json: each study target (tools/ladder.TARGETS) at the 100% run, seed mean, with its 95% interval over
  seeds and test images and pass (value ≥ target), plus the commit, machine and profile that made them;
- final_tasks.csv: every run's last checkpoint, each analog task's value (results/evaluate/<run>.parquet): the
  per-task numbers behind the group averages the records hold.
"""
from __future__ import annotations

import argparse
import platform
import shutil
import subprocess
import sys
from pathlib import Path

from vlscale.files import read_json, write_json

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ladder import ROOT, TARGETS, last_checkpoint  # noqa: E402
from stage_times import by_stage, stage_times  # noqa: E402

OUT = ROOT / "results/reference/study"
RECORDS = ("paper", "figures", "attention", "sample", "filter")
# target (tools/ladder.TARGETS, which holds its threshold) -> where its error level sits in figures.json: a table1
# task, a group average, or an evidence level
TARGET_SOURCES = {
    "ImageNet-like 0-shot accuracy": ("table1", "imagenet/0shot", "100%"),
    "ImageNet-like 10-shot accuracy": ("table1", "imagenet/10shot", "100%"),
    "COCO-like image-to-text R@1": ("table1", "coco/i2t", "100%"),
    "perceived gender accuracy": ("evidence", "level/perceived_gender_error/100%"),
    "low-resource XM3600 R@1": ("group_averages_by_scale", "100%", "multilingual_low_resource"),
}


def error_interval(entry: dict) -> tuple[float, float, float, int]:
    """(error %, 95% interval low, high, seeds) of a level: an evidence level's interval already holds seeds and
    images; a table entry's ci95 is over test images, widened by its seed spread (t on n - 1 degrees of freedom)."""
    from scipy import stats

    if "reference" in entry:  # an evidence level: effect = value - reference, interval on the effect
        return entry["value"], entry["reference"] + entry["lo"], entry["reference"] + entry["hi"], entry["n_a"]
    value, (lo, hi), n = entry["error_pct"], entry["ci95"], entry.get("n_seeds") or 1
    sd = entry.get("seed_sd") or 0.0
    if n < 2 or not sd:
        return value, lo, hi, n
    image_se = (hi - lo) / (2 * 1.959964)
    half = stats.t.ppf(0.975, n - 1) * (image_se**2 + sd**2 / n) ** 0.5
    return value, float(value - half), float(value + half), n


def targets(figures: dict) -> list[dict]:
    """Each target's level (100 - error, %), its 95% interval over seeds and test images and pass, from a figures
    record (the 100% run's seed mean)."""
    rows = []
    for name, path in TARGET_SOURCES.items():
        threshold = TARGETS[name][0]
        entry = figures
        for key in path:
            entry = entry[key]
        error, lo, hi, n = error_interval(entry)
        value = 100.0 - error
        rows.append({"target": name, "threshold": threshold, "value": round(value, 2),
                     "ci95": [round(100.0 - hi, 2), round(100.0 - lo, 2)], "n_seeds": n,
                     "pass": bool(value >= threshold)})
    return rows


def final_tasks(study: Path):
    """run, examples_seen, task, metric, value: every run's last checkpoint in <study>/results/evaluate."""
    import pandas as pd

    frames = [last_checkpoint(f, ["run", "examples_seen", "task", "metric", "value"])
              for f in sorted((study / "results/evaluate").glob("*.parquet"))]
    if not frames:
        raise SystemExit(f"{study}/results/evaluate: no evaluated runs")
    return pd.concat(frames, ignore_index=True).round({"value": 3})


def _git(repo: Path, *args) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()


def machine() -> dict:
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in flags.splitlines() if line.startswith("model name")), "")
    import os

    return {"cpu": model or platform.processor(), "cores": os.cpu_count(), "avx512f": " avx512f" in flags,
            "python": platform.python_version(), "system": platform.platform()}


def write(study: Path, out: Path = OUT, keep_times: bool = False) -> Path:
    import yaml

    from vlscale.config import load_params

    profile = load_params(study / "params.yaml").profile
    if profile != "study":
        raise SystemExit(f"{study}/params.yaml: profile = {profile!r}; the reference is made from a study repro")
    out.mkdir(parents=True, exist_ok=True)
    for name in RECORDS:
        shutil.copy2(study / f"metrics/{name}.json", out / f"{name}.json")
    shutil.rmtree(out / "train", ignore_errors=True)  # a run the profile does not train leaves no record
    (out / "train").mkdir()
    for f in sorted((study / "metrics/train").glob("*.json")):
        shutil.copy2(f, out / "train" / f.name)
    pages = out / "pages"
    shutil.rmtree(pages, ignore_errors=True)
    pages.mkdir()
    subprocess.run(["pdftoppm", "-png", "-r", "80", str(study / "paper/main.pdf"), str(pages / "main")], check=True)
    if keep_times and (out / "stage_times.json").is_file():  # the full repro's, before a run was added to it
        times = read_json(out / "stage_times.json")
    else:
        rows = stage_times(study / "reports", study / "dvc.yaml")
        # each stage's own seconds (its notebook's last execution); their sum leaves out DVC's work between stages
        times = {"stages": {s: round(sec, 1) for s, (_, sec) in by_stage(rows).items()}}
        times["notebooks_s"] = round(sum(times["stages"].values()), 1)
        write_json(out / "stage_times.json", times)
    final_tasks(study).to_csv(out / "final_tasks.csv", index=False)
    figures = read_json(study / "metrics/figures.json")
    record = {"targets": targets(figures), "key": yaml.safe_load((study / "params.yaml").read_text())["evaluate"]["use_key"],
              "commit": _git(study, "rev-parse", "HEAD"), "dirty": bool(_git(study, "status", "--porcelain")),
              "machine": machine(), "profile": profile, "wall_s": times["notebooks_s"]}
    write_json(out / "targets.json", record)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", type=Path, help="a checkout where `make repro PROFILE=study` has finished")
    parser.add_argument("--keep-times", action="store_true",
                        help="keep the stage times already in the reference (a later repro of the same checkout only "
                             "added runs: its notebooks' times are not the study's)")
    args = parser.parse_args(argv)
    print(write(args.study.resolve(), keep_times=args.keep_times))


if __name__ == "__main__":
    main()
