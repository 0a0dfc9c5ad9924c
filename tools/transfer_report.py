"""Print a transfer stage's record as Markdown: the Table 2 analog (each family and the average with its 95%
interval, per setting and data scale) and the Table 12 analog (each task), with the oracle and chance levels, the
per-transfer times, and finding 5's comparisons with their verdicts: from the paper stage's record of it
(--finding), or judged here from the record alone (--judge: the paper stage's judge, with params.yaml's verdicts;
--save writes that judged record).

    python tools/transfer_report.py metrics/transfer.json [--finding paper/generated/findings.json]
    python tools/transfer_report.py results/reference/2026-12-07_cpu_transfer/transfer.json \
        --finding results/reference/2026-12-07_cpu_transfer/finding5.json
    python tools/transfer_report.py results/reference/2026-12-07_study_transfer/transfer.json --judge
"""
from __future__ import annotations

import argparse

from vlscale.analysis.transfer_tables import table2, table12
from vlscale.config import load_params
from vlscale.files import read_json, write_json
from vlscale.paper.findings import judge


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def markdown_table(table) -> str:
    """A Table (analysis.transfer_tables) as Markdown, its setting sections as a first column."""
    typst = table.typst()
    rows, setting = [], ""
    for r in typst["rows"]:
        if isinstance(r, dict):
            setting = r["section"].replace(" image tower", "")
            continue
        rows.append([setting if not r[0].startswith(("Chance", "Oracle")) else "", *r])
    return markdown(["setting", *typst["header"]], rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("metrics")
    parser.add_argument("--finding", help="findings.json (every finding) or one finding's record")
    parser.add_argument("--judge", action="store_true", help="judge finding 5 from this record (params.yaml's verdicts)")
    parser.add_argument("--save", help="with --judge: write the judged record of finding 5 here")
    parser.add_argument("--params", default="params.yaml", help="with --judge: the params file whose verdicts apply")
    args = parser.parse_args(argv)
    if args.finding and args.judge:
        parser.error("--finding and --judge: give one")
    if args.save and not args.judge:
        parser.error("--save writes the record --judge makes: give --judge")
    metrics = read_json(args.metrics)
    table = table2(metrics)
    if table is None:
        print(f"no transfer: {metrics.get('skipped', 'no scores')}")
        return
    for title, t in (("Table 2 analog (task families)", table), ("Table 12 analog (tasks)", table12(metrics))):
        print(f"{title}:\n\n{markdown_table(t)}\n")
    timings = metrics.get("timings", {})
    if timings:
        each = timings["transfers_s"]
        print(f"Stage wall time {timings['wall_s']:.0f} s (a transfer whose fingerprint held is not made again); "
              "each transfer when it was made (train + decode, s): "
              + ", ".join(f"{k} {v:.0f}" for k, v in each.items()))
    found = None
    if args.finding:
        found = read_json(args.finding)
    elif args.judge:
        found = judge({}, {}, load_params(args.params).verdicts, transfer=metrics)
    if found is not None:
        five = next(f for f in found if f["id"] == 5) if isinstance(found, list) else found
        if args.save:
            write_json(args.save, five)
        print(f"\nFinding 5: **{five['verdict']}**\n")
        print(markdown(["comparison", "effect [95% CI]", "seeds", "MDE", "verdict", "reason"],
                       [[p["label"], f"{p['effect']:+.2f} [{p['ci95'][0]:+.2f}, {p['ci95'][1]:+.2f}]",
                         "/".join(map(str, p["n_seeds"])), f"{p['mde']:.2f}", p["verdict"], p["reason"]]
                        for p in five["parts"] if "effect" in p]))


if __name__ == "__main__":
    main()
