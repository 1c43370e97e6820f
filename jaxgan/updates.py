"""Update rules for the GAN game: pure `step(state, batch) -> (state, metrics)` functions.

Each rule is a factory that closes over the `Game` and its hyperparameters and returns an `UpdateRule`:
the step function and the number of real minibatches one step consumes (`batch["real"]` has shape
`[num_real_batches, batch_size, ...]`). Noise is drawn inside the step from `step_keys(state)`, so a step is
a pure function of (state, batch) and can be fused by `lax.scan` without host round-trips.

* `alternating_step`: n_critic = `d_steps` discriminator steps, then one generator step against the new D.
* `simultaneous_step`: both players take a gradient step from the same point (θ_G, θ_D).
* `unrolled_step`: Metz et al. 2016. D takes its ordinary step; G minimises its loss against D after `k`
  further optimizer steps, θ_D^{i+1} = θ_D^i - η·Opt(∇_D L_D(θ_G, θ_D^i)), differentiating through all of
  them, the optimizer's moments included.
"""

from __future__ import annotations

import difflib
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxgan.game import Game, discriminator_step, generate, generator_loss
from jaxgan.state import TrainState, step_keys

Batch = dict[str, jax.Array]
Metrics = dict[str, jax.Array]
StepFn = Callable[[TrainState, Batch], tuple[TrainState, Metrics]]


class UpdateRule(NamedTuple):
    step: StepFn
    num_real_batches: int


def _generator_update(game: Game, state: TrainState, grads: Any) -> tuple[Any, Any]:
    updates, g_opt_state = game.g_optimizer.update(grads, state.g_opt_state, state.g_params)
    return optax.apply_updates(state.g_params, updates), g_opt_state


def _advance(state: TrainState, g: tuple[Any, Any, Any], d: tuple[Any, Any, Any]) -> TrainState:
    """The state after one step: g = (params, opt_state, model_state) of G, d likewise for D."""
    return state.replace(
        step=state.step + 1,
        g_params=g[0],
        g_opt_state=g[1],
        g_model_state=g[2],
        d_params=d[0],
        d_opt_state=d[1],
        d_model_state=d[2],
    )


def alternating_step(game: Game, d_steps: int = 1) -> UpdateRule:
    """`d_steps` discriminator steps (fresh real batch and noise each), then one generator step.

    With `d_steps=5` this is the n_critic schedule of WGAN (Arjovsky et al. 2017) and WGAN-GP
    (Gulrajani et al. 2017). The generator's step sees the discriminator after its `d_steps` updates.
    """
    if d_steps < 1:
        raise ValueError(f"d_steps must be >= 1, got {d_steps}")

    def step(state: TrainState, batch: Batch) -> tuple[TrainState, Metrics]:
        _, noise_key = step_keys(state)
        z = game.sample_noise(noise_key, d_steps + 1, batch["real"].shape[1])  # [d_steps + 1, B, z_dim]
        fake, g_model_state = generate(game, state.g_params, state.g_model_state, z[:d_steps])
        fake = jax.lax.stop_gradient(fake)

        def d_body(carry, xs):
            real, fake_i = xs
            d_params, d_opt_state, d_model_state, loss = discriminator_step(game, *carry, real, fake_i)
            return (d_params, d_opt_state, d_model_state), loss

        (d_params, d_opt_state, d_model_state), d_losses = jax.lax.scan(
            d_body, (state.d_params, state.d_opt_state, state.d_model_state), (batch["real"], fake)
        )

        def g_objective(g_params):
            fake_g, new_g_model_state = generate(game, g_params, g_model_state, z[d_steps])
            return generator_loss(game, d_params, d_model_state, fake_g), new_g_model_state

        (g_loss, g_model_state), g_grads = jax.value_and_grad(g_objective, has_aux=True)(state.g_params)
        g_params, g_opt_state = _generator_update(game, state, g_grads)
        new_state = _advance(state, (g_params, g_opt_state, g_model_state), (d_params, d_opt_state, d_model_state))
        return new_state, {"d_loss": d_losses[-1], "g_loss": g_loss}

    return UpdateRule(step, d_steps)


def simultaneous_step(game: Game) -> UpdateRule:
    """Both players step from the same point: θ_G ← θ_G - Opt(∇_G L_G), θ_D ← θ_D - Opt(∇_D L_D).

    The generator's loss is taken on the very samples the discriminator is trained on.
    """

    def step(state: TrainState, batch: Batch) -> tuple[TrainState, Metrics]:
        _, noise_key = step_keys(state)
        z = game.sample_noise(noise_key, batch["real"].shape[1])

        def g_objective(g_params):
            fake, g_model_state = generate(game, g_params, state.g_model_state, z)
            return generator_loss(game, state.d_params, state.d_model_state, fake), (fake, g_model_state)

        (g_loss, (fake, g_model_state)), g_grads = jax.value_and_grad(g_objective, has_aux=True)(state.g_params)
        d_params, d_opt_state, d_model_state, d_loss = discriminator_step(
            game, state.d_params, state.d_opt_state, state.d_model_state, batch["real"][0], jax.lax.stop_gradient(fake)
        )
        g_params, g_opt_state = _generator_update(game, state, g_grads)
        new_state = _advance(state, (g_params, g_opt_state, g_model_state), (d_params, d_opt_state, d_model_state))
        return new_state, {"d_loss": d_loss, "g_loss": g_loss}

    return UpdateRule(step, 1)


