"""Each ablation of world/ablations.py switches its mechanism off: in a world drawn with it, the mechanism's statistic
is at its neutral value within sampling error (a test at level ALPHA does not reject it), while the default world's
is far from it (rejected at FAR), so each test can fail. The switches' defaults leave the world as it was."""
import hashlib

import numpy as np
import pytest
from scipy import stats

from conftest import ROOT
from vlscale.config import LOW_RESOURCE, PROFILES, REGIONS, load_params
from vlscale.world import vocab
from vlscale.world.ablations import ABLATIONS, ablate, ablation_names
from vlscale.world.captions import captions
from vlscale.world.describe import pool_ids
from vlscale.world.hashing import id_words
from vlscale.world.ids import make_ids
from vlscale.world.render import render, render_ids
from vlscale.world.spec import build_world, region_page_share
from vlscale.world.truth import truth

ALPHA = 1e-3  # an ablated world's statistic must not be rejected as neutral at this level
FAR = 1e-9  # the default world's must be rejected at this one
N = 200_000  # examples drawn per world (a second or two)


@pytest.fixture(scope="module")
def draws(params):
    """world(name) -> (world, ids, truth) of the default world (name None) or an ablated one, drawn once."""
    cache = {}

    def get(name=None, ids=None):
        key = (name, None if ids is None else ids.tobytes())
        if key not in cache:
            w = build_world(params.world if name is None else ablate(params.world, name))
            chosen = pool_ids(w, N) if ids is None else ids
            cache[key] = w, chosen, truth(w, chosen)
        return cache[key]
    return get


def _both(draws, name, statistic, ids=None):
    """The p-value of `statistic` (a test of the neutral value on (world, ids, truth)) in the default and ablated
    worlds; asserts the ablated one is not rejected and the default one is."""
    default, ablated = statistic(*draws(None, ids)), statistic(*draws(name, ids))
    assert ablated > ALPHA, f"{name}: the ablated world rejects the neutral value (p = {ablated:.2g})"
    assert default < FAR, f"{name}: the default world is not far from neutral (p = {default:.2g}): the test is blind"


def test_region_noise(draws):
    def homogeneity(w, ids, gt):  # region x caption kind (clean, misaligned, vague): independent
        table = np.zeros((len(REGIONS), 3))
        np.add.at(table, (gt["region"], gt["caption_kind"]), 1)
        return stats.chi2_contingency(table).pvalue
    _both(draws, "region_noise", homogeneity)


def test_region_noise_keeps_the_pools_noise_rate(draws, params):
    """The single rate is the pool's average: the drawn misaligned rate of the ablated world is its overlay's value,
    the default world's regions weighted by their page shares give the same rate."""
    w, _, gt = draws("region_noise")
    rate = w.params.noise.misaligned["Europe"]
    assert stats.binomtest(int((gt["caption_kind"] == 1).sum()), len(gt["region"]), rate).pvalue > ALPHA
    _, _, base = draws()
    assert stats.binomtest(int((base["caption_kind"] == 1).sum()), len(base["region"]), rate).pvalue > ALPHA


def test_region_page_share_is_the_drawn_region_mix(draws, params):
    _, _, gt = draws()
    observed = np.bincount(gt["region"], minlength=len(REGIONS))
    assert stats.chisquare(observed, region_page_share(params.world) * len(gt["region"])).pvalue > ALPHA


def test_english_low_resource(draws, world):
    """English alt-text on pages of the low-resource languages and of the other non-English tagged languages, 20k
    each: the same rate (a 2 x 2 table)."""
    low = [world.stratum_of(c) for c in LOW_RESOURCE]
    high = [s for s, g in enumerate(world.resource_group) if g == "high" and world.strata[s] != "en"]
    n = 20_000
    ids = np.concatenate([make_ids(np.resize(group, n), np.arange(n)) for group in (low, high)])

    def same_rate(w, ids, gt):
        english = gt["caption_language"] == w.stratum_of("en")
        table = [[english[:n].sum(), (~english[:n]).sum()], [english[n:].sum(), (~english[n:]).sum()]]
        return stats.chi2_contingency(table).pvalue
    _both(draws, "english_low_resource", same_rate, ids)


def test_english_low_resource_keeps_the_pools_english_caption_rate(draws):
    """The single rate is the pool's average over non-English pages: the ablated and default pools (the same pages)
    caption those pages in English equally often."""
    def english_on_other_pages(name):
        w, _, gt = draws(name)
        other = gt["stratum"] != w.stratum_of("en")
        english = gt["caption_language"][other] == w.stratum_of("en")
        return [int(english.sum()), int((~english).sum())]
    table = [english_on_other_pages(None), english_on_other_pages("english_low_resource")]
    assert stats.chi2_contingency(table).pvalue > ALPHA, table


def test_culture_boost(draws):
    """Region x concept class (the home region of a culture-specific concept, or none): independent, so a culture
    concept is as likely at home as abroad."""
    def independence(w, ids, gt):
        table = np.zeros((len(REGIONS), len(REGIONS) + 1))
        np.add.at(table, (gt["region"], w.culture_region[gt["concept"]]), 1)  # -1 (none) is the last column
        assert stats.contingency.expected_freq(table).min() > 5  # the chi-square approximation holds
        return stats.chi2_contingency(table).pvalue
    _both(draws, "culture_boost", independence)


def test_western_head(draws):
    """The Western concepts' popularity ranks against the other everyday concepts' (Mann-Whitney), in the world's
    table and in the drawn counts (culture-specific concepts left out: their home boost lifts their counts)."""
    def ranks(w, ids, gt):
        everyday = w.landmark_country < 0
        return stats.mannwhitneyu(w.concept_rank[w.is_head], w.concept_rank[everyday & ~w.is_head]).pvalue

    def counts(w, ids, gt):
        c = np.bincount(gt["concept"], minlength=len(w.concepts))
        rest = (w.landmark_country < 0) & ~w.is_head & (w.culture_region < 0)
        return stats.mannwhitneyu(c[w.is_head], c[rest]).pvalue
    _both(draws, "western_head", ranks)
    _both(draws, "western_head", counts)


