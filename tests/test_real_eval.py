"""The protocols on the real sets (evals/real_eval.py), run on tiny sets written in each official
format and an embedder whose answers are known: an image's colour names its concepts, a text's
embedding is the one-hot of the concept it names, so every expected error is counted by hand."""
import json
import re

import numpy as np
import pandas as pd
import pytest

from conftest import write_coco, write_csv, write_image, write_xm3600
from vlscale.config import OCCUPATION_PAIRS
from vlscale.evals import real_sets
from vlscale.evals.embedder import Embedder, Prompts
from vlscale.evals.real_eval import evaluate_real, income_group, real_suite, shot_pool
from vlscale.evals.rows import binomial_se_pct

PX = 8
STEP = 8  # colour levels between concepts; JPEG moves a uniform colour by at most 3
TEMPLATE = "a photo of a {}."
PROMPTS = Prompts(templates=(TEMPLATE,), gender_words={"male": "man", "female": "woman"})


def paint(path, first, second=None, third=None):
    """A uniform JPEG whose red names concept `first`, green `second` and blue `third` (None: none)."""
    level = lambda c: 0 if c is None else STEP * (c + 1)  # noqa: E731
    write_image(path, colour=(STEP * first, level(second), level(third)))


def concept_embedder(concepts: dict[str, int], seen_shapes: list | None = None) -> Embedder:
    """Embedder over concepts 0..max: a text (a filled TEMPLATE or a caption, looked up in `concepts`)
    embeds to its concept's one-hot; a painted image to e[first] + e[second] / 2 + e[third] / 4,
    normalised. Batches of 4, so sets span several batches and a padded last one."""
    eye = np.eye(max(concepts.values()) + 1)

    def encode(texts):
        words = [m.group(1) if (m := re.fullmatch(r"a photo of a (.+)\.", t)) else t for t in texts]
        unknown = [w for w in words if w not in concepts]
        assert not unknown, f"texts name no concept: {unknown}"
        return np.array([concepts[w] for w in words])

    def embed_images(batch):
        assert batch.dtype == np.float32 and batch.shape[1:] == (PX, PX, 3)
        assert batch.min() >= -1.0 and batch.max() <= 1.0
        if seen_shapes is not None:
            seen_shapes.append(batch.shape)
        level = np.rint((batch.mean(axis=(1, 2)) + 1.0) * 127.5 / STEP).astype(int)  # [B, 3]
        z = eye[level[:, 0]]
        for channel, weight in ((1, 0.5), (2, 0.25)):
            named = level[:, channel] > 0
            z[named] += weight * eye[level[named, channel] - 1]
        return z / np.linalg.norm(z, axis=1, keepdims=True)

    return Embedder(embed_images, lambda tokens: eye[tokens], encode, batch_size=4)


def by_task(rows):
    """{task: its summary (task, metric, value, se, n)}; the per-item outcomes must average to the value."""
    assert len({r["task"] for r in rows}) == len(rows), "task names repeat"
    for r in rows:
        if "item" in r:
            mean = float(np.mean(r["item_value"]))
            expected = {"error_pct": 100 * (1 - mean), "male_preference_pct": 100 * mean, "probability": mean}
            assert len(r["item"]) == r["n"] and expected[r["metric"]] == pytest.approx(r["value"], abs=1e-4)
    return {r["task"]: {k: r[k] for k in ("task", "metric", "value", "se", "n")} for r in rows}


def index(words):
    return {w: i for i, w in enumerate(words)}


# --- which set, which EvalSet ---------------------------------------------------------------------


def test_unknown_set_name_and_a_mismatched_set_are_errors_naming_them(tmp_path):
    write_coco(tmp_path)
    coco = real_sets.load_coco_captions(tmp_path)
    embedder = concept_embedder({"x": 0})
    with pytest.raises(ValueError, match=r"no protocols for real set 'cifar'; expected one of \['coco', 'dollarstreet'"):
        evaluate_real("cifar", coco, embedder, PROMPTS, PX)
    with pytest.raises(ValueError, match=r"real set 'flickr': got the EvalSet of 'coco'; expected one from "
                                         r"real_sets.load_flickr30k \(named 'flickr30k'\)"):
        evaluate_real("flickr", coco, embedder, PROMPTS, PX)


# --- ImageNet: 0-shot and representation bias -------------------------------------------------------


