"""params.yaml: the scale profiles, loading and validation.

params.yaml is the single source of truth for every stage. Each top-level block belongs to a stage
(or, like `world`, is shared). It holds the default profile's values; another profile is the file with
profiles/<profile>.yaml laid over it (`overlay`): only the values that differ, in the same nested blocks.
Validation runs before any work and names the file, the key, the bad value and what is allowed.
"""
from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

PROFILES = ("smoke", "cpu", "study", "gpu", "tpu", "colab")
DEFAULT_PROFILE = "cpu"  # the profile whose values params.yaml holds (profiles/cpu.yaml is empty)
PROFILES_DIR = "profiles"  # the overlays, beside params.yaml
REGIONS = ("Africa", "Americas", "EastAsia", "Europe", "SouthEastAsia", "WestAsia")
XM3600_LANGUAGES = (
    "ar bn cs da de el en es fa fi fil fr he hi hr hu id it ja ko mi nl no pl pt quz ro ru sv sw te th tr "
    "uk vi zh"
).split()
LOW_RESOURCE = ("bn", "fil", "he", "hi", "mi", "sw", "te")
# The paper writes Hebrew as `iw`; XM3600 and CLDR write `he`. Accept both in params.
LANGUAGE_ALIASES = {"iw": "he", "nb": "no", "tl": "fil", "qu": "quz"}
# CLIP the Bias [3]: the paper's occupation pairs, each (stereotypically female-associated, counterpart).
# The world draws people's occupations from them and association bias is measured over them.
OCCUPATION_PAIRS = (("librarian", "scientist"), ("nurse", "doctor"), ("housekeeper", "homeowner"),
                    ("receptionist", "executive"), ("secretary", "manager"))


class ParamsError(ValueError):
    """A bad value in params.yaml, with the key path, the value and what is allowed."""


# The mappings whose keys params.yaml does not fix: the runs (an overlay adds a run by a new name) and each run's
# entry (it may set a run key params.yaml leaves to its default), a tower's big_vision config (a variant in place of
# explicit sizes) and the Beam runner's options.
OPEN_MAPPINGS = (("runs",), ("model", "image"), ("model", "text"), ("beam", "options"))


def _is_open(at: tuple[str, ...]) -> bool:
    return at in OPEN_MAPPINGS or (len(at) == 2 and at[0] == "runs")


def overlay(base: dict, over: dict, source: str, _at: tuple[str, ...] = ()) -> dict:
    """`base` with the overlay `over` laid over it (a new mapping; neither is changed).

    Mappings merge key by key; any other value (a number, a string, a list, null) replaces the base's. Inside an
    open mapping (OPEN_MAPPINGS, and each run's entry) an entry may be new, and null removes the entry: a run the
    profile does not train, a tower's explicit sizes where the overlay names a variant. Any other key the overlay
    names that `base` lacks, and a whole block set to null, is a ParamsError naming `source` and the key.
    """
    out = dict(base)
    for key, value in over.items():
        where = ".".join((*_at, str(key)))
        if where == "profile":
            raise ParamsError(f"{source}: profile: an overlay cannot choose the profile; set it in params.yaml")
        if not _at and value is None:
            raise ParamsError(f"{source}: {where}: null; an overlay changes a block's values, it cannot remove the "
                              "block")
        if key not in base and not (_is_open(_at) and value is not None):
            raise ParamsError(f"{source}: {where}: params.yaml has no such key; an overlay changes the values "
                              "params.yaml gives (new entries only in runs, a run's entry, model.image, model.text "
                              "and beam.options)")
        if value is None and _is_open(_at):
            del out[key]
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            out[key] = overlay(base[key], value, source, (*_at, str(key)))
        else:
            out[key] = value
    return out


def overridden_keys(base: dict, over: dict, _at: tuple[str, ...] = ()) -> list[str]:
    """The dotted keys whose params.yaml value the overlay `over` replaces (its leaves that `base` holds)."""
    keys = []
    for key, value in over.items():
        where = (*_at, str(key))
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            keys += overridden_keys(base[key], value, where)
        elif key in base:
            keys.append(".".join(where))
    return keys


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def canonical_language(code: str) -> str:
    code = LANGUAGE_ALIASES.get(code, code)
    if code not in XM3600_LANGUAGES:
        raise ValueError(f"unknown language code '{code}'; allowed: {', '.join(XM3600_LANGUAGES)} "
                         f"(aliases {', '.join(f'{a}={b}' for a, b in LANGUAGE_ALIASES.items())})")
    return code


