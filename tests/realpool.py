"""A real pool as a crawl delivers one, and real evaluation sets in their released layouts, for the tests of the
whole path (tests/test_real_pool.py).

The pool is webdataset tars of JPEG-encoded images with their alt-text and a JSON of uid and language tag: the
pictures and captions of the synthetic world's examples (so a model trained on them learns something the real
sets can measure), with the faults of a crawl planted among them: an image that does not decode, an empty
caption, a record without an image, an untagged language and a duplicate uid. The ImageNet validation folder
has class folders with a synset mapping file, COCO 2017 its val2017/ folder and captions_val2017.json, Crossmodal-3600
its images/ folder and captions.jsonl in five high- and the seven low-resource languages, all drawn from held-out
ids of the same world (never in the pool).

    python tests/realpool.py OUT_DIR   # writes OUT_DIR/pool/*.tar, OUT_DIR/imagenet, OUT_DIR/coco, OUT_DIR/xm3600
"""
from __future__ import annotations

import io
import json
import sys
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

from vlscale.evals.analogs import described_captions
from vlscale.world.captions import captions
from vlscale.world.describe import pool_ids
from vlscale.world.ids import make_ids
from vlscale.world.render import render_ids, to_uint8
from vlscale.world.truth import truth

PX = 48  # the stored pictures' side; training resizes them
# The faults of a crawl: record index in the pool -> what is wrong with it, and the scan's reason for it.
FAULTS = {7: ("undecodable image", "corrupt_image"), 19: ("empty caption", "empty_caption"),
          31: ("no image member", "missing_image"), 43: ("language tag 'xx'", "unknown_language"),
          55: ("uid of record 54", "duplicate_uid")}
HELD_OUT_STREAM = 900  # the evaluation sets' ids: a stream no pool or analog draws