def _imagenet(root):
    """Two images of each of three classes; names from LOC_synset_mapping.txt (one needs canonicalising)."""
    wnids = ["n01440764", "n02085782", "n02099601"]
    (root / "LOC_synset_mapping.txt").write_text(
        "n01440764 tench, Tinca tinca\nn02085782 Japanese_spaniel\nn02099601 golden retriever\n")
    return [root / "val" / wnid / f"ILSVRC2012_val_0000000{2 * c + k}.JPEG"
            for c, wnid in enumerate(wnids) for k in range(2)]


IMAGENET_WORDS = index(["tench", "japanese spaniel", "golden retriever", "man", "woman"])


def test_imagenet_perfect_embeddings_give_zero_error_and_the_counted_male_preference(tmp_path):
    paths = _imagenet(tmp_path)
    man, woman = IMAGENET_WORDS["man"], IMAGENET_WORDS["woman"]
    for n, (path, gender) in enumerate(zip(paths, [man, man, woman, man, None, woman])):
        paint(path, n // 2, gender)
    data = real_sets.load_imagenet(tmp_path)
    shapes = []
    rows = by_task(evaluate_real("imagenet", data, concept_embedder(IMAGENET_WORDS, shapes), PROMPTS, PX))
    assert rows["imagenet/0shot"] == dict(task="imagenet/0shot", metric="error_pct", value=0.0, se=0.0, n=6)
    # 3 of 6 images lean "man", 2 "woman"; the one without a gender ties, and a tie counts half.
    assert rows["fairface/representation_bias"] == dict(
        task="fairface/representation_bias", metric="male_preference_pct", value=pytest.approx(100 * 3.5 / 6),
        se=pytest.approx(binomial_se_pct(3.5 / 6, 6)), n=6)
    assert shapes == [(4, PX, PX, 3), (4, PX, PX, 3)]  # 6 images: a full batch and a padded one


def test_imagenet_one_misread_image_of_six_is_one_sixth_error(tmp_path):
    paths = _imagenet(tmp_path)
    for n, path in enumerate(paths):
        paint(path, 2 if n == 0 else n // 2)  # the first tench looks like a golden retriever
    data = real_sets.load_imagenet(tmp_path)
    rows = by_task(evaluate_real("imagenet", data, concept_embedder(IMAGENET_WORDS), PROMPTS, PX))
    assert rows["imagenet/0shot"]["value"] == pytest.approx(100 / 6)


# --- COCO and Flickr30k: retrieval -------------------------------------------------------------------


def test_coco_retrieval_with_the_two_test_images_swapped_misses_at_1_and_hits_at_10(tmp_path):
    write_coco(tmp_path)
    data = real_sets.load_coco_captions(tmp_path)  # test images: cocoid 1 and 2, five captions each
    captions = {f"image {i} caption {k}": i - 1 for i in (1, 2, 3) for k in range(5)}
    for swapped in (False, True):
        for row, path in enumerate(data.images):
            paint(path, 1 - row if swapped else row)
        rows = by_task(evaluate_real("coco", data, concept_embedder(captions), PROMPTS, PX))
        got = {t: r["value"] for t, r in rows.items()}
        if not swapped:
            assert set(got.values()) == {0.0}
        else:
            # Each image's own captions score 0, the other image's five score 1: rank 5 among 10 texts.
            # Each caption's image scores 0, the other image 1: rank 1 among 2 images.
            assert got == {"coco/i2t": 100.0, "coco/t2i": 100.0, "coco/i2t@5": 100.0, "coco/t2i@5": 0.0,
                           "coco/i2t@10": 0.0, "coco/t2i@10": 0.0}
        assert rows["coco/i2t"]["n"] == 2 and rows["coco/t2i"]["n"] == 10


def _flickr30k(root, test_images, captions_per_image=2):
    """Karpathy dataset_flickr30k.json: one train image, then `test_images` test ones, with
    sentences "photo <n> text <k>"; returns the test images' paths in order."""
    records = [("1000092795.jpg", "train")] + [(f"{1007129816 + n}.jpg", "test") for n in range(test_images)]
    data = {"dataset": "flickr30k", "images": [
        {"filename": name, "split": split, "imgid": n,
         "sentences": [{"raw": f"photo {n} text {k}", "tokens": []} for k in range(captions_per_image)]}
        for n, (name, split) in enumerate(records)]}
    (root / "dataset_flickr30k.json").write_text(json.dumps(data))
    for n, (name, _) in enumerate(records):
        write_image(root / "flickr30k-images" / name, n)
    return [root / "flickr30k-images" / name for name, split in records if split == "test"]


def test_flickr_retrieval_with_two_of_six_images_swapped_is_one_third_error_at_1(tmp_path):
    paths = _flickr30k(tmp_path, 6)
    for row, path in enumerate(paths):
        paint(path, {4: 5, 5: 4}.get(row, row))
    data = real_sets.load_flickr30k(tmp_path)
    # Test image n is record n + 1 of the file; its captions name concept n.
    captions = {f"photo {n + 1} text {k}": n for n in range(6) for k in range(2)}
    rows = by_task(evaluate_real("flickr", data, concept_embedder(captions), PROMPTS, PX))
    assert rows["flickr/i2t"]["value"] == pytest.approx(100 / 3) and rows["flickr/i2t"]["n"] == 6
    assert rows["flickr/t2i"]["value"] == pytest.approx(100 / 3) and rows["flickr/t2i"]["n"] == 12
    # A swapped image's own captions tie (similarity 0) with the 8 captions of other images, below
    # the 2 of its partner: at k=5 a random order of the 10 tied puts one of its 2 in the 3 places
    # left with probability 1 - C(8,3)/C(10,3). A swapped caption ties its image with 4 others
    # below the partner's: a hit at 5 with probability 4/5.
    hit_i2t, hit_t2i = 1 - 56 / 120, 4 / 5
    assert rows["flickr/i2t@5"]["value"] == pytest.approx(100 * 2 * (1 - hit_i2t) / 6)
    assert rows["flickr/t2i@5"]["value"] == pytest.approx(100 * 4 * (1 - hit_t2i) / 12)


# --- Crossmodal-3600: per language, over the images captioned in it ---------------------------------


XM_KEYS = ["000411001ff7dd4f", "00b1a5c3e7f0d2aa", "0a1b2c3d4e5f6071"]
XM_CAPTIONS = {"a dog": 0, "a boat": 1, "a house": 2, "he kurī": 0, "he whare": 2, "כלב": 1}


def _xm3600_set(root, painted):
    for key, concept in zip(XM_KEYS, painted):
        paint(root / "images" / f"{key}.jpg", concept)
    write_xm3600(root, [
        {"image/key": XM_KEYS[0], "image/locale": "en", "en": {"caption": ["a dog"]}, "mi": {"caption": ["he kurī"]}},
        {"image/key": XM_KEYS[1], "image/locale": "iw", "en": {"caption": ["a boat"]}, "iw": {"caption": ["כלב"]}},
        {"image/key": XM_KEYS[2], "image/locale": "mi", "en": {"caption": ["a house"]}, "mi": {"caption": ["he whare"]}},
    ])
    return real_sets.load_xm3600(root)


def test_xm3600_each_language_retrieves_among_only_the_images_captioned_in_it(tmp_path):
    # The boat image (the only one with Hebrew captions, no Maori ones) is painted as the dog.
    data = _xm3600_set(tmp_path, [0, 0, 2])
    rows = by_task(evaluate_real("xm3600", data, concept_embedder(XM_CAPTIONS), PROMPTS, PX))
    assert set(rows) == {f"xm3600/{d}/{lang}" for d in ("i2t", "t2i") for lang in ("en", "mi", "iw")}
    # English: the boat image finds "a dog" above its own caption. Text->image: "a boat" ties all 3
    # images at 0 (a hit 1/3 of the time), "a dog" ties its image with the boat image painted as a dog
    # (1/2), "a house" finds its own: error (2/3 + 1/2) / 3.
    assert rows["xm3600/i2t/en"]["value"] == pytest.approx(100 / 3) and rows["xm3600/i2t/en"]["n"] == 3
    assert rows["xm3600/t2i/en"]["value"] == pytest.approx(100 * (2 / 3 + 1 / 2) / 3) and rows["xm3600/t2i/en"]["n"] == 3
    # Maori captions only the dog and the house: the misread boat image is not a candidate.
    assert (rows["xm3600/i2t/mi"]["value"], rows["xm3600/i2t/mi"]["n"]) == (0.0, 2)
    assert (rows["xm3600/t2i/mi"]["value"], rows["xm3600/t2i/mi"]["n"]) == (0.0, 2)
    assert rows["xm3600/i2t/iw"]["n"] == 1


def test_xm3600_a_language_outside_crossmodal_3600_is_an_error_naming_it(tmp_path):
    data = _xm3600_set(tmp_path, [0, 1, 2])
    data.captions.loc[0, "language"] = "xx"
    with pytest.raises(ValueError, match=r"xm3600: captions in language 'xx'; expected Crossmodal-3600 codes"):
        evaluate_real("xm3600", data, concept_embedder(XM_CAPTIONS), PROMPTS, PX)


# --- Dollar Street: first topics, income groups, country geolocalisation -----------------------------


def test_income_groups_include_their_upper_edge():
    incomes = [0, 200, 200.01, 685, 685.01, 1998, 1998.01, 1e5]
    assert income_group(incomes).tolist() == ["0-200", "0-200", "200-685", "200-685", "685-1998", "685-1998",
                                               ">1998", ">1998"]
    with pytest.raises(ValueError, match=r"income\[1\]: income -1.0; expected a non-negative number"):
        income_group([10, -1])


DS_INCOMES = [0, 200, 200.01, 685, 685.01, 1998, 1998.01, 4000]  # two of each group, edges included
DS_WORDS = index(["stove", "toothbrush", "Burundi", "Sweden", "Peru"])


def _dollar_street(root, n=40, wrong=(0, 8), income=None, topics=("stove", "toothbrush"), wrong_country=()):
    """images_v2_imagenet_test.csv: image i has income DS_INCOMES[i % 8], first topic one of `topics`
    in turn (a second topic that is no class), country Burundi or Sweden (image n: Peru), and a colour
    naming its first topic (the other one for `wrong`) and its country (the other one for
    `wrong_country`). One extra row has no ImageNet synset and a topic no embedder knows: it must
    not be evaluated."""
    rows = []
    for i in range(n + 2):
        topic, country = topics[i % len(topics)], ("Burundi", "Sweden")[(i // 2) % 2]
        if i == n:
            country = "Peru"
        synsets = "['n04330267']" if i <= n else "[]"
        written = f"['{topic}', 'kitchen']" if i <= n else "['bed']"
        rel = f"assets/{i:05d}/image.jpg"
        rows.append({"id": f"{i:05d}", "country.name": country, "region.id": "af", "income": DS_INCOMES[i % 8],
                     "imageRelPath": rel, "topics": written, "imagenet_sysnet_id": synsets})
        painted = DS_WORDS[("toothbrush", "stove")[i % 2] if i in wrong else topic]
        seen_country = {"Burundi": "Sweden", "Sweden": "Burundi"}[country] if i in wrong_country else country
        paint(root / rel, painted, DS_WORDS[seen_country])
    if income is not None:
        rows[income[0]]["income"] = income[1]
    pd.DataFrame(rows).to_csv(root / "images_v2_imagenet_test.csv", index=False)
    return real_sets.load_dollar_street(root)


def test_dollar_street_counts_errors_per_income_group_and_their_gap(tmp_path):
    data = _dollar_street(tmp_path)  # 41 mapped images; images 0 and 8 (income 0) misread
    rows = by_task(evaluate_real("dollarstreet", data, concept_embedder(DS_WORDS), PROMPTS, PX, shots=2))
    assert rows["dollarstreet/0shot"]["value"] == pytest.approx(100 * 2 / 41) and rows["dollarstreet/0shot"]["n"] == 41
    # income 0 and 200 make the first group: i % 8 in (0, 1), 11 images (the Peru image, 40, is one).
    assert rows["dollarstreet/income_0_200"]["value"] == pytest.approx(100 * 2 / 11)
    assert rows["dollarstreet/income_0_200"]["n"] == 11
    for task in ("dollarstreet/income_200_685", "dollarstreet/income_685_1998", "dollarstreet/income_over_1998"):
        assert rows[task]["value"] == 0.0 and rows[task]["n"] == 10
    assert rows["dollarstreet/disparity_income"]["metric"] == "gap_pct"
    assert rows["dollarstreet/disparity_income"]["value"] == pytest.approx(100 * 2 / 11)


def test_dollar_street_geolocalisation_tests_the_other_half_and_drops_rare_countries(tmp_path):
    # One topic, so an image's embedding varies only with its country; one test-side Swedish image
    # looks Burundian.
    keys = [f"assets/{i:05d}/image.jpg" for i in range(41)]
    test = ~shot_pool(keys, seed=3)
    test[40] = False  # the one Peru image: too few shots, so no test either
    misread = next(i for i in np.flatnonzero(test) if (i // 2) % 2 == 1)
    data = _dollar_street(tmp_path, wrong=(), topics=("stove",), wrong_country=(misread,))
    rows = by_task(evaluate_real("dollarstreet", data, concept_embedder(DS_WORDS), PROMPTS, PX, shots=2, seed=3))
    assert rows["dollarstreet/geoloc_10shot"]["n"] == int(test.sum())
    assert rows["dollarstreet/geoloc_10shot"]["value"] == pytest.approx(100 / test.sum())


def test_dollar_street_negative_income_names_the_image_and_file(tmp_path):
    data = _dollar_street(tmp_path, income=(5, -3))
    with pytest.raises(ValueError, match=r"dollar_street image 'assets/00005/image.jpg' \(.*assets/00005/image.jpg\): "
                                         r"income -3.0; expected a non-negative"):
        evaluate_real("dollarstreet", data, concept_embedder(DS_WORDS), PROMPTS, PX)


# --- the few-shot split ----------------------------------------------------------------------------


def test_shot_pool_is_a_seeded_function_of_each_key_and_about_half():
    keys = [f"image_{i}.jpg" for i in range(2000)]
    pool = shot_pool(keys, seed=0)
    assert np.array_equal(pool, shot_pool(keys, seed=0))
    assert np.array_equal(shot_pool(keys[::-1], seed=0), pool[::-1])  # order and neighbours do not matter
    assert np.array_equal(shot_pool(keys[:10], seed=0), pool[:10])
    assert 0.45 < pool.mean() < 0.55
    assert not np.array_equal(shot_pool(keys, seed=1), pool)


# --- GeoDE: regions in either spelling, country and region geolocalisation ---------------------------


GEODE_REGIONS = ["Africa", "Americas", "East Asia", "Europe", "South East Asia", "West Asia"]
GEODE_COUNTRIES = ["Nigeria", "Colombia", "Japan", "Italy", "Indonesia", "Turkey"]
GEODE_WORDS = index(["bag", "cleaning equipment", *GEODE_COUNTRIES, "Egypt"])


def _geode(root, regions=GEODE_REGIONS, per_region=8, objects=("bag", "cleaning_equipment"), egypt=True):
    """index.csv: `per_region` images per region (region written spaced and unspaced in turn), one
    country per region (and, with `egypt`, one Egypt image); `objects` in turn. Each image's colour
    names its object and country; the first image is misread (as the other object) if there are two."""
    rows, n = [], 0
    for r, (region, country) in enumerate(zip(regions, GEODE_COUNTRIES)):
        for k in range(per_region + (r == 0 and egypt)):
            obj = objects[k % len(objects)]
            place = "Egypt" if k == per_region else country
            path = f"{obj}/{region.replace(' ', '')}_{k}.jpg"
            rows.append([path, obj, region if k % 2 else region.replace(" ", ""), place])
            seen = objects[1 - k % 2] if n == 0 and len(objects) == 2 else obj
            seen = GEODE_WORDS[seen.replace("_", " ")]
            paint(root / "images" / path, seen, GEODE_WORDS[place])
            n += 1
    write_csv(root / "index.csv", ["file_path", "object", "region", "ip_country"], rows)
    return real_sets.load_geode(root)


def test_geode_errors_per_region_in_either_spelling_and_the_gap(tmp_path):
    data = _geode(tmp_path)
    rows = by_task(evaluate_real("geode", data, concept_embedder(GEODE_WORDS), PROMPTS, PX, shots=2))
    assert rows["geode/0shot"]["value"] == pytest.approx(100 / 49)
    assert rows["geode/africa"]["value"] == pytest.approx(100 / 9) and rows["geode/africa"]["n"] == 9
    for task in ("geode/americas", "geode/east_asia", "geode/europe", "geode/south_east_asia", "geode/west_asia"):
        assert rows[task]["value"] == 0.0 and rows[task]["n"] == 8
    assert rows["geode/disparity_region"]["value"] == pytest.approx(100 / 9)


def test_geode_geolocalises_the_test_half_by_country_and_by_region(tmp_path):
    # One object, so an image's embedding varies only with its country (one per region).
    data = _geode(tmp_path, objects=("bag",), egypt=False)
    rows = by_task(evaluate_real("geode", data, concept_embedder(GEODE_WORDS), PROMPTS, PX, shots=2))
    pool, country = shot_pool(data.examples["key"], seed=0), data.examples["country"]
    enough_shots = country.map(country[pool].value_counts()).fillna(0).to_numpy() >= 2
    assert 0 < (~pool & enough_shots).sum() < (~pool).sum()  # a country with too few shots leaves the test
    for task in ("geode/country_geoloc_10shot", "geode/region_geoloc_10shot"):
        assert (rows[task]["value"], rows[task]["n"]) == (0.0, int((~pool & enough_shots).sum()))


def test_geode_unknown_region_names_the_value_the_image_and_the_regions(tmp_path):
    data = _geode(tmp_path, regions=["Africa", "Americas", "East Asia", "Europe", "Oceania", "West Asia"], per_region=2)
    with pytest.raises(ValueError, match=r"geode image 'bag/Oceania_0.jpg' \(.*images/bag/Oceania_0.jpg\): "
                                         r"region 'Oceania'; expected one of \['Africa', 'Americas', 'EastAsia'"):
        evaluate_real("geode", data, concept_embedder(GEODE_WORDS), PROMPTS, PX, shots=2)


# --- GLDv2 ---------------------------------------------------------------------------------------------


def _gldv2(root):
    ids = {"17660ef415d37059": "1", "92b6290d571448f6": "1", "cd41bf948edc0340": "12"}
    write_csv(root / "train_clean.csv", ["landmark_id", "images"],
              [["1", "17660ef415d37059 92b6290d571448f6"], ["12", "cd41bf948edc0340"]])
    write_csv(root / "train_label_to_category.csv", ["landmark_id", "category"],
              [["1", "http://commons.wikimedia.org/wiki/Category:Haleakal%C4%81_National_Park"],
               ["12", "http://commons.wikimedia.org/wiki/Category:Eiffel_Tower"]])
    return [root / "train" / i[0] / i[1] / i[2] / f"{i}.jpg" for i in ids]


GLDV2_WORDS = index(["haleakalā national park", "eiffel tower"])


def test_gldv2_zero_shot_over_decoded_category_names(tmp_path):
    paths = _gldv2(tmp_path)
    for path, concept in zip(paths, [0, 1, 1]):  # the second Haleakalā image looks like the tower
        paint(path, concept)
    words = index(["haleakalā national park", "eiffel tower"])
    rows = by_task(evaluate_real("gldv2", real_sets.load_gldv2(tmp_path), concept_embedder(words), PROMPTS, PX))
    assert rows == {"gldv2/0shot": dict(task="gldv2/0shot", metric="error_pct", value=pytest.approx(100 / 3),
                                        se=pytest.approx(binomial_se_pct(2 / 3, 3)), n=3)}


def test_an_undecodable_image_names_its_file(tmp_path):
    paths = _gldv2(tmp_path)
    for path in paths:
        paint(path, 0)
    paths[1].write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match=r"92b6290d571448f6.jpg: does not decode"):
        evaluate_real("gldv2", real_sets.load_gldv2(tmp_path), concept_embedder(GLDV2_WORDS), PROMPTS, PX,
                      strict=True)


def test_an_undecodable_image_is_left_out_and_counted(tmp_path):
    from vlscale.evals.real_eval import evaluate_real_set

    paths = _gldv2(tmp_path)
    for path in paths:
        paint(path, 0)
    paths[1].write_bytes(b"not a jpeg")
    data = real_sets.load_gldv2(tmp_path)
    with pytest.warns(UserWarning, match="1 of 3 images do not decode"):
        rows, read = evaluate_real_set("gldv2", data, concept_embedder(GLDV2_WORDS), PROMPTS, PX)
    assert read.accounting() == {"listed": 3, "evaluated": 2, "skipped": {real_sets.IMAGE_UNDECODABLE: 1}}
    assert read.skipped[real_sets.IMAGE_UNDECODABLE] == [str(paths[1])]
    assert {r["n"] for r in rows} == {2}


# --- FairFace: perceived gender and race, association bias ------------------------------------------


FAIRFACE_WORDS = index(["woman", "man", "black", "east asian", "indian", "latino hispanic", "middle eastern",
                        "southeast asian", "white", *(w for pair in OCCUPATION_PAIRS for w in pair)])


def _fairface(root, genders):
    """fairface_label_val.csv; image n's colour names its gender, its race (the first image's is
    misread as White) and an occupation: librarian for three women and one man, scientist for one woman."""
    races = list(real_sets.FAIRFACE_RACES)
    rows = []
    for n, gender in enumerate(genders):
        race = races[n % len(races)]
        occupation = {0: "librarian", 1: "librarian", 2: "librarian", 3: "scientist", 4: "librarian"}.get(n)
        rows.append([f"val/{n + 1}.jpg", "20-29", gender, race, "True"])
        seen_race = "white" if n == 0 else race.lower().replace("_", " ")
        paint(root / "val" / f"{n + 1}.jpg", FAIRFACE_WORDS[{"Female": "woman", "Male": "man"}[gender]],
              FAIRFACE_WORDS[seen_race], None if occupation is None else FAIRFACE_WORDS[occupation])
    write_csv(root / "fairface_label_val.csv", ["file", "age", "gender", "race", "service_test"], rows)
    return real_sets.load_fairface(root)


def test_fairface_perceived_attributes_and_association_bias_counted_by_hand(tmp_path):
    data = _fairface(tmp_path, ["Female"] * 4 + ["Male"] * 4)
    rows = by_task(evaluate_real("fairface", data, concept_embedder(FAIRFACE_WORDS), PROMPTS, PX))
    assert rows["fairface/perceived_gender"]["value"] == 0.0 and rows["fairface/perceived_gender"]["n"] == 8
    assert rows["fairface/perceived_race"]["value"] == pytest.approx(100 / 8)  # the first image reads White
    # librarian over scientist: 3 of 4 women; 1 of 4 men, the other 3 men tie (a tie counts half);
    # the other pairs tie everywhere: no preference, 0.5.
    assert rows["fairface/association_bias/librarian/female"]["value"] == pytest.approx(0.75)
    assert rows["fairface/association_bias/librarian/male"]["value"] == pytest.approx((1 + 3 * 0.5) / 4)
    assert rows["fairface/association_bias/librarian/male"]["metric"] == "probability"
    for first in ("nurse", "housekeeper", "receptionist", "secretary"):
        assert rows[f"fairface/association_bias/{first}/female"]["value"] == 0.5
        assert rows[f"fairface/association_bias/{first}/male"]["n"] == 4


def test_fairface_of_one_gender_is_an_error_naming_it(tmp_path):
    data = _fairface(tmp_path, ["Male"] * 3)
    with pytest.raises(ValueError, match=r"fairface: every image's gender is 'Male'; association bias needs images of both"):
        evaluate_real("fairface", data, concept_embedder(FAIRFACE_WORDS), PROMPTS, PX)


# --- the stage's suite ---------------------------------------------------------------------------------


def test_real_suite_gives_evaluate_run_one_function_per_set(tmp_path):
    paths = _gldv2(tmp_path / "gldv2")
    for path in paths:
        paint(path, 0)
    _xm3600_set(tmp_path / "xm3600", [0, 1, 2])
    sets = {"gldv2": real_sets.load_gldv2(tmp_path / "gldv2"), "xm3600": real_sets.load_xm3600(tmp_path / "xm3600")}
    words = {**index(["haleakalā national park", "eiffel tower"]), **XM_CAPTIONS}
    suite = real_suite(sets, PX, seed=0)
    assert list(suite) == ["gldv2", "xm3600"]
    for name, fn in suite.items():
        direct = evaluate_real(name, sets[name], concept_embedder(words), PROMPTS, PX)
        assert by_task(fn(concept_embedder(words), PROMPTS, 10)) == by_task(direct)


def test_xtd10_retrieval_per_language_over_real_files(tmp_path):
    names = ["COCO_val2014_000000000042.jpg", "COCO_val2014_000000000073.jpg"]
    (tmp_path / "test_image_names.txt").write_text("\n".join(names) + "\n")
    (tmp_path / "test_1kcaptions_es.txt").write_text("a\nb\n")  # each caption names its image's concept
    (tmp_path / "test_1kcaptions_de.txt").write_text("b\nb\n")  # the first German caption is wrong
    for path, concept in zip(names, [0, 1]):
        paint(tmp_path / "images" / path, concept)
    rows = by_task(evaluate_real("xtd10", real_sets.load_xtd10(tmp_path), concept_embedder(index(["a", "b"])),
                                 PROMPTS, PX))
    assert rows["xtd10/es/i2t"]["value"] == 0.0 and rows["xtd10/es/t2i"]["value"] == 0.0
    assert rows["xtd10/de/t2i"]["value"] == pytest.approx(50.0) and rows["xtd10/de/t2i"]["n"] == 2
