"""Use SigLIP models outside the pipeline: build one from a config, load its weights, embed.

A config is big_vision's two-tower model config (a dict or an ml_collections.ConfigDict); a Hugging
Face folder's config.json and our checkpoints' saved model config stand in for it (config_from_hf).
Weights load from three formats, each checked against the shapes of the model the config builds, at
the sizes the checkpoint's position embeddings were made for:

* a big_vision .npz: flat "img/Transformer/encoderblock_0/..." keys, with or without a leading
  "params/", blocks unrolled or stacked (scanned) under "encoderblock", bfloat16 stored as void;
* a Hugging Face SigLIP folder (model.safetensors, or pytorch_model.bin, which needs torch);
* our trainer's Orbax checkpoints: `<root>/<step>/params/` (root, step or params folder).

Example (the config of big_vision's SigLIP B/16 demo):

    import numpy as np
    from vlscale import siglip

    config = dict(image_model="vit", text_model="text_transformer",
                  image=dict(variant="B/16", pool_type="map"),
                  text=dict(variant="B", vocab_size=32000),
                  out_dim=(None, 768), temperature_init=10.0, bias_init=-10.0)
    model, params = siglip.load("webli_en_b16_224_63724782.npz", config)  # or an HF folder
    zimg = siglip.embed_images(model, params, images)    # [N, 224, 224, 3] in [-1, 1] -> [N, 768]
    ztxt = siglip.embed_texts(model, params, token_ids)  # [M, 64] int -> [M, 768]
    logits = zimg @ ztxt.T * np.exp(params["t"]) + params["b"]  # sigmoid(logits): P(match)
"""
import functools
import json
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util
from flax.core import FrozenDict

from vlscale.models import two_towers

CONFIG_KEYS = ("image_model", "text_model", "image", "text", "out_dim", "temperature_init",
               "bias_init")


def _frozen(value):
    """A hashable copy of a config value (mappings -> FrozenDict, lists -> tuples), so that the
    model can be a static argument of jax.jit."""
    if hasattr(value, "keys"):
        return FrozenDict({k: _frozen(value[k]) for k in value.keys()})
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value


def model_from_config(config):
    """The two-tower Model of a big_vision-style config mapping (keys: CONFIG_KEYS)."""
    unknown = sorted(set(config.keys()) - set(CONFIG_KEYS))
    if unknown:
        raise ValueError(f"unknown two-tower config keys {unknown}; expected some of {CONFIG_KEYS}")
    two_towers.check_config(config)
    return two_towers.Model(**{k: _frozen(config[k]) for k in CONFIG_KEYS if k in config})


def param_shapes(model, image_size_px=224, text_len=64):
    """Flat {"img/embedding/kernel": shape} of the model's parameters, computed without allocating.

    The position embeddings' shapes follow the input sizes: [1, (image_size_px/patch)^2, width]
    and [1, text_len, width].
    """
    image = jax.ShapeDtypeStruct((1, image_size_px, image_size_px, 3), jnp.float32)
    text = jax.ShapeDtypeStruct((1, text_len), jnp.int32)
    variables = jax.eval_shape(model.init, jax.random.PRNGKey(0), image, text)
    flat = traverse_util.flatten_dict(variables["params"], sep="/")
    return {k: tuple(v.shape) for k, v in flat.items()}


