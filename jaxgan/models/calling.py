"""How a model's `__call__` is called: only with the keyword arguments it declares.

Modules without a `train` or `labels` argument (the MLPs, a user's own stateless module) plug in unchanged; both
`linen_player` and the wrappers that hold another module (`Packed`) call through this one helper.
"""

from __future__ import annotations

import inspect
from typing import Callable

import jax


def call_kwargs(fn: Callable, train: bool, labels: jax.Array | None = None) -> dict:
    """`{"train": train}` if `fn` takes a `train` argument, plus `{"labels": labels}` when labels are given."""
    kwargs = {"train": train} if "train" in inspect.signature(fn).parameters else {}
    return kwargs if labels is None else {**kwargs, "labels": labels}