def _jpeg(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_pool(world, out: Path, n: int = 1200, shards: int = 4) -> dict:
    """`shards` webdataset tars of about n records (FAULTS among them) in `out`; returns what was written:
    {"shards": [...], "records": n, "faults": {reason: count}, "languages": {code: count of good records}}."""
    out.mkdir(parents=True, exist_ok=True)
    ids = pool_ids(world, n)  # spread over the page-language strata as the web's shares make them
    rng = np.random.default_rng(0)
    ids = ids[rng.permutation(len(ids))]  # a crawl's shards mix languages
    gt = truth(world, ids)
    texts = captions(world, ids, gt)
    pixels = to_uint8(render_ids(world, ids, PX))
    paths, languages, faults = [], {}, {}
    per_shard = -(-len(ids) // shards)
    for s in range(shards):
        path = out / f"{s:05d}.tar"
        paths.append(str(path))
        with tarfile.open(path, "w") as tar:
            for i in range(s * per_shard, min(len(ids), (s + 1) * per_shard)):
                key = f"{s:05d}{i:05d}"
                language = world.strata[gt["stratum"][i]]
                uid, image, caption = f"pool-{ids[i]:x}", _jpeg(pixels[i]), texts[i]
                fault = FAULTS.get(i, (None, None))[1]
                if fault == "corrupt_image":
                    image = image[: len(image) // 3]  # a truncated download
                elif fault == "empty_caption":
                    caption = "  "
                elif fault == "unknown_language":
                    language = "xx"
                elif fault == "duplicate_uid":
                    uid = f"pool-{ids[i - 1]:x}"
                if fault is not None:
                    faults[fault] = faults.get(fault, 0) + 1
                else:
                    languages[language] = languages.get(language, 0) + 1
                if fault != "missing_image":
                    _add(tar, f"{key}.jpg", image)
                _add(tar, f"{key}.txt", caption.encode())
                _add(tar, f"{key}.json", json.dumps({"uid": uid, "language": language}).encode())
    return {"shards": paths, "records": len(ids), "faults": faults, "languages": languages}


def _held_out(world, n: int) -> tuple[np.ndarray, dict]:
    ids = make_ids(HELD_OUT_STREAM, np.arange(n))
    return ids, truth(world, ids)


def write_imagenet(world, root: Path, classes: int = 10, per_class: int = 12) -> dict:
    """ImageNet's validation layout: val/<wnid>/<name>.JPEG and LOC_synset_mapping.txt, one class per head concept
    of the world (the most common, English names), its images the held-out examples that show it."""
    ids, gt = _held_out(world, 20000)
    head = [c for c in np.argsort(world.concept_rank) if world.is_head[c]][:classes]
    lines = []
    for k, concept in enumerate(head):
        wnid = f"n{90000000 + k:08d}"
        lines.append(f"{wnid} {world.concepts[concept]['en']}")
        chosen = ids[gt["concept"] == concept][:per_class]
        pixels = to_uint8(render_ids(world, chosen, PX))
        folder = root / "val" / wnid
        folder.mkdir(parents=True, exist_ok=True)
        for j, p in enumerate(pixels):
            (folder / f"ILSVRC2012_val_{k * per_class + j + 1:08d}.JPEG").write_bytes(_jpeg(p))
    (root / "LOC_synset_mapping.txt").write_text("\n".join(lines) + "\n")
    return {"classes": classes, "images": classes * per_class}


def write_coco(world, root: Path, images: int = 60) -> dict:
    """COCO 2017 as downloaded: val2017/<12-digit id>.jpg and annotations/captions_val2017.json, each image with
    two references, as COCO's several: the English alt-text of its held-out example and its English description
    (what, who, where)."""
    ids, gt = _held_out(world, 40000)
    english = world.strata.index("en")
    keep = (gt["caption_language"] == english) & (gt["caption_kind"] == 0)
    chosen = ids[keep][:images]
    pixels = to_uint8(render_ids(world, chosen, PX))
    described = described_captions(world, {k: v[keep][:images] for k, v in gt.items()}, "en")
    (root / "val2017").mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    records, annotations = [], []
    for j, (p, text, second) in enumerate(zip(pixels, captions(world, chosen), described, strict=True)):
        name = f"{j + 1:012d}.jpg"
        (root / "val2017" / name).write_bytes(_jpeg(p))
        records.append({"id": j + 1, "file_name": name, "height": PX, "width": PX})
        annotations += [{"id": 1000 + j, "image_id": j + 1, "caption": text},
                        {"id": 5000 + j, "image_id": j + 1, "caption": second}]
    (root / "annotations" / "captions_val2017.json").write_text(json.dumps({"images": records, "annotations": annotations}))
    return {"images": images}


XM3600_SUBSET = ("en", "de", "es", "ja", "zh", "bn", "fil", "he", "hi", "mi", "sw", "te")  # 5 high-, 7 low-resource


def write_xm3600(world, root: Path, images: int = 30) -> dict:
    """Crossmodal-3600 as released: images/<key>.jpg and captions.jsonl, one line per image with its captions in
    each language ({"image/key", "image/locale", "<lang>": {"caption": [...]}}); an image is a held-out example of
    its own concept (no two alike), its caption in a language that concept's name there."""
    ids, gt = _held_out(world, 20000)
    _, first = np.unique(gt["concept"], return_index=True)
    chosen = np.sort(first)[:images]
    pixels = to_uint8(render_ids(world, ids[chosen], PX))
    (root / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for j, (i, p) in enumerate(zip(chosen, pixels)):
        key = f"{j:016x}"
        (root / "images" / f"{key}.jpg").write_bytes(_jpeg(p))
        names = world.concepts[gt["concept"][i]]["names"]
        lines.append({"image/key": key, "image/locale": "en",
                      **{lang: {"caption": [names[lang]]} for lang in XM3600_SUBSET}})
    (root / "captions.jsonl").write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n")
    return {"images": images, "languages": list(XM3600_SUBSET)}


def write_all(world, out: Path) -> dict:
    return {"pool": write_pool(world, out / "pool"), "imagenet": write_imagenet(world, out / "imagenet"),
            "coco": write_coco(world, out / "coco"), "xm3600": write_xm3600(world, out / "xm3600")}


if __name__ == "__main__":
    from vlscale.config import load_params
    from vlscale.world.spec import build_world

    root = Path(__file__).resolve().parents[1]
    made = write_all(build_world(load_params(root / "params.yaml").world), Path(sys.argv[1]))
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "shards"} for k, v in made.items()}, indent=1))
