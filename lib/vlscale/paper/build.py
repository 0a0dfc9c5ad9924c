"""The paper stage: the reproduction report, every number from a file the pipeline wrote, typeset to a PDF.

`write_generated(root)` reads the stages' records (metrics/*.json) and the paper's own numbers
(paper/reference.json in this package, from PAPER.md §5) and writes paper/generated/:
    values.json     every number and verdict the text prints, formatted (the text holds no typed number)
    findings.json   per finding of the paper: its claim and numbers, ours, and the verdict with its rule
    figures.json    every figure the stages made (path, caption, the finding it belongs to)
    tables.json     every LaTeX table of paper/tables/, parsed into rows for the typesetter
    captions.json   one alt-text caption per language of the world (the 36 scripts the fonts must draw)
`compile_pdf` typesets paper/main.typ with typst (a PyPI wheel: no TeX needed) and the fonts the package
ships, ignoring the machine's own fonts and with a fixed timestamp, so the PDF is the same on every machine.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

REFERENCE = Path(__file__).parent / "reference.json"
GENERATED = Path("paper/generated")
MINUS = "\u2212"

# Every figure a stage writes, with what it shows; a figure without a caption here fails the build, so a new
# figure cannot be left out of the paper. finding: the finding it is shown with (None: the appendix).
FIGURES = {
    "world/language_shares": ("Page-language shares of the synthetic web against the paper's Table 15.", None),
    "world/long_tail": ("The concepts' long tail: examples per concept by popularity rank and kind.", None),
    "world/region_income": ("Region by Dollar Street income group of the synthetic web's images.", None),
    "world/examples": ("Example images of the synthetic web, with their page language and country.", None),
    "sample/coverage": ("Long-tail coverage of the nested 1%, 10% and 100% subsets.", None),
    "sample/language_mix_1pct": ("Language mix of the 1% subset before and after rebalancing (Figure 8).", 7),
    "sample/language_mix_10pct": ("Language mix of the 10% subset before and after rebalancing.", None),
    "sample/language_mix_100pct": ("Language mix of the 100% subset before and after rebalancing.", None),
    "filter/account": ("What each filter arm kept: the representation ratio per group.", 6),
    "filter/languages": ("Representation ratio of the low-resource languages in each filter arm.", None),
    "train/loss_curves": ("Training loss of every run and cool-down branch.", None),
    "train/probe_curves": ("Held-out probe while training (development key).", None),
    "eval/fig1_gains": ("Figure 1 analog: error change per benchmark group between data scales.", 1),
    "eval/fig1_curves": ("Figure 1 analog: accuracy and Recall@1 against data scale.", 2),
    "eval/learning_curves": ("Error of each group against examples seen, per run.", None),
    "eval/fig2_xm3600": ("Figure 2 analog: XM3600 retrieval error of low- and high-resource languages.", 3),
    "eval/fig3_association_bias": ("Figure 3 analog: association bias by data scale.", 4),
    "eval/fig4_filters": ("Figure 4 analog: the filter arms against the English baseline, by examples seen.", 6),
    "eval/fig5_rebalancing": ("Figure 5 analog: before and after language rebalancing.", 7),
    "eval/fig6_models": ("Figure 6 analog: error against compute, per model and data scale.", 9),
    "attention/table6": ("Table 6 analog: MAP-head attention of the 1%, 10% and 100% models on held-out images "
                         "(colour: attention relative to a uniform map; cyan: the object's mask).", 8),
    "attention/focus": ("Focus of the attention on the object, per concept group and data scale.", 8),
    "attention/curation": ("MAP-head attention of every run at the curated runs' examples seen.", None),
}
# Every LaTeX table of paper/tables, with the finding it is shown with (None: the appendix).
TABLES = {"table1": 1, "wilcoxon": 2, "table3": 4, "table4": 4, "table13": 6, "table14": 7,
          "attention_focus": 8}


def fmt(x, digits: int = 1, sign: bool = False) -> str:
    """A number as the text prints it: fixed digits, a true minus sign, '+' when `sign`; '--' for NaN/None."""
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "--"
    s = f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"
    return s.replace("-", MINUS)


def fmt_ci(v, ci, digits: int = 1, sign: bool = False) -> str:
    lo, hi = (ci or (None, None))
    return f"{fmt(v, digits, sign)} [{fmt(lo, digits, sign)}, {fmt(hi, digits, sign)}]"


def _read(root: Path, rel: str):
    path = root / rel
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the paper stage reads it; run the stage that writes it (dvc repro)")
    return json.loads(path.read_text())


def _scales(fig: dict) -> list[str]:
    return list(fig["group_averages_by_scale"])


# ------------------------------------------------------------------------------------------------ findings

def _gain(fig, key, group):
    g = fig.get(key, {}).get(group)
    return (g["gain"], g["ci95"]) if g else (np.nan, None)


def _f1(fig, att, filt):
    gain, ci = _gain(fig, "gains_10_to_100", "western")
    p = fig["wilcoxon"]["western"]["p_value"]
    flat = ci is not None and ci[0] <= 0 <= ci[1]
    ours = (f"Average Western error falls by {fmt_ci(gain, ci)} pp from 10% to 100% data "
            f"(Wilcoxon p = {fmt(p, 3)} over {fig['wilcoxon']['western']['n_pairs']} tasks).")
    return ours, ("reproduces" if flat else "does not reproduce"), \
        "reproduces when the 10% → 100% gain's interval contains zero"


def _f2(fig, att, filt):
    gain, ci = _gain(fig, "gains_10_to_100", "culture")
    p = fig["wilcoxon"]["culture"]["p_value"]
    ours = (f"Average Culture error falls by {fmt_ci(gain, ci)} pp from 10% to 100% data "
            f"(Wilcoxon p = {fmt(p, 3)} over {fig['wilcoxon']['culture']['n_pairs']} tasks).")
    return ours, ("reproduces" if ci and ci[0] > 0 else "does not reproduce"), \
        "reproduces when the 10% → 100% gain's interval lies above zero"


def _f3(fig, att, filt):
    lo, lci = _gain(fig, "gains_10_to_100", "multilingual_low_resource")
    hi, hci = _gain(fig, "gains_10_to_100", "multilingual_high_resource")
    err = fig["group_averages_by_scale"][_scales(fig)[-1]]["multilingual_low_resource"]["error_pct"]
    ours = (f"From 10% to 100% data the low-resource XM3600 error falls by {fmt_ci(lo, lci)} pp, the high-resource "
            f"by {fmt_ci(hi, hci)} pp; the low-resource error at 100% is {fmt(err)}%.")
    ok = lci is not None and lci[0] > 0 and lo > hi
    return ours, ("reproduces" if ok else "does not reproduce"), \
        "reproduces when the low-resource gain lies above zero and exceeds the high-resource gain"


def _f4(fig, att, filt):
    d = fig["disparity"].get("geode/disparity_region", {})
    s = _scales(fig)
    a, b = d.get(s[-2], {}), d.get(s[-1], {})
    rb = fig["representation_bias"]
    ours = (f"GeoDE regional disparity {fmt_ci(a.get('gap_pct'), a.get('ci95'))} pp at {s[-2]} and "
            f"{fmt_ci(b.get('gap_pct'), b.get('ci95'))} pp at {s[-1]} (noise alone: {fmt(b.get('noise_null_p95'))} pp, "
            f"95th percentile); male preference {' / '.join(fmt(rb[k]['male_preference_pct']) for k in s)}% "
            f"at {' / '.join(s)}.")
    narrows = b.get("ci95") is not None and a.get("gap_pct") is not None and b["ci95"][1] < a["gap_pct"]
    return ours, ("reproduces" if narrows else "does not reproduce"), \
        "reproduces when the disparity at 100% lies below the 10% value, its interval included"


def _f5(fig, att, filt):
    return ("vlscale trains no generative VLM on its towers.", "not tested", "needs a PaliGemma-style transfer")


def _f6(fig, att, filt):
    c = fig.get("curation", {}).get("filter_differences", {}).get("clip_minus_english")
    if not c:
        return ("The filter arms were not trained.", "not tested", "needs the clip and english filter runs")
    seen = max(c, key=int)
    w, cu, fa = (c[seen][g] for g in ("western", "culture", "fairness"))
    ours = (f"CLIP filter minus English baseline at {int(seen):,} examples seen: Western {fmt_ci(w['diff'], w['ci95'], sign=True)}, "
            f"Culture {fmt_ci(cu['diff'], cu['ci95'], sign=True)}, Fairness {fmt_ci(fa['diff'], fa['ci95'], sign=True)} pp "
            "of error (negative: the filter does better).")
    ok = w["ci95"][1] < 0 and cu["ci95"][0] > 0
    return ours, ("reproduces" if ok else "does not reproduce"), \
        "reproduces when the CLIP filter's Western difference lies below zero and its Culture difference above"


def _f7(fig, att, filt):
    r = fig.get("curation", {}).get("rebalancing", {})
    if not r:
        return ("No rebalanced run was trained.", "not tested", "needs the rebalanced runs")
    parts, ok = [], True
    for pct, g in r.items():
        lr = g["multilingual_low_resource"]
        parts.append(f"{pct}: {fmt(lr['before'])} → {fmt(lr['after'])} [{fmt(lr['ci95'][0], sign=True)}, "
                     f"{fmt(lr['ci95'][1], sign=True)}]")
        ok &= lr["ci95"][0] > 0
    ours = "Low-resource XM3600 error before → after rebalancing (interval of the reduction, pp): " + "; ".join(parts) + "."
    return ours, ("reproduces" if ok else "does not reproduce"), \
        "reproduces when the reduction's interval lies above zero at every data scale"


def _finite(x) -> bool:
    """A number that was measured: not None, not NaN."""
    return x is not None and bool(np.isfinite(x))


def _f8(fig, att, filt):
    v = att.get("finding8", {})
    if not v.get("tested"):
        return ("Fewer than two data scales were mapped.", "not tested", "needs two natural runs")
    e, h = v["energy"]["all"], v["hit"]["all"]

    def steps(x):
        return ", ".join(f"{fmt(s['from_pct'], 0)}% → {fmt(s['to_pct'], 0)}%: {fmt(100 * s['diff'], 1, True)} "
                         f"[{fmt(100 * s['lo'], 1, True)}, {fmt(100 * s['hi'], 1, True)}]" for s in x["steps"])

    null = (f"Two runs on the same data differ by up to {fmt(100 * e['seed_null_abs_diff'], 1)} pp (mass) and "
            f"{fmt(100 * h['seed_null_abs_diff'], 1)} pp (hit)." if _finite(e.get("seed_null_abs_diff"))
            else "No two runs share their data, so training noise is not measured.")
    ours = (f"Attention mass on the object, change per tenfold data (pp): {steps(e)}; pointing-game hit rate: "
            f"{steps(h)}. {null} The long tail's 1% → 100% gain minus the "
            f"head's: {fmt(100 * v['hit']['more_on_cultural']['diff'], 1, True)} "
            f"[{fmt(100 * v['hit']['more_on_cultural']['lo'], 1, True)}, {fmt(100 * v['hit']['more_on_cultural']['hi'], 1, True)}] pp (hit).")
    full = all(x["each_step_significant"] and x["each_step_beyond_seed_null"] for x in (e, h))
    some = any(x["steps"] and x["steps"][-1]["lo"] > 0 for x in (e, h))
    verdict = "reproduces" if full else "partly reproduces" if some else "does not reproduce"
    return ours, verdict, ("reproduces when both scores rise at every tenfold step, beyond their intervals and the "
                           "seed null; partly when the last step does")


def _f9(fig, att, filt):
    models = fig.get("figure6", {})
    if len(models) < 2:
        return (f"The profile trains one model size ({', '.join(models) or 'none'}).", "not tested",
                "needs two model sizes (the gpu and tpu profiles' model axis)")
    return (f"Models compared: {', '.join(models)} (Figure 6 analog).", "see figure", "read from the figure")


def _f10(fig, att, filt):
    from scipy.stats import spearmanr

    s = _scales(fig)
    rows = [(v[s[-2]]["error_pct"], v[s[-2]]["error_pct"] - v[s[-1]]["error_pct"]) for v in fig["table1"].values()
            if s[-2] in v and s[-1] in v]
    if len(rows) < 4:
        return ("Too few tasks for a correlation.", "not tested", "needs four tasks")
    level, gain = np.array(rows).T
    rho, p = spearmanr(level, gain)
    ours = f"Spearman correlation of a task's error at {s[-2]} and its gain to {s[-1]}: {fmt(rho, 2)} (p = {fmt(p, 3)}, {len(rows)} tasks)."
    return ours, ("reproduces" if p > 0.05 else "does not reproduce"), \
        "reproduces when the correlation is not significant (p > 0.05)"


OURS = {1: _f1, 2: _f2, 3: _f3, 4: _f4, 5: _f5, 6: _f6, 7: _f7, 8: _f8, 9: _f9, 10: _f10}


def findings(fig: dict, att: dict, filt: dict) -> list[dict]:
    ref = json.loads(REFERENCE.read_text())["findings"]
    out = []
    for f in ref:
        ours, verdict, rule = OURS[f["id"]](fig, att, filt)
        out.append({**f, "ours": ours, "verdict": verdict, "rule": rule,
                    "figures": [k for k, (_, n) in FIGURES.items() if n == f["id"]],
                    "tables": [k for k, n in TABLES.items() if n == f["id"]]})
    return out


# ------------------------------------------------------------------------------------------------ setup values

def values(root: Path, fig: dict, att: dict, filt: dict) -> dict:
    """The setup section's numbers, formatted."""
    world = _read(root, "metrics/world.json")
    sample = _read(root, "metrics/sample.json")
    trains = {p.stem: json.loads(p.read_text()) for p in sorted((root / "metrics/train").glob("*.json"))}
    prov = fig["provenance"]
    natural = [t for t in trains.values() if not t.get("rebalanced") and not t.get("filter")]
    biggest = max(natural, key=lambda t: t["examples_seen"]) if natural else next(iter(trains.values()))
    v = {
        "profile": prov["profile"],
        "git_commit": str(prov.get("git_commit") or "unknown"),
        "versions": ", ".join(f"{k} {x}" for k, x in prov["versions"].items() if x),
        "world_examples": f"{world['examples']:,}",
        "low_resource_share": fmt(world["low_resource_share_pct"], 2),
        "language_dev": fmt(world["language_share_max_abs_dev_pct"], 2),
        "head_share": fmt(100 * world["head_share_of_examples"], 1),
        "pool_size": f"{sample['pool_examples']:,}",
        "pool_source": sample["source"],
        "model": fig.get("model", "--"),
        "n_params": f"{biggest['n_params']:,}",
        "examples_seen": f"{biggest['examples_seen']:,}",
        "examples_per_s": f"{biggest['examples_per_s']:,.0f}",
        "device": f"{biggest['devices']} × {biggest['device_kind']}",
        "train_wall_min": fmt(sum(t["wall_s"] for t in trains.values()) / 60, 1),
        "runs": str(len(trains)),
        "run_names": ", ".join(trains),
        "filter_k": f"{filt['k']:,}" if "k" in filt else "--",
        "filter_pool": f"{filt['pool_pairs']:,}" if "pool_pairs" in filt else "--",
        "analog_key_use": fig.get("analog_key_use", "--"),
        "bootstrap": str(fig.get("n_boot", "--")),
        "attention_images": str(att.get("images", "--")),
        "attention_per_group": str(att.get("per_group", "--")),
        "attention_grid": " × ".join(map(str, att.get("grid", []))) or "--",
        "attention_px": str(att.get("image_px", "--")),
        "pointing_radius": fmt(att.get("pointing_radius_px"), 1),
    }
    return v


