"""Evidence as a reviewer weighs it: intervals that count training seeds as well as test images, and verdict rules
that reach every category on planted per-image outcomes whose truth is known."""
import numpy as np
import pytest

from vlscale.analysis import evidence as ev
from vlscale.analysis.uncertainty import resample_counts

N_IMAGES, N_BOOT = 400, 200


def run_outcomes(accuracy: float, rng, difficulty: np.ndarray) -> np.ndarray:
    """One trained model's per-image successes on the shared test images: an image is solved when its difficulty
    (shared by every model, so that models agree on the easy images, as real ones do) plus the model's own noise
    lies below the model's accuracy."""
    return (difficulty + 0.1 * rng.standard_normal(N_IMAGES) < accuracy).astype(np.float32)


def config(name: str, accuracies, rng, counts) -> ev.Config:
    """A configuration whose seeds reach the given true accuracies; points and draws as error (%) like the figures
    stage's (the same image resamples `counts` for every configuration)."""
    difficulty = np.random.default_rng(counts.shape[1]).random(N_IMAGES)  # the test set's images
    outcomes = np.stack([run_outcomes(a, rng, difficulty) for a in accuracies])
    points = 100 * (1 - outcomes.mean(axis=1))
    draws = 100 * (1 - (counts @ outcomes.T).T / N_IMAGES)
    return ev.Config(name, points, draws)


def seeds(mean: float, n: int, sd: float, rng) -> np.ndarray:
    """n seeds' true accuracies around `mean`: what another initialisation and data order move."""
    return np.clip(mean + sd * rng.standard_normal(n), 0.01, 0.99)


def judged(a, b, others=()):
    configs = (a, b, *others)
    var, df = ev.pooled_seed_variance([c.points for c in configs])
    return ev.difference(a, b, var, df, churn=ev.pooled_churn([c.draws for c in configs]))


# ------------------------------------------------------------------------------------ the negative control

def _aa_rates(n_sims: int, seed_sd: float, with_seeds: bool) -> float:
    """Share of A/A comparisons (same data, other seeds: 2 per side, one more configuration of 3) called different."""
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(n_sims):
        counts = resample_counts(N_IMAGES, N_BOOT, rng)
        a = config("a", seeds(0.6, 2, seed_sd, rng), rng, counts)
        b = config("b", seeds(0.6, 2, seed_sd, rng), rng, counts)
        other = config("other", seeds(0.4, 3, seed_sd, rng), rng, counts)
        d = judged(a, b, [other]) if with_seeds else ev.difference(a, b)
        hits += not (d.lo <= 0 <= d.hi)
    return hits / n_sims


def test_the_negative_control_is_called_different_at_its_nominal_rate_when_seeds_are_counted():
    rate = _aa_rates(300, seed_sd=0.03, with_seeds=True)
    assert 0.02 <= rate <= 0.09  # nominal 5%; 300 simulations leave about ±2.5 points


def test_seeds_that_differ_only_image_by_image_are_not_counted_twice():
    # no seed effect at all: the seeds' spread is their churn on the fixed test images, which the resamples of a
    # seed mean also hold; counted twice, the intervals would be a third too wide and the rate near 1%
    rate = _aa_rates(300, seed_sd=0.0, with_seeds=True)
    assert 0.02 <= rate <= 0.09


def test_intervals_over_test_images_alone_call_identical_configurations_different():
    # a paired bootstrap over images only, blind to what another seed does
    assert _aa_rates(150, seed_sd=0.03, with_seeds=False) > 0.3  # nominal 0.05


# ------------------------------------------------------------------------------------ the difference

def test_an_interval_over_two_seeds_is_wider_than_over_the_images_and_names_its_seeds():
    rng = np.random.default_rng(1)
    counts = resample_counts(N_IMAGES, N_BOOT, rng)
    a, b = (config(n, seeds(m, 2, 0.03, rng), rng, counts) for n, m in (("a", 0.7), ("b", 0.5)))
    d = judged(a, b)
    images_only = ev.difference(a, b)
    assert d.n_a == d.n_b == 2 and d.seed_df == 2 and d.seeds_measured and d.separable
    assert d.hi - d.lo > images_only.hi - images_only.lo
    assert d.effect == pytest.approx(a.points.mean() - b.points.mean())
    assert d.mde() > d.quantile(0.95) * d.se  # 80% power needs more than the interval's half width


def test_one_seed_per_side_is_not_separable_even_with_the_seed_variance_pooled_from_elsewhere():
    rng = np.random.default_rng(2)
    counts = resample_counts(N_IMAGES, N_BOOT, rng)
    a, b = config("a", [0.9], rng, counts), config("b", [0.2], rng, counts)
    other = config("other", seeds(0.5, 3, 0.03, rng), rng, counts)
    d = judged(a, b, [other])
    assert d.seeds_measured and not d.separable
    v = ev.directional(d, -1, 1.0)
    assert v.verdict == ev.INCONCLUSIVE and "one seed per configuration" in v.reason
    # against a fixed reference (chance), one seed of a measured variance is enough
    var, df = ev.pooled_seed_variance([other.points])
    assert ev.difference(a, ev.constant("chance", 50.0, N_BOOT), var, df, b_trained=False).separable


