"""Training a transfer model with teacher forcing, and greedy decoding (big_vision trainers/proj/paligemma).

The model reads text[:, :-1] and predicts text[:, 1:]; the loss counts only the answer's tokens and EOS
(mask_loss[:, 1:]; the prompt's positions are not even projected to the vocabulary), averaged per example and then
over the batch. The optimiser is AdamW with a linear warm-up and a
cosine decay, gradients clipped by global norm; in the frozen setting the image tower's parameters (all of `img`
but the projection `img/head`) get no update at all (optax.multi_transform with set_to_zero).
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import traverse_util

from vlscale.transfer.layout import Texts
from vlscale.transfer.model import Model, frozen_image_tower


def answer_loss(logits, targets, loss_mask):
    """Mean over examples of each example's mean negative log-likelihood over its answer tokens (loss_mask 1)."""
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    nll = -jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
    per_example = jnp.sum(nll * loss_mask, axis=1) / jnp.maximum(jnp.sum(loss_mask, axis=1), 1)
    return jnp.mean(per_example)


@dataclass(frozen=True)
class Recipe:
    """How a transfer model is trained."""
    steps: int
    batch_size: int
    peak_lr: float
    warmup_steps: int
    weight_decay: float
    grad_clip_norm: float
    frozen: bool  # the image tower (but its projection) stays as pretrained


def optimizer(params, recipe: Recipe) -> optax.GradientTransformation:
    schedule = optax.warmup_cosine_decay_schedule(0.0, recipe.peak_lr, max(recipe.warmup_steps, 1),
                                                  max(recipe.steps, recipe.warmup_steps + 1))
    learn = optax.chain(optax.clip_by_global_norm(recipe.grad_clip_norm),
                        optax.adamw(schedule, weight_decay=recipe.weight_decay))
    if not recipe.frozen:
        return learn
    flat = traverse_util.flatten_dict(params)
    labels = traverse_util.unflatten_dict({k: "frozen" if frozen_image_tower(k) else "learn" for k in flat})
    return optax.multi_transform({"learn": learn, "frozen": optax.set_to_zero()}, labels)


def make_train_step(model: Model, tx: optax.GradientTransformation, prompt_len: int):
    @jax.jit
    def step(params, opt_state, images, text, input_mask, mask_ar, mask_loss):
        def loss_fn(p):
            # only positions from the separator's on predict a token the loss counts (the answer and EOS)
            logits = model.apply({"params": p}, images, text[:, :-1], mask_ar[:, :-1], input_mask[:, :-1],
                                 first=prompt_len - 1)
            return answer_loss(logits, text[:, prompt_len:], mask_loss[:, prompt_len:])

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return step


def train(model: Model, params, images: np.ndarray, image_of: np.ndarray, texts: Texts, recipe: Recipe, seed: int,
          progress=None) -> tuple[dict, list[float]]:
    """Train `params` on the examples (row i: the image images[image_of[i]], in [-1, 1], and the laid-out text
    row i) for recipe.steps steps of batches drawn without replacement within each pass, in an order set by `seed`.
    Returns (params, the loss of every step). progress: called with (step, loss) every 50 steps."""
    tx = optimizer(params, recipe)
    opt_state = tx.init(params)
    step_fn = make_train_step(model, tx, texts.prompt_len)
    rng = np.random.default_rng(seed)
    n, order, at, losses = len(image_of), np.empty(0, np.int64), 0, []
    for step in range(recipe.steps):
        if at + recipe.batch_size > order.size:
            order, at = rng.permutation(n), 0
        rows = order[at:at + recipe.batch_size]
        at += recipe.batch_size
        params, opt_state, loss = step_fn(params, opt_state, images[image_of[rows]], texts.text[rows],
                                          texts.input_mask[rows], texts.mask_ar[rows], texts.mask_loss[rows])
        losses.append(float(loss))
        if progress is not None and (step % 50 == 0 or step == recipe.steps - 1):
            progress(step, losses[-1])
    return params, losses


def greedy_decode(model: Model, params, images: np.ndarray, image_of: np.ndarray, texts: Texts, answer_len: int,
                  batch_size: int = 256) -> np.ndarray:
    """[M, answer_len + 1] token ids: row i's answer about images[image_of[i]] decoded greedily after its prompt
    (the answer part of `texts` is ignored), one token at a time with the whole sequence recomputed; ids after EOS
    are meaningless (layout.answers_of cuts them). Every batch has `batch_size` rows (the last padded), so the
    decoder compiles once."""
    prompt_len = texts.prompt_len
    width = prompt_len + answer_len

    @jax.jit
    def decode(params, images, text, input_mask, mask_ar):
        def body(t, text):
            logits = model.apply({"params": params}, images, text[:, :width], mask_ar[:, :width],
                                 input_mask[:, :width], position=prompt_len - 1 + t)
            token = jnp.argmax(logits, axis=-1).astype(text.dtype)
            return text.at[:, prompt_len + t].set(token)

        return jax.lax.fori_loop(0, answer_len + 1, body, text)[:, prompt_len:]

    out, m = [], len(image_of)
    for start in range(0, m, batch_size):
        rows = np.minimum(np.arange(start, start + batch_size), m - 1)
        decoded = decode(params, images[image_of[rows]], texts.text[rows], texts.input_mask[rows], texts.mask_ar[rows])
        out.append(np.asarray(decoded)[: min(batch_size, m - start)])
    return np.concatenate(out)