class NoiseParams(_Block):
    """Caption noise rates: they differ by region and by the page language's resource group."""
    misaligned: dict[Literal[REGIONS], float]  # caption describes another image
    vague: dict[Literal[REGIONS], float]  # caption names nothing in the image
    english_caption: dict[Literal["low", "high"], float]  # English alt-text on a non-English page

    @field_validator("misaligned", "vague", "english_caption")
    @classmethod
    def _rates(cls, v):
        for k, r in v.items():
            if not 0.0 <= r < 1.0:
                raise ValueError(f"rate for '{k}' is {r}; a rate must be in [0, 1)")
        return v

    @model_validator(mode="after")
    def _all_regions(self):
        for name in ("misaligned", "vague"):
            missing = set(REGIONS) - set(getattr(self, name))
            if missing:
                raise ValueError(f"{name} lacks regions {sorted(missing)}; give all of {list(REGIONS)}")
            for region in REGIONS:
                total = self.misaligned[region] + self.vague[region]
                if total >= 0.9:
                    raise ValueError(f"misaligned + vague for {region} is {total}; must stay below 0.9")
        return self


class WorldParams(_Block):
    """The synthetic web (lib/vlscale/world/spec.py). Every example is f(seed, id)."""
    seed: int = Field(ge=0, lt=2**32)
    quz_share_pct: float = Field(ge=0, le=1)  # Table 15 omits Quechua; an assumed share of pages
    # page share of each XM3600 language but English ∝ (its Table 15 share)^exponent, their total kept (English and
    # untagged pages keep theirs): 1 is the paper's mix; below 1 compresses the ratios and keeps the order
    language_share_exponent: float = Field(default=1.0, gt=0, le=1)
    zipf_exponent: float = Field(gt=0, le=3)  # concept popularity ∝ rank^-exponent
    culture_boost: float = Field(ge=1)  # odds of a culture-specific concept at home vs abroad
    landmarks_per_country: int = Field(ge=0, le=16)
    landmark_share: float = Field(ge=0, lt=0.5)  # share of pages that show a landmark
    person_share: float = Field(ge=0, lt=1)  # share of images with a person in them
    person_scale: float = Field(default=1.0, ge=0.5, le=3)  # the drawn figure's size (1: 0.4 of the image's height)
    male_share: float = Field(gt=0, lt=1)  # perceived gender of those people
    stereotype_strength: float = Field(ge=0.5, lt=1)  # P(stereotyped occupation of a pair | gender)
    foreign_page_frac: float = Field(ge=0, lt=1)  # pages about a country outside the language's own
    country_decay: float = Field(gt=0, le=1)  # weight of a language's k-th country ∝ decay^k
    income_tilt: list[float] = Field(min_length=4, max_length=4)  # web over-represents richer homes
    place_share: float = Field(ge=0, le=1)  # share of captions that name the page's country
    background_region_tint: float = Field(ge=0, le=1)  # weight of the region's colour in a background
    background_country_tint: float = Field(ge=0, le=1)  # weight of the country's own colour in it
    # mechanism switches (world/ablations.py): true is the world as built, false switches the mechanism off
    western_head: bool = True  # the ImageNet-like concepts head the popularity ranking (false: ranked among all)
    regional_variants: bool = True  # regional objects look different by region (false: one look everywhere)
    income_appearance: bool = True  # poorer homes' backgrounds darker and more cluttered (false: one look for all)
    noise: NoiseParams

    @model_validator(mode="after")
    def _tints(self):
        if self.background_region_tint + self.background_country_tint > 1:
            raise ValueError(f"background_region_tint + background_country_tint = "
                             f"{self.background_region_tint + self.background_country_tint} exceed 1")
        return self


class WorldReportParams(_Block):
    examples: int = Field(gt=0)  # examples drawn to describe the world
    grid_examples: int = Field(gt=0, le=64)
    grid_px: int = Field(ge=32, le=224)


class SampleParams(_Block):
    pool_size: int = Field(gt=0, le=10**13)
    key: int = Field(ge=0, lt=2**63)
    fractions: list[float] = Field(min_length=1)
    rebalance_targets: dict[str, float]
    coverage_k: list[int] = Field(min_length=1)
    source: Literal["synthetic", "webdataset", "parquet"]
    shards: list[str]
    max_caption_chars: int = Field(gt=0)
    write_ids_max: int = Field(ge=0)
    # the page language of a real record without a language tag; null: such a record is rejected (unknown_language)
    untagged_language: str | None = None

    @field_validator("untagged_language")
    @classmethod
    def _untagged(cls, v):
        if v is None or v == "und":
            return v
        try:
            return canonical_language(v)
        except ValueError:
            raise ValueError(f"{v!r} is not a page language; allowed: null, 'und' (untagged) or one of "
                             f"{', '.join(XM3600_LANGUAGES)}") from None

    @field_validator("fractions")
    @classmethod
    def _fractions(cls, v):
        for i, f in enumerate(v):
            if not 0.0 < f <= 1.0:
                raise ValueError(f"fractions[{i}] = {f}: a fraction must be in (0, 1]")
        if sorted(set(v)) != list(v):
            raise ValueError(f"fractions {v} must be distinct and increasing")
        return v

    @field_validator("rebalance_targets")
    @classmethod
    def _targets(cls, v):
        out = {}
        for code, share in v.items():
            code = canonical_language(code)
            if not 0.0 <= share < 1.0:
                raise ValueError(f"target share for '{code}' is {share}; must be in [0, 1)")
            out[code] = share
        if sum(out.values()) >= 1.0:
            raise ValueError(f"target shares sum to {sum(out.values())}; must be below 1")
        return out

    @field_validator("coverage_k")
    @classmethod
    def _k(cls, v):
        if any(k < 1 for k in v):
            raise ValueError(f"coverage_k {v}: every k must be >= 1")
        return v

    @model_validator(mode="after")
    def _shards_given(self):
        if self.source != "synthetic" and not self.shards:
            raise ValueError(f"source is '{self.source}' but shards is empty; list shard paths or globs")
        return self


