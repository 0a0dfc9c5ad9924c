"""Beam pipelines from the `beam` block of params.yaml: the runner and its options."""
from __future__ import annotations

import importlib
import logging
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

from vlscale.config import BeamParams

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


def pipeline(beam_params: BeamParams, job: str = "vlscale"):
    """A `beam.Pipeline` for the `beam` block (its runner and options).

    runner "in_process" is Beam's FnApiRunner (with `direct_running_mode` and `direct_num_workers` among the
    options it runs bundles in threads or worker processes on this machine); any other name goes to Beam's
    --runner flag. Options Beam does not know raise ValueError naming them (Beam itself only warns).
    """
    beam = _require_beam()
    from apache_beam.options.pipeline_options import PipelineOptions

    runner = beam_params.runner
    flags = pipeline_flags(beam_params.options)
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


def outside_ipython(fn, **kwargs):
    """fn(**kwargs), here, or inside an IPython kernel (a stage notebook) in a fresh Python process.

    In a kernel Beam enters its interactive mode, which imports apache_beam.dataframe, and that does not import
    with pandas 3 (Beam 2.77 supports pandas < 3). The job's arguments and result travel as pickles; its log
    goes to this process's stderr; a failure raises RuntimeError with the job's last output.
    """
    try:
        from IPython import get_ipython
        in_kernel = get_ipython() is not None
    except ImportError:
        in_kernel = False
    if not in_kernel:
        return fn(**kwargs)
    with tempfile.TemporaryDirectory(prefix="vlscale-beam-") as tmp:
        job = Path(tmp) / "job.pkl"
        job.write_bytes(pickle.dumps((fn.__module__, fn.__qualname__, kwargs)))
        r = subprocess.run([sys.executable, "-m", "vlscale.beam.runner", str(job)], capture_output=True, text=True)
        sys.stderr.write(r.stderr[-20000:])
        if r.returncode:
            raise RuntimeError(f"the Beam job {fn.__module__}.{fn.__qualname__} failed (exit {r.returncode}):\n"
                               f"{r.stderr[-4000:]}")
        return pickle.loads((Path(tmp) / "result.pkl").read_bytes())


def _run_job(job: Path):
    module, name, kwargs = pickle.loads(job.read_bytes())
    result = getattr(importlib.import_module(module), name)(**kwargs)
    (job.parent / "result.pkl").write_bytes(pickle.dumps(result))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    _run_job(Path(sys.argv[1]))
