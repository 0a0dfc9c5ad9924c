"""A cheap held-out probe of a run while it trains: is the model still learning?

Every `probe_every_examples` the trainer embeds a few hundred images of two analogs drawn with the
development key (never the report key) and logs, beside the loss:
    imagenet_0shot_acc   ImageNet-like zero-shot accuracy (%), images balanced over the head classes
    coco_i2t_r1          COCO-like image->text Recall@1 (%)
computed with the evaluation protocols themselves (evals/protocols.py: ties split in expectation, so a
collapsed model scores chance, which the record carries as *_chance). Images are rendered once; a probe
costs one forward pass over them and the class names and captions.
"""
from __future__ import annotations

import numpy as np

import jax
import jax.numpy as jnp

from vlscale.evals import analogs, protocols
from vlscale.world.hashing import id_words
from vlscale.world.render import render_jax


class Probe:
    """Zero-shot ImageNet-like accuracy and COCO-like image->text R@1 of a model's params.

    world: the run's world; encode: texts -> token ids [N, L]; px: the run's image size; size:
    images per analog; key: the analog key (params.yaml evaluate.keys.dev).
    """

    def __init__(self, world, encode, px: int, size: int, key: int, batch_size: int = 256):
        if size < 1:
            raise ValueError(f"train.probe_images = {size} must be >= 1 (or set probe_every_examples to 0)")
        self.size, self.key, self.batch_size = size, key, batch_size
        self._fns = {}  # model -> its jit-compiled towers
        imagenet = analogs.benchmark(world, "imagenet", size=size, key=key)
        coco = analogs.benchmark(world, "coco", size=size, key=key)
        render = render_jax(world, px)
        self._images = {name: self._render(render, b.ids) for name, b in (("imagenet", imagenet), ("coco", coco))}
        self._labels = imagenet.labels
        self._class_tokens = encode([protocols.canonicalize(c) for c in imagenet.class_names])
        self._caption_tokens = encode(coco.captions)
        self._caption_image = np.asarray(coco.caption_image)
        self.chance = {"imagenet_0shot_acc": 100.0 / len(imagenet.class_names),
                       "coco_i2t_r1": 100.0 * np.bincount(self._caption_image).mean() / len(self._caption_tokens)}

    def _render(self, render, ids) -> np.ndarray:
        hi, lo = id_words(ids)
        return np.concatenate([np.asarray(render(hi[i:i + self.batch_size], lo[i:i + self.batch_size])) * 2.0 - 1.0
                               for i in range(0, len(ids), self.batch_size)]).astype(np.float32)

    def _embed(self, fn, params, x) -> np.ndarray:
        out = []
        for i in range(0, len(x), self.batch_size):
            chunk = x[i:i + self.batch_size]
            pad = self.batch_size - len(chunk)
            if pad:  # one compiled shape
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad, axis=0)])
            out.append(np.asarray(fn(params, jnp.asarray(chunk)))[: self.batch_size - pad])
        return np.concatenate(out)

    def __call__(self, model, params) -> dict[str, float]:
        """{imagenet_0shot_acc, coco_i2t_r1} in % for `params` of the two-tower `model`."""
        if model not in self._fns:
            self._fns[model] = (jax.jit(lambda p, x: model.apply({"params": p}, x, None)[0]),
                                jax.jit(lambda p, t: model.apply({"params": p}, None, t)[1]))
        images, texts = self._fns[model]
        zcls = self._embed(texts, params, self._class_tokens)
        zimg = self._embed(images, params, self._images["imagenet"])
        acc = protocols.zero_shot_hits(zimg, zcls, self._labels).mean()
        zimg = self._embed(images, params, self._images["coco"])
        ztxt = self._embed(texts, params, self._caption_tokens)
        r1 = protocols.retrieval_hits(zimg, ztxt, self._caption_image, ks=(1,))["i2t@1"].mean()
        return {"imagenet_0shot_acc": 100.0 * float(acc), "coco_i2t_r1": 100.0 * float(r1)}
