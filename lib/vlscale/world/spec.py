"""The world's fixed tables: languages, countries, regions, incomes, concepts and their popularity.

`build_world(params)` turns the `world` block of params.yaml and the real words in world/data into
NumPy tables. Everything random about an example is then drawn from these tables by hashing
(seed, id) (see truth.py); the tables themselves are a pure function of the params.

Mechanisms (docs/world.md, "The synthetic web"):
- page language = the pool stratum, with the paper's Table 15 shares (Quechua, which Table 15 omits,
  gets `quz_share_pct`; pages in languages outside XM3600 form the `und` stratum, whose captions are
  in a language drawn from the natural mix, as untagged pages are);
- country | language: the language's countries with weights decay^k, plus `foreign_page_frac` of
  pages about anywhere (the global mix); region = the country's GeoDE region;
- income | country: the real Dollar Street income mix of the country (or of its region), tilted
  toward richer homes, as the web is;
- concept | region: Zipf popularity over concepts with the ImageNet-like (Western) concepts at the
  head, culture-specific concepts boosted in their home region; landmarks (tied to one country)
  replace the concept on `landmark_share` of pages.
Each mechanism a finding may rest on can be switched off (world/ablations.py, docs/world.md).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from vlscale.config import OCCUPATION_PAIRS, REGIONS, XM3600_LANGUAGES, WorldParams, world_identity
from vlscale.world import vocab
from vlscale.world.coined import coined_name
from vlscale.world.hashing import alias_table
from vlscale.world.render import visual_tables

UNTAGGED = "und"
STRATA = (*XM3600_LANGUAGES, UNTAGGED)
INCOME_GROUPS = ("0-200", "200-685", "685-1998", ">1998")
GENDERS = ("female", "male")
OCCUPATIONS = tuple(o for pair in OCCUPATION_PAIRS for o in pair)  # the flat index truth.py draws
# The words for a person's perceived gender in English captions (training alt-text and benchmark
# captions) and in the evaluation prompts: one table, so a model meets the same words in both.
GENDER_WORDS = {"female": "woman", "male": "man"}
WRITTEN_WITHOUT_SPACES = ("ja", "zh")  # languages whose words are joined without spaces
CAPTION_KINDS = ("clean", "misaligned", "vague")
# Dollar Street has four regions; GeoDE's three Asian regions all fall under its "Asia".
DS_REGION = {"Africa": "Africa", "Americas": "Americas", "Europe": "Europe", "EastAsia": "Asia",
             "SouthEastAsia": "Asia", "WestAsia": "Asia"}
_MIN_DS_ROWS = 20  # below this a country's own Dollar Street income mix is too noisy to use


def join_words(words, language: str) -> str:
    """Words (or phrases) of `language` joined as that language writes them."""
    return ("" if language in WRITTEN_WITHOUT_SPACES else " ").join(words)


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream])


@dataclass(frozen=True, eq=False)
class World:
    """Tables of the synthetic web. Arrays are NumPy; `device_tables(xp)` gives them to JAX."""
    params: WorldParams  # the world block it was built from, its defaults filled in
    strata: tuple[str, ...]  # S page-language strata: 36 XM3600 codes + "und"
    page_share: np.ndarray  # [S] share of pages per stratum, sums to 1
    resource_group: tuple[str, ...]  # [S] "low", "high" or "none"
    country_codes: tuple[str, ...]  # [C] ISO 3166 alpha-2
    country_region: np.ndarray  # [C] index into REGIONS
    country_names: list[dict]  # [C] {language: name}
    concepts: list[dict]  # [K] concept records (landmarks appended)
    concept_popularity: np.ndarray  # [R, K] P(concept | region), zero for landmarks
    concept_rank: np.ndarray  # [K] global popularity rank (0 = most popular), landmarks last
    is_head: np.ndarray  # [K] ImageNet-like Western head concept
    culture_region: np.ndarray  # [K] home region of a culture-specific concept, -1 otherwise
    has_variants: np.ndarray  # [K] regional objects (GeoDE / Dollar Street): their look depends on region
    landmark_country: np.ndarray  # [K] country of a landmark concept, -1 otherwise
    landmark_start: int  # first landmark concept index
    tables: dict = field(repr=False)  # arrays used by truth.py (alias tables, rates)

    @property
    def seed(self) -> int:
        return self.params.seed

    @property
    def regions(self) -> tuple[str, ...]:
        return REGIONS

    def stratum_of(self, language: str) -> int:
        try:
            return self.strata.index(language)
        except ValueError:
            raise ValueError(f"unknown language '{language}'; strata are {', '.join(self.strata)}") from None

    def pool_sizes(self, pool_size: int) -> np.ndarray:
        """Examples per stratum in a pool of `pool_size`: shares rounded by largest remainder. [S] int64."""
        exact = self.page_share * pool_size
        sizes = np.floor(exact).astype(np.int64)
        short = int(pool_size - sizes.sum())
        order = np.lexsort((np.arange(len(exact)), -(exact - sizes)))
        sizes[order[:short]] += 1
        return sizes

    def device_tables(self, xp):
        """The tables as arrays of `xp` (numpy or jax.numpy). Under jit, JAX embeds them as constants;
        they are not cached, since an array made while tracing must not outlive the trace."""
        if xp is np:
            return self.tables
        return {k: xp.asarray(v) for k, v in self.tables.items()}

    def fingerprint(self) -> str:
        """A short hash of the params, recorded with every output made from this world."""
        identity = world_identity(self.params.model_dump())
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]


def paper_pages_pct() -> dict[str, float]:
    """The paper's Table 15: % of WebLI-100B pages per XM3600 language (Quechua is not in it)."""
    return {lang["code"]: lang["web_pages_pct"] for lang in vocab.load("languages")["languages"] if lang["web_pages_pct"]}


