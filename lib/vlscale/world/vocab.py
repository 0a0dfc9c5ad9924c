"""The real words and facts the world is made of, read from the compact files in world/data.

Those files are built from the developers' real data kit by tools/rebuild_world_data.py
(provenance and licences in world/data/NOTICE.md); nothing here reads outside the package.
"""
import json
from functools import cache
from importlib import resources


@cache
def load(name: str) -> dict:
    """One of the data files: languages, countries, concepts, dollar_street, geode, filler."""
    path = resources.files("vlscale.world") / "data" / f"{name}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"world data file {path} is missing; rebuild it with "
                                f"`python tools/rebuild_world_data.py`") from None