def load(path, config=None, *, image_size_px=None, text_len=None):
    """(model, params) from a big_vision .npz, a Hugging Face folder or an Orbax checkpoint.

    config: the big_vision two-tower config that builds the model (see model_from_config). Optional
    where the checkpoint says what it is: a Hugging Face folder's `config.json` (config_from_hf), and
    our trainer's checkpoints (their saved `model_config`); a big_vision .npz carries no config.
    image_size_px and text_len fix the shapes of the position embeddings; by default they are read
    from the checkpoint's own position embeddings (sqrt(tokens) x patch pixels, and its sequence
    length), and are 224 and 64 only where it has none (a sincos2d image tower).

    Every parameter is checked: a missing, unexpected or mis-shaped one raises ValueError naming it,
    the expected and the found shape, and the file. params is a nested dict of float32 jax arrays.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    kind = checkpoint_kind(path)
    raw = {"npz": _read_npz, "hf": lambda p: _read_hf_state(_hf_files(p)), "orbax": read_orbax_params}[kind](path)
    if config is None:
        config = _own_config(path, kind)
    model = model_from_config(config)
    px, length = checkpoint_sizes(raw, hf=kind == "hf")
    expected = param_shapes(model, image_size_px or px or 224, text_len or length or 64)
    flat = _from_hf(raw, expected, path) if kind == "hf" else raw
    check_params(flat, expected, path)
    flat = {k: jnp.asarray(v, jnp.float32) for k, v in flat.items()}
    return model, traverse_util.unflatten_dict(flat, sep="/")


def checkpoint_kind(path) -> str:
    """"npz" (big_vision), "hf" (a Hugging Face folder or weight file) or "orbax" (our trainer's)."""
    path = Path(path)
    if path.suffix == ".npz":
        return "npz"
    if _hf_files(path):
        return "hf"
    if path.is_dir():
        return "orbax"
    raise ValueError(f"{path}: not a .npz, a Hugging Face SigLIP folder or an Orbax checkpoint")


def checkpoint_sizes(flat, *, hf: bool = False) -> tuple[int | None, int | None]:
    """(image size in pixels, text length) that a checkpoint's position embeddings were made for.

    flat: our flat parameter names (or, with hf, a Hugging Face state dict). The image size is
    sqrt(patch tokens) x patch size (So400m/14 at 384 px: 27 x 14 = 378, and a 384 px image reads the
    same 27 x 27 patches); None where the checkpoint has no such embedding."""
    if hf:
        flat = {_strip_hf_prefix(k): v for k, v in flat.items()}
        img = flat.get("vision_model.embeddings.position_embedding.weight")
        patch = flat.get("vision_model.embeddings.patch_embedding.weight")
        txt = flat.get("text_model.embeddings.position_embedding.weight")
        tokens, patch_px = (None if img is None else img.shape[0]), (None if patch is None else patch.shape[-1])
        length = None if txt is None else txt.shape[0]
    else:
        img, patch, txt = (flat.get(k) for k in ("img/pos_embedding", "img/embedding/kernel", "txt/pos_embedding"))
        tokens, patch_px = (None if img is None else img.shape[1]), (None if patch is None else patch.shape[0])
        length = None if txt is None else txt.shape[1]
    px = None
    if tokens is not None and patch_px is not None:
        side = int(round(np.sqrt(tokens)))
        if side * side != tokens:
            raise ValueError(f"an image position embedding of {tokens} tokens is not a square grid of patches")
        px = side * patch_px
    return px, length


def _own_config(path, kind):
    """The two-tower config a checkpoint carries: an HF folder's config.json, our checkpoints' meta."""
    if kind == "hf":
        config_file = (path if path.is_dir() else path.parent) / "config.json"
        if config_file.is_file():
            return config_from_hf(json.loads(config_file.read_text()), config_file)
        raise ValueError(f"{path}: a Hugging Face checkpoint without config.json needs a config argument")
    if kind == "orbax":
        meta = _orbax_meta(path)
        if meta and meta.get("model_config"):
            return meta["model_config"]
        raise ValueError(f"{path}: this Orbax checkpoint records no model_config; pass a config")
    raise ValueError(f"{path}: a big_vision .npz holds only weights; pass its big_vision model config "
                     "(image_model, text_model, image, text, out_dim, ...) as config")


# transformers' SiglipConfig defaults: a config.json leaves out every value that equals its default.
HF_DEFAULTS = {
    "vision_config": dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                          image_size=224, patch_size=16, vision_use_head=True, hidden_act="gelu_pytorch_tanh",
                          layer_norm_eps=1e-6, num_channels=3),
    "text_config": dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                        vocab_size=32000, max_position_embeddings=64, projection_size=None,
                        hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6),
}


def config_from_hf(hf: dict, source="config.json") -> dict:
    """The big_vision two-tower config of a Hugging Face SiglipModel config.json (SigLIP base, large,
    so400m at any image size and patch). Raises ValueError for what our towers do not implement
    (another activation, layer-norm epsilon or channel count, or SigLIP 2's NaFlex towers)."""
    if hf.get("model_type") not in (None, "siglip"):
        raise ValueError(f"{source}: model_type {hf.get('model_type')!r}; only 'siglip' folders load")
    v = {**HF_DEFAULTS["vision_config"], **(hf.get("vision_config") or {})}
    t = {**HF_DEFAULTS["text_config"], **(hf.get("text_config") or {})}
    for tower, cfg in (("vision_config", v), ("text_config", t)):
        if cfg["hidden_act"] != "gelu_pytorch_tanh" or not np.isclose(cfg["layer_norm_eps"], 1e-6):
            raise ValueError(f"{source}: {tower} has hidden_act {cfg['hidden_act']!r} and layer_norm_eps "
                             f"{cfg['layer_norm_eps']}; SigLIP's (and ours) are 'gelu_pytorch_tanh' and 1e-6")
    if v["num_channels"] != 3:
        raise ValueError(f"{source}: vision_config.num_channels is {v['num_channels']}; only RGB (3) loads")

    def tower(cfg):
        return dict(width=cfg["hidden_size"], depth=cfg["num_hidden_layers"], mlp_dim=cfg["intermediate_size"],
                    num_heads=cfg["num_attention_heads"])

    return dict(image_model="vit", text_model="text_transformer",
                image=dict(**tower(v), patch_size=(v["patch_size"], v["patch_size"]),
                           pool_type="map" if v["vision_use_head"] else "gap"),
                text=dict(**tower(t), vocab_size=t["vocab_size"]),
                out_dim=(None, t["projection_size"] or t["hidden_size"]),
                temperature_init=10.0, bias_init=-10.0)


