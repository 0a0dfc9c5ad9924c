"""Counter-based randomness shared by the NumPy and JAX code paths.

Every random attribute of an example is a hash of (world seed, stream, id). The hash uses only
uint32 arithmetic (multiply, xor, shift), which wraps identically in NumPy and in JAX without
64-bit mode, so the same function gives bit-identical draws on the host and on an accelerator.
Functions take the array namespace `xp` (numpy or jax.numpy) as their first argument.

A global id is int64 (see vlscale.world.ids); it enters as two uint32 words (hi, lo).
"""
import numpy as np

_GOLDEN = 0x9E3779B9


def id_words(ids):
    """(hi, lo) uint32 words of int64 global ids, on the host. Shapes follow `ids`."""
    ids = np.asarray(ids, dtype=np.int64).view(np.uint64)
    return (ids >> np.uint64(32)).astype(np.uint32), (ids & np.uint64(0xFFFFFFFF)).astype(np.uint32)


def _u32(xp, x):
    return xp.asarray(x, dtype=xp.uint32)


def fmix32(xp, h):
    """MurmurHash3's 32-bit finaliser: a bijective avalanche of a uint32 array."""
    h = h ^ (h >> 16)
    h = h * _u32(xp, 0x85EBCA6B)
    h = h ^ (h >> 13)
    h = h * _u32(xp, 0xC2B2AE35)
    return h ^ (h >> 16)


def hash32(xp, seed, stream, hi, lo):
    """uint32 hash of (seed, stream, hi, lo); seed and stream are Python ints, hi/lo uint32 arrays."""
    k = fmix32(xp, _u32(xp, (seed * _GOLDEN + stream * 0x632BE5AB + 0x7F4A7C15) & 0xFFFFFFFF))
    h = fmix32(xp, _u32(xp, hi) ^ k)
    return fmix32(xp, (_u32(xp, lo) + h * _u32(xp, _GOLDEN)) ^ (h >> 7))


def uniform(xp, h):
    """float32 in [0, 1) from a uint32 hash, exact in both backends (24 bits of mantissa)."""
    return (h >> 8).astype(xp.float32) * xp.float32(2.0**-24)


def alias_table(probs):
    """Vose alias tables for rows of a probability matrix.

    probs: [R, K] non-negative rows (normalised here). Returns (accept [R, K] float32,
    alias [R, K] int32): draw column i uniformly, keep it when u < accept[r, i], else take alias[r, i].
    """
    probs = np.atleast_2d(np.asarray(probs, dtype=np.float64))
    R, K = probs.shape
    accept = np.ones((R, K), np.float64)
    alias = np.tile(np.arange(K, dtype=np.int32), (R, 1))
    for r in range(R):
        total = probs[r].sum()
        if not total > 0:
            raise ValueError(f"alias_table: row {r} has no probability mass")
        scaled = probs[r] * (K / total)
        small = [i for i in range(K) if scaled[i] < 1.0]
        large = [i for i in range(K) if scaled[i] >= 1.0]
        while small and large:
            s, g = small.pop(), large.pop()
            accept[r, s], alias[r, s] = scaled[s], g
            scaled[g] -= 1.0 - scaled[s]
            (small if scaled[g] < 1.0 else large).append(g)
        for i in small + large:  # leftovers are 1 up to rounding
            accept[r, i] = 1.0
    return accept.astype(np.float32), alias


def draw(xp, accept, alias, row, h_col, h_acc):
    """Categorical draws by the alias method; row picks the conditional distribution.

    accept/alias: [R, K] tables (xp arrays); row: int array (or 0) of rows; h_col, h_acc: uint32 hashes.
    Returns int32 indices in [0, K).
    """
    K = accept.shape[1]
    if K > 1 << 16:
        raise ValueError(f"draw: {K} categories; the integer column draw supports at most 65536")
    col = (((h_col >> 16) * _u32(xp, K)) >> 16).astype(xp.int32)  # exact: < 2^16 * 2^16
    keep = uniform(xp, h_acc) < accept[row, col]
    return xp.where(keep, col, alias[row, col])
