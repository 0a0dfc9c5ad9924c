"""Where a run's data comes from: a subset of the sample stage (natural or rebalanced) or a filter arm of the filter
stage; the record of it that the run's training fingerprint hashes, and the share of the pool the run trains on."""
from __future__ import annotations

from pathlib import Path

from vlscale.data.filter_arms import FILTER_DIR, read_arm, read_manifest
from vlscale.files import read_json
from vlscale.runs.settings import Run

SAMPLE_DIR = Path("data/sample")


def data_record(run: Run, sample_dir: str | Path = SAMPLE_DIR, filter_dir: str | Path = FILTER_DIR) -> dict:
    """The record of the data `run` reads, as its training fingerprint hashes it: the sample stage's entry of its
    subset (counts, mixture and key); a filter arm's run, the filter stage's entry of the arm (size, sha256 and key)."""
    if run.filter:
        entry = read_arm(run.filter, filter_dir)[1]
        # the arm's ids (their sha256) and key say what the run reads; where they came from is in the manifest
        return {"filter": run.filter, **{k: v for k, v in entry.items() if k not in ("source", "pool_label")}}
    path = Path(sample_dir) / "subsets.json"
    index = read_json(path)
    subset = next((s for s in index["subsets"].values() if s["fraction"] == run.fraction), None)
    if subset is None:
        raise ValueError(f"{path}: no subset of fraction {run.fraction} (run {run.name!r}); the sample stage wrote "
                         f"{sorted(s['fraction'] for s in index['subsets'].values())}")
    return {"key": index["key"], "source": index.get("source"), "world": index.get("world_fingerprint"), **subset}


def pool_share(run: Run, filter_dir: str | Path = FILTER_DIR) -> float:
    """The share of the pool `run` trains on: its fraction, or its filter arm's size over the pool's (the filter
    stage's manifest)."""
    if run.filter:
        manifest = read_manifest(filter_dir)
        return manifest["k"] / manifest["pool_pairs"]
    return run.fraction
