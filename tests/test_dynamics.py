"""The game's vector field, Jacobian and spectrum against closed forms (Dirac-GAN), finite differences and
a dense eigensolver.

Dirac-GAN (Mescheder et al. 2018, Section 2.2): data at 0, G = δ_θ, linear critic with logit ψx and no bias.
With this library's losses (logits are "realness": D wants fake logits low), for minimax / non-saturating

    L_D = softplus(-ψ·0) + softplus(ψθ),   L_G = -softplus(ψθ) (minimax),   softplus(-ψθ) (non-saturating),
    v = (-∂L_G/∂θ, -∂L_D/∂ψ) = (ψσ(±ψθ), -θσ(ψθ)),

and for WGAN L_D = ψθ, L_G = -ψθ, v = (ψ, -θ). At (0, 0) both give J = [[0, a], [-a, 0]] with
a = f'(0) = σ(0) = 1/2 (GAN) or 1 (WGAN), eigenvalues ±a i. Mescheder et al. write v = (-ψf'(ψθ), θf'(ψθ))
with f'(t) = σ(-t): their D_ψ is minus this library's logit (ψ -> -ψ), which transposes J and leaves the
eigenvalues unchanged.
An R1 penalty γ/2·E[(∂D/∂x)^2] = γ/2·ψ² adds -γ to J[ψ, ψ]: eigenvalues -γ/2 ± sqrt(γ²/4 - a²).
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

from jaxgan import losses
from jaxgan.dynamics import (
    game_jacobian,
    jacobian_eigenvalues,
    top_eigenvalues_arnoldi,
    vector_field,
)
from jaxgan.game import Game
from jaxgan.models import linen_player

# ---------------------------------------------------------------------------------------------------------------
# Dirac-GAN.
# ---------------------------------------------------------------------------------------------------------------


class DiracGenerator(nn.Module):
    """G(z) = θ for every z: p_θ = δ_θ in one dimension."""

    @nn.compact
    def __call__(self, z):
        theta = self.param("theta", nn.initializers.zeros, (1,))
        return jnp.broadcast_to(theta, (z.shape[0], 1))


class DiracCritic(nn.Module):
    """D_ψ(x) = ψx, no bias."""

    @nn.compact
    def __call__(self, x):
        psi = self.param("psi", nn.initializers.zeros, (1,))
        return x @ psi


def dirac_game(loss_name: str) -> Game:
    return Game(
        generator=linen_player(DiracGenerator()),
        discriminator=linen_player(DiracCritic()),
        loss=losses.get_loss(loss_name),
        g_optimizer=optax.sgd(1.0),
        d_optimizer=optax.sgd(1.0),
        z_dim=1,
    )


# One game per loss, so that jit's cache (keyed on the game's identity) is shared between tests.
DIRAC_GAMES = {name: dirac_game(name) for name in ("minimax", "nonsaturating", "wasserstein")}
F_PRIME_0 = {"minimax": 0.5, "nonsaturating": 0.5, "wasserstein": 1.0}
DIRAC_REAL = jnp.zeros((4, 1))
DIRAC_Z = np.random.default_rng(0).normal(size=(4, 1)).astype(np.float32)


def dirac_params(theta: float, psi: float):
    return {"theta": jnp.array([theta])}, {"psi": jnp.array([psi])}


def r1(game: Game, d_params, real) -> jax.Array:
    """E_real ||∂D/∂x||², written independently of any penalties module."""
    grad_x = jax.vmap(jax.grad(lambda x: game.discriminator.apply(d_params, {}, x[None])[0][0]))(real)
    return jnp.mean(jnp.sum(jnp.square(grad_x), axis=-1))


_R1_PENALTIES = {}


def r1_penalty(loss_name: str, gamma: float):
    """γ/2·R1 as a `d_penalty`; memoised so that each (game, γ) compiles once."""
    key = (loss_name, gamma)
    if key not in _R1_PENALTIES:
        game = DIRAC_GAMES[loss_name]
        _R1_PENALTIES[key] = lambda p, real, fake: gamma / 2 * r1(game, p, real)
    return _R1_PENALTIES[key]


@pytest.mark.parametrize("loss_name", list(DIRAC_GAMES))
def test_dirac_vector_field_closed_form(loss_name):
    theta, psi = 0.7, -1.3
    v_g, v_d = vector_field(DIRAC_GAMES[loss_name], *dirac_params(theta, psi), DIRAC_REAL, DIRAC_Z)
    sigmoid = jax.nn.sigmoid
    expected_g = {
        "minimax": psi * sigmoid(psi * theta),
        "nonsaturating": psi * sigmoid(-psi * theta),
        "wasserstein": psi,
    }
    expected_d = -theta * sigmoid(psi * theta) if loss_name != "wasserstein" else -theta
    np.testing.assert_allclose(v_g["theta"], [expected_g[loss_name]], rtol=1e-6)
    np.testing.assert_allclose(v_d["psi"], [expected_d], rtol=1e-6)


@pytest.mark.parametrize("loss_name", list(DIRAC_GAMES))
def test_dirac_equilibrium_is_a_pure_rotation(loss_name):
    a = F_PRIME_0[loss_name]
    game = DIRAC_GAMES[loss_name]
    jac = game_jacobian(game, *dirac_params(0.0, 0.0), DIRAC_REAL, DIRAC_Z)
    # Rows/columns ordered (θ, ψ): the sign pattern pins the library's conventions, not only the spectrum.
    np.testing.assert_allclose(jac, [[0.0, a], [-a, 0.0]], atol=1e-6)
    eigenvalues = jacobian_eigenvalues(game, *dirac_params(0.0, 0.0), DIRAC_REAL, DIRAC_Z)
    np.testing.assert_allclose(eigenvalues, [a * 1j, -a * 1j], atol=1e-5)


# Minimax is left out only to save compile time: its D loss, the only one R1 changes, is non-saturating's.
@pytest.mark.parametrize("gamma", [0.3, 3.0])
@pytest.mark.parametrize("loss_name", ["nonsaturating", "wasserstein"])
def test_dirac_r1_moves_eigenvalues_into_the_left_half_plane(loss_name, gamma):
    a = F_PRIME_0[loss_name]
    game, penalty = DIRAC_GAMES[loss_name], r1_penalty(loss_name, gamma)
    jac = game_jacobian(game, *dirac_params(0.0, 0.0), DIRAC_REAL, DIRAC_Z, penalty)
    np.testing.assert_allclose(jac, [[0.0, a], [-a, -gamma]], atol=1e-6)

    eigenvalues = jacobian_eigenvalues(game, *dirac_params(0.0, 0.0), DIRAC_REAL, DIRAC_Z, penalty)
    root = np.sqrt(complex(gamma**2 / 4 - a**2))
    expected = np.array([-gamma / 2 + root, -gamma / 2 - root])  # real part, then imaginary part, descending
    np.testing.assert_allclose(eigenvalues, expected, atol=1e-5)
    # γ = 0.3 < 2a: a damped rotation; γ = 3 > 2a: two real, stable eigenvalues.
    assert (np.abs(eigenvalues.imag) > 0.1).all() == (gamma < 2 * a)
    assert (eigenvalues.real < 0).all()


def test_dirac_arnoldi_on_the_full_space():
    """n = 2: num_iters is clipped to 2, the Krylov space is then all of R², and the Ritz values are exact."""
    game, penalty = DIRAC_GAMES["wasserstein"], r1_penalty("wasserstein", 3.0)
    args = (game, *dirac_params(0.0, 0.0), DIRAC_REAL, DIRAC_Z)
    root = np.sqrt(3.0**2 / 4 - 1.0)
    arnoldi = top_eigenvalues_arnoldi(*args, k=2, num_iters=5, key=jax.random.key(2), d_penalty=penalty)
    np.testing.assert_allclose(arnoldi, [-1.5 - root, -1.5 + root], atol=1e-5)  # by magnitude


# ---------------------------------------------------------------------------------------------------------------
# A small MLP game in float64.
# ---------------------------------------------------------------------------------------------------------------


class TanhMLP(nn.Module):
    """One tanh hidden layer: smooth everywhere, so finite differences are meaningful."""

    features: int
    hidden: int = 4

    @nn.compact
    def __call__(self, x):
        init = dict(kernel_init=nn.initializers.normal(1.0), bias_init=nn.initializers.normal(0.5))
        h = jnp.tanh(nn.Dense(self.hidden, **init)(x))
        y = nn.Dense(self.features, **init)(h)
        return y if self.features > 1 else y[:, 0]


SMALL_GAME = Game(
    generator=linen_player(TanhMLP(2)),
    discriminator=linen_player(TanhMLP(1)),
    loss=losses.get_loss("nonsaturating"),
    g_optimizer=optax.sgd(1.0),
    d_optimizer=optax.sgd(1.0),
    z_dim=2,
)


def fake_logit_penalty(d_params, real, fake):
    """A penalty on the fakes, so that it couples D's field to θ_G too; in every small-game test (one compile)."""
    return 0.1 * jnp.mean(jnp.square(SMALL_GAME.discriminator.apply(d_params, {}, fake)[0]))


