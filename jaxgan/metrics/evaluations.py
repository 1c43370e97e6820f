"""Evaluations: what a run measures at each evaluation step, writes to eval.json and draws in samples.png.

An `Evaluation` is four functions and an optional fifth:

* `evaluate(game, state) -> (metrics, snapshot)`: scalar metrics (jit-able) and an array saved per evaluation
  (G's samples for the mixtures, the point (θ, ψ) for the Dirac-GAN),
* `summarize(game, state, metrics) -> dict`: its fields of eval.json,
* `describe(metrics) -> str`: its part of the console line of an evaluation,
* `plot(path, snapshots, game, config)`: the figure `samples.png` from the saved snapshots (and any figures of its
  own beside it),
* optionally `host_scalars(metrics) -> dict`: scalars computed on the host from `evaluate`'s arrays, before the
  scalars are logged (a best matching; the Inception network, whose weights stay out of the compiled evaluation).

They are chosen by name in `config.evaluations`, from `EVALUATIONS`, their settings in `config.eval`; the first one's snapshots and figure are
saved. An InfoGAN run on images then redraws `samples.png` as its codes' sweep from the final G
(`infogan_code_sweep`), not from the snapshots.
"""

from __future__ import annotations

import pathlib
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxgan import plotting
from jaxgan.conditioning import Labelled, data_of
from jaxgan.data import Dataset
from jaxgan.dynamics import jacobian_eigenvalues, vector_field
from jaxgan.eager import outside_any_trace
from jaxgan.game import Game, generate
from jaxgan.metrics.memorization import nearest_neighbours
from jaxgan.metrics.mixture import mixture_metrics
from jaxgan.registry import Registry
from jaxgan.state import TrainState

# The memorization number: samples closer to a training image than all but this fraction of held-out images are.
MEMORIZATION_QUANTILE = 0.05
# The eval noise is a fixed stream of its own, so snapshots over training show the same z mapped by a changing G.
EVAL_STREAM = 2**31 - 1
# The image metrics' settings: the Inception Score over 10 splits (Salimans et al. 2016), the k-NN radii of
# precision/recall with k = 3 (Kynkäänniemi et al. 2019).
INCEPTION_SCORE_SPLITS = 10
PRECISION_RECALL_K = 3
STACKED_REFERENCE = 10_000
# The fewest samples both take: one per Inception Score split, and k + 1 for a k-th nearest neighbour.
MIN_IMAGE_SAMPLES = max(INCEPTION_SCORE_SPLITS, PRECISION_RECALL_K + 1)


class Evaluation(NamedTuple):
    evaluate: Callable[[Game, TrainState], tuple[dict[str, jax.Array], jax.Array]]
    summarize: Callable[[Game, TrainState, dict[str, np.ndarray]], dict[str, Any]]
    describe: Callable[[dict[str, np.ndarray]], str]
    plot: Callable[[Any, dict[int, np.ndarray], Game, ml_collections.ConfigDict], None]
    # Scalars computed on the host from `evaluate`'s arrays (per run of a sweep), logged beside its own scalars.
    host_scalars: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]] = lambda m: {}


def eval_noise(game: Game, state: TrainState, num_samples: int, truncation: float = 0.0) -> jax.Array | Labelled:
    """The fixed evaluation noise; in a conditioned game the classes (or InfoGAN's categorical code) cycle through
    0, 1, ..., K − 1, so every class is asked for equally often and the figures can show one row per class.

    `truncation` ψ > 0: the truncation trick (Brock et al. 2019, Section 3.1): z ~ N(0, I) truncated to [−ψ, ψ]
    per coordinate (what resampling the values outside the threshold gives), drawn from the same key."""
    key = jax.random.fold_in(state.key, EVAL_STREAM)
    z = game.sample_noise(key, num_samples)
    if truncation > 0:
        data = data_of(z)
        truncated = jax.random.truncated_normal(key, -truncation, truncation, data.shape, data.dtype)
        z = z.replace(data=truncated) if isinstance(z, Labelled) else truncated
    if not isinstance(z, Labelled):
        return z
    if z.labels is not None:
        return z.replace(labels=jnp.arange(num_samples) % game.conditioning.num_classes)
    if z.categorical is not None:
        return z.replace(categorical=jnp.arange(num_samples) % game.conditioning.categorical)
    return z


def eval_generator_key(state: TrainState) -> jax.Array:
    """The fixed key of G's own randomness at evaluation (StyleGAN's noise inputs), beside `eval_noise`'s z."""
    return jax.random.fold_in(jax.random.fold_in(state.key, EVAL_STREAM), 2)


def generate_ema(game: Game, state: TrainState, z: jax.Array | Labelled) -> jax.Array:
    """Samples of the moving average of G. Batch norm's running statistics belong to the trained G, not to the
    averaged weights, so an averaged G with batch norm normalises by the statistics of the evaluation batch itself
    (train mode, its state update discarded): the 'standing statistics' of Brock et al. 2019, Appendix C, with the
    evaluation batch as the standing batch. Other model state (StyleGAN's tracked mean w̄) is used as it is."""
    batch_norm = bool(jax.tree.leaves(state.g_model_state.get("batch_stats", {})))
    samples, _ = generate(
        game, state.g_params_ema, state.g_model_state, z, train=batch_norm, key=eval_generator_key(state)
    )
    return data_of(samples)


