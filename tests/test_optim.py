"""The optimiser: clipped Adam, decoupled weight decay on kernels only, stepped in examples seen."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from vlscale.training.optim import examples_seen, kernel_mask, learning_rate, optimizer
from vlscale.training.schedule import Schedule

BATCH = 8
SCHEDULE = Schedule(1e-2, warmup_examples=2 * BATCH, cooldown_examples=0, timescale_examples=4 * BATCH)
WD, CLIP = 0.1, 1.0
PARAMS = {
    "dense": {"kernel": jnp.array([[0.5, -1.0], [2.0, 0.25]]), "bias": jnp.array([0.3, -0.2])},
    "norm": {"scale": jnp.array([1.0, 1.5])},
    "t": jnp.array([2.3]),
}


def grads_of_norm(norm, seed):
    """A gradient tree shaped like PARAMS with global norm `norm`."""
    leaves, tree = jax.tree.flatten(PARAMS)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    g = [jax.random.normal(k, x.shape) for k, x in zip(keys, leaves)]
    return jax.tree.unflatten(tree, [x * norm / optax.tree.norm(g) for x in g])


def hand_updates(grads_per_step, b1=0.9, b2=0.999, eps=1e-8):
    """Parameters after each step, by the formulas in float64: clip, Adam, decoupled decay."""
    p = {k: np.float64(v) for k, v in jax.tree_util.tree_flatten_with_path(PARAMS)[0]}
    m = {k: 0.0 for k in p}
    v = {k: 0.0 for k in p}
    for step, grads in enumerate(grads_per_step):
        g = {k: np.float64(x) for k, x in jax.tree_util.tree_flatten_with_path(grads)[0]}
        norm = np.sqrt(sum(np.sum(x**2) for x in g.values()))
        rel = SCHEDULE.relative(step * BATCH)
        for k in p:
            gk = g[k] * min(1.0, CLIP / norm)
            m[k] = b1 * m[k] + (1 - b1) * gk
            v[k] = b2 * v[k] + (1 - b2) * gk**2
            adam = (m[k] / (1 - b1 ** (step + 1))) / (np.sqrt(v[k] / (1 - b2 ** (step + 1))) + eps)
            decay = WD * p[k] if k[-1].key == "kernel" else 0.0
            p[k] = p[k] - rel * (SCHEDULE.peak_lr * adam + decay)
    return p


def test_updates_are_clipped_adam_with_decay_on_kernels_only():
    tx = optimizer(SCHEDULE, BATCH, weight_decay=WD, grad_clip_norm=CLIP)
    grads = [grads_of_norm(n, seed) for seed, n in enumerate([5.0, 0.3, 2.0, 0.7, 1.0])]
    params, state = PARAMS, tx.init(PARAMS)
    for g in grads:  # step 0 has rel = 0 (warm-up starts at zero), then warm-up, then rsqrt
        updates, state = jax.jit(tx.update)(g, state, params)
        params = optax.apply_updates(params, updates)
    want = hand_updates(grads)
    for k, x in jax.tree_util.tree_flatten_with_path(params)[0]:
        np.testing.assert_allclose(x, want[k], rtol=1e-6, atol=1e-7, err_msg=jax.tree_util.keystr(k))


def test_weight_decay_shrinks_kernels_and_nothing_else():
    tx = optimizer(Schedule(1e-2, 0, 0, 1), BATCH, weight_decay=WD)
    zeros = jax.tree.map(jnp.zeros_like, PARAMS)
    updates, _ = tx.update(zeros, tx.init(PARAMS), PARAMS)  # no gradient: only the decay moves
    np.testing.assert_allclose(updates["dense"]["kernel"], -WD * PARAMS["dense"]["kernel"], rtol=1e-6)
    for leaf in (updates["dense"]["bias"], updates["norm"]["scale"], updates["t"]):
        assert not np.any(leaf)
    assert kernel_mask(PARAMS) == {"dense": {"kernel": True, "bias": False}, "norm": {"scale": False}, "t": False}


@pytest.mark.parametrize("norm, factor", [(4.0, CLIP / 4.0), (0.5, 1.0)])
def test_clipping_engages_only_above_the_norm(norm, factor):
    tx = optimizer(SCHEDULE, BATCH, grad_clip_norm=CLIP)
    g = grads_of_norm(norm, seed=0)
    _, state = tx.update(g, tx.init(PARAMS), PARAMS)
    adam = next(s for s in state if isinstance(s, optax.ScaleByAdamState))
    jax.tree.map(lambda mu, x: np.testing.assert_allclose(mu, 0.1 * factor * x, rtol=1e-6), adam.mu, g)


def test_learning_rate_follows_examples_seen_past_int32():
    step = 2**31 // BATCH + 5  # more than 2**31 examples seen
    assert examples_seen(jnp.int32(step), BATCH) == pytest.approx(step * BATCH, rel=1e-7)
    assert learning_rate(SCHEDULE, step, BATCH) == SCHEDULE(step * BATCH)
    assert jax.jit(learning_rate, static_argnums=(0, 2))(SCHEDULE, jnp.int32(step), BATCH) == pytest.approx(
        SCHEDULE(step * BATCH), rel=1e-6)
