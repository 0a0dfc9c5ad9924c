"""The SigLIP sigmoid loss as big_vision defines it, dense and chunked over a ring of devices.

For a batch of B image and text embeddings, every one of the B x B pairs is a binary problem:
the diagonal pairs are positives (label +1), all others negatives (label -1), and

    loss = -1/B * sum_ij log_sigmoid(label_ij * (exp(t) * zimg_i . ztxt_j + b))

with t the temperature parameter (log of the scale) and b the bias. `sigmoid_loss` builds the
B x B logits at once; `chunked_sigmoid_loss` computes the same value with the batch sharded over
n devices, passing text chunks around a ring so that no device holds more than [B/n, B/n] logits
(the SigLIP paper's "chunked" implementation). Both work in float32 whatever the input dtype.
"""
import math
from functools import partial

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P


def _loglik_sum(zimg, ztxt, t, b, positive):
    """Sum of log_sigmoid(label * logit) over one block of pairs, in float32.

    zimg [m, D], ztxt [k, D]; t, b scalars or shape [1]. positive=True puts label +1 on the
    diagonal (the block pairs each example with its own caption); otherwise all labels are -1.
    """
    zimg, ztxt, t, b = (jnp.asarray(x, jnp.float32) for x in (zimg, ztxt, t, b))
    logits = zimg @ ztxt.T * jnp.exp(t) + b  # [m, k]
    labels = 2.0 * jnp.eye(*logits.shape) - 1.0 if positive else -1.0
    # Per image, then over images, as big_vision reduces (and more accurate than one flat sum).
    return jnp.sum(jnp.sum(jax.nn.log_sigmoid(labels * logits), axis=1))


def sigmoid_loss(zimg, ztxt, t, b):
    """SigLIP loss of a batch, all B x B logits at once.

    zimg, ztxt: [B, D] L2-normalised embeddings; t: temperature parameter (scale = exp(t)), b: bias,
    scalars or shape [1]. Returns a float32 scalar: the mean over images of the summed pair losses.
    """
    return -_loglik_sum(zimg, ztxt, t, b, positive=True) / zimg.shape[0]


def _ring_size(mesh, axes):
    missing = [a for a in axes if a not in mesh.shape]
    if missing:
        raise ValueError(f"chunked_sigmoid_loss: axes {missing} are not in the mesh {dict(mesh.shape)}")
    return math.prod(mesh.shape[a] for a in axes)


def _ring_loglik(zimg, ztxt, t, b, *, axes, n):
    """Per device (zimg, ztxt: this device's [B/n, D] chunks): the global log-likelihood sum."""
    rotate = partial(jax.lax.ppermute, axis_name=axes, perm=[(i, (i + 1) % n) for i in range(n)])
    total = _loglik_sum(zimg, ztxt, t, b, positive=True)  # local x local holds the positives

    def step(_, carry):
        ztxt, total = carry
        ztxt = rotate(ztxt)  # another device's captions: negatives only
        return ztxt, total + _loglik_sum(zimg, ztxt, t, b, positive=False)

    _, total = jax.lax.fori_loop(0, n - 1, step, (ztxt, total))
    return jax.lax.psum(total, axes)


def _ring_loglik_grad(zimg, ztxt, t, b, *, axes, n):
    """Per device: gradients of the global log-likelihood sum w.r.t. (zimg, ztxt, t, b).

    Replays the forward ring one block at a time, recomputing each block's logits, so memory stays
    at one [B/n, B/n] block. The gradient of a text chunk travels with the chunk and takes one
    more hop at the end to reach the device that owns it.
    """
    rotate = partial(jax.lax.ppermute, axis_name=axes, perm=[(i, (i + 1) % n) for i in range(n)])
    # Per-device partial sums for t and b; without the cast, grad would psum them on every block.
    t, b = jax.lax.pcast((t, b), axes, to="varying")
    block_grad = jax.grad(_loglik_sum, argnums=(0, 1, 2, 3))
    gimg, gtxt, gt, gb = block_grad(zimg, ztxt, t, b, True)

    def step(_, carry):
        ztxt, gtxt, gimg, gt, gb = carry
        ztxt, gtxt = rotate((ztxt, gtxt))
        di, dj, dt, db = block_grad(zimg, ztxt, t, b, False)
        return ztxt, gtxt + dj, gimg + di, gt + dt, gb + db

    _, gtxt, gimg, gt, gb = jax.lax.fori_loop(0, n - 1, step, (ztxt, gtxt, gimg, gt, gb))
    return gimg, rotate(gtxt), jax.lax.psum(gt, axes), jax.lax.psum(gb, axes)


def _shard_mapped(fn, mesh, axes, out_specs):
    n = _ring_size(mesh, axes)
    return jax.shard_map(partial(fn, axes=axes, n=n), mesh=mesh,
                         in_specs=(P(axes), P(axes), P(), P()), out_specs=out_specs)


@partial(jax.custom_vjp, nondiff_argnums=(4, 5))
def _chunked(zimg, ztxt, t, b, mesh, axes):
    return -_shard_mapped(_ring_loglik, mesh, axes, P())(zimg, ztxt, t, b) / zimg.shape[0]


def _chunked_fwd(zimg, ztxt, t, b, mesh, axes):
    return _chunked(zimg, ztxt, t, b, mesh, axes), (zimg, ztxt, t, b)


def _chunked_bwd(mesh, axes, inputs, g):
    # A hand-written backward ring: autodiff through the forward loop would keep every block's
    # residuals, n x [B/n, B/n] per device, which is the memory the ring exists to avoid.
    f32 = [jnp.asarray(x, jnp.float32) for x in inputs]  # accumulate in float32, cast back at the end
    grads = _shard_mapped(_ring_loglik_grad, mesh, axes, (P(axes), P(axes), P(), P()))(*f32)
    scale = -g / inputs[0].shape[0]
    return tuple((scale * d).reshape(jnp.shape(x)).astype(jnp.result_type(x))
                 for d, x in zip(grads, inputs))


_chunked.defvjp(_chunked_fwd, _chunked_bwd)


def chunked_sigmoid_loss(zimg, ztxt, t, b, mesh, axes=("data", "fsdp")):
    """`sigmoid_loss` with the batch sharded over `axes` of `mesh`, never building B x B logits.

    zimg, ztxt: [B, D], B divisible by n = the product of the sizes of `axes`; within jax.jit they
    are best sharded as NamedSharding(mesh, P(axes)). t, b: scalars or shape [1], replicated.
    The n devices form one ring: each scores its images against its own captions (the positives),
    then n-1 times passes its caption chunk to the next device and scores the negatives it
    receives; a psum adds the n partial sums. Peak logits per device: [B/n, B/n], forward and
    backward. Differentiable once (custom VJP) w.r.t. all four inputs; on a one-device mesh it is
    the dense loss.
    """
    axes = tuple(axes)
    n = _ring_size(mesh, axes)
    if zimg.shape != ztxt.shape or zimg.shape[0] % n:
        raise ValueError(f"chunked_sigmoid_loss: zimg {zimg.shape} and ztxt {ztxt.shape} must have "
                         f"the same shape [B, D] with B divisible by the {n} devices of mesh axes {axes}")
    return _chunked(zimg, ztxt, jnp.asarray(t), jnp.asarray(b), mesh, axes)