def _page_shares(quz_share_pct: float, exponent: float = 1.0):
    """Page share of each stratum ([S], sums to 1) and its resource group. The shares of the XM3600 languages
    other than English are Table 15's raised to `exponent` and scaled back to their total, so English and the
    untagged stratum keep theirs and the other languages keep their order."""
    langs = {lang["code"]: lang for lang in vocab.load("languages")["languages"]}
    missing = set(XM3600_LANGUAGES) - set(langs)
    if missing:
        raise ValueError(f"languages.json lacks {sorted(missing)}")
    paper = paper_pages_pct()
    pct = np.array([paper[c] if c != "quz" else quz_share_pct for c in XM3600_LANGUAGES])
    other = 100.0 - pct.sum()
    if other < 0:
        raise ValueError(f"page shares exceed 100% ({pct.sum()}); lower world.quz_share_pct")
    if exponent != 1.0:  # English, the Western benchmarks' language, keeps its share: the others are compressed
        rest = np.array([c != "en" for c in XM3600_LANGUAGES])
        pct[rest] = pct[rest].sum() * pct[rest] ** exponent / (pct[rest] ** exponent).sum()
    groups = tuple(langs[c]["resource_group"] or "none" for c in XM3600_LANGUAGES) + ("none",)
    return np.append(pct, other) / 100.0, groups


def _country_given_language(countries, world_params: WorldParams, share):
    C = len(countries)
    index = {c["iso2"]: i for i, c in enumerate(countries)}
    own = np.zeros((len(STRATA), C))
    primaries = {lang["code"]: lang["primary_country"] for lang in vocab.load("languages")["languages"]}
    for s, lang in enumerate(STRATA[:-1]):
        listed = [c for c in countries if lang in c["languages"]]
        if not listed:
            raise ValueError(f"countries.json: no country lists language '{lang}'")
        # the language's primary country first, then where it ranks highest among local languages
        listed.sort(key=lambda c: (c["iso2"] != primaries[lang], c["languages"].index(lang), c["iso2"]))
        for k, c in enumerate(listed):
            own[s, index[c["iso2"]]] = world_params.country_decay ** k
        own[s] /= own[s].sum()
    global_mix = (share[:-1, None] * own[:-1]).sum(0)
    global_mix /= global_mix.sum()
    own[-1] = global_mix  # untagged pages: anywhere
    f = world_params.foreign_page_frac
    return (1 - f) * own + f * global_mix[None, :]