# ------------------------------------------------------------------------------------------------ tables

_MATH = {r"$\alpha x^{-c}+\varepsilon$": "αx^(−c) + ε", r"$W$": "W", r"$p$": "p", r"$c$": "c", r"$\varepsilon$": "ε", r"$^\dagger$": "†", r"$\Delta$": "Δ", r"$\alpha$": "α",
         r"$\pm$": "±", r"$\times$": "×", r"$\geq$": "≥", r"$\leq$": "≤"}


def _untex(s: str) -> str:
    for k, v in _MATH.items():
        s = s.replace(k, v)
    s = re.sub(r"\\textit\{([^}]*)\}", r"\1", s)
    s = re.sub(r"\\textbf\{([^}]*)\}", r"\1", s)
    s = s.replace(r"\%", "%").replace(r"\&", "&").replace(r"\_", "_").replace(r"\#", "#")
    s = s.replace(r"\textbackslash{}", "\\")
    s = "–" if s.strip() == "--" else re.sub(r"(?<![\w.])-(?=\d)", MINUS, s)  # a minus sign, not a hyphen
    if "$" in s or re.search(r"\\[a-zA-Z]", s):
        raise ValueError(f"LaTeX the paper stage cannot render: {s!r}")
    return s.strip()


def parse_latex_table(tex: str, source: str) -> dict:
    """One of analysis/latex.py's tables (tabular()) as {header, rows, caption, label}; a section heading row is
    {"section": text}."""
    body = re.search(r"\\begin\{tabular\}\{([^}]*)\}(.*?)\\end\{tabular\}", tex, re.S)
    caption = re.search(r"\\caption\{(.*)\}\s*\\label", tex, re.S)
    if not body:
        raise ValueError(f"{source}: no tabular environment")
    lines = [ln.strip() for ln in body.group(2).split(r"\\")]
    rows = []
    for ln in lines:
        ln = ln.replace(r"\hline", "").strip()
        if not ln:
            continue
        m = re.fullmatch(r"\\multicolumn\{\d+\}\{l\}\{(.*)\}", ln)
        rows.append({"section": _untex(m.group(1))} if m else [_untex(c) for c in re.split(r"(?<!\\)&", ln)])
    header, rows = rows[0], rows[1:]
    widths = {len(r) for r in rows if isinstance(r, list)} | {len(header)}
    if len(widths) != 1:
        raise ValueError(f"{source}: rows of {sorted(widths)} cells")
    return {"header": header, "rows": rows, "align": body.group(1),
            "caption": _untex(caption.group(1)) if caption else ""}


