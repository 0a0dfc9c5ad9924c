"""Real evaluation sets in their official on-disk formats, read into one small uniform `EvalSet`.

Each loader takes the dataset's root folder (as set in params.yaml) and returns an `EvalSet`: the
image paths, one row of metadata per image (labels, regions, incomes, splits), the captions (for
retrieval sets, one row per caption with its language) and the class names (for classification
sets). `read_image` turns a path into pixels. The protocols that use these sets live elsewhere.

Layouts read (paths relative to the root given):
- ImageNet val: class folders ``[val/]n01440764/*.JPEG``, or flat files with the wnid in the name
  (``ILSVRC2012_val_00000001_n01440764.JPEG``, ``n01440764_123.JPEG``). Class names from the first
  synonym of ``LOC_synset_mapping.txt`` / ``synset_words.txt`` ("n01440764 tench, Tinca tinca"),
  in the root or its parent, else CLIP's curated names of the 1,000 classes (shipped). Labels index the sorted wnids (the usual 1000-class order).
- COCO captions: ``annotations/captions_val2014.json`` (plus ``captions_train2014.json`` when the
  split draws on it) for the captions; the Karpathy split ``dataset_coco.json`` (root,
  ``annotations/`` or ``karpathy/``) picks the images; image at ``<filepath>/<filename>``.
- Flickr30k: Karpathy ``dataset_flickr30k.json``; captions from ``sentences[].raw``; images in
  ``flickr30k-images/``, ``flickr30k_images/``, ``images/`` or the root.
- Crossmodal-3600: ``captions.jsonl``, one JSON object per image with ``image/key`` and, per
  language code, ``{"caption": [...], ...}``; image at ``images/<key>.jpg``.
- Dollar Street: the metadata CSV (``images_v2_imagenet_test.csv``, ``images_v2.csv``, or the one CSV
  in the root); image path, income, region and topics columns under their common names.
- GeoDE: ``index.csv`` with file_path, object, region (and ip_country); file_path relative to the
  root or to ``images/``.
- GLDv2: a label CSV, either ``train_clean.csv`` (landmark_id, images: space-separated ids),
  ``train.csv`` (id, url, landmark_id) or a ``*_solution*.csv`` (id, landmarks, Usage); image at
  ``<train|test|index>/a/b/c/<id>.jpg``; names from ``train_label_to_category.csv`` if present.
- FairFace: the label CSV ``fairface_label_val.csv`` (file, age, gender, race, service_test); file
  relative to the root.

A referenced image that is not on disk is an error that gives the count and the first few paths;
with ``allow_missing=True`` those images are left out and listed in `EvalSet.missing_images`.
"""
import ast
import dataclasses
import json
import os
import re
import urllib.parse
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from vlscale.evals.names import imagenet_name_of

MISSING_EXAMPLES = 5  # how many missing paths an error or warning names
# Reasons an image or a caption is left out (EvalSet.skipped).
IMAGE_MISSING, IMAGE_UNDECODABLE, CAPTION_WITHOUT_IMAGE = (
    "image missing on disk", "image does not decode", "caption names no image of the set")
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
WNID = re.compile(r"n\d{8}")
IMAGENET_SYNSET_FILES = ("LOC_synset_mapping.txt", "synset_words.txt")
FAIRFACE_GENDERS = ("Female", "Male")
FAIRFACE_RACES = ("Black", "East Asian", "Indian", "Latino_Hispanic", "Middle Eastern", "Southeast Asian", "White")

# Accepted column names, canonical name first; the first one present in the CSV is used.
DOLLAR_STREET_COLUMNS = {
    "image_path": ("imageRelPath", "image_path", "imageFullPath", "file_path"),
    "income": ("income", "income_usd", "income.value"),
    "region": ("region.id", "region", "region_id"),
    "topics": ("topics", "topic"),
}
DOLLAR_STREET_OPTIONAL = {"country": ("country.name", "country", "country_name", "country.id")}
DOLLAR_STREET_CSVS = ("images_v2_imagenet_test.csv", "images_v2.csv")
GEODE_COLUMNS = {"file_path": ("file_path",), "object": ("object",), "region": ("region",)}
GEODE_OPTIONAL = {"country": ("ip_country", "country")}
FAIRFACE_COLUMNS = {c: (c,) for c in ("file", "age", "gender", "race", "service_test")}


