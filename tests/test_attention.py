"""The attention stage's focus scores on planted maps whose answer is known, its blind baselines, its probe set,
and its summary's evidence for finding 8."""
import json

import numpy as np
import pandas as pd
import pytest

from vlscale.analysis.evidence import pooled_seed_variance
from vlscale.attention.baselines import centre_prior, derangement, prior_scores, shuffled_scores
from vlscale.attention.focus import focus_scores, head_mean, mask_geometry, peak_concentration, upsample
from vlscale.attention.groups import GROUPS
from vlscale.attention.probe import PRIOR_SPLIT, concept_groups, probe_masks, probe_set
from vlscale.attention.stage import Blind, summarise
from vlscale.world.ids import HELDOUT_BIT


def _masks(n=6, px=32, seed=0):
    """Random discs and boxes, some cutting through patch edges."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:px, :px] + 0.5
    out = []
    for _ in range(n):
        cy, cx, r = rng.uniform(6, px - 6, 2).tolist() + [rng.uniform(2, 7)]
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        out.append(disc if rng.random() < 0.5 else (abs(yy - cy) <= r) & (abs(xx - cx) <= r / 2))
    return np.stack(out)


def test_all_mass_on_the_object_scores_one_and_a_uniform_map_its_area_share():
    masks = _masks()
    on_object = focus_scores(masks.astype(float), masks, radius_px=2)
    np.testing.assert_allclose(on_object["energy"], 1.0)
    assert on_object["hit"].all()
    uniform = focus_scores(np.ones((len(masks), 4, 4)), masks, radius_px=2)
    np.testing.assert_allclose(uniform["energy"], masks.mean(axis=(1, 2)))
    np.testing.assert_allclose(uniform["lift"], 1.0)
    off_object = focus_scores((~masks).astype(float), masks, radius_px=0)
    np.testing.assert_allclose(off_object["energy"], 0.0)


def test_energy_bound_is_attained_by_the_one_hot_at_the_most_covered_cell_and_no_map_beats_it():
    masks = _masks(n=20, seed=1)
    cover = masks.reshape(-1, 4, 8, 4, 8).mean(axis=(2, 4))
    best = cover.reshape(len(masks), -1).argmax(axis=1)
    one_hot = np.zeros((len(masks), 16))
    one_hot[np.arange(len(masks)), best] = 1
    s = focus_scores(one_hot.reshape(-1, 4, 4), masks, radius_px=2)
    np.testing.assert_allclose(s["energy"], s["energy_bound"])
    np.testing.assert_allclose(s["energy_bound"], cover.reshape(len(masks), -1).max(axis=1))
    patch_mean = focus_scores(cover, masks, radius_px=2)  # the mask's own patch means: not a ceiling
    assert (patch_mean["energy"] <= s["energy_bound"] + 1e-12).all()
    assert (patch_mean["energy"] < s["energy_bound"] - 0.05).any()
    rng = np.random.default_rng(2)
    for _ in range(5):  # no patch map does better than the bound
        other = focus_scores(rng.dirichlet(np.ones(16) * 0.3, len(masks)).reshape(-1, 4, 4), masks, radius_px=2)
        assert (other["energy"] <= s["energy_bound"] + 1e-12).all()
    for cell in range(16):  # nor any one-hot
        m = np.zeros((len(masks), 16))
        m[:, cell] = 1
        assert (focus_scores(m.reshape(-1, 4, 4), masks, 2)["energy"] <= s["energy_bound"] + 1e-12).all()


def test_random_maps_score_chance():
    """The chance check: maps that know nothing of the image average the area share and the random-peak rate."""
    masks = _masks(n=400, seed=3)
    rng = np.random.default_rng(4)
    s = focus_scores(rng.dirichlet(np.ones(16), len(masks)).reshape(-1, 4, 4), masks, radius_px=2)
    assert abs(s["energy"].mean() - s["area"].mean()) < 0.01
    assert abs(s["hit"].mean() - s["hit_chance"].mean()) < 3 * np.sqrt(0.25 / len(masks))


def test_the_pointing_game_and_its_chance_rate_by_brute_force():
    masks = _masks(n=30, seed=5)
    rng = np.random.default_rng(6)
    maps = rng.random((len(masks), 4, 4))
    radius = 2.5
    s = focus_scores(maps, masks, radius)
    centres = (np.stack(np.meshgrid(np.arange(4), np.arange(4), indexing="ij"), -1).reshape(-1, 2) + 0.5) * 8
    for i, m in enumerate(masks):
        pix = np.argwhere(m) + 0.5
        near = [(np.hypot(*(pix - c).T) <= radius).any() for c in centres]
        assert s["hit"][i] == near[maps[i].argmax()]
        assert s["hit_chance"][i] == pytest.approx(np.mean(near))
        assert s["peak"][i] == maps[i].argmax()


def test_bad_maps_and_masks_are_refused():
    masks = _masks(n=2)
    with pytest.raises(ValueError, match="bool"):
        focus_scores(np.ones((2, 4, 4)), masks.astype(float), 2)
    with pytest.raises(ValueError, match="non-negative"):
        focus_scores(-np.ones((2, 4, 4)), masks, 2)
    with pytest.raises(ValueError, match="whole cells"):
        focus_scores(np.ones((2, 5, 5)), masks, 2)
    with pytest.raises(ValueError, match="empty"):
        focus_scores(np.ones((2, 4, 4)), np.zeros_like(masks), 2)
    with pytest.raises(ValueError, match="patch grid"):
        head_mean(np.ones((2, 4, 1, 12)), (4, 4))
    with pytest.raises(ValueError, match="'b' has 1 image"):
        derangement(np.array(["a", "a", "b"]), np.random.default_rng(0))
    geo = mask_geometry(masks, (4, 4), 2)
    with pytest.raises(ValueError, match="derangement"):
        shuffled_scores(np.ones((2, 4, 4)), geo, np.array([0, 1]))


def test_head_mean_and_display_upsampling():
    w = np.random.default_rng(0).dirichlet(np.ones(16), (3, 4))[:, :, None, :]  # [B, heads, 1, N]
    m = head_mean(w, (4, 4))
    np.testing.assert_allclose(m.sum(axis=(1, 2)), 1.0, rtol=1e-6)
    np.testing.assert_allclose(m[1, 2, 3], w[1, :, 0, 2 * 4 + 3].mean(), rtol=1e-6)
    np.testing.assert_allclose(upsample(np.full((1, 4, 4), 1 / 16), 32), 1.0, rtol=1e-6)
    assert peak_concentration(np.zeros(10, int), 16) == 1.0
    assert peak_concentration(np.arange(16), 16) == pytest.approx(1 / 16)


def test_the_probe_set_is_held_out_balanced_and_without_people(world):
    probe = probe_set(world, 12, key=1)
    assert len(probe.ids) == 48
    assert (probe.ids >> HELDOUT_BIT & 1).all()
    assert probe.meta["group"].value_counts().to_dict() == {g: 12 for g in GROUPS}
    assert not probe.meta["has_person"].any()
    group = concept_groups(world)
    concept_index = {c["key"]: k for k, c in enumerate(world.concepts)}
    assert all(GROUPS[group[concept_index[c]]] == g for c, g in zip(probe.meta["concept"], probe.meta["group"]))
    assert (probe.meta.loc[probe.meta["group"] == "landmark", "is_landmark"]).all()
    np.testing.assert_array_equal(probe_set(world, 12, key=1).ids, probe.ids)
    assert not np.isin(probe_set(world, 12, key=2).ids, probe.ids).any()
    masks = probe_masks(world, probe.ids, 32)
    assert masks.dtype == bool and (masks.mean(axis=(1, 2)) > 0).all()


# ------------------------------------------------------------------------------------------------ blind baselines

PX, GRID, PER_GROUP, KEY = 32, (4, 4), 60, 1


@pytest.fixture(scope="module")
def real(world):
    """Probe images of the world rendered by its renderer, with their masks and blind baselines (cpu px, grid)."""
    probe = probe_set(world, PER_GROUP, KEY)
    masks = probe_masks(world, probe.ids, PX)
    radius = 0.067 * PX
    return probe, masks, radius, Blind(world, PER_GROUP, KEY, PX, masks, GRID, radius)


def test_the_centre_prior_beats_a_random_peak_and_a_uniform_map_on_real_probe_masks(real):
    _, _, _, blind = real
    area, chance = blind.geo.area.mean(), blind.geo.near.mean()
    n = len(blind.geo.area)
    assert blind.prior_hit.mean() > chance + 4 * np.sqrt(0.25 / n)
    assert blind.prior_energy.mean() > 2 * area
    # and the prior's two cells are central cells of the 4x4 grid (objects sit near the centre)
    for cell in (blind.prior.energy_cell, blind.prior.hit_cell):
        assert np.unravel_index(cell, GRID) in {(1, 1), (1, 2), (2, 1), (2, 2)}


def test_the_centre_prior_is_chosen_on_images_other_than_the_scored_ones(world, real):
    probe, masks, radius, blind = real
    prior = probe_set(world, PER_GROUP, KEY, PRIOR_SPLIT)
    np.testing.assert_array_equal(blind.prior_ids, prior.ids)
    assert not np.isin(blind.prior_ids, probe.ids).any()
    assert (prior.ids >> HELDOUT_BIT & 1).all()
    assert prior.meta["group"].value_counts().to_dict() == probe.meta["group"].value_counts().to_dict()
    # the prior's statistics are those of its own images, not of the scored ones
    np.testing.assert_allclose(blind.prior.mean_cover, blind.prior_geo.cover.mean(axis=0))
    assert not np.allclose(blind.prior.mean_cover, blind.geo.cover.mean(axis=0))
    chosen = centre_prior(blind.prior_geo)
    assert (blind.prior.energy_cell, blind.prior.hit_cell) == (chosen.energy_cell, chosen.hit_cell)
    # its scores on the probe images are its one-hot maps scored like a model's
    one_hot = np.zeros((len(masks), 16))
    one_hot[:, blind.prior.energy_cell] = 1
    np.testing.assert_allclose(blind.prior_energy, focus_scores(one_hot.reshape(-1, 4, 4), masks, radius)["energy"])


def test_the_centre_prior_is_the_best_content_free_map_on_its_own_images(real):
    _, _, _, blind = real
    geo = blind.prior_geo
    energy, hit = prior_scores(blind.prior, geo)
    rng = np.random.default_rng(0)
    for s in [np.ones(16), *rng.dirichlet(np.ones(16) * 0.5, 20), *np.eye(16)]:  # one map for every image
        maps = np.repeat(s.reshape(1, 4, 4), len(geo.area), axis=0)
        e = (maps / maps.sum(axis=(1, 2), keepdims=True) * geo.cover).sum(axis=(1, 2))
        assert e.mean() <= energy.mean() + 1e-12
        assert geo.near[:, int(s.argmax())].mean() <= hit.mean() + 1e-12


def _centred_maps(masks, grid=(4, 4), width=0.6):
    """Maps that peak where the object is: a Gaussian on the grid around the mask's centre of mass."""
    px = masks.shape[1]
    yy, xx = (np.mgrid[:grid[0], :grid[1]] + 0.5) * (px / grid[0])
    centres = np.array([np.argwhere(m).mean(axis=0) + 0.5 for m in masks])
    d2 = (yy[None] - centres[:, 0, None, None]) ** 2 + (xx[None] - centres[:, 1, None, None]) ** 2
    return np.exp(-d2 / (2 * (width * px / grid[0]) ** 2))


