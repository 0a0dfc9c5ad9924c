"""The reproduction report: every number from a file the pipeline wrote, typeset to a PDF.

`write_generated(root, verdicts)` reads the stages' records (metrics/*.json), the paper's own numbers and effects
(paper/reference.json in this package, each with where in the paper it comes from) and params.yaml's `verdicts`,
judges the findings (findings.py) and writes paper/generated/:
    values.json     every number and verdict the text prints, formatted (the text holds no typed number)
    findings.json   per finding of the paper: its claim and numbers, its parts (each a comparison of the study with
                    its effect, interval over seeds and test images, seeds, detectable effect and verdict), the
                    finding's verdict, its rule, and what the profile can and cannot test
    controls.json   the negative and positive controls, each with its comparisons and whether it passed
    figures.json    every figure the stages made (path, caption, the finding it belongs to)
    tables.json     every table of paper/tables/ (the rows typst sets, <name>.json beside its LaTeX <name>.tex:
                    analysis/latex.py), with the finding it is shown with
    captions.json   one alt-text caption per language of the world (the 36 scripts the fonts must draw)
`compile_pdf` typesets paper/main.typ with typst (a PyPI wheel: no TeX needed) and the fonts the package
ships, ignoring the machine's own fonts and with a fixed timestamp, so the PDF is the same on every machine.
"""
from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path

import pandas as pd
from PIL import Image

from vlscale.analysis import evidence as ev
from vlscale.analysis import report
from vlscale.analysis.fonts import FONT_DIR, font_files
from vlscale.analysis.results import on_real_benchmarks
from vlscale.attention import tables as attention_tables
from vlscale.config import LOW_RESOURCE, VerdictsParams
from vlscale.data import sampling
from vlscale.files import read_json, write_json
from vlscale.paper.findings import REFERENCE, controls, judge
from vlscale.paper.text import fmt, join_and
from vlscale.transfer import results as transfer_results
from vlscale.world import describe, vocab

REF_SCALE = read_json(REFERENCE)["scale"]
GENERATED = Path("paper/generated")

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
    "filter/caption_languages": ("Caption languages of what each filter arm kept: the English-caption share and the "
                                 "largest other languages.", None),
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
    "eval/concept_frequency": ("Concept frequency (Udandarao et al. 2024): each concept's zero-shot accuracy "
                               "(ImageNet-like) and image-to-text Recall@1 (COCO-like) against its exact training "
                               "pairs, per data scale; dots: concepts binned per half decade; lines: a + b·log10(pairs) "
                               "per checkpoint with 95% bands over seeds, concepts and test images.", None),
    "eval/tradeoff": ("Quality against quantity (Goyal et al. 2024): Western, Culture and Fairness error of every filter "
                      "arm and of the unfiltered pool (dashed) at equal examples seen, per budget; the legend says how "
                      "often each pair is seen; 95% bands over test images.", None),
    "attention/table6": ("Table 6 analog: MAP-head attention of the 1%, 10% and 100% models on held-out images "
                         "(colour: attention relative to a uniform map; cyan: the object's mask).", 8),
    "attention/focus": ("Focus of the attention on the object, per concept group and data scale.", 8),
    "attention/curation": ("MAP-head attention of every run at the curated runs' examples seen.", None),
}
# Every table of paper/tables, with the finding it is shown with (None: the appendix).
TABLES = {"table1": 1, "wilcoxon": 2, "table3": 4, "table4": 4, "transfer_table2": 5, "table13": 6, "table14": 7,
          "attention_focus": 8, "transfer_table12": 5}


def _read(root: Path, rel: str):
    path = root / rel
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the paper stage reads it; run the stage that writes it (dvc repro)")
    return read_json(path)


def _scales(fig: dict) -> list[str]:
    return list(fig[report.GROUP_AVERAGES_BY_SCALE])


# ------------------------------------------------------------------------------------------------ setup values

