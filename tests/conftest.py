"""Shared fixtures: the world of the committed params.yaml, and the repository root."""
from pathlib import Path

import pytest

from vlscale.config import load_params, validate
from vlscale.world.spec import build_world

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def params():
    return validate(load_params(ROOT / "params.yaml"))


@pytest.fixture(scope="session")
def world(params):
    return build_world(params["world"])