def requested_classes(z: jax.Array | Labelled) -> jax.Array | None:
    """The classes (or InfoGAN's categorical code) a conditioned G was asked for; None when unconditioned."""
    if not isinstance(z, Labelled):
        return None
    return z.labels if z.labels is not None else z.categorical


def evaluation_samples(game: Game, state: TrainState, config: ml_collections.ConfigDict) -> tuple[Any, jax.Array]:
    """(z, G's evaluation-mode samples): `eval_num_samples` of the fixed evaluation noise (`eval_noise`, truncated
    at `config.eval.truncation`) and G's output on it, as arrays (for a conditioned G, without the labels)."""
    z = eval_noise(game, state, config.eval_num_samples, config.eval.truncation)
    samples, _ = generate(game, state.g_params, state.g_model_state, z, train=False, key=eval_generator_key(state))
    return z, data_of(samples)


def image_snapshot(samples: jax.Array, z: jax.Array | Labelled) -> jax.Array | Labelled:
    """An image evaluation's saved snapshot: the samples in [0, 1], with the classes G was asked for, if any."""
    from jaxgan.data.images import to_unit_range

    classes = requested_classes(z)
    snapshot = to_unit_range(samples)
    return snapshot if classes is None else Labelled(snapshot, labels=classes)


def mixture_evaluation(config: ml_collections.ConfigDict, data: Dataset) -> Evaluation:
    """The VEEGAN/PacGAN mode metrics of G's samples (and of the EMA of G, when the run keeps one)."""
    mixture = data.info
    if mixture is None or not hasattr(mixture, "means"):
        raise ValueError(
            f"--config.evaluations: 'mixture' needs a mixture data set (ring, grid), not {config.data.name!r}"
            + ("; for images use 'images' (mnist_5k, digits, stacked_mnist) or 'samples'" if len(data.shape) == 3 else "")
        )
    num_samples = config.eval_num_samples

    def evaluate(game: Game, state: TrainState):
        z = eval_noise(game, state, num_samples, config.eval.truncation)
        samples, _ = generate(game, state.g_params, state.g_model_state, z, train=False, key=eval_generator_key(state))
        metrics = mixture_metrics(samples, mixture.means, mixture.std)
        if state.g_params_ema is not None:  # the averaged generator, on the same noise
            ema_samples = generate_ema(game, state, z)
            ema = mixture_metrics(ema_samples, mixture.means, mixture.std)
            metrics.update({f"ema_{k}": v for k, v in ema.items() if k != "mode_counts"})
        return metrics, samples

    def summarize(game, state, m):
        keys = ("modes", "high_quality_fraction", "reverse_kl", "ema_modes", "ema_high_quality_fraction", "ema_reverse_kl")
        return {k: m[k].item() for k in keys if k in m}

    def describe(m):
        text = (
            f"modes {int(m['modes'])}/{mixture.num_modes}  high_quality {float(m['high_quality_fraction']):.3f}  "
            f"reverse_kl {float(m['reverse_kl']):.3f}"
        )
        if "ema_modes" in m:
            text += (
                f"  | ema: modes {int(m['ema_modes'])}/{mixture.num_modes}  "
                f"high_quality {float(m['ema_high_quality_fraction']):.3f}  reverse_kl {float(m['ema_reverse_kl']):.3f}"
            )
        return text

    def plot(path, snapshots, game, config):
        real = np.asarray(mixture.sample(jax.random.key(0), config.eval_num_samples))
        title = f"{describe_run(config)}: samples (blue), data (red)"
        plotting.plot_training_samples(path, snapshots, mixture, title=title, data=real)

    return Evaluation(evaluate, summarize, describe, plot)


NORM_PENALTIES = ("wgan_gp", "dragan")  # penalise (‖∇D‖ − 1)²: not differentiable where ∇D = 0
NO_JACOBIAN = "the gradient penalty's field jumps at psi = 0, so (0, 0) is no equilibrium and has no Jacobian"


