"""The text tower of SigLIP, with big_vision's names (`proj/image_text/text_transformer.py`).

Token embedding `Embed_0`, learned `pos_embedding` [1, L, width], the ViT `Encoder` (`Encoder_0`),
pooling of the last token by default (SigLIP's tokenizer pads with a "sticky" EOS, so the last
token always sees the whole caption), and an optional `head` Dense. Returns (x, out) like the ViT.
"""
from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from vlscale.models import vit


class TextTransformer(nn.Module):
    """Text transformer. Build it with `Model(variant=...)`, which decodes the variant string."""
    num_classes: int | None = None  # a `head` Dense when set
    width: int = 512
    depth: int = 12
    mlp_dim: int | None = None
    num_heads: int = 8
    dropout: float = 0.0
    vocab_size: int = 32_000
    pool_type: str = "last"  # "last" | "first" | "mean"/"gap" | "max"/"gmp" | "map"
    # big_vision's layout and memory knobs, accepted; they do not change the numbers (see vit.ViT).
    scan: bool = False
    remat_policy: str = "nothing_saveable"
    dtype_mm: Any = jnp.float32

    @nn.compact
    def __call__(self, text, *, train=False):
        """text [B, L] int token ids -> (x [B, num_classes] or [B, width], out).

        out: "embedded" [B, L, width], "transformed" [B, L, width] (after encoder_norm), the
        encoder's "block{i:02d}"/"pre_ln", "pre_logits" [B, width], "logits" (with a head),
        "map_attention" [B, heads, 1, L] (pool_type "map").
        """
        out = {}
        x = out["embedded"] = nn.Embed(self.vocab_size, self.width)(text)
        _, length, d = x.shape
        x = x + self.param("pos_embedding", nn.initializers.normal(stddev=1 / np.sqrt(d)),
                           (1, length, d), jnp.float32)
        dtype_mm = vit.as_dtype(self.dtype_mm)
        x, encoder_out = vit.Encoder(self.depth, self.mlp_dim, self.num_heads, self.dropout,
                                     dtype_mm)(x, deterministic=not train)
        out.update({"transformed": x, **encoder_out})

        if self.pool_type == "last":
            x = x[:, -1]
        elif self.pool_type == "first":
            x = x[:, 0]
        elif self.pool_type in ("mean", "gap"):
            x = x.mean(axis=1)
        elif self.pool_type in ("max", "gmp"):
            x = x.max(axis=1)
        elif self.pool_type == "map":
            x, out["map_attention"] = vit.MAPHead(self.mlp_dim, self.num_heads, dtype_mm)(x)
        else:
            raise ValueError(f"unknown text pool_type {self.pool_type!r}; "
                             "expected 'last', 'first', 'mean', 'gap', 'max', 'gmp' or 'map'")
        out["pre_logits"] = x

        if self.num_classes:
            x = out["logits"] = nn.Dense(self.num_classes, dtype=dtype_mm, name="head")(x)
        return x, out


def Model(num_classes=None, *, variant=None, **kw):  # noqa: N802 (big_vision's factory name)
    """A text transformer from a ViT variant string ("B", "So400m"); explicit kwargs override it.

    Every key of big_vision's text-transformer config is accepted; an unknown one is a ValueError naming it."""
    vit.check_config_keys(TextTransformer, kw, "text transformer")
    return TextTransformer(num_classes, **{**vit.decode_variant(variant), **kw})
