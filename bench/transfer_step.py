"""A transfer training step, side by side in one run: the vocabulary projected at every answer slot (what the loss
needs written plainly: logits [batch, answer slots, vocabulary], masked) against the answer tokens packed
(vlscale.transfer.fit.pack: only the tokens the loss counts), for the frozen tower (its tokens computed once) and the
unfrozen one. The default profile's sizes, tokenizer and world; a fresh image tower (the cost does not depend on its
weights). Prints ms per step (median of the timed steps) and the speed-up.

    python bench/transfer_step.py [--steps 30]
"""
from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from vlscale.config import load_params
from vlscale.data.tokenizer import TOKENIZER_PATH, Tokenizer
from vlscale.transfer import fit, stage
from vlscale.transfer.model import Model
from vlscale.transfer.run import init_params
from vlscale.world.spec import build_world


def full_step(model, tx, prompt_len, image_is):
    """The loss over every answer slot: logits [B, slots, V], the answer's tokens masked in."""
    @jax.jit
    def step(params, opt_state, image, text, input_mask, mask_ar, mask_loss):
        def loss_fn(p):
            logits = model.apply({"params": p}, image, text[:, :-1], mask_ar[:, :-1], input_mask[:, :-1],
                                 image_is=image_is)[:, prompt_len - 1:]
            logp = jax.nn.log_softmax(logits, axis=-1)
            targets, mask = text[:, prompt_len:], mask_loss[:, prompt_len:]
            nll = -jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
            return jnp.mean(jnp.sum(nll * mask, axis=1) / jnp.maximum(jnp.sum(mask, axis=1), 1))

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss
    return step


def timed(fn, batches, warmup=3) -> float:
    times = []
    for i, args in enumerate(batches):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args(argv)
    p = load_params()
    block = p.transfer
    tokenizer = Tokenizer(TOKENIZER_PATH)
    train, _ = stage._examples(build_world(p.world), tokenizer, block, p.evaluate.keys.dev, p.train.image_px, 256)
    llm = stage.decoder_config(tokenizer, block, p.model.image, p.train.image_px, block.answer_len)
    model = Model(img=p.model.image, llm=llm)
    params = init_params(model, train, 0)
    texts = train.texts
    batches = fit.batch_order(len(train.tasks.image), args.steps, block.batch_size, 0)
    capacity = fit.capacity_for(texts, batches)
    print(f"batch {block.batch_size}, vocabulary {tokenizer.vocab_size:,}, answer slots {block.answer_len + 1}, "
          f"packed capacity {capacity}, {args.steps} steps (median after 3)")
    print(f"{'setting':<10}{'all slots (ms)':>16}{'packed (ms)':>14}{'speed-up':>10}")
    for setting in ("frozen", "unfrozen"):
        recipe = stage.recipe(block, setting)
        tx = fit.optimizer(params, recipe)
        state = tx.init(params)
        if recipe.frozen:
            images, image_is = fit.encode_images(model, params, train.images), "encoded"
        else:
            images, image_is = train.images, "pixels"
        rows = [(images[train.tasks.image[b]], b) for b in batches]
        full = full_step(model, tx, texts.prompt_len, image_is)
        packed = fit.make_train_step(model, tx, image_is)
        t_full = timed(full, [(params, state, x, texts.text[b], texts.input_mask[b], texts.mask_ar[b],
                               texts.mask_loss[b]) for x, b in rows])
        t_packed = timed(packed, [(params, state, x, texts.text[b], texts.input_mask[b], texts.mask_ar[b],
                                   fit.pack(texts, b, capacity)) for x, b in rows])
        print(f"{setting:<10}{t_full:>16.1f}{t_packed:>14.1f}{t_full / t_packed:>9.2f}x")


if __name__ == "__main__":
    main()
