"""The sigmoid loss: big_vision's definition, and the chunked ring computing the same value."""
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

from vlscale.training.loss import chunked_sigmoid_loss, sigmoid_loss

AXES = ("data", "fsdp")


def embeddings(seed, batch, dim, dtype=np.float32):
    """Two [batch, dim] arrays of random unit vectors."""
    z = np.random.default_rng(seed).normal(size=(2, batch, dim))
    z /= np.linalg.norm(z, axis=-1, keepdims=True)
    return z[0].astype(dtype), z[1].astype(dtype)


def numpy_loss(zimg, ztxt, t, b):
    logits = np.float64(zimg) @ np.float64(ztxt).T * np.exp(t) + b
    labels = 2 * np.eye(len(logits)) - 1
    return -np.mean(np.sum(-np.logaddexp(0, -labels * logits), axis=1))  # log_sigmoid(x) = -log(1+e^-x)


@settings(max_examples=20, deadline=None)
@given(batch=st.integers(1, 40), dim=st.integers(1, 24), seed=st.integers(0, 2**31),
       t=st.floats(-1, 4), b=st.floats(-12, 2))
def test_dense_loss_matches_float64_numpy(batch, dim, seed, t, b):
    zimg, ztxt = embeddings(seed, batch, dim)
    np.testing.assert_allclose(sigmoid_loss(zimg, ztxt, t, b), numpy_loss(zimg, ztxt, t, b), rtol=1e-5)


def test_loss_is_small_for_aligned_pairs_and_large_for_shuffled():
    zimg, _ = embeddings(0, 32, 256)
    t, b = np.log(10.0), -10.0  # SigLIP's initialisation
    aligned = sigmoid_loss(zimg, zimg, t, b)  # positive logit 0, negatives near -10
    shuffled = sigmoid_loss(zimg, np.roll(zimg, 1, axis=0), t, b)  # positives near -10 too
    assert aligned < 0.75 and shuffled > 9.0, (aligned, shuffled)


def test_dense_loss_is_float32_for_bfloat16_inputs():
    zimg, ztxt = embeddings(1, 8, 4, jnp.bfloat16)
    assert sigmoid_loss(zimg, ztxt, 0.0, 0.0).dtype == jnp.float32


def check_chunked_matches_dense(mesh, batch, dim, seed=0, param_shape=(), dtype=np.float32, grad_tol=1e-6):
    """Loss and gradients w.r.t. (zimg, ztxt, t, b) of the chunked ring under jit, inputs sharded
    over AXES of `mesh`, against the dense loss on one device. Both compute in float32, so the
    values agree to 1e-6; gradients come back in the input dtype (grad_tol for bfloat16)."""
    zimg, ztxt = embeddings(seed, batch, dim, dtype)
    t, b = np.full(param_shape, np.log(10.0), np.float32), np.full(param_shape, -10.0, np.float32)
    args = (zimg, ztxt, t, b)
    dense = jax.jit(jax.value_and_grad(sigmoid_loss, argnums=(0, 1, 2, 3)))
    chunked = jax.jit(jax.value_and_grad(lambda *a: chunked_sigmoid_loss(*a, mesh, AXES),
                                         argnums=(0, 1, 2, 3)))
    batch_sharded = NamedSharding(mesh, P(AXES))
    sharded = (jax.device_put(zimg, batch_sharded), jax.device_put(ztxt, batch_sharded), t, b)
    (want, want_grads), (got, got_grads) = dense(*args), chunked(*sharded)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    for name, g, w, x in zip(("zimg", "ztxt", "t", "b"), got_grads, want_grads, args):
        assert g.shape == x.shape and g.dtype == x.dtype, (name, g.shape, g.dtype)
        np.testing.assert_allclose(np.float32(g), np.float32(w), rtol=grad_tol, atol=grad_tol,
                                   err_msg=f"d loss / d {name}")
    if mesh.size > 1:  # the ring never holds a row of B logits, let alone B x B
        hlo = chunked.lower(*sharded).compile().as_text()
        n = mesh.size
        assert f"[{batch // n},{batch // n}]" in hlo and f"[{batch // n},{batch}]" not in hlo
        assert f"[{batch},{batch}]" not in hlo


def test_chunked_loss_on_one_device_is_the_dense_loss():
    mesh = jax.make_mesh((1, 1), AXES, axis_types=(AxisType.Auto,) * 2)
    check_chunked_matches_dense(mesh, batch=16, dim=8)
    check_chunked_matches_dense(mesh, batch=5, dim=3, param_shape=(1,))


def test_chunked_loss_rejects_a_batch_the_ring_cannot_split():
    mesh = jax.make_mesh((1, 1), AXES, axis_types=(AxisType.Auto,) * 2)
    zimg, ztxt = embeddings(0, 4, 3)
    with pytest.raises(ValueError, match=r"axes \['model'\] are not in the mesh"):
        chunked_sigmoid_loss(zimg, ztxt, 0.0, 0.0, mesh, axes=("data", "model"))
    with pytest.raises(ValueError, match=r"same shape"):
        chunked_sigmoid_loss(zimg, ztxt[:3], 0.0, 0.0, mesh)


@pytest.mark.parametrize("mesh_shape", [(4, 2), (8, 1)])
def test_chunked_loss_equals_dense_on_8_simulated_devices(mesh_shape):
    # XLA_FLAGS must be set before jax is imported, so the 8-device check runs in a fresh process.
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8", "JAX_PLATFORMS": "cpu"}
    run = subprocess.run([sys.executable, __file__, *map(str, mesh_shape)], env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr


if __name__ == "__main__":  # python tests/test_loss.py DATA FSDP, with 8 devices: see above
    mesh = jax.make_mesh(tuple(map(int, sys.argv[1:3])), AXES, axis_types=(AxisType.Auto,) * 2)
    for batch, dim, seed in ((64, 16, 0), (8, 5, 1), (256, 32, 2)):
        check_chunked_matches_dense(mesh, batch, dim, seed)
    check_chunked_matches_dense(mesh, 24, 7, param_shape=(1,))  # big_vision's t, b have shape [1]
    check_chunked_matches_dense(mesh, 32, 8, dtype=jnp.bfloat16, grad_tol=2 ** -7)  # one bfloat16 ulp
    print("chunked == dense on mesh", dict(mesh.shape))