def check_params(flat, expected, source):
    """Raise ValueError listing every key of `flat` (name -> array) that does not fit `expected`
    (name -> shape): missing, unexpected, or of another shape. `source` names the file."""
    problems = [f"missing {k!r} (expected shape {expected[k]})"
                for k in sorted(expected.keys() - flat.keys())]
    problems += [f"unexpected {k!r} (found shape {tuple(flat[k].shape)}, not in the model)"
                 for k in sorted(flat.keys() - expected.keys())]
    problems += [f"{k!r}: expected shape {expected[k]}, found {tuple(flat[k].shape)}"
                 for k in sorted(expected.keys() & flat.keys())
                 if tuple(flat[k].shape) != expected[k]]
    if problems:
        shown = "\n  ".join(problems[:20]) + ("\n  ..." if len(problems) > 20 else "")
        raise ValueError(f"{source}: {len(problems)} parameters do not fit the model "
                         f"(pos_embedding shapes follow image_size_px and text_len):\n  {shown}")


@functools.partial(jax.jit, static_argnums=0)
def _embed_images(model, params, images):
    return model.apply({"params": params}, images, None)[0]


@functools.partial(jax.jit, static_argnums=0)
def _embed_texts(model, params, token_ids):
    return model.apply({"params": params}, None, token_ids)[1]


def embed_images(model, params, images):
    """Images [B, H, W, 3] float in [-1, 1] (NHWC) -> L2-normalised embeddings [B, D] float32."""
    return _embed_images(model, params, jnp.asarray(images, jnp.float32))


def embed_texts(model, params, token_ids):
    """Token ids [B, L] int -> L2-normalised embeddings [B, D] float32."""
    return _embed_texts(model, params, jnp.asarray(token_ids, jnp.int32))


def save_npz(params, path):
    """Write params (nested dict) as a big_vision .npz: one array per "img/.../kernel" key.

    numpy appends ".npz" to a path without it; bfloat16 arrays are stored as 2-byte void.
    """
    flat = traverse_util.flatten_dict(params, sep="/")
    np.savez(path, **{k: np.asarray(v) for k, v in flat.items()})


# --- big_vision .npz and Orbax ---------------------------------------------------------------

def _as_float32(array):
    if array.dtype == np.dtype("V2"):  # numpy has no bfloat16: np.savez stores its raw 2 bytes
        array = array.view(jnp.bfloat16)
    return np.asarray(array, np.float32)


def _normalize_keys(flat):
    """Drop a leading "params/" and unroll scanned blocks: "encoderblock/x" [depth, ...] ->
    "encoderblock_{i}/x" [...], the layout of our unrolled Encoder."""
    out = {}
    for key, array in flat.items():
        parts = key.removeprefix("params/").split("/")
        if "encoderblock" in parts:
            at = parts.index("encoderblock")
            for i in range(array.shape[0]):
                out["/".join(parts[:at] + [f"encoderblock_{i}"] + parts[at + 1:])] = array[i]
        else:
            out["/".join(parts)] = array
    return out


def _read_npz(path):
    with np.load(path, allow_pickle=False) as npz:
        return _normalize_keys({k: _as_float32(npz[k]) for k in npz.files})


def read_orbax_params(path):
    """Params of an Orbax checkpoint: `path` is the manager root (the largest numeric step is
    read), a step folder, or its `params` item folder."""
    import orbax.checkpoint as ocp  # heavy import, only needed for our own checkpoints

    path = Path(path).absolute()  # Orbax reads no metadata from a relative path
    steps = [p for p in path.iterdir() if p.is_dir() and p.name.isdigit()]
    if steps:
        path = max(steps, key=lambda p: int(p.name))
    if (path / "params").is_dir():
        path = path / "params"
    checkpointer = ocp.PyTreeCheckpointer()
    tree = checkpointer.metadata(path).item_metadata.tree
    # Restore as numpy so that a checkpoint written on GPU reads on any machine.
    restore_args = jax.tree_util.tree_map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), tree)
    params = checkpointer.restore(path, args=ocp.args.PyTreeRestore(restore_args=restore_args))
    flat = traverse_util.flatten_dict(params, sep="/")
    return _normalize_keys({k: _as_float32(v) for k, v in flat.items()})


