"""Similarity scaling, measured: each Western head concept's zero-shot accuracy and each language's XM3600 retrieval
against the number of unique training pairs of that concept or language, from the natural runs of repros (the
rungs of tools/ladder.py, or any default repro).

    python tools/similarity.py ../ladder/N200000_dev ../ladder/N800000_dev [--out results/reference/ladder]

For every natural run at its final checkpoint:
- head concept: the ImageNet-like analog's images of that class (the evaluated draw, re-drawn from the world by
  analysis/frequency.item_concepts: an analog is a pure function of world, size and key), the share the run
  classifies right (frequency.concept_values); its pairs are the run's subset's examples whose image shows that
  concept (sampling.concept_counts: the world's truth, exact);
- language: XM3600 image-to-text Recall@1 in that language; its pairs are the subset's examples of that page
  language.
The figures stage fits the law itself on every checkpoint, with intervals (analysis/frequency.py, the PDF's concept
frequency section); this tool lays rungs of different N side by side.
Writes <out>/similarity_<key>.csv (one row per run, kind and name: pairs, value, test items) and
<out>/similarity_<key>.png (the two learning curves: the values binned by pairs, one line per rung's N).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def measure(repro: Path) -> pd.DataFrame:
    """Per natural run of the repro at `repro`: every head concept's and every language's value against its pairs."""
    from vlscale.analysis import frequency, results
    from vlscale.config import load_params
    from vlscale.data import sampling
    from vlscale.evals.groups import XM3600_CODE
    from vlscale.world.spec import build_world

    p = load_params(repro / "params.yaml")
    world = build_world(p.world)
    evaluate_params = p.evaluate
    facts = results.read_analog_facts(repro / "results/evaluate")
    head = "imagenet/0shot"
    concept_of_item = frequency.item_concepts(world, facts, {head: frequency.TASKS[head]})[head]
    subsets = sampling.synthetic_subsets(world, p.sample.pool_size, p.sample.key)
    tidy = results.read_results(repro / "results/evaluate")
    natural = [r for r, run in p.runs.items() if not run.filter and not run.rebalanced]
    rows, counts = [], {}
    for run in natural:
        f = p.runs[run].fraction
        if f not in counts:
            counts[f] = (sampling.concept_counts(world, subsets, f, progress=False), subsets.counts(f))
        concept_pairs, language_pairs = counts[f]
        items = pd.read_parquet(repro / f"results/evaluate/{run}/items.parquet")
        items = items[items["task"] == head]
        last = items[items["examples_seen"] == items["examples_seen"].max()].sort_values("item")
        if len(last) != len(concept_of_item):
            raise ValueError(f"{repro}/results/evaluate/{run}: {len(last)} ImageNet-like items, the draw of key "
                             f"{facts['key']} has {len(concept_of_item)}: evaluated with other params")
        for _, r in frequency.concept_values(100 * last["value"].to_numpy(), concept_of_item).iterrows():
            c = int(r["concept"])
            rows.append({"run": run, "data_pct": 100 * f, "kind": "head concept", "name": world.concepts[c]["en"],
                         "pairs": int(concept_pairs[c]), "value": r["value"], "n_test": int(r["n_test"])})
        final = tidy[(tidy["run"] == run) & (tidy["examples_seen"] == tidy.loc[tidy["run"] == run, "examples_seen"].max())]
        for s, lang in enumerate(world.strata):
            task = f"xm3600/i2t/{XM3600_CODE.get(lang, lang)}"
            hit = final[(final["task"] == task) & (final["metric"] == "error_pct")]
            if len(hit):
                rows.append({"run": run, "data_pct": 100 * f, "kind": "language", "name": lang,
                             "pairs": int(language_pairs[s]), "value": 100 - float(hit["value"].iloc[0]),
                             "n_test": int(hit["n"].iloc[0])})
    out = pd.DataFrame(rows)
    out.insert(0, "examples_seen", p.train.examples_seen)
    out.insert(1, "key", evaluate_params.use_key)
    return out


def curves(table: pd.DataFrame, bins_per_decade: int = 2) -> pd.DataFrame:
    """The learning curves: per kind and rung, the mean value over the concepts or languages whose pairs fall in each
    log bin (pairs 0 in their own bin), with the count of (run, name) points behind it."""
    t = table.assign(bin=np.where(table["pairs"] > 0,
                                  np.floor(np.log10(table["pairs"].clip(lower=1)) * bins_per_decade) / bins_per_decade,
                                  -1.0))
    g = t.groupby(["kind", "examples_seen", "bin"])
    return g.agg(pairs=("pairs", "median"), value=("value", "mean"), points=("value", "size")).reset_index()


def plot(c: pd.DataFrame, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, (kind, label) in zip(axes, (("head concept", "ImageNet-like 0-shot accuracy (%)"),
                                        ("language", "XM3600 image→text R@1 (%)"))):
        for n, d in c[c["kind"] == kind].groupby("examples_seen"):
            d = d[d["pairs"] > 0]
            ax.plot(d["pairs"], d["value"], marker="o", label=f"N = {n:,}")
        ax.set_xscale("log")
        ax.set_xlabel(f"unique training pairs of the {kind}")
        ax.set_ylabel(label)
        ax.set_title(f"per {kind}, binned (all natural runs)")
        ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("repros", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, default=ROOT / "results/reference/ladder")
    args = parser.parse_args(argv)
    table = pd.concat([measure(r) for r in args.repros], ignore_index=True)
    keys = table["key"].unique()
    if len(keys) != 1:
        raise SystemExit(f"the repros were evaluated on different keys {list(keys)}; compare one key at a time")
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"similarity_{keys[0]}"
    table.to_csv(stem.with_suffix(".csv"), index=False)
    c = curves(table)
    c.to_csv(stem.with_name(stem.name + "_curves.csv"), index=False)
    plot(c, stem.with_suffix(".png"))
    print(json.dumps({"rows": len(table), "written": [str(stem.with_suffix(s)) for s in (".csv", ".png")]}))


if __name__ == "__main__":
    main()