# ------------------------------------------------------------------------------------------------ write

def figure_list(root: Path) -> list[dict]:
    found = sorted(p.relative_to(root / "paper/figures").with_suffix("").as_posix()
                   for p in (root / "paper/figures").glob("*/*.png"))
    unknown = [f for f in found if f not in FIGURES]
    if unknown:
        raise ValueError(f"paper/figures holds figures the paper has no caption for: {unknown}; add them to "
                         "vlscale.paper.build.FIGURES")
    from PIL import Image

    out = []
    for k in found:
        with Image.open(root / "paper/figures" / f"{k}.png") as im:
            aspect = im.width / im.height
        # wide multi-panel figures take the text width; single plots and tall grids less, for legible text
        width = 100 if aspect > 2.2 else 80 if aspect > 1.4 else 62
        out.append({"key": k, "path": f"figures/{k}.png", "caption": FIGURES[k][0], "finding": FIGURES[k][1],
                    "width": width})
    return out


def table_list(root: Path) -> list[dict]:
    out = []
    for path in sorted((root / "paper/tables").glob("*.tex")):
        if path.stem not in TABLES:
            raise ValueError(f"{path}: a table the paper does not place; add it to vlscale.paper.build.TABLES")
        out.append({"key": path.stem, "finding": TABLES[path.stem],
                    **parse_latex_table(path.read_text(), str(path))})
    return out