@functools.lru_cache
def small_game_point(seed: int):
    """(g_params, d_params, real, z) as float64 numpy arrays; n = 22 + 17 = 39 parameters.

    Drawn with numpy into the structure that Linen's init gives (traced by eval_shape, never run): eager JAX
    would compile every primitive it meets, seconds on a busy machine. Kernels ~ N(0, 1), biases ~ N(0, 1/4).
    """
    rng = np.random.default_rng(seed)
    real = rng.normal(size=(16, 2)) + 1.0
    z = rng.normal(size=(16, 2))

    def draw(player, example):
        shapes = jax.eval_shape(lambda: player.init(jax.random.key(0), example)[0])
        return jax.tree_util.tree_map_with_path(
            lambda path, leaf: rng.normal(scale=0.5 if path[-1].key == "bias" else 1.0, size=leaf.shape), shapes
        )

    return draw(SMALL_GAME.generator, z), draw(SMALL_GAME.discriminator, real), real, z


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def test_jacobian_matches_finite_differences(x64):
    g_params, d_params, real, z = small_game_point(0)
    jac = np.asarray(game_jacobian(SMALL_GAME, g_params, d_params, real, z, fake_logit_penalty))
    assert jac.shape == (39, 39) and jac.dtype == np.float64

    flat, unravel = ravel_pytree((g_params, d_params))
    field = jax.jit(
        lambda x: ravel_pytree(vector_field(SMALL_GAME, *unravel(x), real, z, fake_logit_penalty))[0]
    )
    h = 1e-6
    flat = np.asarray(flat)
    columns = [(np.asarray(field(flat + h * e)) - field(flat - h * e)) / (2 * h) for e in np.eye(flat.size)]
    fd = np.stack(columns, axis=1)
    # Central differences in float64: truncation O(h²) ~ 1e-12, rounding O(eps/h) ~ 1e-10. Differences see
    # values only, so a stop_gradient on the fakes (in D's loss or in the penalty) would show up here.
    np.testing.assert_allclose(jac, fd, rtol=1e-6, atol=1e-8)
    n_g = ravel_pytree(g_params)[0].size
    assert np.abs(jac[:n_g, n_g:]).max() > 1e-2 and np.abs(jac[n_g:, :n_g]).max() > 1e-2  # coupled both ways
    assert not np.allclose(jac, -jac.T, atol=1e-2) and not np.allclose(jac, jac.T, atol=1e-2)


