"""The paper stage: the reproduction report of arXiv 2502.07617, typeset from the other stages' records.

`run(params)` writes paper/generated/ (what the text reads: build.write_generated), typesets paper/main.typ to
paper/main.pdf (typst, the package's fonts, a fixed timestamp) and writes metrics/paper.json: the PDF's pages,
images, figures, tables, bytes and sha256, each finding's verdict (`findings`) with its parts (`verdicts`), the
controls, the seconds spent generating and typesetting, and provenance. Returns the metrics.
"""
from __future__ import annotations

from pathlib import Path

from vlscale.config import validate
from vlscale.files import write_json
from vlscale.paper.build import build
from vlscale.provenance import provenance

METRICS_PATH = Path("metrics/paper.json")


def run(params: dict, timestamp: int = 0) -> dict:
    """The paper stage (module docstring). params: profile, verdicts (as params.yaml has them); `timestamp`: the
    PDF's date (Unix seconds)."""
    p = validate({k: params[k] for k in ("profile", "verdicts")})
    record = build(".", p.verdicts, timestamp)
    metrics = {**record, "provenance": provenance(p.profile, {"profile": params["profile"],
                                                              "verdicts": params["verdicts"]})}
    write_json(METRICS_PATH, metrics)
    return metrics
