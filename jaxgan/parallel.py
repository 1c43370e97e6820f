"""Data parallelism over devices and hosts: one mesh axis, batches sharded along it, the state replicated.

`data_mesh()` spans every device of every process (`jax.devices()`). Inside the compiled step the real batch and
G's noise, both drawn on device from the replicated state's key, are constrained to be sharded along their batch
axis (`shard_batch`); the training state is replicated. `jax.jit` then partitions the step: each device runs the
networks on its slice of the batch and XLA turns the means over the batch in the losses into all-reduces, so the
update is the single-device update up to the order of float sums. Random draws are partitionable
(`jax_threefry_partitionable`, on by default), so device i draws slice i of the very batch one device would draw.

Several hosts run the same program (`jax.distributed.initialize` first, see `jaxgan.main`): every process builds
the same initial state from the seed and `replicate` assembles the global arrays from it; no data crosses hosts
but the all-reduces, since the data is sampled on device, and the host reads results from its own replica
(`to_host`), so a dispatch adds no cross-host traffic.

What the all-reduces cost across processes on CPU: XLA combines the reductions of a gradient into one tuple
all-reduce, but its CPU runtime executes a tuple as one collective call per buffer (per parameter leaf, and the
real and fake terms of D's loss apart), and with gloo each call is a round trip between the processes: 0.1-0.3 ms
when the cores are free, a scheduler tick (~4 ms) when they are oversubscribed. The unrolled ring8 step (K = 10)
does 30 all-reduces of 255 buffers per update step, so two localhost processes run it at ~1 step/s on a loaded
2-core machine where one process runs 60-100 steps/s (`scripts/bench_multihost.py` measures both). A gradient
computed by `batch_mean_value_and_grad` is reduced as one flat buffer instead of one per leaf.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
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

    Used inside jitted code; under `jax.vmap` (seed sweeps) `axis` counts the axes of one run's array. Inside
    `jax.shard_map` over the data axis (`batch_mean_value_and_grad`) `x` is already one device's slice: unchanged.
    """
    if mesh is None or DATA_AXIS in jax.sharding.get_abstract_mesh().manual_axes:
        return x
    spec = PartitionSpec(*([None] * axis), DATA_AXIS)
    return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, spec))


def batch_mean_value_and_grad(fn: Callable[..., jax.Array], mesh: Mesh | None) -> Callable[..., tuple[jax.Array, Any]]:
    """`jax.value_and_grad(fn)` for a loss `fn(params, *batch)` that is a mean over the batch (axis 0 of every
    leaf of every `batch` argument), with the gradient reduced over the mesh's data axis as ONE flat buffer.

    Without a mesh it is `jax.value_and_grad(fn)`. With one, each device evaluates `fn` and its gradient on its
    slice of the batch (`jax.shard_map`; `params` enter as one flat vector) and a single `pmean` of
    [gradient, loss] averages them: one collective call per gradient, where XLA's partitioning of a batch mean
    reduces every parameter leaf (and each term of the loss) apart. The backward pass through this gradient
    (an unrolled D step differentiated by G) likewise reduces one flat cotangent.

    The mean of the per-device means is the batch mean since the batch divides evenly over the devices, so the
    result equals the one-device gradient up to the order of float sums, provided nothing in `fn` couples the
    examples of the batch (batch norm in training mode, minibatch statistics) or draws random numbers, which
    each device would draw alike for its slice. Use it only for such losses; `shard_batch` inside `fn` is a no-op.
    """
    if mesh is None:
        return jax.value_and_grad(fn)

    def value_and_grad(params: Any, *batch: Any) -> tuple[jax.Array, Any]:
        flat, unravel = ravel_pytree(params)

        def local(flat: jax.Array, *batch: Any) -> tuple[jax.Array, jax.Array]:
            # Varying over the data axis from here: the local gradient is not reduced leaf by leaf.
            value, grads = jax.value_and_grad(lambda p: fn(unravel(p), *batch))(
                jax.lax.pcast(flat, DATA_AXIS, to="varying")
            )
            packed = jax.lax.pmean(jnp.concatenate([grads, value.reshape(1).astype(grads.dtype)]), DATA_AXIS)
            return packed[-1].astype(value.dtype), packed[:-1]

        split = tuple(jax.tree.map(lambda _: PartitionSpec(DATA_AXIS), b) for b in batch)
        value, grads = jax.shard_map(
            local, mesh=mesh, in_specs=(PartitionSpec(), *split), out_specs=(PartitionSpec(), PartitionSpec())
        )(flat, *batch)
        return value, unravel(grads)

    return value_and_grad


def with_host_device_count(xla_flags: str, devices: int) -> str:
    """`xla_flags` (an XLA_FLAGS value) asking for `devices` CPU devices in place of any count it gave, its other
    flags kept: how a process started on a CPU simulates a multi-device machine."""
    kept = [f for f in xla_flags.split() if not f.startswith("--xla_force_host_platform_device_count")]
    return " ".join([*kept, f"--xla_force_host_platform_device_count={devices}"])


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


def process_values(value: int) -> list[int]:
    """`value` of every process of the job, process 0 first (`[value]` with one process).

    A collective: every process of a multi-process job must call it at the same point, and waits for the others.
    """
    if jax.process_count() == 1:
        return [int(value)]
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(np.int64(value))).ravel().tolist()
