"""Transfer tasks the synthetic world grades exactly: captions and questions whose right answer is the ground truth
of each image (arXiv 2502.07617 §4.5 transfers PaliGemma to captioning, VQA and more; these are their analogs).

Each task is a prompt in big_vision's PaliGemma form ("caption en", "caption sw", "answer en which country") and
the answer the world's truth gives; the images are held-out ids (never in any training subset) drawn evenly over
the six regions from every page language, one draw for training the transfer (split "train") and one to grade it
(split "test"), with the evaluation key.

- caption_en: the English description of the picture (concept, the person in it, country): what a captioner
  writes (evals.analogs.described_captions), scored with CIDEr.
- caption_page: the description in the page's own language (multilinguality; untagged pages: English).
- object: what the picture shows (the concept's English name).
- country, region: where the picture is from (English names).
- person: whether a person is shown ("yes" / "no").
- who: which person ("woman nurse", ...; "no one").

Families, as the paper groups its transfers (its OCR and remote-sensing groups have no analog here): semantics
(caption_en, object, person, who), culture (country, region), multilinguality (caption_page).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vlscale.config import REGIONS
from vlscale.evals.analogs import described_captions, draw_ids, even_quotas
from vlscale.transfer.results import CAPTION_TASKS, FAMILIES, TASKS
from vlscale.world.captions import person_words
from vlscale.world.spec import UNTAGGED
from vlscale.world.truth import truth

__all__ = ["CAPTION_TASKS", "FAMILIES", "TASKS"]  # the task names live with their scoring (results.py)
NO_PERSON = "no one"
QUESTIONS = {"object": "answer en what is shown", "country": "answer en which country",
             "region": "answer en which region", "person": "answer en is there a person",
             "who": "answer en who is shown"}


@dataclass(frozen=True)
class TaskSet:
    """The examples of every task over one draw of images: example i asks `prompts[i]` about image `image[i]`
    (an index into `ids`) and its right answer is `answers[i]`."""
    ids: np.ndarray  # [N] held-out image ids
    task: np.ndarray  # [M] task name of each example
    image: np.ndarray  # [M] index into ids
    prompts: list[str]
    answers: list[str]
    languages: list[str]  # the language of each answer

    def of(self, task: str) -> np.ndarray:
        """The indices of task `task`'s examples."""
        return np.flatnonzero(self.task == task)


def page_language(world, stratum: int) -> str:
    """The language of a page's stratum; English for untagged pages."""
    code = world.strata[int(stratum)]
    return "en" if code == UNTAGGED else code


def answers(world, gt: dict, task: str) -> tuple[list[str], list[str]]:
    """(the right answer of `task` for each image of the ground truth `gt`, the answer's language)."""
    n = len(gt["concept"])
    if task == "caption_en":
        return described_captions(world, gt, "en"), ["en"] * n
    if task == "caption_page":
        languages = [page_language(world, s) for s in gt["stratum"]]
        out = []
        for language in sorted(set(languages)):
            rows = [i for i, lang in enumerate(languages) if lang == language]
            sub = {k: v[rows] for k, v in gt.items()}
            out += list(zip(rows, described_captions(world, sub, language)))
        return [text for _, text in sorted(out)], languages
    if task == "object":
        return [world.concepts[int(c)]["en"] for c in gt["concept"]], ["en"] * n
    if task == "country":
        return [world.country_names[int(k)]["en"] for k in gt["country"]], ["en"] * n
    if task == "region":
        return [REGIONS[int(r)] for r in gt["region"]], ["en"] * n
    if task == "person":
        return ["yes" if p else "no" for p in gt["has_person"]], ["en"] * n
    if task == "who":
        return [person_words(g, o) if p else NO_PERSON
                for p, g, o in zip(gt["has_person"], gt["gender"], gt["occupation"])], ["en"] * n
    raise ValueError(f"unknown transfer task {task!r}; tasks are {', '.join(TASKS)}")


def prompt(task: str, language: str) -> str:
    if task == "caption_en":
        return "caption en"
    if task == "caption_page":
        return f"caption {language}"
    return QUESTIONS[task]


def draw(world, images: int, key: int, split: str, tasks=TASKS) -> TaskSet:
    """`images` held-out images (split "train" or "test" of the evaluation key `key`), evenly over the regions from
    every page language, and every task's example on each."""
    ids = draw_ids(world, "transfer", key, split, list(range(len(world.strata))), even_quotas(images, len(REGIONS)),
                   lambda gt: gt["region"])
    gt = truth(world, ids)
    task, image, prompts, texts, languages = [], [], [], [], []
    for name in tasks:
        answer, language = answers(world, gt, name)
        task += [name] * len(ids)
        image.append(np.arange(len(ids)))
        prompts += [prompt(name, lang) for lang in language]
        texts += answer
        languages += language
    return TaskSet(ids, np.array(task), np.concatenate(image), prompts, texts, languages)