def transfer_values(trans: dict) -> dict:
    """The setup's sentence on the generative transfer (metrics/transfer.json's params and draw)."""
    tp = trans.get("params") or {}
    if not trans.get(transfer_results.SCORES):
        return {"transfer_setup": "No generative transfer was made."}
    dec = tp["decoder"]
    settings = " and ".join(tp["settings"])
    on = (f"{tp['train_images']:,} training images, each with the {len(transfer_results.TASKS)} tasks (captions in "
          f"English and in the page's language; what, which country, which region, whether a person is shown and "
          f"who), then decodes greedily on {tp['test_images']:,} held-out test images"
          if trans.get("source") != "coco" else
          f"{tp['train_images']:,} COCO training images (every reference caption an example), then captions "
          f"{tp['test_images']:,} COCO test images greedily, scored by CIDEr against all their references")
    return {"transfer_setup": (
        f"The generative transfer puts each natural run's final image tower ({settings}) under a fresh "
        f"{dec['depth']}-layer decoder of width {dec['width']} with prefix-LM attention, the tower's patch tokens "
        f"projected to its width, and trains it with teacher forcing for {tp['steps']:,} steps of {tp['batch_size']} "
        f"examples on {on}.")}


def values(root: Path, fig: dict, att: dict, filt: dict) -> dict:
    """The setup section's numbers, formatted."""
    world = _read(root, "metrics/world.json")
    sample = _read(root, "metrics/sample.json")
    trains = {p.stem: read_json(p) for p in sorted((root / "metrics/train").glob("*.json"))}
    prov = fig[report.PROVENANCE]
    natural = [t for t in trains.values() if not t.get("rebalanced") and not t.get("filter") and not t.get("model")]
    biggest = max(natural, key=lambda t: t["examples_seen"]) if natural else next(iter(trains.values()))
    v = {
        "profile": prov["profile"],
        "git_commit": str(prov.get("git_commit") or "unknown"),
        "versions": ", ".join(f"{k} {x}" for k, x in prov["versions"].items() if x),
        "world_examples": f"{world[describe.EXAMPLES]:,}",
        "low_resource_share": fmt(world[describe.LOW_RESOURCE_SHARE_PCT], 2),
        "language_exponent": fmt(world["provenance"]["params"]["world"].get("language_share_exponent", 1.0), 2),
        "paper_low_resource_share": fmt(sum(lang["web_pages_pct"] for lang in vocab.load("languages")["languages"]
                                            if lang["code"] in LOW_RESOURCE), 2),  # Table 15's
        "language_dev": fmt(world[describe.LANGUAGE_SHARE_MAX_ABS_DEV_PCT], 2),
        "head_share": fmt(100 * world[describe.HEAD_SHARE_OF_EXAMPLES], 1),
        "pool_size": f"{sample[sampling.POOL_EXAMPLES]:,}",
        "pool_source": sample[sampling.SOURCE],
        "model": fig.get(report.MODEL, "--"),
        "n_params": f"{biggest['n_params']:,}",
        "examples_seen": f"{biggest['examples_seen']:,}",
        "examples_per_s": f"{biggest['examples_per_s']:,.0f}",
        "device": f"{biggest['devices']} × {biggest['device_kind']}",
        "train_wall_min": fmt(sum(t["wall_s"] for t in trains.values()) / 60, 1),
        "runs": str(len(trains)),
        "run_names": ", ".join(trains),
        "filter_k": f"{filt['k']:,}" if "k" in filt else "--",
        "filter_pool": f"{filt['pool_pairs']:,}" if "pool_pairs" in filt else "--",
        "analog_key_use": fig.get(report.ANALOG_KEY_USE, "--"),
        "bootstrap": str(fig.get(report.N_BOOT, "--")),
        "attention_images": str(att.get(attention_tables.IMAGES, "--")),
        "attention_per_group": str(att.get(attention_tables.PER_GROUP, "--")),
        "attention_grid": " × ".join(map(str, att.get(attention_tables.GRID, []))) or "--",
        "attention_px": str(att.get(attention_tables.IMAGE_PX, "--")),
        "pointing_radius": fmt(att.get(attention_tables.POINTING_RADIUS_PX), 1),
        "scales": ", ".join(_scales(fig)[:-1]) + f" and {_scales(fig)[-1]}" if len(_scales(fig)) > 1 else
        "".join(_scales(fig)),
        "low_resource_count": str(len(LOW_RESOURCE)),
        "paper_params": REF_SCALE["params"], "paper_examples": REF_SCALE["examples"],
    }
    whole = max(natural or trains.values(), key=lambda t: t.get("fraction", 0))  # the run on the whole pool
    v["pool_epochs"] = fmt(whole.get("epochs"), 1)  # how often it sees each pair
    return v | pool_values(sample, fig)


