"""The data stages on Apache Beam: the real-shard scan, the nested subsets of a real pool, and the filter
arms' scoring and exact top-k, as pipelines over shards (`engine: beam` in params.yaml).

Every pipeline is the local stage's per-shard function inside a `ParDo`, and a merge that does not depend on
how shards meet in bundles or workers, so the same shards give byte-identical files on either engine
(tests/test_beam.py). `pipeline(beam_params)` builds the runner: `in_process` (Beam's FnApiRunner, which
never downloads anything) by default, or any runner Beam names (DataflowRunner, FlinkRunner, SparkRunner,
PortableRunner) with its options. Needs the optional extra: pip install 'vlscale[beam]'.
"""
from vlscale.beam.runner import pipeline, pipeline_flags

__all__ = ["pipeline", "pipeline_flags"]
