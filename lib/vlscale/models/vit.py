"""The ViT image tower of SigLIP, with big_vision's module and parameter names.

Names match big_vision's `models/vit.py` so that its checkpoints load without renaming: a tower is
`embedding` (patchify conv) + `pos_embedding` + `Transformer` (blocks `encoderblock_{i}`, final
`encoder_norm`) + an optional pooling head (`MAPHead_0`) and classifier (`head`). Every model
returns `(x, out)`, where `out` holds the intermediates that evaluators and visualisations read.

Mixed precision: `dtype_mm` is the dtype of matmuls and convolutions; parameters, LayerNorm,
softmax and the residual stream stay float32.
"""
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

# Table 2 of arXiv 2106.04560 plus So400m (arXiv 2305.13035); "mu" is a micro model for tests.
VARIANTS = {  # name: (width, depth, mlp_dim, num_heads)
    "mu": (32, 1, 128, 2),
    "Ti": (192, 12, 768, 3),
    "S": (384, 12, 1536, 6),
    "M": (512, 12, 2048, 8),
    "B": (768, 12, 3072, 12),
    "L": (1024, 24, 4096, 16),
    "So400m": (1152, 27, 4304, 16),
    "H": (1280, 32, 5120, 16),
    "g": (1408, 40, 6144, 16),
    "G": (1664, 48, 8192, 16),
}