@dataclasses.dataclass
class EvalSet:
    """One evaluation set as read from disk.

    images: one path per image, in the order of `examples`' rows.
    examples: one row per image; always a "key" column (the set's own image id), then the set's
        metadata: "label" (int index into class_names) for classification sets, "split", "region",
        "income", "country", ... as the loader documents.
    captions: for retrieval sets, one row per caption: image (int row of `examples`), language
        (code), caption (str); None for the others.
    class_names: the name of each label index (None where the set has no single label).
    class_ids: the dataset's own id of each label index (wnid, landmark id, object), or None.
    missing_images: images the metadata names but the disk lacks (only with allow_missing=True).
    skipped: what was left out, by reason ("image missing on disk", "image does not decode", "caption
        names no image of the set"): {reason: [path or entry, ...]}. Images read + skipped images =
        the images the metadata lists.
    notes: how the set was read where the layout leaves a choice, e.g. {"split": "val2017 (no Karpathy
        split file)"}; carried into every result of the set.
    """

    name: str
    images: list[Path]
    examples: pd.DataFrame
    captions: pd.DataFrame | None = None
    class_names: list[str] | None = None
    class_ids: list[str] | None = None
    missing_images: list[Path] = dataclasses.field(default_factory=list)
    skipped: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    notes: dict[str, str] = dataclasses.field(default_factory=dict)

    def __len__(self):
        return len(self.images)

    def without(self, rows, reason: str) -> "EvalSet":
        """This set without the image rows `rows` (their captions too), recorded in `skipped` under `reason`."""
        drop = np.zeros(len(self), bool)
        drop[np.asarray(list(rows), dtype=int)] = True
        keep = np.flatnonzero(~drop)
        captions = self.captions
        if captions is not None:
            renumber = {int(old): new for new, old in enumerate(keep)}
            captions = captions[captions["image"].isin(renumber)].copy()
            captions["image"] = captions["image"].map(renumber)
            captions = captions.reset_index(drop=True)
        skipped = {**self.skipped, reason: self.skipped.get(reason, []) + [str(self.images[i]) for i in np.flatnonzero(drop)]}
        return dataclasses.replace(self, images=[self.images[i] for i in keep],
                                   examples=self.examples.iloc[keep].reset_index(drop=True), captions=captions,
                                   skipped={k: v for k, v in skipped.items() if v})

    def accounting(self) -> dict:
        """{"listed": images the metadata lists, "evaluated": images read, "skipped": {reason: count}}."""
        skipped = {reason: len(items) for reason, items in self.skipped.items() if reason != CAPTION_WITHOUT_IMAGE}
        out = {"listed": len(self) + sum(skipped.values()), "evaluated": len(self), "skipped": skipped}
        if self.skipped.get(CAPTION_WITHOUT_IMAGE):
            out["captions_skipped"] = {CAPTION_WITHOUT_IMAGE: len(self.skipped[CAPTION_WITHOUT_IMAGE])}
        return out


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Decode the image at `path`: (H, W, 3) uint8 RGB. ValueError naming the file if it does not decode."""
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (OSError, SyntaxError, ValueError) as e:  # PIL raises these for missing or bad bytes
        raise ValueError(f"image {path}: does not decode ({type(e).__name__}: {e}); expected a JPEG or PNG file") from e


# --- classification sets ------------------------------------------------------------------------


def load_imagenet(root: str | os.PathLike, *, allow_missing: bool = False) -> EvalSet:
    """ImageNet validation images from class folders or wnid-bearing file names.

    examples: key (file name), wnid, label. class_ids are the sorted wnids.
    """
    del allow_missing  # images are found by listing the disk, so none can be missing
    root = _existing_dir(root, "ImageNet validation root")
    top = root / "val" if (root / "val").is_dir() else root
    files = []  # (path, wnid)
    for entry in sorted(top.iterdir()):
        if entry.is_dir() and WNID.fullmatch(entry.name):
            files += [(p, entry.name) for p in sorted(entry.iterdir()) if _is_image(p)]
        elif _is_image(entry):
            found = WNID.findall(entry.stem)
            if not found:
                raise ValueError(
                    f"ImageNet image {entry}: no wnid in the file name; expected class folders "
                    f"(val/n01440764/*.JPEG) or names such as ILSVRC2012_val_00000001_n01440764.JPEG"
                )
            files.append((entry, found[-1]))
    if not files:
        raise ValueError(f"ImageNet validation root {top}: no images; expected class folders n########/ or wnid-named files")
    wnids = sorted({wnid for _, wnid in files})
    index = {wnid: i for i, wnid in enumerate(wnids)}
    examples = pd.DataFrame({
        "key": [p.name for p, _ in files],
        "wnid": [w for _, w in files],
        "label": [index[w] for _, w in files],
    })
    names = _imagenet_class_names(root, wnids)
    return EvalSet("imagenet", [p for p, _ in files], examples, class_names=names, class_ids=wnids)


def _imagenet_class_names(root: Path, wnids: list[str]) -> list[str]:
    """First synonym of each wnid from the first synset mapping file found, else CLIP's curated name of
    each ImageNet-1k wnid (shipped in evals/data/classes.json), never the bare wnid."""
    for folder in (root, root.parent):
        for name in IMAGENET_SYNSET_FILES:
            path = folder / name
            if path.is_file():
                mapping = {}
                for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                    if not line.strip():
                        continue
                    wnid, _, synonyms = line.strip().partition(" ")
                    if not WNID.fullmatch(wnid) or not synonyms.strip():
                        raise ValueError(f"{path} line {line_no}: {line!r}; expected 'n01440764 tench, Tinca tinca'")
                    mapping[wnid] = synonyms.split(",")[0].strip()
                absent = [w for w in wnids if w not in mapping]
                if absent:
                    raise ValueError(f"{path}: no name for {len(absent)} wnids of the images, e.g. {absent[:MISSING_EXAMPLES]}")
                return [mapping[w] for w in wnids]
    shipped = imagenet_name_of()
    unknown = [w for w in wnids if w not in shipped]
    if unknown:
        raise ValueError(f"ImageNet root {root}: no synset file ({' or '.join(IMAGENET_SYNSET_FILES)}) and "
                         f"{len(unknown)} wnids outside ImageNet-1k, e.g. {unknown[:MISSING_EXAMPLES]}; "
                         f"add a synset file that names them")
    return [shipped[w] for w in wnids]


def load_geode(root: str | os.PathLike, *, allow_missing: bool = False) -> EvalSet:
    """GeoDE from ``index.csv``: examples key (file_path), object, region, country (if given), label.

    Labels index the sorted object names; class_names are those names with underscores as spaces.
    """
    root = _existing_dir(root, "GeoDE root")
    path = root / "index.csv"
    table = _read_csv(path, GEODE_COLUMNS, GEODE_OPTIONAL)
    _no_empty(table, path, ("file_path", "object", "region"))
    objects = sorted(table["object"].unique())
    table = table.rename(columns={"file_path": "key"})
    table["label"] = table["object"].map({o: i for i, o in enumerate(objects)})
    images = [_first_existing(root, rel, ("", "images")) for rel in table["key"]]
    names = [o.replace("_", " ") for o in objects]
    return _finish("geode", images, table, None, names, objects, allow_missing, path)


def load_dollar_street(root: str | os.PathLike, *, csv: str | None = None, allow_missing: bool = False) -> EvalSet:
    """Dollar Street from its metadata CSV.

    csv: file name in root; default the first of DOLLAR_STREET_CSVS present, else the only CSV there.
    examples: key (image path as written), income (float), region, topics (list of str), country
    (if a country column exists), then every other column of the CSV unchanged (for example
    imagenet_sysnet_id in the ImageNet-mapped test CSV). No label: which topics or countries are
    classes depends on the protocol.
    """
    root = _existing_dir(root, "Dollar Street root")
    path = root / csv if csv else _dollar_street_csv(root)
    table = _read_csv(path, DOLLAR_STREET_COLUMNS, DOLLAR_STREET_OPTIONAL)
    _no_empty(table, path, ("image_path", "region"))
    income = pd.to_numeric(table["income"], errors="coerce")
    if income.isna().any():
        row = int(np.flatnonzero(income.isna().to_numpy())[0])
        raise ValueError(f"{path} line {row + 2}: income {table['income'].iloc[row]!r}; expected a number")
    table["income"] = income.astype(float)
    table["topics"] = [_parse_topics(v, path, i + 2) for i, v in enumerate(table["topics"])]
    table = table.rename(columns={"image_path": "key"})
    images = [_first_existing(root, rel, ("", "images", "assets")) for rel in table["key"]]
    return _finish("dollar_street", images, table, None, None, None, allow_missing, path)


def _dollar_street_csv(root: Path) -> Path:
    for name in DOLLAR_STREET_CSVS:
        if (root / name).is_file():
            return root / name
    found = sorted(root.glob("*.csv"))
    if len(found) != 1:
        raise ValueError(
            f"Dollar Street root {root}: expected one of {DOLLAR_STREET_CSVS} or exactly one CSV file, "
            f"found {[p.name for p in found]}; pass csv= to choose"
        )
    return found[0]


def _parse_topics(value, path: Path, line: int) -> list[str]:
    """Topics as written: a Python/JSON list ("['stove', 'kitchen']") or comma-separated text."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{path} line {line}: topics {value!r}; expected a non-empty list of topics")
    text = value.strip()
    if text.startswith("["):
        try:
            topics = ast.literal_eval(text)
        except (ValueError, SyntaxError) as e:
            raise ValueError(f"{path} line {line}: topics {value!r} is not a list literal; expected e.g. \"['stove']\"") from e
        return [str(t).strip() for t in topics]
    return [t.strip() for t in text.split(",") if t.strip()]