class TokenizerParams(_Block):
    """The text tokenizer: a SentencePiece model trained on a language-balanced caption sample."""
    vocab_size: int = Field(ge=300, le=1_000_000)
    per_language: int = Field(gt=0)  # captions per language in the training sample
    max_len: int = Field(ge=4, le=512)  # tokens per caption (paper: 64)
    key: int = Field(ge=0, lt=2**63)
    model_path: str | None = None  # a SentencePiece model to use instead (e.g. mT5's spiece.model)


TOWER_KEYS = {"variant", "width", "depth", "mlp_dim", "num_heads", "patch_size", "pool_type", "vocab_size",
              "posemb", "dropout"}


class ModelParams(_Block):
    """A big_vision two-tower config, as in big_vision's SigLIP colab."""
    image_model: Literal["vit"]
    text_model: Literal["text_transformer", "proj.image_text.text_transformer"]
    image: dict[str, Any]
    text: dict[str, Any]
    out_dim: int | tuple[int | None, int | None]
    temperature_init: float = Field(gt=0)
    bias_init: float | None

    @field_validator("image", "text")
    @classmethod
    def _tower(cls, v):
        unknown = set(v) - TOWER_KEYS
        if unknown:
            raise ValueError(f"unknown tower keys {sorted(unknown)}; allowed: {sorted(TOWER_KEYS)}")
        if "variant" not in v and not {"width", "depth", "mlp_dim", "num_heads"} <= set(v):
            raise ValueError("give a variant (e.g. 'B/16') or all of width, depth, mlp_dim, num_heads")
        return v

    @property
    def name(self) -> str:
        """The model's short name in results: its image tower's variant ("B/16"), else width, depth and patch
        ("w64d1p8")."""
        image = self.image
        return image.get("variant") or f"w{image['width']}d{image['depth']}p{image['patch_size'][0]}"

    def for_run(self, run: RunParams) -> ModelParams:
        """The block as `run` trains it: the run's `model` keys replacing the block's own (validated)."""
        return ModelParams(**{**self.model_dump(), **run.model}) if run.model else self


class MeshParams(_Block):
    data: int = Field(ge=-1)  # -1: all devices that fsdp leaves
    fsdp: int = Field(ge=1)


class TrainParams(_Block):
    """The trainer (arXiv 2502.07617 §3.2): compute-matched runs, inverse-sqrt schedule, cool-down branches."""
    seed: int = Field(ge=0, lt=2**32)
    image_px: int = Field(ge=8, le=1024)
    batch_size: int = Field(gt=0)
    examples_seen: int = Field(gt=0)  # every run sees this many examples (compute-matched)
    warmup_examples: int = Field(ge=0)
    cooldown_examples: int = Field(gt=0)
    timescale_examples: int = Field(gt=0)  # inverse-sqrt timescale
    peak_lr: float = Field(gt=0)
    weight_decay: float = Field(ge=0)
    grad_clip_norm: float = Field(gt=0)
    drop_tokens_frac: float = Field(ge=0, lt=1)  # share of image patches dropped in training (paper: 0.5)
    cooldown_budgets: list[float] = Field(min_length=1)  # fractions of examples_seen with a cooled-down model
    loss: Literal["chunked", "dense"]
    dtype: Literal["float32", "bfloat16"]
    mesh: MeshParams
    checkpoint_every_examples: int = Field(gt=0)
    log_every_steps: int = Field(gt=0)
    probe_every_examples: int = Field(ge=0)  # held-out probe cadence (0: none), training/probe.py
    probe_images: int = Field(gt=0)  # images per probe analog
    workers: int = Field(ge=0)  # input worker processes (0: in the training process)

    @field_validator("cooldown_budgets")
    @classmethod
    def _budgets(cls, v):
        if any(not 0 < f <= 1 for f in v) or sorted(set(v)) != list(v) or v[-1] != 1.0:
            raise ValueError(f"cooldown_budgets {v} must increase within (0, 1] and end at 1.0")
        return v

    @model_validator(mode="after")
    def _lengths(self):
        first, needed = self.first_cooldown()
        if needed > first:
            raise ValueError(f"warmup_examples + cooldown_examples = {needed}"
                             f" exceed the first budget, {self.cooldown_budgets[0]} × {self.examples_seen} examples")
        return self

    def first_cooldown(self) -> tuple[float, int]:
        """(examples seen where the first cool-down ends, the warm-up + cool-down it must hold)."""
        return self.cooldown_budgets[0] * self.examples_seen, self.warmup_examples + self.cooldown_examples

    def for_run(self, run: RunParams) -> TrainParams:
        """The block as `run` trains: its own seed and peak learning rate, and its budget's examples and cool-downs.

        A run with budget b < 1 sees b × examples_seen examples; its cool-downs end where the block's do, as long as
        they come before b, and at b itself.
        """
        update = {k: getattr(run, k) for k in ("seed", "peak_lr") if getattr(run, k) is not None}
        b = run.budget
        if b < 1.0:
            update["examples_seen"] = int(round(b * self.examples_seen))
            update["cooldown_budgets"] = [c / b for c in self.cooldown_budgets if c < b * (1 - 1e-9)] + [1.0]
        return self.model_copy(update=update)


