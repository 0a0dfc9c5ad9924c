"""The evaluate stage's results as the figures stage reads them: the tidy table of every run's metrics,
the per-item outcomes behind them, and the paper's layout of tasks into Table 1 and Figure 1.

Input (results/evaluate/):
- <run>.parquet: one row per (run, checkpoint, task, metric) with the columns of COLUMNS (and `seed`,
  the run's training seed; 0 when a table lacks it). Values are errors in % (metric
  "error_pct") unless the metric says otherwise.
- <run>/items.parquet: one row per (run, checkpoint, task, outcome) with the columns of
  ITEM_COLUMNS; `item` is the test image an outcome belongs to (a caption its image) and `value`
  the success in [0, 1] whose mean gives the task's metric
  (ITEM_METRICS). Absent for results written without items (e.g. real sets evaluated without them).

A "data scale" is a run's data_pct (1, 10, 100 by default, the paper's 1B / 10B / 100B); runs that
share a data_pct and a model differ by seed. "Final" is each run's last cooled-down checkpoint (the
paper's 100B examples seen). Tasks that were not evaluated are reported as missing, never filled in.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from vlscale.config import OCCUPATION_PAIRS
from vlscale.evals import groups

COLUMNS = ("run", "fraction", "data_pct", "examples_seen", "budget", "checkpoint", "profile", "model",
           "benchmark", "source", "task", "metric", "value", "se", "n")
ITEM_COLUMNS = ("run", "seed", "data_pct", "examples_seen", "source", "benchmark", "task", "item", "value")
# metric -> the task's value from the mean m of its items' values.
ITEM_METRICS = {"error_pct": lambda m: 100.0 * (1.0 - m), "male_preference_pct": lambda m: 100.0 * m,
                "probability": lambda m: m}

# Figure 1 right: panel column (plots CSV) -> (task, label). Plotted as accuracy / recall = 100 - error.
FIG1_PANELS = {
    "imagenet_0shot_acc": ("imagenet/0shot", "ImageNet 0-shot accuracy (%)"),
    "coco_i2t_r1": ("coco/i2t", "COCO image→text Recall@1 (%)"),
    "dollarstreet_geoloc_acc": ("dollarstreet/geoloc_10shot", "Dollar Street 10-shot geolocalization acc. (%)"),
    "telugu_i2t_r1": (groups.xm3600_task("i2t", "te"), "Telugu (XM3600) image→text Recall@1 (%)"),
}
# Figure 1 left: the radar's four axes, and which average stands for each.
RADAR = {"Culture": "culture", "Multilinguality": "multilingual", "Western": "western", "Fairness": "fairness"}

# Table 1's rows in the paper's order: (section, label, task).
TABLE1 = [
    *[("Zero-shot classification", label, t) for label, t in
      [("ImageNet", "imagenet/0shot"), ("CIFAR100", "cifar100/0shot"), ("Pet", "pet/0shot")]],
    *[("Retrieval @1", label, t) for label, t in
      [("COCO I2T", "coco/i2t"), ("COCO T2I", "coco/t2i"), ("Flickr I2T", "flickr/i2t"), ("Flickr T2I", "flickr/t2i")]],
    *[("10-shot", label, t) for label, t in
      [("ImageNet", "imagenet/10shot"), ("Birds", "birds/10shot"), ("Caltech", "caltech/10shot"),
       ("Cars", "cars/10shot"), ("CIFAR100", "cifar100/10shot"), ("Colorectal", "colorectal/10shot"),
       ("Pet", "pet/10shot"), ("DTD", "dtd/10shot")]],
    *[("Cultural: 10-shot geolocalization", label, t) for label, t in
      [("DS", "dollarstreet/geoloc_10shot"), ("GeoDE-C", "geode/country_geoloc_10shot"),
       ("GeoDE-R", "geode/region_geoloc_10shot")]],
    *[("Cultural: zero-shot classification", label, t) for label, t in
      [("DS", "dollarstreet/0shot"), ("GeoDE", "geode/0shot"), ("GLDv2", "gldv2/0shot")]],
]
TABLE1_TASKS = [t for _, _, t in TABLE1]
TABLE4 = {"dollarstreet/disparity_income": "0-shot Dollar Street (by income)",
          "geode/disparity_region": "0-shot GeoDE (by region)"}


# ---------------------------------------------------------------------------------------------- input

def _read_parquets(files, columns) -> list[pd.DataFrame]:
    """Each parquet file, checked to have `columns` (a missing one is an error naming the file)."""
    parts = []
    for f in files:
        d = pd.read_parquet(f)
        missing = [c for c in columns if c not in d.columns]
        if missing:
            raise ValueError(f"{f}: missing columns {missing}; expected {list(columns)}")
        parts.append(d)
    return parts


def _run_files(pattern_of, directory: Path, runs) -> list[Path]:
    """The files of `runs` (pattern_of(run) under directory), or of every run when runs is None."""
    if runs is None:
        return sorted(directory.glob(pattern_of("*")))
    return [directory / pattern_of(r) for r in runs if (directory / pattern_of(r)).exists()]


def read_results(directory: str | Path, runs=None) -> pd.DataFrame:
    """Concatenate results/evaluate/<run>.parquet in `directory` (columns COLUMNS and seed) for `runs`
    (default every file: pass params.yaml's runs so that a run removed from it is not read)."""
    directory = Path(directory)
    files = _run_files(lambda r: f"{r}.parquet", directory, runs)
    if not files:
        raise FileNotFoundError(f"no results (*.parquet) in {directory.resolve()}: run the evaluate stage first")
    parts = [d if "seed" in d.columns else d.assign(seed=0)  # results written before seeds
             for d in _read_parquets(files, COLUMNS)]
    parts = [d if "curation" in d.columns else d.assign(curation="natural") for d in parts]  # before curation
    return pd.concat(parts, ignore_index=True)


def read_items(directory: str | Path, runs=None) -> pd.DataFrame:
    """Concatenate results/evaluate/<run>/items.parquet in `directory` (columns ITEM_COLUMNS) for `runs`
    (default every run); an empty table when no run wrote items (then binomial errors)."""
    files = _run_files(lambda r: f"{r}/items.parquet", Path(directory), runs)
    parts = [d[list(ITEM_COLUMNS)] for d in _read_parquets(files, ITEM_COLUMNS)]
    return pd.concat(parts, ignore_index=True) if parts else no_items()


def read_analog_facts(directory: str | Path, runs=None) -> dict:
    """The analogs' facts the evaluate stage wrote beside its results (results/evaluate/<run>/analogs.json:
    sizes, caption ceilings, English-equal caption shares), {} when none. Runs evaluated on one key
    share one draw, so the facts of every run must agree."""
    found = {}
    for f in _run_files(lambda r: f"{r}/analogs.json", Path(directory), runs):
        found[f] = json.loads(f.read_text())
    if not found:
        return {}
    first_path, first = next(iter(found.items()))
    for f, facts in found.items():
        if facts != first:
            raise ValueError(f"{f} and {first_path} describe different analog draws (keys {facts.get('key')} and "
                             f"{first.get('key')}); evaluate every run with the same evaluate params")
    return first


def on_real_benchmarks(text: str) -> str:
    """A title or caption of an analog's table or figure, said of the real sets ("Table 3 analog" -> "Table 3 on the
    real benchmarks", "FairFace-like images" -> "FairFace images")."""
    return text.replace(" analog", " on the real benchmarks").replace("-like images", " images")


def real_set_facts(tidy: pd.DataFrame) -> dict:
    """For the real sets, the one fact of read_analog_facts' the study reads: XM3600's images per language (its
    Recall@1 chance, as the median over the i2t tasks); no English-equal shares, so no language is set apart."""
    n = tidy.loc[(tidy["source"] == "real") & tidy["task"].str.startswith("xm3600/i2t/"), "n"]
    return {"analogs": {"xm3600": {"images": int(n.median())}}} if len(n) else {}


def english_like_languages(facts: dict, share: float) -> list[str]:
    """XM3600 caption languages (groups' codes) other than English whose captions equal the English
    caption of the same image for at least `share` of the images (analogs.json's english_equal_share)."""
    shares = facts.get("analogs", {}).get("xm3600", {}).get("english_equal_share", {})
    return sorted(groups.XM3600_CODE.get(lang, lang) for lang, v in shares.items() if lang != "en" and v >= share)


def no_items() -> pd.DataFrame:
    """An items table without rows (results that come without per-item outcomes)."""
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(
        ITEM_COLUMNS, ("str", "int64", "float64", "int64", "str", "str", "str", "int32", "float32"))})