def load_fairface(root: str | os.PathLike, *, csv: str = "fairface_label_val.csv", allow_missing: bool = False) -> EvalSet:
    """FairFace from its label CSV: examples key (file), age, gender, race, service_test (bool).

    No label column: gender and race are both attributes the protocols classify.
    """
    root = _existing_dir(root, "FairFace root")
    path = root / csv
    table = _read_csv(path, FAIRFACE_COLUMNS, {})
    _no_empty(table, path, ("file", "gender", "race"))
    for column, allowed in (("gender", FAIRFACE_GENDERS), ("race", FAIRFACE_RACES)):
        bad = ~table[column].isin(allowed)
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise ValueError(f"{path} line {row + 2}: {column} {table[column].iloc[row]!r}; expected one of {allowed}")
    service = table["service_test"].astype(str).str.strip().str.lower()
    if not service.isin(("true", "false")).all():
        row = int(np.flatnonzero(~service.isin(("true", "false")).to_numpy())[0])
        raise ValueError(f"{path} line {row + 2}: service_test {table['service_test'].iloc[row]!r}; expected True or False")
    table["service_test"] = service == "true"
    table = table.rename(columns={"file": "key"})
    images = [root / rel for rel in table["key"]]
    return _finish("fairface", images, table, None, None, None, allow_missing, path)