class RunParams(_Block):
    """One training run: which subset of the pool it draws from."""
    fraction: float = Field(gt=0, le=1)  # one of sample.fractions
    rebalanced: bool = False  # low-resource languages upsampled to sample.rebalance_targets
    seed: int | None = Field(default=None, ge=0, lt=2**32)  # training seed (init, data order); null: train.seed
    # Share of train.examples_seen this run trains for (the paper's filter study: 30B of 100B seen). Its
    # cool-downs are train.cooldown_budgets up to it, then its end; examples seen stay on one axis for all runs.
    budget: float = Field(default=1.0, gt=0, le=1)
    # A quality-filter arm of the filter stage (filter.arms) to train on instead of a subset: the arm keeps
    # filter.keep_fraction of the whole pool, so `fraction` must be the pool's (the largest sample fraction).
    filter: str | None = None
    # The model axis: this run's model, as top-level keys of the `model` block that replace the block's own
    # (e.g. {image: {variant: L/16, pool_type: map}, text: {variant: L}, out_dim: [null, 1024]}); null: `model`.
    model: dict[str, Any] | None = None
    # This run's peak learning rate (null: train.peak_lr). A model of another size trains best at a rate of its own,
    # tuned on the development key like the block's.
    peak_lr: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_curation(self):
        if self.filter is not None and self.rebalanced:
            raise ValueError(f"filter = {self.filter!r} with rebalanced = true: a run is either a filter arm or a "
                             "rebalanced mixture, not both")
        return self


ANALOG_NAMES = ("imagenet", "cifar100", "pet", "coco", "flickr", "xm3600", "dollarstreet", "geode", "gldv2",
                "fairface")
REAL_SET_NAMES = ("imagenet", "coco", "flickr", "xm3600", "xtd10", "xflickrco", "dollarstreet", "geode", "gldv2",
                  "fairface")
FEW_SHOT_ANALOGS = ("imagenet", "cifar100", "pet", "dollarstreet", "geode")


class EvaluateKeys(_Block):
    """Keys of the analogs' held-out draws: one to tune on, one to report."""
    dev: int = Field(ge=0, lt=2**63)  # the draws the world and analog settings were tuned on
    report: int = Field(ge=0, lt=2**63)  # fresh draws nobody tuned on: what the README and paper report

    @model_validator(mode="after")
    def _distinct(self):
        if self.dev == self.report:
            raise ValueError(f"keys.dev and keys.report are both {self.dev}; the report key must be fresh")
        return self


class Templates(_Block):
    """Zero-shot prompt templates per benchmark source ("{}" is the class name)."""
    analog: list[str] = Field(min_length=1)  # the synthetic alt-text names things bare
    real: list[str] = Field(min_length=1)  # CLIP / big_vision-style prompts for the real sets

    @field_validator("analog", "real")
    @classmethod
    def _placeholder(cls, v):
        bad = [t for t in v if "{}" not in t]
        if bad:
            raise ValueError(f"templates {bad} have no '{{}}' for the class name")
        return v


class EvaluateParams(_Block):
    """The evaluate stage (arXiv 2502.07617 §3.3): which benchmarks, how big, and the prompts."""
    keys: EvaluateKeys  # which held-out ids the analogs draw, for tuning and for reporting
    use_key: Literal["dev", "report"]  # the key this evaluation uses
    analogs: dict[str, int]  # analog -> test images (0 leaves it out)
    train_sizes: dict[str, int]  # few-shot analog -> images its shots are drawn from
    real_sets: dict[str, str | None] = {}  # real set -> its root folder (null: not evaluated)
    shots: int = Field(ge=1)  # few-shot probes: examples per class (paper: 10)
    templates: Templates  # zero-shot prompt templates per source
    batch_size: int = Field(gt=0)  # images or texts per embedding call

    @property
    def key(self) -> int:
        """The key of the held-out draws this evaluation uses (keys.dev or keys.report, as use_key says)."""
        return getattr(self.keys, self.use_key)

    @field_validator("analogs", "train_sizes", "real_sets")
    @classmethod
    def _known_names(cls, v, info):
        allowed, what = {"analogs": (ANALOG_NAMES, "unknown analogs"),
                         "train_sizes": (FEW_SHOT_ANALOGS, "analogs without a few-shot task"),
                         "real_sets": (REAL_SET_NAMES, "unknown real sets")}[info.field_name]
        unknown = set(v) - set(allowed)
        if unknown:
            raise ValueError(f"{what} {sorted(unknown)}; allowed: {list(allowed)}")
        if info.field_name != "real_sets" and any(n < 0 for n in v.values()):
            raise ValueError(f"sizes must be >= 0, got {v}")
        return v


