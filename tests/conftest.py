"""Shared fixtures: the world of the committed params.yaml, a real shard pool, and the repository root."""
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from vlscale.config import load_params, overlay_path, read_params, validate
from vlscale.data import sampling
from vlscale.data.shards import scan_shards
from vlscale.data.tokenizer import balanced_caption_sample, train_tokenizer
from vlscale.provenance import provenance
from vlscale.world.spec import build_world

ROOT = Path(__file__).resolve().parents[1]

# `make test` runs the suite on two pytest-xdist workers, a module to a worker at a time (its module fixtures made
# once). The two `dvc repro` modules start first, one on each worker; modules that share a session fixture go to
# one worker together, so it is made once.
FIRST = ("test_pipeline.py", "test_real_pool.py")
SHARED_FIXTURE = {"test_beam.py": "filter_workdir", "test_filtering.py": "filter_workdir",
                  "test_trainer.py": "train_workdir", "test_multihost.py": "train_workdir"}


def pytest_collection_modifyitems(items):
    """The modules of FIRST before the others (in their order); the rest as collected."""
    def rank(item):
        name = item.path.name
        return FIRST.index(name) if name in FIRST else len(FIRST)
    items.sort(key=rank)  # stable: each module's tests keep their order


def pytest_xdist_make_scheduler(config, log):
    """xdist's module-at-a-time scheduler, with SHARED_FIXTURE's modules one unit, in collection order."""
    from xdist.scheduler import LoadScopeScheduling

    class SharedFixtureScopes(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            module = nodeid.split("::", 1)[0]
            return SHARED_FIXTURE.get(Path(module).name, module)

    config.option.loadscopereorder = False  # keep FIRST first
    return SharedFixtureScopes(config, log)


def write_params(params: dict, dst: str | Path) -> Path:
    """Write resolved `params` (read_params' values, with their `profile`) as dst/params.yaml, a params file of its
    own: dst/profiles/<profile>.yaml is written empty. For a scratch folder that runs one profile; returns the file."""
    path = Path(dst) / "params.yaml"
    over = overlay_path(path, params["profile"])
    over.parent.mkdir(parents=True, exist_ok=True)
    over.write_text("{}\n")
    path.write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True))
    return path


@pytest.fixture(scope="session")
def params():
    return load_params(ROOT / "params.yaml")


@pytest.fixture(scope="session")
def world(params):
    return build_world(params.world)