def test_a_shuffled_map_scores_below_the_true_map_for_object_centred_maps():
    masks = _masks(n=200, seed=7)
    groups = np.repeat(np.array(GROUPS), 50)
    partner = derangement(groups, np.random.default_rng(0))
    assert (partner != np.arange(200)).all() and (groups[partner] == groups).all()
    np.testing.assert_array_equal(np.sort(partner), np.arange(200))
    np.testing.assert_array_equal(partner, derangement(groups, np.random.default_rng(0)))  # fixed by its seed
    maps = _centred_maps(masks)
    geo = mask_geometry(masks, (4, 4), 2.0)
    true = focus_scores(maps, masks, 2.0, geo)
    energy, hit = shuffled_scores(maps, geo, partner)
    np.testing.assert_allclose(energy, focus_scores(maps[partner], masks, 2.0)["energy"])
    assert true["energy"].mean() > energy.mean() + 0.1
    assert true["hit"].mean() > hit.mean() + 0.2


# ------------------------------------------------------------------------------------------------ the summary

def _checkpoint(run, seen, pct, seed, energy, curation="natural", model="m", rng=None):
    """focus rows of one checkpoint: energy per group [len(GROUPS), n]; the other columns follow from it."""
    rng = rng or np.random.default_rng(0)
    frames = []
    for g, e in zip(GROUPS, energy):
        n = len(e)
        frames.append(pd.DataFrame(dict(
            run=run, examples_seen=seen, model=model, data_pct=pct, curation=curation, seed=seed, image=np.arange(n),
            energy=e, area=0.1, lift=e / 0.1, hit=e > 0.2, hit_chance=0.2, energy_bound=0.6,
            peak=rng.integers(0, 16, n), object_peak=rng.integers(0, 16, n), shuffled_energy=e - 0.05,
            shuffled_hit=e - 0.05 > 0.2, prior_energy=np.linspace(0.1, 0.2, n), prior_hit=np.arange(n) % 3 == 0,
            partner=(np.arange(n) + 1) % n, group=g)))
    return pd.concat(frames, ignore_index=True)