def load_gldv2(
    root: str | os.PathLike,
    *,
    csv: str = "train_clean.csv",
    images_subdir: str | None = None,
    allow_missing: bool = False,
) -> EvalSet:
    """Google Landmarks v2 from one of its label CSVs.

    csv: ``train_clean.csv`` (landmark_id, images), ``train.csv`` (id, url, landmark_id) or a
        ``*_solution*.csv`` (id, landmarks, Usage). Solution rows without a landmark ("None" or
        empty: the non-landmark distractors) are not examples; where a row names several landmarks
        the first is its label.
    images_subdir: where the images are; default "test" for solution CSVs, else "train". An image
        with id "abc123..." is at ``<images_subdir>/a/b/c/abc123....jpg``.
    examples: key (image id), landmark_id (str), label. class_ids are the sorted landmark ids;
    class_names come from ``train_label_to_category.csv`` (the Wikimedia category, decoded) if
    present, else the landmark ids.
    """
    root = _existing_dir(root, "GLDv2 root")
    path = root / csv
    if "solution" in csv:
        table = _read_csv(path, {"id": ("id",), "landmarks": ("landmarks",)}, {"usage": ("Usage",)})
        first = table["landmarks"].fillna("").astype(str).str.split().str[0].fillna("")
        table = table.assign(landmark_id=first)[first.ne("") & first.ne("None")]
        default_subdir = "test"
    elif "landmark_id" in _csv_header(path) and "images" in _csv_header(path):
        clean = _read_csv(path, {"landmark_id": ("landmark_id",), "images": ("images",)}, {})
        _no_empty(clean, path, ("landmark_id", "images"))
        table = pd.DataFrame(
            [(image_id, str(lid)) for lid, ids in zip(clean["landmark_id"], clean["images"]) for image_id in ids.split()],
            columns=["id", "landmark_id"],
        )
        default_subdir = "train"
    else:
        table = _read_csv(path, {"id": ("id",), "landmark_id": ("landmark_id",)}, {})
        default_subdir = "train"
    _no_empty(table, path, ("id", "landmark_id"))
    table = table.rename(columns={"id": "key"}).reset_index(drop=True)
    table["landmark_id"] = table["landmark_id"].astype(str)
    ids = sorted(table["landmark_id"].unique(), key=lambda s: (len(s), s))  # numeric order of integer ids
    table["label"] = table["landmark_id"].map({lid: i for i, lid in enumerate(ids)})
    folder = root / (images_subdir or default_subdir)
    images = [folder / k[0] / k[1] / k[2] / f"{k}.jpg" for k in table["key"]]
    names = _gldv2_class_names(root, ids)
    return _finish("gldv2", images, table, None, names, ids, allow_missing, path)


def _gldv2_class_names(root: Path, ids: list[str]) -> list[str]:
    path = root / "train_label_to_category.csv"
    if not path.is_file():
        return list(ids)
    table = _read_csv(path, {"landmark_id": ("landmark_id",), "category": ("category",)}, {})
    names = {}
    for lid, category in zip(table["landmark_id"].astype(str), table["category"].astype(str)):
        # "http://commons.wikimedia.org/wiki/Category:Haleakal%C4%81_National_Park" -> "Haleakalā National Park"
        names[lid] = urllib.parse.unquote(category.rsplit("Category:", 1)[-1]).replace("_", " ")
    return [names.get(lid, lid) for lid in ids]


# --- retrieval sets -----------------------------------------------------------------------------


