import jax
import jax.numpy as jnp
import numpy as np

from jaxgan.eager import outside_any_trace


def test_outside_any_trace_gives_concrete_values_under_jit_and_vmap():
    seen = []

    def f(x):
        value = outside_any_trace(lambda: jnp.sin(jnp.arange(3.0)))
        seen.append(np.asarray(value))  # a tracer here would raise
        return x + value

    out = jax.jit(jax.vmap(f))(jnp.zeros((2, 3)))
    np.testing.assert_allclose(seen[0], np.sin(np.arange(3.0)), rtol=1e-6)
    np.testing.assert_allclose(out, np.tile(np.sin(np.arange(3.0)), (2, 1)), rtol=1e-6)


def test_outside_any_trace_keeps_the_callers_x64_setting():
    """A fresh thread does not inherit `with jax.enable_x64(True)`: the reference data of the metrics would come out
    float32 where the caller asked for float64."""
    with jax.enable_x64(True):
        assert outside_any_trace(lambda: jnp.arange(3.0)).dtype == jnp.float64
    assert outside_any_trace(lambda: jnp.arange(3.0)).dtype == jnp.float32