# the filter stage's arms (vlscale.filtering.arms): clip keeps the best-scored English-caption pairs (the paper's
# CLIP filter), clip_multilingual the best-scored of the whole pool; planted is a positive control (synthetic only);
# balanced is MetaCLIP's concept balancing; custom a user's scorer (filter.custom)
FILTER_ARMS = ("clip", "clip_multilingual", "classifier", "english", "planted", "balanced", "custom", "random")


class ScorerParams(_Block):
    """The CLIP-score filter's scorer: a checkpoint, or a SigLIP the stage trains on curated English pairs."""
    checkpoint: str | None = None  # any checkpoint vlscale.siglip.load reads (null: train one)
    examples: int = Field(gt=0)  # unique pairs of its curated English source (SCORER_BIT ids)
    budget: float = Field(gt=0, le=1)  # examples it sees, as a share of train.examples_seen


class ClassifierParams(_Block):
    """The classifier filter: a SigLIP trained on web pairs, and an aligned/misaligned head on labelled pairs."""
    web_examples: int = Field(gt=0)  # unique web pairs its model learns from (CLASSIFIER_BIT ids)
    budget: float = Field(gt=0, le=1)  # examples its model sees, as a share of train.examples_seen
    labelled: int = Field(ge=20)  # web pairs raters label aligned (clean caption) or misaligned (misaligned, vague)
    holdout: float = Field(gt=0, lt=1)  # share of the labelled pairs held out to measure the classifier


class BalancedParams(_Block):
    """The balanced arm (MetaCLIP): captions matched against concept names; each concept's pairs capped at a threshold
    chosen to keep k, one per language (MetaCLIP 2: equal tail share) or one for all."""
    thresholds: Literal["per_language", "single"] = "per_language"
    # a real pool's entries: a JSON file {language: [entry, ...]} (null: a synthetic pool's world vocabulary)
    metadata: str | None = None


class CustomParams(_Block):
    """A user's filter: `name` "package.module:function", called on each shard's pairs as
    function(images, texts, languages, uids, **kwargs) -> one score per pair (higher is kept first; NaN: never)."""
    name: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    kwargs: dict[str, Any] = Field(default_factory=dict)


class FilterParams(_Block):
    """The filter stage: quality-filter arms of the pool, each keeping the same number of pairs (arXiv 2502.07617 §5.1)."""
    keep_fraction: float = Field(gt=0, le=1)  # k = the size of the pool's random subset of this fraction
    arms: list[str] = Field(min_length=1)
    key: int = Field(ge=0, lt=2**63)  # the English, planted, balanced and random arms' draws, the labelled sample
    shard_size: int = Field(gt=0)  # pool pairs per scoring shard (the output does not depend on it)
    scorer: ScorerParams
    classifier: ClassifierParams
    balanced: BalancedParams = Field(default_factory=BalancedParams)
    custom: CustomParams | None = None  # the custom arm's filter (needed when arms has "custom")

    @field_validator("arms")
    @classmethod
    def _arms(cls, v):
        unknown = [a for a in v if a not in FILTER_ARMS]
        if unknown:
            raise ValueError(f"unknown arms {unknown}; allowed: {list(FILTER_ARMS)}")
        if len(set(v)) != len(v):
            raise ValueError(f"arms {v} repeat an arm")
        return v

    @model_validator(mode="after")
    def _custom(self):
        if "custom" in self.arms and self.custom is None:
            raise ValueError("arms has 'custom' but filter.custom is not set: name its scorer, "
                             "custom: {name: 'package.module:function'}")
        return self


class FiguresParams(_Block):
    """The figures stage: scaling-law fits and the paper's tables from the evaluate stage's results."""
    bootstrap: int = Field(ge=0)  # paired-bootstrap resamples of the test images (95% intervals)
    seed: int = Field(ge=0)
    source: Literal["auto", "analog", "real"]  # auto: the pool's (analog for a synthetic pool, real for real shards)
    english_like_share: float = Field(gt=0, le=1)  # XM3600 languages this English-like are set apart


class AttentionParams(_Block):
    """The attention stage: MAP-head attention on held-out images, scored against the objects' masks."""
    images_per_group: int = Field(ge=1)  # probe images of each concept group (attention/probe.py GROUPS)
    figure_rows_per_group: int = Field(ge=0)  # the figure's rows: the first images of each group
    pointing_radius: float = Field(ge=0, le=1)  # the pointing game's tolerance, a share of the image side
    bootstrap: int = Field(ge=0)  # resamples of the probe images (paired over models)
    seed: int = Field(ge=0)


