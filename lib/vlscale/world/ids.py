"""Global example ids: which stratum an example belongs to and its index inside that stratum.

A synthetic pool is a set of strata (one per page language). The global id of the k-th example of
stratum s is ``s << LOCAL_BITS | k``, so an example's id does not depend on the pool's size: the pool
of 10^6 examples is a prefix of every stratum of the pool of 10^11 examples, and ids are stable
across machines and scales. A pool's strata are below 2^STRATUM_BITS, so every pool id of any size
is below 2^52; ids with a higher bit set are in no pool. Two such ranges are reserved, one bit each,
OR-ed into the stratum (which keeps the page language in its low STRATUM_BITS, so an id's example is
drawn as that language's pages are):
- HELDOUT_BIT: held-out benchmark analogs (evals/analogs.py);
- TOKENIZER_BIT: the tokenizer's caption sample (data/tokenizer.py), so that the tokenizer learns from
  pages of the same web that no model trains on and no benchmark tests on, as mT5's tokenizer,
  trained on mC4, was for the paper;
- SCORER_BIT: the curated English source the CLIP-score filter's scorer is trained on (filtering/);
- CLASSIFIER_BIT: the web pairs the classifier filter's model learns from, and the pairs raters label.
"""
import numpy as np

LOCAL_BITS = 40  # 1.1e12 examples per stratum: English at a 10^11 pool needs 3.6e10
STRATUM_BITS = 12
HELDOUT_BIT = 62  # ids of benchmark analogs; never produced by a training pool
TOKENIZER_BIT = 61  # ids of the tokenizer's caption sample; in no pool and (bit 62 clear) no benchmark
SCORER_BIT = 60  # ids of the CLIP-score filter's training source; in no pool, benchmark or tokenizer sample
CLASSIFIER_BIT = 59  # ids of the classifier filter's training pairs and labelled sample; likewise
RESERVED_BITS = (HELDOUT_BIT, TOKENIZER_BIT, SCORER_BIT, CLASSIFIER_BIT)
LOCAL_MASK = (1 << LOCAL_BITS) - 1


def make_ids(stratum, local):
    """Global ids (int64) of `local` indices inside `stratum` (broadcasting)."""
    stratum = np.asarray(stratum, dtype=np.int64)
    local = np.asarray(local, dtype=np.int64)
    if np.any(local < 0) or np.any(local > LOCAL_MASK):
        raise ValueError(f"local index out of range [0, 2^{LOCAL_BITS}): {local.min()}..{local.max()}")
    return (stratum << LOCAL_BITS) | local


def split_ids(ids):
    """(stratum, local) int64 arrays of global ids; the held-out bit is kept in the stratum."""
    ids = np.asarray(ids, dtype=np.int64)
    return ids >> LOCAL_BITS, ids & LOCAL_MASK
