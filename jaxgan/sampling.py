"""Drawing from a trained generator outside training: its evaluation draws and walks through its latent space.

`sample_images` evaluates G as a run's evaluations do (`jaxgan.metrics.evaluations`), on draw `draw` of the run's
evaluation noise; `interpolate` gives the paths of a latent walk. `scripts/sample.py` is their command line.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

GENERATOR_WEIGHTS = ("raw", "ema")


def check_generator(generator: str, ema_decay: float) -> None:
    """One-line errors, before anything is restored, for a `--generator` a run cannot serve: the moving average of
    G exists only in a run with `ema_decay` > 0."""
    from jaxgan.config import ConfigError

    if generator not in GENERATOR_WEIGHTS:
        raise ConfigError(f"--generator={generator}: expected one of {', '.join(GENERATOR_WEIGHTS)}")
    if generator == "ema" and not ema_decay:
        raise ConfigError("--generator=ema: the run keeps no moving average of G (its ema_decay is 0)")


def interpolate(start: jax.Array, end: jax.Array, steps: int, path: str = "slerp") -> jax.Array:
    """[..., steps, d]: `steps` points from `start` to `end` ([..., d] each), both ends included. `slerp` moves along
    the great circle, sin((1 − t)Ω)/sin Ω · a + sin(tΩ)/sin Ω · b with Ω the angle between a and b, and its norm
    from |a| to |b| linearly (so for |a| = |b| it is the textbook slerp); `linear` is (1 − t) a + t b."""
    if path not in ("slerp", "linear"):
        raise ValueError(f"path must be 'slerp' or 'linear', got {path!r}")
    t = jnp.linspace(0.0, 1.0, steps)[:, None]
    a, b = start[..., None, :], end[..., None, :]
    if path == "linear":
        return (1 - t) * a + t * b
    norm_a, norm_b = (jnp.linalg.norm(x, axis=-1, keepdims=True) for x in (a, b))
    unit_a, unit_b = a / norm_a, b / norm_b
    omega = jnp.arccos(jnp.clip(jnp.sum(unit_a * unit_b, axis=-1, keepdims=True), -1.0, 1.0))
    sin = jnp.sin(omega)
    parallel = sin < 1e-6  # (anti)parallel ends: no unique great circle; the chord of the unit vectors, rescaled
    safe = jnp.where(parallel, 1.0, sin)
    direction = jnp.where(
        parallel, (1 - t) * unit_a + t * unit_b, (jnp.sin((1 - t) * omega) * unit_a + jnp.sin(t * omega) * unit_b) / safe
    )
    return direction * ((1 - t) * norm_a + t * norm_b)


def sample_images(game, state, num_samples: int, draw: int, truncation: float, generator: str,
                  walk: int = 0, path: str = "slerp") -> tuple[np.ndarray, np.ndarray | None]:  # fmt: skip
    """(images in [0, 1], the classes G was asked for or None) of the run's G on draw `draw` of its evaluation noise:
    [num_samples, H, W, C], or with `walk` = K ≥ 2, [num_samples // K, K, H, W, C] along paths in z."""
    from jaxgan.conditioning import Labelled, data_of
    from jaxgan.data.images import to_unit_range
    from jaxgan.game import generate
    from jaxgan.metrics.evaluations import eval_generator_key, eval_noise, generate_ema, requested_classes

    if generator not in GENERATOR_WEIGHTS:
        raise ValueError(f"generator must be 'raw' or 'ema', got {generator!r}")
    if draw:  # as scripts.notes.mixture_draws draws: draw 0 is the run's own
        state = state.replace(key=jax.random.fold_in(state.key, draw))
    if walk:
        rows = num_samples // walk
        ends = eval_noise(game, state, 2 * rows, truncation)
        start, end = ends[:rows], ends[rows:]
        steps = interpolate(data_of(start), data_of(end), walk, path)
        z = jax.tree.map(lambda x: jnp.repeat(x[:, None], walk, axis=1), start)  # each row keeps its start's codes
        z = z.replace(data=steps) if isinstance(z, Labelled) else steps
    else:
        z = eval_noise(game, state, num_samples, truncation)

    @jax.jit
    def draw_from(state, z):
        if generator == "ema":
            return generate_ema(game, state, z)
        return data_of(generate(game, state.g_params, state.g_model_state, z, train=False, key=eval_generator_key(state))[0])

    images = np.asarray(to_unit_range(draw_from(state, z)))
    classes = requested_classes(z)
    return images, None if classes is None else np.asarray(classes)
