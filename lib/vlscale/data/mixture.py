"""Language rebalancing: the training mixture of a subset, low-resource languages upsampled (§5.2).

The paper raises each of the seven low-resource languages to a fixed share (1%) of the mixture and
keeps the remaining share (93%) as the original data in its natural mix. Here a `Mixture` is built
from the examples per stratum of a subset (`NestedSubsets.counts` or `UidSubsets.counts`):

- a non-target stratum keeps all its examples, once;
- a target stratum t with n_t > 0 examples gets exactly round(target_t * total) examples (exact
  arithmetic, halves up), where total = n_rest / (1 - sum of the present targets), by cycling
  through its members in rank order (about 1000 times round for Maori at 1%; a count below n_t
  keeps a rank prefix);
- a target stratum with no examples cannot be upsampled: it gets none, its target leaves the sum,
  and it is recorded in `missing` and warned about.

Mixture positions 0..len-1 are laid out stratum after stratum; `source(j)` says which stratum and
which member rank position j reads, and `order(key)` is a keyed shuffle of the positions, so a
training stream reads `source(order[step])`.
"""
import math
import warnings
from collections.abc import Mapping, Sequence
from fractions import Fraction

import numpy as np

from vlscale.config import LOW_RESOURCE  # the paper's seven low-resource languages
from vlscale.data.subsets import KeyedPermutation, as_int64_array, as_key, exact_fraction

LOW_RESOURCE_TARGET_FRAC = 0.01  # each one's share of the rebalanced mixture


def low_resource_targets(share_frac: float = LOW_RESOURCE_TARGET_FRAC) -> dict[str, float]:
    """The paper's rebalancing targets: every low-resource language at `share_frac` of the mixture."""
    return {code: share_frac for code in LOW_RESOURCE}


class Mixture:
    """The rebalanced mixture of a subset.

    counts: (S,) examples per stratum in the subset; names: S stratum names (language codes);
    targets: {name: share of the mixture in [0, 1)}, shares summing to < 1 (empty: the subset as
    it is); key: default key of `order`.
    """

    def __init__(self, counts: np.ndarray, names: Sequence[str], targets: Mapping[str, float], key: int):
        counts = np.asarray(counts)
        if counts.ndim != 1 or (counts.size and (counts.dtype.kind not in "iu" or counts.min() < 0)):
            raise ValueError(f"counts must be a 1-D array of non-negative integers, got {counts!r}")
        names = list(names)
        if len(names) != counts.size or len(set(names)) != len(names):
            raise ValueError(f"names must be {counts.size} distinct stratum names, got {names}")
        self.counts = counts.astype(np.int64)
        self.names = names
        self.key = as_key(key, "key")
        self.targets = dict(targets)
        exact = self._check_targets()

        index = {name: s for s, name in enumerate(names)}
        absent = [t for t in exact if self.counts[index[t]] == 0]
        self.missing = [t for t in absent if exact[t] > 0]
        present = {t: share for t, share in exact.items() if t not in absent}
        rest = int(sum(n for name, n in zip(names, self.counts.tolist()) if name not in exact))
        if present and rest == 0:
            raise ValueError(f"the subset has no examples outside the target languages {sorted(present)}, "
                             f"so target shares of the mixture are undefined")
        total = Fraction(rest) / (1 - sum(present.values(), Fraction(0)))
        self.realised = self.counts.copy()
        for t in exact:
            # round half up, exactly: the target is a decimal and the total a ratio of integers
            self.realised[index[t]] = math.floor(present[t] * total + Fraction(1, 2)) if t in present else 0
        self._ends = np.cumsum(self.realised)
        for t in self.missing:
            warnings.warn(f"low-resource language {t!r} has no examples in this subset of "
                          f"{int(self.counts.sum())} examples, so it cannot be upsampled to "
                          f"{float(self.targets[t]):.2%} of the mixture; it gets none", stacklevel=2)

    def _check_targets(self) -> dict[str, Fraction]:
        """The targets as exact Fractions, or ValueError naming the bad one."""
        exact = {}
        for name, share in self.targets.items():
            if name not in self.names:
                raise ValueError(f"target language {name!r} is not a stratum; strata are {self.names}")
            exact[name] = exact_fraction(share, f"target share of {name!r}")
            if not 0 <= exact[name] < 1:
                raise ValueError(f"target share of {name!r} must be in [0, 1), got {share!r}")
        if sum(exact.values(), Fraction(0)) >= 1:
            raise ValueError(f"target shares sum to {float(sum(exact.values()))} ({self.targets}); "
                             f"expected < 1")
        return exact

    def __len__(self):
        return int(self._ends[-1]) if self._ends.size else 0

    def __repr__(self):
        return f"Mixture({len(self)} examples from {int(self.counts.sum())}, targets={self.targets})"

    @property
    def realised_counts(self) -> dict[str, int]:
        """Examples of each stratum in the mixture."""
        return dict(zip(self.names, self.realised.tolist()))

    @property
    def realised_shares(self) -> dict[str, float]:
        """Share of each stratum in the mixture."""
        return dict(zip(self.names, (self.realised / max(len(self), 1)).tolist()))

    @property
    def natural_shares(self) -> dict[str, float]:
        """Share of each stratum in the subset, before rebalancing."""
        return dict(zip(self.names, (self.counts / max(int(self.counts.sum()), 1)).tolist()))

    def source(self, positions) -> tuple[np.ndarray, np.ndarray]:
        """(stratum, rank) read by mixture positions (two int64 arrays, shape of `positions`).

        Position j of stratum s's block reads the member of rank j mod counts[s], so an upsampled
        language cycles through its members in rank order.
        """
        positions = as_int64_array(positions, "mixture positions")
        if positions.size and (positions.min() < 0 or positions.max() >= len(self)):
            bad = positions[(positions < 0) | (positions >= len(self))].flat[0]
            raise ValueError(f"mixture position {bad} is outside [0, {len(self)})")
        stratum = np.searchsorted(self._ends, positions, side="right")
        within = positions - (self._ends - self.realised)[stratum]
        return stratum, within % self.counts[stratum]

    def order(self, key: int | None = None) -> KeyedPermutation:
        """A keyed shuffle of the positions 0..len-1: step j of a stream reads source(order[j]).

        key defaults to the mixture's key; derive_key(key, epoch) gives each epoch its own order.
        """
        if len(self) == 0:
            raise ValueError("an empty mixture has no order")
        return KeyedPermutation(len(self), self.key if key is None else key)

    def as_dict(self) -> dict:
        """The mixture's accounting, for a JSON file: counts and shares before and after, targets, missing."""
        return {
            "examples": len(self),
            "subset_examples": int(self.counts.sum()),
            "counts": dict(zip(self.names, self.counts.tolist())),
            "realised_counts": self.realised_counts,
            "natural_shares": self.natural_shares,
            "realised_shares": self.realised_shares,
            "targets": {name: float(share) for name, share in self.targets.items()},
            "missing": list(self.missing),
        }