def _persons(gt):
    person = gt["has_person"]
    return gt["gender"][person], gt["occupation"][person]


def test_stereotype(draws):
    """P(the stereotyped member of an occupation pair | gender) = 0.5 for each gender (binomial, Bonferroni over 2)."""
    def half(w, ids, gt):
        gender, occupation = _persons(gt)
        stereotyped = (occupation % 2) == gender  # a pair's first member is the female-associated one
        return 2 * min(stats.binomtest(int(stereotyped[gender == g].sum()), int((gender == g).sum()), 0.5).pvalue
                       for g in (0, 1))
    _both(draws, "stereotype", half)


def test_gender_skew(draws):
    def half(w, ids, gt):
        gender, _ = _persons(gt)
        return stats.binomtest(int(gender.sum()), len(gender), 0.5).pvalue
    _both(draws, "gender_skew", half)


def test_income_skew(draws):
    """Income | country against Dollar Street's own mix, for the drawn examples of countries with at least 20 Dollar
    Street homes: the observed counts minus their expectation, a chi-square with 3 df under their exact covariance."""
    ds = vocab.load("dollar_street")["country_income_counts"]

    def dollar_street(w, ids, gt):
        mix = np.array([np.asarray(ds.get(c, [0, 0, 0, 0]), float) for c in w.country_codes])
        own = mix.sum(1) >= 20
        sel = own[gt["country"]]
        p = (mix / np.maximum(mix.sum(1, keepdims=True), 1))[gt["country"][sel]]
        dev = (np.bincount(gt["income"][sel], minlength=4) - p.sum(0))[:3]
        cov = (np.diag(p.sum(0)) - p.T @ p)[:3, :3]
        return stats.chi2.sf(dev @ np.linalg.solve(cov, dev), 3)
    _both(draws, "income_skew", dollar_street)


def test_income_appearance(draws, world):
    """An image is unchanged when its example's income changes (exactly), with everything else kept."""
    ids = pool_ids(world, 20_000)[::80]
    hi, lo = id_words(ids)
    for name, same in ((None, False), ("income_appearance", True)):
        w, _, gt = draws(name, ids)
        moved = dict(gt, income=(gt["income"] + 1) % 4)
        assert np.array_equal(render(w, gt, hi, lo, 32), render(w, moved, hi, lo, 32)) == same, name


def test_regional_variants(draws):
    default, ablated = draws()[2], draws("regional_variants")[2]
    assert (default["variant"] >= 0).mean() > 0.05
    assert (ablated["variant"] == -1).all()
    # the concepts drawn are the same; only their look lost its region
    assert np.array_equal(default["concept"], ablated["concept"])


# --- the switches and overlays themselves ---------------------------------------------------------------------------

# The default (cpu) world's first examples as they were before the mechanism switches existed: truth and captions
# exactly; images by their sum and sum of squares (float32 maths may differ in the last bit between CPUs).
BEFORE = {"cpu": ("fddc25005762c8e0", 83326.40935898945, 38574.367371884204),
          "study": ("0757ed5f0936fbf1", 83795.68326722458, 38870.97409847978)}


@pytest.mark.parametrize("profile", sorted(BEFORE))
def test_switches_at_their_defaults_leave_the_world_as_it_was(profile):
    w = build_world(load_params(ROOT / "params.yaml", profile).world)
    ids = make_ids(np.arange(512) % 37, np.arange(512) * 7919 + 3)
    gt = truth(w, ids)
    h = hashlib.sha256()
    for k in sorted(gt):
        h.update(np.ascontiguousarray(gt[k]).tobytes())
    h.update("|".join(captions(w, ids)).encode())
    images = render_ids(w, ids[:64], 32).astype(np.float64)
    digest, total, squares = BEFORE[profile]
    assert h.hexdigest()[:16] == digest
    assert images.sum() == pytest.approx(total, rel=1e-7) and (images ** 2).sum() == pytest.approx(squares, rel=1e-7)


@pytest.mark.parametrize("profile", PROFILES)
def test_every_ablation_is_a_valid_world_that_differs_only_where_it_says(profile):
    world = load_params(ROOT / "params.yaml", profile).world
    for name, a in ABLATIONS.items():
        off = ablate(world, name)
        changed = {k for k, v in off.model_dump().items() if v != world.model_dump()[k]}
        assert changed == set(a.overlay(world)), name
        assert build_world(off).fingerprint() != build_world(world).fingerprint()


def test_ablations_name_what_is_wrong(params):
    with pytest.raises(ValueError, match="unknown ablation.*'no_such'.*allowed: region_noise"):
        ablation_names("stereotype,no_such")
    assert ablation_names(None) == ablation_names("all") == list(ABLATIONS)
    with pytest.raises(ValueError, match="stereotype: the world block already has the gender-occupation stereotype "
                                         "switched off"):
        ablate(ablate(params.world, "stereotype"), "stereotype")


def test_switched_off_worlds_render_alike_in_numpy_and_jax(params):
    """The switches act in the code both namespaces share: the accelerator renders the same switched-off world."""
    from vlscale.world.render import render_jax

    w = build_world(ablate(ablate(params.world, "income_appearance"), "regional_variants"))
    ids = pool_ids(w, 20_000)[::313]
    hi, lo = id_words(ids)
    assert np.abs(np.asarray(render_jax(w, 32)(hi, lo)) - render_ids(w, ids, 32)).max() <= 1e-4