def _planted(gains: dict, seeds=(0,), n=60, seed=0, seed_sd=0.0, image_sd=0.0, seen=100):
    """Three natural scales whose energy is a per-image base plus a planted gain per scale and group, plus a
    per-run offset (seed_sd: training noise) and per-run image noise (image_sd)."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.1, 0.3, (len(GROUPS), n))
    frames = []
    for k, pct in enumerate((1.0, 10.0, 100.0)):
        for s in seeds:
            e = base + np.array([gains[g] * k for g in GROUPS])[:, None] + rng.normal(0, seed_sd) \
                + rng.normal(0, image_sd, base.shape)
            frames.append(_checkpoint(f"s{int(pct)}_{s}", seen, pct, s, e, rng=rng))
    return pd.concat(frames, ignore_index=True)


def _diffs(summary, **labels):
    """The evidence records (in pp) whose labels match, by scale."""
    rows = [d for d in summary["evidence"].values() if all(d[k] == v for k, v in labels.items())]
    return sorted(rows, key=lambda d: (d["from_pct"] or 0, d["data_pct"] or 0))


def test_the_evidence_finds_a_planted_rise_that_is_larger_on_the_long_tail():
    gains = {"culture": 0.05, "regional": 0.05, "landmark": 0.05, "head": 0.01}
    s = summarise(_planted(gains, seeds=(0, 1), seed_sd=0.002), 16, 200)
    json.dumps(s["evidence"])  # JSON as it stands
    assert all(name == r["name"] and name.startswith(("attention/", "attention_context/")) and
               r["claim"] == name.startswith("attention/") for name, r in s["evidence"].items())
    steps = _diffs(s, comparison="step", score="energy", group="cultural")
    assert [d["name"] for d in steps] == ["attention/step/energy/cultural/1_to_10",
                                          "attention/step/energy/cultural/10_to_100"]
    assert [(d["a"], d["b"]) for d in steps] == [("natural@10%", "natural@1%"), ("natural@100%", "natural@10%")]
    np.testing.assert_allclose([d["effect"] for d in steps], 5.0, atol=1.0)  # pp
    assert all(d["lo"] > 0 and d["seeds_measured"] and d["separable"] and d["n_a"] == 2 for d in steps)
    (contrast,) = _diffs(s, comparison="long_tail_minus_head", score="energy", group="cultural")
    assert (contrast["from_pct"], contrast["to_pct"]) == (1.0, 100.0)
    assert contrast["effect"] == pytest.approx(8.0, abs=1.0) and contrast["lo"] > 0
    assert {c["n_seeds"] for c in s["evidence_setup"]["models"]["m"]["configurations"]} == {2}


def test_the_evidence_interval_covers_zero_at_the_nominal_rate_where_nothing_was_planted():
    """Training noise (a per-run offset) larger than the test images' noise: an interval over the images alone
    would cover zero about 60% of the time; with the seed variance it covers at about 95%."""
    covered, effects = [], []
    for rep in range(80):
        s = summarise(_planted({g: 0.0 for g in GROUPS}, seeds=(0, 1, 2), n=30, seed=rep, seed_sd=0.02,
                               image_sd=0.01), 16, 100)
        (d,) = [x for x in _diffs(s, comparison="step", score="energy", group="all") if x["from_pct"] == 1.0]
        covered.append(d["lo"] <= 0 <= d["hi"])
        effects.append(d["effect"])
    assert np.all(np.abs(effects) > 0)  # noise is present: no difference is exactly zero
    assert 0.88 <= np.mean(covered) <= 0.99, np.mean(covered)  # nominal 0.95; 80 repeats leave about ±0.05
    assert np.std(effects) > 1.0  # pp: the training noise shows in the effects, and the intervals carry it


def test_the_evidence_reads_the_seed_null_at_the_examples_seen_of_the_steps():
    """Two seeds per scale at the final checkpoint (seed sd ~0.01) and, at an earlier checkpoint, a curated
    configuration with two seeds and a far larger spread: the steps' seed variance is the final checkpoint's."""
    rng = np.random.default_rng(0)
    base = rng.uniform(0.1, 0.3, (len(GROUPS), 40))
    frames, finals = [], {}
    for pct, offsets in ((1.0, (0.0, 0.01)), (10.0, (0.05, 0.07)), (100.0, (0.1, 0.1 - 0.015))):
        for s, off in enumerate(offsets):
            frames.append(_checkpoint(f"s{int(pct)}_{s}", 200, pct, s, base + off, rng=rng))
            frames.append(_checkpoint(f"s{int(pct)}_{s}", 66, pct, s, base + off / 3, rng=rng))
            finals.setdefault(pct, []).append(float((base + off).mean()))
    for s, off in enumerate((0.0, 0.3)):  # the early null, far noisier
        frames.append(_checkpoint(f"f_random_{s}", 66, 10.0, s + 1, base + off, curation="filter/random", rng=rng))
    summary = summarise(pd.concat(frames, ignore_index=True), 16, 100)
    setup = summary["evidence_setup"]["models"]["m"]
    assert setup["examples_seen"] == 200
    s2, df = pooled_seed_variance(finals.values())
    for d in _diffs(summary, comparison="step", score="energy", group="all"):
        assert d["examples_seen"] == 200
        assert d["seed_sd"] == pytest.approx(100 * np.sqrt(s2)) and d["seed_df"] == df == 3  # pp
    joined = summarise(pd.concat(frames, ignore_index=True), 16, 100, keep_pct=10.0)  # the random arm as 10% data
    assert _diffs(joined, comparison="step") == _diffs(summary, comparison="step")
    (row,) = [v for v in setup["seed_variance"]
              if (v["quantity"], v["group"], v["score"]) == ("score", "all", "energy")]
    assert len(row["pooled_over"]) == 3 and row["seed_df"] == 3
    assert [c["n_seeds"] for c in setup["configurations"]] == [2, 2, 2]
    # with replicates only at the earlier checkpoint, the final's training noise is unmeasured, not borrowed
    single = summarise(pd.concat([f for f in frames if not f["run"].iloc[0].endswith("_1")
                                  or f["run"].iloc[0].startswith("f_random")], ignore_index=True), 16, 100)
    steps = _diffs(single, comparison="step", score="energy", group="all")
    assert steps and not any(d["seeds_measured"] for d in steps)
    assert any("not measured" in n for n in single["notes"])


def test_the_baselines_evidence_has_no_training_noise_on_the_baseline_side():
    """Two seeds at 10% and 100%, one at 1%: a baseline is no trained model, so its difference counts the model's
    seeds only (seed_var / n_A), and one seed of the model is separable once the seed variance is measured."""
    focus = _planted({g: 0.02 for g in GROUPS}, seeds=(0, 1), seed_sd=0.01, image_sd=0.02)
    s = summarise(focus[focus["run"] != "s1_1"], 16, 200)
    means = pd.DataFrame(s["means"])
    found = _diffs(s, comparison="centre_prior", score="energy", group="all") + \
        _diffs(s, comparison="shuffled", score="energy", group="all")
    assert len(found) == 6 and not any(d["claim"] for d in found)
    for d in found:
        runs = means[(means["run"].isin(d["runs_a"])) & (means["pool"] == "all")]
        if d["baseline"] == "centre_prior":
            expect = runs[runs["metric"] == "energy"]["value"].mean() - runs[runs["metric"] == "prior_energy"][
                "value"].iloc[0]
        else:
            expect = 0.05  # the planted shuffled maps score 0.05 below the model's
        assert d["effect"] == pytest.approx(100 * expect, abs=1e-9)  # pp
        assert d["effect"] == pytest.approx(d["a_value"] - d["b_value"], abs=1e-9)
        assert d["n_b"] == 1 and d["n_a"] == (1 if d["data_pct"] == 1.0 else 2)
        assert d["seeds_measured"] and d["separable"] and d["seed_df"] == 2
        seed_part = d["se"] ** 2 - d["image_se"] ** 2
        assert seed_part == pytest.approx(d["seed_sd"] ** 2 / d["n_a"], rel=1e-9)