def posemb_sincos_2d(h: int, w: int, width: int, temperature: float = 10_000.0):
    """big_vision's fixed 2-D sin-cos position embedding (MoCo v3): [1, h * w, width] float32.

    Per patch (row y, column x): sin(x w_k), cos(x w_k), sin(y w_k), cos(y w_k) with
    w_k = temperature^(-k / (width/4 - 1)), k < width / 4.
    """
    if width % 4:
        raise ValueError(f"a sincos2d position embedding needs a width divisible by 4, not {width}")
    y, x = np.mgrid[:h, :w]
    omega = 1.0 / temperature ** (np.arange(width // 4) / (width // 4 - 1))
    y = np.einsum("m,d->md", y.reshape(-1), omega)
    x = np.einsum("m,d->md", x.reshape(-1), omega)
    pe = np.concatenate([np.sin(x), np.cos(x), np.sin(y), np.cos(y)], axis=1)
    return jnp.asarray(pe, jnp.float32)[None]


def as_dtype(dtype):
    """A matmul dtype as big_vision configs write it ("float32", "bfloat16") or as a numpy/jnp dtype."""
    try:
        return jnp.dtype(dtype)
    except TypeError as e:
        raise ValueError(f"unknown dtype_mm {dtype!r}; expected e.g. 'float32' or 'bfloat16'") from e


def check_config_keys(module, kw: dict, where: str):
    """Raise ValueError naming every key of `kw` that `module` (a flax dataclass) has no field for."""
    allowed = sorted(f for f in module.__dataclass_fields__ if f not in ("parent", "name"))
    unknown = sorted(set(kw) - set(allowed) - {"variant", "name", "parent"})
    if unknown:
        raise ValueError(f"unknown {where} config key{'s' if len(unknown) > 1 else ''} {unknown}; "
                         f"allowed: {['variant'] + allowed}")


def decode_variant(variant):
    """Module kwargs of a variant: "B" -> width, depth, mlp_dim, num_heads; "B/16" adds patch_size.

    None gives {} (all from explicit kwargs). Unknown names raise ValueError listing the known ones.
    """
    if variant is None:
        return {}
    name, _, patch = variant.partition("/")
    if name not in VARIANTS or (patch and not patch.isdigit()):
        raise ValueError(f"unknown ViT variant {variant!r}; expected one of {sorted(VARIANTS)}, "
                         "optionally followed by /<patch size> as in 'B/16'")
    width, depth, mlp_dim, num_heads = VARIANTS[name]
    kw = dict(width=width, depth=depth, mlp_dim=mlp_dim, num_heads=num_heads)
    if patch:
        kw["patch_size"] = (int(patch), int(patch))
    return kw


class MlpBlock(nn.Module):
    """Transformer feed-forward block: Dense_0 -> gelu (tanh) -> Dense_1. [B, L, D] -> [B, L, D]."""
    mlp_dim: int | None = None  # 4 * D when None
    dropout: float = 0.0
    dtype_mm: Any = jnp.float32

    @nn.compact
    def __call__(self, x, deterministic=True):
        inits = dict(kernel_init=nn.initializers.xavier_uniform(),
                     bias_init=nn.initializers.normal(stddev=1e-6))
        d = x.shape[-1]
        x = nn.Dense(self.mlp_dim or 4 * d, dtype=self.dtype_mm, **inits)(x)
        x = nn.gelu(x)
        x = nn.Dropout(rate=self.dropout)(x, deterministic)
        return nn.Dense(d, dtype=self.dtype_mm, **inits)(x)


class MultiHeadDotProductAttention(nn.Module):
    """Multi-head attention with flax.linen.MultiHeadDotProductAttention's parameter layout.

    Our own module so that it can return the attention weights (for MAP-head visualisations) and
    otherwise call jax.nn.dot_product_attention. Parameters: query/key/value kernels [D, heads,
    head_dim] and biases [heads, head_dim]; out kernel [heads, head_dim, D] and bias [D].
    """
    num_heads: int
    dtype_mm: Any = jnp.float32

    @nn.compact
    def __call__(self, inputs_q, inputs_kv, return_weights=False):
        """[B, Lq, D], [B, Lkv, D] -> ([B, Lq, D], weights [B, heads, Lq, Lkv] or None)."""
        d = inputs_q.shape[-1]
        if d % self.num_heads:
            raise ValueError(f"width {d} is not divisible by num_heads {self.num_heads}")
        head_dim = d // self.num_heads
        kernel_init = nn.initializers.xavier_uniform()

        def project(name, x):
            return nn.DenseGeneral((self.num_heads, head_dim), kernel_init=kernel_init,
                                   dtype=self.dtype_mm, name=name)(x)

        q, k, v = project("query", inputs_q), project("key", inputs_kv), project("value", inputs_kv)
        weights = None
        if return_weights:
            logits = jnp.einsum("bqhd,bkhd->bhqk", q, k, preferred_element_type=jnp.float32)
            weights = jax.nn.softmax(logits / np.sqrt(head_dim), axis=-1)
            y = jnp.einsum("bhqk,bkhd->bqhd", weights.astype(v.dtype), v)
        else:
            y = jax.nn.dot_product_attention(q, k, v)  # softmax in float32 inside
        y = nn.DenseGeneral(d, axis=(-2, -1), kernel_init=kernel_init, dtype=self.dtype_mm,
                            name="out")(y)
        return y, weights


class Encoder1DBlock(nn.Module):
    """Pre-norm transformer block: x + attn(LN(x)), then x + mlp(LN(x)). [B, L, D] -> [B, L, D]."""
    mlp_dim: int | None = None
    num_heads: int = 12
    dropout: float = 0.0
    dtype_mm: Any = jnp.float32

    @nn.compact
    def __call__(self, x, deterministic=True):
        y = nn.LayerNorm()(x)
        y, _ = MultiHeadDotProductAttention(self.num_heads, self.dtype_mm)(y, y)
        x = x + nn.Dropout(rate=self.dropout)(y, deterministic)
        y = nn.LayerNorm()(x)
        y = MlpBlock(self.mlp_dim, self.dropout, self.dtype_mm)(y, deterministic)
        return x + nn.Dropout(rate=self.dropout)(y, deterministic)


class Encoder(nn.Module):
    """A stack of `encoderblock_{i}` and a final `encoder_norm`; shared by both towers.

    Returns (x [B, L, D], out) with out["block{i:02d}"] the output of block i and out["pre_ln"]
    the stream before the final norm.
    """
    depth: int
    mlp_dim: int | None = None
    num_heads: int = 12
    dropout: float = 0.0
    dtype_mm: Any = jnp.float32

    @nn.compact
    def __call__(self, x, deterministic=True):
        out = {}
        for i in range(self.depth):
            x = out[f"block{i:02d}"] = Encoder1DBlock(
                self.mlp_dim, self.num_heads, self.dropout, self.dtype_mm,
                name=f"encoderblock_{i}")(x, deterministic)
        out["pre_ln"] = x
        return nn.LayerNorm(name="encoder_norm")(x), out


class MAPHead(nn.Module):
    """Multihead attention pooling: a learned `probe` attends over the tokens, then a residual MLP.

    [B, L, D] -> (pooled [B, D], attention weights [B, heads, 1, L]).
    """
    mlp_dim: int | None = None
    num_heads: int = 12
    dtype_mm: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        n, _, d = x.shape
        probe = self.param("probe", nn.initializers.xavier_uniform(), (1, 1, d), jnp.float32)
        probe = jnp.tile(probe, [n, 1, 1])
        x, weights = MultiHeadDotProductAttention(self.num_heads, self.dtype_mm)(
            probe, x, return_weights=True)
        y = nn.LayerNorm()(x)
        x = x + MlpBlock(self.mlp_dim, dtype_mm=self.dtype_mm)(y)
        return x[:, 0], weights


def keep_random_tokens(x, keep_frac, rng):
    """Keep round(keep_frac * L) tokens per example, chosen uniformly by `rng`, in their order.

    [B, L, D] -> ([B, K, D], kept indices [B, K] int32). Used by the paper's 50% token dropping.
    """
    n, length, _ = x.shape
    keep = max(1, int(round(keep_frac * length)))
    order = jnp.argsort(jax.random.uniform(rng, (n, length)), axis=1)
    kept = jnp.sort(order[:, :keep], axis=1).astype(jnp.int32)
    return jnp.take_along_axis(x, kept[..., None], axis=1), kept


class PatchEmbedding(nn.Module):
    """big_vision's patchify conv (a VALID conv whose stride is its kernel) as one matmul over patches.

    Same parameters as `nn.Conv(width, patch, strides=patch)`: kernel [ph, pw, C, width], bias
    [width], same initialisers, so checkpoints are interchangeable. As a matmul the image keeps its
    natural layout; on a CPU XLA otherwise rendered the batch in the conv's transposed layout.
    [B, H, W, C] -> [B, H // ph, W // pw, width] (So400m/14 at 384 px reads 27 x 27 patches).
    """
    width: int
    patch_size: Sequence[int]
    dtype_mm: Any = jnp.float32

    @nn.compact
    def __call__(self, image):
        ph, pw = self.patch_size
        n, h, w, c = image.shape
        h, w = h // ph * ph, w // pw * pw  # as a VALID conv, the rows and columns past the last patch are unread
        image = image[:, :h, :w]
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (ph, pw, c, self.width), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros_init(), (self.width,), jnp.float32)
        patches = image.reshape(n, h // ph, ph, w // pw, pw, c).astype(self.dtype_mm)
        x = jnp.einsum("nhpwqc,pqcd->nhwd", patches, kernel.astype(self.dtype_mm))
        return x + bias.astype(self.dtype_mm)


class ViT(nn.Module):
    """Vision transformer. Build it with `Model(variant=...)`, which decodes the variant string."""
    num_classes: int | None = None  # a `head` Dense when set
    patch_size: Sequence[int] = (16, 16)
    width: int = 768
    depth: int = 12
    mlp_dim: int | None = None
    num_heads: int = 12
    posemb: str = "learn"  # "learn" (parameter pos_embedding) | "sincos2d" (fixed, no parameter)
    rep_size: int | bool = False  # a "pre_logits" Dense + tanh of this width (True: width) before the head
    dropout: float = 0.0
    pool_type: str = "gap"  # "map" | "gap" | "tok" | "0" | "none"
    head_zeroinit: bool = True
    # big_vision's layout and memory knobs: they do not change the numbers. Scanned checkpoints
    # (stacked "encoderblock") are unrolled on load (siglip.load), so the blocks here are always unrolled.
    scan: bool = False
    remat_policy: str = "nothing_saveable"
    drop_tokens_frac: float = 0.0  # fraction of patch tokens dropped when train=True
    dtype_mm: Any = jnp.float32

    @nn.compact
    def __call__(self, image, *, train=False):
        """image [B, H, W, C] in [-1, 1] -> (x, out).

        x is [B, num_classes] with a head, else the pooled [B, width] ([B, N, width] for "none").
        out: "stem" [B, h, w, width], "with_posemb" [B, h*w, width], "encoder" (per-block
        outputs), "encoded" [B, N, width] (N tokens after dropping, cls first for "tok"),
        "pre_logits", "logits" (with a head), "map_attention" [B, heads, 1, N] (pool_type "map"),
        "kept_patches" [B, N] indices of the patches kept by token dropping (train only).
        """
        if self.pool_type not in ("map", "gap", "tok", "0", "none"):
            raise ValueError(f"unknown ViT pool_type {self.pool_type!r}; "
                             "expected 'map', 'gap', 'tok', '0' or 'none'")
        if self.posemb not in ("learn", "sincos2d"):
            raise ValueError(f"unknown ViT posemb {self.posemb!r}; expected 'learn' or 'sincos2d'")
        dtype_mm = as_dtype(self.dtype_mm)
        out = {}
        patch = tuple(self.patch_size)
        x = out["stem"] = PatchEmbedding(self.width, patch, dtype_mm, name="embedding")(image)
        n, h, w, c = x.shape
        x = jnp.reshape(x, [n, h * w, c])
        if self.posemb == "learn":
            posemb = self.param("pos_embedding", nn.initializers.normal(stddev=1 / np.sqrt(c)),
                                (1, h * w, c), jnp.float32)
        else:
            posemb = posemb_sincos_2d(h, w, c)
        x = out["with_posemb"] = x + posemb
        if train and self.drop_tokens_frac > 0:
            x, out["kept_patches"] = keep_random_tokens(
                x, 1 - self.drop_tokens_frac, self.make_rng("dropout"))
        if self.pool_type == "tok":
            cls = self.param("cls", nn.initializers.zeros, (1, 1, c), jnp.float32)
            x = jnp.concatenate([jnp.tile(cls, [n, 1, 1]).astype(x.dtype), x], axis=1)
        x = nn.Dropout(rate=self.dropout)(x, not train)

        x, out["encoder"] = Encoder(self.depth, self.mlp_dim, self.num_heads, self.dropout,
                                    dtype_mm, name="Transformer")(x, deterministic=not train)
        out["encoded"] = x

        if self.pool_type == "map":
            x, out["map_attention"] = MAPHead(self.mlp_dim, self.num_heads, dtype_mm)(x)
        elif self.pool_type == "gap":
            x = jnp.mean(x, axis=1)
        elif self.pool_type in ("tok", "0"):
            x = x[:, 0]

        if self.rep_size:
            rep_size = self.width if self.rep_size is True else int(self.rep_size)
            x = nn.tanh(nn.Dense(rep_size, dtype=dtype_mm, name="pre_logits")(x))
        out["pre_logits"] = x

        if self.num_classes:
            kw = {"kernel_init": nn.initializers.zeros} if self.head_zeroinit else {}
            head = nn.Dense(self.num_classes, dtype=dtype_mm, name="head", **kw)
            x = out["logits"] = head(x)
        return x, out


def Model(num_classes=None, *, variant=None, **kw):  # noqa: N802 (big_vision's factory name)
    """A ViT from a variant string ("B/16", "So400m/14"); explicit kwargs override the variant.

    Every key of big_vision's ViT config is accepted; an unknown one is a ValueError naming it."""
    check_config_keys(ViT, kw, "ViT (image)")
    return ViT(num_classes, **{**decode_variant(variant), **kw})