def pool_values(sample: dict, fig: dict) -> dict:
    """What the study ran on, as the setup prints it: the pool's kind, the benchmarks reported, what the pool could
    not give (the plan's skipped arms and runs) and, for real shards, the shards, what the scan kept and rejected by
    reason, the languages as tagged and the subsets' sizes (metrics/sample.json)."""
    plan = fig.get(report.PLAN, {})
    skipped = [f"filter arm {a} ({why})" for a, why in plan.get("skipped_arms", {}).items()]
    runs = list(plan.get("skipped_runs", {}))
    if runs:
        skipped.append(f"the run{'s' if len(runs) > 1 else ''} on those arms ({', '.join(runs)})")
    v = {"pool_kind": "synthetic" if sample[sampling.SOURCE] == "synthetic" else "real",
         "benchmark_source": "the synthetic analogs" if fig.get(report.SOURCE) == "analog" else "the real evaluation sets",
         "benchmarks": ", ".join(f"{b} ({m['n']:,} test items)" for b, m in fig.get(report.BENCHMARKS, {}).items()) or "none",
         "skipped": "; ".join(skipped) or "nothing",
         "subset_sizes": join_and([f"{label.replace('pct', '%')}: {m[sampling.SUBSET_EXAMPLES]:,}"
                               for label, m in sample[sampling.SUBSETS].items()])}
    if v["pool_kind"] == "real":
        scan, shards, languages = sample[sampling.SCAN], sample[sampling.SHARDS], sample[sampling.LANGUAGES]
        n = shards["files"]
        rejected = {k: c for k, c in scan["rejected"].items() if c}
        order = sorted(languages, key=lambda c: (-languages[c], c))
        low = [c for c in LOW_RESOURCE if c in languages]
        absent = [c for c in LOW_RESOURCE if c not in languages]
        v |= {"pool_shards": (f"{n:,} {' and '.join(shards['formats'])} shard{'s' if n > 1 else ''} "
                              f"({shards['first']} to {shards['last']}, {shards['bytes'] / 1e6:,.1f} MB) matched by "
                              f"{', '.join(shards['patterns'])}"),
              "pool_read": f"{scan['examples_in']:,}", "pool_kept": f"{scan['kept']:,}",
              "pool_rejected": f"{sum(scan['rejected'].values()):,}",
              "pool_rejected_by_reason": join_and([f"{c:,} {k.replace('_', ' ')}" for k, c in rejected.items()]) or "none",
              "pool_languages": (f"{len(languages)} page languages as tagged (" +
                                 ", ".join(f"{c} {languages[c]:,}" for c in order[:8]) +
                                 (", ..." if len(order) > 8 else "") + "); the low-resource ones: " +
                                 (", ".join(f"{c} {languages[c]:,}" for c in low) or "none") +
                                 (f", and none of {', '.join(absent)}" if absent else ""))}
    return v


# ------------------------------------------------------------------------------------------------ write

SYNTHETIC_PROBES = "On the synthetic world's probe images, not a test of a real pool. "  # attention, on a real pool
# What a figure shows when the study ran on real shards (the pool's kind; the benchmarks are the real sets).
REAL_POOL_CAPTIONS = {
    "sample/coverage": "Coverage of the pool's page languages: the share with at least k examples in the nested 1%, "
                       "10% and 100% subsets.",
    "train/probe_curves": "Held-out probe while training, on the synthetic world's analogs (development key): a "
                          "check that training runs, not a benchmark of the real pool.",
}


def figure_caption(key: str, pool: str = "synthetic", source: str | None = "analog") -> str:
    """A figure's caption for the pool's kind and the benchmarks reported: on real benchmarks the evaluation
    figures are the paper's own, not analogs; on a real pool the attention maps are of the synthetic probe
    images."""
    caption = FIGURES[key][0]
    if pool == "real":
        caption = REAL_POOL_CAPTIONS.get(key, caption)
        if key.startswith("attention/"):
            caption = SYNTHETIC_PROBES + caption
    if source == "real" and key.startswith("eval/"):
        caption = on_real_benchmarks(caption)
    return caption


