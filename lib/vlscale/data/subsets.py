"""Nested random subsets of a stratified pool: the paper's 1B ⊂ 10B ⊂ 100B data scales.

Every stratum (one per language) is put in a keyed random order and a subset of fraction f takes
the first floor(f * N_s) examples of each stratum. A smaller fraction's subset is therefore a prefix
of every larger one: nesting is exact, per stratum, for every pair of fractions, and the language mix
of every subset matches the pool's up to rounding.

Two kinds of pool, one semantics:
- synthetic pools (`NestedSubsets`): stratum s holds local indices 0..N_s-1 and its order is
  `KeyedPermutation(N_s, derive_key(key, s))`, a Feistel network with cycle walking, so membership
  of any global id is decided in O(1) without materialising anything;
- real pools (`UidSubsets`): records read from shards, each with a string uid and a stratum; the
  order is a keyed 64-bit BLAKE2b hash of the uid, ties broken by the uid itself.

The same key and fraction give the same subset on any machine and in any process.
"""
import hashlib
import numbers
import operator
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction

import numba
import numpy as np

from vlscale.world.ids import LOCAL_BITS, LOCAL_MASK, STRATUM_BITS, make_ids

ROUNDS = 4  # Luby-Rackoff: 4 rounds of a pseudo-random function give a strong pseudo-random permutation
MAX_N = 1 << LOCAL_BITS  # a stratum holds at most 2^40 examples (see ids.py)
MAX_STRATA = 1 << STRATUM_BITS

_U64 = (1 << 64) - 1
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)  # splitmix64 finaliser (Stafford's variant 13)
_MIX2 = np.uint64(0x94D049BB133111EB)
_LOCAL_MASK_U = np.uint64(LOCAL_MASK)


# ---------------------------------------------------------------------------------------------
# 64-bit mixing, keys and input checks


@numba.njit(cache=True)
def _mix64(z):
    """splitmix64's finaliser: a bijection of uint64 with full avalanche."""
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def as_key(value, what: str = "key") -> int:
    """A 64-bit key (or key part) as a Python int in [0, 2^64), or ValueError naming it."""
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{what} must be an integer in [0, 2^64), got {value!r}") from None
    if not 0 <= value <= _U64:
        raise ValueError(f"{what} must be an integer in [0, 2^64), got {value}")
    return value


def as_int64_array(values, what: str) -> np.ndarray:
    """`values` as a C-contiguous int64 array (same shape), or TypeError naming the dtype."""
    array = np.asarray(values)
    if array.dtype.kind not in "iu":
        if array.size == 0:
            return np.zeros(array.shape, np.int64)
        raise TypeError(f"{what} must be integers, got an array of dtype {array.dtype}")
    return np.asarray(array, dtype=np.int64, order="C")


def derive_key(key: int, *parts: int) -> int:
    """A 64-bit key derived from `key` and the integers `parts` (e.g. a stratum, a round, an epoch).

    Every key used in vlscale is derived this way from one seed, so that sub-keys of different
    purposes are independent: derive_key(k, 0) and derive_key(k, 1) share no structure.
    """
    h = int(_mix64(np.uint64(as_key(key, "key") ^ int(_GOLDEN))))
    for i, part in enumerate(parts):
        part = int(_mix64(np.uint64((as_key(part, f"key part {i}") + int(_GOLDEN)) & _U64)))
        h = int(_mix64(np.uint64(h ^ part)))
    return h


# ---------------------------------------------------------------------------------------------
# Feistel network on a power-of-two domain, with cycle walking onto [0, n)
#
# The domain has lo_bits + hi_bits bits. A round maps x = (hi, lo) to (lo, hi ^ F(lo)), the new low
# part being hi ^ F(lo) and F(lo) = mix64(round_key ^ lo). When the halves differ in width (odd bit
# count) the widths swap at every round; after an even number of rounds the layout is the original.


@numba.njit(cache=True)
def _round(x, wl, wh, round_key):
    """One Feistel round on a value whose low part has wl bits and high part wh bits."""
    lo = x & ((np.uint64(1) << wl) - np.uint64(1))
    f = _mix64(round_key ^ lo) & ((np.uint64(1) << wh) - np.uint64(1))
    return (lo << wh) | ((x >> wl) ^ f)


