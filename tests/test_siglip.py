"""vlscale.siglip loads SigLIP weights from Hugging Face, big_vision .npz and our Orbax checkpoints,
and a loaded model embeds exactly as the model that wrote the weights."""
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from vlscale import siglip

HIDDEN, LAYERS, HEADS, MLP, IMAGE_PX, PATCH, VOCAB, TEXT_LEN = 64, 2, 4, 128, 32, 8, 500, 16

# The big_vision config of the small Hugging Face model below.
CONFIG = dict(
    image_model="vit", text_model="text_transformer",
    image=dict(width=HIDDEN, depth=LAYERS, mlp_dim=MLP, num_heads=HEADS,
               patch_size=(PATCH, PATCH), pool_type="map"),
    text=dict(width=HIDDEN, depth=LAYERS, mlp_dim=MLP, num_heads=HEADS, vocab_size=VOCAB),
    out_dim=(None, HIDDEN), temperature_init=10.0, bias_init=-10.0)
SIZES = dict(image_size_px=IMAGE_PX, text_len=TEXT_LEN)


def _inputs(seed=0, n=3):
    rng = np.random.default_rng(seed)
    images = rng.uniform(-1, 1, (n, IMAGE_PX, IMAGE_PX, 3)).astype(np.float32)
    tokens = rng.integers(0, VOCAB, (n, TEXT_LEN)).astype(np.int32)
    return images, tokens


# --- Hugging Face ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hf_model():
    """A small random transformers.SiglipModel whose every weight is perturbed, so that no bias
    is trivially 0 and no LayerNorm scale trivially 1."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    common = dict(hidden_size=HIDDEN, intermediate_size=MLP, num_hidden_layers=LAYERS,
                  num_attention_heads=HEADS)
    config = transformers.SiglipConfig(
        text_config=dict(**common, vocab_size=VOCAB, max_position_embeddings=TEXT_LEN,
                         bos_token_id=None, eos_token_id=None),
        vision_config=dict(**common, image_size=IMAGE_PX, patch_size=PATCH))
    model = transformers.SiglipModel(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
        model.logit_scale.add_(np.log(10.0))  # SigLIP's scale and bias, so logits are not ~x1
        model.logit_bias.add_(-10.0)
    return model


def _hf_outputs(model, images, tokens):
    import torch

    with torch.no_grad():
        out = model(pixel_values=torch.from_numpy(images.transpose(0, 3, 1, 2)),
                    input_ids=torch.from_numpy(tokens).long())
    return out.image_embeds.numpy(), out.text_embeds.numpy(), out.logits_per_image.numpy()


@pytest.mark.parametrize("fmt", ["safetensors", "bin with 'model.' prefix"])
def test_hugging_face_weights_embed_like_hugging_face(hf_model, fmt, tmp_path):
    import torch

    if fmt == "safetensors":
        hf_model.save_pretrained(tmp_path)
    else:  # transformers 5 writes safetensors only, so write the legacy .bin as torch did
        state = {f"model.{k}": v for k, v in hf_model.state_dict().items()}
        torch.save(state, tmp_path / "pytorch_model.bin")
    images, tokens = _inputs()
    want_img, want_txt, want_logits = _hf_outputs(hf_model, images, tokens)

    model, params = siglip.load(tmp_path, CONFIG, **SIZES)
    zimg = siglip.embed_images(model, params, images)
    ztxt = siglip.embed_texts(model, params, tokens)
    logits = zimg @ ztxt.T * jnp.exp(params["t"]) + params["b"]

    np.testing.assert_allclose(zimg, want_img, atol=1e-5)
    np.testing.assert_allclose(ztxt, want_txt, atol=1e-5)
    np.testing.assert_allclose(logits, want_logits, atol=1e-5)


def test_bfloat16_safetensors_load_as_the_rounded_weights(hf_model, tmp_path):
    import torch
    from safetensors.torch import save_file

    state = {k: v.to(torch.bfloat16).contiguous() for k, v in hf_model.state_dict().items()}
    save_file(state, tmp_path / "model.safetensors")
    _, params = siglip.load(tmp_path, CONFIG, **SIZES)
    want = state["text_model.embeddings.token_embedding.weight"].float().numpy()
    np.testing.assert_array_equal(params["txt"]["Embed_0"]["embedding"], want)


def test_hugging_face_head_count_must_match_config(hf_model, tmp_path):
    hf_model.save_pretrained(tmp_path)
    config = {**CONFIG, "text": {**CONFIG["text"], "num_heads": 2}}
    with pytest.raises(ValueError, match="num_attention_heads is 4"):
        siglip.load(tmp_path, config, **SIZES)


# --- big_vision .npz -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def random_params():
    model = siglip.model_from_config(CONFIG)
    images, tokens = _inputs()
    return model, model.init(jax.random.PRNGKey(0), images, tokens)["params"]


def _embeddings(model, params):
    images, tokens = _inputs(seed=1)
    return siglip.embed_images(model, params, images), siglip.embed_texts(model, params, tokens)


def _stacked(flat):
    """big_vision's scanned layout: encoderblock_{i}/x stacked into encoderblock/x [depth, ...]."""
    out, blocks = {}, {}
    for key, value in flat.items():
        parts = key.split("/")
        block = next((p for p in parts if p.startswith("encoderblock_")), None)
        if block is None:
            out[key] = value
        else:
            stacked_key = key.replace(block, "encoderblock")
            blocks.setdefault(stacked_key, {})[int(block.split("_")[1])] = value
    for key, by_layer in blocks.items():
        out[key] = np.stack([by_layer[i] for i in sorted(by_layer)])
    return out