def figure_list(root: Path, pool: str = "synthetic", source: str | None = "analog") -> list[dict]:
    """Every figure of paper/figures with its caption; on a real pool without the synthetic world's figures (the
    pool is not drawn from it)."""
    found = sorted(p.relative_to(root / "paper/figures").with_suffix("").as_posix()
                   for p in (root / "paper/figures").glob("*/*.png"))
    unknown = [f for f in found if f not in FIGURES]
    if unknown:
        raise ValueError(f"paper/figures holds figures the paper has no caption for: {unknown}; add them to "
                         "vlscale.paper.build.FIGURES")
    out = []
    for k in found:
        if pool == "real" and k.startswith("world/"):
            continue
        with Image.open(root / "paper/figures" / f"{k}.png") as im:
            aspect = im.width / im.height
        # wide multi-panel figures take the text width; single plots and tall grids less, for legible text
        width = 100 if aspect > 2.2 else 80 if aspect > 1.4 else 62
        out.append({"key": k, "path": f"figures/{k}.png", "caption": figure_caption(k, pool, source),
                    "finding": FIGURES[k][1],
                    "width": width})
    return out


def table_list(root: Path, pool: str = "synthetic") -> list[dict]:
    """Every table of paper/tables (the rows typst sets: analysis/latex.Table.typst) with the finding it is shown
    with; on a real pool the attention tables say they are of the synthetic probe images."""
    out = []
    for path in sorted((root / "paper/tables").glob("*.json")):
        if path.stem not in TABLES:
            raise ValueError(f"{path}: a table the paper does not place; add it to vlscale.paper.build.TABLES")
        table = read_json(path)
        if pool == "real" and path.stem.startswith("attention"):
            table["caption"] = SYNTHETIC_PROBES + table["caption"]
        out.append({"key": path.stem, "finding": TABLES[path.stem], **table})
    return out


def write_generated(root: str | Path = ".", verdicts: VerdictsParams | None = None,
                    out_dir: str | Path | None = None) -> dict:
    """paper/generated/ (see the module docstring); `verdicts`: params.yaml's `verdicts` block (power, margins,
    chance floor) the rules read."""
    root = Path(root)
    if verdicts is None:
        raise ValueError("write_generated needs params.yaml's `verdicts` block (power, margins, chance_floor_pp)")
    out = Path(out_dir) if out_dir else root / GENERATED
    out.mkdir(parents=True, exist_ok=True)
    fig, att, filt, trans = (_read(root, f"metrics/{n}.json") for n in ("figures", "attention", "filter", "transfer"))
    found = [f | {"figures": [k for k, (_, n) in FIGURES.items() if n == f["id"]],
                  "tables": [k for k, n in TABLES.items() if n == f["id"]]} for f in judge(fig, att, verdicts, trans)]
    ctrl = controls(fig, verdicts)
    counts = pd.Series([f["verdict"] for f in found]).value_counts().to_dict()
    v = values(root, fig, att, filt) | transfer_values(trans)
    v.update({f"verdict_{k.replace(' ', '_')}": str(n) for k, n in counts.items()})
    v["findings_total"] = str(len(found))
    v |= control_values(ctrl, verdicts)
    v |= frequency_values(fig) | tradeoff_values(fig) | balanced_values(fig, filt)
    v["replicated"] = replicated(fig, att)
    # the study reference speaks for the synthetic world at small scale: the quick profiles point to it
    study = study_reference(root) if v["profile"] in ("smoke", "cpu") and v["pool_kind"] == "synthetic" else None
    v["study_reference"] = point_to_study(found, study) if study else ""
    v["ladder_figures"] = copy_ladder(root, out) if v["profile"] == "study" else []
    v["attribution"] = attribution_values(root, out, v["profile"])
    captions = pd.read_csv(root / "plots/world/captions.csv").to_dict("records")
    files = {"values.json": v, "findings.json": found, "controls.json": ctrl, "figures.json": figure_list(root, v["pool_kind"], fig.get(report.SOURCE)),
             "tables.json": table_list(root, v["pool_kind"]), "captions.json": captions}
    for name, data in files.items():
        write_json(out / name, data)
    return files


STUDY_REFERENCE = Path("results/reference/study")
UNRESOLVED = (ev.NOT_TESTED, ev.INCONCLUSIVE)


def study_reference(root: Path) -> dict | None:
    """The committed study profile's verdicts (results/reference/study: paper.json, targets.json), or None."""
    ref = root / STUDY_REFERENCE
    if not (ref / "paper.json").is_file() or not (ref / "targets.json").is_file():
        return None
    made = read_json(ref / "targets.json")
    paper = read_json(ref / "paper.json")
    verdicts = {f["id"]: f for f in paper["verdicts"]}
    return {"verdicts": verdicts, "commit": made["commit"][:7], "cpu": made["machine"]["cpu"],
            "wall_min": made["wall_s"] / 60, "controls": {c["control"]: c.get("passed") for c in paper["controls"]}}


