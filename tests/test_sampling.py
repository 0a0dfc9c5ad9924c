"""The sample stage's library: subsets, mixtures, coverage and written id lists, synthetic and real."""
import io
import json
import shutil
import subprocess
import sys
import tarfile

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import ROOT, write_params
from vlscale.config import read_params
from vlscale.data import sampling
from vlscale.data.shards import scan_shards


def test_fraction_labels():
    assert [sampling.fraction_label(f) for f in (0.01, 0.1, 1.0, 0.005)] == ["1pct", "10pct", "100pct", "0.5pct"]


@pytest.fixture(scope="module")
def synthetic(world):
    subsets = sampling.synthetic_subsets(world, 300_000, key=5)
    fractions = [0.01, 0.1, 1.0]
    targets = {c: 0.01 for c in ("bn", "fil", "he", "hi", "mi", "sw", "te")}
    with pytest.warns(UserWarning, match="'mi' has no examples"):
        mixes = sampling.mixtures(subsets, fractions, targets, key=5)
    return subsets, fractions, mixes


def test_written_id_lists_are_sorted_nested_and_match_the_counts(synthetic, tmp_path):
    subsets, fractions, mixes = synthetic
    index = sampling.write_subsets(tmp_path, subsets, fractions, mixes, write_ids_max=10**9, meta={})
    lists = [np.load(tmp_path / index["subsets"][sampling.fraction_label(f)]["ids_file"]) for f in fractions]
    for ids, f in zip(lists, fractions):
        assert np.all(np.diff(ids) > 0) and len(ids) == subsets.counts(f).sum()
    assert np.isin(lists[0], lists[1]).all() and np.isin(lists[1], lists[2]).all()
    saved = json.loads((tmp_path / "subsets.json").read_text())
    assert saved["subsets"]["1pct"]["mixture"]["missing"] == ["mi"]


def test_rebalancing_raises_low_resource_languages_to_their_targets(synthetic):
    subsets, fractions, mixes = synthetic
    lang = sampling.language_table(subsets, fractions, mixes).set_index(["subset", "language"])
    for code in ("bn", "hi", "te"):
        assert abs(lang.loc[("100pct", code), "rebalanced_pct"] - 1.0) < 100 / len(mixes[1.0])
        assert lang.loc[("100pct", code), "natural_pct"] < 0.3
    # the rest keeps its natural mix: English's share among non-target languages is unchanged
    rest = ~lang.loc["100pct", "low_resource"]
    en_nat = lang.loc[("100pct", "en"), "natural_count"] / lang.loc["100pct"].loc[rest, "natural_count"].sum()
    en_reb = lang.loc[("100pct", "en"), "rebalanced_count"] / lang.loc["100pct"].loc[rest, "rebalanced_count"].sum()
    assert en_nat == pytest.approx(en_reb, abs=1e-12)


def test_smaller_subsets_lose_the_long_tail_first(world, synthetic):
    subsets, fractions, _ = synthetic
    counts = {f: sampling.concept_counts(world, subsets, f, progress=False) for f in fractions}
    assert counts[1.0].sum() == subsets.counts(1.0).sum()
    for small, large in zip(fractions, fractions[1:]):
        assert np.all(counts[small] <= counts[large])  # nested subsets: counts can only grow
    cov = sampling.coverage_table(world, counts, [10]).set_index(["subset", "kind"])["covered"]
    assert cov[("1pct", "landmarks")] < cov[("100pct", "landmarks")]
    loss = {kind: cov[("100pct", kind)] - cov[("1pct", kind)] for kind in ("Western head", "culture-specific")}
    assert loss["culture-specific"] > loss["Western head"]


def _png(seed):
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _write_shard(path, examples):
    with tarfile.open(path, "w") as tar:
        for key, files in examples:
            for ext, data in files.items():
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


@pytest.fixture()
def shards(tmp_path):
    """Two real webdataset shards: 300 good records in three languages, plus one bad record of each kind."""
    langs = ["en", "hi", "sw"]
    good = [(f"{s}{i:04d}", {"png": _png(i), "txt": f"caption {i}".encode(),
                             "json": json.dumps({"uid": f"u{s}{i}", "language": langs[i % 3]}).encode()})
            for s in range(2) for i in range(150)]
    bad = [("c0", {"jpg": b"not a jpeg", "txt": b"x", "json": b'{"uid": "bad1", "language": "en"}'}),
           ("c1", {"png": _png(1), "txt": b"   ", "json": b'{"uid": "bad2", "language": "en"}'}),
           ("c2", {"png": _png(2), "txt": b"y", "json": b'{"uid": "bad3", "language": "xx"}'}),
           ("c3", {"png": _png(3), "txt": b"z", "json": b'{"uid": "u00", "language": "en"}'})]  # duplicate uid
    _write_shard(tmp_path / "a.tar", good[:150] + bad[:2])
    _write_shard(tmp_path / "b.tar", good[150:] + bad[2:])
    return tmp_path


