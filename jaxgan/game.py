"""The GAN game: two players, a loss, two optimizers and the noise prior, bundled for the update rules.

A `Game` holds functions only; everything that changes during training is in `TrainState`. The three building
blocks every update rule composes are here:

* `generate(game, g_params, g_model_state, z, key=...)`: G's samples,
* `discriminator_loss(...)` / `generator_loss(...)`: the loss of each player at a point of the game,
* `discriminator_step(...)`: one optimizer step of D on fixed fake samples. It is differentiable with respect to
  the fake samples and through the optimizer's state, which is what the unrolled generator needs.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from jaxgan import energy, penalties
from jaxgan.conditioning import Conditioning, Labelled, data_of, logits_of
from jaxgan.parallel import Mesh, batch_mean_value_and_grad, shard_batch
from jaxgan.losses import GanLoss
from jaxgan.models import ModelState, Params, Player
from jaxgan.state import TrainState


def gaussian_noise(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    return jax.random.normal(key, shape, jnp.float32)


@dataclasses.dataclass(frozen=True)
class Game:
    generator: Player
    discriminator: Player
    loss: GanLoss
    g_optimizer: optax.GradientTransformation
    d_optimizer: optax.GradientTransformation
    z_dim: int
    noise: Callable[[jax.Array, tuple[int, ...]], jax.Array] = gaussian_noise
    # Regularisation (jaxgan.penalties): a D-side gradient penalty added to D's loss with `penalty_weight`
    # (γ/2 · penalty for R1/R2, as in Mescheder et al. 2018), or the Nagarajan–Kolter term added to G's loss;
    # `weight_clip` > 0 clips D's parameters after each of its steps (WGAN).
    penalty: str = "none"
    penalty_weight: float = 0.0
    # EBGAN-PT (Zhao et al. 2017): G's loss adds this weight times the pulling-away term of D's embeddings of G's
    # samples (a D whose outputs include "embedding": the auto-encoder).
    pull_away_weight: float = 0.0
    weight_clip: float = 0.0
    # Data parallelism (jaxgan.parallel): inside the compiled step, noise batches are split over this mesh.
    mesh: Mesh | None = None
    # Class labels or latent codes for the players (conditional GAN, AC-GAN, InfoGAN; jaxgan.conditioning).
    conditioning: Conditioning | None = None

    def sample_noise(self, key: jax.Array, *batch_shape: int) -> jax.Array | Labelled:
        """z of shape [*batch_shape, z_dim], split along the last batch axis over `mesh` if there is one; in a
        conditioned game a `Labelled` z with the classes or codes G is asked for."""
        z = self.noise(key, (*batch_shape, self.z_dim))
        if self.conditioning is not None:
            z = self.conditioning.latent(jax.random.fold_in(key, 1), z)
        return jax.tree.map(lambda x: shard_batch(x, self.mesh, axis=len(batch_shape) - 1), z)

    def with_real(self, z: jax.Array | Labelled, real: jax.Array | Labelled) -> jax.Array | Labelled:
        """G's noise `z` paired with the real batch `real` (same leading axes) in a training step: where the game
        conditions G on real images (``real_coarse``, LapGAN's training) they become z's source; else z as it is."""
        return self.conditioning.with_real(z, real) if isinstance(z, Labelled) else z

    def init(self, key: jax.Array, example_data: jax.Array | Labelled) -> TrainState:
        """A fresh state; `example_data` is one batch of real data (only its shape matters)."""
        g_key, d_key, run_key = jax.random.split(key, 3)
        g_input, g_labels = _generator_input(self, self.sample_noise(g_key, example_data.shape[0]))
        g_params, g_model_state = self.generator.init(g_key, g_input, g_labels)
        takes_labels = self.conditioning is not None and self.conditioning.discriminator_takes_labels
        d_labels = jnp.zeros(example_data.shape[:1], jnp.int32) if takes_labels else None
        d_params, d_model_state = self.discriminator.init(d_key, data_of(example_data), d_labels)
        return TrainState(
            step=jnp.zeros((), jnp.int32),
            g_params=g_params,
            d_params=d_params,
            g_model_state=g_model_state,
            d_model_state=d_model_state,
            g_opt_state=self.g_optimizer.init(g_params),
            d_opt_state=self.d_optimizer.init(d_params),
            key=run_key,
        )


def _enabled(weight: float | jax.Array) -> bool:
    """Whether a regulariser's weight switches it on: a nonzero number, or a traced value (a swept weight)."""
    return not isinstance(weight, (int, float)) or weight != 0


def _generator_input(game: Game, z: jax.Array | Labelled) -> tuple[jax.Array, jax.Array | None]:
    if isinstance(z, Labelled):
        return game.conditioning.generator_input(z)
    return z, None


def generate(
    game: Game,
    g_params: Params,
    g_model_state: ModelState,
    z: jax.Array | Labelled,
    *,
    train: bool = True,
    labels: jax.Array | None = None,
    key: jax.Array | None = None,
) -> tuple[jax.Array | Labelled, ModelState]:
    """G(z) for z of shape [..., z_dim] (and `labels` of shape [...] for a conditional G); leading axes are
    flattened for the network and restored after. `train=False` evaluates: batch norm uses its running averages
    and the model state is returned unchanged. `key` feeds G's "noise" RNG stream, its randomness beyond z
    (StyleGAN's noise inputs and style-mixing draws); players without such randomness ignore it, and without a
    key a StyleGAN generator's noise inputs are zero.

    In a conditioned game z is a `Labelled` (from `game.sample_noise`) and so are the samples: they keep the
    classes or codes they were generated from, for D and for the conditioned objectives."""
    g_input, g_labels = _generator_input(game, z)
    labels = g_labels if labels is None else labels
    lead = g_input.shape[:-1]
    flat_labels = None if labels is None else labels.reshape(-1, *labels.shape[len(lead):])  # classes or images
    x, g_model_state = game.generator.apply(
        g_params, g_model_state, g_input.reshape(-1, g_input.shape[-1]), train=train, labels=flat_labels,
        rngs=None if key is None else {"noise": key},
    )
    x = x.reshape(*lead, *x.shape[1:])
    return (z.replace(data=x) if isinstance(z, Labelled) else x), g_model_state


def discriminate(
    game: Game, d_params: Params, d_model_state: ModelState, x: jax.Array | Labelled, *, train: bool = True
) -> tuple[Any, ModelState]:
    """D's outputs on `x` (a plain array of logits, or a multi-head D's dict), with the class for a concatenating
    conditional D."""
    labels = game.conditioning.discriminator_labels(x) if game.conditioning else None
    return game.discriminator.apply(d_params, d_model_state, data_of(x), train=train, labels=labels)


def discriminator_logits_fn(
    game: Game, d_params: Params, d_model_state: ModelState, like: jax.Array | Labelled
) -> Callable[[jax.Array], jax.Array]:
    """`x -> D's logits on x`, for the input-gradient penalties: x replaces the data of `like`, whose classes (a
    concatenating conditional D's input) ride along."""

    def d_fn(x: jax.Array) -> jax.Array:
        inputs = like.replace(data=x) if isinstance(like, Labelled) else x
        return logits_of(discriminate(game, d_params, d_model_state, inputs)[0])

    return d_fn


def _unpenalised_discriminator_loss(
    game: Game, d_params: Params, d_model_state: ModelState, real: jax.Array | Labelled, fake: jax.Array | Labelled
) -> tuple[jax.Array, tuple[Any, Any], ModelState]:
    """The loss's D term on (real, fake) alone: (loss, (D's outputs on real, on fake), D's model state after both
    passes)."""
    real_outputs, model_state = discriminate(game, d_params, d_model_state, real)
    fake_outputs, model_state = discriminate(game, d_params, model_state, fake)
    loss = game.loss.discriminator(logits_of(real_outputs), logits_of(fake_outputs))
    return loss, (real_outputs, fake_outputs), model_state


def discriminator_loss(
    game: Game,
    d_params: Params,
    d_model_state: ModelState,
    real: jax.Array,
    fake: jax.Array,
    key: jax.Array | None = None,
) -> tuple[jax.Array, ModelState]:
    """D's loss on (real, fake), plus the game's D-side penalty (`key` draws its random points, if any) and what a
    conditioned game adds (AC-GAN's classifier loss, InfoGAN's information loss).

    The penalties' D sees the real batch's classes (a concatenating conditional D; R2: the fakes')."""
    loss, (real_outputs, fake_outputs), new_model_state = _unpenalised_discriminator_loss(
        game, d_params, d_model_state, real, fake
    )
    if game.conditioning is not None:
        loss = loss + game.conditioning.discriminator_term(real_outputs, fake_outputs, real, fake)
    if _enabled(game.penalty_weight) and game.penalty not in ("none", "nagarajan_kolter"):
        d_fn = discriminator_logits_fn(game, d_params, d_model_state, fake if game.penalty == "r2" else real)
        scale = game.penalty_weight / 2 if game.penalty in ("r1", "r2") else game.penalty_weight
        if key is None:  # analyses at a fixed batch (jaxgan.dynamics) get fixed penalty points
            key = jax.random.key(0)
        loss = loss + scale * penalties.discriminator_penalty(game.penalty, d_fn, data_of(real), data_of(fake), key)
    return loss, new_model_state


def generator_loss(
    game: Game, d_params: Params, d_model_state: ModelState, fake: jax.Array, real: jax.Array | None = None
) -> jax.Array:
    """G's loss on its samples `fake` against D; D's model-state update from this pass is discarded.

    With the Nagarajan–Kolter penalty, G minimises L_G + η/2 ‖∇_{θ_D} L_D(θ_G, θ_D)‖² (η = `penalty_weight`),
    the gradient norm of D's (unpenalised) loss with respect to D's parameters, which needs the real batch.
    With `pull_away_weight` w, G minimises L_G + w·f_PT(D's embeddings of the samples) (EBGAN-PT).
    """
    fake_outputs, _ = discriminate(game, d_params, d_model_state, fake)
    loss = game.loss.generator(logits_of(fake_outputs))
    if game.conditioning is not None:
        loss = loss + game.conditioning.generator_term(fake_outputs, fake)
    if _enabled(game.pull_away_weight):
        loss = loss + game.pull_away_weight * energy.pull_away_term(fake_outputs["embedding"])
    if game.penalty == "nagarajan_kolter" and _enabled(game.penalty_weight):
        if real is None:
            raise ValueError("generator_loss: the nagarajan_kolter penalty needs the real batch (real=...)")

        def d_value(p):
            return _unpenalised_discriminator_loss(game, p, d_model_state, real, fake)[0]

        loss = loss + game.penalty_weight / 2 * penalties.nagarajan_kolter_penalty(d_value, d_params)
    return loss


def _plain_batch_mean(game: Game, d_model_state: ModelState) -> bool:
    """Whether D's loss is a mean of per-example terms that each device can take on its own slice: no batch
    statistics, no examples mixed (minibatch standard deviation), no labels riding along, no penalty drawing random
    points (WGAN-GP, DRAGAN)."""
    stateless = not jax.tree.leaves(d_model_state)
    deterministic = game.penalty in ("none", "r1", "r2", "nagarajan_kolter") or not _enabled(game.penalty_weight)
    return stateless and game.discriminator.per_example and game.conditioning is None and deterministic


def discriminator_step(
    game: Game,
    d_params: Params,
    d_opt_state: Any,
    d_model_state: ModelState,
    real: jax.Array,
    fake: jax.Array,
    key: jax.Array | None = None,
) -> tuple[Params, Any, ModelState, jax.Array]:
    """One optimizer step of D on (real, fake): returns (d_params, d_opt_state, d_model_state, loss).

    On a mesh, a loss that is a plain mean over the batch has its gradient reduced across devices as one flat
    buffer (`jaxgan.parallel.batch_mean_value_and_grad`): XLA's CPU runtime reduces every parameter leaf in a
    separate collective call, which dominated multi-process CPU steps (BUILD_NOTES.md, "Multi-host on a CPU")."""
    if game.mesh is not None and _plain_batch_mean(game, d_model_state):
        loss, grads = batch_mean_value_and_grad(
            lambda p, real, fake: discriminator_loss(game, p, d_model_state, real, fake, key)[0], game.mesh
        )(d_params, real, fake)
    else:
        (loss, d_model_state), grads = jax.value_and_grad(
            lambda p: discriminator_loss(game, p, d_model_state, real, fake, key), has_aux=True
        )(d_params)
    d_params, d_opt_state = update_discriminator(game, d_params, d_opt_state, grads)
    return d_params, d_opt_state, d_model_state, loss


def update_discriminator(game: Game, d_params: Any, d_opt_state: Any, grads: Any) -> tuple[Any, Any]:
    """D's optimizer step on `grads`, then WGAN's clip of its parameters to [−c, c] where `game.weight_clip` = c > 0:
    every rule updates D through this, so the clip holds under every rule."""
    updates, d_opt_state = game.d_optimizer.update(grads, d_opt_state, d_params)
    d_params = optax.apply_updates(d_params, updates)
    if _enabled(game.weight_clip):
        d_params = penalties.weight_clip(d_params, game.weight_clip)
    return d_params, d_opt_state
