"""Loaders of the real evaluation sets read tiny fixtures written in each set's official format."""
import json

import numpy as np
import pytest

from conftest import write_coco, write_csv, write_image, write_xm3600
from vlscale.evals import real_sets

# --- ImageNet --------------------------------------------------------------------------------------


def test_imagenet_class_folders_give_sorted_wnid_labels_and_synset_names(tmp_path):
    write_image(tmp_path / "val" / "n01443537" / "ILSVRC2012_val_00000002.JPEG", 1)
    write_image(tmp_path / "val" / "n01440764" / "ILSVRC2012_val_00000001.JPEG", 2)
    write_image(tmp_path / "val" / "n01440764" / "ILSVRC2012_val_00000003.JPEG", 3)
    (tmp_path / "LOC_synset_mapping.txt").write_text("n01440764 tench, Tinca tinca\nn01443537 goldfish, Carassius auratus\n")
    s = real_sets.load_imagenet(tmp_path)
    assert len(s) == 3
    assert s.class_ids == ["n01440764", "n01443537"]
    assert s.class_names == ["tench", "goldfish"]
    assert list(s.examples["label"]) == [0, 0, 1]
    pixels = real_sets.read_image(s.images[0])
    assert pixels.shape == (12, 16, 3) and pixels.dtype == np.uint8


def test_imagenet_flat_names_carry_the_wnid_and_names_default_to_clips(tmp_path):
    write_image(tmp_path / "ILSVRC2012_val_00000001_n01751748.JPEG", 1)
    write_image(tmp_path / "n01440764_18.JPEG", 2)
    s = real_sets.load_imagenet(tmp_path)
    assert dict(zip(s.examples["key"], s.examples["wnid"])) == {
        "ILSVRC2012_val_00000001_n01751748.JPEG": "n01751748",
        "n01440764_18.JPEG": "n01440764",
    }
    assert s.class_names == ["tench", "sea snake"]  # no synset file: CLIP's names, not "n01440764"
    write_image(tmp_path / "n99999999_1.JPEG", 3)
    with pytest.raises(ValueError, match=r"no synset file .* outside ImageNet-1k, e.g. \['n99999999'\]"):
        real_sets.load_imagenet(tmp_path)


def test_imagenet_file_without_wnid_names_the_file(tmp_path):
    write_image(tmp_path / "ILSVRC2012_val_00000001.JPEG")
    with pytest.raises(ValueError, match="ILSVRC2012_val_00000001.JPEG: no wnid"):
        real_sets.load_imagenet(tmp_path)


def test_imagenet_bad_synset_line_names_file_and_line(tmp_path):
    write_image(tmp_path / "n01440764" / "a.JPEG")
    (tmp_path / "synset_words.txt").write_text("n01440764 tench\ntench only\n")
    with pytest.raises(ValueError, match="synset_words.txt line 2"):
        real_sets.load_imagenet(tmp_path)


# --- COCO ------------------------------------------------------------------------------------------


def test_coco_karpathy_test_split_with_official_captions(tmp_path):
    write_coco(tmp_path)
    s = real_sets.load_coco_captions(tmp_path)
    assert list(s.examples["coco_id"]) == [1, 2]
    assert len(s.captions) == 10
    assert s.captions.groupby("image").size().tolist() == [5, 5]
    assert s.captions["caption"].iloc[0] == "image 1 caption 0"
    assert set(s.captions["language"]) == {"en"}
    assert real_sets.read_image(s.images[1]).shape == (12, 16, 3)


def test_coco_missing_image_is_an_error_unless_allowed_then_listed(tmp_path):
    write_coco(tmp_path, with_image_2=False)
    with pytest.raises(ValueError, match="1 of 2 images missing.*COCO_val2014_000000000002.jpg"):
        real_sets.load_coco_captions(tmp_path)
    with pytest.warns(UserWarning, match="left out"):
        s = real_sets.load_coco_captions(tmp_path, allow_missing=True)
    assert [p.name for p in s.missing_images] == ["COCO_val2014_000000000002.jpg"]
    assert len(s) == 1 and s.captions["image"].unique().tolist() == [0]


def test_coco_unknown_split_lists_the_splits_present(tmp_path):
    write_coco(tmp_path)
    with pytest.raises(ValueError, match=r"dataset_coco.json: no image has split 'restval'.*\['test', 'val'\]"):
        real_sets.load_coco_captions(tmp_path, split="restval")


