"""The paper's tables as data, and their two renderings.

A `Table` (caption, header, rows of cells, notes) is built once by the stage that measures it: the evaluation
tables here (1, 3, 4, 13, 14 and the Wilcoxon tests: a value with its 95% interval in brackets, "--" where a task
was not evaluated), the attention focus table in attention/tables.py. `write_table` writes it twice into
paper/tables/: as plain LaTeX (<name>.tex, for pasting into a paper of one's own) and as the rows typst sets
(<name>.json, what the paper stage places). Text is a str, a `Math` (text LaTeX sets as math) or a tuple of both.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from vlscale.analysis import scaling
from vlscale.analysis.results import scale_label
from vlscale.files import write_json

MINUS = "\u2212"


@dataclass(frozen=True)
class Math:
    """A piece of text that LaTeX sets as math: `text` as typst prints it, `latex` between the dollars."""
    text: str
    latex: str


Text = str | Math | tuple  # a tuple: pieces of str and Math, read in order
DAGGER = Math("†", r"^\dagger")


def tex(s: str) -> str:
    """Text with LaTeX's special characters escaped."""
    return str(s).replace("\\", r"\textbackslash{}").replace("&", r"\&").replace("%", r"\%") \
        .replace("_", r"\_").replace("#", r"\#")


def _pieces(t: Text):
    """The str and Math pieces of `t`, in order (tuples flattened)."""
    if isinstance(t, tuple):
        for p in t:
            yield from _pieces(p)
    else:
        yield t


def to_latex(t: Text) -> str:
    """Text as LaTeX: a str escaped, a Math between dollars."""
    return "".join(f"${p.latex}$" if isinstance(p, Math) else tex(p) for p in _pieces(t))


def to_typst(t: Text) -> str:
    """Text as typst prints it: '--' alone an en dash, a hyphen before a digit a true minus sign."""
    s = "".join(p.text if isinstance(p, Math) else p for p in _pieces(t))
    s = "–" if s.strip() == "--" else re.sub(r"(?<![\w.])-(?=\d)", MINUS, s)
    return s.strip()


def _map(t: Text, fn: Callable[[str], str]) -> Text:
    if isinstance(t, tuple):
        return tuple(_map(p, fn) for p in t)
    return t if isinstance(t, Math) else fn(t)


@dataclass(frozen=True)
class Table:
    """One table of the paper: `header` [n cells], `rows` (each n cells, or a str: a section heading), `caption`
    and `notes` (sentences after the caption), the LaTeX `label` and column `align` ('l'/'r' per column)."""
    caption: Text
    header: list[Text]
    rows: list[list[Text] | str]
    label: str
    align: str
    notes: tuple[Text, ...] = field(default=())

    def __post_init__(self):
        widths = {len(r) for r in self.rows if not isinstance(r, str)} | {len(self.header)}
        if len(widths) != 1:
            raise ValueError(f"table {self.label}: rows of {sorted(widths)} cells; expected {len(self.header)}")

    def full_caption(self) -> tuple:
        return (self.caption, *((" ", n) for n in self.notes))

    def map_text(self, fn: Callable[[str], str]) -> Table:
        """This table with `fn` applied to every plain piece of its text (caption, notes, header, cells, sections)."""
        return replace(self, caption=_map(self.caption, fn), notes=tuple(_map(n, fn) for n in self.notes),
                       header=[_map(h, fn) for h in self.header],
                       rows=[fn(r) if isinstance(r, str) else [_map(c, fn) for c in r] for r in self.rows])

    def latex(self) -> str:
        """A plain LaTeX table (no packages beyond the base classes); a section heading spans every column."""
        n = len(self.header)
        lines = [r"\begin{table}[t]", r"\centering", r"\small", rf"\begin{{tabular}}{{{self.align}}}", r"\hline",
                 " & ".join(map(to_latex, self.header)) + r" \\", r"\hline"]
        for r in self.rows:
            lines.append(rf"\multicolumn{{{n}}}{{l}}{{\textit{{{tex(r)}}}}} \\" if isinstance(r, str)
                         else " & ".join(map(to_latex, r)) + r" \\")
        lines += [r"\hline", r"\end{tabular}", rf"\caption{{{to_latex(self.full_caption())}}}",
                  rf"\label{{{self.label}}}", r"\end{table}", ""]
        return "\n".join(lines)

    def typst(self) -> dict:
        """The rows typst sets: {header, rows, align, caption}, every cell plain text; a section heading row is
        {"section": text}."""
        return {"header": [to_typst(h) for h in self.header],
                "rows": [{"section": to_typst(r)} if isinstance(r, str) else [to_typst(c) for c in r]
                         for r in self.rows],
                "align": self.align, "caption": to_typst(self.full_caption())}


def write_table(table: Table, path: str | Path) -> list[Path]:
    """`table` as <path>.tex (LaTeX) and <path>.json (typst's rows); returns both paths."""
    path = Path(path).with_suffix(".tex")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(table.latex())
    return [path, write_json(path.with_suffix(".json"), table.typst())]


def ci(v: float, lo: float, hi: float, digits: int = 1) -> str:
    """'v [lo, hi]', or v alone when the interval is unknown, or '--' when v is."""
    if np.isnan(v):
        return "--"
    return f"{v:.{digits}f}" if np.isnan(lo) else f"{v:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def bound_mark(value: float, low: float, high: float | None, tol: float = 5e-3) -> Text:
    """A dagger when a fitted parameter sits at a bound of the fit (not identified by the data); else ''."""
    if not np.isfinite(value):
        return ""
    at_bound = abs(value - low) <= tol or (high is not None and abs(value - high) <= tol)
    return DAGGER if at_bound else ""


