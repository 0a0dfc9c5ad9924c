"""One transfer: a SigLIP checkpoint's image tower under a fresh PaliGemma-style decoder, trained on the transfer
tasks' training draw and graded on their test draw; and the oracle and chance checks every task carries.

The transfer model's image tower is the checkpoint's (its patch embedding, position embedding and encoder; the
SigLIP pooling head and projection are not used, as big_vision loads a ViT into PaliGemma without its head); its
projection `img/head` and the decoder start fresh. Frozen: the tower is not updated; unfrozen: it is fine-tuned with
the rest.
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

import jax
import numpy as np
from flax import traverse_util

from vlscale.transfer import fit, score
from vlscale.transfer.layout import Texts, answers_of, lay_out
from vlscale.transfer.model import Model
from vlscale.transfer.tasks import CAPTION_TASKS, TaskSet

SIGLIP_ONLY = ("head", "MAPHead_0")  # parts of a SigLIP image tower a transfer model does not have


@dataclass(frozen=True)
class Examples:
    """A task set with its images rendered ([N, px, px, 3] in [-1, 1]) and its texts laid out and tokenised."""
    tasks: TaskSet
    images: np.ndarray
    texts: Texts


def lay_out_tasks(tasks: TaskSet, images: np.ndarray, tokenizer, prompt_len: int, answer_len: int) -> Examples:
    encode = tokenizer.sp.encode
    prompts = encode(list(tasks.prompts), out_type=int)
    answers = encode(list(tasks.answers), out_type=int)
    return Examples(tasks, images, lay_out(prompts, answers, prompt_len, answer_len, tokenizer.eos_id,
                                           tokenizer.pad_id))


def init_params(model: Model, examples: Examples, seed: int):
    """A fresh model's parameters (one compiled initialiser per configuration, not one compilation per operation)."""
    texts = examples.texts
    init = fit.compiled(model, ("init",), lambda: jax.jit(model.init))
    return init(jax.random.PRNGKey(seed), examples.images[:1], texts.text[:1, :-1], texts.mask_ar[:1, :-1],
                texts.input_mask[:1, :-1])["params"]


def with_pretrained_tower(params, siglip_params) -> dict:
    """`params` with the image tower's parameters replaced by the SigLIP checkpoint's (`siglip_params["img"]`),
    all but its pooling head and projection (SIGLIP_ONLY). A missing or mis-shaped parameter is a ValueError."""
    flat = traverse_util.flatten_dict(params)
    pretrained = traverse_util.flatten_dict(siglip_params["img"])
    for path, value in pretrained.items():
        if path[0] in SIGLIP_ONLY:
            continue
        target = ("img", *path)
        if target not in flat or flat[target].shape != value.shape:
            found = flat[target].shape if target in flat else "nothing"
            raise ValueError(f"checkpoint's img/{'/'.join(path)} {value.shape} does not fit the transfer model's "
                             f"{found}")
        flat[target] = value
    missing = [k for k in flat if k[0] == "img" and k[1] != "head" and k[1:] not in pretrained]
    if missing:
        raise ValueError(f"the checkpoint lacks the image tower's {['/'.join(k) for k in missing]}")
    return traverse_util.unflatten_dict(flat)


def decode_answers(model: Model, params, examples: Examples, tokenizer, answer_len: int,
                   batch_size: int) -> list[str]:
    tokens = fit.greedy_decode(model, params, examples.images, examples.tasks.image, examples.texts, answer_len,
                               batch_size)
    return [tokenizer.sp.decode(pieces) for pieces in answers_of(tokens, tokenizer.eos_id)]


def grade(tasks: TaskSet, predictions: list[str]) -> list[dict]:
    """One row per example: task, image, language, exact match and, for a caption, its CIDEr (within its task and
    language)."""
    matched = score.exact_match(predictions, tasks.answers, tasks.languages)
    cider = np.full(len(predictions), np.nan)
    for task in CAPTION_TASKS:
        rows = tasks.of(task)
        for language in sorted({tasks.languages[i] for i in rows}):
            sub = [i for i in rows if tasks.languages[i] == language]
            if len(sub) >= 2:
                cider[sub] = score.cider([predictions[i] for i in sub], [[tasks.answers[i]] for i in sub], language)
    return [{"task": str(tasks.task[i]), "image": int(tasks.image[i]), "language": tasks.languages[i],
             "exact_match": float(matched[i]), "cider": float(cider[i])} for i in range(len(predictions))]


def majority_answers(train: TaskSet, test: TaskSet) -> list[str]:
    """The chance check: each test example answered with the training draw's most common answer to its prompt
    (the best a model that does not see the image can do on exact match)."""
    counts: dict[str, Counter] = {}
    for prompt, answer in zip(train.prompts, train.answers):
        counts.setdefault(prompt, Counter())[answer] += 1
    fallback = Counter(train.answers).most_common(1)[0][0]
    return [counts[p].most_common(1)[0][0] if p in counts else fallback for p in test.prompts]


def transfer(siglip_params, image_config: dict, train: Examples, test: Examples, tokenizer, llm: dict,
             recipe: fit.Recipe, seed: int, answer_len: int, batch_size: int, progress=None,
             grader=grade) -> dict:
    """Train a transfer model on `train` from the checkpoint's image tower and grade it on `test` (`grader`: the
    test TaskSet and the decoded answers to graded rows; `grade` for the world's tasks). Returns {"rows": the
    graded test examples, "predictions": the decoded answers, "losses": every step's, "params": the trained
    model's, "train_s", "decode_s"}."""
    t0 = time.perf_counter()
    model = Model(img=image_config, llm=llm)
    params = with_pretrained_tower(init_params(model, train, seed), siglip_params)
    params, losses = fit.train(model, params, train.images, train.tasks.image, train.texts, recipe, seed, progress)
    trained = time.perf_counter()
    predictions = decode_answers(model, params, test, tokenizer, answer_len, batch_size)
    return {"rows": grader(test.tasks, predictions), "predictions": predictions, "losses": losses,
            "params": params, "train_s": trained - t0, "decode_s": time.perf_counter() - trained}