def point_to_study(found: list[dict], study: dict) -> str:
    """Each finding this profile leaves not tested or inconclusive gets the study reference's verdict (`study` in its
    record); returns the sentence the summary prints about it ('' when none is left open here)."""
    pointed = []
    for f in found:
        theirs = study["verdicts"].get(f["id"])
        if f["verdict"] in UNRESOLVED and theirs is not None:
            f["study"] = {"verdict": theirs["verdict"], "reason": theirs["reason"], "commit": study["commit"]}
            pointed.append(f["id"])
    if not pointed:
        return ""
    failed = [name for name, passed in study["controls"].items() if passed is False]
    controls = (f"its {' and '.join(failed)} control did not pass, so its verdicts are not to be trusted either" if failed
                else "its controls passed" if study["controls"] and all(study["controls"].values())
                else "not every one of its controls was judged")
    return (f"Findings {', '.join(map(str, pointed))}, which this profile leaves open, carry the verdict of the "
            f"committed study-profile reference as well (results/reference/study: commit {study['commit']}, "
            f"{study['wall_min']:.0f} minutes on {study['cpu']}; {controls}), marked as such: it is not this run's.")


LADDER = Path("results/reference/ladder")
LADDER_FIGURES = {  # file under LADDER -> caption
    "ladder_dev.png": "The compute ladder (development key): every part of every finding at each rung of examples seen "
                      "N (pool = N; the natural runs of the default model and world, two seeds at 10% and 100%), "
                      "coloured by its verdict and labelled with its effect (results/reference/ladder).",
    "ladder_report.png": "The compute ladder on the report key: the same runs, evaluated on the held-out draws "
                         "nobody tuned on (results/reference/ladder).",
    "similarity_dev.png": "Learning curves (development key): each Western head concept's ImageNet-like zero-shot "
                          "accuracy and each language's XM3600 image-to-text R@1 against its unique training pairs in "
                          "the run's subset, binned, one curve per rung (results/reference/ladder).",
}


def copy_ladder(root: Path, out: Path) -> list[dict]:
    """The committed ladder's figures (LADDER_FIGURES), copied into the generated folder for the study's PDF."""
    dest = out / "ladder"
    dest.mkdir(parents=True, exist_ok=True)
    figures = []
    for name, caption in LADDER_FIGURES.items():
        if (root / LADDER / name).is_file():
            shutil.copy2(root / LADDER / name, dest / name)
            figures.append({"path": f"generated/ladder/{name}", "caption": caption, "width": 100})
    return figures


ATTRIBUTION = Path("results/attribution")  # python -m vlscale.attribution's committed tables (finding<N>_*.json)


def _cell(x: dict) -> str:
    return "–" if x.get("effect") is None else (f"{fmt(x['effect'], 1, sign=True)} [{fmt(x['ci95'][0], 1, sign=True)}, "
                                                 f"{fmt(x['ci95'][1], 1, sign=True)}]")