@pytest.mark.parametrize("stacked", [False, True], ids=["unrolled", "stacked"])
@pytest.mark.parametrize("prefix", ["", "params/"], ids=["bare", "params-prefix"])
def test_big_vision_npz_round_trips_exactly(random_params, stacked, prefix, tmp_path):
    model, params = random_params
    flat = {k: np.asarray(v) for k, v in traverse_util.flatten_dict(params, sep="/").items()}
    if stacked:
        flat = _stacked(flat)
        assert any(k.endswith("encoderblock/LayerNorm_0/scale") for k in flat)
    np.savez(tmp_path / "ckpt.npz", **{prefix + k: v for k, v in flat.items()})

    loaded_model, loaded = siglip.load(tmp_path / "ckpt.npz", CONFIG, **SIZES)

    assert jax.tree_util.tree_all(jax.tree_util.tree_map(
        lambda a, b: a.dtype == jnp.float32 and bool(jnp.array_equal(a, b)), loaded, params))
    for got, want in zip(_embeddings(loaded_model, loaded), _embeddings(model, params)):
        np.testing.assert_array_equal(got, want)


def test_bfloat16_npz_loads_as_the_rounded_float32_params(random_params, tmp_path):
    model, params = random_params
    bf16 = jax.tree_util.tree_map(lambda a: a.astype(jnp.bfloat16), params)
    siglip.save_npz(bf16, tmp_path / "bf16.npz")
    with np.load(tmp_path / "bf16.npz") as npz:
        assert npz["img/embedding/kernel"].dtype.str == "|V2"  # how numpy stores bfloat16

    _, loaded = siglip.load(tmp_path / "bf16.npz", CONFIG, **SIZES)

    rounded = jax.tree_util.tree_map(lambda a: a.astype(jnp.float32), bf16)
    for got, want in zip(_embeddings(model, loaded), _embeddings(model, rounded)):
        np.testing.assert_array_equal(got, want)


# --- Orbax checkpoints of our trainer --------------------------------------------------------

def test_orbax_checkpoint_loads_from_root_step_or_params_folder(random_params, tmp_path, monkeypatch):
    import orbax.checkpoint as ocp

    model, params = random_params
    earlier = jax.tree_util.tree_map(jnp.zeros_like, params)
    with ocp.CheckpointManager(tmp_path) as manager:  # the layout the trainer writes
        for step, tree in ((3, earlier), (12, params)):
            manager.save(step, args=ocp.args.Composite(params=ocp.args.StandardSave(tree)))
        manager.wait_until_finished()

    want = _embeddings(model, params)
    monkeypatch.chdir(tmp_path.parent)  # a path relative to the working folder, as a notebook gives it
    relative = Path(tmp_path.name)
    for path in (tmp_path, tmp_path / "12", tmp_path / "12" / "params", relative, relative / "12"):
        _, loaded = siglip.load(path, CONFIG, **SIZES)  # the root means its largest step
        for got, expected in zip(_embeddings(model, loaded), want):
            np.testing.assert_array_equal(got, expected)