def natural(tidy: pd.DataFrame) -> pd.DataFrame:
    """The rows of runs on the natural data (no filter arm, no rebalancing): the paper's data-scale study."""
    if "curation" not in tidy:
        return tidy
    return tidy[tidy["curation"] == "natural"].reset_index(drop=True)


def select_source(tidy: pd.DataFrame, source: str = "analog") -> pd.DataFrame:
    """Rows of one benchmark source ("analog" or "real"); a table never mixes the two."""
    d = tidy[tidy["source"] == source]
    if d.empty:
        raise ValueError(f"no results with source {source!r}; the table has {sorted(tidy['source'].unique())}")
    return d.reset_index(drop=True)


def final(table: pd.DataFrame) -> pd.DataFrame:
    """Rows at each run's last checkpoint (its largest examples_seen): the paper's '100B examples seen'.
    Works on any table with run and examples_seen columns."""
    last = table.groupby("run")["examples_seen"].transform("max")
    return table[table["examples_seen"] == last]


def scales(table: pd.DataFrame) -> list[float]:
    """The data scales present (data_pct), ascending."""
    return sorted(table["data_pct"].unique().tolist())


def scale_label(pct: float) -> str:
    """'1%', '10%', '100%': a run's share of the pool (the paper's 1B / 10B / 100B)."""
    return f"{pct:g}%"


