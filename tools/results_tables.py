"""Print the README's results tables (Markdown) from a figures-stage metrics file, so that every number
quoted there is one the pipeline wrote.

    python tools/results_tables.py metrics/figures.json [--label after]

Group averages and gains per data scale, each with its paired-bootstrap 95% interval over test images
and, where several training seeds ran, the seed sd; then Table 1's tasks at 100% data and the
disparities beside the gap expected from noise alone; then the curation study (Figure 4 / Table 13:
filter arms against examples seen, their differences from the English baseline and random, and the
training-noise null; Figure 5 / Table 14: before and after rebalancing) and, given the filter stage's
metrics, what each filter arm kept.

    python tools/results_tables.py metrics/figures.json --filter metrics/filter.json
"""
import argparse
from pathlib import Path

import pandas as pd

from vlscale.files import read_json

GROUPS = {"western": "Western", "culture": "Culture", "fairness": "Fairness",
          "multilingual_low_resource": "XM3600 low-resource",
          "multilingual_low_resource_without_english_like": "XM3600 low-resource without English-like",
          "multilingual_high_resource": "XM3600 high-resource", "multilingual": "XM3600 (i2t, 36 languages)"}


def _ci(entry, key):
    lo, hi = entry["ci95"]
    seeds = f"; seed sd {entry['seed_sd']:.1f} (n={entry['n_seeds']})" if entry.get("n_seeds", 1) > 1 else ""
    return f"{entry[key]:.1f} [{lo:.1f}, {hi:.1f}]{seeds}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("metrics", type=Path, nargs="?", default=Path("metrics/figures.json"))
    parser.add_argument("--filter", type=Path, help="the filter stage's metrics/filter.json (with data/filter)")
    args = parser.parse_args()
    m = read_json(args.metrics)
    by_scale = m["group_averages_by_scale"]
    scales = sorted(by_scale, key=lambda s: float(s.rstrip("%")))
    gain_keys = [k for k in m if k.startswith("gains_")]
    print(f"uncertainty: {m['uncertainty']} ({m['n_boot']} resamples); analog key {m.get('analog_key')} "
          f"({m.get('analog_key_use')}); English-like languages: {m.get('english_like_languages')}\n")
    header = ["average"] + [f"{s} data" for s in scales] + [k.removeprefix("gains_").replace("_to_", "→") + " gain"
                                                              for k in gain_keys]
    print("| " + " | ".join(header) + " |")
    print("|---|" + "---:|" * (len(header) - 1))
    for group, label in GROUPS.items():
        if group not in by_scale[scales[0]]:
            continue
        cells = [_ci(by_scale[s][group], "error_pct") for s in scales]
        cells += [_ci(m[k][group], "gain") for k in gain_keys if group in m[k]]
        print(f"| {label} | " + " | ".join(cells) + " |")
    print("\n| Table 1 task | " + " | ".join(scales) + " |")
    print("|---|" + "---:|" * len(scales))
    for task, per_scale in m["table1"].items():
        print(f"| {task} | " + " | ".join(_ci(per_scale[s], "error_pct") if s in per_scale else "–" for s in scales) + " |")
    print("\n| disparity | scale | gap (pp) [95%] | noise-only gap: mean, 95th pct | p (noise) |")
    print("|---|---|---:|---:|---:|")
    for task, per_scale in m["disparity"].items():
        for s in scales:
            if s in per_scale:
                d = per_scale[s]
                print(f"| {task} | {s} | {_ci(d, 'gap_pct')} | {d['noise_null_mean']:.1f}, {d['noise_null_p95']:.1f} "
                      f"| {d['p_noise']:.3f} |")
    w = m["wilcoxon"]
    print("\nWilcoxon 10%→100% over tasks: " + "; ".join(
        f"{k}: median gain {v['median_difference']:.2f} pp, p = {v['p_value']:.3g} ({v['n_pairs']} tasks)"
        for k, v in w.items() if v["p_value"] is not None))
    if "curation" in m:
        curation_tables(m["curation"])
    if args.filter:
        filter_tables(read_json(args.filter), args.filter)


def _d(e):
    return f"{e['diff']:+.1f} [{e['ci95'][0]:+.1f}, {e['ci95'][1]:+.1f}], p = {e['p']:.3f}"


def curation_tables(c):
    print(f"\nFilter arms' runs: {c['filter_runs']}; notes: {c['notes'] or 'none'}")
    groups = ("western", "culture", "fairness")
    print("\n| arm | examples seen | " + " | ".join(GROUPS[g] for g in groups) + " |")
    print("|---|---:|" + "---:|" * len(groups))
    for arm, by_seen in c["filters"].items():
        for seen, e in by_seen.items():
            print(f"| {arm} | {int(seen):,} | " + " | ".join(
                f"{e[g]['error_pct']:.1f} [{e[g]['ci95'][0]:.1f}, {e[g]['ci95'][1]:.1f}]" for g in groups) + " |")
    print("\n| difference (pp, error of the first minus the second) | examples seen | "
          + " | ".join(GROUPS[g] for g in groups) + " |")
    print("|---|---:|" + "---:|" * len(groups))
    for name, by_seen in c["filter_differences"].items():
        for seen, e in by_seen.items():
            cells = [_d(e[g]) if g in e else "–" for g in groups]
            print(f"| {name.replace('_minus_', ' − ')} | {int(seen):,} | " + " | ".join(cells) + " |")
    print("\n| data scale | average | before | after | reduction (pp) [95%], p |")
    print("|---|---|---:|---:|---:|")
    for scale, by_group in c["rebalancing"].items():
        for g, e in by_group.items():
            print(f"| {scale} | {GROUPS.get(g, g)} | {e['before']:.2f} | {e['after']:.2f} | "
                  f"{e['reduction']:+.2f} [{e['ci95'][0]:+.2f}, {e['ci95'][1]:+.2f}], p = {e['p']:.3f} |")


def filter_tables(f, path):
    print(f"\nFilter arms: k = {f['k']:,} of {f['pool_pairs']:,} pool pairs; stage {f['seconds']}")
    head = f["models"].get("classifier", {}).get("head")
    if head:
        print(f"classifier head on {head['holdout']} held-out labelled pairs: AUC {head['holdout_auc']:.3f}, "
              f"accuracy {head['holdout_accuracy']:.3f} (its model's raw cosine: AUC {head['holdout_auc_cosine']:.3f})")
    print("\n| arm | noise in kept set | noise recall | noise precision |")
    print("|---|---:|---:|---:|")
    for arm, n in f["noise_removal"].items():
        print(f"| {arm} | {100 * n['noise_share_kept']:.1f}% (pool {100 * n['noise_share_pool']:.1f}%) | "
              f"{n['recall']:.3f} | {n['precision']:.3f} |")
    account = pd.read_parquet(path.parent.parent / "data/filter/account.parquet")
    t = account[account["grouping"] != "language"].pivot_table(index=["grouping", "group"], columns="arm",
                                                               values="representation_ratio")
    arms = list(t.columns)
    print("\n| grouping | group | " + " | ".join(arms) + " |  (representation ratio: share kept / share of pool)")
    print("|---|---|" + "---:|" * len(arms))
    for (grouping, group), r in t.iterrows():
        print(f"| {grouping} | {group} | " + " | ".join(f"{r[a]:.2f}" for a in arms) + " |")


if __name__ == "__main__":
    main()
