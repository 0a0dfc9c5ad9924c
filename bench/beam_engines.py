"""Benchmark: the sample stage's data work (scan of real shards, then the nested subsets' uid lists) on the local
engine and on Beam, on the same webdataset shards, from 10^4 to 10^6 records.

Each (engine, size) runs in a fresh process, so its peak resident memory (the process and, for Beam's worker
processes, the largest child) is its own. Both engines are checked to write the same uid lists. Shards hold
10^4 examples each (tiny JPEG/PNG images, captions, JSON metadata, 2% duplicate uids, 1% corrupt images).

    .venv/bin/python bench/beam_engines.py                      # 1e4 1e5 1e6 records, Beam on 2 worker processes
    .venv/bin/python bench/beam_engines.py --records 1e4 1e5 --workers 2
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

PER_SHARD = 10_000
LANGUAGES = ["en", "de", "sw", "hi", "ja"]


def _image(seed: int, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (12, 16, 3), np.uint8)).save(buf, fmt)
    return buf.getvalue()


def write_shards(folder: Path, records: int) -> list[str]:
    """`records` examples in tar shards of PER_SHARD (written once per size, reused by both engines)."""
    folder.mkdir(parents=True, exist_ok=True)
    images = [_image(i, "JPEG" if i % 2 else "PNG") for i in range(64)]
    bad = images[0][:20]
    rng = np.random.default_rng(0)
    paths = []
    for s in range(-(-records // PER_SHARD)):
        path = folder / f"shard_{s:05d}.tar"
        paths.append(str(path))
        if path.exists():
            continue
        n = min(PER_SHARD, records - s * PER_SHARD)
        with tarfile.open(path, "w") as tar:
            for i in range(n):
                g = s * PER_SHARD + i
                uid = f"u{int(rng.integers(0, g + 1)) if rng.random() < 0.02 else g}"
                lang = LANGUAGES[g % len(LANGUAGES)]
                img = bad if rng.random() < 0.01 else images[g % 64]
                ext = "png" if img[:4] == b"\x89PNG" else "jpg"
                for name, data in ((f"{i:06d}.{ext}", img), (f"{i:06d}.txt", f"caption {g} {lang}".encode()),
                                   (f"{i:06d}.json", json.dumps({"uid": uid, "language": lang}).encode())):
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    return paths


FRACTIONS = {"1pct": 0.01, "10pct": 0.1, "100pct": 1.0}


def run_one(engine: str, shards: list[str], out: str, workers: int) -> dict:
    """One engine's scan and uid lists, timed (runs in its own process)."""
    from vlscale.data import sampling
    from vlscale.data.shards import scan_shards

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if engine == "local":
        scan = scan_shards(shards, languages=LANGUAGES, progress=False)
        t1 = time.perf_counter()
        subsets = sampling.real_subsets(scan.records, key=0)
        mixes = sampling.mixtures(subsets, list(FRACTIONS.values()), {}, key=0)
        sampling.write_subsets(out, subsets, list(FRACTIONS.values()), mixes, 10**9, {}, records=scan.records)
    else:
        from vlscale.beam import sample as beam_sample
        from vlscale.config import BeamParams

        beam_params = BeamParams(runner="in_process", options={"direct_running_mode": "multi_processing",
                                                               "direct_num_workers": workers})
        scan = beam_sample.scan_shards(shards, languages=LANGUAGES, out_dir=out / "beam", beam_params=beam_params)
        t1 = time.perf_counter()
        beam_sample.subset_uid_lists(sorted((out / "beam/records").glob("shard_*.parquet")), FRACTIONS, 0, out,
                                     beam_params, 10**9)
    t2 = time.perf_counter()
    digest = hashlib.sha256(b"".join((out / f"uids_{label}.parquet").read_bytes() for label in FRACTIONS)).hexdigest()
    return {"scan_s": t1 - t0, "subsets_s": t2 - t1, "total_s": t2 - t0, "kept": scan.report["kept"],
            "examples_in": scan.report["examples_in"], "lists_sha256": digest[:16],
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "peak_child_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=float, nargs="+", default=[1e4, 1e5, 1e6])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "vlscale_bench_beam"))
    ap.add_argument("--one", nargs=3, metavar=("ENGINE", "SHARDS_JSON", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        engine, shards, out = args.one
        print(json.dumps(run_one(engine, json.loads(shards), out, args.workers)))
        return
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores; Beam FnApiRunner, "
          f"{args.workers} worker processes")
    print("| records | engine | scan s | subsets s | total s | records/s | peak RSS MiB (process / largest child) | same lists |")
    print("|---:|---|---:|---:|---:|---:|---|---|")
    for n in (int(r) for r in args.records):
        shards = write_shards(Path(args.dir) / f"shards_{n}", n)
        results = {}
        for engine in ("local", "beam"):
            with tempfile.TemporaryDirectory() as out:
                r = subprocess.run([sys.executable, __file__, "--workers", str(args.workers), "--one", engine,
                                    json.dumps(shards), out], capture_output=True, text=True)
                if r.returncode:
                    raise SystemExit(r.stderr[-3000:])
                results[engine] = json.loads(r.stdout.strip().splitlines()[-1])
        same = results["local"]["lists_sha256"] == results["beam"]["lists_sha256"]
        for engine, x in results.items():
            print(f"| {n:,} | {engine} | {x['scan_s']:.1f} | {x['subsets_s']:.1f} | {x['total_s']:.1f} | "
                  f"{n / x['total_s']:,.0f} | {x['peak_rss_mib']:,.0f} / {x['peak_child_rss_mib']:,.0f} | "
                  f"{'yes' if same else 'NO'} |", flush=True)


if __name__ == "__main__":
    main()
