"""Data parallelism over devices and hosts: one mesh axis, batches sharded along it, the state replicated.

`data_mesh()` spans every device of every process (`jax.devices()`). Inside the compiled step the real batch and
G's noise, both drawn on device from the replicated state's key, are constrained to be sharded along their batch
axis (`shard_batch`); the training state is replicated. `jax.jit` then partitions the step: each device runs the
networks on its slice of the batch and XLA turns the means over the batch in the losses into all-reduces, so the
update is the single-device update up to the order of float sums. Random draws are partitionable
(`jax_threefry_partitionable`, on by default), so device i draws slice i of the very batch one device would draw.

Several hosts run the same program (`jax.distributed.initialize` first, see `jaxgan.main`): every process builds
the same initial state from the seed and `replicate` assembles the global arrays from it; no data crosses hosts
but the all-reduces, since the data is sampled on device.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def data_mesh(num_devices: int = 0) -> Mesh:
    """A 1-D mesh named `data` over the first `num_devices` devices of all processes (0: all of them).

    `jaxgan.train.make_mesh` checks a config's device count against the devices present before calling this.
    """
    devices = jax.devices()
    n = num_devices or len(devices)
    # Auto axes: XLA propagates the batch sharding through the networks from the constraints in `shard_batch`.
    return jax.make_mesh((n,), (DATA_AXIS,), (jax.sharding.AxisType.Auto,), devices=devices[:n])


def shard_batch(x: jax.Array, mesh: Mesh | None, axis: int = 0) -> jax.Array:
    """`x` constrained to be split along `axis` over the mesh's data axis (unchanged without a mesh).

    Used inside jitted code; under `jax.vmap` (seed sweeps) `axis` counts the axes of one run's array.
    """
    if mesh is None:
        return x
    spec = PartitionSpec(*([None] * axis), DATA_AXIS)
    return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, spec))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Every leaf of `tree` (identical on every process) as an array replicated over all of the mesh's devices."""
    sharding = replicated(mesh)
    if jax.process_count() == 1:
        return jax.device_put(tree, sharding)

    def global_array(x):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):  # typed PRNG keys travel as their key data
            data = global_array(jax.random.key_data(x))
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
        host = np.asarray(x)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree.map(global_array, tree)


def to_host(tree: Any) -> Any:
    """NumPy copies of the leaves, read from a local replica when an array spans other hosts.

    Typed PRNG keys have no NumPy form: they come back as single-device jax arrays.
    """

    def fetch(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            if not x.is_fully_replicated:
                raise ValueError(f"cannot read an array sharded across hosts ({x.sharding}) on one host")
            x = x.addressable_data(0)
        if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            return jax.device_put(x, jax.local_devices()[0])
        return np.asarray(x)

    return jax.tree.map(fetch, tree)


def is_primary() -> bool:
    """Whether this process writes the run's files (metrics, figures, eval.json): process 0 of the job."""
    return jax.process_index() == 0
