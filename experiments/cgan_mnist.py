r"""Conditional GAN (Mirza & Osindero 2014) on mnist_5k: G and D both get the class, one-hot.

    python -m jaxgan.main --config=experiments/cgan_mnist.py --workdir=/tmp/cgan_mnist

experiments/dcgan_mnist.py's networks and training with `conditioning = "concat"`: one_hot(y) beside z in G and
broadcast over the image as extra input channels of D (jaxgan/conditioning.py, jaxgan/models/dcgan.py). The
evaluation asks for every class in turn: eval.json adds `class_accuracy` (the digit classifier's agreement with
the class asked for), samples.png has one row per class, samples/step_N_labels.npy holds the classes of step_N.npy.
"""

import pathlib

from jaxgan.config import load_config_file


def get_config():
    config = load_config_file(pathlib.Path(__file__).with_name("dcgan_mnist.py"))
    config.conditioning = "concat"
    return config
