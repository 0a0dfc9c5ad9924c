"""Statistics that describe the synthetic web: what the world stage reports and the tests check."""
from __future__ import annotations

import numpy as np
import pandas as pd

from vlscale.config import REGIONS
from vlscale.world.ids import make_ids
from vlscale.world.spec import CAPTION_KINDS, INCOME_GROUPS, paper_pages_pct

# metrics/world.json keys other stages read
EXAMPLES = "examples"  # examples drawn
LANGUAGE_SHARE_MAX_ABS_DEV_PCT = "language_share_max_abs_dev_pct"  # largest |world - Table 15| page share (pp)
LOW_RESOURCE_SHARE_PCT = "low_resource_share_pct"  # pages of the seven low-resource languages (%)
HEAD_SHARE_OF_EXAMPLES = "head_share_of_examples"  # examples whose concept is a head concept (fraction)


def pool_ids(world, n: int) -> np.ndarray:
    """Sorted int64 ids of the first examples of every stratum in a pool of n examples (shape (n,))."""
    sizes = world.pool_sizes(n)
    return np.concatenate([make_ids(s, np.arange(size)) for s, size in enumerate(sizes)])


def language_shares(world, gt: dict) -> pd.DataFrame:
    """Share of pages per language tag against the paper's Table 15 (both in %)."""
    paper = paper_pages_pct()
    counts = np.bincount(gt["stratum"], minlength=len(world.strata))
    n = counts.sum()
    rows = []
    for s, code in enumerate(world.strata):
        rows.append(dict(language=code, group=world.resource_group[s], paper_pct=paper.get(code),
                         world_pct=100.0 * counts[s] / n, count=int(counts[s])))
    return pd.DataFrame(rows)


def concept_frequencies(world, gt: dict) -> pd.DataFrame:
    """Examples per concept with its kind (head, culture, landmark, other), sorted by count."""
    counts = np.bincount(gt["concept"], minlength=len(world.concepts))
    kind = np.where(world.landmark_country >= 0, "landmark",
                    np.where(world.culture_region >= 0, "culture", np.where(world.is_head, "head", "other")))
    df = pd.DataFrame(dict(concept=[c["en"] for c in world.concepts], kind=kind, count=counts,
                           popularity_rank=world.concept_rank))
    df = df.sort_values(["count", "popularity_rank"], ascending=[False, True]).reset_index(drop=True)
    df["rank"] = np.arange(1, len(df) + 1)
    return df


def region_income(world, gt: dict) -> pd.DataFrame:
    """Share of examples (%) per region (rows) and income group (columns)."""
    table = np.zeros((len(REGIONS), len(INCOME_GROUPS)))
    np.add.at(table, (gt["region"], gt["income"]), 1)
    return pd.DataFrame(100 * table / table.sum(), index=list(REGIONS), columns=list(INCOME_GROUPS))


def caption_noise(world, gt: dict) -> pd.DataFrame:
    """Caption kinds (%) per region, and the English-caption rate on non-English pages by language group."""
    rows = []
    en = world.strata.index("en")
    for r, region in enumerate(REGIONS):
        sel = gt["region"] == r
        kinds = np.bincount(gt["caption_kind"][sel], minlength=3) / max(sel.sum(), 1)
        rows.append(dict(region=region, **{k: 100 * v for k, v in zip(CAPTION_KINDS, kinds)}))
    df = pd.DataFrame(rows).set_index("region")
    group = np.asarray(world.resource_group)[gt["stratum"]]
    for g in ("low", "high"):
        sel = (group == g) & (gt["stratum"] != en)
        df.attrs[f"english_caption_pct_{g}"] = float(100 * np.mean(gt["caption_language"][sel] == en))
    return df
