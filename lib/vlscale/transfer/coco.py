"""Transfer to real COCO captions (the task PaliGemma transfers to first, arXiv 2407.07726; arXiv 2502.07617 §4.5
reports it among its transfers): the draw of training and test images, their pixels, and the CIDEr of a transfer
with its two reference levels, the human oracle and the best blind caption.

- The draw (`draw`): with the Karpathy split of COCO 2014, training images from its train and restval parts and
  test images from its test part (`load_coco` reads them into one EvalSet); without it (COCO 2017 val alone), the
  images are split by a seeded hash of their key (evals.real_eval.shot_pool) into a training and a test side. The
  training set has one example per (image, reference caption), as PaliGemma's COCO transfer trains on every
  reference; the test set one example per image, graded with CIDEr against all of its references.
- The oracle (`oracle_answers`): each test image's first reference scored against its others (leave-one-out), the
  human level under the same metric with one reference fewer.
- Chance (`chance_answers`): one constant caption for every test image, the training caption that scores best on
  the training images (their references, its own image left out), chosen without seeing a test image.

Every caption is English ("caption en", big_vision's PaliGemma prompt); CIDEr is score.cider's (pycocoevalcap's
CIDEr-D x 100, the test images scored as one corpus).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from vlscale.data.input import center_crop_resize
from vlscale.evals import real_eval, real_sets
from vlscale.evals.real_sets import EvalSet
from vlscale.transfer import score
from vlscale.transfer.tasks import TaskSet

TASK = "caption_coco"
PROMPT = "caption en"
LANGUAGE = "en"
KARPATHY_TRAIN = ("train", "restval")  # the Karpathy parts a transfer trains on (113k images)
KARPATHY_TEST = "test"  # the 5k Karpathy test images
KARPATHY_FILE = "dataset_coco.json"
KARPATHY_FOLDERS = ("", "annotations", "karpathy")  # where real_sets.load_coco_captions looks for it
IMAGE_BATCH = 512  # images decoded (in threads) and scaled per batch
CHANCE_CANDIDATES = 300  # training captions tried as the constant caption
CHANCE_IMAGES = 100  # training images each candidate is scored on (a CIDEr call costs ~1 ms per image)


def load_coco(root: str | os.PathLike, *, allow_missing: bool = False) -> EvalSet:
    """COCO captions for a transfer, as real_sets.load_coco_captions reads each split: with a Karpathy file, its
    test, train and restval images (those of its splits that the file has) in one EvalSet whose "split" column
    says which; without one, COCO 2017 val (its split "val2017"), which `draw` splits by key. allow_missing: images
    missing on disk are left out (with a warning) instead of an error."""
    test = real_sets.load_coco_captions(root, split=KARPATHY_TEST, allow_missing=allow_missing)
    if not (test.examples["split"] == KARPATHY_TEST).all():  # COCO 2017 val: no Karpathy file
        return test
    karpathy = real_sets._first_file(Path(root), KARPATHY_FILE, KARPATHY_FOLDERS)
    present = {r.get("split") for r in real_sets._read_json(karpathy)["images"] if isinstance(r, dict)}
    parts = [test] + [real_sets.load_coco_captions(root, split=s, allow_missing=allow_missing)
                      for s in KARPATHY_TRAIN if s in present]
    names = " + ".join(str(p.examples["split"].iloc[0]) for p in parts if len(p))
    return _concat(parts, f"Karpathy {names} of COCO 2014 ({karpathy.name})")


def _concat(parts: list[EvalSet], note: str) -> EvalSet:
    """One EvalSet of `parts` (their rows in order, caption image rows renumbered)."""
    offsets = np.cumsum([0] + [len(p) for p in parts[:-1]])
    captions = pd.concat([p.captions.assign(image=p.captions["image"] + int(o)) for p, o in zip(parts, offsets)],
                         ignore_index=True)
    skipped: dict[str, list[str]] = {}
    for part in parts:
        for reason, items in part.skipped.items():
            skipped.setdefault(reason, []).extend(items)
    return EvalSet("coco", [path for p in parts for path in p.images],
                   pd.concat([p.examples for p in parts], ignore_index=True), captions,
                   missing_images=[path for p in parts for path in p.missing_images], skipped=skipped,
                   notes={"split": note})


def root_of(coco: EvalSet) -> str:
    """The folder the set's images were read from (the COCO root: images sit at <root>/<folder>/<file>)."""
    folders = {str(Path(p).parent.parent) for p in coco.images}
    return os.path.commonpath(sorted(folders)) if folders else "(no images)"