def errors(tidy: pd.DataFrame) -> pd.DataFrame:
    """The rows whose metric is an error in %."""
    return tidy[tidy["metric"] == "error_pct"]


def at(table: pd.DataFrame, pct: float) -> pd.DataFrame:
    """The rows of data scale pct."""
    return table[np.isclose(table["data_pct"], pct)]


def one_model(table: pd.DataFrame, what: str) -> None:
    """Refuse a table of several models where the paper's table is of one."""
    models = table["model"].unique()
    if len(models) > 1:
        raise ValueError(f"{what} is for one model; the results hold {sorted(models)}: filter by `model` first")


def missing_tasks(tidy: pd.DataFrame) -> dict[str, list[str]]:
    """For each headline group average, Table 1 and Figure 1: the tasks it names that the table lacks."""
    present = set(errors(tidy)["task"])
    out = {name: [t for t in groups.AVERAGES[name] if t not in present] for name in groups.HEADLINE}
    out["table1"] = [t for t in TABLE1_TASKS if t not in present]
    out["figure1"] = [t for t, _ in FIG1_PANELS.values() if t not in present]
    return out


# ------------------------------------------------------------------------------- shaped for the paper
# Each takes uncertainty.Estimates' `by_scale` table: the final-checkpoint value of every task per
# (model, data_pct), averaged over seeds, with its 95% interval (value, lo, hi).

def figure1_data(by_scale: pd.DataFrame) -> pd.DataFrame:
    """Figure 1 right: accuracy / Recall@1 (%) = 100 - error per panel and data scale, with its interval.
    Absent panels are left out (missing_tasks says which)."""
    rows, e = [], errors(by_scale)
    for column, (task, label) in FIG1_PANELS.items():
        for _, r in e[e["task"] == task].iterrows():
            rows.append({"panel": column, "label": label, "task": task, "data_pct": r["data_pct"],
                         "value": 100.0 - r["value"], "lo": 100.0 - r["hi"], "hi": 100.0 - r["lo"]})
    return pd.DataFrame(rows, columns=["panel", "label", "task", "data_pct", "value", "lo", "hi"]).sort_values(
        ["panel", "data_pct"], ignore_index=True)


