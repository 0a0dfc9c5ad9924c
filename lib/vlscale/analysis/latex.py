"""The paper's evaluation tables (1, 3, 4 and the Wilcoxon tests) as plain LaTeX: a value with its 95%
interval in brackets, "--" where a task was not evaluated."""
from __future__ import annotations

import numpy as np
import pandas as pd

from vlscale.analysis import scaling
from vlscale.analysis.results import scale_label


def tex(s: str) -> str:
    """Text with LaTeX's special characters escaped."""
    return str(s).replace("\\", r"\textbackslash{}").replace("&", r"\&").replace("%", r"\%") \
        .replace("_", r"\_").replace("#", r"\#")


def ci(v: float, lo: float, hi: float, digits: int = 1) -> str:
    """'v [lo, hi]', or v alone when the interval is unknown, or '--' when v is."""
    if np.isnan(v):
        return "--"
    return f"{v:.{digits}f}" if np.isnan(lo) else f"{v:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def tabular(header: list[str], rows: list[list[str] | str], caption: str, label: str, align: str) -> str:
    """A plain LaTeX table (no packages beyond the base classes); a str row is a section heading."""
    lines = [r"\begin{table}[t]", r"\centering", r"\small", rf"\begin{{tabular}}{{{align}}}", r"\hline",
             " & ".join(header) + r" \\", r"\hline"]
    for r in rows:
        lines.append(rf"\multicolumn{{{len(header)}}}{{l}}{{\textit{{{tex(r)}}}}} \\" if isinstance(r, str)
                     else " & ".join(r) + r" \\")
    lines += [r"\hline", r"\end{tabular}", rf"\caption{{{caption}}}", rf"\label{{{label}}}", r"\end{table}", ""]
    return "\n".join(lines)


def bound_mark(value: float, low: float, high: float | None, tol: float = 5e-3) -> str:
    """A dagger when a fitted parameter sits at a bound of the fit (not identified by the data)."""
    if not np.isfinite(value):
        return ""
    at_bound = abs(value - low) <= tol or (high is not None and abs(value - high) <= tol)
    return "$^\\dagger$" if at_bound else ""


def table1_latex(t1: pd.DataFrame, missing: list[str] | None = None, method: str = "bootstrap") -> str:
    """Table 1 as LaTeX: error [95% CI] per data scale, then c [95% CI] and eps [95% CI] per data scale.
    method: how the error intervals were computed (Estimates.method), said in the caption."""
    pcts = list(t1.columns.get_level_values(1).unique())
    labels = [tex(scale_label(p)) for p in pcts]
    header = ["Metric", *[f"Error {p}" for p in labels], *[f"$c$ {p}" for p in labels],
              *[rf"$\varepsilon$ {p}" for p in labels]]
    rows, section = [], None
    for (sec, metric, _), r in t1.iterrows():
        if sec != section:
            rows.append(sec)
            section = sec
        rows.append([tex(metric), *[ci(r[("value", p)], r[("lo", p)], r[("hi", p)]) for p in pcts],
                     *[ci(r[("c", p)], r[("c_lo", p)], r[("c_hi", p)], 2) + bound_mark(r[("c", p)], 0, scaling.C_MAX)
                       for p in pcts],
                     *[ci(r[("eps", p)], r[("eps_lo", p)], r[("eps_hi", p)], 1) + bound_mark(r[("eps", p)], 0, None)
                       for p in pcts]])
    how = {"bootstrap": "a paired bootstrap over test images",
           "binomial": "the binomial standard error (no per-image outcomes)",
           "mixed": "a paired bootstrap over test images where per-image outcomes exist, else the binomial "
                    "standard error"}[method]
    caption = ("Error (\\%) at the final cooled-down checkpoint per data scale [95\\% CI from " + how + "], and "
               "the fitted exponent $c$ and limit $\\varepsilon$ of $\\alpha x^{-c}+\\varepsilon$ against examples "
               "seen [bootstrap 95\\% CI]. $^\\dagger$: at a bound of the fit ($c$ = 0 or "
               f"{scaling.C_MAX:g}, $\\varepsilon$ = 0), i.e. the curve shows no bend within the budgets and that "
               "parameter is not identified.")
    if missing:
        caption += " Not evaluated: " + tex(", ".join(missing)) + "."
    return tabular(header, rows, caption, "tab:table1", "l" + "r" * (3 * len(pcts)))


def scale_table_latex(t: pd.DataFrame, caption: str, label: str, digits: int = 1) -> str:
    """LaTeX of table3/table4: index levels as the first columns, then value [95% CI] per data scale,
    and for Table 4 the gap expected from noise alone (null mean) per data scale."""
    if not len(t):
        return tabular(["--"], [["not evaluated"]], tex(caption) + " Not evaluated.", label, "l")
    pcts = list(t.columns.get_level_values(1).unique())
    names = [n or "" for n in t.index.names]
    null = "null_mean" in t.columns.get_level_values(0)
    header = [tex(n) for n in names] + [tex(scale_label(p)) for p in pcts]
    header += [f"noise {tex(scale_label(p))}" for p in pcts] if null else []
    rows = []
    for idx, r in t.iterrows():
        idx = idx if isinstance(idx, tuple) else (idx,)
        row = [tex(i) for i in idx] + [ci(r[("value", p)], r[("lo", p)], r[("hi", p)], digits) for p in pcts]
        row += [ci(r[("null_mean", p)], np.nan, np.nan, digits) for p in pcts] if null else []
        rows.append(row)
    return tabular(header, rows, tex(caption), label, "l" * len(names) + "r" * (len(header) - len(names)))


def wilcoxon_latex(tests: dict[str, dict], from_pct: float = 10, to_pct: float = 100) -> str:
    """The Wilcoxon tests as a LaTeX table (one row per task group)."""
    rows = [[tex(name), str(t["n_pairs"]),
             "--" if np.isnan(t["median_difference"]) else f"{t['median_difference']:+.2f}",
             "--" if np.isnan(t["statistic"]) else f"{t['statistic']:.1f}",
             "--" if np.isnan(t["p_value"]) else f"{t['p_value']:.3g}", tex(t["reason"] or "")]
            for name, t in tests.items()]
    caption = (f"Wilcoxon signed-rank test of the error at {tex(scale_label(from_pct))} vs "
               f"{tex(scale_label(to_pct))} data, paired by task (final checkpoint, averaged over seeds). Paper: "
               "p = 0.9 (Western), p = 0.002 (culture). The tasks share a model and test images, so they are "
               "not independent pairs and the p-values are optimistic.")
    return tabular(["Group", "pairs", "median $\\Delta$ (pp)", "$W$", "$p$", "note"], rows, caption,
                   "tab:wilcoxon", "lrrrrl")


def curation_table_latex(t: pd.DataFrame, caption: str, label: str, digits: int = 1) -> str:
    """Table 13 / 14 analogs: one row per metric, error (%) [95% CI] per column label (the table's
    (label..., quantity) columns)."""
    if not len(t):
        return tabular(["--"], [["no curated runs"]], tex(caption) + " No curated runs.", label, "l")
    labels = list(dict.fromkeys(c[:-1] for c in t.columns))
    header = ["Metric"] + [tex(" ".join(str(x) for x in lab)) for lab in labels]
    rows = [[tex(idx[0])] + [ci(r[(*lab, "value")], r[(*lab, "lo")], r[(*lab, "hi")], digits) for lab in labels]
            for idx, r in t.iterrows()]
    return tabular(header, rows, tex(caption), label, "l" + "r" * len(labels))
