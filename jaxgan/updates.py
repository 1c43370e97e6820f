"""Update rules for the GAN game: pure `step(state, batch) -> (state, metrics)` functions.

Each rule is a factory that closes over the `Game` and its hyperparameters and returns an `UpdateRule`: the step,
the number of real minibatches one step consumes (`batch["real"]` has shape `[num_real_batches, batch, ...]`) and
the `init` that makes a state the step accepts (rules with state of their own, such as optimism or an EMA of G,
extend it). Noise and penalty points are drawn inside the step from `step_keys(state)`, so a step is a pure
function of (state, batch) and `lax.scan` fuses many of them without host round-trips.

Below, L_G and L_D are the losses each player minimises and v = (−∇_{θ_G} L_G, −∇_{θ_D} L_D) is the joint field
of the game (`jaxgan.dynamics.vector_field`, the one implementation): plain simultaneous descent is θ ← θ + η v.

* `alternating_step`: n_critic = `d_steps` discriminator steps, then one generator step against the new D.
* `simultaneous_step`: both players step from the same point.
* `unrolled_step`: Metz et al. 2016. D takes its ordinary step; G minimises its loss against D after K further
  optimizer steps, differentiating through all of them, the optimizer's moments included.
* `extragradient_step`: both players step with the gradient taken at a look-ahead point (Korpelevich 1976;
  Gidel et al. 2019).
* `optimistic_step`: optimistic gradient descent, the gradient 2 v_t − v_{t−1} (Daskalakis et al. 2018).
* `consensus_step`: both players follow v − γ ∇(½‖v‖²) (Mescheder, Nowozin, Geiger 2017).
* `sga_step`: symplectic gradient adjustment v − λ Aᵀv, A the antisymmetric part of ∂v (Balduzzi et al. 2018).
* `with_generator_ema`: wraps any rule to keep an exponential moving average of G's parameters.
* `with_progressive_growing`: wraps any rule to grow progressive players with the step (Karras et al. 2018).
* `with_began_equilibrium`: wraps any rule to run BEGAN's loss with its controlled k_t (Berthelot et al. 2017).
* `with_lazy_regularization`: wraps any rule with StyleGAN2's lazy R1 and path length steps (Karras et al. 2020).
* `with_coarse_level_updates`: wraps any rule with more steps of LapGAN's coarsest level alone (Denton et al. 2015).
Two time-scale updates (TTUR, Heusel et al. 2017) need no rule: give the players different learning rates.
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxgan import energy, losses, penalties
from jaxgan.conditioning import Labelled, data_of, logits_of
from jaxgan.dynamics import vector_field_and_losses
from jaxgan.energy import BeganController
from jaxgan.models import DISCRIMINATORS, example_rank, lapgan, progan, stylegan
from jaxgan.game import (
    Game, discriminate, discriminator_logits_fn, discriminator_loss, discriminator_step, generate, generator_loss,
    update_discriminator,
)  # fmt: skip
from jaxgan.registry import check_count, unknown_name
from jaxgan.state import TrainState, step_keys

Batch = dict[str, jax.Array]
Metrics = dict[str, jax.Array]
StepFn = Callable[[TrainState, Batch], tuple[TrainState, Metrics]]
InitFn = Callable[[jax.Array, jax.Array], TrainState]


class UpdateRule(NamedTuple):
    """A rule's `step`, how many real batches it takes, its `init` (key, example real batch) -> TrainState, and
    `due`, for rules with periodic extra work (StyleGAN2's lazy regularizers): `due(t)` names the extras that run at
    step t. Such a step also takes `due=` (a static tuple of names) and then runs exactly those, chosen on the host;
    without it, it decides on device with `lax.cond` from `state.step`. Both give the same result; the host's choice
    keeps convolutions out of XLA conditionals, which a CPU runs about 20× slower (BUILD_NOTES.md, "StyleGAN2's
    lazy regularizers on a CPU"). `game_at(state)`, for rules whose objective has state of its own (BEGAN's k_t), is
    the game their next step plays at `state`, e.g. for the logged Jacobian eigenvalues; None: the rule's game.
    A wrapper keeps both (`rule._replace(step=..., init=...)`) and passes `due` to the step it wraps."""

    step: StepFn
    num_real_batches: int
    init: InitFn
    due: Callable[[int], tuple[str, ...]] | None = None
    game_at: Callable[[TrainState], Game] | None = None


def _generator_update(game: Game, state: TrainState, grads: Any) -> tuple[Any, Any]:
    updates, g_opt_state = game.g_optimizer.update(grads, state.g_opt_state, state.g_params)
    return optax.apply_updates(state.g_params, updates), g_opt_state


def _discriminator_update(game: Game, state: TrainState, grads: Any) -> tuple[Any, Any]:
    return update_discriminator(game, state.d_params, state.d_opt_state, grads)


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


def _penalty_key(state: TrainState, i: int | jax.Array) -> jax.Array:
    """The penalty key of D's i-th step within this update step."""
    return jax.random.fold_in(step_keys(state).penalty, i)


def _g_key(state: TrainState, i: int) -> jax.Array:
    """The key of G's own randomness (StyleGAN's noise inputs) for its i-th forward pass within this step."""
    return jax.random.fold_in(step_keys(state).generator, i)


def _generate_batches(
    game: Game, g_params: Any, g_model_state: Any, z: Any, keys: list[jax.Array]
) -> tuple[Any, Any]:
    """G's samples for each of the leading axis's batches of `z` ([n, B, ...]), one forward pass per batch with
    `keys[i]` and the model state carried from pass to pass: batch norm normalises over each batch of B (as a
    training step that draws its batches one by one does), and its running averages take n updates."""
    fakes = []
    for i, key in enumerate(keys):
        fake, g_model_state = generate(game, g_params, g_model_state, jax.tree.map(lambda x: x[i], z), key=key)
        fakes.append(fake)
    return jax.tree.map(lambda *f: jnp.stack(f), *fakes), g_model_state


def _loop(body: Callable, carry: Any, xs: Any, length: int, unroll: bool) -> tuple[Any, Any]:
    """`lax.scan(body, carry, xs)`, or with `unroll` the same steps traced one after another with no loop at all:
    XLA's CPU backend runs convolutions inside a loop 16–27× slower (measured on the DCGAN-28 alternating step:
    1.43 s with its single D step in a `lax.scan`, 0.16 s without)."""
    if not unroll:
        return jax.lax.scan(body, carry, xs)
    if length == 0:
        return carry, None
    outputs = []
    for i in range(length):
        carry, out = body(carry, jax.tree.map(lambda x: x[i], xs))
        outputs.append(out)
    return carry, (None if outputs[0] is None else jax.tree.map(lambda *o: jnp.stack(o), *outputs))


def _discriminator_steps(
    game: Game,
    state: TrainState,
    start: tuple[Any, Any, Any],
    real: jax.Array | Labelled,
    fake: jax.Array | Labelled,
    steps: range,
    *,
    unroll: bool,
    remat: bool = False,
) -> tuple[tuple[Any, Any, Any], jax.Array]:
    """D's optimizer steps i ∈ `steps` from `start` = (params, opt_state, model_state), step i on batch i mod n of
    `real` and `fake` ([n, B, ...]) with penalty key i. `remat` recomputes each step in the backward pass (memory
    flat in the number of steps when G's gradient flows through them). Returns the end point and the losses."""
    n = real.shape[0]
    if fake.shape[0] != n:
        raise ValueError(f"D's steps need as many fake batches as real ones, got {fake.shape[0]} and {n}")

    def body(carry, i):
        *end, loss = discriminator_step(game, *carry, real[i % n], fake[i % n], _penalty_key(state, i))
        return tuple(end), loss

    indices = jnp.arange(steps.start, steps.stop, dtype=jnp.int32)
    return _loop(jax.checkpoint(body) if remat else body, start, indices, len(steps), unroll)


def alternating_step(game: Game, d_steps: int = 1, unroll_inner: bool = False) -> UpdateRule:
    """`d_steps` discriminator steps (fresh real batch and noise each), then one generator step.

    With `d_steps=5` this is the n_critic schedule of WGAN (Arjovsky et al. 2017) and WGAN-GP
    (Gulrajani et al. 2017). The generator's step sees the discriminator after its `d_steps` updates.
    `unroll_inner` unrolls the loop over D's steps (the same math; for convolutional players on a CPU, whose XLA
    backend runs convolutions inside loops 16–27× slower).
    """
    check_count("d_steps", d_steps, 1)

    def step(state: TrainState, batch: Batch) -> tuple[TrainState, Metrics]:
        if batch["real"].shape[0] != d_steps:
            raise ValueError(
                f"alternating_step with d_steps={d_steps} needs batch['real'] of {d_steps} real batches "
                f"([d_steps, B, ...]), got {batch['real'].shape[0]}"
            )
        z = game.sample_noise(step_keys(state).noise, d_steps + 1, batch["real"].shape[1])  # [d_steps+1, B, z]
        keys = [_g_key(state, 0 if i == 0 else i + 1) for i in range(d_steps)]  # 1 is G's step's
        fake, g_model_state = _generate_batches(
            game, state.g_params, state.g_model_state, game.with_real(z[:d_steps], batch["real"]), keys
        )
        fake = jax.lax.stop_gradient(fake)

        start = (state.d_params, state.d_opt_state, state.d_model_state)
        (d_params, d_opt_state, d_model_state), d_losses = _discriminator_steps(
            game, state, start, batch["real"], fake, range(d_steps), unroll=unroll_inner
        )

        def g_objective(g_params):
            z_g = game.with_real(z[d_steps], batch["real"][-1])
            fake_g, new_g_model_state = generate(game, g_params, g_model_state, z_g, key=_g_key(state, 1))
            return generator_loss(game, d_params, d_model_state, fake_g, batch["real"][-1]), new_g_model_state

        (g_loss, g_model_state), g_grads = jax.value_and_grad(g_objective, has_aux=True)(state.g_params)
        g_params, g_opt_state = _generator_update(game, state, g_grads)
        new_state = _advance(state, (g_params, g_opt_state, g_model_state), (d_params, d_opt_state, d_model_state))
        return new_state, {"d_loss": d_losses[-1], "g_loss": g_loss}

    return UpdateRule(step, d_steps, game.init)


def simultaneous_step(game: Game) -> UpdateRule:
    """Both players step from the same point: θ_G ← θ_G − Opt(∇_G L_G), θ_D ← θ_D − Opt(∇_D L_D).

    The generator's loss is taken on the very samples the discriminator is trained on.
    """

    def step(state: TrainState, batch: Batch) -> tuple[TrainState, Metrics]:
        real = batch["real"][0]
        z = game.with_real(game.sample_noise(step_keys(state).noise, real.shape[0]), real)

        def g_objective(g_params):
            fake, g_model_state = generate(game, g_params, state.g_model_state, z, key=_g_key(state, 0))
            return generator_loss(game, state.d_params, state.d_model_state, fake, real), (fake, g_model_state)

        (g_loss, (fake, g_model_state)), g_grads = jax.value_and_grad(g_objective, has_aux=True)(state.g_params)
        d_params, d_opt_state, d_model_state, d_loss = discriminator_step(
            game, state.d_params, state.d_opt_state, state.d_model_state, real, jax.lax.stop_gradient(fake),
            _penalty_key(state, 0),
        )  # fmt: skip
        g_params, g_opt_state = _generator_update(game, state, g_grads)
        new_state = _advance(state, (g_params, g_opt_state, g_model_state), (d_params, d_opt_state, d_model_state))
        return new_state, {"d_loss": d_loss, "g_loss": g_loss}

    return UpdateRule(step, 1, game.init)


def unrolled_step(
    game: Game,
    unroll_steps: int,
    same_batch: bool = True,
    stop_gradient: bool = False,
    remat: bool = True,
    unroll_inner: bool = False,
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
      unroll_inner: unroll the loop over the K steps in the compiled program (the same math; for convolutional
        players on a CPU, whose XLA backend runs convolutions inside loops 16–27× slower).
    """
    check_count("unroll_steps", unroll_steps, 0)
    num_batches = 1 if same_batch else max(unroll_steps, 1)

    def step(state: TrainState, batch: Batch) -> tuple[TrainState, Metrics]:
        real = batch["real"]  # [num_batches, B, ...]
        z = game.with_real(game.sample_noise(step_keys(state).noise, num_batches, real.shape[1]), real)

        def unrolled_objective(g_params):
            keys = [_g_key(state, i) for i in range(num_batches)]
            fake, g_model_state = _generate_batches(game, g_params, state.g_model_state, z, keys)  # [num_batches, B, ...]
            # With K = 0 nothing is unrolled and D's update must not see G's gradient path either.
            unroll_fake = jax.lax.stop_gradient(fake) if (stop_gradient or unroll_steps == 0) else fake
            first = discriminator_step(
                game, state.d_params, state.d_opt_state, state.d_model_state, real[0], unroll_fake[0],
                _penalty_key(state, 0),
            )  # fmt: skip

            if unroll_steps == 0:
                d_params_k, d_model_state_k = state.d_params, state.d_model_state
            else:
                (d_params_k, _, d_model_state_k), _ = _discriminator_steps(
                    game, state, first[:3], real, unroll_fake, range(1, unroll_steps), unroll=unroll_inner, remat=remat
                )
            g_loss = generator_loss(game, d_params_k, d_model_state_k, fake[0], real[0])
            return g_loss, (jax.lax.stop_gradient(first), g_model_state)

        (g_loss, (first, g_model_state)), g_grads = jax.value_and_grad(unrolled_objective, has_aux=True)(
            state.g_params
        )
        d_params, d_opt_state, d_model_state, d_loss = first
        g_params, g_opt_state = _generator_update(game, state, g_grads)
        new_state = _advance(state, (g_params, g_opt_state, g_model_state), (d_params, d_opt_state, d_model_state))
        return new_state, {"d_loss": d_loss, "g_loss": g_loss}

    return UpdateRule(step, num_batches, game.init)


# -------------------------------------------------------------------------------------------------------------
# Rules built on the joint gradient field v(θ_G, θ_D).
# -------------------------------------------------------------------------------------------------------------


def joint_field_fn(game: Game, state: TrainState, batch: Batch) -> tuple[Callable, Callable[[], tuple[Any, Any]]]:
    """`(field, advance_model_state)` on this step's batch, noise and keys.

    `field(params) -> (v, (g_loss, d_loss))` for params = (θ_G, θ_D) is `jaxgan.dynamics.vector_field`: D's part
    keeps its dependence on θ_G through the fake samples, so derivatives of v (consensus, SGA) see the interaction
    terms. Model state (batch-norm running averages, spectral-norm vectors) is held at its start-of-step value
    while the field and its derivatives are taken, so v stays a deterministic function of the parameters (batch
    norm normalises with the batch's own statistics, as in any training step); `advance_model_state()` then gives
    (G's, D's) model state after one forward pass of both players at the start point, as a simultaneous step's
    would be. Stateless models skip that pass.
    """
    real = batch["real"][0]
    z = game.with_real(game.sample_noise(step_keys(state).noise, real.shape[0]), real)
    key = _penalty_key(state, 0)

    def field(params):
        return vector_field_and_losses(
            game, *params, real, z, key=key, g_model_state=state.g_model_state, d_model_state=state.d_model_state,
            g_key=_g_key(state, 0),
        )

    def advance_model_state() -> tuple[Any, Any]:
        if not (jax.tree.leaves(state.g_model_state) or jax.tree.leaves(state.d_model_state)):
            return state.g_model_state, state.d_model_state
        fake, g_model_state = generate(game, state.g_params, state.g_model_state, z, key=_g_key(state, 0))
        _, d_model_state = discriminator_loss(game, state.d_params, state.d_model_state, real, fake, key)
        return g_model_state, d_model_state

    return field, advance_model_state


def _apply_joint(game: Game, state: TrainState, grads: tuple[Any, Any], model_state: tuple[Any, Any]) -> TrainState:
    """Both players' optimizers applied to the descent directions `grads` = (G's, D's) from the current point."""
    g_params, g_opt_state = _generator_update(game, state, grads[0])
    d_params, d_opt_state = _discriminator_update(game, state, grads[1])
    return _advance(state, (g_params, g_opt_state, model_state[0]), (d_params, d_opt_state, model_state[1]))


def _joint_rule(game: Game, adjusted_gradients: Callable) -> UpdateRule:
    def step(state: TrainState, batch: Batch) -> tuple[TrainState, Metrics]:
        field, advance_model_state = joint_field_fn(game, state, batch)
        grads, (g_loss, d_loss), extra = adjusted_gradients(field, (state.g_params, state.d_params), state)
        new_state = _apply_joint(game, state, grads, advance_model_state())
        return new_state, {"d_loss": d_loss, "g_loss": g_loss, **extra}

    return UpdateRule(step, 1, game.init)


def extragradient_step(game: Game) -> UpdateRule:
    """Extragradient: step with the gradient taken at a look-ahead point.

        (θ', ψ') = (θ, ψ) − Opt(−v(θ, ψ)),   (θ, ψ) ← (θ, ψ) − Opt(−v(θ', ψ')),

    with each player's optimizer. The look-ahead uses the optimizer state without committing it, so the moments
    see only the extrapolated gradients: with SGD this is Korpelevich's (1976) extragradient exactly; with Adam it
    is a variant of Gidel et al.'s (2019) Extra-Adam, whose look-ahead also updates the moments. Converges on the
    bilinear game where simultaneous gradient descent spirals out.
    """

    def adjusted(field, params, state):
        v, losses = field(params)  # params are the state's: the look-ahead starts there, and so do the logged losses
        g_grads, d_grads = optax.tree.scale(-1.0, v)
        # the players' own updates, their optimizer states dropped (D's clipped as in every D update)
        lookahead = (_generator_update(game, state, g_grads)[0], _discriminator_update(game, state, d_grads)[0])
        return optax.tree.scale(-1.0, field(lookahead)[0]), losses, {}

    return _joint_rule(game, adjusted)


def consensus_step(game: Game, gamma: float) -> UpdateRule:
    """Consensus optimization (Mescheder, Nowozin, Geiger 2017): both players follow v − γ ∇(½‖v‖²).

    ∇(½‖v‖²) = Jᵀv with J = ∂v/∂(θ_G, θ_D), one vector-Jacobian product of the joint field; the regulariser
    pulls both players toward stationary points of the game and damps the rotation that makes simultaneous
    gradient descent cycle. The optimizers descend −v + γ Jᵀv.
    """
    if isinstance(gamma, numbers.Real) and not gamma >= 0:  # a sweep passes it traced: validated in its config
        raise ValueError(f"consensus_step: gamma must be >= 0, got {gamma}")

    def adjusted(field, params, state):
        v, vjp, losses = jax.vjp(field, params, has_aux=True)
        (jtv,) = vjp(v)
        adjusted_v = optax.tree.add_scale(optax.tree.scale(-1.0, v), gamma, jtv)
        return adjusted_v, losses, {"grad_norm_sq": optax.tree.norm(v, squared=True)}

    return _joint_rule(game, adjusted)


def sga_step(game: Game, lam: float, align: bool = True) -> UpdateRule:
    """Symplectic gradient adjustment (Balduzzi et al. 2018): descend ξ + λ Aᵀξ.

    In the paper's terms ξ = −v is the joint gradient, J = ∂ξ its Jacobian and A = ½(J − Jᵀ) the antisymmetric
    (rotational) part. With the field v and its Jacobian J_v = −J these are Aᵀξ = ½(J_vᵀv − J_v v), one VJP and
    one JVP, and ∇H = Jᵀξ = J_vᵀv. With `align`, λ takes the sign of ⟨ξ, ∇H⟩⟨Aᵀξ, ∇H⟩/d + 1/10 (the paper's
    Algorithm 1), which makes the adjustment point toward stable fixed points and away from unstable ones.
    """
    if isinstance(lam, numbers.Real) and not lam >= 0:  # a negative λ would reverse the alignment; a swept one is traced
        raise ValueError(f"sga_step: lam must be >= 0, got {lam}")

    def adjusted(field, params, state):
        v, vjp, losses = jax.vjp(field, params, has_aux=True)
        (grad_h,) = vjp(v)  # ∇H = J_vᵀ v
        _, j_v = jax.jvp(lambda p: field(p)[0], (params,), (v,))
        at_xi = jax.tree.map(lambda a, b: 0.5 * (a - b), grad_h, j_v)
        xi = optax.tree.scale(-1.0, v)
        scale = jnp.asarray(lam, jnp.result_type(*jax.tree.leaves(xi)))  # float64 players keep λ exact
        if align:
            dim = optax.tree.size(xi)
            scale = scale * jnp.sign(optax.tree.vdot(xi, grad_h) * optax.tree.vdot(at_xi, grad_h) / dim + 0.1)
        return optax.tree.add_scale(xi, scale, at_xi), losses, {"sga_lambda": scale}

    return _joint_rule(game, adjusted)


class OptimisticState(NamedTuple):
    previous: Any  # last step's gradients
    count: jax.Array


def optimistic_gradient() -> optax.GradientTransformation:
    """Optimism as a gradient transformation: g_t ↦ 2 g_t − g_{t−1} (g_t itself at the first step).

    Chained before any optimizer; with SGD it is optimistic gradient descent, θ_{t+1} = θ_t − 2η g_t + η g_{t−1}
    (Daskalakis, Ilyas, Syrgkanis, Zeng 2018), which converges on the bilinear game.
    """

    def init(params):
        return OptimisticState(jax.tree.map(jnp.zeros_like, params), jnp.zeros((), jnp.int32))

    def update(updates, state, params=None):
        del params
        first = state.count == 0
        out = jax.tree.map(lambda g, p: jnp.where(first, g, 2 * g - p), updates, state.previous)
        return out, OptimisticState(updates, state.count + 1)

    return optax.GradientTransformation(init, update)


def optimistic_step(game: Game) -> UpdateRule:
    """Simultaneous steps with each player's optimizer fed 2 v_t − v_{t−1} (see `optimistic_gradient`).

    With SGD this is optimistic gradient descent (Daskalakis et al. 2018) exactly; with Adam the optimism acts on
    the gradient fed to Adam, not on Adam's update as in their Optimistic Adam, so it is a variant of that."""
    optimistic = dataclasses.replace(
        game,
        g_optimizer=optax.chain(optimistic_gradient(), game.g_optimizer),
        d_optimizer=optax.chain(optimistic_gradient(), game.d_optimizer),
    )
    rule = simultaneous_step(optimistic)
    return UpdateRule(rule.step, rule.num_real_batches, optimistic.init)


def with_generator_ema(rule: UpdateRule, decay: float, rampup: float = 0.0) -> UpdateRule:
    """Keeps θ_EMA ← β_t·θ_EMA + (1 − β_t)·θ_G after every step of `rule` (Yazıcı et al. 2019; BigGAN).

    β_t = `decay`, or with `rampup` r > 0 the ramp of StyleGAN2-ADA (Karras et al. 2020, its `ema_rampup`): the
    average's half-life, H = ln ½ / ln decay steps, is capped at r·t after t steps,

        β_t = min(decay, ½^(1/(r·t))),   β_0 = 0,

    so the average never reaches back further than a fraction r of the training so far; a short run's average
    then leaves its first steps behind, which a fixed 0.999 (half-life 693 steps) does not within 1500 steps.
    The average starts at G's initial parameters and lives in `state.g_params_ema`; evaluation reports it beside
    the raw G.
    """
    if not 0 <= decay < 1:
        raise ValueError(f"ema_decay must be in [0, 1), got {decay}")
    if rampup < 0:
        raise ValueError(f"ema_rampup must be >= 0, got {rampup}")

    def ramped_beta(step: jax.Array) -> jax.Array:
        horizon = rampup * step.astype(jnp.float32)  # r·t, the capped half-life in steps
        ramped = jnp.where(horizon > 0, 0.5 ** (1.0 / jnp.maximum(horizon, 1e-30)), 0.0)
        return jnp.minimum(jnp.float32(decay), ramped)

    def init(key, example):
        state = rule.init(key, example)
        return state.replace(g_params_ema=state.g_params)  # its own buffers come from train.init_state

    def step(state, batch, **due):
        new_state, metrics = rule.step(state, batch, **due)
        # Without the ramp β is the Python float, so the update's rounding is what it was before the ramp existed.
        b = ramped_beta(state.step) if rampup > 0 else decay
        ema = jax.tree.map(lambda e, p: b * e + (1 - b) * p, state.g_params_ema, new_state.g_params)
        return new_state.replace(g_params_ema=ema), metrics

    return rule._replace(step=step, init=init)


def with_began_equilibrium(make_rule: Callable[[Game], UpdateRule], game: Game, controller: BeganController) -> UpdateRule:
    """BEGAN's equilibrium (Berthelot, Schumm & Metz 2017, Section 3.4) around any update rule.

    Each step runs the rule built by `make_rule` on the game with BEGAN's loss at the current k_t (D minimises
    E[L(x)] − k_t·E[L(G(z))], G minimises E[L(G(z))], L the auto-encoder's reconstruction error), then moves k:
    k_{t+1} = clip(k_t + λ_k(γ·E[L(x)] − E[L(G(z))]), 0, 1), with M_global = E[L(x)] + |γ·E[L(x)] − E[L(G(z))]|
    logged as `convergence` and k_{t+1} as `began_k`. The energies are those of the step's start: D's
    reconstruction errors of the step's (last) real batch and of G's samples of the step's noise, at the
    parameters the step started from, which are exactly the terms of the simultaneous rule's losses (the paper's
    update). k_t lives in `state.loss_state` ({"began_k": k}), so checkpoints resume it exactly.
    """

    def game_at_k(k: jax.Array | float) -> Game:
        return dataclasses.replace(game, loss=losses.began_loss(k))

    def rule_at(k: jax.Array | float) -> UpdateRule:
        return make_rule(game_at_k(k))

    start = rule_at(controller.init())

    def init(key, example):
        return start.init(key, example).replace(loss_state={"began_k": controller.init()})

    def step(state, batch):
        k = state.loss_state["began_k"]
        real = batch["real"][-1]
        z = game.with_real(game.sample_noise(step_keys(state).noise, real.shape[0]), real)
        fake, _ = generate(game, state.g_params, state.g_model_state, z, key=_g_key(state, 0))
        real_energy = logits_of(discriminate(game, state.d_params, state.d_model_state, real)[0])
        fake_energy = logits_of(discriminate(game, state.d_params, state.d_model_state, fake)[0])
        new_state, metrics = rule_at(k).step(state, batch)
        new_k, began = controller.update(k, real_energy, fake_energy)
        return new_state.replace(loss_state={"began_k": new_k}), {**metrics, "began_k": new_k, "convergence": began["convergence"]}

    return UpdateRule(step, start.num_real_batches, init, game_at=lambda state: game_at_k(state.loss_state["began_k"]))


def with_progressive_growing(rule: UpdateRule, steps_per_phase: int) -> UpdateRule:
    """Progressive growing (Karras et al. 2018) around any rule: before every step, and after it for evaluation,
    the step number is written into each player's "progress" model state, from which `jaxgan.models.Progressive`
    players compute their growth level, and the step's real images are faded between the two resolutions of the
    transition as G's output is (`progan.fade_in_reals`, the paper's Figure 2). Everything is a function of
    `state.step` alone (exact resume)."""

    def at_step(state: TrainState) -> TrainState:
        def put(model_state):
            return {**model_state, "progress": {"step": state.step}} if "progress" in model_state else model_state

        return state.replace(g_model_state=put(state.g_model_state), d_model_state=put(state.d_model_state))

    def init(key, example):
        return at_step(rule.init(key, example))

    def fade(x: jax.Array, step: jax.Array) -> jax.Array:
        *_, stages = progan.progressive_plan(x.shape[-3:], "progressive growing")
        return progan.fade_in_reals(x, progan.level_at(step, steps_per_phase, stages), stages)

    def step(state, batch, **due):
        real = batch["real"]
        real = real.replace(data=fade(real.data, state.step)) if isinstance(real, Labelled) else fade(real, state.step)
        new_state, metrics = rule.step(at_step(state), {**batch, "real": real}, **due)
        return at_step(new_state), metrics

    return rule._replace(step=step, init=init)


# fold_in tag of the key stream of LapGAN's extra level-0 updates (apart from the wrapped rule's uses of the step keys)
_COARSE_UPDATES_TAG = 0x4C4150  # "LAP"


def with_coarse_level_updates(rule: UpdateRule, game: Game, updates: int) -> UpdateRule:
    r"""LapGAN's coarsest level trained more often than its finer levels, around any rule.

    Denton et al. (2015) train each level of the pyramid as a GAN of its own, each as long as it needs; jaxgan plays
    the levels as one game (jaxgan/models/lapgan.py), so every level gets the same number of updates. The coarsest
    one (G_0: z_0 -> I_0, D_0 on I_0, 7×7 for MNIST) is a small GAN that needs many more updates than a run's finer
    levels take to learn, and its flaws grow at every finer level (BUILD_NOTES.md, "LapGAN's coarsest level needs
    more updates than the run gives"). After every step of `rule`, this takes `updates` more steps of the level-0
    game alone, each on its own real batch (pooled to the coarsest size, `lapgan.laplacian_pyramid`) and fresh
    noise: one D_0 step on game.loss.discriminator(D_0(I_0 real), D_0(G_0(z_0))), then one G_0 step on
    game.loss.generator(D_0(G_0(z_0))) against the updated D_0, as a separately trained level-0 GAN would take them.

    The finer levels are untouched: the extra steps change only the "level_0" subtrees of G's and D's parameters,
    with optimizer states of their own (`loss_state["coarse_g_opt_state"]`, `["coarse_d_opt_state"]`, saved and
    resumed with the run), so Adam's moments and step count of the finer levels are those of the plain run. The
    wrapped rule takes the first `rule.num_real_batches` real batches, the extra steps one more each."""
    if updates < 1:
        raise ValueError(f"with_coarse_level_updates: updates must be >= 1, got {updates}")
    num_inner = rule.num_real_batches

    def init(key, example):
        state = rule.init(key, example)
        extra = {
            "coarse_g_opt_state": game.g_optimizer.init(state.g_params["level_0"]),
            "coarse_d_opt_state": game.d_optimizer.init(state.d_params["level_0"]),
        }
        return state.replace(loss_state={**(state.loss_state or {}), **extra})

    def level0_steps(state: TrainState, reals: jax.Array, key: jax.Array) -> tuple[TrainState, dict]:
        def fake0(g0, key):
            z = data_of(game.sample_noise(key, reals.shape[1]))
            params = {**state.g_params, "level_0": g0}
            return game.generator.apply(params, state.g_model_state, z, train=True, method="coarsest")[0]

        def d0_logits(d0, image):
            return game.discriminator.apply({**state.d_params, "level_0": d0}, state.d_model_state, image, train=True)[0]

        def one(carry, inputs):
            g0, d0, g_opt_state, d_opt_state = carry
            real, key = inputs
            d_key, g_key = jax.random.split(key)
            real0 = lapgan.laplacian_pyramid(real, lapgan.pyramid_levels(real.shape[1:]))[0]
            fake = jax.lax.stop_gradient(fake0(g0, d_key))
            d_loss, grads = jax.value_and_grad(lambda d0: game.loss.discriminator(d0_logits(d0, real0), d0_logits(d0, fake)))(d0)
            d0, d_opt_state = update_discriminator(game, d0, d_opt_state, grads)
            g_loss, grads = jax.value_and_grad(lambda g0: game.loss.generator(d0_logits(d0, fake0(g0, g_key))))(g0)
            g_updates, g_opt_state = game.g_optimizer.update(grads, g_opt_state, g0)
            return (optax.apply_updates(g0, g_updates), d0, g_opt_state, d_opt_state), (d_loss, g_loss)

        opt = state.loss_state
        carry = (state.g_params["level_0"], state.d_params["level_0"], opt["coarse_g_opt_state"], opt["coarse_d_opt_state"])
        (g0, d0, g_opt_state, d_opt_state), (d_losses, g_losses) = jax.lax.scan(
            one, carry, (reals, jax.random.split(key, updates))
        )
        state = state.replace(
            g_params={**state.g_params, "level_0": g0},
            d_params={**state.d_params, "level_0": d0},
            loss_state={**opt, "coarse_g_opt_state": g_opt_state, "coarse_d_opt_state": d_opt_state},
        )
        return state, {"coarse_d_loss": jnp.mean(d_losses), "coarse_g_loss": jnp.mean(g_losses)}

    def step(state, batch, **due):
        new_state, metrics = rule.step(state, {**batch, "real": jax.tree.map(lambda x: x[:num_inner], batch["real"])}, **due)
        key = jax.random.fold_in(step_keys(state).noise, _COARSE_UPDATES_TAG)
        new_state, coarse_metrics = level0_steps(new_state, data_of(batch["real"])[num_inner:], key)
        return new_state, {**metrics, **coarse_metrics}

    return rule._replace(step=step, init=init, num_real_batches=num_inner + updates)


def with_lazy_regularization(
    rule: UpdateRule,
    game: Game,
    *,
    r1_gamma: float = 0.0,
    r1_interval: int = 16,
    path_length_weight: float = 0.0,
    path_length_interval: int = 4,
    path_length_decay: float = 0.01,
) -> UpdateRule:
    r"""StyleGAN2's lazy regularization (Karras et al. 2020, Section 3.1) around any rule.

    After the rule's step t (counting from 0), as the official code's separate "Dreg" and "Greg" phases do:

    * when t mod N_R1 = 0 (N_R1 = `r1_interval`, the paper's 16), D takes one more optimizer step on
      N_R1 · γ/2 · R1, R1 = mean_i ‖∇_x D(x_i)‖² on the step's (last) real batch (`jaxgan.penalties.r1_penalty`);
    * when t mod N_pl = 0 (N_pl = `path_length_interval`, the paper's 4), G takes one more optimizer step on
      N_pl · w_pl · P, P the path length penalty (`jaxgan.models.stylegan.path_length_penalty`) of w = mapping(z)
      for half a batch of fresh z (the official code's `pl_batch_shrink` 2), differentiated through both the
      mapping and the synthesis network; the moving average a of the lengths (decay `path_length_decay`) lives
      in `state.loss_state["pl_mean"]`, so resume is exact. G must be a StyleGAN2 generator (its `mapping` and
      `synthesize` methods, through the player's `apply(..., method=...)`).

    The multiplication by N keeps each regularizer's average weight per step. The paper also rescales the
    optimizers' learning rate and betas by c = N/(N + 1) (lr·c, β^c); that is the optimizers' config, left to
    the experiment (experiments/stylegan2_mnist.py does it). The last computed R1 and P are kept in
    `loss_state` and logged as `r1` and `path_length_penalty` with `pl_mean`. Under `jax.vmap` (seeds or sweeps
    trained together) `lax.cond` computes both branches every step: the math is the same, the saving is lost.
    """
    if r1_interval < 1 or path_length_interval < 1:
        raise ValueError(f"lazy regularization intervals must be >= 1, got {r1_interval}, {path_length_interval}")
    names = ("r1", "path_length_penalty", "pl_mean")

    def init(key, example):
        state = rule.init(key, example)
        return state.replace(loss_state={**(state.loss_state or {}), **{n: jnp.zeros((), jnp.float32) for n in names}})

    def r1_step(state: TrainState, real: jax.Array | Labelled) -> TrainState:
        def objective(d_params):
            r1 = penalties.r1_penalty(discriminator_logits_fn(game, d_params, state.d_model_state, real), data_of(real))
            return r1_interval * r1_gamma / 2 * r1, r1

        (_, r1), grads = jax.value_and_grad(objective, has_aux=True)(state.d_params)
        d_params, d_opt_state = _discriminator_update(game, state, grads)
        return state.replace(d_params=d_params, d_opt_state=d_opt_state, loss_state={**state.loss_state, "r1": r1})

    def path_length_step(state: TrainState, batch_size: int, key: jax.Array) -> TrainState:
        z_key, y_key, noise_key = jax.random.split(key, 3)
        z = game.sample_noise(z_key, max(batch_size // 2, 1))
        apply, model_state = game.generator.apply, state.g_model_state

        def objective(g_params):
            ws, _ = apply(g_params, model_state, z, train=False, method="mapping")

            def synthesize(w):
                return apply(g_params, model_state, w, rngs={"noise": noise_key}, method="synthesize")[0]

            penalty, pl_mean, _ = stylegan.path_length_penalty(
                synthesize, ws, y_key, state.loss_state["pl_mean"], path_length_decay
            )
            return path_length_interval * path_length_weight * penalty, (penalty, pl_mean)

        (_, (penalty, pl_mean)), grads = jax.value_and_grad(objective, has_aux=True)(state.g_params)
        g_params, g_opt_state = _generator_update(game, state, grads)
        loss_state = {**state.loss_state, "path_length_penalty": penalty, "pl_mean": pl_mean}
        return state.replace(g_params=g_params, g_opt_state=g_opt_state, loss_state=loss_state)

    schedule = (("r1", r1_gamma, r1_interval), ("path_length", path_length_weight, path_length_interval))

    def extras_due(t: int) -> tuple[str, ...]:
        return tuple(name for name, weight, every in schedule if weight and t % every == 0)

    def step(state, batch, due: tuple[str, ...] | None = None):
        new_state, metrics = rule.step(state, batch)
        # a wrapped rule that rewrites loss_state (BEGAN's k) keeps its entries; the regularizers' come from `state`
        new_state = new_state.replace(
            loss_state={**(new_state.loss_state or {}), **{n: state.loss_state[n] for n in names}}
        )

        def maybe(name: str, every: int, extra: Callable[[TrainState], TrainState], s: TrainState) -> TrainState:
            if due is not None:  # chosen on the host: no conditional in the compiled step
                return extra(s) if name in due else s
            return jax.lax.cond(state.step % every == 0, extra, lambda s: s, s)

        if r1_gamma:
            real = batch["real"][-1]
            new_state = maybe("r1", r1_interval, lambda s: r1_step(s, real), new_state)
        if path_length_weight:
            size, key = data_of(batch["real"]).shape[1], _g_key(state, 1000)
            new_state = maybe("path_length", path_length_interval, lambda s: path_length_step(s, size, key), new_state)
        return new_state, {**metrics, **{n: new_state.loss_state[n] for n in names}}

    return rule._replace(step=step, init=init, due=extras_due)


UPDATE_RULES = ("alternating", "consensus", "extragradient", "optimistic", "sga", "simultaneous", "unrolled")


def make_update_rule(game: Game, config: Any, unroll_inner: bool = False) -> UpdateRule:
    """The update rule named by `config.update_rule`, with its options, BEGAN's control of k_t for the BEGAN
    loss, and the EMA of G from the config; `unroll_inner` unrolls the rules' inner loops (n_critic, the K
    unrolled steps)."""
    if config.update_rule not in UPDATE_RULES:
        raise ValueError(unknown_name("update rule", config.update_rule, UPDATE_RULES))
    if config.loss == "began":
        controller = energy.began_controller(config.energy.gamma, config.energy.lambda_k)
        rule = with_began_equilibrium(lambda g: _named_rule(g, config, unroll_inner), game, controller)
    else:
        rule = _named_rule(game, config, unroll_inner)
    lazy = config.lazy
    if lazy.r1_gamma or lazy.path_length_weight:
        rule = with_lazy_regularization(
            rule, game, r1_gamma=lazy.r1_gamma, r1_interval=lazy.r1_interval, path_length_weight=lazy.path_length_weight,
            path_length_interval=lazy.path_length_interval, path_length_decay=lazy.path_length_decay,
        )  # fmt: skip
    if config.coarse_level_updates > 0:
        rule = with_coarse_level_updates(rule, game, config.coarse_level_updates)
    if "progan" in (config.generator.name, config.discriminator.name):  # outside: the lazy R1 sees the faded reals
        rule = with_progressive_growing(rule, config.progressive_phase_steps)
    return with_generator_ema(rule, config.ema_decay, config.ema_rampup) if config.ema_decay > 0 else rule


def unroll_form(setting: str, discriminator_name: str) -> tuple[bool, bool]:
    """(remat, traced) of the unrolled rule's K − 1 inner D steps for `config.unroll_remat` = `setting` and D
    `config.discriminator.name`. "on"/"off": remat or not, the steps in an XLA loop unless the runner traces them
    out (a CPU with image data): the form before "auto" existed. "auto": for a D on images (a convolutional one;
    `models.example_rank` 3) neither remat nor a loop, the steps traced one after another, on every backend; for
    any other D (the MLPs, the Dirac critic, a model registered without a rank) "on". Why, as measured
    (BUILD_NOTES.md, "The unrolled rule's form"): for MLP players remat keeps memory flat in K at no loss of speed;
    for the DCGAN-28 step remat and the XLA loop each slow it down against a hand-written step with neither, while
    the memory they save is a few activations per step. A traced unroll compiles in time linear in K."""
    if setting != "auto":
        return setting == "on", False
    convolutional = example_rank(DISCRIMINATORS, discriminator_name) == 3
    return not convolutional, convolutional


# The setting that names each (remat, traced) form: saved configs are compared by the form they run
# (`config.differing_settings`), so "auto" with an MLP D equals "on".
UNROLL_SETTING_OF_FORM = {(True, False): "on", (False, False): "off", (False, True): "auto"}


def _named_rule(game: Game, config: Any, unroll_inner: bool) -> UpdateRule:
    name = config.update_rule
    if name == "alternating":
        return alternating_step(game, d_steps=config.d_steps, unroll_inner=unroll_inner)
    if name == "unrolled":
        remat, traced = unroll_form(config.unroll_remat, config.discriminator.name)
        return unrolled_step(
            game,
            config.unroll_steps,
            same_batch=config.unroll_same_batch,
            stop_gradient=config.unroll_stop_gradient,
            remat=remat,
            unroll_inner=unroll_inner or traced,
        )
    if name == "consensus":
        return consensus_step(game, config.consensus_gamma)
    if name == "sga":
        return sga_step(game, config.sga_lambda)
    plain = {"simultaneous": simultaneous_step, "extragradient": extragradient_step, "optimistic": optimistic_step}
    return plain[name](game)