def _png(seed, size):
    buffer = io.BytesIO()
    pixels = np.random.default_rng(seed).integers(0, 255, (*size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def real_sample(world, tmp_path):
    """A webdataset shard of 24 examples (three languages, images of three shapes) through the sample stage."""
    with tarfile.open(tmp_path / "a.tar", "w") as tar:
        for i in range(24):
            language = ("en", "de", "sw")[i % 3]
            members = {"png": _png(i, [(20, 30), (30, 20), (16, 16)][i % 3]),
                       "txt": f"caption {i} {language}".encode(),
                       "json": json.dumps({"uid": f"u{i}", "language": language}).encode()}
            for ext, data in members.items():
                info = tarfile.TarInfo(f"{i:04d}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    records = scan_shards([str(tmp_path / "a.tar")], languages=world.strata, progress=False).records
    subsets = sampling.real_subsets(records, key=0)
    mixes = sampling.mixtures(subsets, [1.0], {}, key=0)
    sampling.write_subsets(tmp_path / "sample", subsets, [1.0], mixes, 10**6, {"source": "webdataset"},
                           records=records)
    return tmp_path / "sample"


# --- builders of the real evaluation sets' files (official formats, real image bytes) --------------


def write_image(path, seed=0, fmt="JPEG", colour=None):
    """Write a real 12x16 image to `path`: distinct random pixels per seed, or one uniform RGB `colour`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if colour is None:
        pixels = np.random.default_rng(seed).integers(0, 256, size=(12, 16, 3), dtype=np.uint8)
    else:
        pixels = np.full((12, 16, 3), colour, dtype=np.uint8)
    Image.fromarray(pixels).save(path, format=fmt)


def write_csv(path, header, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(header)] + [",".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")


def write_coco(root, with_image_2=True):
    """COCO: three val2014 images with five official captions each ("image <id> caption <k>"); the
    Karpathy split puts ids 1 and 2 in test, 3 in val."""
    images = [(1, "COCO_val2014_000000000001.jpg"), (2, "COCO_val2014_000000000002.jpg"), (3, "COCO_val2014_000000000003.jpg")]
    for n, (_, name) in enumerate(images):
        if with_image_2 or n != 1:
            write_image(root / "val2014" / name, n)
    official = {
        "images": [{"id": i, "file_name": name} for i, name in images],
        "annotations": [
            {"id": 10 * i + k, "image_id": i, "caption": f"  image {i} caption {k} "} for i, _ in images for k in range(5)
        ],
    }
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "captions_val2014.json").write_text(json.dumps(official))
    splits = ["test", "test", "val"]
    karpathy = {
        "dataset": "coco",
        "images": [
            {"filepath": "val2014", "filename": name, "cocoid": i, "split": split, "sentences": [{"raw": "unused"}]}
            for (i, name), split in zip(images, splits)
        ],
    }
    (root / "dataset_coco.json").write_text(json.dumps(karpathy))


def write_xm3600(root, lines):
    """Crossmodal-3600's captions.jsonl from `lines` (dicts, or raw text for malformed lines)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "captions.jsonl").write_text("\n".join(json.dumps(x) if isinstance(x, dict) else x for x in lines) + "\n")


# --- the filter stage on the smoke profile (tests/test_filtering.py, tests/test_beam.py) ------------


def write_sample_and_tokenizer(p, path: Path) -> None:
    """The sample and tokenizer stages' outputs of synthetic params `p` (the smoke profile) under `path`."""
    world = build_world(p.world)
    subsets = sampling.synthetic_subsets(world, p.sample.pool_size, p.sample.key)
    with pytest.warns(UserWarning, match="no examples"):  # the smoke 1% subset lacks some languages
        mixes = sampling.mixtures(subsets, p.sample.fractions, p.sample.rebalance_targets, p.sample.key)
    sampling.write_subsets(path / "data/sample", subsets, p.sample.fractions, mixes, p.sample.write_ids_max,
                           meta={"source": "synthetic", "world_fingerprint": world.fingerprint(),
                                 "provenance": provenance("smoke", p.dump())})
    captions = balanced_caption_sample(world, subsets, 1.0, p.tokenizer.per_language, p.tokenizer.key)
    train_tokenizer(captions, p.tokenizer.vocab_size, path / "data/tokenizer/spm.model",
                    per_language=p.tokenizer.per_language)


@pytest.fixture(scope="session")
def filter_workdir(tmp_path_factory):
    """A folder with params.yaml (smoke profile) and the sample and tokenizer stages' outputs; the filter stage
    run in two processes, into data/filter and data/filter_again."""
    path = tmp_path_factory.mktemp("filter")
    raw = read_params(ROOT / "params.yaml", "smoke")
    write_params(raw, path)
    (path / "dvc.yaml").write_text("stages: {}\n")
    write_sample_and_tokenizer(validate(raw), path)
    code = ("import sys; from vlscale.config import load_params; from vlscale.filtering.stage import "
            "run_filter; run_filter(load_params('params.yaml'), sys.argv[1], progress=False)")
    procs = [subprocess.Popen([sys.executable, "-c", code, out], cwd=path, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for out in ("data/filter", "data/filter_again")]
    for proc in procs:  # two processes at once: the same key must give the same arms in each
        _, err = proc.communicate()
        assert proc.returncode == 0, err[-3000:]
    return path


# --- training on the smoke profile (tests/test_trainer.py, tests/test_multihost.py) ----------------


@pytest.fixture(scope="session")
def train_workdir(tmp_path_factory):
    """A folder with params.yaml (smoke profile) and the sample and tokenizer stages' outputs."""
    path = tmp_path_factory.mktemp("train")
    raw = read_params(ROOT / "params.yaml", "smoke")
    write_params(raw, path)
    write_sample_and_tokenizer(validate(raw), path)
    return path


def repo_copy(dst: Path, edit=None) -> dict:
    """A git repository at `dst` holding this checkout's files (tracked and untracked, not ignored; no dvc.lock), with
    params.yaml passed through `edit(params) -> None` first; returns the environment to run dvc in."""
    import os

    from vlscale.pipeline import copy_checkout

    copy_checkout(ROOT, dst)
    params = yaml.safe_load((dst / "params.yaml").read_text())
    if edit is not None:
        edit(params)
    (dst / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "copy"]):
        subprocess.run(cmd, cwd=dst, env=env, capture_output=True, check=True)
    return env


def spoil_member(shard, name: str, data: bytes = b"not a png"):
    """Rewrite tar `shard` with member `name`'s bytes replaced (an image gone bad on disk after the scan)."""
    with tarfile.open(shard) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    with tarfile.open(shard, "w") as tar:
        for m, content in members:
            content = data if m.name == name else content
            m.size = len(content)
            tar.addfile(m, io.BytesIO(content))


def graded_transfer_rows(run, setting, pct, seed, quality, images=40, rng=None):
    """Graded rows of a planted transfer: each question right with probability `quality`, each caption's CIDEr
    `quality` x 100."""
    from vlscale.transfer import tasks

    rng = rng or np.random.default_rng(seed)
    rows = []
    for task in tasks.TASKS:
        for image in range(images):
            caption = task in tasks.CAPTION_TASKS
            rows.append({"run": run, "setting": setting, "curation": "natural", "seed": seed, "data_pct": pct,
                         "model": "w64d1p8", "examples_seen": 1000, "task": task, "image": image, "language": "en",
                         "exact_match": float(rng.uniform() < quality),
                         "cider": 100 * quality + rng.normal(0, 5) if caption else np.nan})
    return rows