def test_real_shards_give_nested_uid_lists_and_account_for_every_record(world, shards, tmp_path):
    scan = scan_shards([str(shards / "*.tar")], languages=world.strata, progress=False)
    scan.check()
    assert scan.report["examples_in"] == 304 and scan.report["kept"] == 300
    subsets = sampling.real_subsets(scan.records, key=1)
    fractions = [0.1, 0.5, 1.0]
    mixes = sampling.mixtures(subsets, fractions, {"hi": 0.4, "sw": 0.1}, key=1)
    out = tmp_path / "out"
    index = sampling.write_subsets(out, subsets, fractions, mixes, 10**6, meta={}, records=scan.records)
    uids = [pd.read_parquet(out / index["subsets"][sampling.fraction_label(f)]["ids_file"])["uid"] for f in fractions]
    assert [len(u) for u in uids] == [30, 150, 300]
    assert set(uids[0]) <= set(uids[1]) <= set(uids[2]) and list(uids[2]) == sorted(uids[2])
    assert index["subsets"]["10pct"]["counts"] == {"en": 10, "hi": 10, "sw": 10}


def test_the_sample_stage_runs_on_real_shards(shards, tmp_path):
    repo = tmp_path / "repo"
    (repo / "notebooks").mkdir(parents=True)
    shutil.copy(ROOT / "dvc.yaml", repo)
    shutil.copy(ROOT / "notebooks/02_sample.ipynb", repo / "notebooks")
    params = read_params(ROOT / "params.yaml", "smoke")
    params["sample"].update(source="webdataset", shards=[str(shards / "*.tar")])
    params["evaluate"]["real_sets"]["imagenet"] = str(tmp_path / "imagenet")  # a real pool's report needs a real set
    write_params(params, repo)
    r = subprocess.run([sys.executable, "-m", "vlscale.pipeline", "sample"], cwd=repo, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    metrics = json.loads((repo / "metrics/sample.json").read_text())
    assert metrics["scan"]["examples_in"] == 304 and metrics["scan"]["kept"] == 300
    assert metrics["scan"]["rejected"]["duplicate_uid"] == 1
    assert metrics["subsets"]["1pct"]["examples"] == 3 and metrics["subsets"]["100pct"]["examples"] == 300
    report = json.loads((repo / "data/sample/scan_report.json").read_text())
    assert report["identity_holds"]
    # what the report says of the pool: its shards, its languages as tagged, the coverage of its page languages
    assert metrics["shards"]["files"] == len(list(shards.glob("*.tar"))) and metrics["shards"]["formats"] == ["webdataset"]
    assert sum(metrics["languages"].values()) == 300
    coverage = pd.read_csv(repo / "plots/sample/coverage.csv")
    assert set(coverage["kind"]) == {"page languages"} and set(coverage["subset"]) == {"1pct", "10pct", "100pct"}
    assert coverage.loc[(coverage["subset"] == "100pct") & (coverage["k"] == 10), "covered"].item() == 1.0


def test_records_without_a_language_tag_are_kept_under_sample_untagged_language(tmp_path):
    """A crawl without language tags (img2dataset of CC3M): rejected as unknown_language by default, kept as
    untagged ("und") with sample.untagged_language: und; a value that is no page language is refused by name."""
    from vlscale.config import ParamsError, validate

    _write_shard(tmp_path / "a.tar", [(f"{i:04d}", {"png": _png(i), "txt": f"caption {i}".encode(),
                                                     "json": json.dumps({"uid": f"u{i}"}).encode()})
                                      for i in range(20)])
    params = read_params(ROOT / "params.yaml", "smoke")
    params["sample"].update(source="webdataset", shards=[str(tmp_path / "a.tar")])
    params["figures"]["source"] = "analog"  # this test runs the sample stage only
    for untagged, kept in ((None, 0), ("und", 20)):
        repo = tmp_path / f"repo_{untagged}"
        (repo / "notebooks").mkdir(parents=True)
        shutil.copy(ROOT / "dvc.yaml", repo)
        shutil.copy(ROOT / "notebooks/02_sample.ipynb", repo / "notebooks")
        params["sample"]["untagged_language"] = untagged
        write_params(params, repo)
        r = subprocess.run([sys.executable, "-m", "vlscale.pipeline", "sample"], cwd=repo, capture_output=True,
                           text=True)
        if kept == 0:  # nothing left to sample: the stage says which reason took every record, and the fix
            assert r.returncode != 0 and "kept none of its 20 records: rejected by reason {'unknown_language': 20}; " \
                "a pool without language tags needs sample.untagged_language" in r.stderr, r.stderr[-2000:]
            continue
        assert r.returncode == 0, r.stderr[-3000:]
        metrics = json.loads((repo / "metrics/sample.json").read_text())
        assert metrics["scan"]["kept"] == kept and metrics["languages"] == {"und": kept}
    params["sample"]["untagged_language"] = "klingon"
    with pytest.raises(ParamsError, match="sample.untagged_language = 'klingon': 'klingon' is not a page language"):
        validate(params)