def test_without_any_replicate_the_training_noise_is_unmeasured_and_nothing_reproduces():
    rng = np.random.default_rng(3)
    counts = resample_counts(N_IMAGES, N_BOOT, rng)
    a, b = config("a", [0.9], rng, counts), config("b", [0.2], rng, counts)
    d = judged(a, b)
    assert not d.seeds_measured and d.seed_df == 0 and d.hi < 0  # the images alone would call it
    v = ev.directional(d, -1, 1.0)
    assert v.verdict == ev.INCONCLUSIVE and "not measured" in v.reason


def test_draws_of_another_resampling_are_refused():
    a = ev.Config("a", [1.0, 2.0], np.zeros((2, 10)))
    with pytest.raises(ValueError, match="same resamples"):
        ev.difference(a, ev.Config("b", [1.0], np.zeros((1, 20))))
    with pytest.raises(ValueError, match="one row of draws per seed"):
        ev.Config("c", [1.0, 2.0], np.zeros((3, 10)))


# ------------------------------------------------------------------------------------ the verdict rules

def _planted(effect_acc: float, n: int, sd: float, seed: int):
    """A minus B where A's seeds are `effect_acc` less accurate (so more error) than B's, n seeds each."""
    rng = np.random.default_rng(seed)
    counts = resample_counts(N_IMAGES, N_BOOT, rng)
    a = config("a", seeds(0.6 - effect_acc, n, sd, rng), rng, counts)
    b = config("b", seeds(0.6, n, sd, rng), rng, counts)
    return judged(a, b)


def test_a_directional_claim_reaches_every_category():
    big = _planted(0.25, 3, 0.01, 10)  # +25 pp of error
    assert ev.directional(big, +1, 5.0).verdict == ev.REPRODUCES
    assert ev.directional(big, -1, 5.0).verdict == ev.DOES_NOT  # the opposite sign
    none = _planted(0.0, 4, 0.005, 11)  # no effect, measured tightly: excludes the paper's 10 pp
    v = ev.directional(none, +1, 10.0)
    assert v.verdict == ev.DOES_NOT and "smaller than the paper's" in v.reason
    small = _planted(0.02, 2, 0.04, 12)  # 2 pp against noisy seeds
    v = ev.directional(small, +1, 3.0)
    assert v.verdict == ev.INCONCLUSIVE and "minimal detectable effect" in v.reason
    assert ev.directional(none, +1, None).verdict == ev.INCONCLUSIVE  # no paper number: no equivalence test


def _fixed(effect: float, se: float) -> ev.Difference:
    """A difference of a given effect and standard error, with two seeds a side measured on 8 degrees of freedom."""
    d = ev.Difference(effect, np.nan, np.nan, se, 8.0, se / 2, se, 8, 2, 2, np.nan, True, True)
    lo, hi = d.bounds(0.95)
    return ev.Difference(effect, lo, hi, se, 8.0, se / 2, se, 8, 2, 2, np.nan, True, True)


def test_more_noise_never_turns_a_verdict_into_its_opposite():
    # an effect of 2 against the paper's 5.47: shown smaller than the paper's while the noise allows, then open
    seen = [ev.directional(_fixed(2.0, se), +1, 5.47).verdict for se in (0.3, 0.9, 1.1, 3.0)]
    assert seen == [ev.DOES_NOT, ev.DOES_NOT, ev.DOES_NOT, ev.INCONCLUSIVE]
    seen = [ev.directional(_fixed(8.0, se), +1, 5.47).verdict for se in (0.3, 1.0, 4.0)]
    assert seen == [ev.REPRODUCES, ev.REPRODUCES, ev.INCONCLUSIVE]
    # a change inside the margin is never "a change", however sure
    assert ev.no_change(_fixed(0.9, 0.3), 1.0).verdict == ev.INCONCLUSIVE
    assert ev.no_change(_fixed(0.9, 0.02), 1.0).verdict == ev.REPRODUCES
    assert ev.no_change(_fixed(1.9, 0.3), 1.0).verdict == ev.DOES_NOT


def test_a_claim_of_no_change_needs_equivalence_not_a_wide_interval():
    none = _planted(0.0, 4, 0.005, 20)
    assert ev.no_change(none, 10.0).verdict == ev.REPRODUCES
    wide = _planted(0.0, 2, 0.06, 21)
    assert wide.lo < 0 < wide.hi  # "the interval contains zero" would call this a reproduction
    assert ev.no_change(wide, 1.0).verdict == ev.INCONCLUSIVE
    change = _planted(0.2, 3, 0.01, 22)
    assert ev.no_change(change, 1.0).verdict == ev.DOES_NOT
    with pytest.raises(ValueError, match="positive"):
        ev.no_change(none, 0.0)


def test_a_claim_of_parts_fails_on_any_part_and_reproduces_only_on_all():
    r, n, i = (ev.Verdict(x, "", "") for x in (ev.REPRODUCES, ev.DOES_NOT, ev.INCONCLUSIVE))
    assert ev.combine({"a": r, "b": r}).verdict == ev.REPRODUCES
    assert ev.combine({"a": r, "b": i}).verdict == ev.INCONCLUSIVE
    assert ev.combine({"a": i, "b": n}).verdict == ev.DOES_NOT
    assert ev.combine({}).verdict == ev.NOT_TESTED


def test_a_level_at_its_chance_floor_cannot_show_a_change():
    assert not ev.off_floor(98.5, 99.8, 2.0) and ev.off_floor(90.0, 99.8, 2.0) and not ev.off_floor(np.nan, 99.8, 2.0)