def unrolled_step(
    game: Game,
    unroll_steps: int,
    same_batch: bool = True,
    stop_gradient: bool = False,
    remat: bool = True,
) -> UpdateRule:
    """Unrolled GAN (Metz, Poole, Pfau, Sohl-Dickstein 2016, eq. 6–7).

    The surrogate generator objective is f_K(θ_G, θ_D) = L_G(θ_G, θ_D^K) with

        θ_D^0 = θ_D,   (θ_D^{i+1}, s^{i+1}) = Opt(θ_D^i, s^i, ∇_{θ_D} L_D(θ_G, θ_D^i)),

    where s is D's optimizer state (Adam's moments and count), so dθ_D^K/dθ_G includes the second-order
    terms through every step and through the moments. Adam must have `eps_root > 0`: d√v/dv is infinite at
    v = 0. The discriminator's own update is the ordinary one, θ_D ← θ_D^1, so when it shares its minibatch
    with the unroll (`same_batch`, the paper's choice) it is the first unrolled step and is computed once.

    Args:
      game: the game.
      unroll_steps: K. K = 0 is exactly the simultaneous update.
      same_batch: use one minibatch (real and noise) for all K steps, as in the paper; otherwise step i uses
        real batch i and fresh noise, and G's final loss is taken on the first noise batch.
      stop_gradient: the first-order ablation: G's gradient is ∂L_G/∂θ_G at the fixed θ_D^K, with no
        backpropagation through the unroll.
      remat: rematerialise each unrolled step in the backward pass, so memory does not grow with K beyond
        the per-step carry (D's parameters and optimizer state).
    """
    if unroll_steps < 0:
        raise ValueError(f"unroll_steps must be >= 0, got {unroll_steps}")
    num_batches = 1 if same_batch else max(unroll_steps, 1)

    def step(state: TrainState, batch: Batch) -> tuple[TrainState, Metrics]:
        _, noise_key = step_keys(state)
        real = batch["real"]  # [num_batches, B, ...]
        z = game.sample_noise(noise_key, num_batches, real.shape[1])

        def unrolled_objective(g_params):
            fake, g_model_state = generate(game, g_params, state.g_model_state, z)  # [num_batches, B, ...]
            # With K = 0 nothing is unrolled and D's update must not see G's gradient path either.
            unroll_fake = jax.lax.stop_gradient(fake) if (stop_gradient or unroll_steps == 0) else fake
            first = discriminator_step(
                game, state.d_params, state.d_opt_state, state.d_model_state, real[0], unroll_fake[0]
            )

            def d_body(carry, i):
                d_params, d_opt_state, d_model_state, _ = discriminator_step(
                    game, *carry, real[i % num_batches], unroll_fake[i % num_batches]
                )
                return (d_params, d_opt_state, d_model_state), None

            if remat:
                d_body = jax.checkpoint(d_body)
            if unroll_steps == 0:
                d_params_k, d_model_state_k = state.d_params, state.d_model_state
            else:
                (d_params_k, _, d_model_state_k), _ = jax.lax.scan(
                    d_body, first[:3], jnp.arange(1, unroll_steps)
                )
            g_loss = generator_loss(game, d_params_k, d_model_state_k, fake[0])
            return g_loss, (jax.lax.stop_gradient(first), g_model_state)

        (g_loss, (first, g_model_state)), g_grads = jax.value_and_grad(unrolled_objective, has_aux=True)(
            state.g_params
        )
        d_params, d_opt_state, d_model_state, d_loss = first
        g_params, g_opt_state = _generator_update(game, state, g_grads)
        new_state = _advance(state, (g_params, g_opt_state, g_model_state), (d_params, d_opt_state, d_model_state))
        return new_state, {"d_loss": d_loss, "g_loss": g_loss}

    return UpdateRule(step, num_batches)


UPDATE_RULES = ("alternating", "simultaneous", "unrolled")


def make_update_rule(game: Game, config: Any) -> UpdateRule:
    """The update rule named by `config.update_rule`, with its options from the config."""
    name = config.update_rule
    if name == "alternating":
        return alternating_step(game, d_steps=config.d_steps)
    if name == "simultaneous":
        return simultaneous_step(game)
    if name == "unrolled":
        return unrolled_step(
            game,
            config.unroll_steps,
            same_batch=config.unroll_same_batch,
            stop_gradient=config.unroll_stop_gradient,
            remat=config.unroll_remat,
        )
    close = difflib.get_close_matches(name, UPDATE_RULES, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise ValueError(f"unknown update rule '{name}'; allowed: {', '.join(sorted(UPDATE_RULES))}{hint}")
