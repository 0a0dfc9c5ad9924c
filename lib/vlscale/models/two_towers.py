"""SigLIP's two-tower model: an image tower `img`, a text tower `txt`, temperature `t` and bias `b`.

Same attributes and names as big_vision's `proj/image_text/two_towers.py`, so a big_vision config
(`image_model`, `text_model`, `image`, `text`, `out_dim`, `temperature_init`, `bias_init`) builds
it unchanged. The sigmoid loss reads logits = zimg @ ztxt.T * out["t"] + out["b"].
"""
import math
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from vlscale.models import text_transformer, vit

# Tower factories by config name; big_vision's module path is accepted for its text tower.
TOWERS = {
    "vit": vit.Model,
    "text_transformer": text_transformer.Model,
    "proj.image_text.text_transformer": text_transformer.Model,
}


# The module class of each factory, whose fields are the config keys it takes.
TOWER_MODULES = {
    "vit": vit.ViT,
    "text_transformer": text_transformer.TextTransformer,
    "proj.image_text.text_transformer": text_transformer.TextTransformer,
}


def check_config(config):
    """Raise ValueError for a tower config key the tower does not take (named, with the keys allowed)."""
    for key, default in (("image_model", "vit"), ("text_model", "text_transformer")):
        name = config.get(key, default)
        tower(name)
        tower_kw = dict.fromkeys((config.get("image" if key == "image_model" else "text") or {}).keys())
        vit.check_config_keys(TOWER_MODULES[name], tower_kw, f"{'image' if key == 'image_model' else 'text'} "
                              f"tower ({name})")


def tower(name):
    """The factory of a tower named in a config ("vit", "text_transformer")."""
    if name not in TOWERS:
        raise ValueError(f"unknown tower model {name!r}; expected one of {sorted(TOWERS)}")
    return TOWERS[name]


def _normalize(z):
    """L2-normalise rows in float32 (eps as big_vision). [B, D] -> [B, D]."""
    z = z.astype(jnp.float32)
    return z / (jnp.linalg.norm(z, axis=-1, keepdims=True) + 1e-8)


class Model(nn.Module):
    """Image and text towers embedding into a shared space."""
    image: Mapping[str, Any] | None = None  # kwargs of the image tower, e.g. {"variant": "B/16"}
    text: Mapping[str, Any] | None = None
    image_model: str = "vit"
    text_model: str = "text_transformer"
    out_dim: int | tuple[int | None, int | None] = 128  # (img, txt); None: no head
    temperature_init: float = 1.0  # SigLIP: 10.0
    bias_init: float | None = None  # SigLIP: -10.0

    @nn.compact
    def __call__(self, image, text=None, *, train=False):
        """image [B, H, W, 3] in [-1, 1] or None, text [B, L] int or None -> (zimg, ztxt, out).

        zimg/ztxt are L2-normalised [B, D] float32 (None when that input is None); out holds the
        towers' intermediates as "img/<key>" and "txt/<key>", "t" = exp(t) and "b" when present.
        """
        out_dims = self.out_dim
        if isinstance(out_dims, int):
            out_dims = (out_dims, out_dims)
        out, zimg, ztxt = {}, None, None
        if image is not None:
            kw = {"num_classes": out_dims[0], **(self.image or {})}
            zimg, out_img = tower(self.image_model)(**kw, name="img")(image, train=train)
            out.update({f"img/{k}": v for k, v in out_img.items()})
            zimg = _normalize(zimg)
        if text is not None:
            kw = {"num_classes": out_dims[1], **(self.text or {})}
            ztxt, out_txt = tower(self.text_model)(**kw, name="txt")(text, train=train)
            out.update({f"txt/{k}": v for k, v in out_txt.items()})
            ztxt = _normalize(ztxt)

        t_init = math.log(self.temperature_init)
        t = self.param("t", lambda _, shape: jnp.full(shape, t_init, jnp.float32), (1,))
        out["t"] = jnp.exp(t)
        if self.bias_init is not None:
            b_init = float(self.bias_init)
            out["b"] = self.param("b", lambda _, shape: jnp.full(shape, b_init, jnp.float32), (1,))
        return zimg, ztxt, out
