"""Data sets and their registry.

A `Dataset` is what a run trains on: the shape of one example, the number of classes, and `sample(key, n)`, a
pure function that draws n examples on device (inside the fused training loop) from a key. The runner derives
the key from the step number, so the data position of a run is its step and a resumed run draws exactly the
batches the uninterrupted one would have drawn. `info` carries what the evaluations of that data need (the
mixture's modes, the held-out images).

Data sets are chosen by `config.data.name` from `DATASETS`; a new one is one module plus one `register` line with
its default settings.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections

from jaxgan.conditioning import Labelled
from jaxgan.data import images
from jaxgan.data.mixtures import make_mixture
from jaxgan.registry import Registry


class Dataset(NamedTuple):
    shape: tuple[int, ...]  # one example: (2,) for the mixtures, (H, W, C) for images
    num_classes: int  # 0: unlabelled
    sample: Callable[[jax.Array, int], jax.Array]  # (key, n) -> [n, *shape] float32 in the models' range
    info: Any = None  # what evaluations need: the Mixture, the ImageData, ...
    # (key, n) -> Labelled(the images `sample` draws from the same key, their int32 classes [n]); labelled data only
    sample_labelled: Callable[[jax.Array, int], Labelled] | None = None
    # () -> random access to the training records, {"image": uint8 [H, W, C], "label": int}, for
    # `data.loader = "stream"` (`jaxgan.data.streaming`); image data sets only
    source: Callable[[], Any] | None = None


def _mixture(settings: ml_collections.ConfigDict) -> Dataset:
    mixture = make_mixture(settings.name, settings.num_modes, settings.scale, settings.std)
    return Dataset((2,), 0, mixture.sample, mixture)


def _dirac(settings: ml_collections.ConfigDict) -> Dataset:
    return Dataset((1,), 0, lambda key, n: jnp.zeros((n, 1), jnp.float32))


def _image_dataset(data: images.ImageData) -> Dataset:
    """Training images held in device memory as one uint8 array; a batch is a gather by indices drawn from the
    step's key, scaled to [−1, 1]. The limit: the training split must fit in device memory (mnist_5k: 3.1 MB)."""
    train = jnp.asarray(data.train_images)
    labels = None if data.train_labels is None else jnp.asarray(data.train_labels, jnp.int32)

    def sample(key: jax.Array, n: int) -> jax.Array:
        return images.to_model_range(train[jax.random.randint(key, (n,), 0, train.shape[0])])

    def sample_labelled(key: jax.Array, n: int) -> Labelled:
        index = jax.random.randint(key, (n,), 0, train.shape[0])
        return Labelled(images.to_model_range(train[index]), labels=labels[index])

    return Dataset(
        tuple(data.train_images.shape[1:]), data.num_classes, sample, data,
        sample_labelled if data.num_classes and labels is not None else None,
        lambda: ArraySource(data.train_images, data.train_labels),
    )  # fmt: skip


class ArraySource:
    """Random access to in-memory images (and labels) as records, the interface of `tfds.data_source`."""

    def __init__(self, images_uint8, labels=None):
        self.images, self.labels = images_uint8, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        record = {"image": self.images[i]}
        if self.labels is not None:
            record["label"] = int(self.labels[i])
        return record


def _num_train(settings: ml_collections.ConfigDict, total: int) -> int:
    num_train = int(round(total * (1 - settings.held_out_fraction)))
    if not 0 < num_train < total:
        raise ValueError(
            f"--config.data.held_out_fraction={settings.held_out_fraction!r}: leaves {num_train} of the {total} images of "
            f"{settings.name} for training and {total - num_train} held out; both must be non-empty"
        )
    return num_train


def _mnist_5k(settings: ml_collections.ConfigDict) -> Dataset:
    return _image_dataset(images.load_mnist_5k(_num_train(settings, 5000)))


def _digits(settings: ml_collections.ConfigDict) -> Dataset:
    return _image_dataset(images.load_digits(_num_train(settings, 1797)))


