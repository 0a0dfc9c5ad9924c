"""A small PaliGemma-style generative vision-language model, with big_vision's names and layout
(big_vision models/proj/paligemma): a SigLIP image tower, `img`, whose `head` Dense projects every patch token
to the language model's width (pool_type "none"), and a decoder-only language model, `llm`, that reads the image
tokens and the text as one sequence.

The sequence is [image tokens][prompt][answer]: the image tokens and the prompt (the task prefix and a separator)
form one block that attends to itself fully, and the answer is causal (a prefix-LM). `make_attn_mask` builds the
mask from `mask_ar` the way big_vision does: a token sees every valid token whose running sum of `mask_ar` is at
most its own, so a run of 0s is one bidirectional block and each 1 starts a block of its own.

The language model: token embeddings scaled by sqrt(width) (the image tokens are not), a learned position embedding
over the whole sequence, pre-norm transformer blocks with masked attention, a final norm, and logits from the tied
input embedding. The projection `img/head` starts at zero (big_vision's default), so a fresh model reads only the text.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vlscale.models import vit


def make_attn_mask(input_mask, mask_ar):
    """[B, N] bool (valid token), [B, N] int (0: joins the previous block, 1: starts a new one) -> [B, N, N] bool:
    token i attends to token j when both are valid and cumsum(mask_ar)[j] <= cumsum(mask_ar)[i]."""
    cumsum = jnp.cumsum(mask_ar, axis=1)
    attend = cumsum[:, None, :] <= cumsum[:, :, None]
    valid = input_mask[:, None, :] & input_mask[:, :, None]
    return attend & valid


class DecoderBlock(nn.Module):
    """Pre-norm block: x + attn(LN(x), mask), then x + mlp(LN(x)). [B, N, D] -> [B, N, D]."""
    num_heads: int
    mlp_dim: int

    @nn.compact
    def __call__(self, x, mask):
        d = x.shape[-1]
        if d % self.num_heads:
            raise ValueError(f"llm width {d} is not divisible by num_heads {self.num_heads}")
        y = nn.LayerNorm(name="pre_attention_norm")(x)
        qkv = nn.DenseGeneral((3, self.num_heads, d // self.num_heads), name="qkv")(y)
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        y = jax.nn.dot_product_attention(q, k, v, mask=mask[:, None])
        x = x + nn.DenseGeneral(d, axis=(-2, -1), name="attn_out")(y)
        y = nn.LayerNorm(name="pre_ffw_norm")(x)
        return x + vit.MlpBlock(self.mlp_dim, name="mlp")(y)


class Decoder(nn.Module):
    """The language model (`llm`): embed_tokens and __call__(embeddings, mask) -> (logits, pre_logits)."""
    vocab_size: int
    width: int = 64
    depth: int = 2
    mlp_dim: int = 256
    num_heads: int = 4
    max_len: int = 64  # image tokens + text tokens

    def setup(self):
        # scaled by sqrt(width) on the way in, so the embedded tokens and the tied logits are of unit scale
        self.embedder = self.param("input_embedding", nn.initializers.normal(stddev=self.width ** -0.5),
                                   (self.vocab_size, self.width), jnp.float32)
        self.pos_embedding = self.param("pos_embedding", nn.initializers.normal(stddev=0.02),
                                        (1, self.max_len, self.width), jnp.float32)
        self.blocks = [DecoderBlock(self.num_heads, self.mlp_dim, name=f"layer_{i}") for i in range(self.depth)]
        self.final_norm = nn.LayerNorm(name="final_norm")

    def embed_tokens(self, tokens):
        return self.embedder[tokens] * np.sqrt(self.width).astype(np.float32)

    def __call__(self, x, mask):
        """[B, N, D] embedded tokens, [B, N, N] attention mask -> pre-logits [B, N, D] (after the final norm)."""
        if x.shape[1] > self.max_len:
            raise ValueError(f"sequence of {x.shape[1]} tokens exceeds the llm's max_len {self.max_len}")
        x = x + self.pos_embedding[:, : x.shape[1]]
        for block in self.blocks:
            x = block(x, mask)
        return self.final_norm(x)

    def compute_logits(self, pre_logits):
        """Logits over the vocabulary from the tied input embedding."""
        return pre_logits @ self.embedder.T


class Model(nn.Module):
    """image [B, H, W, 3] in [-1, 1], text [B, T] ids, mask_ar [B, T], input_mask [B, T] -> text logits.

    img: the image tower's big_vision config (the SigLIP run's `model.image`); its pooling is replaced by "none"
    and its head by the projection to the llm's width. llm: Decoder's fields."""
    img: Any
    llm: Any

    def setup(self):
        self.language = Decoder(**dict(self.llm), name="llm")
        image = {k: v for k, v in dict(self.img).items() if k not in ("pool_type", "num_classes")}
        self.image = vit.Model(num_classes=self.language.width, pool_type="none", **image, name="img")

    def encode_image(self, image):
        """[B, N_patches, D]: what the tower's projection reads (its "pre_logits": the encoder's patch tokens, after
        the tower's own pre_logits layer where it has one); fixed in the frozen setting, so a transfer computes them
        once per image."""
        _, out = self.image(image)
        return out["pre_logits"]

    def project(self, encoded):
        """[B, N, llm width]: encode_image's tokens through the projection `img/head`, as the tower's head computes
        it (in the tower's dtype_mm)."""
        head = self.image.variables["params"]["head"]
        dtype = vit.as_dtype(dict(self.img).get("dtype_mm", jnp.float32))
        return jnp.asarray(encoded, dtype) @ head["kernel"].astype(dtype) + head["bias"].astype(dtype)

    def embed_image(self, image):
        """[B, N_patches, llm width]: every patch token through the projection `img/head`."""
        zimg, _ = self.image(image)
        return zimg

    def image_tokens(self, image, image_is: str):
        """The image tokens at the llm's width from pixels ("pixels"), from the encoder's tokens ("encoded": only the
        projection runs) or as given ("tokens": already projected)."""
        if image_is == "pixels":
            return self.embed_image(image)
        if image_is == "encoded":
            return self.project(image)
        if image_is == "tokens":
            return image
        raise ValueError(f"image_is {image_is!r}: expected 'pixels', 'encoded' or 'tokens'")

    def __call__(self, image, text, mask_ar, input_mask, *, image_is: str = "pixels", select=None, position=None):
        """Text logits. image: pixels [B, H, W, 3] in [-1, 1], or what `image_is` says (Model.image_tokens). The
        vocabulary projection is the costly part, so it is computed only where a token is predicted: with `select`
        (rows [K], columns [K] int arrays), at those text positions [K, V]; with `position` (a traced int), at that
        text position of every row [B, V] (a decoding step); else at every text position [B, T, V]."""
        zimg = self.image_tokens(image, image_is)
        n, batch = zimg.shape[1], text.shape[0]
        x = jnp.concatenate([zimg, self.language.embed_tokens(text)], axis=1)
        full_mask = jnp.concatenate([jnp.ones((batch, n), bool), input_mask], axis=1)
        full_ar = jnp.concatenate([jnp.zeros((batch, n), mask_ar.dtype), mask_ar], axis=1)
        pre_logits = self.language(x, make_attn_mask(full_mask, full_ar))[:, n:]
        if select is not None:
            rows, columns = select
            return self.language.compute_logits(pre_logits[rows, columns])
        if position is not None:
            return self.language.compute_logits(jnp.take(pre_logits, position, axis=1))
        return self.language.compute_logits(pre_logits)


def frozen_image_tower(path: tuple[str, ...]) -> bool:
    """Whether a parameter belongs to the frozen image tower: everything under `img` but the projection `img/head`
    (the paper's frozen setting keeps the contrastive encoder fixed and learns the connector)."""
    return path[0] == "img" and path[1] != "head"