@numba.njit(cache=True)
def _round_inverse(y, wl, wh, round_key):
    """Inverse of `_round(x, wl, wh, round_key)`."""
    lo = y >> wh
    f = _mix64(round_key ^ lo) & ((np.uint64(1) << wh) - np.uint64(1))
    return (((y & ((np.uint64(1) << wh) - np.uint64(1))) ^ f) << wl) | lo


@numba.njit(cache=True)
def _feistel(x, lo_bits, hi_bits, k0, k1, k2, k3):
    """The ROUNDS = 4 rounds; keys as scalars so that a loop over columns of them vectorises."""
    x = _round(x, lo_bits, hi_bits, k0)
    x = _round(x, hi_bits, lo_bits, k1)
    x = _round(x, lo_bits, hi_bits, k2)
    return _round(x, hi_bits, lo_bits, k3)


@numba.njit(cache=True)
def _feistel_inverse(y, lo_bits, hi_bits, k0, k1, k2, k3):
    """Inverse of `_feistel`: the rounds undone in reverse order."""
    y = _round_inverse(y, hi_bits, lo_bits, k3)
    y = _round_inverse(y, lo_bits, hi_bits, k2)
    y = _round_inverse(y, hi_bits, lo_bits, k1)
    return _round_inverse(y, lo_bits, hi_bits, k0)


@numba.njit(cache=True)
def _permute(values, n, lo_bits, hi_bits, round_keys, inverse, out):
    """out[i] = P(values[i]) (or P^-1); returns the index of the first value outside [0, n), or -1.

    n is a uint64 (so that every comparison stays in unsigned integers).
    """
    k0, k1, k2, k3 = round_keys[0], round_keys[1], round_keys[2], round_keys[3]
    for i in range(values.size):
        v = values[i]
        if v < 0 or np.uint64(v) >= n:
            return i
        x = np.uint64(v)
        while True:  # cycle walking: the first image inside [0, n)
            if inverse:
                x = _feistel_inverse(x, lo_bits, hi_bits, k0, k1, k2, k3)
            else:
                x = _feistel(x, lo_bits, hi_bits, k0, k1, k2, k3)
            if x < n:
                break
        out[i] = np.int64(x)
    return -1


_BLOCK = 512  # ids per block of the membership kernel; its columns stay in L1 cache
_N, _K, _LO, _HI, _KEY = 0, 1, 2, 3, 4  # columns of a membership table; round keys in 4..7


@numba.njit(cache=True)
def _contains(ids, table, out):
    """out[i] = (rank of ids[i] inside its stratum) < k of that stratum.

    table: (S + 1, 8) uint64, row s = (n, k, lo_bits, hi_bits, 4 round keys) of stratum s; row S
    is an empty stratum (n = 0) that stands for every id outside the pool.

    Why blocks: the 4 rounds vectorise (AVX-512 has 64-bit multiplies) only over contiguous
    columns; LLVM will not gather from `table` itself, as it cannot prove that `out` does not
    alias it. So a scalar pass copies each id's stratum row into columns, the rounds run over the
    columns, and the ids whose image falls outside [0, n) are compacted to the front (without
    branches) to walk again. This is 3x faster than a scalar loop with a data-dependent `while`.
    """
    outside = table.shape[0] - 1
    x = np.empty(_BLOCK, np.uint64)
    position = np.empty(_BLOCK, np.int64)
    cols = np.empty((8, _BLOCK), np.uint64)
    for start in range(0, ids.size, _BLOCK):
        m = min(_BLOCK, ids.size - start)
        for j in range(m):
            v = ids[start + j]
            s = v >> LOCAL_BITS
            if s < 0 or s >= outside:
                s = outside
            local = np.uint64(v) & _LOCAL_MASK_U
            if local >= table[s, _N]:
                s = outside
            x[j] = local
            position[j] = start + j
            for c in range(8):
                cols[c, j] = table[s, c]
        pending = m
        while pending > 0:
            for q in range(pending):
                x[q] = _feistel(x[q], cols[_LO, q], cols[_HI, q], cols[_KEY, q], cols[_KEY + 1, q],
                                cols[_KEY + 2, q], cols[_KEY + 3, q])
            walking = 0
            for q in range(pending):
                inside = x[q] < cols[_N, q]
                out[position[q]] = inside & (x[q] < cols[_K, q])
                # Keep walking (cycle walking) if outside [0, n); written always, counted if so.
                x[walking] = x[q]
                position[walking] = position[q]
                for c in range(8):
                    cols[c, walking] = cols[c, q]
                walking += (not inside) & (cols[_N, q] > 0)
            pending = walking