def load_coco_captions(root: str | os.PathLike, *, split: str = "test", allow_missing: bool = False) -> EvalSet:
    """COCO captions: the Karpathy `split` of COCO 2014 when a Karpathy file is there, else COCO 2017 val.

    - COCO 2014 + Karpathy ("test": the 5k test images): ``dataset_coco.json`` picks the images (image
      at ``<filepath>/<filename>``), the official ``annotations/captions_val2014.json`` (and
      ``captions_train2014.json``) give the captions.
    - COCO 2017 as downloaded today: ``annotations/captions_val2017.json`` and ``val2017/``; without a
      Karpathy file the 5,000 val2017 images are the test split, and the set's notes say so.
    examples: key (file name), coco_id, split. captions: image, language ("en"), caption.
    """
    root = _existing_dir(root, "COCO root")
    try:
        karpathy_path = _first_file(root, "dataset_coco.json", ("", "annotations", "karpathy"))
    except ValueError:
        if (root / "annotations" / "captions_val2017.json").is_file():
            return _load_coco2017(root, allow_missing)
        raise ValueError(f"COCO root {root}: neither a Karpathy split file dataset_coco.json (with COCO 2014) "
                         f"nor annotations/captions_val2017.json (COCO 2017)") from None
    chosen = _karpathy_images(karpathy_path, split)
    captions_by_id, files = {}, []
    for name in ("captions_val2014.json", "captions_train2014.json"):
        path = root / "annotations" / name
        if path.is_file():
            files.append(path)
            _coco_captions(path, captions_by_id)
    if not files:
        raise ValueError(f"COCO root {root}: no annotations/captions_val2014.json; expected the official caption annotations")
    rows, images, captions = [], [], []
    for i, record in enumerate(chosen):
        coco_id = record.get("cocoid")
        if coco_id not in captions_by_id:
            raise ValueError(
                f"{karpathy_path} image {record.get('filename')!r} (cocoid {coco_id!r}): not in {[str(f) for f in files]}; "
                f"expected every {split} image to have official captions"
            )
        rows.append({"key": record["filename"], "coco_id": coco_id, "split": record["split"]})
        images.append(root / record.get("filepath", "") / record["filename"])
        captions += [(i, "en", c) for c in captions_by_id[coco_id]]
    examples = pd.DataFrame(rows, columns=["key", "coco_id", "split"])
    return _finish("coco", images, examples, _captions_frame(captions), None, None, allow_missing, karpathy_path,
                   notes={"split": f"Karpathy {split} of COCO 2014 ({karpathy_path.name})"})


def _load_coco2017(root: Path, allow_missing: bool) -> EvalSet:
    path = root / "annotations" / "captions_val2017.json"
    data = _read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise ValueError(f"{path}: expected an object with 'images' and 'annotations' lists (official COCO format)")
    records = []
    for n, im in enumerate(data["images"]):
        if not isinstance(im, dict) or "id" not in im or not isinstance(im.get("file_name"), str):
            raise ValueError(f"{path} images[{n}]: {im!r:.200}; expected {{'id': int, 'file_name': str, ...}}")
        records.append(im)
    records.sort(key=lambda im: im["id"])
    captions_by_id: dict = {}
    _coco_captions(path, captions_by_id)
    row_of = {im["id"]: i for i, im in enumerate(records)}
    orphans = [f"{path.name} image_id {i}: {c}" for i, cs in captions_by_id.items() if i not in row_of for c in cs]
    captions = [(row_of[im["id"]], "en", c) for im in records for c in captions_by_id.get(im["id"], [])]
    folder = root / "val2017"
    examples = pd.DataFrame({"key": [im["file_name"] for im in records], "coco_id": [im["id"] for im in records],
                             "split": "val2017"})
    return _finish("coco", [folder / im["file_name"] for im in records], examples, _captions_frame(captions),
                   None, None, allow_missing, path, orphans=orphans,
                   notes={"split": "COCO 2017 val (5,000 images) as the test split: no Karpathy split file"})


def _coco_captions(path: Path, into: dict[int, list[str]]):
    """Add {image_id: [caption, ...]} from an official captions_*.json to `into`."""
    data = _read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
        raise ValueError(f"{path}: expected an object with an 'annotations' list (official COCO captions format)")
    for n, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict) or not isinstance(ann.get("caption"), str) or "image_id" not in ann:
            raise ValueError(f"{path} annotations[{n}]: {ann!r:.200}; expected {{'image_id': int, 'caption': str, ...}}")
        into.setdefault(ann["image_id"], []).append(ann["caption"].strip())


FLICKR_FOLDERS = ("flickr30k-images", "flickr30k_images", "images", "Images")
FLICKR_TOKEN_FILES = ("results_20130124.token", "results.token", "captions.txt", "results.csv")