def write_generated(root: str | Path = ".", out_dir: str | Path | None = None) -> dict:
    root = Path(root)
    out = Path(out_dir) if out_dir else root / GENERATED
    out.mkdir(parents=True, exist_ok=True)
    fig, att, filt = (_read(root, f"metrics/{n}.json") for n in ("figures", "attention", "filter"))
    found = findings(fig, att, filt)
    counts = pd.Series([f["verdict"] for f in found]).value_counts().to_dict()
    v = values(root, fig, att, filt)
    v.update({f"verdict_{k.replace(' ', '_')}": str(n) for k, n in counts.items()})
    v["findings_total"] = str(len(found))
    captions = pd.read_csv(root / "plots/world/captions.csv").to_dict("records")
    files = {"values.json": v, "findings.json": found, "figures.json": figure_list(root),
             "tables.json": table_list(root), "captions.json": captions}
    for name, data in files.items():
        (out / name).write_text(json.dumps(data, indent=1, ensure_ascii=False, default=str))
    return files


def compile_pdf(main: str | Path = "paper/main.typ", output: str | Path = "paper/main.pdf",
                timestamp: int = 0) -> Path:
    """Typeset `main` with typst and the package's fonts only; the PDF's date is `timestamp` (Unix seconds)."""
    import typst

    from vlscale.analysis.fonts import FONT_DIR, font_files

    font_files()  # fails with the fix when the fonts are missing
    main, output = Path(main), Path(output)
    typst.compile(str(main), output=str(output), root=str(main.parent), font_paths=[str(FONT_DIR)],
                  ignore_system_fonts=True, timestamp=timestamp)
    return output