def figure2_data(scale_groups: pd.DataFrame) -> pd.DataFrame:
    """XM3600 low- vs high-resource average retrieval error (%) per data scale (final checkpoint)."""
    d = scale_groups[scale_groups["group"].isin(["multilingual_low_resource", "multilingual_high_resource"])]
    d = d.assign(resource=d["group"].str.removeprefix("multilingual_").str.removesuffix("_resource"))
    return d[["resource", "data_pct", "error_pct", "lo", "hi", "n_present", "n_tasks"]].sort_values(
        ["resource", "data_pct"], ignore_index=True)


def table1(by_scale: pd.DataFrame, fits: pd.DataFrame | None = None) -> pd.DataFrame:
    """Table 1 analog: per present Table 1 metric (rows: section, metric, task), the error (%) at the
    final checkpoint with its 95% interval for each data scale, then the fitted exponent c and limit eps
    (%) with their bootstrap CI (columns (quantity, data_pct); quantities value, lo, hi, c, c_lo, c_hi,
    eps, eps_lo, eps_hi). `fits` is scaling.fit_tasks' table; without it the fit columns are NaN."""
    one_model(by_scale, "Table 1")
    d = errors(by_scale)
    pcts = scales(by_scale)
    present = set(d["task"])
    index = pd.MultiIndex.from_tuples([r for r in TABLE1 if r[2] in present], names=["section", "metric", "task"])
    quantities = ["value", "lo", "hi", "c", "c_lo", "c_hi", "eps", "eps_lo", "eps_hi"]
    out = pd.DataFrame(np.nan, index=index, columns=pd.MultiIndex.from_product([quantities, pcts]))
    for (_, _, task) in index:
        for pct in pcts:
            here = (slice(None), slice(None), task)
            r = at(d[d["task"] == task], pct)
            if len(r):
                for q in quantities[:3]:
                    out.loc[here, (q, pct)] = r[q].iloc[0]
            if fits is not None:
                f = at(fits[fits["task"] == task], pct)
                if len(f):
                    for q in quantities[3:]:
                        out.loc[here, (q, pct)] = f[q].iloc[0]
    return out


def _by_model_and_scale(by_scale: pd.DataFrame, tasks: list[str], quantities: list[str]) -> pd.DataFrame:
    d = by_scale[by_scale["task"].isin(tasks)]
    return d.pivot_table(index=["task", "model"], columns="data_pct", values=quantities, dropna=False)


def table3(by_scale: pd.DataFrame) -> pd.DataFrame:
    """Table 3 analog: % of images where the model prefers "male" over "female" (rows model; columns
    (value|lo|hi, data_pct)). Empty when representation bias was not evaluated."""
    t = _by_model_and_scale(by_scale, ["fairface/representation_bias"], ["value", "lo", "hi"])
    return t.droplevel("task") if len(t) else t


def table4(disparity: pd.DataFrame) -> pd.DataFrame:
    """Table 4 analog: maximum subgroup accuracy gap (pp) per benchmark and model (rows) and data scale,
    with its interval and the gap expected from test-set noise alone (null_mean, null_p95).
    `disparity` is uncertainty.Estimates' `disparity` table."""
    t = _by_model_and_scale(disparity, list(TABLE4), ["value", "lo", "hi", "null_mean", "null_p95"])
    if not len(t):
        return t
    return t.rename(index=TABLE4, level="task").rename_axis(["benchmark", "model"])


def association_bias(by_scale: pd.DataFrame) -> pd.DataFrame:
    """Figure 3 data: P(prefers the first, stereotypically female occupation over its counterpart); rows
    (data_pct, gender "Female"/"Male"), columns the first occupations present, in config.OCCUPATION_PAIRS' order."""
    d = by_scale[(by_scale["metric"] == "probability")
                 & by_scale["task"].str.startswith("fairface/association_bias/")]
    if d.empty:
        return pd.DataFrame()
    parts = d["task"].str.split("/", expand=True)
    d = d.assign(occupation=parts[2], gender=parts[3].str.capitalize())
    t = d.pivot_table(index=["data_pct", "gender"], columns="occupation", values="value")
    return t.reindex(columns=[a for a, _ in OCCUPATION_PAIRS if a in t.columns]).rename_axis(None, axis=1)