def _orbax_meta(path):
    """The JSON `meta` item beside an Orbax checkpoint's params (our trainer writes model_config there)."""
    path = Path(path).absolute()
    steps = [p for p in path.iterdir() if p.is_dir() and p.name.isdigit()]
    if steps:
        path = max(steps, key=lambda p: int(p.name))
    if path.name == "params":
        path = path.parent
    meta = path / "meta" / "metadata"
    return json.loads(meta.read_text()) if meta.is_file() else None


# --- Hugging Face SigLIP ---------------------------------------------------------------------

# HF module (regex, relative to vision_model. / text_model.) -> our module (relative to img/ or
# txt/; {enc} is the tower's Encoder, {0} the layer) and the kind of its leaves (_hf_leaf).
_HF_MODULES = [
    (r"embeddings\.patch_embedding", "embedding", "conv"),
    (r"embeddings\.position_embedding", "", "posemb"),
    (r"embeddings\.token_embedding", "Embed_0", "embed"),
    (r"encoder\.layers\.(\d+)\.layer_norm1", "{enc}/encoderblock_{0}/LayerNorm_0", "ln"),
    (r"encoder\.layers\.(\d+)\.self_attn\.q_proj",
     "{enc}/encoderblock_{0}/MultiHeadDotProductAttention_0/query", "qkv"),
    (r"encoder\.layers\.(\d+)\.self_attn\.k_proj",
     "{enc}/encoderblock_{0}/MultiHeadDotProductAttention_0/key", "qkv"),
    (r"encoder\.layers\.(\d+)\.self_attn\.v_proj",
     "{enc}/encoderblock_{0}/MultiHeadDotProductAttention_0/value", "qkv"),
    (r"encoder\.layers\.(\d+)\.self_attn\.out_proj",
     "{enc}/encoderblock_{0}/MultiHeadDotProductAttention_0/out", "attn_out"),
    (r"encoder\.layers\.(\d+)\.layer_norm2", "{enc}/encoderblock_{0}/LayerNorm_1", "ln"),
    (r"encoder\.layers\.(\d+)\.mlp\.fc1", "{enc}/encoderblock_{0}/MlpBlock_0/Dense_0", "dense"),
    (r"encoder\.layers\.(\d+)\.mlp\.fc2", "{enc}/encoderblock_{0}/MlpBlock_0/Dense_1", "dense"),
    (r"post_layernorm|final_layer_norm", "{enc}/encoder_norm", "ln"),
    # The vision MAP head is a torch.nn.MultiheadAttention: q, k, v packed in in_proj_*.
    (r"head\.attention", "MAPHead_0/MultiHeadDotProductAttention_0", "packed_qkv"),
    (r"head\.attention\.out_proj", "MAPHead_0/MultiHeadDotProductAttention_0/out", "attn_out"),
    (r"head\.layernorm", "MAPHead_0/LayerNorm_0", "ln"),
    (r"head\.mlp\.fc1", "MAPHead_0/MlpBlock_0/Dense_0", "dense"),
    (r"head\.mlp\.fc2", "MAPHead_0/MlpBlock_0/Dense_1", "dense"),
    (r"head", "", "head"),
]
_HF_TOWERS = {"vision_model": ("img", "Transformer"), "text_model": ("txt", "Encoder_0")}


# (kind, HF leaf) -> (our leaf, conversion of the torch array w given the head count h).
# torch layouts: Linear weight [out, in], Conv2d weight [out, in, kh, kw].
_HF_LEAVES = {
    ("ln", "weight"): ("scale", lambda w, h: w),
    ("ln", "bias"): ("bias", lambda w, h: w),
    ("dense", "weight"): ("kernel", lambda w, h: w.T),
    ("dense", "bias"): ("bias", lambda w, h: w),
    ("conv", "weight"): ("kernel", lambda w, h: w.transpose(2, 3, 1, 0)),
    ("conv", "bias"): ("bias", lambda w, h: w),
    ("qkv", "weight"): ("kernel", lambda w, h: w.T.reshape(w.shape[1], h, -1)),
    ("qkv", "bias"): ("bias", lambda w, h: w.reshape(h, -1)),
    ("attn_out", "weight"): ("kernel", lambda w, h: w.T.reshape(h, -1, w.shape[0])),
    ("attn_out", "bias"): ("bias", lambda w, h: w),
    ("embed", "weight"): ("embedding", lambda w, h: w),
    ("posemb", "weight"): ("pos_embedding", lambda w, h: w[None]),
}