def dirac_evaluation(config: ml_collections.ConfigDict, data: Dataset) -> Evaluation:
    """The Dirac-GAN (Mescheder et al. 2018): data at 0, p_θ = δ_θ, D_ψ(x) = ψx; equilibrium (0, 0).

    Records the point (θ, ψ) (the trajectory, one point per evaluation), its distance to the equilibrium, and the
    eigenvalues of the Jacobian of the update field at the equilibrium for the configured loss and penalty:
    negative real parts mean local convergence of the continuous dynamics. Under the gradient penalties (WGAN-GP,
    DRAGAN) the field has no Jacobian there: D's part −2λ(|ψ| − 1)·sign(ψ) jumps from +2λ to −2λ across ψ = 0, so
    (0, 0) is no equilibrium of it and the eigenvalues are recorded as None, with the reason.
    """

    if config.data.name != "dirac":
        raise ValueError(f"--config.evaluations: 'dirac' needs the dirac data set, not {config.data.name!r}")

    def point(state: TrainState) -> jax.Array:
        return jnp.concatenate([state.g_params["theta"], state.d_params["psi"]])

    def evaluate(game, state):
        p = point(state)
        metrics = {"theta": p[0], "psi": p[1], "distance_to_equilibrium": jnp.linalg.norm(p)}
        if state.g_params_ema is not None:  # the averaged θ: where simultaneous steps circle, their average closes in
            metrics["ema_theta"] = state.g_params_ema["theta"][0]
        return metrics, p

    def summarize(game, state, m):
        summary = {k: m[k].item() for k in ("distance_to_equilibrium", "theta", "psi", "ema_theta") if k in m}
        if game.penalty in NORM_PENALTIES and game.penalty_weight > 0:  # this run's (a sweep's differ)
            # a subgradient of 0 at ψ = 0 would give ±f'(0)i: eigenvalues of a Jacobian that does not exist
            return summary | {"jacobian_eigenvalues": None, "jacobian_note": NO_JACOBIAN}
        zeros = jax.tree.map(jnp.zeros_like, (state.g_params, state.d_params))
        eigenvalues = jacobian_eigenvalues(game, *zeros, jnp.zeros((1, 1)), jnp.zeros((1, game.z_dim)))
        return summary | {"jacobian_eigenvalues": [[float(e.real), float(e.imag)] for e in eigenvalues]}

    def describe(m):
        text = f"theta {float(m['theta']):+.4f}  psi {float(m['psi']):+.4f}  distance {float(m['distance_to_equilibrium']):.4f}"
        return text + (f"  | ema: theta {float(m['ema_theta']):+.4f}" if "ema_theta" in m else "")

    def plot(path, snapshots, game, config):
        steps = sorted(snapshots)
        trajectory = np.array([[config.dirac.theta0, config.dirac.psi0]] + [snapshots[s] for s in steps])
        plotting.plot_vector_field(path, dirac_field(game), trajectory, title=describe_run(config))

    return Evaluation(evaluate, summarize, describe, plot)