def build_date(timestamp: int) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).strftime("%Y-%m-%d")


def read_pdf(path: str | Path, render_dir: str | Path | None = None, scale: float = 1.0) -> list[dict]:
    """The PDF's pages as a reader's software sees them: per page its text and the number of images drawn on it;
    with `render_dir`, each page also rendered to <render_dir>/page_<n>.png (pdfium, `scale` × 72 dpi)."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    pdf = pdfium.PdfDocument(str(path))
    pages = []
    try:
        for i, page in enumerate(pdf):
            text = page.get_textpage().get_text_bounded()
            images = sum(1 for _ in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=4))
            info = {"page": i + 1, "text": text, "images": images, "size_pt": [page.get_width(), page.get_height()]}
            if render_dir is not None:
                out = Path(render_dir) / f"page_{i + 1:02d}.png"
                out.parent.mkdir(parents=True, exist_ok=True)
                page.render(scale=scale).to_pil().save(out)
                info["png"] = str(out)
            pages.append(info)
    finally:
        pdf.close()
    return pages


def build(root: str | Path = ".", timestamp: int = 0) -> dict:
    """The paper stage: generated inputs, the PDF, and its record (pages, images, timings, sha256)."""
    import hashlib
    import time

    root = Path(root)
    t0 = time.perf_counter()
    files = write_generated(root)
    t1 = time.perf_counter()
    pdf = compile_pdf(root / "paper/main.typ", root / "paper/main.pdf", timestamp)
    t2 = time.perf_counter()
    pages = read_pdf(pdf)
    return {"pages": len(pages), "images": sum(p["images"] for p in pages), "figures": len(files["figures.json"]),
            "tables": len(files["tables.json"]), "findings": {f["id"]: f["verdict"] for f in files["findings.json"]},
            "bytes": pdf.stat().st_size, "sha256": hashlib.sha256(pdf.read_bytes()).hexdigest(),
            "generate_s": t1 - t0, "typeset_s": t2 - t1}