class MarginParams(_Block):
    """Equivalence margins of the claims of no change (analysis/evidence.no_change), fixed before any data."""
    western_gain_pp: float = Field(gt=0)  # finding 1: Western error change, 10% -> 100% data
    male_preference_pp: float = Field(gt=0)  # finding 4: representation bias change
    association_bias_pp: float = Field(gt=0)  # finding 4: association bias change
    transfer_average_pp: float = Field(gt=0)  # finding 5: a transfer's average score, 100% against less data
    correlation: float = Field(gt=0, le=1)  # finding 10: |Spearman correlation| of error level and gain


class VerdictsParams(_Block):
    """How the paper stage judges each finding (analysis/evidence.py)."""
    power: float = Field(gt=0, lt=1)  # the minimal detectable effect is found with this probability
    margins: MarginParams
    chance_floor_pp: float = Field(ge=0)  # a level this far below chance (its interval's upper end) can show a change


class DecoderParams(_Block):
    """The transfer model's language model (vlscale.transfer.model.Decoder); its vocabulary is the tokenizer's."""
    width: int = Field(gt=0)
    depth: int = Field(ge=1)
    mlp_dim: int = Field(gt=0)
    num_heads: int = Field(ge=1)


class TransferParams(_Block):
    """The transfer stage (arXiv 2502.07617 §4.5): each natural run's final image tower under a small PaliGemma-style
    decoder, frozen and unfrozen, trained and graded on tasks the world answers (vlscale.transfer)."""
    extra_runs: list[str] = []  # runs transferred besides the natural ones (every run without curation)
    # true: every natural run, its seed replicates too (finding 5's training noise); false: one run per data scale and
    # model, the one with train.seed where there is one
    replicates: bool
    settings: list[Literal["frozen", "unfrozen"]] = Field(min_length=1)
    train_images: int = Field(ge=6)  # images of the training draw (every task on each), even over the regions
    test_images: int = Field(ge=6)  # images graded (every task on each)
    steps: int = Field(gt=0)
    batch_size: int = Field(gt=0)
    peak_lr: float = Field(gt=0)
    tower_lr_scale: float = Field(gt=0, le=1)  # unfrozen: the pretrained tower learns at peak_lr x this
    warmup_steps: int = Field(ge=0)
    weight_decay: float = Field(ge=0)
    grad_clip_norm: float = Field(gt=0)
    prompt_len: int = Field(ge=4)  # tokens of a prompt with its separator (longer prompts keep their end)
    answer_len: int = Field(ge=2)  # tokens of an answer (without EOS) the decoder may write
    decoder: DecoderParams
    # the decoder's initialisation and the order of its examples: seed + the run's pretraining seed, so that seed
    # replicates repeat the transfer's own noise too
    seed: int = Field(ge=0, lt=2**31)
    bootstrap: int = Field(ge=2)  # paired resamples of the test images

    @field_validator("settings")
    @classmethod
    def _distinct(cls, v):
        if len(set(v)) != len(v):
            raise ValueError(f"settings {v} repeat a setting")
        return v


class BeamParams(_Block):
    """The Beam runner of `engine: beam` and its pipeline options (flag names without dashes)."""
    runner: str = Field(min_length=1)  # in_process (Beam's FnApiRunner) | DataflowRunner | FlinkRunner | SparkRunner | ...
    options: dict[str, Any] = {}


BLOCKS = {"world": WorldParams, "world_report": WorldReportParams, "sample": SampleParams,
          "tokenizer": TokenizerParams, "model": ModelParams, "train": TrainParams, "runs": dict[str, RunParams],
          "evaluate": EvaluateParams, "filter": FilterParams, "figures": FiguresParams,
          "attention": AttentionParams, "verdicts": VerdictsParams, "transfer": TransferParams,
          "engine": Literal["local", "beam"], "beam": BeamParams}
_ADAPTERS = {name: TypeAdapter(block) for name, block in BLOCKS.items()}


class Params(_Block):
    """Validated params: each block typed, read by attribute (`p.train.peak_lr`, `p.runs["s10"].fraction`).

    A block the params did not give is None (a stage validates the blocks it reads). A block given in part (a stage's
    declared `block.key` params, pipeline.STAGE_PARAMS; `validate(..., partial=...)`) holds only those keys, each
    checked against its field's type and bounds; reading another key of it raises AttributeError. `dump()` is the
    plain mapping that files and fingerprints record.
    """
    profile: Literal[PROFILES]
    world: WorldParams | None = None
    world_report: WorldReportParams | None = None
    sample: SampleParams | None = None
    tokenizer: TokenizerParams | None = None
    model: ModelParams | None = None
    train: TrainParams | None = None
    runs: dict[str, RunParams] | None = None
    evaluate: EvaluateParams | None = None
    filter: FilterParams | None = None
    figures: FiguresParams | None = None
    attention: AttentionParams | None = None
    verdicts: VerdictsParams | None = None
    transfer: TransferParams | None = None
    engine: Literal["local", "beam"] | None = None
    beam: BeamParams | None = None

    def dump(self, *blocks: str) -> dict:
        """The params as a plain mapping of the blocks given (or of `blocks`), defaults filled in, as files and
        fingerprints record them; the world block without its knobs at their neutral value (world_identity)."""
        out = {"profile": self.profile} if not blocks or "profile" in blocks else {}
        for name in BLOCKS:
            value = getattr(self, name)
            if value is None or (blocks and name not in blocks):
                continue
            if name == "runs":
                out[name] = {run: entry.model_dump() for run, entry in value.items()}
            elif isinstance(value, BaseModel):
                out[name] = value.model_dump(include=set(value.__dict__))  # a block given in part: its keys
            else:
                out[name] = value
            if name == "world":
                out[name] = world_identity(out[name])
        return out

    def replace(self, **blocks) -> Params:
        """These params with the given blocks replaced (None removes one)."""
        return self.model_copy(update=blocks)

    @property
    def pool_kind(self) -> str:
        """"real" when sample.source names real shards, else "synthetic" (also without a sample block)."""
        source = getattr(self.sample, "source", "synthetic") if self.sample is not None else "synthetic"
        return "synthetic" if source == "synthetic" else "real"

    @property
    def benchmark_source(self) -> str | None:
        """figures.source with `auto` resolved by the pool (None without a figures block)."""
        if self.figures is None:
            return None
        if self.figures.source == "auto":
            return "real" if self.pool_kind == "real" else "analog"
        return self.figures.source


