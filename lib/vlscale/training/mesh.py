"""Where arrays live: the device mesh (data × fsdp) and the sharding of parameters and batches.

One rule serves every machine. The batch is split over all devices (both axes). A parameter is
split over `fsdp` along its largest dimension that the axis divides (big_vision's "fsdp" rule), and
replicated otherwise. With fsdp = 1 this is plain data parallelism; on one CPU device everything is
replicated on that device.
"""
from __future__ import annotations

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

AXES = ("data", "fsdp")


def make_mesh(data: int = -1, fsdp: int = 1, devices=None) -> Mesh:
    """A (data, fsdp) mesh over `devices` (default: all devices of all processes).

    data = -1 takes every device that fsdp leaves. The axes are Auto (jax.make_mesh in JAX 0.10
    defaults to Explicit axes, which shard_map and jit's in/out shardings here do not use).
    """
    devices = list(jax.devices() if devices is None else devices)
    n = len(devices)
    if fsdp < 1 or n % fsdp:
        raise ValueError(f"train.mesh.fsdp = {fsdp} must be >= 1 and divide the {n} devices")
    if data == -1:
        data = n // fsdp
    if data < 1 or data * fsdp != n:
        raise ValueError(f"train.mesh: data = {data} × fsdp = {fsdp} must equal the {n} devices")
    return jax.make_mesh((data, fsdp), AXES, axis_types=(AxisType.Auto,) * 2, devices=devices)


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over every device of the mesh."""
    return NamedSharding(mesh, P(AXES))


def param_spec(shape: tuple[int, ...], fsdp: int) -> P:
    """fsdp rule: split the largest dimension divisible by `fsdp`; replicate small or indivisible arrays."""
    if fsdp == 1 or not shape:
        return P()
    for dim in np.argsort(shape)[::-1]:
        if shape[dim] % fsdp == 0 and shape[dim] >= fsdp:
            spec = [None] * len(shape)
            spec[dim] = "fsdp"
            return P(*spec)
    return P()


def tree_shardings(mesh: Mesh, abstract_tree):
    """NamedShardings for every leaf of a pytree of arrays or ShapeDtypeStructs, by the fsdp rule."""
    fsdp = mesh.shape["fsdp"]
    return jax.tree.map(lambda a: NamedSharding(mesh, param_spec(tuple(a.shape), fsdp)), abstract_tree)


def global_batch(mesh: Mesh, local: dict) -> dict:
    """Assemble each process's part of the batch into global arrays split over the mesh.

    local: {name: numpy [B_local, ...]} as this process's input pipeline produced it; the global
    batch is the processes' parts in process order (B_global = B_local × process_count).
    """
    sharding = batch_sharding(mesh)
    return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v)) for k, v in local.items()}
