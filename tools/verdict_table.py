"""Print the paper stage's verdicts as markdown: every finding with its parts (effect, 95% interval over seeds and
test images, seeds per side, minimal detectable effect, the paper's effect, verdict), then the two controls.

    python tools/verdict_table.py metrics/paper.json
    python tools/verdict_table.py results/reference/2026-12-06_cpu_3seeds/paper.json --brief   # one line a finding
"""
from __future__ import annotations

import argparse
from pathlib import Path

from vlscale.files import read_json


def _num(x, sign: bool = True) -> str:
    if x is None:
        return "–"
    return (f"{x:+.2f}" if sign else f"{x:.2f}").replace("-", "−")


def part_row(finding: str, p: dict) -> str:
    if "effect" not in p:
        return f"| {finding} | {p['label']} | – | – | – | – | {p['verdict']} ({p['reason']}) |"
    lo, hi = p["ci95"]
    return (f"| {finding} | {p['label']} | {_num(p['effect'])} [{_num(lo)}, {_num(hi)}] | "
            f"{'/'.join(map(str, p['n_seeds']))} | {_num(p['mde'], False)} | {_num(p.get('paper_effect'))} | "
            f"{p['verdict']} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paper_json", type=Path)
    ap.add_argument("--brief", action="store_true", help="one line a finding: its verdict and reason")
    args = ap.parse_args()
    record = read_json(args.paper_json)
    if args.brief:
        print("| finding | verdict | why |\n|---|---|---|")
        for v in record["verdicts"]:
            print(f"| {v['id']}. {v['title']} | {v['verdict']} | {v['reason']} |")
    else:
        print("| finding | comparison | effect [95%] | seeds | detectable | paper | verdict |")
        print("|---|---|---:|---:|---:|---:|---|")
        for v in record["verdicts"]:
            for i, p in enumerate(v["parts"]):
                print(part_row(f"{v['id']}" if i == 0 else "", p))
    print("\n| control | expect | outcome | comparison | effect [interval] | seeds |\n|---|---|---|---|---:|---:|")
    for c in record["controls"]:
        state = {True: "passed", False: "FAILED", None: "not judged"}[c["passed"]]
        for i, p in enumerate(c["parts"] or [{}]):
            head = f"| {c['control']} | {c['expect']} | {state}: {c['outcome']} |" if i == 0 else "| | | |"
            if p:
                lo, hi = p["ci95"]
                print(f"{head} {p['label']} | {_num(p['effect'])} [{_num(lo)}, {_num(hi)}] | "
                      f"{'/'.join(map(str, p['n_seeds']))} |")
            else:
                print(f"{head} – | – | – |")


if __name__ == "__main__":
    main()
