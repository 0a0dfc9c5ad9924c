"""The optimiser as big_vision builds it for SigLIP: clipped Adam, decoupled weight decay, schedule.

One update of parameters p with gradients g, after e examples seen:

    g <- g * min(1, grad_clip_norm / ||g||)        (global norm over all parameters)
    p <- p - rel(e) * (peak_lr * adam(g) + weight_decay * p)

where rel is the schedule's relative learning rate and the decay term applies to kernels only
(not to biases, LayerNorm scales, embeddings, t or b). As in big_vision, the weight decay is
multiplied by the schedule but not by the learning rate: weight_decay=1e-4 shrinks a kernel by
1e-4 per step at rel = 1.

optax counts updates, not examples; the optimiser is given the (fixed) batch size and turns update
count k into examples seen e = k * batch_size.
"""
import jax
import jax.numpy as jnp
import optax


def examples_seen(step, batch_size):
    """Examples seen before update `step` (0-based) at a fixed `batch_size`.

    A JAX integer step becomes float32 first: step * batch_size in int32 overflows past 2**31
    examples, which a 100B-example run passes early.
    """
    if isinstance(step, jax.Array):
        return step.astype(jnp.float32) * batch_size
    return step * batch_size


def kernel_mask(params):
    """True for leaves named "kernel" (Dense/Conv weights), False elsewhere: big_vision's default
    weight-decay mask. params: any pytree of arrays whose path keys are names."""
    def is_kernel(path, _):
        last = path[-1] if path else None
        return getattr(last, "key", getattr(last, "name", None)) == "kernel"
    return jax.tree_util.tree_map_with_path(is_kernel, params)


def optimizer(schedule, batch_size, weight_decay=1e-4, grad_clip_norm=1.0,
              b1=0.9, b2=0.999, eps=1e-8, decay_mask=kernel_mask):
    """optax transformation for SigLIP training (see the module docstring for the update).

    schedule: a `Schedule` (examples seen -> learning rate); batch_size: examples per update, used
    to step the schedule in examples; b1, b2, eps: optax's scale_by_adam defaults; decay_mask: a
    pytree of bools or a function of the params giving one (default: kernels only);
    grad_clip_norm=None disables clipping.
    """
    if batch_size <= 0:
        raise ValueError(f"optimizer: batch_size must be positive, got {batch_size!r}")
    clip = [optax.clip_by_global_norm(grad_clip_norm)] if grad_clip_norm is not None else []
    return optax.chain(
        *clip,
        optax.scale_by_adam(b1=b1, b2=b2, eps=eps),
        optax.scale(schedule.peak_lr),
        optax.add_decayed_weights(weight_decay, mask=decay_mask),
        # Applied last so that it scales the decay term too; negative: descend.
        optax.scale_by_schedule(lambda count: -schedule.relative(examples_seen(count, batch_size))),
    )


def learning_rate(schedule, step, batch_size):
    """The learning rate `optimizer(schedule, batch_size)` applies at update `step` (0-based), for
    logging: schedule(step * batch_size)."""
    return schedule(examples_seen(step, batch_size))