def _format(err: ValidationError, block: str, raw: dict, source: str) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in (block, *e["loc"]))
        msg = e["msg"].removeprefix("Value error, ")
        lines.append(f"{source}: {loc} = {_lookup(raw, e['loc'])!r}: {msg}")
    return "\n".join(lines)


def _lookup(raw, path):
    """The value at a pydantic error location inside the raw block (None where it does not exist)."""
    for key in path:
        try:
            raw = raw[key]
        except (KeyError, IndexError, TypeError):
            return None
    return raw


def _partial_block(block: type[BaseModel], name: str, raw: dict, source: str) -> tuple[BaseModel | None, list[str]]:
    """A block given in part: each of its keys checked against its field's type and bounds (not the block's
    validators).
    Returns (the block, or None; the errors, each naming `source`, the key, its value and what is allowed)."""
    unknown = sorted(set(raw) - set(block.model_fields))
    if unknown:
        return None, [f"{source}: {name}: unknown keys {unknown}; allowed: {', '.join(block.model_fields)}"]
    checked, errors = {}, []
    for key, value in raw.items():
        field = block.model_fields[key]
        kind = Annotated[field.annotation, *field.metadata] if field.metadata else field.annotation
        try:
            checked[key] = TypeAdapter(kind).validate_python(value)
        except ValidationError as e:
            errors.append(_format(e, f"{name}.{key}", value, source))
    if errors:
        return None, errors
    part = block.model_construct(**checked)
    for key in set(block.model_fields) - set(checked):  # a key not given is absent, not its default
        part.__dict__.pop(key, None)
    return part, []


def validate(params: dict | Params, source: str = "params.yaml", partial: Collection[str] = ()) -> Params:
    """Validate a params mapping of resolved values (params.yaml with its profile's overlay, or some of its blocks);
    returns the typed Params, each block with its defaults filled in.

    partial: the blocks that may hold only some of their keys (a stage's declared `block.key` params). Each key given
    is checked against its field's type and bounds; the block's validators (those of one key and those that span
    keys) are left to the whole params' validation, which the params stage runs before any other stage. Every other
    block is validated whole.
    Raises ParamsError naming every bad key, its value and what is allowed. Params already validated are returned.
    """
    if isinstance(params, Params):
        return params
    profile = params.get("profile")
    if profile not in PROFILES:
        raise ParamsError(f"{source}: profile = {profile!r}: unknown profile; allowed: {', '.join(PROFILES)}")
    errors, blocks = [], {}
    for name, raw in params.items():
        if name == "profile":
            continue
        if name not in BLOCKS:
            errors.append(f"{source}: {name}: unknown block; allowed: {', '.join(['profile', *BLOCKS])}")
            continue
        block = BLOCKS[name]
        is_part = (name in partial and name in _OPTIONAL and isinstance(raw, dict)
                   and not set(block.model_fields) - _OPTIONAL[name] <= set(raw))
        if is_part:
            blocks[name], part_errors = _partial_block(block, name, raw, source)
            errors += part_errors
            continue
        try:
            blocks[name] = _ADAPTERS[name].validate_python(raw)
        except ValidationError as e:
            errors.append(_format(e, name, raw, source))
    if not errors:
        p = Params.model_construct(profile=profile, **blocks)  # each block validated above
        errors += _cross_checks(p, source)
    if errors:
        raise ParamsError("\n".join(errors))
    return p


# each block model's keys with a default (a block given without them is whole)
_OPTIONAL = {name: {k for k, f in block.model_fields.items() if not f.is_required()}
             for name, block in BLOCKS.items() if name not in ("runs", "engine")}

# World knobs with a neutral value, at which the world is the world without the knob: at that value they are left
# out of the resolved world block, so that the world, run and evaluation fingerprints are those of a block without them.
WORLD_NEUTRAL = {"language_share_exponent": 1.0, "person_scale": 1.0, "western_head": True, "regional_variants": True,
                 "income_appearance": True}


