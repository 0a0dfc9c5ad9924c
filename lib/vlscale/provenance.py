"""What made a result: parameters, profile and versions, recorded in every output."""
from __future__ import annotations

import importlib.metadata as md
import platform
import subprocess
import sys
from pathlib import Path

_PACKAGES = ("vlscale", "numpy", "jax", "jaxlib", "numba", "pandas", "pyarrow", "papermill", "dvc")


def _version(name: str) -> str | None:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def git_commit(root: str | Path = ".") -> str | None:
    """The checked-out commit (with '+dirty' when the work tree differs), or None outside git."""
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def provenance(profile: str, params: dict, with_commit: bool = True, **extra) -> dict:
    """The record stored under "provenance" in every metrics JSON and result file.

    with_commit=False leaves out the git commit: for data that later stages depend on (the sample
    stage's subsets.json), whose hash must not change with every commit of unrelated code."""
    record = {
        "profile": profile,
        "params": params,
        "versions": {"python": platform.python_version(), **{p: _version(p) for p in _PACKAGES}},
        "platform": f"{sys.platform}-{platform.machine()}",
        **extra,
    }
    if with_commit:
        record["git_commit"] = git_commit()
    return record
