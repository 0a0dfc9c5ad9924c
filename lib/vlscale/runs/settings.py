"""A run's settings, resolved from validated params: the train and model blocks as it trains them, its seed, its
curation and its model's name (pure functions of the params)."""
from __future__ import annotations

from dataclasses import dataclass

from vlscale.config import ModelParams, Params, RunParams, TrainParams

LATER_RUN_KEYS = ("model", "peak_lr")  # optional run keys: a fingerprint hashes them only when they are set


@dataclass(frozen=True)
class Run:
    """A run of resolved params: its entry of `runs` and the blocks as it trains them."""
    name: str
    entry: RunParams  # its entry of params.yaml `runs` (validated)
    train: TrainParams  # the train block as it trains: its own seed and peak learning rate, its budget's cool-downs
    model: ModelParams  # the model block as it trains it: the block with the entry's `model` keys replacing its own

    @property
    def seed(self) -> int:
        """The training seed: the entry's `seed`, else train.seed."""
        return self.train.seed

    @property
    def fraction(self) -> float:
        """The sample fraction it draws from (a filter arm's run: the pool's)."""
        return self.entry.fraction

    @property
    def filter(self) -> str | None:
        """The filter arm it trains on, or None for a subset of the sample stage."""
        return self.entry.filter

    @property
    def rebalanced(self) -> bool:
        return self.entry.rebalanced

    @property
    def curation(self) -> str:
        """"natural", "rebalanced" or "filter/<arm>"."""
        if self.filter:
            return f"filter/{self.filter}"
        return "rebalanced" if self.rebalanced else "natural"

    @property
    def model_name(self) -> str:
        return self.model.name

    @property
    def hashed_entry(self) -> dict:
        """Its entry as fingerprints hash it: without the optional keys (LATER_RUN_KEYS) that are null, so that a
        run that does not set them has the fingerprint of an entry without them."""
        return {k: v for k, v in self.entry.model_dump().items() if k not in LATER_RUN_KEYS or v is not None}


def resolve(p: Params, name: str) -> Run:
    """Run `name` of validated params `p` (vlscale.config.validate)."""
    if name not in p.runs:
        raise KeyError(f"no run {name!r} in params' runs; runs are {sorted(p.runs)}")
    entry = p.runs[name]
    return Run(name, entry, p.train.for_run(entry), p.model.for_run(entry))
