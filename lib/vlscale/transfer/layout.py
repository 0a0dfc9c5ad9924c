"""The text side of a transfer example, laid out as big_vision's PaliGemma transfers do (pp/proj/paligemma):
a prompt (the task prefix, then a separator) and an answer (its pieces, then EOS), with the masks that say which
tokens form the bidirectional prefix (`mask_ar` 0), which are learned (`mask_loss` 1) and which are real
(`input_mask`).

Our SentencePiece model has no BOS, so the separator is its EOS id; prompts are left-padded to a fixed length, so
that the answer starts at the same position in training and in decoding. Row layout, prompt_len P, answer_len A:

    text        pad .. pad  prefix .. SEP | answer .. EOS  pad ..     (P + A + 1 ids; the model reads the first
    input_mask  0   .. 0    1      .. 1   | 1      .. 1    1   ..      P + A, and learns to predict the last P + A)
    mask_ar     0   .. 0    0      .. 0   | 1      .. 1    1   ..
    mask_loss   0   .. 0    0      .. 0   | 1      .. 1    0   ..

Padding after the answer is valid but in later causal blocks, so no real token sees it (big_vision's convention).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Texts:
    """A batch of laid-out rows (int32 / bool arrays [B, P + A + 1])."""
    text: np.ndarray
    input_mask: np.ndarray
    mask_ar: np.ndarray
    mask_loss: np.ndarray
    prompt_len: int


def lay_out(prompts: list[list[int]], answers: list[list[int]] | None, prompt_len: int, answer_len: int,
            eos_id: int, pad_id: int) -> Texts:
    """Rows of token ids: each prompt's pieces (cut to prompt_len - 1 from the left: the task word stays last) and
    SEP, left-padded to prompt_len; each answer's pieces (cut to answer_len) and EOS. Without answers (decoding),
    the answer part is padding the decoder fills in."""
    rows = len(prompts)
    if answers is not None and len(answers) != rows:
        raise ValueError(f"{rows} prompts but {len(answers)} answers")
    width = prompt_len + answer_len + 1
    text = np.full((rows, width), pad_id, np.int32)
    input_mask = np.ones((rows, width), bool)
    mask_ar = np.ones((rows, width), np.int32)
    mask_ar[:, :prompt_len] = 0
    mask_loss = np.zeros((rows, width), np.int32)
    for i, prompt in enumerate(prompts):
        pieces = list(prompt)[-(prompt_len - 1):] + [eos_id]
        start = prompt_len - len(pieces)
        text[i, start:prompt_len] = pieces
        input_mask[i, :start] = False
        if answers is not None:
            answer = list(answers[i])[:answer_len] + [eos_id]
            text[i, prompt_len:prompt_len + len(answer)] = answer
            mask_loss[i, prompt_len:prompt_len + len(answer)] = 1
    return Texts(text, input_mask, mask_ar, mask_loss, prompt_len)


def answers_of(tokens: np.ndarray, eos_id: int) -> list[list[int]]:
    """The decoded answers' pieces: each row cut at its first EOS."""
    out = []
    for row in np.asarray(tokens):
        ends = np.flatnonzero(row == eos_id)
        out.append([int(t) for t in (row[: ends[0]] if ends.size else row)])
    return out
