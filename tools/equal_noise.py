"""Finding 6 in a world whose caption noise is the same in every region: how much of the filters' Culture penalty
rests on Africa's and Asia's noisier alt-text?

In the default world caption noise (misaligned and vague captions) differs by region (params.yaml world.noise), so
even a perfect noise filter keeps fewer pairs from the noisier regions. This check sets every region's rates to the
pool's overall shares (metrics/world.json caption_kinds_pct of a default repro, so the total noise is unchanged),
keeps only the filter study's runs, reruns the pipeline to the figures stage and prints each filter-minus-English
comparison of both worlds side by side, with intervals over seeds and test images.

    # in a scratch clone with the environment (`make env`), after a default `make repro` in REPO:
    python tools/equal_noise.py --reference REPO        # rewrites params.yaml here, runs dvc repro figures
    python tools/equal_noise.py --reference REPO --compare-only

Writes results/reference/equal_noise.md (the table) in this clone.
"""
from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import yaml

# The filter study alone: the arms with two seeds each, the random data with three (a third of the examples).
RUNS = {
    "s10": {"fraction": 0.1, "budget": 0.33},
    "s10_seed1": {"fraction": 0.1, "budget": 0.33, "seed": 1},
    "f_random": {"fraction": 1.0, "filter": "random", "budget": 0.33, "seed": 2},
    "f_clip": {"fraction": 1.0, "filter": "clip", "budget": 0.33},
    "f_clip_seed1": {"fraction": 1.0, "filter": "clip", "budget": 0.33, "seed": 1},
    "f_english": {"fraction": 1.0, "filter": "english", "budget": 0.33},
    "f_english_seed1": {"fraction": 1.0, "filter": "english", "budget": 0.33, "seed": 1},
    "f_classifier": {"fraction": 1.0, "filter": "classifier", "budget": 0.33},
}
COMPARISONS = [f"filter/{a}_minus_english/{g}" for a in ("clip", "classifier") for g in ("western", "culture", "fairness")]


def equal_rates(reference: Path) -> dict[str, float]:
    """The pool's overall misaligned and vague shares (fractions) from a default repro's world record."""
    kinds = json.loads((reference / "metrics/world.json").read_text())["caption_kinds_pct"]
    return {"misaligned": kinds["misaligned"] / 100, "vague": kinds["vague"] / 100}


def write_params(path: Path, rates: dict[str, float]) -> None:
    p = yaml.safe_load(path.read_text())
    for kind, rate in rates.items():
        p["world"]["noise"][kind] = {region: round(rate, 4) for region in p["world"]["noise"][kind]}
    p["runs"] = RUNS
    path.write_text(yaml.safe_dump(p, sort_keys=False, allow_unicode=True, width=120))


def _cell(r: dict | None) -> str:
    if r is None:
        return "–"
    return f"{r['effect']:+.2f} [{r['lo']:+.2f}, {r['hi']:+.2f}] ({r['n_a']}/{r['n_b']} seeds)"


def compare(reference: Path, here: Path) -> str:
    """The filter-minus-English comparisons of the default world and of this one, as a markdown table."""
    default = json.loads((reference / "metrics/figures.json").read_text())["evidence"]
    equal = json.loads((here / "metrics/figures.json").read_text())["evidence"]
    rows = ["| comparison (error pp, filter minus English) | default world | equal noise |", "|---|---:|---:|"]
    for name in COMPARISONS:
        rows.append(f"| {name.removeprefix('filter/')} | {_cell(default.get(name))} | {_cell(equal.get(name))} |")
    culture = [d.get("filter/clip_minus_english/culture") for d in (default, equal)]
    if all(culture):
        if culture[0]["lo"] <= 0 <= culture[0]["hi"]:
            rows.append("\nIn the default world the CLIP arm's Culture penalty against English is not told apart from zero "
                        f"({_cell(culture[0])}): there is no penalty for the noise rates to explain; with equal noise "
                        f"it is {_cell(culture[1])}.")
        else:
            rows.append(f"\nCLIP's Culture penalty left with equal noise: {100 * culture[1]['effect'] / culture[0]['effect']:.0f}% "
                        "of the default world's (point estimates; intervals above).")
    return "\n".join(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reference", type=Path, required=True, help="a repository after a default `make repro`")
    ap.add_argument("--compare-only", action="store_true", help="print the table of an equal-noise run already made")
    args = ap.parse_args()
    here = Path(__file__).resolve().parents[1]
    if args.reference.resolve() == here:
        raise SystemExit("--reference must be another clone: this one's params.yaml is rewritten")
    if not args.compare_only:
        rates = equal_rates(args.reference)
        print(f"every region: misaligned {rates['misaligned']:.4f}, vague {rates['vague']:.4f}")
        write_params(here / "params.yaml", rates)
        subprocess.run(["dvc", "repro", "figures"], cwd=here, check=True)
    table = compare(args.reference, here)
    out = here / "results/reference/equal_noise.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
