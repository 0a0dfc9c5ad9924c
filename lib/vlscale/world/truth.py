"""Ground truth of any example: what its page, picture and caption are, from (world seed, id) alone.

`ground_truth(world, hi, lo, xp)` is written once for both array namespaces: NumPy on the host and
jax.numpy inside jit on an accelerator give bit-identical integers (uint32 hashing, alias draws).
Each attribute has its own hash stream, so adding an attribute never changes existing ones.
"""
from __future__ import annotations

import numpy as np

from vlscale.world.hashing import draw, hash32, id_words, uniform
from vlscale.world.ids import LOCAL_BITS, STRATUM_BITS

# One stream per random choice; a categorical draw uses stream and stream + 1000.
STREAM = dict(country=1, income=2, concept=3, landmark=4, landmark_pick=5, person=6, gender=7,
              occupation_pair=8, occupation=9, caption_kind=10, english=11, caption_language=12,
              caption_concept=13)
FIELDS = ("stratum", "caption_language", "country", "region", "income", "concept", "is_landmark",
          "variant", "has_person", "gender", "occupation", "caption_kind", "caption_concept")


def _h(world, xp, name, hi, lo, offset=0):
    return hash32(xp, world.seed, STREAM[name] + offset, hi, lo)


def _draw(world, xp, name, accept, alias, row, hi, lo):
    return draw(xp, accept, alias, row, _h(world, xp, name, hi, lo), _h(world, xp, name, hi, lo, 1000))


def ground_truth(world, hi, lo, xp=np) -> dict:
    """Every latent attribute of the examples with id words (hi, lo).

    hi, lo: uint32 arrays of equal shape (see hashing.id_words). Returns int32 arrays of that shape:
    stratum (page-language tag), caption_language (index into world.strata; differs from the tag on
    untagged pages and English-caption pages), country, region, income (0..3), concept, is_landmark,
    variant (the region for concepts whose look is regional, else -1), has_person, gender
    (0 female, 1 male, -1 no person), occupation (0..9 as flattened OCCUPATION_PAIRS, -1 none),
    caption_kind (0 clean, 1 misaligned, 2 vague), caption_concept (the concept the caption names).
    """
    t = world.device_tables(xp)
    hi = xp.asarray(hi, dtype=xp.uint32)
    lo = xp.asarray(lo, dtype=xp.uint32)
    i32 = xp.int32
    stratum = ((hi >> (LOCAL_BITS - 32)) & ((1 << STRATUM_BITS) - 1)).astype(i32)
    n_strata = len(world.strata)
    stratum = xp.minimum(stratum, n_strata - 1)  # held-out strata beyond the table read as untagged

    country = _draw(world, xp, "country", t["country_accept"], t["country_alias"], stratum, hi, lo)
    region = t["country_region"][country]
    income = _draw(world, xp, "income", t["income_accept"], t["income_alias"], country, hi, lo)

    everyday = _draw(world, xp, "concept", t["concept_accept"], t["concept_alias"], region, hi, lo)
    n_lm = world.params.landmarks_per_country
    landmark_share = xp.float32(world.params.landmark_share)
    is_landmark = (uniform(xp, _h(world, xp, "landmark", hi, lo)) < landmark_share) & (n_lm > 0)
    pick = (_h(world, xp, "landmark_pick", hi, lo) % xp.uint32(max(n_lm, 1))).astype(i32)
    landmark = world.landmark_start + country * n_lm + pick
    concept = xp.where(is_landmark, landmark, everyday).astype(i32)
    variant = xp.where(t["has_variants"][concept], region, -1).astype(i32)

    has_person = uniform(xp, _h(world, xp, "person", hi, lo)) < xp.float32(world.params.person_share)
    male = uniform(xp, _h(world, xp, "gender", hi, lo)) < xp.float32(world.params.male_share)
    pair = ((_h(world, xp, "occupation_pair", hi, lo) >> 8) % xp.uint32(5)).astype(i32)
    # the first member of each pair is the stereotypically female-associated one
    stereotyped = uniform(xp, _h(world, xp, "occupation", hi, lo)) < xp.float32(world.params.stereotype_strength)
    member = xp.where(stereotyped, male.astype(i32), 1 - male.astype(i32))
    gender = xp.where(has_person, male.astype(i32), -1).astype(i32)
    occupation = xp.where(has_person, 2 * pair + member, -1).astype(i32)

    u = uniform(xp, _h(world, xp, "caption_kind", hi, lo))
    mis = t["misaligned_rate"][region]
    vague = t["vague_rate"][region]
    caption_kind = xp.where(u < mis, 1, xp.where(u < mis + vague, 2, 0)).astype(i32)
    other = _draw(world, xp, "caption_concept", t["concept_accept"], t["concept_alias"], region, hi, lo)
    caption_concept = xp.where(caption_kind == 1, other, concept).astype(i32)

    untagged = stratum == n_strata - 1
    natural = _draw(world, xp, "caption_language", t["caption_language_accept"], t["caption_language_alias"],
                    0, hi, lo)
    language = xp.where(untagged, natural, stratum)
    english = uniform(xp, _h(world, xp, "english", hi, lo)) < t["english_rate"][language]
    en = world.strata.index("en")
    caption_language = xp.where(english, en, language).astype(i32)
    return dict(stratum=stratum, caption_language=caption_language, country=country.astype(i32),
                region=region.astype(i32), income=income.astype(i32), concept=concept, is_landmark=is_landmark,
                variant=variant, has_person=has_person, gender=gender, occupation=occupation,
                caption_kind=caption_kind, caption_concept=caption_concept)


def truth(world, ids) -> dict:
    """ground_truth on the host for int64 global ids (any shape); adds the ids themselves."""
    hi, lo = id_words(ids)
    out = ground_truth(world, hi, lo, np)
    out["id"] = np.asarray(ids, dtype=np.int64)
    return out