def attribution_values(root: Path, out: Path, profile: str) -> list[dict]:
    """Per committed attribution of `profile` (ATTRIBUTION/finding<N>_<profile>_<scale>_<key>.json, python -m
    vlscale.attribution), the section's text, its table (per ablation: each part's effect with its 95% interval and
    verdict, whether the finding needs the mechanism) and its figure, copied into the generated folder; [] when
    none is committed."""
    from vlscale.world.ablations import ABLATIONS

    found = []
    for path in sorted((root / ATTRIBUTION).glob(f"finding*_{profile}_*.json")):
        a = read_json(path)
        records, needs = a["records"], a["needs"]
        parts = list(records["baseline"]["parts"])
        rows = []
        for name, rec in records.items():
            cells = [f"{_cell(rec['parts'][p])} {rec['parts'][p]['verdict']}" for p in parts]
            rows.append([name, "none (the world as built)" if name == "baseline" else ABLATIONS[name].mechanism,
                         *cells, needs.get(name, "")])
        figure = path.with_suffix(".png")
        dest = out / "attribution"
        dest.mkdir(parents=True, exist_ok=True)
        if figure.is_file():
            shutil.copy2(figure, dest / figure.name)
        c = a["compute"]
        done, planned = a.get("pieces_done", list(records)), a.get("pieces_planned", list(records))
        named = {v: [n for n, x in needs.items() if x == v] for v in ("yes", "no", "undecided")}
        text = (f"Finding {a['finding']} ({a['claim']}), on the {a['profile']} profile at {a['scale']} "
                f"({c['examples_seen']:,} examples seen over {len(c['runs'])} runs per world, {a['seeds']} seeds per "
                f"run, evaluation key {a['key']}): {len(done)} of {len(planned)} worlds done"
                + (f" (still to run: {join_and([p for p in planned if p not in done])})" if len(done) < len(planned)
                   else "") + ". ")
        base = records["baseline"]["parts"]
        shown = [p for p in parts if base[p]["verdict"] == ev.REPRODUCES]
        if not shown:
            text += "The world as built reproduces none of its parts, so no mechanism is judged."
        else:
            text += (f"Judged on {join_and(shown)}, which the world as built reproduces: the finding needs "
                     f"{join_and(named['yes']) if named['yes'] else 'none of the mechanisms tested'}"
                     + (f"; it does not need {join_and(named['no'])}" if named["no"] else "")
                     + (f"; undecided: {join_and(named['undecided'])}" if named["undecided"] else "")
                     + f" (margin: a fall of less than {a['margin']:.0%} of a part's effect is not needed).")
        found.append({"finding": a["finding"], "text": text, "header": ["world", "mechanism off", *parts, "needs it"],
                      "rows": rows, "figure": f"generated/attribution/{figure.name}" if figure.is_file() else ""})
    return found


def replicated(fig: dict, att: dict) -> str:
    """The configurations trained with more than one seed, as the text names them: '10% (2 seeds at 199,936
    examples seen), ...' ('none' without replicates)."""
    seen = {}
    for r in {**fig.get(report.EVIDENCE, {}), **att.get(attention_tables.EVIDENCE, {})}.values():
        for side in ("a", "b"):
            name, n = r.get(side), r.get(f"n_{side}", 0)
            if n and n >= 2 and "@" in str(name) and not r["name"].startswith("control/"):
                seen[(name, r["examples_seen"])] = max(n, seen.get((name, r["examples_seen"]), 0))
    if not seen:
        return "none"
    def label(c: str) -> str:  # "10%", "clip" (a filter arm draws from the whole pool), "rebalanced 10%"
        curation, _, pct = c.partition("@")
        return pct if curation == "natural" else curation.removeprefix("filter/") if curation.startswith(
            "filter/") else f"{curation} {pct}"

    return ", ".join(f"{label(c)} ({n} seeds at {s:,} examples seen)" for (c, s), n in sorted(seen.items(), key=lambda x: (x[0][1], x[0][0])))


def _ci(r: dict, digits: int = 1) -> str:
    return f"{fmt(r['value'] if 'value' in r else r['diff'], digits)} [{fmt(r['ci95'][0], digits)}, {fmt(r['ci95'][1], digits)}]"


def frequency_values(fig: dict) -> dict:
    """The concept-frequency section's text (metrics/figures.json's concept_frequency, analysis/frequency.py): per
    task at the last checkpoint every scale has, each scale's slope b and level at x_ref with their intervals, and
    the answers of every comparison of a scale with the next smaller one; '' where the law was not measured."""
    law = fig.get(report.CONCEPT_FREQUENCY)
    if not law or not law["fits"]:
        return {"frequency_text": ""}
    out = []
    for task, by_scale in law["fits"].items():
        shared = set.intersection(*(set(by_seen) for by_seen in by_scale.values()))
        if not shared:
            continue
        seen = str(max(shared, key=int))
        first = next(iter(by_scale.values()))[seen]
        fits = join_and([f"{scale}: b = {_ci(f[seen]['slope'])}, level {_ci(f[seen]['level'])}"
                         for scale, f in by_scale.items() if "slope" in f[seen]])
        answers = []
        for pair, by_seen in law["answers"].get(task, {}).items():
            said = pd.Series([a["answer"] for a in by_seen.values()]).value_counts()
            answers.append(f"{pair.replace('_vs_', ' against ')}: {by_seen[seen]['answer']} at {int(seen):,} examples "
                           f"seen (over all {len(by_seen)} checkpoints: " + join_and(
                               [f"{k} {n}×" for k, n in said.items()]) + ")")
        zero = [f"{scale} {f[seen]['n_zero_pair_concepts']}" for scale, f in by_scale.items()
                if f[seen]["n_zero_pair_concepts"]]
        label = law["tasks"][task].replace(" (%)", "")
        out.append(f"{task} ({label}) at {int(seen):,} examples seen, slope b in points per decade "
                   f"of pairs and level at {fmt(10 ** first['x_ref'], 0)} pairs, with 95% intervals: {fits}. "
                   + (f"Concepts without a pair (reported apart, not fitted): {join_and(zero)}. " if zero else "")
                   + "One curve or a shift: " + "; ".join(answers) + ".")
    return {"frequency_text": " ".join(out)}


