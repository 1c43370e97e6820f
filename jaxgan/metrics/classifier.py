"""The offline feature extractor of the digit data sets: a small convolutional classifier trained by jaxgan.

For MNIST-like data the standard practice is to compute FID/KID/precision-recall from the penultimate layer of a
classifier trained on the data set itself and the Inception Score from its logits (Inception-v3 features are
meaningless on 28×28 digits). `scripts/train_classifier.py` trains `DigitClassifier` on the training split of
`mnist_5k` (and of `digits`) and ships the parameters in `jaxgan/metrics/assets/classifier_NAME/` as a small
Orbax checkpoint, with its held-out accuracy in `metadata.json` beside it.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

ASSETS = pathlib.Path(__file__).resolve().parent / "assets"
# Images per pass of the classifier: its first layer holds 32 floats per pixel, and one pass over Stacked MNIST's
# 25600 samples × 3 channels took a run to 11.6 GB (BUILD_NOTES.md, "Stacked MNIST with the paper's networks: ...").
CLASSIFY_CHUNK = 1024


class DigitClassifier(nn.Module):
    """Two 3×3 conv layers (32, 64 channels, ReLU, 2×2 average pooling each), a 128-unit ReLU feature layer and a
    linear layer of `num_classes` logits. Input: images in [−1, 1], [B, H, W, C]. Returns (logits, features)."""

    num_classes: int = 10
    feature_dim: int = 128

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
        for channels in (32, 64):
            x = nn.relu(nn.Conv(channels, (3, 3))(x))
            x = nn.avg_pool(x, (2, 2), (2, 2), padding="SAME")
        features = nn.relu(nn.Dense(self.feature_dim)(x.reshape(x.shape[0], -1)))
        return nn.Dense(self.num_classes)(features), features


def classifier_dir(data_name: str) -> pathlib.Path:
    return ASSETS / f"classifier_{data_name}"


def held_out_images_it_trained_on(data_name: str, train_labels: np.ndarray, test_labels: np.ndarray) -> tuple[int, int]:
    """(How many of a run's held-out images the shipped classifier of `data_name` was trained on, how many images
    that classifier held out). Both splits take each class's first images in file order for training
    (`jaxgan.data.images.stratified_split`), so the run's held-out images are among the classifier's exactly when
    the run trains on at least as many images of every class as the classifier did; the excess is the count.
    (0, 0) when no classifier is shipped (loading it then fails with its own message)."""
    from jaxgan.data.images import stratified_split

    path = classifier_dir(data_name) / "metadata.json"
    if not path.exists():
        return 0, 0
    held_out = int(json.loads(path.read_text())["held_out_images"])
    counts = np.bincount(np.concatenate([train_labels, test_labels]))
    by_class = np.repeat(np.arange(len(counts)), counts)  # the quotas depend on the class counts alone
    classifier_train, _ = stratified_split(by_class, len(by_class) - held_out)
    classifier_quota = np.bincount(by_class[classifier_train], minlength=len(counts))
    run_quota = np.bincount(train_labels, minlength=len(counts))
    return int(np.maximum(classifier_quota - run_quota, 0).sum()), held_out


def load_classifier(data_name: str, image_shape: tuple[int, ...]) -> tuple[Callable[[jax.Array], Any], dict]:
    """`(classify, metadata)`: classify(images in [−1, 1]) -> (logits, features), with the shipped parameters of
    the classifier of `data_name` ('mnist_5k' or 'digits'); a one-line FileNotFoundError names the script that
    trains it when it is missing. More than `CLASSIFY_CHUNK` images are classified that many at a time, so that
    memory stays bounded however many samples an evaluation reads."""
    import orbax.checkpoint as ocp

    path = classifier_dir(data_name)
    if not (path / "metadata.json").exists():
        raise FileNotFoundError(
            f"no classifier for {data_name!r} in {path}; train it with python scripts/train_classifier.py --data={data_name}"
        )
    metadata = json.loads((path / "metadata.json").read_text())
    model = DigitClassifier(metadata["num_classes"], metadata["feature_dim"])
    abstract = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, *image_shape)))["params"])
    # Every process reads the shipped file by itself, onto one of its own devices: no cross-process barrier, so
    # loading also works on first use inside a trace of a multi-process job.
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device), abstract)
    me = jax.process_index()
    alone = ocp.options.MultiprocessingOptions(primary_host=me, active_processes={me})
    params = ocp.StandardCheckpointer(multiprocessing_options=alone).restore((path / "params").absolute(), abstract)

    def classify(images: jax.Array) -> tuple[jax.Array, jax.Array]:
        if images.shape[0] <= CLASSIFY_CHUNK:
            return model.apply({"params": params}, images)
        one = lambda image: jax.tree.map(lambda a: a[0], model.apply({"params": params}, image[None]))  # noqa: E731
        return jax.lax.map(one, images, batch_size=CLASSIFY_CHUNK)

    return classify, metadata