def _stacked_mnist(settings: ml_collections.ConfigDict) -> Dataset:
    """Three independent mnist_5k training digits as R, G, B (1000 classes), composed per batch on device."""
    data = images.load_mnist_5k(_num_train(settings, 5000))
    train, labels = jnp.asarray(data.train_images), jnp.asarray(data.train_labels)

    def sample_labelled(key: jax.Array, n: int) -> Labelled:
        stacked, classes = images.stacked_mnist_batch(key, train, labels, n)
        return Labelled(images.to_model_range(stacked), labels=classes)

    return Dataset(
        (*data.train_images.shape[1:3], 3), 1000, lambda key, n: sample_labelled(key, n).data, data, sample_labelled
    )


def _image_folder(settings: ml_collections.ConfigDict) -> Dataset:
    if not settings.path:
        raise ValueError("data.name='image_folder' needs --config.data.path=DIRECTORY")
    if settings.channels not in (0, 1, 3):
        raise ValueError(f"--config.data.channels={settings.channels!r}: must be 1, 3 or 0 (as the first image)")
    size = (settings.image_size, settings.image_size) if settings.image_size else None
    try:
        data = images.load_image_folder(
            settings.path, image_size=size, channels=settings.channels or None,
            held_out_fraction=settings.held_out_fraction,
        )  # fmt: skip
    except (OSError, ValueError) as error:
        raise ValueError(f"--config.data.path={settings.path!r}: {error}") from None
    return _image_dataset(data)


def _tfds(settings: ml_collections.ConfigDict) -> Dataset:
    name = settings.name.partition(":")[2].strip()  # "tfds" alone too: refused below
    if not name:
        raise ValueError(f"--config.data.name={settings.name!r}: name a prepared TFDS data set, e.g. tfds:mnist")
    options = dict(data_dir=settings.data_dir or None, split_train=settings.split_train, split_test=settings.split_test)
    where = f"--config.data.name={settings.name!r} (--config.data.data_dir={settings.data_dir!r})"
    streamed = settings.get("loader", "device") == "stream"
    try:  # streamed: the training split stays on disk and is read batch by batch; only the held-out one is loaded
        loaded = images.load_tfds(name, **options, read_train=not streamed)
    except (OSError, RuntimeError, ValueError) as error:
        raise ValueError(f"{where}: {error}") from None
    if not streamed:
        return _image_dataset(loaded)
    data, train = loaded

    def not_in_memory(key: jax.Array, n: int) -> jax.Array:
        raise ValueError(f"{settings.name} is streamed (data.loader='stream'): its training split is not in memory")

    return Dataset(tuple(data.test_images.shape[1:]), data.num_classes, not_in_memory, data, None, lambda: train)


# build(settings) -> Dataset; `settings` is config.data.
DATASETS = Registry("data set", reserved=("loader",))  # data.loader: the runner's, for every image data set
_MIXTURE_DEFAULTS = dict(num_modes=8, scale=2.0, std=0.02)  # scale: the ring's radius or the grid's spacing
DATASETS.register("ring", _MIXTURE_DEFAULTS, _mixture)
DATASETS.register("grid", _MIXTURE_DEFAULTS, _mixture)
DATASETS.register("dirac", {}, _dirac)
_SPLIT = dict(held_out_fraction=0.2)  # mnist_5k: 4000 / 1000 images, stratified by class; image_folder likewise
DATASETS.register("mnist_5k", _SPLIT, _mnist_5k)
DATASETS.register("digits", _SPLIT, _digits)
DATASETS.register("stacked_mnist", _SPLIT, _stacked_mnist)
# channels 0: as the first image (1 if it is grayscale, else 3).
DATASETS.register("image_folder", dict(path="", image_size=0, channels=0, **_SPLIT), _image_folder)
# data.name = "tfds:NAME", any prepared TFDS data set; the splits are any TFDS split strings ("train[:90%]").
DATASETS.register("tfds", dict(data_dir="", split_train="train", split_test="test"), _tfds)


def registry_name(name: str) -> str:
    """The registry entry of a data set name: "tfds:NAME" is the entry "tfds"."""
    return "tfds" if isinstance(name, str) and name.startswith("tfds:") else name


def build_dataset(config: ml_collections.ConfigDict) -> Dataset:
    return DATASETS[registry_name(config.data.name)].build(config.data)


__all__ = ["DATASETS", "Dataset", "build_dataset", "registry_name"]