MEASURE_WORDS = {"western_advantage": "Western advantage", "culture_cost": "Culture cost"}
AGAINST_WORDS = {"english": "the English baseline", "unfiltered": "the unfiltered pool"}


def tradeoff_values(fig: dict) -> dict:
    """The quality-quantity section's text (metrics/figures.json's tradeoff, analysis/tradeoff.py): the budgets and
    repeats, the CLIP arm's Western advantage and Culture cost per budget against the English baseline and the
    unfiltered pool, and their change from the smallest to the largest budget; '' where it was not measured."""
    t = fig.get(report.TRADEOFF)
    if not t or not t["effects"]:
        return {"tradeoff_text": ""}
    budgets = [str(b) for b in t["budgets"]]
    avg = t["averages"]
    rep = lambda arm: "–".join(dict.fromkeys(fmt(avg[b][arm]["repeats"], 2)  # noqa: E731
                                             for b in (budgets[0], budgets[-1]) if arm in avg[b]))
    parts = [f"Budgets {join_and([f'{int(b):,}' for b in budgets])} examples seen: the filter arms' pairs are each seen "
             f"{rep('clip')} times, the unfiltered pool's {rep('unfiltered')} times."]
    for key, by_seen in t["effects"].items():
        measure, against = key.split("_vs_")
        values = ", ".join(f"{fmt(r['effect'], 1, sign=True)} [{fmt(r['ci95'][0], 1, sign=True)}, "
                           f"{fmt(r['ci95'][1], 1, sign=True)}]" for r in by_seen.values())
        c = t["changes"].get(key)
        ci = (f"{fmt(c['change'], 1, sign=True)} [{fmt(c['ci95'][0], 1, sign=True)}, "
              f"{fmt(c['ci95'][1], 1, sign=True)}]") if c else ""
        change = ("" if not c else f"; its change from the smallest to the largest budget, {ci}, is inconclusive"
                  if c["reading"] == "inconclusive" else f"; from the smallest to the largest budget it {c['reading']} "
                  f"by {ci}")
        parts.append(f"The CLIP filter's {MEASURE_WORDS[measure]} over {AGAINST_WORDS[against]}, points per budget: "
                     f"{values}{change}.")
    return {"tradeoff_text": " ".join(parts + t["notes"])}


BALANCED_GROUPS = {"western": "Western", "culture": "Culture", "fairness": "Fairness"}


def language_thresholds(record: dict) -> str:
    """How MetaCLIP 2's per-language thresholds came out (a balanced record with `t` and `tail_share` per language):
    English's tail share, and how many languages sit at the floor t = 1, where a concept keeps one pair in expectation
    and no concept is tail (the nearest share to English's when one match per concept already exceeds it)."""
    ts, shares = record.get("t", {}), record.get("tail_share", {})
    if not ts or "en" not in shares:
        return ""
    others = [lang for lang in ts if lang != "en"]
    floor = [lang for lang in others if ts[lang] <= 1]
    text = (f" (its tail, the concepts under it, {fmt(100 * shares['en'], 1)}% of English's matches); each other "
            f"language's threshold gives the tail share nearest English's")
    if floor:
        text += (f"; for {len(floor)} of the {len(others)} other languages that nearest share is zero: their threshold "
                 f"is 1, where a concept keeps one pair in expectation")
    return text


