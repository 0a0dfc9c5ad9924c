"""The learning-rate schedule in examples seen: warm-up, rsqrt decay, cool-down branches."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vlscale.training.schedule import Schedule, cooldown_budgets

PEAK = 1e-3
MAIN = Schedule(PEAK, warmup_examples=1000, cooldown_examples=500, timescale_examples=2000)
BRANCH = MAIN.with_cooldown(5000)  # cool-down from 4500 to 5000 examples


@pytest.mark.parametrize("schedule, examples_seen, want", [
    (MAIN, 0, 0.0),
    (MAIN, 250, PEAK * 0.25),
    (MAIN, 1000, PEAK),  # end of warm-up: the peak, exactly
    (MAIN, 3000, PEAK * math.sqrt(2000 / 4000)),
    (MAIN, 7000, PEAK * 0.5),
    (MAIN, 19000, PEAK * math.sqrt(0.1)),
    (MAIN, 10**12, PEAK * math.sqrt(2000 / (10**12 - 1000 + 2000))),  # the main run never cools down
    (BRANCH, 4500, PEAK * math.sqrt(2000 / 5500)),  # cool-down start
    (BRANCH, 4750, PEAK * math.sqrt(2000 / 5750) * 0.5),
    (BRANCH, 4900, PEAK * math.sqrt(2000 / 5900) * 0.2),
    (BRANCH, 5000, 0.0),
    (BRANCH, 6000, 0.0),
])
def test_schedule_follows_the_formula(schedule, examples_seen, want):
    assert schedule(examples_seen) == pytest.approx(want, rel=1e-12, abs=0)
    # The same under jit, in float32.
    got = jax.jit(schedule)(jnp.float32(examples_seen))
    assert got.dtype == jnp.float32 and got == pytest.approx(want, rel=1e-6, abs=1e-12)


def test_peak_is_reached_exactly_at_the_end_of_warmup():
    assert MAIN(1000) == PEAK and MAIN(999) < PEAK and MAIN(1001) < PEAK
    assert jax.jit(MAIN)(jnp.int32(1000)) == jnp.float32(PEAK)


def test_schedule_without_warmup_starts_at_the_peak():
    assert Schedule(PEAK, 0, 0, 10)(0) == PEAK


def test_schedule_of_an_array_is_elementwise():
    e = np.array([0, 1000, 7000])
    np.testing.assert_allclose(MAIN(e), [0, PEAK, PEAK / 2])
    np.testing.assert_allclose(MAIN(jnp.asarray(e)), [0, PEAK, PEAK / 2], rtol=1e-6)


@given(st.integers(0, 4500))
def test_branch_equals_main_run_before_its_cooldown(examples_seen):
    assert BRANCH.cooldown_start() == MAIN.cooldown_start(5000) == 4500
    assert BRANCH(examples_seen) == MAIN(examples_seen)


@given(st.integers(1000, 10**12), st.integers(0, 10**12),
       st.sampled_from([MAIN, BRANCH, MAIN.with_cooldown(10**11)]))
def test_schedule_does_not_increase_after_warmup(examples_seen, more, schedule):
    assert schedule(examples_seen + more) <= schedule(examples_seen)


@pytest.mark.parametrize("kwargs, message", [
    (dict(peak_lr=0.0), "peak_lr must be a positive number, got 0.0"),
    (dict(warmup_examples=-1), "warmup_examples must be .* >= 0, got -1"),
    (dict(cooldown_examples=2.5), "cooldown_examples must be an integer .* got 2.5"),
    (dict(timescale_examples=0), "timescale_examples must be .* >= 1, got 0"),
    (dict(end_examples=1200), "end_examples=1200 leaves no room .* must be >= 1500"),
])
def test_schedule_rejects_bad_values_by_name(kwargs, message):
    base = dict(peak_lr=PEAK, warmup_examples=1000, cooldown_examples=500, timescale_examples=2000)
    with pytest.raises(ValueError, match=message):
        Schedule(**{**base, **kwargs})


def test_integral_floats_from_a_config_become_ints():
    s = Schedule(PEAK, 2e8, 2e8, 2e8, end_examples=1e9)
    assert (s.warmup_examples, s.end_examples) == (200_000_000, 1_000_000_000)
    assert type(s.cooldown_start()) is int


def test_cooldown_start_needs_an_end():
    with pytest.raises(ValueError, match="no end_examples"):
        MAIN.cooldown_start()


def test_cooldown_budgets_of_the_paper():
    paper = Schedule(PEAK, 200_000_000, 200_000_000, 200_000_000)
    fracs = [1.0, 0.66, 0.49, 0.33, 0.26, 0.17, 0.10, 0.07, 0.03, 0.1]  # unsorted, 0.1 twice
    assert cooldown_budgets(10**11, fracs, paper) == [
        3 * 10**9, 7 * 10**9, 10 * 10**9, 17 * 10**9, 26 * 10**9, 33 * 10**9, 49 * 10**9, 66 * 10**9, 10**11]


def test_cooldown_budget_shorter_than_warmup_plus_cooldown_is_named():
    with pytest.raises(ValueError, match=r"budget 1000 \(fraction 0.1 of 10000\) is shorter than .* 1500"):
        cooldown_budgets(10_000, [0.1, 0.5], MAIN)
    with pytest.raises(ValueError, match="fraction 1.5 is not in"):
        cooldown_budgets(10_000, [1.5], MAIN)
