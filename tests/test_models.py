"""The SigLIP towers carry big_vision's names and sizes, and return what evaluators read."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vlscale.models import two_towers, vit
from vlscale.siglip import model_from_config, param_shapes

TINY = dict(width=32, depth=1, mlp_dim=64, num_heads=2)
TINY_CONFIG = dict(image=dict(**TINY, patch_size=(8, 8), pool_type="map"),
                   text=dict(**TINY, vocab_size=100),
                   out_dim=(None, 32), temperature_init=10.0, bias_init=-10.0)


def _images(n=2, px=32, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, px, px, 3)).astype(np.float32)


def _tokens(n=2, length=8, seed=0):
    return np.random.default_rng(seed).integers(0, 100, (n, length)).astype(np.int32)


@functools.partial(jax.jit, static_argnums=0)
def _init(model, *inputs):
    return model.init(jax.random.PRNGKey(0), *inputs)["params"]


@functools.partial(jax.jit, static_argnums=0, static_argnames="train")
def _apply(model, params, *inputs, train=False, rng=None):
    rngs = {} if rng is None else {"dropout": rng}
    return model.apply({"params": params}, *inputs, train=train, rngs=rngs)


def _block(prefix):
    attn = [f"MultiHeadDotProductAttention_0/{p}/{leaf}"
            for p in ("query", "key", "value", "out") for leaf in ("kernel", "bias")]
    mlp = [f"MlpBlock_0/Dense_{i}/{leaf}" for i in (0, 1) for leaf in ("kernel", "bias")]
    return {f"{prefix}/{name}" for name in attn + mlp}


def _layer_norms(prefix, *names):
    return {f"{prefix}/{name}/{leaf}" for name in names for leaf in ("scale", "bias")}


def test_parameter_names_are_big_vision_names():
    block = "img/Transformer/encoderblock_0"
    text_block = "txt/Encoder_0/encoderblock_0"
    expected = (
        {"img/embedding/kernel", "img/embedding/bias", "img/pos_embedding", "img/MAPHead_0/probe",
         "txt/Embed_0/embedding", "txt/pos_embedding", "txt/head/kernel", "txt/head/bias", "t", "b"}
        | _block(block) | _layer_norms(block, "LayerNorm_0", "LayerNorm_1")
        | _layer_norms("img/Transformer", "encoder_norm")
        | _block("img/MAPHead_0") | _layer_norms("img/MAPHead_0", "LayerNorm_0")
        | _block(text_block) | _layer_norms(text_block, "LayerNorm_0", "LayerNorm_1")
        | _layer_norms("txt/Encoder_0", "encoder_norm"))

    shapes = param_shapes(model_from_config(TINY_CONFIG), image_size_px=32, text_len=8)

    assert set(shapes) == expected
    assert shapes[f"{block}/MultiHeadDotProductAttention_0/query/kernel"] == (32, 2, 16)
    assert shapes[f"{block}/MultiHeadDotProductAttention_0/query/bias"] == (2, 16)
    assert shapes[f"{block}/MultiHeadDotProductAttention_0/out/kernel"] == (2, 16, 32)
    assert shapes["img/pos_embedding"] == (1, 16, 32)
    assert shapes["img/MAPHead_0/probe"] == (1, 1, 32)
    assert shapes["txt/pos_embedding"] == (1, 8, 32)
    assert shapes["t"] == shapes["b"] == (1,)


def test_temperature_and_bias_start_at_their_init():
    model = model_from_config(TINY_CONFIG)
    params = _init(model, _images(), _tokens())
    np.testing.assert_allclose(jnp.exp(params["t"]), [10.0], rtol=1e-6)
    np.testing.assert_array_equal(params["b"], [-10.0])


def test_variant_decodes_to_big_vision_sizes():
    assert vit.decode_variant("B/16") == dict(width=768, depth=12, mlp_dim=3072, num_heads=12,
                                              patch_size=(16, 16))
    assert vit.decode_variant("So400m") == dict(width=1152, depth=27, mlp_dim=4304, num_heads=16)
    assert vit.decode_variant(None) == {}


def test_explicit_kwargs_override_the_variant():
    model = vit.Model(variant="B/16", width=64, patch_size=(8, 8))
    assert (model.width, model.depth, model.mlp_dim, model.num_heads) == (64, 12, 3072, 12)
    assert model.patch_size == (8, 8)


@pytest.mark.parametrize("variant", ["Q/16", "B/x", "b"])
def test_unknown_variant_is_named_with_the_known_ones(variant):
    with pytest.raises(ValueError, match=f"'{variant}'.*So400m"):
        vit.decode_variant(variant)


def test_unknown_tower_is_named():
    model = two_towers.Model(image=dict(TINY), image_model="resnet")
    with pytest.raises(ValueError, match="'resnet'"):
        model.init(jax.random.PRNGKey(0), _images())


# Sizes of the released SigLIP models; the same totals as transformers.SiglipModel.
@pytest.mark.parametrize("variant, patch_px, image_px, text_len, total, image_tower", [
    ("B", 16, 224, 64, 203_155_970, 92_884_224),
    ("So400m", 14, 384, 64, 877_960_498, 428_225_600),
])
def test_parameter_count_matches_released_siglip(variant, patch_px, image_px, text_len, total,
                                                 image_tower):
    width = vit.decode_variant(variant)["width"]
    config = dict(image=dict(variant=f"{variant}/{patch_px}", pool_type="map"),
                  text=dict(variant=variant, vocab_size=32_000),
                  out_dim=(None, width), temperature_init=10.0, bias_init=-10.0)
    shapes = param_shapes(model_from_config(config), image_px, text_len)  # nothing allocated
    sizes = {k: int(np.prod(s)) for k, s in shapes.items()}
    assert sum(sizes.values()) == total
    assert sum(n for k, n in sizes.items() if k.startswith("img/")) == image_tower


@pytest.fixture(scope="module")
def map_vit():
    model = vit.Model(**TINY, patch_size=(8, 8), pool_type="map")
    return model, _init(model, _images())


def test_map_head_returns_its_attention_over_patches(map_vit):
    model, params = map_vit
    x, out = _apply(model, params, _images(n=3))
    weights = out["map_attention"]
    assert x.shape == (3, 32)
    assert weights.shape == (3, 2, 1, 16)  # [B, heads, 1 probe, N patches]
    assert bool(jnp.all(weights >= 0))
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("patch, px", [((8, 8), 32), ((4, 2), 16), ((14, 14), 48)])
def test_patch_embedding_is_the_patchify_conv_with_the_same_parameters(patch, px):
    """One matmul over patches computes big_vision's strided conv, from the same kernel and bias (so
    checkpoints load either way), and initialises them as nn.Conv does."""
    import flax.linen as nn

    image = jnp.asarray(_images(n=3, px=px))
    ours = vit.PatchEmbedding(16, patch)
    conv = nn.Conv(16, patch, strides=patch, padding="VALID")
    p_ours, p_conv = ours.init(jax.random.PRNGKey(0), image), conv.init(jax.random.PRNGKey(0), image)
    np.testing.assert_array_equal(p_ours["params"]["kernel"], p_conv["params"]["kernel"])
    assert p_ours["params"]["bias"].shape == p_conv["params"]["bias"].shape
    trained = {"params": {"kernel": p_conv["params"]["kernel"], "bias": jnp.linspace(-1, 1, 16)}}
    np.testing.assert_allclose(ours.apply(trained, image), conv.apply(trained, image), atol=1e-5)


def test_attention_with_and_without_weights_agree():
    attention = vit.MultiHeadDotProductAttention(num_heads=4)
    rng = np.random.default_rng(0)
    q, kv = rng.normal(size=(2, 3, 32)), rng.normal(size=(2, 5, 32))
    params = attention.init(jax.random.PRNGKey(0), q, kv)
    fused, none = attention.apply(params, q, kv)
    explicit, weights = attention.apply(params, q, kv, return_weights=True)
    assert none is None and weights.shape == (2, 4, 3, 5)
    np.testing.assert_allclose(fused, explicit, atol=1e-6)


def test_intermediates_are_returned(map_vit):
    model, params = map_vit
    _, out = _apply(model, params, _images())
    assert out["stem"].shape == (2, 4, 4, 32)
    assert out["with_posemb"].shape == out["encoded"].shape == (2, 16, 32)
    assert out["pre_logits"].shape == (2, 32)
    assert "logits" not in out and "kept_patches" not in out


@settings(max_examples=10, deadline=None)
@given(frac=st.sampled_from([0.25, 0.5, 0.75]), seed=st.integers(0, 2**31 - 1))
def test_token_dropping_keeps_a_deterministic_subset(map_vit, frac, seed):
    model, params = map_vit
    dropping = model.clone(drop_tokens_frac=frac)
    images, rng = _images(), jax.random.PRNGKey(seed)

    _, out = _apply(dropping, params, images, train=True, rng=rng)
    _, again = _apply(dropping, params, images, train=True, rng=rng)
    _, inference = _apply(dropping, params, images)

    kept = out["kept_patches"]
    assert out["encoded"].shape == (2, round((1 - frac) * 16), 32)
    assert bool(jnp.all(jnp.diff(kept, axis=1) > 0))  # distinct patches, in image order
    np.testing.assert_array_equal(out["encoded"], again["encoded"])
    assert inference["encoded"].shape == (2, 16, 32) and "kept_patches" not in inference


def test_token_dropping_depends_on_the_rng(map_vit):
    model, params = map_vit
    dropping = model.clone(drop_tokens_frac=0.5)
    kept = [_apply(dropping, params, _images(), train=True, rng=jax.random.PRNGKey(seed))[1]
            ["kept_patches"] for seed in (0, 1)]
    assert not np.array_equal(kept[0], kept[1])


def test_bfloat16_matmuls_keep_float32_params_and_close_embeddings():
    config = {**TINY_CONFIG, "image": {**TINY_CONFIG["image"], "dtype_mm": "bfloat16"},
              "text": {**TINY_CONFIG["text"], "dtype_mm": "bfloat16"}}
    model, model_bf16 = model_from_config(TINY_CONFIG), model_from_config(config)
    params = _init(model, _images(), _tokens())
    params_bf16 = _init(model_bf16, _images(), _tokens())
    assert all(a.dtype == jnp.float32 for a in jax.tree_util.tree_leaves(params_bf16))

    zimg, ztxt, _ = _apply(model, params, _images(), _tokens())
    zimg16, ztxt16, out16 = _apply(model_bf16, params, _images(), _tokens())
    assert zimg16.dtype == ztxt16.dtype == out16["img/map_attention"].dtype == jnp.float32
    np.testing.assert_allclose(zimg16, zimg, atol=0.05)
    np.testing.assert_allclose(ztxt16, ztxt, atol=0.05)


def test_embeddings_are_unit_norm_and_towers_run_alone():
    model = model_from_config(TINY_CONFIG)
    params = _init(model, _images(), _tokens())
    zimg, ztxt, out = _apply(model, params, _images(), None)
    assert ztxt is None and "txt/pre_logits" not in out and "img/encoded" in out
    np.testing.assert_allclose(jnp.linalg.norm(zimg, axis=-1), 1.0, rtol=1e-5)
    _, ztxt, _ = _apply(model, params, None, _tokens())
    np.testing.assert_allclose(jnp.linalg.norm(ztxt, axis=-1), 1.0, rtol=1e-5)

