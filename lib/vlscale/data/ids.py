"""Global example ids: which stratum an example belongs to and its index inside that stratum.

A synthetic pool is a set of strata (one per page language). The global id of the k-th example of
stratum s is ``s << LOCAL_BITS | k``, so an example's id does not depend on the pool's size: the pool
of 10^6 examples is a prefix of every stratum of the pool of 10^11 examples, and ids are stable
across machines and scales. Held-out benchmark ids set HELDOUT_BIT and are disjoint from every pool.
"""
import numpy as np

LOCAL_BITS = 40  # 1.1e12 examples per stratum: English at a 10^11 pool needs 3.6e10
STRATUM_BITS = 12
HELDOUT_BIT = 62  # ids of benchmark analogs; never produced by a training pool
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
