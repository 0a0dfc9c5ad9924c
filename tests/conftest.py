"""Shared fixtures: the world of the committed params.yaml, a real shard pool, and the repository root."""
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vlscale.config import load_params, validate
from vlscale.data import sampling
from vlscale.data.shards import scan_shards
from vlscale.world.spec import build_world

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def params():
    return validate(load_params(ROOT / "params.yaml"))


@pytest.fixture(scope="session")
def world(params):
    return build_world(params["world"])


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
