"""Print a transfer stage's record as Markdown: the Table 2 analog (each family and the average with its 95%
interval, per setting and data scale), the oracle and chance levels, the per-transfer times, and finding 5's
comparisons with their verdicts when the paper stage's record of it is given.

    python tools/transfer_report.py metrics/transfer.json [--finding paper/generated/findings.json]
    python tools/transfer_report.py results/reference/2026-12-07_cpu_transfer/transfer.json \
        --finding results/reference/2026-12-07_cpu_transfer/finding5.json
"""
from __future__ import annotations

import argparse

from vlscale.analysis.transfer_tables import table2
from vlscale.files import read_json


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("metrics")
    parser.add_argument("--finding", help="findings.json (every finding) or one finding's record")
    args = parser.parse_args(argv)
    metrics = read_json(args.metrics)
    table = table2(metrics)
    if table is None:
        print(f"no transfer: {metrics.get('skipped', 'no scores')}")
        return
    typst = table.typst()
    rows, setting = [], ""
    for r in typst["rows"]:
        if isinstance(r, dict):
            setting = r["section"].replace(" image tower", "")
            continue
        rows.append([setting if not r[0].startswith(("Chance", "Oracle")) else "", *r])
    print(markdown(["setting", *typst["header"]], rows))
    timings = metrics.get("timings", {})
    if timings:
        each = timings["transfers_s"]
        print(f"\nStage wall time {timings['wall_s']:.0f} s (a transfer whose fingerprint held is not made again); "
              "each transfer when it was made (train + decode, s): "
              + ", ".join(f"{k} {v:.0f}" for k, v in each.items()))
    if args.finding:
        found = read_json(args.finding)
        five = next(f for f in found if f["id"] == 5) if isinstance(found, list) else found
        print(f"\nFinding 5: **{five['verdict']}**\n")
        print(markdown(["comparison", "effect [95% CI]", "seeds", "MDE", "verdict", "reason"],
                       [[p["label"], f"{p['effect']:+.2f} [{p['ci95'][0]:+.2f}, {p['ci95'][1]:+.2f}]",
                         "/".join(map(str, p["n_seeds"])), f"{p['mde']:.2f}", p["verdict"], p["reason"]]
                        for p in five["parts"] if "effect" in p]))


if __name__ == "__main__":
    main()