def pools(coco: EvalSet, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """(the rows training images are drawn from, the rows test images are drawn from, how they were split): the
    Karpathy train + restval and test parts when the set holds both; else every image, split by a hash of
    (seed, its key) (evals.real_eval.shot_pool: a function of the key alone, about half on each side)."""
    split = coco.examples["split"].to_numpy() if "split" in coco.examples else np.full(len(coco), "", object)
    train = np.flatnonzero(np.isin(split, KARPATHY_TRAIN))
    test = np.flatnonzero(split == KARPATHY_TEST)
    if train.size and test.size:
        parts = "+".join(s for s in KARPATHY_TRAIN if (split == s).any())
        return train, test, f"the Karpathy {parts} images (training) and test images"
    side = real_eval.shot_pool(coco.examples["key"].astype(str).tolist(), seed)
    return (np.flatnonzero(side), np.flatnonzero(~side),
            f"a split of the {len(coco)} images by a hash of (seed {seed}, key) (no Karpathy train and test parts)")


def references(coco: EvalSet, rows) -> list[list[str]]:
    """Each row's English reference captions, in file order."""
    captions = coco.captions[coco.captions["language"] == LANGUAGE]
    by_image = captions.groupby("image", sort=False)["caption"].agg(list)
    return [list(by_image.get(int(r), [])) for r in rows]


def draw(coco: EvalSet, train_images: int, test_images: int, seed: int) -> tuple[TaskSet, TaskSet, list[list[str]]]:
    """(the training set, the test set, each test image's references) of `train_images` and `test_images` images
    drawn at random (seeded; each draw its own stream, so the test images do not depend on train_images) from
    `pools`. Training: one example per (image, reference caption); test: one example per image, its answer the
    first reference. `ids` are rows of `coco` (its images and examples). An image needs a reference to train on and
    two to be tested (the oracle scores one against the others). Asking for more images than there are is a
    ValueError that names the root and the numbers."""
    if train_images < 2 or test_images < 2:
        raise ValueError(f"COCO draw of {train_images} training and {test_images} test images: each needs at least "
                         f"2 (CIDEr weighs n-grams by their frequency over images)")
    train_pool, test_pool, how = pools(coco, seed)
    counts = np.bincount(coco.captions.loc[coco.captions["language"] == LANGUAGE, "image"].to_numpy(dtype=np.int64),
                         minlength=len(coco))
    train_pool, test_pool = train_pool[counts[train_pool] >= 1], test_pool[counts[test_pool] >= 2]
    short = [f"{asked} {what} images asked, {len(pool)} available"
             for asked, pool, what in ((train_images, train_pool, "training"), (test_images, test_pool, "test"))
             if asked > len(pool)]
    if short:
        raise ValueError(f"COCO at {root_of(coco)} ({coco.notes.get('split', 'no split note')}): {'; '.join(short)} "
                         f"from {how} (an image needs a caption to train on and two to be tested); ask for fewer")
    train_rows = np.sort(np.random.default_rng([seed, 0]).choice(train_pool, train_images, replace=False))
    test_rows = np.sort(np.random.default_rng([seed, 1]).choice(test_pool, test_images, replace=False))
    train_refs, test_refs = references(coco, train_rows), references(coco, test_rows)
    image = np.concatenate([np.full(len(refs), k) for k, refs in enumerate(train_refs)])
    answers = [caption for refs in train_refs for caption in refs]
    train = _task_set(train_rows, image, answers)
    test = _task_set(test_rows, np.arange(len(test_rows)), [refs[0] for refs in test_refs])
    return train, test, test_refs


def _task_set(rows: np.ndarray, image: np.ndarray, answers: list[str]) -> TaskSet:
    n = len(answers)
    return TaskSet(np.asarray(rows, np.int64), np.full(n, TASK), np.asarray(image, np.int64), [PROMPT] * n,
                   list(answers), [LANGUAGE] * n)


def load_images(coco: EvalSet, rows, px: int) -> np.ndarray:
    """[N, px, px, 3] float32 in [-1, 1]: the images of `rows`, read, centre-cropped and resized, and scaled as the
    real-set evaluation reads them (evals.real_eval: real_sets.read_image, data.input.center_crop_resize, decoded in
    threads). An image that does not decode is a ValueError naming it."""
    rows = np.asarray(rows, np.int64)
    make_batch = real_eval._batches(lambda i: center_crop_resize(real_sets.read_image(coco.images[rows[i]]), px))
    out = np.empty((len(rows), px, px, 3), np.float32)
    for start in range(0, len(rows), IMAGE_BATCH):
        stop = min(start + IMAGE_BATCH, len(rows))
        out[start:stop] = make_batch(start, stop)
    return out


def grade(test: TaskSet, predictions: list[str], references: list[list[str]]) -> list[dict]:
    """One row per test example (task, image, language, exact_match, cider), as run.grade's: CIDEr against all the
    references of its image (`references[test.image[i]]`), the test images scored as one corpus; exact match 1.0
    where the prediction equals one of them (normalised)."""
    if len(predictions) != len(test.answers):
        raise ValueError(f"{len(predictions)} predictions for {len(test.answers)} test examples")
    refs = [references[int(k)] for k in test.image]
    cider = score.cider(list(predictions), refs, LANGUAGE)
    matched = [float(score.exact_match([p] * len(r), r, [LANGUAGE] * len(r)).max()) for p, r in zip(predictions, refs)]
    return [{"task": str(test.task[i]), "image": int(test.image[i]), "language": test.languages[i],
             "exact_match": matched[i], "cider": float(cider[i])} for i in range(len(predictions))]


def oracle_answers(test: TaskSet, references: list[list[str]]) -> list[dict]:
    """The human level: each test image's first reference graded against its other references (leave-one-out),
    rows as `grade`'s."""
    if min(len(r) for r in references) < 2:
        raise ValueError("the oracle needs two references of every test image (one to score, one to score against)")
    return grade(test, [references[int(k)][0] for k in test.image], [r[1:] for r in references])


def training_references(train: TaskSet) -> list[list[str]]:
    """Each training image's references (the answers of its examples), by its index into train.ids."""
    out: list[list[str]] = [[] for _ in range(len(train.ids))]
    for k, answer in zip(train.image, train.answers):
        out[int(k)].append(answer)
    return out


def chance_answers(train: TaskSet, test: TaskSet, references: list[list[str]], seed: int,
                   candidates: int = CHANCE_CANDIDATES, images: int = CHANCE_IMAGES) -> tuple[str, list[dict]]:
    """The strongest blind baseline: one caption for every test image, chosen on the training draw alone: of up to
    `candidates` training captions (a seeded sample), the one with the highest mean CIDEr against the references of
    up to `images` training images (a seeded sample; a candidate is not scored on its own image). Returns (that
    caption, its graded test rows)."""
    train_refs = training_references(train)
    rng = np.random.default_rng([seed, 2])
    tried = np.sort(rng.choice(len(train.answers), min(candidates, len(train.answers)), replace=False))
    scored = np.sort(rng.choice(len(train_refs), min(images, len(train_refs)), replace=False))
    if len(scored) < 3:
        raise ValueError(f"chance needs at least 3 training images to score a caption on others than its own; "
                         f"the draw has {len(train_refs)}")
    refs = [train_refs[j] for j in scored]
    best, best_mean = -1, -np.inf
    for c in tried:
        per_image = score.cider([train.answers[c]] * len(refs), refs, LANGUAGE)
        mean = float(per_image[scored != train.image[c]].mean())
        if mean > best_mean:
            best, best_mean = int(c), mean
    caption = train.answers[best]
    return caption, grade(test, [caption] * len(test.answers), references)


ANSWER_COVERAGE = 0.99  # the answer length holds this share of the training captions (as the world's)


def answer_length(tokenizer, captions: list[str], length: int | None = None,
                  coverage: float = ANSWER_COVERAGE) -> tuple[int, float]:
    """(`length`, or the fewest pieces that hold `coverage` of the captions; the share of captions that fit in it)."""
    lengths = np.array([len(p) for p in tokenizer.sp.encode(list(captions), out_type=int)])
    if length is None:
        length = max(int(np.quantile(lengths, coverage, method="higher")), 1)
    return length, float(np.mean(lengths <= length))
