"""The exact account of what a filter arm removed: every pool pair's truth is known, so nothing is estimated.

For each grouping of the pool's pairs (page language, caption language, language group, region, income
group, concept group, caption kind) and each group g, with pool_g pairs of which kept_g are kept:
- removed_g = pool_g - kept_g (the identity pool = kept + removed is checked, per group and in total);
- removal_rate = removed_g / pool_g;
- pool_share, kept_share: g's share of the pool and of the kept set;
- representation_ratio = kept_share / pool_share (< 1: the filter under-represents g; Hong et al. 2024).
Noise removal is a detection problem: a pair is noise when its caption is misaligned or vague, and
precision = noisy removed / removed, recall = noisy removed / noisy in the pool. `shares` reads the
headline mixes off an account: the share of each arm's kept set (and of the pool) with an English caption,
and with a culture-specific or landmark concept (the planted arm excludes these and the concepts with regional
variants).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from vlscale.config import REGIONS

INCOME_GROUPS = ("0-200", "200-685", "685-1998", ">1998")  # Dollar Street's, $ per month (groups.INCOME)
CAPTION_KINDS = ("clean", "misaligned", "vague")
CONCEPT_GROUPS = ("western_head", "tail", "culture_specific", "landmark")
GROUPINGS = ("language", "caption_language", "language_group", "region", "income", "concept_group", "caption_kind")
SHARES = {"english_caption_share": ("caption_language", ("en",)),
          "culture_or_landmark_share": ("concept_group", ("culture_specific", "landmark"))}


def concept_group(world, concept: np.ndarray) -> np.ndarray:
    """Per concept index: 0 Western head (ImageNet-like), 1 tail (other everyday concepts), 2 culture-specific,
    3 landmark (CONCEPT_GROUPS)."""
    group = np.ones(len(world.concepts), np.int64)
    group[world.is_head] = 0
    group[world.culture_region >= 0] = 2
    group[world.landmark_start:] = 3
    return group[np.asarray(concept)]


def labels(world, gt: dict) -> dict[str, np.ndarray]:
    """Each pair's group in every grouping (string arrays), from its ground truth (world.truth.truth): language
    is the page's (its stratum), caption_language the caption's."""
    return {
        "language": np.asarray(world.strata)[gt["stratum"]],
        "caption_language": np.asarray(world.strata)[gt["caption_language"]],
        "language_group": np.asarray(world.resource_group)[gt["stratum"]],
        "region": np.asarray(REGIONS)[gt["region"]],
        "income": np.asarray(INCOME_GROUPS)[gt["income"]],
        "concept_group": np.asarray(CONCEPT_GROUPS)[concept_group(world, gt["concept"])],
        "caption_kind": np.asarray(CAPTION_KINDS)[gt["caption_kind"]],
    }


def count_table(groups: dict[str, np.ndarray], kept: dict[str, np.ndarray]) -> pd.DataFrame:
    """Additive counts of one shard (or the pool): one row per (arm, grouping, group) with pool and kept.
    groups: labels(); kept: arm -> bool [N], the arm's membership of each pair. Shards' tables add up."""
    rows = []
    n = len(next(iter(groups.values())))
    for grouping, g in groups.items():
        if len(g) != n:
            raise ValueError(f"grouping {grouping!r} labels {len(g)} pairs, the first grouping {n}")
        names, inverse = np.unique(g, return_inverse=True)
        pool = np.bincount(inverse, minlength=len(names))
        for arm, mask in kept.items():
            mask = np.asarray(mask, bool)
            if len(mask) != n:
                raise ValueError(f"arm {arm!r} marks {len(mask)} pairs, the groupings label {n}")
            kept_g = np.bincount(inverse, weights=mask, minlength=len(names)).astype(np.int64)
            rows += [{"arm": arm, "grouping": grouping, "group": name, "pool": int(p), "kept": int(k)}
                     for name, p, k in zip(names.tolist(), pool.tolist(), kept_g.tolist())]
    return pd.DataFrame(rows, columns=["arm", "grouping", "group", "pool", "kept"])


def add_counts(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """The sum of shards' count tables."""
    return pd.concat(tables).groupby(["arm", "grouping", "group"], as_index=False, sort=True)[["pool", "kept"]].sum()