def load_flickr30k(root: str | os.PathLike, *, split: str = "test", allow_missing: bool = False) -> EvalSet:
    """Flickr30k from the Karpathy file, or from the official caption file when there is none.

    - Karpathy ``dataset_flickr30k.json``: the images of `split` ("test": 1k), captions sentences[].raw.
    - The official ``results_20130124.token`` (``<image>.jpg#<n>\t<caption>``; also read: ``captions.txt``
      with an ``image,caption`` header, and ``results.csv`` with ``image_name| comment_number| comment``).
      It has no splits: a ``<split>.txt`` list of image ids beside it (Flickr30k Entities' test.txt)
      picks the images, else every image is evaluated; the notes say which.
    Images in flickr30k-images/, flickr30k_images/, images/, Images/ or the root.
    examples: key (file name), split. captions: image, language ("en"), caption.
    """
    root = _existing_dir(root, "Flickr30k root")
    folder = next((root / d for d in FLICKR_FOLDERS if (root / d).is_dir()), root)
    try:
        path = _first_file(root, "dataset_flickr30k.json", ("", "annotations", "karpathy"))
    except ValueError:
        token = next((root / n for n in FLICKR_TOKEN_FILES if (root / n).is_file()), None)
        if token is None:
            raise ValueError(f"Flickr30k root {root}: neither the Karpathy file dataset_flickr30k.json nor an "
                             f"official caption file ({', '.join(FLICKR_TOKEN_FILES)})") from None
        return _load_flickr_token(root, folder, token, split, allow_missing)
    chosen = _karpathy_images(path, split)
    captions = []
    for i, record in enumerate(chosen):
        sentences = record.get("sentences")
        if not isinstance(sentences, list) or not sentences or not all(isinstance(s, dict) and "raw" in s for s in sentences):
            raise ValueError(f"{path} image {record.get('filename')!r}: sentences {sentences!r:.200}; expected a list of {{'raw': str, ...}}")
        captions += [(i, "en", s["raw"].strip()) for s in sentences]
    examples = pd.DataFrame({"key": [r["filename"] for r in chosen], "split": [r["split"] for r in chosen]})
    images = [folder / r["filename"] for r in chosen]
    return _finish("flickr30k", images, examples, _captions_frame(captions), None, None, allow_missing, path,
                   notes={"split": f"Karpathy {split} ({path.name})"})


def _flickr_token_lines(path: Path) -> list[tuple[str, str]]:
    """(image file name, caption) of every line of an official Flickr30k caption file."""
    out = []
    with path.open(encoding="utf-8") as f:
        lines = f.read().splitlines()
    header = lines[0].replace(" ", "").lower() if lines else ""
    for n, line in enumerate(lines, 1):
        if not line.strip() or (n == 1 and header in ("image,caption", "image_name|comment_number|comment")):
            continue
        if "\t" in line and "#" in line.split("\t", 1)[0]:  # results_20130124.token
            name, caption = line.split("\t", 1)
            name = name.rsplit("#", 1)[0]
        elif "|" in line:  # results.csv
            parts = [p.strip() for p in line.split("|", 2)]
            if len(parts) != 3:
                raise ValueError(f"{path} line {n}: {line!r:.120}; expected 'image_name| comment_number| comment'")
            name, caption = parts[0], parts[2]
        elif "," in line:  # captions.txt
            name, caption = line.split(",", 1)
        else:
            raise ValueError(f"{path} line {n}: {line!r:.120}; expected '<image>.jpg#<n>\\t<caption>'")
        out.append((name.strip(), caption.strip().strip('"')))
    if not out:
        raise ValueError(f"{path}: no captions")
    return out


def _load_flickr_token(root: Path, folder: Path, path: Path, split: str, allow_missing: bool) -> EvalSet:
    by_image: dict[str, list[str]] = {}
    for name, caption in _flickr_token_lines(path):
        by_image.setdefault(name, []).append(caption)
    names = sorted(by_image)
    split_file = root / f"{split}.txt"
    if split_file.is_file():
        wanted = [line.strip() for line in split_file.read_text().splitlines() if line.strip()]
        unknown = [w for w in wanted if f"{Path(w).stem}.jpg" not in by_image]
        if unknown:
            raise ValueError(f"{split_file}: {len(unknown)} images have no caption in {path.name}, e.g. {unknown[:5]}")
        names = [f"{Path(w).stem}.jpg" for w in wanted]
        note = f"{split_file.name} ({len(names)} images) of the official captions {path.name}"
    else:
        note = f"every image of the official captions {path.name}: no {split}.txt split list and no Karpathy file"
    captions = [(i, "en", c) for i, n in enumerate(names) for c in by_image[n]]
    examples = pd.DataFrame({"key": names, "split": split if split_file.is_file() else "all"})
    return _finish("flickr30k", [folder / n for n in names], examples, _captions_frame(captions), None, None,
                   allow_missing, path, notes={"split": note})


def _karpathy_images(path: Path, split: str) -> list[dict]:
    """The images[] records of a Karpathy split file whose split is `split` (each has filename, split)."""
    data = _read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise ValueError(f"{path}: expected an object with an 'images' list (Karpathy split format)")
    for n, record in enumerate(data["images"]):
        if not isinstance(record, dict) or not isinstance(record.get("filename"), str) or not isinstance(record.get("split"), str):
            raise ValueError(f"{path} images[{n}]: {record!r:.200}; expected {{'filename': str, 'split': str, ...}}")
    chosen = [r for r in data["images"] if r["split"] == split]
    if not chosen:
        splits = sorted({r["split"] for r in data["images"]})
        raise ValueError(f"{path}: no image has split {split!r}; the file has splits {splits}")
    return chosen


