"""A tiny TFDS data set in array_record format, built in a test's tmp_path without TensorFlow (Pillow encodes the
PNGs): 4×4 grayscale images whose every pixel is the image's id, label id % 3."""

import numpy as np
import pytest


def build_tiny_tfds(data_dir, splits: dict[str, range], class_name: str = "JaxganTinyImages"):
    """Prepares the data set (registered as the snake_case of `class_name`) with one split per entry of `splits`
    (the ids it holds) and returns the tensorflow_datasets module."""
    tfds = pytest.importorskip("tensorflow_datasets")
    pytest.importorskip("array_record")
    from PIL import Image

    def _info(self):
        features = tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(4, 4, 1), encoding_format="png"),
            "label": tfds.features.ClassLabel(num_classes=3),
        })  # fmt: skip
        return tfds.core.DatasetInfo(builder=self, features=features)

    def _split_generators(self, dl_manager):
        return {name: self._generate_examples(ids) for name, ids in splits.items()}

    def _generate_examples(self, ids):
        for i in ids:
            # A PIL image (rather than an array) is PNG-encoded by Pillow; arrays would need tf.image.
            yield str(i), {"image": Image.fromarray(np.full((4, 4), i, np.uint8), mode="L"), "label": i % 3}

    members = dict(VERSION=tfds.core.Version("1.0.0"), _info=_info, _split_generators=_split_generators,
                   _generate_examples=_generate_examples)  # fmt: skip
    builder = type(class_name, (tfds.core.GeneratorBasedBuilder,), members)
    builder(data_dir=str(data_dir), file_format="array_record").download_and_prepare()
    return tfds
