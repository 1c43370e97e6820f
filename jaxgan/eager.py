"""Eager evaluation of constants that are first needed while a function is being traced."""

from __future__ import annotations

import concurrent.futures
from typing import Callable, TypeVar

import jax

T = TypeVar("T")


def outside_any_trace(fn: Callable[[], T]) -> T:
    """`fn()` computed eagerly, with concrete arrays, even when called while `jit`, `vmap` or `grad` is tracing.

    JAX keeps its trace state per thread, so a fresh thread starts outside every trace. `jax.ensure_compile_time_eval`
    is not enough: under `vmap` with jax 0.11 the values it computes can still come out as batch tracers, and then
    converting them to numpy fails. Use it for values that are constants of the program (a shipped classifier's
    reference statistics, index tables) and are loaded lazily so that building a task stays cheap.
    """
    # the caller's thread-local settings (`with jax.enable_x64(True)`, `jax.default_device`) do not reach a new thread
    x64, device = jax.config.jax_enable_x64, jax.config.jax_default_device

    def with_callers_settings() -> T:
        with jax.enable_x64(x64), jax.default_device(device):
            return fn()

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(with_callers_settings).result()
