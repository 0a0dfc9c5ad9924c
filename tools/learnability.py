"""What limits the default models: each tower trained alone on the world's truth, at the profile's size.

    python tools/learnability.py                 # the cpu profile: image tower, then text tower
    python tools/learnability.py --steps 780 --examples 200000

A diagnostic, not a result of the study: it hands each tower the answer a perfect caption would give.
- Image tower: the profile's ViT (same width, depth, patch and image size, rendered as training renders)
  with a linear head onto every concept, trained by cross-entropy on the ground-truth concept of the
  pool's images; reported: accuracy over the ImageNet-like head classes on the development key's
  ImageNet-like analog (the zero-shot task's images).
- The same image tower on perceived gender, trained on the pool's images of people; reported: accuracy
  on the FairFace-like analog of the development key.
- Text tower: the profile's text transformer and tokenizer (data/tokenizer/spm.model) with a head onto
  every concept, trained on the captions that name a concept; reported: accuracy on held-out captions
  of the pool, over all 36 languages and in English alone.
Both see the same examples, batch and learning rate as a contrastive run. If these reach far beyond
the SigLIP run's zero-shot accuracy, the towers and the pixels are not what limits it: the contrastive
signal of noisy multilingual captions at this many examples is.
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--examples", type=int, help="training examples (default: the profile's examples_seen)")
    parser.add_argument("--evals", type=int, default=4, help="evaluations along the way")
    args = parser.parse_args()

    import jax
    import jax.numpy as jnp
    import optax

    from vlscale.config import load_params
    from vlscale.data.input import SyntheticSource
    from vlscale.data.sampling import synthetic_subsets
    from vlscale.data.tokenizer import TOKENIZER_PATH, Tokenizer
    from vlscale.evals import analogs
    from vlscale.models import text_transformer, vit
    from vlscale.world.hashing import id_words
    from vlscale.world.render import render
    from vlscale.world.spec import build_world
    from vlscale.world.truth import ground_truth, truth

    p = load_params("params.yaml", args.profile)
    train, model_params = p.train, p.model
    world = build_world(p.world)
    pool = synthetic_subsets(world, p.sample.pool_size, p.sample.key)
    source = SyntheticSource(world, pool, 1.0)
    n = min(args.examples or train.examples_seen, len(source))
    batch_size, px, n_concepts = train.batch_size, train.image_px, len(world.concepts)
    steps = n // batch_size
    eval_at = {round(steps * k / args.evals) for k in range(1, args.evals + 1)}  # the last is the end
    order = np.random.default_rng(train.seed).permutation(len(source))[:n]  # pool positions, shuffled
    ids = source.ids(order)
    gt = truth(world, ids)
    tx = optax.adamw(train.peak_lr, weight_decay=train.weight_decay)

    def fit(model, inputs, labels, evaluate, name):
        params = model.init(jax.random.key(train.seed), inputs(np.arange(1)))["params"]
        state = tx.init(params)

        @jax.jit
        def step(params, state, x, y):
            def loss(q):
                return optax.softmax_cross_entropy_with_integer_labels(model.apply({"params": q}, x)[0], y).mean()
            value, grads = jax.value_and_grad(loss)(params)
            updates, state = tx.update(grads, state, params)
            return optax.apply_updates(params, updates), state, value

        rows, t0 = [], time.perf_counter()
        for i in range(steps):
            sel = np.arange(i * batch_size, (i + 1) * batch_size) % len(labels)
            params, state, value = step(params, state, inputs(sel), labels[sel])
            if i + 1 in eval_at:
                rows.append({"tower": name, "step": i + 1, "examples": (i + 1) * batch_size, "loss": float(value),
                             **evaluate(params), "s": time.perf_counter() - t0})
                print(rows[-1], flush=True)
        return rows

    # image tower on ground-truth concepts
    hi, lo = id_words(ids)
    image_model = vit.Model(n_concepts, **model_params.image, head_zeroinit=False)
    draw = jax.jit(lambda h, lang: render(world, ground_truth(world, h, lang, jnp), h, lang, px, jnp) * 2.0 - 1.0)
    test = analogs.benchmark(world, "imagenet", size=p.evaluate.analogs["imagenet"], key=p.evaluate.keys.dev)
    head = analogs.head_concepts(world)
    thi, tlo = id_words(test.ids)
    logits = jax.jit(lambda q, x: image_model.apply({"params": q}, x)[0][:, head])

    def image_eval(params):
        preds = np.concatenate([np.asarray(logits(params, draw(thi[i:i + batch_size], tlo[i:i + batch_size]))).argmax(1)
                                for i in range(0, len(thi), batch_size)])
        return {"imagenet_head_acc": 100 * float((preds == test.labels).mean())}

    rows = fit(image_model, lambda sel: draw(hi[sel], lo[sel]), gt["concept"], image_eval, "image")

    # image tower on perceived gender, from the pool's images of people (the FairFace-like task)
    people = np.flatnonzero(gt["has_person"])
    ph, pl = hi[people], lo[people]
    gender_model = vit.Model(2, **model_params.image, head_zeroinit=False)
    faces = analogs.benchmark(world, "fairface", size=p.evaluate.analogs["fairface"], key=p.evaluate.keys.dev)
    fgt = truth(world, faces.ids)
    fhi, flo = id_words(faces.ids)
    gender_logits = jax.jit(lambda q, x: gender_model.apply({"params": q}, x)[0])

    def gender_eval(params):
        preds = np.concatenate([np.asarray(gender_logits(params, draw(fhi[i:i + batch_size],
                                                                      flo[i:i + batch_size]))).argmax(1)
                                for i in range(0, len(fhi), batch_size)])
        return {"fairface_gender_acc": 100 * float((preds == fgt["gender"]).mean())}

    rows += fit(gender_model, lambda sel: draw(ph[sel % len(people)], pl[sel % len(people)]),
                np.resize(gt["gender"][people], n), gender_eval, "image, gender")

    # text tower on the concept a caption names
    tokenizer = Tokenizer(TOKENIZER_PATH)
    max_len = p.tokenizer.max_len
    named = np.flatnonzero(gt["caption_kind"] != 2)  # vague captions name nothing
    _, texts = source.read(order[named])
    tokens = tokenizer.encode(texts, max_len)
    labels = gt["caption_concept"][named]
    held = len(tokens) // 10
    english = np.array(world.strata)[gt["caption_language"][named]] == "en"
    text_model = text_transformer.Model(n_concepts, **model_params.text, vocab_size=tokenizer.vocab_size)
    predict = jax.jit(lambda q, t: text_model.apply({"params": q}, t)[0].argmax(-1))

    def text_eval(params):
        preds = np.asarray(predict(params, tokens[:held]))
        hit = preds == labels[:held]
        return {"caption_acc": 100 * float(hit.mean()), "english_caption_acc": 100 * float(hit[english[:held]].mean())}

    rows += fit(text_model, lambda sel: tokens[held:][sel % (len(tokens) - held)], labels[held:], text_eval, "text")

    print(f"\nlearnability — profile {args.profile}: {n:,} examples, batch {batch_size}, lr {train.peak_lr}, "
          f"{px} px, {max_len} tokens; image {model_params.image}, text {model_params.text}")
    print("\n| tower | examples | loss | held-out accuracy (%) |")
    print("|---|---:|---:|---|")
    for r in rows:
        acc = {k: v for k, v in r.items() if k.endswith("acc")}
        print(f"| {r['tower']} | {r['examples']:,} | {r['loss']:.2f} | "
              + ", ".join(f"{k} {v:.1f}" for k, v in acc.items()) + " |")


if __name__ == "__main__":
    main()
