"""Print the README's results tables (Markdown) from a figures-stage metrics file, so that every number
quoted there is one the pipeline wrote.

    python tools/results_tables.py metrics/figures.json [--label after]

Group averages and gains per data scale, each with its paired-bootstrap 95% interval over test images
and, where several training seeds ran, the seed sd; then Table 1's tasks at 100% data and the
disparities beside the gap expected from noise alone.
"""
import argparse
import json
from pathlib import Path

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
    args = parser.parse_args()
    m = json.loads(args.metrics.read_text())
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


if __name__ == "__main__":
    main()