def dirac_field(game: Game) -> Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(θ, ψ) grids -> the update field v = (−∂L_G/∂θ, −∂L_D/∂ψ) on them (the plain simultaneous-gradient field)."""

    def at(theta, psi):
        v_g, v_d = vector_field(game, {"theta": theta[None]}, {"psi": psi[None]}, jnp.zeros((1, 1)), jnp.zeros((1, game.z_dim)))
        return v_g["theta"][0], v_d["psi"][0]

    batched = jax.jit(jax.vmap(at))

    def field(theta, psi):
        u, v = batched(jnp.asarray(theta.ravel(), jnp.float32), jnp.asarray(psi.ravel(), jnp.float32))
        return np.asarray(u).reshape(theta.shape), np.asarray(v).reshape(psi.shape)

    return field


def describe_run(config: ml_collections.ConfigDict) -> str:
    rule = config.update_rule
    if rule == "unrolled":
        rule += f" K={config.unroll_steps}"
    elif rule == "alternating":
        rule += f" n_critic={config.d_steps}"
    penalty = f", {config.penalty} {config.penalty_weight:g}" if config.penalty != "none" and config.penalty_weight else ""
    conditioned = f"{config.conditioning}, " if config.conditioning != "none" else ""
    return f"{conditioned}{rule}, {config.loss} loss{penalty}, seed {config.seed}"


def sample_evaluation(config: ml_collections.ConfigDict, data: Dataset) -> Evaluation:
    """G's `eval_num_samples` samples saved at each evaluation and drawn as a grid, with no metric: for image data
    that no shipped classifier can judge (`image_folder`, `tfds:NAME`). Conditioned runs keep the classes G was
    asked for, so the figure shows one row per class. The EMA of G, where the run keeps one, is not sampled here:
    `scripts/sample.py --generator=ema` draws it from any checkpoint."""
    if len(data.shape) != 3:
        raise ValueError(f"--config.evaluations: 'samples' is for image data, not {config.data.name!r}")

    def evaluate(game: Game, state: TrainState):
        z, samples = evaluation_samples(game, state, config)
        return {}, image_snapshot(samples, z)

    def plot(path, snapshots, game, config):
        plot_image_samples(path, snapshots, f"{config.data.name}, {describe_run(config)}")

    saved = "samples saved" + (" (G's; the EMA of G: scripts/sample.py --generator=ema)" if config.ema_decay else "")
    return Evaluation(evaluate, lambda game, state, m: {}, lambda m: saved, plot)


# InfoGAN's figure (Chen et al. 2016, Figure 2): a continuous code swept over [−2, 2], beyond the [−1, 1] it trains on.
CODE_SWEEP = np.linspace(-2.0, 2.0, 9)


def draws_code_sweep(game: Game, data_shape: tuple[int, ...]) -> bool:
    """Whether a run's samples.png is InfoGAN's code sweep: an InfoGAN game with a categorical and a continuous
    code, on images."""
    cond = game.conditioning
    return cond is not None and cond.kind == "infogan" and cond.categorical > 0 and cond.continuous > 0 and len(data_shape) == 3


def infogan_code_sweep(game: Game, state: TrainState, which: int = 0) -> np.ndarray:
    """G's evaluation-mode samples [categorical, len(CODE_SWEEP), H, W, C] in [0, 1] on one fixed z (from key 0):
    row k has categorical code k, column j continuous code `which` = CODE_SWEEP[j], the other continuous codes 0
    (the InfoGAN paper's Figure 2)."""
    from jaxgan.data.images import to_unit_range

    cond = game.conditioning
    z = game.noise(jax.random.key(0), (1, game.z_dim))
    rows, cols = cond.categorical, len(CODE_SWEEP)
    continuous = np.zeros((rows, cols, cond.continuous), np.float32)
    continuous[..., which] = CODE_SWEEP.astype(np.float32)[None, :]
    latent = Labelled(
        jnp.broadcast_to(z, (rows, cols, game.z_dim)),
        categorical=jnp.broadcast_to(jnp.arange(rows)[:, None], (rows, cols)),
        continuous=jnp.asarray(continuous),
    )
    samples, _ = generate(game, state.g_params, state.g_model_state, latent, train=False)
    return np.asarray(to_unit_range(samples.data))


def plot_code_sweep(path, game: Game, state: TrainState, title: str, which: int = 0) -> None:
    """`infogan_code_sweep` drawn as rows c1 = k, columns c{which + 2} over `CODE_SWEEP`."""
    grid = infogan_code_sweep(game, state, which)
    plotting.plot_image_rows(
        path, [f"c1={k}" for k in range(grid.shape[0])], list(grid),
        title=f"{title}: rows c1 (categorical), columns c{which + 2} from {CODE_SWEEP[0]:g} to {CODE_SWEEP[-1]:g}".replace("-", "−"),
        column_labels=[f"{v:+.1f}" for v in CODE_SWEEP],
    )  # fmt: skip


def plot_image_samples(path, snapshots: dict[int, np.ndarray], title: str) -> None:
    """The snapshots over training; where G was asked for classes, beside the final samples as one row per class."""
    labels = load_snapshot_labels(pathlib.Path(path).parent / "samples")
    if labels:
        final = max(snapshots)
        final_labels = labels[final] if labels[final].ndim == 1 else labels[final][0]  # a sweep: the first run
        plotting.plot_class_snapshots(path, snapshots, final_labels, title=title)
    else:
        plotting.plot_image_snapshots(path, snapshots, title=title)


def classify_stacked(classify: Callable, samples: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Each channel of stacked samples [n, H, W, 3] (in the models' range) read by the digit classifier `classify`
    (images -> (logits, features)): (logits [3, n, 10], features [3, n, d])."""
    channels = jnp.moveaxis(samples, -1, 0)[..., None]  # [3, n, H, W, 1]
    return jax.vmap(classify)(channels)


def stacked_mode_coverage(logits: jax.Array) -> dict[str, jax.Array]:
    """Stacked MNIST's mode coverage (Metz et al. 2016, Section 3.3) from the channels' digit logits [3, n, 10]
    (`classify_stacked`): `modes` = how many of the 1000 digit triples occur, `kl` = KL(triple histogram ‖ uniform)."""
    from jaxgan.metrics import image

    digits = jnp.argmax(logits, axis=-1)  # [3, n]
    modes, kl = image.mode_coverage(100 * digits[0] + 10 * digits[1] + digits[2], 1000)
    return {"modes": modes, "kl": kl}


def stacked_features(logits: jax.Array, features: jax.Array) -> tuple[jax.Array, jax.Array]:
    """A stacked image's triple logits [n, 1000] and features [n, 3d] from its channels' (`classify_stacked`): the
    channels are read independently, so p(triple | x) = p(d_R | R) p(d_G | G) p(d_B | B), whose log is the sum of
    the channels' log-softmaxes (index 100 d_R + 10 d_G + d_B, as the modes); the features are the channels'
    concatenated."""
    log_p = jax.nn.log_softmax(logits, axis=-1)
    triple = log_p[0][:, :, None, None] + log_p[1][:, None, :, None] + log_p[2][:, None, None, :]
    return triple.reshape(triple.shape[0], -1), jnp.concatenate(list(features), axis=-1)


def feature_metrics(held_out: jax.Array, features: jax.Array, logits: jax.Array, kid_subset: int) -> dict[str, jax.Array]:
    """FID, KID, Inception Score, precision and recall of samples' `features` [n, d] (and the classifier's
    `logits` [n, classes], for the IS) against the held-out images' features, in the settings above
    (`jaxgan.metrics.image` has the formulas); KID over 50 subsets of `kid_subset`."""
    from jaxgan.metrics import image

    precision, recall = image.precision_recall_from_features(held_out, features, k=PRECISION_RECALL_K)
    inception_score, _ = image.inception_score_from_logits(logits, num_splits=INCEPTION_SCORE_SPLITS)
    return {
        "fid": image.fid_from_features(held_out, features),
        "kid": image.kid_from_features(held_out, features, num_subsets=50, subset_size=kid_subset),
        "inception_score": inception_score,
        "precision": precision,
        "recall": recall,
    }


def check_image_sample_counts(config: ml_collections.ConfigDict, data: Dataset) -> None:
    """Raises ValueError (one line naming the flag) when the evaluation samples or the held-out images are too few
    for the image metrics."""
    num_held_out = data.info.test_images.shape[0]
    if config.eval_num_samples < MIN_IMAGE_SAMPLES:
        raise ValueError(
            f"--config.eval_num_samples={config.eval_num_samples}: the image metrics need at least "
            f"{MIN_IMAGE_SAMPLES} samples (the Inception Score's "
            f"{INCEPTION_SCORE_SPLITS} splits, precision/recall's {PRECISION_RECALL_K} nearest neighbours)"
        )
    if num_held_out < PRECISION_RECALL_K + 1:
        train = data.info.train_images  # None when the training split is streamed from disk
        of = "" if train is None else f" of the {num_held_out + train.shape[0]}"
        raise ValueError(
            f"--config.data.held_out_fraction={config.data.held_out_fraction!r}: holds out {num_held_out}{of} images; "
            f"the image metrics compare samples with the held-out images and need at least {PRECISION_RECALL_K + 1}"
        )


def image_evaluation(config: ml_collections.ConfigDict, data: Dataset) -> Evaluation:
    """FID, KID, Inception Score, precision and recall of `eval_num_samples` samples of G against the held-out
    split, all from the shipped digit classifier (`jaxgan.metrics.classifier`): features of its penultimate layer,
    its logits for the IS. The held-out features are computed once, on first use.

    Conditioned runs add `class_accuracy`, the classifier's agreement with the class G was asked for (for
    InfoGAN: `code_accuracy`, the agreement of the categorical code with the digit under the best one-to-one
    matching, as in Chen et al. 2016). Stacked MNIST (three digits as R, G, B) is judged as in Metz et al. 2016:
    each channel classified by the MNIST classifier, `modes` = how many of the 1000 digit triples are produced,
    `kl` = KL(generated triple histogram ‖ uniform); its FID, KID, IS, precision and recall are those of
    `stacked_features` (the channels' features concatenated, the IS over the 1000 triples) against a fixed draw of
    min(eval_num_samples, STACKED_REFERENCE) triples of held-out digits (no memorization number: the training
    triples are drawn afresh at each step). With an EMA of G every metric is also computed for the
    average (`ema_*`, same noise); the saved samples and the figure are G's, the ones the unprefixed metrics score."""
    from jaxgan.data.images import stacked_mnist_batch, to_model_range
    from jaxgan.metrics.classifier import held_out_images_it_trained_on, load_classifier

    stacked = config.data.name == "stacked_mnist"
    name = "mnist_5k" if stacked else config.data.name
    if name not in ("mnist_5k", "digits") or data.info is None:
        raise ValueError(
            f"--config.evaluations: 'images' needs mnist_5k, digits or stacked_mnist data (a shipped classifier), "
            f"not {config.data.name!r}; use --config.evaluations='(\"samples\",)' to save and draw samples only, or "
            f"'(\"inception\",)' for the metrics in Inception-v3's features (weights: --config.eval.inception_weights)"
        )
    num_samples = config.eval_num_samples
    num_held_out = data.info.test_images.shape[0]
    check_image_sample_counts(config, data)
    # Stacked MNIST's held-out triples are made of held-out digits, which the classifier must not have seen either.
    seen, classifier_held_out = held_out_images_it_trained_on(name, data.info.train_labels, data.info.test_labels)
    if seen:
        total = num_held_out + data.info.train_images.shape[0]
        raise ValueError(
            f"--config.data.held_out_fraction={config.data.held_out_fraction!r}: {seen} of the {num_held_out} "
            f"held-out images are ones the shipped {name} classifier was trained on, which would bias the metrics "
            f"against them; hold out at most its {classifier_held_out} of the {total} "
            f"(held_out_fraction <= {classifier_held_out / total:.3g})"
        )
    # Stacked MNIST's reference: this many triples of held-out digits (at most STACKED_REFERENCE: the reference's
    # k-NN radii cost n² distances, and its features are computed once and kept).
    num_stacked_reference = min(num_samples, STACKED_REFERENCE)
    kid_subset = min(1000, num_samples, num_stacked_reference if stacked else num_held_out)
    loaded: dict[str, Any] = {}

    def reference() -> tuple[Callable, jax.Array]:
        """The classifier and the held-out features, loaded on first use (building a task stays cheap, also
        inside `jax.eval_shape`) and evaluated eagerly even when first used inside a trace. Also the training
        images' features and the memorization thresholds: the `MEMORIZATION_QUANTILE` quantile of the held-out
        images' distances to their nearest training image, in pixels and in features."""
        if not loaded:
            loaded.update(outside_any_trace(load))
        return loaded["classify"], loaded["held_out"]

    def load() -> dict[str, Any]:
        classify, _ = load_classifier(name, data.info.test_images.shape[1:])
        if stacked:  # triples of held-out digits, a fixed draw
            triples, _ = stacked_mnist_batch(jax.random.key(0), data.info.test_images, data.info.test_labels, num_stacked_reference)
            held_out = stacked_features(*classify_stacked(classify, to_model_range(triples)))[1]
            return dict(classify=classify, held_out=np.asarray(held_out))
        held_out_x = to_model_range(jnp.asarray(data.info.test_images))
        train_x = to_model_range(jnp.asarray(data.info.train_images))
        held_out = classify(held_out_x)[1]
        train_features = classify(train_x)[1]
        thresholds = [
            float(jnp.quantile(nearest_neighbours(q, r)[0], MEMORIZATION_QUANTILE))
            for q, r in ((held_out_x, train_x), (held_out, train_features))
        ]
        return dict(classify=classify, held_out=np.asarray(held_out), train_features=np.asarray(train_features),
                    thresholds=thresholds)  # fmt: skip

    def memorization(samples: jax.Array, features: jax.Array) -> dict[str, jax.Array]:
        """Fractions of samples closer to a training image than all but `MEMORIZATION_QUANTILE` of the held-out
        images are (`jaxgan.metrics.memorization`), in pixels and in the classifier's features."""
        train_x = to_model_range(jax.lax.optimization_barrier(jnp.asarray(data.info.train_images)))
        train_features = jax.lax.optimization_barrier(jnp.asarray(loaded["train_features"]))
        pixel_threshold, feature_threshold = loaded["thresholds"]
        return {
            "memorized_pixels": jnp.mean(nearest_neighbours(samples, train_x)[0] < pixel_threshold),
            "memorized_features": jnp.mean(nearest_neighbours(features, train_features)[0] < feature_threshold),
        }

    def measure(game: Game, samples: jax.Array, classes: jax.Array | None) -> dict[str, jax.Array]:
        classify, held_out = reference()
        # A runtime value, not a constant: XLA would otherwise spend seconds constant-folding the held-out
        # statistics (covariance, k-NN radii) at every compilation.
        held_out = jax.lax.optimization_barrier(jnp.asarray(held_out))
        if stacked:
            channel_logits, channel_features = classify_stacked(classify, samples)
            metrics = stacked_mode_coverage(channel_logits)
            logits, features = stacked_features(channel_logits, channel_features)
            metrics.update(feature_metrics(held_out, features, logits, kid_subset))
            return metrics
        logits, features = classify(samples)
        metrics = feature_metrics(held_out, features, logits, kid_subset)
        metrics.update(memorization(samples, features))
        if classes is not None:
            predicted = jnp.argmax(logits, axis=-1)
            if game.conditioning.uses_labels:
                metrics["class_accuracy"] = jnp.mean(predicted == classes)
            else:  # InfoGAN: which digit each code value makes, as counts [code, digit]
                metrics["code_digit_counts"] = jnp.zeros((game.conditioning.categorical, logits.shape[-1])).at[
                    classes, predicted
                ].add(1.0)
        return metrics

    def evaluate(game: Game, state: TrainState):
        z, samples = evaluation_samples(game, state, config)
        classes = requested_classes(z)
        metrics = measure(game, samples, classes)
        if state.g_params_ema is not None:
            ema_samples = generate_ema(game, state, z)
            metrics.update({f"ema_{k}": v for k, v in measure(game, ema_samples, classes).items()})
        # The figure shows G, whose samples the unprefixed metrics (the tables' values) score. Early in training
        # an average of G's weights can be far worse than G (BUILD_NOTES.md, "The sample grids showed the EMA").
        return metrics, image_snapshot(samples, z)

    scalars = ("modes", "kl", "fid", "kid", "inception_score", "precision", "recall") if stacked else (
        "fid", "kid", "inception_score", "precision", "recall", "class_accuracy", "memorized_pixels", "memorized_features",
    )  # fmt: skip

    def summarize(game, state, m):
        out = {}
        for prefix in ("", "ema_"):
            out.update({prefix + k: m[prefix + k].item() for k in scalars if prefix + k in m})
            if prefix + "code_digit_counts" in m:
                out[prefix + "code_accuracy"] = code_accuracy(np.asarray(m[prefix + "code_digit_counts"]))
        return out

    def describe(m):
        if stacked:
            text = f"modes {int(m['modes'])}/1000  kl {float(m['kl']):.3f}  fid {float(m['fid']):.2f}"
            if "ema_modes" in m:
                text += f"  | ema: modes {int(m['ema_modes'])}/1000  kl {float(m['ema_kl']):.3f}  fid {float(m['ema_fid']):.2f}"
            return text
        text = (
            f"fid {float(m['fid']):.2f}  kid {float(m['kid']):.4f}  is {float(m['inception_score']):.2f}  "
            f"precision {float(m['precision']):.3f}  recall {float(m['recall']):.3f}"
        )
        if "class_accuracy" in m:
            text += f"  class_accuracy {float(m['class_accuracy']):.3f}"
        if "code_digit_counts" in m and np.ndim(m["code_digit_counts"]) == 2:
            text += f"  code_accuracy {code_accuracy(np.asarray(m['code_digit_counts'])):.3f}"
        if "ema_fid" in m:
            text += f"  | ema: fid {float(m['ema_fid']):.2f}  is {float(m['ema_inception_score']):.2f}"
            if "ema_class_accuracy" in m:
                text += f"  class_accuracy {float(m['ema_class_accuracy']):.3f}"
            if "ema_code_digit_counts" in m and np.ndim(m["ema_code_digit_counts"]) == 2:
                text += f"  code_accuracy {code_accuracy(np.asarray(m['ema_code_digit_counts'])):.3f}"
        return text

    def plot(path, snapshots, game, config):
        title = f"{config.data.name}, {describe_run(config)}"
        plot_image_samples(path, snapshots, title)
        if snapshots and not stacked:  # the final samples beside their nearest training images
            classify, _ = reference()
            samples = np.asarray(snapshots[max(snapshots)][:8], np.float32)
            samples = samples if samples.ndim == 4 else samples[0]  # a sweep: the first run
            train = np.asarray(data.info.train_images, np.float32) / 255.0
            pixel = np.asarray(nearest_neighbours(jnp.asarray(samples), jnp.asarray(train))[1])
            feature_distances, feature = nearest_neighbours(
                classify(jnp.asarray(samples) * 2 - 1)[1], jnp.asarray(loaded["train_features"])
            )
            plotting.plot_nearest_neighbours(
                pathlib.Path(path).with_name("nearest_neighbours.png"), samples, train, pixel, np.asarray(feature),
                feature_distances=np.asarray(feature_distances), title=f"{title}: final samples, nearest training images",
            )  # fmt: skip

    return Evaluation(evaluate, summarize, describe, plot, code_accuracies)


# Images per forward pass of the Inception network (its memory grows with this many 299×299 images).
INCEPTION_BATCH = 100


def inception_evaluation(config: ml_collections.ConfigDict, data: Dataset) -> Evaluation:
    """FID, KID, Inception Score, precision and recall of `eval_num_samples` samples of G against the held-out
    split, in the FID Inception-v3's pool3 features and logits (`jaxgan.metrics.inception`): the published metrics
    of natural images, for the image data that the shipped digit classifier cannot judge (`tfds:NAME`,
    `image_folder`). The weights come from a file the user makes once (`config.eval.inception_weights`, an .npz of
    pytorch-fid's port of the 2015 graph; the module docstring says how); grey images are repeated to RGB and every
    image is resized to 299×299, as in every FID implementation. With an EMA of G the metrics are also computed for
    the average (`ema_*`, same noise).

    The network runs outside the evaluation's compiled program: `evaluate` returns the samples
    (`inception_samples`, not logged), and `host_scalars` passes them through the network `INCEPTION_BATCH` at a
    time, so its 24M weights are not baked into every compilation of the evaluation. The held-out features are
    computed once, on first use."""
    from jaxgan.data.images import to_model_range
    from jaxgan.metrics.inception import inception_features, load_inception_params

    if len(data.shape) != 3 or not hasattr(data.info, "test_images"):
        raise ValueError(f"--config.evaluations: 'inception' is for image data with a held-out split, not {config.data.name!r}")
    if config.data.name == "stacked_mnist":
        raise ValueError(
            "--config.evaluations: 'inception' would compare stacked (RGB) samples with grey held-out digits; "
            "stacked_mnist is judged by 'images' (modes of 1000, KL)"
        )
    weights = config.eval.inception_weights
    how = "see jaxgan.metrics.inception for how to make it from pytorch-fid's .pth"
    if not weights:
        raise ValueError(
            f"--config.eval.inception_weights='': the 'inception' evaluation needs the FID Inception weights as an .npz ({how})"
        )
    if pathlib.Path(weights).suffix != ".npz":
        raise ValueError(f"--config.eval.inception_weights={weights!r}: not an .npz file ({how})")
    if not pathlib.Path(weights).is_file():
        raise ValueError(f"--config.eval.inception_weights={weights!r}: no such file")
    check_image_sample_counts(config, data)
    num_samples = config.eval_num_samples
    kid_subset = min(1000, num_samples, data.info.test_images.shape[0])
    try:  # now, not at the first evaluation after training has begun: a file of another layout is one line
        loaded: dict[str, Any] = {"variables": load_inception_params(weights)}
    except ValueError as error:
        raise ValueError(f"--config.eval.inception_weights={weights!r}: {error}") from None

    def network(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(features [n, 2048], logits [n, 1008]) of images in the models' range [−1, 1]."""
        if "held_out" not in loaded:
            held_out = to_model_range(jnp.asarray(data.info.test_images))
            loaded["held_out"] = inception_features(loaded["variables"], held_out, INCEPTION_BATCH).features
        out = inception_features(loaded["variables"], images, INCEPTION_BATCH)
        return out.features, out.logits

    def evaluate(game: Game, state: TrainState):
        z, samples = evaluation_samples(game, state, config)
        metrics = {"inception_samples": samples}
        if state.g_params_ema is not None:
            metrics["ema_inception_samples"] = generate_ema(game, state, z)
        return metrics, image_snapshot(samples, z)

    metrics_of = jax.jit(feature_metrics, static_argnames="kid_subset")  # op by op, it compiles ~300 programs

    def host_scalars(m: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for prefix in ("", "ema_"):
            if prefix + "inception_samples" not in m:
                continue
            samples = np.asarray(m[prefix + "inception_samples"])
            runs = []
            for run in samples.reshape(-1, *samples.shape[-4:]):  # a sweep's runs, one at a time
                features, logits = network(run)
                runs.append(metrics_of(loaded["held_out"], features, logits, kid_subset=kid_subset))
            for key in runs[0]:
                values = np.asarray([np.asarray(r[key]) for r in runs])
                out[prefix + key] = values if samples.ndim == 5 else values[0]
        return out

    scalars = ("fid", "kid", "inception_score", "precision", "recall")

    def summarize(game, state, m):
        return {prefix + k: float(m[prefix + k]) for prefix in ("", "ema_") for k in scalars if prefix + k in m}

    def describe(m):
        text = (
            f"inception: fid {float(m['fid']):.2f}  kid {float(m['kid']):.4f}  is {float(m['inception_score']):.2f}  "
            f"precision {float(m['precision']):.3f}  recall {float(m['recall']):.3f}"
        )
        return text + (f"  | ema: fid {float(m['ema_fid']):.2f}  is {float(m['ema_inception_score']):.2f}" if "ema_fid" in m else "")

    def plot(path, snapshots, game, config):
        plot_image_samples(path, snapshots, f"{config.data.name}, {describe_run(config)}")

    return Evaluation(evaluate, summarize, describe, plot, host_scalars)


def code_accuracies(metrics: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """InfoGAN's `code_accuracy` of G (and `ema_code_accuracy` of its EMA) from an evaluation's counts [code value,
    class], or [run, code value, class] for a sweep (one value per run): a best matching, so computed on the host."""
    out = {}
    for prefix in ("", "ema_"):
        if prefix + "code_digit_counts" in metrics:
            counts = np.asarray(metrics[prefix + "code_digit_counts"])
            values = [code_accuracy(c) for c in counts.reshape(-1, *counts.shape[-2:])]
            out[prefix + "code_accuracy"] = np.asarray(values if counts.ndim == 3 else values[0])
    return out


def code_accuracy(counts: np.ndarray) -> float:
    """Agreement of a categorical code with the classes under the best one-to-one matching of code values to
    classes (Hungarian algorithm), from counts [code value, class]."""
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(-counts)
    return float(counts[rows, cols].sum() / max(counts.sum(), 1))


def load_snapshot_labels(samples_dir: pathlib.Path) -> dict[int, np.ndarray]:
    return {plotting.sample_step(p): np.load(p) for p in sorted(samples_dir.glob("step_*_labels.npy"))}


# build(config, dataset) -> Evaluation
# Their settings form `config.eval`.
EVALUATIONS = Registry("evaluation")
# `truncation` ψ > 0: the truncation trick at evaluation (Brock et al. 2019): the evaluation noise is drawn from
# N(0, I) truncated to [−ψ, ψ] per coordinate, trading variety for sample quality; 0 evaluates G on untruncated noise.
TRUNCATION = {"truncation": 0.0}
EVALUATIONS.register("mixture", TRUNCATION, mixture_evaluation)
EVALUATIONS.register("dirac", {}, dirac_evaluation)
EVALUATIONS.register("images", TRUNCATION, image_evaluation)
EVALUATIONS.register("samples", TRUNCATION, sample_evaluation)
EVALUATIONS.register("inception", {**TRUNCATION, "inception_weights": ""}, inception_evaluation)


def combine(evaluations: list[Evaluation]) -> Evaluation:
    """Several evaluations as one: metrics, summaries and descriptions merged; the first one's snapshot and figure."""
    if len(evaluations) == 1:
        return evaluations[0]
    first = evaluations[0]

    def evaluate(game, state):
        metrics, snapshot = first.evaluate(game, state)
        for e in evaluations[1:]:
            metrics = {**metrics, **e.evaluate(game, state)[0]}
        return metrics, snapshot

    def summarize(game, state, m):
        out: dict[str, Any] = {}
        for e in evaluations:
            out.update(e.summarize(game, state, m))
        return out

    def host_scalars(m):
        return {k: v for e in evaluations for k, v in e.host_scalars(m).items()}

    return Evaluation(evaluate, summarize, lambda m: "  ".join(e.describe(m) for e in evaluations), first.plot, host_scalars)


def build_evaluation(config: ml_collections.ConfigDict, data: Dataset) -> Evaluation:
    names = tuple(config.evaluations)
    if not names:
        raise ValueError("config.evaluations is empty: name at least one of " + ", ".join(EVALUATIONS.names))
    return combine([EVALUATIONS[name].build(config, data) for name in names])