# --- Crossmodal-3600 -------------------------------------------------------------------------------


def test_xm3600_captions_per_language_and_images_by_key(tmp_path):
    for n, key in enumerate(["000411001ff7dd4f", "00b1a5c3e7f0d2aa"]):
        write_image(tmp_path / "images" / f"{key}.jpg", n)
    write_xm3600(tmp_path, [
        {"image/key": "000411001ff7dd4f", "image/locale": "ar",
         "en": {"caption": ["a dog", "a brown dog"], "caption/tokenized": ["a dog", "a brown dog"]},
         "mi": {"caption": ["he kurī"], "caption/tokenized": ["he kurī"]}},
        {"image/key": "00b1a5c3e7f0d2aa", "image/locale": "mi",
         "en": {"caption": ["a boat"]}, "mi": {"caption": ["he waka", "he poti"]}},
    ])
    s = real_sets.load_xm3600(tmp_path)
    assert list(s.examples["key"]) == ["000411001ff7dd4f", "00b1a5c3e7f0d2aa"]
    assert s.captions.groupby(["language", "image"]).size().to_dict() == {("en", 0): 2, ("en", 1): 1, ("mi", 0): 1, ("mi", 1): 2}
    assert real_sets.load_xm3600(tmp_path, languages=["mi"]).captions["language"].unique().tolist() == ["mi"]
    with pytest.raises(ValueError, match=r"no captions in languages \['sw'\]"):
        real_sets.load_xm3600(tmp_path, languages=["sw"])


def test_xm3600_bad_line_names_file_and_line(tmp_path):
    write_xm3600(tmp_path, [{"image/key": "a", "en": {"caption": ["x"]}}, {"image/key": "b", "en": "just text"}])
    with pytest.raises(ValueError, match=r"captions.jsonl line 2 \(image b\): language 'en'"):
        real_sets.load_xm3600(tmp_path)


# --- Dollar Street ---------------------------------------------------------------------------------


def test_dollar_street_reads_income_region_topics_and_extra_columns(tmp_path):
    write_image(tmp_path / "assets" / "5d4be" / "abc.jpg", 1)
    write_image(tmp_path / "assets" / "5d4bf" / "def.jpg", 2)
    (tmp_path / "images_v2_imagenet_test.csv").write_text(
        "id,country.name,region.id,income,imageRelPath,topics,imagenet_sysnet_id\n"
        "5d4be,Burundi,af,26.99,assets/5d4be/abc.jpg,\"['stove', 'kitchen']\",\"['n04330267']\"\n"
        "5d4bf,Sweden,eu,4200,assets/5d4bf/def.jpg,\"['toothbrush']\",\"['n04350905']\"\n"
    )
    s = real_sets.load_dollar_street(tmp_path)
    assert len(s) == 2
    assert s.examples["income"].tolist() == [26.99, 4200.0]
    assert s.examples["region"].tolist() == ["af", "eu"]
    assert s.examples["country"].tolist() == ["Burundi", "Sweden"]
    assert s.examples["topics"].tolist() == [["stove", "kitchen"], ["toothbrush"]]
    assert "imagenet_sysnet_id" in s.examples


def test_dollar_street_missing_column_and_bad_income_are_named(tmp_path):
    write_csv(tmp_path / "images_v2.csv", ["id", "region.id", "imageRelPath", "topics"], [["1", "af", "a.jpg", "stove"]])
    with pytest.raises(ValueError, match=r"images_v2.csv: no income column; expected one of \['income'"):
        real_sets.load_dollar_street(tmp_path)
    write_csv(tmp_path / "images_v2.csv", ["id", "income", "region.id", "imageRelPath", "topics"],
               [["1", "12", "af", "a.jpg", "stove"], ["2", "lots", "eu", "b.jpg", "bed"]])
    with pytest.raises(ValueError, match="images_v2.csv line 3: income 'lots'; expected a number"):
        real_sets.load_dollar_street(tmp_path)


# --- GeoDE -----------------------------------------------------------------------------------------


