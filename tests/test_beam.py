"""The data stages on Apache Beam give the local stages' bytes: the real-shard scan (records and account), the
nested subsets' uid lists, and the filter arms, whatever the number of workers or bundles. Beam runs
in-process (its FnApiRunner: threads or worker processes on this machine), never a runner that downloads."""
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

beam = pytest.importorskip("apache_beam")

from conftest import spoil_member  # noqa: E402
from test_shards import GARBAGE, JPEG, LANGUAGES, PNG, example, pool, write_parquet, write_tar  # noqa: E402,F401
from vlscale.beam import pipeline, pipeline_flags  # noqa: E402
from vlscale.beam import sample as beam_sample  # noqa: E402
from vlscale.config import BeamParams  # noqa: E402
from vlscale.data import sampling  # noqa: E402
from vlscale.data.shards import scan_shards  # noqa: E402

# bundles in one thread, in two threads, and in two worker processes (pickled DoFns, separate interpreters)
ENGINES = {
    "one_worker": BeamParams(runner="in_process", options={"direct_num_workers": 1}),
    "threads": BeamParams(runner="in_process", options={"direct_running_mode": "multi_threading",
                                                        "direct_num_workers": 3}),
    "processes": BeamParams(runner="in_process", options={"direct_running_mode": "multi_processing",
                                                          "direct_num_workers": 2}),
}


def sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_options_become_flags_and_an_unknown_option_is_named():
    assert pipeline_flags({"direct_num_workers": 2, "save_main_session": True, "streaming": False,
                           "experiments": ["a", "b"]}) == ["--direct_num_workers=2", "--save_main_session",
                                                           "--experiments=a", "--experiments=b"]
    with pytest.raises(ValueError, match="direct_workers"):
        pipeline(BeamParams(runner="in_process", options={"direct_workers": 2}))
    with pytest.raises(ValueError, match="without dashes"):
        pipeline_flags({"--runner": "x"})


@pytest.mark.parametrize("engine", ["one_worker", "threads"])
def test_the_beam_scan_equals_the_local_scan_records_and_account(pool, tmp_path, engine):  # noqa: F811
    local = scan_shards(pool, languages=LANGUAGES, progress=False)
    on_beam = beam_sample.scan_shards(pool, languages=LANGUAGES, out_dir=tmp_path / "scan", beam_params=ENGINES[engine])
    assert on_beam.report == local.report
    pd.testing.assert_frame_equal(on_beam.records, local.records)
    on_beam.check()
    assert local.report["rejected"]["duplicate_uid"] == 4 and local.report["rejected"]["unreadable_shard"] == 1