def _hf_leaf(kind, leaf, w, heads):
    """[(our leaf path, array)] of one HF leaf of a module of `kind`; [] when it has none."""
    if kind == "packed_qkv" and leaf in ("in_proj_weight", "in_proj_bias"):
        leaf = leaf.removeprefix("in_proj_")
        parts = zip(("query", "key", "value"), np.split(w, 3))
        return [(f"{proj}/{name}", a) for proj, part in parts
                for name, a in _hf_leaf("qkv", leaf, part, heads)]
    if kind == "head":  # text: the projection Dense; vision: the MAP probe
        if leaf == "probe":
            return [("MAPHead_0/probe", w)]
        return [(f"head/{name}", a) for name, a in _hf_leaf("dense", leaf, w, heads)]
    if (kind, leaf) not in _HF_LEAVES:
        return []
    name, convert = _HF_LEAVES[kind, leaf]
    return [(name, convert(w, heads))]


def _hf_param(name, w, heads):
    """[(our flat key, array)] of one HF parameter name (prefix stripped); [] when it has none."""
    if name in ("logit_scale", "logit_bias"):
        return [({"logit_scale": "t", "logit_bias": "b"}[name], w.reshape(1))]
    root, _, rest = name.partition(".")
    if root not in _HF_TOWERS:
        return []
    tower, enc = _HF_TOWERS[root]
    module, _, leaf = rest.rpartition(".")
    for pattern, template, kind in _HF_MODULES:
        if m := re.fullmatch(pattern, module):
            ours = template.format(*m.groups(), enc=enc)
            return [("/".join(p for p in (tower, ours, sub) if p), a)
                    for sub, a in _hf_leaf(kind, leaf, w, heads[tower])]
    return []


def _from_hf(state, expected, source):
    """Our flat params of an HF SiglipModel state dict (name -> float32 array)."""
    heads = {tower: next((shape[1] for key, shape in expected.items()
                          if key.startswith(f"{tower}/") and key.endswith("query/kernel")), None)
             for tower, _ in _HF_TOWERS.values()}
    _check_hf_heads(source, heads)
    flat = {}
    for name, w in state.items():
        name = _strip_hf_prefix(name)
        if name.endswith("position_ids"):  # a buffer in older checkpoints, not a parameter
            continue
        converted = _hf_param(name, w, heads)
        if not converted:
            raise ValueError(f"{source}: Hugging Face parameter {name!r} has no SigLIP counterpart")
        flat.update(converted)
    return flat


def _strip_hf_prefix(name):
    """'model.vision_model.x' -> 'vision_model.x': exports differ in their outer prefix."""
    parts = name.split(".")
    for i, part in enumerate(parts):
        if part in ("vision_model", "text_model", "logit_scale", "logit_bias"):
            return ".".join(parts[i:])
    return name


def _check_hf_heads(source, heads):
    """Splitting attention into the config's head count is silent if it differs from the HF
    model's, so compare with the folder's config.json when there is one."""
    config_file = (source if source.is_dir() else source.parent) / "config.json"
    if not config_file.exists():
        return
    hf = json.loads(config_file.read_text())
    for tower, key in (("img", "vision_config"), ("txt", "text_config")):
        found = hf.get(key, {}).get("num_attention_heads")
        if found is not None and found != heads[tower]:
            raise ValueError(f"{config_file}: {key}.num_attention_heads is {found}, "
                             f"but the config's {tower} tower has {heads[tower]} heads")


def _hf_files(path):
    """The weight files of an HF export: a folder's *.safetensors, else its pytorch_model*.bin."""
    if path.is_file():
        return [path] if path.suffix in (".safetensors", ".bin") else []
    if not path.is_dir():
        return []
    return sorted(path.glob("*.safetensors")) or sorted(path.glob("pytorch_model*.bin"))


def _read_hf_state(files):
    state = {}
    for file in files:
        if file.suffix == ".safetensors":
            from safetensors.flax import load_file  # reads bfloat16, which safetensors.numpy can't

            state.update({k: np.asarray(v, np.float32) for k, v in load_file(file).items()})
        else:
            import torch  # only for .bin exports; the rest of vlscale runs without torch

            tensors = torch.load(file, map_location="cpu", weights_only=True)
            state.update({k: v.float().numpy() for k, v in tensors.items()})
    return state