def load_xm3600(
    root: str | os.PathLike, *, languages: Sequence[str] | None = None, allow_missing: bool = False
) -> EvalSet:
    """Crossmodal-3600 from ``captions.jsonl`` and ``images/<key>.jpg``.

    languages: the language codes to keep (default: every code found); a code that no line holds
        is an error.
    examples: key (image/key), locale (image/locale, if given). captions: image, language, caption,
        in file order.
    """
    root = _existing_dir(root, "XM3600 root")
    path = root / "captions.jsonl"
    if not path.is_file():
        raise ValueError(f"XM3600 root {root}: no captions.jsonl; expected the official captions file")
    wanted = None if languages is None else set(languages)
    rows, captions, seen = [], [], set()
    for line_no, record in _jsonl(path):
        key = record.get("image/key") if isinstance(record, dict) else None
        if not isinstance(key, str) or not key:
            raise ValueError(f"{path} line {line_no}: no 'image/key' string; expected {{'image/key': ..., '<lang>': {{'caption': [...]}}}}")
        image = len(rows)
        rows.append({"key": key, "locale": record.get("image/locale")})
        for language, entry in record.items():
            if language.startswith("image/"):
                continue
            if not isinstance(entry, dict) or not isinstance(entry.get("caption"), list):
                raise ValueError(f"{path} line {line_no} (image {key}): language {language!r} holds {entry!r:.120}; expected {{'caption': [str, ...]}}")
            seen.add(language)
            if wanted is None or language in wanted:
                captions += [(image, language, str(c).strip()) for c in entry["caption"]]
    if not rows:
        raise ValueError(f"{path}: no lines; expected one JSON object per image")
    absent = sorted((wanted or set()) - seen)
    if absent:
        raise ValueError(f"{path}: no captions in languages {absent}; the file has {sorted(seen)}")
    images = [root / "images" / f"{r['key']}.jpg" for r in rows]
    return _finish("xm3600", images, pd.DataFrame(rows), _captions_frame(captions), None, None, allow_missing, path)


# XTD10 as released (github.com/adobe-research/Cross-lingual-Test-Dataset-XTD10): 1,000 COCO images,
# one caption per image per language, the caption files line-aligned with the image list; de and fr
# live in MIC/, ja in STAIR/ (files named "jp").
XTD10_FOLDERS = ("XTD10", "MIC", "STAIR", "")
XTD10_CODES = {"jp": "ja"}  # XTD10's file code -> the ISO code results use


def load_xtd10(root: str | os.PathLike, *, languages: Sequence[str] | None = None,
               allow_missing: bool = False) -> EvalSet:
    """XTD10: ``test_image_names.txt`` and ``test_1kcaptions_<lang>.txt`` in XTD10/, MIC/ or STAIR/ (or
    the root); images in ``images/`` (or the root) under their listed names.

    examples: key (image name). captions: image, language (ISO code; XTD10's "jp" is "ja"), caption.
    """
    root = _existing_dir(root, "XTD10 root")
    index = next((root / d / "test_image_names.txt" for d in XTD10_FOLDERS
                  if (root / d / "test_image_names.txt").is_file()), None)
    if index is None:
        raise ValueError(f"XTD10 root {root}: no test_image_names.txt in {[d or '.' for d in XTD10_FOLDERS]}")
    names = [line.strip() for line in index.read_text(encoding="utf-8").splitlines() if line.strip()]
    files = {}
    for d in XTD10_FOLDERS:
        for f in sorted((root / d).glob("test_1kcaptions_*.txt")):
            code = f.stem.removeprefix("test_1kcaptions_")
            files.setdefault(XTD10_CODES.get(code, code), f)
    wanted = _languages(files, languages, f"XTD10 root {root}", "test_1kcaptions_<lang>.txt caption files")
    captions = []
    for lang in wanted:
        lines = files[lang].read_text(encoding="utf-8").splitlines()
        lines = lines[:-1] if lines and not lines[-1].strip() and len(lines) == len(names) + 1 else lines
        if len(lines) != len(names):
            raise ValueError(f"{files[lang]}: {len(lines)} captions for the {len(names)} images of {index}; "
                             f"expected one caption per line, aligned with the image list")
        captions += [(i, lang, c.strip()) for i, c in enumerate(lines)]
    folder = root / "images" if (root / "images").is_dir() else root
    return _finish("xtd10", [folder / n for n in names], pd.DataFrame({"key": names}), _captions_frame(captions),
                   None, None, allow_missing, index)