class KeyedPermutation:
    """A keyed pseudo-random bijection of [0, n), for 1 <= n <= 2^40.

    A 4-round Feistel network (round function splitmix64's finaliser of round key ^ half) on the
    smallest power-of-two domain >= n, restricted to [0, n) by cycle walking. `forward` maps an
    index to its rank in the keyed order, `inverse` maps a rank back to the index. Indexing the
    permutation (`perm[j]`) is `forward(j)`, so it can stand for a shuffled order of length n.
    """

    def __init__(self, n: int, key: int):
        n = operator.index(n)
        if not 1 <= n <= MAX_N:
            raise ValueError(f"KeyedPermutation needs 1 <= n <= 2^{LOCAL_BITS}, got n={n}")
        self.n = n
        self.key = as_key(key, "key")
        bits = (n - 1).bit_length()
        self.lo_bits = np.uint64(bits - bits // 2)
        self.hi_bits = np.uint64(bits // 2)
        self.round_keys = np.array([derive_key(self.key, r) for r in range(ROUNDS)], np.uint64)

    def __repr__(self):
        return f"KeyedPermutation(n={self.n}, key={self.key:#x})"

    def __len__(self):
        return self.n

    def __getitem__(self, positions):
        return self.forward(positions)

    def __iter__(self):
        for start in range(0, self.n, 1 << 20):
            yield from self.forward(np.arange(start, min(start + (1 << 20), self.n))).tolist()

    def forward(self, local) -> np.ndarray:
        """Ranks (int64, same shape as `local`) of indices `local` in [0, n)."""
        return self._apply(local, inverse=False, what="index")

    def inverse(self, ranks) -> np.ndarray:
        """Indices (int64, same shape as `ranks`) holding ranks `ranks` in [0, n)."""
        return self._apply(ranks, inverse=True, what="rank")

    def _apply(self, values, inverse, what):
        array = as_int64_array(values, what)
        out = np.empty(array.shape, np.int64)
        bad = _permute(array.reshape(-1), np.uint64(self.n), self.lo_bits, self.hi_bits, self.round_keys,
                       inverse, out.reshape(-1))
        if bad >= 0:
            value = np.asarray(values).reshape(-1)[bad]
            raise ValueError(f"{what} {value} is outside [0, {self.n}) of {self!r}")
        return out[()] if out.ndim == 0 else out


# ---------------------------------------------------------------------------------------------
# Fractions and per-stratum counts


def exact_fraction(value, what: str = "value") -> Fraction:
    """`value` as an exact Fraction; a float is read as its shortest decimal (0.1 is 1/10, 0.29 is 29/100).

    Config values are decimals written by people, so floor(0.29 * 100) must be 29, not 28.
    """
    if isinstance(value, (Fraction, numbers.Integral, Decimal)) and not isinstance(value, bool):
        return Fraction(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value):
        return Fraction(repr(float(value)))
    raise ValueError(f"{what} must be a finite number, got {value!r}")


def as_fraction(fraction) -> Fraction:
    """A subset fraction as an exact Fraction in (0, 1] (see `exact_fraction`), or ValueError naming it."""
    exact = exact_fraction(fraction, "fraction")
    if not 0 < exact <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    return exact


def subset_counts(sizes: np.ndarray, fraction) -> np.ndarray:
    """floor(fraction * sizes), exactly (int64 array, shape of `sizes`)."""
    exact = as_fraction(fraction)
    return np.array([int(size) * exact.numerator // exact.denominator for size in sizes], np.int64)


# ---------------------------------------------------------------------------------------------
# Synthetic pools: global ids, Feistel order per stratum


class NestedSubsets:
    """The nested subsets of a stratified pool with `sizes[s]` examples in stratum s.

    Stratum s is ordered by `KeyedPermutation(sizes[s], derive_key(key, s))`; the subset of fraction
    f is, in every stratum, the examples of rank < floor(f * sizes[s]). Ids are global ids
    (`vlscale.world.ids.make_ids`).
    """

    def __init__(self, sizes: Sequence[int] | np.ndarray, key: int, names: Sequence[str] | None = None):
        sizes = np.asarray(sizes)
        if sizes.ndim != 1 or (sizes.size and sizes.dtype.kind not in "iu"):
            raise ValueError(f"sizes must be a 1-D list of integers, got {sizes!r}")
        if sizes.size > MAX_STRATA:
            raise ValueError(f"at most {MAX_STRATA} strata fit in a global id, got {sizes.size}")
        for s, size in enumerate(sizes.tolist()):
            if not 0 <= size <= MAX_N:
                raise ValueError(f"sizes[{s}] = {size} is outside [0, 2^{LOCAL_BITS}]")
        names = [str(s) for s in range(sizes.size)] if names is None else list(names)
        if len(names) != sizes.size:
            raise ValueError(f"{len(names)} names for {sizes.size} strata: {names}")
        self.sizes = sizes.astype(np.int64)
        self.names = names
        self.key = as_key(key, "key")
        # None for an empty stratum: it has no order and no members.
        self.permutations = [KeyedPermutation(size, derive_key(self.key, s)) if size else None
                             for s, size in enumerate(self.sizes.tolist())]
        # The permutations' parameters as one table for the membership kernel (column _K is set
        # per fraction); the last row is the empty stratum of ids outside the pool.
        self._table = np.zeros((self.sizes.size + 1, 8), np.uint64)
        for s, p in enumerate(self.permutations):
            if p is not None:
                self._table[s, [_N, _LO, _HI]] = p.n, p.lo_bits, p.hi_bits
                self._table[s, _KEY:] = p.round_keys

    def __repr__(self):
        return f"NestedSubsets({self.sizes.size} strata, {int(self.sizes.sum())} examples, key={self.key:#x})"

    def counts(self, fraction) -> np.ndarray:
        """Examples per stratum in the subset: floor(fraction * sizes), exactly (int64, shape (S,))."""
        return subset_counts(self.sizes, fraction)

    def contains(self, ids, fraction) -> np.ndarray:
        """Whether each global id is in the subset (bool, shape of `ids`).

        Ids of unknown strata, of local index >= sizes[s], negative or held-out are not members.
        """
        table = self._table.copy()
        table[:-1, _K] = self.counts(fraction)
        ids = as_int64_array(ids, "ids")
        out = np.empty(ids.shape, np.bool_)
        _contains(ids.reshape(-1), table, out.reshape(-1))
        return out

    def member_ids(self, fraction, stratum: int) -> np.ndarray:
        """Global ids of the subset's members in `stratum`, in rank order (int64, shape (count,)).

        The j-th is make_ids(stratum, permutations[stratum].inverse(j)); a smaller fraction's list is a
        prefix of a larger one's.
        """
        stratum = operator.index(stratum)
        if not 0 <= stratum < self.sizes.size:
            raise ValueError(f"stratum {stratum} is outside [0, {self.sizes.size})")
        count = int(self.counts(fraction)[stratum])
        if count == 0:
            return np.zeros(0, np.int64)
        return make_ids(stratum, self.permutations[stratum].inverse(np.arange(count, dtype=np.int64)))

    def ids(self, fraction) -> np.ndarray:
        """Sorted global ids of the whole subset (int64, shape (counts(fraction).sum(),)).

        This is the DataComp contract: a subset is a sorted id list.
        """
        self.counts(fraction)  # validates the fraction even for a pool without strata
        # Ids sort by stratum first, so sorting within each stratum sorts the whole list.
        parts = [np.sort(self.member_ids(fraction, s)) for s in range(self.sizes.size)]
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)


# ---------------------------------------------------------------------------------------------
# Real pools: records with string uids, ordered by a keyed hash of the uid


def uid_hash(uid: str, key_bytes: bytes) -> bytes:
    """The keyed hash a real pool's stratum is ordered by: BLAKE2b of the uid, 8 bytes, keyed by `key_bytes` (the
    key's 8 little-endian bytes, `uid_key_bytes`). Its bytes order as the big-endian uint64 does."""
    return hashlib.blake2b(uid.encode(), digest_size=8, key=key_bytes).digest()


def uid_key_bytes(key: int, what: str = "key") -> bytes:
    """The 8 little-endian bytes of a key, as `uid_hash` is keyed."""
    return as_key(key, what).to_bytes(8, "little")


def _uid_order(uids: Sequence[str], strata: np.ndarray, key: int) -> np.ndarray:
    """Record indices sorted by (stratum, keyed hash of uid, uid); a uid twice in a stratum is an error."""
    key_bytes = uid_key_bytes(key)
    try:
        digests = b"".join(uid_hash(uid, key_bytes) for uid in uids)
    except AttributeError:
        bad = next(i for i, uid in enumerate(uids) if not isinstance(uid, str))
        raise TypeError(f"uid of record {bad} must be a str, got {uids[bad]!r}") from None
    hashes = np.frombuffer(digests, dtype=">u8").astype(np.uint64)
    order = np.lexsort((hashes, strata))
    # Equal (stratum, hash) pairs: order them by uid. Rare for distinct uids (2^-64 per pair).
    s, h = strata[order], hashes[order]
    tied = np.flatnonzero((s[1:] == s[:-1]) & (h[1:] == h[:-1]))
    for run in np.split(tied, np.flatnonzero(np.diff(tied) > 1) + 1) if tied.size else []:
        start, stop = run[0], run[-1] + 2
        block = sorted(order[start:stop].tolist(), key=lambda r: uids[r])
        for a, b in zip(block, block[1:]):
            if uids[a] == uids[b]:
                raise ValueError(f"duplicate uid {uids[a]!r} in stratum {strata[a]} (records {a} and {b})")
        order[start:stop] = block
    return order


def _check_strata(uids: Sequence[str], strata) -> np.ndarray:
    strata = np.asarray(strata)
    if strata.ndim != 1 or strata.shape[0] != len(uids):
        raise ValueError(f"strata must be 1-D with one entry per uid ({len(uids)}), got shape {strata.shape}")
    strata = as_int64_array(strata, "strata")
    if strata.size and strata.min() < 0:
        bad = int(np.argmin(strata))
        raise ValueError(f"stratum of record {bad} is {strata[bad]}; strata are >= 0")
    return strata


def uid_ranks(uids: Sequence[str], strata: np.ndarray, key: int) -> np.ndarray:
    """Each record's rank inside its stratum, ordered by a keyed hash of its uid (int64, shape (R,)).

    The hash is BLAKE2b with an 8-byte digest keyed by the 8 little-endian bytes of `key`; ties are
    broken by the uid. Ranks depend on the set of records, not on the order they are given in.
    uids: R strings, unique within a stratum; strata: R non-negative stratum indices.
    """
    strata = _check_strata(uids, strata)
    return _ranks(_uid_order(uids, strata, key), strata)


# A subset without sorting a stratum (the Beam back-end's way): a histogram of the hashes' top BUCKET_BITS bits
# gives each subset's boundary bucket; every record below it is a member, and only the boundary bucket's records
# (about N_s / 2^BUCKET_BITS) are sorted.
BUCKET_BITS = 16


def uid_bucket(h: bytes) -> int:
    """The bucket of a uid hash (`uid_hash`): its top BUCKET_BITS bits."""
    return int.from_bytes(h[:BUCKET_BITS // 8], "big")


def boundary_plan(histogram, size: int, fractions: dict) -> dict:
    """{label: (boundary bucket, members to take from it)} of a stratum of `size` records whose hashes fall in
    `histogram` ([(bucket, count)]): floor(f * size) members for each {label: fraction f}; every record of a
    lower bucket is a member. A subset that takes the whole stratum has boundary 2^BUCKET_BITS."""
    histogram = sorted(histogram)
    buckets = np.array([b for b, _ in histogram], np.int64)
    counts = np.array([n for _, n in histogram], np.int64)
    below = np.concatenate([[0], np.cumsum(counts)])
    plan = {}
    for label, f in fractions.items():
        want = int(subset_counts(np.array([size], np.int64), f)[0])
        at = int(np.searchsorted(below, want, side="right") - 1)  # buckets[:at] hold <= want records
        plan[label] = (1 << BUCKET_BITS, 0) if at >= len(buckets) else (int(buckets[at]), want - int(below[at]))
    return plan


def boundary_members(rows: list, need: int, stratum: str) -> list:
    """The first `need` of a boundary bucket's rows ((hash, uid, ...)) in the stratum's order (hash, then uid);
    ValueError on a uid twice."""
    rows = sorted(rows)
    for a, b in zip(rows, rows[1:]):
        if a[1] == b[1]:
            raise ValueError(f"duplicate uid {a[1]!r} in stratum {stratum!r}")
    return rows[:need]


def _ranks(order: np.ndarray, strata: np.ndarray) -> np.ndarray:
    """Rank of each record inside its stratum, given the records sorted by (stratum, rank)."""
    sorted_strata = strata[order]
    first_of_stratum = np.searchsorted(sorted_strata, sorted_strata, side="left")
    ranks = np.empty(len(order), np.int64)
    ranks[order] = np.arange(len(order)) - first_of_stratum
    return ranks


class UidSubsets:
    """The nested subsets of a real pool of R records, given as uids and strata.

    Same semantics as `NestedSubsets`: the subset of fraction f takes, in every stratum, the records
    of rank < floor(f * N_s), ranks from `uid_ranks`. Ids here are record indices 0..R-1.
    """

    def __init__(self, uids: Sequence[str], strata: np.ndarray, key: int, names: Sequence[str] | None = None):
        strata = _check_strata(uids, strata)
        self.key = as_key(key, "key")
        self.strata = strata
        self.sizes = np.bincount(strata).astype(np.int64) if strata.size else np.zeros(0, np.int64)
        self.names = [str(s) for s in range(self.sizes.size)] if names is None else list(names)
        if len(self.names) < self.sizes.size:
            raise ValueError(f"{len(self.names)} names for {self.sizes.size} strata: {self.names}")
        self._by_rank = _uid_order(uids, strata, key)  # record indices, by stratum then rank
        self._starts = np.concatenate([[0], np.cumsum(self.sizes)])
        self.ranks = _ranks(self._by_rank, strata)

    def __repr__(self):
        return f"UidSubsets({self.strata.size} records, {self.sizes.size} strata, key={self.key:#x})"

    def counts(self, fraction) -> np.ndarray:
        """Records per stratum in the subset: floor(fraction * sizes), exactly (int64, shape (S,))."""
        return subset_counts(self.sizes, fraction)

    def contains(self, record_indices, fraction) -> np.ndarray:
        """Whether each record index is in the subset (bool, shape of `record_indices`).

        Indices outside [0, R) are not members.
        """
        counts = self.counts(fraction)
        indices = as_int64_array(record_indices, "record indices")
        out = np.zeros(indices.shape, np.bool_)
        valid = (indices >= 0) & (indices < self.strata.size)
        chosen = indices[valid]
        out[valid] = self.ranks[chosen] < counts[self.strata[chosen]]
        return out

    def member_ids(self, fraction, stratum: int) -> np.ndarray:
        """Record indices of the subset's members in `stratum`, in rank order (int64, shape (count,))."""
        stratum = operator.index(stratum)
        if not 0 <= stratum < self.sizes.size:
            raise ValueError(f"stratum {stratum} is outside [0, {self.sizes.size})")
        start = self._starts[stratum]
        return self._by_rank[start:start + self.counts(fraction)[stratum]]

    def ids(self, fraction) -> np.ndarray:
        """Sorted record indices of the whole subset (int64, shape (counts(fraction).sum(),))."""
        counts = self.counts(fraction)
        return np.flatnonzero(self.ranks < counts[self.strata]).astype(np.int64)


class StrataCounts:
    """The nested subsets of a pool known only by its strata's sizes: their counts, floor(f * N_s) per stratum,
    for the mixtures and the index, when a Beam pipeline writes the id lists (vlscale.beam.sample)."""

    def __init__(self, sizes: dict[str, int], key: int):
        self.key = as_key(key, "key")
        self.names = sorted(sizes)
        self.sizes = np.array([int(sizes[n]) for n in self.names], np.int64)

    def __repr__(self):
        return f"StrataCounts({int(self.sizes.sum())} records, {self.sizes.size} strata, key={self.key:#x})"

    def counts(self, fraction) -> np.ndarray:
        """Records per stratum in the subset: floor(fraction * sizes), exactly (int64, shape (S,))."""
        return subset_counts(self.sizes, fraction)
