"""Beam pipelines from the `beam` block of params.yaml: the runner and its options."""
from __future__ import annotations

import logging

IN_PROCESS = "in_process"


def _require_beam():
    try:
        import apache_beam as beam
    except ImportError as e:  # the optional extra is not installed
        raise ImportError("engine: beam needs Apache Beam: pip install 'vlscale[beam]' (or uv sync --extra beam)") from e
    return beam


def pipeline_flags(options: dict) -> list[str]:
    """Beam command-line flags of an options mapping: {"direct_num_workers": 2, "save_main_session": True,
    "experiments": ["a", "b"]} -> ["--direct_num_workers=2", "--save_main_session", "--experiments=a",
    "--experiments=b"]. False and None drop the flag."""
    flags = []
    for name, value in options.items():
        if not isinstance(name, str) or not name or name.startswith("-"):
            raise ValueError(f"beam.options: {name!r}: give an option's name without dashes (direct_num_workers)")
        if value is True:
            flags.append(f"--{name}")
        elif value is False or value is None:
            continue
        elif isinstance(value, (list, tuple)):
            flags += [f"--{name}={v}" for v in value]
        else:
            flags.append(f"--{name}={value}")
    return flags


def pipeline(beam_params: dict, job: str = "vlscale"):
    """A `beam.Pipeline` for the resolved `beam` block ({"runner": ..., "options": {...}}).

    runner "in_process" is Beam's FnApiRunner (with `direct_running_mode` and `direct_num_workers` among the
    options it runs bundles in threads or worker processes on this machine); any other name goes to Beam's
    --runner flag. Options Beam does not know raise ValueError naming them (Beam itself only warns).
    """
    beam = _require_beam()
    from apache_beam.options.pipeline_options import PipelineOptions

    runner = beam_params.get("runner", IN_PROCESS)
    flags = pipeline_flags(dict(beam_params.get("options") or {}))
    options = PipelineOptions(flags + [f"--job_name={job}"])
    known = {a.split("=", 1)[0] for a in options.get_all_options(retain_unknown_options=False, drop_default=False)}
    unknown = [f for f in flags if f.split("=", 1)[0].lstrip("-") not in known]
    if unknown:
        raise ValueError(f"params.yaml: beam.options: Beam does not know {', '.join(unknown)}")
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    if runner == IN_PROCESS:
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner
        return beam.Pipeline(runner=FnApiRunner(), options=options)
    return beam.Pipeline(runner=runner, options=options)