def balanced_values(fig: dict, filt: dict) -> dict:
    """The balanced arm's text (beyond the paper): what MetaCLIP's balancing kept (metrics/filter.json's balanced
    record and shares) and its error against the English baseline and the random control at the largest budget the
    filter runs share, each difference with its 95% interval over seeds and test images (metrics/figures.json's
    curation differences: positive, the balanced arm's error is higher); '' where the arm was not trained."""
    record, diffs = filt.get("balanced"), fig.get("curation", {}).get("filter_differences", {})
    mine = {k: v for k, v in diffs.items() if k.startswith("balanced_minus_")}
    if not record or not mine:
        return {"balanced_text": ""}
    t = record.get("t_en", record.get("t"))
    kept = [f"{record['matched_pairs']:,} of {filt['pool_pairs']:,} pool pairs name a concept in their caption's "
            f"language ({record['entries_matched']:,} of {record['entries']:,} concepts matched); "
            + (f"the threshold that keeps k is {fmt(t, 0)} match{'' if t == 1 else 'es'} per concept in English"
               + language_thresholds(record) if "t_en" in record else f"one threshold, {fmt(t, 1)}, keeps k")]
    shares = []
    for name, words in (("english_caption_share", "English captions"),
                        ("culture_or_landmark_share", "culture-specific or landmark concepts")):
        if "balanced" in filt.get(name, {}):
            shares.append(f"{words} {fmt(100 * filt[name]['balanced'], 1)}% of the arm against "
                          f"{fmt(100 * filt[name]['pool'], 1)}% of the pool")
    parts = ["; ".join(kept) + ". " + (join_and(shares) + "." if shares else "")]
    for key, by_seen in mine.items():
        seen = max(by_seen, key=int)
        against = key.removeprefix("balanced_minus_")
        cells = [f"{BALANCED_GROUPS.get(g, g)} {fmt(r['diff'], 1, sign=True)} [{fmt(r['ci95'][0], 1, sign=True)}, "
                 f"{fmt(r['ci95'][1], 1, sign=True)}]" for g, r in by_seen[seen].items()]
        parts.append(f"Error of the balanced arm minus {'the ' + against + ' arm' if against != 'random' else 'random'}"
                     f" at {int(seen):,} examples seen, points: {', '.join(cells)}.")
    return {"balanced_text": " ".join(parts)}


def control_values(ctrl: list[dict], verdicts: VerdictsParams) -> dict:
    """The controls and the rules' settings as the text prints them; `controls_failed` names any control that
    failed (the report says so at the top)."""
    failed = [c["control"] for c in ctrl if c["passed"] is False]
    unrun = [c["control"] for c in ctrl if c["passed"] is None]
    return {"controls_failed": ", ".join(failed), "controls_unrun": ", ".join(unrun),
            "level_pct": fmt(100 * ev.LEVEL, 0), "power_pct": fmt(100 * verdicts.power, 0),
            "equivalence_level_pct": fmt(100 * (1 - 2 * (1 - ev.LEVEL)), 0),
            "chance_floor_pp": fmt(verdicts.chance_floor_pp),
            "margins": "; ".join(f"{k.replace('_', ' ')} ±{fmt(m, 2)}"
                                 for k, m in verdicts.margins.model_dump().items())}


def compile_pdf(main: str | Path = "paper/main.typ", output: str | Path = "paper/main.pdf",
                timestamp: int = 0) -> Path:
    """Typeset `main` with typst and the package's fonts only; the PDF's date is `timestamp` (Unix seconds)."""
    import typst  # the typesetter, only where a PDF is made

    font_files()  # fails with the fix when the fonts are missing
    main, output = Path(main), Path(output)
    typst.compile(str(main), output=str(output), root=str(main.parent), font_paths=[str(FONT_DIR)],
                  ignore_system_fonts=True, timestamp=timestamp)
    return output


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


def build(root: str | Path = ".", verdicts: VerdictsParams | None = None, timestamp: int = 0) -> dict:
    """Generated inputs, the PDF, and its record (pages, images, timings, sha256)."""
    root = Path(root)
    t0 = time.perf_counter()
    files = write_generated(root, verdicts)
    t1 = time.perf_counter()
    pdf = compile_pdf(root / "paper/main.typ", root / "paper/main.pdf", timestamp)
    t2 = time.perf_counter()
    pages = read_pdf(pdf)
    return {"pages": len(pages), "images": sum(p["images"] for p in pages), "figures": len(files["figures.json"]),
            "tables": len(files["tables.json"]), "findings": {f["id"]: f["verdict"] for f in files["findings.json"]},
            "verdicts": [{k: f[k] for k in ("id", "title", "verdict", "reason", "rule", "effect", "ci95", "n_seeds",
                                           "mde", "scope", "parts")} for f in files["findings.json"]],
            "controls": files["controls.json"],
            "bytes": pdf.stat().st_size, "sha256": hashlib.sha256(pdf.read_bytes()).hexdigest(),
            "generate_s": t1 - t0, "typeset_s": t2 - t1}
