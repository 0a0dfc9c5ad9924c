"""What the curation study (issue 11) will add to `make repro`, measured before it exists.

    make repro && python tools/curation_budget.py        # in a scratch clone: it edits params.yaml

The curation grid the default profile plans: the three data scales rebalanced, four filter arms (CLIP
score, classifier, English, random control) and the scorer the CLIP arm needs, each a run of
`--budget` × train.examples_seen (the paper's filter study: 30B of 100B seen) with its cool-downs. A
run's cost does not depend on which ids it reads, so the arms and the scorer are stood in for by runs of
the same budget on the 10% subset (distinct seeds). This script adds them to params.yaml, runs
`dvc repro` (which trains and evaluates only them, then the train-curves and figures stages again),
and measures the filter stage's per-pair work: embedding every pair of the pool once with the scorer.
It prints the stage times of `make repro` and of the increment, and their sum.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from stage_times import by_stage, stage_times  # noqa: E402

STAND_INS = {
    "cur_r1": {"fraction": 0.01, "rebalanced": True},
    "cur_r10": {"fraction": 0.1, "rebalanced": True},
    "cur_r100": {"fraction": 1.0, "rebalanced": True},
    "cur_clip": {"fraction": 0.1, "seed": 101},
    "cur_classifier": {"fraction": 0.1, "seed": 102},
    "cur_english": {"fraction": 0.1, "seed": 103},
    "cur_random": {"fraction": 0.1, "seed": 104},
    "cur_scorer": {"fraction": 0.1, "seed": 105},
}


def score_pool_seconds(scorer_dir: Path) -> tuple[float, int]:
    """Seconds to embed every pair of the 100% pool (captions made, tokenised, images rendered) with the
    scorer's final checkpoint: the CLIP-score filter's work per pair, without its top-k."""
    import numpy as np

    from vlscale.config import load_params, validate
    from vlscale.data.input import load_source
    from vlscale.data.tokenizer import TOKENIZER_PATH, Tokenizer
    from vlscale.evals.stage import checkpoint_embedder, checkpoints
    from vlscale.world.render import render_jax, render_padded
    from vlscale.world.spec import build_world

    p = validate(load_params("params.yaml"))
    tokenizer = Tokenizer(TOKENIZER_PATH)
    config = {**p["model"], "text": {**p["model"]["text"], "vocab_size": tokenizer.vocab_size}}
    px, max_len = p["train"]["image_px"], p["tokenizer"]["max_len"]
    world = build_world(p["world"])
    source = load_source(world, Path("data/sample"), "100pct", False, px)
    _, last = checkpoints(scorer_dir)[-1]
    emb = checkpoint_embedder(last, config, tokenizer, px, max_len, p["evaluate"]["batch_size"])
    render = render_jax(world, px)
    t0, n, chunk = time.perf_counter(), len(source), 8192
    for start in range(0, n, chunk):
        positions = np.arange(start, min(start + chunk, n))
        _, texts = source.read(positions)
        pixels = render_padded(render, source.ids(positions), emb.batch_size)
        zi = emb.images(f"pool_{start}", lambda a, b: pixels[a:b], len(positions))
        scores = (zi * emb.texts(texts)).sum(1)
        assert np.isfinite(scores).all()
    return time.perf_counter() - t0, n


def _print(rows: list[dict], title: str) -> float:
    total = sum(r["s"] for r in rows)
    print(f"\n{title}: {total:.0f} s ({total / 60:.1f} min) in {len(rows)} notebooks")
    for stage, (count, s) in by_stage(rows).items():
        print(f"  {stage:14s} {count:2d} × {s / count:5.0f} s = {s:5.0f} s")
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=0.3)
    parser.add_argument("--make-repro-seconds", type=float,
                        help="wall time of the `make repro` before (for the total; default: its notebooks' span)")
    args = parser.parse_args()
    base = stage_times(Path("reports"))
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["runs"].update({k: {**v, "budget": args.budget} for k, v in STAND_INS.items()})
    Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    t0 = time.perf_counter()
    subprocess.run(["dvc", "repro"], check=True)
    repro_s = time.perf_counter() - t0
    after = stage_times(Path("reports"))
    seen = {(r["notebook"], r["start"]) for r in base}
    added = [r for r in after if (r["notebook"], r["start"]) not in seen]
    score_s, pairs = score_pool_seconds(Path("runs/cur_scorer"))

    _print(base, "make repro, notebooks")
    _print(added, f"the curation stand-ins (budget {args.budget}), notebooks")
    print(f"  dvc repro of the increment, wall: {repro_s:.0f} s")
    print(f"  filter scoring, every pool pair through the scorer: {score_s:.0f} s for {pairs:,} pairs")
    span = (max(r["end"] for r in base) - min(r["start"] for r in base)).total_seconds()
    before = args.make_repro_seconds or span
    total = before + repro_s + score_s
    print(f"\nmake repro {before:.0f} s + increment {repro_s:.0f} s + scoring {score_s:.0f} s = {total:.0f} s "
          f"({total / 60:.1f} min)")
    out = Path("results/curation_budget.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"budget": args.budget, "stand_ins": STAND_INS, "make_repro_s": before,
                               "increment_s": repro_s, "scoring_s": score_s, "pool_pairs": pairs, "total_s": total,
                               "added": [{**r, "start": str(r["start"]), "end": str(r["end"])} for r in added]},
                              indent=1))


if __name__ == "__main__":
    main()