# --- errors ----------------------------------------------------------------------------------

def test_missing_parameter_is_named_with_its_file(random_params, tmp_path):
    _, params = random_params
    flat = traverse_util.flatten_dict(params, sep="/")
    del flat["txt/head/kernel"]
    siglip.save_npz(traverse_util.unflatten_dict(flat, sep="/"), tmp_path / "missing.npz")
    with pytest.raises(ValueError, match=r"missing\.npz(.|\n)*missing 'txt/head/kernel' "
                                         r"\(expected shape \(64, 64\)\)"):
        siglip.load(tmp_path / "missing.npz", CONFIG, **SIZES)


def test_mis_shaped_parameter_is_named_with_both_shapes(random_params, tmp_path):
    _, params = random_params
    siglip.save_npz(params, tmp_path / "b16.npz")
    with pytest.raises(ValueError, match=r"b16\.npz(.|\n)*'img/pos_embedding': "
                                         r"expected shape \(1, 4, 64\), found \(1, 16, 64\)"):
        siglip.load(tmp_path / "b16.npz", CONFIG, image_size_px=16, text_len=TEXT_LEN)


def test_unknown_config_key_is_named():
    with pytest.raises(ValueError, match="'img_model'"):
        siglip.model_from_config({**CONFIG, "img_model": "vit"})


# --- configs and checkpoints as users have them ------------------------------------------------

# Every key big_vision's ViT and text-transformer configs take, as a SigLIP config writes them; the
# layout and memory knobs (scan, remat_policy, dropout at eval, dtype_mm) do not change the numbers.
BIG_VISION_KEYS = dict(image=dict(posemb="learn", scan=True, remat_policy="nothing_saveable", dropout=0.0,
                                  dtype_mm="float32", head_zeroinit=True, rep_size=False),
                       text=dict(scan=True, remat_policy="nothing_saveable", dropout=0.0, pool_type="last"))


def _with(config, **towers):
    return {**config, **{k: {**config[k], **v} for k, v in towers.items()}}


def test_every_big_vision_config_key_is_accepted_and_the_knobs_change_nothing(random_params, tmp_path):
    model, params = random_params
    siglip.save_npz(params, tmp_path / "ckpt.npz")
    loaded_model, loaded = siglip.load(tmp_path / "ckpt.npz", _with(CONFIG, **BIG_VISION_KEYS))
    for got, want in zip(_embeddings(loaded_model, loaded), _embeddings(model, params)):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("tower", ["image", "text"])
def test_an_unknown_tower_key_names_itself_and_the_keys_allowed(tower):
    with pytest.raises(ValueError, match=r"unknown .*config key \['posemb_typo'\]; allowed: .*'scan'"):
        siglip.model_from_config(_with(CONFIG, **{tower: {"posemb_typo": "learn"}}))


def test_sincos2d_position_embedding_is_fixed_and_follows_big_vision():
    from vlscale.models import vit

    pe = np.asarray(vit.posemb_sincos_2d(3, 4, 8))  # 3 rows x 4 columns of patches, width 8
    assert pe.shape == (1, 12, 8)
    omega = 1.0 / 10_000.0 ** (np.arange(2) / 1)  # width / 4 = 2 frequencies
    y, x = 2, 1  # the patch in row 2, column 1
    want = np.concatenate([np.sin(x * omega), np.cos(x * omega), np.sin(y * omega), np.cos(y * omega)])
    np.testing.assert_allclose(pe[0, y * 4 + x], want, rtol=1e-6)
    config = _with(CONFIG, image=dict(posemb="sincos2d"))
    shapes = siglip.param_shapes(siglip.model_from_config(config), IMAGE_PX, TEXT_LEN)
    assert "img/pos_embedding" not in shapes and "txt/pos_embedding" in shapes


def test_rep_size_adds_big_vision_pre_logits_with_tanh():
    from vlscale.models import vit

    model = vit.Model(width=32, depth=1, mlp_dim=64, num_heads=2, patch_size=(8, 8), rep_size=24)
    images = np.random.default_rng(0).uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)
    params = model.init(jax.random.PRNGKey(0), images)["params"]
    assert params["pre_logits"]["kernel"].shape == (32, 24)
    x, out = model.apply({"params": params}, images)
    assert x.shape == (2, 24) and float(jnp.abs(x).max()) <= 1.0
    hid = out["encoded"].mean(1) @ params["pre_logits"]["kernel"] + params["pre_logits"]["bias"]
    np.testing.assert_allclose(x, np.tanh(hid), atol=1e-6)