def test_geode_labels_index_sorted_objects_with_regions(tmp_path):
    rows = [["bag/Africa_0.jpg", "bag", "Africa", "Nigeria"], ["stove/Europe_0.jpg", "stove", "Europe", "Italy"],
            ["bag/EastAsia_0.jpg", "bag", "EastAsia", "Japan"]]
    for n, row in enumerate(rows):
        write_image(tmp_path / "images" / row[0], n)
    write_csv(tmp_path / "index.csv", ["file_path", "object", "region", "ip_country"], rows)
    s = real_sets.load_geode(tmp_path)
    assert s.class_names == ["bag", "stove"]
    assert s.examples["label"].tolist() == [0, 1, 0]
    assert s.examples["region"].tolist() == ["Africa", "Europe", "EastAsia"]
    assert s.examples["country"].tolist() == ["Nigeria", "Italy", "Japan"]


def test_geode_empty_object_names_the_line(tmp_path):
    write_csv(tmp_path / "index.csv", ["file_path", "object", "region"], [["a.jpg", "bag", "Africa"], ["b.jpg", "", "Europe"]])
    with pytest.raises(ValueError, match="index.csv line 3: empty object"):
        real_sets.load_geode(tmp_path)


# --- FairFace --------------------------------------------------------------------------------------


def test_fairface_attributes_and_service_test(tmp_path):
    write_image(tmp_path / "val" / "1.jpg", 1)
    write_image(tmp_path / "val" / "2.jpg", 2, fmt="PNG")  # FairFace ships JPEGs; the loader reads by content
    write_csv(tmp_path / "fairface_label_val.csv", ["file", "age", "gender", "race", "service_test"],
               [["val/1.jpg", "3-9", "Male", "East Asian", "False"], ["val/2.jpg", "50-59", "Female", "Latino_Hispanic", "True"]])
    s = real_sets.load_fairface(tmp_path)
    assert s.examples["gender"].tolist() == ["Male", "Female"]
    assert s.examples["race"].tolist() == ["East Asian", "Latino_Hispanic"]
    assert s.examples["service_test"].tolist() == [False, True]
    assert real_sets.read_image(s.images[1]).shape == (12, 16, 3)


def test_fairface_unknown_gender_names_line_and_expected_values(tmp_path):
    write_csv(tmp_path / "fairface_label_val.csv", ["file", "age", "gender", "race", "service_test"],
               [["val/1.jpg", "3-9", "M", "White", "True"]])
    with pytest.raises(ValueError, match=r"fairface_label_val.csv line 2: gender 'M'; expected one of \('Female', 'Male'\)"):
        real_sets.load_fairface(tmp_path)


# --- Flickr30k -------------------------------------------------------------------------------------


def test_flickr30k_karpathy_test_split_with_raw_sentences(tmp_path):
    records = [("1000092795.jpg", "train"), ("1007129816.jpg", "test"), ("1009434119.jpg", "test")]
    for n, (name, _) in enumerate(records):
        write_image(tmp_path / "flickr30k-images" / name, n)
    data = {"dataset": "flickr30k", "images": [
        {"filename": name, "split": split, "imgid": n, "sentences": [{"raw": f"photo {n} text {k}", "tokens": []} for k in range(5)]}
        for n, (name, split) in enumerate(records)
    ]}
    (tmp_path / "dataset_flickr30k.json").write_text(json.dumps(data))
    s = real_sets.load_flickr30k(tmp_path)
    assert s.examples["key"].tolist() == ["1007129816.jpg", "1009434119.jpg"]
    assert len(s.captions) == 10 and s.captions["caption"].iloc[5] == "photo 2 text 0"


def test_flickr30k_record_without_filename_names_the_record(tmp_path):
    (tmp_path / "dataset_flickr30k.json").write_text(json.dumps({"images": [{"split": "test", "sentences": []}]}))
    with pytest.raises(ValueError, match=r"dataset_flickr30k.json images\[0\]"):
        real_sets.load_flickr30k(tmp_path)


# --- GLDv2 -----------------------------------------------------------------------------------------