def table1(t1: pd.DataFrame, missing: list[str] | None = None, method: str = "bootstrap") -> Table:
    """Table 1: error [95% CI] per data scale, then c [95% CI] and eps [95% CI] per data scale.
    method: how the error intervals were computed (Estimates.method), said in the caption."""
    pcts = list(t1.columns.get_level_values(1).unique())
    labels = [scale_label(p) for p in pcts]
    c, eps = Math("c", "c"), Math("ε", r"\varepsilon")
    header = ["Metric", *[f"Error {p}" for p in labels], *[(c, f" {p}") for p in labels],
              *[(eps, f" {p}") for p in labels]]
    rows, section = [], None
    for (sec, metric, _), r in t1.iterrows():
        if sec != section:
            rows.append(sec)
            section = sec
        rows.append([metric, *[ci(r[("value", p)], r[("lo", p)], r[("hi", p)]) for p in pcts],
                     *[(ci(r[("c", p)], r[("c_lo", p)], r[("c_hi", p)], 2), bound_mark(r[("c", p)], 0, scaling.C_MAX))
                       for p in pcts],
                     *[(ci(r[("eps", p)], r[("eps_lo", p)], r[("eps_hi", p)], 1), bound_mark(r[("eps", p)], 0, None))
                       for p in pcts]])
    how = {"bootstrap": "a paired bootstrap over test images",
           "binomial": "the binomial standard error (no per-image outcomes)",
           "mixed": "a paired bootstrap over test images where per-image outcomes exist, else the binomial "
                    "standard error"}[method]
    caption = ("Error (%) at the final cooled-down checkpoint per data scale [95% CI from " + how + "], and "
               "the fitted exponent ", c, " and limit ", eps, " of ", Math("αx^(−c) + ε", r"\alpha x^{-c}+\varepsilon"),
               " against examples seen [bootstrap 95% CI]. ", DAGGER, ": at a bound of the fit (", c, " = 0 or "
               f"{scaling.C_MAX:g}, ", eps, " = 0), i.e. the curve shows no bend within the budgets and that "
               "parameter is not identified.")
    notes = ("Not evaluated: " + ", ".join(missing) + ".",) if missing else ()
    return Table(caption, header, rows, "tab:table1", "l" + "r" * (3 * len(pcts)), notes)


def scale_table(t: pd.DataFrame, caption: str, label: str, digits: int = 1) -> Table:
    """Table 3 / Table 4: index levels as the first columns, then value [95% CI] per data scale, and for Table 4
    the gap expected from noise alone (null mean) per data scale."""
    if not len(t):
        return Table(caption, ["--"], [["not evaluated"]], label, "l", ("Not evaluated.",))
    pcts = list(t.columns.get_level_values(1).unique())
    names = [n or "" for n in t.index.names]
    null = "null_mean" in t.columns.get_level_values(0)
    header = names + [scale_label(p) for p in pcts]
    header += [f"noise {scale_label(p)}" for p in pcts] if null else []
    rows = []
    for idx, r in t.iterrows():
        idx = idx if isinstance(idx, tuple) else (idx,)
        row = [str(i) for i in idx] + [ci(r[("value", p)], r[("lo", p)], r[("hi", p)], digits) for p in pcts]
        row += [ci(r[("null_mean", p)], np.nan, np.nan, digits) for p in pcts] if null else []
        rows.append(row)
    return Table(caption, header, rows, label, "l" * len(names) + "r" * (len(header) - len(names)))


def wilcoxon_table(tests: dict[str, dict], from_pct: float = 10, to_pct: float = 100) -> Table:
    """The Wilcoxon tests, one row per task group."""
    rows = [[name, str(t["n_pairs"]),
             "--" if np.isnan(t["median_difference"]) else f"{t['median_difference']:+.2f}",
             "--" if np.isnan(t["statistic"]) else f"{t['statistic']:.1f}",
             "--" if np.isnan(t["p_value"]) else f"{t['p_value']:.3g}", t["reason"] or ""]
            for name, t in tests.items()]
    caption = (f"Wilcoxon signed-rank test of the error at {scale_label(from_pct)} vs {scale_label(to_pct)} data, "
               "paired by task (final checkpoint, averaged over seeds). Paper: p = 0.9 (Western), p = 0.002 (culture). "
               "The tasks share a model and test images, so they are not independent pairs and the p-values are "
               "optimistic.")
    header = ["Group", "pairs", ("median ", Math("Δ", r"\Delta"), " (pp)"), Math("W", "W"), Math("p", "p"), "note"]
    return Table(caption, header, rows, "tab:wilcoxon", "lrrrrl")


def curation_table(t: pd.DataFrame, caption: str, label: str, digits: int = 1) -> Table:
    """Table 13 / 14 analogs: one row per metric, error (%) [95% CI] per column label (the table's
    (label..., quantity) columns)."""
    if not len(t):
        return Table(caption, ["--"], [["no curated runs"]], label, "l", ("No curated runs.",))
    labels = list(dict.fromkeys(c[:-1] for c in t.columns))
    header = ["Metric"] + [" ".join(str(x) for x in lab) for lab in labels]
    rows = [[str(idx[0])] + [ci(r[(*lab, "value")], r[(*lab, "lo")], r[(*lab, "hi")], digits) for lab in labels]
            for idx, r in t.iterrows()]
    return Table(caption, header, rows, label, "l" + "r" * len(labels))
