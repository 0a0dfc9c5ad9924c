"""What a run is, where its files live, and whether a stage's result for it is current.

A run is an entry of params.yaml `runs`; every stage that handles runs (train, evaluate, attention) asks this
package about it:
- settings.py: the run resolved from validated params (`resolve`): the train block as it trains (its seed, peak
  learning rate, budget and cool-downs), its model and the model's short name, its curation and seed. It imports
  nothing else of vlscale, so that vlscale.config validates runs with it and the stages before training do not
  depend on the rest of this package.
- data.py: where its data comes from (a subset of the sample stage, natural or rebalanced, or a filter arm): the
  record of it the training fingerprint hashes, and the share of the pool it trains on.
- layout.py: its directory (`RunDir`), runs/<name>/:
      checkpoints/<step>/               the main run, resumable at <step>
      cooldown/seen_<examples>/<step>/  a cooled-down model for evaluation (cooldown_label, examples_of_label)
      log.jsonl, train.json             the training log; the finished run's metrics
      fingerprint.json                  the fingerprint the directory's training was made with
- current.py: whether a stage's result for it (its training, its evaluation) is current, by one rule:

      A result is current when the fingerprint saved beside it equals the hash of the resolved settings that
      shape it, the fingerprints of the inputs it reads, and its stage's code version.

  A stage's code version (current.CODE_VERSIONS) is raised by whoever changes what the stage computes. The train
  and evaluate stages refuse to start (current.check_code_version) when the code they import (the import closure of
  current.STAGE_ROOTS, with its data files) differs from the digest recorded beside the version:
  `python -m vlscale.runs --digests` prints the digests to record.
"""