def world_identity(world: dict) -> dict:
    """A world block without the knobs set to their neutral value (WORLD_NEUTRAL)."""
    return {k: v for k, v in world.items() if not (k in WORLD_NEUTRAL and v == WORLD_NEUTRAL[k])}


def _cross_checks(p: Params, source: str) -> list[str]:
    """Checks that span blocks: every run's fraction is a sampled subset; a short run's first cool-down
    leaves room for the warm-up and the cool-down."""
    errors = []
    fractions = getattr(p.sample, "fractions", None) if p.sample is not None else None
    for name, run in (p.runs or {}).items():
        if fractions is not None and run.fraction not in fractions:
            errors.append(f"{source}: runs.{name}.fraction = {run.fraction}: not one of sample.fractions "
                          f"{fractions}")
        if run.model and p.model is not None:
            try:
                p.model.for_run(run)
            except ValidationError as e:
                errors.append(_format(e, f"runs.{name}.model", {**p.model.model_dump(), **run.model}, source))
        if run.filter is not None:
            arms = getattr(p.filter, "arms", None) if p.filter is not None else None
            if arms is None:
                errors.append(f"{source}: runs.{name}.filter = {run.filter!r}: params have no filter block")
            elif run.filter not in arms:
                errors.append(f"{source}: runs.{name}.filter = {run.filter!r}: not one of filter.arms {arms}")
            if fractions is not None and run.fraction != max(fractions):
                errors.append(f"{source}: runs.{name}.fraction = {run.fraction}: a filter arm is drawn from the "
                              f"whole pool, so its run's fraction must be the pool's, {max(fractions)}")
        if p.train is not None and run.budget < 1.0:
            first, needed = p.train.for_run(run).first_cooldown()
            if needed > first:
                errors.append(f"{source}: runs.{name}.budget = {run.budget}: its first cool-down ends at "
                              f"{first:.0f} examples, before train.warmup_examples + cooldown_examples = {needed}")
    errors += _real_benchmarks_given(p, source)
    return errors


def _real_benchmarks_given(p: Params, source: str) -> list[str]:
    """A report of the real benchmarks (figures.source real, or auto on a real pool) needs at least one of them."""
    if p.figures is None or p.sample is None or p.evaluate is None:
        return []
    if p.benchmark_source != "real" or any(p.evaluate.real_sets.values()):
        return []
    why = (f"sample.source is {p.sample.source!r}, so the report is of the real benchmarks"
           if p.figures.source == "auto" else "the report is of the real benchmarks")
    return [f"{source}: evaluate.real_sets = {p.evaluate.real_sets}: {why}, and none is given; set the folder of at "
            "least one (e.g. imagenet: /data/imagenet/val), or figures.source: analog to report the synthetic "
            "analogs instead"]


def apply_sets(p: dict, sets) -> dict:
    """p with each "BLOCK.KEY=VALUE" of `sets` (VALUE in YAML) written into the resolved params, in place;
    validate(p) afterwards checks the result (the --set of `python -m vlscale.training.run` and bench/)."""
    for item in sets:
        path, _, value = item.partition("=")
        *blocks, key = path.split(".")
        target = p
        for b in blocks:
            target = target[b]
        target[key] = yaml.safe_load(value)
    return p


def read_mapping(path: Path, what: str) -> dict:
    try:
        value = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ParamsError(f"{path}: no such file ({what})") from None
    if value is None:  # an empty overlay
        value = {}
    if not isinstance(value, dict):
        raise ParamsError(f"{path}: expected a mapping of blocks ({what}), got {type(value).__name__}")
    return value


def overlay_path(params_file: str | Path, profile: str) -> Path:
    """The overlay file of `profile` for the params file `params_file` (profiles/<profile>.yaml beside it)."""
    return Path(params_file).parent / PROFILES_DIR / f"{profile}.yaml"


def read_params(path: str | Path = "params.yaml", profile: str | None = None) -> dict:
    """params.yaml with its profile's overlay laid over it, not yet validated: the values as the files write them.

    `profile` replaces the file's `profile` (for one run with another profile). Raises ParamsError naming the file
    and key of an unknown profile, a missing overlay file or an overlay key params.yaml lacks.
    """
    path = Path(path)
    raw = read_mapping(path, "the params")
    if profile is not None:
        raw["profile"] = profile
    profile = raw.get("profile")
    if profile not in PROFILES:
        raise ParamsError(f"{path}: profile = {profile!r}: unknown profile; allowed: {', '.join(PROFILES)}")
    over = overlay_path(path, profile)
    return overlay(raw, read_mapping(over, f"profile {profile}'s overlay"), str(over))


def load_params(path: str | Path = "params.yaml", profile: str | None = None) -> Params:
    """params.yaml resolved for its profile (or `profile`) and validated: every block with its defaults filled in.

    Raises ParamsError naming the file, the key, the bad value and what is allowed.
    """
    params = read_params(path, profile)
    over = overlay_path(path, params["profile"])
    return validate(params, f"{path} with {over}" if read_mapping(over, "") else str(path))
