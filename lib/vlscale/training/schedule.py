"""The paper's learning-rate schedule, measured in examples seen rather than steps.

big_vision's "rsqrt" schedule (Zhai et al., "Scaling Vision Transformers"): linear warm-up to the
peak, then inverse square root decay; a run that must end cools down linearly to zero. The
WebLI-100B runs use peak 1e-3, 200M warm-up and 200M cool-down examples. The main run never cools
down; each training budget is a branch that starts its cool-down `cooldown_examples` before its
end, so one run yields models for every budget. In examples seen e before an update:

    rel(e) = min(1, e / warmup) * rsqrt(e) * cooldown(e)
    rsqrt(e) = 1 if e < warmup else sqrt(timescale / (e - warmup + timescale))
    cooldown(e) = min(1, max(0, (end - e) / cooldown)) for a branch ending at `end`, else 1

Counting examples rather than steps keeps the schedule the same when the batch size changes.
"""
import dataclasses
import numbers

import jax
import jax.numpy as jnp
import numpy as np


def _count(name, value, minimum):
    """`value` as an int >= minimum (integral floats such as 2e8 from a config are accepted)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and float(value).is_integer()
    if not ok or value < minimum:
        raise ValueError(f"Schedule: {name} must be an integer number of examples >= {minimum}, "
                         f"got {value!r}")
    return int(value)


@dataclasses.dataclass(frozen=True)
class Schedule:
    """Learning rate as a function of examples seen: warm-up, rsqrt decay, optional cool-down.

    `end_examples` is where the cool-down reaches zero; None for the main run, which never cools
    down. `timescale_examples` sets how fast the rsqrt part decays (big_vision sets it near the
    warm-up length).
    """
    peak_lr: float
    warmup_examples: int
    cooldown_examples: int
    timescale_examples: int
    end_examples: int | None = None

    def __post_init__(self):
        if not (isinstance(self.peak_lr, numbers.Real) and self.peak_lr > 0):
            raise ValueError(f"Schedule: peak_lr must be a positive number, got {self.peak_lr!r}")
        for name, minimum in (("warmup_examples", 0), ("cooldown_examples", 0), ("timescale_examples", 1)):
            object.__setattr__(self, name, _count(name, getattr(self, name), minimum))
        if self.end_examples is not None:
            end = _count("end_examples", self.end_examples, 1)
            if end < self.warmup_examples + self.cooldown_examples:
                raise ValueError(
                    f"Schedule: end_examples={end} leaves no room for warm-up ({self.warmup_examples}) "
                    f"followed by cool-down ({self.cooldown_examples}); it must be >= "
                    f"{self.warmup_examples + self.cooldown_examples}")
            object.__setattr__(self, "end_examples", end)

    def relative(self, examples_seen):
        """rel(e) in [0, 1]. Python numbers and NumPy arrays give float64 NumPy results; JAX
        arrays (also traced, inside jit) give float32 JAX arrays."""
        xp = jnp if isinstance(examples_seen, jax.Array) else np
        e = xp.asarray(examples_seen, xp.float32 if xp is jnp else xp.float64)
        warmup = xp.minimum(1.0, e / self.warmup_examples) if self.warmup_examples else 1.0
        # max(e - warmup, 0) keeps the unused branch of the where finite.
        rsqrt = xp.sqrt(self.timescale_examples
                        / (xp.maximum(e - self.warmup_examples, 0) + self.timescale_examples))
        rel = warmup * xp.where(e < self.warmup_examples, 1.0, rsqrt)
        if self.end_examples is not None:
            cool = (self.end_examples - e) / max(self.cooldown_examples, 1)  # 0: stop at the end
            rel = rel * xp.clip(cool, 0.0, 1.0)
        return rel

    def __call__(self, examples_seen):
        """Learning rate after `examples_seen` examples: peak_lr * rel(examples_seen)."""
        return self.peak_lr * self.relative(examples_seen)

    def with_cooldown(self, end_examples):
        """The branch of this schedule whose cool-down reaches zero at `end_examples`."""
        return dataclasses.replace(self, end_examples=end_examples)

    def cooldown_start(self, end_examples=None):
        """Examples seen when the cool-down ending at `end_examples` (default: this schedule's
        end) begins; the branch equals the main run before this point."""
        end = self.end_examples if end_examples is None else end_examples
        if end is None:
            raise ValueError("Schedule.cooldown_start: this schedule has no end_examples; pass one")
        return self.with_cooldown(end).end_examples - self.cooldown_examples


def cooldown_budgets(total_examples, fractions, schedule):
    """Training budgets (examples seen at the end of each cool-down branch): sorted distinct ints.

    total_examples: the main run's length; fractions in (0, 1], e.g. the paper's 3, 7, 10, 17, 26,
    33, 49, 66 and 100 hundredths. Each budget must fit warm-up plus cool-down of `schedule`.
    """
    total = _count("total_examples", total_examples, 1)
    budgets = set()
    for frac in fractions:
        if not 0 < frac <= 1:
            raise ValueError(f"cooldown_budgets: fraction {frac!r} is not in (0, 1]")
        budget = round(total * frac)
        if budget < schedule.warmup_examples + schedule.cooldown_examples:
            raise ValueError(
                f"cooldown_budgets: budget {budget} (fraction {frac!r} of {total}) is shorter than "
                f"warm-up + cool-down = {schedule.warmup_examples + schedule.cooldown_examples} examples")
        budgets.add(budget)
    return sorted(budgets)