def by_magnitude(eigenvalues):
    return eigenvalues[np.lexsort((-eigenvalues.imag, -eigenvalues.real, -np.abs(eigenvalues)))]


# Seed 13: the dominant eigenvalue is real (6.86; next |2.80|). Seed 59: it is a complex pair (-4.39 ± 0.30i, a
# stable spiral; next |1.33|).
@pytest.mark.parametrize("seed", [13, 59])
def test_arnoldi_finds_the_largest_eigenvalues(x64, seed):
    g_params, d_params, real, z = small_game_point(seed)
    args = (SMALL_GAME, g_params, d_params, real, z)
    exact = by_magnitude(np.linalg.eigvals(np.asarray(game_jacobian(*args, fake_logit_penalty))))
    magnitudes = np.abs(exact)
    assert (exact[0].imag != 0) == (seed == 59)  # both regimes (real, complex pair) are really exercised

    # Arnoldi with m = 20 < n = 39 Krylov vectors: the outer, well-separated Ritz values converge geometrically
    # in m (observed error ≤ 1e-10 here, 1e-5 at m = 10); 1e-6·|λ1| is far below the magnitude gap to the
    # 4th eigenvalue, which k = 3 must not pick up.
    k = 3
    assert magnitudes[k - 1] - magnitudes[k] > 0.15
    arnoldi = top_eigenvalues_arnoldi(*args, k=k, num_iters=20, key=jax.random.key(seed), d_penalty=fake_logit_penalty)
    np.testing.assert_allclose(arnoldi, exact[:k], rtol=0, atol=1e-6 * magnitudes[0])


def test_argument_checks():
    args = (DIRAC_GAMES["minimax"], *dirac_params(0.0, 0.0), DIRAC_REAL, DIRAC_Z)
    with pytest.raises(ValueError, match="k <= num_iters"):
        top_eigenvalues_arnoldi(*args, k=3, num_iters=2, key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"^num_iters must be an integer >= 1, got 3.0$"):
        top_eigenvalues_arnoldi(*args, k=1, num_iters=3.0, key=jax.random.key(0))
