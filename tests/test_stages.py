"""Each stage is one call, `run(params) -> metrics`: on a tiny params set it writes the outputs dvc.yaml declares for
it and the metrics JSON it returns. (The attention stage maps trained checkpoints: the pipeline test runs it.)"""
import json

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, graded_transfer_rows
from test_attention import _planted
from test_figures import synthetic_tidy
from vlscale.analysis import report
from vlscale.analysis import stage as figures_stage
from vlscale.attention.stage import summarise
from vlscale.attention.tables import SUMMARY_PATH
from vlscale.config import TransferParams, read_params
from vlscale.data import stage as sample_stage
from vlscale.files import dumps, read_json, write_json
from vlscale.tokenizer import stage as tokenizer_stage
from vlscale.transfer import stage as transfer_stage
from vlscale.world import stage as world_stage

SMOKE = read_params(ROOT / "params.yaml", "smoke")


def _blocks(*names, **replace):
    """The smoke profile's blocks `names`, with some keys of a block replaced: block={key: value}."""
    return {n: {**SMOKE[n], **replace[n]} if n in replace else SMOKE[n] for n in names}


def _as_written(metrics: dict) -> dict:
    return json.loads(dumps(metrics))


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_world_stage_writes_its_figures_tables_and_metrics(workdir):
    params = _blocks("profile", "world", "world_report",
                     world_report={"examples": 3000, "grid_examples": 4, "grid_px": 32})
    metrics = world_stage.run(params)
    for name in ("language_shares", "long_tail", "region_income", "examples"):
        assert (workdir / f"paper/figures/world/{name}.png").stat().st_size > 1000
    for name in ("language_shares", "examples", "captions"):
        assert (workdir / f"plots/world/{name}.csv").is_file()
    assert read_json(workdir / "metrics/world.json") == _as_written(metrics)
    assert metrics[world_stage.EXAMPLES] == 3000
    assert 0 < metrics[world_stage.LOW_RESOURCE_SHARE_PCT] < 100 and 0 < metrics[world_stage.HEAD_SHARE_OF_EXAMPLES] < 1
    assert metrics[world_stage.LANGUAGE_SHARE_MAX_ABS_DEV_PCT] >= 0
    assert len((workdir / "plots/world/examples.csv").read_text().splitlines()) == 1 + 4


@pytest.mark.filterwarnings("ignore:low-resource language")  # a pool of 5,000 lacks some of them
def test_the_sample_and_tokenizer_stages_write_the_subsets_the_model_and_their_metrics(workdir):
    params = _blocks("profile", "world", "sample", "engine", "beam", sample={"pool_size": 5000})
    metrics = sample_stage.run(params)
    index = read_json(workdir / "data/sample/subsets.json")
    assert list(metrics[sample_stage.SUBSETS]) == list(index["subsets"]) == ["1pct", "10pct", "100pct"]
    for label, entry in index["subsets"].items():
        assert metrics[sample_stage.SUBSETS][label][sample_stage.SUBSET_EXAMPLES] == entry["examples"]
        assert len(np.load(workdir / "data/sample" / entry["ids_file"])) == entry["examples"]
        assert (workdir / f"paper/figures/sample/language_mix_{label}.png").is_file()
    assert metrics[sample_stage.POOL_EXAMPLES] == 5000 and metrics[sample_stage.SOURCE] == "synthetic"
    assert sample_stage.SCAN not in metrics  # a synthetic pool is not scanned
    assert (workdir / "paper/figures/sample/coverage.png").is_file()
    assert {"language_mix.csv", "coverage.csv"} <= {p.name for p in (workdir / "plots/sample").iterdir()}
    assert read_json(workdir / "metrics/sample.json") == _as_written(metrics)

    tok = tokenizer_stage.run(_blocks("profile", "world", "tokenizer"))
    assert (workdir / "data/tokenizer/spm.model").is_file()
    assert tok["vocab_size"] == SMOKE["tokenizer"]["vocab_size"] and tok["languages"] == len(tok["per_language"])
    assert read_json(workdir / "metrics/tokenizer.json") == _as_written(tok)


def test_the_figures_stage_writes_every_figure_table_and_plot_and_the_attention_table(workdir):
    tidy = synthetic_tidy()
    (workdir / "results/evaluate").mkdir(parents=True)
    for run, d in tidy.groupby("run"):
        d.to_parquet(workdir / f"results/evaluate/{run}.parquet", index=False)
    write_json(SUMMARY_PATH, summarise(_planted({"culture": 0.05, "regional": 0.05, "landmark": 0.05, "head": 0.01}),
                                       16, 20))
    # the transfer stage's record of planted transfers (its Table 2 / 12 analogs join the tables)
    rows = pd.DataFrame([r for pct in (1.0, 10.0, 100.0) for r in graded_transfer_rows(f"s{pct:g}", "frozen", pct, 0,
                                                                                      0.5 + pct / 400)])
    chance = pd.DataFrame(graded_transfer_rows("-", "-", 0.0, 9, 0.3)).assign(check="chance")
    oracle = pd.DataFrame(graded_transfer_rows("-", "-", 0.0, 9, 1.0)).assign(check="oracle")
    write_json(workdir / "metrics/transfer.json", transfer_stage.summarise(
        rows, pd.concat([chance, oracle]), TransferParams(**{**SMOKE["transfer"], "bootstrap": 20}), "w64d1p8"))
    params = {"profile": "smoke", "runs": {f"s{p}": {"fraction": p / 100} for p in (1, 10, 100)},
              "sample": {"source": "synthetic"}, "filter": {**SMOKE["filter"], "keep_fraction": 0.1},
              "figures": {**SMOKE["figures"], "bootstrap": 20}}
    metrics = figures_stage.run(params)
    table2 = (workdir / "paper/tables/transfer_table2.tex").read_text()
    assert "tab:transfer_table2" in table2 and "Chance: majority answer" in table2
    assert "tab:transfer_table12" in (workdir / "paper/tables/transfer_table12.tex").read_text()
    assert (workdir / "paper/figures/eval/fig1_gains.png").is_file() and (workdir / "plots/figures/fig1.csv").is_file()
    assert "\\begin{tabular}" in (workdir / "paper/tables/table1.tex").read_text()
    assert "tab:attention_focus" in (workdir / "paper/tables/attention_focus.tex").read_text()
    assert read_json(workdir / "metrics/figures.json") == _as_written(metrics)
    assert metrics[report.SOURCE] == "analog" and set(metrics[report.GROUP_AVERAGES_BY_SCALE]) == {"1%", "10%", "100%"}
    assert metrics["plan"]["runs"] == ["s1", "s10", "s100"] and metrics["provenance"]["runs"] == ["s1", "s10", "s100"]
