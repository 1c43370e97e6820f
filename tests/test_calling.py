"""`call_kwargs` passes a model only the keyword arguments its `__call__` declares."""

import jax.numpy as jnp

from jaxgan.models.calling import call_kwargs


def _with_train(x, *, train=True):
    return x


def _with_train_and_labels(x, *, train=True, labels=None):
    return x


def _plain(x):
    return x


def test_train_only_reaches_a_function_that_takes_it():
    assert call_kwargs(_with_train, False) == {"train": False}
    assert call_kwargs(_plain, False) == {}


def test_labels_are_passed_when_given():
    labels = jnp.arange(3)
    kwargs = call_kwargs(_with_train_and_labels, True, labels)
    assert set(kwargs) == {"train", "labels"} and kwargs["train"] is True and kwargs["labels"] is labels
    assert call_kwargs(_with_train_and_labels, True) == {"train": True}


def test_bound_method_of_a_linen_module():
    from jaxgan.models.mlp import MLPDiscriminator
    from jaxgan.models.dcgan import DCGANDiscriminator

    assert call_kwargs(MLPDiscriminator(width=4, depth=1).__call__, False) == {}
    assert "train" in call_kwargs(DCGANDiscriminator.__call__, False)