def region_page_share(world_params: WorldParams) -> np.ndarray:
    """P(region) over the pool's pages: [R], in REGIONS' order (page shares times country | language)."""
    countries = vocab.load("countries")["countries"]
    share, _ = _page_shares(world_params.quz_share_pct, world_params.language_share_exponent)
    country = share @ _country_given_language(countries, world_params, share)
    region = np.array([REGIONS.index(c["region"]) for c in countries])
    return np.bincount(region, weights=country, minlength=len(REGIONS))


def _income_given_country(countries, world_params: WorldParams):
    ds = vocab.load("dollar_street")
    region_counts = {r: np.zeros(4) for r in ds["regions"]}
    for iso, counts in ds["country_income_counts"].items():
        region_counts[ds["country_region"][iso]] += counts
    table = np.zeros((len(countries), 4))
    for i, c in enumerate(countries):
        own = np.asarray(ds["country_income_counts"].get(c["iso2"], [0, 0, 0, 0]), float)
        table[i] = own if own.sum() >= _MIN_DS_ROWS else region_counts[DS_REGION[c["region"]]]
    table *= np.asarray(world_params.income_tilt)[None, :]
    return table / table.sum(1, keepdims=True)


def _names_a_country(names: dict, countries) -> bool:
    return any(c["names"].get(lang) and c["names"][lang] in name for lang, name in names.items() for c in countries)


def _landmark_name(kind_name: str, key: str, language: str, country_name: str | None) -> str:
    """A landmark's name: its kind and a coined proper name ("tower Velmor"), never its country's
    name, so that naming a landmark does not say where it is. A coined word that happens to contain
    the country's name is coined again from the key with a counter (deterministic, and rare)."""
    for attempt in range(100):
        proper = coined_name(key if attempt == 0 else f"{key}#{attempt}", language)
        name = join_words([kind_name, proper], language)
        if not country_name or country_name not in name:
            return name
    raise ValueError(f"landmark {key!r}: 100 coined names in {language!r} all contain {country_name!r}")


def _concepts(countries, world_params: WorldParams):
    base = vocab.load("concepts")["concepts"]
    # a landmark's kind: a place whose name names no country ("Japanese post office" would)
    places = [c for c in base if c["group"] == "Travel & Places" and c.get("culture_region") is None
              and not c.get("imagenet") and not _names_a_country(c["names"], countries)]
    rng = _rng(world_params.seed, 1)
    concepts = [dict(c, landmark_country=-1) for c in base]
    for ci, country in enumerate(countries):
        for j in range(world_params.landmarks_per_country):
            kind = places[rng.integers(len(places))]
            names = {lang: _landmark_name(kind["names"][lang], f"landmark:{country['iso2']}:{j}", lang,
                                          country["names"].get(lang)) for lang in kind["names"]}
            concepts.append(dict(key=f"landmark:{country['iso2']}:{j}", en=names["en"], group="Landmark",
                                 imagenet=False, culture_region=None, geode_object=None, dollar_street_topic=None,
                                 names=names, keywords={}, names_coined=kind.get("names_coined", []),
                                 landmark_country=ci))
    return concepts


