"""The filter stage's arms on disk: where they are and how to read one back, checked against the stage's manifest.

An arm is a subset of the pool as DataComp gives one, a sorted id list (<arm>.npy); the filter stage writes them
(vlscale.filtering.stage), and a run that trains on an arm reads it here (vlscale.runs)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

FILTER_DIR = Path("data/filter")


def read_manifest(out_dir: str | Path = FILTER_DIR) -> dict:
    """The filter stage's manifest.json, or FileNotFoundError saying to run the stage."""
    path = Path(out_dir) / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no filter manifest; run the filter stage first (dvc repro filter)")
    return json.loads(path.read_text())


def sha256_of(ids: np.ndarray) -> str:
    """sha256 of an id list as int64 bytes (the manifest records it; a run fingerprints its arm by it)."""
    return hashlib.sha256(np.ascontiguousarray(ids, np.int64).tobytes()).hexdigest()


def arm_path(arm: str, out_dir: str | Path = FILTER_DIR) -> Path:
    return Path(out_dir) / f"{arm}.npy"


def read_arm(arm: str, out_dir: str | Path = FILTER_DIR) -> tuple[np.ndarray, dict]:
    """(sorted ids, manifest entry) of a filter arm the filter stage wrote; ValueError naming what is missing."""
    manifest = read_manifest(out_dir)
    if arm not in manifest["arms"]:
        raise ValueError(f"{Path(out_dir) / 'manifest.json'}: no arm {arm!r}; the filter stage wrote {sorted(manifest['arms'])}")
    ids = np.load(arm_path(arm, out_dir))
    entry = manifest["arms"][arm]
    if sha256_of(ids) != entry["sha256"]:
        raise ValueError(f"{arm_path(arm, out_dir)} does not match its manifest entry (sha256); re-run the filter stage")
    return ids, {**entry, "key": manifest["key"], "world": manifest.get("world_fingerprint"),
                 "source": manifest.get("source"), "pool_label": manifest.get("pool_label")}
