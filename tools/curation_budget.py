"""What `make repro` takes with the curation study (issue 11) in it, measured before the study exists.

    git clone <vlscale> scratch && cd scratch && python3 tools/curation_budget.py   # it edits params.yaml

The curation grid the default profile plans: the three data scales rebalanced, three filter arms (CLIP
score, classifier, English) and the scorer the CLIP arm needs, each a run of `--budget` ×
train.examples_seen with its cool-downs (0.33: the natural runs' third cool-down, so every curated run has
a compute-matched natural checkpoint). The random control arm keeps 10% of the pool at random: that is
the natural 10% run, whose 0.33 checkpoint is its compute-matched run. A run's cost does not depend on
which ids it reads, so the arms and the scorer are stood in for by runs of the same budget on the 10%
subset (distinct seeds). This script adds them to params.yaml, times `make repro` on this fresh clone,
takes off the stand-in scorer's evaluation (the real scorer is not evaluated) and adds the filter stage's
per-pair work: embedding every pair of the pool once with the scorer. It prints the stage and run times.
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
from stage_times import by_stage, run_times, stage_times  # noqa: E402

STAND_INS = {
    "cur_r1": {"fraction": 0.01, "rebalanced": True},
    "cur_r10": {"fraction": 0.1, "rebalanced": True},
    "cur_r100": {"fraction": 1.0, "rebalanced": True},
    "cur_clip": {"fraction": 0.1, "seed": 101},
    "cur_classifier": {"fraction": 0.1, "seed": 102},
    "cur_english": {"fraction": 0.1, "seed": 103},
    "cur_scorer": {"fraction": 0.1, "seed": 105},
}
SCORER = "cur_scorer"


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
        print(f"  {stage:14s} {s:5.0f} s")
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=0.33)
    parser.add_argument("--score", metavar="RUN_DIR", help="only time the scoring pass with this run's final model")
    args = parser.parse_args()
    if args.score:
        seconds, pairs = score_pool_seconds(Path(args.score))
        print(seconds, pairs)
        return
    if Path("runs").exists() or Path("reports").exists():
        raise SystemExit("run this in a fresh clone (no runs/, no reports/): it times `make repro` from nothing")
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["runs"].update({k: {**v, "budget": args.budget} for k, v in STAND_INS.items()})
    Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    t0 = time.perf_counter()
    subprocess.run(["make", "repro"], check=True)
    repro_s = time.perf_counter() - t0
    rows = stage_times(Path("reports"))
    runs = run_times(Path("metrics"))
    scorer_eval_s = sum(r["s"] for r in runs if r["run"] == SCORER and r["stage"] == "evaluate")
    # the scoring pass needs the environment make just built (this script may run on the bare python3)
    scored = subprocess.run([".venv/bin/python", __file__, "--score", str(Path("runs") / SCORER)], check=True,
                            capture_output=True, text=True).stdout.split()
    score_s, pairs = float(scored[-2]), int(scored[-1])

    _print(rows, "make repro with the curation stand-ins, notebooks")
    print("  per run (train s, evaluate s):")
    for name in params["runs"]:
        t = {r["stage"]: r["s"] for r in runs if r["run"] == name}
        print(f"    {name:16s} {t.get('train', 0):5.0f} {t.get('evaluate', 0):5.0f}")
    print(f"  make repro, wall: {repro_s:.0f} s")
    print(f"  less the stand-in scorer's evaluation: {scorer_eval_s:.0f} s")
    print(f"  filter scoring, every pool pair through the scorer: {score_s:.0f} s for {pairs:,} pairs")
    total = repro_s - scorer_eval_s + score_s
    print(f"\ntotal {repro_s:.0f} - {scorer_eval_s:.0f} + {score_s:.0f} = {total:.0f} s ({total / 60:.1f} min)")
    out = Path("results/curation_budget.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"budget": args.budget, "stand_ins": STAND_INS, "make_repro_s": repro_s,
                               "scorer_evaluate_s": scorer_eval_s, "scoring_s": score_s, "pool_pairs": pairs,
                               "total_s": total, "runs": runs,
                               "notebooks": [{**r, "start": str(r["start"]), "end": str(r["end"])} for r in rows]},
                              indent=1))


if __name__ == "__main__":
    main()
