r"""The ring8 setting of Metz et al. 2016 in one file of plain JAX, independent of jaxgan, for cross-checks.

    python scripts/minimal_unrolled_ring.py --seed=0 --num_steps=30000 --g_eps_root=0 --d_eps_root=1e-8

8 Gaussians on a circle of radius 2 (std 0.02); z ~ N(0, I_256); G: 2 hidden ReLU layers of 128, D: input × 1/4,
one hidden ReLU layer of 128; orthogonal kernels with gain 0.8, zero biases; Adam(lr, β1 = 0.5, β2 = 0.999,
ε = 1e-8) written out here, with eps_root inside the square root (√(v̂ + eps_root) + ε, as optax has it) set
per player; batch 512; the minimax loss; the generator descends L_G(θ_G, θ_D^K) through K Adam steps of D on
one minibatch, D itself takes the first of them. Every `--eval_every` steps it prints the VEEGAN ring metrics
(modes with a sample within 3σ, the fraction of 2500 samples within 3σ of a mode) of fixed noise.

Nothing here imports jaxgan: the differences between this and the framework (BUILD_NOTES.md, "ring8 at the
paper's learning rate") are found by toggling the flags below one at a time.
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp


def orthogonal(key, shape, gain):
    a = jax.random.normal(key, (max(shape), min(shape)))
    q, r = jnp.linalg.qr(a)
    q = q * jnp.sign(jnp.diagonal(r))
    q = q if shape[0] >= shape[1] else q.T
    return gain * q[: shape[0], : shape[1]]


def mlp_init(key, sizes, gain):
    keys = jax.random.split(key, len(sizes) - 1)
    return [(orthogonal(k, (a, b), gain), jnp.zeros(b)) for k, a, b in zip(keys, sizes[:-1], sizes[1:])]


def mlp(params, x):
    for w, b in params[:-1]:
        x = jax.nn.relu(x @ w + b)
    w, b = params[-1]
    return x @ w + b


def adam_init(params):
    zeros = jax.tree.map(jnp.zeros_like, params)
    return (zeros, zeros, jnp.zeros((), jnp.int32))


def adam_update(grads, state, params, lr, eps_root, b1=0.5, b2=0.999, eps=1e-8):
    m, v, t = state
    t = t + 1
    m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, m, grads)
    v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, v, grads)
    c1, c2 = 1 - b1 ** t.astype(jnp.float32), 1 - b2 ** t.astype(jnp.float32)
    new = jax.tree.map(lambda p, m, v: p - lr * (m / c1) / (jnp.sqrt(v / c2 + eps_root) + eps), params, m, v)
    return new, (m, v, t)


def ring(key, n, modes=8, radius=2.0, std=0.02):
    angle = 2 * jnp.pi * jax.random.randint(key, (n,), 0, modes) / modes
    centre = radius * jnp.stack([jnp.cos(angle), jnp.sin(angle)], -1)
    return centre + std * jax.random.normal(jax.random.fold_in(key, 1), (n, 2))


def disc(d, x):
    return mlp(d, x / 4)[:, 0]


def init(seed):
    """(G, D, G's Adam state, D's Adam state) and the run's data key and evaluation key."""
    k_g, k_d, k_run, k_eval = jax.random.split(jax.random.key(seed), 4)
    g = mlp_init(k_g, [256, 128, 128, 2], 0.8)
    d = mlp_init(k_d, [2, 128, 1], 0.8)
    return (g, d, adam_init(g), adam_init(d)), k_run, k_eval


def make_step(unroll_steps=10, g_lr=1e-4, d_lr=1e-4, g_eps_root=0.0, d_eps_root=1e-8):
    """`step(state, real, z) -> state`: one unrolled update of both players."""

    def d_loss(d, real, fake):  # −E log σ(D(x)) − E log(1 − σ(D(G(z))))
        return jnp.mean(jax.nn.softplus(-disc(d, real))) + jnp.mean(jax.nn.softplus(disc(d, fake)))

    def d_step(d, d_opt, real, fake):
        return adam_update(jax.grad(d_loss)(d, real, fake), d_opt, d, d_lr, d_eps_root)

    def step(state, real, z):
        g, d, g_opt, d_opt = state

        def surrogate(g):
            fake = mlp(g, z)
            dk, dk_opt = d, d_opt
            for _ in range(unroll_steps):
                dk, dk_opt = d_step(dk, dk_opt, real, fake)
            return -jnp.mean(jax.nn.softplus(disc(dk, fake)))  # minimax: G minimises E log(1 − σ(D(G(z))))

        g_grads = jax.grad(surrogate)(g)
        new_d, new_d_opt = d_step(d, d_opt, real, jax.lax.stop_gradient(mlp(g, z)))
        new_g, new_g_opt = adam_update(g_grads, g_opt, g, g_lr, g_eps_root)
        return new_g, new_d, new_g_opt, new_d_opt

    return step


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num_steps", type=int, default=30000)
    p.add_argument("--eval_every", type=int, default=5000)
    p.add_argument("--unroll_steps", type=int, default=10)
    p.add_argument("--g_lr", type=float, default=1e-4)
    p.add_argument("--d_lr", type=float, default=1e-4)
    p.add_argument("--g_eps_root", type=float, default=0.0)
    p.add_argument("--d_eps_root", type=float, default=1e-8)
    p.add_argument("--batch", type=int, default=512)
    args = p.parse_args()

    state, k_run, k_eval = init(args.seed)
    update = make_step(args.unroll_steps, args.g_lr, args.d_lr, args.g_eps_root, args.d_eps_root)

    def step(state, key):
        real = ring(jax.random.fold_in(key, 0), args.batch)
        z = jax.random.normal(jax.random.fold_in(key, 1), (args.batch, 256))
        return update(state, real, z), None

    @jax.jit
    def run_chunk(state, start):
        keys = jax.vmap(lambda i: jax.random.fold_in(k_run, i))(start + jnp.arange(args.eval_every))
        return jax.lax.scan(step, state, keys)[0]

    means = 2.0 * jnp.stack([jnp.cos(2 * jnp.pi * jnp.arange(8) / 8), jnp.sin(2 * jnp.pi * jnp.arange(8) / 8)], -1)
    z_eval = jax.random.normal(k_eval, (2500, 256))
    t0 = time.time()
    for start in range(0, args.num_steps, args.eval_every):
        state = run_chunk(state, start)
        x = mlp(state[0], z_eval)
        dist = jnp.linalg.norm(x[:, None] - means[None], axis=-1)
        hq = dist.min(1) <= 3 * 0.02
        modes = int(jnp.sum(jnp.bincount(jnp.where(hq, dist.argmin(1), 8), length=9)[:8] > 0))
        print(json.dumps({"step": start + args.eval_every, "modes": modes, "high_quality": round(float(hq.mean()), 4),
                          "seconds": round(time.time() - t0, 1)}), flush=True)


if __name__ == "__main__":
    main()
