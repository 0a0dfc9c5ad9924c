"""Training a transfer model with teacher forcing, and greedy decoding (big_vision trainers/proj/paligemma).

The model reads text[:, :-1] and predicts text[:, 1:]; the loss counts only the answer's tokens and EOS
(mask_loss[:, 1:]), averaged per example and then over the batch. Only those positions are projected to the
vocabulary, the cost of a step at our sizes: a batch's answer tokens are packed into one fixed-size list (`pack`).
The optimiser is AdamW with a linear warm-up and a cosine decay, gradients clipped by global norm; in the frozen
setting the image tower's parameters (all of `img` but the projection `img/head`) get no update at all
(optax.multi_transform with set_to_zero), and its patch tokens are computed once per image; unfrozen, the pretrained
tower learns at a fraction of the fresh decoder's rate (tower_lr_scale).
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import traverse_util

from vlscale.transfer.layout import Texts
from vlscale.transfer.model import Model, frozen_image_tower


def answer_loss(logits, targets, weights):
    """The loss over packed answer tokens (logits [K, V], targets [K], weights [K]; `Packed`): each token's negative
    log-likelihood (optax's softmax cross-entropy) times its weight, summed. With Packed's weights (1 / (batch x the
    example's answer tokens), 0 for padding) it is the mean over examples of each example's mean over its answer
    tokens."""
    nll = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), targets)
    return jnp.sum(nll * weights)


class Packed(NamedTuple):
    """The answer tokens of a batch, packed so that the vocabulary is projected only where the loss counts (an
    answer is 4 pieces on average, its slot 13): for token k, the batch row and input position whose prediction is
    learned, its target id and its weight; [K] each, the tail padding with weight 0."""
    rows: np.ndarray
    columns: np.ndarray
    targets: np.ndarray
    weights: np.ndarray


def pack(texts: Texts, rows: np.ndarray, capacity: int) -> Packed:
    """The answer tokens of the batch `rows` of `texts` (input position q predicts text[q + 1] where
    mask_loss[q + 1] is 1), padded to `capacity`; more tokens than that is a ValueError."""
    loss = texts.mask_loss[rows, 1:].astype(bool)
    row, column = np.nonzero(loss)
    if row.size > capacity:
        raise ValueError(f"a batch has {row.size} answer tokens, more than the packing capacity {capacity}")
    counts = loss.sum(axis=1)
    out = Packed(np.zeros(capacity, np.int32), np.zeros(capacity, np.int32), np.zeros(capacity, np.int32),
                 np.zeros(capacity, np.float32))
    out.rows[:row.size], out.columns[:row.size] = row, column
    out.targets[:row.size] = texts.text[rows[row], column + 1]
    out.weights[:row.size] = 1.0 / (len(rows) * counts[row])
    return out


def capacity_for(texts: Texts, batches: list[np.ndarray], multiple: int = 64) -> int:
    """The most answer tokens any of the batches holds, rounded up to `multiple` (one compiled shape, no token left
    out; the rounding gives transfers of other seeds the same shape, so they share the compiled step)."""
    per_row = texts.mask_loss[:, 1:].sum(axis=1)
    most = max(int(per_row[rows].sum()) for rows in batches)
    return -(-most // multiple) * multiple


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
    tower_lr_scale: float  # not frozen: the tower's rate is peak_lr times this


def optimizer(params, recipe: Recipe) -> optax.GradientTransformation:
    """AdamW on a warm-up + cosine schedule after global-norm clipping; the image tower (all of `img` but the
    projection) gets no update when frozen, and its rate times recipe.tower_lr_scale when not."""
    def adamw(scale: float):
        schedule = optax.warmup_cosine_decay_schedule(0.0, recipe.peak_lr * scale, max(recipe.warmup_steps, 1),
                                                      max(recipe.steps, recipe.warmup_steps + 1))
        return optax.adamw(schedule, weight_decay=recipe.weight_decay)

    tower = optax.set_to_zero() if recipe.frozen else adamw(recipe.tower_lr_scale)
    flat = traverse_util.flatten_dict(params)
    labels = traverse_util.unflatten_dict({k: "tower" if frozen_image_tower(k) else "rest" for k in flat})
    return optax.chain(optax.clip_by_global_norm(recipe.grad_clip_norm),
                       optax.multi_transform({"rest": adamw(1.0), "tower": tower}, labels))


def batch_order(n: int, steps: int, batch_size: int, seed: int) -> list[np.ndarray]:
    """The rows of every step's batch: passes over the n examples in an order set by `seed`, without replacement
    within a pass."""
    rng = np.random.default_rng(seed)
    order, at, out = np.empty(0, np.int64), 0, []
    for _ in range(steps):
        if at + batch_size > order.size:
            order, at = rng.permutation(n), 0
        out.append(order[at:at + batch_size])
        at += batch_size
    return out


_COMPILED: dict = {}
_REGISTRY = threading.RLock()  # guards _COMPILED: the stage makes transfers in threads


def compiled(model: Model, what: tuple, build):
    """The jitted function `build()` for `model`'s configuration and `what` (hashable), built once per process: the
    transfers of one stage share their shapes and configurations, so each compiles only its first time."""
    key = (json.dumps({"img": dict(model.img), "llm": dict(model.llm)}, sort_keys=True, default=str), what)
    with _REGISTRY:  # one jitted function per key (it compiles lazily, at its first call)
        if key not in _COMPILED:
            _COMPILED[key] = build()
        return _COMPILED[key]


def clear_compiled() -> None:
    """Forget every jitted function `compiled` built, and JAX's compilation caches (a benchmark's fresh start)."""
    with _REGISTRY:
        _COMPILED.clear()
    jax.clear_caches()


def _per_image(model: Model, params, images: np.ndarray, method, batch_size: int) -> np.ndarray:
    """`method` of Model applied to the images in batches (compiled once per model and method)."""
    apply = compiled(model, (method.__name__,), lambda: jax.jit(
        lambda p, x: model.apply({"params": p}, x, method=method)))
    return np.concatenate([np.asarray(apply(params, images[i:i + batch_size]))
                           for i in range(0, len(images), batch_size)])


def encode_images(model: Model, params, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """[N, patches, tower width]: the encoder's patch tokens of every image (before the projection), in batches."""
    return _per_image(model, params, images, Model.encode_image, batch_size)


def image_tokens(model: Model, params, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """[N, patches, llm width]: every image's tokens as the decoder reads them (tower and projection), in batches."""
    return _per_image(model, params, images, Model.embed_image, batch_size)


def make_train_step(model: Model, tx: optax.GradientTransformation, image_is: str):
    def step(params, opt_state, image, text, input_mask, mask_ar, packed):
        def loss_fn(p):
            logits = model.apply({"params": p}, image, text[:, :-1], mask_ar[:, :-1], input_mask[:, :-1],
                                 image_is=image_is, select=(packed.rows, packed.columns))
            return answer_loss(logits, packed.targets, packed.weights)

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return jax.jit(step)


def train(model: Model, params, images: np.ndarray, image_of: np.ndarray, texts: Texts, recipe: Recipe, seed: int,
          progress=None) -> tuple[dict, list[float]]:
    """Train `params` on the examples (row i: the image images[image_of[i]], in [-1, 1], and the laid-out text
    row i) for recipe.steps steps of batches drawn without replacement within each pass, in an order set by `seed`.
    In the frozen setting the encoder's patch tokens are computed once per image and only the projection and the
    decoder run at each step. Returns (params, the loss of every step). progress: called with (step, loss) every 50
    steps."""
    tx = optimizer(params, recipe)
    opt_state = tx.init(params)
    batches = batch_order(len(image_of), recipe.steps, recipe.batch_size, seed)
    capacity = capacity_for(texts, batches)
    if recipe.frozen:
        pixels, image_is = encode_images(model, params, images), "encoded"
    else:
        pixels, image_is = images, "pixels"
    step_fn = compiled(model, ("train", recipe, image_is), lambda: make_train_step(model, tx, image_is))
    losses = []
    for step, rows in enumerate(batches):
        packed = pack(texts, rows, capacity)
        params, opt_state, loss = step_fn(params, opt_state, pixels[image_of[rows]], texts.text[rows],
                                          texts.input_mask[rows], texts.mask_ar[rows], packed)
        losses.append(float(loss))
        if progress is not None and (step % 50 == 0 or step == recipe.steps - 1):
            progress(step, losses[-1])
    return params, losses


def greedy_decode(model: Model, params, images: np.ndarray, image_of: np.ndarray, texts: Texts, answer_len: int,
                  batch_size: int = 256) -> np.ndarray:
    """[M, answer_len + 1] token ids: row i's answer about images[image_of[i]] decoded greedily after its prompt
    (the answer part of `texts` is ignored), one token at a time with the text recomputed, until every row of the
    batch has ended (EOS) or answer_len + 1 tokens; ids after a row's EOS are meaningless (layout.answers_of cuts
    them). The image tokens are computed once per image; rows are decoded grouped by prompt (answers of one task
    end together) and returned in their order. Every batch has `batch_size` rows (the last padded), so the decoder
    compiles once."""
    prompt_len = texts.prompt_len
    width = prompt_len + answer_len
    eos = int(texts.text[0, prompt_len - 1])  # the separator is EOS (layout)
    tokens = image_tokens(model, params, images)

    def decode_batch(params, zimg, text, input_mask, mask_ar):
        def body(state):
            t, text, ended = state
            logits = model.apply({"params": params}, zimg, text[:, :width], mask_ar[:, :width], input_mask[:, :width],
                                 image_is="tokens", position=prompt_len - 1 + t)
            token = jnp.argmax(logits, axis=-1).astype(text.dtype)
            return t + 1, text.at[:, prompt_len + t].set(token), ended | (token == eos)

        def more(state):
            t, _, ended = state
            return (t <= answer_len) & ~jnp.all(ended)

        start = (jnp.int32(0), text, jnp.zeros(text.shape[0], bool))
        return jax.lax.while_loop(more, body, start)[1][:, prompt_len:]

    decode = compiled(model, ("decode", prompt_len, answer_len, eos), lambda: jax.jit(decode_batch))
    m = len(image_of)
    text = texts.text.copy()
    text[:, prompt_len:] = eos  # whatever the answer part held (a laid-out gold answer) is never read
    order = np.lexsort(text[:, :prompt_len].T[::-1])  # by prompt
    out = np.empty((m, answer_len + 1), texts.text.dtype)
    for start in range(0, m, batch_size):
        rows = order[np.minimum(np.arange(start, start + batch_size), m - 1)]
        decoded = decode(params, tokens[image_of[rows]], text[rows], texts.input_mask[rows], texts.mask_ar[rows])
        kept = min(batch_size, m - start)
        out[rows[:kept]] = np.asarray(decoded)[:kept]
    return out
