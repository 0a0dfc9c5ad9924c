"""Print the attention stage's focus table (Table 6's measured analog, with the blind maps' scores) and its
evidence for finding 8, as markdown.

    python tools/attention_table.py [metrics/attention.json]

Reads what the attention stage wrote (metrics/attention.json, or a reference copy in results/reference/).
"""
import sys

from vlscale.analysis.results import scale_label
from vlscale.attention.tables import focus_table, focus_tabular
from vlscale.files import read_json


def pct(x, sign=False):
    return "n/a" if x is None else f"{100 * x:+.1f}" if sign else f"{100 * x:.1f}"


def markdown(header, rows):
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(map(str, row)) + " |")


def shuffled_rows(summary):
    """Per group, each scale's image-shuffled mass and hit (its own maps of other images)."""
    t = focus_table(summary)
    scales = sorted({k[0] for k in t.columns if isinstance(k, tuple)})
    header = ["group"] + [f"{scale_label(s)} shuffled {m}" for m in ("mass", "hit") for s in scales]
    rows = [[r["pool"]] + [pct(r[(s, f"shuffled_{m}")][0]) for m in ("energy", "hit") for s in scales]
            for _, r in t.iterrows()]
    return header, rows


def evidence_rows(evidence, groups=("all", "cultural", "head")):
    """One row per comparison of `groups`: what is compared, the effect and its 95% interval (pp), the seeds."""
    rows = []
    for d in evidence.values():
        if d["group"] not in groups:
            continue
        what = (f"{d['from_pct']:g}% → {d['to_pct']:g}%" if d["from_pct"] is not None
                else f"{d['data_pct']:g}% minus {d['baseline'].replace('_', ' ')}")
        rows.append(["claim" if d["claim"] else "context", d["comparison"], d["score"], d["group"], what,
                     f"{d['effect']:+.1f}", f"[{d['lo']:+.1f}, {d['hi']:+.1f}]", f"{d['n_a']}/{d['n_b']}",
                     "yes" if d["seeds_measured"] else "no"])
    return ["role", "comparison", "score", "group", "what", "effect (pp)", "95% interval (pp)", "seeds a/b",
            "training noise measured"], rows


def main(path="metrics/attention.json"):
    summary = read_json(path)
    table = focus_tabular(summary)
    if table is None:
        print("no focus table: no natural runs")
    else:
        rows = table.typst()
        markdown(rows["header"], [r for r in rows["rows"] if isinstance(r, list)])
    print()
    markdown(*shuffled_rows(summary))
    evidence, setup = summary.get("evidence"), summary.get("evidence_setup", {})
    if not evidence:
        print("\nfinding 8: not tested (no evidence: fewer than two natural data scales, or an older summary)")
        return
    for model, m in setup.get("models", {}).items():
        print(f"\nfinding 8, {model} at {m['examples_seen']:,} examples seen; seeds per configuration: "
              + ", ".join(f"{c['name']}: {c['n_seeds']}" for c in m["configurations"]))
    for note in setup.get("notes", []):
        print(f"- {note}")
    print()
    markdown(*evidence_rows(evidence))


if __name__ == "__main__":
    main(*sys.argv[1:])
