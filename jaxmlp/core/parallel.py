"""Data parallelism with JAX's own machinery: a 1-D device `Mesh`, `NamedSharding`, and `jax.distributed`.

The whole recipe: put params, optimizer state and the training set on every device
(replicated), and constrain each batch to be split along the mesh's "data" axis.
XLA's SPMD partitioner then runs each device on its slice and inserts the all-reduce
of the gradients itself: no hand-written collectives, and the same code runs on one
CPU, eight GPUs, or many hosts (after `initialize_distributed`).
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxmlp.errors import ConfigError

AXIS = "data"


def initialize_distributed(coordinator: str, num_processes: int, process_id: int) -> None:
    """Join a multi-process run (call before anything else touches JAX). CPU processes talk over gloo."""
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # used by CPU devices only
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes, process_id=process_id)


def make_mesh(num_devices: int | None, batch_size: int) -> Mesh:
    """A mesh over the first `num_devices` devices of the (possibly multi-host) run; all of them by default."""
    devices = jax.devices()
    n = num_devices or len(devices)
    if not 1 <= n <= len(devices):
        raise ConfigError(
            f"--devices {n}: this run has {len(devices)} device(s) ({devices[0].platform}); pick 1..{len(devices)}"
        )
    if batch_size % n:
        raise ConfigError(f"--batch-size {batch_size} does not split evenly over {n} devices; use a multiple of {n}")
    return Mesh(np.array(devices[:n]), (AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec(AXIS))


def put_replicated(tree, mesh: Mesh | None):
    """Every leaf of `tree` (host arrays, identical on every process) as a global array on all mesh devices;
    without a mesh, on the default device."""
    if mesh is None:
        return jax.device_put(tree)
    sharding = replicated(mesh)

    def put(x):
        x = np.asarray(x) if not isinstance(x, jax.Array) else x
        return jax.make_array_from_callback(x.shape, sharding, lambda index: np.asarray(x[index]))

    return jax.tree.map(put, tree)


def to_host(tree):
    """NumPy copies of (replicated) arrays, read from this process's own shard: safe on any number of hosts."""
    return jax.tree.map(lambda a: np.asarray(a.addressable_data(0)) if isinstance(a, jax.Array) else a, tree)