def test_gldv2_train_clean_and_solution_csvs_with_category_names(tmp_path):
    ids = {"17660ef415d37059": "1", "92b6290d571448f6": "1", "cd41bf948edc0340": "12"}
    for n, image_id in enumerate(ids):
        write_image(tmp_path / "train" / image_id[0] / image_id[1] / image_id[2] / f"{image_id}.jpg", n)
    write_csv(tmp_path / "train_clean.csv", ["landmark_id", "images"],
               [["1", "17660ef415d37059 92b6290d571448f6"], ["12", "cd41bf948edc0340"]])
    write_csv(tmp_path / "train_label_to_category.csv", ["landmark_id", "category"],
               [["1", "http://commons.wikimedia.org/wiki/Category:Haleakal%C4%81_National_Park"]])
    s = real_sets.load_gldv2(tmp_path)
    assert dict(zip(s.examples["key"], s.examples["landmark_id"])) == ids
    assert s.class_ids == ["1", "12"] and s.class_names == ["Haleakalā National Park", "12"]
    assert s.examples["label"].tolist() == [0, 0, 1]

    write_image(tmp_path / "test" / "0" / "a" / "b" / "0ab.jpg", 7)
    write_csv(tmp_path / "recognition_solution_v2.1.csv", ["id", "landmarks", "Usage"],
               [["0ab", "12", "Public"], ["0cd", "None", "Private"]])
    test = real_sets.load_gldv2(tmp_path, csv="recognition_solution_v2.1.csv")
    assert test.examples["key"].tolist() == ["0ab"] and test.class_names == ["12"]


def test_gldv2_missing_column_names_file(tmp_path):
    write_csv(tmp_path / "train.csv", ["id", "url"], [["abc", "http://x"]])
    with pytest.raises(ValueError, match=r"train.csv: no landmark_id column"):
        real_sets.load_gldv2(tmp_path, csv="train.csv")


def test_read_image_names_the_undecodable_file(tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match="broken.jpg: does not decode"):
        real_sets.read_image(tmp_path / "broken.jpg")


# --- layouts as the sets are downloaded ---------------------------------------------------------------


def test_coco_2017_without_a_karpathy_file_uses_val2017_and_says_so(tmp_path):
    images = [{"id": 139, "file_name": "000000000139.jpg"}, {"id": 285, "file_name": "000000000285.jpg"}]
    annotations = [{"image_id": 285, "id": 1, "caption": "A big bear. "}, {"image_id": 139, "id": 2, "caption": "A room."},
                   {"image_id": 139, "id": 3, "caption": "A living room."},
                   {"image_id": 999, "id": 4, "caption": "An image the file does not list."}]
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "captions_val2017.json").write_text(
        json.dumps({"images": images, "annotations": annotations}))
    for n, im in enumerate(images):
        write_image(tmp_path / "val2017" / im["file_name"], n)
    s = real_sets.load_coco_captions(tmp_path)
    assert list(s.examples["coco_id"]) == [139, 285] and set(s.examples["split"]) == {"val2017"}
    assert s.captions.values.tolist() == [[0, "en", "A room."], [0, "en", "A living room."], [1, "en", "A big bear."]]
    assert "no Karpathy split file" in s.notes["split"]
    assert s.accounting() == {"listed": 2, "evaluated": 2, "skipped": {},
                              "captions_skipped": {real_sets.CAPTION_WITHOUT_IMAGE: 1}}
    assert real_sets.read_image(s.images[1]).shape == (12, 16, 3)


def test_coco_without_karpathy_or_2017_names_both_layouts(tmp_path):
    (tmp_path / "annotations").mkdir()
    with pytest.raises(ValueError, match="dataset_coco.json.*captions_val2017.json"):
        real_sets.load_coco_captions(tmp_path)


def _flickr_images(root, names):
    for n, name in enumerate(names):
        write_image(root / "flickr30k-images" / name, n)


@pytest.mark.parametrize("layout", ["token", "captions.txt", "results.csv"])
def test_flickr30k_from_the_official_caption_file(tmp_path, layout):
    captions = {"1000092795.jpg": ["Two young guys.", "Two men outside."], "10002456.jpg": ["Workers on a building."]}
    if layout == "token":
        lines = [f"{name}#{k}\t{c}" for name, cs in captions.items() for k, c in enumerate(cs)]
        (tmp_path / "results_20130124.token").write_text("\n".join(lines) + "\n")
    elif layout == "captions.txt":
        lines = ["image,caption"] + [f"{name},{c}" for name, cs in captions.items() for c in cs]
        (tmp_path / "captions.txt").write_text("\n".join(lines) + "\n")
    else:
        lines = ["image_name| comment_number| comment"] + [f"{name}| {k}| {c}" for name, cs in captions.items()
                                                          for k, c in enumerate(cs)]
        (tmp_path / "results.csv").write_text("\n".join(lines) + "\n")
    _flickr_images(tmp_path, captions)
    s = real_sets.load_flickr30k(tmp_path)
    assert list(s.examples["key"]) == ["1000092795.jpg", "10002456.jpg"]  # sorted by file name
    assert s.captions.values.tolist() == [[0, "en", "Two young guys."], [0, "en", "Two men outside."],
                                          [1, "en", "Workers on a building."]]
    assert "no test.txt split list" in s.notes["split"]
    (tmp_path / "test.txt").write_text("1000092795\n")  # Flickr30k Entities' split list
    s = real_sets.load_flickr30k(tmp_path)
    assert list(s.examples["key"]) == ["1000092795.jpg"] and len(s.captions) == 2
    assert s.notes["split"].startswith("test.txt (1 images)")