def _popularity(concepts, world_params: WorldParams):
    K = len(concepts)
    is_landmark = np.array([c["landmark_country"] >= 0 for c in concepts])
    is_head = np.array([bool(c.get("imagenet")) for c in concepts])
    culture = np.array([REGIONS.index(c["culture_region"]) if c.get("culture_region") else -1 for c in concepts])
    rng = _rng(world_params.seed, 2)
    # popularity rank: the Western head first, then the rest of the everyday concepts, both shuffled (without the
    # Western head, all everyday concepts shuffled together)
    if world_params.western_head:
        everyday = [rng.permutation(np.flatnonzero(is_head)), rng.permutation(np.flatnonzero(~is_head & ~is_landmark))]
    else:
        everyday = [rng.permutation(np.flatnonzero(~is_landmark))]
    order = np.concatenate([*everyday, np.flatnonzero(is_landmark)])
    rank = np.empty(K, np.int64)
    rank[order] = np.arange(K)
    weight = (rank + 1.0) ** -world_params.zipf_exponent
    weight[is_landmark] = 0.0
    pop = np.tile(weight, (len(REGIONS), 1))
    for r in range(len(REGIONS)):
        pop[r, culture == r] *= world_params.culture_boost
    return pop / pop.sum(1, keepdims=True), rank, is_head, culture, is_landmark


@lru_cache(maxsize=8)
def _build(params_json: str) -> World:
    world_params = WorldParams.model_validate_json(params_json)
    countries = vocab.load("countries")["countries"]
    share, groups = _page_shares(world_params.quz_share_pct, world_params.language_share_exponent)
    country_region = np.array([REGIONS.index(c["region"]) for c in countries], np.int32)
    concepts = _concepts(countries, world_params)
    pop, rank, is_head, culture, is_landmark = _popularity(concepts, world_params)
    has_variants = np.array([bool(c.get("geode_object") or c.get("dollar_street_topic")) for c in concepts])
    landmark_country = np.array([c["landmark_country"] for c in concepts], np.int32)
    noise = world_params.noise
    caption_share = share[:-1] / share[:-1].sum()  # an untagged page's caption language
    c_acc, c_alias = alias_table(_country_given_language(countries, world_params, share))
    i_acc, i_alias = alias_table(_income_given_country(countries, world_params))
    k_acc, k_alias = alias_table(pop)
    l_acc, l_alias = alias_table(caption_share[None, :])
    low = np.array([g == "low" for g in groups])
    tables = dict(
        country_accept=c_acc, country_alias=c_alias,
        income_accept=i_acc, income_alias=i_alias,
        concept_accept=k_acc, concept_alias=k_alias,
        caption_language_accept=l_acc, caption_language_alias=l_alias,
        country_region=country_region,
        has_variants=has_variants & world_params.regional_variants,  # the objects whose look truth.py regionalises
        misaligned_rate=np.array([noise.misaligned[r] for r in REGIONS], np.float32),
        vague_rate=np.array([noise.vague[r] for r in REGIONS], np.float32),
        english_rate=np.where(low, noise.english_caption["low"], noise.english_caption["high"]).astype(np.float32),
    )
    landmark_start = int(np.argmax(is_landmark)) if is_landmark.any() else len(concepts)
    tables.update(visual_tables(world_params.seed, len(concepts), landmark_start, country_region,
                                world_params.background_region_tint, world_params.background_country_tint))
    return World(
        params=world_params, strata=STRATA, page_share=share, resource_group=groups,
        country_codes=tuple(c["iso2"] for c in countries), country_region=country_region,
        country_names=[c["names"] for c in countries], concepts=concepts, concept_popularity=pop,
        concept_rank=rank, is_head=is_head, culture_region=culture, has_variants=has_variants,
        landmark_country=landmark_country, landmark_start=landmark_start,
        tables=tables,
    )


def build_world(params: WorldParams | dict) -> World:
    """The world of a `world` params block, typed or a mapping (cached: the same params give the same object)."""
    params = WorldParams.model_validate(params).model_dump()
    return _build(json.dumps(params, sort_keys=True))
