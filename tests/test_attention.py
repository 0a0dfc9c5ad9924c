"""The attention stage's focus scores on planted maps whose answer is known, its probe set, and its summary."""
import numpy as np
import pandas as pd
import pytest

from vlscale.attention.focus import focus_scores, head_mean, peak_concentration, upsample
from vlscale.attention.groups import GROUPS
from vlscale.attention.probe import concept_groups, probe_masks, probe_set
from vlscale.attention.stage import summarise
from vlscale.data.ids import HELDOUT_BIT


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


def test_the_oracle_map_is_the_patch_grids_ceiling():
    masks = _masks(n=20, seed=1)
    cover = masks.reshape(-1, 4, 8, 4, 8).mean(axis=(2, 4))
    s = focus_scores(cover, masks, radius_px=2)
    np.testing.assert_allclose(s["energy"], s["oracle_energy"])
    rng = np.random.default_rng(2)
    for _ in range(5):  # no patch map does better than the oracle
        other = focus_scores(rng.dirichlet(np.ones(16), len(masks)).reshape(-1, 4, 4), masks, radius_px=2)
        assert (other["energy"] <= s["oracle_energy"] + 1e-12).all()


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


def _planted_focus(gains: dict, n=60, seed=0):
    """focus rows of three natural scales whose energy is the group's base plus a planted gain per scale."""
    rng = np.random.default_rng(seed)
    rows = []
    base = {g: rng.uniform(0.1, 0.3, n) for g in GROUPS}
    for k, pct in enumerate((1.0, 10.0, 100.0)):
        for g in GROUPS:
            e = base[g] + gains[g] * k
            rows.append(pd.DataFrame(dict(run=f"s{int(pct)}", examples_seen=100, data_pct=pct, curation="natural",
                                          seed=0, image=np.arange(n), energy=e, area=0.1, lift=e / 0.1,
                                          hit=e > 0.2, hit_chance=0.2, oracle_energy=0.5, group=g,
                                          peak=rng.integers(0, 16, n), object_peak=rng.integers(0, 16, n))))
    return pd.concat(rows, ignore_index=True)


def test_the_summary_finds_a_planted_rise_that_is_larger_on_the_long_tail():
    s = summarise(_planted_focus({"culture": 0.05, "regional": 0.05, "landmark": 0.05, "head": 0.01}), 16, 200)
    scale = pd.DataFrame(s["scale"])
    e = scale[(scale["metric"] == "energy") & (scale["pool"] == "cultural")]
    np.testing.assert_allclose(e["diff"], [0.05, 0.05, 0.10])
    assert (e["lo"] > 0).all()
    verdict = s["finding8"]["energy"]
    assert verdict["cultural"]["rises_each_step"] and verdict["cultural"]["each_step_significant"]
    assert verdict["more_on_cultural"]["diff"] == pytest.approx(0.08)
    assert verdict["more_on_cultural"]["significant"]


def test_the_summary_finds_nothing_where_nothing_was_planted():
    s = summarise(_planted_focus({g: 0.0 for g in GROUPS}), 16, 200)
    verdict = s["finding8"]["energy"]
    assert not verdict["cultural"]["each_step_significant"]
    assert verdict["more_on_cultural"]["diff"] == pytest.approx(0.0, abs=1e-12)
    assert not verdict["more_on_cultural"]["significant"]