def finish(counts: pd.DataFrame) -> pd.DataFrame:
    """The account from (summed) counts: removed, removal_rate, pool_share, kept_share, representation_ratio;
    the identities checked (check_identity)."""
    t = counts.sort_values(["arm", "grouping", "group"]).reset_index(drop=True)
    t["removed"] = t["pool"] - t["kept"]
    n = t.groupby(["arm", "grouping"])["pool"].transform("sum")
    k = t.groupby(["arm", "grouping"])["kept"].transform("sum")
    t["removal_rate"] = t["removed"] / t["pool"]
    t["pool_share"] = t["pool"] / n
    t["kept_share"] = t["kept"] / k.where(k > 0)
    t["representation_ratio"] = t["kept_share"] / t["pool_share"]
    check_identity(t)
    return t


def account(groups: dict[str, np.ndarray], kept: np.ndarray, arm: str = "arm") -> pd.DataFrame:
    """The account of one arm over one array of pairs (finish(count_table(...)))."""
    return finish(count_table(groups, {arm: kept}))


def check_identity(table: pd.DataFrame) -> None:
    """pool = kept + removed in every row, and each arm's groupings all add up to one pool and one kept set."""
    bad = table[table["pool"] != table["kept"] + table["removed"]]
    if len(bad):
        raise AssertionError(f"pool != kept + removed for {bad[['arm', 'grouping', 'group']].values.tolist()}")
    for arm, a in table.groupby("arm"):
        sums = a.groupby("grouping")[["pool", "kept"]].sum()
        if sums["pool"].nunique() != 1 or sums["kept"].nunique() != 1:
            raise AssertionError(f"arm {arm!r}: the groupings add up to different totals:\n{sums}")


def share(table: pd.DataFrame, grouping: str, groups) -> dict[str, float]:
    """{"pool": the pool's share in `groups` of `grouping`, arm: the share of the arm's kept set in them} from an
    account; {} when the account has no such grouping (a real pool has no concept groups)."""
    rows = table[table["grouping"] == grouping]
    if rows.empty:
        return {}
    rows = rows.assign(inside=rows["group"].isin(list(groups)))
    first = rows[rows["arm"] == rows["arm"].iloc[0]]  # every arm's rows hold the same pool
    out = {"pool": float(first.loc[first["inside"], "pool"].sum() / first["pool"].sum())}
    for arm, a in rows.groupby("arm", sort=False):
        kept = a["kept"].sum()
        out[arm] = float(a.loc[a["inside"], "kept"].sum() / kept) if kept else float("nan")
    return out


def shares(table: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Each of SHARES that the account's groupings give: {name: share(table, grouping, groups)}."""
    return {name: s for name, (grouping, groups) in SHARES.items() if (s := share(table, grouping, groups))}


def noise_from_account(table: pd.DataFrame) -> dict[str, dict]:
    """Per arm, noise_removal's numbers from the caption_kind rows of an account."""
    out = {}
    for arm, a in table[table["grouping"] == "caption_kind"].groupby("arm"):
        a = a.set_index("group")
        noisy = a.loc[a.index != "clean"]
        removed, hit = int(a["removed"].sum()), int(noisy["removed"].sum())
        out[arm] = {"noisy": int(noisy["pool"].sum()), "removed": removed, "noisy_removed": hit,
                    "precision": hit / removed if removed else float("nan"),
                    "recall": hit / noisy["pool"].sum() if noisy["pool"].sum() else float("nan"),
                    "noise_share_pool": float(noisy["pool"].sum() / a["pool"].sum()),
                    "noise_share_kept": float(noisy["kept"].sum() / a["kept"].sum()) if a["kept"].sum() else float("nan")}
    return out


def noise_removal(caption_kind: np.ndarray, kept: np.ndarray) -> dict:
    """Precision and recall of removing noisy pairs (caption misaligned or vague), and the counts."""
    noisy, removed = np.asarray(caption_kind) != 0, ~np.asarray(kept, bool)
    hit = int((noisy & removed).sum())
    return {"noisy": int(noisy.sum()), "removed": int(removed.sum()), "noisy_removed": hit,
            "precision": hit / removed.sum() if removed.any() else float("nan"),
            "recall": hit / noisy.sum() if noisy.any() else float("nan"),
            "noise_share_pool": float(noisy.mean()), "noise_share_kept": float(noisy[~removed].mean())}