def load_xflickrco(root: str | os.PathLike, *, languages: Sequence[str] | None = None,
                   allow_missing: bool = False) -> EvalSet:
    """xFlickr&CO (IGLUE) as released: ``annotations/<lang>/test.jsonl``, one JSON object per image with
    its ``id``, ``img_path`` and ``sentences`` (one caption in that language); images (1,000 Flickr30k,
    1,000 COCO) under ``images/`` (or the root) at img_path. An image is a row once, over all languages.

    examples: key (img_path). captions: image, language, caption.
    """
    root = _existing_dir(root, "xFlickr&CO root")
    files = {f.parent.name: f for f in sorted((root / "annotations").glob("*/test.jsonl"))}
    wanted = _languages(files, languages, f"xFlickr&CO root {root}", "annotations/<lang>/test.jsonl")
    row_of, keys, captions = {}, [], []
    for lang in wanted:
        path = files[lang]
        for line_no, record in _jsonl(path):
            image, sentences = (record.get("img_path"), record.get("sentences")) if isinstance(record, dict) else (None, None)
            if not isinstance(image, str) or not isinstance(sentences, list) or not sentences:
                raise ValueError(f"{path} line {line_no}: {record!r:.160}; expected "
                                 f"{{'id': ..., 'img_path': str, 'sentences': [str]}}")
            if image not in row_of:
                row_of[image] = len(keys)
                keys.append(image)
            captions += [(row_of[image], lang, str(c).strip()) for c in sentences]
    folder = root / "images" if (root / "images").is_dir() else root
    return _finish("xflickrco", [folder / k for k in keys], pd.DataFrame({"key": keys}), _captions_frame(captions),
                   None, None, allow_missing, root / "annotations")


# --- shared helpers -----------------------------------------------------------------------------


def _existing_dir(root, what: str) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{what} {root}: not a directory")
    return root


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def _first_file(root: Path, name: str, subdirs: Sequence[str]) -> Path:
    for d in subdirs:
        if (root / d / name).is_file():
            return root / d / name
    raise ValueError(f"{root}: no {name} in {[str(root / d) for d in subdirs]}")


def _first_existing(root: Path, rel: str, subdirs: Sequence[str]) -> Path:
    """root/subdir/rel for the first subdir where it exists; else the first candidate (reported missing later)."""
    candidates = [root / d / rel for d in subdirs]
    return next((c for c in candidates if c.is_file()), candidates[0])


def _languages(files: dict, languages, where: str, what: str) -> list[str]:
    """The languages to read: `languages` (each must have a file) or every language of `files`."""
    if not files:
        raise ValueError(f"{where}: no {what}")
    wanted = list(files) if languages is None else list(languages)
    absent = sorted(set(wanted) - set(files))
    if absent:
        raise ValueError(f"{where}: no captions in languages {absent}; found {sorted(files)}")
    return wanted


def _jsonl(path: Path):
    """(line number, parsed object) of every non-empty line of a JSON-lines file."""
    with path.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield line_no, json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path} line {line_no}: not JSON ({e}); expected one JSON object per line") from e


def _read_json(path: Path):
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not JSON ({e})") from e


def _csv_header(path: Path) -> list[str]:
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    return list(pd.read_csv(path, nrows=0).columns)


def _read_csv(path: Path, required: dict[str, tuple], optional: dict[str, tuple]) -> pd.DataFrame:
    """Read a CSV as strings; rename the first present variant of each column to its canonical name.

    A required column with no variant present is a ValueError naming the file and the variants.
    """
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a readable CSV ({e})") from e
    renames = {}
    for canonical, variants in {**required, **optional}.items():
        present = next((v for v in variants if v in table.columns), None)
        if present is None and canonical in required:
            raise ValueError(f"{path}: no {canonical} column; expected one of {list(variants)}, found columns {list(table.columns)}")
        if present is not None:
            renames[present] = canonical
    return table.rename(columns=renames)


def _no_empty(table: pd.DataFrame, path: Path, columns: Sequence[str]):
    for column in columns:
        empty = table[column].isna().to_numpy()
        if empty.any():
            row = int(np.flatnonzero(empty)[0])
            raise ValueError(f"{path} line {row + 2}: empty {column}; expected a value in every row")


def _captions_frame(captions: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(captions, columns=["image", "language", "caption"])


def _finish(name, images, examples, captions, class_names, class_ids, allow_missing, source, notes=None,
            orphans=()) -> EvalSet:
    """Check every image is on disk; raise with the count and examples, or drop and record them."""
    examples = examples.reset_index(drop=True)
    present = np.array([p.is_file() for p in images], dtype=bool)
    missing = [p for p, ok in zip(images, present) if not ok]
    if missing:
        message = (
            f"{name} ({source}): {len(missing)} of {len(images)} images missing on disk, "
            f"e.g. {[str(p) for p in missing[:MISSING_EXAMPLES]]}"
        )
        if not allow_missing:
            raise ValueError(message + "; pass allow_missing=True to evaluate without them")
        warnings.warn(message + "; left out", stacklevel=3)
    data = EvalSet(name, list(images), examples, captions, class_names, class_ids, missing,
                   notes=dict(notes or {}))
    if orphans:
        data.skipped[CAPTION_WITHOUT_IMAGE] = list(orphans)
    return data.without(np.flatnonzero(~present), IMAGE_MISSING) if missing else data
