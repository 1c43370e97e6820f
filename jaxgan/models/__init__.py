"""Players and the model registry.

The protocol: a player is a pair of pure functions over explicit parameters,

    init(key, example, labels=None) -> (params, model_state)
    apply(params, model_state, inputs, *, train=True, labels=None, rngs=None) -> (outputs, model_state)

`model_state` holds the non-parameter collections a Linen module mutates in training (batch statistics, the
power-iteration vector of spectral normalisation); it is an empty dict for stateless models. With `train=False`
(evaluation) batch norm uses its running averages and the state comes back unchanged. `labels` ([batch] int32
class indices) reach class-conditional models; `rngs` (e.g. {"dropout": key}) reach stochastic layers. Update rules
only see this protocol, so any framework that can provide the two functions (Linen today, NNX later) plugs in.

Models are chosen by name, `config.generator.name` and `config.discriminator.name`, from `GENERATORS` and
`DISCRIMINATORS`: a new model is one module plus one `register` line with its default settings (see README.md,
"Extending").
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from jaxgan.models.autoencoder import AutoencoderDiscriminator
from jaxgan.models.calling import call_kwargs
from jaxgan.models.dcgan import DCGANDiscriminator, DCGANGenerator, UnsupportedImageSize
from jaxgan.models.dirac import DiracGenerator, LinearCritic
from jaxgan.models.lapgan import LaplacianDiscriminator, LaplacianGenerator
from jaxgan.models.mlp import ACTIVATIONS, KERNEL_INITS, MLP, Maxout, MLPDiscriminator, MLPGenerator
from jaxgan.models.packing import Packed
from jaxgan.models.progan import ProgressiveDiscriminator, ProgressiveGenerator, level_at, progressive_plan
from jaxgan.models.resnet import ResNetDiscriminator, ResNetGenerator
from jaxgan.models.small_dcgan import SmallDCGANDiscriminator, SmallDCGANGenerator
from jaxgan.models.stylegan import StyleGAN2Discriminator, StyleGAN2Generator
from jaxgan.registry import Registry

Params = Any
ModelState = dict


class Player(NamedTuple):
    init: Callable[..., tuple[Params, ModelState]]
    apply: Callable[..., tuple[Any, ModelState]]
    # False where an example's output depends on the other examples of its batch beyond model state (the minibatch
    # standard deviation of ProGAN's and StyleGAN2's D): its loss is then not a mean that devices can take apart.
    per_example: bool = True


def linen_player(module: nn.Module) -> Player:
    """Wraps a Linen module as a `Player`; every non-`params` collection is treated as mutable model state.

    The module's `__call__(inputs, ...)` gets `train=` if it takes a `train` argument and `labels=` when labels
    are given, so stateless modules without either (the MLPs, a user's own) plug in unchanged. `apply(...,
    method="name")` calls another method of the module the same way (StyleGAN's `mapping` and `synthesize`, which
    its path length regularization differentiates separately).
    """

    def init(key: jax.Array, example: jax.Array, labels: jax.Array | None = None) -> tuple[Params, ModelState]:
        variables = dict(module.init(key, example, **call_kwargs(module.__call__, True, labels)))
        params = variables.pop("params")
        return params, variables

    def apply(
        params: Params,
        model_state: ModelState,
        inputs: jax.Array,
        *,
        train: bool = True,
        labels: jax.Array | None = None,
        rngs: dict[str, jax.Array] | None = None,
        method: str | None = None,
    ) -> tuple[Any, ModelState]:
        variables = {"params": params, **model_state}
        kwargs = call_kwargs(module.__call__ if method is None else getattr(module, method), train, labels)
        if method is not None:
            kwargs["method"] = method
        if not model_state or not train:
            return module.apply(variables, inputs, rngs=rngs, **kwargs), model_state
        outputs, new_state = module.apply(variables, inputs, rngs=rngs, mutable=list(model_state.keys()), **kwargs)
        return outputs, dict(new_state)

    return Player(init, apply, per_example=getattr(module, "mbstd_group_size", 1) <= 1)


# build(settings, data_shape, num_classes, config) -> Linen module; `settings` is the player's config section.
GENERATORS = Registry("generator")
DISCRIMINATORS = Registry("discriminator")

# weight_init: "orthogonal" (gain init_gain, Metz et al.) or "normal" (std init_gain, PacGAN); batch_norm: batch norm
# after each hidden linear map of G; maxout_pieces > 1: D's hidden layers are maxout layers of that many pieces.
_MLP = dict(width=128, depth=2, activation="relu", init_gain=0.8, weight_init="orthogonal")


def _dtype(config: ml_collections.ConfigDict) -> jnp.dtype:
    return jnp.dtype(config.dtype)


def _needs(rank: int, what: str, build: Callable) -> Callable:
    """`build`, refusing data whose examples do not have `rank` axes with a one-line error that says what fits."""

    def checked(settings, shape, num_classes, config):
        if len(shape) != rank:
            kind = "flat vectors" if rank == 1 else "[H, W, C] images"
            raise ValueError(
                f"--config.{what}.name={settings.name!r}: for {kind}, but data set {config.data.name!r} has examples "
                f"of shape {tuple(shape)}; use --config.{what}.name={'mlp' if len(shape) == 1 else 'dcgan'}"
            )
        return build(settings, shape, num_classes, config)

    checked.example_rank = rank
    return checked


def example_rank(registry: Registry, name: str) -> int | None:
    """The number of axes of the examples that model `name` of `registry` takes (1: vectors, 3: [H, W, C] images),
    or None where its entry does not say (a build not wrapped in `_needs`) or no such model is registered."""
    return None if name not in registry else getattr(registry[name].build, "example_rank", None)


GENERATORS.register(
    "mlp",
    {**_MLP, "batch_norm": False},
    _needs(1, "generator", lambda s, shape, num_classes, config: MLPGenerator(shape[-1], s.width, s.depth, s.activation, s.init_gain, s.weight_init, s.batch_norm, _dtype(config))),
)
GENERATORS.register("dirac", {}, lambda s, shape, num_classes, config: DiracGenerator(shape[-1], config.dirac.theta0))
DISCRIMINATORS.register(
    "mlp",
    {**_MLP, "depth": 1, "input_scale": 0.25, "maxout_pieces": 1},
    _needs(1, "discriminator", lambda s, shape, num_classes, config: MLPDiscriminator(s.width, s.depth, s.activation, s.input_scale, s.init_gain, s.weight_init, s.maxout_pieces, _dtype(config))),
)
DISCRIMINATORS.register("linear", {}, lambda s, shape, num_classes, config: LinearCritic(config.dirac.psi0))
# DCGAN (Radford et al. 2015), unconditional; base_width 64 is the paper's, 32 trains several times faster on a CPU.
# hidden_dense > 0: a fully connected layer of that width after D's trunk / before G's projection (InfoGAN's nets)
_DCGAN = dict(base_width=64, kernel_size=4, hidden_dense=0)


def _dcgan_generator(s, shape, num_classes, config) -> DCGANGenerator:
    classes = _class_count(config, num_classes)
    return DCGANGenerator(
        tuple(shape), s.base_width, classes, kernel_size=s.kernel_size, dtype=_dtype(config), hidden_dense=s.hidden_dense,
        attention_resolution=s.attention_resolution,
    )  # fmt: skip


def _dcgan_discriminator(s, shape, num_classes, config) -> DCGANDiscriminator:
    """Conditioned as `config.conditioning` asks: the class as input channels (concat), a classifier head
    (acgan), a Q head for InfoGAN's codes (infogan)."""
    kind, info = config.conditioning, config.info
    return DCGANDiscriminator(
        s.base_width,
        num_classes=num_classes if kind in ("concat", "acgan") else 0,
        aux_classifier=kind == "acgan",
        info_categorical=info.categorical if kind == "infogan" else 0,
        info_continuous=info.continuous if kind == "infogan" else 0,
        kernel_size=s.kernel_size,
        dtype=_dtype(config),
        norm=s.norm,
        attention_resolution=s.attention_resolution,
        space_to_depth=strided_conv_as_space_to_depth(s.strided_conv, config),
        num_convs=s.num_convs,
        hidden_dense=s.hidden_dense,
    )


def strided_conv_as_space_to_depth(choice: str, config: ml_collections.ConfigDict) -> bool:
    """Whether D computes its strided convolutions as space-to-depth + matrix product (`choice` "space_to_depth")
    or as `nn.Conv` ("conv"): the same function and parameters. "auto": `nn.Conv` only on a CPU with a first-order
    game, where it is the faster; space-to-depth on a CPU where the game differentiates D's input gradient
    (unrolled K > 0, consensus, SGA, any penalty: XLA's CPU backend runs those second-order convolutions slowly)
    and on accelerators (faster for the DCGAN-28 step on a GPU). The measurements are in BUILD_NOTES.md."""
    if choice != "auto":
        return choice == "space_to_depth"
    second_order = (
        (config.update_rule == "unrolled" and config.unroll_steps > 0)
        or config.update_rule in ("consensus", "sga")
        or config.penalty != "none"
    )
    return second_order or jax.default_backend() != "cpu"


GENERATORS.register("dcgan", {**_DCGAN, "attention_resolution": 0}, _needs(3, "generator", _dcgan_generator))
# norm: "batch" (the paper's), "layer" or "layer_chw" (gradient penalties are per example: WGAN-GP; "layer_chw"
# normalizes an example's C·H·W features together, as the WGAN-GP authors' code), "spectral", "none"
# strided_conv: "auto", "space_to_depth", "conv" (how D computes its strided convolutions; the same function)
DISCRIMINATORS.register(
    "dcgan", {**_DCGAN, "norm": "batch", "strided_conv": "auto", "num_convs": 0, "attention_resolution": 0},
    _needs(3, "discriminator", _dcgan_discriminator),
)


# The small DCGAN of the unrolled GAN paper's stacked MNIST experiment (Metz et al. 2017; jaxgan/models/small_dcgan.py):
# a list of widths per player (G: the start map's, then one per stride-2 transposed conv; D: one per stride-2 conv);
# D's default (2, 4, 8) is the paper's D of ¼ G's size, (4, 8, 16) its ½ size; 3×3 kernels; first_batch_norm=False:
# a bias instead of batch norm on D's first conv (DCGAN's convention). Unconditional.
GENERATORS.register(
    "small_dcgan",
    {"widths": (64, 32, 16, 8)},
    _needs(3, "generator", lambda s, shape, n, config: SmallDCGANGenerator(tuple(shape), tuple(s.widths), dtype=_dtype(config))),
)
DISCRIMINATORS.register(
    "small_dcgan",
    {"widths": (2, 4, 8), "leak": 0.3, "first_batch_norm": True, "strided_conv": "auto"},
    _needs(3, "discriminator", lambda s, shape, n, config: SmallDCGANDiscriminator(
        tuple(s.widths), leak=s.leak, first_batch_norm=s.first_batch_norm, dtype=_dtype(config),
        space_to_depth=strided_conv_as_space_to_depth(s.strided_conv, config),
    )),
)


def _class_count(config: ml_collections.ConfigDict, num_classes: int) -> int:
    """The classes G takes as labels: every conditioning that asks G for a class (InfoGAN's codes join z instead)."""
    return num_classes if config.conditioning in ("concat", "projection", "acgan") else 0


def _resnet_generator(s, shape, num_classes, config) -> ResNetGenerator:
    return ResNetGenerator(
        tuple(shape),
        s.base_width,
        _class_count(config, num_classes),
        attention_resolution=s.attention_resolution,
        hierarchical_latents=s.hierarchical_latents,
        shared_embedding_dim=s.shared_embedding_dim,
        dtype=_dtype(config),
    )


def _resnet_discriminator(s, shape, num_classes, config) -> ResNetDiscriminator:
    if s.norm not in ("spectral", "none"):
        raise ValueError(
            f"--config.discriminator.norm={s.norm!r}: the ResNet D is normalized by spectral norm or not at all; "
            "use --config.discriminator.norm=spectral (SNGAN) or none"
        )
    return ResNetDiscriminator(
        s.base_width,
        num_classes if config.conditioning == "projection" else 0,
        attention_resolution=s.attention_resolution,
        spectral_norm=s.norm == "spectral",
        dtype=_dtype(config),
    )


# SNGAN's ResNets (Miyato et al. 2018, Appendix B; D's `norm` is "spectral" (SNGAN) or "none"; the paper's widths are 256 for G and 128 for D, base_width's
# default here is DCGAN's 64, shared with it), with SAGAN's self-attention after the block at
# `attention_resolution` (0: none), BigGAN's hierarchical latents and shared class embedding in G, conditional batch
# norm in G and the projection discriminator for class-conditional runs (conditioning "projection").
GENERATORS.register(
    "resnet",
    {"base_width": 64, "attention_resolution": 0, "hierarchical_latents": False, "shared_embedding_dim": 0},
    _needs(3, "generator", _resnet_generator),
)
DISCRIMINATORS.register(
    "resnet", {"base_width": 64, "attention_resolution": 0, "norm": "batch"}, _needs(3, "discriminator", _resnet_discriminator)
)


class Progressive(nn.Module):
    """A progressive-growing player (jaxgan/models/progan.py) whose growth level follows the training step.

    The step is read from the model state (collection "progress", set before every update by
    `jaxgan.updates.with_progressive_growing`), and the level is the paper's schedule of it (`progan.level_at`:
    each new resolution fades in over `steps_per_phase` steps, then trains stabilised as long): the schedule is a
    function of the step, which checkpoints hold, so resume is exact and one compiled step serves every level.
    Evaluation (train=False) reads the same state: samples at the current resolution."""

    module: nn.Module
    steps_per_phase: int
    num_stages: int

    @property
    def mbstd_group_size(self) -> int:
        """The wrapped D's minibatch-stddev group size (1 without one), which `linen_player`'s `per_example` reads:
        the wrapper must not hide that D's outputs mix examples."""
        return getattr(self.module, "mbstd_group_size", 1)

    @nn.compact
    def __call__(self, x, labels=None, *, train: bool = True):
        step = self.variable("progress", "step", lambda: jnp.zeros((), jnp.int32)).value
        return self.module(x, labels, level=level_at(step, self.steps_per_phase, self.num_stages), train=train)


def _progressive(kind: type, s, shape, config) -> Progressive:
    *_, stages = progressive_plan(tuple(shape), kind.__name__)
    width = dict(max_width=s.max_width, dtype=_dtype(config))
    module = kind(tuple(shape), **width) if kind is ProgressiveGenerator else kind(**width)
    return Progressive(module, config.progressive_phase_steps, stages)


# Progressive growing (Karras et al. 2018): equalized learning rate, pixel norm in G, minibatch stddev in D, every
# stage faded in over `progressive_phase_steps` steps; max_width is the width of the start resolution's stage.
GENERATORS.register(
    "progan", {"max_width": 128}, _needs(3, "generator", lambda s, shape, n, config: _progressive(ProgressiveGenerator, s, shape, config))
)
DISCRIMINATORS.register(
    "progan", {"max_width": 128}, _needs(3, "discriminator", lambda s, shape, n, config: _progressive(ProgressiveDiscriminator, s, shape, config))
)


def _stylegan2_generator(s, shape, num_classes, config) -> StyleGAN2Generator:
    return StyleGAN2Generator(
        tuple(shape), s.base_width, s.mapping_layers, s.w_dim, mixing_probability=s.mixing_probability, dtype=_dtype(config)
    )


# StyleGAN2-lite (Karras et al. 2020; jaxgan/models/stylegan.py): mapping network, modulated convolutions, noise
# inputs and mixing regularization in G (the paper's mixing probability is 0.9), a residual D with minibatch
# stddev, base_width channels at every resolution; their lazy R1 and path length regularization are `config.lazy`
# (jaxgan.updates.with_lazy_regularization).
GENERATORS.register(
    "stylegan2", {"base_width": 64, "mapping_layers": 4, "w_dim": 64, "mixing_probability": 0.9}, _needs(3, "generator", _stylegan2_generator)
)
DISCRIMINATORS.register(
    "stylegan2",
    {"base_width": 64},
    _needs(3, "discriminator", lambda s, shape, num_classes, config: StyleGAN2Discriminator(s.base_width, dtype=_dtype(config))),
)


# LapGAN (Denton et al. 2015; jaxgan/models/lapgan.py): a coarse-to-fine pyramid of generators and one conditional
# discriminator per pyramid level (logits [B, levels]: the losses' means make the game the mean of the levels' games).
# `coarse_model`: the coarsest level's G_0 and D_0, "mlp" (the paper's) or "conv"; `coarse_width`: their hidden
# units or channels (0: base_width).
GENERATORS.register(
    "lapgan",
    {"base_width": 64, "coarse_width": 0, "coarse_model": "mlp"},
    _needs(3, "generator", lambda s, shape, n, config: LaplacianGenerator(tuple(shape), s.base_width, _dtype(config), s.coarse_width, s.coarse_model)),
)
DISCRIMINATORS.register(
    "lapgan",
    {"base_width": 64, "coarse_width": 0, "coarse_model": "mlp"},
    _needs(3, "discriminator", lambda s, shape, n, config: LaplacianDiscriminator(s.base_width, _dtype(config), s.coarse_width, s.coarse_model)),
)


def _autoencoder_discriminator(s, shape, num_classes, config) -> AutoencoderDiscriminator:
    return AutoencoderDiscriminator(
        s.base_width,
        s.embedding_dim,
        kernel_size=s.kernel_size,
        energy=s.energy,
        norm=s.norm,
        activation=s.autoencoder_activation,
        dtype=_dtype(config),
        space_to_depth=strided_conv_as_space_to_depth(s.strided_conv, config),
    )


# EBGAN's and BEGAN's auto-encoder D (loss ebgan or began): its "logits" are the reconstruction errors.
# energy: "mse" (EBGAN) or "l1" (BEGAN); autoencoder_activation: "leaky_relu" (EBGAN) or "elu" (BEGAN); norm: "batch" or "none".
DISCRIMINATORS.register(
    "autoencoder",
    {**_DCGAN, "norm": "batch", "strided_conv": "auto", "embedding_dim": 64, "energy": "mse", "autoencoder_activation": "leaky_relu"},
    _needs(3, "discriminator", _autoencoder_discriminator),
)


# The conditionings (jaxgan.conditioning) each model supports, per player; a model not listed is unconditional.
CONDITIONINGS_OF = {
    "generator": {
        "dcgan": ("concat", "projection", "acgan", "infogan"),
        "resnet": ("concat", "projection", "acgan", "infogan"),
        "lapgan": ("real_coarse",),
    },
    "discriminator": {"dcgan": ("concat", "acgan", "infogan"), "resnet": ("projection",), "lapgan": ("real_coarse",)},
}


def check_conditioning(config: ml_collections.ConfigDict) -> None:
    """A one-line error when `config.conditioning` asks a player for labels or codes its model cannot take."""
    if config.conditioning == "none":
        return
    for what in ("generator", "discriminator"):
        name = config[what].name
        if config.conditioning not in CONDITIONINGS_OF[what].get(name, ()):
            able = [m for m, kinds in CONDITIONINGS_OF[what].items() if config.conditioning in kinds]
            raise ValueError(
                f"--config.conditioning={config.conditioning!r}: --config.{what}.name={name!r} does not take it; "
                f"use one of {', '.join(able)}"
            )


def build_players(config: ml_collections.ConfigDict, data_shape: tuple[int, ...], num_classes: int = 0):
    """(generator, discriminator) Linen modules named by `config.generator.name` / `config.discriminator.name`."""
    g, d = config.generator, config.discriminator
    check_conditioning(config)
    discriminator = DISCRIMINATORS[d.name].build(d, data_shape, num_classes, config)
    if config.packing > 1:  # PacGAN: D judges packs of `packing` samples
        discriminator = Packed(discriminator, config.packing)
    return GENERATORS[g.name].build(g, data_shape, num_classes, config), discriminator


__all__ = [
    "ACTIVATIONS", "AutoencoderDiscriminator", "CONDITIONINGS_OF", "DCGANDiscriminator", "DCGANGenerator", "DISCRIMINATORS", "GENERATORS", "LaplacianDiscriminator", "LaplacianGenerator", "KERNEL_INITS", "MLP", "MLPDiscriminator", "Maxout", "MLPGenerator", "ModelState", "Packed", "Params", "Progressive", "ProgressiveDiscriminator", "ProgressiveGenerator", "ResNetDiscriminator", "ResNetGenerator", "SmallDCGANDiscriminator", "SmallDCGANGenerator", "StyleGAN2Discriminator", "StyleGAN2Generator", "UnsupportedImageSize",
    "Player", "build_players", "example_rank", "linen_player",
]  # fmt: skip
