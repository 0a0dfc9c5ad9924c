"""Quality filtering of the pool (arXiv 2502.07617 §5.1): the filter stage's arms and the account of what each removed.

Every arm keeps the same number k of pool pairs (k: the size of the pool's random subset of
filter.keep_fraction, so the random arm is that subset exactly):
- clip: among the pairs whose caption is English, the k a scorer SigLIP finds most similar (image-text
  cosine), the scorer trained on a curated English source, as the CLIP models used for filtering were (or
  any checkpoint given): the paper's CLIP filter;
- clip_multilingual: the k pairs of the whole multilingual pool the same scorer finds most similar;
- classifier: the k pairs an aligned/misaligned classifier rates likeliest aligned: a SigLIP trained on
  web pairs in every language, with a logistic head fitted to pairs labelled as raters would label them;
- english: k pairs with an English caption at random, unfiltered (the paper's Baseline (en));
- planted: k pairs at random whose concept is bound to no place (not culture-specific, no regional variants, not a landmark): a positive control
  of known direction (synthetic pools only);
- random: k pairs of the pool at random (the control that separates size from selection).

Scoring and selection are per-shard maps (`select`, `score`, `arms`) whose result does not depend on how
the pool is split into shards; `shards` is the work on one shard and the local engine that maps it over the
pool (vlscale.beam.filter maps the same work on Beam); `account` says exactly what each arm removed, by every
attribute the world knows. `stage.run(params)` is the stage.
"""
