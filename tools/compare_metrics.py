"""Compare two metrics/ folders value by value, apart from provenance.

    python tools/compare_metrics.py BEFORE AFTER [--ignore KEY ...]

Every JSON file under either folder is read; "provenance" entries (commit, versions, the params as the stage saw
them) are dropped at every depth, and so is any key named with --ignore (e.g. a wall-clock time). Prints each file
only one side has and each leaf that differs (path and both values), then a one-line summary; exits 1 on any
difference. Numbers compare exactly: a refactor that keeps the arithmetic keeps every bit.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _leaves(value, path=(), ignore=frozenset()):
    if isinstance(value, dict):
        for k, v in value.items():
            if k != "provenance" and k not in ignore:
                yield from _leaves(v, (*path, str(k)), ignore)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaves(v, (*path, str(i)), ignore)
    else:
        yield "/".join(path), value


def _same(a, b) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and a != a and b != b)  # NaN equals NaN here


def compare(before: Path, after: Path, ignore=frozenset()) -> list[str]:
    """The differences between two metrics folders, one line each (empty: identical apart from provenance)."""
    files = sorted({p.relative_to(before) for p in before.rglob("*.json")}
                   | {p.relative_to(after) for p in after.rglob("*.json")})
    out = []
    for rel in files:
        a, b = before / rel, after / rel
        if not a.is_file() or not b.is_file():
            out.append(f"{rel}: only in {'AFTER' if b.is_file() else 'BEFORE'}")
            continue
        la = dict(_leaves(json.loads(a.read_text()), ignore=ignore))
        lb = dict(_leaves(json.loads(b.read_text()), ignore=ignore))
        for key in sorted(la.keys() | lb.keys()):
            if key not in la or key not in lb or not _same(la[key], lb[key]):
                out.append(f"{rel}: {key}: {la.get(key, '<absent>')!r} -> {lb.get(key, '<absent>')!r}")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--ignore", nargs="*", default=[], help="keys to leave out at every depth")
    args = ap.parse_args(argv)
    for folder in (args.before, args.after):
        if not folder.is_dir():
            ap.error(f"{folder}: no such folder")
    diffs = compare(args.before, args.after, frozenset(args.ignore))
    print("\n".join(diffs))
    n = len({p.relative_to(args.before) for p in args.before.rglob("*.json")})
    print(f"{n} files compared: " + ("identical apart from provenance" if not diffs else f"{len(diffs)} differences"))
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