def test_flickr30k_caption_naming_a_missing_image_is_counted_when_allowed(tmp_path):
    (tmp_path / "results_20130124.token").write_text("a.jpg#0\tA dog.\nb.jpg#0\tA cat.\n")
    _flickr_images(tmp_path, ["a.jpg"])
    with pytest.raises(ValueError, match="1 of 2 images missing"):
        real_sets.load_flickr30k(tmp_path)
    with pytest.warns(UserWarning):
        s = real_sets.load_flickr30k(tmp_path, allow_missing=True)
    assert s.accounting() == {"listed": 2, "evaluated": 1, "skipped": {real_sets.IMAGE_MISSING: 1}}
    assert s.captions.values.tolist() == [[0, "en", "A dog."]]


def test_xtd10_as_released_with_mic_and_stair_folders(tmp_path):
    names = ["COCO_val2014_000000000042.jpg", "COCO_val2014_000000000073.jpg"]
    (tmp_path / "XTD10").mkdir()
    (tmp_path / "XTD10" / "test_image_names.txt").write_text("\n".join(names) + "\n")
    (tmp_path / "XTD10" / "test_1kcaptions_es.txt").write_text("un perro\nun gato\n")
    (tmp_path / "MIC").mkdir()
    (tmp_path / "MIC" / "test_1kcaptions_de.txt").write_text("ein Hund\neine Katze\n")
    (tmp_path / "STAIR").mkdir()
    (tmp_path / "STAIR" / "test_1kcaptions_jp.txt").write_text("犬\n猫\n")
    for n, name in enumerate(names):
        write_image(tmp_path / "images" / name, n)
    s = real_sets.load_xtd10(tmp_path)
    assert list(s.examples["key"]) == names
    assert sorted(set(s.captions["language"])) == ["de", "es", "ja"]
    assert s.captions[s.captions["language"] == "ja"].values.tolist() == [[0, "ja", "犬"], [1, "ja", "猫"]]
    only = real_sets.load_xtd10(tmp_path, languages=["de"])
    assert only.captions["caption"].tolist() == ["ein Hund", "eine Katze"]
    (tmp_path / "MIC" / "test_1kcaptions_de.txt").write_text("ein Hund\n")
    with pytest.raises(ValueError, match="test_1kcaptions_de.txt: 1 captions for the 2 images"):
        real_sets.load_xtd10(tmp_path)


def test_xflickrco_as_released_one_row_per_image_over_languages(tmp_path):
    records = {"de": [("1000092795.jpg", "Zwei junge Männer."), ("COCO_val2014_000000000042.jpg", "Ein Hund.")],
               "ja": [("COCO_val2014_000000000042.jpg", "犬。"), ("1000092795.jpg", "二人の若者。")]}
    for lang, items in records.items():
        path = tmp_path / "annotations" / lang / "test.jsonl"
        path.parent.mkdir(parents=True)
        path.write_text("".join(json.dumps({"id": i, "img_path": im, "sentences": [c]}, ensure_ascii=False) + "\n"
                                for i, (im, c) in enumerate(items)))
    for n, name in enumerate(["1000092795.jpg", "COCO_val2014_000000000042.jpg"]):
        write_image(tmp_path / "images" / name, n)
    s = real_sets.load_xflickrco(tmp_path)
    assert list(s.examples["key"]) == ["1000092795.jpg", "COCO_val2014_000000000042.jpg"]
    assert s.captions.values.tolist() == [[0, "de", "Zwei junge Männer."], [1, "de", "Ein Hund."],
                                          [1, "ja", "犬。"], [0, "ja", "二人の若者。"]]
    assert real_sets.read_image(s.images[0]).shape == (12, 16, 3)
    with pytest.raises(ValueError, match=r"no captions in languages \['fr'\]"):
        real_sets.load_xflickrco(tmp_path, languages=["fr"])
