"""A run's settings, resolved from validated params: the train and model blocks as it trains them, its seed, its
curation and its model's name (pure functions of the params; vlscale.config validates runs with them)."""
from __future__ import annotations

from dataclasses import dataclass

LATER_RUN_KEYS = ("model", "peak_lr")  # optional run keys: a fingerprint hashes them only when they are set


@dataclass(frozen=True)
class Run:
    """A run of resolved params: its entry of `runs` and the blocks as it trains them."""
    name: str
    entry: dict  # its entry of params.yaml `runs` (validated)
    train: dict  # the train block as it trains: its own seed and peak learning rate, its budget's cool-downs
    model: dict  # the model block as it trains it: the block with the entry's `model` keys replacing its own

    @property
    def seed(self) -> int:
        """The training seed: the entry's `seed`, else train.seed."""
        return self.train["seed"]

    @property
    def fraction(self) -> float:
        """The sample fraction it draws from (a filter arm's run: the pool's)."""
        return self.entry["fraction"]

    @property
    def filter(self) -> str | None:
        """The filter arm it trains on, or None for a subset of the sample stage."""
        return self.entry.get("filter")

    @property
    def rebalanced(self) -> bool:
        return bool(self.entry.get("rebalanced"))

    @property
    def curation(self) -> str:
        """"natural", "rebalanced" or "filter/<arm>"."""
        if self.filter:
            return f"filter/{self.filter}"
        return "rebalanced" if self.rebalanced else "natural"

    @property
    def model_name(self) -> str:
        return model_name(self.model)

    @property
    def hashed_entry(self) -> dict:
        """Its entry as fingerprints hash it: without the optional keys (LATER_RUN_KEYS) that are null, so that a
        run that does not set them has the fingerprint of an entry without them."""
        return {k: v for k, v in self.entry.items() if k not in LATER_RUN_KEYS or v is not None}


def resolve(p: dict, name: str) -> Run:
    """Run `name` of resolved params `p` (vlscale.config.validate)."""
    if name not in p["runs"]:
        raise KeyError(f"no run {name!r} in params' runs; runs are {sorted(p['runs'])}")
    return Run(name, p["runs"][name], run_train(p, name), run_model(p, name))


def run_train(p: dict, name: str) -> dict:
    """The resolved `train` block as run `name` trains: its own seed and peak learning rate, and its budget's
    examples and cool-downs.

    A run with budget b < 1 sees b × train.examples_seen examples; its cool-downs end where the train
    block's do, as long as they come before b, and at b itself.
    """
    train, run = p["train"], p["runs"][name]
    out = dict(train)
    for k in ("seed", "peak_lr"):
        if run.get(k) is not None:
            out[k] = run[k]
    b = run.get("budget", 1.0)
    if b < 1.0:
        out["examples_seen"] = int(round(b * train["examples_seen"]))
        out["cooldown_budgets"] = [c / b for c in train["cooldown_budgets"] if c < b * (1 - 1e-9)] + [1.0]
    return out


def run_model(p: dict, name: str) -> dict:
    """The resolved `model` block as run `name` trains it: the block with the run's `model` keys replacing its own."""
    override = p["runs"][name].get("model")
    return {**p["model"], **override} if override else p["model"]


def model_name(model: dict) -> str:
    """A model's short name in results: its image tower's variant ("B/16"), else width, depth and patch ("w64d1p8")."""
    image = model["image"]
    return image.get("variant") or f"w{image['width']}d{image['depth']}p{image['patch_size'][0]}"