def many_shards(tmp_path, n_shards=7, per_shard=30, seed=0):
    """Shards of tar and parquet with uids repeated across and within shards, bad records of every kind and
    a score in some shards only: the duplicate rule and the column union are where engines could differ."""
    rng = np.random.default_rng(seed)
    paths = []
    for s in range(n_shards):
        uids = [f"u{int(u)}" for u in rng.integers(0, n_shards * per_shard // 2, per_shard)]
        langs = rng.choice(["en", "de", "sw", "xx"], per_shard, p=[0.5, 0.25, 0.2, 0.05])
        kinds = rng.choice(["ok", "ok", "ok", "ok", "garbage", "nocaption"], per_shard)
        if s % 2 == 0:
            members = []
            for i, (u, lang, kind) in enumerate(zip(uids, langs, kinds)):
                meta = {"uid": u, "language": str(lang)} | ({"clip_score": float(i)} if s % 4 == 0 else {})
                members += example(f"{i:04d}", image=GARBAGE if kind == "garbage" else (JPEG if i % 2 else PNG),
                                   caption=None if kind == "nocaption" else f"caption {u} {lang}", **meta)
            paths.append(write_tar(tmp_path / f"s{s:02d}.tar", members))
        else:
            paths.append(write_parquet(tmp_path / f"s{s:02d}.parquet", {
                "uid": uids, "caption": [None if k == "nocaption" else f"caption {u}" for u, k in zip(uids, kinds)],
                "jpg": [GARBAGE if k == "garbage" else JPEG for k in kinds], "language": [str(x) for x in langs],
                **({"aesthetic_score": list(rng.random(per_shard))} if s == 3 else {})}))
    return paths


@pytest.mark.parametrize("engine", ["threads", "processes"])
def test_the_beam_scan_and_subsets_write_the_local_bytes_with_duplicates_across_shards(tmp_path, engine):
    shards = many_shards(tmp_path)
    local = scan_shards(shards, languages=LANGUAGES, progress=False)
    assert local.report["rejected"]["duplicate_uid"] > 20  # the duplicate rule is exercised across shards
    on_beam = beam_sample.scan_shards(shards, languages=LANGUAGES, out_dir=tmp_path / "beam",
                                      beam_params=ENGINES[engine])
    assert on_beam.report == local.report
    pd.testing.assert_frame_equal(on_beam.records, local.records)

    fractions = {"1pct": 0.01, "10pct": 0.1, "50pct": 0.5, "100pct": 1.0}
    subsets = sampling.real_subsets(local.records, key=7)
    mixes = sampling.mixtures(subsets, list(fractions.values()), {}, key=7)
    sampling.write_subsets(tmp_path / "local", subsets, list(fractions.values()), mixes, 10**6, {},
                           records=local.records)
    files = sorted((tmp_path / "beam/records").glob("shard_*.parquet"))
    got = beam_sample.subset_uid_lists(files, fractions, 7, tmp_path / "beam", ENGINES[engine], 10**6)
    assert got["sizes"] == {n: int(c) for n, c in zip(subsets.names, subsets.sizes)}
    for label in fractions:
        assert got["files"][label] == f"uids_{label}.parquet"
        assert sha(tmp_path / "beam" / got["files"][label]) == sha(tmp_path / "local" / f"uids_{label}.parquet"), label
    assert len(pd.read_parquet(tmp_path / "beam/uids_1pct.parquet")) == 0  # floor(1% of each stratum) = 0


def test_subsets_cross_a_hash_bucket_boundary_exactly(tmp_path):
    """Strata of 200k records: the 10% and 50% boundaries fall inside a hash bucket, so the exact sort of the
    boundary bucket decides; a list longer than write_ids_max is not written."""
    n = 200_000
    rng = np.random.default_rng(1)
    records = pd.DataFrame({"uid": [f"r{i}" for i in range(n)], "language": rng.choice(["en", "sw", "de"], n),
                            "caption": "c", "shard": "s.tar", "member": [f"{i}.jpg" for i in range(n)]})
    for i, rows in enumerate(np.array_split(np.arange(n), 3)):
        records.iloc[rows].to_parquet(tmp_path / f"shard_{i:06d}.parquet", index=False)
    fractions = {"10pct": 0.1, "50pct": 0.5, "100pct": 1.0}
    got = beam_sample.subset_uid_lists(sorted(tmp_path.glob("shard_*.parquet")), fractions, 3, tmp_path,
                                       ENGINES["threads"], 150_000)
    subsets = sampling.real_subsets(records, key=3)
    assert got["files"]["100pct"] is None
    for label in ("10pct", "50pct"):
        want = records.iloc[subsets.ids(fractions[label])]["uid"].sort_values().tolist()
        assert pd.read_parquet(tmp_path / got["files"][label])["uid"].tolist() == want


# ------------------------------------------------------------------------------------------ the filter stage

@pytest.mark.parametrize("engine", ["processes"])
def test_the_filter_stage_on_beam_writes_the_local_scores_arms_and_account(filter_workdir, engine, monkeypatch):
    """The smoke filter stage with engine: beam (two worker processes) beside its local run: every file the arms
    and the account are made of has the local bytes; the models are loaded once per worker, not per shard."""
    import yaml

    from vlscale.config import validate
    from vlscale.filtering.stage import run_filter

    monkeypatch.chdir(filter_workdir)
    p = validate(yaml.safe_load((filter_workdir / "params.yaml").read_text()))
    p = p.replace(engine="beam", beam=ENGINES[engine], filter=p.filter.model_copy(update={"shard_size": 4096}))
    logged = []
    manifest = run_filter(p, "data/filter_beam", progress=False, log=logged.append)
    local = json.loads((filter_workdir / "data/filter/manifest.json").read_text())
    assert manifest["engine"] == "beam" and manifest["k"] == local["k"]
    for arm in local["arms"]:
        assert manifest["arms"][arm]["sha256"] == local["arms"][arm]["sha256"], arm
        assert sha(filter_workdir / "data/filter_beam" / f"{arm}.npy") == sha(filter_workdir / "data/filter" / f"{arm}.npy")
    assert sha(filter_workdir / "data/filter_beam/account.parquet") == sha(filter_workdir / "data/filter/account.parquet")
    # the scores, shard by shard (cut at another size here: the arms do not depend on it)
    scores = {d: pd.concat(pd.read_parquet(f) for f in sorted((filter_workdir / d / "scores").glob("*.parquet")))
              .sort_values("id").reset_index(drop=True) for d in ("data/filter", "data/filter_beam")}
    pd.testing.assert_frame_equal(scores["data/filter"], scores["data/filter_beam"])
    counters = manifest["beam"]["counters"]
    assert counters["shards_scored"] == manifest["shards"] > 2
    assert 1 <= counters["model_loads"] <= ENGINES[engine].options["direct_num_workers"] < manifest["shards"]
    assert any("model loads" in m for m in logged)


def test_the_clip_multilingual_and_planted_arms_on_beam_write_the_local_bytes(filter_workdir, tmp_path, monkeypatch):
    """The clip (English captions), clip_multilingual, english, planted and random arms, the scorer the smoke run's
    checkpoint (nothing trained), and the custom (a planted plug-in, imported in each worker) and balanced arms, on
    either engine: the same arms, account and scores."""
    import shutil

    import yaml

    from test_filtering import PLUGIN
    from vlscale.config import CustomParams, validate
    from vlscale.filtering.stage import run_filter

    p = validate(yaml.safe_load((filter_workdir / "params.yaml").read_text()))
    models = json.loads((filter_workdir / "data/filter/manifest.json").read_text())["models"]
    ckpt = filter_workdir / models["scorer"]["checkpoint"]
    for d in ("data/sample", "data/tokenizer"):
        shutil.copytree(filter_workdir / d, tmp_path / d)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "planted_filters.py").write_text(PLUGIN)
    arms = ["clip", "clip_multilingual", "english", "planted", "custom", "balanced", "random"]
    scorer = p.filter.scorer.model_copy(update={"checkpoint": str(ckpt)})
    custom = CustomParams(name="planted_filters:by_id", kwargs={"salt": 3})
    p = p.replace(beam=ENGINES["processes"], filter=p.filter.model_copy(update={"arms": arms, "scorer": scorer,
                                                                                "custom": custom}))
    local = run_filter(p, "data/filter", progress=False, log=lambda m: None)
    on_beam = run_filter(p.replace(engine="beam", filter=p.filter.model_copy(update={"shard_size": 4096})),
                         "data/filter_beam", progress=False, log=lambda m: None)
    assert list(on_beam["arms"]) == arms and on_beam["k"] == local["k"]
    for arm in arms:
        assert sha(f"data/filter_beam/{arm}.npy") == sha(f"data/filter/{arm}.npy"), arm
    assert sha("data/filter_beam/account.parquet") == sha("data/filter/account.parquet")
    for name in ("english_caption_share", "culture_or_landmark_share", "balanced", "custom"):
        assert on_beam[name] == local[name], name
    assert local["culture_or_landmark_share"]["planted"] == 0 and local["english_caption_share"]["clip"] == 1
    scores = {d: pd.concat(pd.read_parquet(f) for f in sorted(Path(d, "scores").glob("*.parquet")))
              .sort_values("id").reset_index(drop=True) for d in ("data/filter", "data/filter_beam")}
    pd.testing.assert_frame_equal(scores["data/filter"], scores["data/filter_beam"])


# ------------------------------------------------------------------------------------------ the sample stage

def run_sample_stage(folder, shards, engine: str):
    """The sample stage's notebook (papermill, as `dvc repro` runs it) on real shards, in `folder`."""
    import shutil
    import subprocess
    import sys

    from conftest import ROOT, write_params
    from vlscale.config import read_params

    folder.mkdir()
    shutil.copytree(ROOT / "notebooks", folder / "notebooks")
    shutil.copy(ROOT / "dvc.yaml", folder)
    raw = read_params(ROOT / "params.yaml", "smoke")
    raw |= {"profile": "smoke", "engine": engine, "beam": ENGINES["processes"].model_dump()}
    raw["sample"] |= {"source": "webdataset", "shards": shards}
    raw["figures"]["source"] = "analog"  # a real pool's report needs a real set; this test runs the sample stage only
    write_params(raw, folder)
    r = subprocess.run([sys.executable, "-m", "vlscale.pipeline", "sample"], cwd=folder, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    return folder / "data/sample"


def test_the_sample_stage_on_beam_writes_the_local_scan_account_and_uid_lists(tmp_path):
    shards = many_shards(tmp_path)
    local = run_sample_stage(tmp_path / "local", shards, "local")
    on_beam = run_sample_stage(tmp_path / "beam", shards, "beam")
    assert json.loads((on_beam / "scan_report.json").read_text()) == json.loads((local / "scan_report.json").read_text())
    index = {d: json.loads((d / "subsets.json").read_text()) for d in (local, on_beam)}
    for label, entry in index[local]["subsets"].items():
        assert index[on_beam]["subsets"][label] == entry, label
        assert sha(on_beam / entry["ids_file"]) == sha(local / entry["ids_file"]), label
    assert index[on_beam]["provenance"]["params"]["engine"] == "beam"


def test_a_real_pool_is_filtered_on_beam_as_on_the_local_engine(filter_workdir, real_sample, tmp_path, monkeypatch):
    """A real pool's CLIP-score (English and multilingual), English and random arms (the smoke scorer as
    filter.scorer.checkpoint), with one record gone bad on disk: the same arms, account, scores and bad-record
    counts on either engine, and the same error when k is more than the English records."""
    import shutil

    import yaml

    from vlscale.config import validate
    from vlscale.filtering.stage import run_filter

    p = validate(yaml.safe_load((filter_workdir / "params.yaml").read_text()))
    ckpt = filter_workdir / json.loads((filter_workdir / "data/filter/manifest.json").read_text())["models"]["scorer"]["checkpoint"]
    shutil.copytree(real_sample, tmp_path / "data/sample")
    shutil.copytree(filter_workdir / "data/tokenizer", tmp_path / "data/tokenizer")
    records = pd.read_parquet(tmp_path / "data/sample/uids_100pct.parquet")
    shard = records["shard"].iloc[0]
    spoil_member(shard, "0007.png")  # one image goes bad after the scan
    monkeypatch.chdir(tmp_path)
    arms = ["clip", "clip_multilingual", "english", "random"]
    scorer = p.filter.scorer.model_copy(update={"checkpoint": str(ckpt)})
    real = p.replace(sample=p.sample.model_copy(update={"source": "webdataset"}), beam=ENGINES["processes"],
                     filter=p.filter.model_copy(update={"arms": arms, "keep_fraction": 0.25, "scorer": scorer}))
    local = run_filter(real, "data/filter", progress=False, log=lambda m: None)
    on_beam = run_filter(real.replace(engine="beam"), "data/filter_beam", progress=False, log=lambda m: None)
    assert on_beam["bad_records"] == local["bad_records"] == {"corrupt_image": 1}
    for arm in arms:
        assert on_beam["arms"][arm]["sha256"] == local["arms"][arm]["sha256"], arm
        assert sha(f"data/filter_beam/{arm}_uids.parquet") == sha(f"data/filter/{arm}_uids.parquet"), arm
    assert sha("data/filter_beam/account.parquet") == sha("data/filter/account.parquet")
    for f in sorted((tmp_path / "data/filter/scores").glob("*.parquet")):
        pd.testing.assert_frame_equal(pd.read_parquet(f), pd.read_parquet(tmp_path / "data/filter_beam/scores" / f.name))
    assert on_beam["beam"]["counters"]["model_loads"] >= 1
    too_many = real.replace(filter=real.filter.model_copy(update={"keep_fraction": 0.5}))  # k = 12, 8 English records
    for engine in ("local", "beam"):
        with pytest.raises(Exception, match="filter arm 'clip' keeps k = 12 pairs, but the pool has only 8 pairs "
                                            "with an English caption"):
            run_filter(too_many.replace(engine=engine), f"data/too_many_{engine}", progress=False, log=lambda m: None)
