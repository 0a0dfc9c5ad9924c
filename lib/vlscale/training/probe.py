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

import jax
import numpy as np

from vlscale.evals import analogs, protocols
from vlscale.evals.embedder import Embedder
from vlscale.world.render import render_jax, render_padded


class Probe:
    """Zero-shot ImageNet-like accuracy and COCO-like image->text R@1 of a model's params.

    world: the run's world; encode: texts -> token ids [N, L]; px: the run's image size; size:
    images per analog; key: the analog key (params.yaml evaluate.keys.dev).
    """

    def __init__(self, world, encode, px: int, size: int, key: int, batch_size: int = 256):
        if size < 1:
            raise ValueError(f"train.probe_images = {size} must be >= 1 (or set probe_every_examples to 0)")
        self.size, self.key, self.batch_size, self.encode = size, key, batch_size, encode
        self._fns = {}  # model -> its jit-compiled towers
        self._imagenet = analogs.benchmark(world, "imagenet", size=size, key=key)
        self._coco = analogs.benchmark(world, "coco", size=size, key=key)
        render = render_jax(world, px)
        self._pixels = {b.name: render_padded(render, b.ids, batch_size) for b in (self._imagenet, self._coco)}
        self.chance = {"imagenet_0shot_acc": 100.0 / len(self._imagenet.class_names),
                       "coco_i2t_r1": 100.0 * np.bincount(self._coco.caption_image).mean() / len(self._coco.captions)}

    def __call__(self, model, params) -> dict[str, float]:
        """{imagenet_0shot_acc, coco_i2t_r1} in % for `params` of the two-tower `model`."""
        if model not in self._fns:
            self._fns[model] = (jax.jit(lambda p, x: model.apply({"params": p}, x, None)[0]),
                                jax.jit(lambda p, t: model.apply({"params": p}, None, t)[1]))
        images, texts = self._fns[model]
        emb = Embedder(lambda x: images(params, x), lambda t: texts(params, t), self.encode, self.batch_size)
        zimg = {name: emb.images(name, lambda a, b, x=x: x[a:b], len(x)) for name, x in self._pixels.items()}
        zcls = protocols.class_embeddings(emb.texts, self._imagenet.class_names, ("{}",))
        acc = protocols.zero_shot_hits(zimg["imagenet"], zcls, self._imagenet.labels).mean()
        ztxt = emb.texts(self._coco.captions)
        r1 = protocols.retrieval_hits(zimg["coco"], ztxt, np.asarray(self._coco.caption_image), ks=(1,))["i2t@1"].mean()
        return {"imagenet_0shot_acc": 100.0 * float(acc), "coco_i2t_r1": 100.0 * float(r1)}
