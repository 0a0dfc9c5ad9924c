"""The paper's group averages of Table 11 (Western, Culture, Fairness, Multilinguality), as arXiv 2502.07617
§3.3 and Table 11 define them, and the task names that key per-task results.

Every value here is an error in % (Table 11's caption: all metrics are error rates, except
representation bias, which no average includes). A plain mean over the group's tasks, unweighted.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from vlscale import config

WESTERN_ZERO_SHOT = ("imagenet/0shot", "cifar100/0shot", "pet/0shot")
# The appendix's 10-shot ImageNet, CIFAR-100 and Pet count too: the averages only match with them.
WESTERN_FEW_SHOT = (
    "imagenet/10shot", "cifar100/10shot", "pet/10shot", "birds/10shot",
    "caltech/10shot", "cars/10shot", "colorectal/10shot", "dtd/10shot",
)
WESTERN_RETRIEVAL = ("coco/i2t", "coco/t2i", "flickr/i2t", "flickr/t2i")  # Recall@1 errors
WESTERN = WESTERN_ZERO_SHOT + WESTERN_FEW_SHOT + WESTERN_RETRIEVAL

DOLLAR_STREET = ("dollarstreet/0shot", "dollarstreet/geoloc_10shot")
GEODE = ("geode/0shot", "geode/country_geoloc_10shot", "geode/region_geoloc_10shot")
CULTURE = DOLLAR_STREET + GEODE + ("gldv2/0shot",)

# Zero-shot errors per subgroup; the groups are Table 10's (Table 11's "200-285, 285-685" are typos).
INCOME = (
    "dollarstreet/income_0_200", "dollarstreet/income_200_685",
    "dollarstreet/income_685_1998", "dollarstreet/income_over_1998",
)
REGIONS = tuple(
    f"geode/{r}" for r in ("africa", "americas", "east_asia", "europe", "south_east_asia", "west_asia")
)
DEMOGRAPHY = ("fairface/perceived_gender", "fairface/perceived_race")
FAIRNESS = INCOME + REGIONS + DEMOGRAPHY  # representation bias is not averaged

# Crossmodal-3600's 36 languages, in its codes: the world and params.yaml write Hebrew as ISO 639-1 "he",
# Crossmodal-3600 (and the task names here) as "iw"; "fil" is Filipino, "quz" Quechua.
XM3600_CODE = {"he": "iw"}
XM3600_LANGUAGES = tuple(sorted(XM3600_CODE.get(code, code) for code in config.XM3600_LANGUAGES))
LOW_RESOURCE = tuple(sorted(XM3600_CODE.get(code, code) for code in config.LOW_RESOURCE))
# "All others" minus Quechua: only then do Table 11's high-resource averages come out (arXiv 2502.07617 Table 11).
HIGH_RESOURCE = tuple(lang for lang in XM3600_LANGUAGES if lang not in LOW_RESOURCE and lang != "quz")


def error_pct(score: float) -> float:
    """Error in % of an accuracy or recall given as a fraction."""
    return 100.0 * (1.0 - score)


def xm3600_task(direction: str, language: str) -> str:
    """Task name of one XM3600 retrieval result, e.g. xm3600_task("i2t", "te") == "xm3600/i2t/te"."""
    if direction not in ("i2t", "t2i") or language not in XM3600_LANGUAGES:
        raise ValueError(f"no XM3600 task {direction!r}/{language!r}; expected i2t|t2i and one of {XM3600_LANGUAGES}")
    return f"xm3600/{direction}/{language}"


# Low / high resource: both retrieval directions of the group's languages (high excludes Quechua);
# multilingual: image->text over all 36 languages, Quechua included (arXiv 2502.07617 Table 11).
XM3600_LOW_RESOURCE = tuple(xm3600_task(d, lang) for d in ("i2t", "t2i") for lang in LOW_RESOURCE)
XM3600_HIGH_RESOURCE = tuple(xm3600_task(d, lang) for d in ("i2t", "t2i") for lang in HIGH_RESOURCE)
XM3600_I2T = tuple(xm3600_task("i2t", lang) for lang in XM3600_LANGUAGES)

# Table 11's "Average" rows: name -> the tasks it averages.
AVERAGES = {
    "western_0shot_classification": WESTERN_ZERO_SHOT,
    "western_10shot_classification": WESTERN_FEW_SHOT,
    "western_retrieval": WESTERN_RETRIEVAL,
    "western_classification": WESTERN_ZERO_SHOT + WESTERN_FEW_SHOT,
    "dollar_street_classification": DOLLAR_STREET,
    "geode_classification": GEODE,
    "income_classification": INCOME,
    "geographic_classification": REGIONS,
    "demography_classification": DEMOGRAPHY,
    "western": WESTERN,
    "culture": CULTURE,
    "fairness": FAIRNESS,
    "multilingual_low_resource": XM3600_LOW_RESOURCE,
    "multilingual_high_resource": XM3600_HIGH_RESOURCE,
    "multilingual": XM3600_I2T,
}
# The averages the figures stage reports (Figure 1's radar axes and Figure 2's two lines).
HEADLINE = ("western", "culture", "fairness", "multilingual_low_resource", "multilingual_high_resource",
            "multilingual")
# Performance disparity (Table 4): gap task -> its subgroup tasks (max - min of their accuracies).
DISPARITY = {"dollarstreet/disparity_income": INCOME, "geode/disparity_region": REGIONS}


def group_mean(values: Mapping[str, float | np.ndarray], tasks: Sequence[str]):
    """Unweighted mean over the tasks of `tasks` present in `values`, and the list of those tasks.

    values: task -> error (%), a number or an array of replicates (all of one shape); the mean is
    taken task-wise, so [B] arrays give a [B] mean. NaN (and []) when no task is present.
    """
    present = [t for t in tasks if t in values]
    if not present:
        return np.nan, []
    return np.mean([np.asarray(values[t], dtype=float) for t in present], axis=0), present


def _complete_mean(errors: Mapping[str, float], name: str) -> float:
    missing = [t for t in AVERAGES[name] if t not in errors]
    if missing:
        raise KeyError(f"group {name!r} needs results for {missing}")
    return float(group_mean(errors, AVERAGES[name])[0])


def multilingual_averages(i2t_error: Mapping[str, float], t2i_error: Mapping[str, float]) -> dict[str, float]:
    """XM3600 summary from per-language Recall@1 errors (%), keyed by language code.
    low_resource / high_resource: mean over both directions of the group's languages (high excludes
    Quechua); multilingual: the image->text error averaged over all 36 languages, Quechua included."""
    errors = {xm3600_task("i2t", lang): e for lang, e in i2t_error.items()}
    errors |= {xm3600_task("t2i", lang): e for lang, e in t2i_error.items()}
    return {name: _complete_mean(errors, name)
            for name in ("multilingual_low_resource", "multilingual_high_resource", "multilingual")}


def group_averages(errors: Mapping[str, float]) -> dict[str, float]:
    """Table 11's "Average" rows from per-task errors (%) keyed by the task names above
    (XM3600 ones by `xm3600_task`). Returns {average name: error %}; every task of an average is
    required (KeyError naming the missing ones); group_mean averages whatever is present."""
    return {name: _complete_mean(errors, name) for name in AVERAGES}