def test_sizes_are_read_from_the_checkpoints_position_embeddings(tmp_path):
    """A model made at 48 px (36 patches of 8) and 12 tokens loads without being told its sizes."""
    model = siglip.model_from_config(CONFIG)
    images = np.random.default_rng(0).uniform(-1, 1, (2, 48, 48, 3)).astype(np.float32)
    tokens = np.random.default_rng(1).integers(0, VOCAB, (2, 12)).astype(np.int32)
    params = model.init(jax.random.PRNGKey(3), images, tokens)["params"]
    siglip.save_npz(params, tmp_path / "odd.npz")
    loaded_model, loaded = siglip.load(tmp_path / "odd.npz", CONFIG)
    assert loaded["img"]["pos_embedding"].shape == (1, 36, HIDDEN)
    assert loaded["txt"]["pos_embedding"].shape == (1, 12, HIDDEN)
    np.testing.assert_array_equal(siglip.embed_images(loaded_model, loaded, images),
                                  siglip.embed_images(model, params, images))
    assert siglip.checkpoint_sizes(traverse_util.flatten_dict(params, sep="/")) == (48, 12)


def test_hugging_face_folder_loads_from_its_config_json_alone(hf_model, tmp_path):
    """The fixture's model is at a non-default size (32 px, patch 8, 16 tokens, width 64)."""
    hf_model.save_pretrained(tmp_path)
    images, tokens = _inputs()
    want_img, want_txt, want_logits = _hf_outputs(hf_model, images, tokens)
    model, params = siglip.load(tmp_path)
    np.testing.assert_allclose(siglip.embed_images(model, params, images), want_img, atol=1e-5)
    np.testing.assert_allclose(siglip.embed_texts(model, params, tokens), want_txt, atol=1e-5)


@pytest.mark.parametrize("name, hf, total", [
    # config.json of google/siglip-base-patch16-224: every value is transformers' default
    ("base/16 224", {"model_type": "siglip", "text_config": {}, "vision_config": {}}, 203_155_970),
    # google/siglip-so400m-patch14-384
    ("so400m/14 384", {"model_type": "siglip",
                       "text_config": {"hidden_size": 1152, "intermediate_size": 4304, "num_attention_heads": 16,
                                       "num_hidden_layers": 27},
                       "vision_config": {"hidden_size": 1152, "image_size": 384, "intermediate_size": 4304,
                                         "num_attention_heads": 16, "num_hidden_layers": 27, "patch_size": 14}},
     877_960_498),
])
def test_released_hugging_face_configs_build_the_released_models(name, hf, total):
    """The totals are those of transformers.SiglipModel (and test_models' released big_vision sizes)."""
    config = siglip.config_from_hf(hf)
    image_px = hf["vision_config"].get("image_size", 224)
    shapes = siglip.param_shapes(siglip.model_from_config(config), image_px, 64)
    assert sum(int(np.prod(s)) for s in shapes.values()) == total


@pytest.mark.parametrize("hf_config, message", [
    ({"model_type": "siglip2", "text_config": {}, "vision_config": {}}, "only 'siglip'"),
    ({"text_config": {"hidden_act": "gelu"}, "vision_config": {}}, "hidden_act 'gelu'"),
])
def test_a_hugging_face_config_we_cannot_build_is_refused(hf_config, message):
    with pytest.raises(ValueError, match=message):
        siglip.config_from_hf(hf_config)


def test_our_checkpoint_loads_without_a_config(random_params, tmp_path):
    from vlscale.training import checkpoint

    model, params = random_params
    checkpoint.save_params(tmp_path / "cooldown", 7, params, {"step": 7, "model_config": CONFIG})
    loaded_model, loaded = siglip.load(tmp_path / "cooldown")
    for got, want in zip(_embeddings(loaded_model, loaded), _embeddings(model, params)):
        np.testing.assert_array_equal(got, want)


def test_a_npz_without_a_config_says_it_needs_one(random_params, tmp_path):
    siglip.save_npz(random_params[1], tmp_path / "w.npz")
    with pytest.raises(ValueError, match=r"w\.npz: a big_vision \.npz holds only weights"):
        siglip.load(tmp_path / "w.npz")
