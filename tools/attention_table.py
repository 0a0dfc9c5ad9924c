"""Print the attention stage's focus table (Table 7's measured analog) and its test of finding 8, as markdown.

    python tools/attention_table.py [metrics/attention.json]

Reads what the attention stage wrote (metrics/attention.json, or a reference copy in results/reference/).
"""
import json
import sys

from vlscale.attention.tables import focus_latex
from vlscale.paper.build import parse_latex_table


def pct(x, sign=False):
    return f"{100 * x:+.1f}" if sign else f"{100 * x:.1f}"


def main(path="metrics/attention.json"):
    summary = json.load(open(path))
    table = parse_latex_table(focus_latex(summary), path)
    print("| " + " | ".join(table["header"]) + " |")
    print("|" + "---|" * len(table["header"]))
    for row in table["rows"]:
        if isinstance(row, list):
            print("| " + " | ".join(row) + " |")
    f8 = summary["finding8"]
    if not f8.get("tested"):
        print("\nfinding 8: not tested (fewer than two natural data scales)")
        return
    print("\n| score, pool | each tenfold step (pp, 95% interval) | seed null (pp) | long tail minus head, 1% → 100% (pp) |")
    print("|---|---|---:|---|")
    for metric in ("energy", "hit"):
        for pool in ("all", "cultural", "head"):
            x = f8[metric][pool]
            steps = "; ".join(f"{s['from_pct']:g}% → {s['to_pct']:g}%: {pct(s['diff'], True)} "
                              f"[{pct(s['lo'], True)}, {pct(s['hi'], True)}]" for s in x["steps"])
            null = x["seed_null_abs_diff"]
            c = f8[metric].get("more_on_cultural", {})
            contrast = (f"{pct(c['diff'], True)} [{pct(c['lo'], True)}, {pct(c['hi'], True)}]"
                        if pool == "all" and c else "")
            print(f"| {metric}, {pool} | {steps} | {pct(null) if null == null else 'n/a'} | {contrast} |")


if __name__ == "__main__":
    main(*sys.argv[1:])
