"""Model FLOPs of a training step and the peak FLOP/s of a device, for MFU.

MFU = model FLOPs per second / peak FLOP/s. Model FLOPs count the matmuls of the forward pass
(2 FLOPs per multiply-add) and charge the backward pass twice the forward, the PaLM / nanoGPT
convention; rendering, layer norms and softmax are not counted. Accelerator peaks are the vendors'
dense bf16 figures. A CPU has no such figure we can trust across machines, so its peak is measured:
the best float32 matmul throughput of this process, and CPU MFU is relative to that.
"""
from __future__ import annotations

import functools
import time

import numpy as np

# Dense bf16 peak FLOP/s per device, by a substring of jax's device_kind (first match wins).
PEAK_BF16 = (
    ("H200", 989e12), ("H100", 989e12), ("A100", 312e12), ("L4", 121e12), ("A10", 125e12),
    ("TPU v6", 918e12), ("TPU v5p", 459e12), ("TPU v5", 197e12), ("TPU v4", 275e12), ("TPU v3", 123e12),
)


def tower_flops(width: int, depth: int, mlp_dim: int, tokens: int, pool_type: str = "map") -> float:
    """Forward FLOPs of one example through a transformer tower of `tokens` tokens."""
    d, n = width, tokens
    per_layer = 4 * n * d * d + 2 * n * d * mlp_dim + 2 * n * n * d  # qkv+out, MLP, scores+mix
    flops = depth * per_layer
    if pool_type == "map":  # one probe query over n keys/values, then the head's MLP
        flops += 2 * d * d + 2 * n * d * d + 2 * n * d + 2 * d * mlp_dim
    return 2.0 * flops


def train_flops_per_example(image: dict, text: dict, image_px: int, seq_len: int, out_dims,
                            batch_size: int, drop_tokens_frac: float = 0.0) -> float:
    """Model FLOPs of one example in a training step (forward + backward).

    image/text: the towers' decoded settings (width, depth, mlp_dim, patch_size, pool_type);
    out_dims: (image head, text head) output widths or None; the sigmoid loss adds B·D per example.
    """
    patch = image["patch_size"][0]
    patches = (image_px // patch) ** 2
    kept = patches - int(round(drop_tokens_frac * patches))
    fwd = 2.0 * patches * patch * patch * 3 * image["width"]  # patch embedding sees every patch
    fwd += tower_flops(image["width"], image["depth"], image["mlp_dim"], kept, image.get("pool_type", "map"))
    fwd += tower_flops(text["width"], text["depth"], text["mlp_dim"], seq_len, "last")
    img_out, txt_out = out_dims
    fwd += 2.0 * image["width"] * img_out if img_out else 0.0
    fwd += 2.0 * text["width"] * txt_out if txt_out else 0.0
    fwd += 2.0 * batch_size * (txt_out or text["width"])  # logits row of the sigmoid loss
    return 3.0 * fwd


@functools.cache
def measured_cpu_peak(n: int = 1024, repeats: int = 5) -> float:
    """Best float32 FLOP/s of an n×n matmul on the default JAX CPU device (this process)."""
    import jax
    import jax.numpy as jnp

    a = jnp.asarray(np.random.default_rng(0).standard_normal((n, n), np.float32))
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        f(a).block_until_ready()
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n ** 3 / best


def peak_flops(device) -> tuple[float, str]:
    """(peak FLOP/s of one device, where the figure comes from)."""
    kind = getattr(device, "device_kind", str(device))
    if device.platform == "cpu":
        return measured_cpu_peak(), "measured float32 matmul on this CPU"
    for key, peak in PEAK_BF16:
        if key.lower() in kind.lower():
            return peak, f"{key} dense bf16 datasheet"
    return float("nan"), f"unknown device kind {kind!r}"
