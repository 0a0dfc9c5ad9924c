"""The NumPy and JAX renderers draw the same pictures, and pictures encode the ground truth."""
import numpy as np
import pytest

from vlscale.world.hashing import id_words
from vlscale.world.ids import make_ids
from vlscale.world.render import render_ids, render_jax, to_uint8
from vlscale.world.truth import ground_truth, truth

# Stated tolerance: float32 transcendental functions differ in the last bits between NumPy and XLA;
# anti-aliased edges scale that by up to ~px/2. Max |difference| 1e-4; after uint8 quantisation at most
# one level, on fewer than 0.01% of values.
FLOAT_TOL = 1e-4
UINT8_DIFF_FRAC = 1e-4


@pytest.fixture(scope="module")
def ids():
    return make_ids(np.arange(96) % 37, np.arange(96) * 7919 + 3)


def test_ground_truth_is_bit_identical_in_numpy_and_jax(world, ids):
    import jax
    import jax.numpy as jnp

    hi, lo = id_words(ids)
    a = ground_truth(world, hi, lo, np)
    b = jax.jit(lambda h, lo_: ground_truth(world, h, lo_, jnp))(hi, lo)
    for k in a:
        assert np.array_equal(np.asarray(a[k]), np.asarray(b[k])), k


@pytest.mark.parametrize("px", [32, 64, 224])
def test_numpy_and_jax_renderers_agree_within_tolerance(world, ids, px):
    hi, lo = id_words(ids)
    a = render_ids(world, ids, px)
    b = np.asarray(render_jax(world, px)(hi, lo))
    assert a.shape == b.shape == (len(ids), px, px, 3) and a.dtype == b.dtype == np.float32
    assert np.abs(a - b).max() <= FLOAT_TOL
    qa, qb = to_uint8(a).astype(int), to_uint8(b).astype(int)
    assert np.abs(qa - qb).max() <= 1 and np.mean(qa != qb) <= UINT8_DIFF_FRAC


def test_images_are_in_range_and_repeatable(world, ids):
    a, b = render_ids(world, ids, 32), render_ids(world, ids, 32)
    assert np.array_equal(a, b)
    assert a.min() >= 0.0 and a.max() <= 1.0 and a.std() > 0.05


def test_the_same_concept_looks_alike_and_different_concepts_differ(world):
    """1-nearest-neighbour on colour histograms of five concepts beats chance (0.2) by far."""
    ids = make_ids(world.stratum_of("en"), np.arange(40_000))
    gt = truth(world, ids)
    top = np.argsort(np.bincount(gt["concept"]))[::-1][:5]
    x, y = [], []
    for label, k in enumerate(top):
        sel = ids[(gt["concept"] == k) & ~gt["has_person"]][:120]
        img = render_ids(world, sel, 32)
        # colour histograms are invariant to the nuisance position and rotation
        hist = np.stack([np.histogramdd(i.reshape(-1, 3), bins=4, range=[(0, 1)] * 3)[0].ravel() for i in img])
        x.append(np.sqrt(hist / hist.sum(1, keepdims=True)))
        y.append(np.full(len(sel), label))
    x, y = np.concatenate(x), np.concatenate(y)
    train = np.arange(len(y)) % 2 == 0
    nearest = np.argmin(((x[~train, None, :] - x[None, train, :]) ** 2).sum(-1), axis=1)
    assert np.mean(y[train][nearest] == y[~train]) > 0.8


def test_person_changes_the_picture(world):
    ids = make_ids(world.stratum_of("en"), np.arange(2000))
    gt = truth(world, ids)
    with_person = ids[gt["has_person"]][:20]
    img = render_ids(world, with_person, 64)
    colors = np.stack([world.tables["vis_occupation_color"][o] for o in truth(world, with_person)["occupation"]])
    # the occupation colour is present in the image where the figure is drawn
    dist = np.abs(img - colors[:, None, None, :]).sum(-1).min(axis=(1, 2))
    assert np.all(dist < 0.05)


def test_background_tints_set_how_much_the_country_shows():
    from vlscale.world.render import BACKGROUND_GREY, visual_tables

    regions = np.array([0, 0, 3, 5])
    plain = visual_tables(0, 20, 18, regions, 0.0, 0.0)["vis_country_bg"]
    assert np.allclose(plain, BACKGROUND_GREY)  # no tint: where a picture is from does not show
    by_region = visual_tables(0, 20, 18, regions, 0.3, 0.0)["vis_country_bg"]
    assert np.allclose(by_region[0], by_region[1]) and not np.allclose(by_region[0], by_region[2])
    tinted = visual_tables(0, 20, 18, regions, 0.3, 0.1)["vis_country_bg"]
    assert not np.allclose(tinted[0], tinted[1])  # the country's own tint separates same-region countries
    assert np.abs(tinted - by_region).max() <= 0.1 + 1e-6
    # the concepts' look does not depend on the tints
    assert all(np.array_equal(visual_tables(0, 20, 18, regions, 0.3, 0.1)[k], visual_tables(0, 20, 18, regions, 0, 0)[k])
               for k in ("vis_shape", "vis_color_a", "vis_color_b", "vis_freq"))


def test_person_scale_sets_the_figures_area_and_nothing_else(world, params):
    """The figure's drawn area grows as person_scale squared; images without a person are unchanged."""
    from vlscale.world.spec import build_world

    ids = make_ids(world.stratum_of("en"), np.arange(3000))
    gt = truth(world, ids)
    people, empty = ids[gt["has_person"]][:40], ids[~gt["has_person"]][:20]
    big = build_world(params.world.model_copy(update={"person_scale": 2.0}))
    colors = np.stack([world.tables["vis_occupation_color"][o] for o in gt["occupation"][gt["has_person"]][:40]])

    def figure_px(w):
        img = render_ids(w, people, 64)
        return (np.abs(img - colors[:, None, None, :]).sum(-1) < 1e-3).sum(axis=(1, 2))

    ratio = np.median(figure_px(big) / np.maximum(figure_px(world), 1))
    assert 3.0 < ratio < 5.0, ratio
    assert np.array_equal(render_ids(big, empty, 32), render_ids(world, empty, 32))
