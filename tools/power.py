"""Seeds needed: for every inconclusive part of a paper.json, how many seeds a side would decide it, if the effect
measured were the true one and the seed and test-image noise were as measured.

    python tools/power.py results/reference/study/paper.json     # writes power.md beside it, prints it

A part that tests a change is decided (at 80% power) when (z_0.975 + z_0.8) · se(n) ≤ |effect|; a part that tests
equivalence within ±margin (a claim of no change) when (z_0.95 + z_0.8) · se(n) ≤ margin − |effect| if the effect
lies inside the margin, or (z_0.975 + z_0.8) · se(n) ≤ |effect| − margin if outside. se(n)² = 2·seed_sd²/n +
image_se², with n seeds on each side (s²/n for a level or a comparison with a constant, one side). A directional part
is also decided, as not reproducing, when its one-sided 95% bound falls short of the paper's effect: the smaller
count of the two routes is given. The image term does not shrink with seeds, so where it alone is too large no
number of seeds decides the part ("more test images"). A part whose seed noise was not measured (no replicated side)
is listed as such, and so is one left inconclusive by a gate rather than by its interval (a level on its chance
floor). Normal quantiles: the t quantiles of a few seeds are larger, so the counts are lower bounds.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from scipy import stats

POWER = 0.8
Z_POWER = stats.norm.ppf(POWER)
MAX_SEEDS = 1000


def _route(room: float, z: float, claim: str, sides: int, seed_sd: float, image_se: float) -> tuple[int | None, str]:
    """(seeds a side, claim) for which z · se(n) ≤ room; None with the reason when no number of seeds reaches it."""
    if room <= 0:
        return None, f"the effect sits on the margin: {claim} cannot be decided"
    var_left = (room / z) ** 2 - image_se ** 2
    if var_left <= 0:
        return None, f"test-image noise alone (se {image_se:.2f}) is too large for {claim}: more test images"
    n = max(2, math.ceil(sides * seed_sd ** 2 / var_left))
    return (n, claim) if n <= MAX_SEEDS else (None, f"over {MAX_SEEDS} seeds a side for {claim}")


def seeds_needed(part: dict) -> tuple[int | None, str]:
    """(seeds a side, why) that decide `part` at 80% power; None with the reason when no number of seeds does."""
    effect, seed_sd, image_se = abs(part["effect"]), part.get("seed_sd"), part.get("image_se") or 0.0
    rule = part.get("rule", "")
    if "minimal detectable effect" not in part.get("reason", ""):  # a gate, e.g. a level at its chance floor
        return None, f"not for lack of power: {part.get('reason', '')}"
    if seed_sd is None or not math.isfinite(seed_sd):
        return None, "seed noise not measured (no side replicated)"
    routes = []  # (room, z, claim): each way the part's rule can decide it
    margin = part.get("margin") if "equivalence" in rule else None
    if margin is None:
        routes.append((effect, stats.norm.ppf(0.975) + Z_POWER, "a change"))
        paper = part.get("paper_effect")
        if paper and "short of the paper's effect" in rule:  # the one-sided 95% bound short of the paper's effect
            routes.append((abs(paper) - math.copysign(1, paper) * part["effect"], stats.norm.ppf(0.95) + Z_POWER,
                           "an effect short of the paper's"))
    elif effect < margin:
        routes.append((margin - effect, stats.norm.ppf(0.95) + Z_POWER, f"equivalence within ±{margin:g}"))
    else:
        routes.append((effect - margin, stats.norm.ppf(0.975) + Z_POWER, f"a change beyond ±{margin:g}"))
    sides = 2 if len(part.get("runs") or []) > 1 and part["runs"][1] else 1  # a level or a constant: one side
    outcomes = [_route(room, z, claim, sides, seed_sd, image_se) for room, z, claim in routes]
    decided = [o for o in outcomes if o[0] is not None]
    return min(decided, key=lambda o: o[0]) if decided else outcomes[0]


def table(paper: dict) -> list[dict]:
    rows = []
    for f in paper["verdicts"]:
        for part in f["parts"]:
            if part["verdict"] != "inconclusive" or part.get("effect") is None:
                continue
            n, why = seeds_needed(part)
            rows.append({"finding": f["id"], "part": part["label"], "effect": part["effect"],
                         "ci95": part["ci95"], "n_seeds": part.get("n_seeds"), "seed_sd": part.get("seed_sd"),
                         "image_se": part.get("image_se"), "seeds_needed": n, "for": why})
    return rows


def markdown(rows: list[dict], source: str) -> str:
    lines = [f"# Seeds a side that would decide each inconclusive part of `{source}`", "",
             "If the measured effect were the true one, with the measured seed and test-image noise, at 80% power "
             "(`python tools/power.py`; normal quantiles, so lower bounds).", "",
             "| finding | part | effect [95% interval] | seeds now | seed sd | image se | seeds needed | to show |",
             "|---|---|---|---|---:|---:|---:|---|"]
    for r in rows:
        lo, hi = r["ci95"]
        sd = "—" if r["seed_sd"] is None else f"{r['seed_sd']:.2f}"
        now = "/".join(str(n) for n in r["n_seeds"] or [])
        lines.append(f"| {r['finding']} | {r['part']} | {r['effect']:+.2f} [{lo:+.2f}, {hi:+.2f}] | {now} | {sd} | "
                     f"{r['image_se']:.2f} | {r['seeds_needed'] or '—'} | {r['for']} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paper_json", type=Path)
    args = parser.parse_args(argv)
    rows = table(json.loads(args.paper_json.read_text()))
    text = markdown(rows, str(args.paper_json))
    (args.paper_json.parent / "power.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
